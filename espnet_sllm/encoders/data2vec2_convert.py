"""fairseq TeleSpeech data2vec 2.0 checkpoint -> ``config.json`` + ``model.safetensors`` for
`espnet_sllm.encoders.data2vec2.Data2Vec2Encoder` (CLI: ``python -m espnet_sllm.bin.convert_data2vec2``).

Two layouts of the same network are read (state-dict keys of fairseq's ``data2vec_multi`` model,
``examples/data2vec/models/data2vec2.py`` and ``modalities/{base,audio,modules}.py``, with
TeleSpeech's MFCC ``local_encoder``, ``data2vec_dialect/models/modalities/audio.py``):

* pretrained (``large.pt``): ``modality_encoders.AUDIO.{local_encoder, project_features,
  relative_positional_encoder, context_encoder, alibi_scale}.*`` and ``blocks.*``; the EMA teacher
  (``_ema``), the modality decoder (``modality_encoders.AUDIO.decoder.*``), ``shared_decoder.*``,
  ``recon_proj.*`` and other modalities are training-only and dropped; the architecture is
  ``cfg['model']``.
* CTC fine-tuned (fairseq ``wav2vec_ctc``, e.g. ``finetune_large_kespeech.pt``): the same keys
  under ``w2v_encoder.w2v_model.``; the CTC output layer ``w2v_encoder.proj.*`` is dropped; the
  architecture is ``cfg['model']['w2v_args']['model']``.

Key mapping (fairseq -> ours; the blocks of the context encoder come first):

    local_encoder.conv_layers.{i}.0.weight          feature_extractor.{i}.conv.weight
    local_encoder.conv_layers.{i}.2.1.{weight,bias} feature_extractor.{i}.norm.*
    project_features.1.* / project_features.2.*     feature_projection.norm.* / .linear.*
    relative_positional_encoder.{i}.0.*             pos_conv.{i - 1}.*
    context_encoder.norm.*                          prenet_norm.*
    context_encoder.blocks.{i}.*                    blocks.{i}.*
    blocks.{i}.* (shared)                           blocks.{prenet_depth + i}.*
    alibi_scale                                     alibi_scale (5-d, as fairseq upgrades it)

The file is read with ``torch.load(weights_only=True)``: fairseq stores its config as plain
containers (``OmegaConf.to_container``), so no code has to be unpickled. A few harmless globals
(numpy scalars and dtypes of logged metrics, ``argparse.Namespace`` of old checkpoints) are
allowed. A file that needs anything else is refused with the list of what it needs;
``unsafe_load=True`` (``--unsafe_load true``) then reads it with ``weights_only=False``, which
can run code from the file: only for a file you trust.
"""
import argparse
import ast
import logging
import os
import pickle
import re
from typing import Any, Callable, Dict, List, Tuple

import torch

from espnet_sllm.encoders.data2vec2 import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    Data2Vec2Config,
    Data2Vec2Model,
    weight_problems,
)

logger = logging.getLogger(__name__)

PRETRAIN, FINETUNE = "pretrain", "finetune"
FINETUNE_PREFIX = "w2v_encoder.w2v_model."
AUDIO = "modality_encoders.AUDIO."
#: training-only parts of a data2vec 2.0 checkpoint (after the fine-tune prefix is removed)
DROPPED = (
    re.compile(r"^_ema$"),
    re.compile(r"^_ema\."),
    re.compile(r"^modality_encoders\.AUDIO\.decoder\."),
    re.compile(r"^modality_encoders\.(?!AUDIO\.)[A-Z]+\."),
    re.compile(r"^shared_decoder\."),
    re.compile(r"^recon_proj\."),
)
FINETUNE_DROPPED = re.compile(r"^w2v_encoder\.proj\.")
#: the groups a data2vec 2.0 state dict must have (for the "not data2vec 2.0" message)
REQUIRED_GROUPS = ("feature_extractor.", "feature_projection.", "pos_conv.", "prenet_norm.",
                   "blocks.")


class Data2Vec2ConvertError(ValueError):
    """A checkpoint that is not a (supported) TeleSpeech data2vec 2.0 checkpoint."""


# ------------------------------------------------------------------------------- reading the file
def _safe_globals() -> List[Any]:
    import numpy as np

    multiarray = getattr(getattr(np, "_core", None), "multiarray", None) or np.core.multiarray
    dtypes = [type(np.dtype(t)) for t in ("float64", "float32", "float16", "int64", "int32",
                                          "bool")]
    # numpy 1.x pickles its scalars as numpy.core.multiarray.scalar, numpy 2 as numpy._core...
    scalars = [(multiarray.scalar, f"{m}.multiarray.scalar") for m in ("numpy.core", "numpy._core")]
    return [argparse.Namespace, *scalars, np.dtype, *dtypes]


def load_fairseq_checkpoint(path: str, unsafe_load: bool = False,
                            log: Callable[[str], None] = logger.info) -> Dict[str, Any]:
    """The dict a fairseq checkpoint holds (``cfg``, ``model``, ...), read on CPU."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    if unsafe_load:
        log(f"WARNING: reading {path} with torch.load(weights_only=False) (--unsafe_load): "
            f"unpickling can run code from the file")
        return torch.load(path, map_location="cpu", weights_only=False)
    with torch.serialization.safe_globals(_safe_globals()):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            try:
                needed = torch.serialization.get_unsafe_globals_in_checkpoint(path)
            except Exception:  # an old (non-zip) file: the error message names the global
                needed = [str(e).splitlines()[0]]
            raise Data2Vec2ConvertError(
                f"{path}: torch.load(weights_only=True) refuses the pickled objects {needed}; "
                f"if you trust the file, convert with --unsafe_load true") from None


# ----------------------------------------------------------------------------- the architecture
def parse_feature_encoder_spec(spec: Any) -> List[List[int]]:
    """fairseq's ``feature_encoder_spec`` (a Python expression such as ``"[(512, 3, 2)] * 2"``, or a
    list) -> [[dim, kernel, stride], ...], evaluated without ``eval`` (lists, tuples, ints, + and *)."""

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [value(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            a, b = value(node.left), value(node.right)
            return a + b if isinstance(node.op, ast.Add) else a * b
        raise ValueError(f"unsupported element {ast.dump(node)}")

    try:
        layers = value(ast.parse(spec, mode="eval").body) if isinstance(spec, str) else spec
        out = [[int(d), int(k), int(s)] for d, k, s in layers]
    except (ValueError, TypeError, SyntaxError) as e:
        raise Data2Vec2ConvertError(f"feature_encoder_spec {spec!r} is not a list of "
                                    f"(dim, kernel, stride): {e}") from None
    if not out:
        raise Data2Vec2ConvertError(f"feature_encoder_spec {spec!r} has no layer")
    return out


def _get(cfg: Dict[str, Any], key: str, default: Any) -> Any:
    value = cfg.get(key, default)
    return default if value is None else value


def config_from_cfg(model_cfg: Dict[str, Any], task_cfg: Dict[str, Any],
                    state: Dict[str, torch.Tensor], source: Dict[str, Any]) -> Data2Vec2Config:
    """`Data2Vec2Config` of a ``data2vec_multi`` model config (``cfg['model']``; fairseq's
    dataclass defaults where a key is absent) and the mapped ``state`` (shapes the config does not
    give: the ALiBi scale, the input width of a config without ``input_feature_ndim``)."""
    audio = dict(_get(_get(model_cfg, "modalities", {}), "audio", {}))
    unsupported = []
    for key, where, ok, default in (
            ("layer_norm_first", model_cfg, lambda v: not v, False),
            ("extractor_mode", audio, lambda v: v == "layer_norm", "layer_norm"),
            ("conv_pos_pre_ln", audio, lambda v: not v, False),
            ("num_extra_tokens", audio, lambda v: v == 0, 0),
            ("learned_alibi", audio, lambda v: not v, False)):
        if not ok(_get(where, key, default)):
            unsupported.append(f"{key}={where[key]!r}")
    if unsupported:
        raise Data2Vec2ConvertError(
            f"this data2vec 2.0 port supports TeleSpeech's architecture (post-LN blocks, layer_norm "
            f"feature extractor, no extra tokens, no learned ALiBi bias); the checkpoint has "
            f"{', '.join(unsupported)}")
    spec = parse_feature_encoder_spec(
        _get(audio, "feature_encoder_spec", "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] * 2"))
    first_conv = state.get("feature_extractor.0.conv.weight")
    in_dim = audio.get("input_feature_ndim")
    if first_conv is not None and in_dim is None:
        in_dim = int(first_conv.shape[1])
    if in_dim is None or int(in_dim) == 1:
        raise Data2Vec2ConvertError(
            f"the checkpoint's feature extractor reads the waveform (feature_encoder_spec "
            f"{spec}, input width {in_dim}): fairseq's original audio data2vec 2.0; this port "
            f"reads TeleSpeech's MFCC-input variant only")
    depth = int(_get(model_cfg, "depth", 8))
    conv_pos_depth = int(_get(audio, "conv_pos_depth", 5))
    use_alibi = bool(_get(audio, "use_alibi_encoder", False))
    alibi = state.get("alibi_scale")
    if use_alibi != (alibi is not None):
        raise Data2Vec2ConvertError(
            f"cfg use_alibi_encoder={use_alibi} but the state dict "
            f"{'has' if alibi is not None else 'has no'} modality_encoders.AUDIO.alibi_scale")
    return Data2Vec2Config(
        input_feature_ndim=int(in_dim),
        feature_encoder_spec=spec,
        embed_dim=int(_get(model_cfg, "embed_dim", 768)),
        num_heads=int(_get(model_cfg, "num_heads", 12)),
        mlp_ratio=float(_get(model_cfg, "mlp_ratio", 4.0)),
        prenet_depth=int(_get(audio, "prenet_depth", 4)),
        depth=depth,
        conv_pos_depth=conv_pos_depth,
        conv_pos_kernel=max(3, int(_get(audio, "conv_pos_width", 95)) // conv_pos_depth),
        conv_pos_groups=int(_get(audio, "conv_pos_groups", 16)),
        norm_eps=float(_get(model_cfg, "norm_eps", 1e-6)),
        norm_affine=bool(_get(model_cfg, "norm_affine", True)),
        alibi_scale_shape=list(alibi.shape) if alibi is not None else None,
        encoder_dropout=float(_get(model_cfg, "encoder_dropout", 0.1)),
        attention_dropout=float(_get(model_cfg, "attention_dropout", 0.1)),
        activation_dropout=float(_get(model_cfg, "activation_dropout", 0.0)),
        post_mlp_drop=float(_get(model_cfg, "post_mlp_drop", 0.1)),
        prenet_dropout=float(_get(audio, "prenet_dropout", 0.0)),
        dropout_input=float(_get(model_cfg, "dropout_input", 0.0)),
        sample_rate=int(_get(task_cfg, "sample_rate", 16000)),
        cmvn=bool(_get(task_cfg, "normalize", True)),
        source=source,
    )


# ------------------------------------------------------------------------------- the state dict
_RULES: List[Tuple[re.Pattern, Callable[[re.Match, int], str]]] = [
    (re.compile(r"^modality_encoders\.AUDIO\.local_encoder\.conv_layers\.(\d+)\.0\.weight$"),
     lambda m, p: f"feature_extractor.{m[1]}.conv.weight"),
    (re.compile(r"^modality_encoders\.AUDIO\.local_encoder\.conv_layers\.(\d+)\.2\.1\.(weight|bias)$"),
     lambda m, p: f"feature_extractor.{m[1]}.norm.{m[2]}"),
    (re.compile(r"^modality_encoders\.AUDIO\.project_features\.1\.(weight|bias)$"),
     lambda m, p: f"feature_projection.norm.{m[1]}"),
    (re.compile(r"^modality_encoders\.AUDIO\.project_features\.2\.(weight|bias)$"),
     lambda m, p: f"feature_projection.linear.{m[1]}"),
    (re.compile(r"^modality_encoders\.AUDIO\.relative_positional_encoder\.(\d+)\.0\.(weight|bias)$"),
     lambda m, p: f"pos_conv.{int(m[1]) - 1}.{m[2]}"),
    (re.compile(r"^modality_encoders\.AUDIO\.context_encoder\.norm\.(weight|bias)$"),
     lambda m, p: f"prenet_norm.{m[1]}"),
    (re.compile(r"^modality_encoders\.AUDIO\.context_encoder\.blocks\.(\d+)\.(.+)$"),
     lambda m, p: f"blocks.{m[1]}.{m[2]}"),
    (re.compile(r"^blocks\.(\d+)\.(.+)$"), lambda m, p: f"blocks.{p + int(m[1])}.{m[2]}"),
    (re.compile(r"^modality_encoders\.AUDIO\.alibi_scale$"), lambda m, p: "alibi_scale"),
]


def map_state_dict(state: Dict[str, Any], layout: str, prenet_depth: int
                   ) -> Tuple[Dict[str, torch.Tensor], List[str], List[str]]:
    """fairseq state dict -> (our state dict, dropped keys, unmapped keys)."""
    mapped, dropped, unmapped = {}, [], []
    for key, value in state.items():
        name = key
        if layout == FINETUNE:
            if FINETUNE_DROPPED.match(key):
                dropped.append(key)
                continue
            if not key.startswith(FINETUNE_PREFIX):
                unmapped.append(key)
                continue
            name = key[len(FINETUNE_PREFIX):]
        if any(p.match(name) for p in DROPPED):
            dropped.append(key)
            continue
        for pattern, rename in _RULES:
            m = pattern.match(name)
            if m:
                if not torch.is_tensor(value):
                    unmapped.append(key)
                    break
                target = rename(m, prenet_depth)
                if target == "alibi_scale" and value.dim() == 4:
                    value = value.unsqueeze(0)  # fairseq's upgrade_state_dict_named
                mapped[target] = value
                break
        else:
            unmapped.append(key)
    return mapped, dropped, unmapped


def _group(key: str) -> str:
    """The part of the model a dropped key belongs to (for the log and config.json)."""
    name = key[len(FINETUNE_PREFIX):] if key.startswith(FINETUNE_PREFIX) else key
    for part in ("w2v_encoder.proj", "modality_encoders.AUDIO.decoder", "_ema", "shared_decoder",
                 "recon_proj"):
        if name.startswith(part):
            return part
    return ".".join(name.split(".")[:2])


def _describe(keys: List[str], limit: int = 10) -> str:
    more = f" ... (+{len(keys) - limit})" if len(keys) > limit else ""
    return f"{sorted(keys)[:limit]}{more}"


def convert_data2vec2(fairseq_ckpt: str, out_dir: str, unsafe_load: bool = False,
                      log: Callable[[str], None] = logger.info) -> Data2Vec2Config:
    """Write ``out_dir/config.json`` and ``out_dir/model.safetensors`` from a fairseq TeleSpeech
    data2vec 2.0 checkpoint of either layout; returns the config. Data2Vec2ConvertError (a
    ValueError) names what was found when the file is not such a checkpoint."""
    from safetensors.torch import save_file

    ckpt = load_fairseq_checkpoint(fairseq_ckpt, unsafe_load, log)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        top = sorted(ckpt)[:10] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise Data2Vec2ConvertError(f"{fairseq_ckpt}: not a fairseq checkpoint (no 'model' state "
                                    f"dict; top level: {top})")
    state, cfg = ckpt["model"], ckpt.get("cfg")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), dict):
        legacy = getattr(ckpt.get("args"), "arch", None)
        raise Data2Vec2ConvertError(
            f"{fairseq_ckpt}: no cfg['model'] in the checkpoint"
            + (f" (a legacy fairseq checkpoint, args.arch={legacy!r})" if legacy else ""))
    layout = FINETUNE if any(k.startswith(FINETUNE_PREFIX) for k in state) else PRETRAIN
    model_cfg, task_cfg = cfg["model"], cfg.get("task") or {}
    found = f"cfg.model._name={model_cfg.get('_name')!r}"
    if layout == FINETUNE:
        w2v_args = model_cfg.get("w2v_args")
        if not isinstance(w2v_args, dict) or not isinstance(w2v_args.get("model"), dict):
            raise Data2Vec2ConvertError(
                f"{fairseq_ckpt}: a fine-tuned checkpoint ({found}, keys {FINETUNE_PREFIX}*) "
                f"without cfg.model.w2v_args.model: the pretrained architecture is unknown")
        model_cfg, task_cfg = w2v_args["model"], task_cfg or w2v_args.get("task") or {}
        found += f", w2v_args.model._name={model_cfg.get('_name')!r}"
    audio = (model_cfg.get("modalities") or {}).get("audio") or {}
    prenet_depth = int(_get(audio, "prenet_depth", 4))
    mapped, dropped, unmapped = map_state_dict(state, layout, prenet_depth)
    missing = [g + "*" for g in REQUIRED_GROUPS if not any(k.startswith(g) for k in mapped)]
    if "data2vec_multi" not in str(model_cfg.get("_name")) or missing or unmapped:
        raise Data2Vec2ConvertError(
            f"{fairseq_ckpt}: not a TeleSpeech data2vec 2.0 (fairseq data2vec_multi) checkpoint: "
            f"found {found}, layout {layout}; missing keys {missing or 'none'}; unexpected keys "
            f"({len(unmapped)}): {_describe(unmapped) if unmapped else 'none'}")
    source = {"fairseq_ckpt": os.path.abspath(fairseq_ckpt), "layout": layout,
              "model_name": model_cfg.get("_name"),
              "dropped": sorted({_group(k) for k in dropped})}
    config = config_from_cfg(model_cfg, task_cfg, mapped, source)
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in Data2Vec2Model(config).state_dict().items()}
    problems = weight_problems(expected, {k: tuple(v.shape) for k, v in mapped.items()})
    if problems:
        raise Data2Vec2ConvertError(f"{fairseq_ckpt}: the weights do not fit the architecture of "
                                    f"its cfg ({found}): {problems}")
    os.makedirs(out_dir, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in mapped.items()}
    save_file(tensors, os.path.join(out_dir, WEIGHTS_NAME), metadata={"format": "pt"})
    config.save(os.path.join(out_dir, CONFIG_NAME))
    n_params = sum(v.numel() for v in tensors.values())
    log(f"{fairseq_ckpt} ({layout}): {config.prenet_depth} + {config.depth} blocks, "
        f"dim {config.embed_dim}, {n_params / 1e6:.1f}M parameters -> {out_dir}; dropped "
        f"{len(dropped)} training-only entries ({', '.join(source['dropped']) or 'none'})")
    return config
