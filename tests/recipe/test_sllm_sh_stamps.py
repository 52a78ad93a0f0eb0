"""sllm.sh: stamps belong to the experiment / data / decode directory they describe (issue #10).

Two experiments (and more) share one expdir, as in every ESPnet recipe:
* a finished experiment is skipped after another one trained in the same expdir;
* a run killed (SIGKILL) in epoch 2 of 3 resumes from its checkpoint and ends with the weights of
  an uninterrupted run of the same config and seed;
* an interrupted run whose config changed is moved aside with a message and trained anew;
* the stage-7 stamps of two experiments decoded with the same decode tag do not collide.

Tiny tone data are written straight into data/ of a throw-away copy of egs2/mini_mlc/asr1; stages
2-5 run once per module (stage 4: a from-scratch 1-layer qwen2 and its tokenizer); each training
is a 1-block conformer + that LLM, 3 epochs of 4 steps, on one CPU thread.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from espnet_sllm.testing.configs import tiny_sllm_config
from espnet_sllm.testing.recipe import copy_recipe, run_recipe

EXP = "exp_t"
DUMP = "dump_t"
WORDS = ["red", "blue", "cat", "dog", "one", "two", "fish", "tree"]
SCRATCH = ("--family qwen2 --vocab_size 120 --hidden_size 32 --num_layers 1 --num_heads 2 "
           "--num_kv_heads 1 --intermediate_size 64")
# One thread: the same arithmetic in every run (and polite to the other users of the machine).
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def write_set(recipe: Path, name: str, n: int, seed: int) -> None:
    """data/<name>: utterances whose words are tones of distinct pitch (fast to make)."""
    rng = np.random.RandomState(seed)
    wav_dir = recipe / "downloads" / name
    wav_dir.mkdir(parents=True)
    rows = {"wav.scp": [], "text": [], "utt2spk": [], "utt2lang": []}
    for i in range(n):
        utt = f"spk1-{name}{i:03d}"
        words = list(rng.choice(WORDS, size=rng.randint(1, 4)))
        t = np.arange(3200) / 16000
        sig = np.concatenate([0.3 * np.sin(2 * np.pi * (200 + 100 * WORDS.index(w)) * t)
                              for w in words]).astype(np.float32)
        sf.write(wav_dir / f"{utt}.wav", sig, 16000)
        rows["wav.scp"].append(f"{utt} {wav_dir / f'{utt}.wav'}")
        rows["text"].append(f"{utt} {' '.join(words)}")
        rows["utt2spk"].append(f"{utt} spk1")
        rows["utt2lang"].append(f"{utt} English")
    d = recipe / "data" / name
    d.mkdir(parents=True)
    for fname, lines in rows.items():
        (d / fname).write_text("\n".join(lines) + "\n")
    (d / "spk2utt").write_text("spk1 " + " ".join(r.split()[0] for r in rows["utt2spk"]) + "\n")


def write_config(path: Path, **changes) -> str:
    cfg = tiny_sllm_config(f"{EXP}/llm_scratch", "conformer", ctc_weight=0.3,
                           llm_extra={"pretrained": False})
    cfg.update(max_epoch=3, batch_type="unsorted", batch_size=4, optim="adam",
               optim_conf={"lr": 1e-3}, scheduler="warmuplr", scheduler_conf={"warmup_steps": 5},
               best_model_criterion=[["valid", "acc", "max"]], keep_nbest_models=1,
               num_workers=0, seed=0, num_att_plot=0)
    cfg.update(changes)
    path.write_text(yaml.safe_dump(cfg))
    return str(path.relative_to(path.parents[1]))  # conf/<name>.yaml, relative to the recipe


def argv(stage, stop, tag, config, *extra):
    return ["sllm.sh", "--stage", str(stage), "--stop_stage", str(stop), "--train_set", "train",
            "--valid_set", "valid", "--test_sets", "test", "--dumpdir", DUMP, "--expdir", EXP,
            "--nj", "1", "--inference_nj", "1", "--scratch_llm_opts", SCRATCH,
            "--train_config", config, "--tag", tag, *extra]


def run_ok(recipe, args):
    proc = run_recipe(recipe, args, **ENV)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    return out


def train_log(exp: Path) -> str:
    return (exp / "train.log").read_text()


def model_state(path: Path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=False)
    return state["model"] if "model" in state and "reporter" in state else state


def assert_same_weights(a: Path, b: Path) -> None:
    sa, sb = model_state(a), model_state(b)
    assert sa.keys() == sb.keys()
    different = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not different, f"{a} and {b} differ in {different[:5]}"


def kill_in_epoch_2(recipe: Path, args, exp: Path) -> None:
    """Run stage 6 and SIGKILL its whole process group once epoch 2 of 3 has started."""
    env = dict(os.environ, **ENV)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2]) + os.pathsep + \
        env.get("PYTHONPATH", "")
    proc = subprocess.Popen(["bash", *args], cwd=recipe, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        log = exp / "train.log"
        while "2/3epoch started" not in (log.read_text() if log.exists() else ""):
            assert proc.poll() is None, f"training ended before epoch 2: {log.read_text()[-3000:]}"
            assert time.time() < deadline, "epoch 2 never started"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # Killed in epoch 2: the checkpoint holds epoch 1, the run is not finished.
    assert torch.load(exp / "checkpoint.pth", weights_only=False)["reporter"]["epoch"] == 1
    assert not (exp / "3epoch.pth").exists()
    assert (exp / ".stamps" / "stage6.started").exists()
    assert not (exp / ".stamps" / "stage6").exists()


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """The recipe copy with tiny data, stages 2-5 done, and experiment resA trained (3 epochs)."""
    recipe = copy_recipe("egs2/mini_mlc/asr1", tmp_path_factory.mktemp("stamps"))
    for name, n, seed in (("train", 16, 0), ("valid", 6, 1), ("test", 3, 2)):
        write_set(recipe, name, n, seed)
    conf = write_config(recipe / "conf" / "tiny.yaml")
    run_ok(recipe, argv(2, 5, "resA", conf))
    out = run_ok(recipe, argv(6, 6, "resA", conf))
    assert "Stage 6: conf/tiny.yaml: skipped" not in out
    return recipe


def test_data_stamps_live_with_their_data(recipe):
    exp = recipe / EXP
    assert sorted(os.listdir(recipe / DUMP / ".stamps")) == [
        "stage2.test", "stage2.train", "stage2.valid", "stage3.train", "stage3.valid"]
    assert (exp / "llm_scratch" / ".stamps" / "stage4").is_file()
    assert (exp / "stats" / ".stamps" / "stage5").is_file()
    assert (exp / "sllm_resA" / ".stamps" / "stage6").is_file()
    assert not (exp / ".stamps").exists()  # nothing shared by name in the expdir any more
    # Stamps are not inputs: the Kaldi dirs hold no stamp, and re-running skips everything.
    assert not any(p.name == ".stamps" for p in (recipe / DUMP / "raw").rglob("*"))
    out = run_ok(recipe, argv(2, 5, "resA", "conf/tiny.yaml"))
    for step in ("Stage 2: train: skipped", "Stage 2: test: skipped", "Stage 3: valid: skipped",
                 "Stage 4: skipped", "Stage 5: skipped"):
        assert step in out, out[-3000:]


def test_finished_experiment_is_skipped_after_another_trained(recipe):
    exp_a = recipe / EXP / "sllm_resA"
    best_a = (exp_a / "valid.acc.best.pth").resolve()
    mtime_a = best_a.stat().st_mtime_ns
    run_ok(recipe, argv(6, 6, "resB", "conf/tiny.yaml"))
    assert (recipe / EXP / "sllm_resB" / ".stamps" / "stage6").is_file()

    out = run_ok(recipe, argv(6, 6, "resA", "conf/tiny.yaml"))
    assert f"skipped ({EXP}/sllm_resA finished with the same command and inputs)" in out
    assert "moving it to" not in out
    assert not list((recipe / EXP).glob("sllm_resA.old.*"))
    assert best_a.stat().st_mtime_ns == mtime_a
    # Same config, same seed, same data: the two experiments are the same model.
    assert_same_weights(exp_a / "valid.acc.best.pth",
                        recipe / EXP / "sllm_resB" / "valid.acc.best.pth")


def test_killed_run_resumes_to_the_weights_of_an_uninterrupted_run(recipe):
    exp = recipe / EXP / "sllm_resC"
    args = argv(6, 6, "resC", "conf/tiny.yaml")
    kill_in_epoch_2(recipe, args, exp)

    out = run_ok(recipe, args)
    assert f"{EXP}/sllm_resC was interrupted: resuming from {EXP}/sllm_resC/checkpoint.pth" in out
    assert "moving it to" not in out
    log = train_log(exp)
    assert "The training was resumed using" in log
    assert "2/3epoch started" in log and "1/3epoch started" not in log
    assert list(exp.glob("train.log.interrupted.*"))  # the killed run's log is kept
    assert (exp / ".stamps" / "stage6").is_file()
    assert not (exp / ".stamps" / "stage6.started").exists()
    # Tensor for tensor the weights of resA (same config and seed, never interrupted): the last
    # epoch (checkpoint.pth) and the best one.
    exp_a = recipe / EXP / "sllm_resA"
    assert_same_weights(exp / "checkpoint.pth", exp_a / "checkpoint.pth")
    assert_same_weights(exp / "valid.acc.best.pth", exp_a / "valid.acc.best.pth")
    # Finished now: the next call skips it.
    assert "skipped" in run_ok(recipe, args)


def test_interrupted_run_whose_config_changed_is_moved_aside(recipe):
    conf = write_config(recipe / "conf" / "tiny_d.yaml")
    exp = recipe / EXP / "sllm_resD"
    kill_in_epoch_2(recipe, argv(6, 6, "resD", conf), exp)

    write_config(recipe / "conf" / "tiny_d.yaml", max_epoch=1, optim_conf={"lr": 2e-3})
    out = run_ok(recipe, argv(6, 6, "resD", conf))
    assert (f"{EXP}/sllm_resD: it was interrupted, and the command or inputs changed since it "
            f"started: moving it to {EXP}/sllm_resD.old.") in out
    old = list((recipe / EXP).glob("sllm_resD.old.*"))
    assert len(old) == 1
    assert (old[0] / "checkpoint.pth").exists() and (old[0] / ".stamps" / "stage6.started").exists()
    # Trained from scratch with the new config: epoch 1 of 1, nothing resumed.
    log = train_log(exp)
    assert "The training was resumed" not in log and "1/1epoch started" in log
    assert yaml.safe_load((exp / "config.yaml").read_text())["optim_conf"]["lr"] == 2e-3
    assert (exp / ".stamps" / "stage6").is_file()
    assert "resD" in (exp / "run.sh.cmd").read_text()  # this command, in the new experiment


def test_stamp_of_the_old_layout_still_counts(recipe):
    # Before stamps moved next to what they describe, they were <expdir>/.stamps/stage6.1 etc.:
    # one that matches exactly (its output signature names sllm_resA) spares the retraining.
    exp_a = recipe / EXP / "sllm_resA"
    legacy = recipe / EXP / ".stamps"
    legacy.mkdir()
    try:
        (exp_a / ".stamps" / "stage6").rename(legacy / "stage6.1")
        out = run_ok(recipe, argv(6, 6, "resA", "conf/tiny.yaml"))
        assert "Stage 6: conf/tiny.yaml: skipped" in out and "moving it to" not in out
        assert (exp_a / ".stamps" / "stage6").read_text() == (legacy / "stage6.1").read_text()
    finally:
        shutil.rmtree(legacy)


def test_decode_stamps_of_two_experiments_do_not_collide(recipe):
    # Both experiments are trained by now (test order); decode them with the same decode tag.
    opts = ["--inference_tag", "decode_t", "--inference_args", "--beam_size 1 --max_new_tokens 3"]
    for tag in ("resA", "resB"):
        if not (recipe / EXP / f"sllm_{tag}" / ".stamps" / "stage6").exists():
            run_ok(recipe, argv(6, 6, tag, "conf/tiny.yaml"))
        out = run_ok(recipe, argv(7, 7, tag, "conf/tiny.yaml", *opts))
        assert "Stage 7: test: skipped" not in out
    stamps = [recipe / EXP / f"sllm_{tag}" / "decode_t" / "test" / ".stamps" / "stage7"
              for tag in ("resA", "resB")]
    assert all(s.is_file() for s in stamps)
    assert stamps[0].read_text() != stamps[1].read_text()
    for tag in ("resA", "resB"):
        out = run_ok(recipe, argv(7, 7, tag, "conf/tiny.yaml", *opts))
        assert "Stage 7: test: skipped (decoded with the same model and options)" in out


def test_num_splits_trains_with_espnets_multiple_iterator(recipe):
    # --num_splits 2: stage 6 splits the training set into 2 parts (wav.scp order, every file
    # following its utterance) and ESPnet builds one part's iterator at a time.
    run_ok(recipe, argv(6, 6, "resS", "conf/tiny.yaml", "--num_splits", "2"))
    exp = recipe / EXP / "sllm_resS"
    splits = recipe / EXP / "stats" / "splits2"
    for name in ("wav.scp", "text", "utt2lang", "speech_shape", "text_shape"):
        assert (splits / name / "num_splits").read_text().strip() == "2", name
        parts = [(splits / name / f"split.{i}").read_text().split("\n")[:-1] for i in (0, 1)]
        assert [len(p) for p in parts] == [8, 8], name
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["multiple_iterator"] is True
    assert all(p.startswith(str(Path(EXP) / "stats" / "splits2"))
               for p in config["train_shape_file"])
    assert (exp / "valid.acc.best.pth").exists()
    # Every epoch still sees the whole set: as many updates as the unsplit run resA.
    counts = {}
    for tag in ("resA", "resS"):
        rep = torch.load(recipe / EXP / f"sllm_{tag}" / "checkpoint.pth",
                         weights_only=False)["reporter"]
        counts[tag] = [rep["stats"][e]["train"]["total_count"] for e in (1, 2, 3)]
    assert counts["resS"] == counts["resA"] == [4, 8, 12], counts
