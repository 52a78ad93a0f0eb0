"""HFWhisperEncoder on tiny random Whisper checkpoints loaded through the real from_pretrained path."""
import os

import pytest
import torch
from transformers import WhisperFeatureExtractor, WhisperModel

from espnet_sllm.encoders.whisper import HFWhisperEncoder
from espnet_sllm.testing.whisper import make_tiny_whisper

SR = 16000
WINDOW = 30 * SR
LENS = [16000, 23457, 8001]


def frames(num_samples):
    return (num_samples // 160 - 1) // 2 + 1


@pytest.fixture(scope="module")
def tiny80(tmp_path_factory):
    return make_tiny_whisper(str(tmp_path_factory.mktemp("whisper80")))


@pytest.fixture(scope="module")
def batch():
    gen = torch.Generator().manual_seed(0)
    xs = torch.zeros(len(LENS), max(LENS))
    for i, n in enumerate(LENS):
        # A decaying tone plus noise: a non-flat spectrum exercises the max-8 dynamic-range clamp.
        t = torch.arange(n) / SR
        xs[i, :n] = 0.3 * torch.sin(2 * torch.pi * (200 + 100 * i) * t) * torch.exp(-t) + 0.01 * torch.randn(
            n, generator=gen
        )
        # Garbage beyond ilens must be ignored.
        xs[i, n:] = 1.0
    return xs, torch.tensor(LENS)


@pytest.fixture(scope="module")
def enc_padded(tiny80):
    # transformers' default attention (sdpa): 2x faster than eager on CPU for the 1500-frame window.
    return HFWhisperEncoder(model_name_or_path=tiny80)


@pytest.fixture(scope="module")
def enc_real(tiny80):
    return HFWhisperEncoder(model_name_or_path=tiny80, pad_to_30s=False, attn_implementation="eager")


def test_log_mel_matches_feature_extractor(tiny80, enc_padded, batch):
    xs, ilens = batch
    fe = WhisperFeatureExtractor.from_pretrained(tiny80)
    wavs = [xs[i, :n].numpy() for i, n in enumerate(LENS)]

    # padded 30 s: padding="max_length" is the extractor's default
    ref = fe(wavs, sampling_rate=SR, return_tensors="pt").input_features
    padded = torch.zeros(len(LENS), WINDOW)
    for i, n in enumerate(LENS):
        padded[i, :n] = xs[i, :n]
    mine = enc_padded.log_mel(padded)
    assert mine.shape == ref.shape == (3, 80, 3000)
    torch.testing.assert_close(mine, ref, atol=1e-4, rtol=0)

    # real length: one utterance at a time (padding="longest" of one = no padding)
    for i, n in enumerate(LENS):
        ref = fe(wavs[i], sampling_rate=SR, padding="longest", return_tensors="pt").input_features
        mine = enc_padded.log_mel(xs[i : i + 1, :n])
        assert mine.shape == ref.shape == (1, 80, n // 160)
        torch.testing.assert_close(mine, ref, atol=1e-4, rtol=0)


def test_padded_matches_hf_encoder(tiny80, enc_padded, batch):
    xs, ilens = batch
    fe = WhisperFeatureExtractor.from_pretrained(tiny80)
    feats = fe([xs[i, :n].numpy() for i, n in enumerate(LENS)], sampling_rate=SR, return_tensors="pt")
    hf = WhisperModel.from_pretrained(tiny80).get_encoder()
    with torch.no_grad():
        ref = hf(feats.input_features).last_hidden_state
    ys, olens, states = enc_padded(xs, ilens)
    assert states is None
    assert olens.tolist() == [frames(n) for n in LENS] == [50, 73, 25]
    assert ys.shape == (3, 73, 64) and ys.dtype == torch.float32
    for i, t in enumerate(olens.tolist()):
        torch.testing.assert_close(ys[i, :t], ref[i, :t], atol=1e-5, rtol=1e-4)
        assert ys[i, t:].abs().sum() == 0


@pytest.mark.parametrize("mode", ["pad_to_30s", "real_eager", "real_sdpa"])
def test_olens_and_batch_invariance(tiny80, enc_padded, enc_real, batch, mode):
    if mode == "pad_to_30s":
        enc = enc_padded
    elif mode == "real_eager":
        enc = enc_real
    else:
        enc = HFWhisperEncoder(model_name_or_path=tiny80, pad_to_30s=False, attn_implementation="sdpa")
    xs, ilens = batch
    ys, olens, _ = enc(xs, ilens)
    assert olens.tolist() == [frames(n) for n in LENS]
    assert ys.shape == (3, max(olens), enc.output_size())
    for i, n in enumerate(LENS):
        y1, o1, _ = enc(xs[i : i + 1, :n], ilens[i : i + 1])
        assert o1.item() == olens[i].item()
        torch.testing.assert_close(ys[i, : o1.item()], y1[0], atol=1e-5, rtol=0)


def test_real_length_matches_hf_modules_on_full_window(tiny80, enc_real):
    # On exactly 30 s the real-length path sees the same 3000 frames as HF's own forward.
    x = 0.1 * torch.randn(1, WINDOW, generator=torch.Generator().manual_seed(1))
    fe = WhisperFeatureExtractor.from_pretrained(tiny80)
    feats = fe(x[0].numpy(), sampling_rate=SR, return_tensors="pt").input_features
    hf = WhisperModel.from_pretrained(tiny80, attn_implementation="eager").get_encoder()
    with torch.no_grad():
        ref = hf(feats).last_hidden_state
    ys, olens, _ = enc_real(x, torch.tensor([WINDOW]))
    assert olens.item() == 1500
    torch.testing.assert_close(ys, ref, atol=1e-5, rtol=1e-4)


def test_frozen_has_no_grad(enc_real, batch):
    xs, ilens = batch
    enc_real.train()
    assert not enc_real.encoder.training, "a frozen encoder must stay in eval mode"
    assert not any(p.requires_grad for p in enc_real.parameters())
    ys, _, _ = enc_real(xs, ilens)
    assert not ys.requires_grad
    enc_real.eval()


@pytest.mark.parametrize("pad_to_30s", [True, False])
def test_not_frozen_backward(tiny80, batch, pad_to_30s):
    enc = HFWhisperEncoder(
        model_name_or_path=tiny80, pad_to_30s=pad_to_30s, freeze=False, gradient_checkpointing=True
    )
    enc.train()
    assert enc.encoder.training
    xs, ilens = batch
    ys, olens, _ = enc(xs, ilens)
    ys.sum().backward()
    for name in ("conv1.weight", "layers.0.self_attn.q_proj.weight", "layers.1.fc2.weight"):
        grad = enc.encoder.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name


@pytest.mark.parametrize("pad_to_30s", [True, False])
def test_long_audio(tmp_path, pad_to_30s):
    # A 1 s window (50 positions) keeps the test fast; the split rule does not depend on the window size.
    path = make_tiny_whisper(str(tmp_path), d_model=32, encoder_layers=1, max_source_positions=50)
    window = SR
    n = 2 * window + 1234
    x = 0.1 * torch.randn(1, n, generator=torch.Generator().manual_seed(2))
    strict = HFWhisperEncoder(model_name_or_path=path, pad_to_30s=pad_to_30s)
    assert strict.window_samples == window
    with pytest.raises(ValueError, match=r"2\.08 s.*long_audio: split"):
        strict(x, torch.tensor([n]))

    split = HFWhisperEncoder(model_name_or_path=path, pad_to_30s=pad_to_30s, long_audio="split")
    ys, olens, _ = split(x, torch.tensor([n]))
    # ceil(33234 / 16000) = 3 pieces of 11078 samples -> 69 mel frames -> 35 encoder frames each
    pieces = [11078, 11078, 11078]
    assert olens.item() == sum(frames(p) for p in pieces) == 105
    assert ys.shape == (1, 105, 32)
    start, parts = 0, []
    for p in pieces:
        parts.append(split(x[:, start : start + p], torch.tensor([p]))[0][0])
        start += p
    torch.testing.assert_close(ys[0], torch.cat(parts), atol=1e-5, rtol=0)

    # Uneven split: the first L % k pieces get one extra sample.
    ys, olens, _ = split(x[:, : n - 1], torch.tensor([n - 1]))
    assert olens.item() == frames(11078) + 2 * frames(11077)


@pytest.mark.parametrize(
    "num_mel_bins,architecture",
    [(80, "WhisperModel"), (128, "WhisperForConditionalGeneration")],
)
def test_loads_80_and_128_mel_checkpoints(tmp_path, num_mel_bins, architecture):
    path = make_tiny_whisper(
        str(tmp_path), num_mel_bins=num_mel_bins, d_model=32, encoder_layers=1, architecture=architecture
    )
    enc = HFWhisperEncoder(model_name_or_path=path, pad_to_30s=False)
    ref = WhisperModel.from_pretrained(path).get_encoder()
    for name, p in ref.state_dict().items():
        torch.testing.assert_close(enc.encoder.state_dict()[name], p, atol=0, rtol=0)
    assert enc.mel_filters.shape == (num_mel_bins, 201)
    assert enc.output_size() == 32
    ys, olens, _ = enc(0.1 * torch.randn(2, 4000), torch.tensor([4000, 3200]))
    assert ys.shape == (2, 13, 32) and olens.tolist() == [13, 10]

    # Without preprocessor_config.json the mel settings come from config.num_mel_bins.
    os.remove(os.path.join(path, "preprocessor_config.json"))
    fallback = HFWhisperEncoder(model_name_or_path=path, pad_to_30s=False)
    torch.testing.assert_close(fallback.mel_filters, enc.mel_filters)


def test_intermediate_layer_and_dtype(tiny80, batch):
    xs, ilens = batch
    enc = HFWhisperEncoder(model_name_or_path=tiny80, layer=1)
    assert len(enc.encoder.layers) == 1
    fe = WhisperFeatureExtractor.from_pretrained(tiny80)
    feats = fe(xs[0, : LENS[0]].numpy(), sampling_rate=SR, return_tensors="pt").input_features
    hf = WhisperModel.from_pretrained(tiny80).get_encoder()
    with torch.no_grad():
        ref = hf(feats, output_hidden_states=True).hidden_states[1]
    ys, olens, _ = enc(xs[:1], ilens[:1])
    torch.testing.assert_close(ys[0], ref[0, : olens.item()], atol=1e-5, rtol=1e-4)

    bf16 = HFWhisperEncoder(model_name_or_path=tiny80, pad_to_30s=False, dtype="bfloat16")
    assert bf16.encoder.dtype == torch.bfloat16
    ys, olens, _ = bf16(xs, ilens)
    assert ys.dtype == torch.float32 and torch.isfinite(ys).all()


def test_bad_input(tiny80, enc_real):
    with pytest.raises(ValueError, match=r"\(B, L\).*frontend: none"):
        enc_real(torch.zeros(2, 100, 80), torch.tensor([100, 100]))
    with pytest.raises(ValueError, match="ilens must have shape"):
        enc_real(torch.zeros(2, 1000), torch.tensor([1000]))
    with pytest.raises(ValueError, match="exceeds the padded length"):
        enc_real(torch.zeros(1, 1000), torch.tensor([1001]))
    with pytest.raises(ValueError, match="at least 400"):
        enc_real(torch.zeros(1, 1000), torch.tensor([399]))
    with pytest.raises(ValueError, match="long_audio"):
        HFWhisperEncoder(model_name_or_path=tiny80, long_audio="truncate")
    with pytest.raises(ValueError, match="dtype"):
        HFWhisperEncoder(model_name_or_path=tiny80, dtype="int8")
    with pytest.raises(ValueError, match="layer must be"):
        HFWhisperEncoder(model_name_or_path=tiny80, layer=3)

