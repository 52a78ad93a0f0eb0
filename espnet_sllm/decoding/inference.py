"""Decode speech with a trained Speech LLM; writes ESPnet's ``1best_recog`` layout.

Usage:
    python -m espnet_sllm.bin.sllm_inference \
        --train_config exp/sllm/config.yaml --model_file exp/sllm/valid.acc.best.pth \
        --data_path_and_name_and_type dump/raw/test/wav.scp,speech,sound \
        [--data_path_and_name_and_type dump/raw/test/utt2lang,lang,text] \
        [--key_file split/keys.1.scp] --output_dir exp/sllm/decode_test/output.1 \
        --batch_size 8 --beam_size 4 --no_repeat_ngram_size 5

Writes ``<output_dir>/1best_recog/{text,token,token_int,score}``, each sorted by utterance id.
``--key_file`` decodes only the listed utterances (ESPnet's way of splitting into N jobs).
``--preprocessor_conf key=value`` overrides the training prompt (e.g. another template).
Text-only utterances (``preprocessor_conf.text_only_tasks``; the 0-sample WAVs stage 2 writes for
empty wav.scp entries) decode in the same batches as speech ones; their output is bounded by
``--max_new_tokens`` alone.
"""
import logging
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from espnet2.torch_utils.set_all_random_seed import set_all_random_seed
from espnet2.train.dataset import ESPnetDataset

from espnet_sllm.data.check import check_data_triples
from espnet_sllm.tasks.sllm import SLLMTask
from espnet_sllm.torch_utils import parse_dtype


def load_model(train_config: str, model_file: Optional[str], device: str):
    """Build the model from its training config and load the trained weights.

    A checkpoint saved with ``--save_strategy required_grad_only`` lacks the frozen pretrained
    weights, which the config reloads from their source; any other missing or unexpected key
    is an error (ESPnet itself loads with strict=False and would hide it).
    """
    model, args = SLLMTask.build_model_from_file(train_config, None, device)
    if model_file is not None:
        # weights_only: a checkpoint is tensors; nothing in it may run code on loading.
        state = torch.load(model_file, map_location=device, weights_only=True)
        state = state.get("module", state)  # DeepSpeed checkpoints
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


def read_keys(path: str) -> List[str]:
    """First column of a key file (ESPnet's --key_file: one ``key [anything]`` per line)."""
    with open(path, encoding="utf-8") as f:
        return [line.split(maxsplit=1)[0] for line in f if line.strip()]


def write_sorted(path: str, rows: Dict[str, str]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for key in sorted(rows):
            f.write(f"{key} {rows[key]}".rstrip(" ") + "\n")


def inference(
    output_dir: str,
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
    train_config: str,
    model_file: Optional[str],
    key_file: Optional[str] = None,
    batch_size: int = 8,
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
) -> Dict[str, str]:
    """Decode every utterance and write the 1best files; returns {utt_id: text}."""
    if ngpu > 1:
        raise NotImplementedError("decode on one device per job; split jobs with --key_file")
    check_data_triples(data_path_and_name_and_type)
    set_all_random_seed(seed)
    device = "cuda" if ngpu > 0 else "cpu"
    model, train_args = load_model(train_config, model_file, device)
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
    dataset = ESPnetDataset(
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
    missing = [k for k in keys_all if k not in first_loader]
    if missing:
        raise KeyError(f"{key_file}: {len(missing)} keys not in the data, e.g. {missing[0]}")
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=[keys_all[i : i + batch_size] for i in range(0, len(keys_all), batch_size)],
        collate_fn=SLLMTask.build_collate_fn(train_args, False),
        num_workers=num_workers,
    )
    texts, tokens, token_ints, scores = {}, {}, {}, {}
    try:
        from tqdm import tqdm
    except ImportError:  # progress bars are a nicety
        tqdm = None
    bar = tqdm(total=len(keys_all), desc="decoding", unit="utt", file=sys.stderr) if tqdm else None
    for keys, batch in loader:
        batch = {k: v.to(device) for k, v in batch.items() if not k.startswith("text")}
        results = model.generate(
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
        )
        for key, (ids, score) in zip(keys, results):
            texts[key] = tokenizer.decode(ids, skip_special_tokens=True).strip()
            tokens[key] = " ".join(tokenizer.convert_ids_to_tokens(ids))
            token_ints[key] = " ".join(map(str, ids))
            scores[key] = f"{score:.6f}"
        if bar is not None:
            bar.update(len(keys))
    if bar is not None:
        bar.close()
    out = os.path.join(output_dir, "1best_recog")
    for name, rows in (("text", texts), ("token", tokens), ("token_int", token_ints),
                       ("score", scores)):
        write_sorted(os.path.join(out, name), rows)
    logging.info(f"decoded {len(texts)} utterances into {out}")
    return texts
