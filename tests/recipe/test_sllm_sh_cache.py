"""sllm.sh --cache_encoder true (issue #16 §4): stage 5 caches the frozen encoder's output of
the training and validation sets, stage 6 trains on it; the cache is reused on a re-run, kept
when only the LLM side of the config changes, and rebuilt when the encoder part changes.

Tiny tone data in a throw-away copy of egs2/mini_mlc/asr1; the tiny frozen Whisper (real
length) + tiny pretrained Qwen2 + MLP projector, 1 epoch of 2 steps, on one CPU thread.
"""
from pathlib import Path

import pytest
import yaml

from espnet_sllm.encoders.cache import INFO_NAME, SCP_NAME
from espnet_sllm.testing.configs import tiny_sllm_config
from espnet_sllm.testing.llm import make_tiny_llm
from espnet_sllm.testing.recipe import copy_recipe, run_recipe
from espnet_sllm.testing.whisper import make_tiny_whisper

from test_sllm_sh import _data_opts  # noqa: E402 (tests/recipe is on sys.path)
from test_sllm_sh_stamps import ENV, run_ok, write_set  # noqa: E402

EXP = "exp_k"
DUMP = "dump_k"


def write_config(recipe: Path, **changes) -> str:
    cfg = tiny_sllm_config("llm_tiny", "whisper_hf", "whisper_tiny", ctc_weight=0.3)
    cfg.update(max_epoch=1, batch_type="unsorted", batch_size=4, optim="adam",
               optim_conf={"lr": 1e-3}, best_model_criterion=[["valid", "acc", "max"]],
               keep_nbest_models=1, num_workers=0, seed=0, num_att_plot=0)
    for key, value in changes.items():
        if isinstance(value, dict):
            cfg[key] = {**cfg.get(key, {}), **value}
        else:
            cfg[key] = value
    (recipe / "conf" / "cached.yaml").write_text(yaml.safe_dump(cfg))
    return "conf/cached.yaml"


def argv(stage, stop, *extra):
    return ["sllm.sh", "--stage", str(stage), "--stop_stage", str(stop), "--train_set", "train",
            "--valid_set", "valid", "--test_sets", "valid", "--dumpdir", DUMP, "--expdir", EXP,
            "--nj", "1", "--train_config", "conf/cached.yaml", "--tag", "k",
            "--cache_encoder", "true", *extra]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    recipe = copy_recipe("egs2/mini_mlc/asr1", tmp_path_factory.mktemp("cache"))
    for name, n, seed in (("train", 8, 0), ("valid", 4, 1)):
        write_set(recipe, name, n, seed)
    make_tiny_llm(str(recipe / "llm_tiny"), "qwen2")
    make_tiny_whisper(str(recipe / "whisper_tiny"))
    write_config(recipe)
    out = run_ok(recipe, argv(2, 6))
    return recipe, out


def caches(recipe):
    return [recipe / EXP / "encoder_cache" / s for s in ("train", "valid")]


def test_stage6_trains_on_the_cache(recipe):
    recipe, out = recipe
    for c in caches(recipe):
        assert (c / SCP_NAME).is_file() and (c / ".stamps" / "cache").is_file()
        info = yaml.safe_load((c / INFO_NAME).read_text())
        assert info["complete"] and info["dtype"] == "float16"
        assert info["summary"]["num_utterances"] == (8 if c.name == "train" else 4)
    exp = recipe / EXP / "sllm_k"
    assert (exp / "valid.acc.best.pth").exists()
    config = yaml.safe_load((exp / "config.yaml").read_text())
    for part in ("train", "valid"):
        triples = config[f"{part}_data_path_and_name_and_type"]
        assert [f"{EXP}/encoder_cache/{part}/{SCP_NAME}", "encoder_feats", "kaldi_ark"] in triples
        assert not any(t[1] == "speech" for t in triples)
    assert "Stage 5: encoder cache of train -> " in out


def test_rerun_reuses_the_cache_and_another_encoder_rebuilds_it(recipe):
    recipe, _ = recipe
    arks = sorted(p for c in caches(recipe) for p in (c / "chunks").glob("*.ark"))
    mtimes = [p.stat().st_mtime_ns for p in arks]
    out = run_ok(recipe, argv(5, 6))
    assert "Stage 5: encoder cache of train: skipped (same encoder and data)" in out
    assert "Stage 5: encoder cache of valid: skipped" in out
    assert "Stage 6: conf/cached.yaml: skipped" in out
    # The LLM side changes: the cache stays (only stage 5 here; stage 6 would retrain).
    write_config(recipe, optim_conf={"lr": 2e-3})
    out = run_ok(recipe, argv(5, 5))
    assert "Stage 5: encoder cache of train: skipped" in out
    assert [p.stat().st_mtime_ns for p in arks] == mtimes
    # The encoder part changes (Whisper's first layer's output): rebuilt, and retrained on it.
    write_config(recipe, encoder_conf={"layer": 1})
    out = run_ok(recipe, argv(5, 6))
    assert "encoder cache of train: skipped" not in out
    for c in caches(recipe):
        log = (c / "cache.log").read_text()
        assert "rebuilding the cache (config_hash changed: encoder_conf.layer: -1 -> 1)" in log
        assert yaml.safe_load((c / INFO_NAME).read_text())["encoder_config"][
            "encoder_conf"]["layer"] == 1
    assert "finished with another command or other inputs" in out
    assert (recipe / EXP / "sllm_k" / "valid.acc.best.pth").exists()


def test_num_splits_splits_the_cache_with_the_other_files(recipe):
    recipe, _ = recipe
    args = argv(6, 6, "--num_splits", "2")
    args[args.index("--tag") + 1] = "ks"
    run_ok(recipe, args)
    splits = recipe / EXP / "stats" / "splits2" / SCP_NAME
    assert (splits / "num_splits").read_text().strip() == "2"
    assert (splits / INFO_NAME).is_file()  # what sllm_train checks
    assert sum(len((splits / f"split.{i}").read_text().splitlines()) for i in (0, 1)) == 8
    config = yaml.safe_load((recipe / EXP / "sllm_ks" / "config.yaml").read_text())
    assert [str(splits.relative_to(recipe)), "encoder_feats", "kaldi_ark"] in config[
        "train_data_path_and_name_and_type"]
    assert (recipe / EXP / "sllm_ks" / "valid.acc.best.pth").exists()


def test_training_refuses_a_cache_of_another_encoder(recipe):
    recipe, _ = recipe
    # Stage 6 alone after the encoder changed: sllm_train names the key that differs.
    write_config(recipe, encoder_conf={"layer": 2})
    proc = run_recipe(recipe, argv(6, 6), **ENV)
    assert proc.returncode != 0
    log = (recipe / EXP / "sllm_k" / "train.log").read_text()
    assert "the cache was written for another encoder config" in log
    assert "encoder_conf.layer: 1 -> 2" in log
    # A config the cache cannot serve is refused by stage 5.
    write_config(recipe, encoder_conf={"freeze": False})
    proc = run_recipe(recipe, argv(5, 5), **ENV)
    assert proc.returncode != 0
    log = (caches(recipe)[0] / "cache.log").read_text()
    assert "`encoder_conf.freeze: true`" in log


def test_data_opts_reads_the_cache_in_place_of_wav_scp(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    for name in ("wav.scp", "text", "utt2lang"):
        (d / name).write_text("u1 x\n")
    opts = _data_opts(tmp_path, "train_", d, "true", "false", "c/train/encoder_feats.scp")
    assert opts[1::2] == [f"{d}/text,text,text",
                          "c/train/encoder_feats.scp,encoder_feats,kaldi_ark",
                          f"{d}/utt2lang,lang,text"]
