"""egs2/mlc_slm/asr1/local/data.sh (stage 1) on a tiny synthetic MLC-SLM release tree."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs2/mlc_slm/asr1"
SR = 16000


def _session(folder, stem, lines, seconds=3.0):
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    soundfile.write(str(folder / f"{stem}.wav"),
                    (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR)
    (folder / f"{stem}.txt").write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("db")
    mlc = root / "mlc_slm"
    # Two training-set folders, with the extra <NNNN> level of the training layout.
    _session(mlc / "MLC-SLM_Workshop-Training_Set_1/data/English/American_English/0001",
             "0001_001_phone", ["0.0\t1.0\tO1\thello there", "1.0\t2.0\tO2\thi"])
    _session(mlc / "MLC-SLM_Workshop-Training_Set_2/data/Japanese/0002", "0100_001_phone",
             ["0.5\t1.5\tO1\tこんにちは", "1.5\t2.5\tO2\tはい"])
    # Development set (no extra level) and an evaluation set with 3-column annotations.
    dev = mlc / "MLC-SLM_Workshop-Development_Set/data"
    _session(dev / "English/American", "0900_001_phone",
             ["0.0\t1.0\tO1\tgood morning", "1.2\t2.0\tO2\tmorning", "2.0\t2.8\tO1\tbye"])
    _session(dev / "Japanese", "0901_001_phone", ["0.0\t1.0\tO1\tはい"])
    _session(mlc / "MLC-SLM_Workshop-Evaluation_Set/data/Japanese", "0950_001_phone",
             ["0.0\t1.0\tO1", "1.0\t2.0\tO2"])
    # Common Voice: language folders with one MP3 clip each (soundfile writes MP3).
    cv = root / "cv"
    # (fr is not a language of the training data: not read.)
    for code, sentence in [("en", "A read sentence."), ("ja", "読み上げ文です。"),
                           ("fr", "Non.")]:
        (cv / code / "clips").mkdir(parents=True)
        (cv / code / "train.tsv").write_text(
            "client_id\tpath\tsentence\tlocale\n"
            f"ffee0011aabb\tcommon_voice_{code}_1.mp3\t{sentence}\t{code}\n", encoding="utf-8")
        soundfile.write(str(cv / code / "clips" / f"common_voice_{code}_1.mp3"),
                        np.zeros(SR, np.float32), SR, format="MP3")
    return {"MLC_SLM": str(mlc), "COMMONVOICE": str(cv)}


def _run(env_vars, *args):
    env = dict(os.environ, **env_vars)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(["bash", "local/data.sh", *args], cwd=RECIPE, env=env,
                          capture_output=True, text=True, timeout=120)


def test_data_sh_all_sets(corpus, tmp_path):
    data = tmp_path / "data"
    r = _run(corpus, "--data_dir", str(data), "--use_cv", "true")
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("train_1", "train_2", "train", "dev", "eval", "cv_train", "train_cv"):
        validate_data_dir(data / name)

    text = read_kv(data / "train" / "text")
    assert text == {
        "English-American-0001_001_phone-O1-000000-000100": "hello there",
        "English-American-0001_001_phone-O2-000100-000200": "hi",
        "Japanese-0100_001_phone-O1-000050-000150": "こんにちは",
        "Japanese-0100_001_phone-O2-000150-000250": "はい",
    }
    assert read_kv(data / "train" / "text_next")[
        "English-American-0001_001_phone-O1-000000-000100"] == "hi"

    dev_prev = read_kv(data / "dev" / "text_prev")
    assert dev_prev["English-American-0900_001_phone-O2-000120-000200"] == "good morning"
    assert read_kv(data / "dev" / "text_next")[
        "English-American-0900_001_phone-O2-000120-000200"] == "bye"
    assert read_kv(data / "dev" / "utt2lang")["Japanese-0901_001_phone-O1-000000-000100"] \
        == "Japanese"

    assert not (data / "eval" / "text").exists() and not (data / "eval" / "text_prev").exists()
    assert len(read_kv(data / "eval" / "utt2spk")) == 2
    assert "data/eval has no text" in r.stdout

    cv_langs = read_kv(data / "cv_train" / "utt2lang")
    assert cv_langs == {"cv-en-ffee0011-common_voice_en_1": "English",
                        "cv-ja-ffee0011-common_voice_ja_1": "Japanese"}
    train_cv = data / "train_cv"
    assert len(read_kv(train_cv / "text")) == 6
    assert not (train_cv / "text_prev").exists() and not (train_cv / "text_next").exists()
    assert read_kv(train_cv / "segments")["cv-ja-ffee0011-common_voice_ja_1"].startswith(
        "cv-ja-ffee0011-common_voice_ja_1 0.00 ")
    assert "train_cv has no text_prev/text_next" in r.stdout


def test_data_sh_langs_and_missing_eval(corpus, tmp_path):
    data = tmp_path / "d"
    r = _run(corpus, "--data_dir", str(data), "--langs", "Japanese",
             "--eval_sets", "test=No_Such_Folder")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Skipping" in r.stdout and "MLC-SLM_Workshop-Training_Set_1" in r.stdout
    assert set(read_kv(data / "train" / "utt2lang").values()) == {"Japanese"}
    assert set(read_kv(data / "dev" / "utt2lang").values()) == {"Japanese"}
    assert not (data / "train_1").exists() and not (data / "test").exists()
    assert "No_Such_Folder not found" in r.stdout


def test_data_sh_errors(corpus, tmp_path):
    r = _run(dict(corpus, MLC_SLM=str(tmp_path / "nowhere")), "--data_dir", str(tmp_path))
    assert r.returncode != 0
    assert "MLC_SLM=" in r.stderr and "MLC_SLM=/path/to/mlc_slm ./run.sh" in r.stderr
    r = _run(dict(corpus, COMMONVOICE=str(tmp_path / "nocv")), "--data_dir", str(tmp_path),
             "--use_cv", "true")
    assert r.returncode != 0 and "COMMONVOICE=" in r.stderr
    r = _run(corpus, "--data_dir", str(tmp_path), "--langs", "Thai")
    assert r.returncode != 0 and "'Thai' (--langs) is in none of the training" in r.stderr
    r = _run(corpus, "--no_such_option", "1")
    assert r.returncode != 0 and "unknown option '--no_such_option'" in r.stderr


def test_data_sh_strict(tmp_path):
    """A segment the reader drops is counted; with --strict true it stops stage 1 with one
    ERROR line naming file:line (the option reaches the reader)."""
    mlc = tmp_path / "mlc_slm"
    _session(mlc / "MLC-SLM_Workshop-Training_Set_1/data/Japanese", "0100_001_phone",
             ["0.5\t1.5\tO1\tこんにちは", "1.5\t2.5\tO2\t  "])
    _session(mlc / "MLC-SLM_Workshop-Development_Set/data/Japanese", "0901_001_phone",
             ["0.0\t1.0\tO1\tはい"])
    env = {"MLC_SLM": str(mlc), "COMMONVOICE": str(tmp_path / "nocv")}
    r = _run(env, "--data_dir", str(tmp_path / "a"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rows=2 kept=1 dropped=1 (empty_text=1)" in r.stdout
    r = _run(env, "--data_dir", str(tmp_path / "b"), "--strict", "true")
    txt = mlc / "MLC-SLM_Workshop-Training_Set_1/data/Japanese/0100_001_phone.txt"
    assert r.returncode != 0 and f"ERROR: {txt}:2: empty_text" in r.stderr
    assert "Traceback" not in r.stderr
    r = _run(env, "--data_dir", str(tmp_path / "c"), "--strict", "yes")
    assert r.returncode != 0 and "option '--strict' is a boolean" in r.stderr
