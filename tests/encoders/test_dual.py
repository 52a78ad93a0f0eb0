"""DualEncoder (encoder: dual, Ideal-LLM) on tiny Whisper + MMS checkpoints, alone and in the
model: fusion by hand, LID loss composition, stats, oracle selection, errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from espnet_sllm.encoders.dual import DualEncoder
from espnet_sllm.tasks.sllm import SLLMTask
from espnet_sllm.testing.configs import config_to_args

LANGS = ["en", "de", "nl", "fr", "es", "it", "pt", "pl"]
SMALL = dict(adapter_size=16, adapter_layers=1, adapter_heads=2, adapter_ffn=32,
             adapter_dropout=0.0)


@pytest.fixture(scope="module")
def mms_dir(tmp_path_factory):
    from espnet_sllm.testing.wav2vec2 import make_tiny_mms

    return make_tiny_mms(str(tmp_path_factory.mktemp("mms")))


def branches(whisper_dir, mms_dir):
    return dict(whisper="whisper_hf",
                whisper_conf={"model_name_or_path": whisper_dir, "pad_to_30s": False},
                mms="mms_hf", mms_conf={"model_name_or_path": mms_dir})


def waves(lens, seed=0):
    rng = np.random.RandomState(seed)
    xs = torch.zeros(len(lens), max(lens))
    for i, n in enumerate(lens):
        xs[i, :n] = torch.from_numpy(rng.randn(n).astype(np.float32)) * 0.1
    return xs, torch.tensor(lens)


def test_dual_fuses_by_the_selected_language(tiny_whisper_dir, mms_dir):
    torch.manual_seed(0)
    enc = DualEncoder(languages=LANGS, **branches(tiny_whisper_dir, mms_dir), **SMALL).eval()
    assert enc.aux_output_names == ("lid", "lang_weight") and enc.output_size() == 16
    assert enc.batch_invariant
    with torch.no_grad():
        enc.selector.weight.copy_(torch.linspace(-2, 2, 8))
    # 8000 samples: Whisper 25 frames, MMS 24 (one blank frame appended to MMS)
    xs, ilens = waves([8000, 12000])
    with torch.no_grad():
        ys, olens, aux = enc(xs, ilens)
        f_w, w_lens = enc.whisper(xs, ilens)[:2]
        f_m, m_lens = enc.mms(xs, ilens)[:2]
    assert w_lens.tolist() == [25, 38] and m_lens.tolist() == [24, 37]
    assert olens.tolist() == [25, 38] and ys.shape == (2, 38, 16)
    with torch.no_grad():
        h_w = enc.whisper_adapter(f_w, w_lens)
        h_m = enc.mms_adapter(f_m, m_lens)
        logits = enc.lid_adapter(h_w, w_lens, h_m, m_lens)
    torch.testing.assert_close(aux["lid"], logits)
    lang = logits.argmax(-1)
    w = torch.sigmoid(enc.selector.weight[lang])
    torch.testing.assert_close(aux["lang_weight"], w)
    for b in range(2):
        T_m = int(m_lens[b])
        want = h_w[b, :T_m] * (1 - w[b]) + h_m[b, :T_m] * w[b]
        torch.testing.assert_close(ys[b, :T_m], want)
        # the blank frame: Whisper alone, weighed by 1 - w'
        torch.testing.assert_close(ys[b, T_m], h_w[b, T_m] * (1 - w[b]))
    assert not ys[0, 25:].any()
    # oracle: the weight of the given language, whatever the LID adapter says
    enc.lid_selection = "oracle"
    with torch.no_grad():
        _, _, aux_o = enc(xs, ilens, lang_id=torch.tensor([3, 6]))
    torch.testing.assert_close(aux_o["lang_weight"],
                               torch.sigmoid(enc.selector.weight[torch.tensor([3, 6])]))
    with pytest.raises(ValueError, match="needs lang_id"):
        enc(xs, ilens)


def test_one_branch_and_fixed(tiny_whisper_dir, mms_dir):
    b = branches(tiny_whisper_dir, mms_dir)
    one = DualEncoder(whisper=b["whisper"], whisper_conf=b["whisper_conf"], mms=None,
                      selector=None, **SMALL).eval()
    xs, ilens = waves([8000])
    ys, olens, aux = one(xs, ilens)
    assert aux == {} and one.aux_output_names == () and olens.tolist() == [25]
    fixed = DualEncoder(languages=LANGS, selector="fixed", **b, **SMALL).eval()
    assert fixed.lid_adapter is None and fixed.selector is None
    with torch.no_grad():
        ys, olens, aux = fixed(xs, ilens)
        h_w = fixed.whisper_adapter(*fixed.whisper(xs, ilens)[:2])
        h_m = fixed.mms_adapter(*fixed.mms(xs, ilens)[:2])
    torch.testing.assert_close(ys[0, :24], 0.5 * h_w[0, :24] + 0.5 * h_m[0, :24])


def test_bad_configs(tiny_whisper_dir, mms_dir):
    b = branches(tiny_whisper_dir, mms_dir)
    with pytest.raises(ValueError, match="selector: null"):
        DualEncoder(whisper=b["whisper"], whisper_conf=b["whisper_conf"], mms=None, **SMALL)
    with pytest.raises(ValueError, match="needs the task option `languages"):
        DualEncoder(languages=None, **b, **SMALL)
    with pytest.raises(ValueError, match="one of"):
        DualEncoder(languages=LANGS, selector="average", **b, **SMALL)
    with pytest.raises(ValueError, match="oracle"):
        DualEncoder(languages=LANGS, selector="fixed", lid_selection="oracle", **b, **SMALL)
    with pytest.raises(ValueError, match="whisper_hf"):  # the valid choices are listed
        DualEncoder(languages=LANGS, **dict(b, mms="mms_typo"), **SMALL)
    with pytest.raises(ValueError, match="unknown key"):
        DualEncoder(languages=LANGS, **dict(b, mms_conf={"model_name_or_path": mms_dir,
                                                         "pad_to_30s": True}), **SMALL)


def ideal_llm_config(llm_dir, whisper_dir, mms_dir, selector="language", beta=0.05, ctc=0.1):
    enc = dict(branches(whisper_dir, mms_dir), **SMALL, selector=selector)
    cfg = {
        "languages": LANGS,
        "encoder": "dual", "encoder_conf": enc,
        "projector": "conv1d", "projector_conf": {"downsample": 2, "hidden": 16},
        "llm": "hf", "llm_conf": {"model_name_or_path": llm_dir, "freeze": True},
        "model_conf": {"ctc_weight": ctc, "ctc_input": "encoder"},
        "preprocessor_conf": {"prompt_template": "<|user|>\n{speech}Transcribe.<|end|>\n"},
    }
    if selector == "language":
        cfg["model_conf"]["aux_weights"] = {"lid": beta}
    return cfg


def test_ideal_llm_loss_composition_and_stats(tiny_llm_dirs, tiny_whisper_dir, mms_dir):
    beta, alpha = 0.05, 0.1
    args = config_to_args(ideal_llm_config(tiny_llm_dirs["phi3"], tiny_whisper_dir, mms_dir))
    torch.manual_seed(0)
    model = SLLMTask.build_model(args)
    pre = SLLMTask.build_preprocess_fn(args, True)
    collate = SLLMTask.build_collate_fn(args, True)
    # only the connector and the heads train: Whisper, MMS and Phi-3 are frozen
    trained = {n.split(".")[0] + "." + n.split(".")[1] for n, p in model.named_parameters()
               if p.requires_grad}
    assert trained == {"encoder.whisper_adapter", "encoder.mms_adapter", "encoder.lid_adapter",
                       "encoder.selector", "projector.convs", "projector.linear",
                       "ctc.ctc_lo"}, trained
    rng = np.random.RandomState(0)
    items = [(f"u{i}", pre(f"u{i}", {"speech": rng.randn(6000 + 2000 * i).astype(np.float32),
                                     "text": "hello world", "lang": lang}))
             for i, lang in enumerate(["pl", "en", "de"])]
    batch = collate(items)[1]
    assert batch["lang_id"].view(-1).tolist() == [7, 0, 1]
    model.train()
    loss, stats, _ = model(**batch)
    assert {"loss_ce", "loss_ctc", "loss_lid", "acc_lid", "lang_weight"} <= set(stats)
    expect = 0.0 + (1 - alpha) * stats["loss_ce"] + alpha * stats["loss_ctc"] \
        + beta * stats["loss_lid"]
    torch.testing.assert_close(stats["loss"], expect)
    loss.backward()
    enc = model.encoder
    # the selector's W gets gradient only at the predicted languages (argmax, no gradient)
    assert enc.selector.weight.grad is not None
    assert enc.lid_adapter.linear.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        _, _, aux = enc(batch["speech"], batch["speech_lengths"])
        _, stats_eval, _ = model(**batch)
    picked = set(aux["lid"].argmax(-1).tolist())
    nonzero = set(torch.nonzero(enc.selector.weight.grad).flatten().tolist())
    assert nonzero <= picked
    torch.testing.assert_close(stats_eval["loss_lid"].reshape(()),
                               F.cross_entropy(aux["lid"], batch["lang_id"].view(-1)))
    torch.testing.assert_close(stats_eval["lang_weight"].reshape(()), aux["lang_weight"].mean())


def test_ctc_head_is_over_the_llm_vocabulary(tiny_llm_dirs, tiny_whisper_dir, mms_dir):
    args = config_to_args(ideal_llm_config(tiny_llm_dirs["phi3"], tiny_whisper_dir, mms_dir))
    model = SLLMTask.build_model(args)
    # Table III's 0.041 B gap: a 1280 x (32 064 + 1) head for Phi-3; here (16, V + 1)
    assert model.ctc.ctc_lo.weight.shape == (model.llm.vocab_size() + 1, 16)


def test_fixed_with_lid_weight_is_an_error(tiny_llm_dirs, tiny_whisper_dir, mms_dir):
    cfg = ideal_llm_config(tiny_llm_dirs["phi3"], tiny_whisper_dir, mms_dir, selector="fixed")
    cfg["model_conf"]["aux_weights"] = {"lid": 0.05}
    with pytest.raises(ValueError, match="nothing produces 'lid'"):
        SLLMTask.build_model(config_to_args(cfg))


def save_experiment(tmp_path, cfg, model, langs, length):
    """An experiment as stage 6 leaves it (config.yaml with every option of the task, the
    trained weights m.pth) and a data dir of random FLACs (``length(i, uttid)`` samples) with
    ``langs`` as utt2lang; returns the data dir."""
    import soundfile
    import yaml

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(vars(config_to_args(cfg))),
                                          encoding="utf-8")
    torch.save({n: p for n, p in model.named_parameters() if p.requires_grad},
               tmp_path / "m.pth")
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.RandomState(0)
    for i, u in enumerate(langs):
        soundfile.write(data / f"{u}.flac", 0.1 * rng.randn(length(i, u)), 16000)
    (data / "wav.scp").write_text("".join(f"{u} {data / u}.flac\n" for u in langs))
    (data / "utt2lang").write_text("".join(f"{u} {lang}\n" for u, lang in langs.items()))
    return data


def test_lid_accuracy_tool(tiny_llm_dirs, tiny_whisper_dir, mms_dir, tmp_path, capsys):
    """bin/lid_accuracy: the LID adapter's argmax per utterance (as the encoder gives it), the
    accuracy per reference language; errors for a model without LID and unknown languages."""
    import yaml

    from espnet_sllm.bin.lid_accuracy import main

    cfg = ideal_llm_config(tiny_llm_dirs["phi3"], tiny_whisper_dir, mms_dir)
    model = SLLMTask.build_model(config_to_args(cfg))
    with torch.no_grad():  # every utterance is predicted as German
        model.encoder.lid_adapter.linear.bias.copy_(100.0 * (torch.arange(8) == 1).float())
    langs = {"u1": "en", "u2": "de", "u3": "de"}
    data = save_experiment(tmp_path, cfg, model, langs, lambda i, u: 4000 + 1000 * int(u[1]))
    args = ["--config", str(tmp_path / "config.yaml"), "--model", str(tmp_path / "m.pth"),
            "--data_dir", str(data), "--out", str(tmp_path / "lid.tsv"), "--batch_size", "2"]
    assert main(args) == 0
    assert (tmp_path / "lid.tsv").read_text().splitlines() == [
        "language\tutterances\tcorrect\taccuracy", "de\t2\t2\t100.00", "en\t1\t0\t0.00",
        "all\t3\t2\t66.67"]
    assert (tmp_path / "lid.utt2lang_hyp").read_text() == "u1 de\nu2 de\nu3 de\n"

    (data / "utt2lang").write_text("u1 en\nu2 xx\nu3 de\n")
    capsys.readouterr()
    assert main(args) == 1
    assert "languages ['xx'] are not among the model's languages" in capsys.readouterr().err
    fixed = ideal_llm_config(tiny_llm_dirs["phi3"], tiny_whisper_dir, mms_dir, selector="fixed")
    (tmp_path / "fixed.yaml").write_text(yaml.safe_dump(vars(config_to_args(fixed))),
                                         encoding="utf-8")
    trained = {n: p for n, p in SLLMTask.build_model(config_to_args(fixed)).named_parameters()
               if p.requires_grad}
    torch.save(trained, tmp_path / "fixed.pth")
    (data / "utt2lang").write_text("".join(f"{u} {lang}\n" for u, lang in langs.items()))
    assert main(["--config", str(tmp_path / "fixed.yaml"), "--model",
                 str(tmp_path / "fixed.pth")] + args[4:]) == 1
    assert "predicts no language (no 'lid' auxiliary output)" in capsys.readouterr().err
    assert main(args[:2] + ["--model", str(tmp_path / "none.pth")] + args[4:]) == 1
    assert "none.pth: no such file" in capsys.readouterr().err


def test_speech_embeddings_tool(tiny_llm_dirs, tiny_whisper_dir, mms_dir, tmp_path, capsys):
    """bin/speech_embeddings (Fig. 3): one row per utterance = E_speech (the projector output)
    averaged over the utterance's frames, equal to the model's own speech_embeddings of that
    utterance alone; at most --max_per_lang per language; the t-SNE map of every row."""
    import soundfile

    from espnet_sllm.analysis.embeddings import select_utterances
    from espnet_sllm.bin.speech_embeddings import main

    cfg = ideal_llm_config(tiny_llm_dirs["phi3"], tiny_whisper_dir, mms_dir)
    torch.manual_seed(0)
    model = SLLMTask.build_model(config_to_args(cfg)).eval()
    langs = {f"u{i}": ("en", "de", "fr")[i % 3] for i in range(7)}
    data = save_experiment(tmp_path, cfg, model, langs, lambda i, u: 3000 + 700 * i)
    out = tmp_path / "emb"
    args = ["--config", str(tmp_path / "config.yaml"), "--model", str(tmp_path / "m.pth"),
            "--data_dir", str(data), "--out_dir", str(out), "--batch_size", "3"]
    assert main(args + ["--max_per_lang", "2"]) == 0
    rows = (out / "utt2lang").read_text().split("\n")[:-1]
    assert len(rows) == 6  # en has 3 utterances: 2 kept; de, fr 2 each
    assert [r.split()[0] for r in rows] == select_utterances(langs, 2)
    x = np.load(out / "embeddings.npy")
    assert x.shape == (6, model.projector.output_size()) and x.dtype == np.float32
    u = rows[-1].split()[0]
    wav = torch.from_numpy(soundfile.read(data / f"{u}.flac", dtype="float32")[0])[None]
    with torch.no_grad():
        emb, lens, _, _ = model.speech_embeddings(wav, torch.tensor([wav.size(1)]))
    np.testing.assert_allclose(x[-1], emb[0, : int(lens[0])].mean(0).numpy(), atol=1e-5)
    tsne = (out / "tsne.tsv").read_text().splitlines()
    assert tsne[0] == "uttid\tlanguage\tx\ty" and len(tsne) == 7
    assert (out / "tsne.png").stat().st_size > 0
    (data / "utt2lang").write_text("u0 en\n")
    capsys.readouterr()
    assert main(args) == 1
    assert "utt2lang: no language for 6 utterances of wav.scp" in capsys.readouterr().err
