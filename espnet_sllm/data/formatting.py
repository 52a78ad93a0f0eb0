"""Format a Kaldi data directory for training: one 16-bit mono WAV per utterance (stage 2).

Usage:
    python -m espnet_sllm.bin.format_data --in data/<set> --out dump/raw/<set> \\
        [--fs 16000] [--nj 2] [--channel mean|0|1|...] [--max_overshoot 0.5] [--overwrite false] \\
        [--skip_bad_text false]

Reads ``<in>`` (wav.scp [+ segments], utt2spk, spk2utt and the optional files text, utt2lang,
utt2task, utt2subdialect, text_prev, text_next, text_src, text_tgt, and the carried files
utt2tgtlang: ``CARRIED_FILES``) and writes ``<out>``:

    data/<uttid>.wav   the utterance at --fs Hz, mono, 16-bit PCM
    wav.scp            <uttid> <absolute path of data/<uttid>.wav>
    utt2num_samples    <uttid> <number of samples>
    utt2spk, spk2utt and the optional files, restricted to the kept utterances
    format_report.txt  how many utterances were written, kept from an earlier run, or dropped
                       (a count per reason, then every dropped utterance with its reason and
                       detail), how many are text-only, resampled, multi-channel or cut short,
                       and what was repaired

wav.scp entries may be
    a path of any file libsndfile reads (wav, flac, ogg, ...),
    a pipe ``<command> |`` whose stdout is a WAV stream, e.g. ``sox x.flac -t wav - |``,
        ``ffmpeg -i x.mp3 -f wav - |`` (run with bash and pipefail; a failing command is an
        error naming the wav.scp line),
    a Kaldi archive offset ``foo.ark:123`` holding a wav (read with kaldiio),
    empty (the line is just the utterance id): a text-only utterance (a task of
        ``preprocessor_conf.text_only_tasks``, e.g. text QA beside speech tasks). It gets a WAV
        of 0 samples (header only) and ``utt2num_samples`` 0, so ESPnet's loaders, stage 3 and
        decoding read it like any other; the count is logged and reported. Such an utterance
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
                            a WAV whose data is shorter than its header says), or kaldiio cannot
                            read the archive offset
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
(scipy.signal.resample_poly) and counted per source rate; the result is clipped to [-1, 1]
before the 16-bit conversion.

Resumable: ``data/.format_state.jsonl`` records, for every written WAV, its source entry,
segment, options and sample count.  An existing WAV whose record matches and whose header has the
recorded sample count is not read or rewritten; WAVs are written to a temporary name and renamed,
so an interrupted run never leaves a truncated file.  ``--overwrite true`` rewrites everything.
Drops for ``missing_audio`` / ``unreadable_audio`` are tried again on every run (the file may
have been restored since).
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
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf

from espnet_sllm.data.kaldi_dir import (
    FIX_REASONS,
    OPTIONAL_FILES,
    Utterance,
    fix_data_dir,
    read_kv,
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


@dataclass
class Job:
    """One recording and the utterances to cut from it."""

    recid: str
    entry: str  # the wav.scp value
    where: str  # "<wav.scp>:<line>" for messages
    utts: List[Tuple[str, Optional[Tuple[float, float]], str]]  # (uttid, (start, end), out path)


# --------------------------------------------------------------------------- audio input


def _parse_wav_stream(data: bytes, where: str) -> Tuple[np.ndarray, int]:
    """Decode a RIFF/WAVE byte stream whose size fields may be 0 or wrong (piped output).

    libsndfile trusts the header's data size; programs writing to a pipe cannot know it and
    write 0 or 0xFFFFFFFF, so here the data chunk is taken to run to the end of the stream.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise FormatError(f"{where}: output is not a WAV stream (starts with {data[:12]!r})")
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = pos + 8
        if cid == b"fmt ":
            fmt = list(struct.unpack("<HHIIHH", data[body:body + 16]))
            if fmt[0] == 0xFFFE and size >= 26:
                # WAVE_FORMAT_EXTENSIBLE: the real format tag opens the sub-format GUID.
                fmt[0] = struct.unpack("<H", data[body + 24:body + 26])[0]
        elif cid == b"data":
            if fmt is None:
                raise FormatError(f"{where}: WAV stream has no fmt chunk before its data")
            tag, channels, rate, _, block, bits = fmt
            block = block or channels * bits // 8
            if channels < 1 or block < 1:
                raise FormatError(f"{where}: WAV stream with a broken fmt chunk: {fmt}")
            payload = data[body:]
            payload = payload[: len(payload) - len(payload) % block]
            return _pcm_to_float(payload, tag, bits, channels, where), rate
        pos = body + size + (size & 1)
    raise FormatError(f"{where}: WAV stream has no data chunk")


def _pcm_to_float(payload: bytes, tag: int, bits: int, channels: int, where: str) -> np.ndarray:
    if tag == 3 and bits == 32:
        x = np.frombuffer(payload, "<f4").astype(np.float32)
    elif tag == 3 and bits == 64:
        x = np.frombuffer(payload, "<f8").astype(np.float32)
    elif tag == 1 and bits == 16:
        x = np.frombuffer(payload, "<i2").astype(np.float32) / 32768.0
    elif tag == 1 and bits == 32:
        x = (np.frombuffer(payload, "<i4") / 2147483648.0).astype(np.float32)
    elif tag == 1 and bits == 24:
        b = np.frombuffer(payload, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v) / 8388608.0).astype(np.float32)
    elif tag == 1 and bits == 8:
        x = (np.frombuffer(payload, np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        raise FormatError(f"{where}: unsupported WAV encoding (format tag {tag}, {bits} bits)")
    return x.reshape(-1, channels)


def _decode_bytes(data: bytes, where: str) -> Tuple[np.ndarray, int]:
    """(frames, channels) float32 and the sample rate of an audio byte stream."""
    if not data:
        raise FormatError(f"{where}: the command wrote no audio to stdout")
    try:
        x, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except RuntimeError as e:  # soundfile.LibsndfileError is a RuntimeError
        if data[:4] != b"RIFF":
            raise FormatError(f"{where}: cannot decode the audio: {e}") from None
        return _parse_wav_stream(data, where)
    if len(x) == 0 and len(data) > 44 and data[:4] == b"RIFF":
        return _parse_wav_stream(data, where)
    return x, rate


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


class Source:
    """Random access to the frames of one recording, as (frames, channels) float32."""

    def __init__(self, entry: str, where: str):
        self.where = where
        self._file = None
        self._data = None
        stripped = entry.strip()
        if stripped.endswith("|"):
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


def _write_wav(path: str, x: np.ndarray, fs: int) -> None:
    tmp = path + ".tmp.wav"
    sf.write(tmp, np.clip(x, -1.0, 1.0), fs, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)


def process(job: Job, fs: int, channel: str, max_overshoot: float) -> List[dict]:
    """Write the WAVs of one recording; one result record per utterance.

    A record has ``n`` (samples written), ``rate`` and ``channels`` (of the source) and
    ``clipped`` (a segment cut short at the end of its recording) for a written WAV, or
    ``reason`` (of `DROP_REASONS`) and ``drop`` (the detail) for a dropped utterance."""
    def record(uttid, seg):
        return {"utt": uttid, "src": job.entry, "seg": seg, "fs": fs, "channel": channel}

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
                    _write_wav(out, x, fs)
                    rec.update(n=len(x), rate=src.rate, channels=int(frames.shape[1]))
            results.append(rec)
    finally:
        src.close()
    return results


def _process_star(args) -> List[dict]:
    return process(*args)


def _wav_frames(path: str, fs: int) -> Optional[int]:
    """Frames of an existing WAV of the expected format, None when absent or different."""
    try:
        info = sf.info(path)
    except RuntimeError:
        return None
    if info.samplerate != fs or info.channels != 1 or info.subtype != "PCM_16":
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
                    continue  # a line cut by an interrupted run: that WAV is simply redone
    return state


def _up_to_date(rec: Optional[dict], entry: str, seg, fs: int, channel: str, out: str) -> bool:
    if rec is None or rec.get("src") != entry or rec.get("fs") != fs \
            or rec.get("channel") != channel:
        return False
    if (tuple(rec["seg"]) if rec.get("seg") is not None else None) != seg:
        return False
    if "drop" in rec:
        return _reason(rec) not in _RETRY_REASONS
    return _wav_frames(out, fs) == rec.get("n")


def _reason(rec: dict) -> str:
    """The drop reason of a state record (records of older versions had only the detail)."""
    if rec.get("reason"):
        return rec["reason"]
    return "empty_audio" if rec["drop"] == "empty audio" else "segment_beyond_audio"


def format_data(in_dir: str, out_dir: str, fs: int = 16000, nj: int = 2, channel: str = "mean",
                max_overshoot: float = 0.5, overwrite: bool = False,
                progress: bool = True, skip_bad_text: bool = False) -> Dict:
    """Format ``in_dir`` into ``out_dir``; returns counts: utterances (ids found in any file of
    ``in_dir``), written, kept (from an earlier run), dropped, text_only (utterances with an
    empty wav.scp entry, written or kept as 0-sample WAVs), dropped_for ({reason: n} over
    `DROP_REASONS`), resampled ({source rate: n}), multichannel (n mixed down or reduced to
    --channel), clipped (segments cut short at the end of their recording)."""
    if os.path.abspath(in_dir) == os.path.abspath(out_dir):
        raise FormatError(f"--in and --out are the same directory ({in_dir})")
    if channel != "mean" and not channel.isdigit():
        raise FormatError(f"--channel must be 'mean' or a channel index, got {channel!r}")
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

    jobs: Dict[str, Job] = {}
    results: Dict[str, dict] = {}
    text_only: List[Tuple[str, str]] = []  # (uttid, out path) to write
    n_text_only = 0
    for u in utts:
        if "/" in u.uttid or u.uttid.startswith("."):
            raise FormatError(f"{in_dir}: utterance id {u.uttid!r} cannot be a file name")
        recid = u.segment.recid if u.segment else u.uttid
        seg = (u.segment.start, u.segment.end) if u.segment else None
        out = os.path.abspath(os.path.join(data_dir, f"{u.uttid}.wav"))
        # An empty entry is a text-only utterance (validate_data_dir refused it with a segment).
        n_text_only += not u.wav.strip()
        if _up_to_date(state.get(u.uttid), u.wav, seg, fs, channel, out):
            results[u.uttid] = dict(state[u.uttid], kept=True)
            continue
        if not u.wav.strip():
            text_only.append((u.uttid, out))
            continue
        if recid not in jobs:
            jobs[recid] = Job(recid, u.wav, f"{wav_scp_path}:{line_of[recid]}", [])
        jobs[recid].utts.append((u.uttid, seg, out))

    todo = sum(len(j.utts) for j in jobs.values())
    logger.info("%s: %d utterances, %d up to date, %d to write from %d recordings",
                in_dir, len(utts), len(results), todo, len(jobs))
    if n_text_only:
        logger.info("%s: %d text-only utterances (empty wav.scp entry): a WAV of 0 samples each",
                    in_dir, n_text_only)
    tasks = [(j, fs, channel, max_overshoot) for j in jobs.values()]
    from tqdm import tqdm

    with open(state_path, "w" if overwrite else "a", encoding="utf-8") as state_f, \
            tqdm(total=todo + len(text_only), unit="utt",
                 desc=f"format {os.path.basename(out_dir)}",
                 disable=not progress or todo + len(text_only) == 0, mininterval=1.0) as bar:
        def consume(recs: List[dict]) -> None:
            for rec in recs:
                results[rec["utt"]] = rec
                state_f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            state_f.flush()
            bar.update(len(recs))

        for uttid, out in text_only:
            # Header only: ESPnet's sound reader gives it as an empty waveform.
            _write_wav(out, np.zeros(0, dtype=np.float32), fs)
            consume([{"utt": uttid, "src": "", "seg": None, "fs": fs, "channel": channel,
                      "n": 0}])

        if nj <= 1 or len(tasks) <= 1:
            for t in tasks:
                consume(_process_star(t))
        else:
            import multiprocessing

            import scipy.signal  # noqa: F401  (slow import: once here, not in every worker)

            with multiprocessing.get_context("fork").Pool(min(nj, len(tasks))) as pool:
                for recs in pool.imap_unordered(_process_star, tasks, chunksize=1):
                    consume(recs)

    kept_utts: List[Utterance] = []
    num_samples: Dict[str, str] = {}
    dropped: List[Tuple[str, str, str]] = list(fixed.dropped)  # (uttid, reason, detail)
    for u in utts:
        rec = results[u.uttid]
        if "drop" in rec:
            dropped.append((u.uttid, _reason(rec), rec["drop"]))
            continue
        out = os.path.abspath(os.path.join(data_dir, f"{u.uttid}.wav"))
        fields = {f: getattr(u, f) for f in OPTIONAL_FILES}
        kept_utts.append(Utterance(uttid=u.uttid, wav=out, spk=u.spk, **fields))
        num_samples[u.uttid] = str(rec["n"])
    dropped.sort()
    if not kept_utts:
        raise FormatError(f"{in_dir}: every utterance was dropped, e.g. {dropped[0][0]}: "
                          f"{dropped[0][1]} ({dropped[0][2]})")
    write_data_dir(out_dir, kept_utts)
    write_kv(os.path.join(out_dir, "utt2num_samples"), num_samples)
    write_carried_files(out_dir, carried, [u.uttid for u in kept_utts])
    validate_data_dir(out_dir)

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
    }
    how = "mixed down by the mean of the channels" if channel == "mean" else \
        f"channel {channel} kept"
    lines = [
        f"# format_data {in_dir} -> {out_dir} (fs={fs}, channel={channel}, "
        f"max_overshoot={max_overshoot}, skip_bad_text={skip_bad_text})",
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
