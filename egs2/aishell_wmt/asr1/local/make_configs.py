#!/usr/bin/env python3
"""Write every conf/tuning/*.yaml of egs2/aishell_wmt/asr1 from the tables of this file.

Usage:
    local/make_configs.py            # (re)write conf/tuning/{align,lora,dims3072,dims2048,
                                     #   dims1024}{,_debug}.yaml
    local/make_configs.py --check    # exit 1 and list the files that differ from the tables
    (run from egs2/aishell_wmt/asr1 with the project's Python, e.g. tools/venv/bin/python)

Wu, Yan, Pu, "Transferable speech-to-text large language model alignment module": Whisper-large-v3
(frozen, 30-s padding, only the frames of real audio go on) -> ONE linear layer 1280 -> 4096 (the
alignment module) -> Yi-6B (frozen), multi-task: asr, st (zh -> en), sqa (spoken question), qa
(text question, no audio), with the prompts of the paper's Fig. 2 and eight special tokens whose
embedding rows train with the linear layer.

    align       the linear layer (+ the 8 token rows) trains; Tables 1-3
    lora        starts from align's best (run.sh: --init_param); the linear layer and token rows
                frozen, LoRA r 16 / alpha 32 on the LLM trains; Table 1's "Yi-6B-LoRA"
    dims<d>     align with only the first d of the 4096 outputs trained (the others are 0);
                Table 3, d = 3072 / 2048 / 1024

ESPnet YAML has no includes, so the files repeat what they share; this script is their single
source and tests/recipe/test_aishell_wmt_configs.py checks that the committed files equal its
output.  Edit the tables here, run the script, commit both.
"""
import os
import sys
from typing import Dict, List

from espnet_sllm.config_files import make_configs_main, render_config

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE = os.path.dirname(HERE)
TUNING = os.path.join(RECIPE, "conf", "tuning")

#: the paper's special tokens (§2.2); their embedding rows train with the linear layer
SPECIAL_TOKENS = ["<|Human|>", "<|startofaudio|>", "<|endofaudio|>", "<|asr|>", "<|st|>",
                  "<|qa|>", "<|text|>", "<|Assistant|>"]
#: Fig. 2, verbatim (the space after the speech-task tokens as printed); qa has no audio
PROMPTS = {
    "asr": "<|Human|><|startofaudio|>{speech}<|endofaudio|><|asr|> 识别出音频内容\n<|Assistant|>",
    "st": "<|Human|><|startofaudio|>{speech}<|endofaudio|><|st|> 翻译音频内容为英文\n<|Assistant|>",
    "sqa": "<|Human|><|startofaudio|>{speech}<|endofaudio|><|qa|> 回答音频问题\n<|Assistant|>",
    "qa": "<|Human|><|startofaudio|>{speech}<|endofaudio|><|text|>{text_src}\n<|Assistant|>",
}
#: system -> (first header line, trainable_dims of the full-size config)
SYSTEMS = {
    "align": ("align: the linear alignment module (+ the 8 special-token rows) trains", None),
    "lora": ("lora: from align's best, LoRA r 16 on the frozen Yi-6B trains (linear layer and "
             "token rows frozen)", None),
    "dims3072": ("dims3072: align with 3072 of the 4096 outputs trained (Table 3)", 3072),
    "dims2048": ("dims2048: align with 2048 of the 4096 outputs trained (Table 3)", 2048),
    "dims1024": ("dims1024: align with 1024 of the 4096 outputs trained (Table 3)", 1024),
}
#: the tiny Llama of the debug twins is 64 wide: its dims are 3/4, 1/2, 1/4 of it
DEBUG_DIMS = {3072: 48, 2048: 32, 1024: 16}


def config(system: str, debug: bool) -> dict:
    """The training config of ``system`` (full size, or its CPU debug twin: the same keys)."""
    dims = SYSTEMS[system][1]
    lora = system == "lora"
    projector_conf = {"downsample": 1}
    if dims is not None:
        projector_conf["trainable_dims"] = DEBUG_DIMS[dims] if debug else dims
    lr = (1.0e-3 if debug else 1.0e-4) if lora else 1.0e-3
    return {
        "encoder": "whisper_hf",
        "encoder_conf": {
            "model_name_or_path": "exp_debug/tiny/whisper" if debug else "openai/whisper-large-v3",
            # 30-s padding as Whisper was trained; only the frames of the real audio go on
            "pad_to_30s": True,
            "long_audio": "split",  # test utterances over 30 s (training drops them)
            "freeze": True,
            "dtype": "float32" if debug else "bfloat16",
        },
        "projector": "linear",
        "projector_conf": projector_conf,
        "llm": "hf",
        "llm_conf": {
            "model_name_or_path": "exp_debug/tiny/llama" if debug else "01-ai/Yi-6B",
            "dtype": "float32" if debug else "bfloat16",  # frozen base
            "freeze": True,
            "gradient_checkpointing": not debug,
            "special_tokens": SPECIAL_TOKENS,
            "lora_r": 16 if lora else 0,
            "lora_alpha": 32,
            "lora_dropout": 0.05,
            "lora_target_modules": ["q_proj", "v_proj"],
        },
        "model_conf": {"ctc_weight": 0.0},
        "preprocessor_conf": {
            "prompt_key": "task",
            "prompt_template": dict(PROMPTS),
            "text_only_tasks": ["qa"],
        },
        # lora: the alignment module and the token rows stay as align trained them
        "freeze_param": ["projector", "llm.new_token_embeddings"] if lora else [],
        "optim": "adamw",
        "optim_conf": {"lr": lr, "weight_decay": 0.0},
        "scheduler": "warmuplr",
        "scheduler_conf": {"warmup_steps": 10 if debug else 1000},
        # 128 utterances per update as the paper (8 GPUs x 16); one GPU: --train_args
        # "--batch_size 16 --accum_grad 8"
        "batch_type": "sorted",
        "batch_size": 8 if debug else 128,
        "accum_grad": 1,
        "max_epoch": 1 if debug else 5,
        "num_iters_per_epoch": 10 if debug else None,
        "best_model_criterion": [["valid", "acc", "max"]],
        "keep_nbest_models": 1,
        "use_amp": not debug,
        "num_workers": 0 if debug else 4,
        "num_att_plot": 0,
        "seed": 0,
    }


def header(system: str, debug: bool) -> List[str]:
    lines = [f"Wu et al. (transferable alignment module), {SYSTEMS[system][0]}.",
             "Whisper-large-v3 (frozen) -> Linear 1280 -> 4096 -> Yi-6B (frozen); asr / st / sqa / "
             "qa prompts of Fig. 2.",
             f"Run: ./run.sh --system {system.rstrip('0123456789')} --dataset N"
             + (f" --dims {SYSTEMS[system][1]}" if SYSTEMS[system][1] else "")
             + (" --debug true" if debug else "") + "."]
    if debug:
        lines.append("CPU debug twin: the same keys; exp_debug/tiny/* are written by "
                     "espnet_sllm.testing.tiny_checkpoints (run.sh --debug true).")
    lines.append("Generated by local/make_configs.py: edit SYSTEMS / PROMPTS / config() there.")
    return lines


def all_configs() -> Dict[str, str]:
    """{file name under conf/tuning: text} for every system and its debug twin."""
    return {f"{s}{'_debug' if d else ''}.yaml": render_config(header(s, d), config(s, d))
            for s in SYSTEMS for d in (False, True)}


def main(argv=None) -> int:
    return make_configs_main(__doc__, TUNING, all_configs, argv)


if __name__ == "__main__":
    sys.exit(main())
