"""Abstract base of the decoder-only LLM component."""
from abc import ABC, abstractmethod
from typing import Optional

import torch


class AbsLLM(torch.nn.Module, ABC):
    """A causal LM driven by input embeddings.

    Contract:
        embed(ids) -> (B, L, D): the embeddings the LLM itself would use for ``ids`` (B, L) long.
        forward(inputs_embeds, attention_mask, logits_to_keep) -> logits
            inputs_embeds:  (B, L, D) float
            attention_mask: (B, L) long, 1 on real positions, 0 on padding
            logits_to_keep: None for all positions, else a (K,) long tensor of positions
            logits:         (B, L or K, V) float
        generate(inputs_embeds, attention_mask, **kwargs): transformers' ``generate``.
        hidden_size() -> D; vocab_size() -> V; eos_token_id, pad_token_id: ints.
    """

    eos_token_id: int
    pad_token_id: int

    @abstractmethod
    def hidden_size(self) -> int:
        raise NotImplementedError

    @abstractmethod
    def vocab_size(self) -> int:
        raise NotImplementedError

    @abstractmethod
    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @abstractmethod
    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        logits_to_keep: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        raise NotImplementedError

    @abstractmethod
    def generate(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, **kwargs):
        raise NotImplementedError
