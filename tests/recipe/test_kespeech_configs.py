"""egs2/kespeech/asr1/conf: generated configs, the four-stage training plan (what trains in each
stage), and sllm_train --dry_run for every config with tiny checkpoints of the same
architectures (TeleSpeech data2vec 2.0 in fairseq's layouts, converted; Qwen2)."""
import inspect
import os
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs2/kespeech/asr1"
TUNING = RECIPE / "conf/tuning"


def _load_make_configs():
    from espnet_sllm.testing.recipe import load_recipe_script

    return load_recipe_script(RECIPE)


MC = _load_make_configs()
SYSTEMS = list(MC.SYSTEMS)


def _yaml(name):
    return yaml.safe_load((TUNING / name).read_text(encoding="utf-8"))


def test_committed_configs_equal_the_generated_ones():
    generated = MC.all_configs()
    assert len(generated) == 2 * (4 * len(SYSTEMS) + 1 + 26)
    on_disk = sorted(str(p.relative_to(TUNING)) for p in TUNING.rglob("*.yaml"))
    assert on_disk == sorted(generated), "conf/tuning holds files make_configs.py does not write"
    for name, text in generated.items():
        assert (TUNING / name).read_text(encoding="utf-8") == text, (
            f"conf/tuning/{name} differs from local/make_configs.py: run it and commit")


def test_run_sh_knows_the_same_systems_and_sweep_points():
    text = (RECIPE / "run.sh").read_text(encoding="utf-8")
    listed = " ".join(re.findall(r'^systems\+?="([^"]*)"', text, re.M)).split()
    assert listed == SYSTEMS
    points = sorted(p.stem for p in (TUNING / "sweep").glob("*.yaml")
                    if not p.stem.endswith("_debug"))
    assert points == sorted(MC.sweep_points()) and len(points) == 26


def _keys(x, prefix=""):
    if not isinstance(x, dict):
        return set()
    return {f"{prefix}{k}" for k in x} | {
        k2 for k, v in x.items() for k2 in _keys(v, f"{prefix}{k}.")}


@pytest.mark.parametrize("name", sorted(MC.all_configs()))
def test_debug_twin_same_keys_one_architecture_per_system(name):
    if name.endswith("_debug.yaml"):
        return
    full, debug = _yaml(name), _yaml(name.replace(".yaml", "_debug.yaml"))
    assert _keys(full) == _keys(debug)
    m = re.fullmatch(r"(.*)_s([1-4])\.yaml", name)
    if m:  # the 4 stages of a system: one architecture, only freeze_param differs
        s1 = _yaml(f"{m.group(1)}_s1.yaml")
        strip = lambda c: {k: v for k, v in c.items() if k != "freeze_param"}  # noqa: E731
        assert strip(full) == strip(s1)
        assert full["freeze_param"] == MC.STAGES[int(m.group(2))][0]


def test_paper_settings_of_the_full_size_configs():
    from espnet2.tasks.abs_task import optim_classes, scheduler_classes

    from espnet_sllm.tasks.sllm import encoder_choices, projector_choices
    conf = _yaml("q7_conv1d_k4_s1.yaml")
    assert conf["llm_conf"]["model_name_or_path"] == "Qwen/Qwen2-7B"
    assert (conf["llm_conf"]["lora_r"], conf["llm_conf"]["lora_alpha"]) == (12, 32)
    assert conf["llm_conf"]["lora_target_modules"] == ["q_proj", "v_proj"]
    assert conf["projector_conf"] == {"downsample": 4, "kernel_size": 4, "hidden": 1024,
                                      "head_hidden": 2048}
    assert conf["optim_conf"] == {"lr": 1.0e-5, "betas": [0.9, 0.99], "eps": 1.0e-6,
                                  "weight_decay": 0.01}
    assert conf["batch_size"] * conf["accum_grad"] == 100 and conf["grad_clip"] == 5.0
    assert _yaml("q05_conv1d_k4_full_s3.yaml")["llm_conf"]["lora_r"] == 0
    assert "telespeech_large_ctc" not in _yaml("q3_linear_k4_pt_s1.yaml")["encoder_conf"][
        "model_name_or_path"]
    assert _yaml("ctc_finetune.yaml")["model_conf"] == {"ctc_weight": 1.0, "ctc_input": "encoder"}
    # every *_conf key is an argument of its class (build_model fills input/output sizes)
    for name in MC.all_configs():
        c = _yaml(name)
        for cls, key in ((encoder_choices.get_class(c["encoder"]), "encoder_conf"),
                         (projector_choices.get_class(c["projector"]), "projector_conf"),
                         (optim_classes[c["optim"]], "optim_conf"),
                         (scheduler_classes[c["scheduler"]], "scheduler_conf")):
            params = inspect.signature(cls.__init__).parameters
            assert set(c[key]) <= set(params), (name, key)
            assert not {"input_size", "output_size"} & set(c[key]), (name, key)
    # warm-up to the lr, then constant
    sched = _yaml("q05_conv1d_k4_s2.yaml")["scheduler_conf"]
    assert sched["warmup_steps_list"][1] == 1000 and len(set(sched["warmup_lr_list"][1:])) == 1


@pytest.fixture(scope="module")
def tiny_recipe(tmp_path_factory):
    """A folder with exp_debug/tiny/{data2vec2,data2vec2_ctc,qwen2}, where the relative paths of
    the debug configs resolve."""
    from espnet_sllm.testing.tiny_checkpoints import make_tiny_checkpoints

    root = tmp_path_factory.mktemp("ks")
    make_tiny_checkpoints(str(root / "exp_debug/tiny"), ["你好 世界", "转写 下面 的 语音"],
                          llm_family="qwen2", encoder="data2vec2")
    return root


def _trainable(cfg_path, cwd):
    from espnet_sllm.chain import apply_freeze_param
    from espnet_sllm.tasks.sllm import SLLMTask

    old = os.getcwd()
    os.chdir(cwd)
    try:
        args = SLLMTask.get_parser().parse_args(["--config", str(cfg_path)])
        model = SLLMTask.build_model(args)
    finally:
        os.chdir(old)
    apply_freeze_param(model, args.freeze_param)
    return model, {n for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("system", ["q05_conv1d_k4", "q05_conv1d_k4_full"])
def test_what_trains_in_each_stage(system, tiny_recipe):
    """s1 the projector; s2 the encoder; s3 LoRA (the LLM body for _full); s4 all of them; the
    LoRA B matrices start at 0 (so stages 1-2 see the plain LLM)."""
    groups = {}
    for k in (1, 2, 3, 4):
        model, names = _trainable(TUNING / f"{system}_s{k}_debug.yaml", tiny_recipe)
        groups[k] = {n.split(".")[0] + (".lora" if "lora_" in n else "") for n in names}
        if k == 1:
            lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
            assert (len(lora_b) > 0) == (system == "q05_conv1d_k4")
            assert all(float(p.abs().sum()) == 0 for p in lora_b)
    llm = "llm.lora" if system == "q05_conv1d_k4" else "llm"
    assert groups == {1: {"projector"}, 2: {"encoder"}, 3: {llm},
                      4: {"encoder", "projector", llm}}


@pytest.mark.parametrize("name", sorted(MC.all_configs()))
def test_dry_run_every_config(name, tiny_recipe, tmp_path):
    """The real `sllm_train --dry_run true` on every config; full-size ones with every key as
    written except the checkpoint paths (no hub here), pointed at the tiny ones."""
    from espnet_sllm.bin.sllm_train import main

    conf = _yaml(name)
    enc, llm = conf["encoder_conf"]["model_name_or_path"], conf["llm_conf"]["model_name_or_path"]
    if name.endswith("_debug.yaml"):
        assert enc in ("exp_debug/tiny/data2vec2", "exp_debug/tiny/data2vec2_ctc")
        assert llm == "exp_debug/tiny/qwen2"
    else:
        assert enc in ("downloads/telespeech_large", "downloads/telespeech_large_ctc")
        assert llm.startswith("Qwen/Qwen2")
    tiny = tiny_recipe / "exp_debug/tiny"
    conf["encoder_conf"]["model_name_or_path"] = str(
        tiny / ("data2vec2_ctc" if enc.endswith("_ctc") else "data2vec2"))
    conf["llm_conf"]["model_name_or_path"] = str(tiny / "qwen2")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(conf, allow_unicode=True), encoding="utf-8")
    main(["--config", str(cfg), "--dry_run", "true", "--output_dir", str(tmp_path / "exp")])
    assert (tmp_path / "exp" / "config.yaml").is_file()


def test_stage4_load_check(tiny_recipe, tmp_path):
    """check_pretrained (stage 4) accepts the converted tiny encoder + Qwen2, and names the
    problem for a folder that is not a converted data2vec2 or a layer beyond its blocks."""
    from espnet_sllm.bin.check_pretrained import main

    tiny = tiny_recipe / "exp_debug/tiny"
    conf = _yaml("q05_conv1d_k4_s1_debug.yaml")
    conf["llm_conf"]["model_name_or_path"] = str(tiny / "qwen2")
    for enc, layer, expected in ((tiny / "data2vec2_ctc", -1, None),
                                 (tiny / "qwen2", -1, "not a data2vec2 config"),
                                 (tiny / "fairseq", -1, "config.json not found"),
                                 (tiny / "data2vec2", 5, "layer=5 does not fit its 4 blocks")):
        conf["encoder_conf"].update(model_name_or_path=str(enc), layer=layer)
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(conf, allow_unicode=True), encoding="utf-8")
        if expected is None:
            main(["--config", str(path)])
            continue
        with pytest.raises(SystemExit) as e:
            main(["--config", str(path)])
        assert f"encoder_conf.model_name_or_path='{enc}' does not load" in str(e.value)
        assert expected in str(e.value)


def test_chain_keeps_stage1_projector_and_stage2_encoder(tiny_recipe, tmp_path):
    """The four debug stages chained as stage 6 chains them, each saving only what it trained
    (--save_strategy required_grad_only, as for the 7B): stage 4 starts with the stage-1
    projector, the stage-2 encoder and the stage-3 LoRA, never a re-initialised part."""
    import torch
    from espnet2.torch_utils.load_pretrained_model import load_pretrained_model

    from espnet_sllm.chain import apply_freeze_param, write_stage
    from espnet_sllm.tasks.sllm import SLLMTask
    from espnet_sllm.testing.configs import config_to_args

    tiny = tiny_recipe / "exp_debug/tiny"
    for k in (1, 2, 3, 4):  # the configs as the user wrote them, checkpoints pointed at tiny
        conf = _yaml(f"q05_conv1d_k4_s{k}_debug.yaml")
        conf["encoder_conf"]["model_name_or_path"] = str(tiny / "data2vec2_ctc")
        conf["llm_conf"]["model_name_or_path"] = str(tiny / "qwen2")
        (tmp_path / f"s{k}.yaml").write_text(yaml.safe_dump(conf, allow_unicode=True),
                                             encoding="utf-8")
    trained, init_files, opts = {}, [], []
    for k in (1, 2, 3, 4):
        user = tmp_path / f"s{k}.yaml"
        conf = yaml.safe_load(user.read_text(encoding="utf-8"))
        run = tmp_path / f"s{k}.run.yaml"  # config.yaml as ESPnet writes it
        run.write_text(yaml.safe_dump(vars(config_to_args(conf)), allow_unicode=True),
                       encoding="utf-8")
        torch.manual_seed(100 + k)  # a part re-initialised by mistake would differ
        model, _ = SLLMTask.build_model_from_file(str(run), None, "cpu")
        apply_freeze_param(model, conf["freeze_param"])
        if opts:
            assert opts[0] == "--init_param"
            load_pretrained_model(opts[1], model, ignore_init_mismatch=False)
            state = model.state_dict()
            for name, value in trained.items():  # everything trained so far, as trained
                assert torch.equal(state[name], value), f"stage {k}: {name} not carried over"
        if k == 4:
            break
        with torch.no_grad():  # "training": change what this stage trains
            for name, p in model.named_parameters():
                if p.requires_grad:
                    p.add_(0.05)
                    trained[name] = p.detach().clone()
        model.save_trainable_only = True  # what build_model sets for required_grad_only
        saved = model.state_dict()
        assert not any(n.startswith("encoder.") for n in saved) == (k == 1)  # s1: pretrained
        torch.save(saved, tmp_path / f"s{k}.pth")
        out = tmp_path / f"chain{k}"
        write_stage(str(run), str(tmp_path / f"s{k}.pth"), str(out), input_config=str(user),
                    next_config=str(tmp_path / f"s{k + 1}.yaml") if k < 4 else None,
                    init_files=init_files)
        init_files = [str(out / "model.pth")]
        opts = (out / "next_opts").read_text().split()
    groups = {n.split(".")[0] + (".lora" if "lora_" in n else "") for n in trained}
    assert groups == {"projector", "encoder", "llm.lora"}


def test_unknown_conf_key_lists_the_valid_ones(tiny_recipe, tmp_path):
    """A rate for the Q-Former (and any key a component does not take) is an error listing the
    valid keys, before anything loads."""
    from espnet_sllm.tasks.sllm import SLLMTask

    conf = _yaml("sweep/pt_qformer_debug.yaml")
    conf["encoder_conf"]["model_name_or_path"] = str(tiny_recipe / "exp_debug/tiny/data2vec2")
    conf["llm_conf"]["model_name_or_path"] = str(tiny_recipe / "exp_debug/tiny/qwen2")
    conf["projector_conf"]["downsample"] = 4
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(conf, allow_unicode=True), encoding="utf-8")
    args = SLLMTask.get_parser().parse_args(["--config", str(path)])
    with pytest.raises(ValueError, match=r"projector_conf: unknown key\(s\) \['downsample'\] for "
                                         r"projector 'qformer_blip2' \(a Q-Former .* no rate.*; "
                                         r"valid keys: \['cross_attention_frequency', 'dropout'"):
        SLLMTask.build_model(args)
    args.projector_conf.pop("downsample")
    args.encoder_conf["mfcc"] = {}
    with pytest.raises(ValueError, match=r"encoder_conf: unknown key\(s\) \['mfcc'\] for encoder "
                                         r"'data2vec2'; valid keys: \['dtype', 'freeze', 'fs'"):
        SLLMTask.build_model(args)
