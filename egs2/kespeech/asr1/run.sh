#!/usr/bin/env bash
# Usage:
#   ./run.sh [--wenetspeech true|false] [--stage N] [--stop_stage M] [--train_config CONF]
#            [any other option of sllm.sh: ./sllm.sh --help]
#
# egs2/kespeech/asr1: Xu et al., a self-supervised speech encoder (data2vec2) + projector +
# Qwen2 LLM for Chinese dialect ASR, trained on KeSpeech (Mandarin and eight subdialects) and
# scored with the CER on the KeSpeech test set (per subdialect) and on WenetSpeech's
# test_net / test_meeting.  See README.md.
#
# Sets given to sllm.sh: --train_set train (KeSpeech train_phase1 + train_phase2),
# --valid_set dev (dev_phase1 + dev_phase2), --test_sets "test test_net test_meeting"
# ("test" only with --wenetspeech false).  Corpus roots: db.sh (KESPEECH, WENETSPEECH).
#
# Options of this script:
#   --wenetspeech true|false   prepare and decode WenetSpeech test_net / test_meeting; with
#                              true, stage 1 fails clearly when WENETSPEECH is missing
#                              (default: true)
# Every other option goes to sllm.sh unchanged, after this script's defaults (so it wins).
# The model and training configs come with the recipe's model issue; until then stages 1-3
# (data) run without --train_config, and a --train_config you give is passed on.
#
# Examples:
#   KESPEECH=/db/KeSpeech WENETSPEECH=/db/WenetSpeech ./run.sh --stage 1 --stop_stage 3
#   KESPEECH=/db/KeSpeech ./run.sh --wenetspeech false --stage 1 --stop_stage 1
set -euo pipefail

wenetspeech=true
own_options="wenetspeech"
# shellcheck disable=SC1091
. scripts/utils/split_options.sh
die() { echo "$0: ERROR: $*" >&2; exit 1; }
case "${wenetspeech}" in
    true|false) ;;
    *) die "--wenetspeech must be true or false, got '${wenetspeech}'" ;;
esac
[ -f sllm.sh ] && [ -f local/data.sh ] || die "run me from egs2/kespeech/asr1"

test_sets="test"
[ "${wenetspeech}" = true ] && test_sets="test test_net test_meeting"

./sllm.sh \
    --train_set train --valid_set dev --test_sets "${test_sets}" \
    --local_data_opts "--wenetspeech ${wenetspeech}" \
    "${args[@]+"${args[@]}"}"
