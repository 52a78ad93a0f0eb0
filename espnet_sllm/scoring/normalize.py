"""Text normalisation and scoring units per language.

Scoring compares a normalised reference with a normalised hypothesis, token by token.
Two decisions are made here, and nowhere else, so that sclite and the pure-Python scorer see
exactly the same tokens:

* **which normaliser** cleans the text (a registry of named functions: ``mlc_slm``, ``none``,
  ``lower``, ``lower_nopunct``); an unknown name is an error listing the valid names;
* **which unit** a language is scored in: characters for languages written without spaces
  between words (Japanese, Korean, Thai, Chinese and its varieties, ...), words otherwise.

Examples:
    >>> normalize("Hello, World! It's a well-known fact.", "mlc_slm")
    "hello world it's a well-known fact"
    >>> unit_for_language("English-American"), unit_for_language("ja")
    ('word', 'char')
    >>> to_units("今日 は", "char")
    ['今', '日', 'は']
"""

import re
import unicodedata
from typing import Callable, Dict, List

UNITS = ("word", "char")

# The characters the MLC-SLM challenge deletes before scoring. Apostrophes and hyphens are
# deliberately absent: "don't" and "well-known" are single words in the references, and
# deleting them would merge or split words and change the word count.
MLC_SLM_DELETE = "!\"#$%&()*+,./:;<=>?@[\\]^_`{|}~" + "。、？！・¿¡，"

_MLC_SLM_TABLE = str.maketrans("", "", MLC_SLM_DELETE)
# Characters kept by the Unicode-category normaliser although they are punctuation (P*).
_KEEP_PUNCT = {"'", "-"}


def collapse_whitespace(text: str) -> str:
    """Join all whitespace runs (any Unicode space, incl. U+3000) into one ASCII space."""
    return " ".join(text.split())


def normalize_none(text: str) -> str:
    """Leave the text as it is, except for whitespace (tokenisation splits on it anyway)."""
    return collapse_whitespace(text)


def normalize_lower(text: str) -> str:
    """Lowercase only."""
    return collapse_whitespace(text.lower())


def normalize_mlc_slm(text: str) -> str:
    """MLC-SLM challenge normalisation.

    Lowercase, delete ``!"#$%&()*+,./:;<=>?@[\\]^_`{|}~`` and the CJK marks ``。、？！・¿¡，``,
    collapse whitespace; apostrophes and hyphens are kept.
    """
    return collapse_whitespace(text.lower().translate(_MLC_SLM_TABLE))


def normalize_lower_nopunct(text: str) -> str:
    """Lowercase and delete every Unicode punctuation character (category ``P*``).

    Broader than ``mlc_slm`` (it also removes e.g. ``《》“”「」``), which suits Chinese
    corpora whose transcripts carry full-width quotes; apostrophes and hyphens are kept for
    the same reason as in ``mlc_slm``.
    """
    kept = (
        ch
        for ch in text.lower()
        if ch in _KEEP_PUNCT or not unicodedata.category(ch).startswith("P")
    )
    return collapse_whitespace("".join(kept))


NORMALIZERS: Dict[str, Callable[[str], str]] = {
    "mlc_slm": normalize_mlc_slm,
    "none": normalize_none,
    "lower": normalize_lower,
    "lower_nopunct": normalize_lower_nopunct,
}


def get_normalizer(name: str) -> Callable[[str], str]:
    """Return the normaliser registered as ``name``.

    Raises:
        ValueError: for an unknown name; the message lists the valid names.
    """
    try:
        return NORMALIZERS[name]
    except KeyError:
        raise ValueError(
            f"Unknown normalizer '{name}'. Valid names: {', '.join(sorted(NORMALIZERS))}"
        ) from None


def normalize(text: str, name: str = "mlc_slm") -> str:
    """Normalise ``text`` with the normaliser registered as ``name``."""
    return get_normalizer(name)(text)


# Languages scored by characters, by lower-cased name or ISO 639-1/2/3 code. They are written
# without spaces between words (Korean has spaces, but MLC-SLM scores it by characters like the
# other East-Asian languages, which makes the numbers comparable with the published ones).
# Lao, Burmese and Khmer are included because they share Thai's lack of word spacing.
CHAR_LANGUAGES = frozenset(
    {
        # Japanese
        "japanese", "ja", "jp", "jpn",
        # Korean
        "korean", "ko", "kor",
        # Thai
        "thai", "th", "tha",
        # Chinese and its varieties
        "chinese", "zh", "zho", "chi", "cmn", "mandarin", "yue", "cantonese", "wuu", "wu",
        "nan", "hak", "cn",
        # other scripts without word spacing
        "lao", "lo", "burmese", "my", "mya", "khmer", "km", "khm",
    }
)


def language_key(lang: str) -> str:
    """The part of a language label that decides its unit: ``English-American`` -> ``english``.

    Accent / region suffixes follow a ``-`` or ``_`` (``zh-CN``, ``ja_JP``, ``English-Indian``).
    """
    return re.split(r"[-_]", lang.strip(), maxsplit=1)[0].lower()


def unit_for_language(lang: str) -> str:
    """``"char"`` for languages scored by characters (ja, ko, th, zh, yue, ...), else ``"word"``.

    Unknown labels (and the catch-all ``all``) are scored by words; recipes for Chinese data
    with dialect labels (KeSpeech) force characters with ``sllm_score.py --unit char``.
    """
    return "char" if language_key(lang) in CHAR_LANGUAGES else "word"


def to_units(text: str, unit: str) -> List[str]:
    """Split normalised text into scoring tokens.

    ``word``: whitespace-separated words. ``char``: every non-space Unicode code point (as
    ESPnet's char tokenizer; Thai vowel marks count as characters of their own); spaces are
    dropped (not kept as a ``<space>`` token) so that a hypothesis differing from the
    reference only in word segmentation -- frequent for Japanese and Thai -- is not penalised.
    """
    if unit == "word":
        return text.split()
    if unit == "char":
        return [ch for ch in text if not ch.isspace()]
    raise ValueError(f"Unknown unit '{unit}'. Valid units: {', '.join(UNITS)}")
