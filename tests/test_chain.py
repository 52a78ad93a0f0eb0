"""Chained training (issue #11 §4): cumulative checkpoints, merges at LoRA changes, key errors.

Three stages on a frozen tiny Whisper + a tiny Qwen2 with an added special token:
  stage 1: projector + LoRA r=2 (+ the added row) train;
  stage 2: the projector is frozen (`freeze_param`), LoRA r=2 goes on (cumulative: no merge);
  stage 3: LoRA r=4: stage 2's adapters are folded into a merged HF LLM that stage 3 loads.
"Training" is a few Adam steps on the model's own loss, then the full state dict is saved as
ESPnet's trainer saves it; the next stage is built from its config as sllm_train builds it (the
`--llm_conf` overrides of next_opts applied, ESPnet's own load_pretrained_model for the
`--init_param`).
"""
import os

import numpy as np
import pytest
import torch
import yaml
from espnet2.torch_utils.load_pretrained_model import load_pretrained_model

from espnet_sllm.decoding.inference import load_model
from espnet_sllm.chain import (ChainError, apply_freeze_param, lora_signature, plan_next,
                               reloadable_keys, write_stage)
from espnet_sllm.tasks.sllm import SLLMTask
from espnet_sllm.testing.configs import config_to_args, tiny_sllm_config

TOKEN = "<|audio|>"


def stage_config(tmp_path, name, llm_dir, whisper_dir, lora_r, **extra):
    cfg = tiny_sllm_config(llm_dir, "whisper_hf", whisper_dir, projector="linear",
                           prompt_template=TOKEN + "{speech} Transcribe.",
                           llm_extra={"lora_r": lora_r, "lora_alpha": 4, "lora_dropout": 0.0,
                                      "lora_target_modules": ["q_proj", "v_proj"],
                                      "special_tokens": [TOKEN]})
    cfg["projector_conf"] = {"downsample": 2}
    cfg.update(extra)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path), cfg


def build_stage(config_path, cfg, opts):
    """The model of a stage as `sllm_train --config <config> <next_opts>` builds it."""
    cfg = {**cfg, "llm_conf": dict(cfg["llm_conf"])}
    init = None
    for flag, value in zip(opts[::2], opts[1::2]):
        if flag == "--llm_conf":
            key, val = value.split("=", 1)
            cfg["llm_conf"][key] = yaml.safe_load(val)
        else:
            assert flag == "--init_param"
            init = value
    # config.yaml as ESPnet writes it into the experiment: every option of the task
    path = config_path.replace(".yaml", ".run.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(vars(config_to_args(cfg)), f)
    torch.manual_seed(123)  # new modules differ from the ones of earlier stages
    model, args = SLLMTask.build_model_from_file(path, None, "cpu")
    apply_freeze_param(model, cfg.get("freeze_param", ()))
    if init is not None:
        load_pretrained_model(init, model, ignore_init_mismatch=False)
    return model, path


def batch(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    B = 2
    speech = torch.randn(B, 12000, generator=g) * 0.1
    prefix = torch.randint(3, 90, (B, 3), generator=g)
    suffix = torch.randint(3, 90, (B, 2), generator=g)
    text = torch.randint(3, 90, (B, 5), generator=g)
    text[:, -1] = model.llm.eos_token_id
    lens = lambda n: torch.full((B,), n, dtype=torch.long)  # noqa: E731
    return dict(speech=speech, speech_lengths=torch.tensor([12000, 9000]), prefix=prefix,
                prefix_lengths=lens(3), suffix=suffix, suffix_lengths=lens(2), text=text,
                text_lengths=lens(5))


def train(model, steps=3):
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for i in range(steps):
        loss, _, _ = model(**batch(model, seed=i))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def outputs(model):
    """(CE loss, greedy hypotheses) of a fixed batch, in eval mode."""
    model.eval()
    b = batch(model, seed=99)
    with torch.no_grad():
        loss = model(**b)[0]
    hyps = model.generate(**{k: v for k, v in b.items() if not k.startswith("text")},
                          max_new_tokens=6, max_tokens_per_second=None)
    return float(loss), [h for h, _ in hyps]


@pytest.fixture(scope="module")
def chain(tmp_path_factory, tiny_llm_dirs, tiny_whisper_dir):
    tmp = tmp_path_factory.mktemp("chain")
    llm = tiny_llm_dirs["qwen2"]
    confs = [stage_config(tmp, "s1", llm, tiny_whisper_dir, 2),
             stage_config(tmp, "s2", llm, tiny_whisper_dir, 2, freeze_param=["projector"]),
             stage_config(tmp, "s3", llm, tiny_whisper_dir, 4)]
    stages, opts = [], []
    for k, (path, cfg) in enumerate(confs):
        model, run_path = build_stage(path, cfg, opts)
        initial = {n: p.detach().clone() for n, p in model.named_parameters()}
        initial_out = outputs(model)
        train(model)
        exp = tmp / f"exp{k + 1}"
        exp.mkdir()
        torch.save(model.state_dict(), exp / "valid.acc.best.pth")  # ESPnet's save_strategy all
        nxt = confs[k + 1][0] if k + 1 < len(confs) else None
        report = write_stage(run_path, str(exp / "valid.acc.best.pth"), str(exp / "chain"),
                             input_config=path, next_config=nxt)
        opts = (exp / "chain" / "next_opts").read_text().split() if nxt else []
        stages.append(dict(model=model, config=run_path, exp=exp, report=report,
                           initial=initial, initial_out=initial_out, out=outputs(model)))
    return stages


def test_plan_of_each_boundary(chain):
    assert chain[0]["report"]["merge"] is False and chain[0]["report"]["exclude"] == []
    assert chain[1]["report"]["merge"] is True  # LoRA r 2 -> 4
    assert "r=2" in chain[1]["report"]["reason"] and "r=4" in chain[1]["report"]["reason"]
    assert os.path.isdir(chain[1]["exp"] / "chain" / "llm")
    assert not os.path.exists(chain[0]["exp"] / "chain" / "llm")
    assert "next_config" not in chain[2]["report"]


def test_every_stage_checkpoint_decodes_alone_and_equals_the_in_memory_model(chain):
    for stage in chain:
        model, _ = load_model(stage["config"], str(stage["exp"] / "chain" / "model.pth"), "cpu")
        loss, hyps = outputs(model)
        ref_loss, ref_hyps = stage["out"]
        assert loss == pytest.approx(ref_loss, abs=1e-6)
        assert hyps == ref_hyps


def test_cumulative_checkpoint_holds_the_trained_part_only(chain):
    s1 = torch.load(chain[0]["exp"] / "chain" / "model.pth")
    assert any(k.startswith("projector.") for k in s1)
    assert any("lora_A" in k for k in s1)
    assert any(k.endswith("new_token_embeddings") for k in s1)
    # the frozen Whisper and the frozen LLM base are reloaded from their checkpoints
    assert not any(k.startswith("encoder.") for k in s1)
    assert not any(k.endswith("base_layer.weight") or "embed_tokens" in k for k in s1)
    assert chain[0]["report"]["kept_parameters"] < chain[0]["report"]["model_parameters"] / 2


def test_stage2_keeps_what_stage1_trained_and_froze(chain):
    s1, s2 = chain[0]["model"], chain[1]["model"]
    # stage 2 started from stage 1's projector (not a random one) and did not change it
    for name, p in s2.projector.named_parameters():
        assert torch.equal(chain[1]["initial"][f"projector.{name}"],
                           dict(s1.projector.named_parameters())[name])
        assert torch.equal(p, dict(s1.projector.named_parameters())[name])
        assert not p.requires_grad
    cumulative = torch.load(chain[1]["exp"] / "chain" / "model.pth")
    assert any(k.startswith("projector.") for k in cumulative)


def test_merge_gives_the_unmerged_models_outputs(chain):
    """Stage 3 before training (the merged LLM + new zero-effect LoRA r=4) computes what stage 2
    computed (fp32)."""
    loss2, hyps2 = chain[1]["out"]
    loss3, hyps3 = chain[2]["initial_out"]
    assert loss3 == pytest.approx(loss2, abs=1e-5)
    assert hyps3 == hyps2
    # the added token's row stays trainable after the merge, and starts where stage 2 left it
    s3 = chain[2]["model"]
    assert s3.llm.n_new == 1 and s3.llm.n_earlier == 1
    assert s3.llm.new_token_embeddings.requires_grad
    assert torch.allclose(chain[2]["initial"]["llm.new_token_embeddings"],
                          chain[1]["model"].llm.new_token_embeddings)


def test_a_key_that_does_not_fit_is_an_error_naming_it(chain, tmp_path, tiny_llm_dirs,
                                                        tiny_whisper_dir):
    # a stage whose projector has another shape, started from stage 1's cumulative checkpoint
    path, cfg = stage_config(tmp_path, "bad", tiny_llm_dirs["qwen2"], tiny_whisper_dir, 2)
    cfg["projector_conf"] = {"downsample": 4}
    with pytest.raises(ChainError, match=r"projector\.\S+ \("):
        build_stage(path, cfg, ["--init_param", str(chain[0]["exp"] / "chain" / "model.pth")])
    # an unexpected key (LoRA weights into a model without LoRA)
    path, cfg = stage_config(tmp_path, "bad2", tiny_llm_dirs["qwen2"], tiny_whisper_dir, 0)
    with pytest.raises(ChainError, match="lora_A"):
        build_stage(path, cfg, ["--init_param", str(chain[0]["exp"] / "chain" / "model.pth")])


def test_plan_next_rules():
    base = {"llm": "hf", "llm_conf": {"model_name_or_path": "a", "lora_r": 8}}
    same = {"llm": "hf", "llm_conf": {"model_name_or_path": "a", "lora_r": 8,
                                      "lora_dropout": 0.3}}
    assert plan_next(base, same, "cumulative")["merge"] is False  # dropout: same weights
    assert plan_next(base, same, "merge")["merge"] is True
    no_lora = {"llm": "hf", "llm_conf": {"model_name_or_path": "a"}}
    assert plan_next(base, no_lora, "cumulative")["merge"] is True
    swap = {"llm": "hf", "llm_conf": {"model_name_or_path": "b", "lora_r": 8}}
    plan = plan_next(base, swap, "cumulative")
    assert plan["merge"] is False and plan["exclude"] == ["llm.", "ctc."]
    with pytest.raises(ChainError, match="another LLM"):
        plan_next(base, swap, "merge")
    with pytest.raises(ChainError, match="valid"):
        plan_next(base, same, "sometimes")
    assert lora_signature({"lora_r": 0}) is None


def test_reloadable_keys_name_frozen_pretrained_weights_only(chain):
    model = chain[0]["model"]
    keys = reloadable_keys(model)
    assert any(k.startswith("encoder.") for k in keys)
    assert not any(k.startswith("projector.") or "lora_" in k for k in keys)
    assert "llm.new_token_embeddings" not in keys


def test_a_frozen_adapter_is_not_reloadable(chain):
    """LoRA adapters and the added-token parameter live inside the LLM component but are not
    in its checkpoint: frozen, they are still saved."""
    model = chain[0]["model"]
    lora = [n for n, p in model.named_parameters() if "lora_A" in n]
    for n, p in model.named_parameters():
        if "lora_" in n or n == "llm.new_token_embeddings":
            p.requires_grad_(False)
    try:
        keys = reloadable_keys(model)
        assert lora and not any("lora_" in k for k in keys)
        assert "llm.new_token_embeddings" not in keys
        assert any("embed_tokens" in k for k in keys)
    finally:
        for n, p in model.named_parameters():
            if "lora_" in n or n == "llm.new_token_embeddings":
                p.requires_grad_(True)
