"""Tests of espnet_sllm.data.kaldi_dir: key-value files, data-dir writing and validation."""
import os

import pytest

from espnet_sllm.data.kaldi_dir import (
    Segment,
    Utterance,
    combine_data_dirs,
    main,
    read_data_dir,
    read_kv,
    validate_data_dir,
    write_data_dir,
    write_kv,
)


def _write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def test_read_kv_values_with_spaces_and_empty(tmp_path):
    p = tmp_path / "text"
    _write(p, "a hello  world \nb\nc\tx y\nd \n")
    assert read_kv(p) == {"a": "hello  world ", "b": "", "c": "x y", "d": ""}


@pytest.mark.parametrize("bad", ["a 1\n\nb 2\n", "a 1\n b 2\n"])
def test_read_kv_line_without_key(tmp_path, bad):
    p = tmp_path / "f"
    _write(p, bad)
    with pytest.raises(ValueError, match=r"f:2: no key"):
        read_kv(p)


def test_read_kv_duplicate_key(tmp_path):
    p = tmp_path / "f"
    _write(p, "a 1\nb 2\na 3\n")
    with pytest.raises(ValueError, match=r"f:3: duplicate key 'a' \(first seen on line 1\)"):
        read_kv(p)


def test_write_kv_sorted_c_locale(tmp_path):
    p = tmp_path / "f"
    # C order: upper case before lower case, '-' before digits, bytes of UTF-8 last.
    write_kv(p, {"b": "2", "B": "1", "a-1": "x", "a1": "", "é": "z"})
    assert p.read_text(encoding="utf-8") == "B 1\na-1 x\na1\nb 2\né z\n"
    assert list(read_kv(p)) == ["B", "a-1", "a1", "b", "é"]


def test_write_kv_keeps_unchanged_file(tmp_path):
    # Recipe stamps compare size + mtime: identical content must not look like a new input.
    p = tmp_path / "f"
    write_kv(p, {"a": "1", "b": "é"})
    os.utime(p, ns=(1_000_000_000, 1_000_000_000))
    write_kv(p, {"b": "é", "a": "1"})
    assert os.stat(p).st_mtime_ns == 1_000_000_000
    write_kv(p, {"a": "1", "b": "ü"})  # same size, other bytes: rewritten
    assert p.read_text(encoding="utf-8") == "a 1\nb ü\n"
    assert os.stat(p).st_mtime_ns != 1_000_000_000 and not (tmp_path / "f.tmp").exists()


@pytest.mark.parametrize("items", [{"a b": "x"}, {"": "x"}, {"a": "x\ny"}])
def test_write_kv_rejects_bad_entries(tmp_path, items):
    with pytest.raises(ValueError):
        write_kv(tmp_path / "f", items)


def _utts():
    return [
        Utterance("s2-b", "/w/r1.wav", spk="s2", text="two words", lang="Japanese",
                  segment=Segment("r1", 1.5, 2.25), text_prev="one", text_next=""),
        Utterance("s1-a", "/w/r1.wav", spk="s1", text="one", lang="Japanese",
                  segment=Segment("r1", 0.0, 1.5), text_prev="", text_next="two words"),
        {"uttid": "s1-c", "wav": "/w/r2.wav", "spk": "s1", "text": "", "lang": "Japanese",
         "segment": ("r2", 0.125, 3.0), "text_prev": "", "text_next": ""},
    ]


def test_write_validate_read_round_trip(tmp_path):
    d = tmp_path / "dev"
    write_data_dir(d, _utts())
    files = sorted(os.listdir(d))
    assert files == ["segments", "spk2utt", "text", "text_next", "text_prev", "utt2lang",
                     "utt2spk", "wav.scp"]
    assert (d / "wav.scp").read_text() == "r1 /w/r1.wav\nr2 /w/r2.wav\n"
    assert (d / "segments").read_text() == (
        "s1-a r1 0.00 1.50\ns1-c r2 0.125 3.00\ns2-b r1 1.50 2.25\n"
    )
    assert (d / "spk2utt").read_text() == "s1 s1-a s1-c\ns2 s2-b\n"
    assert (d / "text").read_text() == "s1-a one\ns1-c\ns2-b two words\n"
    assert validate_data_dir(d) == {"utterances": 3, "speakers": 2, "recordings": 2}
    back = {u.uttid: u for u in read_data_dir(d)}
    assert back["s2-b"].segment == Segment("r1", 1.5, 2.25)
    assert back["s2-b"].text_prev == "one" and back["s1-a"].text_next == "two words"
    assert back["s1-c"].text == "" and back["s1-c"].wav == "/w/r2.wav"
    assert back["s1-a"].task is None
    # Re-writing without optional fields removes the stale files of the first run.
    write_data_dir(d, [Utterance("u1", "/w/u1.wav")])
    assert sorted(os.listdir(d)) == ["spk2utt", "utt2spk", "wav.scp"]
    assert read_kv(d / "utt2spk") == {"u1": "u1"}


def test_write_rejects_partial_fields_and_conflicts(tmp_path):
    utts = _utts()
    utts[0].text = None
    with pytest.raises(ValueError, match=r"field 'text' \(text\) is set for 2 of 3"):
        write_data_dir(tmp_path / "a", utts)
    with pytest.raises(ValueError, match="segments for all or none"):
        write_data_dir(tmp_path / "b", [Utterance("a", "/x.wav", segment=Segment("r", 0, 1)),
                                        Utterance("b", "/y.wav")])
    with pytest.raises(ValueError, match="two wav files"):
        write_data_dir(tmp_path / "c", [Utterance("a", "/x.wav", segment=Segment("r", 0, 1)),
                                        Utterance("b", "/y.wav", segment=Segment("r", 1, 2))])
    with pytest.raises(ValueError, match="duplicate utterance id"):
        write_data_dir(tmp_path / "d", [Utterance("a", "/x.wav"), Utterance("a", "/y.wav")])
    with pytest.raises(ValueError, match="prefix every utterance id with its speaker id"):
        write_data_dir(tmp_path / "e", [Utterance("a", "/x.wav", spk="z"),
                                        Utterance("b", "/y.wav", spk="y")])


def test_validate_reports_problems(tmp_path):
    d = tmp_path / "dev"
    write_data_dir(d, _utts())
    _write(d / "text", "s2-b two words\ns1-a one\ns1-c\n")
    with pytest.raises(ValueError, match=r"text:2: not sorted"):
        validate_data_dir(d)
    _write(d / "text", "s1-a one\ns2-b two\n")
    with pytest.raises(ValueError, match=r"text: key set differs.*missing \(e.g. 's1-c'\)"):
        validate_data_dir(d)
    _write(d / "text", "s1-a one\ns1-c\ns2-b two\n")
    _write(d / "spk2utt", "s1 s1-a\ns2 s2-b\n")
    with pytest.raises(ValueError, match=r"spk2utt: speaker 's1' lists"):
        validate_data_dir(d)
    _write(d / "spk2utt", "s1 s1-a s1-c\ns2 s2-b\n")
    _write(d / "segments", "s1-a r1 0.00 1.50\ns1-c r9 0.1 3.0\ns2-b r1 1.50 2.25\n")
    with pytest.raises(ValueError, match=r"segments: s1-c: recording 'r9' not in wav.scp"):
        validate_data_dir(d)
    _write(d / "segments", "s1-a r1 0.00 1.50\ns1-c r2 3.0 3.0\ns2-b r1 1.50 2.25\n")
    with pytest.raises(ValueError, match=r"s1-c: need 0 <= start < end"):
        validate_data_dir(d)
    os.remove(d / "utt2spk")
    with pytest.raises(ValueError, match="missing utt2spk"):
        validate_data_dir(d)


def test_cli_validate(tmp_path, capsys):
    d = tmp_path / "dev"
    write_data_dir(d, _utts())
    assert main(["validate", str(d)]) == 0
    assert "OK (3 utterances, 2 speakers, 2 recordings)" in capsys.readouterr().out
    os.remove(d / "spk2utt")
    assert main(["validate", str(d)]) == 1
    assert "missing spk2utt" in capsys.readouterr().err


def test_text_only_directory_round_trip(tmp_path):
    """WMT19 / Alpaca-zh before TTS: no wav.scp, but text, text_tgt, utt2task."""
    d = tmp_path / "wmt"
    utts = [
        Utterance("wmt-000002", None, text="你好", text_tgt="hello", task="st", lang="zh"),
        Utterance("wmt-000001", None, text="世界", text_tgt="world", task="st", lang="zh"),
    ]
    write_data_dir(d, utts)
    assert not (d / "wav.scp").exists()
    assert (d / "text_tgt").read_text(encoding="utf-8") == "wmt-000001 world\nwmt-000002 hello\n"
    assert validate_data_dir(d) == {"utterances": 2, "speakers": 2, "recordings": 0}
    back = read_data_dir(d)
    assert [u.wav for u in back] == [None, None]
    assert back[1].text == "你好" and back[1].task == "st"


def test_text_only_rules(tmp_path):
    with pytest.raises(ValueError, match="text-only"):
        write_data_dir(tmp_path / "a", [Utterance("u1", None, text="x"),
                                        Utterance("u2", "/a.wav", text="y")])
    with pytest.raises(ValueError, match="needs a text"):
        write_data_dir(tmp_path / "b", [Utterance("u1", None, lang="zh")])
    # A directory that lost its wav.scp is not taken for a text-only one when it has segments
    # or no text.
    write_data_dir(tmp_path / "c", [Utterance("u1", "/a.wav", lang="zh")])
    (tmp_path / "c" / "wav.scp").unlink()
    with pytest.raises(ValueError, match="missing wav.scp"):
        validate_data_dir(tmp_path / "c")
    # Text-only and audio sets do not combine.
    write_data_dir(tmp_path / "t", [Utterance("t1", None, text="x")])
    write_data_dir(tmp_path / "w", [Utterance("w1", "/a.wav", text="y")])
    with pytest.raises(ValueError, match="text-only"):
        combine_data_dirs(tmp_path / "tw", [tmp_path / "t", tmp_path / "w"])
    # Re-writing a directory as text-only removes its stale wav.scp.
    write_data_dir(tmp_path / "w", [Utterance("w1", None, text="y")])
    assert not (tmp_path / "w" / "wav.scp").exists()


def test_subdialect_file(tmp_path):
    d = tmp_path / "ke"
    write_data_dir(d, [Utterance("s1-u1", "/a.wav", spk="s1", text="好", lang="zh",
                                 subdialect="Southwestern")])
    assert (d / "utt2subdialect").read_text(encoding="utf-8") == "s1-u1 Southwestern\n"
    assert read_data_dir(d)[0].subdialect == "Southwestern"


def test_text_only_utterances_beside_audio(tmp_path):
    """An empty wav.scp entry is a text-only utterance (preprocessor_conf.text_only_tasks)."""
    d = tmp_path / "mix"
    write_data_dir(d, [Utterance("s1-a", "/a.wav", spk="s1", text="hi", task="asr"),
                       Utterance("s1-q", "", spk="s1", text="answer", task="qa")])
    assert (d / "wav.scp").read_text() == "s1-a /a.wav\ns1-q\n"
    assert validate_data_dir(d) == {"utterances": 2, "speakers": 1, "recordings": 2}
    assert [(u.wav, u.task) for u in read_data_dir(d)] == [("/a.wav", "asr"), ("", "qa")]
    # A segment of an empty entry: an error naming segments:line
    _write(d / "segments", "s1-a s1-a 0.0 1.0\ns1-q s1-q 0.0 1.0\n")
    with pytest.raises(ValueError, match=r"segments:2: s1-q: recording 's1-q' has an empty "
                                         r"wav.scp entry \(a text-only utterance\)"):
        validate_data_dir(d)
    with pytest.raises(ValueError, match=r"'s1-q': a segment of recording 'r' whose wav is "
                                         r"empty"):
        write_data_dir(tmp_path / "seg", [
            Utterance("s1-a", "/a.wav", spk="s1", segment=Segment("a", 0.0, 1.0)),
            Utterance("s1-q", "", spk="s1", segment=Segment("r", 0.0, 1.0))])
