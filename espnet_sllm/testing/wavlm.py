"""Tiny random WavLM x-vector checkpoints (microsoft/wavlm-base-plus-sv layout) for tests.

Same architecture family as ``microsoft/wavlm-base-plus-sv`` except for the sizes: the seven
feature convs with the real kernels (10,3,3,3,3,2,2) and strides (5,2,2,2,2,2,2) (a 400-sample
receptive field, 320-sample hop), no conv bias, group norm in the first conv
(``feat_extract_norm="group"``), post-LN Transformer (``do_stable_layer_norm=False``) with
WavLM's gated relative position bias (320 buckets, distance 800) and the grouped positional conv,
a weighted sum of the hidden states (``use_weighted_layer_sum=True``), and the x-vector head with
the real TDNN kernels (5,3,3,1,1) and dilations (1,2,3,1,1) (so the same minimum input length,
see :func:`espnet_sllm.data.speaker_select.min_samples`).  Saved with ``save_pretrained`` as
``WavLMForXVector`` with the release's ``preprocessor_config.json`` (``Wav2Vec2FeatureExtractor``,
16 kHz, ``do_normalize=False``, ``return_attention_mask=True``), so ``AutoFeatureExtractor`` /
``WavLMForXVector.from_pretrained`` load it back.

The release's config values above are those of its ``config.json`` / ``preprocessor_config.json``
as published on the Hugging Face hub (not re-checked from this offline machine).
"""
import os

import torch
from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector


def make_tiny_wavlm_xvector(
    out_dir: str,
    seed: int = 0,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 4,
    conv_dim: int = 16,
    tdnn_dim: int = 16,
    xvector_output_dim: int = 16,
) -> str:
    """Build, save and return the directory of a tiny random ``WavLMForXVector``.

    Args:
        out_dir: directory to write (created if missing).
        seed: torch seed of the random weights.
        hidden_size, num_layers, num_heads: Transformer width, depth, heads (real: 768, 12, 12).
        conv_dim: channels of each of the 7 feature convs (real: 512).
        tdnn_dim: channels of the TDNN layers (real: 512, 512, 512, 512, 1500; here the last is
            3x the others).
        xvector_output_dim: embedding size (real: 512).
    """
    config = WavLMConfig(
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=2 * hidden_size,
        conv_dim=(conv_dim,) * 7,
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_bias=False,
        feat_extract_norm="group",
        feat_extract_activation="gelu",
        do_stable_layer_norm=False,
        num_conv_pos_embeddings=128,
        num_conv_pos_embedding_groups=16,
        num_buckets=320,
        max_bucket_distance=800,
        use_weighted_layer_sum=True,
        tdnn_dim=(tdnn_dim,) * 4 + (3 * tdnn_dim,),
        tdnn_kernel=(5, 3, 3, 1, 1),
        tdnn_dilation=(1, 2, 3, 1, 1),
        xvector_output_dim=xvector_output_dim,
        architectures=["WavLMForXVector"],
    )
    torch.manual_seed(seed)
    model = WavLMForXVector(config).eval()
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                             do_normalize=False, return_attention_mask=True
                             ).save_pretrained(out_dir)
    return out_dir
