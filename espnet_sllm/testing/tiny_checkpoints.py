#!/usr/bin/env python3
"""Write tiny random checkpoints of the real architectures for a recipe's debug configs.

Part of the test kit (it builds test checkpoints, not models to use); a recipe's ``--debug true``
mode runs it as a command.

Usage:
    python -m espnet_sllm.testing.tiny_checkpoints --out exp_debug/tiny \\
        [--sentences_from data/train/text ...] [--prompt_config conf/tuning/s3_debug.yaml ...] \\
        [--encoder whisper|data2vec2|whisper_mms] [--whisper_mel_bins 128] [--llm_family gemma2] \\
        [--chat_twin] [--vocab_size 500] [--seed 0]
    python -m espnet_sllm.testing.tiny_checkpoints --hf_audio whisper|qwen2_audio \\
        --out exp_debug/tiny/whisper_asr [--text data/train/text ...] [--seed 0]

Writes, with ``save_pretrained`` (the layout of the hub releases, loaded by the same code):

    <out>/whisper   (--encoder whisper, the default) tiny random WhisperForConditionalGeneration:
                    128 mel bins and a 30-s window (1500 encoder positions) like
                    openai/whisper-large-v3, d_model 64, 2 layers
    <out>/mms       (--encoder whisper_mms: <out>/whisper as above and this) tiny random
                    MMS-architecture wav2vec 2.0 (espnet_sllm.testing.wav2vec2): the conv stack
                    of facebook/mms-300m / mms-1b (400-sample window, 320 hop), stable layer
                    norm, hidden 32, 2 layers, saved as Wav2Vec2ForPreTraining
    <out>/fairseq/large.pt, <out>/fairseq/finetune_large_kespeech.pt
                    (--encoder data2vec2) tiny random TeleSpeech data2vec 2.0 checkpoints in
                    fairseq's own layouts (pretrained; CTC fine-tuned): the same blocks as the
                    release's large.pt at width 32, MFCC input, ALiBi
    <out>/data2vec2, <out>/data2vec2_ctc
                    (--encoder data2vec2) the two converted by the converter of
                    ``python -m espnet_sllm.bin.convert_data2vec2`` (config.json + safetensors),
                    the folders ``encoder: data2vec2`` loads
    <out>/<family>  tiny random causal LM of ``--llm_family`` (default gemma2, the architecture of
                    google/gemma-2-2b): hidden 64, 2 layers, with a sentencepiece tokenizer trained
                    on the sentences below
    <out>/<family>_chat
                    (--chat_twin) a second LLM of the same family, config and tokenizer files,
                    other weights (seed + 1), whose generation_config adds a chat end-of-turn
                    token to its EOS ids, as Yi-6B-Chat's ``<|im_end|>`` (here the tokenizer's
                    last regular piece): the "LLM swap" of a recipe's debug run

With ``--hf_audio``, only that whole hub model is written, into ``--out`` itself
(espnet_sllm.testing.hf_audio): ``whisper`` a tiny random openai/whisper-large-v3 ASR checkpoint
(WhisperForConditionalGeneration, its tokenizer, processor and generation config), ``qwen2_audio``
a tiny random Qwen/Qwen2-Audio-7B (Qwen2AudioForConditionalGeneration, tokenizer, processor);
their byte-level BPEs are trained on the same text as below (``--text`` = ``--sentences_from``).

Tokenizer text: the transcripts of ``--sentences_from`` (Kaldi ``text`` files: ``<uttid> <text>``)
and the prompt strings of ``--prompt_config`` (the ``prompt_template`` / ``context_templates`` of
``preprocessor_conf``, placeholders removed), so that the prompts of all languages tokenise to
real pieces, not ``<unk>``.  Without either, a few built-in sentences are used.

The result is deterministic for given inputs and ``--seed``.  ``<out>/tiny_checkpoints.json``
records the options and a digest of the tokenizer text: a second run with the same ones does
nothing (so re-running a recipe does not rewrite the checkpoints), a run with other ones rewrites.
"""
import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import sys
from typing import Iterable, List, Optional

import yaml

from espnet_sllm.testing.llm import FAMILIES

logger = logging.getLogger("tiny_checkpoints")

STAMP = "tiny_checkpoints.json"
#: --encoder -> the folders it writes under --out (besides fairseq/ for data2vec2)
ENCODERS = {"whisper": ("whisper",), "data2vec2": ("data2vec2", "data2vec2_ctc"),
            "whisper_mms": ("whisper", "mms")}
_PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")


def read_kaldi_text(path: str) -> List[str]:
    """Transcripts of a Kaldi ``text`` file (the id column dropped, empty ones skipped)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\r\n").split(maxsplit=1)
            if len(parts) == 2 and parts[1].strip():
                out.append(parts[1].strip())
    return out


def _strings(x) -> Iterable[str]:
    if isinstance(x, str):
        yield x
    elif isinstance(x, dict):
        for v in x.values():
            yield from _strings(v)
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from _strings(v)


def prompt_strings(config_path: str) -> List[str]:
    """The prompt texts of a training config (templates with their placeholders removed)."""
    with open(config_path, encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    pre = conf.get("preprocessor_conf") or {}
    out = []
    for key in ("prompt_template", "context_templates"):
        for s in _strings(pre.get(key)):
            for piece in _PLACEHOLDER.split(s):
                piece = " ".join(piece.split())
                if piece:
                    out.append(piece)
    return out


def make_tiny_checkpoints(
    out: str,
    sentences: List[str],
    whisper_mel_bins: int = 128,
    llm_family: str = "gemma2",
    vocab_size: int = 500,
    seed: int = 0,
    encoder: str = "whisper",
    chat_twin: bool = False,
) -> dict:
    """Write the encoder checkpoint(s) of ``encoder`` and ``<out>/<llm_family>``; returns the
    stamp written."""
    from espnet_sllm.testing.llm import make_tiny_llm

    if llm_family not in FAMILIES:
        raise ValueError(f"unknown --llm_family {llm_family!r}; valid: {sorted(FAMILIES)}")
    if encoder not in ENCODERS:
        raise ValueError(f"unknown --encoder {encoder!r}; valid: {list(ENCODERS)}")
    # sentencepiece with character_coverage 1.0 needs a piece per distinct character.
    chars = {c for s in sentences for c in s if not c.isspace()}
    vocab = max(vocab_size, len(chars) + 64)
    stamp = dict(encoder=encoder, llm_family=llm_family, chat_twin=chat_twin, vocab_size=vocab,
                 seed=seed, sentences_sha1=hashlib.sha1(
                     "\n".join(sentences).encode("utf-8")).hexdigest(),
                 n_sentences=len(sentences))
    if encoder in ("whisper", "whisper_mms"):
        stamp["whisper_mel_bins"] = whisper_mel_bins
    stamp_path = os.path.join(out, STAMP)
    llm_dir = os.path.join(out, llm_family)
    dirs = [llm_dir] + [os.path.join(out, d) for d in ENCODERS[encoder]]
    if chat_twin:
        dirs.append(llm_dir + "_chat")
    if os.path.isfile(stamp_path):
        with open(stamp_path, encoding="utf-8") as f:
            if json.load(f) == stamp and all(os.path.isdir(d) for d in dirs):
                logger.info("%s: tiny checkpoints of these inputs exist: nothing to do", out)
                return stamp
        os.remove(stamp_path)
    for d in dirs:
        if os.path.isdir(d):
            shutil.rmtree(d)
    if encoder in ("whisper", "whisper_mms"):
        from espnet_sllm.testing.whisper import make_tiny_whisper

        make_tiny_whisper(dirs[1], num_mel_bins=whisper_mel_bins, d_model=64, encoder_layers=2,
                          encoder_attention_heads=4, max_source_positions=1500, seed=seed)
    if encoder == "whisper_mms":
        from espnet_sllm.testing.wav2vec2 import make_tiny_mms

        make_tiny_mms(dirs[2], hidden_size=32, num_layers=2, num_heads=4, conv_dim=16, seed=seed)
    elif encoder == "data2vec2":
        _tiny_data2vec2(out, seed)
    make_tiny_llm(llm_dir, llm_family, hidden_size=64, num_layers=2, num_heads=4,
                  num_kv_heads=2, intermediate_size=128, sentences=sentences or None,
                  vocab_size=vocab, seed=seed)
    with open(stamp_path, "w", encoding="utf-8") as f:
        json.dump(stamp, f, indent=1)
    if chat_twin:
        _chat_twin(llm_dir, llm_family, seed)
    logger.info("wrote %s and %s (%s, tokenizer on %d sentences)",
                ", ".join(dirs[1:]), llm_dir, llm_family, len(sentences))
    return stamp


def _chat_twin(llm_dir: str, family: str, seed: int) -> str:
    """``<llm_dir>_chat``: the same architecture and tokenizer, other weights, one more EOS id."""
    from transformers import AutoConfig, GenerationConfig

    from espnet_sllm.testing.llm import make_tiny_llm

    chat = llm_dir + "_chat"
    cfg = AutoConfig.from_pretrained(llm_dir)
    make_tiny_llm(chat, family, hidden_size=cfg.hidden_size, num_layers=cfg.num_hidden_layers,
                  num_heads=cfg.num_attention_heads, num_kv_heads=cfg.num_key_value_heads,
                  intermediate_size=cfg.intermediate_size, tokenizer_dir=llm_dir, seed=seed + 1)
    gen = GenerationConfig.from_pretrained(chat)
    base = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    from espnet_sllm.llm.tokenizer import load_tokenizer

    end_of_turn = len(load_tokenizer(llm_dir)) - 1
    gen.eos_token_id = [i for i in base if i is not None] + [end_of_turn]
    gen.save_pretrained(chat)
    return chat


def _tiny_data2vec2(out: str, seed: int) -> None:
    """fairseq-layout ``large.pt`` + ``finetune_large_kespeech.pt`` under ``<out>/fairseq``,
    converted to ``<out>/data2vec2`` and ``<out>/data2vec2_ctc`` as a user converts the
    release's files (the fine-tuned one from another seed, so that the two encoders differ)."""
    from espnet_sllm.encoders.data2vec2_convert import convert_data2vec2
    from espnet_sllm.testing.data2vec2 import make_tiny_fairseq_data2vec2

    for layout, name, target, s in (("pretrain", "large.pt", "data2vec2", seed),
                                     ("finetune", "finetune_large_kespeech.pt", "data2vec2_ctc",
                                      seed + 1)):
        ckpt = make_tiny_fairseq_data2vec2(os.path.join(out, "fairseq", name), layout, s)
        convert_data2vec2(ckpt, os.path.join(out, target), log=logger.info)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("Usage:")[0].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Usage:" + __doc__.split("Usage:")[1],
    )
    parser.add_argument("--out", required=True,
                        help="output folder (gets the encoder folders and <family>/)")
    parser.add_argument("--encoder", default="whisper", choices=list(ENCODERS),
                        help="whisper (whisper-large-v3's layout), data2vec2 (TeleSpeech's) or "
                        "whisper_mms (whisper + MMS, Ideal-LLM's dual encoders)")
    parser.add_argument("--sentences_from", "--text", nargs="+", default=[], metavar="TEXT",
                        help="Kaldi text files whose transcripts train the tokenizer")
    parser.add_argument("--prompt_config", nargs="+", default=[], metavar="YAML",
                        help="training configs whose prompt strings train the tokenizer too")
    parser.add_argument("--whisper_mel_bins", type=int, default=128,
                        help="128 = whisper-large-v3, 80 = earlier Whisper releases")
    parser.add_argument("--llm_family", default="gemma2", choices=sorted(FAMILIES))
    parser.add_argument("--chat_twin", action="store_true",
                        help="also <out>/<family>_chat: other weights, an extra chat EOS id")
    parser.add_argument("--vocab_size", type=int, default=500,
                        help="tokenizer size (raised to cover every character of the text)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hf_audio", default=None, choices=["whisper", "qwen2_audio"],
                        help="write only this whole hub model into --out (see above)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sentences: List[str] = []
    try:
        for path in args.sentences_from:
            sentences += read_kaldi_text(path)
        for path in args.prompt_config:
            sentences += prompt_strings(path)
        if args.hf_audio:
            from espnet_sllm.testing.hf_audio import write_tiny_hf_audio

            write_tiny_hf_audio(args.out, args.hf_audio, sentences, args.seed)
        else:
            make_tiny_checkpoints(args.out, sentences, args.whisper_mel_bins, args.llm_family,
                                  args.vocab_size, args.seed, args.encoder, args.chat_twin)
    except (OSError, ValueError, yaml.YAMLError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
