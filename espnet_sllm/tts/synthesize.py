"""Give a text-only data directory speech: speak each utterance's ``text`` with a TTS backend.

Usage:
    python -m espnet_sllm.bin.synthesize --in data/wmt19_train --out data/wmt19_train_tts \\
        --nj 8 --seed 0 [--max_hours 200] [--max_sec 30] [--tts espeak|module:Class] \\
        [--tts_conf key=value ...] [--min_sec 0.2] [--min_sec_per_char 0.05]

    from espnet_sllm.tts import load_tts
    from espnet_sllm.tts.synthesize import synthesize_dir
    summary = synthesize_dir("data/wmt19_test", "data/wmt19_test_tts", load_tts("espeak"), seed=0)

Input: a Kaldi data directory whose ``text`` is what is spoken (the readers of
egs2/aishell_wmt put the Chinese source of WMT19 and the question of Alpaca-zh there, and the
target in ``text_tgt``); it is usually text-only (no ``wav.scp``), an existing ``wav.scp`` is
replaced.  Output ``<out>``:

    wav/<xx>/<uttid>.wav  16 kHz, 16-bit, mono (``xx``: 2 hex digits of a hash of the id, so
                          that no folder holds more than a few thousand files)
    wav.scp               <uttid> <absolute path of its WAV>
    utt2spk, spk2utt, text, text_tgt, utt2task, utt2lang, ... and utt2tgtlang: the input's
                          files, restricted to the utterances kept; the speakers are the
                          input's (each utterance its own speaker for the text-only readers:
                          every utterance has its own drawn voice, pitch and speed); the voice
                          of each utterance is in tts_log.jsonl
    utt2dur               <uttid> <seconds>
    tts_log.jsonl         one JSON line per utterance processed (sorted by id): voice and what
                          the backend drew (espeak: pitch, speed, gain), seconds; or the drop
                          reason and its detail
    tts_report.txt        counts: utterances in, kept, dropped per reason (each one listed),
                          hours, whether --max_hours was reached, backend, seed

Order and voices.  Utterances are spoken in the seeded order of
`espnet_sllm.data.subset.seeded_order` (a hash of seed and id), each with a random stream
seeded by (seed, hash of its id): the backend draws the voice (one of ``voices()``) and all
else from it.  The output is therefore a function of the input, the backend, its configuration
and the seed only: not of ``--nj``, nor of interruptions.  ``--max_hours H`` stops at the
shortest prefix of that order reaching H hours of kept speech (WMT19's news-commentary is
≈643 h of speech, the paper trains on 200 h): the same utterances as ``python -m
espnet_sllm.data.subset --hours H --seed S`` picks from the full synthesis.

Resumable.  ``<out>/.tts_state.jsonl`` gets one line per utterance spoken (or dropped by the
checks below), written after its WAV (written to ``<name>.tmp`` and renamed); a rerun reuses
every recorded utterance whose text is unchanged and whose WAV still has its recorded size,
so killing a run and starting it again gives what one uninterrupted run gives.  Utterances
spoken beyond the ``--max_hours`` cut (parallel jobs run ahead) stay recorded and on disk for
a later run with a larger ``--max_hours``, but are not in the data directory.
``<out>/.tts_config.json`` records the backend (registry name or module:Class), its
configuration (``AbsTTS.config``), the seed and the checks' thresholds: an output folder made
with another one is an error naming both (remove it or choose another ``--out``); a folder
holding other files is refused too.

Checks.  The backend's ``check()`` runs before anything is read or written (espeak: espeak-ng,
the voice and its variants exist and read Mandarin as Mandarin).  Dropped, counted (report
and log) and not retried: ``not_utf8`` / ``not_in_every_file`` (the input's lines, as stage 2
reads them), ``empty_text``, ``not_speakable`` (the backend raised `TextNotSpeakable`, e.g.
only punctuation), ``too_short`` (less than max(--min_sec, --min_sec_per_char x letters) of
audio: the backend skipped what it could not read), ``silent`` (RMS below 1e-3).  Any other
backend error stops the run, naming the utterance.  Nothing kept is an error.

Failures.  A backend raising `SynthesisFailed` for one utterance (`CommandTTS`: the external
program exited with an error, timed out or wrote no audio) has it dropped as ``failed``, counted
and logged with the error; a rerun tries it again (a failure is not recorded as final).  More
than ``max_fail_ratio`` (default 0.05) of the utterances gone through failing is an error naming
the count and the first failure; the run stops as soon as that is certain (more failures than
that share of all utterances to speak), or when the first `FAIL_FAST` utterances of a run all
failed (a backend that cannot work), with ``tts_log.jsonl`` written for what was done.

``--max_sec S`` (a training pool: egs2/aishell_wmt uses 30, Whisper's window, which stage 3
applies to training anyway) leaves out utterances longer than S seconds, counted as
``too_long``, and they do not count towards ``--max_hours``: the hours of a set are hours that
train.  Their WAVs stay recorded (a rerun with another --max_sec needs no new synthesis).
"""
import hashlib
import json
import logging
import os
from collections import Counter
from multiprocessing import Pool
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import soundfile

from espnet_sllm.data.kaldi_dir import carry_speaker_files, fix_data_dir, write_data_dir, write_kv
from espnet_sllm.data.subset import format_seconds, seeded_order
from espnet_sllm.data.synth.conversations import to_16k
from espnet_sllm.tts import tts_name
from espnet_sllm.tts.abs_tts import AbsTTS, SynthesisFailed, TextNotSpeakable

logger = logging.getLogger(__name__)

SR = 16000
FORMAT_VERSION = 1
STATE = ".tts_state.jsonl"
CONFIG = ".tts_config.json"
LOG = "tts_log.jsonl"
REPORT = "tts_report.txt"
SILENT_RMS = 1e-3
FAIL_FAST = 20  # the first this many utterances of a run all failed: stop (see Failures)
# Files of <out> this tool writes (another file in a folder without CONFIG: not ours).
_OWN = {STATE, CONFIG, LOG, REPORT, "wav", "wav.scp", "utt2spk", "spk2utt", "utt2dur",
        "utt2tgtlang", "text", "utt2lang", "utt2task", "text_src", "text_tgt", "text_prev",
        "text_next", "utt2subdialect", "segments", "spk2gender"}
_CARRIED = ("utt2tgtlang",)


class SynthesisError(RuntimeError):
    """A refusal (another backend or seed, a folder not ours) or a backend failure."""


def utt_rng(uttid: str, seed: int) -> np.random.Generator:
    """The random stream of one utterance: depends on the seed and the id only."""
    h = int.from_bytes(hashlib.sha256(uttid.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([seed, h])


def wav_path(out_dir: str, uttid: str) -> str:
    sub = hashlib.sha1(uttid.encode("utf-8")).hexdigest()[:2]
    return os.path.join(os.path.abspath(out_dir), "wav", sub, f"{uttid}.wav")


def _text_sha(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------- one utterance
_TTS: Optional[AbsTTS] = None


def _init(tts: AbsTTS) -> None:
    global _TTS
    _TTS = tts


def synth_one(job: Tuple[str, str, str, int, float, float]) -> Dict[str, Any]:
    """Speak one utterance, write its WAV (temp name, then rename); its state record."""
    uttid, text, path, seed, min_sec, min_sec_per_char = job
    rng = utt_rng(uttid, seed)
    voices = _TTS.voices()
    voice = voices[int(rng.integers(len(voices)))]
    rec: Dict[str, Any] = {"utt": uttid, "text_sha": _text_sha(text), "voice": voice}
    try:
        wav, sr, info = _TTS.synthesize_with_info(text, voice, rng)
    except TextNotSpeakable as e:
        return dict(rec, dropped="not_speakable", detail=str(e))
    except SynthesisFailed as e:  # counted; too many of them stop the run (synthesize_dir)
        return dict(rec, dropped="failed", detail=str(e))
    except Exception as e:  # the run stops: name the utterance
        raise SynthesisError(f"TTS failed on utterance {uttid} ({text[:60]!r}): "
                             f"{type(e).__name__}: {e}") from e
    rec.update(info)
    x = np.asarray(wav, dtype=np.float32)
    if x.ndim != 1:
        raise SynthesisError(f"utterance {uttid}: the backend returned audio of shape "
                             f"{x.shape}, expected mono (n,)")
    x = np.clip(to_16k(x, int(sr)), -1.0, 1.0)
    seconds = len(x) / SR
    letters = sum(c.isalnum() for c in text)
    need = max(min_sec, min_sec_per_char * letters)
    if seconds < need:
        return dict(rec, dropped="too_short",
                    detail=f"{seconds:.3f} s for {letters} letters (< {need:.3f} s)")
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    if rms < SILENT_RMS:
        return dict(rec, dropped="silent", detail=f"RMS {rms:.2e}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    soundfile.write(tmp, x, SR, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)
    return dict(rec, samples=len(x), bytes=os.path.getsize(path))


# ---------------------------------------------------------------------------- the folder
def _check_config(out_dir: str, config: Dict[str, Any]) -> None:
    path = os.path.join(out_dir, CONFIG)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
        if old != config:
            def show(c):
                return (f"TTS {c.get('tts')} "
                        f"{json.dumps(c.get('tts_conf'), ensure_ascii=False, sort_keys=True)}"
                        f", seed {c.get('seed')}, min_sec {c.get('min_sec')}, min_sec_per_char "
                        f"{c.get('min_sec_per_char')}")
            raise SynthesisError(f"{out_dir} was made with {show(old)}; this run asks for "
                                 f"{show(config)}: remove {out_dir} or choose another --out")
        return
    if os.path.isdir(out_dir):
        others = sorted(set(os.listdir(out_dir)) - _OWN)
        if others or os.path.exists(os.path.join(out_dir, STATE)):
            raise SynthesisError(f"{out_dir} exists and was not made by this tool (it holds "
                                 f"{', '.join(others[:5]) or STATE} but no {CONFIG}): remove "
                                 f"it or choose another --out")
    os.makedirs(out_dir, exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)


def _read_state(out_dir: str, texts: Dict[str, str]) -> Dict[str, Dict[str, Any]]:
    """Records of earlier runs that still hold: same text, WAV of the recorded size."""
    path = os.path.join(out_dir, STATE)
    done: Dict[str, Dict[str, Any]] = {}
    if not os.path.isfile(path):
        return done
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # the last line of a killed run
                continue
            u = rec.get("utt")
            if u not in texts or rec.get("text_sha") != _text_sha(texts[u]):
                continue
            if rec.get("dropped") == "failed":  # tried again
                done.pop(u, None)
                continue
            if "dropped" not in rec:
                p = wav_path(out_dir, u)
                if not os.path.isfile(p) or os.path.getsize(p) != rec.get("bytes"):
                    continue
            done[u] = rec
    return done


def _log_record(rec: Dict[str, Any]) -> Dict[str, Any]:
    out = {k: v for k, v in rec.items() if k not in ("text_sha", "bytes", "samples")}
    if "samples" in rec:
        out["seconds"] = round(rec["samples"] / SR, 4)
    return out


def synthesize_dir(in_dir: str, out_dir: str, tts: AbsTTS, seed: int = 0, nj: int = 1,
                   max_hours: Optional[float] = None, min_sec: float = 0.2,
                   min_sec_per_char: float = 0.05, progress: bool = True,
                   max_sec: Optional[float] = None,
                   max_fail_ratio: float = 0.05) -> Dict[str, Any]:
    """Speak ``in_dir`` into ``out_dir`` (see the module docstring); returns the summary
    (``kept``, ``hours``, ``dropped`` {reason: n}, ``reached`` (max_hours), ...).  More than
    ``max_fail_ratio`` of the utterances failing (`SynthesisFailed`) is a SynthesisError."""
    from tqdm import tqdm

    if seed < 0:
        raise SynthesisError(f"--seed must be >= 0, got {seed}")
    if nj < 1:
        raise SynthesisError(f"--nj must be >= 1, got {nj}")
    if max_hours is not None and not max_hours > 0:
        raise SynthesisError(f"--max_hours must be > 0, got {max_hours}")
    if max_sec is not None and not max_sec > 0:
        raise SynthesisError(f"--max_sec must be > 0, got {max_sec}")
    if not 0 <= max_fail_ratio <= 1:
        raise SynthesisError(f"max_fail_ratio must be in [0, 1], got {max_fail_ratio}")
    if os.path.realpath(in_dir) == os.path.realpath(out_dir):
        raise SynthesisError(f"--in and --out are the same directory: {in_dir}")
    if not os.path.isdir(in_dir):
        raise SynthesisError(f"input directory {in_dir} does not exist")
    config = {"format_version": FORMAT_VERSION, "tts": tts_name(tts), "tts_conf": tts.config(),
              "seed": seed, "sample_rate": SR, "min_sec": min_sec,
              "min_sec_per_char": min_sec_per_char}
    tts.check()  # before anything is read or written
    fixed = fix_data_dir(in_dir, extra_files=_CARRIED, skip_bad_text=True)
    if fixed.utts and fixed.utts[0].text is None:
        raise SynthesisError(f"{in_dir}: no text file: nothing to speak")
    _check_config(out_dir, config)

    drops: Dict[str, Dict[str, Any]] = {
        u: {"utt": u, "dropped": reason, "detail": detail} for u, reason, detail in fixed.dropped}
    texts = {}
    for u in fixed.utts:
        if "/" in u.uttid:
            raise SynthesisError(f"{in_dir}: utterance id {u.uttid!r} holds '/' (a file name)")
        if u.text.strip():
            texts[u.uttid] = u.text.strip()
        else:
            drops[u.uttid] = {"utt": u.uttid, "dropped": "empty_text", "detail": ""}
    done = _read_state(out_dir, texts)
    reused = len(done)
    order = seeded_order(texts, seed)
    chunk = 1 if nj == 1 else 4 * nj
    total, kept, processed = 0.0, [], []
    reached = False
    failed, tried = [], 0  # failures, and utterances spoken (not reused) by this run
    bar = tqdm(total=len(order), unit="utt", disable=not progress, mininterval=1.0,
               desc=f"TTS {os.path.basename(os.path.normpath(out_dir))}")
    pool = Pool(nj, initializer=_init, initargs=(tts,)) if nj > 1 else None
    if pool is None:
        _init(tts)
    try:
        with open(os.path.join(out_dir, STATE), "a", encoding="utf-8") as state:
            for start in range(0, len(order), chunk):
                ids = order[start: start + chunk]
                jobs = [(u, texts[u], wav_path(out_dir, u), seed, min_sec, min_sec_per_char)
                        for u in ids if u not in done]
                results = pool.imap(synth_one, jobs) if pool else map(synth_one, jobs)
                for rec in results:
                    state.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    state.flush()
                    done[rec["utt"]] = rec
                    tried += 1
                    if rec.get("dropped") == "failed":
                        failed.append(rec)
                if failed and (len(failed) > max_fail_ratio * len(order) or (
                        max_fail_ratio < 1 and len(failed) == tried >= FAIL_FAST)):
                    processed += [u for u in ids if u in done]
                    for u in processed:
                        if "dropped" in done[u]:
                            drops[u] = done[u]
                    _write_log(out_dir, sorted(set(processed) | set(drops)), drops, done)
                    raise SynthesisError(_fail_message(failed, tried, len(order),
                                                       max_fail_ratio, out_dir))
                for u in ids:
                    bar.update(1)
                    processed.append(u)
                    rec = done[u]
                    if "dropped" in rec:
                        continue
                    if max_sec is not None and rec["samples"] > max_sec * SR:
                        drops[u] = dict(_log_record(rec), dropped="too_long",
                                        detail=f"{rec['samples'] / SR:.2f} s > --max_sec "
                                               f"{max_sec:g}")
                        continue
                    kept.append(u)
                    total += rec["samples"] / SR
                    if max_hours is not None and total >= max_hours * 3600.0:
                        reached = True
                        break
                bar.set_postfix(hours=f"{total / 3600:.3f}", refresh=False)
                if reached:
                    break
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    for u in processed:
        if "dropped" in done[u]:
            drops[u] = done[u]
    failed = [done[u] for u in sorted(processed) if done[u].get("dropped") == "failed"]
    if len(failed) > max_fail_ratio * len(processed):
        _write_log(out_dir, sorted(set(processed) | set(drops)), drops, done)
        raise SynthesisError(_fail_message(failed, len(processed), len(processed),
                                           max_fail_ratio, out_dir))
    if not kept:
        raise SynthesisError(f"{in_dir}: no utterance kept (dropped: "
                             f"{dict(Counter(d['dropped'] for d in drops.values()))}); see "
                             f"{os.path.join(out_dir, LOG)}")
    by_id = {u.uttid: u for u in fixed.utts}
    keep = sorted(kept)
    utts = []
    for u in keep:
        utt = by_id[u]
        utt.wav, utt.segment = wav_path(out_dir, u), None
        utts.append(utt)
    write_data_dir(out_dir, utts)
    write_kv(os.path.join(out_dir, "utt2dur"),
             {u: format_seconds(done[u]["samples"] / SR) for u in keep})
    for fname in _CARRIED:
        path = os.path.join(out_dir, fname)
        if fname in fixed.extra:
            write_kv(path, {u: fixed.extra[fname][u] for u in keep})
        elif os.path.exists(path):
            os.remove(path)
    carry_speaker_files(out_dir, [in_dir])

    _write_log(out_dir, sorted(set(processed) | set(drops)), drops, done)
    summary = {"in": in_dir, "out": out_dir, "utterances": len(fixed.utts) + len(fixed.dropped),
               "kept": len(keep), "hours": total / 3600, "reached": reached,
               "not_spoken": len(order) - len(processed) if reached else 0,
               "reused": reused, "max_hours": max_hours, "max_sec": max_sec,
               "dropped": dict(sorted(Counter(d["dropped"] for d in drops.values()).items())),
               "tts": config["tts"], "tts_conf": config["tts_conf"], "seed": seed}
    _write_report(out_dir, summary, drops)
    return summary


def _write_log(out_dir: str, logged: List[str], drops: Dict[str, Dict[str, Any]],
               done: Dict[str, Dict[str, Any]]) -> None:
    with open(os.path.join(out_dir, LOG + ".tmp"), "w", encoding="utf-8") as f:
        for u in logged:
            rec = _log_record(drops[u] if u in drops else done[u])
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(os.path.join(out_dir, LOG + ".tmp"), os.path.join(out_dir, LOG))


def _fail_message(failed: List[Dict[str, Any]], tried: int, total: int, max_fail_ratio: float,
                  out_dir: str) -> str:
    """The error of too many `SynthesisFailed` utterances: counts and the first failure."""
    first = failed[0]
    if len(failed) == tried < total and len(failed) <= max_fail_ratio * total:
        why = f"the first {tried} utterances all failed: the backend does not work"
    else:
        why = (f"more than max_fail_ratio {max_fail_ratio:g} of the {total} utterances "
               f"({len(failed) / total:.1%})")
    return (f"{len(failed)} of {tried} utterances failed, {why}; first: {first['utt']}: "
            f"{first.get('detail', '')[:500]}; see {os.path.join(out_dir, LOG)} (a rerun tries "
            f"the failed ones again)")


def _write_report(out_dir: str, s: Dict[str, Any], drops: Dict[str, Dict[str, Any]]) -> None:
    lines = [f"{s['out']}: speech of {s['in']} by TTS {s['tts']} "
             f"{json.dumps(s['tts_conf'], ensure_ascii=False)}, seed {s['seed']}",
             f"utterances in: {s['utterances']}",
             f"kept: {s['kept']} ({s['hours']:.4f} h)",
             f"dropped: {sum(s['dropped'].values())}"
             + "".join(f", {r}: {n}" for r, n in s["dropped"].items())]
    if s["max_sec"] is not None:
        lines.append(f"--max_sec {s['max_sec']:g}: longer utterances left out (too_long)")
    if s["max_hours"] is not None:
        lines.append(f"--max_hours {s['max_hours']:g}: " + (
            f"reached; {s['not_spoken']} utterances of the seeded order not used"
            if s["reached"] else "not reached: every utterance was used"))
    lines.append(f"reused from earlier runs: {s['reused']}")
    lines.append("")
    lines += [f"{u}\t{d['dropped']}\t{d.get('detail', '')}" for u, d in sorted(drops.items())]
    with open(os.path.join(out_dir, REPORT + ".tmp"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(os.path.join(out_dir, REPORT + ".tmp"), os.path.join(out_dir, REPORT))


def summary_line(s: Dict[str, Any]) -> str:
    dropped = sum(s["dropped"].values())
    line = (f"{s['out']}: {s['kept']} of {s['utterances']} utterances spoken, {s['hours']:.4f} h"
            f"; dropped {dropped}" + (f" ({', '.join(f'{r}={n}' for r, n in s['dropped'].items())})"
                                      if dropped else ""))
    if s["max_hours"] is not None:
        line += f"; --max_hours {s['max_hours']:g} {'reached' if s['reached'] else 'not reached'}"
    return line + f"; reused {s['reused']} (see {os.path.join(s['out'], REPORT)})"
