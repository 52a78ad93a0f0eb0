"""Loading the LLM's tokenizer, shared by the preprocessor (training data) and the model.

Both sides must see the same vocabulary, including added special tokens, so both call
:func:`load_tokenizer` with the same arguments (taken from ``llm_conf``).
"""
import json
import logging
import os
from typing import List, Optional, Sequence


def load_tokenizer(
    name_or_path: str,
    special_tokens: Sequence[str] = (),
    trust_remote_code: bool = False,
    return_base_size: bool = False,
):
    """Load an HF tokenizer from a local directory or hub id and add ``special_tokens``.

    The ``tokenizer_class`` written in a local ``tokenizer_config.json`` is honoured: transformers
    5's ``AutoTokenizer`` otherwise picks the class of the model type in ``config.json``, which
    re-interprets a tokenizer trained for another family (e.g. our sentencepiece tokenizers
    beside a Qwen2 config lose their spaces). For real checkpoints both choices coincide.
    A pad token is required for batching; when the tokenizer has none, EOS is used.
    With ``return_base_size`` the result is ``(tokenizer, n)``: ``n`` = ``len(tokenizer)`` before
    ``special_tokens`` were added, so the added tokens have the ids ``n, n+1, ...`` (an embedding
    matrix may have more rows than that: Qwen2 and Phi-3 keep spare rows). Tokens that an earlier
    round added (the merged checkpoint lists them in ``ADDED_TOKENS_FILE``) are counted as added
    too: ``n`` is then where they start.
    """
    import transformers
    from transformers import AutoTokenizer

    if trust_remote_code:
        # Off by default everywhere: with it, Python files shipped with the checkpoint run.
        logging.warning("trust_remote_code is on: code shipped with %s runs on loading",
                        name_or_path)
    cls = AutoTokenizer
    cfg_path = os.path.join(name_or_path, "tokenizer_config.json")
    if os.path.isfile(cfg_path):
        with open(cfg_path, encoding="utf-8") as f:
            name = json.load(f).get("tokenizer_class")
        if name and hasattr(transformers, name):
            cls = getattr(transformers, name)
    try:
        tok = cls.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except OSError as e:
        raise OSError(
            f"cannot load the tokenizer from {name_or_path!r}: give a local HF model directory "
            f"or a hub id reachable from this machine ({e})"
        ) from e
    vocab = tok.get_vocab()
    missing = [t for t in special_tokens if t not in vocab]
    n_base = len(tok)
    # Tokens an earlier round added (listed in ADDED_TOKENS_FILE of a merged checkpoint written by
    # HFCausalLM.save_pretrained) count as added again: their rows stay trainable. They are the
    # last ids of that tokenizer, so the added range stays one block [n_base, len(tok)).
    earlier = set(read_added_tokens(name_or_path)) & set(special_tokens)
    while n_base > 0 and tok.convert_ids_to_tokens(n_base - 1) in earlier:
        n_base -= 1
    if missing:
        tok.add_special_tokens({"additional_special_tokens": list(missing)},
                               replace_extra_special_tokens=False)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    if tok.eos_token_id is None:
        raise ValueError(f"tokenizer of {name_or_path!r} has no EOS token; set one in its config")
    return (tok, n_base) if return_base_size else tok


#: A file of a merged LLM directory (HFCausalLM.save_pretrained) listing the special tokens an
#: earlier training round added; `load_tokenizer` treats them as added again (a JSON list).
ADDED_TOKENS_FILE = "espnet_sllm_added_tokens.json"


def read_added_tokens(name_or_path: str) -> List[str]:
    """The tokens listed in ``<name_or_path>/ADDED_TOKENS_FILE`` ([] without the file)."""
    path = os.path.join(name_or_path, ADDED_TOKENS_FILE)
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        tokens = json.load(f)
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise ValueError(f"{path}: expected a JSON list of token strings")
    return tokens


def bos_ids(tokenizer) -> List[int]:
    """``[bos]`` when the tokenizer puts BOS in front of a text by itself (Gemma, Llama), else ``[]``.

    We tokenise prompt pieces with ``add_special_tokens=False`` and place BOS once at the very
    start, so the LLM sees what it saw in pre-training.
    """
    bos: Optional[int] = tokenizer.bos_token_id
    if bos is None:
        return []
    ids = tokenizer("a")["input_ids"]
    return [bos] if ids and ids[0] == bos else []
