"""egs2/mlc_slm/asr1/run.sh: options and recipe links (the runs themselves: make mlc-slm-debug)."""
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs2/mlc_slm/asr1"


def _run(*args):
    return subprocess.run(["bash", "run.sh", *args], cwd=RECIPE, capture_output=True, text=True)


def test_links_are_relative_and_inside_the_repo():
    for name in ("sllm.sh", "path.sh", "cmd.sh", "scripts"):
        link = RECIPE / name
        assert link.is_symlink() and os.readlink(link) == f"../../TEMPLATE/sllm1/{name}"
        assert link.resolve().is_relative_to(REPO) and link.exists()


def test_help_lists_the_systems():
    proc = _run("--help")
    assert proc.returncode == 0
    assert all(s in proc.stdout for s in ("baseline", "s1", "s2", "s3", "s4", "--debug"))


@pytest.mark.parametrize("args,message", [
    ((), "--system is required"),
    (("--system", "s5"), "--system must be"),
    (("--system", "s1", "--debug", "yes"), "--debug must be true or false"),
    (("--system", "s1", "--stage", "x"), "--stage must be a number"),
])
def test_bad_options(args, message):
    proc = _run(*args)
    assert proc.returncode == 1 and message in proc.stderr
