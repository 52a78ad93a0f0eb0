"""sllm_inference --task_max_new_tokens: per-task token budgets (Wu et al.'s long answers)."""
import pytest
import torch

from espnet_sllm.decoding.inference import parse_task_budgets, task_of_keys


def test_parse_and_task_file(tmp_path):
    assert parse_task_budgets("sqa=512,qa=512") == {"sqa": 512, "qa": 512}
    assert parse_task_budgets(None) == {} and parse_task_budgets("") == {}
    for bad in ("sqa", "sqa=0", "sqa=x", "=5"):
        with pytest.raises(ValueError, match="--task_max_new_tokens: expected task=N"):
            parse_task_budgets(bad)
    (tmp_path / "utt2task").write_text("u1 asr\nu2 qa\n")
    triples = [(str(tmp_path / "wav.scp"), "speech", "sound"),
               (str(tmp_path / "utt2task"), "task", "text")]
    assert task_of_keys(triples) == {"u1": "asr", "u2": "qa"}
    assert task_of_keys(triples[:1]) == {}


def test_rows_get_their_own_budget(tiny_llm_dirs, tiny_whisper_dir):
    """A model that never ends: row 0 keeps the per-second budget (10 + ceil(1 s x 2)), row 1
    gets its task's 9 tokens, a text-only row 2 (0 samples) its task's 5."""
    from espnet_sllm.tasks.sllm import SLLMTask
    from espnet_sllm.testing.configs import config_to_args, tiny_sllm_config

    cfg = tiny_sllm_config(tiny_llm_dirs["qwen2"], "whisper_hf", tiny_whisper_dir,
                           projector="linear")
    cfg["projector_conf"] = {"downsample": 2}
    cfg["preprocessor_conf"]["text_only_tasks"] = ["qa"]
    model = SLLMTask.build_model(config_to_args(cfg)).eval()
    with torch.no_grad():
        model.llm.model.lm_head.weight.zero_()  # all logits 0; sequence_bias picks token 7
    b = {"speech": torch.randn(3, 16000) * 0.1, "speech_lengths": torch.tensor([16000, 16000, 0]),
         "prefix": torch.zeros(3, 0, dtype=torch.long), "prefix_lengths": torch.zeros(3).long(),
         "suffix": torch.full((3, 1), 3), "suffix_lengths": torch.ones(3).long()}
    out = model.generate(**b, max_new_tokens=40, max_tokens_per_second=2.0,
                         row_max_new_tokens=[None, 9, 5], sequence_bias={(7,): 10.0})
    # each budget counts the EOS the length limit forces at its end
    assert [len(ids) for ids, _ in out] == [11, 8, 4]


def test_row_budgets_must_fit_the_batch(tiny_llm_dirs):
    from espnet_sllm.tasks.sllm import SLLMTask
    from espnet_sllm.testing.configs import config_to_args, tiny_sllm_config

    model = SLLMTask.build_model(config_to_args(tiny_sllm_config(tiny_llm_dirs["qwen2"]))).eval()
    b = {"speech": torch.randn(2, 3200) * 0.1, "speech_lengths": torch.tensor([3200, 3200]),
         "prefix": torch.zeros(2, 0, dtype=torch.long), "prefix_lengths": torch.zeros(2).long(),
         "suffix": torch.full((2, 1), 3), "suffix_lengths": torch.ones(2).long()}
    for bad in ([5], [5, 0], [5, 2.5]):
        with pytest.raises(ValueError, match=r"row_max_new_tokens must hold one budget .* per "
                                             r"row of the batch \(2\)"):
            model.generate(**b, max_new_tokens=4, row_max_new_tokens=bad)
