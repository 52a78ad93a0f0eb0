#!/usr/bin/env bash
# Usage:
#   local/data.sh [--corpora "aishell aishell2 wmt19 alpaca_zh"] [--extract_dir DIR]
#                 [--wmt19_max_pairs N] [--alpaca_max_records N] [--data_dir data]
#                 [--strict true|false]
#
# Stage 1 of egs2/aishell_wmt/asr1: Kaldi data directories of the four corpora of Wu et al.
# (corpus roots in db.sh: ${AISHELL}, ${AISHELL2_TEST}, ${WMT19}, ${ALPACA_ZH}; each
# overridable from the environment), each read by `python -m espnet_sllm.data.corpora.<corpus>`:
#   aishell    AISHELL-1 -> <data_dir>/aishell_{train,dev,test} (ASR; ids BAC009<spk>W<nnnn>,
#              speakers BAC009<spk>; per-speaker archives <spk>.tar.gz are extracted first,
#              once); dropped and counted: WAVs without transcript (per set), transcript
#              lines without WAV (no_audio: once for the whole transcript)
#   aishell2   AISHELL-2 iOS test -> <data_dir>/aishell2_test (ASR test; ids IT0011W0001 of
#              wav/T0011/, speakers IT0011); dropped and counted: ids in only one of
#              wav.scp / trans.txt, ids not I<speaker folder>..., missing WAVs, empty texts
#   wmt19      WMT19 zh-en, TEXT-ONLY (no wav.scp until the TTS stage gives them speech):
#              news-commentary v14 -> <data_dir>/wmt19_train, newstest2019 ->
#              <data_dir>/wmt19_test (text = Chinese, text_tgt = English, utt2task st);
#              dropped and counted: pairs with an empty side
#   alpaca_zh  Alpaca-zh, TEXT-ONLY -> <data_dir>/alpaca_zh (text = instruction + input,
#              text_tgt = output, utt2task sqa); dropped and counted: empty outputs/questions
# Every set has utt2lang zh.  Lines or records with bytes that are not UTF-8 are dropped and
# counted too.  Malformed input is an error naming file:line (see each reader's docstring,
# python -m espnet_sllm.data.corpora.<corpus> --help).
#
# Options:
#   --corpora "C1 C2 ..."      corpora to prepare, space or comma separated; each one's root
#                              must exist          (default: "aishell aishell2 wmt19 alpaca_zh")
#   --extract_dir DIR          where to extract the AISHELL-1 per-speaker archives when
#                              data_aishell/wav is not writable; empty = in place (default: "")
#   --wmt19_max_pairs N        keep the first N news-commentary pairs, 0 = all (default: 0)
#   --alpaca_max_records N     keep the first N Alpaca-zh records, 0 = all     (default: 0)
#   --data_dir DIR             where the data directories go                  (default: data)
#   --strict true|false        true: a row the readers would drop and count is an error naming
#                              file:line and the reason (WMT19's document breaks excepted)
#                                                                             (default: false)
#
# Run from the recipe directory (egs2/aishell_wmt/asr1).  Example:
#   AISHELL=/db/aishell AISHELL2_TEST=/db/aishell2 WMT19=/db/wmt19 ALPACA_ZH=/db/alpaca_zh \
#       local/data.sh --wmt19_max_pairs 100000
set -euo pipefail

all_corpora="aishell aishell2 wmt19 alpaca_zh"
corpora=${all_corpora}
extract_dir=""
wmt19_max_pairs=0
alpaca_max_records=0
data_dir=data
# shellcheck disable=SC1091
. scripts/utils/data_prep_common.sh
corpora=${corpora//,/ }
[ -n "${corpora// /}" ] || die "--corpora is empty; valid: ${all_corpora}"
for c in ${corpora}; do
    case " ${all_corpora} " in
        *" ${c} "*) ;;
        *) die "unknown corpus '${c}' (--corpora); valid: ${all_corpora}" ;;
    esac
done
for v in wmt19_max_pairs alpaca_max_records; do
    case ${!v} in '' | *[!0-9]*) die "--${v} must be a number >= 0, got '${!v}'" ;; esac
done

# shellcheck disable=SC1091
[ -f ./path.sh ] && . ./path.sh
# shellcheck disable=SC1091
. ./db.sh

# Every requested corpus root is checked before anything is read.
check_root() {  # $1 variable name, $2 corpus name, $3 what the folder holds
    local var=$1
    [ -e "${!var}" ] || die "${2} root ${var}=${!var} does not exist: set ${var} to ${3}," \
        "e.g. '${var}=/path/to/it ./run.sh' (see db.sh), or leave ${2} out with" \
        "--corpora (local/data.sh --help)"
}
for c in ${corpora}; do
    case ${c} in
        aishell) check_root AISHELL AISHELL-1 "the folder holding data_aishell/" ;;
        aishell2) check_root AISHELL2_TEST "AISHELL-2 test" \
            "the folder holding AISHELL-DEV-TEST-SET/" ;;
        wmt19) check_root WMT19 WMT19 \
            "the folder holding news-commentary-v14.en-zh.tsv and sgm/" ;;
        alpaca_zh) check_root ALPACA_ZH Alpaca-zh "the folder holding alpaca_data_zh_51k.json" ;;
    esac
done

mkdir -p "${data_dir}"
made=()
for c in ${corpora}; do
    case ${c} in
        aishell)
            log "Reading AISHELL-1 ${AISHELL} into ${data_dir}/aishell_{train,dev,test}"
            python -m espnet_sllm.data.corpora.aishell --root "${AISHELL}" --data_dir "${data_dir}" \
                --strict "${strict}" ${extract_dir:+--extract_dir "${extract_dir}"}
            made+=(aishell_train aishell_dev aishell_test) ;;
        aishell2)
            log "Reading AISHELL-2 iOS test ${AISHELL2_TEST} into ${data_dir}/aishell2_test"
            python -m espnet_sllm.data.corpora.aishell2 --root "${AISHELL2_TEST}" --device iOS \
                --split test --out "${data_dir}/aishell2_test" --strict "${strict}"
            made+=(aishell2_test) ;;
        wmt19)
            log "Reading WMT19 ${WMT19} into ${data_dir}/wmt19_{train,test} (text only;" \
                "news-commentary pairs: ${wmt19_max_pairs} (0: all))"
            python -m espnet_sllm.data.corpora.wmt19 --root "${WMT19}" --data_dir "${data_dir}" \
                --max_pairs "${wmt19_max_pairs}" --strict "${strict}"
            made+=(wmt19_train wmt19_test) ;;
        alpaca_zh)
            log "Reading Alpaca-zh ${ALPACA_ZH} into ${data_dir}/alpaca_zh (text only;" \
                "records: ${alpaca_max_records} (0: all))"
            python -m espnet_sllm.data.corpora.alpaca_zh --root "${ALPACA_ZH}" \
                --out "${data_dir}/alpaca_zh" --max_records "${alpaca_max_records}" \
                --strict "${strict}"
            made+=(alpaca_zh) ;;
    esac
done

log "Data directories:"
for name in "${made[@]}"; do
    d=${data_dir}/${name}
    if [ -f "${d}/wav.scp" ]; then kind="with audio"; else kind="text only (speech: TTS stage)"; fi
    task=asr
    [ -f "${d}/utt2task" ] && task=$(cut -d' ' -f2 "${d}/utt2task" | sort -u | tr '\n' ' ')
    echo "  ${d}: $(wc -l <"${d}/utt2spk") utterances, ${kind}; task: ${task% }"
done
log "Successfully finished. [elapsed=${SECONDS}s]"
