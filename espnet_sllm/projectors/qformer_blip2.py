"""transformers' BLIP-2 Q-Former (``Blip2QFormerModel``), as SLAM-LLM's EncoderProjectorQFormer."""
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


class QFormerBlip2Projector(AbsProjector):
    """Learned queries read the encoder frames through transformers' ``Blip2QFormerModel``.

    The Q-Former of the KeSpeech system (Xu et al.), built as SLAM-LLM's
    ``EncoderProjectorQFormer``: ``num_queries`` learned queries, initialised ~N(0, 1), go
    through ``Blip2QFormerModel`` (input LayerNorm on the queries, then ``num_layers`` BERT
    layers; the keys/values of the cross-attention are the raw encoder frames, width
    ``input_size``), then Linear(hidden -> output_size) and LayerNorm(output_size).
    The paper's configuration is the default: 64 queries, 8 layers, hidden 768, 12 heads,
    FFN 3072, cross-attention every 2nd layer, dropout 0.1 (``Blip2QFormerConfig``'s own
    defaults, with ``encoder_hidden_size = input_size``).

    Differences from ``qformer`` (``QFormerProjector``, the home-made one): this one is post-LN
    (BERT: LayerNorm after each residual add, plus a LayerNorm on the input queries) where
    ``qformer`` is pre-LN; it has cross-attention only in layers 0, f, 2f, ...
    (f = ``cross_attention_frequency``) where ``qformer`` has it in every layer; it attends to
    the raw encoder frames (keys/values project from ``input_size``) where ``qformer`` first
    maps them through Linear + LayerNorm; its last LayerNorm comes after the output Linear, over
    the LLM-width embeddings, where ``qformer`` normalises before it; and its queries start with
    std 1 instead of 0.02. Parameter names follow transformers (``qformer.encoder.layer.N...``)
    and the top-level names are SLAM-LLM's (``query``, ``qformer.*``, ``linear.*``, ``norm.*``).

    Shapes:
        x: (B, T, input_size), x_lens: (B,)
        y: (B, num_queries, output_size), y_lens: (B,)

    Length rule: ``y_lens = num_queries`` for every utterance, whatever its length.

    Padding: the padding frames are zeroed (so inf/NaN there cannot reach the output through
    0 * inf) and masked out of the cross-attention by ``encoder_attention_mask``, so y[b]
    depends only on x[b, :x_lens[b]].

    Dtype: ``Blip2QFormerModel`` runs in the dtype of its own weights and casts the queries and
    the encoder frames to it; the output is cast to the dtype of ``linear``.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        num_queries: int = 64,
        hidden: int = 768,
        num_layers: int = 8,
        num_heads: int = 12,
        ffn: int = 3072,
        cross_attention_frequency: int = 2,
        dropout: float = 0.1,
    ):
        super().__init__()
        name = type(self).__name__
        check_positive(
            name,
            input_size=input_size,
            output_size=output_size,
            num_queries=num_queries,
            hidden=hidden,
            num_layers=num_layers,
            num_heads=num_heads,
            ffn=ffn,
            cross_attention_frequency=cross_attention_frequency,
        )
        check_heads(name, hidden, num_heads)
        check_dropout(name, dropout)
        # Imported here: building transformers' BLIP-2 module tree costs time that users of the
        # other projectors need not pay.
        from transformers import Blip2QFormerConfig, Blip2QFormerModel

        self.input_size = input_size
        self._output_size = output_size
        self.num_queries = num_queries
        config = Blip2QFormerConfig(
            hidden_size=hidden,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            intermediate_size=ffn,
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout,
            cross_attention_frequency=cross_attention_frequency,
            encoder_hidden_size=input_size,
        )
        # (1, Q, hidden) as SLAM-LLM, so that its checkpoints load unchanged.
        self.query = torch.nn.Parameter(torch.randn(1, num_queries, hidden))
        self.qformer = Blip2QFormerModel(config)
        self.linear = torch.nn.Linear(hidden, output_size)
        self.norm = torch.nn.LayerNorm(output_size)

    def output_size(self) -> int:
        return self._output_size

    def forward(
        self, x: torch.Tensor, x_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        check_input(x, x_lens, self.input_size, type(self).__name__)
        # Zeroed first: huge or non-finite padding would turn into NaN through the attention
        # weights (0 * inf), even though those keys are masked.
        memory = zero_padding(x, x_lens)
        mask = valid_mask(x_lens, x.size(1)).long()
        queries = self.query.expand(x.size(0), -1, -1)
        hidden = self.qformer(
            query_embeds=queries,
            encoder_hidden_states=memory,
            encoder_attention_mask=mask,
            return_dict=True,
        ).last_hidden_state
        y = self.norm(self.linear(hidden.to(self.linear.weight.dtype)))
        y_lens = torch.full_like(x_lens, self.num_queries)
        return y, y_lens
