"""Character-level context masking (Algorithm 1 of Peng et al., MLC-SLM 2025).

Applied in training only, independently to the history and the future context, so a model trained
on ground-truth context tolerates the errors of the first-pass hypotheses it gets at test time.
"""
import math
import random
from typing import List, Tuple


def mask_context(
    text: str,
    rng: random.Random,
    keep_prob: float = 0.5,
    max_ratio: float = 0.25,
    max_spans: int = 3,
) -> Tuple[str, List[Tuple[int, int]]]:
    """Remove a few random character spans from ``text``.

    With probability ``keep_prob`` the text is returned intact. Otherwise
    α ~ U(0, max_ratio), T = len(text), M = ⌊αT⌋, k = RandomInt(1, min(max_spans, max(1, ⌊M/3⌋))),
    s = ⌊M/k⌋, and k non-overlapping substrings of length s are removed at uniformly random places.
    The paper draws each start as r_i = RandomInt(0, T - s); here every span also starts in
    [0, T - s], and the k starts are drawn jointly so that the spans never overlap (exactly k·s
    characters are removed).

    Returns (masked text, removed spans as (start, end) indices into ``text``, sorted).
    """
    if not 0.0 <= keep_prob <= 1.0 or not 0.0 <= max_ratio <= 1.0 or max_spans < 1:
        raise ValueError(
            f"bad masking parameters: keep_prob={keep_prob}, max_ratio={max_ratio}, "
            f"max_spans={max_spans}"
        )
    if not text or rng.random() < keep_prob:
        return text, []
    T = len(text)
    M = math.floor(rng.uniform(0.0, max_ratio) * T)
    k = rng.randint(1, min(max_spans, max(1, M // 3)))
    s = M // k
    if s == 0:
        return text, []
    # Uniform placement of k non-overlapping spans: choose k sorted offsets in the T - k*s
    # characters that stay, then shift the i-th span right by the i spans before it.
    offsets = sorted(rng.randint(0, T - k * s) for _ in range(k))
    spans = [(o + i * s, o + i * s + s) for i, o in enumerate(offsets)]
    pieces, prev = [], 0
    for start, end in spans:
        pieces.append(text[prev:start])
        prev = end
    pieces.append(text[prev:])
    return "".join(pieces), spans
