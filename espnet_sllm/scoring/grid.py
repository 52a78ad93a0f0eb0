"""Tables whose cells come from many experiments: a paper's grid of systems, stages or sweeps.

Stage 9 writes one ``scores.json`` per decoded set; a paper's table puts many of them side by
side (Xu et al.'s Table 1: projector x encoder; Table 2: projector x frame rate; Table 4: stage x
projector, per test set and dialect).  A *cell spec* names where one number comes from::

    <table title> TAB <row> TAB <column> TAB <scores.json> [TAB <group>=<value> | <task>/<metric>]
    <table title> TAB <row> TAB <column> TAB <scores.json>,<scores.json>,... TAB mean[:<paper>][@<task>/<metric>]

* without a fifth field: the set's own error rate of its ASR utterances (its single metric: CER
  for Chinese, WER for words; the MER when a set mixes units);
* ``subdialect=Southwestern``: that value's error rate in the set's ``--score_group`` table of
  ``utt2subdialect`` (scores.json ``groups``);
* ``lang=English-Indian``: that language's error rate in the set's per-language table (its
  WER or CER; scores.json ``by_language``), with the paper's row of that language;
* ``st/ROUGE-L``, ``st/BLEU``, ``sqa/ROUGE-L``, ...: the summary of that task's metric (scores.json
  ``task_scores``: the average over translation directions for ``st``, all utterances else);
* ``mean``, ``mean:<paper number>``, ``mean@st/BLEU``, ``mean:<paper>@st/BLEU``: the unweighted
  mean of the listed files' cells (their own error rates, or the ``<task>/<metric>`` after
  ``@``): a paper's average over languages or directions, e.g. Ideal-LLM's Avg over the 8 MLS
  test sets or the 5 CoVoST 2 directions; blank unless every file has one; the paper's number
  is the one given, else the mean of the files' paper numbers when each has one.

A cell reads ``ours (paper)`` when the ``scores.json`` carries the paper's number for it (stage
9's ``--paper_results``, :mod:`.paper`), else ``ours``; a missing file or value reads ``–`` and is
listed under its table, so a half-finished sweep still gives a table.  Rows and columns keep the
order of their first appearance.
"""
import json
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from espnet_sllm.scoring.paper import ALL, AVG, MISSING, lookup


def parse_specs(lines: Sequence[str], where: str) -> List[tuple]:
    """(table, row, column, scores.json, (group, value) or None) per non-empty, non-# line;
    ValueError naming ``where`` and the line for a malformed one."""
    out = []
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        group = None
        if len(parts) == 5 and (parts[4] == "mean" or parts[4].startswith(("mean:", "mean@"))):
            head, _, task = parts[4].partition("@")
            sub = ("task",) + tuple(task.split("/")) if task else None
            try:
                if sub and (len(sub) != 3 or not all(sub)):
                    raise ValueError
                group = ("mean", float(head[5:]) if head[5:] else None, sub)
            except ValueError:
                raise ValueError(f"{where}:{n}: 'mean[:<paper number>][@<task>/<metric>]' "
                                 f"expected, got {parts[4]!r}") from None
        elif len(parts) == 5 and "=" in parts[4]:
            group = tuple(parts[4].split("=", 1))
        elif len(parts) == 5 and parts[4].count("/") == 1 and all(parts[4].split("/")):
            group = ("task",) + tuple(parts[4].split("/"))
        elif len(parts) != 4:
            raise ValueError(f"{where}:{n}: expected 'table<TAB>row<TAB>column<TAB>scores.json"
                             f"[<TAB>group=value | task/metric | mean[:<paper>][@task/metric]]', got "
                             f"{len(parts)} fields: "
                             f"{line!r}")
        out.append((parts[0], parts[1], parts[2], parts[3], group))
    return out


def cell_value(scores: dict, group: Optional[Tuple[str, str]]) -> Tuple[Optional[float],
                                                                        Optional[float], str]:
    """(ours, paper, metric) of one cell of a loaded scores.json (None when absent)."""
    if group is None:
        units = scores.get("by_unit") or {}
        if len(units) == 1:
            entry = next(iter(units.values()))
            ours, metric = entry["pct"]["err"], entry["metric"]
        else:
            ours, metric = (scores.get("mer") or {}).get("mer"), "MER"
        return ours, lookup(scores.get("paper"), metric, ALL), metric
    if group[0] == "task":
        _, task, metric = group
        found = ((((scores.get("task_scores") or {}).get(task) or {}).get("metrics") or {})
                 .get(metric) or {})
        summary = found.get("summary")
        if summary is None:
            rows = found.get("rows") or {}
            if len(rows) != 1:
                return None, None, ""
            label, summary = next(iter(rows.items()))
        else:
            label = summary.get("label", AVG if task == "st" else ALL)
        return summary["value"], lookup(scores.get("paper"), metric, label, prefix=task), metric
    name, value = group
    if name == "lang":  # the per-language table (utt2lang), not a --score_group one
        entry = (scores.get("by_language") or {}).get(value)
        if entry is None:
            return None, None, ""
        return entry["pct"]["err"], lookup(scores.get("paper"), entry["metric"], value), \
            entry["metric"]
    entry = (((scores.get("groups") or {}).get(name) or {}).get("by_value") or {}).get(value)
    if entry is None:
        return None, None, ""
    metric = entry["metric"]
    return entry["pct"]["err"], lookup(scores.get("paper"), metric, value, prefix=name), metric


def _load(path: str) -> Optional[dict]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def mean_cell(paths: Sequence[str], paper: Optional[float], sub: Optional[tuple] = None
              ) -> Tuple[Optional[float], Optional[float], str]:
    """(ours, paper, metric) of a ``mean`` cell: the unweighted mean of the files' cells
    (``sub``: their ``task/metric``, else their own error rates); None unless every file has
    one."""
    cells = [cell_value(s, sub) if s else (None, None, "") for s in map(_load, paths)]
    if not cells or any(c[0] is None for c in cells):
        return None, paper, ""
    if paper is None and all(c[1] is not None for c in cells):
        paper = sum(c[1] for c in cells) / len(cells)
    metrics = sorted({c[2] for c in cells})
    return sum(c[0] for c in cells) / len(cells), paper, "/".join(metrics)


def _fmt(x: Optional[float]) -> str:
    return MISSING if x is None else f"{x:.2f}"


def render(specs: Sequence[tuple], title: str = "") -> Tuple[str, int]:
    """(Markdown: one table per table title, cells ``ours (paper)``; cells without a number)."""
    tables: "OrderedDict[str, dict]" = OrderedDict()
    for table, row, col, path, group in specs:
        t = tables.setdefault(table, {"rows": [], "cols": [], "cells": {}, "missing": [],
                                      "metrics": set()})
        t["rows"] += [row] if row not in t["rows"] else []
        t["cols"] += [col] if col not in t["cols"] else []
        if group and group[0] == "mean":
            ours, paper, metric = mean_cell(path.split(","), group[1], group[2])
        else:
            scores = _load(path)
            ours, paper, metric = cell_value(scores, group) if scores else (None, None, "")
        if ours is None:
            what = "" if not group or group[0] == "mean" else (
                f" ({'/'.join(group[1:])})" if group[0] == "task" else f" ({group[0]}={group[1]})")
            t["missing"].append(f"{row} / {col}: {path}{what}")
        else:
            t["metrics"].add(metric)
        text = _fmt(ours) + (f" ({_fmt(paper)})" if paper is not None else "")
        t["cells"][row, col] = text
    out = [f"# {title}\n"] if title else []
    for name, t in tables.items():
        metrics = "/".join(sorted(t["metrics"])) or "error rate"
        out.append(f"## {name}\n\n{metrics} (%), ours (paper) where the paper gives the cell.\n")
        out.append("| | " + " | ".join(t["cols"]) + " |")
        out.append("|---" * (len(t["cols"]) + 1) + "|")
        for row in t["rows"]:
            out.append(f"| {row} | " + " | ".join(t["cells"].get((row, c), MISSING)
                                                   for c in t["cols"]) + " |")
        if t["missing"]:
            out.append("\nNot (yet) scored: " + "; ".join(t["missing"]))
        out.append("")
    return "\n".join(out), sum(len(t["missing"]) for t in tables.values())


def write_grid(spec_file: str, out: str, title: str = "") -> Dict[str, int]:
    """Render ``spec_file`` into ``out``; returns {"cells": n, "missing": m}."""
    with open(spec_file, encoding="utf-8") as f:
        specs = parse_specs(f.readlines(), spec_file)
    text, missing = render(specs, title)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text, encoding="utf-8")
    return {"cells": len(specs), "missing": missing}
