"""Tiny SLLM training configurations (the YAML content as a dict) for tests and the demo."""
import argparse
from typing import Dict, Optional


def tiny_sllm_config(
    llm_dir: str,
    encoder: str = "conformer",
    whisper_dir: Optional[str] = None,
    pad_to_30s: bool = False,
    projector: str = "mlp",
    ctc_weight: float = 0.0,
    prompt_template="{speech} Transcribe speech to text.",
    llm_extra: Optional[Dict] = None,
) -> Dict:
    """A complete ``--config`` dict for SLLMTask with tiny sizes.

    encoder ``conformer``: ESPnet fbank frontend + 1-block conformer (from scratch);
    encoder ``whisper_hf``: the tiny Whisper at ``whisper_dir``, frozen.
    """
    cfg: Dict = {
        "llm": "hf",
        "llm_conf": {"model_name_or_path": llm_dir, **(llm_extra or {})},
        "projector": projector,
        "projector_conf": {"downsample": 2, "hidden": 64} if projector == "mlp" else {},
        "model_conf": {"ctc_weight": ctc_weight},
        "preprocessor_conf": {"prompt_template": prompt_template},
    }
    if encoder == "conformer":
        cfg.update(
            frontend="default",
            frontend_conf={"n_fft": 400, "hop_length": 160, "n_mels": 40},
            normalize="utterance_mvn",
            encoder="conformer",
            encoder_conf={
                "output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 1,
                "input_layer": "conv2d", "dropout_rate": 0.0, "positional_dropout_rate": 0.0,
                "attention_dropout_rate": 0.0,
            },
        )
    elif encoder == "whisper_hf":
        if whisper_dir is None:
            raise ValueError("encoder whisper_hf needs whisper_dir")
        cfg.update(
            frontend=None,
            encoder="whisper_hf",
            encoder_conf={"model_name_or_path": whisper_dir, "pad_to_30s": pad_to_30s},
        )
    else:
        cfg.update(encoder=encoder)
    return cfg


def config_to_args(config: Dict) -> argparse.Namespace:
    """Parse ``config`` the way ``--config file.yaml`` would (defaults for everything else)."""
    from espnet_sllm.tasks.sllm import SLLMTask

    parser = SLLMTask.get_parser()
    parser.set_defaults(**config)
    return parser.parse_args([])
