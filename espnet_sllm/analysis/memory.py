"""Static GPU memory of a ``model: hf_audio`` training config, from its checkpoint's
``config.json`` alone (the architecture built on the meta device: no weights are loaded, seconds
for a 7B model): parameters of the frozen base, trainable LoRA adapters (`espnet_sllm.lora`, the
same peft wrapping training uses) and LID embeddings, and the bytes each needs per GPU:

* frozen base weights in ``model_conf.dtype`` (bf16: 2 bytes per parameter);
* trainable parameters in fp32: weights 4 + gradients 4 + AdamW's two moments 8 = 16 bytes.

Activations (batch, sequence lengths, gradient checkpointing), the CUDA context and allocator
slack come on top and are NOT counted: this is the floor every GPU needs under plain DDP (each
rank holds a full replica). Under DeepSpeed ZeRO-2/3 the 12 bytes of gradients and moments (and
with ZeRO-3 the weights) are divided by the number of GPUs.
"""
import inspect
from typing import Dict, Optional, Sequence

import torch

GIB = 1024 ** 3
BYTES = {torch.float32: 4, torch.bfloat16: 2, torch.float16: 2}


def hf_audio_static_memory(model_name_or_path: str, dtype: str = "bfloat16", lora_r: int = 0,
                           lora_alpha: float = 32, lora_target_modules: Sequence[str] = (),
                           lid_rows: int = 0, freeze: bool = True,
                           trust_remote_code: bool = False) -> Dict[str, float]:
    """Parameter counts and static bytes of the hf_audio model of these ``model_conf`` values
    (``lid_rows``: rows of each LID table, 0 without LID embeddings)."""
    import transformers
    from transformers import AutoConfig

    from espnet_sllm.hf_audio_model import FAMILIES
    from espnet_sllm.lora import apply_lora
    from espnet_sllm.torch_utils import parse_dtype

    config = AutoConfig.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code)
    if config.model_type not in FAMILIES:
        raise ValueError(f"{model_name_or_path}: model_type {config.model_type!r} is not an "
                         f"hf_audio family; valid: {sorted(FAMILIES)}")
    with torch.device("meta"):  # (the adapters too: r 512 on a 7B model is GBs)
        hf = getattr(transformers, FAMILIES[config.model_type])._from_config(config)
        base = sum(p.numel() for p in hf.parameters())
        if lora_r > 0:
            hf = apply_lora(hf, lora_r, lora_alpha, 0.0, lora_target_modules, what="memory")
            trainable = sum(p.numel() for p in hf.parameters() if p.requires_grad)
        else:
            trainable = 0 if freeze else base
    whisper = config.model_type == "whisper"
    enc = config.d_model if whisper else config.audio_config.d_model
    dec = config.d_model if whisper else config.text_config.hidden_size
    lid = lid_rows * (enc + dec)
    frozen = base - (trainable if lora_r == 0 else 0)
    out = {"base_parameters": base, "lora_parameters": trainable if lora_r > 0 else 0,
           "lid_parameters": lid, "trainable_parameters": trainable + lid,
           "frozen_weight_bytes": frozen * BYTES[parse_dtype(dtype)],
           "trainable_bytes": (trainable + lid) * 16}
    out["static_bytes"] = out["frozen_weight_bytes"] + out["trainable_bytes"]
    return out


def from_training_config(conf: Dict, override_path: Optional[str] = None) -> Dict[str, float]:
    """`hf_audio_static_memory` of a training config (its ``model_conf`` and ``languages``)."""
    from espnet_sllm.hf_audio_model import ESPnetHFAudioModel, lid_rows

    if conf.get("model") != "hf_audio":
        raise ValueError(f"model {conf.get('model', 'sllm')!r}: the static memory estimate "
                         f"covers model: hf_audio")
    # the model's own defaults for what the config leaves out (one source of truth)
    mc = {name: p.default for name, p in
          inspect.signature(ESPnetHFAudioModel.__init__).parameters.items()
          if p.default is not inspect.Parameter.empty}
    mc.update(conf.get("model_conf") or {})
    rows = len(lid_rows(conf["languages"])[0]) if mc["lid_embeddings"] else 0
    return hf_audio_static_memory(
        override_path or mc["model_name_or_path"], mc["dtype"], int(mc["lora_r"]),
        float(mc["lora_alpha"]), mc["lora_target_modules"], rows, bool(mc["freeze"]),
        bool(mc["trust_remote_code"]))
