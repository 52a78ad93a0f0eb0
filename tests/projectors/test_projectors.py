"""Tests of espnet_sllm.projectors: shapes, exact lengths, gradients, batch invariance, errors."""
import math

import pytest
import torch

from espnet_sllm.projectors import (
    AbsProjector,
    Conv1dProjector,
    LinearProjector,
    MLPProjector,
    QFormerBlip2Projector,
    QFormerProjector,
    TransformerProjector,
    projector_classes,
)
from espnet_sllm.projectors.utils import stack_frames

IDIM, ODIM = 6, 5
KS = [1, 2, 4, 5, 8]
NAMES = [
    "linear",
    "linear_dims",
    "mlp",
    "conv1d",
    "conv1d_2layers",
    "conv1d_head_hidden",
    "transformer",
    "qformer",
    "qformer_blip2",
]
QUERY_NAMES = {"qformer", "qformer_blip2"}  # fixed number of output frames (queries)


def make(name: str, k: int) -> AbsProjector:
    """Tiny projector; for the Q-Formers, k is the number of queries."""
    torch.manual_seed(0)
    if name == "linear":
        return LinearProjector(IDIM, ODIM, downsample=k)
    if name == "linear_dims":
        return LinearProjector(IDIM, ODIM, downsample=k, trainable_dims=3)
    if name == "mlp":
        return MLPProjector(IDIM, ODIM, downsample=k, hidden=8)
    if name == "conv1d":
        return Conv1dProjector(IDIM, ODIM, downsample=k, hidden=8)
    if name == "conv1d_2layers":
        return Conv1dProjector(IDIM, ODIM, downsample=k, hidden=8, num_layers=2)
    if name == "conv1d_head_hidden":
        return Conv1dProjector(IDIM, ODIM, downsample=k, kernel_size=k, hidden=8, head_hidden=12)
    if name == "transformer":
        return TransformerProjector(
            IDIM, ODIM, downsample=k, hidden=8, num_layers=2, num_heads=2, ffn=16
        )
    if name == "qformer":
        return QFormerProjector(
            IDIM, ODIM, num_queries=k, hidden=8, num_layers=2, num_heads=2, ffn=16
        )
    if name == "qformer_blip2":
        # 3 layers: cross-attention in layers 0 and 2 only (frequency 2). No dropout, as the
        # others here (its default is BLIP-2's 0.1): train-mode outputs are compared.
        return QFormerBlip2Projector(
            IDIM, ODIM, num_queries=k, hidden=8, num_layers=3, num_heads=2, ffn=16, dropout=0.0
        )
    raise KeyError(name)


def expected_lens(name: str, k: int, x_lens: torch.Tensor) -> torch.Tensor:
    if name in QUERY_NAMES:
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
    if name in QUERY_NAMES:
        assert y.shape == (len(lengths), k, ODIM)
    else:
        assert y.shape == (len(lengths), math.ceil(x.size(1) / k), ODIM)
        assert y.size(1) == int(y_lens.max())
        # Padding output frames are zeroed, so downstream code may sum over them safely.
        for b, n in enumerate(y_lens.tolist()):
            assert torch.all(y[b, n:] == 0)
    assert torch.isfinite(y).all()


def gradient_free(name: str, k: int, pname: str) -> bool:
    """Parameters whose gradient is zero by construction (or rounding noise around zero).

    The key bias of a softmax attention adds the same logit to every key of a row, which
    softmax ignores; with a single query, the query/key weights of the self-attention over the
    queries see one key, whose softmax weight is 1 whatever they are. (The home-made
    ``qformer`` packs q, k, v into one ``in_proj`` tensor, so its v part hides this.)
    """
    if name != "qformer_blip2":
        return False
    if pname.endswith("attention.key.bias"):
        return True
    return k == 1 and ".attention.attention." in pname and ".value." not in pname


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
        if not gradient_free(name, k, pname):
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
    with pytest.raises(ValueError, match="head_hidden"):
        Conv1dProjector(IDIM, ODIM, head_hidden=0)
    with pytest.raises(ValueError, match="num_queries"):
        QFormerBlip2Projector(IDIM, ODIM, num_queries=0, hidden=8, num_heads=2)
    with pytest.raises(ValueError, match="cross_attention_frequency"):
        QFormerBlip2Projector(IDIM, ODIM, hidden=8, num_heads=2, cross_attention_frequency=0)
    with pytest.raises(ValueError, match="divisible"):
        QFormerBlip2Projector(IDIM, ODIM, hidden=10, num_heads=4)
    with pytest.raises(ValueError, match="dropout"):
        QFormerBlip2Projector(IDIM, ODIM, hidden=8, num_heads=2, dropout=1.0)


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
    assert set(projector_classes) == {
        "linear",
        "mlp",
        "conv1d",
        "transformer",
        "qformer",
        "qformer_blip2",
    }
    for cls in projector_classes.values():
        assert issubclass(cls, AbsProjector)


def test_conv1d_state_dict_keys():
    """head_hidden=None keeps the keys of checkpoints written before head_hidden existed."""
    keys = set(Conv1dProjector(IDIM, ODIM, downsample=2, hidden=8).state_dict())
    assert keys == {"convs.0.weight", "convs.0.bias", "linear.weight", "linear.bias"}
    keys = set(Conv1dProjector(IDIM, ODIM, downsample=2, hidden=8, head_hidden=12).state_dict())
    assert keys == {
        "convs.0.weight",
        "convs.0.bias",
        "linear1.weight",
        "linear1.bias",
        "linear2.weight",
        "linear2.bias",
    }


@pytest.mark.parametrize("k", [1, 2, 4])
def test_conv1d_head_hidden_matches_slam(k):
    """SLAM-LLM's EncoderProjectorCov1d, written out; it drops the last T mod k frames."""
    torch.manual_seed(0)
    proj = Conv1dProjector(IDIM, ODIM, downsample=k, kernel_size=k, hidden=8, head_hidden=12)
    conv = torch.nn.Conv1d(IDIM, 8, kernel_size=k, stride=k, padding=0)
    linear1, linear2 = torch.nn.Linear(8, 12), torch.nn.Linear(12, ODIM)
    conv.load_state_dict(proj.convs[0].state_dict())
    linear1.load_state_dict(proj.linear1.state_dict())
    linear2.load_state_dict(proj.linear2.state_dict())
    x, x_lens = batch([4 * k + k - 1])
    y, y_lens = proj(x, x_lens)
    ref = torch.relu(conv(x.transpose(1, 2))).transpose(1, 2)
    ref = linear2(torch.relu(linear1(ref)))
    assert ref.size(1) == x.size(1) // k
    assert int(y_lens[0]) == math.ceil(x.size(1) / k)
    torch.testing.assert_close(y[:, : ref.size(1)], ref)


def test_qformer_blip2_matches_slam():
    """SLAM-LLM's EncoderProjectorQFormer forward (no padding): norm(linear(qformer(...)))."""
    proj = make("qformer_blip2", 4).eval()
    x, x_lens = batch([9, 9])
    y, _ = proj(x, x_lens)
    hidden = proj.qformer(
        query_embeds=proj.query.expand(2, -1, -1),
        encoder_hidden_states=x,
        encoder_attention_mask=torch.ones(2, 9, dtype=torch.long),
        return_dict=True,
    ).last_hidden_state
    torch.testing.assert_close(y, proj.norm(proj.linear(hidden)))


def test_qformer_blip2_config_and_init():
    torch.manual_seed(0)
    proj = QFormerBlip2Projector(IDIM, ODIM, hidden=64, num_layers=3, num_heads=4, ffn=32)
    config = proj.qformer.config
    assert config.encoder_hidden_size == IDIM
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (64, 3, 4)
    assert (config.intermediate_size, config.cross_attention_frequency) == (32, 2)
    assert config.hidden_dropout_prob == config.attention_probs_dropout_prob == 0.1
    layers = proj.qformer.encoder.layer
    assert [layer.has_cross_attention for layer in layers] == [True, False, True]
    # Queries ~ N(0, 1) as SLAM-LLM (not BLIP-2's 0.02); (1, Q, hidden) as SLAM-LLM.
    assert proj.query.shape == (1, 64, 64)
    assert 0.9 < float(proj.query.detach().std()) < 1.1
    # Dropout is live in train mode and off in eval mode.
    x, x_lens = batch([5, 3])
    proj.train()
    assert not torch.equal(proj(x, x_lens)[0], proj(x, x_lens)[0])
    proj.eval()
    assert torch.equal(proj(x, x_lens)[0], proj(x, x_lens)[0])


@pytest.mark.parametrize(
    "module_dtype,input_dtype", [(torch.bfloat16, torch.float32), (torch.float32, torch.bfloat16)]
)
def test_qformer_blip2_dtypes(module_dtype, input_dtype):
    proj = make("qformer_blip2", 3).to(module_dtype)
    x, x_lens = batch([5, 3])
    y, y_lens = proj(x.to(input_dtype), x_lens)
    assert y.dtype == module_dtype
    assert y.shape == (2, 3, ODIM)
    assert torch.isfinite(y).all()


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def linear_params(i: int, o: int) -> int:
    return i * o + o


# The KeSpeech system (Xu et al.) in SLAM-LLM: data2vec2 large (1024) into Qwen2-0.5B (896), k=4.
ENC, LLM, K = 1024, 896, 4


def test_paper_size_parameter_counts():
    # mlp = SLAM-LLM's EncoderProjectorConcat ("Linear" in the paper): 4*1024 -> 2048 -> 896.
    mlp = MLPProjector(ENC, LLM, downsample=K, hidden=2048, activation="relu")
    assert n_params(mlp) == linear_params(K * ENC, 2048) + linear_params(2048, LLM)
    assert n_params(mlp) == 10_226_560
    # conv1d = SLAM-LLM's EncoderProjectorCov1d.
    conv = Conv1dProjector(ENC, LLM, downsample=K, kernel_size=K, hidden=1024, head_hidden=2048)
    expected = (ENC * 1024 * K + 1024) + linear_params(1024, 2048) + linear_params(2048, LLM)
    assert n_params(conv) == expected == 8_130_432
    # transformer: input Linear, 2 pre-LN layers, final LayerNorm, Linear(4*1024 -> 896).
    trans = TransformerProjector(
        ENC, LLM, downsample=K, hidden=1024, num_layers=2, num_heads=16, ffn=4096
    )
    layer = (
        linear_params(1024, 3 * 1024)  # q, k, v
        + linear_params(1024, 1024)  # attention output
        + linear_params(1024, 4096)
        + linear_params(4096, 1024)
        + 2 * 2 * 1024  # two LayerNorms
    )
    expected = linear_params(ENC, 1024) + 2 * layer + 2 * 1024 + linear_params(K * 1024, LLM)
    assert n_params(trans) == expected == 29_915_008


def test_paper_size_parameter_count_qformer_blip2():
    from transformers import Blip2QFormerConfig, Blip2QFormerModel

    proj = QFormerBlip2Projector(ENC, LLM)
    reference = Blip2QFormerModel(
        Blip2QFormerConfig(
            encoder_hidden_size=ENC,
            num_hidden_layers=8,
            hidden_size=768,
            num_attention_heads=12,
            intermediate_size=3072,
            cross_attention_frequency=2,
        )
    )
    head = 64 * 768 + linear_params(768, LLM) + 2 * LLM
    assert n_params(proj) == n_params(reference) + head
    # By hand: input LayerNorm; 8 layers of self-attention + FFN; cross-attention in 4 of them.
    self_attn = 4 * linear_params(768, 768) + 2 * 768
    cross_attn = 2 * linear_params(768, 768) + 2 * linear_params(ENC, 768) + 2 * 768
    ffn = linear_params(768, 3072) + linear_params(3072, 768) + 2 * 768
    qformer = 2 * 768 + 8 * (self_attn + ffn) + 4 * cross_attn
    assert n_params(reference) == qformer
    assert n_params(proj) == qformer + head == 68_472_960


def test_linear_trainable_dims_stay_exactly_zero():
    """trainable_dims d: Linear(k·D_in, d), the last output_size - d outputs exactly 0, also after
    an optimizer step (Wu et al., Table 3); d outside 1..output_size is an error naming it."""
    torch.manual_seed(0)
    proj = LinearProjector(IDIM, ODIM, downsample=2, trainable_dims=3)
    assert tuple(proj.linear.weight.shape) == (3, 2 * IDIM)
    assert sum(p.numel() for p in proj.parameters()) == 3 * 2 * IDIM + 3
    x, lens = torch.randn(2, 7, IDIM), torch.tensor([7, 4])
    opt = torch.optim.SGD(proj.parameters(), lr=0.5)
    for _ in range(2):
        y, y_lens = proj(x, lens)
        assert y.shape == (2, 4, ODIM) and y_lens.tolist() == [4, 2]
        assert torch.count_nonzero(y[..., 3:]) == 0 and torch.count_nonzero(y[0, :, :3]) > 0
        opt.zero_grad()
        y.pow(2).sum().backward()
        opt.step()
    full = LinearProjector(IDIM, ODIM, trainable_dims=ODIM)
    assert torch.count_nonzero(full(x, lens)[0][0]) > 0
    for bad in (0, ODIM + 1):
        with pytest.raises(ValueError, match=rf"trainable_dims must be in 1..{ODIM}.*got {bad}"):
            LinearProjector(IDIM, ODIM, trainable_dims=bad)
