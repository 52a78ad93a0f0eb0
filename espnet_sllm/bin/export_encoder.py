#!/usr/bin/env python3
"""Export the speech encoder of a trained model as a checkpoint folder other configs load.

Usage:
    python -m espnet_sllm.bin.export_encoder --config exp/sllm_ctc_finetune/config.yaml \\
        --model exp/sllm_ctc_finetune/valid.acc.best.pth --out downloads/telespeech_large_ctc

The encoder of ``--config`` with the weights of ``--model`` (an ESPnet checkpoint of the whole
model, e.g. after ``ctc_weight: 1.0`` fine-tuning) is written to ``--out`` in the encoder's own
format, the one ``encoder_conf.model_name_or_path`` reads: for ``data2vec2`` the ``config.json``
+ ``model.safetensors`` of ``espnet_sllm.bin.convert_data2vec2`` (egs2/kespeech/asr1 run.sh
--ctc_finetune true does this).  An encoder without such a format is an error naming the ones
that have it.  The model's other keys (CTC head, projector, LLM) are not exported.
"""
import argparse
import logging
import os
import sys
from typing import List, Optional


def export_encoder(config: str, model: str, out: str) -> str:
    """Write the encoder of ``config`` + ``model`` to ``out``; returns the encoder's name."""
    import yaml

    from espnet_sllm.tasks.sllm import SLLMTask

    with open(config, encoding="utf-8") as f:
        name = (yaml.safe_load(f) or {}).get("encoder")
    net, _ = SLLMTask.build_model_from_file(config, model, "cpu")
    save = getattr(net.encoder, "save_pretrained", None)
    if save is None:
        raise ValueError(f"{config}: encoder {name!r} has no checkpoint format to export to; "
                         f"encoders that have one: data2vec2")
    save(out, source={"exported_from": os.path.abspath(model), "config": os.path.abspath(config)})
    return str(name)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("Usage:")[0].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Usage:" + __doc__.split("Usage:")[1])
    parser.add_argument("--config", required=True, help="the experiment's config.yaml")
    parser.add_argument("--model", required=True, help="its checkpoint (e.g. valid.acc.best.pth)")
    parser.add_argument("--out", required=True, help="folder to write the encoder to")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    for path in (args.config, args.model):
        if not os.path.isfile(path):
            print(f"export_encoder: ERROR: {path} not found", file=sys.stderr)
            return 1
    try:
        name = export_encoder(args.config, args.model, args.out)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"export_encoder: ERROR: {e}", file=sys.stderr)
        return 1
    logging.info("exported the %s encoder of %s to %s", name, args.model, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
