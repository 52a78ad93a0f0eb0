"""plot_lang_weights on hand-written config.yaml + checkpoints (no model is built)."""
import math
import os
import subprocess
import sys

import pytest
import torch
import yaml

from espnet_sllm.bin import plot_lang_weights

LANGS = ["en", "de", "nl", "fr"]
KEY = "encoder.selector.weight"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _exp(root, name, weight, languages=LANGS, encoder="dual", encoder_conf=None, state=None,
         file="valid.acc.ave_5best.pth"):
    """exp dir ``root/name`` with config.yaml and a checkpoint; returns the checkpoint path."""
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    conf = {"encoder": encoder,
            "encoder_conf": encoder_conf if encoder_conf is not None
            else {"whisper": "whisper_hf", "mms": "mms_hf", "selector": "language"}}
    if languages is not None:
        conf["languages"] = languages
    (d / "config.yaml").write_text(yaml.safe_dump(conf), encoding="utf-8")
    if state is None:  # required_grad_only: the trained parameters only
        state = {KEY: torch.tensor(weight), "encoder.lid_adapter.linear.weight": torch.zeros(4, 8)}
    torch.save(state, d / file)
    return d / file


def _tsv(out_dir):
    rows = [line.split("\t") for line in
            (out_dir / "lang_weights.tsv").read_text(encoding="utf-8").splitlines()]
    return rows[0], rows[1:]


def _sig(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_one_model_table_and_plot(tmp_path, capsys):
    w = [0.0, 1.5, -2.0, 0.3]
    model = _exp(tmp_path, "sllm_base", w)
    out = tmp_path / "plots"
    assert plot_lang_weights.main(["--model", str(model), "--out_dir", str(out)]) == 0
    header, rows = _tsv(out)
    assert header == ["language", "sllm_base"]  # default label: the exp dir's name
    assert [r[0] for r in rows] == LANGS
    for row, x in zip(rows, w):
        assert row[1] == f"{_sig(x):.4f}"
    assert rows[0][1] == "0.5000"
    assert (out / "lang_weights.png").read_bytes()[:8] == PNG_MAGIC
    stdout = capsys.readouterr().out
    assert "language\tsllm_base" in stdout and f"de\t{_sig(1.5):.4f}" in stdout


def test_two_models_two_columns_with_labels_and_configs(tmp_path):
    w_base, w_large = [0.1, -0.4, 2.0, 0.0], [-1.0, 0.7, 0.2, 3.0]
    base = _exp(tmp_path, "sllm_base", w_base)
    large = _exp(tmp_path, "sllm_large", w_large, file="checkpoint.pth",
                 state={"model": {KEY: torch.tensor(w_large, dtype=torch.bfloat16)},
                        "optimizers": [{}]})
    # the config may live elsewhere: --config after its --model
    cfg = tmp_path / "elsewhere.yaml"
    (tmp_path / "sllm_large" / "config.yaml").rename(cfg)
    out = tmp_path / "out"
    assert plot_lang_weights.main(
        ["--model", str(base), "--label", "base", "--model", str(large), "--config", str(cfg),
         "--label", "large", "--out_dir", str(out)]) == 0
    header, rows = _tsv(out)
    assert header == ["language", "base", "large"]
    bf16 = torch.tensor(w_large, dtype=torch.bfloat16).float().tolist()
    for row, a, b in zip(rows, w_base, bf16):
        assert len(row) == 3
        assert float(row[1]) == pytest.approx(_sig(a), abs=5e-5)
        assert float(row[2]) == pytest.approx(_sig(b), abs=5e-5)
    assert (out / "lang_weights.png").read_bytes()[:8] == PNG_MAGIC


def _error(capsys, argv):
    assert plot_lang_weights.main(argv) == 1
    err = capsys.readouterr().err
    assert "plot_lang_weights: ERROR:" in err and "Traceback" not in err
    return err


def test_missing_files(tmp_path, capsys):
    out = ["--out_dir", str(tmp_path / "o")]
    err = _error(capsys, ["--model", str(tmp_path / "nope" / "a.pth")] + out)
    assert str(tmp_path / "nope") in err and "no such file" in err
    model = _exp(tmp_path, "exp", [0.0] * 4)
    err = _error(capsys, ["--model", str(model), "--config", str(tmp_path / "c.yaml")] + out)
    assert str(tmp_path / "c.yaml") in err and "no such file" in err
    (tmp_path / "exp" / "config.yaml").unlink()
    err = _error(capsys, ["--model", str(model)] + out)
    assert str(tmp_path / "exp" / "config.yaml") in err and "no such file" in err
    assert not (tmp_path / "o" / "lang_weights.tsv").exists()


@pytest.mark.parametrize("encoder,encoder_conf", [
    ("conformer", {"output_size": 8}),
    ("dual", {"mms": "mms_hf", "selector": "fixed"}),
    ("dual", {"mms": "mms_hf", "selector": None}),
    ("dual", {"mms": None, "selector": None}),
])
def test_config_without_selector(tmp_path, capsys, encoder, encoder_conf):
    model = _exp(tmp_path, "exp", [0.0] * 4, encoder=encoder, encoder_conf=encoder_conf)
    err = _error(capsys, ["--model", str(model), "--out_dir", str(tmp_path / "o")])
    assert str(tmp_path / "exp" / "config.yaml") in err
    assert "has no language weight selector" in err


def test_selector_defaults_to_language(tmp_path):
    # DualEncoder's default selector is "language": a config that does not name it has one
    model = _exp(tmp_path, "exp", [0.0] * 4, encoder_conf={"mms": "mms_hf"})
    assert plot_lang_weights.main(["--model", str(model), "--out_dir", str(tmp_path)]) == 0


def test_checkpoint_without_the_weight(tmp_path, capsys):
    model = _exp(tmp_path, "exp", None, state={"projector.linear.weight": torch.zeros(2, 2)})
    err = _error(capsys, ["--model", str(model), "--out_dir", str(tmp_path / "o")])
    assert str(model) in err and KEY in err


def test_not_a_checkpoint(tmp_path, capsys):
    model = _exp(tmp_path, "exp", [0.0] * 4)
    model.write_text("not a checkpoint", encoding="utf-8")
    err = _error(capsys, ["--model", str(model), "--out_dir", str(tmp_path / "o")])
    assert str(model) in err and "not a readable checkpoint" in err


def test_weight_length_differs_from_languages(tmp_path, capsys):
    model = _exp(tmp_path, "exp", [0.0] * 3)
    err = _error(capsys, ["--model", str(model), "--out_dir", str(tmp_path / "o")])
    assert str(model) in err and "(3,)" in err and "4 languages" in err


def test_config_without_languages(tmp_path, capsys):
    model = _exp(tmp_path, "exp", [0.0] * 4, languages=None)
    err = _error(capsys, ["--model", str(model), "--out_dir", str(tmp_path / "o")])
    assert "config.yaml" in err and "languages" in err


def test_languages_from_encoder_conf(tmp_path):
    model = _exp(tmp_path, "exp", [1.0, 2.0], languages=None,
                 encoder_conf={"mms": "mms_hf", "selector": "language", "languages": ["ja", "zh"]})
    assert plot_lang_weights.main(["--model", str(model), "--out_dir", str(tmp_path)]) == 0
    _, rows = _tsv(tmp_path)
    assert rows == [["ja", f"{_sig(1.0):.4f}"], ["zh", f"{_sig(2.0):.4f}"]]


def test_models_with_different_languages(tmp_path, capsys):
    a = _exp(tmp_path, "a", [0.0] * 4)
    b = _exp(tmp_path, "b", [0.0] * 4, languages=["en", "de", "fr", "nl"])
    err = _error(capsys, ["--model", str(a), "--model", str(b), "--out_dir", str(tmp_path / "o")])
    assert str(tmp_path / "b" / "config.yaml") in err and "differ" in err


def test_label_pairing_errors(tmp_path, capsys):
    a = _exp(tmp_path, "x/exp", [0.0] * 4)
    b = _exp(tmp_path, "y/exp", [0.0] * 4)
    out = ["--out_dir", str(tmp_path / "o")]
    assert "after the --model" in _error(capsys, ["--label", "x", "--model", str(a)] + out)
    assert "twice" in _error(capsys, ["--model", str(a), "--label", "x", "--label", "y"] + out)
    # two exp dirs of the same name: the default labels clash
    assert "give each a --label" in _error(capsys, ["--model", str(a), "--model", str(b)] + out)
    assert plot_lang_weights.main(["--model", str(a), "--model", str(b), "--label", "b"]
                                  + out) == 0


def test_command_line(tmp_path):
    model = _exp(tmp_path, "sllm_base", [0.5, -0.5, 0.0, 1.0])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "espnet_sllm.bin.plot_lang_weights", "--model", str(model),
           "--out_dir", str(tmp_path / "o")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "en\t0.6225" in proc.stdout
    proc = subprocess.run(cmd[:4] + [str(tmp_path / "missing.pth")] + cmd[5:],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    assert "missing.pth: no such file" in proc.stderr and "Traceback" not in proc.stderr
