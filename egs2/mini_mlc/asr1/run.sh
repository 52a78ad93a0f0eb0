#!/usr/bin/env bash
# Usage:
#   ./run.sh                      # the whole demo: synthesis, training, decoding, scoring
#   ./run.sh --debug true         # CI-sized: ~100 training utterances, 1 epoch (<= 5 minutes)
#   ./run.sh --size learn         # CI learning check: American English only, 400 training
#                                 # utterances, a few minutes of training; its test MER must
#                                 # stay under the bound of `make learn-check` (README)
#   ./run.sh --system s3          # S3-style bi-directional context model: trained on train_ctx2x,
#                                 # decoded without context (Stage1), with the neighbours'
#                                 # stage-1 hypotheses (Stage2) and references (Stage2-G)
#   ./run.sh --stage 7 --stop_stage 9   # any option of sllm.sh (see ./sllm.sh --help)
#
# mini_mlc: multilingual two-speaker conversations synthesised with espeak-ng in the MLC-SLM
# release layout (English US/GB, French, Japanese, Thai), read by the same reader as the real
# corpus, and a tiny Speech LLM trained from scratch on a CPU.
set -euo pipefail
. ./path.sh

# Reproducible CPU numerics. Float kernels round differently with the instruction set the CPU
# offers (PyTorch, oneDNN and MKL pick AVX-512 kernels where they exist, AVX2 ones elsewhere) and
# with the number of threads, and 22 epochs of training turn a last-bit difference into another
# model (measured on 2026-11-30: the same forward/backward differs in its bits between the
# default AVX-512 dispatch, forced AVX2, and 1 vs 2 threads). A "2-core x86-64 VM" can sit on
# hosts of either kind, so the demo pins both: the same commit gives the same RESULTS.md on any
# x86-64 CPU with AVX2, whatever its core count. Override any of them in the environment.
export ATEN_CPU_CAPABILITY=${ATEN_CPU_CAPABILITY:-avx2}
export ONEDNN_MAX_CPU_ISA=${ONEDNN_MAX_CPU_ISA:-AVX2}
export MKL_CBWR=${MKL_CBWR:-AVX2}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export MKL_NUM_THREADS=${MKL_NUM_THREADS:-${OMP_NUM_THREADS}}

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}:${BASH_LINENO[0]}) $*" >&2
}

debug=false
size=full
system=base
stage=1
stop_stage=10
own_options="debug size system stage stop_stage"
# shellcheck disable=SC1091
. scripts/utils/split_options.sh
die() { echo "$0: $*" >&2; exit 1; }
case "${debug}" in true) size=debug ;; false) ;; *) die "--debug must be true or false" ;; esac
case "${size}" in full|debug|learn) ;; *) die "--size must be full, debug or learn" ;; esac
case "${system}" in base|s3) ;; *) die "--system must be base or s3" ;; esac
[ "${size}/${system}" = learn/s3 ] && die "--size learn has no s3 system (it checks the base one)"

suffix=""
[ "${system}" = s3 ] && suffix=_s3
if [ "${size}" = full ]; then
    train_config=conf/train${suffix}.yaml
    expdir=exp
    dumpdir=dump
else
    train_config=conf/train${suffix}_${size}.yaml
    expdir=exp_${size}
    dumpdir=dump_${size}
fi

# sllm <first> <last> [options]: one sllm.sh call (nothing when first > last)
sllm() {
    local first=$1 last=$2
    shift 2
    [ "${first}" -le "${last}" ] || return 0
    ./sllm.sh --stage "${first}" --stop_stage "${last}" \
        --valid_set valid --test_sets "test" \
        --local_data_opts "--size ${size}" \
        --dumpdir "${dumpdir}" --expdir "${expdir}" \
        --scratch_llm_opts "$(cat conf/scratch_llm.conf)" \
        --train_config "${train_config}" \
        --inference_config conf/decode.yaml \
        --inference_model valid.acc.ave.pth \
        --max_sec 30 \
        "$@" "${args[@]+"${args[@]}"}"
}
max() { [ "$1" -ge "$2" ] && echo "$1" || echo "$2"; }
min() { [ "$1" -le "$2" ] && echo "$1" || echo "$2"; }

if [ "${system}" = base ]; then
    sllm "${stage}" "${stop_stage}" --train_set train
else
    sllm "${stage}" "$(min 3 "${stop_stage}")" --train_set train
    if [ "${stop_stage}" -ge 4 ] && [ "${stage}" -le 6 ]; then
        log "2x context training set: ${dumpdir}/raw/train with and without its context"
        python -m espnet_sllm.data.context_copy --in "${dumpdir}/raw/train" \
            --out "${dumpdir}/raw/train_ctx2x"
    fi
    s3=(--train_set train_ctx2x --stats_dir "${expdir}/stats_s3")
    sllm "$(max 4 "${stage}")" "$(min 8 "${stop_stage}")" "${s3[@]}" \
        --context_decoding true --context_source hypothesis
    if [ "${stage}" -le 8 ] && [ "${stop_stage}" -ge 8 ]; then
        sllm 8 8 "${s3[@]}" --context_decoding true --context_source reference
    fi
    sllm "$(max 9 "${stage}")" "${stop_stage}" "${s3[@]}"
fi
