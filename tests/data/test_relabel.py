"""espnet_sllm.data.relabel: pseudo labels replace the text of the voted utterances only."""
import pytest

from espnet_sllm.data.kaldi_dir import Utterance, read_data_dir, read_kv, write_data_dir
from espnet_sllm.data.relabel import main, relabel


def make(tmp_path):
    utts = [Utterance(f"s{i}-u{i}", f"/a/{i}.wav", spk=f"s{i}", text=f"old {i}", lang="Thai")
            for i in range(4)]
    write_data_dir(tmp_path / "in", utts)
    return str(tmp_path / "in")


def test_relabel_keeps_the_voted_utterances_with_their_new_text(tmp_path):
    src = make(tmp_path)
    (tmp_path / "vote").write_text("s0-u0 new zero\ns2-u2 \ns3-u3 new three\n")
    kept, empty, total = relabel(src, str(tmp_path / "vote"), str(tmp_path / "out"))
    assert (kept, empty, total) == (2, 1, 4)
    out = {u.uttid: u for u in read_data_dir(tmp_path / "out")}
    assert {k: u.text for k, u in out.items()} == {"s0-u0": "new zero", "s3-u3": "new three"}
    assert read_kv(tmp_path / "out" / "utt2lang") == {"s0-u0": "Thai", "s3-u3": "Thai"}
    with pytest.raises(ValueError, match="empty transcript"):
        relabel(src, str(tmp_path / "vote"), str(tmp_path / "o2"), drop_empty=False)


def test_unknown_ids_and_nothing_left(tmp_path, capsys):
    src = make(tmp_path)
    (tmp_path / "bad").write_text("nope hello\n")
    assert main(["--in", src, "--text", str(tmp_path / "bad"), "--out", str(tmp_path / "o")]) == 1
    assert "not in" in capsys.readouterr().err
    (tmp_path / "empty").write_text("s0-u0 \n")
    with pytest.raises(ValueError, match="no utterance"):
        relabel(src, str(tmp_path / "empty"), str(tmp_path / "o"))
    (tmp_path / "o").mkdir()
    assert relabel(src, str(tmp_path / "empty"), str(tmp_path / "o"), allow_empty=True)[0] == 0
    assert not (tmp_path / "o").exists()
