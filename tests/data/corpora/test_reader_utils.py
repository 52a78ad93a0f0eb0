"""Tests of espnet_sllm.data.corpora.reader_utils (shared by every corpus reader), and the helpers the
reader tests use to run a reader's command line as local/data.sh does."""
import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

from espnet_sllm.data.corpora.reader_utils import (
    NOT_UTF8,
    NotUtf8Line,
    ReaderError,
    ReaderStats,
    add_strict_option,
    check_id,
    has_undecodable,
    iter_lines,
    parse_list,
    run_main,
)

REPO = Path(__file__).resolve().parents[2]


def run_reader(module: str, *args) -> subprocess.CompletedProcess:
    """``python -m espnet_sllm.data.corpora.<module> ARGS`` in a subprocess (stdout, stderr as text)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", f"espnet_sllm.data.corpora.{module}",
                           *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=str(REPO), timeout=120)


def assert_cli_error(proc: subprocess.CompletedProcess, message: str) -> None:
    """The reader ended with status 1 and one ``ERROR: <message>...`` line, no traceback."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [x for x in proc.stderr.splitlines() if x.startswith("ERROR: ")]
    assert len(errors) == 1 and errors[0].startswith(f"ERROR: {message}"), proc.stderr


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


def test_iter_lines_drops_lines_not_utf8(tmp_path):
    p = tmp_path / "f.txt"
    p.write_bytes(b"head\n\xff\xfe bad\nok\nbad \xe4\xb8\n")
    stats = ReaderStats("f")
    assert list(iter_lines(str(p), stats=stats)) == [(1, "head"), (3, "ok")]
    assert stats.rows == 2 and stats.dropped == {NOT_UTF8: 2}
    assert stats.examples[NOT_UTF8][0] == f"{p}:2: not UTF-8 (invalid start byte at byte 0)"
    # Strict: the first such line is an error naming it and the reason.
    with pytest.raises(ReaderError, match=r"f.txt:2: not_utf8: not UTF-8 .*--strict true"):
        list(iter_lines(str(p), stats=ReaderStats("f", strict=True)))
    # keep_undecodable: yielded, marked, for callers that keep files aligned line by line.
    lines = list(iter_lines(str(p), keep_undecodable=True))
    assert [n for n, _ in lines] == [1, 2, 3, 4]
    assert isinstance(lines[1][1], NotUtf8Line) and lines[1][1] == "\ufffd\ufffd bad"
    assert "invalid start byte" in lines[1][1].reason and not isinstance(lines[2][1], NotUtf8Line)
    # A header row that is not UTF-8 is always an error.
    p.write_bytes(b"\n\xffhead\nok\n")
    with pytest.raises(ReaderError, match=r"f.txt:2: not UTF-8"):
        list(iter_lines(str(p), stats=ReaderStats(), header=True))


def test_strict_drop_and_skip():
    stats = ReaderStats("t.tsv", strict=True)
    stats.skip("not_in_subset", "t.tsv:2")  # by choice: never an error
    assert stats.dropped == {"not_in_subset": 1}
    with pytest.raises(ReaderError, match=r"^t.tsv:3: missing_audio: a.wav \(--strict true"):
        stats.drop("missing_audio", "t.tsv:3", "a.wav")
    with pytest.raises(ReaderError, match=r"^t.tsv: empty_text"):
        stats.drop("empty_text")
    assert has_undecodable(b"a\xff".decode("utf-8", "surrogateescape"))
    assert not has_undecodable("ok ü 中")


def test_check_id_and_parse_list():
    assert check_id("spk1", "speaker", "x:1") == "spk1"
    with pytest.raises(ReaderError, match="x:1: speaker 'a b'"):
        check_id("a b", "speaker", "x:1")
    assert parse_list(None, ["en", "de"], "language") == ["en", "de"]
    assert parse_list(["de", "de"], ["en", "de"], "language") == ["de"]
    with pytest.raises(ValueError, match="unknown language.*valid: en, de"):
        parse_list(["xx"], ["en", "de"], "language")


def test_run_main(capsys, tmp_path):
    def bad():
        raise ReaderError("t.tsv:3: broken")

    assert run_main(bad) == 1
    assert "ERROR: t.tsv:3: broken" in capsys.readouterr().err
    assert run_main(lambda: 0) == 0

    # Every kind of input error is one ERROR line and status 1, never a traceback.
    (tmp_path / "d").mkdir()
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    bodies = {
        "missing": lambda: open(tmp_path / "none.txt"),
        "directory": lambda: open(tmp_path / "d"),
        "permission": lambda: (_ for _ in ()).throw(PermissionError(13, "Permission denied",
                                                                    "/x/y.txt")),
        "decode": lambda: b"\xff".decode("utf-8"),
        "audio": lambda: soundfile.info(str(tmp_path / "bad.wav")),
    }
    for name, body in bodies.items():
        assert run_main(body) == 1, name
        err = capsys.readouterr().err
        assert err.startswith("ERROR: ") and err.count("\n") == 1, (name, err)
    assert run_main(bodies["directory"]) == 1
    assert str(tmp_path / "d") in capsys.readouterr().err


def test_strict_option():
    parser = argparse.ArgumentParser()
    add_strict_option(parser)
    assert parser.parse_args([]).strict is False
    assert parser.parse_args(["--strict", "true"]).strict is True
    assert parser.parse_args(["--strict", "False"]).strict is False
    with pytest.raises(SystemExit):
        parser.parse_args(["--strict", "maybe"])


def test_write_set(tmp_path, capsys):
    from espnet_sllm.data.kaldi_dir import Utterance, read_kv
    from espnet_sllm.data.corpora.reader_utils import write_set

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
