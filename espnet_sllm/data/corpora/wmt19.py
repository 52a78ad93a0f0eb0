"""Reader of the WMT19 Chinese-English news data into TEXT-ONLY Kaldi data directories.

Used by egs2/aishell_wmt/asr1 (Wu et al.: the speech translation task, zh -> en).  The Chinese
side gets its speech from the TTS stage of the recipe (a later step); until then the sets are
text-only (no ``wav.scp``, see espnet_sllm.data.kaldi_dir).

Layout
------
The root (``$WMT19`` of the recipe's db.sh) holds::

    news-commentary-v14.en-zh.tsv              training pairs      -> wmt19_train
    sgm/newstest2019-zhen-src.zh.sgm           test source (zh)    -> wmt19_test
    sgm/newstest2019-zhen-ref.en.sgm           test reference (en)

* ``news-commentary-v14.en-zh.tsv``: UTF-8, one pair per line, ``<English><TAB><Chinese>``, no
  header.  Rows with an empty side are dropped and counted (``empty_source``: Chinese empty,
  ``empty_target``: English empty); rows with both sides empty are the document breaks of the
  file (blank lines or a lone TAB), counted as ``empty_both`` but left out by choice, never an
  error.  A row with other than two TAB-separated fields is an ERROR naming the line: nothing
  shows that the release has such rows, and guessing which TAB separates the languages would
  silently pair wrong halves.  ``max_pairs`` keeps the first N kept pairs (the papers train on
  subsets).
* ``*.sgm``: one ``<seg id="N">text</seg>`` per line inside ``<doc ... docid="D" ...>`` ...
  ``</doc>`` blocks (other lines such as ``<srcset>``, ``<p>`` are ignored).  XML entities
  (``&amp;``, ``&lt;``, ``&#39;``) are unescaped with `html.unescape`.  Source and reference
  are paired by (docid, seg id); a pair present in one file only is an ERROR (the files do not
  belong together), as are a ``<seg>`` outside a ``<doc>``, a non-numeric seg id and a
  (docid, seg id) given twice.  Pairs with an empty segment are dropped and counted like TSV
  rows (``empty_both`` included: in newstest it is a flaw, not a document break).
* Lines with bytes that are not UTF-8 are dropped and counted (``not_utf8``): a TSV row, or the
  pair of a ``<seg>`` line (its (docid, seg id) still pairs the files).  With ``strict``
  (``--strict true``) every drop is an error instead (``empty_both`` of the TSV excepted).

Text is stripped; line-break-like characters inside a field (``\\r``, U+2028, ...) become
spaces, since a Kaldi value is one line.

Ids and files
-------------
::

    wmt19nc-<8-digit line number>            wmt19nc-00000017       (line of the .tsv)
    wmt19nt-<docid>-<4-digit seg id>         wmt19nt-chinanews.com.3939-0007

(whitespace in a docid becomes ``_``).  Each utterance is its own speaker.  Files: ``text`` =
the Chinese source (what TTS will speak), ``text_tgt`` = the English translation,
``utt2task`` = ``st``, ``utt2lang`` = ``zh`` (the language of the speech).

Usage:
    python -m espnet_sllm.data.corpora.wmt19 --root /db/wmt19 --data_dir data [--max_pairs N] \\
        [--strict true]
        # -> data/wmt19_train (news-commentary) data/wmt19_test (newstest2019)

    from espnet_sllm.data.corpora.wmt19 import read_news_commentary, read_newstest
    utts, stats = read_news_commentary("/db/wmt19/news-commentary-v14.en-zh.tsv", max_pairs=0)
    utts, stats = read_newstest("/db/wmt19/sgm/newstest2019-zhen-src.zh.sgm",
                                "/db/wmt19/sgm/newstest2019-zhen-ref.en.sgm")
"""
import argparse
import html
import logging
import os
import re
import sys
from typing import Dict, List, Optional, Tuple

from espnet_sllm.data.kaldi_dir import Utterance
from espnet_sllm.data.corpora.reader_utils import (
    NOT_UTF8,
    NotUtf8Line,
    ReaderError,
    ReaderStats,
    add_strict_option,
    iter_lines,
    parse_list,
    run_main,
    write_set,
)

logger = logging.getLogger(__name__)

NEWS_COMMENTARY = "news-commentary-v14.en-zh.tsv"
NEWSTEST_SRC = os.path.join("sgm", "newstest2019-zhen-src.zh.sgm")
NEWSTEST_REF = os.path.join("sgm", "newstest2019-zhen-ref.en.sgm")
SETS = ("train", "test")
LANG = "zh"
TASK = "st"

# Characters that end a line for some tool (str.splitlines) but may sit inside a field.
_BREAKS_RE = re.compile(r"\s*[\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]+\s*")
_DOC_RE = re.compile(r"<doc\b[^>]*?\bdocid\s*=\s*(?:\"([^\"]*)\"|'([^']*)')", re.IGNORECASE)
_SEG_RE = re.compile(r"<seg\b[^>]*?\bid\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))[^>]*>(.*?)"
                     r"</seg>", re.IGNORECASE)
_END_DOC_RE = re.compile(r"</doc\s*>", re.IGNORECASE)


def _one_line(text: str) -> str:
    return _BREAKS_RE.sub(" ", text).strip()


def _drop_empty(stats: ReaderStats, src: str, tgt: str, where: str,
                breaks: bool = False) -> bool:
    """Count a pair with an empty side; True when it was dropped.  ``breaks``: a pair with
    both sides empty is a document break, left out by choice (never a strict error)."""
    if src and tgt:
        return False
    if not (src or tgt):
        (stats.skip if breaks else stats.drop)("empty_both", where)
        return True
    stats.drop("empty_source" if not src else "empty_target", where)
    return True


def read_news_commentary(path: str, max_pairs: int = 0,
                         strict: bool = False) -> Tuple[List[Utterance], ReaderStats]:
    """Read the news-commentary en-zh TSV; ``max_pairs`` > 0 keeps the first N kept pairs;
    ``strict``: a row that would be dropped is an error (document breaks excepted)."""
    stats = ReaderStats(os.path.basename(path), strict=strict)
    utts: List[Utterance] = []
    for lineno, line in iter_lines(path, skip_blank=False, stats=stats):
        where = f"{path}:{lineno}"
        stats.rows += 1
        fields = line.split("\t") if line.strip() else ["", ""]
        if len(fields) != 2:
            raise ReaderError(f"{where}: {len(fields)} TAB-separated fields, expected 2 "
                              f"(English<TAB>Chinese): {line[:200]!r}")
        en, zh = _one_line(fields[0]), _one_line(fields[1])
        if _drop_empty(stats, zh, en, where, breaks=True):
            continue
        utts.append(Utterance(uttid=f"wmt19nc-{lineno:08d}", wav=None, text=zh, text_tgt=en,
                              lang=LANG, task=TASK))
        stats.keep()
        if max_pairs and stats.kept >= max_pairs:
            logger.info("%s: stopping after the first %d pairs (max_pairs)", path, max_pairs)
            break
    return utts, stats


def read_sgm(path: str) -> Dict[Tuple[str, int], Tuple[Optional[str], int]]:
    """``{(docid, seg id): (unescaped text, line number)}`` of an SGML test-set file; the text
    is None when the line has bytes that are not UTF-8 (the caller drops the pair)."""
    out: Dict[Tuple[str, int], Tuple[Optional[str], int]] = {}
    docid: Optional[str] = None
    for lineno, line in iter_lines(path, keep_undecodable=True):
        where = f"{path}:{lineno}"
        m = _DOC_RE.search(line)
        if m is not None:
            docid = re.sub(r"\s+", "_", html.unescape(m.group(1) if m.group(1) is not None
                                                      else m.group(2)).strip())
            if not docid:
                raise ReaderError(f"{where}: empty docid")
        for seg in _SEG_RE.finditer(line):
            if docid is None:
                raise ReaderError(f"{where}: <seg> outside a <doc docid=...> block")
            raw_id = next(g for g in seg.group(1, 2, 3) if g is not None).strip()
            if not raw_id.isdecimal():  # isdigit() is also true of "²", which int() refuses
                raise ReaderError(f"{where}: seg id {raw_id!r} is not a number")
            key = (docid, int(raw_id))
            if key in out:
                raise ReaderError(f"{where}: doc {docid!r} seg {raw_id} already on line "
                                  f"{out[key][1]}")
            out[key] = (None if isinstance(line, NotUtf8Line)
                         else _one_line(html.unescape(seg.group(4))), lineno)
        if _END_DOC_RE.search(line):
            docid = None
    if not out:
        raise ReaderError(f"{path}: no <seg> line")
    return out


def read_newstest(src_path: str, ref_path: str,
                  strict: bool = False) -> Tuple[List[Utterance], ReaderStats]:
    """Pair the Chinese source and English reference SGML files of newstest2019 zh-en
    (``strict``: a pair that would be dropped is an error)."""
    src = read_sgm(src_path)
    ref = read_sgm(ref_path)
    only_src = sorted(set(src) - set(ref))
    only_ref = sorted(set(ref) - set(src))
    if only_src or only_ref:
        parts = []
        for keys, name in ((only_src, src_path), (only_ref, ref_path)):
            if keys:
                d, s = keys[0]
                parts.append(f"{len(keys)} segments only in {name} (e.g. doc {d!r} seg {s}, "
                             f"line {(src if name == src_path else ref)[keys[0]][1]})")
        raise ReaderError("source and reference do not pair by (docid, seg id): "
                          + "; ".join(parts))
    stats = ReaderStats(os.path.basename(src_path), strict=strict)
    utts: List[Utterance] = []
    for key in sorted(src, key=lambda k: src[k][1]):
        docid, seg = key
        zh, lineno = src[key]
        en, ref_line = ref[key]
        stats.rows += 1
        if zh is None or en is None:
            bad = f"{src_path}:{lineno}" if zh is None else f"{ref_path}:{ref_line}"
            stats.drop(NOT_UTF8, bad, f"doc {docid!r} seg {seg}")
            continue
        if _drop_empty(stats, zh, en, f"{src_path}:{lineno}"):
            continue
        utts.append(Utterance(uttid=f"wmt19nt-{docid}-{seg:04d}", wav=None, text=zh,
                              text_tgt=en, lang=LANG, task=TASK))
        stats.keep()
    return utts, stats


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write text-only Kaldi data directories <data_dir>/wmt19_{train,test} "
                    "from WMT19 zh-en.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Usage:")[1],
    )
    parser.add_argument("--root", required=True,
                        help=f"folder holding {NEWS_COMMENTARY} and sgm/")
    parser.add_argument("--data_dir", default="data",
                        help="where wmt19_<set> go (default: data)")
    parser.add_argument("--sets", nargs="+", default=list(SETS),
                        help="train (news-commentary) and/or test (newstest2019)")
    parser.add_argument("--max_pairs", type=int, default=0,
                        help="keep the first N news-commentary pairs (0: all)")
    add_strict_option(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        sets = parse_list(args.sets, SETS, "WMT19 set")
        if args.max_pairs < 0:
            raise ValueError(f"--max_pairs must be >= 0, got {args.max_pairs}")
        if not os.path.isdir(args.root):
            raise FileNotFoundError(f"WMT19 root {args.root!r} does not exist")
        needed = {"train": [NEWS_COMMENTARY], "test": [NEWSTEST_SRC, NEWSTEST_REF]}
        for name in sets:
            for rel in needed[name]:
                if not os.path.isfile(os.path.join(args.root, rel)):
                    raise FileNotFoundError(f"{os.path.join(args.root, rel)}: not found "
                                            f"(WMT19 {name} set)")
        for name in sets:
            if name == "train":
                utts, stats = read_news_commentary(os.path.join(args.root, NEWS_COMMENTARY),
                                                   args.max_pairs, args.strict)
            else:
                utts, stats = read_newstest(os.path.join(args.root, NEWSTEST_SRC),
                                            os.path.join(args.root, NEWSTEST_REF), args.strict)
            stats.log_drops(logger)
            write_set(os.path.join(args.data_dir, f"wmt19_{name}"), utts, stats,
                      f"WMT19 {name}")
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
