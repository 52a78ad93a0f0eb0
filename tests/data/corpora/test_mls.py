"""Tests of espnet_sllm.data.corpora.mls on a tiny Multilingual LibriSpeech tree (two languages).

The audio files are real 16 kHz FLAC files written by soundfile, as in the release;
metainfo.txt has the release's space padding (and a '|' inside a book title).
"""
import os

import numpy as np
import pytest
import soundfile

from espnet_sllm.data.formatting import format_data
from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.data.corpora.mls import (
    LANGUAGES,
    LIMITED,
    language_name,
    main,
    read_limited_handles,
    read_metainfo,
    read_mls,
    utterance_ids,
)
from espnet_sllm.data.corpora.reader_utils import ReaderError
from tests.data.corpora.test_reader_utils import assert_cli_error, run_reader

SR = 16000
META_HEADER = ("SPEAKER   |   GENDER   | PARTITION  |  MINUTES   |  BOOK ID   |"
               "             TITLE              |            CHAPTER            ")


def _flac(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(SR // 10) / SR
    soundfile.write(str(path), (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR,
                    format="FLAC")


def _split(lang_dir, split, lines, audio):
    """lines: transcript lines (written verbatim); audio: handles that get a FLAC file."""
    d = lang_dir / split
    d.mkdir(parents=True, exist_ok=True)
    (d / "transcripts.txt").write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
    for h in audio:
        spk, book, _ = h.split("_")
        _flac(d / "audio" / spk / book / f"{h}.flac")


def _meta_row(spk, gender, book, title="Ein Buch", chapter="Kapitel 1"):
    return (f"{spk:^10}|{gender:^12}|{'train':^12}|{'10.000':^12}|{book:^12}|"
            f"{title:^32}|{chapter:^31}")


def _limited(lang_dir, sub, handles):
    d = lang_dir / "train" / "limited_supervision" / sub
    d.mkdir(parents=True, exist_ok=True)
    (d / "handles.txt").write_text("".join(f"{h}\n" for h in handles), encoding="utf-8")


@pytest.fixture
def mls(tmp_path):
    root = tmp_path / "mls"
    de = root / "mls_german"
    _split(de, "train", [
        "12_100_000001\t  guten  tag   welt ",   # outer blanks stripped, inner runs collapsed
        "12_100_000002\t   ",                     # empty text: dropped, counted
        "12_101_000003\thallo",
        "123_200_000001\tzweiter sprecher",       # speaker 123 sorts after 12 (Kaldi rule)
        "123_200_000002\tohne audio",             # no FLAC file: dropped, counted
        "",                                       # blank line: not a row
        "5_300_000001\tnicht in metainfo",
    ], ["12_100_000001", "12_100_000002", "12_101_000003", "123_200_000001", "5_300_000001"])
    _split(de, "dev", ["123_200_000010\tein dev satz"], ["123_200_000010"])
    _split(de, "test", ["12_100_000020\tein test satz"], ["12_100_000020"])
    (de / "train" / "segments.txt").write_text("not read\n", encoding="utf-8")
    (de / "metainfo.txt").write_text("\n".join([
        META_HEADER,
        _meta_row("12", "M", "100", title="Ein Buch | mit Strich"),
        _meta_row("12", "M", "101"),
        _meta_row("123", "F", "200"),
        _meta_row("777", "X", "300"),            # unknown gender: counted
    ]) + "\n", encoding="utf-8")
    _limited(de, "9hr", ["12_100_000001", "123_200_000001", "99_1_000001"])
    _limited(de, "1hr/0", ["12_101_000003"])
    _limited(de, "1hr/1", ["12_100_000002"])
    _limited(de, "1hr/2", [])
    _limited(de, "1hr/3", ["12_101_000003"])    # also in fold 0: counted once
    _limited(de, "1hr/4", [])
    _limited(de, "1hr/5", ["5_300_000001"])

    pl = root / "mls_polish"
    _split(pl, "train", ["7_70_000001\tdzień dobry", "7_70_000002\tżółw"],
           ["7_70_000001", "7_70_000002"])
    _split(pl, "dev", ["8_80_000001\tdo widzenia"], ["8_80_000001"])
    _split(pl, "test", ["7_71_000001\tźdźbło"], ["7_71_000001"])
    _limited(pl, "9hr", ["7_70_000002"])
    for k in range(6):
        _limited(pl, f"1hr/{k}", ["7_70_000001"] if k == 0 else [])
    (pl / "metainfo.txt").write_text("\n".join([
        META_HEADER, _meta_row("7", "F", "70"), _meta_row("8", "M", "80")]) + "\n",
        encoding="utf-8")
    return root


def test_read_train_ids_text_drops(mls):
    utts, stats = read_mls(str(mls / "mls_german"), "train")
    assert [(u.uttid, u.spk, u.text, u.lang) for u in utts] == [
        ("mls-de-12-100_000001", "mls-de-12", "guten tag welt", "de"),
        ("mls-de-12-101_000003", "mls-de-12", "hallo", "de"),
        ("mls-de-123-200_000001", "mls-de-123", "zweiter sprecher", "de"),
        ("mls-de-5-300_000001", "mls-de-5", "nicht in metainfo", "de"),
    ]
    audio = mls / "mls_german" / "train" / "audio"
    assert utts[0].wav == str(audio / "12" / "100" / "12_100_000001.flac")
    assert os.path.isabs(utts[0].wav)
    assert (stats.rows, stats.kept) == (6, 4)
    assert dict(stats.dropped) == {"empty_text": 1, "missing_audio": 1}
    assert stats.examples["empty_text"] == [
        f"{mls}/mls_german/train/transcripts.txt:2: 12_100_000002"]
    assert stats.examples["missing_audio"][0].endswith("123/200/123_200_000002.flac")
    assert dict(stats.per_group) == {"de": 4}


def test_ids_sort_like_their_speakers():
    assert utterance_ids("de", "12_100_000001") == ("mls-de-12-100_000001", "mls-de-12")
    pairs = [utterance_ids("en", h) for h in ("1_5_000001", "10_5_000001", "123_5_000001")]
    assert sorted(pairs) == sorted(pairs, key=lambda p: p[1])


@pytest.mark.parametrize("limited,kept,dropped", [
    ("9hr", ["mls-de-12-100_000001", "mls-de-123-200_000001"],
     {"not_in_limited_9hr": 4, "limited_handle_not_in_transcripts": 1}),
    ("1hr", ["mls-de-12-101_000003", "mls-de-5-300_000001"],
     {"not_in_limited_1hr": 3, "empty_text": 1}),
    ("1hr/0", ["mls-de-12-101_000003"], {"not_in_limited_1hr/0": 5}),
    ("10hr", ["mls-de-12-100_000001", "mls-de-12-101_000003", "mls-de-123-200_000001",
              "mls-de-5-300_000001"],
     {"not_in_limited_10hr": 1, "empty_text": 1, "limited_handle_not_in_transcripts": 1}),
])
def test_limited_supervision(mls, limited, kept, dropped):
    utts, stats = read_mls(str(mls / "mls_german"), "train", limited=limited)
    assert [u.uttid for u in utts] == kept
    assert dict(stats.dropped) == dropped
    if "limited_handle_not_in_transcripts" in dropped:
        assert stats.examples["limited_handle_not_in_transcripts"] == [
            f"{mls}/mls_german/train/limited_supervision/9hr/handles.txt:3: 99_1_000001"]


def test_limited_handles_and_bad_subsets(mls):
    handles, stats = read_limited_handles(str(mls / "mls_german"), "1hr")
    assert sorted(handles) == ["12_100_000002", "12_101_000003", "5_300_000001"]
    assert (stats.rows, stats.kept, dict(stats.dropped)) == (4, 3, {"duplicate_handle": 1})
    assert set(LIMITED) == {"9hr", "1hr", "10hr", *(f"1hr/{k}" for k in range(6))}
    with pytest.raises(ValueError, match="unknown limited-supervision subset '2hr'"):
        read_limited_handles(str(mls / "mls_german"), "2hr")
    with pytest.raises(ValueError, match="train split only"):
        read_mls(str(mls / "mls_german"), "dev", limited="9hr")
    _limited(mls / "mls_german", "9hr", ["12_100_000001", "12-100-000002"])
    with pytest.raises(ReaderError, match=r"9hr/handles.txt:2: handle '12-100-000002' is not"):
        read_limited_handles(str(mls / "mls_german"), "9hr")
    os.remove(mls / "mls_german/train/limited_supervision/1hr/4/handles.txt")
    with pytest.raises(FileNotFoundError, match="1hr/4/handles.txt: not found"):
        read_limited_handles(str(mls / "mls_german"), "1hr")


@pytest.mark.parametrize("line,message", [
    ("12_100_000009 no tab here", r"transcripts.txt:2: expected 2 TAB-separated fields"),
    ("12_100_000009\ta\tb", r"transcripts.txt:2: expected 2 TAB-separated fields .* got 3"),
    ("12_100\tzwei teile", r"transcripts.txt:2: handle '12_100' is not of the form"),
    ("a_b_c\tbuchstaben", r"transcripts.txt:2: handle 'a_b_c' is not of the form"),
    (" 12_100_000009\tleerzeichen", r"transcripts.txt:2: handle ' 12_100_000009' is not"),
    ("12_100_000001\tnochmal", r"transcripts.txt:2: handle 12_100_000001 is listed twice, "
                               r"on lines 1 and 2"),
])
def test_malformed_transcripts(tmp_path, line, message):
    lang = tmp_path / "mls_dutch"
    _split(lang, "dev", ["12_100_000001\teen zin", line], ["12_100_000001"])
    with pytest.raises(ReaderError, match=message):
        read_mls(str(lang), "dev")


def test_bad_folders(tmp_path, mls):
    with pytest.raises(ValueError, match="not an MLS language folder"):
        read_mls(str(tmp_path), "train")
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        read_mls(str(mls / "mls_german"), "valid")
    (tmp_path / "mls_french").mkdir()
    with pytest.raises(FileNotFoundError, match="mls_french/train/transcripts.txt: not found"):
        read_mls(str(tmp_path / "mls_french"), "train")


def test_metainfo(mls):
    genders, stats = read_metainfo(str(mls / "mls_german" / "metainfo.txt"))
    assert genders == {"12": "m", "123": "f"}
    assert (stats.rows, stats.kept, dict(stats.dropped)) == (4, 3, {"unknown_gender": 1})
    assert stats.examples["unknown_gender"] == [
        f"{mls}/mls_german/metainfo.txt:5: speaker 777: 'X'"]


@pytest.mark.parametrize("lines,message", [
    (["SPEAKER | PARTITION", "12 | train"], r"metainfo.txt:1: header lacks column\(s\) "
                                             r"\['GENDER'\]"),
    ([META_HEADER, " 12 | M | train"], r"metainfo.txt:2: 3 '\|'-separated fields, but the "
                                        r"header has 7"),
    ([META_HEADER, _meta_row("12", "M", "1"), _meta_row("12", "F", "2")],
     r"metainfo.txt:3: speaker 12 has gender 'F' here but 'm' at .*metainfo.txt:2"),
    ([], r"metainfo.txt:1: empty file"),
])
def test_bad_metainfo(tmp_path, lines, message):
    path = tmp_path / "metainfo.txt"
    path.write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
    with pytest.raises(ReaderError, match=message):
        read_metainfo(str(path))


def test_language_names():
    assert LANGUAGES == {"english": "en", "german": "de", "dutch": "nl", "french": "fr",
                         "spanish": "es", "italian": "it", "portuguese": "pt", "polish": "pl"}
    assert language_name("de") == "german" and language_name("mls_Polish") == "polish"
    with pytest.raises(ValueError, match="unknown MLS language 'swedish'; valid: english"):
        language_name("swedish")


def test_main_writes_every_set(mls, tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["--mls_root", str(mls), "--langs", "german", "pl", "--data_dir", str(data),
                 "--limited", "10hr"]) == 0
    out = capsys.readouterr().out
    names = sorted(os.listdir(data))
    assert names == ["mls_de_dev", "mls_de_test", "mls_de_train",
                     "mls_pl_dev", "mls_pl_test", "mls_pl_train"]
    for name in names:
        validate_data_dir(data / name)
    train = data / "mls_de_train"
    assert read_kv(train / "text") == {
        "mls-de-12-100_000001": "guten tag welt",
        "mls-de-12-101_000003": "hallo",
        "mls-de-123-200_000001": "zweiter sprecher",
        "mls-de-5-300_000001": "nicht in metainfo",
    }
    assert set(read_kv(train / "utt2lang").values()) == {"de"}
    assert read_kv(train / "spk2utt") == {
        "mls-de-12": "mls-de-12-100_000001 mls-de-12-101_000003",
        "mls-de-123": "mls-de-123-200_000001",
        "mls-de-5": "mls-de-5-300_000001",
    }
    assert read_kv(train / "wav.scp")["mls-de-5-300_000001"] == str(
        mls / "mls_german/train/audio/5/300/5_300_000001.flac")
    # Speaker 5 is not in metainfo.txt: counted, no spk2gender line.
    assert read_kv(train / "spk2gender") == {"mls-de-12": "m", "mls-de-123": "f"}
    assert f"{train}/spk2gender: rows=3 kept=2 dropped=1 (speaker_not_in_metainfo=1)" in out
    assert "(empty_text=1, limited_handle_not_in_transcripts=1, not_in_limited_10hr=1)" in out
    assert read_kv(data / "mls_de_dev" / "spk2gender") == {"mls-de-123": "f"}
    assert read_kv(data / "mls_pl_test" / "text") == {"mls-pl-7-71_000001": "źdźbło"}
    assert read_kv(data / "mls_pl_train" / "text") == {"mls-pl-7-70_000001": "dzień dobry",
                                                       "mls-pl-7-70_000002": "żółw"}
    assert read_kv(data / "mls_pl_train" / "spk2gender") == {"mls-pl-7": "f"}
    # The limited subset applies to train only.
    assert len(read_kv(data / "mls_pl_dev" / "text")) == 1

    # Stage 2 decodes the FLAC files of wav.scp (16 kHz WAV per utterance).
    dump = tmp_path / "dump" / "mls_de_train"
    assert format_data(str(train), str(dump), fs=16000, nj=1, progress=False)["written"] == 4
    for path in read_kv(dump / "wav.scp").values():
        info = soundfile.info(path)
        assert info.samplerate == 16000 and abs(info.duration - 0.1) < 0.01


def test_main_errors(mls, tmp_path, capsys):
    assert main(["--mls_root", str(mls), "--langs", "german", "english",
                 "--data_dir", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err
    assert f"ERROR: {mls}/mls_english: not found; --mls_root must hold" in err
    assert main(["--mls_root", str(mls), "--langs", "klingon"]) == 1
    assert "unknown MLS language 'klingon'" in capsys.readouterr().err
    assert main(["--mls_root", str(mls), "--limited", "3hr", "--langs", "german"]) == 1
    assert "unknown --limited '3hr'; valid: 9hr, 1hr, 10hr, 1hr/0" in capsys.readouterr().err
    assert main(["--mls_root", str(tmp_path / "none")]) == 1
    assert "does not exist" in capsys.readouterr().err
    # Every transcript row of a set dropped: an error, not an empty directory.
    for f in (mls / "mls_polish" / "dev" / "audio").rglob("*.flac"):
        f.unlink()
    assert main(["--mls_root", str(mls), "--langs", "polish", "--data_dir",
                 str(tmp_path / "e")]) == 1
    assert "mls_polish/dev: no utterance kept" in capsys.readouterr().err


def test_main_without_metainfo(mls, tmp_path, capsys):
    os.remove(mls / "mls_polish" / "metainfo.txt")
    data = tmp_path / "data"
    assert main(["--mls_root", str(mls), "--langs", "polish", "--splits", "test",
                 "--data_dir", str(data)]) == 0
    assert os.listdir(data) == ["mls_pl_test"]
    assert not (data / "mls_pl_test" / "spk2gender").exists()


def test_print_codes(capsys):
    assert main(["--print_codes", "english", "polish", "german"]) == 0
    assert capsys.readouterr().out == "en pl de\n"
    assert main(["--print_codes", "de"]) == 1  # release names only (they are folder names)
    assert "unknown MLS language ['de']; valid: english, german" in capsys.readouterr().err


# Lines that are not UTF-8 (the other drop reasons: the tests above), --strict, and the command
# line on a malformed file: one ERROR line naming file:line, never a traceback.
def _append_bytes(path, data):
    with open(path, "ab") as f:
        f.write(data)


def test_lines_not_utf8_dropped_and_counted(mls, tmp_path, capsys):
    pl = mls / "mls_polish"
    _append_bytes(pl / "train" / "transcripts.txt", b"7_70_000003\t\xff\xfe\n")
    _append_bytes(pl / "train" / "limited_supervision" / "9hr" / "handles.txt", b"7_\xff\n")
    _append_bytes(pl / "metainfo.txt", _meta_row("9", "M", "90").encode().replace(b"M", b"\xff")
                  + b"\n")
    utts, stats = read_mls(str(pl), "train")
    assert [u.uttid for u in utts] == ["mls-pl-7-70_000001", "mls-pl-7-70_000002"]
    assert (stats.rows, stats.kept, dict(stats.dropped)) == (3, 2, {"not_utf8": 1})
    assert stats.examples["not_utf8"][0].startswith(f"{pl}/train/transcripts.txt:3: not UTF-8")
    handles, hstats = read_limited_handles(str(pl), "9hr")
    assert list(handles) == ["7_70_000002"] and dict(hstats.dropped) == {"not_utf8": 1}
    genders, mstats = read_metainfo(str(pl / "metainfo.txt"))
    assert genders == {"7": "f", "8": "m"} and dict(mstats.dropped) == {"not_utf8": 1}
    data = tmp_path / "data"
    assert main(["--mls_root", str(mls), "--langs", "polish", "--data_dir", str(data),
                 "--limited", "9hr"]) == 0
    out = capsys.readouterr().out
    assert f"{pl}/metainfo.txt: rows=3 kept=2 dropped=1 (not_utf8=1)" in out
    assert "rows=3 kept=1 dropped=2 (not_in_limited_9hr=1, not_utf8=1)" in out
    assert list(read_kv(data / "mls_pl_train" / "text")) == ["mls-pl-7-70_000002"]


def test_strict_turns_a_drop_into_an_error(mls, tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["--mls_root", str(mls), "--langs", "german", "--data_dir", str(data),
                 "--strict", "true"]) == 1
    assert f"ERROR: {mls}/mls_german/metainfo.txt:5: unknown_gender: speaker 777: 'X'" in \
        capsys.readouterr().err
    assert not data.exists()
    with pytest.raises(ReaderError, match=r"train/transcripts.txt:2: empty_text"):
        read_mls(str(mls / "mls_german"), "train", strict=True)
    # Rows outside a limited subset are left out by choice: counted, never an error.
    utts, stats = read_mls(str(mls / "mls_polish"), "train", limited="9hr", strict=True)
    assert len(utts) == 1 and dict(stats.dropped) == {"not_in_limited_9hr": 1}
    assert main(["--mls_root", str(mls), "--langs", "polish", "--data_dir", str(data),
                 "--strict", "true", "--limited", "9hr"]) == 0


def test_cli_malformed_file(mls, tmp_path):
    path = mls / "mls_polish" / "dev" / "transcripts.txt"
    _append_bytes(path, b"8_80_000002\ta\tb\n")
    proc = run_reader("mls", "--mls_root", mls, "--langs", "polish", "--splits", "dev",
                      "--data_dir", tmp_path / "data")
    assert_cli_error(proc, f"{path}:2: expected 2 TAB-separated fields")
