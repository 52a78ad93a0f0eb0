"""Auxiliary outputs and losses: ``loss = (1-α)·CE + α·CTC + Σ βᵢ·auxᵢ`` (``ESPnetSLLMModel``).

Auxiliary outputs are named tensors, produced per batch by

* the encoder: a component whose ``forward`` returns a ``dict`` as the third element of
  ``(ys, olens, states)`` (ESPnet's encoders return None or streaming states there: no
  auxiliary outputs). It declares what it can produce in an ``aux_output_names`` attribute
  (a tuple of names) so that ``model_conf.aux_weights`` is checked when the model is built;
* an auxiliary head (``model_conf.aux_heads``): a small module of `aux_head_classes` reading
  the encoder (or projector) output, e.g. `LIDHead`.

An output whose name is in `AUX_LOSSES` gets a loss and an accuracy, ``loss_<name>`` and
``acc_<name>`` in ESPnet's stats, weighted by ``model_conf.aux_weights[<name>]`` (β, default 0:
the loss is computed and logged but not trained on). Any other output (e.g. the language
weights w' of a fusion module) is logged as its mean, ``<name>`` in the stats, and trains
nothing. The β are not renormalised: ``(1-α) + α + Σβ`` may exceed 1.

Losses (`AUX_LOSSES`):

* ``lid``: language identification. Output: logits (B, K) over the task's ``languages`` (K of
  them); target: ``lang_id`` (B,) (the preprocessor's index of the utterance's ``lang`` in
  ``languages``). loss = mean cross-entropy over the batch, acc = fraction of argmax == lang_id.

YAML (an LID head on the encoder output; ``languages`` is a top-level task option)::

    languages: [en, de, fr]
    model_conf:
        ctc_weight: 0.1
        aux_heads:
            lid: {input: encoder}
        aux_weights:
            lid: 0.05
"""
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F


def lid_loss(
    logits: torch.Tensor, lang_id: Optional[torch.Tensor]
) -> Tuple[torch.Tensor, torch.Tensor]:
    """logits (B, K), lang_id (B,) long -> (mean CE, accuracy), both scalars (fp32)."""
    if lang_id is None:
        raise ValueError(
            "the auxiliary loss 'lid' needs lang_id: set the task option `languages` and give "
            "the utterances' languages (utt2lang as data name 'lang')"
        )
    if logits.dim() != 2 or logits.size(0) != lang_id.size(0):
        raise ValueError(
            f"'lid' logits must be (B, K) with B = {lang_id.size(0)}, got {tuple(logits.shape)}"
        )
    K = logits.size(1)
    if int(lang_id.min()) < 0 or int(lang_id.max()) >= K:
        raise ValueError(f"lang_id {lang_id.tolist()} out of range for {K} languages")
    logits = logits.float()
    loss = F.cross_entropy(logits, lang_id)
    acc = (logits.detach().argmax(-1) == lang_id).float().mean()
    return loss, acc


#: name -> fn(output, lang_id) -> (loss, acc): the auxiliary losses `aux_weights` may name.
AUX_LOSSES: Dict[str, Callable] = {"lid": lid_loss}

#: Stats keys an auxiliary output may not take.
RESERVED_NAMES = ("loss", "acc", "ce", "ctc")


class AbsAuxHead(torch.nn.Module):
    """An auxiliary head: ``forward(x (B, T, D), x_lens (B,)) -> Dict[name, tensor]``.

    Built by the model from ``model_conf.aux_heads: {<kind>: {<kwargs>}}`` with
    ``input_size`` (D of its input) and ``languages`` (the task's list, or None) added;
    ``input`` (``encoder`` or ``projector``, a kwarg every head takes) says what it reads.
    ``output_names`` lists the names of what it returns.
    """

    output_names: Tuple[str, ...] = ()

    def __init__(self, input: str = "encoder"):
        super().__init__()
        if input not in ("encoder", "projector"):
            raise ValueError(f"aux head input must be 'encoder' or 'projector', got {input!r}")
        self.input = input


def masked_mean(x: torch.Tensor, x_lens: torch.Tensor) -> torch.Tensor:
    """Mean over the valid frames: x (B, T, D), x_lens (B,) -> (B, D)."""
    T = x.size(1)
    valid = torch.arange(T, device=x.device)[None, :] < x_lens.to(x.device)[:, None]  # (B, T)
    valid = valid.to(x.dtype).unsqueeze(-1)
    return (x * valid).sum(1) / valid.sum(1).clamp(min=1)


class LIDHead(AbsAuxHead):
    """Language ID from any encoder: mean pooling over valid frames -> Linear -> logits.

    x (B, T, D) encoder (or projector) output, x_lens (B,) -> ``{"lid": logits (B, K)}`` with
    K = len(languages); fp32 (the input is cast, so a frozen bf16 encoder feeds it).
    The model's ``lid`` loss is CE of these logits against ``lang_id``.

    Args:
        input_size: D (set by the model).
        languages: the task's ``languages`` (set by the model; required).
        input: ``encoder`` or ``projector``.
        dropout: on the pooled vector.
    """

    output_names = ("lid",)

    def __init__(
        self,
        input_size: int,
        languages: Optional[Sequence[str]],
        input: str = "encoder",
        dropout: float = 0.0,
    ):
        super().__init__(input)
        if not languages:
            raise ValueError(
                "aux head 'lid' needs the task option `languages: [...]` (the label set)"
            )
        self.dropout = torch.nn.Dropout(dropout)
        self.linear = torch.nn.Linear(input_size, len(languages))

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor) -> Dict[str, torch.Tensor]:
        pooled = masked_mean(x.to(self.linear.weight.dtype), x_lens)  # (B, D)
        return {"lid": self.linear(self.dropout(pooled))}  # (B, K)


#: kind -> class: the heads ``model_conf.aux_heads`` may name.
aux_head_classes: Dict[str, type] = {"lid": LIDHead}
