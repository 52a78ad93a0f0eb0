"""Tests of espnet_sllm.scoring: normalisers, units, counts (Python == sclite), the CLI."""

import json
import logging
import random
from pathlib import Path

import pytest

from espnet_sllm.bin.sllm_score import main as score_main
from espnet_sllm.scoring.error_rate import (
    ErrorCounts,
    align_counts,
    jiwer_counts,
    score_pairs,
    utterance_counts,
)
from espnet_sllm.scoring.normalize import (
    NORMALIZERS,
    get_normalizer,
    normalize,
    to_units,
    unit_for_language,
)
from espnet_sllm.scoring.report import collect_results, read_kaldi_file, score_set
from espnet_sllm.scoring.sclite import (
    ScliteError,
    ScliteNotFoundError,
    find_sclite,
    make_trn_id,
    parse_result,
    run_sclite,
    sclite_available,
    write_trn,
)

needs_sclite = pytest.mark.skipif(
    not sclite_available(), reason="sclite (Debian package sctk) is not installed"
)


# --------------------------------------------------------------------------- normalisation
@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hello, World!", "hello world"),
        ("It's a WELL-KNOWN fact.", "it's a well-known fact"),
        ('"quoted" (paren) [sq] {curly} <angle>', "quoted paren sq curly angle"),
        ("a#b$c%d&e*f+g/h:i;j=k?l@m\\n^o_p`q|r~s", "abcdefghijklmnopqrs"),
        ("今日は、いい天気。本当？すごい！", "今日はいい天気本当すごい"),
        ("ア・イ，ウ", "アイウ"),
        ("¿Qué tal? ¡Hola!", "qué tal hola"),
        ("  many   spaces\there\u3000too ", "many spaces here too"),
        ("ÉCOLE Straße", "école straße"),
        ("", ""),
    ],
)
def test_mlc_slm_normalizer(text, expected):
    assert normalize(text, "mlc_slm") == expected


def test_other_normalizers():
    assert normalize("Hello,  World!", "none") == "Hello, World!"
    assert normalize("Hello,  World!", "lower") == "hello, world!"
    assert normalize("《你好》，“世界”！Don't re-do.", "lower_nopunct") == "你好世界don't re-do"


def test_unknown_normalizer_lists_valid_names():
    with pytest.raises(ValueError) as e:
        get_normalizer("nope")
    for name in NORMALIZERS:
        assert name in str(e.value)


# --------------------------------------------------------------------------------- units
@pytest.mark.parametrize(
    "lang", ["Japanese", "ja", "jpn", "Korean", "ko", "Thai", "th", "zh", "zh-CN", "cmn", "yue",
             "Chinese", "Cantonese", "ja_JP"],
)
def test_char_languages(lang):
    assert unit_for_language(lang) == "char"


@pytest.mark.parametrize(
    "lang", ["English-American", "English-Indian", "en", "French", "German", "Vietnamese",
             "Portuguese", "Russian", "Spanish", "Italian", "all", "unknown"],
)
def test_word_languages(lang):
    assert unit_for_language(lang) == "word"


def test_to_units():
    assert to_units("今日 は", "char") == ["今", "日", "は"]
    assert to_units("안녕 하세요", "char") == ["안", "녕", "하", "세", "요"]
    assert to_units("สวัสดี ครับ", "char") == list("สวัสดีครับ")
    assert to_units("你好世界", "char") == ["你", "好", "世", "界"]
    assert to_units("hello  big world", "word") == ["hello", "big", "world"]
    assert to_units("", "word") == [] and to_units(" ", "char") == []
    with pytest.raises(ValueError, match="Valid units"):
        to_units("a", "phone")


# -------------------------------------------------------------------------------- counts
# (ref, hyp, (corr, sub, del, ins)) computed by hand.
HAND_CASES = [
    ("a b c", "a b c", (3, 0, 0, 0)),
    ("a b c", "a x c", (2, 1, 0, 0)),  # one substitution
    ("a b c", "a b x c", (3, 0, 0, 1)),  # one insertion
    ("a b c", "a c", (2, 0, 1, 0)),  # one deletion
    ("a b c", "", (0, 0, 3, 0)),  # empty hypothesis
    ("", "a b", (0, 0, 0, 2)),  # empty reference
    ("", "", (0, 0, 0, 0)),
    ("a b", "b a", (1, 0, 1, 1)),  # sclite: del + ins (cost 6) beats two subs (cost 8)
    ("a b", "b c", (1, 0, 1, 1)),  # same; jiwer's unit costs say two substitutions
    ("a b c", "d e a", (0, 3, 0, 0)),  # tie at cost 12: the diagonal wins
]


@pytest.mark.parametrize("ref, hyp, expected", HAND_CASES)
def test_hand_computed_counts(ref, hyp, expected):
    assert align_counts(ref.split(), hyp.split()) == expected


def test_error_counts_sum_and_percentages():
    total = score_pairs([("a b c".split(), "a x c".split()), ("a b".split(), [])])
    assert total.as_tuple() == (2, 5, 2, 1, 2, 0, 3, 2)
    pct = total.percentages()
    assert pct["err"] == pytest.approx(60.0) and pct["serr"] == pytest.approx(100.0)
    # An empty reference set has no error rate unless there are insertions.
    assert ErrorCounts.from_utterance(0, 0, 0, 0).error_rate == 0.0
    assert utterance_counts([], ["x"]).error_rate is None


def test_jiwer_disagrees_with_sclite_weights():
    """Why error_rate.py has its own aligner: jiwer's unit costs pick two substitutions."""
    pytest.importorskip("jiwer")
    assert jiwer_counts(["a", "b"], ["b", "c"]) == (0, 2, 0, 0)
    assert align_counts(["a", "b"], ["b", "c"]) == (1, 0, 1, 1)


def _random_set(seed: int, n: int):
    """Multilingual (ref, hyp, lang) triples with substitutions, insertions, deletions, empties."""
    rng = random.Random(seed)
    vocab = {
        "en": ["the", "cat", "sat", "on", "mat", "don't", "well-known"],
        "ja": list("今日はいい天気ですね"),
        "th": list("สวัสดีครับ"),
        "zh": list("你好世界中文"),
        "ko": list("안녕하세요"),
    }
    out = []
    for k in range(n):
        lang = rng.choice(sorted(vocab))
        v = vocab[lang][: rng.randint(1, len(vocab[lang]))]
        ref = [rng.choice(v) for _ in range(rng.choice([0, 1, 3, 6, 10]))]
        hyp = list(ref)
        for _ in range(rng.randint(0, 4)):
            op = rng.choice("sdi")
            pos = rng.randint(0, len(hyp))
            if op == "i":
                hyp.insert(pos, rng.choice(v))
            elif hyp and pos < len(hyp):
                if op == "s":
                    hyp[pos] = rng.choice(v)
                else:
                    del hyp[pos]
        if k % 17 == 0:
            hyp = []  # failed decode
        out.append((f"utt{k:04d}", lang, ref, hyp))
    return out


@needs_sclite
def test_python_counts_equal_sclite(tmp_path):
    """Per utterance and summed, on CJK/Thai/English with empty refs and hyps."""
    data = _random_set(0, 600)
    ids = [make_trn_id(u, lang) for u, lang, _, _ in data]
    write_trn(tmp_path / "ref.trn", zip(ids, (r for _, _, r, _ in data)))
    write_trn(tmp_path / "hyp.trn", zip(ids, (h for _, _, _, h in data)))
    total, per_utt = parse_result(run_sclite(tmp_path))
    assert len(per_utt) == len(data)
    for trn_id, (_, _, ref, hyp) in zip(ids, data):
        assert per_utt[trn_id].as_tuple() == utterance_counts(ref, hyp).as_tuple(), trn_id
    assert total.as_tuple() == score_pairs((r, h) for _, _, r, h in data).as_tuple()
    assert total.ins > 0 and total.dele > 0 and total.sub > 0


@needs_sclite
@pytest.mark.parametrize("ref, hyp, expected", HAND_CASES)
def test_sclite_hand_computed(tmp_path, ref, hyp, expected):
    write_trn(tmp_path / "ref.trn", [("spk-u1", ref.split())])
    write_trn(tmp_path / "hyp.trn", [("spk-u1", hyp.split())])
    total, per_utt = parse_result(run_sclite(tmp_path))
    assert per_utt["spk-u1"].as_tuple() == ErrorCounts.from_utterance(*expected).as_tuple()


def test_trn_format_and_ids(tmp_path):
    write_trn(tmp_path / "x.trn", [(make_trn_id("u1", "English-American"), ["a", "b"]),
                                   (make_trn_id("u2", "ja"), [])])
    assert (tmp_path / "x.trn").read_text() == "a b\t(English_American-u1)\n\t(ja-u2)\n"
    with pytest.raises(ValueError, match="trn"):
        make_trn_id("bad(id)", "spk")


def test_find_sclite_errors():
    with pytest.raises(ScliteNotFoundError, match="not found"):
        find_sclite("/nonexistent/sclite")


def test_parse_result_rejects_garbage(tmp_path):
    (tmp_path / "result.txt").write_text("nothing here\n")
    with pytest.raises(ScliteError, match="result.txt"):
        parse_result(tmp_path / "result.txt")
    (tmp_path / "result.txt").write_text("Scores: (#C #S #D #I) 1 0 0 0\n")
    with pytest.raises(ScliteError, match="result.txt:1"):
        parse_result(tmp_path / "result.txt")


# --------------------------------------------------------------------------- CLI, report
REF = """\
en1 Hello, world! It's fine.
en2 the cat sat on the mat
ja1 今日は、いい天気。
th1 สวัสดี ครับ
zh1 你好，世界！
en3 a well-known fact
"""
HYP = """\
en1 hello world its fine
en2 cat sat on the mat mat
ja1 今日 は いい天気
th1 สวัสดีครับ
zh1 你好世
"""
UTT2LANG = """\
en1 English-American
en2 English-British
ja1 Japanese
th1 Thai
zh1 zh
en3 English-American
"""


def _write(tmp_path: Path, ref=REF, hyp=HYP, utt2lang=UTT2LANG):
    paths = {}
    for name, content in (("text", ref), ("hyp", hyp), ("utt2lang", utt2lang)):
        paths[name] = tmp_path / name
        paths[name].write_text(content, encoding="utf-8")
    return paths


def _run(tmp_path, paths, out="out", extra=()):
    return score_main(
        ["--ref", str(paths["text"]), "--hyp", str(paths["hyp"]), "--utt2lang",
         str(paths["utt2lang"]), "--output_dir", str(tmp_path / out), "--set_name", "test",
         "--log_level", "WARNING", *extra]
    )


@pytest.mark.parametrize("use_sclite", [
    pytest.param("true", marks=needs_sclite), "false"])
def test_cli_end_to_end(tmp_path, caplog, use_sclite):
    paths = _write(tmp_path)
    with caplog.at_level(logging.WARNING):
        scores = _run(tmp_path, paths, extra=["--use_sclite", use_sclite])
    out = tmp_path / "out"
    for name in ("score_wer/ref.trn", "score_wer/hyp.trn", "score_wer/result.txt",
                 "score_cer/ref.trn", "score_cer/hyp.trn", "score_cer/result.txt",
                 "RESULTS.md", "scores.json", "error_rate_by_language.png"):
        assert (out / name).is_file(), name
    assert (out / "error_rate_by_language.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "scores.json").read_text()) == scores
    assert scores["backend"] == ("sclite" if use_sclite == "true" else "python")

    # Hand-computed: en1 its->sub (1 S, 4 words); en2 del "the" + ins "mat" (6 words);
    # en3 missing -> 3 deletions; ja1 0 of 7 chars; th1 0 of 10 chars; zh1 1 deletion of 4.
    wer = scores["by_unit"]["word"]
    assert (wer["snt"], wer["wrd"], wer["corr"], wer["sub"], wer["del"], wer["ins"],
            wer["err"], wer["serr"]) == (3, 13, 8, 1, 4, 1, 6, 3)
    cer = scores["by_unit"]["char"]
    assert (cer["snt"], cer["wrd"], cer["err"], cer["del"]) == (3, 21, 1, 1)
    assert scores["by_language"]["English-American"]["wrd"] == 7
    assert scores["by_language"]["zh"]["unit"] == "char"
    assert scores["mer"]["errors"] == 7 and scores["mer"]["ref_units"] == 34
    assert scores["mer"]["mer"] == pytest.approx(100 * 7 / 34)
    assert scores["missing_hyp"] == {"count": 1, "first": ["en3"]}
    assert "1 of 6 reference utterances have no hypothesis" in caplog.text

    md = (out / "RESULTS.md").read_text()
    assert "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|" in md
    assert "|test|3|13|61.5|7.7|30.8|7.7|46.2|100.0|" in md
    assert "|Japanese|CER (char)|1|7|" in md and "MER: 20.6 %" in md
    assert "no hypothesis" in md
    assert "今 日 は い い 天 気\t(Japanese-ja1)" in (out / "score_cer/ref.trn").read_text()


@needs_sclite
def test_cli_sclite_and_python_agree(tmp_path):
    data = _random_set(1, 200)
    ref = "".join(f"{u} {' '.join(r)}\n" for u, _, r, _ in data)
    hyp = "".join(f"{u} {' '.join(h)}\n" for u, _, _, h in data)
    langs = "".join(f"{u} {lang}\n" for u, lang, _, _ in data)
    paths = _write(tmp_path, ref, hyp, langs)
    a = _run(tmp_path, paths, "a", ["--use_sclite", "true", "--plot", "false"])
    b = _run(tmp_path, paths, "b", ["--use_sclite", "false", "--plot", "false"])
    assert a["by_unit"] == b["by_unit"] and a["by_language"] == b["by_language"]
    assert a["mer"] == b["mer"]


def test_single_unit_and_default_lang(tmp_path):
    paths = _write(tmp_path, "u1 你好世界\nu2 中文\n", "u1 你好\nu2 中文\n", "")
    out = tmp_path / "out"
    scores = score_set(paths["text"], paths["hyp"], out, default_lang="zh", use_sclite=False,
                       plot=False)
    assert set(scores["by_unit"]) == {"char"} and not (out / "score_wer").exists()
    assert scores["by_unit"]["char"]["err"] == 2
    # Without a language, a Chinese set is scored by words unless --unit char forces it.
    scores = score_set(paths["text"], paths["hyp"], out, use_sclite=False, plot=False)
    assert set(scores["by_unit"]) == {"word"} and not (out / "score_cer").exists()
    scores = score_set(paths["text"], paths["hyp"], out, unit="char", use_sclite=False,
                       plot=False)
    assert scores["by_language"]["all"]["unit"] == "char"


def test_bad_inputs(tmp_path, capsys):
    paths = _write(tmp_path)
    # Hypothesis id absent from the reference.
    paths["hyp"].write_text(HYP + "xx9 extra\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"hyp: utterance id 'xx9' is not in the reference"):
        _run(tmp_path, paths)
    # A line without an id.
    paths["hyp"].write_text("en1 hello\n  no id here\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"hyp:2: malformed line"):
        _run(tmp_path, paths)
    paths["hyp"].write_text(HYP, encoding="utf-8")
    paths["text"].write_text(REF + "\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"text:7: malformed line"):
        _run(tmp_path, paths)
    paths["text"].write_text(REF + "en1 again\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"text:7: duplicate utterance id 'en1'"):
        _run(tmp_path, paths)
    paths["text"].write_text(REF, encoding="utf-8")
    # utt2lang lacking an utterance, and with an empty label.
    paths["utt2lang"].write_text("en1 English\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"utt2lang: no entry for reference utterance 'en2'"):
        _run(tmp_path, paths)
    paths["utt2lang"].write_text("en1\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"utt2lang:1: 'en1' has no value"):
        _run(tmp_path, paths)
    paths["utt2lang"].write_text(UTT2LANG, encoding="utf-8")
    # Unknown normaliser (argparse lists the choices), missing file, missing sclite.
    with pytest.raises(SystemExit):
        _run(tmp_path, paths, extra=["--normalizer", "nope"])
    assert "mlc_slm" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no such file"):
        score_main(["--ref", str(tmp_path / "absent"), "--hyp", str(paths["hyp"]),
                    "--output_dir", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match="sclite not found"):
        _run(tmp_path, paths, extra=["--use_sclite", "true", "--sclite", "/nonexistent"])
    with pytest.raises(SystemExit):
        score_main(["--ref", str(paths["text"])])
    assert "--hyp" in capsys.readouterr().err


def test_read_kaldi_file_empty_value(tmp_path):
    (tmp_path / "t").write_text("u1\nu2 a  b\n", encoding="utf-8")
    assert list(read_kaldi_file(tmp_path / "t").items()) == [("u1", ""), ("u2", "a  b")]


def test_collect_results(tmp_path):
    paths = _write(tmp_path)
    exp = tmp_path / "exp" / "sllm_x"
    for dset in ("dev", "test"):
        score_set(paths["text"], paths["hyp"], exp / "decode_a" / dset, paths["utt2lang"],
                  use_sclite=False, plot=False)
    md = collect_results(exp)
    assert (exp / "RESULTS.md").read_text() == md
    assert "## sllm_x/decode_a" in md and "### WER" in md and "### CER" in md
    assert "|dev|3|13|" in md and "|test|3|13|" in md
    assert md.count("MER: 20.6 %") == 2
    assert score_main(["--collect_results", str(exp), "--log_level", "WARNING"])["markdown"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no scores.json"):
        score_main(["--collect_results", str(tmp_path / "empty")])


def test_collect_results_puts_decoding_passes_side_by_side(tmp_path):
    from espnet_sllm.scoring.report import collect_results, score_set

    ref = tmp_path / "ref"
    ref.write_text("u1 a b c d e\nu2 f g h i j\n")
    # 5, 3 and 1 substituted words out of 10: MER 50, 30, 10
    hyps = {"decode_b": "u1 x x x d e\nu2 x x h i j\n",
            "decode_b_ctx_hyp": "u1 x b c d e\nu2 x x h i j\n",
            "decode_b_ctx_ref": "u1 a b c d e\nu2 x g h i j\n"}
    for decode, text in hyps.items():
        d = tmp_path / "exp" / decode / "dev"
        d.mkdir(parents=True)
        (d / "text").write_text(text)
        score_set(ref, d / "text", d, set_name="dev", use_sclite=False, plot=False)
    text = collect_results(tmp_path / "exp")
    table = text[text.index("## MER by decoding pass"):]
    header, _, row = table.splitlines()[2:5]
    assert header.index("Stage1") < header.index("Stage2 (") < header.index("Stage2-G")
    assert row.split("|")[1:5] == ["dev", "50.0", "30.0", "10.0"]
