"""ILT text selection (espnet_sllm.data.token_select): token counts, low-/high-frequency
selection and hard cases by WER/CER, with a word-level tokenizer whose tokens are the words."""
from collections import Counter

import pytest

from espnet_sllm.data import token_select as ts
from espnet_sllm.data.kaldi_dir import Utterance, read_kv, write_data_dir, write_kv

WORDS = "a b c d e f g h hello world".split()


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    """An HF tokenizer directory: one token per word, and a post-processor that appends
    ``</s>``, so that ``add_special_tokens=True`` would count it."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<pad>": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.post_processor = processors.TemplateProcessing(single="$A </s>",
                                                      special_tokens=[("</s>", 2)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", pad_token="<pad>",
                                   eos_token="</s>")
    out = tmp_path_factory.mktemp("tok")
    fast.save_pretrained(str(out))
    return str(out)


@pytest.fixture(scope="module")
def tok(tok_dir):
    from espnet_sllm.llm.tokenizer import load_tokenizer

    return load_tokenizer(tok_dir)


def tid(tok, w):
    return tok.convert_tokens_to_ids(w)


def test_token_counts_without_special_tokens(tok):
    assert tok("a b", add_special_tokens=True)["input_ids"][-1] == 2  # </s> would be counted
    counts = ts.token_counts(["a b a", "hello a", "zzz"], tok)
    assert counts == Counter({tid(tok, "a"): 3, tid(tok, "b"): 1, tid(tok, "hello"): 1, 0: 1})
    assert 2 not in counts


def test_thresholds_at_their_boundaries():
    assert not ts.is_low(20, 20) and ts.is_low(19, 20) and ts.is_low(0, 20)
    assert not ts.is_high(200, 200) and ts.is_high(201, 200)
    ts.check_thresholds(20, 200)
    ts.check_thresholds(0, 1)
    for low, high in ((200, 200), (201, 200)):
        with pytest.raises(ValueError, match=f"--low {low} must be smaller than --high {high}"):
            ts.check_thresholds(low, high)
    with pytest.raises(ValueError, match="--low must be an integer >= 0"):
        ts.check_thresholds(-1, 5)


def test_select_low_frequency_is_strict():
    counts = {1: 20, 2: 19, 3: 25}  # low = 20: token 1 (== low) is NOT low, 2 is; 9 unseen
    sents = {
        "half": [1, 3, 2, 9],        # 2 of 4 low: exactly the ratio -> not selected
        "three": [1, 2, 9, 9],       # 3 of 4 -> selected
        "eq_low": [1, 1, 1, 2],      # 1 of 4 (count == low is not low)
        "unseen": [9],               # unseen counts 0 -> low
        "empty": [],
    }
    skipped = Counter()
    assert ts.select_low_frequency(sents, counts, low=20, ratio=0.5, skipped=skipped) == [
        "three", "unseen"]
    assert skipped == Counter({"empty_tokens": 1})
    assert ts.select_low_frequency([[2, 2, 1], [1, 1, 2]], counts, low=20, ratio=0.5) == [0]
    assert ts.select_low_frequency(sents, counts, low=21, ratio=0.5) == ["half", "three",
                                                                         "eq_low", "unseen"]
    # compared exactly: 1 of 5 at ratio 0.2, 3 of 10 at 0.3 (0.1 * 3 > 0.3 in floats)
    assert ts.select_low_frequency({"x": [2, 1, 1, 1, 1]}, counts, 20, ratio=0.2) == []
    assert ts.select_low_frequency({"x": [2, 2, 2] + [1] * 7}, counts, 20, ratio=0.3) == []
    with pytest.raises(ValueError, match=r"--ratio must be in \[0, 1\)"):
        ts.select_low_frequency(sents, counts, 20, ratio=1.0)


def test_hard_case_candidates():
    counts = {1: 200, 2: 201}
    sents = {"eq": [1, 5], "high": [5, 2], "none": [7], "empty": []}
    skipped = Counter()
    assert ts.hard_case_candidates(sents, counts, high=200, skipped=skipped) == ["high"]
    assert skipped["empty_tokens"] == 1


REF20 = " ".join(f"w{i}" for i in range(20))


def test_select_hard_wer_cer_and_normaliser():
    ja_ref = "今日は良い天気ですね明日も晴れるでしょう"  # 20 characters, one "word"
    assert len(ja_ref) == 20
    refs = {
        "en_5pct": REF20,                                   # 1 error of 20 words: exactly 5 %
        "en_10pct": REF20,                                  # 2 of 20
        "en_norm": "Hello, World! It's fine.",              # only case and punctuation differ
        "ja_5pct": ja_ref,                                  # CER 1/20; WER would be 100 %
        "ja_space": ja_ref,                                 # spaces only: CER 0
        "ko": "안녕하세요 여러분",                            # CER 1/8 (WER 1/2)
        "empty": "?!",                                      # nothing left after normalising
    }
    hyps = {
        "en_5pct": REF20.replace("w3", "x"),
        "en_10pct": REF20.replace("w3", "x").replace("w7 ", ""),
        "en_norm": "hello world it's fine",
        "ja_5pct": ja_ref.replace("天", "点"),
        "ja_space": "今日は 良い天気ですね 明日も晴れるでしょう",
        "ko": "안녕하세요 여러운",
        "empty": "anything",
    }
    langs = {"en_5pct": "English-American", "en_10pct": "English-British",
             "en_norm": "English-Indian", "ja_5pct": "Japanese", "ja_space": "Japanese",
             "ko": "Korean", "empty": "French"}
    skipped = Counter()
    assert ts.select_hard(refs, hyps, langs, threshold=0.05, skipped=skipped) == [
        "en_10pct", "ko"]
    assert skipped == Counter({"empty_reference": 1})
    errs = ts.utterance_errors(refs, hyps, langs)
    assert errs["ja_5pct"] == ts.UttErrors("Japanese", "char", 1, 20)
    assert errs["ko"].unit == "char" and errs["en_5pct"].rate == 0.05
    assert ts.select_hard(refs, hyps, langs, threshold=0.049) == ["en_5pct", "en_10pct",
                                                                 "ja_5pct", "ko"]
    with pytest.raises(ValueError, match="no hypothesis for 'ko'"):
        ts.select_hard(refs, {k: v for k, v in hyps.items() if k != "ko"}, langs)
    with pytest.raises(ValueError, match="no language label for 'ko'"):
        ts.select_hard(refs, hyps, {k: v for k, v in langs.items() if k != "ko"})


def _candidates(path, texts, langs):
    utts = [Utterance(k, f"/a/{k}.wav", spk=k.split("-")[0], text=t, lang=langs[k])
            for k, t in texts.items()]
    write_data_dir(path, utts)
    write_kv(path / "utt2dur", {k: "1.5" for k in texts})
    return path


def test_cli_low_high_and_hard(tok_dir, tmp_path, capsys):
    # reference counts: a=4 (high), b=2 (== low: mid), hello=1 (low); low = 2, high = 3
    write_kv(tmp_path / "ref_text", {"r1": "a b a", "r2": "a b hello a"})
    texts = {"s1-u1": "c d a", "s1-u2": "a b c", "s2-u1": "a a", "s2-u2": "c d e f",
             "s3-u1": ""}
    langs = {k: "English-American" for k in texts}
    cand = _candidates(tmp_path / "pool", texts, langs)
    base = ["--tokenizer", tok_dir, "--ref_text", str(tmp_path / "ref_text"),
            "--candidates", str(cand), "--low", "2", "--high", "3"]
    rc = ts.main(base + ["--out", str(tmp_path / "low")])
    out = capsys.readouterr().out
    assert rc == 0, out
    # c d a: 2/3 low; a b c: 1/3 (b has count 2 == low); c d e f: 4/4
    assert set(read_kv(tmp_path / "low" / "text")) == {"s1-u1", "s2-u2"}
    assert read_kv(tmp_path / "low" / "utt2dur") == {"s1-u1": "1.5", "s2-u2": "1.5"}
    assert "2 of 5 candidates" in out and "skipped: empty_tokens=1" in out
    rows = (tmp_path / "low" / "token_counts.tsv").read_text().splitlines()
    assert rows[0] == "token_id\ttoken\tref_count\tcandidate_count\tclass"
    assert rows[1] == "3\ta\t4\t4\thigh" and rows[2] == "4\tb\t2\t1\tmid"
    assert "5\tc\t0\t3\tlow" in rows
    rc = ts.main(base + ["--select", "high", "--out", str(tmp_path / "high")])
    assert rc == 0
    assert set(read_kv(tmp_path / "high" / "text")) == {"s1-u1", "s1-u2", "s2-u1"}

    rc = ts.main(base[:-4] + ["--low", "200", "--high", "200", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 1 and err.strip() == ("token_select: ERROR: --low 200 must be smaller than "
                                       "--high 200 (a token cannot be both low- and "
                                       "high-frequency)")

    hyp = tmp_path / "hyp_text"
    write_kv(hyp, {"s1-u1": "c d a", "s1-u2": "a b", "s2-u1": "A, a.", "s2-u2": "c d e f",
                   "s3-u1": "", "other": "x"})
    rc = ts.main(["--candidates", str(cand), "--hard_hyp", str(hyp), "--out",
                  str(tmp_path / "hard")])
    out = capsys.readouterr().out
    assert rc == 0
    assert list(read_kv(tmp_path / "hard" / "text")) == ["s1-u2"]
    assert "skipped: empty_reference=1, hyp_not_in_candidates=1" in out
    rows = (tmp_path / "hard" / "error_rates.tsv").read_text().splitlines()
    assert "s1-u2\tEnglish-American\tword\t1\t3\t0.3333\t1" in rows
    assert "s3-u1\tEnglish-American\tword\t0\t0\t-\t0" in rows

    write_kv(hyp, {"s1-u1": "c d a"})
    rc = ts.main(["--candidates", str(cand), "--hard_hyp", str(hyp), "--out",
                  str(tmp_path / "hard2")])
    err = capsys.readouterr().err
    assert rc == 1 and f"ERROR: {hyp}: no hypothesis for 's1-u2'" in err
    assert "Traceback" not in err
