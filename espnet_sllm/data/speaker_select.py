"""Audio selection by speaker similarity: keep the third-party segments that sound like the
official speakers of their language.

Usage:
    python -m espnet_sllm.data.speaker_select --embedder exp/wavlm-base-plus-sv \\
        --official data/train --candidates data/pool --out data/pool_sel \\
        [--threshold 0.85 --max_refs 20000 --seed 0 --batch_size 8 --dtype float32 \\
         --device auto] [--exclude_language English ...]

For ILT (iterative LoRA training) on MLC-SLM: third-party speech (the *candidates*) enters
training only when its speaker resembles the challenge's own (the *official* set).  Every segment
is embedded with a speaker-verification x-vector model (``transformers``' ``WavLMForXVector``
and its ``AutoFeatureExtractor``; the real one is ``microsoft/wavlm-base-plus-sv``, ``--embedder``
takes a local directory or a hub id), and the embeddings are L2-normalised.  A candidate of
language X is kept when its maximal cosine similarity to the reference embeddings of X is
**strictly** greater than ``--threshold`` (0.85).  The references of X are at most ``--max_refs``
(20000) official segments of X, taken in the seeded order of
:func:`espnet_sllm.data.subset.seeded_order` (``sha256("<seed>:<uttid>")``: the same sample for
the same ids and seed, whatever the line order), skipping the too-short ones.

Input: two Kaldi data directories with ``wav.scp`` (+ ``segments``) and ``utt2lang`` (the
language labels must match, e.g. ``Japanese``, ``English-American``).  Audio is read as stage 2
reads it (:class:`espnet_sllm.data.formatting.Source`: files through soundfile, a segment is
sliced out of its recording, pipes and ark offsets work too; several channels are averaged) and
must be at the embedder's rate, 16 kHz: another rate is an error naming the wav.scp entry (run
stage 2, ``format_data``, to resample).  A candidate language without official segments (or
whose official segments are all too short) is an error naming it.  ``--exclude_language X``
leaves out every candidate of language X before anything is read: a label equal to X, or whose
key (:func:`espnet_sllm.scoring.normalize.language_key`: ``English`` for ``English-American``)
is X's, case-insensitively; they are not kept and need no official segments.

Too short: the x-vector head pools over frames after three dilated TDNN layers, and a standard
deviation needs two of them.  The minimum is computed from the model's config
(:func:`min_samples`): the receptive field of the conv feature encoder (400 samples for the real
kernels and strides), plus one hop (320) per extra frame the TDNN needs (15 more for kernels
5,3,3 with dilations 1,2,3), i.e. 5200 samples (0.325 s) for wavlm-base-plus-sv; never less than
0.1 s.  Shorter segments (an empty slice of a segment beyond its recording's end included) are
skipped: not kept, counted per language and logged; the shorter official segments are not used
as references.

Output (``--out``): the kept candidates as a data directory (every Kaldi and optional file of
the candidates restricted to them, as :mod:`espnet_sllm.data.subset` writes subsets) and
``<out>/selection.tsv``: a header ``utt lang max_cos kept`` and one tab-separated row per
candidate (``max_cos`` with 6 decimals, ``nan`` for a skipped or excluded one; ``kept`` 1 or
0).  Nothing
kept is an error (after ``selection.tsv`` is written, to show the similarities, and the data
files of an earlier run in ``--out`` are removed).

Batching: embeddings are computed ``--batch_size`` segments at a time, the segments of a batch
taken from a length-sorted run of 32 batches so that little padding is added.  The feature
encoder of wavlm-base-plus-sv normalises its first conv layer over time (group norm), and
transformers' x-vector pooling counts a few frames past the end of a padded input, so a padded
segment's embedding differs slightly from its embedding alone; ``--batch_size 1`` pads nothing.

API::

    from espnet_sllm.data.speaker_select import SpeakerEmbedder, select_by_similarity
    emb = SpeakerEmbedder("exp/wavlm-base-plus-sv", dtype="float32", device="cpu")
    vecs = emb.embed([wave1, wave2])                       # (2, 512) float32, unit rows
    max_cos, kept = select_by_similarity(cands, refs, threshold=0.85)
"""
import argparse
import logging
import math
import os
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from espnet_sllm.data.kaldi_dir import OPTIONAL_FILES, Utterance, read_data_dir
from espnet_sllm.data.subset import EXTRA_UTT_FILES, seeded_order, write_restricted
from espnet_sllm.scoring.normalize import language_key

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.85
DEFAULT_MAX_REFS = 20000
MIN_SECONDS = 0.1
DTYPES = ("float32", "bfloat16", "float16")
SELECTION_FILE = "selection.tsv"
# Length-sorted runs of this many batches (see the module docstring).
_RUN_BATCHES = 32


def min_samples(config, sampling_rate: int = 16000, min_seconds: float = MIN_SECONDS) -> int:
    """The fewest samples an x-vector model (``WavLMForXVector`` config: ``conv_kernel``,
    ``conv_stride``, ``tdnn_kernel``, ``tdnn_dilation``) embeds without NaN (module docstring),
    and never fewer than ``min_seconds``."""
    field_rf, hop = 1, 1
    for k, s in zip(config.conv_kernel, config.conv_stride):
        field_rf += (k - 1) * hop
        hop *= s
    tdnn_context = sum((k - 1) * d for k, d in zip(config.tdnn_kernel, config.tdnn_dilation))
    frames = tdnn_context + 2  # two pooled frames: a standard deviation of one is NaN
    need = field_rf + (frames - 1) * hop
    return max(need, int(math.ceil(min_seconds * sampling_rate)))


def _torch_dtype(name: str):
    import torch

    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; valid: {', '.join(DTYPES)}")
    return getattr(torch, name)


class SpeakerEmbedder:
    """An x-vector model and its feature extractor, loaded with ``from_pretrained``.

    Args:
        path: a directory or hub id holding a ``WavLMForXVector`` checkpoint and its
            ``preprocessor_config.json``.
        dtype: float32, bfloat16 or float16 (the weights and inputs; embeddings are returned as
            float32).
        device: ``auto`` (cuda when available), ``cpu``, ``cuda``, ``cuda:1``, ...
        batch_size: segments per forward pass.
    """

    def __init__(self, path: str, dtype: str = "float32", device: str = "auto",
                 batch_size: int = 8):
        import torch
        from transformers import AutoFeatureExtractor, WavLMForXVector

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.dtype = _torch_dtype(dtype)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.batch_size = batch_size
        local = os.path.isabs(path) or path.startswith(".") or path.count("/") > 1
        if local and not os.path.isdir(path):
            raise ValueError(f"embedder directory {path} does not exist (give a directory "
                             f"holding a WavLMForXVector checkpoint, or a hub id)")
        self.feature_extractor = AutoFeatureExtractor.from_pretrained(path)
        self.model = WavLMForXVector.from_pretrained(path, dtype=self.dtype).to(self.device)
        self.model.eval()
        self.sampling_rate = int(self.feature_extractor.sampling_rate)
        self.min_samples = min_samples(self.model.config, self.sampling_rate)
        self.dim = int(self.model.config.xvector_output_dim)

    def embed(self, waves: Sequence[np.ndarray], ids: Optional[Sequence[str]] = None
              ) -> np.ndarray:
        """L2-normalised embeddings ``(len(waves), dim)`` float32 of mono waves at
        :attr:`sampling_rate`, in input order; batches are formed in length order.

        Raises:
            ValueError: a wave shorter than :attr:`min_samples`, or an embedding that is zero
                or not finite (e.g. float16 underflow), naming its id when ``ids`` is given.
        """
        import torch

        ids = list(ids) if ids is not None else [f"#{i}" for i in range(len(waves))]
        for i, w in zip(ids, waves):
            if len(w) < self.min_samples:
                raise ValueError(f"{i}: {len(w)} samples, fewer than the {self.min_samples} "
                                 f"the embedder needs")
        out = np.zeros((len(waves), self.dim), dtype=np.float32)
        order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
        for b in range(0, len(order), self.batch_size):
            idx = order[b:b + self.batch_size]
            inputs = self.feature_extractor(
                [np.asarray(waves[i], dtype=np.float32) for i in idx],
                sampling_rate=self.sampling_rate, return_tensors="pt", padding=True)
            inputs = {k: (v.to(self.device, self.dtype) if k == "input_values"
                          else v.to(self.device)) for k, v in inputs.items()}
            with torch.inference_mode():
                vec = self.model(**inputs).embeddings.float()
            norms = vec.norm(dim=-1)
            bad = [ids[i] for i, n in zip(idx, norms.tolist()) if not (n > 0 and math.isfinite(n))]
            if bad:
                raise ValueError(f"embedding of {', '.join(bad[:3])} is zero or not finite "
                                 f"(dtype {self.dtype}; float32 avoids under/overflow)")
            out[idx] = (vec / norms[:, None]).cpu().numpy()
        return out


def select_by_similarity(candidates: np.ndarray, refs: np.ndarray,
                         threshold: float = DEFAULT_THRESHOLD, chunk: int = 256
                         ) -> Tuple[np.ndarray, np.ndarray]:
    """(max cosine, kept) of every candidate row against the reference rows.

    Both arrays hold L2-normalised rows (checked to 1e-3); the cosine is their dot product in
    float64 (clipped to [-1, 1]), and a candidate is kept when its maximum is strictly greater
    than ``threshold``.
    """
    cand = np.asarray(candidates, dtype=np.float64)
    ref = np.asarray(refs, dtype=np.float64)
    if cand.ndim != 2 or ref.ndim != 2 or cand.shape[1] != ref.shape[1]:
        raise ValueError(f"embeddings of shapes {cand.shape} and {ref.shape} cannot be compared")
    if len(ref) == 0:
        raise ValueError("no reference embeddings")
    for name, a in (("candidate", cand), ("reference", ref)):
        norms = np.linalg.norm(a, axis=1)
        if len(a) and not np.all(np.abs(norms - 1.0) < 1e-3):
            i = int(np.argmax(np.abs(norms - 1.0)))
            raise ValueError(f"{name} embedding {i} is not L2-normalised (norm {norms[i]:.6g})")
    max_cos = np.full(len(cand), -np.inf)
    for s in range(0, len(cand), chunk):
        max_cos[s:s + chunk] = (cand[s:s + chunk] @ ref.T).max(axis=1)
    # Rows normalised in float32 can give 1 + 1e-7 for a vector with itself.
    np.clip(max_cos, -1.0, 1.0, out=max_cos)
    return max_cos, max_cos > threshold


class AudioReader:
    """Mono float32 audio of data-directory utterances, at one required rate; the last few
    recordings stay open (segments of a recording are read from one source)."""

    def __init__(self, data_dir: str, rate: int, cache: int = 8):
        self.data_dir = data_dir
        self.rate = rate
        self.cache = cache
        self._open: "OrderedDict[str, object]" = OrderedDict()

    def _source(self, key: str, entry: str):
        from espnet_sllm.data.formatting import Source

        src = self._open.pop(key, None)
        if src is None:
            where = f"{self.data_dir}/wav.scp: {key}"
            src = Source(entry, where)
            if src.rate != self.rate:
                src.close()
                raise ValueError(f"{where}: {entry.strip()} is {src.rate} Hz; the embedder "
                                 f"needs {self.rate} Hz (resample with stage 2, format_data)")
            while len(self._open) >= self.cache:
                self._open.popitem(last=False)[1].close()
        self._open[key] = src
        return src

    def read(self, utt: Utterance) -> np.ndarray:
        from espnet_sllm.data.formatting import to_mono

        if not utt.wav or not utt.wav.strip():
            raise ValueError(f"{self.data_dir}/wav.scp: {utt.uttid}: no audio (text-only "
                             f"utterance)")
        key = utt.segment.recid if utt.segment is not None else utt.uttid
        src = self._source(key, utt.wav)
        if utt.segment is None:
            start, stop = 0, src.frames
        else:
            start = min(int(round(utt.segment.start * src.rate)), src.frames)
            stop = min(int(round(utt.segment.end * src.rate)), src.frames)
        try:
            frames = src.read(start, stop)
        except RuntimeError as e:  # libsndfile: damaged after its header
            raise ValueError(f"{self.data_dir}/wav.scp: {key}: cannot read "
                             f"{utt.wav.strip()}: {e}") from None
        return to_mono(frames, "mean", f"{self.data_dir}/wav.scp: {key}")

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()


def embed_utterances(embedder: SpeakerEmbedder, reader: AudioReader, utts: Iterable[Utterance],
                     limit: Optional[int] = None,
                     on_short: Optional[Callable[[Utterance, int], None]] = None
                     ) -> Tuple[List[str], np.ndarray]:
    """(ids, embeddings) of ``utts`` in their order, the too-short ones skipped (reported to
    ``on_short(utt, n_samples)``), stopping after ``limit`` embedded ones."""
    ids: List[str] = []
    vecs: List[np.ndarray] = []
    run: List[Tuple[str, np.ndarray]] = []
    run_size = embedder.batch_size * _RUN_BATCHES

    def flush():
        if run:
            vecs.append(embedder.embed([w for _, w in run], [u for u, _ in run]))
            ids.extend(u for u, _ in run)
            run.clear()

    n = 0
    for utt in utts:
        if limit is not None and n >= limit:
            break
        wave = reader.read(utt)
        if len(wave) < embedder.min_samples:
            if on_short is not None:
                on_short(utt, len(wave))
            continue
        run.append((utt.uttid, wave))
        n += 1
        if len(run) >= run_size:
            flush()
    flush()
    return ids, (np.concatenate(vecs) if vecs else np.zeros((0, embedder.dim), np.float32))


@dataclass
class LanguageSummary:
    candidates: int = 0
    kept: int = 0
    short: int = 0
    refs: int = 0
    refs_short: int = 0
    official: int = 0
    excluded: bool = False
    short_examples: List[str] = field(default_factory=list)


def _by_lang(utts: Sequence[Utterance], where: str) -> Dict[str, List[Utterance]]:
    missing = [u.uttid for u in utts if u.lang is None]
    if missing:
        raise ValueError(f"{where}: no utt2lang (the language of every utterance is needed)")
    out: Dict[str, List[Utterance]] = {}
    for u in utts:
        out.setdefault(u.lang, []).append(u)
    return out


def is_excluded(lang: str, exclude: Sequence[str]) -> bool:
    """Whether ``lang`` is one of ``exclude`` (the label or its language key, any case)."""
    return any(lang.lower() == x.lower() or language_key(lang) == language_key(x)
               for x in exclude)


def speaker_select(embedder: SpeakerEmbedder, official_dir: str, candidates_dir: str,
                   out_dir: str, threshold: float = DEFAULT_THRESHOLD,
                   max_refs: int = DEFAULT_MAX_REFS, seed: int = 0,
                   exclude_languages: Sequence[str] = ()) -> Dict[str, LanguageSummary]:
    """Select the candidates (module docstring); returns the counts per language.

    Raises:
        ValueError: bad directories or audio (naming the file and entry), a candidate language
            without usable official segments, nothing kept.
    """
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"--threshold must be in [-1, 1], got {threshold}")
    if max_refs < 1:
        raise ValueError(f"--max_refs must be >= 1, got {max_refs}")
    real = {os.path.realpath(d) for d in (official_dir, candidates_dir)}
    if os.path.realpath(out_dir) in real:
        raise ValueError(f"--out {out_dir} must differ from --official and --candidates")
    for d in (official_dir, candidates_dir):
        if not os.path.isdir(d):
            raise ValueError(f"data directory {d} does not exist")
    official = _by_lang(read_data_dir(official_dir), official_dir)
    cand_utts = read_data_dir(candidates_dir)
    candidates = _by_lang(cand_utts, candidates_dir)
    summary: Dict[str, LanguageSummary] = {}
    rows: Dict[str, Tuple[str, float, bool]] = {}
    for lang in [x for x in candidates if is_excluded(x, exclude_languages)]:
        summary[lang] = LanguageSummary(candidates=len(candidates[lang]), excluded=True,
                                        official=len(official.get(lang, [])))
        for u in candidates.pop(lang):
            rows[u.uttid] = (lang, float("nan"), False)
        logger.info("%s: %d candidates excluded (--exclude_language)", lang,
                    summary[lang].candidates)
    lacking = sorted(set(candidates) - set(official))
    if lacking:
        raise ValueError(
            f"{candidates_dir}: language(s) {', '.join(lacking)} have no official segments in "
            f"{official_dir} (its languages: {', '.join(sorted(official))})")
    ref_reader = AudioReader(official_dir, embedder.sampling_rate)
    cand_reader = AudioReader(candidates_dir, embedder.sampling_rate)
    try:
        for lang in sorted(candidates):
            s = summary[lang] = LanguageSummary(candidates=len(candidates[lang]),
                                                official=len(official[lang]))
            by_id = {u.uttid: u for u in official[lang]}
            ordered = (by_id[u] for u in seeded_order(by_id, seed))

            def ref_short(u, n, s=s):
                s.refs_short += 1

            _, refs = embed_utterances(embedder, ref_reader, ordered, max_refs, ref_short)
            s.refs = len(refs)
            if not s.refs:
                raise ValueError(f"language {lang}: none of its {s.official} official segments "
                                 f"in {official_dir} is long enough for the embedder "
                                 f"({embedder.min_samples} samples)")

            def cand_short(u, n, s=s, lang=lang):
                s.short += 1
                if len(s.short_examples) < 3:
                    s.short_examples.append(u.uttid)
                rows[u.uttid] = (lang, float("nan"), False)
                logger.debug("%s: %s: %d samples, too short for the embedder (%d): skipped",
                             candidates_dir, u.uttid, n, embedder.min_samples)

            ids, vecs = embed_utterances(embedder, cand_reader, candidates[lang], None,
                                         cand_short)
            if ids:
                max_cos, kept = select_by_similarity(vecs, refs, threshold)
                for u, c, k in zip(ids, max_cos.tolist(), kept.tolist()):
                    rows[u] = (lang, c, bool(k))
                s.kept = int(kept.sum())
            if s.short:
                logger.warning("%s: %s: %d of %d candidates shorter than %d samples skipped "
                               "(e.g. %s)", candidates_dir, lang, s.short, s.candidates,
                               embedder.min_samples, ", ".join(s.short_examples))
            if s.refs_short:
                logger.warning("%s: %s: %d official segments shorter than %d samples not used "
                               "as references", official_dir, lang, s.refs_short,
                               embedder.min_samples)
            logger.info("%s: %d of %d candidates kept (max cos > %g against %d references)",
                        lang, s.kept, s.candidates, threshold, s.refs)
    finally:
        ref_reader.close()
        cand_reader.close()

    os.makedirs(out_dir, exist_ok=True)
    tsv = os.path.join(out_dir, SELECTION_FILE)
    with open(tsv + ".tmp", "w", encoding="utf-8") as f:
        f.write("utt\tlang\tmax_cos\tkept\n")
        for u in sorted(rows):
            lang, c, k = rows[u]
            f.write(f"{u}\t{lang}\t{'nan' if math.isnan(c) else f'{c:.6f}'}\t{int(k)}\n")
    os.replace(tsv + ".tmp", tsv)
    kept_utts = [u for u in cand_utts if rows[u.uttid][2]]
    if not kept_utts:
        # A data directory of an earlier run must not pass for this run's selection.
        for name in ("wav.scp", "segments", "utt2spk", "spk2utt", *OPTIONAL_FILES.values(),
                     *EXTRA_UTT_FILES):
            if os.path.isfile(os.path.join(out_dir, name)):
                os.remove(os.path.join(out_dir, name))
        raise ValueError(f"no candidate of {candidates_dir} has a max cosine > {threshold} "
                         f"(see {tsv}); no data directory written")
    write_restricted(out_dir, candidates_dir, kept_utts, None)
    return summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("Usage:")[0],
        epilog="Usage:" + __doc__.split("Usage:")[1].split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedder", required=True,
                        help="WavLMForXVector checkpoint: a directory or hub id "
                             "(microsoft/wavlm-base-plus-sv)")
    parser.add_argument("--official", required=True, help="the official data directory")
    parser.add_argument("--candidates", required=True,
                        help="the third-party data directory to select from")
    parser.add_argument("--out", required=True, help="output data directory")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="keep a candidate when its max cosine is > this (default 0.85)")
    parser.add_argument("--max_refs", type=int, default=DEFAULT_MAX_REFS,
                        help="official segments per language used as references")
    parser.add_argument("--seed", type=int, default=0, help="seed of the reference sample")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--dtype", default="float32", choices=DTYPES)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--exclude_language", nargs="+", default=[], metavar="LANG",
                        help="leave out the candidates of these languages (a label, or its "
                             "part before - or _: English excludes English-American)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: speaker_select: %(message)s")
    try:
        if args.max_refs < 1 or args.batch_size < 1:
            raise ValueError("--max_refs and --batch_size must be >= 1")
        embedder = SpeakerEmbedder(args.embedder, args.dtype, args.device, args.batch_size)
        summary = speaker_select(embedder, args.official, args.candidates, args.out,
                                 args.threshold, args.max_refs, args.seed,
                                 args.exclude_language)
    except (ValueError, OSError) as e:
        print(f"speaker_select: ERROR: {e}", file=sys.stderr)
        return 1
    total = sum(s.candidates for s in summary.values())
    kept = sum(s.kept for s in summary.values())
    short = sum(s.short for s in summary.values())
    print(f"speaker_select: {args.out}: {kept} of {total} candidates kept (max cos > "
          f"{args.threshold:g}), {short} too short skipped; per language:")
    for lang, s in sorted(summary.items()):
        if s.excluded:
            print(f"  {lang}: {s.candidates} candidates excluded (--exclude_language)")
            continue
        print(f"  {lang}: kept {s.kept} of {s.candidates} ({s.short} too short), "
              f"{s.refs} references of {s.official} official ({s.refs_short} too short)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
