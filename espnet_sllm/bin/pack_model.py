#!/usr/bin/env python3
"""Pack a trained Speech LLM for sharing (recipe stage 10).

Usage:
    python -m espnet_sllm.bin.pack_model --exp exp/sllm_train --model_file valid.acc.best.pth \
        --out exp/sllm_train/packed/sllm_train.zip

The zip holds ``config.yaml``, ``model.pth``, ``RESULTS.md`` (when present), a ``README.md``
and, under ``pretrained/<key>/``, the configs and tokenizers of local model directories that the
config refers to (from-scratch LLMs are complete with them; weights of pretrained checkpoints
are not copied: the config keeps hub ids, and the README names local paths to re-supply).
Paths in the packed config are relative to the unpacked directory: decode from there.
"""
import argparse
import logging
import os
import zipfile
from typing import List, Optional

import yaml

#: Files of an HF directory that are small and needed (weights are left out).
SMALL_SUFFIXES = (".json", ".model", ".txt", ".jinja", ".tiktoken")


def pack(exp: str, model_file: str, out: str) -> str:
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
        z.write(model_path, "model.pth")
        results = os.path.join(exp, "RESULTS.md")
        if os.path.isfile(results):
            z.write(results, "RESULTS.md")
        readme = [
            "# Packed espnet_sllm model", "",
            f"Packed from `{exp}` ({model_file}).", "", "Decode from the unpacked directory:", "",
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
    args = parser.parse_args(cmd)
    logging.basicConfig(level="INFO", format="%(asctime)s (%(module)s:%(lineno)d) %(message)s")
    pack(args.exp, args.model_file, args.out)


if __name__ == "__main__":
    main()
