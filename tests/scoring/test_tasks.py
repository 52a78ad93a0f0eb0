"""Task-aware scoring: BLEU = sacreBLEU, ROUGE-L = rouge-score (Chinese included), score
groups, paper_results.yaml rendering, mixed sets, stage 9 of sllm.sh passing the files through."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import sacrebleu
from rouge_score import rouge_scorer, tokenize

from espnet_sllm.bin.sllm_score import main as score_main
from espnet_sllm.scoring.bleu import bleu_tokenizer_for, corpus_bleu, tokenizer_available
from espnet_sllm.scoring.normalize import normalize
from espnet_sllm.scoring.paper import PaperResults, lookup, paper_cells
from espnet_sllm.scoring.report import collect_results
from espnet_sllm.scoring.rouge import UnitTokenizer, mean_rouge_l, rouge_l

REPO = Path(__file__).resolve().parents[2]

# zh -> en and de -> en translations (references in text_tgt; text holds the transcripts),
# en -> zh and en -> ja ones, Chinese and English QA, and ASR rows.
EN_REFS = ["the cat is on the mat today", "there is a dog in the garden",
           "we are going to the market now"]
EN_HYPS = ["the cat is on a mat today", "there is a dog in garden",
           "we are going to the market"]
ZH_REFS = ["今天天气很好。", "我们明天去北京。", "这是一个测试句子。"]
ZH_HYPS = ["今天天气不错。", "我们明天去北京", "这是测试句子。"]
JA_REFS = ["今日はいい天気です", "明日は雨が降ります"]
JA_HYPS = ["今日はいい天気", "明日は雨です"]


def _write_set(tmp_path: Path, rows, hyp_override=None):
    """rows: (uttid, task, lang, tgt_lang or None, text, text_tgt or None, hyp)."""
    files = {name: [] for name in ("text", "hyp", "utt2task", "utt2lang", "utt2tgtlang",
                                   "text_tgt")}
    for uttid, task, lang, tgt, text, text_tgt, hyp in rows:
        files["text"].append(f"{uttid} {text}")
        if hyp is not None:
            files["hyp"].append(f"{uttid} {hyp}")
        files["utt2task"].append(f"{uttid} {task}")
        files["utt2lang"].append(f"{uttid} {lang}")
        if tgt is not None:
            files["utt2tgtlang"].append(f"{uttid} {tgt}")
        if text_tgt is not None:
            files["text_tgt"].append(f"{uttid} {text_tgt}")
    paths = {}
    for name, lines in files.items():
        paths[name] = tmp_path / name
        paths[name].write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return paths


def _translation_rows():
    rows = []
    for k, (ref, hyp) in enumerate(zip(EN_REFS, EN_HYPS)):
        rows.append((f"zhen{k}", "st", "zh", "en", f"中文转写{k}", ref, hyp))
    for k, (ref, hyp) in enumerate(zip(ZH_REFS, ZH_HYPS)):
        rows.append((f"enzh{k}", "st", "en", "zh", f"english transcript {k}", ref, hyp))
    for k, (ref, hyp) in enumerate(zip(JA_REFS, JA_HYPS)):
        rows.append((f"enja{k}", "st", "English", "Japanese", f"english {k}", ref, hyp))
    return rows


def _score(tmp_path, paths, out="exp/sllm_x/decode_a/test", extra=()):
    args = ["--ref", str(paths["text"]), "--hyp", str(paths["hyp"]),
            "--utt2lang", str(paths["utt2lang"]), "--utt2task", str(paths["utt2task"]),
            "--output_dir", str(tmp_path / out), "--set_name", "test", "--use_sclite", "false",
            "--plot", "false", "--log_level", "WARNING", *extra]
    if paths.get("utt2tgtlang") and paths["utt2tgtlang"].read_text():
        args += ["--utt2tgtlang", str(paths["utt2tgtlang"])]
    if paths.get("text_tgt") and paths["text_tgt"].read_text():
        args += ["--ref_tgt", str(paths["text_tgt"])]
    return score_main(args)


# ------------------------------------------------------------------------------------ BLEU
def test_bleu_tokenizer_follows_the_target_language():
    assert bleu_tokenizer_for("en") == ("13a", None)
    assert bleu_tokenizer_for("English-American") == ("13a", None)
    assert bleu_tokenizer_for("zh-CN") == ("zh", None)
    assert bleu_tokenizer_for("Cantonese") == ("zh", None)
    assert bleu_tokenizer_for("th") == ("char", None)
    assert bleu_tokenizer_for("zh", unit="word") == ("13a", None)  # a forced --unit word
    tok, note = bleu_tokenizer_for("ja")
    if tokenizer_available("ja-mecab"):
        assert (tok, note) == ("ja-mecab", None)
    else:
        assert tok == "char" and "ja-mecab not installed" in note
    with pytest.raises(ValueError, match="Unknown BLEU tokenizer 'nope'"):
        corpus_bleu(["a"], ["a"], "en", tokenize="nope")


def test_bleu_per_direction_equals_sacrebleu(tmp_path):
    paths = _write_set(tmp_path, _translation_rows())
    scores = _score(tmp_path, paths)
    bleu = scores["task_scores"]["st"]["metrics"]["BLEU"]
    assert list(bleu["rows"]) == ["English-Japanese", "en-zh", "zh-en"]  # sorted

    # zh -> en is scored in English: sacreBLEU's default 13a tokenizer.
    ref = sacrebleu.corpus_bleu(EN_HYPS, [EN_REFS], tokenize="13a")
    row = bleu["rows"]["zh-en"]
    assert row["value"] == pytest.approx(ref.score) and row["detail"] == "13a"
    metric = sacrebleu.BLEU(tokenize="13a")
    metric.corpus_score(EN_HYPS, [EN_REFS])
    assert row["signature"] == str(metric.get_signature())
    assert row["bleu"]["counts"] == list(ref.counts) and row["unit"] == "word"
    # en -> zh: sacreBLEU's Chinese tokenizer, as its documentation asks.
    ref = sacrebleu.corpus_bleu(ZH_HYPS, [ZH_REFS], tokenize="zh")
    assert bleu["rows"]["en-zh"]["value"] == pytest.approx(ref.score)
    assert bleu["rows"]["en-zh"]["detail"] == "zh"
    assert "tok:zh" in bleu["rows"]["en-zh"]["signature"]
    assert 0 < ref.score < 100
    # en -> ja: ja-mecab when installed, else characters, and the signature says so.
    tok = "ja-mecab" if tokenizer_available("ja-mecab") else "char"
    ref = sacrebleu.corpus_bleu(JA_HYPS, [JA_REFS], tokenize=tok)
    ja = bleu["rows"]["English-Japanese"]
    assert ja["value"] == pytest.approx(ref.score) and ja["detail"] == tok
    if tok == "char":
        assert ja["signature"].endswith("(ja-mecab not installed (pip install sacrebleu[ja]): "
                                        "char)")
    # avg = the unweighted mean of the directions.
    assert bleu["summary"]["label"] == "avg" and bleu["summary"]["snt"] == 8
    assert bleu["summary"]["value"] == pytest.approx(
        sum(r["value"] for r in bleu["rows"].values()) / 3)

    md = (tmp_path / "exp/sllm_x/decode_a/test/RESULTS.md").read_text(encoding="utf-8")
    assert "### ST: BLEU" in md and "|direction|tokenizer|#utt|BLEU|" in md
    assert f"|zh-en|13a|3|{bleu['rows']['zh-en']['value']:.1f}|" in md
    assert "- `zh-en`: `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in md
    # No ASR utterance: no WER table, no score dirs.
    assert "### WER" not in md and "MER" not in md
    assert not (tmp_path / "exp/sllm_x/decode_a/test/score_wer").exists()
    assert scores["mer"]["mer"] is None and scores["tasks"] == {"st": 8}


def test_bleu_tokenize_option_and_normalizer(tmp_path):
    rows = [(f"u{k}", "st", "zh", "en", "x", ref, hyp.upper())
            for k, (ref, hyp) in enumerate(zip(EN_REFS, EN_HYPS))]
    paths = _write_set(tmp_path, rows)
    cased = _score(tmp_path, paths, "a")["task_scores"]["st"]["metrics"]["BLEU"]["rows"]["zh-en"]
    assert cased["value"] == pytest.approx(0.0)  # sacreBLEU is case-sensitive
    lower = _score(tmp_path, paths, "b", ["--bleu_normalizer", "lower", "--bleu_tokenize",
                                          "intl"])
    row = lower["task_scores"]["st"]["metrics"]["BLEU"]["rows"]["zh-en"]
    assert row["detail"] == "intl" and row["value"] == pytest.approx(
        sacrebleu.corpus_bleu(EN_HYPS, [EN_REFS], tokenize="intl").score)


# --------------------------------------------------------------------------------- ROUGE-L
def test_rouge_score_default_tokenizer_drops_cjk():
    """Why rouge.py has its own tokenizer: rouge-score's default one keeps only [a-z0-9]."""
    assert tokenize.tokenize("你好世界 hello", None) == ["hello"]
    assert tokenize.tokenize("今日はいい天気です", None) == []
    default = rouge_scorer.RougeScorer(["rougeL"])
    assert default.score("你好世界", "你好世界")["rougeL"].fmeasure == 0.0  # identical, yet 0
    assert rouge_l("你好世界", "你好世界", "char") == 1.0
    assert UnitTokenizer("char", "lower_nopunct").tokenize("《你好》，世界！") == list("你好世界")


@pytest.mark.parametrize("ref, hyp, expected", [
    ("你好世界", "你世界好", 0.75),  # LCS 你世界: P = R = 3/4
    ("今天天气很好", "今天很好", 2 * (4 / 6) * 1.0 / (4 / 6 + 1.0)),  # LCS 4: R 4/6, P 1
    ("人工智能", "机器学习", 0.0),
])
def test_chinese_rouge_l_hand_computed(ref, hyp, expected):
    assert rouge_l(ref, hyp, "char") == pytest.approx(expected)
    # rouge-score's own LCS on the character lists gives the same.
    assert rouge_scorer._score_lcs(list(ref), list(hyp)).fmeasure == pytest.approx(expected)


def test_english_rouge_l_equals_rouge_score_default():
    default = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    for ref, hyp in zip(EN_REFS + ["Hello, World!"], EN_HYPS + ["hello there world"]):
        ours = rouge_l(ref, hyp, "word", "mlc_slm")
        assert ours == pytest.approx(default.score(ref, hyp)["rougeL"].fmeasure), (ref, hyp)


def test_rouge_l_per_task_equals_rouge_score(tmp_path):
    rows = _translation_rows()
    qa = [("q1", "sqa", "zh", None, "什么是人工智能？", "人工智能是计算机科学的一个分支。",
           "人工智能是计算机的分支。"),
          ("q2", "sqa", "zh", None, "今天天气怎么样？", "今天天气很好。", "天气很好"),
          ("q3", "qa", "en", None, "how are you", "I am fine, thank you.", "i am fine")]
    paths = _write_set(tmp_path, rows + qa)
    scores = _score(tmp_path, paths, extra=["--normalizer", "lower_nopunct"])
    ts = scores["task_scores"]
    assert scores["tasks"] == {"st": 8, "sqa": 2, "qa": 1}

    def lcs_f(ref, hyp, unit):
        if unit == "char":
            tok = [list(normalize(t, "lower_nopunct").replace(" ", "")) for t in (ref, hyp)]
        else:
            tok = [normalize(t, "lower_nopunct").split() for t in (ref, hyp)]
        return rouge_scorer._score_lcs(*tok).fmeasure

    st = ts["st"]["metrics"]["ROUGE-L"]["rows"]
    # A Chinese -> English translation is scored in English words: equal to rouge-score's
    # default tokenizer on these lowercase ASCII sentences.
    default = rouge_scorer.RougeScorer(["rougeL"])
    expected = 100 * sum(default.score(r, h)["rougeL"].fmeasure
                         for r, h in zip(EN_REFS, EN_HYPS)) / 3
    assert st["zh-en"]["value"] == pytest.approx(expected) and st["zh-en"]["unit"] == "word"
    # English -> Chinese in characters.
    expected = 100 * sum(lcs_f(r, h, "char") for r, h in zip(ZH_REFS, ZH_HYPS)) / 3
    assert st["en-zh"]["value"] == pytest.approx(expected) and st["en-zh"]["unit"] == "char"
    assert 0 < expected < 100
    # Chinese spoken QA in characters; per language and "all".
    sqa = ts["sqa"]["metrics"]["ROUGE-L"]
    expected = 100 * sum(lcs_f(r, h, "char") for _, _, _, _, _, r, h in qa[:2]) / 2
    assert sqa["rows"]["zh"]["value"] == pytest.approx(expected)
    assert sqa["summary"] is None  # one language: no "all" row
    assert ts["qa"]["metrics"]["ROUGE-L"]["rows"]["en"]["value"] == pytest.approx(
        100 * lcs_f("I am fine, thank you.", "i am fine", "word"))
    assert mean_rouge_l(ZH_REFS, ZH_HYPS, "char", "lower_nopunct") == pytest.approx(
        st["en-zh"]["value"])


def test_qa_answer_language_from_utt2tgtlang_and_all_row(tmp_path):
    rows = [("q1", "qa", "zh", "en", "问题", "the answer is yes", "the answer is no"),
            ("q2", "qa", "zh", None, "问题", "答案是对的", "答案是错的"),
            ("q3", "qa", "en", None, "question", "yes it is", "yes")]
    paths = _write_set(tmp_path, rows)
    m = _score(tmp_path, paths)["task_scores"]["qa"]["metrics"]["ROUGE-L"]
    assert {k: (r["snt"], r["unit"]) for k, r in m["rows"].items()} == {
        "en": (2, "word"), "zh": (1, "char")}
    per_utt = [rouge_l("the answer is yes", "the answer is no", "word", "mlc_slm"),
               rouge_l("答案是对的", "答案是错的", "char", "mlc_slm"),
               rouge_l("yes it is", "yes", "word", "mlc_slm")]
    assert m["summary"]["label"] == "all"
    assert m["summary"]["value"] == pytest.approx(100 * sum(per_utt) / 3)


# ------------------------------------------------------------------------------ mixed sets
def test_mixed_set_gives_one_table_per_task(tmp_path):
    rows = [("a1", "asr", "en", None, "the cat sat on the mat", None, "the cat sat on mat"),
            ("a2", "asr", "zh", None, "你好世界", None, "你好世"),
            ("s1", "st", "zh", "en", "你好世界", "hello world", "hello world"),
            ("s2", "st", "de", "en", "guten morgen", "good morning", "good evening"),
            ("q1", "qa", "zh", None, "什么", "人工智能", "人工")]
    paths = _write_set(tmp_path, rows)
    scores = _score(tmp_path, paths)
    out = tmp_path / "exp/sllm_x/decode_a/test"
    md = (out / "RESULTS.md").read_text(encoding="utf-8")
    for heading in ("### WER", "### CER", "### Per language", "### ST: BLEU", "### ST: ROUGE-L",
                    "### QA: ROUGE-L"):
        assert md.count(heading + "\n") == 1, heading
    assert "SQA" not in md and "- tasks: asr 2, st 2, qa 1" in md
    # The error rates cover the ASR utterances only.
    assert scores["by_unit"]["word"]["snt"] == 1 and scores["by_unit"]["char"]["snt"] == 1
    assert set(scores["by_language"]) == {"en", "zh"}
    assert scores["mer"] == {"errors": 2, "ref_units": 10, "mer": pytest.approx(20.0)}
    assert "(en-a1)" in (out / "score_wer/ref.trn").read_text()
    trn = (out / "score_wer/ref.trn").read_text() + (out / "score_cer/ref.trn").read_text()
    assert "s1" not in trn and "q1" not in trn
    assert json.loads((out / "scores.json").read_text()) == scores
    assert scores["task_scores"]["st"]["metrics"]["ROUGE-L"]["rows"]["zh-en"]["value"] == 100.0

    text = collect_results(tmp_path / "exp/sllm_x")
    assert text.count("### ST: BLEU\n") == 1 and text.count("### QA: ROUGE-L\n") == 1
    assert "|dataset|direction|tokenizer|#utt|BLEU|" in text and "|test|zh-en|13a|1|" in text


def test_all_asr_utt2task_changes_nothing(tmp_path):
    rows = [("a1", "asr", "English", None, "Hello, world!", None, "hello word"),
            ("a2", "asr", "ja", None, "今日は、いい天気。", None, "今日は")]
    paths = _write_set(tmp_path, rows)
    base = ["--ref", str(paths["text"]), "--hyp", str(paths["hyp"]), "--utt2lang",
            str(paths["utt2lang"]), "--use_sclite", "false", "--plot", "false",
            "--set_name", "test", "--log_level", "WARNING"]
    a = score_main(base + ["--output_dir", str(tmp_path / "a")])
    b = score_main(base + ["--output_dir", str(tmp_path / "b"), "--utt2task",
                           str(paths["utt2task"])])
    assert (tmp_path / "a/RESULTS.md").read_bytes() == (tmp_path / "b/RESULTS.md").read_bytes()
    assert b["inputs"].pop("utt2task") == str(paths["utt2task"])
    assert a == b


def test_chain_of_thought_marker(tmp_path):
    rows = [("s1", "st", "zh", "en", "你好", "hello world", "你好 Translation: hello world"),
            ("s2", "st", "zh", "en", "早上好", "good morning", "早上好 good morning"),
            ("s3", "st", "zh", "en", "再见", "good bye", None)]  # no hypothesis at all
    paths = _write_set(tmp_path, rows)
    scores = _score(tmp_path, paths, extra=["--hyp_marker", "Translation:"])
    st = scores["task_scores"]["st"]
    assert st["no_marker"] == 1 and st["hyp_marker"] == "Translation:"
    assert scores["missing_hyp"]["count"] == 1
    rouge = st["metrics"]["ROUGE-L"]["rows"]["zh-en"]
    assert rouge["value"] == pytest.approx(100 / 3)  # s1 perfect, s2 and s3 empty
    md = (tmp_path / "exp/sllm_x/decode_a/test/RESULTS.md").read_text(encoding="utf-8")
    assert "1 of 3 hypotheses lack it and were scored as empty" in md
    assert "1 of 3 reference utterances had no hypothesis" in md


def test_chain_of_thought_transcript_part(tmp_path):
    # The transcript of a COT hypothesis is the text before the marker, scored as ASR against
    # `text` (the source transcript), per source language; a hypothesis without the marker is
    # kept whole and counted; a missing one is all deletions.
    rows = [("s1", "st", "de", "en", "guten tag welt", "good day world",
             "guten tag Translation: good day world"),
            ("s2", "st", "de", "en", "danke schön", "thank you", "danke schön"),
            ("s3", "st", "fr", "en", "bonjour", "hello", None),
            ("s4", "st", "fr", "en", "oui merci", "yes thanks", "oui merci Translation: yes")]
    paths = _write_set(tmp_path, rows)
    out = tmp_path / "exp/sllm_x/decode_a/test_transcript"
    scores = score_main(["--ref", str(paths["text"]), "--hyp", str(paths["hyp"]),
                         "--utt2lang", str(paths["utt2lang"]), "--output_dir", str(out),
                         "--use_sclite", "false", "--plot", "false", "--log_level", "WARNING",
                         "--hyp_before_marker", "Translation:"])
    assert scores["no_marker"] == 1 and scores["inputs"]["hyp_before_marker"] == "Translation:"
    de, fr = scores["by_language"]["de"], scores["by_language"]["fr"]
    # de: s1 drops "welt" (1 deletion of 3 words), s2 right: 1 / 5; fr: s3 missing (1 word),
    # s4 right: 1 / 3.
    assert (de["err"], de["wrd"]) == (1, 5) and (fr["err"], fr["wrd"]) == (1, 3)
    assert "task_scores" not in scores and scores["missing_hyp"]["count"] == 1
    md = (out / "RESULTS.md").read_text(encoding="utf-8")
    assert "1 of 4 hypotheses lack the marker 'Translation:': scored whole" in md
    with pytest.raises(SystemExit, match="without --utt2task"):
        _score(tmp_path, paths, extra=["--hyp_before_marker", "Translation:"])
    with pytest.raises(SystemExit, match="marker is empty"):
        score_main(["--ref", str(paths["text"]), "--hyp", str(paths["hyp"]),
                    "--output_dir", str(out), "--hyp_before_marker", " "])


def test_task_input_errors(tmp_path):
    rows = [("s1", "st", "zh", None, "你好", "hello", "hello"),
            ("a1", "asr", "en", None, "a b", None, "a b")]
    paths = _write_set(tmp_path, rows)
    with pytest.raises(SystemExit, match=r"st utterance 's1' has no target language .*"
                                         r"--default_tgt_lang"):
        _score(tmp_path, paths)
    assert _score(tmp_path, paths, extra=["--default_tgt_lang", "en"])["tasks"] == {
        "asr": 1, "st": 1}
    paths["utt2task"].write_text("s1 translate\na1 asr\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"utt2task: utterance 's1': unknown task 'translate'. "
                                         r"Valid tasks: asr, st, sqa, qa"):
        _score(tmp_path, paths, extra=["--default_tgt_lang", "en"])
    paths["utt2task"].write_text("s1 st\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"utt2task: no entry for reference utterance 'a1'"):
        _score(tmp_path, paths, extra=["--default_tgt_lang", "en"])
    paths["utt2task"].write_text("s1 st\na1 asr\n", encoding="utf-8")
    paths["text_tgt"].write_text("a1 x\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"text_tgt: no entry for non-asr utterance 's1'"):
        _score(tmp_path, paths, extra=["--default_tgt_lang", "en"])


# --------------------------------------------------------------------------- score groups
KESPEECH = [  # uttid, subdialect, lang, ref, hyp
    ("u1", "Henan", "zh", "你好世界", "你好世界"),  # 4 chars, 0 errors
    ("u2", "Henan", "zh", "今天下雨", "今天下"),  # 1 deletion
    ("u3", "Shanghai", "zh", "我们", "我门们"),  # 1 insertion
    ("u4", "Shanghai", "zh", "谢谢", "谢"),  # 1 deletion
    ("u5", "Other", "en", "a b", "a c"),  # 1 substitution of 2 words
    ("u6", "Other", "zh", "好", "好"),
]


def test_score_group_hand_counted(tmp_path):
    (tmp_path / "text").write_text("".join(f"{u} {r}\n" for u, _, _, r, _ in KESPEECH),
                                   encoding="utf-8")
    (tmp_path / "hyp").write_text("".join(f"{u} {h}\n" for u, _, _, _, h in KESPEECH),
                                  encoding="utf-8")
    (tmp_path / "utt2lang").write_text("".join(f"{u} {lg}\n" for u, _, lg, _, _ in KESPEECH))
    (tmp_path / "utt2subdialect").write_text("".join(f"{u} {g}\n" for u, g, _, _, _ in KESPEECH))
    scores = score_main(["--ref", str(tmp_path / "text"), "--hyp", str(tmp_path / "hyp"),
                         "--utt2lang", str(tmp_path / "utt2lang"), "--output_dir",
                         str(tmp_path / "out"), "--score_group", str(tmp_path / "utt2subdialect"),
                         "--use_sclite", "false", "--plot", "false", "--log_level", "WARNING"])
    g = scores["groups"]["subdialect"]
    assert g["file"] == str(tmp_path / "utt2subdialect")
    by = g["by_value"]
    assert list(by) == ["Henan", "Other", "Shanghai"]
    assert (by["Henan"]["snt"], by["Henan"]["wrd"], by["Henan"]["err"], by["Henan"]["del"]) == \
        (2, 8, 1, 1)
    assert by["Henan"]["pct"]["err"] == pytest.approx(12.5) and by["Henan"]["metric"] == "CER"
    sh = by["Shanghai"]
    assert (sh["corr"], sh["sub"], sh["del"], sh["ins"], sh["err"]) == (3, 0, 1, 1, 2)
    assert sh["pct"]["err"] == pytest.approx(50.0)
    # A value with word- and character-scored utterances gets their MER.
    assert by["Other"]["unit"] == "mixed" and by["Other"]["metric"] == "MER"
    assert by["Other"]["pct"]["err"] == pytest.approx(100 / 3)

    md = (tmp_path / "out" / "RESULTS.md").read_text(encoding="utf-8")
    table = md[md.index("### Per subdialect (`utt2subdialect`)"):].splitlines()
    assert table[2] == "|subdialect|unit|#utt|#units|Corr|Sub|Del|Ins|Err|"
    assert table[4] == "|Henan|CER (char)|2|8|87.5|0.0|12.5|0.0|12.5|"
    assert table[5] == "|Other|MER (mixed)|2|3|66.7|33.3|0.0|0.0|33.3|"
    assert table[6] == "|Shanghai|CER (char)|2|4|75.0|0.0|25.0|25.0|50.0|"
    # The per-language table is still there, beside it.
    assert "|zh|CER (char)|5|13|" in md

    (tmp_path / "utt2subdialect").write_text("u1 Henan\n")
    with pytest.raises(SystemExit, match=r"utt2subdialect: no entry for reference utterance "
                                         r"'u2' \(5 of 6 missing\)"):
        score_main(["--ref", str(tmp_path / "text"), "--hyp", str(tmp_path / "hyp"),
                    "--output_dir", str(tmp_path / "o2"), "--score_group",
                    str(tmp_path / "utt2subdialect"), "--use_sclite", "false"])


# -------------------------------------------------------------------------- paper results
PAPER = """\
source: Hand-made paper, Table 9
test:
  CER: {zh: 20.0}
  subdialect/CER: {Henan: 10.05, Shanghai: null}
  MER: 30
other_set:
  WER: 1.0
systems:
  sllm_big:
    test:
      CER: {zh: 5.0}
"""


def test_paper_cells():
    assert paper_cells(12.5, 10.05) == ["10.05", "+2.45"]
    assert paper_cells(9.0, 26) == ["26", "-17.0"]
    assert paper_cells(25.0, 20.0) == ["20.0", "+5.0"]
    assert paper_cells(None, 3.5) == ["3.5", "–"]
    assert paper_cells(1.0, None) == ["–", "–"]


def test_paper_results_rendering(tmp_path):
    (tmp_path / "text").write_text("".join(f"{u} {r}\n" for u, _, _, r, _ in KESPEECH[:4]),
                                   encoding="utf-8")
    (tmp_path / "hyp").write_text("".join(f"{u} {h}\n" for u, _, _, _, h in KESPEECH[:4]),
                                  encoding="utf-8")
    (tmp_path / "utt2subdialect").write_text("".join(f"{u} {g}\n" for u, g, _, _, _ in
                                                     KESPEECH[:4]))
    (tmp_path / "paper.yaml").write_text(PAPER, encoding="utf-8")

    def run(out, set_name="test"):
        return score_main(["--ref", str(tmp_path / "text"), "--hyp", str(tmp_path / "hyp"),
                           "--default_lang", "zh", "--output_dir", str(tmp_path / out),
                           "--set_name", set_name,
                           "--score_group", str(tmp_path / "utt2subdialect"),
                           "--paper_results", str(tmp_path / "paper.yaml"),
                           "--use_sclite", "false", "--plot", "false", "--log_level", "WARNING"])

    scores = run("exp/sllm_small/decode_a/test")
    assert scores["paper"]["system"] is None and scores["paper"]["source"].startswith("Hand")
    md = (tmp_path / "exp/sllm_small/decode_a/test/RESULTS.md").read_text(encoding="utf-8")
    # CER 3/12 = 25.0 beside the paper's 20.0; the ESPnet table keeps its nine columns first.
    assert "|zh|CER (char)|4|12|83.3|0.0|16.7|8.3|25.0|20.0|+5.0|" in md
    assert "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|paper|Δ|" in md
    assert "|test|4|12|83.3|0.0|16.7|8.3|25.0|75.0|–|–|" in md  # no set-level CER: –
    assert "MER: 25.0 % (3 errors / 12 reference units; each language in its own unit); " \
           "paper: 30, Δ -5.0" in md
    # The group table: its own prefix; a null and an absent cell are both "–".
    assert "|Henan|CER (char)|2|8|87.5|0.0|12.5|0.0|12.5|10.05|+2.45|" in md
    assert "|Shanghai|CER (char)|2|4|75.0|0.0|25.0|25.0|50.0|–|–|" in md
    assert "- paper: Hand-made paper, Table 9 (" in md

    # systems: the experiment's own numbers override the top level, cell by cell.
    scores = run("exp/sllm_big/decode_a/test")
    assert scores["paper"]["system"] == "sllm_big"
    assert lookup(scores["paper"], "CER", "zh", "asr") == 5.0
    assert lookup(scores["paper"], "MER", "all", "asr") == 30.0
    md = (tmp_path / "exp/sllm_big/decode_a/test/RESULTS.md").read_text(encoding="utf-8")
    assert "|zh|CER (char)|4|12|83.3|0.0|16.7|8.3|25.0|5.0|+20.0|" in md

    # A set the file does not name: no paper columns at all.
    scores = run("exp/sllm_small/decode_a/dev", "dev")
    assert "paper" not in scores
    md = (tmp_path / "exp/sllm_small/decode_a/dev/RESULTS.md").read_text(encoding="utf-8")
    assert "paper" not in md and "Δ" not in md

    # The experiment summary: from the file when given, else from scores.json.
    text = collect_results(tmp_path / "exp/sllm_big", paper_results=tmp_path / "paper.yaml")
    assert "|test|4|12|83.3|0.0|16.7|8.3|25.0|75.0|–|–|" in text
    assert "|zh|CER (char)|4|12|83.3|0.0|16.7|8.3|25.0|5.0|+20.0|" in text
    assert "### test: per subdialect (`utt2subdialect`)" in text
    text = collect_results(tmp_path / "exp/sllm_small")
    assert "|zh|CER (char)|4|12|83.3|0.0|16.7|8.3|25.0|20.0|+5.0|" in text
    assert "|dev|4|12|83.3|0.0|16.7|8.3|25.0|75.0|–|–|" in text  # beside a set with numbers


def test_paper_results_st_cells(tmp_path):
    paths = _write_set(tmp_path, _translation_rows())
    (tmp_path / "paper.yaml").write_text(
        "test:\n  BLEU: {zh-en: 30.5, avg: 40}\n  st/ROUGE-L: {en-zh: 50}\n", encoding="utf-8")
    scores = _score(tmp_path, paths, extra=["--paper_results", str(tmp_path / "paper.yaml")])
    md = (tmp_path / "exp/sllm_x/decode_a/test/RESULTS.md").read_text(encoding="utf-8")
    bleu = scores["task_scores"]["st"]["metrics"]["BLEU"]
    ours = bleu["rows"]["zh-en"]["value"]
    assert f"|zh-en|13a|3|{ours:.1f}|30.5|{ours - 30.5:+.1f}|" in md
    assert f"|avg||8|{bleu['summary']['value']:.1f}|40|" in md
    assert "|en-zh|zh|3|" in md and md.split("|en-zh|zh|3|")[1].split("\n")[0].endswith("|–|–|")
    rouge = scores["task_scores"]["st"]["metrics"]["ROUGE-L"]["rows"]["en-zh"]["value"]
    assert f"|en-zh|char|3|{rouge:.1f}|50|{rouge - 50:+.1f}|" in md


@pytest.mark.parametrize("yaml_text, message", [
    ("test: {BLUE: 1}", r"p.yaml: test/BLUE: unknown metric 'BLUE'. Valid: WER, CER, MER, "
                        r"BLEU, ROUGE-L"),
    ("test: {BLEU: {en-de: abc}}", r"p.yaml: test/BLEU/en-de: not a number: 'abc'"),
    ("test: [1, 2]", r"p.yaml: test: expected a mapping of metrics"),
    ("- a", r"p.yaml: expected a mapping of sets"),
    ("systems: {x: [1]}", r"p.yaml: systems/x: expected a mapping of sets"),
    ("test: {a: [", r"p.yaml: not valid YAML"),
])
def test_paper_results_errors(tmp_path, yaml_text, message):
    (tmp_path / "p.yaml").write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        PaperResults.load(tmp_path / "p.yaml")


def test_paper_metric_keys_are_case_insensitive():
    p = PaperResults.from_dict({"t": {"rouge-l": {"zh": 1}, "sqa/Rouge-L": 2, "bleu": 3}})
    assert p.sets["t"] == {"ROUGE-L": {"zh": 1}, "sqa/ROUGE-L": {"all": 2},
                           "BLEU": {"all": 3}}
    section = p.for_set("t")
    assert lookup(section, "ROUGE-L", "all", "sqa") == 2.0
    assert lookup(section, "ROUGE-L", "zh", "sqa") == 1.0  # falls back to the bare metric
    assert lookup(section, "ROUGE-L", "en", "sqa") is None
    assert p.for_set("absent") is None


# ---------------------------------------------------------------------- stage 9 of sllm.sh
def test_stage9_passes_task_files_groups_and_paper(tmp_path):
    """sllm.sh stage 9 finds utt2task / text_tgt (dump dir), utt2tgtlang (data/<set>), the
    --score_group files and conf/paper_results.yaml, and passes them to sllm_score."""
    template = REPO / "egs2" / "TEMPLATE" / "sllm1"
    rec = tmp_path / "recipe"
    (rec / "conf").mkdir(parents=True)
    for name in ("sllm.sh", "scripts", "cmd.sh"):
        os.symlink(template / name, rec / name)
    venv = REPO / "tools" / "venv" / "bin"
    (rec / "path.sh").write_text(f"export PYTHONPATH={REPO}\nexport PATH={venv}:$PATH\n")
    (rec / "conf" / "train.yaml").write_text("")
    (rec / "conf" / "paper_results.yaml").write_text("test: {BLEU: {zh-en: 12.5}}\n")
    dump = rec / "dump" / "raw" / "test"
    rows = [("a1", "asr", "zh", None, "你好世界", None, "你好"),
            ("s1", "st", "zh", "en", "你好", "hello there my world", "hello there my world")]
    dump.mkdir(parents=True)
    paths = _write_set(dump, rows)
    paths["utt2tgtlang"].unlink()  # only in data/<set>: the fallback
    (rec / "data" / "test").mkdir(parents=True)
    (rec / "data" / "test" / "utt2tgtlang").write_text("s1 en\n")
    (dump / "utt2subdialect").write_text("a1 Henan\ns1 Henan\n")
    decode = rec / "exp" / "sllm_train" / "decode_a" / "test"
    decode.mkdir(parents=True)
    os.replace(paths["hyp"], decode / "text")
    proc = subprocess.run(
        ["./sllm.sh", "--train_set", "t", "--valid_set", "v", "--test_sets", "test",
         "--train_config", "conf/train.yaml", "--stage", "9", "--stop_stage", "9",
         "--python", "python", "--score_group", "utt2subdialect utt2absent",
         "--score_opts", "--use_sclite false --plot false"],
        cwd=rec, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "test: no utt2absent: no table per absent" in proc.stderr
    scores = json.loads((decode / "scores.json").read_text(encoding="utf-8"))
    assert scores["inputs"]["utt2task"] == "dump/raw/test/utt2task"
    assert scores["inputs"]["ref_tgt"] == "dump/raw/test/text_tgt"
    assert scores["inputs"]["utt2tgtlang"] == "data/test/utt2tgtlang"
    assert scores["tasks"] == {"asr": 1, "st": 1}
    assert list(scores["groups"]["subdialect"]["by_value"]) == ["Henan"]
    assert scores["paper"]["file"] == "conf/paper_results.yaml"
    summary = (rec / "exp" / "sllm_train" / "RESULTS.md").read_text(encoding="utf-8")
    assert "|test|zh-en|13a|1|100.0|12.5|+87.5|" in summary
    assert "|Henan|CER (char)|1|4|50.0|0.0|50.0|0.0|50.0|" in summary
