"""The frozen-encoder feature cache (issue #16 §4): espnet_sllm/encoders/cache.py, the model's
``encoder_feats`` input, the preprocessor and sllm_train's checks, bin/cache_encoder.py.

Tiny frozen Whisper (real length) + tiny Qwen2 + MLP projector, CTC on the encoder output; four
utterances with audio and one text-only (0 samples), written as stage 2 would (16-bit WAVs,
wav.scp, utt2num_samples)."""
import copy
import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from espnet2.train.dataset import ESPnetDataset

from espnet_sllm.bin import cache_encoder as cli
from espnet_sllm.encoders import cache
from espnet_sllm.tasks.sllm import SLLMTask
from espnet_sllm.testing.configs import config_to_args, tiny_sllm_config

SAMPLES = {"a0": 8000, "a1": 12800, "a2": 5600, "t0": 0, "a3": 9600}
TEXT = {"a0": "hello world", "a1": "the cat sat on the mat", "a2": "red fish", "t0": "paris",
        "a3": "one two three"}


def config(tiny_llm_dirs, tiny_whisper_dir, **encoder_conf):
    cfg = tiny_sllm_config(tiny_llm_dirs["qwen2"], "whisper_hf", tiny_whisper_dir,
                           ctc_weight=0.3)
    cfg["encoder_conf"].update(encoder_conf)
    cfg["model_conf"]["ctc_input"] = "encoder"  # CTC straight on the (cached) encoder output
    cfg["preprocessor_conf"] = {"prompt_key": "task", "text_only_tasks": ["qa"],
                                "prompt_template": {"asr": "{speech} Transcribe.",
                                                    "qa": "{speech}Question: {text_src}"}}
    return cfg


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A stage-2-like data directory: wav.scp, text, utt2task, text_src, utt2num_samples."""
    d = tmp_path_factory.mktemp("cache_data")
    rng = np.random.RandomState(0)
    files = {name: [] for name in ("wav.scp", "text", "utt2task", "text_src",
                                   "utt2num_samples")}
    for uid, n in SAMPLES.items():
        t = np.arange(n) / 16000
        wav = (0.3 * np.sin(2 * np.pi * 300 * t) + 0.05 * rng.randn(n)).astype(np.float32)
        sf.write(d / f"{uid}.wav", wav, 16000, subtype="PCM_16")
        files["wav.scp"].append(f"{uid} {d / f'{uid}.wav'}")
        files["text"].append(f"{uid} {TEXT[uid]}")
        files["utt2task"].append(f"{uid} {'qa' if n == 0 else 'asr'}")
        files["text_src"].append(f"{uid} {'what is the capital' if n == 0 else '-'}")
        files["utt2num_samples"].append(f"{uid} {n}")
    for name, lines in files.items():
        (d / name).write_text("\n".join(lines) + "\n")
    return d


def triples(d, feats=None):
    first = [(str(feats / cache.SCP_NAME), "encoder_feats", "kaldi_ark")] if feats else [
        (str(d / "wav.scp"), "speech", "sound")]
    return first + [(str(d / "text"), "text", "text"), (str(d / "utt2task"), "task", "text"),
                    (str(d / "text_src"), "text_src", "text")]


def batch_of(args, trip):
    """Every utterance of the data, through the training preprocessor and collate."""
    dataset = ESPnetDataset(trip, preprocess=SLLMTask.build_preprocess_fn(args, True))
    collate = SLLMTask.build_collate_fn(args, True)
    return collate([dataset[k] for k in SAMPLES])[1]


def first_update(model, batch):
    """One SGD step on ``batch``: (loss, stats, projector grads, projector weights after)."""
    model = copy.deepcopy(model)
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    loss, stats, _ = model(**batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.projector.named_parameters()}
    opt.step()
    weights = {n: p.detach().clone() for n, p in model.projector.named_parameters()}
    return loss, stats, grads, weights


@pytest.fixture(scope="module")
def built(tiny_llm_dirs, tiny_whisper_dir, data, tmp_path_factory):
    """args, the model, and float32 / float16 caches of the data (chunks of 2 utterances)."""
    args = config_to_args(config(tiny_llm_dirs, tiny_whisper_dir))
    torch.manual_seed(0)
    model = SLLMTask.build_model(args)
    out = tmp_path_factory.mktemp("caches")
    info = {dt: cache.write_cache(args, str(data / "wav.scp"), str(out / dt), dtype=dt,
                                  batch_size=2, chunk_size=2) for dt in ("float32", "float16")}
    return args, model, out, info


def test_first_update_with_the_cache_equals_training_on_the_waveform(built, data):
    args, model, out, _ = built
    wave = batch_of(args, triples(data))
    assert wave["speech_lengths"].tolist() == list(SAMPLES.values())
    ref = first_update(model, wave)
    # Measured (2026-12-01): float32 storage equal to 1e-9 (the same arithmetic); float16's
    # rounding (11 significant bits) moves the loss by 2e-6 relative and the gradients by up
    # to 2e-6 (of 0.03): the bounds below leave a factor of 10-50.
    for dtype, tol in (("float32", 1e-6), ("float16", 1e-4)):
        feats = batch_of(args, triples(data, out / dtype))
        assert "speech" not in feats and feats["encoder_feats"].dtype == torch.float32
        # the text-only row: 0 frames; the others: Whisper's (samples // 160 - 1) // 2 + 1
        assert feats["encoder_feats_lengths"].tolist() == [
            (n // 160 - 1) // 2 + 1 if n else 0 for n in SAMPLES.values()]
        for key in ("prefix", "suffix", "text", "ctc_text"):
            if key in wave:
                assert torch.equal(feats[key], wave[key]), key
        got = first_update(model, feats)
        assert float(got[0].detach()) == pytest.approx(float(ref[0].detach()), rel=tol), dtype
        for key in ("loss_ce", "loss_ctc"):
            assert float(got[1][key]) == pytest.approx(float(ref[1][key]), rel=tol), key
        for name in ref[2]:
            torch.testing.assert_close(got[2][name], ref[2][name], rtol=tol * 10, atol=tol / 5,
                                       msg=f"{dtype}: grad of projector.{name}")
            torch.testing.assert_close(got[3][name], ref[3][name], rtol=tol, atol=tol / 5,
                                       msg=f"{dtype}: updated projector.{name}")


def test_cache_layout_text_only_rows_and_float16_rounding(built, data):
    args, model, out, info = built
    import kaldiio

    f32 = kaldiio.load_scp(str(out / "float32" / cache.SCP_NAME))
    f16 = kaldiio.load_scp(str(out / "float16" / cache.SCP_NAME))
    assert list(f32) == list(SAMPLES)  # wav.scp order
    assert f32["t0"].shape == (0, 64) and f16["t0"].dtype == np.float16
    # each utterance's frames: the encoder on it alone (batch-invariant), float16 = its rounding
    model.eval()
    for uid, n in SAMPLES.items():
        if not n:
            continue
        wav, _ = sf.read(data / f"{uid}.wav", dtype="float32")
        with torch.no_grad():
            enc, lens = model.encode(torch.from_numpy(wav)[None], torch.tensor([n]))
        np.testing.assert_allclose(f32[uid], enc[0].numpy(), atol=1e-5)
        assert np.array_equal(f16[uid], f32[uid].astype(np.float16))
    summary = info["float16"]["summary"]
    assert summary["num_utterances"] == 5 and summary["dim"] == 64
    assert summary["frames"] == sum((n // 160 - 1) // 2 + 1 for n in SAMPLES.values() if n)
    assert summary["frames_per_second"] == pytest.approx(50, rel=0.02)
    assert sorted(os.listdir(out / "float16" / "chunks")) == [
        f"feats.{i}.{ext}" for i in range(3) for ext in ("ark", "scp", "scp.json")]
    # bytes: frames x 64 x 2 plus about 130 bytes of key and NumPy header per utterance
    assert summary["frames"] * 128 < summary["bytes"] < summary["frames"] * 128 + 200 * 5
    assert cache.bytes_per_hour(50, 1280) == pytest.approx(0.4608e9)


def test_a_killed_run_resumes_and_a_finished_one_is_reused(built, data, tmp_path, monkeypatch):
    args, _, out, _ = built
    calls = []
    real = cache._encode_chunk

    def dies_on_the_second_chunk(stack, wav_scp, keys, *rest):
        calls.append(list(keys))
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real(stack, wav_scp, keys, *rest)

    monkeypatch.setattr(cache, "_encode_chunk", dies_on_the_second_chunk)
    target = tmp_path / "c"
    with pytest.raises(KeyboardInterrupt):
        cache.write_cache(args, str(data / "wav.scp"), str(target), batch_size=2, chunk_size=2)
    assert not (target / cache.SCP_NAME).exists()
    assert not json.loads((target / cache.INFO_NAME).read_text())["complete"]
    calls.clear()
    monkeypatch.setattr(cache, "_encode_chunk", lambda *a: (calls.append(list(a[2])), real(*a)))
    logs = []
    cache.write_cache(args, str(data / "wav.scp"), str(target), batch_size=2, chunk_size=2,
                      log=logs.append)
    assert calls == [["a2", "t0"], ["a3"]]  # chunk 1 (killed) and chunk 2; chunk 0 is kept
    assert any("1 of 3 chunks already written (resuming)" in m for m in logs)
    import kaldiio

    a, b = (kaldiio.load_scp(str(p / cache.SCP_NAME)) for p in (target, out / "float16"))
    assert all(np.array_equal(a[k], b[k]) for k in SAMPLES)
    calls.clear()
    logs.clear()
    cache.write_cache(args, str(data / "wav.scp"), str(target), batch_size=2, chunk_size=2,
                      log=logs.append)
    assert calls == [] and any("complete and up to date" in m for m in logs)


def test_another_encoder_config_rebuilds_the_cache_and_training_refuses_the_old(
        built, data, tiny_llm_dirs, tiny_whisper_dir, tmp_path):
    args, _, out, _ = built
    target = tmp_path / "c"
    shutil.copytree(out / "float16", target)
    changed = config_to_args(config(tiny_llm_dirs, tiny_whisper_dir, layer=1))
    groups = {"train": triples(data, target), "valid": triples(data, target)}
    assert cache.check_training_cache(args, groups) == 2
    with pytest.raises(cache.CacheError, match=r"cache_info.json: the cache was written for "
                                                r"another encoder config.*encoder_conf.layer: "
                                                r"-1 -> 1"):
        cache.check_training_cache(changed, groups)
    logs = []
    cache.write_cache(changed, str(data / "wav.scp"), str(target), batch_size=2, chunk_size=2,
                      log=logs.append)
    assert any("rebuilding the cache (config_hash changed: encoder_conf.layer: -1 -> 1)" in m
               for m in logs), logs
    assert cache.check_training_cache(changed, groups) == 2
    # A changed checkpoint (same config) is another encoder too.
    assert cache.config_hash(args)[0] != cache.config_hash(changed)[0]
    a = cache.config_hash(args)[1]
    b = copy.deepcopy(a)
    b["checkpoints"]["encoder_conf.model_name_or_path"]["model.safetensors"][1] = "0" * 64
    assert cache.config_differences(a, b) == [
        "the checkpoint of encoder_conf.model_name_or_path changed (model.safetensors)"]


def test_training_checks_name_the_file_and_key(built, data, tmp_path):
    args, _, out, _ = built
    feats = out / "float16"
    both = triples(data) + [triples(data, feats)[0]]
    with pytest.raises(cache.CacheError, match="train data: both speech and encoder_feats"):
        cache.check_training_cache(args, {"train": both})
    with pytest.raises(cache.CacheError, match="neither speech"):
        cache.check_training_cache(args, {"valid": triples(data)[1:]})
    specaug = copy.copy(args)
    specaug.specaug = "specaug"
    with pytest.raises(cache.CacheError, match=r"`specaug: specaug` in the config"):
        cache.check_training_cache(specaug, {"train": triples(data, feats)})
    # An utterance of the text that the cache lacks: named with its file and line.
    partial = tmp_path / "partial"
    shutil.copytree(feats, partial)
    lines = (partial / cache.SCP_NAME).read_text().splitlines()
    (partial / cache.SCP_NAME).write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(cache.CacheError, match=r"text:5: utterance a3 is not in the cache"):
        cache.check_training_cache(args, {"train": triples(data, partial)})
    info = json.loads((partial / cache.INFO_NAME).read_text())
    (partial / cache.INFO_NAME).write_text(json.dumps(dict(info, complete=False)))
    with pytest.raises(cache.CacheError, match="the cache is incomplete"):
        cache.check_training_cache(args, {"train": triples(data, partial)})
    (partial / cache.INFO_NAME).unlink()
    with pytest.raises(cache.CacheError, match="not a cache written by"):
        cache.check_training_cache(args, {"train": triples(data, partial)})


def test_only_a_frozen_encoder_without_specaug_is_cached(tiny_llm_dirs, tiny_whisper_dir, data,
                                                         built, tmp_path):
    unfrozen = config_to_args(config(tiny_llm_dirs, tiny_whisper_dir, freeze=False))
    old = tmp_path / "old"
    shutil.copytree(built[2] / "float16", old)
    with pytest.raises(cache.CacheError, match=r"the encoder trains .*`encoder_conf.freeze: "
                                                r"true`"):
        cache.write_cache(unfrozen, str(data / "wav.scp"), str(old))
    assert (old / cache.SCP_NAME).is_file()  # refused before the old cache was removed
    conformer = tiny_sllm_config(tiny_llm_dirs["qwen2"], "conformer")
    with pytest.raises(cache.CacheError, match=r"the encoder trains .*`freeze_param: "
                                                r"\[encoder\]`"):
        cache.build_encoder_stack(config_to_args(conformer))
    conformer["freeze_param"] = ["encoder"]
    assert cache.build_encoder_stack(config_to_args(conformer)).encoder_cache_problems() == []
    conformer.update(specaug="specaug", specaug_conf={"apply_time_warp": False,
                                                      "apply_time_mask": False})
    with pytest.raises(cache.CacheError, match=r"`specaug` is set"):
        cache.build_encoder_stack(config_to_args(conformer))
    # The model refuses encoder_feats as well (ESPnet applies --freeze_param after building).
    args, model, out, _ = built
    batch = batch_of(args, triples(data, out / "float16"))
    model = copy.deepcopy(model)
    model.encoder.requires_grad_(True)
    with pytest.raises(ValueError, match=r"encoder_feats .* cannot be used .*the encoder trains"):
        model(**batch)
    with pytest.raises(ValueError, match="either speech .* or encoder_feats .*not both"):
        model(**batch, speech=torch.zeros(5, 10), speech_lengths=torch.full((5,), 10))


def test_command_line(built, data, tmp_path, capsys):
    args, _, out, _ = built
    conf = tmp_path / "train.yaml"
    conf.write_text(yaml.safe_dump({k: v for k, v in vars(args).items()
                                    if k in ("frontend", "encoder", "encoder_conf", "projector",
                                             "projector_conf", "llm", "llm_conf", "model_conf",
                                             "preprocessor_conf")}))
    assert cli.main(["--train_config", str(conf), "--print_hash", "true"]) == 0
    assert capsys.readouterr().out.strip() == cache.config_hash(args)[0]
    target = tmp_path / "c"
    assert cli.main(["--train_config", str(conf), "--data_path_and_name_and_type",
                     f"{data / 'wav.scp'},speech,sound", "--output_dir", str(target),
                     "--chunk_size", "2", "--freeze_param", "encoder"]) == 0
    assert (target / cache.SCP_NAME).read_text() == (out / "float16" / cache.SCP_NAME).read_text(
        ).replace(str(out / "float16"), str(target))
    assert cli.main(["--train_config", str(conf), "--data_path_and_name_and_type",
                     f"{data / 'text'},text,text", "--output_dir", str(target)]) == 1
    assert "must be <wav.scp>,speech,sound" in capsys.readouterr().err


def test_float16_overflow_is_an_error_asking_for_float32(built, data, tmp_path, monkeypatch):
    args, _, _, _ = built
    real = cache.EncoderStack._encode_rows

    def loud(self, *a, **k):
        enc, lens, aux, rows = real(self, *a, **k)
        return enc * 1e6, lens, aux, rows

    monkeypatch.setattr(cache.EncoderStack, "_encode_rows", loud)
    with pytest.raises(cache.CacheError, match=r"wav.scp: utterance a\d: the encoder output "
                                                r"exceeds float16's range .*--dtype float32"):
        cache.write_cache(args, str(data / "wav.scp"), str(tmp_path / "c"))
    info = cache.write_cache(args, str(data / "wav.scp"), str(tmp_path / "c"), dtype="float32")
    assert info["complete"]


def test_a_hub_id_is_identified_by_its_snapshot_without_reading_it(tmp_path, monkeypatch):
    """The hub cache names each blob by its SHA-256 (LFS) or git SHA-1: no weights are read,
    and another revision of the weights is another encoder."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--org--enc"

    def snapshot(commit, weights_sha):
        (repo / "blobs").mkdir(parents=True, exist_ok=True)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
        snap = repo / "snapshots" / commit
        snap.mkdir(parents=True)
        for name, blob in (("config.json", "c" * 40), ("model.safetensors", weights_sha)):
            (repo / "blobs" / blob).write_text("not read")
            (snap / name).symlink_to(f"../../blobs/{blob}")

    snapshot("1" * 40, "a" * 64)
    conf = {"encoder": "whisper_hf", "encoder_conf": {"model_name_or_path": "org/enc"}}
    first = cache.checkpoint_identity(conf)["encoder_conf.model_name_or_path"]
    assert first == {"config.json": [8, "git-sha1:" + "c" * 40],
                     "model.safetensors": [8, "a" * 64]}
    snapshot("2" * 40, "b" * 64)  # refs/main moves to new weights
    second = cache.checkpoint_identity(conf)
    assert second["encoder_conf.model_name_or_path"]["model.safetensors"] == [8, "b" * 64]
    conf["encoder_conf"]["model_name_or_path"] = "org/absent"
    assert cache.checkpoint_identity(conf) == {
        "encoder_conf.model_name_or_path": "not in the local hub cache"}
