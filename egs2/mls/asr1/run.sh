#!/usr/bin/env bash
# Usage:
#   ./run.sh --system SYSTEM [--debug true|false] [--stage N] [--stop_stage M] [--ngpu N]
#            [--train_args "..."] [--langs "english german ..."] [--local_data_opts "..."]
#            [any other option of sllm.sh: ./sllm.sh --help]
#   ./run.sh --stop_stage 3 [--langs ...] [--local_data_opts ...]     # data only (no --system)
#
# egs2/mls/asr1: multilingual ASR on Multilingual LibriSpeech (8 languages), the ASR part of
# Ideal-LLM (Xue et al.): whisper-large-v3 and MMS (frozen), a Transformer adapter each, a
# language weight selector (LID adapter, w' = sigmoid(W[l])), conv1d 2x -> Phi-3-mini (frozen);
# loss (1-α)·CE + α·CTC + β·LID.  Only the connector trains.
#
# Systems (conf/tuning/<system>.yaml + _debug twins, written by local/make_configs.py):
#   baseline      Whisper branch only, no CTC, no LID                  train_en10k   (paper 11.59)
#   base          + mms-300m, language weight selector, α 0.1, β 0.05  train_en10k   (9.05)
#   base_no_ws    base with w' = 0.5 (selector: fixed), β 0            train_en10k   (9.30)
#   base_no_dual  Whisper only, α 0.1                                  train_en10k   (10.52)
#   large         mms-1b, 9-layer adapters                             train (all)   (7.81)
# train_en10k = 10 000 h of English (seeded random subset, durations from segments.txt) + the
# other seven languages in full; train = all of MLS; both language-balanced as XLSR (α = 0.5).
#
# What run.sh adds to sllm.sh:
#   * stage 1: local/data.sh with the system's training set (--max_hours en=10000
#     --train_name train_en10k, or the whole of MLS for large) and --balance_alpha 0.5;
#     the dev sets combined (data/dev) and the 8 test sets mls_<code>_test;
#   * stages 4-10 of --system: train conf/tuning/<system>.yaml (stats per system), decode
#     valid.acc.ave.pth (ESPnet's link to the average of the 5 best checkpoints by valid acc,
#     valid.acc.ave_5best.pth; a 1-epoch debug run averages the one it has) with
#     conf/decode.yaml (beam 4, batch 8), WER per language (normaliser lower_nopunct);
#     then <expdir>/RESULTS.md: one row per system trained so far, columns en ... pl and Avg
#     (the unweighted mean of the 8, as the paper's), the paper's numbers beside ours
#     (conf/paper_results.yaml); <expdir>/sllm_<system>/lid_accuracy.tsv (base, large: LID
#     accuracy per language on the test sets, espnet_sllm.bin.lid_accuracy); and
#     <expdir>/lang_weights.{tsv,png} (Fig. 2: sigmoid(W) per
#     language of base and large, whichever exist; espnet_sllm.bin.plot_lang_weights);
#     <expdir>/sllm_<system>/speech_embeddings/ (Fig. 3: E_speech per test utterance, at most
#     900 per language, and tsne.{tsv,png}; espnet_sllm.bin.speech_embeddings);
#   * --debug true: espeak-ng MLS in the release layout (python -m espnet_sllm.data.synth.mls)
#     in downloads/mls_debug (MLS points there); after stage 3 tiny random Whisper (128 mel),
#     MMS (wav2vec 2.0) and Phi-3 checkpoints in exp_debug/tiny (python -m
#     espnet_sllm.testing.tiny_checkpoints); English capped at 0.004 h; CPU; dump_debug/ and
#     exp_debug/.
#
# Defaults: full size --ngpu 8 (--train_args "--multiprocessing_distributed true" unless
# given), GPU decoding; debug: CPU.
#
# Options:
#   --langs "L1 L2 ..."       MLS folder names (mls_<name>), space or comma separated
#                             (default: english german dutch french spanish italian
#                             portuguese polish)
#   --local_data_opts "..."   more options of local/data.sh (see local/data.sh --help)
#
# Examples:
#   MLS=/db/mls ./run.sh --system base                     # stages 1-10
#   ./run.sh --system base_no_ws --debug true --stage 6 --stop_stage 9
#   MLS=/db/mls ./run.sh --stage 1 --stop_stage 1 --langs "german polish" \
#       --local_data_opts "--balance_alpha 0.5"            # data preparation only
set -euo pipefail

system=
debug=false
stage=1
stop_stage=10
ngpu=
train_args=
langs="english german dutch french spanish italian portuguese polish"
local_data_opts=""
own_options="system debug stage stop_stage ngpu train_args langs local_data_opts"
# shellcheck disable=SC1091
. scripts/utils/split_options.sh
die() { echo "$0: ERROR: $*" >&2; exit 1; }
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (run.sh:${BASH_LINENO[0]}) $*" >&2; }

# Keep equal to ASR_SYSTEMS of local/make_configs.py (tests/recipe/test_mls_configs.py checks).
systems="baseline base base_no_ws base_no_dual large"
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
[ -f sllm.sh ] && [ -f local/data.sh ] && [ -f conf/decode.yaml ] || die "run me from egs2/mls/asr1"

# shellcheck disable=SC1091
. ./path.sh
python=${PYTHON:-python3}

langs=$(echo "${langs//,/ }" | xargs)
[ -n "${langs}" ] || die "--langs is empty"
# The ISO codes name the test sets; this also rejects an unknown language early.
# shellcheck disable=SC2086
codes=$(${python} -m espnet_sllm.data.corpora.mls --print_codes ${langs}) \
    || die "--langs: see the error above"
test_sets=""
for c in ${codes}; do test_sets+="${test_sets:+ }mls_${c}_test"; done

if [ "${debug}" = true ]; then
    suffix=_debug
    expdir=exp_debug
    dumpdir=dump_debug
    ngpu=${ngpu:-0}
    en_hours=0.004
    extra=(--gpu_inference false --nj 2 --inference_nj 1)
    export MLS=downloads/mls_debug
else
    suffix=
    expdir=exp
    dumpdir=dump
    ngpu=${ngpu:-8}
    en_hours=10000
    extra=(--gpu_inference "$([ "${ngpu}" -gt 0 ] && echo true || echo false)")
    if [ -z "${train_args}" ] && [ "${ngpu}" -gt 1 ]; then
        train_args="--multiprocessing_distributed true"
    fi
fi

# The system's training set; without --system (data only) the local/data.sh defaults.
train_set=train
data_opts="--langs ${langs// /,}"
if [ -n "${system}" ]; then
    data_opts+=" --balance_alpha 0.5"
    if [ "${system}" != large ]; then
        train_set=train_en10k
        data_opts+=" --max_hours en=${en_hours} --train_name train_en10k"
    fi
fi
# sllm.sh word-splits --local_data_opts (no quoting); the user's options come last (local/data.sh
# keeps the last value of an option).
data_opts+="${local_data_opts:+ ${local_data_opts}}"

min() { [ "$1" -le "$2" ] && echo "$1" || echo "$2"; }
max() { [ "$1" -ge "$2" ] && echo "$1" || echo "$2"; }

# sllm <first stage> <last stage> [options]: one sllm.sh call (nothing when first > last); the
# user's options come last, so they win over this script's defaults.
sllm() {
    local first=$1 last=$2
    shift 2
    [ "${first}" -le "${last}" ] || return 0
    ./sllm.sh --stage "${first}" --stop_stage "${last}" \
        --train_set "${train_set}" --valid_set dev --test_sets "${test_sets}" \
        --local_data_opts "${data_opts}" --dumpdir "${dumpdir}" --expdir "${expdir}" \
        --ngpu "${ngpu}" "${extra[@]}" --train_args "${train_args}" \
        --inference_config conf/decode.yaml --inference_model valid.acc.ave.pth \
        --score_opts "--normalizer lower_nopunct" \
        "$@" "${args[@]+"${args[@]}"}"
}

if [ "${debug}" = true ] && [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "Debug corpus: espeak-ng MLS (8 languages) in the release layout -> ${MLS}"
    ${python} -m espnet_sllm.data.synth.mls --mls_out "${MLS}" --nj 2
fi
sllm "${stage}" "$(min 3 "${stop_stage}")"
[ "${stop_stage}" -ge 4 ] || exit 0

if [ "${debug}" = true ]; then
    # One set of tiny checkpoints for every system (and st1): the tokenizer learns the text of
    # every language's training set and every debug config's prompts, whichever system runs.
    log "Tiny random Whisper (128 mel) + MMS + Phi-3 -> ${expdir}/tiny"
    texts=()
    for c in ${codes}; do
        [ -f "data/mls_${c}_train/text" ] || die "missing data/mls_${c}_train/text: run stage 1"
        texts+=("data/mls_${c}_train/text")
    done
    ${python} -m espnet_sllm.testing.tiny_checkpoints --out "${expdir}/tiny" \
        --encoder whisper_mms --llm_family phi3 --sentences_from "${texts[@]}" \
        --prompt_config conf/tuning/*_debug.yaml ../st1/conf/tuning/*_debug.yaml
fi

sllm "$(max 4 "${stage}")" "${stop_stage}" --train_config "conf/tuning/${system}${suffix}.yaml" \
    --tag "${system}" --stats_dir "${expdir}/stats_${system}"

if [ "${stop_stage}" -ge 9 ]; then
    # RESULTS.md: every system decoded so far, one row each (cells: espnet_sllm/scoring/grid.py).
    cells=${expdir}/cells.tsv
    : > "${cells}"
    table="Ideal-LLM on MLS: WER per language (Table I, Table III)"
    for s in ${systems}; do
        exp=${expdir}/sllm_${s}
        [ -d "${exp}" ] || continue
        files=
        for t in ${test_sets}; do
            f=$( (ls "${exp}"/decode_*/"${t}"/scores.json 2>/dev/null || true) | head -1)
            f=${f:-${exp}/decode_*/${t}/scores.json}
            files+="${files:+,}${f}"
            c=${t#mls_}
            printf '%s\t%s\t%s\t%s\n' "${table}" "${s}" "${c%_test}" "${f}" >> "${cells}"
        done
        # The paper's Avg as printed (Tables I, III; the ablations give only this number;
        # the baseline's 11.59 is not the mean 11.08 of its row: README.md).
        case ${s} in
            baseline) avg=11.59 ;; base) avg=9.05 ;; base_no_ws) avg=9.30 ;;
            base_no_dual) avg=10.52 ;; large) avg=7.81 ;;
        esac
        printf '%s\t%s\tAvg\t%s\tmean:%s\n' "${table}" "${s}" "${files}" "${avg}" >> "${cells}"
    done
    ${python} -m espnet_sllm.bin.results_grid --spec "${cells}" --out "${expdir}/RESULTS.md" \
        --title "Xue et al. (Ideal-LLM), egs2/mls/asr1${suffix}"
    cat "${expdir}/RESULTS.md"

    # LID accuracy per language of this system's LID adapter (base, large), on the test sets.
    if [ "${system}" = base ] || [ "${system}" = large ]; then
        lid_dirs=()
        for t in ${test_sets}; do lid_dirs+=(--data_dir "${dumpdir}/raw/${t}"); done
        ${python} -m espnet_sllm.bin.lid_accuracy --config "${expdir}/sllm_${system}/config.yaml" \
            --model "${expdir}/sllm_${system}/valid.acc.ave.pth" "${lid_dirs[@]}" \
            --device "$([ "${ngpu}" -gt 0 ] && echo cuda || echo cpu)" \
            --out "${expdir}/sllm_${system}/lid_accuracy.tsv"
    fi

    # Fig. 3: E_speech of this system per test utterance (<= 900 per language, seeded) and its
    # t-SNE map by language (ours: the MLS test sets; the paper's are Common Voice's, give them
    # by hand: python -m espnet_sllm.bin.speech_embeddings --data_dir <cv test dir> ...).
    emb_dirs=()
    for t in ${test_sets}; do emb_dirs+=(--data_dir "${dumpdir}/raw/${t}"); done
    ${python} -m espnet_sllm.bin.speech_embeddings --config "${expdir}/sllm_${system}/config.yaml" \
        --model "${expdir}/sllm_${system}/valid.acc.ave.pth" "${emb_dirs[@]}" --max_per_lang 900 \
        --device "$([ "${ngpu}" -gt 0 ] && echo cuda || echo cpu)" \
        --out_dir "${expdir}/sllm_${system}/speech_embeddings"

    # Fig. 2: the language weights of the systems with a selector.
    plot=()
    for s in base large; do
        m=${expdir}/sllm_${s}/valid.acc.ave.pth
        [ -f "${m}" ] && plot+=(--model "${m}" --label "${s}")
    done
    if [ "${#plot[@]}" -gt 0 ]; then
        ${python} -m espnet_sllm.bin.plot_lang_weights "${plot[@]}" --out_dir "${expdir}"
    fi
fi
log "Successfully finished: --system '${system}' --debug ${debug} (stages ${stage}-${stop_stage})" \
    "[elapsed=${SECONDS}s]"
