"""Two speech encoders fused per language (Ideal-LLM's dual encoders and language-adapted
connector up to H_mix, Xue et al.): ``encoder: dual``.

    xs_pad (B, L) 16 kHz waveform, ilens (B,)
      -> branch ``whisper`` (any registered encoder, e.g. whisper_hf)   F_w (B, T_w, D_w)
      -> branch ``mms``     (any registered encoder, e.g. mms_hf)       F_m (B, T_m, D_m)
      -> a TransformerAdapter per branch                                H_w, H_m (B, T, D)
      -> align_frames (blank frames after the shorter stream)           T_mix = max(T_w, T_m)
      -> LIDAdapter -> logits (B, K); l = argmax (or the oracle lang_id)
      -> w' = sigmoid(W[l]) (selector ``language``) or 0.5 (``fixed``)
      -> H_mix = H_w·(1 - w') + H_m·w'                                   ys (B, T_mix, D)

``mms: null`` keeps one branch: ys = H_w (the Ideal-LLM baseline, "- Dual Encoders"), no LID,
no selector. The parts are in `espnet_sllm.encoders.fusion`.

Auxiliary outputs (``aux_output_names``; `espnet_sllm.aux_losses`): ``lid`` (B, K) logits, whose
cross-entropy against ``lang_id`` is the LID loss (``model_conf.aux_weights: {lid: β}``), and
``lang_weight`` (B,) w', logged as its batch mean. The argmax that picks l has no gradient:
the LID adapter learns from the LID loss only, the selector's W[l] from the decoder (and CTC)
loss through H_mix.

YAML (Ideal-LLM Base; the task option ``languages`` lists the K languages and is passed in)::

    languages: [en, de, nl, fr, es, it, pt, pl]
    encoder: dual
    encoder_conf:
        whisper: whisper_hf
        whisper_conf: {model_name_or_path: openai/whisper-large-v3, freeze: true}
        mms: mms_hf
        mms_conf: {model_name_or_path: facebook/mms-300m, freeze: true}
        adapter_layers: 4
        selector: language
"""
from typing import Dict, Mapping, Optional, Sequence, Tuple

import torch
from espnet2.asr.encoder.abs_encoder import AbsEncoder

from espnet_sllm.encoders.fusion import (
    LanguageWeightSelector,
    LIDAdapter,
    TransformerAdapter,
    align_frames,
    mix,
)

SELECTORS = ("language", "fixed")
LID_SELECTIONS = ("predicted", "oracle")


def build_branch(name: str, conf: Optional[Mapping], input_size: int) -> AbsEncoder:
    """A registered encoder (``SLLMTask``'s ``encoder`` choices) by name, with its conf checked
    as the task checks ``encoder_conf``."""
    # Imported here: the task module imports this one for its registry.
    from espnet_sllm.tasks.sllm import check_conf_keys, encoder_choices

    if name == "dual":
        raise ValueError("a dual encoder's branch cannot be another dual encoder")
    cls = encoder_choices.get_class(name)  # unknown name: ValueError listing the choices
    conf = dict(conf or {})
    check_conf_keys("encoder", name, cls, conf)
    return cls(input_size=input_size, **conf)


class DualEncoder(AbsEncoder):
    """Whisper-like and MMS-like encoders, each with an adapter, mixed per language.

    Args:
        input_size: passed to the branches (the waveform encoders ignore it).
        languages: the task option ``languages`` (K codes; set by SLLMTask); required with two
            branches (the LID adapter and selector are over them).
        whisper: registry name of the first branch (H_w); whisper_conf: its constructor args.
        mms: registry name of the second branch (H_m), or None for one branch.
        mms_conf: its constructor args.
        adapter_size: D, the output size of both adapters and of this encoder.
        adapter_layers, adapter_heads, adapter_ffn, adapter_dropout: the adapters'
            Transformer layers (`fusion.TransformerAdapter`); Ideal-LLM: 4 (Base) / 9 (Large).
        selector: ``language`` (w' = sigmoid(W[l]), learned per language) or ``fixed``
            (w' = 0.5, no LID adapter: the "- Weight Selector" ablation); None with one branch.
        selector_init: initial W (0: w' = 0.5 for every language).
        lid_selection: ``predicted`` (l = argmax of the LID logits, in training and decoding)
            or ``oracle`` (l = the utterance's ``lang_id``; an analysis of the selector).

    forward(xs_pad (B, L), ilens (B,), lang_id (B,) or None) -> (ys (B, T_mix, D),
    olens (B,) long, aux dict: ``lid`` (B, K), ``lang_weight`` (B,); {} with one branch).
    """

    def __init__(
        self,
        input_size: int = 1,
        languages: Optional[Sequence[str]] = None,
        whisper: str = "whisper_hf",
        whisper_conf: Optional[Mapping] = None,
        mms: Optional[str] = "mms_hf",
        mms_conf: Optional[Mapping] = None,
        adapter_size: int = 1280,
        adapter_layers: int = 4,
        adapter_heads: int = 20,
        adapter_ffn: int = 3072,
        adapter_dropout: float = 0.1,
        selector: Optional[str] = "language",
        selector_init: float = 0.0,
        lid_selection: str = "predicted",
    ):
        super().__init__()
        if mms is None:
            if selector is not None:
                raise ValueError(
                    f"encoder_conf.selector={selector!r} with one branch (mms: null): there is "
                    f"nothing to mix; set selector: null")
            if mms_conf:
                raise ValueError("encoder_conf.mms_conf is set but mms is null")
        else:
            if selector not in SELECTORS:
                raise ValueError(f"encoder_conf.selector must be one of {list(SELECTORS)} with "
                                 f"two branches, got {selector!r}")
            if selector == "language" and not languages:
                raise ValueError("encoder 'dual' with selector 'language' needs the task option "
                                 "`languages: [...]` (the LID adapter's labels)")
        if lid_selection not in LID_SELECTIONS:
            raise ValueError(f"encoder_conf.lid_selection must be one of {list(LID_SELECTIONS)}, "
                             f"got {lid_selection!r}")
        if lid_selection == "oracle" and selector != "language":
            raise ValueError("lid_selection 'oracle' picks the selector's weight by the true "
                             "language: it needs selector 'language'")
        self.languages = list(languages) if languages else None
        self.selector_kind = selector
        self.lid_selection = lid_selection
        self.whisper = build_branch(whisper, whisper_conf, input_size)
        self.mms = build_branch(mms, mms_conf, input_size) if mms is not None else None
        adapter = dict(output_size=adapter_size, num_layers=adapter_layers,
                       num_heads=adapter_heads, ffn_size=adapter_ffn, dropout=adapter_dropout)
        self.whisper_adapter = TransformerAdapter(self.whisper.output_size(), **adapter)
        self.mms_adapter = (TransformerAdapter(self.mms.output_size(), **adapter)
                            if self.mms is not None else None)
        if selector == "language":
            self.lid_adapter = LIDAdapter(adapter_size, len(self.languages))
            self.selector = LanguageWeightSelector(self.languages, selector_init)
            self.aux_output_names: Tuple[str, ...] = ("lid", "lang_weight")
        else:
            self.lid_adapter = None
            self.selector = None
            self.aux_output_names = ()
        self._output_size = adapter_size
        # Decoding batches the utterances as they come when every branch is batch-invariant;
        # the adapters mask padding keys and zero padding frames, so they keep that property.
        self.batch_invariant = all(getattr(b, "batch_invariant", False)
                                   for b in (self.whisper, self.mms) if b is not None)

    def output_size(self) -> int:
        return self._output_size

    def forward(
        self,
        xs_pad: torch.Tensor,
        ilens: torch.Tensor,
        prev_states: Optional[torch.Tensor] = None,
        lang_id: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, Dict[str, torch.Tensor]]:
        if self.lid_selection == "oracle" and lang_id is None:
            raise ValueError("encoder 'dual' with lid_selection 'oracle' needs lang_id (the "
                             "utterances' languages: utt2lang and the task option `languages`)")
        f_w, w_lens = self.whisper(xs_pad, ilens)[:2]
        h_w = self.whisper_adapter(f_w, w_lens)
        if self.mms is None:
            return h_w, w_lens, {}
        f_m, m_lens = self.mms(xs_pad, ilens)[:2]
        h_m = self.mms_adapter(f_m, m_lens)
        h_w, h_m, mix_lens = align_frames(h_w, w_lens, h_m, m_lens)
        if self.selector is None:  # fixed: both streams weigh 1/2
            w = torch.full((h_w.size(0),), 0.5, device=h_w.device)
            return mix(h_w, h_m, w), mix_lens, {}
        logits = self.lid_adapter(h_w, w_lens, h_m, m_lens)  # (B, K)
        if self.lid_selection == "oracle":
            lang = lang_id.reshape(-1).long()
        else:
            lang = logits.detach().argmax(-1)
        w = self.selector(lang)  # (B,)
        return mix(h_w, h_m, w), mix_lens, {"lid": logits, "lang_weight": w}
