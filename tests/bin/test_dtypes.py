"""Frozen parts run and are saved in the dtype their config names; trained parts stay fp32; a
bf16 decode runs end to end (README "Dtypes"). Through the real CLIs: ESPnet casts the model to
``--train_dtype`` after build_model, which is where a frozen bf16 Whisper / LLM used to turn fp32."""
import os

import pytest
import torch
import yaml

from espnet_sllm.tasks.sllm import SLLMTask
from espnet_sllm.testing.configs import config_to_args, tiny_sllm_config

from .test_train_inference import data_args, run, write_data

SPECIAL = ["<|startofaudio|>", "<|endofaudio|>"]


def bf16_config(llm_dir, whisper_dir, lora):
    cfg = tiny_sllm_config(llm_dir, "whisper_hf", whisper_dir, pad_to_30s=False,
                           prompt_template="<|startofaudio|>{speech}<|endofaudio|> Transcribe.")
    cfg["encoder_conf"]["dtype"] = "bfloat16"
    cfg["llm_conf"].update(dtype="bfloat16", freeze=True, special_tokens=SPECIAL)
    if lora:
        cfg["llm_conf"].update(lora_r=4, lora_alpha=8, lora_target_modules=["q_proj", "v_proj"])
    return cfg


def dtypes_of(model):
    out = {}
    for name, p in model.named_parameters():
        out.setdefault((name.split(".")[0], p.requires_grad), set()).add(p.dtype)
    return out


@pytest.mark.parametrize("lora", [False, True])
def test_espnet_cast_keeps_frozen_parts_in_their_dtype(tiny_llm_dirs, tiny_whisper_dir, lora):
    args = config_to_args(bf16_config(tiny_llm_dirs["qwen2"], tiny_whisper_dir, lora))
    model = SLLMTask.build_model(args)
    model = model.to(dtype=getattr(torch, args.train_dtype), device="cpu")  # as AbsTask does
    d = dtypes_of(model)
    assert d[("encoder", False)] == {torch.bfloat16}
    assert d[("llm", False)] == {torch.bfloat16}
    assert d[("projector", True)] == {torch.float32}
    assert d[("llm", True)] == {torch.float32}  # added-token rows (+ LoRA adapters)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_" in n for n in trained) == lora
    # outputs: one training step runs across the bf16/fp32 boundaries
    import numpy as np

    pre = SLLMTask.build_preprocess_fn(args, True)
    collate = SLLMTask.build_collate_fn(args, True)
    rng = np.random.RandomState(0)
    items = [(f"u{i}", pre(f"u{i}", {"speech": rng.randn(6000 + 2000 * i).astype(np.float32),
                                     "text": "hello world"})) for i in range(2)]
    batch = collate(items)[1]
    model.train()
    enc, _ = model.encode(batch["speech"], batch["speech_lengths"])
    emb, _, _, _ = model.speech_embeddings(batch["speech"], batch["speech_lengths"])
    assert enc.dtype == torch.float32 and emb.dtype == torch.float32
    hidden = model.llm.hidden_states(emb, torch.ones(emb.shape[:2], dtype=torch.long))
    assert hidden.dtype == torch.bfloat16
    loss, stats, _ = model(**batch)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32
               for p in model.projector.parameters())
    # cast_all (sllm_inference --dtype) casts everything
    model.cast_all(torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def train_tiny(tmp_path, cfg, n_train=8, n_valid=4):
    """Tiny tone data, stage 5 (collect stats) and one training run of ``cfg`` through the CLIs;
    returns (valid dir, exp dir, collect-stats process, the training command)."""
    train = write_data(str(tmp_path / "train"), n_train, 0)
    valid = write_data(str(tmp_path / "valid"), n_valid, 1)
    cfg.update(max_epoch=1, batch_type="unsorted", batch_size=4, optim="adam",
               optim_conf={"lr": 1e-3}, best_model_criterion=[["valid", "acc", "max"]],
               num_workers=0, seed=0, num_att_plot=0)
    cfg.setdefault("keep_nbest_models", 1)
    conf = tmp_path / "train.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    for d in (train, valid):
        with open(f"{d}/keys", "w") as f:
            f.write("".join(line.split()[0] + "\n" for line in open(f"{d}/wav.scp")))
    stats = tmp_path / "stats"
    stats_proc = run(["espnet_sllm.bin.sllm_train", "--collect_stats", "true", "--config",
                      str(conf), "--output_dir", str(stats), "--train_shape_file",
                      f"{train}/keys", "--valid_shape_file", f"{valid}/keys",
                      *data_args("train_", train), *data_args("valid_", valid)], cwd=tmp_path)
    assert (stats / "train" / "speech_shape").exists()
    exp = tmp_path / "exp"
    command = ["espnet_sllm.bin.sllm_train", "--config", str(conf), "--output_dir", str(exp),
               "--train_shape_file", str(stats / "train" / "speech_shape"),
               "--valid_shape_file", str(stats / "valid" / "speech_shape"),
               *data_args("train_", train), *data_args("valid_", valid)]
    run(command, cwd=tmp_path)
    return valid, exp, stats_proc, command


def test_train_step_save_and_bf16_decode(tmp_path, tiny_llm_dirs, tiny_whisper_dir):
    cfg = bf16_config(tiny_llm_dirs["qwen2"], tiny_whisper_dir, lora=True)
    valid, exp, stats_proc, _ = train_tiny(tmp_path, cfg)
    # stage 5 builds neither the Whisper encoder nor the LLM
    assert "building the frontend only" in stats_proc.stderr
    state = torch.load(exp / "valid.acc.best.pth", map_location="cpu", weights_only=True)
    enc = {v.dtype for k, v in state.items() if k.startswith("encoder.")}
    frozen_llm = {v.dtype for k, v in state.items()
                  if k.startswith("llm.") and "lora_" not in k and "new_token" not in k}
    trained = {v.dtype for k, v in state.items() if "lora_" in k or "new_token" in k
               or k.startswith("projector.")}
    assert enc == {torch.bfloat16} and frozen_llm == {torch.bfloat16}
    assert trained == {torch.float32}
    # the frozen weights in the checkpoint are the pretrained ones, unchanged
    from espnet_sllm.llm.hf_causal_lm import HFCausalLM

    ref = HFCausalLM(tiny_llm_dirs["qwen2"], dtype="bfloat16").model.state_dict()
    key = "model.layers.0.mlp.up_proj.weight"
    ours = [v for k, v in state.items() if k.endswith(key)]
    assert len(ours) == 1 and torch.equal(ours[0], ref[key])

    for dtype in (None, "bfloat16", "float32"):
        out = tmp_path / f"decode_{dtype}"
        extra = [] if dtype is None else ["--dtype", dtype]
        run(["espnet_sllm.bin.sllm_inference", "--train_config", str(exp / "config.yaml"),
             "--model_file", str(exp / "valid.acc.best.pth"), "--output_dir", str(out),
             "--batch_size", "2", "--max_new_tokens", "5", *extra,
             *data_args("", valid, with_text=False)], cwd=tmp_path)
        lines = (out / "1best_recog" / "text").read_text().splitlines()
        assert [ln.split()[0] for ln in lines] == [f"u{i:03d}" for i in range(4)]
    assert os.path.getsize(tmp_path / "decode_bfloat16" / "1best_recog" / "score") > 0


def test_required_grad_only_saves_the_trained_part_resumes_and_decodes(
        tmp_path, tiny_llm_dirs, tiny_whisper_dir):
    """--save_strategy required_grad_only (ESPnet alone ignores it without --use_adapter): the
    checkpoints lack the frozen Whisper and LLM base, a killed run resumes from such a
    checkpoint.pth, and decoding reloads the frozen weights from the config."""
    cfg = bf16_config(tiny_llm_dirs["qwen2"], tiny_whisper_dir, lora=True)
    cfg.update(keep_nbest_models=2, save_strategy="required_grad_only")
    valid, exp, _, common = train_tiny(tmp_path, cfg)
    for name in ("1epoch.pth", "checkpoint.pth"):
        state = torch.load(exp / name, map_location="cpu", weights_only=False)
        state = state.get("model", state)
        assert not any(k.startswith("encoder.") for k in state), name
        assert not any("base_layer" in k or "embed_tokens" in k for k in state), name
        assert any("lora_" in k for k in state) and "llm.new_token_embeddings" in state
        assert any(k.startswith("projector.") for k in state)
    # a second epoch resumes from that checkpoint.pth (model, optimizer, reporter)
    proc = run(common + ["--max_epoch", "2", "--resume", "true"], cwd=tmp_path)
    assert "2/2epoch" in proc.stderr and "1/2epoch" not in proc.stderr
    out = tmp_path / "decode"
    run(["espnet_sllm.bin.sllm_inference", "--train_config", str(exp / "config.yaml"),
         "--model_file", str(exp / "valid.acc.best.pth"), "--output_dir", str(out),
         "--batch_size", "2", "--max_new_tokens", "5", *data_args("", valid, with_text=False)],
        cwd=tmp_path)
    assert len((out / "1best_recog" / "text").read_text().splitlines()) == 4
