#!/usr/bin/env bash
# Usage:
#   local/data.sh [--corpora "aishell aishell2 wmt19 alpaca_zh wenetspeech"] [--extract_dir DIR]
#                 [--wmt19_max_pairs N] [--alpaca_max_records N] [--data_dir data]
#                 [--strict true|false]
#                 [--datasets "1 2 3"|none] [--aishell2 true|false] [--text_qa true|false]
#                 [--hours_scale X] [--n_valid 200] [--n_alpaca_test 500] [--seed 0] [--nj 4]
#                 [--tts espeak|module:Class] [--tts_conf "key=value ..."]
#
# Stage 1 of egs2/aishell_wmt/asr1, in two parts: (A) the readers write Kaldi data
# directories of the five corpora of Wu et al.; (B) the assembly gives the text-only corpora
# speech by TTS and writes the multi-task training, validation and test sets.
#
# (A) Readers (corpus roots in db.sh: ${AISHELL}, ${AISHELL2_TEST}, ${WMT19}, ${ALPACA_ZH},
# ${WENETSPEECH}; each overridable from the environment), each read by
# `python -m espnet_sllm.data.corpora.<corpus>`:
#   aishell    AISHELL-1 -> <data_dir>/aishell_{train,dev,test} (ASR; ids BAC009<spk>W<nnnn>,
#              speakers BAC009<spk>; per-speaker archives <spk>.tar.gz are extracted first,
#              once); dropped and counted: WAVs without transcript (per set), transcript
#              lines without WAV (no_audio: once for the whole transcript)
#   aishell2   AISHELL-2 iOS test -> <data_dir>/aishell2_test (ASR test; ids IT0011W0001 of
#              wav/T0011/, speakers IT0011); dropped and counted: ids in only one of
#              wav.scp / trans.txt, ids not I<speaker folder>..., missing WAVs, empty texts
#   wmt19      WMT19 zh-en, TEXT-ONLY (no wav.scp until the TTS of part B gives them speech):
#              news-commentary v14 -> <data_dir>/wmt19_train, newstest2019 ->
#              <data_dir>/wmt19_test (text = Chinese, text_tgt = English, utt2task st);
#              dropped and counted: pairs with an empty side
#   alpaca_zh  Alpaca-zh, TEXT-ONLY -> <data_dir>/alpaca_zh (text = instruction + input,
#              text_tgt = output, utt2task sqa); dropped and counted: empty outputs/questions
#   wenetspeech  WenetSpeech subset M (1000 h; only dataset 3 uses it, 200 h of it) ->
#              <data_dir>/wenetspeech_m (ASR; segments of the Opus recordings; speaker = the
#              recording)
# Every set has utt2lang zh.  Lines or records with bytes that are not UTF-8 are dropped and
# counted too.  Malformed input is an error naming file:line (see each reader's docstring,
# python -m espnet_sllm.data.corpora.<corpus> --help).
#
# (B) Assembly (skipped with --datasets none).  It reads the readers' directories, whatever
# --corpora this run has (a missing one is an error naming the corpus to add), and writes:
#
#   set            what it holds (task: utterances)                      run.sh option
#   train_d1       dataset 1: AISHELL-1 90 h (asr) + WMT19 100 h (st) + Alpaca 30 h (sqa)
#                  + the qa copy of each of those Alpaca records            --train_set
#   train_d2       dataset 2: AISHELL-1 all (asr: train + dev + test, minus valid_mt's and,
#                  with --aishell2 false, test) + WMT19 200 h (st) + Alpaca all (sqa, minus
#                  alpaca_test and valid_mt's) + their qa copies           --train_set
#   train_d3       dataset 3: train_d2 + WenetSpeech M 200 h (asr; whole recordings in
#                  their seeded order: subset --by spk)                     --train_set
#   valid_mt       --n_valid utterances per task: asr (AISHELL-1 dev), st (WMT19
#                  news-commentary), sqa (Alpaca), + the qa copies of those sqa ones
#                  (--text_qa true); the same for every dataset            --valid_set
#   <ASR test>     aishell2_test (--aishell2 true; AISHELL-1 test is then in training), or
#                  aishell_test (--aishell2 false): the readers' sets, task asr  --test_sets
#   newstest2019   WMT19 newstest2019 spoken by TTS (st; ROUGE-L/BLEU)     --test_sets
#   alpaca_test    --n_alpaca_test Alpaca records, each as sqa (spoken question) and as qa
#                  (text question, ids <record>-qa; kept with --text_qa false)  --test_sets
#   e.g. ./sllm.sh --train_set train_d2 --valid_set valid_mt \
#            --test_sets "aishell2_test newstest2019 alpaca_test"
#
#   Hours are hours of speech, every figure times --hours_scale; "all" is everything left
#   after the held-out sets.  Each part of a set is the shortest prefix reaching its hours of a
#   seeded random order of its pool (python -m espnet_sllm.data.subset: sha256 of seed and
#   id), so train_d1 ⊂ train_d2 ⊂ train_d3 (utterance ids), and more hours asked than a pool
#   holds is an error naming the hours there are.  Held out first, from the text, by the same
#   order: alpaca_test, then valid_mt's sqa, from alpaca_zh; valid_mt's st from wmt19_train;
#   valid_mt's asr from aishell_dev.  Training drops utterances over 30 s (stage 3); here the
#   spoken WMT19 / Alpaca utterances over 30 s are left out of the training pools and
#   valid_mt already (counted as too_long in tts_report.txt), so that their hours are hours
#   that train (a held-out one may go: valid_mt can hold fewer than --n_valid); the test sets
#   keep them.
#   Fields of every assembled set: text = the target (transcript / English translation /
#   answer), text_src = the spoken text or question (the transcript for asr), utt2task,
#   utt2lang zh, utt2dur; newstest2019 also utt2tgtlang en (the scoring's target language).
#   The qa rows are text-only: an empty wav.scp entry (stage 2 writes a 0-sample WAV), task
#   qa, id = the sqa record's id + "-qa" (--text_qa false: no qa rows in train/valid).
#
#   Speech by TTS (python -m espnet_sllm.bin.synthesize; --tts, --tts_conf, --seed, --nj;
#   resumable: a killed run continues where it stopped):
#     <data_dir>/wmt19_train_tts   news-commentary minus valid_mt's, spoken up to the hours the
#                                  datasets need (200 h x --hours_scale; 100 h for dataset 1
#                                  alone), in the seeded order
#     <data_dir>/wmt19_valid_tts, wmt19_test_tts, alpaca_zh_tts (all Alpaca but the held-out;
#                                  30 h x scale for dataset 1 alone), alpaca_valid_tts,
#                                  alpaca_test_tts
#   each with tts_log.jsonl (voice, pitch, speed per utterance) and tts_report.txt (drops).
#   These keep the readers' fields (text = spoken text, text_tgt = target).  The WenetSpeech
#   part of train_d3 is cut out of its recordings into <data_dir>/wenetspeech_m_d3 (stage 2's
#   format_data: a set with text-only rows cannot have segments).  Intermediate directories
#   go to <data_dir>/local/.  The table of the sets (utterances and hours per set and task) is
#   printed at the end and written to <data_dir>/sets.md.
#
# Options:
#   --corpora "C1 C2 ..."      corpora to read, space or comma separated; each one's root
#                              must exist
#                                 (default: "aishell aishell2 wmt19 alpaca_zh wenetspeech")
#   --extract_dir DIR          where to extract the AISHELL-1 per-speaker archives when
#                              data_aishell/wav is not writable; empty = in place (default: "")
#   --wmt19_max_pairs N        keep the first N news-commentary pairs, 0 = all (default: 0)
#   --alpaca_max_records N     keep the first N Alpaca-zh records, 0 = all     (default: 0)
#   --data_dir DIR             where the data directories go                  (default: data)
#   --strict true|false        true: a row the readers would drop and count is an error naming
#                              file:line and the reason (WMT19's document breaks excepted)
#                                                                             (default: false)
#   --datasets "1 2 3"|none    training sets to write (space or comma separated); none: the
#                              readers only, no TTS, no sets            (default: "1 2 3")
#   --aishell2 true|false      whether ASR is tested on AISHELL-2 iOS test (true) or on
#                              AISHELL-1 test (false: aishell_test is left out of training)
#                                                                             (default: true)
#   --text_qa true|false       the text-only qa copy of every Alpaca record of train/valid
#                                                                             (default: true)
#   --hours_scale X            factor of every hour figure, a number or a fraction (debug:
#                              1/1800)                                        (default: 1)
#   --n_valid N                valid_mt's utterances per task                 (default: 200)
#   --n_alpaca_test N          alpaca_test's records                          (default: 500)
#   --seed N                   seed of the held-out choice, the subsets and the TTS voices
#                                                                             (default: 0)
#   --nj N                     parallel TTS / audio cutting processes         (default: 4)
#   --tts NAME|module:Class    TTS backend (espnet_sllm.tts): espeak (espeak-ng Mandarin,
#                              voice cmn-latn-pinyin) or an AbsTTS subclass  (default: espeak)
#   --tts_conf "k=v ..."       its constructor arguments, separated by blanks or ';' (e.g.
#                              "pitch_min=40;speed_max=170")                  (default: "")
#
# Run from the recipe directory (egs2/aishell_wmt/asr1).  Examples:
#   AISHELL=/db/aishell AISHELL2_TEST=/db/aishell2 WMT19=/db/wmt19 ALPACA_ZH=/db/alpaca_zh \
#       WENETSPEECH=/db/wenetspeech local/data.sh --nj 16
#   local/data.sh --corpora aishell,aishell2,wmt19,alpaca_zh --datasets 1,2   # no WenetSpeech
#   local/data.sh --datasets none --corpora wmt19                              # readers only
set -euo pipefail

all_corpora="aishell aishell2 wmt19 alpaca_zh wenetspeech"
corpora=${all_corpora}
extract_dir=""
wmt19_max_pairs=0
alpaca_max_records=0
data_dir=data
datasets="1 2 3"
aishell2=true
text_qa=true
hours_scale=1
n_valid=200
n_alpaca_test=500
seed=0
nj=4
tts=espeak
tts_conf=""
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
for v in wmt19_max_pairs alpaca_max_records seed; do
    case ${!v} in '' | *[!0-9]*) die "--${v} must be a number >= 0, got '${!v}'" ;; esac
done
for v in n_valid n_alpaca_test nj; do
    case ${!v} in '' | *[!0-9]* | 0) die "--${v} must be a number >= 1, got '${!v}'" ;; esac
done
datasets=${datasets//,/ }
if [ "${datasets// /}" = none ]; then
    datasets=none
else
    [ -n "${datasets// /}" ] || die "--datasets is empty; give some of 1 2 3, or none"
    for d in ${datasets}; do
        case ${d} in
            1|2|3) ;;
            *) die "unknown dataset '${d}' (--datasets); valid: 1 2 3, or none" ;;
        esac
    done
fi
# WenetSpeech M (a scan of its whole metadata) only serves dataset 3.
if [[ " ${corpora} " == *" wenetspeech "* ]] && [[ " ${datasets} " != *" 3 "* ]]; then
    log "--datasets ${datasets}: WenetSpeech is only read for dataset 3: left out"
    corpora=$(echo " ${corpora} " | sed 's/ wenetspeech / /; s/^ *//; s/ *$//')
fi
[[ ${hours_scale} =~ ^[0-9]*\.?[0-9]+(/[0-9]*\.?[0-9]+)?$ ]] && \
    awk "BEGIN { exit !((${hours_scale}) > 0) }" || \
    die "--hours_scale must be a positive number or fraction (e.g. 1/1800), got '${hours_scale}'"

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
        wenetspeech) check_root WENETSPEECH WenetSpeech \
            "the folder holding WenetSpeech.json and audio/" ;;
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
        wenetspeech)
            log "Reading WenetSpeech ${WENETSPEECH} (subset M) into ${data_dir}/wenetspeech_m"
            python -m espnet_sllm.data.corpora.wenetspeech --json "${WENETSPEECH}" --subsets M \
                --out_dir "${data_dir}" --prefix wenetspeech_ --strict "${strict}"
            made+=(wenetspeech_m) ;;
    esac
done

log "Data directories of the readers:"
for name in "${made[@]}"; do
    d=${data_dir}/${name}
    if [ -f "${d}/wav.scp" ]; then kind="with audio"; else kind="text only (speech: TTS stage)"; fi
    task=asr
    [ -f "${d}/utt2task" ] && task=$(cut -d' ' -f2 "${d}/utt2task" | sort -u | tr '\n' ' ')
    echo "  ${d}: $(wc -l <"${d}/utt2spk") utterances, ${kind}; task: ${task% }"
done
if [ "${datasets}" = none ]; then
    log "Successfully finished (--datasets none: no TTS, no training sets). [elapsed=${SECONDS}s]"
    exit 0
fi

# ------------------------------------------------------------------------------ (B) assembly
has_dataset() { [[ " ${datasets} " == *" $1 "* ]]; }
hours() { awk "BEGIN { printf \"%.10g\", ($1) * (${hours_scale}) }"; }
need_dir() {  # $1 reader directory, $2 corpus
    [ -f "${data_dir}/$1/utt2spk" ] || die "the assembly (--datasets ${datasets}) needs" \
        "${data_dir}/$1: add $2 to --corpora (local/data.sh --help)"
}
for n in aishell_train aishell_dev aishell_test; do need_dir "${n}" aishell; done
need_dir wmt19_train wmt19
need_dir wmt19_test wmt19
need_dir alpaca_zh alpaca_zh
if has_dataset 3; then need_dir wenetspeech_m wenetspeech; fi
L=${data_dir}/local
mkdir -p "${L}"
subset() { python -m espnet_sllm.data.subset --seed "${seed}" "$@"; }
assemble() { python local/assemble.py "$@"; }
# --tts_conf "k=v k2=v2" or "k=v;k2=v2" -> --tts_conf k=v k2=v2
read -r -a tts_conf_args <<<"${tts_conf//;/ }"
speak() {  # $1 input, $2 output, $3 max hours ("": all), $4 max seconds ("": no limit)
    log "TTS (${tts}): ${1} -> ${2}${3:+ (at most ${3} h)}${4:+ (utterances <= ${4} s)}"
    python -m espnet_sllm.bin.synthesize --in "$1" --out "$2" --seed "${seed}" --nj "${nj}" \
        --tts "${tts}" ${3:+--max_hours "$3"} ${4:+--max_sec "$4"} \
        ${tts_conf_args[@]+--tts_conf "${tts_conf_args[@]}"}
}

log "Held-out sets (seed ${seed}): alpaca_test ${n_alpaca_test} records, valid_mt ${n_valid}" \
    "utterances per task"
subset --in "${data_dir}/alpaca_zh" --out "${L}/alpaca_test_text" --utts "${n_alpaca_test}" \
    --rest "${L}/alpaca_rest_text"
subset --in "${L}/alpaca_rest_text" --out "${L}/alpaca_valid_text" --utts "${n_valid}" \
    --rest "${L}/alpaca_pool_text"
subset --in "${data_dir}/wmt19_train" --out "${L}/wmt19_valid_text" --utts "${n_valid}" \
    --rest "${L}/wmt19_pool_text"
subset --in "${data_dir}/aishell_dev" --out "${L}/aishell_valid" --utts "${n_valid}" \
    --rest "${L}/aishell_dev_rest"

# Hours of each part: dataset 1 = d1_*, dataset 2 = d2_* ("all": the whole pool), dataset 3 =
# dataset 2 + d3_wenetspeech.
d1_aishell=$(hours 90); d1_wmt19=$(hours 100); d1_alpaca=$(hours 30)
d2_wmt19=$(hours 200); d3_wenetspeech=$(hours 200)
if has_dataset 2 || has_dataset 3; then wmt19_tts_hours=${d2_wmt19}; alpaca_tts_hours=""
else wmt19_tts_hours=${d1_wmt19}; alpaca_tts_hours=${d1_alpaca}; fi

# Training and validation leave out utterances over 30 s (Whisper's window; stage 3 would
# drop them from training anyway), so that the hours counted are hours that train; the test
# sets keep them.
speak "${L}/wmt19_pool_text" "${data_dir}/wmt19_train_tts" "${wmt19_tts_hours}" 30
speak "${L}/wmt19_valid_text" "${data_dir}/wmt19_valid_tts" "" 30
speak "${data_dir}/wmt19_test" "${data_dir}/wmt19_test_tts"
speak "${L}/alpaca_pool_text" "${data_dir}/alpaca_zh_tts" "${alpaca_tts_hours}" 30
speak "${L}/alpaca_valid_text" "${data_dir}/alpaca_valid_tts" "" 30
speak "${L}/alpaca_test_text" "${data_dir}/alpaca_test_tts"

log "Test sets: newstest2019 (st), alpaca_test (sqa + qa)"
assemble task --in "${data_dir}/wmt19_test_tts" --out "${data_dir}/newstest2019" --task st \
    --tgt_lang en
assemble task --in "${data_dir}/alpaca_test_tts" --out "${L}/alpaca_test_sqa" --task sqa
assemble task --in "${data_dir}/alpaca_test_tts" --out "${L}/alpaca_test_qa" --task qa \
    --text_only true
assemble combine --out "${data_dir}/alpaca_test" "${L}/alpaca_test_sqa" "${L}/alpaca_test_qa"

log "Validation set valid_mt"
assemble task --in "${L}/aishell_valid" --out "${L}/valid_asr" --task asr
assemble task --in "${data_dir}/wmt19_valid_tts" --out "${L}/valid_st" --task st
assemble task --in "${data_dir}/alpaca_valid_tts" --out "${L}/valid_sqa" --task sqa
valid_parts=("${L}/valid_asr" "${L}/valid_st" "${L}/valid_sqa")
if [ "${text_qa}" = true ]; then
    assemble task --in "${data_dir}/alpaca_valid_tts" --out "${L}/valid_qa" --task qa \
        --text_only true
    valid_parts+=("${L}/valid_qa")
fi
assemble combine --out "${data_dir}/valid_mt" "${valid_parts[@]}"

# The AISHELL-1 pool: train + dev (but valid_mt's) + test (unless it is the ASR test set).
aishell_parts=("${data_dir}/aishell_train" "${L}/aishell_dev_rest")
if [ "${aishell2}" = true ]; then
    aishell_parts+=("${data_dir}/aishell_test")
    asr_test=aishell2_test
else
    asr_test=aishell_test
fi
assemble combine --out "${L}/aishell_pool" "${aishell_parts[@]}"

part() {  # $1 name, $2 reader-convention directory (or pool), $3 task, $4 hours or "all"
    local src=$2
    if [ "$4" != all ]; then
        subset --in "$2" --out "${L}/$1_sel" --hours "$4"
        src=${L}/$1_sel
    fi
    assemble task --in "${src}" --out "${L}/$1" --task "$3"
    if [ "$3" = sqa ] && [ "${text_qa}" = true ]; then
        assemble task --in "${src}" --out "${L}/$1_qa" --task qa --text_only true
    fi
}
parts_of() {  # the task directories of the parts named $@ (an Alpaca part: + its qa copies)
    local p
    for p in "$@"; do
        echo "${L}/${p}"
        if [[ ${p} == *_alpaca ]] && [ "${text_qa}" = true ]; then echo "${L}/${p}_qa"; fi
    done
}
sets=()
if has_dataset 1; then
    log "train_d1: AISHELL-1 ${d1_aishell} h + WMT19 ${d1_wmt19} h + Alpaca ${d1_alpaca} h"
    part d1_aishell "${L}/aishell_pool" asr "${d1_aishell}"
    part d1_wmt19 "${data_dir}/wmt19_train_tts" st "${d1_wmt19}"
    part d1_alpaca "${data_dir}/alpaca_zh_tts" sqa "${d1_alpaca}"
    mapfile -t ps < <(parts_of d1_aishell d1_wmt19 d1_alpaca)
    assemble combine --out "${data_dir}/train_d1" "${ps[@]}"
    sets+=(train_d1)
fi
if has_dataset 2 || has_dataset 3; then
    log "train_d2: AISHELL-1 all + WMT19 ${d2_wmt19} h + Alpaca all"
    part d2_aishell "${L}/aishell_pool" asr all
    part d2_wmt19 "${data_dir}/wmt19_train_tts" st "${d2_wmt19}"
    part d2_alpaca "${data_dir}/alpaca_zh_tts" sqa all
    mapfile -t d2_parts < <(parts_of d2_aishell d2_wmt19 d2_alpaca)
    if has_dataset 2; then
        assemble combine --out "${data_dir}/train_d2" "${d2_parts[@]}"
        sets+=(train_d2)
    fi
fi
if has_dataset 3; then
    log "train_d3: train_d2 + WenetSpeech M ${d3_wenetspeech} h (cut into" \
        "${data_dir}/wenetspeech_m_d3)"
    # Whole recordings (the reader's speaker = the recording): the cut decodes only them.
    subset --in "${data_dir}/wenetspeech_m" --out "${L}/d3_wenetspeech_seg" \
        --hours "${d3_wenetspeech}" --by spk
    python -m espnet_sllm.bin.format_data --in "${L}/d3_wenetspeech_seg" \
        --out "${data_dir}/wenetspeech_m_d3" --nj "${nj}"
    assemble task --in "${data_dir}/wenetspeech_m_d3" --out "${L}/d3_wenetspeech" --task asr
    assemble combine --out "${data_dir}/train_d3" "${d2_parts[@]}" "${L}/d3_wenetspeech"
    sets+=(train_d3)
fi
sets+=(valid_mt)
[ -f "${data_dir}/${asr_test}/utt2spk" ] && sets+=("${asr_test}")
sets+=(newstest2019 alpaca_test)

log "The sets (${data_dir}/sets.md; hours of speech, qa rows have none):"
set_dirs=()
for name in "${sets[@]}"; do set_dirs+=("${data_dir}/${name}"); done
assemble table --out "${data_dir}/sets.md" "${set_dirs[@]}"
log "Successfully finished. [elapsed=${SECONDS}s]"
