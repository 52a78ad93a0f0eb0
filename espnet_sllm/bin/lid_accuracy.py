#!/usr/bin/env python3
"""Language-identification accuracy per language of a model with a LID adapter (Ideal-LLM).

Usage:
    python -m espnet_sllm.bin.lid_accuracy --config exp/sllm_base/config.yaml \\
        --model exp/sllm_base/valid.acc.ave.pth --data_dir dump/raw/mls_en_test \\
        [--data_dir dump/raw/mls_de_test ...] --out exp/sllm_base/lid_accuracy.tsv \\
        [--batch_size 8] [--device cpu]

Runs the model's encoder on every utterance of the data directories (``wav.scp`` with one audio
file per utterance, as stage 2 writes them, and ``utt2lang``), takes the LID adapter's argmax
(the language decoding uses) and writes ``--out``: a TSV ``language utterances correct
accuracy`` (one row per reference language, then ``all``), printed too; the per-utterance
predictions go next to it (``<out stem>.utt2lang_hyp``).  egs2/mls/asr1's stage 9 runs it for
the systems with a language selector.  Errors (exit status 1, no traceback): a model without a
LID adapter, a missing file, an utterance without a language or with one outside the model's
``languages``.
"""
import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("Usage:")[0].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Usage:" + __doc__.split("Usage:")[1])
    parser.add_argument("--config", required=True, help="the training config.yaml")
    parser.add_argument("--model", required=True, help="the trained checkpoint (.pth)")
    parser.add_argument("--data_dir", required=True, action="append",
                        help="a data directory (wav.scp, utt2lang); repeatable")
    parser.add_argument("--out", required=True, help="the TSV to write")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s: %(message)s")
    from espnet_sllm.analysis.lid import accuracy_table, predict_languages, require_inputs
    from espnet_sllm.decoding.inference import load_model

    try:
        require_inputs(args.config, args.model, args.data_dir)
        model = load_model(args.config, args.model, args.device)[0]
        rows = []
        for d in args.data_dir:
            rows += predict_languages(model, d, args.batch_size, args.device)
    except (OSError, ValueError, RuntimeError) as e:  # RuntimeError: checkpoint != config
        print(f"lid_accuracy: ERROR: {e}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = ["language\tutterances\tcorrect\taccuracy"] + [
        f"{lang}\t{n}\t{c}\t{acc:.2f}" for lang, n, c, acc in accuracy_table(rows)]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out.with_suffix(".utt2lang_hyp").write_text(
        "".join(f"{u} {p}\n" for u, _, p in sorted(rows)), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
