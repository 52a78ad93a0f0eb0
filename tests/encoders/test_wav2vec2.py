"""``mms_hf``: the MMS / wav2vec 2.0 encoder against transformers' own model + feature extractor,
its frame rule, batch invariance, freezing, layers, and the checkpoints it refuses."""
import pytest
import torch
from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

from espnet_sllm.encoders.wav2vec2 import HFWav2Vec2Encoder, min_samples
from espnet_sllm.testing.wav2vec2 import make_tiny_mms


@pytest.fixture(scope="module")
def mms_dir(tmp_path_factory):
    return make_tiny_mms(str(tmp_path_factory.mktemp("mms")))


def waves(lens, seed=0):
    g = torch.Generator().manual_seed(seed)
    xs = torch.zeros(len(lens), max(lens))
    for i, n in enumerate(lens):
        # non-zero mean and a large scale: normalisation has something to do
        xs[i, :n] = 0.3 + 2.0 * torch.randn(n, generator=g)
    return xs, torch.tensor(lens)


def test_matches_transformers_model_and_feature_extractor(mms_dir):
    enc = HFWav2Vec2Encoder(model_name_or_path=mms_dir).eval()
    xs, ilens = waves([8000, 5123])
    ys, olens, states = enc(xs, ilens)
    assert states is None and ys.dtype == torch.float32 and enc.output_size() == 32
    # the frame rule of the MMS conv stack: floor((L - 400) / 320) + 1
    assert olens.tolist() == [(8000 - 400) // 320 + 1, (5123 - 400) // 320 + 1] == [24, 15]
    assert ys.shape == (2, 24, 32)
    assert torch.all(ys[1, 15:] == 0)

    fe = Wav2Vec2FeatureExtractor.from_pretrained(mms_dir)
    ref_model = Wav2Vec2Model.from_pretrained(mms_dir).eval()
    for i, n in enumerate(ilens.tolist()):
        inputs = fe(xs[i, :n].numpy(), sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            ref = ref_model(**inputs).last_hidden_state[0]
        assert ref.shape[0] == olens[i]
        torch.testing.assert_close(ys[i, : olens[i]], ref, atol=2e-4, rtol=1e-3)


def test_batch_invariant(mms_dir):
    enc = HFWav2Vec2Encoder(model_name_or_path=mms_dir).eval()
    assert enc.batch_invariant
    xs, ilens = waves([9000, 3001, 6400], seed=1)
    ys, olens, _ = enc(xs, ilens)
    for i, n in enumerate(ilens.tolist()):
        alone, lens, _ = enc(xs[i : i + 1, :n], ilens[i : i + 1])
        assert lens[0] == olens[i]
        torch.testing.assert_close(ys[i, : olens[i]], alone[0], atol=1e-5, rtol=1e-4)


def test_freeze_dtype_and_layer(mms_dir):
    frozen = HFWav2Vec2Encoder(model_name_or_path=mms_dir, freeze=True)
    frozen.train()
    assert not any(p.requires_grad for p in frozen.parameters())
    assert not frozen.model.training  # dropout off while the model trains
    xs, ilens = waves([4000, 4000])
    a, _, _ = frozen(xs, ilens)
    b, _, _ = frozen(xs, ilens)
    assert torch.equal(a, b) and not a.requires_grad

    tuned = HFWav2Vec2Encoder(model_name_or_path=mms_dir, freeze=False)
    tuned.train()
    ys, _, _ = tuned(xs, ilens)
    ys.sum().backward()
    assert tuned.model.encoder.layers[0].attention.q_proj.weight.grad is not None
    # no masking parameter, no layer drop: all parameters get gradients (DDP-safe)
    assert all(p.grad is not None for p in tuned.parameters() if p.requires_grad)

    ckpt = HFWav2Vec2Encoder(model_name_or_path=mms_dir, freeze=False, gradient_checkpointing=True)
    assert ckpt.model.is_activation_checkpointing
    ckpt.train()
    ys_ckpt, _, _ = ckpt(xs, ilens)
    ys_ckpt.sum().backward()  # the layers recompute in backward
    assert ckpt.model.encoder.layers[0].attention.q_proj.weight.grad is not None

    bf16 = HFWav2Vec2Encoder(model_name_or_path=mms_dir, dtype="bfloat16")
    assert bf16.model.dtype == torch.bfloat16
    assert bf16(xs, ilens)[0].dtype == torch.float32

    first = HFWav2Vec2Encoder(model_name_or_path=mms_dir, layer=1).eval()
    assert len(first.model.encoder.layers) == 1
    ref = Wav2Vec2Model.from_pretrained(mms_dir).eval()
    fe = Wav2Vec2FeatureExtractor.from_pretrained(mms_dir)
    inputs = fe(xs[0].numpy(), sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        want = ref(**inputs, output_hidden_states=True).hidden_states[1][0]
    torch.testing.assert_close(first(xs[:1], ilens[:1])[0][0], want, atol=2e-4, rtol=1e-3)
    with pytest.raises(ValueError, match="layer must be -1 or in 1..2"):
        HFWav2Vec2Encoder(model_name_or_path=mms_dir, layer=3)


def test_loads_ctc_checkpoints_and_refuses_others(tmp_path, mms_dir):
    ctc = make_tiny_mms(str(tmp_path / "ctc"), architecture="Wav2Vec2ForCTC", seed=3)
    enc = HFWav2Vec2Encoder(model_name_or_path=ctc)
    ref = Wav2Vec2Model.from_pretrained(ctc)
    torch.testing.assert_close(enc.model.feature_projection.projection.weight,
                               ref.feature_projection.projection.weight)

    from espnet_sllm.testing.whisper import make_tiny_whisper

    whisper = make_tiny_whisper(str(tmp_path / "whisper"), max_source_positions=100)
    with pytest.raises(ValueError, match="'whisper' checkpoint; encoder mms_hf loads wav2vec"):
        HFWav2Vec2Encoder(model_name_or_path=whisper)


def test_short_audio_is_an_error(mms_dir):
    enc = HFWav2Vec2Encoder(model_name_or_path=mms_dir)
    assert enc.min_samples == min_samples((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)) == 400
    assert enc(*waves([400]))[1].tolist() == [1]
    with pytest.raises(ValueError, match=r"utterance\(s\) \[1\] .* \[399\] samples, fewer than the 400"):
        enc(*waves([1000, 399]))


def test_registered_and_checked_by_stage4(tmp_path, mms_dir):
    from espnet_sllm.bin.check_pretrained import check_encoder
    from espnet_sllm.tasks.sllm import encoder_choices

    assert encoder_choices.get_class("mms_hf") is HFWav2Vec2Encoder
    assert check_encoder("c.yaml", "mms_hf", {"model_name_or_path": mms_dir}, "encoder_conf") == []
    problems = check_encoder("c.yaml", "mms_hf", {"model_name_or_path": mms_dir, "layer": 5},
                             "encoder_conf.mms_conf")
    assert problems and "encoder_conf.mms_conf.layer=5" in problems[0]
