"""Give the utterances of a data directory new transcripts (pseudo labels), dropping the others.

Usage:
    python -m espnet_sllm.data.relabel --in dump/raw/ilt_pool --text exp/pl/vote/text \\
        --out data/ilt_pl_feedback [--drop_empty true]

ILT (egs2/mlc_slm) labels unlabeled audio with the majority vote of several models
(`espnet_sllm.scoring.vote`): ``--text`` holds ``<uttid> <transcript>`` for the utterances that
got one. The output is the input restricted to those utterances (every Kaldi file, ``segments``,
``utt2lang`` and the other per-utterance files, per-speaker files) with ``text`` replaced. An
utterance of ``--text`` that the input lacks is an error naming it and the file; an empty
transcript (a vote with no winner) is dropped and counted (``--drop_empty false``: an error).
Input utterances without a new transcript are left out, counted in the summary line. No
utterance left is an error, or with ``--allow_empty true`` a warning and no output directory
(a vote of random debug models may leave nothing).
"""
import argparse
import logging
import shutil
import sys
from typing import List, Optional, Tuple

from espnet_sllm.data.kaldi_dir import read_data_dir, read_kv
from espnet_sllm.data.subset import write_restricted


def relabel(in_dir: str, text: str, out_dir: str, drop_empty: bool = True,
            allow_empty: bool = False) -> Tuple[int, int, int]:
    """Write the relabelled subset; returns (kept, empty transcripts dropped, input size).
    No utterance left is an error, or with ``allow_empty`` a warning and no ``out_dir`` (an
    earlier one is removed: the caller tests for ``out_dir/wav.scp``)."""
    new = read_kv(text)
    utts = read_data_dir(in_dir)
    known = {u.uttid for u in utts}
    unknown = sorted(k for k in new if k not in known)
    if unknown:
        raise ValueError(f"{text}: {len(unknown)} utterance(s) not in {in_dir}, e.g. "
                         f"{unknown[0]!r}")
    empty = sorted(k for k, v in new.items() if not v.strip())
    if empty and not drop_empty:
        raise ValueError(f"{text}: {len(empty)} empty transcript(s), e.g. {empty[0]!r}")
    keep = []
    for u in utts:
        value = new.get(u.uttid, "").strip()
        if value:
            u.text = value
            keep.append(u)
    if not keep and allow_empty:
        logging.warning(f"relabel: {text}: no utterance of {in_dir} has a non-empty transcript;"
                        f" {out_dir} is not written")
        shutil.rmtree(out_dir, ignore_errors=True)
        return 0, len(empty), len(utts)
    if not keep:
        raise ValueError(f"{text}: no utterance of {in_dir} has a non-empty transcript")
    write_restricted(out_dir, in_dir, keep, None)
    return len(keep), len(empty), len(utts)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--in", dest="in_dir", required=True, help="input data directory")
    parser.add_argument("--text", required=True, help="the new transcripts (uttid text)")
    parser.add_argument("--out", required=True, help="output data directory")
    parser.add_argument("--drop_empty", default="true", choices=["true", "false"],
                        help="drop (count) utterances whose new transcript is empty")
    parser.add_argument("--allow_empty", default="false", choices=["true", "false"],
                        help="no transcript left: a warning and no output (not an error)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        kept, empty, total = relabel(args.in_dir, args.text, args.out,
                                     args.drop_empty == "true", args.allow_empty == "true")
    except (ValueError, OSError) as e:
        print(f"ERROR: relabel: {e}", file=sys.stderr)
        return 1
    print(f"{args.out}: {kept} of {total} utterances relabelled from {args.text} ({empty} empty "
          f"transcripts dropped, {total - kept - empty} without one)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
