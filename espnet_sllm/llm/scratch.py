"""Small random decoder-only LLMs of real architectures, saved with ``save_pretrained``.

:func:`make_scratch_llm` writes a complete Hugging Face model directory (config, tokenizer and,
unless ``save_weights=False``, random weights), loaded back through exactly the path a user's
Gemma-2-2B / Phi-3-mini / Yi-6B / Qwen2 checkpoint takes (``AutoModelForCausalLM.from_pretrained``).

Production use: recipe stage 4 (``python -m espnet_sllm.bin.prepare_scratch_llm``) writes the
config + tokenizer of an LLM trained from scratch.  The test kit (its ``llm`` module)
re-exports it as ``make_tiny_llm`` for the tiny checkpoints of tests and the demo.
"""
import os
from typing import Optional

import torch

from espnet_sllm.llm.train_tokenizer import train_sentencepiece_tokenizer

#: family -> (transformers config class name, extra config keys). Llama stands for Yi.
#: Where the tiny models must look like the real checkpoints (what the tests are for), see
#: REAL_TRAITS.
FAMILIES = {
    "qwen2": ("Qwen2Config", {}),
    "gemma2": (
        "Gemma2Config",
        {"query_pre_attn_scalar": 16, "sliding_window": 16, "final_logit_softcapping": 30.0,
         "attn_logit_softcapping": 50.0},
    ),
    "phi3": ("Phi3Config", {}),
    "llama": ("LlamaConfig", {}),
}


#: family -> traits of the real checkpoints the tiny models copy: tied input/output embeddings
#: (Gemma-2-2B; Qwen2-0.5B/1.5B, the sizes the recipes' debug and KeSpeech configs use),
#: spare embedding rows beyond the tokenizer (Qwen2: 151,936 rows for 151,646 entries;
#: Phi-3-mini: 32,064 for 32,011), and the dtype of the saved weights (config ``dtype``).
REAL_TRAITS = {
    "qwen2": dict(tie_word_embeddings=True, spare_rows=16, dtype="bfloat16"),
    "gemma2": dict(tie_word_embeddings=True, spare_rows=0, dtype="float32"),
    "phi3": dict(tie_word_embeddings=False, spare_rows=8, dtype="bfloat16"),
    "llama": dict(tie_word_embeddings=False, spare_rows=0, dtype="bfloat16"),
}


def make_scratch_llm(
    out_dir: str,
    family: str = "qwen2",
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    tokenizer_dir: Optional[str] = None,
    sentences=None,
    vocab_size: int = 200,
    seed: int = 0,
    save_weights: bool = True,
    tie_word_embeddings: Optional[bool] = None,
    spare_rows: Optional[int] = None,
    dtype: Optional[str] = None,
) -> str:
    """Build a small random ``family`` causal LM + tokenizer and save both to ``out_dir``.

    ``tokenizer_dir``: an existing HF tokenizer directory to copy; otherwise a sentencepiece
    tokenizer is trained on ``sentences``. ``save_weights=False`` writes config + tokenizer only
    (the from-scratch layout used by recipes: ``pretrained: false`` builds random weights).
    ``tie_word_embeddings``, ``spare_rows`` (embedding rows beyond the tokenizer) and ``dtype``
    (of the saved weights) default to the real family's (`REAL_TRAITS`).
    Returns ``out_dir``.
    """
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if family not in FAMILIES:
        raise ValueError(f"unknown LLM family {family!r}; valid: {sorted(FAMILIES)}")
    os.makedirs(out_dir, exist_ok=True)
    if tokenizer_dir is None:
        train_sentencepiece_tokenizer(out_dir, sentences=sentences, vocab_size=vocab_size)
        tokenizer = AutoTokenizer.from_pretrained(out_dir)
    else:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        tokenizer.save_pretrained(out_dir)
    traits = dict(REAL_TRAITS[family])
    for key, value in (("tie_word_embeddings", tie_word_embeddings), ("spare_rows", spare_rows),
                       ("dtype", dtype)):
        if value is not None:
            traits[key] = value
    config_cls_name, extra = FAMILIES[family]
    config = getattr(transformers, config_cls_name)(
        vocab_size=len(tokenizer) + traits["spare_rows"],
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        head_dim=hidden_size // num_heads,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=traits["tie_word_embeddings"],
        **extra,
    )
    if save_weights:
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
        # Real checkpoints train their spare rows little or not at all; ours are random like the
        # others, which makes a bug that reads them show up in the logits.
        model = model.to(getattr(torch, traits["dtype"]))
        model.save_pretrained(out_dir)
    else:
        config.save_pretrained(out_dir)
    return out_dir
