"""egs2/aishell_wmt/asr1/conf: generated configs, the paper's prompts and special tokens, what
trains in each system, and sllm_train --dry_run for every config with tiny checkpoints of the
same architectures (Whisper-large-v3 layout, Llama = Yi-6B's architecture)."""
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs2/aishell_wmt/asr1"
TUNING = RECIPE / "conf/tuning"


def _load_make_configs():
    from espnet_sllm.testing.recipe import load_recipe_script

    return load_recipe_script(RECIPE)


MC = _load_make_configs()


def _yaml(name):
    return yaml.safe_load((TUNING / name).read_text(encoding="utf-8"))


def _keys(x, prefix=""):
    if not isinstance(x, dict):
        return set()
    return {f"{prefix}{k}" for k in x} | {
        k2 for k, v in x.items() for k2 in _keys(v, f"{prefix}{k}.")}


def test_committed_configs_equal_the_generated_ones():
    generated = MC.all_configs()
    assert sorted(generated) == sorted(f"{s}{d}.yaml" for s in ("align", "lora", "dims3072",
                                                                  "dims2048", "dims1024")
                                       for d in ("", "_debug"))
    assert sorted(p.name for p in TUNING.glob("*.yaml")) == sorted(generated)
    for name, text in generated.items():
        assert (TUNING / name).read_text(encoding="utf-8") == text, (
            f"conf/tuning/{name} differs from local/make_configs.py: run it and commit")


@pytest.mark.parametrize("system", list(MC.SYSTEMS))
def test_paper_settings(system):
    full, debug = _yaml(f"{system}.yaml"), _yaml(f"{system}_debug.yaml")
    assert _keys(full) == _keys(debug)
    assert full["preprocessor_conf"] == debug["preprocessor_conf"]
    assert full["encoder_conf"]["model_name_or_path"] == "openai/whisper-large-v3"
    assert full["encoder_conf"]["pad_to_30s"] and full["encoder_conf"]["freeze"]
    assert full["llm_conf"]["model_name_or_path"] == "01-ai/Yi-6B" and full["llm_conf"]["freeze"]
    assert full["projector"] == "linear" and full["projector_conf"]["downsample"] == 1
    assert full["llm_conf"]["special_tokens"] == [
        "<|Human|>", "<|startofaudio|>", "<|endofaudio|>", "<|asr|>", "<|st|>", "<|qa|>",
        "<|text|>", "<|Assistant|>"]
    pre = full["preprocessor_conf"]
    assert pre["prompt_key"] == "task" and pre["text_only_tasks"] == ["qa"]
    # Fig. 2, verbatim
    assert pre["prompt_template"]["asr"] == (
        "<|Human|><|startofaudio|>{speech}<|endofaudio|><|asr|> 识别出音频内容\n<|Assistant|>")
    assert pre["prompt_template"]["qa"] == (
        "<|Human|><|startofaudio|>{speech}<|endofaudio|><|text|>{text_src}\n<|Assistant|>")
    assert full["batch_size"] * full["accum_grad"] == 128
    lora = system == "lora"
    assert (full["llm_conf"]["lora_r"], full["optim_conf"]["lr"]) == (
        (16, 1.0e-4) if lora else (0, 1.0e-3))
    dims = {"dims3072": 3072, "dims2048": 2048, "dims1024": 1024}.get(system)
    assert full["projector_conf"].get("trainable_dims") == dims
    if dims:
        assert debug["projector_conf"]["trainable_dims"] == dims * 64 // 4096


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from espnet_sllm.testing.tiny_checkpoints import make_tiny_checkpoints, prompt_strings

    out = tmp_path_factory.mktemp("tiny")
    make_tiny_checkpoints(str(out), ["识别 音频 内容", "the cat sat"] + prompt_strings(
        str(TUNING / "align_debug.yaml")), llm_family="llama")
    return out


def _config(name, tiny, tmp_path):
    conf = _yaml(name)
    conf["encoder_conf"]["model_name_or_path"] = str(tiny / "whisper")
    conf["llm_conf"]["model_name_or_path"] = str(tiny / "llama")
    dims = conf["projector_conf"].get("trainable_dims")
    if dims and not name.endswith("_debug.yaml"):  # 4096-wide Yi-6B -> the 64-wide tiny Llama
        conf["projector_conf"]["trainable_dims"] = dims * 64 // 4096
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(conf, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", sorted(MC.all_configs()))
def test_dry_run_every_config(name, tiny, tmp_path):
    """The real `sllm_train --dry_run true`; full-size configs with every key as written but the
    two checkpoint paths (no hub here) and, for dims, trainable_dims scaled to the tiny width."""
    from espnet_sllm.bin.sllm_train import main

    path = _config(name, tiny, tmp_path)
    main(["--config", str(path), "--dry_run", "true", "--output_dir", str(tmp_path / "exp")])
    assert (tmp_path / "exp" / "config.yaml").is_file()


@pytest.mark.parametrize("system", ["align", "lora"])
def test_what_trains_and_the_prompts(system, tiny, tmp_path):
    """align: the linear layer + the 8 token rows (5,246,976 + 8 x 4096 at full size); lora:
    LoRA only. One id per special token; a qa row has no audio, an asr row must have some."""
    from espnet_sllm.chain import apply_freeze_param
    from espnet_sllm.tasks.sllm import SLLMTask

    args = SLLMTask.get_parser().parse_args(
        ["--config", str(_config(f"{system}_debug.yaml", tiny, tmp_path))])
    model = SLLMTask.build_model(args)
    apply_freeze_param(model, args.freeze_param)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    if system == "align":
        assert names == {"projector.linear.weight", "projector.linear.bias",
                         "llm.new_token_embeddings"}
        n = sum(p.numel() for n_, p in model.named_parameters() if n_ in names)
        # tiny Whisper d_model 64 -> tiny Llama 64; full size 1280 x 4096 + 4096 + 8 x 4096
        assert n == 64 * 64 + 64 + 8 * 64
    else:
        assert names and all("lora_" in n for n in names)
    pre = SLLMTask.build_preprocess_fn(args, train=True)
    tok = pre.tokenizer
    for t in MC.SPECIAL_TOKENS:
        assert len(tok(t, add_special_tokens=False)["input_ids"]) == 1, t
    speech = np.zeros(16000, np.float32)
    asr = pre("u1", {"speech": speech, "text": "你好", "task": "asr"})
    qa = pre("u2", {"speech": np.zeros(0, np.float32), "text": "答案", "task": "qa",
                    "text_src": "问题"})
    assert asr["speech"].size == 16000 and qa["speech"].size == 0
    ids = tok.convert_tokens_to_ids(["<|endofaudio|>", "<|text|>"])
    assert list(qa["suffix"][:2]) == ids  # nothing between the audio markers
    with pytest.raises(ValueError):
        pre("u3", {"speech": np.zeros(0, np.float32), "text": "你好", "task": "asr"})
    # a test set without utt2task (the readers' ASR sets): speech recognition's prompt
    plain = pre("u4", {"speech": speech, "text": "你好"})
    assert list(plain["suffix"]) == list(asr["suffix"])
