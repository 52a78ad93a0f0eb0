#!/usr/bin/env bash
# Usage:
#   local/data.sh [--pairs "en_de de_en es_en fr_en it_en"] [--data_dir data]
#                 [--work_dir data/local/covost2] [--strict true|false]
#
# Stage 1 of egs2/mls/st1: makes the Kaldi data directories of CoVoST 2 speech translation
# (corpus roots in db.sh: ${COMMONVOICE}, ${COVOST2}; both overridable from the environment).
#   1. for each pair <src>_<tgt>: ${COVOST2}/covost_v2.<src>_<tgt>.tsv (or its .tsv.tar.gz,
#      extracted into --work_dir) joined with ${COMMONVOICE}/<src>/validated.tsv and the clips
#      of ${COMMONVOICE}/<src>/clips -> <data_dir>/covost_<src>_<tgt>_{train,dev,test}
#      (train = CoVoST splits train + train_covost), read by `python -m espnet_sllm.data.corpora.covost2`:
#      text = transcript, text_tgt = translation, utt2task = st, utt2lang = <src>, and
#      utt2tgtlang = <tgt> (the target language, written by this script: stage 2 carries it
#      as the sample's tgt_lang, and scoring reads it per utterance);
#   2. <data_dir>/train = the train sets of all pairs, <data_dir>/dev = their dev sets (one model
#      for all directions), each with the utt2tgtlang of its pairs; the test sets stay per
#      pair, for BLEU per direction.
# Rows are dropped and counted (printed) when their translation or transcript is empty, when
# their clip is not in validated.tsv, when the MP3 file is missing, or when they hold bytes
# that are not UTF-8; malformed tables are errors naming file:line.
#
# Options:
#   --pairs "P1 P2 ..."   <src>_<tgt> pairs, separated by spaces or commas
#                         (default: "en_de de_en es_en fr_en it_en", Ideal-LLM's directions)
#   --data_dir DIR        where the data directories go                  (default: data)
#   --work_dir DIR        where a table found only as .tsv.tar.gz is extracted (the corpus
#                         folder may be read-only)             (default: data/local/covost2)
#   --strict true|false   true: a row the reader would drop and count is an error naming
#                         file:line and the reason                       (default: false)
#
# Run from the recipe directory (egs2/mls/st1).  Example:
#   COMMONVOICE=/db/cv-corpus-4-2019-12-10 COVOST2=/db/covost2 local/data.sh --pairs "fr_en"
set -euo pipefail

pairs="en_de de_en es_en fr_en it_en"
data_dir=data
work_dir=data/local/covost2
# shellcheck disable=SC1091
. scripts/utils/data_prep_common.sh
pairs=${pairs//,/ }
[ -n "${pairs// /}" ] || die "--pairs is empty"

# shellcheck disable=SC1091
[ -f ./path.sh ] && . ./path.sh
# shellcheck disable=SC1091
. ./db.sh

[ -d "${COMMONVOICE}" ] \
    || die "Common Voice root COMMONVOICE=${COMMONVOICE} does not exist: set COMMONVOICE to the" \
           "extracted Common Voice 4 release (cv-corpus-4-2019-12-10) holding <src>/validated.tsv" \
           "and <src>/clips/ for the source languages, e.g." \
           "'COMMONVOICE=/path/to/cv-corpus-4 ./run.sh' (see db.sh)"
[ -d "${COVOST2}" ] \
    || die "CoVoST 2 root COVOST2=${COVOST2} does not exist: set COVOST2 to the folder holding" \
           "covost_v2.<src>_<tgt>.tsv (or .tsv.tar.gz) for the pairs '${pairs}', e.g." \
           "'COVOST2=/path/to/covost2 ./run.sh' (see db.sh)"

mkdir -p "${data_dir}"
log "Reading CoVoST 2 pairs ${pairs} (${COVOST2}) with Common Voice ${COMMONVOICE}"
# shellcheck disable=SC2086
python -m espnet_sllm.data.corpora.covost2 --cv_root "${COMMONVOICE}" --covost_root "${COVOST2}" \
    --pairs ${pairs} --data_dir "${data_dir}" --work_dir "${work_dir}" --strict "${strict}"

# utt2tgtlang of every set of every pair: the pair's target language.
for pair in ${pairs}; do
    tgt=${pair#*_}
    for set in train dev test; do
        d=${data_dir}/covost_${pair}_${set}
        awk -v t="${tgt}" '{ print $1, t }' "${d}/utt2spk" >"${d}/utt2tgtlang"
    done
done

made=()
for set in train dev; do
    dirs=()
    for pair in ${pairs}; do dirs+=("${data_dir}/covost_${pair}_${set}"); done
    log "Combining ${dirs[*]} into ${data_dir}/${set}"
    python -m espnet_sllm.data.kaldi_dir combine --out "${data_dir}/${set}" "${dirs[@]}"
    # combine does not carry utt2tgtlang: the union of the pairs' (ids are unique: -<tgt>).
    for d in "${dirs[@]}"; do cat "${d}/utt2tgtlang"; done | LC_ALL=C sort \
        >"${data_dir}/${set}/utt2tgtlang"
    [ "$(wc -l <"${data_dir}/${set}/utt2tgtlang")" -eq "$(wc -l <"${data_dir}/${set}/utt2spk")" ] \
        || die "${data_dir}/${set}/utt2tgtlang does not cover ${data_dir}/${set}/utt2spk"
    made+=("${set}")
done
for pair in ${pairs}; do made+=("covost_${pair}_test"); done

log "Data directories:"
for name in "${made[@]}"; do
    d=${data_dir}/${name}
    echo "  ${d}: $(wc -l <"${d}/utt2spk") utterances; per source language:" \
        $(cut -d' ' -f2 "${d}/utt2lang" | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}') \
        "| per target language:" \
        $(cut -d' ' -f2 "${d}/utt2tgtlang" | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}')
done
log "Successfully finished. [elapsed=${SECONDS}s]"
