"""Transformer encoder layers followed by frame stacking and a linear layer."""
from typing import Tuple

import torch

from espnet_sllm.projectors.abs_projector import AbsProjector
from espnet_sllm.projectors.utils import check_input, stack_frames, valid_mask, zero_padding


class TransformerProjector(AbsProjector):
    """Linear -> Transformer encoder layers -> stack k frames -> Linear.

    One of the four projectors compared at k = 1/2/4/8 by the KeSpeech system (Xu et al.).
    Pre-LN layers (``norm_first``) with a final LayerNorm; self-attention uses a key padding
    mask, so valid frames never attend to padding. No positional encoding is added: the
    frames come from a speech encoder and already carry their position through its context.

    Shapes:
        x: (B, T, input_size), x_lens: (B,)
        y: (B, ceil(T / k), output_size), y_lens: (B,) with k = downsample

    Length rule: ``y_lens = ceil(x_lens / k)``; the last, incomplete group of k frames is
    completed with zero frames. Output frames at and beyond y_lens[b] are set to zero.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        downsample: int = 1,
        hidden: int = 512,
        num_layers: int = 2,
        num_heads: int = 4,
        ffn: int = 2048,
        dropout: float = 0.0,
    ):
        super().__init__()
        name = type(self).__name__
        if min(input_size, output_size, hidden, ffn, num_heads) < 1:
            raise ValueError(
                f"{name}: input_size, output_size, hidden, ffn and num_heads must be >= 1, "
                f"got {input_size}, {output_size}, {hidden}, {ffn}, {num_heads}"
            )
        if downsample < 1:
            raise ValueError(f"{name}: downsample must be >= 1, got {downsample}")
        if num_layers < 1:
            raise ValueError(f"{name}: num_layers must be >= 1, got {num_layers}")
        if hidden % num_heads != 0:
            raise ValueError(
                f"{name}: hidden ({hidden}) must be divisible by num_heads ({num_heads})"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout}")
        self.input_size = input_size
        self._output_size = output_size
        self.downsample = downsample
        self.input_layer = torch.nn.Linear(input_size, hidden)
        # A ModuleList rather than nn.TransformerEncoder: the latter may turn the batch into a
        # nested tensor and back, which changes what the padding frames hold.
        self.layers = torch.nn.ModuleList(
            torch.nn.TransformerEncoderLayer(
                d_model=hidden,
                nhead=num_heads,
                dim_feedforward=ffn,
                dropout=dropout,
                batch_first=True,
                norm_first=True,
            )
            for _ in range(num_layers)
        )
        self.norm = torch.nn.LayerNorm(hidden)
        self.output_layer = torch.nn.Linear(downsample * hidden, output_size)

    def output_size(self) -> int:
        return self._output_size

    def forward(
        self, x: torch.Tensor, x_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        check_input(x, x_lens, self.input_size, type(self).__name__)
        # Zeroed first: huge or non-finite padding would turn into NaN through the attention
        # weights (0 * inf), even though those keys are masked.
        x = self.input_layer(zero_padding(x, x_lens))
        padding_mask = ~valid_mask(x_lens, x.size(1))
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=padding_mask)
        x = self.norm(x)
        x, y_lens = stack_frames(x, x_lens, self.downsample)
        y = zero_padding(self.output_layer(x), y_lens)
        return y, y_lens
