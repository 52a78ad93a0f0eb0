#!/usr/bin/env python3
"""Write every conf/tuning/*.yaml of egs2/mlc_slm/asr1 from one table of prompts.

Usage:
    local/make_configs.py            # (re)write conf/tuning/{baseline,s1,s2,s3,s4}{,_debug}.yaml
    local/make_configs.py --check    # exit 1 and list the files that differ from the table
    (run from egs2/mlc_slm/asr1 with the project's Python, e.g. tools/venv/bin/python)

ESPnet YAML has no includes, so every system config repeats its prompt table; this script is the
single source of the 11 languages' prompts and of the settings the systems share, and a test
(tests/recipe/test_mlc_slm_configs.py) checks that the committed files equal its output.  Edit
the tables here, run the script, commit both.

Systems (Peng, Liu, Chng, "Bi-directional Context-Enhanced Speech LLMs for Multilingual
Conversational ASR", MLC-SLM 2025):

    baseline  the English instruction "Transcribe speech to text." for every language
    s1        the instruction in the utterance's language (11 languages)
    s2        s1 + history: "The previous context is: <history>. " before the instruction
              (in the utterance's language), Algorithm-1 context masking in training;
              trained on the 2x set (every utterance with and without context)
    s3        s2 + future: "... The following context is: <future>. "; 2x set
    s4        s1's prompts, trained on MLC-SLM train + Common Voice 21.0 train

Prompt layout: SLAM-LLM's ASR layout (the speech embeddings, then ``USER: <prompt>\\n ASSISTANT:``,
then the transcript), with ``{context}`` rendered by the preprocessor from context_templates
(empty sides are left out, so an utterance without neighbours gets the plain instruction).
"""
import os
import sys
from typing import Dict, List

from espnet_sllm.config_files import make_configs_main, render_config

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE = os.path.dirname(HERE)
TUNING = os.path.join(RECIPE, "conf", "tuning")

#: language (MLC-SLM label without accent; English-American etc. fall back to English)
#: -> (instruction, history context, future context).  Natural translations of
#: "Transcribe speech to text.", "The previous context is: {text_prev}. ",
#: "The following context is: {text_next}. ".
PROMPTS: Dict[str, tuple] = {
    "English": ("Transcribe speech to text.",
                "The previous context is: {text_prev}. ",
                "The following context is: {text_next}. "),
    "French": ("Transcrivez la parole en texte.",
               "Le contexte précédent est : {text_prev}. ",
               "Le contexte suivant est : {text_next}. "),
    "German": ("Transkribiere die Sprache in Text.",
               "Der vorherige Kontext lautet: {text_prev}. ",
               "Der folgende Kontext lautet: {text_next}. "),
    "Italian": ("Trascrivi il parlato in testo.",
                "Il contesto precedente è: {text_prev}. ",
                "Il contesto successivo è: {text_next}. "),
    "Japanese": ("音声を文字に書き起こしてください。",
                 "前の文脈は「{text_prev}」です。",
                 "次の文脈は「{text_next}」です。"),
    "Korean": ("음성을 텍스트로 받아 적으세요.",
               "이전 문맥은 \"{text_prev}\"입니다. ",
               "다음 문맥은 \"{text_next}\"입니다. "),
    "Portuguese": ("Transcreva a fala em texto.",
                   "O contexto anterior é: {text_prev}. ",
                   "O contexto seguinte é: {text_next}. "),
    "Russian": ("Преобразуйте речь в текст.",
                "Предыдущий контекст: {text_prev}. ",
                "Следующий контекст: {text_next}. "),
    "Spanish": ("Transcribe el habla a texto.",
                "El contexto anterior es: {text_prev}. ",
                "El contexto siguiente es: {text_next}. "),
    "Thai": ("ถอดเสียงพูดเป็นข้อความ",
             "บริบทก่อนหน้าคือ: {text_prev} ",
             "บริบทถัดไปคือ: {text_next} "),
    "Vietnamese": ("Chuyển lời nói thành văn bản.",
                   "Ngữ cảnh trước đó là: {text_prev}. ",
                   "Ngữ cảnh tiếp theo là: {text_next}. "),
}
LANGUAGES = tuple(PROMPTS)

#: SLAM-LLM's ASR prompt around the instruction; {context} is "" without context templates.
LAYOUT = "{speech}USER: {prompt}\n ASSISTANT:"

SYSTEMS = {
    # name: (prompt kind, context sides, first line of the config)
    "baseline": ("english", (), "Baseline"),
    "s1": ("per_language", (), "S1 (language-specific prompts)"),
    "s2": ("per_language", ("history",), "S2 (language-specific prompts + history context)"),
    "s3": ("per_language", ("history", "future"),
           "S3 (language-specific prompts + history and future context)"),
    "s4": ("per_language", (), "S4 (S1 prompts, MLC-SLM + Common Voice 21.0 training data)"),
}
TRAIN_SETS = {
    "baseline": "train",
    "s1": "train",
    "s2": "train_ctx2x (train with context + its context-free copy, made by run.sh after stage 3)",
    "s3": "train_ctx2x (train with context + its context-free copy, made by run.sh after stage 3)",
    "s4": "train_cv (MLC-SLM train + Common Voice 21.0 train, local/data.sh --use_cv true)",
}

ARCH = ("Whisper-large-v3 frozen + 2-layer MLP (5x stacking) + Gemma-2-2B full fine-tune")
HARDWARE = ("8x A100 80GB (an assumption: the paper does not state its hardware; batch size "
            "and warmup are assumptions too)")
DEBUG_HARDWARE = "CPU, 2 cores: tiny random checkpoints of the same architectures, 1 epoch"


def preprocessor_conf(system: str) -> dict:
    kind, sides, _ = SYSTEMS[system]
    if kind == "english":
        return {"prompt_template": LAYOUT.format(speech="{speech}", prompt=PROMPTS["English"][0])}
    ctx = "{context}" if sides else ""
    conf = {"prompt_template": {
        lang: LAYOUT.format(speech="{speech}", prompt=ctx + p[0]) for lang, p in PROMPTS.items()}}
    if sides:
        conf["context_templates"] = {
            lang: {side: p[1 + ("history", "future").index(side)] for side in sides}
            for lang, p in PROMPTS.items()}
        # Algorithm 1 (keep with p=0.5, else remove 1-3 spans of <= 25 % of the characters),
        # applied independently to history and future, in training only.
        conf["context_masking"] = True
        conf["context_masking_conf"] = {"keep_prob": 0.5, "max_ratio": 0.25, "max_spans": 3}
    return conf


def config(system: str, debug: bool) -> dict:
    """The training config of ``system`` (full size, or its CPU debug twin: same keys)."""
    cfg = {
        "encoder": "whisper_hf",
        "encoder_conf": {
            "model_name_or_path": "exp_debug/tiny/whisper" if debug else "openai/whisper-large-v3",
            "pad_to_30s": True,
            # > 30 s (only in test sets: stage 3 filters training data at 30 s): cut evenly
            "long_audio": "split",
            "freeze": True,
            # frozen: inference only, so bf16 weights cost nothing in accuracy (GPU); fp32 on CPU
            "dtype": "float32" if debug else "bfloat16",
        },
        "projector": "mlp",
        "projector_conf": {"downsample": 5, "hidden": 64 if debug else 2048},
        "llm": "hf",
        "llm_conf": {
            "model_name_or_path": "exp_debug/tiny/gemma2" if debug else "google/gemma-2-2b",
            # fp32 master weights + bf16 autocast (use_amp): AdamW updates of lr 5e-5 would
            # mostly round away in pure-bf16 weights
            "dtype": "float32",
            "attn_implementation": "eager",  # Gemma-2's recommendation for training
            "gradient_checkpointing": True,
            "freeze": False,  # full fine-tuning
        },
        "model_conf": {"ctc_weight": 0.0, "lsm_weight": 0.0},
        "preprocessor_conf": preprocessor_conf(system),
        "optim": "adamw",
        "optim_conf": {"lr": 1.0e-3 if debug else 5.0e-5, "weight_decay": 0.0},
        # linear warmup to lr, then ESPnet's inverse-square-root decay
        "scheduler": "warmuplr",
        "scheduler_conf": {"warmup_steps": 10 if debug else 1000},
        "batch_type": "folded",
        "batch_size": 8 if debug else 64,
        "accum_grad": 1,
        # Early stop with a tolerance of 2000 training steps on valid acc: an "epoch" is 500
        # steps and training stops after 4 epochs without a better valid acc.
        "max_epoch": 1 if debug else 100,
        "num_iters_per_epoch": 10 if debug else 500,
        "patience": 4,
        "early_stopping_criterion": ["valid", "acc", "max"],
        "best_model_criterion": [["valid", "acc", "max"]],
        "keep_nbest_models": 1,
        "use_amp": not debug,  # bf16 autocast on A100 (ESPnet picks bf16 when supported)
        "num_workers": 0 if debug else 4,
        "num_att_plot": 0,
        "seed": 0,
    }
    return cfg


def header(system: str, debug: bool) -> List[str]:
    _, _, what = SYSTEMS[system]
    hw = DEBUG_HARDWARE if debug else HARDWARE
    lines = [
        f"{what} of Peng et al. (MLC-SLM 2025): {ARCH}; {hw}",
        f"Training set: {TRAIN_SETS[system]};",
        f"run with ./run.sh --system {system}{' --debug true' if debug else ''}.",
        "Generated by local/make_configs.py from its prompt table: edit the table there and",
        "re-run it; tests/recipe/test_mlc_slm_configs.py checks this file equals its output.",
    ]
    if debug:
        lines.insert(1, f"Debug twin of {system}.yaml: the same keys; exp_debug/tiny/* are "
                        "written by espnet_sllm.testing.tiny_checkpoints (run.sh --debug true).")
    return lines


def render(system: str, debug: bool) -> str:
    return render_config(header(system, debug), config(system, debug))


def all_configs() -> Dict[str, str]:
    """{file name under conf/tuning: text} for every system and its debug twin."""
    out = {}
    for system in SYSTEMS:
        out[f"{system}.yaml"] = render(system, debug=False)
        out[f"{system}_debug.yaml"] = render(system, debug=True)
    return out


def main(argv=None) -> int:
    return make_configs_main(__doc__, TUNING, all_configs, argv)


if __name__ == "__main__":
    sys.exit(main())
