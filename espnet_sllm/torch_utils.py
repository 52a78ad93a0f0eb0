"""Small torch helpers shared across the package."""
import torch

# Names accepted for a ``dtype`` option (YAML configs, CLI flags).
DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def parse_dtype(name: str) -> torch.dtype:
    """``"bfloat16"`` / ``"bf16"`` / ... -> ``torch.bfloat16``; ValueError on an unknown name."""
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; valid: {sorted(DTYPES)}")
    return DTYPES[name]


#: attribute set on parameters loaded from a pretrained checkpoint (`mark_pretrained`)
PRETRAINED_ATTR = "_sllm_from_pretrained"


def mark_pretrained(module: torch.nn.Module) -> None:
    """Mark every parameter of ``module`` as loaded from a pretrained checkpoint: rebuilding the
    component from its config gives it back, so a frozen one need not be saved
    (`espnet_sllm.chain.reloadable_keys`). The mark is on the Parameter object, which
    ``Module.to`` and peft's wrapping keep."""
    for p in module.parameters():
        setattr(p, PRETRAINED_ATTR, True)


def enable_checkpointing(model: torch.nn.Module) -> None:
    """Non-reentrant activation checkpointing of a transformers model (its layers recompute in
    backward). transformers 5 renamed ``gradient_checkpointing_enable`` (alias kept until v6)."""
    enable = getattr(model, "activation_checkpointing_enable", None) or \
        model.gradient_checkpointing_enable
    enable({"use_reentrant": False})
