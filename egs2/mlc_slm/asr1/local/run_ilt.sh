#!/usr/bin/env bash
# Usage:
#   ./run.sh --system ilt_whisper|ilt_qwen2audio [--rounds focus,feedback,fix|none]
#            [--debug true|false] [--stage N] [--stop_stage M] [--ngpu N] [--train_args "..."]
#            [--pl_voters 3] [--feedback_hours 40000] [--pools "cv_train ..."]
#            [--unlabeled "cv_train ..."] [--tts command|espeak] [--tts_conf "key=value ..."]
#            [--embedder microsoft/wavlm-base-plus-sv] [--freq_low 20 --freq_high 200]
#            [any other option of sllm.sh]
#   (run.sh hands the ILT systems to this script; run it through run.sh)
#
# Iterative LoRA Training (Meng et al., "ILT: Iterative LoRA Training through Focus-Feedback-Fix
# for Multilingual Speech Recognition", MLC-SLM 2025) on MLC-SLM: Whisper-large-v3 or
# Qwen2-Audio-7B as a whole (model: hf_audio), three LoRA rounds, each merged into the base
# before the next (sllm.sh --chain_mode merge):
#   focus     r 16, q/k/v, 6 epochs, MLC-SLM train                         -> M1
#   feedback  r 512, q/k/v/o + MLP + out_proj/fc1/fc2, 10 epochs, the Feed-Back mix -> M2
#   fix       r 32, same targets, 6 epochs, the Fix set                    -> final
# Stages (sllm.sh's numbers; stage 6 runs the data steps between the rounds):
#   1    local/data.sh --use_cv true (MLC-SLM train/dev[/eval] + Common Voice train = cv_train,
#        the debug third-party pool); debug: the espeak-ng corpora in the release layouts
#   2-3  format / filter (the pools and unlabeled sets too, as sets to decode)
#   4-5  checkpoint check, stats (debug: tiny random whisper-large-v3 / Qwen2-Audio-7B / WavLM
#        checkpoints -> exp_debug/tiny first)
#   6    the rounds of the full chain that --rounds needs, each followed by its data step:
#        after focus: pseudo labels of --unlabeled by the focus round's voters (its
#          keep_nbest epochs; majority vote, espnet_sllm.scoring.vote) + the Feed-Back mix
#          (espnet_sllm.data.sample_hours: MLC-SLM train and the pseudo-labelled audio whole,
#          a seeded selection of --pools up to --feedback_hours) -> data/ilt_feedback
#        after feedback: the Fix set -> data/ilt_fix = MLC-SLM train + hard cases (pool
#          utterances with a frequent token that the base model gets > 5 % wrong) + TTS of
#          low-frequency English pool text in the five accents + non-English unlabeled audio
#          close to MLC-SLM speakers (WavLM cosine > 0.85), pseudo-labelled by the feedback
#          round's voters; its hours are printed beside the paper's 2,791 h
#        then the requested chain (--rounds): prefixes shared with the full chain are not
#        trained again (exp/sllm_ilt_<model>/<round>+<round>...)
#   7-9  decode (beam 6; Thai, Japanese, Vietnamese greedy: conf/decode_ilt.yaml), score
#   10   pack
# --rounds none decodes the base model zero-shot (Table 1's Whisper / Qwen2-Audio columns).
#
# Examples:
#   ./run.sh --system ilt_whisper --debug true                      # CI-sized, every step
#   ./run.sh --system ilt_whisper --debug true --rounds focus,fix   # reuses the focus round
#   MLC_SLM=/db/mlc_slm COMMONVOICE=/db/cv ./run.sh --system ilt_qwen2audio \
#       --tts command --tts_conf "template='f5-tts_infer-cli ...'"
set -euo pipefail

system=
debug=false
stage=1
stop_stage=10
ngpu=
train_args=
rounds=focus,feedback,fix
pl_voters=3
feedback_hours=
pools=cv_train
unlabeled=cv_train
tts=
tts_conf=
embedder=
freq_low=
freq_high=
own_options="system debug stage stop_stage ngpu train_args rounds pl_voters feedback_hours pools"
own_options+=" unlabeled tts tts_conf embedder freq_low freq_high"
# shellcheck disable=SC1091
. scripts/utils/split_options.sh
die() { echo "$0: ERROR: $*" >&2; exit 1; }
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (run_ilt.sh:${BASH_LINENO[0]}) $*" >&2; }

case "${system}" in
    ilt_whisper) model=whisper ;;
    ilt_qwen2audio) model=qwen2audio ;;
    *) die "--system must be ilt_whisper or ilt_qwen2audio, got '${system}'" ;;
esac
ALL_ROUNDS=(focus feedback fix)
# --rounds: none, or an ordered non-empty subset of focus,feedback,fix
chain=()
if [ "${rounds}" != none ]; then
    IFS=, read -r -a chain <<< "${rounds}"
    [ "${#chain[@]}" -gt 0 ] || die "--rounds is empty: give none or a subset of focus,feedback,fix"
    last=-1
    for r in "${chain[@]}"; do
        i=-1
        for j in 0 1 2; do [ "${ALL_ROUNDS[$j]}" = "${r}" ] && i=${j}; done
        [ "${i}" -ge 0 ] || die "--rounds: unknown round '${r}'; valid: focus, feedback, fix (or none)"
        [ "${i}" -gt "${last}" ] || die "--rounds: '${r}' is repeated or out of order in '${rounds}' (order: focus,feedback,fix)"
        last=${i}
    done
fi
case "${pl_voters}" in ''|*[!0-9]*) die "--pl_voters must be a number, got '${pl_voters}'" ;; esac
[ "${pl_voters}" -ge 2 ] || die "--pl_voters must be >= 2 (a vote needs two voters), got ${pl_voters}"

# shellcheck disable=SC1091
. ./path.sh
python=${PYTHON:-python3}
if [ "${debug}" = true ]; then
    suffix=_debug
    expdir=exp_debug
    dumpdir=dump_debug
    test_sets="dev eval"
    ngpu=${ngpu:-0}
    # more than the debug pools hold: every pool utterance joins (sample_hours warns how short)
    feedback_hours=${feedback_hours:-1.0}
    # token counts of 100 debug sentences: the paper's 20 / 200 would make every token rare
    freq_low=${freq_low:-8}
    freq_high=${freq_high:-20}
    tts=${tts:-espeak}
    embedder=${embedder:-${expdir}/tiny/wavlm}
    extra=(--gpu_inference false)
    export MLC_SLM=downloads/mlc_slm_debug
    export COMMONVOICE=downloads/cv_debug
else
    suffix=
    expdir=exp
    dumpdir=dump
    test_sets="dev"
    ngpu=${ngpu:-8}
    feedback_hours=${feedback_hours:-40000}
    freq_low=${freq_low:-20}
    freq_high=${freq_high:-200}
    tts=${tts:-command}
    embedder=${embedder:-microsoft/wavlm-base-plus-sv}
    extra=(--gpu_inference "$([ "${ngpu}" -gt 0 ] && echo true || echo false)")
    if [ -z "${train_args}" ] && [ "${ngpu}" -gt 1 ]; then
        train_args="--multiprocessing_distributed true"
    fi
fi
tag=ilt_${model}
exp=${expdir}/sllm_${tag}
decode_conf=conf/decode_ilt${suffix}.yaml
# The token counts use the Whisper-large-v3 tokenizer for both systems (the paper's).
whisper_dir=$([ "${debug}" = true ] && echo "${expdir}/tiny/whisper_asr" || echo openai/whisper-large-v3)
conf_of() { echo "conf/tuning/ilt_${model}_$1${suffix}.yaml"; }
set_of() { case "$1" in focus) echo train ;; feedback) echo ilt_feedback ;; fix) echo ilt_fix ;; esac; }
min() { [ "$1" -le "$2" ] && echo "$1" || echo "$2"; }
max() { [ "$1" -ge "$2" ] && echo "$1" || echo "$2"; }

# sllm <first> <last> <round...> [-- sllm.sh options]: sllm.sh on the chain of these rounds.
sllm() {
    local first=$1 last=$2 confs="" sets="" names=""
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        confs+=" $(conf_of "$1")"; sets+=" $(set_of "$1")"; names+=" $1"
        shift
    done
    [ $# -gt 0 ] && shift
    [ "${first}" -le "${last}" ] || return 0
    # shellcheck disable=SC2086
    ./sllm.sh \
        --stage "${first}" --stop_stage "${last}" \
        --train_set train --valid_set dev --test_sets "${test_sets}" \
        --local_data_opts "--use_cv true" \
        --dumpdir "${dumpdir}" --expdir "${expdir}" --stats_dir "${expdir}/stats_${tag}" \
        --ngpu "${ngpu}" "${extra[@]}" --tag "${tag}" \
        ${confs:+--train_config "${confs# }" --train_sets "${sets# }" --chain_names "${names# }"} \
        --chain_mode merge --train_args "${train_args}" \
        --inference_config "${decode_conf}" --inference_model valid.acc.best.pth \
        --max_sec 30 "$@" "${args[@]+"${args[@]}"}"
}
# decode <exp> <model file> <data dir> <out dir>: one sllm_inference job (the ILT decoding
# options of ${decode_conf}); <out dir>/1best_recog/text
decode() {
    local opts
    opts=$(${python} -c "import shlex, sys, yaml; c = yaml.safe_load(open(sys.argv[1])) or {}; print(' '.join(f'--{k} {shlex.quote(str(v))}' for k, v in c.items()))" "${decode_conf}")
    # shellcheck disable=SC2086
    ${python} -m espnet_sllm.bin.sllm_inference --train_config "$1/config.yaml" \
        --model_file "$1/$2" --output_dir "$4" --ngpu "$([ "${extra[1]}" = true ] && echo 1 || echo 0)" \
        --data_path_and_name_and_type "$3/wav.scp,speech,sound" \
        --data_path_and_name_and_type "$3/utt2lang,lang,text" ${opts}
}
# pseudo_label <round exp> <data dir> <out data dir>: decode with the round's voters (its kept
# epochs, at most --pl_voters, best first), vote, relabel.
pseudo_label() {
    local rexp=$1 data=$2 out=$3 work voters=() hyps=() v best
    work=${rexp}/pseudo_labels/$(basename "${data}")
    # the best epoch first (ties of the vote go to it), then the other kept epochs
    best=$(readlink "${rexp}/valid.acc.best.pth" || true)
    mapfile -t voters < <({ [ -n "${best}" ] && echo "${best}"; ls "${rexp}" \
        | grep -E '^[0-9]+epoch\.pth$' | grep -vxF "${best:-none}"; } | head -n "${pl_voters}")
    [ "${#voters[@]}" -ge 2 ] || die "${rexp}: ${#voters[@]} kept epoch(s) for the vote, need >= 2 (keep_nbest_models in $(conf_of focus))"
    for v in "${voters[@]}"; do
        log "pseudo labels of ${data}: voter ${rexp}/${v}"
        [ -s "${work}/${v%.pth}/1best_recog/text" ] || decode "${rexp}" "${v}" "${data}" "${work}/${v%.pth}"
        hyps+=(--hyp "${work}/${v%.pth}/1best_recog/text")
    done
    ${python} -m espnet_sllm.scoring.vote "${hyps[@]}" --utt2lang "${data}/utt2lang" \
        --out "${work}/vote/text"
    # nothing left (every vote empty): a warning, no ${out}; the callers test for it
    ${python} -m espnet_sllm.data.relabel --in "${data}" --text "${work}/vote/text" \
        --out "${out}" --allow_empty true
}

if [ "${debug}" = true ] && [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "Debug corpora: espeak-ng MLC-SLM (${MLC_SLM}) and Common Voice (${COMMONVOICE}) layouts"
    ${python} -m espnet_sllm.data.synth.conversations --out "${MLC_SLM}" --debug \
        --release_layout --nj 2
    ${python} -m espnet_sllm.data.synth.conversations --out "${COMMONVOICE}" --debug \
        --common_voice --nj 2
fi
# Stages 1-3: MLC-SLM + the pools and the unlabeled sets (formatted as sets to decode).
extra_sets=$(echo "${pools} ${unlabeled}" | tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ')
sllm "${stage}" "$(min 3 "${stop_stage}")" focus -- --test_sets "${test_sets} ${extra_sets}"

if [ "${stop_stage}" -ge 4 ] && [ "${debug}" = true ]; then
    log "Tiny random whisper-large-v3 / Qwen2-Audio-7B / WavLM checkpoints -> ${expdir}/tiny"
    [ -f data/train/text ] || die "missing data/train/text: run stage 1"
    for m in whisper qwen2_audio; do
        ${python} -m espnet_sllm.testing.tiny_checkpoints --hf_audio "${m}" \
            --out "${expdir}/tiny/$([ "${m}" = whisper ] && echo whisper_asr || echo qwen2_audio)" \
            --text data/train/text
    done
    [ -f "${embedder}/config.json" ] || ${python} -c \
        "import sys; from espnet_sllm.testing.wavlm import make_tiny_wavlm_xvector as m; m(sys.argv[1])" \
        "${embedder}"
fi

# zero_shot: ${exp}/none = the base checkpoint, no LoRA, nothing trained (its config from
# sllm_train --dry_run, an empty weights file zeroshot.pth): Table 1's zero-shot columns, and
# the base model that decodes the hard-case candidates of the Fix set.
zero_shot() {
    local zexp=${exp}/none
    [ -s "${zexp}/zeroshot.pth" ] && [ -s "${zexp}/config.yaml" ] && return 0
    log "Zero-shot ${system}: ${zexp}"
    mkdir -p "${zexp}"
    ${python} -m espnet_sllm.bin.sllm_train --config "$(conf_of focus)" --dry_run true \
        --output_dir "${zexp}" --model_conf lora_r=0 --model_conf freeze=true \
        --model_conf lid_embeddings=false \
        --train_data_path_and_name_and_type "${dumpdir}/raw/train/wav.scp,speech,sound" \
        --train_data_path_and_name_and_type "${dumpdir}/raw/train/text,text,text" \
        --train_data_path_and_name_and_type "${dumpdir}/raw/train/utt2lang,lang,text" \
        --valid_data_path_and_name_and_type "${dumpdir}/raw/dev/wav.scp,speech,sound" \
        --valid_data_path_and_name_and_type "${dumpdir}/raw/dev/text,text,text" \
        --valid_data_path_and_name_and_type "${dumpdir}/raw/dev/utt2lang,lang,text" \
        --train_shape_file "${expdir}/stats_${tag}/train/speech_shape" \
        --valid_shape_file "${expdir}/stats_${tag}/valid/speech_shape" \
        > "${zexp}/dry_run.log" 2>&1 || die "zero-shot config failed: see ${zexp}/dry_run.log"
    ${python} -c "import sys, torch; torch.save({}, sys.argv[1])" "${zexp}/zeroshot.pth"
}

if [ "${rounds}" = none ]; then
    [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ] && zero_shot
    ./sllm.sh --stage "$(max 7 "${stage}")" --stop_stage "$(min 9 "${stop_stage}")" \
        --train_set train --valid_set dev --test_sets "${test_sets}" --dumpdir "${dumpdir}" \
        --expdir "${expdir}" --tag "${tag}" --train_config "$(conf_of focus)" \
        --chain_names none "${extra[@]}" \
        --inference_config "${decode_conf}" --inference_model zeroshot.pth \
        "${args[@]+"${args[@]}"}"
    log "Successfully finished: --system ${system} --rounds none [elapsed=${SECONDS}s]"
    exit 0
fi

need_feedback=false
need_fix=false
for r in "${chain[@]}"; do
    case "${r}" in feedback) need_feedback=true ;; fix) need_feedback=true; need_fix=true ;; esac
done
if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 4 ]; then
    # Focus (the first round of the full chain), from stage 4 on.
    sllm "$(max 4 "${stage}")" "$(min 6 "${stop_stage}")" focus
fi
if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ] && [ "${need_feedback}" = true ]; then
    if [ ! -f data/ilt_feedback/.done ]; then
        log "Feed-Back mix: pseudo labels of ${unlabeled} by the focus round + ${pools} up to ${feedback_hours} h"
        keep=(--keep train=data/train)
        for u in ${unlabeled}; do
            pseudo_label "${exp}/focus" "${dumpdir}/raw/${u}" "data/ilt_pl_focus_${u}"
            [ -f "data/ilt_pl_focus_${u}/wav.scp" ] && keep+=(--keep "pl_${u}=data/ilt_pl_focus_${u}")
        done
        pool_opts=()
        for p in ${pools}; do pool_opts+=(--pool "${p}=data/${p}"); done
        rm -rf data/ilt_feedback
        ${python} -m espnet_sllm.data.sample_hours "${keep[@]}" "${pool_opts[@]}" \
            --hours "${feedback_hours}" --seed 0 --prefix_ids true --drop text_prev text_next \
            --out data/ilt_feedback
        touch data/ilt_feedback/.done
    fi
    sllm 2 6 focus feedback
fi
if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ] && [ "${need_fix}" = true ]; then
    if [ ! -f data/ilt_fix/.done ]; then
        sel=${exp}/fix_selection
        mkdir -p "${sel}"
        parts=(data/train)
        for p in ${pools}; do
            log "Fix set: low-frequency English text of ${p} -> TTS in the five accents"
            ${python} -m espnet_sllm.data.token_select --tokenizer "${whisper_dir}" \
                --ref_text data/train/text --candidates "data/${p}" --select low \
                --low "${freq_low}" --high "${freq_high}" \
                --languages English --out "${sel}/low_${p}" \
                || die "low-frequency selection of ${p} failed"
            # --tts_conf "key=value key='a value with spaces'": shell words, quotes honoured
            eval "tts_opts=(${tts_conf})"
            ${python} -m espnet_sllm.data.accent_tts --text_dir "${sel}/low_${p}" \
                --prompt_dir data/train --out "data/ilt_tts_${p}" --tts "${tts}" --nj 2 \
                ${tts_opts[@]+--tts_conf "${tts_opts[@]}"}
            parts+=("data/ilt_tts_${p}")
            log "Fix set: hard cases of ${p} (a frequent token; > 5 % errors by the base model)"
            ${python} -m espnet_sllm.data.token_select --tokenizer "${whisper_dir}" \
                --ref_text data/train/text --candidates "${dumpdir}/raw/${p}" --select high \
                --low "${freq_low}" --high "${freq_high}" \
                --out "${sel}/high_${p}" || die "high-frequency selection of ${p} failed"
            zero_shot
            decode "${exp}/none" zeroshot.pth "${sel}/high_${p}" "${sel}/base_${p}"
            ${python} -m espnet_sllm.data.token_select --candidates "${sel}/high_${p}" \
                --hard_hyp "${sel}/base_${p}/1best_recog/text" --out "data/ilt_hard_${p}"
            parts+=("data/ilt_hard_${p}")
        done
        for u in ${unlabeled}; do
            log "Fix set: non-English audio of ${u} close to MLC-SLM speakers, pseudo-labelled"
            ${python} -m espnet_sllm.data.speaker_select --embedder "${embedder}" \
                --official "${dumpdir}/raw/train" --candidates "${dumpdir}/raw/${u}" \
                --exclude_language English --out "${sel}/speakers_${u}"
            pseudo_label "${exp}/focus+feedback" "${sel}/speakers_${u}" "data/ilt_pl_feedback_${u}"
            [ -f "data/ilt_pl_feedback_${u}/wav.scp" ] && parts+=("data/ilt_pl_feedback_${u}")
        done
        rm -rf data/ilt_fix
        keep=()
        for d in "${parts[@]}"; do keep+=(--keep "$(basename "${d}")=${d}"); done
        ${python} -m espnet_sllm.data.sample_hours "${keep[@]}" --seed 0 --prefix_ids true \
            --drop text_prev text_next --out data/ilt_fix
        log "Fix set: $(awk '$1 == "total" {print $5}' data/ilt_fix/hours.tsv) h (paper: 2,791 h)"
        touch data/ilt_fix/.done
    fi
    sllm 2 6 focus feedback fix
fi
# The requested chain (its prefixes of the full chain are done: their stamps skip them), then
# decoding, scoring and packing of its last round.
[ "${stop_stage}" -ge 6 ] && sllm "$(max 6 "${stage}")" "${stop_stage}" "${chain[@]}"
log "Successfully finished: --system ${system} --rounds ${rounds} --debug ${debug}" \
    "(stages ${stage}-${stop_stage}) [elapsed=${SECONDS}s]"
