#!/usr/bin/env python3
"""Check, before hours of training, that the checkpoints a training config names can be loaded
and belong together (stage 4).

Usage:
    python -m espnet_sllm.bin.check_pretrained --config conf/train.yaml [--config conf/s2.yaml]

Loads configs and tokenizers only (not the weights) and reports, one line each, naming the
config file, the config key and the path (exit status 1 when there is any):

* a local path (absolute, ``./``, ``../`` or ``~``) that does not exist:
  ``llm_conf.model_name_or_path``, ``llm_conf.tokenizer_name_or_path``,
  ``encoder_conf.model_name_or_path``, each ``init_param`` file;
* a model config or tokenizer that does not load (a hub id that cannot be reached, a directory
  without ``config.json``, ...), under the key that names it;
* ``llm_conf.pretrained`` (the default) with a local LLM directory that holds no weights
  (``*.safetensors`` / ``pytorch_model*.bin``);
* a tokenizer that does not match the LLM: more tokens (before ``llm_conf.special_tokens``)
  than the ``vocab_size`` of the model's config, so ids would index rows the checkpoint does
  not have (the tokenizer of another model);
* for the ``whisper_hf`` encoder: a checkpoint whose config is not a Whisper one, or an
  ``encoder_conf.layer`` beyond its ``encoder_layers``;
* the same for ``mms_hf`` (a wav2vec 2.0 config); ``encoder: dual``: each branch's conf;
* ``model: hf_audio``: ``model_conf.model_name_or_path`` not a Whisper / Qwen2-Audio one;
* for the ``data2vec2`` encoder: a folder that is not a converted TeleSpeech data2vec 2.0
  (``config.json`` + ``model.safetensors`` of ``espnet_sllm.bin.convert_data2vec2``), or an
  ``encoder_conf.layer`` beyond its blocks.
"""
import argparse
import glob
import logging
import os
import sys
from typing import List, Optional

import yaml

from espnet_sllm.config_files import missing_local


def check_llm(path: str, conf: dict) -> List[str]:
    """The problems of ``llm_conf`` of the config file ``path``."""
    from transformers import AutoConfig

    from espnet_sllm.llm.tokenizer import load_tokenizer

    llm_conf = conf.get("llm_conf") or {}
    name = llm_conf.get("model_name_or_path")
    if not name:
        return [f"{path}: llm_conf.model_name_or_path is missing"]
    key = "llm_conf.model_name_or_path"
    tok_name = llm_conf.get("tokenizer_name_or_path") or name
    tok_key = "llm_conf.tokenizer_name_or_path" if llm_conf.get("tokenizer_name_or_path") \
        else key
    trust = llm_conf.get("trust_remote_code", False)
    problems, config, n_tok = [], None, None
    if missing_local(name):
        problems.append(f"{path}: {key}: {name}: no such directory")
    else:
        try:
            config = AutoConfig.from_pretrained(name, trust_remote_code=trust)
        except Exception as e:  # any loading failure is reported, not raised
            problems.append(f"{path}: {key}={name!r} does not load: {e}")
        weights = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json")
        if llm_conf.get("pretrained", True) and os.path.isdir(name) and not any(
                glob.glob(os.path.join(name, w)) for w in weights):
            problems.append(f"{path}: {key}: {name} holds no weights (*.safetensors, "
                            f"pytorch_model*.bin) but llm_conf.pretrained is true; set "
                            f"pretrained: false to train from scratch")
    if tok_name != name and missing_local(tok_name):
        problems.append(f"{path}: {tok_key}: {tok_name}: no such directory")
    elif not (tok_name == name and missing_local(name)):
        try:
            _, n_tok = load_tokenizer(tok_name, llm_conf.get("special_tokens", ()), trust,
                                      return_base_size=True)
        except Exception as e:
            problems.append(f"{path}: {tok_key}={tok_name!r}: the tokenizer does not load: {e}")
    if config is not None and n_tok is not None:
        vocab = getattr(config.get_text_config(), "vocab_size", None)
        if vocab is not None and n_tok > vocab and tok_name != name:
            problems.append(
                f"{path}: {tok_key}={tok_name!r} does not match {key}={name!r}: the tokenizer "
                f"has {n_tok} tokens (before llm_conf.special_tokens) but the model's "
                f"vocab_size is {vocab}; give the tokenizer of that model"
            )
        elif vocab is not None and n_tok > vocab:
            problems.append(
                f"{path}: {key}={name!r}: its tokenizer has {n_tok} tokens (before "
                f"llm_conf.special_tokens) but its config.json gives vocab_size {vocab}: the "
                f"tokenizer and the model do not belong together"
            )
    if not problems:
        logging.info(f"{path}: LLM {name}: config and tokenizer load and match")
    return problems


def check_config(path: str) -> List[str]:
    """Returns a list of human-readable problems (empty: everything loads)."""
    with open(path, encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    if conf.get("model") == "hf_audio":  # one whole checkpoint, named by model_conf
        from espnet_sllm.hf_audio_model import checkpoint_problem
        problem = checkpoint_problem((conf.get("model_conf") or {}).get("model_name_or_path"))
        return [f"{path}: model_conf.model_name_or_path {problem}"] if problem else []
    problems = check_llm(path, conf)
    enc_conf, encoder = conf.get("encoder_conf") or {}, conf.get("encoder", "whisper_hf")
    branches = [(encoder, enc_conf, "encoder_conf")] if encoder != "dual" else [
        (enc_conf.get(b, d), enc_conf.get(f"{b}_conf") or {}, f"encoder_conf.{b}_conf")
        for b, d in (("whisper", "whisper_hf"), ("mms", "mms_hf")) if enc_conf.get(b, d)]
    for name, branch_conf, prefix in branches:  # a dual encoder: each branch on its own
        problems += check_encoder(path, name, branch_conf, prefix)
    init = conf.get("init_param") or []
    for item in [init] if isinstance(init, str) else init:
        file = str(item).split(":", 1)[0]
        if not os.path.isfile(os.path.expanduser(file)):
            problems.append(f"{path}: init_param: {file}: no such file")
    return problems


def check_encoder(path: str, encoder: str, enc_conf: dict, prefix: str) -> List[str]:
    """Problems of one encoder's checkpoint (``prefix``: the config key of its conf)."""
    from transformers import AutoConfig

    problems, enc_name = [], enc_conf.get("model_name_or_path")
    key = f"{prefix}.model_name_or_path"
    if enc_name and missing_local(enc_name):
        problems.append(f"{path}: {key}: {enc_name}: no such directory")
    elif enc_name and encoder == "data2vec2":  # our own format, not transformers'
        from espnet_sllm.encoders.data2vec2 import check_converted

        problem = check_converted(enc_name, enc_conf.get("layer", -1))
        if problem:
            problems.append(f"{path}: {key}={enc_name!r} does not load: {problem}")
    elif enc_name:
        config = None
        try:
            config = AutoConfig.from_pretrained(enc_name)
        except Exception as e:
            problems.append(f"{path}: {key}={enc_name!r} does not load: {e}")
        want = {"whisper_hf": "whisper", "mms_hf": "wav2vec2"}.get(encoder)
        if config is not None and want:
            layers, layer = getattr(config, "num_hidden_layers", None), enc_conf.get("layer", -1)
            if getattr(config, "model_type", None) != want:
                problems.append(f"{path}: {key}={enc_name!r} is a {config.model_type!r} "
                                f"checkpoint, but encoder {encoder} needs a {want!r} one")
            elif layer != -1 and layers is not None and not 1 <= layer <= layers:
                problems.append(f"{path}: {prefix}.layer={layer} does not match {key}="
                                f"{enc_name!r}: its encoder_layers is {layers} (give -1 or "
                                f"1..{layers})")
    return problems


def main(cmd: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, action="append")
    args = parser.parse_args(cmd)
    logging.basicConfig(level="INFO", format="%(asctime)s (%(module)s:%(lineno)d) %(message)s")
    problems = []
    for c in args.config:
        if not os.path.isfile(c):
            problems.append(f"{c}: no such config file")
        else:
            problems += check_config(c)
    if problems:
        sys.exit("check_pretrained: error: " + "\ncheck_pretrained: error: ".join(problems))


if __name__ == "__main__":
    main()
