"""Mixins of the model classes (``ESPnetSLLMModel``, ``ESPnetHFAudioModel``, the encoder cache's
``EncoderStack``): frozen weights keep their dtype through ESPnet's cast, and checkpoints leave
out what rebuilding from the config reloads.

Both are mixed into ``torch.nn.Module`` subclasses (``super()`` reaches ``torch.nn.Module``).
"""
from typing import Dict, Mapping

import torch


class KeepFrozenDtype:
    """``to`` that keeps frozen weights in their configured dtype; `cast_all` casts all."""

    def to(self, *args, **kwargs):
        """``torch.nn.Module.to``, except that a dtype cast (ESPnet casts the whole model to
        ``--train_dtype`` after `build_model`) leaves the frozen weights and the buffers of
        components that declare a ``frozen_dtype`` in that dtype: a frozen bf16 Whisper or LLM
        stays bf16 instead of doubling its memory. Use `cast_all` to cast everything."""
        device, dtype, non_blocking, _ = torch._C._nn._parse_to(*args, **kwargs)
        if dtype is None:
            return super().to(*args, **kwargs)
        super().to(device=device, non_blocking=non_blocking)
        keep = set()
        for module in self.modules():
            if getattr(module, "frozen_dtype", None) is not None:
                keep.update(id(p) for p in module.parameters() if not p.requires_grad)
                keep.update(id(b) for b in module.buffers())
        for p in self.parameters():
            if p.is_floating_point() and id(p) not in keep:
                p.data = p.data.to(dtype)
        for module in self.modules():
            for name, b in module.named_buffers(recurse=False):
                if b.is_floating_point() and id(b) not in keep:
                    setattr(module, name, b.to(dtype))
        return self

    def cast_all(self, dtype: torch.dtype) -> torch.nn.Module:
        """Cast every floating weight and buffer to ``dtype`` (``sllm_inference --dtype``)."""
        # torch's own `to`: `to` would keep the frozen weights' dtype.
        return torch.nn.Module.to(self, dtype=dtype)


class TrainableCheckpoint:
    """``state_dict`` / ``load_state_dict`` aware of frozen pretrained weights (see below)."""

    #: Set by SLLMTask from ``--save_strategy required_grad_only`` (ESPnet applies that option
    #: only together with its own ``--use_adapter``, which our peft LoRA does not use): then
    #: `state_dict`, hence every checkpoint ESPnet writes, leaves out the frozen weights that
    #: rebuilding from the config reloads (a frozen Whisper / LLM: `chain.reloadable_keys`),
    #: except those a checkpoint loaded into this model (trained in an earlier chained stage).
    save_trainable_only: bool = False
    #: reloadable keys that came from a loaded checkpoint (kept by `state_dict`)
    _carried_keys: frozenset = frozenset()

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        """``torch.nn.Module.state_dict``, less the frozen pretrained weights with
        ``save_trainable_only`` (see there); `full_state_dict` has everything."""
        out = super().state_dict(*args, destination=destination, prefix=prefix,
                                 keep_vars=keep_vars)
        if self.save_trainable_only:
            from espnet_sllm.chain import reloadable_keys

            for key in reloadable_keys(self) - self._carried_keys:
                out.pop(prefix + key, None)
        return out

    def full_state_dict(self) -> Dict[str, torch.Tensor]:
        """Every weight and buffer, whatever ``save_trainable_only`` says."""
        return super().state_dict()

    def load_state_dict(self, state_dict: Mapping[str, torch.Tensor], strict: bool = True,
                        assign: bool = False):
        """``torch.nn.Module.load_state_dict``; a strict load (ESPnet's ``--init_param`` and
        ``--resume``) that does not fit raises one readable error naming every unexpected key,
        every shape that differs and every missing key (`espnet_sllm.chain.check_fits`); only
        the frozen pretrained weights may be missing, and only with ``save_trainable_only``."""
        from espnet_sllm.chain import check_fits, reloadable_keys

        reloadable = reloadable_keys(self)
        if strict:
            check_fits(state_dict, self, "the checkpoint (--init_param / --resume)",
                       allowed_missing=reloadable if self.save_trainable_only else set())
        self._carried_keys = frozenset(self._carried_keys | (reloadable & set(state_dict)))
        return super().load_state_dict(state_dict, strict=False, assign=assign)
