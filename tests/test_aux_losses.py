"""Auxiliary losses: (1-α)·CE + α·CTC + Σ βᵢ·auxᵢ, the LID head, encoder aux outputs, CTC only."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from espnet_sllm.aux_losses import LIDHead, masked_mean
from espnet_sllm.model import ESPnetSLLMModel
from espnet_sllm.tasks.sllm import SLLMTask
from espnet_sllm.testing.configs import config_to_args, tiny_sllm_config

LANGS = ["en", "de", "fr"]


def build(tiny_llm_dirs, encoder="conformer", whisper_dir=None, languages=LANGS, ctc_weight=0.0,
          **model_conf):
    cfg = tiny_sllm_config(tiny_llm_dirs["qwen2"], encoder, whisper_dir, ctc_weight=ctc_weight)
    cfg["model_conf"].update(model_conf)
    if languages is not None:
        cfg["languages"] = languages
    args = config_to_args(cfg)
    torch.manual_seed(0)
    model = SLLMTask.build_model(args)
    return model, SLLMTask.build_preprocess_fn(args, True), SLLMTask.build_collate_fn(args, True)


def make_batch(pre, collate, langs=("de", "en", "fr"), seed=0):
    rng = np.random.RandomState(seed)
    texts = ["hello world", "the cat sat on the mat", "one two three four five"]
    items = [(f"utt{i}", pre(f"utt{i}", {"speech": rng.randn(8000 + 2400 * i).astype(np.float32),
                                         "text": texts[i % 3], "lang": lang}))
             for i, lang in enumerate(langs)]
    return items, collate(items)[1]


def test_masked_mean_and_lid_head_by_hand():
    x = torch.randn(2, 5, 4)
    lens = torch.tensor([5, 2])
    pooled = masked_mean(x, lens)
    torch.testing.assert_close(pooled[0], x[0].mean(0))
    torch.testing.assert_close(pooled[1], x[1, :2].mean(0))
    head = LIDHead(input_size=4, languages=LANGS)
    logits = head(x, lens)["lid"]
    assert logits.shape == (2, 3)
    torch.testing.assert_close(logits, pooled @ head.linear.weight.T + head.linear.bias)
    # padding frames do not change the logits
    x2 = x.clone()
    x2[1, 2:] = 1e3
    torch.testing.assert_close(head(x2, lens)["lid"], logits)
    with pytest.raises(ValueError, match="languages"):
        LIDHead(input_size=4, languages=None)


@pytest.mark.parametrize("ctc_weight", [0.0, 0.3])
def test_loss_composition_and_stats(tiny_llm_dirs, ctc_weight):
    beta = 0.05
    model, pre, collate = build(tiny_llm_dirs, ctc_weight=ctc_weight,
                                aux_heads={"lid": {"input": "encoder"}},
                                aux_weights={"lid": beta})
    assert model.languages == LANGS == pre.languages
    model.train()
    _, batch = make_batch(pre, collate)
    assert batch["lang_id"].view(-1).tolist() == [1, 0, 2]
    loss, stats, _ = model(**batch)
    keys = {"loss", "loss_ce", "acc", "loss_lid", "acc_lid"} | (
        {"loss_ctc"} if ctc_weight else set())
    assert set(stats) == keys
    # exactly the composition, in the model's order of summation
    expect = 0.0 + (1 - ctc_weight) * stats["loss_ce"]
    if ctc_weight:
        expect = expect + ctc_weight * stats["loss_ctc"]
    expect = expect + beta * stats["loss_lid"]
    assert torch.equal(stats["loss"], expect) and torch.equal(loss.detach(), expect)
    # the LID loss is CE of the head's logits on the encoder output against lang_id
    model.eval()
    with torch.no_grad():
        _, stats_eval, _ = model(**batch)
        enc, enc_lens = model.encode(batch["speech"], batch["speech_lengths"])
        logits = model.aux_heads["lid"](enc, enc_lens)["lid"]
    lang_id = batch["lang_id"].view(-1)
    torch.testing.assert_close(stats_eval["loss_lid"].reshape(()),
                               F.cross_entropy(logits, lang_id))
    torch.testing.assert_close(stats_eval["acc_lid"].reshape(()),
                               (logits.argmax(-1) == lang_id).float().mean())
    # gradients reach the head
    model.train()
    model(**batch)[0].backward()
    assert model.aux_heads["lid"].linear.weight.grad.abs().sum() > 0


def test_unweighted_head_is_logged_not_trained(tiny_llm_dirs):
    model, pre, collate = build(tiny_llm_dirs, aux_heads={"lid": {"input": "projector"}})
    _, batch = make_batch(pre, collate)
    loss, stats, _ = model(**batch)
    assert {"loss_lid", "acc_lid"} <= set(stats)
    assert torch.equal(stats["loss"], 0.0 + 1.0 * stats["loss_ce"])
    loss.backward()
    assert model.aux_heads["lid"].linear.weight.grad is None
    assert model.aux_heads["lid"].linear.in_features == model.projector.output_size()


class ToyFusionEncoder(torch.nn.Module):
    """The shape of Ideal-LLM's dual encoder: returns LID logits and language weights w' as
    auxiliary outputs in place of ESPnet's ``states``, and reads lang_id (oracle selection)."""

    aux_output_names = ("lid", "lang_weight")

    def __init__(self, input_size: int = 1, languages=None, size: int = 16):
        super().__init__()
        self.languages = languages
        self.proj = torch.nn.Linear(400, size)
        self.lid = torch.nn.Linear(size, len(languages))
        self.weights = torch.nn.Parameter(torch.zeros(len(languages)))
        self.seen_lang_id = []

    def output_size(self) -> int:
        return self.proj.out_features

    def forward(self, xs, ilens, prev_states=None, lang_id=None):
        self.seen_lang_id.append(lang_id)
        T = xs.size(1) // 400
        ys = self.proj(xs[:, : T * 400].reshape(xs.size(0), T, 400))
        olens = ilens // 400
        logits = self.lid(masked_mean(ys, olens))
        w = torch.sigmoid(self.weights[logits.argmax(-1)])
        return ys, olens, {"lid": logits, "lang_weight": w}


def test_encoder_aux_outputs(tiny_llm_dirs, monkeypatch):
    from espnet_sllm.tasks import sllm

    monkeypatch.setitem(sllm.encoder_choices.classes, "toy_fusion", ToyFusionEncoder)
    model, pre, collate = build(tiny_llm_dirs, "toy_fusion", aux_weights={"lid": 0.05})
    assert model.encoder.languages == LANGS  # the task option reaches the encoder
    _, batch = make_batch(pre, collate)
    loss, stats, _ = model(**batch)
    assert set(stats) == {"loss", "loss_ce", "acc", "loss_lid", "acc_lid", "lang_weight"}
    assert float(stats["lang_weight"]) == pytest.approx(0.5)  # sigmoid(0)
    assert torch.equal(stats["loss"], 0.0 + 1.0 * stats["loss_ce"] + 0.05 * stats["loss_lid"])
    assert model.encoder.seen_lang_id[-1].tolist() == [1, 0, 2]
    # generate passes lang_id too, and runs without
    model.eval()
    gen = {k: batch[k] for k in ("speech", "speech_lengths", "prefix", "prefix_lengths",
                                 "suffix", "suffix_lengths")}
    n_seen = len(model.encoder.seen_lang_id)
    out = model.generate(**gen, lang_id=batch["lang_id"], max_new_tokens=3)
    # decoding encodes batch-invariantly: an encoder of unknown structure runs one row at a
    # time, each with its own language
    calls = model.encoder.seen_lang_id[n_seen:]
    assert len(out) == 3 and torch.cat(calls).tolist() == [1, 0, 2]
    assert model.generate(**gen, max_new_tokens=3) == out
    assert model.encoder.seen_lang_id[-1] is None


def test_ctc_only_does_not_run_the_llm(tiny_llm_dirs):
    model, pre, collate = build(tiny_llm_dirs, ctc_weight=1.0, ctc_input="encoder")
    assert model.ctc_only
    calls = []
    for name in ("hidden_states", "forward", "embed", "logits"):
        orig = getattr(model.llm, name)
        setattr(model.llm, name,
                lambda *a, _o=orig, _n=name, **k: (calls.append(_n), _o(*a, **k))[1])
    model.train()
    _, batch = make_batch(pre, collate)
    loss, stats, _ = model(**batch)
    assert calls == []
    assert set(stats) == {"loss", "loss_ctc", "acc"}
    assert torch.equal(stats["loss"], 0.0 + 1.0 * stats["loss_ctc"])
    loss.backward()
    assert model.ctc.ctc_lo.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.projector.parameters())
    # acc = 1 - TER of the greedy CTC path, by hand
    model.eval()
    with torch.no_grad():
        acc = model(**batch)[1]["acc"]
        enc, enc_lens = model.encode(batch["speech"], batch["speech_lengths"])
        best = model.ctc.argmax(enc)
    import editdistance

    errors = total = 0
    for b in range(3):
        path = torch.unique_consecutive(best[b, : enc_lens[b]]).tolist()
        hyp = [c - 1 for c in path if c != 0]
        ref = batch["text"][b, : batch["text_lengths"][b] - 1].tolist()
        errors, total = errors + editdistance.eval(hyp, ref), total + len(ref)
    assert float(acc) == pytest.approx(1 - errors / total)


def test_ctc_only_with_aux_and_projector_input(tiny_llm_dirs):
    model, pre, collate = build(tiny_llm_dirs, ctc_weight=1.0, aux_heads={"lid": {}},
                                aux_weights={"lid": 0.5})
    calls = []
    orig = model.llm.hidden_states
    model.llm.hidden_states = lambda *a, **k: (calls.append(1), orig(*a, **k))[1]
    _, batch = make_batch(pre, collate)
    loss, stats, _ = model(**batch)
    assert calls == [] and set(stats) == {"loss", "loss_ctc", "acc", "loss_lid", "acc_lid"}
    assert torch.equal(stats["loss"], 0.0 + 1.0 * stats["loss_ctc"] + 0.5 * stats["loss_lid"])


def test_espnet_encoder_without_languages_unchanged(tiny_llm_dirs):
    model, pre, collate = build(tiny_llm_dirs, languages=None, ctc_weight=0.3)
    assert model.languages is None and len(model.aux_heads) == 0
    _, batch = make_batch(pre, collate)
    assert "lang_id" not in batch
    _, stats, _ = model(**batch)
    assert set(stats) == {"loss", "loss_ce", "loss_ctc", "acc"}
    # a collate that adds lang_id_lengths does not disturb forward
    _, stats2, _ = model(**batch, lang_id_lengths=torch.ones(3, dtype=torch.long))
    assert torch.equal(stats["loss"], stats2["loss"])


def test_bad_configs(tiny_llm_dirs):
    with pytest.raises(ValueError, match=r"unknown head 'speaker'; valid: \['lid'\]"):
        build(tiny_llm_dirs, aux_heads={"speaker": {}})
    with pytest.raises(ValueError, match=r"unknown auxiliary loss 'gender'; valid: \['lid'\]"):
        build(tiny_llm_dirs, aux_weights={"gender": 0.1})
    with pytest.raises(ValueError, match="nothing produces 'lid'"):
        build(tiny_llm_dirs, aux_weights={"lid": 0.05})
    with pytest.raises(ValueError, match="languages"):
        build(tiny_llm_dirs, languages=None, aux_heads={"lid": {}})
    with pytest.raises(ValueError, match=">= 0"):
        build(tiny_llm_dirs, aux_heads={"lid": {}}, aux_weights={"lid": -1.0})
    cfg = tiny_sllm_config(tiny_llm_dirs["qwen2"], "conformer")
    cfg["model_conf"]["languages"] = LANGS
    with pytest.raises(ValueError, match="top-level option `languages`"):
        SLLMTask.build_model(config_to_args(cfg))
    # a weighted LID loss without lang_id in the batch (no utt2lang)
    model, pre, collate = build(tiny_llm_dirs, aux_heads={"lid": {}}, aux_weights={"lid": 0.1})
    _, batch = make_batch(pre, collate)
    del batch["lang_id"]
    with pytest.raises(ValueError, match="needs lang_id"):
        model(**batch)


def test_model_built_directly_takes_lang_id_shapes(tiny_llm_dirs):
    model, pre, collate = build(tiny_llm_dirs, aux_heads={"lid": {}})
    _, batch = make_batch(pre, collate)
    flat = dict(batch, lang_id=batch["lang_id"].view(-1))
    assert torch.equal(model(**batch)[1]["loss_lid"], model(**flat)[1]["loss_lid"])
    with pytest.raises(ValueError, match="lang_id must be"):
        model(**dict(batch, lang_id=torch.zeros(2, dtype=torch.long)))
    assert isinstance(model, ESPnetSLLMModel)
