"""Tests of espnet_sllm.data.corpora.wenetspeech on a tiny WenetSpeech release: a WenetSpeech.json with
three audios (Ogg/Opus files written by soundfile at 16 and 48 kHz, one absent) whose segments
mix TEST_NET, TEST_MEETING and training subsets.  Stage 2 (format_data) is run on the result to
check that the Opus recordings are decoded and cut."""
import json
import os

import numpy as np
import pytest
import soundfile

from espnet_sllm.data.formatting import format_data
from espnet_sllm.data.corpora import wenetspeech as ws
from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.data.corpora.reader_utils import ReaderError
from tests.data.corpora.test_reader_utils import assert_cli_error, run_reader

A = "X0000000000_100638174"
B = "Y0000000001_-a_b-Cd"
C = "Y0000000002_gone"


def _opus(path, seconds, sr):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    soundfile.write(str(path), (0.1 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), sr,
                    format="OGG", subtype="OPUS")


def _seg(sid, begin, end, text, subsets, **extra):
    return dict({"sid": sid, "begin_time": begin, "end_time": end, "text": text,
                 "confidence": 1.0, "subsets": subsets}, **extra)


def _audios():
    return [
        {"aid": A, "path": f"audio/test/net/{A}.opus", "duration": 4.0, "format": "opus",
         "segments": [
             _seg(f"{A}_S00000", 0.0, 1.5, "今天天气很好", ["TEST_NET"]),
             _seg(f"{A}_S00001", 1.5, 3.25, "  我们用 iPhone 打电话 ", ["TEST_NET"]),
             _seg(f"{A}_S00002", 3.25, 3.5, "训练", ["S", "M", "L"]),  # not requested
             _seg(f"{A}_S00003", 3.5, 3.9, "   ", ["TEST_NET"]),  # empty text
         ]},
        {"aid": B, "path": f"audio/test/meeting/{B}.opus", "duration": 3.0,
         "segments": [
             _seg("seg7", 0.5, 2.0, "开会了", ["TEST_MEETING"]),  # sid without the aid
             _seg(f"{B}_S00001", 2.0, 2.9, "好的", ["TEST_MEETING"]),
         ]},
        {"aid": C, "path": f"audio/test/meeting/{C}.opus", "duration": 9.0,
         "segments": [
             _seg(f"{C}_S00000", 0.0, 1.0, "不在", ["TEST_MEETING"]),
             _seg(f"{C}_S00001", 1.0, 2.0, "也不在", ["TEST_NET"]),
         ]},
        # Absent too, but with training segments only: never looked at.
        {"aid": "Y0000000003_train", "path": "audio/train/youtube/B00000/Y0000000003_train.opus",
         "segments": [_seg("Y0000000003_train_S00000", 0.0, 1.0, "训练", ["W", "L"])]},
    ]


def _write_json(root, audios, **top):
    root.mkdir(parents=True, exist_ok=True)
    doc = {"dataset": "WenetSpeech", "version": "v1.0", **top, "audios": audios,
           "description": "tiny copy"}
    path = root / "WenetSpeech.json"
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def release(tmp_path):
    root = tmp_path / "WenetSpeech"
    _opus(root / f"audio/test/net/{A}.opus", 4.0, 16000)
    _opus(root / f"audio/test/meeting/{B}.opus", 3.0, 48000)
    return _write_json(root, _audios())


def test_read_two_subsets(release):
    utts, stats = ws.read_wenetspeech(str(release), ["TEST_NET", "TEST_MEETING"])
    net, meeting = utts["TEST_NET"], utts["TEST_MEETING"]
    assert [u.uttid for u in net] == [f"{A}_S00000", f"{A}_S00001"]
    assert [u.text for u in net] == ["今天天气很好", "我们用 iPhone 打电话"]
    assert net[1].segment == (A, 1.5, 3.25) and net[1].spk == A and net[1].lang == "zh"
    assert net[0].wav == os.path.abspath(release.parent / f"audio/test/net/{A}.opus")
    assert [u.uttid for u in meeting] == [f"{B}-seg7", f"{B}_S00001"]
    assert {u.spk for u in meeting} == {B}
    assert stats["TEST_NET"].rows == 4 and stats["TEST_NET"].kept == 2
    assert stats["TEST_NET"].dropped == {"empty_text": 1, "missing_audio": 1}
    assert stats["TEST_MEETING"].rows == 3 and stats["TEST_MEETING"].kept == 2
    assert stats["TEST_MEETING"].dropped == {"missing_audio": 1}
    assert C in stats["TEST_MEETING"].examples["missing_audio"][0]


def test_folder_instead_of_json_and_one_subset(release):
    utts, stats = ws.read_wenetspeech(str(release.parent), ["TEST_MEETING"])
    assert list(utts) == ["TEST_MEETING"] and len(utts["TEST_MEETING"]) == 2


def test_training_subsets(release):
    utts, stats = ws.read_wenetspeech(str(release), ["S", "W"])
    assert [u.uttid for u in utts["S"]] == [f"{A}_S00002"] and stats["S"].rows == 1
    # W: only the segment of the absent training audio (S00002 of A is S/M/L, not W).
    assert utts["W"] == [] and stats["W"].rows == 1
    assert stats["W"].dropped == {"missing_audio": 1}


def test_unknown_subset(release):
    with pytest.raises(ValueError, match=r"unknown WenetSpeech subset \['TEST'\]; valid: "
                                         r"S, M, L, W, DEV, TEST_NET, TEST_MEETING"):
        ws.read_wenetspeech(str(release), ["TEST_NET", "TEST"])


def test_streaming_matches_json_load(release, monkeypatch):
    expected = json.loads(release.read_text(encoding="utf-8"))["audios"]
    for chunk in (3, 17, 1 << 20):  # tiny chunks: values cut anywhere, numbers included
        monkeypatch.setattr(ws, "_CHUNK", chunk)
        assert [a for _, a in ws.iter_audios(str(release))] == expected


def test_stream_compact_and_empty(tmp_path):
    p = tmp_path / "a.json"
    p.write_text('{"audios":[],"x":1.5}', encoding="utf-8")
    assert list(ws.iter_audios(str(p))) == []
    p.write_text('{"version": 12345}', encoding="utf-8")
    with pytest.raises(ReaderError, match="no top-level 'audios' list"):
        list(ws.iter_audios(str(p)))
    p.write_text('{"audios": [{"aid": "x"} {"aid": "y"}]}', encoding="utf-8")
    with pytest.raises(ReaderError, match=r"a.json: invalid JSON at character 25: expected one "
                                          r"of \[',', '\]'\]"):
        list(ws.iter_audios(str(p)))
    p.write_text('{"audios": [{"aid": "x", ', encoding="utf-8")
    with pytest.raises(ReaderError, match=r"a.json: invalid JSON at character 25: Expecting "
                                          r"property name"):
        list(ws.iter_audios(str(p)))


def _bad(tmp_path, change):
    audios = _audios()
    change(audios)
    return _write_json(tmp_path / "bad", audios)


@pytest.mark.parametrize("change,message", [
    (lambda a: a[1]["segments"][0].pop("sid"),
     rf"audios\[1\] \(aid {B}\): segments\[0\]: missing or empty 'sid'"),
    (lambda a: a[1]["segments"][1].pop("begin_time"),
     rf"sid {B}_S00001: begin_time must be a number, got None"),
    (lambda a: a[0]["segments"][0].pop("subsets"),
     rf"audios\[0\] \(aid {A}\): segments\[0\] \(sid '{A}_S00000'\): missing 'subsets'"),
    (lambda a: a[0].pop("aid"), r"WenetSpeech.json: audios\[0\]: missing or empty 'aid'"),
    (lambda a: a[0].pop("path"), rf"audios\[0\] \(aid {A}\): missing or empty 'path'"),
    (lambda a: a[1].pop("segments"), rf"audios\[1\] \(aid {B}\): missing 'segments' list"),
    (lambda a: a[1]["segments"][1].update(sid="seg7"),
     rf"sid seg7: utterance id '{B}-seg7' already given by"),
    (lambda a: a[1].update(aid=A), rf"audios\[1\] \(aid {A}\): aid already used by audios\[0\]"),
    (lambda a: a[0]["segments"][0].update(text="a\nb"), r"line break in the text"),
])
def test_segment_errors(tmp_path, change, message):
    path = _bad(tmp_path, change)
    with pytest.raises(ReaderError, match=message):
        ws.read_wenetspeech(str(path), ["TEST_NET", "TEST_MEETING"])


def test_cli_and_format_reads_opus(release, tmp_path, capsys):
    out = tmp_path / "data"
    assert ws.main(["--json", str(release), "--out_dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "test_net: WenetSpeech.json TEST_NET: rows=4 kept=2 dropped=2" in printed
    for name in ("test_net", "test_meeting"):
        validate_data_dir(out / name)
    assert read_kv(out / "test_meeting" / "segments") == {
        f"{B}-seg7": f"{B} 0.50 2.00", f"{B}_S00001": f"{B} 2.00 2.90"}
    assert read_kv(out / "test_meeting" / "wav.scp") == {
        B: os.path.abspath(release.parent / f"audio/test/meeting/{B}.opus")}
    assert read_kv(out / "test_net" / "text")[f"{A}_S00001"] == "我们用 iPhone 打电话"
    assert set(read_kv(out / "test_net" / "utt2lang").values()) == {"zh"}

    # Stage 2 decodes the Opus recordings (48 kHz and 16 kHz) and cuts the segments.
    dump = tmp_path / "dump" / "test_meeting"
    counts = format_data(str(out / "test_meeting"), str(dump), fs=16000, nj=1, progress=False)
    assert counts["written"] == 2
    durations = sorted(soundfile.info(p).duration for p in read_kv(dump / "wav.scp").values())
    assert abs(durations[0] - 0.9) < 0.02 and abs(durations[1] - 1.5) < 0.02


def test_cli_empty_subset_is_an_error_after_the_others(release, tmp_path, capsys):
    out = tmp_path / "d"
    assert ws.main(["--json", str(release), "--out_dir", str(out), "--prefix", "wenet_",
                    "--subsets", "TEST_NET", "DEV"]) == 1
    assert "no utterance kept for subset(s): DEV" in capsys.readouterr().err
    validate_data_dir(out / "wenet_test_net")
    assert not (out / "wenet_dev").exists()
    assert ws.main(["--json", str(tmp_path / "none.json"), "--out_dir", str(out)]) == 1
    assert "none.json: not found" in capsys.readouterr().err


# Drops of segments with bytes that are not UTF-8 or with a zero / negative duration (the other
# reasons: test_read_two_subsets), --strict, and the command line on a malformed file.
@pytest.mark.parametrize("change,reason,detail", [
    (lambda a: a[0]["segments"][1].update(end_time=1.5), "bad_segment_time",
     "end_time 1.5 is not after begin_time 1.5"),
    (lambda a: a[0]["segments"][1].update(end_time=1.0), "bad_segment_time",
     "end_time 1.0 is not after begin_time 1.5"),
    (lambda a: a[0]["segments"][1].update(begin_time=-0.5), "bad_segment_time",
     "negative begin_time -0.5"),
    (lambda a: a[0]["segments"][1].update(text="@BAD@"), "not_utf8",
     "bytes that are not UTF-8 in its text"),
])
def test_segment_dropped_and_counted(release, tmp_path, capsys, change, reason, detail):
    audios = _audios()
    change(audios)
    path = _write_json(release.parent, audios)
    path.write_bytes(path.read_bytes().replace(b"@BAD@", b"\xe4\xb8 \xff"))
    utts, stats = ws.read_wenetspeech(str(path), ["TEST_NET"])
    assert [u.uttid for u in utts["TEST_NET"]] == [f"{A}_S00000"]
    assert stats["TEST_NET"].dropped == {"empty_text": 1, "missing_audio": 1, reason: 1}
    assert stats["TEST_NET"].examples[reason] == [
        f"{path}: audios[0] (aid {A}): sid {A}_S00001: {detail}"]
    out = tmp_path / "data"
    assert ws.main(["--json", str(path), "--out_dir", str(out), "--subsets", "TEST_NET"]) == 0
    reasons = ", ".join(f"{r}=1" for r in sorted(["empty_text", "missing_audio", reason]))
    assert f"rows=4 kept=1 dropped=3 ({reasons})" in capsys.readouterr().out
    assert list(read_kv(out / "test_net" / "text")) == [f"{A}_S00000"]
    with pytest.raises(ReaderError, match=rf"sid {A}_S00001: {reason}: "):
        ws.read_wenetspeech(str(path), ["TEST_NET"], strict=True)


def test_strict_turns_a_drop_into_an_error(release, tmp_path, capsys):
    out = tmp_path / "data"
    assert ws.main(["--json", str(release), "--out_dir", str(out), "--strict", "true"]) == 1
    err = capsys.readouterr().err
    assert f"ERROR: {release}: audios[0] (aid {A}): sid {A}_S00003: empty_text" in err
    assert not out.exists()


def test_cli_malformed_file(release, tmp_path):
    audios = _audios()
    audios[1]["segments"][0].pop("sid")
    path = _write_json(release.parent, audios)
    proc = run_reader("wenetspeech", "--json", path, "--out_dir", tmp_path / "data")
    assert_cli_error(proc, f"{path}: audios[1] (aid {B}): segments[0]: missing or empty 'sid'")
    path.write_text('{"audios": [', encoding="utf-8")
    proc = run_reader("wenetspeech", "--json", path, "--out_dir", tmp_path / "data")
    assert_cli_error(proc, f"{path}: invalid JSON")
