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
* Every ``.txt`` is paired with the ``.wav`` of the same stem (a missing wav is an error).  A
  ``.wav`` without ``.txt`` (evaluation release without annotation) becomes one utterance
  spanning the whole recording, without text.

Annotation ``.txt``: UTF-8, one segment per line, ``start<TAB>end<TAB>speaker<TAB>text`` with
times in seconds and speakers ``O1``/``O2``.  Evaluation sets have only the first three columns:
their utterances get ``text=None`` and the data directory gets no ``text`` file, which tells the
scoring stage to skip them.  A file without any TAB is split on blanks instead (at most four
fields), as the challenge baseline does, so a space-separated copy of the data still reads.

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
Errors (ValueError naming ``file:line``): a column count other than 3 or 4, a line with 3
columns in a file with 4 (or the reverse), non-numeric times, ``start < 0``, ``end <= start``,
a speaker that is not one plain token, a segment ending after the audio by more than
``end_tolerance`` (0.05 s by default: annotation tools round the last boundary up by a few
milliseconds; such ends are clipped to the audio length, the id keeps the annotated time), and
two segments giving the same utterance id.  Skipped and counted (not errors): blank lines, and
segments whose text is empty in a 4-column file.

Context: ``text_prev`` / ``text_next`` of an utterance are the texts of the previous / next
kept segment of the same recording ordered by start time (either speaker), empty at the ends.

Usage:
    python -m espnet_sllm.data.mlc_slm --root /db/MLC-SLM/dev --out data/dev
    python -m espnet_sllm.data.mlc_slm --root /db/MLC-SLM/MLC-SLM_Workshop-Training_Set_1 \\
        --out data/train_part1 --langs English-American Japanese

    from espnet_sllm.data.mlc_slm import read_mlc_slm
    utts, stats = read_mlc_slm("/db/MLC-SLM/dev", languages=["Japanese"])
"""
import argparse
import logging
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import soundfile

from espnet_sllm.data.kaldi_dir import Segment, Utterance, write_data_dir

logger = logging.getLogger(__name__)

ENGLISH = "English"
ACCENT_SUFFIX = "_English"
# Seconds a segment may end after the audio before it is an error (see the module docstring).
END_TOLERANCE = 0.05
_SPEAKER_RE = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass
class MlcSlmStats:
    """What the reader kept and skipped, for the log of the data preparation stage."""

    recordings: int = 0
    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    clipped_end: int = 0
    wav_only: int = 0
    has_text: bool = True
    per_language: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        skipped = ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())) or "none"
        langs = ", ".join(f"{k}={v}" for k, v in sorted(self.per_language.items()))
        return (
            f"recordings={self.recordings} kept={self.kept} skipped: {skipped}; "
            f"ends clipped to the audio length={self.clipped_end}; "
            f"whole-recording utterances (wav without txt)={self.wav_only}; "
            f"text={'yes' if self.has_text else 'no (evaluation set, not scored)'}; "
            f"per language: {langs}"
        )


@dataclass
class _Recording:
    label: str  # utt2lang label: English-American, Japanese, ...
    session: str
    wav: str
    txt: Optional[str]

    @property
    def recid(self) -> str:
        return f"{self.label}-{self.session}"


def _data_root(root: str) -> str:
    data = os.path.join(root, "data")
    if os.path.isdir(data):
        return data
    if os.path.isdir(root):
        return root
    raise FileNotFoundError(f"MLC-SLM root {root!r} does not exist")


def _language_label(rel_dir: List[str], where: str) -> str:
    """Language label from the folders between ``data/`` and the file."""
    language = rel_dir[0]
    if language != ENGLISH:
        return language
    if len(rel_dir) < 2:
        raise ValueError(f"{where}: English files must sit in an accent folder (English/<Accent>/)")
    accent = rel_dir[1]
    if accent.endswith(ACCENT_SUFFIX) and len(accent) > len(ACCENT_SUFFIX):
        accent = accent[: -len(ACCENT_SUFFIX)]
    return f"{ENGLISH}-{accent}"


def _find_recordings(data_root: str) -> List[_Recording]:
    recs: List[_Recording] = []
    for dirpath, dirnames, filenames in os.walk(data_root):
        dirnames.sort()  # deterministic walk, hence deterministic error messages
        rel = os.path.relpath(dirpath, data_root)
        rel_dir = [] if rel == "." else rel.split(os.sep)
        # Hidden files (e.g. macOS "._x.txt" resource forks in zip releases) are not data.
        names = {f for f in filenames if not f.startswith(".")}
        stems_txt = {f[:-4] for f in names if f.endswith(".txt")}
        stems_wav = {f[:-4] for f in names if f.endswith(".wav")}
        if not rel_dir:
            if stems_txt or stems_wav:
                logger.warning("%s: ignoring files outside a language folder", data_root)
            continue
        for stem in sorted(stems_txt | stems_wav):
            txt = os.path.join(dirpath, stem + ".txt") if stem in stems_txt else None
            wav = os.path.join(dirpath, stem + ".wav")
            if stem not in stems_wav:
                raise ValueError(f"{txt}: no audio file {stem}.wav next to this annotation")
            where = txt or wav
            if any(c.isspace() for c in stem) or any(any(c.isspace() for c in d) for d in rel_dir):
                raise ValueError(f"{where}: whitespace in the path would break Kaldi ids")
            recs.append(_Recording(_language_label(rel_dir, where), stem, wav, txt))
    return recs


def _parse_time(s: str, what: str, where: str) -> float:
    try:
        t = float(s)
    except ValueError:
        raise ValueError(f"{where}: {what} time {s!r} is not a number") from None
    if t != t or t in (float("inf"), float("-inf")):
        raise ValueError(f"{where}: {what} time {s!r} is not finite")
    return t


def _read_annotation(
    rec: _Recording, duration: float, end_tolerance: float, stats: MlcSlmStats
) -> List[Tuple[float, float, str, Optional[str], float, float, str]]:
    """Parse one .txt: (start, end, spk, text, id_start, id_end, where) per kept segment."""
    out = []
    ncols_file = None
    with open(rec.txt, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{rec.txt}:{lineno}"
            line = raw.rstrip("\r\n")
            if not line.strip():
                stats.skipped["blank_line"] += 1
                continue
            cols = line.split("\t") if "\t" in line else line.split(maxsplit=3)
            if len(cols) not in (3, 4):
                raise ValueError(
                    f"{where}: expected 3 or 4 TAB-separated columns "
                    f"(start, end, speaker[, text]), got {len(cols)}: {line!r}"
                )
            if ncols_file is None:
                ncols_file = len(cols)
            elif len(cols) != ncols_file:
                raise ValueError(
                    f"{where}: {len(cols)} columns, but the first segment of this file has "
                    f"{ncols_file}: {line!r}"
                )
            start = _parse_time(cols[0].strip(), "start", where)
            end = _parse_time(cols[1].strip(), "end", where)
            spk = cols[2].strip()
            if start < 0:
                raise ValueError(f"{where}: negative start time {start}")
            if end <= start:
                raise ValueError(f"{where}: end time {end} is not after start time {start}")
            if not _SPEAKER_RE.match(spk):
                raise ValueError(f"{where}: speaker {spk!r} must be one plain token like O1")
            if end > duration + end_tolerance:
                raise ValueError(
                    f"{where}: segment ends at {end} s, after the end of the audio "
                    f"({duration:.3f} s, {rec.wav}) by more than {end_tolerance} s"
                )
            seg_end = end
            if end > duration:
                seg_end = duration
                stats.clipped_end += 1
                if seg_end <= start:
                    raise ValueError(
                        f"{where}: segment starts at {start} s, at or after the end of the "
                        f"audio ({duration:.3f} s, {rec.wav})"
                    )
            text = None
            if len(cols) == 4:
                text = cols[3].strip()
                if not text:
                    stats.skipped["empty_text"] += 1
                    logger.debug("%s: empty text, segment skipped", where)
                    continue
            out.append((start, seg_end, spk, text, start, end, where))
    if not out:
        logger.warning("%s: no usable segment", rec.txt)
    return out


def _cs(t: float) -> str:
    return f"{round(t * 100):06d}"


def read_mlc_slm(
    root: str,
    languages: Optional[Sequence[str]] = None,
    end_tolerance: float = END_TOLERANCE,
) -> Tuple[List[Utterance], MlcSlmStats]:
    """Read one MLC-SLM set into utterance records.

    Args:
        root: the set folder (holding ``data/``) or its ``data/`` folder.
        languages: keep only these languages; an entry matches a language (``English``,
            ``Japanese``) or a label (``English-American``), case-insensitively.  None = all.
        end_tolerance: seconds a segment may end after the audio (clipped, counted).

    Returns:
        (utterances ordered by recording id then start time, statistics).  Each utterance has
        ``wav`` = absolute path of the recording, ``segment`` = (recid, start, end),
        ``spk``, ``lang`` (label), and, unless it is an evaluation set, ``text``,
        ``text_prev`` and ``text_next``.
    """
    data_root = _data_root(root)
    recs = _find_recordings(data_root)
    if not recs:
        raise ValueError(f"{data_root}: no .wav / .txt files found below the language folders")

    if languages:
        wanted = {x.lower() for x in languages}
        found = {r.label for r in recs} | {r.label.split("-")[0] for r in recs}
        unknown = sorted(x for x in languages if x.lower() not in {f.lower() for f in found})
        if unknown:
            raise ValueError(
                f"{data_root}: no recordings for language(s) {unknown}; found: {sorted(found)}"
            )
        recs = [
            r for r in recs if r.label.lower() in wanted or r.label.split("-")[0].lower() in wanted
        ]

    # Recording ids must be unique even though grouping folders are dropped from them.
    by_id: Dict[str, _Recording] = {}
    for r in recs:
        if r.recid in by_id:
            raise ValueError(
                f"two recordings get the id {r.recid!r}: {by_id[r.recid].wav} and {r.wav}"
            )
        by_id[r.recid] = r

    stats = MlcSlmStats()
    utts: List[Utterance] = []
    labelled: List[str] = []
    unlabelled: List[str] = []
    for recid in sorted(by_id):
        rec = by_id[recid]
        wav = os.path.abspath(rec.wav)
        try:
            duration = soundfile.info(wav).duration
        except RuntimeError as e:  # soundfile reports unreadable files as RuntimeError
            raise ValueError(f"{wav}: cannot read audio header: {e}") from None
        stats.recordings += 1

        if rec.txt is None:
            # Evaluation audio without annotation: one utterance over the whole recording,
            # its speaker being the recording itself (nothing better is known).
            logger.info("%s: no annotation, using the whole recording as one utterance", wav)
            stats.wav_only += 1
            unlabelled.append(wav)
            uttid = f"{recid}-{_cs(0.0)}-{_cs(duration)}"
            utts.append(Utterance(uttid=uttid, wav=wav, spk=recid, lang=rec.label,
                                  segment=Segment(recid, 0.0, duration)))
            stats.kept += 1
            stats.per_language[rec.label] += 1
            continue

        segs = _read_annotation(rec, duration, end_tolerance, stats)
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
                raise ValueError(
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
        stats.kept += len(rec_utts)
        stats.per_language[rec.label] += len(rec_utts)

    if labelled and unlabelled:
        # A set is either scored or not; a mix usually means a truncated or misplaced file.
        raise ValueError(
            f"{data_root}: {len(labelled)} annotation files have text but {len(unlabelled)} "
            f"recordings have none (e.g. {unlabelled[0]}); a set must be all transcribed "
            f"(4 columns) or all untranscribed (3 columns / wav only)"
        )
    if not utts:
        raise ValueError(f"{data_root}: no utterance kept ({stats.summary()})")
    stats.has_text = not unlabelled
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
                        help="seconds a segment may end after the audio (clipped)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")

    utts, stats = read_mlc_slm(args.root, args.langs, args.end_tolerance)
    write_data_dir(args.out, utts)
    print(f"{args.out}: {stats.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
