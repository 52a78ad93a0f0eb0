"""peft LoRA on a whole Hugging Face model, shared by ``llm: hf`` and ``model: hf_audio``.

Target modules match by name suffix over the WHOLE model, as peft matches a list: ``q_proj``
hits every ``....q_proj`` (the LLM's attention; in Whisper or Qwen2-Audio also the audio
encoder's and the decoder's cross-attention), ``fc1`` only exists in Whisper-style encoder and
decoder layers. `apply_lora` logs, per target name, how many modules it matched (a name that
matches nothing in one family is normal when a target list serves several families, e.g. the
ILT Feed-Back list ``o_proj ... out_proj fc1 fc2`` on Whisper), and raises when the list
matches nothing at all (peft's own message lists no candidates).
"""
import logging
from collections import Counter
from typing import Dict, Optional, Sequence

import torch


def linear_suffixes(model: torch.nn.Module) -> Dict[str, int]:
    """Last name component -> number of ``nn.Linear`` modules with it (the LoRA candidates)."""
    counts: Counter = Counter()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            counts[name.rsplit(".", 1)[-1]] += 1
    return dict(counts)


def apply_lora(
    model: torch.nn.Module,
    r: int,
    alpha: float,
    dropout: float,
    target_modules: Sequence[str],
    task_type: Optional[str] = None,
    what: str = "model",
) -> torch.nn.Module:
    """Freeze ``model`` and wrap it with peft LoRA adapters (``r`` > 0) on ``target_modules``.

    Adapters are created in fp32 whatever the base dtype (peft's ``autocast_adapter_dtype``): a
    bf16 base with bf16 adapters would lose the small updates of lr 1e-5 training. Returns the
    ``PeftModel``. ValueError when ``target_modules`` is empty or matches no module (naming the
    Linear suffixes the model has).
    """
    from peft import LoraConfig, get_peft_model

    if r <= 0:
        raise ValueError(f"{what}: LoRA rank must be > 0, got {r}")
    targets = [str(t) for t in target_modules]
    if not targets:
        raise ValueError(f"{what}: lora_target_modules is empty")
    candidates = linear_suffixes(model)
    matched = {t: sum(1 for name, _ in model.named_modules()
                      if name == t or name.endswith("." + t)) for t in targets}
    for t in targets:
        logging.info(f"{what}: LoRA target {t!r} matches {matched[t]} module(s)")
    if not any(matched.values()):
        raise ValueError(
            f"{what}: lora_target_modules {targets} match no module; the model's Linear layers "
            f"end in {sorted(candidates)}"
        )
    for p in model.parameters():
        p.requires_grad_(False)
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets,
                        task_type=task_type)
    return get_peft_model(model, config, autocast_adapter_dtype=True)


def merge_lora(model: torch.nn.Module) -> torch.nn.Module:
    """Fold peft adapters into the base weights (a plain HF model); other models unchanged."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        return model.merge_and_unload()
    return model
