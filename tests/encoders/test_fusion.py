"""Ideal-LLM fusion parts (espnet_sllm/encoders/fusion.py), checked by hand."""
import pytest
import torch

from espnet_sllm.encoders.fusion import (
    LanguageWeightSelector,
    LIDAdapter,
    TransformerAdapter,
    align_frames,
    mix,
)

LANGS = ["en", "de", "nl", "fr", "es", "it", "pt", "pl"]


def test_align_frames_equal_lengths_is_identity_on_valid_frames():
    h_w, h_m = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    lens = torch.tensor([5, 3])
    a_w, a_m, mix_lens = align_frames(h_w, lens, h_m, lens)
    assert mix_lens.tolist() == [5, 3]
    assert a_w.shape == a_m.shape == (2, 5, 3)
    assert torch.equal(a_w[0], h_w[0]) and torch.equal(a_m[0], h_m[0])
    assert torch.equal(a_w[1, :3], h_w[1, :3])
    # frames beyond an utterance's length are zero whatever the input held
    assert not a_w[1, 3:].any() and not a_m[1, 3:].any()


def test_align_frames_appends_blank_frames_to_the_shorter_stream():
    # Whisper gives T_m + 1 frames for some lengths: MMS gets one blank frame at its end.
    h_w, h_m = torch.randn(2, 6, 4), torch.randn(2, 5, 4) + 10
    w_lens, m_lens = torch.tensor([6, 4]), torch.tensor([5, 4])
    a_w, a_m, mix_lens = align_frames(h_w, w_lens, h_m, m_lens)
    assert mix_lens.tolist() == [6, 4] and a_w.shape == a_m.shape == (2, 6, 4)
    assert torch.equal(a_m[0, :5], h_m[0]) and not a_m[0, 5].any()
    assert torch.equal(a_w[0], h_w[0])
    assert not a_m[1, 4:].any() and not a_w[1, 4:].any()
    # the other way round: the MMS stream longer
    b_m, b_w, lens = align_frames(h_m, m_lens + 2, h_w, w_lens)
    assert lens.tolist() == [7, 6] and b_m.shape == (2, 7, 4)
    assert not b_w[0, 6:].any() and not b_m[0, 5:].any()


def test_align_frames_rejects_other_widths():
    with pytest.raises(ValueError, match="differ in B or D"):
        align_frames(torch.zeros(1, 2, 3), torch.tensor([2]), torch.zeros(1, 2, 4),
                     torch.tensor([2]))


def test_lid_adapter_is_pooled_sum_then_linear():
    torch.manual_seed(0)
    lid = LIDAdapter(4, len(LANGS))
    h_w, h_m = torch.randn(2, 5, 4), torch.randn(2, 6, 4)
    w_lens, m_lens = torch.tensor([5, 2]), torch.tensor([6, 3])
    got = lid(h_w, w_lens, h_m, m_lens)
    for b in range(2):
        pooled = h_w[b, : w_lens[b]].mean(0) + h_m[b, : m_lens[b]].mean(0)
        want = pooled @ lid.linear.weight.T + lid.linear.bias
        assert torch.allclose(got[b], want, atol=1e-6)
    assert got.shape == (2, len(LANGS))


def test_selector_by_hand_and_gradient_reaches_only_the_selected_language():
    sel = LanguageWeightSelector(LANGS)
    assert torch.equal(sel.weights(), torch.full((8,), 0.5))  # init 0: w' = 1/2
    with torch.no_grad():
        sel.weight.copy_(torch.arange(8.0) - 4)
    lang = torch.tensor([2, 2, 7])
    w = sel(lang)
    assert torch.allclose(w, torch.sigmoid(torch.tensor([-2.0, -2.0, 3.0])))
    h_w, h_m = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    out = mix(h_w, h_m, w)
    assert torch.allclose(out[2], h_w[2] * (1 - w[2]) + h_m[2] * w[2])
    out.sum().backward()
    grad = sel.weight.grad
    assert set(torch.nonzero(grad).flatten().tolist()) == {2, 7}
    with pytest.raises(ValueError, match="out of range"):
        sel(torch.tensor([8]))


def test_adapter_masks_padding_and_is_batch_invariant():
    torch.manual_seed(0)
    ad = TransformerAdapter(6, output_size=8, num_layers=2, num_heads=2, ffn_size=16,
                            dropout=0.0).eval()
    x = torch.randn(2, 7, 6)
    lens = torch.tensor([7, 4])
    x2 = x.clone()
    x2[1, 4:] = 100.0  # garbage beyond the length
    y = ad(x2, lens)
    assert y.shape == (2, 7, 8) and not y[1, 4:].any()
    alone = ad(x[1:2, :4], torch.tensor([4]))
    assert torch.allclose(y[1, :4], alone[0], atol=1e-5)
    # Ideal-LLM's adapter size: 1280, 20 heads, FFN 3072: 14.43 M parameters per layer
    big = TransformerAdapter(1280, 1280, num_layers=1, num_heads=20, ffn_size=3072)
    per_layer = sum(p.numel() for p in big.layers[0].parameters())
    assert per_layer == 4 * 1280 * 1280 + 4 * 1280 + 2 * 1280 * 3072 + 3072 + 1280 + 4 * 1280
    with pytest.raises(ValueError, match="multiple of num_heads"):
        TransformerAdapter(4, output_size=10, num_heads=3)
