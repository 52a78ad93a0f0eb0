"""Two-process training on CPU (gloo) through ESPnet's own distributed code.

ESPnet's trainer runs one process per rank that an external launcher starts (its mode "d":
``--multiprocessing_distributed false``, rank and world size from the launcher's environment);
``torch.distributed.run`` is that launcher here, ``--dist_backend gloo`` the CPU backend.  On GPUs
the same trainer spawns its own processes (``--ngpu 8``): README "Beyond one machine".
"""
import os
import socket
import subprocess
import sys

import pytest
import torch
import yaml

from .test_train_inference import data_args, epoch_results, prepare


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, tiny_llm_dirs):
    tmp = tmp_path_factory.mktemp("ddp")
    # batch_size is global in ESPnet's distributed mode: each rank gets half of every batch.
    conf, train, valid, stats = prepare(tmp, tiny_llm_dirs, keep_nbest_models=2)
    exp = tmp / "exp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node",
           "2", "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           "-m", "espnet_sllm.bin.sllm_train", "--ngpu", "0",
           "--multiprocessing_distributed", "false", "--dist_backend", "gloo",
           "--config", str(conf), "--output_dir", str(exp),
           "--train_shape_file", str(stats / "train" / "speech_shape"),
           "--valid_shape_file", str(stats / "valid" / "speech_shape"),
           *data_args("train_", train), *data_args("valid_", valid)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return exp, proc.stderr


def test_two_processes_train_and_save(two_process_run):
    exp, log = two_process_run
    # rank 0 logs as [host:0/2] (ESPnet silences the other ranks below ERROR) and writes
    # config.yaml; the world size comes from the launcher (RANK, WORLD_SIZE)
    assert ":0/2]" in log, log[-2000:]
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["distributed"] is True  # (dist_world_size: from the environment)
    assert config["dist_backend"] == "gloo" and config["ngpu"] == 0
    for name in ("1epoch.pth", "2epoch.pth", "valid.acc.best.pth", "checkpoint.pth"):
        assert (exp / name).exists(), name
    results = epoch_results(log)
    assert sorted(results) == [1, 2]
    state = torch.load(exp / "checkpoint.pth", weights_only=False)
    assert state["reporter"]["stats"][2]["train"]["loss"] == pytest.approx(
        results[2]["train"]["loss"], rel=1e-3)
    assert results[2]["train"]["loss"] < results[1]["train"]["loss"], results


def test_the_saved_model_is_the_trained_one(two_process_run):
    # DDP keeps the ranks' replicas equal; rank 0 saves plain (unwrapped) parameter names
    exp, _ = two_process_run
    model = torch.load(exp / "2epoch.pth", weights_only=True)
    assert model and not any(k.startswith("module.") for k in model)
    first = torch.load(exp / "1epoch.pth", weights_only=True)
    changed = [k for k in model if model[k].is_floating_point()
               and not torch.equal(model[k], first[k])]
    assert len(changed) > len(model) // 2, "epoch 2 did not update the model"
