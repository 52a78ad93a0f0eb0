"""Tests of espnet_sllm.data.corpora.aishell on tiny AISHELL-1 trees: the extracted layout and the
per-speaker archives of the download (extracted safely and once)."""
import io
import os
import tarfile

import numpy as np
import pytest
import soundfile

from espnet_sllm.data.corpora import aishell
from espnet_sllm.data.corpora.aishell import extract_speaker_archives, main, read_aishell
from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.data.corpora.reader_utils import ReaderError
from tests.data.corpora.test_reader_utils import assert_cli_error, run_reader

SR = 16000
# (split, speaker folder, utterance number)
WAVS = [
    ("train", "S0002", "W0122"), ("train", "S0002", "W0123"), ("train", "S0003", "W0001"),
    ("dev", "S0724", "W0121"),
    ("test", "S0764", "W0121"), ("test", "S0764", "W0122"),  # W0122: no transcript
]
TRANSCRIPT = [
    "BAC009S0002W0122 而 对 楼市 成交 抑制 作用 最 大 的 限 购",
    "BAC009S0002W0123 也 成为 地方 政府 的 眼中 钉",
    "BAC009S0003W0001 一",
    "BAC009S0724W0121 甚至 出现 交易 几乎 停滞 的 情况",
    "BAC009S0764W0121 近日   两 大 外资 巨头",  # several blanks: all removed
    "BAC009S0999W0001 没有 音频",  # no wav in any split: no_audio
    "",  # blank line: skipped
]


def _wav_bytes():
    buf = io.BytesIO()
    soundfile.write(buf, np.zeros(SR // 10, np.float32), SR, format="WAV")
    return buf.getvalue()


def _transcript(cdir, lines=TRANSCRIPT):
    (cdir / "transcript").mkdir(parents=True, exist_ok=True)
    (cdir / "transcript" / "aishell_transcript_v0.8.txt").write_text(
        "\n".join(lines) + "\n", encoding="utf-8")


def make_extracted(root):
    cdir = root / "data_aishell"
    data = _wav_bytes()
    for split, spk, num in WAVS:
        d = cdir / "wav" / split / spk
        d.mkdir(parents=True, exist_ok=True)
        (d / f"BAC009{spk}{num}.wav").write_bytes(data)
    _transcript(cdir)
    return cdir


def _add(tar, name, data=b"", kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def make_archives(root):
    """The download layout: data_aishell/wav/<spk>.tar.gz holding <split>/<spk>/*.wav."""
    cdir = root / "data_aishell"
    (cdir / "wav").mkdir(parents=True)
    data = _wav_bytes()
    by_spk = {}
    for split, spk, num in WAVS:
        by_spk.setdefault(spk, []).append((split, num))
    for spk, items in by_spk.items():
        with tarfile.open(cdir / "wav" / f"{spk}.tar.gz", "w:gz") as tar:
            _add(tar, f"{items[0][0]}/{spk}", kind=tarfile.DIRTYPE)
            for split, num in items:
                _add(tar, f"{split}/{spk}/BAC009{spk}{num}.wav", data)
    _transcript(cdir)
    return cdir


def _check_sets(sets, stats, wav_root):
    assert [u.uttid for u in sets["train"]] == [
        "BAC009S0002W0122", "BAC009S0002W0123", "BAC009S0003W0001"]
    u = sets["train"][0]
    assert u.spk == "BAC009S0002" and u.lang == "zh"
    assert u.text == "而对楼市成交抑制作用最大的限购"
    assert u.wav == os.path.abspath(wav_root / "train" / "S0002" / "BAC009S0002W0122.wav")
    assert [(u.uttid, u.spk, u.text) for u in sets["dev"]] == [
        ("BAC009S0724W0121", "BAC009S0724", "甚至出现交易几乎停滞的情况")]
    assert [(u.uttid, u.text) for u in sets["test"]] == [("BAC009S0764W0121", "近日两大外资巨头")]
    assert stats["test"].summary() == "aishell test: rows=2 kept=1 dropped=1 (no_transcript=1)"
    assert stats["train"].summary() == "aishell train: rows=3 kept=3 dropped=0"
    assert stats["transcript"].summary() == \
        "aishell transcript: rows=6 kept=5 dropped=1 (no_audio=1)"
    assert stats["transcript"].examples["no_audio"][0].endswith("BAC009S0999W0001")


def test_extracted_layout(tmp_path):
    cdir = make_extracted(tmp_path)
    sets, stats = read_aishell(str(tmp_path))
    _check_sets(sets, stats, cdir / "wav")
    assert stats["archives"].rows == 0
    # The root may also be data_aishell itself.
    sets2, _ = read_aishell(str(cdir))
    assert [u.uttid for u in sets2["dev"]] == ["BAC009S0724W0121"]


def test_archives_extracted_in_place_once(tmp_path, monkeypatch):
    cdir = make_archives(tmp_path)
    sets, stats = read_aishell(str(tmp_path))
    _check_sets(sets, stats, cdir / "wav")
    assert stats["archives"].summary() == \
        "aishell archives: rows=4 kept=4 dropped=0; per group: extracted=4"
    assert (cdir / "wav" / ".S0002.tar.gz.extracted").read_text() == \
        f"{os.path.getsize(cdir / 'wav' / 'S0002.tar.gz')}\n"
    assert (cdir / "wav" / "S0002.tar.gz").exists()  # the archives are kept

    # A re-run extracts nothing; an interrupted extraction (no marker) is redone.
    calls = []
    real = aishell._extract_one
    monkeypatch.setattr(aishell, "_extract_one", lambda a, t: (calls.append(a), real(a, t)))
    stats = extract_speaker_archives(str(cdir / "wav"))
    assert calls == [] and stats.per_group["already_extracted"] == 4
    (cdir / "wav" / ".S0003.tar.gz.extracted").unlink()
    (cdir / "wav" / "train" / "S0003" / "BAC009S0003W0001.wav").write_bytes(b"half")
    stats = extract_speaker_archives(str(cdir / "wav"))
    assert [os.path.basename(a) for a in calls] == ["S0003.tar.gz"]
    assert (cdir / "wav" / "train" / "S0003" / "BAC009S0003W0001.wav").read_bytes() == \
        _wav_bytes()
    # A changed archive (other size) is extracted again.
    (cdir / "wav" / ".S0724.tar.gz.extracted").write_text("12\n")
    extract_speaker_archives(str(cdir / "wav"))
    assert [os.path.basename(a) for a in calls] == ["S0003.tar.gz", "S0724.tar.gz"]


def test_archives_extract_dir_and_not_writable(tmp_path, monkeypatch):
    cdir = make_archives(tmp_path / "db")
    wav_dir = str(cdir / "wav")
    real_access = os.access
    monkeypatch.setattr(aishell.os, "access",
                        lambda p, m: False if p == wav_dir else real_access(p, m))
    with pytest.raises(ReaderError, match="not writable: pass --extract_dir"):
        read_aishell(str(tmp_path / "db"))
    ext = tmp_path / "ext"
    sets, stats = read_aishell(str(tmp_path / "db"), extract_dir=str(ext))
    _check_sets(sets, stats, ext)
    assert (ext / ".S0764.tar.gz.extracted").exists()
    assert not (cdir / "wav" / "train").exists()


@pytest.mark.parametrize("name,kind,linkname", [
    ("/tmp/evil.wav", tarfile.REGTYPE, ""),
    ("train/../../evil.wav", tarfile.REGTYPE, ""),
    ("train/S0005/link.wav", tarfile.SYMTYPE, "/etc/passwd"),
])
def test_unsafe_archive_member_refused(tmp_path, name, kind, linkname):
    wav_dir = tmp_path / "data_aishell" / "wav"
    wav_dir.mkdir(parents=True)
    with tarfile.open(wav_dir / "S0005.tar.gz", "w:gz") as tar:
        _add(tar, "train/S0005/BAC009S0005W0001.wav", b"x")
        _add(tar, name, b"y", kind=kind, linkname=linkname)
    with pytest.raises(ReaderError, match=r"S0005\.tar\.gz: member .*refusing"):
        extract_speaker_archives(str(wav_dir))
    # Nothing of the archive was written, and no marker.
    assert sorted(os.listdir(wav_dir)) == ["S0005.tar.gz"]
    assert not (tmp_path / "evil.wav").exists()


def test_truncated_archive(tmp_path):
    cdir = make_archives(tmp_path)
    arc = cdir / "wav" / "S0002.tar.gz"
    arc.write_bytes(arc.read_bytes()[:60])
    with pytest.raises(ReaderError, match=r"S0002.tar.gz: cannot extract .*truncated download"):
        extract_speaker_archives(str(cdir / "wav"))
    assert not (cdir / "wav" / ".S0002.tar.gz.extracted").exists()


def test_errors(tmp_path):
    cdir = make_extracted(tmp_path)
    # A duplicate transcript id.
    _transcript(cdir, TRANSCRIPT + ["BAC009S0003W0001 二"])
    with pytest.raises(ReaderError, match=r"aishell_transcript_v0.8.txt:8: id 'BAC009S0003W0001' "
                                          r"already on line 3"):
        read_aishell(str(tmp_path))
    _transcript(cdir)
    # A wav whose name does not contain its folder name.
    (cdir / "wav" / "dev" / "S0724" / "BAC009S0725W0001.wav").write_bytes(b"")
    with pytest.raises(ReaderError, match="does not contain its speaker folder"):
        read_aishell(str(tmp_path))
    (cdir / "wav" / "dev" / "S0724" / "BAC009S0725W0001.wav").unlink()
    # The same utterance in two splits.
    (cdir / "wav" / "test" / "S0002").mkdir()
    (cdir / "wav" / "test" / "S0002" / "BAC009S0002W0122.wav").write_bytes(b"")
    with pytest.raises(ReaderError, match="found twice"):
        read_aishell(str(tmp_path))
    (cdir / "wav" / "test" / "S0002" / "BAC009S0002W0122.wav").unlink()
    # A split without wav.
    for f in (cdir / "wav" / "dev" / "S0724").iterdir():
        f.unlink()
    with pytest.raises(ReaderError, match=r"no WAV file in .*dev"):
        read_aishell(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not an AISHELL-1 root"):
        read_aishell(str(tmp_path / "nowhere"))


def test_empty_text_dropped(tmp_path):
    cdir = make_extracted(tmp_path)
    _transcript(cdir, ["BAC009S0002W0122", *TRANSCRIPT[1:]])
    sets, stats = read_aishell(str(tmp_path))
    assert [u.uttid for u in sets["train"]] == ["BAC009S0002W0123", "BAC009S0003W0001"]
    assert stats["train"].dropped == {"empty_text": 1}


def test_main_writes_sets(tmp_path, capsys):
    make_archives(tmp_path / "db")
    data = tmp_path / "data"
    assert main(["--root", str(tmp_path / "db"), "--data_dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert f"{data}/aishell_test: aishell test: rows=2 kept=1 dropped=1 (no_transcript=1)" in out
    assert "aishell transcript: rows=6 kept=5 dropped=1 (no_audio=1)" in out
    for split, n in (("train", 3), ("dev", 1), ("test", 1)):
        counts = validate_data_dir(data / f"aishell_{split}")
        assert counts["utterances"] == n
    assert read_kv(data / "aishell_train" / "utt2spk") == {
        "BAC009S0002W0122": "BAC009S0002", "BAC009S0002W0123": "BAC009S0002",
        "BAC009S0003W0001": "BAC009S0003"}
    assert read_kv(data / "aishell_train" / "spk2utt")["BAC009S0002"] == \
        "BAC009S0002W0122 BAC009S0002W0123"
    assert set(read_kv(data / "aishell_dev" / "utt2lang").values()) == {"zh"}
    assert not (data / "aishell_dev" / "utt2task").exists()
    # Errors: exit status 1 and an ERROR line.
    assert main(["--root", str(tmp_path / "nowhere"), "--data_dir", str(data)]) == 1
    assert "ERROR: AISHELL-1 root" in capsys.readouterr().err


# Transcript lines that are not UTF-8 (the other drop reasons: the tests above), --strict, and
# the command line on a malformed transcript: one ERROR line naming file:line, no traceback.
def test_transcript_line_not_utf8_dropped_and_counted(tmp_path, capsys):
    cdir = make_extracted(tmp_path / "db")
    path = cdir / "transcript" / "aishell_transcript_v0.8.txt"
    lines = path.read_bytes().split(b"\n")
    lines[2] = b"BAC009S0003W0001 \xe4\xb8"  # the transcript of the third train WAV
    path.write_bytes(b"\n".join(lines))
    sets, stats = read_aishell(str(tmp_path / "db"))
    assert [u.uttid for u in sets["train"]] == ["BAC009S0002W0122", "BAC009S0002W0123"]
    assert stats["train"].dropped == {"no_transcript": 1}
    assert stats["transcript"].summary() == \
        "aishell transcript: rows=6 kept=4 dropped=2 (no_audio=1, not_utf8=1)"
    assert stats["transcript"].examples["not_utf8"][0].startswith(f"{path}:3: not UTF-8")
    data = tmp_path / "data"
    assert main(["--root", str(tmp_path / "db"), "--data_dir", str(data)]) == 0
    assert "aishell transcript: rows=6 kept=4 dropped=2 (no_audio=1, not_utf8=1)" in \
        capsys.readouterr().out
    assert list(read_kv(data / "aishell_train" / "text")) == ["BAC009S0002W0122",
                                                            "BAC009S0002W0123"]
    with pytest.raises(ReaderError, match=r"v0.8.txt:3: not_utf8: not UTF-8"):
        read_aishell(str(tmp_path / "db"), strict=True)


def test_strict_turns_a_drop_into_an_error(tmp_path, capsys):
    cdir = make_extracted(tmp_path / "db")
    data = tmp_path / "data"
    assert main(["--root", str(tmp_path / "db"), "--data_dir", str(data),
                 "--strict", "true"]) == 1
    wav = cdir / "wav" / "test" / "S0764" / "BAC009S0764W0122.wav"
    assert f"ERROR: {wav}: no_transcript" in capsys.readouterr().err
    assert not data.exists()


def test_cli_malformed_transcript(tmp_path):
    cdir = make_extracted(tmp_path / "db")
    _transcript(cdir, TRANSCRIPT[:2] + ["BAC009S0002W0122 再 一次"])
    proc = run_reader("aishell", "--root", tmp_path / "db", "--data_dir", tmp_path / "data")
    path = cdir / "transcript" / "aishell_transcript_v0.8.txt"
    assert_cli_error(proc, f"{path}:3: id 'BAC009S0002W0122' already on line 1")
