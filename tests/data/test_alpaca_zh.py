"""Tests of espnet_sllm.data.alpaca_zh on a tiny Alpaca-zh JSON file."""
import json

import pytest

from espnet_sllm.data.alpaca_zh import main, read_alpaca_zh
from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.data.reader_utils import ReaderError

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
