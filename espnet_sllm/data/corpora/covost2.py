"""Reader of CoVoST 2 speech translation (Wang et al. 2020) into Kaldi data directories.

Used by egs2/mls/st1 (Ideal-LLM, Xue et al.: CoVoST 2 speech translation with and without a
chain-of-thought prompt, BLEU per direction) for the pairs `PAIRS` (en->de, de->en, es->en,
fr->en, it->en).

Layout
------
CoVoST 2 is a table of translations of Common Voice (release 4) clips; the audio and the
transcripts come from Common Voice.  Two roots (``$COMMONVOICE`` and ``$COVOST2`` of the
recipe's db.sh)::

    <cv_root>/<src>/validated.tsv                 Common Voice table of the source language
    <cv_root>/<src>/clips/<path>                  the MP3 clips
    <covost_root>/covost_v2.<src>_<tgt>.tsv       one translation table per pair, or as released:
    <covost_root>/covost_v2.<src>_<tgt>.tsv.tar.gz  (https://dl.fbaipublicfiles.com/covost/)

* ``validated.tsv`` is read by `espnet_sllm.data.corpora.common_voice.read_cv_table` (columns by name:
  ``path``, ``sentence``, ``client_id``; literal quotes; its checks and errors).
* ``covost_v2.<src>_<tgt>.tsv``: UTF-8, TAB-separated, header row; the columns ``path``,
  ``translation`` and ``split`` are read BY NAME (the release also has ``sentence`` and
  ``client_id``, which are not used: the transcript and speaker come from Common Voice, as in
  CoVoST's own ``get_covost_splits.py``).  Quotes are literal (``csv.QUOTE_NONE``); a
  backslash escapes the next character (``\\"`` -> ``"``, ``\\\\`` -> ``\\``), the convention
  with which CoVoST's tools (``get_covost_splits.py``, fairseq, HF datasets) write and read
  these files.  ``split`` is ``train``, ``train_covost``, ``dev`` or ``test``; our ``train``
  set is ``train`` + ``train_covost`` (CoVoST 2's training split).
* When only the ``.tar.gz`` is there, its ``covost_v2.<src>_<tgt>.tsv`` is extracted (python
  tarfile, no shell tool) into a work folder (``work_dir``; the corpus folder may be read-only)
  and re-used there while it is newer than the archive (`find_covost_tsv`).

Ids and labels
--------------
::

    speaker    cv-<src>-<client_id[:8]>                    cv-en-1a2b3c4d
    utterance  cv-<src>-<client_id[:8]>-<clip stem>-<tgt>  cv-en-1a2b3c4d-common_voice_en_12-de

The speaker is the one of ``espnet_sllm.data.corpora.common_voice`` (no client_id: the utterance is
its own speaker, ``cv-<src>-<clip stem>-<tgt>``).  The ``-<tgt>`` suffix keeps ids unique in a
set that combines pairs sharing a source language (CoVoST has en->de, en->ja, ... on the same
English clips) and distinct from the ASR ids of the same clip (common_voice.py), so that ASR and
ST copies of one clip can be combined; within one pair a clip is listed once (a second row is
an error).  Each utterance has:

* ``wav.scp``: the absolute path of the MP3 clip (stage 2 decodes it with soundfile and
  resamples 48 kHz -> 16 kHz);
* ``text``: the transcript (the Common Voice sentence, stripped, otherwise verbatim);
* ``text_tgt``: the translation (stripped, otherwise verbatim);
* ``utt2task``: ``st``;  ``utt2lang``: the source language (ISO 639-1: en de es fr it).

Checks
------
Errors (`ReaderError` naming ``file:line``; the command line prints ``ERROR: ...`` and exits
with 1): a CoVoST table without a ``path``, ``translation`` or ``split`` column, a header that
is not UTF-8, a row whose column count differs from the header's, an empty ``path``, a
``split`` value other than the four above, a clip listed twice, and the errors of the Common
Voice table.  Dropped and counted per set, under the first reason that applies, in this order:
``empty_translation``; ``not_in_cv_table`` (the clip is not in the Common Voice table, e.g. a
newer release that no longer validates it; CoVoST's own split script drops them the same way,
by an inner join); ``empty_sentence`` (the Common Voice transcript is empty); ``missing_audio``
(the MP3 file does not exist).  A row with bytes that are not UTF-8 (``not_utf8``) cannot be
given to a set: it is counted in the table's own summary line (``covost_v2.<pair>.tsv`` or
``validated.tsv``: ``rows`` read, ``kept`` used, ``dropped``), printed when it dropped
something; a clip whose Common Voice row was dropped so is then ``not_in_cv_table``.  With
``strict`` (``--strict true``) every drop is an error instead.

Usage:
    python -m espnet_sllm.data.corpora.covost2 --cv_root /db/cv-corpus-4 --covost_root /db/covost2 \\
        --pairs en_de fr_en --data_dir data [--work_dir data/local/covost2] [--strict true]
        # -> data/covost_en_de_train data/covost_en_de_dev data/covost_en_de_test
        #    data/covost_fr_en_train ...  (combine them with python -m espnet_sllm.data.kaldi_dir)

    from espnet_sllm.data.corpora.covost2 import find_covost_tsv, read_covost2
    tsv = find_covost_tsv("/db/covost2", "fr_en", work_dir="data/local/covost2")
    sets, stats = read_covost2(tsv, "/db/cv-corpus-4/fr", "fr_en")   # {"train": [...], ...}
"""
import argparse
import csv
import logging
import os
import shutil
import sys
import tarfile
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from espnet_sllm.data.corpora.common_voice import clip_stem, read_cv_table, speaker_and_utterance
from espnet_sllm.data.kaldi_dir import Utterance, write_data_dir
from espnet_sllm.data.corpora.reader_utils import (
    ReaderError,
    ReaderStats,
    add_strict_option,
    iter_lines,
    parse_list,
    run_main,
)

logger = logging.getLogger(__name__)

# The directions of Ideal-LLM's CoVoST 2 experiments: <src>_<tgt> (Common Voice codes).
PAIRS = ("en_de", "de_en", "es_en", "fr_en", "it_en")
# Value of the ``split`` column -> our set.
SPLIT_TO_SET: Dict[str, str] = {"train": "train", "train_covost": "train", "dev": "dev",
                                "test": "test"}
SETS = ("train", "dev", "test")
REQUIRED_COLUMNS = ("path", "translation", "split")
CV_TABLE = "validated"
TASK = "st"
DOWNLOAD_URL = "https://dl.fbaipublicfiles.com/covost"


class CovostRow(NamedTuple):
    """One row of a CoVoST table."""

    path: str
    translation: str
    split: str  # the value of the file (train_covost, ...)
    line: int


def split_pair(pair: str) -> Tuple[str, str]:
    """``("fr", "en")`` of ``"fr_en"``."""
    src, sep, tgt = pair.partition("_")
    if not sep or not src or not tgt:
        raise ValueError(f"bad CoVoST pair {pair!r}: expected <src>_<tgt>, e.g. fr_en")
    return src, tgt


def covost_tsv_name(pair: str) -> str:
    return f"covost_v2.{pair}.tsv"


def set_name(pair: str, set_: str) -> str:
    """Data directory name of one set of one pair: ``covost_fr_en_test``."""
    return f"covost_{pair}_{set_}"


def find_covost_tsv(covost_root: str, pair: str, work_dir: Optional[str] = None) -> str:
    """Path of the CoVoST table of ``pair``: ``<covost_root>/covost_v2.<pair>.tsv`` when it is
    there, else the table extracted from ``<covost_root>/covost_v2.<pair>.tsv.tar.gz`` into
    ``work_dir`` (extracted again only when the archive is newer than an earlier extraction).
    """
    name = covost_tsv_name(pair)
    direct = os.path.join(covost_root, name)
    if os.path.isfile(direct):
        return direct
    archive = f"{direct}.tar.gz"
    if not os.path.isfile(archive):
        raise FileNotFoundError(
            f"{direct}: not found, nor {archive} (download {DOWNLOAD_URL}/{name}.tar.gz into "
            f"the CoVoST 2 folder)"
        )
    if work_dir is None:
        raise ValueError(f"{direct}: only the archive {archive} is there: give a work folder "
                         f"(--work_dir) to extract it into")
    out = os.path.join(work_dir, name)
    if os.path.isfile(out) and os.path.getmtime(out) >= os.path.getmtime(archive):
        logger.info("%s: using %s, extracted from it earlier", archive, out)
        return out
    logger.info("%s: extracting %s into %s", archive, name, work_dir)
    os.makedirs(work_dir, exist_ok=True)
    tmp = f"{out}.tmp"
    try:
        with tarfile.open(archive, "r:*") as tar:
            member = next((m for m in tar if m.isfile() and os.path.basename(m.name) == name),
                          None)
            if member is None:
                raise ReaderError(f"{archive}: the archive holds no file {name}")
            # Copy the one member by hand: nothing of the archive's paths reaches the disk.
            with tar.extractfile(member) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
    except (tarfile.TarError, OSError, EOFError) as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise ReaderError(f"{archive}: cannot extract {name}: {e}") from None
    os.replace(tmp, out)
    return out


def _split_escaped(line: str, where: str) -> List[str]:
    try:
        return next(csv.reader([line], delimiter="\t", quoting=csv.QUOTE_NONE,
                               escapechar="\\", strict=True))
    except csv.Error as e:  # e.g. a backslash at the very end of the line
        raise ReaderError(f"{where}: {e}: {line!r}") from None


def read_covost_tsv(tsv: str, stats: Optional[ReaderStats] = None) -> List[CovostRow]:
    """Rows of a CoVoST table, in file order, with the checks of the module docstring.

    ``stats`` counts the rows read and kept, and drops rows that are not UTF-8 (without it,
    such a row is an error)."""
    lines = iter_lines(tsv, stats=stats, header=True)
    first = next(lines, None)
    if first is None:
        raise ReaderError(f"{tsv}:1: empty file, expected a header row")
    header = [name.strip() for name in _split_escaped(first[1], f"{tsv}:{first[0]}")]
    col = {name: i for i, name in enumerate(header)}
    absent = [c for c in REQUIRED_COLUMNS if c not in col]
    if absent:
        raise ReaderError(f"{tsv}:{first[0]}: header lacks column(s) {absent}; found: {header}")
    rows: List[CovostRow] = []
    line_of: Dict[str, int] = {}
    for lineno, line in lines:
        where = f"{tsv}:{lineno}"
        fields = _split_escaped(line, where)
        if len(fields) != len(header):
            raise ReaderError(f"{where}: {len(fields)} TAB-separated columns, but the header "
                              f"has {len(header)}: {line!r}")
        path = fields[col["path"]].strip()
        if not path:
            raise ReaderError(f"{where}: empty 'path' column")
        split = fields[col["split"]].strip()
        if split not in SPLIT_TO_SET:
            raise ReaderError(f"{where}: unknown split {split!r}; valid: "
                              f"{', '.join(SPLIT_TO_SET)}")
        if path in line_of:
            raise ReaderError(f"{where}: clip {path!r} is listed again (first on line "
                              f"{line_of[path]})")
        line_of[path] = lineno
        rows.append(CovostRow(path, fields[col["translation"]].strip(), split, lineno))
        if stats is not None:
            stats.rows += 1
            stats.keep()
    return rows


def read_covost2(
    covost_tsv: str, cv_lang_dir: str, pair: str, cv_table: str = CV_TABLE,
    strict: bool = False,
) -> Tuple[Dict[str, List[Utterance]], Dict[str, ReaderStats]]:
    """Read the three sets of one CoVoST 2 pair.

    Args:
        covost_tsv: the pair's table (see `find_covost_tsv`).
        cv_lang_dir: ``<cv_root>/<src>``, holding ``<cv_table>.tsv`` and ``clips/``.
        pair: ``<src>_<tgt>`` (one of `PAIRS`, or any CoVoST 2 pair).
        cv_table: the Common Voice table giving transcripts and speakers (``validated``).
        strict: a row that would be dropped (see the module docstring) is an error instead.

    Returns:
        ``({set: utterances in file order}, {set: statistics})`` for the sets ``train``,
        ``dev``, ``test`` (the statistics count rows per value of the ``split`` column), and
        the statistics of the two tables read, ``covost_table`` and ``cv_table`` (rows read,
        rows used, rows dropped because they are not UTF-8).
    """
    src, tgt = split_pair(pair)
    covost_stats = ReaderStats(covost_tsv, strict=strict)
    rows = read_covost_tsv(covost_tsv, covost_stats)
    cv_tsv = os.path.join(cv_lang_dir, f"{cv_table}.tsv")
    cv_stats = ReaderStats(cv_tsv, strict=strict)
    table = read_cv_table(cv_tsv, keep={r.path for r in rows}, stats=cv_stats)
    clips = os.path.join(cv_lang_dir, "clips")

    sets: Dict[str, List[Utterance]] = {s: [] for s in SETS}
    stats = {s: ReaderStats(f"{covost_tsv} ({s})", strict=strict) for s in SETS}
    for row in rows:
        where = f"{covost_tsv}:{row.line}"
        set_ = SPLIT_TO_SET[row.split]
        st = stats[set_]
        st.rows += 1
        if not row.translation:
            st.drop("empty_translation", where, row.path)
            continue
        cv = table.get(row.path)
        if cv is None:
            st.drop("not_in_cv_table", where, f"{row.path} is not in {cv_tsv}")
            continue
        if not cv.sentence:
            st.drop("empty_sentence", where, f"{cv_tsv}:{cv.line}")
            continue
        clip = os.path.join(clips, row.path)
        if not os.path.isfile(clip):
            st.drop("missing_audio", where, clip)
            continue
        spk, uttid = speaker_and_utterance(src, cv.client_id, clip_stem(row.path, where))
        sets[set_].append(Utterance(uttid=f"{uttid}-{tgt}", wav=os.path.abspath(clip), spk=spk,
                                    text=cv.sentence, text_tgt=row.translation, lang=src,
                                    task=TASK))
        st.keep(row.split)
    stats["covost_table"] = covost_stats
    stats["cv_table"] = cv_stats
    for st in stats.values():
        st.log_drops(logger)
    return sets, stats


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write the Kaldi data directories of CoVoST 2 pairs (train, dev, test).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Usage:")[1],
    )
    parser.add_argument("--cv_root", required=True,
                        help="Common Voice (release 4) root, holding <src>/validated.tsv and "
                             "<src>/clips/")
    parser.add_argument("--covost_root", required=True,
                        help="folder holding covost_v2.<src>_<tgt>.tsv (or .tsv.tar.gz)")
    parser.add_argument("--pairs", nargs="+", default=None,
                        help=f"<src>_<tgt> pairs (default: all of {' '.join(PAIRS)})")
    parser.add_argument("--data_dir", default="data",
                        help="writes <data_dir>/covost_<src>_<tgt>_{train,dev,test}")
    parser.add_argument("--work_dir", default=None,
                        help="where a table found only as .tsv.tar.gz is extracted")
    parser.add_argument("--cv_table", default=CV_TABLE,
                        help="the Common Voice <table>.tsv with the transcripts")
    add_strict_option(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        pairs = parse_list(args.pairs, PAIRS, "CoVoST 2 pair")
        for root, what in ((args.cv_root, "Common Voice"), (args.covost_root, "CoVoST 2")):
            if not os.path.isdir(root):
                raise FileNotFoundError(f"{what} root {root!r} does not exist")
        for pair in pairs:
            src, _ = split_pair(pair)
            tsv = find_covost_tsv(args.covost_root, pair, args.work_dir)
            sets, stats = read_covost2(tsv, os.path.join(args.cv_root, src), pair,
                                       args.cv_table, strict=args.strict)
            for table in ("covost_table", "cv_table"):
                if stats[table].total_dropped:
                    print(stats[table].summary())
            for set_ in SETS:  # all three or none: a pair is usable only with its test set
                if not sets[set_]:
                    raise ReaderError(f"{tsv}: no usable row for the {set_} set "
                                      f"({stats[set_].summary()})")
            for set_ in SETS:
                out = os.path.join(args.data_dir, set_name(pair, set_))
                write_data_dir(out, sets[set_])
                stats[set_].name = out
                print(stats[set_].summary())
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
