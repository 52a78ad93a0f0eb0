"""Tiny random checkpoints of two hub speech models, differing from the real ones only in size.

* :func:`make_tiny_whisper_asr`: ``openai/whisper-large-v3`` (``WhisperForConditionalGeneration``),
  a complete ASR checkpoint: weights, tokenizer, feature extractor, processor and
  ``generation_config.json``.
* :func:`make_tiny_qwen2_audio`: ``Qwen/Qwen2-Audio-7B`` (``Qwen2AudioForConditionalGeneration``):
  weights, tokenizer, feature extractor and processor.

Both are written with ``save_pretrained`` and load back through ``from_pretrained`` /
``AutoProcessor`` / ``AutoTokenizer`` / ``AutoFeatureExtractor``, exactly like the hub releases.
What is kept from the real checkpoints (only the sizes shrink):

whisper-large-v3
    Byte-level BPE whose 256 byte tokens are in GPT-2 order (so the space token ``Ġ`` is id 220,
    as in the real vocabulary), then the trained merges; then the special tokens in the real order
    and relative ids: ``<|endoftext|>`` (= the BPE size, real 50257), ``<|startoftranscript|>``
    (+1), the 100 language tokens ``<|en|>`` ... ``<|yue|>`` (+2 ...), ``<|translate|>``,
    ``<|transcribe|>``, ``<|startoflm|>``, ``<|startofprev|>``, ``<|nospeech|>``,
    ``<|notimestamps|>``, then the 1501 timestamp tokens ``<|0.00|>`` ... ``<|30.00|>`` (added as
    non-special tokens, as in the real tokenizer).  ``vocab_size`` = tokenizer length (real 51866,
    no spare rows); ``proj_out`` tied to the decoder embeddings; config ids as the real config:
    ``bos = eos = <|endoftext|>``, ``pad_token_id`` = ``<|endoftext|>`` - 1 (the real config's
    50256, a regular BPE token; the tokenizer's and generation config's pad is ``<|endoftext|>``),
    ``decoder_start_token_id`` = ``<|startoftranscript|>``, ``begin_suppress_tokens`` =
    [``Ġ``, ``<|endoftext|>``]; 128 mel bins, 1500 encoder and 448 decoder positions; weights
    saved in float16 (``dtype`` of the real config).  ``generation_config.json`` as the real one:
    ``lang_to_id``, ``task_to_id``, ``is_multilingual``, ``no_timestamps_token_id``,
    ``prev_sot_token_id``, ``max_initial_timestamp_index`` 50, ``max_length`` 448,
    ``suppress_tokens`` (computed from this tokenizer by the rule OpenAI used for the real list)
    and ``alignment_heads`` (heads of the tiny decoder's second half).
Qwen2-Audio-7B
    Qwen2 byte-level BPE (Qwen2's pre-tokenizer regex and NFC, byte tokens in GPT-2 order), then
    ``<|endoftext|>`` (= the BPE size, real 151643), ``<|im_start|>``, ``<|im_end|>``,
    ``<|AUDIO|>`` (+3 = ``audio_token_index``, real 151646), ``<|audio_bos|>``,
    ``<|audio_eos|>``.  The real tokenizer has a few thousand further added tokens (its
    tokenizer_config.json is 638 kB; their list could not be read here) which are NOT
    reproduced: see :data:`QWEN2_AUDIO_SPECIAL_TOKENS`.  Text ``vocab_size`` rounded up to a
    multiple of 128 with spare rows beyond the tokenizer (real: 156032 = 1219 * 128 rows);
    untied ``lm_head`` (the real text config leaves ``tie_word_embeddings`` at Qwen2's default,
    False); multi-head attention (real: ``num_key_value_heads`` = heads = 32); rope_theta 1e4,
    rms_norm_eps 1e-5, 8192 positions, sliding_window 32768 (unused); audio encoder with 128 mel
    bins and 1500 positions, ffn = 4 * d_model; weights in bfloat16 (the text config's dtype).
    Tokenizer ``eos``/``pad`` = ``<|endoftext|>``, model ``bos`` = ``<|endoftext|>`` and
    ``eos`` = ``<|im_end|>`` (real text config); the processor's chat template is the audio
    ChatML one transformers ships for Qwen2-Audio.
"""
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import torch

#: default tokenizer text when none is given: several scripts, so that their characters get merges
DEFAULT_TEXTS = (
    "hello world, this is a tiny speech recognition test.",
    "the quick brown fox jumps over the lazy dog.",
    "Please transcribe the audio. What is said in this recording?",
    "Transcribe the speech into text.",
    "こんにちは、今日はいい天気ですね。音声を書き起こしてください。",
    "東京は日本の首都です。ひらがな カタカナ 漢字",
    "สวัสดีครับ วันนี้อากาศดีมาก กรุณาถอดความเสียงนี้",
    "안녕하세요. 오늘 날씨가 좋네요. 음성을 받아 적으세요.",
    "Xin chào, hôm nay trời đẹp quá. Hãy chép lại lời nói này.",
    "你好，今天天气很好。请把这段语音转写成文字。",
    "Bonjour le monde. Guten Tag. ¿Qué tal? Привет мир.",
    "0123456789 %$#@!?()[]{}'\"-+=/\\:;,.",
)

#: whisper-large-v3's special tokens between <|endoftext|> and the timestamps, after the languages
WHISPER_TASK_TOKENS = ("<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
                       "<|nospeech|>", "<|notimestamps|>")

#: Qwen2-Audio-7B's added tokens reproduced here, in the real order (ids 151643..151648 there).
#: The real tokenizer lists a few thousand more after these (not available here); of those we
#: add the audio-language tokens its ASR prompt uses ("... recognize the speech: <|en|>", the
#: Qwen2-Audio evaluation prompts; Qwen-Audio's language tokens), Whisper's language list, as
#: special tokens after these six (their real ids are not known here).
QWEN2_AUDIO_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>",
                              "<|audio_bos|>", "<|audio_eos|>")

#: the real Qwen2-Audio-7B's pre-tokenization (also Qwen2's)
_QWEN2_PRETOKENIZE_REGEX = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
                            r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")


def _gpt2_byte_chars() -> List[str]:
    """The 256 byte-level characters in GPT-2's id order (``Ġ``, the space, is index 220)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def _train_byte_bpe(texts: Sequence[str], vocab_size: int, qwen2: bool
                    ) -> Tuple[Dict[str, int], List[Tuple[str, str]]]:
    """Byte-level BPE trained on ``texts``: (vocab, merges); ids 0..255 are the bytes in GPT-2
    order, then one token per merge in merge order (the layout of the GPT-2/Whisper/Qwen2
    vocabularies)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    if qwen2:
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(_QWEN2_PRETOKENIZE_REGEX), behavior="isolated",
                                 invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    alphabet = _gpt2_byte_chars()
    trainer = trainers.BpeTrainer(vocab_size=max(vocab_size, 257), min_frequency=2,
                                  initial_alphabet=alphabet, show_progress=False,
                                  special_tokens=[])
    tok.train_from_iterator(list(texts), trainer=trainer)
    state = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    vocab = {c: i for i, c in enumerate(alphabet)}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    return vocab, merges


def _texts(texts: Optional[Sequence[str]]) -> List[str]:
    out = [t for t in (texts or ()) if t and t.strip()]
    return out + list(DEFAULT_TEXTS)


# ----------------------------------------------------------------------------------- Whisper


def _whisper_tokenizer(texts: Sequence[str], bpe_vocab_size: int):
    from tokenizers import AddedToken
    from transformers import WhisperTokenizer
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    vocab, merges = _train_byte_bpe(texts, bpe_vocab_size, qwen2=False)
    tok = WhisperTokenizer(vocab=vocab, merges=merges, unk_token="<|endoftext|>",
                           bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                           pad_token="<|endoftext|>", add_prefix_space=False)
    specials = (["<|endoftext|>", "<|startoftranscript|>"] + [f"<|{c}|>" for c in LANGUAGES]
                + list(WHISPER_TASK_TOKENS))
    tok.add_special_tokens({"additional_special_tokens": [
        AddedToken(s, lstrip=False, rstrip=False, normalized=False, special=True)
        for s in specials]}, replace_extra_special_tokens=True)
    tok.add_tokens([AddedToken(f"<|{i * 0.02:.2f}|>", lstrip=False, rstrip=False,
                               normalized=False, special=False) for i in range(1501)])
    eot = len(vocab)
    ids = tok.convert_tokens_to_ids(specials)
    if ids != list(range(eot, eot + len(specials))):
        raise RuntimeError(f"whisper special tokens not laid out as the real ones: {ids[:4]}...")
    tok.set_prefix_tokens()  # re-read the ids of <|startoftranscript|> etc. now that they exist
    return tok


def _non_speech_tokens(tok) -> List[int]:
    """OpenAI's ``Tokenizer.non_speech_tokens`` (the real ``suppress_tokens``), for ``tok``."""
    symbols = list('"#()*+/:;<=>@[\\]^_`{|}~「」『』')
    symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split()
    miscellaneous = set("♩♪♫♬♭♮♯")
    result = set()
    for s in ("-", "'"):
        ids = tok.encode(" " + s, add_special_tokens=False)
        if len(ids) == 1:
            result.add(ids[0])
    for symbol in symbols + sorted(miscellaneous):
        for variant in (symbol, " " + symbol):
            ids = tok.encode(variant, add_special_tokens=False)
            if len(ids) == 1 or symbol in miscellaneous:
                result.add(ids[0])
    return sorted(result)


def make_tiny_whisper_asr(
    out_dir: str,
    texts: Optional[Sequence[str]] = None,
    seed: int = 0,
    d_model: int = 64,
    layers: int = 2,
    heads: int = 4,
    bpe_vocab_size: int = 1000,
    dtype: str = "float16",
) -> str:
    """Write a tiny random whisper-large-v3 (``WhisperForConditionalGeneration``) ASR checkpoint.

    Args:
        out_dir: folder to write (created).
        texts: sentences the byte-level BPE is trained on (besides :data:`DEFAULT_TEXTS`).
        seed: torch seed of the random weights.
        d_model, layers, heads: width, encoder and decoder depth, heads (ffn = 4 * d_model, as
            the real 5120 / 1280).
        bpe_vocab_size: BPE size before the special tokens (real 50257); smaller when the text
            has fewer merges.
        dtype: of the saved weights (real: float16).

    Returns:
        out_dir
    """
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperProcessor)
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    tok = _whisper_tokenizer(_texts(texts), bpe_vocab_size)
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    sot = eot + 1
    space = tok.convert_tokens_to_ids("Ġ")
    config = WhisperConfig(
        vocab_size=len(tok),
        num_mel_bins=128,
        d_model=d_model,
        encoder_layers=layers,
        encoder_attention_heads=heads,
        encoder_ffn_dim=4 * d_model,
        decoder_layers=layers,
        decoder_attention_heads=heads,
        decoder_ffn_dim=4 * d_model,
        max_source_positions=1500,
        max_target_positions=448,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot - 1,
        decoder_start_token_id=sot,
        begin_suppress_tokens=[space, eot],
        tie_word_embeddings=True,
        scale_embedding=False,
        apply_spec_augment=False,
        use_cache=True,
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    model = model.to(getattr(torch, dtype))
    lang_to_id = {f"<|{c}|>": sot + 1 + i for i, c in enumerate(LANGUAGES)}
    task_to_id = {"translate": tok.convert_tokens_to_ids("<|translate|>"),
                  "transcribe": tok.convert_tokens_to_ids("<|transcribe|>")}
    half = layers // 2
    gen = GenerationConfig(
        alignment_heads=[[layer, h] for layer in range(half, layers) for h in range(heads)],
        begin_suppress_tokens=[space, eot],
        bos_token_id=eot,
        decoder_start_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        is_multilingual=True,
        lang_to_id=lang_to_id,
        task_to_id=task_to_id,
        max_initial_timestamp_index=50,
        max_length=448,
        no_timestamps_token_id=tok.convert_tokens_to_ids("<|notimestamps|>"),
        prev_sot_token_id=tok.convert_tokens_to_ids("<|startofprev|>"),
        return_timestamps=False,
        suppress_tokens=_non_speech_tokens(tok),
    )
    model.generation_config = gen
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)
    fe = WhisperFeatureExtractor(feature_size=128)
    WhisperProcessor(feature_extractor=fe, tokenizer=tok).save_pretrained(out_dir)
    return out_dir


# ------------------------------------------------------------------------------- Qwen2-Audio


def _qwen2_audio_tokenizer(texts: Sequence[str], bpe_vocab_size: int):
    from tokenizers import AddedToken
    from transformers import Qwen2TokenizerFast

    vocab, merges = _train_byte_bpe(texts, bpe_vocab_size, qwen2=True)
    tok = Qwen2TokenizerFast(vocab=vocab, merges=merges, unk_token=None, bos_token=None,
                             eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                             errors="replace", model_max_length=32768)
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    tok.add_special_tokens({"additional_special_tokens": [
        AddedToken(s, lstrip=False, rstrip=False, normalized=False, special=True)
        for s in list(QWEN2_AUDIO_SPECIAL_TOKENS[1:]) + [f"<|{c}|>" for c in LANGUAGES]]},
        replace_extra_special_tokens=True)
    ids = tok.convert_tokens_to_ids(list(QWEN2_AUDIO_SPECIAL_TOKENS))
    if ids != list(range(len(vocab), len(vocab) + len(QWEN2_AUDIO_SPECIAL_TOKENS))):
        raise RuntimeError(f"Qwen2-Audio special tokens not laid out as the real ones: {ids}")
    return tok


def make_tiny_qwen2_audio(
    out_dir: str,
    texts: Optional[Sequence[str]] = None,
    seed: int = 0,
    d_model: int = 64,
    audio_layers: int = 2,
    audio_heads: int = 4,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: Optional[int] = None,
    intermediate_size: int = 128,
    bpe_vocab_size: int = 1000,
    dtype: str = "bfloat16",
) -> str:
    """Write a tiny random Qwen2-Audio-7B (``Qwen2AudioForConditionalGeneration``) checkpoint.

    Args:
        out_dir: folder to write (created).
        texts: sentences the byte-level BPE is trained on (besides :data:`DEFAULT_TEXTS`).
        seed: torch seed of the random weights.
        d_model, audio_layers, audio_heads: the audio encoder (ffn = 4 * d_model, as the real).
        hidden_size, num_layers, num_heads, intermediate_size: the Qwen2 text model.
        num_kv_heads: key/value heads; default ``num_heads`` (multi-head attention, as the real
            Qwen2-Audio-7B, whose text config leaves ``num_key_value_heads`` at 32 = heads).
        bpe_vocab_size: BPE size before the special tokens (real 151643).
        dtype: of the saved weights (real: bfloat16).

    Returns:
        out_dir
    """
    from transformers import (GenerationConfig, Qwen2AudioConfig, Qwen2AudioEncoderConfig,
                              Qwen2AudioForConditionalGeneration, Qwen2AudioProcessor, Qwen2Config,
                              WhisperFeatureExtractor)

    tok = _qwen2_audio_tokenizer(_texts(texts), bpe_vocab_size)
    endoftext, _, im_end, audio = tok.convert_tokens_to_ids(list(QWEN2_AUDIO_SPECIAL_TOKENS[:4]))
    # real: 156032 rows (1219 * 128) for a shorter tokenizer; here at least 64 spare rows
    text_vocab = -(-(len(tok) + 64) // 128) * 128
    text_config = Qwen2Config(
        vocab_size=text_vocab,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads or num_heads,
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        sliding_window=32768,
        use_sliding_window=False,
        bos_token_id=endoftext,
        eos_token_id=im_end,
        tie_word_embeddings=False,
        dtype=dtype,
    )
    audio_config = Qwen2AudioEncoderConfig(
        num_mel_bins=128, encoder_layers=audio_layers, encoder_attention_heads=audio_heads,
        encoder_ffn_dim=4 * d_model, d_model=d_model, activation_function="gelu",
        scale_embedding=False, max_source_positions=1500)
    config = Qwen2AudioConfig(audio_config=audio_config, text_config=text_config,
                              audio_token_index=audio)
    config.dtype = dtype
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config).eval()
    model = model.to(getattr(torch, dtype))
    model.generation_config = GenerationConfig(bos_token_id=endoftext, pad_token_id=endoftext,
                                               eos_token_id=[endoftext, im_end])
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)
    fe = WhisperFeatureExtractor(feature_size=128, return_attention_mask=True)
    Qwen2AudioProcessor(feature_extractor=fe, tokenizer=tok).save_pretrained(out_dir)
    return out_dir


def qwen2_audio_output_length(num_samples: int, hop_length: int = 160) -> int:
    """Number of ``<|AUDIO|>`` positions for ``num_samples`` of 16-kHz audio (at most 30 s): mel
    frames, then the encoder's conv stride 2 and its pooling stride 2 (the formula of
    ``Qwen2AudioEncoder._get_feat_extract_output_lengths``)."""
    frames = min(num_samples, 480000) // hop_length
    conv = (frames - 1) // 2 + 1
    return (conv - 2) // 2 + 1


#: --hf_audio of ``python -m espnet_sllm.testing.tiny_checkpoints`` -> builder
BUILDERS = {"whisper": make_tiny_whisper_asr, "qwen2_audio": make_tiny_qwen2_audio}
#: the stamp :func:`write_tiny_hf_audio` leaves in the folder it wrote
STAMP = "tiny_hf_audio.json"


def write_tiny_hf_audio(out: str, kind: str, sentences: Sequence[str], seed: int = 0) -> dict:
    """``--hf_audio``: write the tiny ``kind`` model into ``out`` unless the stamp there says that
    the same inputs already did (a recipe's reruns leave it alone); returns the stamp."""
    import hashlib
    import logging

    if kind not in BUILDERS:
        raise ValueError(f"unknown hf_audio model {kind!r}; valid: {sorted(BUILDERS)}")
    stamp = dict(hf_audio=kind, seed=seed, n_sentences=len(sentences), sentences_sha1=hashlib.sha1(
        "\n".join(sentences).encode("utf-8")).hexdigest())
    path = os.path.join(out, STAMP)
    if os.path.isfile(path) and os.path.isfile(os.path.join(out, "config.json")):
        with open(path, encoding="utf-8") as f:
            if json.load(f) == stamp:
                logging.getLogger(__name__).info("%s: tiny %s of these inputs exists", out, kind)
                return stamp
    if os.path.isfile(path):
        os.remove(path)
    BUILDERS[kind](out, texts=list(sentences), seed=seed)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(stamp, f, indent=1)
    logging.getLogger(__name__).info("wrote a tiny random %s to %s (tokenizer on %d sentences)",
                                     kind, out, len(sentences))
    return stamp
