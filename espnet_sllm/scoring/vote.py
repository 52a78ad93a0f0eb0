"""N-way majority vote of hypotheses (ROVER), as NIST sctk's ``rover -m meth1 -a 1.0 -c 0.0``.

Usage:
    python -m espnet_sllm.scoring.vote --hyp exp/a/text --hyp exp/b/text --hyp exp/c/text \\
        [--utt2lang data/pool/utt2lang] --out exp/vote/text [--method python|sctk] [--unit auto]

Pseudo-labels for iterative LoRA training (ILT): N systems decode the same utterances; each
utterance keeps the majority of its N hypotheses.  The input is N Kaldi ``text`` files
(``<uttid> <words...>``, an id alone is an empty hypothesis), one per voter, with the same
utterance ids.  The output ``--out`` is a Kaldi ``text`` of the voted hypotheses; an utterance
whose vote is empty is left out, listed in ``<out>.dropped`` (one id a line, written even when
empty so that no stale list survives) and counted in the printed summary.

Units: words, except for languages written without spaces between words (``utt2lang`` label
``Japanese``, ``Thai``, ``ja``, ``th``, Chinese and its varieties, Lao, Burmese, Khmer: the
``char`` languages of :mod:`.normalize` except Korean, whose spaces are part of the text a
pseudo-label must keep).  In character mode the spaces are dropped, every character votes, and
the result is joined without spaces.  ``--unit word|char`` forces one unit for every utterance.
Tokens are compared literally (case, punctuation): normalise the hypotheses first if they should
not count.

Algorithm (sctk 2.4.10's ``src/sclite/rover.c``, ``net_dp.c`` and ``word.c``, re-implemented;
``tests/test_ilt_vote.py`` checks it against the ``rover`` binary of Debian's ``sctk`` package):

1. *Word transition network* (WTN).  Voter 1's words form a chain of slots.  Voter ``n`` (2, 3,
   ...) is aligned to the network by dynamic programming on the arcs of the network with sctk's
   ``wwd_WORD_rover`` costs: correct 0, substitution 4, insertion / deletion 3, a NULL arc
   (``@``, "no word") against a word 1, deleting a NULL arc 0.001.  A slot is consumed through one
   of its arcs, so a slot holding a NULL is cheap to skip and cheap to substitute.  Ties are broken
   as sctk does: the substitution when it is <= both others, else the deletion when it is strictly
   cheaper than the insertion; among the arcs of the preceding slot the first of minimal cost;
   the sums are rounded to single precision after every addition, as sctk's ``float`` cells are.
   Then the network grows: a word aligned to a slot is appended to it, a deleted slot gets a
   NULL, an inserted word becomes a new slot holding the word followed by one NULL per earlier
   voter.
2. *Vote* (``meth1`` with alpha 1.0: the score of a word is its count over the slot's arcs, the
   confidences do not matter): in every slot the candidate with most votes wins; NULL is a
   candidate, and when it wins the slot outputs nothing.  On a tie the candidate whose first arc
   comes first in the slot wins.

Where the tie rule differs from "ties go to the first voter": the arcs of a slot are in voter
order except in a slot created by an insertion, where the inserting voter's word comes *before*
the NULLs of the earlier voters.  So an insertion that ties with NULL is kept: with two voters
every disagreement is a tie, and the vote is voter 1 on substitutions and on voter 2's deletions,
but voter 2's insertions are kept (sctk does exactly this; ``rover`` on two CTMs ``a`` / ``a x``
outputs ``a x``).  With two voters a vote adds nothing but that, hence the warning.

``--method sctk`` runs the ``rover`` binary instead (Debian package ``sctk``): :func:`rover_sctk`
writes one CTM per voter, every utterance a conversation, every token replaced by an opaque id
(``w17``) so that sctk never interprets one (``@``, ``{``, ``(word)``, ``a:b``, a trailing ``*``,
``%sync%time``, ASCII case folding; UTF-8 needs no support), each word 1/8 s long, back to back
(times exact in binary: rover cuts an utterance wherever the next word starts later than the
previous one ends, by even one ulp).  rover refuses a voter without a line for a conversation, so
each utterance starts with a NULL word ``@`` at 0 s and 1.875 s of silence that every voter shares:
rover cuts at common silences, votes that chunk (only NULLs: nothing comes out) apart from the
words, and a voter with no words has an empty chunk, i.e. an empty hypothesis.  Except that rover
then reads one word too many for such a voter (not voter 1) when another conversation follows: so
the utterances with an empty hypothesis are voted each as the last conversation of a run.

API::

    from espnet_sllm.scoring.vote import rover_vote, vote_hypotheses
    rover_vote([["a", "b", "c"], ["a", "c"], ["a", "b", "d"]])   # -> ["a", "b", "c"]
    res = vote_hypotheses([hyp_a, hyp_b, hyp_c], names=["a/text", "b/text", "c/text"],
                          utt2lang=utt2lang)                         # dicts uttid -> text
    res.texts, res.empty                                             # voted text, empty ids
"""
import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from array import array
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from espnet_sllm.data.kaldi_dir import read_kv, write_kv
from espnet_sllm.scoring.normalize import CHAR_LANGUAGES, language_key, to_units

logger = logging.getLogger(__name__)

DEBIAN_ROVER = "/usr/lib/sctk/bin/rover"
METHODS = ("python", "sctk")
UNITS = ("auto", "word", "char")

#: Languages voted by characters: written without spaces between words.  Korean is written with
#: spaces, which a voted pseudo-label must keep, so it votes by words (it is *scored* by
#: characters in MLC-SLM, see :mod:`.normalize`).
VOTE_CHAR_LANGUAGES = CHAR_LANGUAGES - {"korean", "ko", "kor"}

# A NULL arc ("@" in sctk): the voter has no word in this slot.
NULL = None
# "No arc" (sctk's NULL_WORD pointer): the other side of an insertion or deletion.
_ABSENT = object()

_F32 = array("f", [0.0])


def _f32(x: float) -> float:
    """``x`` rounded to single precision (sctk keeps its DP costs in C ``float``)."""
    _F32[0] = x
    return _F32[0]


_C_NULL_DEL = _f32(0.001)  # deleting / inserting a NULL arc
_C_NULL_SUB = 1.0  # a NULL arc against a word, or against another NULL
_C_INS_DEL = 3.0
_C_SUB = 4.0


def _wwd(x, y) -> float:
    """sctk's ``wwd_WORD_rover`` for arcs without sync tags and opt-del words."""
    if y is _ABSENT:
        return _C_NULL_DEL if x is NULL else _C_INS_DEL
    if x is _ABSENT:
        return _C_NULL_DEL if y is NULL else _C_INS_DEL
    if x is NULL or y is NULL:
        return _C_NULL_SUB
    return 0.0 if x == y else _C_SUB


def _first_min(cost: List[List[float]], arcs: Sequence[int], j: int) -> Tuple[float, int]:
    """(minimal ``cost[a][j]``, first arc ``a`` reaching it) over ``arcs`` (sctk's strict ``<``
    scan of a node's arc list)."""
    best, best_arc = cost[arcs[0]][j], arcs[0]
    for a in arcs[1:]:
        if cost[a][j] < best:
            best, best_arc = cost[a][j], a
    return best, best_arc


def _merge(slots: List[List[Optional[str]]], words: Sequence[str], n_before: int
           ) -> List[List[Optional[str]]]:
    """Align ``words`` (voter ``n_before + 1``) to the network ``slots`` and return the grown
    network (sctk's ``Network_dpalign_n_networks`` step and ``create_alinged_NETWORK``)."""
    m = len(words)
    # Arc 0 is the network's head (sctk adds a data-less arc before the first node); the arcs
    # of slot k follow those of slot k-1.  Arcs of one slot with the same token have the same
    # costs, so only the first of them is kept: a later twin never wins sctk's strict "<"
    # scans, hence never lies on the path.
    arc_token: List[object] = [_ABSENT]
    arc_slot = [0]
    slot_arcs: List[List[int]] = [[0]]
    for k, slot in enumerate(slots, 1):
        ids = []
        for tok in dict.fromkeys(slot):
            ids.append(len(arc_token))
            arc_token.append(tok)
            arc_slot.append(k)
        slot_arcs.append(ids)
    n_arcs = len(arc_token)
    cost: List[List[float]] = [[0.0] * (m + 1) for _ in range(n_arcs)]
    back: List[List[Tuple[int, int]]] = [[(-1, -1)] * (m + 1) for _ in range(n_arcs)]
    # Margins: the head against the words (insertions), the arcs against no word (deletions).
    for j in range(1, m + 1):
        cost[0][j] = _f32(cost[0][j - 1] + _wwd(_ABSENT, words[j - 1]))
        back[0][j] = (0, j - 1)
    for k in range(1, len(slot_arcs)):
        pmin, parc = _first_min(cost, slot_arcs[k - 1], 0)
        for a in slot_arcs[k]:
            cost[a][0] = _f32(pmin + _wwd(arc_token[a], _ABSENT))
            back[a][0] = (parc, 0)
    f32 = _f32
    ins_w = [_wwd(_ABSENT, w) for w in words]
    # Inner cells.  The minima over the previous slot's arcs are the same for every arc of a
    # slot, so they are taken once per (slot, word).
    for k in range(1, len(slot_arcs)):
        prev = slot_arcs[k - 1]
        prev_min = [_first_min(cost, prev, j) for j in range(m + 1)]
        for a in slot_arcs[k]:
            tok = arc_token[a]
            row, brow = cost[a], back[a]
            del_w = _wwd(tok, _ABSENT)
            for j in range(1, m + 1):
                w = words[j - 1]
                ins = f32(row[j - 1] + ins_w[j - 1])
                dmin, darc = prev_min[j]
                dele = f32(dmin + del_w)
                smin, sarc = prev_min[j - 1]
                sub = f32(smin + _wwd(tok, w))
                if sub <= dele and sub <= ins:
                    row[j], brow[j] = sub, (sarc, j - 1)
                elif dele < ins:
                    row[j], brow[j] = dele, (darc, j)
                else:
                    row[j], brow[j] = ins, (a, j - 1)
    # The end: the first arc of the last slot with the minimal cost.
    _, a = _first_min(cost, slot_arcs[-1], m)
    j = m
    ops = []
    while a > 0 or j > 0:
        ba, bj = back[a][j]
        if ba == a:
            ops.append(("ins", arc_slot[a], words[j - 1]))
        elif bj == j:
            ops.append(("del", arc_slot[a], NULL))
        else:
            ops.append(("sub", arc_slot[a], words[j - 1]))
        a, j = ba, bj
    grown = [list(s) for s in slots]
    after: Dict[int, List[List[Optional[str]]]] = {}
    for op, k, tok in reversed(ops):
        if op == "ins":
            after.setdefault(k, []).append([tok] + [NULL] * n_before)
        else:
            grown[k - 1].append(tok)
    out = list(after.get(0, []))
    for k, slot in enumerate(grown, 1):
        out.append(slot)
        out.extend(after.get(k, []))
    return out


def rover_network(hyps: Sequence[Sequence[str]]) -> List[List[Optional[str]]]:
    """The word transition network of ``hyps`` (token lists, voter order): a list of slots,
    each the list of its arcs' tokens in sctk's order (``None`` = NULL arc)."""
    if not hyps:
        raise ValueError("rover_network: no hypotheses")
    slots: List[List[Optional[str]]] = [[w] for w in hyps[0]]
    for n, words in enumerate(hyps[1:], 1):
        slots = _merge(slots, list(words), n)
    return slots


def vote_slot(slot: Sequence[Optional[str]]) -> Optional[str]:
    """The most frequent token of a slot (``None`` = NULL); ties: the first to appear."""
    counts: Dict[Optional[str], int] = {}
    for tok in slot:
        counts[tok] = counts.get(tok, 0) + 1
    best, best_n = None, -1
    for tok, c in counts.items():  # insertion order = order of first appearance
        if c > best_n:
            best, best_n = tok, c
    return best


def rover_vote(hyps: Sequence[Sequence[str]]) -> List[str]:
    """Majority vote of token lists as sctk's ``rover -m meth1 -a 1.0 -c 0.0`` (module doc)."""
    hyps = [list(h) for h in hyps]
    if not hyps:
        raise ValueError("rover_vote: no hypotheses")
    if all(h == hyps[0] for h in hyps[1:]):
        return list(hyps[0])
    out = []
    for slot in rover_network(hyps):
        tok = vote_slot(slot)
        if tok is not NULL:
            out.append(tok)
    return out


def unit_for_vote(lang: Optional[str]) -> str:
    """``char`` for languages written without spaces (:data:`VOTE_CHAR_LANGUAGES`), else
    ``word``; no language (no utt2lang) votes by words."""
    if lang is not None and language_key(lang) in VOTE_CHAR_LANGUAGES:
        return "char"
    return "word"


def split_units(text: str, unit: str) -> List[str]:
    """Tokens of ``text``: words, or characters without the spaces."""
    return to_units(text, unit)


def join_units(tokens: Sequence[str], unit: str) -> str:
    return ("" if unit == "char" else " ").join(tokens)


# --------------------------------------------------------------------------------- files


@dataclass
class VoteResult:
    """Voted texts of every utterance (empty ones included), the ids of the empty votes and the
    unit each utterance voted in."""

    texts: Dict[str, str]
    empty: List[str] = field(default_factory=list)
    units: Dict[str, str] = field(default_factory=dict)
    method: str = "python"


def _few(ids, n: int = 3) -> str:
    ids = sorted(ids)
    more = f" and {len(ids) - n} more" if len(ids) > n else ""
    return ", ".join(repr(i) for i in ids[:n]) + more


def check_voters(hyps: Sequence[Mapping[str, str]], names: Sequence[str]) -> None:
    """ValueError unless there are >= 2 voters with one utterance set (naming the files and a
    few ids that differ); a warning for exactly 2 (module docstring)."""
    if len(hyps) != len(names):
        raise ValueError(f"{len(hyps)} hypothesis sets but {len(names)} names")
    if len(hyps) < 2:
        raise ValueError(f"a vote needs at least 2 hypothesis files, got {len(hyps)}"
                         + (f" ({names[0]})" if names else ""))
    if len(hyps) == 2:
        logger.warning("only 2 voters (%s, %s): every disagreement is a tie, won by %s except "
                       "for the words that %s inserts (sctk's rover order); use 3 or more "
                       "voters for a majority", names[0], names[1], names[0], names[1])
    ref = set(hyps[0])
    for name, hyp in zip(names[1:], hyps[1:]):
        keys = set(hyp)
        if keys != ref:
            parts = []
            if ref - keys:
                parts.append(f"{len(ref - keys)} of the utterances of {names[0]} are missing "
                             f"from {name} (e.g. {_few(ref - keys)})")
            if keys - ref:
                parts.append(f"{name} has {len(keys - ref)} utterances that {names[0]} lacks "
                             f"(e.g. {_few(keys - ref)})")
            raise ValueError("voters must hypothesise the same utterances: " + "; ".join(parts))
    if not ref:
        raise ValueError(f"{names[0]}: no utterances")


def utterance_units(utts, utt2lang: Optional[Mapping[str, str]], unit: str = "auto",
                    utt2lang_name: str = "utt2lang") -> Dict[str, str]:
    """The unit of every utterance: ``unit`` when forced, else by its language."""
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; valid: {', '.join(UNITS)}")
    if unit != "auto":
        return {u: unit for u in utts}
    if utt2lang is None:
        return {u: "word" for u in utts}
    missing = [u for u in utts if u not in utt2lang]
    if missing:
        raise ValueError(f"{utt2lang_name}: no language for {len(missing)} voted utterances "
                         f"(e.g. {_few(missing)})")
    return {u: unit_for_vote(utt2lang[u]) for u in utts}


def vote_hypotheses(hyps: Sequence[Mapping[str, str]], names: Optional[Sequence[str]] = None,
                    utt2lang: Optional[Mapping[str, str]] = None, unit: str = "auto",
                    method: str = "python", rover: Optional[str] = None,
                    utt2lang_name: str = "utt2lang") -> VoteResult:
    """Vote N hypothesis sets (``uttid -> text`` dicts, voter order) utterance by utterance.

    Raises:
        ValueError: fewer than 2 voters, different utterance sets, an utterance without a
            language in ``utt2lang``, an unknown unit or method.
        RoverError: ``method="sctk"`` and rover is missing or fails.
    """
    names = list(names) if names is not None else [f"voter {i + 1}" for i in range(len(hyps))]
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    check_voters(hyps, names)
    utts = sorted(hyps[0])
    units = utterance_units(utts, utt2lang, unit, utt2lang_name)
    tokens = {u: [split_units(h[u], units[u]) for h in hyps] for u in utts}
    if method == "sctk":
        voted = rover_sctk(tokens, rover=rover)
    else:
        voted = {u: rover_vote(t) for u, t in tokens.items()}
    texts = {u: join_units(voted[u], units[u]) for u in utts}
    empty = [u for u in utts if not texts[u]]
    return VoteResult(texts=texts, empty=empty, units=units, method=method)


def vote_files(hyp_paths: Sequence[str], utt2lang_path: Optional[str] = None,
               unit: str = "auto", method: str = "python", rover: Optional[str] = None
               ) -> VoteResult:
    """:func:`vote_hypotheses` of Kaldi ``text`` files (errors name ``file:line``)."""
    hyps = [read_kv(p) for p in hyp_paths]
    utt2lang = read_kv(utt2lang_path) if utt2lang_path else None
    return vote_hypotheses(hyps, list(hyp_paths), utt2lang, unit, method, rover,
                           utt2lang_name=utt2lang_path or "utt2lang")


# --------------------------------------------------------------------------------- sctk


class RoverError(RuntimeError):
    """sctk's rover is missing, failed, or wrote what cannot be read back."""


def find_rover(explicit: Optional[str] = None) -> str:
    """Path of sctk's ``rover``: ``explicit``, Debian's ``/usr/lib/sctk/bin/rover``, or PATH."""
    if explicit:
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit
        raise RoverError(f"rover not found or not executable: {explicit}")
    if os.access(DEBIAN_ROVER, os.X_OK):
        return DEBIAN_ROVER
    found = shutil.which("rover")
    if found:
        return found
    raise RoverError(f"sctk's rover not found (neither {DEBIAN_ROVER} nor 'rover' on PATH); "
                     "install it with 'apt-get install sctk' (or 'make install'), or use "
                     "--method python")


def rover_available() -> bool:
    try:
        find_rover()
        return True
    except RoverError:
        return False


# The words of an utterance start after the shared NULL chunk (module docstring).  Times are
# multiples of 1/8 s, exact in binary: with 0.1 s, t1 + dur and the next t1 can differ by one
# ulp, and rover takes such a difference for a silence and cuts the utterance there.
_GAP_START = 2.0
_WORD_DUR = 0.125


def rover_sctk(utt_hyps: Mapping[str, Sequence[Sequence[str]]], rover: Optional[str] = None,
               workdir: Optional[str] = None) -> Dict[str, List[str]]:
    """Vote ``{uttid: [voter 1 tokens, voter 2 tokens, ...]}`` with sctk's ``rover -m meth1 -a
    1.0 -c 0.0 -s`` (CTM layout: module docstring); returns ``{uttid: tokens}``.

    One run votes every utterance whose voters all have words.  rover reads one word too many
    for a voter that has none in an utterance (other than voter 1) when another conversation
    follows: the first word of the next one, which becomes part of the vote.  So every
    utterance with an empty hypothesis is voted as the last conversation of a run of its own
    (the first of them closes the main run).  ``workdir`` keeps the files of the runs there
    (``run<i>/``); by default a temporary directory.
    """
    binary = find_rover(rover)
    utts = list(utt_hyps)
    if not utts:
        return {}
    n_voters = {len(v) for v in utt_hyps.values()}
    if len(n_voters) != 1 or min(n_voters) < 2:
        raise ValueError(f"rover_sctk: every utterance needs the same number (>= 2) of "
                         f"hypotheses, got {sorted(n_voters)}")
    full = [u for u in utts if all(len(h) for h in utt_hyps[u])]
    with_empty = [u for u in utts if not all(len(h) for h in utt_hyps[u])]
    runs = [full + with_empty[:1]] + [[u] for u in with_empty[1:]]
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="rover_")
        workdir = tmp.name
    try:
        out: Dict[str, List[str]] = {}
        for i, run_utts in enumerate(r for r in runs if r):
            out.update(_rover_run(binary, {u: utt_hyps[u] for u in run_utts},
                                  os.path.join(workdir, f"run{i}")))
        return out
    finally:
        if tmp is not None:
            tmp.cleanup()


def _rover_run(binary: str, utt_hyps: Mapping[str, Sequence[Sequence[str]]], workdir: str
               ) -> Dict[str, List[str]]:
    """One rover run over ``utt_hyps`` (conversations in this order) in ``workdir``."""
    os.makedirs(workdir, exist_ok=True)
    utts = list(utt_hyps)
    n = len(utt_hyps[utts[0]])
    vocab: Dict[str, str] = {}
    conv = {u: f"u{i}" for i, u in enumerate(utts)}
    hyp_files = []
    for v in range(n):
        path = os.path.join(workdir, f"voter{v + 1}.ctm")
        with open(path, "w", encoding="ascii") as f:
            for u in utts:
                f.write(f"{conv[u]} 1 0.000 {_WORD_DUR:.3f} @ 1.0\n")
                for i, tok in enumerate(utt_hyps[u][v]):
                    wid = vocab.setdefault(tok, f"w{len(vocab)}")
                    f.write(f"{conv[u]} 1 {_GAP_START + i * _WORD_DUR:.3f} "
                            f"{_WORD_DUR:.3f} {wid} 1.0\n")
        hyp_files.append(path)
    out_path = os.path.join(workdir, "rover.ctm")
    cmd = [binary]
    for path in hyp_files:
        cmd += ["-h", path, "ctm"]
    cmd += ["-o", out_path, "-m", "meth1", "-a", "1.0", "-c", "0.0", "-s", "-f", "0"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = (proc.stderr + proc.stdout).decode("utf-8", "replace").strip()
    if proc.returncode != 0 or not os.path.isfile(out_path):
        raise RoverError(f"rover failed (exit {proc.returncode}): {' '.join(cmd)}\n{err}")
    words = {v: k for k, v in vocab.items()}
    by_conv = {c: u for u, c in conv.items()}
    out: Dict[str, List[str]] = {u: [] for u in utts}
    with open(out_path, encoding="ascii") as f:
        for lineno, line in enumerate(f, 1):
            cols = line.split()
            if not cols or line.startswith(";;"):
                continue
            if len(cols) < 5 or cols[0] not in by_conv or cols[4] not in words:
                raise RoverError(f"{out_path}:{lineno}: unexpected rover output {line!r}")
            out[by_conv[cols[0]]].append(words[cols[4]])
    return out


# --------------------------------------------------------------------------------- CLI


def write_vote(out_path: str, result: VoteResult) -> None:
    """``out_path`` (Kaldi text of the non-empty votes) and ``<out_path>.dropped``."""
    d = os.path.dirname(out_path)
    if d:
        os.makedirs(d, exist_ok=True)
    write_kv(out_path, {u: t for u, t in result.texts.items() if t})
    write_kv(out_path + ".dropped", {u: "" for u in result.empty})


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("Usage:")[0],
        epilog="Usage:" + __doc__.split("Usage:")[1].split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hyp", action="append", required=True,
                        help="a voter's Kaldi text file; give it once per voter (voter order "
                             "breaks ties)")
    parser.add_argument("--utt2lang", default=None,
                        help="utt2lang of the utterances: Japanese, Thai, ... vote by characters")
    parser.add_argument("--unit", default="auto", choices=UNITS,
                        help="auto (by utt2lang; words without it), or one unit for all")
    parser.add_argument("--out", required=True, help="the voted Kaldi text file to write")
    parser.add_argument("--method", default="python", choices=METHODS,
                        help="python (default) or sctk (the rover binary; same result)")
    parser.add_argument("--rover", default=None, help="path of sctk's rover binary")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: vote: %(message)s")
    try:
        result = vote_files(args.hyp, args.utt2lang, args.unit, args.method, args.rover)
        write_vote(args.out, result)
    except (ValueError, OSError, RoverError) as e:
        print(f"vote: ERROR: {e}", file=sys.stderr)
        return 1
    n = len(result.texts)
    chars = sum(1 for u in result.units.values() if u == "char")
    print(f"vote: {len(args.hyp)} voters ({args.method}), {n} utterances ({chars} by "
          f"characters): {n - len(result.empty)} written to {args.out}, {len(result.empty)} "
          f"empty votes dropped (listed in {args.out}.dropped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
