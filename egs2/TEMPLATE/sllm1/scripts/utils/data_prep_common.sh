#!/usr/bin/env bash
# Usage:
#   <option variables with their defaults>
#   . scripts/utils/data_prep_common.sh     # SOURCED with no arguments by local/data.sh
#
# The common preamble of every recipe's local/data.sh (stage 1), run from the recipe directory:
#   * help_message = the script's header comment (from line 2 to `set -euo pipefail`), printed
#     by --help;
#   * log MESSAGE  (stdout, with time and script:line) and die MESSAGE (stderr, exit 1);
#   * the check that the working directory is a recipe directory (db.sh and local/);
#   * the options, parsed by parse_options.sh (an unknown option is an error naming it);
#   * the option every local/data.sh shares, defined here (default false; the script does not
#     define it itself, and lists it in its help):
#       --strict true|false   passed on to every corpus reader it runs (python -m
#                             espnet_sllm.data.corpora.<reader> ... --strict "${strict}"): true turns
#                             each row the reader would drop and count (not UTF-8, missing
#                             audio, a segment beyond its audio, ...) into an error naming
#                             file:line and the reason;
#   * no positional argument is accepted.
# Sourced (not run), so that the options set the caller's variables and the functions stay
# defined in the caller.
help_message=$(sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//')

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}:${BASH_LINENO[0]}) $*"
}

die() {
    echo "${0##*/}: ERROR: $*" >&2
    exit 1
}

if [ ! -f db.sh ] || [ ! -d local ]; then
    die "run me from the recipe directory (egs2/<corpus>/<task>, holding db.sh and local/)"
fi
strict=false
# shellcheck disable=SC1091
. scripts/utils/parse_options.sh
if [ $# -ne 0 ]; then
    echo "${0##*/}: unexpected arguments: $*" >&2
    printf '%s\n' "${help_message}" >&2
    exit 1
fi
