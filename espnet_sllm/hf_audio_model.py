"""ESPnetHFAudioModel (``model: hf_audio``): a whole Hugging Face audio-text model, LoRA anywhere.

``ESPnetSLLMModel`` assembles encoder -> projector -> decoder-only LLM from our registry and puts
LoRA inside the LLM only. Iterative LoRA Training (ILT, egs2/mlc_slm) fine-tunes released
speech models as a whole: Whisper (an encoder-decoder) and Qwen2-Audio (audio tower + projector
+ Qwen2), with LoRA in the audio encoder, the decoder's self- and cross-attention and the MLPs
(``out_proj``, ``fc1``, ``fc2`` exist only there). This class loads such a checkpoint as it is
released (``config.model_type`` picks the family) and trains it on the same data pipeline:
the preprocessor's ``prefix | {speech} | suffix | target + EOS`` split, ``sllm_inference`` and
scoring are shared with ``model: sllm``.

Families and what the prompt means:

``whisper`` (``WhisperForConditionalGeneration``, e.g. ``openai/whisper-large-v3``)
    The waveform goes to the encoder (log-mel of the 30-s window, as Whisper was trained); the
    text after ``{speech}`` is the DECODER prompt, e.g.
    ``{speech}<|startoftranscript|><|en|><|transcribe|><|notimestamps|>``; nothing may precede
    ``{speech}``. Decoder input = prompt + target, loss on target + ``<|endoftext|>``.
``qwen2_audio`` (``Qwen2AudioForConditionalGeneration``, e.g. ``Qwen/Qwen2-Audio-7B``)
    Audio tower (masked to the real frames, as the HF forward masks them) + projector output is
    spliced between prefix and suffix, e.g. ``<|audio_bos|>{speech}<|audio_eos|>Detect the
    language and recognize the speech: <|en|>`` (`splice_embeddings`, as ``model: sllm``); the
    result equals the HF forward on the processor-expanded ``<|AUDIO|>`` ids.

Language-ID embeddings (``lid_embeddings: true``, needs the task option ``languages`` and
``utt2lang``): one vector per language added to every encoder output frame (Whisper encoder /
Qwen2-Audio audio tower, before the projector) and one added to the decoder's final hidden
state before ``lm_head``. A label ``<lang>-<accent>`` (MLC-SLM's ``English-American``) shares
the row of ``<lang>``: 11 rows for MLC-SLM's 15 labels. Zero-initialised (a no-op until
trained), fp32, trained in every round, never touched by a LoRA merge; `save_pretrained` writes
them beside the merged weights (``lid_embeddings.safetensors``) and a model loading that
directory starts from them.

Args (``model_conf``; YAML keys = these names):
    model_name_or_path: a local directory or hub id of either family.
    dtype: float32 | bfloat16 | float16: the frozen base weights' dtype (kept through ESPnet's
        ``--train_dtype`` cast); LoRA adapters and LID embeddings are fp32.
    attn_implementation: eager | sdpa | flash_attention_2 | None (transformers' default).
    gradient_checkpointing: recompute the transformer layers in backward.
    lora_r: LoRA rank (0: no LoRA); lora_alpha, lora_dropout, lora_target_modules: peft's, on
        the whole model by name suffix (`espnet_sllm.lora.apply_lora`).
    freeze: without LoRA, train nothing of the base model (LID embeddings still train);
        with LoRA the base is always frozen.
    lid_embeddings: add the language embeddings above.
    freeze_lid: keep the LID embeddings as loaded (from ``model_name_or_path``'s LID file),
        untrained: a merged model decoded as it is (an earlier round's merged model voting on
        pseudo labels, the packed final model), with nothing left to train.
    languages: the task option ``languages`` (SLLMTask passes it).
    sample_rate: of the waveform (16 kHz for both families).
    logits_chunk: target positions whose fp32 logits exist at a time (`chunked_cross_entropy`).
    trust_remote_code: passed to transformers.
"""
import json
import logging
import os
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from espnet_sllm.encoders.whisper import whisper_log_mel
from espnet_sllm.lora import apply_lora, merge_lora
from espnet_sllm.model import IGNORE_ID, chunked_cross_entropy, splice_embeddings
from espnet_sllm.model_mixins import KeepFrozenDtype, TrainableCheckpoint
from espnet_sllm.torch_utils import enable_checkpointing, mark_pretrained, parse_dtype

#: config.model_type -> transformers class name
FAMILIES = {"whisper": "WhisperForConditionalGeneration",
            "qwen2_audio": "Qwen2AudioForConditionalGeneration"}
#: the file of a merged directory holding the LID embeddings (safetensors, metadata: languages)
LID_FILE = "lid_embeddings.safetensors"


def checkpoint_problem(name_or_path: Optional[str]) -> Optional[str]:
    """Why ``name_or_path`` cannot be a ``model: hf_audio`` checkpoint (None: its config and
    tokenizer load and its model_type is supported); weights are not read (stage 4)."""
    from transformers import AutoConfig

    from espnet_sllm.llm.tokenizer import load_tokenizer

    from espnet_sllm.config_files import missing_local

    if not name_or_path:
        return "is missing"
    if missing_local(name_or_path):
        return f"{name_or_path}: no such directory"
    try:
        config = AutoConfig.from_pretrained(name_or_path)
        load_tokenizer(name_or_path)
    except Exception as e:  # any failure to load is the answer, in words
        return f"{name_or_path!r} does not load: {e}"
    if config.model_type not in FAMILIES:
        return (f"{name_or_path!r} is a {config.model_type!r} checkpoint; model hf_audio takes "
                f"{sorted(FAMILIES)}")
    return None


def lid_rows(languages: Sequence[str]) -> Tuple[List[str], List[int]]:
    """(row names, row of each label): ``English-American`` and ``English`` share ``English``."""
    names: List[str] = []
    index = []
    for label in languages:
        base = label.split("-", 1)[0]
        if base not in names:
            names.append(base)
        index.append(names.index(base))
    return names, index


class _GenLID:
    """forward pre-hook of ``lm_head`` while decoding: adds ``value`` (B, D), the decoder LID
    vectors of the batch, to the hidden states (B * beams, T, D) (None: nothing)."""

    def __init__(self):
        self.value: Optional[torch.Tensor] = None

    def __call__(self, module, args):
        if self.value is None:
            return None
        hidden = args[0]
        lid = self.value.to(hidden.dtype)
        lid = lid.repeat_interleave(hidden.size(0) // lid.size(0), dim=0)  # beam-major rows
        return (hidden + lid[:, None, :],) + tuple(args[1:])


class ESPnetHFAudioModel(KeepFrozenDtype, TrainableCheckpoint, AbsESPnetModel):
    """A released Whisper or Qwen2-Audio checkpoint as an ESPnet model (module docstring).

    forward(speech (B, L) float, speech_lengths (B,), prefix (B, P), suffix (B, S), text (B, N)
    = target + EOS, lang_id (B,) or (B, 1)) -> (loss, stats {loss, acc}, weight).
    generate(speech, speech_lengths, prefix, ..., suffix, ...) -> [(ids without EOS, score)].
    """

    def __init__(
        self,
        model_name_or_path: str,
        dtype: str = "float32",
        attn_implementation: Optional[str] = None,
        gradient_checkpointing: bool = False,
        lora_r: int = 0,
        lora_alpha: float = 32,
        lora_dropout: float = 0.05,
        lora_target_modules: Sequence[str] = ("q_proj", "k_proj", "v_proj"),
        freeze: bool = False,
        lid_embeddings: bool = False,
        freeze_lid: bool = False,
        languages: Optional[Sequence[str]] = None,
        sample_rate: int = 16000,
        logits_chunk: int = 1024,
        trust_remote_code: bool = False,
    ):
        super().__init__()
        import transformers
        from transformers import AutoConfig, AutoFeatureExtractor

        if lora_r < 0:
            raise ValueError(f"model_conf.lora_r must be >= 0, got {lora_r}")
        if freeze_lid and not lid_embeddings:
            raise ValueError("model_conf.freeze_lid: true needs lid_embeddings: true")
        torch_dtype = parse_dtype(dtype)
        try:
            config = AutoConfig.from_pretrained(model_name_or_path,
                                                trust_remote_code=trust_remote_code)
        except OSError as e:
            raise OSError(f"cannot load {model_name_or_path!r}: give a local HF model directory "
                          f"or a hub id reachable from this machine ({e})") from e
        if config.model_type not in FAMILIES:
            raise ValueError(
                f"{model_name_or_path}: model_type {config.model_type!r} is not supported by "
                f"model hf_audio; valid: {sorted(FAMILIES)}")
        self.family = config.model_type
        kwargs = dict(dtype=torch_dtype, trust_remote_code=trust_remote_code)
        if attn_implementation is not None:
            kwargs["attn_implementation"] = attn_implementation
        hf = getattr(transformers, FAMILIES[self.family]).from_pretrained(model_name_or_path,
                                                                          **kwargs)
        mark_pretrained(hf)
        #: rebuilding from the config reloads the base weights (espnet_sllm.chain); the dtype
        #: the frozen ones keep (KeepFrozenDtype.to)
        hf.loads_pretrained = True
        hf.frozen_dtype = torch_dtype
        fe = AutoFeatureExtractor.from_pretrained(model_name_or_path)
        n_mels = (config.num_mel_bins if self.family == "whisper"
                  else config.audio_config.num_mel_bins)
        if fe.feature_size != n_mels:
            raise ValueError(f"{model_name_or_path}: feature extractor has {fe.feature_size} mel "
                             f"bins, the model {n_mels}")
        self.n_fft, self.hop_length, self.window_samples = fe.n_fft, fe.hop_length, fe.n_samples
        self.register_buffer("mel_filters", torch.from_numpy(fe.mel_filters).float().T
                             .contiguous(), persistent=False)
        if gradient_checkpointing:
            enable_checkpointing(hf)
            hf.config.use_cache = False
        if lora_r > 0:
            hf = apply_lora(hf, lora_r, lora_alpha, lora_dropout, lora_target_modules,
                            what=f"hf_audio ({self.family})")
        elif freeze:
            hf.requires_grad_(False)
        self.hf = hf
        self.model_name_or_path = model_name_or_path
        self.sample_rate = sample_rate
        self.logits_chunk = logits_chunk
        tok = self._tokenizer(model_name_or_path)
        #: joins the hypotheses of the chunks of a long utterance (`generate`)
        self.space_ids = tok(" ", add_special_tokens=False)["input_ids"]
        self.eos_token_id = tok.eos_token_id
        self.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

        self.languages = list(languages) if languages else None
        self.lid_encoder = self.lid_decoder = None
        if lid_embeddings:
            if not self.languages:
                raise ValueError("model_conf.lid_embeddings needs the task option `languages` "
                                 "(and utt2lang in the data)")
            names, index = lid_rows(self.languages)
            self.lid_names = names
            self.register_buffer("lid_index", torch.tensor(index), persistent=False)
            enc_dim = config.d_model if self.family == "whisper" else config.audio_config.d_model
            dec_dim = config.d_model if self.family == "whisper" else \
                config.text_config.hidden_size
            self.lid_encoder = torch.nn.Parameter(torch.zeros(len(names), enc_dim),
                                                  requires_grad=not freeze_lid)
            self.lid_decoder = torch.nn.Parameter(torch.zeros(len(names), dec_dim),
                                                  requires_grad=not freeze_lid)
            self._load_lid(model_name_or_path)
        # Decoding adds the decoder LID vector right before lm_head (a hook: generate calls it).
        # The hook holds a small state object, not this model: a deepcopy of `hf` stays small.
        self._gen_lid = _GenLID()
        self.base.get_output_embeddings().register_forward_pre_hook(self._gen_lid)

    # ---------------------------------------------------------------- parts
    @staticmethod
    def _tokenizer(path: str):
        from espnet_sllm.llm.tokenizer import load_tokenizer

        return load_tokenizer(path)

    @property
    def base(self) -> torch.nn.Module:
        """The HF model under the peft wrapper (its modules carry the adapters)."""
        from peft import PeftModel

        return self.hf.get_base_model() if isinstance(self.hf, PeftModel) else self.hf

    def _load_lid(self, path: str) -> None:
        """Start the LID embeddings from ``<path>/lid_embeddings.safetensors`` when it exists."""
        file = os.path.join(path, LID_FILE)
        if not os.path.isfile(file):
            return
        from safetensors import safe_open

        with safe_open(file, framework="pt") as f:
            names = json.loads((f.metadata() or {}).get("rows", "[]"))
            if names != self.lid_names:
                raise ValueError(f"{file}: LID rows {names} differ from this model's "
                                 f"{self.lid_names} (task option languages)")
            with torch.no_grad():
                self.lid_encoder.copy_(f.get_tensor("encoder"))
                self.lid_decoder.copy_(f.get_tensor("decoder"))
        logging.info(f"hf_audio: LID embeddings from {file}")

    def _lid(self, table: Optional[torch.nn.Parameter], lang_id: Optional[torch.Tensor],
             B: int) -> Optional[torch.Tensor]:
        """(B, D) LID vectors of the batch (None without LID embeddings)."""
        if table is None:
            return None
        if lang_id is None:
            raise ValueError("lid_embeddings: the batch has no lang_id (give utt2lang)")
        lang_id = lang_id.reshape(-1).long()
        if lang_id.numel() != B or bool((lang_id < 0).any()):
            raise ValueError(f"lid_embeddings: every utterance needs a language (lang_id "
                             f"{lang_id.tolist()})")
        return table[self.lid_index[lang_id]]

    # ---------------------------------------------------------------- audio
    def features(self, speech: torch.Tensor, speech_lengths: torch.Tensor
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, L) waveform -> log-mel of the 30-s window (B, n_mels, 3000) and the number of
        mel frames that cover real audio (B,), as the HF feature extractor's attention mask
        (ceil(samples / hop))."""
        longest = int(speech_lengths.max())
        if longest > self.window_samples:
            raise ValueError(
                f"hf_audio: an utterance has {longest / self.sample_rate:.1f} s of audio, more "
                f"than the {self.window_samples / self.sample_rate:.0f}-s window of "
                f"{self.family}: filter long utterances for training (stage 3); `generate` "
                f"decodes them in chunks")
        wav = speech.new_zeros(speech.size(0), self.window_samples, dtype=torch.float32)
        for b, n in enumerate(speech_lengths.tolist()):
            wav[b, :n] = speech[b, :n]
        feats = whisper_log_mel(wav, self.mel_filters, self.n_fft, self.hop_length)
        frames = (speech_lengths + self.hop_length - 1) // self.hop_length
        return feats, frames

    def encode(self, speech: torch.Tensor, speech_lengths: torch.Tensor,
               lang_id: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Whisper: encoder output (B, 1500, D) over the whole window (as Whisper decodes).
        Qwen2-Audio: projector output (B, T, D_text) and its valid lengths (B,)."""
        feats, frames = self.features(speech, speech_lengths)
        B = speech.size(0)
        lid = self._lid(self.lid_encoder, lang_id, B)
        base = self.base
        if self.family == "whisper":
            enc = base.model.encoder(feats.to(base.dtype)).last_hidden_state
            lens = torch.full((B,), enc.size(1), dtype=torch.long, device=enc.device)
            if lid is not None:
                enc = enc + lid[:, None, :].to(enc.dtype)
            return enc, lens
        from transformers.masking_utils import create_bidirectional_mask

        tower = base.model.audio_tower
        conv_lens, out_lens = tower._get_feat_extract_output_lengths(frames)
        T = (feats.size(-1) - 2) // 2 + 1
        valid = (torch.arange(T, device=feats.device)[None, :] < conv_lens[:, None]).long()
        mask = create_bidirectional_mask(
            config=tower.config, inputs_embeds=feats.new_zeros(B, T, 1, dtype=base.dtype),
            attention_mask=valid)
        hidden = tower(feats.to(base.dtype), attention_mask=mask).last_hidden_state
        if lid is not None:
            hidden = hidden + lid[:, None, :].to(hidden.dtype)
        return base.model.multi_modal_projector(hidden), out_lens

    # ---------------------------------------------------------------- training
    def _decoder_hidden(self, speech, speech_lengths, prefix, prefix_lengths, suffix,
                        suffix_lengths, text, text_lengths, lang_id):
        """Final decoder hidden states (B, L, D) and labels (B, L) (IGNORE_ID off target)."""
        enc, enc_lens = self.encode(speech, speech_lengths, lang_id)
        base = self.base
        if self.family == "whisper":
            if int(prefix_lengths.max()) > 0:
                raise ValueError("hf_audio whisper: nothing may precede {speech} in the prompt "
                                 "(the text after it is the decoder prompt)")
            # decoder input = prompt + target (ids: Whisper's decoder embeds and positions them)
            ids, mask, labels = self._decoder_ids(suffix, suffix_lengths, text, text_lengths)
            hidden = base.model.decoder(input_ids=ids, attention_mask=mask,
                                        encoder_hidden_states=enc).last_hidden_state
        else:
            embeds, mask, labels = splice_embeddings(
                base.get_input_embeddings(), self.pad_token_id, enc, enc_lens, prefix,
                prefix_lengths, suffix, suffix_lengths, text, text_lengths)
            hidden = base.model.language_model(inputs_embeds=embeds,
                                               attention_mask=mask).last_hidden_state
        return hidden, labels

    def _decoder_ids(self, suffix, suffix_lengths, text, text_lengths
                     ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Whisper's decoder input ``prompt | target + EOS`` per row, right-padded: ids (B, L)
        (pad id), attention mask (B, L), labels (B, L) (IGNORE_ID off the target)."""
        B = suffix.size(0)
        L = int((suffix_lengths + text_lengths).max())
        ids = suffix.new_full((B, L), self.pad_token_id)
        mask = torch.zeros(B, L, dtype=torch.long, device=suffix.device)
        labels = torch.full((B, L), IGNORE_ID, dtype=torch.long, device=suffix.device)
        for b in range(B):
            s, n = int(suffix_lengths[b]), int(text_lengths[b])
            ids[b, :s] = suffix[b, :s]
            ids[b, s:s + n] = text[b, :n]
            labels[b, s:s + n] = text[b, :n]
            mask[b, :s + n] = 1
        return ids, mask, labels

    def forward(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        prefix: torch.Tensor,
        prefix_lengths: torch.Tensor,
        suffix: torch.Tensor,
        suffix_lengths: torch.Tensor,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        lang_id: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """CE on target + EOS (shapes in the class docstring)."""
        if int(text_lengths.min()) < 2:
            raise ValueError("an utterance has an empty target (only EOS): filter empty texts "
                             "(stage 3)")
        if int(speech_lengths.min()) < 1:
            raise ValueError("hf_audio: every utterance needs audio (no text-only tasks)")
        hidden, labels = self._decoder_hidden(speech, speech_lengths, prefix, prefix_lengths,
                                              suffix, suffix_lengths, text, text_lengths,
                                              lang_id)
        lid = self._lid(self.lid_decoder, lang_id, hidden.size(0))
        if lid is not None:
            hidden = hidden + lid[:, None, :].to(hidden.dtype)
        target = labels[:, 1:]
        valid = target != IGNORE_ID
        h, y = hidden[:, :-1][valid], target[valid]
        loss_sum, correct = chunked_cross_entropy(h, y, self.base.get_output_embeddings(),
                                                  self.logits_chunk)
        loss = loss_sum / y.numel()
        stats = dict(loss=loss.detach(), loss_ce=loss.detach(), acc=correct.float() / y.numel())
        return force_gatherable((loss, stats, speech.size(0)), loss.device)

    def collect_feats(self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs
                      ) -> Dict[str, torch.Tensor]:
        return {"feats": speech, "feats_lengths": speech_lengths}

    # ---------------------------------------------------------------- decoding
    @torch.no_grad()
    def generate(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        prefix: torch.Tensor,
        prefix_lengths: torch.Tensor,
        suffix: torch.Tensor,
        suffix_lengths: torch.Tensor,
        num_beams: int = 1,
        max_new_tokens: int = 200,
        max_tokens_per_second: Optional[float] = 25.0,
        min_new_tokens: int = 1,
        no_repeat_ngram_size: int = 0,
        length_penalty: float = 1.0,
        repetition_penalty: float = 1.0,
        lang_id: Optional[torch.Tensor] = None,
        row_max_new_tokens: Optional[Sequence[Optional[int]]] = None,
    ) -> List[Tuple[List[int], float]]:
        """transformers' generic ``generate`` (beam or greedy; Whisper's own long-form
        ``generate`` is bypassed: the prompt is ours). Budgets per utterance as
        ``ESPnetSLLMModel.generate``. Whisper rows decode in groups of equal prompt length
        (its decoder has absolute positions: no left padding). Audio longer than the 30-s
        window is cut into ceil(L / 30 s) equal chunks (`chunking.chunk_bounds`), each decoded
        with the utterance's prompt, and the chunks' tokens are joined with a space token (none
        for Japanese, Thai, Chinese: `chunking.joins_without_space` of the utterance's
        language); the score is their sum. Returns one (ids, score) per utterance."""
        from espnet_sllm.decoding.chunking import chunk_bounds, joins_without_space

        B = speech.size(0)
        lang_id = None if lang_id is None else lang_id.reshape(B, -1)
        owner, pieces = [], []
        for b, n in enumerate(speech_lengths.tolist()):
            for start, end in chunk_bounds(int(n), self.sample_rate,
                                           self.window_samples / self.sample_rate):
                owner.append(b)
                pieces.append(speech[b, start:end])
        if len(pieces) == B:
            return self._generate_window(speech, speech_lengths, prefix, prefix_lengths,
                                         suffix, suffix_lengths, lang_id, num_beams,
                                         max_new_tokens, max_tokens_per_second,
                                         min_new_tokens, no_repeat_ngram_size, length_penalty,
                                         repetition_penalty, row_max_new_tokens)
        idx = torch.tensor(owner, device=speech.device)
        lens = torch.tensor([p.numel() for p in pieces], device=speech.device)
        wav = speech.new_zeros(len(pieces), int(lens.max()))
        for i, p in enumerate(pieces):
            wav[i, : p.numel()] = p
        rows = None if row_max_new_tokens is None else [row_max_new_tokens[b] for b in owner]
        out = self._generate_window(wav, lens, prefix[idx], prefix_lengths[idx], suffix[idx],
                                    suffix_lengths[idx], None if lang_id is None else
                                    lang_id[idx], num_beams, max_new_tokens,
                                    max_tokens_per_second, min_new_tokens,
                                    no_repeat_ngram_size, length_penalty, repetition_penalty,
                                    rows)
        results: List[Tuple[List[int], float]] = [([], 0.0) for _ in range(B)]
        for b, (ids, score) in zip(owner, out):
            old, total = results[b]
            label = None
            if lang_id is not None and self.languages:
                label = self.languages[int(lang_id[b, 0])]
            joined = not old or not ids or (label and joins_without_space(label))
            sep = [] if joined else self.space_ids
            results[b] = (old + sep + ids, total + score)
        return results

    def _generate_window(self, speech, speech_lengths, prefix, prefix_lengths, suffix,
                         suffix_lengths, lang_id, num_beams, max_new_tokens,
                         max_tokens_per_second, min_new_tokens, no_repeat_ngram_size,
                         length_penalty, repetition_penalty, row_max_new_tokens):
        """`generate` of rows that fit the window."""
        from espnet_sllm.decoding.limits import utterance_budgets

        B = speech.size(0)
        limits = utterance_budgets(speech_lengths.tolist(), self.sample_rate, max_new_tokens,
                                   max_tokens_per_second, min_new_tokens, row_max_new_tokens)
        options = dict(num_beams=num_beams, min_new_tokens=min_new_tokens,
                       no_repeat_ngram_size=no_repeat_ngram_size, length_penalty=length_penalty,
                       repetition_penalty=repetition_penalty)
        if self.family == "whisper":
            groups: Dict[int, List[int]] = {}
            for b, n in enumerate(suffix_lengths.tolist()):
                groups.setdefault(n, []).append(b)
        else:
            groups = {0: list(range(B))}
        results: List[Optional[Tuple[List[int], float]]] = [None] * B
        for rows in groups.values():
            idx = torch.tensor(rows, device=speech.device)
            pick = (lambda x: None if x is None else x.reshape(B, -1)[idx])
            out = self._generate_rows(
                speech[idx], speech_lengths[idx], prefix[idx], prefix_lengths[idx], suffix[idx],
                suffix_lengths[idx], pick(lang_id), [limits[b] for b in rows], options)
            for b, r in zip(rows, out):
                results[b] = r
        return results

    def _generate_rows(self, speech, speech_lengths, prefix, prefix_lengths, suffix,
                       suffix_lengths, lang_id, limits, options):
        from transformers import GenerationConfig, GenerationMixin, LogitsProcessorList
        from transformers.modeling_outputs import BaseModelOutput

        from espnet_sllm.decoding.limits import PerUtteranceLengthLimit

        B = speech.size(0)
        enc, enc_lens = self.encode(speech, speech_lengths, lang_id)
        base = self.base
        config = GenerationConfig(max_new_tokens=max(limits), do_sample=False,
                                  eos_token_id=self.eos_token_id, pad_token_id=self.pad_token_id,
                                  output_scores=True, return_dict_in_generate=True, **options)
        if self.family == "whisper":
            config.decoder_start_token_id = base.config.decoder_start_token_id
        if self.family == "whisper":
            prompt_len = int(suffix_lengths[0])
            kwargs = dict(encoder_outputs=BaseModelOutput(last_hidden_state=enc),
                          decoder_input_ids=suffix[:, :prompt_len])
        else:
            prompt_len = 0
            embeds, mask, _ = splice_embeddings(
                base.get_input_embeddings(), self.pad_token_id, enc, enc_lens, prefix,
                prefix_lengths, suffix, suffix_lengths, left_pad=True)
            kwargs = dict(inputs_embeds=embeds, attention_mask=mask)
        processor = PerUtteranceLengthLimit(limits, options["num_beams"], self.eos_token_id,
                                            prompt_length=prompt_len)
        self._gen_lid.value = self._lid(self.lid_decoder, lang_id, B)
        try:
            out = GenerationMixin.generate(base, generation_config=config,
                                           logits_processor=LogitsProcessorList([processor]),
                                           **kwargs)
        finally:
            self._gen_lid.value = None
        seqs = out.sequences[:, prompt_len:]
        if getattr(out, "sequences_scores", None) is not None:
            scores = out.sequences_scores.tolist()
        else:
            trans = base.compute_transition_scores(out.sequences, out.scores,
                                                   normalize_logits=True)
            scores = [float(t[torch.isfinite(t) & (s != self.pad_token_id)].sum())
                      for t, s in zip(trans, seqs[:, -trans.size(1):])]
        results = []
        for b in range(B):
            ids = seqs[b].tolist()
            if self.eos_token_id in ids:
                ids = ids[: ids.index(self.eos_token_id)]
            results.append((ids, float(scores[b])))
        return results

    # ---------------------------------------------------------------- merging
    @torch.no_grad()
    def merge_lora(self) -> None:
        """Fold the LoRA adapters into the base weights (the LID embeddings stay as they are)."""
        self.hf = merge_lora(self.hf)

    def save_pretrained(self, out_dir: str) -> None:
        """Write the merged model as a plain HF checkpoint (+ processor / tokenizer / feature
        extractor, generation config) that ``model_name_or_path`` can point at, and the LID
        embeddings (`LID_FILE`)."""
        import copy

        from safetensors.torch import save_file
        from transformers import AutoProcessor

        merged = merge_lora(copy.deepcopy(self.hf))
        os.makedirs(out_dir, exist_ok=True)
        merged.save_pretrained(out_dir)
        AutoProcessor.from_pretrained(self.model_name_or_path).save_pretrained(out_dir)
        if self.lid_encoder is not None:
            save_file({"encoder": self.lid_encoder.detach().float().cpu().contiguous(),
                       "decoder": self.lid_decoder.detach().float().cpu().contiguous()},
                      os.path.join(out_dir, LID_FILE),
                      metadata={"rows": json.dumps(self.lid_names)})
        logging.info(f"hf_audio: wrote the merged model to {out_dir}")
