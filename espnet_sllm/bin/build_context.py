#!/usr/bin/env python3
"""Build ``text_prev`` / ``text_next`` of every segment from the texts of its neighbours.

Usage:
    python -m espnet_sllm.bin.build_context --segments data/test/segments \
        --text exp/sllm/decode_x/test/text --out exp/sllm/decode_x_ctx/test/context \
        [--keys dump/raw/test/wav.scp]

Neighbours are the previous and next segments of the same recording ordered by start time (either
speaker), as in the training data. ``--text`` is the first-pass hypotheses for context-aware
re-decoding (stage 8), or the reference transcripts for the ground-truth upper bound. A
neighbour without a text gets an empty context (counted and logged). ``--keys`` restricts the
output to the utterances that are decoded (the first column of that file).
"""
import argparse
import logging
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

from espnet_sllm.data.kaldi_dir import read_kv, write_kv


def read_segments(path: str) -> Dict[str, Tuple[str, float, float]]:
    """``<utt> <recording> <start> <end>`` lines -> {utt: (recording, start, end)}."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                raise ValueError(f"{path}:{lineno}: expected '<utt> <rec> <start> <end>': {line!r}")
            try:
                out[parts[0]] = (parts[1], float(parts[2]), float(parts[3]))
            except ValueError:
                raise ValueError(f"{path}:{lineno}: non-numeric time in {line!r}") from None
    return out


def neighbours(segments: Dict[str, Tuple[str, float, float]]) -> Dict[str, Tuple[str, str]]:
    """{utt: (previous utt or "", next utt or "")} within each recording, by start time."""
    by_rec: Dict[str, List[Tuple[float, float, str]]] = defaultdict(list)
    for utt, (rec, start, end) in segments.items():
        by_rec[rec].append((start, end, utt))
    out = {}
    for items in by_rec.values():
        items.sort()
        for i, (_, _, utt) in enumerate(items):
            prev = items[i - 1][2] if i > 0 else ""
            nxt = items[i + 1][2] if i + 1 < len(items) else ""
            out[utt] = (prev, nxt)
    return out


def build_context(
    segments: Dict[str, Tuple[str, float, float]], texts: Dict[str, str], keys=None
) -> Tuple[Dict[str, str], Dict[str, str], int]:
    """Returns (text_prev, text_next, number of neighbours that had no text)."""
    prev_text, next_text, missing = {}, {}, 0
    for utt, (prev, nxt) in neighbours(segments).items():
        if keys is not None and utt not in keys:
            continue
        for other, table in ((prev, prev_text), (nxt, next_text)):
            if other and other not in texts:
                missing += 1
            table[utt] = texts.get(other, "") if other else ""
    return prev_text, next_text, missing


def main(cmd: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--segments", required=True)
    p.add_argument("--text", required=True, help="hypotheses or references: '<utt> <text>'")
    p.add_argument("--out", required=True)
    p.add_argument("--keys", default=None)
    args = p.parse_args(cmd)
    logging.basicConfig(level="INFO", format="%(asctime)s (%(module)s:%(lineno)d) %(message)s")
    keys = set(read_kv(args.keys)) if args.keys else None
    segments = read_segments(args.segments)
    if keys is not None and not keys <= set(segments):
        extra = sorted(keys - set(segments))
        raise SystemExit(f"{args.keys}: {len(extra)} utterances are not in {args.segments}, "
                         f"e.g. {extra[0]}")
    prev_text, next_text, missing = build_context(segments, read_kv(args.text), keys)
    import os

    os.makedirs(args.out, exist_ok=True)
    write_kv(os.path.join(args.out, "text_prev"), prev_text)
    write_kv(os.path.join(args.out, "text_next"), next_text)
    if missing:
        logging.warning(f"{missing} neighbour(s) have no text in {args.text}: empty context used")
    logging.info(f"wrote {args.out}/text_prev, text_next for {len(prev_text)} utterances "
                 f"(context from {args.text})")


if __name__ == "__main__":
    main()
