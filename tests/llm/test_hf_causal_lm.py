import pytest
import torch

from espnet_sllm.llm.hf_causal_lm import HFCausalLM
from espnet_sllm.llm.tokenizer import load_tokenizer

from ..conftest import FAMILIES

SPECIAL = ["<|startofaudio|>", "<|endofaudio|>"]


def _ids(path, text="hello world <|startofaudio|> the cat"):
    tok = load_tokenizer(path, SPECIAL)
    return torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])


@pytest.mark.parametrize("family", FAMILIES)
def test_embed_matches_model_embedding(tiny_llm_dirs, family):
    # Gemma-2 scales inputs_embeds by sqrt(D) inside the model: feeding our embeddings
    # must give exactly what feeding input_ids gives.
    llm = HFCausalLM(tiny_llm_dirs[family]).eval()
    ids = _ids(tiny_llm_dirs[family], "hello world the cat")
    mask = torch.ones_like(ids)
    ref = llm.model(input_ids=ids, attention_mask=mask).logits
    ours = llm(llm.embed(ids), mask)
    torch.testing.assert_close(ours, ref)
    keep = torch.tensor([1, 3])
    torch.testing.assert_close(llm(llm.embed(ids), mask, logits_to_keep=keep), ref[:, keep])


@pytest.mark.parametrize("family", FAMILIES)
def test_freeze_keeps_new_token_rows_trainable(tiny_llm_dirs, family):
    llm = HFCausalLM(tiny_llm_dirs[family], freeze=True, special_tokens=SPECIAL)
    trainable = [n for n, p in llm.named_parameters() if p.requires_grad]
    assert trainable == ["new_token_embeddings"]
    assert llm.n_new == 2 and llm.vocab_size() >= llm.new_start + 2
    ids = _ids(tiny_llm_dirs[family])
    llm(llm.embed(ids), torch.ones_like(ids)).sum().backward()
    assert llm.new_token_embeddings.grad is not None
    assert llm.new_token_embeddings.grad[0].abs().sum() > 0
    # untied: only the row of the token actually used gets a gradient; tied: every added row
    # is also an output row, so the logits reach them all
    assert (llm.new_token_embeddings.grad[1].abs().sum() > 0) == llm.tied


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_trains_only_adapters_and_merge_keeps_logits(tiny_llm_dirs, family, tmp_path):
    targets = ["qkv_proj"] if family == "phi3" else ["q_proj", "k_proj", "v_proj"]
    llm = HFCausalLM(
        tiny_llm_dirs[family], lora_r=4, lora_alpha=8, lora_dropout=0.0,
        lora_target_modules=targets, special_tokens=SPECIAL,
    )
    trainable = [n for n, p in llm.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n == "new_token_embeddings" for n in trainable)
    # make the adapters non-trivial (lora_B starts at zero)
    with torch.no_grad():
        for n, p in llm.named_parameters():
            if "lora_B" in n or n == "new_token_embeddings":
                p.normal_(0, 0.5)
    llm.eval()
    ids = _ids(tiny_llm_dirs[family])
    mask = torch.ones_like(ids)
    before = llm(llm.embed(ids), mask)
    llm.save_pretrained(str(tmp_path / "merged"))
    llm.merge_lora()
    assert not any("lora_" in n for n, _ in llm.named_parameters())
    torch.testing.assert_close(llm(llm.embed(ids), mask), before, atol=1e-4, rtol=1e-4)
    # the merged checkpoint loads back as a plain model with the same behaviour
    reloaded = HFCausalLM(str(tmp_path / "merged"), special_tokens=SPECIAL).eval()
    assert reloaded.vocab_size() == llm.vocab_size()
    torch.testing.assert_close(reloaded(reloaded.embed(ids), mask), before, atol=1e-4, rtol=1e-4)


def test_from_scratch_builds_random_weights(tiny_llm_dirs):
    a = HFCausalLM(tiny_llm_dirs["qwen2"])
    b = HFCausalLM(tiny_llm_dirs["qwen2"], pretrained=False)
    wa = a.model.get_input_embeddings().weight
    wb = b.model.get_input_embeddings().weight
    assert wa.shape == wb.shape and not torch.allclose(wa, wb)


def test_bad_inputs(tiny_llm_dirs, tmp_path):
    with pytest.raises(OSError, match="cannot load"):
        HFCausalLM(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="unknown dtype"):
        HFCausalLM(tiny_llm_dirs["qwen2"], dtype="float8")
    llm = HFCausalLM(tiny_llm_dirs["qwen2"])
    with pytest.raises(ValueError, match="out of range"):
        llm.embed(torch.tensor([[llm.vocab_size()]]))


def test_gradient_checkpointing_reaches_inputs(tiny_llm_dirs):
    llm = HFCausalLM(tiny_llm_dirs["llama"], freeze=True, gradient_checkpointing=True).train()
    ids = _ids(tiny_llm_dirs["llama"], "hello world")
    emb = llm.embed(ids).detach().requires_grad_(True)
    llm(emb, torch.ones_like(ids)).sum().backward()
    assert emb.grad is not None and emb.grad.abs().sum() > 0


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("lora", [False, True])
def test_added_tokens_train_in_spare_rows_and_resized_rows(tiny_llm_dirs, family, lora):
    """Qwen2 and Phi-3 keep spare embedding rows: the added tokens land there, no resize
    happens, and their rows must still be the trainable ones (frozen LLM and LoRA alike)."""
    from transformers import AutoConfig

    rows = AutoConfig.from_pretrained(tiny_llm_dirs[family]).vocab_size
    targets = ["qkv_proj"] if family == "phi3" else ["q_proj"]
    llm = HFCausalLM(tiny_llm_dirs[family], freeze=True, special_tokens=SPECIAL,
                     lora_r=4 if lora else 0, lora_target_modules=targets)
    tok = load_tokenizer(tiny_llm_dirs[family], SPECIAL)
    ids = tok.convert_tokens_to_ids(SPECIAL)
    assert list(range(llm.new_start, llm.new_start + llm.n_new)) == ids
    spare = rows - llm.new_start
    assert llm.vocab_size() == max(rows, llm.new_start + 2)
    assert (spare >= 2) == (family in ("qwen2", "phi3")), "tiny models must copy the real spare rows"
    x = torch.tensor([[3, ids[0], 4, ids[1]]])
    llm.train()
    llm(llm.embed(x), torch.ones_like(x)).float().pow(2).mean().backward()
    grad = llm.new_token_embeddings.grad
    assert grad is not None and grad.shape[0] == 2 and (grad.abs().sum(-1) > 0).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_added_rows_start_at_the_mean(tiny_llm_dirs, family):
    llm = HFCausalLM(tiny_llm_dirs[family], special_tokens=SPECIAL)
    w = llm.model.get_input_embeddings().weight
    mean = w[: llm.new_start].mean(0)
    for r in range(llm.new_start, llm.new_start + llm.n_new):
        torch.testing.assert_close(w[r], mean)


@pytest.mark.parametrize("family", FAMILIES)
def test_learned_rows_equal_hf_own_embedding_and_head(tiny_llm_dirs, family):
    """What `embed` + `logits` compute for added tokens (incl. Gemma-2's sqrt(D) scale and, when
    tied, the output rows) is what the HF model computes from input_ids once the rows are
    written into its matrix, as generate and a saved checkpoint see them."""
    llm = HFCausalLM(tiny_llm_dirs[family], freeze=True, special_tokens=SPECIAL).eval()
    with torch.no_grad():
        llm.new_token_embeddings.normal_(0, 1.0)
    ids = _ids(tiny_llm_dirs[family])
    mask = torch.ones_like(ids)
    ours = llm(llm.embed(ids), mask)
    llm._write_new_rows()
    ref = llm.model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("family", FAMILIES)
def test_merge_and_save_keep_logits_of_every_token(tiny_llm_dirs, family, tmp_path):
    """Tied (Gemma-2, Qwen2) and untied: merged and saved models give the in-memory logits for
    every token id, the learned rows of the added tokens included."""
    from transformers import AutoConfig

    tied = AutoConfig.from_pretrained(tiny_llm_dirs[family]).tie_word_embeddings
    llm = HFCausalLM(tiny_llm_dirs[family], freeze=True, special_tokens=SPECIAL).eval()
    assert llm.tied == tied
    with torch.no_grad():
        llm.new_token_embeddings.normal_(0, 1.0)
    ids = _ids(tiny_llm_dirs[family])
    mask = torch.ones_like(ids)
    before = llm(llm.embed(ids), mask)
    if tied:  # the learned rows are the output rows of the added tokens
        assert not torch.allclose(before[..., llm.new_rows()],
                                  llm.model(input_ids=ids, attention_mask=mask).logits[..., llm.new_rows()])
    llm.save_pretrained(str(tmp_path / "saved"))
    reloaded = HFCausalLM(str(tmp_path / "saved"), special_tokens=SPECIAL).eval()
    # the added tokens are listed in the merged directory: still added (trainable), not re-initialised
    assert reloaded.n_new == 2 and reloaded.n_earlier == 2
    assert reloaded.vocab_size() == llm.vocab_size()
    torch.testing.assert_close(reloaded(reloaded.embed(ids), mask), before)
    llm.merge_lora()
    torch.testing.assert_close(llm(llm.embed(ids), mask), before)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("lora", [False, True])
def test_beam_search_prefill_once_equals_transformers(tiny_llm_dirs, family, lora):
    """Beam search with the prompt prefilled once per utterance (its cache repeated per beam)
    gives transformers' own hypotheses and scores, left padding and added-token rows included."""
    targets = ["qkv_proj"] if family == "phi3" else ["q_proj", "v_proj"]
    llm = HFCausalLM(tiny_llm_dirs[family], freeze=True, special_tokens=SPECIAL,
                     lora_r=4 if lora else 0, lora_target_modules=targets).eval()
    with torch.no_grad():
        if llm.new_token_embeddings is not None:  # trained rows, not the initial mean
            llm.new_token_embeddings.normal_(0, 0.5)
        for n, p in llm.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    ids = _ids(tiny_llm_dirs[family])
    emb = llm.embed(torch.cat([ids, ids.flip(1), ids], 0)).detach()
    mask = torch.ones(emb.shape[:2], dtype=torch.long)
    mask[1, :2], mask[2, :4] = 0, 0  # left padding
    emb = emb * mask.unsqueeze(-1)
    out = [llm.generate(emb, mask, prefill_once=once, num_beams=3, max_new_tokens=6,
                        do_sample=False, output_scores=True, return_dict_in_generate=True)
           for once in (False, True)]
    assert torch.equal(out[0].sequences, out[1].sequences)
    assert torch.allclose(out[0].sequences_scores, out[1].sequences_scores, atol=1e-5)
