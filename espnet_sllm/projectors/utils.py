"""Helpers shared by the projectors: argument and input checks, length masks, frame stacking."""
from typing import Callable, Tuple

import torch


def check_positive(name: str, **values: int) -> None:
    """Raise ValueError naming the first of ``values`` that is < 1."""
    for key, value in values.items():
        if value < 1:
            raise ValueError(f"{name}: {key} must be >= 1, got {value}")


def check_dropout(name: str, dropout: float) -> None:
    """Raise ValueError unless 0 <= dropout < 1."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout}")


def check_heads(name: str, hidden: int, num_heads: int) -> None:
    """Raise ValueError unless the attention width splits evenly over the heads."""
    if hidden % num_heads != 0:
        raise ValueError(
            f"{name}: hidden ({hidden}) must be divisible by num_heads ({num_heads})"
        )


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
    check_positive("stack_frames", k=k)
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


def stack_and_project(
    x: torch.Tensor,
    x_lens: torch.Tensor,
    k: int,
    head: Callable[[torch.Tensor], torch.Tensor],
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``stack_frames`` then ``head``, with the output frames beyond y_lens set to zero.

    The head's biases would otherwise make the padding frames non-zero.
    Returns (y (B, ceil(T / k), D_out), y_lens = ceil(x_lens / k)).
    """
    x, y_lens = stack_frames(x, x_lens, k)
    return zero_padding(head(x), y_lens), y_lens
