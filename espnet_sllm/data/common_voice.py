"""Reader of Common Voice releases (single-segment read speech) into Kaldi data directories.

Used by the MLC-SLM recipe's system S4 (MLC-SLM training data + Common Voice 21.0 ``train`` of
the same 11 languages).  A Common Voice release, once extracted, is one folder per language::

    <cv_root>/<lang>/train.tsv   (and dev.tsv, test.tsv, validated.tsv, other.tsv, ...)
    <cv_root>/<lang>/clips/<path>.mp3

A split ``.tsv`` is UTF-8, TAB-separated, with a header row.  Columns are read BY NAME
(their set and order change between releases): ``path`` (clip file name under ``clips/``) and
``sentence`` are required, ``client_id`` (the hashed speaker) is used when present.  Quotes
are literal characters of the sentence (``csv.QUOTE_NONE``), never field delimiters.

Ids (prefixed by the speaker id, the Kaldi rule)::

    speaker    cv-<lang>-<client_id[:8]>               cv-en-1a2b3c4d
    utterance  cv-<lang>-<client_id[:8]>-<clip stem>   cv-en-1a2b3c4d-common_voice_en_123

``<lang>`` is the Common Voice code (``en``, ``ja``, ...).  Without a ``client_id`` column (or
with an empty value) the speaker is unknown, the utterance is ``cv-<lang>-<clip stem>`` and it
is its own speaker.  Two speakers whose ids share their first 8 hex digits share a speaker id,
which is harmless: nothing downstream adapts per speaker, and utterance ids stay unique
through the clip name.

Audio: ``wav.scp`` holds the absolute ``.mp3`` path.  libsndfile (>= 1.1, the one bundled with
the soundfile wheels in tools/venv) decodes MP3, so stage 2 (``espnet_sllm.bin.format_data``)
reads the clips directly and resamples them from 48/32 kHz to 16 kHz; no ffmpeg is needed.

Labels (``utt2lang``): the MLC-SLM language names (`CV_LANGUAGES`), so that the language-specific
prompts of MLC-SLM are used for Common Voice too.  Common Voice English has no accent label; its
label is plain ``English`` (the prompt selector falls back from ``English-American`` etc. to
``English``, so the English prompt is shared; per-accent scoring is unaffected because Common
Voice is used for training only).

Checks: skipped and counted (logged, not errors): rows with an empty sentence, rows whose clip
file is missing (CV releases list a few clips that are absent), blank lines.  Errors
(ValueError naming ``file:line``): a header without ``path`` or ``sentence``, a row whose column
count differs from the header's, an empty ``path``, whitespace in a clip name, and a clip listed
twice.  Common Voice is single-segment data: no ``segments``, no ``text_prev`` / ``text_next``.

Usage:
    python -m espnet_sllm.data.common_voice --cv_root /db/cv-corpus-21.0 \\
        --langs en fr de it ja ko pt ru es th vi --split train --out data/cv_train \\
        [--max_utts_per_lang N]

    ``--langs`` also accepts MLC-SLM names (``English``, ``English-American``, ``Japanese``);
    without it, all 11 MLC-SLM languages are read.

    from espnet_sllm.data.common_voice import read_common_voice
    utts, stats = read_common_voice("/db/cv-corpus-21.0/ja", split="train")
"""
import argparse
import csv
import logging
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from espnet_sllm.data.kaldi_dir import Utterance, write_data_dir

logger = logging.getLogger(__name__)

# Common Voice language code -> MLC-SLM language label (utt2lang).
CV_LANGUAGES: Dict[str, str] = {
    "en": "English",
    "fr": "French",
    "de": "German",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "pt": "Portuguese",
    "ru": "Russian",
    "es": "Spanish",
    "th": "Thai",
    "vi": "Vietnamese",
}
REQUIRED_COLUMNS = ("path", "sentence")
SPEAKER_COLUMN = "client_id"
SPEAKER_PREFIX_LEN = 8


@dataclass
class CommonVoiceStats:
    """What the reader kept and skipped, for the log of the data preparation stage."""

    rows: int = 0
    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    per_language: Counter = field(default_factory=Counter)

    def update(self, other: "CommonVoiceStats") -> None:
        self.rows += other.rows
        self.kept += other.kept
        self.skipped.update(other.skipped)
        self.per_language.update(other.per_language)

    def summary(self) -> str:
        skipped = ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())) or "none"
        langs = ", ".join(f"{k}={v}" for k, v in sorted(self.per_language.items()))
        return f"rows={self.rows} kept={self.kept} skipped: {skipped}; per language: {langs}"


def language_code(lang: str) -> str:
    """Common Voice code of ``lang``: a code (``ja``) or an MLC-SLM name/label
    (``Japanese``, ``English-American``), case-insensitively."""
    low = lang.lower()
    if low in CV_LANGUAGES:
        return low
    base = low.split("-")[0]
    for code, name in CV_LANGUAGES.items():
        if name.lower() in (low, base):
            return code
    raise ValueError(
        f"unknown language {lang!r}: give a Common Voice code or an MLC-SLM name "
        f"({', '.join(f'{c}={n}' for c, n in CV_LANGUAGES.items())})"
    )


def read_common_voice(
    lang_dir: str,
    split: str = "train",
    lang_label: Optional[str] = None,
    max_utts: Optional[int] = None,
) -> Tuple[List[Utterance], CommonVoiceStats]:
    """Read one split of one Common Voice language folder.

    Args:
        lang_dir: ``<cv_root>/<lang>``; its base name is the Common Voice code used in ids.
        split: name of the ``.tsv`` to read (``train``, ``dev``, ``test``, ``validated``, ...).
        lang_label: ``utt2lang`` label; default: the MLC-SLM name of the code (`CV_LANGUAGES`).
        max_utts: keep only the first N usable rows of the file (None or 0: all).

    Returns:
        (utterances in file order, statistics).  Each utterance has ``wav`` = absolute path of
        the clip, ``text`` = the sentence (stripped, otherwise verbatim), ``lang``, ``spk``.
    """
    lang_dir = os.path.normpath(lang_dir)
    code = os.path.basename(lang_dir)
    if lang_label is None:
        if code not in CV_LANGUAGES:
            raise ValueError(
                f"{lang_dir}: no MLC-SLM label for Common Voice language {code!r}; "
                f"pass lang_label (known: {', '.join(sorted(CV_LANGUAGES))})"
            )
        lang_label = CV_LANGUAGES[code]
    if not code or any(c.isspace() for c in code):
        raise ValueError(f"{lang_dir}: language folder name {code!r} cannot be part of an id")
    tsv = os.path.join(lang_dir, f"{split}.tsv")
    if not os.path.isfile(tsv):
        raise FileNotFoundError(
            f"{tsv}: not found (expected a Common Voice language folder with {split}.tsv and "
            f"clips/)"
        )
    clips = os.path.join(lang_dir, "clips")

    stats = CommonVoiceStats()
    utts: List[Utterance] = []
    line_of: Dict[str, int] = {}
    missing_examples: List[str] = []
    # utf-8-sig: tolerate a byte-order mark before the header.
    with open(tsv, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE, strict=False)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{tsv}:1: empty file, expected a header row")
        col = {name.strip(): i for i, name in enumerate(header)}
        absent = [c for c in REQUIRED_COLUMNS if c not in col]
        if absent:
            raise ValueError(
                f"{tsv}:1: header lacks column(s) {absent}; found: {[h.strip() for h in header]}"
            )
        i_path, i_sentence = col["path"], col["sentence"]
        i_client = col.get(SPEAKER_COLUMN)
        for row in reader:
            lineno = reader.line_num
            where = f"{tsv}:{lineno}"
            if not row or (len(row) == 1 and not row[0].strip()):
                stats.skipped["blank_line"] += 1
                continue
            stats.rows += 1
            if len(row) != len(header):
                raise ValueError(
                    f"{where}: {len(row)} TAB-separated columns, but the header has "
                    f"{len(header)}: {chr(9).join(row)!r}"
                )
            sentence = row[i_sentence].strip()
            if not sentence:
                stats.skipped["empty_sentence"] += 1
                logger.debug("%s: empty sentence, row skipped", where)
                continue
            path = row[i_path].strip()
            if not path:
                raise ValueError(f"{where}: empty 'path' column")
            stem = os.path.splitext(os.path.basename(path))[0]
            if not stem or any(c.isspace() for c in stem):
                raise ValueError(f"{where}: clip name {path!r} cannot be part of an id")
            clip = os.path.join(clips, path)
            if not os.path.isfile(clip):
                stats.skipped["missing_clip"] += 1
                if len(missing_examples) < 3:
                    missing_examples.append(clip)
                logger.debug("%s: clip %s not found, row skipped", where, clip)
                continue
            client = row[i_client].strip() if i_client is not None else ""
            if any(c.isspace() for c in client):
                raise ValueError(f"{where}: client_id {client!r} contains whitespace")
            if client:
                spk = f"cv-{code}-{client[:SPEAKER_PREFIX_LEN]}"
                uttid = f"{spk}-{stem}"
            else:
                spk = None  # unknown speaker: the utterance is its own speaker
                uttid = f"cv-{code}-{stem}"
            if uttid in line_of:
                raise ValueError(
                    f"{where}: clip {path!r} gives utterance id {uttid!r}, already given by "
                    f"line {line_of[uttid]}"
                )
            line_of[uttid] = lineno
            utts.append(Utterance(uttid=uttid, wav=os.path.abspath(clip), spk=spk,
                                  text=sentence, lang=lang_label))
            stats.kept += 1
            stats.per_language[lang_label] += 1
            if max_utts and stats.kept >= max_utts:
                logger.info("%s: stopping after the first %d usable rows (max_utts)",
                            tsv, max_utts)
                break
    if stats.skipped["missing_clip"]:
        logger.warning("%s: %d rows skipped because their clip is missing (e.g. %s)", tsv,
                       stats.skipped["missing_clip"], ", ".join(missing_examples))
    if stats.skipped["empty_sentence"]:
        logger.warning("%s: %d rows skipped because their sentence is empty", tsv,
                       stats.skipped["empty_sentence"])
    if not utts:
        raise ValueError(f"{tsv}: no usable row ({stats.summary()})")
    return utts, stats


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write a Kaldi data directory from Common Voice language folders.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Usage:")[1],
    )
    parser.add_argument("--cv_root", required=True,
                        help="extracted release, holding one folder per language (en/, fr/ ...)")
    parser.add_argument("--langs", nargs="+", default=None,
                        help="Common Voice codes or MLC-SLM names (default: all 11 of MLC-SLM)")
    parser.add_argument("--split", default="train", help="the <split>.tsv to read")
    parser.add_argument("--out", required=True, help="output data directory, e.g. data/cv_train")
    parser.add_argument("--max_utts_per_lang", type=int, default=0,
                        help="keep the first N usable rows of each language (0: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")

    codes: List[str] = []
    for lang in args.langs or list(CV_LANGUAGES):
        code = language_code(lang)
        if code not in codes:
            codes.append(code)
    if not os.path.isdir(args.cv_root):
        raise SystemExit(f"ERROR: Common Voice root {args.cv_root!r} does not exist")

    utts: List[Utterance] = []
    total = CommonVoiceStats()
    for code in codes:
        lang_dir = os.path.join(args.cv_root, code)
        if not os.path.isdir(lang_dir):
            raise SystemExit(
                f"ERROR: {lang_dir}: no such folder; --cv_root must hold one folder per "
                f"language ({', '.join(codes)})"
            )
        try:
            lang_utts, stats = read_common_voice(lang_dir, args.split,
                                                 max_utts=args.max_utts_per_lang or None)
        except (ValueError, FileNotFoundError) as e:
            raise SystemExit(f"ERROR: {e}") from None
        logger.info("%s: %s", lang_dir, stats.summary())
        utts.extend(lang_utts)
        total.update(stats)
    write_data_dir(args.out, utts)
    print(f"{args.out}: {total.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
