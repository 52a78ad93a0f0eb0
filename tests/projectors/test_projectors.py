"""Tests of espnet_sllm.projectors: shapes, exact lengths, gradients, batch invariance, errors."""
import math

import pytest
import torch

from espnet_sllm.projectors import (
    AbsProjector,
    Conv1dProjector,
    LinearProjector,
    MLPProjector,
    QFormerProjector,
    TransformerProjector,
    projector_classes,
)
from espnet_sllm.projectors.utils import stack_frames

IDIM, ODIM = 6, 5
KS = [1, 2, 4, 5, 8]
NAMES = ["linear", "mlp", "conv1d", "conv1d_2layers", "transformer", "qformer"]


def make(name: str, k: int) -> AbsProjector:
    """Tiny projector; for the Q-Former, k is the number of queries."""
    torch.manual_seed(0)
    if name == "linear":
        return LinearProjector(IDIM, ODIM, downsample=k)
    if name == "mlp":
        return MLPProjector(IDIM, ODIM, downsample=k, hidden=8)
    if name == "conv1d":
        return Conv1dProjector(IDIM, ODIM, downsample=k, hidden=8)
    if name == "conv1d_2layers":
        return Conv1dProjector(IDIM, ODIM, downsample=k, hidden=8, num_layers=2)
    if name == "transformer":
        return TransformerProjector(
            IDIM, ODIM, downsample=k, hidden=8, num_layers=2, num_heads=2, ffn=16
        )
    if name == "qformer":
        return QFormerProjector(
            IDIM, ODIM, num_queries=k, hidden=8, num_layers=2, num_heads=2, ffn=16
        )
    raise KeyError(name)


def expected_lens(name: str, k: int, x_lens: torch.Tensor) -> torch.Tensor:
    if name == "qformer":
        return torch.full_like(x_lens, k)
    return torch.tensor([math.ceil(n / k) for n in x_lens.tolist()], dtype=torch.long)


def batch(lengths, t=None, seed=1):
    torch.manual_seed(seed)
    x_lens = torch.tensor(lengths, dtype=torch.long)
    t = max(lengths) if t is None else t
    return torch.randn(len(lengths), t, IDIM), x_lens


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("name", NAMES)
def test_shape_and_lengths(name, k):
    proj = make(name, k)
    assert isinstance(proj, AbsProjector)
    assert proj.output_size() == ODIM
    lengths = [1, max(k - 1, 1), k, k + 1, 3 * k + 2, 17]
    x, x_lens = batch(lengths)
    y, y_lens = proj(x, x_lens)
    assert y_lens.dtype == torch.long
    assert torch.equal(y_lens, expected_lens(name, k, x_lens))
    if name == "qformer":
        assert y.shape == (len(lengths), k, ODIM)
    else:
        assert y.shape == (len(lengths), math.ceil(x.size(1) / k), ODIM)
        assert y.size(1) == int(y_lens.max())
        # Padding output frames are zeroed, so downstream code may sum over them safely.
        for b, n in enumerate(y_lens.tolist()):
            assert torch.all(y[b, n:] == 0)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("name", NAMES)
def test_forward_backward(name, k):
    proj = make(name, k)
    x, x_lens = batch([3, 2 * k + 1, 11])
    x.requires_grad_(True)
    y, y_lens = proj(x, x_lens)
    torch.manual_seed(2)
    (y * torch.randn_like(y)).sum().backward()
    for pname, p in proj.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname
    assert torch.isfinite(x.grad).all()
    # Padding input frames must not influence anything.
    for b, n in enumerate(x_lens.tolist()):
        assert torch.all(x.grad[b, n:] == 0)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("name", NAMES)
def test_batch_invariance(name, k, train):
    proj = make(name, k).train(train)
    lengths = [1, k + 1, 7, 23]
    # T larger than the longest utterance as well: extra padding must change nothing.
    x, x_lens = batch(lengths, t=26)
    with torch.set_grad_enabled(train):
        y, y_lens = proj(x, x_lens)
        for b, n in enumerate(lengths):
            y1, y1_lens = proj(x[b : b + 1, :n], x_lens[b : b + 1])
            assert int(y1_lens[0]) == int(y_lens[b])
            m = int(y1_lens[0])
            assert y1.size(1) >= m
            torch.testing.assert_close(y[b, :m], y1[0, :m], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fill", ["large", "nan", "inf"])
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("name", NAMES)
def test_padding_garbage_invariance(name, k, fill):
    proj = make(name, k)
    x, x_lens = batch([2, k + 3, 19], t=21)
    y, y_lens = proj(x, x_lens)
    dirty = x.clone()
    torch.manual_seed(3)
    for b, n in enumerate(x_lens.tolist()):
        if fill == "large":
            dirty[b, n:] = 1e6 * torch.randn_like(dirty[b, n:])
        else:
            dirty[b, n:] = float(fill)
    y2, y2_lens = proj(dirty, x_lens)
    assert torch.equal(y_lens, y2_lens)
    for b, n in enumerate(y_lens.tolist()):
        torch.testing.assert_close(y[b, :n], y2[b, :n], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(y2).all()


@pytest.mark.parametrize("name", NAMES)
def test_bad_input(name):
    proj = make(name, 2)
    x, x_lens = batch([3, 5])
    with pytest.raises(ValueError, match="feature dim"):
        proj(torch.randn(2, 5, IDIM + 1), x_lens)
    with pytest.raises(ValueError, match="shape"):
        proj(x[0], x_lens)
    with pytest.raises(ValueError, match="x_lens"):
        proj(x, x_lens[:1])


@pytest.mark.parametrize("cls", [LinearProjector, MLPProjector, Conv1dProjector, TransformerProjector])
@pytest.mark.parametrize("downsample", [0, -1])
def test_bad_downsample(cls, downsample):
    with pytest.raises(ValueError, match="downsample"):
        cls(IDIM, ODIM, downsample=downsample)


def test_bad_constructor_args():
    with pytest.raises(ValueError, match="input_size"):
        LinearProjector(0, ODIM)
    with pytest.raises(ValueError, match="activation"):
        MLPProjector(IDIM, ODIM, activation="swish2")
    with pytest.raises(ValueError, match="kernel_size"):
        Conv1dProjector(IDIM, ODIM, downsample=4, kernel_size=3)
    with pytest.raises(ValueError, match="num_layers"):
        Conv1dProjector(IDIM, ODIM, num_layers=0)
    with pytest.raises(ValueError, match="divisible"):
        TransformerProjector(IDIM, ODIM, hidden=10, num_heads=4)
    with pytest.raises(ValueError, match="dropout"):
        TransformerProjector(IDIM, ODIM, hidden=8, num_heads=2, dropout=1.0)
    with pytest.raises(ValueError, match="num_queries"):
        QFormerProjector(IDIM, ODIM, num_queries=0, hidden=8, num_heads=2)
    with pytest.raises(ValueError, match="divisible"):
        QFormerProjector(IDIM, ODIM, hidden=10, num_heads=4)


@pytest.mark.parametrize("k,kernel_size", [(1, 1), (1, 3), (2, 2), (2, 3), (2, 5), (3, 3), (4, 7)])
def test_conv1d_length_formula(k, kernel_size):
    proj = Conv1dProjector(IDIM, ODIM, downsample=k, hidden=4, kernel_size=kernel_size)
    for n in range(1, 20):
        x, x_lens = batch([n])
        y, y_lens = proj(x, x_lens)
        assert y.size(1) == int(y_lens[0]) == math.ceil(n / k)


def test_conv1d_default_kernel():
    assert Conv1dProjector(IDIM, ODIM, downsample=4, hidden=4).kernel_size == 6


def test_stack_frames_values():
    x = torch.arange(2 * 5 * 2, dtype=torch.float).reshape(2, 5, 2)
    x_lens = torch.tensor([5, 3])
    y, y_lens = stack_frames(x, x_lens, 2)
    assert torch.equal(y_lens, torch.tensor([3, 2]))
    assert y.shape == (2, 3, 4)
    assert torch.equal(y[0, 0], torch.tensor([0.0, 1.0, 2.0, 3.0]))
    # Last incomplete group: completed with zeros, for the full-length and the padded utterance.
    assert torch.equal(y[0, 2], torch.tensor([8.0, 9.0, 0.0, 0.0]))
    assert torch.equal(y[1, 1], torch.tensor([14.0, 15.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="k must be >= 1"):
        stack_frames(x, x_lens, 0)


def test_registry():
    assert set(projector_classes) == {"linear", "mlp", "conv1d", "transformer", "qformer"}
    for cls in projector_classes.values():
        assert issubclass(cls, AbsProjector)
