"""The 2x context training set of systems S2/S3 of Peng et al. (MLC-SLM 2025).

The paper trains its context-aware systems on "the single-segment set + a contextual copy of it":
every utterance appears twice, once with its neighbours' text in the prompt and once without, so
that one model serves both decoding passes (stage 7 without context, stage 8 with it).  Given a
data directory that has ``text_prev`` / ``text_next`` (Kaldi ``data/<set>`` or a formatted
``dump/raw/<set>``), this writes a directory holding, for every utterance ``<utt>``:

    <utt>          the utterance with its context (text_prev / text_next as in the input)
    <utt>-noctx    the same audio, segment, text, language and speaker, with EMPTY context
                   (the prompt of an utterance without context is the plain S1 instruction)

Ids stay prefixed by their speaker id (a suffix does not change the prefix), so the Kaldi rule
"utt2spk and spk2utt sort alike" still holds; every file is written sorted (C locale), and the
result is checked with ``validate_data_dir``.  ``wav.scp``: with ``segments`` both copies point to
the same recording; without (a formatted dump dir), the copy gets its own ``wav.scp`` line to the
same file, so no audio is duplicated.  Per-utterance files of ``format_data`` (``utt2num_samples``,
``utt2dur``) are duplicated too; other files (reports, ``data/``) are not carried over (logged).

Files whose content did not change are left untouched (``write_kv`` does not rewrite them), so
re-running the recipe does not make the staged driver's size+mtime stamps see new inputs.

Usage:
    python -m espnet_sllm.data.context_copy --in dump/raw/train --out dump/raw/train_ctx2x \\
        [--suffix -noctx]

    from espnet_sllm.data.context_copy import make_context_copy
    counts = make_context_copy("data/train", "data/train_ctx2x")
"""
import argparse
import dataclasses
import logging
import os
import sys
from typing import Dict, List, Optional

from espnet_sllm.data.kaldi_dir import (
    OPTIONAL_FILES,
    PathLike,
    read_data_dir,
    read_kv,
    validate_data_dir,
    write_data_dir,
    write_kv,
)

logger = logging.getLogger(__name__)

NOCTX_SUFFIX = "-noctx"
CONTEXT_FIELDS = ("text_prev", "text_next")
#: per-utterance files written by espnet_sllm.bin.format_data that the copy duplicates
PER_UTTERANCE_EXTRA = ("utt2num_samples", "utt2dur")
_KALDI = ("wav.scp", "segments", "utt2spk", "spk2utt")


def make_context_copy(
    in_dir: PathLike, out_dir: PathLike, suffix: str = NOCTX_SUFFIX
) -> Dict[str, int]:
    """Write ``out_dir`` = every utterance of ``in_dir`` with its context + a context-free copy.

    Returns ``validate_data_dir``'s counts of ``out_dir``.  Raises ValueError when ``in_dir``
    has no ``text_prev``/``text_next``, when an id already ends with ``suffix`` (a copy of a
    copy), or when ``out_dir`` is ``in_dir``.
    """
    in_dir, out_dir = os.fspath(in_dir), os.fspath(out_dir)
    if not suffix or any(c.isspace() for c in suffix):
        raise ValueError(f"context copy: bad suffix {suffix!r} (non-empty, no whitespace)")
    if os.path.realpath(in_dir) == os.path.realpath(out_dir):
        raise ValueError(f"context copy: the output {out_dir} is the input")
    if not os.path.isdir(in_dir):
        raise ValueError(f"context copy: input directory {in_dir} does not exist")
    if not any(os.path.isfile(os.path.join(in_dir, f)) for f in CONTEXT_FIELDS):
        raise ValueError(
            f"context copy: {in_dir} has neither text_prev nor text_next: the copy would be the "
            f"same utterances twice (make the set with the MLC-SLM reader, which writes them)"
        )
    utts = read_data_dir(in_dir)
    already = [u.uttid for u in utts if u.uttid.endswith(suffix)]
    if already:
        raise ValueError(
            f"context copy: {in_dir} already has ids ending with {suffix!r} (e.g. "
            f"{already[0]!r}): it looks like a context copy itself"
        )
    out = []
    for u in utts:
        out.append(u)
        empty = {n: "" for n in CONTEXT_FIELDS if getattr(u, n) is not None}
        out.append(dataclasses.replace(u, uttid=u.uttid + suffix, **empty))

    extra: Dict[str, Dict[str, str]] = {}
    for fname in PER_UTTERANCE_EXTRA:
        path = os.path.join(in_dir, fname)
        if os.path.isfile(path):
            values = read_kv(path)
            missing = sorted({u.uttid for u in utts} - set(values))
            if missing or len(values) != len(utts):
                raise ValueError(f"{path}: keys differ from utt2spk (e.g. {missing[:1]})")
            extra[fname] = {**values, **{k + suffix: v for k, v in values.items()}}
    known = {*_KALDI, *OPTIONAL_FILES.values(), *PER_UTTERANCE_EXTRA}
    other = sorted(f for f in os.listdir(in_dir) if f not in known)
    if other:
        logger.info("context copy: %s: not carried over: %s", in_dir, " ".join(other))

    # write_kv leaves files whose content does not change untouched (see the module docstring).
    write_data_dir(out_dir, out)
    for fname in PER_UTTERANCE_EXTRA:
        path = os.path.join(out_dir, fname)
        if fname in extra:
            write_kv(path, extra[fname])
        elif os.path.isfile(path):  # stale, from a copy of an earlier input
            os.remove(path)
    counts = validate_data_dir(out_dir)
    for fname in extra:
        if set(read_kv(os.path.join(out_dir, fname))) != set(read_kv(os.path.join(out_dir, "utt2spk"))):
            raise ValueError(f"{out_dir}/{fname}: keys differ from utt2spk")
    logger.info("context copy: %s (%d utterances) -> %s (%d utterances: with context + '%s')",
                in_dir, len(utts), out_dir, counts["utterances"], suffix)
    return counts


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("Usage:")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Usage:" + __doc__.split("Usage:")[1],
    )
    parser.add_argument("--in", dest="in_dir", required=True,
                        help="data directory with text_prev/text_next")
    parser.add_argument("--out", required=True, help="output data directory (2x utterances)")
    parser.add_argument("--suffix", default=NOCTX_SUFFIX,
                        help="appended to the ids of the context-free copies")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        counts = make_context_copy(args.in_dir, args.out, args.suffix)
    except (ValueError, OSError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    print(f"{args.out}: {counts['utterances']} utterances (each of {args.in_dir} with and "
          f"without context), {counts['speakers']} speakers, {counts['recordings']} recordings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
