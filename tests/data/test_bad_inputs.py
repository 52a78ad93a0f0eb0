"""README "Bad input: what each stage does" (issue #17 §1): one test per row of the table.

Each test plants one bad input in an otherwise good data directory
(`espnet_sllm.testing.bad_corpus`) and runs the real command line of the stage that should
catch it (format_data = stage 2, filter_data = stage 3, sllm_train's up-front checks = before
stage 5/6, check_pretrained = stage 4, sllm_inference = stage 7), asserting the count name, the
report line or the one-line error (file:line). The entry points run in this process (their
``main``), which keeps the file fast.
"""
import pytest
import soundfile as sf
import yaml

from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.testing.bad_corpus import ROWS, make_good_dir, plant, plant_checkpoint

UTT = "spk1-u02"  # the utterance bad_corpus breaks


def format_data(data, out, capsys, *opts):
    """Stage 2's command line; returns (exit status, stdout, stderr, format_report.txt)."""
    from espnet_sllm.bin import format_data as cli

    rc = cli.main(["--in", str(data), "--out", str(out), "--nj", "1", *map(str, opts)])
    captured = capsys.readouterr()
    report = (out / "format_report.txt").read_text(encoding="utf-8") \
        if (out / "format_report.txt").is_file() else ""
    return rc, captured.out, captured.err, report


def filter_data(dump, out, capsys, *opts):
    """Stage 3's command line (default limits 0.1..30 s); returns (status, stdout, report)."""
    from espnet_sllm.bin import filter_data as cli

    rc = cli.main(["--in", str(dump), "--out", str(out), *map(str, opts)])
    captured = capsys.readouterr()
    return rc, captured.out + captured.err, (out / "filter_report.txt").read_text()


def test_good_dir_passes_every_stage_untouched(tmp_path, capsys):
    for segments in (False, True):
        data = make_good_dir(tmp_path / f"s{segments}", segments=segments)
        dump = tmp_path / f"dump{segments}"
        rc, out, err, report = format_data(data, dump, capsys)
        assert rc == 0, err
        assert "4 written, 0 kept from an earlier run, 0 dropped, 0 text-only, 0 resampled" in out
        assert "repaired:" not in report
        rc, out, report = filter_data(dump, tmp_path / f"f{segments}", capsys)
        assert rc == 0 and "kept 4 of 4" in out
    assert set(ROWS) >= {"missing_audio", "unreadable_audio", "unreadable_at_decoding"}


def test_missing_audio(tmp_path, capsys):
    data = make_good_dir(tmp_path)
    info = plant(data, "missing_audio")
    rc, out, err, report = format_data(data, tmp_path / "dump", capsys)
    assert rc == 0, err
    assert "1 dropped (missing_audio: 1)" in out
    assert "dropped for missing_audio: 1" in report
    assert f"dropped {UTT}: missing_audio ({data}/wav.scp:2: audio file not found: " \
           f"{info['path']})" in report
    assert UTT not in read_kv(tmp_path / "dump" / "wav.scp")


@pytest.mark.parametrize("variant", ROWS["unreadable_audio"][0])
def test_unreadable_audio(tmp_path, capsys, variant):
    data = make_good_dir(tmp_path)
    plant(data, "unreadable_audio", variant)
    rc, out, err, report = format_data(data, tmp_path / "dump", capsys)
    assert rc == 0, err
    assert "dropped for unreadable_audio: 1" in report
    line = next(x for x in report.splitlines() if x.startswith(f"dropped {UTT}: "))
    assert line.startswith(f"dropped {UTT}: unreadable_audio ({data}/wav.scp:2: ")
    if variant == "truncated":
        assert "is truncated: its header gives 32000 bytes of audio data" in line
    assert list(read_kv(tmp_path / "dump" / "wav.scp")) == ["spk1-u01", "spk2-u03", "spk2-u04"]


@pytest.mark.parametrize("rate", ROWS["sample_rate"][0])
def test_sample_rate(tmp_path, capsys, rate):
    data = make_good_dir(tmp_path)
    plant(data, "sample_rate", rate)
    rc, out, err, report = format_data(data, tmp_path / "dump", capsys)
    assert rc == 0, err
    assert "0 dropped" in out and "1 resampled" in out
    assert f"resampled to 16000 Hz: 1 (from {rate} Hz: 1)" in report
    info = sf.info(read_kv(tmp_path / "dump" / "wav.scp")[UTT])
    assert (info.samplerate, info.channels, info.frames) == (16000, 1, 16000)


@pytest.mark.parametrize("channels", ROWS["multichannel"][0])
def test_multichannel(tmp_path, capsys, channels):
    """Mixed down by the mean of the channels (default), or --channel 0 keeps the first."""
    data = make_good_dir(tmp_path)
    plant(data, "multichannel", channels)
    rms = {}
    for channel, how in (("mean", "mixed down by the mean of the channels"),
                         ("0", "channel 0 kept")):
        dump = tmp_path / f"dump_{channel}"
        rc, out, err, report = format_data(data, dump, capsys, "--channel", channel)
        assert rc == 0, err
        assert "1 multi-channel" in out and f"multi-channel, {how}: 1" in report
        x, fs = sf.read(read_kv(dump / "wav.scp")[UTT])
        assert x.ndim == 1 and fs == 16000
        rms[channel] = float((x[1000:-1000] ** 2).mean() ** 0.5)
    # bad_corpus: channel 0 is the tone at 0.3, channel c > 0 the tone at 0.3 * 0.5 / c
    assert rms["0"] == pytest.approx(0.3 / 2 ** 0.5, rel=0.01)
    assert rms["mean"] < 0.8 * rms["0"]


@pytest.mark.parametrize("variant", ROWS["empty_text"][0])
def test_empty_text(tmp_path, capsys, variant):
    data = make_good_dir(tmp_path)
    plant(data, "empty_text", variant)
    rc, _, err, _ = format_data(data, tmp_path / "dump", capsys)
    assert rc == 0, err  # stage 2 keeps it: the text is stage 3's business
    rc, out, report = filter_data(tmp_path / "dump", tmp_path / "filtered", capsys)
    assert rc == 0 and "kept 3 of 4" in out
    assert "dropped for empty text: 1" in report and f"dropped {UTT}: empty text" in report


def test_not_utf8(tmp_path, capsys):
    data = make_good_dir(tmp_path)
    info = plant(data, "not_utf8")
    rc, out, err, _ = format_data(data, tmp_path / "dump", capsys)
    assert rc == 1
    assert err.strip().splitlines()[-1] == (
        f"format_data: error: {data}/text:{info['line']}: not UTF-8 (byte 0xe9 at byte 13 of "
        f"the line: b'spk1-u02 caf\\xe9 au lait')")
    rc, out, err, report = format_data(data, tmp_path / "dump", capsys, "--skip_bad_text", "true")
    assert rc == 0, err
    assert "1 dropped (not_utf8: 1)" in out
    assert f"dropped {UTT}: not_utf8 ({data}/text:{info['line']})" in report


@pytest.mark.parametrize("variant", ROWS["not_in_every_file"][0])
def test_not_in_every_file(tmp_path, capsys, variant):
    """Kaldi's fix_data_dir semantics: in text but not in wav.scp, or the reverse: dropped."""
    data = make_good_dir(tmp_path)
    plant(data, "not_in_every_file", variant)
    rc, out, err, report = format_data(data, tmp_path / "dump", capsys)
    assert rc == 0, err
    assert "1 dropped (not_in_every_file: 1)" in out
    lack = "wav.scp" if variant == "text_only" else "text"
    have = "utt2spk, text, utt2lang" if variant == "text_only" else "utt2spk, wav.scp, utt2lang"
    assert f"dropped {UTT}: not_in_every_file (in {have}; not in {lack})" in report
    assert UTT not in read_kv(tmp_path / "dump" / "utt2lang")  # restricted everywhere


def test_duplicate_id(tmp_path, capsys):
    data = make_good_dir(tmp_path)
    plant(data, "duplicate_id")
    rc, _, err, _ = format_data(data, tmp_path / "dump", capsys)
    assert rc == 1
    assert err.strip().splitlines()[-1] == (
        f"format_data: error: {data}/text:3: duplicate key '{UTT}' (first seen on line 2)")


def test_unsorted(tmp_path, capsys):
    """Sorted by stage 2 (the validator of data/ still names the first unsorted line)."""
    data = make_good_dir(tmp_path)
    plant(data, "unsorted")
    with pytest.raises(ValueError, match=r"utt2spk:2: not sorted: 'spk2-u03' comes after "):
        validate_data_dir(data)
    dump = tmp_path / "dump"
    rc, out, err, report = format_data(data, dump, capsys)
    assert rc == 0, err
    assert "4 written, 0 kept from an earlier run, 0 dropped" in out
    for name in ("wav.scp", "text", "utt2spk", "utt2lang"):
        assert f"repaired: {name}: not sorted (sorted here, in LC_ALL=C order)" in report
    assert validate_data_dir(dump)["utterances"] == 4


@pytest.mark.parametrize("variant", ROWS["bad_segment"][0])
def test_bad_segment(tmp_path, capsys, variant):
    data = make_good_dir(tmp_path, segments=True)
    plant(data, "bad_segment", variant)
    dump = tmp_path / "dump"
    rc, out, err, report = format_data(data, dump, capsys)
    assert rc == 0, err
    line = next((x for x in report.splitlines() if x.startswith(f"dropped {UTT}: ")), None)
    if variant == "small_overrun":  # 0.2 s over (< --max_overshoot 0.5): cut at the end
        assert line is None and "0 dropped" in out
        assert "segments cut short at the end of their recording (at most --max_overshoot " \
               "0.5s over): 1" in report
        assert read_kv(dump / "utt2num_samples")[UTT] == str(int((2.4 - 1.2) * 16000))
    elif variant == "beyond_end":
        assert "dropped for segment_beyond_audio: 1" in report
        assert line == (f"dropped {UTT}: segment_beyond_audio (segment ends at 3.40s, 1.00s after "
                        f"the end of recording spk1-rec (more than --max_overshoot 0.5s))")
    else:
        end = "1.20" if variant == "zero_length" else "0.70"
        assert "dropped for bad_segment_time: 1" in report
        assert line == (f"dropped {UTT}: bad_segment_time ({data}/segments:2: need 0 <= start "
                        f"< end, got 'spk1-rec 1.20 {end}')")


def test_long_audio(tmp_path, capsys):
    data = make_good_dir(tmp_path)
    plant(data, "long_audio")
    rc, _, err, _ = format_data(data, tmp_path / "dump", capsys)
    assert rc == 0, err
    rc, out, report = filter_data(tmp_path / "dump", tmp_path / "filtered", capsys)
    assert rc == 0 and "kept 3 of 4" in out
    assert "dropped for too long: 1" in report
    assert f"dropped {UTT}: too long (31.000s > 30.0s)" in report


def _train_args(data, conf, tmp_path):
    args = ["--config", str(conf), "--output_dir", str(tmp_path / "exp")]
    for prefix in ("train", "valid"):
        for name, dn in (("wav.scp", "speech,sound"), ("text", "text,text"),
                         ("utt2lang", "lang,text")):
            args += [f"--{prefix}_data_path_and_name_and_type", f"{data}/{name},{dn}"]
    return args


@pytest.mark.parametrize("config", ["languages", "prompt_template"])
def test_unknown_language(tmp_path, config):
    """sllm_train stops before ESPnet starts (stage 5's --collect_stats and stage 6 alike)."""
    from espnet_sllm.bin.sllm_train import main

    data = make_good_dir(tmp_path)
    plant(data, "unknown_language")
    conf = {"llm": "hf", "llm_conf": {"model_name_or_path": str(tmp_path / "llm")}}
    if config == "languages":
        conf.update(languages=["English", "German"],
                    preprocessor_conf={"prompt_template": "{speech} Transcribe."})
        expected = (f"sllm_train: error: {data}/utt2lang:2: utterance {UTT}: language 'Klingon' "
                    f"is not in the config's languages; valid: ['English', 'German'] (1 "
                    f"utterance(s) of this file have labels outside it: 'Klingon' x1)")
    else:
        conf.update(preprocessor_conf={"prompt_template": {"English": "{speech} Transcribe.",
                                                           "German": "{speech} Schreibe."}})
        expected = (f"sllm_train: error: {data}/utt2lang:2: utterance {UTT}: no prompt template "
                    f"for lang='Klingon' (prompt_key lang) and no 'default' one; they exist for "
                    f"['English', 'German']")
    (tmp_path / "conf.yaml").write_text(yaml.safe_dump(conf))
    with pytest.raises(SystemExit) as e:
        main(_train_args(data, tmp_path / "conf.yaml", tmp_path))
    assert str(e.value) == expected
    assert not (tmp_path / "exp").exists()


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    from espnet_sllm.testing.llm import make_tiny_llm

    return make_tiny_llm(str(tmp_path_factory.mktemp("llm") / "qwen2"), "qwen2")


def test_unreadable_at_decoding(tmp_path, capsys, tiny_llm):
    """The other utterances decode; the unreadable one is listed in 1best_recog/failed and gets
    an empty hypothesis (stage 9 scores it as all deletions)."""
    from espnet_sllm.bin.sllm_inference import main
    from espnet_sllm.testing.configs import config_to_args, tiny_sllm_config

    data = make_good_dir(tmp_path)
    dump = tmp_path / "dump"
    assert format_data(data, dump, capsys)[0] == 0
    info = plant(dump, "unreadable_at_decoding")
    conf = tmp_path / "config.yaml"
    conf.write_text(yaml.safe_dump(vars(config_to_args(tiny_sllm_config(tiny_llm)))))
    out = tmp_path / "decode"
    main(["--train_config", str(conf), "--output_dir", str(out), "--num_workers", "0",
          "--data_path_and_name_and_type", f"{dump}/wav.scp,speech,sound",
          "--max_new_tokens", "3"])
    failed = read_kv(out / "1best_recog" / "failed")
    assert list(failed) == [UTT] and info["path"] in failed[UTT]
    text = read_kv(out / "1best_recog" / "text")
    assert list(text) == ["spk1-u01", UTT, "spk2-u03", "spk2-u04"] and text[UTT] == ""
    assert all(text[u] for u in text if u != UTT)


@pytest.mark.parametrize("variant", ["missing_llm", "missing_tokenizer", "tokenizer_mismatch",
                                     "no_weights", "missing_init_param"])
def test_bad_checkpoint(tmp_path, tiny_llm, variant):
    from espnet_sllm.bin.check_pretrained import main

    conf = plant_checkpoint(tiny_llm, tmp_path, variant)
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(conf))
    with pytest.raises(SystemExit) as e:
        main(["--config", str(path)])
    message = str(e.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"check_pretrained: error: {path}: ")
    name = conf["llm_conf"]["model_name_or_path"]
    expected = {
        "missing_llm": f"llm_conf.model_name_or_path: {name}: no such directory",
        "missing_tokenizer": f"llm_conf.tokenizer_name_or_path: "
                             f"{conf['llm_conf'].get('tokenizer_name_or_path')}: no such directory",
        "tokenizer_mismatch": f"llm_conf.model_name_or_path={name!r}: its tokenizer has 200 "
                              f"tokens (before llm_conf.special_tokens) but its config.json "
                              f"gives vocab_size 190",
        "no_weights": f"llm_conf.model_name_or_path: {name} holds no weights",
        "missing_init_param": f"init_param: {tmp_path}/no_such_model.pth: no such file",
    }[variant]
    assert expected in message


def test_too_short_for_data2vec2_at_decoding(tmp_path, capsys, tiny_llm):
    """An utterance under data2vec2's 1040 samples (7 MFCC frames) in a test set: one error line
    naming the utterance and the limit, not a traceback."""
    import numpy as np

    from espnet_sllm.bin.sllm_inference import main
    from espnet_sllm.testing.configs import config_to_args, tiny_sllm_config
    from espnet_sllm.testing.data2vec2 import make_tiny_data2vec2

    enc = make_tiny_data2vec2(str(tmp_path / "d2v"))
    data = tmp_path / "data"
    data.mkdir()
    for u, n in (("a1", 16000), ("a2", 900)):
        sf.write(str(data / f"{u}.wav"), np.zeros(n, np.float32) + 0.01, 16000)
    (data / "wav.scp").write_text(f"a1 {data}/a1.wav\na2 {data}/a2.wav\n")
    cfg = tiny_sllm_config(tiny_llm, encoder="data2vec2")
    cfg.update(frontend=None, encoder_conf={"model_name_or_path": enc})
    conf = tmp_path / "config.yaml"
    conf.write_text(yaml.safe_dump(vars(config_to_args(cfg))))
    with pytest.raises(SystemExit) as e:
        main(["--train_config", str(conf), "--output_dir", str(tmp_path / "decode"),
              "--num_workers", "0", "--data_path_and_name_and_type",
              f"{data}/wav.scp,speech,sound", "--max_new_tokens", "3", "--batch_size", "2"])
    assert e.value.code == 1
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "sllm_inference: error: decoding the batch of row 0 = a1, row 1 = a2: " in message
    assert "an utterance of 900 samples (56.2 ms; row 1 of the batch)" in message and "an utterance of 900 samples" in message
    assert "at least 1040 samples" in message
