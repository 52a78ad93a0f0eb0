"""egs2/mls/st1: stage 1 (run.sh -> sllm.sh -> local/data.sh) on a tiny CoVoST 2 tree.

The tree has two pairs of Ideal-LLM's five: en_de as a plain table and fr_en only as the
released .tsv.tar.gz; Common Voice tables in a newer release's column order (read by name),
with literal quotes; MP3 clips written by soundfile; a row not in Common Voice and a missing
clip (dropped and counted).  The tests run in a throw-away copy of the recipe
(espnet_sllm.testing.recipe), so the repository's own egs2/mls/st1/data is never touched.
"""
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.testing.recipe import copy_recipe, run_recipe

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs2/mls/st1"
SR = 48000
CV_HEADER = "client_id\tpath\tsentence_id\tsentence\tup_votes\tdown_votes\tlocale\tsegment"


def _cv_lang(root, code, rows, missing=()):
    d = root / code
    (d / "clips").mkdir(parents=True)
    lines = [CV_HEADER] + [f"{client}\t{clip}\tsid{i}\t{sentence}\t2\t0\t{code}\t"
                           for i, (clip, client, sentence) in enumerate(rows)]
    (d / "validated.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for clip, _, _ in rows:
        if clip not in missing:
            soundfile.write(str(d / "clips" / clip), np.zeros(SR // 4, np.float32), SR,
                            format="MP3")


def _covost(rows):
    return "path\tsentence\ttranslation\tclient_id\tsplit\n" + "".join(
        f"{clip}\tx\t{translation}\tx\t{split}\n" for clip, translation, split in rows)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("db")
    cv, covost = root / "cv", root / "covost2"
    covost.mkdir()
    _cv_lang(cv, "en", [("common_voice_en_1.mp3", "aaaa1111bbbb", 'Say "cheese".'),
                        ("common_voice_en_2.mp3", "cccc2222dddd", "Two."),
                        ("common_voice_en_3.mp3", "aaaa1111bbbb", "Three."),
                        ("common_voice_en_4.mp3", "cccc2222dddd", "Four."),
                        ("common_voice_en_5.mp3", "cccc2222dddd", "Five.")],
             missing={"common_voice_en_5.mp3"})
    (covost / "covost_v2.en_de.tsv").write_text(_covost([
        ("common_voice_en_1.mp3", 'Sag \\"Käse\\".', "train"),
        ("common_voice_en_2.mp3", "Zwei.", "train_covost"),
        ("common_voice_en_3.mp3", "Drei.", "dev"),
        ("common_voice_en_4.mp3", "Vier.", "test"),
        ("common_voice_en_5.mp3", "Fünf.", "test"),        # missing MP3
        ("common_voice_en_99.mp3", "Neunundneunzig.", "train"),  # not in Common Voice
    ]), encoding="utf-8")
    _cv_lang(cv, "fr", [("common_voice_fr_1.mp3", "ffff0000eeee", "Un."),
                        ("common_voice_fr_2.mp3", "ffff0000eeee", "Deux."),
                        ("common_voice_fr_3.mp3", "", "Trois.")])
    data = _covost([("common_voice_fr_1.mp3", "One.", "train"),
                    ("common_voice_fr_2.mp3", "Two.", "dev"),
                    ("common_voice_fr_3.mp3", "Three.", "test")]).encode("utf-8")
    with tarfile.open(covost / "covost_v2.fr_en.tsv.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("covost_v2.fr_en.tsv")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return {"COMMONVOICE": str(cv), "COVOST2": str(covost)}


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """A throw-away copy of the recipe."""
    return copy_recipe("egs2/mls/st1", tmp_path_factory.mktemp("recipe"))


@pytest.fixture(scope="module")
def recipe_data(recipe):
    return recipe / "data"


def _run(recipe, env_vars, *args, script="run.sh"):
    return run_recipe(recipe, [script, *args], **env_vars)


def test_links_are_relative():
    for name in ("sllm.sh", "path.sh", "cmd.sh", "scripts"):
        link = RECIPE / name
        assert link.is_symlink() and os.readlink(link) == f"../../TEMPLATE/sllm1/{name}"
        assert link.exists()


def test_stage1(corpus, recipe, recipe_data, tmp_path):
    r = _run(recipe, corpus, "--stage", "1", "--stop_stage", "1", "--expdir",
             str(tmp_path / "exp"),
             "--pairs", "en_de fr_en")
    assert r.returncode == 0, r.stdout + r.stderr
    data = recipe_data
    for name in ("train", "dev", "covost_en_de_test", "covost_fr_en_test", "covost_en_de_train",
                 "covost_en_de_dev", "covost_fr_en_train", "covost_fr_en_dev"):
        validate_data_dir(data / name)

    # train = en_de (train + train_covost) + fr_en train; dev likewise; tests per pair.
    assert read_kv(data / "train" / "text") == {
        "cv-en-aaaa1111-common_voice_en_1-de": 'Say "cheese".',
        "cv-en-cccc2222-common_voice_en_2-de": "Two.",
        "cv-fr-ffff0000-common_voice_fr_1-en": "Un.",
    }
    assert read_kv(data / "train" / "text_tgt") == {
        "cv-en-aaaa1111-common_voice_en_1-de": 'Sag "Käse".',
        "cv-en-cccc2222-common_voice_en_2-de": "Zwei.",
        "cv-fr-ffff0000-common_voice_fr_1-en": "One.",
    }
    assert read_kv(data / "train" / "utt2lang") == {
        "cv-en-aaaa1111-common_voice_en_1-de": "en",
        "cv-en-cccc2222-common_voice_en_2-de": "en",
        "cv-fr-ffff0000-common_voice_fr_1-en": "fr",
    }
    assert set(read_kv(data / "train" / "utt2task").values()) == {"st"}
    # utt2tgtlang: the target language, per pair and in the combined sets.
    assert read_kv(data / "train" / "utt2tgtlang") == {
        "cv-en-aaaa1111-common_voice_en_1-de": "de",
        "cv-en-cccc2222-common_voice_en_2-de": "de",
        "cv-fr-ffff0000-common_voice_fr_1-en": "en",
    }
    assert read_kv(data / "dev" / "utt2tgtlang") == {
        "cv-en-aaaa1111-common_voice_en_3-de": "de", "cv-fr-ffff0000-common_voice_fr_2-en": "en"}
    for pair, tgt in (("en_de", "de"), ("fr_en", "en")):
        for set_ in ("train", "dev", "test"):
            d = data / f"covost_{pair}_{set_}"
            tgt_langs = read_kv(d / "utt2tgtlang")
            assert set(tgt_langs) == set(read_kv(d / "utt2spk")) and \
                set(tgt_langs.values()) == {tgt}
            lines = (d / "utt2tgtlang").read_text().splitlines()
            assert lines == sorted(lines)
    assert read_kv(data / "dev" / "text_tgt") == {
        "cv-en-aaaa1111-common_voice_en_3-de": "Drei.",
        "cv-fr-ffff0000-common_voice_fr_2-en": "Two.",
    }
    assert read_kv(data / "covost_en_de_test" / "text_tgt") == {
        "cv-en-cccc2222-common_voice_en_4-de": "Vier."}
    assert read_kv(data / "covost_fr_en_test" / "utt2spk") == {
        "cv-fr-common_voice_fr_3-en": "cv-fr-common_voice_fr_3-en"}
    wav = read_kv(data / "covost_fr_en_test" / "wav.scp")["cv-fr-common_voice_fr_3-en"]
    assert wav == os.path.join(corpus["COMMONVOICE"], "fr", "clips", "common_voice_fr_3.mp3")

    # The archive was extracted into data/local/covost2, not into the corpus folder.
    assert (data / "local" / "covost2" / "covost_v2.fr_en.tsv").is_file()
    assert sorted(os.listdir(corpus["COVOST2"])) == ["covost_v2.en_de.tsv",
                                                     "covost_v2.fr_en.tsv.tar.gz"]
    # Counts are printed, with the reasons of the drops.
    assert "data/covost_en_de_train: rows=3 kept=2 dropped=1 (not_in_cv_table=1)" in r.stdout
    assert "data/covost_en_de_test: rows=2 kept=1 dropped=1 (missing_audio=1)" in r.stdout
    assert "data/train: 3 utterances; per source language: en=2 fr=1 | per target language: " \
        "de=2 en=1" in r.stdout
    assert "extracting covost_v2.fr_en.tsv" in r.stdout + r.stderr


def test_errors(corpus, recipe, tmp_path):
    exp = str(tmp_path / "exp")
    r = _run(recipe, dict(corpus, COMMONVOICE=str(tmp_path / "nowhere")), "--stage", "1",
             "--stop_stage", "1", "--expdir", exp)
    assert r.returncode != 0
    assert "COMMONVOICE=" in r.stderr and "COMMONVOICE=/path/to/cv-corpus-4 ./run.sh" in r.stderr
    r = _run(recipe, dict(corpus, COVOST2=str(tmp_path / "nowhere")), "--stage", "1",
             "--stop_stage", "1", "--expdir", exp)
    assert r.returncode != 0 and "COVOST2=/path/to/covost2 ./run.sh" in r.stderr
    r = _run(recipe, corpus, "--stage", "1", "--stop_stage", "1", "--expdir", exp,
             "--pairs", "en_fr")
    assert r.returncode != 0
    assert "unknown CoVoST 2 pair ['en_fr']; valid: en_de, de_en, es_en, fr_en, it_en" in r.stderr
    # A pair of the list whose files are absent (de_en) says what to download.
    r = _run(recipe, corpus, "--stage", "1", "--stop_stage", "1", "--expdir", exp,
             "--pairs", "de_en")
    assert r.returncode != 0 and "covost_v2.de_en.tsv.tar.gz" in r.stderr
    r = _run(recipe, corpus, "--stop_stage", "1", "--pairs", "fr-en")
    assert r.returncode != 0 and "'fr-en' is not <src>_<tgt>" in r.stderr
    r = _run(recipe, corpus, "--no_such_option", "1", script="local/data.sh")
    assert r.returncode != 0 and "unknown option '--no_such_option'" in r.stderr


def test_help(recipe):
    r = _run(recipe, {}, "--help")
    assert r.returncode == 0 and "--pairs" in r.stdout and "utt2tgtlang" in r.stdout
    r = _run(recipe, {}, "--help", script="local/data.sh")
    assert r.returncode == 0 and "covost_<src>_<tgt>_{train,dev,test}" in r.stdout
    assert "utt2tgtlang = <tgt>" in r.stdout
