#!/usr/bin/env python3
"""Score decoded text: WER/CER per language, MER, BLEU, ROUGE-L, ESPnet score dirs, RESULTS.md
(stage 9).

Usage:
    python -m espnet_sllm.bin.sllm_score \
        --ref data/test/text --hyp exp/sllm/decode_test/test/1best_recog/text \
        --utt2lang data/test/utt2lang --output_dir exp/sllm/decode_test/test \
        [--normalizer mlc_slm] [--set_name test] [--use_sclite true|false] \
        [--utt2spk data/test/utt2spk] [--unit auto|word|char] [--default_lang zh] \
        [--utt2task data/test/utt2task] [--utt2tgtlang data/test/utt2tgtlang] \
        [--ref_tgt data/test/text_tgt] [--default_tgt_lang en] [--hyp_marker "Translation:"] \
        [--hyp_before_marker "Translation:"] [--score_group data/test/utt2subdialect ...] \
        [--bleu_tokenize zh] [--paper_results conf/paper_results.yaml] [--paper_system NAME]

    python -m espnet_sllm.bin.sllm_score --collect_results exp/sllm \
        [--paper_results conf/paper_results.yaml]

The first form writes into ``--output_dir``:
    score_wer/{ref.trn,hyp.trn,result.txt}   languages scored by words (sclite, ESPnet layout)
    score_cer/{ref.trn,hyp.trn,result.txt}   languages scored by characters (ja, ko, th, zh, ...)
    RESULTS.md      ESPnet's |dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err| rows, a per-language
                    table and the MER (errors / reference units over all languages)
    scores.json     every number above
    error_rate_by_language.png

The second form gathers every scores.json below an experiment directory into
``<exp_dir>/RESULTS.md``.

Task-aware scoring (``espnet_sllm.scoring.tasks``): with ``--utt2task``, the utterances of task
``asr`` are scored as above, ``st`` ones with sacreBLEU corpus BLEU per direction (utt2lang ->
utt2tgtlang; signature printed) and ROUGE-L, ``sqa``/``qa`` ones with ROUGE-L per language; the
units follow the language of the text scored. ``--score_group utt2subdialect`` adds a table of
the ASR error rates per subdialect; ``--paper_results`` prints a paper's numbers beside ours
(format: ``espnet_sllm.scoring.paper``). Without these options the outputs are unchanged.
``--hyp_before_marker`` (no ``--utt2task``): the transcript of chain-of-thought hypotheses.
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
from espnet_sllm.scoring.bleu import valid_tokenizers
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
    group = parser.add_argument_group("task-aware scoring")
    group.add_argument("--utt2task", default=None,
                       help="'<uttid> asr|st|sqa|qa': asr -> WER/CER, st -> BLEU + ROUGE-L, "
                            "sqa/qa -> ROUGE-L (default: asr everywhere)")
    group.add_argument("--utt2tgtlang", default=None,
                       help="'<uttid> <target language>' of translations (and answers)")
    group.add_argument("--ref_tgt", default=None,
                       help="reference of the st/sqa/qa utterances, e.g. data/<set>/text_tgt "
                            "(default: --ref)")
    group.add_argument("--default_tgt_lang", default=None,
                       help="target language of st utterances that --utt2tgtlang lacks")
    group.add_argument("--hyp_marker", default=None,
                       help="chain of thought: an st translation is the hypothesis after the "
                            "first MARKER (e.g. 'Translation:'); none: scored as empty")
    group.add_argument("--hyp_before_marker", default=None, metavar="MARKER", help="COT: score "
                       "the text before MARKER (all when absent) as ASR against --ref")
    group.add_argument("--score_group", action="append", default=[], metavar="FILE",
                       help="'<uttid> <value>' (e.g. utt2subdialect): ASR error rates per value "
                            "in a table of its own; repeatable")
    group.add_argument("--bleu_normalizer", default="none", choices=sorted(NORMALIZERS),
                       help="normalisation of the text sacreBLEU sees (none: as written)")
    group.add_argument("--bleu_tokenize", default=None, choices=valid_tokenizers(),
                       help="sacreBLEU tokenizer for every direction (default: by target "
                            "language: zh, ja-mecab/ko-mecab or char, 13a)")
    group.add_argument("--paper_results", default=None, metavar="YAML",
                       help="a paper's numbers to print beside ours (espnet_sllm.scoring.paper); "
                            "also with --collect_results")
    group.add_argument("--paper_system", default=None,
                       help="experiment name to look up under 'systems:' of --paper_results "
                            "(default: the directory two levels above --output_dir)")
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
            text = collect_results(args.collect_results, paper_results=args.paper_results)
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
            utt2task=args.utt2task,
            utt2tgtlang=args.utt2tgtlang,
            ref_tgt=args.ref_tgt,
            default_tgt_lang=args.default_tgt_lang,
            hyp_marker=args.hyp_marker,
            score_groups=args.score_group,
            bleu_normalizer=args.bleu_normalizer,
            bleu_tokenize=args.bleu_tokenize,
            paper_results=args.paper_results,
            paper_system=args.paper_system,
            hyp_before_marker=args.hyp_before_marker,
        )
    except (ValueError, OSError, ScliteError, ScliteNotFoundError) as e:
        raise SystemExit(f"sllm_score.py: error: {e}") from None


if __name__ == "__main__":
    main(sys.argv[1:])
