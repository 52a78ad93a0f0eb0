#!/usr/bin/env python3
"""Pack a trained Speech LLM for sharing (recipe stage 10).

Usage:
    python -m espnet_sllm.bin.pack_model --exp exp/sllm_train --model_file valid.acc.best.pth \
        --out exp/sllm_train/packed/sllm_train.zip [--merged exp/sllm_train/chain/merged]

The zip holds ``config.yaml``, ``model.pth``, ``RESULTS.md`` (when present), a ``README.md``
and, under ``pretrained/<key>/``, the configs and tokenizers of local model directories that the
config refers to (from-scratch LLMs are complete with them; weights of pretrained checkpoints
are not copied: the config keeps hub ids, and the README names local paths to re-supply).
Paths in the packed config are relative to the unpacked directory: decode from there.

``--merged`` (``model: hf_audio`` trained with ``sllm.sh --chain_mode merge``, e.g. ILT's last
round; stage 10 passes its ``chain/merged``): the final model is that directory, LoRA folded in,
a plain Hugging Face checkpoint + processor + ``lid_embeddings.safetensors``. It is packed whole,
weights included, under ``merged/`` (usable with transformers alone), and the packed config
decodes it as it is: ``model_conf`` ``model_name_or_path: merged``, ``lora_r: 0``,
``freeze: true``, ``freeze_lid: true`` (with LID embeddings), ``model.pth`` an empty state dict.
"""
import argparse
import logging
import os
import zipfile
from typing import List, Optional

import yaml

#: Files of an HF directory that are small and needed (weights are left out).
SMALL_SUFFIXES = (".json", ".model", ".txt", ".jinja", ".tiktoken")


def _pack_merged(z: zipfile.ZipFile, config: dict, merged: str) -> bytes:
    """Write ``merged`` under ``merged/``, point ``config`` at it; returns the model.pth to pack
    (an empty state dict: nothing is left to load beyond the merged checkpoint)."""
    import io

    import torch

    if config.get("model") != "hf_audio":
        raise ValueError(f"--merged {merged}: only model hf_audio is packed merged, this "
                         f"config has model {config.get('model', 'sllm')!r}")
    if not os.path.isfile(os.path.join(merged, "config.json")):
        raise FileNotFoundError(f"--merged {merged}: no config.json there (not a merged model)")
    for name in sorted(os.listdir(merged)):
        if os.path.isfile(os.path.join(merged, name)):
            z.write(os.path.join(merged, name), f"merged/{name}")
    conf = config.setdefault("model_conf", {})
    conf.update(model_name_or_path="merged", lora_r=0, freeze=True)
    if conf.get("lid_embeddings"):
        conf["freeze_lid"] = True
    empty = io.BytesIO()  # (in memory: no temporary file left behind)
    torch.save({}, empty)
    return empty.getvalue()


def pack(exp: str, model_file: str, out: str, merged: Optional[str] = None) -> str:
    config_path = os.path.join(exp, "config.yaml")
    model_path = os.path.join(exp, model_file)
    for p in (config_path, model_path):
        if not os.path.isfile(p):
            raise FileNotFoundError(f"cannot pack {exp}: {p} is missing")
    with open(config_path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    notes = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        if merged is not None:
            model_bytes = _pack_merged(z, config, merged)
        for key in ("llm_conf", "encoder_conf"):
            conf = config.get(key) or {}
            for field in ("model_name_or_path", "tokenizer_name_or_path"):
                src = conf.get(field)
                if not src or not os.path.isdir(src):
                    continue  # a hub id stays as it is
                dst = f"pretrained/{key}_{field}"
                has_weights = False
                for name in sorted(os.listdir(src)):
                    full = os.path.join(src, name)
                    if os.path.isfile(full) and name.endswith(SMALL_SUFFIXES):
                        z.write(full, f"{dst}/{name}")
                    elif name.endswith((".safetensors", ".bin")):
                        has_weights = True
                if has_weights and conf.get("pretrained", True):
                    notes.append(f"- `{key}.{field}` was `{os.path.abspath(src)}`: its weights are "
                                 f"not packed; point `{dst}` at a copy of that checkpoint.")
                conf[field] = dst
        config["train_shape_file"], config["valid_shape_file"] = [], []
        z.writestr("config.yaml", yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
        if merged is not None:
            z.writestr("model.pth", model_bytes)
        else:
            z.write(model_path, "model.pth")
        results = os.path.join(exp, "RESULTS.md")
        if os.path.isfile(results):
            z.write(results, "RESULTS.md")
        readme = [
            "# Packed espnet_sllm model", "",
            f"Packed from `{exp}` ({model_file}"
            + (f", merged into `{merged}`: the `merged/` checkpoint" if merged else "") + ").", "", "Decode from the unpacked directory:", "",
            "```", "python -m espnet_sllm.bin.sllm_inference --train_config config.yaml \\",
            "    --model_file model.pth --data_path_and_name_and_type <wav.scp>,speech,sound \\",
            "    --output_dir decode", "```", "",
        ] + notes
        z.writestr("README.md", "\n".join(readme) + "\n")
    logging.info(f"packed {exp} into {out}")
    return out


def main(cmd: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", required=True)
    parser.add_argument("--model_file", default="valid.acc.best.pth")
    parser.add_argument("--out", required=True)
    parser.add_argument("--merged", default=None,
                        help="the merged hf_audio model of --model_file (chain/merged): pack it")
    args = parser.parse_args(cmd)
    logging.basicConfig(level="INFO", format="%(asctime)s (%(module)s:%(lineno)d) %(message)s")
    try:
        pack(args.exp, args.model_file, args.out, args.merged)
    except (OSError, ValueError) as e:
        raise SystemExit(f"pack_model.py: error: {e}") from None


if __name__ == "__main__":
    main()
