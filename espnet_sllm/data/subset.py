"""Seeded, nested subsets of a Kaldi data directory, by hours of speech or by utterance count.

Usage:
    python -m espnet_sllm.data.subset --in data/wmt19_train_tts --out data/local/wmt19_100h \\
        --hours 100 --seed 0
    python -m espnet_sllm.data.subset --in data/alpaca_zh --out data/local/alpaca_test \\
        --utts 500 --seed 0 --rest data/local/alpaca_pool
    python -m espnet_sllm.data.subset --in data/wenetspeech_m --out data/local/ws_200h \\
        --hours 200 --seed 0 --by spk

The utterances are put in a seeded random order: by ``sha256("<seed>:<uttid>")``, so the
position of an utterance depends on its id and the seed only (not on the other utterances, the
line order or the machine).  The subset is the shortest prefix of that order reaching ``--hours
H`` hours of audio, or its first ``--utts N`` utterances.  Hence, for one input and one seed,
subsets are nested: 90 h ⊂ 178 h, 100 h ⊂ 200 h (the nesting d1 ⊂ d2 ⊂ d3 of
egs2/aishell_wmt); and the subset of a subset set aside with ``--rest`` keeps the order, so that
``--utts 200 --rest R`` followed by ``--hours H`` on ``R`` takes the first utterances after the
200.  ``espnet_sllm.tts.synthesize --max_hours`` speaks in the same order: the synthesis of
``--max_hours H`` is exactly the ``--hours H`` subset of its input with the same seed.

``--by spk`` orders the speakers (``utt2spk``) instead, by ``sha256("<seed>:<spkid>")``, and
takes whole speakers: the shortest prefix of speakers whose utterances reach the hours (or
whose utterance count reaches ``--utts``; the subset then holds every utterance of its
speakers).  For segments cut out of long recordings whose speaker is the recording
(WenetSpeech), this keeps the number of recordings to decode down to what the hours need;
it also gives speaker-disjoint subsets.  The nesting holds the same way.

Durations (seconds) come from, in this order: ``utt2dur`` (when it covers every utterance),
``segments`` (end - start), the audio headers of the ``wav.scp`` files (``soundfile.info``;
a pipe or an unreadable file is an error naming the entry).  ``<out>/utt2dur`` is written.

Text-only utterances (an empty ``wav.scp`` entry, or a directory without ``wav.scp``) have no
speech: ``--hours`` refuses them with an error naming one, since counting them as 0 h would let
a subset of "H hours" hold any number of them.  Take the speech rows by hours and add their
text-only copies afterwards (egs2/aishell_wmt/asr1/local/data.sh does so for the ``qa`` copies
of Alpaca), or use ``--utts``, which needs no durations.

Errors: more hours or utterances asked than the input holds (naming what it holds), an empty
request, an output equal to the input.  Output: a data directory (`write_data_dir`: every
Kaldi and optional file of the input, restricted), with the input's ``utt2dur``,
``utt2tgtlang`` and ``utt2num_samples`` restricted likewise and its per-speaker files;
``--rest DIR`` writes every other utterance to DIR the same way.
"""
import argparse
import hashlib
import logging
import os
import sys
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from espnet_sllm.data.kaldi_dir import (
    Utterance,
    carry_speaker_files,
    read_data_dir,
    read_kv,
    write_data_dir,
    write_kv,
)

logger = logging.getLogger(__name__)

#: per-utterance files that are not `Utterance` fields, carried over restricted
EXTRA_UTT_FILES = ("utt2dur", "utt2tgtlang", "utt2num_samples")
# Relative slack when the whole input is asked for: float sums of the same durations in the
# same order are equal, but an hour figure may have been rounded on its way (shell, printf).
_SLACK = 1e-9


def order_key(uttid: str, seed: int) -> bytes:
    """The sort key of ``uttid`` in the seeded order."""
    return hashlib.sha256(f"{seed}:{uttid}".encode("utf-8")).digest()


def seeded_order(uttids: Iterable[str], seed: int) -> List[str]:
    """``uttids`` in the seeded random order (see the module docstring)."""
    return sorted(uttids, key=lambda u: order_key(u, seed))


def text_only_ids(utts: Sequence[Utterance]) -> List[str]:
    return [u.uttid for u in utts if u.wav is None or not u.wav.strip()]


def durations(data_dir: str, utts: Optional[Sequence[Utterance]] = None) -> Dict[str, float]:
    """Seconds of every utterance with audio of ``data_dir`` (see the module docstring for the
    sources); text-only utterances get 0."""
    if utts is None:
        utts = read_data_dir(data_dir)
    out: Dict[str, float] = {u: 0.0 for u in text_only_ids(utts)}
    need = [u for u in utts if u.uttid not in out]
    path = os.path.join(data_dir, "utt2dur")
    if os.path.isfile(path):
        known = read_kv(path)
        if all(u.uttid in known for u in need):
            for u in need:
                try:
                    out[u.uttid] = float(known[u.uttid])
                except ValueError:
                    raise ValueError(f"{path}: {u.uttid}: not a number: {known[u.uttid]!r}") \
                        from None
            return out
        logger.info("%s does not cover every utterance: durations from segments or headers", path)
    import soundfile  # local import: --utts needs no audio library

    for u in need:
        if u.segment is not None:
            out[u.uttid] = u.segment.end - u.segment.start
            continue
        entry = u.wav.strip()
        if entry.endswith("|") or not os.path.isfile(entry):
            raise ValueError(f"{data_dir}/wav.scp: {u.uttid}: cannot read the duration of "
                             f"{entry!r} (not a file); write {data_dir}/utt2dur first")
        try:
            out[u.uttid] = soundfile.info(entry).duration
        except RuntimeError as e:
            raise ValueError(f"{data_dir}/wav.scp: {u.uttid}: cannot read the audio header of "
                             f"{entry}: {e}") from None
    return out


def format_seconds(seconds: float) -> str:
    """A duration as ``utt2dur`` holds it: the shortest text that reads back as the same float
    (so that sums over a re-read ``utt2dur`` equal the sums over the original numbers)."""
    return repr(float(seconds))


def hours_prefix(order: Sequence[str], dur: Dict[str, float], hours: float,
                 what: str = "utterances") -> List[str]:
    """The shortest prefix of ``order`` whose durations reach ``hours``; an error naming the
    hours there are when the whole order does not."""
    need = hours * 3600.0
    total = 0.0
    for i, u in enumerate(order):
        total += dur[u]
        if total >= need:
            return list(order[: i + 1])
    if total >= need * (1 - _SLACK):
        return list(order)
    raise ValueError(f"{hours:g} h asked, but there are only {total / 3600:.6g} h "
                     f"({len(order)} {what})")


def write_restricted(out_dir: str, in_dir: str, utts: List[Utterance],
                     dur: Optional[Dict[str, float]]) -> None:
    """Write ``utts`` (taken from ``in_dir``) with ``in_dir``'s `EXTRA_UTT_FILES` and
    per-speaker files restricted to them; ``dur`` (when given) becomes ``utt2dur``."""
    write_data_dir(out_dir, utts)
    keys = {u.uttid for u in utts}
    for fname in EXTRA_UTT_FILES:
        src = os.path.join(in_dir, fname)
        dst = os.path.join(out_dir, fname)
        if fname == "utt2dur" and dur is not None:
            write_kv(dst, {u: format_seconds(dur[u]) for u in keys})
        elif os.path.isfile(src):
            write_kv(dst, {k: v for k, v in read_kv(src).items() if k in keys})
        elif os.path.exists(dst):
            os.remove(dst)
    carry_speaker_files(out_dir, [in_dir])


def subset_data_dir(in_dir: str, out_dir: str, seed: int, hours: Optional[float] = None,
                    utts: Optional[int] = None, rest_dir: Optional[str] = None,
                    by: str = "utt") -> Tuple[int, int, float]:
    """Write the subset (and the rest); returns (utterances kept, utterances in, hours kept;
    the hours are 0 with ``utts`` when the input has no durations at hand)."""
    if (hours is None) == (utts is None):
        raise ValueError("give exactly one of hours and utts")
    if hours is not None and not hours > 0:
        raise ValueError(f"--hours must be > 0, got {hours}")
    if utts is not None and utts <= 0:
        raise ValueError(f"--utts must be > 0, got {utts}")
    if by not in ("utt", "spk"):
        raise ValueError(f"--by must be utt or spk, got {by!r}")
    real = {os.path.realpath(d) for d in (out_dir, rest_dir) if d}
    if os.path.realpath(in_dir) in real or (rest_dir and len(real) < 2):
        raise ValueError("subset: --in, --out and --rest must be different directories")
    if not os.path.isdir(in_dir):
        raise ValueError(f"subset: input directory {in_dir} does not exist")
    all_utts = read_data_dir(in_dir)
    by_id = {u.uttid: u for u in all_utts}
    order = seeded_order(by_id, seed)
    groups: Dict[str, List[str]] = {}
    for u in all_utts:  # --by spk: a unit is a speaker (its utterances)
        groups.setdefault(u.speaker if by == "spk" else u.uttid, []).append(u.uttid)
    units = seeded_order(groups, seed)
    dur: Optional[Dict[str, float]] = None
    if hours is not None:
        text_only = text_only_ids(all_utts)
        if text_only:
            raise ValueError(
                f"{in_dir}: {len(text_only)} text-only utterance(s) (no audio, e.g. "
                f"{text_only[0]!r}) have no duration to count in --hours; subset the speech "
                f"rows and add the text-only ones afterwards, or use --utts")
        dur = durations(in_dir, all_utts)
        unit_dur = {g: sum(dur[u] for u in groups[g]) for g in units}
        try:
            chosen_units = hours_prefix(units, unit_dur, hours,
                                        "speakers" if by == "spk" else "utterances")
        except ValueError as e:
            raise ValueError(f"{in_dir}: {e}") from None
    else:
        if utts > len(order):
            raise ValueError(f"{in_dir}: {utts} utterances asked, but there are only "
                             f"{len(order)}")
        chosen_units, n = [], 0
        for g in units:
            if n >= utts:
                break
            chosen_units.append(g)
            n += len(groups[g])
        if os.path.isfile(os.path.join(in_dir, "utt2dur")):
            dur = durations(in_dir, all_utts)
    keep = {u for g in chosen_units for u in groups[g]}
    write_restricted(out_dir, in_dir, [by_id[u] for u in sorted(keep)], dur)
    if rest_dir:
        rest = [u for u in all_utts if u.uttid not in keep]
        if not rest:
            raise ValueError(f"{in_dir}: nothing is left for --rest {rest_dir}")
        write_restricted(rest_dir, in_dir, rest, dur)
    kept_hours = sum(dur[u] for u in keep) / 3600 if dur else 0.0
    return len(keep), len(order), kept_hours


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("Usage:")[0],
        epilog="Usage:" + __doc__.split("Usage:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--in", dest="in_dir", required=True, help="input data directory")
    parser.add_argument("--out", dest="out_dir", required=True, help="output data directory")
    parser.add_argument("--seed", type=int, required=True, help="seed of the random order")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--hours", type=float, help="hours of audio: the shortest prefix of the "
                                                  "seeded order reaching them")
    size.add_argument("--utts", type=int, help="the first N utterances of the seeded order")
    parser.add_argument("--rest", dest="rest_dir", default=None,
                        help="also write every other utterance to this directory")
    parser.add_argument("--by", default="utt", choices=["utt", "spk"],
                        help="order utterances (default) or whole speakers")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: subset: %(message)s")
    try:
        n, total, h = subset_data_dir(args.in_dir, args.out_dir, args.seed, args.hours,
                                      args.utts, args.rest_dir, args.by)
    except (ValueError, OSError) as e:
        print(f"subset: ERROR: {e}", file=sys.stderr)
        return 1
    what = f"{h:.4f} h, " if args.hours is not None or h else ""
    print(f"subset: {args.out_dir}: {n} of {total} utterances of {args.in_dir} ({what}seed "
          f"{args.seed})" + (f"; the other {total - n}: {args.rest_dir}" if args.rest_dir else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
