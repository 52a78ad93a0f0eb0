"""egs2/mls/{asr1,st1}/run.sh: the errors before any work (unknown --system, stages 4-10 without
one, st1 without its asr1 model), and --help."""
import subprocess

from espnet_sllm.testing.recipe import REPO, copy_recipe, run_recipe


def test_unknown_system_lists_the_valid_ones(tmp_path):
    for recipe, valid in (("asr1", "baseline base base_no_ws base_no_dual large"),
                          ("st1", "baseline base large base_cot large_cot")):
        r = run_recipe(REPO / "egs2/mls" / recipe, ["run.sh", "--system", "basee"])
        assert r.returncode != 0
        assert f"unknown --system 'basee'; valid: {valid}" in r.stderr
        r = run_recipe(REPO / "egs2/mls" / recipe, ["run.sh", "--stage", "4"])
        assert r.returncode != 0 and "stages 4-10 need --system" in r.stderr


def test_st1_needs_its_asr1_model(tmp_path):
    st1 = copy_recipe("egs2/mls/st1", tmp_path)
    r = run_recipe(st1, ["run.sh", "--system", "large_cot", "--debug", "true", "--stage", "4"])
    assert r.returncode != 0
    assert ("starts from the asr1 model ../asr1/exp_debug/sllm_large/valid.acc.ave.pth, which "
            "does not exist: run ../asr1/run.sh --system large --debug true first") in r.stderr
    missing = tmp_path / "none.pth"
    r = run_recipe(st1, ["run.sh", "--system", "base", "--stage", "6", "--asr_model",
                         str(missing)])
    assert r.returncode != 0 and f"asr1 model {missing}, which does not exist" in r.stderr


def test_help():
    for recipe in ("asr1", "st1"):
        r = subprocess.run(["bash", "run.sh", "--help"], cwd=REPO / "egs2/mls" / recipe,
                           capture_output=True, text=True)
        assert r.returncode == 0 and "--system" in r.stdout and "--debug" in r.stdout
