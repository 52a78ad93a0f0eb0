"""Recipe utilities: parse_options.sh, the job launcher, key splitting, output merging,
data formatting (stage 2) and filtering (stage 3)."""
import io
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from espnet_sllm.data import filtering as fdata
from espnet_sllm.data import formatting as fmt
from espnet_sllm.bin import merge_outputs, split_keys
from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir

REPO = Path(__file__).resolve().parents[2]
PARSE_OPTIONS = REPO / "egs2/TEMPLATE/sllm1/scripts/utils/parse_options.sh"
ENV = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def run_py(module, *args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd,
                          env=env or ENV, capture_output=True, text=True)


# --------------------------------------------------------------------------- parse_options.sh


@pytest.fixture
def driver(tmp_path):
    script = tmp_path / "driver.sh"
    script.write_text(textwrap.dedent(f"""\
        #!/usr/bin/env bash
        set -euo pipefail
        stage=1
        nj=4
        use_lora=false
        inference_args=""
        help_message="Usage: driver.sh [options] <dir>
          --stage   first stage"
        . {PARSE_OPTIONS}
        echo "stage=$stage nj=$nj use_lora=$use_lora args=[$inference_args] rest=[$*]"
        """))

    def run(*args):
        return subprocess.run(["bash", str(script), *args], capture_output=True, text=True,
                              cwd=tmp_path)

    return run


def test_parse_options_known_options_and_positionals(driver):
    r = driver("--stage", "3", "--inference-args", "--beam 4", "--nj=8", "data/x", "--nj", "1")
    assert r.returncode == 0, r.stderr
    # Options stop at the first positional argument; the rest is left in "$@".
    assert r.stdout.strip() == "stage=3 nj=8 use_lora=false args=[--beam 4] rest=[data/x --nj 1]"


def test_parse_options_unknown_option(driver):
    r = driver("--stage", "2", "--no_such_thing", "1")
    assert r.returncode == 1
    assert "unknown option '--no_such_thing'" in r.stderr
    assert r.stdout == ""


def test_parse_options_help(driver):
    for flag in ("--help", "-h"):
        r = driver("--stage", "2", flag)
        assert r.returncode == 0
        assert r.stdout.startswith("Usage: driver.sh [options] <dir>")


def test_parse_options_booleans(driver):
    assert "use_lora=true" in driver("--use_lora", "true").stdout
    r = driver("--use-lora", "yes")
    assert r.returncode == 1 and "true or false" in r.stderr
    r = driver("--stage")
    assert r.returncode == 1 and "needs a value" in r.stderr


def test_parse_options_config(driver, tmp_path):
    (tmp_path / "a.conf").write_text("# comment\nnj=9\nstage=5\n\ninference_args='--beam 2'\n")
    # The config is read first, so the command line wins whatever the order.
    r = driver("--nj", "2", "--config", "a.conf", "pos")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "stage=5 nj=2 use_lora=false args=[--beam 2] rest=[pos]"
    (tmp_path / "bad.conf").write_text("typo_option=1\n")
    r = driver("--config", "bad.conf")
    assert r.returncode == 1 and "bad.conf:1" in r.stderr and "typo_option" in r.stderr
    r = driver("--config", "missing.conf")
    assert r.returncode == 1 and "missing.conf" in r.stderr


# --------------------------------------------------------------------------- launch


def launch(*args, cwd, env=None):
    return run_py("espnet_sllm.bin.launch", *args, cwd=cwd, env=env)


def test_launch_local_jobs_and_logs(tmp_path):
    r = launch("JOB=1:3", "log/t.JOB.log", "echo", "job", "JOB", "a  b", "|", "tr", "a-z",
               "A-Z", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for j in (1, 2, 3):
        log = (tmp_path / f"log/t.{j}.log").read_text()
        lines = log.splitlines()
        assert lines[0] == f"# echo job {j} 'a  b' | tr a-z A-Z"
        assert f"JOB {j} A  B" in lines  # the quoted argument kept its two spaces
        assert lines[-1].startswith("# Ended (code 0)") and "elapsed time" in lines[-1]


def test_launch_failing_job(tmp_path):
    r = launch("--max-jobs-run", "2", "JOB=1:3", "log/f.JOB.log", "test", "JOB", "-ne", "2",
               cwd=tmp_path)
    assert r.returncode == 1
    assert "1 / 3 job(s) failed" in r.stderr and "log/f.2.log" in r.stderr
    assert "log/f.1.log" not in r.stderr.split("failed")[1].split("\n")[0]
    assert "# Ended (code 1)" in (tmp_path / "log/f.2.log").read_text()
    # A single job without a range; nothing is substituted.
    r = launch("log/one.log", "echo", "JOB", cwd=tmp_path)
    assert r.returncode == 0 and "\nJOB\n" in (tmp_path / "log/one.log").read_text()
    r = launch("JOB=1:2", "log/same.log", "true", cwd=tmp_path)
    assert r.returncode == 1 and "share one log file" in r.stderr
    r = launch("--bogus", "1", "log/x.log", "true", cwd=tmp_path)
    assert r.returncode == 1 and "unknown option '--bogus'" in r.stderr


def test_launch_max_jobs_run(tmp_path):
    # Each job counts the jobs running at its start: never more than the limit.
    job = "mkdir -p run ; touch run/JOB ; ls run | wc -l >> counts ; sleep 0.15 ; rm run/JOB"
    args = job.split()  # in a shell: `launch ... mkdir -p run \; touch run/JOB \; ...`
    r = launch("--max_jobs_run", "2", "JOB=1:5", "log/m.JOB.log", *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    counts = [int(x) for x in (tmp_path / "counts").read_text().split()]
    assert len(counts) == 5 and max(counts) <= 2


def fake_sbatch(tmp_path):
    """A stand-in for sbatch on PATH: records its arguments in $SBATCH_RECORD and runs the
    array tasks one after another (with SLURM_ARRAY_TASK_ID), each into its ``-o`` log; a job
    without ``--array`` runs once."""
    fake = tmp_path / "bin/sbatch"
    fake.parent.mkdir()
    fake.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import os, re, subprocess, sys
        args = sys.argv[1:]
        open(os.environ["SBATCH_RECORD"], "w").write(" ".join(args))
        out = args[args.index("-o") + 1]
        arr = [a for a in args if a.startswith("--array=")]
        lo, hi = map(int, re.match(r"--array=(\\d+)-(\\d+)", arr[0]).groups()) if arr else (1, 1)
        rc = 0
        for t in range(lo, hi + 1):
            env = dict(os.environ, SLURM_ARRAY_TASK_ID=str(t))
            with open(out.replace("%a", str(t)), "w") as f:
                rc |= subprocess.call(["bash", args[-1]], stdout=f, stderr=subprocess.STDOUT,
                                      env=env)
        sys.exit(1 if rc else 0)
        """))
    fake.chmod(0o755)
    return dict(ENV, PATH=f"{fake.parent}{os.pathsep}{ENV['PATH']}",
                SBATCH_RECORD=str(tmp_path / "record"))


def test_launch_slurm(tmp_path):
    env = fake_sbatch(tmp_path)
    r = launch("--backend", "slurm", "--gpu", "1", "--mem", "4G", "--time", "1:00:00",
               "--slurm_opts", "--partition=gpu --account=me", "--max_jobs_run", "2",
               "JOB=1:3", "log/s.JOB.log", "echo", "x JOB", ";", "test", "JOB", "-ne", "3",
               cwd=tmp_path, env=env)
    assert r.returncode == 1 and "log/s.3.log" in r.stderr and "log/s.1.log" not in r.stderr
    record = (tmp_path / "record").read_text()
    for opt in ("--wait", "--array=1-3%2", "-o log/s.%a.log", "--gres=gpu:1", "--mem=4G",
                "--time=1:00:00", "--partition=gpu --account=me"):
        assert opt in record
    log = (tmp_path / "log/s.2.log").read_text()
    assert "\nx 2\n" in log and "# Ended (code 0)" in log  # JOB replaced inside quotes too

    no_sbatch = dict(ENV, PATH=os.path.dirname(shutil.which("bash")))
    if shutil.which("sbatch", path=no_sbatch["PATH"]):
        pytest.skip("a real sbatch is installed")
    r = launch("--backend", "slurm", "JOB=1:2", "log/n.JOB.log", "true", cwd=tmp_path,
               env=no_sbatch)
    assert r.returncode == 1 and "sbatch" in r.stderr and "--backend local" in r.stderr


def test_cmd_sh_slurm_backend(tmp_path):
    # The recipe's own cmd.sh with cmd_backend=slurm: array job, --wait, one log per job
    env = dict(fake_sbatch(tmp_path), cmd_backend="slurm")
    cmd_sh = REPO / "egs2/TEMPLATE/sllm1/cmd.sh"
    script = (f". {cmd_sh}\n"
              "${decode_cmd} JOB=1:3 exp/log/dec.JOB.log echo decoded part JOB\n"
              "${cuda_cmd} --gpu 2 exp/log/train.log echo trained\n")
    r = subprocess.run(["bash", "-euc", script], cwd=tmp_path, env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    for job in (1, 2, 3):
        assert f"decoded part {job}\n" in (tmp_path / f"exp/log/dec.{job}.log").read_text()
    assert "trained" in (tmp_path / "exp/log/train.log").read_text()
    record = (tmp_path / "record").read_text()  # the last submission: the training job
    for opt in ("--wait", "--gres=gpu:2", "--mem=64G", "--time=3-00:00:00", "--partition=gpu"):
        assert opt in record, (opt, record)


# --------------------------------------------------------------------------- split / merge


def test_split_keys(tmp_path):
    scp = tmp_path / "wav.scp"
    keys = [f"utt{i:02d}" for i in range(10)]
    scp.write_text("".join(f"{k} /a/{k}.wav\n" for k in keys))
    out = tmp_path / "split"
    assert split_keys.main([str(scp), str(out), "4"]) == 0
    parts = [read_kv(out / f"keys.{i}.scp") for i in range(1, 5)]
    assert [len(p) for p in parts] == [3, 3, 2, 2]
    assert [k for p in parts for k in p] == keys  # contiguous, each key once, order kept
    assert parts[0]["utt00"] == "/a/utt00.wav"
    # A smaller split removes the parts of the larger one.
    assert split_keys.main([str(scp), str(out), "2"]) == 0
    assert sorted(os.listdir(out)) == ["keys.1.scp", "keys.2.scp"]
    with pytest.raises(ValueError, match="lower nj to at most 10"):
        split_keys.split_keys(str(scp), str(out), 11)


def _write_output(root, job, rows):
    d = root / f"output.{job}" / "1best_recog"
    d.mkdir(parents=True)
    for name in ("text", "token", "token_int", "score"):
        with open(d / name, "w") as f:
            for key, text in rows:
                value = {"text": text, "token": " ".join(text), "token_int": "1 2",
                         "score": "-1.5"}[name]
                f.write(f"{key} {value}".rstrip() + "\n")


def test_merge_outputs_round_trip(tmp_path):
    scp = tmp_path / "wav.scp"
    keys = [f"utt{i}" for i in range(7)]
    scp.write_text("".join(f"{k} x\n" for k in keys))
    split_keys.split_keys(str(scp), str(tmp_path / "split"), 3)
    dec = tmp_path / "decode"
    for j in (1, 2, 3):
        part = list(read_kv(tmp_path / f"split/keys.{j}.scp"))
        _write_output(dec, j, [(k, "" if k == "utt3" else f"hyp of {k}") for k in reversed(part)])
    assert merge_outputs.main([str(dec), "--nj", "3", "--key_file", str(scp)]) == 0
    text = read_kv(dec / "text")
    assert list(text) == keys and text["utt3"] == "" and text["utt0"] == "hyp of utt0"
    for name in ("token", "token_int", "score"):
        assert list(read_kv(dec / name)) == keys


def test_merge_outputs_errors(tmp_path):
    dec = tmp_path / "decode"
    _write_output(dec, 1, [("a", "x"), ("b", "y")])
    _write_output(dec, 3, [("c", "z")])
    with pytest.raises(ValueError, match=r"output\.2: missing"):
        merge_outputs.merge_outputs(str(dec))
    _write_output(dec, 2, [("b", "again")])
    with pytest.raises(ValueError, match=r"output\.2/1best_recog/text: duplicate key 'b'"):
        merge_outputs.merge_outputs(str(dec))
    with pytest.raises(ValueError, match=r"output\.4: missing"):
        merge_outputs.merge_outputs(str(dec), nj=4)
    shutil.rmtree(dec / "output.2")
    _write_output(dec, 2, [("d", "w")])
    keys = tmp_path / "keys"
    keys.write_text("a\nb\nc\nd\ne\n")
    with pytest.raises(ValueError, match="1 keys of .* not decoded .*'e'"):
        merge_outputs.merge_outputs(str(dec), key_file=str(keys))
    assert merge_outputs.main([str(dec)]) == 0


# --------------------------------------------------------------------------- format / filter


LEVELS = (0.1, 0.4, 0.2)  # amplitude of each second of the 8 kHz stereo recording


@pytest.fixture
def data_dir(tmp_path):
    """A data dir with segments: an 8 kHz stereo wav, a sox pipe, a 22.05 kHz wav."""
    src = tmp_path / "src"
    src.mkdir()
    t = np.arange(8000) / 8000
    left = np.concatenate([a * np.sin(2 * np.pi * 440 * t) for a in LEVELS])
    # Right channel silent: the channel mean halves the level.
    sf.write(src / "rec1.wav", np.stack([left, np.zeros_like(left)], 1), 8000, subtype="PCM_16")
    sf.write(src / "b.flac", 0.3 * np.sin(2 * np.pi * 300 * np.arange(20000) / 16000), 16000)
    sf.write(src / "c.wav", 0.5 * np.ones(11025), 22050, subtype="PCM_16")
    d = tmp_path / "data"
    d.mkdir()
    (d / "wav.scp").write_text(
        f"rec1 {src}/rec1.wav\n"
        f"recb sox {src}/b.flac -t wav - |\n"
        f"recc {src}/c.wav\n"
    )
    segs = {
        "spkA-u1": "rec1 0.00 1.00",
        "spkA-u2": "rec1 1.00 2.00",
        "spkA-u3": "rec1 2.50 3.20",  # 0.2 s past the end: cut short
        "spkA-u4": "rec1 2.90 4.00",  # 1 s past the end: dropped
        "spkB-u1": "recb 0.0 1.25",
        "spkC-u1": "recc 0.1 0.4",
    }
    (d / "segments").write_text("".join(f"{u} {s}\n" for u, s in segs.items()))
    (d / "text").write_text("".join(f"{u} text of {u}\n" for u in segs))
    (d / "utt2lang").write_text("".join(f"{u} English\n" for u in segs))
    (d / "text_prev").write_text("".join(f"{u} prev\n" for u in segs))
    (d / "utt2spk").write_text("".join(f"{u} {u[:4]}\n" for u in segs))
    (d / "spk2utt").write_text(
        "spkA spkA-u1 spkA-u2 spkA-u3 spkA-u4\nspkB spkB-u1\nspkC spkC-u1\n")
    return d


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x))))


def test_format_data(data_dir, tmp_path):
    out = tmp_path / "dump"
    counts = fmt.format_data(str(data_dir), str(out), nj=2, progress=False)
    assert {k: counts[k] for k in ("utterances", "written", "kept", "dropped", "text_only")} == \
        {"utterances": 6, "written": 5, "kept": 0, "dropped": 1, "text_only": 0}
    # rec1 (8 kHz stereo: u1, u2, u3) and recc (22.05 kHz) resampled; u3 cut short
    assert counts["resampled"] == {8000: 3, 22050: 1} and counts["multichannel"] == 3
    assert counts["clipped"] == 1 and counts["dropped_for"]["segment_beyond_audio"] == 1
    validate_data_dir(out)
    expected = {"spkA-u1": 16000, "spkA-u2": 16000, "spkA-u3": 8000, "spkB-u1": 20000,
                "spkC-u1": 4800}
    assert read_kv(out / "utt2num_samples") == {k: str(v) for k, v in expected.items()}
    wav_scp = read_kv(out / "wav.scp")
    assert list(wav_scp) == sorted(expected)
    for utt, n in expected.items():
        assert wav_scp[utt] == str(out / "data" / f"{utt}.flac")  # --audio_format flac
        info = sf.info(wav_scp[utt])
        assert (info.format, info.samplerate, info.channels, info.subtype, info.frames) == \
            ("FLAC", 16000, 1, "PCM_16", n)
    assert not (out / "segments").exists()
    assert list(read_kv(out / "text_prev")) == sorted(expected)
    assert read_kv(out / "utt2lang")["spkA-u1"] == "English"
    report = (out / "format_report.txt").read_text()
    assert "dropped: 1" in report and "dropped for segment_beyond_audio: 1" in report
    assert "dropped spkA-u4: segment_beyond_audio (segment ends at 4.00s" in report
    assert "resampled to 16000 Hz: 4 (from 8000 Hz: 3, from 22050 Hz: 1)" in report
    # Cut at the right place, channels averaged: level of second k is LEVELS[k] / 2.
    for utt, level in (("spkA-u1", LEVELS[0]), ("spkA-u2", LEVELS[1])):
        x, _ = sf.read(wav_scp[utt])
        assert _rms(x[800:-800]) == pytest.approx(level / 2 / np.sqrt(2), rel=0.02)
    x, _ = sf.read(wav_scp["spkC-u1"])
    assert np.median(x) == pytest.approx(0.5, abs=1e-3)

    # Re-run through the CLI: nothing is read or rewritten.
    mtimes = {u: os.stat(p).st_mtime_ns for u, p in wav_scp.items()}
    r = run_py("espnet_sllm.bin.format_data", "--in", data_dir, "--out", out, "--nj", "2")
    assert r.returncode == 0, r.stderr
    assert "0 written, 5 kept" in r.stdout
    assert {u: os.stat(p).st_mtime_ns for u, p in wav_scp.items()} == mtimes
    # A changed segment rewrites that utterance only.
    seg = (data_dir / "segments").read_text().replace("spkA-u1 rec1 0.00 1.00",
                                                       "spkA-u1 rec1 0.00 0.50")
    (data_dir / "segments").write_text(seg)
    counts = fmt.format_data(str(data_dir), str(out), nj=1, progress=False)
    assert counts["written"] == 1 and counts["kept"] == 4
    assert read_kv(out / "utt2num_samples")["spkA-u1"] == "8000"
    assert os.stat(wav_scp["spkA-u2"]).st_mtime_ns == mtimes["spkA-u2"]


def test_format_data_errors(data_dir, tmp_path):
    scp = (data_dir / "wav.scp").read_text().replace(" -t wav - |", " -t wav - ; false |")
    (data_dir / "wav.scp").write_text(scp)
    with pytest.raises(fmt.FormatError, match=r"wav\.scp:2: command failed with exit code 1"):
        fmt.format_data(str(data_dir), str(tmp_path / "o1"), nj=1, progress=False)
    # A missing file is not an error: its utterances are dropped and counted (issue #17 §1)
    scp = (data_dir / "wav.scp").read_text()
    (data_dir / "wav.scp").write_text(
        scp.replace("rec1 /", "rec1 /nonexistent/").replace(" ; false |", " |"))
    r = run_py("espnet_sllm.bin.format_data", "--in", data_dir, "--out", tmp_path / "o2")
    assert r.returncode == 0, r.stderr
    assert "4 dropped (missing_audio: 4)" in r.stdout
    assert "wav.scp:1: audio file not found: /nonexistent/" in r.stderr


def test_wav_stream_with_unknown_length():
    # What a program writing to a pipe may produce: RIFF and data sizes left at 0.
    x = (np.arange(-500, 500) / 1000).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, np.stack([x, -x], 1), 8000, subtype="PCM_16", format="WAV")
    data = bytearray(buf.getvalue())
    data[4:8] = bytes(4)
    data[data.index(b"data") + 4:data.index(b"data") + 8] = bytes(4)
    y, rate = fmt._decode_bytes(bytes(data), "wav.scp:1")
    assert rate == 8000 and y.shape == (1000, 2)
    assert np.allclose(y[:, 0], x, atol=1e-4) and np.allclose(y[:, 1], -x, atol=1e-4)


def test_filter_data(data_dir, tmp_path):
    dump = tmp_path / "dump"
    text = (data_dir / "text").read_text()
    text = text.replace("spkA-u2 text of spkA-u2", "spkA-u2   ").replace("text of spkA-u3", "u3")
    (data_dir / "text").write_text(text)
    fmt.format_data(str(data_dir), str(dump), nj=1, progress=False)
    # Durations: u1 1.0 s, u2 1.0 s (empty text), u3 0.5 s, B 1.25 s, C 0.3 s.
    out = tmp_path / "filtered"
    r = run_py("espnet_sllm.bin.filter_data", "--in", dump, "--out", out, "--min_sec", "0.4",
               "--max_sec", "1.2", "--max_text_chars", "14")
    assert r.returncode == 0, r.stderr
    assert "kept 1 of 5" in r.stdout
    report = (out / "filter_report.txt").read_text()
    for line in ("dropped for empty text: 1", "dropped for too short: 1",
                 "dropped for too long: 1", "dropped for text too long: 1",
                 "dropped spkC-u1: too short (0.300s < 0.4s)"):
        assert line in report
    assert validate_data_dir(out)["utterances"] == 1
    assert list(read_kv(out / "utt2num_samples")) == ["spkA-u3"]
    assert list(read_kv(out / "text_prev")) == ["spkA-u3"]

    with pytest.raises(fdata.FilterError, match="all 5 utterances would be dropped"):
        fdata.filter_data(str(dump), str(tmp_path / "none"), min_sec=5, max_sec=10)
    with pytest.raises(fdata.FilterError, match="is at 16000 Hz but --fs is 8000"):
        fdata.filter_data(str(dump), str(tmp_path / "fs"), fs=8000)
    r = run_py("espnet_sllm.bin.filter_data", "--in", data_dir, "--out", tmp_path / "x")
    assert r.returncode == 1 and "utt2num_samples: missing" in r.stderr


def test_format_and_filter_text_only_utterances(tmp_path):
    """An empty wav.scp entry (a text-only utterance): stage 2 writes a WAV of 0 samples and
    utt2num_samples 0, counted; stage 3 keeps it whatever --min_sec, and counts it."""
    src = tmp_path / "a.wav"
    sf.write(src, 0.1 * np.ones(8000), 16000, subtype="PCM_16")
    d = tmp_path / "data"
    d.mkdir()
    (d / "wav.scp").write_text(f"s-a {src}\ns-q\ns-r \n")
    (d / "text").write_text("s-a hello\ns-q an answer\ns-r\n")
    (d / "utt2task").write_text("s-a asr\ns-q qa\ns-r qa\n")
    (d / "utt2spk").write_text("s-a s\ns-q s\ns-r s\n")
    (d / "spk2utt").write_text("s s-a s-q s-r\n")
    dump = tmp_path / "dump"
    r = run_py("espnet_sllm.bin.format_data", "--in", d, "--out", dump, "--nj", "1")
    assert r.returncode == 0, r.stderr
    assert "3 written, 0 kept from an earlier run, 0 dropped, 2 text-only" in r.stdout
    assert "2 text-only utterances (empty wav.scp entry)" in r.stderr
    assert read_kv(dump / "utt2num_samples") == {"s-a": "8000", "s-q": "0", "s-r": "0"}
    for utt in ("s-q", "s-r"):
        info = sf.info(read_kv(dump / "wav.scp")[utt])
        # WAV whatever --audio_format: libsndfile cannot read back a FLAC of 0 samples
        assert (info.format, info.samplerate, info.channels, info.subtype, info.frames) == \
            ("WAV", 16000, 1, "PCM_16", 0)
        x = _espnet_sound(dump / "wav.scp", utt)
        assert x.shape == (0,) and x.dtype == np.float32
    # one file for all text-only utterances (the first's), the audio one referenced
    assert read_kv(dump / "wav.scp") == {"s-a": str(src), "s-q": str(dump / "data" / "s-q.wav"),
                                         "s-r": str(dump / "data" / "s-q.wav")}
    assert "text-only (empty wav.scp entry, 0 samples): 2" in \
        (dump / "format_report.txt").read_text()
    # A re-run keeps the 0-sample WAVs
    counts = fmt.format_data(str(d), str(dump), nj=1, progress=False)
    assert (counts["written"], counts["kept"], counts["text_only"]) == (0, 3, 2)

    out = tmp_path / "filtered"
    fdata.filter_data(str(dump), str(out), min_sec=0.4, max_sec=30)
    report = (out / "filter_report.txt").read_text()
    # s-r has an empty text: dropped for it, not kept as text-only; s-q is not "too short"
    assert read_kv(out / "utt2num_samples") == {"s-a": "8000", "s-q": "0"}
    for line in ("kept text-only (0 samples, no duration limits): 1",
                 "dropped for empty text: 1", "dropped for too short: 0"):
        assert line in report
    assert read_kv(out / "utt2task") == {"s-a": "asr", "s-q": "qa"}
    # --fs is checked on an utterance with audio, not on a 0-sample WAV
    with pytest.raises(fdata.FilterError, match="a.wav is at 16000 Hz but --fs is 8000"):
        fdata.filter_data(str(dump), str(tmp_path / "fs"), fs=8000)

    # A segments line pointing to an empty entry is an error naming it
    (d / "segments").write_text("s-a s-a 0.0 0.5\ns-q s-q 0.0 1.0\ns-r s-r 0.0 1.0\n")
    r = run_py("espnet_sllm.bin.format_data", "--in", d, "--out", tmp_path / "bad")
    assert r.returncode == 1 and "segments:2: s-q: recording 's-q' has an empty" in r.stderr


# --------------------------------------------------------------------------- stage 2 audio format
# Issue #16 §2: FLAC by default (lossless 16-bit), whole 16-bit mono sources at --fs referenced,
# identical utterances (balancing copies) sharing one file, text-only utterances one 0-sample WAV.


def _noise(n, seed, channels=1):
    """(n,) or (n, channels) int16 noise at about -20 dBFS: incompressible enough that a lost
    or moved sample would show, and every bit of the 16 matters."""
    x = np.random.RandomState(seed).normal(0, 3000, (n, channels) if channels > 1 else n)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _write_dir(d, wav, extra=None):
    """A data dir: wav.scp from ``wav`` ({id: entry}), a text and one speaker ``s`` (ids start
    with ``s-``), ``extra`` ({file: text}) as they are."""
    d.mkdir(parents=True)
    (d / "wav.scp").write_text("".join(f"{k} {v}\n" for k, v in sorted(wav.items())))
    for name, text in (extra or {}).items():
        (d / name).write_text(text)
    utts = sorted(wav) if "segments" not in (extra or {}) else \
        sorted(line.split()[0] for line in extra["segments"].splitlines())
    (d / "text").write_text("".join(f"{u} words of {u}\n" for u in utts))
    (d / "utt2spk").write_text("".join(f"{u} s\n" for u in utts))
    (d / "spk2utt").write_text("s " + " ".join(utts) + "\n")
    return d


def _espnet_sound(wav_scp, key):
    """What ESPnet's ``sound`` data type gives training, collect_stats and decoding."""
    from espnet2.train.dataset import sound_loader

    return sound_loader(str(wav_scp), float_dtype="float32")[key]


def test_flac_cut_segments_keep_the_samples_and_espnet_reads_them(tmp_path):
    """A cut of a 16-bit 16 kHz mono recording: the FLAC holds exactly the source's int16
    samples [round(start * fs), round(end * fs)), and ESPnet's sound reader gives them as
    int / 32768, as it would from the WAV of --audio_format wav."""
    rec = _noise(48000, 0)
    sf.write(tmp_path / "rec.wav", rec, 16000, subtype="PCM_16")
    segs = {"s-1": (0.0, 1.0), "s-2": (1.2345, 2.5), "s-3": (2.5, 3.0)}
    d = _write_dir(tmp_path / "data", {"rec": tmp_path / "rec.wav"}, {
        "segments": "".join(f"{u} rec {a} {b}\n" for u, (a, b) in segs.items())})
    out = {}
    for audio_format in ("flac", "wav"):
        out[audio_format] = tmp_path / audio_format
        counts = fmt.format_data(str(d), str(out[audio_format]), nj=1, progress=False,
                                 audio_format=audio_format)
        assert (counts["written"], counts["referenced"], counts["shared"]) == (3, 0, 0)
    wav_scp = read_kv(out["flac"] / "wav.scp")
    num = read_kv(out["flac"] / "utt2num_samples")
    for utt, (a, b) in segs.items():
        want = rec[int(round(a * 16000)):int(round(b * 16000))]
        assert wav_scp[utt] == str(out["flac"] / "data" / f"{utt}.flac")
        info = sf.info(wav_scp[utt])
        assert (info.format, info.subtype, info.samplerate, info.channels) == \
            ("FLAC", "PCM_16", 16000, 1)
        got, rate = sf.read(wav_scp[utt], dtype="int16")
        assert rate == 16000 and np.array_equal(got, want) and int(num[utt]) == len(want)
        x = _espnet_sound(out["flac"] / "wav.scp", utt)
        assert x.dtype == np.float32 and np.array_equal(x, want / np.float32(32768))
        assert np.array_equal(x, _espnet_sound(out["wav"] / "wav.scp", utt))
    # FLAC is lossless, not free: well under the WAV's bytes even for noise at -20 dBFS
    flac, wav = fmt.bytes_per_hour(str(out["flac"])), fmt.bytes_per_hour(str(out["wav"]))
    hours = sum(int(n) for n in num.values()) / 16000 / 3600
    assert flac["hours"] == wav["hours"] == pytest.approx(hours, rel=1e-12)
    assert wav["bytes"] == 3 * 44 + 2 * sum(int(n) for n in num.values())
    assert flac["bytes"] < 0.9 * wav["bytes"]
    assert flac["inside_files"] == 3 and flac["outside_files"] == 0


def test_whole_16k_mono_16bit_files_are_referenced_not_copied(tmp_path, monkeypatch):
    """WAV or FLAC, 16-bit, mono, at --fs, without segments: wav.scp names the source (absolute
    path), nothing is written; anything else is written as FLAC (resampled, mixed down,
    converted to 16 bits). A referenced source that changes is checked again; a broken one is
    dropped as its copy would be."""
    src = tmp_path / "src"
    src.mkdir()
    audio = {"s-a": _noise(16000, 1), "s-b": _noise(12000, 2)}
    sf.write(src / "a.wav", audio["s-a"], 16000, subtype="PCM_16")
    sf.write(src / "b.flac", audio["s-b"], 16000, subtype="PCM_16")
    sf.write(src / "c.wav", _noise(16000, 3) / 32768, 16000, subtype="FLOAT")  # not 16-bit
    sf.write(src / "d.wav", _noise(16000, 4, channels=2), 16000, subtype="PCM_16")  # stereo
    sf.write(src / "e.wav", _noise(8000, 5), 8000, subtype="PCM_16")  # 8 kHz
    sf.write(src / "f.flac", _noise(16000, 6), 16000, subtype="PCM_24")  # 24-bit
    good = (src / "a.wav").read_bytes()
    monkeypatch.chdir(tmp_path)
    d = _write_dir(tmp_path / "data", {"s-a": "src/a.wav", "s-b": src / "b.flac",  # a: relative
                                       "s-c": src / "c.wav", "s-d": src / "d.wav",
                                       "s-e": src / "e.wav", "s-f": src / "f.flac"})
    dump = tmp_path / "dump"
    r = run_py("espnet_sllm.bin.format_data", "--in", d, "--out", dump, "--nj", "2",
               cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "6 written, 0 kept from an earlier run, 0 dropped" in r.stdout
    assert "1 resampled, 1 multi-channel, 2 referenced (not copied), 0 shared" in r.stdout
    wav_scp = read_kv(dump / "wav.scp")
    assert wav_scp["s-a"] == str(src / "a.wav") and wav_scp["s-b"] == str(src / "b.flac")
    assert sorted(p.name for p in (dump / "data").iterdir()) == \
        [".format_state.jsonl", "s-c.flac", "s-d.flac", "s-e.flac", "s-f.flac"]
    for utt in ("s-c", "s-d", "s-e", "s-f"):
        info = sf.info(wav_scp[utt])
        assert (info.format, info.subtype, info.samplerate, info.channels, info.frames) == \
            ("FLAC", "PCM_16", 16000, 1, 16000)
    assert read_kv(dump / "utt2num_samples") == {"s-a": "16000", "s-b": "12000", "s-c": "16000",
                                                 "s-d": "16000", "s-e": "16000", "s-f": "16000"}
    for utt in ("s-a", "s-b"):
        assert np.array_equal(_espnet_sound(dump / "wav.scp", utt),
                              audio[utt] / np.float32(32768))
    report = (dump / "format_report.txt").read_text()
    assert "referenced, not copied (whole 16-bit mono WAV/FLAC files at 16000 Hz): 2" in report
    bph = fmt.bytes_per_hour(str(dump))
    assert (bph["files"], bph["inside_files"], bph["outside_files"]) == (6, 4, 2)
    assert bph["outside_bytes"] == os.path.getsize(src / "a.wav") + os.path.getsize(src / "b.flac")

    # Re-run: nothing read again; a referenced source that changed is checked again.
    counts = fmt.format_data(str(d), str(dump), nj=1, progress=False)
    assert (counts["written"], counts["kept"], counts["referenced"]) == (0, 6, 2)
    sf.write(src / "a.wav", audio["s-a"][:8000], 16000, subtype="PCM_16")
    counts = fmt.format_data(str(d), str(dump), nj=1, progress=False)
    assert (counts["written"], counts["kept"]) == (1, 5)
    assert read_kv(dump / "utt2num_samples")["s-a"] == "8000"
    # ... and dropped, not referenced, when it is broken: a WAV cut short, a FLAC that stops
    # decoding half-way (its header still gives every frame)
    (src / "a.wav").write_bytes(good[:len(good) // 2])
    flac = (src / "b.flac").read_bytes()
    (src / "b.flac").write_bytes(flac[:len(flac) // 2])
    counts = fmt.format_data(str(d), str(dump), nj=1, progress=False)
    assert counts["dropped_for"]["unreadable_audio"] == 2 and counts["referenced"] == 0
    report = (dump / "format_report.txt").read_text()
    assert f"dropped s-a: unreadable_audio ({d}/wav.scp:1: src/a.wav is truncated" in report
    assert f"dropped s-b: unreadable_audio ({d}/wav.scp:2: cannot read {src}/b.flac: " in report
    assert list(read_kv(dump / "wav.scp")) == ["s-c", "s-d", "s-e", "s-f"]
    # --channel 1 of a mono file stays the error it was (no reference)
    (src / "a.wav").write_bytes(good)
    with pytest.raises(fmt.FormatError, match=r"wav\.scp:1: --channel 1 but the audio has 1 "):
        fmt.format_data(str(d), str(tmp_path / "ch1"), nj=1, progress=False, channel="1")


def test_audio_format_wav_and_switching_formats(tmp_path):
    """--audio_format wav writes 16-bit WAVs as before; running again with flac rewrites them
    as FLAC with the same samples and removes the WAVs; a bad format is an error."""
    rec = _noise(8000 * 3, 7)
    sf.write(tmp_path / "rec.wav", rec, 8000, subtype="PCM_16")  # 8 kHz: written, not referenced
    d = _write_dir(tmp_path / "data", {"rec": tmp_path / "rec.wav"},
                   {"segments": "s-1 rec 0.0 1.0\ns-2 rec 1.0 2.5\n"})
    dump = tmp_path / "dump"
    r = run_py("espnet_sllm.bin.format_data", "--in", d, "--out", dump, "--audio_format", "wav")
    assert r.returncode == 0, r.stderr
    wav_scp = read_kv(dump / "wav.scp")
    assert wav_scp == {u: str(dump / "data" / f"{u}.wav") for u in ("s-1", "s-2")}
    samples = {}
    for utt, path in wav_scp.items():
        info = sf.info(path)
        assert (info.format, info.subtype, info.samplerate) == ("WAV", "PCM_16", 16000)
        samples[utt] = sf.read(path, dtype="int16")[0]
    assert "audio_format=wav)" in (dump / "format_report.txt").read_text()

    counts = fmt.format_data(str(d), str(dump), nj=1, progress=False)  # flac, the default
    assert (counts["written"], counts["kept"]) == (2, 0)
    wav_scp = read_kv(dump / "wav.scp")
    assert wav_scp == {u: str(dump / "data" / f"{u}.flac") for u in ("s-1", "s-2")}
    assert sorted(p.name for p in (dump / "data").glob("s-*")) == ["s-1.flac", "s-2.flac"]
    for utt, path in wav_scp.items():
        assert np.array_equal(sf.read(path, dtype="int16")[0], samples[utt])
    assert fmt.format_data(str(d), str(dump), nj=1, progress=False)["kept"] == 2

    r = run_py("espnet_sllm.bin.format_data", "--in", d, "--out", dump, "--audio_format", "mp3")
    assert r.returncode == 2 and "invalid choice: 'mp3'" in r.stderr
    with pytest.raises(fmt.FormatError, match="--audio_format must be one of flac, wav"):
        fmt.format_data(str(d), str(tmp_path / "x"), audio_format="ogg", progress=False)


def test_balancing_copies_share_one_file(tmp_path):
    """The <uttid>-rep<k> copies of espnet_sllm.data.balance (same recording, same segment) point
    at the file of their original: one file per distinct piece of audio, on every run."""
    from espnet_sllm.data.balance import balance_by_language
    from espnet_sllm.data.kaldi_dir import read_data_dir, write_data_dir

    sf.write(tmp_path / "rec.wav", _noise(8000 * 4, 8), 8000, subtype="PCM_16")
    segs = {"s-en1": "0.0 1.0", "s-en2": "1.0 2.0", "s-en3": "2.0 3.0", "s-fr1": "3.0 4.0"}
    d = _write_dir(tmp_path / "data", {"rec": tmp_path / "rec.wav"}, {
        "segments": "".join(f"{u} rec {t}\n" for u, t in segs.items()),
        "utt2lang": "".join(f"{u} {u[2:4]}\n" for u in segs)})
    utts, report = balance_by_language(read_data_dir(d), alpha=0.3, total=8)
    assert report["fr"]["target"] > 1  # fr is copied
    write_data_dir(tmp_path / "bal", utts)
    dump = tmp_path / "dump"
    counts = fmt.format_data(str(tmp_path / "bal"), str(dump), nj=2, progress=False)
    wav_scp = read_kv(dump / "wav.scp")
    copies = [u for u in wav_scp if "-rep" in u]
    assert copies and counts["shared"] == len(copies) and counts["written"] == len(wav_scp)
    for u in copies:
        assert wav_scp[u] == wav_scp[u.split("-rep")[0]]
    files = sorted(p.name for p in (dump / "data").glob("s-*"))
    assert files == sorted(f"{u}.flac" for u in wav_scp if "-rep" not in u)
    num = read_kv(dump / "utt2num_samples")
    assert all(num[u] == num[u.split("-rep")[0]] == "16000" for u in copies)
    assert fmt.bytes_per_hour(str(dump))["files"] == len(files)  # each file once
    counts = fmt.format_data(str(tmp_path / "bal"), str(dump), nj=1, progress=False)
    assert (counts["written"], counts["kept"], counts["shared"]) == (0, len(wav_scp),
                                                                     len(copies))


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_pipe_wav_stream_with_placeholder_sizes(tmp_path, subtype):
    """A pipe whose WAV header gives 0 for the RIFF and data sizes (a program that could not
    seek back) is decoded to its end, in any encoding libsndfile knows (kaldiio reads only
    8/16-bit PCM and refuses this header)."""
    x = _noise(4000, 9)
    buf = io.BytesIO()
    sf.write(buf, x / 32768, 16000, subtype=subtype, format="WAV")
    data = bytearray(buf.getvalue())
    data[4:8] = bytes(4)
    data[data.index(b"data") + 4:data.index(b"data") + 8] = bytes(4)
    (tmp_path / "stream.bin").write_bytes(bytes(data))
    d = _write_dir(tmp_path / "data", {"s-1": f"cat {tmp_path}/stream.bin |"})
    counts = fmt.format_data(str(d), str(tmp_path / "dump"), nj=1, progress=False)
    assert counts["written"] == 1 and counts["referenced"] == 0
    got = sf.read(read_kv(tmp_path / "dump" / "wav.scp")["s-1"], dtype="int16")[0]
    assert np.array_equal(got, x)  # 24-bit and float hold the 16-bit values exactly
    header = data.index(b"data")
    y, rate = fmt._decode_bytes(bytes(data[:header + 8]), "wav.scp:1")  # no samples
    assert rate == 16000 and y.shape == (0, 1)
    with pytest.raises(fmt.FormatError, match="wav.scp:1: WAV stream has no data chunk"):
        fmt._decode_bytes(bytes(data[:header]) + b"LIST\x04\x00\x00\x00abcd", "wav.scp:1")


def test_bytes_per_hour(tmp_path):
    """bytes / hours of the distinct files wav.scp names; errors name wav.scp:line."""
    sf.write(tmp_path / "a.wav", np.zeros(16000 * 36, np.int16), 16000, subtype="PCM_16")
    d = tmp_path / "dump"
    d.mkdir()
    (d / "wav.scp").write_text(f"s-1 {tmp_path}/a.wav\ns-2 {tmp_path}/a.wav\n")
    (d / "utt2num_samples").write_text("s-1 576000\ns-2 576000\n")
    got = fmt.bytes_per_hour(str(d))
    assert got["hours"] == pytest.approx(0.01) and got["files"] == 1
    assert got["bytes_per_hour"] == pytest.approx((44 + 2 * 576000) / 0.01)
    assert got["outside_bytes"] == got["bytes"] and got["inside_bytes"] == 0
    (d / "wav.scp").write_text(f"s-1 {tmp_path}/a.wav\ns-2 {tmp_path}/gone.wav\n")
    with pytest.raises(ValueError, match=r"dump/wav\.scp:2: s-2: not a file"):
        fmt.bytes_per_hour(str(d))


# --------------------------------------------------------------------------- split_options.sh

SPLIT_OPTIONS = REPO / "egs2/TEMPLATE/sllm1/scripts/utils/split_options.sh"


def _split(tmp_path, *argv, defaults='system=; debug=false'):
    script = tmp_path / "run.sh"
    script.write_text(textwrap.dedent(f"""\
        #!/usr/bin/env bash
        # Usage: run.sh [--system S] [--debug true|false] [sllm.sh options]
        set -euo pipefail
        own_options="system debug"
        {defaults}
        . {SPLIT_OPTIONS}
        echo "system=$system debug=$debug"
        printf '<%s>' "${{args[@]+"${{args[@]}}"}}"; echo
        """))
    return subprocess.run(["bash", str(script), *argv], capture_output=True, text=True)


def test_split_options_own_and_passed_through(tmp_path):
    r = _split(tmp_path, "--system", "s3", "--train_args", "--debug true", "--stage=4",
               "--inference-args", "--system", "--debug=true", "extra")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "system=s3 debug=true",
        "<--train_args><--debug true><--stage=4><--inference-args><--system><extra>"]
    r = _split(tmp_path, "--help")
    assert r.returncode == 0 and r.stdout.startswith("Usage: run.sh [--system S]")


def test_split_options_errors(tmp_path):
    r = _split(tmp_path, "--system")
    assert r.returncode == 1 and "--system needs a value" in r.stderr
    r = _split(tmp_path, "--debug", "true", defaults="system=")
    assert r.returncode == 1 and "no default for option --debug" in r.stderr


def test_format_and_filter_carry_task_and_translation_files(data_dir, tmp_path):
    """utt2task, utt2tgtlang, utt2subdialect, text_src, text_tgt reach dump/raw (stages 2-3),
    restricted to the kept utterances; utt2tgtlang is carried though no Utterance field holds it."""
    utts = list(read_kv(data_dir / "segments"))
    files = {"utt2task": "st", "utt2tgtlang": "German", "utt2subdialect": "north",
             "text_src": "src", "text_tgt": "tgt"}
    for name, value in files.items():
        (data_dir / name).write_text("".join(f"{u} {value} {u}\n" for u in utts))
    dump, out = tmp_path / "dump", tmp_path / "filtered"
    fmt.format_data(str(data_dir), str(dump), nj=1, progress=False)
    kept = list(read_kv(dump / "wav.scp"))
    assert "spkA-u4" not in kept and len(kept) == 5
    for name, value in files.items():
        assert read_kv(dump / name) == {u: f"{value} {u}" for u in kept}, name
    fdata.filter_data(str(dump), str(out), min_sec=0.4, max_sec=30)
    kept = list(read_kv(out / "wav.scp"))
    assert "spkC-u1" not in kept and len(kept) == 4
    for name, value in files.items():
        assert read_kv(out / name) == {u: f"{value} {u}" for u in kept}, name
    # A carried file that misses an utterance is an error naming the file and the utterance.
    (data_dir / "utt2tgtlang").write_text("spkA-u1 German\n")
    with pytest.raises(ValueError, match=r"utt2tgtlang: 5 of 6 utterances have no entry"):
        fmt.format_data(str(data_dir), str(tmp_path / "bad"), nj=1, progress=False)
    # The input lost the file: a re-run removes the stale copy.
    (data_dir / "utt2tgtlang").unlink()
    fmt.format_data(str(data_dir), str(dump), nj=1, progress=False)
    assert not (dump / "utt2tgtlang").exists()
