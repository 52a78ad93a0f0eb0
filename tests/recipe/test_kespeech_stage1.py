"""egs2/kespeech/asr1: `run.sh --stage 1 --stop_stage 1` on tiny KeSpeech and WenetSpeech trees
(documented layouts, with noise tags, a noise-only row, a missing wav and an absent Opus file).

Each run is in a throw-away copy of the recipe (espnet_sllm.testing.recipe), so the
repository's own egs2/kespeech/asr1/data is never touched."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.testing.recipe import copy_recipe, run_recipe

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs2/kespeech/asr1"
SR = 16000
AID = "X0000000000_100638174"
AID_MEETING = "Y0000000001_abc"


def _tone(path, seconds, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    kw = {"format": "OGG", "subtype": "OPUS"} if fmt == "opus" else {}
    soundfile.write(str(path), (0.1 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), SR,
                    **kw)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("db")
    # KeSpeech: KESPEECH points at the folder HOLDING KeSpeech/.
    ke = root / "KeSpeech"
    parts = {
        "train_phase1": [("1000001_aaaa0001", "1000001", "今天<SPOKEN_NOISE>天气 好", "Beijing"),
                         ("1000001_aaaa0002", "1000001", "<SPOKEN_NOISE>", "Beijing"),
                         ("1000002_bbbb0001", "1000002", "我们走吧", "Southwestern")],
        "train_phase2": [("1000001_cccc0001", "1000001", "第二阶段", "Mandarin"),
                         ("1000003_cccc0002", "1000003", "缺音频", "Zhongyuan")],  # no wav
        "dev_phase1": [("1000004_dddd0001", "1000004", "开发集一", "Ji-Lu")],
        "dev_phase2": [("1000004_dddd0002", "1000004", "开发集二", "Mandarin")],
        "test": [("1000005_eeee0001", "1000005", "测试 <SPOKEN_NOISE>句子", "Lan-Yin"),
                 ("1000006_eeee0002", "1000006", "测试句子二", "Northeastern")],
    }
    for part, rows in parts.items():
        phase = "phase2" if part.endswith("phase2") else "phase1"
        d = ke / "Tasks/ASR" / part
        d.mkdir(parents=True)
        (d / "wav.scp").write_text(
            "".join(f"{u} Audio/{s}/{phase}/{u}.wav\n" for u, s, _, _ in rows), encoding="utf-8")
        (d / "text").write_text("".join(f"{u} {t}\n" for u, _, t, _ in rows), encoding="utf-8")
        (d / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s, _, _ in rows))
        (d / "utt2subdialect").write_text("".join(f"{u} {x}\n" for u, _, _, x in rows))
        for u, s, _, _ in rows:
            if u != "1000003_cccc0002":
                _tone(ke / "Audio" / s / phase / f"{u}.wav", 0.4)

    # WenetSpeech: one TEST_NET and one TEST_MEETING recording, a third one absent.
    wn = root / "WenetSpeech"
    _tone(wn / f"audio/test/net/{AID}.opus", 3.0, "opus")
    _tone(wn / f"audio/test/meeting/{AID_MEETING}.opus", 2.0, "opus")

    def seg(sid, b, e, text, subsets):
        return {"sid": sid, "begin_time": b, "end_time": e, "text": text, "subsets": subsets}

    doc = {"dataset": "WenetSpeech", "audios": [
        {"aid": AID, "path": f"audio/test/net/{AID}.opus", "segments": [
            seg(f"{AID}_S00000", 0.0, 1.2, "网上的 句子", ["TEST_NET"]),
            seg(f"{AID}_S00001", 1.2, 2.5, "第二句", ["TEST_NET"]),
            seg(f"{AID}_S00002", 2.5, 2.9, "训练", ["S", "M", "L"])]},
        {"aid": AID_MEETING, "path": f"audio/test/meeting/{AID_MEETING}.opus", "segments": [
            seg(f"{AID_MEETING}_S00000", 0.2, 1.7, "开会", ["TEST_MEETING"])]},
        {"aid": "Y0000000002_gone", "path": "audio/test/meeting/Y0000000002_gone.opus",
         "segments": [seg("Y0000000002_gone_S00000", 0.0, 1.0, "不在", ["TEST_MEETING"])]},
    ]}
    (wn / "WenetSpeech.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1),
                                         encoding="utf-8")
    return {"KESPEECH": str(root), "WENETSPEECH": str(wn)}


def _run(tmp_path, env_vars, *args):
    """Run run.sh in a copy of the recipe under tmp_path; returns (process, recipe copy)."""
    recipe = tmp_path / "repo/egs2/kespeech/asr1"
    if not recipe.exists():
        recipe = copy_recipe("egs2/kespeech/asr1", tmp_path)
    return run_recipe(recipe, ["run.sh", *args], **env_vars), recipe


def test_links_are_relative():
    for name in ("sllm.sh", "path.sh", "cmd.sh", "scripts"):
        link = RECIPE / name
        assert link.is_symlink() and os.readlink(link) == f"../../TEMPLATE/sllm1/{name}"
        assert link.exists()


def test_stage1_all_sets(corpora, tmp_path):
    r, recipe = _run(tmp_path, corpora, "--stage", "1", "--stop_stage", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    data = recipe / "data"
    for name in ("train_phase1", "train_phase2", "train", "dev_phase1", "dev_phase2", "dev",
                 "test", "test_net", "test_meeting"):
        validate_data_dir(data / name)

    assert read_kv(data / "train" / "text") == {
        "1000001_aaaa0001": "今天天气好",
        "1000001_cccc0001": "第二阶段",
        "1000002_bbbb0001": "我们走吧",
    }
    assert read_kv(data / "train" / "utt2subdialect") == {
        "1000001_aaaa0001": "Beijing", "1000001_cccc0001": "Mandarin",
        "1000002_bbbb0001": "Southwestern"}
    assert set(read_kv(data / "train" / "utt2lang").values()) == {"zh"}
    assert read_kv(data / "dev" / "utt2subdialect") == {
        "1000004_dddd0001": "Ji-Lu", "1000004_dddd0002": "Mandarin"}
    assert read_kv(data / "test" / "text")["1000005_eeee0001"] == "测试句子"
    assert read_kv(data / "train_phase1" / "wav.scp")["1000002_bbbb0001"] == str(
        Path(corpora["KESPEECH"]) / "KeSpeech/Audio/1000002/phase1/1000002_bbbb0001.wav")

    assert read_kv(data / "test_net" / "text") == {f"{AID}_S00000": "网上的 句子",
                                                   f"{AID}_S00001": "第二句"}
    assert read_kv(data / "test_net" / "segments")[f"{AID}_S00001"] == f"{AID} 1.20 2.50"
    assert read_kv(data / "test_net" / "wav.scp") == {
        AID: str(Path(corpora["WENETSPEECH"]) / f"audio/test/net/{AID}.opus")}
    assert read_kv(data / "test_meeting" / "utt2spk") == {
        f"{AID_MEETING}_S00000": AID_MEETING}

    out = r.stdout + r.stderr
    assert "train_phase1: rows=3 kept=2 dropped=1 (only_noise=1)" in out
    assert "train_phase2: rows=2 kept=1 dropped=1 (missing_audio=1)" in out
    assert "TEST_MEETING: rows=2 kept=1 dropped=1 (missing_audio=1)" in out
    assert "Y0000000002_gone" in out
    assert "per subdialect: Beijing=1 Mandarin=1 Southwestern=1" in out


def test_stage1_without_wenetspeech(corpora, tmp_path):
    env = dict(corpora, WENETSPEECH=str(tmp_path / "nowhere"))
    r, recipe = _run(tmp_path, env, "--stage", "1", "--stop_stage", "1",
                     "--wenetspeech", "false")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "--wenetspeech false: no test_net / test_meeting" in r.stdout + r.stderr
    validate_data_dir(recipe / "data" / "test")


def test_missing_roots_are_clear_errors(corpora, tmp_path):
    r, _ = _run(tmp_path, dict(corpora, KESPEECH=str(tmp_path / "nope")), "--stage", "1",
                "--stop_stage", "1")
    assert r.returncode != 0
    assert f"KESPEECH={tmp_path / 'nope'} has no Tasks/ASR" in r.stderr
    assert "KESPEECH=/path/to/KeSpeech ./run.sh" in r.stderr

    r, _ = _run(tmp_path, dict(corpora, WENETSPEECH=str(tmp_path / "nows")), "--stage", "1",
                "--stop_stage", "1")
    assert r.returncode != 0
    assert f"WENETSPEECH={tmp_path / 'nows'} has no WenetSpeech.json" in r.stderr
    assert "--wenetspeech false" in r.stderr


def test_run_sh_options(tmp_path):
    r, _ = _run(tmp_path, {}, "--help")
    assert r.returncode == 0 and "--wenetspeech true|false" in r.stdout
    r, _ = _run(tmp_path, {}, "--wenetspeech", "maybe")
    assert r.returncode == 1 and "--wenetspeech must be true or false" in r.stderr


@pytest.mark.parametrize("args,message", [
    (("--system", "q9_conv1d_k4"), "unknown --system 'q9_conv1d_k4'; valid: q05_conv1d_k2"),
    (("--sweep", "true", "--system", "q05_conv1d_k4"), "exclude each other"),
    ((), "stages 4-10 need --system (one of: q05_conv1d_k2"),
    (("--sweep", "yes"), "--sweep must be true or false"),
    (("--ctc_finetune", "1", "--system", "q05_conv1d_k4"), "--ctc_finetune must be true or"),
])
def test_run_sh_system_errors(tmp_path, args, message):
    r, _ = _run(tmp_path, {}, *args)
    assert r.returncode == 1 and message in r.stderr, r.stderr


def test_extra_train_and_extra_test_sets(corpora, tmp_path):
    """--extra_train wenetspeech_m: the M segments join data/train (KeSpeech utterances get
    whole-recording segments); --extra_test_sets DIR: copied to data/<basename> and listed as a
    test set; an unknown --extra_train set is an error listing the valid ones."""
    mine = tmp_path / "sets/my_dialect"
    mine.mkdir(parents=True)
    _tone(mine / "a.wav", 0.5)
    (mine / "wav.scp").write_text(f"u1 {mine / 'a.wav'}\n")
    (mine / "text").write_text("u1 我的方言\n", encoding="utf-8")
    (mine / "utt2spk").write_text("u1 u1\n")
    (mine / "spk2utt").write_text("u1 u1\n")
    r, recipe = _run(tmp_path, corpora, "--stage", "1", "--stop_stage", "1", "--extra_train",
                     "wenetspeech_m", "--extra_test_sets", str(mine))
    assert r.returncode == 0, r.stderr[-2000:]
    train = read_kv(recipe / "data/train/text")
    assert train[f"{AID}_S00002"] == "训练" and "1000002_bbbb0001" in train
    assert (recipe / "data/train/segments").is_file()
    assert read_kv(recipe / "data/my_dialect/text") == {"u1": "我的方言"}
    r, _ = _run(tmp_path, corpora, "--stage", "1", "--stop_stage", "1", "--extra_train",
                "wenetspeech_m aishel")
    assert r.returncode != 0
    assert "unknown --extra_train set 'aishel'; valid: wenetspeech_s" in r.stderr + r.stdout
