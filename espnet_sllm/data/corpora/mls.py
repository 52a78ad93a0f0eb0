"""Reader of Multilingual LibriSpeech (MLS, Pratap et al. 2020) into Kaldi data directories.

Used by egs2/mls/asr1 (Ideal-LLM, Xue et al.: 8 languages, results per language).

Layout
------
The corpus root (``$MLS`` of the recipe's db.sh) holds one folder per language, as released
(the FLAC variant; the ``*_opus`` variant is not read)::

    mls_<language>/metainfo.txt
    mls_<language>/<split>/transcripts.txt              split: train, dev, test
    mls_<language>/<split>/audio/<spk>/<book>/<spk>_<book>_<utt>.flac
    mls_<language>/<split>/segments.txt                 (not read: LibriVox source times)
    mls_<language>/train/limited_supervision/9hr/handles.txt
    mls_<language>/train/limited_supervision/1hr/{0,1,2,3,4,5}/handles.txt

``<language>`` is one of `LANGUAGES` (english german dutch french spanish italian portuguese
polish).

* ``transcripts.txt``: UTF-8, one utterance per line, ``<handle><TAB><text>``; the handle is
  ``<spk>_<book>_<utt>`` (three runs of digits).  The text is already lowercase and is kept
  verbatim, except that outer whitespace is stripped and inner runs of whitespace become one
  space.
* ``metainfo.txt``: ``|``-separated with space padding and a header row (``SPEAKER | GENDER |
  PARTITION | MINUTES | BOOK ID | TITLE | CHAPTER``); columns are read BY NAME (``SPEAKER``
  and ``GENDER``, case-insensitive) and stripped.  A speaker appears once per book; a line
  is split into at most as many fields as the header has, so a ``|`` inside the last columns
  (book title, chapter) cannot shift the speaker or gender columns.  It gives the
  ``spk2gender`` file (``<spk> m|f``) of each set; the file is optional (absent: no
  spk2gender, with a warning).
* ``handles.txt``: one handle per line: the limited-supervision subsets of the training set
  (`LIMITED`: ``9hr``; ``1hr`` = the union of the six 10-minute folds ``1hr/0..5``; one fold
  ``1hr/<k>``; ``10hr`` = ``9hr`` + ``1hr``, the "10 hours" set of the MLS paper).

Ids
---
Kaldi requires the utterance ids sorted the same way as their speakers, so an utterance id is
the speaker id, a ``-``, and the rest of the handle (``-`` sorts before every digit; keeping
the handle's ``_`` after the speaker would put speaker ``10``'s utterances before speaker
``1``'s)::

    speaker    mls-<code>-<spk>                 mls-de-1844
    utterance  mls-<code>-<spk>-<book>_<utt>    mls-de-1844-931_000012

``<code>`` is the ISO 639-1 code of the language (en de nl fr es it pt pl), which is also the
``utt2lang`` label.  ``wav.scp`` holds the absolute path of the ``.flac`` file (16 kHz); stage
2 (``espnet_sllm.bin.format_data``) decodes it.

Checks
------
Errors (`ReaderError` naming ``file:line``; the command line prints ``ERROR: ...`` and exits
with 1): a transcript line without exactly two TAB-separated fields, a handle not of the form
``<digits>_<digits>_<digits>`` (in transcripts.txt or handles.txt), a handle listed twice in one
transcripts.txt (the message names both lines), a metainfo.txt without a SPEAKER or GENDER
column, with a header that is not UTF-8 or with a row of too few fields, and a speaker given two
genders in metainfo.txt.  Dropped and counted: ``not_utf8`` (a line of transcripts.txt,
handles.txt or metainfo.txt with bytes that are not UTF-8), ``empty_text``; ``missing_audio``
(the FLAC file does not exist); with a limited subset, ``limited_handle_not_in_transcripts``
(handles.txt entries, not transcript rows, whose handle is not in transcripts.txt) and
``duplicate_handle`` (a handle listed again in handles.txt); in metainfo.txt, rows whose gender
is not M/F (``unknown_gender``); in spk2gender, speakers of the set absent from metainfo.txt
(``speaker_not_in_metainfo``).  With ``strict`` (``--strict true``) each of these is an error
instead; the transcript rows outside a requested limited subset (``not_in_limited_<subset>``)
are counted too, but are left out by choice, never an error.

Usage:
    python -m espnet_sllm.data.corpora.mls --mls_root /db/mls --langs german polish --data_dir data \\
        [--splits train dev test] [--limited 9hr] [--strict true]
        # -> data/mls_de_train data/mls_de_dev data/mls_de_test data/mls_pl_train ...
    python -m espnet_sllm.data.corpora.mls --print_codes english german      # prints "en de"

    from espnet_sllm.data.corpora.mls import read_mls, read_metainfo
    utts, stats = read_mls("/db/mls/mls_german", "train", limited="9hr")
    genders, meta_stats = read_metainfo("/db/mls/mls_german/metainfo.txt")
"""
import argparse
import logging
import os
import re
import sys
from typing import Dict, List, Mapping, Optional, Sequence, Set, Tuple

from espnet_sllm.data.kaldi_dir import Utterance, write_data_dir, write_kv
from espnet_sllm.data.corpora.reader_utils import (
    ReaderError,
    ReaderStats,
    add_strict_option,
    check_id,
    iter_lines,
    parse_list,
    run_main,
)

logger = logging.getLogger(__name__)

# Release folder name (mls_<name>) -> ISO 639-1 code (ids and utt2lang).
LANGUAGES: Dict[str, str] = {
    "english": "en",
    "german": "de",
    "dutch": "nl",
    "french": "fr",
    "spanish": "es",
    "italian": "it",
    "portuguese": "pt",
    "polish": "pl",
}
SPLITS = ("train", "dev", "test")
# Limited-supervision subsets of the training set -> folders below train/limited_supervision.
LIMITED: Dict[str, Tuple[str, ...]] = {
    "9hr": ("9hr",),
    "1hr": tuple(f"1hr/{k}" for k in range(6)),
    "10hr": ("9hr",) + tuple(f"1hr/{k}" for k in range(6)),
    **{f"1hr/{k}": (f"1hr/{k}",) for k in range(6)},
}
_HANDLE_RE = re.compile(r"^([0-9]+)_([0-9]+)_([0-9]+)$")
_GENDERS = {"m": "m", "f": "f", "male": "m", "female": "f"}


def language_name(lang: str) -> str:
    """The release name (``german``) of a name or ISO code (``de``), case-insensitively."""
    low = lang.lower()
    if low.startswith("mls_"):
        low = low[4:]
    if low in LANGUAGES:
        return low
    for name, code in LANGUAGES.items():
        if code == low:
            return name
    raise ValueError(
        f"unknown MLS language {lang!r}; valid: "
        + ", ".join(f"{n} ({c})" for n, c in LANGUAGES.items())
    )


def _parse_handle(handle: str, where: str) -> Tuple[str, str, str]:
    m = _HANDLE_RE.match(handle)
    if m is None:
        raise ReaderError(f"{where}: handle {handle!r} is not of the form "
                          f"<speaker>_<book>_<utterance> (digits)")
    return m.group(1), m.group(2), m.group(3)


def utterance_ids(code: str, handle: str) -> Tuple[str, str]:
    """``(utterance id, speaker id)`` of a handle (see the module docstring)."""
    spk, book, utt = _parse_handle(handle, "handle")
    speaker = f"mls-{code}-{spk}"
    return f"{speaker}-{book}_{utt}", speaker


def read_limited_handles(lang_dir: str, limited: str,
                         strict: bool = False) -> Tuple[Dict[str, str], ReaderStats]:
    """Handles of a limited-supervision subset (`LIMITED`) -> ``file:line`` of each.

    A handle listed again (in the same file or in another fold) is counted as
    ``duplicate_handle``, a line that is not UTF-8 as ``not_utf8`` (errors with ``strict``); a
    malformed handle is a `ReaderError`.
    """
    if limited not in LIMITED:
        raise ValueError(f"unknown limited-supervision subset {limited!r}; valid: "
                         f"{', '.join(LIMITED)}")
    base = os.path.join(lang_dir, "train", "limited_supervision")
    stats = ReaderStats(f"{base} ({limited})", strict=strict)
    handles: Dict[str, str] = {}
    for sub in LIMITED[limited]:
        path = os.path.join(base, sub, "handles.txt")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: not found (limited-supervision subset {limited!r} "
                                    f"needs {', '.join(LIMITED[limited])} below {base})")
        for lineno, line in iter_lines(path, stats=stats):
            where = f"{path}:{lineno}"
            stats.rows += 1
            handle = line.strip()
            _parse_handle(handle, where)
            if handle in handles:
                stats.drop("duplicate_handle", where, f"{handle} (first at {handles[handle]})")
                continue
            handles[handle] = where
            stats.keep()
    return handles, stats


def read_mls(
    lang_dir: str, split: str, limited: Optional[str] = None, strict: bool = False
) -> Tuple[List[Utterance], ReaderStats]:
    """Read one split of one MLS language folder.

    Args:
        lang_dir: ``<root>/mls_<language>``; the folder name gives the language.
        split: ``train``, ``dev`` or ``test``.
        limited: a limited-supervision subset of the training set (`LIMITED`), or None for
            the whole split; only with ``split="train"``.
        strict: a row that would be dropped (see the module docstring) is an error instead.

    Returns:
        (utterances in file order, statistics).  Each utterance has ``wav`` (absolute path of
        the FLAC file), ``spk``, ``text`` and ``lang`` (ISO code).  The statistics count the
        transcript rows; with ``limited`` they also count, under
        ``limited_handle_not_in_transcripts``, the handles.txt entries missing from the
        transcripts.
    """
    lang_dir = os.path.normpath(lang_dir)
    folder = os.path.basename(lang_dir)
    if not folder.startswith("mls_") or folder[4:] not in LANGUAGES:
        raise ValueError(f"{lang_dir}: not an MLS language folder (expected mls_<language>, "
                         f"<language> one of {', '.join(LANGUAGES)})")
    code = LANGUAGES[folder[4:]]
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if limited is not None and split != "train":
        raise ValueError(f"limited supervision ({limited!r}) applies to the train split only, "
                         f"not {split!r}")
    path = os.path.join(lang_dir, split, "transcripts.txt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: not found (expected the MLS layout "
                                f"mls_<language>/<split>/transcripts.txt)")
    subset: Optional[Dict[str, str]] = None
    if limited is not None:
        subset, subset_stats = read_limited_handles(lang_dir, limited, strict)
        logger.info("%s", subset_stats.summary())
        subset_stats.log_drops(logger)
    audio_root = os.path.abspath(os.path.join(lang_dir, split, "audio"))

    stats = ReaderStats(path, strict=strict)
    utts: List[Utterance] = []
    line_of: Dict[str, int] = {}
    # One directory listing per <spk>/<book> instead of one stat per file: the English
    # training set has 10.8 million files.
    listings: Dict[Tuple[str, str], Set[str]] = {}
    for lineno, line in iter_lines(path, stats=stats):
        where = f"{path}:{lineno}"
        stats.rows += 1
        fields = line.split("\t")
        if len(fields) != 2:
            raise ReaderError(f"{where}: expected 2 TAB-separated fields <handle><TAB><text>, "
                              f"got {len(fields)}: {line!r}")
        handle = fields[0]
        spk, book, _ = _parse_handle(handle, where)
        if handle in line_of:
            raise ReaderError(f"{where}: handle {handle} is listed twice, on lines "
                              f"{line_of[handle]} and {lineno}")
        line_of[handle] = lineno
        if subset is not None and handle not in subset:
            stats.skip(f"not_in_limited_{limited}", where, handle)  # by choice
            continue
        text = " ".join(fields[1].split())
        if not text:
            stats.drop("empty_text", where, handle)
            continue
        if (spk, book) not in listings:
            book_dir = os.path.join(audio_root, spk, book)
            listings[(spk, book)] = set(os.listdir(book_dir)) if os.path.isdir(book_dir) \
                else set()
        name = f"{handle}.flac"
        if name not in listings[(spk, book)]:
            stats.drop("missing_audio", where, os.path.join(audio_root, spk, book, name))
            continue
        uttid, speaker = utterance_ids(code, handle)
        utts.append(Utterance(uttid=uttid, wav=os.path.join(audio_root, spk, book, name),
                              spk=speaker, text=text, lang=code))
        stats.keep(code)
    if subset is not None:
        for handle, hwhere in subset.items():
            if handle not in line_of:
                stats.drop("limited_handle_not_in_transcripts", hwhere, handle)
    return utts, stats


def read_metainfo(path: str, strict: bool = False) -> Tuple[Dict[str, str], ReaderStats]:
    """Speaker (as in the handles, e.g. ``1844``) -> gender ``m``/``f`` from metainfo.txt."""
    stats = ReaderStats(path, strict=strict)
    genders: Dict[str, str] = {}
    first: Dict[str, str] = {}
    header: Optional[List[str]] = None
    for lineno, line in iter_lines(path, stats=stats, header=True):
        where = f"{path}:{lineno}"
        if header is None:
            header = [h.strip().upper() for h in line.split("|")]
            missing = [c for c in ("SPEAKER", "GENDER") if c not in header]
            if missing:
                raise ReaderError(f"{where}: header lacks column(s) {missing}; found: {header}")
            i_spk, i_gender = header.index("SPEAKER"), header.index("GENDER")
            continue
        stats.rows += 1
        fields = line.split("|", len(header) - 1)
        if len(fields) != len(header):
            raise ReaderError(f"{where}: {len(fields)} '|'-separated fields, but the header "
                              f"has {len(header)}: {line!r}")
        spk = check_id(fields[i_spk].strip(), "speaker", where)
        value = fields[i_gender].strip()
        gender = _GENDERS.get(value.lower())
        if gender is None:
            stats.drop("unknown_gender", where, f"speaker {spk}: {value!r}")
            continue
        if spk in genders and genders[spk] != gender:
            raise ReaderError(f"{where}: speaker {spk} has gender {value!r} here but "
                              f"{genders[spk]!r} at {first[spk]}")
        if spk not in genders:
            genders[spk] = gender
            first[spk] = where
        stats.keep(gender)
    if header is None:
        raise ReaderError(f"{path}:1: empty file, expected a header row")
    return genders, stats


def speaker_genders(
    utts: Sequence[Utterance], genders: Mapping[str, str], name: str = "spk2gender",
    strict: bool = False,
) -> Tuple[Dict[str, str], ReaderStats]:
    """``spk2gender`` entries of the speakers of ``utts``; statistics count speakers."""
    stats = ReaderStats(name, strict=strict)
    out: Dict[str, str] = {}
    for speaker in sorted({u.speaker for u in utts}):
        stats.rows += 1
        raw = speaker.rsplit("-", 1)[1]
        if raw in genders:
            out[speaker] = genders[raw]
            stats.keep(genders[raw])
        else:
            stats.drop("speaker_not_in_metainfo", name, speaker)
    return out, stats


def write_mls_set(out_dir: str, utts: Sequence[Utterance],
                  genders: Optional[Mapping[str, str]],
                  strict: bool = False) -> Optional[ReaderStats]:
    """Write a data directory and its ``spk2gender`` (None: no metainfo, no spk2gender)."""
    path = os.path.join(out_dir, "spk2gender")
    spk2gender: Dict[str, str] = {}
    stats = None
    if genders is not None:  # before anything is written: with strict, a drop is an error
        spk2gender, stats = speaker_genders(utts, genders, path, strict)
    write_data_dir(out_dir, utts)
    if genders is None:
        if os.path.exists(path):
            os.remove(path)
        return None
    if spk2gender:
        write_kv(path, spk2gender)
    elif os.path.exists(path):
        os.remove(path)
    return stats


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write Kaldi data directories data/mls_<code>_<split> from Multilingual "
                    "LibriSpeech.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Usage:")[1],
    )
    parser.add_argument("--mls_root", help="folder holding mls_<language>/ folders")
    parser.add_argument("--langs", nargs="+", default=None,
                        help=f"languages (names or codes; default: all: {' '.join(LANGUAGES)})")
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), help="splits to read")
    parser.add_argument("--data_dir", default="data",
                        help="where data/mls_<code>_<split> go (default: data)")
    parser.add_argument("--limited", default=None,
                        help=f"limited-supervision subset of train: {', '.join(LIMITED)} "
                             f"(default: the whole training set)")
    parser.add_argument("--print_codes", nargs="+", default=None, metavar="NAME",
                        help="print the ISO codes of these languages (release names: german, "
                             "...) and exit")
    add_strict_option(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        if args.print_codes is not None:
            # Strict (release names only): the recipes use the names as folder names.
            names = parse_list(args.print_codes, list(LANGUAGES), "MLS language")
            print(" ".join(LANGUAGES[x] for x in names))
            return 0
        if not args.mls_root:
            raise ValueError("--mls_root is required")
        names = parse_list([language_name(x) for x in args.langs or []], list(LANGUAGES),
                           "MLS language")
        splits = parse_list(args.splits, SPLITS, "split")
        if args.limited is not None and args.limited not in LIMITED:
            raise ValueError(f"unknown --limited {args.limited!r}; valid: {', '.join(LIMITED)}")
        if not os.path.isdir(args.mls_root):
            raise FileNotFoundError(f"MLS root {args.mls_root!r} does not exist")
        missing = [n for n in names if not os.path.isdir(os.path.join(args.mls_root, f"mls_{n}"))]
        if missing:
            raise FileNotFoundError(
                f"{', '.join(os.path.join(args.mls_root, f'mls_{n}') for n in missing)}: not "
                f"found; --mls_root must hold one mls_<language> folder per requested language"
            )
        for name in names:
            lang_dir = os.path.join(args.mls_root, f"mls_{name}")
            meta = os.path.join(lang_dir, "metainfo.txt")
            genders: Optional[Dict[str, str]] = None
            if os.path.isfile(meta):
                genders, meta_stats = read_metainfo(meta, args.strict)
                meta_stats.log_drops(logger)
                print(meta_stats.summary())
            else:
                logger.warning("%s: not found: no spk2gender for %s", meta, name)
            for split in splits:
                limited = args.limited if split == "train" else None
                utts, stats = read_mls(lang_dir, split, limited, args.strict)
                stats.log_drops(logger)
                if not utts:
                    raise ReaderError(f"{lang_dir}/{split}: no utterance kept "
                                      f"({stats.summary()})")
                out = os.path.join(args.data_dir, f"mls_{LANGUAGES[name]}_{split}")
                gstats = write_mls_set(out, utts, genders, args.strict)
                print(f"{out}: {stats.summary()}")
                if gstats is not None:
                    gstats.log_drops(logger)
                    print(gstats.summary())
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
