"""Reader of generic TSV manifests into Kaldi data directories, for corpora without a reader of
their own (GigaSpeech 2, YODAS2, in-house sets, unlabeled audio for pseudo labels, ...).

Usage:
    python -m espnet_sllm.data.corpora.tsv_manifest --manifest db/gs2/th_train.tsv \\
        --root /db/gigaspeech2 --prefix gs2 --out data/gs2_th_train \\
        [--check_audio true] [--allow_no_text true] [--strict true]

    from espnet_sllm.data.corpora.tsv_manifest import read_tsv_manifest
    utts, stats = read_tsv_manifest(["th_train.tsv"], root="/db/gigaspeech2", prefix="gs2")

A manifest is a UTF-8 file, one utterance per line, five TAB-separated fields::

    path<TAB>start<TAB>end<TAB>text<TAB>lang
    th/0001/abc.wav    12.34  17.5  สวัสดีครับ   Thai           (fields: one TAB between)
    th/0002/def.flac   -      -     ขอบคุณครับ  Thai

* ``path``: the audio file, relative to ``--root`` or absolute (then it must lie under
  ``--root``); ``wav.scp`` holds its absolute path;
* ``start`` / ``end``: seconds; ``-`` or empty in both for the whole file.  A manifest is all
  segments or all whole files (a data directory has ``segments`` for all or none);
* ``text``: the transcript (a stray CR becomes a space; a TAB cannot occur);
* ``lang``: the ``utt2lang`` label (``Thai``, ``English-American``, ...), one token.

A first line whose first field is ``path`` is a header and is passed over; blank lines are
not rows.  Several manifests may be read into one directory.

Ids (the speaker is the recording, so every utterance id starts with its speaker id)::

    recording  <prefix>-<path relative to --root, without extension, '/' -> '-'>
               gs2-th-0001-abc
    utterance  <recording>-<start ms, 7 digits>-<end ms, 7 digits>   (segments)
               gs2-th-0001-abc-0012340-0017500
    utterance  <recording>                                          (whole files)

Checks: dropped and counted (`ReaderStats`, examples logged with ``file:line``; each is an
error naming ``file:line`` with ``--strict true``): ``not_utf8`` (a line with bytes that are not
UTF-8), ``bad_segment_time`` (a negative start, or an end not after the start),
``empty_text`` (an empty text, unless ``--allow_no_text true``), ``empty_lang`` (an empty
language label) and, with ``--check_audio true``, ``missing_audio`` (the file does not
exist; without the option nothing is checked, which keeps millions of rows fast).

``--allow_no_text true`` is for unlabeled audio: rows without text are kept, and when no row
has a text the directory gets no ``text`` file.  A manifest mixing rows with and without text
is then an error (a directory has a text for every utterance or for none).

Errors (`ReaderError`, a ValueError naming ``file:line``; the command line prints ``ERROR: ...``
and exits with 1): a field count other than 5, a start or end that is not a finite number, only
one of start and end given, rows with times and rows without in one directory, an empty path,
a path outside ``--root``, a path or label with whitespace, two paths giving one recording id,
an utterance id given twice (both lines named), rows with and without text under
``--allow_no_text``, and nothing usable at all.
"""
import argparse
import logging
import math
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple, Union

from espnet_sllm.data.kaldi_dir import Segment, Utterance
from espnet_sllm.data.corpora.reader_utils import (
    ReaderError,
    ReaderStats,
    add_strict_option,
    check_id,
    iter_lines,
    run_main,
    str2bool,
    write_set,
)

logger = logging.getLogger(__name__)

FIELDS = ("path", "start", "end", "text", "lang")
WHOLE = ("", "-")  # a start / end that means "the whole file"
MS_DIGITS = 7


def _time(value: str, what: str, where: str) -> float:
    try:
        t = float(value)
    except ValueError:
        raise ReaderError(f"{where}: {what} {value!r} is not a number of seconds") from None
    if not math.isfinite(t):
        raise ReaderError(f"{where}: {what} {value!r} is not a finite number of seconds")
    return t


def recording_id(path: str, root: str, prefix: str, where: str) -> Tuple[str, str]:
    """``(recording id, absolute audio path)`` of a manifest path (see the module docstring)."""
    if not path:
        raise ReaderError(f"{where}: empty path")
    root = os.path.abspath(root)
    full = os.path.normpath(path if os.path.isabs(path) else os.path.join(root, path))
    rel = os.path.relpath(full, root)
    if rel == os.curdir or rel == os.pardir or rel.startswith(os.pardir + os.sep):
        raise ReaderError(f"{where}: {path!r} is not a file under --root {root}")
    stem = os.path.splitext(rel)[0].replace(os.sep, "-")
    return check_id(f"{prefix}-{stem}", "recording id", where), full


def read_tsv_manifest(
    manifests: Union[str, Sequence[str]],
    root: str,
    prefix: str,
    check_audio: bool = False,
    allow_no_text: bool = False,
    strict: bool = False,
) -> Tuple[List[Utterance], ReaderStats]:
    """Read one or more manifests (see the module docstring for format, ids and checks).

    Args:
        manifests: the TSV file(s), read in order into one set.
        root: the folder that relative paths start from and that ids are relative to.
        prefix: first part of every id (the corpus, e.g. ``gs2``).
        check_audio: drop (and count) rows whose audio file does not exist.
        allow_no_text: keep rows without text (``text=None``); see the module docstring.
        strict: every drop is an error naming ``file:line``.

    Returns:
        (utterances in file order, statistics with the language label as group).  Each has
        ``wav`` = absolute path, ``spk`` = recording id, ``text`` (None without text),
        ``lang`` and, for timed rows, ``segment`` = (recording id, start, end).
    """
    if isinstance(manifests, str):
        manifests = [manifests]
    check_id(prefix, "prefix", "--prefix")
    if not os.path.isdir(root):
        raise FileNotFoundError(f"--root {root}: no such directory")
    stats = ReaderStats(" ".join(manifests), strict=strict)
    utts: List[Utterance] = []
    line_of_utt: Dict[str, str] = {}
    path_of_rec: Dict[str, Tuple[str, str]] = {}  # recid -> (audio path, where)
    exists: Dict[str, bool] = {}
    timed_where: Dict[bool, str] = {}  # kind of row -> the first line of that kind
    text_where: Dict[bool, str] = {}  # has a text -> the first kept line of that kind
    for manifest in manifests:
        if not os.path.isfile(manifest):
            raise FileNotFoundError(f"{manifest}: no such manifest")
        first = True
        for lineno, line in iter_lines(manifest, stats=stats):
            where = f"{manifest}:{lineno}"
            fields = line.split("\t")
            if first and fields[0].strip().lower() == "path":
                first = False
                continue  # the header
            first = False
            stats.rows += 1
            if len(fields) != len(FIELDS):
                raise ReaderError(f"{where}: {len(fields)} TAB-separated fields, expected "
                                  f"{len(FIELDS)} ({' '.join(FIELDS)}): {line!r}")
            path, start_s, end_s, text, lang = (f.strip() for f in fields)
            recid, full = recording_id(path, root, prefix, where)
            whole = start_s in WHOLE and end_s in WHOLE
            if not whole and (start_s in WHOLE or end_s in WHOLE):
                raise ReaderError(f"{where}: give both start and end (seconds), or '-' in both "
                                  f"for the whole file; got {start_s!r} and {end_s!r}")
            timed_where.setdefault(not whole, where)
            if len(timed_where) > 1:
                raise ReaderError(f"{where}: a row {'without' if whole else 'with'} times, but "
                                  f"{timed_where[whole]} has "
                                  f"{'them' if whole else 'none'}; a data directory has "
                                  f"segments for every utterance or for none")
            if lang and any(c.isspace() for c in lang):
                raise ReaderError(f"{where}: language label {lang!r} contains whitespace")
            if recid in path_of_rec and path_of_rec[recid][0] != full:
                raise ReaderError(f"{where}: {path!r} gives recording id {recid!r}, already "
                                  f"given to {path_of_rec[recid][0]} by {path_of_rec[recid][1]}")
            path_of_rec.setdefault(recid, (full, where))
            if whole:
                uttid, seg = recid, None
            else:
                start = _time(start_s, "start", where)
                end = _time(end_s, "end", where)
                if start < 0 or end <= start:
                    stats.drop("bad_segment_time", where,
                               f"need 0 <= start < end, got {start_s} {end_s}")
                    continue
                uttid = (f"{recid}-{round(start * 1000):0{MS_DIGITS}d}-"
                         f"{round(end * 1000):0{MS_DIGITS}d}")
                seg = Segment(recid, start, end)
            if uttid in line_of_utt:
                raise ReaderError(f"{where}: utterance id {uttid!r} is already given by "
                                  f"{line_of_utt[uttid]}")
            line_of_utt[uttid] = where
            text = text.replace("\r", " ").strip()
            if not text and not allow_no_text:
                stats.drop("empty_text", where, path)
                continue
            if not lang:
                stats.drop("empty_lang", where, path)
                continue
            if check_audio:
                if full not in exists:
                    exists[full] = os.path.isfile(full)
                if not exists[full]:
                    stats.drop("missing_audio", where, full)
                    continue
            text_where.setdefault(bool(text), where)
            utts.append(Utterance(uttid=uttid, wav=full, spk=recid, text=text or None,
                                  lang=lang, segment=seg))
            stats.keep(lang)
    if len(text_where) > 1:
        raise ReaderError(f"{text_where[True]}: a row with a text, but {text_where[False]} has "
                          f"none (--allow_no_text true: every row without text, for unlabeled "
                          f"audio, or every row with one)")
    stats.log_drops(logger)
    return utts, stats


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write a Kaldi data directory from TSV manifests "
                    "(path, start, end, text, lang).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Usage:")[1],
    )
    parser.add_argument("--manifest", nargs="+", required=True, help="TSV manifest(s)")
    parser.add_argument("--root", required=True,
                        help="folder of the audio: relative paths start here, ids are "
                             "relative to it")
    parser.add_argument("--prefix", required=True, help="first part of every id, e.g. gs2")
    parser.add_argument("--out", required=True, help="output data directory")
    parser.add_argument("--check_audio", type=str2bool, default=False, metavar="true|false",
                        help="drop (count) rows whose audio file does not exist")
    parser.add_argument("--allow_no_text", type=str2bool, default=False, metavar="true|false",
                        help="keep rows without text (unlabeled audio: no text file)")
    add_strict_option(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        utts, stats = read_tsv_manifest(args.manifest, args.root, args.prefix,
                                        args.check_audio, args.allow_no_text, args.strict)
        write_set(args.out, utts, stats, " ".join(args.manifest))
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
