#!/usr/bin/env python3
"""An experiment directory that decodes a pretrained model as it is (zero-shot, nothing trained).

Usage:
    python -m espnet_sllm.bin.zero_shot --out_dir exp/sllm_ilt_whisper/none \
        --config conf/tuning/ilt_whisper_focus.yaml \
        --model_conf lora_r=0 --model_conf freeze=true --model_conf lid_embeddings=false

Writes ``<out_dir>/config.yaml`` (the training config with the given overrides, every option
filled in as ``sllm_train`` writes it) and ``<out_dir>/zeroshot.pth`` (an empty state dict), so
that ``sllm_inference --train_config <out_dir>/config.yaml --model_file <out_dir>/zeroshot.pth``
and stage 7-9 of ``sllm.sh`` (``--inference_model zeroshot.pth``) decode the checkpoints the
config names, untouched: e.g. ILT's Table 1 columns of Whisper-large-v3 and Qwen2-Audio. The
overrides must leave nothing to train (no LoRA, frozen, no new modules): decoding then loads the
empty state dict and refuses a trainable weight that it lacks (`decoding.inference.load_model`).
Any other option is an ``sllm_train`` option (``--help`` there); ``--config`` may also be an
experiment's ``config.yaml`` (the trainer's own keys are left out). No data, no model is loaded
here (seconds, not the minutes of ``sllm_train --dry_run`` on a large checkpoint).
"""
import argparse
import os
import sys
from typing import List, Optional


#: keys ESPnet's trainer adds to an experiment's config.yaml that are no options of the parser
TRAINER_KEYS = ("required", "version", "distributed", "config")


def _readable_configs(rest: List[str], out_dir: str, yaml) -> List[str]:
    """``--config <exp>/config.yaml`` (an experiment's, e.g. an ILT round's, to decode its
    merged model): a copy without the trainer's own keys, which the parser refuses."""
    out = list(rest)
    for i, arg in enumerate(out[:-1]):
        if arg == "--config" and os.path.isfile(out[i + 1]):
            with open(out[i + 1], encoding="utf-8") as f:
                conf = yaml.safe_load(f) or {}
            if isinstance(conf, dict) and any(k in conf for k in TRAINER_KEYS[:3]):
                copy = os.path.join(out_dir, "exp_config.yaml")
                with open(copy, "w", encoding="utf-8") as f:
                    yaml.safe_dump({k: v for k, v in conf.items() if k not in TRAINER_KEYS}, f,
                                   sort_keys=False, allow_unicode=True)
                out[i + 1] = copy
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out_dir", required=True, help="the experiment directory to write")
    args, rest = parser.parse_known_args(argv)
    import torch
    import yaml

    from espnet_sllm.tasks.sllm import SLLMTask

    os.makedirs(args.out_dir, exist_ok=True)
    rest = _readable_configs(rest, args.out_dir, yaml)
    try:
        conf = SLLMTask.get_parser().parse_args(rest)
    except SystemExit as e:  # argparse printed the message
        return int(e.code or 1)
    conf.output_dir = args.out_dir
    path = os.path.join(args.out_dir, "config.yaml")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        yaml.safe_dump(vars(conf), f, sort_keys=False, allow_unicode=True)
    os.replace(path + ".tmp", path)
    torch.save({}, os.path.join(args.out_dir, "zeroshot.pth"))
    print(f"zero_shot: {path} and {args.out_dir}/zeroshot.pth (nothing trained)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
