"""egs2/aishell_wmt/asr1 stage 1 (run.sh -> sllm.sh -> local/data.sh) on tiny trees of the
four corpora (those of the reader tests, in the layouts of the releases), in a throw-away copy
of the recipe."""
import json
import os

import pytest

from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.testing.recipe import REPO, copy_recipe, run_recipe
from tests.data.corpora.test_aishell import make_archives
from tests.data.corpora.test_aishell2 import make_tree as make_aishell2
from tests.data.corpora.test_alpaca_zh import RECORDS
from tests.data.corpora.test_wmt19 import make_root as make_wmt19

RECIPE = "egs2/aishell_wmt/asr1"
STAGE1 = ["run.sh", "--stage", "1", "--stop_stage", "1", "--dataset", "none"]
OPTS = "--wmt19_max_pairs 2"  # --dataset none: the readers only (part B: test_aishell_wmt_data)


@pytest.fixture
def corpora(tmp_path):
    db = tmp_path / "db"
    make_archives(db / "aishell")  # the download layout: per-speaker .tar.gz
    make_aishell2(db / "aishell2")  # the release layout: wav/T0011/IT0011W0001.wav
    make_wmt19(db / "wmt19")
    (db / "alpaca_zh").mkdir()
    (db / "alpaca_zh" / "alpaca_data_zh_51k.json").write_text(
        json.dumps(RECORDS, ensure_ascii=False), encoding="utf-8")
    return {"AISHELL": str(db / "aishell"), "AISHELL2_TEST": str(db / "aishell2"),
            "WMT19": str(db / "wmt19"), "ALPACA_ZH": str(db / "alpaca_zh")}


def test_links():
    for name in ("sllm.sh", "path.sh", "cmd.sh", "scripts"):
        link = REPO / RECIPE / name
        assert link.is_symlink() and os.readlink(link) == f"../../TEMPLATE/sllm1/{name}"
        assert link.exists()


def test_stage1(corpora, tmp_path):
    recipe = copy_recipe(RECIPE, tmp_path / "r")
    exp = tmp_path / "exp"
    proc = run_recipe(recipe, [*STAGE1, "--expdir", str(exp),
                               "--local_data_opts", OPTS], **corpora)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = recipe / "data"
    expected = {"aishell_train": 3, "aishell_dev": 1, "aishell_test": 1, "aishell2_test": 4,
                "wmt19_train": 2, "wmt19_test": 3, "alpaca_zh": 3}
    for name, n in expected.items():
        assert validate_data_dir(data / name)["utterances"] == n, name
        assert set(read_kv(data / name / "utt2lang").values()) == {"zh"}
    for name in ("wmt19_train", "wmt19_test", "alpaca_zh"):
        assert not (data / name / "wav.scp").exists()
    # The archives were extracted in place, once.
    wav_dir = os.path.join(corpora["AISHELL"], "data_aishell", "wav")
    assert read_kv(data / "aishell_train" / "wav.scp")["BAC009S0002W0122"] == \
        os.path.join(wav_dir, "train", "S0002", "BAC009S0002W0122.wav")
    assert read_kv(data / "aishell_test" / "text") == {"BAC009S0764W0121": "近日两大外资巨头"}
    assert read_kv(data / "aishell_dev" / "utt2spk") == {"BAC009S0724W0121": "BAC009S0724"}
    assert read_kv(data / "aishell2_test" / "text")["IT0011W0002"] == "打开空调的除湿模式"
    # Speaker = device letter + speaker folder, a prefix of the release's utterance ids.
    assert read_kv(data / "aishell2_test" / "spk2utt") == {
        "IT0011": "IT0011W0001 IT0011W0002", "IT0012": "IT0012W0001", "IT0013": "IT0013W0001"}
    assert read_kv(data / "aishell2_test" / "wav.scp")["IT0011W0001"] == os.path.join(
        corpora["AISHELL2_TEST"], "AISHELL-DEV-TEST-SET", "iOS", "test", "wav", "T0011",
        "IT0011W0001.wav")
    assert read_kv(data / "wmt19_train" / "text_tgt") == {
        "wmt19nc-00000001": "The world is changing.", "wmt19nc-00000006": "Padded"}
    assert read_kv(data / "wmt19_test" / "utt2task")["wmt19nt-chinanews.com.3939-0010"] == "st"
    assert read_kv(data / "alpaca_zh" / "text")["alpacazh-000001"] == "把这句话翻译成英文。 我爱你"
    assert set(read_kv(data / "alpaca_zh" / "utt2task").values()) == {"sqa"}
    # The counts of every reader are in the log.
    out = proc.stdout + proc.stderr
    assert "aishell test: rows=2 kept=1 dropped=1 (no_transcript=1)" in out
    assert "aishell transcript: rows=6 kept=5 dropped=1 (no_audio=1)" in out
    assert "aishell2 iOS/test: rows=8 kept=4 dropped=4" in out
    assert "data/alpaca_zh: 3 utterances, text only (speech: TTS stage); task: sqa" in out
    assert (data / ".stamps" / "stage1").exists()  # the stamp lives with the data it describes

    # The same command again: skipped by sllm.sh; forced again (stamp removed): the archives
    # are not extracted a second time.
    again = run_recipe(recipe, [*STAGE1, "--expdir", str(exp),
                                "--local_data_opts", OPTS], **corpora)
    assert again.returncode == 0 and "Stage 1: skipped" in again.stdout + again.stderr
    (data / ".stamps" / "stage1").unlink()
    again = run_recipe(recipe, [*STAGE1, "--expdir", str(exp),
                                "--local_data_opts", OPTS], **corpora)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "aishell archives: rows=4 kept=0 dropped=0; per group: already_extracted=4" in \
        again.stdout


def test_stage1_without_aishell2(corpora, tmp_path):
    recipe = copy_recipe(RECIPE, tmp_path / "r")
    env = dict(corpora, AISHELL2_TEST=str(tmp_path / "nowhere"))
    proc = run_recipe(recipe, [*STAGE1, "--expdir", str(tmp_path / "exp"), "--aishell2", "false",
                               "--local_data_opts", "--datasets none"], **env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (recipe / "data" / "aishell_test" / "wav.scp").exists()
    assert not (recipe / "data" / "aishell2_test").exists()


@pytest.mark.parametrize("var,message", [
    ("AISHELL", "AISHELL-1 root AISHELL="),
    ("AISHELL2_TEST", "AISHELL-2 test root AISHELL2_TEST="),
    ("WMT19", "WMT19 root WMT19="),
    ("ALPACA_ZH", "Alpaca-zh root ALPACA_ZH="),
])
def test_stage1_missing_root(corpora, tmp_path, var, message):
    recipe = copy_recipe(RECIPE, tmp_path / "r")
    env = dict(corpora, **{var: str(tmp_path / "nowhere")})
    proc = run_recipe(recipe, [*STAGE1, "--expdir", str(tmp_path / "exp")], **env)
    assert proc.returncode != 0
    assert f"{message}{tmp_path / 'nowhere'} does not exist: set {var} to" in proc.stderr
    assert not (recipe / "data" / "aishell_train").exists()  # nothing read before the check


def test_data_sh_options(corpora, tmp_path):
    recipe = copy_recipe(RECIPE, tmp_path / "r")
    proc = run_recipe(recipe, ["local/data.sh", "--corpora", "wmt19,alpaca_zh", "--datasets",
                               "none", "--data_dir", str(tmp_path / "d")],
                      **dict(corpora, AISHELL=str(tmp_path / "nowhere")))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(os.listdir(tmp_path / "d")) == ["alpaca_zh", "wmt19_test", "wmt19_train"]
    proc = run_recipe(recipe, ["local/data.sh", "--corpora", "aishell timit"], **corpora)
    assert proc.returncode != 0
    assert "unknown corpus 'timit' (--corpora); valid: aishell aishell2 wmt19 alpaca_zh " \
        "wenetspeech" in proc.stderr
    proc = run_recipe(recipe, ["run.sh", "--aishell2", "maybe"], **corpora)
    assert proc.returncode != 0 and "--aishell2 must be true or false" in proc.stderr
    proc = run_recipe(recipe, ["run.sh", "--help"])
    assert proc.returncode == 0 and "--aishell2 true|false" in proc.stdout
