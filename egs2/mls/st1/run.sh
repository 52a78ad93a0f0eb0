#!/usr/bin/env bash
# Usage:
#   ./run.sh [--pairs "en_de de_en es_en fr_en it_en"] [--stage N] [--stop_stage M]
#            [--train_config conf/<config>.yaml] [--local_data_opts "..."]
#            [any other option of sllm.sh: ./sllm.sh --help]
#
# egs2/mls/st1: CoVoST 2 speech translation of Ideal-LLM (Xue et al.: dual Whisper + MMS
# encoders, language-adapted fusion, frozen Phi-3-mini): one model for the directions en->de,
# de->en, es->en, fr->en, it->en, decoded with and without a chain-of-thought prompt
# (transcribe, then translate), BLEU per direction (sacrebleu).
# Corpus roots: db.sh (COMMONVOICE: Common Voice 4 with <src>/validated.tsv and <src>/clips;
# COVOST2: covost_v2.<src>_<tgt>.tsv[.tar.gz]).
#
# What run.sh adds to sllm.sh: the sets of the chosen pairs --
#   --train_set train --valid_set dev (all pairs combined by local/data.sh)
#   --test_sets "covost_<src>_<tgt>_test ..." (one per pair)
#   --local_data_opts "--pairs <pairs> <your --local_data_opts>"
# Every other option goes to sllm.sh unchanged (given after these, so yours win, e.g.
# --test_sets).  The training and decoding configs of this recipe come with its model issue;
# until then stages 1-3 (data) run without one:
#   ./run.sh --stage 1 --stop_stage 1                       # data directories only
#   COVOST2=/db/covost2 COMMONVOICE=/db/cv-corpus-4 ./run.sh --pairs "fr_en de_en" \
#       --stage 1 --stop_stage 3
#   ./run.sh --train_config conf/<config>.yaml              # stages 1-10
set -euo pipefail

pairs="en_de de_en es_en fr_en it_en"
local_data_opts=""
own_options="pairs local_data_opts"
# shellcheck disable=SC1091
. scripts/utils/split_options.sh
die() { echo "$0: ERROR: $*" >&2; exit 1; }
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (run.sh:${BASH_LINENO[0]}) $*" >&2; }
[ -f sllm.sh ] && [ -f local/data.sh ] || die "run me from egs2/mls/st1"

pairs=$(echo "${pairs//,/ }" | xargs)
[ -n "${pairs}" ] || die "--pairs is empty"
test_sets=""
for pair in ${pairs}; do
    # (which pairs exist is checked by local/data.sh, with the list of valid ones)
    [[ ${pair} =~ ^[A-Za-z-]+_[A-Za-z-]+$ ]] \
        || die "--pairs: '${pair}' is not <src>_<tgt> (e.g. fr_en)"
    test_sets+="${test_sets:+ }covost_${pair}_test"
done

./sllm.sh \
    --train_set train --valid_set dev --test_sets "${test_sets}" \
    --local_data_opts "--pairs ${pairs// /,} ${local_data_opts}" \
    "${args[@]+"${args[@]}"}"
log "Successfully finished: pairs ${pairs} [elapsed=${SECONDS}s]"
