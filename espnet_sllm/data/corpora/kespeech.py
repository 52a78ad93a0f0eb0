"""Reader of KeSpeech (Mandarin and eight subdialects) into Kaldi data directories.

Used by egs2/kespeech/asr1 (Xu et al., SSL encoder + LLM for Chinese dialects), which trains on
KeSpeech and reports the CER per subdialect.

Layout
------
The release (as ESPnet's and lhotse's KeSpeech recipes read it) holds, below ``KeSpeech/``::

    KeSpeech/Tasks/ASR/<part>/wav.scp          <utt> Audio/<spk>/phase1/<utt>.wav
    KeSpeech/Tasks/ASR/<part>/text             <utt> <transcript>
    KeSpeech/Tasks/ASR/<part>/utt2spk          <utt> <spk>
    KeSpeech/Tasks/ASR/<part>/utt2subdialect   <utt> <subdialect>
    KeSpeech/Audio/<spk>/phase{1,2}/<utt>.wav

with ``<part>`` one of `PARTS` (train_phase1, train_phase2, dev_phase1, dev_phase2, test).  Each
line is ``<id> <value>`` separated by one blank (any run of blanks is accepted).  The four files
list the same utterances in the same order (checked: a mismatch is an error naming both files
and lines).  ``wav.scp`` paths are relative to ``KeSpeech/`` (absolute paths are kept).  The
corpus root given to the reader may be ``KeSpeech/`` itself or the folder holding it.

Text
----
KeSpeech transcripts are Chinese characters; the release marks non-speech vocalisations with
``<SPOKEN_NOISE>``.  Every tag matching ``<[A-Z_]+>`` (`NOISE_TAG_RE`: ``<SPOKEN_NOISE>``, and
``<NOISE>``-like tags should a copy have them) is removed, and so are all spaces (Chinese is
scored per character; a space left between characters would only be a scoring artefact).  The
removed tags are counted in the log.  Lower-case or other bracketed text is kept verbatim.

Ids and labels
--------------
KeSpeech utterance ids start with their speaker id (``1000001_63740949`` of speaker
``1000001``; speaker ids are fixed-width numbers, so the Kaldi sorting rule holds), and are
kept as released.  An id that does not start with its speaker id is prefixed with
``<spk>-``.  ``utt2lang`` is ``zh`` for every utterance; ``utt2subdialect`` keeps the release's
label, one of `SUBDIALECTS` (Mandarin and the eight subdialects), for per-subdialect scoring.

Checks
------
Dropped and counted (`ReaderStats`, logged with examples): ``not_utf8`` (a line of any of the
four files with bytes that are not UTF-8: the utterance is dropped, the files stay aligned),
``empty_text`` (no transcript), ``only_noise`` (nothing left once the noise tags are removed),
``missing_audio`` (the wav file does not exist); with ``strict`` (``--strict true``) each of
them is an error instead.  Errors (`ReaderError`, ``file:line``; the command line prints
``ERROR: ...`` and exits with 1): a line without a value in wav.scp, utt2spk or
utt2subdialect, files listing different utterances or orders (also when the bytes that are not
UTF-8 are in the id itself), a repeated id, a speaker id with blanks, an unknown subdialect
label (the message lists the valid ones), and an unknown part name.

Usage:
    python -m espnet_sllm.data.corpora.kespeech --root /db/KeSpeech --out_dir data \\
        [--parts train_phase1 train_phase2 dev_phase1 dev_phase2 test] [--strict true]
    # -> data/train_phase1, data/train_phase2, ...; combine with
    #    python -m espnet_sllm.data.kaldi_dir combine --out data/train data/train_phase{1,2}

    from espnet_sllm.data.corpora.kespeech import read_kespeech
    utts, stats = read_kespeech("/db/KeSpeech", "test")
"""
import argparse
import logging
import os
import re
import sys
from collections import Counter
from typing import List, Optional, Sequence, Tuple

from espnet_sllm.data.kaldi_dir import Utterance
from espnet_sllm.data.corpora.reader_utils import (
    NOT_UTF8,
    NotUtf8Line,
    ReaderError,
    ReaderStats,
    add_strict_option,
    check_id,
    iter_lines,
    parse_list,
    run_main,
    write_set,
)

logger = logging.getLogger(__name__)

PARTS = ("train_phase1", "train_phase2", "dev_phase1", "dev_phase2", "test")
SUBDIALECTS = ("Mandarin", "Beijing", "Ji-Lu", "Jiang-Huai", "Jiao-Liao", "Lan-Yin",
               "Northeastern", "Southwestern", "Zhongyuan")
# The per-part files, in the order they are compared (wav.scp is the reference).
FILES = ("wav.scp", "text", "utt2spk", "utt2subdialect")
NOISE_TAG_RE = re.compile(r"<[A-Z_]+>")
LANG = "zh"
TASKS_DIR = os.path.join("Tasks", "ASR")


def corpus_root(root: str) -> str:
    """The ``KeSpeech/`` folder: ``root`` itself or ``root/KeSpeech``."""
    for cand in (os.path.join(root, "KeSpeech"), root):
        if os.path.isdir(os.path.join(cand, TASKS_DIR)):
            return cand
    raise FileNotFoundError(
        f"KeSpeech root {root!r}: neither {os.path.join(root, 'KeSpeech', TASKS_DIR)} nor "
        f"{os.path.join(root, TASKS_DIR)} exists; give the KeSpeech/ folder of the release "
        f"(holding Tasks/ASR/ and Audio/) or the folder holding it"
    )


def clean_text(text: str) -> Tuple[str, List[str]]:
    """(text without noise tags and blanks, the removed tags)."""
    tags = NOISE_TAG_RE.findall(text)
    return "".join(NOISE_TAG_RE.sub("", text).split()), tags


def _read_file(path: str, need_value: bool) -> List[Tuple[int, str, str, str]]:
    """(line number, id, value, why the line is not UTF-8 or "") of every non-blank line of a
    ``<id> <value>`` file; a line that is not UTF-8 keeps its place (U+FFFD for its bad
    bytes), the caller drops its utterance."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: not found (KeSpeech Tasks/ASR/<part>/ lists "
                                f"{', '.join(FILES)})")
    rows = []
    for lineno, line in iter_lines(path, keep_undecodable=True):
        bad = line.reason if isinstance(line, NotUtf8Line) else ""
        if line[0].isspace():
            raise ReaderError(f"{path}:{lineno}: line starts with a blank, expected "
                              f"'<id> <value>': {line!r}")
        cols = line.split(maxsplit=1)
        value = cols[1].strip() if len(cols) > 1 else ""
        if need_value and not value and not bad:
            raise ReaderError(f"{path}:{lineno}: no value after the id {cols[0]!r}")
        rows.append((lineno, cols[0], value, bad))
    return rows


def read_kespeech(root: str, part: str,
                  strict: bool = False) -> Tuple[List[Utterance], ReaderStats]:
    """Read one part of KeSpeech's ASR task.

    Args:
        root: the ``KeSpeech/`` folder or the folder holding it.
        part: one of `PARTS`.
        strict: a row that would be dropped (see the module docstring) is an error instead.

    Returns:
        (utterances in file order, statistics: rows, kept, drops by reason, kept utterances
        per subdialect).  Each utterance has ``wav`` = absolute path, ``spk``, ``text``
        (without noise tags and spaces), ``lang`` = ``zh`` and ``subdialect``.
    """
    parse_list([part], PARTS, "KeSpeech part")
    base = corpus_root(root)
    part_dir = os.path.join(base, TASKS_DIR, part)
    paths = {name: os.path.join(part_dir, name) for name in FILES}
    rows = {name: _read_file(paths[name], need_value=name != "text") for name in FILES}

    ref = "wav.scp"
    for name in FILES[1:]:
        for i in range(max(len(rows[ref]), len(rows[name]))):
            if i >= len(rows[name]):
                lineno, key, _, _ = rows[ref][i]
                raise ReaderError(
                    f"{paths[ref]}:{lineno}: lists {key!r} but {paths[name]} ends after "
                    f"{len(rows[name])} entries; the four files must list the same utterances "
                    f"in the same order"
                )
            if i >= len(rows[ref]):
                lineno, key, _, _ = rows[name][i]
                raise ReaderError(
                    f"{paths[name]}:{lineno}: lists {key!r} but {paths[ref]} ends after "
                    f"{len(rows[ref])} entries; the four files must list the same utterances "
                    f"in the same order"
                )
            (l_ref, k_ref, _, _), (l_other, k_other, _, _) = rows[ref][i], rows[name][i]
            if k_ref != k_other:
                raise ReaderError(
                    f"{paths[ref]}:{l_ref} has {k_ref!r} but {paths[name]}:{l_other} has "
                    f"{k_other!r}; the four files must list the same utterances in the same "
                    f"order"
                )

    stats = ReaderStats(part, strict=strict)
    utts: List[Utterance] = []
    first_line = {}
    tag_counts: Counter = Counter()
    for line_rows in zip(*(rows[name] for name in FILES)):
        (lineno, key, wav, _), (t_line, _, raw_text, _), (s_line, _, spk, _), \
            (d_line, _, label, _) = line_rows
        where = f"{paths[ref]}:{lineno}"
        stats.rows += 1
        if key in first_line:
            raise ReaderError(f"{where}: duplicate utterance id {key!r} (first on line "
                              f"{first_line[key]})")
        first_line[key] = lineno
        bad = [(name, row) for name, row in zip(FILES, line_rows) if row[3]]
        if bad:
            name, (bad_line, _, _, reason) = bad[0]
            stats.drop(NOT_UTF8, f"{paths[name]}:{bad_line}", f"{key}: {reason}")
            continue
        check_id(spk, "speaker id", f"{paths['utt2spk']}:{s_line}")
        if label not in SUBDIALECTS:
            raise ReaderError(f"{paths['utt2subdialect']}:{d_line}: unknown subdialect "
                              f"{label!r}; valid: {', '.join(SUBDIALECTS)}")
        text, tags = clean_text(raw_text)
        tag_counts.update(tags)
        if not text:
            reason = "only_noise" if tags else "empty_text"
            stats.drop(reason, f"{paths['text']}:{t_line}", f"{key} {raw_text!r}")
            continue
        path = wav if os.path.isabs(wav) else os.path.join(base, wav)
        path = os.path.abspath(path)
        if not os.path.isfile(path):
            stats.drop("missing_audio", where, f"{key}: {path} not found")
            continue
        # Released ids already start with the speaker id; others get it as a prefix so that
        # utt2spk and spk2utt sort the same way (Kaldi rule).
        uttid = key if key.startswith(spk) else f"{spk}-{key}"
        utts.append(Utterance(uttid=uttid, wav=path, spk=spk, text=text, lang=LANG,
                              subdialect=label))
        stats.keep(label)
    if tag_counts:
        logger.info("%s: removed noise tags: %s", part_dir,
                    ", ".join(f"{t}={n}" for t, n in sorted(tag_counts.items())))
    stats.log_drops(logger)
    ids = Counter(u.uttid for u in utts)
    dup = [i for i, n in ids.items() if n > 1]
    if dup:
        raise ReaderError(f"{part_dir}: prefixing ids with their speaker gives {dup[0]!r} "
                          f"twice")
    return utts, stats


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write Kaldi data directories <out_dir>/<part> from KeSpeech's ASR task.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Usage:")[1],
    )
    parser.add_argument("--root", required=True,
                        help="the KeSpeech/ folder (Tasks/ASR/, Audio/) or the folder holding it")
    parser.add_argument("--out_dir", required=True, help="parent of the data directories")
    parser.add_argument("--parts", nargs="+", default=None,
                        help=f"parts to read (default: all: {' '.join(PARTS)})")
    add_strict_option(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        parts = parse_list(args.parts, PARTS, "KeSpeech part")
        for part in parts:
            utts, stats = read_kespeech(args.root, part, args.strict)
            write_set(os.path.join(args.out_dir, part), utts, stats, part)
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
