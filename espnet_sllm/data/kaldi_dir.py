"""Reading, writing and checking Kaldi-style data directories.

A data directory holds one utterance per line in several "key value" files (DESIGN.md §4):

=============  ==============================================================
file           line
=============  ==============================================================
wav.scp        ``<uttid> <wav path>``, or ``<recid> <wav path>`` with segments
segments       ``<uttid> <recid> <start sec> <end sec>`` (optional)
text           ``<uttid> <transcript>`` (optional: evaluation sets may lack it)
utt2spk        ``<uttid> <spkid>``
spk2utt        ``<spkid> <uttid> <uttid> ...``
utt2lang       ``<uttid> <language label>``, e.g. ``English-American``, ``Japanese``
utt2task       ``<uttid> asr|st|sqa|qa``
text_prev      ``<uttid> <text of the previous utterance of the same recording>``
text_next      ``<uttid> <text of the next utterance of the same recording>``
text_src       ``<uttid> <source transcript>`` (speech translation)
text_tgt       ``<uttid> <translation>`` (speech translation)
utt2subdialect ``<uttid> <dialect label>``, e.g. ``Southwestern`` (KeSpeech)
=============  ==============================================================

A *text-only* directory (e.g. WMT19 or Alpaca-zh before the TTS stage gives it speech) has no
``wav.scp`` and no ``segments``, but a ``text``; every other rule is the same.

A *text-only utterance* inside a directory with audio (text QA trained beside speech tasks, see
``preprocessor_conf.text_only_tasks``) has an empty ``wav.scp`` entry: the line is just its
utterance id (``Utterance.wav == ""``). Stage 2 (``format_data``) writes a WAV of 0 samples for
it. Such utterances cannot come with ``segments`` (a segment of an empty recording is an error
naming ``segments:line``): keep them in a directory without segments.

Rules enforced here (the ones Kaldi's and ESPnet's tools rely on):

* every file is sorted by key in C-locale order; Python's ``str`` ordering compares code
  points, which for UTF-8 text is the same order as ``LC_ALL=C sort`` (byte order);
* keys are unique and contain no whitespace; a value may contain spaces or be empty;
* all per-utterance files share one key set; ``spk2utt`` is the exact inverse of ``utt2spk``;
* along the sorted utterance ids the speaker ids never decrease, so that sorting ``utt2spk``
  by utterance and ``spk2utt`` by speaker give the same grouping.  The simple way to satisfy
  this is to prefix every utterance id with its speaker id.

`validate_data_dir` / `read_data_dir` refuse a directory that breaks a rule (naming file:line);
`fix_data_dir` (stage 2's reader) repairs what Kaldi's ``utils/fix_data_dir.sh`` repairs
(sorting, the intersection of the per-utterance files, ``spk2utt``) and reports every utterance it
drops with a named reason. Every reader names ``file:line`` for a line that is not UTF-8.

Usage:
    python -m espnet_sllm.data.kaldi_dir validate data/dev [data/train ...]
    python -m espnet_sllm.data.kaldi_dir combine --out data/train data/train_1 data/train_2 \\
        [--drop text_prev text_next]

    from espnet_sllm.data.kaldi_dir import Segment, Utterance, write_data_dir, validate_data_dir
    utts = [Utterance("spk1-utt1", "/abs/a.wav", spk="spk1", text="hello", lang="English-American")]
    write_data_dir("data/dev", utts)
    validate_data_dir("data/dev")
    fixed = fix_data_dir("data/dev")   # fixed.utts, fixed.dropped [(uttid, reason, detail)]
"""
import argparse
import logging
import os
import re
import sys
from dataclasses import dataclass, fields
from typing import Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Tuple, Union

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

# A key is one whitespace-free token at the very start of the line; the value is everything
# after the first run of blanks, kept verbatim (transcripts may hold several spaces).
_LINE_RE = re.compile(r"^(\S+)(?:[ \t]+(.*))?$")

# Optional per-utterance fields of `Utterance` and the file each one is written to.
OPTIONAL_FILES: Dict[str, str] = {
    "text": "text",
    "lang": "utt2lang",
    "task": "utt2task",
    "text_prev": "text_prev",
    "text_next": "text_next",
    "text_src": "text_src",
    "text_tgt": "text_tgt",
    "subdialect": "utt2subdialect",
}


class Segment(NamedTuple):
    """Where an utterance lies inside a longer recording (seconds)."""

    recid: str
    start: float
    end: float


@dataclass
class Utterance:
    """One utterance of a data directory.

    Args:
        uttid: utterance id, should start with ``spk`` (see the module docstring).
        wav: path of the audio file; with ``segment`` it is the path of the whole recording.
            None for every utterance of a text-only directory (no wav.scp); ``""`` (an empty
            wav.scp entry) for a text-only utterance beside others with audio.
        spk: speaker id; None means "unknown", and the utterance becomes its own speaker.
        text, lang, task, text_prev, text_next, text_src, text_tgt, subdialect: optional
            fields; within one data directory a field is either given for every utterance or
            for none.
        segment: (recid, start, end) when the utterance is cut out of a longer recording.
    """

    uttid: str
    wav: Optional[str]
    spk: Optional[str] = None
    text: Optional[str] = None
    lang: Optional[str] = None
    segment: Optional[Segment] = None
    task: Optional[str] = None
    text_prev: Optional[str] = None
    text_next: Optional[str] = None
    text_src: Optional[str] = None
    text_tgt: Optional[str] = None
    subdialect: Optional[str] = None

    @property
    def speaker(self) -> str:
        return self.spk if self.spk is not None else self.uttid


def _raw_lines(path: PathLike) -> Iterator[Tuple[int, bytes]]:
    """``(lineno, bytes)`` of every line without its break, split as Python's text mode
    splits (at ``\\n``, ``\\r\\n`` and a lone ``\\r``), read as a stream."""
    lineno = 0
    with open(path, "rb") as f:
        for chunk in f:
            if chunk.endswith(b"\n"):
                chunk = chunk[:-1]
            if chunk.endswith(b"\r"):  # of "\r\n", or a lone "\r" ending the file
                chunk = chunk[:-1]
            for raw in chunk.split(b"\r") if b"\r" in chunk else (chunk,):
                lineno += 1
                yield lineno, raw


def _not_utf8(path: PathLike, lineno: int, raw: bytes, e: UnicodeDecodeError) -> str:
    return (f"{path}:{lineno}: not UTF-8 (byte {raw[e.start]:#04x} at byte {e.start + 1} of "
            f"the line: {raw[:60]!r})")


def read_kv(path: PathLike, bad_lines: Optional[List[Tuple[int, str]]] = None
            ) -> Dict[str, str]:
    """Read a ``key value...`` file into an insertion-ordered dict.

    The value is the rest of the line after the first blanks; it may contain spaces or be
    empty (``key`` alone on its line).  Raises ValueError naming ``file:line`` for a line
    without a key (blank or starting with a blank), for a repeated key (and the line of its
    first occurrence) and for a line whose bytes are not UTF-8.  With a list ``bad_lines``,
    a line that is not UTF-8 is left out and ``(lineno, key)`` appended to it instead (the key
    decoded with backslash escapes where it is not UTF-8 itself).
    """
    return {k: v for k, (v, _) in read_kv_numbered(path, bad_lines).items()}


def read_kv_numbered(path: PathLike, bad_lines: Optional[List[Tuple[int, str]]] = None
                     ) -> Dict[str, Tuple[str, int]]:
    """`read_kv` with the line number of every entry: ``{key: (value, lineno)}``."""
    out: Dict[str, Tuple[str, int]] = {}
    for lineno, raw in _raw_lines(path):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            if bad_lines is None:
                raise ValueError(_not_utf8(path, lineno, raw, e)) from None
            key = raw.split(None, 1)[0].decode("utf-8", "backslashreplace") if raw.strip() \
                else ""
            bad_lines.append((lineno, key))
            continue
        m = _LINE_RE.match(line)
        if m is None:
            raise ValueError(
                f"{path}:{lineno}: no key on this line ({line!r}); every line must start "
                f"with a key without leading blanks"
            )
        key, value = m.group(1), m.group(2) or ""
        if key in out:
            raise ValueError(
                f"{path}:{lineno}: duplicate key {key!r} (first seen on line {out[key][1]})"
            )
        out[key] = (value, lineno)
    return out


def _check_key(key: str, path: PathLike) -> None:
    if not isinstance(key, str) or not key or any(c.isspace() for c in key):
        raise ValueError(f"{path}: invalid key {key!r}: keys must be non-empty without whitespace")


def write_kv(path: PathLike, items: Mapping[str, str]) -> None:
    """Write ``key value`` lines sorted by key (C-locale order); empty values give ``key``.

    A file whose bytes would not change is not rewritten (its mtime is kept)."""
    lines = []
    for key in sorted(items):
        _check_key(key, path)
        value = items[key]
        if not isinstance(value, str):
            raise TypeError(f"{path}: value of {key!r} must be str, got {type(value).__name__}")
        if "\n" in value or "\r" in value:
            # A newline inside a value would silently split one entry into two lines.
            raise ValueError(f"{path}: value of {key!r} contains a line break: {value!r}")
        lines.append(f"{key} {value}\n" if value else f"{key}\n")
    data = "".join(lines).encode("utf-8")
    # A file that already holds exactly this content is left untouched: the recipes' stage
    # stamps compare sizes and mtimes, so rewriting identical content (e.g. stage 1 re-run with
    # other options) would make every later stage run again.
    try:
        if os.path.getsize(path) == len(data):
            with open(path, "rb") as f:
                if f.read() == data:
                    return
    except OSError:
        pass
    # Write to a temporary name first so that an interrupted run never leaves half a file
    # that a later stage would take for a complete one.
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _fmt_time(t: float) -> str:
    # At least centiseconds (the usual Kaldi look), more digits only when the time has them,
    # so that no precision of the annotation is lost.
    s = f"{t:.6f}".rstrip("0")
    whole, _, frac = s.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def _as_utterance(u: Union[Utterance, Mapping]) -> Utterance:
    if isinstance(u, Utterance):
        return u
    if isinstance(u, Mapping):
        d = dict(u)
        if d.get("segment") is not None:
            d["segment"] = Segment(*d["segment"])
        return Utterance(**d)
    raise TypeError(f"expected Utterance or mapping, got {type(u).__name__}")


def write_data_dir(data_dir: PathLike, utts: Iterable[Union[Utterance, Mapping]]) -> None:
    """Write a data directory from utterance records (``Utterance`` or equivalent dicts).

    Writes wav.scp (keyed by recording id when the utterances have segments), segments,
    utt2spk, spk2utt, and one file per optional field that the utterances carry
    (``OPTIONAL_FILES``).  Optional files of this list that are NOT written are removed, so
    that re-writing a directory never leaves a stale file of an earlier run behind.
    The result is checked with `validate_data_dir`.
    """
    data_dir = os.fspath(data_dir)
    utts = [_as_utterance(u) for u in utts]
    if not utts:
        raise ValueError(f"{data_dir}: refusing to write a data directory without utterances")

    seen: Dict[str, Utterance] = {}
    for u in utts:
        _check_key(u.uttid, data_dir)
        if u.uttid in seen:
            raise ValueError(f"{data_dir}: duplicate utterance id {u.uttid!r}")
        seen[u.uttid] = u

    no_wav = [u.uttid for u in utts if u.wav is None]
    text_only = bool(no_wav)
    if text_only and len(no_wav) != len(utts):
        raise ValueError(
            f"{data_dir}: {len(no_wav)} of {len(utts)} utterances have no wav; a data directory "
            f"is text-only (no wav at all) or has a wav for every utterance (e.g. {no_wav[0]!r} "
            f"has none)"
        )
    if text_only:
        if any(u.segment is not None for u in utts):
            raise ValueError(f"{data_dir}: a text-only directory (no wav) cannot have segments")
        if any(u.text is None for u in utts):
            raise ValueError(f"{data_dir}: a text-only directory (no wav) needs a text for "
                             f"every utterance")

    with_seg = [u for u in utts if u.segment is not None]
    if with_seg and len(with_seg) != len(utts):
        missing = next(u.uttid for u in utts if u.segment is None)
        raise ValueError(
            f"{data_dir}: {len(with_seg)} of {len(utts)} utterances have a segment; a data "
            f"directory needs segments for all or none (e.g. {missing!r} has none)"
        )

    wav_scp: Dict[str, str] = {}
    segments: Dict[str, str] = {}
    for u in utts:
        if text_only:
            continue
        key = u.uttid
        if u.segment is not None:
            recid, start, end = u.segment
            _check_key(recid, data_dir)
            if not (0 <= start < end):
                raise ValueError(
                    f"{data_dir}: utterance {u.uttid!r}: bad segment times {start}..{end}"
                )
            if not u.wav.strip():
                raise ValueError(
                    f"{data_dir}: utterance {u.uttid!r}: a segment of recording {recid!r} whose "
                    f"wav is empty (a text-only utterance has no segment)"
                )
            segments[u.uttid] = f"{recid} {_fmt_time(start)} {_fmt_time(end)}"
            key = recid
        if any(c in u.wav for c in "\r\n"):
            raise ValueError(f"{data_dir}: utterance {u.uttid!r}: line break in wav {u.wav!r}")
        if wav_scp.get(key, u.wav) != u.wav:
            raise ValueError(
                f"{data_dir}: recording {key!r} points to two wav files: "
                f"{wav_scp[key]!r} and {u.wav!r}"
            )
        wav_scp[key] = u.wav

    utt2spk = {u.uttid: u.speaker for u in utts}
    spk2utts: Dict[str, List[str]] = {}
    for utt in sorted(utt2spk):
        spk2utts.setdefault(utt2spk[utt], []).append(utt)
    _check_speaker_order(utt2spk, data_dir)

    optional: Dict[str, Dict[str, str]] = {}
    for field_name, fname in OPTIONAL_FILES.items():
        have = {u.uttid: getattr(u, field_name) for u in utts if getattr(u, field_name) is not None}
        if not have:
            continue
        if len(have) != len(utts):
            missing = next(u.uttid for u in utts if getattr(u, field_name) is None)
            raise ValueError(
                f"{data_dir}: field {field_name!r} ({fname}) is set for {len(have)} of "
                f"{len(utts)} utterances; give it for all or none (e.g. {missing!r} has none)"
            )
        optional[fname] = have

    os.makedirs(data_dir, exist_ok=True)
    wav_path = os.path.join(data_dir, "wav.scp")
    if text_only:
        if os.path.exists(wav_path):
            os.remove(wav_path)
    else:
        write_kv(wav_path, wav_scp)
    seg_path = os.path.join(data_dir, "segments")
    if segments:
        write_kv(seg_path, segments)
    elif os.path.exists(seg_path):
        os.remove(seg_path)
    write_kv(os.path.join(data_dir, "utt2spk"), utt2spk)
    write_kv(os.path.join(data_dir, "spk2utt"), {s: " ".join(us) for s, us in spk2utts.items()})
    for fname in OPTIONAL_FILES.values():
        path = os.path.join(data_dir, fname)
        if fname in optional:
            write_kv(path, optional[fname])
        elif os.path.exists(path):
            os.remove(path)
    validate_data_dir(data_dir)
    logger.info("wrote %s: %d utterances, %d speakers%s", data_dir, len(utts), len(spk2utts),
                " (text only)" if text_only else "")


def _check_speaker_order(utt2spk: Mapping[str, str], where: str) -> None:
    prev_utt = prev_spk = None
    for utt in sorted(utt2spk):
        spk = utt2spk[utt]
        if prev_spk is not None and spk < prev_spk:
            raise ValueError(
                f"{where}: utterance ids and speaker ids sort differently: {prev_utt!r} "
                f"(speaker {prev_spk!r}) sorts before {utt!r} (speaker {spk!r}); prefix every "
                f"utterance id with its speaker id (Kaldi rule)"
            )
        prev_utt, prev_spk = utt, spk


def _read_sorted(path: str) -> Dict[str, str]:
    d = read_kv(path)
    prev = None
    for lineno, key in enumerate(d, 1):
        if prev is not None and key < prev:
            raise ValueError(
                f"{path}:{lineno}: not sorted: {key!r} comes after {prev!r} "
                f"(sort with LC_ALL=C, or re-write with write_kv)"
            )
        prev = key
    return d


def _compare_keys(name: str, keys: Iterable[str], ref_name: str, ref: Iterable[str]) -> None:
    keys, ref = set(keys), set(ref)
    if keys == ref:
        return
    missing, extra = sorted(ref - keys), sorted(keys - ref)
    parts = []
    if missing:
        parts.append(f"{len(missing)} keys of {ref_name} missing (e.g. {missing[0]!r})")
    if extra:
        parts.append(f"{len(extra)} keys not in {ref_name} (e.g. {extra[0]!r})")
    raise ValueError(f"{name}: key set differs from {ref_name}: " + "; ".join(parts))


def _parse_time(path: str, key: str, s: str) -> float:
    try:
        return float(s)
    except ValueError:
        raise ValueError(f"{path}: {key}: time {s!r} is not a number") from None


def validate_data_dir(data_dir: PathLike) -> Dict[str, int]:
    """Check a data directory; raise ValueError naming the file (and line) of the first problem.

    A directory without ``wav.scp`` is accepted as text-only when it has a ``text`` (and no
    ``segments``); its count of recordings is 0. An empty ``wav.scp`` entry is a text-only
    utterance (counted as a recording); a ``segments`` line that points to one is an error.

    Returns counts ``{"utterances", "speakers", "recordings"}``.
    """
    data_dir = os.fspath(data_dir)

    def p(name: str) -> str:
        return os.path.join(data_dir, name)

    for name in ("utt2spk", "spk2utt"):
        if not os.path.isfile(p(name)):
            raise ValueError(f"{data_dir}: missing {name}")
    text_only = not os.path.isfile(p("wav.scp"))
    if text_only and (not os.path.isfile(p("text")) or os.path.isfile(p("segments"))):
        raise ValueError(f"{data_dir}: missing wav.scp (only a text-only directory, with a text "
                         f"and without segments, may lack it)")

    utt2spk = _read_sorted(p("utt2spk"))
    if not utt2spk:
        raise ValueError(f"{p('utt2spk')}: empty")
    for utt, spk in utt2spk.items():
        if not spk or any(c.isspace() for c in spk):
            raise ValueError(f"{p('utt2spk')}: {utt}: speaker must be one token, got {spk!r}")
    _check_speaker_order(utt2spk, p("utt2spk"))

    spk2utt = _read_sorted(p("spk2utt"))
    expected: Dict[str, List[str]] = {}
    for utt in sorted(utt2spk):
        expected.setdefault(utt2spk[utt], []).append(utt)
    _compare_keys(p("spk2utt"), spk2utt, "speakers of utt2spk", expected)
    for spk, value in spk2utt.items():
        listed = value.split()
        if listed != expected[spk]:
            raise ValueError(
                f"{p('spk2utt')}: speaker {spk!r} lists {listed[:3]}... but utt2spk gives "
                f"{expected[spk][:3]}... ({len(listed)} vs {len(expected[spk])} utterances; "
                f"lists must match utt2spk exactly and be sorted)"
            )

    # An empty entry is allowed: a text-only utterance (module docstring).
    wav_scp = {} if text_only else _read_sorted(p("wav.scp"))
    if os.path.isfile(p("segments")):
        segments = _read_sorted(p("segments"))
        _compare_keys(p("segments"), segments, "utt2spk", utt2spk)
        used = set()
        # read_kv refuses blank lines, so entry i is on line i + 1.
        for lineno, (utt, value) in enumerate(segments.items(), 1):
            cols = value.split()
            if len(cols) != 3:
                raise ValueError(
                    f"{p('segments')}: {utt}: expected '<recid> <start> <end>', got {value!r}"
                )
            recid = cols[0]
            start = _parse_time(p("segments"), utt, cols[1])
            end = _parse_time(p("segments"), utt, cols[2])
            if not (0 <= start < end):
                raise ValueError(f"{p('segments')}: {utt}: need 0 <= start < end, got {value!r}")
            if recid not in wav_scp:
                raise ValueError(f"{p('segments')}: {utt}: recording {recid!r} not in wav.scp")
            if not wav_scp[recid].strip():
                raise ValueError(
                    f"{p('segments')}:{lineno}: {utt}: recording {recid!r} has an empty wav.scp "
                    f"entry (a text-only utterance); a text-only utterance has no segment: keep "
                    f"text-only utterances in a directory without segments"
                )
            used.add(recid)
        unused = sorted(set(wav_scp) - used)
        if unused:
            # Harmless for every consumer (nothing points to them), so only worth a warning.
            logger.warning("%s: %d recordings without segments (e.g. %s)",
                           p("wav.scp"), len(unused), unused[0])
    elif not text_only:
        _compare_keys(p("wav.scp"), wav_scp, "utt2spk", utt2spk)

    for fname in OPTIONAL_FILES.values():
        if os.path.isfile(p(fname)):
            _compare_keys(p(fname), _read_sorted(p(fname)), "utt2spk", utt2spk)

    return {"utterances": len(utt2spk), "speakers": len(spk2utt), "recordings": len(wav_scp)}


def read_data_dir(data_dir: PathLike) -> List[Utterance]:
    """Read a data directory back into `Utterance` records, sorted by utterance id."""
    data_dir = os.fspath(data_dir)
    validate_data_dir(data_dir)
    utt2spk = read_kv(os.path.join(data_dir, "utt2spk"))
    wav_path = os.path.join(data_dir, "wav.scp")
    wav_scp = read_kv(wav_path) if os.path.isfile(wav_path) else None
    seg_path = os.path.join(data_dir, "segments")
    segments = read_kv(seg_path) if os.path.isfile(seg_path) else None
    extra = {
        field_name: read_kv(os.path.join(data_dir, fname))
        for field_name, fname in OPTIONAL_FILES.items()
        if os.path.isfile(os.path.join(data_dir, fname))
    }
    utts = []
    for utt in sorted(utt2spk):
        if segments is not None:
            recid, start, end = segments[utt].split()
            seg = Segment(recid, float(start), float(end))
            wav = wav_scp[recid]
        else:
            seg, wav = None, (wav_scp[utt] if wav_scp is not None else None)
        kw = {name: values[utt] for name, values in extra.items()}
        utts.append(Utterance(uttid=utt, wav=wav, spk=utt2spk[utt], segment=seg, **kw))
    return utts


# Reasons under which `fix_data_dir` drops an utterance (stage 2 counts them in its report).
FIX_REASONS = ("not_utf8", "not_in_every_file", "bad_segment_time")
# The files whose key sets `fix_data_dir` intersects (as Kaldi's fix_data_dir.sh does); every
# other per-utterance file must cover the utterances they leave.
_CORE_FILES = ("utt2spk", "wav.scp", "segments", "text", "utt2lang")


@dataclass
class FixedDir:
    """What `fix_data_dir` read: the kept utterances and what it dropped or repaired."""

    utts: List[Utterance]  # sorted by utterance id
    extra: Dict[str, Dict[str, str]]  # the extra files asked for, restricted to ``utts``
    dropped: List[Tuple[str, str, str]]  # (uttid, reason of FIX_REASONS, detail)
    notes: List[str]  # repairs that dropped nothing (files sorted, spk2utt rebuilt, ...)
    wav_lines: Dict[str, int]  # wav.scp key -> its line (for messages)


def fix_data_dir(data_dir: PathLike, extra_files: Iterable[str] = (),
                 skip_bad_text: bool = False) -> FixedDir:
    """Read a data directory as Kaldi's ``utils/fix_data_dir.sh`` repairs one (stage 2).

    Where `read_data_dir` refuses a directory that breaks a rule, this keeps what can be used
    and says what it did:

    * files that are not sorted are sorted (a note names them); ``spk2utt`` is rebuilt from
      ``utt2spk`` (a note when the given one differs or is absent);
    * an utterance id missing from one of the files that Kaldi's script intersects
      (``utt2spk``, ``wav.scp`` or ``segments``, ``text``, ``utt2lang``), e.g. in ``text`` but
      not in ``wav.scp`` or the reverse, is dropped: ``not_in_every_file``, the detail naming
      the files that have it and those that lack it; so is a segment of a recording absent from
      wav.scp. The other per-utterance files (``utt2task``, ``text_prev``, ``text_tgt``, ...,
      ``extra_files``) lose the entries of dropped utterances, but one that lacks a kept
      utterance is an error ("give it for all or none": a partial one is a preparation bug);
    * a segment with ``end <= start`` or ``start < 0`` is dropped: ``bad_segment_time``;
    * a line that is not UTF-8 is an error naming ``file:line``, or with ``skip_bad_text`` its
      utterance (every utterance of its recording for a ``wav.scp`` line of a directory with
      segments) is dropped: ``not_utf8``.

    Errors (ValueError naming ``file:line``) remain for what cannot be repaired unambiguously:
    a duplicated key (naming both lines), a line without a key, a segments line without three
    columns or with a time that is not a number, a segment of an empty wav.scp entry, a speaker
    id with blanks, and utterance ids that sort differently from their speaker ids.
    """
    data_dir = os.fspath(data_dir)

    def p(name: str) -> str:
        return os.path.join(data_dir, name)

    if not os.path.isfile(p("utt2spk")):
        raise ValueError(f"{data_dir}: missing utt2spk")
    has_wav, has_seg = os.path.isfile(p("wav.scp")), os.path.isfile(p("segments"))
    if not has_wav and (not os.path.isfile(p("text")) or has_seg):
        raise ValueError(f"{data_dir}: missing wav.scp (only a text-only directory, with a text "
                         f"and without segments, may lack it)")
    notes: List[str] = []
    bad: Dict[str, List[str]] = {}  # uttid (or recid of wav.scp with segments) -> file:line

    def read(name: str, sink: Optional[Dict[str, List[str]]] = None
             ) -> Dict[str, Tuple[str, int]]:
        lines: List[Tuple[int, str]] = []
        table = read_kv_numbered(p(name), lines if skip_bad_text else None)
        for lineno, key in lines:
            (bad if sink is None else sink).setdefault(key, []).append(f"{p(name)}:{lineno}")
        keys = list(table)
        if keys != sorted(keys):
            notes.append(f"{name}: not sorted (sorted here, in LC_ALL=C order)")
        return table

    per_utt: Dict[str, Dict[str, Tuple[str, int]]] = {"utt2spk": read("utt2spk")}
    bad_recs: Dict[str, List[str]] = {}  # with segments, wav.scp's keys are recordings
    wav_scp = read("wav.scp", bad_recs if has_seg else None) if has_wav else None
    if has_seg:
        per_utt["segments"] = read("segments")
    elif has_wav:
        per_utt["wav.scp"] = wav_scp
    optional = {fname: name for name, fname in OPTIONAL_FILES.items()}
    for fname in [*OPTIONAL_FILES.values(), *extra_files]:
        if os.path.isfile(p(fname)):
            per_utt[fname] = read(fname)

    dropped: List[Tuple[str, str, str]] = []
    seg_of: Dict[str, Segment] = {}
    for utt, (value, lineno) in per_utt.get("segments", {}).items():
        where = f"{p('segments')}:{lineno}"
        cols = value.split()
        if len(cols) != 3:
            raise ValueError(f"{where}: {utt}: expected '<recid> <start> <end>', got {value!r}")
        recid = cols[0]
        start, end = (_parse_time(where, utt, c) for c in cols[1:])
        if recid in bad_recs:
            bad.setdefault(utt, []).extend(bad_recs[recid])
        elif recid not in wav_scp:
            dropped.append((utt, "not_in_every_file", f"{where}: recording {recid!r} is not in "
                                                      f"wav.scp"))
        elif not wav_scp[recid][0].strip():
            raise ValueError(
                f"{where}: {utt}: recording {recid!r} has an empty wav.scp entry (a text-only "
                f"utterance); a text-only utterance has no segment: keep text-only utterances "
                f"in a directory without segments"
            )
        elif not 0 <= start < end:
            dropped.append((utt, "bad_segment_time", f"{where}: need 0 <= start < end, got "
                                                     f"{value!r}"))
        else:
            seg_of[utt] = Segment(recid, start, end)
    if has_seg:
        unused = sorted(set(wav_scp) - {s.recid for s in seg_of.values()} - set(bad_recs))
        if unused:
            notes.append(f"wav.scp: {len(unused)} recordings without a kept segment (e.g. "
                         f"{unused[0]})")

    done = {u for u, _, _ in dropped}
    core = {f: t for f, t in per_utt.items() if f in _CORE_FILES}
    universe = sorted(set(bad).union(*core.values()))
    for utt in universe:
        if utt in done:
            continue
        if utt in bad:
            dropped.append((utt, "not_utf8", ", ".join(bad[utt])))
            continue
        lack = [f for f, t in core.items() if utt not in t]
        if lack:
            have = [f for f, t in core.items() if utt in t]
            dropped.append((utt, "not_in_every_file",
                            f"in {', '.join(have)}; not in {', '.join(lack)}"))
    done = {u for u, _, _ in dropped}
    kept = [u for u in universe if u not in done]
    for fname, table in per_utt.items():
        if fname in core:
            continue
        missing = [u for u in kept if u not in table]
        if missing:
            raise ValueError(
                f"{p(fname)}: {len(missing)} of {len(kept)} utterances have no entry (e.g. "
                f"{missing[0]!r}); give it for all or none"
            )
        others = len(set(table) - set(universe))
        if others:
            notes.append(f"{fname}: {others} entries of utterances in none of "
                         f"{', '.join(core)} (left out)")

    utt2spk = per_utt["utt2spk"]
    for utt in kept:
        spk, lineno = utt2spk[utt]
        if not spk or any(c.isspace() for c in spk):
            raise ValueError(f"{p('utt2spk')}:{lineno}: {utt}: speaker must be one token, got "
                             f"{spk!r}")
    _check_speaker_order({u: utt2spk[u][0] for u in kept}, p("utt2spk"))
    expected: Dict[str, List[str]] = {}
    for utt in sorted(utt2spk):
        expected.setdefault(utt2spk[utt][0], []).append(utt)
    try:
        given = read_kv(p("spk2utt")) if os.path.isfile(p("spk2utt")) else None
    except ValueError:
        given = {}
    if given is None or {s: v.split() for s, v in given.items()} != expected:
        notes.append("spk2utt: " + ("absent" if given is None else "does not match utt2spk")
                     + " (rebuilt from utt2spk)")

    utts = []
    for utt in kept:
        fields_ = {name: per_utt[fname][utt][0] for fname, name in optional.items()
                   if fname in per_utt}
        if has_seg:
            seg = seg_of[utt]
            wav = wav_scp[seg.recid][0]
        else:
            seg, wav = None, (wav_scp[utt][0] if wav_scp is not None else None)
        utts.append(Utterance(uttid=utt, wav=wav, spk=utt2spk[utt][0], segment=seg, **fields_))
    extra = {f: {u: per_utt[f][u][0] for u in kept} for f in extra_files if f in per_utt}
    wav_lines = {k: n for k, (_, n) in (wav_scp or {}).items()}
    return FixedDir(utts, extra, sorted(dropped), notes, wav_lines)


# Per-speaker files (Kaldi's ``spk2gender``): not part of `Utterance`, but carried by
# `combine_data_dirs` and `carry_speaker_files` for the speakers that remain.
SPEAKER_FILES = ("spk2gender",)


def carry_speaker_files(out_dir: PathLike, in_dirs: Iterable[PathLike]) -> None:
    """Write ``out_dir``'s per-speaker files (`SPEAKER_FILES`) from those of ``in_dirs``.

    Keeps the entries of the speakers of ``out_dir`` (read from its ``spk2utt``); a speaker
    given two different values by the inputs is an error naming both files.  A file that no
    input has is removed from ``out_dir`` (a stale one of an earlier run would not match).
    """
    out_dir = os.fspath(out_dir)
    in_dirs = [os.fspath(d) for d in in_dirs]
    speakers = set(read_kv(os.path.join(out_dir, "spk2utt")))
    for fname in SPEAKER_FILES:
        merged: Dict[str, str] = {}
        origin: Dict[str, str] = {}
        for d in in_dirs:
            path = os.path.join(d, fname)
            if not os.path.isfile(path):
                continue
            for spk, value in read_kv(path).items():
                if spk in merged and merged[spk] != value:
                    raise ValueError(f"{path}: speaker {spk!r} is {value!r}, but "
                                     f"{origin[spk]} says {merged[spk]!r}")
                merged[spk] = value
                origin[spk] = path
        out = os.path.join(out_dir, fname)
        if origin:
            write_kv(out, {s: v for s, v in merged.items() if s in speakers})
        elif os.path.exists(out):
            os.remove(out)


# Optional files that a combined directory may only lose on request (--drop): a set without
# them would silently change what the prompts of its utterances look like.
_CONTEXT_FILES = ("text_prev", "text_next")


def _recording_duration(wav: str, where: str) -> float:
    entry = wav.strip()
    if not entry:
        raise ValueError(
            f"{where}: a text-only utterance (empty wav.scp entry) cannot get a whole-recording "
            f"segment; combine it with directories without segments"
        )
    if entry.endswith("|"):
        raise ValueError(
            f"{where}: cannot get the duration of the pipe {entry!r} to make a whole-recording "
            f"segment; combine directories that all have segments, or none"
        )
    import soundfile  # local import: the rest of this module needs no audio library

    try:
        return soundfile.info(entry).duration
    except RuntimeError as e:  # soundfile reports unreadable files as RuntimeError
        raise ValueError(f"{where}: cannot read the audio header of {entry}: {e}") from None


def combine_data_dirs(
    out_dir: PathLike, in_dirs: Iterable[PathLike], drop: Iterable[str] = ()
) -> Dict[str, int]:
    """Merge data directories into ``out_dir``; returns `validate_data_dir`'s counts.

    Rules:

    * every input is validated first; an utterance id found in two inputs is an error naming
      both directories (as is a recording id pointing to two different wav files);
    * an optional file (``OPTIONAL_FILES``) is kept when every input has it.  ``utt2task``
      missing from some inputs is filled with ``asr`` (its meaning when absent); ``text_prev``
      / ``text_next`` missing from some inputs is an error (a set would mix context-aware and
      context-free utterances): drop them explicitly with ``drop``; any other optional file
      missing from some inputs is dropped with a warning;
    * ``drop``: optional files (e.g. ``text_prev text_next``) removed from all inputs, logged;
    * when some inputs have ``segments`` and others not, every utterance of the latter gets a
      segment over its whole recording (recording id = utterance id, end = the duration
      read from the audio header), since a directory has segments for all utterances or none;
    * per-speaker files (`SPEAKER_FILES`: ``spk2gender``) are merged (`carry_speaker_files`);
    * files other than the Kaldi ones, ``OPTIONAL_FILES`` and ``SPEAKER_FILES`` (utt2dur,
      reports, ...) are not carried over (they would no longer match), which is logged.
    """
    out_dir = os.fspath(out_dir)
    in_dirs = [os.fspath(d) for d in in_dirs]
    if not in_dirs:
        raise ValueError("combine: no input directory given")
    drop = list(drop)
    file_to_field = {fname: name for name, fname in OPTIONAL_FILES.items()}
    bad = [f for f in drop if f not in file_to_field]
    if bad:
        raise ValueError(
            f"combine: --drop {bad}: only optional files can be dropped "
            f"({' '.join(OPTIONAL_FILES.values())})"
        )
    real_out = os.path.realpath(out_dir)
    for d in in_dirs:
        if os.path.realpath(d) == real_out:
            raise ValueError(f"combine: the output {out_dir} is also an input")
    if len({os.path.realpath(d) for d in in_dirs}) != len(in_dirs):
        raise ValueError(f"combine: an input directory is given twice: {in_dirs}")

    known = {"wav.scp", "segments", "utt2spk", "spk2utt", *OPTIONAL_FILES.values(),
             *SPEAKER_FILES}
    per_dir: List[List[Utterance]] = []
    has_file: Dict[str, List[str]] = {fname: [] for fname in OPTIONAL_FILES.values()}
    for d in in_dirs:
        if not os.path.isdir(d):
            raise ValueError(f"combine: input directory {d} does not exist")
        per_dir.append(read_data_dir(d))
        for fname in OPTIONAL_FILES.values():
            if os.path.isfile(os.path.join(d, fname)):
                has_file[fname].append(d)
        other = sorted(set(os.listdir(d)) - known)
        if other:
            logger.info("combine: %s: not carried over: %s", d, " ".join(other))

    # Decide, per optional file, to keep it, fill it, or drop it.
    fill: Dict[str, str] = {}
    removed: List[str] = []
    for fname, field_name in file_to_field.items():
        have = has_file[fname]
        if not have:
            continue
        if fname in drop:
            logger.info("combine: dropping %s (--drop) from %s", fname, " ".join(have))
            removed.append(field_name)
            continue
        if len(have) == len(in_dirs):
            continue
        lacking = [d for d in in_dirs if d not in have]
        if fname == "utt2task":
            logger.info("combine: utt2task absent from %s: their utterances get task 'asr'",
                        " ".join(lacking))
            fill[field_name] = "asr"
        elif fname in _CONTEXT_FILES:
            raise ValueError(
                f"combine: {fname} is in {' '.join(have)} but not in {' '.join(lacking)}; a "
                f"set must have context for all utterances or none: drop it explicitly with "
                f"--drop {' '.join(_CONTEXT_FILES)}"
            )
        else:
            logger.warning("combine: %s absent from %s: the combined set has no %s",
                           fname, " ".join(lacking), fname)
            removed.append(field_name)

    text_only = [d for d, utts in zip(in_dirs, per_dir) if utts[0].wav is None]
    if text_only and len(text_only) != len(in_dirs):
        raise ValueError(
            f"combine: {' '.join(text_only)} are text-only (no wav.scp) but "
            f"{' '.join(d for d in in_dirs if d not in text_only)} have audio; combine "
            f"text-only sets after giving them speech (TTS stage), or among themselves"
        )
    segmented = [d for d, utts in zip(in_dirs, per_dir) if utts[0].segment is not None]
    whole = bool(segmented) and len(segmented) != len(in_dirs)
    if whole:
        logger.info("combine: %s have segments, %s not: giving the latter's utterances a "
                    "segment over their whole recording", " ".join(segmented),
                    " ".join(d for d in in_dirs if d not in segmented))

    origin: Dict[str, str] = {}
    merged: List[Utterance] = []
    for d, utts in zip(in_dirs, per_dir):
        for u in utts:
            if u.uttid in origin:
                raise ValueError(
                    f"combine: utterance id {u.uttid!r} is in both {origin[u.uttid]} and {d}"
                )
            origin[u.uttid] = d
            for field_name in removed:
                setattr(u, field_name, None)
            for field_name, value in fill.items():
                if getattr(u, field_name) is None:
                    setattr(u, field_name, value)
            if whole and u.segment is None:
                duration = _recording_duration(u.wav, f"{d}/wav.scp: {u.uttid}")
                if duration <= 0:
                    raise ValueError(f"{d}/wav.scp: {u.uttid}: empty recording {u.wav}")
                u.segment = Segment(u.uttid, 0.0, duration)
            merged.append(u)
    try:
        write_data_dir(out_dir, merged)
    except ValueError as e:
        raise ValueError(f"combine {' '.join(in_dirs)}: {e}") from None
    carry_speaker_files(out_dir, in_dirs)
    counts = validate_data_dir(out_dir)
    logger.info("combine: %s = %s: %d utterances, %d speakers, %d recordings", out_dir,
                " + ".join(in_dirs), counts["utterances"], counts["speakers"],
                counts["recordings"])
    return counts


# Guard against the dataclass drifting away from the table of optional files.
assert set(OPTIONAL_FILES) <= {f.name for f in fields(Utterance)}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Validate or combine Kaldi-style data directories.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    val = sub.add_parser("validate", help="check one or more data directories")
    val.add_argument("dirs", nargs="+")
    comb = sub.add_parser(
        "combine", help="merge data directories (see combine_data_dirs for the rules)",
        description=combine_data_dirs.__doc__.split("Rules:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    comb.add_argument("--out", required=True, help="output data directory")
    comb.add_argument("--drop", nargs="+", default=[], metavar="FILE",
                      help="optional files to leave out, e.g. text_prev text_next")
    comb.add_argument("dirs", nargs="+", help="input data directories")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    if args.cmd == "combine":
        try:
            counts = combine_data_dirs(args.out, args.dirs, args.drop)
        except (ValueError, OSError) as e:
            print(f"ERROR: {e}", file=sys.stderr)
            return 1
        print(f"{args.out}: combined {len(args.dirs)} directories ({counts['utterances']} "
              f"utterances, {counts['speakers']} speakers, {counts['recordings']} recordings)")
        return 0
    status = 0
    for d in args.dirs:
        try:
            counts = validate_data_dir(d)
        except (ValueError, OSError) as e:
            print(f"ERROR: {e}", file=sys.stderr)
            status = 1
        else:
            print(f"{d}: OK ({counts['utterances']} utterances, {counts['speakers']} speakers, "
                  f"{counts['recordings']} recordings)")
    return status


if __name__ == "__main__":
    sys.exit(main())
