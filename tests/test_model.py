import numpy as np
import pytest
import torch

from espnet_sllm.model import IGNORE_ID
from espnet_sllm.tasks.sllm import SLLMTask
from espnet_sllm.testing.configs import config_to_args, tiny_sllm_config

from .conftest import FAMILIES

ENCODERS = [("conformer", False), ("whisper_hf", True), ("whisper_hf", False)]


def build(tiny_llm_dirs, tiny_whisper_dir, family="qwen2", encoder="conformer", pad=False, **kw):
    args = config_to_args(
        tiny_sllm_config(tiny_llm_dirs[family], encoder, tiny_whisper_dir, pad, **kw)
    )
    torch.manual_seed(0)
    model = SLLMTask.build_model(args)
    return model, SLLMTask.build_preprocess_fn(args, True), SLLMTask.build_collate_fn(args, True)


def make_batch(pre, collate, n=3, seed=0, texts=None):
    rng = np.random.RandomState(seed)
    texts = texts or ["hello world", "the cat sat on the mat", "one two three four five"]
    items = [
        (f"utt{i}", pre(f"utt{i}", {"speech": rng.randn(8000 + 2400 * i).astype(np.float32),
                                     "text": texts[i % len(texts)], "lang": "en"}))
        for i in range(n)
    ]
    return items, collate(items)[1]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("encoder,pad", ENCODERS)
def test_forward_backward(tiny_llm_dirs, tiny_whisper_dir, family, encoder, pad):
    model, pre, collate = build(tiny_llm_dirs, tiny_whisper_dir, family, encoder, pad,
                                ctc_weight=0.3)
    model.train()
    _, batch = make_batch(pre, collate)
    loss, stats, weight = model(**batch)
    assert torch.isfinite(loss).all() and int(weight) == 3
    assert 0.0 <= float(stats["acc"]) <= 1.0
    assert {"loss", "loss_ce", "loss_ctc", "acc"} <= set(stats)
    loss.sum().backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None or name.startswith("encoder"), name
        else:
            assert p.grad is None, name
    frozen_encoder = encoder == "whisper_hf"
    assert all(not p.requires_grad for p in model.encoder.parameters()) == frozen_encoder
    assert all(p.grad is not None for p in model.projector.parameters())


def test_splice_labels_and_padding_invariance(tiny_llm_dirs, tiny_whisper_dir):
    model, pre, collate = build(tiny_llm_dirs, tiny_whisper_dir, "gemma2", "whisper_hf", False)
    model.eval()
    items, batch = make_batch(pre, collate)
    emb, emb_lens, _, _ = model.speech_embeddings(batch["speech"], batch["speech_lengths"])
    _, mask, labels = model.splice(emb, emb_lens, batch["prefix"], batch["prefix_lengths"],
                                   batch["suffix"], batch["suffix_lengths"], batch["text"],
                                   batch["text_lengths"])
    for b in range(3):
        n_ctx = int(batch["prefix_lengths"][b] + emb_lens[b] + batch["suffix_lengths"][b])
        n_tgt = int(batch["text_lengths"][b])
        assert (labels[b, :n_ctx] == IGNORE_ID).all()
        assert labels[b, n_ctx:n_ctx + n_tgt].tolist() == items[b][1]["text"].tolist()
        assert labels[b, n_ctx + n_tgt - 1] == model.llm.eos_token_id
        assert (labels[b, n_ctx + n_tgt:] == IGNORE_ID).all()
        assert int(mask[b].sum()) == n_ctx + n_tgt and mask[b, : n_ctx + n_tgt].all()
    # the loss of one utterance does not depend on the padding its batch mates force on it
    with torch.no_grad():
        alone = model(**collate([items[0]])[1])[1]["loss"]
        for other in (1, 2):
            pair = model(**collate([items[0], items[other]])[1])[1]
            single_other = model(**collate([items[other]])[1])[1]
            # token-mean over both utterances: recombine from per-utterance sums
            n0, n1 = len(items[0][1]["text"]), len(items[other][1]["text"])
            expect = (alone * n0 + single_other["loss"] * n1) / (n0 + n1)
            torch.testing.assert_close(pair["loss"], expect, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("beams", [1, 3])
def test_batched_decoding_equals_single(tiny_llm_dirs, tiny_whisper_dir, family, beams):
    """A batch decodes to exactly what each utterance decodes to alone, for every LLM family,
    with a different token budget per utterance in the batch (so a batch-wide limit fails)."""
    model, pre, collate = build(tiny_llm_dirs, tiny_whisper_dir, family, "whisper_hf", False)
    model.eval()
    pre_inf = SLLMTask.build_preprocess_fn(config_to_args(tiny_sllm_config(
        tiny_llm_dirs[family], "whisper_hf", tiny_whisper_dir, False)), False)
    rng = np.random.RandomState(1)
    samples = [4000 + 1500 * i for i in range(6)]
    items = [(f"u{i}", pre_inf(f"u{i}", {"speech": rng.randn(n).astype(np.float32)}))
             for i, n in enumerate(samples)]
    rate = 12.0
    budgets = [10 + int(np.ceil(n / 16000 * rate)) for n in samples]
    assert len(set(budgets)) == len(budgets)
    kw = dict(num_beams=beams, max_new_tokens=40, max_tokens_per_second=rate,
              no_repeat_ngram_size=3)
    batched = model.generate(**collate(items)[1], **kw)
    for item, budget, (ids, score) in zip(items, budgets, batched):
        ids1, score1 = model.generate(**collate([item])[1], **kw)[0]
        assert ids == ids1
        assert score == pytest.approx(score1, abs=1e-4)
        # EOS counts in the budget, so at most budget - 1 text tokens come back
        assert len(ids) <= budget - 1
    # random weights rarely say EOS: most utterances run to their own, different, budgets
    assert len({len(ids) for ids, _ in batched}) > 1


def test_per_utterance_length_limit_forces_eos():
    from espnet_sllm.decoding.limits import PerUtteranceLengthLimit

    proc = PerUtteranceLengthLimit([3, 5], num_beams=2, eos_token_id=7)
    scores = torch.randn(4, 10)
    out = proc(torch.zeros(4, 2, dtype=torch.long), scores.clone())
    # utterance 0 (rows 0, 1) has used 2 of its 3 tokens: only EOS remains possible
    assert torch.isinf(out[:2]).sum() == 2 * 9 and torch.equal(out[:2, 7], scores[:2, 7])
    torch.testing.assert_close(out[2:], scores[2:])


def test_lora_model_trains_only_adapters_and_projector(tiny_llm_dirs, tiny_whisper_dir):
    model, pre, collate = build(
        tiny_llm_dirs, tiny_whisper_dir, "llama", "whisper_hf", True,
        llm_extra={"lora_r": 4, "lora_alpha": 8, "special_tokens": ["<|audio|>"]},
        prompt_template="<|audio|>{speech} Transcribe speech to text.",
    )
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(n.startswith("projector.") or "lora_" in n or n.endswith("new_token_embeddings")
               for n in trainable)
    assert any("lora_" in n for n in trainable) and any(n.startswith("projector") for n in trainable)
    _, batch = make_batch(pre, collate)
    model(**batch)[0].sum().backward()
    assert model.llm.new_token_embeddings.grad.abs().sum() > 0


def test_bad_inputs(tiny_llm_dirs, tiny_whisper_dir):
    with pytest.raises(ValueError, match="must be one of"):
        SLLMTask.build_model(config_to_args(tiny_sllm_config(
            tiny_llm_dirs["qwen2"], "no_such_encoder")))
    model, pre, collate = build(tiny_llm_dirs, tiny_whisper_dir, "qwen2", "whisper_hf", True)
    with pytest.raises(ValueError, match="empty text"):
        pre("bad", {"speech": np.zeros(1600, np.float32), "text": "  "})
    with pytest.raises(ValueError, match="30"):
        long = pre("long", {"speech": np.zeros(16000 * 31, np.float32), "text": "hello"})
        model(**collate([("long", long)])[1])
    with pytest.raises(ValueError, match="projector_conf.output_size"):
        cfg = tiny_sllm_config(tiny_llm_dirs["qwen2"], "conformer")
        cfg["projector_conf"]["output_size"] = 7
        SLLMTask.build_model(config_to_args(cfg))
    with pytest.raises(ValueError, match="exactly one"):
        SLLMTask.build_preprocess_fn(config_to_args(tiny_sllm_config(
            tiny_llm_dirs["qwen2"], prompt_template="no placeholder")), True)


def test_loss_computes_logits_only_at_target_positions(tiny_llm_dirs, tiny_whisper_dir):
    """The CE loss gathers the target positions before the LM head: logits rows = target tokens
    (+ EOS), in chunks of at most logits_chunk, and the loss equals CE over full logits."""
    import torch.nn.functional as F

    model, pre, collate = build(tiny_llm_dirs, tiny_whisper_dir, "gemma2", "conformer", False)
    model.logits_chunk = 5
    model.eval()
    _, batch = make_batch(pre, collate)
    rows = []
    orig = model.llm.logits
    model.llm.logits = lambda h: (rows.append(h.shape[0]), orig(h))[1]
    loss, stats, _ = model(**batch)
    n_targets = int(batch["text_lengths"].sum())
    assert sum(rows) == n_targets and max(rows) <= 5 and len(rows) == -(-n_targets // 5)
    del model.llm.logits
    emb, emb_lens, _, _ = model.speech_embeddings(batch["speech"], batch["speech_lengths"])
    embeds, mask, labels = model.splice(emb, emb_lens, batch["prefix"], batch["prefix_lengths"],
                                        batch["suffix"], batch["suffix_lengths"], batch["text"],
                                        batch["text_lengths"])
    full = model.llm(embeds, mask).float()
    ref = F.cross_entropy(full[:, :-1].reshape(-1, full.size(-1)), labels[:, 1:].reshape(-1),
                          ignore_index=IGNORE_ID)
    torch.testing.assert_close(stats["loss_ce"].reshape(()), ref.detach(), atol=1e-5, rtol=1e-5)
