"""#11 §1: prompt selection by any field (prompt_key), target_template, ctc_text_name."""
import numpy as np
import pytest
import torch

from espnet_sllm.prompts.preprocessor import SLLMPreprocessor
from espnet_sllm.prompts.template import PromptSelector, TargetTemplate
from espnet_sllm.tasks.sllm import SLLMTask
from espnet_sllm.testing.configs import config_to_args, tiny_sllm_config

NESTED = {
    "asr": {"English": "{speech} asr-en", "default": "{speech} asr-any"},
    "st": {"Chinese": "{speech} st-zh to {tgt_lang}", "default": "{speech} st-any"},
    "qa": "{speech} qa-all",
    "default": {"English": "{speech} other-en", "default": "{speech} other-any"},
}
COT = "{text} <translation> {text_tgt}"


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from espnet_sllm.testing.llm import make_tiny_llm

    return make_tiny_llm(str(tmp_path_factory.mktemp("tok")), "qwen2", save_weights=False)


def utt(**fields):
    return {"speech": np.ones(1600, np.float32), "text": "one two", **fields}


def after(template):
    return template.render({"tgt_lang": "English"})[1]


def test_select_by_task_and_lang_with_default_at_each_level():
    sel = PromptSelector(NESTED, ("task", "lang"))
    cases = [
        ({"task": "asr", "lang": "English"}, " asr-en"),
        ({"task": "asr", "lang": "English-American"}, " asr-en"),  # language fallback kept
        ({"task": "asr", "lang": "German"}, " asr-any"),  # default at the language level
        ({"task": "asr"}, " asr-any"),  # no language field: default
        ({"task": "st", "lang": "Chinese"}, " st-zh to English"),
        ({"task": "st", "lang": "German"}, " st-any"),
        ({"task": "qa", "lang": "German"}, " qa-all"),  # a string serves every language
        ({"task": "sqa", "lang": "English"}, " other-en"),  # default at the task level
        ({"lang": "Thai"}, " other-any"),
    ]
    for values, expect in cases:
        assert after(sel.select(values)) == expect, values
    by_task = PromptSelector({"asr": "{speech} a", "default": "{speech} d"}, "task")
    assert after(by_task.select({"task": "asr"})) == " a"
    assert after(by_task.select({"task": "st"})) == " d"
    # prompt_key lang (the default) with a plain label behaves as before
    assert after(PromptSelector({"English": "{speech} e"}).select("English-British")) == " e"


def test_missing_template_and_bad_tables_are_errors():
    sel = PromptSelector({"asr": {"English": "{speech} x"}, "st": "{speech} y"}, "task,lang")
    with pytest.raises(KeyError, match=r"task='sqa' .*they exist for \['asr', 'st'\]"):
        sel.select({"task": "sqa", "lang": "English"})
    with pytest.raises(KeyError, match=r"lang='German' under \['asr'\].*\['English'\]"):
        sel.select({"task": "asr", "lang": "German"})
    with pytest.raises(ValueError, match="nested deeper than prompt_key task"):
        PromptSelector({"asr": {"English": "{speech}"}}, "task")
    with pytest.raises(ValueError, match="distinct"):
        PromptSelector("{speech}", "task,task")


def test_preprocessor_names_the_utterance_of_a_missing_template(tokenizer_dir):
    pre = SLLMPreprocessor(True, tokenizer_dir, prompt_template={"asr": "{speech} a"},
                           prompt_key="task")
    with pytest.raises(KeyError, match=r"utterance u7: no prompt template for task='st'.*\['asr'\]"):
        pre("u7", utt(task="st"))
    pre = SLLMPreprocessor(True, tokenizer_dir, prompt_template=NESTED, prompt_key=["task", "lang"])
    out = pre("u", utt(task="st", lang="Chinese", tgt_lang="English"))
    assert out["suffix"].tolist() == pre.encode(" st-zh to English").tolist()
    # the default prompt_key (lang) is today's behaviour, byte for byte
    table = {"English": "{speech} en", "default": "{speech} any"}
    new = SLLMPreprocessor(True, tokenizer_dir, prompt_template=table, prompt_key="lang")
    old = SLLMPreprocessor(True, tokenizer_dir, prompt_template=table)
    for lang in ("English-American", "French"):
        a, b = old("u", utt(lang=lang)), new("u", utt(lang=lang))
        assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("template,expect", [
    ("{text}", "one two"),
    ("{text_tgt}", "eins zwei"),
    (COT, "one two <translation> eins zwei"),
])
def test_target_is_the_rendered_template_plus_eos(tokenizer_dir, template, expect):
    pre = SLLMPreprocessor(True, tokenizer_dir, target_template=template)
    out = pre("u", utt(text=" one two ", text_tgt="eins zwei "))
    ids = pre.tokenizer(expect, add_special_tokens=False)["input_ids"]
    assert out["text"].dtype == np.int64
    assert out["text"].tolist() == ids + [pre.tokenizer.eos_token_id]
    assert "ctc_text" not in out
    # decoding: no text, no target (text_tgt alone does not make one)
    assert "text" not in pre("u", {"speech": np.ones(1600, np.float32), "text_tgt": "x"})


def test_target_errors_name_the_utterance(tokenizer_dir):
    pre = SLLMPreprocessor(True, tokenizer_dir, target_template=COT)
    with pytest.raises(ValueError, match=r"utterance u3: target_template needs the field 'text_tgt'"):
        pre("u3", utt())
    with pytest.raises(ValueError, match=r"utterance u3: empty 'text_tgt'"):
        pre("u3", utt(text_tgt="  "))
    with pytest.raises(ValueError, match="utterance u3: empty text"):
        pre("u3", utt(text=" ", text_tgt="x"))
    with pytest.raises(ValueError, match="hyp_marker"):
        TargetTemplate(COT, hyp_marker="Translation:")
    assert TargetTemplate(COT, hyp_marker="<translation>").hyp_marker == "<translation>"
    with pytest.raises(ValueError, match="at least one"):
        TargetTemplate("constant")


def test_ctc_text_for_translation(tokenizer_dir):
    pre = SLLMPreprocessor(True, tokenizer_dir, target_template="{text_tgt}",
                           ctc_text_name="text")
    out = pre("u", utt(text="one two", text_tgt="eins zwei"))
    tok = pre.tokenizer
    assert out["ctc_text"].tolist() == tok("one two", add_special_tokens=False)["input_ids"]
    assert out["text"].tolist() == tok("eins zwei", add_special_tokens=False)["input_ids"] + [
        tok.eos_token_id]
    # CTC on the target itself: no separate array
    same = SLLMPreprocessor(True, tokenizer_dir, ctc_text_name="text")
    assert "ctc_text" not in same("u", utt())
    with pytest.raises(ValueError, match="utterance u: ctc_text_name needs the field 'text_src'"):
        SLLMPreprocessor(True, tokenizer_dir, target_template="{text_tgt}",
                         ctc_text_name="text_src")("u", utt(text_tgt="x"))


def test_model_ctc_trains_on_ctc_text(tiny_llm_dirs):
    cfg = tiny_sllm_config(tiny_llm_dirs["qwen2"], "conformer", None, ctc_weight=0.3)
    cfg["preprocessor_conf"].update(target_template="{text_tgt}", ctc_text_name="text")
    args = config_to_args(cfg)
    torch.manual_seed(0)
    model = SLLMTask.build_model(args)
    pre = SLLMTask.build_preprocess_fn(args, True)
    collate = SLLMTask.build_collate_fn(args, True)
    rng = np.random.RandomState(0)
    pairs = [("hello world", "hallo welt und mehr"), ("the cat sat on the mat", "die katze")]
    items = [(f"u{i}", pre(f"u{i}", {"speech": rng.randn(8000 + 2400 * i).astype(np.float32),
                                     "text": s, "text_tgt": t}))
             for i, (s, t) in enumerate(pairs)]
    batch = collate(items)[1]
    assert "ctc_text" in batch and "ctc_text_lengths" in batch
    model.eval()
    with torch.no_grad():
        loss, stats, _ = model(**batch)
        emb, emb_lens = model.project(*model.encode(batch["speech"], batch["speech_lengths"]))
        logp = model.ctc.log_softmax(emb.float()).transpose(0, 1)  # (T, B, V+1)
        by_hand = []
        for b in range(2):
            ys = torch.as_tensor(items[b][1]["ctc_text"]) + 1
            by_hand.append(torch.nn.functional.ctc_loss(
                logp[: int(emb_lens[b]), b : b + 1], ys[None], emb_lens[b : b + 1],
                torch.tensor([len(ys)]), blank=0, reduction="sum", zero_infinity=True))
        # ESPnet's CTC: summed over the batch, divided by the batch size
        expect = torch.stack(by_hand).sum() / 2
        torch.testing.assert_close(stats["loss_ctc"].reshape(()), expect, rtol=1e-4, atol=1e-4)
        # and not the CTC of the target
        wrong = dict(batch)
        wrong.pop("ctc_text"), wrong.pop("ctc_text_lengths")
        assert not torch.allclose(model(**wrong)[1]["loss_ctc"], stats["loss_ctc"])


def test_target_template_per_task_for_a_mixed_set(tokenizer_dir):
    """target_template as a mapping nested by prompt_key: each task its own target; CTC text
    emitted (the transcript) where the target is not it; the marker checked across templates."""
    pre = SLLMPreprocessor(
        train=True, tokenizer_name_or_path=tokenizer_dir, prompt_template="{speech} go",
        prompt_key="task", ctc_text_name="text", hyp_marker="<translation>",
        target_template={"asr": "{text}", "st": COT, "default": "{text_tgt}"})
    tok = pre.tokenizer
    asr = pre("a1", utt(task="asr"))
    st = pre("s1", utt(task="st", text_tgt="zwei drei"))
    qa = pre("q1", utt(task="qa", text_tgt="four"))
    assert asr["text"].tolist() == pre.encode("one two").tolist() + [tok.eos_token_id]
    assert st["text"].tolist() == pre.encode("one two <translation> zwei drei").tolist() + [
        tok.eos_token_id]
    assert qa["text"].tolist() == pre.encode("four").tolist() + [tok.eos_token_id]
    for out in (asr, st, qa):
        assert tok.decode(out["ctc_text"]).strip() == "one two"
    # an asr utterance needs no text_tgt; a qa one does, and the error names it
    with pytest.raises(ValueError, match=r"utterance q2: .*'text_tgt'"):
        pre("q2", utt(task="qa"))
    # no entry and no default for a task: an error naming the utterance and the entries
    strict = SLLMPreprocessor(
        train=True, tokenizer_name_or_path=tokenizer_dir, prompt_template="{speech} go",
        prompt_key="task", target_template={"asr": "{text}", "st": "{text_tgt}"})
    with pytest.raises(KeyError, match=r"utterance x1: no target template for task='qa'.*"
                                       r"\['asr', 'st'\]"):
        strict("x1", utt(task="qa"))
    with pytest.raises(ValueError, match="hyp_marker"):
        SLLMPreprocessor(train=True, tokenizer_name_or_path=tokenizer_dir,
                         prompt_template="{speech}", prompt_key="task", hyp_marker="<tr>",
                         target_template={"asr": "{text}", "st": "{text_tgt}"})
    with pytest.raises(ValueError, match=r"target_template\['st'\]: nested deeper"):
        SLLMPreprocessor(train=True, tokenizer_name_or_path=tokenizer_dir,
                         prompt_template="{speech}", prompt_key="task",
                         target_template={"st": {"en": "{text}"}})
