"""What every corpus reader of ``espnet_sllm.data.corpora`` shares: counts of kept and dropped rows,
line-numbered reading, id checks and the command-line error convention.

Every reader (``mls``, ``covost2``, ``common_voice``, ``kespeech``, ``wenetspeech``,
``aishell``, ``aishell2``, ``wmt19``, ``alpaca_zh``, ``mlc_slm``) follows the same contract:

* a problem of ONE row or ONE session (a line that is not UTF-8, missing or unreadable audio,
  a segment beyond the end of its audio, a zero or negative duration, an empty text, ...) never
  stops the reader: the row is dropped AND counted under a named reason (`ReaderStats.drop`),
  with a few ``file:line`` examples logged -- nothing is lost silently, and one bad line of a
  large corpus does not keep the rest from being prepared;
* with ``--strict true`` (`add_strict_option`, ``ReaderStats(strict=True)``) every such drop is
  an error instead (`ReaderError` naming ``file:line`` and the reason): for a corpus that must
  be read whole, or to find the bad rows one by one;
* rows left out BY CHOICE (outside a requested subset, document breaks) are counted too, under
  their own reason (`ReaderStats.skip`), and are never an error, strict or not;
* malformed input (a wrong column count, a missing header column, a file that cannot be read,
  an id given twice, ...) is a `ReaderError` (a ValueError) whose message starts with
  ``file:line``;
* the command-line entry point prints ``ERROR: <message>`` and exits with 1 on such an error,
  on a missing or unreadable file and on an unreadable audio header (`run_main`), never a
  Python traceback; it prints the counts (`ReaderStats.summary`) on success.

Usage:
    from espnet_sllm.data.corpora.reader_utils import (
        ReaderError, ReaderStats, add_strict_option, iter_lines, check_id, run_main)
    parser = argparse.ArgumentParser(...)
    add_strict_option(parser)                    # --strict true|false (default false)
    args = parser.parse_args(argv)
    stats = ReaderStats("transcripts.txt", strict=args.strict)
    for lineno, line in iter_lines(path, stats=stats):   # lines not UTF-8: dropped, not_utf8
        where = f"{path}:{lineno}"
        stats.rows += 1
        ...
        stats.drop("empty_text", where)      # counted, logged (first examples); strict: error
        stats.keep("English")                # counted per group (language, subset, ...)
    print(stats.summary())
"""
import argparse
import logging
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

logger = logging.getLogger(__name__)

# How many examples of each drop reason are kept for the log.
MAX_EXAMPLES = 3
# The drop reason of a line (or record) holding bytes that are not UTF-8, in every reader.
NOT_UTF8 = "not_utf8"


class ReaderError(ValueError):
    """Malformed corpus input; the message names the file and line."""


@dataclass
class ReaderStats:
    """What a reader kept and dropped, and why.

    Args:
        name: what was read (a file or a corpus part), for the summary line.
        strict: every `drop` is a `ReaderError` (``--strict true`` of the readers); `skip`
            (rows left out by choice) never is.
    """

    name: str = ""
    rows: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    per_group: Counter = field(default_factory=Counter)
    examples: Dict[str, List[str]] = field(default_factory=dict)
    strict: bool = False

    def keep(self, group: Optional[str] = None) -> None:
        """Count one kept row (and one for ``group``: a language, a subset, ...)."""
        self.kept += 1
        if group is not None:
            self.per_group[group] += 1

    def drop(self, reason: str, where: str = "", detail: str = "") -> None:
        """Count one row dropped for a flaw of the corpus under ``reason``; the first examples
        are remembered.  ``where`` is ``file:line`` (or the file, entry, ...), ``detail`` what
        was wrong.  With ``strict``, a `ReaderError` naming ``where`` and ``reason`` instead."""
        if self.strict:
            raise ReaderError(
                f"{where or self.name or 'input'}: {reason}{': ' + detail if detail else ''} "
                f"(--strict true: a row that would be dropped and counted is an error)")
        self.skip(reason, where, detail)

    def skip(self, reason: str, where: str = "", detail: str = "") -> None:
        """Count one row left out BY CHOICE (outside a requested subset, a document break):
        counted and reported like a drop, but never an error, even with ``strict``."""
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


class NotUtf8Line(str):
    """A line holding bytes that are not UTF-8, decoded with U+FFFD in their place (yielded by
    `iter_lines` with ``keep_undecodable``); ``reason`` says what was wrong."""

    reason: str = ""


def iter_lines(
    path: str,
    skip_blank: bool = True,
    stats: Optional[ReaderStats] = None,
    header: bool = False,
    keep_undecodable: bool = False,
) -> Iterator[Tuple[int, str]]:
    """Yield ``(line number, line without its line break)`` of a UTF-8 text file.

    A byte-order mark before the first line is removed.  Blank lines are skipped unless
    ``skip_blank`` is False.  A line with bytes that are not UTF-8 is

    * with ``stats``: dropped and counted there (``stats.rows`` + 1, reason `NOT_UTF8`,
      example ``file:line``; an error if ``stats.strict``), and not yielded;
    * with ``keep_undecodable``: yielded as a `NotUtf8Line`, for a caller that must keep its
      place (files aligned line by line) and drops the row itself;
    * otherwise: a `ReaderError` naming the line.

    With ``header``, the first line yielded (the first non-blank one) is a header row: if it is
    not UTF-8 that is always an error (dropping it would make a data row the header).
    """
    first = True
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            encoding = "utf-8-sig" if lineno == 1 else "utf-8"
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as e:
                reason = f"not UTF-8 ({e.reason} at byte {e.start})"
                if (header and first) or (stats is None and not keep_undecodable):
                    raise ReaderError(f"{path}:{lineno}: {reason}") from None
                if not keep_undecodable:
                    stats.rows += 1
                    stats.drop(NOT_UTF8, f"{path}:{lineno}", reason)
                    continue
                line = NotUtf8Line(raw.decode(encoding, errors="replace").rstrip("\r\n"))
                line.reason = reason
                first = False
                yield lineno, line
                continue
            line = line.rstrip("\r\n")
            if skip_blank and not line.strip():
                continue
            first = False
            yield lineno, line


def has_undecodable(text: str) -> bool:
    """True when ``text`` cannot be written as UTF-8: it holds bytes that were not UTF-8
    (read with ``errors="surrogateescape"``, as the JSON readers do) or other lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


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


def str2bool(value: str) -> bool:
    """A boolean option value, as ESPnet's ``str2bool`` takes it: true/false (also yes/no,
    on/off, 1/0, t/f, y/n), in any case."""
    v = str(value).strip().lower()
    if v in ("true", "t", "yes", "y", "on", "1"):
        return True
    if v in ("false", "f", "no", "n", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def add_strict_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--strict true|false`` (default false; ``args.strict``) to a reader's options."""
    parser.add_argument(
        "--strict", type=str2bool, default=False, metavar="true|false",
        help="true: a row that would be dropped and counted (not UTF-8, missing audio, a "
             "segment beyond its audio, ...) is an error naming file:line and the reason; "
             "false: it is dropped, counted and reported (default: false)")


def _error_types() -> Tuple[type, ...]:
    """What `run_main` reports as ``ERROR: ...``: corpus errors (ReaderError and other
    ValueErrors, UnicodeDecodeError included), files that are missing, unreadable or of the
    wrong kind (OSError: FileNotFoundError, PermissionError, IsADirectoryError, ...), and audio
    files whose header soundfile cannot read."""
    kinds: Tuple[type, ...] = (ValueError, OSError)
    try:
        import soundfile
    except (ImportError, OSError):  # pragma: no cover - soundfile is a dependency
        return kinds
    return kinds + (getattr(soundfile, "SoundFileError", RuntimeError),
                    getattr(soundfile, "LibsndfileError", RuntimeError))


# What str.splitlines breaks a line at -> its escape ("\\r", "\\u2028", ...).
_ESCAPE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


def run_main(body: Callable[[], int]) -> int:
    """Run a reader's command-line body; an error of the input (see `_error_types`) prints one
    ``ERROR: ...`` line (line breaks inside the message escaped) and returns 1, without a
    traceback."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    try:
        return body()
    except _error_types() as e:
        msg = str(e)
        if isinstance(e, UnicodeDecodeError):
            msg = f"not UTF-8 ({e.reason} at byte {e.start}; the file is not named by Python)"
        elif isinstance(e, OSError) and e.filename and e.filename not in msg:
            msg = f"{e.filename}: {msg}"
        # One line whatever the input held: a line break (or a CR, which would overwrite the
        # line on a terminal) taken into the message from a file is shown escaped.
        print(f"ERROR: {(msg or type(e).__name__).translate(_ESCAPE_BREAKS)}", file=sys.stderr)
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


__all__ = ["ReaderError", "ReaderStats", "NOT_UTF8", "NotUtf8Line", "iter_lines",
           "has_undecodable", "check_id", "run_main", "parse_list", "write_set", "str2bool",
           "add_strict_option"]


if __name__ == "__main__":  # pragma: no cover - a library module
    sys.exit("espnet_sllm.data.corpora.reader_utils is a library; see its docstring")
