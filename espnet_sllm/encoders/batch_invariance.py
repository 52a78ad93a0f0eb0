"""Batch-invariant encoding with ESPnet's encoders: an utterance encodes to the same frames (to
float rounding) in a padded batch as alone.

ESPnet's frontend + conformer (and transformer, branchformer, E-Branchformer) give a padded
utterance another output than alone, measured on the tiny conformer of the tests (fbank frontend,
utterance_mvn, ``input_layer: conv2d``, 1 block; 4 utterances of 0.26-1 s): up to 0.22-0.35 on
every output frame, and 2 more frames. Four causes; each alone, left unfixed with the other three
fixed, still gives the max abs difference in brackets (legacy / latest relative positions):

1. **Frontend** (``DefaultFrontend``'s STFT, ``center=True``): the last ``n_fft / 2`` samples of
   each frame window past the end are the reflection of the signal when alone but the batch's
   zero padding in a batch, so the last 1-2 frames differ (frame counts agree). UtteranceMVN
   then subtracts a mean over those frames from every frame: every frame differs [0.034].
2. **Subsampling lengths** (``Conv2dSubsampling`` and the other ``Conv*Subsampling``): the output
   mask is the input mask sliced ``[:, :, :-2:2]`` per conv. Alone that drops the frames the
   kernel cannot cover; in a batch the slice is taken at the batch's length, so a shorter
   utterance keeps ``ceil(T/2)`` instead of ``floor((T-1)/2)`` frames per conv (when the batch is
   2 or more frames longer): one more per conv (+2 for conv2d), each computed partly from padding. The mask says they are valid, so
   self-attention of every valid frame attends to them and their length is returned [0.40].
3. **Legacy relative-position attention** (``rel_pos_type: legacy``, ESPnet's conformer default:
   ``LegacyRelPositionMultiHeadedAttention``): its ``rel_shift`` scores query i against key
   j <= i with the positional embedding of index ``T - 1 - (i - j)``, T the *padded* length
   (``pe[:T]`` runs forwards, not backwards as in Transformer-XL), so every valid frame's scores
   depend on the batch's longest utterance [0.064 / none]. ``rel_pos_type: latest`` (embeddings
   for -(T-1)..T-1) does not.
4. **Convolutions over time inside the layers** (the conformer's ``ConvolutionModule`` depthwise
   conv, kernel 31; the cgMLP conv of (E-)Branchformer, E-Branchformer's fusion conv, a
   convolutional positional embedding): ESPnet convolves the padded sequence as is, so the padded
   frames' values (not zero: every layer's biases, the -mean of utterance_mvn) reach the last
   ``kernel // 2`` valid frames; alone the conv pads with zeros there [0.20].

The fix (`ExactPadding`, used by ``ESPnetSLLMModel.generate``): the frontend runs per utterance
(the normalisation then sees each utterance's own frames; utterance_mvn and global_mvn work per
row of a zero-padded batch), the subsampled lengths are recomputed from each utterance's own
length with the conv arithmetic ``T' = (T + 2p - d(k-1) - 1) // s + 1`` (equal to ESPnet's mask
slicing alone; its convs have no time padding, so the valid outputs read valid inputs only) and
replace the embed's mask, the legacy ``rel_shift`` reads each utterance's own length
(`legacy_rel_shift`), and every ``Conv1d`` after the subsampling sees its input zeroed beyond
each utterance's length (as the conv's own zero padding would be alone). Attention already
gives masked keys exactly 0 weight, and every other module works per frame. The encoder output
is zeroed beyond the lengths.

What remains is float rounding: a matrix product or reduction over a longer (padded) time axis
may sum in another order (max abs difference < 1e-6 in fp32 on the tiny conformer, both
relative-position types; tests/decoding/test_sorted_batches.py checks 1e-5 for conformer,
E-Branchformer and transformer encoders, and equal greedy and beam-4 hypotheses).

Training (``ESPnetSLLMModel.forward``) keeps ESPnet's batching as it is: the checkpoints were
trained with it, and an utterance alone (``batch_size: 1``), which decoding now reproduces in any
batch, is how ESPnet's own decoding sees it.

An encoder this module does not know (or a structure it cannot make exact, see `unsupported`)
is encoded one utterance at a time by the model instead: exact, only slower.
"""
from typing import List, Optional

import torch
from espnet.nets.pytorch_backend.transformer import subsampling as espnet_subsampling
from espnet.nets.pytorch_backend.transformer.attention import (
    LegacyRelPositionMultiHeadedAttention,
)

#: ESPnet's subsampling input layers: a ``conv`` Sequential of convolutions without time padding
#: and a mask sliced once per conv (what `ExactPadding` replaces).
SUBSAMPLING_CLASSES = tuple(
    getattr(espnet_subsampling, name)
    for name in ("Conv1dSubsampling1", "Conv1dSubsampling2", "Conv1dSubsampling3",
                 "Conv2dSubsampling", "Conv2dSubsampling1", "Conv2dSubsampling2",
                 "Conv2dSubsampling6", "Conv2dSubsampling8")
    if hasattr(espnet_subsampling, name)
)


def _encoder_classes():
    from espnet2.asr.encoder.branchformer_encoder import BranchformerEncoder
    from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
    from espnet2.asr.encoder.e_branchformer_encoder import EBranchformerEncoder
    from espnet2.asr.encoder.transformer_encoder import TransformerEncoder

    return (ConformerEncoder, TransformerEncoder, EBranchformerEncoder, BranchformerEncoder)


def _subsampling_convs(embed: torch.nn.Module) -> List[torch.nn.Module]:
    """The convolutions of a subsampling embed, in order (they change the time resolution)."""
    return [m for m in embed.conv.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d))]


def unsupported(encoder: torch.nn.Module) -> Optional[str]:
    """Why `ExactPadding` cannot make ``encoder`` batch-invariant, or None when it can.

    Supported: ESPnet's conformer, transformer, branchformer and E-Branchformer encoders with a
    subsampling input layer of `SUBSAMPLING_CLASSES`, a per-frame one (``linear``) or none, and
    no 2-d convolution inside the layers.
    """
    classes = _encoder_classes()
    if not isinstance(encoder, classes):
        return (f"{type(encoder).__name__} is not one of "
                f"{', '.join(c.__name__ for c in classes)}")
    embed = getattr(encoder, "embed", None)
    if isinstance(embed, SUBSAMPLING_CLASSES):
        for conv in _subsampling_convs(embed):
            if conv.padding[0] != 0 or conv.padding_mode != "zeros":
                return f"{type(embed).__name__} pads the time axis (padding {conv.padding})"
    elif embed is not None:
        if isinstance(embed, torch.nn.Embedding) or any(
            isinstance(m, torch.nn.Embedding) for m in embed.modules()
        ):
            return "the input layer is a token embedding"
        if any(isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)) for m in embed.modules()):
            return f"input layer {type(embed).__name__} has a 2-d convolution"
    for m in encoder.encoders.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)):
            return f"a layer has a {type(m).__name__}"
    return None


def subsampled_lengths(embed: Optional[torch.nn.Module], lengths: torch.Tensor) -> torch.Tensor:
    """(B,) input frame counts -> (B,) output frame counts of ``embed`` for each utterance alone.

    For a subsampling embed, each conv maps T to ``(T + 2p - d(k-1) - 1) // s + 1`` on the time
    axis (its first kernel dimension); a count that no frame survives is 0. Any other input layer
    keeps the lengths.
    """
    if not isinstance(embed, SUBSAMPLING_CLASSES):
        return lengths
    t = lengths
    for conv in _subsampling_convs(embed):
        k, s, p, d = conv.kernel_size[0], conv.stride[0], conv.padding[0], conv.dilation[0]
        t = torch.div(t + 2 * p - d * (k - 1) - 1, s, rounding_mode="floor") + 1
        t = t.clamp(min=0)
    return t


def legacy_rel_shift(
    x: torch.Tensor, lengths: torch.Tensor, zero_triu: bool = False
) -> torch.Tensor:
    """``LegacyRelPositionMultiHeadedAttention.rel_shift`` as each utterance alone would do it.

    x (B, H, T, T): ``x[b, h, i, k]`` = query i against the positional embedding k; lengths (B,).
    ESPnet's shift of a T x T matrix gives, at (i, j): ``x[i, T - 1 - i + j]`` for j <= i, 0 for
    j = i + 1 and ``x[i + 1, j - i - 2]`` for j > i + 1. Only the first depends on T: here it
    reads ``x[i, n - 1 - i + j]`` with n the utterance's own length, which is what the shift of
    the utterance alone (T = n) reads. Entries of padded rows or columns are meaningless.
    """
    B, H, T, T2 = x.shape
    i = torch.arange(T, device=x.device)[:, None]
    j = torch.arange(T2, device=x.device)[None, :]
    n = lengths.to(x.device).view(-1, 1, 1)
    low = x.gather(-1, (n - 1 - i + j).clamp(0, T2 - 1)[:, None].expand(B, H, T, T2))
    below = torch.cat([x[:, :, 1:], x.new_zeros(B, H, 1, T2)], dim=2)  # row i + 1
    high = below.gather(-1, (j - i - 2).clamp(0, T2 - 1).expand(B, H, T, T2))
    out = torch.where(j <= i, low, high.masked_fill(j == i + 1, 0.0))
    if zero_triu:
        out = out * torch.tril(torch.ones(T, T2, device=x.device, dtype=x.dtype), T2 - T)
    return out


class ExactPadding:
    """Context manager: while active, ``encoder(feats, feats_lengths)`` computes every
    utterance's frames from its own frames only (module docstring). Not re-entrant; one forward
    at a time.

    Usage::

        with ExactPadding(encoder, feats_lengths, feats.size(1)) as exact:
            enc, enc_lens, states = encoder(feats, feats_lengths)
        enc = exact.zero_padding(enc)

    Args:
        encoder: an encoder `unsupported` accepts (else ValueError).
        lengths: (B,) long, the valid frame counts of the encoder input (B, T, F).
        total: T, the padded time size of that input.
    """

    def __init__(self, encoder: torch.nn.Module, lengths: torch.Tensor, total: int):
        reason = unsupported(encoder)
        if reason is not None:
            raise ValueError(f"ExactPadding: {reason}")
        self.encoder = encoder
        embed = encoder.embed
        #: (B,) the output frame counts of each utterance alone.
        self.lengths = subsampled_lengths(embed, lengths)
        self.total = int(subsampled_lengths(embed, torch.tensor([total]))[0])
        # (B, T'): True on valid frames.
        self.mask = torch.arange(self.total, device=lengths.device)[None, :] < self.lengths[:, None]
        self._handles = []
        self._patched = []

    def __enter__(self) -> "ExactPadding":
        embed = self.encoder.embed
        after_subsampling = []
        if isinstance(embed, SUBSAMPLING_CLASSES):
            self._handles.append(embed.register_forward_hook(self._replace_mask))
            inside = set(map(id, _subsampling_convs(embed)))
            # e.g. a convolutional positional embedding in the subsampling's output layer
            after_subsampling += [m for m in embed.modules() if isinstance(m, torch.nn.Conv1d)
                                  and id(m) not in inside]
        elif embed is not None:
            after_subsampling += [m for m in embed.modules() if isinstance(m, torch.nn.Conv1d)]
        after_subsampling += [m for m in self.encoder.encoders.modules()
                              if isinstance(m, torch.nn.Conv1d)]
        for conv in after_subsampling:
            self._handles.append(conv.register_forward_pre_hook(self._zero_conv_input))
        # An instance attribute shadows the class's rel_shift until __exit__ deletes it.
        self._patched = [m for m in self.encoder.modules()
                         if isinstance(m, LegacyRelPositionMultiHeadedAttention)]
        for m in self._patched:
            m.rel_shift = self._rel_shift_of(m)
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        for m in self._patched:
            del m.rel_shift
        self._patched = []

    def _rel_shift_of(self, module):
        def rel_shift(x: torch.Tensor) -> torch.Tensor:
            if x.size(0) != self.lengths.size(0) or x.size(-1) != self.total:
                raise RuntimeError(f"ExactPadding: rel_shift of {tuple(x.shape)}, expected "
                                   f"(B={self.lengths.size(0)}, H, T'={self.total}, T')")
            return legacy_rel_shift(x, self.lengths, module.zero_triu)

        return rel_shift

    def _replace_mask(self, module, inputs, output):
        """Forward hook of the subsampling: its (x, mask (B, 1, T')) with the exact mask."""
        x, mask = output
        if mask is None:
            return output
        if mask.size(-1) != self.total:
            raise RuntimeError(f"ExactPadding: {type(module).__name__} gave {mask.size(-1)} "
                               f"frames, the conv arithmetic {self.total}")
        return x, self.mask[:, None, :].to(mask.device)

    def _zero_conv_input(self, module, inputs):
        """Pre-hook of a Conv1d over time: input (B, C, T') zeroed beyond each length, as the
        conv's own zero padding is when the utterance is alone."""
        x = inputs[0]
        if x.dim() != 3 or x.size(0) != self.mask.size(0) or x.size(-1) != self.total:
            raise RuntimeError(
                f"ExactPadding: a Conv1d of {type(self.encoder).__name__} got input "
                f"{tuple(x.shape)}, expected (B={self.mask.size(0)}, C, T'={self.total})"
            )
        return (x * self.mask[:, None, :].to(x.dtype),) + tuple(inputs[1:])

    def zero_padding(self, enc: torch.Tensor) -> torch.Tensor:
        """Encoder output (B, T', D) with the frames beyond each length set to 0."""
        return enc.masked_fill(~self.mask[:, : enc.size(1), None], 0.0)
