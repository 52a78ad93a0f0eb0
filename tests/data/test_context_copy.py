"""espnet_sllm.data.context_copy: the 2x (with / without context) training set of S2/S3."""
import os

import pytest

from espnet_sllm.data.context_copy import main, make_context_copy
from espnet_sllm.data.kaldi_dir import (
    Segment,
    Utterance,
    read_data_dir,
    read_kv,
    validate_data_dir,
    write_data_dir,
    write_kv,
)


def _segmented(d):
    # Speaker ids that are prefixes of each other's utterance ids ("spk" vs "spk-1") and ids
    # whose suffixed copies sort between originals ("a-0001-noctx" < "a-00010").
    utts = []
    for spk, rec, n in [("a", "rec1", 3), ("a-b", "rec2", 2)]:
        texts = [f"{spk} says {i}" for i in range(n)]
        for i in range(n):
            utts.append(Utterance(
                uttid=f"{spk}-000{i + 1}" if spk == "a" else f"{spk}-{i}", wav=f"/abs/{rec}.wav",
                spk=spk, text=texts[i], lang="Japanese" if spk == "a" else "English-American",
                segment=Segment(rec, float(i), i + 0.9),
                text_prev=texts[i - 1] if i else "", text_next=texts[i + 1] if i + 1 < n else ""))
    utts.append(Utterance(uttid="a-00010", wav="/abs/rec3.wav", spk="a", text="x", lang="Thai",
                          segment=Segment("rec3", 0.0, 1.0), text_prev="", text_next=""))
    write_data_dir(d, utts)
    return utts


def test_every_utterance_twice_with_and_without_context(tmp_path):
    src = _segmented(tmp_path / "in")
    counts = make_context_copy(tmp_path / "in", tmp_path / "out")
    assert counts == {"utterances": 2 * len(src), "speakers": 2, "recordings": 3}
    out = {u.uttid: u for u in read_data_dir(tmp_path / "out")}
    assert len(out) == 2 * len(src)
    for u in src:
        ctx, noctx = out[u.uttid], out[u.uttid + "-noctx"]
        assert ctx == u  # the contextual copy is the input utterance, unchanged
        assert (noctx.text_prev, noctx.text_next) == ("", "")
        for field in ("wav", "spk", "text", "lang", "segment"):
            assert getattr(noctx, field) == getattr(u, field), field
    # Sorted files, speaker-prefix rule, spk2utt = inverse of utt2spk: validate checks it all.
    validate_data_dir(tmp_path / "out")
    keys = list(read_kv(tmp_path / "out" / "utt2spk"))
    assert keys == sorted(keys) and keys[:3] == ["a-0001", "a-0001-noctx", "a-00010"]
    assert read_kv(tmp_path / "out" / "spk2utt")["a-b"].split() == [
        "a-b-0", "a-b-0-noctx", "a-b-1", "a-b-1-noctx"]
    # segments: both copies of an utterance point to the same recording and times
    seg = read_kv(tmp_path / "out" / "segments")
    assert seg["a-0002"] == seg["a-0002-noctx"] == "rec1 1.00 1.90"
    assert len(read_kv(tmp_path / "out" / "wav.scp")) == 3  # recordings are not duplicated


def test_dump_dir_without_segments_keeps_extra_files_and_is_idempotent(tmp_path):
    d = tmp_path / "dump"
    write_data_dir(d, [
        Utterance("s1-u1", "/dump/data/s1-u1.wav", spk="s1", text="hello", text_prev="",
                  text_next="world"),
        Utterance("s1-u2", "/dump/data/s1-u2.wav", spk="s1", text="world", text_prev="hello",
                  text_next=""),
    ])
    write_kv(d / "utt2num_samples", {"s1-u1": "16000", "s1-u2": "8000"})
    (d / "format_report.txt").write_text("report\n")
    make_context_copy(d, tmp_path / "x2")
    wav = read_kv(tmp_path / "x2" / "wav.scp")
    assert wav["s1-u2-noctx"] == wav["s1-u2"] == "/dump/data/s1-u2.wav"
    assert read_kv(tmp_path / "x2" / "utt2num_samples") == {
        "s1-u1": "16000", "s1-u1-noctx": "16000", "s1-u2": "8000", "s1-u2-noctx": "8000"}
    assert read_kv(tmp_path / "x2" / "text_prev") == {
        "s1-u1": "", "s1-u1-noctx": "", "s1-u2": "hello", "s1-u2-noctx": ""}
    assert not (tmp_path / "x2" / "format_report.txt").exists()
    # A second run with the same input rewrites nothing (recipe stamps use size + mtime).
    mtimes = {f: os.stat(tmp_path / "x2" / f).st_mtime_ns for f in os.listdir(tmp_path / "x2")}
    make_context_copy(d, tmp_path / "x2")
    assert {f: os.stat(tmp_path / "x2" / f).st_mtime_ns
            for f in os.listdir(tmp_path / "x2")} == mtimes
    # ... and a changed input changes the output.
    write_kv(d / "text", {"s1-u1": "hello", "s1-u2": "there"})
    make_context_copy(d, tmp_path / "x2")
    assert read_kv(tmp_path / "x2" / "text")["s1-u2-noctx"] == "there"


def test_refusals(tmp_path, capsys):
    write_data_dir(tmp_path / "noctx", [Utterance("s-u", "/a.wav", spk="s", text="t")])
    with pytest.raises(ValueError, match="neither text_prev nor text_next"):
        make_context_copy(tmp_path / "noctx", tmp_path / "o")
    _segmented(tmp_path / "in")
    with pytest.raises(ValueError, match="is the input"):
        make_context_copy(tmp_path / "in", tmp_path / "in")
    make_context_copy(tmp_path / "in", tmp_path / "x2")
    with pytest.raises(ValueError, match="looks like a context copy"):
        make_context_copy(tmp_path / "x2", tmp_path / "x4")
    # CLI: errors are one line, no traceback; success prints the counts
    assert main(["--in", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["--in", str(tmp_path / "in"), "--out", str(tmp_path / "cli")]) == 0
    assert "12 utterances" in capsys.readouterr().out
