#!/usr/bin/env python3
"""Drop unusable utterances from a formatted data directory, with a count per reason (stage 3).

Usage:
    python -m espnet_sllm.bin.filter_data --in dump/raw/<set> --out dump/raw/<set>_filtered \\
        [--min_sec 0.1] [--max_sec 30] [--max_text_chars N] [--fs 16000]

See espnet_sllm/data/filtering.py for what it reads, writes and checks (this is its
command line).
"""
import argparse
import logging
import sys
from typing import Optional, Sequence

from espnet_sllm.data.filtering import __doc__ as _lib_doc
from espnet_sllm.data.filtering import FilterError, filter_data


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=_lib_doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--in", dest="in_dir", required=True, help="formatted data directory")
    parser.add_argument("--out", dest="out_dir", required=True, help="output data directory")
    parser.add_argument("--min_sec", type=float, default=0.1, help="shortest audio kept (s)")
    parser.add_argument("--max_sec", type=float, default=30.0, help="longest audio kept (s)")
    parser.add_argument("--max_text_chars", type=int, default=None,
                        help="longest text kept, in characters (default: no limit)")
    parser.add_argument("--fs", type=int, default=16000, help="sample rate of the WAVs (Hz)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: filter_data: %(message)s")
    try:
        counts, kept, total = filter_data(args.in_dir, args.out_dir, args.min_sec, args.max_sec,
                                          args.max_text_chars, args.fs)
    except (FilterError, ValueError, OSError) as e:
        print(f"filter_data: error: {e}", file=sys.stderr)
        return 1
    print(f"filter_data: {args.out_dir}: kept {kept} of {total} utterances; dropped "
          + ", ".join(f"{r}: {c}" for r, c in counts.items())
          + " (see filter_report.txt)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
