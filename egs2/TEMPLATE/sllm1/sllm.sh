#!/usr/bin/env bash
# Usage:
#   ./sllm.sh --train_set train --valid_set valid --test_sets "test" \
#             --train_config conf/train.yaml [--stage 1] [--stop_stage 10] [options]
#
# The staged driver shared by every espnet_sllm recipe (egs2/<corpus>/asr1/sllm.sh links here).
# Each stage calls a Python CLI of the package, logs what it did, can be re-run alone, skips work
# whose inputs and command did not change since it last succeeded, and refuses with a clear
# message when its inputs are missing.
#
# Stamps (what "succeeded with the same command and inputs" is checked against) live in a
# .stamps/ folder of the directory they describe, so experiments sharing an expdir, dumpdir or
# decode tag never see each other's stamps, and moving or deleting a directory takes its stamps
# along (delete a stamp to force its step):
#   stage 1    data/.stamps/stage1
#   stage 2-3  ${dumpdir}/.stamps/stage2.<set>, stage3.<set>
#   stage 4    ${expdir}/llm_scratch/.stamps/stage4
#   stage 5    ${stats_dir}/.stamps/stage5; the encoder caches ${cache_dir}/<set>/.stamps/cache
#   stage 6    <exp>/.stamps/stage6 (finished), <exp>/.stamps/stage6.started (while it trains)
#   stage 7-8  <exp>/<decode dir>/<set>/.stamps/stage7, stage8
# A stamp of the old layout (${expdir}/.stamps/<stage>.<...>) still counts when it matches exactly.
#
# Stage 6 and an existing <exp>: finished with the same command and inputs: skipped. Interrupted
# (killed, crashed, node lost) with the same command and inputs: resumed from <exp>/checkpoint.pth
# (ESPnet's --resume true: model, optimizer, scheduler, reporter; each epoch reseeds, so the
# result equals an uninterrupted run, bit for bit on a CPU; the interrupted run's log is kept as
# <exp>/train.log.interrupted.<date>). Finished or interrupted with another command or other
# inputs, or with no record of them: moved to <exp>.old.<date>, with a message, and trained anew.
# Nothing to pass for any of this: re-run the same command.
#
# Stages:
#   1  data preparation        local/data.sh ${local_data_opts}  -> data/<set>
#   2  format                  16 kHz FLAC per utterance         -> ${dumpdir}/raw/{org/}<set>
#   3  filter                  empty text, too short/long audio  -> ${dumpdir}/raw/<train|valid>
#   4  model preparation       from-scratch tokenizer + LLM config (--scratch_llm_opts), or a
#                              load check of the pretrained checkpoints the config names
#   5  collect stats           ESPnet --collect_stats            -> ${expdir}/stats
#                              + with --cache_encoder true: the frozen encoder's output of every
#                              training and validation utterance -> ${cache_dir}/<set>
#                              (espnet_sllm/encoders/cache.py; rebuilt when the config's
#                              encoder part, its checkpoint or the set's wav.scp changes)
#   6  training                one or more chained configs (--train_config "a.yaml b.yaml"):
#                              stage k -> <exp>/stage<k>_<config>; after each, its cumulative
#                              checkpoint <exp>/stage<k>_*/chain/model.pth (everything trained
#                              so far + what no pretrained checkpoint gives back) starts stage
#                              k+1; at a merge (--chain_mode merge, or the LoRA changes) the LLM
#                              with LoRA folded in, chain/llm/, is stage k+1's LLM (see
#                              espnet_sllm/chain.py); a finished experiment is skipped, an
#                              interrupted one resumed (see above); retraining stage k retrains
#                              the later ones
#   7  decoding                context-agnostic, --inference_nj jobs -> <exp>/decode_*/<set>
#   8  context re-decoding     text_prev/text_next rebuilt from stage 7's hypotheses of the
#                              neighbouring segments (or the references: --context_source
#                              reference, the upper bound), then decoded again
#                              -> <exp>/decode_*_ctx_{hyp,ref}/<set> (--context_decoding true)
#   9  scoring                 sclite result.txt per set, per-language table, MER, RESULTS.md;
#                              by utt2task: BLEU/ROUGE-L for st, ROUGE-L for sqa/qa; tables per
#                              --score_group; conf/paper_results.yaml printed beside ours
#                              the config's preprocessor_conf.hyp_marker -> --hyp_marker
#                              (st sets: also the WER of the text before it, the COT transcript,
#                              in <decode dir>/<set>_transcript)
#   10 packing                 <exp>/packed/<name>.zip for sharing (hf_audio with --chain_mode
#                              merge: the merged final model, chain/merged, whole)
#
# Options (default in brackets):
#   --stage, --stop_stage       first/last stage to run [1, 10]
#   --ngpu                      GPUs for training (0: CPU) [0]
#   --nj                        parallel jobs of data formatting / stats [2]
#   --inference_nj              parallel decoding jobs per test set [2]
#   --gpu_inference             decode on a GPU [false]
#   --train_set, --valid_set, --test_sets   data set names (test_sets: space separated)
#   --dumpdir, --expdir         [dump, exp]
#   --stats_dir                 stage 5 output; give each system its own when several share an
#                               expdir [${expdir}/stats]
#   --fs                        sampling rate [16000]
#   --audio_format              flac | wav: stage 2's files (16-bit either way; FLAC lossless,
#                               about 2/3 of the bytes); whole 16-bit mono WAV/FLAC sources
#                               at --fs are referenced, not copied [flac]
#   --min_sec, --max_sec        filter limits of stage 3 [0.1, 30]
#   --speech_fold_length, --text_fold_length   ESPnet's --fold_length for batch_type folded:
#                               batches shrink for utterances longer than these [80000, 150]
#   --local_data_opts           options of local/data.sh [""]
#   --scratch_llm_opts          options of espnet_sllm.bin.prepare_scratch_llm; non-empty means
#                               stage 4 writes a from-scratch tokenizer + LLM config to
#                               ${expdir}/llm_scratch [""]
#   --train_config              training YAML(s), space separated for chained stages; needed
#                               from stage 4 on (stages 1-3 run without it)
#   --train_args                extra options of sllm_train (all of ESPnet's trainer options) [""]
#   --cache_encoder             true: stage 5 caches the frozen encoder's output of the training
#                               and validation sets (float16 ark/scp), stage 6 trains on it
#                               instead of the waveform (every config: a frozen encoder, no
#                               specaug, one encoder part for all chained configs) [false]
#   --cache_dir                 where the caches go, one folder per set; give each system its
#                               own when several with other encoders share an expdir
#                               [${expdir}/encoder_cache]
#   --cache_opts                extra options of espnet_sllm.bin.cache_encoder (e.g. --dtype
#                               float32, --batch_size 16, --batch_seconds 240) [""]
#   --num_splits                >1: stage 6 splits each training set into N parts and trains
#                               with ESPnet's --multiple_iterator true (one part's index in
#                               memory at a time; for 10^4-10^5 hours) [1]
#   --train_sets                one training set per chained config, space separated (stages
#                               2-3 prepare them, stage 5 collects stats per set) [--train_set
#                               for every config]
#   --chain_mode                cumulative | merge: how a chained config starts from the one
#                               before: its cumulative checkpoint (a merge only where the LoRA
#                               changes), or a merge at every boundary (iterative LoRA rounds)
#                               [cumulative]
#   --chain_names               one short name per chained config, space separated: config k
#                               trains in ${expdir}/sllm_<tag>/<name_1>+...+<name_k> (named by
#                               its chain prefix), so chains sharing a prefix share its
#                               experiments: ILT's ablations --train_config "focus fix" and
#                               "focus feedback fix" train focus once [""]: stage<k>_<config>
#   --decode_stages             last | all: stages 7-9 decode and score the last chained config
#                               or every one, each into its own experiment dir [last]
#   --tag                       experiment name [train config basename; "data" without one]
#   --inference_config          YAML of sllm_inference options [""]
#   --inference_args            extra options of sllm_inference [""]
#   --inference_model           checkpoint file name in the exp dir [valid.acc.best.pth]
#   --inference_tag             name of the decoding dir [decode_<config>_<model>]
#   --context_decoding          run stage 8 [false]
#   --context_source            hypothesis | reference [hypothesis]
#   --score_opts                extra options of sllm_score (e.g. --unit char) [""]
#   --paper_results             a paper's numbers, printed beside ours by stage 9
#                               (espnet_sllm/scoring/paper.py) [conf/paper_results.yaml when
#                               it exists]
#   --score_group               per-utterance files of each test set (e.g. utt2subdialect),
#                               space separated: stage 9 adds a table of error rates per value
#                               of each (a set without the file: skipped, logged) [""]
#   --python                    the Python interpreter [python3]
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*" >&2
}
die() {  # reports the line of the stage that failed, not of the helper that noticed it
    local i=1
    while [[ "${FUNCNAME[$i]:-main}" =~ ^(require|die)$ ]]; do i=$((i + 1)); done
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[$i]##*/}:${BASH_LINENO[$((i - 1))]}:${FUNCNAME[$i]:-main}) ERROR: $*" >&2
    exit 1
}
min() {
    local a b
    a=$1
    for b in "$@"; do [ "${b}" -le "${a}" ] && a=${b}; done
    echo "${a}"
}

stage=1
stop_stage=10
ngpu=0
nj=2
inference_nj=2
gpu_inference=false
train_set=
valid_set=
test_sets=
dumpdir=dump
expdir=exp
fs=16000
audio_format=flac
min_sec=0.1
max_sec=30
speech_fold_length=80000
text_fold_length=150
local_data_opts=
scratch_llm_opts=
train_config=
train_args=
num_splits=1
cache_encoder=false
cache_dir=
cache_opts=
train_sets=
chain_mode=cumulative
chain_names=
decode_stages=last
tag=
inference_config=
inference_args=
inference_model=valid.acc.best.pth
inference_tag=
stats_dir=
context_decoding=false
context_source=hypothesis
score_opts=
score_group=
paper_results=
python=python3

help_message=$(sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//')
run_args=$(printf '%q ' "$0" "$@")
. ./path.sh
. ./cmd.sh
. scripts/utils/parse_options.sh
[ $# -eq 0 ] || die "unexpected positional arguments: $*"

[ -n "${train_set}" ] || die "--train_set is required"
[ -n "${valid_set}" ] || die "--valid_set is required"
# Stages 1-3 (data preparation) need no model: a recipe can prepare its data before it has
# a training config (e.g. ./run.sh --stage 1 --stop_stage 3 on a new corpus).
if [ -z "${train_config}" ] && [ "${stop_stage}" -ge 4 ]; then
    die "--train_config is required (stages 4-10 use it; stages 1-3 can run without it)"
fi
for c in ${train_config}; do [ -f "${c}" ] || die "train config not found: ${c}"; done
[ -z "${inference_config}" ] || [ -f "${inference_config}" ] \
    || die "inference config not found: ${inference_config}"

case "${chain_mode}" in cumulative|merge) ;; *) die "--chain_mode must be cumulative or merge, got '${chain_mode}'" ;; esac
case "${decode_stages}" in last|all) ;; *) die "--decode_stages must be last or all, got '${decode_stages}'" ;; esac
case "${audio_format}" in flac|wav) ;; *) die "--audio_format must be flac or wav, got '${audio_format}'" ;; esac
case "${cache_encoder}" in true|false) ;; *) die "--cache_encoder must be true or false, got '${cache_encoder}'" ;; esac
n_configs=$(echo "${train_config}" | wc -w)
if [ -n "${train_sets}" ] && [ "$(echo "${train_sets}" | wc -w)" -ne "${n_configs}" ]; then
    die "--train_sets names $(echo "${train_sets}" | wc -w) sets for ${n_configs} training configs (one set per config)"
fi
if [ -n "${chain_names}" ] && [ "$(echo "${chain_names}" | wc -w)" -ne "${n_configs}" ]; then
    die "--chain_names names $(echo "${chain_names}" | wc -w) configs, --train_config has ${n_configs}"
fi
# stage_exp <k> <config>: the experiment dir of chained config k
stage_exp() {
    if [ -n "${chain_names}" ]; then
        echo "${sllm_exp}/$(echo "${chain_names}" | tr ' ' '\n' | awk NF | head -n "$1" | paste -sd+)"
    elif [ "${n_configs}" -gt 1 ]; then echo "${sllm_exp}/stage$1_$(basename "$2" .yaml)"; else echo "${sllm_exp}"; fi
}
# train_set_of <k>: the training set of chained config k (1-based)
train_set_of() {
    if [ -n "${train_sets}" ]; then echo "${train_sets}" | awk -v k="$1" '{print $k}'; else echo "${train_set}"; fi
}
# stats_of <set>: stage 5's output for a training set (the main one: ${stats_dir})
stats_of() {
    if [ "$1" = "${train_set}" ]; then echo "${stats_dir}"; else echo "${stats_dir}_$1"; fi
}
last_config=${train_config##* }
if [ -z "${tag}" ]; then
    if [ -n "${last_config}" ]; then tag=$(basename "${last_config}" .yaml); else tag=data; fi
fi
sllm_exp=${expdir}/sllm_${tag}
[ -n "${stats_dir}" ] || stats_dir=${expdir}/stats
[ -n "${cache_dir}" ] || cache_dir=${expdir}/encoder_cache
mkdir -p "${sllm_exp}"
echo "${run_args}" >> "${sllm_exp}/run.sh.cmd"   # the exact command, one line per invocation

# ---------------------------------------------------------------------------------------------
# Skip logic: a stage step is skipped when it succeeded before with the same command and the
# same input files (size + mtime of every file under the given paths; hidden files and folders,
# e.g. .stamps, are not inputs).
signature() {  # $1: command string, rest: input paths
    local cmd=$1
    shift
    {
        echo "${cmd}"
        for p in "$@"; do
            if [ -e "${p}" ]; then
                find -L "${p}" -type d -name '.?*' -prune -o -type f ! -name '.*' \
                    -printf '%p %s %T@\n' 2>/dev/null | sort
            else
                echo "missing ${p}"
            fi
        done
    } | md5sum | cut -d' ' -f1
}
# A stamp (a file <dir>/.stamps/<step>, see the header) records the signature of the inputs and
# of the outputs; a step is done only when both still match (outputs overwritten by another run,
# e.g. --debug, make it run again).
is_done() {  # $1: stamp file, $2: its name in the old layout, $3: input signature, rest: outputs
    local stamp=$1 legacy=${expdir}/.stamps/$2 value
    value="$3:$(signature "" "${@:4}")"
    [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${value}" ] && return 0
    # The old layout kept every stamp in ${expdir}/.stamps; one that matches exactly (its output
    # signature names the output paths) is still valid: it is copied to its new place.
    if [ ! -f "${stamp}" ] && [ -f "${legacy}" ] && [ "$(cat "${legacy}")" = "${value}" ]; then
        mkdir -p "$(dirname "${stamp}")"
        cp "${legacy}" "${stamp}"
        return 0
    fi
    return 1
}
mark_done() {  # same arguments as is_done
    local stamp=$1
    mkdir -p "$(dirname "${stamp}")"
    echo "$3:$(signature "" "${@:4}")" > "${stamp}"
}
require() {  # paths that must exist before a stage runs
    local p
    for p in "$@"; do
        [ -e "${p}" ] || die "missing input: ${p} (run the earlier stages first)"
    done
}
yaml_opts() {  # YAML mapping file -> "--key value" options (for sllm_inference)
    ${python} - "$1" <<'EOF'
import shlex, sys, yaml
conf = yaml.safe_load(open(sys.argv[1])) or {}
print(" ".join(f"--{k} {shlex.quote(str(v))}" for k, v in conf.items()))
EOF
}

config_value() {  # $1 YAML file, $2... keys: the value (a string) or nothing
    ${python} - "$@" <<'EOF'
import sys, yaml
value = yaml.safe_load(open(sys.argv[1])) or {}
for key in sys.argv[2:]:
    value = value.get(key) if isinstance(value, dict) else None
if isinstance(value, str):
    sys.stdout.write(value)
EOF
}

# Each set once, in order (the validation set may also be a test set).
all_sets=$(echo "${train_set} ${train_sets} ${valid_set} ${test_sets}" | tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ')
# The training sets (filtered in stage 3, stats in stage 5), each once.
train_sets_all=$(echo "${train_set} ${train_sets}" | tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ')

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "Stage 1: data preparation: local/data.sh ${local_data_opts}"
    require local/data.sh
    # The corpus roots as db.sh resolves them now (environment overrides included).
    db_values=$(set +u; . ./db.sh >/dev/null 2>&1; for v in $(grep -oE '^[A-Za-z_][A-Za-z0-9_]*=' db.sh | tr -d =); do echo "${v}=${!v}"; done)
    sig=$(signature "local/data.sh ${local_data_opts} ${db_values}" local db.sh)
    data_dirs=()
    for s in ${all_sets}; do data_dirs+=("data/${s}"); done
    if is_done data/.stamps/stage1 stage1 "${sig}" "${data_dirs[@]}"; then
        log "Stage 1: skipped (done with the same inputs; delete data/.stamps/stage1 to force)"
    else
        # shellcheck disable=SC2086
        local/data.sh ${local_data_opts}
        for s in ${all_sets}; do require "data/${s}/wav.scp"; done
        mark_done data/.stamps/stage1 stage1 "${sig}" "${data_dirs[@]}"
    fi
fi

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    log "Stage 2: format data: ${fs} Hz ${audio_format} per utterance in ${dumpdir}/raw"
    for s in ${all_sets}; do
        require "data/${s}/wav.scp"
        if [[ " ${train_sets_all} ${valid_set} " == *" ${s} "* ]]; then
            out=${dumpdir}/raw/org/${s}    # stage 3 filters these into ${dumpdir}/raw/${s}
        else
            out=${dumpdir}/raw/${s}
        fi
        # --audio_format is part of ${cmd}, hence of the stamp's signature: changing it reruns
        # this step (format_data rewrites every file in the new format, the stale ones go).
        cmd="${python} -m espnet_sllm.bin.format_data --in data/${s} --out ${out} --fs ${fs} --nj ${nj} --audio_format ${audio_format}"
        sig=$(signature "${cmd}" "data/${s}")
        stamp=${dumpdir}/.stamps/stage2.${s}
        if is_done "${stamp}" "stage2.${s}" "${sig}" "${out}/wav.scp" "${out}/text"; then
            log "Stage 2: ${s}: skipped (unchanged)"
            continue
        fi
        ${cmd}
        mark_done "${stamp}" "stage2.${s}" "${sig}" "${out}/wav.scp" "${out}/text"
    done
fi

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    log "Stage 3: filter ${train_sets_all}and ${valid_set}: empty text, < ${min_sec} s, > ${max_sec} s"
    for s in ${train_sets_all} ${valid_set}; do
        require "${dumpdir}/raw/org/${s}/wav.scp"
        cmd="${python} -m espnet_sllm.bin.filter_data --in ${dumpdir}/raw/org/${s} --out ${dumpdir}/raw/${s} --min_sec ${min_sec} --max_sec ${max_sec} --fs ${fs}"
        sig=$(signature "${cmd}" "${dumpdir}/raw/org/${s}/wav.scp" "${dumpdir}/raw/org/${s}/text")
        stamp=${dumpdir}/.stamps/stage3.${s}
        if is_done "${stamp}" "stage3.${s}" "${sig}" "${dumpdir}/raw/${s}/wav.scp"; then
            log "Stage 3: ${s}: skipped (unchanged)"
            continue
        fi
        ${cmd}
        mark_done "${stamp}" "stage3.${s}" "${sig}" "${dumpdir}/raw/${s}/wav.scp"
    done
fi

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    if [ -n "${scratch_llm_opts}" ]; then
        log "Stage 4: from-scratch tokenizer + LLM config -> ${expdir}/llm_scratch"
        require "${dumpdir}/raw/${train_set}/text"
        cmd="${python} -m espnet_sllm.bin.prepare_scratch_llm --text ${dumpdir}/raw/${train_set}/text --out ${expdir}/llm_scratch ${scratch_llm_opts}"
        sig=$(signature "${cmd}" "${dumpdir}/raw/${train_set}/text")
        stamp=${expdir}/llm_scratch/.stamps/stage4
        if is_done "${stamp}" stage4 "${sig}" "${expdir}/llm_scratch/config.json"; then
            log "Stage 4: skipped (unchanged)"
        else
            ${cmd}
            mark_done "${stamp}" stage4 "${sig}" "${expdir}/llm_scratch/config.json"
        fi
    fi
    # --chain_mode merge: every later config starts from the merge of the one before, whatever
    # checkpoint it names: only the first config's checkpoints are loaded.
    _check=${train_config}
    [ "${chain_mode}" = merge ] && _check=${train_config%% *}
    log "Stage 4: checking that the pretrained models of ${_check} load"
    for c in ${_check}; do
        ${python} -m espnet_sllm.bin.check_pretrained --config "${c}"
    done
fi

# ---------------------------------------------------------------------------------------------
# Optional per-utterance files of a data directory and the data names they become, as
# <file>:<name>: every one a directory holds is passed to training, stats and decoding with no
# change here (SLLMTask's OPTIONAL_DATA_NAMES accepts the same names; tests/recipe checks that
# the two lists agree). Rule: utt2<x> -> <x> (utt2tgtlang -> tgt_lang, as the scorer calls it),
# text_<x> -> text_<x>. The names are fields of the prompt templates and of target_template
# (preprocessor_conf), e.g. {task}, {tgt_lang}, {text_tgt}. Every utterance needs a non-empty
# value (ESPnet's readers refuse empty ones), except in the context files.
data_files="utt2lang:lang utt2task:task utt2tgtlang:tgt_lang utt2subdialect:subdialect"
data_files+=" text_src:text_src text_tgt:text_tgt"
context_files="text_prev:text_prev text_next:text_next"

# $5: the set's encoder cache (its encoder_feats.scp, or the split folder of it) to read in
# place of wav.scp (--cache_encoder true, training only; text then comes first, as ESPnet looks
# for utt2category beside the first data file).
data_opts() {  # $1 prefix (train_/valid_/""), $2 data dir, $3 with text, $4 with context, $5 cache
    local prefix=$1 d=$2 with_text=$3 with_context=${4:-false} feats=${5:-} name
    if [ -n "${feats}" ]; then
        echo -n "--${prefix}data_path_and_name_and_type ${d}/text,text,text "
        echo -n "--${prefix}data_path_and_name_and_type ${feats},encoder_feats,kaldi_ark "
    else
        echo -n "--${prefix}data_path_and_name_and_type ${d}/wav.scp,speech,sound "
        [ "${with_text}" = true ] && echo -n "--${prefix}data_path_and_name_and_type ${d}/text,text,text "
    fi
    local names=${data_files}
    # (-e: with --num_splits each "file" of a split set is a folder of parts)
    # Context files hold empty values at session ends, which ESPnet's streaming reader (used by
    # --collect_stats) refuses; training reads them with the map-style dataset, decoding too.
    [ "${with_context}" = true ] && names+=" ${context_files}"
    for name in ${names}; do
        [ -e "${d}/${name%%:*}" ] && echo -n "--${prefix}data_path_and_name_and_type ${d}/${name%%:*},${name##*:},text "
    done
    return 0
}

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    # One stats dir per training set a chained config uses, with the first config using it
    # (shapes only depend on the audio and the tokenised text).
    _valid=${dumpdir}/raw/${valid_set}
    for _set in $(for k in $(seq "${n_configs}"); do train_set_of "${k}"; done | awk '!seen[$0]++'); do
        _stats=$(stats_of "${_set}")
        log "Stage 5: collect stats of ${_set} -> ${_stats}"
        _train=${dumpdir}/raw/${_set}
        require "${_train}/wav.scp" "${_valid}/wav.scp"
        first_config=
        k=0
        for c in ${train_config}; do
            k=$((k + 1))
            if [ -z "${first_config}" ] && [ "$(train_set_of "${k}")" = "${_set}" ]; then first_config=${c}; fi
        done
        cmd="collect_stats ${first_config} ${train_args}"
        sig=$(signature "${cmd}" "${_train}/wav.scp" "${_train}/text" "${_valid}/wav.scp" \
            "${_valid}/text" "${first_config}")
        stamp=${_stats}/.stamps/stage5
        if is_done "${stamp}" stage5 "${sig}" "${_stats}/train/speech_shape"; then
            log "Stage 5: skipped (${_set}: unchanged)"
        else
            _nj=$(min "${nj}" "$(wc -l < "${_train}/wav.scp")" "$(wc -l < "${_valid}/wav.scp")")
            _logdir=${_stats}/logdir
            mkdir -p "${_logdir}"
            ${python} -m espnet_sllm.bin.split_keys "${_train}/wav.scp" "${_logdir}/train" "${_nj}"
            ${python} -m espnet_sllm.bin.split_keys "${_valid}/wav.scp" "${_logdir}/valid" "${_nj}"
            # shellcheck disable=SC2046,SC2086
            ${train_cmd} JOB=1:"${_nj}" "${_logdir}/stats.JOB.log" \
                ${python} -m espnet_sllm.bin.sllm_train --collect_stats true --use_preprocessor true \
                    --config "${first_config}" --ngpu 0 --num_workers 0 \
                    --train_shape_file "${_logdir}/train/keys.JOB.scp" \
                    --valid_shape_file "${_logdir}/valid/keys.JOB.scp" \
                    --output_dir "${_logdir}/stats.JOB" \
                    $(data_opts train_ "${_train}" true) $(data_opts valid_ "${_valid}" true) \
                    ${train_args}
            stats_inputs=()
            for j in $(seq "${_nj}"); do stats_inputs+=(--input_dir "${_logdir}/stats.${j}"); done
            ${python} -m espnet2.bin.aggregate_stats_dirs "${stats_inputs[@]}" --output_dir "${_stats}"
            mark_done "${stamp}" stage5 "${sig}" "${_stats}/train/speech_shape"
        fi
    done
    if [ "${cache_encoder}" = true ]; then
        # One cache per set serves every chained config, so they must share the encoder part
        # (the hash of espnet_sllm/encoders/cache.py: frontend/normalize/encoder config and
        # checkpoint files). The stamp holds that hash, not the whole config: a change of the
        # LLM or projector keeps the cache.
        _hash=
        for c in ${train_config}; do
            # shellcheck disable=SC2086
            h=$(${python} -m espnet_sllm.bin.cache_encoder --train_config "${c}" --print_hash true ${train_args}) \
                || die "--cache_encoder true: cannot read the encoder part of ${c} (see above)"
            [ -z "${_hash}" ] || [ "${h}" = "${_hash}" ] || die "--cache_encoder true: ${c} has another encoder part (frontend/normalize/encoder config or checkpoint) than ${train_config%% *}: one cache per set serves every chained config; train these configs without the cache"
            _hash=${h}
        done
        _gpu=0
        [ "${ngpu}" -gt 0 ] && _gpu=1
        for _set in ${train_sets_all} ${valid_set}; do
            _data=${dumpdir}/raw/${_set}
            _cache=${cache_dir}/${_set}
            require "${_data}/wav.scp"
            log "Stage 5: encoder cache of ${_set} -> ${_cache} (log: ${_cache}/cache.log)"
            sig=$(signature "cache ${_hash} ${cache_opts}" "${_data}/wav.scp")
            stamp=${_cache}/.stamps/cache
            if is_done "${stamp}" "cache.${_set}" "${sig}" "${_cache}/encoder_feats.scp"; then
                log "Stage 5: encoder cache of ${_set}: skipped (same encoder and data)"
                continue
            fi
            mkdir -p "${_cache}"
            # Resumable: a killed run redoes only the chunk it was writing.
            # shellcheck disable=SC2086
            ${cuda_cmd} --gpu "${_gpu}" "${_cache}/cache.log" \
                ${python} -m espnet_sllm.bin.cache_encoder --train_config "${train_config%% *}" \
                    --data_path_and_name_and_type "${_data}/wav.scp,speech,sound" \
                    --output_dir "${_cache}" --ngpu "${_gpu}" ${cache_opts} ${train_args} \
                || die "the encoder cache of ${_set} failed: see ${_cache}/cache.log"
            mark_done "${stamp}" "cache.${_set}" "${sig}" "${_cache}/encoder_feats.scp"
        done
    fi
fi

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    _valid=${dumpdir}/raw/${valid_set}
    init_opts=()
    init_model=()
    stage_exps=()
    configs=(${train_config})
    k=0
    for c in ${train_config}; do
        k=$((k + 1))
        _exp=$(stage_exp "${k}" "${c}")
        _set=$(train_set_of "${k}")
        _train=${dumpdir}/raw/${_set}
        _stats=$(stats_of "${_set}")
        require "${_stats}/train/speech_shape" "${_stats}/valid/speech_shape"
        log "Stage 6: training ${k}/${n_configs}: ${c} on ${_set} -> ${_exp} (log: ${_exp}/train.log)"
        cmd="train ${c} ${train_args} ${init_opts[*]:-}"
        [ "${num_splits}" -gt 1 ] && cmd+=" num_splits=${num_splits}"
        _feats=()   # the encoder caches read in place of wav.scp (--cache_encoder true)
        if [ "${cache_encoder}" = true ]; then
            _feats=("${cache_dir}/${_set}/encoder_feats.scp" "${cache_dir}/${valid_set}/encoder_feats.scp")
            for f in "${_feats[@]}"; do
                [ -e "${f}" ] || die "missing input: ${f} (run stage 5 with --cache_encoder true first)"
            done
            cmd+=" cache_encoder"
        fi
        # The previous training stage's cumulative checkpoint (and merged LLM) is an input too:
        # retrained, it retrains this one. So is a rebuilt encoder cache.
        sig=$(signature "${cmd}" "${c}" "${_train}/text" "${_valid}/text" \
            "${_stats}/train/speech_shape" ${init_model[@]+"${init_model[@]}"} \
            ${_feats[@]+"${_feats[@]}"})
        _stamps=${_exp}/.stamps
        if is_done "${_stamps}/stage6" "stage6.${k}" "${sig}" "${_exp}/valid.acc.best.pth"; then
            log "Stage 6: ${c}: skipped (${_exp} finished with the same command and inputs)"
        else
            # What is already in ${_exp}: resumed only when it is this very run, interrupted.
            why=""
            if [ -f "${_stamps}/stage6" ]; then
                why="it finished with another command or other inputs (or its outputs changed)"
            elif [ -f "${_stamps}/stage6.started" ]; then
                [ "$(cat "${_stamps}/stage6.started")" = "${sig}" ] \
                    || why="it was interrupted, and the command or inputs changed since it started"
            elif [ -e "${_exp}/checkpoint.pth" ] || [ -e "${_exp}/config.yaml" ]; then
                why="it holds a training run with no record of its command and inputs"
            fi
            if [ -n "${why}" ]; then
                # ESPnet's --resume would continue (or take as complete) a run of another config.
                _old=${_exp}.old.$(date '+%Y%m%d%H%M%S')
                [ -e "${_old}" ] && _old+=.$$
                log "Stage 6: ${_exp}: ${why}: moving it to ${_old}; training from scratch"
                mv "${_exp}" "${_old}"
                mkdir -p "${_exp}"
                [ "${_exp}" = "${sllm_exp}" ] && echo "${run_args}" >> "${sllm_exp}/run.sh.cmd"
            elif [ -f "${_stamps}/stage6.started" ]; then
                if [ -e "${_exp}/checkpoint.pth" ]; then
                    log "Stage 6: ${_exp} was interrupted: resuming from ${_exp}/checkpoint.pth" \
                        "(same command and inputs)"
                else
                    log "Stage 6: ${_exp} was interrupted before its first checkpoint: starting again"
                fi
                # The launcher rewrites train.log: the interrupted run's log is kept aside.
                [ -f "${_exp}/train.log" ] \
                    && mv "${_exp}/train.log" "${_exp}/train.log.interrupted.$(date '+%Y%m%d%H%M%S')"
            fi
            mkdir -p "${_stamps}"
            echo "${sig}" > "${_stamps}/stage6.started"
            _train_data=${_train}
            _train_feats=${_feats[0]:-}
            _shapes=(--train_shape_file "${_stats}/train/speech_shape"
                     --train_shape_file "${_stats}/train/text_shape")
            if [ "${num_splits}" -gt 1 ]; then
                # ESPnet's --multiple_iterator: each training path is a folder of N parts, and
                # only one part's index is built at a time (espnet_sllm/data/splits.py).
                _train_data=${_stats}/splits${num_splits}
                _files=("${_train}/wav.scp" "${_train}/text")
                for name in ${data_files} ${context_files}; do
                    [ -f "${_train}/${name%%:*}" ] && _files+=("${_train}/${name%%:*}")
                done
                [ -n "${_train_feats}" ] && _files+=("${_train_feats}")
                rm -rf "${_train_data}"
                ${python} -m espnet_sllm.data.splits --num_splits "${num_splits}" \
                    --out_dir "${_train_data}" "${_files[@]}" "${_shapes[1]}" "${_shapes[3]}"
                if [ -n "${_train_feats}" ]; then
                    # sllm_train checks the cache's record, which it looks for in the folder.
                    cp "$(dirname "${_train_feats}")/cache_info.json" "${_train_data}/encoder_feats.scp/"
                    _train_feats=${_train_data}/encoder_feats.scp
                fi
                _shapes=(--train_shape_file "${_train_data}/speech_shape"
                         --train_shape_file "${_train_data}/text_shape" --multiple_iterator true)
            fi
            # --resume true: ESPnet continues from ${_exp}/checkpoint.pth when there is one.
            # shellcheck disable=SC2046,SC2086
            ${cuda_cmd} --gpu "${ngpu}" "${_exp}/train.log" \
                ${python} -m espnet_sllm.bin.sllm_train --use_preprocessor true \
                    --config "${c}" --ngpu "${ngpu}" --resume true --output_dir "${_exp}" \
                    "${_shapes[@]}" \
                    --valid_shape_file "${_stats}/valid/speech_shape" \
                    --valid_shape_file "${_stats}/valid/text_shape" \
                    --fold_length "${speech_fold_length}" --fold_length "${text_fold_length}" \
                    $(data_opts train_ "${_train_data}" true true "${_train_feats}") \
                    $(data_opts valid_ "${_valid}" true true "${_feats[1]:-}") \
                    "${init_opts[@]}" ${train_args}
            require "${_exp}/valid.acc.best.pth"
            mark_done "${_stamps}/stage6" "stage6.${k}" "${sig}" "${_exp}/valid.acc.best.pth"
            rm -f "${_stamps}/stage6.started"
        fi
        if [ "${n_configs}" -gt 1 ] || [ "${chain_mode}" = merge ]; then
            # The cumulative checkpoint of this stage and how the next one starts from it
            # (espnet_sllm/chain.py): <exp>/chain/{model.pth, llm/ or merged/ at a merge,
            # next_opts}. chain_mode merge merges every stage, the last one too (stage 10 packs
            # it), whatever comes next: the chain dir of a shared prefix (--chain_names) is the
            # same in every chain, so later stages never retrain because another chain ran.
            _chain=(--config "${_exp}/config.yaml" --model_file "${_exp}/valid.acc.best.pth"
                    --out_dir "${_exp}/chain" --input_config "${c}" --chain_mode "${chain_mode}")
            _next=
            [ "${k}" -lt "${n_configs}" ] && _next=${configs[${k}]}
            [ -n "${_next}" ] && _chain+=(--next_config "${_next}")
            _sig_chain=("${_chain[@]}")
            if [ "${chain_mode}" = merge ]; then
                _sig_chain=("${_chain[@]:0:10}")
                _next=
            fi
            sig=$(signature "chain ${_sig_chain[*]}" "${_exp}/valid.acc.best.pth" "${_exp}/config.yaml" \
                "${c}" ${_next:+"${_next}"})
            if is_done "${_exp}/chain/.stamps/chain" "chain.${k}" "${sig}" "${_exp}/chain/model.pth"; then
                log "Stage 6: ${_exp}/chain: skipped (unchanged)"
            else
                log "Stage 6: cumulative checkpoint of stage ${k} -> ${_exp}/chain"
                rm -rf "${_exp}/chain"
                ${python} -m espnet_sllm.bin.chain_step "${_chain[@]}" || die "chain step of ${_exp} failed"
                mark_done "${_exp}/chain/.stamps/chain" "chain.${k}" "${sig}" "${_exp}/chain/model.pth"
            fi
            if [ "${k}" -lt "${n_configs}" ]; then
                mapfile -t init_opts < "${_exp}/chain/next_opts"
                init_model=("${_exp}/chain/model.pth")
                [ -d "${_exp}/chain/llm" ] && init_model+=("${_exp}/chain/llm")
                [ -d "${_exp}/chain/merged" ] && init_model+=("${_exp}/chain/merged")
                log "Stage 6: stage $((k + 1)) starts with: ${init_opts[*]}"
            fi
        fi
        stage_exps+=("${_exp}")
        final_exp=${_exp}
    done
    echo "${final_exp}" > "${sllm_exp}/final_exp"
    printf '%s\n' "${stage_exps[@]}" > "${sllm_exp}/stage_exps"
fi

final_exp=${sllm_exp}
[ -f "${sllm_exp}/final_exp" ] && final_exp=$(cat "${sllm_exp}/final_exp")
# Named chains (--chain_names): the last config's experiment is known from the names (several
# chains share ${sllm_exp}, so its final_exp may be another chain's).
[ -n "${chain_names}" ] && final_exp=$(stage_exp "${n_configs}" "${last_config}")
# The experiments stages 7-9 decode and score: the last chained config, or (--decode_stages all)
# every one (stage 6 lists them; without that list, derived from --train_config).
decode_exps=("${final_exp}")
if [ "${decode_stages}" = all ]; then
    decode_exps=()
    k=0
    for c in ${train_config}; do
        k=$((k + 1))
        decode_exps+=("$(stage_exp "${k}" "${c}")")
    done
fi
if [ -z "${inference_tag}" ]; then
    _conf_name=$(basename "${inference_config:-decode}" .yaml)
    _conf_name=${_conf_name#decode}
    inference_tag=decode${_conf_name:+_${_conf_name#_}}_${inference_model%.pth}
    [ -n "${inference_args}" ] && inference_tag+=_$(echo "${inference_args}" | md5sum | cut -c1-6)
fi

# decode_set <data dir> <output dir> [extra sllm_inference options]: --inference_nj jobs through
# ${decode_cmd} (or ${cuda_cmd} with --gpu_inference true), merged into <output dir>/text etc.;
# the model is ${_dexp} (the experiment being decoded, see decode_exps). A job killed half-way
# resumes when the stage runs again (its logdir/output.JOB/1best_recog/.partial.jsonl: only the
# missing utterances are decoded); unreadable utterances are listed in <output dir>/failed.
decode_set() {
    local data=$1 dir=$2 cmd ngpu nj opts=""
    shift 2
    [ -n "${inference_config}" ] && opts=$(yaml_opts "${inference_config}")
    if [ "${gpu_inference}" = true ]; then cmd=${cuda_cmd}; ngpu=1; else cmd=${decode_cmd}; ngpu=0; fi
    nj=$(min "${inference_nj}" "$(wc -l < "${data}/wav.scp")")
    mkdir -p "${dir}/logdir"
    ${python} -m espnet_sllm.bin.split_keys "${data}/wav.scp" "${dir}/logdir" "${nj}"
    # shellcheck disable=SC2046,SC2086
    ${cmd} --gpu "${ngpu}" JOB=1:"${nj}" "${dir}/logdir/decode.JOB.log" \
        ${python} -m espnet_sllm.bin.sllm_inference --ngpu "${ngpu}" \
            --train_config "${_dexp}/config.yaml" \
            --model_file "${_dexp}/${inference_model}" \
            --key_file "${dir}/logdir/keys.JOB.scp" \
            --output_dir "${dir}/logdir/output.JOB" \
            $(data_opts "" "${data}" false false) "$@" ${opts} ${inference_args}
    ${python} -m espnet_sllm.bin.merge_outputs "${dir}/logdir" --nj "${nj}" --out_dir "${dir}"
    if [ -s "${dir}/failed" ]; then
        log "WARNING: $(wc -l < "${dir}/failed") utterances of ${data} could not be read: listed in" \
            "${dir}/failed, empty hypotheses in ${dir}/text (scored as all deletions)"
    fi
}

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 7 ]; then
    for _dexp in "${decode_exps[@]}"; do
        require "${_dexp}/config.yaml" "${_dexp}/${inference_model}"
        _opts=""
        [ -n "${inference_config}" ] && _opts=$(yaml_opts "${inference_config}")
        for s in ${test_sets}; do
            _data=${dumpdir}/raw/${s}
            _dir=${_dexp}/${inference_tag}/${s}
            require "${_data}/wav.scp"
            log "Stage 7: decoding ${s} -> ${_dir} (${inference_nj} jobs)"
            cmd="decode ${_opts} ${inference_args}"
            sig=$(signature "${cmd}" "${_data}/wav.scp" "${_dexp}/${inference_model}" "${_dexp}/config.yaml")
            stamp=${_dir}/.stamps/stage7
            if is_done "${stamp}" "stage7.${tag}.${inference_tag}.${s}" "${sig}" "${_dir}/text"; then
                log "Stage 7: ${s}: skipped (decoded with the same model and options)"
                continue
            fi
            decode_set "${_data}" "${_dir}"
            mark_done "${stamp}" "stage7.${tag}.${inference_tag}.${s}" "${sig}" "${_dir}/text"
        done
    done
fi

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 8 ] && [ "${stop_stage}" -ge 8 ]; then
    for _dexp in "${decode_exps[@]}"; do
        if [ "${context_decoding}" != true ]; then
            log "Stage 8: skipped (no context re-decoding requested: --context_decoding false)"
        else
            case "${context_source}" in
                hypothesis) ctx_tag=${inference_tag}_ctx_hyp ;;
                reference) ctx_tag=${inference_tag}_ctx_ref ;;
                *) die "--context_source must be hypothesis or reference, got '${context_source}'" ;;
            esac
            _opts=""
            [ -n "${inference_config}" ] && _opts=$(yaml_opts "${inference_config}")
            for s in ${test_sets}; do
                _data=${dumpdir}/raw/${s}
                _first=${_dexp}/${inference_tag}/${s}
                _dir=${_dexp}/${ctx_tag}/${s}
                require "data/${s}/segments" "${_data}/wav.scp"
                if [ "${context_source}" = hypothesis ]; then
                    _src=${_first}/text
                    require "${_src}"   # stage 7's context-agnostic hypotheses
                else
                    _src=${_data}/text
                    require "${_src}"
                fi
                log "Stage 8: ${s}: context from ${_src} -> re-decoding into ${_dir}"
                cmd="ctxdecode ${context_source} ${_opts} ${inference_args}"
                sig=$(signature "${cmd}" "${_src}" "${_data}/wav.scp" "${_dexp}/${inference_model}")
                stamp=${_dir}/.stamps/stage8
                if is_done "${stamp}" "stage8.${tag}.${ctx_tag}.${s}" "${sig}" "${_dir}/text"; then
                    log "Stage 8: ${s}: skipped (unchanged)"
                    continue
                fi
                ${python} -m espnet_sllm.bin.build_context --segments "data/${s}/segments" \
                    --text "${_src}" --keys "${_data}/wav.scp" --out "${_dir}/context"
                decode_set "${_data}" "${_dir}" \
                    --data_path_and_name_and_type "${_dir}/context/text_prev,text_prev,text" \
                    --data_path_and_name_and_type "${_dir}/context/text_next,text_next,text"
                mark_done "${stamp}" "stage8.${tag}.${ctx_tag}.${s}" "${sig}" "${_dir}/text"
            done
        fi
    done
fi

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 9 ] && [ "${stop_stage}" -ge 9 ]; then
    for _dexp in "${decode_exps[@]}"; do
        _paper=()
        if [ -n "${paper_results}" ]; then
            [ -f "${paper_results}" ] || die "--paper_results ${paper_results}: no such file"
            _paper=(--paper_results "${paper_results}")
        elif [ -f conf/paper_results.yaml ]; then
            _paper=(--paper_results conf/paper_results.yaml)
        fi
        for _dir in "${_dexp}"/decode_*/*/; do
            _dir=${_dir%/}
            s=$(basename "${_dir}")
            [ -f "${_dir}/text" ] || continue
            _data=${dumpdir}/raw/${s}
            # The reference is data/<set> when it is there: an utterance stage 2 dropped
            # (missing or unreadable audio) then counts as a missing hypothesis, not as absent.
            _ref=${_data}
            [ -f "data/${s}/text" ] && _ref=data/${s}
            if [ ! -f "${_ref}/text" ]; then
                log "Stage 9: ${s}: no reference text (evaluation set): not scored"
                continue
            fi
            log "Stage 9: scoring ${_dir} against ${_ref}/text"
            _opts=()
            [ -f "${_ref}/utt2lang" ] && _opts+=(--utt2lang "${_ref}/utt2lang")
            [ -f "${_ref}/utt2spk" ] && _opts+=(--utt2spk "${_ref}/utt2spk")
            # Task-aware scoring: optional per-utterance files, from the dump dir or else data/<set>
            # (same utterance ids). text_tgt is the reference of the st/sqa/qa utterances.
            for _f in utt2task:--utt2task utt2tgtlang:--utt2tgtlang text_tgt:--ref_tgt; do
                for _d in "${_ref}" "${_data}" "data/${s}"; do
                    if [ -f "${_d}/${_f%%:*}" ]; then _opts+=("${_f#*:}" "${_d}/${_f%%:*}"); break; fi
                done
            done
            for _f in ${score_group}; do
                if [ -f "${_ref}/${_f}" ]; then _opts+=(--score_group "${_ref}/${_f}")
                elif [ -f "${_data}/${_f}" ]; then _opts+=(--score_group "${_data}/${_f}")
                elif [ -f "data/${s}/${_f}" ]; then _opts+=(--score_group "data/${s}/${_f}")
                else log "Stage 9: ${s}: no ${_f}: no table per ${_f#utt2}"
                fi
            done
            # The hypothesis post-processing declared beside target_template (preprocessor_conf
            # hyp_marker, e.g. of a chain-of-thought target): score the text after the marker.
            _marker=
            if [ -f "${_dexp}/config.yaml" ]; then
                _marker=$(config_value "${_dexp}/config.yaml" preprocessor_conf hyp_marker)
            fi
            [ -n "${_marker}" ] && _opts+=(--hyp_marker "${_marker}")
            # shellcheck disable=SC2086
            ${python} -m espnet_sllm.bin.sllm_score --ref "${_ref}/text" --hyp "${_dir}/text" \
                --output_dir "${_dir}" --set_name "${s}" "${_opts[@]}" "${_paper[@]}" ${score_opts}
            # A chain-of-thought hypothesis starts with the transcript: its WER against text
            # (the transcript; text_tgt holds the translation) per source language, in the
            # sibling set dir <set>_transcript (no text there: this loop skips it).
            _tasks=
            for _d in "${_ref}" "${_data}" "data/${s}"; do
                if [ -f "${_d}/utt2task" ]; then _tasks=${_d}/utt2task; break; fi
            done
            if [ -n "${_marker}" ] && [ -n "${_tasks}" ] \
                    && awk '$2 == "st" {f = 1; exit} END {exit !f}' "${_tasks}"; then
                log "Stage 9: ${s}: WER of the transcript before '${_marker}' -> ${_dir}_transcript"
                _opts=()
                [ -f "${_ref}/utt2lang" ] && _opts+=(--utt2lang "${_ref}/utt2lang")
                [ -f "${_ref}/utt2spk" ] && _opts+=(--utt2spk "${_ref}/utt2spk")
                # shellcheck disable=SC2086
                ${python} -m espnet_sllm.bin.sllm_score --ref "${_ref}/text" --hyp "${_dir}/text" \
                    --output_dir "${_dir}_transcript" --set_name "${s}_transcript" \
                    --hyp_before_marker "${_marker}" "${_opts[@]}" ${score_opts}
            fi
        done
        ${python} -m espnet_sllm.bin.sllm_score --collect_results "${_dexp}" "${_paper[@]}"
        log "Stage 9: results in ${_dexp}/RESULTS.md"
        cat "${_dexp}/RESULTS.md"
    done
fi

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 10 ] && [ "${stop_stage}" -ge 10 ]; then
    require "${final_exp}/config.yaml" "${final_exp}/${inference_model}"
    log "Stage 10: packing ${final_exp}"
    _merged=()
    # chain_mode merge of a whole model (hf_audio): the final model is chain/merged, the merge of
    # valid.acc.best.pth (stage 6), packed whole; another --inference_model is packed as it is.
    if [ -d "${final_exp}/chain/merged" ] && [ "${inference_model}" = valid.acc.best.pth ]; then
        _merged=(--merged "${final_exp}/chain/merged")
    fi
    ${python} -m espnet_sllm.bin.pack_model --exp "${final_exp}" --model_file "${inference_model}" \
        --out "${final_exp}/packed/sllm_${tag}.zip" "${_merged[@]+"${_merged[@]}"}"
fi

log "Successfully finished stages ${stage}-${stop_stage} of ${sllm_exp}"
