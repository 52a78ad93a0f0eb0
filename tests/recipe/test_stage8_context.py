"""Stage 8 of sllm.sh end to end: the context of a segment is its neighbours' stage-7 hypotheses.

The real ``sllm.sh --stage 8`` runs in a scratch recipe directory (the template's ``cmd.sh`` and
``scripts``, a ``path.sh`` that activates this checkout), with the real ``build_context``,
``split_keys``, launcher and ``merge_outputs``. Only ``sllm_inference`` is replaced (through
``--python``) by a stand-in that "decodes" each utterance into the context it was given, so the
test sees exactly what the re-decoding read.
"""
import os
import stat
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TEMPLATE = os.path.join(ROOT, "egs2", "TEMPLATE", "sllm1")

# (utt, recording, start, end): ids are out of time order, the two recordings overlap in time
# and interleave in id order, and the segments file lists them shuffled.
SEGMENTS = [
    ("u11", "recA", 6.5, 8.0),
    ("u05", "recB", 1.0, 2.5),
    ("u02", "recA", 9.0, 11.0),
    ("u07", "recA", 0.0, 2.0),
    ("u09", "recA", 12.0, 13.0),
    ("u10", "recB", 4.0, 6.0),
    ("u03", "recA", 3.0, 5.5),
    ("u08", "recB", 7.2, 9.0),
    ("u04", "recB", 7.0, 8.0),
]
HYP = {u: f"hyp words of {u}" for u, *_ in SEGMENTS}
REF = {u: f"reference words of {u}" for u, *_ in SEGMENTS}

FAKE_INFERENCE = r'''#!{python}
"""--python stand-in: sllm_inference writes '<utt> PREV=<text_prev> NEXT=<text_next>'."""
import os, sys
args = sys.argv[1:]
if args[:2] != ["-m", "espnet_sllm.bin.sllm_inference"]:
    os.execv({python!r}, [{python!r}] + args)
opts = {{}}
for k, v in zip(args[2::2], args[3::2]):
    opts.setdefault(k, []).append(v)
def read(path):
    out = {{}}
    for line in open(path, encoding="utf-8"):
        k, _, v = line.rstrip("\n").partition(" ")
        out[k] = v
    return out
files = {{}}
for spec in opts.get("--data_path_and_name_and_type", []):
    path, name, _ = spec.split(",")
    files[name] = read(path)
with open(os.path.join(os.path.dirname(__file__), "inference_calls"), "a") as f:
    f.write(" ".join(args) + "\n")
keys = [line.split()[0] for line in open(opts["--key_file"][0])]
out = os.path.join(opts["--output_dir"][0], "1best_recog")
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "text"), "w", encoding="utf-8") as f:
    for k in keys:
        f.write(f"{{k}} PREV={{files['text_prev'][k]}} NEXT={{files['text_next'][k]}}\n")
'''


def write_kv(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(f"{k} {v}\n" for k, v in rows))


def read_kv(path):
    out = {}
    for line in open(path, encoding="utf-8"):
        k, _, v = line.rstrip("\n").partition(" ")
        out[k] = v
    return out


def expected_neighbours():
    """Independent of build_context: sort each recording's segments by start time."""
    out = {}
    for rec in {r for _, r, _, _ in SEGMENTS}:
        order = [u for u, r, s, _ in sorted(SEGMENTS, key=lambda x: x[2]) if r == rec]
        for i, u in enumerate(order):
            out[u] = (order[i - 1] if i else "", order[i + 1] if i + 1 < len(order) else "")
    return out


@pytest.fixture
def recipe(tmp_path):
    d = tmp_path / "asr1"
    d.mkdir()
    (d / "path.sh").write_text(
        f". {ROOT}/tools/venv/bin/activate\nexport PYTHONPATH={ROOT}${{PYTHONPATH:+:$PYTHONPATH}}\n"
        "export PYTHONIOENCODING=UTF-8\n")
    os.symlink(os.path.join(TEMPLATE, "cmd.sh"), d / "cmd.sh")
    os.symlink(os.path.join(TEMPLATE, "scripts"), d / "scripts")
    (d / "conf").mkdir()
    (d / "conf" / "train.yaml").write_text("{}\n")
    write_kv(str(d / "data" / "test" / "segments"),
             [(u, f"{r} {s:.2f} {e:.2f}") for u, r, s, e in SEGMENTS])
    keys = sorted(HYP)
    write_kv(str(d / "dump" / "raw" / "test" / "wav.scp"),
             [(u, f"/nonexistent/{u}.wav") for u in keys])
    write_kv(str(d / "dump" / "raw" / "test" / "text"), [(u, REF[u]) for u in keys])
    write_kv(str(d / "dump" / "raw" / "test" / "utt2lang"), [(u, "English") for u in keys])
    exp = d / "exp" / "sllm_train"
    write_kv(str(exp / "decode_valid.acc.best" / "test" / "text"), [(u, HYP[u]) for u in keys])
    fake = d / "fakepy"
    fake.write_text(FAKE_INFERENCE.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return d


def stage8(recipe, *extra):
    proc = subprocess.run(
        [os.path.join(TEMPLATE, "sllm.sh"), "--train_set", "tr", "--valid_set", "dv",
         "--test_sets", "test", "--train_config", "conf/train.yaml", "--stage", "8",
         "--stop_stage", "8", "--context_decoding", "true", "--inference_nj", "2",
         "--python", str(recipe / "fakepy"), *extra],
        cwd=recipe, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_stage8_context_is_the_neighbours_hypotheses(recipe):
    stage8(recipe)
    out = recipe / "exp" / "sllm_train" / "decode_valid.acc.best_ctx_hyp" / "test"
    prev, nxt = read_kv(out / "context" / "text_prev"), read_kv(out / "context" / "text_next")
    decoded = read_kv(out / "text")
    # the chosen utterance: u11 (recA, 6.5 s). Its neighbours in time order within recA are u03
    # (3.0 s) and u02 (9.0 s); by id they would be u10 / u02, and across recordings u10
    # (recB, 4.0 s) / u04 (recB, 7.0 s).
    assert prev["u11"] == "hyp words of u03" and nxt["u11"] == "hyp words of u02"
    assert decoded["u11"] == "PREV=hyp words of u03 NEXT=hyp words of u02"
    # every segment, against an independent neighbour computation; ends of a session are empty
    assert set(prev) == set(nxt) == set(decoded) == set(HYP)
    for u, (p, n) in expected_neighbours().items():
        assert prev[u] == (HYP[p] if p else ""), u
        assert nxt[u] == (HYP[n] if n else ""), u
        assert decoded[u] == f"PREV={prev[u]} NEXT={nxt[u]}", u
    assert prev["u07"] == "" and nxt["u09"] == "" and prev["u05"] == "" and nxt["u08"] == ""
    # never the references, and never the utterance's own hypothesis
    text = "".join((out / "context" / n).read_text() for n in ("text_prev", "text_next"))
    assert "reference" not in text and "reference" not in (out / "text").read_text()
    assert all(HYP[u] not in (prev[u], nxt[u]) for u in HYP)
    # the re-decoding read these files, in 2 jobs
    calls = (recipe / "inference_calls").read_text().splitlines()
    assert len(calls) == 2
    ctx = "exp/sllm_train/decode_valid.acc.best_ctx_hyp/test/context"
    assert all(f"{ctx}/text_prev,text_prev,text" in c and f"{ctx}/text_next,text_next,text" in c
               for c in calls)


def test_stage8_reference_context_is_the_upper_bound(recipe):
    stage8(recipe, "--context_source", "reference")
    out = recipe / "exp" / "sllm_train" / "decode_valid.acc.best_ctx_ref" / "test"
    prev, nxt = read_kv(out / "context" / "text_prev"), read_kv(out / "context" / "text_next")
    assert prev["u11"] == "reference words of u03" and nxt["u11"] == "reference words of u02"
    assert "hyp words" not in (out / "text").read_text()
