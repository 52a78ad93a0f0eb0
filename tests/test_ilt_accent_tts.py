"""espnet_sllm.data.accent_tts (ILT data step 3: TTS of English accents): prompt choice,
round-robin accents, the command backend end to end with a fake voice-cloning script (the
real subprocess path), failures, and espeak-ng (debug) end to end."""
import json
import shutil
import stat

import numpy as np
import pytest
import soundfile

from espnet_sllm.data import accent_tts as at
from espnet_sllm.data.kaldi_dir import Segment, Utterance, read_kv, validate_data_dir, \
    write_data_dir
from espnet_sllm.data.subset import seeded_order

ACCENTS = ["English-American", "English-Australian", "English-British", "English-Filipino",
           "English-Indian"]
FAKE = r"""#!/bin/bash
# fake voice cloning: the output is the prompt; a text with FAIL fails
case "$2" in *FAIL*) echo "fake: out of memory" >&2; exit 1 ;; esac
cp "$1" "$3"
"""
COMMAND = "bash SCRIPT {prompt_wav} --text={text} {out_wav}"
# segment lengths (s) of each speaker: 2 s is too short, 12 s too long for a prompt
LENGTHS = (2.0, 4.0, 6.0, 12.0)


def make_train(tmp_path, labels=ACCENTS + ["Japanese"]):
    """An MLC-SLM-like training directory: per label 2 recordings x 2 speakers, one segment
    of each of `LENGTHS` per speaker, a tone per recording."""
    d = tmp_path / "train"
    (d / "audio").mkdir(parents=True)
    utts = []
    for k, lab in enumerate(labels):
        for r in range(2):
            rec = f"{lab}-{r:04d}_phone"
            sr = 16000
            t = np.arange(int(sr * 60)) / sr
            x = 0.2 * np.sin(2 * np.pi * (200 + 40 * k + 10 * r) * t)
            path = d / "audio" / f"{rec}.wav"
            soundfile.write(path, x.astype(np.float32), sr, subtype="PCM_16")
            start = 0.0
            for spk in ("O1", "O2"):
                for length in LENGTHS:
                    end = start + length
                    uid = f"{rec}-{spk}-{round(start * 100):06d}-{round(end * 100):06d}"
                    utts.append(Utterance(uid, str(path), spk=f"{rec}-{spk}",
                                          text=f"prompt {spk} of {length:g} seconds", lang=lab,
                                          segment=Segment(rec, start, end)))
                    start += length + 0.5
    write_data_dir(d, utts)
    return d


def make_text(tmp_path, texts, name="sel"):
    d = tmp_path / name
    write_data_dir(d, [Utterance(f"sel-{i:04d}", None, text=t, lang="English")
                       for i, t in enumerate(texts)])
    return d


def make_script(tmp_path):
    path = tmp_path / "fake_clone.sh"
    path.write_text(FAKE)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_english_accents_and_round_robin():
    assert at.english_accents(["Japanese", "English-Indian", "English-American",
                               "English-Indian"]) == ["English-American", "English-Indian"]
    ids = [f"u{i:03d}" for i in range(23)]
    got = at.assign_accents(ids, ACCENTS, seed=3)
    order = seeded_order(ids, 3)
    assert [got[u] for u in order] == [ACCENTS[i % 5] for i in range(23)]
    counts = {a: list(got.values()).count(a) for a in ACCENTS}
    assert sorted(counts.values()) == [4, 4, 5, 5, 5]
    assert at.assign_accents(ids, ACCENTS, seed=4) != got  # another seed, another split


def test_select_prompts():
    utts, dur = [], {}
    for s in ("a", "b", "c"):
        for length in (2.0, 3.0, 5.0, 9.5, 10.5):
            u = Utterance(f"{s}-{length}", "x.wav", spk=s, text="hi")
            utts.append(u)
            dur[u.uttid] = length
    utts.append(Utterance("d-6", "x.wav", spk="d", text=" "))  # no transcript
    dur["d-6"] = 6.0
    first = at.select_prompts(utts, dur, n=4, min_sec=3, max_sec=10, seed=0)
    # the longest of every speaker first (in seeded speaker order), then the second longest
    order = seeded_order(["a", "b", "c"], 0)
    assert [u.uttid for u in first] == [f"{s}-9.5" for s in order] + [f"{order[0]}-5.0"]
    every = at.select_prompts(utts, dur, n=100, min_sec=3, max_sec=10, seed=0)
    assert len(every) == 9 and all(3 <= dur[u.uttid] <= 10 for u in every)
    assert at.select_prompts(utts, dur, n=4, min_sec=3, max_sec=10, seed=1) != first or \
        seeded_order(["a", "b", "c"], 1) == order


def test_command_backend_end_to_end(tmp_path):
    train = make_train(tmp_path)
    texts = [f"selected sentence {i} with rare words" for i in range(15)]
    sel = make_text(tmp_path, texts)
    out = tmp_path / "out"
    command = COMMAND.replace("SCRIPT", str(make_script(tmp_path)))
    s = at.accent_tts(str(sel), str(out), tts="command", tts_conf={"command": command},
                      prompt_dir=str(train), n_prompts=3, seed=7, progress=False)
    assert list(s["accents"]) == ACCENTS  # English labels only, sorted
    assert s["kept"] == 15 and s["failed"] == 0
    assert all(p["sentences"] == 3 and p["kept"] == 3 and p["prompts"] == 3
               for p in s["accents"].values())
    validate_data_dir(out)
    lang = read_kv(out / "utt2lang")
    assert lang == at.assign_accents(list(read_kv(sel / "text")), ACCENTS, seed=7)
    assert read_kv(out / "text") == read_kv(sel / "text")
    assert read_kv(out / "utt2spk") == read_kv(sel / "utt2spk")  # the input's speakers
    # each utterance is a clone of a prompt of its own accent, 3-10 s long
    prompt = read_kv(out / "utt2prompt")
    dur = {u: float(v) for u, v in read_kv(out / "utt2dur").items()}
    for u, p in prompt.items():
        assert p.startswith(lang[u] + "-")
        start, end = (int(x) / 100 for x in p.rsplit("-", 2)[1:])
        assert 3 <= end - start <= 10
        assert dur[u] == pytest.approx(end - start)
    wav = read_kv(out / "wav.scp")
    assert all(p.startswith(str(out / "accents")) for p in wav.values())
    # prompts.tsv: 3 per accent, two speakers first (round-robin over speakers)
    rows = [r.split("\t") for r in (out / "prompts.tsv").read_text().splitlines()[1:]]
    assert len(rows) == 15
    for a in ACCENTS:
        mine = [r for r in rows if r[0] == a]
        assert len(mine) == 3 and all(r[1].startswith(a) for r in mine)
        assert len({r[2] for r in mine}) == 3  # three speakers (the accent has four)
        assert all(float(r[3]) == 6.0 for r in mine)  # each speaker's longest of 3-10 s
    report = (out / "accent_tts_report.txt").read_text()
    assert "English-Indian\t3\t3\t3\t" in report and "failed: 0 of 15" in report
    # a rerun reuses everything
    s2 = at.accent_tts(str(sel), str(out), tts="command", tts_conf={"command": command},
                       prompt_dir=str(train), n_prompts=3, seed=7, progress=False)
    assert s2["kept"] == 15
    log = (out / "accents" / "English-American" / "tts" / "tts_report.txt").read_text()
    assert "reused from earlier runs: 3" in log


def test_failures_counted_and_over_the_ratio_an_error(tmp_path):
    train = make_train(tmp_path, ACCENTS[:2])
    texts = [f"sentence {i}" for i in range(20)]
    order = seeded_order([f"sel-{i:04d}" for i in range(20)], 0)
    texts[int(order[0].split("-")[1])] = "this will FAIL"  # -> the first accent
    sel = make_text(tmp_path, texts)
    command = COMMAND.replace("SCRIPT", str(make_script(tmp_path)))
    kw = dict(tts="command", tts_conf={"command": command}, prompt_dir=str(train),
              n_prompts=2, progress=False)
    # 1 of the 10 American sentences (10 %) failed: an error by default ...
    with pytest.raises(at.AccentTTSError, match=r"English-American: 1 of \d+ utterances failed, "
                                                r"more than max_fail_ratio 0.05 of the 10 .*"
                                                r"out of memory"):
        at.accent_tts(str(sel), str(tmp_path / "out"), **kw)
    # ... counted with a larger max_fail_ratio
    s = at.accent_tts(str(sel), str(tmp_path / "out"), max_fail_ratio=0.1, **kw)
    assert s["failed"] == 1 and s["kept"] == 19
    assert s["accents"]["English-American"]["failed"] == 1
    assert "failed: 1 of 20 (5.0%" in (tmp_path / "out" / "accent_tts_report.txt").read_text()
    assert len(read_kv(tmp_path / "out" / "utt2prompt")) == 19


def test_refusals(tmp_path):
    sel = make_text(tmp_path, ["a sentence"])
    train = make_train(tmp_path, ["English-American", "Japanese"])
    command = COMMAND.replace("SCRIPT", str(make_script(tmp_path)))
    with pytest.raises(at.AccentTTSError, match="--prompt_dir .* is needed"):
        at.accent_tts(str(sel), str(tmp_path / "o"), tts="command",
                      tts_conf={"command": command})
    with pytest.raises(at.AccentTTSError, match=r"--accents \['English-Indian'\]: not among"):
        at.accent_tts(str(sel), str(tmp_path / "o"), tts_conf={"command": command},
                      prompt_dir=str(train), accents=["English-Indian"])
    with pytest.raises(at.AccentTTSError, match="no prompt for English-American: no utterance "
                                                "of 20-30 s"):
        at.accent_tts(str(sel), str(tmp_path / "o"), tts_conf={"command": command},
                      prompt_dir=str(train), min_prompt_sec=20, max_prompt_sec=30)
    with pytest.raises(at.AccentTTSError, match="prompts=...: chosen per accent"):
        at.accent_tts(str(sel), str(tmp_path / "o"),
                      tts_conf={"command": command, "prompts": "x"}, prompt_dir=str(train))
    with pytest.raises(at.AccentTTSError, match="takes no prompts"):
        at.accent_tts(str(sel), str(tmp_path / "o"), tts="espnet_sllm.testing.tts:FakeTTS",
                      prompt_dir=str(train))
    with pytest.raises(RuntimeError, match="program 'no-such-tts' .* not found"):
        at.accent_tts(str(sel), str(tmp_path / "o"), prompt_dir=str(train),
                      tts_conf={"command": "no-such-tts {text} {out_wav}"})
    assert not (tmp_path / "o").exists()
    jp = make_train(tmp_path / "jp", ["Japanese"])
    with pytest.raises(at.AccentTTSError, match="no English-<Accent> label"):
        at.accent_tts(str(sel), str(tmp_path / "o"), tts_conf={"command": command},
                      prompt_dir=str(jp))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_espeak_end_to_end(tmp_path, capsys):
    texts = ["The weather is lovely today.", "Please translate this sentence.",
             "Thirty three birds sat on the fence.", "Where is the nearest station?",
             "Language models learn from data."]
    sel = make_text(tmp_path, texts)
    out = tmp_path / "out"
    assert at.main(["--text_dir", str(sel), "--out", str(out), "--tts", "espeak", "--seed", "1",
                    "--progress", "false"]) == 0
    assert "5 of 5 sentences spoken" in capsys.readouterr().out
    validate_data_dir(out)
    lang = read_kv(out / "utt2lang")
    assert sorted(lang.values()) == ACCENTS  # one sentence per accent
    assert lang == at.assign_accents(list(lang), ACCENTS, seed=1)
    assert not (out / "utt2prompt").exists() and not (out / "prompts.tsv").exists()
    for u, p in read_kv(out / "wav.scp").items():
        x, sr = soundfile.read(p)
        assert sr == 16000 and len(x) > 8000 and np.abs(x).max() > 0.1
        log = json.loads((out / "accents" / lang[u] / "tts" / "tts_log.jsonl").read_text())
        assert log["voice"].split("+")[0] == at.ESPEAK_VOICES[lang[u]]
    with pytest.raises(SystemExit):
        at.main(["--help"])
