#!/usr/bin/env bash
# Usage:
#   ./run.sh --system SYSTEM [--debug true|false] [--ctc_finetune true|false] [--stage N]
#            [--stop_stage M] [--ngpu N] [--train_args "..."] [--wenetspeech true|false]
#            [--extra_train "wenetspeech_m aishell"] [--extra_test_sets "DIR ..."]
#            [any other option of sllm.sh: ./sllm.sh --help]
#   ./run.sh --sweep true [--debug true|false] [...]          # Tables 1 and 2
#   ./run.sh --stop_stage 3                                   # data only (no --system)
#
# egs2/kespeech/asr1: Xu et al., "Leveraging LLM and Self-Supervised Training Models for Speech
# Recognition in Chinese Dialects": TeleSpeech data2vec 2.0 (25 Hz) -> projector -> Qwen2, trained
# in four chained stages (projector; encoder; LoRA; all), on KeSpeech, scored with the CER on the
# KeSpeech test set (overall and per subdialect) and WenetSpeech test_net / test_meeting.
#
# Systems (Table 3 rows; Table 4 = q3_linear_k4 and q3_conv1d_k4 after each stage), configs
# conf/tuning/<system>_s{1..4}.yaml (+ _debug twins), written by local/make_configs.py:
#   q05_conv1d_k2 q05_conv1d_k4 q05_conv1d_k4_full q15_conv1d_k4 q3_linear_k4_pt q3_linear_k4
#   q3_conv1d_k4 q7_conv1d_k4
#   (q05/q15/q3/q7: Qwen2-0.5B / Qwen2-1.5B / Qwen2.5-3B / Qwen2-7B; _pt: the pre-trained
#   encoder, the others the CTC fine-tuned one; _full: the LLM body trains instead of LoRA)
#
# What run.sh adds to sllm.sh:
#   * stages 4-10 of a system: its four configs chained (--train_config "s1 s2 s3 s4"), each
#     stage decoded and scored (--decode_stages all, beam 4, conf/decode.yaml), CER per
#     subdialect (--score_group utt2subdialect); then <exp>/RESULTS_stages.md: one row per stage,
#     a column per subdialect, KeSpeech, test_net, test_meeting, the paper's numbers beside ours
#     (conf/paper_results.yaml);
#   * --sweep true: Qwen2-0.5B, stage 1 only, {linear, conv1d, transformer} x k {1,2,4,8} +
#     qformer, x encoder {pt, ctc}: 26 experiments <expdir>/sllm_sweep_<point>, then
#     <expdir>/sweep/RESULTS.md shaped as Tables 1 and 2;
#   * --ctc_finetune true: before the systems, conf/tuning/ctc_finetune.yaml (CTC alone on the
#     pre-trained encoder, 10 epochs) is trained and its encoder exported
#     (python -m espnet_sllm.bin.export_encoder) to the CTC encoder folder the configs name,
#     downloads/telespeech_large_ctc (debug: exp_debug/tiny/data2vec2_ctc); without it that
#     folder must hold the release's finetune_large_kespeech.pt, converted (README.md);
#   * --debug true: synthesises tiny KeSpeech- and WenetSpeech-layout corpora with espeak-ng
#     (python -m espnet_sllm.data.synth.kespeech) into downloads/kespeech_debug and
#     downloads/wenetspeech_debug and points KESPEECH / WENETSPEECH there; after stage 3 writes
#     tiny random checkpoints (python -m espnet_sllm.testing.tiny_checkpoints --encoder data2vec2
#     --llm_family qwen2: fairseq-layout large.pt and finetune_large_kespeech.pt converted by the
#     real converter, a Qwen2 with a tokenizer trained on data/train/text); CPU, dump_debug/ and
#     exp_debug/.
#   --wenetspeech false: KeSpeech only (no test_net / test_meeting).
#   --extra_train "SETS": more training data combined into data/train in stage 1, among
#     wenetspeech_s wenetspeech_m wenetspeech_l (WENETSPEECH) and aishell (AISHELL, db.sh).
#   --extra_test_sets "DIRS": Kaldi data directories of yours, copied to data/<basename> in stage
#     1, then decoded and scored as the other test sets (CER; per subdialect when they have
#     utt2subdialect).
#
# Defaults: full size --ngpu 8 (--train_args "--multiprocessing_distributed true" unless given),
# GPU decoding; debug: CPU.
#
# Examples:
#   ./run.sh --system q05_conv1d_k4 --debug true          # CI-sized run of every stage
#   ./run.sh --sweep true --debug true
#   KESPEECH=/db/KeSpeech WENETSPEECH=/db/WenetSpeech ./run.sh --system q7_conv1d_k4 --ngpu 8
#   ./run.sh --system q3_linear_k4 --stage 7 --stop_stage 9    # decode and score again
set -euo pipefail

system=
sweep=false
debug=false
ctc_finetune=false
wenetspeech=true
extra_train=
extra_test_sets=
stage=1
stop_stage=10
ngpu=
train_args=
own_options="system sweep debug ctc_finetune wenetspeech extra_train extra_test_sets stage"
own_options+=" stop_stage ngpu train_args"
# shellcheck disable=SC1091
. scripts/utils/split_options.sh
die() { echo "$0: ERROR: $*" >&2; exit 1; }
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (run.sh:${BASH_LINENO[0]}) $*" >&2; }

# Keep equal to SYSTEMS of local/make_configs.py (tests/recipe/test_kespeech_configs.py checks).
systems="q05_conv1d_k2 q05_conv1d_k4 q05_conv1d_k4_full q15_conv1d_k4 q3_linear_k4_pt"
systems+=" q3_linear_k4 q3_conv1d_k4 q7_conv1d_k4"
sweep_points=()
for _enc in pt ctc; do
    for _proj in linear conv1d transformer; do
        for _k in 1 2 4 8; do sweep_points+=("${_enc}_${_proj}_k${_k}"); done
    done
    sweep_points+=("${_enc}_qformer")
done

for v in debug sweep ctc_finetune wenetspeech; do
    case "${!v}" in true|false) ;; *) die "--${v} must be true or false, got '${!v}'" ;; esac
done
for v in stage stop_stage; do
    case "${!v}" in ''|*[!0-9]*) die "--${v} must be a number, got '${!v}'" ;; esac
done
if [ "${sweep}" = true ] && [ -n "${system}" ]; then
    die "--sweep true and --system ${system} exclude each other: give one (systems: ${systems})"
fi
if [ -n "${system}" ] && ! [[ " ${systems} " == *" ${system} "* ]]; then
    die "unknown --system '${system}'; valid: ${systems}"
fi
if [ -z "${system}" ] && [ "${sweep}" = false ] && [ "${stop_stage}" -ge 4 ]; then
    die "stages 4-10 need --system (one of: ${systems}) or --sweep true; without them run" \
        "the data stages only (--stop_stage 3)"
fi
[ -f sllm.sh ] && [ -f conf/decode.yaml ] || die "run me from egs2/kespeech/asr1"

# shellcheck disable=SC1091
. ./path.sh
python=${PYTHON:-python3}

test_sets="test"
[ "${wenetspeech}" = true ] && test_sets="test test_net test_meeting"
for d in ${extra_test_sets}; do test_sets+=" $(basename "${d}")"; done
# sllm.sh splits --local_data_opts on blanks: lists travel comma-separated
local_data_opts="--wenetspeech ${wenetspeech}"
[ -n "${extra_train}" ] && local_data_opts+=" --extra_train $(echo ${extra_train} | tr ' ' ,)"
[ -n "${extra_test_sets}" ] && local_data_opts+=" --extra_test_sets $(echo ${extra_test_sets} | tr ' ' ,)"
if [ "${debug}" = true ]; then
    suffix=_debug
    expdir=exp_debug
    dumpdir=dump_debug
    ngpu=${ngpu:-0}
    ctc_dir=exp_debug/tiny/data2vec2_ctc
    extra=(--gpu_inference false --nj 2 --inference_nj 1)
    export KESPEECH=downloads/kespeech_debug
    export WENETSPEECH=downloads/wenetspeech_debug
else
    suffix=
    expdir=exp
    dumpdir=dump
    ngpu=${ngpu:-8}
    ctc_dir=downloads/telespeech_large_ctc
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
        --train_set train --valid_set dev --test_sets "${test_sets}" \
        --local_data_opts "${local_data_opts}" \
        --dumpdir "${dumpdir}" --expdir "${expdir}" --ngpu "${ngpu}" "${extra[@]}" \
        --train_args "${train_args}" \
        --inference_config conf/decode.yaml --inference_model valid.acc.best.pth \
        --score_group utt2subdialect --score_opts "--normalizer lower_nopunct" \
        "$@" "${args[@]+"${args[@]}"}"
}

# Stages 1-3: data preparation, formatting, filtering (shared by every system).
if [ "${debug}" = true ] && [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "Debug corpora: espeak-ng cmn in the KeSpeech / WenetSpeech release layouts ->" \
        "${KESPEECH}, ${WENETSPEECH}"
    ${python} -m espnet_sllm.data.synth.kespeech --kespeech_out "${KESPEECH}" \
        --wenetspeech_out "${WENETSPEECH}" --nj 2
fi
sllm "${stage}" "$(min 3 "${stop_stage}")"
[ "${stop_stage}" -ge 4 ] || exit 0

if [ "${debug}" = true ]; then
    log "Tiny random TeleSpeech data2vec 2.0 (fairseq layouts, converted) + Qwen2 -> ${expdir}/tiny"
    [ -f data/train/text ] || die "missing data/train/text: run stage 1"
    ${python} -m espnet_sllm.testing.tiny_checkpoints --out "${expdir}/tiny" --encoder data2vec2 \
        --llm_family qwen2 --sentences_from data/train/text \
        --prompt_config conf/tuning/q05_conv1d_k4_s1_debug.yaml
fi

if [ "${ctc_finetune}" = true ] && [ "${stage}" -le 6 ]; then
    conf=conf/tuning/ctc_finetune${suffix}.yaml
    log "--ctc_finetune true: CTC fine-tuning of the pre-trained encoder (${conf})"
    sllm "$(max 4 "${stage}")" "$(min 6 "${stop_stage}")" --train_config "${conf}" \
        --tag ctc_finetune --stats_dir "${expdir}/stats_ctc_finetune"
    if [ "${stop_stage}" -ge 6 ]; then
        ${python} -m espnet_sllm.bin.export_encoder \
            --config "${expdir}/sllm_ctc_finetune/config.yaml" \
            --model "${expdir}/sllm_ctc_finetune/valid.acc.best.pth" --out "${ctc_dir}"
    fi
fi

# grid_cells <table> <row> <exp> <column prefix>: the cell spec lines of one decoded experiment
# (espnet_sllm/scoring/grid.py): one column per subdialect of test (with --subdialects), then
# KeSpeech, test_net, test_meeting.
grid_cells() {
    local table=$1 row=$2 exp=$3 prefix=$4 with_groups=$5 s f label
    for s in ${test_sets}; do
        f=$( (ls "${exp}"/decode_*/"${s}"/scores.json 2>/dev/null || true) | head -1)
        f=${f:-${exp}/decode_*/${s}/scores.json}
        label=${s}
        [ "${s}" = test ] && label=KeSpeech
        if [ "${s}" = test ] && [ "${with_groups}" = true ] && [ -f data/test/utt2subdialect ]; then
            for g in $(cut -d' ' -f2 data/test/utt2subdialect | sort -u); do
                printf '%s\t%s\t%s\t%s\tsubdialect=%s\n' "${table}" "${row}" "${prefix}${g}" "${f}" "${g}"
            done
        fi
        printf '%s\t%s\t%s\t%s\n' "${table}" "${row}" "${prefix}${label}" "${f}"
    done
}

if [ -n "${system}" ]; then
    configs=
    for k in 1 2 3 4; do configs+=" conf/tuning/${system}_s${k}${suffix}.yaml"; done
    sllm "$(max 4 "${stage}")" "${stop_stage}" --train_config "${configs# }" --tag "${system}" \
        --stats_dir "${expdir}/stats_${system}" --decode_stages all
    if [ "${stop_stage}" -ge 9 ]; then
        exp=${expdir}/sllm_${system}
        : > "${exp}/cells.tsv"
        for k in 1 2 3 4; do
            grid_cells "${system}: CER after each stage" "stage ${k}" \
                "${exp}/stage${k}_${system}_s${k}${suffix}" "" true >> "${exp}/cells.tsv"
        done
        ${python} -m espnet_sllm.bin.results_grid --spec "${exp}/cells.tsv" \
            --out "${exp}/RESULTS_stages.md" --title "Xu et al. (KeSpeech), ${system}${suffix}"
        cat "${exp}/RESULTS_stages.md"
    fi
fi

if [ "${sweep}" = true ]; then
    for p in "${sweep_points[@]}"; do
        log "Sweep point ${p}"
        sllm "$(max 4 "${stage}")" "${stop_stage}" --train_config "conf/tuning/sweep/${p}${suffix}.yaml" \
            --tag "sweep_${p}" --stats_dir "${expdir}/stats_sweep_${p}"
    done
    if [ "${stop_stage}" -ge 9 ]; then
        mkdir -p "${expdir}/sweep"
        cells=${expdir}/sweep/cells.tsv
        : > "${cells}"
        t1="Table 1: stage 1, 6.25 Hz (Q-Former: 64 queries), pre-trained | CTC fine-tuned encoder"
        for proj in conv1d linear transformer qformer; do
            for enc in pt ctc; do
                p=${enc}_${proj}_k4
                [ "${proj}" = qformer ] && p=${enc}_qformer
                grid_cells "${t1}" "${proj}" "${expdir}/sllm_sweep_${p}" "${enc} " false >> "${cells}"
            done
        done
        for enc in ctc pt; do
            t2="Table 2: stage 1, frame rate at the LLM input, ${enc} encoder"
            [ "${enc}" = pt ] && t2+=" (ours: the paper's Table 2 is the CTC encoder)"
            for proj in conv1d linear transformer; do
                for k in 1 2 4 8; do
                    grid_cells "${t2}" "${proj}" "${expdir}/sllm_sweep_${enc}_${proj}_k${k}" \
                        "$(awk -v k="${k}" 'BEGIN{printf "%g Hz ", 25 / k}')" false >> "${cells}"
                done
            done
        done
        ${python} -m espnet_sllm.bin.results_grid --spec "${cells}" \
            --out "${expdir}/sweep/RESULTS.md" --title "Xu et al. (KeSpeech): projector sweep${suffix}"
        cat "${expdir}/sweep/RESULTS.md"
    fi
fi
log "Successfully finished: --system '${system}' --sweep ${sweep} --debug ${debug}" \
    "(stages ${stage}-${stop_stage}) [elapsed=${SECONDS}s]"
