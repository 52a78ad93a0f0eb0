#!/usr/bin/env bash
# Usage:
#   ./run.sh [--aishell2 true|false] [--local_data_opts "..."] [--stage N] [--stop_stage M]
#            [--train_config conf/...yaml] [any other option of ./sllm.sh]
#
# egs2/aishell_wmt/asr1: Wu et al., a transferable alignment module for Speech LLMs:
# Whisper-large-v3 (frozen) -> ONE linear layer (1280 -> 4096) -> Yi-6B (frozen), trained
# multi-task on ASR (AISHELL-1), speech translation (WMT19 zh-en), spoken QA and text QA
# (Alpaca-zh); the speech of WMT19 and Alpaca-zh is synthesised by TTS.  See README.md.
#
# What run.sh adds to sllm.sh (./sllm.sh --help): the sets of this recipe,
#   --train_set aishell_train   --valid_set aishell_dev
#   --test_sets "aishell_test aishell2_test"   ("aishell_test" with --aishell2 false)
# Stage 1 (local/data.sh) also writes the text-only sets wmt19_train, wmt19_test and
# alpaca_zh; they get speech, and the multi-task training set that combines them with
# AISHELL-1, from the TTS stage of a later step of the recipe.
#
# Options of this script:
#   --aishell2 true|false     prepare and decode the AISHELL-2 iOS test set (AISHELL-2 is
#                             licensed separately: with false, stage 1 does not need
#                             AISHELL2_TEST)                                (default: true)
#   --local_data_opts "..."   options of local/data.sh (words separated by spaces, lists
#                             comma-separated), e.g. "--wmt19_max_pairs 100000
#                             --extract_dir /scratch/aishell_wav"; they come after this
#                             script's own (--corpora), so they win          (default: "")
# Every other option goes to sllm.sh unchanged, after this script's defaults (so it wins).
# The model and training configs come with the recipe's model issue; until then stages 1-3
# (data) run without --train_config, and a --train_config you give is passed on.
#
# The corpus roots are AISHELL, AISHELL2_TEST, WMT19 and ALPACA_ZH in db.sh (environment
# overrides).  Examples:
#   AISHELL=/db/aishell AISHELL2_TEST=/db/aishell2 WMT19=/db/wmt19 ALPACA_ZH=/db/alpaca_zh \
#       ./run.sh --stage 1 --stop_stage 1
#   ./run.sh --aishell2 false --stage 1 --stop_stage 3 \
#       --local_data_opts "--wmt19_max_pairs 100000"
set -euo pipefail

aishell2=true
local_data_opts=""
own_options="aishell2 local_data_opts"
# shellcheck disable=SC1091
. scripts/utils/split_options.sh
die() { echo "$0: ERROR: $*" >&2; exit 1; }
case "${aishell2}" in
    true|false) ;;
    *) die "--aishell2 must be true or false, got '${aishell2}'" ;;
esac
[ -f sllm.sh ] && [ -f local/data.sh ] || die "run me from egs2/aishell_wmt/asr1"

if [ "${aishell2}" = true ]; then
    test_sets="aishell_test aishell2_test"
    corpora=aishell,aishell2,wmt19,alpaca_zh
else
    test_sets="aishell_test"
    corpora=aishell,wmt19,alpaca_zh
fi

./sllm.sh \
    --train_set aishell_train --valid_set aishell_dev --test_sets "${test_sets}" \
    --local_data_opts "--corpora ${corpora}${local_data_opts:+ ${local_data_opts}}" \
    "${args[@]+"${args[@]}"}"
