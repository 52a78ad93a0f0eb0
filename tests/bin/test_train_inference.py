"""End to end through the CLIs: collect stats -> 2 epochs of training -> decoding."""
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import yaml

from espnet_sllm.testing.configs import tiny_sllm_config

WORDS = ["red", "blue", "cat", "dog", "one", "two", "fish", "tree"]


def write_data(root, n, seed):
    """Utterances whose words are tones of distinct pitch: learnable, and fast to make."""
    rng = np.random.RandomState(seed)
    os.makedirs(root, exist_ok=True)
    wav_scp, text, lang = [], [], []
    for i in range(n):
        words = list(rng.choice(WORDS, size=rng.randint(1, 4)))
        sig = np.concatenate([
            0.3 * np.sin(2 * np.pi * (200 + 100 * WORDS.index(w)) * np.arange(3200) / 16000)
            for w in words
        ]).astype(np.float32)
        path = os.path.join(root, f"u{i:03d}.wav")
        sf.write(path, sig, 16000)
        wav_scp.append(f"u{i:03d} {path}")
        text.append(f"u{i:03d} {' '.join(words)}")
        lang.append(f"u{i:03d} English")
    for name, rows in (("wav.scp", wav_scp), ("text", text), ("utt2lang", lang)):
        with open(os.path.join(root, name), "w") as f:
            f.write("\n".join(rows) + "\n")
    return root


def run(args, cwd):
    proc = subprocess.run([sys.executable, "-m"] + args, cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def data_args(prefix, d, with_text=True):
    out = [f"--{prefix}data_path_and_name_and_type", f"{d}/wav.scp,speech,sound",
           f"--{prefix}data_path_and_name_and_type", f"{d}/utt2lang,lang,text"]
    if with_text:
        out += [f"--{prefix}data_path_and_name_and_type", f"{d}/text,text,text"]
    return out


def prepare(tmp, tiny_llm_dirs, **changes):
    """Tone data (16 train, 6 valid), a tiny conformer + Qwen2 config (``changes`` on top of
    2 epochs of batch 4) and its collected stats -> (conf, train, valid, stats)."""
    train = write_data(str(tmp / "train"), 16, 0)
    valid = write_data(str(tmp / "valid"), 6, 1)
    cfg = tiny_sllm_config(tiny_llm_dirs["qwen2"], "conformer", ctc_weight=0.3,
                           prompt_template="{speech} Transcribe speech to text.")
    cfg.update(max_epoch=2, batch_type="unsorted", batch_size=4, optim="adam",
               optim_conf={"lr": 1e-3}, best_model_criterion=[["valid", "acc", "max"]],
               keep_nbest_models=1, num_workers=0, seed=0, num_att_plot=0)
    cfg.update(changes)
    conf = tmp / "train.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    for d in (train, valid):
        with open(f"{d}/keys", "w") as f:
            f.write("".join(line.split()[0] + "\n" for line in open(f"{d}/wav.scp")))
    stats = tmp / "stats"
    run(["espnet_sllm.bin.sllm_train", "--collect_stats", "true", "--config", str(conf),
         "--output_dir", str(stats), "--train_shape_file", f"{train}/keys",
         "--valid_shape_file", f"{valid}/keys", *data_args("train_", train),
         *data_args("valid_", valid)], cwd=tmp)
    assert (stats / "train" / "speech_shape").exists()
    return conf, train, valid, stats


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_llm_dirs):
    tmp = tmp_path_factory.mktemp("e2e")
    conf, train, valid, stats = prepare(tmp, tiny_llm_dirs)
    exp = tmp / "exp"
    proc = run(["espnet_sllm.bin.sllm_train", "--config", str(conf), "--output_dir", str(exp),
                "--train_shape_file", str(stats / "train" / "speech_shape"),
                "--valid_shape_file", str(stats / "valid" / "speech_shape"),
                *data_args("train_", train), *data_args("valid_", valid)], cwd=tmp)
    # ESPnet logs to stderr; sllm.sh's launcher writes it to <exp>/train.log
    (exp / "train.log").write_text(proc.stderr)
    return tmp, exp, valid


def test_training_writes_checkpoints(trained):
    _, exp, _ = trained
    for name in ("2epoch.pth", "valid.acc.best.pth", "valid.acc.ave.pth", "config.yaml",
                 "checkpoint.pth"):
        assert (exp / name).exists(), name
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["encoder"] == "conformer" and config["llm"] == "hf"


def epoch_results(log):
    """ESPnet's ``<N>epoch results: [train] k=v, ..., [valid] k=v, ...`` lines ->
    {epoch: {"train": {k: float or str}, "valid": {...}}} (the last line of an epoch wins)."""
    out = {}
    for m in re.finditer(r"(\d+)epoch results: (.*)$", log, re.MULTILINE):
        sections = {}
        for sec in re.finditer(r"\[(\w+)\] (.*?)(?=, \[\w+\] |$)", m.group(2)):
            values = {}
            for item in sec.group(2).split(", "):
                key, _, value = item.partition("=")
                try:
                    values[key.strip()] = float(value)
                except ValueError:
                    values[key.strip()] = value.strip()
            sections[sec.group(1)] = values
        out[int(m.group(1))] = sections
    return out


def test_epoch_results_parser():
    log = ("[host] 2026-01-01 00:00:00,000 (trainer:394) INFO: 1epoch results: [train] "
           "iter_time=0.017, loss_ce=5.158, acc=0.011, loss=8.941, clip=0.000e+00, "
           "time=3.21 seconds, total_count=4, [valid] loss_ce=4.819, loss=8.503, acc=0.130\n"
           "junk line loss=1.0\n"
           "x INFO: 12epoch results: [train] loss=1.234e+04, acc=0.5, [valid] loss=2.000\n")
    res = epoch_results(log)
    assert sorted(res) == [1, 12]
    assert res[1]["train"]["loss"] == 8.941 and res[1]["train"]["loss_ce"] == 5.158
    assert res[1]["train"]["time"] == "3.21 seconds" and res[1]["valid"]["acc"] == 0.130
    assert res[12]["train"]["loss"] == 1.234e4 and res[12]["valid"] == {"loss": 2.0}


def test_training_reduces_the_loss(trained):
    _, exp, _ = trained
    config = yaml.safe_load((exp / "config.yaml").read_text())
    results = epoch_results((exp / "train.log").read_text())
    last = config["max_epoch"]
    assert sorted(results) == list(range(1, last + 1)), sorted(results)
    loss = {e: results[e]["train"]["loss"] for e in results}
    assert all(math.isfinite(v) for v in loss.values()), loss
    # a learnable task: the mean train loss of the last epoch is well below the first one's
    assert loss[last] < 0.97 * loss[1], loss
    assert results[last]["valid"]["loss"] < results[1]["valid"]["loss"], results
    assert results[last]["valid"]["acc"] > results[1]["valid"]["acc"], results
    # the log agrees with the reporter state saved in checkpoint.pth
    import torch

    stats = torch.load(exp / "checkpoint.pth", weights_only=False)["reporter"]["stats"]
    for e in results:
        assert abs(stats[e]["train"]["loss"] - loss[e]) < 1e-3 * max(1.0, abs(loss[e]))


def test_inference_writes_1best_and_key_file_split_is_identical(trained):
    tmp, exp, valid = trained
    common = ["espnet_sllm.bin.sllm_inference", "--train_config", str(exp / "config.yaml"),
              "--model_file", str(exp / "valid.acc.best.pth"), "--batch_size", "1",
              "--beam_size", "2", "--max_new_tokens", "10", *data_args("", valid, False)]
    run(common + ["--output_dir", str(tmp / "dec_all")], cwd=tmp)
    text = (tmp / "dec_all" / "1best_recog" / "text").read_text().splitlines()
    keys = [line.split()[0] for line in open(f"{valid}/keys")]
    assert [t.split(" ", 1)[0] for t in text] == sorted(keys)
    for f in ("score", "token", "token_int"):
        assert len((tmp / "dec_all" / "1best_recog" / f).read_text().splitlines()) == len(keys)
    parts = []
    for j, chunk in enumerate((keys[:2], keys[2:])):
        kf = tmp / f"keys.{j}"
        kf.write_text("".join(k + "\n" for k in chunk))
        run(common + ["--key_file", str(kf), "--output_dir", str(tmp / f"dec_{j}")], cwd=tmp)
        parts += (tmp / f"dec_{j}" / "1best_recog" / "text").read_text().splitlines()
    assert sorted(parts) == text


def test_inference_refuses_mismatched_checkpoint(trained, tiny_llm_dirs):
    tmp, exp, valid = trained
    import torch

    state = torch.load(exp / "valid.acc.best.pth", weights_only=False)
    state["projector.not_a_weight"] = torch.zeros(1)
    torch.save(state, tmp / "bad.pth")
    proc = subprocess.run(
        [sys.executable, "-m", "espnet_sllm.bin.sllm_inference", "--train_config",
         str(exp / "config.yaml"), "--model_file", str(tmp / "bad.pth"),
         "--output_dir", str(tmp / "dec_bad"), *data_args("", valid, False)],
        cwd=tmp, capture_output=True, text=True)
    assert proc.returncode != 0 and "does not match" in proc.stderr


def test_missing_wav_is_decoded_empty_and_all_missing_is_an_error(tmp_path, trained):
    """A missing audio file at decoding time: listed in `failed` (wav.scp:line, the path), an
    empty hypothesis, the others decode; a set where nothing can be read is one error line."""
    tmp, exp, valid = trained
    good = open(f"{valid}/wav.scp").readline().split()[1]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "wav.scp").write_text(f"x1 {tmp_path}/missing.wav\nx2 {good}\n")
    (bad / "utt2lang").write_text("x1 English\nx2 English\n")
    out = tmp_path / "dec"
    run(["espnet_sllm.bin.sllm_inference", "--train_config", str(exp / "config.yaml"),
         "--model_file", str(exp / "valid.acc.best.pth"), "--output_dir", str(out),
         "--max_new_tokens", "4", *data_args("", str(bad), False)], cwd=tmp)
    failed = (out / "1best_recog" / "failed").read_text()
    assert failed.startswith("x1 ") and "wav.scp:1" in failed and "missing.wav" in failed
    lines = (out / "1best_recog" / "text").read_text().splitlines()
    assert [ln.split()[0] for ln in lines] == ["x1", "x2"] and lines[0].strip() == "x1"
    (bad / "wav.scp").write_text(f"x1 {tmp_path}/missing.wav\n")
    (bad / "utt2lang").write_text("x1 English\n")
    proc = subprocess.run(
        [sys.executable, "-m", "espnet_sllm.bin.sllm_inference", "--train_config",
         str(exp / "config.yaml"), "--output_dir", str(tmp_path / "dec2"),
         *data_args("", str(bad), False)], cwd=tmp, capture_output=True, text=True)
    assert proc.returncode == 1 and "missing.wav" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("sllm_inference: error: none of")
