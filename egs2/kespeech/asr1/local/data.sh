#!/usr/bin/env bash
# Usage:
#   local/data.sh [--wenetspeech true|false] [--extra_train "wenetspeech_m aishell"]
#                 [--extra_test_sets "DIR ..."] [--data_dir data] [--strict true|false]
#
# Stage 1 of egs2/kespeech/asr1: makes the Kaldi data directories (corpus roots in db.sh:
# ${KESPEECH}, ${WENETSPEECH}; both overridable from the environment).
#   1. KeSpeech Tasks/ASR/<part> -> <data_dir>/<part> for train_phase1 train_phase2 dev_phase1
#      dev_phase2 test (python -m espnet_sllm.data.corpora.kespeech: noise tags such as <SPOKEN_NOISE>
#      and spaces removed from the text, utterances with only noise / no text / a missing wav
#      dropped and counted, utt2lang = zh, utt2subdialect kept for per-subdialect scoring);
#   2. <data_dir>/train = train_phase1 + train_phase2 (+ the --extra_train sets),
#      <data_dir>/dev = dev_phase1 + dev_phase2 (python -m espnet_sllm.data.kaldi_dir combine;
#      utt2subdialect is carried over when every part has it, i.e. without --extra_train);
#   3. with --wenetspeech true: the TEST_NET and TEST_MEETING segments of WenetSpeech.json ->
#      <data_dir>/test_net, <data_dir>/test_meeting (python -m espnet_sllm.data.corpora.wenetspeech:
#      wav.scp = the long-form .opus recordings, segments = the cuts; audio files listed but
#      absent, zero or negative durations are dropped and counted).
# Lines with bytes that are not UTF-8 are dropped and counted too; malformed files are errors
# naming file:line (or the JSON entry).
#
# Options:
#   --wenetspeech true|false   also make test_net and test_meeting from ${WENETSPEECH}; with
#                              true a missing WenetSpeech root is an error   (default: true)
#   --extra_train "SETS"       more training data combined into <data_dir>/train, among
#                              wenetspeech_s wenetspeech_m wenetspeech_l (the WenetSpeech
#                              training subset S / M / L, from ${WENETSPEECH}) and aishell
#                              (AISHELL-1 train, from ${AISHELL})              (default: "")
#   (a list: blank- or comma-separated)
#   --extra_test_sets "DIRS"   Kaldi data directories of your own, copied (validated) to
#                              <data_dir>/<basename> to be decoded and scored as the other
#                              test sets (run.sh adds them to --test_sets)   (default: "")
#   --data_dir DIR             where the data directories go                 (default: data)
#   --strict true|false        true: a row the readers would drop and count is an error
#                              naming file:line and the reason               (default: false)
#
# Run from the recipe directory (egs2/kespeech/asr1).  Example:
#   KESPEECH=/db/KeSpeech WENETSPEECH=/db/WenetSpeech local/data.sh
set -euo pipefail

wenetspeech=true
extra_train=
extra_test_sets=
data_dir=data
# shellcheck disable=SC1091
. scripts/utils/data_prep_common.sh

# shellcheck disable=SC1091
[ -f ./path.sh ] && . ./path.sh
# shellcheck disable=SC1091
. ./db.sh

if [ ! -d "${KESPEECH}/KeSpeech/Tasks/ASR" ] && [ ! -d "${KESPEECH}/Tasks/ASR" ]; then
    die "KeSpeech corpus root KESPEECH=${KESPEECH} has no Tasks/ASR (nor KeSpeech/Tasks/ASR):" \
        "set KESPEECH to the extracted KeSpeech/ folder or the folder holding it," \
        "e.g. 'KESPEECH=/path/to/KeSpeech ./run.sh' (see db.sh)"
fi
extra_train=${extra_train//,/ }  # run.sh passes lists comma-separated
extra_test_sets=${extra_test_sets//,/ }
need_wenet=${wenetspeech}
for x in ${extra_train}; do
    case "${x}" in
        wenetspeech_s|wenetspeech_m|wenetspeech_l) need_wenet=true ;;
        aishell) [ -d "${AISHELL}" ] || die "--extra_train aishell: AISHELL=${AISHELL} is not a" \
            "folder: set AISHELL to the folder holding data_aishell/ (see db.sh)" ;;
        *) die "unknown --extra_train set '${x}'; valid: wenetspeech_s wenetspeech_m" \
            "wenetspeech_l aishell" ;;
    esac
done
for d in ${extra_test_sets}; do
    [ -f "${d}/wav.scp" ] && [ -f "${d}/text" ] || die "--extra_test_sets: ${d} is not a Kaldi" \
        "data directory (wav.scp and text needed)"
    case "$(basename "${d}")" in
        train*|dev*|test|test_net|test_meeting|wenetspeech_*|aishell_*)
            die "--extra_test_sets: ${d}: its name $(basename "${d}") is one of this recipe's" \
                "sets; rename the directory" ;;
    esac
done
if [ "${need_wenet}" = true ] && [ ! -f "${WENETSPEECH}/WenetSpeech.json" ]; then
    die "WenetSpeech root WENETSPEECH=${WENETSPEECH} has no WenetSpeech.json (needed for" \
        "test_net and test_meeting): set WENETSPEECH to the release folder holding" \
        "WenetSpeech.json and audio/, e.g. 'WENETSPEECH=/path/to/WenetSpeech ./run.sh'" \
        "(see db.sh), or run without these test sets: './run.sh --wenetspeech false'"
fi

mkdir -p "${data_dir}"
parts="train_phase1 train_phase2 dev_phase1 dev_phase2 test"
log "Reading KeSpeech ${KESPEECH} (${parts}) into ${data_dir}/<part>"
# shellcheck disable=SC2086
python -m espnet_sllm.data.corpora.kespeech --root "${KESPEECH}" --out_dir "${data_dir}" --parts ${parts} \
    --strict "${strict}"

train_parts=("${data_dir}/train_phase1" "${data_dir}/train_phase2")
extra_made=()
for x in ${extra_train}; do
    case "${x}" in
        wenetspeech_*)
            sub=${x#wenetspeech_}
            log "--extra_train ${x}: WenetSpeech subset ${sub^^} -> ${data_dir}/${x}"
            python -m espnet_sllm.data.corpora.wenetspeech --json "${WENETSPEECH}/WenetSpeech.json" \
                --subsets "${sub^^}" --out_dir "${data_dir}" --prefix wenetspeech_ --strict "${strict}"
            train_parts+=("${data_dir}/${x}"); extra_made+=("${x}") ;;
        aishell)
            log "--extra_train aishell: AISHELL-1 ${AISHELL} -> ${data_dir}/aishell_{train,dev,test}"
            python -m espnet_sllm.data.corpora.aishell --root "${AISHELL}" --data_dir "${data_dir}" \
                --strict "${strict}"
            train_parts+=("${data_dir}/aishell_train"); extra_made+=(aishell_train) ;;
    esac
done
log "Combining ${train_parts[*]} into ${data_dir}/train" \
    "and ${data_dir}/dev_phase{1,2} into ${data_dir}/dev"
python -m espnet_sllm.data.kaldi_dir combine --out "${data_dir}/train" "${train_parts[@]}"
python -m espnet_sllm.data.kaldi_dir combine --out "${data_dir}/dev" \
    "${data_dir}/dev_phase1" "${data_dir}/dev_phase2"
made=(train_phase1 train_phase2 "${extra_made[@]+"${extra_made[@]}"}" train dev_phase1 dev_phase2 dev test)

if [ "${wenetspeech}" = true ]; then
    log "Reading WenetSpeech ${WENETSPEECH}/WenetSpeech.json (TEST_NET, TEST_MEETING) into" \
        "${data_dir}/test_net and ${data_dir}/test_meeting"
    python -m espnet_sllm.data.corpora.wenetspeech --json "${WENETSPEECH}/WenetSpeech.json" \
        --subsets TEST_NET TEST_MEETING --out_dir "${data_dir}" --strict "${strict}"
    made+=(test_net test_meeting)
else
    log "--wenetspeech false: no test_net / test_meeting"
fi

for d in ${extra_test_sets}; do
    name=$(basename "${d}")
    log "--extra_test_sets: ${d} -> ${data_dir}/${name} (validated copy)"
    python -m espnet_sllm.data.kaldi_dir combine --out "${data_dir}/${name}" "${d}"
    made+=("${name}")
done

log "Data directories:"
for name in "${made[@]}"; do
    d=${data_dir}/${name}
    line="  ${d}: $(wc -l <"${d}/utt2spk") utterances, $(wc -l <"${d}/wav.scp") recordings"
    if [ -f "${d}/utt2subdialect" ]; then
        line+="; per subdialect: $(cut -d' ' -f2 "${d}/utt2subdialect" | sort | uniq -c \
                                   | awk '{printf "%s=%s ", $2, $1}')"
    fi
    echo "${line}"
done
log "Successfully finished. [elapsed=${SECONDS}s]"
