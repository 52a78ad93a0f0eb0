"""egs2/mls/asr1 stage 1 (run.sh -> sllm.sh -> local/data.sh) on a tiny MLS tree.

Each test runs in a throw-away copy of the recipe (espnet_sllm.testing.recipe), so the
repository's own egs2/mls/asr1/data (where a user may have prepared data) is never touched.
"""
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.data.subset import seeded_order
from espnet_sllm.testing.recipe import copy_recipe, run_recipe

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs2/mls/asr1"
SR = 16000
META_HEADER = ("SPEAKER   |   GENDER   | PARTITION  |  MINUTES   |  BOOK ID   |"
               "             TITLE              |            CHAPTER            ")


def _split(lang_dir, split, rows, missing=()):
    """rows: (handle, text); every handle gets a FLAC file of 0.1 s (and a segments.txt row
    of 0.1 s) except those in ``missing``."""
    d = lang_dir / split
    d.mkdir(parents=True)
    (d / "transcripts.txt").write_text("".join(f"{h}\t{t}\n" for h, t in rows),
                                       encoding="utf-8")
    (d / "segments.txt").write_text("".join(
        f"{h}\thttp://www.archive.org/download/b/b_{i}.mp3\t{10 + i:.2f}\t{10.1 + i:.2f}\n"
        for i, (h, _) in enumerate(rows)), encoding="utf-8")
    for h, _ in rows:
        if h in missing:
            continue
        spk, book, _ = h.split("_")
        (d / "audio" / spk / book).mkdir(parents=True, exist_ok=True)
        soundfile.write(str(d / "audio" / spk / book / f"{h}.flac"),
                        np.zeros(SR // 10, np.float32), SR, format="FLAC")


def _metainfo(lang_dir, rows):
    lines = [META_HEADER] + [f"{s:^10}|{g:^12}|{'train':^12}|{'1.0':^12}|{'1':^12}|"
                             f"{'Title':^32}|{'Chapter':^31}" for s, g in rows]
    (lang_dir / "metainfo.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def mls(tmp_path_factory):
    root = tmp_path_factory.mktemp("db") / "mls"
    de = root / "mls_german"
    _split(de, "train", [
        ("10_1_000001", "eins"), ("10_1_000002", "zwei"), ("10_2_000003", "drei"),
        ("1_5_000001", "vier"), ("1_5_000002", "fünf"), ("1_5_000003", "sechs"),
        ("1_5_000004", ""),            # empty text: dropped
        ("1_5_000005", "ohne datei"),  # no FLAC: dropped
    ], missing={"1_5_000005"})
    _split(de, "dev", [("10_3_000001", "dev satz")])
    _split(de, "test", [("2_7_000001", "test satz"), ("2_7_000002", "noch  einer")])
    _metainfo(de, [("10", "M"), ("1", "F")])  # speaker 2 missing: no spk2gender line
    pl = root / "mls_polish"
    _split(pl, "train", [("7_70_000001", "dzień dobry")])
    _split(pl, "dev", [("8_80_000001", "do widzenia")])
    _split(pl, "test", [("9_90_000001", "źdźbło")])
    _metainfo(pl, [("7", "F"), ("8", "M"), ("9", "F")])
    return root


def _copy(tmp_path):
    recipe = tmp_path / "repo/egs2/mls/asr1"
    return recipe if recipe.exists() else copy_recipe("egs2/mls/asr1", tmp_path)


@pytest.fixture
def recipe_data(tmp_path):
    return _copy(tmp_path) / "data"


def _run(mls_root, tmp_path, *args):
    return run_recipe(_copy(tmp_path), ["run.sh", "--stage", "1", "--stop_stage", "1",
                                        "--expdir", str(tmp_path / "exp"), *args],
                      MLS=str(mls_root))


def test_links_and_help():
    for name in ("sllm.sh", "path.sh", "cmd.sh", "scripts"):
        link = RECIPE / name
        assert link.is_symlink() and os.readlink(link) == f"../../TEMPLATE/sllm1/{name}"
        assert link.exists()
    r = subprocess.run(["bash", "run.sh", "--help"], cwd=RECIPE, capture_output=True, text=True)
    assert r.returncode == 0 and "--langs" in r.stdout and "balance_alpha" in r.stdout


def test_stage1_balanced(mls, tmp_path, recipe_data):
    r = _run(mls, tmp_path, "--langs", "german polish",
             "--local_data_opts", "--balance_alpha 0.5 --balance_seed 3")
    assert r.returncode == 0, r.stdout + r.stderr
    sets = ["mls_de_train", "mls_de_dev", "mls_de_test", "mls_pl_train", "mls_pl_dev",
            "mls_pl_test", "train_unbalanced", "train", "dev"]
    for name in sets:
        validate_data_dir(recipe_data / name)
    assert sorted(p.name for p in recipe_data.iterdir() if p.is_dir() and not p.name.startswith(".")) == sorted(sets)
    cmd = (tmp_path / "exp" / "sllm_data" / "run.sh.cmd").read_text()
    assert r"--test_sets mls_de_test\ mls_pl_test" in cmd
    assert r"--local_data_opts --langs\ german\,polish\ --balance_alpha\ 0.5" in cmd

    # Per-language sets: ids, text, drops, genders.
    assert read_kv(recipe_data / "mls_de_train" / "text") == {
        "mls-de-1-5_000001": "vier", "mls-de-1-5_000002": "fünf", "mls-de-1-5_000003": "sechs",
        "mls-de-10-1_000001": "eins", "mls-de-10-1_000002": "zwei",
        "mls-de-10-2_000003": "drei",
    }
    assert read_kv(recipe_data / "mls_de_test" / "text") == {
        "mls-de-2-7_000001": "test satz", "mls-de-2-7_000002": "noch einer"}
    assert read_kv(recipe_data / "mls_de_test" / "wav.scp")["mls-de-2-7_000001"] == str(
        mls / "mls_german/test/audio/2/7/2_7_000001.flac")
    assert not (recipe_data / "mls_de_test" / "spk2gender").exists()
    assert "(empty_text=1, missing_audio=1)" in r.stdout
    assert "speaker_not_in_metainfo=1" in r.stdout

    # The plain combination, then the balanced set: q = (6/7)^.5, (1/7)^.5 normalised
    # = 0.710, 0.290 of 7 utterances -> 5 German (subsampled), 2 Polish (1 + one copy).
    unbal = read_kv(recipe_data / "train_unbalanced" / "utt2lang")
    assert sorted(unbal.values()) == ["de"] * 6 + ["pl"]
    lang = read_kv(recipe_data / "train" / "utt2lang")
    assert sorted(lang.values()) == ["de"] * 5 + ["pl"] * 2
    assert set(lang) - set(unbal) == {"mls-pl-7-70_000001-rep1"}
    wav = read_kv(recipe_data / "train" / "wav.scp")
    assert wav["mls-pl-7-70_000001-rep1"] == wav["mls-pl-7-70_000001"]
    assert read_kv(recipe_data / "train" / "utt2spk")["mls-pl-7-70_000001-rep1"] == "mls-pl-7"
    assert "pl                  1  0.1429          2  0.2899         +1" in r.stdout
    assert read_kv(recipe_data / "train_unbalanced" / "spk2gender") == {
        "mls-de-1": "f", "mls-de-10": "m", "mls-pl-7": "f"}
    genders = read_kv(recipe_data / "train" / "spk2gender")
    assert genders["mls-pl-7"] == "f" and set(genders) <= {"mls-de-1", "mls-de-10", "mls-pl-7"}

    assert read_kv(recipe_data / "dev" / "text") == {
        "mls-de-10-3_000001": "dev satz", "mls-pl-8-80_000001": "do widzenia"}
    assert read_kv(recipe_data / "dev" / "spk2gender") == {"mls-de-10": "m", "mls-pl-8": "m"}

    # Same inputs again: stage 1 is skipped.
    r = _run(mls, tmp_path, "--langs", "german polish",
             "--local_data_opts", "--balance_alpha 0.5 --balance_seed 3")
    assert r.returncode == 0 and "Stage 1: skipped" in r.stderr


def test_stage1_unbalanced_limited(mls, tmp_path, recipe_data):
    hr1 = mls / "mls_polish" / "train" / "limited_supervision" / "1hr"
    for k in range(6):
        (hr1 / str(k)).mkdir(parents=True, exist_ok=True)
        (hr1 / str(k) / "handles.txt").write_text("7_70_000001\n" if k == 2 else "")
    try:
        r = _run(mls, tmp_path, "--langs", "polish", "--local_data_opts", "--limited 1hr/2")
    finally:
        shutil.rmtree(hr1.parent)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("mls_pl_train", "train", "dev", "mls_pl_test"):
        validate_data_dir(recipe_data / name)
    assert not (recipe_data / "train_unbalanced").exists()
    assert read_kv(recipe_data / "train" / "text") == {"mls-pl-7-70_000001": "dzień dobry"}
    assert read_kv(recipe_data / "train" / "spk2gender") == {"mls-pl-7": "f"}


def test_stage1_errors(mls, tmp_path, recipe_data):
    # Default --langs: all eight; the first absent folder is named, with the variable.
    r = _run(mls, tmp_path)
    assert r.returncode != 0
    assert f"no folder mls_english in MLS={mls}" in r.stderr
    assert "MLS=/path/to/mls ./run.sh" in r.stderr

    r = _run(tmp_path / "nowhere", tmp_path, "--langs", "german")
    assert r.returncode != 0
    assert f"MLS corpus root MLS={tmp_path / 'nowhere'} does not exist" in r.stderr

    r = _run(mls, tmp_path, "--langs", "german swedish")
    assert r.returncode != 0 and "unknown MLS language ['swedish']" in r.stderr

    r = _run(mls, tmp_path, "--langs", "german",
             "--local_data_opts", "--balance_alpha 1.5")
    assert r.returncode != 0 and "alpha must be in (0, 1], got 1.5" in r.stderr

    r = _run(mls, tmp_path, "--langs", "german", "--local_data_opts", "--limited 2hr")
    assert r.returncode != 0 and "unknown --limited '2hr'" in r.stderr


def test_stage1_max_hours(mls, tmp_path, recipe_data):
    # German: 6 training utterances of 0.1 s (segments.txt); 0.0001 h = 0.36 s -> the first 4
    # of the seeded order.  Polish (0.1 s) holds less than its cap: kept whole.
    r = _run(mls, tmp_path, "--langs", "german polish", "--train_set", "train_de",
             "--local_data_opts",
             "--max_hours de=0.0001,pl=1,en=5 --max_hours_seed 5 --train_name train_de"
             " --balance_alpha 0.5")
    assert r.returncode == 0, r.stdout + r.stderr
    full = read_kv(recipe_data / "mls_de_train" / "utt2dur")
    assert len(full) == 6 and set(full.values()) == {"0.100"}
    capped = recipe_data / "mls_de_train_0.0001h"
    validate_data_dir(capped)
    expected = seeded_order(full, 5)[:4]
    assert sorted(read_kv(capped / "text")) == sorted(expected)
    assert sorted(read_kv(capped / "utt2dur")) == sorted(expected)
    assert not (recipe_data / "mls_pl_train_1h").exists()
    assert "holds 0.000028 h only: kept whole" in r.stdout
    assert "--max_hours en=5: 'en' is not among --langs (german polish): ignored" in r.stdout
    # The cap comes before the combination and the balancing, into <train_name>.
    unbal = read_kv(recipe_data / "train_de_unbalanced" / "utt2lang")
    assert sorted(unbal) == sorted(expected + ["mls-pl-7-70_000001"])
    validate_data_dir(recipe_data / "train_de")
    assert set(read_kv(recipe_data / "train_de" / "utt2lang").values()) == {"de", "pl"}
    assert not (recipe_data / "train").exists()
    # Another seed, another subset (of the same size).
    r = _run(mls, tmp_path, "--langs", "german", "--train_set", "train_de",
             "--local_data_opts", "--max_hours de=0.0001 --train_name train_de")
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(read_kv(capped / "text")) == sorted(seeded_order(full, 0)[:4])
    assert sorted(read_kv(recipe_data / "train_de" / "text")) == sorted(seeded_order(full, 0)[:4])


def test_stage1_segments_txt_split_on_any_blanks(mls, tmp_path, recipe_data):
    # The release separates segments.txt by tabs; a copy re-saved with spaces gives the same
    # durations (public MLS recipes split on any blanks).
    spaced = tmp_path / "mls"
    shutil.copytree(mls, spaced)
    seg = spaced / "mls_german" / "train" / "segments.txt"
    seg.write_text(seg.read_text(encoding="utf-8").replace("\t", "  "), encoding="utf-8")
    r = _run(spaced, tmp_path, "--langs", "german", "--train_set", "train_de",
             "--local_data_opts", "--max_hours de=0.0001 --train_name train_de")
    assert r.returncode == 0, r.stdout + r.stderr
    full = read_kv(recipe_data / "mls_de_train" / "utt2dur")
    assert len(full) == 6 and set(full.values()) == {"0.100"}


@pytest.mark.parametrize("opts, message", [
    ("--max_hours sv=10", "--max_hours: unknown language code 'sv' in 'sv=10'; valid: en de"),
    ("--max_hours de=ten", "--max_hours: the hours of 'de' must be a number > 0, got 'ten'"),
    ("--max_hours de=0", "the hours of 'de' must be a number > 0, got '0'"),
    ("--max_hours de", "--max_hours: 'de' is not <code>=<hours> (e.g. en=10000)"),
    ("--max_hours de=1,de=2", "--max_hours: language 'de' is given twice"),
    ("--train_name dev", "--train_name must be a data directory name"),
    ("--max_hours_seed x", "--max_hours_seed must be a number >= 0, got 'x'"),
])
def test_stage1_max_hours_errors(mls, tmp_path, opts, message):
    r = _run(mls, tmp_path, "--langs", "german", "--local_data_opts", opts)
    assert r.returncode != 0 and message in r.stderr, r.stderr
