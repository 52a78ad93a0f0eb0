"""Tests of espnet_sllm.data.aishell2 on a tiny AISHELL-DEV-TEST-SET tree."""
import os

import pytest

from espnet_sllm.data.aishell2 import main, read_aishell2
from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.data.reader_utils import ReaderError

SCP = [
    "IT0011W0001\twav/IT0011/IT0011W0001.wav",
    "IT0011W0002\twav/IT0011/IT0011W0002.wav",
    "IT0012W0001\twav/IT0012/IT0012W0001.wav",
    "IT0012W0002\twav/IT0012/IT0012W0002.wav",  # not in trans.txt: no_transcript
    "IT0012W0003\twav/IT0012/IT0012W0003.wav",  # file absent: missing_audio
    "IT0013W0001 wav/IT0013/IT0013W0001.wav",  # a line without TAB: split on blanks
    "IT0013W0002\twav/IT0013/IT0013W0002.wav",  # empty text
]
TRANS = [
    "IT0011W0001\t换一首歌",
    "IT0011W0002\t打开 空调 的 除湿 模式",  # spaces removed
    "IT0012W0001\t播放周杰伦的歌",
    "IT0012W0003\t导航到公司",
    "IT0013W0001\t明天 会 下雨 吗",
    "IT0013W0002\t  ",
    "IT0099W0001\t没有音频",  # not in wav.scp: no_audio
]
WAVS = ["IT0011W0001", "IT0011W0002", "IT0012W0001", "IT0012W0002", "IT0013W0001",
        "IT0013W0002"]


def make_tree(root, device="iOS", scp=SCP, trans=TRANS):
    d = root / "AISHELL-DEV-TEST-SET" / device / "test"
    d.mkdir(parents=True)
    (d / "wav.scp").write_text("\n".join(scp) + "\n", encoding="utf-8")
    (d / "trans.txt").write_text("\n".join(trans) + "\n", encoding="utf-8")
    for uttid in WAVS:
        (d / "wav" / uttid[:6]).mkdir(parents=True, exist_ok=True)
        (d / "wav" / uttid[:6] / f"{uttid}.wav").write_bytes(b"RIFF")
    return d


def test_read(tmp_path):
    d = make_tree(tmp_path)
    utts, stats = read_aishell2(str(tmp_path))
    assert [(u.uttid, u.spk, u.text) for u in utts] == [
        ("IT0011W0001", "IT0011", "换一首歌"),
        ("IT0011W0002", "IT0011", "打开空调的除湿模式"),
        ("IT0012W0001", "IT0012", "播放周杰伦的歌"),
        ("IT0013W0001", "IT0013", "明天会下雨吗"),
    ]
    assert utts[0].wav == os.path.abspath(d / "wav" / "IT0011" / "IT0011W0001.wav")
    assert {u.lang for u in utts} == {"zh"}
    assert stats.summary() == ("aishell2 iOS/test: rows=8 kept=4 dropped=4 (empty_text=1, "
                               "missing_audio=1, no_audio=1, no_transcript=1)")
    assert stats.examples["no_audio"] == [f"{d}/trans.txt:7: IT0099W0001"]
    assert stats.examples["no_transcript"] == [f"{d}/wav.scp:4: IT0012W0002"]
    # The root may be AISHELL-DEV-TEST-SET itself; IOS is matched case-insensitively.
    utts2, _ = read_aishell2(str(tmp_path / "AISHELL-DEV-TEST-SET"))
    assert [u.uttid for u in utts2] == [u.uttid for u in utts]


def test_device_folder_spelling(tmp_path):
    make_tree(tmp_path, device="IOS")
    utts, _ = read_aishell2(str(tmp_path), device="iOS")
    assert len(utts) == 4


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no AISHELL-DEV-TEST-SET/iOS/test folder"):
        read_aishell2(str(tmp_path))
    with pytest.raises(ValueError, match="unknown AISHELL-2 device.*valid: iOS, Android, Mic"):
        read_aishell2(str(tmp_path), device="Tablet")
    make_tree(tmp_path / "a", scp=SCP + ["IT0011W0001\twav/IT0011/IT0011W0001.wav"])
    with pytest.raises(ReaderError, match=r"wav.scp:8: id 'IT0011W0001' already on line 1"):
        read_aishell2(str(tmp_path / "a"))
    make_tree(tmp_path / "b", scp=["IT0011W0001\twav/XX0011/IT0011W0001.wav"])
    with pytest.raises(ReaderError, match="speaker folder 'XX0011'.*not a prefix"):
        read_aishell2(str(tmp_path / "b"))
    make_tree(tmp_path / "c", scp=["IT0011W0001"])
    with pytest.raises(ReaderError, match=r"wav.scp:1: no WAV path"):
        read_aishell2(str(tmp_path / "c"))


def test_main(tmp_path, capsys):
    make_tree(tmp_path / "db")
    out = tmp_path / "data" / "aishell2_test"
    assert main(["--root", str(tmp_path / "db"), "--out", str(out)]) == 0
    assert f"{out}: aishell2 iOS/test: rows=8 kept=4" in capsys.readouterr().out
    assert validate_data_dir(out)["utterances"] == 4
    assert read_kv(out / "text")["IT0011W0002"] == "打开空调的除湿模式"
    assert read_kv(out / "spk2utt")["IT0011"] == "IT0011W0001 IT0011W0002"
    assert main(["--root", str(tmp_path / "none"), "--out", str(out)]) == 1
    assert "ERROR: AISHELL-2 test root" in capsys.readouterr().err
