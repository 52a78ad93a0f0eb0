import random

import pytest

from espnet_sllm.prompts.masking import mask_context


def test_statistics_match_algorithm_1():
    rng = random.Random(0)
    text = "the quick brown fox jumps over the lazy dog " * 4  # 176 characters
    n, untouched, ratios = 4000, 0, []
    for _ in range(n):
        out, spans = mask_context(text, rng)
        if not spans:
            untouched += 1
            assert out == text
            continue
        lengths = {e - s for s, e in spans}
        assert 1 <= len(spans) <= 3 and len(lengths) == 1  # 1-3 spans of equal length
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # non-overlapping
        removed = len(text) - len(out)
        assert removed == sum(e - s for s, e in spans)
        assert out == "".join(c for i, c in enumerate(text)
                              if not any(s <= i < e for s, e in spans))
        ratios.append(removed / len(text))
    # P(intact) = 0.5 plus the rare draws with M < k (nothing to remove)
    assert 0.47 < untouched / n < 0.53
    assert max(ratios) <= 0.25
    # removed fraction ≈ U(0, 0.25) floored: mean a bit below 0.125
    assert 0.10 < sum(ratios) / len(ratios) < 0.13


def test_seeded_and_edge_cases():
    a = [mask_context("abcdefghijklmnopqrstuvwxyz" * 3, random.Random(7)) for _ in range(3)]
    b = [mask_context("abcdefghijklmnopqrstuvwxyz" * 3, random.Random(7)) for _ in range(3)]
    assert a == b
    assert mask_context("", random.Random(0)) == ("", [])
    assert mask_context("short", random.Random(1), keep_prob=0.0)[0] in ("short", "shrt", "sort",
                                                                          "hort", "shor", "shot")
    with pytest.raises(ValueError, match="bad masking"):
        mask_context("x", random.Random(0), keep_prob=2)
