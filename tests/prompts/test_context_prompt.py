import numpy as np
import pytest

from espnet_sllm.prompts.preprocessor import SLLMPreprocessor
from espnet_sllm.prompts.template import ContextPrompt, PromptSelector

CTX = {
    "default": {"history": "The previous context is: {text_prev}. ",
                "future": "The following context is: {text_next}. "},
    "Japanese": {"history": "前の文脈は「{text_prev}」です。", "future": "次の文脈は「{text_next}」です。"},
}


@pytest.mark.parametrize(
    "prev,nxt,expect",
    [
        ("", "", ""),
        ("hello there", "", "The previous context is: hello there. "),
        ("", "bye now", "The following context is: bye now. "),
        ("a b", "c d", "The previous context is: a b. The following context is: c d. "),
    ],
)
def test_context_cases(prev, nxt, expect):
    assert ContextPrompt(CTX).render("English-American", {"text_prev": prev, "text_next": nxt}) == expect


def test_language_specific_and_history_only():
    assert ContextPrompt(CTX).render("Japanese", {"text_prev": "はい", "text_next": ""}) == "前の文脈は「はい」です。"
    history_only = ContextPrompt({"default": {"history": "Before: {text_prev}. "}})
    assert history_only.render("French", {"text_prev": "oui", "text_next": "non"}) == "Before: oui. "
    with pytest.raises(ValueError, match="must contain"):
        ContextPrompt({"default": {"history": "no field"}})
    with pytest.raises(ValueError, match="unknown side"):
        ContextPrompt({"default": {"past": "{text_prev}"}})


def test_prompt_selection_per_language():
    sel = PromptSelector({"English": "{speech} Transcribe speech to text.",
                          "French": "{speech} Transcrivez la parole en texte.",
                          "default": "{speech} x"})
    assert sel.select("English-British").render({})[1] == " Transcribe speech to text."
    assert sel.select("French").render({})[1] == " Transcrivez la parole en texte."
    assert sel.select("Thai").render({})[1] == " x"
    with pytest.raises(KeyError, match="no prompt template"):
        PromptSelector({"English": "{speech}"}).select("Thai")


def test_preprocessor_context_and_masking(tiny_llm_dirs):
    # the tiny test tokenizer knows lowercase words only
    common = dict(tokenizer_name_or_path=tiny_llm_dirs["qwen2"],
                  prompt_template="{speech} {context}transcribe speech to text",
                  context_templates={"default": {"history": "the previous {text_prev} ",
                                                 "future": "the following {text_next} "}})
    speech = np.zeros(1600, np.float32)
    data = {"speech": speech, "text": "the cat", "lang": "English",
            "text_prev": "one two three four five six seven eight nine ten", "text_next": ""}
    infer = SLLMPreprocessor(train=False, **common)
    tok = infer.tokenizer
    out = infer("u1", dict(data))
    suffix = tok.decode(out["suffix"].tolist())
    assert "the previous one two three" in suffix and "following" not in suffix
    # no context files at all (context-agnostic first pass): the plain instruction
    plain = infer("u1", {"speech": speech, "text": "the cat", "lang": "English"})
    assert tok.decode(plain["suffix"].tolist()).strip() == "transcribe speech to text"
    # masking happens in training only, and sometimes changes the history
    train = SLLMPreprocessor(train=True, context_masking=True, **common)
    suffixes = {tuple(train("u1", dict(data))["suffix"].tolist()) for _ in range(40)}
    assert len(suffixes) > 1 and tuple(out["suffix"].tolist()) in suffixes
    assert {tuple(infer("u1", dict(data))["suffix"].tolist()) for _ in range(5)} == {
        tuple(out["suffix"].tolist())}
