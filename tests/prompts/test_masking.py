import collections
import math
import random

import numpy as np
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


# --- span placement and number of spans (Algorithm 1: k = RandomInt(1, min(3, max(1, ⌊M/3⌋))),
# spans at uniformly random places) --------------------------------------------------------------

LONG = ("the quick brown fox jumps over the lazy dog while one two three four five six seven "
        "eight nine ten hello world this is a small test sentence ") * 2


def expected_span_counts(T, max_ratio, max_spans, grid=200000):
    """P(k = j | something is removed), integrating α ~ U(0, max_ratio) numerically."""
    probs, masked = [0.0] * (max_spans + 1), 0
    for j in range(grid):
        M = math.floor((j + 0.5) / grid * max_ratio * T)
        if M == 0:  # s = 0: nothing removed
            continue
        masked += 1
        K = min(max_spans, max(1, M // 3))
        for k in range(1, K + 1):
            probs[k] += 1.0 / K
    return [p / masked for p in probs]


@pytest.mark.parametrize("max_spans", [3, 5])
def test_number_of_spans_is_uniform_up_to_max_spans(max_spans):
    rng = random.Random(11)
    T, n = len(LONG), 6000
    counts = collections.Counter()
    for _ in range(n):
        out, spans = mask_context(LONG, rng, keep_prob=0.0, max_spans=max_spans)
        if spans:
            counts[len(spans)] += 1
            s = spans[0][1] - spans[0][0]
            M_low = len(spans) * s  # k·⌊M/k⌋ <= M < k·(⌊M/k⌋ + 1)
            assert M_low <= math.floor(0.25 * T) and all(e - b == s for b, e in spans)
    total = sum(counts.values())
    assert set(counts) == set(range(1, max_spans + 1))  # "always one span" fails here
    expected = expected_span_counts(T, 0.25, max_spans)
    for k in range(1, max_spans + 1):
        assert abs(counts[k] / total - expected[k]) < 0.025, (k, counts, expected)
    # long contexts mostly have M >= 3·max_spans: every count is common
    assert min(counts.values()) / total > 0.5 / max_spans


def test_span_positions_are_uniform_over_the_allowed_range():
    rng = random.Random(12)
    T = len(LONG)
    starts, ends, first_starts, pooled = [], [], [], []
    for _ in range(6000):
        out, spans = mask_context(LONG, rng, keep_prob=0.0)
        if not spans:
            continue
        k, s = len(spans), spans[0][1] - spans[0][0]
        assert 0 <= spans[0][0] and spans[-1][1] <= T
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
        # every span starts in [0, T - s] (Algorithm 1: r_i = RandomInt(0, T - s))
        assert all(0 <= b <= T - s for b, _ in spans)
        starts += [b for b, _ in spans]
        ends += [e for _, e in spans]
        first_starts.append(spans[0][0])
        # sorted uniform offsets in the T - k·s kept characters, i-th shifted by i·s: unshifted
        # and pooled they are uniform over 0 .. T - k·s
        pooled += [(b - i * s) / (T - k * s) for i, (b, _) in enumerate(spans)]
    # the whole range is used: spans at the very start and the very end, not all at offset 0
    assert min(starts) == 0 and max(ends) == T
    assert sum(b == 0 for b in first_starts) / len(first_starts) < 0.05
    assert len(set(starts)) > 0.9 * T
    deciles = collections.Counter(min(int(u * 10), 9) for u in pooled)
    for d in range(10):
        assert abs(deciles[d] / len(pooled) - 0.1) < 0.02, (d, deciles)
    # and within the text: every character is removed about equally often away from the edges
    hits = [0] * T
    for b, e in zip(starts, ends):
        for i in range(b, e):
            hits[i] += 1
    middle = hits[T // 4: 3 * T // 4]
    assert max(middle) < 1.3 * min(middle)


# --- masking through the preprocessor ------------------------------------------------------------

PREV = "the quick brown fox jumps over the lazy dog and the small test sentence"
NEXT = "hello world this is a small test sentence one two three four five six"


def is_masked_version(masked, text, max_ratio=0.25):
    """``masked`` is ``text`` less 1 .. ⌊max_ratio·|text|⌋ characters (a subsequence of it)."""
    removed = len(text) - len(masked)
    rest = iter(text)
    return 0 < removed <= math.floor(max_ratio * len(text)) and all(c in rest for c in masked)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from espnet_sllm.testing.llm import make_tiny_llm

    return make_tiny_llm(str(tmp_path_factory.mktemp("tok")), "qwen2", save_weights=False)


def preprocessor(tokenizer_dir, train, **kw):
    from espnet_sllm.prompts.preprocessor import SLLMPreprocessor

    return SLLMPreprocessor(
        train=train, tokenizer_name_or_path=tokenizer_dir,
        prompt_template="{speech} {context}transcribe speech to text",
        context_templates={"default": {"history": "{text_prev} ", "future": "{text_next} "}},
        **kw)


def test_preprocessor_masks_in_training_only(tokenizer_dir):
    data = {"speech": np.ones(1600, np.float32), "text": "one two", "lang": "English",
            "text_prev": PREV, "text_next": NEXT}
    train = preprocessor(tokenizer_dir, True, context_masking=True)
    random.seed(0)
    n, prev_masked, next_masked, both = 2000, 0, 0, 0
    for i in range(n):
        fields = train.prompt_fields(f"u{i % 7}", dict(data))
        p, f = fields["text_prev"] != PREV, fields["text_next"] != NEXT
        assert not p or is_masked_version(fields["text_prev"], PREV)
        assert not f or is_masked_version(fields["text_next"], NEXT)
        prev_masked, next_masked, both = prev_masked + p, next_masked + f, both + (p and f)
    # each side: the coin flip (0.5) times P(M >= 1) = 1 - 1 / (0.25·T); independent sides
    for masked, text in ((prev_masked, PREV), (next_masked, NEXT)):
        assert abs(masked / n - 0.5 * (1 - 1 / (0.25 * len(text)))) < 0.04
    assert abs(both / n - prev_masked * next_masked / n ** 2) < 0.03
    # through __call__: the masked context is what reaches the prompt tokens
    random.seed(0)
    suffixes = {tuple(train("u1", dict(data))["suffix"].tolist()) for _ in range(50)}
    assert len(suffixes) > 10
    # inference (train=False) and training without context_masking never mask
    for pre in (preprocessor(tokenizer_dir, False, context_masking=True),
                preprocessor(tokenizer_dir, True, context_masking=False)):
        for i in range(200):
            fields = pre.prompt_fields(f"u{i}", dict(data))
            assert (fields["text_prev"], fields["text_next"]) == (PREV, NEXT)
        assert len({tuple(pre("u1", dict(data))["suffix"].tolist()) for _ in range(20)}) == 1


def test_preprocessor_draws_follow_the_global_seed_uid_and_seed(tokenizer_dir):
    conf = dict(context_masking=True, context_masking_conf={"keep_prob": 0.0})
    data = {"speech": np.ones(1600, np.float32), "text_prev": PREV, "text_next": NEXT}

    def draws(pre, uids, global_seed):
        random.seed(global_seed)  # what ESPnet's per-epoch / per-worker seeding sets
        return [tuple(pre.prompt_fields(u, dict(data))[n] for n in ("text_prev", "text_next"))
                for u in uids]

    uids = [f"u{i}" for i in range(20)]
    pre = preprocessor(tokenizer_dir, True, seed=0, **conf)
    a = draws(pre, uids, 5)
    assert a == draws(preprocessor(tokenizer_dir, True, seed=0, **conf), uids, 5)  # reproducible
    assert len(set(a)) >= 18  # the same context, a fresh mask per utterance
    # a new visit of the same utterances (next epoch / other worker): other masks
    for other in (draws(pre, uids, 6), draws(preprocessor(tokenizer_dir, True, seed=1, **conf),
                                             uids, 5)):
        assert sum(x != y for x, y in zip(a, other)) >= 18
    # the same utterance seen again within an epoch gets a fresh draw
    assert len(set(draws(pre, ["u0"] * 20, 5))) >= 18
