"""Strided 1-D convolution followed by a linear layer."""
from typing import Optional, Tuple

import torch

from espnet_sllm.projectors.abs_projector import AbsProjector
from espnet_sllm.projectors.utils import check_input, check_positive, zero_padding


class Conv1dProjector(AbsProjector):
    """Conv1d (stride k) -> ReLU [-> Conv1d (stride 1) -> ReLU]* -> Linear.

    Ideal-LLM (Xue et al.) uses a 2x convolutional downsampling followed by a linear layer into
    the LLM; the KeSpeech system (Xu et al.) compares this projector at k = 1/2/4/8.

    Shapes:
        x: (B, T, input_size), x_lens: (B,)
        y: (B, ceil(T / k), output_size), y_lens: (B,) with k = downsample

    Length rule: ``y_lens = ceil(x_lens / k)``. Every convolution gets a total zero padding of
    ``kernel_size - 1`` frames (``left = (kernel_size - k) // 2`` for the strided layer, so that
    the window is centred on its group of k frames; ``(kernel_size - 1) // 2`` for the stride-1
    layers, the rest on the right), which makes
    ``floor((L + kernel_size - 1 - kernel_size) / k) + 1 == ceil(L / k)`` for every L >= 1.

    ``kernel_size`` defaults to ``downsample + 2``: output frame t sees its own k input frames
    ``[t*k, t*k + k - 1]`` plus one neighbour on each side. ``kernel_size < downsample`` is
    refused because input frames would be skipped.

    Batch invariance: frames at and beyond the valid length are zeroed before every convolution,
    which is exactly the zero padding the utterance alone would get from the convolution's own
    padding. Output frames at and beyond y_lens[b] are set to zero.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        downsample: int = 2,
        hidden: int = 1024,
        kernel_size: Optional[int] = None,
        num_layers: int = 1,
    ):
        super().__init__()
        name = type(self).__name__
        check_positive(
            name,
            input_size=input_size,
            output_size=output_size,
            hidden=hidden,
            downsample=downsample,
            num_layers=num_layers,
        )
        if kernel_size is None:
            kernel_size = downsample + 2
        if kernel_size < downsample:
            raise ValueError(
                f"{name}: kernel_size ({kernel_size}) must be >= downsample "
                f"({downsample}), otherwise input frames are skipped"
            )
        self.input_size = input_size
        self._output_size = output_size
        self.downsample = downsample
        self.kernel_size = kernel_size
        self.convs = torch.nn.ModuleList()
        self.paddings = []
        for i in range(num_layers):
            stride = downsample if i == 0 else 1
            left = (kernel_size - stride) // 2
            self.paddings.append((left, kernel_size - 1 - left))
            self.convs.append(
                torch.nn.Conv1d(
                    input_size if i == 0 else hidden, hidden, kernel_size, stride=stride
                )
            )
        self.activation = torch.nn.ReLU()
        self.linear = torch.nn.Linear(hidden, output_size)

    def output_size(self) -> int:
        return self._output_size

    def forward(
        self, x: torch.Tensor, x_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        check_input(x, x_lens, self.input_size, type(self).__name__)
        y_lens = torch.div(x_lens + (self.downsample - 1), self.downsample, rounding_mode="floor")
        lens = x_lens
        for i, (conv, padding) in enumerate(zip(self.convs, self.paddings)):
            if i == 1:
                lens = y_lens
            # Zero the padding before each conv: bias + ReLU of the previous layer leave the
            # padding frames non-zero, and they would leak into the last valid frames.
            x = zero_padding(x, lens)
            x = torch.nn.functional.pad(x.transpose(1, 2), padding)
            x = self.activation(conv(x)).transpose(1, 2)
        y = zero_padding(self.linear(x), y_lens)
        return y, y_lens
