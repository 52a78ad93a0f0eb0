"""espnet_sllm.tts.command (CommandTTS) and the counted failures of synthesize_dir, with fake
voice-cloning programs written here (a bash script copying the prompt, a Python one writing
24 kHz stereo) run through the real subprocess path."""
import json
import stat
import sys
import time

import numpy as np
import pytest
import soundfile

from espnet_sllm.bin import synthesize as cli
from espnet_sllm.data.kaldi_dir import Segment, Utterance, read_kv, validate_data_dir, \
    write_data_dir
from espnet_sllm.tts import CommandTTS, SynthesisFailed, TextNotSpeakable, load_tts, tts_classes
from espnet_sllm.tts import synthesize as synth
from espnet_sllm.tts.synthesize import SynthesisError, synthesize_dir

FAKE = r"""#!/bin/bash
# fake voice cloning: the output is the prompt; texts with FAIL / NOOUT / SLEEP misbehave
while [ $# -gt 0 ]; do
  case "$1" in
    --prompt) prompt=$2; shift 2 ;;
    --ptext) ptext=$2; shift 2 ;;
    --text=*) text=${1#--text=}; shift ;;
    --out) out=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    *) echo "fake: unknown argument $1" >&2; exit 2 ;;
  esac
done
printf '%s\t%s\t%s\n' "$text" "$ptext" "$seed" >> "$(dirname "$0")/calls.tsv"
case "$text" in *FAIL*) echo "loading model"; echo "fake: cannot speak this" >&2; exit 3 ;; esac
case "$text" in *NOOUT*) exit 0 ;; esac
case "$text" in *SLEEP*) sleep 30 ;; esac
cp "$prompt" "$out"
"""
# run through its interpreter: a tmp mounted noexec would refuse a script run directly
TEMPLATE = "bash SCRIPT --prompt {prompt_wav} --ptext {prompt_text} --text={text} " \
           "--out {out_wav} --seed {seed}"

PY_FAKE = """#!{python}
# writes the prompt as 24 kHz stereo into out_dir under a name of its own
import sys
import numpy as np
import soundfile
from scipy.signal import resample_poly
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
x, sr = soundfile.read(args["--prompt"], dtype="float32")
y = resample_poly(x, 3, 2).astype(np.float32)
soundfile.write(args["--dir"] + "/20250101.wav", np.stack([y, y], 1), 24000)
"""


def template(script):
    return TEMPLATE.replace("SCRIPT", str(script))


def make_script(tmp_path, body=FAKE, name="fake_tts.sh"):
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    path = d / name
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def make_prompts(tmp_path):
    """A stereo 8 kHz recording with two segments (two speakers): the prompt directory."""
    d = tmp_path / "prompts"
    d.mkdir()
    sr = 8000
    t = np.arange(4 * sr) / sr
    x = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.1 * np.sin(2 * np.pi * 330 * t)], 1)
    soundfile.write(d / "rec.wav", x.astype(np.float32), sr, subtype="PCM_16")
    utts = [Utterance("A-rec-O1-000050-000150", str(d / "rec.wav"), spk="A-rec-O1",
                      text="it's the 'first' prompt", lang="English-American",
                      segment=Segment("A-rec", 0.5, 1.5)),
            Utterance("A-rec-O2-000200-000350", str(d / "rec.wav"), spk="A-rec-O2",
                      text="second prompt", lang="English-American",
                      segment=Segment("A-rec", 2.0, 3.5))]
    write_data_dir(d, utts)
    return d


def make_text(tmp_path, texts, name="text"):
    d = tmp_path / name
    write_data_dir(d, [Utterance(f"sel-{i:04d}", None, text=t, lang="English")
                       for i, t in enumerate(texts)])
    return d


def calls(script):
    path = script.parent / "calls.tsv"
    return [line.split("\t") for line in path.read_text().splitlines()] if path.exists() else []


def test_registry_and_voices(tmp_path):
    assert tts_classes["command"] is CommandTTS
    script = make_script(tmp_path)
    prompts = make_prompts(tmp_path)
    tts = load_tts("command", {"command": template(script),
                               "prompts": str(prompts)})
    assert tts.voices() == ["A-rec-O1-000050-000150", "A-rec-O2-000200-000350"]
    tts.check()
    conf = tts.config()
    assert conf["n_prompts"] == 2 and conf["command"].startswith(f"bash {script}")
    # an explicit list gives the same prompts (same hash)
    same = CommandTTS(template(script), prompts=[
        {"id": "A-rec-O1-000050-000150", "wav": str(prompts / "rec.wav"),
         "text": "it's the 'first' prompt", "start": 0.5, "end": 1.5},
        {"id": "A-rec-O2-000200-000350", "wav": str(prompts / "rec.wav"),
         "text": "second prompt", "start": 2.0, "end": 3.5}])
    assert same.config() == conf


def test_synthesize_runs_the_command(tmp_path):
    script = make_script(tmp_path)
    tts = CommandTTS(template(script), prompts=str(make_prompts(tmp_path)))
    voice = tts.voices()[1]
    text = 'a "quoted" $HOME `date` ; rm -rf / it\'s  fine'
    wav, sr, info = tts.synthesize_with_info(text, voice, np.random.default_rng(0))
    assert sr == 16000 and wav.dtype == np.float32 and wav.ndim == 1
    prompt = tts.prompt_audio(voice)
    assert len(prompt) == 24000  # 1.5 s of the 8 kHz stereo recording, at 16 kHz, mono
    # the output is the prompt WAV written for the command (16-bit) read back
    np.testing.assert_allclose(wav, prompt, atol=1 / 32768 + 1e-6)
    [(got_text, got_ptext, got_seed)] = calls(script)
    assert got_text == " ".join(text.split()) and got_ptext == "second prompt"
    assert int(got_seed) == info["seed"]
    # same rng state, same seed placeholder
    assert tts.synthesize_with_info(text, voice, np.random.default_rng(0))[2] == info
    with pytest.raises(TextNotSpeakable):
        tts.synthesize("...", voice, np.random.default_rng(0))
    assert len(calls(script)) == 2  # not run for an unspeakable text
    with pytest.raises(ValueError, match="unknown voice"):
        tts.synthesize("hello", "nope", np.random.default_rng(0))


def test_output_in_out_dir_resampled_to_mono_16k(tmp_path):
    script = make_script(tmp_path, PY_FAKE.replace("{python}", sys.executable), "fake.py")
    tts = CommandTTS(f"{sys.executable} {script} --prompt {{prompt_wav}} --dir {{out_dir}} "
                     f"--text {{text}}",
                     prompts=str(make_prompts(tmp_path)))
    wav, sr = tts.synthesize("hello", tts.voices()[0], np.random.default_rng(1))
    assert sr == 16000 and wav.ndim == 1 and abs(len(wav) - 16000) <= 2
    ref = tts.prompt_audio(tts.voices()[0])
    assert np.abs(wav[100:-100] - ref[100:-100]).max() < 0.02


def test_failures_are_synthesis_failed(tmp_path):
    script = make_script(tmp_path)
    prompts = str(make_prompts(tmp_path))
    tts = CommandTTS(template(script), prompts=prompts, timeout=1)
    v = tts.voices()[0]
    rng = np.random.default_rng(0)
    with pytest.raises(SynthesisFailed, match=r"exited with status 3: loading model \| "
                                              r"fake: cannot speak this"):
        tts.synthesize("please FAIL", v, rng)
    with pytest.raises(SynthesisFailed, match="wrote no audio file"):
        tts.synthesize("NOOUT here", v, rng)
    start = time.time()
    with pytest.raises(SynthesisFailed, match="timed out after 1 s"):
        tts.synthesize("SLEEP now", v, rng)
    assert time.time() - start < 10  # the sleeping child was killed with its shell
    bad = CommandTTS(f"echo hi > {{out_wav}} #{{text}}", prompts=prompts)
    with pytest.raises(SynthesisFailed, match="cannot read the command's output tts.wav"):
        bad.synthesize("x", v, rng)


def test_template_and_check_errors(tmp_path):
    prompts = str(make_prompts(tmp_path))
    for command, msg in [("tts {txt} {out_wav}", r"unknown placeholder \{txt\}"),
                         ("tts '{text}' {out_wav}", "quoted in the command"),
                         ("tts {text!r} {out_wav}", "conversion or format spec"),
                         ("tts {prompt_wav} {out_wav}", r"has no \{text\}"),
                         ("tts {text}", r"neither \{out_wav\} nor \{out_dir\}"),
                         ("tts {text} {out_wav", "a literal brace")]:
        with pytest.raises(ValueError, match=msg):
            CommandTTS(command, prompts=prompts)
    with pytest.raises(RuntimeError, match="program 'no-such-tts-program' .* not found on PATH"):
        CommandTTS("FOO=1 no-such-tts-program {text} {out_wav}", prompts=prompts).check()
    with pytest.raises(RuntimeError, match="program '/nowhere/tts' .* not found"):
        CommandTTS("/nowhere/tts {text} {out_wav}", prompts=prompts).check()
    CommandTTS("cd /tmp && cp {prompt_wav} {out_wav} # {text}", prompts=prompts,
               program="cp").check()
    with pytest.raises(RuntimeError, match="audio of prompt p1 not found: /no/file.wav"):
        CommandTTS("cp {prompt_wav} {out_wav} # {text}",
                   prompts=[{"id": "p1", "wav": "/no/file.wav"}]).check()
    with pytest.raises(ValueError, match="unknown prompt field"):
        CommandTTS("cp {prompt_wav} {out_wav} # {text}", prompts=[{"id": "p", "wav": "a",
                                                                    "spk": "x"}])
    with pytest.raises(ValueError, match="given twice"):
        CommandTTS("cp {prompt_wav} {out_wav} # {text}",
                   prompts=[{"id": "p", "wav": "a"}, {"id": "p", "wav": "b"}])


def test_synthesize_dir_counts_failures_and_retries_them(tmp_path):
    script = make_script(tmp_path)
    tts = CommandTTS(template(script), prompts=str(make_prompts(tmp_path)))
    texts = [f"sentence number {i}" for i in range(20)]
    texts[3] = "this one will FAIL"
    out = tmp_path / "out"
    s = synthesize_dir(str(make_text(tmp_path, texts)), str(out), tts, progress=False)
    assert s["kept"] == 19 and s["dropped"] == {"failed": 1}  # 5 %: not more than 5 %
    validate_data_dir(out)
    assert "dropped: 1, failed: 1" in (out / "tts_report.txt").read_text()
    log = {json.loads(x)["utt"]: json.loads(x) for x in (out / "tts_log.jsonl").read_text()
           .splitlines()}
    assert log["sel-0003"]["dropped"] == "failed"
    assert "cannot speak this" in log["sel-0003"]["detail"]
    assert log["sel-0000"]["voice"] in tts.voices() and "seed" in log["sel-0000"]

    # two of 20 (10 %) is an error naming the count and the first failure
    texts[7] = "FAIL again"
    inp2 = make_text(tmp_path, texts, "text2")
    out2 = tmp_path / "out2"
    # (stopped as soon as it is certain: the second failure)
    with pytest.raises(SynthesisError, match=r"2 of (\d+) utterances failed, more than "
                                             r"max_fail_ratio 0.05 of the 20 utterances "
                                             r"\(10.0%\); first: sel-000[37]: command exited "
                                             r"with status 3: .*cannot speak") as e:
        synthesize_dir(str(inp2), str(out2), tts, progress=False)
    tried = int(str(e.value).split(" of ")[1].split()[0])
    assert not (out2 / "wav.scp").exists()
    log = (out2 / "tts_log.jsonl").read_text().splitlines()
    assert len(log) == tried and sum('"failed"' in x for x in log) == 2
    # ... allowed with a larger max_fail_ratio
    s = synthesize_dir(str(inp2), str(out2), tts, progress=False, max_fail_ratio=0.1)
    assert s["kept"] == 18 and s["reused"] == tried - 2 and s["dropped"] == {"failed": 2}
    # a rerun tries the failed ones again: the program works now
    make_script(tmp_path, FAKE.replace("exit 3", "true"))
    n = len(calls(script))
    s = synthesize_dir(str(inp2), str(out2), tts, progress=False)
    assert s["kept"] == 20 and s["reused"] == 18 and s["dropped"] == {}
    assert len(calls(script)) == n + 2


def test_stops_early_when_everything_fails(tmp_path, monkeypatch):
    script = make_script(tmp_path)
    tts = CommandTTS(template(script), prompts=str(make_prompts(tmp_path)))
    inp = make_text(tmp_path, [f"FAIL {i}" for i in range(12)])
    monkeypatch.setattr(synth, "FAIL_FAST", 3)
    with pytest.raises(SynthesisError, match="3 of 3 utterances failed, the first 3 "
                                             "utterances all failed: the backend does not work"):
        synthesize_dir(str(inp), str(tmp_path / "o1"), tts, progress=False, max_fail_ratio=0.5)
    assert len(calls(script)) == 3
    # the default ratio: stopped as soon as more than 5 % of the 12 (one) failed
    with pytest.raises(SynthesisError, match="1 of 1 utterances failed, more than "
                                             "max_fail_ratio 0.05 of the 12"):
        synthesize_dir(str(inp), str(tmp_path / "o2"), tts, progress=False)
    with pytest.raises(SynthesisError, match=r"max_fail_ratio must be in \[0, 1\]"):
        synthesize_dir(str(inp), str(tmp_path / "o3"), tts, progress=False, max_fail_ratio=2)


def test_cli_and_parallel_jobs(tmp_path, capsys):
    script = make_script(tmp_path)
    prompts = make_prompts(tmp_path)
    inp = make_text(tmp_path, [f"line {i}" for i in range(6)])
    assert cli.main(["--in", str(inp), "--out", str(tmp_path / "out"), "--nj", "2",
                     "--progress", "false", "--tts", "command", "--tts_conf",
                     f"command={template(script)}", f"prompts={prompts}",
                     "timeout=30"]) == 0
    assert "6 of 6 utterances spoken" in capsys.readouterr().out
    for p in read_kv(tmp_path / "out" / "wav.scp").values():
        info = soundfile.info(p)
        assert info.samplerate == 16000 and info.duration in (1.0, 1.5)
    assert sorted(c[0] for c in calls(script)) == sorted(f"line {i}" for i in range(6))
