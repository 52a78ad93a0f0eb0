#!/usr/bin/env python3
"""Convert a fairseq TeleSpeech data2vec 2.0 checkpoint for ``encoder: data2vec2``.

Usage:
    python -m espnet_sllm.bin.convert_data2vec2 --fairseq_ckpt large.pt --out exp/telespeech_large
    python -m espnet_sllm.bin.convert_data2vec2 --fairseq_ckpt finetune_large_kespeech.pt \
        --out exp/telespeech_large_kespeech_ctc

Writes ``OUT/config.json`` (the architecture, read from the checkpoint's ``cfg``) and
``OUT/model.safetensors`` (the encoder weights). Both layouts are read: the pretrained model
(``large.pt``, ``base.pt``: EMA teacher and decoder dropped) and a CTC fine-tuned one (keys
``w2v_encoder.w2v_model.*``, the CTC output layer ``w2v_encoder.proj`` dropped). The training
config then says ``encoder: data2vec2`` and ``encoder_conf: {model_name_or_path: OUT}``.

The file is read with torch.load(weights_only=True); ``--unsafe_load true`` reads a file that needs
more than plain containers and tensors with weights_only=False (only for a file you trust).
Logic: espnet_sllm/encoders/data2vec2_convert.py.
"""
import argparse
import logging
import sys
from typing import List, Optional

from espnet_sllm.bin.cli import str2bool
from espnet_sllm.encoders.data2vec2_convert import convert_data2vec2


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fairseq_ckpt", required=True,
                        help="fairseq checkpoint (.pt), pretrained or CTC fine-tuned")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--unsafe_load", type=str2bool, default=False,
                        help="read the checkpoint with torch.load(weights_only=False)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    try:
        convert_data2vec2(args.fairseq_ckpt, args.out, unsafe_load=args.unsafe_load,
                          log=logging.info)
    except (ValueError, OSError) as e:  # Data2Vec2ConvertError is a ValueError
        print(f"convert_data2vec2: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
