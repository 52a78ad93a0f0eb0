#!/usr/bin/env python3
"""Write every conf/tuning/*.yaml of egs2/mlc_slm/asr1 from one table of prompts.

Usage:
    local/make_configs.py            # (re)write conf/tuning/{baseline,s1,s2,s3,s4}{,_debug}.yaml
                                     # and the ILT ones, conf/tuning/ilt_{whisper,qwen2audio}_
                                     # {focus,feedback,fix}{,_debug}.yaml
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

ILT systems (Meng, Wu, Liang, Xu, Zhao, "ILT: Iterative LoRA Training through Focus-Feedback-Fix
for Multilingual Speech Recognition", MLC-SLM 2025; ``model: hf_audio``, a whole released
checkpoint with LoRA anywhere): ``ilt_<model>_<round>.yaml`` for the models ``whisper``
(openai/whisper-large-v3 -> "MegaWhisper") and ``qwen2audio`` (Qwen/Qwen2-Audio-7B ->
"MegaAudio") and the three rounds, each trained on the merge of the round before:

    focus     LoRA r 16 / alpha 32 on q_proj k_proj v_proj, 6 epochs (MLC-SLM train)
    feedback  LoRA r 512 / alpha 2048 on q/k/v/o_proj, down/gate/up_proj, out_proj, fc1, fc2,
              10 epochs (the 40,000-h mix)
    fix       LoRA r 32 / alpha 64 on the Feed-Back targets, 6 epochs (2,791 h selected +
              voted pseudo labels)

(Sec. 3.1); shared (Sec. 3.2.3): 8 A800 x micro batch 16, gradient accumulation 4, lr 1e-5,
bfloat16, learnable LID embeddings at the encoder and decoder outputs. Every file names the hub
checkpoint; a chained run (espnet_sllm.chain, chain_mode merge) points rounds 2 and 3 at the
merged model of the round before with ``--model_conf model_name_or_path=<merged dir>``.

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


# ---------------------------------------------------------------------------------------- ILT
#: language -> the ISO 639-1 code of its Whisper / Qwen2-Audio language token <|xx|>
ILT_LANG_CODES: Dict[str, str] = {
    "English": "en", "French": "fr", "German": "de", "Italian": "it", "Japanese": "ja",
    "Korean": "ko", "Portuguese": "pt", "Russian": "ru", "Spanish": "es", "Thai": "th",
    "Vietnamese": "vi",
}
assert tuple(ILT_LANG_CODES) == LANGUAGES
#: the utt2lang labels of the MLC-SLM release (15), then plain ``English``: third-party English
#: data without an accent label (e.g. Common Voice, as local/data.sh --use_cv labels it) in the
#: Feed-Back mix. The LID embeddings have one row per language (11): accents share English's.
ILT_LABELS = ("English-American", "English-Australian", "English-British", "English-Filipino",
              "English-Indian") + LANGUAGES[1:] + ("English",)

#: model -> (hub id, tiny checkpoint of the debug twin, prompt of language code xx, what)
ILT_MODELS = {
    "whisper": ("openai/whisper-large-v3", "exp_debug/tiny/whisper_asr",
                "{{speech}}<|startoftranscript|><|{xx}|><|transcribe|><|notimestamps|>",
                "Whisper-large-v3 (-> MegaWhisper)"),
    "qwen2audio": ("Qwen/Qwen2-Audio-7B", "exp_debug/tiny/qwen2_audio",
                   "<|audio_bos|>{{speech}}<|audio_eos|>Detect the language and recognize the "
                   "speech: <|{xx}|>",
                   "Qwen2-Audio-7B (-> MegaAudio)"),
}
ILT_FOCUS_TARGETS = ["q_proj", "k_proj", "v_proj"]
ILT_WIDE_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "down_proj", "gate_proj", "up_proj",
                    "out_proj", "fc1", "fc2"]
#: round -> (number, name in the paper, section, r, alpha, targets, epochs, debug r, debug alpha,
#: training data of the paper)
ILT_ROUNDS = {
    "focus": (1, "Focus Training", "3.1.1", 16, 32, ILT_FOCUS_TARGETS, 6, 2, 4,
              "the official MLC-SLM train set (run.sh's data/train); the best LoRA merged -> M1"),
    "feedback": (2, "Feed Back Training", "3.1.2", 512, 2048, ILT_WIDE_TARGETS, 10, 4, 8,
                 "40,000 h: MLC-SLM train + randomly sampled third-party data + extra Thai and "
                 "Vietnamese; starts from M1, the best LoRA merged -> M2"),
    "fix": (3, "Fix Training", "3.1.3", 32, 64, ILT_WIDE_TARGETS, 6, 2, 4,
            "2,791 h selected by Sec. 3.2 (token frequencies, TTS, WavLM similarity) + "
            "unlabelled audio with voted pseudo labels (Sec. 2.3); starts from M2, the best "
            "LoRA merged -> the final model"),
}
#: our choices where the paper is silent (written into each header)
ILT_WEIGHT_DECAY = 0.0
ILT_WARMUP = 1000
ILT_HARDWARE = ("8x A800 (the paper's): micro batch 16 per GPU = ESPnet's global batch_size "
                "128, accum_grad 4 (512 utterances per update)")
ILT_DEBUG_HARDWARE = ("CPU: a tiny random checkpoint of the same architecture, 3 epochs of 2 "
                      "steps, batch 2")


#: model -> where the target names are (the header's reading of the paper's lists)
ILT_MODULES = {
    "whisper": "encoder and decoder q/k/v/out_proj, fc1, fc2; o_proj, gate/up/down_proj match "
               "nothing in Whisper",
    "qwen2audio": "the audio tower's q/k/v/out_proj, fc1, fc2 and Qwen2's q/k/v/o_proj, "
                  "gate/up/down_proj; the audio projector (linear) stays frozen",
}


def ilt_names() -> List[str]:
    """The ILT systems: ilt_<model>_<round>."""
    return [f"ilt_{m}_{r}" for m in ILT_MODELS for r in ILT_ROUNDS]


def ilt_preprocessor_conf(model: str) -> dict:
    template = ILT_MODELS[model][2]
    return {"prompt_template": {lang: template.format(xx=xx)
                                for lang, xx in ILT_LANG_CODES.items()}}


def ilt_config(model: str, rnd: str, debug: bool) -> dict:
    """The training config of round ``rnd`` of ``model`` (or its CPU debug twin: same keys)."""
    hub, tiny, _, _ = ILT_MODELS[model]
    _, _, _, r, alpha, targets, epochs, debug_r, debug_alpha, _ = ILT_ROUNDS[rnd]
    return {
        "model": "hf_audio",
        "model_conf": {
            "model_name_or_path": tiny if debug else hub,
            # the frozen base in bf16 (the paper trains in bfloat16); LoRA and LID are fp32
            "dtype": "float32" if debug else "bfloat16",
            "attn_implementation": "sdpa",
            "gradient_checkpointing": not debug,
            "lora_r": debug_r if debug else r,
            "lora_alpha": debug_alpha if debug else alpha,
            "lora_dropout": 0.05,
            "lora_target_modules": list(targets),
            "lid_embeddings": True,
        },
        "languages": list(ILT_LABELS),
        "preprocessor_conf": ilt_preprocessor_conf(model),
        "optim": "adamw",
        "optim_conf": {"lr": 1.0e-3 if debug else 1.0e-5, "weight_decay": ILT_WEIGHT_DECAY},
        "scheduler": "warmuplr",
        "scheduler_conf": {"warmup_steps": 2 if debug else ILT_WARMUP},
        "batch_type": "sorted",
        "batch_size": 2 if debug else 128,
        "accum_grad": 1 if debug else 4,
        "max_epoch": 3 if debug else epochs,
        # full size: an epoch is one pass over the training set, as the paper's
        "num_iters_per_epoch": 2 if debug else None,
        "patience": None,  # no early stopping: every round trains its epochs
        "best_model_criterion": [["valid", "acc", "max"]],
        # the 3 best epochs: the round's merge takes the best; the 3 are pseudo-label voters
        "keep_nbest_models": 3,
        "use_amp": not debug,
        "num_workers": 0 if debug else 4,
        "num_att_plot": 0,
        "seed": 0,
    }


def ilt_header(model: str, rnd: str, debug: bool) -> List[str]:
    hub, tiny, _, what = ILT_MODELS[model]
    k, name, sec, r, alpha, targets, epochs, debug_r, debug_alpha, data = ILT_ROUNDS[rnd]
    lines = [
        f"ILT round {k} of 3, {name} (Sec. {sec}) of Meng et al., \"ILT: Iterative LoRA Training "
        f"through Focus-Feedback-Fix\" (MLC-SLM 2025): {what}, model hf_audio; "
        f"{ILT_DEBUG_HARDWARE if debug else ILT_HARDWARE}",
        f"Paper: LoRA r {r} / alpha {alpha} on {' '.join(targets)} (every module of the model "
        f"with that name: {ILT_MODULES[model]}), {epochs} epochs, evaluated on dev; lr 1e-5, "
        f"bfloat16 (dtype of the frozen base + use_amp), LID embeddings at the encoder and "
        f"decoder outputs (lid_embeddings).",
        f"Paper's training data: {data}.",
        f"Ours (the paper is silent): AdamW, weight_decay {ILT_WEIGHT_DECAY} (no pull of the "
        f"adapters or the zero-initialised LID rows towards 0); warmuplr, {ILT_WARMUP} warmup "
        f"steps to lr then inverse-sqrt decay; lora_dropout 0.05; sorted batches; no early "
        f"stopping (patience null); the 3 best epochs by valid acc are kept (the round's best "
        f"is merged, the 3 vote pseudo labels, Sec. 2.3); sdpa attention; gradient "
        f"checkpointing; prompt \"{ILT_MODELS[model][2].format(xx='xx')}\" (xx: the language "
        f"token) for every language; languages: the 15 MLC-SLM labels + plain English.",
        f"Rounds 2 and 3 start from the merge of the round before (espnet_sllm.chain, "
        f"chain_mode merge: --model_conf model_name_or_path=<merged dir>); this file names "
        f"{hub}.",
        "Generated by local/make_configs.py from its tables: edit them there and re-run it;",
        "tests/recipe/test_mlc_slm_configs.py checks this file equals its output.",
    ]
    if debug:
        lines.insert(1, f"Debug twin of ilt_{model}_{rnd}.yaml: the same keys; LoRA r {debug_r} "
                        f"/ alpha {debug_alpha}, lr 1e-3 with 2 warmup steps, fp32, no amp, no "
                        f"checkpointing; "
                        f"{tiny} is written by python -m espnet_sllm.testing.tiny_checkpoints "
                        f"--hf_audio {'whisper' if model == 'whisper' else 'qwen2_audio'} "
                        f"--out {tiny}.")
    return lines


def render_ilt(name: str, debug: bool) -> str:
    _, model, rnd = name.split("_")
    return render_config(ilt_header(model, rnd, debug), ilt_config(model, rnd, debug))


def all_configs() -> Dict[str, str]:
    """{file name under conf/tuning: text} for every system and its debug twin (the ILT ones
    too)."""
    out = {}
    for system in SYSTEMS:
        out[f"{system}.yaml"] = render(system, debug=False)
        out[f"{system}_debug.yaml"] = render(system, debug=True)
    for name in ilt_names():
        out[f"{name}.yaml"] = render_ilt(name, debug=False)
        out[f"{name}_debug.yaml"] = render_ilt(name, debug=True)
    return out


def main(argv=None) -> int:
    return make_configs_main(__doc__, TUNING, all_configs, argv)


if __name__ == "__main__":
    sys.exit(main())
