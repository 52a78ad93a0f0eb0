"""Reader of the AISHELL-2 evaluation sets (AISHELL-DEV-TEST-SET) into Kaldi data directories.

Used by egs2/aishell_wmt/asr1 (Wu et al.: ASR test on AISHELL-2 ``test``, iOS channel).  The
AISHELL-2 development/test release is the folder ``AISHELL-DEV-TEST-SET``, one folder per
recording device and split, as released (the layout ESPnet's and Kaldi's ``egs/aishell2``
``local/prepare_data.sh`` read)::

    AISHELL-DEV-TEST-SET/<device>/<split>/wav.scp      IT0011W0001<TAB>wav/T0011/IT0011W0001.wav
    AISHELL-DEV-TEST-SET/<device>/<split>/trans.txt    IT0011W0001<TAB><text>
    AISHELL-DEV-TEST-SET/<device>/<split>/wav/T0011/IT0011W0001.wav

``<device>`` is ``iOS`` (also spelled ``IOS`` in some copies: matched case-insensitively),
``Android`` or ``Mic``; ``<split>`` is ``dev`` or ``test``.  The root given (``$AISHELL2_TEST``
of the recipe's db.sh) is either the folder holding ``AISHELL-DEV-TEST-SET`` or that folder
itself.  ``wav.scp`` paths are relative to the ``<device>/<split>`` folder (an absolute path is
taken as is).  Lines are split at the first TAB (at the first run of blanks when a line has no
TAB); the text has every space removed (Mandarin is scored per character).

Ids: the release names each file after the device and the speaker: the utterance id is
``<device letter><speaker folder>W<nnnn>`` (``IT0011W0001`` in ``wav/T0011/``), the device
letter being ``I`` (iOS), ``A`` (Android) or ``M`` (Mic); the training part of AISHELL-2 names
its files the same way (``iOS/data/wav/C0001/IC0001W0001.wav``).  The utterance id is the
release's.  The speaker id is the device letter followed by the speaker folder (``IT0011``), so
that it is a prefix of every utterance id of that speaker (Kaldi's sort rule: sorting by
utterance and by speaker give the same order).  Kaldi's and ESPnet's recipes take the bare
folder (``T0011``), which is not a prefix; with the letter, a speaker folder found under two
devices gives one speaker id per device (channel).  ``utt2lang`` is ``zh``.

Checks: dropped and counted: ``no_transcript`` (an id of wav.scp not in trans.txt),
``no_audio`` (an id of trans.txt not in wav.scp), ``other_device`` (the id is
``<letter><folder>...`` with the letter of another device, e.g. an Android ``AT0011W0001`` in
the iOS list), ``speaker_mismatch`` (the id does not start with a device letter followed by the
speaker folder of its WAV path), ``missing_audio`` (the WAV file does not exist),
``empty_text``.  Errors (`ReaderError` naming ``file:line``): an id listed twice in one file, a
wav.scp line without a path, utterance ids that do not sort like their speaker ids (speaker
folders of different lengths, e.g. ``T001`` and ``T0011``), a missing wav.scp or trans.txt.

Usage:
    python -m espnet_sllm.data.corpora.aishell2 --root /db/aishell2 --out data/aishell2_test \\
        [--device iOS] [--split test]

    from espnet_sllm.data.corpora.aishell2 import read_aishell2
    utts, stats = read_aishell2("/db/aishell2", device="iOS", split="test")
"""
import argparse
import logging
import os
import sys
from typing import Dict, List, Optional, Tuple

from espnet_sllm.data.kaldi_dir import Utterance
from espnet_sllm.data.corpora.reader_utils import (
    ReaderError,
    ReaderStats,
    add_strict_option,
    check_id,
    iter_lines,
    parse_list,
    run_main,
    write_set,
)

logger = logging.getLogger(__name__)

RELEASE_DIR = "AISHELL-DEV-TEST-SET"
DEVICES = ("iOS", "Android", "Mic")
# The letter that starts the utterance ids of each device (IT0011W0001, AT0011W0001, ...).
DEVICE_LETTERS = {"iOS": "I", "Android": "A", "Mic": "M"}
SPLITS = ("dev", "test")
LANG = "zh"


def _find_folder(parent: str, name: str) -> Optional[str]:
    """``parent/name``, the name matched case-insensitively (``iOS`` / ``IOS``)."""
    exact = os.path.join(parent, name)
    if os.path.isdir(exact):
        return exact
    if os.path.isdir(parent):
        for entry in sorted(os.listdir(parent)):
            if entry.lower() == name.lower() and os.path.isdir(os.path.join(parent, entry)):
                return os.path.join(parent, entry)
    return None


def set_dir(root: str, device: str = "iOS", split: str = "test") -> str:
    """The ``<device>/<split>`` folder of the release under ``root`` (see the docstring)."""
    for base in (os.path.join(root, RELEASE_DIR), root):
        dev_dir = _find_folder(base, device)
        if dev_dir is not None:
            split_dir = os.path.join(dev_dir, split)
            if os.path.isdir(split_dir):
                return split_dir
    raise FileNotFoundError(
        f"{root}: no {RELEASE_DIR}/{device}/{split} folder (give the folder holding "
        f"{RELEASE_DIR}, or {RELEASE_DIR} itself)"
    )


def _split_line(line: str) -> List[str]:
    fields = line.split("\t", 1) if "\t" in line else line.split(None, 1)
    return [f.strip() for f in fields]


def _read_two_columns(path: str, what: str, stats: ReaderStats) -> Dict[str, Tuple[str, int]]:
    """``{id: (second column, line number)}``; a missing second column gives ''; a line that is
    not UTF-8 is dropped and counted (``not_utf8``)."""
    out: Dict[str, Tuple[str, int]] = {}
    for lineno, line in iter_lines(path, stats=stats):
        where = f"{path}:{lineno}"
        fields = _split_line(line)
        uttid = check_id(fields[0], "utterance id", where)
        if uttid in out:
            raise ReaderError(f"{where}: id {uttid!r} already on line {out[uttid][1]}")
        out[uttid] = (fields[1] if len(fields) > 1 else "", lineno)
    if not out:
        raise ReaderError(f"{path}: no {what} line")
    return out


def speaker_id(uttid: str, folder: str, device: str = "iOS") -> Optional[str]:
    """The speaker id of ``uttid`` found in the speaker folder ``folder``: the device letter
    followed by the folder (``IT0011`` for ``IT0011W0001`` in ``wav/T0011/``), or None when the
    id does not start with the letter of ``device`` followed by the folder."""
    spk = DEVICE_LETTERS[device] + folder
    if folder and uttid.startswith(spk):
        return spk
    return None


def read_aishell2(
    root: str, device: str = "iOS", split: str = "test", strict: bool = False
) -> Tuple[List[Utterance], ReaderStats]:
    """Read one ``<device>/<split>`` set of AISHELL-DEV-TEST-SET.

    With ``strict`` (``--strict true``) a row that would be dropped is an error naming it.

    Returns:
        (utterances sorted by id, statistics).  rows = ids of wav.scp and trans.txt together.
    """
    device = parse_list([device], DEVICES, "AISHELL-2 device")[0]
    split = parse_list([split], SPLITS, "AISHELL-2 split")[0]
    sdir = set_dir(root, device, split)
    scp_path = os.path.join(sdir, "wav.scp")
    trans_path = os.path.join(sdir, "trans.txt")
    for p in (scp_path, trans_path):
        if not os.path.isfile(p):
            raise FileNotFoundError(f"{p}: not found (an AISHELL-2 set folder holds wav.scp "
                                    f"and trans.txt)")
    stats = ReaderStats(f"aishell2 {device}/{split}", strict=strict)
    wavs = _read_two_columns(scp_path, "wav.scp", stats)
    trans = _read_two_columns(trans_path, "trans.txt", stats)

    utts: List[Utterance] = []
    for uttid in sorted(set(wavs) | set(trans)):
        stats.rows += 1
        if uttid not in wavs:
            stats.drop("no_audio", f"{trans_path}:{trans[uttid][1]}", uttid)
            continue
        rel, lineno = wavs[uttid]
        where = f"{scp_path}:{lineno}"
        if not rel:
            raise ReaderError(f"{where}: no WAV path after the id {uttid!r}")
        if uttid not in trans:
            stats.drop("no_transcript", where, uttid)
            continue
        path = os.path.abspath(os.path.join(sdir, rel))
        folder = os.path.basename(os.path.dirname(path))
        spk = speaker_id(uttid, folder, device)
        if spk is None:
            other = next((d for d, letter in DEVICE_LETTERS.items()
                          if folder and uttid.startswith(letter + folder)), None)
            if other is not None:
                stats.drop("other_device", where, f"{uttid}: an id of {other}, not of {device}")
            else:
                stats.drop("speaker_mismatch", where, f"{uttid} does not start with "
                           f"{DEVICE_LETTERS[device]}{folder} ({rel})")
            continue
        if not os.path.isfile(path):
            stats.drop("missing_audio", where, path)
            continue
        text = "".join(trans[uttid][0].split())
        if not text:
            stats.drop("empty_text", f"{trans_path}:{trans[uttid][1]}", uttid)
            continue
        if utts and spk < utts[-1].spk:
            raise ReaderError(
                f"{where}: utterance ids and speaker ids sort differently: "
                f"{utts[-1].uttid!r} (speaker {utts[-1].spk!r}, line {wavs[utts[-1].uttid][1]}) "
                f"sorts before {uttid!r} (speaker {spk!r}); the speaker folders are expected "
                f"to have one length, as in the release (T0011)")
        utts.append(Utterance(uttid=uttid, wav=path, spk=spk, text=text, lang=LANG))
        stats.keep()
    return utts, stats


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write a Kaldi data directory from one set of AISHELL-DEV-TEST-SET.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Usage:")[1],
    )
    parser.add_argument("--root", required=True,
                        help=f"folder holding {RELEASE_DIR} (or {RELEASE_DIR} itself)")
    parser.add_argument("--device", default="iOS", help=f"{' | '.join(DEVICES)} (default: iOS)")
    parser.add_argument("--split", default="test", help=f"{' | '.join(SPLITS)} (default: test)")
    parser.add_argument("--out", required=True, help="output data directory")
    add_strict_option(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        if not os.path.isdir(args.root):
            raise FileNotFoundError(f"AISHELL-2 test root {args.root!r} does not exist")
        utts, stats = read_aishell2(args.root, args.device, args.split, args.strict)
        stats.log_drops(logger)
        write_set(args.out, utts, stats, f"AISHELL-2 {args.device}/{args.split}")
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
