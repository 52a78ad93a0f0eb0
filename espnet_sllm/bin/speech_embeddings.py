#!/usr/bin/env python3
"""The speech embeddings E_speech of a trained model per utterance, and their t-SNE map by
language (Ideal-LLM, Xue et al., Fig. 3).

Usage:
    python -m espnet_sllm.bin.speech_embeddings --config exp/sllm_base/config.yaml \\
        --model exp/sllm_base/valid.acc.ave.pth --data_dir dump/raw/mls_en_test \\
        [--data_dir dump/raw/mls_de_test ...] --out_dir exp/sllm_base/speech_embeddings \\
        [--max_per_lang 900] [--seed 0] [--batch_size 8] [--device cpu] [--tsne true]

Runs the encoder and the projector of the model (`espnet_sllm.analysis.embeddings`) on the
utterances of the data directories (``wav.scp`` with one audio file per utterance, as stage 2
writes them, and ``utt2lang``; at most ``--max_per_lang`` per language and directory, a seeded
sample) and writes into ``--out_dir``:
    embeddings.npy   (N, D_llm) float32: E_speech averaged over each utterance's frames
    utt2lang         the N utterances in the rows' order, with their language
    tsne.tsv         uttid, language, x, y (``--tsne true``, the default)
    tsne.png         the map, one colour per language
Errors (exit status 1, one ERROR line, no traceback): a missing file, an utterance without a
language, an id in two directories, fewer than 3 utterances for the map.
"""
import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from espnet_sllm.bin.cli import str2bool


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("Usage:")[0].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Usage:" + __doc__.split("Usage:")[1])
    parser.add_argument("--config", required=True, help="the training config.yaml")
    parser.add_argument("--model", required=True, help="the trained checkpoint (.pth)")
    parser.add_argument("--data_dir", required=True, action="append",
                        help="a data directory (wav.scp, utt2lang); repeatable")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--max_per_lang", type=int, default=900,
                        help="utterances per language and directory (the paper's 900); "
                             "0: all")
    parser.add_argument("--seed", type=int, default=0, help="of the sample and of t-SNE")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tsne", type=str2bool, default=True, help="write the t-SNE map")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s: %(message)s")
    import numpy as np

    from espnet_sllm.analysis.embeddings import plot_map, speech_embedding_means, tsne_map
    from espnet_sllm.analysis.lid import require_inputs
    from espnet_sllm.decoding.inference import load_model

    out = Path(args.out_dir)
    try:
        require_inputs(args.config, args.model, args.data_dir)
        model = load_model(args.config, args.model, args.device)[0]
        ids, langs, x = speech_embedding_means(
            model, args.data_dir, args.max_per_lang or None, args.batch_size, args.device,
            args.seed)
        xy = tsne_map(x, args.seed) if args.tsne else None
    except (OSError, ValueError, RuntimeError) as e:  # RuntimeError: checkpoint != config
        print(f"speech_embeddings: ERROR: {e}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "embeddings.npy", x.astype(np.float32))
    (out / "utt2lang").write_text("".join(f"{u} {lg}\n" for u, lg in zip(ids, langs)),
                                  encoding="utf-8")
    if xy is not None:
        (out / "tsne.tsv").write_text("uttid\tlanguage\tx\ty\n" + "".join(
            f"{u}\t{lg}\t{a:.4f}\t{b:.4f}\n" for u, lg, (a, b) in zip(ids, langs, xy)),
            encoding="utf-8")
        plot_map(xy, langs, str(out / "tsne.png"),
                 f"E_speech t-SNE: {Path(args.model).parent.name}")
    print(f"speech_embeddings: {len(ids)} utterances, {len(set(langs))} languages, "
          f"dimension {x.shape[1]} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
