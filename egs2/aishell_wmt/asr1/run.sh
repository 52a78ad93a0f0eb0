#!/usr/bin/env bash
# Usage:
#   ./run.sh --system align|lora|dims --dataset 1|2|3 [--dims 3072|2048|1024] [--debug true]
#            [--aishell2 true|false] [--svd_topk "1000 300 200 100 50"] [--swap true|false]
#            [--stage N] [--stop_stage M] [--ngpu N] [--train_args "..."]
#            [--local_data_opts "..."] [any other option of sllm.sh: ./sllm.sh --help]
#   ./run.sh --paper true [--debug true] [...]     # the nine trainings of Tables 1-3, then RESULTS.md
#   ./run.sh --stop_stage 3 [--dataset N]          # data only (stage 1 reads and assembles the sets)
#   ./run.sh --stop_stage 1 --dataset none         # the readers only (no TTS, no assembled sets)
#
# egs2/aishell_wmt/asr1: Wu, Yan, Pu, "Transferable speech-to-text large language model alignment
# module": Whisper-large-v3 (frozen) -> ONE linear layer 1280 -> 4096 -> Yi-6B (frozen), trained
# multi-task on ASR (AISHELL-1), speech translation (WMT19 zh-en, speech by TTS), spoken and text
# question answering (Alpaca-zh, speech by TTS), with the prompts and special tokens of Fig. 2.
#
# Systems (configs conf/tuning/<config>.yaml, written by local/make_configs.py):
#   align    the alignment module (+ the 8 special-token rows) trains          align.yaml
#   lora     from align's best of the same dataset (--init_param), LoRA r 16 on Yi-6B trains;
#            run --system align --dataset N first                               lora.yaml
#   dims     align with only --dims d of the 4096 outputs trained               dims<d>.yaml
# Datasets (local/data.sh, stage 1): 1 = train_d1 (AISHELL-1 90 h + WMT19 100 h + Alpaca 30 h),
# 2 = train_d2 (AISHELL-1 178 h + WMT19 200 h + Alpaca 60 h), 3 = train_d3 (train_d2 + WenetSpeech
# M 200 h); each with the text-only qa copies of its Alpaca records.  Validation: valid_mt.  Tests:
# aishell2_test (ASR; aishell_test with --aishell2 false), newstest2019 (ST), alpaca_test (sqa + qa).
#
# What run.sh adds to sllm.sh:
#   * the system's config, training set and experiment <expdir>/sllm_<system>_d<N>
#     (dims: sllm_dims<d>_d<N>);
#   * align: stages 7-9 again with the LLM swapped for Yi-6B-Chat (§2.3.2; --swap false skips
#     it): sllm_inference --llm_conf model_name_or_path=01-ai/Yi-6B-Chat, decode_chat/; and,
#     on dataset 2 (or with --svd_topk), once per k with the top-k singular values of the
#     alignment module's output (§2.3.3): sllm_inference --svd_topk k, decode_svd<k>/;
#   * --paper true: align d1 d2 d3, lora d1 d2 d3, dims 3072 2048 1024 on d2, then
#     python local/make_tables.py: <expdir>/RESULTS.md shaped as Tables 1-3 (+ ours);
#   * --debug true: tiny corpora in the five release layouts spoken by espeak-ng (python -m
#     espnet_sllm.data.synth.aishell_wmt -> downloads/aishell_wmt_debug), every hour figure
#     scaled by 1/1800, tiny random Whisper (128 mel) and Llama checkpoints + a chat twin
#     (python -m espnet_sllm.testing.tiny_checkpoints --llm_family llama --chat_twin), CPU,
#     dump_debug/ and exp_debug/; debug k: 32 16 8 4 2.
#
# Defaults: full size --ngpu 8 (--train_args "--multiprocessing_distributed true" unless given),
# GPU decoding; one GPU: --ngpu 1 --train_args "--batch_size 16 --accum_grad 8" (the same 128
# utterances per update).  Corpus roots: db.sh (AISHELL, AISHELL2_TEST, WMT19, ALPACA_ZH,
# WENETSPEECH).
#
# Examples:
#   ./run.sh --system align --dataset 1 --debug true --svd_topk 8   # CI (make aishell-wmt-debug)
#   ./run.sh --paper true --debug true                              # make aishell-wmt-debug-all
#   AISHELL=… AISHELL2_TEST=… WMT19=… ALPACA_ZH=… WENETSPEECH=… ./run.sh --paper true --ngpu 8
#   ./run.sh --system align --dataset 2 --ngpu 1 --train_args "--batch_size 16 --accum_grad 8"
#   ./run.sh --system dims --dataset 2 --dims 2048; python local/make_tables.py --exp exp
set -euo pipefail

system=
dataset=
dims=
paper=false
debug=false
aishell2=true
svd_topk=
swap=true
local_data_opts=
stage=1
stop_stage=10
ngpu=
train_args=
own_options="system dataset dims paper debug aishell2 svd_topk swap local_data_opts stage"
own_options+=" stop_stage ngpu train_args"
# shellcheck disable=SC1091
. scripts/utils/split_options.sh
die() { echo "$0: ERROR: $*" >&2; exit 1; }
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (run.sh:${BASH_LINENO[0]}) $*" >&2; }

for v in paper debug aishell2 swap; do
    case "${!v}" in true|false) ;; *) die "--${v} must be true or false, got '${!v}'" ;; esac
done
for v in stage stop_stage; do
    case "${!v}" in ''|*[!0-9]*) die "--${v} must be a number, got '${!v}'" ;; esac
done
case "${system}" in
    ""|align|lora|dims) ;;
    *) die "unknown --system '${system}'; valid: align lora dims" ;;
esac
if [ "${paper}" = true ] && [ -n "${system}" ]; then
    die "--paper true runs every system: give no --system (got '${system}')"
fi
if [ -n "${system}" ]; then
    case "${dataset}" in 1|2|3) ;; *) die "--dataset must be 1, 2 or 3, got '${dataset}'" ;; esac
else
    case "${dataset}" in ""|1|2|3|none) ;;
        *) die "--dataset must be 1, 2, 3 or (data stages only) none, got '${dataset}'" ;; esac
fi
if [ "${dataset}" = none ] && [ "${stop_stage}" -gt 3 ]; then
    die "--dataset none (the readers only) is for the data stages: add --stop_stage 3"
fi
if [ "${system}" = dims ]; then
    case "${dims}" in 3072|2048|1024) ;;
        *) die "--system dims needs --dims 3072, 2048 or 1024, got '${dims}'" ;; esac
elif [ -n "${dims}" ]; then
    die "--dims is for --system dims only"
fi
if [ -z "${system}" ] && [ "${paper}" = false ] && [ "${stop_stage}" -ge 4 ]; then
    die "stages 4-10 need --system (align, lora or dims) or --paper true; without them run" \
        "the data stages only (--stop_stage 3)"
fi
for k in ${svd_topk}; do
    case "${k}" in ''|*[!0-9]*|0) die "--svd_topk: k must be a positive number, got '${k}'" ;; esac
done
[ -f sllm.sh ] && [ -f local/data.sh ] || die "run me from egs2/aishell_wmt/asr1"

# shellcheck disable=SC1091
. ./path.sh
python=${PYTHON:-python3}

asr_test=aishell2_test
[ "${aishell2}" = true ] || asr_test=aishell_test
test_sets="${asr_test} newstest2019 alpaca_test"
corpora=aishell,wmt19,alpaca_zh,wenetspeech
[ "${aishell2}" = true ] && corpora=aishell,aishell2,wmt19,alpaca_zh,wenetspeech
data_opts="--corpora ${corpora} --aishell2 ${aishell2}"
if [ "${debug}" = true ]; then
    suffix=_debug
    expdir=exp_debug
    dumpdir=dump_debug
    ngpu=${ngpu:-0}
    chat_llm=exp_debug/tiny/llama_chat
    paper_ks="32 16 8 4 2"
    extra=(--gpu_inference false --nj 2 --inference_nj 1)
    data_opts+=" --hours_scale 1/1800 --n_valid 10 --n_alpaca_test 10 --nj 2"
    synth=downloads/aishell_wmt_debug
    export AISHELL=${synth}/aishell AISHELL2_TEST=${synth}/aishell2 WMT19=${synth}/wmt19
    export ALPACA_ZH=${synth}/alpaca_zh WENETSPEECH=${synth}/wenetspeech
else
    suffix=
    expdir=exp
    dumpdir=dump
    ngpu=${ngpu:-8}
    chat_llm=01-ai/Yi-6B-Chat
    paper_ks="1000 300 200 100 50"
    extra=(--gpu_inference "$([ "${ngpu}" -gt 0 ] && echo true || echo false)")
    if [ -z "${train_args}" ] && [ "${ngpu}" -gt 1 ]; then
        train_args="--multiprocessing_distributed true"
    fi
fi
min() { [ "$1" -le "$2" ] && echo "$1" || echo "$2"; }
max() { [ "$1" -ge "$2" ] && echo "$1" || echo "$2"; }

# sllm <first stage> <last stage> <train set> [options]: one sllm.sh call (nothing when
# first > last); the user's options come last, so they win over this script's defaults.
sllm() {
    local first=$1 last=$2 train_set=$3
    shift 3
    [ "${first}" -le "${last}" ] || return 0
    ./sllm.sh \
        --stage "${first}" --stop_stage "${last}" \
        --train_set "${train_set}" --valid_set valid_mt --test_sets "${test_sets}" \
        --local_data_opts "${data_opts}" \
        --dumpdir "${dumpdir}" --expdir "${expdir}" --ngpu "${ngpu}" "${extra[@]}" \
        --inference_config "conf/decode${suffix}.yaml" --inference_model valid.acc.best.pth \
        --score_opts "--normalizer lower_nopunct" \
        "$@" "${args[@]+"${args[@]}"}"
}

# one_system <system> <dataset> [dims]: stages 4-10 of one experiment, then its extra passes.
one_system() {
    local sys=$1 n=$2 d=${3:-} conf tag targs
    conf=${sys}${d}
    tag=${sys}${d}_d${n}
    targs=${train_args}
    if [ "${sys}" = lora ]; then
        local init=${expdir}/sllm_align_d${n}/valid.acc.best.pth
        if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ] && [ ! -f "${init}" ]; then
            die "--system lora --dataset ${n} starts from align's best (${init}): run" \
                "./run.sh --system align --dataset ${n}${suffix:+ --debug true} first"
        fi
        # the align checkpoint's frozen LLM weights are not LoRA's (peft-wrapped names) and
        # are reloaded from the config anyway: take the projector and the token rows
        targs+=" --init_param ${init}:::llm.model."
    fi
    log "System ${tag}: conf/tuning/${conf}${suffix}.yaml on train_d${n}"
    sllm "$(max 4 "${stage}")" "${stop_stage}" "train_d${n}" \
        --train_config "conf/tuning/${conf}${suffix}.yaml" --tag "${tag}" \
        --stats_dir "${expdir}/stats_${tag}" --train_args "${targs}"
    [ "${sys}" = align ] || return 0
    local first last
    first=$(max 7 "${stage}")
    last=$(min 9 "${stop_stage}")
    if [ "${swap}" = true ]; then
        log "System ${tag}: decoding with the LLM swapped for ${chat_llm} (decode_chat)"
        sllm "${first}" "${last}" "train_d${n}" --train_config "conf/tuning/${conf}${suffix}.yaml" \
            --tag "${tag}" --stats_dir "${expdir}/stats_${tag}" --train_args "${targs}" \
            --inference_args "--llm_conf model_name_or_path=${chat_llm}" \
            --inference_tag decode_chat
    fi
    local ks=${svd_topk}
    [ -z "${ks}" ] && [ "${n}" = 2 ] && ks=${paper_ks}
    for k in ${ks}; do
        log "System ${tag}: decoding with the top-${k} singular values (decode_svd${k})"
        sllm "${first}" "${last}" "train_d${n}" --train_config "conf/tuning/${conf}${suffix}.yaml" \
            --tag "${tag}" --stats_dir "${expdir}/stats_${tag}" --train_args "${targs}" \
            --inference_args "--svd_topk ${k}" --inference_tag "decode_svd${k}"
    done
}

datasets=${dataset}
[ "${paper}" = true ] && datasets="1 2 3"
[ -z "${datasets}" ] && datasets="1 2 3"  # a data-only run assembles every dataset
if [ "${datasets}" = none ]; then
    data_opts+=" --datasets none"
else
    data_opts+=" --datasets $(echo ${datasets} | tr ' ' ,)"
fi
[ -n "${local_data_opts}" ] && data_opts+=" ${local_data_opts}"

# Stages 1-3: the corpora, the assembled sets (local/data.sh), formatting and filtering.
if [ "${debug}" = true ] && [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "Debug corpora: espeak-ng Mandarin in the five release layouts -> ${synth}"
    ${python} -m espnet_sllm.data.synth.aishell_wmt --out "${synth}" --nj 2
fi
first_data_stage=${stage}
if [ "${datasets}" = none ]; then  # the readers' own sets
    sllm "${stage}" "$(min 3 "${stop_stage}")" aishell_train --valid_set aishell_dev \
        --test_sets "${asr_test}"
else
    for n in ${datasets}; do
        sllm "${first_data_stage}" "$(min 3 "${stop_stage}")" "train_d${n}"
        first_data_stage=$(max 2 "${first_data_stage}")  # stage 1 writes every dataset at once
    done
fi
[ "${stop_stage}" -ge 4 ] || exit 0

if [ "${debug}" = true ]; then
    log "Tiny random Whisper-large-v3 / Llama (Yi-6B's architecture) + chat twin -> ${expdir}/tiny"
    texts=()
    for n in ${datasets}; do
        for f in text text_src; do [ -f "data/train_d${n}/${f}" ] && texts+=("data/train_d${n}/${f}"); done
    done
    [ "${#texts[@]}" -gt 0 ] || die "missing data/train_d*/text: run stage 1"
    ${python} -m espnet_sllm.testing.tiny_checkpoints --out "${expdir}/tiny" --llm_family llama \
        --chat_twin --sentences_from "${texts[@]}" --prompt_config conf/tuning/align_debug.yaml
fi

if [ "${paper}" = true ]; then
    for n in 1 2 3; do one_system align "${n}"; done
    for n in 1 2 3; do one_system lora "${n}"; done
    for d in 3072 2048 1024; do one_system dims 2 "${d}"; done
else
    one_system "${system}" "${dataset}" "${dims}"
fi
if [ "${stop_stage}" -ge 9 ]; then
    ${python} local/make_tables.py --exp "${expdir}" --asr_set "${asr_test}" \
        --st_set newstest2019 --qa_set alpaca_test --svd_ks ${paper_ks} \
        --title "Wu et al., transferable alignment module${suffix}"
    cat "${expdir}/RESULTS.md"
fi
log "Successfully finished: --system '${system}' --dataset '${dataset}' --paper ${paper}" \
    "--debug ${debug} (stages ${stage}-${stop_stage}) [elapsed=${SECONDS}s]"
