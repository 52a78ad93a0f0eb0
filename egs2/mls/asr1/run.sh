#!/usr/bin/env bash
# Usage:
#   ./run.sh [--langs "english german ..."] [--local_data_opts "..."] [--stage N]
#            [--stop_stage M] [--train_config conf/...yaml] [any other option of ./sllm.sh]
#
# egs2/mls/asr1: multilingual ASR on Multilingual LibriSpeech (8 languages), the ASR part of
# Ideal-LLM (Xue et al.): Whisper and MMS encoders, fused per language, into Phi-3-mini.
#
# What run.sh adds to sllm.sh (./sllm.sh --help): the sets of this recipe,
#   --train_set train   every language's training set, balanced across languages on request
#                       (--local_data_opts "--balance_alpha 0.5", the paper-style balancing)
#   --valid_set dev     every language's dev set
#   --test_sets         mls_<code>_test of each language of --langs (scored per language)
# and --langs, given to local/data.sh (stage 1) as --langs L1,L2,...  Other options of
# local/data.sh go in --local_data_opts (words separated by spaces, no quoting), e.g.
# "--limited 9hr --balance_alpha 0.5 --balance_seed 1"; see local/data.sh --help.
#
# The corpus root is MLS in db.sh (environment override: MLS=/db/mls ./run.sh).  The model
# and training configs come with the recipe's model issue: stages 1-3 (data) run without
# --train_config; stages 4-10 need one, which is passed to sllm.sh as given.
#
# Options:
#   --langs "L1 L2 ..."       MLS folder names (mls_<name>), space or comma separated
#                             (default: english german dutch french spanish italian
#                             portuguese polish)
#   --local_data_opts "..."   more options of local/data.sh (default: "")
#
# Examples:
#   MLS=/db/mls ./run.sh --stage 1 --stop_stage 3          # data preparation only
#   MLS=/db/mls ./run.sh --stage 1 --stop_stage 1 --langs "german polish" \
#       --local_data_opts "--balance_alpha 0.5"
set -euo pipefail

langs="english german dutch french spanish italian portuguese polish"
local_data_opts=""
own_options="langs local_data_opts"
# shellcheck disable=SC1091
. scripts/utils/split_options.sh
die() { echo "$0: ERROR: $*" >&2; exit 1; }
[ -f sllm.sh ] && [ -f local/data.sh ] || die "run me from egs2/mls/asr1"

# shellcheck disable=SC1091
. ./path.sh

langs=$(echo "${langs//,/ }" | xargs)
[ -n "${langs}" ] || die "--langs is empty"
# The ISO codes name the test sets; this also rejects an unknown language early.
# shellcheck disable=SC2086
codes=$(python -m espnet_sllm.data.corpora.mls --print_codes ${langs}) \
    || die "--langs: see the error above"
test_sets=""
for c in ${codes}; do test_sets+="${test_sets:+ }mls_${c}_test"; done

# sllm.sh word-splits --local_data_opts, so the languages travel comma-separated; the user's
# options come last (local/data.sh keeps the last value of an option).
./sllm.sh \
    --train_set train --valid_set dev --test_sets "${test_sets}" \
    --local_data_opts "--langs ${langs// /,}${local_data_opts:+ ${local_data_opts}}" \
    "${args[@]+"${args[@]}"}"
