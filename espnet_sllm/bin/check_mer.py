#!/usr/bin/env python3
"""Fail when a scored set's MER is above a bound (the CI learning check, ``make learn-check``).

Usage:
    python -m espnet_sllm.bin.check_mer --scores exp/sllm/decode_x/test/scores.json --max_mer 15

    # after egs2/mini_mlc/asr1/run.sh --size learn (Makefile target learn-check):
    python -m espnet_sllm.bin.check_mer \\
        --scores egs2/mini_mlc/asr1/exp_learn/sllm_train_learn/decode_valid.acc.ave/test/scores.json \\
        --max_mer 30

Reads the MER that stage 9 (``sllm_score``) wrote into ``scores.json`` (errors over reference
units, each language in its own unit) and prints one line with the value and the bound.  Exit
status 0 when MER <= ``--max_mer``, 1 when above, 2 when the file has no MER (unreadable, not
stage-9 output, or nothing scored): a missing result never passes.
"""
import argparse
import sys
from typing import List, Optional

from espnet_sllm.scoring.report import check_mer_bound


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Exit 1 when the MER of a stage-9 scores.json is above --max_mer")
    parser.add_argument("--scores", required=True, help="scores.json written by sllm_score")
    parser.add_argument("--max_mer", type=float, required=True, help="bound in percent")
    args = parser.parse_args(argv)
    try:
        ok, line = check_mer_bound(args.scores, args.max_mer)
    except ValueError as e:
        print(f"check_mer: ERROR: {e}", file=sys.stderr)
        return 2
    print(f"check_mer: {'OK' if ok else 'FAILED'}: {line}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
