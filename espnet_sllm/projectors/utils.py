"""Helpers shared by the projectors: input checks, length masks and frame stacking."""
from typing import Tuple

import torch


def check_input(
    x: torch.Tensor, x_lens: torch.Tensor, input_size: int, name: str
) -> None:
    """Raise ValueError unless x is (B, T, input_size) and x_lens is (B,).

    Values of x_lens are not checked: that would force a device-to-host sync on every step.
    """
    if x.dim() != 3:
        raise ValueError(
            f"{name}: expected x of shape (B, T, {input_size}), got {tuple(x.shape)}"
        )
    if x.size(-1) != input_size:
        raise ValueError(
            f"{name}: expected feature dim {input_size} (input_size), "
            f"got x of shape {tuple(x.shape)}"
        )
    if x_lens.dim() != 1 or x_lens.size(0) != x.size(0):
        raise ValueError(
            f"{name}: expected x_lens of shape ({x.size(0)},), got {tuple(x_lens.shape)}"
        )


def valid_mask(x_lens: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, max_len) bool, True on valid frames."""
    positions = torch.arange(max_len, device=x_lens.device)
    return positions.unsqueeze(0) < x_lens.unsqueeze(1)


def zero_padding(x: torch.Tensor, x_lens: torch.Tensor) -> torch.Tensor:
    """Zero x[b, t] for t >= x_lens[b]; x is (B, T, D).

    masked_fill (not a multiply) so that inf / NaN in the padding cannot survive as NaN.
    """
    mask = valid_mask(x_lens, x.size(1))
    return x.masked_fill(~mask.unsqueeze(-1), 0.0)


def stack_frames(
    x: torch.Tensor, x_lens: torch.Tensor, k: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Concatenate k consecutive frames along the feature dim.

    Args:
        x: (B, T, D); frames at and beyond x_lens[b] are padding.
        x_lens: (B,) long.
        k: stacking factor, >= 1.

    Returns:
        y: (B, ceil(T / k), k * D), y[b, t] = concat(x[b, t*k], ..., x[b, t*k + k - 1]).
        y_lens: (B,) = ceil(x_lens / k).

    The last, incomplete group of each utterance is completed with zeros. The padding of x is
    zeroed first, so that this group holds exactly what the utterance alone would hold: this is
    what makes the result batch-invariant.
    """
    if k < 1:
        raise ValueError(f"stack_frames: k must be >= 1, got {k}")
    x = zero_padding(x, x_lens)
    y_lens = torch.div(x_lens + (k - 1), k, rounding_mode="floor")
    if k == 1:
        return x, y_lens
    batch, length, dim = x.shape
    extra = (-length) % k
    if extra:
        x = torch.nn.functional.pad(x, (0, 0, 0, extra))
    y = x.reshape(batch, (length + extra) // k, k * dim)
    return y, y_lens
