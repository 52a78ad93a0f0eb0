"""Score one decoded set: WER/CER per language, MER, ESPnet's score dirs, RESULTS.md, a chart;
BLEU / ROUGE-L for the translation and QA utterances of the set.

Pipeline of :func:`score_set`:

1. read the reference (Kaldi ``text``), the hypothesis (``1best_recog/text``), and optionally
   ``utt2lang`` / ``utt2spk``; bad lines are errors naming ``file:line``; a hypothesis id absent
   from the reference is an error; a reference id absent from the hypothesis is scored as an
   empty hypothesis (all deletions) and reported with its count -- never dropped, since dropping
   failed utterances would flatter the system;
2. normalise both sides (:mod:`.normalize`) and cut them into units: words, or characters for
   languages written without spaces (``unit_for_language``);
3. for each unit write ``<output_dir>/score_wer`` or ``score_cer`` (``ref.trn``, ``hyp.trn``,
   ``result.txt``) and count errors with sclite, or with the pure-Python aligner that gives the
   same numbers (:mod:`.error_rate`) when sclite is absent or not wanted;
4. write ``RESULTS.md`` (ESPnet's table + a per-language table + MER), ``scores.json`` and
   ``error_rate_by_language.png`` into ``<output_dir>``.

MER (mixed error rate) = total errors / total reference units over all languages, each language
counted in its own unit (words or characters), as in the MLC-SLM challenge.

Task-aware scoring (optional inputs; without them, or with an ``utt2task`` that says ``asr``
everywhere, every output is what it was before they existed):

* ``utt2task`` picks the metric per utterance (:mod:`.tasks`): the steps above use the ``asr``
  utterances only; ``st`` utterances get sacreBLEU BLEU and ROUGE-L per direction, ``sqa``/``qa``
  ROUGE-L per language, one RESULTS.md table per task and metric. Their reference is
  ``ref_tgt`` (e.g. ``text_tgt``) when given, else ``ref``; ``utt2tgtlang`` gives the target
  language of a translation (the source is ``utt2lang``), ``hyp_marker`` cuts a
  chain-of-thought hypothesis down to its translation;
* each ``score_groups`` file (``utt2subdialect``, ...) adds a table of the ASR error rates per
  group value, with the columns of the per-language table;
* ``paper_results`` (:mod:`.paper`) puts a paper's numbers beside ours, cell by cell.

:func:`collect_results` gathers the ``scores.json`` of every decoded set below an experiment
directory into one markdown summary (``exp/<name>/RESULTS.md``).
"""

import datetime
import json
import logging
import os
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from espnet_sllm.scoring.error_rate import ErrorCounts, sum_counts, utterance_counts
from espnet_sllm.scoring.normalize import UNITS, get_normalizer, to_units, unit_for_language
from espnet_sllm.scoring.paper import (
    ALL,
    PaperResults,
    experiment_candidates,
    lookup,
    paper_cells,
    source_line,
)
from espnet_sllm.scoring.sclite import (
    ScliteError,
    find_sclite,
    make_trn_id,
    parse_result,
    run_sclite,
    sclite_available,
    special_tokens,
    write_trn,
)
from espnet_sllm.scoring.tasks import DEFAULT_TASK, TASKS, check_task, score_tasks, task_tables

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

SCORE_DIRS = {"word": "score_wer", "char": "score_cer"}
METRICS = {"word": "WER", "char": "CER"}
ESPNET_HEADER = "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|"
PLOT_NAME = "error_rate_by_language.png"


def read_kaldi_file(path: PathLike, allow_empty_value: bool = True) -> "OrderedDict[str, str]":
    """Read ``<key> <value>`` lines (Kaldi ``text``, ``utt2lang``, ...) in file order.

    An empty value is allowed for transcripts (an empty hypothesis is a valid output) and
    refused for label files.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming ``file:line`` for a line without a key (blank, or starting with a
            blank), a duplicate key, a missing value when one is required, or bad UTF-8.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    entries: "OrderedDict[str, str]" = OrderedDict()
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid UTF-8 ({e})") from None
            if not line.strip() or line[0].isspace():
                raise ValueError(
                    f"{path}:{lineno}: malformed line (no utterance id at the start): {line!r}"
                )
            parts = line.split(maxsplit=1)
            key = parts[0]
            value = parts[1].strip() if len(parts) > 1 else ""
            if not value and not allow_empty_value:
                raise ValueError(f"{path}:{lineno}: '{key}' has no value")
            if key in entries:
                raise ValueError(f"{path}:{lineno}: duplicate utterance id '{key}'")
            entries[key] = value
    return entries


@dataclass
class ScoredUtterance:
    """One utterance ready for scoring."""

    uttid: str
    lang: str
    unit: str
    ref: List[str]
    hyp: List[str]
    speaker: str
    missing_hyp: bool = False
    counts: Optional[ErrorCounts] = None
    #: The task (``utt2task``); for a task other than ``asr``: the language of the text scored
    #: (``tgt_lang``), the raw reference and hypothesis texts, and whether a chain-of-thought
    #: hypothesis lacked its marker. ``lang`` is always the spoken (source) language.
    task: str = "asr"
    tgt_lang: Optional[str] = None
    ref_text: str = ""
    hyp_text: str = ""
    no_marker: bool = False
    #: group name (``subdialect`` for ``utt2subdialect``) -> value, one per --score_group file
    groups: Dict[str, str] = field(default_factory=dict)


@dataclass
class SetScores:
    """Everything computed for one set; :meth:`to_dict` is the content of scores.json."""

    set_name: str
    normalizer: str
    backend: str
    by_unit: Dict[str, ErrorCounts]
    by_language: Dict[str, Tuple[str, ErrorCounts]]
    missing_hyp: List[str] = field(default_factory=list)
    inputs: Dict[str, Optional[str]] = field(default_factory=dict)

    @property
    def mer_counts(self) -> ErrorCounts:
        """Counts over all languages, each in its own unit (the MER numerator/denominator)."""
        return sum_counts(self.by_unit.values())

    def to_dict(self) -> Dict[str, object]:
        total = self.mer_counts
        return {
            "set_name": self.set_name,
            "normalizer": self.normalizer,
            "backend": self.backend,
            "inputs": self.inputs,
            "num_utts": total.snt,
            "missing_hyp": {"count": len(self.missing_hyp), "first": self.missing_hyp[:10]},
            "by_unit": {
                unit: dict(metric=METRICS[unit], score_dir=SCORE_DIRS[unit], **c.to_dict())
                for unit, c in self.by_unit.items()
            },
            "by_language": {
                lang: dict(unit=unit, metric=METRICS[unit], **c.to_dict())
                for lang, (unit, c) in self.by_language.items()
            },
            # A set without ASR utterances has no MER (None, not a misleading 0).
            "mer": {"errors": total.err, "ref_units": total.wrd,
                    "mer": total.error_rate if self.by_unit else None},
        }


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def espnet_row(dataset: str, counts: ErrorCounts, extra: Sequence[str] = ()) -> str:
    """One ``|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|`` row, percentages with 1 decimal.

    ``extra`` cells (the paper's value and the difference) follow ESPnet's nine.
    """
    p = counts.percentages()
    cells = [dataset, str(counts.snt), str(counts.wrd)]
    cells += [_fmt(p[k]) for k in ("corr", "sub", "del", "ins", "err", "serr")]
    return "|" + "|".join(cells + list(extra)) + "|"


def _table_from_dict(rows: List[Tuple[str, Dict[str, object]]],
                     papers: Optional[Sequence[Optional[Dict[str, object]]]] = None) -> List[str]:
    """ESPnet rows from scores.json ``by_unit`` entries.

    ``papers`` (one paper section per row, or None) adds the columns ``paper|Δ`` (of Err) when
    any row has a section; without, the table is ESPnet's.
    """
    if papers is None or all(p is None for p in papers):
        papers = None
    out = [ESPNET_HEADER, "|---|---|---|---|---|---|---|---|---|"]
    if papers is not None:
        out = [ESPNET_HEADER + "paper|Δ|", out[1] + "---|---|"]
    for k, (name, d) in enumerate(rows):
        extra: List[str] = []
        if papers is not None:
            extra = paper_cells(d["pct"]["err"], lookup(papers[k], d["metric"], ALL, "asr"))
        out.append(espnet_row(name, _counts_from_dict(d), extra))
    return out


def _counts_from_dict(d: Dict[str, object]) -> ErrorCounts:
    return ErrorCounts(d["snt"], d["wrd"], d["corr"], d["sub"], d["del"], d["ins"], d["err"],
                       d["serr"])


def language_table(by_language: Dict[str, Dict[str, object]], header: str = "language",
                   paper: Optional[Dict[str, object]] = None, prefix: str = "asr") -> List[str]:
    """Markdown table: language, unit, #utt, #units, Corr/Sub/Del/Ins/Err %.

    Also the table of a ``--score_group`` (``header`` = the group name, rows = its values). A
    ``paper`` section adds ``paper|Δ`` of Err, looked up under ``<prefix>/<metric>`` then
    ``<metric>`` (the row's WER, CER or MER) with the row label.
    """
    out = [
        f"|{header}|unit|#utt|#units|Corr|Sub|Del|Ins|Err|",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    if paper is not None:
        out = [out[0] + "paper|Δ|", out[1] + "---|---|"]
    for lang, d in by_language.items():
        p = d["pct"]
        cells = [lang, f"{d['metric']} ({d['unit']})", str(d["snt"]), str(d["wrd"])]
        cells += [_fmt(p[k]) for k in ("corr", "sub", "del", "ins", "err")]
        if paper is not None:
            cells += paper_cells(p["err"], lookup(paper, d["metric"], lang, prefix))
        out.append("|" + "|".join(cells) + "|")
    return out


def _mer_line(d: Dict[str, object]) -> str:
    mer = d["mer"]
    line = (
        f"MER: {_fmt(mer['mer'])} % ({mer['errors']} errors / {mer['ref_units']} reference "
        "units; each language in its own unit)"
    )
    if d.get("paper") is not None:
        cells = paper_cells(mer["mer"], lookup(d["paper"], "MER", ALL, "asr"))
        line += f"; paper: {cells[0]}, Δ {cells[1]}"
    return line


def check_mer_bound(scores_json: PathLike, max_mer: float) -> Tuple[bool, str]:
    """Whether the MER in a stage-9 ``scores.json`` is at most ``max_mer`` (percent).

    Returns ``(ok, one line naming the file, the MER and the bound)``.  A file without an MER
    (nothing scored), unreadable or not stage-9 output is an error naming it, never a pass.
    """
    path = Path(scores_json)
    try:
        with open(path, encoding="utf-8") as f:
            mer = json.load(f)["mer"]
        value, errors, units = mer["mer"], mer["errors"], mer["ref_units"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a readable stage-9 scores.json with an MER ({e!r})")
    if value is None:
        raise ValueError(f"{path}: no MER (no utterance was scored)")
    ok = value <= max_mer
    line = (f"{path}: MER {value:.1f} % ({errors} errors / {units} reference units) "
            f"{'<=' if ok else '>'} bound {max_mer:g} %")
    return ok, line


def _missing_line(d: Dict[str, object]) -> Optional[str]:
    miss = d["missing_hyp"]
    if not miss["count"]:
        return None
    return (
        f"**Warning**: {miss['count']} of {d['num_utts']} reference utterances had no "
        f"hypothesis and were scored as empty (first: {', '.join(miss['first'][:3])})."
    )


def _language_section(d: Dict[str, object]) -> List[str]:
    """Per-language table, MER line and the missing-hypothesis warning (if any) of one set.

    A set without ASR utterances has neither table nor MER: only the warning.
    """
    lines: List[str] = []
    if d["by_language"]:
        lines += language_table(d["by_language"], paper=d.get("paper")) + ["", _mer_line(d), ""]
    missing = _missing_line(d)
    if missing:
        lines += [missing, ""]
    if d.get("no_marker"):
        lines += [f"{d['no_marker']} of {d['num_utts']} hypotheses lack the marker "
                  f"{d['inputs']['hyp_before_marker']!r}: scored whole as the transcript.", ""]
    return lines


def _group_section(d: Dict[str, object], heading: str) -> List[str]:
    """One ASR error-rate table per --score_group file (nothing without groups)."""
    lines: List[str] = []
    for name, g in d.get("groups", {}).items():
        if not g["by_value"]:
            continue
        lines += [f"{heading} {name} (`{Path(g['file']).name}`)", ""]
        lines += language_table(g["by_value"], header=name, paper=d.get("paper"), prefix=name)
        lines.append("")
    return lines


def _task_lines(d: Dict[str, object]) -> List[str]:
    """Top bullets added by task-aware scoring: task counts and the paper's source."""
    lines = []
    if d.get("tasks"):
        lines.append("- tasks: " + ", ".join(f"{t} {n}" for t, n in d["tasks"].items()))
    src = source_line(d.get("paper"))
    if src:
        lines.append(f"- {src}")
    return lines


def set_markdown(d: Dict[str, object], heading_level: int = 2) -> str:
    """RESULTS.md section of one set, from its scores.json content."""
    h = "#" * heading_level
    lines = [f"{h} {d['set_name']}", ""]
    lines.append(f"- normalizer: `{d['normalizer']}`, scored by: {d['backend']}")
    lines += _task_lines(d)
    lines.append("")
    for unit in UNITS:
        if unit in d["by_unit"]:
            lines += [f"{h}# {METRICS[unit]}", ""]
            papers = [d["paper"]] if d.get("paper") is not None else None
            lines += _table_from_dict([(d["set_name"], d["by_unit"][unit])], papers)
            lines.append("")
    if d["by_language"]:
        lines += [f"{h}# Per language", ""]
    lines += _language_section(d)
    lines += _group_section(d, f"{h}# Per")
    for task, t in d.get("task_scores", {}).items():
        lines += task_tables(task, [(None, t, d.get("paper"))], heading=f"{h}#")
    return "\n".join(lines)


def plot_by_language(d: Dict[str, object], path: PathLike) -> None:
    """Bar chart of each language's error rate (WER or CER), with the MER as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers / in tests
    import matplotlib.pyplot as plt

    langs = list(d["by_language"])
    rates = [d["by_language"][k]["pct"]["err"] for k in langs]
    units = [d["by_language"][k]["unit"] for k in langs]
    colors = ["tab:blue" if u == "word" else "tab:orange" for u in units]
    heights = [r if r is not None else 0.0 for r in rates]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(langs) + 2.0), 4.0))
    bars = ax.bar(range(len(langs)), heights, color=colors)
    for bar, rate, unit in zip(bars, rates, units):
        ax.annotate(
            f"{METRICS[unit]} {_fmt(rate)}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center", va="bottom", fontsize=8,
        )
    mer = d["mer"]["mer"]
    # Head-room above the tallest bar so that its label stays inside the axes.
    ax.set_ylim(0, 1.15 * max(heights + [mer or 0.0, 1.0]))
    if mer is not None:
        ax.axhline(mer, color="gray", linestyle="--", linewidth=1, label=f"MER {mer:.1f}")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xticks(range(len(langs)))
    ax.set_xticklabels(langs, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("error rate (%)")
    ax.set_title(f"{d['set_name']}: error rate by language (blue WER, orange CER)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _write_python_result(path: Path, utts: Sequence[ScoredUtterance], trn_ids: Sequence[str],
                         total: ErrorCounts) -> None:
    """A result.txt for the pure-Python backend, in the parts of sclite's layout we parse.

    It keeps the ESPnet score-dir layout intact (tools that look for result.txt still find the
    ``Sum`` row) and is readable by :func:`espnet_sllm.scoring.sclite.parse_result`.
    """
    lines = [
        "Scored by espnet_sllm.scoring.error_rate (sclite's alignment weights, "
        "case-sensitive); sclite itself was not run.",
        "",
        "| SPKR | # Snt # Wrd | Corr    Sub    Del    Ins    Err  S.Err |",
        "| Sum  | {} {} | {} {} {} {} {} {} |".format(*total.as_tuple()),
        "",
    ]
    for utt, trn_id in zip(utts, trn_ids):
        c = utt.counts
        lines += [
            f"id: ({trn_id})",
            f"Scores: (#C #S #D #I) {c.corr} {c.sub} {c.dele} {c.ins}",
            "REF:  " + " ".join(utt.ref),
            "HYP:  " + " ".join(utt.hyp),
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")


def _remove_stale_score_dir(score_dir: Path) -> None:
    """Remove our files from a score dir that this run does not produce (e.g. after --unit)."""
    if not score_dir.is_dir():
        return
    for name in ("ref.trn", "hyp.trn", "result.txt"):
        (score_dir / name).unlink(missing_ok=True)
    try:
        score_dir.rmdir()
    except OSError:
        pass  # the user put other files there: leave them


def group_name(path: PathLike) -> str:
    """Name of a --score_group file's grouping: ``utt2subdialect`` -> ``subdialect``."""
    base = Path(path).name
    return base[len("utt2"):] if base.startswith("utt2") and len(base) > 4 else base


def _require_keys(table: Dict[str, str], keys: Sequence[str], path: PathLike, what: str) -> None:
    absent = [k for k in keys if k not in table]
    if absent:
        raise ValueError(
            f"{path}: no entry for {what} '{absent[0]}' ({len(absent)} of {len(keys)} missing)"
        )


def load_utterances(
    ref: PathLike,
    hyp: PathLike,
    utt2lang: Optional[PathLike] = None,
    utt2spk: Optional[PathLike] = None,
    normalizer: str = "mlc_slm",
    unit: str = "auto",
    default_lang: str = "all",
    utt2task: Optional[PathLike] = None,
    utt2tgtlang: Optional[PathLike] = None,
    ref_tgt: Optional[PathLike] = None,
    default_tgt_lang: Optional[str] = None,
    hyp_marker: Optional[str] = None,
    score_groups: Sequence[PathLike] = (),
    hyp_before_marker: Optional[str] = None,
) -> Tuple[List[ScoredUtterance], List[str]]:
    """Read and check the inputs; return the utterances in reference order and missing hyp ids.

    Args:
        utt2task: ``<uttid> asr|st|sqa|qa`` (default: ``asr`` for every utterance).
        utt2tgtlang: ``<uttid> <target language>``: the language of a translation; of an
            answer when it has one (else its utt2lang label).
        ref_tgt: reference of the non-``asr`` utterances (e.g. ``text_tgt``); default ``ref``.
        default_tgt_lang: target language of ``st`` utterances absent from utt2tgtlang.
        hyp_marker: for ``st`` utterances, the translation is the hypothesis text after the
            first occurrence of this marker (chain of thought); without it, the hypothesis is
            empty and counted (``no_marker``).
        score_groups: ``<uttid> <value>`` files; ``group_name`` names each grouping.
        hyp_before_marker: every hypothesis is cut to the text before the first occurrence of
            this marker: the transcript of a chain-of-thought hypothesis ("<transcript>
            Translation: <translation>"), scored as ASR against ``ref`` (the transcript). A
            hypothesis without the marker is kept whole (the model transcribed and stopped)
            and counted (``no_marker``). Not with ``utt2task``.

    Raises:
        ValueError: bad lines (file:line), hypothesis ids absent from the reference, reference
            ids absent from utt2lang / utt2spk / utt2task / a group file, an unknown task, an
            ``st`` utterance without a target language, a non-``asr`` utterance absent from
            ref_tgt, two group files of the same name, unknown normaliser or unit.
    """
    norm = get_normalizer(normalizer)
    if unit not in ("auto",) + UNITS:
        raise ValueError(f"Unknown unit '{unit}'. Valid: auto, {', '.join(UNITS)}")
    for marker in (hyp_marker, hyp_before_marker):
        if marker is not None and not marker.strip():
            raise ValueError("the hypothesis marker is empty")
    if hyp_before_marker is not None and utt2task is not None:
        raise ValueError(f"{utt2task}: the transcript part of a chain-of-thought hypothesis "
                         "(--hyp_before_marker) is scored as ASR, without --utt2task")
    refs = read_kaldi_file(ref)
    hyps = read_kaldi_file(hyp)
    if not refs:
        raise ValueError(f"{ref}: no utterances")
    extra = [k for k in hyps if k not in refs]
    if extra:
        raise ValueError(
            f"{hyp}: utterance id '{extra[0]}' is not in the reference {ref} "
            f"({len(extra)} such ids); score against the matching reference"
        )
    langs = read_kaldi_file(utt2lang, allow_empty_value=False) if utt2lang else None
    spks = read_kaldi_file(utt2spk, allow_empty_value=False) if utt2spk else None
    tasks = read_kaldi_file(utt2task, allow_empty_value=False) if utt2task else None
    for table, path in ((langs, utt2lang), (spks, utt2spk), (tasks, utt2task)):
        if table is not None:
            absent = [k for k in refs if k not in table]
            if absent:
                raise ValueError(
                    f"{path}: no entry for reference utterance '{absent[0]}' "
                    f"({len(absent)} of {len(refs)} missing)"
                )
    task_of = {k: DEFAULT_TASK for k in refs}
    if tasks is not None:
        for k in refs:
            task_of[k] = check_task(tasks[k], f"{utt2task}: utterance '{k}'")
    other = [k for k in refs if task_of[k] != DEFAULT_TASK]
    tgt_langs = read_kaldi_file(utt2tgtlang, allow_empty_value=False) if utt2tgtlang else {}
    st = [k for k in other if task_of[k] == "st"]
    if default_tgt_lang is None and st:
        absent = [k for k in st if k not in tgt_langs]
        if absent:
            raise ValueError(
                f"st utterance '{absent[0]}' has no target language ({len(absent)} of "
                f"{len(st)}): give --utt2tgtlang"
                + (f" (absent from {utt2tgtlang})" if utt2tgtlang else "")
                + " or --default_tgt_lang"
            )
    refs_tgt = read_kaldi_file(ref_tgt) if ref_tgt else None
    if refs_tgt is not None:
        _require_keys(refs_tgt, other, ref_tgt, "non-asr utterance")
    groups: "OrderedDict[str, Tuple[PathLike, Dict[str, str]]]" = OrderedDict()
    for path in score_groups:
        name = group_name(path)
        if name in groups:
            raise ValueError(f"{path}: a score group named '{name}' is given twice "
                             f"({groups[name][0]} and {path})")
        table = read_kaldi_file(path, allow_empty_value=False)
        _require_keys(table, list(refs), path, "reference utterance")
        groups[name] = (path, table)

    utts, missing = [], []
    for uttid, ref_text in refs.items():
        lang = langs[uttid] if langs is not None else default_lang
        task = task_of[uttid]
        if uttid not in hyps:
            missing.append(uttid)
        hyp_text = hyps.get(uttid, "")
        tgt_lang, no_marker = None, False
        if task != DEFAULT_TASK:
            # The text scored is the translation / the answer: its language decides the units.
            if task == "st":
                tgt_lang = tgt_langs.get(uttid, default_tgt_lang)
                if hyp_marker is not None and uttid in hyps:
                    head, found, tail = hyp_text.partition(hyp_marker)
                    hyp_text, no_marker = (tail.strip(), False) if found else ("", True)
            else:
                tgt_lang = tgt_langs.get(uttid, lang)
            if refs_tgt is not None:
                ref_text = refs_tgt[uttid]
        elif hyp_before_marker is not None and uttid in hyps:
            head, found, _ = hyp_text.partition(hyp_before_marker)
            hyp_text, no_marker = head.strip(), not found
        scored_lang = tgt_lang if tgt_lang is not None else lang
        u = unit_for_language(scored_lang) if unit == "auto" else unit
        utts.append(
            ScoredUtterance(
                uttid=uttid,
                lang=lang,
                unit=u,
                ref=to_units(norm(ref_text), u),
                hyp=to_units(norm(hyp_text), u),
                speaker=spks[uttid] if spks is not None else lang,
                missing_hyp=uttid not in hyps,
                task=task,
                tgt_lang=tgt_lang,
                ref_text=ref_text,
                hyp_text=hyp_text,
                no_marker=no_marker,
                groups={name: table[uttid] for name, (_, table) in groups.items()},
            )
        )
    if missing:
        logger.warning(
            "%d of %d reference utterances have no hypothesis in %s (first: %s); they are "
            "scored as empty hypotheses (all deletions)",
            len(missing), len(refs), hyp, missing[0],
        )
    n_no_marker = sum(1 for x in utts if x.no_marker)
    if n_no_marker:
        if hyp_before_marker is not None:
            logger.warning("%d hypotheses lack the marker %r: scored whole as the transcript",
                           n_no_marker, hyp_before_marker)
        else:
            logger.warning("%d st hypotheses lack the marker %r: scored as empty", n_no_marker,
                           hyp_marker)
    return utts, missing


def score_set(
    ref: PathLike,
    hyp: PathLike,
    output_dir: PathLike,
    utt2lang: Optional[PathLike] = None,
    utt2spk: Optional[PathLike] = None,
    normalizer: str = "mlc_slm",
    set_name: Optional[str] = None,
    use_sclite: Optional[bool] = None,
    sclite: Optional[str] = None,
    unit: str = "auto",
    default_lang: str = "all",
    plot: bool = True,
    utt2task: Optional[PathLike] = None,
    utt2tgtlang: Optional[PathLike] = None,
    ref_tgt: Optional[PathLike] = None,
    default_tgt_lang: Optional[str] = None,
    hyp_marker: Optional[str] = None,
    score_groups: Sequence[PathLike] = (),
    bleu_normalizer: str = "none",
    bleu_tokenize: Optional[str] = None,
    paper_results: Optional[Union[PathLike, PaperResults]] = None,
    paper_system: Optional[str] = None,
    hyp_before_marker: Optional[str] = None,
) -> Dict[str, object]:
    """Score one set and write the score dirs, RESULTS.md, scores.json and the chart.

    Args:
        use_sclite: True = sclite (error if missing), False = pure Python, None = sclite when
            installed.
        unit: ``auto`` (per language), or ``word`` / ``char`` for every utterance.
        default_lang: the language of every utterance when ``utt2lang`` is not given.
        utt2task, utt2tgtlang, ref_tgt, default_tgt_lang, hyp_marker, score_groups,
            hyp_before_marker: see :func:`load_utterances`; the ASR outputs (score dirs, WER/CER/MER, chart) cover the
            ``asr`` utterances, the others are scored by :func:`.tasks.score_tasks`.
        bleu_normalizer: normaliser of the text sacreBLEU sees (``none``: as written).
        bleu_tokenize: a sacreBLEU tokenizer for every direction (default: by target language).
        paper_results: a ``paper_results.yaml`` (:mod:`.paper`) whose numbers for this set are
            printed beside ours; ``paper_system`` names the experiment to take from its
            ``systems`` (default: the directory two levels above ``output_dir``).

    Returns:
        The scores.json content. The keys ``tasks``, ``task_scores``, ``groups`` and ``paper``
        appear only when there are non-``asr`` utterances, score groups or paper numbers.
    """
    output_dir = Path(output_dir)
    set_name = set_name or output_dir.resolve().name
    if isinstance(paper_results, (str, os.PathLike)):
        paper_results = PaperResults.load(paper_results)
    all_utts, missing = load_utterances(
        ref, hyp, utt2lang, utt2spk, normalizer, unit, default_lang, utt2task=utt2task,
        utt2tgtlang=utt2tgtlang, ref_tgt=ref_tgt, default_tgt_lang=default_tgt_lang,
        hyp_marker=hyp_marker, score_groups=score_groups, hyp_before_marker=hyp_before_marker,
    )
    # The error-rate pipeline below sees the ASR utterances only (all of them without utt2task).
    utts = [x for x in all_utts if x.task == DEFAULT_TASK]
    others = [x for x in all_utts if x.task != DEFAULT_TASK]
    if use_sclite is None:
        use_sclite = sclite is not None or sclite_available()
    if use_sclite and utts:
        find_sclite(sclite)  # fail before writing anything if it is absent
    # The other tasks' scores (sacreBLEU, rouge-score) before any file is written, too.
    task_scores = score_tasks(others, normalizer, bleu_normalizer, bleu_tokenize, hyp_marker)
    output_dir.mkdir(parents=True, exist_ok=True)

    by_unit: Dict[str, ErrorCounts] = {}
    for u in UNITS:
        score_dir = output_dir / SCORE_DIRS[u]
        group = [x for x in utts if x.unit == u]
        if not group:
            _remove_stale_score_dir(score_dir)
            continue
        score_dir.mkdir(exist_ok=True)
        trn_ids = [make_trn_id(x.uttid, x.speaker) for x in group]
        specials = special_tokens(t for x in group for t in x.ref + x.hyp)
        if specials:
            logger.warning(
                "%d tokens in %s are special to sclite (e.g. %r) and may be scored as "
                "alternations / null words; use a normalizer that removes them",
                len(specials), score_dir, specials[0],
            )
        write_trn(score_dir / "ref.trn", zip(trn_ids, (x.ref for x in group)))
        write_trn(score_dir / "hyp.trn", zip(trn_ids, (x.hyp for x in group)))
        if use_sclite:
            result = run_sclite(score_dir, sclite)
            total, per_utt = parse_result(result)
            absent = [t for t in trn_ids if t not in per_utt]
            if absent or len(per_utt) != len(trn_ids):
                raise ScliteError(
                    f"{result}: sclite scored {len(per_utt)} utterances, {len(trn_ids)} were "
                    f"written (first missing: {absent[:1]})"
                )
            for x, t in zip(group, trn_ids):
                x.counts = per_utt[t]
        else:
            for x in group:
                x.counts = utterance_counts(x.ref, x.hyp)
            total = sum_counts(x.counts for x in group)
            _write_python_result(score_dir / "result.txt", group, trn_ids, total)
        by_unit[u] = total
        logger.info("%s: %s %s %% (%d utts, %d units) -> %s", set_name, METRICS[u],
                    _fmt(total.error_rate), total.snt, total.wrd, score_dir)

    by_language: Dict[str, Tuple[str, ErrorCounts]] = {}
    for lang in sorted({x.lang for x in utts}):
        group = [x for x in utts if x.lang == lang]
        # Under --unit auto a label maps to one unit; report it (forced units are uniform too).
        by_language[lang] = (group[0].unit, sum_counts(x.counts for x in group))

    inputs = {"ref": str(ref), "hyp": str(hyp),
              "utt2lang": None if utt2lang is None else str(utt2lang),
              "utt2spk": None if utt2spk is None else str(utt2spk), "unit": unit}
    # The inputs of task-aware scoring are recorded only when given (scores.json of an ASR-only
    # set stays as it was).
    for key, value in (("utt2task", utt2task), ("utt2tgtlang", utt2tgtlang),
                       ("ref_tgt", ref_tgt), ("default_tgt_lang", default_tgt_lang),
                       ("hyp_marker", hyp_marker), ("hyp_before_marker", hyp_before_marker)):
        if value is not None:
            inputs[key] = str(value)
    if others and bleu_normalizer != "none":
        inputs["bleu_normalizer"] = bleu_normalizer
    if others and bleu_tokenize is not None:
        inputs["bleu_tokenize"] = bleu_tokenize
    scores = SetScores(
        set_name=set_name,
        normalizer=normalizer,
        backend="sclite" if use_sclite else "python",
        by_unit=by_unit,
        by_language=by_language,
        missing_hyp=missing,
        inputs=inputs,
    ).to_dict()
    if hyp_before_marker is not None:
        scores["no_marker"] = sum(1 for x in utts if x.no_marker)
    if others:
        scores["num_utts"] = len(all_utts)
        counts = Counter(x.task for x in all_utts)
        scores["tasks"] = {t: counts[t] for t in TASKS if counts[t]}
        scores["task_scores"] = task_scores
    if score_groups:
        scores["groups"] = group_scores(utts, score_groups)
    if paper_results is not None:
        if paper_system is not None:
            candidates = [paper_system]
        else:
            here = output_dir.resolve()
            candidates = experiment_candidates(here.parent.parent.name, here.parent.name)
        section = paper_results.for_set(set_name, candidates)
        if section is not None:
            scores["paper"] = section
        else:
            logger.info("%s: %s has no numbers for this set", set_name, paper_results.path)

    (output_dir / "scores.json").write_text(
        json.dumps(scores, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (output_dir / "RESULTS.md").write_text(set_markdown(scores), encoding="utf-8")
    if plot and by_language:
        plot_by_language(scores, output_dir / PLOT_NAME)
    elif plot:
        (output_dir / PLOT_NAME).unlink(missing_ok=True)  # no ASR utterances: no chart
    if by_language:
        logger.info("%s: %s", set_name, _mer_line(scores))
    for task, t in task_scores.items():
        for metric, m in t["metrics"].items():
            for label, row in m["rows"].items():
                logger.info("%s: %s %s %s = %s (%d utts)%s", set_name, task, label, metric,
                            _fmt(row["value"]), row["snt"],
                            f"; {row['signature']}" if "signature" in row else "")
    return scores


def group_scores(utts: Sequence[ScoredUtterance],
                 score_groups: Sequence[PathLike]) -> Dict[str, Dict[str, object]]:
    """scores.json ``groups``: per --score_group file, the ASR counts of each group value.

    A value whose utterances are all scored in one unit gets that unit's metric (WER or CER);
    one that mixes words and characters gets the MER of its utterances (unit ``mixed``).
    """
    out: Dict[str, Dict[str, object]] = OrderedDict()
    for path in score_groups:
        name = group_name(path)
        by_value: Dict[str, Dict[str, object]] = OrderedDict()
        for value in sorted({x.groups[name] for x in utts}):
            group = [x for x in utts if x.groups[name] == value]
            units = {x.unit for x in group}
            unit = units.pop() if len(units) == 1 else "mixed"
            metric = METRICS.get(unit, "MER")
            by_value[value] = dict(unit=unit, metric=metric,
                                   **sum_counts(x.counts for x in group).to_dict())
        out[name] = {"file": str(path), "by_value": by_value}
    return out


def collect_results(exp_dir: PathLike, write: bool = True,
                    paper_results: Optional[Union[PathLike, PaperResults]] = None) -> str:
    """Gather every ``scores.json`` below ``exp_dir`` into one ESPnet-style markdown summary.

    Sets are grouped by their decode directory (the parent of the set directory, e.g.
    ``decode_asr_valid.acc.best``); each group gets one WER / CER table with a row per set, then
    the per-language tables and MER lines, the --score_group tables, and one table per task and
    metric (BLEU, ROUGE-L) with a row per set and direction / language. Written to
    ``exp_dir/RESULTS.md`` when ``write``.

    The paper's numbers (``paper``/``Δ`` columns) come from ``paper_results`` when given (the
    experiment is ``exp_dir``'s name, see :mod:`.paper`), else from each scores.json.

    Raises:
        FileNotFoundError: if ``exp_dir`` does not exist or holds no scores.json.
    """
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise FileNotFoundError(f"{exp_dir}: no such directory")
    if isinstance(paper_results, (str, os.PathLike)):
        paper_results = PaperResults.load(paper_results)
    found = sorted(exp_dir.rglob("scores.json"))
    if not found:
        raise FileNotFoundError(f"{exp_dir}: no scores.json below it; run the scoring stage")
    groups: "OrderedDict[str, List[Tuple[str, Dict[str, object]]]]" = OrderedDict()
    for path in found:
        d = json.loads(path.read_text(encoding="utf-8"))
        rel = path.parent.relative_to(exp_dir)
        decode = str(rel.parent) if str(rel.parent) != "." else "."
        # ESPnet names the row by the set directory; so do we, the decode dir is the heading.
        name = rel.name or d["set_name"]
        if paper_results is not None:
            d.pop("paper", None)
            section = paper_results.for_set(name, experiment_candidates(exp_dir.name, decode))
            if section is not None:
                d["paper"] = section
        groups.setdefault(decode, []).append((name, d))

    lines = [
        "<!-- Generated by espnet_sllm.scoring.report.collect_results -->",
        f"# RESULTS: {exp_dir.name}",
        "",
        f"- date: `{datetime.datetime.now().strftime('%Y-%m-%d %H:%M:%S')}`",
    ]
    sources = sorted({source_line(d.get("paper")) for sets in groups.values() for _, d in sets}
                     - {None})
    lines += [f"- {src}" for src in sources] + [""]
    for decode, sets in groups.items():
        lines += [f"## {exp_dir.name}/{decode}" if decode != "." else f"## {exp_dir.name}", ""]
        for unit in UNITS:
            rows = [(name, d["by_unit"][unit]) for name, d in sets if unit in d["by_unit"]]
            papers = [d.get("paper") for name, d in sets if unit in d["by_unit"]]
            if rows:
                lines += [f"### {METRICS[unit]}", ""] + _table_from_dict(rows, papers) + [""]
        for name, d in sets:
            if d["by_language"]:
                lines += [f"### {name}: per language (normalizer `{d['normalizer']}`)", ""]
                lines += _language_section(d)
            lines += _group_section(d, f"### {name}: per")
        for task in TASKS:
            rows_t = [(name, d["task_scores"][task], d.get("paper")) for name, d in sets
                      if task in d.get("task_scores", {})]
            if rows_t:
                lines += task_tables(task, rows_t, heading="###")
        for name, d in sets:
            missing = _missing_line(d)
            if not d["by_language"] and missing:  # (ASR sets print it under their MER)
                lines += [f"{name}: {missing}", ""]
    lines += decoding_pass_table(groups)
    text = "\n".join(lines)
    if write:
        (exp_dir / "RESULTS.md").write_text(text, encoding="utf-8")
    return text


#: Decode-directory suffixes written by stage 8 of sllm.sh, and the paper's names for them.
PASS_NAMES = (("_ctx_hyp", "Stage2 (context: stage-1 hypotheses)"),
              ("_ctx_ref", "Stage2-G (context: references)"))


def decoding_pass_table(groups: Dict[str, List[Tuple[str, Dict[str, object]]]]) -> List[str]:
    """Markdown comparing the MER of each set across decoding passes, side by side.

    A first-pass directory ``decode_x`` and its context re-decodings ``decode_x_ctx_hyp`` /
    ``decode_x_ctx_ref`` (stage 8) become the columns Stage1 / Stage2 / Stage2-G; other decode
    directories get a column of their own. Returns [] when there is a single pass.
    """
    if len(groups) < 2:
        return []
    # Sets without ASR utterances (translation / QA only) have no MER: no row.
    groups = {decode: [(n, d) for n, d in rows if d["by_language"]]
              for decode, rows in groups.items()}
    columns = []
    for decode in groups:
        label = f"`{decode}`"
        for suffix, name in PASS_NAMES:
            if decode.endswith(suffix) and decode[: -len(suffix)] in groups:
                label = f"{name}, `{decode}`"
        if not any(decode.endswith(sfx) for sfx, _ in PASS_NAMES) and any(
            f"{decode}{sfx}" in groups for sfx, _ in PASS_NAMES
        ):
            label = f"Stage1 (no context), `{decode}`"
        columns.append((decode, label))
    sets = sorted({name for rows in groups.values() for name, _ in rows})
    if not sets:
        return []
    out = ["## MER by decoding pass", "",
           "|dataset|" + "|".join(label for _, label in columns) + "|",
           "|---|" + "---|" * len(columns)]
    for name in sets:
        cells = []
        for decode, _ in columns:
            d = dict(groups[decode]).get(name)
            cells.append(_fmt(d["mer"]["mer"]) if d else "")
        out.append(f"|{name}|" + "|".join(cells) + "|")
    return out + [""]
