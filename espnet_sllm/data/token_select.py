"""Text selection of Iterative LoRA Training (ILT: Focus -> Feed-Back -> Fix, egs2/mlc_slm):
by token frequency in the training references, and by error rate of a model's hypotheses.

Usage:
    # Feed-Back: candidates (other corpora) whose tokens are mostly rare in the training text
    python -m espnet_sllm.data.token_select --tokenizer exp/llm --ref_text data/train/text \\
        --candidates data/pool --low 20 --high 200 [--ratio 0.5] --out data/selected_text
    # Fix, step 1: candidates holding at least one frequent token (to be decoded)
    python -m espnet_sllm.data.token_select --select high --tokenizer exp/llm \\
        --ref_text data/train/text --candidates data/pool --high 200 --out data/hard_cand
    # Fix, step 2: of the decoded candidates, those the model gets wrong (WER/CER > 5 %)
    python -m espnet_sllm.data.token_select --candidates data/hard_cand \\
        --hard_hyp exp/sllm/decode_hard_cand/text [--threshold 0.05] --out data/hard

Token counts (`token_counts`): every text of ``--ref_text`` (Kaldi ``text`` files, one or
more) is tokenized with the LLM's tokenizer (loaded with
:func:`espnet_sllm.llm.tokenizer.load_tokenizer`, ``add_special_tokens=False``: no BOS/EOS) and
each token id counted.  With thresholds ``low < high`` (else an error):

* a token is **low-frequency** when its count is ``< low`` (a token never seen counts 0, so it
  is low-frequency): count == low is NOT low;
* a token is **high-frequency** when its count is ``> high``: count == high is NOT high.

Selections (each keeps the order of its input):

* `select_low_frequency` (``--select low``, the default): a candidate sentence whose fraction of
  low-frequency tokens is ``> ratio`` (strictly: exactly ``ratio`` is not selected);
* `hard_case_candidates` (``--select high``): a candidate with at least one high-frequency
  token;
* `select_hard` (``--hard_hyp``): an utterance whose error rate, reference (the candidates'
  ``text``) against hypothesis, both normalised by the scoring normaliser (``--normalizer``,
  default ``mlc_slm``, :mod:`espnet_sllm.scoring.normalize`) and aligned as sclite does
  (:mod:`espnet_sllm.scoring.error_rate`), is ``> threshold`` (strictly; compared exactly:
  1 error in 20 words is 5 % and not selected at 0.05).  The unit follows the ``utt2lang``
  label (:func:`espnet_sllm.scoring.normalize.unit_for_language`): characters (CER) for
  Japanese, Korean, Thai (and Chinese, ...), words (WER) otherwise.

Skips (counted, logged and printed; never an error): a candidate whose text gives no token
(``empty_tokens``, in neither low nor high selection), an utterance whose normalised reference
is empty (``empty_reference``: no error rate), hypotheses of utterances that are not candidates
(``hyp_not_in_candidates``).  Errors (``ERROR: ...`` and exit 1 on the command line): ``low >=
high``, ``ratio`` outside [0, 1), a negative threshold, a candidate directory without ``text``
(or, with ``--hard_hyp``, without ``utt2lang``), a candidate without hypothesis (naming it and
the file: pass the directory that was decoded), an empty selection, an output equal to the
candidates.

Output: ``--out`` is the subset of ``--candidates`` (``espnet_sllm.data.subset.write_restricted``:
every Kaldi and optional file, ``utt2dur`` and per-speaker files restricted), plus a report:

* ``<out>/token_counts.tsv`` (token modes): ``token_id token ref_count candidate_count class``
  (class ``low``/``mid``/``high``) for every token seen in the references or the candidates,
  most frequent in the references first (control characters of a token written escaped);
* ``<out>/error_rates.tsv`` (``--hard_hyp``): ``uttid lang unit errors ref_units rate selected``.

    from espnet_sllm.data.token_select import (
        token_counts, select_low_frequency, hard_case_candidates, select_hard)
    counts = token_counts(texts, tokenizer)            # Counter {token id: count}
    ids = {k: tokenizer(t, add_special_tokens=False)["input_ids"] for k, t in cands.items()}
    keys = select_low_frequency(ids, counts, low=20, ratio=0.5)
    keys = select_hard(refs, hyps, langs, threshold=0.05)
"""
import argparse
import logging
import os
import sys
from collections import Counter
from fractions import Fraction
from typing import (Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple,
                    Union)

from espnet_sllm.data.kaldi_dir import read_data_dir, read_kv
from espnet_sllm.data.subset import write_restricted
from espnet_sllm.scoring.error_rate import align_counts
from espnet_sllm.scoring.normalize import get_normalizer, to_units, unit_for_language

logger = logging.getLogger(__name__)

DEFAULT_LOW = 20
DEFAULT_HIGH = 200
DEFAULT_RATIO = 0.5
DEFAULT_THRESHOLD = 0.05
#: texts tokenized per call of the tokenizer
BATCH = 1000

Sentences = Union[Mapping[str, Sequence[int]], Sequence[Sequence[int]]]


def check_thresholds(low: int, high: int) -> None:
    """ValueError unless ``0 <= low < high`` (integers)."""
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"--{name} must be an integer >= 0, got {v!r}")
    if low >= high:
        raise ValueError(f"--low {low} must be smaller than --high {high} (a token cannot be "
                         f"both low- and high-frequency)")


def is_low(count: int, low: int) -> bool:
    """Low-frequency: ``count < low`` (``count == low`` is not)."""
    return count < low


def is_high(count: int, high: int) -> bool:
    """High-frequency: ``count > high`` (``count == high`` is not)."""
    return count > high


def tokenize(texts: Iterable[str], tokenizer, batch: int = BATCH) -> List[List[int]]:
    """Token ids of every text, ``add_special_tokens=False``, in order (``batch`` texts per
    call of the tokenizer)."""
    out: List[List[int]] = []
    texts = list(texts)
    for i in range(0, len(texts), batch):
        out.extend(list(ids) for ids in
                   tokenizer(texts[i:i + batch], add_special_tokens=False)["input_ids"])
    return out


def token_counts(texts: Iterable[str], tokenizer) -> Counter:
    """``Counter {token id: occurrences}`` over ``texts`` tokenized with the HF ``tokenizer``
    (``add_special_tokens=False``)."""
    counts: Counter = Counter()
    for ids in tokenize(texts, tokenizer):
        counts.update(ids)
    return counts


def _items(sentences: Sentences) -> Iterable[Tuple[object, Sequence[int]]]:
    if isinstance(sentences, Mapping):
        return sentences.items()
    return enumerate(sentences)


def low_fraction(tokens: Sequence[int], counts: Mapping[int, int], low: int) -> Fraction:
    """The exact fraction of ``tokens`` that are low-frequency (0 for no token)."""
    if not tokens:
        return Fraction(0)
    return Fraction(sum(1 for t in tokens if is_low(counts.get(t, 0), low)), len(tokens))


def select_low_frequency(sentences: Sentences, counts: Mapping[int, int], low: int = DEFAULT_LOW,
                         ratio: float = DEFAULT_RATIO,
                         skipped: Optional[Counter] = None) -> List:
    """The keys (a mapping's keys, or a sequence's indices) of the sentences (token ids) whose
    fraction of low-frequency tokens (count ``< low``; unseen: 0) is ``> ratio``, strictly,
    compared exactly (2 low tokens of 4 is not ``> 0.5``).  A sentence without tokens is not
    selected; it is counted in ``skipped["empty_tokens"]`` when ``skipped`` is given."""
    if not 0 <= ratio < 1:
        raise ValueError(f"--ratio must be in [0, 1), got {ratio}")
    bound = Fraction(repr(float(ratio)))
    out = []
    for key, tokens in _items(sentences):
        if not tokens:
            if skipped is not None:
                skipped["empty_tokens"] += 1
            continue
        if low_fraction(tokens, counts, low) > bound:
            out.append(key)
    return out


def hard_case_candidates(sentences: Sentences, counts: Mapping[int, int],
                         high: int = DEFAULT_HIGH, skipped: Optional[Counter] = None) -> List:
    """The keys (or indices) of the sentences (token ids) holding at least one high-frequency
    token (count ``> high``).  Sentences without tokens count in ``skipped["empty_tokens"]``."""
    out = []
    for key, tokens in _items(sentences):
        if not tokens:
            if skipped is not None:
                skipped["empty_tokens"] += 1
            continue
        if any(is_high(counts.get(t, 0), high) for t in tokens):
            out.append(key)
    return out


class UttErrors(NamedTuple):
    """Errors of one utterance: ``errors`` (sub + del + ins) of ``ref_units`` reference
    units (``unit``: word or char)."""

    lang: str
    unit: str
    errors: int
    ref_units: int

    @property
    def rate(self) -> Optional[float]:
        return self.errors / self.ref_units if self.ref_units else None


def utterance_errors(refs: Mapping[str, str], hyps: Mapping[str, str],
                     langs: Mapping[str, str], normalizer: str = "mlc_slm",
                     hyp_name: str = "hypotheses", lang_name: str = "utt2lang"
                     ) -> Dict[str, UttErrors]:
    """`UttErrors` of every key of ``refs`` (see the module docstring for the normaliser and
    units).  ValueError naming the key (and ``hyp_name`` / ``lang_name``) for a key without
    hypothesis or without language label."""
    norm = get_normalizer(normalizer)
    out: Dict[str, UttErrors] = {}
    for key, ref in refs.items():
        if key not in hyps:
            raise ValueError(f"{hyp_name}: no hypothesis for {key!r} (give the hypotheses of "
                             f"every candidate: pass the data directory that was decoded)")
        lang = (langs.get(key) or "").strip()
        if not lang:
            raise ValueError(f"{lang_name}: no language label for {key!r}")
        unit = unit_for_language(lang)
        r = to_units(norm(ref), unit)
        h = to_units(norm(hyps[key]), unit)
        corr, sub, dele, ins = align_counts(r, h)
        out[key] = UttErrors(lang, unit, sub + dele + ins, len(r))
    return out


def select_hard(refs: Mapping[str, str], hyps: Mapping[str, str], langs: Mapping[str, str],
                threshold: float = DEFAULT_THRESHOLD, normalizer: str = "mlc_slm",
                skipped: Optional[Counter] = None,
                errors: Optional[Mapping[str, UttErrors]] = None) -> List[str]:
    """The keys of ``refs`` (in order) whose WER (CER for Japanese, Korean, Thai, ...) after
    the scoring normaliser is ``> threshold`` (a fraction: 0.05 = 5 %), strictly, compared
    exactly.  An empty normalised reference has no rate: not selected, counted in
    ``skipped["empty_reference"]``.  ``errors``: `utterance_errors` already computed."""
    if not threshold >= 0:
        raise ValueError(f"--threshold must be >= 0 (a fraction, 0.05 = 5 %), got {threshold}")
    bound = Fraction(repr(float(threshold)))
    if errors is None:
        errors = utterance_errors(refs, hyps, langs, normalizer)
    out = []
    for key in refs:
        e = errors[key]
        if e.ref_units == 0:
            if skipped is not None:
                skipped["empty_reference"] += 1
            continue
        if Fraction(e.errors, e.ref_units) > bound:
            out.append(key)
    return out


def _escape_token(token: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in token)


def write_token_counts(path: str, tokenizer, ref_counts: Mapping[int, int],
                       cand_counts: Mapping[int, int], low: int, high: int) -> None:
    """``token_counts.tsv`` (see the module docstring)."""
    ids = sorted(set(ref_counts) | set(cand_counts), key=lambda t: (-ref_counts.get(t, 0), t))
    tokens = tokenizer.convert_ids_to_tokens(ids) if ids else []
    with open(path, "w", encoding="utf-8") as f:
        f.write("token_id\ttoken\tref_count\tcandidate_count\tclass\n")
        for t, tok in zip(ids, tokens):
            n = ref_counts.get(t, 0)
            cls = "low" if is_low(n, low) else "high" if is_high(n, high) else "mid"
            f.write(f"{t}\t{_escape_token(str(tok))}\t{n}\t{cand_counts.get(t, 0)}\t{cls}\n")


def _log_skips(skipped: Counter) -> str:
    for reason, n in sorted(skipped.items()):
        logger.warning("token_select: %d utterances skipped (%s)", n, reason)
    return ", ".join(f"{k}={v}" for k, v in sorted(skipped.items())) or "none"


def run(candidates: str, out: str, tokenizer_dir: Optional[str] = None,
        ref_texts: Sequence[str] = (), select: str = "low", low: int = DEFAULT_LOW,
        high: int = DEFAULT_HIGH, ratio: float = DEFAULT_RATIO, hard_hyp: Optional[str] = None,
        threshold: float = DEFAULT_THRESHOLD, normalizer: str = "mlc_slm",
        languages: Sequence[str] = ()) -> str:
    """Write the selection of ``candidates`` to ``out`` (see the module docstring); returns the
    summary line. ``languages``: only candidates whose utt2lang label is one of these or
    starts with ``<one of these>-`` (``English`` takes ``English-Indian`` too); the others are
    counted as ``other_language``."""
    if os.path.realpath(candidates) == os.path.realpath(out):
        raise ValueError(f"--out {out} must differ from --candidates")
    if not os.path.isdir(candidates):
        raise ValueError(f"--candidates {candidates}: no such directory")
    utts = read_data_dir(candidates)
    if any(u.text is None for u in utts):
        raise ValueError(f"{candidates}: no text file (the candidates need their texts)")
    skipped: Counter = Counter()
    if languages:
        if any(u.lang is None for u in utts):
            raise ValueError(f"{candidates}: --languages needs its utt2lang")
        wanted = [u for u in utts if any(u.lang == x or u.lang.startswith(x + "-")
                                         for x in languages)]
        skipped["other_language"] += len(utts) - len(wanted)
        utts = wanted
    texts = {u.uttid: u.text for u in utts}
    report = []
    if hard_hyp is not None:
        if any(u.lang is None for u in utts):
            raise ValueError(f"{candidates}: no utt2lang (the unit, word or char, follows the "
                             f"language)")
        get_normalizer(normalizer)
        hyps = read_kv(hard_hyp)
        extra = sum(1 for k in hyps if k not in texts)
        if extra:
            skipped["hyp_not_in_candidates"] += extra
        errors = utterance_errors(texts, hyps, {u.uttid: u.lang for u in utts}, normalizer,
                                  hyp_name=hard_hyp, lang_name=f"{candidates}/utt2lang")
        keep = select_hard(texts, hyps, {}, threshold, normalizer, skipped, errors)
        what = f"error rate > {threshold:g}"
    else:
        check_thresholds(low, high)
        if select not in ("low", "high"):
            raise ValueError(f"--select must be low or high, got {select!r}")
        if not tokenizer_dir or not ref_texts:
            raise ValueError("--tokenizer and --ref_text are needed to select by token "
                             "frequency (or give --hard_hyp)")
        from espnet_sllm.llm.tokenizer import load_tokenizer  # transformers: only here

        tokenizer = load_tokenizer(tokenizer_dir)
        refs: List[str] = []
        for path in ref_texts:
            refs.extend(read_kv(path).values())
        if not refs:
            raise ValueError(f"--ref_text {' '.join(ref_texts)}: no reference text")
        counts = token_counts(refs, tokenizer)
        keys = list(texts)
        sentences = dict(zip(keys, tokenize((texts[k] for k in keys), tokenizer)))
        cand_counts: Counter = Counter()
        for ids in sentences.values():
            cand_counts.update(ids)
        if select == "low":
            keep = select_low_frequency(sentences, counts, low, ratio, skipped)
            what = f"fraction of tokens with count < {low} > {ratio:g}"
        else:
            keep = hard_case_candidates(sentences, counts, high, skipped)
            what = f"a token with count > {high}"
        report.append(f"{len(refs)} reference texts, {sum(counts.values())} tokens, "
                      f"{len(counts)} distinct")
    if not keep:
        raise ValueError(f"{candidates}: no utterance selected ({what}; {len(utts)} "
                         f"candidates; skipped: {_log_skips(skipped)})")
    keep_set = set(keep)
    write_restricted(out, candidates, [u for u in utts if u.uttid in keep_set], None)
    if hard_hyp is not None:
        with open(os.path.join(out, "error_rates.tsv"), "w", encoding="utf-8") as f:
            f.write("uttid\tlang\tunit\terrors\tref_units\trate\tselected\n")
            for k, e in errors.items():
                rate = "-" if e.rate is None else f"{e.rate:.4f}"
                f.write(f"{k}\t{e.lang}\t{e.unit}\t{e.errors}\t{e.ref_units}\t{rate}\t"
                        f"{int(k in keep_set)}\n")
    else:
        write_token_counts(os.path.join(out, "token_counts.tsv"), tokenizer, counts,
                           cand_counts, low, high)
    return (f"token_select: {out}: {len(keep)} of {len(utts)} candidates of {candidates} "
            f"({what}); skipped: {_log_skips(skipped)}" +
            (f"; references: {report[0]}" if report else ""))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("Usage:")[0],
        epilog="Usage:" + __doc__.split("Usage:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", required=True, help="data directory to select from")
    parser.add_argument("--out", required=True, help="output data directory (the subset)")
    parser.add_argument("--tokenizer", default=None, help="HF tokenizer directory (token modes)")
    parser.add_argument("--ref_text", nargs="+", default=[],
                        help="Kaldi text file(s) whose tokens are counted (token modes)")
    parser.add_argument("--select", default="low", choices=["low", "high"],
                        help="low: mostly low-frequency tokens (Feed-Back); high: at least one "
                             "high-frequency token (Fix candidates)")
    parser.add_argument("--low", type=int, default=DEFAULT_LOW,
                        help="a token is low-frequency when its count is < LOW")
    parser.add_argument("--high", type=int, default=DEFAULT_HIGH,
                        help="a token is high-frequency when its count is > HIGH")
    parser.add_argument("--ratio", type=float, default=DEFAULT_RATIO,
                        help="--select low keeps a sentence whose low-frequency share is > RATIO")
    parser.add_argument("--hard_hyp", default=None,
                        help="hypothesis text of the candidates: select by error rate instead")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="--hard_hyp keeps an utterance whose WER/CER is > THRESHOLD "
                             "(a fraction)")
    parser.add_argument("--normalizer", default="mlc_slm",
                        help="scoring normaliser of --hard_hyp (espnet_sllm.scoring.normalize)")
    parser.add_argument("--languages", nargs="+", default=[], metavar="LANG",
                        help="only candidates of these utt2lang labels (a label LANG-... "
                             "counts as LANG: English takes English-Indian)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        line = run(args.candidates, args.out, args.tokenizer, args.ref_text, args.select,
                   args.low, args.high, args.ratio, args.hard_hyp, args.threshold,
                   args.normalizer, args.languages)
    except (ValueError, OSError) as e:
        print(f"token_select: ERROR: {e}", file=sys.stderr)
        return 1
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
