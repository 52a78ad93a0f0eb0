#!/usr/bin/env bash
# Usage:
#   ./run.sh                      # the whole demo: synthesis, training, decoding, scoring
#   ./run.sh --debug true         # CI-sized: ~100 training utterances, 1 epoch (<= 5 minutes)
#   ./run.sh --stage 7 --stop_stage 9   # any option of sllm.sh (see ./sllm.sh --help)
#
# mini_mlc: multilingual two-speaker conversations synthesised with espeak-ng in the MLC-SLM
# release layout (English US/GB, French, Japanese, Thai), read by the same reader as the real
# corpus, and a tiny Speech LLM trained from scratch on a CPU.
set -euo pipefail

debug=false
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --debug) debug=$2; shift 2 ;;
        --debug=*) debug=${1#*=}; shift ;;
        *) args+=("$1"); shift ;;
    esac
done
case "${debug}" in true|false) ;; *) echo "$0: --debug must be true or false" >&2; exit 1 ;; esac

if [ "${debug}" = true ]; then
    train_config=conf/train_debug.yaml
    expdir=exp_debug
    dumpdir=dump_debug
else
    train_config=conf/train.yaml
    expdir=exp
    dumpdir=dump
fi

./sllm.sh \
    --train_set train --valid_set valid --test_sets "test" \
    --local_data_opts "--debug ${debug}" \
    --dumpdir "${dumpdir}" --expdir "${expdir}" \
    --scratch_llm_opts "$(cat conf/scratch_llm.conf)" \
    --train_config "${train_config}" \
    --inference_config conf/decode.yaml \
    --inference_model valid.acc.ave.pth \
    --max_sec 30 \
    "${args[@]+"${args[@]}"}"
