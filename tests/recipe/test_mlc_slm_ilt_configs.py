"""egs2/mlc_slm/asr1 ILT configs (Meng et al., "ILT: Iterative LoRA Training through
Focus-Feedback-Fix", MLC-SLM 2025): conf/tuning/ilt_{whisper,qwen2audio}_{focus,feedback,fix}
{,_debug}.yaml written by local/make_configs.py, the paper's values in the full-size ones, the
debug twins built through SLLMTask on tiny checkpoints of the same architectures (prompts,
trainable parameters, one step), and conf/decode_ilt{,_debug}.yaml."""
import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs2/mlc_slm/asr1"
TUNING = RECIPE / "conf/tuning"
MODELS = ["whisper", "qwen2audio"]
ROUNDS = ["focus", "feedback", "fix"]
SYSTEMS = [f"ilt_{m}_{r}" for m in MODELS for r in ROUNDS]
HUB = {"whisper": "openai/whisper-large-v3", "qwen2audio": "Qwen/Qwen2-Audio-7B"}
TINY = {"whisper": "exp_debug/tiny/whisper_asr", "qwen2audio": "exp_debug/tiny/qwen2_audio"}
FOCUS = ["q_proj", "k_proj", "v_proj"]
WIDE = ["q_proj", "k_proj", "v_proj", "o_proj", "down_proj", "gate_proj", "up_proj", "out_proj",
        "fc1", "fc2"]
# the table = Sec. 3.1 of the paper: (r, alpha, targets, epochs); debug (r, alpha)
PAPER = {"focus": (16, 32, FOCUS, 6), "feedback": (512, 2048, WIDE, 10),
         "fix": (32, 64, WIDE, 6)}
DEBUG = {"focus": (2, 4), "feedback": (4, 8), "fix": (2, 4)}
CODES = {"English": "en", "French": "fr", "German": "de", "Italian": "it", "Japanese": "ja",
         "Korean": "ko", "Portuguese": "pt", "Russian": "ru", "Spanish": "es", "Thai": "th",
         "Vietnamese": "vi"}
MLC_SLM_LABELS = ["English-American", "English-Australian", "English-British",
                  "English-Filipino", "English-Indian", "French", "German", "Italian", "Japanese",
                  "Korean", "Portuguese", "Russian", "Spanish", "Thai", "Vietnamese"]


def prompt(model, lang):
    xx = CODES[lang.split("-")[0]]
    if model == "whisper":
        return f"{{speech}}<|startoftranscript|><|{xx}|><|transcribe|><|notimestamps|>"
    return (f"<|audio_bos|>{{speech}}<|audio_eos|>Detect the language and recognize the "
            f"speech: <|{xx}|>")


def _yaml(name):
    return yaml.safe_load((TUNING / name).read_text(encoding="utf-8"))


def _parse(path):
    """The Namespace `sllm_train --config path` gets (an unknown key is an error there)."""
    from espnet_sllm.tasks.sllm import SLLMTask

    return SLLMTask.get_parser().parse_args(["--config", str(path)])


def _keys(x, prefix=""):
    out = set()
    for k, v in x.items():
        out.add(prefix + k)
        if isinstance(v, dict) and k != "prompt_template":
            out |= _keys(v, prefix + k + ".")
    return out


def test_make_configs_writes_and_checks_the_ilt_files(capsys):
    from espnet_sllm.testing.recipe import load_recipe_script

    mc = load_recipe_script(RECIPE)
    assert mc.ilt_names() == SYSTEMS
    generated = mc.all_configs()
    for name in SYSTEMS:
        for d in ("", "_debug"):
            assert (TUNING / f"{name}{d}.yaml").read_text(encoding="utf-8") == \
                generated[f"{name}{d}.yaml"], f"run local/make_configs.py for {name}{d}.yaml"
    assert mc.main(["--check"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("system", SYSTEMS)
def test_full_size_config_carries_the_papers_values(system):
    from espnet2.tasks.abs_task import optim_classes, scheduler_classes

    from espnet_sllm.hf_audio_model import ESPnetHFAudioModel

    _, model, rnd = system.split("_")
    r, alpha, targets, epochs = PAPER[rnd]
    args = _parse(TUNING / f"{system}.yaml")
    # every key is an option / constructor argument
    params = inspect.signature(ESPnetHFAudioModel.__init__).parameters
    assert set(args.model_conf) <= set(params) - {"self", "languages"}
    for conf, cls in ((args.optim_conf, optim_classes[args.optim]),
                      (args.scheduler_conf, scheduler_classes[args.scheduler])):
        assert set(conf) <= set(inspect.signature(cls.__init__).parameters)
    assert not (args.encoder_conf or args.projector_conf or args.llm_conf)

    mc = args.model_conf
    assert args.model == "hf_audio" and mc["model_name_or_path"] == HUB[model]
    assert (mc["lora_r"], mc["lora_alpha"], list(mc["lora_target_modules"])) == \
        (r, alpha, targets)
    assert mc["lora_dropout"] == 0.05 and mc["lid_embeddings"] is True
    assert mc["dtype"] == "bfloat16" and args.use_amp is True  # bf16 (Sec. 3.2.3)
    assert mc["gradient_checkpointing"] is True
    assert args.max_epoch == epochs and args.num_iters_per_epoch is None  # full passes
    assert args.optim == "adamw" and args.optim_conf["lr"] == 1.0e-5
    assert args.scheduler == "warmuplr" and args.scheduler_conf["warmup_steps"] > 0
    # 8 A800 x micro batch 16 (ESPnet's batch_size is global), accumulation 4
    assert (args.batch_type, args.batch_size, args.accum_grad) == ("sorted", 128, 4)
    assert args.patience is None  # every round trains all its epochs
    assert [list(c) for c in args.best_model_criterion] == [["valid", "acc", "max"]]
    assert args.keep_nbest_models == 3  # the pseudo-label voters
    assert args.save_strategy == "all"  # as the recipe's other systems
    assert args.num_workers == 4
    assert args.languages[:15] == MLC_SLM_LABELS and set(args.languages) - \
        set(MLC_SLM_LABELS) == {"English"}
    table = args.preprocessor_conf["prompt_template"]
    assert table == {lang: prompt(model, lang) for lang in CODES}

    header = (TUNING / f"{system}.yaml").read_text(encoding="utf-8").split("\nmodel:")[0]
    assert header.startswith("# ILT round ") and "Meng et al." in header
    assert {"focus": "Focus", "feedback": "Feed Back", "fix": "Fix"}[rnd] in header
    assert f"LoRA r {r} / alpha {alpha}" in header and "Ours" in header
    assert "weight_decay" in header and "warmup" in header


@pytest.mark.parametrize("system", SYSTEMS)
def test_debug_twin_has_the_same_keys_and_tiny_sizes(system):
    _, model, rnd = system.split("_")
    full, debug = _yaml(f"{system}.yaml"), _yaml(f"{system}_debug.yaml")
    assert _keys(full) == _keys(debug)
    assert full["preprocessor_conf"] == debug["preprocessor_conf"]
    assert full["languages"] == debug["languages"]
    mc = debug["model_conf"]
    assert mc["model_name_or_path"] == TINY[model]
    assert (mc["lora_r"], mc["lora_alpha"]) == DEBUG[rnd]
    assert mc["lora_target_modules"] == full["model_conf"]["lora_target_modules"]
    assert mc["dtype"] == "float32" and mc["gradient_checkpointing"] is False
    assert debug["use_amp"] is False and debug["optim_conf"]["lr"] == 1.0e-3
    assert (debug["max_epoch"], debug["num_iters_per_epoch"], debug["batch_size"],
            debug["accum_grad"], debug["keep_nbest_models"]) == (3, 2, 2, 1, 3)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("debug", ["", "_debug"])
def test_consecutive_rounds_merge_in_a_chain(model, debug):
    """Each round starts from the merge of the round before even in a cumulative chain: the
    LoRA shape changes at every boundary."""
    from espnet_sllm.chain import plan_next

    confs = [_yaml(f"ilt_{model}_{r}{debug}.yaml") for r in ROUNDS]
    for a, b in zip(confs, confs[1:]):
        assert plan_next(a, b, "cumulative")["merge"] is True


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from espnet_sllm.testing.hf_audio import make_tiny_qwen2_audio, make_tiny_whisper_asr

    root = tmp_path_factory.mktemp("ilt_tiny")
    return {"whisper": make_tiny_whisper_asr(str(root / "whisper_asr")),
            "qwen2audio": make_tiny_qwen2_audio(str(root / "qwen2_audio"))}


def _targets_of(name):
    """The target module name of a LoRA parameter `...<target>.lora_A.default.weight`."""
    parts = name.split(".")
    return parts[parts.index(next(p for p in parts if p.startswith("lora_"))) - 1]


@pytest.mark.parametrize("system", SYSTEMS)
def test_debug_config_builds_renders_prompts_and_trains_lora_and_lid_only(system, tiny):
    from espnet2.train.collate_fn import CommonCollateFn

    from espnet_sllm.tasks.sllm import SLLMTask
    from espnet_sllm.testing.configs import config_to_args

    _, model_name, rnd = system.split("_")
    conf = _yaml(f"{system}_debug.yaml")
    conf["model_conf"]["model_name_or_path"] = tiny[model_name]
    args = config_to_args(conf)
    torch.manual_seed(0)
    model = SLLMTask.build_model(args)
    assert type(model).__name__ == "ESPnetHFAudioModel"
    assert type(model.base).__name__ == {"whisper": "WhisperForConditionalGeneration",
                                         "qwen2audio": "Qwen2AudioForConditionalGeneration"}[
        model_name]

    # prompts: English-Indian falls back to English's template, Thai has its own
    pre = SLLMTask.build_preprocess_fn(args, train=True)
    tok = pre.tokenizer
    speech = np.zeros(16000, np.float32)
    items = []
    for label in ("English-Indian", "Thai"):
        out = pre(label, {"speech": speech, "text": "hello world", "lang": label})
        before, after = prompt(model_name, label).split("{speech}")
        assert tok.decode(out["prefix"].tolist(), skip_special_tokens=False) == before
        assert tok.decode(out["suffix"].tolist(), skip_special_tokens=False) == after
        assert out["text"][-1] == tok.eos_token_id
        assert int(out["lang_id"][0]) == args.languages.index(label)
        items.append((label, out))
    if model_name == "whisper":  # the language token is one special token of the real vocab
        assert int(items[1][1]["suffix"][1]) == tok.convert_tokens_to_ids("<|th|>")

    # trainable: the LoRA adapters on exactly the targets present, and the LID embeddings
    r, _ = DEBUG[rnd]
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    lora = [n for n in trainable if ".lora_" in n]
    assert sorted(set(trainable) - set(lora)) == ["lid_decoder", "lid_encoder"]
    expected = set(PAPER[rnd][2])
    if model_name == "whisper":  # Whisper has no o_proj / gate / up / down_proj
        expected -= {"o_proj", "down_proj", "gate_proj", "up_proj"}
    assert {_targets_of(n) for n in lora} == expected
    a = dict(model.named_parameters())[next(n for n in lora if ".lora_A." in n)]
    assert a.shape[0] == r
    if model_name == "qwen2audio":  # LoRA both in the audio tower and in Qwen2
        assert any("audio_tower" in n for n in lora) and any("language_model" in n
                                                             for n in lora)
    else:
        assert any(".encoder." in n for n in lora) and any(".decoder." in n for n in lora)

    # one step reaches the adapters and the LID rows of the batch's languages
    batch = CommonCollateFn(float_pad_value=0.0, int_pad_value=-1,
                            not_sequence=["lang_id"])(items)[1]
    model.train()
    loss, stats, _ = model(**batch)
    assert torch.isfinite(loss)
    loss.backward()
    params = dict(model.named_parameters())
    assert any(params[n].grad is not None and params[n].grad.abs().sum() > 0 for n in lora
               if ".lora_B." in n)
    rows = model.lid_decoder.grad.abs().sum(-1) > 0
    assert sorted(model.lid_names[i] for i in torch.nonzero(rows).flatten()) == \
        ["English", "Thai"]


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("debug", ["", "_debug"])
def test_sllm_train_dry_run_and_dtypes(system, debug, tiny, tmp_path):
    """The real `sllm_train --dry_run true` (model, optimizer, scheduler) with every key as
    written, only the checkpoint pointed at the tiny one; at full size the frozen base stays
    bfloat16 through ESPnet's --train_dtype cast, the adapters and LID rows are fp32."""
    from espnet_sllm.bin.sllm_train import main
    from espnet_sllm.tasks.sllm import SLLMTask

    model_name = system.split("_")[1]
    conf = _yaml(f"{system}{debug}.yaml")
    conf["model_conf"]["model_name_or_path"] = tiny[model_name]
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(conf, allow_unicode=True), encoding="utf-8")
    main(["--config", str(cfg), "--dry_run", "true", "--output_dir", str(tmp_path / "exp")])
    assert (tmp_path / "exp" / "config.yaml").is_file()
    model = SLLMTask.build_model(_parse(cfg)).to(dtype=torch.float32)
    dtypes = {n: p.dtype for n, p in model.named_parameters()}
    frozen = {d for n, d in dtypes.items() if not model.get_parameter(n).requires_grad}
    assert frozen == {torch.float32 if debug else torch.bfloat16}
    assert {d for n, d in dtypes.items() if model.get_parameter(n).requires_grad} == \
        {torch.float32}


@pytest.mark.parametrize("name", ["decode_ilt.yaml", "decode_ilt_debug.yaml"])
def test_decode_configs_are_sllm_inference_options(name):
    from espnet_sllm.bin.sllm_inference import get_parser
    from espnet_sllm.decoding.chunking import parse_beam_per_lang

    conf = yaml.safe_load((RECIPE / "conf" / name).read_text(encoding="utf-8"))
    argv = ["--output_dir", "x", "--train_config", "x", "--data_path_and_name_and_type", "a,b,c"]
    for k, v in conf.items():
        argv += [f"--{k}", str(v)]
    args = get_parser().parse_args(argv)  # an unknown option would exit
    # Sec. 3.2.3: beam 6, greedy for Thai, Japanese, Vietnamese
    assert args.beam_size == (2 if "debug" in name else 6)
    assert args.max_new_tokens == (8 if "debug" in name else 200)
    assert (args.batch_size, args.max_tokens_per_second, args.min_new_tokens) == (8, 25.0, 1)
    languages = _yaml("ilt_whisper_focus.yaml")["languages"]
    assert parse_beam_per_lang(args.beam_size_per_lang, languages) == {
        "Thai": 1, "Japanese": 1, "Vietnamese": 1}
