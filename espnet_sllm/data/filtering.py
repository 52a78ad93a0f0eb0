"""Drop unusable utterances from a formatted data directory, with a count per reason (stage 3).

Usage:
    python -m espnet_sllm.bin.filter_data --in dump/raw/<set> --out dump/raw/<set>_filtered \\
        [--min_sec 0.1] [--max_sec 30] [--max_text_chars N] [--fs 16000]

Reads a directory written by ``format_data`` (it needs ``utt2num_samples``) and keeps the
utterances that pass every check, in this order (an utterance is counted under the first reason
that drops it):

    empty text          text missing or only whitespace (checked when the set has a text file)
    too short           fewer than --min_sec seconds of audio
    too long            more than --max_sec seconds of audio
    text too long       more than --max_text_chars characters of text (no limit by default)

Text-only utterances (0 samples: an empty wav.scp entry that format_data turned into a WAV of 0
samples, see ``preprocessor_conf.text_only_tasks``) have no duration: --min_sec and --max_sec
apply only to utterances with audio, the text checks to all; the report counts the text-only
utterances kept.

Durations are ``utt2num_samples / fs``; ``--fs`` must match the sample rate of the WAVs (the
first one with audio is checked).  The counts are printed and written with the list of
dropped utterances to ``<out>/filter_report.txt``; ``<out>`` is a complete data directory
(wav.scp, utt2spk, spk2utt, the optional files, the carried files such as utt2tgtlang,
utt2num_samples), validated before the tool ends.
"""
import logging
import os
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

from espnet_sllm.data.formatting import read_carried_files, write_carried_files
from espnet_sllm.data.kaldi_dir import (
    Utterance,
    read_data_dir,
    read_kv,
    validate_data_dir,
    write_data_dir,
    write_kv,
)

logger = logging.getLogger("filter_data")

REASONS = ("empty text", "too short", "too long", "text too long")


class FilterError(Exception):
    pass


def _check_fs(utts: List[Utterance], num_samples: Dict[str, str], fs: int) -> None:
    import soundfile as sf

    # A text-only utterance's 0-sample WAV is written at --fs by format_data: it proves nothing.
    with_audio = [u for u in utts if num_samples[u.uttid].strip() != "0"]
    if not with_audio:
        return
    wav = with_audio[0].wav
    if wav.rstrip().endswith("|") or not os.path.isfile(wav):
        return  # not a plain file: nothing cheap to check against
    rate = sf.info(wav).samplerate
    if rate != fs:
        raise FilterError(
            f"{wav} is at {rate} Hz but --fs is {fs}: durations would be wrong; pass --fs {rate}"
        )


def filter_data(in_dir: str, out_dir: str, min_sec: float = 0.1, max_sec: float = 30.0,
                max_text_chars: Optional[int] = None, fs: int = 16000
                ) -> Tuple["OrderedDict[str, int]", int, int]:
    """Filter and write; returns (dropped count per reason, kept, total)."""
    if os.path.abspath(in_dir) == os.path.abspath(out_dir):
        raise FilterError(f"--in and --out are the same directory ({in_dir})")
    if min_sec < 0 or max_sec <= min_sec:
        raise FilterError(f"need 0 <= --min_sec < --max_sec, got {min_sec} and {max_sec}")
    ns_path = os.path.join(in_dir, "utt2num_samples")
    if not os.path.isfile(ns_path):
        raise FilterError(
            f"{ns_path}: missing; filter a directory written by format_data (stage 2)"
        )
    try:
        utts = read_data_dir(in_dir)
    except ValueError as e:
        raise FilterError(str(e)) from None
    num_samples = read_kv(ns_path)
    missing = [u.uttid for u in utts if u.uttid not in num_samples]
    if missing:
        raise FilterError(
            f"{ns_path}: {len(missing)} utterances have no sample count (e.g. {missing[0]!r}); "
            f"re-run format_data"
        )
    _check_fs(utts, num_samples, fs)
    carried = read_carried_files(in_dir, [u.uttid for u in utts])
    has_text = os.path.isfile(os.path.join(in_dir, "text"))

    counts: "OrderedDict[str, int]" = OrderedDict((r, 0) for r in REASONS)
    dropped: List[Tuple[str, str]] = []
    kept: List[Utterance] = []
    n_text_only = 0
    for u in utts:
        try:
            sec = int(num_samples[u.uttid]) / fs
        except ValueError:
            raise FilterError(
                f"{ns_path}: {u.uttid}: not a number: {num_samples[u.uttid]!r}"
            ) from None
        text = (u.text or "").strip()
        # 0 samples: a text-only utterance (format_data), not a too short one.
        text_only = int(num_samples[u.uttid]) == 0
        reason = None
        if has_text and not text:
            reason, detail = "empty text", ""
        elif sec < min_sec and not text_only:
            reason, detail = "too short", f"{sec:.3f}s < {min_sec}s"
        elif sec > max_sec:
            reason, detail = "too long", f"{sec:.3f}s > {max_sec}s"
        elif max_text_chars is not None and len(text) > max_text_chars:
            reason, detail = "text too long", f"{len(text)} > {max_text_chars} characters"
        if reason is None:
            kept.append(u)
            n_text_only += text_only
        else:
            counts[reason] += 1
            dropped.append((u.uttid, f"{reason}" + (f" ({detail})" if detail else "")))

    lines = [
        f"# filter_data {in_dir} -> {out_dir} (min_sec={min_sec}, max_sec={max_sec}, "
        f"max_text_chars={max_text_chars}, fs={fs})",
        f"input utterances: {len(utts)}",
        f"kept: {len(kept)}",
        f"kept text-only (0 samples, no duration limits): {n_text_only}",
        f"dropped: {len(dropped)}",
    ] + [f"dropped for {r}: {c}" for r, c in counts.items()]
    lines += [f"dropped {utt}: {why}" for utt, why in dropped]
    if not kept:
        raise FilterError(
            f"{in_dir}: all {len(utts)} utterances would be dropped ("
            + ", ".join(f"{r}: {c}" for r, c in counts.items() if c) + ")"
        )
    write_data_dir(out_dir, kept)
    write_kv(os.path.join(out_dir, "utt2num_samples"),
             {u.uttid: num_samples[u.uttid] for u in kept})
    write_carried_files(out_dir, carried, [u.uttid for u in kept])
    validate_data_dir(out_dir)
    with open(os.path.join(out_dir, "filter_report.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return counts, len(kept), len(utts)
