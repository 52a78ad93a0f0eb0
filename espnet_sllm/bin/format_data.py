#!/usr/bin/env python3
"""Format a Kaldi data directory for training: 16-bit mono FLAC (or WAV) per utterance (stage 2).

Usage:
    python -m espnet_sllm.bin.format_data --in data/<set> --out dump/raw/<set> \\
        [--fs 16000] [--nj 2] [--channel mean|0|1|...] [--max_overshoot 0.5] [--overwrite false] \\
        [--skip_bad_text false] [--audio_format flac|wav]

See espnet_sllm/data/formatting.py for what it reads, writes and checks (this is its
command line).
"""
import argparse
import logging
import sys
from typing import Optional, Sequence

from espnet_sllm.bin.cli import str2bool
from espnet_sllm.data.formatting import __doc__ as _lib_doc
from espnet_sllm.data.formatting import AUDIO_FORMATS, FormatError, format_data


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=_lib_doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--in", dest="in_dir", required=True, help="Kaldi data directory")
    parser.add_argument("--out", dest="out_dir", required=True, help="output directory")
    parser.add_argument("--fs", type=int, default=16000, help="output sample rate (Hz)")
    parser.add_argument("--nj", type=int, default=2, help="parallel processes")
    parser.add_argument("--channel", default="mean",
                        help="'mean' of the channels, or the index of the channel to keep")
    parser.add_argument("--max_overshoot", type=float, default=0.5,
                        help="seconds a segment may end after its recording (then cut short)")
    parser.add_argument("--overwrite", type=str2bool, default=False,
                        help="redo every utterance even when an earlier run formatted it")
    parser.add_argument("--skip_bad_text", type=str2bool, default=False,
                        help="drop (and count, not_utf8) the utterances of lines that are not "
                             "UTF-8 instead of stopping with an error naming file:line")
    parser.add_argument("--audio_format", default="flac", choices=sorted(AUDIO_FORMATS),
                        help="format of the files written (16-bit PCM either way; FLAC is "
                             "lossless, about 2/3 of the bytes); whole 16-bit mono WAV/FLAC "
                             "sources at --fs are referenced, not copied, in both")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: format_data: %(message)s")
    if args.fs <= 0 or args.nj <= 0:
        print("format_data: error: --fs and --nj must be positive", file=sys.stderr)
        return 1
    try:
        counts = format_data(args.in_dir, args.out_dir, fs=args.fs, nj=args.nj,
                             channel=args.channel, max_overshoot=args.max_overshoot,
                             overwrite=args.overwrite, progress=True,
                             skip_bad_text=args.skip_bad_text,
                             audio_format=args.audio_format)
    except (FormatError, ValueError, OSError) as e:
        print(f"format_data: error: {e}", file=sys.stderr)
        return 1
    why = ", ".join(f"{r}: {n}" for r, n in counts["dropped_for"].items() if n)
    print(f"format_data: {args.out_dir}: {counts['written']} written, {counts['kept']} kept from "
          f"an earlier run, {counts['dropped']} dropped{f' ({why})' if why else ''}, "
          f"{counts['text_only']} text-only, {sum(counts['resampled'].values())} resampled, "
          f"{counts['multichannel']} multi-channel, {counts['referenced']} referenced (not "
          f"copied), {counts['shared']} shared (see format_report.txt)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
