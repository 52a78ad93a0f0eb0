"""Task-aware scoring: the metric of an utterance follows its task (``utt2task``).

=========  ===================================================================  ===============
task       metric                                                               rows
=========  ===================================================================  ===============
``asr``    WER / CER per language, MER (sclite or :mod:`.error_rate`;           language
           :mod:`.report`, unchanged)
``st``     sacreBLEU corpus BLEU (:mod:`.bleu`, signature printed) and the      ``<src>-<tgt>``
           mean sentence ROUGE-L (:mod:`.rouge`)                                + ``avg``
``sqa``    mean sentence ROUGE-L                                                language + ``all``
``qa``     mean sentence ROUGE-L                                                language + ``all``
=========  ===================================================================  ===============

The units follow the language of the text scored, not the spoken one: a Chinese->English
translation is scored in English words (BLEU ``13a``, ROUGE-L over words), a Chinese answer in
characters (BLEU ``zh``, ROUGE-L over characters). The language of a translation is its target
language (``utt2tgtlang``, or ``--default_tgt_lang``); of an answer, the target language when
``utt2tgtlang`` has one, else its ``utt2lang`` label.

BLEU sees the text as written (normaliser ``--bleu_normalizer``, default ``none``: sacreBLEU
tokenizes and is case-sensitive, as the papers report it); ROUGE-L sees the text after the
scoring normaliser (``--normalizer``, as the error rates). ``avg`` = unweighted mean over the
directions (corpus BLEU over several target languages, i.e. several tokenizers, means nothing);
``all`` = mean over all sentences of the task.

This module computes the numbers (:func:`score_tasks`) and renders their tables
(:func:`task_tables`); :mod:`.report` reads the inputs and writes scores.json / RESULTS.md.
"""

from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

from espnet_sllm.scoring.bleu import corpus_bleu
from espnet_sllm.scoring.normalize import get_normalizer
from espnet_sllm.scoring.paper import ALL, AVG, lookup, paper_cells
from espnet_sllm.scoring.rouge import rouge_l_scores

TASKS = ("asr", "st", "sqa", "qa")
DEFAULT_TASK = "asr"
#: Metrics of each non-ASR task, in the order of their tables.
TASK_METRICS = {"st": ("BLEU", "ROUGE-L"), "sqa": ("ROUGE-L",), "qa": ("ROUGE-L",)}
#: (row header, detail header) of each task's tables.
ROW_HEADERS = {"st": "direction", "sqa": "language", "qa": "language"}
DETAIL_HEADERS = {"BLEU": "tokenizer", "ROUGE-L": "unit"}


def direction(src: str, tgt: str) -> str:
    """Row label of a translation direction: ``<src>-<tgt>`` (``zh-en``, ``en-German``)."""
    return f"{src}-{tgt}"


def check_task(task: str, where: str) -> str:
    """``task`` if it is a known task label, else a ValueError naming ``where``."""
    if task not in TASKS:
        raise ValueError(f"{where}: unknown task '{task}'. Valid tasks: {', '.join(TASKS)}")
    return task


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _mean(values: Sequence[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None


def score_tasks(
    utts: Sequence[object],
    normalizer: str = "mlc_slm",
    bleu_normalizer: str = "none",
    bleu_tokenize: Optional[str] = None,
    hyp_marker: Optional[str] = None,
) -> "OrderedDict[str, Dict[str, object]]":
    """Scores of the non-ASR utterances, per task, as stored in scores.json ``task_scores``.

    ``utts`` are :class:`espnet_sllm.scoring.report.ScoredUtterance` with ``task`` != asr: their
    ``lang`` (source), ``tgt_lang`` (language of the text scored), ``unit``, ``ref_text`` and
    ``hyp_text`` (raw; a missing hypothesis is ""), ``no_marker``.

    Returns:
        ``{task: {"snt": n, "no_marker": k, "metrics": {metric: {"rows": {label: row},
        "summary": row|None}}}}`` (+ ``"hyp_marker"`` for ``st`` when one was applied)
        where a row holds ``snt``, ``value`` (0-100), ``detail`` (tokenizer or unit) and, for
        BLEU, the signature and sacreBLEU's statistics.
    """
    bnorm = get_normalizer(bleu_normalizer)
    out: "OrderedDict[str, Dict[str, object]]" = OrderedDict()
    for task in TASKS:
        group = [x for x in utts if x.task == task]
        if task == DEFAULT_TASK or not group:
            continue
        # Sentence ROUGE-L of every utterance, each in the units of its own language.
        rouge: Dict[str, float] = {}
        for unit in sorted({x.unit for x in group}):
            part = [x for x in group if x.unit == unit]
            for x, f in zip(part, rouge_l_scores([x.ref_text for x in part],
                                                 [x.hyp_text for x in part], unit, normalizer)):
                rouge[x.uttid] = f
        if task == "st":
            keys = sorted({(x.lang, x.tgt_lang) for x in group})
            rows_of = [(direction(s, t), [x for x in group if (x.lang, x.tgt_lang) == (s, t)])
                       for s, t in keys]
            summary_label = AVG
        else:
            rows_of = [(lang, [x for x in group if x.tgt_lang == lang])
                       for lang in sorted({x.tgt_lang for x in group})]
            summary_label = ALL
        metrics: "OrderedDict[str, Dict[str, object]]" = OrderedDict()
        for metric in TASK_METRICS[task]:
            rows: "OrderedDict[str, Dict[str, object]]" = OrderedDict()
            for label, part in rows_of:
                unit = part[0].unit
                row: Dict[str, object] = {"snt": len(part), "lang": part[0].tgt_lang,
                                          "unit": unit}
                if task == "st":
                    row.update(src_lang=part[0].lang, tgt_lang=part[0].tgt_lang,
                               no_marker=sum(1 for x in part if x.no_marker))
                if metric == "BLEU":
                    r = corpus_bleu([bnorm(x.hyp_text) for x in part],
                                    [bnorm(x.ref_text) for x in part],
                                    part[0].tgt_lang, unit, bleu_tokenize)
                    row.update(value=r.score, detail=r.tokenize,
                               signature=r.signature_with_note, bleu=r.to_dict())
                else:
                    row.update(value=100.0 * _mean([rouge[x.uttid] for x in part]),
                               detail=unit)
                rows[label] = row
            summary = None
            if len(rows) > 1:
                if summary_label == AVG:
                    value = _mean([r["value"] for r in rows.values()])
                else:
                    value = 100.0 * _mean([rouge[x.uttid] for x in group])
                summary = {"label": summary_label, "snt": len(group), "value": value}
            metrics[metric] = {"rows": rows, "summary": summary}
        out[task] = {"snt": len(group), "metrics": metrics,
                     "no_marker": sum(1 for x in group if x.no_marker)}
        if task == "st" and hyp_marker is not None:
            out[task]["hyp_marker"] = hyp_marker
    return out


def task_tables(
    task: str,
    sets: Sequence[Tuple[Optional[str], Dict[str, object], Optional[Dict[str, object]]]],
    heading: str = "###",
) -> List[str]:
    """Markdown: one table per metric of ``task``, rows of one or several sets.

    Args:
        sets: (dataset name or None for a single-set table, the task's ``task_scores`` entry,
            the set's paper section or None). With a dataset name the table gets a ``dataset``
            column (the experiment-level RESULTS.md). A set without a paper section gets ``–``
            in the paper columns when another set of the table has one.
    """
    multi = any(name is not None for name, _, _ in sets)
    with_paper = any(p is not None for _, _, p in sets)
    metrics = [m for m in TASK_METRICS[task] if any(m in t["metrics"] for _, t, _ in sets)]
    out: List[str] = []
    for metric in metrics:
        header = (["dataset"] if multi else []) + [ROW_HEADERS[task], DETAIL_HEADERS[metric],
                                                    "#utt", metric]
        if with_paper:
            header += ["paper", "Δ"]
        out += [f"{heading} {task.upper()}: {metric}", "",
                "|" + "|".join(header) + "|", "|" + "---|" * len(header)]
        signatures: List[str] = []
        for name, t, paper in sets:
            m = t["metrics"].get(metric)
            if m is None:
                continue
            rows = [(label, r, r["detail"]) for label, r in m["rows"].items()]
            if m["summary"]:
                rows.append((m["summary"]["label"], m["summary"], ""))
            for label, r, detail in rows:
                cells = ([name] if multi else []) + [label, detail, str(r["snt"]),
                                                     _fmt(r["value"])]
                if with_paper:
                    cells += paper_cells(r["value"], lookup(paper, metric, label, task))
                out.append("|" + "|".join(cells) + "|")
                if metric == "BLEU" and "signature" in r:
                    where = f"{name}: {label}" if multi else label
                    signatures.append(f"- `{where}`: `{r['signature']}`")
        out.append("")
        if signatures:
            out += ["sacreBLEU signatures:", ""] + signatures + [""]
    for name, t, _ in sets:
        if t.get("hyp_marker") is not None:
            where = f"{name}: " if multi else ""
            out += [f"- {where}translation = the hypothesis after the first "
                    f"{t['hyp_marker']!r}; {t['no_marker']} of {t['snt']} hypotheses lack it "
                    "and were scored as empty.", ""]
    return out
