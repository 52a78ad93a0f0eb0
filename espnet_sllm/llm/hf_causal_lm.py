"""Any Hugging Face ``AutoModelForCausalLM`` (Gemma-2, Phi-3, Llama/Yi, Qwen2, ...) as the LLM."""
import json
import logging
import os
from typing import Optional, Sequence

import torch

from espnet_sllm.llm.abs_llm import AbsLLM
from espnet_sllm.lora import apply_lora, merge_lora
from espnet_sllm.llm.tokenizer import ADDED_TOKENS_FILE, load_tokenizer, read_added_tokens
from espnet_sllm.torch_utils import mark_pretrained, parse_dtype


class HFCausalLM(AbsLLM):
    """Loads a causal LM and its tokenizer from a local directory or an HF hub id.

    Args:
        model_name_or_path: directory written by ``save_pretrained`` or a hub id
            (e.g. ``google/gemma-2-2b``, ``microsoft/Phi-3-mini-4k-instruct``, ``01-ai/Yi-6B``,
            ``Qwen/Qwen2-1.5B``).
        pretrained: False builds the architecture of ``config.json`` with random weights
            (training from scratch; the directory then needs only config + tokenizer).
        tokenizer_name_or_path: defaults to ``model_name_or_path``.
        dtype: float32 | bfloat16 | float16 (or fp32 | bf16 | fp16): the dtype the LLM is loaded
            in and in which its FROZEN weights stay for training, saving and decoding
            (``ESPnetSLLMModel.to`` does not cast them to ESPnet's ``--train_dtype``); trained
            weights (full fine-tuning, LoRA adapters, added-token rows) are kept in
            ``--train_dtype`` (fp32) and run in bf16/fp16 under ``--use_amp true``.
        attn_implementation: ``eager`` | ``sdpa`` | ``flash_attention_2`` | None (transformers'
            default). Gemma-2 recommends ``eager`` for training (attention soft-capping).
        gradient_checkpointing: recompute activations in backward to save memory.
        freeze: no LLM weight is trained (LoRA adapters and new special-token rows still are).
        lora_r: LoRA rank; 0 disables LoRA. LoRA implies a frozen base (peft's behaviour).
        lora_alpha, lora_dropout, lora_target_modules: peft ``LoraConfig`` arguments.
        special_tokens: tokens added to the tokenizer (e.g. ``<|startofaudio|>``); their
            embedding rows are trainable even when the LLM is frozen, whether they land in spare
            rows of the matrix (Qwen2, Phi-3) or in rows added by a resize; they start at the
            mean of the trained rows. When input and output embeddings are tied (Gemma-2, small
            Qwen2) a learned row is also that token's output row, in memory, after
            `merge_lora` and in a saved checkpoint alike (same logits for every token id).
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
        tokenizer, n_tok_base = load_tokenizer(
            self.tokenizer_name_or_path, special_tokens, trust_remote_code, return_base_size=True
        )
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

        # The added special tokens have the ids [new_start, new_start + n_new). Real checkpoints
        # may keep spare rows beyond the tokenizer (Qwen2: 151,936 rows for 151,646 entries;
        # Phi-3: 32,064 for 32,011): the added tokens then land in spare rows and no resize
        # happens, so the range comes from the tokenizer, never from the matrix size.
        self.new_start = n_tok_base
        self.n_new = len(tokenizer) - n_tok_base
        # Added by an earlier round (a merged checkpoint of a chain, see load_tokenizer): their
        # rows hold what that round learned and are not re-initialised.
        earlier = set(read_added_tokens(self.tokenizer_name_or_path))
        self.n_earlier = sum(
            t in earlier for t in tokenizer.convert_ids_to_tokens(list(range(
                self.new_start, self.new_start + self.n_new)))
        )
        self.added_tokens = tokenizer.convert_ids_to_tokens(
            list(range(self.new_start, self.new_start + self.n_new))
        )
        if len(tokenizer) > model.get_input_embeddings().weight.size(0):
            model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
        self._vocab_size = model.get_input_embeddings().weight.size(0)
        # Tied input/output embeddings (Gemma-2, Qwen2 0.5B/1.5B): one matrix serves both, so
        # the learned rows of added tokens are their output rows too (module docstring).
        out_emb = model.get_output_embeddings()
        self.tied = out_emb is not None and out_emb.weight is model.get_input_embeddings().weight
        if self.n_new > 0 and pretrained:
            self._init_added_rows(model)
        if pretrained:
            # These tensors are what rebuilding from model_name_or_path gives back (LoRA
            # adapters and the new-token parameter, created below, are not).
            mark_pretrained(model)
        self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id
        text_config = model.config.get_text_config()
        # Output-side transforms of the supported families, applied by `logits` as the HF
        # forward does (Gemma-2's soft-capping; Granite's divisor and Cohere's multiplier).
        self.final_logit_softcapping = getattr(text_config, "final_logit_softcapping", None)
        self.logits_divisor = getattr(text_config, "logits_scaling", None)
        self.logit_scale = getattr(text_config, "logit_scale", None)

        if gradient_checkpointing:
            # Non-reentrant checkpointing lets gradients reach inputs_embeds (the projector)
            # even when every LLM weight is frozen.
            # transformers 5 renamed gradient_checkpointing_enable (deprecated alias until v6).
            enable = getattr(model, "activation_checkpointing_enable", None)
            if enable is None:
                enable = model.gradient_checkpointing_enable
            enable({"use_reentrant": False})
            model.config.use_cache = False

        frozen = freeze or lora_r > 0
        if frozen:
            for p in model.parameters():
                p.requires_grad_(False)
        if lora_r > 0:
            model = apply_lora(model, lora_r, lora_alpha, lora_dropout, lora_target_modules,
                               task_type="CAUSAL_LM", what="llm")
        self.model = model
        #: dtype of the frozen weights (ESPnetSLLMModel.to keeps them in it; module docstring)
        self.frozen_dtype = torch_dtype
        #: its weights come from a checkpoint that rebuilding from the config reloads, so a
        #: chain's cumulative checkpoint leaves out the frozen ones that did not change
        #: (espnet_sllm.chain)
        self.loads_pretrained = pretrained
        # A frozen embedding matrix cannot train some rows only without the optimizer still
        # touching (weight-decaying) the others, so new tokens get their own parameter (fp32:
        # it is trained).
        if frozen and self.n_new > 0:
            rows = self._base_embedding().weight[self.new_rows()].detach().clone().float()
            self.new_token_embeddings = torch.nn.Parameter(rows)
        else:
            self.new_token_embeddings = None

    def new_rows(self) -> slice:
        """Rows of the embedding matrix that belong to the added special tokens."""
        return slice(self.new_start, self.new_start + self.n_new)

    @torch.no_grad()
    def _init_added_rows(self, model) -> None:
        """Added tokens start at the mean of the trained rows, in spare rows as after a resize
        (transformers' ``mean_resizing``), on the input side and, when untied, the output side."""
        mats = [model.get_input_embeddings().weight]
        if not self.tied and model.get_output_embeddings() is not None:
            mats.append(model.get_output_embeddings().weight)
        fresh = slice(self.new_start + self.n_earlier, self.new_start + self.n_new)
        for w in mats:
            w[fresh] = w[: self.new_start].float().mean(0).to(w.dtype)

    def _causal_lm(self):
        """The transformers ``*ForCausalLM`` (inside the peft wrapper when LoRA is on)."""
        get_base = getattr(self.model, "get_base_model", None)
        return get_base() if get_base is not None else self.model

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
        is_new = ((ids >= self.new_start) & (ids < self.new_start + self.n_new)).unsqueeze(-1)
        index = (ids - self.new_start).clamp(min=0, max=self.n_new - 1)
        extra = self.new_token_embeddings[index].to(base.dtype)
        # Gemma-2 multiplies embeddings by sqrt(D) inside its embedding module (transformers 5's
        # *ScaledWordEmbedding classes keep the factor in ``embed_scale``); the added rows must
        # be scaled the same way to live in the space the base rows do.
        scale = getattr(emb, "embed_scale", None)
        if scale is not None:
            extra = extra * (scale.to(base.dtype) if torch.is_tensor(scale) else scale)
        return torch.where(is_new, extra, base)

    def hidden_states(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L, D) embeddings, (B, L) mask -> (B, L, D) last hidden states (after the final norm),
        in the LLM's dtype. With `logits` this is the LLM's forward, split so that a loss can
        compute logits only at the positions that have a target."""
        dtype = self._base_embedding().weight.dtype
        out = self._causal_lm().get_decoder()(
            inputs_embeds=inputs_embeds.to(dtype), attention_mask=attention_mask, use_cache=False
        )
        return out.last_hidden_state

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., D) hidden states -> (..., V) logits, exactly as the HF model's head computes them
        (LLM dtype), with the learned rows of added tokens as their output rows when tied."""
        head = self._causal_lm().get_output_embeddings()
        logits = head(hidden.to(head.weight.dtype))
        if self.tied and self.new_token_embeddings is not None:
            rows = self.new_rows()
            bias = head.bias[rows] if getattr(head, "bias", None) is not None else None
            learned = torch.nn.functional.linear(
                hidden.to(head.weight.dtype), self.new_token_embeddings.to(head.weight.dtype), bias
            )
            logits = torch.cat([logits[..., : rows.start], learned, logits[..., rows.stop :]], -1)
        if self.logit_scale is not None:
            logits = logits * self.logit_scale
        if self.logits_divisor is not None:
            logits = logits / self.logits_divisor
        if self.final_logit_softcapping is not None:
            cap = self.final_logit_softcapping
            logits = torch.tanh(logits / cap) * cap
        return logits

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        logits_to_keep: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        hidden = self.hidden_states(inputs_embeds, attention_mask)
        if logits_to_keep is not None:
            hidden = hidden[:, logits_to_keep]
        return self.logits(hidden)

    @torch.no_grad()
    def _write_new_rows(self) -> None:
        """Copy the learned rows of added tokens into the embedding matrix (and so, when tied,
        into the output head): HF's own forward (generate, a saved checkpoint) then computes what
        `embed` + `logits` compute. Those rows are never read on the input side otherwise."""
        if self.new_token_embeddings is not None:
            w = self._base_embedding().weight
            w[self.new_rows()] = self.new_token_embeddings.to(w.dtype)

    #: more ids that end a hypothesis (a swapped-in chat model's end of turn, set by
    #: `espnet_sllm.decoding.inference.load_model`); the tokenizer's EOS always does
    extra_eos_ids: Sequence[int] = ()

    def generate(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                 prefill_once: bool = True, **kwargs):
        """transformers' ``generate`` on left-padded ``inputs_embeds`` (B, P, D) and
        ``attention_mask`` (B, P); ``kwargs`` are generate's.

        ``prefill_once`` (beam search only): transformers repeats every prompt ``num_beams``
        times before its prefill, although the beams of an utterance share the prompt; here
        the prompt but its last position runs once per utterance and its KV cache is repeated
        ``num_beams`` times, so generate's prefill computes one position per beam (the beam
        search itself is transformers'; the same hypotheses, tested; `make bench` measures the
        gain)."""
        self._write_new_rows()
        dtype = self._base_embedding().weight.dtype
        inputs_embeds = inputs_embeds.to(dtype)
        num_beams = kwargs.get("num_beams") or 1
        if prefill_once and num_beams > 1 and inputs_embeds.size(1) > 1:
            kwargs["cache"] = self._prefill_cache(inputs_embeds, attention_mask, num_beams)
        eos = [self.eos_token_id, *self.extra_eos_ids] if self.extra_eos_ids else self.eos_token_id
        return self.model.generate(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            eos_token_id=eos,
            pad_token_id=self.pad_token_id,
            **kwargs,
        )

    @torch.no_grad()
    def _prefill_cache(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                       num_beams: int):
        """The KV cache of ``inputs_embeds[:, :-1]`` (B rows), repeated to B * num_beams rows in
        generate's beam order (each row ``num_beams`` times in a row). Positions as generate
        makes them for left padding (cumsum of the mask - 1), so the cache is the one of
        generate's own prefill."""
        positions = attention_mask.long().cumsum(-1) - 1
        positions = positions.masked_fill(attention_mask == 0, 1)
        out = self.model(inputs_embeds=inputs_embeds[:, :-1],
                         attention_mask=attention_mask[:, :-1],
                         position_ids=positions[:, :-1], use_cache=True, logits_to_keep=1)
        cache = out.past_key_values
        cache.batch_repeat_interleave(num_beams)
        return cache

    @torch.no_grad()
    def merge_lora(self) -> None:
        """Fold LoRA adapters and the learned special-token rows into the base weights.

        Afterwards the module is a plain HF model (as after loading the merged checkpoint) and
        gives the same logits for every token id; Iterative LoRA Training merges after every
        round before adding the next adapters.
        """
        self._write_new_rows()
        self.new_token_embeddings = None
        self.model = merge_lora(self.model)

    def save_pretrained(self, out_dir: str) -> None:
        """Write a merged HF checkpoint + tokenizer that ``model_name_or_path`` can point at."""
        import copy

        merged = copy.deepcopy(self)
        merged.merge_lora()
        os.makedirs(out_dir, exist_ok=True)
        merged.model.save_pretrained(out_dir)
        load_tokenizer(self.tokenizer_name_or_path, self.special_tokens).save_pretrained(out_dir)
        # The next round loading this directory keeps training these rows (load_tokenizer).
        with open(os.path.join(out_dir, ADDED_TOKENS_FILE), "w", encoding="utf-8") as f:
            json.dump(self.added_tokens, f, ensure_ascii=False)
        logging.info(f"wrote the merged LLM to {out_dir}")
