"""egs2/mlc_slm/asr1: `./run.sh --system s4 --stage 1 --stop_stage 1` on the tiny MLC-SLM +
Common Voice trees of test_mlc_slm_data_sh, in a throw-away copy of the recipe."""
from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.testing.recipe import copy_recipe, run_recipe
from tests.recipe.test_mlc_slm_data_sh import corpus  # noqa: F401  (the fixture)


def test_run_sh_stage1(corpus, tmp_path):  # noqa: F811
    recipe = copy_recipe("egs2/mlc_slm/asr1", tmp_path)
    proc = run_recipe(recipe, ["run.sh", "--system", "s4", "--stage", "1", "--stop_stage", "1"],
                      **corpus)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("train", "dev", "cv_train", "train_cv"):
        validate_data_dir(recipe / "data" / name)
    assert set(read_kv(recipe / "data/train_cv/utt2lang").values()) == {
        "English", "English-American", "Japanese"}
    # Done once: the same command skips stage 1.
    again = run_recipe(recipe, ["run.sh", "--system", "s4", "--stage", "1", "--stop_stage", "1"],
                       **corpus)
    assert again.returncode == 0 and "Stage 1: skipped" in again.stderr + again.stdout


def test_run_sh_stage1_missing_corpus(tmp_path):
    recipe = copy_recipe("egs2/mlc_slm/asr1", tmp_path)
    proc = run_recipe(recipe, ["run.sh", "--system", "s1", "--stage", "1", "--stop_stage", "1"],
                      MLC_SLM=str(tmp_path / "nowhere"))
    assert proc.returncode != 0
    assert "MLC_SLM=" in proc.stderr
