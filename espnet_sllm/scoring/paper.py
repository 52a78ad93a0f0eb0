"""A paper's numbers beside ours in RESULTS.md: the ``conf/paper_results.yaml`` format.

A recipe that reproduces a paper may ship ``conf/paper_results.yaml``; stage 9 of ``sllm.sh``
passes it to ``sllm_score --paper_results``, and every table of a set that the file names gets
two more columns, ``paper`` and ``Δ`` (ours − paper), cell by cell. A cell the paper does not
give is shown as ``–``.

Format::

    source: "Xu et al. (2025), Tables 2 and 3"   # optional; printed under the compared tables
    test:                                        # <set>: the decoded set's directory name
      WER: 9.8                                   # a number: the set's own row (label "all")
      CER: {Japanese: 7.4, Korean: 6.1, Thai: 9.0}  # per-language rows: label -> value
      MER: 9.20
      subdialect/CER: {Henan: 16.5, Shanghai: null}  # <group>/<metric>: a --score_group table
    covost_test:
      BLEU: {en-de: 23.1, de-en: 29.9, avg: 26.5}    # st rows: "<src>-<tgt>"; "avg" = mean
      st/ROUGE-L: {en-de: 48.0}                      # <task>/<metric> when tasks share a metric
      sqa/ROUGE-L: {zh: 35.2, all: 35.2}
    systems:                                     # optional: numbers of one experiment only
      sllm_train_large:                          # <exp> dir name, "sllm_" optional, or
        test: {MER: 8.9}                         # "<exp>/<decode dir>" for one decoding pass

* ``<set>`` is the set's directory name (``--set_name``); a set absent from the file gets no
  paper columns, a set present (even empty) gets them with ``–`` where a number is missing.
* ``<metric>`` is one of ``WER``, ``CER``, ``MER``, ``BLEU``, ``ROUGE-L`` (any case), optionally
  prefixed ``<task>/`` (``asr``, ``st``, ``sqa``, ``qa``) or ``<group>/`` (the ``--score_group``
  file name without ``utt2``: ``utt2subdialect`` -> ``subdialect``); a table looks its cells up
  under its prefix first, then under the bare metric.
* Row labels are those of our tables: a language (per-language tables, ``WER`` for word
  languages and ``CER`` for character ones), a group value, a translation direction
  ``<src>-<tgt>``, ``all`` (a set's own row: the ESPnet WER/CER table, the MER, the ROUGE-L of
  all answers) or ``avg`` (the unweighted mean over translation directions). A number instead
  of a mapping is the ``all`` row. ``null`` = not given (``–``).
* ``systems`` maps experiment names to sets of the same form; they override the top-level sets
  (metric by metric, row by row) for that experiment. The experiment of a scored set is
  ``--paper_system`` or the directory two levels above it (``<exp>/<decode dir>/<set>``); keys
  are tried as ``<exp>/<decode dir>``, ``<exp>``, then both without a leading ``sllm_``.
* ``source`` and ``systems`` are reserved: no set may have these names.

Errors (an unknown metric, a value that is not a number, a bad layout) name the file and the
key path (``conf/paper_results.yaml: test/BLEU/en-de: not a number: 'abc'``).
"""

import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Union

METRIC_NAMES = ("WER", "CER", "MER", "BLEU", "ROUGE-L")
RESERVED = ("source", "systems")
MISSING = "–"
ALL = "all"
AVG = "avg"

#: One set of the file, normalised: metric key ("BLEU", "st/ROUGE-L") -> row label -> value.
SetResults = Dict[str, Dict[str, Optional[float]]]


def _metric_key(key: object, where: str) -> str:
    """Canonical ``[<prefix>/]<METRIC>`` of a YAML key; error naming ``where`` otherwise."""
    text = str(key).strip()
    prefix, _, metric = text.rpartition("/")
    canon = {m.lower(): m for m in METRIC_NAMES}.get(metric.strip().lower())
    if canon is None or (text.count("/") > 1) or ("/" in text and not prefix.strip()):
        raise ValueError(
            f"{where}: unknown metric '{text}'. Valid: {', '.join(METRIC_NAMES)}, each "
            "optionally prefixed '<task>/' or '<group>/'"
        )
    return f"{prefix.strip()}/{canon}" if prefix else canon


def _number(value: object, where: str) -> Optional[float]:
    # Kept as YAML typed it (26 stays an int, 20.0 a float) so that it is printed as written.
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: not a number: {value!r}")
    return value


def _parse_set(body: object, where: str) -> SetResults:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ValueError(f"{where}: expected a mapping of metrics, got {type(body).__name__}")
    out: SetResults = {}
    for key, rows in body.items():
        metric = _metric_key(key, f"{where}/{key}")
        if isinstance(rows, dict):
            out[metric] = {str(label): _number(v, f"{where}/{key}/{label}")
                           for label, v in rows.items()}
        else:
            out[metric] = {ALL: _number(rows, f"{where}/{key}")}
    return out


class PaperResults:
    """A parsed ``paper_results.yaml``: sets, per-experiment overrides and the source line."""

    def __init__(self, sets: Dict[str, SetResults], systems: Dict[str, Dict[str, SetResults]],
                 source: Optional[str] = None, path: Optional[str] = None):
        self.sets = sets
        self.systems = systems
        self.source = source
        self.path = path

    @classmethod
    def from_dict(cls, data: object, path: str = "paper_results") -> "PaperResults":
        """Validate and normalise the content of the YAML file (errors name ``path``)."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of sets, got {type(data).__name__}")
        source = data.get("source")
        if source is not None and not isinstance(source, str):
            raise ValueError(f"{path}: source: expected a string, got {source!r}")
        systems_raw = data.get("systems") or {}
        if not isinstance(systems_raw, dict):
            raise ValueError(f"{path}: systems: expected a mapping of experiment names")
        systems: Dict[str, Dict[str, SetResults]] = {}
        for name, sets in systems_raw.items():
            if not isinstance(sets, dict):
                raise ValueError(f"{path}: systems/{name}: expected a mapping of sets")
            systems[str(name)] = {str(s): _parse_set(b, f"{path}: systems/{name}/{s}")
                                  for s, b in sets.items()}
        sets = {str(s): _parse_set(b, f"{path}: {s}")
                for s, b in data.items() if s not in RESERVED}
        return cls(sets, systems, source, path)

    @classmethod
    def load(cls, path: Union[str, Path]) -> "PaperResults":
        """Read and validate a ``paper_results.yaml``.

        Raises:
            FileNotFoundError: no such file.
            ValueError: bad YAML or a bad layout, naming the file and the key path.
        """
        import yaml

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML: {e}") from None
        return cls.from_dict(data, str(path))

    def system_key(self, candidates: Iterable[str]) -> Optional[str]:
        """The first ``systems`` key among ``candidates`` (each also tried without ``sllm_``)."""
        tried: List[str] = []
        for c in candidates:
            tried.append(c)
            stripped = re.sub(r"^sllm_", "", c)
            if stripped != c:
                tried.append(stripped)
        for c in tried:
            if c in self.systems:
                return c
        return None

    def for_set(self, set_name: str, candidates: Iterable[str] = ()) -> Optional[Dict[str, object]]:
        """The paper section of one set (None when the file does not name it), for scores.json.

        ``candidates`` are experiment names tried against ``systems`` (see the module doc).
        """
        system = self.system_key(candidates)
        base = self.sets.get(set_name)
        over = self.systems[system].get(set_name) if system else None
        if base is None and over is None:
            return None
        merged: SetResults = {k: dict(v) for k, v in (base or {}).items()}
        for metric, rows in (over or {}).items():
            merged.setdefault(metric, {}).update(rows)
        return {"file": self.path, "source": self.source,
                "system": system if over is not None else None, "results": merged}


def experiment_candidates(exp: str, decode: Optional[str] = None) -> List[str]:
    """``systems`` keys to try for a set decoded in ``<exp>/<decode>``, most specific first."""
    out = [f"{exp}/{decode}"] if decode and decode != "." else []
    return out + [exp]


def lookup(section: Optional[Dict[str, object]], metric: str, row: str,
           prefix: Optional[str] = None) -> Optional[float]:
    """The paper's value of one cell (None when not given), ``prefix/metric`` before ``metric``."""
    if not section:
        return None
    results = section["results"]
    for key in ([f"{prefix}/{metric}"] if prefix else []) + [metric]:
        rows = results.get(key)
        if rows is not None and rows.get(row) is not None:
            return rows[row]
    return None


def _decimals(value: float) -> int:
    """Decimals the value was written with: 0 for an int, at least 1 for a float (20.0)."""
    if isinstance(value, int):
        return 0
    text = repr(float(value))
    if "e" in text or "." not in text:
        return 1
    return max(1, len(text.split(".", 1)[1].rstrip("0")))


def paper_cells(ours: Optional[float], paper: Optional[float]) -> List[str]:
    """The two cells ``paper`` and ``Δ`` (ours − paper) beside one of our numbers.

    The paper's value is printed as the YAML file writes it (``7.42``, ``20.0``, ``26``); Δ
    with as many decimals as the paper's value, at least one. A missing value on either side
    gives ``–``.
    """
    if paper is None:
        return [MISSING, MISSING]
    shown = f"{paper:.{_decimals(paper)}f}"
    if ours is None:
        return [shown, MISSING]
    return [shown, f"{ours - paper:+.{max(1, _decimals(paper))}f}"]


def source_line(section: Optional[Dict[str, object]]) -> Optional[str]:
    """``paper: <source> (<file>[, system <name>]); Δ = ours − paper`` for under a table."""
    if not section:
        return None
    what = section.get("source") or "paper"
    extra = [str(section.get("file"))] if section.get("file") else []
    if section.get("system"):
        extra.append(f"system `{section['system']}`")
    return f"paper: {what}" + (f" ({', '.join(extra)})" if extra else "") + \
        "; Δ = ours − paper; – = not given"
