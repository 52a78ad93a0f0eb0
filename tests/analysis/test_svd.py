"""espnet_sllm.analysis.svd: top-k singular values of the alignment module's output or weight."""
import pytest
import torch

from espnet_sllm.analysis.svd import apply_svd, topk_activation, topk_weight


def _known(m, n, sigmas, seed=0):
    """A (m x n) = U diag(sigmas) Vᵀ with orthonormal U, V: its singular values are known."""
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(m, len(sigmas), generator=g))
    v, _ = torch.linalg.qr(torch.randn(n, len(sigmas), generator=g))
    return (u * torch.tensor(sigmas)) @ v.T, u, v


def test_topk_on_known_factors():
    sig = [9.0, 5.0, 3.0, 1.0, 0.5]
    a, u, v = _known(7, 6, sig)
    y = torch.zeros(2, 9, 6)
    y[0, :7] = a
    y[1, :3] = a[:3]
    y_k, unchanged = topk_activation(y, torch.tensor([7, 3]), 2)
    # rank 2 of row 0: U_2 Σ_2 V_2ᵀ exactly; Frobenius error² = sum of the dropped σ²
    assert torch.allclose(y_k[0, :7], (u[:, :2] * torch.tensor(sig[:2])) @ v[:, :2].T, atol=1e-5)
    err = torch.linalg.matrix_norm(y_k[0, :7] - a) ** 2
    assert err == pytest.approx(sum(s * s for s in sig[2:]), rel=1e-4)
    assert torch.count_nonzero(y_k[0, 7:]) == 0 and torch.count_nonzero(y_k[1, 3:]) == 0
    assert unchanged == 0 and torch.linalg.matrix_rank(y_k[1, :3]) == 2
    # k >= min(m, n): unchanged and counted; a text-only row (0 frames) is not an utterance
    y_k, unchanged = topk_activation(y, torch.tensor([7, 0]), 6)
    assert torch.equal(y_k, y) and unchanged == 1
    for bad in (0, -3):
        with pytest.raises(ValueError, match="--svd_topk must be a positive integer"):
            topk_activation(y, torch.tensor([7, 3]), bad)


def test_topk_weight():
    w, _, _ = _known(8, 5, [4.0, 2.0, 1.0])
    w2, same = topk_weight(w, 2)
    assert not same and torch.linalg.matrix_rank(w2) == 2
    assert torch.linalg.matrix_norm(w2 - w) ** 2 == pytest.approx(1.0, rel=1e-4)
    w5, same = topk_weight(w, 5)
    assert same and torch.equal(w5, w)


def test_apply_svd_on_a_projector():
    from espnet_sllm.projectors.linear import LinearProjector

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.projector = LinearProjector(6, 8)

    m = M()
    x, lens = torch.randn(2, 10, 6), torch.tensor([10, 4])
    before = m.projector(x, lens)[0]
    counts = apply_svd(m, 3, "activation")
    after, after_lens = m.projector(x, lens)
    assert torch.equal(after_lens, lens) and counts["utterances"] == 2
    assert torch.linalg.matrix_rank(after[0, :10]) == 3 and counts["unchanged"] == 0
    assert torch.allclose(after[1, :4], topk_activation(before, lens, 3)[0][1, :4], atol=1e-6)
    m2 = M()
    counts = apply_svd(m2, 2, "weight")
    assert torch.linalg.matrix_rank(m2.projector.linear.weight) == 2
    with pytest.raises(ValueError, match="unknown --svd_target 'bias'"):
        apply_svd(M(), 2, "bias")
