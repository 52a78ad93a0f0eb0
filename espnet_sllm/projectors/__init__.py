"""Projectors: speech encoder output (B, T, D_enc) -> LLM input embeddings (B, T', D_llm)."""
from espnet_sllm.projectors.abs_projector import AbsProjector
from espnet_sllm.projectors.conv1d import Conv1dProjector
from espnet_sllm.projectors.linear import LinearProjector
from espnet_sllm.projectors.mlp import MLPProjector
from espnet_sllm.projectors.qformer import QFormerProjector
from espnet_sllm.projectors.qformer_blip2 import QFormerBlip2Projector
from espnet_sllm.projectors.transformer import TransformerProjector

# Names used by the task's ClassChoices (``projector: <name>`` in the YAML configs).
projector_classes = {
    "linear": LinearProjector,
    "mlp": MLPProjector,
    "conv1d": Conv1dProjector,
    "transformer": TransformerProjector,
    "qformer": QFormerProjector,
    "qformer_blip2": QFormerBlip2Projector,
}

__all__ = [
    "AbsProjector",
    "Conv1dProjector",
    "LinearProjector",
    "MLPProjector",
    "QFormerBlip2Projector",
    "QFormerProjector",
    "TransformerProjector",
    "projector_classes",
]
