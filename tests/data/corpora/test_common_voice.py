"""Tests of espnet_sllm.data.corpora.common_voice on tiny synthetic Common Voice language folders.

The clips are real MP3 files written by soundfile (libsndfile >= 1.1 encodes and decodes MP3),
the format of the release; stage 2 (format_data) is run on the result to check that the .mp3
paths of wav.scp are decoded without any external tool.
"""
import os
import re

import numpy as np
import pytest
import soundfile

from espnet_sllm.data.formatting import format_data
from espnet_sllm.data.corpora.common_voice import (
    CV_LANGUAGES,
    CvRow,
    language_code,
    main,
    read_common_voice,
    read_cv_table,
)
from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.data.corpora.reader_utils import ReaderError
from tests.data.corpora.test_reader_utils import assert_cli_error, run_reader

SR = 48000
CLIENT_A = "a1b2c3d4" + "e" * 120
CLIENT_B = "0f0f0f0f" + "1" * 120
# Extra columns, and a column order different from the release's (read by name).
HEADER = ["sentence_id", "sentence", "client_id", "up_votes", "path", "locale", "segment"]


def _mp3(path, seconds=0.5, freq=440.0):
    t = np.arange(int(seconds * SR)) / SR
    soundfile.write(path, (0.1 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR,
                    format="MP3")


def _lang_dir(root, code, rows, clips=None, split="train", header=HEADER):
    """rows: dicts of column values (missing columns are empty); clips: stems to create
    (default: every row's path)."""
    d = root / code
    (d / "clips").mkdir(parents=True)
    lines = ["\t".join(header)]
    for r in rows:
        lines.append(r if isinstance(r, str) else "\t".join(r.get(c, "") for c in header))
    (d / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    names = clips if clips is not None else [r["path"] for r in rows if isinstance(r, dict)]
    for name in names:
        _mp3(str(d / "clips" / name))
    return d


def _row(path, sentence, client=CLIENT_A):
    return {"path": path, "sentence": sentence, "client_id": client, "locale": "x",
            "sentence_id": "s" + path, "up_votes": "2"}


@pytest.fixture
def cv_root(tmp_path):
    root = tmp_path / "cv"
    _lang_dir(root, "fr", [
        _row("common_voice_fr_1.mp3", 'Il a dit "bonjour" à tous.'),  # quotes kept literally
        _row("common_voice_fr_2.mp3", "   "),  # empty sentence: skipped, counted
        _row("common_voice_fr_3.mp3", "Encore une phrase.", client=CLIENT_B),
        _row("common_voice_fr_4.mp3", "Son clip manque."),  # missing clip: skipped, counted
        _row("common_voice_fr_5.mp3", "«Guillemets» et 'apostrophes'"),
    ], clips=["common_voice_fr_1.mp3", "common_voice_fr_2.mp3", "common_voice_fr_3.mp3",
              "common_voice_fr_5.mp3"])
    _lang_dir(root, "ja", [_row("common_voice_ja_9.mp3", "こんにちは。")])
    return root


def test_read_ids_text_skips(cv_root):
    utts, stats = read_common_voice(str(cv_root / "fr"))
    assert [u.uttid for u in utts] == [
        "cv-fr-a1b2c3d4-common_voice_fr_1",
        "cv-fr-0f0f0f0f-common_voice_fr_3",
        "cv-fr-a1b2c3d4-common_voice_fr_5",
    ]
    assert [u.spk for u in utts] == ["cv-fr-a1b2c3d4", "cv-fr-0f0f0f0f", "cv-fr-a1b2c3d4"]
    assert utts[0].text == 'Il a dit "bonjour" à tous.'
    assert utts[2].text == "«Guillemets» et 'apostrophes'"
    assert {u.lang for u in utts} == {"French"}
    assert utts[0].wav == os.path.abspath(cv_root / "fr" / "clips" / "common_voice_fr_1.mp3")
    assert all(u.segment is None and u.text_prev is None and u.text_next is None for u in utts)
    assert stats.rows == 5 and stats.kept == 3
    assert stats.dropped == {"empty_sentence": 1, "missing_clip": 1}
    assert stats.per_group == {"French": 3}
    assert stats.examples["missing_clip"] == [
        f"{cv_root / 'fr' / 'train.tsv'}:5: {cv_root / 'fr' / 'clips' / 'common_voice_fr_4.mp3'}"]


def test_max_utts_label_and_split(cv_root):
    utts, stats = read_common_voice(str(cv_root / "fr"), max_utts=2, lang_label="French-X")
    assert len(utts) == 2 and stats.kept == 2 and {u.lang for u in utts} == {"French-X"}
    with pytest.raises(FileNotFoundError, match=r"fr/dev\.tsv: not found"):
        read_common_voice(str(cv_root / "fr"), split="dev")


def test_malformed_row_names_file_and_line(tmp_path):
    d = _lang_dir(tmp_path, "de", [
        _row("a.mp3", "Gut."),
        "x\tzu wenige Spalten",
    ])
    with pytest.raises(ValueError, match=r"de/train\.tsv:3: 2 TAB-separated columns, but the "
                                         r"header has 7"):
        read_common_voice(str(d))


def test_header_without_required_column(tmp_path):
    d = _lang_dir(tmp_path, "it", [{"path": "a.mp3", "text": "ciao"}], header=["path", "text"])
    with pytest.raises(ValueError, match=r"it/train\.tsv:1: header lacks column\(s\) "
                                         r"\['sentence'\]"):
        read_common_voice(str(d))


def test_without_client_id_each_utterance_is_its_own_speaker(tmp_path):
    d = _lang_dir(tmp_path, "es", [{"path": "c_1.mp3", "sentence": "Hola."},
                                   {"path": "c_2.mp3", "sentence": "Adiós."}],
                  header=["path", "sentence"])
    utts, _ = read_common_voice(str(d))
    assert [(u.uttid, u.speaker) for u in utts] == [("cv-es-c_1", "cv-es-c_1"),
                                                    ("cv-es-c_2", "cv-es-c_2")]
    assert utts[0].lang == "Spanish"


def test_unknown_code_needs_label(tmp_path):
    d = _lang_dir(tmp_path, "eo", [_row("a.mp3", "Saluton.")])
    with pytest.raises(ValueError, match="no MLC-SLM label for Common Voice language 'eo'"):
        read_common_voice(str(d))
    utts, _ = read_common_voice(str(d), lang_label="Esperanto")
    assert utts[0].lang == "Esperanto"


def test_language_codes():
    assert language_code("ja") == "ja"
    assert language_code("Japanese") == "ja"
    assert language_code("English-American") == "en"
    assert CV_LANGUAGES["en"] == "English" and len(CV_LANGUAGES) == 11
    with pytest.raises(ValueError, match="unknown language 'Klingon'"):
        language_code("Klingon")


def test_cli_and_format_reads_mp3(cv_root, tmp_path, capsys):
    out = tmp_path / "data" / "cv_train"
    assert main(["--cv_root", str(cv_root), "--langs", "fr", "Japanese", "--out", str(out)]) == 0
    assert "kept=4" in capsys.readouterr().out
    validate_data_dir(str(out))
    assert not (out / "segments").exists() and not (out / "text_prev").exists()
    assert read_kv(out / "utt2lang") == {
        "cv-fr-0f0f0f0f-common_voice_fr_3": "French",
        "cv-fr-a1b2c3d4-common_voice_fr_1": "French",
        "cv-fr-a1b2c3d4-common_voice_fr_5": "French",
        "cv-ja-a1b2c3d4-common_voice_ja_9": "Japanese",
    }
    wav_scp = read_kv(out / "wav.scp")
    assert all(v.endswith(".mp3") and os.path.isfile(v) for v in wav_scp.values())

    # Stage 2 decodes the MP3 clips with soundfile and resamples them to 16 kHz.
    dump = tmp_path / "dump" / "cv_train"
    counts = format_data(str(out), str(dump), fs=16000, nj=1, progress=False)
    assert counts["written"] == 4
    for path in read_kv(dump / "wav.scp").values():
        info = soundfile.info(path)
        assert info.samplerate == 16000 and info.channels == 1
        assert abs(info.duration - 0.5) < 0.06


def test_cli_errors(cv_root, tmp_path, capsys):
    assert main(["--cv_root", str(cv_root), "--langs", "de", "--out", str(tmp_path / "o")]) == 1
    assert re.search(r"^ERROR: .*cv/de: no such folder", capsys.readouterr().err, re.M)
    assert not (tmp_path / "o").exists()
    assert main(["--cv_root", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["--cv_root", str(cv_root), "--langs", "xx", "--out", str(tmp_path / "o")]) == 1
    assert "unknown language 'xx'" in capsys.readouterr().err


def test_cv_table_by_name_literal_quotes_and_keep(cv_root):
    tsv = str(cv_root / "fr" / "train.tsv")
    table = read_cv_table(tsv)
    assert list(table) == [f"common_voice_fr_{i}.mp3" for i in (1, 2, 3, 4, 5)]
    assert table["common_voice_fr_1.mp3"] == CvRow(CLIENT_A, 'Il a dit "bonjour" à tous.', 2)
    assert table["common_voice_fr_2.mp3"] == CvRow(CLIENT_A, "", 3)  # the caller decides
    assert read_cv_table(tsv, keep={"common_voice_fr_3.mp3", "other.mp3"}) == {
        "common_voice_fr_3.mp3": CvRow(CLIENT_B, "Encore une phrase.", 4)}


@pytest.mark.parametrize("rows,message", [
    ([_row("a.mp3", "Eins."), _row("b.mp3", "Zwei."), _row("a.mp3", "Drei.")],
     r"train\.tsv:4: clip 'a.mp3' is listed again \(first on line 2\)"),
    ([_row("a b.mp3", "Eins.")], r"train\.tsv:2: clip name 'a b.mp3' cannot be part of an id"),
    ([_row("", "Eins.")], r"train\.tsv:2: empty 'path' column"),
    ([_row("a.mp3", "Eins.", client="ab cd")], r"train\.tsv:2: client_id 'ab cd' contains"),
])
def test_cv_table_errors(tmp_path, rows, message):
    d = _lang_dir(tmp_path, "de", rows, clips=[])
    with pytest.raises(ReaderError, match=message):
        read_cv_table(str(d / "train.tsv"))
    with pytest.raises(ReaderError, match=message):
        read_common_voice(str(d))


def test_no_usable_row(tmp_path):
    d = _lang_dir(tmp_path, "de", [_row("a.mp3", "Eins.")], clips=[])
    with pytest.raises(ReaderError, match=r"de/train\.tsv: no usable row .*missing_clip=1"):
        read_common_voice(str(d))


# Drops (one test per reason the fixture above does not show), --strict, and the command line
# on a malformed file: one ERROR line naming file:line, never a traceback.
def _append_bytes(path, data):
    with open(path, "ab") as f:
        f.write(data)


def test_row_not_utf8_dropped_and_counted(cv_root, tmp_path, capsys):
    tsv = cv_root / "ja" / "train.tsv"
    _mp3(str(cv_root / "ja" / "clips" / "common_voice_ja_10.mp3"))
    _append_bytes(tsv, "\t".join(_row("common_voice_ja_10.mp3", "x").get(c, "")
                                 for c in HEADER).encode().replace(b"\tx\t", b"\t\xff\xfe\t")
                  + b"\n")
    utts, stats = read_common_voice(str(cv_root / "ja"))
    assert [u.uttid for u in utts] == ["cv-ja-a1b2c3d4-common_voice_ja_9"]
    assert (stats.rows, stats.kept, dict(stats.dropped)) == (2, 1, {"not_utf8": 1})
    assert stats.examples["not_utf8"][0].startswith(f"{tsv}:3: not UTF-8")
    out = tmp_path / "out"
    assert main(["--cv_root", str(cv_root), "--langs", "ja", "--out", str(out)]) == 0
    assert "rows=2 kept=1 dropped=1 (not_utf8=1)" in capsys.readouterr().out
    assert list(read_kv(out / "text")) == ["cv-ja-a1b2c3d4-common_voice_ja_9"]
    # A header that is not UTF-8 is an error: no data row can stand in for it.
    (tmp_path / "h" / "ja").mkdir(parents=True)
    (tmp_path / "h" / "ja" / "train.tsv").write_bytes(b"path\tsent\xffence\na.mp3\tx\n")
    with pytest.raises(ReaderError, match=r"ja/train\.tsv:1: not UTF-8"):
        read_common_voice(str(tmp_path / "h" / "ja"))


@pytest.mark.parametrize("reason,line", [("empty_sentence", 3), ("missing_clip", 5)])
def test_strict_turns_a_drop_into_an_error(cv_root, tmp_path, capsys, reason, line):
    out = tmp_path / "out"
    assert main(["--cv_root", str(cv_root), "--langs", "fr", "--out", str(out),
                 "--strict", "true"]) == 1
    assert f"ERROR: {cv_root / 'fr' / 'train.tsv'}:3: empty_sentence" in capsys.readouterr().err
    assert not out.exists()
    tsv = cv_root / "fr" / "train.tsv"
    if reason == "missing_clip":  # the empty sentence removed: the missing clip is next
        tsv.write_text("".join(x for i, x in enumerate(tsv.read_text().splitlines(True))
                               if i != 2), encoding="utf-8")
        line = 4
    with pytest.raises(ReaderError, match=rf"train\.tsv:{line}: {reason}"):
        read_common_voice(str(cv_root / "fr"), strict=True)


def test_strict_not_utf8(cv_root):
    _append_bytes(cv_root / "ja" / "train.tsv", b"\xff\n")
    with pytest.raises(ReaderError, match=r"ja/train\.tsv:3: not_utf8: not UTF-8"):
        read_common_voice(str(cv_root / "ja"), strict=True)


def test_cli_malformed_file(cv_root, tmp_path):
    _append_bytes(cv_root / "ja" / "train.tsv", b"too\tfew\n")
    proc = run_reader("common_voice", "--cv_root", cv_root, "--langs", "ja", "--out",
                      tmp_path / "out")
    assert_cli_error(proc, f"{cv_root / 'ja' / 'train.tsv'}:3: 2 TAB-separated columns")
    (cv_root / "fr" / "train.tsv").unlink()
    (cv_root / "fr" / "train.tsv").mkdir()  # unreadable: a folder
    proc = run_reader("common_voice", "--cv_root", cv_root, "--langs", "fr", "--out",
                      tmp_path / "out")
    assert_cli_error(proc, f"{cv_root / 'fr' / 'train.tsv'}")
