"""Seeded mutation fuzzing of the corpus readers (issue #17 §4), without any extra dependency.

Given a tiny release tree built by a reader's tests (the *template*), every case copies it,
applies one random mutation (sometimes two) to one of its text files (the metadata: TSV, CSV,
transcripts, lists, ``wav.scp``, SGML, JSON; never audio or archives), runs the reader's
command line IN-PROCESS (``main(argv)``, stdout, stderr and the log captured) and checks the
contract of ``espnet_sllm/data/corpora/reader_utils.py``:

* no exception escapes ``main`` and nothing prints ``Traceback`` (a failure: a crash);
* the exit status is 0 or 1; exit 0 prints the counts (``rows=... kept=... dropped=...``);
  exit 1 ends stderr with ONE line ``ERROR: ...`` (no CR or other line break inside)
  that comes from the reader's own `ReaderError` (naming ``file:line``), a missing or
  unreadable file (OSError) or an unreadable audio header: not from a ValueError raised
  elsewhere (Python's ``int()``, the data directory writer, ...), which means that bad input
  got past the reader's checks;
* every data directory found below the output folder, whatever the exit status, passes
  `espnet_sllm.data.kaldi_dir.validate_data_dir`;
* the run ends within ``timeout_s`` (a hang is a failure).

Mutations (`MUTATIONS`): ``delete_field`` (a TAB / ``|`` / comma / blank-separated field of a
line), ``extra_field`` (an extra TAB, empty or with a value), ``bom`` (a UTF-8 BOM prepended),
``crlf`` (CRLF line ends: all, some lines, or a lone CR inside a line), ``odd_unicode`` (NUL,
U+FFFD, RTL marks, combining characters, full-width and other Unicode spaces, line separators,
an emoji, a BOM or zero-width space inside a line), ``invalid_utf8`` (bytes that are not UTF-8:
0xFF, a cut sequence, an encoded lone surrogate, an overlong form), ``odd_digits`` (an ASCII
digit replaced by a full-width, superscript, Arabic-Indic or Devanagari one), ``empty`` (the
file emptied), ``truncate`` (cut inside a line, maybe inside a UTF-8 sequence),
``duplicate_line``, ``delete_line``, ``swap_lines``, ``blank_line`` (a line of blanks
inserted), ``no_final_newline``; and for a file that parses as JSON also ``json_delete_key``,
``json_retype`` (a value replaced by null, a number, NaN, a 401-digit integer, a string with
blanks or a line break, a list, an object) and ``json_duplicate`` (a list element given twice).

Every case is seeded by ``"<seed>:<target>:<case>"`` (`case_seed`), so a failure prints what it
takes to replay it alone: the seed, the case number, the file and the mutation, the command line,
the captured output, and the mutated tree (kept on failure).

Usage:
    from espnet_sllm.testing.fuzz import FuzzTarget, run_campaign
    target = FuzzTarget("aishell2", aishell2.main,
                        argv=[lambda root, out: ["--root", root, "--out", out / "set"]])
    result = run_campaign(target, template_dir, work_dir, cases=30, seed=0)
    assert not result.failures, result.report()
    print(result.summary())   # aishell2: 30 cases: ERROR=13, exit 0=17; mutations: bom=4, ...

    # replay one case (what a failure prints):
    result = run_campaign(target, template_dir, work_dir, cases=1, seed=0, only=17)

    tests/data/corpora/test_fuzz_readers.py runs every reader this way; its environment
    variables: SLLM_FUZZ_CASES (cases per reader, default 30), SLLM_FUZZ_SEED (default 0),
    SLLM_FUZZ_CASE (replay this case number only).
"""
import contextlib
import io
import json
import logging
import os
import random
import shutil
import signal
import sys
import threading
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple

from espnet_sllm.data.kaldi_dir import validate_data_dir

# argv builder: (root of the case's tree, output folder) -> command line of the reader.
ArgvFn = Callable[[Path, Path], Sequence[Any]]

# Never mutated: audio, archives (the readers' text metadata is the target).
BINARY_SUFFIXES = (".wav", ".flac", ".mp3", ".opus", ".ogg", ".gz", ".tgz", ".tar", ".zip",
                   ".extracted")
# Inserted by odd_unicode (name, text).
ODD_CHARS = (
    ("NUL", "\x00"), ("U+FFFD", "\ufffd"), ("RLM", "\u200f"), ("RLO", "\u202e"),
    ("LRE", "\u202a"), ("combining acute", "\u0301"), ("combining ring", "\u030a"),
    ("full-width space", "\u3000"), ("no-break space", "\u00a0"), ("en space", "\u2002"),
    ("zero-width space", "\u200b"), ("ZWJ", "\u200d"), ("BOM", "\ufeff"),
    ("line separator", "\u2028"), ("paragraph separator", "\u2029"), ("NEL", "\x85"),
    ("vertical tab", "\x0b"), ("form feed", "\x0c"), ("file separator", "\x1c"),
    ("emoji", "\U0001F600"), ("emoji + skin tone", "\U0001F44D\U0001F3FD"),
    ("full-width letter", "\uff21"), ("Devanagari", "\u0915\u094d"),
)
# Inserted by invalid_utf8 (name, bytes), as surrogate escapes of the decoded text.
BAD_BYTES = (
    ("0xFF", b"\xff"), ("0xFE", b"\xfe"), ("cut 2-byte sequence", b"\xc3"),
    ("cut 3-byte sequence", b"\xe2\x82"), ("lone continuation byte", b"\x80"),
    ("encoded lone surrogate", b"\xed\xa0\x80"), ("overlong '/'", b"\xc0\xaf"),
    ("Latin-1 e-acute", b"\xe9"),
)
ODD_DIGITS = ("\uff11", "\u00b2", "\u0663", "\u096b")  # full-width 1, superscript 2, ٣, ५
JSON_ODD_VALUES = (None, True, 0, -1, 1.5, float("nan"), float("inf"), 10 ** 400, "", "   ",
                   "two words", "line\nbreak", "\u2028", [], {}, ["x"], {"k": "v"})


class FuzzTimeout(BaseException):
    """A case ran past its time limit (a BaseException, so no reader's handler swallows it)."""


@dataclass
class FuzzTarget:
    """One reader under fuzzing.

    Args:
        name: the reader (for messages and seeds).
        main: its command line entry point, ``main(argv) -> exit status``.
        argv: one or more builders ``(tree root, output folder) -> argv``; each case picks
            one (so that options such as ``--limited`` are fuzzed too).
        strict_share: fraction of the cases run with ``--strict true`` appended.
        files: keeps the text files (paths relative to the tree, ``/``-separated) that may be
            mutated; None: all.
        timeout_s: time limit of one run of ``main``.
    """

    name: str
    main: Callable[[List[str]], int]
    argv: Sequence[ArgvFn]
    strict_share: float = 0.25
    files: Optional[Callable[[str], bool]] = None
    timeout_s: float = 30.0


@dataclass
class Mutation:
    kind: str
    file: str  # relative to the tree
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} of {self.file}: {self.detail}"


@dataclass
class CaseResult:
    target: str
    index: int
    seed: str
    mutations: List[Mutation]
    argv: List[str]
    tree: Path
    status: Optional[int] = None  # exit status; None: an exception escaped main
    stdout: str = ""
    stderr: str = ""
    problems: List[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        if self.problems:
            return "FAILED"
        return {0: "exit 0", 1: "ERROR"}.get(self.status, f"exit {self.status}")

    def report(self, replay: str = "") -> str:
        """What failed, how to replay it, and the end of the output."""
        def tail(text: str) -> str:
            return "\n".join(text.rstrip("\n").split("\n")[-15:])

        return (
            f"--- {self.target} case {self.index} (seed {self.seed!r}): "
            f"{'; '.join(self.problems)}\n"
            f"    mutations: {'; '.join(map(str, self.mutations))}\n"
            f"    argv: {self.argv}\n"
            f"    tree (kept): {self.tree}\n"
            + (f"    replay: {replay}\n" if replay else "")
            + f"    stdout (end):\n{tail(self.stdout)}\n    stderr (end):\n{tail(self.stderr)}\n"
        )


@dataclass
class CampaignResult:
    target: str
    cases: List[CaseResult] = field(default_factory=list)

    @property
    def failures(self) -> List[CaseResult]:
        return [c for c in self.cases if c.problems]

    def summary(self) -> str:
        outcomes = Counter(c.outcome for c in self.cases)
        kinds = Counter(m.kind for c in self.cases for m in c.mutations)
        return (f"{self.target}: {len(self.cases)} cases: "
                + ", ".join(f"{k}={n}" for k, n in sorted(outcomes.items()))
                + "; mutations: " + ", ".join(f"{k}={n}" for k, n in sorted(kinds.items())))

    def report(self, replay: Callable[[CaseResult], str] = lambda c: "") -> str:
        return "\n".join(c.report(replay(c)) for c in self.failures) + "\n" + self.summary()


def case_seed(seed: int, target: str, index: int) -> str:
    """The seed of one case (a string: `random.Random` hashes it the same in every run)."""
    return f"{seed}:{target}:{index}"


# ---------------------------------------------------------------------------------------------
# Mutations.  The text mutations work on the file decoded as UTF-8 with surrogate escapes (so a
# file that already holds bad bytes keeps them), line ends kept.

def _lines(text: str) -> List[str]:
    """Lines with their ends; only LF ends a line (as for the readers' binary reads)."""
    parts = text.split("\n")
    return [x + "\n" for x in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _split_line(line: str) -> Tuple[str, str]:
    """(body, line end)."""
    body = line.rstrip("\r\n")
    return body, line[len(body):]


def _content_lines(lines: List[str]) -> List[int]:
    return [i for i, x in enumerate(lines) if x.strip()]


def _separator(body: str) -> Optional[str]:
    for sep in ("\t", "|", ","):
        if sep in body:
            return sep
    return " " if " " in body.strip() else None


def _position(rng: random.Random, body: str) -> int:
    """Where to insert into a line: half the time next to a separator or at an end, where
    fields begin and end; otherwise anywhere."""
    if rng.random() < 0.5:
        cands = [0, len(body)] + [i for i, c in enumerate(body) if c in "\t|, "] + \
                [i + 1 for i, c in enumerate(body) if c in "\t|, "]
        return rng.choice(cands)
    return rng.randint(0, len(body))


def _pick_line(rng: random.Random, lines: List[str]) -> Optional[int]:
    cands = _content_lines(lines)
    return rng.choice(cands) if cands else None


def _mut_delete_field(rng, text):
    lines = _lines(text)
    cands = [i for i in _content_lines(lines) if _separator(_split_line(lines[i])[0])]
    if not cands:
        return None
    i = rng.choice(cands)
    body, end = _split_line(lines[i])
    sep = _separator(body)
    fields = body.split(sep)
    k = rng.randrange(len(fields))
    del fields[k]
    lines[i] = sep.join(fields) + end
    return "".join(lines), f"line {i + 1}: field {k + 1} of {len(fields) + 1} ({sep!r}) deleted"


def _mut_extra_field(rng, text):
    lines = _lines(text)
    i = _pick_line(rng, lines)
    if i is None:
        return None
    body, end = _split_line(lines[i])
    extra = rng.choice(["\t", "\tEXTRA", "\textra field", "\t\t"])
    pos = _position(rng, body)
    lines[i] = body[:pos] + extra + body[pos:] + end
    return "".join(lines), f"line {i + 1}: {extra!r} inserted at character {pos}"


def _mut_crlf(rng, text):
    lines = _lines(text)
    mode = rng.choice(["all", "some", "lone CR"])
    if mode == "lone CR":
        i = _pick_line(rng, lines)
        if i is None:
            return None
        body, end = _split_line(lines[i])
        pos = _position(rng, body)
        lines[i] = body[:pos] + "\r" + body[pos:] + end
        return "".join(lines), f"line {i + 1}: a lone CR inserted at character {pos}"
    chosen = [i for i in range(len(lines)) if lines[i].endswith("\n")
              and not lines[i].endswith("\r\n") and (mode == "all" or rng.random() < 0.5)]
    if not chosen:
        return None
    for i in chosen:
        lines[i] = lines[i][:-1] + "\r\n"
    return "".join(lines), f"CRLF on {mode} lines ({len(chosen)})"


def _insert(rng, text, name, chars):
    lines = _lines(text)
    i = _pick_line(rng, lines)
    if i is None:
        return None
    body, end = _split_line(lines[i])
    pos = _position(rng, body)
    lines[i] = body[:pos] + chars + body[pos:] + end
    return "".join(lines), f"line {i + 1}: {name} inserted at character {pos}"


def _mut_odd_unicode(rng, text):
    name, chars = rng.choice(ODD_CHARS)
    return _insert(rng, text, f"{name} ({chars!r})", chars)


def _mut_invalid_utf8(rng, text):
    name, raw = rng.choice(BAD_BYTES)
    return _insert(rng, text, f"{name} ({raw!r})", raw.decode("utf-8", "surrogateescape"))


def _mut_odd_digits(rng, text):
    where = [i for i, c in enumerate(text) if c in "0123456789"]
    if not where:
        return None
    i = rng.choice(where)
    d = rng.choice(ODD_DIGITS)
    line = text.count("\n", 0, i) + 1
    return text[:i] + d + text[i + 1:], f"line {line}: digit {text[i]!r} replaced by {d!r}"


def _mut_duplicate_line(rng, text):
    lines = _lines(text)
    i = _pick_line(rng, lines)
    if i is None:
        return None
    line = lines[i] if lines[i].endswith("\n") else lines[i] + "\n"
    j = rng.choice([i + 1, rng.randint(0, len(lines))])
    if not lines[-1].endswith("\n") and j == len(lines):
        lines[-1] += "\n"
    lines.insert(j, line)
    return "".join(lines), f"line {i + 1} given again as line {j + 1}"


def _mut_delete_line(rng, text):
    lines = _lines(text)
    i = _pick_line(rng, lines)
    if i is None:
        return None
    del lines[i]
    return "".join(lines), f"line {i + 1} deleted"


def _mut_swap_lines(rng, text):
    lines = _lines(text)
    cands = _content_lines(lines)
    if len(cands) < 2:
        return None
    i, j = sorted(rng.sample(cands, 2))
    bi, ei = _split_line(lines[i])
    bj, ej = _split_line(lines[j])
    lines[i], lines[j] = bj + ei, bi + ej
    return "".join(lines), f"lines {i + 1} and {j + 1} swapped"


def _mut_blank_line(rng, text):
    lines = _lines(text)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    blank = rng.choice(["\n", "  \n", "\t\n", " \t \n", "\u3000\n"])
    j = rng.randint(0, len(lines))
    lines.insert(j, blank)
    return "".join(lines), f"{blank!r} inserted as line {j + 1}"


def _mut_no_final_newline(rng, text):
    if not text.endswith("\n"):
        return None
    return text.rstrip("\r\n"), "line ends removed at the end of the file"


# Byte-level mutations: (data) -> (data, detail) or None.

def _mut_bom(rng, data):
    return b"\xef\xbb\xbf" + data, "UTF-8 BOM prepended" + (
        " (a second one)" if data.startswith(b"\xef\xbb\xbf") else "")


def _mut_empty(rng, data):
    if not data:
        return None
    return b"", f"emptied ({len(data)} bytes before)"


def _mut_truncate(rng, data):
    # Offsets inside a line (not right after a line break), possibly inside a UTF-8 sequence.
    cands = [i for i in range(1, len(data)) if data[i - 1:i] != b"\n"]
    if not cands:
        return None
    i = rng.choice(cands)
    line = data.count(b"\n", 0, i) + 1
    return data[:i], f"cut at byte {i} of {len(data)} (inside line {line})"


# JSON mutations: (obj) -> detail or None (obj is changed in place).

def _json_slots(obj, path="$"):
    """(container, key or index, path) of every value below ``obj``."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((obj, k, f"{path}.{k}"))
            out.extend(_json_slots(v, f"{path}.{k}"))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.append((obj, i, f"{path}[{i}]"))
            out.extend(_json_slots(v, f"{path}[{i}]"))
    return out


def _mut_json_delete_key(rng, obj):
    slots = [s for s in _json_slots(obj) if isinstance(s[0], dict)]
    if not slots:
        return None
    container, key, path = rng.choice(slots)
    del container[key]
    return f"{path} deleted"


def _mut_json_retype(rng, obj):
    slots = _json_slots(obj)
    leaves = [s for s in slots if not isinstance(s[0][s[1]], (dict, list))]
    if not slots:
        return None
    # Mostly a scalar (a time, an id, a text), where the readers' type checks are.
    container, key, path = rng.choice(leaves if leaves and rng.random() < 0.75 else slots)
    value = rng.choice(JSON_ODD_VALUES)
    value = json.loads(json.dumps(value))  # a fresh copy of lists / objects
    container[key] = value
    shown = repr(value) if not isinstance(value, int) or abs(value) < 10 ** 20 else \
        f"a {len(str(value))}-digit integer"
    return f"{path} = {shown}"


def _mut_json_duplicate(rng, obj):
    slots = [s for s in _json_slots(obj) if isinstance(s[0], list)]
    if not slots:
        return None
    container, index, path = rng.choice(slots)
    container.insert(index + 1, json.loads(json.dumps(container[index])))
    return f"{path} given twice"


TEXT_MUTATIONS = {
    "delete_field": _mut_delete_field, "extra_field": _mut_extra_field, "crlf": _mut_crlf,
    "odd_unicode": _mut_odd_unicode, "invalid_utf8": _mut_invalid_utf8,
    "odd_digits": _mut_odd_digits, "duplicate_line": _mut_duplicate_line,
    "delete_line": _mut_delete_line, "swap_lines": _mut_swap_lines,
    "blank_line": _mut_blank_line, "no_final_newline": _mut_no_final_newline,
}
BYTE_MUTATIONS = {"bom": _mut_bom, "empty": _mut_empty, "truncate": _mut_truncate}
JSON_MUTATIONS = {"json_delete_key": _mut_json_delete_key, "json_retype": _mut_json_retype,
                  "json_duplicate": _mut_json_duplicate}
MUTATIONS = tuple(TEXT_MUTATIONS) + tuple(BYTE_MUTATIONS) + tuple(JSON_MUTATIONS)


def text_files(tree: Path) -> List[str]:
    """The files of ``tree`` that may be mutated (relative, ``/``-separated, sorted): not
    audio or archives (`BINARY_SUFFIXES`), without NUL bytes, and UTF-8 (a BOM allowed)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.lower().endswith(BINARY_SUFFIXES) or path.is_symlink():
                continue
            data = path.read_bytes()
            if b"\x00" in data:
                continue
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            out.append(path.relative_to(tree).as_posix())
    return out


def _as_json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except ValueError:
        return None


def mutate_file(rng: random.Random, path: Path, rel: str) -> Mutation:
    """Apply one random mutation to the file ``path`` (``rel``: its name in messages)."""
    data = path.read_bytes()
    obj = _as_json(data) if rel.lower().endswith(".json") else None
    kinds = list(TEXT_MUTATIONS) + list(BYTE_MUTATIONS)
    if isinstance(obj, (dict, list)) and rng.random() < 0.5:
        kinds = list(JSON_MUTATIONS)
    rng.shuffle(kinds)
    for kind in kinds:  # the first one that applies to this file
        if kind in BYTE_MUTATIONS:
            done = BYTE_MUTATIONS[kind](rng, data)
            if done is None:
                continue
            new, detail = done
        elif kind in JSON_MUTATIONS:
            detail = JSON_MUTATIONS[kind](rng, obj)
            if detail is None:
                continue
            new = json.dumps(obj, ensure_ascii=False, indent=1).encode("utf-8", "surrogatepass")
        else:
            done = TEXT_MUTATIONS[kind](rng, data.decode("utf-8", "surrogateescape"))
            if done is None:
                continue
            text, detail = done
            new = text.encode("utf-8", "surrogateescape")
        path.write_bytes(new)
        return Mutation(kind, rel, detail)
    # An empty file: only the BOM applies... and it always does, so this is never reached.
    raise AssertionError(f"no mutation applies to {rel}")  # pragma: no cover


# ---------------------------------------------------------------------------------------------
# Running a reader in-process and checking what it did.

class _ErrorSpy(io.StringIO):
    """A captured stderr that also records the exception being handled when ``ERROR:`` is
    written (`run_main` prints it inside its ``except``), to tell a reader's own error from one
    that escaped from elsewhere (Python's int(), the data directory writer, ...)."""

    error: Optional[BaseException] = None

    def write(self, s: str) -> int:
        if s.startswith("ERROR:") and self.error is None:
            self.error = sys.exc_info()[1]
        return super().write(s)


def _clean_error_types() -> Tuple[type, ...]:
    """What a reader's ``ERROR:`` may come from: its own `ReaderError` (naming ``file:line``),
    a file that is missing or unreadable (OSError) and an audio header soundfile cannot read."""
    from espnet_sllm.data.corpora.reader_utils import ReaderError, _error_types

    return (ReaderError,) + tuple(t for t in _error_types() if t is not ValueError)


@contextlib.contextmanager
def _time_limit(seconds: float):
    if seconds <= 0 or threading.current_thread() is not threading.main_thread() \
            or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum, frame):
        raise FuzzTimeout(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_in_process(main: Callable[[List[str]], int], argv: List[str],
                   timeout_s: float = 30.0
                   ) -> Tuple[Optional[int], str, str, str, Optional[BaseException]]:
    """Run ``main(argv)`` with stdout, stderr and the log (INFO and up) captured.

    Returns (exit status or None, stdout, stderr with the log, the traceback of an exception
    that escaped ``main`` or "", the exception behind the ``ERROR:`` line or None).  A
    ``SystemExit`` is an escape too: a reader's main returns its status."""
    out, err = io.StringIO(), _ErrorSpy()
    root = logging.getLogger()
    handler = logging.StreamHandler(err)
    # "log ...": a logged error never passes for the ERROR line of run_main.
    handler.setFormatter(logging.Formatter("log %(levelname)s: %(message)s"))
    # The root logger's handlers are set aside for the run (a handler that an earlier
    # logging.basicConfig bound to a stream closed since would print a logging traceback);
    # with ours in place, run_main's logging.basicConfig leaves the root alone.
    old_level, old_handlers = root.level, root.handlers[:]
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    status: Optional[int] = None
    escaped = ""
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                _time_limit(timeout_s):
            status = main(list(argv))
    except FuzzTimeout as e:
        escaped = f"hang: {e}\n" + "".join(traceback.format_tb(e.__traceback__)[-3:])
    except BaseException as e:  # noqa: B902 - everything that escapes main is a crash
        if isinstance(e, KeyboardInterrupt):
            raise
        escaped = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    finally:
        root.handlers[:] = old_handlers
        root.setLevel(old_level)
    return status, out.getvalue(), err.getvalue(), escaped, err.error


def data_dirs(out: Path) -> List[Path]:
    """Folders below ``out`` (itself included) that hold a Kaldi data directory file."""
    found = []
    if not out.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(out):
        dirnames.sort()
        if {"utt2spk", "spk2utt", "wav.scp", "text", "segments"} & set(filenames):
            found.append(Path(dirpath))
    return found


def check_run(status: Optional[int], stdout: str, stderr: str, escaped: str, out: Path,
              error: Optional[BaseException] = None) -> List[str]:
    """What the run did against the contract (module docstring); [] when it kept it."""
    problems = []
    if escaped:
        last = escaped.rstrip("\n").split("\n")[-1]
        problems.append(f"exception escaped main: {last}")
    for name, text in (("stderr", stderr), ("stdout", stdout)):
        if "Traceback" in text:
            problems.append(f"'Traceback' in {name}")
    if status == 0:
        if "rows=" not in stdout:
            problems.append("exit 0 without the counts (rows=...) on stdout")
        if not data_dirs(out):
            problems.append("exit 0 but no data directory written")
    elif status == 1:
        lines = stderr.rstrip("\n").split("\n")
        last = lines[-1]
        errors = [x for x in lines if x.startswith("ERROR:")]
        if not last.startswith("ERROR:"):
            problems.append(f"exit 1 but the last line of stderr is not 'ERROR: ...': {last!r}")
        elif len(errors) != 1:
            problems.append(f"{len(errors)} 'ERROR:' lines")
        elif len(last.splitlines()) != 1:  # a CR, U+2028, ... from the input, unescaped
            problems.append(f"line break inside the ERROR line: {last!r}")
        elif error is not None and not isinstance(error, _clean_error_types()):
            tb = traceback.extract_tb(error.__traceback__)
            at = f" raised at {tb[-1].filename}:{tb[-1].lineno} ({tb[-1].name})" if tb else ""
            problems.append(f"ERROR from a {type(error).__name__}{at}, not a ReaderError "
                            f"naming file:line (bad input got past the reader): {last!r}")
    elif status is not None:
        problems.append(f"exit status {status!r} (expected 0 or 1)")
    for d in data_dirs(out):
        try:
            validate_data_dir(d)
        except Exception as e:  # noqa: B902 - any failure of validation is one
            problems.append(f"written data directory fails validation: {e}")
    return problems


def run_case(target: FuzzTarget, template: Path, work_dir: Path, index: int,
             seed: int = 0) -> CaseResult:
    """Run case ``index`` of ``target``: copy ``template`` into ``work_dir/<target>-<index>``,
    mutate it, run the reader, check.  The case folder is removed when the case passes."""
    cseed = case_seed(seed, target.name, index)
    rng = random.Random(cseed)
    case_dir = Path(work_dir) / f"{target.name}-{index}"
    if case_dir.exists():
        shutil.rmtree(case_dir)
    tree, out = case_dir / "tree", case_dir / "out"
    shutil.copytree(template, tree, symlinks=True)
    files = [f for f in text_files(tree) if target.files is None or target.files(f)]
    if not files:
        raise ValueError(f"{template}: no text file to mutate for {target.name}")
    mutations = []
    for _ in range(2 if rng.random() < 0.2 else 1):
        rel = rng.choice(files)
        mutations.append(mutate_file(rng, tree / rel, rel))
    argv = [str(a) for a in rng.choice(list(target.argv))(tree, out)]
    if rng.random() < target.strict_share:
        argv += ["--strict", "true"]
    status, stdout, stderr, escaped, error = run_in_process(target.main, argv,
                                                            target.timeout_s)
    result = CaseResult(target.name, index, cseed, mutations, argv, tree, status, stdout,
                        stderr + (f"\n{escaped}" if escaped else ""))
    result.problems = check_run(status, stdout, stderr, escaped, out, error)
    if not result.problems:
        shutil.rmtree(case_dir, ignore_errors=True)
    return result


def run_campaign(target: FuzzTarget, template: Path, work_dir: Path, cases: int = 30,
                 seed: int = 0, only: Optional[int] = None) -> CampaignResult:
    """Run cases ``0 .. cases-1`` of ``target`` (or case ``only`` alone) on copies of the tree
    ``template`` (left untouched), in ``work_dir``."""
    result = CampaignResult(target.name)
    for index in ([only] if only is not None else range(cases)):
        result.cases.append(run_case(target, Path(template), Path(work_dir), index, seed))
    return result


def check_baseline(target: FuzzTarget, template: Path, work_dir: Path) -> CaseResult:
    """Run every argv variant of ``target`` on an unchanged copy of ``template``; each must
    exit 0 and keep the contract (else the fuzzing would test the error path only)."""
    case_dir = Path(work_dir) / f"{target.name}-baseline"
    result = CaseResult(target.name, -1, "baseline", [], [], case_dir / "tree")
    for k, make_argv in enumerate(target.argv):
        if case_dir.exists():
            shutil.rmtree(case_dir)
        shutil.copytree(template, case_dir / "tree", symlinks=True)
        out = case_dir / "out"
        argv = [str(a) for a in make_argv(case_dir / "tree", out)]
        status, stdout, stderr, escaped, error = run_in_process(target.main, argv,
                                                                target.timeout_s)
        result.argv, result.status, result.stdout, result.stderr = argv, status, stdout, stderr
        result.problems = check_run(status, stdout, stderr, escaped, out, error)
        if status != 0:
            result.problems.append(f"argv variant {k}: the unchanged tree does not exit 0")
        if result.problems:
            return result
    shutil.rmtree(case_dir, ignore_errors=True)
    return result


__all__ = ["FuzzTarget", "Mutation", "CaseResult", "CampaignResult", "MUTATIONS", "case_seed",
           "text_files", "mutate_file", "run_in_process", "check_run", "run_case",
           "run_campaign", "check_baseline", "data_dirs"]


if __name__ == "__main__":  # pragma: no cover - a library module
    sys.exit("espnet_sllm.testing.fuzz is a library; see its docstring")
