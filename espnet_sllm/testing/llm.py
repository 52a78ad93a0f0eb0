"""Tiny random decoder-only LLMs of real architectures for tests and the demo.

The builder itself is production code (recipe stage 4 uses it for an LLM trained from scratch):
:func:`espnet_sllm.llm.scratch.make_scratch_llm`.  This module is the test kit's name for it;
the default sizes (hidden 64, 2 layers) are the tiny ones.
"""
from espnet_sllm.llm.scratch import FAMILIES, REAL_TRAITS
from espnet_sllm.llm.scratch import make_scratch_llm as make_tiny_llm

__all__ = ["FAMILIES", "REAL_TRAITS", "make_tiny_llm"]
