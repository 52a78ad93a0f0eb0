#!/usr/bin/env python3
"""Write every conf/tuning/*.yaml of egs2/mls/asr1 and egs2/mls/st1 (Ideal-LLM) from the tables
of this file.

Usage:
    local/make_configs.py            # (re)write ../asr1/conf/tuning/<system>{,_debug}.yaml
                                     # and ../st1/conf/tuning/<system>{,_debug}.yaml
    local/make_configs.py --check    # exit 1 and list the files that differ from the tables
    (run from egs2/mls/asr1 with the project's Python, e.g. tools/venv/bin/python)

ESPnet YAML has no includes, so every config repeats what the systems share; this script is the
single source of both recipes' configs (st1 starts from asr1's models, so they share the model
part), and tests/recipe/test_mls_configs.py checks that the committed files equal its output.

Xue et al., "Ideal-LLM: Integrating Dual Encoders and Language-Adapted LLM for Multilingual
Speech-to-Text": whisper-large-v3 and MMS (frozen) -> a Transformer adapter each -> language
weight selector (LID adapter, w' = sigmoid(W[l])) -> conv1d 2x -> Linear -> Phi-3-mini
(frozen); only the connector trains.  Loss (1-α)·CE + α·CTC + β·LID.
"""
import os
import sys
from typing import Dict, List, Optional

from espnet_sllm.config_files import make_configs_main, render_config

HERE = os.path.dirname(os.path.abspath(__file__))
MLS = os.path.dirname(os.path.dirname(HERE))  # egs2/mls

LANGUAGES = ["en", "de", "nl", "fr", "es", "it", "pt", "pl"]
#: MMS size -> (hub id, debug folder)
MMS = {"300m": "facebook/mms-300m", "1b": "facebook/mms-1b"}
#: asr1 system -> (what, MMS size or None, selector, ctc α, LID β, adapter layers, train set,
#:                 peak lr, updates, seconds of audio per update)
ASR_SYSTEMS = {
    "baseline": ("Baseline: Whisper branch only, no CTC (Table III '- CTC')", None, None,
                 0.0, 0.0, 4, "train_en10k", 5.0e-4, 26000, 3200),
    "base": ("Ideal-LLM Base: + mms-300m, language weight selector, CTC, LID", "300m",
             "language", 0.1, 0.05, 4, "train_en10k", 5.0e-4, 26000, 3200),
    "base_no_ws": ("Base - Weight Selector: w' = 0.5, no LID", "300m", "fixed", 0.1, 0.0, 4,
                   "train_en10k", 5.0e-4, 26000, 3200),
    "base_no_dual": ("Base - Dual Encoders: Whisper only, CTC", None, None, 0.1, 0.0, 4,
                     "train_en10k", 5.0e-4, 26000, 3200),
    "large": ("Ideal-LLM Large: mms-1b, 9-layer adapters, all of MLS", "1b", "language", 0.1,
              0.05, 9, "train", 2.0e-4, 50000, 6400),
}
#: st1 system -> (asr1 system it starts from, chain of thought, peak lr)
ST_SYSTEMS = {
    "baseline": ("baseline", False, 1.0e-4),
    "base": ("base", False, 1.0e-4),
    "large": ("large", False, 5.0e-5),
    "base_cot": ("base", True, 1.0e-4),
    "large_cot": ("large", True, 5.0e-5),
}
#: Phi-3's chat format (ours: the paper gives the instructions only)
CHAT = "<|user|>\n{speech}{instruction}<|end|>\n<|assistant|>\n"
ASR_PROMPT = "Transcribe the speech to text."
TGT_NAMES = {"de": "German", "en": "English"}
ST_PROMPT = "Translate the speech to {language}."
COT_PROMPT = ("First transcribe the speech to text, and then translate the speech to "
              "{language}.")
COT_MARKER = "Translation:"


def model_part(mms: Optional[str], selector: Optional[str], ctc: float, lid: float,
               layers: int, debug: bool, tiny: str) -> dict:
    """encoder / projector / LLM / model_conf of an Ideal-LLM system (the debug twin: the same
    keys at the tiny checkpoints' widths, read from the folder ``tiny``)."""
    frozen = "float32" if debug else "bfloat16"
    enc = {
        "whisper": "whisper_hf",
        "whisper_conf": {
            "model_name_or_path": f"{tiny}/whisper" if debug else "openai/whisper-large-v3",
            # the 30-s window Whisper was trained on; the frames of the real audio go on
            "pad_to_30s": True,
            "freeze": True,
            "dtype": frozen,
        },
        "mms": "mms_hf" if mms else None,
    }
    if mms:
        enc["mms_conf"] = {"model_name_or_path": f"{tiny}/mms" if debug else MMS[mms],
                           "freeze": True, "dtype": frozen}
    # ours: the paper gives the layer counts only (0.070/0.111/0.170/0.315 B trainable vs its
    # 0.075/0.116/0.172/0.303: README "Parameters")
    enc.update({"adapter_size": 32 if debug else 1280, "adapter_layers": layers,
                "adapter_heads": 4 if debug else 20, "adapter_ffn": 64 if debug else 3072,
                "adapter_dropout": 0.1, "selector": selector})
    model_conf = {"ctc_weight": ctc, "ctc_input": "encoder"}
    if selector == "language":
        model_conf["aux_weights"] = {"lid": lid}
    return {
        "languages": LANGUAGES,
        "encoder": "dual",
        "encoder_conf": enc,
        "projector": "conv1d",
        # Conv1d(1280 -> 1280, kernel 4, stride 2) -> ReLU -> Linear(1280 -> 3072)
        "projector_conf": {"downsample": 2, "hidden": 32 if debug else 1280},
        "llm": "hf",
        "llm_conf": {
            "model_name_or_path": (f"{tiny}/phi3" if debug
                                   else "microsoft/Phi-3-mini-4k-instruct"),
            "dtype": frozen,
            "freeze": True,
            "gradient_checkpointing": False,  # frozen: no activations kept for its weights
        },
        "model_conf": model_conf,
    }


def training_part(lr: float, updates: int, seconds: int, debug: bool) -> dict:
    """Adam, warmuplr (2k updates), the paper's audio per update; an epoch = 1000 updates
    (validation and checkpoint every 1000 updates, ours)."""
    accum = 1 if debug else 4
    return {
        "optim": "adam",
        "optim_conf": {"lr": 1.0e-3 if debug else lr, "weight_decay": 0.0},
        # ESPnet's WarmupLR peaks at optim_conf.lr at the end of the warm-up
        "scheduler": "warmuplr",
        "scheduler_conf": {"warmup_steps": 5 if debug else 2000},
        # numel: samples of audio (+ target tokens) per mini-batch, global over the GPUs;
        # batch_bins x accum_grad = the paper's seconds per update x 16 kHz whatever --ngpu
        "batch_type": "numel",
        "batch_bins": 200000 if debug else seconds * 16000 // accum,
        "accum_grad": accum,
        "max_epoch": 1 if debug else updates // 1000,
        "num_iters_per_epoch": 10 if debug else 1000 * accum,
        "best_model_criterion": [["valid", "acc", "max"]],
        "keep_nbest_models": 5,  # valid.acc.ave_5best.pth is decoded
        "patience": None,  # no early stopping: the paper trains a fixed number of updates
        "save_strategy": "required_grad_only",  # the connector only (the rest: hub files)
        "use_amp": not debug,
        "num_workers": 0 if debug else 4,
        "num_att_plot": 0,
        "seed": 0,
    }


def asr_config(system: str, debug: bool) -> dict:
    _, mms, selector, ctc, lid, layers, _, lr, updates, seconds = ASR_SYSTEMS[system]
    cfg = model_part(mms, selector, ctc, lid, layers, debug, "exp_debug/tiny")
    cfg["preprocessor_conf"] = {"prompt_template": CHAT.replace("{instruction}", ASR_PROMPT)}
    cfg.update(training_part(lr, updates, seconds, debug))
    return cfg


def st_config(system: str, debug: bool) -> dict:
    asr, cot, lr = ST_SYSTEMS[system]
    _, mms, selector, ctc, lid, layers, _, _, _, seconds = ASR_SYSTEMS[asr]
    # asr1's tiny checkpoints: the frozen parts and the tokenizer of the model it starts from
    cfg = model_part(mms, selector, ctc, lid, layers, debug, "../asr1/exp_debug/tiny")
    instruction = COT_PROMPT if cot else ST_PROMPT
    pre = {
        # "Translate the speech to German." for en->de, "... English." otherwise (utt2tgtlang)
        "prompt_key": "tgt_lang",
        "prompt_template": {code: CHAT.replace("{instruction}",
                                               instruction.replace("{language}", name))
                            for code, name in TGT_NAMES.items()},
        "target_template": (f"{{text}} {COT_MARKER} {{text_tgt}}" if cot else "{text_tgt}"),
    }
    if cot:
        pre["hyp_marker"] = COT_MARKER
    if ctc:
        pre["ctc_text_name"] = "text"  # CTC on the transcript (ours)
    cfg["preprocessor_conf"] = pre
    cfg.update(training_part(lr, 10000, seconds, debug))
    return cfg


def header(recipe: str, system: str, debug: bool) -> List[str]:
    if recipe == "asr1":
        what = ASR_SYSTEMS[system][0]
        lines = [f"Xue et al. (Ideal-LLM), MLS ASR, {what}.",
                 f"Training set data/{ASR_SYSTEMS[system][6]}; decoded: valid.acc.ave_5best.pth.",
                 f"Run: ./run.sh --system {system}" + (" --debug true" if debug else "") + "."]
    else:
        asr, cot, _ = ST_SYSTEMS[system]
        lines = [f"Xue et al. (Ideal-LLM), CoVoST 2 AST, {system}: from asr1's {asr} model"
                 + (", chain-of-thought prompt and target" if cot else ", direct prompt") + ".",
                 f"Run: ./run.sh --system {system}" + (" --debug true" if debug else "")
                 + f" (after asr1's ./run.sh --system {asr}"
                 + (" --debug true" if debug else "") + ")."]
    if debug:
        lines.append("CPU debug twin: the same keys; asr1's exp_debug/tiny/* are written by "
                     "espnet_sllm.testing.tiny_checkpoints (asr1's run.sh --debug true).")
    lines.append("Generated by egs2/mls/asr1/local/make_configs.py: edit the tables there.")
    return lines


def all_configs() -> Dict[str, str]:
    """{path under egs2/mls: text} for every system of both recipes and its debug twin."""
    out = {}
    for recipe, systems, build in (("asr1", ASR_SYSTEMS, asr_config),
                                   ("st1", ST_SYSTEMS, st_config)):
        for s in systems:
            for debug in (False, True):
                name = f"{recipe}/conf/tuning/{s}{'_debug' if debug else ''}.yaml"
                out[name] = render_config(header(recipe, s, debug), build(s, debug))
    return out


def main(argv=None) -> int:
    return make_configs_main(__doc__, MLS, all_configs, argv)


if __name__ == "__main__":
    sys.exit(main())
