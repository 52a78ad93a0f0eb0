"""egs2/aishell_wmt/asr1 local/data.sh, part B (issue #13): TTS of WMT19 / Alpaca-zh (fake
backend), the held-out sets, the training sets of datasets 1-3 by hours (nested), the text-only
qa copies and the field conventions, on tiny corpora in the release layouts, in a throw-away
copy of the recipe."""
import json

import numpy as np
import pytest
import soundfile

from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.testing.recipe import copy_recipe, run_recipe
from tests.data.corpora.test_aishell2 import make_tree as make_aishell2
from tests.data.corpora.test_wenetspeech import _opus, _seg, _write_json
from tests.data.corpora.test_wmt19 import make_root as make_wmt19

RECIPE = "egs2/aishell_wmt/asr1"
FAKE = "espnet_sllm.testing.tts:FakeTTS"
# 1 h of the paper = 0.2 s here: d1 = AISHELL 18 s + WMT19 20 s + Alpaca 6 s; d2 = AISHELL all
# (36 s) + WMT19 40 s + Alpaca all; d3 = d2 + WenetSpeech 40 s.
SCALE = "1/18000"
OPTS = ["--hours_scale", SCALE, "--n_valid", "1", "--n_alpaca_test", "2", "--seed", "3",
        "--nj", "2", "--tts", FAKE, "--tts_conf", "sec_per_char=0.5;n_voices=4"]
CHARS = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过"


def _sentence(i, n=8):
    return "".join(CHARS[(i * 7 + k * 3) % len(CHARS)] for k in range(n))


def _aishell(root):
    """Extracted layout: 2 s per WAV; train 12, dev 4, test 3 utterances."""
    cdir = root / "data_aishell"
    lines = []
    plan = [("train", "S0002", 6), ("train", "S0003", 6), ("dev", "S0724", 4), ("test", "S0764", 3)]
    for split, spk, n in plan:
        d = cdir / "wav" / split / spk
        d.mkdir(parents=True)
        for k in range(n):
            uid = f"BAC009{spk}W{k + 1:04d}"
            soundfile.write(d / f"{uid}.wav", np.full(32000, 0.01, np.float32), 16000)
            lines.append(f"{uid} {' '.join(_sentence(len(lines), 6))}")
    (cdir / "transcript").mkdir()
    (cdir / "transcript" / "aishell_transcript_v0.8.txt").write_text("\n".join(lines) + "\n",
                                                                       encoding="utf-8")


def _wmt19(root):
    # pair 12 and test segment 4: 64 letters, 32 s spoken (over 30 s)
    nc = [f"English sentence {i}.\t{_sentence(i, 8 + i % 3)}。" for i in range(12)]
    nc.append(f"A long one.\t{_sentence(12, 64)}")
    segs = "".join(f'<seg id="{k}">{_sentence(40 + k, 64 if k == 4 else 8)}</seg>\n'
                   for k in (1, 2, 3, 4))
    refs = "".join(f'<seg id="{k}">Test reference {k}.</seg>\n' for k in (1, 2, 3, 4))
    src = (f'<srcset setid="newstest2019" srclang="any">\n<doc docid="d1">\n{segs}</doc>\n'
           '</srcset>\n')
    ref = f'<refset setid="newstest2019" trglang="en">\n<doc docid="d1">\n{refs}</doc>\n</refset>\n'
    make_wmt19(root, nc=nc, src=src, ref=ref)


def _alpaca(root):
    root.mkdir()
    recs = [{"instruction": _sentence(100 + i, 6) + "？", "input": "", "output": f"答案{i}。"}
            for i in range(12)]
    (root / "alpaca_data_zh_51k.json").write_text(json.dumps(recs, ensure_ascii=False),
                                                  encoding="utf-8")


def _wenetspeech(root):
    """Two 30-s recordings of 6 M segments (5 s each), and one L-only segment (not M)."""
    audios = []
    for r in range(2):
        aid = f"Y000000000{r}_rec"
        _opus(root / f"audio/train/youtube/B00000/{aid}.opus", 31.0, 16000)
        segs = [_seg(f"{aid}_S{k:05d}", 5.0 * k, 5.0 * k + 5.0, _sentence(200 + 6 * r + k),
                     ["M", "L"]) for k in range(6)]
        segs.append(_seg(f"{aid}_S00006", 30.0, 31.0, "不在M里", ["L"]))
        audios.append({"aid": aid, "path": f"audio/train/youtube/B00000/{aid}.opus",
                       "segments": segs})
    _write_json(root, audios)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    db = tmp_path_factory.mktemp("db")
    _aishell(db / "aishell")
    make_aishell2(db / "aishell2")
    _wmt19(db / "wmt19")
    _alpaca(db / "alpaca_zh")
    _wenetspeech(db / "wenetspeech")
    return {"AISHELL": str(db / "aishell"), "AISHELL2_TEST": str(db / "aishell2"),
            "WMT19": str(db / "wmt19"), "ALPACA_ZH": str(db / "alpaca_zh"),
            "WENETSPEECH": str(db / "wenetspeech")}


def _kv(d, name):
    return read_kv(d / name)


def _tasks(d):
    out = {}
    for u, t in _kv(d, "utt2task").items():
        out.setdefault(t, set()).add(u)
    return out


def _hours(d, ids):
    dur = _kv(d, "utt2dur")
    return sum(float(dur[u]) for u in ids) / 3600


@pytest.fixture(scope="module")
def run(corpora, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("r")
    recipe = copy_recipe(RECIPE, tmp / "r")
    proc = run_recipe(recipe, ["local/data.sh", *OPTS], **corpora)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return recipe, proc


def test_sets_and_conventions(run):
    recipe, proc = run
    data = recipe / "data"
    for name in ("train_d1", "train_d2", "train_d3", "valid_mt", "newstest2019", "alpaca_test",
                 "aishell2_test"):
        validate_data_dir(data / name)
    reader = {n: (_kv(data / n, "text"), _kv(data / n, "text_tgt"))
              for n in ("wmt19_train", "wmt19_test", "alpaca_zh")}
    for name in ("train_d1", "train_d2", "train_d3", "valid_mt", "alpaca_test"):
        d = data / name
        tasks, text, src, wav = _tasks(d), _kv(d, "text"), _kv(d, "text_src"), _kv(d, "wav.scp")
        assert set(_kv(d, "utt2lang").values()) == {"zh"}
        assert not (d / "text_tgt").exists() and not (d / "segments").exists()
        for u in tasks.get("asr", ()):
            assert text[u] == src[u] and wav[u]
        for u in tasks.get("st", ()):  # text = English, text_src = Chinese
            assert (src[u], text[u]) == (reader["wmt19_train"][0][u], reader["wmt19_train"][1][u])
            assert wav[u].endswith(f"/{u}.wav") and "/wmt19_" in wav[u]
        for u in tasks.get("sqa", ()):  # text = answer, text_src = question
            assert (src[u], text[u]) == (reader["alpaca_zh"][0][u], reader["alpaca_zh"][1][u])
            assert wav[u]
        # every spoken Alpaca record has its text-only qa copy: empty wav.scp entry, id + -qa
        assert tasks["qa"] == {u + "-qa" for u in tasks["sqa"]}, name
        for u in tasks["qa"]:
            assert wav[u] == "" and _kv(d, "utt2dur")[u] == "0.0"
            assert (src[u], text[u]) == (src[u[:-3]], text[u[:-3]])
        assert len(tasks) == (4 if name != "alpaca_test" else 2)
    # valid_mt: 1 utterance per task (--n_valid 1) + the qa copy
    assert {t: len(v) for t, v in _tasks(data / "valid_mt").items()} == \
        {"asr": 1, "st": 1, "sqa": 1, "qa": 1}
    assert len(_tasks(data / "alpaca_test")["sqa"]) == 2
    # newstest2019: the whole test set spoken, English targets, utt2tgtlang en
    nt = data / "newstest2019"
    # (the test set keeps its 32-s utterance)
    assert set(_kv(nt, "utt2task").values()) == {"st"} and len(_kv(nt, "text")) == 4
    assert float(_kv(nt, "utt2dur")["wmt19nt-d1-0004"]) > 30
    assert _kv(nt, "text") == reader["wmt19_test"][1]
    assert _kv(nt, "text_src") == reader["wmt19_test"][0]
    assert set(_kv(nt, "utt2tgtlang").values()) == {"en"}
    # TTS logs
    log = [json.loads(x) for x in (data / "wmt19_test_tts" / "tts_log.jsonl").read_text()
           .splitlines()]
    assert len(log) == 4 and all(r["voice"].startswith("fake") for r in log)
    for u, p in _kv(data / "wmt19_train_tts", "wav.scp").items():
        assert soundfile.info(p).samplerate == 16000
    table = (data / "sets.md").read_text()
    assert "| train_d1 | qa |" in table and "| newstest2019 | st | 4 |" in table
    assert "train_d3" in proc.stdout


def test_hours_nesting_and_held_out(run):
    recipe, _ = run
    data = recipe / "data"
    d1, d2, d3 = (set(_kv(data / f"train_d{k}", "utt2spk")) for k in (1, 2, 3))
    assert d1 < d2 < d3
    t1, t2, t3 = (_tasks(data / f"train_d{k}") for k in (1, 2, 3))
    h = 1 / 18000  # hours of one paper hour
    # each part: the shortest prefix reaching its hours (utterances here are >= 2 s)
    for tasks, d, task, hours in ((t1, "train_d1", "asr", 90), (t1, "train_d1", "st", 100),
                                  (t1, "train_d1", "sqa", 30), (t2, "train_d2", "st", 200)):
        got = _hours(data / d, tasks[task])
        assert hours * h <= got < hours * h + 8 / 3600, (d, task, got)
    # d2: all of AISHELL-1 (train, dev but valid_mt's, test: --aishell2 true) and of Alpaca
    valid, test = set(_kv(data / "valid_mt", "utt2spk")), set(_kv(data / "alpaca_test", "utt2spk"))
    aishell = (set(_kv(data / "aishell_train", "utt2spk")) | set(_kv(data / "aishell_dev",
                                                                      "utt2spk"))
               | set(_kv(data / "aishell_test", "utt2spk"))) - valid
    assert t2["asr"] == aishell
    assert t2["sqa"] == set(_kv(data / "alpaca_zh", "utt2spk")) - valid - test
    assert not (d3 | {u[:-3] for u in d3 if u.endswith("-qa")}) & (valid | test)
    # d3 = d2 + WenetSpeech M 200 h, cut into files (no segments), the L-only segments left out
    wenet = t3["asr"] - t2["asr"]
    assert wenet and all(u.startswith("Y000000000") for u in wenet)
    assert not any(u.endswith("_S00006") for u in wenet)
    # whole recordings (--by spk): 40 s asked, a recording holds 30 s of M: both are taken
    assert _hours(data / "train_d3", wenet) >= 200 * h and len(wenet) == 12
    assert all(p.endswith(".flac") for u, p in _kv(data / "train_d3", "wav.scp").items()
               if u in wenet)
    # WMT19 was spoken up to what dataset 2 needs only, in the seeded order
    report = (data / "wmt19_train_tts" / "tts_report.txt").read_text()
    assert "--max_sec 30: longer utterances left out (too_long)" in report
    assert "--max_hours 0.0111111: reached; 3 utterances of the seeded order not used" in report
    assert "wmt19nc-00000013" not in d3  # 32 s: never in training


def test_rerun_aishell1_test_no_text_qa(run, corpora):
    recipe, _ = run
    data = recipe / "data"
    proc = run_recipe(recipe, ["local/data.sh", *OPTS, "--aishell2", "false", "--text_qa",
                               "false", "--datasets", "1,2", "--corpora",
                               "aishell,wmt19,alpaca_zh"], **corpora)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    d2 = set(_kv(data / "train_d2", "utt2spk"))
    assert not d2 & set(_kv(data / "aishell_test", "utt2spk"))  # the ASR test set now
    for name in ("train_d1", "train_d2", "valid_mt"):
        assert "qa" not in _tasks(data / name)
    assert "qa" in _tasks(data / "alpaca_test")
    # the TTS folders are reused, nothing is spoken again
    assert "data/alpaca_zh_tts: 9 of 9 utterances spoken, 0.0075 h; dropped 0; reused 9" in \
        proc.stdout
    assert "| aishell_test | asr |" in (data / "sets.md").read_text()


@pytest.mark.parametrize("opts,message", [
    (["--hours_scale", "1"], "90 h asked, but there are only 0.01"),
    (["--datasets", "1,4"], "unknown dataset '4' (--datasets); valid: 1 2 3, or none"),
    (["--hours_scale", "x"], "--hours_scale must be a positive number or fraction"),
])
def test_errors(run, corpora, opts, message):
    recipe, _ = run
    proc = run_recipe(recipe, ["local/data.sh", *OPTS, *opts, "--corpora", "wmt19"], **corpora)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-3000:]


def test_needs_the_readers_directories(corpora, tmp_path):
    recipe = copy_recipe(RECIPE, tmp_path / "r")
    proc = run_recipe(recipe, ["local/data.sh", *OPTS, "--corpora", "aishell,wmt19,alpaca_zh"],
                      **corpora)
    assert proc.returncode != 0
    assert "needs data/wenetspeech_m: add wenetspeech to --corpora" in proc.stderr
