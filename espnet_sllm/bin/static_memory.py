#!/usr/bin/env python3
"""Static GPU memory per GPU of ``model: hf_audio`` training configs (e.g. ILT's rounds), from
their checkpoints' ``config.json`` only (nothing is loaded: `espnet_sllm.analysis.memory`).

Usage:
    python -m espnet_sllm.bin.static_memory --config conf/tuning/ilt_whisper_feedback.yaml \\
        [--config conf/tuning/ilt_whisper_fix.yaml ...] [--model_name_or_path DIR_OR_HUB_ID]

Prints one row per config: base parameters, LoRA and LID parameters, frozen weights (in
``model_conf.dtype``), trainable weights + gradients + AdamW moments (fp32, 16 bytes each) and
their sum in GiB: the floor under plain DDP; activations (batch, lengths) come on top.
``--model_name_or_path`` replaces every config's checkpoint (e.g. a local copy of
``openai/whisper-large-v3``). Errors (exit status 1, one line): a missing file, a config that
is not ``model: hf_audio``, a checkpoint config that cannot be read.
"""
import argparse
import sys
from typing import List, Optional

import yaml


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("Usage:")[0].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Usage:" + __doc__.split("Usage:")[1])
    parser.add_argument("--config", required=True, action="append",
                        help="a training config (model: hf_audio); repeatable")
    parser.add_argument("--model_name_or_path", default=None,
                        help="the checkpoint to size (default: each config's model_conf)")
    args = parser.parse_args(argv)
    from espnet_sllm.analysis.memory import GIB, from_training_config

    print("config\tbase_params\tlora_params\tlid_params\tfrozen_GiB\ttrainable_GiB\t"
          "static_GiB")
    for path in args.config:
        try:
            with open(path, encoding="utf-8") as f:
                conf = yaml.safe_load(f) or {}
            m = from_training_config(conf, args.model_name_or_path)
        except (OSError, ValueError, KeyError) as e:
            print(f"static_memory: ERROR: {path}: {e}", file=sys.stderr)
            return 1
        print(f"{path}\t{m['base_parameters']}\t{m['lora_parameters']}\t{m['lid_parameters']}\t"
              f"{m['frozen_weight_bytes'] / GIB:.2f}\t{m['trainable_bytes'] / GIB:.2f}\t"
              f"{m['static_bytes'] / GIB:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
