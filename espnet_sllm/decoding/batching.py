"""Decoding batches of utterances of similar length (sllm_inference).

A decoding batch pads every utterance to its longest member (speech frames, then the LLM's
prompt), so batches are formed from the utterances sorted by length, **longest first**:

* the first batch is the most expensive one (longest audio, and the largest token budgets, which
  grow with the audio's duration), so a batch size or ``--batch_seconds`` too large for the
  device's memory fails in the first minute, not hours into the job;
* the progress bar's rate only gets better as the job goes, so its first estimate of the time
  left is an upper bound;
* either order pads equally little; the output files are sorted by key, so their order does not
  depend on it.

The length of an utterance is known without reading its audio: ``utt2num_samples`` next to the
``wav.scp`` (stage 2 writes it), else the audio file's header (``soundfile.info``). An utterance
whose length is neither there nor readable (a pipe or archive entry, a missing or corrupt file)
is batched after the others in key order, with a warning; a text-only utterance (0 samples) is
batched with the shortest ones.

``batch_size`` bounds the number of utterances in a batch, ``batch_seconds`` (optional) its
padded audio: ``count * longest <= batch_seconds * sample_rate`` samples. Both bounds hold when
both are given (raise ``batch_size`` to let short utterances form larger batches under
``batch_seconds``); an utterance longer than ``batch_seconds`` forms a batch of its own. Batches
of utterances of unknown or 0 length are bounded by ``batch_size`` alone.
"""
import logging
import os
from typing import Dict, List, Optional, Sequence, Tuple

from espnet_sllm.data.check import SOUND_TYPES

NUM_SAMPLES_NAME = "utt2num_samples"


def _read_num_samples(path: str) -> Dict[str, int]:
    """``<uttid> <samples>`` lines of ``path``; a line that is not that is skipped."""
    out: Dict[str, int] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                out[parts[0]] = int(parts[1])
    return out


def _header_samples(value: str) -> Optional[int]:
    """Samples of the audio file a ``wav.scp`` value names (its first path for multi-column
    entries), from the header alone; None when it is no readable audio file (a pipe, a Kaldi
    archive offset, missing, corrupt)."""
    import soundfile

    parts = value.split()
    if not parts or value.rstrip().endswith("|"):
        return None
    path = parts[0]
    if not os.path.isfile(path):
        return None
    try:
        return int(soundfile.info(path).frames)
    except Exception:  # libsndfile's error on a file it cannot parse; decoding reports it
        return None


def utterance_samples(
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]], keys: Sequence[str]
) -> Tuple[Dict[str, Optional[int]], str]:
    """The number of samples of each of ``keys``, without reading audio.

    From ``utt2num_samples`` in the directory of the ``speech`` sound file (wav.scp) for the keys
    it lists, else from the audio file's header. Returns ({key: samples or None (unknown)},
    a phrase saying where the lengths came from, for the log).
    """
    speech = [path for path, name, kind in data_path_and_name_and_type
              if name == "speech" and kind in SOUND_TYPES]
    if not speech:
        return {k: None for k in keys}, "no speech sound file"
    scp = speech[0]
    counts: Dict[str, Optional[int]] = {}
    ns_path = os.path.join(os.path.dirname(scp), NUM_SAMPLES_NAME)
    if os.path.isfile(ns_path):
        listed = _read_num_samples(ns_path)
        counts = {k: listed[k] for k in keys if k in listed}
    rest = [k for k in keys if k not in counts]
    if rest:
        wanted = set(rest)
        values: Dict[str, str] = {}
        with open(scp, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split(maxsplit=1)
                if parts and parts[0] in wanted:
                    values[parts[0]] = parts[1] if len(parts) > 1 else ""
        for k in rest:
            counts[k] = _header_samples(values.get(k, ""))
    listed = len(keys) - len(rest)
    if not rest:
        source = NUM_SAMPLES_NAME
    elif listed:
        source = f"{NUM_SAMPLES_NAME} for {listed}, audio headers for {len(rest)}"
    else:
        source = "audio headers"
    return counts, source


def sorted_batches(
    keys: Sequence[str],
    samples: Dict[str, Optional[int]],
    batch_size: int,
    batch_seconds: Optional[float] = None,
    sample_rate: int = 16000,
) -> List[List[str]]:
    """Batches of ``keys``, longest first (module docstring).

    Args:
        keys: the utterances, in key order (ties and unknown lengths keep it).
        samples: key -> number of samples, None (or absent) when unknown.
        batch_size: at most this many utterances per batch (>= 1).
        batch_seconds: at most this many seconds of padded audio per batch (count x longest),
            None for no such bound; an utterance longer than it is a batch of its own.
        sample_rate: samples per second of ``samples``.
    Returns:
        the batches (lists of keys); every key is in exactly one.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if batch_seconds is not None and not batch_seconds > 0:
        raise ValueError(f"batch_seconds must be > 0 (or unset), got {batch_seconds}")
    known = [k for k in keys if samples.get(k) is not None]
    unknown = [k for k in keys if samples.get(k) is None]
    # sorted() is stable: equal lengths stay in key order.
    known = sorted(known, key=lambda k: -samples[k])
    limit = None if batch_seconds is None else batch_seconds * sample_rate
    batches: List[List[str]] = []
    for k in known:
        if batches:
            batch = batches[-1]
            longest = samples[batch[0]]  # longest first: the batch's first is its longest
            if len(batch) < batch_size and (limit is None or (len(batch) + 1) * longest <= limit):
                batch.append(k)
                continue
        batches.append([k])
    batches += [unknown[i : i + batch_size] for i in range(0, len(unknown), batch_size)]
    return batches


def plan_batches(
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
    keys: Sequence[str],
    batch_size: int,
    batch_seconds: Optional[float],
    sample_rate: int,
    sort_by_length: bool = True,
) -> List[List[str]]:
    """`sorted_batches` of ``keys`` with the lengths of `utterance_samples`; logs where the
    lengths came from and warns about utterances of unknown length.

    ``sort_by_length`` False: consecutive runs of ``batch_size`` keys in key order (the
    batching before sorting existed; kept for comparisons such as ``make bench``), which
    ``batch_seconds`` cannot bound (an error)."""
    if not sort_by_length:
        if batch_seconds is not None:
            raise ValueError("--batch_seconds needs batches sorted by length "
                             "(--sort_by_length true)")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        logging.info(f"batches of {batch_size} utterances in key order (not sorted by length)")
        return [list(keys[i : i + batch_size]) for i in range(0, len(keys), batch_size)]
    samples, source = utterance_samples(data_path_and_name_and_type, keys)
    batches = sorted_batches(keys, samples, batch_size, batch_seconds, sample_rate)
    unknown = [k for k in keys if samples.get(k) is None]
    if unknown:
        logging.warning(
            f"{len(unknown)} of {len(keys)} utterances have no known length (not in "
            f"{NUM_SAMPLES_NAME}, and no audio header to read: a pipe, an archive entry, a "
            f"missing or corrupt file), e.g. {unknown[0]}: batched after the others in key "
            f"order, by --batch_size alone"
        )
    bound = f"{batch_size} utterances" + (
        f" and {batch_seconds:g} s of padded audio" if batch_seconds is not None else "")
    logging.info(f"{len(batches)} batches of at most {bound}, longest first (lengths from "
                 f"{source})")
    return batches
