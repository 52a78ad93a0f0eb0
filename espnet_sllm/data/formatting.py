"""Format a Kaldi data directory for training: compact 16-bit mono audio per utterance (stage 2).

Usage:
    python -m espnet_sllm.bin.format_data --in data/<set> --out dump/raw/<set> \\
        [--fs 16000] [--nj 2] [--channel mean|0|1|...] [--max_overshoot 0.5] [--overwrite false] \\
        [--skip_bad_text false] [--audio_format flac|wav]

Reads ``<in>`` (wav.scp [+ segments], utt2spk, spk2utt and the optional files text, utt2lang,
utt2task, utt2subdialect, text_prev, text_next, text_src, text_tgt, and the carried files
utt2tgtlang: ``CARRIED_FILES``) and writes ``<out>``:

    data/<uttid>.flac  the utterance at --fs Hz, mono, 16-bit PCM, lossless FLAC (the default
                       --audio_format flac; data/<uttid>.wav, a 16-bit WAV, with
                       --audio_format wav), unless referenced or shared (below)
    wav.scp            <uttid> <absolute path of its audio file>
    utt2num_samples    <uttid> <number of samples>
    utt2spk, spk2utt and the optional files, restricted to the kept utterances
    format_report.txt  how many utterances were written, kept from an earlier run, or dropped
                       (a count per reason, then every dropped utterance with its reason and
                       detail), how many are text-only, resampled, multi-channel, cut short,
                       referenced or shared, and what was repaired

No audio is stored twice:

* referenced: an utterance whose wav.scp entry is a whole file (no ``segments``) that already is
  what this tool would write (a WAV or FLAC file, 16-bit PCM, mono, at --fs Hz) is not copied:
  its wav.scp line names the source file's absolute path. It is read through once first, with
  the checks a copy gets (readable, not truncated, every frame decodes, not empty), so a
  broken source is dropped and counted as before; the formatted directory then needs the
  source corpus in place (as Kaldi's ``wav.scp`` always does before stage 2).
* shared: utterances with the same wav.scp entry and the same segment (the ``<uttid>-rep<k>``
  copies of ``espnet_sllm.data.balance``, ...) are formatted once, as the first
  of them in sorted order, and the others' wav.scp lines name that one's file.

FLAC (``--audio_format flac``, libsndfile through soundfile, its default compression level)
holds the same 16-bit samples as the WAV would, bit for bit, in fewer bytes: 0.65-0.71 of the
WAV's 115 MB per hour on synthetic speech with and without a noise floor (README, "Notes";
`bytes_per_hour` measures a formatted directory). ESPnet's ``sound`` reader (soundfile), stage
3, collect_stats and decoding read it as they read WAV.

wav.scp entries may be
    a path of any file libsndfile reads (wav, flac, ogg, ...),
    a pipe ``<command> |`` whose stdout is a WAV stream, e.g. ``sox x.flac -t wav - |``,
        ``ffmpeg -i x.mp3 -f wav - |`` (run with bash and pipefail; a failing command is an
        error naming the wav.scp line),
    a Kaldi archive offset ``foo.ark:123`` holding a wav (read with kaldiio),
    empty (the line is just the utterance id): a text-only utterance (a task of
        ``preprocessor_conf.text_only_tasks``, e.g. text QA beside speech tasks). It gets a
        WAV of 0 samples (header only, whatever --audio_format: libsndfile 1.2.2 writes a FLAC
        of 0 samples as an empty file that it cannot open again) and ``utt2num_samples`` 0, so
        ESPnet's loaders, stage 3 and decoding read it like any other; all text-only
        utterances share that one file. The count is logged and reported. Such an utterance
        cannot have a segment (an error naming segments:line).

The input is read as Kaldi's ``utils/fix_data_dir.sh`` repairs it (``kaldi_dir.fix_data_dir``):
unsorted files are sorted, ``spk2utt`` is rebuilt from ``utt2spk``, and an utterance missing
from one of the per-utterance files (``text`` but not ``wav.scp``, or the reverse, ...) or with
a zero-length or negative segment is dropped and counted (``not_in_every_file``,
``bad_segment_time``). A line that is not UTF-8 is an error naming file:line, or, with
``--skip_bad_text true``, its utterance is dropped and counted (``not_utf8``). A duplicated id
stays an error naming the id and both lines.

Every utterance that is dropped is counted under a named reason (``DROP_REASONS``) in
format_report.txt, never skipped silently; the run fails only when nothing is left:

    not_utf8, not_in_every_file, bad_segment_time   the directory's files (above)
    missing_audio           the wav.scp path (or the archive of ``foo.ark:123``) does not exist
    unreadable_audio        libsndfile cannot open or read the file (empty file, bad header,
                            a WAV whose data is shorter than its header says, a FLAC that does
                            not decode to its end), or kaldiio cannot read the archive offset
    empty_audio             the audio (or the segment's part of it) has 0 samples
    segment_beyond_audio    a segment starts after its recording ends, or ends more than
                            --max_overshoot seconds after it

A pipe whose command fails stays an error naming the wav.scp line (a missing tool would
otherwise drop every utterance).

With ``segments``, every utterance is cut from its recording at [start, end) (times rounded to
the nearest sample); a recording is read once for all of its segments.  A segment that ends
after the recording is cut short when it overshoots by at most --max_overshoot seconds (the
usual slack of annotations; counted as cut short), and dropped otherwise
(``segment_beyond_audio``).

Multi-channel audio is mixed down to mono by the mean of the channels (--channel mean, the
default, which keeps both talkers of a two-channel conversation), or one channel is taken
(--channel 0 for the first); either way the report counts the multi-channel utterances.  Audio
at another rate than --fs (8, 44.1, 48 kHz, ...) is resampled with a polyphase filter
(scipy.signal.resample_poly) and counted per source rate; the result is clipped to [-1, 1)
before the 16-bit conversion (``round(x * 32768)``, the inverse of reading 16-bit PCM as
``int / 32768``, so a 16-bit source that is only cut keeps its samples exactly).

Resumable: ``data/.format_state.jsonl`` records, for every utterance, its source entry (and the
source file's size and mtime), segment, options, output path and sample count.  An utterance
whose record matches is not read or rewritten: a written file must still have the recorded
sample count in the recorded format, a referenced source must still have its recorded size
and mtime.  Files are written to a temporary name and renamed, so an interrupted run never
leaves a truncated file.  ``--overwrite true`` redoes everything.  Drops for ``missing_audio``
/ ``unreadable_audio`` are tried again on every run (the file may have been restored since).
Files of ``data/`` named after an input utterance that no wav.scp line uses any more (the
WAV of an earlier --audio_format wav run, an utterance now referenced, shared or dropped) are
removed.
"""
import io
import json
import logging
import math
import os
import re
import struct
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import soundfile as sf

from espnet_sllm.data.kaldi_dir import (
    FIX_REASONS,
    OPTIONAL_FILES,
    Utterance,
    fix_data_dir,
    read_kv,
    read_kv_numbered,
    validate_data_dir,
    write_data_dir,
    write_kv,
)

logger = logging.getLogger("format_data")

STATE_NAME = ".format_state.jsonl"
# Files of a data directory that this tool reads or rebuilds; anything else is reported.
# Per-utterance files that the Utterance record does not hold, copied as they are (restricted
# to the kept utterances) by this tool and filter_data: sllm.sh passes them as data names
# (utt2tgtlang -> tgt_lang) and stage 9 scores with them. Each covers all utterances or none.
CARRIED_FILES = ("utt2tgtlang",)
_KNOWN_FILES = {"wav.scp", "segments", "utt2spk", "spk2utt", "utt2num_samples",
                "format_report.txt", "filter_report.txt", *OPTIONAL_FILES.values(),
                *CARRIED_FILES}


def read_carried_files(in_dir: str, uttids: Sequence[str]) -> Dict[str, Dict[str, str]]:
    """``CARRIED_FILES`` of ``in_dir``: {file: {uttid: value}}; an utterance without an entry
    is an error naming it and the file (ESPnet's loader needs every utterance in every file)."""
    out: Dict[str, Dict[str, str]] = {}
    for fname in CARRIED_FILES:
        path = os.path.join(in_dir, fname)
        if not os.path.isfile(path):
            continue
        table = read_kv(path)
        missing = [u for u in uttids if u not in table]
        if missing:
            raise ValueError(
                f"{path}: {len(missing)} of {len(uttids)} utterances have no entry (e.g. "
                f"{missing[0]!r}); give it for all or none"
            )
        out[fname] = table
    return out


def write_carried_files(out_dir: str, tables: Dict[str, Dict[str, str]],
                        uttids: Sequence[str]) -> None:
    """Write the carried files restricted to ``uttids``; remove a stale one the input lacks."""
    for fname in CARRIED_FILES:
        path = os.path.join(out_dir, fname)
        if fname in tables:
            write_kv(path, {u: tables[fname][u] for u in uttids})
        elif os.path.exists(path):
            os.remove(path)


class FormatError(ValueError):
    """A problem with the input, reported as one message naming the offending line."""


class AudioUnreadable(FormatError):
    """The audio of one wav.scp entry cannot be used: its utterances are dropped and counted
    under ``reason`` (``missing_audio`` or ``unreadable_audio``), not a stop of the run."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason

    def __reduce__(self):  # picklable across the worker processes
        return AudioUnreadable, (self.reason, str(self))


# Reasons under which stage 2 drops an utterance, in the order of its report: those of
# `fix_data_dir` (the data directory's files), then those of the audio.
DROP_REASONS = FIX_REASONS + ("missing_audio", "unreadable_audio", "empty_audio",
                              "segment_beyond_audio")
# Drops that depend on the audio file's presence or content, which may change without the
# wav.scp entry changing: never taken from an earlier run's state, always tried again.
_RETRY_REASONS = ("missing_audio", "unreadable_audio")


# Output formats of --audio_format: (libsndfile major format, file suffix). Both hold 16-bit
# PCM; FLAC is lossless, so the samples read back are the same.
AUDIO_FORMATS: Dict[str, Tuple[str, str]] = {"flac": ("FLAC", ".flac"), "wav": ("WAV", ".wav")}
# Text-only utterances get a 0-sample WAV whatever --audio_format: libsndfile (1.2.2, the one
# soundfile ships) writes a 0-sample FLAC as an empty file that it then cannot open ("Format not
# recognised"), so ESPnet's sound reader would fail on it.
_TEXT_ONLY_FORMAT = "wav"
# Sources a whole-file utterance may reference instead of being copied: every reader of a
# formatted directory (ESPnet's sound reader, stage 3, decoding) opens them with soundfile.
_REFERENCE_FORMATS = ("WAV", "FLAC")


@dataclass
class Job:
    """One recording and the utterances to cut from it (one per distinct segment: the copies of
    an utterance share its result, see `format_data`)."""

    recid: str
    entry: str  # the wav.scp value
    where: str  # "<wav.scp>:<line>" for messages
    utts: List[Tuple[str, Optional[Tuple[float, float]], str]]  # (uttid, (start, end), out path)


# --------------------------------------------------------------------------- audio input
#
# Why not kaldiio for everything: kaldiio 2.18.1 (`kaldiio.load_mat`, which `load_scp` uses per
# entry) was measured on each wav.scp form (2026-12-01, this venv):
#   plain WAV paths: reads 8/16-bit PCM only (24-bit and float WAV: "bytes_per_sample must be
#       1, 2, 4 or 8"), no ogg/mp3 ("UnicodeDecodeError"), a truncated WAV reads as a shorter
#       recording without any error, and every access reads the whole file;
#   pipes: run with /bin/sh without pipefail, the exit status is ignored (`false | cat a.wav |`
#       and `sox ... ; false |` read as good audio), stderr is not kept for the message, a
#       stream whose header sizes are 0 (what a program writing to a pipe may write) fails
#       ("not a WAVE file"), 24-bit output fails as above;
#   segments (`load_scp(..., segments=)`): sample indices truncated, not rounded, and errors
#       name no line.
# So plain paths are read with soundfile (random access to the segments, every format
# libsndfile knows, the truncation check below), pipes are run here (bash, pipefail, stderr in
# the error) and their bytes decoded by libsndfile (header sizes fixed first, when needed), and
# kaldiio reads the archive offsets ``foo.ark:123``, which it handles well.


def _wav_stream_sized(data: bytes, where: str) -> bytes:
    """``data`` (a RIFF/WAVE byte stream) with its RIFF and data chunk sizes set to its length.

    libsndfile trusts the header's data size; programs writing to a pipe cannot know it and
    write 0 or 0xFFFFFFFF, so here the data chunk is taken to run to the end of the stream
    (libsndfile drops a last partial frame) and libsndfile then decodes it, in any encoding."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise FormatError(f"{where}: output is not a WAV stream (starts with {data[:12]!r})")
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if cid == b"data":
            n = len(data) - pos - 8
            if len(data) - 8 > 0xFFFFFFFF:
                raise FormatError(f"{where}: WAV stream of {len(data)} bytes without its data "
                                  f"size: longer than a WAV can say (write FLAC or RF64)")
            out = bytearray(data)
            out[4:8] = struct.pack("<I", len(data) - 8)
            out[pos + 4:pos + 8] = struct.pack("<I", n)
            return bytes(out)
        pos += 8 + size + (size & 1)
    raise FormatError(f"{where}: WAV stream has no data chunk")


def _decode_bytes(data: bytes, where: str) -> Tuple[np.ndarray, int]:
    """(frames, channels) float32 and the sample rate of an audio byte stream (a pipe's
    stdout)."""
    if not data:
        raise FormatError(f"{where}: the command wrote no audio to stdout")
    try:
        x, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        if len(x) > 0 or len(data) <= 44 or data[:4] != b"RIFF":
            return x, rate
    except RuntimeError as e:  # soundfile.LibsndfileError is a RuntimeError
        if data[:4] != b"RIFF":
            raise FormatError(f"{where}: cannot decode the audio: {e}") from None
    # A WAV stream whose header sizes are placeholders: 0 frames, or refused.
    try:
        return sf.read(io.BytesIO(_wav_stream_sized(data, where)), dtype="float32",
                       always_2d=True)
    except RuntimeError as e:
        raise FormatError(f"{where}: cannot decode the WAV stream: {e}") from None


def _run_pipe(command: str, where: str) -> bytes:
    proc = subprocess.run(["bash", "-c", "set -o pipefail\n" + command],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise FormatError(
            f"{where}: command failed with exit code {proc.returncode}: {command}"
            + ("\n  " + "\n  ".join(err) if err else "")
        )
    return proc.stdout


def _is_pipe(entry: str) -> bool:
    return entry.strip().endswith("|")


def _source_stat(entry: str) -> Optional[List[int]]:
    """[size, mtime_ns] of a plain-file wav.scp entry (None for a pipe, an archive offset, an
    empty entry or a missing file): recorded so that a changed source is formatted again."""
    path = entry.strip()
    if not path or _is_pipe(path):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns] if os.path.isfile(path) else None


class Source:
    """Random access to the frames of one recording, as (frames, channels) float32."""

    def __init__(self, entry: str, where: str):
        self.where = where
        self.path: Optional[str] = None  # a plain file (not a pipe or archive offset)
        self._file = None
        self._data = None
        stripped = entry.strip()
        if _is_pipe(stripped):
            command = stripped[:-1].strip()
            self._data, self.rate = _decode_bytes(_run_pipe(command, where), where)
        elif not os.path.exists(stripped) and _is_ark(stripped):
            self._data, self.rate = _read_ark(stripped, where)
        else:
            if not os.path.isfile(stripped):
                raise AudioUnreadable("missing_audio",
                                      f"{where}: audio file not found: {stripped}")
            try:
                self._file = sf.SoundFile(stripped)
            except RuntimeError as e:
                raise AudioUnreadable("unreadable_audio",
                                      f"{where}: cannot read {stripped}: {e}") from None
            self.path = stripped
            self.rate = self._file.samplerate
            short = _wav_truncation(self._file)
            if short:
                self._file.close()
                raise AudioUnreadable("unreadable_audio", f"{where}: {stripped} is truncated: "
                                                          f"{short}")
        self.frames = len(self._data) if self._data is not None else self._file.frames

    def read(self, start: int, stop: int) -> np.ndarray:
        if self._data is not None:
            return self._data[start:stop]
        self._file.seek(start)
        return self._file.read(stop - start, dtype="float32", always_2d=True)

    def referable(self, fs: int) -> bool:
        """Whether the file as it is could be this tool's output: WAV or FLAC, 16-bit PCM,
        mono, at ``fs`` Hz (then a whole-file utterance references it instead of a copy)."""
        f = self._file
        return f is not None and f.format in _REFERENCE_FORMATS and f.subtype == "PCM_16" \
            and f.channels == 1 and f.samplerate == fs

    def decoded_frames(self) -> int:
        """Read the whole file through (blocks of 2^20 frames, int16) and return its frame
        count: a file damaged after its header (a FLAC frame that does not decode, a FLAC cut
        short) raises RuntimeError, as reading it for a copy would."""
        self._file.seek(0)
        n = 0
        while True:
            block = self._file.read(1 << 20, dtype="int16")
            if len(block) == 0:
                return n
            n += len(block)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


_DATA_SIZE = re.compile(r"^data : (\d+) \(should be (\d+)\)", re.M)


def _wav_truncation(f: "sf.SoundFile") -> Optional[str]:
    """For a WAV file whose data chunk ends before the size its header gives (a copy cut
    short), what libsndfile says about it; None otherwise. libsndfile would read such a file
    up to where it ends, so a cut-off recording would pass for a complete one. A size of 0 or
    near 4 GiB is the placeholder of a program that wrote to a pipe, not a cut."""
    if f.format != "WAV":
        return None
    m = _DATA_SIZE.search(f.extra_info)
    if m is None:
        return None
    declared, actual = int(m.group(1)), int(m.group(2))
    if declared == 0 or declared >= 0x7F000000 or declared <= actual:
        return None
    return f"its header gives {declared} bytes of audio data, the file holds {actual}"


def _is_ark(entry: str) -> bool:
    path, _, offset = entry.rpartition(":")
    return bool(path) and offset.isdigit() and os.path.isfile(path)


def _read_ark(entry: str, where: str) -> Tuple[np.ndarray, int]:
    import kaldiio

    try:
        value = kaldiio.load_mat(entry)
    except Exception as e:  # kaldiio raises several types for a bad offset
        raise AudioUnreadable("unreadable_audio", f"{where}: cannot read {entry}: {e}") from None
    if not isinstance(value, tuple):
        raise FormatError(f"{where}: {entry} holds a matrix, not audio (rate, samples)")
    rate, x = value
    x = np.asarray(x)
    scale = 32768.0 if x.dtype == np.int16 else (2147483648.0 if x.dtype == np.int32 else 1.0)
    x = (x / scale).astype(np.float32)
    return (x[:, None] if x.ndim == 1 else x), int(rate)


# --------------------------------------------------------------------------- processing


def to_mono(x: np.ndarray, channel: str, where: str) -> np.ndarray:
    """(frames, channels) -> (frames,) by the channel mean or by picking one channel."""
    if channel == "mean":
        return x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
    c = int(channel)
    if c >= x.shape[1]:
        raise FormatError(f"{where}: --channel {c} but the audio has {x.shape[1]} channel(s)")
    return x[:, c]


def resample(x: np.ndarray, rate: int, fs: int) -> np.ndarray:
    """(frames,) at ``rate`` -> (ceil(frames * fs / rate),) at ``fs``."""
    if rate == fs:
        return x
    from scipy.signal import resample_poly

    g = math.gcd(rate, fs)
    return resample_poly(x, fs // g, rate // g).astype(np.float32)


def to_int16(x: np.ndarray) -> np.ndarray:
    """(frames,) float in [-1, 1] -> (frames,) int16 as ``round(x * 32768)``, clipped.

    The exact inverse of reading 16-bit PCM as ``int / 32768`` (what soundfile does), done here
    rather than by libsndfile so that "a cut 16-bit source keeps its samples" does not depend
    on the libsndfile version's float scaling."""
    return np.clip(np.round(x.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def write_audio(path: str, x: np.ndarray, fs: int, audio_format: str) -> None:
    """Write (frames,) float ``x`` as 16-bit mono ``audio_format`` (a key of `AUDIO_FORMATS`)
    at ``path``: to a temporary name first, then renamed (an interrupted run never leaves a
    file cut short at its final name)."""
    major, suffix = AUDIO_FORMATS[audio_format]
    tmp = path + ".tmp" + suffix
    sf.write(tmp, to_int16(x), fs, subtype="PCM_16", format=major)
    os.replace(tmp, path)


def out_path(data_dir: str, uttid: str, audio_format: str) -> str:
    """The absolute path of the file written for ``uttid``: ``<data_dir>/<uttid>.<suffix>``."""
    return os.path.abspath(os.path.join(data_dir, uttid + AUDIO_FORMATS[audio_format][1]))


def process(job: Job, fs: int, channel: str, max_overshoot: float,
            audio_format: str = "flac") -> List[dict]:
    """Format the utterances of one recording; one result record per utterance.

    A record has ``path`` (its wav.scp value: the file written, or the source for a
    reference), ``n`` (samples), ``rate`` and ``channels`` (of the source), ``clipped`` (a
    segment cut short at the end of its recording) and ``ref`` (True: the source is referenced,
    not copied) for a kept utterance, or ``reason`` (of `DROP_REASONS`) and ``drop`` (the
    detail) for a dropped one; and always ``utt``, ``src`` (the entry), ``stat`` (the source
    file's [size, mtime_ns] or None), ``seg`` and the options ``fs``, ``channel``, ``fmt``."""
    stat = _source_stat(job.entry)

    def record(uttid, seg):
        return {"utt": uttid, "src": job.entry, "stat": stat, "seg": seg, "fs": fs,
                "channel": channel, "fmt": audio_format}

    try:
        src = Source(job.entry, job.where)
    except AudioUnreadable as e:
        return [dict(record(uttid, seg), reason=e.reason, drop=str(e))
                for uttid, seg, _ in job.utts]
    results = []
    try:
        for uttid, seg, out in job.utts:
            rec = record(uttid, seg)
            if seg is None:
                start, stop = 0, src.frames
                if channel in ("mean", "0") and src.referable(fs):
                    results.append(_reference(rec, src, job))
                    continue
            else:
                start = int(round(seg[0] * src.rate))
                stop = int(round(seg[1] * src.rate))
                over = (stop - src.frames) / src.rate
                if start >= src.frames:
                    rec["reason"] = "segment_beyond_audio"
                    rec["drop"] = (f"segment starts at {seg[0]:.2f}s, after the end of recording "
                                   f"{job.recid} ({src.frames / src.rate:.2f}s)")
                elif over > max_overshoot:
                    rec["reason"] = "segment_beyond_audio"
                    rec["drop"] = (f"segment ends at {seg[1]:.2f}s, {over:.2f}s after the end of "
                                   f"recording {job.recid} (more than --max_overshoot "
                                   f"{max_overshoot}s)")
                elif over > 0:
                    rec["clipped"] = round(over, 6)
                stop = min(stop, src.frames)
            if "drop" not in rec:
                try:
                    frames = src.read(start, stop)
                except RuntimeError as e:  # libsndfile: a file damaged after its header
                    rec["reason"] = "unreadable_audio"
                    rec["drop"] = f"{job.where}: cannot read {job.entry.strip()}: {e}"
            if "drop" not in rec:
                x = resample(to_mono(frames, channel, job.where), src.rate, fs)
                if len(x) == 0:
                    rec["reason"], rec["drop"] = "empty_audio", "0 samples of audio"
                else:
                    write_audio(out, x, fs, audio_format)
                    rec.update(n=len(x), rate=src.rate, channels=int(frames.shape[1]), path=out)
            results.append(rec)
    finally:
        src.close()
    return results


def _reference(rec: dict, src: Source, job: Job) -> dict:
    """``rec`` completed for a whole-file utterance whose source is referenced, not copied
    (`Source.referable`), after reading it through as a copy would."""
    try:
        n = src.decoded_frames()
    except RuntimeError as e:  # libsndfile: a file damaged after its header
        return dict(rec, reason="unreadable_audio",
                    drop=f"{job.where}: cannot read {src.path}: {e}")
    if n != src.frames:
        return dict(rec, reason="unreadable_audio",
                    drop=f"{job.where}: {src.path} decodes to {n} samples, its header gives "
                         f"{src.frames}")
    if n == 0:
        return dict(rec, reason="empty_audio", drop="0 samples of audio")
    return dict(rec, n=n, rate=src.rate, channels=1, path=os.path.abspath(src.path), ref=True)


def _process_star(args) -> List[dict]:
    return process(*args)


def _file_frames(path: str, fs: int, major: str) -> Optional[int]:
    """Frames of an existing 16-bit mono file of format ``major`` at ``fs`` Hz; None when
    absent or different."""
    try:
        info = sf.info(path)
    except RuntimeError:
        return None
    if info.samplerate != fs or info.channels != 1 or info.subtype != "PCM_16" \
            or info.format != major:
        return None
    return info.frames


def _load_state(path: str) -> Dict[str, dict]:
    state: Dict[str, dict] = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                    state[rec["utt"]] = rec
                except (ValueError, KeyError):
                    continue  # a line cut by an interrupted run: that utterance is simply redone
    return state


def _up_to_date(rec: Optional[dict], entry: str, stat: Optional[List[int]], seg, fs: int,
                channel: str, audio_format: str, data_dir: str) -> bool:
    """Whether the state record ``rec`` of an utterance is still its result: the same entry,
    segment and options, the source file unchanged (size, mtime), and its output still there.
    Records of older versions (no ``stat``, ``fmt``, ``path``) wrote ``data/<uttid>.wav``."""
    if rec is None or rec.get("src") != entry or rec.get("fs") != fs \
            or rec.get("channel") != channel:
        return False
    if (tuple(rec["seg"]) if rec.get("seg") is not None else None) != seg:
        return False
    if rec.get("stat") is not None and rec["stat"] != stat:
        return False
    if "drop" in rec:
        return _reason(rec) not in _RETRY_REASONS
    if rec.get("ref"):
        return rec.get("stat") is not None and rec.get("path") == os.path.abspath(entry.strip())
    fmt = rec.get("fmt", "wav")
    if fmt != audio_format:
        return False
    path = rec.get("path") or out_path(data_dir, rec["utt"], "wav")
    major = AUDIO_FORMATS["wav" if rec.get("n") == 0 else fmt][0]
    return _file_frames(path, fs, major) == rec.get("n")


def _reason(rec: dict) -> str:
    """The drop reason of a state record (records of older versions had only the detail)."""
    if rec.get("reason"):
        return rec["reason"]
    return "empty_audio" if rec["drop"] == "empty audio" else "segment_beyond_audio"


def _shared(owner: dict, uttid: str) -> dict:
    """The record of ``uttid``, a copy of the utterance of record ``owner`` (same entry and
    segment): the owner's result, pointing at the same file."""
    rec = {k: v for k, v in owner.items() if k not in ("kept", "shared")}
    return dict(rec, utt=uttid, shared=owner["utt"])


def format_data(in_dir: str, out_dir: str, fs: int = 16000, nj: int = 2, channel: str = "mean",
                max_overshoot: float = 0.5, overwrite: bool = False,
                progress: bool = True, skip_bad_text: bool = False,
                audio_format: str = "flac") -> Dict:
    """Format ``in_dir`` into ``out_dir``; returns counts: utterances (ids found in any file of
    ``in_dir``), written (formatted by this run: a file written, a source referenced or a copy
    pointed at its original), kept (from an earlier run), dropped, text_only (utterances with
    an empty wav.scp entry, all pointing at one 0-sample WAV), dropped_for ({reason: n} over
    `DROP_REASONS`), resampled ({source rate: n}), multichannel (n mixed down or reduced to
    --channel), clipped (segments cut short at the end of their recording), referenced (n whose
    wav.scp line names their source file: no copy), shared (n whose wav.scp line names the file
    of an identical utterance: same entry and segment). The counts from resampled on are over
    the kept utterances (this run's and earlier runs')."""
    if os.path.abspath(in_dir) == os.path.abspath(out_dir):
        raise FormatError(f"--in and --out are the same directory ({in_dir})")
    if channel != "mean" and not channel.isdigit():
        raise FormatError(f"--channel must be 'mean' or a channel index, got {channel!r}")
    if audio_format not in AUDIO_FORMATS:
        raise FormatError(f"--audio_format must be one of {', '.join(AUDIO_FORMATS)}, got "
                          f"{audio_format!r}")
    if not os.path.isdir(in_dir):
        raise FormatError(f"{in_dir}: no such data directory")
    if not os.path.isfile(os.path.join(in_dir, "wav.scp")) \
            and os.path.isfile(os.path.join(in_dir, "text")):
        raise FormatError(
            f"{in_dir} is a text-only data directory (no wav.scp): give it speech first (the "
            f"recipe's TTS stage), then format the result"
        )
    try:
        fixed = fix_data_dir(in_dir, CARRIED_FILES, skip_bad_text=skip_bad_text)
    except ValueError as e:
        raise FormatError(str(e)) from None
    for note in fixed.notes:
        logger.warning("%s/%s", in_dir, note)
    utts = fixed.utts
    if not utts:
        uttid, reason, detail = fixed.dropped[0]
        raise FormatError(f"{in_dir}: every utterance was dropped, e.g. {uttid}: {reason} "
                          f"({detail})")
    carried = fixed.extra
    unknown = sorted(set(os.listdir(in_dir)) - _KNOWN_FILES)
    if unknown:
        logger.warning("%s: not copied (unknown to this tool): %s", in_dir, " ".join(unknown))

    wav_scp_path = os.path.join(in_dir, "wav.scp")
    line_of = fixed.wav_lines
    data_dir = os.path.join(out_dir, "data")
    os.makedirs(data_dir, exist_ok=True)
    state_path = os.path.join(data_dir, STATE_NAME)
    state = {} if overwrite else _load_state(state_path)

    # Utterances with the same entry and segment are one piece of audio: the first (in sorted
    # order) is formatted, the others (copies) share its result.
    owner_of: Dict[Tuple[str, Optional[Tuple[float, float]]], str] = {}
    copies: List[Tuple[str, str]] = []  # (uttid, owner uttid)
    jobs: Dict[str, Job] = {}  # by entry: a recording is read once whatever its ids
    results: Dict[str, dict] = {}
    text_only: List[Tuple[str, str]] = []  # (uttid, out path) to write
    n_text_only = 0
    stats: Dict[str, Optional[List[int]]] = {}
    for u in utts:
        if "/" in u.uttid or u.uttid.startswith("."):
            raise FormatError(f"{in_dir}: utterance id {u.uttid!r} cannot be a file name")
        # An empty entry is a text-only utterance (validate_data_dir refused it with a segment).
        n_text_only += not u.wav.strip()
        recid = u.segment.recid if u.segment else u.uttid
        seg = (u.segment.start, u.segment.end) if u.segment else None
        key = (u.wav.strip(), seg)
        if key in owner_of:
            copies.append((u.uttid, owner_of[key]))
            continue
        owner_of[key] = u.uttid
        if u.wav not in stats:
            stats[u.wav] = _source_stat(u.wav)
        if _up_to_date(state.get(u.uttid), u.wav, stats[u.wav], seg, fs, channel, audio_format,
                       data_dir):
            results[u.uttid] = dict(state[u.uttid], kept=True)
            continue
        if not u.wav.strip():
            text_only.append((u.uttid, out_path(data_dir, u.uttid, _TEXT_ONLY_FORMAT)))
            continue
        if u.wav.strip() not in jobs:
            jobs[u.wav.strip()] = Job(recid, u.wav, f"{wav_scp_path}:{line_of[recid]}", [])
        jobs[u.wav.strip()].utts.append((u.uttid, seg, out_path(data_dir, u.uttid,
                                                                audio_format)))

    todo = sum(len(j.utts) for j in jobs.values())
    logger.info("%s: %d utterances, %d up to date, %d to format from %d recordings, %d copies "
                "of another utterance (same recording and segment)",
                in_dir, len(utts), len(results), todo, len(jobs), len(copies))
    if n_text_only:
        logger.info("%s: %d text-only utterances (empty wav.scp entry): one WAV of 0 samples",
                    in_dir, n_text_only)
    tasks = [(j, fs, channel, max_overshoot, audio_format) for j in jobs.values()]
    from tqdm import tqdm

    with open(state_path, "w" if overwrite else "a", encoding="utf-8") as state_f, \
            tqdm(total=todo + len(text_only), unit="utt",
                 desc=f"format {os.path.basename(out_dir)}",
                 disable=not progress or todo + len(text_only) == 0, mininterval=1.0) as bar:
        def consume(recs: List[dict], count: bool = True) -> None:
            for rec in recs:
                results[rec["utt"]] = rec
                state_f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            state_f.flush()
            if count:
                bar.update(len(recs))

        for uttid, out in text_only:
            # Header only: ESPnet's sound reader gives it as an empty waveform.
            write_audio(out, np.zeros(0, dtype=np.float32), fs, _TEXT_ONLY_FORMAT)
            consume([{"utt": uttid, "src": "", "stat": None, "seg": None, "fs": fs,
                      "channel": channel, "fmt": audio_format, "n": 0, "path": out}])

        if nj <= 1 or len(tasks) <= 1:
            for t in tasks:
                consume(_process_star(t))
        else:
            import multiprocessing

            import scipy.signal  # noqa: F401  (slow import: once here, not in every worker)

            with multiprocessing.get_context("fork").Pool(min(nj, len(tasks))) as pool:
                for recs in pool.imap_unordered(_process_star, tasks, chunksize=1):
                    consume(recs)

        for uttid, owner in copies:
            rec = _shared(results[owner], uttid)
            old = state.get(uttid)
            if results[owner].get("kept") and old is not None \
                    and {k: v for k, v in old.items() if k != "kept"} == rec:
                results[uttid] = dict(old, kept=True)
            else:
                consume([rec], count=False)

    kept_utts: List[Utterance] = []
    num_samples: Dict[str, str] = {}
    dropped: List[Tuple[str, str, str]] = list(fixed.dropped)  # (uttid, reason, detail)
    for u in utts:
        rec = results[u.uttid]
        if "drop" in rec:
            dropped.append((u.uttid, _reason(rec), rec["drop"]))
            continue
        path = rec.get("path") or out_path(data_dir, rec["utt"], "wav")  # older records
        fields = {f: getattr(u, f) for f in OPTIONAL_FILES}
        kept_utts.append(Utterance(uttid=u.uttid, wav=path, spk=u.spk, **fields))
        num_samples[u.uttid] = str(rec["n"])
    dropped.sort()
    if not kept_utts:
        raise FormatError(f"{in_dir}: every utterance was dropped, e.g. {dropped[0][0]}: "
                          f"{dropped[0][1]} ({dropped[0][2]})")
    write_data_dir(out_dir, kept_utts)
    write_kv(os.path.join(out_dir, "utt2num_samples"), num_samples)
    write_carried_files(out_dir, carried, [u.uttid for u in kept_utts])
    validate_data_dir(out_dir)
    # Never remove a source, whatever its name (a --out whose data/ holds input audio).
    sources = {os.path.abspath(u.wav.strip()) for u in utts if u.wav.strip()}
    _remove_unused(data_dir, [u.uttid for u in utts], {u.wav for u in kept_utts} | sources)

    written = [results[u.uttid] for u in kept_utts]
    resampled: Dict[int, int] = {}
    for r in written:
        if r.get("rate") not in (None, fs) and r.get("src", "").strip():
            resampled[r["rate"]] = resampled.get(r["rate"], 0) + 1
    counts = {
        "utterances": len(utts) + len(fixed.dropped),
        "written": sum(1 for r in written if not r.get("kept")),
        "kept": sum(1 for r in written if r.get("kept")),
        "dropped": len(dropped),
        "text_only": n_text_only,
        "dropped_for": {reason: sum(1 for d in dropped if d[1] == reason)
                        for reason in DROP_REASONS},
        "resampled": dict(sorted(resampled.items())),
        "multichannel": sum(1 for r in written if r.get("channels", 1) > 1),
        "clipped": sum(1 for r in written if r.get("clipped")),
        "referenced": sum(1 for r in written if r.get("ref")),
        "shared": sum(1 for r in written if r.get("shared")),
    }
    how = "mixed down by the mean of the channels" if channel == "mean" else \
        f"channel {channel} kept"
    lines = [
        f"# format_data {in_dir} -> {out_dir} (fs={fs}, channel={channel}, "
        f"max_overshoot={max_overshoot}, skip_bad_text={skip_bad_text}, "
        f"audio_format={audio_format})",
        f"input utterances: {counts['utterances']}",
        f"written: {counts['written']}",
        f"kept from an earlier run: {counts['kept']}",
        f"dropped: {counts['dropped']}",
    ] + [f"dropped for {r}: {n}" for r, n in counts["dropped_for"].items()] + [
        f"text-only (empty wav.scp entry, 0 samples): {counts['text_only']}",
        f"resampled to {fs} Hz: {sum(resampled.values())}"
        + (" (" + ", ".join(f"from {r} Hz: {n}" for r, n in counts["resampled"].items()) + ")"
           if resampled else ""),
        f"multi-channel, {how}: {counts['multichannel']}",
        f"segments cut short at the end of their recording (at most --max_overshoot "
        f"{max_overshoot}s over): {counts['clipped']}",
        f"referenced, not copied (whole 16-bit mono WAV/FLAC files at {fs} Hz): "
        f"{counts['referenced']}",
        f"shared (the same recording and segment as another utterance, e.g. balancing "
        f"copies): {counts['shared']}",
    ] + [f"repaired: {note}" for note in fixed.notes] \
        + [f"dropped {utt}: {reason} ({detail})" for utt, reason, detail in dropped]
    with open(os.path.join(out_dir, "format_report.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    for utt, reason, detail in dropped[:_LOGGED_DROPS]:
        logger.warning("dropped %s: %s (%s)", utt, reason, detail)
    if len(dropped) > _LOGGED_DROPS:
        logger.warning("... and %d more dropped utterances, listed in %s",
                       len(dropped) - _LOGGED_DROPS, os.path.join(out_dir, "format_report.txt"))
    return counts


_LOGGED_DROPS = 20  # dropped utterances logged one by one (the report lists all)


def _remove_unused(data_dir: str, uttids: Sequence[str], used: Set[str]) -> None:
    """Remove the files this tool may have written for ``uttids`` (``<uttid>.wav``,
    ``<uttid>.flac`` and their temporary names) that are not in ``used`` (absolute paths: the
    wav.scp values and the sources): left by an earlier run with another --audio_format, or by
    an utterance now referenced, shared or dropped. No other name is touched."""
    for uttid in uttids:
        stem = os.path.abspath(os.path.join(data_dir, uttid))
        for _, suffix in AUDIO_FORMATS.values():
            for p in (stem + suffix, stem + suffix + ".tmp" + suffix):
                if p not in used and os.path.isfile(p):
                    os.remove(p)


# --------------------------------------------------------------------------- measuring


def bytes_per_hour(dump_dir: str, fs: Optional[int] = None) -> Dict[str, float]:
    """Storage of the audio of a formatted directory (``format_data``'s output), per hour.

    Every distinct file that ``<dump_dir>/wav.scp`` names is counted once (a file shared by
    several utterances, e.g. balancing copies, once), with its audio length from
    ``utt2num_samples`` (samples / ``fs``; ``fs`` None: each file's own rate, from its header).

    Returns a dict (all floats): ``files`` (distinct files), ``bytes`` (their total size),
    ``hours`` (their total audio), ``bytes_per_hour`` (bytes / hours), and the same split by
    where the files lie: ``inside_files``, ``inside_bytes``, ``inside_hours`` (under
    ``dump_dir``: written by format_data) and ``outside_files``, ``outside_bytes``,
    ``outside_hours`` (elsewhere: sources referenced, not copied). A directory without audio
    (only 0-sample files) is a ValueError; so is a wav.scp line that is not a file, naming it.
    """
    wav_scp = os.path.join(dump_dir, "wav.scp")
    lines = read_kv_numbered(wav_scp)
    ns_path = os.path.join(dump_dir, "utt2num_samples")
    num_samples = read_kv(ns_path)
    root = os.path.abspath(dump_dir) + os.sep
    files: Dict[str, Tuple[int, float]] = {}  # path -> (bytes, hours)
    for uttid, (path, lineno) in lines.items():
        path = path.strip()
        if path in files:
            continue
        if not os.path.isfile(path):
            raise ValueError(f"{wav_scp}:{lineno}: {uttid}: not a file: {path!r}")
        if uttid not in num_samples:
            raise ValueError(f"{ns_path}: no entry for {uttid} ({wav_scp}:{lineno})")
        rate = fs if fs is not None else sf.info(path).samplerate
        files[path] = (os.path.getsize(path), int(num_samples[uttid]) / rate / 3600.0)
    out: Dict[str, float] = {}
    for part, keep in (("", lambda p: True),
                       ("inside_", lambda p: os.path.abspath(p).startswith(root)),
                       ("outside_", lambda p: not os.path.abspath(p).startswith(root))):
        sel = [v for p, v in files.items() if keep(p)]
        out[part + "files"] = float(len(sel))
        out[part + "bytes"] = float(sum(b for b, _ in sel))
        out[part + "hours"] = sum(h for _, h in sel)
    if out["hours"] == 0:
        raise ValueError(f"{wav_scp}: no audio (every file has 0 samples)")
    out["bytes_per_hour"] = out["bytes"] / out["hours"]
    return out
