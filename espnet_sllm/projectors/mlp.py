"""Frame stacking followed by a two-layer MLP."""
from typing import Tuple

import torch

from espnet_sllm.projectors.abs_projector import AbsProjector
from espnet_sllm.projectors.utils import check_input, check_positive, stack_and_project

_ACTIVATIONS = {
    "relu": torch.nn.ReLU,
    "gelu": torch.nn.GELU,
    "silu": torch.nn.SiLU,
    "tanh": torch.nn.Tanh,
}


class MLPProjector(AbsProjector):
    """Stack ``downsample`` consecutive frames, then Linear -> activation -> Linear.

    The bi-directional-context system of MLC-SLM (Peng et al.) uses ``downsample=5`` on
    Whisper-large-v3 (1280) into Gemma-2-2B (2304).

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
        downsample: int = 5,
        hidden: int = 2048,
        activation: str = "relu",
    ):
        super().__init__()
        name = type(self).__name__
        check_positive(
            name,
            input_size=input_size,
            output_size=output_size,
            hidden=hidden,
            downsample=downsample,
        )
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"{name}: unknown activation {activation!r}, "
                f"choose one of {sorted(_ACTIVATIONS)}"
            )
        self.input_size = input_size
        self._output_size = output_size
        self.downsample = downsample
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(downsample * input_size, hidden),
            _ACTIVATIONS[activation](),
            torch.nn.Linear(hidden, output_size),
        )

    def output_size(self) -> int:
        return self._output_size

    def forward(
        self, x: torch.Tensor, x_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        check_input(x, x_lens, self.input_size, type(self).__name__)
        return stack_and_project(x, x_lens, self.downsample, self.mlp)
