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
