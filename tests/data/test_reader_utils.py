"""Tests of espnet_sllm.data.reader_utils (shared by every corpus reader)."""
import pytest

from espnet_sllm.data.reader_utils import (
    ReaderError,
    ReaderStats,
    check_id,
    iter_lines,
    parse_list,
    run_main,
)


def test_stats_counts_and_summary():
    a = ReaderStats("a.tsv")
    a.rows = 5
    a.keep("en")
    a.keep("en")
    a.keep("de")
    for i in range(5):
        a.drop("missing_clip", f"a.tsv:{i + 2}", "x.mp3")
    a.drop("empty_text", "a.tsv:9")
    assert a.total_dropped == 6
    assert a.examples["missing_clip"] == ["a.tsv:2: x.mp3", "a.tsv:3: x.mp3", "a.tsv:4: x.mp3"]
    s = a.summary()
    assert s == ("a.tsv: rows=5 kept=3 dropped=6 (empty_text=1, missing_clip=5); "
                 "per group: de=1, en=2")
    b = ReaderStats("b")
    b.keep("en")
    b.drop("empty_text", "b:1")
    a.update(b)
    assert a.kept == 4 and a.dropped["empty_text"] == 2 and a.per_group["en"] == 3


def test_iter_lines(tmp_path):
    p = tmp_path / "f.txt"
    p.write_bytes("\ufeffa\tb\r\n\n  \nc\n".encode("utf-8"))
    assert list(iter_lines(str(p))) == [(1, "a\tb"), (4, "c")]
    assert [n for n, _ in iter_lines(str(p), skip_blank=False)] == [1, 2, 3, 4]
    p.write_bytes(b"ok\n\xff\xfe bad\n")
    with pytest.raises(ReaderError, match=r"f.txt:2: not UTF-8"):
        list(iter_lines(str(p)))


def test_check_id_and_parse_list():
    assert check_id("spk1", "speaker", "x:1") == "spk1"
    with pytest.raises(ReaderError, match="x:1: speaker 'a b'"):
        check_id("a b", "speaker", "x:1")
    assert parse_list(None, ["en", "de"], "language") == ["en", "de"]
    assert parse_list(["de", "de"], ["en", "de"], "language") == ["de"]
    with pytest.raises(ValueError, match="unknown language.*valid: en, de"):
        parse_list(["xx"], ["en", "de"], "language")


def test_run_main(capsys):
    def bad():
        raise ReaderError("t.tsv:3: broken")

    assert run_main(bad) == 1
    assert "ERROR: t.tsv:3: broken" in capsys.readouterr().err
    assert run_main(lambda: 0) == 0


def test_write_set(tmp_path, capsys):
    from espnet_sllm.data.kaldi_dir import Utterance, read_kv
    from espnet_sllm.data.reader_utils import write_set

    stats = ReaderStats()
    stats.rows = 2
    stats.keep()
    stats.drop("empty_text", "t:2")
    with pytest.raises(ReaderError, match=r"corpus dev: no utterance kept \(rows=2 kept=1"):
        write_set(str(tmp_path / "dev"), [], stats, "corpus dev")
    assert not (tmp_path / "dev").exists()
    write_set(str(tmp_path / "dev"), [Utterance("u1", None, text="x")], stats, "corpus dev")
    assert read_kv(tmp_path / "dev" / "text") == {"u1": "x"}
    assert capsys.readouterr().out == f"{tmp_path / 'dev'}: rows=2 kept=1 dropped=1 " \
                                      f"(empty_text=1)\n"
