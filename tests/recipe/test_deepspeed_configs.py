"""The DeepSpeed configs of egs2/mlc_slm (ZeRO-2/3 for the Gemma-2-2B full fine-tuning systems).

With ``--use_deepspeed true`` ESPnet's DeepSpeedTrainer takes optimizer, scheduler, gradient
clipping and dtype from the JSON, not from the YAML: these tests keep the two from drifting
apart, and check the fields ESPnet and DeepSpeed read.  (DeepSpeed itself needs GPUs: it is not
in the CPU lock and is not run here.)
"""
import json
import pathlib

import pytest
import yaml

from espnet_sllm.tasks.sllm import SLLMTask

RECIPE = pathlib.Path(__file__).resolve().parents[2] / "egs2" / "mlc_slm" / "asr1" / "conf"
FULL_FT = ["baseline", "s1", "s2", "s3", "s4"]  # LLM freeze: false


@pytest.mark.parametrize("stage", [2, 3])
@pytest.mark.parametrize("system", FULL_FT)
def test_deepspeed_config_matches_the_system(stage, system):
    ds = json.loads((RECIPE / f"deepspeed_zero{stage}.json").read_text())
    cfg = yaml.safe_load((RECIPE / "tuning" / f"{system}.yaml").read_text())
    assert cfg["llm_conf"]["freeze"] is False  # a full fine-tuning system
    assert ds["zero_optimization"]["stage"] == stage
    assert ds["bf16"]["enabled"] is True  # ESPnet's DeepSpeedTrainer: bf16 key -> bfloat16 data
    assert cfg["optim"] == "adamw" and ds["optimizer"]["type"] == "AdamW"
    params = ds["optimizer"]["params"]
    assert params["lr"] == cfg["optim_conf"]["lr"]
    assert params["weight_decay"] == cfg["optim_conf"].get("weight_decay", 0.0)
    assert ds["scheduler"]["params"]["warmup_max_lr"] == cfg["optim_conf"]["lr"]
    assert ds["scheduler"]["params"]["warmup_num_steps"] == cfg["scheduler_conf"]["warmup_steps"]
    default_clip = SLLMTask.get_parser().get_default("grad_clip")
    assert ds["gradient_clipping"] == cfg.get("grad_clip", default_clip)
    assert ds["gradient_accumulation_steps"] == cfg.get("accum_grad", 1)
    # ESPnet's iterators make the batches; DeepSpeed only needs a micro-batch size to start
    assert ds["train_micro_batch_size_per_gpu"] >= 1
