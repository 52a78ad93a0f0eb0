#!/usr/bin/env python3
"""The multi-task sets of egs2/aishell_wmt/asr1 from the readers' directories (local/data.sh).

Usage:
    local/assemble.py task --in data/wmt19_test_tts --out data/newstest2019 --task st \\
        [--tgt_lang en] [--text_only true --id_suffix -qa]
    local/assemble.py combine --out data/train_d1 data/local/d1_asr data/local/d1_st ...
    local/assemble.py table [--out data/sets.md] data/train_d1 data/valid_mt ...
    (run from egs2/aishell_wmt/asr1 with the project's Python, e.g. tools/venv/bin/python)

Field conventions.  The readers put the spoken text in ``text`` and the answer in ``text_tgt``
(WMT19: Chinese / English; Alpaca-zh: question / answer; AISHELL, WenetSpeech: the transcript
and no ``text_tgt``).  ``task`` writes the convention of the training and test sets: ``text`` =
the target (transcript, English translation, answer), ``text_src`` = the spoken text or the
question (for ``asr`` the transcript again: a set mixing tasks needs every file for every
utterance), ``utt2task``; ``text_tgt`` is left out (the target is ``text``; scoring falls back
to it), ``utt2tgtlang`` is written with ``--tgt_lang`` (scoring reads the language of a
translation from it), ``utt2dur`` is written (seconds; 0 for text-only utterances).

``--text_only true`` makes the text-only copies of a task without audio (``qa``): an empty
``wav.scp`` entry per utterance (stage 2 gives it a WAV of 0 samples), ids ``<uttid><suffix>``
(``--id_suffix``, default ``-qa``), each its own speaker when the original was.

``combine`` is ``python -m espnet_sllm.data.kaldi_dir combine`` plus the inputs' ``utt2dur``.
``table`` prints (and with ``--out`` writes) a markdown table of utterances and hours per set
and task.
"""
import argparse
import os
import sys
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

from espnet_sllm.data.kaldi_dir import (
    carry_speaker_files,
    combine_data_dirs,
    read_data_dir,
    write_data_dir,
    write_kv,
)
from espnet_sllm.data.subset import EXTRA_UTT_FILES, durations, format_seconds

TASKS = ("asr", "st", "sqa", "qa")


def make_task(in_dir: str, out_dir: str, task: str, tgt_lang: Optional[str] = None,
              text_only: bool = False, id_suffix: str = "-qa") -> int:
    """Write the task view of ``in_dir`` (see the module docstring); returns utterances."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
    utts = read_data_dir(in_dir)
    if utts[0].text is None:
        raise ValueError(f"{in_dir}: no text")
    if task != "asr" and utts[0].text_tgt is None:
        raise ValueError(f"{in_dir}: task {task} needs text_tgt (the target) and there is none")
    dur = {} if text_only else durations(in_dir, utts)
    out, out_dur = [], {}
    for u in utts:
        src = u.text
        target = u.text if task == "asr" else u.text_tgt
        if not src.strip() or not target.strip():
            raise ValueError(f"{in_dir}: utterance {u.uttid}: empty "
                             f"{'text' if not src.strip() else 'text_tgt'}")
        old = u.uttid
        if text_only:
            u.uttid = old + id_suffix
            if u.spk == old:
                u.spk = u.uttid
            u.wav, u.segment = "", None
        u.text, u.text_src, u.text_tgt, u.task = target, src, None, task
        out.append(u)
        out_dur[u.uttid] = 0.0 if text_only else dur[old]
    write_data_dir(out_dir, out)
    carry_speaker_files(out_dir, [in_dir])
    for fname in EXTRA_UTT_FILES:  # stale ones of an earlier run, the input's utt2num_samples
        path = os.path.join(out_dir, fname)
        if os.path.exists(path):
            os.remove(path)
    write_kv(os.path.join(out_dir, "utt2dur"), {u: format_seconds(d) for u, d in out_dur.items()})
    if tgt_lang:
        write_kv(os.path.join(out_dir, "utt2tgtlang"), {u.uttid: tgt_lang for u in out})
    return len(out)


def combine(out_dir: str, in_dirs: Sequence[str]) -> int:
    counts = combine_data_dirs(out_dir, in_dirs)
    dur: Dict[str, float] = {}
    for d in in_dirs:
        dur.update(durations(d))
    write_kv(os.path.join(out_dir, "utt2dur"), {u: format_seconds(s) for u, s in dur.items()})
    return counts["utterances"]


def table(dirs: Sequence[str]) -> str:
    rows = ["| set | task | utterances | hours |", "|---|---|---:|---:|"]
    for d in dirs:
        utts = read_data_dir(d)
        try:
            dur: Optional[Dict[str, float]] = durations(d, utts)
        except ValueError as e:  # an unreadable header: the table says so, the set stays
            print(f"assemble: table: {e}: its hours are not given", file=sys.stderr)
            dur = None
        per: Dict[str, List[str]] = defaultdict(list)
        for u in utts:
            per[u.task or "asr"].append(u.uttid)
        name = os.path.basename(os.path.normpath(d))

        def hours(ids: List[str]) -> str:
            return f"{sum(dur[u] for u in ids) / 3600:.3f}" if dur is not None else "?"

        for task in sorted(per, key=lambda t: TASKS.index(t) if t in TASKS else 99):
            rows.append(f"| {name} | {task} | {len(per[task])} | {hours(per[task])} |")
        if len(per) > 1:
            rows.append(f"| {name} | all | {len(utts)} | {hours([u.uttid for u in utts])} |")
    return "\n".join(rows) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("Usage:")[0],
                                     epilog="Usage:" + __doc__.split("Usage:")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("task", help="the task view of a reader's directory")
    t.add_argument("--in", dest="in_dir", required=True)
    t.add_argument("--out", dest="out_dir", required=True)
    t.add_argument("--task", required=True, choices=TASKS)
    t.add_argument("--tgt_lang", default=None, help="write utt2tgtlang with this language")
    t.add_argument("--text_only", default="false", choices=["true", "false"],
                   help="text-only copies: empty wav.scp entries, ids with --id_suffix")
    t.add_argument("--id_suffix", default="-qa")
    c = sub.add_parser("combine", help="kaldi_dir combine + utt2dur")
    c.add_argument("--out", dest="out_dir", required=True)
    c.add_argument("dirs", nargs="+")
    tb = sub.add_parser("table", help="utterances and hours per set and task")
    tb.add_argument("--out", default=None, help="also write the table to this file")
    tb.add_argument("dirs", nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "task":
            n = make_task(args.in_dir, args.out_dir, args.task, args.tgt_lang,
                          args.text_only == "true", args.id_suffix)
            print(f"assemble: {args.out_dir}: {n} {args.task} utterances from {args.in_dir}")
        elif args.cmd == "combine":
            n = combine(args.out_dir, args.dirs)
            print(f"assemble: {args.out_dir}: {n} utterances = {' + '.join(args.dirs)}")
        else:
            text = table(args.dirs)
            if args.out:
                with open(args.out, "w", encoding="utf-8") as f:
                    f.write(text)
            print(text, end="")
    except (ValueError, OSError) as e:
        print(f"assemble: ERROR: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
