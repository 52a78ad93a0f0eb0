"""Parts of a language-adapted fusion of two speech encoders (Ideal-LLM, Xue et al., Eqs. 1-4).

    F_w (B, T_w, D_w), F_m (B, T_m, D_m)        two encoders' outputs (Whisper, MMS)
      -> TransformerAdapter each                 H_w (B, T_w, D), H_m (B, T_m, D)
      -> align_frames                            both (B, T_mix, D), T_mix = max(T_w, T_m) per utt
      -> LIDAdapter(H_w, H_m)                    LID logits (B, K) over the K languages
      -> LanguageWeightSelector(l)               w' = sigmoid(W[l]) (B,), l = argmax logits
      -> H_mix = H_w·(1 - w') + H_m·w'           (B, T_mix, D); w' weighs the second stream

`espnet_sllm.encoders.dual.DualEncoder` puts them together behind ESPnet's encoder contract.
Each part is a plain module with explicit sizes, usable on its own.
"""
from typing import Optional, Sequence, Tuple

import torch

from espnet_sllm.aux_losses import masked_mean


def valid_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """lengths (B,) -> (B, T) bool, True on the valid frames."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


class TransformerAdapter(torch.nn.Module):
    """An encoder's adapter: Linear (D_in -> D) then pre-LN Transformer encoder layers.

    No positional encoding: the encoder output it reads carries positions already (Whisper's
    sinusoids, MMS's convolutional positions). Padding frames are masked as keys, so the output
    of an utterance does not depend on the padding of the batch; the output at padding frames
    is set to 0.

    Args:
        input_size: D_in, the encoder's output size (1280 whisper-large-v3, 1024 mms-300m,
            1280 mms-1b).
        output_size: D (1280 in the recipes).
        num_layers: Transformer layers (Ideal-LLM: 4 Base, 9 Large); 0 = the Linear only.
        num_heads: attention heads (D % num_heads == 0).
        ffn_size: hidden size of each layer's feed-forward block.
        dropout: of attention, feed-forward and residual paths.

    forward(x (B, T, D_in), x_lens (B,) long) -> (B, T, D), in the adapter's dtype.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int = 1280,
        num_layers: int = 4,
        num_heads: int = 20,
        ffn_size: int = 3072,
        dropout: float = 0.1,
    ):
        super().__init__()
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        if output_size % num_heads:
            raise ValueError(f"output_size {output_size} is not a multiple of num_heads "
                             f"{num_heads}")
        self.input_linear = torch.nn.Linear(input_size, output_size)
        self.layers = torch.nn.ModuleList(
            torch.nn.TransformerEncoderLayer(
                output_size, num_heads, ffn_size, dropout, batch_first=True, norm_first=True)
            for _ in range(num_layers))
        # Pre-LN layers leave the residual stream unnormalised: one final norm, as in Whisper.
        self.final_norm = torch.nn.LayerNorm(output_size) if num_layers else torch.nn.Identity()

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor) -> torch.Tensor:
        x = self.input_linear(x.to(self.input_linear.weight.dtype))
        mask = valid_mask(x_lens.to(x.device), x.size(1))  # (B, T)
        for layer in self.layers:
            # src_key_padding_mask: True = ignore as key. Passed by keyword; the layer's own
            # fast path (nested tensors) is off in training and gives the same numbers.
            x = layer(x, src_key_padding_mask=~mask)
        x = self.final_norm(x)
        return x * mask.unsqueeze(-1).to(x.dtype)


def align_frames(
    h_w: torch.Tensor, w_lens: torch.Tensor, h_m: torch.Tensor, m_lens: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Give both streams the same frames: each utterance's shorter stream gets zero ("blank")
    frames after its own valid frames, up to T_mix = max(T_w, T_m) of that utterance.

    h_w (B, T_w', D), w_lens (B,); h_m (B, T_m', D), m_lens (B,) -> (h_w (B, T, D),
    h_m (B, T, D), mix_lens (B,)) with mix_lens = max(w_lens, m_lens) and T = max(mix_lens).
    Frames beyond a stream's own length are 0 (whatever the input held there). For Whisper
    and MMS on the same audio T_w - T_m is 0 or 1.
    """
    if h_w.size(0) != h_m.size(0) or h_w.size(-1) != h_m.size(-1):
        raise ValueError(f"align_frames: streams (B, T, D) {tuple(h_w.shape)} and "
                         f"{tuple(h_m.shape)} differ in B or D")
    mix_lens = torch.maximum(w_lens, m_lens)
    T = int(mix_lens.max()) if mix_lens.numel() else 0

    def fit(h: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        h = h[:, :T]
        if h.size(1) < T:
            h = torch.nn.functional.pad(h, (0, 0, 0, T - h.size(1)))
        return h * valid_mask(lens.to(h.device), T).unsqueeze(-1).to(h.dtype)

    return fit(h_w, w_lens), fit(h_m, m_lens), mix_lens


class LIDAdapter(torch.nn.Module):
    """Language ID from both streams: mean over each stream's valid frames, summed, one Linear.

    Args:
        input_size: D of the streams.
        num_languages: K.

    forward(h_w (B, T_w, D), w_lens (B,), h_m (B, T_m, D) or None, m_lens (B,) or None)
        -> logits (B, K) (h_m None: the first stream only).
    """

    def __init__(self, input_size: int, num_languages: int):
        super().__init__()
        if num_languages < 1:
            raise ValueError(f"num_languages must be >= 1, got {num_languages}")
        self.linear = torch.nn.Linear(input_size, num_languages)

    def forward(
        self,
        h_w: torch.Tensor,
        w_lens: torch.Tensor,
        h_m: Optional[torch.Tensor] = None,
        m_lens: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        dtype = self.linear.weight.dtype
        pooled = masked_mean(h_w.to(dtype), w_lens)  # (B, D)
        if h_m is not None:
            pooled = pooled + masked_mean(h_m.to(dtype), m_lens)
        return self.linear(pooled)


class LanguageWeightSelector(torch.nn.Module):
    """One learnable scalar per language; w' = sigmoid(W[l]) weighs the second stream.

    Args:
        languages: the K language codes (index k = W[k]); kept for reports (Fig. 2).
        init: initial value of every W[k] (0: w' = 0.5, both streams equal).

    forward(lang (B,) long) -> w' (B,) float32. ``weights()`` -> sigmoid(W) (K,).
    Only W[l] of the selected languages gets a gradient.
    """

    def __init__(self, languages: Sequence[str], init: float = 0.0):
        super().__init__()
        if not languages:
            raise ValueError("LanguageWeightSelector needs the list of languages")
        self.languages = list(languages)
        self.weight = torch.nn.Parameter(torch.full((len(self.languages),), float(init)))

    def forward(self, lang: torch.Tensor) -> torch.Tensor:
        lang = lang.reshape(-1).long().to(self.weight.device)
        if lang.numel() and (int(lang.min()) < 0 or int(lang.max()) >= self.weight.numel()):
            raise ValueError(f"language index {lang.tolist()} out of range for "
                             f"{self.weight.numel()} languages {self.languages}")
        return torch.sigmoid(self.weight.float()[lang])

    def weights(self) -> torch.Tensor:
        """sigmoid(W) (K,) float32, detached: the MMS weight of every language."""
        return torch.sigmoid(self.weight.detach().float())


def mix(h_w: torch.Tensor, h_m: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """H_mix = H_w·(1 - w') + H_m·w': h_w, h_m (B, T, D), w (B,) -> (B, T, D)."""
    w = w.to(h_w.dtype)[:, None, None]
    return h_w * (1 - w) + h_m * w
