#!/usr/bin/env python3
"""Score decoded text: WER/CER per language, MER, ESPnet score dirs, RESULTS.md (stage 9).

Usage:
    python -m espnet_sllm.bin.sllm_score \
        --ref data/test/text --hyp exp/sllm/decode_test/test/1best_recog/text \
        --utt2lang data/test/utt2lang --output_dir exp/sllm/decode_test/test \
        [--normalizer mlc_slm] [--set_name test] [--use_sclite true|false] \
        [--utt2spk data/test/utt2spk] [--unit auto|word|char] [--default_lang zh]

    python -m espnet_sllm.bin.sllm_score --collect_results exp/sllm

The first form writes into ``--output_dir``:
    score_wer/{ref.trn,hyp.trn,result.txt}   languages scored by words (sclite, ESPnet layout)
    score_cer/{ref.trn,hyp.trn,result.txt}   languages scored by characters (ja, ko, th, zh, ...)
    RESULTS.md      ESPnet's |dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err| rows, a per-language
                    table and the MER (errors / reference units over all languages)
    scores.json     every number above
    error_rate_by_language.png

The second form gathers every scores.json below an experiment directory into
``<exp_dir>/RESULTS.md``.

Without ``--utt2lang`` every utterance has the language ``--default_lang`` (``all``: words);
``--unit char`` forces character scoring (e.g. Chinese dialect labels). Reference utterances
without a hypothesis are scored as empty hypotheses and reported; hypothesis ids that are not in
the reference are an error.
"""

import argparse
import logging
import sys
from typing import Dict, List, Optional

from espnet_sllm.bin.cli import str2bool
from espnet_sllm.scoring.normalize import NORMALIZERS
from espnet_sllm.scoring.report import collect_results, score_set
from espnet_sllm.scoring.sclite import ScliteError, ScliteNotFoundError


def get_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        description="Score decoded text per language (WER/CER, MER) in ESPnet's layout",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--ref", help="reference Kaldi text file: '<uttid> <text>'")
    parser.add_argument("--hyp", help="hypothesis file, e.g. <decode_dir>/1best_recog/text")
    parser.add_argument("--output_dir", help="where score_wer/, score_cer/, RESULTS.md go")
    parser.add_argument("--utt2lang", default=None, help="'<uttid> <language>' (optional)")
    parser.add_argument(
        "--utt2spk", default=None,
        help="'<uttid> <speaker>': speaker part of the trn ids (default: the language)",
    )
    parser.add_argument("--normalizer", default="mlc_slm", choices=sorted(NORMALIZERS),
                        help="text normalisation applied to reference and hypothesis")
    parser.add_argument("--set_name", default=None,
                        help="dataset name in RESULTS.md (default: basename of --output_dir)")
    parser.add_argument("--use_sclite", type=str2bool, default=None,
                        help="true: sclite (error if absent); false: pure Python with the same "
                             "numbers; default: sclite when installed")
    parser.add_argument("--sclite", default=None, help="path of the sclite binary")
    parser.add_argument("--unit", default="auto", choices=["auto", "word", "char"],
                        help="auto: by language (ja/ko/th/zh/yue... characters, others words)")
    parser.add_argument("--default_lang", default="all",
                        help="language of every utterance when --utt2lang is not given")
    parser.add_argument("--plot", type=str2bool, default=True,
                        help="write error_rate_by_language.png")
    parser.add_argument("--collect_results", default=None, metavar="EXP_DIR",
                        help="only gather all scores.json below EXP_DIR into EXP_DIR/RESULTS.md")
    parser.add_argument("--log_level", default="INFO",
                        choices=["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"])
    return parser


def main(cmd: Optional[List[str]] = None) -> Dict[str, object]:
    """Run the CLI; returns the scores (or ``{"markdown": ...}`` for --collect_results).

    Input errors end the program with exit status 1 and a one-line message naming the file
    (and line) at fault, instead of a traceback.
    """
    parser = get_parser()
    args = parser.parse_args(cmd)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s",
    )
    try:
        if args.collect_results:
            text = collect_results(args.collect_results)
            logging.info("wrote %s/RESULTS.md", args.collect_results)
            return {"markdown": text}
        missing = [f"--{k}" for k in ("ref", "hyp", "output_dir") if getattr(args, k) is None]
        if missing:
            parser.error(f"the following arguments are required: {', '.join(missing)}")
        return score_set(
            ref=args.ref,
            hyp=args.hyp,
            output_dir=args.output_dir,
            utt2lang=args.utt2lang,
            utt2spk=args.utt2spk,
            normalizer=args.normalizer,
            set_name=args.set_name,
            use_sclite=args.use_sclite,
            sclite=args.sclite,
            unit=args.unit,
            default_lang=args.default_lang,
            plot=args.plot,
        )
    except (ValueError, OSError, ScliteError, ScliteNotFoundError) as e:
        raise SystemExit(f"sllm_score.py: error: {e}") from None


if __name__ == "__main__":
    main(sys.argv[1:])
