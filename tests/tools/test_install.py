"""The install lock (tools/requirements.lock) and the install check (tools/check_install.py)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "tools" / "requirements.lock"


def _pins(path: Path) -> dict:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and "==" in line:
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name.lower())] = version
    return pins


def _names(path: Path) -> list:
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return out


def test_lock_pins_every_line_exactly():
    for lineno, line in enumerate(LOCK.read_text().splitlines(), 1):
        if line.startswith("#") or not line.strip():
            continue
        assert re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", line), f"{LOCK}:{lineno}: {line!r}"


def test_lock_covers_requirements_and_setup():
    pins = _pins(LOCK)
    missing = [n for n in _names(ROOT / "tools" / "requirements.txt") if n not in pins]
    assert not missing, f"in tools/requirements.txt but not locked: {missing}"
    # every install_requires entry of setup.py is satisfied by the locked version
    from packaging.requirements import Requirement

    setup_src = (ROOT / "setup.py").read_text()
    block = setup_src[setup_src.index("install_requires=["):setup_src.index("],", setup_src.index("install_requires=["))]
    reqs = [Requirement(r) for r in re.findall(r'"([^"]+)"', block)]
    assert reqs
    for req in reqs:
        name = re.sub(r"[-_.]+", "-", req.name.lower())
        assert name in pins, f"setup.py requires {req} but the lock has no {name}"
        assert pins[name] in req.specifier, f"setup.py {req} excludes the locked {name}=={pins[name]}"


def test_torch_and_torchaudio_are_one_pair_everywhere():
    pins = _pins(LOCK)
    assert pins["torch"] == pins["torchaudio"], "the lock pairs torch and torchaudio of different releases"
    req = (ROOT / "tools" / "requirements.txt").read_text()
    setup_src = (ROOT / "setup.py").read_text()
    for pkg in ("torch", "torchaudio"):
        assert re.search(rf"^{pkg}=={re.escape(pins[pkg])}$", req, re.M), f"requirements.txt: {pkg}"
        assert f'"{pkg}=={pins[pkg]}"' in setup_src, f"setup.py: {pkg}"


def test_installed_venv_matches_lock():
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "check_install.py"), "--lock", str(LOCK)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "locked packages at their versions" in res.stdout


def test_version_drift_is_named(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# a lock\ntorch==0.0.1\n")
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "check_install.py"), "--lock", str(lock)],
                         capture_output=True, text=True)
    assert res.returncode == 1
    assert "torch: locked 0.0.1, installed" in res.stderr
    assert "Traceback" not in res.stderr


def test_abi_mismatch_is_one_readable_error(tmp_path):
    """A torchaudio whose library does not load (as 2.11.1 with torch 2.11.0) gives the fix, not a
    traceback."""
    fake = tmp_path / "torchaudio"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        'raise OSError("libtorchaudio.so: undefined symbol: torch_exception_get_what_without_backtrace")\n')
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "check_install.py")],
                         capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 1
    assert "FAILED: torchaudio with torch" in res.stderr
    assert "undefined symbol" in res.stderr and "matched pair" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("line", ["torch>=2.11", "torch"])
def test_lock_line_that_is_not_a_pin_is_an_error(tmp_path, line):
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"{line}\n")
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "check_install.py"), "--lock", str(lock)],
                         capture_output=True, text=True)
    assert res.returncode == 1
    assert f"{lock}:1: not an exact pin" in res.stderr
