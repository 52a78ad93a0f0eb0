"""Tests of espnet_sllm.data.corpora.aishell2 on tiny AISHELL-DEV-TEST-SET trees in the release layout:
``wav.scp`` lines ``IT0011W0001<TAB>wav/T0011/IT0011W0001.wav`` (the utterance id is the device
letter, I / A / M, followed by the speaker folder and W<nnnn>)."""
import os

import pytest

from espnet_sllm.data.corpora.aishell2 import main, read_aishell2, speaker_id
from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.data.corpora.reader_utils import ReaderError

# "{d}" is the device letter: I (iOS), A (Android), M (Mic).
SCP = [
    "{d}T0011W0001\twav/T0011/{d}T0011W0001.wav",
    "{d}T0011W0002\twav/T0011/{d}T0011W0002.wav",
    "{d}T0012W0001\twav/T0012/{d}T0012W0001.wav",
    "{d}T0012W0002\twav/T0012/{d}T0012W0002.wav",  # not in trans.txt: no_transcript
    "{d}T0012W0003\twav/T0012/{d}T0012W0003.wav",  # file absent: missing_audio
    "{d}T0013W0001 wav/T0013/{d}T0013W0001.wav",  # a line without TAB: split on blanks
    "{d}T0013W0002\twav/T0013/{d}T0013W0002.wav",  # empty text
]
TRANS = [
    "{d}T0011W0001\t换一首歌",
    "{d}T0011W0002\t打开 空调 的 除湿 模式",  # spaces removed
    "{d}T0012W0001\t播放周杰伦的歌",
    "{d}T0012W0003\t导航到公司",
    "{d}T0013W0001\t明天 会 下雨 吗",
    "{d}T0013W0002\t  ",
    "{d}T0099W0001\t没有音频",  # not in wav.scp: no_audio
]
WAVS = ["T0011/{d}T0011W0001", "T0011/{d}T0011W0002", "T0012/{d}T0012W0001",
        "T0012/{d}T0012W0002", "T0013/{d}T0013W0001", "T0013/{d}T0013W0002"]
LETTER = {"ios": "I", "android": "A", "mic": "M"}


def make_tree(root, device="iOS", split="test", scp=SCP, trans=TRANS, wavs=WAVS):
    """``root/AISHELL-DEV-TEST-SET/<device>/<split>`` in the release layout; ``device`` is the
    folder name (``IOS`` for the other spelling); ``{d}`` in the lines is its letter."""
    d = root / "AISHELL-DEV-TEST-SET" / device / split
    d.mkdir(parents=True)
    letter = LETTER[device.lower()]
    (d / "wav.scp").write_text("".join(line.format(d=letter) + "\n" for line in scp),
                               encoding="utf-8")
    (d / "trans.txt").write_text("".join(line.format(d=letter) + "\n" for line in trans),
                                 encoding="utf-8")
    for rel in wavs:
        wav = d / "wav" / f"{rel.format(d=letter)}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        wav.write_bytes(b"RIFF")
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
    assert utts[0].wav == os.path.abspath(d / "wav" / "T0011" / "IT0011W0001.wav")
    assert {u.lang for u in utts} == {"zh"}
    assert stats.summary() == ("aishell2 iOS/test: rows=8 kept=4 dropped=4 (empty_text=1, "
                               "missing_audio=1, no_audio=1, no_transcript=1)")
    assert stats.examples["no_audio"] == [f"{d}/trans.txt:7: IT0099W0001"]
    assert stats.examples["no_transcript"] == [f"{d}/wav.scp:4: IT0012W0002"]
    # The root may be AISHELL-DEV-TEST-SET itself.
    utts2, _ = read_aishell2(str(tmp_path / "AISHELL-DEV-TEST-SET"))
    assert [u.uttid for u in utts2] == [u.uttid for u in utts]


@pytest.mark.parametrize("device,letter", [("iOS", "I"), ("Android", "A"), ("Mic", "M")])
@pytest.mark.parametrize("split", ["dev", "test"])
def test_devices_and_splits(tmp_path, device, letter, split):
    d = make_tree(tmp_path, device=device, split=split)
    utts, stats = read_aishell2(str(tmp_path), device=device, split=split)
    assert [(u.uttid, u.spk) for u in utts] == [
        (f"{letter}T0011W0001", f"{letter}T0011"), (f"{letter}T0011W0002", f"{letter}T0011"),
        (f"{letter}T0012W0001", f"{letter}T0012"), (f"{letter}T0013W0001", f"{letter}T0013"),
    ]
    assert utts[0].wav == os.path.abspath(d / "wav" / "T0011" / f"{letter}T0011W0001.wav")
    assert stats.summary().startswith(f"aishell2 {device}/{split}: rows=8 kept=4 dropped=4 ")


def test_device_folder_spelling(tmp_path):
    make_tree(tmp_path, device="IOS")  # some copies spell it IOS: matched case-insensitively
    utts, _ = read_aishell2(str(tmp_path), device="iOS")
    assert [u.spk for u in utts] == ["IT0011", "IT0011", "IT0012", "IT0013"]


def test_speaker_id():
    assert speaker_id("IT0011W0001", "T0011") == "IT0011"
    assert speaker_id("AT0011W0001", "T0011", "Android") == "AT0011"
    assert speaker_id("MD0005W0123", "D0005", "Mic") == "MD0005"
    assert speaker_id("IC0001W0001", "C0001") == "IC0001"  # the training part's naming
    assert speaker_id("AT0011W0001", "T0011") is None  # another device's letter
    assert speaker_id("IT0011W0001", "T0012") is None  # another speaker's folder
    assert speaker_id("IT0011W0001", "IT0011") is None  # the folder carries no device letter
    assert speaker_id("IT0011W0001", "") is None


def test_id_not_device_and_folder(tmp_path):
    """Rows whose id is not <device letter><speaker folder>... are dropped and counted; the
    others of the set are kept."""
    scp = [
        "IT0011W0001\twav/T0011/IT0011W0001.wav",
        "AT0011W0002\twav/T0011/AT0011W0002.wav",  # an Android id in the iOS list
        "IT0011W0003\twav/T0012/IT0011W0003.wav",  # the folder of another speaker
        "IT0012W0001\twav/IT0012/IT0012W0001.wav",  # folder with the letter: not the release
        "T0013W0001\twav/T0013/T0013W0001.wav",  # no device letter
    ]
    trans = [line.split("\t")[0] + "\t好" for line in scp]
    wavs = ["T0011/IT0011W0001", "T0011/AT0011W0002", "T0012/IT0011W0003",
            "IT0012/IT0012W0001", "T0013/T0013W0001"]
    d = make_tree(tmp_path, scp=scp, trans=trans, wavs=wavs)
    utts, stats = read_aishell2(str(tmp_path))
    assert [(u.uttid, u.spk) for u in utts] == [("IT0011W0001", "IT0011")]
    assert stats.summary() == ("aishell2 iOS/test: rows=5 kept=1 dropped=4 (other_device=1, "
                               "speaker_mismatch=3)")
    assert stats.examples["other_device"] == [
        f"{d}/wav.scp:2: AT0011W0002: an id of Android, not of iOS"]
    assert stats.examples["speaker_mismatch"] == [
        f"{d}/wav.scp:3: IT0011W0003 does not start with IT0012 (wav/T0012/IT0011W0003.wav)",
        f"{d}/wav.scp:4: IT0012W0001 does not start with IIT0012 "
        f"(wav/IT0012/IT0012W0001.wav)",
        f"{d}/wav.scp:5: T0013W0001 does not start with IT0013 (wav/T0013/T0013W0001.wav)",
    ]


def test_sort_rule(tmp_path):
    """Speaker folders of different lengths would make the utterance ids sort unlike the
    speaker ids (IT0011W0001 < IT001W0001 but IT001 < IT0011): an error naming the lines."""
    scp = ["IT001W0001\twav/T001/IT001W0001.wav", "IT0011W0001\twav/T0011/IT0011W0001.wav"]
    trans = ["IT001W0001\t好", "IT0011W0001\t好"]
    make_tree(tmp_path, scp=scp, trans=trans, wavs=["T001/IT001W0001", "T0011/IT0011W0001"])
    with pytest.raises(ReaderError, match=r"wav.scp:1: utterance ids and speaker ids sort "
                                          r"differently: 'IT0011W0001' \(speaker 'IT0011', "
                                          r"line 2\) sorts before 'IT001W0001'"):
        read_aishell2(str(tmp_path))


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no AISHELL-DEV-TEST-SET/iOS/test folder"):
        read_aishell2(str(tmp_path))
    with pytest.raises(ValueError, match="unknown AISHELL-2 device.*valid: iOS, Android, Mic"):
        read_aishell2(str(tmp_path), device="Tablet")
    with pytest.raises(ValueError, match="unknown AISHELL-2 split.*valid: dev, test"):
        read_aishell2(str(tmp_path), split="train")
    make_tree(tmp_path / "a", scp=SCP + ["{d}T0011W0001\twav/T0011/{d}T0011W0001.wav"])
    with pytest.raises(ReaderError, match=r"wav.scp:8: id 'IT0011W0001' already on line 1"):
        read_aishell2(str(tmp_path / "a"))
    make_tree(tmp_path / "c", scp=["IT0011W0001"])
    with pytest.raises(ReaderError, match=r"wav.scp:1: no WAV path"):
        read_aishell2(str(tmp_path / "c"))
    d = make_tree(tmp_path / "d")
    (d / "trans.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"trans.txt: not found"):
        read_aishell2(str(tmp_path / "d"))


def test_main(tmp_path, capsys):
    make_tree(tmp_path / "db")
    out = tmp_path / "data" / "aishell2_test"
    assert main(["--root", str(tmp_path / "db"), "--out", str(out)]) == 0
    assert f"{out}: aishell2 iOS/test: rows=8 kept=4" in capsys.readouterr().out
    assert validate_data_dir(out)["utterances"] == 4
    assert read_kv(out / "text")["IT0011W0002"] == "打开空调的除湿模式"
    assert read_kv(out / "spk2utt")["IT0011"] == "IT0011W0001 IT0011W0002"
    assert read_kv(out / "wav.scp")["IT0011W0001"] == \
        os.path.abspath(tmp_path / "db" / "AISHELL-DEV-TEST-SET" / "iOS" / "test" / "wav" /
                        "T0011" / "IT0011W0001.wav")
    assert main(["--root", str(tmp_path / "none"), "--out", str(out)]) == 1
    assert "ERROR: AISHELL-2 test root" in capsys.readouterr().err


def test_main_android_dev(tmp_path, capsys):
    make_tree(tmp_path / "db", device="Android", split="dev")
    out = tmp_path / "data" / "aishell2_dev_android"
    assert main(["--root", str(tmp_path / "db"), "--device", "Android", "--split", "dev",
                 "--out", str(out)]) == 0
    assert f"{out}: aishell2 Android/dev: rows=8 kept=4" in capsys.readouterr().out
    assert validate_data_dir(out)["utterances"] == 4
    assert read_kv(out / "utt2spk") == {"AT0011W0001": "AT0011", "AT0011W0002": "AT0011",
                                        "AT0012W0001": "AT0012", "AT0013W0001": "AT0013"}


def test_main_nothing_kept(tmp_path, capsys):
    """An iOS set in the Mic folder keeps nothing: an error with the counts (the id check comes
    before the audio and text checks), and no data directory."""
    make_tree(tmp_path / "db", device="iOS")
    os.rename(tmp_path / "db" / "AISHELL-DEV-TEST-SET" / "iOS",
              tmp_path / "db" / "AISHELL-DEV-TEST-SET" / "Mic")
    out = tmp_path / "data" / "x"
    assert main(["--root", str(tmp_path / "db"), "--device", "Mic", "--out", str(out)]) == 1
    assert ("ERROR: AISHELL-2 Mic/test: no utterance kept (aishell2 Mic/test: rows=8 kept=0 "
            "dropped=8 (no_audio=1, no_transcript=1, other_device=6))") in capsys.readouterr().err
    assert not out.exists()


def test_not_utf8_line_dropped_and_strict(tmp_path, capsys):
    """A trans.txt line with a byte that is not UTF-8 is dropped and counted; --strict true
    turns any drop into one ERROR line naming file:line."""
    d = make_tree(tmp_path / "db")
    with open(d / "trans.txt", "ab") as f:
        f.write(b"IT0014W0001\t\xff\xfe\n")
    utts, stats = read_aishell2(str(tmp_path / "db"))
    assert len(utts) == 4 and stats.dropped["not_utf8"] == 1
    assert stats.examples["not_utf8"][0].startswith(f"{d}/trans.txt:8")
    out = tmp_path / "data" / "x"
    assert main(["--root", str(tmp_path / "db"), "--out", str(out), "--strict", "true"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ERROR: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
