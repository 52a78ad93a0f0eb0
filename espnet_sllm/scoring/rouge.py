"""ROUGE-L with rouge-score, in the units (words or characters) of the language scored.

rouge-score's default tokenizer lowercases, replaces every character outside ``[a-z0-9]`` with a
space and splits: Chinese, Japanese, Korean or Thai text becomes an empty token list, so every
Chinese answer would score 0 (``tests/scoring/test_tasks.py`` shows it). Here the scorer gets a
tokenizer of our own (:class:`UnitTokenizer`): the text is normalised with one of
:mod:`.normalize`'s normalisers and cut into the same units as the error rates (words for
languages written with spaces, one token per character for ja/ko/th/zh/...); rouge-score then
computes the LCS F-measure as usual. No stemmer (the Porter stemmer is English-only).

For lowercase ASCII English without apostrophes or hyphens the tokens, and so the scores, equal
rouge-score's default ones; apostrophes and hyphens stay inside words (``don't`` is one token,
rouge-score's default makes ``don t``), and accented or non-Latin letters are kept (the default
drops them).

The set score is the mean of the sentence F-measures, x 100 (the convention of the papers the
recipes reproduce).

Example:
    >>> round(rouge_l("你好世界", "你世界好", "char"), 4)  # LCS 3 of 4 characters
    0.75
"""

from typing import Callable, List, Sequence

from espnet_sllm.scoring.normalize import get_normalizer, to_units


class UnitTokenizer:
    """rouge-score tokenizer: ``normalizer`` then :func:`to_units` in ``unit``."""

    def __init__(self, unit: str, normalizer: str = "none"):
        self.unit = unit
        self.normalizer: Callable[[str], str] = get_normalizer(normalizer)
        to_units("", unit)  # an unknown unit is an error now, not at the first sentence

    def tokenize(self, text: str) -> List[str]:
        return to_units(self.normalizer(text), self.unit)


def make_scorer(unit: str, normalizer: str = "none"):
    """A ``rouge_score.rouge_scorer.RougeScorer`` for ROUGE-L with :class:`UnitTokenizer`."""
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(
        ["rougeL"], use_stemmer=False, tokenizer=UnitTokenizer(unit, normalizer)
    )


def rouge_l(ref: str, hyp: str, unit: str, normalizer: str = "none") -> float:
    """ROUGE-L F-measure (0-1) of one hypothesis against its reference."""
    return make_scorer(unit, normalizer).score(ref, hyp)["rougeL"].fmeasure


def rouge_l_scores(
    refs: Sequence[str], hyps: Sequence[str], unit: str, normalizer: str = "none"
) -> List[float]:
    """Sentence ROUGE-L F-measures (0-1), one per (reference, hypothesis) pair.

    Raises:
        ValueError: different numbers of references and hypotheses.
    """
    if len(refs) != len(hyps):
        raise ValueError(f"ROUGE-L: {len(hyps)} hypotheses for {len(refs)} references")
    scorer = make_scorer(unit, normalizer)
    return [scorer.score(r, h)["rougeL"].fmeasure for r, h in zip(refs, hyps)]


def mean_rouge_l(
    refs: Sequence[str], hyps: Sequence[str], unit: str, normalizer: str = "none"
) -> float:
    """Mean sentence ROUGE-L F-measure x 100 (0 for an empty set)."""
    scores = rouge_l_scores(refs, hyps, unit, normalizer)
    return 100.0 * sum(scores) / len(scores) if scores else 0.0
