"""sllm_inference --llm_conf model_name_or_path=...: decoding a trained alignment module with
another frozen LLM of the same architecture (Wu et al. §2.3.2: Yi-6B -> Yi-6B-Chat)."""
import pytest
import torch
import yaml

from espnet_sllm.decoding.inference import load_model
from espnet_sllm.testing.configs import config_to_args, tiny_sllm_config

SPECIAL = ["<|startofaudio|>", "<|endofaudio|>"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_whisper_dir):
    """A config + a checkpoint with everything in it (save_strategy all), the projector and the
    added-token rows changed as after training; the base LLM and its chat twin."""
    from espnet_sllm.tasks.sllm import SLLMTask
    from espnet_sllm.testing.tiny_checkpoints import make_tiny_checkpoints

    root = tmp_path_factory.mktemp("swap")
    make_tiny_checkpoints(str(root / "tiny"), ["the cat sat", "a dog ran"], llm_family="llama",
                          chat_twin=True)
    cfg = tiny_sllm_config(str(root / "tiny/llama"), "whisper_hf", tiny_whisper_dir,
                           projector="linear",
                           prompt_template="<|startofaudio|>{speech}<|endofaudio|>",
                           llm_extra={"special_tokens": SPECIAL, "freeze": True})
    cfg["projector_conf"] = {"downsample": 1}
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(vars(config_to_args(cfg))))
    model, _ = SLLMTask.build_model_from_file(str(path), None, "cpu")
    with torch.no_grad():
        model.projector.linear.weight.normal_()
        model.llm.new_token_embeddings.normal_()
    torch.save(model.state_dict(), root / "model.pth")  # the frozen LLM's weights included
    return root, path, model


def test_swap_keeps_alignment_weights_and_takes_the_new_llm(trained):
    root, config, trained_model = trained
    chat = str(root / "tiny/llama_chat")
    model, args = load_model(str(config), str(root / "model.pth"), "cpu",
                             llm_conf={"model_name_or_path": chat})
    assert args.llm_conf["model_name_or_path"] == chat
    assert args.llm_conf["tokenizer_name_or_path"] == str(root / "tiny/llama")
    for name in ("projector.linear.weight", "projector.linear.bias", "llm.new_token_embeddings"):
        assert torch.equal(model.state_dict()[name], trained_model.state_dict()[name]), name
    from transformers import AutoModelForCausalLM

    chat_w = AutoModelForCausalLM.from_pretrained(chat).model.embed_tokens.weight
    ours = model.llm.model.model.embed_tokens.weight
    assert torch.equal(ours[: chat_w.size(0)].float(), chat_w.float())
    base, _ = load_model(str(config), str(root / "model.pth"), "cpu")
    assert not torch.equal(base.llm.model.model.embed_tokens.weight, ours)
    assert base.llm.extra_eos_ids == () and len(model.llm.extra_eos_ids) == 1


def test_a_hypothesis_ends_at_the_chat_eos(trained):
    root, config, _ = trained
    model, _ = load_model(str(config), str(root / "model.pth"), "cpu",
                          llm_conf={"model_name_or_path": str(root / "tiny/llama_chat")})
    end = model.llm.extra_eos_ids[0]
    with torch.no_grad():  # every logit 0: transformers' sequence_bias picks the token
        model.llm.model.lm_head.weight.zero_()
    b = {"speech": torch.randn(1, 16000) * 0.1, "speech_lengths": torch.tensor([16000]),
         "prefix": torch.zeros(1, 0, dtype=torch.long), "prefix_lengths": torch.tensor([0]),
         "suffix": torch.tensor([[3]]), "suffix_lengths": torch.tensor([1])}
    ids, _ = model.generate(**b, max_new_tokens=4, max_tokens_per_second=None,
                            sequence_bias={(5,): 10.0})[0]
    assert ids == [5, 5, 5]  # never the end token (the 4th: the length limit ends it)
    ids, _ = model.generate(**b, max_new_tokens=4, max_tokens_per_second=None,
                            sequence_bias={(5,): 10.0, (5, end): 30.0})[0]
    assert ids == [5]  # 5, then the chat model's end of turn ends it


def test_another_hidden_size_is_an_error(trained, tmp_path):
    from espnet_sllm.testing.llm import make_tiny_llm

    root, config, _ = trained
    other = make_tiny_llm(str(tmp_path / "wide"), "llama", hidden_size=96,
                          tokenizer_dir=str(root / "tiny/llama"))
    with pytest.raises(ValueError, match=r"its hidden_size is 96, but the model was trained "
                                         r"with .*hidden_size 64"):
        load_model(str(config), str(root / "model.pth"), "cpu",
                   llm_conf={"model_name_or_path": other})


def test_a_trained_llm_cannot_be_swapped(trained, tmp_path):
    """A checkpoint whose LLM weights themselves trained (freeze false, no LoRA): the swap would
    overwrite the new model with them, an error naming the option and a key."""
    from espnet_sllm.tasks.sllm import SLLMTask

    root, config, _ = trained
    conf = yaml.safe_load(config.read_text())
    conf["llm_conf"]["freeze"] = False
    tuned = tmp_path / "config.yaml"
    tuned.write_text(yaml.safe_dump(conf))
    model, _ = SLLMTask.build_model_from_file(str(tuned), None, "cpu")
    torch.save(model.state_dict(), tmp_path / "model.pth")
    chat = str(root / "tiny/llama_chat")
    with pytest.raises(ValueError, match=r"model_name_or_path=.*llama_chat: .* holds fine-tuned "
                                         r"weights of the trained LLM itself .*e\.g\. llm\."):
        load_model(str(tuned), str(tmp_path / "model.pth"), "cpu",
                   llm_conf={"model_name_or_path": chat})
    # the same LLM with other options is no swap: the trained weights load as they are
    same, _ = load_model(str(tuned), str(tmp_path / "model.pth"), "cpu",
                         llm_conf={"attn_implementation": "eager"})
    assert same.llm.extra_eos_ids == ()
    w = "llm.model.model.embed_tokens.weight"
    assert torch.equal(same.state_dict()[w], model.state_dict()[w])


def test_the_swapped_tokenizers_eos_ends_hypotheses_too(trained, tmp_path):
    """The chat model's own tokenizer names another EOS (found by name in the training
    tokenizer); an id the training vocabulary lacks is ignored."""
    import json
    import shutil

    root, config, _ = trained
    chat = tmp_path / "chat"
    shutil.copytree(root / "tiny/llama_chat", chat)
    cfg_path = chat / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    from transformers import AutoTokenizer

    piece = AutoTokenizer.from_pretrained(str(root / "tiny/llama")).convert_ids_to_tokens(9)
    cfg["eos_token"] = piece
    cfg_path.write_text(json.dumps(cfg))
    gen = json.loads((chat / "generation_config.json").read_text())
    gen["eos_token_id"] = gen["eos_token_id"] + [10 ** 6]  # beyond the vocabulary
    (chat / "generation_config.json").write_text(json.dumps(gen))
    model, _ = load_model(str(config), str(root / "model.pth"), "cpu",
                          llm_conf={"model_name_or_path": str(chat)})
    assert 9 in model.llm.extra_eos_ids and 10 ** 6 not in model.llm.extra_eos_ids
    assert model.llm.eos_token_id not in model.llm.extra_eos_ids


def test_the_training_tokenizer_stays_when_the_config_says_null(trained, tmp_path):
    root, config, _ = trained
    conf = yaml.safe_load(config.read_text())
    conf["llm_conf"]["tokenizer_name_or_path"] = None
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(conf))
    _, args = load_model(str(path), None, "cpu",
                         llm_conf={"model_name_or_path": str(root / "tiny/llama_chat")})
    assert args.llm_conf["tokenizer_name_or_path"] == str(root / "tiny/llama")
