"""Tests of espnet_sllm.data.balance (language balancing with a temperature, as in XLSR)."""
import math
from collections import Counter

import pytest

from espnet_sllm.data.balance import balance_by_language, language_shares, main
from espnet_sllm.data.kaldi_dir import (
    Segment,
    Utterance,
    read_data_dir,
    read_kv,
    validate_data_dir,
    write_data_dir,
    write_kv,
)

COUNTS = {"en": 80, "de": 15, "pl": 5}


def _utts(counts=COUNTS, segments=False):
    utts = []
    for lang, n in counts.items():
        for i in range(n):
            spk = f"mls-{lang}-{i % 3}"
            uttid = f"{spk}-1_{i:06d}"
            utts.append(Utterance(
                uttid=uttid, wav=f"/db/{lang}/{i}.flac", spk=spk, text=f"text {lang} {i}",
                lang=lang, segment=Segment(f"rec-{lang}-{i}", 0.5, 2.0) if segments else None))
    return utts


def _langs(utts):
    return Counter(u.lang for u in utts)


def test_shares_follow_the_formula():
    for alpha in (0.3, 0.5, 0.7):
        q = language_shares(COUNTS, alpha)
        norm = sum((n / 100) ** alpha for n in COUNTS.values())
        for lang, n in COUNTS.items():
            assert q[lang] == pytest.approx((n / 100) ** alpha / norm)
        assert sum(q.values()) == pytest.approx(1.0)
        # Flattening: the smallest language gains, the largest loses.
        assert q["pl"] > 0.05 and q["en"] < 0.80

    utts, report = balance_by_language(_utts(), alpha=0.5)
    q = language_shares(COUNTS, 0.5)
    for lang, n in COUNTS.items():
        assert report[lang]["original"] == n
        assert report[lang]["share"] == pytest.approx(q[lang])
        assert report[lang]["target"] == math.floor(100 * q[lang] + 0.5)
        assert abs(_langs(utts)[lang] - 100 * q[lang]) <= 0.5
    # q = 0.594, 0.257, 0.149 -> 59, 26, 15 utterances.
    assert _langs(utts) == {"en": 59, "de": 26, "pl": 15}
    assert len(utts) == 100


def test_subsample_and_copies():
    originals = {u.uttid: u for u in _utts()}
    utts, _ = balance_by_language(_utts(), alpha=0.5, seed=3)
    ids = [u.uttid for u in utts]
    assert len(ids) == len(set(ids)) and ids == sorted(ids)

    en = [u for u in utts if u.lang == "en"]
    assert all(u.uttid in originals for u in en)  # subsampled without replacement
    de = [u.uttid for u in utts if u.lang == "de"]
    assert sum(i in originals for i in de) == 15  # every German utterance once ...
    assert sum(i.endswith("-rep1") for i in de) == 11  # ... and 11 distinct copies
    pl = [u.uttid for u in utts if u.lang == "pl"]
    assert Counter(i.rsplit("-", 1)[1] if "-rep" in i else "orig" for i in pl) == {
        "orig": 5, "rep1": 5, "rep2": 5}

    for u in utts:
        if "-rep" in u.uttid:
            src = originals[u.uttid.rsplit("-rep", 1)[0]]
            assert (u.wav, u.spk, u.text, u.lang) == (src.wav, src.spk, src.text, src.lang)
            assert u.uttid.startswith(u.spk + "-")


def test_copies_keep_segments(tmp_path):
    utts, _ = balance_by_language(_utts(segments=True), alpha=0.5)
    rep = next(u for u in utts if u.uttid.endswith("-rep2"))
    assert rep.segment.recid.startswith("rec-pl-")
    write_data_dir(tmp_path / "d", utts)
    assert validate_data_dir(tmp_path / "d")["utterances"] == 100


def test_alpha_one_is_the_same_set():
    utts, report = balance_by_language(_utts(), alpha=1.0, seed=7)
    assert utts == sorted(_utts(), key=lambda u: u.uttid)
    assert {k: r["target"] for k, r in report.items()} == COUNTS
    # With a total, alpha=1 keeps the proportions (halves round up).
    utts, report = balance_by_language(_utts(), alpha=1.0, total=50)
    assert _langs(utts) == {"en": 40, "de": 8, "pl": 3}


def test_total_and_determinism():
    a, report = balance_by_language(_utts(), alpha=0.5, total=300, seed=1)
    b, _ = balance_by_language(_utts(), alpha=0.5, total=300, seed=1)
    c, _ = balance_by_language(_utts(), alpha=0.5, total=300, seed=2)
    assert [u.uttid for u in a] == [u.uttid for u in b]
    assert [u.uttid for u in a] != [u.uttid for u in c]
    assert _langs(a) == {k: r["target"] for k, r in report.items()} == {
        "en": 178, "de": 77, "pl": 45}
    assert max(int(u.uttid.rsplit("-rep", 1)[1]) for u in a if "-rep" in u.uttid) == 8
    # One language's draws do not depend on the other languages of the set.
    only_de = [u for u in _utts() if u.lang != "en"]
    d, _ = balance_by_language(only_de + [u for u in _utts() if u.lang == "en"], 0.5,
                               total=300, seed=1)
    assert [u.uttid for u in d] == [u.uttid for u in a]


@pytest.mark.parametrize("kwargs,message", [
    ({"alpha": 0.0}, r"alpha must be in \(0, 1\]"),
    ({"alpha": 1.5}, r"alpha must be in \(0, 1\]"),
    ({"alpha": 0.5, "total": 0}, "total must be a positive number"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        balance_by_language(_utts(), **kwargs)


def test_needs_languages():
    utts = _utts()
    utts[3].lang = None
    with pytest.raises(ValueError, match="has no language"):
        balance_by_language(utts, 0.5)


def test_cli(tmp_path, capsys):
    src, out = tmp_path / "train", tmp_path / "train_bal"
    write_data_dir(src, _utts())
    write_kv(src / "spk2gender", {"mls-de-0": "f", "mls-en-1": "m", "mls-xx-9": "m"})
    assert main(["--in", str(src), "--out", str(out), "--alpha", "0.5", "--seed", "0"]) == 0
    printed = capsys.readouterr().out
    assert validate_data_dir(out)["utterances"] == 100
    assert _langs(read_data_dir(out)) == {"en": 59, "de": 26, "pl": 15}
    assert read_kv(out / "spk2gender") == {"mls-de-0": "f", "mls-en-1": "m"}
    assert "language     original     p_l     target     q_l     change" in printed
    assert "pl                  5  0.0500         15  0.1485        +10" in printed
    assert "total             100  1.0000        100  1.0000         +0" in printed

    assert main(["--in", str(src), "--out", str(out), "--alpha", "2"]) == 1
    assert "ERROR: alpha must be in (0, 1], got 2.0" in capsys.readouterr().err
    (src / "utt2lang").unlink()
    assert main(["--in", str(src), "--out", str(out), "--alpha", "0.5"]) == 1
    assert "no utt2lang" in capsys.readouterr().err
