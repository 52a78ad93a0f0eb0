"""Abstract base of every projector (speech encoder output -> LLM embedding space)."""
from abc import ABC, abstractmethod
from typing import Tuple

import torch


class AbsProjector(torch.nn.Module, ABC):
    """Maps encoder frames to LLM input embeddings.

    Contract:
        forward(x, x_lens) -> (y, y_lens)
            x:      (B, T, input_size) float, frames at and beyond x_lens[b] are padding
            x_lens: (B,) long, 1 <= x_lens[b] <= T
            y:      (B, T', output_size()), frames at and beyond y_lens[b] are padding
            y_lens: (B,) long, the exact number of valid output frames of each utterance;
                    y_lens[b] depends only on x_lens[b] (never on T or on the other utterances),
                    and y[b, :y_lens[b]] depends only on x[b, :x_lens[b]].
        output_size() -> int
    """

    @abstractmethod
    def output_size(self) -> int:
        raise NotImplementedError

    @abstractmethod
    def forward(
        self, x: torch.Tensor, x_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError
