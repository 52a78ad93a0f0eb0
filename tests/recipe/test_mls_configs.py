"""egs2/mls/{asr1,st1}/conf (Ideal-LLM): generated configs equal the committed ones, the
paper's values in the full-size configs, the trainable parameter counts of the connector, and
sllm_train --dry_run for every config with tiny Whisper + MMS + Phi-3 checkpoints."""
import re
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[2]
ASR1 = REPO / "egs2/mls/asr1"
ST1 = REPO / "egs2/mls/st1"


def _load_make_configs():
    from espnet_sllm.testing.recipe import load_recipe_script

    return load_recipe_script(ASR1)


MC = _load_make_configs()
GENERATED = MC.all_configs()  # path relative to egs2/mls -> text


def _yaml(recipe, name):
    return yaml.safe_load((REPO / "egs2/mls" / recipe / "conf/tuning" / name).read_text("utf-8"))


def test_committed_configs_equal_the_generated_ones():
    assert len(GENERATED) == 2 * (len(MC.ASR_SYSTEMS) + len(MC.ST_SYSTEMS)) == 20
    for recipe in ("asr1", "st1"):
        tuning = REPO / "egs2/mls" / recipe / "conf/tuning"
        on_disk = sorted(f"{recipe}/conf/tuning/{p.name}" for p in tuning.glob("*.yaml"))
        assert on_disk == sorted(k for k in GENERATED if k.startswith(recipe + "/"))
    for rel, text in GENERATED.items():
        assert (REPO / "egs2/mls" / rel).read_text("utf-8") == text, (
            f"egs2/mls/{rel} differs from asr1/local/make_configs.py: run it and commit")


def test_run_sh_knows_the_same_systems():
    for recipe, systems in ((ASR1, MC.ASR_SYSTEMS), (ST1, MC.ST_SYSTEMS)):
        text = (recipe / "run.sh").read_text("utf-8")
        assert re.search(r'^systems="([^"]*)"', text, re.M).group(1).split() == list(systems)


def _keys(x, prefix=""):
    if not isinstance(x, dict):
        return set()
    return {f"{prefix}{k}" for k in x} | {k2 for k, v in x.items() for k2 in _keys(v, f"{prefix}{k}.")}


@pytest.mark.parametrize("rel", sorted(k for k in GENERATED if not k.endswith("_debug.yaml")))
def test_debug_twin_has_the_same_keys(rel):
    full = yaml.safe_load(GENERATED[rel])
    debug = yaml.safe_load(GENERATED[rel.replace(".yaml", "_debug.yaml")])
    assert _keys(full) == _keys(debug)
    assert full["preprocessor_conf"] == debug["preprocessor_conf"]
    assert full["model_conf"] == debug["model_conf"]


def _updates(c):
    return c["max_epoch"] * c["num_iters_per_epoch"] // c["accum_grad"]


def test_paper_values_asr1():
    base = _yaml("asr1", "base.yaml")
    enc = base["encoder_conf"]
    assert base["languages"] == ["en", "de", "nl", "fr", "es", "it", "pt", "pl"]
    assert base["encoder"] == "dual" and enc["selector"] == "language"
    assert enc["whisper_conf"]["model_name_or_path"] == "openai/whisper-large-v3"
    assert enc["whisper_conf"]["pad_to_30s"] is True and enc["whisper_conf"]["freeze"] is True
    assert enc["mms"] == "mms_hf" and enc["mms_conf"]["model_name_or_path"] == "facebook/mms-300m"
    assert enc["mms_conf"]["freeze"] is True
    assert (enc["adapter_size"], enc["adapter_layers"], enc["adapter_heads"],
            enc["adapter_ffn"], enc["adapter_dropout"]) == (1280, 4, 20, 3072, 0.1)
    assert base["projector"] == "conv1d" and base["projector_conf"] == {"downsample": 2,
                                                                        "hidden": 1280}
    assert base["llm_conf"]["model_name_or_path"] == "microsoft/Phi-3-mini-4k-instruct"
    assert base["llm_conf"]["freeze"] is True and "lora_r" not in base["llm_conf"]
    assert base["model_conf"] == {"ctc_weight": 0.1, "ctc_input": "encoder",
                                  "aux_weights": {"lid": 0.05}}
    assert base["optim"] == "adam" and base["optim_conf"] == {"lr": 5.0e-4, "weight_decay": 0.0}
    assert base["scheduler"] == "warmuplr" and base["scheduler_conf"] == {"warmup_steps": 2000}
    # 400 s x 8 GPUs of 16 kHz audio per update, 26k updates, 5 best averaged
    assert base["batch_type"] == "numel" and base["batch_bins"] * base["accum_grad"] == 51_200_000
    assert _updates(base) == 26000 and base["keep_nbest_models"] == 5
    assert base["save_strategy"] == "required_grad_only"
    assert "Transcribe the speech to text." in base["preprocessor_conf"]["prompt_template"]

    large = _yaml("asr1", "large.yaml")
    assert large["encoder_conf"]["mms_conf"]["model_name_or_path"] == "facebook/mms-1b"
    assert large["encoder_conf"]["adapter_layers"] == 9
    assert large["optim_conf"]["lr"] == 2.0e-4 and _updates(large) == 50000
    assert large["batch_bins"] * large["accum_grad"] == 102_400_000

    baseline = _yaml("asr1", "baseline.yaml")
    assert baseline["encoder_conf"]["mms"] is None and baseline["encoder_conf"]["selector"] is None
    assert baseline["model_conf"].get("ctc_weight", 0.0) == 0.0
    assert not (baseline["model_conf"].get("aux_weights") or {}).get("lid")
    no_ws = _yaml("asr1", "base_no_ws.yaml")
    assert no_ws["encoder_conf"]["selector"] == "fixed"
    assert not (no_ws["model_conf"].get("aux_weights") or {}).get("lid")
    no_dual = _yaml("asr1", "base_no_dual.yaml")
    assert no_dual["encoder_conf"]["mms"] is None and no_dual["model_conf"]["ctc_weight"] == 0.1


def test_paper_values_st1():
    for system, lr in (("baseline", 1e-4), ("base", 1e-4), ("large", 5e-5), ("base_cot", 1e-4),
                       ("large_cot", 5e-5)):
        c = _yaml("st1", f"{system}.yaml")
        assert c["optim_conf"]["lr"] == lr and _updates(c) == 10000, system
        pre = c["preprocessor_conf"]
        assert pre["prompt_key"] == "tgt_lang" and set(pre["prompt_template"]) == {"de", "en"}
        asr = _yaml("asr1", f"{system.replace('_cot', '')}.yaml")
        assert c["encoder_conf"] == asr["encoder_conf"] and c["model_conf"] == asr["model_conf"]
        if system.endswith("_cot"):
            assert pre["target_template"] == "{text} Translation: {text_tgt}"
            assert pre["hyp_marker"] == "Translation:"
            assert "First transcribe the speech to text, and then translate the speech to " \
                   "German." in pre["prompt_template"]["de"]
        else:
            assert pre["target_template"] == "{text_tgt}" and "hyp_marker" not in pre
            assert "Translate the speech to English." in pre["prompt_template"]["en"]


# Real checkpoint sizes: whisper-large-v3 d_model 1280; mms-300m 1024, mms-1b 1280; Phi-3-mini
# hidden 3072, vocabulary 32064.
MMS_WIDTH = {"facebook/mms-300m": 1024, "facebook/mms-1b": 1280}


@pytest.mark.parametrize("system,billions", [("baseline", 0.070), ("base_no_dual", 0.111),
                                             ("base", 0.170), ("large", 0.315)])
def test_trainable_parameters_at_full_size(system, billions):
    """The connector of each full-size config, built on the meta device with the checkpoints'
    real widths: 0.070/0.111/0.170/0.315 B (paper: 0.075/0.116/0.172/0.303)."""
    from espnet2.asr.ctc import CTC

    from espnet_sllm.encoders.fusion import LanguageWeightSelector, LIDAdapter, TransformerAdapter
    from espnet_sllm.projectors import projector_classes

    c = _yaml("asr1", f"{system}.yaml")
    e = c["encoder_conf"]
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    with torch.device("meta"):
        adapter = lambda d: TransformerAdapter(d, e["adapter_size"], e["adapter_layers"],  # noqa
                                               e["adapter_heads"], e["adapter_ffn"], 0.1)
        n = count(adapter(1280))
        if e["mms"]:
            n += count(adapter(MMS_WIDTH[e["mms_conf"]["model_name_or_path"]]))
            n += count(LIDAdapter(e["adapter_size"], len(c["languages"])))
            n += count(LanguageWeightSelector(c["languages"]))
        n += count(projector_classes[c["projector"]](e["adapter_size"], 3072,
                                                     **c["projector_conf"]))
        if c["model_conf"].get("ctc_weight"):
            n += count(CTC(odim=32064 + 1, encoder_output_size=e["adapter_size"]))
    assert round(n / 1e9, 3) == billions


@pytest.fixture(scope="module")
def tiny_mls(tmp_path_factory):
    """exp_debug/tiny/{whisper,mms,phi3} as asr1's run.sh --debug true writes them."""
    from espnet_sllm.testing.tiny_checkpoints import make_tiny_checkpoints, prompt_strings

    root = tmp_path_factory.mktemp("mls")
    prompts = [s for rel in GENERATED if rel.endswith("_debug.yaml")
               for s in prompt_strings(str(REPO / "egs2/mls" / rel))]
    make_tiny_checkpoints(str(root / "exp_debug/tiny"), ["hello world", "hallo welt"] + prompts,
                          llm_family="phi3", encoder="whisper_mms")
    return root / "exp_debug/tiny"


@pytest.mark.parametrize("rel", sorted(GENERATED))
def test_dry_run_every_config(rel, tiny_mls, tmp_path):
    """The real `sllm_train --dry_run true` on every config (the model is built and its
    trainable parameters counted); checkpoint paths pointed at the tiny ones (no hub here)."""
    from espnet_sllm.bin.sllm_train import main

    conf = yaml.safe_load(GENERATED[rel])
    e = conf["encoder_conf"]
    debug = rel.endswith("_debug.yaml")
    prefix = ("exp_debug/tiny" if rel.startswith("asr1/") else "../asr1/exp_debug/tiny")
    paths = {"whisper": e["whisper_conf"]["model_name_or_path"],
             "phi3": conf["llm_conf"]["model_name_or_path"]}
    if e["mms"]:
        paths["mms"] = e["mms_conf"]["model_name_or_path"]
    for name, path in paths.items():
        assert (path == f"{prefix}/{name}") if debug else not path.startswith(".")
    e["whisper_conf"]["model_name_or_path"] = str(tiny_mls / "whisper")
    if e["mms"]:
        e["mms_conf"]["model_name_or_path"] = str(tiny_mls / "mms")
    conf["llm_conf"]["model_name_or_path"] = str(tiny_mls / "phi3")
    if not debug:  # the full-size adapters would take minutes of CPU init: shrink their width
        e.update(adapter_size=40, adapter_heads=4, adapter_ffn=48)
        conf["projector_conf"]["hidden"] = 40
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(conf, allow_unicode=True), encoding="utf-8")
    main(["--config", str(cfg), "--dry_run", "true", "--output_dir", str(tmp_path / "exp")])
    assert (tmp_path / "exp" / "config.yaml").is_file()
