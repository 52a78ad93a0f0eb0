"""Tests of espnet_sllm.data.corpora.wmt19 on tiny news-commentary / newstest2019 files."""
import pytest

from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.data.corpora.reader_utils import ReaderError
from tests.data.corpora.test_reader_utils import assert_cli_error, run_reader
from espnet_sllm.data.corpora.wmt19 import main, read_news_commentary, read_newstest

NC = [
    "The world is changing.\t世界正在改变。",
    "",  # document break: blank line
    "\t",  # document break: lone TAB
    "Only English.\t",
    "\t只有中文。",
    "  Padded  \t  两边有空格  ",
    "Line\u2028separator.\t行\u2028分隔。",
]
SRC = """<srcset setid="newstest2019" srclang="any">
<doc sysid="ref" docid="chinanews.com.3939" genre="news" origlang="zh">
<p>
<seg id="1">北京 &amp; 上海</seg>
<seg id="2">“你好” &lt;世界&gt;</seg>
<seg id="10">第十句。</seg>
</p>
</doc>
<doc sysid="ref" docid="people daily 7" genre="news" origlang="zh">
<seg id="1">空的参考。</seg>
<seg id="2"></seg>
</doc>
</srcset>
"""
REF = """<refset setid="newstest2019" srclang="any" trglang="en">
<doc sysid="ref" docid="chinanews.com.3939" genre="news" origlang="zh">
<p>
<seg id="1">Beijing &amp; Shanghai</seg>
<seg id="2">&quot;Hello&quot; &lt;world&gt; it&#39;s</seg>
<seg id="10">Tenth sentence.</seg>
</p>
</doc>
<doc sysid="ref" docid="people daily 7" genre="news" origlang="zh">
<seg id="1"> </seg>
<seg id="2">Empty source.</seg>
</doc>
</refset>
"""


def make_root(root, nc=NC, src=SRC, ref=REF):
    (root / "sgm").mkdir(parents=True)
    (root / "news-commentary-v14.en-zh.tsv").write_text("\n".join(nc) + "\n", encoding="utf-8")
    (root / "sgm" / "newstest2019-zhen-src.zh.sgm").write_text(src, encoding="utf-8")
    (root / "sgm" / "newstest2019-zhen-ref.en.sgm").write_text(ref, encoding="utf-8")
    return root


def test_news_commentary(tmp_path):
    root = make_root(tmp_path)
    tsv = str(root / "news-commentary-v14.en-zh.tsv")
    utts, stats = read_news_commentary(tsv)
    assert [(u.uttid, u.text, u.text_tgt) for u in utts] == [
        ("wmt19nc-00000001", "世界正在改变。", "The world is changing."),
        ("wmt19nc-00000006", "两边有空格", "Padded"),
        ("wmt19nc-00000007", "行 分隔。", "Line separator."),
    ]
    assert all(u.wav is None and u.spk is None and u.task == "st" and u.lang == "zh"
               for u in utts)
    assert stats.summary() == ("news-commentary-v14.en-zh.tsv: rows=7 kept=3 dropped=4 "
                               "(empty_both=2, empty_source=1, empty_target=1)")
    assert stats.examples["empty_source"] == [f"{tsv}:4"]
    assert stats.examples["empty_target"] == [f"{tsv}:5"]
    # max_pairs: the first N kept pairs.
    utts, stats = read_news_commentary(tsv, max_pairs=2)
    assert [u.uttid for u in utts] == ["wmt19nc-00000001", "wmt19nc-00000006"]


def test_news_commentary_bad_columns(tmp_path):
    root = make_root(tmp_path, nc=NC[:1] + ["a\tb\tc"])
    with pytest.raises(ReaderError, match=r"en-zh.tsv:2: 3 TAB-separated fields, expected 2"):
        read_news_commentary(str(root / "news-commentary-v14.en-zh.tsv"))
    (root / "news-commentary-v14.en-zh.tsv").write_text("no tab here\n", encoding="utf-8")
    with pytest.raises(ReaderError, match=r"en-zh.tsv:1: 1 TAB-separated fields"):
        read_news_commentary(str(root / "news-commentary-v14.en-zh.tsv"))


def test_newstest(tmp_path):
    root = make_root(tmp_path)
    src = str(root / "sgm" / "newstest2019-zhen-src.zh.sgm")
    utts, stats = read_newstest(src, str(root / "sgm" / "newstest2019-zhen-ref.en.sgm"))
    assert [(u.uttid, u.text, u.text_tgt) for u in utts] == [
        ("wmt19nt-chinanews.com.3939-0001", "北京 & 上海", "Beijing & Shanghai"),
        ("wmt19nt-chinanews.com.3939-0002", "“你好” <世界>", "\"Hello\" <world> it's"),
        ("wmt19nt-chinanews.com.3939-0010", "第十句。", "Tenth sentence."),
    ]
    assert stats.summary() == ("newstest2019-zhen-src.zh.sgm: rows=5 kept=3 dropped=2 "
                               "(empty_source=1, empty_target=1)")
    assert stats.examples["empty_target"] == [f"{src}:10"]


@pytest.mark.parametrize("src,ref,msg", [
    (SRC.replace('<seg id="10">第十句。</seg>\n', ""), REF,
     r"1 segments only in .*ref.en.sgm \(e.g. doc 'chinanews.com.3939' seg 10, line 6\)"),
    (SRC, REF.replace('docid="people daily 7"', 'docid="people daily 8"'),
     r"2 segments only in .*src.zh.sgm .*2 segments only in .*ref.en.sgm"),
    (SRC.replace('<seg id="2">“', '<seg id="1">“'), REF,
     r"src.zh.sgm:5: doc 'chinanews.com.3939' seg 1 already on line 4"),
    (SRC.replace('<seg id="10">', '<seg id="x">'), REF, r"src.zh.sgm:6: seg id 'x' is not"),
    ('<seg id="1">x</seg>\n', REF, r"src.zh.sgm:1: <seg> outside a <doc"),
])
def test_newstest_errors(tmp_path, src, ref, msg):
    root = make_root(tmp_path, src=src, ref=ref)
    with pytest.raises(ReaderError, match=msg):
        read_newstest(str(root / "sgm" / "newstest2019-zhen-src.zh.sgm"),
                      str(root / "sgm" / "newstest2019-zhen-ref.en.sgm"))


def test_main(tmp_path, capsys):
    root = make_root(tmp_path / "wmt19")
    data = tmp_path / "data"
    assert main(["--root", str(root), "--data_dir", str(data), "--max_pairs", "2"]) == 0
    out = capsys.readouterr().out
    assert f"{data}/wmt19_train: news-commentary-v14.en-zh.tsv: rows=6 kept=2" in out
    for name, n in (("wmt19_train", 2), ("wmt19_test", 3)):
        d = data / name
        counts = validate_data_dir(d)
        assert counts["utterances"] == n and counts["recordings"] == 0
        assert not (d / "wav.scp").exists()
        assert set(read_kv(d / "utt2task").values()) == {"st"}
        assert set(read_kv(d / "utt2lang").values()) == {"zh"}
    assert read_kv(data / "wmt19_test" / "text_tgt")["wmt19nt-chinanews.com.3939-0001"] == \
        "Beijing & Shanghai"
    assert read_kv(data / "wmt19_train" / "utt2spk") == {
        "wmt19nc-00000001": "wmt19nc-00000001", "wmt19nc-00000006": "wmt19nc-00000006"}
    # Missing file / root, bad set name.
    (root / "sgm" / "newstest2019-zhen-ref.en.sgm").unlink()
    assert main(["--root", str(root), "--data_dir", str(data)]) == 1
    assert "newstest2019-zhen-ref.en.sgm: not found (WMT19 test set)" in capsys.readouterr().err
    assert main(["--root", str(root), "--data_dir", str(data), "--sets", "train"]) == 0
    assert main(["--root", str(root), "--data_dir", str(data), "--sets", "dev"]) == 1
    assert "unknown WMT19 set ['dev']; valid: train, test" in capsys.readouterr().err


# Lines that are not UTF-8 (the other drop reasons: the tests above), --strict (document breaks
# excepted), and the command line on a malformed file: one ERROR line naming file:line.
def test_lines_not_utf8_dropped_and_counted(tmp_path, capsys):
    root = make_root(tmp_path / "wmt19")
    tsv = root / "news-commentary-v14.en-zh.tsv"
    with open(tsv, "ab") as f:
        f.write(b"Broken.\t\xe4\xb8\n")
    utts, stats = read_news_commentary(str(tsv))
    assert [u.uttid for u in utts] == ["wmt19nc-00000001", "wmt19nc-00000006",
                                       "wmt19nc-00000007"]
    assert stats.dropped["not_utf8"] == 1 and stats.rows == 8
    assert stats.examples["not_utf8"][0].startswith(f"{tsv}:8: not UTF-8")
    ref = root / "sgm" / "newstest2019-zhen-ref.en.sgm"
    ref.write_bytes(ref.read_bytes().replace(b"Tenth sentence.", b"Tenth \xff."))
    utts, stats = read_newstest(str(root / "sgm" / "newstest2019-zhen-src.zh.sgm"), str(ref))
    assert [u.uttid for u in utts] == ["wmt19nt-chinanews.com.3939-0001",
                                       "wmt19nt-chinanews.com.3939-0002"]
    assert stats.examples["not_utf8"] == [f"{ref}:6: doc 'chinanews.com.3939' seg 10"]
    data = tmp_path / "data"
    assert main(["--root", str(root), "--data_dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "news-commentary-v14.en-zh.tsv: rows=8 kept=3 dropped=5 (empty_both=2, " \
           "empty_source=1, empty_target=1, not_utf8=1)" in out
    assert "newstest2019-zhen-src.zh.sgm: rows=5 kept=2 dropped=3 (empty_source=1, " \
           "empty_target=1, not_utf8=1)" in out
    assert len(read_kv(data / "wmt19_test" / "text")) == 2


def test_strict_turns_a_drop_into_an_error(tmp_path, capsys):
    # Document breaks (empty_both) are left out by choice: not an error, even with strict.
    root = make_root(tmp_path / "a", nc=NC[:3] + NC[5:])
    data = tmp_path / "data"
    assert main(["--root", str(root), "--data_dir", str(data), "--sets", "train",
                 "--strict", "true"]) == 0
    assert len(read_kv(data / "wmt19_train" / "text")) == 3
    root = make_root(tmp_path / "b")
    assert main(["--root", str(root), "--data_dir", str(tmp_path / "d2"), "--strict",
                 "true"]) == 1
    assert f"ERROR: {root / 'news-commentary-v14.en-zh.tsv'}:4: empty_source" in \
        capsys.readouterr().err
    assert not (tmp_path / "d2").exists()
    with pytest.raises(ReaderError, match=r"src.zh.sgm:10: empty_target"):
        read_newstest(str(root / "sgm" / "newstest2019-zhen-src.zh.sgm"),
                      str(root / "sgm" / "newstest2019-zhen-ref.en.sgm"), strict=True)


def test_cli_malformed_file(tmp_path):
    root = make_root(tmp_path / "wmt19", nc=NC[:1] + ["a\tb\tc"])
    proc = run_reader("wmt19", "--root", root, "--data_dir", tmp_path / "data")
    assert_cli_error(proc, f"{root / 'news-commentary-v14.en-zh.tsv'}:2: 3 TAB-separated "
                           f"fields, expected 2")
