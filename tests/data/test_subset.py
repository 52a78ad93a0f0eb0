"""espnet_sllm.data.subset: seeded, nested subsets by hours or utterances (issue #13)."""
import os

import numpy as np
import pytest
import soundfile

from espnet_sllm.data import subset as sb
from espnet_sllm.data.kaldi_dir import Segment, Utterance, read_kv, validate_data_dir, \
    write_data_dir, write_kv


def _speech_dir(tmp_path, n=40, name="in"):
    """n utterances of 1..4 s (WAV headers are the only duration source)."""
    d = tmp_path / name
    wavs = tmp_path / "wavs"
    wavs.mkdir(exist_ok=True)
    utts = []
    for i in range(n):
        path = wavs / f"u{i:03d}.wav"
        soundfile.write(path, np.zeros(8000 * (2 + i % 7), np.float32), 16000, subtype="PCM_16")
        utts.append(Utterance(f"u{i:03d}", str(path), text=f"t{i}", lang="zh", task="asr"))
    write_data_dir(d, utts)
    write_kv(d / "utt2tgtlang", {u.uttid: "zh" for u in utts})
    return d, {u.uttid: 0.5 * (2 + i % 7) for i, u in enumerate(utts)}


def _ids(d):
    return list(read_kv(os.path.join(d, "utt2spk")))


def test_nested_hours_and_shortest_prefix(tmp_path):
    d, dur = _speech_dir(tmp_path)
    total = sum(dur.values()) / 3600
    sizes = [total * f for f in (0.2, 0.5, 0.9)]
    outs = []
    for k, h in enumerate(sizes):
        out = tmp_path / f"s{k}"
        n, n_in, kept_h = sb.subset_data_dir(str(d), str(out), seed=3, hours=h)
        assert n_in == 40 and kept_h >= h
        validate_data_dir(out)
        ids = _ids(out)
        # the shortest prefix of the seeded order: without its last utterance it is short of h
        order = sb.seeded_order(dur, 3)
        assert set(ids) == set(order[:n])
        assert sum(dur[u] for u in order[: n - 1]) < h * 3600
        # utt2dur written, the carried file restricted
        assert read_kv(out / "utt2dur") == {u: repr(dur[u]) for u in ids}
        assert set(read_kv(out / "utt2tgtlang")) == set(ids)
        outs.append(set(ids))
    assert outs[0] < outs[1] < outs[2]
    # deterministic; another seed gives another order
    sb.subset_data_dir(str(d), str(tmp_path / "again"), seed=3, hours=sizes[1])
    assert set(_ids(tmp_path / "again")) == outs[1]
    sb.subset_data_dir(str(d), str(tmp_path / "other"), seed=4, hours=sizes[1])
    assert set(_ids(tmp_path / "other")) != outs[1]
    # the whole set, asked for exactly
    n, _, _ = sb.subset_data_dir(str(d), str(tmp_path / "all"), seed=3, hours=total)
    assert n == 40


def test_order_is_by_id_and_seed_only(tmp_path):
    ids = [f"x{i}" for i in range(50)]
    a = sb.seeded_order(ids, 7)
    b = sb.seeded_order(list(reversed(ids)), 7)
    assert a == b
    # the order of a subset of ids is the order restricted to them
    assert sb.seeded_order(ids[::2], 7) == [u for u in a if u in set(ids[::2])]


def test_utts_and_rest(tmp_path):
    d, dur = _speech_dir(tmp_path, n=10)
    sb.subset_data_dir(str(d), str(tmp_path / "held"), seed=0, utts=3,
                       rest_dir=str(tmp_path / "rest"))
    held, rest = set(_ids(tmp_path / "held")), set(_ids(tmp_path / "rest"))
    assert len(held) == 3 and held | rest == set(dur) and not held & rest
    assert held == set(sb.seeded_order(dur, 0)[:3])
    # the next subset of the rest continues the order
    sb.subset_data_dir(str(tmp_path / "rest"), str(tmp_path / "next"), seed=0, utts=2)
    assert set(_ids(tmp_path / "next")) == set(sb.seeded_order(dur, 0)[3:5])


def test_segments_are_durations(tmp_path):
    d = tmp_path / "seg"
    utts = [Utterance(f"r1-{i}", "/nowhere/r1.opus", text="a",
                      segment=Segment("r1", i, i + 0.5 + i)) for i in range(4)]
    write_data_dir(d, utts)
    assert sb.durations(str(d)) == {f"r1-{i}": 0.5 + i for i in range(4)}
    n, _, h = sb.subset_data_dir(str(d), str(tmp_path / "o"), seed=1, hours=8 / 3600)
    assert (tmp_path / "o" / "segments").exists() and h * 3600 == pytest.approx(
        sum(float(v.split()[2]) - float(v.split()[1])
            for v in read_kv(tmp_path / "o" / "segments").values()))


def test_errors(tmp_path):
    d, dur = _speech_dir(tmp_path, n=5)
    total = sum(dur.values()) / 3600
    with pytest.raises(ValueError, match=rf"2 h asked, but there are only {total:.6g} h "
                                         r"\(5 utterances\)"):
        sb.subset_data_dir(str(d), str(tmp_path / "o"), seed=0, hours=2)
    with pytest.raises(ValueError, match="6 utterances asked, but there are only 5"):
        sb.subset_data_dir(str(d), str(tmp_path / "o"), seed=0, utts=6)
    with pytest.raises(ValueError, match="must be different"):
        sb.subset_data_dir(str(d), str(d), seed=0, utts=1)
    assert not (tmp_path / "o").exists()
    # text-only rows: refused by --hours, fine with --utts
    t = tmp_path / "mixed"
    write_data_dir(t, [Utterance("a1", str(tmp_path / "wavs" / "u000.wav"), text="x"),
                       Utterance("a2", "", text="y")])
    with pytest.raises(ValueError, match=r"1 text-only utterance\(s\) \(no audio, e\.g\. 'a2'\)"):
        sb.subset_data_dir(str(t), str(tmp_path / "o"), seed=0, hours=0.0001)
    sb.subset_data_dir(str(t), str(tmp_path / "o2"), seed=0, utts=2)


def test_cli(tmp_path, capsys):
    d, dur = _speech_dir(tmp_path, n=8)
    assert sb.main(["--in", str(d), "--out", str(tmp_path / "o"), "--hours", "0.001",
                    "--seed", "2"]) == 0
    assert "of 8 utterances" in capsys.readouterr().out
    assert sb.main(["--in", str(d), "--out", str(tmp_path / "o"), "--hours", "5",
                    "--seed", "2"]) == 1
    assert "5 h asked, but there are only" in capsys.readouterr().err


def test_by_speaker(tmp_path):
    """--by spk: whole speakers in a seeded order of the speaker ids; nested too."""
    d = tmp_path / "spk"
    utts = [Utterance(f"rec{r}-{k}", f"/nowhere/rec{r}.opus", spk=f"rec{r}", text="a",
                      segment=Segment(f"rec{r}", 2.0 * k, 2.0 * k + 1 + r % 3))
            for r in range(10) for k in range(4)]
    write_data_dir(d, utts)
    spk_order = sb.seeded_order({f"rec{r}" for r in range(10)}, 5)
    prev = set()
    for hours in (10 / 3600, 30 / 3600, 60 / 3600):
        out = tmp_path / f"o{hours}"
        n, _, h = sb.subset_data_dir(str(d), str(out), seed=5, hours=hours, by="spk")
        spks = set(read_kv(out / "utt2spk").values())
        assert spks == set(spk_order[: len(spks)])  # a prefix of the speaker order
        assert n == 4 * len(spks) and h >= hours
        ids = set(_ids(out))
        assert prev <= ids
        prev = ids
    sb.subset_data_dir(str(d), str(tmp_path / "u"), seed=5, utts=5, by="spk")
    assert set(read_kv(tmp_path / "u" / "utt2spk").values()) == set(spk_order[:2])
    with pytest.raises(ValueError, match=r"\(10 speakers\)"):
        sb.subset_data_dir(str(d), str(tmp_path / "x"), seed=5, hours=1, by="spk")
