"""check_mer (the CI learning check's gate) on a scores.json written by the real scorer."""
import json

import pytest

from espnet_sllm.bin import check_mer
from espnet_sllm.scoring.report import score_set


@pytest.fixture
def scores(tmp_path):
    # 2 of 8 reference words wrong (one substitution, one deletion): MER 25 %
    (tmp_path / "ref").write_text("a the red cat eats\nb I see a dog\n", encoding="utf-8")
    (tmp_path / "hyp").write_text("a the red cow eats\nb I see a\n", encoding="utf-8")
    score_set(tmp_path / "ref", tmp_path / "hyp", tmp_path / "out", use_sclite=False,
              default_lang="en")
    return tmp_path / "out" / "scores.json"


def test_passes_at_or_under_the_bound(scores, capsys):
    assert json.loads(scores.read_text())["mer"]["mer"] == pytest.approx(25.0)
    assert check_mer.main(["--scores", str(scores), "--max_mer", "25"]) == 0
    assert check_mer.main(["--scores", str(scores), "--max_mer", "30"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "MER 25.0 %" in out and "bound 30 %" in out


def test_fails_above_the_bound(scores, capsys):
    assert check_mer.main(["--scores", str(scores), "--max_mer", "24.9"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and str(scores) in out and "> bound 24.9 %" in out


@pytest.mark.parametrize("content", [None, "{", '{"mer": {"mer": null, "errors": 0, '
                                                 '"ref_units": 0}}', '{"by_unit": {}}'])
def test_no_mer_is_an_error_not_a_pass(tmp_path, capsys, content):
    path = tmp_path / "scores.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert check_mer.main(["--scores", str(path), "--max_mer", "100"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "ERROR" in err
