"""Reader of AISHELL-1 (Bu et al. 2017, OpenSLR resource 33) into Kaldi data directories.

Used by egs2/aishell_wmt/asr1 (Wu et al., transferable linear alignment module: the ASR task,
trained on ``train``, validated on ``dev``, tested on ``test``).

Layout
------
The corpus root (``$AISHELL`` of the recipe's db.sh, the folder ESPnet's egs2/aishell reads)
holds ``data_aishell/`` (the root may also be ``data_aishell/`` itself)::

    data_aishell/transcript/aishell_transcript_v0.8.txt
    data_aishell/wav/{train,dev,test}/<spk>/BAC009<spk>W<nnnn>.wav      (extracted), or
    data_aishell/wav/<spk>.tar.gz                                      (as downloaded)

``<spk>`` is ``S0002`` ... ``S0916``.  ``data_aishell.tgz`` of the download, once extracted,
holds one archive per speaker, ``wav/<spk>.tar.gz``, each with the folder
``train|dev|test/<spk>/`` of that speaker.  Such archives are extracted first
(`extract_speaker_archives`), with Python's tarfile and refusing any member that is not a
plain file or folder or whose path is absolute or has a ``..`` component (nothing of such an
archive is written).  They are extracted next to themselves, into ``data_aishell/wav`` (as
ESPnet's download script does; the archives are kept), or, with ``extract_dir``, into that
folder; a ``data_aishell/wav`` that is not writable without ``extract_dir`` is an error that
says to pass ``--extract_dir``.  Extraction is idempotent: a marker file
``.<spk>.tar.gz.extracted`` (holding the archive size) is written in the target folder only
after the whole archive is out, so a re-run skips extracted archives and redoes an interrupted
one.  The archives can be deleted afterwards.  WAV files are looked for in
``data_aishell/wav/<split>/<spk>/`` and ``<extract_dir>/<split>/<spk>/``; the same utterance
found twice is an error.

Transcript: UTF-8, ``<id> <words separated by spaces>``; the text is the words with every
space removed (Mandarin is scored per character; ESPnet's recipe does the same).

Ids
---
The utterance id is the file name without ``.wav`` (``BAC009S0002W0122``, the id of the
transcript, of Kaldi's and of ESPnet's recipes, so hypotheses compare line by line).  Kaldi
and ESPnet use the folder name (``S0002``) as speaker id, which is not a prefix of the
utterance id; here the speaker id is the utterance id up to and including the folder name,
``BAC009S0002``: the same grouping, and the Kaldi prefix rule holds.  A file whose name does
not contain its folder's name is an error.  ``utt2lang`` is ``zh``.

Checks
------
Per split, dropped and counted: ``no_transcript`` (a WAV whose id is not in the transcript;
the release has a few hundred) and ``empty_text``.  Transcript lines whose WAV is in none of
the three splits are dropped as ``no_audio``; which split such a line belongs to cannot be
known, so this count is made ONCE, for the whole transcript (the ``aishell transcript``
summary line), not per split; so are transcript lines with bytes that are not UTF-8
(``not_utf8``; their WAV is then ``no_transcript``).  A transcript line holding an id alone
counts as ``empty_text`` when its WAV is read.  With ``strict`` (``--strict true``) every drop
is an error instead.  Errors (`ReaderError`; the command line prints ``ERROR: ...`` and exits
with 1): a transcript id listed twice, an unsafe archive member, an archive that cannot be read
(truncated download), an utterance id found twice among the WAV files, a WAV whose name does
not contain its folder's name, a split without any WAV.

Usage:
    python -m espnet_sllm.data.corpora.aishell --root /db/aishell --data_dir data [--extract_dir DIR] \\
        [--strict true]
        # -> data/aishell_train data/aishell_dev data/aishell_test

    from espnet_sllm.data.corpora.aishell import read_aishell
    sets, stats = read_aishell("/db/aishell", extract_dir=None)
    sets["train"]          # List[Utterance];  stats["train"], stats["transcript"]: ReaderStats
"""
import argparse
import gzip
import logging
import os
import sys
import tarfile
import zlib
from pathlib import PurePosixPath
from typing import Dict, List, Optional, Sequence, Tuple

from espnet_sllm.data.kaldi_dir import Utterance
from espnet_sllm.data.corpora.reader_utils import (
    ReaderError,
    ReaderStats,
    add_strict_option,
    check_id,
    iter_lines,
    run_main,
    write_set,
)

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
LANG = "zh"
CORPUS_DIR = "data_aishell"
TRANSCRIPT = os.path.join("transcript", "aishell_transcript_v0.8.txt")
ARCHIVE_SUFFIX = ".tar.gz"
MARKER_SUFFIX = ".extracted"


def corpus_dir(root: str) -> str:
    """``<root>/data_aishell``, or ``root`` itself when it is that folder."""
    for cand in (os.path.join(root, CORPUS_DIR), root):
        if os.path.isdir(os.path.join(cand, "wav")) and \
                os.path.isdir(os.path.join(cand, "transcript")):
            return cand
    raise FileNotFoundError(
        f"{root}: not an AISHELL-1 root: expected {CORPUS_DIR}/wav/ and "
        f"{CORPUS_DIR}/transcript/ under it (the folder data_aishell.tgz was extracted in)"
    )


def _check_member(archive: str, member: tarfile.TarInfo) -> None:
    name = member.name
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or os.path.isabs(name) or ".." in parts \
            or (parts and ":" in parts[0]):
        raise ReaderError(f"{archive}: member {name!r} has an absolute path or a '..' "
                          f"component: refusing to extract this archive")
    if not (member.isfile() or member.isdir()):
        raise ReaderError(f"{archive}: member {name!r} is not a plain file or folder (a link "
                          f"or device): refusing to extract this archive")


def _extract_one(archive: str, target: str) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            # Every member is checked before anything is written (the archive is read twice):
            # an unsafe archive leaves no trace.
            members = tar.getmembers()
            for m in members:
                _check_member(archive, m)
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: a second line of defence
                tar.extractall(target, members=members, filter="data")
            else:  # pragma: no cover - older Pythons; the members were checked above
                tar.extractall(target, members=members)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise ReaderError(f"{archive}: cannot extract ({type(e).__name__}: {e}); a truncated "
                          f"download? Download it again") from None


def extract_speaker_archives(wav_dir: str, extract_dir: Optional[str] = None) -> ReaderStats:
    """Extract every ``<wav_dir>/*.tar.gz`` (per-speaker archives) once.

    Args:
        wav_dir: ``data_aishell/wav`` of the release.
        extract_dir: where to extract; None: into ``wav_dir`` itself, which must be writable.

    Returns:
        stats: rows = archives, kept = archives extracted now, per group ``extracted`` /
        ``already_extracted``.
    """
    stats = ReaderStats("aishell archives")
    archives = sorted(e.path for e in os.scandir(wav_dir)
                      if e.is_file() and e.name.endswith(ARCHIVE_SUFFIX))
    if not archives:
        return stats
    target = extract_dir if extract_dir else wav_dir
    if not extract_dir and not os.access(wav_dir, os.W_OK | os.X_OK):
        raise ReaderError(
            f"{wav_dir}: holds {len(archives)} per-speaker archives (*{ARCHIVE_SUFFIX}) to "
            f"extract, but is not writable: pass --extract_dir DIR (a writable folder; the "
            f"WAV files are extracted there)"
        )
    os.makedirs(target, exist_ok=True)
    for archive in archives:
        stats.rows += 1
        marker = os.path.join(target, f".{os.path.basename(archive)}{MARKER_SUFFIX}")
        size = str(os.path.getsize(archive))
        try:
            with open(marker, encoding="utf-8") as f:
                done = f.read().strip() == size
        except OSError:
            done = False
        if done:
            stats.per_group["already_extracted"] += 1
            continue
        logger.info("extracting %s into %s", archive, target)
        _extract_one(archive, target)
        tmp = marker + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(size + "\n")
        os.replace(tmp, marker)
        stats.keep("extracted")
    return stats


def read_transcript(path: str, stats: Optional[ReaderStats] = None) -> Dict[str, str]:
    """``{id: text without spaces}`` of ``aishell_transcript_v0.8.txt`` (text may be empty);
    a line that is not UTF-8 is dropped and counted in ``stats`` (an error without it)."""
    out: Dict[str, str] = {}
    line_of: Dict[str, int] = {}
    for lineno, line in iter_lines(path, stats=stats):
        where = f"{path}:{lineno}"
        fields = line.split(None, 1)
        uttid = check_id(fields[0], "utterance id", where)
        if uttid in out:
            raise ReaderError(f"{where}: id {uttid!r} already on line {line_of[uttid]}")
        line_of[uttid] = lineno
        out[uttid] = "".join(fields[1].split()) if len(fields) > 1 else ""
    return out


def find_wavs(wav_dirs: Sequence[str]) -> Dict[str, Dict[str, Tuple[str, str]]]:
    """``{split: {uttid: (absolute wav path, speaker id)}}`` of ``<dir>/<split>/<spk>/*.wav``
    over every folder of ``wav_dirs`` (see the module docstring for the speaker id)."""
    found: Dict[str, Dict[str, Tuple[str, str]]] = {s: {} for s in SPLITS}
    where_of: Dict[str, str] = {}
    seen_dirs = set()
    for wav_dir in wav_dirs:
        real = os.path.realpath(wav_dir)
        if real in seen_dirs:
            continue
        seen_dirs.add(real)
        for split in SPLITS:
            split_dir = os.path.join(wav_dir, split)
            if not os.path.isdir(split_dir):
                continue
            for spk_entry in sorted(os.scandir(split_dir), key=lambda e: e.name):
                if not spk_entry.is_dir():
                    continue
                spkdir = spk_entry.name
                for entry in os.scandir(spk_entry.path):
                    stem, ext = os.path.splitext(entry.name)
                    if ext.lower() != ".wav" or not entry.is_file():
                        continue
                    path = os.path.abspath(entry.path)
                    check_id(stem, "file name", path)
                    pos = stem.find(spkdir)
                    if pos < 0 or pos + len(spkdir) == len(stem):
                        raise ReaderError(
                            f"{path}: the file name does not contain its speaker folder's "
                            f"name {spkdir!r} followed by an utterance number (expected "
                            f"BAC009{spkdir}W<nnnn>.wav)"
                        )
                    if stem in where_of:
                        raise ReaderError(f"{path}: utterance {stem!r} found twice (also "
                                          f"{where_of[stem]})")
                    where_of[stem] = path
                    found[split][stem] = (path, stem[: pos + len(spkdir)])
    return found


def read_aishell(
    root: str, extract_dir: Optional[str] = None, strict: bool = False
) -> Tuple[Dict[str, List[Utterance]], Dict[str, ReaderStats]]:
    """Read the three splits of AISHELL-1, extracting per-speaker archives first if any.
    With ``strict``, a row that would be dropped (see the module docstring) is an error.

    Returns:
        ``({split: utterances sorted by id}, {split: stats, "transcript": stats,
        "archives": stats})``.  A split's stats count its WAV files (rows), kept utterances
        and drops; the transcript's count its lines, those with a WAV (kept), ``no_audio`` and
        ``not_utf8``.
    """
    cdir = corpus_dir(root)
    wav_dir = os.path.join(cdir, "wav")
    arch_stats = extract_speaker_archives(wav_dir, extract_dir)
    transcript_path = os.path.join(cdir, TRANSCRIPT)
    if not os.path.isfile(transcript_path):
        raise FileNotFoundError(f"{transcript_path}: AISHELL-1 transcript not found")
    tst = ReaderStats("aishell transcript", strict=strict)
    transcript = read_transcript(transcript_path, tst)
    wav_dirs = [wav_dir] + ([extract_dir] if extract_dir and os.path.isdir(extract_dir) else [])
    found = find_wavs(wav_dirs)

    sets: Dict[str, List[Utterance]] = {}
    stats: Dict[str, ReaderStats] = {"archives": arch_stats}
    for split in SPLITS:
        if not found[split]:
            raise ReaderError(
                f"no WAV file in {' or '.join(os.path.join(d, split) for d in wav_dirs)}: "
                f"expected {split}/<spk>/BAC009<spk>W<nnnn>.wav (or the per-speaker archives "
                f"<spk>{ARCHIVE_SUFFIX} in {wav_dir})"
            )
        st = ReaderStats(f"aishell {split}", strict=strict)
        utts: List[Utterance] = []
        for uttid in sorted(found[split]):
            path, spk = found[split][uttid]
            st.rows += 1
            text = transcript.get(uttid)
            if text is None:
                st.drop("no_transcript", path)
                continue
            if not text:
                st.drop("empty_text", path)
                continue
            utts.append(Utterance(uttid=uttid, wav=path, spk=spk, text=text, lang=LANG))
            st.keep()
        sets[split] = utts
        stats[split] = st

    have_wav = set().union(*(found[s] for s in SPLITS))
    for uttid in transcript:
        tst.rows += 1
        if uttid in have_wav:
            tst.keep()
        else:
            tst.drop("no_audio", transcript_path, uttid)
    stats["transcript"] = tst
    return sets, stats


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write Kaldi data directories <data_dir>/aishell_{train,dev,test} from "
                    "AISHELL-1.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Usage:")[1],
    )
    parser.add_argument("--root", required=True,
                        help="folder holding data_aishell/ (or data_aishell/ itself)")
    parser.add_argument("--data_dir", default="data",
                        help="where aishell_<split> go (default: data)")
    parser.add_argument("--extract_dir", default=None,
                        help="where to extract the per-speaker archives <spk>.tar.gz "
                             "(default: next to them, in data_aishell/wav)")
    add_strict_option(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        if not os.path.isdir(args.root):
            raise FileNotFoundError(f"AISHELL-1 root {args.root!r} does not exist")
        sets, stats = read_aishell(args.root, args.extract_dir or None, args.strict)
        if stats["archives"].rows:
            print(stats["archives"].summary())
        for split in SPLITS:
            stats[split].log_drops(logger)
            write_set(os.path.join(args.data_dir, f"aishell_{split}"), sets[split],
                      stats[split], f"AISHELL-1 {split}")
        stats["transcript"].log_drops(logger)
        print(f"{stats['transcript'].summary()} (no_audio: transcript lines without a WAV in "
              f"any split)")
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
