"""The Feed-Back mix of ILT (egs2/mlc_slm): whole data directories plus a seeded random
selection from other corpora, up to a total number of hours.

Usage:
    python -m espnet_sllm.data.sample_hours --keep data/train --keep data/thai_vi \\
        --pool data/mls --pool data/cv --hours 40000 --seed 0 --out data/feedback_mix \\
        [--per_corpus_hours mls=20000 cv=5000] [--prefix_ids true] [--drop text_prev text_next]

Inputs: Kaldi data directories, each named by its base name (``data/mls`` is ``mls``) or by
``NAME=DIR`` (``--pool mls=data/mls/train``); names must differ.  ``--keep`` directories (the
MLC-SLM training set, all Thai and Vietnamese data, ...) are taken whole.  ``--pool``
directories (one per third-party corpus: Multilingual LibriSpeech, Common Voice, GigaSpeech 2,
YODAS2, ...) are sampled.  Durations are read as ``espnet_sllm.data.subset`` reads them
(``utt2dur``, else ``segments``, else the audio headers; write ``utt2dur`` first for large
corpora of compressed audio).

Allocation rule: the budget left after the keep directories, ``--hours`` minus their hours, is
filled from ONE pooled seeded order of every pool utterance (``subset.seeded_order``:
``sha256("<seed>:<uttid>")``): the shortest prefix of that order reaching the hours left
(``subset.hours_prefix``).  Each corpus therefore contributes in proportion to its hours, in
expectation, and no corpus is favoured by the order of the options.  ``--per_corpus_hours
NAME=H`` caps a pool corpus: only the shortest prefix of ITS utterances (in the same order)
reaching H hours may be taken, and its other utterances are passed over.  As with ``subset``,
the position of an utterance depends on its id and the seed only, so for one seed and one set
of inputs the mix of a smaller budget is a subset of the mix of a larger one.

Without ``--pool``, ``--hours`` may be left out: the keep directories are combined whole (with
``--prefix_ids``, the hours report and ``utt2dur``), as ILT's Fix set is.

Errors (``ERROR: ...`` and exit 1 on the command line): a budget smaller than the hours of the
keep directories (the message gives both), an utterance id in two inputs (naming both
directories; ``--prefix_ids true`` makes every id ``<name>-<id>``, speakers and recordings
too, which keeps ids apart), text-only utterances in a pool (they have no hours to count), a
cap for a name that is not a pool, a name or directory given twice, an output that is an
input, and what ``kaldi_dir.combine_data_dirs`` refuses (``text_prev`` in some inputs only:
drop it with ``--drop``).

A pool too small for the budget (after the caps) is NOT an error: every eligible pool
utterance is taken, and a warning and the summary say how many hours are missing.  A cap
larger than its corpus takes the whole corpus (logged).

Output ``--out``: the combined data directory (``kaldi_dir.combine_data_dirs`` of the parts:
optional files kept when every input has them, ``utt2task`` filled with ``asr``, per-speaker
files merged; when some inputs have ``segments`` and others not, the latter's utterances get a
segment over their whole recording, of their known duration), its ``utt2dur``, the inputs'
``utt2tgtlang`` / ``utt2num_samples`` when every contributing input has them, and
``hours.tsv``, also printed::

    kind      name              role  utterances  hours     available_hours
    corpus    train             keep  ...
    corpus    mls               pool  ...
    language  English-American  -     ...
    total     all               -     ...

(language = the ``utt2lang`` label, ``unknown`` where an input has none; available = what the
inputs hold.)

    from espnet_sllm.data.sample_hours import sample_hours
    result = sample_hours("data/feedback_mix", keep=["data/train"], pool=["data/mls"],
                          hours=100.0, seed=0)   # result.rows: the hours.tsv rows
"""
import argparse
import dataclasses
import logging
import os
import sys
import tempfile
from collections import Counter, defaultdict
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from espnet_sllm.data.corpora.reader_utils import str2bool
from espnet_sllm.data.kaldi_dir import (
    SPEAKER_FILES,
    Segment,
    Utterance,
    combine_data_dirs,
    read_data_dir,
    read_kv,
    write_data_dir,
    write_kv,
)
from espnet_sllm.data.subset import (
    EXTRA_UTT_FILES,
    durations,
    format_seconds,
    hours_prefix,
    seeded_order,
    text_only_ids,
)

logger = logging.getLogger(__name__)

REPORT_NAME = "hours.tsv"
REPORT_HEADER = ("kind", "name", "role", "utterances", "hours", "available_hours")
# Relative slack of the budget check against the keep directories' hours (an hour figure
# rounded on its way through a shell).
_SLACK = 1e-9


@dataclasses.dataclass
class Corpus:
    """One input: its name, directory, role (``keep`` or ``pool``), utterances (ids already
    prefixed with ``--prefix_ids``) and their durations (seconds, by id)."""

    name: str
    data_dir: str
    role: str
    utts: List[Utterance]
    dur: Dict[str, float]
    rename: Dict[str, str]  # original id -> id in the mix (utterances and speakers)

    @property
    def seconds(self) -> float:
        return sum(self.dur.values())


@dataclasses.dataclass
class MixResult:
    """What `sample_hours` wrote: ``rows`` of ``hours.tsv``, the chosen pool utterance ids,
    the hours asked, and the hours the pool fell short by (0 when the budget was reached)."""

    rows: List[Tuple[str, ...]]
    chosen: List[str]
    hours: float
    short_hours: float
    capped: Dict[str, int]  # pool corpus -> utterances passed over for its cap


def parse_named_dir(spec: str) -> Tuple[str, str]:
    """``NAME=DIR`` -> (NAME, DIR); ``DIR`` -> (base name of DIR, DIR)."""
    name, eq, path = spec.partition("=")
    if eq and name and "/" not in name and path:
        return name, path
    path = spec
    name = os.path.basename(os.path.normpath(path))
    if not name or name in (".", ".."):
        raise ValueError(f"cannot name the input {spec!r}: give NAME=DIR")
    return name, path


def parse_caps(specs: Sequence[str]) -> Dict[str, float]:
    """``["mls=20000", ...]`` -> ``{"mls": 20000.0}``; errors name the bad item."""
    caps: Dict[str, float] = {}
    for spec in specs:
        name, eq, value = spec.partition("=")
        try:
            hours = float(value)
        except ValueError:
            hours = float("nan")
        if not eq or not name or not hours > 0 or hours == float("inf"):
            raise ValueError(f"--per_corpus_hours {spec!r}: expected NAME=HOURS with "
                             f"HOURS > 0, e.g. mls=20000")
        if name in caps:
            raise ValueError(f"--per_corpus_hours: {name!r} is given twice")
        caps[name] = hours
    return caps


def _prefixed(u: Utterance, name: str) -> Utterance:
    seg = u.segment
    if seg is not None:
        seg = Segment(f"{name}-{seg.recid}", seg.start, seg.end)
    return dataclasses.replace(u, uttid=f"{name}-{u.uttid}", spk=f"{name}-{u.speaker}",
                               segment=seg)


def read_corpus(name: str, data_dir: str, role: str, prefix_ids: bool) -> Corpus:
    """Read one input (see the module docstring); pools may not hold text-only utterances."""
    if not os.path.isdir(data_dir):
        raise ValueError(f"--{role} {data_dir}: no such directory")
    utts = read_data_dir(data_dir)
    if role == "pool":
        text_only = text_only_ids(utts)
        if text_only:
            raise ValueError(f"{data_dir}: {len(text_only)} text-only utterance(s) (e.g. "
                             f"{text_only[0]!r}) have no hours to sample; leave them out of "
                             f"the pool")
    dur = durations(data_dir, utts)
    rename = {u.uttid: u.uttid for u in utts}
    if prefix_ids:
        rename = {u.uttid: f"{name}-{u.uttid}" for u in utts}
        rename.update({u.speaker: f"{name}-{u.speaker}" for u in utts})
        dur = {rename[k]: v for k, v in dur.items()}
        utts = [_prefixed(u, name) for u in utts]
    return Corpus(name, data_dir, role, utts, dur, rename)


def _write_part(part_dir: str, corpus: Corpus, utts: List[Utterance]) -> None:
    """A data directory of the chosen ``utts`` of ``corpus`` with its per-speaker files (keys
    renamed as the utterances were)."""
    write_data_dir(part_dir, utts)
    speakers = {u.speaker for u in utts}
    for fname in SPEAKER_FILES:
        src = os.path.join(corpus.data_dir, fname)
        if os.path.isfile(src):
            table = {corpus.rename.get(k, k): v for k, v in read_kv(src).items()}
            write_kv(os.path.join(part_dir, fname),
                     {k: v for k, v in table.items() if k in speakers})


def _pool_choice(pools: Sequence[Corpus], caps: Mapping[str, float], seed: int,
                 need_hours: float) -> Tuple[List[str], float, Dict[str, int]]:
    """(chosen ids in the seeded order, hours missing, utterances passed over per cap)."""
    corpus_of = {u.uttid: c.name for c in pools for u in c.utts}
    dur = {k: v for c in pools for k, v in c.dur.items()}
    order = seeded_order(corpus_of, seed)
    eligible = set(order)
    capped: Dict[str, int] = {}
    for c in pools:
        if c.name not in caps:
            continue
        own = [u for u in order if corpus_of[u] == c.name]
        try:
            allowed = hours_prefix(own, dur, caps[c.name])
        except ValueError:
            logger.info("sample_hours: %s: the cap of %g h is above its %.4f h: no cap", c.name,
                        caps[c.name], c.seconds / 3600)
            continue
        passed = set(own) - set(allowed)
        capped[c.name] = len(passed)
        eligible -= passed
    candidates = [u for u in order if u in eligible]
    if need_hours <= 0:
        return [], 0.0, capped
    if not candidates:
        logger.warning("sample_hours: no pool utterance to fill the %.4f h left", need_hours)
        return [], need_hours, capped
    try:
        return hours_prefix(candidates, dur, need_hours), 0.0, capped
    except ValueError:
        got = sum(dur[u] for u in candidates) / 3600
        short = need_hours - got
        logger.warning("sample_hours: the pools hold only %.4f h (after caps) of the %.4f h "
                       "left: taking all %d of their utterances, %.4f h short", got,
                       need_hours, len(candidates), short)
        return candidates, short, capped


def _carry_extra_files(out_dir: str, used: Sequence[Tuple[Corpus, List[Utterance]]]) -> None:
    """``utt2dur`` of every utterance, and `EXTRA_UTT_FILES` that every used input has."""
    write_kv(os.path.join(out_dir, "utt2dur"),
             {u.uttid: format_seconds(c.dur[u.uttid]) for c, utts in used for u in utts})
    for fname in EXTRA_UTT_FILES:
        if fname == "utt2dur":
            continue
        dst = os.path.join(out_dir, fname)
        have = [c for c, _ in used if os.path.isfile(os.path.join(c.data_dir, fname))]
        if len(have) != len(used):
            if have:
                logger.warning("sample_hours: %s is in %s only: the mix has no %s", fname,
                               " ".join(c.data_dir for c in have), fname)
            if os.path.exists(dst):
                os.remove(dst)
            continue
        merged: Dict[str, str] = {}
        for c, utts in used:
            table = read_kv(os.path.join(c.data_dir, fname))
            back = {v: k for k, v in c.rename.items()}
            for u in utts:
                key = back[u.uttid]
                if key not in table:
                    raise ValueError(f"{c.data_dir}/{fname}: no entry for {key!r}")
                merged[u.uttid] = table[key]
        write_kv(dst, merged)


def _rows(corpora: Sequence[Corpus], chosen: set) -> List[Tuple[str, ...]]:
    def fmt(seconds: float) -> str:
        return f"{seconds / 3600:.4f}"

    rows = []
    lang_n: Counter = Counter()
    lang_s: Dict[str, float] = defaultdict(float)
    lang_avail: Dict[str, float] = defaultdict(float)
    total_n, total_s, avail_s = 0, 0.0, 0.0
    for c in corpora:
        n, s = 0, 0.0
        for u in c.utts:
            lang = u.lang or "unknown"
            lang_avail[lang] += c.dur[u.uttid]
            if u.uttid in chosen:
                n += 1
                s += c.dur[u.uttid]
                lang_n[lang] += 1
                lang_s[lang] += c.dur[u.uttid]
        rows.append(("corpus", c.name, c.role, str(n), fmt(s), fmt(c.seconds)))
        total_n, total_s, avail_s = total_n + n, total_s + s, avail_s + c.seconds
    for lang in sorted(lang_avail):
        rows.append(("language", lang, "-", str(lang_n[lang]), fmt(lang_s[lang]),
                     fmt(lang_avail[lang])))
    rows.append(("total", "all", "-", str(total_n), fmt(total_s), fmt(avail_s)))
    return rows


def format_rows(rows: Sequence[Sequence[str]]) -> str:
    """``hours.tsv``'s text: the header and the rows, TAB-separated."""
    return "".join("\t".join(r) + "\n" for r in [REPORT_HEADER, *rows])


def sample_hours(out_dir: str, keep: Sequence[str] = (), pool: Sequence[str] = (),
                 hours: Optional[float] = None, seed: int = 0,
                 per_corpus_hours: Optional[Mapping[str, float]] = None,
                 prefix_ids: bool = False, drop: Sequence[str] = ()) -> MixResult:
    """Write the mix to ``out_dir`` (see the module docstring).

    Args:
        out_dir: the output data directory (``hours.tsv`` and ``utt2dur`` included).
        keep: directories (``DIR`` or ``NAME=DIR``) taken whole.
        pool: directories (``DIR`` or ``NAME=DIR``) sampled in one pooled seeded order.
        hours: the total budget, keep directories included (> 0); None (only without
            ``pool``): the keep directories combined, whatever their hours (ILT's Fix set).
        seed: the seed of the order.
        per_corpus_hours: ``{pool name: cap in hours}``.
        prefix_ids: make every id ``<name>-<id>`` (utterances, speakers, recordings).
        drop: optional files left out of every input (``combine_data_dirs``'s ``drop``).
    """
    if hours is None and pool:
        raise ValueError("--hours is required with --pool directories (it is the budget)")
    if hours is not None and not hours > 0:
        raise ValueError(f"--hours must be > 0, got {hours}")
    if not keep and not pool:
        raise ValueError("give at least one --keep or --pool directory")
    caps = dict(per_corpus_hours or {})
    specs = [(*parse_named_dir(s), "keep") for s in keep] + \
            [(*parse_named_dir(s), "pool") for s in pool]
    seen_name: Dict[str, str] = {}
    seen_dir: Dict[str, str] = {}
    real_out = os.path.realpath(out_dir)
    for name, path, _ in specs:
        if name in seen_name:
            raise ValueError(f"two inputs are named {name!r}: {seen_name[name]} and {path} "
                             f"(name one with NAME=DIR)")
        real = os.path.realpath(path)
        if real in seen_dir:
            raise ValueError(f"the directory {path} is given twice ({seen_dir[real]})")
        if real == real_out:
            raise ValueError(f"--out {out_dir} is also an input")
        seen_name[name], seen_dir[real] = path, path
    pool_names = {name for name, _, role in specs if role == "pool"}
    bad = sorted(set(caps) - pool_names)
    if bad:
        raise ValueError(f"--per_corpus_hours: {', '.join(bad)} is not a --pool name (pool "
                         f"names: {', '.join(sorted(pool_names)) or 'none'})")

    corpora = [read_corpus(name, path, role, prefix_ids) for name, path, role in specs]
    origin: Dict[str, str] = {}
    for c in corpora:
        for u in c.utts:
            if u.uttid in origin:
                raise ValueError(f"utterance id {u.uttid!r} is in both {origin[u.uttid]} and "
                                 f"{c.data_dir} (--prefix_ids true prefixes every id with its "
                                 f"corpus name)")
            origin[u.uttid] = c.data_dir
    keeps = [c for c in corpora if c.role == "keep"]
    pools = [c for c in corpora if c.role == "pool"]
    keep_hours = sum(c.seconds for c in keeps) / 3600
    if hours is None:
        hours = keep_hours
    if keep_hours > hours * (1 + _SLACK):
        raise ValueError(
            f"the budget --hours {hours:g} is smaller than the {keep_hours:.4f} h of the --keep "
            f"directories ({', '.join(f'{c.name} {c.seconds / 3600:.4f} h' for c in keeps)}), "
            f"which are taken whole")
    chosen, short, capped = _pool_choice(pools, caps, seed, hours - keep_hours)
    chosen_set = set(chosen)

    used: List[Tuple[Corpus, List[Utterance]]] = []
    for c in corpora:
        utts = c.utts if c.role == "keep" else [u for u in c.utts if u.uttid in chosen_set]
        if utts:
            used.append((c, utts))
    segmented = any(utts[0].segment is not None for _, utts in used)
    os.makedirs(os.path.dirname(os.path.abspath(out_dir)), exist_ok=True)
    with tempfile.TemporaryDirectory(
            prefix=".sample_hours.", dir=os.path.dirname(os.path.abspath(out_dir))) as tmp:
        parts: List[str] = []
        for c, utts in used:
            if segmented and utts[0].segment is None:
                utts = [u if not (u.wav or "").strip() or c.dur[u.uttid] <= 0 else
                        dataclasses.replace(u, segment=Segment(u.uttid, 0.0, c.dur[u.uttid]))
                        for u in utts]
            part = os.path.join(tmp, c.name)
            _write_part(part, c, utts)
            parts.append(part)
        try:
            combine_data_dirs(out_dir, parts, drop)
        except ValueError as e:
            msg = str(e)
            for part, (c, _) in zip(parts, used):
                msg = msg.replace(part, c.data_dir)
            raise ValueError(msg) from None
    _carry_extra_files(out_dir, used)
    kept_ids = {u.uttid for c, utts in used for u in utts}
    rows = _rows(corpora, kept_ids)
    with open(os.path.join(out_dir, REPORT_NAME), "w", encoding="utf-8") as f:
        f.write(format_rows(rows))
    return MixResult(rows, chosen, hours, short, capped)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("Usage:")[0],
        epilog="Usage:" + __doc__.split("Usage:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="append", default=[], metavar="[NAME=]DIR",
                        help="a data directory taken whole (repeat the option)")
    parser.add_argument("--pool", action="append", default=[], metavar="[NAME=]DIR",
                        help="a data directory to sample from (repeat the option)")
    parser.add_argument("--hours", type=float, default=None,
                        help="total hours of the mix, keep directories included (without "
                             "--pool: omit it to combine the --keep directories whole)")
    parser.add_argument("--seed", type=int, required=True, help="seed of the pooled order")
    parser.add_argument("--out", required=True, help="output data directory")
    parser.add_argument("--per_corpus_hours", nargs="+", default=[], metavar="NAME=H",
                        help="cap of a pool corpus in hours")
    parser.add_argument("--prefix_ids", type=str2bool, default=False, metavar="true|false",
                        help="prefix every id with '<name>-' (default: false)")
    parser.add_argument("--drop", nargs="+", default=[], metavar="FILE",
                        help="optional files to leave out, e.g. text_prev text_next")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        result = sample_hours(args.out, args.keep, args.pool, args.hours, args.seed,
                              parse_caps(args.per_corpus_hours), args.prefix_ids, args.drop)
    except (ValueError, OSError) as e:
        print(f"sample_hours: ERROR: {e}", file=sys.stderr)
        return 1
    print(format_rows(result.rows), end="")
    total = result.rows[-1]
    asked = f"the {args.hours:g} h asked" if args.hours is not None else "the --keep dirs whole"
    line = (f"sample_hours: {args.out}: {total[3]} utterances, {total[4]} h of {asked} "
            f"(seed {args.seed}); {len(result.chosen)} sampled from the pools")
    if result.capped:
        line += "; passed over for caps: " + ", ".join(f"{k}={v}" for k, v in
                                                       sorted(result.capped.items()))
    if result.short_hours > 0:
        line += f"; WARNING: the pools were {result.short_hours:.4f} h short of the budget"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
