"""Tests of espnet_sllm.data.synth.aishell_wmt: the five debug corpora of egs2/aishell_wmt/asr1,
read back by the real readers through the entry points egs2/aishell_wmt/asr1/local/data.sh
calls."""
import json
import os
import re
import shutil
import tarfile

import pytest
import soundfile

from espnet_sllm.data.corpora import aishell, aishell2, alpaca_zh, wenetspeech, wmt19
from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.data.synth import aishell_wmt as sa
from espnet_sllm.data.synth import conversations as sc
from espnet_sllm.data.synth import kespeech as sk

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

TEXT_ONLY = ("wmt19_train", "wmt19_test", "alpaca_zh")


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("debug") / "aishell_wmt")
    assert sa.main(["--out", out, "--seed", "0", "--nj", "2"]) == 0
    # The files as written, before the AISHELL-1 reader extracts its archives in place.
    files = {os.path.relpath(os.path.join(d, f), out): open(os.path.join(d, f), "rb").read()
             for d, _, fs in os.walk(out) for f in fs}
    return out, files


@pytest.fixture(scope="module")
def data(corpora, tmp_path_factory):
    """local/data.sh's readers (part A), through the same entry points and options."""
    root, _ = corpora
    out = str(tmp_path_factory.mktemp("data"))
    j = lambda *p: os.path.join(*p)  # noqa: E731
    assert aishell.main(["--root", j(root, "aishell"), "--data_dir", out,
                         "--strict", "false"]) == 0
    assert aishell2.main(["--root", j(root, "aishell2"), "--device", "iOS", "--split", "test",
                          "--out", j(out, "aishell2_test"), "--strict", "false"]) == 0
    assert wmt19.main(["--root", j(root, "wmt19"), "--data_dir", out, "--max_pairs", "0",
                       "--strict", "false"]) == 0
    assert alpaca_zh.main(["--root", j(root, "alpaca_zh"), "--out", j(out, "alpaca_zh"),
                           "--max_records", "0", "--strict", "false"]) == 0
    assert wenetspeech.main(["--json", j(root, "wenetspeech", "WenetSpeech.json"), "--subsets",
                             "M", "--out_dir", out, "--prefix", "wenetspeech_",
                             "--strict", "false"]) == 0
    return out


def _kv(data, name, field):
    return read_kv(os.path.join(data, name, field))


def test_layout(corpora):
    root, files = corpora
    for c in sa.CORPORA:
        assert f"{c}/{sa.MARKERS[c]}" in files
        assert not os.path.exists(os.path.join(root, c, sk.IN_PROGRESS))
    # AISHELL-1 as downloaded: the transcript and one archive per speaker, nothing extracted.
    archives = sorted(f for f in files if f.startswith("aishell/data_aishell/wav/"))
    speakers = [s for split in ("train", "dev", "test") for s in sa.AISHELL_PLAN[split][0]]
    assert archives == sorted(f"aishell/data_aishell/wav/{s}.tar.gz" for s in speakers)
    for spk, split in (("S0002", "train"), ("S0727", "dev"), ("S0766", "test")):
        with tarfile.open(os.path.join(root, "aishell/data_aishell/wav", f"{spk}.tar.gz")) as t:
            names = t.getnames()
            assert all(m.isfile() or m.isdir() for m in t.getmembers())
        assert names[:2] == [split, f"{split}/{spk}"]
        assert all(re.fullmatch(rf"{split}/{spk}/BAC009{spk}W\d{{4}}\.wav", n)
                   for n in names[2:])
    transcript = files["aishell/data_aishell/transcript/aishell_transcript_v0.8.txt"]
    lines = transcript.decode("utf-8").splitlines()
    assert len(lines) == 80 + 16 + 12 and lines == sorted(lines)
    assert all(re.fullmatch(r"BAC009S\d{4}W\d{4}( \S+)+", line) for line in lines)
    # AISHELL-2: wav.scp / trans.txt with TABs, paths relative to iOS/test.
    scp = files["aishell2/AISHELL-DEV-TEST-SET/iOS/test/wav.scp"].decode().splitlines()
    assert scp[0] == "IT0011W0001\twav/T0011/IT0011W0001.wav" and len(scp) == 12
    trans = files["aishell2/AISHELL-DEV-TEST-SET/iOS/test/trans.txt"].decode().splitlines()
    assert [t.split("\t")[0] for t in trans] == [s.split("\t")[0] for s in scp]
    assert set(files) >= {"wmt19/news-commentary-v14.en-zh.tsv", "wmt19/sgm/newstest2019-zhen-"
                          "src.zh.sgm", "wmt19/sgm/newstest2019-zhen-ref.en.sgm",
                          "alpaca_zh/alpaca_data_zh_51k.json", "wenetspeech/WenetSpeech.json"}
    assert not any(f.endswith(".wav") for f in files if f.startswith(("wmt19", "alpaca")))


def test_aishell(corpora, data):
    root, _ = corpora
    sizes = {"train": 80, "dev": 16, "test": 12}
    spk_of = {}
    for split, n in sizes.items():
        name = f"aishell_{split}"
        assert validate_data_dir(os.path.join(data, name))["utterances"] == n
        spk = _kv(data, name, "utt2spk")
        spk_of[split] = set(spk.values())
        assert len(spk_of[split]) >= 3
        assert {f"BAC009{s}" for s in sa.AISHELL_PLAN[split][0]} == spk_of[split]
        for utt, path in _kv(data, name, "wav.scp").items():
            assert utt.startswith(spk[utt]) and re.fullmatch(r"BAC009S\d{4}W\d{4}", utt)
            assert path == os.path.join(root, "aishell", "data_aishell", "wav", split,
                                        utt[6:11], f"{utt}.wav")
            info = soundfile.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert sa.MIN_SEC - 1e-6 <= info.duration <= sa.MAX_SEC
        for text in _kv(data, name, "text").values():
            assert text and " " not in text
        assert set(_kv(data, name, "utt2lang").values()) == {"zh"}
    assert not (spk_of["train"] & spk_of["dev"] or spk_of["train"] & spk_of["test"])
    # The release's flaw: one training WAV without a transcript line, dropped and counted.
    _, stats = aishell.read_aishell(os.path.join(root, "aishell"))
    assert dict(stats["train"].dropped) == {"no_transcript": 1}
    assert stats["train"].rows == 81 and stats["transcript"].kept == 108
    assert dict(stats["archives"].per_group) == {"already_extracted": 15}


def test_aishell2(corpora, data):
    assert validate_data_dir(os.path.join(data, "aishell2_test"))["utterances"] == 12
    spk = _kv(data, "aishell2_test", "utt2spk")
    assert sorted(set(spk.values())) == ["IT0011", "IT0012", "IT0013"]
    assert sorted(spk)[:2] == ["IT0011W0001", "IT0011W0002"]
    for path in _kv(data, "aishell2_test", "wav.scp").values():
        info = soundfile.info(path)
        assert info.samplerate == 16000 and sa.MIN_SEC - 1e-6 <= info.duration <= sa.MAX_SEC


def test_wmt19(data):
    src = _kv(data, "wmt19_train", "text")
    tgt = _kv(data, "wmt19_train", "text_tgt")
    assert len(src) == len(tgt) == 200
    # Ids are line numbers of the TSV: 10 pairs, a document break, 10 pairs, ...
    assert sorted(src)[:11] == [f"wmt19nc-{n:08d}" for n in list(range(1, 11)) + [12]]
    test_src = _kv(data, "wmt19_test", "text")
    test_tgt = _kv(data, "wmt19_test", "text_tgt")
    assert len(test_src) == 12 and "wmt19nt-chinanews.com.1201-0001" in test_src
    assert {k.rsplit("-", 1)[0] for k in test_src} == {f"wmt19nt-{d}" for d in sa.WMT_TEST_DOCS}
    for name in ("wmt19_train", "wmt19_test"):
        assert set(_kv(data, name, "utt2task").values()) == {"st"}
        assert set(_kv(data, name, "utt2lang").values()) == {"zh"}
    for zh, en in list(zip(src.values(), tgt.values())) + \
            [(test_src[k], test_tgt[k]) for k in test_src]:
        assert zh.endswith("。") and re.fullmatch(r"[A-Z][a-z ]+\.", en)
    # The same Chinese sentence always has the same translation (a learnable mapping).
    zh_en = {}
    for k in src:
        assert zh_en.setdefault(src[k], tgt[k]) == tgt[k]


def test_wmt19_document_breaks(corpora):
    root, _ = corpora
    utts, stats = wmt19.read_news_commentary(
        os.path.join(root, "wmt19", "news-commentary-v14.en-zh.tsv"), strict=True)
    assert len(utts) == 200 and dict(stats.dropped) == {"empty_both": 19}


def test_alpaca_zh(data):
    text = _kv(data, "alpaca_zh", "text")
    tgt = _kv(data, "alpaca_zh", "text_tgt")
    assert sorted(text) == [f"alpacazh-{i:06d}" for i in range(60)]
    assert set(_kv(data, "alpaca_zh", "utt2task").values()) == {"sqa"}
    translations = {k: v for k, v in text.items() if v.startswith(sa.ALPACA_TRANSLATE + " ")}
    assert len(translations) == sa.ALPACA_TRANSLATIONS
    for k, v in text.items():
        if k in translations:
            assert v.endswith("。") and tgt[k].endswith(".")
        else:
            assert v.endswith(("？", "。")) and tgt[k].endswith("。")
            assert not re.search(r"[A-Za-z]", v + tgt[k])
    assert sum(t.startswith("1. ") and " 2. " in t for t in tgt.values()) == 8
    for name in TEXT_ONLY:  # speech comes from the recipe's TTS
        assert not os.path.exists(os.path.join(data, name, "wav.scp"))
    # The made-up world is consistent: one answer per question.
    assert len({text[k] for k in text if k not in translations}) == 32


def test_wenetspeech_m(corpora, data):
    root, _ = corpora
    ws = os.path.join(root, "wenetspeech")
    segs = read_kv(os.path.join(data, "wenetspeech_m", "segments"))
    assert len(segs) == 2 * sa.WS_SEGMENTS
    assert set(read_kv(os.path.join(data, "wenetspeech_m", "wav.scp"))) == \
        {r.aid for r in sa.WS_RECORDINGS}
    utts, _ = wenetspeech.read_wenetspeech(os.path.join(ws, "WenetSpeech.json"),
                                           ["S", "M", "W"])
    assert [len(utts[s]) for s in ("S", "M", "W")] == [100, 200, 200]
    seconds = sum(float(e) - float(b) for _, b, e in (v.split() for v in segs.values()))
    assert seconds > 400  # dataset 3 takes 200 h x 1/1800 = 400 s (the debug scale)
    with open(os.path.join(ws, "WenetSpeech.json"), encoding="utf-8") as f:
        doc = json.load(f)
    assert "aishell_wmt" in doc["description"]
    for a in doc["audios"]:
        assert a["path"].startswith("audio/train/")
        info = soundfile.info(os.path.join(ws, a["path"]))
        assert (info.format, info.subtype) == ("OGG", "OPUS")


def test_sentences_split_and_vocabulary(data):
    def texts(*names):
        return {t.rstrip("。") for n in names for t in _kv(data, n, "text").values()}

    train = texts("aishell_train", "wmt19_train", "wenetspeech_m")
    held_out = texts("aishell_dev", "aishell_test", "aishell2_test", "wmt19_test")
    assert not train & held_out  # unseen combinations of training words
    for name in ("aishell_dev", "aishell_test", "aishell2_test", "wmt19_test"):
        assert all(sc.split_of(sk.SPLIT_KEY, t) != "train" for t in texts(name))
    # No sentence twice over the ASR / ST corpora of one recipe.
    read = [t for n in ("aishell_train", "aishell_dev", "aishell_test", "aishell2_test",
                        "wmt19_train", "wmt19_test") for t in _kv(data, n, "text").values()]
    assert len({t.rstrip("。") for t in read}) == len(read)
    assert set("".join(held_out)) <= set("".join(train))
    sc.check_voice(sa.VOICE, sa.all_words(), "test")


def test_rerun_does_nothing_and_refusals(corpora, tmp_path):
    root, _ = corpora
    marker = os.path.join(root, "wmt19", sa.MARKERS["wmt19"])
    before = os.stat(marker).st_mtime_ns
    summaries = sa.synthesise(root, seed=0)
    assert summaries["aishell"]["counts"]["train"]["transcribed"] == 80
    assert os.stat(marker).st_mtime_ns == before
    with pytest.raises(ValueError, match="another configuration"):
        sa.synthesise(root, seed=1, corpora=["alpaca_zh"])
    real = tmp_path / "real"
    (real / "wmt19").mkdir(parents=True)
    (real / "wmt19" / "news-commentary-v14.en-zh.tsv").write_text("a\tb\n")
    with pytest.raises(ValueError, match="refusing to write into it"):
        sa.synthesise(str(real))
    assert sorted(os.listdir(real)) == ["wmt19"]  # refused before anything was written
    assert sa.main(["--out", str(real)]) == 1
    with pytest.raises(ValueError, match="unknown corpus"):
        sa.synthesise(str(tmp_path / "x"), corpora=["timit"])


def test_deterministic_whatever_nj_and_interrupted_run_redone(corpora, tmp_path):
    root, files = corpora
    out = tmp_path / "again"
    (out / "aishell").mkdir(parents=True)
    (out / "aishell" / sk.IN_PROGRESS).touch()  # an interrupted run: its leftovers replaced
    (out / "aishell" / "data_aishell").mkdir()
    (out / "aishell" / "data_aishell" / "stale.wav").write_bytes(b"x")
    parts = [c for c in sa.CORPORA if c != "wenetspeech"]  # its Opus: test_synth_kespeech
    sa.synthesise(str(out), seed=0, nj=1, corpora=parts)
    assert not (out / "aishell" / "data_aishell" / "stale.wav").exists()
    again = {os.path.relpath(os.path.join(d, f), out): open(os.path.join(d, f), "rb").read()
             for d, _, fs in os.walk(out) for f in fs}
    assert set(again) == {f for f in files if f.split("/")[0] in parts}
    assert all(again[f] == files[f] for f in again), \
        [f for f in again if again[f] != files[f]]
