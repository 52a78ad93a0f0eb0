#!/usr/bin/env bash
# Usage:
#   local/data.sh [--langs "english german ..."] [--limited 9hr|1hr|10hr|1hr/<k>]
#                 [--balance_alpha 1] [--balance_total 0] [--balance_seed 0] [--data_dir data]
#                 [--strict true|false]
#
# Stage 1 of egs2/mls/asr1: Kaldi data directories from Multilingual LibriSpeech (corpus root
# ${MLS} in db.sh, overridable from the environment), read by `python -m espnet_sllm.data.corpora.mls`:
#   1. per language <code> (en de nl fr es it pt pl): <data_dir>/mls_<code>_{train,dev,test}
#      (ids mls-<code>-<spk>-<book>_<utt>, speakers mls-<code>-<spk>, utt2lang <code>,
#      spk2gender from metainfo.txt, wav.scp pointing at the FLAC files);
#   2. <data_dir>/train = every language's train combined; with --balance_alpha < 1 (or
#      --balance_total) the combination goes to <data_dir>/train_unbalanced and train is
#      resampled from it so that language l has the share q_l ~ (n_l/N)^alpha (python -m
#      espnet_sllm.data.balance; copies of an utterance are <uttid>-rep<k>, same audio);
#   3. <data_dir>/dev = every language's dev combined (validation);
#   4. the test sets stay per language (mls_<code>_test), so that results are per language.
# Dropped and counted by the reader (see its summary lines): lines that are not UTF-8, empty
# transcripts, missing FLAC files, rows outside a --limited subset; malformed lines are errors
# naming file:line.
#
# Options:
#   --langs "L1 L2 ..."     MLS folder names (mls_<name>), space or comma separated
#                           (default: all eight: english german dutch french spanish italian
#                           portuguese polish)
#   --limited SUBSET        train on a limited-supervision subset of each language: 9hr, 1hr
#                           (the six 10-minute folds 1hr/0..5), 10hr (9hr + 1hr), or one fold
#                           1hr/<k>; empty = the whole training set          (default: "")
#   --balance_alpha A       language balancing exponent in (0, 1]; 1 = no balancing; the
#                           XLSR paper (and Ideal-LLM's "data balancing") uses 0.5 (default: 1)
#   --balance_total N       size of the balanced train set, 0 = the size of the combined
#                           set                                              (default: 0)
#   --balance_seed S        seed of the balancing draws                      (default: 0)
#   --data_dir DIR          where the data directories go                    (default: data)
#   --strict true|false     true: a row the reader would drop and count is an error naming
#                           file:line and the reason (rows outside --limited excepted)
#                                                                            (default: false)
#
# Run from the recipe directory (egs2/mls/asr1).  Example:
#   MLS=/db/mls local/data.sh --langs "german polish" --balance_alpha 0.5
set -euo pipefail

all_langs="english german dutch french spanish italian portuguese polish"
langs=${all_langs}
limited=""
balance_alpha=1
balance_total=0
balance_seed=0
data_dir=data
# shellcheck disable=SC1091
. scripts/utils/data_prep_common.sh
langs=${langs//,/ }
[ -n "${langs// /}" ] || die "--langs is empty"
for v in balance_total balance_seed; do
    case ${!v} in '' | *[!0-9]*) die "--${v} must be a number >= 0, got '${!v}'" ;; esac
done

# shellcheck disable=SC1091
[ -f ./path.sh ] && . ./path.sh
# shellcheck disable=SC1091
. ./db.sh

setup_hint="set MLS to the folder holding the extracted mls_<language> folders,"
setup_hint+=" e.g. 'MLS=/path/to/mls ./run.sh' (see db.sh)"
[ -d "${MLS}" ] || die "MLS corpus root MLS=${MLS} does not exist: ${setup_hint}"
for l in ${langs}; do
    case " ${all_langs} " in
        *" ${l} "*) ;;
        *) die "unknown language '${l}' (--langs); valid: ${all_langs}" ;;
    esac
    [ -d "${MLS}/mls_${l}" ] \
        || die "no folder mls_${l} in MLS=${MLS} (language '${l}' of --langs): ${setup_hint}"
done
# shellcheck disable=SC2086
codes=$(python -m espnet_sllm.data.corpora.mls --print_codes ${langs})
balance=false
if [ "${balance_total}" -gt 0 ] \
        || ! awk -v a="${balance_alpha}" 'BEGIN { exit !(a + 0 == 1 && a ~ /^[0-9.]+$/) }'; then
    balance=true
fi

mkdir -p "${data_dir}"

# 1. Every language's train/dev/test.
log "Reading MLS ${MLS} (${langs}; train: ${limited:-all}) into ${data_dir}/mls_<code>_<split>"
# shellcheck disable=SC2086
python -m espnet_sllm.data.corpora.mls --mls_root "${MLS}" --langs ${langs} --data_dir "${data_dir}" \
    --strict "${strict}" ${limited:+--limited "${limited}"}

train_dirs=()
dev_dirs=()
test_sets=()
for c in ${codes}; do
    train_dirs+=("${data_dir}/mls_${c}_train")
    dev_dirs+=("${data_dir}/mls_${c}_dev")
    test_sets+=("mls_${c}_test")
done

# 2. The training set, balanced across languages on request.
if [ "${balance}" = true ]; then
    log "Combining ${train_dirs[*]} into ${data_dir}/train_unbalanced"
    python -m espnet_sllm.data.kaldi_dir combine --out "${data_dir}/train_unbalanced" \
        "${train_dirs[@]}"
    log "Balancing languages: ${data_dir}/train_unbalanced -> ${data_dir}/train" \
        "(alpha=${balance_alpha}, total=${balance_total} (0: same size), seed=${balance_seed})"
    total_opt=()
    [ "${balance_total}" -eq 0 ] || total_opt=(--total "${balance_total}")
    python -m espnet_sllm.data.balance --in "${data_dir}/train_unbalanced" \
        --out "${data_dir}/train" --alpha "${balance_alpha}" --seed "${balance_seed}" \
        "${total_opt[@]+"${total_opt[@]}"}"
    made=(train_unbalanced train)
else
    log "Combining ${train_dirs[*]} into ${data_dir}/train"
    python -m espnet_sllm.data.kaldi_dir combine --out "${data_dir}/train" "${train_dirs[@]}"
    made=(train)
fi

# 3. The validation set.
log "Combining ${dev_dirs[*]} into ${data_dir}/dev"
python -m espnet_sllm.data.kaldi_dir combine --out "${data_dir}/dev" "${dev_dirs[@]}"
made+=(dev "${test_sets[@]}")

log "Data directories (the test sets are per language):"
for name in "${made[@]}"; do
    d=${data_dir}/${name}
    echo "  ${d}: $(wc -l <"${d}/utt2spk") utterances, $(wc -l <"${d}/spk2utt") speakers;" \
        "per language:" $(cut -d' ' -f2 "${d}/utt2lang" | sort | uniq -c \
                              | awk '{printf "%s=%s ", $2, $1}')
done
log "Successfully finished. [elapsed=${SECONDS}s]"
