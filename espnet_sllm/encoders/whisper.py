"""Whisper speech encoder (HF transformers weights) behind ESPnet's ``AbsEncoder`` contract.

The encoder takes the raw 16 kHz waveform (use it with ``frontend: none``) and computes Whisper's
log-mel features itself, in torch, on the device of the waveform:

    xs_pad (B, L) float waveform, ilens (B,) long
      -> per segment log-mel (n_mels, n_frames)          [n_frames = samples // hop_length]
      -> conv1 / conv2 (stride 2) / + positions / Transformer layers / layer_norm
      -> ys (B, T', d_model) float32, olens (B,) long, None

Length rules (hop_length = 160 samples = 10 ms for every released Whisper):

    mel frames     n   = samples // 160
    encoder frames T'  = (n - 1) // 2 + 1        (conv2: kernel 3, stride 2, padding 1)

``pad_to_30s=True`` (default, as in the papers and Whisper's training): each segment is zero-padded to
the 30 s window (480000 samples) exactly like ``WhisperFeatureExtractor(padding="max_length")`` and the
stock HF encoder runs on 3000 frames; only the T' frames that cover real audio are returned.
``pad_to_30s=False``: the log-mel and the encoder run on the real length only, with an attention mask so
a padded utterance never attends to its padding; the output of an utterance does not depend on the
other utterances of the batch.

Audio longer than the window: ``long_audio="error"`` raises; ``long_audio="split"`` cuts the utterance
into k = ceil(L / 480000) consecutive pieces of equal length (the first L % k pieces get one extra
sample), encodes each piece as its own segment (padded or real length, as above), and concatenates
their valid frames, so olens = sum over pieces of (piece // 160 - 1) // 2 + 1.
"""
import logging
import math
from typing import List, Optional, Tuple

import torch
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from transformers import WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from espnet_sllm.torch_utils import enable_checkpointing, mark_pretrained, parse_dtype

logger = logging.getLogger(__name__)

# openai/whisper-* checkpoints are full encoder-decoder models, saved as WhisperForConditionalGeneration
# (keys "model.encoder.*") or WhisperModel (keys "encoder.*"); map both onto a bare WhisperEncoder.
_ENCODER_KEY_MAPPING = {r"^(?:model\.)?encoder\.": ""}


def whisper_log_mel(wav: torch.Tensor, mel_filters: torch.Tensor, n_fft: int,
                    hop_length: int) -> torch.Tensor:
    """Whisper's log-mel of equal-length waveforms, each normalised on its own, in torch (the
    HF torch feature path, bit for bit): (S, N) float -> (S, n_mels, N // hop_length) float32.
    ``mel_filters``: (n_mels, n_fft // 2 + 1), the feature extractor's filters transposed."""
    # Autocast (ESPnet --use_amp) would run the mel matmul in fp16, where the power spectrum overflows.
    with torch.autocast(device_type=wav.device.type, enabled=False):
        wav = wav.float()
        window = torch.hann_window(n_fft, device=wav.device)
        spec = torch.stft(wav, n_fft, hop_length, window=window, return_complex=True)
        # Whisper drops the last STFT frame (center=True gives N // hop + 1 frames).
        power = (spec[..., :-1].abs() ** 2).contiguous()
        mel = mel_filters.float() @ power
        log_spec = torch.clamp(mel, min=1e-10).log10()
        peak = log_spec.amax(dim=(1, 2), keepdim=True)
        log_spec = torch.maximum(log_spec, peak - 8.0)
        return (log_spec + 4.0) / 4.0


class _WhisperEncoderOnly(WhisperEncoder):
    """WhisperEncoder that loads from full Whisper checkpoints without reading or reporting the decoder."""

    _keys_to_ignore_on_load_unexpected = [r"^(?:model\.)?decoder\.", r"^proj_out\."]


class HFWhisperEncoder(AbsEncoder):
    """Encoder of a Whisper checkpoint (local directory or HF hub id) on raw 16 kHz waveforms.

    Args:
        input_size: ignored; ESPnet passes the frontend output size, this encoder reads the waveform.
        model_name_or_path: local directory or hub id of a Whisper checkpoint (e.g. openai/whisper-large-v3,
            128 mel bins); only the encoder weights are loaded.
        pad_to_30s: pad every segment to the 30 s window (faithful default) or run on the real length.
        long_audio: "error" (audio longer than the window raises) or "split" (see module docstring).
        freeze: no gradients to the encoder, which always runs in eval mode (dropout off) under no_grad.
        dtype: dtype of the encoder weights ("float32", "bfloat16", "float16"; or fp32/bf16/fp16);
            frozen weights stay in it through ESPnet's ``--train_dtype`` cast and in the saved
            checkpoint; the log-mel is always computed in float32 and the output ys is always float32.
        attn_implementation: "eager", "sdpa", ... as in transformers; None = transformers' default.
            With pad_to_30s=False a batch of unequal lengths needs a padding mask, which only the
            eager/sdpa paths accept here.
        gradient_checkpointing: recompute encoder layers in backward (only matters when not frozen).
        layer: -1 = final output (after the last layer norm); k in 1..num_layers = output of the k-th
            Transformer layer, like HF's ``hidden_states[k]`` (no final layer norm unless k = num_layers).
            Layers after k are dropped from memory.

    forward(xs_pad (B, L) float, ilens (B,) long) -> (ys (B, T'max, d_model) float32, olens (B,) long, None)
    """

    #: An utterance's output does not depend on the other utterances of the batch (per-segment
    #: features, masked padding; tests/encoders/test_whisper.py): decoding batches it as is
    #: (``ESPnetSLLMModel._run_encoder_batch_invariant``).
    batch_invariant = True

    def __init__(
        self,
        input_size: int = 1,
        model_name_or_path: str = "openai/whisper-large-v3",
        pad_to_30s: bool = True,
        long_audio: str = "error",
        freeze: bool = True,
        dtype: str = "float32",
        attn_implementation: Optional[str] = None,
        gradient_checkpointing: bool = False,
        layer: int = -1,
    ):
        super().__init__()
        if long_audio not in ("error", "split"):
            raise ValueError(f"long_audio must be 'error' or 'split', got {long_audio!r}")
        load_kwargs = {"dtype": parse_dtype(dtype)}
        if attn_implementation is not None:
            load_kwargs["attn_implementation"] = attn_implementation
        encoder, info = _WhisperEncoderOnly.from_pretrained(
            model_name_or_path,
            key_mapping=_ENCODER_KEY_MAPPING,
            output_loading_info=True,
            **load_kwargs,
        )
        if info["missing_keys"]:
            # A silent random init of the encoder would look like "training does not converge".
            raise ValueError(
                f"{model_name_or_path} is not a Whisper checkpoint with encoder weights: missing "
                f"{sorted(info['missing_keys'])[:5]} ..."
            )
        config = encoder.config

        num_layers = len(encoder.layers)
        if layer != -1 and not 1 <= layer <= num_layers:
            raise ValueError(f"layer must be -1 or in 1..{num_layers}, got {layer}")
        if layer != -1 and layer < num_layers:
            # HF's hidden_states[k] for k < num_layers has no final layer norm; an Identity keeps the stock
            # forward usable and leaves no unused trainable parameters (DDP would complain about them).
            encoder.layers = encoder.layers[:layer]
            encoder.layer_norm = torch.nn.Identity()

        try:
            feature_extractor = WhisperFeatureExtractor.from_pretrained(model_name_or_path)
        except OSError:
            logger.info(
                "%s has no preprocessor_config.json; using Whisper's default log-mel with %d bins",
                model_name_or_path,
                config.num_mel_bins,
            )
            feature_extractor = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
        if feature_extractor.feature_size != config.num_mel_bins:
            raise ValueError(
                f"{model_name_or_path}: feature extractor has {feature_extractor.feature_size} mel bins but "
                f"the encoder expects num_mel_bins={config.num_mel_bins}"
            )

        self.n_fft = feature_extractor.n_fft
        self.hop_length = feature_extractor.hop_length
        self.sampling_rate = feature_extractor.sampling_rate
        # The window is fixed by the positional table, not by the feature extractor: 1500 positions
        # * conv strides 1 * 2 = 3000 frames * 160 = 480000 samples for every released Whisper.
        self.window_frames = (
            config.max_source_positions * encoder.conv1.stride[0] * encoder.conv2.stride[0]
        )
        self.window_samples = self.window_frames * self.hop_length
        if feature_extractor.n_samples != self.window_samples:
            raise ValueError(
                f"{model_name_or_path}: feature extractor pads to {feature_extractor.n_samples} samples but "
                f"the encoder window is {self.window_samples} samples"
            )
        # (n_mels, n_fft // 2 + 1); float32 like the HF torch feature path, to match it bit for bit.
        # Not persistent: it is derived from the checkpoint, so ESPnet checkpoints need not carry it.
        self.register_buffer(
            "mel_filters",
            torch.from_numpy(feature_extractor.mel_filters).to(torch.float32).T.contiguous(),
            persistent=False,
        )

        self.encoder = encoder
        #: dtype of the frozen weights (ESPnetSLLMModel.to keeps them in it)
        self.frozen_dtype = load_kwargs["dtype"]
        #: rebuilding from the config reloads its weights (espnet_sllm.chain)
        self.loads_pretrained = True
        mark_pretrained(encoder)
        self.pad_to_30s = pad_to_30s
        self.long_audio = long_audio
        self.freeze = freeze
        self._output_size = config.d_model

        if freeze:
            self.encoder.requires_grad_(False)
        if gradient_checkpointing:
            enable_checkpointing(self.encoder)
        self.train(self.training)

    def output_size(self) -> int:
        return self._output_size

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze:
            # A frozen encoder is a fixed feature extractor: keep dropout/layerdrop off during training.
            self.encoder.eval()
        return self

    # ------------------------------------------------------------------ features
    def log_mel(self, wav: torch.Tensor) -> torch.Tensor:
        """Whisper log-mel of equal-length waveforms, each normalised on its own.

        wav: (S, N) float -> (S, n_mels, N // hop_length) float32
        """
        return whisper_log_mel(wav, self.mel_filters, self.n_fft, self.hop_length)

    def num_frames(self, num_samples: int) -> int:
        """Encoder frames that cover ``num_samples`` real samples (same rule in both modes)."""
        return (num_samples // self.hop_length - 1) // 2 + 1

    # ------------------------------------------------------------------ encoder
    def _encode_padded(self, segments: List[torch.Tensor]) -> torch.Tensor:
        """segments: S waveforms of <= window_samples -> (S, window_frames // 2, D)."""
        wav = segments[0].new_zeros(len(segments), self.window_samples)
        for i, seg in enumerate(segments):
            wav[i, : seg.numel()] = seg
        feats = self.log_mel(wav).to(self.encoder.dtype)
        return self.encoder(feats).last_hidden_state

    def _encode_real_length(self, segments: List[torch.Tensor]) -> torch.Tensor:
        """segments: S waveforms of any length <= window_samples -> (S, T'max, D)."""
        enc = self.encoder
        # One STFT per segment: padding a batch would let the reflect padding and the per-utterance
        # max of the dynamic-range clamp see other samples than the segment's own.
        mels = [self.log_mel(seg[None])[0] for seg in segments]
        n = torch.tensor([m.size(-1) for m in mels], device=mels[0].device)
        feats = mels[0].new_zeros(len(mels), mels[0].size(0), int(n.max()))
        for i, m in enumerate(mels):
            feats[i, :, : m.size(-1)] = m
        feats = feats.to(enc.dtype)

        frame_valid = torch.arange(feats.size(-1), device=feats.device)[None, :] < n[:, None]
        x = torch.nn.functional.gelu(enc.conv1(feats))
        # conv2 (stride 2, kernel 3) reads one frame past the end; zero it as conv's own padding would,
        # otherwise the gelu(bias) of the batch padding leaks into the last valid frame.
        x = x * frame_valid[:, None, :].to(x.dtype)
        x = torch.nn.functional.gelu(enc.conv2(x)).transpose(1, 2)

        t_out = x.size(1)
        out_lens = (n - 1) // 2 + 1
        x = x + enc.embed_positions.weight[:t_out]
        x = torch.nn.functional.dropout(x, p=enc.dropout, training=enc.training)

        mask = None
        if bool((out_lens < t_out).any()):
            if "flash" in (enc.config._attn_implementation or ""):
                raise ValueError(
                    "pad_to_30s=False with utterances of different lengths needs a padding mask, which the "
                    "flash attention path does not take here; use attn_implementation 'sdpa' or 'eager'"
                )
            key_valid = torch.arange(t_out, device=x.device)[None, :] < out_lens[:, None]
            # Additive (B, 1, T, T) mask: padded keys are never attended; padded queries still see the
            # valid keys, so no row is all -inf (no NaN) and they are cut off at the end anyway.
            mask = torch.zeros(key_valid.shape, dtype=x.dtype, device=x.device)
            mask = mask.masked_fill(~key_valid, torch.finfo(x.dtype).min)
            mask = mask[:, None, None, :].expand(-1, 1, t_out, -1)
        for layer in enc.layers:
            # Positional args: GradientCheckpointingLayer re-enters forward with them.
            x = layer(x, mask)
        return enc.layer_norm(x)

    def forward(
        self,
        xs_pad: torch.Tensor,
        ilens: torch.Tensor,
        prev_states: torch.Tensor = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, None]:
        """Encode a batch of waveforms.

        Args:
            xs_pad: (B, L) float, 16 kHz waveform, samples at and beyond ilens[b] are ignored.
            ilens: (B,) long, number of real samples, n_fft (400) <= ilens[b] <= L.
        Returns:
            ys: (B, max(olens), d_model) float32, frames at and beyond olens[b] are zero.
            olens: (B,) long, see the module docstring for the rule.
            None
        """
        if xs_pad.dim() != 2:
            raise ValueError(
                f"HFWhisperEncoder takes raw waveforms xs_pad of shape (B, L) (use `frontend: none`), "
                f"got shape {tuple(xs_pad.shape)}"
            )
        if ilens.dim() != 1 or ilens.size(0) != xs_pad.size(0):
            raise ValueError(
                f"ilens must have shape (B,) = ({xs_pad.size(0)},), got {tuple(ilens.shape)}"
            )
        lengths = [int(v) for v in ilens.tolist()]
        total = xs_pad.size(1)
        segments, owner, seg_lens = [], [], []
        for b, num in enumerate(lengths):
            if num > total:
                raise ValueError(f"ilens[{b}]={num} exceeds the padded length {total} of xs_pad")
            if num < self.n_fft:
                raise ValueError(
                    f"utterance {b} has {num} samples; Whisper needs at least {self.n_fft} "
                    f"({1000 * self.n_fft / self.sampling_rate:.0f} ms at {self.sampling_rate} Hz)"
                )
            pieces = math.ceil(num / self.window_samples)
            if pieces > 1 and self.long_audio == "error":
                raise ValueError(
                    f"utterance {b} is {num / self.sampling_rate:.2f} s long, longer than Whisper's "
                    f"{self.window_samples / self.sampling_rate:.0f} s window; set `long_audio: split` to "
                    f"encode it in equal pieces, or drop long utterances from the data"
                )
            base, extra = divmod(num, pieces)
            start = 0
            for i in range(pieces):
                size = base + (1 if i < extra else 0)
                segments.append(xs_pad[b, start : start + size])
                owner.append(b)
                seg_lens.append(self.num_frames(size))
                start += size

        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            if self.pad_to_30s:
                hs = self._encode_padded(segments)
            else:
                hs = self._encode_real_length(segments)
        hs = hs.float()

        per_utt: List[List[torch.Tensor]] = [[] for _ in lengths]
        for i, (b, t) in enumerate(zip(owner, seg_lens)):
            per_utt[b].append(hs[i, :t])
        outs = [torch.cat(p, dim=0) for p in per_utt]
        olens = torch.tensor([o.size(0) for o in outs], dtype=torch.long, device=ilens.device)
        ys = torch.nn.utils.rnn.pad_sequence(outs, batch_first=True)
        return ys, olens, None
