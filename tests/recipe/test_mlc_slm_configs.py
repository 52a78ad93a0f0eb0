"""egs2/mlc_slm/asr1/conf: generated configs, full-size configs checked without weights, debug
configs through sllm_train --dry_run with tiny checkpoints."""
import inspect
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs2/mlc_slm/asr1"
TUNING = RECIPE / "conf/tuning"
SYSTEMS = ["baseline", "s1", "s2", "s3", "s4"]
LANGUAGES = ["English", "French", "German", "Italian", "Japanese", "Korean", "Portuguese",
             "Russian", "Spanish", "Thai", "Vietnamese"]
# utt2lang labels of the MLC-SLM release (15) and of Common Voice English (S4)
LABELS = ["English-American", "English-Australian", "English-British", "English-Filipino",
          "English-Indian", "English"] + LANGUAGES[1:]


def _load_make_configs():
    from espnet_sllm.testing.recipe import load_recipe_script

    return load_recipe_script(RECIPE)


def _yaml(name):
    return yaml.safe_load((TUNING / name).read_text(encoding="utf-8"))


def test_committed_configs_equal_the_generated_ones():
    make_configs = _load_make_configs()
    generated = make_configs.all_configs()
    # the ILT systems' files too (tests/recipe/test_mlc_slm_ilt_configs.py checks their content)
    systems = SYSTEMS + make_configs.ilt_names()
    assert sorted(generated) == sorted(f"{s}{d}.yaml" for s in systems for d in ("", "_debug"))
    on_disk = sorted(p.name for p in TUNING.glob("*.yaml"))
    assert on_disk == sorted(generated), "conf/tuning holds files make_configs.py does not write"
    for name, text in generated.items():
        assert (TUNING / name).read_text(encoding="utf-8") == text, (
            f"conf/tuning/{name} differs from local/make_configs.py: run it and commit")


def _keys(x, prefix=""):
    """Nested key paths of a config, prompt tables excluded (their languages are checked apart)."""
    if not isinstance(x, dict):
        return set()
    out = set()
    for k, v in x.items():
        path = f"{prefix}{k}"
        out.add(path)
        if k not in ("prompt_template", "context_templates"):
            out |= _keys(v, path + ".")
    return out


@pytest.mark.parametrize("system", SYSTEMS)
def test_debug_twin_has_the_same_keys_and_prompts(system):
    full, debug = _yaml(f"{system}.yaml"), _yaml(f"{system}_debug.yaml")
    assert _keys(full) == _keys(debug)
    assert full["preprocessor_conf"] == debug["preprocessor_conf"]
    first = (TUNING / f"{system}.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ") and "Peng et al. (MLC-SLM 2025)" in first and "A100" in first


def _parse(path):
    """The Namespace `sllm_train --config path` gets (unknown keys are an error there)."""
    from espnet_sllm.tasks.sllm import SLLMTask

    return SLLMTask.get_parser().parse_args(["--config", str(path)])


def _check_kwargs(cls, conf, what, filled=()):
    params = inspect.signature(cls.__init__).parameters
    assert not any(p.kind == p.VAR_KEYWORD for p in params.values()) or what == "optim_conf"
    unknown = set(conf) - set(params)
    assert not unknown, f"{what}: {sorted(unknown)} are not arguments of {cls.__name__}"
    for name in filled:  # set by build_model, so they must not be in the YAML
        assert name not in conf, f"{what}.{name} is filled in by build_model"


@pytest.mark.parametrize("system", SYSTEMS)
def test_full_size_config_without_weights(system):
    """Full-size configs name hub checkpoints (no download here): parse them, check every
    *_conf key against the constructor of the chosen class, and the paper's settings."""
    from espnet2.tasks.abs_task import optim_classes, scheduler_classes

    from espnet_sllm.prompts.preprocessor import SLLMPreprocessor
    from espnet_sllm.tasks.sllm import (
        encoder_choices,
        llm_choices,
        model_choices,
        projector_choices,
    )

    args = _parse(TUNING / f"{system}.yaml")
    _check_kwargs(encoder_choices.get_class(args.encoder), args.encoder_conf, "encoder_conf",
                  filled=("input_size",))
    _check_kwargs(projector_choices.get_class(args.projector), args.projector_conf,
                  "projector_conf", filled=("input_size", "output_size"))
    _check_kwargs(llm_choices.get_class(args.llm), args.llm_conf, "llm_conf")
    _check_kwargs(model_choices.get_class(args.model), args.model_conf, "model_conf")
    _check_kwargs(optim_classes[args.optim], args.optim_conf, "optim_conf")
    _check_kwargs(scheduler_classes[args.scheduler], args.scheduler_conf, "scheduler_conf")
    _check_kwargs(SLLMPreprocessor, args.preprocessor_conf, "preprocessor_conf",
                  filled=("train", "tokenizer_name_or_path", "special_tokens"))

    # The paper's model and training (issue 4).
    assert (args.encoder, args.encoder_conf["model_name_or_path"]) == (
        "whisper_hf", "openai/whisper-large-v3")
    assert args.encoder_conf["freeze"] and args.encoder_conf["pad_to_30s"]
    assert args.encoder_conf["dtype"] == "bfloat16"
    assert (args.projector, args.projector_conf) == ("mlp", {"downsample": 5, "hidden": 2048})
    assert args.llm_conf["model_name_or_path"] == "google/gemma-2-2b"
    assert args.llm_conf["freeze"] is False and args.llm_conf.get("lora_r", 0) == 0
    assert args.llm_conf["attn_implementation"] == "eager"
    assert args.llm_conf["gradient_checkpointing"] and args.use_amp
    assert args.optim == "adamw" and args.optim_conf["lr"] == 5.0e-5
    assert args.scheduler == "warmuplr"
    # early stop: 4 "epochs" of 500 steps = 2000 steps without a better valid acc
    assert args.num_iters_per_epoch * args.patience == 2000
    assert list(args.early_stopping_criterion) == ["valid", "acc", "max"]
    assert [list(c) for c in args.best_model_criterion] == [["valid", "acc", "max"]]
    assert args.keep_nbest_models


def _fields(prev="", nxt=""):
    return {"lang": "x", "text_prev": prev, "text_next": nxt}


@pytest.mark.parametrize("system", SYSTEMS)
def test_prompt_tables(system):
    from espnet_sllm.prompts.template import ContextPrompt, PromptSelector

    pre = _yaml(f"{system}.yaml")["preprocessor_conf"]
    table = pre["prompt_template"]
    if system == "baseline":  # one English prompt for every language
        assert isinstance(table, str) and "Transcribe speech to text." in table
        assert "context_templates" not in pre
    else:
        assert sorted(table) == sorted(LANGUAGES)
        assert len(set(table.values())) == len(LANGUAGES)  # really one per language
    selector = PromptSelector(table)
    ctx = ContextPrompt(pre["context_templates"]) if "context_templates" in pre else None
    sides = {"baseline": (), "s1": (), "s4": (), "s2": ("history",),
             "s3": ("history", "future")}[system]
    assert bool(pre.get("context_masking")) == bool(sides)
    for label in LABELS:
        template = selector.select(label)
        assert ("context" in template.fields) == bool(sides), (system, label)
        cases = {}
        for name, (prev, nxt) in {"none": ("", ""), "history": ("PREV", ""),
                                  "future": ("", "NEXT"), "both": ("PREV", "NEXT")}.items():
            fields = _fields(prev, nxt)
            if ctx is not None:
                fields["context"] = ctx.render(label, fields)
            before, after = template.render(fields)
            assert before == "" and after.endswith("\n ASSISTANT:")
            cases[name] = after
        # no context: the plain instruction; each side shows up only when the system uses it
        assert "PREV" not in cases["none"] and "NEXT" not in cases["none"]
        assert ("PREV" in cases["history"]) == ("history" in sides)
        assert ("NEXT" in cases["future"]) == ("future" in sides)
        assert "NEXT" not in cases["history"] and "PREV" not in cases["future"]
        if sides == ("history", "future"):
            assert cases["both"].index("PREV") < cases["both"].index("NEXT")
    if sides:  # the S2/S3 prompts without context are exactly the S1 prompts
        s1 = PromptSelector(_yaml("s1.yaml")["preprocessor_conf"]["prompt_template"])
        for label in LABELS:
            fields = _fields()
            fields["context"] = ctx.render(label, fields)
            assert selector.select(label).render(fields) == s1.select(label).render({})


def test_decode_config_is_sllm_inference_options():
    from espnet_sllm.bin.sllm_inference import get_parser

    conf = yaml.safe_load((RECIPE / "conf/decode.yaml").read_text(encoding="utf-8"))
    assert (conf["beam_size"], conf["no_repeat_ngram_size"], conf["batch_size"]) == (4, 5, 8)
    argv = ["--output_dir", "x", "--train_config", "x", "--data_path_and_name_and_type", "a,b,c"]
    for k, v in conf.items():
        argv += [f"--{k}", str(v)]
    get_parser().parse_args(argv)  # an unknown option would exit


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from espnet_sllm.testing.tiny_checkpoints import make_tiny_checkpoints, prompt_strings

    sentences = ["hello world", "bonjour le monde"]
    for p in sorted(TUNING.glob("*_debug.yaml")):
        sentences += prompt_strings(str(p))
    out = tmp_path_factory.mktemp("tiny")
    make_tiny_checkpoints(str(out), sentences)
    return out


@pytest.mark.parametrize("system", SYSTEMS)
def test_debug_config_dry_run(system, tiny, tmp_path):
    """The real `sllm_train --dry_run true` (builds the model from the tiny checkpoints), then
    the preprocessor of the config on one utterance per language, with and without context."""
    from espnet_sllm.bin.sllm_train import main
    from espnet_sllm.tasks.sllm import SLLMTask

    conf = _yaml(f"{system}_debug.yaml")
    assert conf["encoder_conf"]["model_name_or_path"] == "exp_debug/tiny/whisper"
    assert conf["llm_conf"]["model_name_or_path"] == "exp_debug/tiny/gemma2"
    conf["encoder_conf"]["model_name_or_path"] = str(tiny / "whisper")
    conf["llm_conf"]["model_name_or_path"] = str(tiny / "gemma2")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(conf, allow_unicode=True), encoding="utf-8")
    main(["--config", str(cfg), "--dry_run", "true", "--output_dir", str(tmp_path / "exp")])
    assert (tmp_path / "exp" / "config.yaml").is_file()
    args = _parse(cfg)
    model = SLLMTask.build_model(args)
    assert type(model.encoder).__name__ == "HFWhisperEncoder"
    assert type(model.llm.model).__name__ == "Gemma2ForCausalLM"
    pre = SLLMTask.build_preprocess_fn(args, train=True)
    speech = np.zeros(1600, np.float32)
    for label in LABELS:
        plain = pre("u", {"speech": speech, "text": "hello world", "lang": label})
        ctx = pre("u", {"speech": speech, "text": "hello world", "lang": label,
                        "text_prev": "bonjour", "text_next": "monde"})
        assert plain["suffix"].size and plain["text"][-1] == pre.tokenizer.eos_token_id
        assert (ctx["suffix"].size > plain["suffix"].size) == (system in ("s2", "s3"))


@pytest.mark.parametrize("system", SYSTEMS)
def test_full_size_config_states_dtypes_and_dry_runs(system, tiny, tmp_path):
    """Every full-size config names the dtype of each pretrained component, and passes the real
    `sllm_train --dry_run true` with every key as written, only the two checkpoint paths
    pointed at tiny checkpoints of the same architectures (no hub here); the built model keeps
    the frozen Whisper in the config's dtype through ESPnet's --train_dtype cast."""
    import torch

    from espnet_sllm.bin.sllm_train import main
    from espnet_sllm.tasks.sllm import SLLMTask

    conf = _yaml(f"{system}.yaml")
    assert conf["encoder_conf"]["model_name_or_path"] == "openai/whisper-large-v3"
    assert conf["llm_conf"]["model_name_or_path"] == "google/gemma-2-2b"
    assert conf["encoder_conf"]["dtype"] == "bfloat16" and conf["encoder_conf"]["freeze"] is True
    # Gemma-2-2B is fully fine-tuned: trained weights are fp32 masters (bf16 under --use_amp)
    assert conf["llm_conf"]["dtype"] == "float32" and conf["llm_conf"]["freeze"] is False
    conf["encoder_conf"]["model_name_or_path"] = str(tiny / "whisper")
    conf["llm_conf"]["model_name_or_path"] = str(tiny / "gemma2")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(conf, allow_unicode=True), encoding="utf-8")
    main(["--config", str(cfg), "--dry_run", "true", "--output_dir", str(tmp_path / "exp")])
    model = SLLMTask.build_model(_parse(cfg)).to(dtype=torch.float32)
    assert {p.dtype for p in model.encoder.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in model.llm.parameters()} == {torch.float32}
