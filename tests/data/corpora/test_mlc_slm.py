"""Tests of espnet_sllm.data.corpora.mlc_slm on tiny synthetic trees of the MLC-SLM release layout."""
import os

import numpy as np
import pytest
import soundfile

from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.data.corpora.mlc_slm import END_TOLERANCE, main, read_mlc_slm
from espnet_sllm.data.corpora.reader_utils import ReaderError
from tests.data.corpora.test_reader_utils import assert_cli_error, run_reader

SR = 16000


def _session(folder, stem, lines, seconds=4.0, wav=True):
    os.makedirs(folder, exist_ok=True)
    if wav:
        t = np.arange(int(seconds * SR)) / SR
        soundfile.write(os.path.join(folder, stem + ".wav"),
                        (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR)
    if lines is not None:
        with open(os.path.join(folder, stem + ".txt"), "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
    return os.path.join(folder, stem + ".txt")


@pytest.fixture
def dev_root(tmp_path):
    root = tmp_path / "dev"
    # Lines deliberately out of time order, with overlapping speakers.
    _session(root / "data" / "English" / "British", "0001_001_phone", [
        "2.00\t3.10\tO2\thow are you",
        "0.00\t1.50\tO1\thello there",
        "1.20\t2.00\tO2\thi",
    ])
    _session(root / "data" / "Japanese", "0315_004_phone", [
        "0.5\t1.25\tO1\tこんにちは",
        "1.5\t2.0\tO2\t  ",  # empty text: skipped and counted
        "2.5\t3.995\tO2\tはい",
    ])
    return root


def test_dev_layout_ids_order_context(dev_root):
    utts, stats = read_mlc_slm(str(dev_root))
    ids = [u.uttid for u in utts]
    assert ids == [
        "English-British-0001_001_phone-O1-000000-000150",
        "English-British-0001_001_phone-O2-000120-000200",
        "English-British-0001_001_phone-O2-000200-000310",
        "Japanese-0315_004_phone-O1-000050-000125",
        "Japanese-0315_004_phone-O2-000250-000400",
    ]
    en = utts[:3]
    assert [u.segment.start for u in en] == [0.0, 1.2, 2.0]
    assert en[1].segment.recid == "English-British-0001_001_phone"
    assert en[1].segment.end == 2.0
    assert en[1].spk == "English-British-0001_001_phone-O2"
    assert {u.lang for u in en} == {"English-British"}
    assert utts[3].lang == "Japanese" and utts[3].text == "こんにちは"
    # Context crosses speakers, follows start time, is empty at the ends of each recording.
    assert [u.text_prev for u in en] == ["", "hello there", "hi"]
    assert [u.text_next for u in en] == ["hi", "how are you", ""]
    assert (utts[3].text_prev, utts[3].text_next) == ("", "はい")
    assert (utts[4].text_prev, utts[4].text_next) == ("こんにちは", "")
    assert os.path.isabs(utts[0].wav) and utts[0].wav.endswith("British/0001_001_phone.wav")
    assert stats.kept == 5 and stats.recordings == 2 and stats.has_text
    assert stats.skipped == {"empty_text": 1}
    assert stats.per_language == {"English-British": 3, "Japanese": 2}


def test_language_filter(dev_root):
    utts, _ = read_mlc_slm(str(dev_root), languages=["japanese"])
    assert {u.lang for u in utts} == {"Japanese"}
    utts, _ = read_mlc_slm(str(dev_root / "data"), languages=["English-British"])
    assert {u.lang for u in utts} == {"English-British"}
    with pytest.raises(ValueError, match=r"no recordings for language\(s\) \['Thai'\]"):
        read_mlc_slm(str(dev_root), languages=["Thai"])


def test_training_layout_extra_level(tmp_path):
    root = tmp_path / "MLC-SLM_Workshop-Training_Set_1"
    _session(root / "data" / "English" / "American_English" / "0001", "0007_002_phone",
             ["0.10\t1.00\tO1\tyes", "1.00\t2.00\tO2\tno"])
    _session(root / "data" / "Japanese" / "0002", "0100_001_phone", ["0\t1\tO1\tはい"])
    utts, stats = read_mlc_slm(str(root))
    assert [u.uttid for u in utts] == [
        "English-American-0007_002_phone-O1-000010-000100",
        "English-American-0007_002_phone-O2-000100-000200",
        "Japanese-0100_001_phone-O1-000000-000100",
    ]
    assert utts[0].lang == "English-American"
    assert stats.kept == 3


def test_eval_set_without_text(tmp_path):
    root = tmp_path / "eval"
    _session(root / "data" / "Japanese", "s1", ["1.0\t2.0\tO2", "0.0\t1.0\tO1"])
    _session(root / "data" / "Thai", "s2", None, seconds=2.5)  # wav only
    utts, stats = read_mlc_slm(str(root))
    assert [u.uttid for u in utts] == [
        "Japanese-s1-O1-000000-000100", "Japanese-s1-O2-000100-000200", "Thai-s2-000000-000250"]
    assert all(u.text is None and u.text_prev is None for u in utts)
    assert utts[2].spk == "Thai-s2" and utts[2].segment == ("Thai-s2", 0.0, 2.5)
    assert not stats.has_text and stats.wav_only == 1
    out = tmp_path / "data" / "eval"
    assert main(["--root", str(root), "--out", str(out)]) == 0
    assert not (out / "text").exists() and not (out / "text_prev").exists()
    assert read_kv(out / "utt2lang")["Thai-s2-000000-000250"] == "Thai"


def test_mixed_transcribed_and_untranscribed_is_an_error(tmp_path):
    root = tmp_path / "mixed"
    _session(root / "data" / "Japanese", "a", ["0\t1\tO1\tはい"])
    _session(root / "data" / "Japanese", "b", ["0\t1\tO1"])
    with pytest.raises(ValueError, match="a set must be all transcribed"):
        read_mlc_slm(str(root))


@pytest.mark.parametrize("line, message", [
    ("0.0\t1.0", r"expected 3 or 4 TAB-separated columns .* got 2"),
    ("0.0\t1.0\tO1\ta\tb", r"got 5"),
    ("zero\t1.0\tO1\thi", r"start time 'zero' is not a number"),
    ("0.0\tnan\tO1\thi", r"end time 'nan' is not finite"),
    ("0.0\t1.0\tO 1\thi", r"speaker 'O 1'"),
    ("0.0\t1.0\tO1", r"3 columns, but the first segment of this file has 4"),
])
def test_malformed_lines_are_errors_naming_file_and_line(tmp_path, line, message):
    root = tmp_path / "bad"
    txt = _session(root / "data" / "Japanese", "s", ["0.0\t0.5\tO1\tok", line])
    with pytest.raises(ReaderError, match=message) as err:
        read_mlc_slm(str(root))
    assert f"{txt}:2:" in str(err.value)


def test_end_within_tolerance_is_clipped(tmp_path):
    assert END_TOLERANCE == 0.5  # the default --max_overshoot of stage 2 (format_data)
    root = tmp_path / "tol"
    _session(root / "data" / "Japanese", "s", ["3.0\t4.03\tO1\thi", "0.5\t1.0\tO2\tho"])
    _session(root / "data" / "Thai", "t", ["0.0\t4.45\tO1\tyes"])
    utts, stats = read_mlc_slm(str(root))
    assert [u.uttid for u in utts] == ["Japanese-s-O2-000050-000100",
                                       "Japanese-s-O1-000300-000403",  # id: annotated time
                                       "Thai-t-O1-000000-000445"]
    assert utts[1].segment.end == 4.0 and utts[2].segment.end == 4.0
    assert stats.clipped_end == 2 and stats.total_dropped == 0
    assert "ends clipped to the audio length (<= 0.5 s over)=2" in stats.summary()
    # With no tolerance, both are beyond the audio: dropped and counted.
    utts, stats = read_mlc_slm(str(root), end_tolerance=0.0)
    assert [u.uttid for u in utts] == ["Japanese-s-O2-000050-000100"]
    assert stats.dropped == {"segment_beyond_audio": 2} and stats.clipped_end == 0
    with pytest.raises(ValueError, match="end_tolerance must be >= 0"):
        read_mlc_slm(str(root), end_tolerance=-1)


def test_duplicate_ids(tmp_path):
    root = tmp_path / "dup"
    txt = _session(root / "data" / "Japanese", "s", ["0\t1\tO1\thi", "0.001\t1.001\tO1\tho"])
    with pytest.raises(ValueError, match=f"{txt}:2: utterance id .* already given by {txt}:1"):
        read_mlc_slm(str(root))
    root = tmp_path / "duprec"
    _session(root / "data" / "Japanese" / "0001", "s", ["0\t1\tO1\thi"])
    _session(root / "data" / "Japanese" / "0002", "s", ["0\t1\tO1\thi"])
    with pytest.raises(ValueError, match="two recordings get the id 'Japanese-s'"):
        read_mlc_slm(str(root))


def test_space_separated_fallback(tmp_path):
    root = tmp_path / "spaces"
    _session(root / "data" / "Japanese", "s", ["0.0 1.0 O1 two words"])
    utts, _ = read_mlc_slm(str(root))
    assert utts[0].text == "two words"


def test_cli_writes_valid_data_dir(dev_root, tmp_path, capsys):
    out = tmp_path / "data" / "dev"
    assert main(["--root", str(dev_root), "--out", str(out)]) == 0
    assert f"{out}: {dev_root / 'data'}: rows=6 kept=5 dropped=1 (empty_text=1); per group: " \
        f"English-British=3, Japanese=2; recordings=2; " in capsys.readouterr().out
    assert validate_data_dir(out) == {"utterances": 5, "speakers": 4, "recordings": 2}
    wav_scp = read_kv(out / "wav.scp")
    assert list(wav_scp) == ["English-British-0001_001_phone", "Japanese-0315_004_phone"]
    assert all(os.path.isabs(p) for p in wav_scp.values())
    seg = read_kv(out / "segments")
    assert seg["Japanese-0315_004_phone-O2-000250-000400"] == "Japanese-0315_004_phone 2.50 3.995"
    assert read_kv(out / "utt2lang")["English-British-0001_001_phone-O1-000000-000150"] \
        == "English-British"
    assert read_kv(out / "text_next")["English-British-0001_001_phone-O1-000000-000150"] == "hi"
    assert read_kv(out / "text_prev")["English-British-0001_001_phone-O1-000000-000150"] == ""
    assert read_kv(out / "text")["Japanese-0315_004_phone-O1-000050-000125"] == "こんにちは"


# Drops: every problem of one segment line or one session is counted under its reason, the
# rest of the set is written; --strict true turns each into an error naming file:line.
GOOD = ["0.0\t1.0\tO1\tはい", "1.0\t2.0\tO2\tええ"]
GOOD_IDS = ["Japanese-good-O1-000000-000100", "Japanese-good-O2-000100-000200"]


def _line_case(bad_line):
    """Session Japanese/s with one good line and ``bad_line`` (str, or bytes written as is)."""
    def build(data):
        txt = _session(data / "Japanese", "s", ["0.0\t0.5\tO1\tok"])
        with open(txt, "ab") as f:
            f.write(bad_line if isinstance(bad_line, bytes) else bad_line.encode() + b"\n")
        return f"{txt}:2", ["Japanese-s-O1-000000-000050"]
    return build


def _missing_audio(data):
    return _session(data / "Japanese", "t", ["0.0\t1.0\tO1\thi"], wav=False), []


def _unreadable_audio(data):
    _session(data / "Japanese", "t", ["0.0\t1.0\tO1\thi"])
    (data / "Japanese" / "t.wav").write_bytes(b"RIFF\x00\x00 not a wav header")
    return str(data / "Japanese" / "t.wav"), []


def _outside_language_folder(data):
    return _session(data, "x", ["0.0\t1.0\tO1\thi"]), []


def _english_without_accent(data):
    return _session(data / "English", "y", ["0.0\t1.0\tO1\thi"]), []


DROP_CASES = {
    "not_utf8": _line_case(b"0.5\t1.0\tO2\t\xff\xfe\xc3\n"),
    "empty_text": _line_case("0.5\t1.0\tO2\t   "),
    "bad_segment_time/negative_start": _line_case("-0.5\t1.0\tO2\thi"),
    "bad_segment_time/zero_duration": _line_case("1.0\t1.0\tO2\thi"),
    "bad_segment_time/negative_duration": _line_case("2.0\t1.0\tO2\thi"),
    "segment_beyond_audio/end": _line_case("3.0\t90.0\tO2\thi"),
    "segment_beyond_audio/start": _line_case("4.1\t4.3\tO2\thi"),
    "missing_audio": _missing_audio,
    "unreadable_audio": _unreadable_audio,
    "unknown_language_folder/outside": _outside_language_folder,
    "unknown_language_folder/english": _english_without_accent,
}


def _drop_tree(tmp_path, case):
    data = tmp_path / "db" / "data"
    _session(data / "Japanese", "good", GOOD)
    where, kept = DROP_CASES[case](data)
    return data.parent, where, GOOD_IDS + kept


@pytest.mark.parametrize("case", sorted(DROP_CASES))
def test_drop_reason_counted_and_rest_written(tmp_path, capsys, case):
    reason = case.split("/")[0]
    root, where, kept = _drop_tree(tmp_path, case)
    utts, stats = read_mlc_slm(str(root))
    assert sorted(u.uttid for u in utts) == sorted(kept)
    assert stats.dropped == {reason: 1}
    assert stats.examples[reason][0].split(": ")[0] == where  # file:line, or the session file
    assert stats.rows == stats.kept + 1
    out = tmp_path / "data" / "dev"
    assert main(["--root", str(root), "--out", str(out)]) == 0
    assert f"dropped=1 ({reason}=1)" in capsys.readouterr().out
    assert sorted(read_kv(out / "text")) == sorted(kept)
    validate_data_dir(out)


@pytest.mark.parametrize("case", sorted(DROP_CASES))
def test_strict_turns_the_drop_into_an_error(tmp_path, capsys, case):
    reason = case.split("/")[0]
    root, where, _ = _drop_tree(tmp_path, case)
    out = tmp_path / "data" / "dev"
    assert main(["--root", str(root), "--out", str(out), "--strict", "true"]) == 1
    err = capsys.readouterr().err
    assert f"ERROR: {where}: {reason}" in err and "--strict true" in err
    assert not out.exists()
    with pytest.raises(ReaderError, match=reason):
        read_mlc_slm(str(root), strict=True)


def test_language_filter_counts_only_the_selected_languages(tmp_path):
    root, _, _ = _drop_tree(tmp_path, "unknown_language_folder/english")
    _session(root / "data" / "English" / "British", "b", ["0\t1\tO1\thi"])
    _, stats = read_mlc_slm(str(root), languages=["Japanese"])
    assert not stats.dropped
    _, stats = read_mlc_slm(str(root), languages=["English-British"])
    assert stats.dropped == {"unknown_language_folder": 1}


def test_every_segment_dropped_is_an_error(tmp_path):
    root = tmp_path / "nowav"
    _session(root / "data" / "Japanese", "s", ["0\t1\tO1\thi"], wav=False)
    with pytest.raises(ReaderError, match=r"no utterance kept \(.*missing_audio=1"):
        read_mlc_slm(str(root))


# The command line, as local/data.sh runs it: the three failures of issue #9 end with counts,
# a malformed file with one ERROR line naming file:line, never a traceback.
def test_cli_issue_cases_prepare_the_rest(tmp_path):
    data = tmp_path / "db" / "data"
    _session(data / "Japanese", "good", GOOD)
    bad = _session(data / "Japanese", "utf", ["0.0\t0.5\tO1\tok"])
    with open(bad, "ab") as f:
        f.write(b"0.5\t1.0\tO2\t\xe3\x81\n")
    _session(data / "Thai", "nowav", ["0.0\t1.0\tO1\thi"], wav=False)
    _session(data / "Thai", "far", ["0.0\t1.0\tO1\tok", "3.0\t4000.0\tO2\tfar"])
    out = tmp_path / "out"
    proc = run_reader("mlc_slm", "--root", data.parent, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert ("rows=7 kept=4 dropped=3 (missing_audio=1, not_utf8=1, segment_beyond_audio=1)"
            in proc.stdout)
    assert f"{bad}:2" in proc.stderr  # the examples are logged
    assert len(read_kv(out / "text")) == 4
    proc = run_reader("mlc_slm", "--root", data.parent, "--out", tmp_path / "o2",
                      "--strict", "true")
    assert_cli_error(proc, f"{data}/Thai/nowav.txt: missing_audio")  # sessions come first


def test_cli_malformed_file_is_one_error_line(tmp_path):
    data = tmp_path / "db" / "data"
    _session(data / "Japanese", "good", GOOD)
    txt = _session(data / "Japanese", "cols", ["0.0\t1.0\tO1\tok", "1.0\t2.0"])
    proc = run_reader("mlc_slm", "--root", data.parent, "--out", tmp_path / "out")
    assert_cli_error(proc, f"{txt}:2: expected 3 or 4 TAB-separated columns")
    assert not (tmp_path / "out").exists()
    proc = run_reader("mlc_slm", "--root", tmp_path / "none", "--out", tmp_path / "out")
    assert_cli_error(proc, "MLC-SLM root")
    proc = run_reader("mlc_slm", "--root", data.parent, "--out", tmp_path / "out",
                      "--strict", "maybe")
    assert proc.returncode == 2 and "expected true or false, got 'maybe'" in proc.stderr
