"""Frozen-encoder feature cache: the encoder's output, computed once per utterance, read by
training in place of the waveform (sllm.sh ``--cache_encoder true``; issue #16 §4).

A frozen encoder without SpecAugment (a frozen Whisper or MMS, the encoders of Ideal-LLM's
kind) computes the same output for an utterance at every epoch. The cache stores it once:

    <output_dir>/cache_info.json            what it was built from (below), and a summary
    <output_dir>/chunks/feats.<i>.{ark,scp}  utterances [i*C, (i+1)*C) of wav.scp (C: chunk_size)
    <output_dir>/encoder_feats.scp          every utterance: "<uttid> <ark>:<offset>"

Training reads ``encoder_feats.scp`` as the data name ``encoder_feats`` of ESPnet's type
``kaldi_ark`` (frames (T, D_enc) per utterance; the collate gives (B, T, D_enc) and
``encoder_feats_lengths``), and `ESPnetSLLMModel.forward` skips frontend, specaug, normalize
and encoder (`SpeechEncoding.cached_rows`).

Storage: Kaldi ark/scp written with kaldiio, each utterance's valid frames as a float16
(``--dtype float32`` for exact tests) NumPy array (kaldiio's ``write_function="numpy"``; Kaldi's
own matrix types have no float16). Chosen over safetensors shards because ESPnet reads it with
its own ``kaldi_ark`` loader: random access by offset, no new loader, the sampler, shape files,
``--multiple_iterator`` splits and data-loader workers unchanged. A text-only utterance (0
samples) is a (0, D_enc) array. Float16 keeps 11 significant bits (relative error <= 2^-11)
and overflows beyond 65504, which is checked: such an utterance is an error that asks for
``--dtype float32``.

Invalidation: ``cache_info.json`` records

* ``config_hash``: SHA-256 of the config that decides the encoder output (`encoder_config`:
  ``frontend``/``specaug``/``normalize``/``encoder`` with their ``*_conf``, ``input_size``,
  ``train_dtype``, ``languages`` for an encoder that takes them) and of the identity of every
  checkpoint those name (`checkpoint_identity`: size + SHA-256 of each file of a local
  directory or file, or of the hub cache's snapshot of a hub id: a copied checkpoint is the same,
  a retrained one is not);
* ``data``: the wav.scp (path, size, mtime, SHA-256), the storage dtype and the chunk size.

A run whose record differs from the one on disk removes the old cache and builds anew; training
(``sllm_train``) refuses a cache whose ``config_hash`` differs from its config's
(`check_training_cache`, naming the keys that differ). sllm.sh stamps the step as well.

Resumable: a chunk is complete once its scp is renamed into place (after the ark is written and
fsync'd); a killed run redoes only the chunk it was writing. The final ``encoder_feats.scp`` is
written last, when every chunk is there.

Every utterance is encoded batch-invariantly (as decoding does: `SpeechEncoding._encode_rows`
with ``batch_invariant``, in eval mode), so its frames do not depend on its batch mates, the
batch size or the order. For ``whisper_hf`` (frozen: it always runs in eval mode) that is what
training on the waveform computes, to float rounding. ESPnet encoders frozen with
``freeze_param`` run in training mode there: their dropout (if any) and the padding effects of
batched training (encoders/batch_invariance.py) are what the cache leaves out.
"""
import hashlib
import inspect
import json
import logging
import os
import re
import shutil
import time
from argparse import Namespace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from espnet_sllm.model import SpeechEncoding
from espnet_sllm.tasks.sllm import (ENCODER_FEATS_NAME, SLLMTask, encoder_choices,
                                    frontend_choices, normalize_choices, specaug_choices)

logger = logging.getLogger(__name__)

FORMAT = 1
SCP_NAME = f"{ENCODER_FEATS_NAME}.scp"
INFO_NAME = "cache_info.json"
CHUNKS = "chunks"
#: The config keys whose values decide the encoder output (the ``*_conf`` of a None class are
#: left out: they do nothing).
CLASS_KEYS = ("frontend", "specaug", "normalize", "encoder")
CHOICES = {"frontend": frontend_choices, "specaug": specaug_choices,
           "normalize": normalize_choices, "encoder": encoder_choices}


class CacheError(ValueError):
    """A cache that cannot be written or used; the message names the file and the config key."""


# ------------------------------------------------------------------ the config and its hash


def load_train_args(train_config: str, argv: Sequence[str] = ()) -> Namespace:
    """The training options of ``--config train_config`` plus ``argv`` (e.g. sllm.sh's
    ``--train_args``), parsed by SLLMTask's parser as ``sllm_train`` would."""
    if not os.path.isfile(train_config):
        raise CacheError(f"{train_config}: no such training config")
    return SLLMTask.get_parser().parse_args(["--config", train_config, *argv])


def _with_defaults(choices, name: str, conf: Dict[str, Any]) -> Dict[str, Any]:
    """``conf`` completed with the constructor defaults of class ``name`` of ``choices``, so
    that writing out a default (``layer: -1``) is no change."""
    params = inspect.signature(choices.get_class(name).__init__).parameters
    out = {k: p.default for k, p in params.items()
           if k not in ("self", "input_size") and p.default is not inspect.Parameter.empty}
    out.update(conf)
    return out


def encoder_config(args: Namespace) -> Dict[str, Any]:
    """The part of the training config that decides the encoder output, as plain data (every
    constructor argument, defaults included)."""
    conf: Dict[str, Any] = {}
    for key in CLASS_KEYS:
        name = getattr(args, key, None)
        conf[key] = name
        given = SLLMTask.encoder_conf(args) if key == "encoder" else dict(  # + `languages`
            getattr(args, f"{key}_conf", None) or {})
        if name is not None:
            conf[f"{key}_conf"] = _with_defaults(CHOICES[key], name, given)
    if args.frontend is None:
        conf["input_size"] = args.input_size
    conf["train_dtype"] = args.train_dtype  # ESPnet casts non-frozen-dtype weights to it
    return json.loads(json.dumps(conf, sort_keys=True, default=_stable))


def _stable(value: Any) -> str:
    """A JSON stand-in for a non-JSON default (a class, a function, a tuple member...) that is
    the same in every process: no memory address."""
    if hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


_HASHED: Dict[Tuple[str, int, int], str] = {}


def _sha256(path: str) -> str:
    """SHA-256 of a file (memoised per process on path, size and mtime; about 2 s per GB on a
    2-core VM). A file of the Hugging Face hub cache is a link to ``blobs/<hash>``, named by
    its SHA-256 (LFS files) or git SHA-1: that name is used, nothing is read."""
    if os.path.islink(path):
        target = os.path.realpath(path)
        name = os.path.basename(target)
        if os.path.basename(os.path.dirname(target)) == "blobs" and re.fullmatch(
                r"[0-9a-f]{64}|[0-9a-f]{40}", name):
            return name if len(name) == 64 else f"git-sha1:{name}"
    st = os.stat(path)
    memo = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if memo not in _HASHED:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        _HASHED[memo] = h.hexdigest()
    return _HASHED[memo]


def _path_identity(path: str) -> Dict[str, Any]:
    """{relative file: [size, sha256]} of a file or of every non-hidden file of a directory."""
    if os.path.isfile(path):
        return {os.path.basename(path): [os.path.getsize(path), _sha256(path)]}
    out = {}
    for root, dirs, files in os.walk(path, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                full = os.path.join(root, name)
                out[os.path.relpath(full, path)] = [os.path.getsize(full), _sha256(full)]
    return out


def _hub_snapshot(repo_id: str) -> Optional[str]:
    """The local snapshot directory of a hub id in the Hugging Face cache, or None."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id, local_files_only=True)
    except Exception:  # not a hub id, or not downloaded: identified by its name alone
        return None


def checkpoint_identity(conf: Dict[str, Any]) -> Dict[str, Any]:
    """{config key: file identities} of every file or directory the ``*_conf`` values name
    (``encoder_conf.model_name_or_path``, a ``normalize_conf.stats_file``, ...); a hub id is
    identified by its snapshot in the Hugging Face cache when it is there."""
    out: Dict[str, Any] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}")
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(v, f"{key}.{i}")
        elif isinstance(value, str) and value:
            if os.path.exists(value):
                out[key] = _path_identity(value)
            elif key.endswith("model_name_or_path"):
                snapshot = _hub_snapshot(value)
                out[key] = _path_identity(snapshot) if snapshot else "not in the local hub cache"
                if snapshot is None:
                    logger.warning(f"{key}={value}: not a local path and not in the local "
                                   f"Hugging Face cache: the cache is keyed by the name alone")

    for key in (f"{k}_conf" for k in CLASS_KEYS):
        walk(conf.get(key) or {}, key)
    return out


def config_hash(args: Namespace) -> Tuple[str, Dict[str, Any]]:
    """(hash, {"encoder_config", "checkpoints"}) of the training config's encoder part."""
    conf = encoder_config(args)
    desc = {"encoder_config": conf, "checkpoints": checkpoint_identity(conf)}
    text = json.dumps(desc, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), desc


def _flat(value: Any, key: str = "") -> Dict[str, Any]:
    if isinstance(value, dict):
        out: Dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{key}.{k}" if key else str(k)))
        return out
    return {key: value}


def config_differences(old: Dict[str, Any], new: Dict[str, Any]) -> List[str]:
    """``key: old -> new`` for every config key that differs between two `config_hash`
    descriptions; a changed checkpoint is named by its config key and file."""
    a, b = _flat(old.get("encoder_config", {})), _flat(new.get("encoder_config", {}))
    out = [f"{k}: {a.get(k, '(unset)')!r} -> {b.get(k, '(unset)')!r}"
           for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    ca, cb = old.get("checkpoints", {}), new.get("checkpoints", {})
    for key in sorted(set(ca) | set(cb)):
        if ca.get(key) != cb.get(key) and not any(o.startswith(key + ":") for o in out):
            fa, fb = ca.get(key) or {}, cb.get(key) or {}
            files = sorted(f for f in set(fa) | set(fb) if fa.get(f) != fb.get(f)) \
                if isinstance(fa, dict) and isinstance(fb, dict) else []
            out.append(f"the checkpoint of {key} changed" + (f" ({', '.join(files[:5])})"
                                                              if files else ""))
    return out


# ------------------------------------------------------------------ the encoder alone


class EncoderStack(SpeechEncoding, torch.nn.Module):
    """frontend -> specaug -> normalize -> encoder of a training config, without projector and
    LLM (a 2-9B LLM need not be loaded to encode). The attribute names are the model's, so
    ESPnet's ``--freeze_param encoder`` means the same here."""

    def __init__(self, frontend, specaug, normalize, encoder):
        super().__init__()
        self.frontend = frontend
        self.specaug = specaug
        self.normalize = normalize
        self.encoder = encoder
        self._encoder_takes_lang_id = "lang_id" in inspect.signature(encoder.forward).parameters


def build_encoder_stack(args: Namespace, device: str = "cpu") -> EncoderStack:
    """The speech side as training builds it: ESPnet's cast to ``--train_dtype`` (frozen
    weights of a ``frozen_dtype`` component keep theirs) and ``--freeze_param``, then eval mode.
    Raises CacheError when it is not cacheable (`SpeechEncoding.encoder_cache_problems`)."""
    stack = EncoderStack(*SLLMTask.build_speech_side(args))
    stack.to(device=device, dtype=getattr(torch, args.train_dtype))
    for t in getattr(args, "freeze_param", None) or []:
        for k, p in stack.named_parameters():
            if k.startswith(t + ".") or k == t:
                p.requires_grad = False
    problems = stack.encoder_cache_problems()
    if problems:
        raise CacheError("this config's encoder cannot be cached: " + "; ".join(problems))
    return stack.eval()


# ------------------------------------------------------------------ writing


def data_identity(wav_scp: str) -> Dict[str, Any]:
    st = os.stat(wav_scp)
    return {"wav.scp": wav_scp, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "sha256": _sha256(wav_scp)}


def read_info(path: str) -> Optional[Dict[str, Any]]:
    """The JSON of ``path`` (a cache_info.json), None when absent or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_json(path: str, obj: Dict[str, Any]) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _wav_keys(wav_scp: str) -> List[str]:
    with open(wav_scp, encoding="utf-8") as f:
        return [line.split(maxsplit=1)[0] for line in f if line.strip()]


def _encode_chunk(stack: EncoderStack, wav_scp: str, keys: List[str], ark: str, scp: str,
                  dtype: np.dtype, batch_size: int, batch_seconds: Optional[float],
                  sample_rate: int, device: str) -> None:
    """Encode ``keys`` into ``ark`` + ``scp`` and write their counts to ``<scp>.json``
    (frames, samples, dim); the scp is renamed into place last: its presence means done."""
    import kaldiio
    from espnet2.train.collate_fn import CommonCollateFn
    from espnet2.train.dataset import ESPnetDataset

    from espnet_sllm.decoding.batching import sorted_batches, utterance_samples

    triples = [(wav_scp, "speech", "sound")]
    dataset = ESPnetDataset(triples, keys_to_load=set(keys))
    samples, _ = utterance_samples(triples, keys)
    collate = CommonCollateFn(float_pad_value=0.0, int_pad_value=-1)
    frames = n_samples = 0
    tmp = f"{scp}.tmp"
    with kaldiio.WriteHelper(f"ark,scp:{ark},{tmp}", write_function="numpy") as writer:
        for batch_keys in sorted_batches(keys, samples, batch_size, batch_seconds, sample_rate):
            uids, batch = collate([dataset[k] for k in batch_keys])
            speech = batch["speech"].to(device)
            lens = batch["speech_lengths"].to(device)
            with torch.no_grad():
                enc, enc_lens, _, rows = stack._encode_rows(speech, lens, None,
                                                            batch_invariant=True)
                enc, enc_lens = stack._scatter_rows(
                    enc, enc_lens, rows, speech.size(0), stack.encoder.output_size(),
                    torch.float32, speech.device)
            for b, uid in enumerate(uids):
                with np.errstate(over="ignore"):  # checked below, with a better message
                    x = enc[b, : int(enc_lens[b])].float().cpu().numpy().astype(dtype)
                if not np.isfinite(x).all():
                    peak = float(enc[b].abs().max())
                    raise CacheError(
                        f"{wav_scp}: utterance {uid}: the encoder output is not finite"
                        if not np.isfinite(peak) or dtype == np.float32 else
                        f"{wav_scp}: utterance {uid}: the encoder output exceeds float16's range "
                        f"(max |x| = {peak:.4g} > 65504); write the cache with --dtype float32")
                writer(uid, x)
                frames += x.shape[0]
                n_samples += int(lens[b])
    with open(ark, "rb+") as f:
        os.fsync(f.fileno())
    _write_json(f"{scp}.json", {"frames": frames, "samples": n_samples,
                                "dim": stack.encoder.output_size()})
    os.replace(tmp, scp)


def write_cache(
    args: Namespace,
    wav_scp: str,
    output_dir: str,
    dtype: str = "float16",
    batch_size: int = 8,
    batch_seconds: Optional[float] = None,
    chunk_size: int = 1000,
    device: str = "cpu",
    log: Callable[[str], None] = logger.info,
) -> Dict[str, Any]:
    """Write (or complete, or reuse) the cache of ``wav_scp`` for the training config ``args``
    in ``output_dir``; returns its cache_info.json (module docstring: layout, invalidation,
    resuming). ``dtype``: float16 (default) or float32; ``batch_size`` / ``batch_seconds``:
    the encoding batches (as sllm_inference's); ``chunk_size``: utterances per ark."""
    if dtype not in ("float16", "float32"):
        raise CacheError(f"--dtype must be float16 or float32, got {dtype!r}")
    if chunk_size < 1:
        raise CacheError(f"--chunk_size must be >= 1, got {chunk_size}")
    if not os.path.isfile(wav_scp):
        raise CacheError(f"{wav_scp}: no such file")
    chash, desc = config_hash(args)
    record = {"format": FORMAT, "config_hash": chash, "data": data_identity(wav_scp),
              "dtype": dtype, "chunk_size": chunk_size}
    info_path = os.path.join(output_dir, INFO_NAME)
    old = read_info(info_path)
    rebuild = old is None or {k: old.get(k) for k in record} != record
    if not rebuild and old.get("complete") and os.path.isfile(os.path.join(output_dir, SCP_NAME)):
        log(f"{output_dir}: the cache is complete and up to date")
        return old
    keys = _wav_keys(wav_scp)
    chunks = [keys[i : i + chunk_size] for i in range(0, len(keys), chunk_size)]
    paths = [os.path.join(output_dir, CHUNKS, f"feats.{i}") for i in range(len(chunks))]
    todo = list(range(len(chunks))) if rebuild else [
        i for i, p in enumerate(paths) if not os.path.isfile(p + ".scp")]
    # Built before anything is removed: a config that cannot be cached leaves the old cache.
    stack = build_encoder_stack(args, device) if todo else None
    if rebuild:
        if old is not None:
            why = ", ".join(k for k in record if old.get(k) != record[k])
            diffs = config_differences(old, desc) if old.get("config_hash") != chash else []
            log(f"{output_dir}: rebuilding the cache ({why} changed"
                + (": " + "; ".join(diffs) if diffs else "") + ")")
        for stale in (CHUNKS, SCP_NAME):
            path = os.path.join(output_dir, stale)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
        os.makedirs(os.path.join(output_dir, CHUNKS), exist_ok=True)
        _write_json(info_path, {**record, **desc, "complete": False})
    elif len(todo) < len(chunks):
        log(f"{output_dir}: {len(chunks) - len(todo)} of {len(chunks)} chunks already written "
            f"(resuming)")
    sample_rate = int((args.model_conf or {}).get("sample_rate", 16000))
    start = time.time()
    for n, i in enumerate(todo, 1):
        _encode_chunk(stack, wav_scp, chunks[i], paths[i] + ".ark", paths[i] + ".scp",
                      np.dtype(dtype), batch_size, batch_seconds, sample_rate, device)
        log(f"{output_dir}: chunk {i + 1}/{len(chunks)} written ({n}/{len(todo)} this run, "
            f"{time.time() - start:.1f} s)")
    return _finish(output_dir, paths, keys, record, desc, sample_rate, log)


def _finish(output_dir: str, paths: List[str], keys: List[str], record: Dict[str, Any],
            desc: Dict[str, Any], sample_rate: int, log: Callable[[str], None]) -> Dict[str, Any]:
    """encoder_feats.scp in wav.scp order from the chunk scps, and the summary."""
    lines: Dict[str, str] = {}
    for p in paths:
        with open(p + ".scp", encoding="utf-8") as f:
            for line in f:
                key = line.split(maxsplit=1)[0]
                lines[key] = line if line.endswith("\n") else line + "\n"
    missing = [k for k in keys if k not in lines]
    if missing:
        raise CacheError(f"{output_dir}: the chunks lack {len(missing)} utterances of "
                         f"{record['data']['wav.scp']}, e.g. {missing[0]}: delete {output_dir}")
    counts = [read_info(p + ".scp.json") or {} for p in paths]
    frames = sum(c.get("frames", 0) for c in counts)
    samples = sum(c.get("samples", 0) for c in counts)
    dim = counts[0].get("dim") if counts else None
    tmp = os.path.join(output_dir, SCP_NAME + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(lines[k] for k in keys)
    os.replace(tmp, os.path.join(output_dir, SCP_NAME))
    n_bytes = sum(os.path.getsize(p + ".ark") for p in paths)
    hours = samples / sample_rate / 3600
    summary = {"num_utterances": len(keys), "frames": frames, "dim": dim, "bytes": n_bytes,
               "audio_hours": hours, "bytes_per_audio_hour": n_bytes / hours if hours else None,
               "frames_per_second": frames / (hours * 3600) if hours else None}
    info = {**record, **desc, "summary": summary, "complete": True}
    _write_json(os.path.join(output_dir, INFO_NAME), info)
    rate = f", {n_bytes / hours / 1e9:.3f} GB per hour of audio" if hours else ""
    log(f"{output_dir}: {len(keys)} utterances, {frames} frames of {dim} ({record['dtype']}), "
        f"{n_bytes / 1e6:.1f} MB{rate}")
    return info


# ------------------------------------------------------------------ training with it


def info_path_of(data_path: str) -> str:
    """The cache_info.json of an ``encoder_feats`` data path: beside the scp, or inside the
    folder of a ``--num_splits`` split (sllm.sh copies it there)."""
    if os.path.isdir(data_path):
        return os.path.join(data_path, INFO_NAME)
    return os.path.join(os.path.dirname(data_path), INFO_NAME)


def check_training_cache(args: Namespace, groups: Dict[str, Sequence[Sequence[str]]]) -> int:
    """Before training starts: each group of data triples (``{"train": [(path, name, type),
    ...], "valid": [...]}``) gives ``speech`` or ``encoder_feats`` (type ``kaldi_ark``), not
    both; a cache was written (complete) for this config's encoder part (same `config_hash`,
    else the error names the keys that differ) and holds every utterance of the group's text;
    the config has no ``specaug``. Returns the number of caches checked (0: none used).
    Raises CacheError naming the file and the key."""
    from espnet_sllm.data.check import data_parts

    current = None
    n = 0
    for group, triples in groups.items():
        names = {name: (path, kind) for path, name, kind in triples}
        if not names:
            continue
        if "speech" in names and ENCODER_FEATS_NAME in names:
            raise CacheError(f"{group} data: both speech and {ENCODER_FEATS_NAME} given; give "
                             f"one (the waveform, or the frozen encoder's cache)")
        if ENCODER_FEATS_NAME not in names:
            if "speech" not in names:
                raise CacheError(f"{group} data: neither speech (wav.scp,speech,sound) nor "
                                 f"{ENCODER_FEATS_NAME} (a cache's {SCP_NAME},"
                                 f"{ENCODER_FEATS_NAME},kaldi_ark) given")
            continue
        path, kind = names[ENCODER_FEATS_NAME]
        if kind != "kaldi_ark":
            raise CacheError(f"{path}: the data type of {ENCODER_FEATS_NAME} must be kaldi_ark, "
                             f"got {kind}")
        if getattr(args, "specaug", None) is not None:
            raise CacheError(
                f"{path}: `specaug: {args.specaug}` in the config: SpecAugment masks differently "
                f"at every step, a cache holds one output per utterance; remove `specaug` / "
                f"`specaug_conf`, or train on the waveform")
        info_path = info_path_of(path)
        info = read_info(info_path)
        if info is None or info.get("format") != FORMAT:
            raise CacheError(f"{info_path}: missing or unreadable: {path} is not a cache written "
                             f"by espnet_sllm.bin.cache_encoder")
        if not info.get("complete"):
            raise CacheError(f"{info_path}: the cache is incomplete (its writing was "
                             f"interrupted): run espnet_sllm.bin.cache_encoder again")
        if current is None:
            current = config_hash(args)
        if info.get("config_hash") != current[0]:
            diffs = config_differences(info, current[1]) or ["(no key: the hash recipe changed)"]
            raise CacheError(
                f"{info_path}: the cache was written for another encoder config than this "
                f"training config's: " + "; ".join(diffs) + ". Rebuild it (sllm.sh "
                f"--cache_encoder true reruns it in stage 5), or train on the waveform")
        cached = set()
        for part in data_parts(path):
            cached.update(_wav_keys(part))
        if "text" in names:
            for part in data_parts(names["text"][0]):
                with open(part, encoding="utf-8") as f:
                    for lineno, line in enumerate(f, 1):
                        key = line.split(maxsplit=1)[0] if line.strip() else None
                        if key is not None and key not in cached:
                            raise CacheError(
                                f"{part}:{lineno}: utterance {key} is not in the cache {path} "
                                f"(written for {info['data']['wav.scp']}): rebuild the cache")
        n += 1
    return n


def bytes_per_hour(frames_per_second: float, dim: int, bytes_per_value: int = 2) -> float:
    """Cache bytes per hour of audio: frames/s x 3600 x dim x bytes per value (ark and scp
    overhead, ~150 bytes per utterance, left out). Whisper-large-v3 and MMS-1b: 50 x 3600 x
    1280 x 2 = 0.46 GB."""
    return frames_per_second * 3600 * dim * bytes_per_value

