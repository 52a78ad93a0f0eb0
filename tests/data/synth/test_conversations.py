"""Tests of espnet_sllm.data.synth.conversations: a tiny mini_mlc corpus read back by the
MLC-SLM reader."""
import dataclasses
import itertools
import os
import shutil

import numpy as np
import pytest
import soundfile

from espnet_sllm.data.synth import conversations as sc
from espnet_sllm.data.corpora.mlc_slm import read_mlc_slm

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

LABELS = ["English-American", "Japanese"]
SIZES = dict(n_train_sessions=2, n_valid_sessions=2, n_test_sessions=2, turns_per_session=4)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("mini_mlc"))
    sc.synthesise(out, LABELS, SIZES, seed=0, nj=1, progress=False)
    return out


@pytest.fixture(scope="module")
def sets(corpus):
    return {split: read_mlc_slm(os.path.join(corpus, split)) for split in sc.SPLITS}


def test_layout(corpus):
    assert os.path.isfile(os.path.join(corpus, sc.MARKER))
    train = os.path.join(corpus, "train", "data")
    assert sorted(os.listdir(train)) == ["English", "Japanese"]
    # Training release layout: accent folder with the _English suffix and a <NNNN>/ level.
    assert os.listdir(os.path.join(train, "English")) == ["American_English"]
    assert os.path.isfile(os.path.join(train, "English", "American_English", "0001",
                                       "0001_tts.wav"))
    assert os.path.isfile(os.path.join(train, "Japanese", "0001", "0002_tts.txt"))
    # Development layout: plain accent folder, no grouping level.
    assert os.path.isfile(os.path.join(corpus, "test", "data", "English", "American",
                                       "0005_tts.wav"))
    info = soundfile.info(os.path.join(corpus, "test", "data", "Japanese", "0006_tts.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")


def test_reader_reads_it(sets):
    for split, (utts, stats) in sets.items():
        assert stats.recordings == 4 and stats.kept == 16, (split, stats.summary())
        assert dict(stats.per_language) == {"English-American": 8, "Japanese": 8}
        assert stats.clipped_end == 0 and not stats.skipped
        assert {u.spk.rsplit("-", 1)[1] for u in utts} == {"O1", "O2"}
    # Sessions are disjoint across the splits.
    recs = [{u.segment.recid for u in utts} for utts, _ in sets.values()]
    assert not (recs[0] & recs[1] or recs[0] & recs[2] or recs[1] & recs[2])
    # Japanese is written in kana without blanks.
    ja = [u.text for u in sets["train"][0] if u.lang == "Japanese"]
    assert all(" " not in t and all("\u3040" <= c <= "\u30ff" for c in t) for t in ja)


def test_segments_hold_speech(sets):
    for utts, _ in sets.values():
        by_rec = {}
        for u in utts:
            by_rec.setdefault(u.wav, []).append(u)
        for wav, rec in by_rec.items():
            x, sr = soundfile.read(wav, dtype="float32")
            assert sr == 16000 and x.ndim == 1
            rec.sort(key=lambda u: u.segment.start)
            for i, u in enumerate(rec):
                s, e = u.segment.start, u.segment.end
                assert 0 <= s < e <= len(x) / sr
                assert 0.8 <= e - s <= 3.5, (u.uttid, e - s)
                seg = x[int(s * sr): int(e * sr)]
                assert np.sqrt(np.mean(seg ** 2)) > 0.02, u.uttid
                # Turns alternate O1/O2 and are separated by 0.2-0.6 s of silence.
                assert u.spk.endswith("O1" if i % 2 == 0 else "O2")
                if i:
                    gap_start = rec[i - 1].segment.end
                    assert 0.19 <= s - gap_start <= 0.61
                    gap = x[int(gap_start * sr) + 80: int(s * sr) - 80]
                    assert np.sqrt(np.mean(gap ** 2)) < 0.005


def test_test_sentences_unseen(sets):
    def texts(split, lang):
        return {u.text for u in sets[split][0] if u.lang.split("-")[0] == lang}

    for lang in ("English", "Japanese"):
        train = texts("train", lang)
        assert train and not texts("test", lang) & train
        assert not texts("valid", lang) & train
        # ... but made of training words only (checked on the full sentence space below).


def test_neighbouring_turns_share_a_word(sets):
    n = 0
    for utts, _ in sets.values():
        for u in utts:
            if u.text_prev:
                lang = u.lang.split("-")[0]
                shared = sc.content_words(u.text, lang) & sc.content_words(u.text_prev, lang)
                assert shared, (u.text_prev, u.text)
                n += 1
    assert n == 3 * 4 * 3  # 3 splits x 4 recordings x 3 turns with a predecessor


def test_idempotent_and_refuses_other_config(corpus):
    wav = os.path.join(corpus, "test", "data", "Japanese", "0006_tts.wav")
    mtime = os.path.getmtime(wav)
    sc.synthesise(corpus, LABELS, SIZES, seed=0, nj=1, progress=False)
    assert os.path.getmtime(wav) == mtime
    with pytest.raises(ValueError, match="another configuration"):
        sc.synthesise(corpus, LABELS, SIZES, seed=1, nj=1, progress=False)


def test_deterministic(tmp_path, corpus):
    sizes = dict(SIZES, n_train_sessions=1, n_valid_sessions=1, n_test_sessions=1)
    sc.synthesise(str(tmp_path / "a"), ["Japanese"], sizes, seed=0, nj=1, progress=False)
    sc.synthesise(str(tmp_path / "b"), ["Japanese"], sizes, seed=0, nj=2, progress=False)
    for rel in ["train/data/Japanese/0001/0001_tts.wav", "test/data/Japanese/0003_tts.txt"]:
        with open(tmp_path / "a" / rel, "rb") as fa, open(tmp_path / "b" / rel, "rb") as fb:
            assert fa.read() == fb.read()


def test_sentence_space_partition():
    """Every frame of every language has sentences in each split, and valid/test sentences
    use training words only: unseen combinations, never unseen words."""
    for name, lang in sc.LANGUAGES.items():
        split_words = {s: set() for s in sc.SPLITS}
        for tpl in lang.templates:
            slots = sc.template_slots(lang, tpl)
            found = set()
            for vals in itertools.product(*[range(len(lang.vocab[s])) for s in slots]):
                sent = sc.render(lang, tpl, dict(zip(slots, vals)))
                split = sc.split_of(name, sent.text)
                found.add(split)
                split_words[split].update(sent.content)
            assert found == set(sc.SPLITS), (name, tpl, found)
        train_words = split_words["train"]
        assert split_words["test"] <= train_words and split_words["valid"] <= train_words


def test_check_espeak_catches_spelled_out_script(monkeypatch):
    sc.check_espeak(list(sc.ACCENTS))
    ja = sc.LANGUAGES["Japanese"]
    kanji = dataclasses.replace(ja, vocab=dict(ja.vocab, animal=[{"": "猫"}]))
    monkeypatch.setitem(sc.LANGUAGES, "Japanese", kanji)
    with pytest.raises(RuntimeError, match="switches language"):
        sc.check_espeak(["Japanese"])


def test_bad_label(tmp_path):
    with pytest.raises(ValueError, match="unknown language"):
        sc.synthesise(str(tmp_path / "x"), ["Klingon"], SIZES, progress=False)


def test_release_layout_is_read_like_the_release(tmp_path):
    sizes = dict(n_train_sessions=1, n_valid_sessions=1, n_test_sessions=1, turns_per_session=2)
    out = str(tmp_path / "rel")
    sc.synthesise(out, ["English-British", "Thai"], sizes, seed=0, nj=1, progress=False,
                  release_layout=True)
    assert sorted(os.listdir(out)) == sorted([sc.MARKER, *sc.RELEASE_FOLDERS.values()])
    train = os.path.join(out, "MLC-SLM_Workshop-Training_Set_1", "data")
    assert os.path.isfile(os.path.join(train, "English", "British_English", "0001", "0001_tts.wav"))
    dev = os.path.join(out, "MLC-SLM_Workshop-Development_Set")
    assert os.path.isfile(os.path.join(dev, "data", "Thai", "0002_tts.txt"))
    for folder in sc.RELEASE_FOLDERS.values():
        utts, stats = read_mlc_slm(os.path.join(out, folder))
        assert dict(stats.per_language) == {"English-British": 2, "Thai": 2}
    # the same content as the default layout (only the folder names differ)
    sc.synthesise(str(tmp_path / "plain"), ["Thai"], sizes, seed=0, nj=1, progress=False)
    with open(tmp_path / "plain/valid/data/Thai/0002_tts.txt", "rb") as a, \
            open(os.path.join(dev, "data", "Thai", "0002_tts.txt"), "rb") as b:
        assert a.read() == b.read()
    # idempotent; the marker records the layout
    sc.synthesise(out, ["English-British", "Thai"], sizes, seed=0, nj=1, progress=False,
                  release_layout=True)
    with pytest.raises(ValueError, match="another configuration"):
        sc.synthesise(out, ["English-British", "Thai"], sizes, seed=0, nj=1, progress=False)


def test_common_voice_layout_is_read_by_the_cv_reader(tmp_path):
    from espnet_sllm.data.corpora.common_voice import read_common_voice

    out = str(tmp_path / "cv")
    assert sc.main(["--out", out, "--common_voice", "--langs", "English-American",
                    "English-British", "Japanese", "--n_clips_per_lang", "5", "--nj", "1"]) == 0
    assert sorted(os.listdir(out)) == sorted([sc.CV_MARKER, "en", "ja"])
    utts, _ = read_common_voice(os.path.join(out, "ja"), split="train")
    assert len(utts) == 5 and len({u.spk for u in utts}) == 4
    assert all(u.lang == "Japanese" and u.text for u in utts)
    info = soundfile.info(utts[0].wav)
    assert (info.samplerate, info.format) == (48000, "MP3")
    train_text = {u.text for u in utts}
    assert all(sc.split_of("Japanese", t) == "train" for t in train_text)
