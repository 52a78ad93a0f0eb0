"""TeleSpeech data2vec 2.0 speech encoder (pure torch, no fairseq) behind ESPnet's ``AbsEncoder``.

TeleSpeech-ASR1.0 (github.com/Tele-AI/TeleSpeech-ASR, ``large.pt`` / ``base.pt``) is fairseq's
data2vec 2.0 (``data2vec_multi``) whose waveform CNN is replaced by two Conv1d over Kaldi MFCCs.
This module re-implements its inference path from the architecture of the checkpoint, read from a
directory written by ``python -m espnet_sllm.bin.convert_data2vec2`` (``config.json`` +
``model.safetensors``):

    xs_pad (B, L) float 16 kHz waveform, ilens (B,) long
      -> per utterance, on its valid samples only: Kaldi MFCC (torchaudio.compliance.kaldi.mfcc on
         the waveform scaled to the int16 range, as Kaldi reads it), then CMVN over its own frames
         (x - mean) / (std + 1e-5), std unbiased                         (n, 40)  100 Hz
      -> feature extractor: per spec layer Conv1d (no bias, no padding) -> LayerNorm (fp32) -> GELU
         TeleSpeech: [(512, 3, 2)] * 2                                      (T, 512)  25 Hz
      -> LayerNorm -> Linear 512 -> D                                        (T, D)
      -> x + positional convs (conv_pos_depth x [Conv1d(D, D, k, groups, padding k // 2)
         -> LayerNorm without affine -> GELU]; k = max(3, conv_pos_width // conv_pos_depth))
      -> LayerNorm -> prenet_depth modality blocks -> depth shared blocks   (T, D)
         post-LN ``AltBlock``: x = norm1(x + attn(x)); x = norm2(x + mlp(x)); attention scores
         get the ALiBi bias -slope_h * |i - j| times the learned (clamped >= 0) alibi_scale
      -> ys (B, T, D) float32, olens (B,) long, None

Lengths (MFCC frame_length 25 ms = 400 samples, frame_shift 10 ms = 160 samples):

    MFCC frames  n = (samples + 80) // 160            (snip_edges false, the default here)
                 n = 1 + (samples - 400) // 160       (snip_edges true, Kaldi's own default)
    per conv     t -> (t - kernel) // stride + 1      (TeleSpeech: two convs, kernel 3, stride 2)
    so           T = ((n - 3) // 2 + 1 - 3) // 2 + 1  (10 s -> n = 1000 -> T = 249)

An utterance needs at least the MFCC frames for which every conv has one output (7 here, 1040
samples with snip_edges false); fewer is an error.

Batch invariance: the MFCC and CMVN see each utterance's own samples, every conv sees zeros
beyond each utterance's length (as alone: the feature convs have no padding, the positional convs
pad with zeros), attention never attends to padded keys and the ALiBi bias depends on |i - j| only,
so an utterance gives the same frames in any batch as alone, to float rounding.
"""
import dataclasses
import json
import logging
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
import torchaudio
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from torch import nn

from espnet_sllm.torch_utils import mark_pretrained, parse_dtype

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: ``config.json``'s ``format``: what wrote it (the converter), so another model's config.json is
#: recognised as such.
CONFIG_FORMAT = "espnet_sllm.data2vec2"
CONFIG_VERSION = 1

#: MFCC options (``torchaudio.compliance.kaldi.mfcc`` keyword arguments) of the public TeleSpeech
#: ports (lovemefan/telespeech-asr-python: kaldifeat; sherpa-onnx: kaldi-native-fbank) and of
#: Kaldi's ``mfcc_hires.conf`` the release names: 40 cepstra from 40 mel bins between 40 Hz and
#: Nyquist - 200 Hz, no C0 replacement by energy. ``snip_edges`` false and no dither as the issue
#: chose (Kaldi's own extraction had snip_edges true and dither 1.0; see the README notes).
DEFAULT_MFCC = {
    "num_ceps": 40,
    "num_mel_bins": 40,
    "low_freq": 40.0,
    "high_freq": -200.0,
    "snip_edges": False,
    "dither": 0.0,
    "use_energy": False,
    "sample_frequency": 16000.0,
}
#: Our extra ``mfcc_conf`` key: the waveform is multiplied by it before the MFCC. Kaldi reads 16-bit
#: samples as integers, and both ports scale float audio by 32768 to match; after per-utterance CMVN
#: the scale only matters where the mel energies hit the log floor (digital silence).
WAVEFORM_SCALE_KEY = "waveform_scale"
DEFAULT_WAVEFORM_SCALE = 32768.0


@dataclasses.dataclass
class Data2Vec2Config:
    """The architecture of a converted checkpoint (``config.json``); the converter fills it from the
    fairseq checkpoint's ``cfg`` (``espnet_sllm/encoders/data2vec2_convert.py``)."""

    input_feature_ndim: int
    feature_encoder_spec: List[List[int]]  # [[dim, kernel, stride], ...]
    embed_dim: int
    num_heads: int
    mlp_ratio: float
    prenet_depth: int
    depth: int
    conv_pos_depth: int
    conv_pos_kernel: int
    conv_pos_groups: int
    norm_eps: float = 1e-5
    norm_affine: bool = True
    #: shape of the learned ALiBi scale (5-d: layers or 1, 1, heads or 1, 1, 1); None = no ALiBi
    alibi_scale_shape: Optional[List[int]] = None
    encoder_dropout: float = 0.0
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    post_mlp_drop: float = 0.0
    prenet_dropout: float = 0.0
    dropout_input: float = 0.0
    sample_rate: int = 16000
    #: per-utterance CMVN of the MFCC (fairseq task ``normalize``)
    cmvn: bool = True
    cmvn_eps: float = 1e-5
    #: where the weights came from (informational)
    source: Dict[str, Any] = dataclasses.field(default_factory=dict)
    format: str = CONFIG_FORMAT
    version: int = CONFIG_VERSION

    @property
    def num_blocks(self) -> int:
        return self.prenet_depth + self.depth

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any], where: str = "config") -> "Data2Vec2Config":
        if not isinstance(data, dict) or data.get("format") != CONFIG_FORMAT:
            found = data.get("format", data.get("model_type")) if isinstance(data, dict) else data
            raise ValueError(
                f"{where} is not a data2vec2 config written by espnet_sllm.bin.convert_data2vec2 "
                f"(format {found!r}, expected {CONFIG_FORMAT!r})")
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        unknown = sorted(set(data) - names)
        missing = sorted(required - set(data))
        if unknown or missing:
            raise ValueError(f"{where}: unknown keys {unknown}, missing keys {missing}")
        if data.get("version") != CONFIG_VERSION:
            raise ValueError(f"{where}: version {data.get('version')}, this code reads "
                             f"{CONFIG_VERSION}; convert the checkpoint again")
        return cls(**data)

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
            f.write("\n")

    @classmethod
    def load(cls, path: str) -> "Data2Vec2Config":
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f), where=path)


# ---------------------------------------------------------------------------------- the network
def alibi_slopes(num_heads: int) -> torch.Tensor:
    """(H,) ALiBi slopes of data2vec 2.0 / Press et al.: for H a power of two the geometric series
    2^(-8/H), 2^(-16/H), ...; otherwise those of the nearest lower power of two plus every other
    slope of the next one."""

    def power_of_two(n: int) -> List[float]:
        first = 2.0 ** (-8.0 / n)
        return [first ** (i + 1) for i in range(n)]

    def slopes(n: int) -> List[float]:
        if math.log2(n).is_integer():
            return power_of_two(n)
        lower = 2 ** math.floor(math.log2(n))
        return power_of_two(lower) + slopes(2 * lower)[0::2][: n - lower]

    return torch.tensor(slopes(num_heads), dtype=torch.float32)


class _FeatureConv(nn.Module):
    """Conv1d (no bias, no padding) -> LayerNorm over channels in float32 -> GELU."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int, stride: int):
        super().__init__()
        self.conv = nn.Conv1d(in_dim, out_dim, kernel, stride=stride, bias=False)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, t) -> (B, C_out, t')"""
        y = self.conv(x).transpose(1, 2)
        y = F.layer_norm(y.float(), self.norm.normalized_shape, self.norm.weight.float(),
                         self.norm.bias.float(), self.norm.eps).to(x.dtype)
        return F.gelu(y).transpose(1, 2)


class _FeatureProjection(nn.Module):
    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, t, C) -> (B, t, D)"""
        return self.linear(self.norm(x))


class _Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, attn_drop: float, proj_drop: float):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = attn_drop
        self.proj_drop = proj_drop

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x (B, T, D), bias (B or 1, H or 1, T, T) float32 additive (-inf on padded keys)."""
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.num_heads, D // self.num_heads).permute(
            2, 0, 3, 1, 4)
        # Scores and softmax in float32, as fairseq's AltAttention (with ALiBi) computes them.
        scores = (q.float() * self.scale) @ k.float().transpose(-2, -1) + bias
        attn = scores.softmax(dim=-1).to(v.dtype)
        attn = F.dropout(attn, self.attn_drop, self.training)
        y = (attn @ v).transpose(1, 2).reshape(B, T, D)
        return F.dropout(self.proj(y), self.proj_drop, self.training)


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.dropout(F.gelu(self.fc1(x)), self.drop, self.training)
        return F.dropout(self.fc2(x), self.drop, self.training)


class _Block(nn.Module):
    """data2vec 2.0's ``AltBlock`` with ``layer_norm_first`` false (post-LN)."""

    def __init__(self, cfg: Data2Vec2Config):
        super().__init__()
        dim = cfg.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=cfg.norm_eps, elementwise_affine=cfg.norm_affine)
        self.attn = _Attention(dim, cfg.num_heads, cfg.attention_dropout, cfg.encoder_dropout)
        self.norm2 = nn.LayerNorm(dim, eps=cfg.norm_eps, elementwise_affine=cfg.norm_affine)
        self.mlp = _Mlp(dim, int(dim * cfg.mlp_ratio), cfg.activation_dropout)
        self.post_mlp_drop = cfg.post_mlp_drop

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.attn(x, bias))
        y = F.dropout(self.mlp(x), self.post_mlp_drop, self.training)
        return self.norm2(x + y)


def conv_out_length(length: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Frames of a Conv1d without padding: (t - kernel) // stride + 1, at least 0."""
    return (torch.div(length - kernel, stride, rounding_mode="floor") + 1).clamp(min=0)


class Data2Vec2Model(nn.Module):
    """The data2vec 2.0 network of ``cfg`` on normalised MFCCs.

    ``num_blocks`` keeps the first blocks only (modality blocks first, then shared blocks); the
    output is that of the last kept block. Parameter names are those of ``model.safetensors``.
    """

    def __init__(self, cfg: Data2Vec2Config, num_blocks: Optional[int] = None):
        super().__init__()
        self.cfg = cfg
        convs, in_dim = [], cfg.input_feature_ndim
        for dim, kernel, stride in cfg.feature_encoder_spec:
            convs.append(_FeatureConv(in_dim, dim, kernel, stride))
            in_dim = dim
        self.feature_extractor = nn.ModuleList(convs)
        self.feature_projection = _FeatureProjection(in_dim, cfg.embed_dim)
        k = cfg.conv_pos_kernel
        self.pos_conv = nn.ModuleList(
            nn.Conv1d(cfg.embed_dim, cfg.embed_dim, k, padding=k // 2, groups=cfg.conv_pos_groups)
            for _ in range(cfg.conv_pos_depth))
        self.prenet_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.norm_eps,
                                        elementwise_affine=cfg.norm_affine)
        n = cfg.num_blocks if num_blocks is None else num_blocks
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(n))
        if cfg.alibi_scale_shape is not None:
            self.alibi_scale = nn.Parameter(torch.ones(cfg.alibi_scale_shape))
        else:
            self.alibi_scale = None
        self.gradient_checkpointing = False

    def output_lengths(self, feat_lens: torch.Tensor) -> torch.Tensor:
        """(B,) MFCC frame counts -> (B,) output frame counts."""
        t = feat_lens
        for _, kernel, stride in self.cfg.feature_encoder_spec:
            t = conv_out_length(t, kernel, stride)
        return t

    @staticmethod
    def _zero_padding(x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """x (B, C, t): frames at and beyond lens[b] set to 0 (what a conv sees alone)."""
        valid = torch.arange(x.size(-1), device=x.device)[None, :] < lens[:, None]
        return x * valid[:, None, :].to(x.dtype)

    def _bias(self, j: int, lens: torch.Tensor, T: int, key_mask: torch.Tensor) -> torch.Tensor:
        """(B, H or 1, T, T) float32: ALiBi of block j (if any) + -inf on padded keys."""
        if self.alibi_scale is None:
            return key_mask
        scale = self.alibi_scale.float().clamp_min(0)
        scale = scale[j] if scale.size(0) > 1 else scale[0]  # (1, H or 1, 1, 1)
        pos = torch.arange(T, device=lens.device)
        distance = -(pos[None, :] - pos[:, None]).abs().float()  # (T, T)
        slopes = alibi_slopes(self.cfg.num_heads).to(lens.device)  # float32 whatever the dtype
        alibi = slopes[:, None, None] * distance  # (H, T, T)
        return alibi[None] * scale + key_mask

    def forward(self, feats: torch.Tensor, feat_lens: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """feats (B, n, F) normalised MFCC (any values beyond feat_lens), feat_lens (B,) long
        -> x (B, T, D) in the weights' dtype (frames beyond lens are not meaningful), lens (B,)."""
        x = feats.transpose(1, 2)  # (B, F, n)
        lens = feat_lens
        for layer, (_, kernel, stride) in zip(self.feature_extractor, self.cfg.feature_encoder_spec):
            x = layer(self._zero_padding(x, lens))
            lens = conv_out_length(lens, kernel, stride)
        x = self.feature_projection(x.transpose(1, 2))  # (B, T, D)

        pos = x.transpose(1, 2)
        k = self.cfg.conv_pos_kernel
        for conv in self.pos_conv:
            pos = conv(self._zero_padding(pos, lens))
            if k % 2 == 0:  # fairseq's SamePad: an even kernel gives one frame too many
                pos = pos[..., :-1]
            pos = F.gelu(F.layer_norm(pos.transpose(1, 2), (pos.size(1),)).transpose(1, 2))
        x = x + pos.transpose(1, 2)

        x = F.dropout(self.prenet_norm(x), self.cfg.prenet_dropout, self.training)
        T = x.size(1)
        key_pad = torch.arange(T, device=x.device)[None, :] >= lens[:, None]
        key_mask = torch.zeros(key_pad.shape, device=x.device).masked_fill(
            key_pad, float("-inf"))[:, None, None, :]  # (B, 1, 1, T)
        shared_bias = None
        for j, block in enumerate(self.blocks):
            if j == self.cfg.prenet_depth:
                x = F.dropout(x, self.cfg.dropout_input, self.training)
            if shared_bias is None or (self.alibi_scale is not None and self.alibi_scale.size(0) > 1):
                shared_bias = self._bias(j, lens, T, key_mask)
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(block, x, shared_bias, use_reentrant=False)
            else:
                x = block(x, shared_bias)
        return x, lens


def load_data2vec2(path: str, dtype: torch.dtype = torch.float32,
                   num_blocks: Optional[int] = None) -> Tuple[Data2Vec2Model, Data2Vec2Config]:
    """The model of a converted directory (``config.json`` + ``model.safetensors``).

    Every tensor of the file must be a parameter of the full model and every parameter must be in
    the file (ValueError listing the missing and unexpected keys); with ``num_blocks`` the later
    blocks are checked, then not loaded.
    """
    from safetensors import safe_open

    config_path, weights_path = _checked_files(path)
    cfg = Data2Vec2Config.load(config_path)
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in Data2Vec2Model(cfg).state_dict().items()}
    with safe_open(weights_path, framework="pt") as f:
        found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        problems = weight_problems(expected, found)
        if problems:
            raise ValueError(f"{weights_path} does not fit {config_path}: {problems}")
        model = Data2Vec2Model(cfg, num_blocks=num_blocks)
        keep = model.state_dict().keys()
        state = {k: f.get_tensor(k).to(dtype) for k in keep}
    model.load_state_dict(state, strict=True)
    return model.to(dtype), cfg


def check_converted(path: str, layer: int = -1) -> str:
    """'' when ``path`` is a converted directory whose config loads and fits ``layer``, else the
    problem in one sentence (stage 4's load check; the weights are not read)."""
    try:
        cfg = Data2Vec2Config.load(_checked_files(path)[0])
    except (OSError, ValueError) as e:
        return str(e)
    if layer != -1 and not 1 <= layer <= cfg.num_blocks:
        return (f"encoder_conf.layer={layer} does not fit its {cfg.num_blocks} blocks "
                f"(give -1 or 1..{cfg.num_blocks})")
    return ""


def _checked_files(path: str) -> Tuple[str, str]:
    """(config.json, model.safetensors) of a converted directory; FileNotFoundError if missing."""
    files = os.path.join(path, CONFIG_NAME), os.path.join(path, WEIGHTS_NAME)
    for p in files:
        if not os.path.isfile(p):
            raise FileNotFoundError(
                f"{p} not found: model_name_or_path must be a directory written by "
                f"`python -m espnet_sllm.bin.convert_data2vec2 --fairseq_ckpt large.pt --out DIR`")
    return files


def weight_problems(expected: Dict[str, tuple], found: Dict[str, tuple], limit: int = 12) -> str:
    """'' when ``found`` (name -> shape) has exactly the ``expected`` names and shapes, else a
    sentence listing the missing and unexpected keys and the shape mismatches."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shapes = sorted(f"{k} {list(found[k])} != {list(expected[k])}"
                    for k in set(found) & set(expected) if found[k] != expected[k])
    parts = []
    for what, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                       ("shape mismatches", shapes)):
        if keys:
            more = f" ... (+{len(keys) - limit})" if len(keys) > limit else ""
            parts.append(f"{what} ({len(keys)}): {keys[:limit]}{more}")
    return "; ".join(parts)


# ------------------------------------------------------------------------------------ features
def mfcc_options(mfcc_conf: Optional[Dict[str, Any]], fs: int) -> Tuple[Dict[str, Any], float]:
    """(torchaudio kaldi.mfcc keyword arguments, waveform scale) of ``mfcc_conf`` over the defaults;
    an unknown key is a ValueError listing the valid ones."""
    import inspect

    valid = set(inspect.signature(torchaudio.compliance.kaldi.mfcc).parameters) - {
        "waveform", "channel"}
    conf = dict(mfcc_conf or {})
    scale = float(conf.pop(WAVEFORM_SCALE_KEY, DEFAULT_WAVEFORM_SCALE))
    unknown = sorted(set(conf) - valid)
    if unknown:
        raise ValueError(f"mfcc_conf: unknown keys {unknown}; valid: "
                         f"{sorted(valid | {WAVEFORM_SCALE_KEY})}")
    opts = {**DEFAULT_MFCC, **conf}
    if float(opts["sample_frequency"]) != float(fs):
        raise ValueError(f"mfcc_conf.sample_frequency {opts['sample_frequency']} != fs {fs}")
    return opts, scale


def mfcc_frames(num_samples: int, opts: Dict[str, Any]) -> int:
    """MFCC frames of ``num_samples`` samples, torchaudio's / Kaldi's rule."""
    fs = float(opts["sample_frequency"])
    window = int(fs * float(opts.get("frame_length", 25.0)) * 0.001)
    shift = int(fs * float(opts.get("frame_shift", 10.0)) * 0.001)
    if opts.get("snip_edges", True):
        return 0 if num_samples < window else 1 + (num_samples - window) // shift
    return (num_samples + shift // 2) // shift


class Data2Vec2Encoder(AbsEncoder):
    """TeleSpeech data2vec 2.0 encoder on raw 16 kHz waveforms (use it with ``frontend: none``).

    Args:
        input_size: ignored (ESPnet passes the frontend output size; this encoder reads the waveform).
        model_name_or_path: a directory written by ``python -m espnet_sllm.bin.convert_data2vec2``
            (``config.json`` + ``model.safetensors``).
        freeze: no gradients to the encoder, which then runs in eval mode (dropout off) under
            no_grad. Also without ``freeze``, an encoder none of whose parameters trains (e.g.
            ESPnet's ``--freeze_param encoder``) runs in eval mode under no_grad.
        layer: -1 = output of the last block; k in 1..prenet_depth + depth = output of the k-th
            Transformer block, the modality (prenet) blocks counted first (TeleSpeech large: 8 + 16).
            Later blocks are not built.
        dtype: dtype of the weights ("float32", "bfloat16", "float16"); frozen weights stay in it
            through ESPnet's ``--train_dtype`` cast. The MFCC is float32, ys is float32.
        gradient_checkpointing: recompute the blocks in backward (only matters when training).
        mfcc_conf: ``torchaudio.compliance.kaldi.mfcc`` keyword arguments over `DEFAULT_MFCC`, plus
            ``waveform_scale`` (default 32768: the int16 range Kaldi reads).
        fs: sample rate of the waveform given to forward; must be the checkpoint's (16000).

    forward(xs_pad (B, L) float, ilens (B,) long) -> (ys (B, T, D) float32, olens (B,) long, None)
    """

    #: An utterance's output does not depend on the other utterances of the batch (module
    #: docstring; tests/encoders/test_data2vec2.py): decoding batches it as is.
    batch_invariant = True

    def __init__(
        self,
        input_size: int = 1,
        model_name_or_path: Optional[str] = None,
        freeze: bool = True,
        layer: int = -1,
        dtype: str = "float32",
        gradient_checkpointing: bool = False,
        mfcc_conf: Optional[Dict[str, Any]] = None,
        fs: int = 16000,
    ):
        super().__init__()
        if not model_name_or_path:
            raise ValueError("encoder_conf.model_name_or_path is required: a directory written by "
                             "`python -m espnet_sllm.bin.convert_data2vec2`")
        cfg = Data2Vec2Config.load(_checked_files(model_name_or_path)[0])
        if layer != -1 and not 1 <= layer <= cfg.num_blocks:
            raise ValueError(f"layer must be -1 or in 1..{cfg.num_blocks} "
                             f"({cfg.prenet_depth} modality + {cfg.depth} shared blocks), got {layer}")
        self.frozen_dtype = parse_dtype(dtype)
        self.model, cfg = load_data2vec2(model_name_or_path, self.frozen_dtype,
                                         num_blocks=None if layer == -1 else layer)
        if int(fs) != int(cfg.sample_rate):
            raise ValueError(f"the data2vec2 checkpoint {model_name_or_path} reads "
                             f"{cfg.sample_rate} Hz audio, but fs is {fs}: resample the data to "
                             f"{cfg.sample_rate} Hz (stage 2 --fs {cfg.sample_rate})")
        self.mfcc_opts, self.waveform_scale = mfcc_options(mfcc_conf, cfg.sample_rate)
        if self.mfcc_opts["num_ceps"] != cfg.input_feature_ndim:
            raise ValueError(f"mfcc_conf.num_ceps {self.mfcc_opts['num_ceps']} != the "
                             f"checkpoint's {cfg.input_feature_ndim} input features")
        self.cfg = cfg
        self.layer = layer
        self.sample_rate = int(cfg.sample_rate)
        #: rebuilding from the config reloads the weights (espnet_sllm.chain)
        self.loads_pretrained = True
        mark_pretrained(self.model)
        self.freeze = freeze
        self.min_samples = self._min_samples()
        if freeze:
            self.model.requires_grad_(False)
        self.model.gradient_checkpointing = gradient_checkpointing
        self.train(self.training)

    def output_size(self) -> int:
        return self.cfg.embed_dim

    def save_pretrained(self, out_dir: str, source: Optional[Dict[str, Any]] = None) -> None:
        """Write this encoder's weights as a converted directory (``config.json`` +
        ``model.safetensors``) that ``model_name_or_path`` loads, e.g. after CTC fine-tuning
        (``python -m espnet_sllm.bin.export_encoder``). Refused with ``layer`` set: the later
        blocks were never loaded, so the directory would not be a whole model."""
        from safetensors.torch import save_file

        if self.layer != -1:
            raise ValueError(f"data2vec2: cannot save an encoder built with layer={self.layer} "
                             f"(blocks after it were not loaded); build it with layer: -1")
        os.makedirs(out_dir, exist_ok=True)
        tensors = {k: v.detach().to("cpu", torch.float32).contiguous()
                   for k, v in self.model.state_dict().items()}
        weights = os.path.join(out_dir, WEIGHTS_NAME)
        save_file(tensors, weights + ".tmp", metadata={"format": "pt"})
        os.replace(weights + ".tmp", weights)  # a crash never leaves half a file
        dataclasses.replace(self.cfg, source=source or {}).save(
            os.path.join(out_dir, CONFIG_NAME))

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze:
            self.model.eval()
        return self

    # ------------------------------------------------------------------ lengths
    def num_frames(self, num_samples: int) -> int:
        """Output frames of an utterance of ``num_samples`` samples (0 when too short)."""
        n = torch.tensor([mfcc_frames(num_samples, self.mfcc_opts)])
        return int(self.model.output_lengths(n)[0])

    def _min_samples(self) -> int:
        """The fewest samples that give every conv an output frame (and CMVN 2+ frames)."""
        lo, hi = 1, 1
        while self.num_frames(hi) < 1 or mfcc_frames(hi, self.mfcc_opts) < 2:
            hi *= 2
        while lo < hi:  # the frame counts do not decrease with the length
            mid = (lo + hi) // 2
            if self.num_frames(mid) >= 1 and mfcc_frames(mid, self.mfcc_opts) >= 2:
                hi = mid
            else:
                lo = mid + 1
        return lo

    # ------------------------------------------------------------------ features
    def mfcc(self, wav: torch.Tensor) -> torch.Tensor:
        """One utterance's valid samples (N,) -> normalised MFCC (n, num_ceps) float32."""
        with torch.autocast(device_type=wav.device.type, enabled=False):
            feats = torchaudio.compliance.kaldi.mfcc(
                wav.float()[None] * self.waveform_scale, **self.mfcc_opts)
            if self.cfg.cmvn:
                feats = (feats - feats.mean(dim=0)) / (feats.std(dim=0) + self.cfg.cmvn_eps)
        return feats

    def forward(
        self,
        xs_pad: torch.Tensor,
        ilens: torch.Tensor,
        prev_states: torch.Tensor = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, None]:
        """Encode a batch of waveforms.

        Args:
            xs_pad: (B, L) float, waveform at ``fs``; samples at and beyond ilens[b] are ignored.
            ilens: (B,) long, real samples, ``min_samples`` <= ilens[b] <= L.
        Returns:
            ys: (B, max(olens), D) float32, frames at and beyond olens[b] are zero.
            olens: (B,) long, the module docstring's rule.
            None
        """
        if xs_pad.dim() != 2:
            raise ValueError(f"Data2Vec2Encoder takes raw waveforms xs_pad of shape (B, L) (use "
                             f"`frontend: none`), got shape {tuple(xs_pad.shape)}")
        if ilens.dim() != 1 or ilens.size(0) != xs_pad.size(0):
            raise ValueError(f"ilens must have shape (B,) = ({xs_pad.size(0)},), "
                             f"got {tuple(ilens.shape)}")
        lengths: Sequence[int] = [int(v) for v in ilens.tolist()]
        for b, num in enumerate(lengths):
            if num > xs_pad.size(1):
                raise ValueError(f"ilens[{b}]={num} exceeds the padded length {xs_pad.size(1)}")
            if num < self.min_samples:
                raise ValueError(
                    f"an utterance of {num} samples ({1000 * num / self.sample_rate:.1f} ms; row "
                    f"{b} of the batch) is too short for the data2vec2 encoder: it needs at least "
                    f"{self.min_samples} samples ({1000 * self.min_samples / self.sample_rate:.1f} "
                    f"ms at {self.sample_rate} Hz, {mfcc_frames(self.min_samples, self.mfcc_opts)} "
                    f"MFCC frames); drop shorter utterances from the data")
        with torch.no_grad():
            mfccs = [self.mfcc(xs_pad[b, :num]) for b, num in enumerate(lengths)]
        feat_lens = torch.tensor([m.size(0) for m in mfccs], device=xs_pad.device)
        feats = nn.utils.rnn.pad_sequence(mfccs, batch_first=True)

        trains = any(p.requires_grad for p in self.model.parameters())
        was_training = self.model.training
        if not trains:
            self.model.eval()
        try:
            with torch.set_grad_enabled(torch.is_grad_enabled() and trains):
                param_dtype = next(self.model.parameters()).dtype
                hs, olens = self.model(feats.to(param_dtype), feat_lens)
        finally:
            self.model.train(was_training)
        valid = torch.arange(hs.size(1), device=hs.device)[None, :] < olens[:, None]
        ys = hs.float() * valid[..., None]
        return ys, olens.to(ilens.device), None
