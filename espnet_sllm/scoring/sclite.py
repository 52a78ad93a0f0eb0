"""Bridge to NIST sclite (Debian package ``sctk``): trn files in, counts out.

Layout and command follow ESPnet's scoring stage: a ``score_wer/`` or ``score_cer/`` directory
holding ``ref.trn``, ``hyp.trn`` and ``result.txt``, made by::

    sclite -r ref.trn trn -h hyp.trn trn -i rm -o all stdout -s > result.txt

trn format (one line per utterance, the same in ref.trn and hyp.trn)::

    <unit> <unit> ... <TAB>(<speaker>-<uttid>)

as ESPnet writes it (tokens, a tab, then the id in parentheses, with the speaker first). sclite's
``-i rm`` id format takes the speaker from the text before the first ``-``; without one it
prints "can't locate RM id" and lumps all such utterances into a nameless speaker, so the id
always carries a speaker: the utt2spk speaker when the caller has one (ESPnet's choice), else the
language label, which turns sclite's per-speaker tables into per-language tables. ``-`` in the
speaker part is replaced by ``_`` because it would move the split point.

Deliberate difference from ESPnet: ``-s`` (case-sensitive). Without it sclite folds ASCII
letters only (``A`` = ``a`` but ``É`` != ``é``); case is the normaliser's business
(:mod:`espnet_sllm.scoring.normalize`), and with ``-s`` sclite and the pure-Python scorer
(:mod:`espnet_sllm.scoring.error_rate`) compare tokens literally and agree.

Counts: ``-o all`` writes the percentage summary (``Sum/Avg`` row), the raw-count summary
(``Sum`` row) and the per-utterance alignments (``id: (...)`` / ``Scores: (#C #S #D #I) c s d
i``). The per-utterance ``Scores`` lines are parsed (exact integers, and they give per-language
numbers) and checked against the ``Sum`` row.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from espnet_sllm.scoring.error_rate import ErrorCounts, sum_counts

DEBIAN_SCLITE = "/usr/lib/sctk/bin/sclite"

# Tokens that sclite's trn reader interprets instead of comparing literally: "{ a / b }"
# alternations and "@" (a null word in alternations). A normaliser such as mlc_slm deletes
# them; with "none" they may survive, and then sclite and the Python scorer can disagree.
_SCLITE_SPECIAL = re.compile(r"^(@|\{.*|.*\})$")

_SUM_ROW = re.compile(
    r"^\s*\|\s*Sum\s*\|\s*(\d+)\s+(\d+)\s*\|\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\|"
)
_ID_LINE = re.compile(r"^id:\s*\((.*)\)\s*$")
_SCORES_LINE = re.compile(r"^Scores:\s*\(#C #S #D #I\)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)")


class ScliteNotFoundError(RuntimeError):
    """sclite is not installed."""


class ScliteError(RuntimeError):
    """sclite failed or wrote output that cannot be parsed."""


def find_sclite(explicit: Optional[str] = None) -> str:
    """Path of the sclite binary: ``explicit``, Debian's ``/usr/lib/sctk/bin/sclite``, or PATH.

    Raises:
        ScliteNotFoundError: with the command that installs it.
    """
    if explicit:
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit
        raise ScliteNotFoundError(f"sclite not found or not executable: {explicit}")
    if os.access(DEBIAN_SCLITE, os.X_OK):
        return DEBIAN_SCLITE
    found = shutil.which("sclite")
    if found:
        return found
    raise ScliteNotFoundError(
        f"sclite not found (neither {DEBIAN_SCLITE} nor 'sclite' on PATH). Install it with "
        "'apt-get install sctk' (or 'make install'), or score without it: --use_sclite false"
    )


def sclite_available() -> bool:
    """Whether :func:`find_sclite` would succeed."""
    try:
        find_sclite()
        return True
    except ScliteNotFoundError:
        return False


def make_trn_id(uttid: str, speaker: str) -> str:
    """The ``<speaker>-<uttid>`` id of a trn line (without the parentheses).

    Raises:
        ValueError: if the utterance id contains whitespace or parentheses, which would break
            the trn line.
    """
    if not uttid or re.search(r"[\s()]", uttid):
        raise ValueError(f"utterance id {uttid!r} cannot be written to a trn file "
                         "(empty, or contains whitespace or parentheses)")
    # Only the first "-" separates the speaker in sclite's "rm" id format.
    spk = re.sub(r"[\s()\-]", "_", speaker) or "spk"
    return f"{spk}-{uttid}"


def special_tokens(tokens: Iterable[str]) -> List[str]:
    """Tokens that sclite would interpret (alternations, null words) rather than compare."""
    return [t for t in tokens if _SCLITE_SPECIAL.match(t)]


def write_trn(path: Path, entries: Iterable[Tuple[str, Sequence[str]]]) -> None:
    """Write ``(trn_id, tokens)`` entries as trn lines ``tok tok ...\\t(trn_id)``."""
    with open(path, "w", encoding="utf-8") as f:
        for trn_id, tokens in entries:
            f.write(" ".join(tokens) + f"\t({trn_id})\n")


def run_sclite(score_dir: Path, sclite: Optional[str] = None) -> Path:
    """Run sclite on ``score_dir/{ref,hyp}.trn``; write and return ``score_dir/result.txt``.

    sclite runs inside ``score_dir`` with relative names so that result.txt names the system
    ``hyp.trn`` as in ESPnet's outputs.
    """
    binary = find_sclite(sclite)
    score_dir = Path(score_dir)
    for name in ("ref.trn", "hyp.trn"):
        if not (score_dir / name).is_file():
            raise FileNotFoundError(f"{score_dir / name} is missing")
    cmd = [binary, "-r", "ref.trn", "trn", "-h", "hyp.trn", "trn",
           "-i", "rm", "-o", "all", "stdout", "-s"]
    result = score_dir / "result.txt"
    with open(result, "w", encoding="utf-8") as out:
        proc = subprocess.run(cmd, cwd=score_dir, stdout=out, stderr=subprocess.PIPE)
    stderr = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0 or "Error" in stderr:
        raise ScliteError(
            f"sclite failed in {score_dir} (exit {proc.returncode}): {' '.join(cmd)}\n{stderr}"
        )
    return result


def parse_sum_row(text: str) -> Optional[ErrorCounts]:
    """The raw-count ``| Sum |`` row of a result.txt, or None when absent."""
    for line in text.splitlines():
        m = _SUM_ROW.match(line)
        if m:
            return ErrorCounts(*map(int, m.groups()))
    return None


def parse_result(path: Path) -> Tuple[ErrorCounts, Dict[str, ErrorCounts]]:
    """Parse an sclite ``-o all`` result.txt.

    Returns:
        (total, per_utt): the summed counts and the counts of each trn id.

    Raises:
        ScliteError: naming the file (and line) when the content is not what sclite writes,
            or when the per-utterance scores do not add up to the ``Sum`` row.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    per_utt: Dict[str, ErrorCounts] = {}
    current: Optional[str] = None
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _ID_LINE.match(line)
        if m:
            current = m.group(1)
            continue
        m = _SCORES_LINE.match(line)
        if m:
            if current is None:
                raise ScliteError(f"{path}:{lineno}: 'Scores:' line without a preceding 'id:'")
            if current in per_utt:
                raise ScliteError(f"{path}:{lineno}: id ({current}) scored twice")
            per_utt[current] = ErrorCounts.from_utterance(*map(int, m.groups()))
            current = None
    if not per_utt:
        raise ScliteError(f"{path}: no per-utterance 'Scores:' lines; was sclite run with -o all?")
    total = sum_counts(per_utt.values())
    summary = parse_sum_row(text)
    if summary is not None and summary.as_tuple() != total.as_tuple():
        raise ScliteError(
            f"{path}: the Sum row {summary.as_tuple()} differs from the sum of the "
            f"per-utterance scores {total.as_tuple()}"
        )
    return total, per_utt
