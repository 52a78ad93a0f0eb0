"""sllm.sh stage 6 with three chained configs (issue #11 §4), end to end on tiny data.

conformer + tiny pretrained Qwen2 with an added token; 1 epoch per stage on one CPU thread:
  c1 on `train`:  everything but the LLM base trains, LoRA r=2;
  c2 on `train2`: encoder and projector frozen (`freeze_param`), LoRA r=2 goes on;
  c3 on `train`:  LoRA r=4: the chain merges c2's adapters into c2/chain/llm, c3's LLM.
Checked: one stats dir per training set, a cumulative checkpoint per stage, the merge, every
stage decoded and scored into its own directory (--decode_stages all), a re-run skips
everything, and changing c2 retrains c2 and c3 but not c1.
"""
import os
from pathlib import Path

import pytest
import torch
import yaml

from espnet_sllm.testing.configs import tiny_sllm_config
from espnet_sllm.testing.llm import make_tiny_llm
from espnet_sllm.testing.recipe import copy_recipe

from test_sllm_sh_stamps import ENV, run_ok, write_set  # noqa: E402 (tests/recipe is on sys.path)

EXP = "exp_c"
DUMP = "dump_c"


def write_config(recipe: Path, name: str, lora_r: int, **changes) -> str:
    cfg = tiny_sllm_config("llm_tiny", "conformer", projector="linear",
                           prompt_template="<|audio|>{speech} Transcribe.",
                           llm_extra={"lora_r": lora_r, "lora_alpha": 4,
                                      "lora_target_modules": ["q_proj", "v_proj"],
                                      "special_tokens": ["<|audio|>"]})
    cfg["projector_conf"] = {"downsample": 2}
    cfg.update(max_epoch=1, batch_type="unsorted", batch_size=4, optim="adam",
               optim_conf={"lr": 1e-3}, best_model_criterion=[["valid", "acc", "max"]],
               keep_nbest_models=1, num_workers=0, seed=0, num_att_plot=0)
    cfg.update(changes)
    (recipe / "conf" / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    return f"conf/{name}.yaml"


def argv(stage, stop, configs, *extra):
    return ["sllm.sh", "--stage", str(stage), "--stop_stage", str(stop), "--train_set", "train",
            "--valid_set", "valid", "--test_sets", "test", "--dumpdir", DUMP, "--expdir", EXP,
            "--nj", "1", "--inference_nj", "1", "--train_config", " ".join(configs),
            "--train_sets", "train train2 train", "--decode_stages", "all", "--tag", "chain",
            "--inference_args", "--max_new_tokens 4", *extra]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    recipe = copy_recipe("egs2/mini_mlc/asr1", tmp_path_factory.mktemp("chain"))
    for name, n, seed in (("train", 8, 0), ("train2", 8, 3), ("valid", 4, 1), ("test", 2, 2)):
        write_set(recipe, name, n, seed)
    make_tiny_llm(str(recipe / "llm_tiny"), "qwen2")
    configs = [write_config(recipe, "c1", 2),
               write_config(recipe, "c2", 2, freeze_param=["encoder", "projector"]),
               write_config(recipe, "c3", 4)]
    out = run_ok(recipe, argv(2, 9, configs))
    return recipe, configs, out


def test_stats_per_training_set(recipe):
    recipe, _, _ = recipe
    assert (recipe / EXP / "stats" / "train" / "speech_shape").is_file()
    assert (recipe / EXP / "stats_train2" / "train" / "speech_shape").is_file()
    keys = (recipe / EXP / "stats_train2" / "train" / "speech_shape").read_text().split()
    assert keys[0].startswith("spk1-train2")


def test_each_stage_leaves_a_cumulative_checkpoint_and_the_merge_feeds_stage3(recipe):
    recipe, _, out = recipe
    exp = recipe / EXP / "sllm_chain"
    stages = [exp / "stage1_c1", exp / "stage2_c2", exp / "stage3_c3"]
    for s in stages:
        assert (s / "chain" / "model.pth").is_file(), s
    s1 = torch.load(stages[0] / "chain" / "model.pth")
    assert any(k.startswith("encoder.") for k in s1) and any("lora_A" in k for k in s1)
    assert not any(k.endswith("base_layer.weight") for k in s1)  # frozen base: reloaded
    # stage 2 froze the encoder stage 1 trained: still in its cumulative checkpoint. (Only its
    # parameters stay equal: ESPnet's freeze_param leaves BatchNorm statistics updating.)
    s2 = torch.load(stages[1] / "chain" / "model.pth")
    stats = ("running_mean", "running_var", "num_batches_tracked")
    for k in (k for k in s1 if k.startswith("encoder.") and not k.endswith(stats)):
        assert torch.equal(s1[k], s2[k]), k
    plan1 = yaml.safe_load((stages[0] / "chain" / "chain.yaml").read_text())
    plan2 = yaml.safe_load((stages[1] / "chain" / "chain.yaml").read_text())
    assert plan1["merge"] is False and plan2["merge"] is True
    assert (stages[1] / "chain" / "llm" / "config.json").is_file()
    conf3 = yaml.safe_load((stages[2] / "config.yaml").read_text())
    assert conf3["llm_conf"]["model_name_or_path"].endswith("stage2_c2/chain/llm")
    assert conf3["llm_conf"]["lora_r"] == 4
    assert "stage 2 starts with: --init_param" in out
    assert (exp / "final_exp").read_text().strip().endswith("stage3_c3")


def test_every_stage_is_decoded_and_scored(recipe):
    recipe, _, _ = recipe
    exp = recipe / EXP / "sllm_chain"
    for s in ("stage1_c1", "stage2_c2", "stage3_c3"):
        d = exp / s
        hyps = list(d.glob("decode_*/test/text"))
        assert len(hyps) == 1 and len(hyps[0].read_text().splitlines()) == 2, s
        assert (d / "RESULTS.md").is_file(), s


def test_rerun_skips_and_a_changed_stage_retrains_the_later_ones(recipe):
    recipe, configs, _ = recipe
    exp = recipe / EXP / "sllm_chain"
    out = run_ok(recipe, argv(6, 6, configs))
    for c in configs:
        assert f"Stage 6: {c}: skipped" in out
    # c2 changes (another learning rate): c2 and c3 train again, c1 does not
    write_config(recipe, "c2", 2, freeze_param=["encoder", "projector"],
                 optim_conf={"lr": 2e-3})
    out = run_ok(recipe, argv(6, 6, configs))
    assert f"Stage 6: {configs[0]}: skipped" in out
    assert f"Stage 6: {configs[1]}: skipped" not in out
    assert f"Stage 6: {configs[2]}: skipped" not in out
    moved = sorted(p.name for p in exp.iterdir() if ".old." in p.name)
    assert [m.split(".old.")[0] for m in moved] == ["stage2_c2", "stage3_c3"]


def test_bad_chain_options_are_refused(recipe):
    recipe, configs, _ = recipe
    from espnet_sllm.testing.recipe import run_recipe

    proc = run_recipe(recipe, argv(6, 6, configs, "--chain_mode", "sometimes"), **ENV)
    assert proc.returncode != 0 and "--chain_mode must be cumulative or merge" in proc.stderr
    args = argv(6, 6, configs)
    args[args.index("--train_sets") + 1] = "train train2"
    proc = run_recipe(recipe, args, **ENV)
    assert proc.returncode != 0 and "names 2 sets for 3 training configs" in proc.stderr
