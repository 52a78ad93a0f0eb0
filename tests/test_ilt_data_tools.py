"""ILT data tools (egs2/mlc_slm): the Feed-Back mix sampler (espnet_sllm.data.sample_hours) and
long-audio chunking / beams per language at decoding (espnet_sllm.decoding.chunking)."""
import pytest

from espnet_sllm.data import sample_hours as sh
from espnet_sllm.data.kaldi_dir import (Segment, Utterance, read_data_dir, read_kv,
                                        write_data_dir, write_kv)
from espnet_sllm.decoding.chunking import (
    NO_SPACE_LANGUAGES,
    chunk_bounds,
    join_chunks,
    parse_beam_per_lang,
    split_by_beam,
)


def make_dir(path, name, n, seconds=36.0, lang="English", segments=False, spk=None):
    """A data directory of ``n`` utterances of ``seconds`` each, with utt2dur (no audio)."""
    utts = []
    for i in range(n):
        s = spk or f"{name}spk{i // 10:03d}"
        uid = f"{s}-{name}{i:05d}"
        seg = Segment(f"{s}-rec", 100.0 * i, 100.0 * i + seconds) if segments else None
        utts.append(Utterance(uid, f"/audio/{name}/{s}.wav" if segments else
                              f"/audio/{name}/{uid}.wav", spk=s, text=f"text {i}", lang=lang,
                              segment=seg))
    write_data_dir(path, utts)
    write_kv(path / "utt2dur", {u.uttid: repr(seconds) for u in utts})
    return path


@pytest.fixture
def dirs(tmp_path):
    return {
        "train": make_dir(tmp_path / "train", "tr", 10, lang="Japanese", segments=True),
        "mls": make_dir(tmp_path / "mls", "ml", 100, lang="German"),   # 1 h
        "cv": make_dir(tmp_path / "cv", "cv", 200, lang="French"),     # 2 h
    }


def ids(d):
    return set(read_kv(d / "utt2spk"))


def test_mix_keeps_whole_dirs_and_fills_the_budget_from_one_pooled_order(dirs, tmp_path):
    out = tmp_path / "mix"
    res = sh.sample_hours(str(out), keep=[str(dirs["train"])],
                          pool=[str(dirs["mls"]), str(dirs["cv"])], hours=1.1, seed=0)
    got = ids(out)
    assert ids(dirs["train"]) <= got                      # kept whole
    pooled = got - ids(dirs["train"])
    assert len(pooled) == 100 == len(res.chosen)          # 1.0 h left = 100 utts of 36 s
    from_mls = len(pooled & ids(dirs["mls"]))
    assert 15 < from_mls < 55                             # about 1/3: proportional to hours
    assert res.short_hours == 0
    # the keep dir has segments, the pools not: the pools' utterances get whole-recording ones
    segs = read_kv(out / "segments")
    u = sorted(pooled)[0]
    assert segs[u] == f"{u} 0.00 36.00"
    assert read_kv(out / "utt2dur")[u] == "36.0"
    rows = (out / "hours.tsv").read_text().splitlines()
    assert rows[0] == "kind\tname\trole\tutterances\thours\tavailable_hours"
    assert "corpus\ttrain\tkeep\t10\t0.1000\t0.1000" in rows
    assert f"corpus\tmls\tpool\t{from_mls}\t{from_mls * 0.01:.4f}\t1.0000" in rows
    assert f"language\tFrench\t-\t{100 - from_mls}\t{(100 - from_mls) * 0.01:.4f}\t2.0000" in rows
    assert rows[-1] == "total\tall\t-\t110\t1.1000\t3.1000"


def test_mix_is_seeded_and_nested(dirs, tmp_path):
    def mix(out, hours, seed=0):
        sh.sample_hours(str(tmp_path / out), keep=[str(dirs["train"])],
                        pool=[str(dirs["mls"]), str(dirs["cv"])], hours=hours, seed=seed)
        return ids(tmp_path / out)

    small = mix("a", 0.6)
    assert mix("b", 0.6) == small                        # same seed, same set
    assert small < mix("c", 2.0)                          # larger budget is a superset
    assert mix("d", 0.6, seed=1) != small
    # the pool order does not depend on the option order
    sh.sample_hours(str(tmp_path / "e"), keep=[str(dirs["train"])],
                    pool=[str(dirs["cv"]), str(dirs["mls"])], hours=0.6, seed=0)
    assert ids(tmp_path / "e") == small


def test_budget_below_the_keep_dirs_is_an_error(dirs, tmp_path, capsys):
    with pytest.raises(ValueError, match=r"--hours 0.05 is smaller than the 0.1000 h of the "
                                         r"--keep directories \(train 0.1000 h\)"):
        sh.sample_hours(str(tmp_path / "m"), keep=[str(dirs["train"])], pool=[str(dirs["mls"])],
                        hours=0.05, seed=0)
    # exactly the keep hours: no pool utterance
    res = sh.sample_hours(str(tmp_path / "m"), keep=[str(dirs["train"])],
                          pool=[str(dirs["mls"])], hours=0.1, seed=0)
    assert res.chosen == [] and ids(tmp_path / "m") == ids(dirs["train"])
    rc = sh.main(["--keep", str(dirs["train"]), "--pool", str(dirs["mls"]), "--hours", "0.01",
                  "--seed", "0", "--out", str(tmp_path / "m2")])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("sample_hours: ERROR: the budget --hours 0.01 is smaller")
    assert "Traceback" not in err


def test_pool_too_small_takes_everything_and_says_so(dirs, tmp_path, capsys):
    rc = sh.main(["--keep", str(dirs["train"]), "--pool", str(dirs["mls"]), "--hours", "1.6",
                  "--seed", "3", "--out", str(tmp_path / "m")])
    out = capsys.readouterr().out
    assert rc == 0
    assert ids(tmp_path / "m") == ids(dirs["train"]) | ids(dirs["mls"])
    assert "total\tall\t-\t110\t1.1000\t1.1000" in out
    assert "WARNING: the pools were 0.5000 h short of the budget" in out


def test_per_corpus_cap(dirs, tmp_path, capsys):
    res = sh.sample_hours(str(tmp_path / "m"), pool=[str(dirs["mls"]), str(dirs["cv"])],
                          hours=2.0, seed=0, per_corpus_hours={"mls": 0.2})
    got = ids(tmp_path / "m")
    assert len(got & ids(dirs["mls"])) == 20 and len(got) == 200
    assert res.capped == {"mls": 80}
    # the capped part is the prefix of mls's own order: the same as subset --hours 0.2
    from espnet_sllm.data.subset import subset_data_dir
    subset_data_dir(str(dirs["mls"]), str(tmp_path / "s"), seed=0, hours=0.2)
    assert got & ids(dirs["mls"]) == ids(tmp_path / "s")
    with pytest.raises(ValueError, match="--per_corpus_hours: train is not a --pool name"):
        sh.sample_hours(str(tmp_path / "x"), keep=[str(dirs["train"])], pool=[str(dirs["mls"])],
                        hours=1, seed=0, per_corpus_hours={"train": 1})
    for bad in ("mls", "mls=0", "mls=x", "=3"):
        with pytest.raises(ValueError, match="expected NAME=HOURS"):
            sh.parse_caps([bad])
    rc = sh.main(["--pool", str(dirs["mls"]), "--pool", str(dirs["cv"]), "--hours", "2",
                  "--seed", "0", "--out", str(tmp_path / "c"), "--per_corpus_hours", "mls=0.2"])
    assert rc == 0 and "passed over for caps: mls=80" in capsys.readouterr().out


def test_id_collision_names_both_dirs_and_prefix_ids_avoid_it(tmp_path):
    a = make_dir(tmp_path / "a" / "train", "x", 5, spk="s")
    b = make_dir(tmp_path / "b" / "train", "x", 5, spk="s")
    with pytest.raises(ValueError, match="two inputs are named 'train'"):
        sh.sample_hours(str(tmp_path / "m"), pool=[str(a), str(b)], hours=0.05, seed=0)
    with pytest.raises(ValueError, match=rf"'s-x00000' is in both {a} and {b} \(--prefix_ids"):
        sh.sample_hours(str(tmp_path / "m"), pool=[f"a={a}", f"b={b}"], hours=0.05, seed=0)
    sh.sample_hours(str(tmp_path / "m"), pool=[f"a={a}", f"b={b}"], hours=0.1, seed=0,
                    prefix_ids=True)
    utts = {u.uttid: u for u in read_data_dir(tmp_path / "m")}
    assert set(utts) == {f"{c}-s-x{i:05d}" for c in "ab" for i in range(5)}
    assert utts["a-s-x00001"].spk == "a-s" and utts["b-s-x00001"].spk == "b-s"
    assert read_kv(tmp_path / "m" / "utt2dur")["b-s-x00004"] == "36.0"


def test_bad_inputs(dirs, tmp_path):
    with pytest.raises(ValueError, match="is also an input"):
        sh.sample_hours(str(dirs["mls"]), pool=[str(dirs["mls"])], hours=1, seed=0)
    with pytest.raises(ValueError, match="no such directory"):
        sh.sample_hours(str(tmp_path / "m"), pool=[str(tmp_path / "nope")], hours=1, seed=0)
    t = tmp_path / "t"
    write_data_dir(t, [Utterance("u1", "", text="hi"), Utterance("u2", "/a.wav", text="yo")])
    with pytest.raises(ValueError, match="1 text-only utterance"):
        sh.sample_hours(str(tmp_path / "m"), pool=[str(t)], hours=1, seed=0)
    # context files in some inputs only: combine_data_dirs' error, naming the inputs
    write_kv(dirs["train"] / "text_prev", {u: "" for u in read_kv(dirs["train"] / "utt2spk")})
    with pytest.raises(ValueError, match=rf"text_prev is in {dirs['train']} but not in "
                                         rf"{dirs['mls']}; .* --drop text_prev text_next"):
        sh.sample_hours(str(tmp_path / "m"), keep=[str(dirs["train"])],
                        pool=[str(dirs["mls"])], hours=0.2, seed=0)
    sh.sample_hours(str(tmp_path / "m"), keep=[str(dirs["train"])], pool=[str(dirs["mls"])],
                    hours=0.2, seed=0, drop=["text_prev"])
    assert not (tmp_path / "m" / "text_prev").exists() and len(ids(tmp_path / "m")) == 20


# ---------------------------------------------------------------- chunking and beams

def test_chunk_bounds_boundaries():
    assert chunk_bounds(480000) == [(0, 480000)]                    # exactly 30 s: one chunk
    assert chunk_bounds(480001) == [(0, 240000), (240000, 480001)]  # 30 s + 1: two equal
    assert chunk_bounds(1) == [(0, 1)]
    assert chunk_bounds(0) == [(0, 0)]
    assert chunk_bounds(16000 * 61, fs=16000) == [(0, 325333), (325333, 650666),
                                                  (650666, 976000)]
    assert chunk_bounds(8000 * 10, fs=8000, max_seconds=5.0) == [(0, 40000), (40000, 80000)]
    assert chunk_bounds(1601, fs=16000, max_seconds=0.1) == [(0, 800), (800, 1601)]
    for n in (479999, 480000, 480001, 959999, 960000, 960001, 12345678):
        b = chunk_bounds(n)
        assert len(b) == -(-n // 480000)
        assert b[0][0] == 0 and b[-1][1] == n
        assert all(e == s2 for (_, e), (s2, _) in zip(b, b[1:]))
        lengths = [e - s for s, e in b]
        assert max(lengths) <= 480000 and max(lengths) - min(lengths) <= 1
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="num_samples"):
            chunk_bounds(bad)
    with pytest.raises(ValueError, match="less than one sample"):
        chunk_bounds(10, fs=16000, max_seconds=1e-5)


def test_join_chunks():
    assert join_chunks(["今日は", " 晴れです "], "Japanese") == "今日は晴れです"
    assert join_chunks(["สวัสดี", "ครับ"], "Thai") == "สวัสดีครับ"
    assert join_chunks(["你好", "世界"], "zh-CN") == "你好世界"
    assert join_chunks(["안녕하세요", "여러분"], "Korean") == "안녕하세요 여러분"
    assert join_chunks(["hello", "", "world "], "English-American") == "hello world"
    assert join_chunks(["xin chào", "các bạn"], "Vietnamese") == "xin chào các bạn"
    assert {"japanese", "thai", "chinese", "yue"} <= NO_SPACE_LANGUAGES
    assert "korean" not in NO_SPACE_LANGUAGES


LANGS = ["English-American", "Japanese", "Thai", "Vietnamese", "French"]


def test_parse_beam_per_lang():
    assert parse_beam_per_lang("Thai=1,Japanese=1,Vietnamese=1", LANGS) == {
        "Thai": 1, "Japanese": 1, "Vietnamese": 1}
    assert parse_beam_per_lang(" Thai = 2 ", LANGS) == {"Thai": 2}
    assert parse_beam_per_lang("", LANGS) == {}
    with pytest.raises(ValueError, match=r"unknown language 'thai' .*valid: English-American, "
                                         r"Japanese, Thai, Vietnamese, French"):
        parse_beam_per_lang("thai=1", LANGS)
    for spec in ("Thai", "Thai=", "=1", "Thai=1,,Japanese=1", "Thai=1;Japanese=1"):
        with pytest.raises(ValueError, match="bad item|unknown language|integer >= 1"):
            parse_beam_per_lang(spec, LANGS)
    for spec in ("Thai=0", "Thai=x", "Thai=1.5", "Thai=-1", "Thai=１"):
        with pytest.raises(ValueError, match="integer >= 1"):
            parse_beam_per_lang(spec, LANGS)
    with pytest.raises(ValueError, match="'Thai' is given twice"):
        parse_beam_per_lang("Thai=1,Thai=2", LANGS)


def test_split_by_beam():
    utt2lang = {"a": "Thai", "b": "French", "c": "Japanese", "d": "French"}
    per = parse_beam_per_lang("Thai=1,Japanese=1", LANGS)
    assert split_by_beam(["d", "a", "b", "c"], utt2lang, 4, per) == {4: ["d", "b"],
                                                                     1: ["a", "c"]}
    assert split_by_beam(["b"], utt2lang, 1, per) == {1: ["b"]}
    with pytest.raises(ValueError, match="utterance 'z' has no language label"):
        split_by_beam(["a", "z"], utt2lang, 4, per)
    with pytest.raises(ValueError, match="utterance 'b': unknown language 'French'"):
        split_by_beam(["a", "b"], utt2lang, 4, per, languages=["Thai", "Japanese"])
    with pytest.raises(ValueError, match="default beam"):
        split_by_beam(["a"], utt2lang, 0, per)


def test_sample_hours_without_pools_combines_the_keep_dirs_whole(dirs, tmp_path):
    keep = [f"a={dirs['train']}", f"b={dirs['mls']}"]
    result = sh.sample_hours(str(tmp_path / "out"), keep=keep, prefix_ids=True)
    got = sorted(u.uttid for u in read_data_dir(tmp_path / "out"))
    want = sorted([f"a-{i}" for i in ids(dirs["train"])] + [f"b-{i}" for i in ids(dirs["mls"])])
    assert got == want and result.short_hours == 0
    with pytest.raises(ValueError, match="--hours is required"):
        sh.sample_hours(str(tmp_path / "out2"), keep=[dirs["train"]], pool=[dirs["mls"]])
