"""Corpus BLEU with sacreBLEU, the tokenizer chosen from the language of the text scored.

sacreBLEU scores detokenized text and tokenizes it itself; its documentation asks for
``tokenize="zh"`` on Chinese targets, ``ja-mecab`` on Japanese and ``ko-mecab`` on Korean, and
``13a`` (its default) elsewhere. :func:`bleu_tokenizer_for` makes that choice from a language
label (``de``, ``English-American``, ``zh-CN``, ``Japanese``, ...) and the scoring unit of
:mod:`.normalize`:

* unit ``word`` (languages written with spaces) -> ``13a``;
* unit ``char``: Chinese and its varieties -> ``zh``; Japanese -> ``ja-mecab``, Korean ->
  ``ko-mecab`` when sacreBLEU's optional dependencies (``sacrebleu[ja]`` / ``sacrebleu[ko]``)
  are installed, otherwise ``char`` with a note saying so (the note is appended to the signature
  everywhere the signature is printed); Thai, Lao, Burmese, Khmer and other ``char`` languages
  -> ``char``.

Example:
    >>> r = corpus_bleu(["the cat sat on the mat"], ["the cat sat on a mat"], "en")
    >>> round(r.score, 2), r.tokenize
    (53.73, '13a')
"""

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

from espnet_sllm.scoring.normalize import language_key, unit_for_language

#: Language keys (see :func:`espnet_sllm.scoring.normalize.language_key`) per sacreBLEU tokenizer.
CHINESE = frozenset({"chinese", "zh", "zho", "chi", "cmn", "mandarin", "yue", "cantonese", "wuu",
                     "wu", "nan", "hak", "cn"})
JAPANESE = frozenset({"japanese", "ja", "jp", "jpn"})
KOREAN = frozenset({"korean", "ko", "kor"})


@lru_cache(maxsize=None)
def tokenizer_available(name: str) -> bool:
    """Whether sacreBLEU can build tokenizer ``name`` here (ja-mecab / ko-mecab need extras)."""
    from sacrebleu.metrics.bleu import BLEU

    try:
        BLEU(tokenize=name)
    except Exception:  # sacreBLEU raises RuntimeError / ImportError for missing extras
        return False
    return True


def bleu_tokenizer_for(lang: str, unit: Optional[str] = None) -> Tuple[str, Optional[str]]:
    """(sacreBLEU tokenizer, note) for text in language ``lang`` scored in ``unit``.

    ``unit`` defaults to the language's own (:func:`unit_for_language`); a forced ``word`` unit
    gives ``13a``. The note is None unless a preferred tokenizer is missing, e.g.
    ``"ja-mecab not installed (pip install sacrebleu[ja]): char"``.
    """
    unit = unit or unit_for_language(lang)
    if unit == "word":
        return "13a", None
    key = language_key(lang)
    if key in CHINESE:
        return "zh", None
    for keys, name, extra in ((JAPANESE, "ja-mecab", "ja"), (KOREAN, "ko-mecab", "ko")):
        if key in keys:
            if tokenizer_available(name):
                return name, None
            return "char", f"{name} not installed (pip install sacrebleu[{extra}]): char"
    return "char", None


def valid_tokenizers() -> List[str]:
    """The tokenizer names sacreBLEU accepts (``--bleu_tokenize`` choices)."""
    from sacrebleu.metrics.bleu import BLEU

    return list(BLEU.TOKENIZERS)


@dataclass
class BleuResult:
    """One corpus BLEU: the score (0-100), its sacreBLEU signature and the statistics."""

    score: float
    signature: str
    tokenize: str
    note: Optional[str]
    counts: List[int]
    totals: List[int]
    precisions: List[float]
    bp: float
    sys_len: int
    ref_len: int

    @property
    def signature_with_note(self) -> str:
        """The signature, followed by the tokenizer note when there is one."""
        return self.signature + (f" ({self.note})" if self.note else "")

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)


def corpus_bleu(
    hyps: Sequence[str],
    refs: Sequence[str],
    lang: str,
    unit: Optional[str] = None,
    tokenize: Optional[str] = None,
) -> BleuResult:
    """sacreBLEU corpus BLEU of ``hyps`` against one reference each, in language ``lang``.

    Args:
        tokenize: a sacreBLEU tokenizer name, overriding the choice of :func:`bleu_tokenizer_for`.

    Raises:
        ValueError: different numbers of hypotheses and references, or an unknown tokenizer.
    """
    from sacrebleu.metrics.bleu import BLEU

    if len(hyps) != len(refs):
        raise ValueError(f"BLEU: {len(hyps)} hypotheses for {len(refs)} references")
    note = None
    if tokenize is None:
        tokenize, note = bleu_tokenizer_for(lang, unit)
    elif tokenize not in BLEU.TOKENIZERS:
        raise ValueError(
            f"Unknown BLEU tokenizer '{tokenize}'. Valid: {', '.join(BLEU.TOKENIZERS)}"
        )
    metric = BLEU(tokenize=tokenize)
    r = metric.corpus_score(list(hyps), [list(refs)])
    return BleuResult(
        score=float(r.score),
        signature=str(metric.get_signature()),
        tokenize=tokenize,
        note=note,
        counts=list(r.counts),
        totals=list(r.totals),
        precisions=[float(p) for p in r.precisions],
        bp=float(r.bp),
        sys_len=int(r.sys_len),
        ref_len=int(r.ref_len),
    )
