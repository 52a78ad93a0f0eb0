"""Plant the bad inputs of README's "Bad input: what each stage does" in an otherwise good
Kaldi data directory (issue #17 §1), so that a test runs the stage that should catch each one.

`make_good_dir` writes a small directory that every stage accepts as it is: tone WAVs (16 kHz
mono, one tone per utterance), ``wav.scp``, ``text``, ``utt2spk``, ``spk2utt``, ``utt2lang`` and,
with ``segments=True``, one recording per speaker cut by ``segments``. `plant` then breaks it
in the one way a row of the table names (`ROWS`), and returns what it changed.

Usage:
    from espnet_sllm.testing.bad_corpus import ROWS, make_good_dir, plant, plant_checkpoint
    data = make_good_dir(tmp_path, n=4)                 # tmp_path/data (+ tmp_path/audio)
    info = plant(data, "missing_audio")                 # {"utt": "spk1-u02", "detail": ...}
    # python -m espnet_sllm.bin.format_data --in data --out dump -> "missing_audio: 1"
    plant(make_good_dir(tmp_path / "b", segments=True), "bad_segment", "zero_length")
    conf = plant_checkpoint(llm_dir, tmp_path / "ckpt", "tokenizer_mismatch")  # a config dict

Every utterance id starts with its speaker id (``spk1-u01``); the planted utterance is the
second one (``spk1-u02``; in a directory with segments, the second segment of ``spk1-rec``).
"""
import json
import os
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import soundfile as sf

PathLike = Union[str, "os.PathLike[str]"]

FS = 16000
LANG = "English"
TARGET = 1  # index of the utterance a row breaks

# row -> (variants, what it plants); the first variant is the default.
ROWS: Dict[str, Tuple[Tuple[str, ...], str]] = {
    "missing_audio": (("",), "wav.scp names a file that does not exist"),
    "unreadable_audio": (("zero_bytes", "bad_header", "garbage", "truncated"),
                         "the audio file is empty, cut inside its header, not audio, or a WAV "
                         "whose data is shorter than its header says"),
    "sample_rate": (("8000", "44100", "48000"), "the audio is at another rate than 16 kHz"),
    "multichannel": (("2", "6"), "the audio has several channels"),
    "empty_text": (("whitespace", "empty"), "the text is blanks only, or nothing"),
    "not_utf8": (("",), "a text line holds bytes that are not UTF-8 (Latin-1 'café')"),
    "not_in_every_file": (("text_only", "wav_only"),
                          "an utterance is in text but not in wav.scp, or the reverse"),
    "duplicate_id": (("",), "an utterance id is given on two lines of text"),
    "unsorted": (("",), "wav.scp, text, utt2spk and utt2lang are in reverse order"),
    "bad_segment": (("zero_length", "negative", "beyond_end", "small_overrun"),
                    "a segment of zero or negative length, one beyond the end of its "
                    "recording, one ending 0.2 s after it (needs segments=True)"),
    "long_audio": (("",), "the audio is 31 s long"),
    "unknown_language": (("",), "utt2lang gives a label the config's languages lack"),
    "unreadable_at_decoding": (("",), "the (formatted) WAV of a test utterance is replaced by "
                                      "an empty file"),
}


def _tone(seconds: float, freq: float, fs: int = FS, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(seconds * fs))) / fs
    x = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    if channels == 1:
        return x
    return np.stack([x * (1.0 if c == 0 else 0.5 / c) for c in range(channels)], axis=1)


def _write_lines(path: Path, lines: List[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _read_lines(path: Path) -> List[str]:
    return path.read_bytes().decode("utf-8").splitlines()


def utt_ids(data: PathLike) -> List[str]:
    """The utterance ids of a directory written by `make_good_dir` (from its utt2spk)."""
    return [line.split()[0] for line in _read_lines(Path(data) / "utt2spk")]


def make_good_dir(root: PathLike, n: int = 4, segments: bool = False,
                  seconds: float = 1.0) -> Path:
    """Write ``<root>/data`` (a Kaldi data directory) and its audio in ``<root>/audio``.

    ``n`` utterances of ``seconds`` s, two per speaker (``spk1-u01 spk1-u02 spk2-u03 ...``), each
    a tone of its own frequency; text ``tone <k>``, language ``English``. With ``segments``,
    speaker k's utterances are cut from one recording ``spk<k>-rec`` (``[0, s)``,
    ``[s + 0.2, 2 s + 0.2)``, the recording 2 s + 0.4 long). Returns the data directory.
    """
    root = Path(root)
    audio, data = root / "audio", root / "data"
    audio.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    utts = [(f"spk{k // 2 + 1}", f"spk{k // 2 + 1}-u{k + 1:02d}") for k in range(n)]
    wav, seg = [], []
    if segments:
        for spk in sorted({s for s, _ in utts}):
            path = audio / f"{spk}-rec.wav"
            sf.write(path, _tone(2 * seconds + 0.4, 300 + 50 * len(wav)), FS, subtype="PCM_16")
            wav.append(f"{spk}-rec {path}")
        for i, (spk, utt) in enumerate(utts):
            start = 0.0 if i % 2 == 0 else seconds + 0.2
            seg.append(f"{utt} {spk}-rec {start:.2f} {start + seconds:.2f}")
        _write_lines(data / "segments", seg)
    else:
        for i, (_, utt) in enumerate(utts):
            path = audio / f"{utt}.wav"
            sf.write(path, _tone(seconds, 300 + 50 * i), FS, subtype="PCM_16")
            wav.append(f"{utt} {path}")
    _write_lines(data / "wav.scp", wav)
    _write_lines(data / "text", [f"{u} tone {i + 1}" for i, (_, u) in enumerate(utts)])
    _write_lines(data / "utt2spk", [f"{u} {s}" for s, u in utts])
    _write_lines(data / "utt2lang", [f"{u} {LANG}" for _, u in utts])
    spk2utt: Dict[str, List[str]] = {}
    for s, u in utts:
        spk2utt.setdefault(s, []).append(u)
    _write_lines(data / "spk2utt", [f"{s} {' '.join(us)}" for s, us in spk2utt.items()])
    return data


def _audio_of(data: Path, utt: str) -> Tuple[str, Path]:
    """(wav.scp key, audio path) of ``utt`` (its recording with segments)."""
    key = utt
    if (data / "segments").is_file():
        key = next(line.split()[1] for line in _read_lines(data / "segments")
                   if line.split()[0] == utt)
    entry = next(line.split(maxsplit=1)[1] for line in _read_lines(data / "wav.scp")
                 if line.split()[0] == key)
    return key, Path(entry.strip())


def _edit(path: Path, utt: str, new: Optional[str]) -> None:
    """Replace the value of ``utt`` in ``path`` (``None``: remove its line)."""
    lines = []
    for line in _read_lines(path):
        if line.split(maxsplit=1)[0] != utt:
            lines.append(line)
        elif new is not None:
            lines.append(f"{utt} {new}")
    _write_lines(path, lines)


def plant(data: PathLike, row: str, variant: Optional[str] = None) -> Dict[str, object]:
    """Break ``data`` (a directory of `make_good_dir`, or one that stage 2 wrote, for
    ``unreadable_at_decoding``) in the way of ``row`` (a key of `ROWS`) and ``variant`` (one of
    its variants; default the first). Returns ``{"utt": the utterance broken, "detail": what
    was done}`` (plus ``"path"`` for rows that rewrite an audio file)."""
    if row not in ROWS:
        raise ValueError(f"unknown row {row!r}; rows: {sorted(ROWS)}")
    variants = ROWS[row][0]
    variant = variants[0] if variant is None else str(variant)
    if variant not in variants:
        raise ValueError(f"row {row!r}: unknown variant {variant!r}; variants: {variants}")
    data = Path(data)
    utt = utt_ids(data)[TARGET]
    info: Dict[str, object] = {"utt": utt, "row": row, "variant": variant}
    if row in ("missing_audio", "unreadable_audio", "sample_rate", "multichannel",
               "long_audio", "unreadable_at_decoding"):
        key, path = _audio_of(data, utt)
        info["path"] = str(path)
        if row == "missing_audio":
            missing = path.with_name("no_such_" + path.name)
            _edit(data / "wav.scp", key, str(missing))
            info.update(path=str(missing), detail=f"wav.scp: {key} -> {missing}")
        elif row == "unreadable_audio" or row == "unreadable_at_decoding":
            good = path.read_bytes()
            bad = {"zero_bytes": b"", "": b"", "bad_header": good[:30],
                   "garbage": b"this is not audio\n" * 20, "truncated": good[:len(good) // 3]}
            path.write_bytes(bad[variant])
            info["detail"] = f"{path}: {variant or 'zero_bytes'} ({len(bad[variant])} bytes)"
        else:
            x, fs = sf.read(path, dtype="float32")
            seconds = len(x) / fs
            rate, channels = FS, 1
            if row == "sample_rate":
                rate = int(variant)
            elif row == "multichannel":
                channels = int(variant)
            else:
                seconds = 31.0
            sf.write(path, _tone(seconds, 440, rate, channels), rate, subtype="PCM_16")
            info["detail"] = f"{path}: {seconds:.2f} s, {rate} Hz, {channels} channel(s)"
    elif row == "empty_text":
        _edit(data / "text", utt, "   " if variant == "whitespace" else "")
        info["detail"] = f"text: {utt} -> {variant}"
    elif row == "not_utf8":
        lines = (data / "text").read_bytes().split(b"\n")
        info["line"] = next(i for i, b in enumerate(lines, 1) if b.split()[:1] == [utt.encode()])
        lines[info["line"] - 1] = utt.encode() + " café au lait".encode("latin-1")
        (data / "text").write_bytes(b"\n".join(lines))
        info["detail"] = f"text:{info['line']}: Latin-1 bytes"
    elif row == "not_in_every_file":
        name = "wav.scp" if variant == "text_only" else "text"
        if (data / "segments").is_file() and name == "wav.scp":
            name = "segments"
        _edit(data / name, utt, None)
        info["detail"] = f"{utt} removed from {name}"
    elif row == "duplicate_id":
        lines = _read_lines(data / "text")
        i = next(i for i, line in enumerate(lines) if line.split()[0] == utt)
        lines.insert(i + 1, f"{utt} the same id again")
        _write_lines(data / "text", lines)
        info.update(lines=(i + 1, i + 2), detail=f"text:{i + 2}: {utt} again")
    elif row == "unsorted":
        for name in ("wav.scp", "text", "utt2spk", "utt2lang"):
            _write_lines(data / name, _read_lines(data / name)[::-1])
        info["detail"] = "wav.scp, text, utt2spk, utt2lang reversed"
    elif row == "bad_segment":
        if not (data / "segments").is_file():
            raise ValueError("row 'bad_segment' needs a directory with segments")
        recid, start, _ = next(line.split()[1:] for line in _read_lines(data / "segments")
                               if line.split()[0] == utt)
        duration = sf.info(str(_audio_of(data, utt)[1])).duration
        start = float(start)
        times = {"zero_length": (start, start), "negative": (start, start - 0.5),
                 "beyond_end": (start, duration + 1.0),
                 "small_overrun": (start, duration + 0.2)}[variant]
        _edit(data / "segments", utt, f"{recid} {times[0]:.2f} {times[1]:.2f}")
        info["detail"] = f"segments: {utt} {recid} {times[0]:.2f} {times[1]:.2f} (recording " \
                         f"{duration:.2f} s)"
    elif row == "unknown_language":
        _edit(data / "utt2lang", utt, "Klingon")
        info["detail"] = f"utt2lang: {utt} -> Klingon"
    return info


def plant_checkpoint(llm_dir: PathLike, out: PathLike, variant: str) -> Dict:
    """A training config (a dict for ``--config``) whose checkpoints are wrong in one way.

    ``llm_dir``: a good LLM directory (e.g. ``espnet_sllm.testing.llm.make_tiny_llm``).
    Variants: ``missing_llm`` (``llm_conf.model_name_or_path`` does not exist),
    ``missing_tokenizer`` (``tokenizer_name_or_path`` does not exist), ``tokenizer_mismatch``
    (a copy of ``llm_dir`` under ``out`` whose config gives 10 rows fewer than its tokenizer
    has tokens), ``no_weights`` (a copy without its weight files, with ``pretrained`` true),
    ``missing_init_param`` (``init_param`` names a file that does not exist).
    """
    llm_dir, out = Path(llm_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    llm_conf: Dict[str, object] = {"model_name_or_path": str(llm_dir)}
    conf: Dict[str, object] = {"llm": "hf", "llm_conf": llm_conf}
    if variant == "missing_llm":
        llm_conf["model_name_or_path"] = str(out / "no_such_llm")
    elif variant == "missing_tokenizer":
        llm_conf["tokenizer_name_or_path"] = str(out / "no_such_tokenizer")
    elif variant in ("tokenizer_mismatch", "no_weights"):
        copy = out / variant
        shutil.copytree(llm_dir, copy, dirs_exist_ok=True)
        if variant == "no_weights":
            for p in list(copy.glob("*.safetensors")) + list(copy.glob("pytorch_model*.bin")):
                p.unlink()
        else:
            from espnet_sllm.llm.tokenizer import load_tokenizer

            n_tok = len(load_tokenizer(str(copy)))
            cfg = json.loads((copy / "config.json").read_text())
            cfg["vocab_size"] = n_tok - 10
            (copy / "config.json").write_text(json.dumps(cfg, indent=2))
        llm_conf["model_name_or_path"] = str(copy)
    elif variant == "missing_init_param":
        conf["init_param"] = [str(out / "no_such_model.pth")]
    else:
        raise ValueError(f"unknown checkpoint variant {variant!r}")
    return conf
