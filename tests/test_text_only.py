"""Text-only utterances beside speech ones (issue #11 §2): a row without audio (speech_lengths 0)
skips the encoder and projector, gets 0 speech frames, and a mixed batch gives each utterance
what it gives alone (loss and hypotheses)."""
import numpy as np
import pytest
import torch

from espnet_sllm.tasks.sllm import SLLMTask, StatsOnlyModel
from espnet_sllm.testing.configs import config_to_args, tiny_sllm_config

ENCODERS = [("conformer", False), ("whisper_hf", False), ("whisper_hf", True)]
TEMPLATES = {"asr": "{speech} Transcribe speech to text.",
             "qa": "{speech}Question: {text_src} Answer:"}


def config(tiny_llm_dirs, tiny_whisper_dir, encoder="conformer", pad=False, **model_conf):
    cfg = tiny_sllm_config(tiny_llm_dirs["qwen2"], encoder, tiny_whisper_dir, pad)
    cfg["preprocessor_conf"] = {"prompt_key": "task", "prompt_template": TEMPLATES,
                                "text_only_tasks": ["qa"]}
    cfg["model_conf"].update(model_conf)
    return cfg


def build(cfg):
    args = config_to_args(cfg)
    torch.manual_seed(0)
    model = SLLMTask.build_model(args)
    model.eval()
    return (model, SLLMTask.build_preprocess_fn(args, True),
            SLLMTask.build_preprocess_fn(args, False), SLLMTask.build_collate_fn(args, True))


def utterances(pre, n_audio=(8000, 12800), n_text=2, seed=0, with_text=True):
    """Audio utterances (task asr) of the given sample counts and text-only ones (task qa),
    interleaved so that text-only rows sit between and around the audio rows."""
    rng = np.random.RandomState(seed)
    targets = ["hello world", "the cat sat on the mat", "one two three four five", "red fish"]
    items = []
    for i in range(max(len(n_audio), n_text)):
        if i < n_text:
            data = {"speech": np.zeros(0, np.float32), "task": "qa",
                    "text_src": f"what is {targets[(i + 1) % 4]}"}
            if with_text:
                data["text"] = targets[i % 4]
            items.append((f"t{i}", pre(f"t{i}", data)))
        if i < len(n_audio):
            data = {"speech": rng.randn(n_audio[i]).astype(np.float32), "task": "asr",
                    "text_src": "-"}
            if with_text:
                data["text"] = targets[(i + 2) % 4]
            items.append((f"a{i}", pre(f"a{i}", data)))
    return items


def token_weighted_mean(model, collate, items, key="loss_ce"):
    """The batch's token-mean CE recombined from each utterance alone (its targets incl. EOS)."""
    total, count = 0.0, 0
    for item in items:
        n = len(item[1]["text"])
        total += float(model(**collate([item])[1])[1][key]) * n
        count += n
    return total / count


@pytest.mark.parametrize("encoder,pad", ENCODERS)
def test_mixed_batch_loss_equals_each_alone(tiny_llm_dirs, tiny_whisper_dir, encoder, pad):
    model, pre, _, collate = build(config(tiny_llm_dirs, tiny_whisper_dir, encoder, pad,
                                          ctc_weight=0.3))
    # One audio utterance among text-only ones: the audio sub-batch is that utterance alone, so
    # the equality holds for every encoder (ESPnet's Conv2dSubsampling can give an utterance
    # padded by a longer batch mate a frame more, which the audio-only test below avoids).
    items = utterances(pre, n_audio=(8000,), n_text=2)
    batch = collate(items)[1]
    assert batch["speech_lengths"].tolist() == [0, 8000, 0]
    with torch.no_grad():
        _, stats, weight = model(**batch)
        assert int(weight) == 3
        assert float(stats["loss_ce"]) == pytest.approx(
            token_weighted_mean(model, collate, items), abs=1e-5)
        # CTC covers the audio row only: the batch's CTC loss is that utterance's alone.
        alone = model(**collate([items[1]])[1])[1]
        assert float(stats["loss_ctc"]) == pytest.approx(float(alone["loss_ctc"]), abs=1e-5)
        for item in (items[0], items[2]):  # a batch of one text-only row: no CTC at all
            assert torch.isnan(model(**collate([item])[1])[1]["loss_ctc"])


def test_mixed_batch_of_several_audio_rows(tiny_llm_dirs, tiny_whisper_dir):
    """Whisper on the real length is batch-invariant: several audio rows of different lengths
    between text-only rows give the same CE and CTC as each utterance alone."""
    model, pre, _, collate = build(config(tiny_llm_dirs, tiny_whisper_dir, "whisper_hf",
                                          ctc_weight=0.3))
    items = utterances(pre, n_audio=(8000, 12800, 5600), n_text=3)
    with torch.no_grad():
        stats = model(**collate(items)[1])[1]
        assert float(stats["loss_ce"]) == pytest.approx(
            token_weighted_mean(model, collate, items), abs=1e-5)
        audio = [it for it in items if it[0].startswith("a")]
        ctc_alone = [float(model(**collate([it])[1])[1]["loss_ctc"]) for it in audio]
        # ESPnet's CTC is the mean over the rows it sees: the audio rows
        # a float32 loss near 65: its rounding step there is 7.6e-6, so a relative bound
        assert float(stats["loss_ctc"]) == pytest.approx(np.mean(ctc_alone), rel=1e-6)


@pytest.mark.parametrize("encoder,pad", ENCODERS)
@pytest.mark.parametrize("beams", [1, 2])
def test_mixed_batch_decodes_as_each_alone(tiny_llm_dirs, tiny_whisper_dir, encoder, pad, beams):
    model, _, pre_inf, collate = build(config(tiny_llm_dirs, tiny_whisper_dir, encoder, pad))
    # Two audio rows of different lengths: decoding encodes batch-invariantly, ESPnet's
    # conformer too (encoders/batch_invariance.py).
    items = utterances(pre_inf, n_audio=(8000, 12800), n_text=2, with_text=False)
    # The audio budgets (10 + ceil(s * 12) = 16 and 20) are below max_new_tokens; a text-only
    # row's is max_new_tokens, so random weights run it to 30 tokens.
    kw = dict(num_beams=beams, max_new_tokens=30, max_tokens_per_second=12.0)
    batched = model.generate(**collate(items)[1], **kw)
    for item, (ids, score) in zip(items, batched):
        ids1, score1 = model.generate(**collate([item])[1], **kw)[0]
        assert ids == ids1, item[0]
        assert score == pytest.approx(score1, abs=1e-4), item[0]


def test_text_only_budget_is_max_new_tokens(tiny_llm_dirs, tiny_whisper_dir):
    model, _, pre_inf, collate = build(config(tiny_llm_dirs, tiny_whisper_dir))
    items = utterances(pre_inf, n_audio=(8000,), n_text=1, with_text=False)  # t0, a0
    limits = []
    from espnet_sllm.decoding import limits as limits_module

    orig = limits_module.PerUtteranceLengthLimit

    class Spy(orig):
        def __init__(self, lims, *args, **kw):
            limits.append(list(lims))
            super().__init__(lims, *args, **kw)

    limits_module.PerUtteranceLengthLimit = Spy
    try:
        model.generate(**collate(items)[1], max_new_tokens=50, max_tokens_per_second=12.0)
    finally:
        limits_module.PerUtteranceLengthLimit = orig
    # 0.5 s of audio: 10 + ceil(0.5 * 12) = 16; the text-only row: max_new_tokens, not 10
    assert limits == [[50, 16]]


def test_encoder_not_called_without_audio(tiny_llm_dirs, tiny_whisper_dir):
    model, pre, pre_inf, collate = build(config(tiny_llm_dirs, tiny_whisper_dir, ctc_weight=0.3))
    calls = {"encoder": [], "projector": [], "frontend": []}
    for name in calls:
        module = getattr(model, name)
        module.register_forward_hook(
            lambda m, args, out, name=name: calls[name].append(args[0].shape[0]))
    text_items = [it for it in utterances(pre, n_text=3) if it[0].startswith("t")]
    with torch.no_grad():
        loss, stats, _ = model(**collate(text_items)[1])
    assert calls == {"encoder": [], "projector": [], "frontend": []}
    assert torch.isfinite(loss) and torch.isnan(stats["loss_ctc"]) and "loss_ce" in stats
    emb, emb_lens, enc, enc_lens = model.speech_embeddings(
        torch.zeros(3, 0), torch.zeros(3, dtype=torch.long))
    assert emb.shape == (3, 0, model.llm.hidden_size()) and emb.dtype == torch.float32
    assert enc.shape == (3, 0, model.encoder.output_size()) and emb_lens.tolist() == [0, 0, 0]
    text_inf = [it for it in utterances(pre_inf, n_text=2, with_text=False)
                if it[0].startswith("t")]
    assert len(model.generate(**collate(text_inf)[1], max_new_tokens=5)) == 2
    assert calls == {"encoder": [], "projector": [], "frontend": []}
    # A mixed batch: the audio rows only (2 of 5), trimmed to their longest.
    with torch.no_grad():
        model(**collate(utterances(pre, n_text=3))[1])
    assert calls == {"encoder": [2], "projector": [2], "frontend": [2]}


def test_training_step_with_text_only_rows(tiny_llm_dirs, tiny_whisper_dir):
    """Backward through a mixed batch and a text-only batch; the LID head and its loss see the
    audio rows only, and a batch without audio reports NaN for them (same stats keys)."""
    cfg = config(tiny_llm_dirs, tiny_whisper_dir, ctc_weight=0.3,
                 aux_heads={"lid": {"input": "encoder"}}, aux_weights={"lid": 0.1})
    cfg["languages"] = ["en", "fr"]
    model, pre, _, collate = build(cfg)
    model.train()
    items = []
    for uid, item in utterances(pre, n_text=2):
        items.append((uid, dict(item, lang_id=np.asarray([0 if uid.startswith("t") else 1]))))
    seen = []
    head = model.aux_heads["lid"]
    head.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
    loss, stats, _ = model(**collate(items)[1])
    loss.backward()
    assert seen == [2] and float(stats["acc_lid"]) in (0.0, 0.5, 1.0)
    assert all(p.grad is not None for p in model.projector.parameters())
    text_items = [it for it in items if it[0].startswith("t")]
    loss2, stats2, _ = model(**collate(text_items)[1])
    assert set(stats2) == set(stats)
    assert all(torch.isnan(stats2[k]) for k in ("loss_ctc", "loss_lid", "acc_lid"))
    model.zero_grad()
    loss2.backward()  # CE alone: the LLM trains, the encoder side has no gradient
    assert all(p.grad is None for p in model.projector.parameters())


def test_ctc_only_refuses_text_only_rows(tiny_llm_dirs, tiny_whisper_dir):
    model, pre, _, collate = build(config(tiny_llm_dirs, tiny_whisper_dir, ctc_weight=1.0))
    with pytest.raises(ValueError, match="ctc_weight 1.0 trains CTC alone"):
        model(**collate(utterances(pre, n_text=1))[1])


def test_collect_feats_counts_audio_rows_only(tiny_llm_dirs, tiny_whisper_dir):
    model, pre, _, collate = build(config(tiny_llm_dirs, tiny_whisper_dir))
    stats_model = StatsOnlyModel(model.frontend)
    items = utterances(pre, n_audio=(8000, 12800), n_text=2)
    batch = collate(items)[1]
    for m in (stats_model, model):
        out = m.collect_feats(batch["speech"], batch["speech_lengths"])
        lens = out["feats_lengths"].tolist()
        assert lens[0] == 0 and lens[2] == 0 and lens[1] > 0 and lens[3] > lens[1]
        for b, item in ((1, items[1]), (3, items[3])):
            one = collate([item])[1]
            alone = m.collect_feats(one["speech"], one["speech_lengths"])
            n = int(alone["feats_lengths"][0])
            assert lens[b] == n
            if b == 3:  # the longest row: the same padding as alone
                torch.testing.assert_close(out["feats"][b, :n], alone["feats"][0, :n])
        text_only = collate([items[0], items[2]])[1]
        out = m.collect_feats(text_only["speech"], text_only["speech_lengths"])
        assert out["feats"].shape == (2, 0, 40) and out["feats_lengths"].tolist() == [0, 0]


# ------------------------------------------------------------------------------ preprocessor


def test_preprocessor_errors_name_the_utterance(tiny_llm_dirs, tiny_whisper_dir):
    _, pre, _, _ = build(config(tiny_llm_dirs, tiny_whisper_dir))
    with pytest.raises(ValueError, match=r"utterance q7: task 'qa' is text-only .*\['qa'\].*"
                                         r"has audio \(1600 samples\)"):
        pre("q7", {"speech": np.zeros(1600, np.float32), "task": "qa", "text": "x",
                   "text_src": "y"})
    with pytest.raises(ValueError, match=r"utterance s3: no audio .* task 'asr' is not a "
                                         r"text-only task .*\['qa'\]"):
        pre("s3", {"speech": np.zeros(0, np.float32), "task": "asr", "text": "x",
                   "text_src": "y"})
    with pytest.raises(ValueError, match=r"utterance s4: no audio .* no 'task' field"):
        pre("s4", {"speech": np.zeros(0, np.float32), "text": "x", "text_src": "y"})
    # Without text_only_tasks an empty speech is an error, as before.
    cfg = tiny_sllm_config(tiny_llm_dirs["qwen2"])
    plain = SLLMTask.build_preprocess_fn(config_to_args(cfg), True)
    with pytest.raises(ValueError, match=r"utterance u1: no audio"):
        plain("u1", {"speech": np.zeros(0, np.float32), "text": "x"})
    with pytest.raises(ValueError, match="text_only_tasks must be task names"):
        cfg["preprocessor_conf"]["text_only_tasks"] = ["qa", ""]
        SLLMTask.build_preprocess_fn(config_to_args(cfg), True)


def test_preprocessor_text_only_output(tiny_llm_dirs, tiny_whisper_dir):
    cfg = config(tiny_llm_dirs, tiny_whisper_dir)
    cfg["preprocessor_conf"].update(text_only_tasks="qa", target_template="{text}",
                                    ctc_text_name="text_src")
    pre = SLLMTask.build_preprocess_fn(config_to_args(cfg), True)
    out = pre("t1", {"speech": np.zeros(0, np.float32), "task": "qa", "text": "red fish",
                     "text_src": "what swims"})
    assert out["speech"].shape == (0,) and out["ctc_text"].shape == (0,)
    # {speech} opens the qa template: the prefix is BOS only (if any), the question follows
    assert out["prefix"].tolist() == list(pre.bos)
    assert out["suffix"].tolist() == pre.encode("Question: what swims Answer:").tolist()
    assert out["text"][-1] == pre.tokenizer.eos_token_id
    audio = pre("a1", {"speech": np.ones(800, np.float32), "task": "asr", "text": "red fish",
                       "text_src": "red fish"})
    assert audio["speech"].shape == (800,) and len(audio["ctc_text"]) > 0
