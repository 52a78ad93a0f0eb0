"""Tests of espnet_sllm.data.synth.kespeech: the KeSpeech and WenetSpeech debug corpora, read back
by the real readers as egs2/kespeech/asr1/local/data.sh runs them, and the Opus recordings cut by
stage 2 (format_data)."""
import json
import os
import shutil

import numpy as np
import pytest
import soundfile

from espnet_sllm.data import kaldi_dir
from espnet_sllm.data.corpora import kespeech as ks_reader
from espnet_sllm.data.corpora import wenetspeech as ws_reader
from espnet_sllm.data.formatting import format_data
from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.data.synth import conversations as sc
from espnet_sllm.data.synth import kespeech as sk

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

KEPT = {"train_phase1": 40, "train_phase2": 40, "dev_phase1": 6, "dev_phase2": 6, "test": 18}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("debug_corpora")
    ks, ws = str(root / "KeSpeech"), str(root / "WenetSpeech")
    assert sk.main(["--kespeech_out", ks, "--wenetspeech_out", ws, "--seed", "0",
                    "--nj", "2"]) == 0
    return ks, ws


@pytest.fixture(scope="module")
def data(corpora, tmp_path_factory):
    """local/data.sh's stage 1, through the same entry points."""
    ks, ws = corpora
    out = str(tmp_path_factory.mktemp("data"))
    assert ks_reader.main(["--root", ks, "--out_dir", out, "--parts", *ks_reader.PARTS,
                           "--strict", "false"]) == 0
    for name, parts in (("train", ("train_phase1", "train_phase2")),
                        ("dev", ("dev_phase1", "dev_phase2"))):
        assert kaldi_dir.main(["combine", "--out", os.path.join(out, name),
                               *(os.path.join(out, p) for p in parts)]) == 0
    assert ws_reader.main(["--json", os.path.join(ws, "WenetSpeech.json"), "--subsets",
                           "TEST_NET", "TEST_MEETING", "--out_dir", out, "--strict",
                           "false"]) == 0
    return out


def _rows(ks, part, name):
    return read_kv(os.path.join(ks, "Tasks", "ASR", part, name))


def test_kespeech_layout(corpora):
    ks, _ = corpora
    assert os.path.isfile(os.path.join(ks, sk.KS_MARKER))
    assert not os.path.exists(os.path.join(ks, sk.IN_PROGRESS))
    for part in sk.KS_PARTS:
        wavs = _rows(ks, part, "wav.scp")
        assert list(wavs) == sorted(wavs)
        spk = _rows(ks, part, "utt2spk")
        assert list(spk) == list(wavs) == list(_rows(ks, part, "text"))
        for utt, rel in wavs.items():
            assert utt.startswith(spk[utt] + "_") and len(spk[utt]) == 7
            assert len(utt.split("_")[1]) == 8
            assert rel == f"Audio/{spk[utt]}/{rel.split('/')[2]}/{utt}.wav"
            assert rel.split("/")[2] in ("phase1", "phase2")
            if part != "test":
                assert rel.split("/")[2] == "phase" + ("2" if part.endswith("2") else "1")
            info = soundfile.info(os.path.join(ks, rel))
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert sk.MIN_SEC - 1e-6 <= info.duration <= sk.MAX_SEC, (rel, info.duration)
    # Speakers never cross train / dev / test.
    spk_of = {s: {v for p in sk.KS_PARTS if p.startswith(s)
                  for v in _rows(ks, p, "utt2spk").values()} for s in ("train", "dev", "test")}
    assert len(spk_of["train"]) == 8 and len(spk_of["dev"]) == 4 and len(spk_of["test"]) == 4
    assert not (spk_of["train"] & spk_of["dev"] or spk_of["train"] & spk_of["test"]
                or spk_of["dev"] & spk_of["test"])


def test_kespeech_reader_keeps_and_cleans(corpora, data):
    ks, _ = corpora
    for part, n in KEPT.items():
        utts, stats = ks_reader.read_kespeech(ks, part)
        assert stats.kept == n, (part, stats.summary())
        assert dict(stats.dropped) == ({"only_noise": 1} if part == "train_phase1" else {})
        assert len(read_kv(os.path.join(data, part, "utt2spk"))) == n
    assert len(read_kv(os.path.join(data, "train", "utt2spk"))) == 80
    assert len(read_kv(os.path.join(data, "dev", "utt2spk"))) == 12
    # Test: >= 3 subdialects with >= 4 utterances each, carried into data/test.
    sub = read_kv(os.path.join(data, "test", "utt2subdialect"))
    per = {d: list(sub.values()).count(d) for d in set(sub.values())}
    assert len(per) >= 3 and min(per.values()) >= 4 and set(per) <= set(ks_reader.SUBDIALECTS)
    assert per == {"Mandarin": 5, "Southwestern": 5, "Northeastern": 4, "Zhongyuan": 4}
    assert set(read_kv(os.path.join(data, "train", "utt2subdialect")).values()) == set(per)
    # The odd rows: tags at the start / middle / end, blanks between words, an only-noise row.
    raw = {p: _rows(ks, p, "text") for p in sk.KS_PARTS}
    tagged = {(p, u): t for p in raw for u, t in raw[p].items() if sk.NOISE_TAG in t}
    spaced = {(p, u): t for p in raw for u, t in raw[p].items() if " " in t}
    assert len(tagged) == 4 and len(spaced) == 2
    assert any(t.startswith(sk.NOISE_TAG) and len(t) > len(sk.NOISE_TAG) for t in tagged.values())
    assert any(t.endswith(sk.NOISE_TAG) and len(t) > len(sk.NOISE_TAG) for t in tagged.values())
    assert any(not t.startswith(sk.NOISE_TAG) and not t.endswith(sk.NOISE_TAG)
               for p, t in tagged.items() if p[0] == "test")
    for (part, utt), t in {**tagged, **spaced}.items():
        text = read_kv(os.path.join(data, part, "text"))
        if t == sk.NOISE_TAG:
            assert part == "train_phase1" and utt not in text
        else:
            assert text[utt] == t.replace(sk.NOISE_TAG, "").replace(" ", "")
    for name in ("train", "dev", "test"):
        validate_data_dir(os.path.join(data, name))
        for t in read_kv(os.path.join(data, name, "text")).values():
            assert "<" not in t and " " not in t and t


def test_sentences_and_voices(data):
    texts = {s: set(read_kv(os.path.join(data, s, "text")).values())
             for s in ("train", "dev", "test", "test_net", "test_meeting")}
    # Dev and test sentences are unseen combinations of training words.
    assert not (texts["dev"] | texts["test"] | texts["test_net"] | texts["test_meeting"]) \
        & texts["train"]
    assert len(texts["train"]) == 80  # no sentence twice
    train_chars = set("".join(texts["train"]))
    assert set("".join(texts["test"])) <= train_chars
    # The subdialects' voice families do not overlap in pitch or speed.
    fams = list(sk.SUBDIALECT_VOICES.values())
    for i, a in enumerate(fams):
        for b in fams[i + 1:]:
            assert a.pitch[1] < b.pitch[0] or b.pitch[1] < a.pitch[0]
            assert a.speed[1] < b.speed[0] or b.speed[1] < a.speed[0]


def test_wenetspeech_json(corpora):
    _, ws = corpora
    with open(os.path.join(ws, "WenetSpeech.json"), encoding="utf-8") as f:
        doc = json.load(f)
    assert {"dataset", "language", "version", "description", "url", "audios"} <= set(doc)
    per = {}
    for a in doc["audios"]:
        assert {"aid", "duration", "md5", "path", "source", "tags", "url", "segments"} <= set(a)
        assert a["path"].startswith("audio/") and a["path"].endswith(f"/{a['aid']}.opus")
        info = soundfile.info(os.path.join(ws, a["path"]))
        assert (info.format, info.subtype, info.channels) == ("OGG", "OPUS", 1)
        assert abs(info.duration - a["duration"]) < 0.01
        for k, s in enumerate(a["segments"]):
            assert s["sid"] == f"{a['aid']}_S{k:05d}"
            assert 0 <= s["begin_time"] < s["end_time"] <= a["duration"]
            assert s["begin_time"] == round(s["begin_time"], 2)
            for name in s["subsets"]:
                per.setdefault(name, set()).add(a["aid"])
        if "TEST_NET" in a["segments"][0]["subsets"] or "TEST_MEETING" in \
                a["segments"][0]["subsets"]:
            assert 3 <= len(a["segments"]) <= 4
    assert len(per["TEST_NET"]) == 2 and len(per["TEST_MEETING"]) == 2


def test_opus_segments_through_format_data(corpora, data, tmp_path):
    _, ws = corpora
    with open(os.path.join(ws, "WenetSpeech.json"), encoding="utf-8") as f:
        stated = {s["sid"]: s["end_time"] - s["begin_time"]
                  for a in json.load(f)["audios"] for s in a["segments"]}
    for name, resampled in (("test_net", {}), ("test_meeting", {48000: 4})):
        assert len(read_kv(os.path.join(data, name, "utt2spk"))) == 7
        counts = format_data(os.path.join(data, name), str(tmp_path / name), fs=16000, nj=1,
                             progress=False)
        assert counts["written"] == 7 and counts["dropped"] == 0
        assert counts["resampled"] == resampled
        for utt, path in read_kv(tmp_path / name / "wav.scp").items():
            x, sr = soundfile.read(path, dtype="float32")
            assert sr == 16000
            assert abs(len(x) / sr - stated[utt]) <= 0.1, (utt, len(x) / sr, stated[utt])
            assert np.abs(x).max() > 0.1  # the segment holds the speech


def test_rerun_does_nothing_and_refusals(corpora, tmp_path):
    ks, ws = corpora
    wav = os.path.join(ks, "Tasks", "ASR", "test", "wav.scp")
    before = os.stat(wav).st_mtime_ns
    summary = sk.synthesise_kespeech(ks, seed=0)
    assert summary["counts"]["test"]["kept"] == 18 and os.stat(wav).st_mtime_ns == before
    assert sk.synthesise_wenetspeech(ws, seed=0)["counts"]["TEST_NET"]["segments"] == 7
    with pytest.raises(ValueError, match="another configuration"):
        sk.synthesise_kespeech(ks, seed=1)
    real = tmp_path / "real"
    (real / "Tasks").mkdir(parents=True)
    with pytest.raises(ValueError, match="refusing to write into it"):
        sk.synthesise_wenetspeech(str(real))
    with pytest.raises(SystemExit):  # one folder for both corpora
        sk.main(["--kespeech_out", ks, "--wenetspeech_out", ks + "/"])


def test_deterministic_and_interrupted_run_redone(corpora, tmp_path):
    _, ws = corpora
    out = tmp_path / "ws"
    out.mkdir()
    (out / sk.IN_PROGRESS).touch()  # an interrupted run: its leftovers are replaced
    (out / "audio").mkdir()
    (out / "audio" / "stale.opus").write_bytes(b"x")
    sk.synthesise_wenetspeech(str(out), seed=0, nj=1)
    assert not (out / "audio" / "stale.opus").exists() and not (out / sk.IN_PROGRESS).exists()
    # Same seed, other --nj: the same metadata (the md5 of every Opus file included).
    assert (out / "WenetSpeech.json").read_bytes() == \
        open(os.path.join(ws, "WenetSpeech.json"), "rb").read()


def test_voice_check_refuses_english_spelled_pinyin():
    sc.check_voice(sk.VOICE, sk.vocabulary_words(), "test")
    with pytest.raises(RuntimeError, match="switches language"):
        sc.check_voice("cmn", ["看见"], "the plain cmn voice")


def test_set_ogg_serial(tmp_path):
    x = (0.1 * np.random.default_rng(0).normal(size=8000)).astype(np.float32)
    paths = [str(tmp_path / f"{i}.opus") for i in range(2)]
    for p in paths:
        soundfile.write(p, x, 16000, format="OGG", subtype="OPUS")
    first = open(paths[0], "rb").read()
    # The CRC of libsndfile's first page, recomputed, is the stored one.
    end = 27 + first[26] + sum(first[27:27 + first[26]])
    page = first[:22] + b"\0\0\0\0" + first[26:end]
    assert sk.ogg_crc(page) == int.from_bytes(first[22:26], "little")
    decoded = soundfile.read(paths[0], dtype="float32")[0]
    for p in paths:
        sk.set_ogg_serial(p, 1234)
    assert open(paths[0], "rb").read() == open(paths[1], "rb").read()
    assert np.array_equal(soundfile.read(paths[0], dtype="float32")[0], decoded)
