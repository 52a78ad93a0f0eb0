"""Kill and resume (issue #17 §2): SIGKILL half-way, run the same command again.

* Data (stage 2, format_data): no file at its final name is ever cut short (temporary name,
  then rename); the re-run finishes what is missing and its output equals an uninterrupted run's.
* Decoding (stage 7 of sllm.sh, 2 jobs): killed half-way, the re-run decodes only what each job
  lacks and the merged files equal an uninterrupted run's byte for byte; an unreadable test
  utterance is in ``failed`` and decodes as an empty hypothesis. (The model: the tiny untrained
  conformer + Qwen2, weights saved as they are built; sllm_inference alone is killed and resumed
  in tests/bin/test_resume_decoding.py.)
* Chained training (stage 6 of sllm.sh, three configs): killed while chain stage 2 trains its
  epoch 2, the re-run skips stage 1, resumes stage 2 from its checkpoint.pth and trains stage 3.
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
import yaml

from espnet_sllm.testing.configs import config_to_args, tiny_sllm_config
from espnet_sllm.testing.llm import make_tiny_llm
from espnet_sllm.testing.recipe import copy_recipe

from test_sllm_sh_chain import write_config  # noqa: E402
from test_sllm_sh_stamps import ENV, kill_in_epoch_2, run_ok, write_set  # noqa: E402

N_WAVS = 40
RATE = 48000  # resampled to 16 kHz and mixed down: a few ms of work per utterance
SECONDS = 4


def write_tones(root: Path) -> Path:
    """data/<set> of N_WAVS two-channel tone WAVs at RATE Hz."""
    wav_dir = root / "wav"
    wav_dir.mkdir(parents=True)
    t = np.arange(SECONDS * RATE) / RATE
    rows = []
    for i in range(N_WAVS):
        sig = np.stack([0.3 * np.sin(2 * np.pi * (200 + 10 * i) * t),
                        0.2 * np.sin(2 * np.pi * (310 + 7 * i) * t)], axis=1)
        sf.write(wav_dir / f"u{i:02d}.wav", sig.astype(np.float32), RATE)
        rows.append(f"u{i:02d} {wav_dir / f'u{i:02d}.wav'}")
    d = root / "data"
    d.mkdir()
    (d / "wav.scp").write_text("\n".join(rows) + "\n")
    (d / "text").write_text("".join(f"u{i:02d} tone {i}\n" for i in range(N_WAVS)))
    (d / "utt2spk").write_text("".join(f"u{i:02d} s\n" for i in range(N_WAVS)))
    (d / "spk2utt").write_text("s " + " ".join(f"u{i:02d}" for i in range(N_WAVS)) + "\n")
    return d


def format_cmd(in_dir: Path, out_dir: Path):
    return [sys.executable, "-m", "espnet_sllm.bin.format_data", "--in", str(in_dir), "--out",
            str(out_dir), "--nj", "1"]


def state_lines(out_dir: Path) -> int:
    path = out_dir / "data" / ".format_state.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


def final_wavs_are_whole(out_dir: Path) -> int:
    """Every FLAC at its final name (stage 2's default --audio_format) has the full length and
    decodes to its end (a FLAC cut short fails to decode: "flac decoder lost sync"); returns
    how many there are."""
    expected = SECONDS * 16000
    files = [p for p in (out_dir / "data").glob("*.flac") if not p.name.endswith(".tmp.flac")]
    for p in files:
        info = sf.info(p)
        assert info.frames == expected and len(sf.read(p, dtype="int16")[0]) == expected, p
    return len(files)


def kill_format_data(in_dir: Path, out_dir: Path, at: int) -> int:
    """Run format_data, SIGKILL it once ``at`` utterances are in its state file; returns the
    number recorded then."""
    proc = subprocess.Popen(format_cmd(in_dir, out_dir), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, **ENV))
    try:
        deadline = time.time() + 60
        while state_lines(out_dir) < at:
            assert proc.poll() is None, "format_data ended before it could be killed"
            assert time.time() < deadline, "format_data wrote nothing"
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return state_lines(out_dir)


def outputs(out_dir: Path) -> dict:
    """Every file of a formatted directory but the report and the state file, with the output
    directory's own path taken out of wav.scp."""
    files = {}
    for p in sorted(out_dir.rglob("*")):
        if p.is_file() and p.name not in ("format_report.txt", ".format_state.jsonl"):
            files[str(p.relative_to(out_dir))] = p.read_bytes().replace(
                str(out_dir).encode(), b"<out>")
    return files


def test_killed_format_data_resumes_to_the_output_of_an_uninterrupted_run(tmp_path):
    in_dir = write_tones(tmp_path)
    ref = tmp_path / "ref"
    subprocess.run(format_cmd(in_dir, ref), check=True, capture_output=True,
                   env=dict(os.environ, **ENV))

    out = tmp_path / "out"
    first = kill_format_data(in_dir, out, 8)
    assert first < N_WAVS and final_wavs_are_whole(out) >= first
    assert not (out / "wav.scp").exists()  # nothing looks finished
    # killed a second time, later on: what the first run wrote is kept
    second = kill_format_data(in_dir, out, first + 8)
    assert first < second < N_WAVS and final_wavs_are_whole(out) >= second

    proc = subprocess.run(format_cmd(in_dir, out), capture_output=True, text=True,
                          env=dict(os.environ, **ENV))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = (out / "format_report.txt").read_text()
    assert f"kept from an earlier run: {second}" in report, report
    assert f"written: {N_WAVS - second}" in report, report
    assert final_wavs_are_whole(out) == N_WAVS
    assert not list((out / "data").glob("*.tmp*"))  # no temporary file left behind
    got, want = outputs(out), outputs(ref)
    assert sorted(got) == sorted(want)
    assert [k for k in want if got[k] != want[k]] == []
    for name in ("wav.scp", "utt2num_samples"):
        assert len(got[name].splitlines()) == N_WAVS


# --------------------------------------------------------------------------- decoding (stage 7)

N_TEST = 16
DECODE_ARGS = "--batch_size 1 --beam_size 2 --max_new_tokens 40 --max_tokens_per_second 0"


def decode_argv(inference_tag, nj=2):
    return ["sllm.sh", "--stage", "7", "--stop_stage", "7", "--train_set", "test",
            "--valid_set", "test", "--test_sets", "test", "--dumpdir", "dump_d", "--expdir",
            "exp_d", "--train_config", "conf/tiny.yaml", "--tag", "dec", "--inference_nj",
            str(nj), "--inference_tag", inference_tag, "--inference_args", DECODE_ARGS]


def run_env():
    env = dict(os.environ, **ENV)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2]) + os.pathsep + \
        env.get("PYTHONPATH", "")
    return env


def test_killed_stage7_resumes_to_the_merged_output_of_an_uninterrupted_run(
        tmp_path, tiny_llm_dirs):
    import torch

    from espnet_sllm.tasks.sllm import SLLMTask

    recipe = copy_recipe("egs2/mini_mlc/asr1", tmp_path)
    write_set(recipe, "test", N_TEST, 2)  # 16 kHz mono tones: a stage-2 output as it is
    dump = recipe / "dump_d" / "raw" / "test"
    shutil.copytree(recipe / "data" / "test", dump)
    bad = "spk1-test005"
    wav_scp = (dump / "wav.scp").read_text()
    corrupt = recipe / "downloads" / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00 not audio")
    (dump / "wav.scp").write_text("".join(
        f"{bad} {corrupt}\n" if line.startswith(bad + " ") else line + "\n"
        for line in wav_scp.splitlines()))
    cfg = tiny_sllm_config(tiny_llm_dirs["qwen2"], "conformer")
    (recipe / "conf" / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    args = config_to_args(cfg)
    exp = recipe / "exp_d" / "sllm_dec"
    exp.mkdir(parents=True)
    (exp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.manual_seed(0)
    torch.save(SLLMTask.build_model(args).state_dict(), exp / "valid.acc.best.pth")

    # the reference: one job, never interrupted (batch size 1: the split does not matter)
    out_ref = run_ok(recipe, decode_argv("ref", nj=1))
    assert "1 utterances of dump_d/raw/test could not be read" in out_ref, out_ref[-3000:]
    ref = exp / "ref" / "test"
    assert (ref / "failed").read_text().startswith(f"{bad} ")

    # killed once both jobs have decoded a few utterances
    proc = subprocess.Popen(["bash", *decode_argv("killed")], cwd=recipe, env=run_env(),
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    logdir = exp / "killed" / "test" / "logdir"

    def done_per_job():
        counts = []
        for j in (1, 2):
            p = logdir / f"output.{j}" / "1best_recog" / ".partial.jsonl"
            counts.append(max(p.read_text().count("\n") - 1, 0) if p.exists() else 0)
        return counts

    try:
        deadline = time.time() + 120
        while sum(done_per_job()) < 4:
            assert proc.poll() is None, "stage 7 ended before it could be killed"
            assert time.time() < deadline, "stage 7 decoded nothing"
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = done_per_job()
    assert sum(done) < N_TEST - 1, done  # (the unreadable utterance is never in a partial file)
    assert not (exp / "killed" / "test" / "text").exists()
    assert not (exp / "killed" / "test" / ".stamps" / "stage7").exists()

    run_ok(recipe, decode_argv("killed"))
    for j in (1, 2):
        log = (logdir / f"decode.{j}.log").read_text()
        if done[j - 1]:  # a job that had finished decodes nothing again
            assert f"{done[j - 1]} of {N_TEST // 2} utterances already decoded; decoding the " \
                   f"other {N_TEST // 2 - done[j - 1]}" in log, log[-3000:]
        else:
            assert "already decoded" not in log
    for name in ("text", "token", "token_int", "score", "failed"):
        assert (exp / "killed" / "test" / name).read_bytes() == (ref / name).read_bytes(), name
    text = dict(line.split(" ", 1) if " " in line else (line, "")
                for line in (ref / "text").read_text().splitlines())
    assert len(text) == N_TEST and text[bad] == ""
    assert "skipped" in run_ok(recipe, decode_argv("killed"))


# --------------------------------------------------------------------------- chained training

EXP = "exp_k"
DUMP = "dump_k"


def chain_argv(stage, stop, configs):
    return ["sllm.sh", "--stage", str(stage), "--stop_stage", str(stop), "--train_set", "train",
            "--valid_set", "valid", "--test_sets", "valid", "--dumpdir", DUMP, "--expdir", EXP,
            "--nj", "1", "--inference_nj", "1", "--train_config", " ".join(configs),
            "--tag", "kill"]


@pytest.fixture(scope="module")
def chain_recipe(tmp_path_factory):
    recipe = copy_recipe("egs2/mini_mlc/asr1", tmp_path_factory.mktemp("kill_chain"))
    for name, n, seed in (("train", 8, 0), ("valid", 4, 1)):
        write_set(recipe, name, n, seed)
    make_tiny_llm(str(recipe / "llm_tiny"), "qwen2")
    # the tiny chain of test_sllm_sh_chain (LoRA r=2 in every stage: no merge needed here)
    configs = [write_config(recipe, "c1", 2), write_config(recipe, "c2", 2, max_epoch=3),
               write_config(recipe, "c3", 2)]
    run_ok(recipe, chain_argv(2, 5, configs))
    return recipe, configs


def test_killed_chain_stage_resumes_and_keeps_the_earlier_stage(chain_recipe):
    recipe, configs = chain_recipe
    exp = recipe / EXP / "sllm_kill"
    stages = [exp / "stage1_c1", exp / "stage2_c2", exp / "stage3_c3"]
    args = chain_argv(6, 6, configs)
    kill_in_epoch_2(recipe, args, stages[1])  # asserts: checkpoint of epoch 1, not finished
    assert (stages[0] / ".stamps" / "stage6").is_file()
    assert not stages[2].exists()
    best1 = (stages[0] / "valid.acc.best.pth").resolve()
    mtime1 = best1.stat().st_mtime_ns
    chain1 = (stages[0] / "chain" / "model.pth").stat().st_mtime_ns

    out = run_ok(recipe, args)
    assert f"Stage 6: {configs[0]}: skipped" in out
    assert f"Stage 6: {stages[0].relative_to(recipe)}/chain: skipped (unchanged)" in out
    assert (f"{stages[1].relative_to(recipe)} was interrupted: resuming from "
            f"{stages[1].relative_to(recipe)}/checkpoint.pth") in out, out[-3000:]
    assert "moving it to" not in out
    log = (stages[1] / "train.log").read_text()
    assert "The training was resumed using" in log
    assert "2/3epoch started" in log and "1/3epoch started" not in log
    assert (stages[1] / "3epoch.pth").exists()
    assert f"Stage 6: {configs[2]}: skipped" not in out
    assert (stages[2] / ".stamps" / "stage6").is_file()
    assert (stages[2] / "valid.acc.best.pth").exists()
    # stage 1 untouched
    assert best1.stat().st_mtime_ns == mtime1
    assert (stages[0] / "chain" / "model.pth").stat().st_mtime_ns == chain1
    assert (exp / "final_exp").read_text().strip().endswith("stage3_c3")
