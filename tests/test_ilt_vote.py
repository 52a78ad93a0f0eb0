"""ROVER majority vote of hypotheses (espnet_sllm.scoring.vote) for ILT pseudo-labels."""
import logging
import random

import pytest

from espnet_sllm.scoring import vote as V
from espnet_sllm.scoring.vote import (
    main,
    rover_available,
    rover_network,
    rover_sctk,
    rover_vote,
    unit_for_vote,
    vote_files,
    vote_hypotheses,
)

needs_rover = pytest.mark.skipif(not rover_available(),
                                 reason="sctk's rover (Debian package sctk) is not installed")


def _w(s):
    return s.split()


# ----------------------------------------------------------------------- hand-made votes


def test_majority_per_slot():
    hyps = [_w("the cat sat on the mat"), _w("the cat sat in the mat"),
            _w("a cat sat on the hat")]
    assert rover_vote(hyps) == _w("the cat sat on the mat")


def test_majority_with_deletion_and_substitution():
    # voter 2 deletes "b", voter 3 substitutes "c": each slot keeps its majority
    assert rover_vote([_w("a b c"), _w("a c"), _w("a b d")]) == _w("a b c")


def test_null_wins_drops_an_insertion():
    # one voter inserts "x": the slot is [x, NULL, NULL] -> NULL wins, nothing is output
    assert rover_vote([_w("a b"), _w("a x b"), _w("a b")]) == _w("a b")
    # two voters of three miss "b": NULL wins that slot
    assert rover_vote([_w("a b c"), _w("a c"), _w("a c")]) == _w("a c")


def test_network_layout():
    net = rover_network([_w("a b"), _w("a x b"), _w("a b")])
    # the insertion slot holds the inserting word first, then the NULL of voter 1
    assert net == [["a", "a", "a"], ["x", None, None], ["b", "b", "b"]]
    # a slot holding a NULL is cheap to substitute (cost 1 instead of 4): voter 3's "c" joins
    # the slot of "x" rather than the slot of "b", which it deletes
    net = rover_network([_w("a b"), _w("a x b"), _w("a c")])
    assert net == [["a", "a", "a"], ["x", None, "c"], ["b", "b", None]]


def test_tie_goes_to_first_voter():
    # 2 voters: every disagreement is a tie
    assert rover_vote([_w("a b c"), _w("a x c")]) == _w("a b c")
    # voter 2 deletes: [b, NULL] tie -> voter 1's b
    assert rover_vote([_w("a b c"), _w("a c")]) == _w("a b c")
    # 4 voters split 2-2 on a substitution: the first voter's word
    assert rover_vote([_w("a y"), _w("a z"), _w("a z"), _w("a y")]) == _w("a y")
    assert rover_vote([_w("a z"), _w("a y"), _w("a y"), _w("a z")]) == _w("a z")


def test_tie_keeps_an_insertion_as_sctk_does():
    # the documented difference from "first voter wins": a slot created by an insertion
    # lists the inserted word before the earlier voters' NULLs
    assert rover_vote([_w("a"), _w("a x")]) == _w("a x")
    assert rover_vote([_w("a"), _w("a x"), _w("a x"), _w("a")]) == _w("a x")


def test_identical_and_empty_hypotheses():
    assert rover_vote([_w("a b"), _w("a b"), _w("a b")]) == _w("a b")
    assert rover_vote([[], [], []]) == []
    assert rover_vote([[], [], _w("a")]) == []
    assert rover_vote([_w("a"), [], _w("a")]) == _w("a")
    assert rover_vote([[], _w("a b"), _w("a b")]) == _w("a b")


def test_units_by_language():
    assert unit_for_vote("Japanese") == "char"
    assert unit_for_vote("Thai") == "char"
    assert unit_for_vote("ja") == "char"
    assert unit_for_vote("English-American") == "word"
    assert unit_for_vote("Korean") == "word"  # spaces are part of Korean text
    assert unit_for_vote(None) == "word"


def test_char_unit_for_japanese_and_thai():
    hyps = [{"j1": "今日 は 晴れ", "t1": "สวัสดี ครับ", "e1": "good day sir"},
            {"j1": "今日は雨", "t1": "สวัสดีคะ", "e1": "good day sir"},
            {"j1": "今日わ晴れ", "t1": "สวัสดี ครับ", "e1": "good bay sir"}]
    utt2lang = {"j1": "Japanese", "t1": "Thai", "e1": "English-American"}
    res = vote_hypotheses(hyps, ["a", "b", "c"], utt2lang)
    # characters vote one by one, spaces dropped, joined without spaces
    assert res.texts["j1"] == "今日は晴れ"
    assert res.texts["t1"] == "สวัสดีครับ"
    assert res.texts["e1"] == "good day sir"
    assert res.units == {"j1": "char", "t1": "char", "e1": "word"}
    # without utt2lang everything votes by words: the unsegmented hypotheses are one "word"
    # each and lose to NULL where voter 1 has spaces
    res = vote_hypotheses(hyps, ["a", "b", "c"])
    assert res.texts["j1"] == "は 晴れ"
    assert vote_hypotheses(hyps, ["a", "b", "c"], unit="char").texts["e1"] == "gooddaysir"


def test_empty_votes_are_counted():
    hyps = [{"u1": "a b", "u2": ""}, {"u1": "a b", "u2": ""}, {"u1": "a c", "u2": "x"}]
    res = vote_hypotheses(hyps, ["a", "b", "c"])
    assert res.texts == {"u1": "a b", "u2": ""}
    assert res.empty == ["u2"]


def test_fewer_than_two_voters_is_an_error():
    with pytest.raises(ValueError, match="at least 2"):
        vote_hypotheses([{"u1": "a"}], ["only/text"])
    with pytest.raises(ValueError, match="at least 2"):
        vote_hypotheses([], [])


def test_two_voters_warn(caplog):
    with caplog.at_level(logging.WARNING):
        res = vote_hypotheses([{"u": "a b"}, {"u": "a c"}], ["x/text", "y/text"])
    assert res.texts == {"u": "a b"}
    assert "only 2 voters" in caplog.text and "x/text" in caplog.text


def test_different_utterance_sets_are_an_error():
    hyps = [{"u1": "a", "u2": "b", "u3": "c"}, {"u1": "a", "u2": "b", "u3": "c"},
            {"u1": "a", "u4": "d"}]
    with pytest.raises(ValueError) as e:
        vote_hypotheses(hyps, ["a/text", "b/text", "c/text"])
    msg = str(e.value)
    assert "a/text" in msg and "c/text" in msg
    assert "'u2'" in msg and "'u3'" in msg and "'u4'" in msg


def test_utt2lang_must_cover_the_utterances():
    hyps = [{"u1": "a", "u2": "b"}] * 3
    with pytest.raises(ValueError, match="no language for 1 .*'u2'"):
        vote_hypotheses(hyps, ["a", "b", "c"], {"u1": "Japanese"}, utt2lang_name="x/utt2lang")


# ----------------------------------------------------------------------- CLI


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def test_cli_writes_votes_and_dropped(tmp_path, capsys):
    a = _write(tmp_path / "a", ["u1 hello big world", "u2 こんにちは", "u3 x"])
    b = _write(tmp_path / "b", ["u1 hello world", "u2 こんにちわ", "u3"])
    c = _write(tmp_path / "c", ["u1 hello big word", "u2 こんいちは", "u3"])
    lang = _write(tmp_path / "utt2lang", ["u1 English-American", "u2 Japanese",
                                          "u3 English-British", "u9 Thai"])
    out = tmp_path / "vote" / "text"
    assert main(["--hyp", a, "--hyp", b, "--hyp", c, "--utt2lang", lang,
                 "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == "u1 hello big world\nu2 こんにちは\n"
    assert (tmp_path / "vote" / "text.dropped").read_text() == "u3\n"
    printed = capsys.readouterr().out
    assert "2 written" in printed and "1 empty votes dropped" in printed


def test_cli_errors(tmp_path, capsys):
    a = _write(tmp_path / "a", ["u1 a", "u2 b"])
    b = _write(tmp_path / "b", ["u1 a"])
    out = str(tmp_path / "out")
    assert main(["--hyp", a, "--out", out]) == 1
    assert "ERROR: a vote needs at least 2" in capsys.readouterr().err
    assert main(["--hyp", a, "--hyp", b, "--hyp", a, "--out", out]) == 1
    err = capsys.readouterr().err
    assert "ERROR:" in err and "'u2'" in err and str(tmp_path / "b") in err
    bad = tmp_path / "bad"
    bad.write_text("u1 a\n u2 b\n")
    assert main(["--hyp", a, "--hyp", str(bad), "--hyp", a, "--out", out]) == 1
    assert f"{bad}:2" in capsys.readouterr().err
    assert main(["--hyp", a, "--hyp", a, "--hyp", str(tmp_path / "missing"),
                 "--out", out]) == 1
    assert "ERROR:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------- sctk's rover


def _random_cases(seed, n_voters, n_utts, vocab="abcde", max_len=8, empty_rate=0.1):
    rng = random.Random(seed)
    cases = {}
    for i in range(n_utts):
        voc = vocab[: rng.randint(2, len(vocab))]
        base = [rng.choice(voc) for _ in range(rng.randint(0, max_len))]
        hyps = []
        for _ in range(n_voters):
            if rng.random() < empty_rate:
                hyps.append([])
                continue
            h = list(base)
            for _ in range(rng.randint(0, 4)):
                op = rng.choice("sdi")
                if op == "s" and h:
                    h[rng.randrange(len(h))] = rng.choice(voc)
                elif op == "d" and h:
                    del h[rng.randrange(len(h))]
                elif op == "i":
                    h.insert(rng.randint(0, len(h)), rng.choice(voc))
            hyps.append(h)
        cases[f"utt{i:04d}"] = hyps
    return cases


@needs_rover
@pytest.mark.parametrize("n_voters", [2, 3, 4, 5])
def test_python_equals_sctk_rover(n_voters):
    cases = _random_cases(n_voters, n_voters, 400)
    ours = {u: rover_vote(h) for u, h in cases.items()}
    theirs = rover_sctk(cases)
    bad = [u for u in cases if ours[u] != theirs[u]]
    assert not bad, [(cases[u], ours[u], theirs[u]) for u in bad[:3]]


@needs_rover
def test_python_equals_sctk_rover_long_and_special_tokens():
    # long character sequences (float32 costs, many NULL arcs), and tokens that sctk would
    # interpret if they reached it verbatim
    cases = _random_cases(7, 5, 40, vocab="abcdefghij", max_len=60, empty_rate=0.0)
    special = ["@", "{a", "(uh)", "x:y", "b*", "A", "a", "%sync%time", "é", "ก"]
    cases.update(_random_cases(8, 3, 200, vocab=special, max_len=6, empty_rate=0.05))
    cases = {f"{u}_{i}": h for i, (u, h) in enumerate(cases.items())}
    ours = {u: rover_vote(h) for u, h in cases.items()}
    theirs = rover_sctk(cases)
    bad = [u for u in cases if ours[u] != theirs[u]]
    assert not bad, [(cases[u], ours[u], theirs[u]) for u in bad[:3]]


@needs_rover
def test_cli_sctk_method_equals_python(tmp_path):
    cases = _random_cases(11, 3, 60)
    paths = []
    for v in range(3):
        paths.append(_write(tmp_path / f"h{v}", [f"{u} {' '.join(h[v])}".rstrip()
                                                 for u, h in cases.items()]))
    args = sum((["--hyp", p] for p in paths), [])
    assert main(args + ["--out", str(tmp_path / "py" / "text")]) == 0
    assert main(args + ["--out", str(tmp_path / "sc" / "text"), "--method", "sctk"]) == 0
    for name in ("text", "text.dropped"):
        assert (tmp_path / "py" / name).read_text() == (tmp_path / "sc" / name).read_text()
    res = vote_files(paths, method="sctk")
    assert res.method == "sctk"


def test_missing_rover_is_a_clear_error(tmp_path):
    with pytest.raises(V.RoverError, match="not found"):
        rover_sctk({"u": [["a"], ["a"]]}, rover=str(tmp_path / "no_rover"))
