"""Error counts (Corr/Sub/Del/Ins) that equal sclite's, computed in pure Python.

Why not jiwer: jiwer (rapidfuzz) aligns with unit costs (sub = del = ins = 1). sclite aligns
with costs sub = 4, del = ins = 3 (correct = 0), which prefers a deletion plus an insertion to
two substitutions, and breaks ties in its own order. The two therefore disagree on the
breakdown (about 3 % of random short pairs): for ref ``a b`` / hyp ``b c`` jiwer reports two
substitutions, sclite 1 correct, 1 deletion, 1 insertion -- a different Corr/Sub/Del/Ins row.
Since ESPnet's numbers are sclite's, this module implements sclite's weighted alignment: the
costs above; at each cell the diagonal move wins ties, then a deletion beats an insertion only
when strictly cheaper; back-trace from the end. The tests check it against the sclite binary
utterance by utterance, so the pure-Python fallback and sclite give the same table.
"""

from dataclasses import asdict, dataclass, fields
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

# sclite's default word weights (its -w defaults): correct 0, substitution 4, insertion 3,
# deletion 3.
COST_SUB = 4
COST_INS = 3
COST_DEL = 3


@dataclass
class ErrorCounts:
    """Counts of one or many utterances, the eight numbers of an sclite ``Sum`` row.

    ``wrd`` is the number of reference units (words or characters); ``serr`` the number of
    utterances with at least one error. Percentages are of ``wrd`` except ``S.Err`` (of ``snt``).
    """

    snt: int = 0
    wrd: int = 0
    corr: int = 0
    sub: int = 0
    dele: int = 0
    ins: int = 0
    err: int = 0
    serr: int = 0

    def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
        return ErrorCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @classmethod
    def from_utterance(cls, corr: int, sub: int, dele: int, ins: int) -> "ErrorCounts":
        """Counts of one utterance from its alignment."""
        err = sub + dele + ins
        return cls(1, corr + sub + dele, corr, sub, dele, ins, err, int(err > 0))

    def as_tuple(self) -> Tuple[int, ...]:
        """(Snt, Wrd, Corr, Sub, Del, Ins, Err, S.Err) in sclite's column order."""
        return tuple(getattr(self, f.name) for f in fields(self))

    @staticmethod
    def _pct(num: int, den: int) -> Optional[float]:
        # An empty reference set has no defined rate; None (JSON null) says so instead of
        # a misleading 0 or an infinity that strict JSON cannot hold.
        if den == 0:
            return 0.0 if num == 0 else None
        return 100.0 * num / den

    def percentages(self) -> Dict[str, Optional[float]]:
        """Corr/Sub/Del/Ins/Err in % of reference units and S.Err in % of utterances."""
        return {
            "corr": self._pct(self.corr, self.wrd),
            "sub": self._pct(self.sub, self.wrd),
            "del": self._pct(self.dele, self.wrd),
            "ins": self._pct(self.ins, self.wrd),
            "err": self._pct(self.err, self.wrd),
            "serr": self._pct(self.serr, self.snt),
        }

    @property
    def error_rate(self) -> Optional[float]:
        """Err % (WER or CER depending on the unit), None when there is no reference unit."""
        return self._pct(self.err, self.wrd)

    def to_dict(self) -> Dict[str, object]:
        """Counts (with ``del`` spelled as in sclite) and percentages, for JSON."""
        d = asdict(self)
        d["del"] = d.pop("dele")
        d["pct"] = self.percentages()
        return d


def align_counts(ref: Sequence[str], hyp: Sequence[str]) -> Tuple[int, int, int, int]:
    """(corr, sub, del, ins) of the sclite-weighted alignment of two token sequences.

    O(len(ref) * len(hyp)) time and memory; fine for utterances (a 3000 x 5000 pair takes a
    few seconds, like sclite itself).
    """
    n, m = len(ref), len(hyp)
    # Shortcuts that give the same answer as the full alignment, for speed on the common cases.
    if n == 0 or m == 0:
        return 0, 0, n, m
    if list(ref) == list(hyp):
        return n, 0, 0, 0

    # back[i][j]: 0 = diagonal (correct or substitution), 1 = deletion, 2 = insertion.
    prev = [j * COST_INS for j in range(m + 1)]
    back: List[bytearray] = [bytearray([2]) * (m + 1)]
    for i in range(1, n + 1):
        r = ref[i - 1]
        cur = [i * COST_DEL] + [0] * m
        row = bytearray(m + 1)
        row[0] = 1
        for j in range(1, m + 1):
            diag = prev[j - 1] + (0 if r == hyp[j - 1] else COST_SUB)
            dele = prev[j] + COST_DEL
            ins = cur[j - 1] + COST_INS
            # The order of these tests is the tie-breaking rule; it must stay as it is to
            # reproduce sclite's breakdown when several alignments have the same cost.
            if diag <= dele and diag <= ins:
                cur[j] = diag
            elif dele < ins:
                cur[j] = dele
                row[j] = 1
            else:
                cur[j] = ins
                row[j] = 2
        back.append(row)
        prev = cur

    corr = sub = dele_n = ins_n = 0
    i, j = n, m
    while i > 0 or j > 0:
        move = back[i][j] if i > 0 and j > 0 else (1 if i > 0 else 2)
        if move == 0:
            if ref[i - 1] == hyp[j - 1]:
                corr += 1
            else:
                sub += 1
            i -= 1
            j -= 1
        elif move == 1:
            dele_n += 1
            i -= 1
        else:
            ins_n += 1
            j -= 1
    return corr, sub, dele_n, ins_n


def utterance_counts(ref: Sequence[str], hyp: Sequence[str]) -> ErrorCounts:
    """ErrorCounts of one utterance (Snt = 1)."""
    return ErrorCounts.from_utterance(*align_counts(ref, hyp))


def sum_counts(counts: Iterable[ErrorCounts]) -> ErrorCounts:
    """Sum of utterance (or group) counts."""
    total = ErrorCounts()
    for c in counts:
        total = total + c
    return total


def score_pairs(pairs: Iterable[Tuple[Sequence[str], Sequence[str]]]) -> ErrorCounts:
    """Summed counts of (ref_tokens, hyp_tokens) pairs, as sclite's ``Sum`` row."""
    return sum_counts(utterance_counts(r, h) for r, h in pairs)


def jiwer_counts(ref: Sequence[str], hyp: Sequence[str]) -> Tuple[int, int, int, int]:
    """(corr, sub, del, ins) by jiwer's unit-cost alignment, for comparison only.

    Kept to document (and test) why the scorer does not use it: see the module docstring.
    """
    import jiwer  # imported lazily: an optional cross-check, not needed for scoring

    if not ref or not hyp:
        return 0, 0, len(ref), len(hyp)
    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    return out.hits, out.substitutions, out.deletions, out.insertions
