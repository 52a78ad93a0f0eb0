"""wav2vec 2.0 / MMS speech encoder (HF transformers ``Wav2Vec2Model``) behind ESPnet's
``AbsEncoder`` contract: ``encoder: mms_hf`` (Ideal-LLM's MMS branch: facebook/mms-300m,
facebook/mms-1b).

    xs_pad (B, L) float 16 kHz waveform, ilens (B,) long
      -> per utterance over its real samples only (the checkpoint's Wav2Vec2FeatureExtractor,
         ``do_normalize``): x = (x - mean) / sqrt(var + 1e-7), zeros after its length
      -> conv feature encoder (MMS: 7 convs, kernels (10,3,3,3,3,2,2), strides (5,2,2,2,2,2,2),
         layer norm per frame) -> feature projection -> positional conv -> Transformer layers
         (MMS: stable layer norm, i.e. pre-LN, with a final layer norm)
      -> ys (B, T', hidden_size) float32, olens (B,) long, None

Frames: per conv t -> (t - kernel) // stride + 1 (transformers' ``_get_feat_extract_output_lengths``);
for MMS T' = floor((L - 400) / 320) + 1, 49.9 Hz. An utterance needs one window of the whole conv
stack (MMS: 400 samples = 25 ms); a shorter one is an error.

Batch invariance (``batch_invariant``): with a layer-norm feature encoder (``feat_extract_norm:
layer``, every MMS and XLS-R checkpoint; their feature extractors set ``return_attention_mask``),
valid frames see only valid samples, the encoder zeros padded frames before the positional conv
and attention never attends to them: an utterance gives the same frames in any batch as alone, to
float rounding. Group-norm checkpoints (wav2vec2-base) normalise over time and are used, as
transformers documents, without an attention mask on zero-padded input: not batch invariant.

Checkpoints: ``Wav2Vec2ForPreTraining`` (mms-300m, mms-1b), ``Wav2Vec2ForCTC`` (mms-1b-all) or
``Wav2Vec2Model``; transformers maps their ``wav2vec2.`` keys onto the bare model and drops the
heads. Another ``model_type`` (hubert, data2vec-audio, ...) is an error.
"""
import logging
from typing import Optional, Tuple

import torch
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from transformers import AutoConfig, Wav2Vec2FeatureExtractor, Wav2Vec2Model

from espnet_sllm.torch_utils import enable_checkpointing, mark_pretrained, parse_dtype

logger = logging.getLogger(__name__)

#: ``config.model_type`` values this encoder loads.
MODEL_TYPES = ("wav2vec2",)


def min_samples(conv_kernel, conv_stride) -> int:
    """Samples needed for one output frame of the conv stack (MMS: 400)."""
    n = 1
    for k, s in reversed(list(zip(conv_kernel, conv_stride))):
        n = (n - 1) * s + k
    return n


class HFWav2Vec2Encoder(AbsEncoder):
    """Encoder of a wav2vec 2.0 / MMS checkpoint (local directory or hub id) on raw 16 kHz audio.

    Args:
        input_size: ignored (ESPnet passes the frontend size; use ``frontend: none``).
        model_name_or_path: local directory or hub id (facebook/mms-300m, facebook/mms-1b, ...).
        freeze: no gradients to the encoder, which always runs in eval mode (dropout off).
        dtype: dtype of the encoder weights (float32, bfloat16, float16); ys is always float32.
        attn_implementation: "eager", "sdpa", ... as in transformers; None = its default.
        gradient_checkpointing: recompute Transformer layers in backward (when not frozen).
        layer: -1 = final output (after the final layer norm of stable-layer-norm models);
            k in 1..num_layers = output of the k-th Transformer layer (HF ``hidden_states[k]``,
            no final layer norm unless k = num_layers); later layers are dropped from memory.

    SpecAugment-style masking and layer drop of the checkpoint's config are switched off: the
    paper keeps MMS frozen, and a dropped layer would leave DDP with unused parameters.

    forward(xs_pad (B, L) float, ilens (B,) long) -> (ys (B, T'max, D) float32, olens (B,), None)
    """

    def __init__(
        self,
        input_size: int = 1,
        model_name_or_path: str = "facebook/mms-300m",
        freeze: bool = True,
        dtype: str = "float32",
        attn_implementation: Optional[str] = None,
        gradient_checkpointing: bool = False,
        layer: int = -1,
    ):
        super().__init__()
        config = AutoConfig.from_pretrained(model_name_or_path)
        if config.model_type not in MODEL_TYPES:
            raise ValueError(
                f"{model_name_or_path} is a {config.model_type!r} checkpoint; encoder mms_hf "
                f"loads wav2vec 2.0 / MMS checkpoints (model_type {', '.join(MODEL_TYPES)})"
            )
        # No time/feature masking (no masked_spec_embed parameter either), no layer drop.
        config.mask_time_prob = 0.0
        config.mask_feature_prob = 0.0
        config.layerdrop = 0.0
        load_kwargs = {"dtype": parse_dtype(dtype)}
        if attn_implementation is not None:
            load_kwargs["attn_implementation"] = attn_implementation
        model, info = Wav2Vec2Model.from_pretrained(
            model_name_or_path, config=config, output_loading_info=True, **load_kwargs
        )
        if info["missing_keys"]:
            # A silent random init would look like "training does not converge".
            raise ValueError(
                f"{model_name_or_path} has no wav2vec 2.0 encoder weights: missing "
                f"{sorted(info['missing_keys'])[:5]} ..."
            )
        num_layers = len(model.encoder.layers)
        if layer != -1 and not 1 <= layer <= num_layers:
            raise ValueError(f"layer must be -1 or in 1..{num_layers}, got {layer}")
        if layer != -1 and layer < num_layers:
            model.encoder.layers = model.encoder.layers[:layer]
            if config.do_stable_layer_norm:
                # hidden_states[k < N] has no final layer norm (the post-LN layout has none after
                # the layers: its layer_norm runs before them and stays).
                model.encoder.layer_norm = torch.nn.Identity()

        try:
            fe = Wav2Vec2FeatureExtractor.from_pretrained(model_name_or_path)
            self.do_normalize = bool(fe.do_normalize)
            self.use_attention_mask = bool(fe.return_attention_mask)
        except OSError:
            # The pre-training releases' own settings: normalise; a mask only for layer norm.
            self.do_normalize = True
            self.use_attention_mask = config.feat_extract_norm == "layer"
            logger.info("%s has no preprocessor_config.json: do_normalize=True, attention "
                        "mask %s", model_name_or_path, self.use_attention_mask)
        self.min_samples = min_samples(config.conv_kernel, config.conv_stride)
        #: see the module docstring
        self.batch_invariant = self.use_attention_mask and config.feat_extract_norm == "layer"

        self.model = model
        #: dtype of the frozen weights (ESPnetSLLMModel.to keeps them in it)
        self.frozen_dtype = load_kwargs["dtype"]
        #: rebuilding from the config reloads its weights (espnet_sllm.chain)
        self.loads_pretrained = True
        mark_pretrained(model)
        self.freeze = freeze
        self._output_size = config.hidden_size
        if freeze:
            self.model.requires_grad_(False)
        if gradient_checkpointing:
            enable_checkpointing(self.model)
        self.train(self.training)

    def output_size(self) -> int:
        return self._output_size

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze:
            self.model.eval()
        return self

    def num_frames(self, ilens: torch.Tensor) -> torch.Tensor:
        """(B,) samples -> (B,) encoder frames."""
        return self.model._get_feat_extract_output_lengths(ilens).long()

    def forward(
        self,
        xs_pad: torch.Tensor,
        ilens: torch.Tensor,
        prev_states: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, None]:
        if xs_pad.dim() == 3 and xs_pad.size(-1) == 1:
            xs_pad = xs_pad.squeeze(-1)
        if xs_pad.dim() != 2:
            raise ValueError(f"mms_hf expects a (B, L) waveform, got shape {tuple(xs_pad.shape)}")
        short = (ilens < self.min_samples).nonzero().flatten().tolist()
        if short:
            raise ValueError(
                f"mms_hf: utterance(s) {short} of the batch have {ilens[short].tolist()} samples, "
                f"fewer than the {self.min_samples} of one conv window (filter them out in stage 3)"
            )
        length = int(ilens.max())
        with torch.autocast(device_type=xs_pad.device.type, enabled=False):
            wav = xs_pad[:, :length].float()
            valid = torch.arange(length, device=wav.device)[None, :] < ilens[:, None]
            wav = wav * valid
            if self.do_normalize:
                n = ilens.to(wav.dtype)[:, None]
                mean = wav.sum(1, keepdim=True) / n
                var = (((wav - mean) * valid) ** 2).sum(1, keepdim=True) / n
                wav = (wav - mean) / torch.sqrt(var + 1e-7) * valid
        mask = valid.long() if self.use_attention_mask else None
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            ys = self.model(wav.to(self.model.dtype), attention_mask=mask).last_hidden_state
        olens = self.num_frames(ilens)
        ys = ys.float()
        frame_valid = torch.arange(ys.size(1), device=ys.device)[None, :] < olens[:, None]
        return ys * frame_valid[..., None], olens, None
