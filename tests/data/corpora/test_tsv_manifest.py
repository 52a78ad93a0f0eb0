"""The generic TSV manifest reader (espnet_sllm.data.corpora.tsv_manifest).

(tests/test_layout.py wants a reader's tests in tests/data/corpora/test_<name>.py: this file
is meant to live there as test_tsv_manifest.py; it does not depend on its location.)
"""
import re

import pytest

from espnet_sllm.data.corpora import tsv_manifest as tm
from espnet_sllm.data.corpora.reader_utils import ReaderError
from espnet_sllm.data.kaldi_dir import read_data_dir, read_kv, validate_data_dir

HEADER = "path\tstart\tend\ttext\tlang\n"


def make_tree(root, rows, header=True, name="m.tsv", audio=("th/0001/abc.wav",
                                                              "en/x/def.flac")):
    """``root/db`` with (empty) audio files and ``root/<name>`` holding ``rows``."""
    for rel in audio:
        p = root / "db" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    path = root / name
    path.write_text((HEADER if header else "") + "".join("\t".join(r) + "\n" for r in rows),
                    encoding="utf-8")
    return path


SEG_ROWS = [
    ("th/0001/abc.wav", "12.34", "17.5", "สวัสดีครับ", "Thai"),
    ("th/0001/abc.wav", "0", "2.0004", "ครับ", "Thai"),
    ("en/x/def.flac", "1", "3", "hello there", "English-American"),
]


def read(path, root, **kw):
    return tm.read_tsv_manifest(str(path), str(root / "db"), "gs2", **kw)


def test_segments_ids_and_files(tmp_path):
    m = make_tree(tmp_path, SEG_ROWS)
    rc = tm.main(["--manifest", str(m), "--root", str(tmp_path / "db"), "--prefix", "gs2",
                  "--out", str(tmp_path / "out"), "--check_audio", "true"])
    assert rc == 0
    out = tmp_path / "out"
    validate_data_dir(out)
    utts = {u.uttid: u for u in read_data_dir(out)}
    assert list(utts) == ["gs2-en-x-def-0001000-0003000", "gs2-th-0001-abc-0000000-0002000",
                          "gs2-th-0001-abc-0012340-0017500"]
    u = utts["gs2-th-0001-abc-0012340-0017500"]
    assert u.spk == "gs2-th-0001-abc" and u.segment == ("gs2-th-0001-abc", 12.34, 17.5)
    assert u.wav == str(tmp_path / "db" / "th" / "0001" / "abc.wav")
    assert u.text == "สวัสดีครับ" and u.lang == "Thai"
    assert read_kv(out / "segments")["gs2-th-0001-abc-0000000-0002000"] == \
        "gs2-th-0001-abc 0.00 2.0004"
    # the header is optional; absolute paths under --root are the same recording
    rows = [(str(tmp_path / "db" / r[0]), *r[1:]) for r in SEG_ROWS]
    utts2, stats = read(make_tree(tmp_path, rows, header=False, name="abs.tsv"), tmp_path)
    assert sorted(u.uttid for u in utts2) == list(utts)
    assert stats.rows == 3 and stats.kept == 3 and stats.per_group == {"Thai": 2,
                                                                       "English-American": 1}


def test_whole_files_and_unlabeled_audio(tmp_path):
    rows = [("th/0001/abc.wav", "-", "-", "ขอบคุณ", "Thai"),
            ("en/x/def.flac", "", "", "hi", "English-American")]
    utts, _ = read(make_tree(tmp_path, rows), tmp_path)
    assert [(u.uttid, u.spk, u.segment) for u in utts] == [
        ("gs2-th-0001-abc", "gs2-th-0001-abc", None), ("gs2-en-x-def", "gs2-en-x-def", None)]
    rows = [(p, s, e, "", lang) for p, s, e, _, lang in SEG_ROWS]
    m = make_tree(tmp_path, rows, name="unlab.tsv")
    utts, stats = read(m, tmp_path)   # without --allow_no_text: empty texts are dropped
    assert utts == [] and stats.dropped == {"empty_text": 3}
    rc = tm.main(["--manifest", str(m), "--root", str(tmp_path / "db"), "--prefix", "gs2",
                  "--out", str(tmp_path / "out"), "--allow_no_text", "true"])
    assert rc == 0
    assert not (tmp_path / "out" / "text").exists() and (tmp_path / "out" / "utt2lang").exists()
    mixed = make_tree(tmp_path, [SEG_ROWS[0], rows[1]], name="mixed.tsv")
    with pytest.raises(ReaderError, match=rf"{mixed}:2: a row with a text, but {mixed}:3 has "
                                          r"none"):
        read(mixed, tmp_path, allow_no_text=True)


@pytest.mark.parametrize("row, message", [
    (("th/0001/abc.wav", "1", "2", "x"), r"4 TAB-separated fields, expected 5"),
    (("th/0001/abc.wav", "1", "2", "x", "Thai", ""), r"6 TAB-separated fields"),
    (("th/0001/abc.wav", "1.2.3", "2", "x", "Thai"), r"start '1.2.3' is not a number"),
    (("th/0001/abc.wav", "1", "two", "x", "Thai"), r"end 'two' is not a number"),
    (("th/0001/abc.wav", "1", "nan", "x", "Thai"), r"end 'nan' is not a finite number"),
    (("th/0001/abc.wav", "1", "-", "x", "Thai"), r"give both start and end"),
    (("", "1", "2", "x", "Thai"), r"empty path"),
    (("../outside.wav", "1", "2", "x", "Thai"), r"is not a file under --root"),
    (("th/my file.wav", "1", "2", "x", "Thai"), r"recording id .* cannot be part of an id"),
    (("th/0001/abc.wav", "1", "2", "x", "Thai Lao"), r"language label 'Thai Lao' contains"),
    (("th/0001/abc.wav", "-", "-", "x", "Thai"), r"a row without times, but .*m.tsv:2 has "
                                                 r"them"),
    (("th/0001/abc.flac", "5", "6", "x", "Thai"), r"gives recording id 'gs2-th-0001-abc', "
                                                  r"already given to .*abc.wav by .*m.tsv:2"),
    (("th/0001/abc.wav", "12.3401", "17.5", "x", "Thai"), r"utterance id "
                                                          r"'gs2-th-0001-abc-0012340-0017500' "
                                                          r"is already given by .*m.tsv:2"),
])
def test_malformed_lines_name_file_and_line(tmp_path, capsys, row, message):
    m = make_tree(tmp_path, [SEG_ROWS[0], row, SEG_ROWS[2]])
    with pytest.raises(ReaderError, match=rf"^{re.escape(str(m))}:3: (.* )?{message}"):
        read(m, tmp_path)
    rc = tm.main(["--manifest", str(m), "--root", str(tmp_path / "db"), "--prefix", "gs2",
                  "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith(f"ERROR: {m}:3: ") and err.count("\n") == 1


@pytest.mark.parametrize("row, reason", [
    (("th/0001/abc.wav", "3", "3", "x", "Thai"), "bad_segment_time"),
    (("th/0001/abc.wav", "4", "3", "x", "Thai"), "bad_segment_time"),
    (("th/0001/abc.wav", "-1", "3", "x", "Thai"), "bad_segment_time"),
    (("th/0001/abc.wav", "1", "3", "  ", "Thai"), "empty_text"),
    (("th/0001/abc.wav", "1", "3", "x", ""), "empty_lang"),
    (("th/0002/missing.wav", "1", "3", "x", "Thai"), "missing_audio"),
])
def test_row_flaws_are_counted_or_strict_errors(tmp_path, row, reason):
    m = make_tree(tmp_path, [SEG_ROWS[0], row, SEG_ROWS[2]])
    utts, stats = read(m, tmp_path, check_audio=True)
    assert len(utts) == 2 and stats.rows == 3 and stats.dropped == {reason: 1}
    assert stats.examples[reason][0].startswith(f"{m}:3")
    with pytest.raises(ReaderError, match=rf"^{m}:3: {reason}"):
        read(m, tmp_path, check_audio=True, strict=True)
    if reason == "missing_audio":  # not checked without --check_audio
        assert len(read(m, tmp_path)[0]) == 3


def test_cli_errors_without_traceback(tmp_path, capsys):
    m = make_tree(tmp_path, [SEG_ROWS[0]])
    for argv, msg in [
        (["--manifest", str(tmp_path / "none.tsv")], "none.tsv: no such manifest"),
        (["--manifest", str(m), "--prefix", "a b"], "prefix 'a b' cannot be part of an id"),
    ]:
        full = {"--root": str(tmp_path / "db"), "--prefix": "gs2", "--out": str(tmp_path / "o")}
        for k, v in zip(argv[::2], argv[1::2]):
            full[k] = v
        rc = tm.main([x for kv in full.items() for x in kv])
        err = capsys.readouterr().err
        assert rc == 1 and "ERROR: " in err and msg in err and "Traceback" not in err
    rc = tm.main(["--manifest", str(make_tree(tmp_path, [], name="empty.tsv")), "--root",
                  str(tmp_path / "db"), "--prefix", "gs2", "--out", str(tmp_path / "o")])
    assert rc == 1 and "no utterance kept" in capsys.readouterr().err

