"""Frame stacking followed by one linear layer."""
from typing import Optional, Tuple

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

    ``trainable_dims`` d (Wu et al., Table 3): the layer is ``Linear(k * input_size, d)`` and the
    other ``output_size - d`` outputs (the last ones) are exactly 0, in training and decoding;
    None = all ``output_size`` outputs.
    """

    def __init__(self, input_size: int, output_size: int, downsample: int = 1,
                 trainable_dims: Optional[int] = None):
        super().__init__()
        name = type(self).__name__
        check_positive(name, input_size=input_size, output_size=output_size,
                       downsample=downsample)
        if trainable_dims is not None and not 1 <= trainable_dims <= output_size:
            raise ValueError(f"{name}: trainable_dims must be in 1..{output_size} (output_size), "
                             f"got {trainable_dims}")
        self.input_size = input_size
        self._output_size = output_size
        self.downsample = downsample
        self.trainable_dims = trainable_dims
        self.linear = torch.nn.Linear(downsample * input_size, trainable_dims or output_size)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        if self.trainable_dims is None or self.trainable_dims == self._output_size:
            return y
        # zeros, not a frozen slice of a larger layer: no weight exists to drift or to train
        return torch.nn.functional.pad(y, (0, self._output_size - self.trainable_dims))

    def output_size(self) -> int:
        return self._output_size

    def forward(
        self, x: torch.Tensor, x_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        check_input(x, x_lens, self.input_size, type(self).__name__)
        return stack_and_project(x, x_lens, self.downsample, self._head)
