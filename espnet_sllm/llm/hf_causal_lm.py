"""Any Hugging Face ``AutoModelForCausalLM`` (Gemma-2, Phi-3, Llama/Yi, Qwen2, ...) as the LLM."""
import logging
import os
from typing import Optional, Sequence

import torch

from espnet_sllm.llm.abs_llm import AbsLLM
from espnet_sllm.llm.tokenizer import load_tokenizer
from espnet_sllm.torch_utils import parse_dtype


class HFCausalLM(AbsLLM):
    """Loads a causal LM and its tokenizer from a local directory or an HF hub id.

    Args:
        model_name_or_path: directory written by ``save_pretrained`` or a hub id
            (e.g. ``google/gemma-2-2b``, ``microsoft/Phi-3-mini-4k-instruct``, ``01-ai/Yi-6B``,
            ``Qwen/Qwen2-1.5B``).
        pretrained: False builds the architecture of ``config.json`` with random weights
            (training from scratch; the directory then needs only config + tokenizer).
        tokenizer_name_or_path: defaults to ``model_name_or_path``.
        dtype: weights' dtype: float32 | bfloat16 | float16 (or fp32 | bf16 | fp16).
        attn_implementation: ``eager`` | ``sdpa`` | ``flash_attention_2`` | None (transformers'
            default). Gemma-2 recommends ``eager`` for training (attention soft-capping).
        gradient_checkpointing: recompute activations in backward to save memory.
        freeze: no LLM weight is trained (LoRA adapters and new special-token rows still are).
        lora_r: LoRA rank; 0 disables LoRA. LoRA implies a frozen base (peft's behaviour).
        lora_alpha, lora_dropout, lora_target_modules: peft ``LoraConfig`` arguments.
        special_tokens: tokens added to the tokenizer (e.g. ``<|startofaudio|>``); their
            embedding rows are trainable even when the LLM is frozen.
        trust_remote_code: passed to transformers for checkpoints with custom code.
    """

    def __init__(
        self,
        model_name_or_path: str,
        pretrained: bool = True,
        tokenizer_name_or_path: Optional[str] = None,
        dtype: str = "float32",
        attn_implementation: Optional[str] = None,
        gradient_checkpointing: bool = False,
        freeze: bool = False,
        lora_r: int = 0,
        lora_alpha: int = 32,
        lora_dropout: float = 0.05,
        lora_target_modules: Sequence[str] = ("q_proj", "k_proj", "v_proj"),
        special_tokens: Sequence[str] = (),
        trust_remote_code: bool = False,
    ):
        super().__init__()
        from transformers import AutoConfig, AutoModelForCausalLM

        if lora_r < 0:
            raise ValueError(f"lora_r must be >= 0, got {lora_r}")
        torch_dtype = parse_dtype(dtype)
        self.tokenizer_name_or_path = tokenizer_name_or_path or model_name_or_path
        self.special_tokens = list(special_tokens)
        tokenizer = load_tokenizer(self.tokenizer_name_or_path, special_tokens, trust_remote_code)
        kwargs = dict(dtype=torch_dtype, trust_remote_code=trust_remote_code)
        if attn_implementation is not None:
            kwargs["attn_implementation"] = attn_implementation
        try:
            if pretrained:
                model = AutoModelForCausalLM.from_pretrained(model_name_or_path, **kwargs)
            else:
                config = AutoConfig.from_pretrained(
                    model_name_or_path, trust_remote_code=trust_remote_code
                )
                model = AutoModelForCausalLM.from_config(config, **kwargs)
        except OSError as e:
            raise OSError(
                f"cannot load the LLM from {model_name_or_path!r}: give a local HF model "
                f"directory or a hub id reachable from this machine ({e})"
            ) from e

        # Rows >= n_base are added special tokens.
        self.n_base = model.get_input_embeddings().weight.size(0)
        if len(tokenizer) > self.n_base:
            model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
        self.n_new = max(0, len(tokenizer) - self.n_base)
        self._vocab_size = model.get_input_embeddings().weight.size(0)
        self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id

        if gradient_checkpointing:
            # Non-reentrant checkpointing lets gradients reach inputs_embeds (the projector)
            # even when every LLM weight is frozen.
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
            model.config.use_cache = False

        frozen = freeze or lora_r > 0
        if frozen:
            for p in model.parameters():
                p.requires_grad_(False)
        if lora_r > 0:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(
                model,
                LoraConfig(
                    r=lora_r,
                    lora_alpha=lora_alpha,
                    lora_dropout=lora_dropout,
                    target_modules=list(lora_target_modules),
                    task_type="CAUSAL_LM",
                ),
            )
        self.model = model
        # A frozen embedding matrix cannot train some rows only without the optimizer still
        # touching (weight-decaying) the others, so new tokens get their own parameter.
        if frozen and self.n_new > 0:
            rows = self._base_embedding().weight[self.n_base:].detach().clone().float()
            self.new_token_embeddings = torch.nn.Parameter(rows)
        else:
            self.new_token_embeddings = None

    def _base_embedding(self) -> torch.nn.Embedding:
        return self.model.get_input_embeddings()

    def hidden_size(self) -> int:
        return self._base_embedding().weight.size(1)

    def vocab_size(self) -> int:
        return self._vocab_size

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) long -> (B, L, D), exactly what the LLM would embed for these ids."""
        if ids.numel() and (ids.min() < 0 or ids.max() >= self._vocab_size):
            raise ValueError(
                f"token id out of range [0, {self._vocab_size}): min {int(ids.min())}, "
                f"max {int(ids.max())}"
            )
        emb = self._base_embedding()
        base = emb(ids)
        if self.new_token_embeddings is None:
            return base
        is_new = (ids >= self.n_base).unsqueeze(-1)
        extra = self.new_token_embeddings[(ids - self.n_base).clamp(min=0)].to(base.dtype)
        # Gemma-2 multiplies embeddings by sqrt(D) inside its embedding module (transformers 5's
        # *ScaledWordEmbedding classes keep the factor in ``embed_scale``); the added rows must
        # be scaled the same way to live in the space the base rows do.
        scale = getattr(emb, "embed_scale", None)
        if scale is not None:
            extra = extra * (scale.to(base.dtype) if torch.is_tensor(scale) else scale)
        return torch.where(is_new, extra, base)

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        logits_to_keep: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        dtype = self._base_embedding().weight.dtype
        kwargs = {} if logits_to_keep is None else {"logits_to_keep": logits_to_keep}
        out = self.model(
            inputs_embeds=inputs_embeds.to(dtype),
            attention_mask=attention_mask,
            use_cache=False,
            **kwargs,
        )
        return out.logits

    def generate(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, **kwargs):
        dtype = self._base_embedding().weight.dtype
        return self.model.generate(
            inputs_embeds=inputs_embeds.to(dtype),
            attention_mask=attention_mask,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
            **kwargs,
        )

    @torch.no_grad()
    def merge_lora(self) -> None:
        """Fold LoRA adapters and the learned special-token rows into the base weights.

        Afterwards the module is a plain HF model (as after loading the merged checkpoint);
        Iterative LoRA Training merges after every round before adding the next adapters.
        """
        from peft import PeftModel

        if self.new_token_embeddings is not None:
            w = self._base_embedding().weight
            w[self.n_base:] = self.new_token_embeddings.to(w.dtype)
            self.new_token_embeddings = None
        if isinstance(self.model, PeftModel):
            self.model = self.model.merge_and_unload()

    def save_pretrained(self, out_dir: str) -> None:
        """Write a merged HF checkpoint + tokenizer that ``model_name_or_path`` can point at."""
        import copy

        merged = copy.deepcopy(self)
        merged.merge_lora()
        os.makedirs(out_dir, exist_ok=True)
        merged.model.save_pretrained(out_dir)
        load_tokenizer(self.tokenizer_name_or_path, self.special_tokens).save_pretrained(out_dir)
        logging.info(f"wrote the merged LLM to {out_dir}")
