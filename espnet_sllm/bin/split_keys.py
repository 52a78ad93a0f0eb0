#!/usr/bin/env python3
"""Split the keys of a Kaldi-style file into N contiguous, balanced parts (for N jobs).

Usage:
    python -m espnet_sllm.bin.split_keys <scp or kaldi file> <out_dir> N

    python -m espnet_sllm.bin.split_keys dump/raw/test/wav.scp exp/decode/split 4
    python -m espnet_sllm.bin.launch JOB=1:4 exp/decode/log/decode.JOB.log \\
        python -m espnet_sllm.bin.sllm_inference --key_file exp/decode/split/keys.JOB.scp ...

Writes ``<out_dir>/keys.1.scp`` .. ``keys.N.scp``: the lines of the input in their order, cut
into N contiguous parts whose sizes differ by at most one, so that every key is in exactly one
part.  ESPnet's ``--key_file`` reads the first column.  Parts ``keys.M.scp`` with M > N left by an
earlier, larger split are removed.  N larger than the number of keys is an error (lower nj).
"""
import argparse
import glob
import os
import re
import sys
from typing import Dict, List, Optional

from espnet_sllm.data.kaldi_dir import read_kv


def split_sizes(n_items: int, n_parts: int) -> List[int]:
    """Sizes of ``n_parts`` contiguous parts of ``n_items``; the first ones get the remainder."""
    base, extra = divmod(n_items, n_parts)
    return [base + (1 if i < extra else 0) for i in range(n_parts)]


def split_keys(path: str, out_dir: str, n_parts: int) -> List[str]:
    """Write the parts and return their paths."""
    if n_parts < 1:
        raise ValueError(f"number of parts must be >= 1, got {n_parts}")
    items: Dict[str, str] = read_kv(path)  # also rejects duplicate keys and keyless lines
    if not items:
        raise ValueError(f"{path}: no keys to split")
    if n_parts > len(items):
        raise ValueError(
            f"{path}: cannot split {len(items)} keys into {n_parts} jobs; lower nj to at most "
            f"{len(items)}"
        )
    os.makedirs(out_dir, exist_ok=True)
    keys = list(items)
    paths, start = [], 0
    for i, size in enumerate(split_sizes(len(keys), n_parts), 1):
        part = os.path.join(out_dir, f"keys.{i}.scp")
        tmp = part + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for k in keys[start:start + size]:
                f.write(f"{k} {items[k]}\n" if items[k] else f"{k}\n")
        os.replace(tmp, part)
        paths.append(part)
        start += size
    for old in glob.glob(os.path.join(out_dir, "keys.*.scp")):
        m = re.fullmatch(r"keys\.(\d+)\.scp", os.path.basename(old))
        if m and int(m.group(1)) > n_parts:
            os.remove(old)
    return paths


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scp", help="Kaldi-style 'key value' file, e.g. wav.scp")
    parser.add_argument("out_dir", help="directory for keys.1.scp .. keys.N.scp")
    parser.add_argument("n", type=int, help="number of parts (jobs)")
    args = parser.parse_args(argv)
    try:
        paths = split_keys(args.scp, args.out_dir, args.n)
    except (ValueError, OSError) as e:
        print(f"split_keys: error: {e}", file=sys.stderr)
        return 1
    print(f"split_keys: {args.scp} -> {len(paths)} parts in {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
