"""Decode speech with a trained Speech LLM; writes ESPnet's ``1best_recog`` layout.

Usage:
    python -m espnet_sllm.bin.sllm_inference \
        --train_config exp/sllm/config.yaml --model_file exp/sllm/valid.acc.best.pth \
        --data_path_and_name_and_type dump/raw/test/wav.scp,speech,sound \
        [--data_path_and_name_and_type dump/raw/test/utt2lang,lang,text] \
        [--key_file split/keys.1.scp] --output_dir exp/sllm/decode_test/output.1 \
        --batch_size 8 [--batch_seconds 120] --beam_size 4 --no_repeat_ngram_size 5

Writes ``<output_dir>/1best_recog/{text,token,token_int,score}``, each sorted by utterance id.
``--key_file`` decodes only the listed utterances (ESPnet's way of splitting into N jobs).
``--preprocessor_conf key=value`` overrides the training prompt (e.g. another template).
Text-only utterances (``preprocessor_conf.text_only_tasks``; the 0-sample WAVs stage 2 writes for
empty wav.scp entries) decode in the same batches as speech ones; their output is bounded by
``--max_new_tokens`` alone.

Batches: the utterances sorted by length, longest first (``espnet_sllm.decoding.batching``:
lengths from the data directory's ``utt2num_samples`` or the audio headers, no audio read), at
most ``--batch_size`` per batch and, with ``--batch_seconds``, at most that many seconds of
padded audio (count x longest); both bounds hold. An utterance decodes to the same hypothesis
whatever its batch (``ESPnetSLLMModel.generate`` encodes batch-invariantly, LLM padding is
masked): the same tokens, scores equal to float rounding.

Resumable: after every batch its results are appended to ``<output_dir>/1best_recog/.partial.jsonl``
(one JSON line per utterance, flushed and fsync'd, so a killed job loses at most the batch it was
decoding). A re-run with the same model file (size, mtime), training config, data files (content),
decoding options and torch/transformers/ESPnet versions (the header line of that file) decodes
only the utterances it lacks, in the batches an uninterrupted run would have used (the batching
is a function of the keys, their lengths and the batch options), and writes the same files byte
for byte. The batch options are not in the header (the set of decoded keys is what matters), so
a run with another ``--batch_size`` or ``--batch_seconds`` resumes too (the same hypotheses,
scores to float rounding). A partial file of anything else is discarded (logged), a line cut by
the kill is ignored. The final files are written to a temporary name and renamed, ``text`` last (the
old ones are removed first: no ``text`` means not finished). The partial file stays: running a
finished job again with nothing changed decodes nothing (delete the output directory to decode
anew, e.g. after changing the decoding code).

An utterance whose audio cannot be read (a corrupt or empty file; libsndfile's error) does not
stop the job: it is listed in ``1best_recog/failed`` (``<uttid> <reason>``), gets an empty
hypothesis (scored as all deletions) and empty token/token_int/score entries, and the count is
logged as a warning; the other utterances decode; a missing audio file too (its reason names
wav.scp:line and the path). Failed utterances are retried by a resumed run.
"""
import hashlib
import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from espnet2.torch_utils.set_all_random_seed import set_all_random_seed
from espnet2.train.dataset import ESPnetDataset

from espnet_sllm.data.check import SOUND_TYPES, check_data_triples
from espnet_sllm.decoding.batching import plan_batches
from espnet_sllm.tasks.sllm import SLLMTask, task_languages
from espnet_sllm.torch_utils import parse_dtype


def load_model(train_config: str, model_file: Optional[str], device: str,
               llm_conf: Optional[Dict[str, Any]] = None):
    """Build the model from its training config and load the trained weights.

    A checkpoint saved with ``--save_strategy required_grad_only`` lacks the frozen pretrained
    weights, which the config reloads from their source; any other missing or unexpected key
    is an error (ESPnet itself loads with strict=False and would hide it).

    ``llm_conf`` (``sllm_inference --llm_conf key=value``): overrides of the training
    ``llm_conf``, e.g. another frozen LLM of the same architecture (Wu et al.'s swap of Yi-6B for
    Yi-6B-Chat). The training tokenizer stays (``tokenizer_name_or_path``), the frozen LLM
    weights come from the new checkpoint even when the trained checkpoint holds the old ones,
    everything trained (projector, added-token rows, ...) comes from ``model_file``, and decoding
    also stops at the new model's own EOS ids (its generation_config's, its config's and its
    tokenizer's EOS, the last by name in the training tokenizer). Another hidden size or base
    vocabulary size is an error naming both; so is a checkpoint whose LLM weights themselves
    were trained (no frozen LLM to swap). Overrides that keep ``model_name_or_path`` rebuild the
    LLM with them and are no swap.
    """
    if not llm_conf:
        model, args = SLLMTask.build_model_from_file(train_config, None, device)
        swapped = None
    else:
        model, args, swapped = _build_swapped(train_config, llm_conf, device)
    if model_file is not None:
        # weights_only: a checkpoint is tensors; nothing in it may run code on loading.
        state = torch.load(model_file, map_location=device, weights_only=True)
        state = state.get("module", state)  # DeepSpeed checkpoints
        if swapped is not None:  # the frozen LLM weights are the swapped-in model's
            from espnet_sllm.chain import reloadable_keys
            from espnet_sllm.torch_utils import PRETRAINED_ATTR

            frozen = {k for k in reloadable_keys(model) if k.startswith("llm.")}
            state = {k: v for k, v in state.items() if k not in frozen}
            # LLM weights that training changed (llm_conf.freeze false, no LoRA) would replace
            # the swapped-in model's own: that is no swap.
            tuned = [n for n, p in model.named_parameters() if n.startswith("llm.") and n in state
                     and p.requires_grad and getattr(p, PRETRAINED_ATTR, False)]
            if tuned:
                raise ValueError(
                    f"--llm_conf model_name_or_path={swapped}: {model_file} holds fine-tuned "
                    f"weights of the trained LLM itself ({len(tuned)} tensors, e.g. {tuned[0]}), "
                    f"which would overwrite the swapped-in model's; the swap needs a frozen LLM "
                    f"(llm_conf.freeze true, or LoRA)")
        result = model.load_state_dict(state, strict=False)
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        missing = [k for k in result.missing_keys if k in trainable]
        if result.unexpected_keys or missing:
            raise RuntimeError(
                f"{model_file} does not match {train_config}: "
                f"unexpected keys {result.unexpected_keys[:5]}, missing trainable keys "
                f"{missing[:5]}"
            )
    model.eval()
    return model, args


def _build_swapped(train_config: str, llm_conf: Dict[str, Any], device: str):
    """(model, args, the swapped LLM path) of the training config with ``llm_conf`` overrides."""
    import argparse

    import yaml
    from transformers import AutoConfig, GenerationConfig

    with open(train_config, encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    old = dict(conf.get("llm_conf") or {})
    new = {**old, **llm_conf}
    if not llm_conf.get("tokenizer_name_or_path"):  # (also when the config says null)
        new["tokenizer_name_or_path"] = (old.get("tokenizer_name_or_path")
                                         or old.get("model_name_or_path"))
    trust = new.get("trust_remote_code", False)
    before = AutoConfig.from_pretrained(old["model_name_or_path"], trust_remote_code=trust)
    after = AutoConfig.from_pretrained(new["model_name_or_path"], trust_remote_code=trust)
    for what in ("hidden_size", "vocab_size"):
        a = getattr(before.get_text_config(), what, None)
        b = getattr(after.get_text_config(), what, None)
        if a != b:
            raise ValueError(
                f"--llm_conf model_name_or_path={new['model_name_or_path']}: its {what} is {b}, "
                f"but the model was trained with {old['model_name_or_path']} ({what} {a}); the "
                f"swapped LLM must have the same {what}")
    conf["llm_conf"] = new
    args = argparse.Namespace(**conf)
    model = SLLMTask.build_model(args).to(device)
    if new["model_name_or_path"] == old["model_name_or_path"]:  # other options, the same LLM
        return model, args, None
    # The swapped-in model's own end ids: generation_config (chat models put their end of turn
    # there: Yi-6B-Chat's <|im_end|>), config, and its tokenizer's EOS by name in the training
    # tokenizer (ids out of the training vocabulary are ignored).
    eos = [after.eos_token_id]
    try:
        eos.append(GenerationConfig.from_pretrained(new["model_name_or_path"]).eos_token_id)
    except OSError:  # no generation_config.json
        pass
    try:
        from espnet_sllm.llm.tokenizer import load_tokenizer

        own = load_tokenizer(new["model_name_or_path"], (), trust).eos_token
        train_tok = load_tokenizer(new["tokenizer_name_or_path"], (), trust)
        if own in train_tok.get_vocab():
            eos.append(train_tok.convert_tokens_to_ids(own))
    except (OSError, ValueError):  # no tokenizer there
        pass
    flat = [i for e in eos for i in (e if isinstance(e, (list, tuple)) else [e])]
    extra = []
    for i in flat:
        if i is not None and 0 <= int(i) < model.llm.vocab_size() and \
                int(i) != model.llm.eos_token_id and int(i) not in extra:
            extra.append(int(i))
    model.llm.extra_eos_ids = extra
    logging.info(f"LLM swapped: {old['model_name_or_path']} -> {new['model_name_or_path']} "
                 f"(tokenizer {new['tokenizer_name_or_path']}; extra EOS ids "
                 f"{model.llm.extra_eos_ids})")
    return model, args, new["model_name_or_path"]


def parse_task_budgets(value: Optional[str]) -> Dict[str, int]:
    """``"sqa=512,qa=512"`` -> {"sqa": 512, "qa": 512}; a malformed item is an error."""
    out: Dict[str, int] = {}
    for item in (value or "").replace(" ", ",").split(","):
        if not item:
            continue
        task, sep, n = item.partition("=")
        if not sep or not task or not n.isdigit() or int(n) < 1:
            raise ValueError(f"--task_max_new_tokens: expected task=N (N >= 1) items separated "
                             f"by commas, e.g. sqa=512,qa=512; got {item!r} in {value!r}")
        out[task] = int(n)
    return out


def task_of_keys(data_path_and_name_and_type, task_name: str = "task") -> Dict[str, str]:
    """{utterance id: task} from the ``task_name`` data (utt2task, the name
    ``preprocessor_conf.task_name`` reads) of the decoded set; {} when not given."""
    from espnet_sllm.data.kaldi_dir import read_kv

    for path, name, _ in data_path_and_name_and_type:
        if name == task_name:
            return {k: v.strip() for k, v in read_kv(path).items()}
    return {}


def beams_of_keys(data_path_and_name_and_type, keys: Sequence[str], beam_size: int,
                  spec: Optional[str], languages: Optional[Sequence[str]]) -> Dict[str, int]:
    """{utterance id: beam}: ``beam_size``, or the beam of its language in ``spec``
    (``--beam_size_per_lang``, parsed by `chunking.parse_beam_per_lang`; names checked against
    the task option ``languages`` when the model has it, else against the set's labels)."""
    from espnet_sllm.decoding.chunking import parse_beam_per_lang, split_by_beam

    if not spec:
        return {k: beam_size for k in keys}
    utt2lang = task_of_keys(data_path_and_name_and_type, "lang")
    if not utt2lang:
        raise ValueError("--beam_size_per_lang needs the language of each utterance: give "
                         "--data_path_and_name_and_type <data>/utt2lang,lang,text")
    per_lang = parse_beam_per_lang(spec, languages or sorted(set(utt2lang.values())))
    groups = split_by_beam(keys, utt2lang, beam_size, per_lang)
    logging.info("beams: " + ", ".join(f"{len(v)} utterances with beam {b}"
                                       for b, v in sorted(groups.items())))
    return {k: b for b, ks in groups.items() for k in ks}


def _write_svd(out: str, k: int, target: str, counts: dict, rows: Dict[str, dict],
               failed: Dict[str, str]) -> None:
    """``svd_topk`` (activation: every decoded utterance's status, this run's and a resumed
    one's) and ``svd_topk.json`` (`espnet_sllm.analysis.svd.summary`), logged."""
    from espnet_sllm.analysis import svd

    if target == "activation":
        status = {key: r[SVD_NAME] for key, r in rows.items() if SVD_NAME in r}
        if len(status) < len(rows) - len(failed):
            logging.warning(f"--svd_topk: {len(rows) - len(failed) - len(status)} utterances "
                            f"resumed from a partial file without their status: not counted")
        write_sorted(os.path.join(out, SVD_NAME), status)
        summary = svd.summary(k, target, list(status.values()))
        logging.info(f"--svd_topk {k}: {summary['unchanged']} of {summary['utterances']} "
                     f"utterances with speech unchanged (k >= min(frames, width)), listed in "
                     f"{os.path.join(out, SVD_NAME)}")
    else:
        summary = svd.summary(k, target, [], weight_unchanged=bool(counts["unchanged"]))
        logging.info(f"--svd_topk {k} --svd_target weight: the projector weight is "
                     + ("unchanged (k >= its rank)" if counts["unchanged"] else
                        f"replaced by its rank-{k} approximation"))
    tmp = os.path.join(out, f"{SVD_SUMMARY}.tmp.{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    os.replace(tmp, os.path.join(out, SVD_SUMMARY))


def _generate(model, batch, beam_size, max_new_tokens, max_tokens_per_second, min_new_tokens,
              no_repeat_ngram_size, length_penalty, repetition_penalty, row_budgets=None):
    """``model.generate`` on one collated batch: [(token ids, score)] per row."""
    return model.generate(
        batch["speech"],
        batch["speech_lengths"],
        batch["prefix"],
        batch["prefix_lengths"],
        batch["suffix"],
        batch["suffix_lengths"],
        num_beams=beam_size,
        max_new_tokens=max_new_tokens,
        max_tokens_per_second=max_tokens_per_second,
        min_new_tokens=min_new_tokens,
        no_repeat_ngram_size=no_repeat_ngram_size,
        length_penalty=length_penalty,
        repetition_penalty=repetition_penalty,
        lang_id=batch.get("lang_id"),
        row_max_new_tokens=row_budgets,
    )


def read_keys(path: str) -> List[str]:
    """First column of a key file (ESPnet's --key_file: one ``key [anything]`` per line)."""
    with open(path, encoding="utf-8") as f:
        return [line.split(maxsplit=1)[0] for line in f if line.strip()]


OUTPUT_FILES = ("text", "token", "token_int", "score")
#: --svd_topk: ``<uttid> unchanged|truncated|no_frames`` (activation) and the summary
#: (espnet_sllm.analysis.svd.STATUS_NAME / SUMMARY_NAME)
SVD_NAME = "svd_topk"
SVD_SUMMARY = "svd_topk.json"
FAILED_NAME = "failed"
PARTIAL_NAME = ".partial.jsonl"


def write_sorted(path: str, rows: Dict[str, str]) -> None:
    """``key value`` lines sorted by key, written to a temporary name and renamed."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        for key in sorted(rows):
            f.write(f"{key} {rows[key]}".rstrip(" ") + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def hypothesis_text(tokenizer, ids: Sequence[int]) -> str:
    """The decoded hypothesis as one line of a Kaldi ``text`` file: special tokens dropped, and
    every line break the model emits (Qwen2, chat models) a space."""
    return " ".join(tokenizer.decode(list(ids), skip_special_tokens=True).splitlines()).strip()


def token_strings(tokenizer, ids: Sequence[int]) -> List[str]:
    """The tokens of ``ids``; an id the tokenizer has no token for (the LLM's embedding table is
    often padded beyond the vocabulary) is written ``<id:N>`` instead of failing the job."""
    return [t if t is not None else f"<id:{i}>"
            for i, t in zip(ids, tokenizer.convert_ids_to_tokens(list(ids)))]


# ------------------------------------------------------------------ unreadable utterances


class _Unreadable:
    """What the dataset gives for an utterance whose audio cannot be read (picklable)."""

    def __init__(self, reason: str):
        self.reason = reason


class UnreadableAudio(Exception):
    pass


class _GuardedLoader(Mapping):
    """A sound loader whose read errors (not a missing key) become :class:`UnreadableAudio`."""

    def __init__(self, loader, path: str):
        self.loader = loader
        self.path = path

    def __getitem__(self, key):
        try:
            return self.loader[key]
        except KeyError:
            raise
        except Exception as e:  # libsndfile (RuntimeError), kaldiio, a failing pipe, ...
            reason = " ".join(f"{type(e).__name__}: {e}".split())
            raise UnreadableAudio(f"{self.path}: {reason}") from e

    def __iter__(self):
        return iter(self.loader)

    def __len__(self):
        return len(self.loader)

    def __contains__(self, key):
        return key in self.loader.keys()  # without reading the audio

    def keys(self):
        return self.loader.keys()


class TolerantDataset(ESPnetDataset):
    """ESPnet's map-style dataset that gives ``(uid, _Unreadable)`` for an utterance whose audio
    cannot be read, instead of raising (the rest of the batch still decodes)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, (path, kind) in self.debug_info.items():
            if kind in SOUND_TYPES:
                self.loader_dict[name] = _GuardedLoader(self.loader_dict[name], path)

    def __getitem__(self, uid):
        try:
            return super().__getitem__(uid)
        except UnreadableAudio as e:
            return uid, _Unreadable(str(e))


class SkipUnreadableCollate:
    """``collate(items) -> (keys, batch or None, [(uid, reason)])``: the task's collate of the
    readable items, and the unreadable ones apart."""

    def __init__(self, collate):
        self.collate = collate

    def __call__(self, items):
        failed = [(uid, d.reason) for uid, d in items if isinstance(d, _Unreadable)]
        ok = [(uid, d) for uid, d in items if not isinstance(d, _Unreadable)]
        if not ok:
            return [], None, failed
        keys, batch = self.collate(ok)
        return list(keys), batch, failed


# ------------------------------------------------------------------ resumable partial output


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def partial_header(train_config: str, model_file: Optional[str],
                   data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
                   options: Dict[str, Any]) -> Dict[str, Any]:
    """What the results of a partial file depend on: the model file (size and mtime: hashing
    gigabytes would be slow), the training config and data files (content), the options, and the
    versions of the libraries that compute them."""
    model = None
    if model_file is not None:
        st = os.stat(model_file)
        model = [os.path.abspath(model_file), st.st_size, st.st_mtime_ns]
    import espnet
    import transformers

    header = {
        "partial_decoding": 1,
        "versions": [torch.__version__, transformers.__version__, espnet.__version__],
        "model_file": model,
        "train_config": [os.path.abspath(train_config), _sha256(train_config)],
        "data": [[name, kind, _sha256(path)] for path, name, kind in data_path_and_name_and_type],
        "options": options,
    }
    return json.loads(json.dumps(header))  # as it reads back (tuples -> lists)


def read_partial(path: str, header: Dict[str, Any], keys: Sequence[str]) -> Dict[str, dict]:
    """The rows of ``path`` for ``keys`` when its header equals ``header``, else {} (logged).
    Unparsable lines (the last one may be cut by a kill) are ignored."""
    if not os.path.isfile(path):
        return {}
    wanted = set(keys)
    rows: Dict[str, dict] = {}
    bad = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline()
        try:
            old = json.loads(first)
        except ValueError:
            old = None
        if old != {"header": header}:
            logging.warning(
                f"{path}: partial results of a run with another model, config, data, decoding "
                f"options or library versions: discarded, decoding from the start"
            )
            return {}
        for line in f:
            try:
                rec = json.loads(line)
                key = rec["key"]
                row = {name: rec[name] for name in OUTPUT_FILES + (SVD_NAME,) if name in rec}
                if not set(OUTPUT_FILES) <= set(row):
                    raise KeyError(key)
                if not all(isinstance(v, str) for v in (key, *row.values())):
                    raise ValueError(key)
            except (ValueError, KeyError, TypeError):
                bad += 1
                continue
            if key in wanted:
                rows[key] = row
    if bad:
        logging.info(f"{path}: {bad} unreadable line(s) ignored (cut by an interrupted run)")
    return rows


def open_partial(path: str, header: Dict[str, Any], rows: Dict[str, dict]):
    """Rewrite ``path`` with the header and the kept rows (dropping a cut last line), then open
    it for appending."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps({"header": header}) + "\n")
        for key, row in rows.items():
            f.write(json.dumps({"key": key, **row}) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return open(path, "a", encoding="utf-8")


def append_partial(f, rows: Dict[str, dict]) -> None:
    """One write per batch, flushed and fsync'd: a kill loses at most the running batch."""
    f.write("".join(json.dumps({"key": key, **row}) + "\n" for key, row in rows.items()))
    f.flush()
    os.fsync(f.fileno())


def inference(
    output_dir: str,
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
    train_config: str,
    model_file: Optional[str],
    key_file: Optional[str] = None,
    batch_size: int = 8,
    batch_seconds: Optional[float] = None,
    sort_by_length: bool = True,
    ngpu: int = 0,
    dtype: Optional[str] = None,
    num_workers: int = 1,
    seed: int = 0,
    beam_size: int = 1,
    no_repeat_ngram_size: int = 0,
    length_penalty: float = 1.0,
    repetition_penalty: float = 1.0,
    max_new_tokens: int = 200,
    max_tokens_per_second: float = 25.0,
    min_new_tokens: int = 1,
    preprocessor_conf: Optional[dict] = None,
    allow_variable_data_keys: bool = False,
    llm_conf: Optional[dict] = None,
    svd_topk: Optional[int] = None,
    svd_target: str = "activation",
    task_max_new_tokens: Optional[str] = None,
    beam_size_per_lang: Optional[str] = None,
) -> Dict[str, str]:
    """Decode every utterance and write the 1best files; returns {utt_id: text}.

    ``beam_size_per_lang`` (``"Thai=1,Japanese=1,Vietnamese=1"``): those languages (``lang``
    data, utt2lang labels) decode with their own beam, the others with ``beam_size``; batches
    never mix beams (each beam's utterances are batched on their own).

    ``batch_size`` (>= 1) and ``batch_seconds`` (> 0 or None) bound each batch
    (`batching.sorted_batches`)."""
    if batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {batch_size}")
    if batch_seconds is not None and not batch_seconds > 0:
        raise ValueError(f"--batch_seconds must be > 0 (or none), got {batch_seconds}")
    if ngpu > 1:
        raise NotImplementedError("decode on one device per job; split jobs with --key_file")
    # A missing audio file does not stop the others: it is read below, fails, and is listed in
    # `failed` with this clearer reason (wav.scp:line, the path).
    missing_audio: list = []
    check_data_triples(data_path_and_name_and_type, missing_audio=missing_audio)
    if missing_audio:
        logging.warning(f"{len(missing_audio)} audio file(s) not found; those utterances are "
                        f"decoded as empty hypotheses (e.g. {missing_audio[0][1]})")
    budgets = parse_task_budgets(task_max_new_tokens)
    if svd_topk is not None and svd_topk <= 0:  # before the model loads
        raise ValueError(f"--svd_topk must be a positive integer (or none), got {svd_topk}")
    set_all_random_seed(seed)
    device = "cuda" if ngpu > 0 else "cpu"
    model, train_args = load_model(train_config, model_file, device, llm_conf)
    task_name = {**(train_args.preprocessor_conf or {}), **(preprocessor_conf or {})}.get(
        "task_name", "task")
    task_of = task_of_keys(data_path_and_name_and_type, task_name) if budgets else {}
    if budgets:
        found = sorted(set(task_of.values()) & set(budgets))
        logging.info(f"--task_max_new_tokens {budgets}: tasks of the set with their own budget: "
                     f"{found or 'none'}" + ("" if task_of else
                                              f" (no '{task_name}' data, i.e. utt2task, given)"))
    svd_counts = None
    if svd_topk is not None:
        from espnet_sllm.analysis import svd

        svd_counts = svd.apply_svd(model, svd_topk, svd_target)
    if dtype is not None:
        # Everything in one dtype; without --dtype the model runs as it was trained (frozen
        # parts in their config dtypes, trained parts in fp32).
        model.cast_all(parse_dtype(dtype))
    if preprocessor_conf:
        train_args.preprocessor_conf = {**(train_args.preprocessor_conf or {}), **preprocessor_conf}
    preprocess = SLLMTask.build_preprocess_fn(train_args, train=False)
    tokenizer = preprocess.tokenizer
    # ESPnet's map-style dataset (not the streaming one): it accepts the empty values of
    # text_prev/text_next for the first and last segment of a session.
    dataset = TolerantDataset(
        data_path_and_name_and_type,
        preprocess=preprocess,
        float_dtype="float32",
        keys_to_load=set(read_keys(key_file)) if key_file else None,
    )
    names = set(dataset.names())
    required = set(SLLMTask.required_data_names(train=False, inference=True))
    allowed = required | set(SLLMTask.optional_data_names(train=False, inference=True))
    if not required <= names:
        raise ValueError(f"--data_path_and_name_and_type must give {sorted(required - names)}")
    if not allow_variable_data_keys and not names <= allowed:
        raise ValueError(
            f"unknown data names {sorted(names - allowed)}; valid: {sorted(allowed)} "
            f"(or --allow_variable_data_keys true)"
        )
    first_loader = next(iter(dataset.loader_dict.values()))
    keys_all = read_keys(key_file) if key_file else list(first_loader.keys())
    # The key set, not ``k in first_loader``: a Mapping's ``in`` reads the audio.
    known = set(first_loader.keys())
    missing = [k for k in keys_all if k not in known]
    if missing:
        raise KeyError(f"{key_file}: {len(missing)} keys not in the data, e.g. {missing[0]}")
    out = os.path.join(output_dir, "1best_recog")
    os.makedirs(out, exist_ok=True)
    # Outputs of an earlier run are never mistaken for this one's: text (removed first, written
    # last) exists only once every file of this run is complete.
    for name in ("text",) + OUTPUT_FILES[1:] + (FAILED_NAME, SVD_NAME, SVD_SUMMARY):
        if os.path.exists(os.path.join(out, name)):
            os.remove(os.path.join(out, name))
    options = dict(
        seed=seed, device=device, dtype=dtype, beam_size=beam_size,
        no_repeat_ngram_size=no_repeat_ngram_size, length_penalty=length_penalty,
        repetition_penalty=repetition_penalty, max_new_tokens=max_new_tokens,
        max_tokens_per_second=max_tokens_per_second, min_new_tokens=min_new_tokens,
        preprocessor_conf=preprocessor_conf or {}, llm_conf=llm_conf or {},
        svd_topk=svd_topk, svd_target=svd_target if svd_topk is not None else None,
        task_max_new_tokens=budgets, beam_size_per_lang=beam_size_per_lang,
    )
    header = partial_header(train_config, model_file, data_path_and_name_and_type, options)
    partial_path = os.path.join(out, PARTIAL_NAME)
    done = read_partial(partial_path, header, keys_all)
    # The batches of an uninterrupted run, less what is done: a batch is written as a whole, so
    # the remaining utterances decode in the same batches as they would have.
    beam_of = beams_of_keys(data_path_and_name_and_type, keys_all, beam_size, beam_size_per_lang,
                            task_languages(train_args))
    batches = []
    for beam in sorted(set(beam_of.values()), reverse=True):
        batches += plan_batches(data_path_and_name_and_type,
                                [k for k in keys_all if beam_of[k] == beam], batch_size,
                                batch_seconds, model.sample_rate, sort_by_length)
    batches = [[k for k in b if k not in done] for b in batches]
    batches = [b for b in batches if b]
    todo = sum(len(b) for b in batches)
    if done:
        logging.info(f"resuming from {partial_path}: {len(done)} of {len(keys_all)} utterances "
                     f"already decoded; decoding the other {todo}")
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=batches,
        collate_fn=SkipUnreadableCollate(SLLMTask.build_collate_fn(train_args, False)),
        num_workers=num_workers,
    )
    rows: Dict[str, dict] = dict(done)
    failed: Dict[str, str] = {}
    try:
        from tqdm import tqdm
    except ImportError:  # progress bars are a nicety
        tqdm = None
    bar = tqdm(total=todo, desc="decoding", unit="utt", file=sys.stderr) if tqdm else None
    with open_partial(partial_path, header, done) as partial:
        for keys, batch, batch_failed in loader:
            for key, reason in batch_failed:
                logging.warning(f"{key}: cannot be read, decoded as an empty hypothesis: {reason}")
                failed[key] = reason
            if batch is not None:
                batch = {k: v.to(device) for k, v in batch.items() if not k.startswith("text")}
                try:
                    results = _generate(model, batch, beam_of[keys[0]], max_new_tokens,
                                        max_tokens_per_second, min_new_tokens,
                                        no_repeat_ngram_size, length_penalty, repetition_penalty,
                                        [budgets.get(task_of.get(k)) for k in keys]
                                        if budgets else None)
                except ValueError as e:  # bad input the model refuses: name the utterances
                    rows = ", ".join(f"row {i} = {k}" for i, k in enumerate(keys))
                    raise ValueError(f"decoding the batch of {rows}: {e}") from None
                new = {}
                for key, (ids, score) in zip(keys, results):
                    new[key] = {
                        "text": hypothesis_text(tokenizer, ids),
                        "token": " ".join(token_strings(tokenizer, ids)),
                        "token_int": " ".join(map(str, ids)),
                        "score": f"{score:.6f}",
                    }
                if svd_counts is not None and svd_target == "activation":
                    status = svd.row_status(svd_counts, batch["speech_lengths"].tolist())
                    for key, st in zip(keys, status):
                        new[key][SVD_NAME] = st
                append_partial(partial, new)
                rows.update(new)
            if bar is not None:
                bar.update(len(keys) + len(batch_failed))
    if bar is not None:
        bar.close()
    failed.update({k: m for k, m in missing_audio if k in failed})
    if failed and len(failed) == len(keys_all):
        # Nothing decoded at all is a broken set or path, not a few bad files.
        raise ValueError(f"none of the {len(failed)} utterances could be read, e.g. "
                         f"{next(iter(failed.values()))}")
    for key in failed:
        rows[key] = {name: "" for name in OUTPUT_FILES}
    if failed:
        write_sorted(os.path.join(out, FAILED_NAME), failed)
        logging.warning(f"{len(failed)} of {len(keys_all)} utterances could not be read: listed "
                        f"in {os.path.join(out, FAILED_NAME)}, decoded as empty hypotheses")
    for name in OUTPUT_FILES[1:] + ("text",):
        write_sorted(os.path.join(out, name), {k: r[name] for k, r in rows.items()})
    logging.info(f"decoded {len(rows) - len(failed)} utterances into {out} ({todo - len(failed)} "
                 f"in this run, {len(done)} from an earlier one, {len(failed)} unreadable)")
    if svd_counts is not None:
        _write_svd(out, svd_topk, svd_target, svd_counts, rows, failed)
    return {k: r["text"] for k, r in rows.items()}
