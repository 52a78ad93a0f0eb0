"""espnet_sllm.data.splits: the folders of ESPnet's --multiple_iterator from our data dirs."""
import pytest

from espnet_sllm.data import splits


def _write(path, rows):
    path.write_text("".join(f"{k} {v}\n" for k, v in rows), encoding="utf-8")
    return str(path)


def test_parts_follow_the_first_file_and_keep_subsets(tmp_path):
    keys = [f"u{i}" for i in range(5)]
    wav = _write(tmp_path / "wav.scp", [(k, f"/a/{k}.flac") for k in keys])
    text = _write(tmp_path / "text", [(k, f"words of {k}") for k in keys])
    # a file with a subset of the keys (e.g. text_tgt of the translation rows only)
    tgt = _write(tmp_path / "text_tgt", [("u1", "one"), ("u4", "four")])
    sizes = splits.split_for_multiple_iterator([wav, text, tgt], 2, str(tmp_path / "out"))
    assert sizes == [3, 2]
    out = tmp_path / "out"
    assert (out / "wav.scp" / "split.0").read_text() == \
        "u0 /a/u0.flac\nu2 /a/u2.flac\nu4 /a/u4.flac\n"
    assert (out / "text" / "split.1").read_text() == "u1 words of u1\nu3 words of u3\n"
    assert (out / "text_tgt" / "split.0").read_text() == "u4 four\n"
    assert (out / "text_tgt" / "split.1").read_text() == "u1 one\n"
    assert all((out / n / "num_splits").read_text() == "2\n" for n in ("wav.scp", "text_tgt"))


def test_errors_name_file_and_line(tmp_path):
    wav = _write(tmp_path / "wav.scp", [("u0", "a"), ("u1", "b"), ("u0", "c")])
    with pytest.raises(ValueError, match=r"wav.scp:3: key u0 again"):
        splits.split_for_multiple_iterator([wav], 2, str(tmp_path / "o"))
    wav = _write(tmp_path / "wav.scp", [("u0", "a"), ("u1", "b")])
    text = _write(tmp_path / "text", [("u0", "x"), ("u9", "y")])
    with pytest.raises(ValueError, match=r"text:2: key 'u9' is not in .*wav.scp"):
        splits.split_for_multiple_iterator([wav, text], 2, str(tmp_path / "o"))
    with pytest.raises(ValueError, match="2 utterances cannot fill 3 parts"):
        splits.split_for_multiple_iterator([wav], 3, str(tmp_path / "o"))
    sub = tmp_path / "sub"
    sub.mkdir()
    other = _write(sub / "wav.scp", [("u0", "a")])
    with pytest.raises(ValueError, match="same basename"):
        splits.split_for_multiple_iterator([wav, other], 2, str(tmp_path / "o"))
    assert splits.main([wav, "--num_splits", "1", "--out_dir", str(tmp_path / "o")]) == 1
