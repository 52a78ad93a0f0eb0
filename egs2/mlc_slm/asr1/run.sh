#!/usr/bin/env bash
# Usage:
#   ./run.sh --system baseline|s1|s2|s3|s4 [--debug true|false] [--stage N] [--stop_stage M]
#   ./run.sh --system ilt_whisper|ilt_qwen2audio [--rounds focus,feedback,fix|none] ... (ILT:
#            see local/run_ilt.sh --help)
#            [--ngpu N] [--train_args "..."] [any other option of sllm.sh: ./sllm.sh --help]
#
# egs2/mlc_slm/asr1: the systems of Table 3 of Peng, Liu, Chng, "Bi-directional Context-Enhanced
# Speech LLMs for Multilingual Conversational ASR" (MLC-SLM 2025): Whisper-large-v3 (frozen) ->
# 2-layer MLP with 5x frame stacking -> Gemma-2-2B (fully fine-tuned), on the MLC-SLM corpus.
#
#   baseline  the English prompt "Transcribe speech to text." for every language
#   s1        the prompt in the utterance's language (11 languages)
#   s2        s1 + history context in the prompt; trained on train_ctx2x (below)
#   s3        s1 + history + future context; trained on train_ctx2x
#   s4        s1's prompts, trained on MLC-SLM train + Common Voice 21.0 train (train_cv)
#
# Training configs: conf/tuning/<system>.yaml (full size, GPUs) and <system>_debug.yaml (CPU),
# written by local/make_configs.py from one prompt table.  What run.sh adds to sllm.sh:
#   * the system's config and training set; s4 reads Common Voice in stage 1
#     (local/data.sh --use_cv true, corpus root COMMONVOICE in db.sh);
#   * s2/s3: after stage 3, <dumpdir>/raw/train_ctx2x = every utterance of <dumpdir>/raw/train
#     with its context + a context-free copy "<utt>-noctx" (python -m
#     espnet_sllm.data.context_copy; the copies point to the same WAVs: no audio is duplicated),
#     the paper's "single-segment set + contextual copy"; stages 4-6 train on it;
#   * s2/s3: stage 8 runs twice: --context_source hypothesis (the paper's Stage2: context from the
#     stage-7 hypotheses of the neighbouring segments) and reference (Stage2-G: ground-truth
#     context, the upper bound); stage 9 scores the three decodings (Stage1 = stage 7) with WER,
#     and CER for Japanese, Korean and Thai (by utt2lang), per language/accent and MER;
#   * --debug true: synthesises a tiny two-speaker corpus with espeak-ng in the real release
#     layout (MLC-SLM_Workshop-Training_Set_1, -Development_Set, -Evaluation_Set) into
#     downloads/mlc_slm_debug and points MLC_SLM there (s4: a Common Voice-layout corpus into
#     downloads/cv_debug, COMMONVOICE), then after stage 3 writes tiny random checkpoints of
#     the real architectures to exp_debug/tiny/{whisper,gemma2} (python -m
#     espnet_sllm.testing.tiny_checkpoints; tokenizer trained on data/train/text and the
#     prompts of every debug config), which the *_debug.yaml configs load; CPU only, one epoch
#     of 10 steps, dump_debug/ and exp_debug/.
#
# Defaults: full size: --ngpu 8 --gpu_inference true --train_args "--multiprocessing_distributed
# true" (give --train_args yourself to replace it), --test_sets dev (add the evaluation set with
# --test_sets "dev eval" when data/eval exists, see local/data.sh --eval_sets); debug: CPU,
# --test_sets "dev eval".  The development set is also the validation set (early stopping),
# as in the paper, which reports it.
#
# Examples:
#   ./run.sh --system s3 --debug true                      # CI-sized run of every stage
#   MLC_SLM=/db/mlc_slm ./run.sh --system s3               # the paper's S3 (8 GPUs)
#   MLC_SLM=/db/mlc_slm COMMONVOICE=/db/cv-corpus-21.0 ./run.sh --system s4
#   ./run.sh --system s3 --stage 7 --stop_stage 9          # decode and score again
#   ./run.sh --system s1 --ngpu 1 --train_args "--accum_grad 8"   # one GPU, same batch
#
# Per-system timing of the debug runs: see README.md of this recipe; `make mlc-slm-debug` runs
# the five debug systems.
set -euo pipefail

# The ILT systems (Iterative LoRA Training: whole Whisper / Qwen2-Audio models, three merged
# LoRA rounds, data steps between them) have their own driver: local/run_ilt.sh --help.
for ((_i = 1; _i <= $#; _i++)); do
    _j=$((_i + 1))
    case "${!_i}" in
        --system=ilt_*) exec local/run_ilt.sh "$@" ;;
        --system) case "${!_j:-}" in ilt_*) exec local/run_ilt.sh "$@" ;; esac ;;
    esac
done

system=
debug=false
stage=1
stop_stage=10
ngpu=
train_args=
own_options="system debug stage stop_stage ngpu train_args"
# shellcheck disable=SC1091
. scripts/utils/split_options.sh
die() { echo "$0: ERROR: $*" >&2; exit 1; }
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (run.sh:${BASH_LINENO[0]}) $*" >&2; }
case "${system}" in
    baseline|s1|s2|s3|s4) ;;
    "") die "--system is required: baseline, s1, s2, s3, s4, ilt_whisper or ilt_qwen2audio (see $0 --help)" ;;
    *) die "--system must be baseline, s1, s2, s3, s4, ilt_whisper or ilt_qwen2audio, got '${system}'" ;;
esac
case "${debug}" in true|false) ;; *) die "--debug must be true or false, got '${debug}'" ;; esac
for v in stage stop_stage; do
    case "${!v}" in ''|*[!0-9]*) die "--${v} must be a number, got '${!v}'" ;; esac
done
[ -f sllm.sh ] && [ -f conf/decode.yaml ] || die "run me from egs2/mlc_slm/asr1"

# shellcheck disable=SC1091
. ./path.sh
python=${PYTHON:-python3}

data_train_set=train        # the set of stages 1-3
train_set=train             # the set stages 4-6 train on
local_data_opts=""
context=false
case "${system}" in
    s2|s3) train_set=train_ctx2x; context=true ;;
    s4) data_train_set=train_cv; train_set=train_cv; local_data_opts="--use_cv true" ;;
esac

if [ "${debug}" = true ]; then
    train_config=conf/tuning/${system}_debug.yaml
    expdir=exp_debug
    dumpdir=dump_debug
    test_sets="dev eval"
    ngpu=${ngpu:-0}
    extra=(--gpu_inference false)
    export MLC_SLM=downloads/mlc_slm_debug
    export COMMONVOICE=downloads/cv_debug
else
    train_config=conf/tuning/${system}.yaml
    expdir=exp
    dumpdir=dump
    test_sets="dev"
    ngpu=${ngpu:-8}
    extra=(--gpu_inference "$([ "${ngpu}" -gt 0 ] && echo true || echo false)")
    if [ -z "${train_args}" ] && [ "${ngpu}" -gt 1 ]; then
        train_args="--multiprocessing_distributed true"
    fi
fi

min() { [ "$1" -le "$2" ] && echo "$1" || echo "$2"; }
max() { [ "$1" -ge "$2" ] && echo "$1" || echo "$2"; }

# sllm <first stage> <last stage> [options]: one sllm.sh call (nothing when first > last); the
# user's options come last, so they win over this script's defaults.
sllm() {
    local first=$1 last=$2
    shift 2
    [ "${first}" -le "${last}" ] || return 0
    ./sllm.sh \
        --stage "${first}" --stop_stage "${last}" \
        --train_set "${train_set}" --valid_set dev --test_sets "${test_sets}" \
        --local_data_opts "${local_data_opts}" \
        --dumpdir "${dumpdir}" --expdir "${expdir}" --stats_dir "${expdir}/stats_${system}" \
        --ngpu "${ngpu}" "${extra[@]}" \
        --train_config "${train_config}" --train_args "${train_args}" \
        --inference_config conf/decode.yaml --inference_model valid.acc.best.pth \
        --max_sec 30 \
        "$@" "${args[@]+"${args[@]}"}"
}

if [ "${debug}" = true ] && [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "Debug corpus: espeak-ng conversations in the MLC-SLM release layout -> ${MLC_SLM}"
    ${python} -m espnet_sllm.data.synth.conversations --out "${MLC_SLM}" --debug \
        --release_layout --nj 2
    if [ "${system}" = s4 ]; then
        log "Debug corpus: single read sentences in the Common Voice layout -> ${COMMONVOICE}"
        ${python} -m espnet_sllm.data.synth.conversations --out "${COMMONVOICE}" --debug \
            --common_voice --nj 2
    fi
fi

# Stages 1-3: data preparation, formatting, filtering of the single-segment sets.
_train=${train_set}
train_set=${data_train_set}
sllm "${stage}" "$(min 3 "${stop_stage}")"
train_set=${_train}

if [ "${stop_stage}" -ge 4 ] && [ "${stage}" -le 6 ] && [ "${context}" = true ]; then
    log "The 2x context training set: ${dumpdir}/raw/train (with context) + a context-free copy"
    [ -f "${dumpdir}/raw/train/wav.scp" ] || die "missing ${dumpdir}/raw/train: run stages 1-3"
    ${python} -m espnet_sllm.data.context_copy --in "${dumpdir}/raw/train" \
        --out "${dumpdir}/raw/${train_set}"
fi
if [ "${stop_stage}" -ge 4 ] && [ "${debug}" = true ]; then
    log "Tiny random checkpoints of Whisper-large-v3 / Gemma-2 architectures -> ${expdir}/tiny"
    [ -f data/train/text ] || die "missing data/train/text: run stage 1"
    # The same tokenizer text for every system (all debug configs' prompts), so that the
    # systems share one tokenizer and one system's run never rewrites another's checkpoints.
    ${python} -m espnet_sllm.testing.tiny_checkpoints --out "${expdir}/tiny" \
        --sentences_from data/train/text --prompt_config conf/tuning/*_debug.yaml
fi

if [ "${context}" = true ]; then
    # Stages 4-8 with the paper's Stage2 (hypothesis context), stage 8 again for Stage2-G.
    sllm "$(max 4 "${stage}")" "$(min 8 "${stop_stage}")" \
        --context_decoding true --context_source hypothesis
    if [ "${stage}" -le 8 ] && [ "${stop_stage}" -ge 8 ]; then
        sllm 8 8 --context_decoding true --context_source reference
    fi
    sllm "$(max 9 "${stage}")" "${stop_stage}"
else
    sllm "$(max 4 "${stage}")" "${stop_stage}"
fi
log "Successfully finished: --system ${system} --debug ${debug} (stages ${stage}-${stop_stage})" \
    "[elapsed=${SECONDS}s]"
