"""Run a recipe of ``egs2/`` in a throw-away copy, so that tests never touch the ``data/``,
``dump/`` and ``exp/`` of the repository's own recipe directories (where a user may have real
data prepared).

The copy is ``<tmp>/egs2/<corpus>/<task>`` with the recipe's own files copied (without
``data dump exp downloads dump_debug exp_debug``) and its links to ``egs2/TEMPLATE/sllm1``
recreated.  ``path.sh`` finds the repository root three levels above the recipe, so ``<tmp>``
gets links ``tools`` and ``espnet_sllm`` to the repository's (the venv and the package).

Usage:
    from espnet_sllm.testing.recipe import copy_recipe, run_recipe
    recipe = copy_recipe("egs2/mls/asr1", tmp_path)
    proc = run_recipe(recipe, ["run.sh", "--stage", "1", "--stop_stage", "1"], MLS=str(tree))
    assert proc.returncode == 0, proc.stderr
    # outputs under recipe / "data"
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Union

REPO = Path(__file__).resolve().parents[2]
# Outputs of a recipe run: never copied.
_OUTPUTS = {"data", "dump", "exp", "downloads", "dump_debug", "exp_debug"}


def copy_recipe(recipe: Union[str, Path], tmp: Union[str, Path]) -> Path:
    """Copy ``recipe`` (``egs2/<corpus>/<task>``, relative to the repository) under ``tmp``;
    returns the copy's directory."""
    src = REPO / recipe
    if not (src / "run.sh").is_file():
        raise FileNotFoundError(f"{src}: not a recipe directory (no run.sh)")
    rel = src.relative_to(REPO)
    root = Path(tmp) / "repo"
    dst = root / rel
    dst.mkdir(parents=True, exist_ok=False)
    for entry in src.iterdir():
        if entry.name in _OUTPUTS:
            continue
        target = dst / entry.name
        if entry.is_symlink():
            # Links to the template stay relative: the copy has egs2/TEMPLATE linked below.
            os.symlink(os.readlink(entry), target)
        elif entry.is_dir():
            shutil.copytree(entry, target, symlinks=True)
        else:
            shutil.copy2(entry, target)
    (root / "egs2").mkdir(exist_ok=True)
    for name in ("TEMPLATE", "tools", "espnet_sllm"):
        link = root / ("egs2/TEMPLATE" if name == "TEMPLATE" else name)
        if not link.exists():
            os.symlink(REPO / ("egs2/TEMPLATE" if name == "TEMPLATE" else name), link)
    return dst


def run_recipe(recipe_dir: Union[str, Path], argv: List[str],
               **env_vars: str) -> subprocess.CompletedProcess:
    """Run ``bash <argv>`` in ``recipe_dir`` with the test interpreter's venv first on PATH,
    the repository on PYTHONPATH and ``env_vars`` (corpus roots) set."""
    env: Dict[str, str] = dict(os.environ, **env_vars)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(["bash", *argv], cwd=str(recipe_dir), env=env,
                          capture_output=True, text=True)


def load_recipe_script(recipe: Union[str, Path], relpath: str = "local/make_configs.py"):
    """Import a recipe's Python script (``local/make_configs.py`` by default) as a module, under
    a name unique to the recipe (recipes are not packages; their scripts share file names)."""
    import importlib.util

    path = Path(recipe) if Path(recipe).is_absolute() else REPO / recipe
    name = "recipe_" + re.sub(r"\W", "_", str(path.relative_to(REPO) / relpath))
    spec = importlib.util.spec_from_file_location(name, path / relpath)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
