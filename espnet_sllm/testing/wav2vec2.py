"""Tiny random MMS-architecture wav2vec 2.0 checkpoints for tests and the CPU debug recipes.

Same architecture as facebook/mms-300m and facebook/mms-1b except for the sizes: layer-norm conv
feature encoder with the real kernels (10,3,3,3,3,2,2) and strides (5,2,2,2,2,2,2) (so the same
400-sample window and 320-sample hop), conv bias, stable layer norm (pre-LN Transformer with a
final layer norm), a grouped positional conv with weight norm, saved with ``save_pretrained`` as
``Wav2Vec2ForPreTraining`` (how the MMS pre-trained releases are saved, keys ``wav2vec2.*`` plus
the quantizer heads) or ``Wav2Vec2ForCTC`` (mms-1b-all), with the release's
``preprocessor_config.json`` (do_normalize, return_attention_mask).
"""
import os

import torch
from transformers import (
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    Wav2Vec2ForPreTraining,
    Wav2Vec2Model,
)

_ARCHITECTURES = {
    "Wav2Vec2ForPreTraining": Wav2Vec2ForPreTraining,
    "Wav2Vec2ForCTC": Wav2Vec2ForCTC,
    "Wav2Vec2Model": Wav2Vec2Model,
}


def make_tiny_mms(
    out_dir: str,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 4,
    conv_dim: int = 16,
    seed: int = 0,
    architecture: str = "Wav2Vec2ForPreTraining",
) -> str:
    """Build, save and return the directory of a tiny random MMS-layout wav2vec 2.0 model.

    Args:
        out_dir: directory to write (created if missing).
        hidden_size, num_layers, num_heads: Transformer width, depth, heads (mms-1b: 1280, 48, 16).
        conv_dim: channels of each of the 7 feature convs (real: 512).
        seed: torch seed of the random weights.
        architecture: Wav2Vec2ForPreTraining (mms-300m / mms-1b), Wav2Vec2ForCTC (mms-1b-all)
            or Wav2Vec2Model.
    """
    if architecture not in _ARCHITECTURES:
        raise ValueError(f"architecture must be one of {sorted(_ARCHITECTURES)}, got "
                         f"{architecture!r}")
    config = Wav2Vec2Config(
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=2 * hidden_size,
        conv_dim=(conv_dim,) * 7,
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_bias=True,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        feat_extract_activation="gelu",
        num_conv_pos_embeddings=128,
        num_conv_pos_embedding_groups=16,
        # MMS's pre-training settings (masking is switched off by the encoder when it loads).
        mask_time_prob=0.05,
        layerdrop=0.0,
        codevector_dim=16,
        proj_codevector_dim=16,
        num_codevectors_per_group=8,
        num_codevector_groups=2,
        vocab_size=32,
        architectures=[architecture],
    )
    torch.manual_seed(seed)
    model = _ARCHITECTURES[architecture](config)
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                             do_normalize=True, return_attention_mask=True).save_pretrained(out_dir)
    return out_dir
