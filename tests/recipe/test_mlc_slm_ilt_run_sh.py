"""egs2/mlc_slm/asr1 ILT: run.sh hands ilt_* to local/run_ilt.sh, whose option errors come before
any work (bad or repeated --rounds entries, too few voters), and --help; sllm.sh's
--chain_names must name every chained config."""
import subprocess

import pytest

from espnet_sllm.testing.recipe import REPO, run_recipe

RECIPE = REPO / "egs2/mlc_slm/asr1"


@pytest.mark.parametrize("rounds, message", [
    ("fix,focus", "'focus' is repeated or out of order"),
    ("focus,focus", "'focus' is repeated or out of order"),
    ("focus,finetune", "unknown round 'finetune'; valid: focus, feedback, fix (or none)"),
    ("", "--rounds is empty"),
])
def test_bad_rounds_are_errors_naming_them(rounds, message):
    r = run_recipe(RECIPE, ["run.sh", "--system", "ilt_whisper", "--rounds", rounds])
    assert r.returncode != 0 and message in r.stderr, r.stderr


def test_other_errors_and_help():
    r = run_recipe(RECIPE, ["run.sh", "--system", "ilt_whisper", "--pl_voters", "1"])
    assert r.returncode != 0 and "--pl_voters must be >= 2" in r.stderr
    r = run_recipe(RECIPE, ["run.sh", "--system=ilt_whisperx"])
    assert r.returncode != 0 and "--system must be ilt_whisper or ilt_qwen2audio" in r.stderr
    r = subprocess.run(["bash", "run.sh", "--system", "ilt_qwen2audio", "--help"], cwd=RECIPE,
                       capture_output=True, text=True)
    assert r.returncode == 0 and "--rounds" in r.stdout and "Feed-Back" in r.stdout
    r = run_recipe(RECIPE, ["sllm.sh", "--train_set", "train", "--valid_set", "dev",
                            "--stage", "6", "--stop_stage", "6",
                            "--train_config", "conf/tuning/ilt_whisper_focus_debug.yaml "
                            "conf/tuning/ilt_whisper_fix_debug.yaml", "--chain_names", "focus"])
    assert r.returncode != 0 and "--chain_names names 1 configs, --train_config has 2" in r.stderr
