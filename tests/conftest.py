"""Shared fixtures: tiny random HF models saved to disk once per test session."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

FAMILIES = ["qwen2", "gemma2", "phi3", "llama"]


@pytest.fixture(scope="session")
def tiny_llm_dirs(tmp_path_factory):
    """family -> directory of a tiny random causal LM + sentencepiece tokenizer."""
    from espnet_sllm.testing.llm import make_tiny_llm

    root = tmp_path_factory.mktemp("llms")
    tok = None
    out = {}
    for fam in FAMILIES:
        out[fam] = make_tiny_llm(str(root / fam), fam, tokenizer_dir=tok)
        tok = tok or out[fam]
    return out


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory):
    from espnet_sllm.testing.whisper import make_tiny_whisper

    return make_tiny_whisper(str(tmp_path_factory.mktemp("whisper")), num_mel_bins=80)
