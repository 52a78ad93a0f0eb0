"""Decoding in batches of sorted lengths (issue #16 §3): batch formation, batch-invariant encoding
with ESPnet encoders, and resumption.

* `sorted_batches`: longest first, ties and unknown lengths in key order, --batch_size and
  --batch_seconds bounds; `utterance_samples`: utt2num_samples, else audio headers, else unknown;
* ESPnet encoders (conformer with conv2d / conv2d6 subsampling, legacy and latest relative
  positions; E-Branchformer, Branchformer, transformer): an utterance's encoder output in a padded batch equals its own (1e-5),
  and generate gives the same tokens (greedy and beam 4) and scores (1e-4) as alone;
* sllm_inference: the same text/token/token_int whatever the batching, batches in the partial
  file longest first, a resumed run byte-identical, a partial file of another batching accepted.

The model is the tiny untrained conformer + Qwen2 of the other tests (weights from the seed).
"""
import json
import logging
import os

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from espnet_sllm.decoding.batching import plan_batches, sorted_batches, utterance_samples
from espnet_sllm.decoding.inference import OUTPUT_FILES, PARTIAL_NAME, inference
from espnet_sllm.encoders.batch_invariance import (
    ExactPadding,
    legacy_rel_shift,
    subsampled_lengths,
    unsupported,
)
from espnet_sllm.tasks.sllm import SLLMTask
from espnet_sllm.testing.configs import config_to_args, tiny_sllm_config

# ------------------------------------------------------------------ batch formation


def test_sorted_batches_longest_first_with_bounds():
    samples = {"a": 16000, "b": 48000, "c": 16000, "d": 8000, "e": 0, "f": None, "g": 32000,
               "h": 160000, "i": 0, "j": None}
    keys = sorted(samples)
    # by count: longest first, equal lengths in key order, unknown lengths last in key order
    assert sorted_batches(keys, samples, 3) == [["h", "b", "g"], ["a", "c", "d"], ["e", "i"],
                                                ["f", "j"]]
    # by padded seconds (count x longest <= 5 s): h (10 s) alone, b (3 s) alone, g (2 s) with
    # one more (2 x 2 s), then 1 s utterances 3 at a time (batch_size), 0-sample ones by count
    got = sorted_batches(keys, samples, 3, batch_seconds=5.0)
    assert got == [["h"], ["b"], ["g", "a"], ["c", "d", "e"], ["i"], ["f", "j"]]
    for batch in got:
        known = [samples[k] for k in batch if samples[k] is not None]
        assert len(batch) <= 3
        assert len(batch) == 1 or not known or len(batch) * max(known) <= 5.0 * 16000
    # every key exactly once, whatever the bounds
    for size, seconds in ((1, None), (2, 1.0), (100, 100.0), (4, 0.1)):
        flat = [k for b in sorted_batches(keys, samples, size, seconds) for k in b]
        assert sorted(flat) == keys
    # batch_seconds alone (large batch_size): the bound is the padded audio
    assert sorted_batches(["x", "y", "z"], {"x": 100, "y": 100, "z": 90}, 99, 0.02,
                          sample_rate=10000) == [["x", "y"], ["z"]]


@pytest.mark.parametrize("kwargs,message", [
    (dict(batch_size=0), "batch_size must be >= 1, got 0"),
    (dict(batch_size=2, batch_seconds=0.0), "batch_seconds must be > 0"),
    (dict(batch_size=2, batch_seconds=-3.0), "batch_seconds must be > 0"),
])
def test_bad_batch_options_are_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sorted_batches(["a"], {"a": 1}, **kwargs)


def test_utterance_samples_from_utt2num_samples_then_headers(tmp_path, caplog):
    d = tmp_path / "data"
    d.mkdir()
    for key, n in (("a", 1600), ("b", 3200), ("c", 4800)):
        sf.write(d / f"{key}.wav", np.zeros(n, np.float32), 16000)
    (d / "corrupt.wav").write_bytes(b"RIFF\x00\x00 not audio")
    (d / "wav.scp").write_text(
        f"a {d}/a.wav\nb {d}/b.wav\nc {d}/c.wav\np sox {d}/a.wav -t wav - |\n"
        f"m {d}/missing.wav\nx {d}/corrupt.wav\n")
    triples = [(str(d / "wav.scp"), "speech", "sound")]
    keys = ["a", "b", "c", "m", "p", "x"]
    # no utt2num_samples: the headers; a pipe, a missing and a corrupt file are unknown
    samples, source = utterance_samples(triples, keys)
    assert samples == {"a": 1600, "b": 3200, "c": 4800, "m": None, "p": None, "x": None}
    assert source == "audio headers"
    # utt2num_samples wins where it lists a key (values unlike the files' to tell them apart)
    (d / "utt2num_samples").write_text("a 99999\nb 5\nbroken line here\n")
    samples, source = utterance_samples(triples, keys)
    assert samples == {"a": 99999, "b": 5, "c": 4800, "m": None, "p": None, "x": None}
    assert source == "utt2num_samples for 2, audio headers for 4"
    with caplog.at_level(logging.INFO):
        batches = plan_batches(triples, keys, 2, None, 16000)
    assert batches == [["a", "c"], ["b"], ["m", "p"], ["x"]]
    assert "3 of 6 utterances have no known length" in caplog.text
    assert "4 batches of at most 2 utterances, longest first" in caplog.text
    # --sort_by_length false: key order, batch_size only (batch_seconds needs sorting)
    assert plan_batches(triples, keys, 4, None, 16000, sort_by_length=False) == [
        ["a", "b", "c", "m"], ["p", "x"]]
    with pytest.raises(ValueError, match="--batch_seconds needs batches sorted by length"):
        plan_batches(triples, keys, 4, 10.0, 16000, sort_by_length=False)


# ------------------------------------------------------------------ batch-invariant encoding


@pytest.fixture(scope="module")
def qwen2(tmp_path_factory):
    from espnet_sllm.testing.llm import make_tiny_llm

    return make_tiny_llm(str(tmp_path_factory.mktemp("llm") / "qwen2"), "qwen2")


ESPNET_ENCODERS = {
    # ESPnet's conformer defaults: legacy relative positions (the T-dependent rel_shift)
    "conformer_legacy": ("conformer", {}),
    # the demo's (egs2/mini_mlc): latest relative positions, kernel 15
    "conformer_latest": ("conformer", {"rel_pos_type": "latest", "pos_enc_layer_type": "rel_pos",
                                       "selfattention_layer_type": "rel_selfattn",
                                       "cnn_module_kernel": 15}),
    "conformer_conv2d6": ("conformer", {"input_layer": "conv2d6"}),
    "e_branchformer": ("e_branchformer", {"output_size": 32, "attention_heads": 2,
                                          "linear_units": 64, "cgmlp_linear_units": 64,
                                          "num_blocks": 1, "input_layer": "conv2d"}),
    "e_branchformer_legacy": ("e_branchformer", {
        "output_size": 32, "attention_heads": 2, "linear_units": 64, "cgmlp_linear_units": 64,
        "num_blocks": 1, "input_layer": "conv2d", "rel_pos_type": "legacy",
        "pos_enc_layer_type": "legacy_rel_pos", "attention_layer_type": "legacy_rel_selfattn"}),
    "branchformer": ("branchformer", {"output_size": 32, "attention_heads": 2,
                                      "cgmlp_linear_units": 64, "num_blocks": 1,
                                      "input_layer": "conv2d", "merge_method": "learned_ave"}),
    "transformer": ("transformer", {"output_size": 32, "attention_heads": 2,
                                    "linear_units": 64, "num_blocks": 1,
                                    "input_layer": "conv2d"}),
}


def build(llm_dir, name="conformer_legacy"):
    cfg = tiny_sllm_config(llm_dir, "conformer")
    encoder, conf = ESPNET_ENCODERS[name]
    if encoder != "conformer":
        cfg["encoder_conf"] = {}
    cfg["encoder"] = encoder
    cfg["encoder_conf"].update(conf)
    args = config_to_args(cfg)
    torch.manual_seed(0)
    model = SLLMTask.build_model(args)
    model.eval()
    return model, SLLMTask.build_preprocess_fn(args, False), SLLMTask.build_collate_fn(args, False)


def speech_items(pre, samples, seed=1):
    rng = np.random.RandomState(seed)
    return [(f"u{i}", pre(f"u{i}", {"speech": rng.randn(n).astype(np.float32)}))
            for i, n in enumerate(samples)]


SAMPLES = [16000, 4100, 12345, 7001, 9500, 5200]


@pytest.mark.parametrize("name", sorted(ESPNET_ENCODERS))
def test_espnet_encoder_batch_equals_single(qwen2, name):
    model, pre, collate = build(qwen2, name)
    assert unsupported(model.encoder) is None
    batch = collate(speech_items(pre, SAMPLES))[1]
    with torch.no_grad():
        emb, emb_lens, enc, enc_lens = model.speech_embeddings(
            batch["speech"], batch["speech_lengths"], batch_invariant=True)
        for b in range(len(SAMPLES)):
            n = int(batch["speech_lengths"][b])
            emb1, emb_lens1, enc1, enc_lens1 = model.speech_embeddings(
                batch["speech"][b : b + 1, :n], batch["speech_lengths"][b : b + 1])
            assert int(enc_lens[b]) == int(enc_lens1[0]) and int(emb_lens[b]) == int(emb_lens1[0])
            t = int(enc_lens[b])
            torch.testing.assert_close(enc[b, :t], enc1[0], atol=1e-5, rtol=1e-5)
            assert not enc[b, t:].any()  # padding zeroed
            torch.testing.assert_close(emb[b, : int(emb_lens[b])], emb1[0], atol=1e-5, rtol=1e-5)
        # ESPnet's own batch (the bug fixed): lengths 1-2 frames too long, every frame off
        _, _, plain, plain_lens = model.speech_embeddings(batch["speech"], batch["speech_lengths"])
    assert (plain_lens >= enc_lens).all() and (plain_lens > enc_lens).any()
    b = int(batch["speech_lengths"].argmin())
    assert (plain[b, : int(enc_lens[b])] - enc[b, : int(enc_lens[b])]).abs().max() > 1e-3


@pytest.mark.parametrize("beams", [1, 4])
def test_batched_generate_equals_single_with_conformer(qwen2, beams):
    model, pre, collate = build(qwen2)
    items = speech_items(pre, SAMPLES)
    rate = 12.0
    kw = dict(num_beams=beams, max_new_tokens=30, max_tokens_per_second=rate,
              no_repeat_ngram_size=3)
    batched = model.generate(**collate(items)[1], **kw)
    for item, n, (ids, score) in zip(items, SAMPLES, batched):
        ids1, score1 = model.generate(**collate([item])[1], **kw)[0]
        assert ids == ids1, item[0]
        assert score == pytest.approx(score1, abs=1e-4), item[0]
        assert len(ids) <= 10 + int(np.ceil(n / 16000 * rate)) - 1
    assert len({len(ids) for ids, _ in batched}) > 1  # per-utterance budgets differ


def test_unsupported_encoder_is_encoded_one_utterance_at_a_time(qwen2, monkeypatch):
    import espnet_sllm.encoders.batch_invariance as bi

    model, pre, collate = build(qwen2)
    batch = collate(speech_items(pre, SAMPLES[:3]))[1]
    calls = []
    model.encoder.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    monkeypatch.setattr(bi, "unsupported", lambda encoder: "a test says so")
    with torch.no_grad():
        _, _, enc, enc_lens = model.speech_embeddings(batch["speech"], batch["speech_lengths"],
                                                      batch_invariant=True)
        assert calls == [1, 1, 1]
        for b in range(3):
            n = int(batch["speech_lengths"][b])
            _, _, enc1, _ = model.speech_embeddings(batch["speech"][b : b + 1, :n],
                                                    batch["speech_lengths"][b : b + 1])
            assert torch.equal(enc[b, : int(enc_lens[b])], enc1[0])  # exact: the same call


def test_subsampled_lengths_equal_espnet_alone(qwen2):
    """The conv arithmetic gives the lengths ESPnet's mask slicing gives an utterance alone,
    for every subsampling layer (T' = 0 when no frame survives)."""
    from espnet.nets.pytorch_backend.transformer import subsampling as s

    for cls in ("Conv2dSubsampling", "Conv2dSubsampling1", "Conv2dSubsampling2",
                "Conv2dSubsampling6", "Conv2dSubsampling8", "Conv1dSubsampling2"):
        embed = getattr(s, cls)(40, 4, 0.0).eval()
        for t in range(1, 60):
            got = int(subsampled_lengths(embed, torch.tensor([t]))[0])
            try:
                want = embed(torch.zeros(1, t, 40), torch.ones(1, 1, t, dtype=torch.bool))[1]
            except RuntimeError:  # too short for the kernels: ESPnet refuses it
                assert got == 0, (cls, t)
                continue
            assert got == int(want.sum()), (cls, t)
    assert torch.equal(subsampled_lengths(None, torch.tensor([5, 7])), torch.tensor([5, 7]))


def test_legacy_rel_shift_per_row_equals_alone():
    from espnet.nets.pytorch_backend.transformer.attention import (
        LegacyRelPositionMultiHeadedAttention,
    )

    att = LegacyRelPositionMultiHeadedAttention(2, 8, 0.0)
    torch.manual_seed(0)
    x = torch.randn(1, 2, 9, 9)
    for n in (1, 2, 5, 9):
        alone = att.rel_shift(x[:, :, :n, :n].clone())
        assert torch.equal(legacy_rel_shift(x, torch.tensor([n]))[:, :, :n, :n], alone), n
    # unpadded, it is ESPnet's shift
    y = torch.randn(3, 2, 6, 6)
    assert torch.equal(legacy_rel_shift(y, torch.full((3,), 6)), att.rel_shift(y))


def test_exact_padding_restores_the_encoder(qwen2):
    model, pre, collate = build(qwen2)
    enc = model.encoder

    def hooks():
        return [(len(m._forward_pre_hooks), len(m._forward_hooks), "rel_shift" in vars(m))
                for m in enc.modules()]

    before = hooks()
    with ExactPadding(enc, torch.tensor([30, 20]), 30):
        assert hooks() != before
    assert hooks() == before
    assert unsupported(torch.nn.Linear(2, 2)).startswith("Linear is not one of ConformerEncoder")


# ------------------------------------------------------------------ sllm_inference


@pytest.fixture(scope="module")
def setup(tmp_path_factory, qwen2):
    """Noise utterances of 12 different lengths (0.25-1.7 s) with utt2num_samples, and the
    config.yaml of the untrained tiny model."""
    tmp = tmp_path_factory.mktemp("sorted_batches")
    d = tmp / "data"
    d.mkdir()
    rng = np.random.RandomState(3)
    lengths = {f"u{i:02d}": int(n) for i, n in enumerate(rng.permutation(12) * 2000 + 4000)}
    scp, ns = [], []
    for key, n in sorted(lengths.items()):
        sf.write(d / f"{key}.wav", (0.1 * rng.randn(n)).astype(np.float32), 16000)
        scp.append(f"{key} {d}/{key}.wav")
        ns.append(f"{key} {n}")
    (d / "wav.scp").write_text("\n".join(scp) + "\n")
    (d / "utt2num_samples").write_text("\n".join(ns) + "\n")
    args = config_to_args(tiny_sllm_config(qwen2, "conformer"))
    (tmp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    return tmp, lengths


def decode(setup, out, **kw):
    tmp, _ = setup
    options = dict(beam_size=2, max_new_tokens=12, max_tokens_per_second=0.0, num_workers=0)
    options.update(kw)
    inference(str(out), [(str(tmp / "data" / "wav.scp"), "speech", "sound")],
              str(tmp / "config.yaml"), None, **options)
    d = out / "1best_recog"
    return {name: (d / name).read_bytes() for name in OUTPUT_FILES}


def partial_lines(out):
    return (out / "1best_recog" / PARTIAL_NAME).read_text().splitlines()


def columns(data: bytes):
    return dict(line.split(" ", 1) for line in data.decode().splitlines())


@pytest.fixture(scope="module")
def reference(setup):
    tmp, _ = setup
    return decode(setup, tmp / "one_at_a_time", batch_size=1)


@pytest.mark.parametrize("kw", [dict(batch_size=4), dict(batch_size=64, batch_seconds=3.0)])
def test_outputs_equal_whatever_the_batching(setup, reference, tmp_path, kw):
    _, lengths = setup
    got = decode(setup, tmp_path / "out", **kw)
    for name in ("text", "token", "token_int"):
        assert got[name] == reference[name], name
    ours, ref = columns(got["score"]), columns(reference["score"])
    assert sorted(ours) == sorted(lengths)
    assert all(abs(float(ours[k]) - float(ref[k])) < 1e-4 for k in ref)
    # the partial file holds the batches in decoding order: longest first
    order = [json.loads(line)["key"] for line in partial_lines(tmp_path / "out")[1:]]
    assert [lengths[k] for k in order] == sorted(lengths.values(), reverse=True)


def test_resumed_sorted_decoding_is_byte_identical(setup, tmp_path, caplog):
    tmp, lengths = setup
    out = tmp_path / "out"
    full = decode(setup, out, batch_size=5)
    lines = partial_lines(out)
    # killed after the first two batches (5 + 5 utterances), in the middle of a write
    path = out / "1best_recog" / PARTIAL_NAME
    path.write_text("\n".join(lines[:11]) + '\n{"key": "u0')
    os.remove(out / "1best_recog" / "text")
    with caplog.at_level(logging.INFO):
        assert decode(setup, out, batch_size=5) == full
    assert "10 of 12 utterances already decoded; decoding the other 2" in caplog.text
    assert "(2 in this run, 10 from an earlier one, 0 unreadable)" in caplog.text
    # the two decoded last are the shortest
    assert sorted(lengths[json.loads(line)["key"]] for line in partial_lines(out)[11:]) == \
        sorted(lengths.values())[:2]


def test_partial_file_of_another_batching_is_resumed(setup, reference, tmp_path, caplog):
    tmp, _ = setup
    out = tmp_path / "out"
    decode(setup, out, batch_size=1)
    path = out / "1best_recog" / PARTIAL_NAME
    path.write_text("\n".join(partial_lines(out)[:6]) + "\n")  # 5 decoded one at a time
    caplog.clear()
    with caplog.at_level(logging.INFO):
        got = decode(setup, out, batch_size=64, batch_seconds=2.5)
    assert "discarded" not in caplog.text
    assert "5 of 12 utterances already decoded; decoding the other 7" in caplog.text
    for name in ("text", "token", "token_int"):
        assert got[name] == reference[name], name


def test_bad_batch_options_are_one_line_errors(setup, tmp_path, capsys):
    from espnet_sllm.bin import sllm_inference

    tmp, _ = setup
    for opts, message in ((["--batch_size", "0"], "--batch_size must be >= 1, got 0"),
                          (["--batch_seconds", "-1"], "--batch_seconds must be > 0")):
        with pytest.raises(SystemExit) as e:
            sllm_inference.main(["--train_config", str(tmp / "config.yaml"), "--output_dir",
                                 str(tmp_path / "out"), "--data_path_and_name_and_type",
                                 f"{tmp}/data/wav.scp,speech,sound", *opts])
        assert e.value.code == 1
        assert message in capsys.readouterr().err
