"""sllm_inference --svd_topk / --svd_target and --task_max_new_tokens end to end (Wu et al.
§2.3.3, Table 2; per-task budgets for long answers), with merge_outputs over two jobs.

The model is the tiny untrained conformer + linear projector + Qwen2 of the other tests (weights
from the seed, no checkpoint): only what the options change is checked. The set has 6 tone
utterances (asr) and one text-only ``qa`` utterance (0 samples).
"""
import json
import os

import pytest
import soundfile as sf
import yaml

from espnet_sllm.bin import merge_outputs
from espnet_sllm.bin.sllm_inference import main
from espnet_sllm.testing.configs import config_to_args, tiny_sllm_config

from .test_train_inference import data_args, write_data


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_llm_dirs):
    tmp = tmp_path_factory.mktemp("svd_inference")
    data = write_data(str(tmp / "data"), 6, 3)
    sf.write(os.path.join(data, "empty.wav"), [], 16000)  # the text-only row: 0 samples
    with open(os.path.join(data, "wav.scp"), "a") as f:
        f.write(f"q0 {data}/empty.wav\n")
    with open(os.path.join(data, "utt2lang"), "a") as f:
        f.write("q0 English\n")
    keys = [line.split()[0] for line in open(os.path.join(data, "wav.scp"))]
    with open(os.path.join(data, "utt2task"), "w") as f:
        f.write("".join(f"{k} {'qa' if k == 'q0' else 'asr'}\n" for k in keys))
    cfg = tiny_sllm_config(tiny_llm_dirs["qwen2"], "conformer", projector="linear")
    cfg["preprocessor_conf"]["text_only_tasks"] = ["qa"]
    (tmp / "config.yaml").write_text(yaml.safe_dump(vars(config_to_args(cfg))))
    cmd = ["--train_config", str(tmp / "config.yaml"), "--batch_size", "3",
           "--max_new_tokens", "12", "--max_tokens_per_second", "0",
           *data_args("", data, with_text=False),
           "--data_path_and_name_and_type", f"{data}/utt2task,task,text"]
    return tmp, data, keys, cmd


def decode(out, cmd, *extra):
    main([*cmd, "--output_dir", str(out), *extra])
    d = out / "1best_recog"
    return {name: dict(line.split(" ", 1) if " " in line else (line, "")
                       for line in (d / name).read_text().splitlines())
            for name in ("text", "token_int", "score")}


def svd_files(out):
    d = out / "1best_recog"
    status = dict(line.split() for line in (d / "svd_topk").read_text().splitlines()) \
        if (d / "svd_topk").exists() else None
    return json.loads((d / "svd_topk.json").read_text()), status


@pytest.fixture(scope="module")
def baseline(setup):
    tmp, _, _, cmd = setup
    return decode(tmp / "plain", cmd)


def test_large_k_changes_nothing_and_counts_every_utterance(setup, baseline):
    tmp, _, keys, cmd = setup
    out = decode(tmp / "k_large", cmd, "--svd_topk", "100000")
    assert out == baseline
    summary, status = svd_files(tmp / "k_large")
    assert summary == {"k": 100000, "target": "activation", "utterances": 6, "unchanged": 6}
    assert status == {k: ("no_frames" if k == "q0" else "unchanged") for k in keys}
    assert not (tmp / "plain" / "1best_recog" / "svd_topk.json").exists()


def test_rank_one_changes_the_speech_side_only(setup, baseline):
    tmp, _, keys, cmd = setup
    out = decode(tmp / "k1", cmd, "--svd_topk", "1")
    summary, status = svd_files(tmp / "k1")
    assert summary == {"k": 1, "target": "activation", "utterances": 6, "unchanged": 0}
    assert status == {k: ("no_frames" if k == "q0" else "truncated") for k in keys}
    # the text-only row has no speech to truncate: the same hypothesis and score
    assert out["token_int"]["q0"] == baseline["token_int"]["q0"]
    assert out["score"]["q0"] == baseline["score"]["q0"]
    assert any(out["score"][k] != baseline["score"][k] for k in keys if k != "q0")
    # a finished run again: nothing decoded, the counts come from the partial file
    before = (tmp / "k1" / "1best_recog" / "svd_topk.json").read_bytes()
    assert decode(tmp / "k1", cmd, "--svd_topk", "1") == out
    assert (tmp / "k1" / "1best_recog" / "svd_topk.json").read_bytes() == before


def test_weight_target(setup):
    tmp, _, _, cmd = setup
    decode(tmp / "w1", cmd, "--svd_topk", "1", "--svd_target", "weight")
    summary, status = svd_files(tmp / "w1")
    assert summary == {"k": 1, "target": "weight", "weight_unchanged": False} and status is None


def test_bad_k_is_an_error(setup, capsys):
    tmp, _, _, cmd = setup
    for bad in ("0", "-5"):
        with pytest.raises(SystemExit):
            main([*cmd, "--output_dir", str(tmp / "bad"), "--svd_topk", bad])
        assert f"--svd_topk must be a positive integer (or none), got {bad}" in \
            capsys.readouterr().err


def test_two_jobs_merge_their_counts(setup):
    tmp, _, keys, cmd = setup
    job_dir = tmp / "jobs"
    job_dir.mkdir()
    for j, part in enumerate((keys[:4], keys[4:]), 1):
        (job_dir / f"keys.{j}").write_text("".join(k + "\n" for k in part))
        decode(job_dir / f"output.{j}", cmd, "--svd_topk", "1", "--key_file",
               str(job_dir / f"keys.{j}"))
    assert merge_outputs.main([str(job_dir)]) == 0
    merged = json.loads((job_dir / "svd_topk.json").read_text())
    assert merged == {"k": 1, "target": "activation", "utterances": 6, "unchanged": 0}
    assert len((job_dir / "svd_topk").read_text().splitlines()) == len(keys)
    # jobs of another k cannot be merged
    (job_dir / "output.2" / "1best_recog" / "svd_topk.json").write_text(
        json.dumps({"k": 2, "target": "activation", "utterances": 3, "unchanged": 0}))
    assert merge_outputs.main([str(job_dir)]) == 1


def test_task_budgets(setup, baseline):
    """qa=2: the text-only row gets 2 tokens with the forced EOS (min_new_tokens 1: exactly one
    token); the asr rows keep max_new_tokens; a malformed value is an error."""
    tmp, _, keys, cmd = setup
    assert len(baseline["token_int"]["q0"].split()) > 1  # the untrained model rambles
    out = decode(tmp / "budget", cmd, "--task_max_new_tokens", "qa=2,sqa=512")
    assert len(out["token_int"]["q0"].split()) == 1
    assert out["token_int"]["q0"].split()[0] == baseline["token_int"]["q0"].split()[0]
    assert {k: v for k, v in out["token_int"].items() if k != "q0"} == \
        {k: v for k, v in baseline["token_int"].items() if k != "q0"}
    with pytest.raises(SystemExit):
        main([*cmd, "--output_dir", str(tmp / "bad_budget"), "--task_max_new_tokens", "qa:2"])
