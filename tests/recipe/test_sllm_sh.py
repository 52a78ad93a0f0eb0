"""The template driver's option handling and input checks (no training here: see .ci/run)."""
import os
import subprocess

import pytest

RECIPE = os.path.join(os.path.dirname(__file__), "..", "..", "egs2", "mini_mlc", "asr1")


def sllm(*args):
    return subprocess.run(["./sllm.sh", *args], cwd=RECIPE, capture_output=True, text=True)


def test_help_lists_stages():
    proc = sllm("--help")
    assert proc.returncode == 0
    for word in ("Stages:", "collect stats", "context re-decoding", "--inference_nj"):
        assert word in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["--no_such_option", "1"], "unknown option"),
        (["--valid_set", "v", "--train_config", "conf/train.yaml"], "--train_set is required"),
        (["--train_set", "t", "--valid_set", "v", "--train_config", "nope.yaml"],
         "train config not found: nope.yaml"),
        (["--train_set", "t", "--valid_set", "v", "--train_config", "conf/train_debug.yaml",
          "--stage", "2", "--stop_stage", "2", "--expdir", "/tmp/_sllm_sh_test_exp"],
         "missing input: data/t/wav.scp"),
    ],
)
def test_bad_options_and_missing_inputs(args, message):
    proc = sllm(*args)
    assert proc.returncode != 0
    assert message in proc.stderr


TEMPLATE = os.path.join(os.path.dirname(__file__), "..", "..", "egs2", "TEMPLATE", "sllm1",
                        "sllm.sh")


def _data_opts(tmp_path, *args):
    """Runs sllm.sh's data_opts (the table data_files and the function, cut from the script)."""
    text = open(TEMPLATE).read()
    start = text.index("\ndata_files=")
    end = text.index("\n}\n", text.index("\ndata_opts()")) + 3
    script = tmp_path / "data_opts.sh"
    script.write_text("set -euo pipefail\n" + text[start:end] + 'data_opts "$@"\n')
    proc = subprocess.run(["bash", str(script), *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_data_opts_passes_the_optional_files_a_data_dir_holds(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    for name in ("wav.scp", "text", "utt2spk"):
        (d / name).write_text("u1 x\n")
    base = _data_opts(tmp_path, "train_", d, "true")
    assert base == ["--train_data_path_and_name_and_type", f"{d}/wav.scp,speech,sound",
                    "--train_data_path_and_name_and_type", f"{d}/text,text,text"]
    files = {"utt2lang": "lang", "utt2task": "task", "utt2tgtlang": "tgt_lang",
             "utt2subdialect": "subdialect", "text_src": "text_src", "text_tgt": "text_tgt",
             "text_prev": "text_prev", "text_next": "text_next"}
    for name in files:
        (d / name).write_text("u1 x\n")
    opts = _data_opts(tmp_path, "", d, "false", "true")
    names = {o.split(",")[1]: o.split(",")[0] for o in opts[1::2]}
    assert names == {"speech": f"{d}/wav.scp", **{n: f"{d}/{f}" for f, n in files.items()}}
    # without context: no text_prev/text_next (ESPnet's streaming reader refuses empty values)
    opts = _data_opts(tmp_path, "valid_", d, "true", "false")
    assert {o.split(",")[1] for o in opts[1::2]} == {"speech", "text"} | (
        set(files.values()) - {"text_prev", "text_next"})
    assert all(o == "--valid_data_path_and_name_and_type" for o in opts[::2])


def test_data_files_of_sllm_sh_are_the_tasks_optional_data_names():
    import re

    from espnet_sllm.tasks.sllm import OPTIONAL_DATA_NAMES, SLLMTask

    text = open(TEMPLATE).read()
    table = re.findall(r'^(?:data_files|context_files)\+?="([^"]*)"', text, re.M)
    names = {pair.split(":")[1] for line in table for pair in line.split()}
    assert names == set(OPTIONAL_DATA_NAMES)
    assert set(SLLMTask.optional_data_names(train=True)) >= names
    assert set(SLLMTask.optional_data_names(inference=True)) >= names | {"text"}


def test_stage9_reads_hyp_marker_of_the_config(tmp_path):
    text = open(TEMPLATE).read()
    start = text.index("\nconfig_value()")
    end = text.index("\n}\n", start) + 3
    conf = tmp_path / "config.yaml"
    conf.write_text("preprocessor_conf:\n  target_template: '{text} <translation> {text_tgt}'\n"
                    "  hyp_marker: '<translation>'\n")
    script = tmp_path / "cv.sh"
    script.write_text("python=" + __import__("sys").executable + text[start:end]
                      + 'config_value "$@"\n')
    run = lambda *a: subprocess.run(["bash", str(script), str(conf), *a],  # noqa: E731
                                    capture_output=True, text=True).stdout
    assert run("preprocessor_conf", "hyp_marker") == "<translation>"
    assert run("preprocessor_conf", "nothing") == ""
    assert run("model_conf", "hyp_marker") == ""
    assert '_opts+=(--hyp_marker "${_marker}")' in text


def test_stage2_passes_audio_format_and_reruns_when_it_changes(tmp_path):
    """--audio_format reaches format_data (FLAC by default) and is part of stage 2's stamp: the
    same command is skipped, another format redoes the step; a bad value stops up front."""
    import numpy as np
    import soundfile as sf

    from espnet_sllm.data.kaldi_dir import read_kv
    from espnet_sllm.testing.recipe import copy_recipe, run_recipe

    recipe = copy_recipe("egs2/mini_mlc/asr1", tmp_path)
    d = recipe / "data" / "train"
    d.mkdir(parents=True)
    for i in (1, 2):  # 8 kHz: written (a 16 kHz mono 16-bit file would be referenced)
        sf.write(d / f"s-{i}.wav", np.full(4000 * i, 0.1 * i), 8000, subtype="PCM_16")
    (d / "wav.scp").write_text(f"s-1 {d}/s-1.wav\ns-2 {d}/s-2.wav\n")
    (d / "text").write_text("s-1 one\ns-2 two\n")
    (d / "utt2spk").write_text("s-1 s\ns-2 s\n")
    (d / "spk2utt").write_text("s s-1 s-2\n")
    argv = ["sllm.sh", "--stage", "2", "--stop_stage", "2", "--train_set", "train",
            "--valid_set", "train", "--test_sets", "train", "--nj", "1"]
    dump = recipe / "dump" / "raw" / "org" / "train"
    utts = ("s-1", "s-2")

    def run(*extra):
        proc = run_recipe(recipe, argv + list(extra), OMP_NUM_THREADS="1")
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stderr

    log = run()
    assert "Stage 2: format data: 16000 Hz flac per utterance" in log
    assert read_kv(dump / "wav.scp") == {u: str(dump / "data" / f"{u}.flac") for u in utts}
    assert "Stage 2: train: skipped (unchanged)" in run("--audio_format", "flac")
    log = run("--audio_format", "wav")
    assert "skipped" not in log
    assert read_kv(dump / "wav.scp") == {u: str(dump / "data" / f"{u}.wav") for u in utts}
    assert not list((dump / "data").glob("*.flac"))
    assert read_kv(dump / "utt2num_samples") == {"s-1": "8000", "s-2": "16000"}

    proc = run_recipe(recipe, argv + ["--audio_format", "mp3"])
    assert proc.returncode != 0
    assert "--audio_format must be flac or wav, got 'mp3'" in proc.stderr
