"""Reader of Common Voice releases (single-segment read speech) into Kaldi data directories.

Used by the MLC-SLM recipe's system S4 (MLC-SLM training data + Common Voice 21.0 ``train`` of
the same 11 languages); its table reader (`read_cv_table`) is shared with the CoVoST 2 reader
(``espnet_sllm.data.corpora.covost2``), which takes transcripts and speakers from ``validated.tsv``.
A Common Voice release, once extracted, is one folder per language::

    <cv_root>/<lang>/train.tsv   (and dev.tsv, test.tsv, validated.tsv, other.tsv, ...)
    <cv_root>/<lang>/clips/<path>.mp3

A split ``.tsv`` is UTF-8, TAB-separated, with a header row.  Columns are read BY NAME
(their set and order change between releases: v4 has ``client_id path sentence up_votes
down_votes age gender accent``, later releases add ``locale``, ``segment``, ``sentence_id``,
...): ``path`` (clip file name under ``clips/``) and ``sentence`` are required, ``client_id``
(the hashed speaker) is used when present.  Quotes are literal characters of the sentence
(``csv.QUOTE_NONE``), never field delimiters; a backslash is an ordinary character too.  A
carriage return inside a sentence (a stray CR; a CRLF line end is just a line end) becomes a
space: a Kaldi value is one line.

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

Checks: dropped and counted (`ReaderStats`, logged with examples, not errors): rows with bytes
that are not UTF-8 (``not_utf8``), rows with an empty sentence (``empty_sentence``) and rows
whose clip file is missing (``missing_clip``: CV releases list a few clips that are absent);
with ``strict`` (``--strict true``) each of them is an error instead.  Blank lines are not rows
and are passed over.  Errors (`ReaderError`, a ValueError naming ``file:line``; the command
line prints ``ERROR: ...`` and exits with 1): a header without ``path`` or ``sentence`` or that
is not UTF-8, a row whose column count differs from the header's, an empty ``path``, whitespace
in a clip name or a client_id, a clip listed twice (the message names both lines), and a file
without any usable row.  Common Voice is single-segment data: no ``segments``, no
``text_prev`` / ``text_next``.

Usage:
    python -m espnet_sllm.data.corpora.common_voice --cv_root /db/cv-corpus-21.0 \\
        --langs en fr de it ja ko pt ru es th vi --split train --out data/cv_train \\
        [--max_utts_per_lang N] [--strict true]

    ``--langs`` also accepts MLC-SLM names (``English``, ``English-American``, ``Japanese``);
    without it, all 11 MLC-SLM languages are read.

    from espnet_sllm.data.corpora.common_voice import read_common_voice, read_cv_table
    utts, stats = read_common_voice("/db/cv-corpus-21.0/ja", split="train")
    table = read_cv_table("/db/cv-corpus-4/en/validated.tsv")   # clip path -> CvRow
"""
import argparse
import logging
import os
import sys
from typing import Container, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from espnet_sllm.data.kaldi_dir import Utterance, write_data_dir
from espnet_sllm.data.corpora.reader_utils import (
    ReaderError,
    ReaderStats,
    add_strict_option,
    iter_lines,
    run_main,
)

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


class CvRow(NamedTuple):
    """One row of a Common Voice table: the hashed speaker ("" when the release has none),
    the sentence (stripped; may be empty: the caller decides), and the line it came from."""

    client_id: str
    sentence: str
    line: int


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


def clip_stem(path: str, where: str) -> str:
    """The id part of a clip (``common_voice_en_123`` of ``common_voice_en_123.mp3``)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    if not stem or any(c.isspace() for c in stem):
        raise ReaderError(f"{where}: clip name {path!r} cannot be part of an id")
    return stem


def speaker_and_utterance(code: str, client_id: str, stem: str) -> Tuple[Optional[str], str]:
    """``(speaker id or None, utterance id)`` of a clip (see the module docstring)."""
    if client_id:
        spk = f"cv-{code}-{client_id[:SPEAKER_PREFIX_LEN]}"
        return spk, f"{spk}-{stem}"
    return None, f"cv-{code}-{stem}"  # unknown speaker: the utterance is its own speaker


def iter_cv_table(tsv: str, stats: Optional[ReaderStats] = None) -> Iterator[Tuple[str, CvRow]]:
    """Yield ``(clip path, CvRow)`` for every row of a Common Voice ``<split>.tsv``, in file
    order, with the checks of the module docstring (`ReaderError` naming ``file:line``).

    Rows are checked as they are read, so a caller that stops early reads only part of the
    file; a clip listed twice is an error when its second row is reached.  A row that is not
    UTF-8 is dropped and counted in ``stats`` (`iter_lines`); without ``stats`` it is an error.
    """
    if not os.path.isfile(tsv):
        raise FileNotFoundError(
            f"{tsv}: not found (expected a Common Voice language folder with "
            f"{os.path.basename(tsv)} and clips/)"
        )
    lines = iter_lines(tsv, stats=stats, header=True)
    first = next(lines, None)
    if first is None:
        raise ReaderError(f"{tsv}:1: empty file, expected a header row")
    header = [name.strip() for name in first[1].split("\t")]
    col = {name: i for i, name in enumerate(header)}
    absent = [c for c in REQUIRED_COLUMNS if c not in col]
    if absent:
        raise ReaderError(f"{tsv}:{first[0]}: header lacks column(s) {absent}; found: {header}")
    i_path, i_sentence = col["path"], col["sentence"]
    i_client = col.get(SPEAKER_COLUMN)
    line_of: Dict[str, int] = {}
    for lineno, line in lines:
        where = f"{tsv}:{lineno}"
        row = line.split("\t")
        if len(row) != len(header):
            raise ReaderError(f"{where}: {len(row)} TAB-separated columns, but the header has "
                              f"{len(header)}: {line!r}")
        path = row[i_path].strip()
        if not path:
            raise ReaderError(f"{where}: empty 'path' column")
        clip_stem(path, where)
        client = row[i_client].strip() if i_client is not None else ""
        if any(c.isspace() for c in client):
            raise ReaderError(f"{where}: client_id {client!r} contains whitespace")
        if path in line_of:
            raise ReaderError(f"{where}: clip {path!r} is listed again (first on line "
                              f"{line_of[path]})")
        line_of[path] = lineno
        yield path, CvRow(client, row[i_sentence].replace("\r", " ").strip(), lineno)


def read_cv_table(tsv: str, keep: Optional[Container[str]] = None,
                  stats: Optional[ReaderStats] = None) -> Dict[str, CvRow]:
    """Read a whole Common Voice ``<split>.tsv`` (e.g. ``validated.tsv``) into
    ``{clip path: CvRow}``, in file order, with every check of `iter_cv_table`.

    Args:
        tsv: the table file.
        keep: when given, only rows whose clip path is in it are returned (all rows are still
            checked); this bounds the memory when a few paths of a large table are needed.
        stats: counts rows (read), kept (returned) and drops (rows that are not UTF-8); without
            it such a row is an error.
    """
    out: Dict[str, CvRow] = {}
    for path, row in iter_cv_table(tsv, stats):
        if stats is not None:
            stats.rows += 1
        if keep is None or path in keep:
            out[path] = row
            if stats is not None:
                stats.keep()
    return out


def read_common_voice(
    lang_dir: str,
    split: str = "train",
    lang_label: Optional[str] = None,
    max_utts: Optional[int] = None,
    strict: bool = False,
) -> Tuple[List[Utterance], ReaderStats]:
    """Read one split of one Common Voice language folder.

    Args:
        lang_dir: ``<cv_root>/<lang>``; its base name is the Common Voice code used in ids.
        split: name of the ``.tsv`` to read (``train``, ``dev``, ``test``, ``validated``, ...).
        lang_label: ``utt2lang`` label; default: the MLC-SLM name of the code (`CV_LANGUAGES`).
        max_utts: keep only the first N usable rows of the file (None or 0: all); reading
            stops there.
        strict: a row that would be dropped (see the module docstring) is an error instead.

    Returns:
        (utterances in file order, statistics with the label as group).  Each utterance has
        ``wav`` = absolute path of the clip, ``text`` = the sentence (stripped, otherwise
        verbatim), ``lang``, ``spk``.
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
    clips = os.path.join(lang_dir, "clips")

    stats = ReaderStats(tsv, strict=strict)
    utts: List[Utterance] = []
    line_of: Dict[str, int] = {}
    for path, row in iter_cv_table(tsv, stats):
        where = f"{tsv}:{row.line}"
        stats.rows += 1
        if not row.sentence:
            stats.drop("empty_sentence", where, path)
            continue
        clip = os.path.join(clips, path)
        if not os.path.isfile(clip):
            stats.drop("missing_clip", where, clip)
            continue
        spk, uttid = speaker_and_utterance(code, row.client_id, clip_stem(path, where))
        if uttid in line_of:  # two clip names with one stem (e.g. a.mp3 and a.wav)
            raise ReaderError(f"{where}: clip {path!r} gives utterance id {uttid!r}, already "
                              f"given by line {line_of[uttid]}")
        line_of[uttid] = row.line
        utts.append(Utterance(uttid=uttid, wav=os.path.abspath(clip), spk=spk,
                              text=row.sentence, lang=lang_label))
        stats.keep(lang_label)
        if max_utts and stats.kept >= max_utts:
            logger.info("%s: stopping after the first %d usable rows (max_utts)", tsv, max_utts)
            break
    stats.log_drops(logger)
    if not utts:
        raise ReaderError(f"{tsv}: no usable row ({stats.summary()})")
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
    add_strict_option(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        codes: List[str] = []
        for lang in args.langs or list(CV_LANGUAGES):
            code = language_code(lang)
            if code not in codes:
                codes.append(code)
        if not os.path.isdir(args.cv_root):
            raise FileNotFoundError(f"Common Voice root {args.cv_root!r} does not exist")

        utts: List[Utterance] = []
        total = ReaderStats()
        for code in codes:
            lang_dir = os.path.join(args.cv_root, code)
            if not os.path.isdir(lang_dir):
                raise FileNotFoundError(
                    f"{lang_dir}: no such folder; --cv_root must hold one folder per "
                    f"language ({', '.join(codes)})"
                )
            lang_utts, stats = read_common_voice(lang_dir, args.split,
                                                 max_utts=args.max_utts_per_lang or None,
                                                 strict=args.strict)
            logger.info("%s", stats.summary())
            utts.extend(lang_utts)
            total.update(stats)
        write_data_dir(args.out, utts)
        print(f"{args.out}: {total.summary()}")
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
