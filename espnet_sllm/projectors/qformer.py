"""BLIP-2 style Q-Former: a fixed number of learned queries read the encoder frames."""
from typing import Tuple

import torch

from espnet_sllm.projectors.abs_projector import AbsProjector
from espnet_sllm.projectors.utils import (
    check_dropout,
    check_heads,
    check_input,
    check_positive,
    valid_mask,
    zero_padding,
)


class QFormerLayer(torch.nn.Module):
    """Pre-LN block: self-attention over queries, cross-attention to frames, FFN.

    Shapes: queries (B, Q, hidden), memory (B, T, hidden), memory_padding_mask (B, T) bool,
    True on padding; returns (B, Q, hidden).
    """

    def __init__(self, hidden: int, num_heads: int, ffn: int, dropout: float):
        super().__init__()
        self.self_norm = torch.nn.LayerNorm(hidden)
        self.self_attn = torch.nn.MultiheadAttention(
            hidden, num_heads, dropout=dropout, batch_first=True
        )
        self.cross_norm = torch.nn.LayerNorm(hidden)
        self.cross_attn = torch.nn.MultiheadAttention(
            hidden, num_heads, dropout=dropout, batch_first=True
        )
        self.ffn_norm = torch.nn.LayerNorm(hidden)
        self.ffn = torch.nn.Sequential(
            torch.nn.Linear(hidden, ffn),
            torch.nn.GELU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(ffn, hidden),
        )
        self.dropout = torch.nn.Dropout(dropout)

    def forward(
        self,
        queries: torch.Tensor,
        memory: torch.Tensor,
        memory_padding_mask: torch.Tensor,
    ) -> torch.Tensor:
        q = self.self_norm(queries)
        queries = queries + self.dropout(self.self_attn(q, q, q, need_weights=False)[0])
        q = self.cross_norm(queries)
        attended = self.cross_attn(
            q,
            memory,
            memory,
            key_padding_mask=memory_padding_mask,
            need_weights=False,
        )[0]
        queries = queries + self.dropout(attended)
        queries = queries + self.dropout(self.ffn(self.ffn_norm(queries)))
        return queries


class QFormerProjector(AbsProjector):
    """Learned queries attend to the encoder frames; one output frame per query.

    The KeSpeech system (Xu et al.) uses 64 queries. Each layer is self-attention among the
    queries, cross-attention from the queries to the (linearly projected, layer-normed) encoder
    frames with a key padding mask, and a GELU FFN, all pre-LN; a final LayerNorm and a Linear
    map to ``output_size``.

    Shapes:
        x: (B, T, input_size), x_lens: (B,)
        y: (B, num_queries, output_size), y_lens: (B,)

    Length rule: ``y_lens = num_queries`` for every utterance, whatever its length.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        num_queries: int = 64,
        hidden: int = 768,
        num_layers: int = 2,
        num_heads: int = 8,
        ffn: int = 3072,
        dropout: float = 0.0,
    ):
        super().__init__()
        name = type(self).__name__
        check_positive(
            name,
            input_size=input_size,
            output_size=output_size,
            hidden=hidden,
            ffn=ffn,
            num_heads=num_heads,
            num_queries=num_queries,
            num_layers=num_layers,
        )
        check_heads(name, hidden, num_heads)
        check_dropout(name, dropout)
        self.input_size = input_size
        self._output_size = output_size
        self.num_queries = num_queries
        # BLIP-2 initialises its queries with std 0.02 (BERT's initializer range).
        self.queries = torch.nn.Parameter(torch.randn(num_queries, hidden) * 0.02)
        self.input_layer = torch.nn.Linear(input_size, hidden)
        self.input_norm = torch.nn.LayerNorm(hidden)
        self.layers = torch.nn.ModuleList(
            QFormerLayer(hidden, num_heads, ffn, dropout) for _ in range(num_layers)
        )
        self.norm = torch.nn.LayerNorm(hidden)
        self.output_layer = torch.nn.Linear(hidden, output_size)

    def output_size(self) -> int:
        return self._output_size

    def forward(
        self, x: torch.Tensor, x_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        check_input(x, x_lens, self.input_size, type(self).__name__)
        # Zeroed first: huge or non-finite padding would turn into NaN through the attention
        # weights (0 * inf), even though those keys are masked.
        memory = self.input_norm(self.input_layer(zero_padding(x, x_lens)))
        padding_mask = ~valid_mask(x_lens, x.size(1))
        queries = self.queries.unsqueeze(0).expand(x.size(0), -1, -1)
        for layer in self.layers:
            queries = layer(queries, memory, padding_mask)
        y = self.output_layer(self.norm(queries))
        y_lens = torch.full_like(x_lens, self.num_queries)
        return y, y_lens
