"""Usage: python tools/check_install.py [--lock tools/requirements.lock]

The last step of ``make install``: checks that the venv can run the project and says in one
readable paragraph what is wrong when it cannot (never a raw traceback).

Checks, in order:
1. torch and torchaudio import, and torchaudio's compiled extension runs (an ABI mismatch such as
   torchaudio 2.11.1 with torch 2.11.0 shows up here as an undefined symbol);
2. a WAV written with soundfile is read back and resampled with torchaudio;
3. ESPnet, transformers, peft and espnet_sllm import;
4. ``pip check`` finds no broken requirement;
5. with ``--lock``: every package of the lock is installed at exactly its locked version.
Exit status 0 when everything passes, 1 otherwise.
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

FIX_ABI = (
    "torch and torchaudio must be a matched pair (same release, e.g. 2.11.0 + 2.11.0). "
    "Reinstall from the lock: `make clean-venv install`. In your own environment: "
    "`pip install torch==X.Y.Z torchaudio==X.Y.Z` with the same X.Y.Z."
)


def fail(what: str, err: BaseException, fix: str) -> None:
    msg = str(err).strip().splitlines()
    print(f"check_install: FAILED: {what}: {type(err).__name__}: {msg[-1] if msg else ''}", file=sys.stderr)
    print(f"check_install: fix: {fix}", file=sys.stderr)
    sys.exit(1)


def check_torch() -> str:
    try:
        import torch
    except Exception as e:  # noqa: BLE001 - any import failure is reported in one line
        fail("import torch", e, "reinstall the venv: `make clean-venv install`")
    try:
        import torchaudio
        import torchaudio.functional as F

        # forced_align is implemented in libtorchaudio.so: running it proves the ABI matches.
        log_probs = torch.randn(1, 6, 4).log_softmax(-1)
        F.forced_align(log_probs, torch.tensor([[1, 2]], dtype=torch.int32), blank=0)
    except Exception as e:  # noqa: BLE001
        fail(f"torchaudio with torch {torch.__version__}", e, FIX_ABI)
    try:
        import numpy as np
        import soundfile as sf

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "check.wav"
            sf.write(path, (0.1 * np.sin(np.arange(8000) / 5.0)).astype("float32"), 8000)
            wav, sr = sf.read(path, dtype="float32")
            out = F.resample(torch.from_numpy(wav)[None], sr, 16000)
            assert out.shape[-1] == 16000, out.shape
    except Exception as e:  # noqa: BLE001
        fail("reading and resampling a WAV (soundfile + torchaudio)", e,
             "install libsndfile1 (`apt-get install libsndfile1`) and reinstall the venv")
    return f"torch {torch.__version__}, torchaudio {torchaudio.__version__}"


def check_imports() -> str:
    versions = []
    for name in ("espnet2", "transformers", "peft", "sentencepiece", "espnet_sllm"):
        try:
            mod = __import__(name)
        except Exception as e:  # noqa: BLE001
            fail(f"import {name}", e, "reinstall the venv: `make clean-venv install`")
        versions.append(f"{name} {getattr(mod, '__version__', '')}".strip())
    return ", ".join(versions)


def check_pip() -> None:
    res = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    if res.returncode != 0:
        print("check_install: FAILED: `pip check` reports broken requirements:", file=sys.stderr)
        print(res.stdout.strip(), file=sys.stderr)
        print("check_install: fix: refresh the lock (`make lock`) or reinstall (`make clean-venv install`)",
              file=sys.stderr)
        sys.exit(1)


def read_lock(path: Path) -> dict:
    """``name==version`` lines of a lock file -> {normalised name: version}."""
    pins = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "==" not in line:
            print(f"check_install: FAILED: {path}:{lineno}: not an exact pin: {line!r}", file=sys.stderr)
            sys.exit(1)
        name, version = line.split("==", 1)
        pins[normalise(name)] = version.strip()
    return pins


def normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def check_lock(path: Path) -> str:
    from importlib import metadata

    pins = read_lock(path)
    installed = {normalise(d.metadata["Name"]): d.version for d in metadata.distributions()}
    wrong = [f"{n}: locked {v}, installed {installed.get(n, 'nothing')}"
             for n, v in sorted(pins.items()) if installed.get(n) != v]
    if wrong:
        print(f"check_install: FAILED: the venv differs from {path}:", file=sys.stderr)
        for w in wrong:
            print(f"  {w}", file=sys.stderr)
        print("check_install: fix: `make clean-venv install`", file=sys.stderr)
        sys.exit(1)
    return f"{len(pins)} locked packages at their versions"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, default=None, help="lock file to compare the venv with")
    args = parser.parse_args()
    parts = [check_torch(), check_imports()]
    check_pip()
    if args.lock is not None:
        parts.append(check_lock(args.lock))
    print("check_install: ok: " + "; ".join(parts))


if __name__ == "__main__":
    main()
