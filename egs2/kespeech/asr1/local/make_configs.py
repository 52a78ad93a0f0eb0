#!/usr/bin/env python3
"""Write every conf/tuning/*.yaml of egs2/kespeech/asr1 from the tables of this file.

Usage:
    local/make_configs.py            # (re)write conf/tuning/<system>_s{1..4}{,_debug}.yaml,
                                     # conf/tuning/ctc_finetune{,_debug}.yaml and
                                     # conf/tuning/sweep/<point>{,_debug}.yaml
    local/make_configs.py --check    # exit 1 and list the files that differ from the tables
    (run from egs2/kespeech/asr1 with the project's Python, e.g. tools/venv/bin/python)

ESPnet YAML has no includes, so every config repeats what the systems share; this script is the
single source, and tests/recipe/test_kespeech_configs.py checks that the committed files equal
its output.  Edit the tables here, run the script, commit both.

Xu et al., "Leveraging LLM and Self-Supervised Training Models for Speech Recognition in Chinese
Dialects": TeleSpeech data2vec 2.0 (25 Hz, 1024) -> projector (k-fold downsampling) -> Qwen2,
trained in four stages that share ONE architecture (LoRA r 12 / alpha 32 on q_proj, v_proj present
from stage 1, its B = 0 until stage 3 trains it) and differ only in ``freeze_param``:

    s1  the projector trains                       freeze_param: [encoder, llm]
    s2  the encoder trains                         freeze_param: [projector, llm]
    s3  LoRA (or, for *_full, the LLM body) trains freeze_param: [encoder, projector]
    s4  the entire model: encoder + projector + LoRA (ours)   freeze_param: []

Systems = the rows of the paper's Table 3 (``SYSTEMS``); Table 4's two Qwen2.5-3B systems are
``q3_linear_k4`` and ``q3_conv1d_k4`` decoded after every stage.  The sweep (Tables 1 and 2) is
Qwen2-0.5B, stage 1 only, {linear, conv1d, transformer} x k {1, 2, 4, 8} + qformer, x encoder
{pretrained, ctc}.
"""
import os
import sys
from typing import Dict, Tuple

from espnet_sllm.config_files import make_configs_main, render_config

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE = os.path.dirname(HERE)
TUNING = os.path.join(RECIPE, "conf", "tuning")

#: LLM key -> (hub id, hidden size, what the paper calls it)
LLMS = {
    "q05": ("Qwen/Qwen2-0.5B", 896, "Qwen2 0.5B"),
    "q15": ("Qwen/Qwen2-1.5B", 1536, "Qwen2 1.5B"),
    "q3": ("Qwen/Qwen2.5-3B", 2048, "Qwen2.5 3B"),
    "q7": ("Qwen/Qwen2-7B", 3584, "Qwen2 7B"),
}
#: encoder key -> (full-size checkpoint folder, debug folder, what it is).  The folders are
#: written by ``python -m espnet_sllm.bin.convert_data2vec2`` (README: "Checkpoints").
ENCODERS = {
    "ctc": ("downloads/telespeech_large_ctc", "exp_debug/tiny/data2vec2_ctc",
            "CTC fine-tuned TeleSpeech data2vec 2.0"),
    "pt": ("downloads/telespeech_large", "exp_debug/tiny/data2vec2",
           "pre-trained TeleSpeech data2vec 2.0 (large.pt)"),
}
#: Table 3: system -> (LLM, encoder, projector, k, LLM fine-tuning: lora | full)
SYSTEMS: Dict[str, Tuple[str, str, str, int, str]] = {
    "q05_conv1d_k2": ("q05", "ctc", "conv1d", 2, "lora"),
    "q05_conv1d_k4": ("q05", "ctc", "conv1d", 4, "lora"),
    "q05_conv1d_k4_full": ("q05", "ctc", "conv1d", 4, "full"),
    "q15_conv1d_k4": ("q15", "ctc", "conv1d", 4, "lora"),
    "q3_linear_k4_pt": ("q3", "pt", "linear", 4, "lora"),
    "q3_linear_k4": ("q3", "ctc", "linear", 4, "lora"),
    "q3_conv1d_k4": ("q3", "ctc", "conv1d", 4, "lora"),
    "q7_conv1d_k4": ("q7", "ctc", "conv1d", 4, "lora"),
}
#: stage -> (freeze_param, what trains)
STAGES = {
    1: (["encoder", "llm"], "the projector"),
    2: (["projector", "llm"], "the encoder"),
    3: (["encoder", "projector"], "LoRA (the LLM body for *_full)"),
    4: ([], "the entire model: encoder + projector + LoRA (LLM body for *_full)"),
}
SWEEP_PROJECTORS = ("linear", "conv1d", "transformer")
SWEEP_RATES = (1, 2, 4, 8)
#: the prompt before the speech (eq. 5: Regulation(E_p, E_s, E_t)); no chat template (ours)
PROMPT = "Transcribe the following speech{speech}"


def projector(kind: str, k: int, debug: bool) -> Tuple[str, dict]:
    """(projector name, projector_conf) of the paper's projector ``kind`` at rate k (SLAM-LLM's
    settings; the debug twin: the same keys at encoder width 32)."""
    if kind == "linear":  # z = k stacked frames, e = W2 ReLU(W1 z + b1) + b2, W1: 2048 x 1024k
        return "mlp", {"downsample": k, "hidden": 64 if debug else 2048, "activation": "relu"}
    if kind == "conv1d":  # Conv1d(kernel k, stride k) -> ReLU -> Linear -> ReLU -> Linear
        return "conv1d", {"downsample": k, "kernel_size": k, "hidden": 32 if debug else 1024,
                          "head_hidden": 64 if debug else 2048}
    if kind == "transformer":  # Geng et al. give no sizes: ours
        return "transformer", {"downsample": k, "hidden": 32 if debug else 1024,
                               "num_layers": 2, "num_heads": 4 if debug else 16,
                               "ffn": 64 if debug else 4096}
    if kind == "qformer":  # BLIP-2 Q-Former, 64 queries (8 in the debug twin)
        return "qformer_blip2", {
            "num_queries": 8 if debug else 64, "hidden": 32 if debug else 768,
            "num_layers": 2 if debug else 8, "num_heads": 4 if debug else 12,
            "ffn": 64 if debug else 3072, "cross_attention_frequency": 2, "dropout": 0.1}
    raise ValueError(f"unknown projector {kind!r}; valid: linear, conv1d, transformer, qformer")


def config(llm: str, encoder: str, proj: str, k: int, tuning: str, freeze_param: list,
           debug: bool, ctc_only: bool = False) -> dict:
    """One training config (full size, or its CPU debug twin: the same keys)."""
    name, conf = projector(proj, k, debug)
    llm_conf = {
        "model_name_or_path": "exp_debug/tiny/qwen2" if debug else LLMS[llm][0],
        # LoRA: the frozen base in bf16 (peft keeps the adapters in fp32); full: fp32 master
        # weights under bf16 autocast (use_amp)
        "dtype": "bfloat16" if tuning == "lora" and not debug else "float32",
        "gradient_checkpointing": not debug,
        "freeze": tuning == "lora",
        "lora_r": 12 if tuning == "lora" else 0,
        "lora_alpha": 32,
        "lora_dropout": 0.05,
        "lora_target_modules": ["q_proj", "v_proj"],
    }
    lr = 1.0e-3 if debug else 1.0e-5
    cfg = {
        "encoder": "data2vec2",
        "encoder_conf": {
            "model_name_or_path": ENCODERS[encoder][1 if debug else 0],
            # trains in s2 and s4; frozen by freeze_param it runs in eval mode under no_grad
            "freeze": False,
            "dtype": "float32",
            "gradient_checkpointing": not debug,
        },
        "projector": name,
        "projector_conf": conf,
        "llm": "hf",
        "llm_conf": llm_conf,
        # ctc_weight 1.0: CTC alone on the encoder output, the LLM never runs (--ctc_finetune)
        "model_conf": ({"ctc_weight": 1.0, "ctc_input": "encoder"} if ctc_only
                       else {"ctc_weight": 0.0}),
        "preprocessor_conf": {"prompt_template": PROMPT},
        "freeze_param": freeze_param,
        "optim": "adamw",
        "optim_conf": {"lr": lr, "betas": [0.9, 0.99], "eps": 1.0e-6, "weight_decay": 0.01},
        # linear warm-up over 1000 updates (10 in debug), then constant: the last point is
        # 10^9 updates away (ESPnet's piecewise scheduler decays after its last point)
        "scheduler": "piecewiselinearwarmuplr",
        "scheduler_conf": {"warmup_steps_list": [0, 10 if debug else 1000, 1000000000],
                           "warmup_lr_list": [0.0, lr, lr]},
        # the paper clips by value at 5; SLAM-LLM (its framework) clips the norm: ESPnet's
        "grad_clip": 5.0,
        # 100 utterances per update as the paper (its 5 x 20 needs batch >= number of GPUs
        # in ESPnet: 20 x 5 here, the same update; --train_args "--batch_size 5
        # --accum_grad 20" on one GPU)
        "batch_type": "sorted",
        "batch_size": 4 if debug else 20,
        "accum_grad": 1 if debug else 5,
        "max_epoch": 1 if debug else 30,
        # an epoch is one pass over the training set (8 mini-batches in debug)
        "num_iters_per_epoch": 8 if debug else None,
        "patience": 3,
        "early_stopping_criterion": ["valid", "acc", "max"],
        "best_model_criterion": [["valid", "acc", "max"]],
        "keep_nbest_models": 1,
        "use_amp": not debug,
        "num_workers": 0 if debug else 4,
        "num_att_plot": 0,
        "seed": 0,
    }
    if ctc_only:
        # CTC over the LLM vocabulary: 10 epochs as the paper, the accuracy is CTC's
        cfg["max_epoch"] = 1 if debug else 10
    return cfg


def render(head: list, cfg: dict, debug: bool, regenerate: str) -> str:
    if debug:
        head = head + ["CPU debug twin: the same keys; exp_debug/tiny/* are written by "
                       "espnet_sllm.testing.tiny_checkpoints (run.sh --debug true)."]
    return render_config(head + [f"Generated by local/make_configs.py: {regenerate}"], cfg)


def system_configs() -> Dict[str, str]:
    out = {}
    for system, (llm, enc, proj, k, tuning) in SYSTEMS.items():
        for stage, (freeze, what) in STAGES.items():
            head = [f"Xu et al. (KeSpeech), system {system}, stage {stage} of 4: {what} trains.",
                    f"{LLMS[llm][2]} ({'LoRA r 12' if tuning == 'lora' else 'full fine-tuning'}"
                    f"), {ENCODERS[enc][2]}, {proj} k={k} ({25 / k:g} Hz).",
                    f"Run: ./run.sh --system {system} (stages 1-4 chained)."]
            for debug in (False, True):
                name = f"{system}_s{stage}{'_debug' if debug else ''}.yaml"
                out[name] = render(head, config(llm, enc, proj, k, tuning, freeze, debug),
                                   debug, "edit SYSTEMS / STAGES there.")
    for debug in (False, True):
        head = ["--ctc_finetune true: the pre-trained TeleSpeech data2vec 2.0 fine-tuned with",
                "CTC alone (10 epochs, over the LLM vocabulary); run.sh exports its encoder to",
                "the folder of the systems' CTC encoder."]
        out[f"ctc_finetune{'_debug' if debug else ''}.yaml"] = render(
            head, config("q05", "pt", "linear", 4, "lora", ["projector", "llm"], debug,
                         ctc_only=True), debug, "edit config() there.")
    return out


def sweep_points() -> Dict[str, Tuple[str, str, int]]:
    """sweep point name -> (encoder, projector, k); qformer has no rate (k = 0)."""
    out = {}
    for enc in ("pt", "ctc"):
        for proj in SWEEP_PROJECTORS:
            for k in SWEEP_RATES:
                out[f"{enc}_{proj}_k{k}"] = (enc, proj, k)
        out[f"{enc}_qformer"] = (enc, "qformer", 0)
    return out


def sweep_configs() -> Dict[str, str]:
    out = {}
    for point, (enc, proj, k) in sweep_points().items():
        rate = f"k={k} ({25 / k:g} Hz)" if k else "64 queries"
        head = [f"Xu et al. (KeSpeech), sweep point {point} (Tables 1-2): Qwen2 0.5B,",
                f"{ENCODERS[enc][2]}, {proj} {rate}; stage 1 only (the projector trains).",
                "Run: ./run.sh --sweep true."]
        for debug in (False, True):
            out[f"sweep/{point}{'_debug' if debug else ''}.yaml"] = render(
                head, config("q05", enc, proj, k or 1, "lora", STAGES[1][0], debug), debug,
                "edit sweep_points() there.")
    return out


def all_configs() -> Dict[str, str]:
    """{path under conf/tuning: text} for every config and its debug twin."""
    return {**system_configs(), **sweep_configs()}


def main(argv=None) -> int:
    return make_configs_main(__doc__, TUNING, all_configs, argv)


if __name__ == "__main__":
    sys.exit(main())
