"""Language balancing of a multilingual training set (multinomial sampling with a temperature).

As in XLSR (Conneau et al. 2020, after Lample & Conneau 2019) and Ideal-LLM's "data balancing
across languages": with ``n_l`` utterances of language ``l`` and ``N = sum n_l``, language
``l`` gets the share

    q_l = p_l^alpha / sum_k p_k^alpha,      p_l = n_l / N,      0 < alpha <= 1

of a resampled set of the same size ``N`` (or ``total``): ``alpha = 1`` keeps the natural
distribution, smaller values flatten it (low-resource languages up, high-resource ones down;
XLSR used 0.5).  Language ``l`` gets ``target_l = round(total * q_l)`` utterances (halves round
up), so the size of the result may differ from ``total`` by a few utterances:

* ``target_l <= n_l``: a subset of ``target_l`` utterances drawn without replacement;
* ``target_l > n_l``: every utterance once, then copies in rounds: round ``k`` (k = 1, 2, ...)
  draws ``min(n_l, still missing)`` distinct utterances, each copy named ``<uttid>-rep<k>``
  (still prefixed by its speaker id, the Kaldi rule) and pointing to the same audio (and
  segment), so no audio is duplicated and an utterance is never copied twice in one round.

The draws are deterministic for a given ``seed``: each language has its own generator seeded
with ``<seed>:<language>`` over its utterances sorted by id, so adding a language to the set
does not change the others' draws.  The language of an utterance is its ``utt2lang`` label.

Usage:
    python -m espnet_sllm.data.balance --in data/train --out data/train_bal --alpha 0.5 \\
        [--total N] [--seed 0]

    from espnet_sllm.data.balance import balance_by_language
    utts, report = balance_by_language(read_data_dir("data/train"), alpha=0.5, seed=0)
    # report["de"] == {"original": 1000, "target": 1450, "share": 0.29}
"""
import argparse
import dataclasses
import logging
import math
import os
import random
import sys
from collections import Counter
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from espnet_sllm.data.kaldi_dir import (
    Utterance,
    carry_speaker_files,
    read_data_dir,
    write_data_dir,
)

logger = logging.getLogger(__name__)


def language_shares(counts: Mapping[str, int], alpha: float) -> Dict[str, float]:
    """``q_l = p_l^alpha / sum_k p_k^alpha`` for utterance counts ``n_l`` (see the docstring)."""
    if not (0.0 < alpha <= 1.0):
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    bad = {lang: n for lang, n in counts.items() if n <= 0}
    if bad or not counts:
        raise ValueError(f"every language needs at least one utterance, got {dict(counts)}")
    total = sum(counts.values())
    weights = {lang: (n / total) ** alpha for lang, n in counts.items()}
    norm = sum(weights.values())
    return {lang: w / norm for lang, w in weights.items()}


def balance_by_language(
    utts: Sequence[Utterance], alpha: float, total: Optional[int] = None, seed: int = 0
) -> Tuple[List[Utterance], Dict[str, Dict[str, float]]]:
    """Resample ``utts`` so that the languages follow ``q_l`` (module docstring).

    Args:
        utts: utterances, each with ``lang`` set.
        alpha: temperature exponent in (0, 1]; 1 with ``total=None`` returns the same set.
        total: size of the result (before rounding); None = ``len(utts)``.
        seed: seed of the draws.

    Returns:
        (utterances sorted by id, report ``{lang: {"original": n_l, "target": target_l,
        "share": q_l}}``).
    """
    if total is not None and total <= 0:
        raise ValueError(f"total must be a positive number of utterances, got {total}")
    by_lang: Dict[str, List[Utterance]] = {}
    for u in utts:
        if u.lang is None:
            raise ValueError(f"utterance {u.uttid!r} has no language (utt2lang): cannot "
                             f"balance languages")
        by_lang.setdefault(u.lang, []).append(u)
    counts = {lang: len(us) for lang, us in by_lang.items()}
    shares = language_shares(counts, alpha)
    size = len(utts) if total is None else total

    out: List[Utterance] = []
    report: Dict[str, Dict[str, float]] = {}
    for lang in sorted(by_lang):
        pool = sorted(by_lang[lang], key=lambda u: u.uttid)
        n = len(pool)
        if alpha == 1.0 and total is None:
            target = n  # the formula gives n; no floating-point detour
        else:
            target = math.floor(size * shares[lang] + 0.5)
        report[lang] = {"original": n, "target": target, "share": shares[lang]}
        if target == 0:
            logger.warning("language %s gets no utterance (share %.2e of %d)", lang,
                           shares[lang], size)
        rng = random.Random(f"{seed}:{lang}")
        if target <= n:
            out.extend(pool if target == n else rng.sample(pool, target))
            continue
        out.extend(pool)
        missing, k = target - n, 0
        while missing > 0:
            k += 1
            m = min(n, missing)
            out.extend(dataclasses.replace(u, uttid=f"{u.uttid}-rep{k}")
                       for u in rng.sample(pool, m))
            missing -= m
    ids = Counter(u.uttid for u in out)
    clash = [i for i, c in ids.items() if c > 1]
    if clash:
        raise ValueError(f"a copy's id is already an utterance id of the input: {clash[0]!r}")
    out.sort(key=lambda u: u.uttid)
    return out, report


def format_report(report: Mapping[str, Mapping[str, float]]) -> str:
    """The per-language table printed by the command line."""
    n_all = sum(r["original"] for r in report.values())
    t_all = sum(r["target"] for r in report.values())
    # p_l: the language's share of the input, q_l: its share in the result (the formula).
    lines = [f"{'language':<10} {'original':>10} {'p_l':>7} {'target':>10} {'q_l':>7} "
             f"{'change':>10}"]
    for lang, r in sorted(report.items()):
        n, t = int(r["original"]), int(r["target"])
        lines.append(f"{lang:<10} {n:>10} {n / n_all:>7.4f} {t:>10} {r['share']:>7.4f} "
                     f"{t - n:>+10}")
    lines.append(f"{'total':<10} {n_all:>10} {1:>7.4f} {t_all:>10} {1:>7.4f} "
                 f"{t_all - n_all:>+10}")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Resample a data directory so that its languages (utt2lang) follow "
                    "q_l ~ (n_l/N)^alpha.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Usage:")[1],
    )
    parser.add_argument("--in", dest="in_dir", required=True, help="input data directory")
    parser.add_argument("--out", required=True, help="output data directory")
    parser.add_argument("--alpha", type=float, required=True,
                        help="exponent in (0, 1]: 1 = natural distribution, 0.5 as in XLSR")
    parser.add_argument("--total", type=int, default=None,
                        help="size of the result (default: the size of the input)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    try:
        if os.path.realpath(args.in_dir) == os.path.realpath(args.out):
            raise ValueError(f"--out {args.out} is the input directory")
        if not os.path.isfile(os.path.join(args.in_dir, "utt2lang")):
            raise ValueError(f"{args.in_dir}: no utt2lang: the languages are unknown")
        utts, report = balance_by_language(read_data_dir(args.in_dir), args.alpha,
                                           args.total, args.seed)
        write_data_dir(args.out, utts)
        carry_speaker_files(args.out, [args.in_dir])  # spk2gender of the kept speakers
    except (ValueError, OSError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    print(f"{args.out}: {len(utts)} utterances from {args.in_dir} (alpha={args.alpha}, "
          f"seed={args.seed})")
    print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
