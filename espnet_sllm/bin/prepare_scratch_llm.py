#!/usr/bin/env python3
"""Write a from-scratch LLM directory: a sentencepiece tokenizer trained on the training text
and the ``config.json`` of a real architecture (recipe stage 4 when no pretrained LLM is used).

Usage:
    python -m espnet_sllm.bin.prepare_scratch_llm --text dump/raw/train/text \
        --out exp/llm_scratch [--family qwen2] [--vocab_size 500] [--hidden_size 128] \
        [--num_layers 2] [--num_heads 4] [--num_kv_heads 2] [--intermediate_size 256]

The training config then says ``llm_conf: {model_name_or_path: exp/llm_scratch, pretrained:
false}``: the architecture is built from this config with random weights and trained.
"""
import argparse
import logging
import os
from typing import List, Optional

from espnet_sllm.data.kaldi_dir import read_kv
from espnet_sllm.llm.scratch import FAMILIES, make_scratch_llm


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", required=True, help="Kaldi text file (utt-id transcript)")
    p.add_argument("--out", required=True)
    p.add_argument("--family", default="qwen2", choices=sorted(FAMILIES))
    p.add_argument("--vocab_size", type=int, default=500)
    p.add_argument("--hidden_size", type=int, default=128)
    p.add_argument("--num_layers", type=int, default=2)
    p.add_argument("--num_heads", type=int, default=4)
    p.add_argument("--num_kv_heads", type=int, default=2)
    p.add_argument("--intermediate_size", type=int, default=256)
    p.add_argument("--extra_text", action="append", default=[],
                   help="more sentences for the tokenizer (e.g. the prompt templates)")
    return p


def main(cmd: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level="INFO", format="%(asctime)s (%(module)s:%(lineno)d) %(message)s")
    sentences = [t for t in read_kv(args.text).values() if t.strip()] + args.extra_text
    if not sentences:
        raise SystemExit(f"{args.text}: no non-empty transcript to train a tokenizer on")
    make_scratch_llm(
        args.out, args.family, hidden_size=args.hidden_size, num_layers=args.num_layers,
        num_heads=args.num_heads, num_kv_heads=args.num_kv_heads,
        intermediate_size=args.intermediate_size, sentences=sentences,
        vocab_size=args.vocab_size, save_weights=False,
    )
    logging.info(f"wrote tokenizer + {args.family} config to {os.path.abspath(args.out)} "
                 f"({len(sentences)} sentences)")


if __name__ == "__main__":
    main()
