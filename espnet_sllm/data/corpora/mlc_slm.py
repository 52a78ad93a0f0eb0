"""Reader of the MLC-SLM challenge release (multilingual conversational speech).

Layout
------
Each set (training parts, development, evaluation) is a folder ``<root>`` holding ``data/``
(``<root>`` may also be that ``data/`` folder itself)::

    data/English/<Accent>[/<group>...]/<session>.wav + <session>.txt
    data/<Language>[/<group>...]/<session>.wav + <session>.txt

* English has one accent folder (American, Australian, British, Filipino, Indian); the training
  release names it ``American_English`` etc., the development set ``American``: an ``_English``
  suffix is stripped so that both give the accent ``American``.
* The training set has one more folder level (``<NNNN>/``) below the language or accent folder;
  any such grouping folders are walked through and play no part in the ids.
* Every ``.txt`` is paired with the ``.wav`` of the same stem (a session whose wav is missing
  is dropped and counted, see Checks).  A ``.wav`` without ``.txt`` (evaluation release without
  annotation) becomes one utterance spanning the whole recording, without text.

Annotation ``.txt``: UTF-8, one segment per line, ``start<TAB>end<TAB>speaker<TAB>text`` with
times in seconds and speakers ``O1``/``O2``.  Evaluation sets have only the first three columns:
their utterances get ``text=None`` and the data directory gets no ``text`` file, which tells the
scoring stage to skip them.  A file without any TAB is split on blanks instead (at most four
fields), as the challenge baseline does, so a space-separated copy of the data still reads.
A carriage return inside a text (a stray CR; a CRLF line end is just a line end) becomes a
space: a Kaldi value is one line.

Ids
---
The language label (``utt2lang``) is ``English-<Accent>`` for English and ``<Language>``
otherwise (15 labels in the release).  Languages without accent get NO accent field (no
``NA`` placeholder), so that every id starts with its language label::

    recording  <label>-<session>                        English-American-0001_002_phone
    speaker    <label>-<session>-<spk>                  Japanese-0315_004_phone-O2
    utterance  <label>-<session>-<spk>-<start>-<end>    Japanese-0315_004_phone-O2-021917-022342

``<start>``/``<end>`` are centiseconds, ``round(t * 100)``, zero-padded to 6 digits.  This is
the id scheme of the challenge baseline (which joins the path components), so per-language
selection by id prefix works the same way.  Utterance ids are prefixed by speaker ids, the
Kaldi rule that keeps ``utt2spk`` and ``spk2utt`` in the same order.

Checks
------
Every problem of ONE segment line or ONE session is dropped and counted under a named reason
(``espnet_sllm.data.corpora.reader_utils.ReaderStats``: printed as ``dropped=N (reason=n, ...)``, the
first examples logged with their ``file:line``), so that one bad line does not keep the rest of
a 1,500-hour corpus from being prepared:

* ``not_utf8``: a line with bytes that are not UTF-8;
* ``empty_text``: a segment whose text is empty in a 4-column file;
* ``bad_segment_time``: a negative start, or an end not after the start (zero or negative
  duration);
* ``segment_beyond_audio``: a segment ending more than ``end_tolerance`` after the end of its
  audio, or starting at or after it.  ``end_tolerance`` is 0.5 s by default, the default
  ``--max_overshoot`` of stage 2 (``espnet_sllm.bin.format_data``): annotation tools round the
  last boundary, and audio containers lose or add a few frames; an end within it is clipped to
  the audio length (counted as ``ends clipped``; the id keeps the annotated time);
* sessions dropped whole (one count per session, its lines are not read):
  ``missing_audio`` (a ``.txt`` without its ``.wav``), ``unreadable_audio`` (soundfile cannot
  read the ``.wav`` header: a truncated or corrupt file), ``unknown_language_folder`` (files
  directly in ``data/``, or English files outside an ``English/<Accent>/`` folder: their
  language label cannot be told).

With ``strict`` (``--strict true``) each of these is an error instead.  Blank lines are not
segments and are passed over.  Errors (`ReaderError`, a ValueError naming ``file:line``; the
command line prints ``ERROR: ...`` and exits with 1): a column count other than 3 or 4, a line
with 3 columns in a file with 4 (or the reverse), non-numeric or non-finite times, a speaker
that is not one plain token, two segments giving the same utterance id, two recordings giving
the same recording id, whitespace in a path, a set mixing transcribed and untranscribed
sessions, a ``--langs`` entry that the set does not have, and a set without any usable segment.

Statistics (`MlcSlmStats`): ``rows`` are the segment lines read, plus one per recording used
whole (a ``.wav`` without ``.txt``) and one per session dropped whole; ``per group`` counts the
kept utterances per language label.

Context: ``text_prev`` / ``text_next`` of an utterance are the texts of the previous / next
kept segment of the same recording ordered by start time (either speaker), empty at the ends.

Usage:
    python -m espnet_sllm.data.corpora.mlc_slm --root /db/MLC-SLM/dev --out data/dev
    python -m espnet_sllm.data.corpora.mlc_slm --root /db/MLC-SLM/MLC-SLM_Workshop-Training_Set_1 \\
        --out data/train_part1 --langs English-American Japanese [--strict true]

    from espnet_sllm.data.corpora.mlc_slm import read_mlc_slm
    utts, stats = read_mlc_slm("/db/MLC-SLM/dev", languages=["Japanese"])
"""
import argparse
import logging
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import soundfile

from espnet_sllm.data.kaldi_dir import Segment, Utterance
from espnet_sllm.data.corpora.reader_utils import (
    ReaderError,
    ReaderStats,
    add_strict_option,
    iter_lines,
    run_main,
    write_set,
)

logger = logging.getLogger(__name__)

ENGLISH = "English"
ACCENT_SUFFIX = "_English"
# Seconds a segment may end after the audio and still be kept, clipped (see the module
# docstring); the default --max_overshoot of stage 2 (espnet_sllm.bin.format_data).
END_TOLERANCE = 0.5
_SPEAKER_RE = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass
class MlcSlmStats(ReaderStats):
    """`ReaderStats` of one MLC-SLM set (rows: see the module docstring; per group: kept
    utterances per language label), with what is particular to this corpus."""

    recordings: int = 0  # recordings whose audio was read
    clipped_end: int = 0  # segments ending after the audio by at most end_tolerance
    wav_only: int = 0  # recordings without .txt, used whole
    has_text: bool = True
    end_tolerance: float = END_TOLERANCE

    @property
    def per_language(self) -> Counter:
        return self.per_group

    @property
    def skipped(self) -> Counter:
        """The drop counts (this reader's name for them before `ReaderStats`)."""
        return self.dropped

    def summary(self) -> str:
        return (
            f"{super().summary()}; recordings={self.recordings}; "
            f"ends clipped to the audio length (<= {self.end_tolerance} s over)="
            f"{self.clipped_end}; whole-recording utterances (wav without txt)={self.wav_only}; "
            f"text={'yes' if self.has_text else 'no (evaluation set, not scored)'}"
        )


@dataclass
class _Recording:
    label: Optional[str]  # utt2lang label (English-American, Japanese, ...); None: unknown
    folder: Optional[str]  # the language folder below data/ (None: files directly in data/)
    session: str
    wav: Optional[str]  # None: no .wav next to the .txt
    txt: Optional[str]
    why_no_label: str = ""

    @property
    def recid(self) -> str:
        return f"{self.label}-{self.session}"

    @property
    def where(self) -> str:
        return self.txt or self.wav or self.session


def _data_root(root: str) -> str:
    data = os.path.join(root, "data")
    if os.path.isdir(data):
        return data
    if os.path.isdir(root):
        return root
    raise FileNotFoundError(f"MLC-SLM root {root!r} does not exist")


def _language_label(rel_dir: List[str]) -> Tuple[Optional[str], str]:
    """(language label, or None and why) from the folders between ``data/`` and the file."""
    if not rel_dir:
        return None, "not in a language folder (data/<Language>/...)"
    language = rel_dir[0]
    if language != ENGLISH:
        return language, ""
    if len(rel_dir) < 2:
        return None, "English sessions must sit in an accent folder (English/<Accent>/)"
    accent = rel_dir[1]
    if accent.endswith(ACCENT_SUFFIX) and len(accent) > len(ACCENT_SUFFIX):
        accent = accent[: -len(ACCENT_SUFFIX)]
    return f"{ENGLISH}-{accent}", ""


def _find_recordings(data_root: str) -> List[_Recording]:
    recs: List[_Recording] = []
    for dirpath, dirnames, filenames in os.walk(data_root):
        dirnames.sort()  # deterministic walk, hence deterministic messages
        rel = os.path.relpath(dirpath, data_root)
        rel_dir = [] if rel == "." else rel.split(os.sep)
        # Hidden files (e.g. macOS "._x.txt" resource forks in zip releases) are not data.
        names = {f for f in filenames if not f.startswith(".")}
        stems_txt = {f[:-4] for f in names if f.endswith(".txt")}
        stems_wav = {f[:-4] for f in names if f.endswith(".wav")}
        label, why = _language_label(rel_dir)
        for stem in sorted(stems_txt | stems_wav):
            txt = os.path.join(dirpath, stem + ".txt") if stem in stems_txt else None
            wav = os.path.join(dirpath, stem + ".wav") if stem in stems_wav else None
            where = txt or wav
            if any(c.isspace() for c in stem) or any(any(c.isspace() for c in d) for d in rel_dir):
                raise ReaderError(f"{where}: whitespace in the path would break Kaldi ids")
            recs.append(_Recording(label, rel_dir[0] if rel_dir else None, stem, wav, txt, why))
    return recs


def _parse_time(s: str, what: str, where: str) -> float:
    try:
        t = float(s)
    except ValueError:
        raise ReaderError(f"{where}: {what} time {s!r} is not a number") from None
    if t != t or t in (float("inf"), float("-inf")):
        raise ReaderError(f"{where}: {what} time {s!r} is not finite")
    return t


def _read_annotation(
    rec: _Recording, wav: str, duration: float, stats: MlcSlmStats
) -> List[Tuple[float, float, str, Optional[str], float, float, str]]:
    """Parse one .txt: (start, end, spk, text, id_start, id_end, where) per kept segment."""
    out = []
    ncols_file = None
    tol = stats.end_tolerance
    for lineno, line in iter_lines(rec.txt, stats=stats):
        where = f"{rec.txt}:{lineno}"
        stats.rows += 1
        cols = line.split("\t") if "\t" in line else line.split(maxsplit=3)
        if len(cols) not in (3, 4):
            raise ReaderError(
                f"{where}: expected 3 or 4 TAB-separated columns "
                f"(start, end, speaker[, text]), got {len(cols)}: {line!r}"
            )
        if ncols_file is None:
            ncols_file = len(cols)
        elif len(cols) != ncols_file:
            raise ReaderError(
                f"{where}: {len(cols)} columns, but the first segment of this file has "
                f"{ncols_file}: {line!r}"
            )
        start = _parse_time(cols[0].strip(), "start", where)
        end = _parse_time(cols[1].strip(), "end", where)
        spk = cols[2].strip()
        if not _SPEAKER_RE.match(spk):
            raise ReaderError(f"{where}: speaker {spk!r} must be one plain token like O1")
        if start < 0:
            stats.drop("bad_segment_time", where, f"negative start time {start}")
            continue
        if end <= start:
            stats.drop("bad_segment_time", where,
                       f"end time {end} is not after start time {start}")
            continue
        if end > duration + tol:
            stats.drop("segment_beyond_audio", where,
                       f"segment ends at {end} s, {end - duration:.3f} s after the end of the "
                       f"audio ({duration:.3f} s, {wav}; up to {tol} s would be clipped)")
            continue
        if start >= duration:
            stats.drop("segment_beyond_audio", where,
                       f"segment starts at {start} s, at or after the end of the audio "
                       f"({duration:.3f} s, {wav})")
            continue
        seg_end = end
        if end > duration:
            seg_end = duration
            stats.clipped_end += 1
        text = None
        if len(cols) == 4:
            text = cols[3].replace("\r", " ").strip()  # a stray CR: a Kaldi value is one line
            if not text:
                stats.drop("empty_text", where)
                continue
        out.append((start, seg_end, spk, text, start, end, where))
    if not out:
        logger.warning("%s: no usable segment", rec.txt)
    return out


def _cs(t: float) -> str:
    return f"{round(t * 100):06d}"


def _select_languages(recs: List[_Recording], languages: Sequence[str],
                      data_root: str) -> List[_Recording]:
    """The recordings of ``languages``; those whose label is unknown are kept when their
    language folder is one of the requested languages (they are dropped and counted later)."""
    wanted = {x.lower() for x in languages}
    bases = {x.split("-")[0] for x in wanted}
    labelled = [r for r in recs if r.label is not None]
    found = {r.label for r in labelled} | {r.label.split("-")[0] for r in labelled}
    unknown = sorted(x for x in languages if x.lower() not in {f.lower() for f in found})
    if unknown:
        raise ReaderError(
            f"{data_root}: no recordings for language(s) {unknown}; found: {sorted(found)}"
        )
    return [
        r for r in recs
        if (r.label is not None
            and (r.label.lower() in wanted or r.label.split("-")[0].lower() in wanted))
        or (r.label is None and r.folder is not None and r.folder.lower() in bases)
    ]


def read_mlc_slm(
    root: str,
    languages: Optional[Sequence[str]] = None,
    end_tolerance: float = END_TOLERANCE,
    strict: bool = False,
) -> Tuple[List[Utterance], MlcSlmStats]:
    """Read one MLC-SLM set into utterance records.

    Args:
        root: the set folder (holding ``data/``) or its ``data/`` folder.
        languages: keep only these languages; an entry matches a language (``English``,
            ``Japanese``) or a label (``English-American``), case-insensitively.  None = all.
        end_tolerance: seconds a segment may end after the audio (clipped, counted); a segment
            ending later is dropped (``segment_beyond_audio``).
        strict: every drop (see the module docstring) is a `ReaderError` instead.

    Returns:
        (utterances ordered by recording id then start time, statistics).  Each utterance has
        ``wav`` = absolute path of the recording, ``segment`` = (recid, start, end),
        ``spk``, ``lang`` (label), and, unless it is an evaluation set, ``text``,
        ``text_prev`` and ``text_next``.
    """
    if not end_tolerance >= 0:
        raise ValueError(f"end_tolerance must be >= 0, got {end_tolerance}")
    data_root = _data_root(root)
    recs = _find_recordings(data_root)
    if not recs:
        raise ReaderError(f"{data_root}: no .wav / .txt files found below the language folders")
    if languages:
        recs = _select_languages(recs, languages, data_root)

    stats = MlcSlmStats(data_root, strict=strict, end_tolerance=end_tolerance)
    # Sessions dropped whole, then the recording ids, which must be unique even though
    # grouping folders are dropped from them.
    by_id: Dict[str, _Recording] = {}
    for r in recs:
        if r.label is None:
            stats.rows += 1
            stats.drop("unknown_language_folder", r.where, r.why_no_label)
            continue
        if r.wav is None:
            stats.rows += 1
            stats.drop("missing_audio", r.where,
                       f"no audio file {r.session}.wav next to this annotation")
            continue
        if r.recid in by_id:
            raise ReaderError(
                f"two recordings get the id {r.recid!r}: {by_id[r.recid].wav} and {r.wav}"
            )
        by_id[r.recid] = r

    utts: List[Utterance] = []
    labelled: List[str] = []
    unlabelled: List[str] = []
    for recid in sorted(by_id):
        rec = by_id[recid]
        wav = os.path.abspath(rec.wav)
        try:
            duration = soundfile.info(wav).duration
        except RuntimeError as e:  # soundfile's LibsndfileError (unreadable header) is one
            stats.rows += 1
            stats.drop("unreadable_audio", wav, f"cannot read the audio header: {e}")
            continue
        stats.recordings += 1

        if rec.txt is None:
            # Evaluation audio without annotation: one utterance over the whole recording,
            # its speaker being the recording itself (nothing better is known).
            logger.info("%s: no annotation, using the whole recording as one utterance", wav)
            stats.rows += 1
            stats.wav_only += 1
            unlabelled.append(wav)
            uttid = f"{recid}-{_cs(0.0)}-{_cs(duration)}"
            utts.append(Utterance(uttid=uttid, wav=wav, spk=recid, lang=rec.label,
                                  segment=Segment(recid, 0.0, duration)))
            stats.keep(rec.label)
            continue

        segs = _read_annotation(rec, wav, duration, stats)
        if not segs:
            continue
        (labelled if segs[0][3] is not None else unlabelled).append(rec.txt)
        # Stable order for equal start times (end, then speaker, then file order).
        segs.sort(key=lambda s: (s[0], s[1], s[2]))
        ids: Dict[str, str] = {}
        rec_utts = []
        for start, end, spk, text, id_start, id_end, where in segs:
            spkid = f"{recid}-{spk}"
            uttid = f"{spkid}-{_cs(id_start)}-{_cs(id_end)}"
            if uttid in ids:
                raise ReaderError(
                    f"{where}: utterance id {uttid} already given by {ids[uttid]} "
                    f"(same speaker and times to the centisecond)"
                )
            ids[uttid] = where
            rec_utts.append(Utterance(uttid=uttid, wav=wav, spk=spkid, text=text,
                                      lang=rec.label, segment=Segment(recid, start, end)))
        if rec_utts[0].text is not None:
            for i, u in enumerate(rec_utts):
                u.text_prev = rec_utts[i - 1].text if i > 0 else ""
                u.text_next = rec_utts[i + 1].text if i + 1 < len(rec_utts) else ""
        utts.extend(rec_utts)
        for _ in rec_utts:
            stats.keep(rec.label)

    if labelled and unlabelled:
        # A set is either scored or not; a mix usually means a truncated or misplaced file.
        raise ReaderError(
            f"{data_root}: {len(labelled)} annotation files have text but {len(unlabelled)} "
            f"recordings have none (e.g. {unlabelled[0]}); a set must be all transcribed "
            f"(4 columns) or all untranscribed (3 columns / wav only)"
        )
    stats.has_text = not unlabelled
    stats.log_drops(logger)
    if not utts:
        raise ReaderError(f"{data_root}: no utterance kept ({stats.summary()})")
    return utts, stats


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write a Kaldi data directory from one MLC-SLM set.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Usage:")[1],
    )
    parser.add_argument("--root", required=True, help="set folder holding data/<Language>/...")
    parser.add_argument("--out", required=True, help="output data directory, e.g. data/dev")
    parser.add_argument("--langs", nargs="+", default=None,
                        help="languages or labels to keep (English, English-American, Japanese)")
    parser.add_argument("--end_tolerance", type=float, default=END_TOLERANCE,
                        help="seconds a segment may end after the audio: clipped; a segment "
                             "ending later is dropped (segment_beyond_audio) "
                             f"(default: {END_TOLERANCE})")
    add_strict_option(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        utts, stats = read_mlc_slm(args.root, args.langs, args.end_tolerance, args.strict)
        write_set(args.out, utts, stats, f"MLC-SLM set {args.root}")
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
