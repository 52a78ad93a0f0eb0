#!/usr/bin/env python3
"""Merge the 1best files of N decoding jobs into one set, sorted by key.

Usage:
    python -m espnet_sllm.bin.merge_outputs <dir> [--nj N] [--out_dir DIR] [--key_file FILE]

    python -m espnet_sllm.bin.merge_outputs exp/sllm/decode_test/test --nj 4 \\
        --key_file dump/raw/test/wav.scp

Reads ``<dir>/output.1/1best_recog/{text,token,token_int,score}`` .. ``output.N/...`` (as written
by ``sllm_inference --output_dir <dir>/output.JOB``) and writes ``<out_dir>/{text,token,
token_int,score}`` (``out_dir`` defaults to ``<dir>``), each sorted by key.  ``text`` is required;
each other file is merged when output.1 has it and must then exist in every job.  ``failed`` (the
utterances a job could not read, ``<uttid> <reason>``; they are in ``text`` with an empty
hypothesis) is merged from the jobs that have one into ``<out_dir>/failed``, which is removed when
no job has one.  With ``sllm_inference --svd_topk``, ``svd_topk.json`` (counts summed) and
``svd_topk`` (per utterance) are merged too (`espnet_sllm.analysis.svd.merge_job_files`).

Errors, each naming the file or directory: a missing ``output.K`` (K in 1..N, where N is --nj
or else the largest K found), a key decoded by two jobs, files of one job with different keys,
and with ``--key_file`` keys of that file that no job decoded.  A job without ``text`` but with
``1best_recog/.partial.jsonl`` was interrupted: the error says so (re-running it resumes).
"""
import argparse
import glob
import os
import re
import sys
from typing import Dict, List, Optional

from espnet_sllm.data.kaldi_dir import read_kv, write_kv

FILES = ("text", "token", "token_int", "score")
FAILED = "failed"
PARTIAL = ".partial.jsonl"  # espnet_sllm.decoding.inference.PARTIAL_NAME


def find_outputs(in_dir: str, nj: Optional[int] = None) -> List[str]:
    """``<in_dir>/output.1`` .. ``output.N``, checking that none is missing."""
    found = {}
    for d in glob.glob(os.path.join(in_dir, "output.*")):
        m = re.fullmatch(r"output\.(\d+)", os.path.basename(d))
        if m and os.path.isdir(d):
            found[int(m.group(1))] = d
    if nj is None:
        if not found:
            raise ValueError(f"{in_dir}: no output.<N> directories to merge")
        nj = max(found)
    for k in range(1, nj + 1):
        if k not in found:
            raise ValueError(
                f"{os.path.join(in_dir, f'output.{k}')}: missing (expected output.1 .. "
                f"output.{nj}; did job {k} fail? see its log)"
            )
    return [found[k] for k in range(1, nj + 1)]


def merge_outputs(in_dir: str, out_dir: Optional[str] = None, nj: Optional[int] = None,
                  key_file: Optional[str] = None) -> Dict[str, int]:
    """Merge and write; returns {file name: number of keys} (``failed`` only when written)."""
    out_dir = out_dir or in_dir
    outputs = find_outputs(in_dir, nj)
    for out in outputs:
        if not os.path.isfile(os.path.join(out, "1best_recog", "text")):
            partial = os.path.join(out, "1best_recog", PARTIAL)
            why = (f" (the job was interrupted; {partial} holds what it decoded, and running it "
                   f"again decodes the rest)" if os.path.isfile(partial) else "")
            raise ValueError(f"{os.path.join(out, '1best_recog', 'text')}: missing{why}")
    names = [n for n in FILES if os.path.isfile(os.path.join(outputs[0], "1best_recog", n))]
    merged: Dict[str, Dict[str, str]] = {n: {} for n in names}
    where: Dict[str, str] = {}
    failed: Dict[str, str] = {}
    for out in outputs:
        job_keys = None
        for name in names:
            path = os.path.join(out, "1best_recog", name)
            if not os.path.isfile(path):
                raise ValueError(f"{path}: missing ({outputs[0]} has {name})")
            rows = read_kv(path)
            if job_keys is None:
                job_keys = set(rows)
            elif set(rows) != job_keys:
                diff = sorted(set(rows) ^ job_keys)
                raise ValueError(f"{path}: keys differ from the job's text (e.g. {diff[0]!r})")
            for key, value in rows.items():
                if key in merged[name]:
                    raise ValueError(
                        f"{path}: duplicate key {key!r}, also in {where[key]}"
                    )
                merged[name][key] = value
                if name == "text":
                    where[key] = path
        path = os.path.join(out, "1best_recog", FAILED)
        if os.path.isfile(path):
            rows = read_kv(path)
            unknown = sorted(set(rows) - job_keys)
            if unknown:
                raise ValueError(f"{path}: {unknown[0]!r} is not in the job's text")
            failed.update(rows)
    if key_file is not None:
        missing = sorted(set(read_kv(key_file)) - set(merged["text"]))
        if missing:
            raise ValueError(
                f"{len(missing)} keys of {key_file} were not decoded by any job "
                f"(e.g. {missing[0]!r})"
            )
    os.makedirs(out_dir, exist_ok=True)
    for name, rows in merged.items():
        write_kv(os.path.join(out_dir, name), rows)
    counts = {name: len(rows) for name, rows in merged.items()}
    failed_path = os.path.join(out_dir, FAILED)
    if failed:
        write_kv(failed_path, failed)
        counts[FAILED] = len(failed)
    elif os.path.isfile(failed_path):
        os.remove(failed_path)  # of an earlier decoding
    if os.path.isfile(os.path.join(outputs[0], "1best_recog", "svd_topk.json")) or \
            os.path.isfile(os.path.join(out_dir, "svd_topk.json")):
        from espnet_sllm.analysis.svd import merge_job_files  # (imports torch)

        svd = merge_job_files(outputs, out_dir)
        if svd is not None and "utterances" in svd:
            counts["svd_topk"] = svd["utterances"]
    return counts


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dir", help="directory holding output.1 .. output.N")
    parser.add_argument("--nj", type=int, default=None, help="number of jobs (default: found)")
    parser.add_argument("--out_dir", default=None, help="where to write (default: dir)")
    parser.add_argument("--key_file", default=None,
                        help="every key of this file must have been decoded")
    args = parser.parse_args(argv)
    try:
        counts = merge_outputs(args.dir, args.out_dir, args.nj, args.key_file)
    except (ValueError, OSError) as e:
        print(f"merge_outputs: error: {e}", file=sys.stderr)
        return 1
    print(f"merge_outputs: {args.out_dir or args.dir}: "
          + ", ".join(f"{n} ({c} keys)" for n, c in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
