"""espnet_sllm.bin.export_encoder: the encoder of a trained model (e.g. after CTC fine-tuning)
written as a converted data2vec2 folder that encoder_conf.model_name_or_path loads."""
import pytest
import torch
import yaml

from espnet_sllm.bin.export_encoder import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """config.yaml as sllm_train writes it + a checkpoint whose encoder differs from the
    pretrained one (as after fine-tuning)."""
    from espnet_sllm.bin.sllm_train import main as train_main
    from espnet_sllm.tasks.sllm import SLLMTask
    from espnet_sllm.testing.tiny_checkpoints import make_tiny_checkpoints

    root = tmp_path_factory.mktemp("exp")
    make_tiny_checkpoints(str(root / "tiny"), ["你好 世界"], llm_family="qwen2",
                          encoder="data2vec2")
    conf = {"encoder": "data2vec2",
            "encoder_conf": {"model_name_or_path": str(root / "tiny/data2vec2"), "freeze": False},
            "projector": "mlp", "projector_conf": {"downsample": 4, "hidden": 16},
            "llm": "hf", "llm_conf": {"model_name_or_path": str(root / "tiny/qwen2")},
            "model_conf": {"ctc_weight": 1.0, "ctc_input": "encoder"},
            "preprocessor_conf": {"prompt_template": "{speech}"}}
    (root / "in.yaml").write_text(yaml.safe_dump(conf), encoding="utf-8")
    train_main(["--config", str(root / "in.yaml"), "--dry_run", "true",
                "--output_dir", str(root / "exp")])
    model, _ = SLLMTask.build_model_from_file(str(root / "exp/config.yaml"), None, "cpu")
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(0.01 * torch.randn_like(p))
    torch.save(model.state_dict(), root / "exp/valid.acc.best.pth")
    return root, model


def test_exported_encoder_equals_the_trained_one(trained, tmp_path):
    from espnet_sllm.encoders.data2vec2 import Data2Vec2Encoder

    root, model = trained
    out = tmp_path / "ctc_encoder"
    assert main(["--config", str(root / "exp/config.yaml"),
                 "--model", str(root / "exp/valid.acc.best.pth"), "--out", str(out)]) == 0
    exported = Data2Vec2Encoder(model_name_or_path=str(out)).eval()
    pretrained = Data2Vec2Encoder(model_name_or_path=str(root / "tiny/data2vec2")).eval()
    model.encoder.eval()
    wav, lens = torch.randn(2, 9000), torch.tensor([9000, 6000])
    with torch.no_grad():
        y = exported(wav, lens)[0]
        assert torch.allclose(y, model.encoder(wav, lens)[0], atol=1e-6)
        assert not torch.allclose(y, pretrained(wav, lens)[0], atol=1e-3)
    assert "exported_from" in (out / "config.json").read_text()


def test_errors_name_the_problem(trained, tmp_path, capsys):
    root, _ = trained
    assert main(["--config", str(root / "missing.yaml"), "--model", "x.pth",
                 "--out", str(tmp_path / "o")]) == 1
    assert "missing.yaml not found" in capsys.readouterr().err
    # an encoder without a checkpoint format of its own
    conf = yaml.safe_load((root / "exp/config.yaml").read_text())
    conf["encoder"], conf["encoder_conf"] = "transformer", {"output_size": 16,
                                                            "num_blocks": 1}
    conf["frontend"], conf["frontend_conf"] = "default", {"n_mels": 20}
    bad = tmp_path / "config.yaml"
    bad.write_text(yaml.safe_dump(conf), encoding="utf-8")
    from espnet_sllm.tasks.sllm import SLLMTask

    model, _ = SLLMTask.build_model_from_file(str(bad), None, "cpu")
    torch.save(model.state_dict(), tmp_path / "m.pth")
    assert main(["--config", str(bad), "--model", str(tmp_path / "m.pth"),
                 "--out", str(tmp_path / "o")]) == 1
    assert "no checkpoint format to export to" in capsys.readouterr().err
