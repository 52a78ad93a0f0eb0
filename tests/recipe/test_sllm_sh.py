"""The template driver's option handling and input checks (no training here: see .ci/run)."""
import os
import subprocess

import pytest

RECIPE = os.path.join(os.path.dirname(__file__), "..", "..", "egs2", "mini_mlc", "asr1")


def sllm(*args):
    return subprocess.run(["./sllm.sh", *args], cwd=RECIPE, capture_output=True, text=True)


def test_help_lists_stages():
    proc = sllm("--help")
    assert proc.returncode == 0
    for word in ("Stages:", "collect stats", "context re-decoding", "--inference_nj"):
        assert word in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["--no_such_option", "1"], "unknown option"),
        (["--valid_set", "v", "--train_config", "conf/train.yaml"], "--train_set is required"),
        (["--train_set", "t", "--valid_set", "v", "--train_config", "nope.yaml"],
         "train config not found: nope.yaml"),
        (["--train_set", "t", "--valid_set", "v", "--train_config", "conf/train_debug.yaml",
          "--stage", "2", "--stop_stage", "2", "--expdir", "/tmp/_sllm_sh_test_exp"],
         "missing input: data/t/wav.scp"),
    ],
)
def test_bad_options_and_missing_inputs(args, message):
    proc = sllm(*args)
    assert proc.returncode != 0
    assert message in proc.stderr
