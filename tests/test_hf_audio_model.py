"""model: hf_audio (ESPnetHFAudioModel) on tiny random whisper-large-v3 / Qwen2-Audio-7B
checkpoints loaded through from_pretrained: the loss is the HF model's own, batched decoding
equals decoding alone, LID embeddings start as a no-op, LoRA covers the whole model, merged
weights give the LoRA model's logits (also reloaded from disk), and a merge chain starts round
k+1 exactly where round k ended."""
import numpy as np
import pytest
import torch
import yaml
from espnet2.torch_utils.load_pretrained_model import load_pretrained_model
from espnet2.train.collate_fn import CommonCollateFn

from espnet_sllm.chain import plan_next, write_stage
from espnet_sllm.hf_audio_model import ESPnetHFAudioModel, lid_rows
from espnet_sllm.prompts.preprocessor import SLLMPreprocessor
from espnet_sllm.tasks.sllm import SLLMTask
from espnet_sllm.testing.configs import config_to_args
from espnet_sllm.testing.hf_audio import make_tiny_qwen2_audio, make_tiny_whisper_asr

LANGS = ["English-American", "English-British", "Japanese"]
PROMPTS = {
    "whisper": {"English": "{speech}<|startoftranscript|><|en|><|transcribe|><|notimestamps|>",
                "Japanese": "{speech}<|startoftranscript|><|ja|><|transcribe|><|notimestamps|>"},
    "qwen2_audio": {
        "English": "<|audio_bos|>{speech}<|audio_eos|>Detect the language and recognize the "
                   "speech: <|en|>",
        "Japanese": "<|audio_bos|>{speech}<|audio_eos|>Detect the language and recognize the "
                    "speech: <|ja|>"},
}
# lengths not multiples of the hop (160): the valid-frame rule is exercised
UTTS = [("a", 12345, "hello world", "English-American"),
        ("b", 30001, "the quick brown fox", "Japanese"),
        ("c", 7001, "東京は日本の首都です", "English-British")]


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf_audio")
    return {"whisper": make_tiny_whisper_asr(str(root / "whisper")),
            "qwen2_audio": make_tiny_qwen2_audio(str(root / "qwen2_audio"))}


def wav(n, seed):
    return (np.random.default_rng(seed).standard_normal(n) * 0.1).astype(np.float32)


def make_batch(path, family, utts=UTTS, train=True):
    pre = SLLMPreprocessor(train=train, tokenizer_name_or_path=path,
                           prompt_template=PROMPTS[family], languages=LANGS)
    items = []
    for i, (uid, n, text, lang) in enumerate(utts):
        data = {"speech": wav(n, i), "lang": lang}
        if train:
            data["text"] = text
        items.append((uid, pre(uid, data)))
    return CommonCollateFn(int_pad_value=-1, not_sequence=["lang_id"])(items)[1], pre


def build(path, **kw):
    torch.manual_seed(0)
    return ESPnetHFAudioModel(path, languages=LANGS, **kw).eval()


@pytest.mark.parametrize("family", ["whisper", "qwen2_audio"])
def test_loss_is_the_hf_models_own(dirs, family):
    from transformers import AutoProcessor

    path = dirs[family]
    model = build(path)
    batch, pre = make_batch(path, family)
    with torch.no_grad():
        ours = float(model(**batch)[0])
    processor = AutoProcessor.from_pretrained(path)
    hf = model.base
    losses, counts = [], []
    for b, (uid, n, text, lang) in enumerate(UTTS):
        target = batch["text"][b, : batch["text_lengths"][b]]
        suffix = batch["suffix"][b, : batch["suffix_lengths"][b]]
        if family == "whisper":
            feats = processor.feature_extractor(wav(n, b), sampling_rate=16000,
                                                return_tensors="pt").input_features
            dec = torch.cat([suffix, target[:-1]])[None]
            labels = torch.cat([torch.full((len(suffix) - 1,), -100), target])[None]
            out = hf(input_features=feats, decoder_input_ids=dec, labels=labels)
        else:
            lang_tok = "<|en|>" if lang.startswith("English") else "<|ja|>"
            prompt = ("<|audio_bos|><|AUDIO|><|audio_eos|>Detect the language and recognize "
                      f"the speech: {lang_tok}")
            inputs = processor(text=prompt, audio=wav(n, b), sampling_rate=16000,
                               return_tensors="pt")
            ids = torch.cat([inputs.input_ids[0], target])[None]
            labels = torch.full_like(ids, -100)
            labels[0, -len(target):] = target
            out = hf(input_ids=ids, input_features=inputs.input_features,
                     feature_attention_mask=inputs.feature_attention_mask,
                     attention_mask=torch.ones_like(ids), labels=labels)
        losses.append(float(out.loss))
        counts.append(len(target))
    # ours is the mean over every target token of the batch
    ref = sum(l * c for l, c in zip(losses, counts)) / sum(counts)
    assert ours == pytest.approx(ref, abs=2e-4)


@pytest.mark.parametrize("family", ["whisper", "qwen2_audio"])
def test_batched_decoding_equals_decoding_alone(dirs, family):
    path = dirs[family]
    model = build(path, lid_embeddings=True)
    with torch.no_grad():  # non-zero LID vectors: the decoder-side hook must follow the rows
        model.lid_encoder.normal_(0, 0.5)
        model.lid_decoder.normal_(0, 0.5)
    batch, _ = make_batch(path, family, train=False)
    keys = ["speech", "speech_lengths", "prefix", "prefix_lengths", "suffix", "suffix_lengths",
            "lang_id"]
    both = model.generate(**{k: batch[k] for k in keys}, num_beams=3, max_new_tokens=6,
                          max_tokens_per_second=None)
    for b in range(len(UTTS)):
        one = {k: batch[k][b: b + 1] for k in keys}
        n = int(one["speech_lengths"][0])
        one["speech"] = one["speech"][:, :n]
        for k in ("prefix", "suffix"):
            one[k] = one[k][:, : int(one[k + "_lengths"][0])]
        alone = model.generate(**one, num_beams=3, max_new_tokens=6, max_tokens_per_second=None)
        assert alone[0][0] == both[b][0]
        assert alone[0][1] == pytest.approx(both[b][1], abs=1e-4)


@pytest.mark.parametrize("family", ["whisper", "qwen2_audio"])
def test_lid_embeddings_start_as_a_no_op_and_share_accent_rows(dirs, family):
    path = dirs[family]
    batch, _ = make_batch(path, family)
    with torch.no_grad():
        plain = float(build(path)(**batch)[0])
        with_lid = build(path, lid_embeddings=True)
        assert float(with_lid(**batch)[0]) == pytest.approx(plain, abs=1e-6)
    assert lid_rows(LANGS) == (["English", "Japanese"], [0, 0, 1])
    assert with_lid.lid_encoder.shape[0] == 2 and with_lid.lid_encoder.requires_grad
    # a gradient reaches exactly the rows of the batch's languages
    with_lid.train()
    with_lid(**batch)[0].backward()
    assert with_lid.lid_decoder.grad.abs().sum(-1).gt(0).tolist() == [True, True]


FOCUS = ["q_proj", "k_proj", "v_proj"]
FEEDBACK = ["q_proj", "k_proj", "v_proj", "o_proj", "down_proj", "gate_proj", "up_proj",
            "out_proj", "fc1", "fc2"]


@pytest.mark.parametrize("family", ["whisper", "qwen2_audio"])
def test_lora_covers_the_whole_model(dirs, family):
    model = build(dirs[family], lora_r=2, lora_alpha=4, lora_target_modules=FEEDBACK,
                  lid_embeddings=True)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert {"lid_encoder", "lid_decoder"} <= set(names)
    lora = [n for n in names if "lora_" in n]
    assert lora and len(lora) + 2 == len(names)  # nothing else trains
    hit = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in lora}
    if family == "whisper":
        assert hit == {"q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"}
        assert any(".encoder." in n for n in lora) and any("encoder_attn" in n for n in lora)
    else:  # audio tower (out_proj, fc1, fc2) and Qwen2 (o_proj, MLP)
        assert hit == set(FEEDBACK)
    assert all(p.dtype == torch.float32 for n, p in model.named_parameters() if "lora_" in n)
    focus = build(dirs[family], lora_r=2, lora_target_modules=FOCUS)
    hit = {n.split(".lora_")[0].rsplit(".", 1)[-1]
           for n, p in focus.named_parameters() if p.requires_grad}
    assert hit == set(FOCUS)
    with pytest.raises(ValueError, match="match no module.*fc1"):
        build(dirs[family], lora_r=2, lora_target_modules=["no_such_proj"])


def perturb(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)


@pytest.mark.parametrize("family", ["whisper", "qwen2_audio"])
def test_merged_weights_give_the_lora_models_logits(dirs, family, tmp_path):
    path = dirs[family]
    model = build(path, lora_r=2, lora_alpha=4, lora_dropout=0.0, lora_target_modules=FEEDBACK,
                  lid_embeddings=True)
    perturb(model)  # trained-looking adapters and LID vectors
    batch, _ = make_batch(path, family)
    with torch.no_grad():
        before = float(model(**batch)[0])
        model.save_pretrained(str(tmp_path / "merged"))
        reloaded = build(str(tmp_path / "merged"), lid_embeddings=True)
        assert float(reloaded(**batch)[0]) == pytest.approx(before, abs=1e-5)
        model.merge_lora()
        assert not any("lora_" in n for n, _ in model.named_parameters())
        assert float(model(**batch)[0]) == pytest.approx(before, abs=1e-5)
    with pytest.raises(ValueError, match="LID rows"):
        ESPnetHFAudioModel(str(tmp_path / "merged"), languages=["Japanese"], lid_embeddings=True)


def round_config(tmp_path, name, path, family, r, targets):
    cfg = {"model": "hf_audio", "languages": LANGS,
           "model_conf": {"model_name_or_path": path, "lora_r": r, "lora_alpha": 2 * r,
                          "lora_dropout": 0.0, "lora_target_modules": targets,
                          "lid_embeddings": True},
           "preprocessor_conf": {"prompt_template": PROMPTS[family]}}
    file = tmp_path / f"{name}.yaml"
    file.write_text(yaml.safe_dump(cfg))
    return str(file), cfg


def build_round(config_path, cfg, opts):
    """The model of a round as `sllm_train --config <config> <next_opts>` builds it."""
    cfg = {**cfg, "model_conf": dict(cfg["model_conf"])}
    init = None
    for flag, value in zip(opts[::2], opts[1::2]):
        if flag == "--model_conf":
            key, val = value.split("=", 1)
            cfg["model_conf"][key] = val
        else:
            init = value
    run = config_path.replace(".yaml", ".run.yaml")
    with open(run, "w") as f:
        yaml.safe_dump(vars(config_to_args(cfg)), f)
    model, _ = SLLMTask.build_model_from_file(run, None, "cpu")
    if init is not None:
        load_pretrained_model(init, model, ignore_init_mismatch=False)
    return model.eval(), run


@pytest.mark.parametrize("family", ["whisper"])
def test_merge_chain_starts_each_round_where_the_last_ended(dirs, family, tmp_path):
    """Focus (r 2, q/k/v) -> Feed-Back (r 4, all targets) -> Fix (r 2): round k+1 before its
    first step computes round k's loss; its LID vectors continue; the merged dir is a plain HF
    checkpoint + LID file."""
    path = dirs[family]
    rounds = [round_config(tmp_path, "focus", path, family, 2, FOCUS),
              round_config(tmp_path, "feedback", path, family, 4, FEEDBACK),
              round_config(tmp_path, "fix", path, family, 2, FEEDBACK)]
    assert plan_next(rounds[0][1], rounds[1][1], "merge")["exclude"] == ["hf."]
    batch, _ = make_batch(path, family)
    opts, last = [], None
    for k, (cfg_path, cfg) in enumerate(rounds):
        model, run = build_round(cfg_path, cfg, opts)
        with torch.no_grad():
            start = float(model(**batch)[0])
        if last is not None:
            assert start == pytest.approx(last, abs=1e-5)
        perturb(model, seed=k + 1)
        with torch.no_grad():
            last = float(model(**batch)[0])
        exp = tmp_path / f"exp{k}"
        exp.mkdir()
        torch.save(model.state_dict(), exp / "valid.acc.best.pth")
        nxt = rounds[k + 1][0] if k + 1 < len(rounds) else None
        write_stage(run, str(exp / "valid.acc.best.pth"), str(exp / "chain"),
                    input_config=cfg_path, next_config=nxt, chain_mode="merge")
        if nxt:
            opts = (exp / "chain" / "next_opts").read_text().split()
            assert f"model_name_or_path={exp / 'chain' / 'merged'}" in opts
            assert (exp / "chain" / "merged" / "lid_embeddings.safetensors").is_file()


def test_packed_merged_model_decodes_as_the_trained_one(dirs, tmp_path, monkeypatch):
    """Stage 10 of a merge chain: the zip holds chain/merged whole and a config that decodes it
    as it is (no LoRA, LID loaded and frozen, an empty model.pth): same loss, same hypotheses
    as the trained LoRA + LID model; nothing in the packed model is trainable."""
    import zipfile

    from espnet_sllm.bin.pack_model import main as pack_main
    from espnet_sllm.decoding.inference import load_model

    path = dirs["whisper"]
    cfg_path, cfg = round_config(tmp_path, "fix", path, "whisper", 2, FEEDBACK)
    model, run = build_round(cfg_path, cfg, [])
    perturb(model)
    exp = tmp_path / "exp"
    exp.mkdir()
    torch.save(model.state_dict(), exp / "valid.acc.best.pth")
    (exp / "config.yaml").write_text(open(run).read())
    write_stage(str(exp / "config.yaml"), str(exp / "valid.acc.best.pth"), str(exp / "chain"),
                input_config=cfg_path, chain_mode="merge")
    out = tmp_path / "packed.zip"
    pack_main(["--exp", str(exp), "--model_file", "valid.acc.best.pth", "--out", str(out),
               "--merged", str(exp / "chain" / "merged")])
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(out).extractall(unpacked)
    assert (unpacked / "merged" / "model.safetensors").is_file()
    assert (unpacked / "merged" / "lid_embeddings.safetensors").is_file()
    monkeypatch.chdir(unpacked)  # paths of the packed config are relative to it
    packed, _ = load_model("config.yaml", "model.pth", "cpu")
    assert not any(p.requires_grad for p in packed.parameters())
    batch, _ = make_batch(path, "whisper")
    test, _ = make_batch(path, "whisper", train=False)
    keys = ["speech", "speech_lengths", "prefix", "prefix_lengths", "suffix", "suffix_lengths",
            "lang_id"]
    with torch.no_grad():
        assert float(packed(**batch)[0]) == pytest.approx(float(model(**batch)[0]), abs=1e-5)
        got = packed.generate(**{k: test[k] for k in keys}, max_new_tokens=4,
                              max_tokens_per_second=None)
        want = model.generate(**{k: test[k] for k in keys}, max_new_tokens=4,
                              max_tokens_per_second=None)
    assert [ids for ids, _ in got] == [ids for ids, _ in want]
    with pytest.raises(SystemExit, match="no config.json"):
        pack_main(["--exp", str(exp), "--out", str(out), "--merged", str(exp)])
    with pytest.raises(ValueError, match="freeze_lid: true needs lid_embeddings"):
        ESPnetHFAudioModel(path, freeze_lid=True)


def test_bad_configs_are_errors_naming_the_key(dirs, tmp_path):
    path = dirs["whisper"]
    cfg = {"model": "hf_audio", "model_conf": {"model_name_or_path": path},
           "encoder_conf": {"model_name_or_path": path}}
    with pytest.raises(ValueError, match="remove encoder_conf"):
        SLLMTask.build_model(config_to_args(cfg))
    cfg = {"model": "hf_audio", "model_conf": {"model_name_or_path": path, "lora_rank": 2}}
    with pytest.raises(ValueError, match="lora_rank.*valid keys"):
        SLLMTask.build_model(config_to_args(cfg))
    with pytest.raises(ValueError, match="lid_embeddings needs"):
        ESPnetHFAudioModel(path, lid_embeddings=True)
    model = build(path)
    batch, _ = make_batch(dirs["whisper"], "whisper")
    batch["prefix"] = batch["suffix"][:, :1]
    batch["prefix_lengths"] = torch.ones_like(batch["prefix_lengths"])
    with pytest.raises(ValueError, match="nothing may precede"):
        model(**batch)


def test_merge_lora_cli_writes_a_checkpoint_that_decodes_the_same(dirs, tmp_path, capsys):
    from espnet_sllm.bin.merge_lora import main

    path = dirs["qwen2_audio"]
    cfg_path, cfg = round_config(tmp_path, "one", path, "qwen2_audio", 2, FEEDBACK)
    model, run = build_round(cfg_path, cfg, [])
    perturb(model)
    torch.save(model.state_dict(), tmp_path / "model.pth")
    batch, _ = make_batch(path, "qwen2_audio")
    assert main(["--config", run, "--model_file", str(tmp_path / "model.pth"),
                 "--out_dir", str(tmp_path / "merged")]) == 0
    with torch.no_grad():
        merged = build(str(tmp_path / "merged"), lid_embeddings=True)
        assert float(merged(**batch)[0]) == pytest.approx(float(model(**batch)[0]), abs=1e-5)
    assert main(["--config", run, "--model_file", str(tmp_path / "missing.pth"),
                 "--out_dir", str(tmp_path / "x")]) == 1
    assert "ERROR: merge_lora" in capsys.readouterr().err


def test_sllm_inference_decodes_hf_audio_with_a_beam_per_language(dirs, tmp_path):
    import soundfile as sf

    from espnet_sllm.decoding.inference import inference

    path = dirs["whisper"]
    cfg_path, cfg = round_config(tmp_path, "dec", path, "whisper", 0, FOCUS)
    cfg["model_conf"] = {"model_name_or_path": path}
    model, run = build_round(cfg_path, cfg, [])
    data = tmp_path / "data"
    data.mkdir()
    wavs, langs = [], []
    for i, (uid, n, _, lang) in enumerate(UTTS):
        sf.write(data / f"{uid}.wav", wav(n, i), 16000)
        wavs.append(f"{uid} {data / uid}.wav")
        langs.append(f"{uid} {lang}")
    (data / "wav.scp").write_text("\n".join(wavs) + "\n")
    (data / "utt2lang").write_text("\n".join(langs) + "\n")
    triples = [(str(data / "wav.scp"), "speech", "sound"), (str(data / "utt2lang"), "lang", "text")]
    out = inference(str(tmp_path / "dec"), triples, run, None, beam_size=3,
                    beam_size_per_lang="Japanese=1", max_new_tokens=5, max_tokens_per_second=0)
    assert sorted(out) == ["a", "b", "c"]
    tokens = dict(line.split(" ", 1) if " " in line else (line, "") for line in
                  (tmp_path / "dec" / "1best_recog" / "token_int").read_text().splitlines())
    batch, _ = make_batch(path, "whisper", train=False)
    keys = ["speech", "speech_lengths", "prefix", "prefix_lengths", "suffix", "suffix_lengths"]
    for b, (uid, n, _, lang) in enumerate(UTTS):
        one = {k: batch[k][b: b + 1] for k in keys}
        one["speech"] = one["speech"][:, :n]
        beam = 1 if lang == "Japanese" else 3
        ids = model.generate(**one, num_beams=beam, max_new_tokens=5,
                             max_tokens_per_second=None)[0][0]
        assert tokens[uid].split() == [str(i) for i in ids]
    with pytest.raises(ValueError, match="unknown language 'Thai'"):
        inference(str(tmp_path / "dec2"), triples, run, None, beam_size_per_lang="Thai=1")


def test_audio_longer_than_the_window_decodes_in_equal_chunks_joined(dirs):
    path = dirs["whisper"]
    model = build(path)
    n = 480000 + 16001  # 31 s: two chunks of 15.5 s
    long = [("long", n, "", "English-American"), ("ja", n, "", "Japanese")]
    batch, _ = make_batch(path, "whisper", utts=long, train=False)
    keys = ["speech", "speech_lengths", "prefix", "prefix_lengths", "suffix", "suffix_lengths",
            "lang_id"]
    opts = dict(num_beams=1, max_new_tokens=4, max_tokens_per_second=None)
    got = model.generate(**{k: batch[k] for k in keys}, **opts)
    space = model._tokenizer(path)(" ", add_special_tokens=False)["input_ids"]
    for b, (uid, _, _, lang) in enumerate(long):
        parts = []
        for start, end in [(0, n // 2), (n // 2, n)]:
            one = {k: batch[k][b: b + 1] for k in keys}
            one["speech"] = one["speech"][:, start:end]
            one["speech_lengths"] = torch.tensor([end - start])
            parts.append(model.generate(**one, **opts)[0])
        sep = [] if lang == "Japanese" else space
        assert got[b][0] == parts[0][0] + sep + parts[1][0]
        assert got[b][1] == pytest.approx(parts[0][1] + parts[1][1], abs=1e-4)
    with pytest.raises(ValueError, match="window"):
        model.train()
        batch, _ = make_batch(path, "whisper", utts=[("long", n, "hello", "Japanese")])
        model(**batch)


def test_check_pretrained_on_whole_model_configs(dirs, tmp_path, tiny_llm_dirs):
    from espnet_sllm.bin.check_pretrained import check_config

    def problems(name):
        cfg = tmp_path / "c.yaml"
        cfg.write_text(yaml.safe_dump({"model": "hf_audio",
                                       "model_conf": {"model_name_or_path": name}}))
        return check_config(str(cfg))

    assert problems(dirs["whisper"]) == [] and problems(dirs["qwen2_audio"]) == []
    assert "is a 'qwen2' checkpoint; model hf_audio takes" in problems(tiny_llm_dirs["qwen2"])[0]
    assert "no such directory" in problems(str(tmp_path / "nope"))[0]


def test_zero_shot_experiment_decodes_the_base_model(dirs, tmp_path):
    from espnet_sllm.bin.zero_shot import main
    from espnet_sllm.decoding.inference import load_model

    path = dirs["qwen2_audio"]
    cfg_path, _ = round_config(tmp_path, "z", path, "qwen2_audio", 2, FOCUS)
    assert main(["--out_dir", str(tmp_path / "none"), "--config", cfg_path,
                 "--model_conf", "lora_r=0", "--model_conf", "freeze=true",
                 "--model_conf", "lid_embeddings=false"]) == 0
    model, _ = load_model(str(tmp_path / "none" / "config.yaml"),
                          str(tmp_path / "none" / "zeroshot.pth"), "cpu")
    assert not any(p.requires_grad for p in model.parameters())
    batch, _ = make_batch(path, "qwen2_audio", train=False)
    keys = ["speech", "speech_lengths", "prefix", "prefix_lengths", "suffix", "suffix_lengths"]
    got = model.generate(**{k: batch[k] for k in keys}, max_new_tokens=4,
                         max_tokens_per_second=None)
    want = build(path, freeze=True).generate(**{k: batch[k] for k in keys}, max_new_tokens=4,
                                             max_tokens_per_second=None)
    assert [ids for ids, _ in got] == [ids for ids, _ in want]


def test_zero_shot_of_an_experiments_merged_model(dirs, tmp_path):
    """ILT's earlier-round voter: zero_shot on a round's experiment config.yaml (with the
    trainer's own keys) pointed at its merged model, LID loaded and frozen: decodes as the
    trained round did, with nothing to train."""
    from espnet_sllm.bin.zero_shot import main
    from espnet_sllm.decoding.inference import load_model

    path = dirs["whisper"]
    cfg_path, cfg = round_config(tmp_path, "focus", path, "whisper", 2, FOCUS)
    model, run = build_round(cfg_path, cfg, [])
    perturb(model)
    model.save_pretrained(str(tmp_path / "merged"))
    exp_conf = {**yaml.safe_load(open(run)), "required": ["output_dir"], "version": "202511",
                "distributed": False, "config": cfg_path}
    (tmp_path / "exp_config.yaml").write_text(yaml.safe_dump(exp_conf))
    out = tmp_path / "voter"
    assert main(["--out_dir", str(out), "--config", str(tmp_path / "exp_config.yaml"),
                 "--model_conf", f"model_name_or_path={tmp_path / 'merged'}",
                 "--model_conf", "lora_r=0", "--model_conf", "freeze=true",
                 "--model_conf", "freeze_lid=true"]) == 0
    written = yaml.safe_load((out / "config.yaml").read_text())
    assert written["model_conf"]["freeze_lid"] is True and written["model_conf"]["lora_r"] == 0
    voter, _ = load_model(str(out / "config.yaml"), str(out / "zeroshot.pth"), "cpu")
    assert not any(p.requires_grad for p in voter.parameters())
    batch, _ = make_batch(path, "whisper")
    with torch.no_grad():
        assert float(voter(**batch)[0]) == pytest.approx(float(model(**batch)[0]), abs=1e-5)


def test_a_prompt_token_the_model_lacks_is_an_error(dirs, tmp_path):
    cfg_path, cfg = round_config(tmp_path, "bad", dirs["whisper"], "whisper", 2, FOCUS)
    cfg["preprocessor_conf"] = {"prompt_template": dict(PROMPTS["whisper"])}
    cfg["preprocessor_conf"]["prompt_template"]["Japanese"] = \
        "{speech}<|startoftranscript|><|xx|><|transcribe|><|notimestamps|>"
    with pytest.raises(ValueError, match=r"\['<\|xx\|>'\] are not tokens of"):
        SLLMTask.build_preprocess_fn(config_to_args(cfg), train=True)
    cfg["preprocessor_conf"]["prompt_template"]["Japanese"] = PROMPTS["whisper"]["Japanese"]
    assert SLLMTask.build_preprocess_fn(config_to_args(cfg), train=True) is not None


def test_a_hypothesis_with_line_breaks_is_one_text_line(dirs):
    from espnet_sllm.decoding.inference import hypothesis_text

    tok = ESPnetHFAudioModel._tokenizer(dirs["qwen2_audio"])
    ids = tok("hello\nworld\r\nagain", add_special_tokens=False)["input_ids"]
    assert "\n" in tok.decode(ids)
    assert hypothesis_text(tok, ids + [tok.eos_token_id]) == "hello world again"


@pytest.mark.parametrize("family", ["whisper", "qwen2_audio"])
def test_static_memory_counts_what_training_builds(dirs, family, tmp_path, capsys):
    """bin/static_memory sizes a round from config.json alone (meta device): its base, LoRA and
    LID parameter counts equal those of the model training builds from the checkpoint; bytes =
    frozen weights in the config's dtype + 16 per trainable parameter."""
    from espnet_sllm.analysis.memory import from_training_config
    from espnet_sllm.bin.static_memory import main

    cfg_path, cfg = round_config(tmp_path, "feedback", dirs[family], family, 4, FEEDBACK)
    cfg["model_conf"]["dtype"] = "bfloat16"
    model = ESPnetHFAudioModel(dirs[family], languages=LANGS, **{
        k: v for k, v in cfg["model_conf"].items() if k != "model_name_or_path"})
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    lid = model.lid_encoder.numel() + model.lid_decoder.numel()
    base = sum(p.numel() for n, p in model.hf.named_parameters() if "lora_" not in n)
    m = from_training_config(cfg)
    assert (m["base_parameters"], m["lid_parameters"], m["trainable_parameters"]) == (
        base, lid, trainable)
    assert m["static_bytes"] == 2 * base + 16 * trainable
    (tmp_path / "bf16.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["--config", str(tmp_path / "bf16.yaml")]) == 0
    row = capsys.readouterr().out.splitlines()[1].split("\t")
    assert row[1:4] == [str(base), str(trainable - lid), str(lid)]
    assert main(["--config", str(tmp_path / "missing.yaml")]) == 1
    assert "static_memory: ERROR" in capsys.readouterr().err
