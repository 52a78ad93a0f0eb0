"""ESPnetSLLMModel: speech encoder -> projector -> spliced into a decoder-only LLM."""
import inspect
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from espnet_sllm.aux_losses import AUX_LOSSES, RESERVED_NAMES, aux_head_classes
from espnet_sllm.llm.abs_llm import AbsLLM
from espnet_sllm.model_mixins import KeepFrozenDtype, TrainableCheckpoint
from espnet_sllm.projectors.abs_projector import AbsProjector

IGNORE_ID = -100


def _param_dtype(module: torch.nn.Module, default: torch.dtype) -> torch.dtype:
    """The dtype of ``module``'s first floating parameter (``default`` without one): the dtype
    of the empty (B, 0, D) outputs of a batch without audio, which outside autocast is the
    dtype the module's output would have."""
    return next((p.dtype for p in module.parameters() if p.is_floating_point()), default)


def _nan(device: torch.device) -> torch.Tensor:
    """A NaN stat: what a batch reports for a loss that none of its rows has (ESPnet's
    reporter skips non-finite values when it averages)."""
    return torch.full((), float("nan"), device=device)


def frontend_feats(
    frontend: Optional[AbsFrontend], speech: torch.Tensor, speech_lengths: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Frontend features of the rows with audio: (B, L) waveform -> (B, T, F), lengths (B,).

    Rows with ``speech_lengths`` 0 (text-only utterances) get 0 frames and do not reach the
    frontend (an STFT of no samples is not 0 frames), so ``--collect_stats`` feature
    statistics count only real audio. No frontend: the waveform itself.
    """
    if frontend is None:
        return speech, speech_lengths
    rows = SpeechEncoding.audio_rows(speech_lengths)
    if rows is None:
        return frontend(speech, speech_lengths)
    B = speech.size(0)
    if rows.numel() == 0:
        return SpeechEncoding._scatter_rows(None, None, rows, B, frontend.output_size(),
                                            speech.dtype, speech.device)
    lens = speech_lengths[rows]
    feats, feats_lengths = frontend(speech[rows, : int(lens.max())], lens)
    return SpeechEncoding._scatter_rows(feats, feats_lengths, rows, B, 0, speech.dtype,
                                        speech.device)


def splice_embeddings(
    embed: Callable[[torch.Tensor], torch.Tensor],
    pad_id: int,
    speech_emb: torch.Tensor,
    speech_emb_lengths: torch.Tensor,
    prefix: torch.Tensor,
    prefix_lengths: torch.Tensor,
    suffix: torch.Tensor,
    suffix_lengths: torch.Tensor,
    text: Optional[torch.Tensor] = None,
    text_lengths: Optional[torch.Tensor] = None,
    left_pad: bool = False,
) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Join ``prefix | speech | suffix [| text]`` per utterance.

    Args:
        speech_emb: (B, T, D); prefix: (B, P); suffix: (B, S); text: (B, N) (ids padded
            with any value, lengths give the real sizes).
        left_pad: padding on the left (generation) instead of the right (training).
    Returns:
        inputs_embeds (B, L, D), attention_mask (B, L) long, labels (B, L) long with
        IGNORE_ID everywhere but on the target tokens (None when ``text`` is None).
    """
    B = speech_emb.size(0)
    pieces = [prefix, suffix] + ([text] if text is not None else [])
    # One embedding call per piece for the whole batch; padding ids become pad_id.
    embedded = [
        embed(p.masked_fill(p < 0, pad_id)).to(speech_emb.dtype) for p in pieces
    ]
    rows, labels = [], []
    for b in range(B):
        parts = [
            embedded[0][b, : prefix_lengths[b]],
            speech_emb[b, : speech_emb_lengths[b]],
            embedded[1][b, : suffix_lengths[b]],
        ]
        n_ctx = sum(int(p.size(0)) for p in parts)
        lab = torch.full((n_ctx,), IGNORE_ID, dtype=torch.long, device=speech_emb.device)
        if text is not None:
            parts.append(embedded[2][b, : text_lengths[b]])
            lab = torch.cat([lab, text[b, : text_lengths[b]].long()])
        rows.append(torch.cat(parts, dim=0))
        labels.append(lab)
    L = max(r.size(0) for r in rows)
    D = speech_emb.size(-1)
    embeds = speech_emb.new_zeros(B, L, D)
    mask = torch.zeros(B, L, dtype=torch.long, device=speech_emb.device)
    lab_out = torch.full((B, L), IGNORE_ID, dtype=torch.long, device=speech_emb.device)
    for b, (r, lab) in enumerate(zip(rows, labels)):
        n = r.size(0)
        sl = slice(L - n, L) if left_pad else slice(0, n)
        embeds[b, sl] = r
        mask[b, sl] = 1
        lab_out[b, sl] = lab
    return embeds, mask, (lab_out if text is not None else None)


def chunked_cross_entropy(
    h: torch.Tensor, y: torch.Tensor, logits_fn: Callable[[torch.Tensor], torch.Tensor],
    chunk: int, lsm_weight: float = 0.0,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Summed CE and number of correct argmaxes of (N, D) hidden states against (N,) targets.

    Logits (fp32) exist for ``chunk`` rows at a time, each chunk recomputed in backward: at most
    one (chunk, V) block is alive (V = 256k for Gemma-2, 156k for Qwen2-Audio).
    """
    def one(hc: torch.Tensor, yc: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        logits = logits_fn(hc).float()
        loss = F.cross_entropy(logits, yc, reduction="sum", label_smoothing=lsm_weight)
        return loss, (logits.detach().argmax(-1) == yc).sum()

    loss_sum = h.new_zeros((), dtype=torch.float32)
    correct = torch.zeros((), dtype=torch.long, device=y.device)
    for start in range(0, y.numel(), chunk):
        hc, yc = h[start : start + chunk], y[start : start + chunk]
        if torch.is_grad_enabled() and hc.requires_grad:
            part, right = torch.utils.checkpoint.checkpoint(one, hc, yc, use_reentrant=False)
        else:
            part, right = one(hc, yc)
        loss_sum = loss_sum + part
        correct = correct + right
    return loss_sum, correct


class SpeechEncoding(KeepFrozenDtype):
    """The speech side of a Speech LLM: waveform -> frontend -> specaug -> normalize -> encoder.

    A mixin of `ESPnetSLLMModel` and of `espnet_sllm.encoders.cache.EncoderStack` (the same
    components without projector and LLM, which writes the frozen-encoder feature cache), so
    both encode with the same code. The host is a ``torch.nn.Module`` with the attributes
    ``frontend``, ``specaug``, ``normalize`` (each None or a module), ``encoder`` and
    ``_encoder_takes_lang_id``.

    Cached encoder output (``encoder_feats``): `cached_rows` stands in for `_encode_rows`, and
    `encoder_cache_problems` says why it may not (an encoder that trains, SpecAugment, ...).
    """

    # ---------------------------------------------------------------- speech side
    def encode(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        lang_id: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, L) waveform -> encoder output (B, T, D_enc), lengths (B,).

        Kept separate from projection so frozen-encoder outputs can be cached and re-used
        (feature caching, two-stage decoding). Rows without audio (text-only utterances,
        ``speech_lengths`` 0) get 0 frames (see `encode_aux`).
        """
        enc, enc_lens, _ = self.encode_aux(speech, speech_lengths, lang_id)
        return enc, enc_lens

    def encode_aux(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        lang_id: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, Dict[str, torch.Tensor]]:
        """`encode` plus the encoder's auxiliary outputs (the dict it may return in place of
        ESPnet's ``states``; {} for ESPnet's encoders). lang_id (B,) reaches an encoder whose
        ``forward`` takes ``lang_id``.

        Rows with ``speech_lengths`` 0 (text-only utterances) never reach the frontend or the
        encoder: they come back as zeros with length 0 (T = 0 when no row has audio), and the
        auxiliary outputs cover only the rows with audio, in the order of `audio_rows`.
        """
        B = speech.size(0)
        enc, enc_lens, aux, rows = self._encode_rows(speech, speech_lengths, lang_id)
        enc, enc_lens = self._scatter_rows(enc, enc_lens, rows, B, self.encoder.output_size(),
                                           _param_dtype(self.encoder, speech.dtype),
                                           speech.device)
        return enc, enc_lens, aux

    @staticmethod
    def audio_rows(speech_lengths: torch.Tensor) -> Optional[torch.Tensor]:
        """Indices (B_a,) long of the rows with audio (``speech_lengths > 0``), ascending;
        None when every row has audio (such a batch takes the path it always took)."""
        has_audio = speech_lengths.reshape(-1) > 0
        if bool(has_audio.all()):
            return None
        return has_audio.nonzero(as_tuple=True)[0]

    def _encode_rows(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        lang_id: Optional[torch.Tensor] = None,
        batch_invariant: bool = False,
    ) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor], Dict[str, torch.Tensor],
               Optional[torch.Tensor]]:
        """Frontend -> specaug -> normalize -> encoder on the rows with audio only.

        Returns (enc (B_a, T, D_enc), enc_lens (B_a,), aux outputs of those rows, rows): rows
        as `audio_rows` (None: all B rows, unchanged); enc and enc_lens are None when no row
        has audio (the encoder does not run at all). ``batch_invariant``: see `_run_encoder`.
        """
        rows = self.audio_rows(speech_lengths)
        if rows is None:
            return (*self._run_encoder(speech, speech_lengths, lang_id, batch_invariant), None)
        if rows.numel() == 0:
            return None, None, {}, rows
        lens = speech_lengths[rows]
        # Trimmed to the longest row with audio: the encoder sees exactly the batch those
        # utterances form without the text-only rows (same padding, same frames).
        sub = speech[rows, : int(lens.max())]
        sub_lang_id = lang_id[rows] if lang_id is not None else None
        return (*self._run_encoder(sub, lens, sub_lang_id, batch_invariant), rows)

    @staticmethod
    def _scatter_rows(
        x: Optional[torch.Tensor],
        x_lens: Optional[torch.Tensor],
        rows: Optional[torch.Tensor],
        B: int,
        size: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B_a, T, D) outputs of the rows with audio -> (B, T, D), zeros and length 0 in the
        other rows; x None (no row has audio) -> (B, 0, size) of ``dtype``. rows None: as is."""
        if rows is None:
            return x, x_lens
        if x is None:
            return (torch.zeros(B, 0, size, dtype=dtype, device=device),
                    torch.zeros(B, dtype=torch.long, device=device))
        out = x.new_zeros(B, *x.shape[1:])
        out[rows] = x
        out_lens = x_lens.new_zeros(B)
        out_lens[rows] = x_lens
        return out, out_lens

    def encoder_cache_problems(self) -> List[str]:
        """Why cached encoder output (``encoder_feats``) cannot stand in for running this
        speech side in training, one sentence per reason naming the config key to change;
        [] when it can. The cache holds one fixed output per utterance, so the speech side must
        compute a fixed function of the waveform: no SpecAugment, nothing trainable in the
        frontend, normalisation or encoder, and nothing besides the frames that the model uses
        (auxiliary outputs, a ``lang_id`` input)."""
        problems = []
        if self.specaug is not None:
            problems.append(
                "`specaug` is set: SpecAugment masks differently at every step, a cache holds "
                "one output per utterance; remove `specaug` / `specaug_conf`, or train on the "
                "waveform (sllm.sh --cache_encoder false)")
        for name in ("frontend", "normalize", "encoder"):
            module = getattr(self, name)
            trained = [n for n, p in module.named_parameters() if p.requires_grad] \
                if module is not None else []
            if not trained:
                continue
            how = "`encoder_conf.freeze: true`" if name == "encoder" and hasattr(
                module, "freeze") else f"`freeze_param: [{name}]` (ESPnet's --freeze_param)"
            problems.append(
                f"the {name} trains ({len(trained)} trainable tensors, e.g. {name}.{trained[0]}): "
                f"a cache is only for a frozen {name}; set {how}, or train on the waveform")
        aux_names = tuple(getattr(self.encoder, "aux_output_names", ()) or ())
        if aux_names:
            problems.append(
                f"encoder {type(self.encoder).__name__} returns auxiliary outputs {aux_names} "
                f"(its aux_output_names), which the cache does not hold; train on the waveform")
        if self._encoder_takes_lang_id:
            problems.append(
                f"encoder {type(self.encoder).__name__} takes `lang_id` (its output depends on "
                f"the utterance's language label), which the cache does not record; train on "
                f"the waveform")
        return problems

    def cached_rows(
        self, feats: torch.Tensor, feats_lengths: torch.Tensor
    ) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor], Dict[str, torch.Tensor],
               Optional[torch.Tensor]]:
        """Cached encoder output in place of `_encode_rows` (frontend, specaug, normalize and
        encoder do not run).

        feats (B, T, D_enc) float: the collated ``encoder_feats`` (zero beyond each length);
        feats_lengths (B,) long: its valid frames, 0 for a text-only row. Returns what
        `_encode_rows` returns for the waveforms: (enc (B_a, T_a, D_enc), enc_lens (B_a,), {}
        (no auxiliary outputs), rows), the rows with frames only (rows None: all B), trimmed to
        their longest T_a; enc and enc_lens None when no row has frames. Raises ValueError
        when `encoder_cache_problems` finds a reason the cache cannot stand in.
        """
        problems = self.encoder_cache_problems()
        if problems:
            raise ValueError("encoder_feats (a frozen-encoder cache) cannot be used with this "
                             "model: " + "; ".join(problems))
        if feats.dim() != 3 or feats.size(-1) != self.encoder.output_size():
            raise ValueError(
                f"encoder_feats must be (B, T, {self.encoder.output_size()}) (the encoder's "
                f"output size), got {tuple(feats.shape)}: a cache of another encoder?")
        lens = feats_lengths.reshape(-1).long()
        rows = self.audio_rows(lens)
        if rows is None:
            return feats[:, : int(lens.max())], lens, {}, None
        if rows.numel() == 0:
            return None, None, {}, rows
        sub = lens[rows]
        return feats[rows, : int(sub.max())], sub, {}, rows

    def _run_encoder(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        lang_id: Optional[torch.Tensor] = None,
        batch_invariant: bool = False,
    ) -> Tuple[torch.Tensor, torch.Tensor, Dict[str, torch.Tensor]]:
        """Frontend -> specaug -> normalize -> encoder on every row given (all have audio):
        speech (B, L) -> enc (B, T, D_enc), enc_lens (B,), aux outputs.

        ``batch_invariant`` (decoding; ignored in training mode): each row's frames are what
        the row gives alone, to float rounding (`_run_encoder_batch_invariant`).
        """
        if batch_invariant and not self.training and speech.size(0) > 1:
            return self._run_encoder_batch_invariant(speech, speech_lengths, lang_id)
        feats, feats_lengths = speech, speech_lengths
        if self.frontend is not None:
            feats, feats_lengths = self.frontend(speech, speech_lengths)
        if self.specaug is not None and self.training:
            feats, feats_lengths = self.specaug(feats, feats_lengths)
        if self.normalize is not None:
            feats, feats_lengths = self.normalize(feats, feats_lengths)
        return self._call_encoder(feats, feats_lengths, lang_id)

    def _call_encoder(
        self, feats: torch.Tensor, feats_lengths: torch.Tensor, lang_id: Optional[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor, Dict[str, torch.Tensor]]:
        """The encoder on (B, T, F) features -> (B, T', D_enc), (B,), aux outputs."""
        if self._encoder_takes_lang_id:
            enc, enc_lens, states = self.encoder(feats, feats_lengths, lang_id=lang_id)
        else:
            enc, enc_lens, states = self.encoder(feats, feats_lengths)
        return enc, enc_lens, (dict(states) if isinstance(states, dict) else {})

    def _run_encoder_batch_invariant(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        lang_id: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, Dict[str, torch.Tensor]]:
        """`_run_encoder` (eval) where each of the B rows gets what it gets alone.

        * An encoder with ``batch_invariant = True`` (``whisper_hf``: it computes its features
          per segment and masks its padding) without frontend and normalisation: as is.
        * ESPnet encoders `batch_invariance.unsupported` accepts: the frontend runs per row (its
          STFT reflects the signal at the end, not the batch's zero padding), the normalisation
          on the zero-padded batch (utterance_mvn and global_mvn work per row), the encoder
          under `batch_invariance.ExactPadding` (exact subsampled lengths, padding zeroed before
          every time convolution, the legacy relative-position shift per row), and its output
          is zeroed beyond the lengths. Equal to the row alone to float rounding (~1e-6).
        * Any other encoder: one row at a time (exact, slower); aux outputs are not returned
          (decoding does not use them).
        """
        if getattr(self.encoder, "batch_invariant", False) and self.frontend is None and (
                self.normalize is None):
            return self._run_encoder(speech, speech_lengths, lang_id)
        from espnet_sllm.encoders.batch_invariance import ExactPadding, unsupported

        exact = getattr(self.encoder, "batch_invariant", False) or unsupported(self.encoder) is None
        B = speech.size(0)
        if not exact:
            encs = [self._run_encoder(speech[b : b + 1, : int(speech_lengths[b])],
                                      speech_lengths[b : b + 1],
                                      lang_id[b : b + 1] if lang_id is not None else None)
                    for b in range(B)]
            enc_lens = torch.cat([e[1] for e in encs])
            enc = encs[0][0].new_zeros(B, int(enc_lens.max()), encs[0][0].size(-1))
            for b, (e, n, _) in enumerate(encs):
                enc[b, : int(n[0])] = e[0, : int(n[0])]
            return enc, enc_lens, {}
        feats, feats_lengths = speech, speech_lengths
        if self.frontend is not None:
            rows = [self.frontend(speech[b : b + 1, : int(speech_lengths[b])],
                                  speech_lengths[b : b + 1]) for b in range(B)]
            feats_lengths = torch.cat([n for _, n in rows])
            feats = rows[0][0].new_zeros(B, int(feats_lengths.max()), rows[0][0].size(-1))
            for b, (f, n) in enumerate(rows):
                feats[b, : int(n[0])] = f[0, : int(n[0])]
        if self.normalize is not None:
            feats, feats_lengths = self.normalize(feats, feats_lengths)
        if getattr(self.encoder, "batch_invariant", False):
            return self._call_encoder(feats, feats_lengths, lang_id)
        with ExactPadding(self.encoder, feats_lengths, feats.size(1)) as padding:
            enc, enc_lens, aux = self._call_encoder(feats, feats_lengths, lang_id)
        if not torch.equal(enc_lens.to(padding.lengths.device), padding.lengths):
            # The encoder changed the lengths in a way ExactPadding does not know.
            raise RuntimeError(f"{type(self.encoder).__name__} gave lengths {enc_lens.tolist()}, "
                               f"batch-invariant encoding expected {padding.lengths.tolist()}")
        return padding.zero_padding(enc), enc_lens, aux


class ESPnetSLLMModel(SpeechEncoding, TrainableCheckpoint, AbsESPnetModel):
    """Speech LLM: ``prefix-text | speech embeddings | suffix-text | target + EOS``.

    The prompt is split by the preprocessor at its ``{speech}`` placeholder; this model embeds
    both halves with the LLM's own embedding table, puts the projected speech between them and
    trains cross-entropy on the target tokens and EOS only.

    Args:
        frontend, specaug, normalize, encoder: as in ESPnet's ASR model (frontend None for
            encoders that take the raw waveform, e.g. ``whisper_hf``).
        projector: encoder frames -> LLM embeddings; its input size must equal the encoder's
            output size and its output size the LLM's hidden size.
        llm: the causal LM.
        ctc_weight: weight α of an auxiliary CTC loss, ``loss = (1-α)·CE + α·CTC``. The CTC
            head is over the LLM vocabulary plus a blank (id 0; token i is class i+1).
            ``1.0`` trains CTC alone (encoder CTC fine-tuning): the LLM does not run at all
            (no splice, no CE) and ``acc`` in the stats is the CTC greedy token accuracy,
            ``1 - TER`` of the collapsed argmax path against the target (without EOS), summed
            over the batch (it can be negative while insertions dominate).
        ctc_input: ``projector`` (after projection) or ``encoder`` (encoder output).
            CTC trains on the batch's ``ctc_text`` when the preprocessor emits it
            (``preprocessor_conf.ctc_text_name``, e.g. the transcript while the CE target is a
            translation), else on the target.
        lsm_weight: label smoothing of the CE loss.
        sample_rate: of the waveform, to bound generation length by audio duration.
        logits_chunk: the CE loss computes logits only at target positions, this many at a
            time, each chunk recomputed in backward (so at most one chunk of (logits_chunk, V)
            fp32 logits is alive; V = 256k for Gemma-2).
        languages: the task option ``languages`` (SLLMTask passes it; the preprocessor reads
            the same list and emits ``lang_id``, the index of the utterance's language).
        aux_heads: ``{kind: kwargs}`` auxiliary heads of ``aux_losses.aux_head_classes``
            (e.g. ``{lid: {input: encoder}}``), run in training on the encoder or projector
            output; see `espnet_sllm.aux_losses`.
        aux_weights: ``{name: β}`` of the auxiliary losses (``aux_losses.AUX_LOSSES``):
            ``loss = (1-α)·CE + α·CTC + Σ βᵢ·auxᵢ``, not renormalised. Each name must be
            produced by a head or by the encoder (its ``aux_output_names``). Every auxiliary
            loss (β 0 included) is in the stats as ``loss_<name>``, ``acc_<name>``.

    Language ids: ``forward`` and ``generate`` take ``lang_id`` (B,) long (or (B, 1) as
    collated); an encoder whose ``forward`` has a ``lang_id`` parameter receives it.

    Text-only utterances (``preprocessor_conf.text_only_tasks``) are rows with
    ``speech_lengths`` 0: ``forward`` and ``generate`` run the frontend, encoder and projector on
    the rows with audio only (trimmed to their longest) and splice 0 speech frames into the
    others; with no audio in the batch the encoder does not run. A mixed batch gives each row
    what it gives alone.

    Dtypes: components with a ``frozen_dtype`` (``llm: hf``, ``encoder: whisper_hf``) keep their
    frozen weights in the dtype their config names when ESPnet casts the model to
    ``--train_dtype`` (`to`); trained weights take ``--train_dtype``. Tensors are cast at
    component boundaries, so any mix runs.
    """

    def __init__(
        self,
        frontend: Optional[AbsFrontend],
        specaug: Optional[AbsSpecAug],
        normalize: Optional[AbsNormalize],
        encoder: AbsEncoder,
        projector: AbsProjector,
        llm: AbsLLM,
        ctc_weight: float = 0.0,
        ctc_input: str = "projector",
        lsm_weight: float = 0.0,
        sample_rate: int = 16000,
        logits_chunk: int = 1024,
        languages: Optional[Sequence[str]] = None,
        aux_heads: Optional[Mapping[str, Optional[Mapping]]] = None,
        aux_weights: Optional[Mapping[str, float]] = None,
    ):
        super().__init__()
        if logits_chunk < 1:
            raise ValueError(f"logits_chunk must be >= 1, got {logits_chunk}")
        if not 0.0 <= ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1], got {ctc_weight}")
        if ctc_input not in ("projector", "encoder"):
            raise ValueError(f"ctc_input must be 'projector' or 'encoder', got {ctc_input!r}")
        self.frontend = frontend
        self.specaug = specaug
        self.normalize = normalize
        self.encoder = encoder
        self.projector = projector
        self.llm = llm
        if projector.output_size() != llm.hidden_size():
            raise ValueError(
                f"projector output_size {projector.output_size()} != LLM hidden size "
                f"{llm.hidden_size()}: set projector_conf.output_size"
            )
        self.ctc_weight = ctc_weight
        self.ctc_input = ctc_input
        self.lsm_weight = lsm_weight
        self.sample_rate = sample_rate
        self.logits_chunk = logits_chunk
        if ctc_weight > 0:
            in_dim = projector.output_size() if ctc_input == "projector" else encoder.output_size()
            self.ctc = CTC(odim=llm.vocab_size() + 1, encoder_output_size=in_dim)
        else:
            self.ctc = None
        self.languages = list(languages) if languages else None
        self._encoder_takes_lang_id = "lang_id" in inspect.signature(encoder.forward).parameters
        self._build_aux(aux_heads or {}, dict(aux_weights or {}))

    @property
    def ctc_only(self) -> bool:
        """``ctc_weight: 1.0``: CTC alone, the LLM does not run in training."""
        return self.ctc is not None and self.ctc_weight == 1.0

    def _build_aux(self, aux_heads: Mapping, aux_weights: Dict[str, float]):
        """Build ``aux_heads`` and check ``aux_weights`` against what is produced."""
        self.aux_heads = torch.nn.ModuleDict()
        producers: Dict[str, str] = {}
        for name in getattr(self.encoder, "aux_output_names", ()) or ():
            producers[name] = "the encoder"
        for kind, conf in aux_heads.items():
            if kind not in aux_head_classes:
                raise ValueError(
                    f"model_conf.aux_heads: unknown head {kind!r}; valid: "
                    f"{sorted(aux_head_classes)}"
                )
            conf = dict(conf or {})
            for key in ("input_size", "languages"):
                if key in conf:
                    raise ValueError(f"model_conf.aux_heads.{kind}.{key} is set by the model")
            where = conf.get("input", "encoder")
            if where not in ("encoder", "projector"):
                raise ValueError(
                    f"model_conf.aux_heads.{kind}.input must be 'encoder' or 'projector', "
                    f"got {where!r}"
                )
            size = self.encoder.output_size() if where == "encoder" else (
                self.projector.output_size())
            head = aux_head_classes[kind](input_size=size, languages=self.languages, **conf)
            for name in head.output_names:
                if name in producers:
                    raise ValueError(
                        f"auxiliary output {name!r} is produced by both {producers[name]} "
                        f"and aux head {kind!r}"
                    )
                producers[name] = f"aux head {kind!r}"
            self.aux_heads[kind] = head
        for name in producers:
            if name in RESERVED_NAMES:
                raise ValueError(f"auxiliary output name {name!r} is reserved ({RESERVED_NAMES})")
        for name, beta in aux_weights.items():
            if name not in AUX_LOSSES:
                raise ValueError(
                    f"model_conf.aux_weights: unknown auxiliary loss {name!r}; valid: "
                    f"{sorted(AUX_LOSSES)}"
                )
            if name not in producers:
                raise ValueError(
                    f"model_conf.aux_weights.{name}={beta} but nothing produces {name!r}: add "
                    f"aux_heads: {{{name}: {{}}}} or an encoder with {name!r} in its "
                    f"aux_output_names (produced now: {sorted(producers) or 'nothing'})"
                )
            if float(beta) < 0:
                raise ValueError(f"model_conf.aux_weights.{name} must be >= 0, got {beta}")
        self.aux_weights = {k: float(v) for k, v in aux_weights.items()}

    @staticmethod
    def _as_lang_id(lang_id: Optional[torch.Tensor], B: int) -> Optional[torch.Tensor]:
        """(B,) or collated (B, 1) -> (B,) long; None stays None."""
        if lang_id is None:
            return None
        lang_id = lang_id.reshape(-1).long()
        if lang_id.numel() != B:
            raise ValueError(f"lang_id must be (B,) or (B, 1) with B={B}, got {lang_id.numel()}")
        return lang_id

    # ---------------------------------------------------------------- speech side
    def project(
        self, enc: torch.Tensor, enc_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encoder output (B, T, D_enc) -> projector output (B, T', D_llm), lengths (B,)."""
        # A frozen bf16 encoder feeds an fp32 projector (or the reverse under --dtype).
        proj_dtype = next((p.dtype for p in self.projector.parameters()), enc.dtype)
        return self.projector(enc.to(proj_dtype), enc_lens)

    def speech_embeddings(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        lang_id: Optional[torch.Tensor] = None,
        batch_invariant: bool = False,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, L) waveform -> projector output (B, T', D_llm), lengths, encoder output, lengths.

        The encoder and the projector run on the rows with audio only; rows with
        ``speech_lengths`` 0 (text-only utterances) get 0 frames (zeros, length 0).
        ``batch_invariant`` (eval only; `generate` sets it): every row gets what it gets alone,
        to float rounding, whatever the encoder (`_run_encoder_batch_invariant`)."""
        B = speech.size(0)
        enc, enc_lens, _, rows = self._encode_rows(speech, speech_lengths, lang_id,
                                                   batch_invariant)
        emb, emb_lens = self.project(enc, enc_lens) if enc is not None else (None, None)
        emb, emb_lens = self._scatter_rows(emb, emb_lens, rows, B, self.projector.output_size(),
                                           _param_dtype(self.projector, speech.dtype),
                                           speech.device)
        enc, enc_lens = self._scatter_rows(enc, enc_lens, rows, B, self.encoder.output_size(),
                                           _param_dtype(self.encoder, speech.dtype),
                                           speech.device)
        return emb, emb_lens, enc, enc_lens

    # ---------------------------------------------------------------- splicing
    def splice(
        self,
        speech_emb: torch.Tensor,
        speech_emb_lengths: torch.Tensor,
        prefix: torch.Tensor,
        prefix_lengths: torch.Tensor,
        suffix: torch.Tensor,
        suffix_lengths: torch.Tensor,
        text: Optional[torch.Tensor] = None,
        text_lengths: Optional[torch.Tensor] = None,
        left_pad: bool = False,
    ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """`splice_embeddings` with the LLM's embedding table and pad id."""
        return splice_embeddings(self.llm.embed, self.llm.pad_token_id, speech_emb,
                                 speech_emb_lengths, prefix, prefix_lengths, suffix,
                                 suffix_lengths, text, text_lengths, left_pad)

    # ---------------------------------------------------------------- training
    def forward(
        self,
        speech: Optional[torch.Tensor] = None,
        speech_lengths: Optional[torch.Tensor] = None,
        prefix: Optional[torch.Tensor] = None,
        prefix_lengths: Optional[torch.Tensor] = None,
        suffix: Optional[torch.Tensor] = None,
        suffix_lengths: Optional[torch.Tensor] = None,
        text: Optional[torch.Tensor] = None,
        text_lengths: Optional[torch.Tensor] = None,
        lang_id: Optional[torch.Tensor] = None,
        ctc_text: Optional[torch.Tensor] = None,
        ctc_text_lengths: Optional[torch.Tensor] = None,
        encoder_feats: Optional[torch.Tensor] = None,
        encoder_feats_lengths: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """Shapes: speech (B, L), prefix (B, P), suffix (B, S), text (B, N) = target + EOS,
        lang_id (B,) or (B, 1) long (with ``languages``; ``lang_id_lengths``, if a collate
        adds it, is ignored). ``ctc_text`` (B, C) (no EOS; the preprocessor emits it with
        ``ctc_text_name``, e.g. the transcript of a translation target) is what CTC trains on
        when given; otherwise CTC trains on the target without its EOS. Every argument is
        keyword-friendly (ESPnet calls ``model(**batch)``); all but the optional ones are needed.

        ``encoder_feats`` (B, T, D_enc) float + ``encoder_feats_lengths`` (B,) long, in place of
        ``speech``/``speech_lengths``: the frozen encoder's output read from the feature cache
        (`espnet_sllm.encoders.cache`; 0 frames for a text-only row). The frontend, specaug,
        normalize and encoder do not run (`cached_rows`); the projector, LLM, CTC and auxiliary
        heads see exactly what they see on the waveform. An encoder that trains, SpecAugment,
        encoder auxiliary outputs or an encoder that takes ``lang_id`` make it an error naming
        the config key (`encoder_cache_problems`). E.g. to time training with the cache::

            enc, enc_lens = model.encode(batch["speech"], batch["speech_lengths"])
            rest = {k: v for k, v in batch.items() if not k.startswith("speech")}
            loss, stats, _ = model(encoder_feats=enc, encoder_feats_lengths=enc_lens, **rest)

        Returns (loss, stats, weight); ``loss = (1-α)·CE + α·CTC + Σ βᵢ·auxᵢ``; stats: loss,
        loss_ce, acc [, loss_ctc] [, loss_<aux>, acc_<aux>, <other aux output> (its mean)].
        With ``ctc_weight: 1.0`` the LLM does not run: stats loss, loss_ctc, acc (CTC greedy
        token accuracy) and the auxiliary ones.

        Text-only rows (``speech_lengths`` 0): the frontend, encoder and projector run on the
        rows with audio only (`speech_embeddings`), a text-only row is spliced with 0 speech
        frames, and CE covers every row. CTC, the auxiliary heads and the encoder's auxiliary
        outputs (with their ``lang_id``) cover the rows with audio only, so loss_ctc and the
        auxiliary losses are means over those rows; with no such row they are NaN in the stats
        (ESPnet's reporter leaves NaN out of its averages) and add nothing to the loss. With
        ``ctc_weight: 1.0`` a row without audio is an error (nothing would train on it).
        """
        needed = dict(prefix=prefix, prefix_lengths=prefix_lengths, suffix=suffix,
                      suffix_lengths=suffix_lengths, text=text, text_lengths=text_lengths)
        if (speech is None) == (encoder_feats is None):
            raise ValueError("forward needs either speech (+ speech_lengths) or encoder_feats "
                             "(+ encoder_feats_lengths, a frozen-encoder cache), not "
                             + ("both" if speech is not None else "neither"))
        if encoder_feats is not None:
            needed["encoder_feats_lengths"] = encoder_feats_lengths
        else:
            needed["speech_lengths"] = speech_lengths
        missing = [k for k, v in needed.items() if v is None]
        if missing:
            raise TypeError(f"forward is missing {missing}")
        if int(text_lengths.min()) < 2:
            raise ValueError(
                "an utterance has an empty target (only EOS): filter empty texts (stage 3)"
            )
        # The input the batch's size, dtype and device come from.
        speech = speech if speech is not None else encoder_feats
        B = speech.size(0)
        lang_id = self._as_lang_id(lang_id, B)
        # enc, emb, aux: the rows with audio only (rows None: all rows; enc None: no row).
        if encoder_feats is not None:
            enc, enc_lens, aux, rows = self.cached_rows(encoder_feats, encoder_feats_lengths)
        else:
            enc, enc_lens, aux, rows = self._encode_rows(speech, speech_lengths, lang_id)
        if self.ctc_only and rows is not None:
            raise ValueError(
                "ctc_weight 1.0 trains CTC alone, on speech, but this batch has rows without "
                "audio (speech_lengths 0: text-only utterances); train text-only tasks with "
                "ctc_weight < 1"
            )
        audio_lang_id = lang_id if rows is None or lang_id is None else lang_id[rows]
        need_emb = not self.ctc_only or (self.ctc is not None and self.ctc_input == "projector")
        need_emb |= any(h.input == "projector" for h in self.aux_heads.values())
        need_emb &= enc is not None
        emb, emb_lens = self.project(enc, enc_lens) if need_emb else (None, None)
        stats: Dict[str, torch.Tensor] = {}
        loss = speech.new_zeros((), dtype=torch.float32)
        if not self.ctc_only:
            all_emb, all_emb_lens = self._scatter_rows(
                emb, emb_lens, rows, B, self.projector.output_size(),
                _param_dtype(self.projector, speech.dtype), speech.device,
            )
            embeds, mask, labels = self.splice(
                all_emb, all_emb_lens, prefix, prefix_lengths, suffix, suffix_lengths, text,
                text_lengths,
            )
            loss_ce, acc = self.target_loss(embeds, mask, labels)
            stats.update(loss_ce=loss_ce.detach(), acc=acc)
            loss = loss + (1 - self.ctc_weight) * loss_ce
        if self.ctc is not None:
            if ctc_text is not None:
                if ctc_text_lengths is None:
                    raise ValueError("ctc_text needs ctc_text_lengths >= 1 for every utterance")
                ys, ys_lens = ctc_text, ctc_text_lengths
            else:
                # The EOS at the end of each target is not a spoken token.
                ys, ys_lens = text, text_lengths - 1
            if rows is not None:
                ys, ys_lens = ys[rows], ys_lens[rows]
            if ctc_text is not None and ys_lens.numel() and int(ys_lens.min()) < 1:
                raise ValueError(
                    "ctc_text needs ctc_text_lengths >= 1 for every utterance with audio"
                )
            if enc is None:
                stats["loss_ctc"] = _nan(loss.device)
            else:
                ctc_in, ctc_lens = (emb, emb_lens) if self.ctc_input == "projector" else (
                    enc, enc_lens)
                # Class 0 is the blank: token i is class i + 1 (padding -1 becomes 0, unused).
                loss_ctc = self.ctc(ctc_in.float(), ctc_lens, ys + 1, ys_lens)
                loss = loss + self.ctc_weight * loss_ctc
                stats["loss_ctc"] = loss_ctc.detach()
                if self.ctc_only:
                    stats["acc"] = self.ctc_greedy_accuracy(ctc_in, ctc_lens, ys, ys_lens)
        if enc is None:
            # Same stats keys in every batch: ESPnet's reporter (and DDP's gather) need them.
            for key in self.aux_stat_keys():
                stats[key] = _nan(loss.device)
        else:
            for kind, head in self.aux_heads.items():
                x, x_lens = (enc, enc_lens) if head.input == "encoder" else (emb, emb_lens)
                for name, value in head(x, x_lens).items():
                    aux[name] = value
            loss = loss + self.aux_losses(aux, audio_lang_id, stats)
        stats["loss"] = loss.detach()
        loss, stats, weight = force_gatherable((loss, stats, B), loss.device)
        return loss, stats, weight

    def aux_stat_keys(self) -> List[str]:
        """The stats keys of the auxiliary outputs this model produces (`aux_losses`)."""
        names = list(getattr(self.encoder, "aux_output_names", ()) or ())
        for head in self.aux_heads.values():
            names += list(head.output_names)
        keys = []
        for name in names:
            keys += [f"loss_{name}", f"acc_{name}"] if name in AUX_LOSSES else [name]
        return keys

    def aux_losses(
        self,
        aux: Dict[str, torch.Tensor],
        lang_id: Optional[torch.Tensor],
        stats: Dict[str, torch.Tensor],
    ):
        """Σ βᵢ·auxᵢ over the auxiliary outputs (a tensor, or 0.0 when no β > 0); fills
        ``stats`` (loss_<name>, acc_<name> for a loss, the mean for any other output)."""
        total = 0.0
        for name in self.aux_weights:
            if name not in aux:
                raise ValueError(
                    f"model_conf.aux_weights names {name!r} but this batch's auxiliary outputs "
                    f"are {sorted(aux) or 'none'}"
                )
        for name, value in aux.items():
            if name in RESERVED_NAMES:
                raise ValueError(f"auxiliary output name {name!r} is reserved ({RESERVED_NAMES})")
            if name in AUX_LOSSES:
                loss_aux, acc_aux = AUX_LOSSES[name](value, lang_id)
                stats[f"loss_{name}"] = loss_aux.detach()
                stats[f"acc_{name}"] = acc_aux
                beta = self.aux_weights.get(name, 0.0)
                if beta:
                    total = total + beta * loss_aux
            else:
                stats[name] = value.detach().float().mean()
        return total

    @torch.no_grad()
    def ctc_greedy_accuracy(
        self, x: torch.Tensor, x_lens: torch.Tensor, ys: torch.Tensor, ys_lens: torch.Tensor
    ) -> torch.Tensor:
        """1 - token error rate of CTC greedy decoding, errors and reference tokens summed over
        the batch. x (B, T, D) CTC input, x_lens (B,), ys (B, N) LLM token ids, ys_lens (B,)."""
        import editdistance

        best = self.ctc.argmax(x.float())  # (B, T) classes, 0 = blank
        errors, total = 0, 0
        for b in range(best.size(0)):
            path = torch.unique_consecutive(best[b, : int(x_lens[b])]).tolist()
            hyp = [c - 1 for c in path if c != 0]
            ref = ys[b, : int(ys_lens[b])].tolist()
            errors += editdistance.eval(hyp, ref)
            total += len(ref)
        return torch.tensor(1.0 - errors / max(total, 1), device=x.device)

    def target_loss(
        self, embeds: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mean CE and accuracy over the target tokens.

        embeds (B, L, D), mask (B, L), labels (B, L) with IGNORE_ID off target -> (loss, acc).
        Logits exist only at the positions that predict a target (hidden states are gathered
        first), in chunks of ``logits_chunk`` rows recomputed in backward, in fp32: with mixed
        prompt and speech lengths the logits of whole rows would be most of the memory.
        """
        hidden = self.llm.hidden_states(embeds, mask)  # (B, L, D)
        target = labels[:, 1:]
        valid = target != IGNORE_ID
        h = hidden[:, :-1][valid]  # (N, D): position t predicts labels[t + 1]
        y = target[valid]  # (N,)
        loss_sum, correct = chunked_cross_entropy(h, y, self.llm.logits, self.logits_chunk,
                                                  self.lsm_weight)
        n = y.numel()
        return loss_sum / n, correct.float() / n

    def collect_feats(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs
    ) -> Dict[str, torch.Tensor]:
        """Frontend features for ``--collect_stats`` (the waveform when there is no frontend);
        rows without audio get 0 frames (`frontend_feats`)."""
        feats, feats_lengths = frontend_feats(self.frontend, speech, speech_lengths)
        return {"feats": feats, "feats_lengths": feats_lengths}

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
        **generate_kwargs,
    ) -> List[Tuple[List[int], float]]:
        """Decode a batch with transformers' ``generate`` on left-padded ``inputs_embeds``.

        Each utterance gets its own token budget ``min(max_new_tokens, 10 + ceil(seconds *
        max_tokens_per_second))`` so that a looping model stops, enforced per utterance (not per
        batch) so that batched decoding equals decoding each utterance alone. A text-only row
        (``speech_lengths`` 0: no audio, 0 speech frames, the encoder does not run for it) has
        no duration to bound it: its budget is ``max_new_tokens``. The speech side runs
        batch-invariantly (`speech_embeddings` with ``batch_invariant``): with any encoder, an
        utterance's speech embeddings in a batch equal its own to float rounding.
        Shapes: speech (B, L), prefix (B, P), suffix (B, S), lengths (B,).
        Returns one (token ids without EOS, score) per utterance; the score is the beam score
        (length-normalised log-probability) or, for greedy search, the sum of log-probabilities.
        ``lang_id`` (B,) or (B, 1) (with ``languages`` and language data) reaches an encoder
        that takes it; auxiliary heads do not run here. ``row_max_new_tokens`` (B,): a budget
        per row that replaces the rule above where it is not None (e.g. long answers of a
        question-answering task: ``sllm_inference --task_max_new_tokens sqa=512``).
        """
        from transformers import LogitsProcessorList

        from espnet_sllm.decoding.limits import PerUtteranceLengthLimit, utterance_budgets

        lang_id = self._as_lang_id(lang_id, speech.size(0))
        limits = utterance_budgets(speech_lengths.reshape(-1).tolist(), self.sample_rate,
                                   max_new_tokens, max_tokens_per_second, min_new_tokens,
                                   row_max_new_tokens)
        # Batch-invariant encoding: an utterance's hypothesis does not depend on its batch mates
        # (ESPnet encoders otherwise let the padding reach valid frames, see
        # encoders/batch_invariance.py).
        emb, emb_lens, _, _ = self.speech_embeddings(speech, speech_lengths, lang_id,
                                                     batch_invariant=True)
        embeds, mask, _ = self.splice(
            emb, emb_lens, prefix, prefix_lengths, suffix, suffix_lengths, left_pad=True
        )
        processor = PerUtteranceLengthLimit(limits, num_beams, self.llm.eos_token_id)
        out = self.llm.generate(
            embeds,
            mask,
            num_beams=num_beams,
            max_new_tokens=max(limits),
            min_new_tokens=min_new_tokens,
            no_repeat_ngram_size=no_repeat_ngram_size,
            length_penalty=length_penalty,
            repetition_penalty=repetition_penalty,
            do_sample=False,
            logits_processor=LogitsProcessorList([processor]),
            output_scores=True,
            return_dict_in_generate=True,
            **generate_kwargs,
        )
        seqs = out.sequences
        if getattr(out, "sequences_scores", None) is not None:
            scores = out.sequences_scores.tolist()
        else:
            trans = self.llm.model.compute_transition_scores(seqs, out.scores, normalize_logits=True)
            scores = []
            for b in range(seqs.size(0)):
                ok = seqs[b] != self.llm.pad_token_id
                ok &= torch.isfinite(trans[b])
                scores.append(float(trans[b][ok].sum()))
        results = []
        stops = {self.llm.eos_token_id, *getattr(self.llm, "extra_eos_ids", ())}
        for b in range(seqs.size(0)):
            ids = seqs[b].tolist()
            ends = [i for i, t in enumerate(ids) if t in stops]
            if ends:
                ids = ids[: ends[0]]
            results.append((ids, float(scores[b])))
        return results
