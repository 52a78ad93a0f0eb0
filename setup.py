"""espnet_sllm: Speech Large Language Models (speech encoder -> projector -> LLM) for ESPnet."""
from setuptools import find_packages, setup

setup(
    name="espnet_sllm",
    version="0.1.0",
    description="ESPnet plugin for Speech Large Language Models with staged recipes",
    packages=find_packages(include=["espnet_sllm", "espnet_sllm.*"]),
    python_requires=">=3.9",
    # Compatible ranges for a user who installs into an existing ESPnet environment; the exact
    # versions that are tested are in tools/requirements.lock (what `make install` installs).
    # torch and torchaudio are one known pair: torchaudio's wheels do not pin torch, and a
    # mismatched pair (e.g. torchaudio 2.11.1 with torch 2.11.0) fails at import with an
    # undefined symbol. Change both together, here, in tools/requirements.txt and in the lock.
    install_requires=[
        "espnet==202511",
        "torch==2.11.0",
        "torchaudio==2.11.0",
        "transformers>=5.0,<6",  # 5.x API: dtype=, key_mapping, embed_scale
        "peft>=0.17,<1",
        "sentencepiece>=0.2,<0.3",
        "kaldiio>=2.18,<3",
        "soundfile>=0.12,<1",
        "jiwer>=3,<5",
        "sacrebleu>=2.4,<3",
        "rouge-score>=0.1.2,<0.2",
        "matplotlib>=3.7,<4",
        "tqdm>=4.60,<5",
        "tensorboard>=2.14,<3",
    ],
    extras_require={"ssl": ["s3prl"], "deepspeed": ["deepspeed"], "test": ["pytest"]},
)
