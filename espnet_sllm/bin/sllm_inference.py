#!/usr/bin/env python3
"""Decode speech with a trained Speech LLM; writes ESPnet's ``1best_recog`` layout.

Usage:
    python -m espnet_sllm.bin.sllm_inference \
        --train_config exp/sllm/config.yaml --model_file exp/sllm/valid.acc.best.pth \
        --data_path_and_name_and_type dump/raw/test/wav.scp,speech,sound \
        [--data_path_and_name_and_type dump/raw/test/utt2lang,lang,text] \
        [--key_file split/keys.1.scp] --output_dir exp/sllm/decode_test/output.1 \
        --batch_size 8 [--batch_seconds 120] --beam_size 4 --no_repeat_ngram_size 5

The decoding loop is espnet_sllm/decoding/inference.py (this is its command line). A job killed
half-way resumes when the same command runs again (``1best_recog/.partial.jsonl``: only the
missing utterances are decoded); utterances whose audio cannot be read are listed in
``1best_recog/failed`` and get an empty hypothesis.
"""
import argparse
import logging
import sys
from typing import List, Optional

from espnet2.utils import config_argparse
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import (float_or_none, int_or_none, str2bool, str2triple_str,
                                 str_or_none)

from espnet_sllm.decoding.inference import inference


def get_parser() -> argparse.ArgumentParser:
    parser = config_argparse.ArgumentParser(
        description="Speech-LLM decoding", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--log_level", default="INFO",
                        choices=("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET"))
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--ngpu", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--dtype", type=str_or_none, default=None, choices=[None, "float32", "bfloat16", "float16"],
        help="cast the whole model to this dtype; default: as trained (frozen components in the "
             "dtype their config names, trained weights in float32)")
    parser.add_argument("--num_workers", type=int, default=1)
    group = parser.add_argument_group("Input data related")
    group.add_argument("--data_path_and_name_and_type", type=str2triple_str, required=True,
                       action="append")
    group.add_argument("--key_file", type=str_or_none)
    group.add_argument("--allow_variable_data_keys", type=lambda x: x.lower() == "true",
                       default=False)
    group = parser.add_argument_group("The model configuration related")
    group.add_argument("--train_config", required=True)
    group.add_argument("--model_file", type=str_or_none)
    group.add_argument("--preprocessor_conf", action=NestedDictAction, default=dict(),
                       help="overrides of the training preprocessor_conf (e.g. prompt_template)")
    group.add_argument("--llm_conf", action=NestedDictAction, default=dict(),
                       help="overrides of the training llm_conf, e.g. model_name_or_path=DIR: "
                            "another frozen LLM of the same hidden and vocabulary size (the "
                            "training tokenizer stays; its EOS ids also end hypotheses)")
    group = parser.add_argument_group("Decoding related")
    group.add_argument("--batch_size", type=int, default=8,
                       help="at most this many utterances per batch (batches are formed from "
                            "the utterances sorted by length, longest first)")
    group.add_argument("--batch_seconds", type=float_or_none, default=None,
                       help="also at most this many seconds of padded audio per batch (number "
                            "of utterances x the longest); both bounds hold, so raise "
                            "--batch_size with it; none: no such bound")
    group.add_argument("--sort_by_length", type=str2bool, default=True,
                       help="false: batches of consecutive keys in key order (for comparisons; "
                            "pads more)")
    group.add_argument("--beam_size", type=int, default=1)
    group.add_argument("--no_repeat_ngram_size", type=int, default=0)
    group.add_argument("--length_penalty", type=float, default=1.0)
    group.add_argument("--repetition_penalty", type=float, default=1.0)
    group.add_argument("--max_new_tokens", type=int, default=200)
    group.add_argument("--max_tokens_per_second", type=float, default=25.0,
                       help="per-utterance budget: 10 + ceil(seconds * this); 0 disables")
    group.add_argument("--min_new_tokens", type=int, default=1)
    group.add_argument("--task_max_new_tokens", type=str_or_none, default=None,
                       help="task=N,...: utterances of these tasks (utt2task) get N new tokens "
                            "instead of min(max_new_tokens, 10 + ceil(seconds * "
                            "max_tokens_per_second)), e.g. sqa=512,qa=512")
    group.add_argument("--beam_size_per_lang", type=str_or_none, default=None,
                       help="LANGUAGE=BEAM,...: these languages (utt2lang labels; give the "
                            "lang data) decode with their own beam, e.g. Thai=1,Japanese=1 "
                            "(ILT); batches are split by beam")
    group = parser.add_argument_group("Analysis (Wu et al. §2.3.3)")
    group.add_argument("--svd_topk", type=int_or_none, default=None,
                       help="keep the top-k singular values of the projector's output per "
                            "utterance (or of its weight, --svd_target weight); none: off; "
                            "writes 1best_recog/svd_topk.json (how many were unchanged)")
    group.add_argument("--svd_target", default="activation", choices=["activation", "weight"],
                       help="activation: each utterance's projector output (frames x width); "
                            "weight: the linear projector's weight (out x in)")
    return parser


def main(cmd: Optional[List[str]] = None):
    print(" ".join([sys.executable] + sys.argv), file=sys.stderr)
    args = get_parser().parse_args(cmd)
    kwargs = vars(args)
    kwargs.pop("config", None)
    logging.basicConfig(
        level=kwargs.pop("log_level"),
        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s",
    )
    try:
        inference(**kwargs)
    except (ValueError, OSError) as e:  # bad input: one line, not a traceback
        print(f"sllm_inference: error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
