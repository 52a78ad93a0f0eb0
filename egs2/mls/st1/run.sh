#!/usr/bin/env bash
# Usage:
#   ./run.sh --system SYSTEM [--debug true|false] [--asr_model PTH] [--stage N] [--stop_stage M]
#            [--ngpu N] [--train_args "..."] [--pairs "en_de de_en ..."] [--local_data_opts "..."]
#            [any other option of sllm.sh: ./sllm.sh --help]
#   ./run.sh --stop_stage 3 [--pairs ...]                         # data only (no --system)
#
# egs2/mls/st1: CoVoST 2 speech translation of Ideal-LLM (Xue et al.): the asr1 model (dual
# Whisper + MMS encoders, language-adapted connector, frozen Phi-3-mini) trained further on the
# five directions en->de, de->en, es->en, fr->en, it->en combined; BLEU per direction
# (sacrebleu, 13a, cased) and their unweighted average (Table II).
#
# Systems (conf/tuning/<system>.yaml + _debug twins, written by ../asr1/local/make_configs.py):
#   baseline, base, large   from asr1's model of the same name, direct prompt "Translate the
#                           speech to {German|English}." (paper avg 33.24 / 33.70 / 34.30)
#   base_cot, large_cot     from asr1's base / large, chain-of-thought prompt ("First transcribe
#                           ..., and then translate ...") and target "<transcript> Translation:
#                           <translation>"; scored on the text after the first "Translation:"
#                           (hyp_marker of the config; a hypothesis without it counts as empty)
#                           (35.88 / 36.78)
#
# What run.sh adds to sllm.sh:
#   * stage 1: local/data.sh (CoVoST 2 + Common Voice 4: text = transcript, text_tgt =
#     translation, utt2lang, utt2tgtlang, utt2task st); data/train and data/dev = all pairs;
#   * stages 4-10 of --system: --init_param <asr_model> (the asr1 checkpoint: the connector's
#     weights; the frozen parts load from their checkpoints), train conf/tuning/<system>.yaml,
#     decode valid.acc.ave.pth with conf/decode.yaml (COT: conf/decode_cot.yaml, twice the
#     tokens), score BLEU per direction; then <expdir>/RESULTS.md: one row per system, columns
#     en-de de-en es-en fr-en it-en and Avg, the paper's numbers beside ours; for the COT
#     systems also the WER of the transcript part (text before "Translation:") per direction;
#   * --debug true: espeak-ng Common Voice 4 + CoVoST 2 tables in the release layouts (python -m
#     espnet_sllm.data.synth.mls) in downloads/{cv4,covost2}_debug; the model starts from
#     ../asr1/exp_debug (run asr1's ./run.sh --system <S> --debug true first; the tiny frozen
#     checkpoints and tokenizer are asr1's); CPU.
#
# Options:
#   --asr_model PTH   the asr1 checkpoint to start from (default:
#                     ../asr1/<exp|exp_debug>/sllm_<system without _cot>/valid.acc.ave.pth,
#                     ESPnet's link to valid.acc.ave_5best.pth); missing: an error
#   --pairs "P1 ..."  <src>_<tgt> pairs (default: en_de de_en es_en fr_en it_en)
#   --local_data_opts "..."   more options of local/data.sh (see local/data.sh --help)
#
# Examples:
#   COMMONVOICE=/db/cv4 COVOST2=/db/covost2 ./run.sh --system large_cot   # after asr1 large
#   ./run.sh --system base_cot --debug true
#   ./run.sh --stage 1 --stop_stage 3                                     # data only
set -euo pipefail

system=
debug=false
asr_model=
stage=1
stop_stage=10
ngpu=
train_args=
pairs="en_de de_en es_en fr_en it_en"
local_data_opts=""
own_options="system debug asr_model stage stop_stage ngpu train_args pairs local_data_opts"
# shellcheck disable=SC1091
. scripts/utils/split_options.sh
die() { echo "$0: ERROR: $*" >&2; exit 1; }
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (run.sh:${BASH_LINENO[0]}) $*" >&2; }

# Keep equal to ST_SYSTEMS of ../asr1/local/make_configs.py (tests/recipe/test_mls_configs.py).
systems="baseline base large base_cot large_cot"
case "${debug}" in true|false) ;; *) die "--debug must be true or false, got '${debug}'" ;; esac
for v in stage stop_stage; do
    case "${!v}" in ''|*[!0-9]*) die "--${v} must be a number, got '${!v}'" ;; esac
done
if [ -n "${system}" ] && ! [[ " ${systems} " == *" ${system} "* ]]; then
    die "unknown --system '${system}'; valid: ${systems}"
fi
if [ -z "${system}" ] && [ "${stop_stage}" -ge 4 ]; then
    die "stages 4-10 need --system (one of: ${systems}); without it run the data stages" \
        "only (--stop_stage 3)"
fi
[ -f sllm.sh ] && [ -f local/data.sh ] && [ -f conf/decode.yaml ] || die "run me from egs2/mls/st1"

# shellcheck disable=SC1091
. ./path.sh
python=${PYTHON:-python3}

pairs=$(echo "${pairs//,/ }" | xargs)
[ -n "${pairs}" ] || die "--pairs is empty"
test_sets=""
for pair in ${pairs}; do
    # (which pairs exist is checked by local/data.sh, with the list of valid ones)
    [[ ${pair} =~ ^[A-Za-z-]+_[A-Za-z-]+$ ]] \
        || die "--pairs: '${pair}' is not <src>_<tgt> (e.g. fr_en)"
    test_sets+="${test_sets:+ }covost_${pair}_test"
done

if [ "${debug}" = true ]; then
    suffix=_debug
    expdir=exp_debug
    dumpdir=dump_debug
    ngpu=${ngpu:-0}
    extra=(--gpu_inference false --nj 2 --inference_nj 1)
    export COMMONVOICE=downloads/cv4_debug
    export COVOST2=downloads/covost2_debug
else
    suffix=
    expdir=exp
    dumpdir=dump
    ngpu=${ngpu:-8}
    extra=(--gpu_inference "$([ "${ngpu}" -gt 0 ] && echo true || echo false)")
    if [ -z "${train_args}" ] && [ "${ngpu}" -gt 1 ]; then
        train_args="--multiprocessing_distributed true"
    fi
fi
decode_config=conf/decode.yaml
[[ ${system} == *_cot ]] && decode_config=conf/decode_cot.yaml

min() { [ "$1" -le "$2" ] && echo "$1" || echo "$2"; }
max() { [ "$1" -ge "$2" ] && echo "$1" || echo "$2"; }

sllm() {
    local first=$1 last=$2
    shift 2
    [ "${first}" -le "${last}" ] || return 0
    ./sllm.sh --stage "${first}" --stop_stage "${last}" \
        --train_set train --valid_set dev --test_sets "${test_sets}" \
        --local_data_opts "--pairs ${pairs// /,}${local_data_opts:+ ${local_data_opts}}" \
        --dumpdir "${dumpdir}" --expdir "${expdir}" --ngpu "${ngpu}" "${extra[@]}" \
        --inference_config "${decode_config}" --inference_model valid.acc.ave.pth \
        --score_opts "--normalizer lower_nopunct" \
        "$@" "${args[@]+"${args[@]}"}"
}

if [ "${debug}" = true ] && [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "Debug corpora: espeak-ng Common Voice 4 + CoVoST 2 tables -> ${COMMONVOICE}, ${COVOST2}"
    ${python} -m espnet_sllm.data.synth.mls --cv_out "${COMMONVOICE}" \
        --covost_out "${COVOST2}" --nj 2
fi
sllm "${stage}" "$(min 3 "${stop_stage}")" --train_args "${train_args}"
[ "${stop_stage}" -ge 4 ] || exit 0

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    asr_model=${asr_model:-../asr1/${expdir}/sllm_${system%_cot}/valid.acc.ave.pth}
    [ -f "${asr_model}" ] || die "st1 --system ${system} starts from the asr1 model" \
        "${asr_model}, which does not exist: run ../asr1/run.sh --system ${system%_cot}" \
        "$([ "${debug}" = true ] && echo "--debug true ")first, or give --asr_model"
    # A path that stays valid in the exp dir's run.sh.cmd (ESPnet resolves it at start).
    asr_model=$(cd "$(dirname "${asr_model}")" && pwd)/$(basename "${asr_model}")
    train_args="--init_param ${asr_model}${train_args:+ ${train_args}}"
fi
sllm "$(max 4 "${stage}")" "${stop_stage}" --train_config "conf/tuning/${system}${suffix}.yaml" \
    --tag "${system}" --stats_dir "${expdir}/stats_${system}" --train_args "${train_args}"

if [ "${stop_stage}" -ge 9 ]; then
    cells=${expdir}/cells.tsv
    : > "${cells}"
    table="Ideal-LLM on CoVoST 2: BLEU per direction (Table II)"
    for s in ${systems}; do
        exp=${expdir}/sllm_${s}
        [ -d "${exp}" ] || continue
        files=
        for t in ${test_sets}; do
            f=$( (ls "${exp}"/decode_*/"${t}"/scores.json 2>/dev/null || true) | head -1)
            f=${f:-${exp}/decode_*/${t}/scores.json}
            files+="${files:+,}${f}"
            c=${t#covost_}
            c=${c%_test}
            printf '%s\t%s\t%s\t%s\tst/BLEU\n' "${table}" "${s}" "${c/_/-}" "${f}" >> "${cells}"
        done
        # the paper's average as printed (Table II)
        case ${s} in
            baseline) avg=33.24 ;; base) avg=33.70 ;; large) avg=34.30 ;;
            base_cot) avg=35.88 ;; large_cot) avg=36.78 ;;
        esac
        printf '%s\t%s\tAvg\t%s\tmean:%s@st/BLEU\n' "${table}" "${s}" "${files}" "${avg}" \
            >> "${cells}"
    done
    # COT systems: WER of the transcript their hypotheses start with (sllm.sh stage 9 scores the
    # text before "Translation:" against the source transcript; the paper reports none).
    table="COT transcript WER % per source language (ours; not in the paper)"
    for s in ${systems}; do
        exp=${expdir}/sllm_${s}
        [ "${s%_cot}" != "${s}" ] && [ -d "${exp}" ] || continue
        files=
        for t in ${test_sets}; do
            f=$( (ls "${exp}"/decode_*/"${t}_transcript"/scores.json 2>/dev/null || true) | head -1)
            f=${f:-${exp}/decode_*/${t}_transcript/scores.json}
            files+="${files:+,}${f}"
            c=${t#covost_}
            c=${c%_test}
            printf '%s\t%s\t%s\t%s\n' "${table}" "${s}" "${c/_/-}" "${f}" >> "${cells}"
        done
        printf '%s\t%s\tAvg\t%s\tmean\n' "${table}" "${s}" "${files}" >> "${cells}"
    done
    ${python} -m espnet_sllm.bin.results_grid --spec "${cells}" --out "${expdir}/RESULTS.md" \
        --title "Xue et al. (Ideal-LLM), egs2/mls/st1${suffix}"
    cat "${expdir}/RESULTS.md"
fi
log "Successfully finished: --system '${system}' --debug ${debug} (stages ${stage}-${stop_stage})" \
    "[elapsed=${SECONDS}s]"
