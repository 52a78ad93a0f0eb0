#!/usr/bin/env python3
"""Give a text-only data directory speech with a TTS backend (WMT19, Alpaca-zh of egs2/aishell_wmt).

Usage:
    python -m espnet_sllm.bin.synthesize --in data/wmt19_train --out data/wmt19_train_tts \\
        --nj 8 --seed 0 [--max_hours 200] [--max_sec 30] [--tts espeak|module:Class] \\
        [--tts_conf key=value ...] [--min_sec 0.2] [--min_sec_per_char 0.05] [--progress true]

    --tts espeak (default): espeak-ng Mandarin, voice cmn-latn-pinyin (espnet_sllm/tts/espeak.py);
    --tts my.module:MyTTS: any espnet_sllm.tts.abs_tts.AbsTTS subclass; --tts_conf gives its
    constructor arguments, each value read as YAML (voice=cmn, pitch_min=40, variants=m1,f1).

See espnet_sllm/tts/synthesize.py for what it reads, writes, checks and how it resumes (this is
its command line).
"""
import argparse
import logging
import sys
from typing import Optional, Sequence

from espnet_sllm.bin.cli import str2bool
from espnet_sllm.tts import load_tts, parse_tts_conf, tts_classes
from espnet_sllm.tts.synthesize import summary_line, synthesize_dir


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("Usage:")[0],
        epilog="Usage:" + __doc__.split("Usage:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--in", dest="in_dir", required=True,
                        help="data directory whose text is spoken")
    parser.add_argument("--out", dest="out_dir", required=True, help="output data directory")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the order and of every utterance's voice (default: 0)")
    parser.add_argument("--nj", type=int, default=1, help="parallel jobs (default: 1)")
    parser.add_argument("--max_hours", type=float, default=None,
                        help="stop at this many hours of speech, in the seeded order "
                             "(default: speak everything)")
    parser.add_argument("--max_sec", type=float, default=None,
                        help="leave out (too_long) utterances longer than this; they do not "
                             "count towards --max_hours (default: keep all)")
    parser.add_argument("--tts", default="espeak",
                        help=f"backend: {', '.join(tts_classes)} or module:Class "
                             f"(default: espeak)")
    parser.add_argument("--tts_conf", nargs="*", default=[], metavar="KEY=VALUE",
                        help="constructor arguments of the backend")
    parser.add_argument("--min_sec", type=float, default=0.2,
                        help="shorter audio is dropped as too_short (default: 0.2)")
    parser.add_argument("--min_sec_per_char", type=float, default=0.05,
                        help="audio shorter than this many seconds per letter of the text is "
                             "dropped as too_short (default: 0.05)")
    parser.add_argument("--progress", type=str2bool, default=True,
                        help="show a progress bar (default: true)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: synthesize: %(message)s")
    try:
        tts = load_tts(args.tts, parse_tts_conf(args.tts_conf))
        summary = synthesize_dir(args.in_dir, args.out_dir, tts, seed=args.seed, nj=args.nj,
                                 max_hours=args.max_hours, min_sec=args.min_sec,
                                 min_sec_per_char=args.min_sec_per_char,
                                 progress=args.progress, max_sec=args.max_sec)
    except (RuntimeError, ValueError, OSError, TypeError) as e:  # refusals, backend errors
        print(f"synthesize: ERROR: {e}", file=sys.stderr)
        return 1
    print(f"synthesize: {summary_line(summary)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
