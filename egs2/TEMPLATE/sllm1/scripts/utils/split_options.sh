#!/usr/bin/env bash
# Usage:
#   own_options="system debug"     # the options run.sh handles itself
#   system=; debug=false           # their variables, with their defaults
#   . scripts/utils/split_options.sh      # SOURCED with no arguments by a recipe's run.sh
#   ./sllm.sh <run.sh's options> "${args[@]+"${args[@]}"}"
#
# The option handling of every recipe's run.sh: run.sh takes a few options of its own and
# passes all others on to sllm.sh (which checks them with parse_options.sh).  This consumes
# "$@" and
#   * sets the variable of each option in $own_options (--name VALUE or --name=VALUE; dashes
#     in the name count as underscores, as in parse_options.sh);
#   * keeps every other option, with its value, in the array `args`, in order; an option and
#     its value travel together, so a value that looks like an option (--train_args
#     "--accum_grad 8", --inference_args --system) is never taken for one of run.sh's;
#   * prints the script's header comment (line 2 to `set -euo pipefail`) for --help / -h.
# Errors (exit 1, naming the option): an own option without a value, an own option whose
# variable the caller did not define.
args=()
_so_usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    _so_opt=$1
    case "${_so_opt}" in
        --help|-h) _so_usage; exit 0 ;;
        --*=*) _so_name=${_so_opt%%=*}; _so_value=${_so_opt#*=}; _so_has_value=true ;;
        --*) _so_name=${_so_opt}; _so_has_value=false ;;
        *) args+=("${_so_opt}"); shift; continue ;;
    esac
    _so_name=${_so_name#--}
    _so_name=${_so_name//-/_}
    if [[ " ${own_options} " == *" ${_so_name} "* ]]; then
        if [ "${_so_has_value}" = false ]; then
            [ $# -ge 2 ] || { echo "${0##*/}: ${_so_opt} needs a value" >&2; exit 1; }
            _so_value=$2
            shift
        fi
        [ -n "${!_so_name+set}" ] || {
            echo "${0##*/}: split_options.sh: no default for option --${_so_name}" >&2
            exit 1
        }
        printf -v "${_so_name}" '%s' "${_so_value}"
    else
        args+=("${_so_opt}")
        if [ "${_so_has_value}" = false ] && [ $# -ge 2 ]; then
            args+=("$2")
            shift
        fi
    fi
    shift
done
unset -f _so_usage
unset _so_opt _so_name _so_value _so_has_value
