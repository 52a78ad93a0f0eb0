"""Logits processors that make batched generation behave as per-utterance generation."""
from typing import Sequence

import torch


class PerUtteranceLengthLimit:
    """Forces EOS once an utterance has produced its own number of new tokens.

    ``generate`` has one ``max_new_tokens`` per batch; a looping hypothesis of a short
    utterance would otherwise run to the longest utterance's budget, and its output would
    depend on its batch mates.

    Args:
        limits: (B,) new-token budget per utterance.
        num_beams: rows of ``scores`` are ``B * num_beams``, utterance-major.
        eos_token_id: the token that ends a hypothesis.
        prompt_length: tokens of ``input_ids`` that were not generated (an encoder-decoder's
            decoder prompt, e.g. Whisper's ``<|startoftranscript|><|en|>...``); 0 with
            ``inputs_embeds``.
    """

    def __init__(self, limits: Sequence[int], num_beams: int, eos_token_id: int,
                 prompt_length: int = 0):
        self.limits = torch.as_tensor(list(limits), dtype=torch.long)
        self.num_beams = num_beams
        self.eos_token_id = eos_token_id
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        # With inputs_embeds only, input_ids holds just the generated tokens.
        n_generated = input_ids.size(1) - self.prompt_length
        per_row = self.limits.to(scores.device).repeat_interleave(self.num_beams)
        # The budget counts the EOS, like generate's max_new_tokens.
        done = per_row[: scores.size(0)] <= n_generated + 1
        if done.any():
            eos_score = scores[done, self.eos_token_id].clone()
            scores[done] = float("-inf")
            scores[done, self.eos_token_id] = eos_score
        return scores
