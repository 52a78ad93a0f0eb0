"""espnet_sllm.testing.tiny_checkpoints: the tiny checkpoints of a recipe's debug configs."""
import json
import os

import pytest
import yaml

from espnet_sllm.testing.tiny_checkpoints import STAMP, main, prompt_strings


def test_checkpoints_tokenizer_and_idempotence(tmp_path, capsys):
    from transformers import AutoConfig, AutoTokenizer

    text = tmp_path / "text"
    text.write_text("u1 hello world\nu2 สวัสดี ครับ\nu3\n", encoding="utf-8")
    conf = tmp_path / "c.yaml"
    conf.write_text(yaml.safe_dump({"preprocessor_conf": {
        "prompt_template": {"Korean": "{speech}USER: {context}음성을 받아 적으세요.\n ASSISTANT:"},
        "context_templates": {"Korean": {"history": "이전 문맥은 \"{text_prev}\"입니다. "}}}},
        allow_unicode=True), encoding="utf-8")
    assert prompt_strings(str(conf)) == ["USER:", "음성을 받아 적으세요. ASSISTANT:",
                                         "이전 문맥은 \"", "\"입니다."]
    out = tmp_path / "tiny"
    argv = ["--out", str(out), "--sentences_from", str(text), "--prompt_config", str(conf)]
    assert main(argv) == 0
    whisper = AutoConfig.from_pretrained(out / "whisper")
    assert (whisper.model_type, whisper.num_mel_bins, whisper.max_source_positions) == (
        "whisper", 128, 1500)
    assert AutoConfig.from_pretrained(out / "gemma2").model_type == "gemma2"
    tok = AutoTokenizer.from_pretrained(out / "gemma2")
    for s in ("สวัสดี", "음성을 받아 적으세요", "hello world"):
        ids = tok(s, add_special_tokens=False)["input_ids"]
        assert ids and tok.unk_token_id not in ids, s
    # same inputs: nothing rewritten; other inputs: rewritten
    mtime = os.stat(out / "gemma2" / "model.safetensors").st_mtime_ns
    assert main(argv) == 0
    assert os.stat(out / "gemma2" / "model.safetensors").st_mtime_ns == mtime
    assert main(argv[:4]) == 0
    assert json.loads((out / STAMP).read_text())["n_sentences"] == 2
    assert main(["--out", str(out), "--sentences_from", str(tmp_path / "missing")]) == 1
    assert "missing" in capsys.readouterr().err


def test_data2vec2_encoder_and_qwen2(tmp_path):
    """--encoder data2vec2: fairseq-layout files of both layouts, converted, loadable by the
    encoder (the two differ); the LLM family as asked."""
    import torch
    from transformers import AutoConfig

    from espnet_sllm.encoders.data2vec2 import Data2Vec2Encoder

    out = tmp_path / "tiny"
    assert main(["--out", str(out), "--encoder", "data2vec2", "--llm_family", "qwen2"]) == 0
    assert sorted(os.listdir(out / "fairseq")) == ["finetune_large_kespeech.pt", "large.pt"]
    assert not (out / "whisper").exists()
    assert AutoConfig.from_pretrained(out / "qwen2").model_type == "qwen2"
    wav = torch.randn(1, 8000)
    feats = []
    for name in ("data2vec2", "data2vec2_ctc"):
        enc = Data2Vec2Encoder(model_name_or_path=str(out / name))
        y, y_lens, _ = enc(wav, torch.tensor([8000]))
        assert y.shape[-1] == 32 and int(y_lens[0]) == y.shape[1]
        feats.append(y)
    assert not torch.allclose(feats[0], feats[1])
    stamp = json.loads((out / STAMP).read_text())
    assert stamp["encoder"] == "data2vec2" and "whisper_mel_bins" not in stamp
    with pytest.raises(SystemExit):  # argparse names the valid choices
        main(["--out", str(out), "--encoder", "wav2vec"])


def test_chat_twin(tmp_path):
    """--chat_twin: the same config and tokenizer files, other weights, one more EOS id."""
    import filecmp

    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    out = tmp_path / "tiny"
    assert main(["--out", str(out), "--llm_family", "llama", "--chat_twin"]) == 0
    base, chat = out / "llama", out / "llama_chat"
    def cfg(d):
        return {k: v for k, v in AutoConfig.from_pretrained(d).to_dict().items()
                if k != "_name_or_path"}

    assert cfg(chat) == cfg(base)
    assert filecmp.cmp(base / "tokenizer.json", chat / "tokenizer.json", shallow=False)
    wb = AutoModelForCausalLM.from_pretrained(base).model.embed_tokens.weight
    wc = AutoModelForCausalLM.from_pretrained(chat).model.embed_tokens.weight
    assert wb.shape == wc.shape and not (wb == wc).all()
    eos_b = GenerationConfig.from_pretrained(base).eos_token_id
    eos_c = GenerationConfig.from_pretrained(chat).eos_token_id
    assert isinstance(eos_c, list) and len(eos_c) == 2 and eos_c[0] == eos_b
