"""espnet_sllm.tts + bin/synthesize: the TTS layer of egs2/aishell_wmt (issue #13), with a fake
backend (determinism, --nj, resume after a kill, drops, --max_hours, refusals) and espeak-ng."""
import json
import os
import shutil

import numpy as np
import pytest
import soundfile

from espnet_sllm.bin import synthesize as cli
from espnet_sllm.data.kaldi_dir import Utterance, read_kv, validate_data_dir, write_data_dir
from espnet_sllm.data.subset import seeded_order, subset_data_dir
from espnet_sllm.testing.tts import FakeTTS
from espnet_sllm.tts import AbsTTS, EspeakTTS, load_tts, tts_classes
from espnet_sllm.tts.command import CommandTTS
from espnet_sllm.tts.synthesize import SynthesisError, synthesize_dir

FAKE = "espnet_sllm.testing.tts:FakeTTS"
TEXTS = ["世界正在改变。", "中国经济发展很快", "把这句话翻译成英文。 我爱你", "今天天气很好",
         "我们回答问题", "花园里有小猫", "公园很大", "房子是红色的", "他喜欢吃苹果", "这是一个测试",
         "新闻评论", "市场开放"]


def make_input(tmp_path, texts=TEXTS, name="in"):
    d = tmp_path / name
    utts = [Utterance(f"wmt19nc-{i:08d}", None, text=t, text_tgt=f"target {i}", task="st",
                      lang="zh") for i, t in enumerate(texts)]
    write_data_dir(d, utts)
    (d / "utt2tgtlang").write_text("".join(f"{u.uttid} en\n" for u in utts))
    return d


def snapshot(out):
    """Everything the data directory says, and the samples of every WAV."""
    files = {f: (out / f).read_text() for f in ("wav.scp", "text", "text_tgt", "utt2task",
                                                "utt2lang", "utt2spk", "spk2utt", "utt2dur",
                                                "utt2tgtlang", "tts_log.jsonl")}
    audio = {u: soundfile.read(p, dtype="int16")[0].tobytes()
             for u, p in read_kv(out / "wav.scp").items()}
    return files, audio


def test_output_directory(tmp_path):
    inp = make_input(tmp_path)
    out = tmp_path / "out"
    s = synthesize_dir(str(inp), str(out), FakeTTS(), seed=1, progress=False)
    assert s["kept"] == len(TEXTS) and s["dropped"] == {}
    validate_data_dir(out)
    wav = read_kv(out / "wav.scp")
    for u, p in wav.items():
        assert os.path.isabs(p) and p.startswith(str(out / "wav")) and p.endswith(f"/{u}.wav")
        info = soundfile.info(p)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    # carried over: the spoken text stays in text, the target in text_tgt; utt2tgtlang too
    assert read_kv(out / "text") == read_kv(inp / "text")
    assert read_kv(out / "text_tgt") == read_kv(inp / "text_tgt")
    assert set(read_kv(out / "utt2tgtlang").values()) == {"en"}
    assert read_kv(out / "utt2spk") == {u: u for u in wav}  # the input's speakers
    log = [json.loads(line) for line in (out / "tts_log.jsonl").read_text().splitlines()]
    assert [r["utt"] for r in log] == sorted(wav)
    assert all(r["voice"] in ("fake0", "fake1", "fake2") and "shift" in r for r in log)
    assert len({r["voice"] for r in log}) > 1  # voices drawn per utterance
    dur = read_kv(out / "utt2dur")
    for r in log:
        assert float(dur[r["utt"]]) == pytest.approx(r["seconds"], abs=1e-4)
        assert r["seconds"] == pytest.approx(0.1 * sum(c.isalnum() for c in
                                                       read_kv(inp / "text")[r["utt"]]), abs=1e-3)
    assert "kept: 12" in (out / "tts_report.txt").read_text()


def test_deterministic_and_independent_of_nj(tmp_path):
    inp = make_input(tmp_path)
    synthesize_dir(str(inp), str(tmp_path / "a"), FakeTTS(), seed=5, nj=1, progress=False)
    synthesize_dir(str(inp), str(tmp_path / "b"), FakeTTS(), seed=5, nj=2, progress=False)
    fa, aa = snapshot(tmp_path / "a")
    fb, ab = snapshot(tmp_path / "b")
    assert aa == ab
    assert {k: v.replace(str(tmp_path / "b"), str(tmp_path / "a")) for k, v in fb.items()} == fa
    # another seed: other voices
    synthesize_dir(str(inp), str(tmp_path / "c"), FakeTTS(), seed=6, progress=False)
    assert snapshot(tmp_path / "c")[1] != aa


@pytest.mark.parametrize("nj", [1, 2])
def test_resume_after_a_kill(tmp_path, nj):
    inp = make_input(tmp_path)
    whole = tmp_path / "whole"
    synthesize_dir(str(inp), str(whole), FakeTTS(), seed=2, nj=nj, progress=False)
    out = tmp_path / "out"
    with pytest.raises(SynthesisError, match="failing after 4 calls"):
        synthesize_dir(str(inp), str(out), FakeTTS(fail_after=4), seed=2, nj=nj, progress=False)
    state = (out / ".tts_state.jsonl").read_text().splitlines()
    assert 4 <= len(state) < len(TEXTS)
    assert not (out / "wav.scp").exists()
    # a WAV of the killed run that is truncated is redone (its size does not match)
    first = json.loads(state[0])["utt"]
    path = next((out / "wav").rglob(f"{first}.wav"))
    path.write_bytes(path.read_bytes()[:100])
    s = synthesize_dir(str(inp), str(out), FakeTTS(), seed=2, nj=nj, progress=False)
    assert s["reused"] == len(state) - 1
    fw, aw = snapshot(whole)
    fo, ao = snapshot(out)
    assert ao == aw
    assert {k: v.replace(str(out), str(whole)) for k, v in fo.items()} == fw
    # a third run does nothing new
    assert synthesize_dir(str(inp), str(out), FakeTTS(), seed=2, progress=False)["reused"] == \
        len(TEXTS)


def test_drops_are_counted(tmp_path):
    texts = TEXTS[:4] + ["SHORT 短", "QUIET 安静的句子", "。。！", "   "]
    inp = make_input(tmp_path, texts)
    out = tmp_path / "out"
    s = synthesize_dir(str(inp), str(out), FakeTTS(), seed=0, progress=False)
    assert s["kept"] == 4
    assert s["dropped"] == {"empty_text": 1, "not_speakable": 1, "silent": 1, "too_short": 1}
    report = (out / "tts_report.txt").read_text()
    assert "dropped: 4, empty_text: 1, not_speakable: 1, silent: 1, too_short: 1" in report
    assert "wmt19nc-00000004\ttoo_short\t0.050 s for 6 letters" in report
    log = {json.loads(x)["utt"]: json.loads(x) for x in (out / "tts_log.jsonl").read_text()
           .splitlines()}
    assert log["wmt19nc-00000005"]["dropped"] == "silent"
    assert len(read_kv(out / "wav.scp")) == 4


def test_max_sec_leaves_long_ones_out_of_the_hours(tmp_path):
    texts = ["短句子", "这是一个很长很长很长的句子"]  # 0.3 s / 1.3 s at 0.1 s per letter
    inp = make_input(tmp_path, texts)
    out = tmp_path / "out"
    s = synthesize_dir(str(inp), str(out), FakeTTS(), progress=False, max_sec=1.0)
    assert s["kept"] == 1 and s["dropped"] == {"too_long": 1}
    assert list(read_kv(out / "wav.scp")) == ["wmt19nc-00000000"]
    log = [json.loads(x) for x in (out / "tts_log.jsonl").read_text().splitlines()]
    assert log[1]["dropped"] == "too_long" and log[1]["seconds"] == pytest.approx(1.3, abs=1e-3)
    assert "text_sha" not in log[1]
    # another --max_sec: the same folder, nothing spoken again
    s = synthesize_dir(str(inp), str(out), FakeTTS(), progress=False)
    assert s["kept"] == 2 and s["reused"] == 2


def test_not_utf8_line_is_dropped(tmp_path):
    inp = make_input(tmp_path, TEXTS[:3])
    raw = (inp / "text").read_bytes().replace("世界".encode(), b"\xff\xfe")
    (inp / "text").write_bytes(raw)
    s = synthesize_dir(str(inp), str(tmp_path / "out"), FakeTTS(), seed=0, progress=False)
    assert s["kept"] == 2 and s["dropped"] == {"not_utf8": 1}


def test_max_hours_is_the_seeded_prefix(tmp_path):
    inp = make_input(tmp_path)
    full = tmp_path / "full"
    synthesize_dir(str(inp), str(full), FakeTTS(), seed=9, progress=False)
    dur = {u: float(v) for u, v in read_kv(full / "utt2dur").items()}
    hours = sum(dur.values()) / 3600 * 0.4
    for nj in (1, 3):
        out = tmp_path / f"cut{nj}"
        s = synthesize_dir(str(inp), str(out), FakeTTS(), seed=9, nj=nj, max_hours=hours,
                           progress=False)
        assert s["reached"] and s["hours"] >= hours
        kept = list(read_kv(out / "wav.scp"))
        order = seeded_order(dur, 9)
        assert set(kept) == set(order[: len(kept)])
        assert sum(dur[u] for u in order[: len(kept) - 1]) < hours * 3600
        # = the --hours subset of the full synthesis with the same seed
        subset_data_dir(str(full), str(tmp_path / f"sub{nj}"), seed=9, hours=hours)
        assert list(read_kv(tmp_path / f"sub{nj}" / "utt2spk")) == kept
        assert "--max_hours" in (out / "tts_report.txt").read_text()
    # a rerun with a larger --max_hours reuses what is there
    s = synthesize_dir(str(inp), str(tmp_path / "cut1"), FakeTTS(), seed=9, max_hours=hours * 2,
                       progress=False)
    assert s["reused"] >= len(kept) and s["hours"] >= 2 * hours


def test_refusals(tmp_path):
    inp = make_input(tmp_path, TEXTS[:2])
    out = tmp_path / "out"
    synthesize_dir(str(inp), str(out), FakeTTS(), seed=1, progress=False)
    with pytest.raises(SynthesisError, match=r"made with TTS espnet_sllm\.testing\.tts:FakeTTS "
                                             r".*seed 1.*this run asks for .*seed 2"):
        synthesize_dir(str(inp), str(out), FakeTTS(), seed=2, progress=False)
    with pytest.raises(SynthesisError, match=r"made with TTS espnet_sllm\.testing\.tts:FakeTTS "
                                             r"\{.*\"sec_per_char\": 0\.1\}.*asks for "
                                             r".*\"sec_per_char\": 0\.2\}"):
        synthesize_dir(str(inp), str(out), FakeTTS(sec_per_char=0.2), seed=1, progress=False)
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("x")
    with pytest.raises(SynthesisError, match="was not made by this tool"):
        synthesize_dir(str(inp), str(tmp_path / "theirs"), FakeTTS(), seed=1, progress=False)
    with pytest.raises(SynthesisError, match="no utterance kept"):
        synthesize_dir(str(make_input(tmp_path, ["SHORT a"], "bad")), str(tmp_path / "o2"),
                       FakeTTS(), progress=False)


class Broken(AbsTTS):
    def voices(self):
        return ["v"]

    def synthesize(self, text, voice, rng):
        return np.zeros(16000, np.float32), 16000

    def check(self):
        raise RuntimeError("Broken: model file /x/model.pt not found")


def test_check_runs_before_any_work(tmp_path):
    inp = make_input(tmp_path, TEXTS[:2])
    with pytest.raises(RuntimeError, match="model file"):
        synthesize_dir(str(inp), str(tmp_path / "out"), Broken(), progress=False)
    assert not (tmp_path / "out").exists()


def test_load_tts():
    assert tts_classes == {"command": CommandTTS, "espeak": EspeakTTS}
    assert isinstance(load_tts(FAKE, {"n_voices": 2}), FakeTTS)
    with pytest.raises(ValueError, match="unknown TTS 'festival': valid names are command, "
                                         "espeak, or module:Class"):
        load_tts("festival")
    with pytest.raises(ValueError, match="is not a subclass of espnet_sllm.tts.abs_tts.AbsTTS"):
        load_tts("collections:OrderedDict")
    with pytest.raises(ValueError, match="cannot import no_such_module"):
        load_tts("no_such_module:X")
    with pytest.raises(ValueError, match=r"unknown option\(s\) pitch \(--tts_conf\); valid: "
                                         r"sec_per_char, n_voices, sample_rate, fail_after"):
        load_tts(FAKE, {"pitch": 3})


def test_cli(tmp_path, capsys):
    inp = make_input(tmp_path, TEXTS[:3])
    base = ["--in", str(inp), "--out", str(tmp_path / "out"), "--seed", "4", "--nj", "2",
            "--progress", "false"]
    assert cli.main(base + ["--tts", FAKE, "--tts_conf", "sec_per_char=0.08", "n_voices=2"]) == 0
    assert "3 of 3 utterances spoken" in capsys.readouterr().out
    conf = json.loads((tmp_path / "out" / ".tts_config.json").read_text())
    assert conf["tts_conf"] == {"sec_per_char": 0.08, "n_voices": 2, "sample_rate": 22050}
    assert cli.main(base + ["--tts", "nope"]) == 1
    assert "unknown TTS 'nope'" in capsys.readouterr().err
    assert cli.main(base + ["--tts", FAKE, "--tts_conf", "novalue"]) == 1
    assert "expected key=value" in capsys.readouterr().err


# ----------------------------------------------------------------------------- espeak-ng
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


@needs_espeak
def test_espeak_smoke(tmp_path):
    tts = EspeakTTS()
    tts.check()
    assert tts.voices()[0] == "cmn-latn-pinyin+m1" and len(tts.voices()) == 12
    rng = np.random.default_rng(0)
    wav, sr, info = tts.synthesize_with_info("中国经济发展很快。", tts.voices()[3], rng)
    assert wav.dtype == np.float32 and wav.ndim == 1 and 30 <= info["pitch"] <= 70
    assert 1.0 < len(wav) / sr < 6.0 and float(np.abs(wav).max()) > 0.2
    inp = make_input(tmp_path, ["中国经济发展很快。", "-开头是减号"])
    s = synthesize_dir(str(inp), str(tmp_path / "out"), tts, seed=0, progress=False)
    assert s["kept"] == 2
    for p in read_kv(tmp_path / "out" / "wav.scp").values():
        x, sr = soundfile.read(p)
        assert sr == 16000 and len(x) > 16000 and np.abs(x).max() > 0.1


@needs_espeak
def test_espeak_refuses_plain_cmn_and_unknown_variants():
    with pytest.raises(RuntimeError, match="espeak-ng voice cmn\\+m1 switches language"):
        EspeakTTS(voice="cmn").check()
    with pytest.raises(RuntimeError, match=r"no voice variant\(s\) \['zz9'\]"):
        EspeakTTS(variants="m1,zz9").check()
    with pytest.raises(RuntimeError, match="has no voice 'xx-none'"):
        EspeakTTS(voice="xx-none").check()


def test_espeak_missing_is_an_error_before_work(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng on PATH
    inp = make_input(tmp_path, TEXTS[:2])
    with pytest.raises(RuntimeError, match="espeak-ng not found"):
        synthesize_dir(str(inp), str(tmp_path / "out"), EspeakTTS(), progress=False)
    assert not (tmp_path / "out").exists()
