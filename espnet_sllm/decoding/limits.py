"""Logits processors that make batched generation behave as per-utterance generation."""
import math
from typing import List, Optional, Sequence

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


def utterance_budgets(num_samples: Sequence[int], sample_rate: int, max_new_tokens: int,
                      max_tokens_per_second: Optional[float], min_new_tokens: int,
                      row_max_new_tokens: Optional[Sequence[Optional[int]]] = None) -> List[int]:
    """The new-token budget of each utterance of a batch: ``min(max_new_tokens, 10 +
    ceil(seconds * max_tokens_per_second))``, or ``max_new_tokens`` for a row without audio (0
    samples), or the row's own ``row_max_new_tokens`` entry where it is not None; at least
    ``min_new_tokens + 1``. A bad ``row_max_new_tokens`` (not one int >= 1 or None per row) is
    a ValueError."""
    rows = list(row_max_new_tokens) if row_max_new_tokens is not None else \
        [None] * len(num_samples)
    if len(rows) != len(num_samples) or any(
            r is not None and (isinstance(r, bool) or int(r) != r or r < 1) for r in rows):
        raise ValueError(f"row_max_new_tokens must hold one budget (an int >= 1, or None) "
                         f"per row of the batch ({len(num_samples)}), got {rows}")
    limits = []
    for n, own in zip(num_samples, rows):
        limit = max_new_tokens
        if own is not None:
            limit = int(own)
        elif max_tokens_per_second and n > 0:
            limit = min(limit, 10 + math.ceil(n / sample_rate * max_tokens_per_second))
        limits.append(max(limit, min_new_tokens + 1))
    return limits
