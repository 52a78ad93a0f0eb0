"""Frame stacking followed by one linear layer."""
from typing import Tuple

import torch

from espnet_sllm.projectors.abs_projector import AbsProjector
from espnet_sllm.projectors.utils import check_input, check_positive, stack_and_project


class LinearProjector(AbsProjector):
    """Stack ``downsample`` consecutive frames, then one ``nn.Linear``.

    The transferable-alignment-module system (Wu et al.) uses ``downsample=1``,
    ``input_size=1280`` (Whisper-large-v3), ``output_size=4096`` (Yi-6B).

    Shapes:
        x: (B, T, input_size), x_lens: (B,)
        y: (B, ceil(T / k), output_size), y_lens: (B,) with k = downsample

    Length rule: ``y_lens = ceil(x_lens / k)``. The last, incomplete group of k frames is
    completed with zero frames (what the utterance alone would see), so no frame is dropped.
    Output frames at and beyond y_lens[b] are set to zero.
    """

    def __init__(self, input_size: int, output_size: int, downsample: int = 1):
        super().__init__()
        check_positive(
            type(self).__name__,
            input_size=input_size,
            output_size=output_size,
            downsample=downsample,
        )
        self.input_size = input_size
        self._output_size = output_size
        self.downsample = downsample
        self.linear = torch.nn.Linear(downsample * input_size, output_size)

    def output_size(self) -> int:
        return self._output_size

    def forward(
        self, x: torch.Tensor, x_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        check_input(x, x_lens, self.input_size, type(self).__name__)
        return stack_and_project(x, x_lens, self.downsample, self.linear)
