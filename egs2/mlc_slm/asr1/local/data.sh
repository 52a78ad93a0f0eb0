#!/usr/bin/env bash
# Usage:
#   local/data.sh [--langs "English Japanese ..."] [--use_cv true|false] [--eval_sets "..."]
#                 [--cv_max_utts_per_lang N] [--data_dir data] [--strict true|false]
#
# Stage 1 of egs2/mlc_slm/asr1: makes the Kaldi data directories from the MLC-SLM release
# (corpus roots in db.sh: ${MLC_SLM}, ${COMMONVOICE}; both overridable from the environment).
#   1. every ${MLC_SLM}/MLC-SLM_Workshop-Training_Set_<N> folder -> <data_dir>/train_<N>, then
#      all of them combined -> <data_dir>/train (error on an utterance id found in two parts);
#   2. ${MLC_SLM}/MLC-SLM_Workshop-Development_Set -> <data_dir>/dev;
#   3. each evaluation set of --eval_sets whose folder exists -> <data_dir>/<name>; sets whose
#      annotation has no text (3 columns, or wav only) get no `text` (decoded, not scored);
#   4. with --use_cv true (system S4): Common Voice `train` of the languages of data/train
#      (the 11 MLC-SLM languages; English without accent, label `English`) ->
#      <data_dir>/cv_train, and <data_dir>/train_cv = train + cv_train.  Common Voice has no
#      neighbouring segments, so train_cv has no text_prev/text_next (S4 uses the S1 prompts,
#      without context), and its Common Voice utterances get whole-clip segments.
# Each set is read by `python -m espnet_sllm.data.corpora.mlc_slm` (ids, segments, utt2lang with the
# 15 labels English-American ... Vietnamese, text_prev/text_next from the neighbouring segments
# of the same session) or `python -m espnet_sllm.data.corpora.common_voice`.  A problem of one segment
# line or one session (not UTF-8, empty text, zero or negative duration, a segment ending more
# than 0.5 s after its audio, a missing or unreadable .wav, a session outside a language or
# accent folder) is dropped and counted in the reader's summary line; malformed annotation
# files are errors naming file:line.
#
# Options:
#   --langs "L1 L2 ..."        languages (English, Japanese, ...) or labels (English-American)
#                              to keep; empty = all                          (default: "")
#   --use_cv true|false        also prepare Common Voice and train_cv (S4)   (default: false)
#   --eval_sets "NAME=FOLDER ..."  evaluation sets: FOLDER under ${MLC_SLM} -> <data_dir>/NAME;
#                              an entry without '=' is both; absent folders are skipped
#                              (default: "eval=MLC-SLM_Workshop-Evaluation_Set"; give the
#                              folder name of your copy of the evaluation release)
#   --cv_max_utts_per_lang N   keep only the first N usable Common Voice rows per language,
#                              0 = all                                       (default: 0)
#   --data_dir DIR             where the data directories go                 (default: data)
#   --strict true|false        true: a segment or session the readers would drop and count is
#                              an error naming file:line and the reason      (default: false)
#
# Run from the recipe directory (egs2/mlc_slm/asr1).  Example:
#   MLC_SLM=/db/mlc_slm COMMONVOICE=/db/cv-corpus-21.0-2025-03-14 local/data.sh --use_cv true
set -euo pipefail

langs=""
use_cv=false
eval_sets="eval=MLC-SLM_Workshop-Evaluation_Set"
cv_max_utts_per_lang=0
data_dir=data
# shellcheck disable=SC1091
. scripts/utils/data_prep_common.sh
case ${cv_max_utts_per_lang} in
    '' | *[!0-9]*)
        die "--cv_max_utts_per_lang must be a number >= 0, got '${cv_max_utts_per_lang}'" ;;
esac

# shellcheck disable=SC1091
[ -f ./path.sh ] && . ./path.sh
# shellcheck disable=SC1091
. ./db.sh

dev_folder=MLC-SLM_Workshop-Development_Set
setup_hint="set MLC_SLM to the folder holding MLC-SLM_Workshop-Training_Set_* and ${dev_folder},"
setup_hint+=" e.g. 'MLC_SLM=/path/to/mlc_slm ./run.sh' (see db.sh)"
[ -d "${MLC_SLM}" ] || die "MLC-SLM corpus root MLC_SLM=${MLC_SLM} does not exist: ${setup_hint}"
shopt -s nullglob
train_parts=("${MLC_SLM}"/MLC-SLM_Workshop-Training_Set_*/)
shopt -u nullglob
[ ${#train_parts[@]} -gt 0 ] \
    || die "no MLC-SLM_Workshop-Training_Set_* folder in MLC_SLM=${MLC_SLM}: ${setup_hint}"
[ -d "${MLC_SLM}/${dev_folder}" ] \
    || die "no ${dev_folder} folder in MLC_SLM=${MLC_SLM}: ${setup_hint}"
if [ "${use_cv}" = true ] && [ ! -d "${COMMONVOICE}" ]; then
    die "Common Voice root COMMONVOICE=${COMMONVOICE} does not exist (needed by --use_cv true):" \
        "set COMMONVOICE to the extracted cv-corpus-21.0-<date> folder holding en/ fr/ ...," \
        "e.g. 'COMMONVOICE=/path/to/cv-corpus-21.0 ./run.sh' (see db.sh)"
fi

# lang_in_set <set folder> <language or label>: succeeds when the set has recordings of it
# (English labels: the English/<Accent>[_English] folder), case-insensitively like the reader.
lang_in_set() {
    local root=$1/data want=${2,,} base entry sub
    [ -d "${root}" ] || root=$1
    base=${want%%-*}
    for entry in "${root}"/*/; do
        entry=${entry%/}
        entry=${entry##*/}
        [ "${entry,,}" = "${base}" ] || continue
        [ "${want}" = "${base}" ] && return 0
        for sub in "${root}/${entry}"/*/; do
            sub=${sub%/}
            sub=${sub##*/}
            sub=${sub%_English}
            [ "${entry,,}-${sub,,}" = "${want}" ] && return 0
        done
    done
    return 1
}

# set_langs <set folder>: fills set_lang_opts with "--langs ..." for the requested languages
# this set has; returns 1 when --langs is given and the set has none of them.
set_lang_opts=()
set_langs() {
    local l found=()
    set_lang_opts=()
    [ -n "${langs}" ] || return 0
    for l in ${langs}; do
        lang_in_set "$1" "${l}" && found+=("${l}")
    done
    [ ${#found[@]} -gt 0 ] || return 1
    set_lang_opts=(--langs "${found[@]}")
}

mkdir -p "${data_dir}"
made=()

# 1. Training set parts, then their combination.
part_dirs=()
langs_seen=" "
for part in "${train_parts[@]}"; do
    part=${part%/}
    n=${part##*/MLC-SLM_Workshop-Training_Set_}
    if ! set_langs "${part}"; then
        log "Skipping ${part}: none of the languages '${langs}'"
        continue
    fi
    for l in "${set_lang_opts[@]:1}"; do langs_seen+="${l} "; done
    log "Reading ${part} into ${data_dir}/train_${n}"
    python -m espnet_sllm.data.corpora.mlc_slm --root "${part}" --out "${data_dir}/train_${n}" \
        --strict "${strict}" "${set_lang_opts[@]}"
    part_dirs+=("${data_dir}/train_${n}")
done
for l in ${langs}; do
    case ${langs_seen} in
        *" ${l} "*) ;;
        *) die "language '${l}' (--langs) is in none of the training set folders of ${MLC_SLM}" ;;
    esac
done
[ ${#part_dirs[@]} -gt 0 ] || die "no training data read from ${MLC_SLM}"
log "Combining ${part_dirs[*]} into ${data_dir}/train"
python -m espnet_sllm.data.kaldi_dir combine --out "${data_dir}/train" "${part_dirs[@]}"
made+=(train)

# 2. Development set (it must have every requested language).
log "Reading ${MLC_SLM}/${dev_folder} into ${data_dir}/dev"
python -m espnet_sllm.data.corpora.mlc_slm --root "${MLC_SLM}/${dev_folder}" --out "${data_dir}/dev" \
    --strict "${strict}" ${langs:+--langs ${langs}}
made+=(dev)

# 3. Evaluation sets, when present.
for entry in ${eval_sets}; do
    name=${entry%%=*}
    folder=${entry#*=}
    [ -n "${name}" ] && [ -n "${folder}" ] || die "--eval_sets: bad entry '${entry}' (NAME=FOLDER)"
    case ${name} in
        train | dev | train_* | cv_train)
            die "--eval_sets: '${name}' is the name of a training or development set" ;;
    esac
    if [ ! -d "${MLC_SLM}/${folder}" ]; then
        log "Evaluation set ${MLC_SLM}/${folder} not found: ${data_dir}/${name} skipped"
        continue
    fi
    if ! set_langs "${MLC_SLM}/${folder}"; then
        log "Skipping ${MLC_SLM}/${folder}: none of the languages '${langs}'"
        continue
    fi
    log "Reading ${MLC_SLM}/${folder} into ${data_dir}/${name}"
    python -m espnet_sllm.data.corpora.mlc_slm --root "${MLC_SLM}/${folder}" --out "${data_dir}/${name}" \
        --strict "${strict}" "${set_lang_opts[@]}"
    if [ ! -f "${data_dir}/${name}/text" ]; then
        log "${data_dir}/${name} has no text: it can be decoded, not scored"
    fi
    made+=("${name}")
done

# 4. Common Voice (S4).
if [ "${use_cv}" = true ]; then
    # The languages of the training data (all 11 with the full corpus), accents aside.
    cv_langs=$(cut -d' ' -f2 "${data_dir}/train/utt2lang" | sed 's/-.*//' | sort -u | tr '\n' ' ')
    log "Reading Common Voice ${COMMONVOICE} (train; ${cv_langs}) into ${data_dir}/cv_train"
    # shellcheck disable=SC2086
    python -m espnet_sllm.data.corpora.common_voice --cv_root "${COMMONVOICE}" --split train \
        --out "${data_dir}/cv_train" --max_utts_per_lang "${cv_max_utts_per_lang}" \
        --strict "${strict}" --langs ${cv_langs}
    log "Combining ${data_dir}/train and ${data_dir}/cv_train into ${data_dir}/train_cv;" \
        "note: Common Voice has no context, so train_cv has no text_prev/text_next" \
        "(S4 uses the S1 prompts, without context)"
    python -m espnet_sllm.data.kaldi_dir combine --drop text_prev text_next \
        --out "${data_dir}/train_cv" "${data_dir}/train" "${data_dir}/cv_train"
    made+=(cv_train train_cv)
fi

log "Data directories:"
for name in "${made[@]}"; do
    d=${data_dir}/${name}
    echo "  ${d}: $(wc -l <"${d}/wav.scp") recordings, $(wc -l <"${d}/utt2spk") utterances" \
        "($([ -f "${d}/text" ] && echo "with text" || echo "no text"));" \
        "per language:" $(cut -d' ' -f2 "${d}/utt2lang" | sort | uniq -c \
                              | awk '{printf "%s=%s ", $2, $1}')
done
log "Successfully finished. [elapsed=${SECONDS}s]"
