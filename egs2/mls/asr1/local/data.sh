#!/usr/bin/env bash
# Usage:
#   local/data.sh [--langs "english german ..."] [--limited 9hr|1hr|10hr|1hr/<k>]
#                 [--max_hours "en=10000[,de=H ...]"] [--max_hours_seed 0] [--train_name train]
#                 [--balance_alpha 1] [--balance_total 0] [--balance_seed 0] [--data_dir data]
#                 [--strict true|false]
#
# Stage 1 of egs2/mls/asr1: Kaldi data directories from Multilingual LibriSpeech (corpus root
# ${MLS} in db.sh, overridable from the environment), read by `python -m espnet_sllm.data.corpora.mls`:
#   1. per language <code> (en de nl fr es it pt pl): <data_dir>/mls_<code>_{train,dev,test}
#      (ids mls-<code>-<spk>-<book>_<utt>, speakers mls-<code>-<spk>, utt2lang <code>,
#      spk2gender from metainfo.txt, wav.scp pointing at the FLAC files);
#   2. with --max_hours <code>=H: that language's training set is capped to a seeded random
#      subset of about H hours (python -m espnet_sllm.data.subset --hours H --seed
#      <max_hours_seed>: the shortest prefix of the seeded order reaching H hours, so at most
#      one utterance more than H), <data_dir>/mls_<code>_train_<H>h; the durations are
#      end - start of the release's <split>/segments.txt, written to
#      <data_dir>/mls_<code>_train/utt2dur (utterances absent from segments.txt: the FLAC
#      headers).  A language holding no more than H hours is kept whole.  (Ideal-LLM: "10 000
#      h of English": --max_hours en=10000 --train_name train_en10k);
#   3. <data_dir>/<train_name> = every language's (capped) train combined; with
#      --balance_alpha < 1 (or --balance_total) the combination goes to
#      <data_dir>/<train_name>_unbalanced and <train_name> is resampled from it so that
#      language l has the share q_l ~ (n_l/N)^alpha (python -m espnet_sllm.data.balance;
#      copies of an utterance are <uttid>-rep<k>, same audio); the cap comes first;
#   4. <data_dir>/dev = every language's dev combined (validation);
#   5. the test sets stay per language (mls_<code>_test), so that results are per language.
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
#   --max_hours "C=H,..."   cap the training set of language C (ISO code: en de nl fr es it pt
#                           pl) to about H hours (a number > 0), before balancing; codes
#                           not among --langs are ignored (with a warning)   (default: "")
#   --max_hours_seed S      seed of the --max_hours subsets                  (default: 0)
#   --train_name NAME       name of the combined training set, e.g. train_en10k
#                                                                            (default: train)
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
max_hours=""
max_hours_seed=0
train_name=train
balance_alpha=1
balance_total=0
balance_seed=0
data_dir=data
# shellcheck disable=SC1091
. scripts/utils/data_prep_common.sh
langs=${langs//,/ }
[ -n "${langs// /}" ] || die "--langs is empty"
for v in balance_total balance_seed max_hours_seed; do
    case ${!v} in '' | *[!0-9]*) die "--${v} must be a number >= 0, got '${!v}'" ;; esac
done
case ${train_name} in
    '' | dev | *[!A-Za-z0-9_.-]* | mls_*)
        die "--train_name must be a data directory name of letters, digits, '_', '.', '-'" \
            "(not dev, not mls_*), got '${train_name}'" ;;
esac
all_codes="en de nl fr es it pt pl"
declare -A cap=()
for item in ${max_hours//,/ }; do
    code=${item%%=*}
    hours=${item#*=}
    [ "${item}" != "${code}" ] \
        || die "--max_hours: '${item}' is not <code>=<hours> (e.g. en=10000)"
    case " ${all_codes} " in
        *" ${code} "*) ;;
        *) die "--max_hours: unknown language code '${code}' in '${item}'; valid: ${all_codes}" ;;
    esac
    awk -v h="${hours}" \
        'BEGIN { exit !(h ~ /^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ && h + 0 > 0) }' \
        || die "--max_hours: the hours of '${code}' must be a number > 0, got '${hours}'"
    [ -z "${cap[${code}]+x}" ] || die "--max_hours: language '${code}' is given twice"
    cap[${code}]=${hours}
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

# utt2dur of <data_dir>/mls_<code>_train from the release's train/segments.txt
# (<handle><TAB><url><TAB><start><TAB><end>; the handle <spk>_<book>_<utt> gives the id
# mls-<code>-<spk>-<book>_<utt>). Split on any blanks, not tabs only, as public MLS recipes
# read it (e.g. ESPnet's OWSM data prep: line.split()): a re-saved copy with spaces still works.
write_utt2dur() {  # <code> <release name> <data directory>
    local seg=${MLS}/mls_${2}/train/segments.txt
    if [ ! -f "${seg}" ]; then
        log "WARNING: ${seg} not found: the durations of ${3} come from the FLAC headers"
        rm -f "${3}/utt2dur"
        return 0
    fi
    awk -v c="$1" 'NR == FNR { keep[$1] = 1; next }
        NF >= 4 && split($1, h, "_") == 3 {
            id = "mls-" c "-" h[1] "-" h[2] "_" h[3]
            if (id in keep) printf "%s %.3f\n", id, $4 - $3
        }' "${3}/utt2spk" "${seg}" | LC_ALL=C sort -u >"${3}/utt2dur"
}

declare -A name_of=([en]=english [de]=german [nl]=dutch [fr]=french [es]=spanish
                     [it]=italian [pt]=portuguese [pl]=polish)
for code in "${!cap[@]}"; do
    case " ${codes} " in *" ${code} "*) true ;; *) false ;; esac \
        || log "WARNING: --max_hours ${code}=${cap[${code}]}: '${code}' is not among --langs" \
               "(${langs}): ignored"
done

# 2. The training sets of --max_hours capped (seeded subsets by hours); the sets to combine.
train_dirs=()
dev_dirs=()
test_sets=()
for c in ${codes}; do
    src=${data_dir}/mls_${c}_train
    if [ -n "${cap[${c}]+x}" ]; then
        h=${cap[${c}]}
        write_utt2dur "${c}" "${name_of[${c}]}" "${src}"
        n_utts=$(wc -l <"${src}/utt2spk")
        have=""
        if [ -f "${src}/utt2dur" ] && [ "$(wc -l <"${src}/utt2dur")" -eq "${n_utts}" ]; then
            have=$(awk '{ s += $2 } END { printf "%.6f", s / 3600 }' "${src}/utt2dur")
        fi
        if [ -n "${have}" ] && awk -v a="${have}" -v b="${h}" 'BEGIN { exit !(a <= b) }'; then
            log "--max_hours ${c}=${h}: ${src} holds ${have} h only: kept whole"
        else
            log "--max_hours ${c}=${h}: ${src} (${have:-?} h) -> ${src}_${h}h" \
                "(seeded subset, seed ${max_hours_seed})"
            python -m espnet_sllm.data.subset --in "${src}" --out "${src}_${h}h" \
                --hours "${h}" --seed "${max_hours_seed}"
            src=${src}_${h}h
        fi
    fi
    train_dirs+=("${src}")
    dev_dirs+=("${data_dir}/mls_${c}_dev")
    test_sets+=("mls_${c}_test")
done

# 3. The training set, balanced across languages on request.
train=${train_name}
if [ "${balance}" = true ]; then
    log "Combining ${train_dirs[*]} into ${data_dir}/${train}_unbalanced"
    python -m espnet_sllm.data.kaldi_dir combine --out "${data_dir}/${train}_unbalanced" \
        "${train_dirs[@]}"
    log "Balancing languages: ${data_dir}/${train}_unbalanced -> ${data_dir}/${train}" \
        "(alpha=${balance_alpha}, total=${balance_total} (0: same size), seed=${balance_seed})"
    total_opt=()
    [ "${balance_total}" -eq 0 ] || total_opt=(--total "${balance_total}")
    python -m espnet_sllm.data.balance --in "${data_dir}/${train}_unbalanced" \
        --out "${data_dir}/${train}" --alpha "${balance_alpha}" --seed "${balance_seed}" \
        "${total_opt[@]+"${total_opt[@]}"}"
    made=("${train}_unbalanced" "${train}")
else
    log "Combining ${train_dirs[*]} into ${data_dir}/${train}"
    python -m espnet_sllm.data.kaldi_dir combine --out "${data_dir}/${train}" "${train_dirs[@]}"
    made=("${train}")
fi

# 4. The validation set.
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
