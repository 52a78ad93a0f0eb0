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
