"""Fuzzing of every corpus reader (issue #17 §4): random mutations of the tiny release trees of
the readers' own tests (deleted columns, extra TABs, BOMs, CRLF line ends, odd Unicode, bytes
that are not UTF-8, emptied or cut files, lines duplicated, deleted or swapped, JSON keys
deleted or retyped, ...; see espnet_sllm.testing.fuzz).  Each run must end with counted drops
(exit 0, data directories that ``kaldi_dir validate`` accepts) or with ONE ``ERROR:`` line from
the reader's own error, naming ``file:line`` (exit 1), never with a traceback.

Environment: SLLM_FUZZ_CASES (cases per reader, default 30), SLLM_FUZZ_SEED (default 0),
SLLM_FUZZ_CASE (replay this one case).  A failure prints the command that replays it.
"""
import os
import random

import pytest

from espnet_sllm.data.corpora import (
    aishell,
    aishell2,
    alpaca_zh,
    common_voice,
    covost2,
    kespeech,
    mlc_slm,
    mls,
    tsv_manifest,
    wenetspeech,
    wmt19,
)
from espnet_sllm.testing.fuzz import (
    FuzzTarget,
    case_seed,
    check_baseline,
    check_run,
    mutate_file,
    run_campaign,
    run_in_process,
    text_files,
)
from tests.data.corpora.test_aishell import make_extracted
from tests.data.corpora.test_aishell2 import make_tree as make_aishell2_tree
from tests.data.corpora.test_alpaca_zh import RECORDS as ALPACA_RECORDS
from tests.data.corpora.test_alpaca_zh import _write as write_alpaca
from tests.data.corpora.test_tsv_manifest import SEG_ROWS
from tests.data.corpora.test_tsv_manifest import make_tree as make_tsv_tree
from tests.data.corpora.test_wmt19 import make_root as make_wmt19_root

# The fixtures that build the other trees (requested by name below).
from tests.data.corpora.test_common_voice import cv_root  # noqa: F401
from tests.data.corpora.test_covost2 import tree  # noqa: F401
from tests.data.corpora.test_kespeech import kespeech as kespeech_tree  # noqa: F401
from tests.data.corpora.test_mlc_slm import dev_root  # noqa: F401
from tests.data.corpora.test_mls import mls as mls_tree  # noqa: F401
from tests.data.corpora.test_wenetspeech import release  # noqa: F401

CASES = int(os.environ.get("SLLM_FUZZ_CASES", "30"))
SEED = int(os.environ.get("SLLM_FUZZ_SEED", "0"))
ONLY = os.environ.get("SLLM_FUZZ_CASE")

# name -> (how the template tree is built under tmp_path: a fixture name or a function,
#          FuzzTarget: argv variants with paths relative to the tree copy)
TARGETS = {
    "aishell": (lambda tmp: make_extracted(tmp / "db"), FuzzTarget(
        "aishell", aishell.main,
        [lambda root, out: ["--root", root / "db", "--data_dir", out]])),
    "aishell2": (lambda tmp: make_aishell2_tree(tmp / "db"), FuzzTarget(
        "aishell2", aishell2.main,
        [lambda root, out: ["--root", root / "db", "--out", out / "aishell2_test"]])),
    "alpaca_zh": (lambda tmp: write_alpaca(tmp / "alpaca_data_zh_51k.json", ALPACA_RECORDS),
                  FuzzTarget("alpaca_zh", alpaca_zh.main, [
                      lambda root, out: ["--root", root, "--out", out / "alpaca_zh"],
                      lambda root, out: ["--root", root / "alpaca_data_zh_51k.json",
                                         "--out", out / "alpaca_zh", "--max_records", "2"]])),
    "common_voice": ("cv_root", FuzzTarget("common_voice", common_voice.main, [
        lambda root, out: ["--cv_root", root / "cv", "--langs", "fr", "Japanese",
                           "--out", out / "cv_train"],
        lambda root, out: ["--cv_root", root / "cv", "--langs", "fr", "--out", out / "cv_train",
                           "--max_utts_per_lang", "2"]])),
    "covost2": ("tree", FuzzTarget("covost2", covost2.main, [
        lambda root, out: ["--cv_root", root / "cv", "--covost_root", root / "covost2",
                           "--pairs", "en_de", "fr_en", "--data_dir", out,
                           "--work_dir", out / "work"]])),
    "kespeech": ("kespeech_tree", FuzzTarget("kespeech", kespeech.main, [
        lambda root, out: ["--root", root / "db" / "KeSpeech", "--out_dir", out,
                           "--parts", "train_phase1", "train_phase2"],
        lambda root, out: ["--root", root / "db", "--out_dir", out, "--parts", "train_phase1"]])),
    "mlc_slm": ("dev_root", FuzzTarget("mlc_slm", mlc_slm.main, [
        lambda root, out: ["--root", root / "dev", "--out", out / "dev"],
        lambda root, out: ["--root", root / "dev" / "data", "--out", out / "dev",
                           "--langs", "Japanese"]])),
    "mls": ("mls_tree", FuzzTarget("mls", mls.main, [
        lambda root, out: ["--mls_root", root / "mls", "--langs", "german", "polish",
                           "--data_dir", out],
        lambda root, out: ["--mls_root", root / "mls", "--langs", "german", "pl",
                           "--data_dir", out, "--limited", "10hr"]])),
    "wenetspeech": ("release", FuzzTarget("wenetspeech", wenetspeech.main, [
        lambda root, out: ["--json", root / "WenetSpeech" / "WenetSpeech.json",
                           "--out_dir", out],
        lambda root, out: ["--json", root / "WenetSpeech", "--out_dir", out,
                           "--subsets", "TEST_NET", "--prefix", "wenet_"]])),
    "wmt19": (lambda tmp: make_wmt19_root(tmp / "wmt19"), FuzzTarget("wmt19", wmt19.main, [
        lambda root, out: ["--root", root / "wmt19", "--data_dir", out],
        lambda root, out: ["--root", root / "wmt19", "--data_dir", out, "--max_pairs", "2",
                           "--sets", "train"]])),
    "tsv_manifest": (lambda tmp: make_tsv_tree(tmp, SEG_ROWS), FuzzTarget(
        "tsv_manifest", tsv_manifest.main, [
            lambda root, out: ["--manifest", root / "m.tsv", "--root", root / "db", "--prefix",
                               "gs2", "--out", out / "set"],
            lambda root, out: ["--manifest", root / "m.tsv", "--root", root / "db", "--prefix",
                               "gs2", "--out", out / "set", "--check_audio", "true",
                               "--allow_no_text", "true"]])),
}


def _template(name, request, tmp_path):
    """The reader's release tree, built in tmp_path (which holds nothing else)."""
    build = TARGETS[name][0]
    if isinstance(build, str):
        request.getfixturevalue(build)
    else:
        build(tmp_path)
    return tmp_path


def _replay(name):
    return lambda case: (
        f"SLLM_FUZZ_SEED={SEED} SLLM_FUZZ_CASE={case.index} OMP_NUM_THREADS=1 tools/venv/bin/"
        f"python -m pytest 'tests/data/corpora/test_fuzz_readers.py::test_fuzz_reader[{name}]'")


def test_every_reader_is_fuzzed():
    assert set(TARGETS) == {m[:-3] for m in os.listdir(os.path.dirname(aishell.__file__))
                            if m.endswith(".py") and m not in ("__init__.py",
                                                               "reader_utils.py")}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_reader(name, request, tmp_path, tmp_path_factory):
    template = _template(name, request, tmp_path)
    target = TARGETS[name][1]
    work = tmp_path_factory.mktemp(f"fuzz_{name}")
    baseline = check_baseline(target, template, work)
    assert not baseline.problems, baseline.report()
    result = run_campaign(target, template, work, cases=CASES, seed=SEED,
                          only=int(ONLY) if ONLY else None)
    print(result.summary())
    assert not result.failures, result.report(_replay(name))
    if ONLY is None and CASES >= 30:
        # Both ends of the contract are reached (else the mutations test one path only).
        outcomes = {c.status for c in result.cases}
        assert outcomes == {0, 1}, result.summary()


def test_mutations_are_seeded(tmp_path):
    """The same case seed gives the same mutations, hence the same bytes (replays work)."""
    done = {}
    for k in ("1", "2"):
        make_wmt19_root(tmp_path / k)
        files = text_files(tmp_path / k)
        assert files == ["news-commentary-v14.en-zh.tsv", "sgm/newstest2019-zhen-ref.en.sgm",
                         "sgm/newstest2019-zhen-src.zh.sgm"]
        rng = random.Random(case_seed(0, "wmt19", 7))
        done[k] = [str(mutate_file(rng, tmp_path / k / f, f)) for f in files for _ in range(8)]
    assert done["1"] == done["2"]
    for f in files:
        assert (tmp_path / "1" / f).read_bytes() == (tmp_path / "2" / f).read_bytes()


def _replace(rel, old, new):
    """An edit of the tree: ``old`` (str, or bytes) replaced by ``new`` once in file ``rel``."""
    def edit(root):
        path = root / rel
        data = path.read_bytes()
        old_b = old if isinstance(old, bytes) else old.encode("utf-8")
        assert old_b in data, (rel, old)
        path.write_bytes(data.replace(old_b, new if isinstance(new, bytes)
                                      else new.encode("utf-8"), 1))
    return edit


# The crashes the fuzzing found (and a few of their kind), each fixed in its reader:
# (reader, edit of the template tree, exit status, text expected in stdout (exit 0) or in the
# ERROR line (exit 1)[, more arguments]).
FIXED = {
    # A stray CR inside a sentence reached the data directory writer (ValueError naming the
    # output, not the input): now a space.
    "cv_sentence_cr": ("common_voice", _replace("cv/fr/train.tsv", 'Il a dit "bonjour"',
                                                'Il a dit\r"bonjour"'), 0, "rows=6"),
    "covost_cv_sentence_cr": ("covost2", _replace("cv/en/validated.tsv", "Second sentence.",
                                                  "Second\rsentence."), 0, "rows="),
    "mlc_slm_text_cr": ("mlc_slm", _replace("dev/data/English/British/0001_001_phone.txt",
                                            "hello there", "hello\rthere"), 0, "rows="),
    # A time beyond the float range: OverflowError out of math.isfinite (a traceback).
    "wenetspeech_huge_time": ("wenetspeech", _replace(
        "WenetSpeech/WenetSpeech.json", '"begin_time": 1.5', '"begin_time": 1' + "0" * 400),
        1, "begin_time must be a number, got an integer of 401 digits"),
    "wenetspeech_too_many_digits": ("wenetspeech", _replace(
        "WenetSpeech/WenetSpeech.json", '"duration": 4.0', '"duration": ' + "9" * 5000),
        1, "ValueError: Exceeds the limit (4300 digits)"),
    "wenetspeech_too_deep": ("wenetspeech", _replace(
        "WenetSpeech/WenetSpeech.json", '"format": "opus"',
        '"format": ' + "[" * 100000 + "]" * 100000), 1, "RecursionError"),
    "alpaca_too_many_digits": ("alpaca_zh", _replace(
        "alpaca_data_zh_51k.json", '"extra": 1', '"extra": ' + "9" * 5000),
        1, "not readable as JSON (ValueError"),
    # A seg id of superscript digits passed isdigit() and failed in int() (a ValueError
    # without file:line).
    "wmt19_superscript_seg_id": ("wmt19", _replace(
        "wmt19/sgm/newstest2019-zhen-src.zh.sgm", '<seg id="10">', '<seg id="1\u00b2">'),
        1, "newstest2019-zhen-src.zh.sgm:6: seg id '1²' is not a number"),
    # A CR of the input inside the message of a strict drop split the ERROR line on a terminal:
    # run_main escapes line breaks.
    "strict_drop_message_with_cr": ("aishell2", _replace(
        "db/AISHELL-DEV-TEST-SET/iOS/test/wav.scp", "IT0011W0001.wav", "IT0011W0001.wa\rv"),
        1, "IT0011W0001.wa\\rv (--strict true", ["--strict", "true"]),
}


@pytest.mark.parametrize("case", sorted(FIXED))
def test_crashes_found_by_fuzzing(case, request, tmp_path, tmp_path_factory):
    name, edit, status, expected, *more = FIXED[case]
    root = _template(name, request, tmp_path)
    edit(root)
    out = tmp_path_factory.mktemp("out")
    argv = [str(a) for a in TARGETS[name][1].argv[0](root, out)] + (more[0] if more else [])
    got, stdout, stderr, escaped, error = run_in_process(TARGETS[name][1].main, argv)
    assert not check_run(got, stdout, stderr, escaped, out, error), stderr
    assert got == status, stderr
    assert expected in (stdout if status == 0 else stderr.rstrip("\n").split("\n")[-1])
    if status == 0 and case.endswith("_cr"):
        texts = "".join(p.read_text(encoding="utf-8") for p in out.rglob("text"))
        assert "\r" not in texts and ("hello there" in texts or 'Il a dit "bonjour"' in texts
                                      or "Second sentence." in texts)
