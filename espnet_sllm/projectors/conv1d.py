"""Strided 1-D convolution followed by a linear (or two-layer) head."""
from typing import Optional, Tuple

import torch

from espnet_sllm.projectors.abs_projector import AbsProjector
from espnet_sllm.projectors.utils import check_input, check_positive, zero_padding


class Conv1dProjector(AbsProjector):
    """Conv1d (stride k) -> ReLU [-> Conv1d (stride 1) -> ReLU]* -> head.

    The head is one Linear (``head_hidden: null``, the default) or, with ``head_hidden: H2``,
    Linear -> ReLU -> Linear: ``e = W2 · ReLU(W1 · c + b1) + b2`` where c is the ReLU'd conv
    output, W1 is (H2, hidden) and W2 is (output_size, H2).

    Ideal-LLM (Xue et al.) uses a 2x convolutional downsampling followed by a linear layer into
    the LLM; the KeSpeech system (Xu et al.) compares this projector at k = 1/2/4/8.

    SLAM-LLM parity (``EncoderProjectorCov1d``, the projector of the KeSpeech paper):
    ``conv1d {downsample: k, kernel_size: k, hidden: 1024, head_hidden: 2048}`` on a 1024-dim
    encoder is Conv1d(1024 -> 1024, kernel k, stride k, no padding) -> ReLU ->
    Linear(1024 -> 2048) -> ReLU -> Linear(2048 -> D), with the same parameter count. Its state
    dict maps as ``conv1d.* -> convs.0.*``, ``linear1.* -> linear1.*``, ``linear2.* -> linear2.*``.
    One difference in length: SLAM-LLM gives ``floor(T / k)`` frames and drops the last
    ``T mod k`` encoder frames, while this projector keeps them as one more output frame (the
    group completed with zeros, see the length rule); the first ``floor(T / k)`` frames are the
    same.

    State-dict keys: the single-Linear head is ``linear.*`` (as before ``head_hidden`` existed,
    so older checkpoints still load); the two-layer head is ``linear1.*`` and ``linear2.*``.

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
        head_hidden: Optional[int] = None,
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
        if head_hidden is not None:
            check_positive(name, head_hidden=head_hidden)
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
        self.head_hidden = head_hidden
        if head_hidden is None:
            self.linear = torch.nn.Linear(hidden, output_size)
        else:
            self.linear1 = torch.nn.Linear(hidden, head_hidden)
            self.linear2 = torch.nn.Linear(head_hidden, output_size)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T', hidden) -> (B, T', output_size): Linear, or Linear -> ReLU -> Linear."""
        if self.head_hidden is None:
            return self.linear(x)
        return self.linear2(self.activation(self.linear1(x)))

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
        y = zero_padding(self.head(x), y_lens)
        return y, y_lens
