"""Split a training set into N parts for ESPnet's ``--multiple_iterator true`` (large corpora).

Usage:
    python -m espnet_sllm.data.splits --num_splits 8 --out_dir exp/stats/splits8 \\
        dump/raw/train/wav.scp dump/raw/train/text dump/raw/train/utt2lang \\
        exp/stats/train/speech_shape exp/stats/train/text_shape

ESPnet's map-style dataset keeps every utterance's index (and the batch sampler all batches) in
memory, and its ``--multiple_iterator true`` mode instead builds the iterator of one part at a
time: each ``--train_data_path_and_name_and_type`` / ``--train_shape_file`` path is then a folder
holding ``split.0`` .. ``split.<N-1>`` and ``num_splits`` (``espnet2.tasks.abs_task.
build_multiple_iter_factory``).  ESPnet's own ``espnet2.bin.split_scps`` writes that layout, but
needs every file to hold the same keys in the same order; our data directories do not (a
``text_tgt`` covers the translation rows only, context files may lack session ends).  Here the
FIRST file (``wav.scp``) assigns each utterance to part ``line_number % N`` (as split_scps does),
and every file's lines follow their utterance into its part; a key that the first file lacks is
an error naming the file and line.  Output: ``<out_dir>/<basename of each file>/split.<i>`` +
``num_splits``.  Basenames must differ.
"""
import argparse
import logging
import os
import sys
from typing import Dict, List, Optional, Sequence

logger = logging.getLogger(__name__)


def split_for_multiple_iterator(files: Sequence[str], num_splits: int, out_dir: str) -> List[int]:
    """Write the parts; returns the number of utterances in each part.

    files: the first one assigns the parts (every key in the others must be in it).
    """
    if num_splits < 2:
        raise ValueError(f"num_splits must be at least 2, got {num_splits}")
    names = [os.path.basename(f) for f in files]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"files with the same basename would share a folder: {dup}")
    part: Dict[str, int] = {}
    with open(files[0], encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            key = line.split(maxsplit=1)[0] if line.strip() else None
            if key is None or key in part:
                what = "an empty line" if key is None else f"key {key} again"
                raise ValueError(f"{files[0]}:{lineno}: {what}")
            part[key] = len(part) % num_splits
    if len(part) < num_splits:
        raise ValueError(f"{files[0]}: {len(part)} utterances cannot fill {num_splits} parts")
    for path, name in zip(files, names):
        folder = os.path.join(out_dir, name)
        os.makedirs(folder, exist_ok=True)
        outs = [open(os.path.join(folder, f"split.{i}"), "w", encoding="utf-8")
                for i in range(num_splits)]
        try:
            with open(path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    key = line.split(maxsplit=1)[0] if line.strip() else None
                    if key not in part:
                        raise ValueError(f"{path}:{lineno}: key {key!r} is not in {files[0]}")
                    outs[part[key]].write(line if line.endswith("\n") else line + "\n")
        finally:
            for o in outs:
                o.close()
        with open(os.path.join(folder, "num_splits"), "w", encoding="utf-8") as f:
            f.write(f"{num_splits}\n")
    sizes = [0] * num_splits
    for i in part.values():
        sizes[i] += 1
    return sizes


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Split data files into the folders of ESPnet's --multiple_iterator")
    parser.add_argument("files", nargs="+", help="the first one (wav.scp) assigns the parts")
    parser.add_argument("--num_splits", type=int, required=True)
    parser.add_argument("--out_dir", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    try:
        sizes = split_for_multiple_iterator(args.files, args.num_splits, args.out_dir)
    except (OSError, ValueError) as e:
        logger.error("%s", e)
        return 1
    logger.info("%s: %d parts of %d-%d utterances", args.out_dir, len(sizes), min(sizes),
                max(sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
