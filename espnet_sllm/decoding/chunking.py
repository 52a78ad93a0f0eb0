"""Long audio at decoding time: equal chunks of at most 30 s, their hypotheses joined per
language; and beam sizes per language (ILT of egs2/mlc_slm decodes Thai, Japanese and
Vietnamese greedily, the rest with a beam).

* `chunk_bounds` cuts ``L`` samples into ``n = ceil(L / M)`` chunks, ``M`` = the samples of
  ``max_seconds`` (480,000 at 16 kHz and 30 s): chunk ``i`` is ``[i*L//n, (i+1)*L//n)``, so
  the chunks cover the audio exactly, without overlap, with integer boundaries, and their
  lengths differ by at most one sample (30 s + 1 sample gives two chunks of about 15 s, not
  30 s + a chunk of one sample, which no encoder would transcribe sensibly).  0 samples give
  the one empty chunk ``(0, 0)`` (a text-only utterance still gets one hypothesis).
* `join_chunks` joins the hypotheses of the chunks of one utterance: with one space, or
  without any for languages written without spaces between words (`NO_SPACE_LANGUAGES`).
* `parse_beam_per_lang` reads ``--beam_per_lang Thai=1,Japanese=1``; `split_by_beam` groups
  the utterances of a set by the beam size their language gets.

Language labels are MLC-SLM's ``utt2lang`` labels (``English-American``, ``Japanese``,
``Thai``, ...); for `join_chunks` only the part before ``-``/``_`` counts, lower-cased
(:func:`espnet_sllm.scoring.normalize.language_key`), so ISO codes (``ja``, ``zh-CN``) work too.

Usage:
    from espnet_sllm.decoding.chunking import (
        chunk_bounds, join_chunks, parse_beam_per_lang, split_by_beam)
    chunk_bounds(480001)                       # [(0, 240000), (240000, 480001)]
    join_chunks(["今日は", "晴れです"], "Japanese")   # "今日は晴れです"
    per_lang = parse_beam_per_lang("Thai=1,Japanese=1", ["Thai", "Japanese", "French"])
    split_by_beam(keys, utt2lang, default_beam=4, per_lang=per_lang)   # {4: [...], 1: [...]}
"""
import math
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from espnet_sllm.scoring.normalize import CHAR_LANGUAGES, language_key

#: Language keys (`language_key` of a label) whose chunk hypotheses are joined without a space:
#: the languages scored by characters (`CHAR_LANGUAGES`: Japanese, Thai, Chinese and its
#: varieties -- Mandarin, Cantonese, Wu, Min Nan, Hakka --, Lao, Burmese, Khmer) except Korean,
#: which puts spaces between words.
NO_SPACE_LANGUAGES = frozenset(CHAR_LANGUAGES - {"korean", "ko", "kor"})


def max_chunk_samples(fs: int = 16000, max_seconds: float = 30.0) -> int:
    """The most samples one chunk may hold: ``max_seconds * fs``, rounded down (a product
    within 1e-6 of an integer counts as that integer: 0.1 * 16000 is 1600, not 1599)."""
    if not (isinstance(fs, int) and fs > 0):
        raise ValueError(f"fs must be a positive integer, got {fs!r}")
    if not (max_seconds > 0 and math.isfinite(max_seconds)):
        raise ValueError(f"max_seconds must be a positive number, got {max_seconds!r}")
    x = max_seconds * fs
    m = round(x)
    n = m if abs(x - m) < 1e-6 else math.floor(x)
    if n < 1:
        raise ValueError(f"max_seconds={max_seconds} at fs={fs} is less than one sample")
    return int(n)


def chunk_bounds(num_samples: int, fs: int = 16000,
                 max_seconds: float = 30.0) -> List[Tuple[int, int]]:
    """``[(start, end), ...]`` sample ranges of the ``ceil(L / M)`` equal chunks of
    ``num_samples`` = L samples (M = `max_chunk_samples`; see the module docstring).

    Raises ValueError for a negative or non-integer ``num_samples``.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0:
        raise ValueError(f"num_samples must be an integer >= 0, got {num_samples!r}")
    m = max_chunk_samples(fs, max_seconds)
    if num_samples == 0:
        return [(0, 0)]
    n = -(-num_samples // m)
    bounds = [i * num_samples // n for i in range(n + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def joins_without_space(lang: str) -> bool:
    """True for a label of `NO_SPACE_LANGUAGES` (``Japanese``, ``Thai``, ``zh-CN``, ...)."""
    return language_key(lang) in NO_SPACE_LANGUAGES


def join_chunks(texts: Sequence[str], lang: str) -> str:
    """The hypothesis of an utterance from those of its chunks, in order: each stripped, empty
    ones left out, joined with one space, or with nothing for `NO_SPACE_LANGUAGES`."""
    sep = "" if joins_without_space(lang) else " "
    return sep.join(t for t in (s.strip() for s in texts) if t)


def parse_beam_per_lang(spec: str, languages: Iterable[str]) -> Dict[str, int]:
    """``"Thai=1,Japanese=1"`` -> ``{"Thai": 1, "Japanese": 1}``.

    Args:
        spec: comma-separated ``LANGUAGE=BEAM`` items (blanks around items, names and numbers
            are ignored); an empty or blank spec gives ``{}``.
        languages: the valid labels (e.g. the labels of the set's ``utt2lang``); matched
            exactly (case-sensitive, as in ``utt2lang``).

    Raises ValueError naming the item for an item without ``=``, a beam that is not an
    integer >= 1, a language given twice, and an unknown language (listing the valid ones).
    """
    valid = list(dict.fromkeys(languages))
    out: Dict[str, int] = {}
    if not spec.strip():
        return out
    for item in spec.split(","):
        item = item.strip()
        name, eq, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not name or not value:
            raise ValueError(f"beam per language: bad item {item!r} in {spec!r}; expected "
                             f"LANGUAGE=BEAM[,LANGUAGE=BEAM...], e.g. Thai=1,Japanese=1")
        if name not in valid:
            raise ValueError(f"beam per language: unknown language {name!r} in {spec!r}; "
                             f"valid: {', '.join(valid) if valid else '(none)'}")
        try:
            beam = int(value)
        except ValueError:
            beam = 0
        if not value.isascii() or beam < 1:
            raise ValueError(f"beam per language: {item!r}: the beam must be an integer >= 1, "
                             f"got {value!r}")
        if name in out:
            raise ValueError(f"beam per language: {name!r} is given twice in {spec!r}")
        out[name] = beam
    return out


def split_by_beam(keys: Iterable[str], utt2lang: Mapping[str, str], default_beam: int,
                  per_lang: Mapping[str, int],
                  languages: Optional[Iterable[str]] = None) -> Dict[int, List[str]]:
    """``{beam: [keys in input order]}``: ``per_lang[language]`` for a key whose ``utt2lang``
    label is in ``per_lang``, else ``default_beam``.

    Raises ValueError naming the key for a key without a label (or an empty one) in
    ``utt2lang``, and, when ``languages`` is given, for a key whose label is not in it.
    """
    if isinstance(default_beam, bool) or not isinstance(default_beam, int) or default_beam < 1:
        raise ValueError(f"default beam must be an integer >= 1, got {default_beam!r}")
    valid = None if languages is None else set(languages)
    out: Dict[int, List[str]] = {}
    for key in keys:
        lang = utt2lang.get(key)
        if lang is None or not lang.strip():
            raise ValueError(f"utterance {key!r} has no language label in utt2lang")
        lang = lang.strip()
        if valid is not None and lang not in valid:
            raise ValueError(f"utterance {key!r}: unknown language {lang!r}; valid: "
                             f"{', '.join(sorted(valid))}")
        out.setdefault(per_lang.get(lang, default_beam), []).append(key)
    return out


__all__ = ["NO_SPACE_LANGUAGES", "max_chunk_samples", "chunk_bounds", "joins_without_space",
           "join_chunks", "parse_beam_per_lang", "split_by_beam"]
