"""Keep the top-k singular values of the alignment module's output, or of its weight (Wu et al.,
§2.3.3 and Table 2): how much of the 4096-dimensional speech embedding the LLM needs.

* ``topk_activation``: per utterance, A (m x n: m valid frames, n = the LLM width) = the
  projector's output; A = U Σ Vᵀ (float32); A_k = U_k Σ_k V_kᵀ replaces A before the prompt is
  spliced. k >= min(m, n) leaves A as it is (counted: with k = 1000 and utterances under 20 s
  at 50 Hz, every utterance is unchanged). Padding frames are not part of A and stay 0.
* ``topk_weight``: W (out x in) of the linear alignment module replaced by its rank-k
  approximation (§3.3 also says "of the linear alignment module": the other reading).

``apply_svd(model, k, target)`` installs either on an ``ESPnetSLLMModel`` for decoding
(``sllm_inference --svd_topk k --svd_target activation|weight``) and returns a counter.
"""
from typing import Dict, Tuple

import torch

TARGETS = ("activation", "weight")


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ValueError(f"--svd_topk must be a positive integer, got {k!r}")


def rank_k(a: torch.Tensor, k: int) -> torch.Tensor:
    """The best rank-k approximation of a 2-D tensor (float32 SVD, result in a's dtype)."""
    u, s, vh = torch.linalg.svd(a.float(), full_matrices=False)
    return ((u[:, :k] * s[:k]) @ vh[:k]).to(a.dtype)


def topk_activation(y: torch.Tensor, y_lens: torch.Tensor, k: int) -> Tuple[torch.Tensor, int]:
    """y (B, T, D), y_lens (B,) -> (y with each utterance's valid frames replaced by their rank-k
    approximation, the number of utterances with frames that k left unchanged)."""
    _check_k(k)
    out = y.clone()
    unchanged = 0
    for b, m in enumerate(y_lens.tolist()):
        if m == 0:  # a text-only row: no frames, nothing to approximate
            continue
        if k >= min(m, y.size(-1)):
            unchanged += 1
            continue
        out[b, :m] = rank_k(y[b, :m], k)
    return out, unchanged


def topk_weight(w: torch.Tensor, k: int) -> Tuple[torch.Tensor, bool]:
    """(rank-k approximation of the weight (out, in), whether k left it unchanged)."""
    _check_k(k)
    if k >= min(w.shape):
        return w.clone(), True
    return rank_k(w, k), False


def apply_svd(model: torch.nn.Module, k: int, target: str = "activation") -> Dict[str, int]:
    """Install the top-k truncation on ``model.projector``; returns the live counter
    {"utterances": rows with frames seen, "unchanged": ...} (activation) or {"unchanged": 0|1}
    (weight)."""
    _check_k(k)
    if target not in TARGETS:
        raise ValueError(f"unknown --svd_target {target!r}; valid: {list(TARGETS)}")
    counts = {"k": k, "utterances": 0, "unchanged": 0}
    if target == "weight":
        linear = getattr(model.projector, "linear", None)
        if not isinstance(linear, torch.nn.Linear):
            raise ValueError(f"--svd_target weight needs a projector with one linear layer "
                             f"(projector: linear), got {type(model.projector).__name__}")
        with torch.no_grad():
            w, same = topk_weight(linear.weight, k)
            linear.weight.copy_(w)
        counts["unchanged"] = int(same)
        return counts

    def hook(module, inputs, output):
        y, y_lens = output
        y_k, unchanged = topk_activation(y, y_lens, k)
        counts["utterances"] += int((y_lens > 0).sum())
        counts["unchanged"] += unchanged
        return y_k, y_lens

    model.projector.register_forward_hook(hook)
    return counts
