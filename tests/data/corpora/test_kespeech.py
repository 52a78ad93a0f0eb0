"""Tests of espnet_sllm.data.corpora.kespeech on a tiny KeSpeech tree (real WAV files, relative paths)."""
import os

import numpy as np
import pytest
import soundfile

from espnet_sllm.data.kaldi_dir import combine_data_dirs, read_kv, validate_data_dir
from espnet_sllm.data.corpora.kespeech import (
    PARTS,
    SUBDIALECTS,
    clean_text,
    corpus_root,
    main,
    read_kespeech,
)
from espnet_sllm.data.corpora.reader_utils import ReaderError
from tests.data.corpora.test_reader_utils import assert_cli_error, run_reader

SR = 16000


def _wav(path, seconds=0.3):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    soundfile.write(str(path), (0.1 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), SR)


def _part(base, part, rows, missing=(), files=None):
    """rows: (utt, spk, text, subdialect); wavs under Audio/<spk>/<phase>/ except ``missing``.
    ``files``: {name: exact content} overriding a file."""
    phase = "phase2" if part.endswith("phase2") else "phase1"
    d = base / "Tasks" / "ASR" / part
    d.mkdir(parents=True)
    content = {
        "wav.scp": "".join(f"{u} Audio/{s}/{phase}/{u}.wav\n" for u, s, _, _ in rows),
        "text": "".join(f"{u} {t}\n" for u, _, t, _ in rows),
        "utt2spk": "".join(f"{u} {s}\n" for u, s, _, _ in rows),
        "utt2subdialect": "".join(f"{u} {d_}\n" for u, _, _, d_ in rows),
    }
    content.update(files or {})
    for name, text in content.items():
        (d / name).write_text(text, encoding="utf-8")
    for u, s, _, _ in rows:
        if u not in missing:
            _wav(base / "Audio" / s / phase / f"{u}.wav")
    return d


@pytest.fixture
def kespeech(tmp_path):
    """<tmp>/db/KeSpeech with train_phase1 (noise tags, only-noise, empty, missing wav) and
    train_phase2."""
    base = tmp_path / "db" / "KeSpeech"
    _part(base, "train_phase1", [
        ("1000001_0a1b2c3d", "1000001", "<SPOKEN_NOISE>今天 天气 很好<SPOKEN_NOISE>", "Beijing"),
        ("1000001_0f0f0f0f", "1000001", "<SPOKEN_NOISE> <SPOKEN_NOISE>", "Beijing"),
        ("1000002_11112222", "1000002", "我们走吧<NOISE>", "Southwestern"),
        ("1000002_33334444", "1000002", "", "Southwestern"),
        ("1000003_55556666", "1000003", "没有音频", "Mandarin"),
        ("abc", "1000004", "编号不带说话人", "Ji-Lu"),
    ], missing={"1000003_55556666"})
    _part(base, "train_phase2", [
        ("1000001_99990000", "1000001", "第二阶段", "Mandarin"),
    ])
    return base


def test_read_text_ids_drops(kespeech):
    utts, stats = read_kespeech(str(kespeech), "train_phase1")
    assert [u.uttid for u in utts] == ["1000001_0a1b2c3d", "1000002_11112222", "1000004-abc"]
    assert [u.text for u in utts] == ["今天天气很好", "我们走吧", "编号不带说话人"]
    assert [u.spk for u in utts] == ["1000001", "1000002", "1000004"]
    assert [u.subdialect for u in utts] == ["Beijing", "Southwestern", "Ji-Lu"]
    assert {u.lang for u in utts} == {"zh"}
    assert utts[0].wav == os.path.abspath(
        kespeech / "Audio/1000001/phase1/1000001_0a1b2c3d.wav")
    assert all(u.segment is None for u in utts)
    assert stats.rows == 6 and stats.kept == 3
    assert stats.dropped == {"only_noise": 1, "empty_text": 1, "missing_audio": 1}
    assert stats.per_group == {"Beijing": 1, "Southwestern": 1, "Ji-Lu": 1}
    assert "only_noise=1" in stats.summary()


def test_root_may_hold_kespeech(kespeech, tmp_path):
    assert corpus_root(str(kespeech.parent)) == str(kespeech)
    assert corpus_root(str(kespeech)) == str(kespeech)
    a, _ = read_kespeech(str(kespeech.parent), "train_phase2")
    b, _ = read_kespeech(str(kespeech), "train_phase2")
    assert a == b and a[0].uttid == "1000001_99990000"
    with pytest.raises(FileNotFoundError, match="neither .*KeSpeech/Tasks/ASR nor"):
        corpus_root(str(tmp_path / "nowhere"))


def test_clean_text():
    assert clean_text("<SPOKEN_NOISE>你 好<SPOKEN_NOISE>") == (
        "你好", ["<SPOKEN_NOISE>", "<SPOKEN_NOISE>"])
    assert clean_text("<unk>好\u3000的") == ("<unk>好的", [])  # only upper-case tags
    assert clean_text("<NOISE>") == ("", ["<NOISE>"])


def test_misordered_files(tmp_path):
    rows = [("1_a", "1", "一", "Beijing"), ("1_b", "1", "二", "Beijing")]
    base = tmp_path / "KeSpeech"
    _part(base, "test", rows, files={"text": "1_b 二\n1_a 一\n"})
    with pytest.raises(ReaderError, match=r"test/wav.scp:1 has '1_a' but .*test/text:1 has "
                                          r"'1_b'; the four files must list"):
        read_kespeech(str(base), "test")


def test_file_shorter(tmp_path):
    rows = [("1_a", "1", "一", "Beijing"), ("1_b", "1", "二", "Beijing")]
    base = tmp_path / "KeSpeech"
    _part(base, "test", rows, files={"utt2subdialect": "1_a Beijing\n"})
    with pytest.raises(ReaderError, match=r"wav.scp:2: lists '1_b' but .*utt2subdialect ends "
                                          r"after 1 entries"):
        read_kespeech(str(base), "test")


def test_unknown_subdialect(tmp_path):
    base = tmp_path / "KeSpeech"
    _part(base, "dev_phase1", [("1_a", "1", "一", "Beijing"), ("1_b", "1", "二", "Cantonese")])
    with pytest.raises(ReaderError, match=r"dev_phase1/utt2subdialect:2: unknown subdialect "
                                          r"'Cantonese'; valid: Mandarin, Beijing, Ji-Lu"):
        read_kespeech(str(base), "dev_phase1")
    assert len(SUBDIALECTS) == 9


@pytest.mark.parametrize("files,message", [
    ({"utt2spk": "1_a\n"}, r"utt2spk:1: no value after the id '1_a'"),
    ({"wav.scp": "1_a Audio/1/phase1/1_a.wav\n1_a Audio/1/phase1/1_a.wav\n",
      "text": "1_a 一\n1_a 一\n", "utt2spk": "1_a 1\n1_a 1\n",
      "utt2subdialect": "1_a Beijing\n1_a Beijing\n"}, r"wav.scp:2: duplicate utterance id"),
    ({"utt2spk": "1_a 1 2\n"}, r"utt2spk:1: speaker id '1 2' cannot be part of an id"),
])
def test_malformed(tmp_path, files, message):
    base = tmp_path / "KeSpeech"
    _part(base, "test", [("1_a", "1", "一", "Beijing")], files=files)
    with pytest.raises(ReaderError, match=message):
        read_kespeech(str(base), "test")


def test_unknown_part(kespeech):
    with pytest.raises(ValueError, match=r"unknown KeSpeech part \['train'\]; valid: "
                                         r"train_phase1, train_phase2"):
        read_kespeech(str(kespeech), "train")
    assert PARTS == ("train_phase1", "train_phase2", "dev_phase1", "dev_phase2", "test")


def test_cli_and_combine(kespeech, tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["--root", str(kespeech.parent), "--out_dir", str(out),
                 "--parts", "train_phase1", "train_phase2"]) == 0
    printed = capsys.readouterr().out
    assert "train_phase1: rows=6 kept=3 dropped=3" in printed
    for part in ("train_phase1", "train_phase2"):
        validate_data_dir(out / part)
    assert read_kv(out / "train_phase1" / "utt2subdialect") == {
        "1000001_0a1b2c3d": "Beijing", "1000002_11112222": "Southwestern",
        "1000004-abc": "Ji-Lu"}
    assert set(read_kv(out / "train_phase1" / "utt2lang").values()) == {"zh"}
    combine_data_dirs(out / "train", [out / "train_phase1", out / "train_phase2"])
    assert read_kv(out / "train" / "utt2subdialect")["1000001_99990000"] == "Mandarin"
    assert len(read_kv(out / "train" / "text")) == 4


def test_cli_errors(kespeech, tmp_path, capsys):
    assert main(["--root", str(kespeech), "--out_dir", str(tmp_path), "--parts", "x"]) == 1
    assert "ERROR: unknown KeSpeech part ['x']" in capsys.readouterr().err
    assert main(["--root", str(tmp_path / "no"), "--out_dir", str(tmp_path)]) == 1
    assert "ERROR: KeSpeech root" in capsys.readouterr().err
    # A part whose files are absent.
    assert main(["--root", str(kespeech), "--out_dir", str(tmp_path), "--parts", "test"]) == 1
    assert "test/wav.scp: not found" in capsys.readouterr().err


# Lines that are not UTF-8 (the other drop reasons: test_read_text_ids_drops), --strict, and the
# command line on a malformed file: one ERROR line naming file:line, never a traceback.
def test_line_not_utf8_dropped_files_stay_aligned(tmp_path, capsys):
    base = tmp_path / "KeSpeech"
    rows = [("1_a", "1", "一", "Beijing"), ("1_b", "1", "二", "Beijing"),
            ("1_c", "1", "三", "Mandarin")]
    d = _part(base, "test", rows)
    (d / "text").write_bytes("1_a 一\n".encode() + b"1_b \xe4\xba\n" + "1_c 三\n".encode())
    utts, stats = read_kespeech(str(base), "test")
    assert [(u.uttid, u.text) for u in utts] == [("1_a", "一"), ("1_c", "三")]
    assert (stats.rows, stats.kept, dict(stats.dropped)) == (3, 2, {"not_utf8": 1})
    assert stats.examples["not_utf8"][0].startswith(f"{d}/text:2: 1_b: not UTF-8")
    out = tmp_path / "data"
    assert main(["--root", str(base), "--out_dir", str(out), "--parts", "test"]) == 0
    assert "test: rows=3 kept=2 dropped=1 (not_utf8=1)" in capsys.readouterr().out
    assert list(read_kv(out / "test" / "text")) == ["1_a", "1_c"]
    with pytest.raises(ReaderError, match=r"test/text:2: not_utf8: 1_b: not UTF-8"):
        read_kespeech(str(base), "test", strict=True)


def test_strict_turns_a_drop_into_an_error(kespeech, tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["--root", str(kespeech), "--out_dir", str(out), "--parts", "train_phase1",
                 "--strict", "true"]) == 1
    err = capsys.readouterr().err
    assert f"ERROR: {kespeech}/Tasks/ASR/train_phase1/text:2: only_noise" in err
    assert not (out / "train_phase1").exists()
    assert main(["--root", str(kespeech), "--out_dir", str(out), "--parts", "train_phase2",
                 "--strict", "true"]) == 0  # nothing to drop there


def test_cli_malformed_file(kespeech, tmp_path):
    path = kespeech / "Tasks" / "ASR" / "train_phase2" / "utt2spk"
    path.write_text("1000001_99990000\n", encoding="utf-8")
    proc = run_reader("kespeech", "--root", kespeech, "--out_dir", tmp_path / "data",
                      "--parts", "train_phase2")
    assert_cli_error(proc, f"{path}:1: no value after the id '1000001_99990000'")
