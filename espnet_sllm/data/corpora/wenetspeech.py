"""Reader of WenetSpeech (10,000 h of Mandarin from the web) into Kaldi data directories.

Used by egs2/kespeech/asr1 for its two extra test sets, ``test_net`` (internet audio) and
``test_meeting`` (far-field meetings), the WenetSpeech evaluation sets of Xu et al.

Layout
------
The release is one metadata file and long-form Opus recordings::

    <root>/WenetSpeech.json
    <root>/audio/<split>/<source>/<group>/<aid>.opus
           e.g. audio/dev/podcast/B00000/X0000000000_100638174.opus

``WenetSpeech.json`` is ``{"audios": [<audio>, ...], ...}`` (other top-level keys are
ignored), each audio being::

    {"aid": "X0000000000_100638174", "path": "audio/dev/podcast/B00000/X0000000000_100638174.opus",
     "duration": 2349.8, ...,
     "segments": [{"sid": "X0000000000_100638174_S00000", "begin_time": 0.0, "end_time": 3.82,
                   "text": "...", "subsets": ["DEV"], ...}, ...]}

``path`` is relative to the folder of the JSON file (absolute paths are kept).  A segment
belongs to the subsets its ``subsets`` list names, among `SUBSETS` (S, M, L, W: the nested
training sets; DEV; TEST_NET; TEST_MEETING).  Subset ``X`` is written to ``<out_dir>/<prefix>x``
(lower case): ``data/test_net``, ``data/test_meeting``.

The JSON of the full release is large (about 1 GB, mostly training segments).  It is read as a
stream (`iter_audios`): one audio entry at a time is decoded with the standard ``json`` module,
so memory holds one entry and the kept utterances, not the whole file.  The stream reader only
assumes valid JSON (any key order, any whitespace); a syntax error is reported with its
character offset (a malformed file may be read to its end before the error is noticed).

Audio, ids
----------
``wav.scp`` maps the recording id (= ``aid``) to the absolute path of the ``.opus`` file and
``segments`` cuts the utterances out of it (stage 2, ``espnet_sllm.bin.format_data``, decodes the
Opus file with soundfile once per recording and cuts every segment).  The utterance id is the
``sid``, which starts with its ``aid``; a ``sid`` that does not is prefixed with ``<aid>-``.
The speakers of WenetSpeech are unknown: the recording (``aid``) serves as speaker, so every
utterance id starts with its speaker id (Kaldi rule; the fixed-width counter that starts every
aid keeps the sort orders of utterances and speakers consistent, and `write_data_dir` checks
it).  ``utt2lang`` is ``zh``.  Texts are kept as released (Chinese, possibly with spaces and
English words), outer blanks stripped.

Checks
------
Dropped and counted per subset, under the first reason that applies: ``not_utf8`` (the aid,
path, sid or text of the segment holds bytes that are not UTF-8: the file is decoded with
``errors="surrogateescape"`` so that one bad entry does not stop the stream),
``bad_segment_time`` (a negative ``begin_time``, or ``end_time <= begin_time``: zero or
negative duration), ``missing_audio`` (the audio of the segment is not on disk: the count is
per segment, the log names the aids; the other subsets are still written), ``empty_text``.
With ``strict`` (``--strict true``) each of them is an error instead.  A segment ending after
its audio is not checked here (the JSON ``duration`` is metadata, the audio is not opened):
stage 2 (``espnet_sllm.bin.format_data``) cuts it short or drops and counts it
(``--max_overshoot``).  Errors (`ReaderError` naming the JSON file and the entry ``audios[i]``
with its aid / sid, since the JSON has no useful line numbers; the command line prints
``ERROR: ...`` and exits with 1): an entry without ``aid``, ``path`` or ``segments``, a segment
without ``sid``, ``begin_time``, ``end_time``, ``text`` or ``subsets``, non-numeric times, a
line break in a text, an id given twice, an unknown subset name (the message lists `SUBSETS`),
and a requested subset that ends up without any utterance (written after the others).  Every
segment must have a ``subsets`` list; the other segment checks apply to the segments of the
requested subsets only, so that a flaw in, say, the training metadata does not stop the
preparation of the test sets.

Usage:
    python -m espnet_sllm.data.corpora.wenetspeech --json /db/WenetSpeech/WenetSpeech.json \\
        --subsets TEST_NET TEST_MEETING --out_dir data [--prefix ""] [--strict true]
    # -> data/test_net, data/test_meeting

    from espnet_sllm.data.corpora.wenetspeech import read_wenetspeech
    utts, stats = read_wenetspeech("/db/WenetSpeech/WenetSpeech.json", ["TEST_NET"])
    utts["TEST_NET"], stats["TEST_NET"]
"""
import argparse
import json
import logging
import math
import os
import sys
from typing import Any, Dict, Iterator, List, Optional, Sequence, TextIO, Tuple

from espnet_sllm.data.kaldi_dir import Segment, Utterance, write_data_dir
from espnet_sllm.data.corpora.reader_utils import (
    NOT_UTF8,
    ReaderError,
    ReaderStats,
    add_strict_option,
    has_undecodable,
    parse_list,
    run_main,
)

logger = logging.getLogger(__name__)

SUBSETS = ("S", "M", "L", "W", "DEV", "TEST_NET", "TEST_MEETING")
DEFAULT_SUBSETS = ("TEST_NET", "TEST_MEETING")
JSON_NAME = "WenetSpeech.json"
LANG = "zh"
_CHUNK = 1 << 20  # characters read at a time from the JSON


class _JsonStream:
    """Sequential decoding of JSON values from a text file, one value at a time.

    ``json.JSONDecoder.raw_decode`` decodes a value from the buffer; when the buffer ends
    inside the value (a decoding error, or a value reaching the very end of the buffer, which
    may be a number cut in two) more text is read, doubling the amount each time so that a
    large value costs linear time.
    """

    def __init__(self, f: TextIO, path: str):
        self.f = f
        self.path = path
        self.buf = ""
        self.pos = 0
        self.offset = 0  # characters of the file before buf[0]
        self.eof = False
        self.decoder = json.JSONDecoder()

    def _more(self, n: int = _CHUNK) -> bool:
        data = self.f.read(n)
        if not data:
            self.eof = True
            return False
        self.offset += self.pos
        self.buf = self.buf[self.pos:] + data
        self.pos = 0
        return True

    def error(self, msg: str, pos: Optional[int] = None) -> ReaderError:
        at = self.offset + (self.pos if pos is None else pos)
        return ReaderError(f"{self.path}: invalid JSON at character {at}: {msg}")

    def peek(self) -> str:
        """Next non-blank character ('' at the end of the file), not consumed."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf) or not self._more():
                return self.buf[self.pos] if self.pos < len(self.buf) else ""

    def expect(self, chars: str) -> str:
        c = self.peek()
        if not c or c not in chars:
            raise self.error(f"expected one of {list(chars)}, got {c or 'end of file'!r}")
        self.pos += 1
        return c

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                obj, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                if self.eof:
                    raise self.error(e.msg, e.pos) from None
            except (ValueError, RecursionError) as e:
                # Valid syntax that json cannot hold: an integer of more than 4300 digits
                # (Python's limit), arrays nested thousands deep.
                raise self.error(f"{type(e).__name__}: {e}") from None
            else:
                if end < len(self.buf) or self.eof:
                    self.pos = end
                    return obj
            self._more(max(_CHUNK, len(self.buf) - self.pos))


def iter_audios(json_path: str) -> Iterator[Tuple[int, Dict[str, Any]]]:
    """Yield ``(index, audio entry)`` for each element of the top-level ``audios`` list,
    decoding one entry at a time (see the module docstring).  Bytes that are not UTF-8 reach
    the strings as lone surrogates (``errors="surrogateescape"``, see `has_undecodable`)."""
    with open(json_path, encoding="utf-8-sig", errors="surrogateescape") as f:
        s = _JsonStream(f, json_path)
        s.expect("{")
        found = False
        if s.peek() == "}":
            s.pos += 1
        else:
            while True:
                key = s.value()
                if not isinstance(key, str):
                    raise s.error(f"expected an object key, got {key!r}")
                s.expect(":")
                if key == "audios":
                    found = True
                    s.expect("[")
                    index = 0
                    if s.peek() == "]":
                        s.pos += 1
                    else:
                        while True:
                            yield index, s.value()
                            index += 1
                            if s.expect(",]") == "]":
                                break
                else:
                    s.value()  # other top-level keys (version, description, ...) are unused
                if s.expect(",}") == "}":
                    break
        if s.peek():
            raise s.error("text after the top-level object")
    if not found:
        raise ReaderError(f"{json_path}: no top-level 'audios' list (not a WenetSpeech.json?)")


def _time(seg: Dict[str, Any], key: str, where: str) -> float:
    t = seg.get(key)
    value = float("nan")
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        try:
            value = float(t)
        except OverflowError:  # an integer beyond the float range: not a time either
            pass
    if not math.isfinite(value):
        shown = repr(t) if not isinstance(t, int) or abs(t) < 10 ** 30 else \
            f"an integer of {len(str(abs(t)))} digits"
        raise ReaderError(f"{where}: {key} must be a number, got {shown}")
    return value


def _str(entry: Dict[str, Any], key: str, where: str, allow_blank: bool = False) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or (not allow_blank and not value.strip()):
        raise ReaderError(f"{where}: missing or empty {key!r} (got {value!r})")
    if not allow_blank and any(c.isspace() for c in value) and key != "path":
        raise ReaderError(f"{where}: {key} {value!r} contains whitespace")
    return value


def read_wenetspeech(
    json_path: str, subsets: Optional[Sequence[str]] = DEFAULT_SUBSETS, strict: bool = False
) -> Tuple[Dict[str, List[Utterance]], Dict[str, ReaderStats]]:
    """Read the segments of some subsets from ``WenetSpeech.json`` in one pass.

    Args:
        json_path: the JSON file, or the folder holding ``WenetSpeech.json``.
        subsets: names among `SUBSETS`; None or empty: all.
        strict: a segment that would be dropped (see the module docstring) is an error.

    Returns:
        (utterances per subset in JSON order, statistics per subset: rows = segments of the
        subset, kept, drops by reason).  Each utterance has ``wav`` = absolute path of the
        recording, ``segment`` = (aid, begin, end), ``spk`` = aid, ``text``, ``lang`` = zh.
    """
    wanted = parse_list(subsets, SUBSETS, "WenetSpeech subset")
    if os.path.isdir(json_path):
        json_path = os.path.join(json_path, JSON_NAME)
    if not os.path.isfile(json_path):
        raise FileNotFoundError(f"{json_path}: not found (the WenetSpeech release's metadata "
                                f"file {JSON_NAME})")
    base = os.path.dirname(os.path.abspath(json_path))
    utts: Dict[str, List[Utterance]] = {s: [] for s in wanted}
    stats = {s: ReaderStats(f"{os.path.basename(json_path)} {s}", strict=strict)
             for s in wanted}
    seen_aid: Dict[str, int] = {}
    seen_utt: Dict[str, str] = {}
    missing: List[str] = []

    for index, audio in iter_audios(json_path):
        where = f"{json_path}: audios[{index}]"
        if not isinstance(audio, dict):
            raise ReaderError(f"{where}: expected an object, got {type(audio).__name__}")
        aid = _str(audio, "aid", where)
        where = f"{where} (aid {aid})"
        if aid in seen_aid:
            raise ReaderError(f"{where}: aid already used by audios[{seen_aid[aid]}]")
        seen_aid[aid] = index
        segments = audio.get("segments")
        if not isinstance(segments, list):
            raise ReaderError(f"{where}: missing 'segments' list (got {segments!r})")
        selected = []
        for j, seg in enumerate(segments):
            seg_where = f"{where}: segments[{j}]"
            if not isinstance(seg, dict):
                raise ReaderError(f"{seg_where}: expected an object, got {seg!r}")
            names = seg.get("subsets")
            if not isinstance(names, list):
                raise ReaderError(f"{seg_where} (sid {seg.get('sid')!r}): missing 'subsets' "
                                  f"list (got {names!r})")
            hit = [s for s in wanted if s in names]
            if hit:
                selected.append((j, seg, hit))
        if not selected:
            continue

        path = _str(audio, "path", where)
        wav = os.path.abspath(path if os.path.isabs(path) else os.path.join(base, path))
        present = os.path.isfile(wav)
        if not present:
            missing.append(aid)
        for j, seg, hit in selected:
            sid = _str(seg, "sid", f"{where}: segments[{j}]")
            seg_where = f"{where}: sid {sid}"
            for s in hit:
                stats[s].rows += 1
            begin = _time(seg, "begin_time", seg_where)
            end = _time(seg, "end_time", seg_where)
            bad_time = ""
            if begin < 0:
                bad_time = f"negative begin_time {begin}"
            elif end <= begin:
                bad_time = f"end_time {end} is not after begin_time {begin}"
            raw = _str(seg, "text", seg_where, allow_blank=True)
            if "\n" in raw or "\r" in raw:
                raise ReaderError(f"{seg_where}: line break in the text {raw!r}")
            text = raw.strip()
            uttid = sid if sid.startswith(aid) else f"{aid}-{sid}"
            if uttid in seen_utt:
                raise ReaderError(f"{seg_where}: utterance id {uttid!r} already given by "
                                  f"{seen_utt[uttid]}")
            seen_utt[uttid] = seg_where
            undecodable = [k for k, v in (("aid", aid), ("path", path), ("sid", sid),
                                          ("text", raw)) if has_undecodable(v)]
            for s in hit:
                if undecodable:
                    stats[s].drop(NOT_UTF8, seg_where,
                                  f"bytes that are not UTF-8 in its {', '.join(undecodable)}")
                elif bad_time:
                    stats[s].drop("bad_segment_time", seg_where, bad_time)
                elif not present:
                    stats[s].drop("missing_audio", seg_where, f"{wav} not found")
                elif not text:
                    stats[s].drop("empty_text", seg_where)
                else:
                    utts[s].append(Utterance(uttid=uttid, wav=wav, spk=aid, text=text,
                                             lang=LANG, segment=Segment(aid, begin, end)))
                    stats[s].keep()
    if missing:
        logger.warning("%s: %d audio files of the requested subsets are missing (aids %s%s)",
                       json_path, len(missing), " ".join(missing[:5]),
                       " ..." if len(missing) > 5 else "")
    for s in wanted:
        stats[s].log_drops(logger)
    return utts, stats


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write Kaldi data directories <out_dir>/<prefix><subset in lower case> "
                    "from WenetSpeech.json.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Usage:")[1],
    )
    parser.add_argument("--json", required=True,
                        help=f"{JSON_NAME}, or the folder holding it (and audio/)")
    parser.add_argument("--subsets", nargs="+", default=list(DEFAULT_SUBSETS),
                        help=f"subsets to write, among {' '.join(SUBSETS)} "
                             f"(default: {' '.join(DEFAULT_SUBSETS)})")
    parser.add_argument("--out_dir", required=True, help="parent of the data directories")
    parser.add_argument("--prefix", default="",
                        help="prefix of the directory names, e.g. wenet_ -> data/wenet_dev")
    add_strict_option(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        utts, stats = read_wenetspeech(args.json, args.subsets, args.strict)
        empty = []
        for s in utts:
            out = os.path.join(args.out_dir, args.prefix + s.lower())
            if not utts[s]:
                empty.append(f"{s} ({stats[s].summary()})")
                continue
            write_data_dir(out, utts[s])
            print(f"{out}: {stats[s].summary()}")
        if empty:
            raise ReaderError(f"{args.json}: no utterance kept for subset(s): "
                              f"{'; '.join(empty)}")
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
