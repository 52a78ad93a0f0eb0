"""encoder: data2vec2 (TeleSpeech data2vec 2.0) and its converter, on tiny random checkpoints in
fairseq's file layout (espnet_sllm/testing/data2vec2.py), loaded through the real converter."""
import datetime
import json
import math
import os

import pytest
import torch
import torch.nn.functional as F
import torchaudio
from safetensors.torch import load_file

from espnet_sllm.bin import convert_data2vec2 as cli
from espnet_sllm.encoders.data2vec2 import Data2Vec2Encoder
from espnet_sllm.encoders.data2vec2_convert import (
    Data2Vec2ConvertError,
    convert_data2vec2,
    parse_feature_encoder_spec,
)
from espnet_sllm.testing.data2vec2 import (
    make_tiny_fairseq_data2vec2,
    tiny_fairseq_cfg,
    tiny_fairseq_state_dict,
)

SR = 16000
LENS = [16000, 23457, 8001, 1040]
QUIET = dict(log=lambda msg: None)


def expected_frames(samples: int) -> int:
    """The issue's rule: n = (samples + 80) // 160 MFCC frames, two convs (kernel 3, stride 2)."""
    n = (samples + 80) // 160
    return ((n - 3) // 2 + 1 - 3) // 2 + 1


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """layout -> (fairseq checkpoint, converted dir), same seed (same weights) for both."""
    root = tmp_path_factory.mktemp("d2v2")
    out = {}
    for layout in ("pretrain", "finetune"):
        pt = make_tiny_fairseq_data2vec2(str(root / f"{layout}.pt"), layout)
        out[layout] = (pt, str(root / f"{layout}_conv"))
        convert_data2vec2(pt, out[layout][1], **QUIET)
    return out


@pytest.fixture(scope="module")
def enc(ckpts):
    return Data2Vec2Encoder(model_name_or_path=ckpts["finetune"][1])


@pytest.fixture(scope="module")
def batch():
    gen = torch.Generator().manual_seed(0)
    xs = torch.zeros(len(LENS), max(LENS))
    for i, n in enumerate(LENS):
        t = torch.arange(n) / SR
        xs[i, :n] = 0.3 * torch.sin(2 * math.pi * (150 + 120 * i) * t) + 0.02 * torch.randn(
            n, generator=gen)
        xs[i, n:] = 1.0  # garbage beyond ilens must be ignored
    return xs, torch.tensor(LENS)


# ------------------------------------------------------------------ reference (fairseq structure)
def fairseq_reference(sd, model_cfg, feats):
    """Every block's output for one utterance feats (1, n, 40), computed from the fairseq state
    dict by the structure of fairseq's data2vec_multi + TeleSpeech's AudioEncoder."""
    audio = model_cfg["modalities"]["audio"]
    a, eps, H = "modality_encoders.AUDIO.", model_cfg["norm_eps"], model_cfg["num_heads"]
    x = feats.permute(0, 2, 1)
    i = 0
    while f"{a}local_encoder.conv_layers.{i}.0.weight" in sd:
        x = F.conv1d(x, sd[f"{a}local_encoder.conv_layers.{i}.0.weight"], stride=2)
        x = F.layer_norm(x.transpose(1, 2), (x.size(1),),
                         sd[f"{a}local_encoder.conv_layers.{i}.2.1.weight"],
                         sd[f"{a}local_encoder.conv_layers.{i}.2.1.bias"])
        x = F.gelu(x).transpose(1, 2)
        i += 1
    x = x.transpose(1, 2)
    x = F.layer_norm(x, (x.size(-1),), sd[f"{a}project_features.1.weight"],
                     sd[f"{a}project_features.1.bias"])
    x = F.linear(x, sd[f"{a}project_features.2.weight"], sd[f"{a}project_features.2.bias"])
    pos = x.transpose(1, 2)
    k = max(3, audio["conv_pos_width"] // audio["conv_pos_depth"])
    for j in range(1, audio["conv_pos_depth"] + 1):
        pos = F.conv1d(pos, sd[f"{a}relative_positional_encoder.{j}.0.weight"],
                       sd[f"{a}relative_positional_encoder.{j}.0.bias"], padding=k // 2,
                       groups=audio["conv_pos_groups"])
        pos = F.gelu(F.layer_norm(pos.transpose(1, 2), (pos.size(1),)).transpose(1, 2))
    x = x + pos.transpose(1, 2)
    T = x.size(1)
    bias = None
    scale = None
    if audio["use_alibi_encoder"]:
        start = 2 ** (-(2 ** -(math.log2(H) - 3)))
        slopes = torch.tensor([start * start ** h for h in range(H)])
        rel = -(torch.arange(T)[None, :] - torch.arange(T)[:, None]).abs()
        bias = (slopes[:, None, None] * rel[None])[None]  # (1, H, T, T)
        scale = sd[f"{a}alibi_scale"].clamp_min(0)
        if scale.size(0) == 1:
            bias, scale = bias * scale.squeeze(0), None

    def block(x, p, ab):
        B, N, C = x.shape
        qkv = F.linear(x, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"])
        q, kk, v = qkv.reshape(B, N, 3, H, C // H).permute(2, 0, 3, 1, 4)
        att = (q * (C // H) ** -0.5) @ kk.transpose(-2, -1)
        if ab is not None:
            att = att + ab
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, N, C)
        x = x + F.linear(y, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        r = x = F.layer_norm(x, (C,), sd[p + "norm1.weight"], sd[p + "norm1.bias"], eps)
        m = F.linear(F.gelu(F.linear(x, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"])),
                     sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
        return F.layer_norm(r + m, (C,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], eps)

    x = F.layer_norm(x, (x.size(-1),), sd[f"{a}context_encoder.norm.weight"],
                     sd[f"{a}context_encoder.norm.bias"], eps)
    outs = []
    groups = [(f"{a}context_encoder.blocks.", audio["prenet_depth"], 0),
              ("blocks.", model_cfg["depth"], audio["prenet_depth"])]
    for prefix, depth, offset in groups:
        for j in range(depth):
            ab = bias if scale is None else bias * scale[offset + j]
            x = block(x, f"{prefix}{j}.", ab)
            outs.append(x)
    return outs


@pytest.mark.parametrize("alibi", ["per_head", "per_layer", None])
def test_matches_fairseq_structure(tmp_path, alibi):
    pt = make_tiny_fairseq_data2vec2(str(tmp_path / "p.pt"), "pretrain", seed=3, alibi=alibi)
    convert_data2vec2(pt, str(tmp_path / "out"), **QUIET)
    enc = Data2Vec2Encoder(model_name_or_path=str(tmp_path / "out"))
    model_cfg = tiny_fairseq_cfg(alibi=alibi)
    sd = tiny_fairseq_state_dict(model_cfg, seed=3)
    wav = 0.1 * torch.randn(20000, generator=torch.Generator().manual_seed(1))
    ref = fairseq_reference(sd, model_cfg, enc.mfcc(wav)[None])
    ys, olens, _ = enc(wav[None], torch.tensor([20000]))
    assert ys.shape == (1, expected_frames(20000), 32) and int(olens[0]) == ys.size(1)
    torch.testing.assert_close(ys, ref[-1], atol=1e-5, rtol=1e-5)
    # layer k = output of block k (modality blocks first)
    for k in (1, 3):
        mid = Data2Vec2Encoder(model_name_or_path=str(tmp_path / "out"), layer=k)
        assert len(mid.model.blocks) == k
        torch.testing.assert_close(mid(wav[None], torch.tensor([20000]))[0], ref[k - 1],
                                   atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------ converter
@pytest.mark.parametrize("layout", ["pretrain", "finetune"])
def test_converter_layouts(ckpts, layout):
    pt, out = ckpts[layout]
    assert sorted(os.listdir(out)) == ["config.json", "model.safetensors"]
    conf = json.load(open(os.path.join(out, "config.json")))
    # the architecture comes from the checkpoint's cfg
    assert (conf["embed_dim"], conf["num_heads"], conf["depth"], conf["prenet_depth"]) == (32, 4, 2, 2)
    assert conf["feature_encoder_spec"] == [[16, 3, 2], [16, 3, 2]]
    assert (conf["conv_pos_depth"], conf["conv_pos_kernel"], conf["conv_pos_groups"]) == (5, 19, 4)
    assert conf["alibi_scale_shape"] == [1, 1, 4, 1, 1] and conf["norm_eps"] == 1e-5
    assert conf["source"]["layout"] == layout
    dropped = {"pretrain": ["_ema", "modality_encoders.AUDIO.decoder"],
               "finetune": ["w2v_encoder.proj"]}[layout]
    assert conf["source"]["dropped"] == dropped

    weights = load_file(os.path.join(out, "model.safetensors"))
    assert not [k for k in weights if "decoder" in k or "ema" in k or "proj.weight" == k]
    src = torch.load(pt, weights_only=False)["model"]
    pre = "w2v_encoder.w2v_model." if layout == "finetune" else ""
    a = pre + "modality_encoders.AUDIO."
    pairs = {
        "feature_extractor.1.conv.weight": a + "local_encoder.conv_layers.1.0.weight",
        "feature_extractor.0.norm.bias": a + "local_encoder.conv_layers.0.2.1.bias",
        "feature_projection.norm.weight": a + "project_features.1.weight",
        "feature_projection.linear.weight": a + "project_features.2.weight",
        "pos_conv.0.weight": a + "relative_positional_encoder.1.0.weight",
        "pos_conv.4.bias": a + "relative_positional_encoder.5.0.bias",
        "prenet_norm.weight": a + "context_encoder.norm.weight",
        "blocks.1.attn.qkv.weight": a + "context_encoder.blocks.1.attn.qkv.weight",
        "blocks.2.norm1.weight": pre + "blocks.0.norm1.weight",
        "blocks.3.mlp.fc2.bias": pre + "blocks.1.mlp.fc2.bias",
        "alibi_scale": a + "alibi_scale",
    }
    for ours, theirs in pairs.items():
        assert torch.equal(weights[ours], src[theirs]), ours
    n_src = sum(1 for k, v in src.items() if torch.is_tensor(v) and "decoder" not in k
                and "w2v_encoder.proj" not in k)
    assert len(weights) == n_src


def test_layouts_convert_to_the_same_weights(ckpts):
    a = load_file(os.path.join(ckpts["pretrain"][1], "model.safetensors"))
    b = load_file(os.path.join(ckpts["finetune"][1], "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_round_trip_load(ckpts, enc):
    weights = load_file(os.path.join(ckpts["finetune"][1], "model.safetensors"))
    state = enc.model.state_dict()
    assert state.keys() == weights.keys()
    assert all(torch.equal(state[k], weights[k]) for k in state)


def test_cli(tmp_path, capsys):
    pt = make_tiny_fairseq_data2vec2(str(tmp_path / "ft.pt"), "finetune")
    assert cli.main(["--fairseq_ckpt", pt, "--out", str(tmp_path / "out")]) == 0
    assert os.path.isfile(tmp_path / "out" / "model.safetensors")
    assert cli.main(["--fairseq_ckpt", str(tmp_path / "none.pt"), "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("convert_data2vec2: error:") and "none.pt" in err[0]


def test_feature_encoder_spec_without_eval():
    assert parse_feature_encoder_spec("[(512, 3, 2)] * 2") == [[512, 3, 2], [512, 3, 2]]
    assert parse_feature_encoder_spec("[(512, 10, 5)] + [(512,2,2)]") == [[512, 10, 5], [512, 2, 2]]
    with pytest.raises(Data2Vec2ConvertError, match="feature_encoder_spec"):
        parse_feature_encoder_spec("__import__('os').system('true')")


# ------------------------------------------------------------------------------------- features
def test_mfcc_is_torchaudio_kaldi_with_the_release_options(enc, batch):
    xs, _ = batch
    wav = xs[0, :LENS[0]]
    ref = torchaudio.compliance.kaldi.mfcc(
        wav[None] * 32768, num_ceps=40, num_mel_bins=40, low_freq=40, high_freq=-200,
        snip_edges=False, dither=0.0, use_energy=False, sample_frequency=16000)
    ref = (ref - ref.mean(0)) / (ref.std(0) + 1e-5)  # TeleSpeech's utterance CMVN (unbiased std)
    mine = enc.mfcc(wav)
    assert mine.shape == (100, 40)
    torch.testing.assert_close(mine, ref, atol=1e-5, rtol=0)


def test_frame_rule(enc):
    lengths = sorted({1040, 1120, 1199, 1200, 16000, 16079, 16080, 80000, 160000, 480000}
                     | set(range(1120, 480001, 7919)))
    for n in lengths:
        assert enc.num_frames(n) == expected_frames(n), n
    assert enc.num_frames(160000) == 249 and enc.min_samples == 1040
    xs = 0.1 * torch.randn(4, 480000, generator=torch.Generator().manual_seed(2))
    ilens = torch.tensor([1120, 160000, 333333, 480000])  # 0.07 s, 10 s, 20.8 s, 30 s
    ys, olens, _ = enc(xs, ilens)
    assert olens.tolist() == [expected_frames(int(n)) for n in ilens] == [1, 249, 520, 749]
    assert ys.shape == (4, 749, 32) and ys.dtype == torch.float32


def test_snip_edges_option_changes_the_rule(ckpts):
    e = Data2Vec2Encoder(model_name_or_path=ckpts["finetune"][1], mfcc_conf={"snip_edges": True})
    n = 1 + (160000 - 400) // 160
    assert e.num_frames(160000) == ((n - 3) // 2 + 1 - 3) // 2 + 1 == 248
    assert e.min_samples == 400 + 6 * 160
    ys, olens, _ = e(0.1 * torch.randn(1, 160000), torch.tensor([160000]))
    assert olens.tolist() == [248]


# ------------------------------------------------------------------------------ batch, layer, grad
def test_batch_equals_single(enc, batch):
    xs, ilens = batch
    ys, olens, states = enc(xs, ilens)
    assert states is None and Data2Vec2Encoder.batch_invariant
    assert olens.tolist() == [expected_frames(n) for n in LENS]
    for b, n in enumerate(LENS):
        alone, alone_len, _ = enc(xs[b : b + 1, :n], ilens[b : b + 1])
        assert int(alone_len[0]) == int(olens[b])
        torch.testing.assert_close(ys[b, : olens[b]], alone[0], atol=1e-5, rtol=0)
        assert ys[b, olens[b]:].abs().max() == 0 if olens[b] < ys.size(1) else True


def test_layer_out_of_range(ckpts):
    with pytest.raises(ValueError, match=r"layer must be -1 or in 1..4"):
        Data2Vec2Encoder(model_name_or_path=ckpts["finetune"][1], layer=5)


def test_freeze_no_grad_eval(enc, batch, ckpts):
    xs, ilens = batch
    assert not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert enc.training and not enc.model.training
    ys, _, _ = enc(xs, ilens)
    assert not ys.requires_grad
    enc.eval()

    trained = Data2Vec2Encoder(model_name_or_path=ckpts["finetune"][1], freeze=False,
                               gradient_checkpointing=True).train()
    assert trained.model.training
    torch.manual_seed(0)
    ys, olens, _ = trained(xs[:2], ilens[:2])
    ys.sum().backward()
    assert trained.model.blocks[0].attn.qkv.weight.grad is not None
    assert trained.model.feature_extractor[0].conv.weight.grad is not None
    # not frozen, but nothing trains (--freeze_param): eval mode (no dropout) and no grad
    trained.model.requires_grad_(False)
    a, _, _ = trained(xs[:2], ilens[:2])
    b, _, _ = trained(xs[:2], ilens[:2])
    assert not a.requires_grad and torch.equal(a, b) and trained.model.training


def test_dtype_bf16(ckpts, batch):
    xs, ilens = batch
    e = Data2Vec2Encoder(model_name_or_path=ckpts["finetune"][1], dtype="bfloat16")
    assert {p.dtype for p in e.parameters()} == {torch.bfloat16}
    assert e.frozen_dtype == torch.bfloat16
    ys, olens, _ = e(xs[:2], ilens[:2])
    assert ys.dtype == torch.float32 and torch.isfinite(ys).all()


def test_registered():
    from espnet_sllm.tasks.sllm import encoder_choices

    assert encoder_choices.get_class("data2vec2") is Data2Vec2Encoder


# ---------------------------------------------------------------------------------------- errors
def test_short_audio_and_wrong_rate(enc, ckpts):
    with pytest.raises(ValueError, match=r"an utterance of 1039 samples .*row 1 .*at least 1040 "
                                         r"samples \(65.0 ms at 16000 Hz, 7 MFCC frames\)"):
        enc(torch.zeros(2, 2000), torch.tensor([2000, 1039]))
    with pytest.raises(ValueError, match=r"reads 16000 Hz audio, but fs is 8000"):
        Data2Vec2Encoder(model_name_or_path=ckpts["finetune"][1], fs=8000)
    with pytest.raises(ValueError, match=r"mfcc_conf: unknown keys \['num_cepstra'\]"):
        Data2Vec2Encoder(model_name_or_path=ckpts["finetune"][1], mfcc_conf={"num_cepstra": 40})


def _fake_wav2vec2(path):
    """A fairseq wav2vec 2.0 (waveform CNN + TransformerEncoder) checkpoint."""
    state = {"feature_extractor.conv_layers.0.0.weight": torch.zeros(8, 1, 10),
             "post_extract_proj.weight": torch.zeros(16, 8),
             "encoder.pos_conv.0.weight_g": torch.zeros(1, 1, 4),
             "encoder.layers.0.self_attn.k_proj.weight": torch.zeros(16, 16),
             "mask_emb": torch.zeros(16), "quantizer.vars": torch.zeros(1, 4, 8)}
    torch.save({"cfg": {"model": {"_name": "wav2vec2"}, "task": {}}, "model": state}, path)
    return path


def test_wrong_checkpoints(tmp_path, ckpts):
    with pytest.raises(Data2Vec2ConvertError) as e:
        convert_data2vec2(_fake_wav2vec2(str(tmp_path / "w2v.pt")), str(tmp_path / "o"), **QUIET)
    msg = str(e.value)
    assert "cfg.model._name='wav2vec2'" in msg and "not a TeleSpeech data2vec 2.0" in msg
    assert "missing keys ['feature_extractor.*'" in msg and "unexpected keys (6)" in msg
    assert "encoder.layers.0.self_attn.k_proj.weight" in msg

    # a data2vec 2.0 checkpoint with a key this port does not know, and one without a block
    ckpt = torch.load(ckpts["pretrain"][0], weights_only=False)
    ckpt["model"]["modality_encoders.AUDIO.extra_tokens"] = torch.zeros(1, 1, 32)
    torch.save(ckpt, tmp_path / "extra.pt")
    with pytest.raises(Data2Vec2ConvertError, match=r"unexpected keys \(1\): \['modality_enc"):
        convert_data2vec2(str(tmp_path / "extra.pt"), str(tmp_path / "o"), **QUIET)
    del ckpt["model"]["modality_encoders.AUDIO.extra_tokens"]
    del ckpt["model"]["blocks.1.norm2.bias"]
    torch.save(ckpt, tmp_path / "missing.pt")
    with pytest.raises(Data2Vec2ConvertError, match=r"missing keys \(1\): \['blocks.3.norm2.bias'\]"):
        convert_data2vec2(str(tmp_path / "missing.pt"), str(tmp_path / "o"), **QUIET)
    assert not os.path.exists(tmp_path / "o")

    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(Data2Vec2ConvertError, match="not a fairseq checkpoint"):
        convert_data2vec2(str(tmp_path / "tensor.pt"), str(tmp_path / "o"), **QUIET)


def test_unsupported_architecture(tmp_path):
    pt = make_tiny_fairseq_data2vec2(str(tmp_path / "p.pt"), "pretrain")
    ckpt = torch.load(pt, weights_only=False)
    ckpt["cfg"]["model"]["layer_norm_first"] = True
    torch.save(ckpt, pt)
    with pytest.raises(Data2Vec2ConvertError, match="layer_norm_first=True"):
        convert_data2vec2(pt, str(tmp_path / "o"), **QUIET)


def test_pickled_code_is_refused_unless_unsafe(tmp_path):
    pt = make_tiny_fairseq_data2vec2(str(tmp_path / "p.pt"), "finetune")
    ckpt = torch.load(pt, weights_only=False)
    ckpt["extra_state"]["saved_on"] = datetime.date(2024, 5, 1)  # not an allowed global
    torch.save(ckpt, pt)
    with pytest.raises(Data2Vec2ConvertError, match=r"datetime.date.*--unsafe_load true"):
        convert_data2vec2(pt, str(tmp_path / "o"), **QUIET)
    logs = []
    convert_data2vec2(pt, str(tmp_path / "o"), unsafe_load=True, log=logs.append)
    assert "weights_only=False" in logs[0] and os.path.isfile(tmp_path / "o" / "config.json")


def test_not_a_converted_directory(tmp_path, ckpts):
    with pytest.raises(FileNotFoundError, match="convert_data2vec2"):
        Data2Vec2Encoder(model_name_or_path=str(tmp_path))
    os.makedirs(tmp_path / "bad")
    for name in ("config.json", "model.safetensors"):
        with open(os.path.join(ckpts["finetune"][1], name), "rb") as f:
            data = f.read()
        with open(tmp_path / "bad" / name, "wb") as f:
            f.write(data)
    conf = json.load(open(tmp_path / "bad" / "config.json"))
    conf["depth"] = 3
    json.dump(conf, open(tmp_path / "bad" / "config.json", "w"))
    with pytest.raises(ValueError, match=r"missing keys \(12\): \['blocks.4.attn.proj.bias'"):
        Data2Vec2Encoder(model_name_or_path=str(tmp_path / "bad"))


# ------------------------------------------------------------------------------------ in the model
def test_in_the_speech_llm(tmp_path, ckpts, batch):
    """Built by SLLMTask from a config (`encoder: data2vec2`, no frontend): a training step, and
    batch-invariant speech embeddings as `generate` computes them."""
    from espnet_sllm.tasks.sllm import SLLMTask
    from espnet_sllm.testing.configs import config_to_args, tiny_sllm_config
    from espnet_sllm.testing.llm import make_tiny_llm

    llm = make_tiny_llm(str(tmp_path / "qwen2"), "qwen2")
    cfg = tiny_sllm_config(llm, "data2vec2", ctc_weight=0.3)
    cfg.update(frontend=None, encoder_conf={"model_name_or_path": ckpts["finetune"][1]})
    args = config_to_args(cfg)
    torch.manual_seed(0)
    model = SLLMTask.build_model(args)
    pre, collate = SLLMTask.build_preprocess_fn(args, True), SLLMTask.build_collate_fn(args, True)
    xs, ilens = batch
    items = [(f"u{i}", pre(f"u{i}", {"speech": xs[i, :n].numpy(), "text": "hello world",
                                     "lang": "en"})) for i, n in enumerate(LENS[:3])]
    model.train()
    loss, stats, _ = model(**collate(items)[1])
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.projector.parameters())
    model.eval()
    with torch.no_grad():
        emb, emb_lens, enc, enc_lens = model.speech_embeddings(xs, ilens, batch_invariant=True)
        for b, n in enumerate(LENS):
            alone = model.speech_embeddings(xs[b : b + 1, :n], ilens[b : b + 1])
            torch.testing.assert_close(emb[b, : emb_lens[b]], alone[0][0], atol=1e-5, rtol=0)


def test_numpy1_scalars_load_safely(tmp_path):
    """A checkpoint written with numpy 1.x names its scalars numpy.core.multiarray.scalar."""
    import zipfile

    pt = make_tiny_fairseq_data2vec2(str(tmp_path / "p.pt"), "pretrain")
    old = tmp_path / "numpy1.pt"
    with zipfile.ZipFile(pt) as src, zipfile.ZipFile(old, "w", zipfile.ZIP_STORED) as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("data.pkl"):
                assert b"cnumpy._core.multiarray\nscalar" in data
                data = data.replace(b"cnumpy._core.multiarray\nscalar",
                                    b"cnumpy.core.multiarray\nscalar")
            dst.writestr(item, data)
    convert_data2vec2(str(old), str(tmp_path / "o"), **QUIET)
    assert os.path.isfile(tmp_path / "o" / "model.safetensors")
