"""espnet_sllm: Speech Large Language Models (speech encoder -> projector -> LLM) for ESPnet."""
from setuptools import find_packages, setup

setup(
    name="espnet_sllm",
    version="0.1.0",
    description="ESPnet plugin for Speech Large Language Models with staged recipes",
    packages=find_packages(include=["espnet_sllm", "espnet_sllm.*"]),
    python_requires=">=3.9",
    install_requires=[
        "espnet==202511",
        "torch",
        "torchaudio",
        "transformers>=5.0",  # tested with 5.23 (dtype=, key_mapping, embed_scale)
        "peft>=0.11",
        "sentencepiece",
        "kaldiio",
        "soundfile",
        "jiwer",
        "sacrebleu",
        "rouge-score",
        "matplotlib",
        "tqdm",
    ],
    extras_require={"ssl": ["s3prl"], "deepspeed": ["deepspeed"], "test": ["pytest"]},
)
