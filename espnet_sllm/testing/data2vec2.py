"""Tiny random TeleSpeech data2vec 2.0 checkpoints, in fairseq's own file layout, for tests and debug runs.

`make_tiny_fairseq_data2vec2` writes what fairseq's ``trainer.save_checkpoint`` writes for the
TeleSpeech model (``{'cfg': {'model': ..., 'task': ...}, 'model': state_dict, ...}``, the config as
plain containers as ``OmegaConf.to_container`` leaves it), without fairseq: the pretrained layout
(``large.pt``: ``modality_encoders.AUDIO.*``, ``blocks.*``, the EMA teacher ``_ema`` and the
modality decoder) or the CTC fine-tuned one (``w2v_encoder.w2v_model.*`` + ``w2v_encoder.proj``,
the architecture under ``cfg['model']['w2v_args']``). The key names and shapes follow fairseq's
modules (``examples/data2vec/models/{data2vec2,modalities/*}.py``, TeleSpeech's
``data2vec_dialect/models/{wav2vec2,modalities/audio}.py``), written out here independently of the
converter's mapping. `make_tiny_data2vec2` converts one through the real converter, so code under
test loads it through the path it uses for ``large.pt``.
"""
import math
import os
import tempfile
from typing import Any, Dict, Optional

import numpy as np
import torch

LAYOUTS = ("pretrain", "finetune")
ALIBI = (None, "per_head", "per_layer")


def _tensor(gen: torch.Generator, *shape: int, std: float = 1.0, mean: float = 0.0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen) * std + mean


def _block(prefix: str, dim: int, ffn: int, gen: torch.Generator) -> Dict[str, torch.Tensor]:
    """One ``AltBlock`` (timm ``Mlp``), LayerNorm weights away from 1 so a mix-up shows."""
    out = {}
    for norm in ("norm1", "norm2"):
        out[f"{prefix}{norm}.weight"] = _tensor(gen, dim, std=0.1, mean=1.0)
        out[f"{prefix}{norm}.bias"] = _tensor(gen, dim, std=0.1)
    for name, o, i in (("attn.qkv", 3 * dim, dim), ("attn.proj", dim, dim),
                       ("mlp.fc1", ffn, dim), ("mlp.fc2", dim, ffn)):
        out[f"{prefix}{name}.weight"] = _tensor(gen, o, i, std=1 / math.sqrt(i))
        out[f"{prefix}{name}.bias"] = _tensor(gen, o, std=0.05)
    return out


def tiny_fairseq_cfg(embed_dim: int = 32, num_heads: int = 4, depth: int = 2,
                     prenet_depth: int = 2, conv_dim: int = 16, conv_layers: int = 2,
                     conv_pos_depth: int = 5, conv_pos_width: int = 95, conv_pos_groups: int = 4,
                     input_feature_ndim: int = 40, alibi: Optional[str] = "per_head",
                     norm_eps: float = 1e-5) -> Dict[str, Any]:
    """``cfg['model']`` of a tiny TeleSpeech data2vec 2.0 (TeleSpeech large: 1024 / 16 heads /
    16 + 8 blocks / conv_dim 512, the rest as here)."""
    if alibi not in ALIBI:
        raise ValueError(f"alibi must be one of {ALIBI}, got {alibi!r}")
    return {
        "_name": "data2vec_multi", "loss_beta": 0.0, "loss_scale": None,
        "input_feature_ndim": input_feature_ndim, "depth": depth, "start_drop_path_rate": 0.0,
        "end_drop_path_rate": 0.0, "num_heads": num_heads, "norm_eps": norm_eps,
        "norm_affine": True, "encoder_dropout": 0.1, "post_mlp_drop": 0.1,
        "attention_dropout": 0.1, "activation_dropout": 0.0, "dropout_input": 0.0,
        "layerdrop": 0.0, "embed_dim": embed_dim, "mlp_ratio": 4.0, "layer_norm_first": False,
        "average_top_k_layers": depth, "end_of_block_targets": False, "clone_batch": 1,
        "ema_decay": 0.9997, "ema_end_decay": 1.0, "ema_encoder_only": False,
        "supported_modality": "AUDIO", "shared_decoder": None, "skip_ema": False,
        "modalities": {
            "audio": {
                "type": "AUDIO", "prenet_depth": prenet_depth, "prenet_layerdrop": 0.0,
                "prenet_dropout": 0.1, "num_extra_tokens": 0, "mask_prob": 0.5,
                "use_alibi_encoder": alibi is not None, "alibi_scale": 1.0,
                "learned_alibi": False, "learned_alibi_scale": alibi is not None,
                "learned_alibi_scale_per_head": alibi is not None,
                "learned_alibi_scale_per_layer": alibi == "per_layer",
                "num_alibi_heads": num_heads, "model_depth": depth,
                "extractor_mode": "layer_norm",
                "feature_encoder_spec": f"[({conv_dim}, 3, 2)] * {conv_layers}",
                "input_feature_ndim": input_feature_ndim, "conv_pos_width": conv_pos_width,
                "conv_pos_groups": conv_pos_groups, "conv_pos_depth": conv_pos_depth,
                "conv_pos_pre_ln": False,
                "decoder": {"decoder_dim": 16, "decoder_groups": 4, "decoder_kernel": 7,
                            "decoder_layers": 2, "input_dropout": 0.1},
            },
            "image": {"type": "IMAGE", "prenet_depth": 2},
            "text": {"type": "TEXT", "prenet_depth": 2},
        },
    }


def tiny_fairseq_state_dict(model_cfg: Dict[str, Any], seed: int = 0) -> Dict[str, Any]:
    """The pretrained layout's ``model`` entry for ``model_cfg`` (`tiny_fairseq_cfg`), with the
    training-only ``_ema`` (a dict of tensors, as fairseq stores it) and modality decoder."""
    gen = torch.Generator().manual_seed(seed)
    audio = model_cfg["modalities"]["audio"]
    dim, heads = model_cfg["embed_dim"], model_cfg["num_heads"]
    ffn = int(dim * model_cfg["mlp_ratio"])
    conv_dim = int(audio["feature_encoder_spec"].split("(")[1].split(",")[0])
    n_conv = int(audio["feature_encoder_spec"].rsplit("*", 1)[1])
    a = "modality_encoders.AUDIO."
    sd: Dict[str, Any] = {}
    in_dim = audio["input_feature_ndim"]
    for i in range(n_conv):  # Conv1d(bias=False), Dropout, Sequential(Transpose, LN, Transpose)
        sd[f"{a}local_encoder.conv_layers.{i}.0.weight"] = _tensor(
            gen, conv_dim, in_dim, 3, std=math.sqrt(2 / (3 * in_dim)))
        sd[f"{a}local_encoder.conv_layers.{i}.2.1.weight"] = _tensor(gen, conv_dim, std=0.1, mean=1)
        sd[f"{a}local_encoder.conv_layers.{i}.2.1.bias"] = _tensor(gen, conv_dim, std=0.1)
        in_dim = conv_dim
    sd[f"{a}project_features.1.weight"] = _tensor(gen, conv_dim, std=0.1, mean=1)
    sd[f"{a}project_features.1.bias"] = _tensor(gen, conv_dim, std=0.1)
    sd[f"{a}project_features.2.weight"] = _tensor(gen, dim, conv_dim, std=1 / math.sqrt(conv_dim))
    sd[f"{a}project_features.2.bias"] = _tensor(gen, dim, std=0.05)
    k = max(3, audio["conv_pos_width"] // audio["conv_pos_depth"])
    groups = audio["conv_pos_groups"]
    for i in range(1, audio["conv_pos_depth"] + 1):  # index 0 is TransposeLast
        sd[f"{a}relative_positional_encoder.{i}.0.weight"] = _tensor(
            gen, dim, dim // groups, k, std=math.sqrt(4 / (k * dim)))
        sd[f"{a}relative_positional_encoder.{i}.0.bias"] = _tensor(gen, dim, std=0.05)
    sd[f"{a}context_encoder.norm.weight"] = _tensor(gen, dim, std=0.1, mean=1)
    sd[f"{a}context_encoder.norm.bias"] = _tensor(gen, dim, std=0.1)
    for i in range(audio["prenet_depth"]):
        sd.update(_block(f"{a}context_encoder.blocks.{i}.", dim, ffn, gen))
    if audio["use_alibi_encoder"]:
        layers = audio["prenet_depth"] + model_cfg["depth"] \
            if audio["learned_alibi_scale_per_layer"] else 1
        h = heads if audio["learned_alibi_scale_per_head"] else 1
        sd[f"{a}alibi_scale"] = torch.rand(layers, 1, h, 1, 1, generator=gen) + 0.5
    dec = audio["decoder"]
    for i in range(dec["decoder_layers"]):
        cin = dim if i == 0 else dec["decoder_dim"]
        sd[f"{a}decoder.blocks.{i}.0.weight"] = _tensor(
            gen, dec["decoder_dim"], cin // dec["decoder_groups"], dec["decoder_kernel"], std=0.1)
        sd[f"{a}decoder.blocks.{i}.0.bias"] = _tensor(gen, dec["decoder_dim"], std=0.1)
    sd[f"{a}decoder.proj.weight"] = _tensor(gen, dim, dec["decoder_dim"], std=0.1)
    sd[f"{a}decoder.proj.bias"] = _tensor(gen, dim, std=0.1)
    for i in range(model_cfg["depth"]):
        sd.update(_block(f"blocks.{i}.", dim, ffn, gen))
    # EMA teacher (ema_encoder_only false: the whole student but the decoder), fp32 params
    sd["_ema"] = {key: value + 0.01 for key, value in sd.items()
                  if torch.is_tensor(value) and ".decoder." not in key}
    return sd


def make_tiny_fairseq_data2vec2(path: str, layout: str = "pretrain", seed: int = 0,
                                vocab_size: int = 12, **cfg_kwargs: Any) -> str:
    """Write a tiny random TeleSpeech data2vec 2.0 checkpoint of ``layout`` ("pretrain" | "finetune")
    to ``path`` with torch.save, as fairseq saves it; ``cfg_kwargs`` go to `tiny_fairseq_cfg`
    (embed_dim=32, num_heads=4, depth=2, prenet_depth=2, conv_dim=16, alibi="per_head", ...).
    Returns ``path``."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    model_cfg = tiny_fairseq_cfg(**cfg_kwargs)
    state = tiny_fairseq_state_dict(model_cfg, seed)
    task = {"_name": "spec_pretraining", "data": "/data/pretrain", "sample_rate": 16000,
            "normalize": True, "enable_padding": False, "max_sample_size": 4000}
    cfg = {"_name": None, "common": {"fp16": True, "seed": 1}, "model": model_cfg, "task": task,
           "criterion": {"_name": "model"}, "optimization": {"max_update": 100, "lr": [0.0004]}}
    if layout == "finetune":
        gen = torch.Generator().manual_seed(seed + 1)
        dim = model_cfg["embed_dim"]
        state = {f"w2v_encoder.w2v_model.{k}": v for k, v in state.items()
                 if k != "_ema" and ".decoder." not in k}
        state["w2v_encoder.proj.weight"] = _tensor(gen, vocab_size, dim, std=0.1)
        state["w2v_encoder.proj.bias"] = _tensor(gen, vocab_size, std=0.1)
        ft_task = {"_name": "spec_finetuning", "data": "/data/kespeech", "normalize": True,
                   "labels": "ltr", "sample_rate": 16000}
        cfg = {**cfg, "task": ft_task, "criterion": {"_name": "ctc", "zero_infinity": True},
               "model": {"_name": "wav2vec_ctc", "w2v_path": "/models/large.pt",
                         "apply_mask": True, "mask_prob": 0.5, "layerdrop": 0.1,
                         "activation_dropout": 0.1, "feature_grad_mult": 0.0, "normalize": True,
                         "w2v_args": {"model": model_cfg, "task": task}}}
    ckpt = {
        "args": None, "cfg": cfg, "model": state,
        "criterion": None,
        "optimizer_history": [{"criterion_name": "ModelCriterion",
                               "optimizer_name": "CompositeOptimizer",
                               "lr_scheduler_state": {"best": None}, "num_updates": 100}],
        "task_state": {},
        # fairseq's logged metrics hold numpy scalars: the safe loader must accept them
        "extra_state": {"epoch": 1, "previous_best": np.float64(3.25),
                        "train_iterator": {"epoch": 1, "iterations_in_epoch": 100,
                                           "shuffle": True}},
        "last_optimizer_state": None,
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save(ckpt, path)
    return path


def make_tiny_data2vec2(out_dir: str, layout: str = "finetune", seed: int = 0,
                        **cfg_kwargs: Any) -> str:
    """A tiny random TeleSpeech data2vec 2.0 converted to ``out_dir`` (config.json +
    model.safetensors) by the real converter; returns ``out_dir`` (``encoder_conf.model_name_or_path``)."""
    from espnet_sllm.encoders.data2vec2_convert import convert_data2vec2

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = make_tiny_fairseq_data2vec2(os.path.join(tmp, f"{layout}.pt"), layout, seed,
                                           **cfg_kwargs)
        convert_data2vec2(ckpt, out_dir, log=lambda msg: None)
    return out_dir
