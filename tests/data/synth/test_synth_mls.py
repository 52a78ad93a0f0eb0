"""Tests of espnet_sllm.data.synth.mls: the MLS, Common Voice 4 and CoVoST 2 debug corpora, read
back by the real readers (espnet_sllm.data.corpora.mls, .covost2, .common_voice)."""
import os
import re
import shutil

import pytest
import soundfile

from espnet_sllm.data.corpora import covost2 as cov_reader
from espnet_sllm.data.corpora import mls as mls_reader
from espnet_sllm.data.corpora.common_voice import read_cv_table
from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.data.synth import mls as sm

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

COUNTS = {"train": 12, "dev": 3, "test": 3}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("mls_debug")
    mls, cv, cov = str(root / "mls"), str(root / "cv"), str(root / "covost2")
    assert sm.main(["--mls_out", mls, "--cv_out", cv, "--covost_out", cov, "--seed", "0",
                    "--nj", "2"]) == 0
    return mls, cv, cov


def test_mls_read_back(corpora):
    mls = corpora[0]
    assert sorted(os.listdir(mls)) == sorted(
        [sm.MLS_MARKER] + [f"mls_{n}" for n in mls_reader.LANGUAGES])
    for name, code in mls_reader.LANGUAGES.items():
        lang_dir = os.path.join(mls, f"mls_{name}")
        genders, meta = mls_reader.read_metainfo(os.path.join(lang_dir, "metainfo.txt"),
                                                 strict=True)
        speakers = {}
        texts = set()
        for split, n in COUNTS.items():
            utts, stats = mls_reader.read_mls(lang_dir, split, strict=True)
            assert len(utts) == n and stats.kept == n and not stats.total_dropped, (name, split)
            assert {u.lang for u in utts} == {code}
            for u in utts:
                assert re.fullmatch(rf"mls-{code}-[0-9]+-[0-9]+_[0-9]{{6}}", u.uttid)
                assert u.text == u.text.lower() and u.text.strip() == u.text
                assert os.path.isfile(u.wav)
            speakers[split] = {u.spk for u in utts}
            assert {s.rsplit("-", 1)[1] for s in speakers[split]} <= set(genders)
            texts |= {(split, u.text) for u in utts}
            # segments.txt: <handle> <url> <start> <end>, end - start = the FLAC's length.
            seg = os.path.join(lang_dir, split, "segments.txt")
            rows = [line.rstrip("\n").split("\t") for line in open(seg, encoding="utf-8")]
            assert len(rows) == n and all(len(r) == 4 for r in rows)
            for handle, url, start, end in rows:
                assert url.startswith("http://www.archive.org/download/")
                spk, book, _ = handle.split("_")
                info = soundfile.info(os.path.join(lang_dir, split, "audio", spk, book,
                                                   f"{handle}.flac"))
                assert info.samplerate == 16000 and info.channels == 1
                assert info.format == "FLAC"
                assert abs((float(end) - float(start)) - info.duration) < 1e-6
                assert sm.MIN_SEC <= info.duration <= sm.MAX_SEC
        assert len(speakers["train"]) == 3
        assert not speakers["train"] & speakers["dev"] and not speakers["dev"] & speakers["test"]
        # No sentence in two splits of a language.
        assert len({t for _, t in texts}) == sum(COUNTS.values())
        # Limited supervision: 9hr + six 1hr folds of the training handles.
        utts, stats = mls_reader.read_mls(lang_dir, "train", limited="10hr", strict=True)
        assert len(utts) == sm.LIMITED_9HR + 6
        assert len(mls_reader.read_mls(lang_dir, "train", limited="1hr/3")[0]) == 1


def test_mls_cli_data_dirs(corpora, tmp_path):
    mls = corpora[0]
    out = tmp_path / "data"
    assert mls_reader.main(["--mls_root", mls, "--langs", "polish", "english", "--data_dir",
                            str(out), "--strict", "true"]) == 0
    for code in ("pl", "en"):
        for split, n in COUNTS.items():
            d = out / f"mls_{code}_{split}"
            assert validate_data_dir(d)["utterances"] == n
            assert set(read_kv(d / "spk2gender").values()) <= {"m", "f"}


def test_covost_read_back(corpora, tmp_path):
    _, cv, cov = corpora
    assert sorted(os.listdir(cov)) == sorted(
        [sm.COVOST_MARKER] + [f"covost_v2.{p}.tsv" for p in cov_reader.PAIRS])
    for pair in cov_reader.PAIRS:
        src, tgt = cov_reader.split_pair(pair)
        table = read_cv_table(os.path.join(cv, src, "validated.tsv"))
        assert len(table) == 16
        tsv = cov_reader.find_covost_tsv(cov, pair)
        sets, stats = cov_reader.read_covost2(tsv, os.path.join(cv, src), pair, strict=True)
        assert {k: len(v) for k, v in sets.items()} == {"train": 10, "dev": 3, "test": 3}
        ids = [u.uttid for v in sets.values() for u in v]
        assert len(set(ids)) == 16
        tgt_words = {w for f in sm.vocabulary_words(tgt) for w in f.split()}
        src_words = {w for f in sm.vocabulary_words(src) for w in f.split()}
        for u in (u for v in sets.values() for u in v):
            assert u.uttid.startswith(f"cv-{src}-") and u.uttid.endswith(f"-{tgt}")
            assert u.lang == src and u.task == "st"
            assert u.text[0].isupper() and u.text.endswith(".")
            words = u.text_tgt.rstrip(".").lower().split()
            assert set(words) <= tgt_words, (pair, u.text_tgt)
            assert set(u.text.rstrip(".").lower().split()) <= src_words
            info = soundfile.info(u.wav)
            assert info.samplerate == 48000 and 1.0 <= info.duration <= 3.2
        assert len({u.spk for v in sets.values() for u in v}) <= sm.CV_SPEAKERS
    # The command line of the reader, as egs2/mls/st1/local/data.sh runs it.
    assert cov_reader.main(["--cv_root", cv, "--covost_root", cov, "--pairs",
                            *cov_reader.PAIRS, "--data_dir", str(tmp_path / "data"),
                            "--strict", "true"]) == 0
    for pair in cov_reader.PAIRS:
        validate_data_dir(tmp_path / "data" / f"covost_{pair}_test")


def test_deterministic_and_idempotent(corpora, tmp_path):
    mls, cv, cov = corpora
    # The plan depends on the seed only; one utterance re-synthesised is the same file.
    a = sm.mls_plan("de", "/x", 0)
    b = sm.mls_plan("de", "/x", 0)
    assert [(u.handle, u.text, u.voice) for u in a] == [(u.handle, u.text, u.voice) for u in b]
    assert [u.text for u in sm.mls_plan("de", "/x", 1)] != [u.text for u in a]
    u = next(x for x in sm.mls_plan("de", str(tmp_path), 0) if x.split == "dev")
    sm.synth_mls_utt(u)
    with open(os.path.join(tmp_path, u.rel), "rb") as f1, \
            open(os.path.join(mls, "mls_german", u.rel), "rb") as f2:
        assert f1.read() == f2.read()
    # A second run with the same configuration does nothing; another one is refused.
    assert sm.synthesise_mls(mls, seed=0)["config"]["seed"] == 0
    assert sm.synthesise_covost(cv, cov, seed=0)["config"]["kind"] == "covost2"
    with pytest.raises(ValueError, match="another configuration"):
        sm.synthesise_mls(mls, seed=1)
    # A folder with other content and no marker is refused.
    other = tmp_path / "real"
    other.mkdir()
    (other / "mls_english").mkdir()
    with pytest.raises(ValueError, match="refusing"):
        sm.synthesise_mls(str(other), seed=0, langs=["english"])
    with pytest.raises(ValueError, match="unknown MLS language"):
        sm.synthesise_mls(str(tmp_path / "x"), langs=["swedish"])
    # One part alone (as run.sh --debug true of asr1 / st1 asks): the complete ones are kept.
    assert sm.main(["--mls_out", mls]) == 0
    assert sm.main(["--cv_out", cv, "--covost_out", cov]) == 0
    for argv in (["--cv_out", cv], [], ["--mls_out", mls, "--cv_out", mls, "--covost_out", cov]):
        with pytest.raises(SystemExit):
            sm.main(argv)


def test_recipes_stage1(corpora, tmp_path):
    """egs2/mls/asr1 and st1 local/data.sh read the debug corpora with the options run.sh
    --debug true gives them (English capped at 0.004 h, languages balanced)."""
    from espnet_sllm.testing.recipe import copy_recipe, run_recipe

    mls, cv, cov = corpora
    asr = copy_recipe("egs2/mls/asr1", tmp_path / "asr")
    r = run_recipe(asr, ["local/data.sh", "--max_hours", "en=0.004", "--train_name",
                         "train_en10k", "--balance_alpha", "0.5"], MLS=mls)
    assert r.returncode == 0, r.stdout + r.stderr
    data = asr / "data"
    capped = read_kv(data / "mls_en_train_0.004h" / "utt2dur")
    assert 0.004 * 3600 <= sum(map(float, capped.values())) < 0.004 * 3600 + sm.MAX_SEC
    assert len(capped) < COUNTS["train"]
    langs = list(read_kv(data / "train_en10k_unbalanced" / "utt2lang").values())
    assert langs.count("en") == len(capped) and langs.count("de") == COUNTS["train"]
    validate_data_dir(data / "train_en10k")
    assert validate_data_dir(data / "dev")["utterances"] == 8 * COUNTS["dev"]

    st = copy_recipe("egs2/mls/st1", tmp_path / "st")
    r = run_recipe(st, ["local/data.sh"], COMMONVOICE=cv, COVOST2=cov)
    assert r.returncode == 0, r.stdout + r.stderr
    tgt = read_kv(st / "data" / "train" / "utt2tgtlang")
    assert len(tgt) == 50 and sorted(set(tgt.values())) == ["de", "en"]
    assert list(tgt.values()).count("de") == 10
