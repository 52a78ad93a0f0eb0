"""Tests of espnet_sllm.data.corpora.alpaca_zh on a tiny Alpaca-zh JSON file."""
import json

import pytest

from espnet_sllm.data.corpora.alpaca_zh import main, read_alpaca_zh
from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.data.corpora.reader_utils import ReaderError
from tests.data.corpora.test_reader_utils import assert_cli_error, run_reader

RECORDS = [
    {"instruction": "保持健康的三个提示。", "input": "", "output": "1. 保持身体活动。\n2. 均衡饮食。"},
    {"instruction": "把这句话翻译成英文。", "input": "我爱你", "output": "I love you.", "extra": 1},
    {"instruction": "写一首诗。", "input": "", "output": "   "},  # empty output: dropped
    {"instruction": "  ", "input": "", "output": "没有问题"},  # empty question: dropped
    {"instruction": "总结下文：\r\n", "input": "第一行\n\n第二行", "output": "两行。"},
]


def _write(path, obj):
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def test_read(tmp_path):
    path = _write(tmp_path / "alpaca_data_zh_51k.json", RECORDS)
    utts, stats = read_alpaca_zh(str(path))
    assert [(u.uttid, u.text, u.text_tgt) for u in utts] == [
        ("alpacazh-000000", "保持健康的三个提示。", "1. 保持身体活动。 2. 均衡饮食。"),
        ("alpacazh-000001", "把这句话翻译成英文。 我爱你", "I love you."),
        ("alpacazh-000004", "总结下文： 第一行 第二行", "两行。"),
    ]
    assert all(u.wav is None and u.spk is None and u.task == "sqa" and u.lang == "zh"
               for u in utts)
    assert stats.summary() == ("alpaca_data_zh_51k.json: rows=5 kept=3 dropped=2 "
                               "(empty_output=1, empty_question=1); per group: multiline=2, "
                               "one_line=1")
    assert stats.examples["empty_output"] == [f"{path}: record 2"]
    utts, _ = read_alpaca_zh(str(path), max_records=1)
    assert [u.uttid for u in utts] == ["alpacazh-000000"]


@pytest.mark.parametrize("content,msg", [
    (RECORDS[:1] + [["not", "an", "object"]], r"record 1: expected an object"),
    (RECORDS[:2] + [{"instruction": "x", "output": "y"}], r"record 2: lacks input"),
    ([{"instruction": "x", "input": None, "output": "y"}], r"record 0: input must be a string"),
    ({"instruction": "x"}, r"expected a JSON array of records, got a dict"),
])
def test_bad_records(tmp_path, content, msg):
    path = _write(tmp_path / "a.json", content)
    with pytest.raises(ReaderError, match=msg) as e:
        read_alpaca_zh(str(path))
    assert str(path) in str(e.value)


def test_not_json(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[\n{"instruction": "x",\n', encoding="utf-8")
    with pytest.raises(ReaderError, match=r"a.json:3: not valid JSON"):
        read_alpaca_zh(str(path))


def test_main(tmp_path, capsys):
    _write(tmp_path / "alpaca_data_zh_51k.json", RECORDS)
    out = tmp_path / "data" / "alpaca_zh"
    assert main(["--root", str(tmp_path), "--out", str(out)]) == 0
    assert f"{out}: alpaca_data_zh_51k.json: rows=5 kept=3" in capsys.readouterr().out
    counts = validate_data_dir(out)
    assert counts["utterances"] == 3 and not (out / "wav.scp").exists()
    assert read_kv(out / "text_tgt")["alpacazh-000000"] == "1. 保持身体活动。 2. 均衡饮食。"
    assert set(read_kv(out / "utt2task").values()) == {"sqa"}
    # The root may be the file itself; a missing root is an error.
    assert main(["--root", str(tmp_path / "alpaca_data_zh_51k.json"), "--out", str(out)]) == 0
    assert main(["--root", str(tmp_path / "none"), "--out", str(out)]) == 1
    assert "ERROR: Alpaca-zh root" in capsys.readouterr().err


# Records that are not UTF-8 (the other drop reasons: test_read), --strict, and the command
# line on a malformed file: one ERROR line naming the file, never a traceback.
def test_record_not_utf8_dropped_and_counted(tmp_path, capsys):
    path = _write(tmp_path / "alpaca_data_zh_51k.json",
                  RECORDS[:2] + [{"instruction": "@BAD@", "input": "", "output": "好"}])
    path.write_bytes(path.read_bytes().replace(b"@BAD@", b"\xe4\xb8 \xff"))
    utts, stats = read_alpaca_zh(str(path))
    assert [u.uttid for u in utts] == ["alpacazh-000000", "alpacazh-000001"]
    assert stats.dropped == {"not_utf8": 1}
    assert stats.examples["not_utf8"] == [
        f"{path}: record 2: bytes that are not UTF-8 in instruction"]
    out = tmp_path / "data"
    assert main(["--root", str(path), "--out", str(out)]) == 0
    assert "rows=3 kept=2 dropped=1 (not_utf8=1)" in capsys.readouterr().out
    assert list(read_kv(out / "text")) == ["alpacazh-000000", "alpacazh-000001"]
    with pytest.raises(ReaderError, match=r"record 2: not_utf8: bytes that are not UTF-8"):
        read_alpaca_zh(str(path), strict=True)


def test_strict_turns_a_drop_into_an_error(tmp_path, capsys):
    path = _write(tmp_path / "alpaca_data_zh_51k.json", RECORDS)
    out = tmp_path / "data"
    assert main(["--root", str(path), "--out", str(out), "--strict", "true"]) == 1
    assert f"ERROR: {path}: record 2: empty_output" in capsys.readouterr().err
    assert not out.exists()


def test_cli_malformed_file(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[\n{"instruction": "x",\n', encoding="utf-8")
    proc = run_reader("alpaca_zh", "--root", path, "--out", tmp_path / "data")
    assert_cli_error(proc, f"{path}:3: not valid JSON")
    _write(path, [{"instruction": "x", "output": "y"}])
    proc = run_reader("alpaca_zh", "--root", path, "--out", tmp_path / "data")
    assert_cli_error(proc, f"{path}: record 0: lacks input")
