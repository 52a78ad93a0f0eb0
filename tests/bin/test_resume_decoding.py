"""sllm_inference resumes a killed job and survives unreadable utterances (issue #17 §2, and the
decoding row of its bad-input table).

* SIGKILL half-way through a decode: the re-run decodes only what the partial file lacks, and its
  text/token/token_int/score equal an uninterrupted run byte for byte; a finished job run again
  decodes nothing;
* a partial file of other decoding options is discarded, a line cut by the kill ignored;
* a corrupt WAV: listed in ``1best_recog/failed``, an empty hypothesis, the others decoded;
  merge_outputs merges ``failed``.

The model is the tiny untrained conformer + Qwen2 of the other tests (weights from the seed, no
checkpoint): what it says does not matter, only that every run says the same; its per-utterance
scores tell the utterances apart.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from espnet_sllm.bin import merge_outputs
from espnet_sllm.decoding.inference import (
    OUTPUT_FILES,
    PARTIAL_NAME,
    partial_header,
    read_partial,
)
from espnet_sllm.testing.configs import config_to_args, tiny_sllm_config

from .test_train_inference import data_args, write_data

N = 24
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_llm_dirs):
    """Tone data of N utterances, a config.yaml of the untrained tiny model, and the decoding
    command (batch size 1, long enough per utterance to be killed half-way)."""
    tmp = tmp_path_factory.mktemp("resume_decoding")
    data = write_data(str(tmp / "data"), N, 1)
    args = config_to_args(tiny_sllm_config(tiny_llm_dirs["qwen2"], "conformer"))
    (tmp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    cmd = ["espnet_sllm.bin.sllm_inference", "--train_config", str(tmp / "config.yaml"),
           "--batch_size", "1", "--beam_size", "2", "--max_new_tokens", "40",
           "--max_tokens_per_second", "0", *data_args("", data, with_text=False)]
    return tmp, data, cmd


def decode(tmp, cmd, out, *extra):
    proc = subprocess.run([sys.executable, "-m", *cmd, "--output_dir", str(out), *extra],
                          cwd=tmp, capture_output=True, text=True, env=dict(os.environ, **ENV))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


def read_files(out):
    d = out / "1best_recog"
    return {name: (d / name).read_bytes() for name in OUTPUT_FILES}


def partial_keys(path):
    """Keys of the complete result lines of a partial file."""
    keys = []
    if path.exists():
        for line in path.read_text().splitlines()[1:]:
            try:
                keys.append(json.loads(line)["key"])
            except ValueError:
                pass
    return keys


@pytest.fixture(scope="module")
def uninterrupted(setup):
    tmp, _, cmd = setup
    decode(tmp, cmd, tmp / "dec_ref")
    files = read_files(tmp / "dec_ref")
    assert len(files["text"].splitlines()) == N
    assert len(partial_keys(tmp / "dec_ref" / "1best_recog" / PARTIAL_NAME)) == N
    assert not (tmp / "dec_ref" / "1best_recog" / "failed").exists()
    return files


def test_killed_decode_resumes_and_equals_an_uninterrupted_run(setup, uninterrupted):
    tmp, _, cmd = setup
    out = tmp / "dec_killed"
    partial = out / "1best_recog" / PARTIAL_NAME
    proc = subprocess.Popen([sys.executable, "-m", *cmd, "--output_dir", str(out)], cwd=tmp,
                            env=dict(os.environ, **ENV), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while len(partial_keys(partial)) < 3:
            assert proc.poll() is None, "the decoding ended before it could be killed"
            assert time.time() < deadline, "no partial results"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    done = partial_keys(partial)
    assert 3 <= len(done) < N, len(done)
    assert not (out / "1best_recog" / "text").exists()  # nothing looks finished
    # merge_outputs refuses the job, saying it was interrupted
    os.makedirs(tmp / "merge_killed", exist_ok=True)
    os.symlink(out, tmp / "merge_killed" / "output.1")
    with pytest.raises(ValueError, match="interrupted"):
        merge_outputs.merge_outputs(str(tmp / "merge_killed"))
    # a kill in the middle of a write: a cut last line is ignored
    with open(partial, "a") as f:
        f.write('{"key": "u0')

    log = decode(tmp, cmd, out)
    assert f"{len(done)} of {N} utterances already decoded; decoding the other " \
           f"{N - len(done)}" in log, log[-3000:]
    assert f"({N - len(done)} in this run, {len(done)} from an earlier one, 0 unreadable)" in log
    assert read_files(out) == uninterrupted
    # finished: run again, it decodes nothing and writes the same files
    log = decode(tmp, cmd, out)
    assert f"{N} of {N} utterances already decoded; decoding the other 0" in log
    assert read_files(out) == uninterrupted


def test_partial_of_other_options_is_discarded(setup, uninterrupted, tmp_path):
    tmp, data, cmd = setup
    triples = [(f"{data}/wav.scp", "speech", "sound"), (f"{data}/utt2lang", "lang", "text")]
    header = partial_header(str(tmp / "config.yaml"), None, triples, {"beam_size": 2})
    path = tmp_path / PARTIAL_NAME
    row = {name: "x" for name in OUTPUT_FILES}
    path.write_text(json.dumps({"header": header}) + "\n" + json.dumps({"key": "u000", **row})
                    + "\n" + json.dumps({"key": "u001", **row}) + "\n" + '{"key": "u00')
    assert set(read_partial(str(path), header, ["u000", "u001", "u002"])) == {"u000", "u001"}
    assert set(read_partial(str(path), header, ["u001"])) == {"u001"}
    other = partial_header(str(tmp / "config.yaml"), None, triples, {"beam_size": 4})
    assert read_partial(str(path), other, ["u000"]) == {}
    # through the CLI: the partial file of a run that differs in the beam size alone is not used
    options = dict(seed=0, device="cpu", dtype=None, beam_size=1, no_repeat_ngram_size=0,
                   length_penalty=1.0, repetition_penalty=1.0, max_new_tokens=40,
                   max_tokens_per_second=0.0, min_new_tokens=1, preprocessor_conf={})
    out = tmp_path / "dec"
    (out / "1best_recog").mkdir(parents=True)
    stale = partial_header(str(tmp / "config.yaml"), None, triples, options)
    (out / "1best_recog" / PARTIAL_NAME).write_text(
        json.dumps({"header": stale}) + "\n" + json.dumps({"key": "u000", **row}) + "\n")
    log = decode(tmp, cmd, out)
    assert "partial results of a run with another model, config, data, decoding options or " \
           "library versions: discarded, decoding from the start" in log
    assert read_files(out) == uninterrupted


def test_unreadable_utterance_is_failed_and_scored_empty(setup, uninterrupted, tmp_path):
    tmp, data, cmd = setup
    bad = tmp_path / "data"
    bad.mkdir()
    wav_scp = open(f"{data}/wav.scp").read().splitlines()
    keys = [line.split()[0] for line in wav_scp]
    corrupt, empty = keys[1], keys[4]
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00 this is not audio")
    (tmp_path / "empty.wav").write_bytes(b"")
    rows = []
    for line in wav_scp:
        key = line.split()[0]
        path = {corrupt: tmp_path / "corrupt.wav", empty: tmp_path / "empty.wav"}.get(key)
        rows.append(f"{key} {path}" if path else line)
    (bad / "wav.scp").write_text("\n".join(rows) + "\n")
    (bad / "utt2lang").write_text(open(f"{data}/utt2lang").read())
    out = tmp_path / "output.1"
    cmd = cmd[:cmd.index("--data_path_and_name_and_type")] + data_args("", str(bad), False)
    log = decode(tmp, cmd, out)
    assert f"2 of {N} utterances could not be read" in log, log[-3000:]
    failed = (out / "1best_recog" / "failed").read_text().splitlines()
    assert [f.split()[0] for f in failed] == sorted([corrupt, empty])
    assert all("corrupt.wav" in f or "empty.wav" in f for f in failed), failed
    # empty hypotheses for them, every other utterance as in the run on intact data
    got = read_files(out)
    for name in OUTPUT_FILES:
        ref = dict(line.split(" ", 1) if " " in line else (line, "")
                   for line in uninterrupted[name].decode().splitlines())
        ours = dict(line.split(" ", 1) if " " in line else (line, "")
                    for line in got[name].decode().splitlines())
        assert sorted(ours) == keys
        assert ours[corrupt] == ours[empty] == ""
        assert {k: v for k, v in ours.items() if k not in (corrupt, empty)} == \
               {k: v for k, v in ref.items() if k not in (corrupt, empty)}, name
    assert re.search(rf"^{corrupt}$", got["text"].decode(), re.MULTILINE)

    # merge_outputs merges failed; a later merge without failures removes a stale one
    counts = merge_outputs.merge_outputs(str(tmp_path), out_dir=str(tmp_path / "merged"))
    assert counts["failed"] == 2 and counts["text"] == N
    assert (tmp_path / "merged" / "failed").read_text().splitlines() == failed
    (out / "1best_recog" / "failed").unlink()
    assert "failed" not in merge_outputs.merge_outputs(str(tmp_path),
                                                       out_dir=str(tmp_path / "merged"))
    assert not (tmp_path / "merged" / "failed").exists()
