"""What every corpus reader of ``espnet_sllm.data`` shares: counts of kept and dropped rows,
line-numbered reading, id checks and the command-line error convention.

Every reader (``mls``, ``covost2``, ``common_voice``, ``kespeech``, ``wenetspeech``,
``aishell``, ``aishell2``, ``wmt19``, ``alpaca_zh``, ``mlc_slm``) follows the same contract:

* a row is either kept, or dropped AND counted under a named reason (`ReaderStats.drop`),
  with a few examples logged -- nothing is lost silently;
* malformed input is a `ReaderError` (a ValueError) whose message starts with ``file:line``;
* the command-line entry point prints ``ERROR: <message>`` and exits with 1 on such an error
  (`run_main`), and prints the counts (`ReaderStats.summary`) on success.

Usage:
    from espnet_sllm.data.reader_utils import ReaderError, ReaderStats, iter_lines, check_id
    stats = ReaderStats("transcripts.txt")
    for lineno, line in iter_lines(path):
        where = f"{path}:{lineno}"
        ...
        stats.drop("empty_text", where)      # counted, logged (first examples)
        stats.keep("English")                # counted per group (language, subset, ...)
    print(stats.summary())
"""
import logging
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

logger = logging.getLogger(__name__)

# How many examples of each drop reason are kept for the log.
MAX_EXAMPLES = 3


class ReaderError(ValueError):
    """Malformed corpus input; the message names the file and line."""


@dataclass
class ReaderStats:
    """What a reader kept and dropped, and why.

    Args:
        name: what was read (a file or a corpus part), for the summary line.
    """

    name: str = ""
    rows: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    per_group: Counter = field(default_factory=Counter)
    examples: Dict[str, List[str]] = field(default_factory=dict)

    def keep(self, group: Optional[str] = None) -> None:
        """Count one kept row (and one for ``group``: a language, a subset, ...)."""
        self.kept += 1
        if group is not None:
            self.per_group[group] += 1

    def drop(self, reason: str, where: str = "", detail: str = "") -> None:
        """Count one dropped row under ``reason``; the first examples are remembered."""
        self.dropped[reason] += 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < MAX_EXAMPLES:
            ex.append(f"{where}{': ' if where and detail else ''}{detail}")
        logger.debug("dropped (%s): %s %s", reason, where, detail)

    def update(self, other: "ReaderStats") -> None:
        self.rows += other.rows
        self.kept += other.kept
        self.dropped.update(other.dropped)
        self.per_group.update(other.per_group)
        for reason, ex in other.examples.items():
            mine = self.examples.setdefault(reason, [])
            mine.extend(ex[: MAX_EXAMPLES - len(mine)])

    @property
    def total_dropped(self) -> int:
        return sum(self.dropped.values())

    def summary(self) -> str:
        """One line: ``<name>: rows=N kept=K dropped=D (reason=n, ...); per group: ...``."""
        dropped = ", ".join(f"{k}={v}" for k, v in sorted(self.dropped.items()))
        groups = ", ".join(f"{k}={v}" for k, v in sorted(self.per_group.items()))
        line = f"{self.name + ': ' if self.name else ''}rows={self.rows} kept={self.kept} " \
               f"dropped={self.total_dropped}"
        if dropped:
            line += f" ({dropped})"
        if groups:
            line += f"; per group: {groups}"
        return line

    def log_drops(self, log: logging.Logger = logger) -> None:
        """Warn once per drop reason, with its count and first examples."""
        for reason, n in sorted(self.dropped.items()):
            log.warning("%s%d rows dropped (%s), e.g. %s", f"{self.name}: " if self.name else "",
                        n, reason, "; ".join(self.examples.get(reason, [])))


def iter_lines(path: str, skip_blank: bool = True) -> Iterator[Tuple[int, str]]:
    """Yield ``(line number, line without its line break)`` of a UTF-8 text file.

    A byte-order mark before the first line is removed.  Blank lines are skipped unless
    ``skip_blank`` is False.  Bytes that are not UTF-8 are a `ReaderError` naming the line.
    """
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise ReaderError(f"{path}:{lineno}: not UTF-8 ({e.reason} at byte {e.start})") \
                    from None
            line = line.rstrip("\r\n")
            if skip_blank and not line.strip():
                continue
            yield lineno, line


def check_id(value: str, what: str, where: str) -> str:
    """``value`` if it can be (part of) a Kaldi key: non-empty, no whitespace."""
    if not value or any(c.isspace() for c in value):
        raise ReaderError(f"{where}: {what} {value!r} cannot be part of an id "
                          f"(empty or with whitespace)")
    return value


def write_set(out_dir: str, utts: Sequence, stats: ReaderStats, what: str) -> None:
    """Write the data directory ``out_dir`` from ``utts`` and print its counts; an empty set
    is a `ReaderError` (``what``: the corpus part, for the message), never an empty
    directory that a later stage would fail on far from the cause."""
    from espnet_sllm.data.kaldi_dir import write_data_dir  # the readers import this module

    if not utts:
        raise ReaderError(f"{what}: no utterance kept ({stats.summary()})")
    write_data_dir(out_dir, utts)
    print(f"{out_dir}: {stats.summary()}")


def run_main(body: Callable[[], int]) -> int:
    """Run a reader's command-line body; a corpus error prints ``ERROR: ...`` and returns 1."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    try:
        return body()
    except (ValueError, FileNotFoundError, NotADirectoryError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1


def parse_list(values: Optional[Sequence[str]], known: Sequence[str], what: str) -> List[str]:
    """Validate a ``--langs``-like option: every value must be one of ``known`` (error lists
    them); None or empty means all of ``known``."""
    if not values:
        return list(known)
    bad = [v for v in values if v not in known]
    if bad:
        raise ValueError(f"unknown {what} {bad}; valid: {', '.join(known)}")
    return list(dict.fromkeys(values))


__all__ = ["ReaderError", "ReaderStats", "iter_lines", "check_id", "run_main", "parse_list",
           "write_set"]


if __name__ == "__main__":  # pragma: no cover - a library module
    sys.exit("espnet_sllm.data.reader_utils is a library; see its docstring")
