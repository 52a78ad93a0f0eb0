#!/usr/bin/env python3
"""Write RESULTS.md shaped as Tables 1-3 of Wu et al. from the scored experiments of this recipe.

Usage:
    python local/make_tables.py --exp exp [--out exp/RESULTS.md] [--asr_set aishell2_test]
        [--st_set newstest2019] [--qa_set alpaca_test]
    (run.sh calls it after stage 9; run from egs2/aishell_wmt/asr1)

The experiments are the ones run.sh names: ``<exp>/sllm_align_d<N>``, ``sllm_lora_d<N>``,
``sllm_dims<d>_d2``; their decoding passes ``decode_*`` (the default one), ``decode_chat`` (the
LLM swap: Yi-6B-Chat) and ``decode_svd<k>`` (top-k singular values).  Each cell is read from the
stage-9 ``scores.json`` of a set (espnet_sllm/scoring/grid.py): CER of the ASR test set, ROUGE-L
(and BLEU) of the ST test set, ROUGE-L of the spoken (sqa) and text (qa) questions, ``ours
(paper)`` where conf/paper_results.yaml gives the paper's number; a cell not run yet reads ``–``.

* Table 1: ROUGE-L (ST) and CER (ASR) x {Yi-6B, Yi-6B-Chat, Yi-6B-LoRA}, datasets 1-3;
* Table 2: the same x top-k {None, 1000, 300, 200, 100, 50} (dataset 2, Yi-6B; None = Table 1's
  cell, not a rerun); ``--svd_ks`` gives other k (the debug ones);
* Table 3: the same x trainable dims {4096, 3072, 2048, 1024} (dataset 2; 4096 = align);
* ours: BLEU (ST) and ROUGE-L of sqa / qa for every experiment and pass, and the trainable
  parameters each experiment logged.
"""
import argparse
import glob
import os
import re
import sys
from typing import List, Optional

from espnet_sllm.scoring.grid import render

PAPER_KS = (1000, 300, 200, 100, 50)
DIMS = (3072, 2048, 1024)


def scores(exp_dir: str, decode: str, test_set: str) -> str:
    """The scores.json of one set of one decoding pass (``default``: the decode_* dir that is
    neither the LLM swap nor an SVD pass); a path that does not exist when not run."""
    if decode == "default":
        dirs = [d for d in sorted(glob.glob(os.path.join(exp_dir, "decode_*")))
                if not re.search(r"decode_(chat|svd\d+)$", d)]
        decode_dir = dirs[0] if dirs else os.path.join(exp_dir, "decode_(not run)")
    else:
        decode_dir = os.path.join(exp_dir, decode)
    return os.path.join(decode_dir, test_set, "scores.json")


def cells(args) -> List[tuple]:
    """(table, row, column, scores.json, metric) of every cell."""
    out = []

    def pair(table, row, col_prefix, exp, decode):
        e = os.path.join(args.exp, exp)
        out.append((table, row, f"{col_prefix}ROUGE-L", scores(e, decode, args.st_set),
                    ("task", "st", "ROUGE-L")))
        out.append((table, row, f"{col_prefix}CER", scores(e, decode, args.asr_set), None))

    t1 = "Table 1: ROUGE-L (ST, higher is better) and CER (ASR, lower is better)"
    for name, exp, decode in (("Yi-6B", "align", "default"), ("Yi-6B-Chat", "align", "decode_chat"),
                              ("Yi-6B-LoRA", "lora", "default")):
        for n in (1, 2, 3):
            pair(t1, name, f"dataset {n} ", f"sllm_{exp}_d{n}", decode)
    t2 = "Table 2: top-k singular values of the alignment module's output (dataset 2, Yi-6B)"
    for k in (None,) + tuple(args.svd_ks):
        pair(t2, f"top-{k}" if k else "None", "", "sllm_align_d2",
             f"decode_svd{k}" if k else "default")
    t3 = "Table 3: trainable dimensions of the alignment module (dataset 2, Yi-6B)"
    pair(t3, "4096", "", "sllm_align_d2", "default")
    for d in DIMS:
        pair(t3, str(d), "", f"sllm_dims{d}_d2", "default")
    t4 = "Ours: BLEU (ST) and ROUGE-L of spoken (sqa) and text (qa) questions"
    for exp_dir in sorted(glob.glob(os.path.join(args.exp, "sllm_*_d[123]"))):
        for decode_dir in sorted(glob.glob(os.path.join(exp_dir, "decode_*"))):
            row = f"{os.path.basename(exp_dir)[5:]} {os.path.basename(decode_dir)}"
            for col, s, metric in (("ST BLEU", args.st_set, ("task", "st", "BLEU")),
                                   ("SQA ROUGE-L", args.qa_set, ("task", "sqa", "ROUGE-L")),
                                   ("QA ROUGE-L", args.qa_set, ("task", "qa", "ROUGE-L"))):
                out.append((t4, row, col, os.path.join(decode_dir, s, "scores.json"), metric))
    return out


def trainable_lines(exp: str) -> List[str]:
    """One line per experiment: the parameter counts its training log reports."""
    lines = []
    for log in sorted(glob.glob(os.path.join(exp, "sllm_*", "train.log"))):
        if ".old." in log:  # an earlier run sllm.sh moved aside
            continue
        with open(log, encoding="utf-8", errors="replace") as f:
            found = re.findall(r"SLLM: ([\d,]+) parameters, ([\d,]+) trainable", f.read())
        if found:
            lines.append(f"* {os.path.basename(os.path.dirname(log))}: {found[-1][1]} of "
                         f"{found[-1][0]} parameters trainable (before --freeze_param)")
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("Usage:")[0].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Usage:" + __doc__.split("Usage:")[1])
    parser.add_argument("--exp", default="exp", help="the experiments' folder")
    parser.add_argument("--out", default=None, help="default: <exp>/RESULTS.md")
    parser.add_argument("--asr_set", default="aishell2_test")
    parser.add_argument("--st_set", default="newstest2019")
    parser.add_argument("--qa_set", default="alpaca_test")
    parser.add_argument("--svd_ks", type=int, nargs="+", default=list(PAPER_KS))
    parser.add_argument("--title", default="Wu et al., transferable alignment module")
    args = parser.parse_args(argv)
    text, missing = render(cells(args), args.title)
    extra = trainable_lines(args.exp)
    if extra:
        text += "\n## Trainable parameters (from each train.log)\n\n" + "\n".join(extra) + "\n"
    out = args.out or os.path.join(args.exp, "RESULTS.md")
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"make_tables: {out}: {missing} cells not scored yet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
