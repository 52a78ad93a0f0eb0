"""Tiny random Whisper checkpoints for tests and the CPU demo.

The checkpoint is written with the same ``save_pretrained`` layout as the real
``openai/whisper-*`` releases (config.json + model.safetensors + preprocessor_config.json),
so code under test loads it through exactly the path it uses for whisper-large-v3.
"""
import os

import torch
from transformers import (
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperModel,
)

_ARCHITECTURES = {
    "WhisperForConditionalGeneration": WhisperForConditionalGeneration,
    "WhisperModel": WhisperModel,
}


def make_tiny_whisper(
    out_dir: str,
    num_mel_bins: int = 80,
    d_model: int = 64,
    encoder_layers: int = 2,
    encoder_attention_heads: int = 4,
    max_source_positions: int = 1500,
    seed: int = 0,
    architecture: str = "WhisperForConditionalGeneration",
) -> str:
    """Build, save and return the directory of a tiny random Whisper model.

    Args:
        out_dir: directory to write (created if missing).
        num_mel_bins: 80 (whisper <= large-v2) or 128 (whisper-large-v3).
        d_model: encoder/decoder width; the encoder output is (B, T', d_model).
        encoder_layers, encoder_attention_heads: encoder depth and heads.
        max_source_positions: encoder positions; 1500 = 30 s at 50 Hz (3000 mel frames / 2), the value
            of every released Whisper. Smaller values make a model whose padded window is shorter.
        seed: torch seed for the random weights.
        architecture: "WhisperForConditionalGeneration" (how openai/whisper-* checkpoints are saved, keys
            ``model.encoder.*``) or "WhisperModel" (keys ``encoder.*``); loaders must accept both.

    Returns:
        out_dir
    """
    if architecture not in _ARCHITECTURES:
        raise ValueError(
            f"architecture must be one of {sorted(_ARCHITECTURES)}, got {architecture!r}"
        )
    if max_source_positions % 50 != 0:
        # The feature extractor pads to a whole number of seconds (chunk_length); 50 positions = 1 s.
        raise ValueError(
            f"max_source_positions must be a multiple of 50 (1 s of audio), got {max_source_positions}"
        )
    # A tiny vocabulary needs special-token ids inside it; the defaults (50256, ...) would not fit.
    config = WhisperConfig(
        vocab_size=64,
        num_mel_bins=num_mel_bins,
        d_model=d_model,
        encoder_layers=encoder_layers,
        encoder_attention_heads=encoder_attention_heads,
        encoder_ffn_dim=2 * d_model,
        decoder_layers=1,
        decoder_attention_heads=encoder_attention_heads,
        decoder_ffn_dim=2 * d_model,
        max_source_positions=max_source_positions,
        max_target_positions=32,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
        begin_suppress_tokens=None,
    )
    torch.manual_seed(seed)
    model = _ARCHITECTURES[architecture](config)
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)
    # chunk_length follows max_source_positions so the feature extractor's 30 s padding matches the encoder
    # window (3000 frames = 2 * 1500 positions for every real Whisper).
    chunk_length = max_source_positions // 50
    WhisperFeatureExtractor(feature_size=num_mel_bins, chunk_length=chunk_length).save_pretrained(
        out_dir
    )
    return out_dir
