"""Format a Kaldi data directory for training: one 16-bit mono WAV per utterance (stage 2).

Usage:
    python -m espnet_sllm.bin.format_data --in data/<set> --out dump/raw/<set> \\
        [--fs 16000] [--nj 2] [--channel mean|0|1|...] [--max_overshoot 0.5] [--overwrite false]

Reads ``<in>`` (wav.scp [+ segments], utt2spk, spk2utt and the optional files text, utt2lang,
utt2task, utt2subdialect, text_prev, text_next, text_src, text_tgt, and the carried files
utt2tgtlang: ``CARRIED_FILES``) and writes ``<out>``:

    data/<uttid>.wav   the utterance at --fs Hz, mono, 16-bit PCM
    wav.scp            <uttid> <absolute path of data/<uttid>.wav>
    utt2num_samples    <uttid> <number of samples>
    utt2spk, spk2utt and the optional files, restricted to the kept utterances
    format_report.txt  how many utterances were written, kept from an earlier run, or dropped,
                       and how many are text-only

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

With ``segments``, every utterance is cut from its recording at [start, end) (times rounded to
the nearest sample); a recording is read once for all of its segments.  A segment that ends
after the recording is cut short when it overshoots by at most --max_overshoot seconds (the
usual slack of annotations), and dropped otherwise; dropped utterances are counted in the report
and listed with their reason, never skipped silently.

Multi-channel audio is mixed down to mono by the mean of the channels (--channel mean, the
default, which keeps both talkers of a two-channel conversation), or one channel is taken
(--channel 0 for the first).  Resampling uses a polyphase filter (scipy.signal.resample_poly);
the result is clipped to [-1, 1] before the 16-bit conversion.

Resumable: ``data/.format_state.jsonl`` records, for every written WAV, its source entry,
segment, options and sample count.  An existing WAV whose record matches and whose header has the
recorded sample count is not read or rewritten; WAVs are written to a temporary name and renamed,
so an interrupted run never leaves a truncated file.  ``--overwrite true`` rewrites everything.
"""
import io
import json
import logging
import math
import os
import struct
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf

from espnet_sllm.data.kaldi_dir import (
    OPTIONAL_FILES,
    Utterance,
    read_data_dir,
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


class FormatError(Exception):
    """A problem with the input, reported as one message naming the offending line."""


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
                raise FormatError(f"{where}: audio file not found: {stripped}")
            try:
                self._file = sf.SoundFile(stripped)
            except RuntimeError as e:
                raise FormatError(f"{where}: cannot read {stripped}: {e}") from None
            self.rate = self._file.samplerate
        self.frames = len(self._data) if self._data is not None else self._file.frames

    def read(self, start: int, stop: int) -> np.ndarray:
        if self._data is not None:
            return self._data[start:stop]
        self._file.seek(start)
        return self._file.read(stop - start, dtype="float32", always_2d=True)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _is_ark(entry: str) -> bool:
    path, _, offset = entry.rpartition(":")
    return bool(path) and offset.isdigit() and os.path.isfile(path)


def _read_ark(entry: str, where: str) -> Tuple[np.ndarray, int]:
    import kaldiio

    try:
        value = kaldiio.load_mat(entry)
    except Exception as e:  # kaldiio raises several types for a bad offset
        raise FormatError(f"{where}: cannot read {entry}: {e}") from None
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
    """Write the WAVs of one recording; one result record per utterance."""
    src = Source(job.entry, job.where)
    results = []
    try:
        for uttid, seg, out in job.utts:
            rec = {"utt": uttid, "src": job.entry, "seg": seg, "fs": fs, "channel": channel}
            if seg is None:
                start, stop = 0, src.frames
            else:
                start = int(round(seg[0] * src.rate))
                stop = int(round(seg[1] * src.rate))
                over = (stop - src.frames) / src.rate
                if start >= src.frames:
                    rec["drop"] = (f"segment starts at {seg[0]:.2f}s, after the end of recording "
                                   f"{job.recid} ({src.frames / src.rate:.2f}s)")
                elif over > max_overshoot:
                    rec["drop"] = (f"segment ends at {seg[1]:.2f}s, {over:.2f}s after the end of "
                                   f"recording {job.recid} (more than --max_overshoot "
                                   f"{max_overshoot}s)")
                stop = min(stop, src.frames)
            if "drop" not in rec:
                x = resample(to_mono(src.read(start, stop), channel, job.where), src.rate, fs)
                if len(x) == 0:
                    rec["drop"] = "empty audio"
                else:
                    _write_wav(out, x, fs)
                    rec["n"] = len(x)
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
        return True
    return _wav_frames(out, fs) == rec.get("n")


def format_data(in_dir: str, out_dir: str, fs: int = 16000, nj: int = 2, channel: str = "mean",
                max_overshoot: float = 0.5, overwrite: bool = False,
                progress: bool = True) -> Dict[str, int]:
    """Format ``in_dir`` into ``out_dir``; returns counts (utterances, written, kept, dropped,
    text_only: utterances with an empty wav.scp entry, written or kept as 0-sample WAVs)."""
    if os.path.abspath(in_dir) == os.path.abspath(out_dir):
        raise FormatError(f"--in and --out are the same directory ({in_dir})")
    if channel != "mean" and not channel.isdigit():
        raise FormatError(f"--channel must be 'mean' or a channel index, got {channel!r}")
    try:
        utts = read_data_dir(in_dir)
    except ValueError as e:
        raise FormatError(str(e)) from None
    if utts[0].wav is None:
        raise FormatError(
            f"{in_dir} is a text-only data directory (no wav.scp): give it speech first (the "
            f"recipe's TTS stage), then format the result"
        )
    carried = read_carried_files(in_dir, [u.uttid for u in utts])
    unknown = sorted(set(os.listdir(in_dir)) - _KNOWN_FILES)
    if unknown:
        logger.warning("%s: not copied (unknown to this tool): %s", in_dir, " ".join(unknown))

    wav_scp_path = os.path.join(in_dir, "wav.scp")
    line_of = {key: i for i, key in enumerate(read_kv(wav_scp_path), 1)}
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
    dropped: List[Tuple[str, str]] = []
    for u in utts:
        rec = results[u.uttid]
        if "drop" in rec:
            dropped.append((u.uttid, rec["drop"]))
            continue
        out = os.path.abspath(os.path.join(data_dir, f"{u.uttid}.wav"))
        fields = {f: getattr(u, f) for f in OPTIONAL_FILES}
        kept_utts.append(Utterance(uttid=u.uttid, wav=out, spk=u.spk, **fields))
        num_samples[u.uttid] = str(rec["n"])
    if not kept_utts:
        raise FormatError(f"{in_dir}: every utterance was dropped, e.g. {dropped[0][0]}: "
                          f"{dropped[0][1]}")
    write_data_dir(out_dir, kept_utts)
    write_kv(os.path.join(out_dir, "utt2num_samples"), num_samples)
    write_carried_files(out_dir, carried, [u.uttid for u in kept_utts])
    validate_data_dir(out_dir)

    counts = {
        "utterances": len(utts),
        "written": sum(1 for r in results.values() if "n" in r and not r.get("kept")),
        "kept": sum(1 for r in results.values() if "n" in r and r.get("kept")),
        "dropped": len(dropped),
        "text_only": n_text_only,
    }
    lines = [
        f"# format_data {in_dir} -> {out_dir} (fs={fs}, channel={channel})",
        f"input utterances: {counts['utterances']}",
        f"written: {counts['written']}",
        f"kept from an earlier run: {counts['kept']}",
        f"dropped: {counts['dropped']}",
        f"text-only (empty wav.scp entry, 0 samples): {counts['text_only']}",
    ] + [f"dropped {utt}: {reason}" for utt, reason in dropped]
    with open(os.path.join(out_dir, "format_report.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    for utt, reason in dropped:
        logger.warning("dropped %s: %s", utt, reason)
    return counts
