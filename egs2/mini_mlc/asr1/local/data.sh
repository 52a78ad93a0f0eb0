#!/usr/bin/env bash
# Usage:
#   local/data.sh [--size full|debug|learn] [--seed 0] [--nj 2] [--strict true|false]
#
# Stage 1 of egs2/mini_mlc/asr1: makes the Kaldi data directories data/{train,valid,test}.
#   1. synthesises the mini_mlc corpus (espeak-ng two-speaker conversations in English with
#      American and British accents, French, Japanese and Thai, in the MLC-SLM release layout)
#      under ${MINI_MLC} from db.sh (default downloads/mini_mlc, ${MINI_MLC}_debug with
#      other sizes: ${MINI_MLC}_<size>), unless a complete corpus of the same configuration is
#      already there;
#   2. reads each split with the MLC-SLM reader, exactly as the real corpus is read:
#        python -m espnet_sllm.data.corpora.mlc_slm --root <root>/<split> --out data/<split>
#   3. prints the number of recordings and utterances per set and language.
#
# Options:
#   --size full|debug|learn
#                        full: 5 language-accents, 1600 / 100 / 150 utterances (train / valid
#                        / test); debug: the same languages, 100 / 20 / 20 (CI: the stages
#                        run); learn: American English only, 400 / 20 / 30 (CI: a model that
#                        must learn, see run.sh --size learn)                (default: full)
#   --debug true|false   same as --size debug when true                      (default: false)
#   --seed N             random seed of the synthesis                        (default: 0)
#   --nj N               parallel synthesis processes                        (default: 2)
#   --strict true|false  true: a segment the reader would drop and count is an error
#                        naming file:line and the reason                     (default: false)
#
# Run from the recipe directory (egs2/mini_mlc/asr1).  Needs espeak-ng (tools/install_debian.sh).
set -euo pipefail

size=full
debug=false
seed=0
nj=2
# shellcheck disable=SC1091
. scripts/utils/data_prep_common.sh

# shellcheck disable=SC1091
[ -f ./path.sh ] && . ./path.sh
# shellcheck disable=SC1091
. ./db.sh

case "${debug}" in true) size=debug ;; false) ;; *) die "--debug must be true or false" ;; esac
root=${MINI_MLC}
synth_opts=(--seed "${seed}" --nj "${nj}")
case "${size}" in
    full) ;;
    debug) root=${MINI_MLC}_debug; synth_opts+=(--debug) ;;
    # One accent and 4x the debug data: enough for a from-scratch model to learn in minutes.
    learn) root=${MINI_MLC}_learn
           synth_opts+=(--langs English-American --n_train_sessions 40 --n_valid_sessions 2
                        --n_test_sessions 3 --turns_per_session 10) ;;
    *) die "--size must be full, debug or learn, not '${size}'" ;;
esac

log "Synthesising mini_mlc under ${root} (skipped when complete)"
python -m espnet_sllm.data.synth.conversations --out "${root}" "${synth_opts[@]}"

for split in train valid test; do
    log "Reading ${root}/${split} into data/${split}"
    python -m espnet_sllm.data.corpora.mlc_slm --root "${root}/${split}" --out "data/${split}" \
        --strict "${strict}"
done

log "Data directories:"
for split in train valid test; do
    d=data/${split}
    echo "  ${d}: $(wc -l <"${d}/wav.scp") recordings, $(wc -l <"${d}/text") utterances;" \
        "per language:" $(cut -d' ' -f2 "${d}/utt2lang" | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}')
done
log "Successfully finished. [elapsed=${SECONDS}s]"
