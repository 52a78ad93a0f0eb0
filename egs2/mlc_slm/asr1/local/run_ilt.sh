#!/usr/bin/env bash
# Usage:
#   ./run.sh --system ilt_whisper|ilt_qwen2audio [--rounds focus,feedback,fix|none]
#            [--debug true|false] [--stage N] [--stop_stage M] [--ngpu N] [--train_args "..."]
#            [--pl_voters 3 (debug: 2)] [--pl_nj 1 (debug: 3)] [--feedback_hours 40000] [--pools "cv_train ..."]
#            [--pool_hours "mls_train=20000 cv_train=5000"]
#            [--keep_pools "th_vi ..."] [--unlabeled "cv_train ..."] [--tts command|espeak] [--tts_conf "key=value ..."]
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
#          a seeded selection of --pools up to --feedback_hours) -> data/ilt_feedback_<model>
#        after feedback: the Fix set -> data/ilt_fix_<model> = MLC-SLM train + hard cases (pool
#          utterances with a frequent token that the base model gets > 5 % wrong) + TTS of
#          low-frequency English pool text in the five accents + non-English unlabeled audio
#          close to MLC-SLM speakers (WavLM cosine > 0.85), pseudo-labelled by the feedback
#          round's kept epochs + the focus round's merged model (M1); its hours are printed
#          beside the paper's 2,791 h
#        then the requested chain (--rounds): prefixes shared with the full chain are not
#        trained again (exp/sllm_ilt_<model>/<round>+<round>...)
#   7-9  decode (beam 6; Thai, Japanese, Vietnamese greedy: conf/decode_ilt.yaml), score (the
#        paper's numbers beside ours: conf/paper_results_ilt_<model>.yaml); then
#        ${expdir}/RESULTS_ilt.md: Tables 1 and 2 from every ILT experiment decoded so far
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
pl_voters=
pl_nj=
feedback_hours=
pools=cv_train
keep_pools=
# caps of single pools in the Feed-Back mix (sample_hours --per_corpus_hours NAME=HOURS ...)
pool_hours=
unlabeled=cv_train
tts=
tts_conf=
embedder=
freq_low=
freq_high=
own_options="system debug stage stop_stage ngpu train_args rounds pl_voters feedback_hours pools"
own_options+=" unlabeled tts tts_conf embedder freq_low freq_high keep_pools pl_nj pool_hours"
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
    # two voters (the vote's tie rule decides more; each voter costs a decoding)
    pl_voters=${pl_voters:-2}
    pl_nj=${pl_nj:-3}   # every voter decodes at once (2 epochs + M1; mostly start-up time)
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
    pl_voters=${pl_voters:-3}
    pl_nj=${pl_nj:-1}   # one voter at a time (one model in GPU memory)
    freq_low=${freq_low:-20}
    freq_high=${freq_high:-200}
    tts=${tts:-command}
    embedder=${embedder:-microsoft/wavlm-base-plus-sv}
    extra=(--gpu_inference "$([ "${ngpu}" -gt 0 ] && echo true || echo false)")
    if [ -z "${train_args}" ] && [ "${ngpu}" -gt 1 ]; then
        train_args="--multiprocessing_distributed true"
    fi
fi
case "${pl_voters}" in ''|*[!0-9]*) die "--pl_voters must be a number, got '${pl_voters}'" ;; esac
case "${pl_nj}" in ''|0|*[!0-9]*) die "--pl_nj must be a number >= 1, got '${pl_nj}'" ;; esac
[ "${pl_voters}" -ge 2 ] || die "--pl_voters must be >= 2 (a vote needs two voters), got ${pl_voters}"
tag=ilt_${model}
exp=${expdir}/sllm_${tag}
decode_conf=conf/decode_ilt${suffix}.yaml
# The token counts use the Whisper-large-v3 tokenizer for both systems (the paper's).
whisper_dir=$([ "${debug}" = true ] && echo "${expdir}/tiny/whisper_asr" || echo openai/whisper-large-v3)
conf_of() { echo "conf/tuning/ilt_${model}_$1${suffix}.yaml"; }
# the training set of a round: the Feed-Back and Fix sets hold this system's pseudo labels
set_of() { case "$1" in focus) echo train ;; *) echo "ilt_$1_${model}" ;; esac; }
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
        --paper_results "conf/paper_results_ilt_${model}.yaml" \
        --max_sec 30 "$@" "${args[@]+"${args[@]}"}"
}
# decode <exp> <model file> <data dir> <out dir> [<decode config>]: one sllm_inference job (the
# ILT decoding options of ${decode_conf}); <out dir>/1best_recog/text
decode() {
    local opts
    opts=$(${python} -c "import shlex, sys, yaml; c = yaml.safe_load(open(sys.argv[1])) or {}; print(' '.join(f'--{k} {shlex.quote(str(v))}' for k, v in c.items()))" "${5:-${decode_conf}}")
    # shellcheck disable=SC2086
    ${python} -m espnet_sllm.bin.sllm_inference --train_config "$1/config.yaml" \
        --model_file "$1/$2" --output_dir "$4" --ngpu "$([ "${extra[1]}" = true ] && echo 1 || echo 0)" \
        --data_path_and_name_and_type "$3/wav.scp,speech,sound" \
        --data_path_and_name_and_type "$3/utt2lang,lang,text" ${opts}
}
# merged_voter <round exp>: <round exp>/merged_voter = that round's merged model (chain/merged:
# LoRA folded in, its LID vectors) decoded as it is: its config with no LoRA, nothing trained
# (LID loaded and frozen) and an empty weights file (espnet_sllm.bin.zero_shot).
merged_voter() {
    local vexp=$1/merged_voter lid
    [ -s "${vexp}/zeroshot.pth" ] && [ -s "${vexp}/config.yaml" ] && return 0
    [ -f "$1/chain/merged/config.json" ] || die "$1/chain/merged: the merged model of that round is missing (its stage 6 chain step)"
    lid=$(${python} -c "import sys, yaml; print(str(bool((yaml.safe_load(open(sys.argv[1])).get('model_conf') or {}).get('lid_embeddings'))).lower())" "$1/config.yaml")
    ${python} -m espnet_sllm.bin.zero_shot --out_dir "${vexp}" --config "$1/config.yaml" \
        --model_conf "model_name_or_path=$(cd "$1/chain/merged" && pwd)" --model_conf lora_r=0 \
        --model_conf freeze=true $([ "${lid}" = true ] && echo --model_conf freeze_lid=true)
}
# pseudo_label <round exp> <data dir> <out data dir> [<earlier round exp> ...]: decode with the
# voters, vote, relabel. Voters: the round's kept epochs (at most --pl_voters, the best first:
# ties of the vote go to it), then the merged model of each earlier round given (the paper's
# "earlier merged models"; the round's own merge is its best epoch, already a voter).
pseudo_label() {
    local rexp=$1 data=$2 out=$3 work epochs=() voters=() hyps=() v e best vexp vfile name
    shift 3
    work=${rexp}/pseudo_labels/$(basename "${data}")
    best=$(readlink "${rexp}/valid.acc.best.pth" || true)
    mapfile -t epochs < <({ [ -n "${best}" ] && echo "${best}"; ls "${rexp}" \
        | grep -E '^[0-9]+epoch\.pth$' | grep -vxF "${best:-none}"; } | head -n "${pl_voters}")
    for v in "${epochs[@]}"; do voters+=("${rexp}|${v}|${v%.pth}"); done
    for e in "$@"; do
        merged_voter "${e}"
        voters+=("${e}/merged_voter|zeroshot.pth|merged_$(basename "${e}")")
    done
    [ "${#voters[@]}" -ge 2 ] || die "${rexp}: ${#voters[@]} voter(s) (kept epochs + earlier merged models), need >= 2 (keep_nbest_models in $(conf_of focus))"
    # --pl_nj voters decode at once (each job's log: <work>/<voter>.log)
    local pids=() p
    for v in "${voters[@]}"; do
        IFS='|' read -r vexp vfile name <<< "${v}"
        hyps+=(--hyp "${work}/${name}/1best_recog/text")
        [ -s "${work}/${name}/1best_recog/text" ] && continue
        log "pseudo labels of ${data}: voter ${vexp}/${vfile} (log: ${work}/${name}.log)"
        mkdir -p "${work}"
        decode "${vexp}" "${vfile}" "${data}" "${work}/${name}" > "${work}/${name}.log" 2>&1 &
        pids+=($!)
        if [ "${#pids[@]}" -ge "${pl_nj}" ]; then
            for p in "${pids[@]}"; do wait "${p}" || die "a voter's decoding failed: see ${work}/*.log"; done
            pids=()
        fi
    done
    for p in "${pids[@]+"${pids[@]}"}"; do
        wait "${p}" || die "a voter's decoding failed: see ${work}/*.log"
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
    # Whisper for both systems (its tokenizer selects the text, its zero-shot errors the hard cases)
    ms=whisper
    [ "${model}" = qwen2audio ] && ms+=" qwen2_audio"
    for m in ${ms}; do
        ${python} -m espnet_sllm.testing.tiny_checkpoints --hf_audio "${m}" \
            --out "${expdir}/tiny/$([ "${m}" = whisper ] && echo whisper_asr || echo qwen2_audio)" \
            --text data/train/text
    done
    [ -f "${embedder}/config.json" ] || ${python} -c \
        "import sys; from espnet_sllm.testing.wavlm import make_tiny_wavlm_xvector as m; m(sys.argv[1])" \
        "${embedder}"
fi

# zero_shot <whisper|qwen2audio>: ${expdir}/sllm_ilt_<model>/none = the base checkpoint, no LoRA,
# nothing trained (espnet_sllm.bin.zero_shot: its config, an empty weights file zeroshot.pth):
# Table 1's zero-shot columns; Whisper's also decodes the hard-case candidates of the Fix set.
zero_shot() {
    local zexp=${expdir}/sllm_ilt_$1/none
    [ -s "${zexp}/zeroshot.pth" ] && [ -s "${zexp}/config.yaml" ] && return 0
    log "Zero-shot $1: ${zexp}"
    ${python} -m espnet_sllm.bin.zero_shot --out_dir "${zexp}" \
        --config "conf/tuning/ilt_$1_focus${suffix}.yaml" --model_conf lora_r=0 \
        --model_conf freeze=true --model_conf lid_embeddings=false
}

# ilt_tables: ${expdir}/RESULTS_ilt.md, the paper's Tables 1 and 2 from every ILT experiment
# decoded so far (both systems; cells of espnet_sllm/scoring/grid.py; "–" where an experiment
# or a language is not there yet).
ilt_tables() {
    cells=${expdir}/ilt_cells.tsv
    : > "${cells}"
    scores_of() {  # <exp dir>: its dev scores.json (the first decoding dir that has one)
        local f
        f=$( (ls "$1"/decode_*/dev/scores.json 2>/dev/null || true) | head -1)
        echo "${f:-$1/decode_*/dev/scores.json}"
    }
    t1="Table 1: error rate per language, MLC-SLM dev (WER; CER for Japanese, Korean, Thai)"
    for col in Whisper-large-v3:whisper/none Qwen2-Audio-7B:qwen2audio/none \
               MegaWhisper:whisper/focus+feedback+fix MegaAudio:qwen2audio/focus+feedback+fix; do
        f=$(scores_of "${expdir}/sllm_ilt_${col#*:}")
        for l in English-American English-Australian English-British English-Filipino \
                 English-Indian French German Italian Japanese Korean Portuguese Russian \
                 Spanish Thai Vietnamese; do
            printf '%s\t%s\t%s\t%s\tlang=%s\n' "${t1}" "${l}" "${col%%:*}" "${f}" "${l}" >> "${cells}"
        done
        printf '%s\tAvg (MER)\t%s\t%s\n' "${t1}" "${col%%:*}" "${f}" >> "${cells}"
    done
    t2="Table 2: ablations, MER on MLC-SLM dev"
    for c in focus feedback fix focus+feedback feedback+fix focus+fix focus+feedback+fix; do
        for m in whisper:MegaWhisper qwen2audio:MegaAudio; do
            printf '%s\t%s\t%s\t%s\n' "${t2}" "${c}" "${m#*:}" \
                "$(scores_of "${expdir}/sllm_ilt_${m%%:*}/${c}")" >> "${cells}"
        done
    done
    ${python} -m espnet_sllm.bin.results_grid --spec "${cells}" --out "${expdir}/RESULTS_ilt.md" \
        --title "Meng et al. (ILT), egs2/mlc_slm/asr1 (${expdir})"
    # The data of the rounds: hours per corpus and language of each built set (sample_hours'
    # hours.tsv; Focus trains on data/train, the paper's ≈1,500 h).
    local m r f
    {
        echo "## Training data of the rounds (hours; paper: Feed-Back 40,000 h, Fix 2,791 h)"
        for m in whisper qwen2audio; do
            for r in feedback fix; do
                f=data/ilt_${r}_${m}/hours.tsv
                [ -f "${f}" ] || continue
                printf '\n### %s (ilt_%s)\n\n' "${r}" "${m}"
                awk -F'\t' '{print "| " $1 " | " $2 " | " $3 " | " $4 " | " $5 " | " $6 " |"}
                             NR == 1 {print "|---|---|---|---|---|---|"}' "${f}"
            done
        done
    } >> "${expdir}/RESULTS_ilt.md"
    ilt_counts >> "${expdir}/RESULTS_ilt.md"
}
# ilt_counts: markdown, the utterances in and out of each selection step of the data built so far
# (line counts of the steps' files; a step not run yet has no row).
ilt_counts() {
    local sel=${expdir}/ilt_selection m p u
    n() { if [ -f "$1" ]; then grep -c . "$1" || true; else echo "–"; fi; }
    # row <step> <set> <in file> <out file> [<file that exists once the step ran>: <out file>]
    # (a step that ran and kept nothing, e.g. every vote empty, wrote no output: 0)
    row() { if [ -e "$4" ] || [ -e "${5:-$4}" ]; then printf '| %s | %s | %s | %s |\n' "$1" "$2" "$(n "$3")" "$([ -e "$4" ] && n "$4" || echo 0)"; fi; }
    echo
    echo "## Counts of the selection steps (utterances in → out)"
    echo
    echo "| step | set | in | out |"
    echo "|---|---|---|---|"
    for p in ${pools}; do
        row "low-frequency English text (< ${freq_low}: > 50 % of tokens)" "${p}" "data/${p}/text" "${sel}/low_${p}/text"
        row "accent TTS of it" "${p}" "${sel}/low_${p}/text" "data/ilt_tts_${p}/text"
        row "a high-frequency token (> ${freq_high})" "${p}" "${dumpdir}/raw/${p}/text" "${sel}/high_${p}/text"
        row "hard cases (Whisper-large-v3 error rate > 5 %)" "${p}" "${sel}/high_${p}/text" "data/ilt_hard_${p}/text"
    done
    for u in ${unlabeled}; do
        row "speaker selection (non-English, WavLM cosine > 0.85)" "${u}" "${dumpdir}/raw/${u}/wav.scp" "${sel}/speakers_${u}/wav.scp"
        for m in whisper qwen2audio; do
            row "pseudo labels by the focus voters (ilt_${m}; empty votes dropped)" "${u}" \
                "${dumpdir}/raw/${u}/wav.scp" "data/ilt_pl_${m}_focus_${u}/text" \
                "${expdir}/sllm_ilt_${m}/focus/pseudo_labels/${u}/vote/text"
            row "pseudo labels by the feedback voters + M1 (ilt_${m})" "${u}" \
                "${sel}/speakers_${u}/wav.scp" "data/ilt_pl_${m}_feedback_${u}/text" \
                "${expdir}/sllm_ilt_${m}/focus+feedback/pseudo_labels/speakers_${u}/vote/text"
        done
    done
    for m in whisper qwen2audio; do
        for p in feedback fix; do
            [ -f "data/ilt_${p}_${m}/text" ] && printf '| %s set (ilt_%s) | all parts | | %s |\n' \
                "${p}" "${m}" "$(n "data/ilt_${p}_${m}/text")"
        done
    done
    return 0
}

if [ "${rounds}" = none ]; then
    [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ] && zero_shot "${model}"
    ./sllm.sh --stage "$(max 7 "${stage}")" --stop_stage "$(min 9 "${stop_stage}")" \
        --train_set train --valid_set dev --test_sets "${test_sets}" --dumpdir "${dumpdir}" \
        --expdir "${expdir}" --tag "${tag}" --train_config "$(conf_of focus)" \
        --chain_names none "${extra[@]}" \
        --inference_config "${decode_conf}" --inference_model zeroshot.pth \
        --paper_results "conf/paper_results_ilt_${model}.yaml" "${args[@]+"${args[@]}"}"
    [ "${stop_stage}" -ge 9 ] && ilt_tables
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
feedback_set=data/$(set_of feedback)
fix_set=data/$(set_of fix)
if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ] && [ "${need_feedback}" = true ]; then
    # rebuilt when an option that shapes it changes (.done holds them)
    fb_sig="unlabeled=${unlabeled} pools=${pools} keep_pools=${keep_pools} hours=${feedback_hours} pool_hours=${pool_hours} pl_voters=${pl_voters}"
    if [ "$(cat "${feedback_set}/.done" 2>/dev/null)" != "${fb_sig}" ]; then
        log "Feed-Back mix: pseudo labels of ${unlabeled} by the focus round + ${pools} up to ${feedback_hours} h"
        keep=(--keep train=data/train)
        for u in ${unlabeled}; do
            pl=data/ilt_pl_${model}_focus_${u}
            pseudo_label "${exp}/focus" "${dumpdir}/raw/${u}" "${pl}"
            [ -f "${pl}/wav.scp" ] && keep+=(--keep "pl_${u}=${pl}")
        done
        # --keep_pools: third-party sets taken whole (the paper's "all Thai and Vietnamese")
        for p in ${keep_pools}; do keep+=(--keep "${p}=data/${p}"); done
        pool_opts=()
        for p in ${pools}; do pool_opts+=(--pool "${p}=data/${p}"); done
        rm -rf "${feedback_set}"
        # shellcheck disable=SC2086
        ${python} -m espnet_sllm.data.sample_hours "${keep[@]}" "${pool_opts[@]}" \
            ${pool_hours:+--per_corpus_hours ${pool_hours}} \
            --hours "${feedback_hours}" --seed 0 --prefix_ids true --drop text_prev text_next \
            --out "${feedback_set}"
        echo "${fb_sig}" > "${feedback_set}/.done"
    fi
    # stage 4 (the checkpoint check) ran with focus: same base checkpoint
    sllm 2 3 focus feedback
    sllm 5 6 focus feedback
fi
if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ] && [ "${need_fix}" = true ]; then
    fix_sig="unlabeled=${unlabeled} pools=${pools} freq=${freq_low}/${freq_high} tts=${tts} ${tts_conf} embedder=${embedder} pl_voters=${pl_voters}"
    if [ "$(cat "${fix_set}/.done" 2>/dev/null)" != "${fix_sig}" ]; then
        if [ -f "${fix_set}/.done" ]; then
            # built before with other options: the speaker selection and its pseudo labels are
            # stale (a crashed build, without .done, resumes from them instead)
            log "Fix set: options changed (${fix_sig}): rebuilding it"
            rm -rf "${expdir}/ilt_selection/speakers_"* "${exp}/focus+feedback/pseudo_labels/speakers_"*
        fi
        parts=(data/train)
        # Text selection, TTS and hard cases depend on Whisper-large-v3 only (its tokenizer; its
        # zero-shot errors): built once, shared by both systems.
        sel=${expdir}/ilt_selection
        mkdir -p "${sel}"
        for p in ${pools}; do
            tts_sig="freq=${freq_low}/${freq_high} tts=${tts} ${tts_conf}"
            if [ "$(cat "data/ilt_tts_${p}/.done" 2>/dev/null)" != "${tts_sig}" ]; then
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
                echo "${tts_sig}" > "data/ilt_tts_${p}/.done"
            fi
            parts+=("data/ilt_tts_${p}")
            if [ "$(cat "data/ilt_hard_${p}/.done" 2>/dev/null)" != "freq=${freq_low}/${freq_high}" ]; then
                log "Fix set: hard cases of ${p} (a frequent token; > 5 % errors by Whisper-large-v3)"
                ${python} -m espnet_sllm.data.token_select --tokenizer "${whisper_dir}" \
                    --ref_text data/train/text --candidates "${dumpdir}/raw/${p}" --select high \
                    --low "${freq_low}" --high "${freq_high}" \
                    --out "${sel}/high_${p}" || die "high-frequency selection of ${p} failed"
                zero_shot whisper
                rm -rf "${sel}/whisper_${p}"  # (decoded for another selection)
                decode "${expdir}/sllm_ilt_whisper/none" zeroshot.pth "${sel}/high_${p}" \
                    "${sel}/whisper_${p}" "conf/decode_ilt${suffix}.yaml"
                ${python} -m espnet_sllm.data.token_select --candidates "${sel}/high_${p}" \
                    --hard_hyp "${sel}/whisper_${p}/1best_recog/text" --out "data/ilt_hard_${p}"
                echo "freq=${freq_low}/${freq_high}" > "data/ilt_hard_${p}/.done"
            fi
            parts+=("data/ilt_hard_${p}")
        done
        for u in ${unlabeled}; do
            log "Fix set: non-English audio of ${u} close to MLC-SLM speakers, pseudo-labelled"
            [ -f "${sel}/speakers_${u}/wav.scp" ] || ${python} -m espnet_sllm.data.speaker_select \
                --embedder "${embedder}" --official "${dumpdir}/raw/train" \
                --candidates "${dumpdir}/raw/${u}" --exclude_language English \
                --out "${sel}/speakers_${u}"
            pl=data/ilt_pl_${model}_feedback_${u}
            # voters: the feedback round's kept epochs + the focus round's merged model
            pseudo_label "${exp}/focus+feedback" "${sel}/speakers_${u}" "${pl}" "${exp}/focus"
            [ -f "${pl}/wav.scp" ] && parts+=("${pl}")
        done
        rm -rf "${fix_set}"
        keep=()
        for d in "${parts[@]}"; do keep+=(--keep "$(basename "${d}")=${d}"); done
        ${python} -m espnet_sllm.data.sample_hours "${keep[@]}" --seed 0 --prefix_ids true \
            --drop text_prev text_next --out "${fix_set}"
        log "Fix set: $(awk '$1 == "total" {print $5}' "${fix_set}/hours.tsv") h (paper: 2,791 h)"
        echo "${fix_sig}" > "${fix_set}/.done"
    fi
    sllm 2 3 focus feedback fix
    sllm 5 6 focus feedback fix
fi
# The requested chain (its prefixes of the full chain are done: their stamps skip them), then
# decoding, scoring and packing of its last round.
[ "${stop_stage}" -ge 6 ] && sllm "$(max 6 "${stage}")" "${stop_stage}" "${chain[@]}"
[ "${stop_stage}" -ge 9 ] && ilt_tables
log "Successfully finished: --system ${system} --rounds ${rounds} --debug ${debug}" \
    "(stages ${stage}-${stop_stage}) [elapsed=${SECONDS}s]"
