#!/usr/bin/env bash
# Usage:
#   . scripts/utils/parse_options.sh     # SOURCED (with no arguments) by a driver script
#
# Command-line options for staged drivers (run.sh, sllm.sh, local/*.sh), Kaldi style.
# The driver first defines every option as a shell variable with its default, and optionally a
# `help_message`, then sources this file, which consumes the leading options from "$@":
#
#   stage=1; nj=4; use_lora=false; inference_args=""
#   help_message="Usage: $0 [options] <data-dir>
#     --stage <int>       first stage to run (default: ${stage})"
#   . scripts/utils/parse_options.sh
#   data_dir=$1                        # positional arguments are left in "$@"
#
# Rules:
#   --foo-bar VALUE, --foo_bar VALUE, --foo-bar=VALUE   set foo_bar=VALUE; the variable must
#                                   already exist, otherwise: error naming the option, exit 1
#   a variable whose default is true/false only accepts true or false
#   --help, -h                      print "$help_message" and exit 0
#   --config FILE                   source FILE (lines `name=value`, `#` comments) BEFORE all
#                                   other options, so options given on the command line win
#                                   whatever their order; it may only set existing variables
#   --                              ends the options; so does the first argument not starting
#                                   with "--" (or -h)
#
# Source it WITHOUT arguments: `. parse_options.sh "$@"` would give it a copy of the
# arguments and the driver would not see them consumed.  Being sourced, it does not change the
# shell options of the driver (which should `set -euo pipefail` itself); it works under them.
# Its own helper names start with `_po_` and are removed again at the end.

_po_prog=${0##*/}

_po_die() {
    echo "${_po_prog}: parse_options.sh: $*" >&2
    exit 1
}

_po_name_ok() {  # $1: variable name; fails unless it is an existing shell variable
    [[ $1 =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] && [[ $1 != _po_* ]] && declare -p "$1" >/dev/null 2>&1
}

_po_source_config() {  # $1: config file
    # Locals carry the _po_ prefix: the sourced config must reach the driver's variables.
    local _po_cfg=$1 _po_line _po_var _po_lineno=0
    [[ -f ${_po_cfg} ]] || _po_die "config file '${_po_cfg}' (from --config) not found"
    while IFS= read -r _po_line || [[ -n ${_po_line} ]]; do
        _po_lineno=$((_po_lineno + 1))
        [[ ${_po_line} =~ ^[[:space:]]*(#.*)?$ ]] && continue
        [[ ${_po_line} =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)= ]] \
            || _po_die "${_po_cfg}:${_po_lineno}: expected 'name=value', got: ${_po_line}"
        _po_var=${BASH_REMATCH[1]}
        _po_name_ok "${_po_var}" || _po_die \
            "${_po_cfg}:${_po_lineno}: '${_po_var}' is not an option of ${_po_prog} (see --help)"
    done <"${_po_cfg}"
    # shellcheck disable=SC1090
    . "${_po_cfg}"
}

_po_set() {  # $1: option as typed, $2: value
    local _po_var=${1#--}
    _po_var=${_po_var//-/_}
    _po_name_ok "${_po_var}" || _po_die "unknown option '$1' (run with --help for the options)"
    case ${!_po_var-} in
        true | false)
            [[ $2 == true || $2 == false ]] \
                || _po_die "option '$1' is a boolean: give true or false, not '$2'"
            ;;
    esac
    printf -v "${_po_var}" '%s' "$2"
}

# Pass 1: --config files, so that any other option overrides what they set.
_po_args=("$@")
_po_i=0
while ((_po_i < ${#_po_args[@]})); do
    case ${_po_args[_po_i]} in
        --config)
            ((_po_i + 1 < ${#_po_args[@]})) || _po_die "option '--config' needs a value"
            _po_source_config "${_po_args[_po_i + 1]}"
            _po_i=$((_po_i + 2))
            ;;
        --config=*) _po_source_config "${_po_args[_po_i]#--config=}"; _po_i=$((_po_i + 1)) ;;
        --help | -h | --*=*) _po_i=$((_po_i + 1)) ;;
        --) break ;;
        --*) _po_i=$((_po_i + 2)) ;;
        *) break ;;
    esac
done

# Pass 2: every other option, consuming them from the driver's "$@".
while (($# > 0)); do
    case $1 in
        --help | -h)
            if [[ -n ${help_message:-} ]]; then
                printf '%s\n' "${help_message}"
            else
                echo "Usage: ${_po_prog} [options] (no help_message defined)"
            fi
            exit 0
            ;;
        --) shift; break ;;
        --config) (($# >= 2)) || _po_die "option '--config' needs a value"; shift 2 ;;
        --config=*) shift ;;
        --*=*) _po_set "${1%%=*}" "${1#*=}"; shift ;;
        --*)
            (($# >= 2)) || _po_die "option '$1' needs a value"
            _po_set "$1" "$2"
            shift 2
            ;;
        *) break ;;
    esac
done

unset -v _po_prog _po_args _po_i
unset -f _po_die _po_name_ok _po_source_config _po_set
true  # the status of a sourced file is that of its last command
