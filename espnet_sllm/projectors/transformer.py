"""Transformer encoder layers followed by frame stacking and a linear layer."""
from typing import Tuple

import torch

from espnet_sllm.projectors.abs_projector import AbsProjector
from espnet_sllm.projectors.utils import (
    check_dropout,
    check_heads,
    check_input,
    check_positive,
    stack_and_project,
    valid_mask,
    zero_padding,
)


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
        check_positive(
            name,
            input_size=input_size,
            output_size=output_size,
            hidden=hidden,
            ffn=ffn,
            num_heads=num_heads,
            downsample=downsample,
            num_layers=num_layers,
        )
        check_heads(name, hidden, num_heads)
        check_dropout(name, dropout)
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
        return stack_and_project(self.norm(x), x_lens, self.downsample, self.output_layer)
