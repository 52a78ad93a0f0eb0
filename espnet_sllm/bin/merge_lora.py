#!/usr/bin/env python3
"""Fold a trained model's LoRA adapters into its base weights and write a plain HF checkpoint.

Usage:
    python -m espnet_sllm.bin.merge_lora --config exp/sllm_ilt_whisper_focus/config.yaml \
        --model_file exp/sllm_ilt_whisper_focus/valid.acc.best.pth \
        --out_dir exp/sllm_ilt_whisper_focus/merged

``model: hf_audio`` (Whisper / Qwen2-Audio, ILT): the whole model, its processor (tokenizer,
feature extractor) and generation config, plus ``lid_embeddings.safetensors`` when the model has
language embeddings. ``model: sllm``: its LLM (+ tokenizer and the learned rows of added special
tokens). The directory loads with ``from_pretrained`` and can start another round
(``model_conf.model_name_or_path`` / ``llm_conf.model_name_or_path``) or be shared as it is.
``sllm.sh --chain_mode merge`` does the same between the rounds of a chain
(``espnet_sllm.bin.chain_step`` writes ``<exp>/chain/merged`` or ``<exp>/chain/llm``); this tool
merges a single model, e.g. the final round for stage 10.
"""
import argparse
import logging
import sys
from typing import List, Optional


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config.yaml of the trained model")
    parser.add_argument("--model_file", required=True, help="its trained weights")
    parser.add_argument("--out_dir", required=True, help="the merged HF checkpoint to write")
    return parser


def merge(config: str, model_file: str, out_dir: str) -> str:
    """Build the model of ``config``, load ``model_file`` and write the merged checkpoint."""
    from espnet_sllm.decoding.inference import load_model

    model, args = load_model(config, model_file, "cpu")
    part = model.llm if getattr(args, "model", "sllm") == "sllm" else model
    part.save_pretrained(out_dir)
    return out_dir


def main(argv: Optional[List[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(message)s")
    args = get_parser().parse_args(argv)
    try:
        merge(args.config, args.model_file, args.out_dir)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"ERROR: merge_lora: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
