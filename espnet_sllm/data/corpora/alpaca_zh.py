"""Reader of Alpaca-zh (Chinese Alpaca instructions) into a TEXT-ONLY Kaldi data directory.

Used by egs2/aishell_wmt/asr1 (Wu et al.: the spoken question answering task).  The question
gets its speech from the TTS stage of the recipe (a later step); until then the set is
text-only (no ``wav.scp``, see espnet_sllm.data.kaldi_dir).

Layout
------
The root (``$ALPACA_ZH`` of the recipe's db.sh) holds ``alpaca_data_zh_51k.json`` (the root may
also be that file): UTF-8 JSON, one array of records ``{"instruction": str, "input": str,
"output": str}`` (other keys are ignored); ``input`` is often empty.

* question (``text``) = ``instruction``, then a space and ``input`` when it is not empty;
  answer (``text_tgt``) = ``output``.  A Kaldi value is one line, so line breaks inside the
  fields (``\\n``, ``\\r``, U+2028, ...; with the blanks around them) become one space; the
  kept records that had any are counted (per group ``multiline``; the others: ``one_line``).
* Dropped and counted: ``not_utf8`` (``instruction``, ``input`` or ``output`` holds bytes that
  are not UTF-8: the file is decoded with ``errors="surrogateescape"``, so that one bad record
  does not stop the others), ``empty_output`` (the answer is empty after stripping) and
  ``empty_question`` (instruction and input both empty).  With ``strict``
  (``--strict true``) each of them is an error instead.
* Errors (`ReaderError` naming the file and the 0-based record index, as ``jq '.[N]'``
  counts; the command line prints ``ERROR: ...`` and exits with 1): a file that is not JSON
  or not an array, a record that is not an object, lacks ``instruction``, ``input`` or
  ``output``, or has a value that is not a string.

Ids and files: ``alpacazh-<6-digit record index>`` (``alpacazh-000017``), each utterance its
own speaker; ``utt2task`` = ``sqa`` (spoken QA: the question will be speech), ``utt2lang`` =
``zh``.

Usage:
    python -m espnet_sllm.data.corpora.alpaca_zh --root /db/alpaca_zh --out data/alpaca_zh \\
        [--max_records N] [--strict true]

    from espnet_sllm.data.corpora.alpaca_zh import read_alpaca_zh
    utts, stats = read_alpaca_zh("/db/alpaca_zh/alpaca_data_zh_51k.json")
"""
import argparse
import json
import logging
import os
import re
import sys
from typing import List, Optional, Tuple

from espnet_sllm.data.kaldi_dir import Utterance
from espnet_sllm.data.corpora.reader_utils import (
    NOT_UTF8,
    ReaderError,
    ReaderStats,
    add_strict_option,
    has_undecodable,
    run_main,
    write_set,
)

logger = logging.getLogger(__name__)

JSON_NAME = "alpaca_data_zh_51k.json"
KEYS = ("instruction", "input", "output")
LANG = "zh"
TASK = "sqa"

# Characters that end a line for some tool (str.splitlines), with the blanks around them.
_BREAKS_RE = re.compile(r"\s*[\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]+\s*")


def _one_line(text: str) -> Tuple[str, bool]:
    """(text on one line, stripped; whether it had a line break)."""
    text = text.strip()
    return _BREAKS_RE.sub(" ", text), _BREAKS_RE.search(text) is not None


def json_path(root: str) -> str:
    """The JSON file: ``root`` itself, or ``<root>/alpaca_data_zh_51k.json``."""
    path = root if os.path.isfile(root) else os.path.join(root, JSON_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: Alpaca-zh file not found (give the folder holding "
                                f"{JSON_NAME}, or the file)")
    return path


def read_alpaca_zh(path: str, max_records: int = 0,
                   strict: bool = False) -> Tuple[List[Utterance], ReaderStats]:
    """Read the Alpaca-zh JSON array; ``max_records`` > 0 keeps the first N kept records;
    ``strict``: a record that would be dropped is an error."""
    try:
        # Bytes that are not UTF-8 become lone surrogates: the record is dropped below.
        with open(path, encoding="utf-8-sig", errors="surrogateescape") as f:
            records = json.load(f)
    except json.JSONDecodeError as e:
        raise ReaderError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno})") \
            from None
    except (ValueError, RecursionError) as e:
        # Valid syntax that json cannot hold: an integer of more than 4300 digits (Python's
        # limit), arrays nested thousands deep.
        raise ReaderError(f"{path}: not readable as JSON ({type(e).__name__}: {e})") from None
    if not isinstance(records, list):
        raise ReaderError(f"{path}: expected a JSON array of records, got a "
                          f"{type(records).__name__}")
    stats = ReaderStats(os.path.basename(path), strict=strict)
    utts: List[Utterance] = []
    for index, rec in enumerate(records):
        where = f"{path}: record {index}"
        if not isinstance(rec, dict):
            raise ReaderError(f"{where}: expected an object with {', '.join(KEYS)}, got a "
                              f"{type(rec).__name__}")
        missing = [k for k in KEYS if k not in rec]
        if missing:
            raise ReaderError(f"{where}: lacks {', '.join(missing)} (has: "
                              f"{', '.join(map(str, rec)) or 'no key'})")
        bad = [k for k in KEYS if not isinstance(rec[k], str)]
        if bad:
            raise ReaderError(f"{where}: {', '.join(bad)} must be a string, got "
                              f"{', '.join(type(rec[k]).__name__ for k in bad)}")
        stats.rows += 1
        undecodable = [k for k in KEYS if has_undecodable(rec[k])]
        if undecodable:
            stats.drop(NOT_UTF8, where, f"bytes that are not UTF-8 in {', '.join(undecodable)}")
            continue
        instruction, b1 = _one_line(rec["instruction"])
        inp, b2 = _one_line(rec["input"])
        output, b3 = _one_line(rec["output"])
        if not output:
            stats.drop("empty_output", where)
            continue
        question = " ".join(x for x in (instruction, inp) if x)
        if not question:
            stats.drop("empty_question", where)
            continue
        utts.append(Utterance(uttid=f"alpacazh-{index:06d}", wav=None, text=question,
                              text_tgt=output, lang=LANG, task=TASK))
        stats.keep("multiline" if (b1 or b2 or b3) else "one_line")
        if max_records and stats.kept >= max_records:
            logger.info("%s: stopping after the first %d records (max_records)", path,
                        max_records)
            break
    return utts, stats


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write a text-only Kaldi data directory from Alpaca-zh.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Usage:")[1],
    )
    parser.add_argument("--root", required=True,
                        help=f"folder holding {JSON_NAME} (or the file itself)")
    parser.add_argument("--out", required=True, help="output data directory")
    parser.add_argument("--max_records", type=int, default=0,
                        help="keep the first N usable records (0: all)")
    add_strict_option(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        if args.max_records < 0:
            raise ValueError(f"--max_records must be >= 0, got {args.max_records}")
        if not os.path.exists(args.root):
            raise FileNotFoundError(f"Alpaca-zh root {args.root!r} does not exist")
        utts, stats = read_alpaca_zh(json_path(args.root), args.max_records, args.strict)
        stats.log_drops(logger)
        write_set(args.out, utts, stats, "Alpaca-zh")
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
