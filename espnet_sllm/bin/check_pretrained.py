#!/usr/bin/env python3
"""Check, before hours of training, that the checkpoints a training config names can be loaded.

Usage:
    python -m espnet_sllm.bin.check_pretrained --config conf/train.yaml

Reads ``llm_conf`` (tokenizer + model config of ``model_name_or_path``) and, for HF encoders,
``encoder_conf.model_name_or_path``; loads configs and tokenizers only (not the weights), and
exits with a message naming the config key and the path when one cannot be loaded.
"""
import argparse
import logging
import sys
from typing import List, Optional

import yaml


def check_config(path: str) -> List[str]:
    """Returns a list of human-readable problems (empty: everything loads)."""
    from transformers import AutoConfig

    from espnet_sllm.llm.tokenizer import load_tokenizer

    with open(path, encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    problems = []
    llm_conf = conf.get("llm_conf") or {}
    name = llm_conf.get("model_name_or_path")
    if not name:
        problems.append(f"{path}: llm_conf.model_name_or_path is missing")
    else:
        trust = llm_conf.get("trust_remote_code", False)
        try:
            AutoConfig.from_pretrained(name, trust_remote_code=trust)
            load_tokenizer(llm_conf.get("tokenizer_name_or_path") or name,
                           llm_conf.get("special_tokens", ()), trust)
            logging.info(f"{path}: LLM {name}: config and tokenizer load")
        except Exception as e:  # any loading failure is reported, not raised
            problems.append(f"{path}: llm_conf.model_name_or_path={name!r} does not load: {e}")
    enc_name = (conf.get("encoder_conf") or {}).get("model_name_or_path")
    if enc_name:
        try:
            AutoConfig.from_pretrained(enc_name)
            logging.info(f"{path}: encoder {enc_name}: config loads")
        except Exception as e:
            problems.append(f"{path}: encoder_conf.model_name_or_path={enc_name!r} does not load: {e}")
    return problems


def main(cmd: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, action="append")
    args = parser.parse_args(cmd)
    logging.basicConfig(level="INFO", format="%(asctime)s (%(module)s:%(lineno)d) %(message)s")
    problems = [p for c in args.config for p in check_config(c)]
    if problems:
        sys.exit("\n".join(problems))


if __name__ == "__main__":
    main()
