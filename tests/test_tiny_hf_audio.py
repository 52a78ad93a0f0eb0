"""espnet_sllm.testing.hf_audio: tiny random whisper-large-v3 / Qwen2-Audio-7B checkpoints that
differ from the hub releases only in size (token layout, tying, spare rows, dtypes, round trips)."""
import json
import os

import numpy as np
import pytest
import torch

from espnet_sllm.testing.hf_audio import (QWEN2_AUDIO_SPECIAL_TOKENS, STAMP, WHISPER_TASK_TOKENS,
                                          make_tiny_qwen2_audio, make_tiny_whisper_asr,
                                          qwen2_audio_output_length)

SR = 16000
SENTENCES = ["mười hai giờ trưa", "สวัสดีครับ", "음성을 받아 적으세요", "音声を書き起こして"]


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    return make_tiny_whisper_asr(str(tmp_path_factory.mktemp("whisper_asr")), texts=SENTENCES)


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    return make_tiny_qwen2_audio(str(tmp_path_factory.mktemp("qwen2_audio")), texts=SENTENCES)


def _safetensors_dtypes(path):
    with open(os.path.join(path, "model.safetensors"), "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    return {v["dtype"] for k, v in header.items() if k != "__metadata__"}


def test_whisper_token_layout_and_config(whisper_dir):
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    tok = AutoTokenizer.from_pretrained(whisper_dir)
    langs = [f"<|{c}|>" for c in LANGUAGES]
    assert len(langs) == 100 and langs[-1] == "<|yue|>"
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    order = ["<|endoftext|>", "<|startoftranscript|>", *langs, *WHISPER_TASK_TOKENS]
    order += [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    # the real layout: 50257 <|endoftext|>, 50258 sot, 50259 <|en|> ... 50358 <|yue|>,
    # 50359 translate ... 50364 notimestamps, 50365 <|0.00|> ... 51865 <|30.00|> = len - 1
    assert tok.convert_tokens_to_ids(order) == list(range(eot, eot + len(order)))
    assert len(tok) == eot + len(order) and order[-1] == "<|30.00|>"
    assert tok.convert_tokens_to_ids("Ġ") == 220  # GPT-2 byte order, as the real vocabulary
    for t in langs + ["<|startoftranscript|>", "<|notimestamps|>", "<|0.00|>"]:
        assert tok.tokenize(t) == [t]
    assert set(tok.all_special_tokens) >= set(order[:-1501])
    assert not set(tok.all_special_tokens) & set(order[-1501:])  # timestamps: not special

    cfg = AutoConfig.from_pretrained(whisper_dir)
    assert cfg.vocab_size == len(tok)  # as large-v3: 51866 = tokenizer length
    assert (cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id) == (eot, eot, eot - 1)
    assert cfg.decoder_start_token_id == eot + 1
    assert (cfg.num_mel_bins, cfg.max_source_positions, cfg.max_target_positions) == (128, 1500,
                                                                                      448)
    assert cfg.begin_suppress_tokens == [220, eot]
    assert str(cfg.dtype).endswith("float16") and _safetensors_dtypes(whisper_dir) == {"F16"}
    gen = GenerationConfig.from_pretrained(whisper_dir)
    assert gen.lang_to_id == {t: eot + 2 + i for i, t in enumerate(langs)}
    assert gen.task_to_id == {"translate": eot + 102, "transcribe": eot + 103}
    assert gen.no_timestamps_token_id == eot + 107 and gen.prev_sot_token_id == eot + 105
    assert gen.is_multilingual and gen.max_length == 448
    assert (gen.decoder_start_token_id, gen.eos_token_id, gen.pad_token_id) == (eot + 1, eot, eot)
    assert gen.suppress_tokens and all(i < eot for i in gen.suppress_tokens)


def test_whisper_text_round_trip(whisper_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(whisper_dir)
    eot = tok.eos_token_id
    for s in SENTENCES + ["hello world", "xin chào", "こんにちは、世界"]:
        ids = tok(s, add_special_tokens=False).input_ids
        assert max(ids) < eot and tok.decode(ids) == s
    ids = tok("hello world").input_ids  # <|startoftranscript|><|notimestamps|> ... <|endoftext|>
    assert ids[:2] == [eot + 1, eot + 107] and ids[-1] == eot
    assert tok.decode(ids, skip_special_tokens=True) == "hello world"
    assert tok.get_decoder_prompt_ids(language="ja", task="transcribe") == [
        (1, tok.convert_tokens_to_ids("<|ja|>")), (2, eot + 103), (3, eot + 107)]
    body = tok("hi", add_special_tokens=False).input_ids
    text = tok.decode([eot + 1, eot + 108] + body + [eot + 109], decode_with_timestamps=True)
    assert text == "<|startoftranscript|><|0.00|>hi<|0.02|>"


def test_whisper_model_processor_generate(whisper_dir):
    from transformers import (AutoFeatureExtractor, AutoProcessor,
                              WhisperForConditionalGeneration, WhisperProcessor)

    proc = AutoProcessor.from_pretrained(whisper_dir)
    assert isinstance(proc, WhisperProcessor)
    assert AutoFeatureExtractor.from_pretrained(whisper_dir).feature_size == 128
    model = WhisperForConditionalGeneration.from_pretrained(whisper_dir)
    assert model.dtype == torch.float16  # the saved dtype, as from_pretrained of the real one
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()
    tok = proc.tokenizer
    feats = proc(np.random.RandomState(0).randn(3 * SR).astype(np.float32), sampling_rate=SR,
                 return_tensors="pt").input_features
    assert feats.shape == (1, 128, 3000)
    feats = feats.to(model.dtype)
    out = model.generate(feats, language="en", task="transcribe", max_new_tokens=4,
                         return_dict_in_generate=True)
    prompt = tok.convert_tokens_to_ids(["<|startoftranscript|>", "<|en|>", "<|transcribe|>",
                                        "<|notimestamps|>"])
    assert out.sequences[0, :4].tolist() == prompt
    ids = model.generate(feats, language="en", task="transcribe", max_new_tokens=4)
    assert isinstance(tok.decode(ids[0], skip_special_tokens=True), str)
    # labels of a fine-tuning batch: a finite loss in float32
    model32 = WhisperForConditionalGeneration.from_pretrained(whisper_dir, dtype=torch.float32)
    labels = torch.tensor([tok("hello world").input_ids[1:]])
    assert torch.isfinite(model32(input_features=feats.float(), labels=labels).loss)


def test_qwen2_audio_layout_and_config(qwen_dir):
    from transformers import AutoConfig, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(qwen_dir)
    ids = tok.convert_tokens_to_ids(list(QWEN2_AUDIO_SPECIAL_TOKENS))
    first = ids[0]  # the BPE size (real 151643): <|AUDIO|> = first + 3 (real 151646)
    # then the audio-language tokens of its ASR prompt (Whisper's 100 languages)
    assert ids == list(range(first, first + 6)) and len(tok) == first + 6 + 100
    assert tok.convert_tokens_to_ids(["<|en|>", "<|yue|>"]) == [first + 6, first + 105]
    for t in QWEN2_AUDIO_SPECIAL_TOKENS:
        assert tok.tokenize(t) == [t]
    assert tok.convert_tokens_to_ids("Ġ") == 220
    assert (tok.eos_token, tok.pad_token, tok.bos_token) == ("<|endoftext|>",) * 2 + (None,)
    cfg = AutoConfig.from_pretrained(qwen_dir)
    text = cfg.text_config
    assert cfg.audio_token_index == first + 3
    assert text.vocab_size % 128 == 0 and text.vocab_size > len(tok)  # spare rows (real 156032)
    assert text.tie_word_embeddings is False
    assert text.num_key_value_heads == text.num_attention_heads  # real: MHA (32 / 32)
    assert (text.bos_token_id, text.eos_token_id) == (first, first + 2)
    assert (cfg.audio_config.num_mel_bins, cfg.audio_config.max_source_positions) == (128, 1500)
    assert _safetensors_dtypes(qwen_dir) == {"BF16"}
    for s in SENTENCES + ["hello world"]:
        assert tok.decode(tok(s).input_ids) == s


def test_qwen2_audio_processor_and_forward(qwen_dir):
    from transformers import AutoFeatureExtractor, AutoProcessor, Qwen2AudioForConditionalGeneration

    proc = AutoProcessor.from_pretrained(qwen_dir)
    assert AutoFeatureExtractor.from_pretrained(qwen_dir).feature_size == 128
    model = Qwen2AudioForConditionalGeneration.from_pretrained(qwen_dir)
    assert model.dtype == torch.bfloat16
    assert (model.get_output_embeddings().weight.data_ptr()
            != model.get_input_embeddings().weight.data_ptr())
    rng = np.random.RandomState(0)
    audios = [rng.randn(3 * SR).astype(np.float32), rng.randn(30 * SR).astype(np.float32)]
    texts = ["<|audio_bos|><|AUDIO|><|audio_eos|>Transcribe: hello world",
             "<|audio_bos|><|AUDIO|><|audio_eos|>Transcribe: 음성을 받아 적으세요"]
    batch = proc(text=texts, audio=audios, sampling_rate=SR, return_tensors="pt", padding=True)
    n_audio = (batch.input_ids == model.config.audio_token_index).sum(1).tolist()
    tower = getattr(model, "audio_tower", None) or model.model.audio_tower
    _, out_lens = tower._get_feat_extract_output_lengths(
        batch.feature_attention_mask.sum(-1))
    assert n_audio == out_lens.tolist() == [qwen2_audio_output_length(len(a)) for a in audios]
    assert n_audio == [75, 750]  # 3 s, 30 s
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    out = model(input_ids=batch.input_ids, input_features=batch.input_features.to(model.dtype),
                feature_attention_mask=batch.feature_attention_mask,
                attention_mask=batch.attention_mask, labels=labels)
    assert torch.isfinite(out.loss.float())
    prompt = proc.apply_chat_template(
        [{"role": "user", "content": [{"type": "audio", "audio_url": "a.wav"},
                                      {"type": "text", "text": "What is said?"}]}],
        add_generation_prompt=True, tokenize=False)
    assert "<|audio_bos|><|AUDIO|><|audio_eos|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_cli_hf_audio(tmp_path):
    from transformers import AutoTokenizer

    from espnet_sllm.testing.tiny_checkpoints import main

    text = tmp_path / "text"
    text.write_text("u1 ถอดความเสียงนี้\nu2 書き起こし\n", encoding="utf-8")
    out = tmp_path / "qwen2_audio"
    argv = ["--hf_audio", "qwen2_audio", "--out", str(out), "--text", str(text)]
    assert main(argv) == 0
    assert json.loads((out / STAMP).read_text())["hf_audio"] == "qwen2_audio"
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.decode(tok("ถอดความเสียงนี้").input_ids) == "ถอดความเสียงนี้"
    mtime = os.stat(out / "model.safetensors").st_mtime_ns
    assert main(argv) == 0  # same inputs: left alone
    assert os.stat(out / "model.safetensors").st_mtime_ns == mtime
    with pytest.raises(SystemExit):
        main(["--hf_audio", "wav2vec", "--out", str(out)])
