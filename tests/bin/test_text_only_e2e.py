"""Text-only utterances end to end (issue #11 §2): a data directory mixing speech (asr) and
text-only (qa, empty wav.scp entry) utterances goes through stages 2-3 (format_data,
filter_data), ``sllm_train --collect_stats``, one epoch of training, and ``sllm_inference``."""
import os

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from espnet_sllm.data.filtering import filter_data
from espnet_sllm.data.formatting import format_data
from espnet_sllm.data.kaldi_dir import Utterance, read_kv, write_data_dir
from espnet_sllm.testing.configs import tiny_sllm_config

from .test_train_inference import run

WORDS = ["red", "blue", "cat", "dog", "one", "two", "fish", "tree"]


def write_mixed_data(root, n_asr, n_qa, seed):
    """asr utterances of two tone-words (all of the same length, so that ESPnet's conformer
    subsampling gives each utterance the same frames in any batch) and qa utterances without
    audio, interleaved by id."""
    rng = np.random.RandomState(seed)
    wav_dir = os.path.join(root + "_wav")
    os.makedirs(wav_dir, exist_ok=True)
    utts = []
    for i in range(n_asr):
        words = list(rng.choice(WORDS, size=2))
        sig = np.concatenate([
            0.3 * np.sin(2 * np.pi * (200 + 100 * WORDS.index(w)) * np.arange(3200) / 16000)
            for w in words
        ]).astype(np.float32)
        path = os.path.join(wav_dir, f"a{i:02d}.wav")
        sf.write(path, sig, 16000)
        utts.append(Utterance(f"u{2 * i:02d}", path, spk="u", text=" ".join(words),
                              task="asr", text_src=" ".join(words)))
    for i in range(n_qa):
        a, b = rng.choice(WORDS, size=2)
        utts.append(Utterance(f"u{2 * i + 1:02d}", "", spk="u", text=f"{a} {b}", task="qa",
                              text_src=f"what is {a} and {b}"))
    write_data_dir(root, utts)
    return root


def data_args(prefix, d, with_text=True):
    names = [("wav.scp", "speech", "sound"), ("utt2task", "task", "text"),
             ("text_src", "text_src", "text")] + ([("text", "text", "text")] if with_text else [])
    out = []
    for f, name, kind in names:
        out += [f"--{prefix}data_path_and_name_and_type", f"{d}/{f},{name},{kind}"]
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_llm_dirs):
    tmp = tmp_path_factory.mktemp("text_only_e2e")
    dump = {}
    for name, n_asr, n_qa, seed in (("train", 8, 4, 0), ("valid", 4, 2, 1)):
        raw = write_mixed_data(str(tmp / "data" / name), n_asr, n_qa, seed)
        counts = format_data(raw, str(tmp / "dump" / "org" / name), nj=1, progress=False)
        assert counts["text_only"] == n_qa and counts["dropped"] == 0
        dump[name] = str(tmp / "dump" / name)
        filter_data(str(tmp / "dump" / "org" / name), dump[name], min_sec=0.1, max_sec=30)
    cfg = tiny_sllm_config(tiny_llm_dirs["qwen2"], "conformer", ctc_weight=0.3)
    cfg["preprocessor_conf"] = {
        "prompt_key": "task", "text_only_tasks": ["qa"],
        "prompt_template": {"asr": "{speech} Transcribe speech to text.",
                            "qa": "{speech}Question: {text_src} Answer:"}}
    # Sorted by speech length, the 4 text-only training utterances (0 samples) form a batch of
    # their own (no encoder run, NaN CTC stats) beside 2 batches of audio; validation mixes
    # both kinds in one batch. The other samplers are checked on the same shape files below.
    cfg.update(max_epoch=1, batch_type="sorted", batch_size=4, optim="adam",
               optim_conf={"lr": 1e-3}, best_model_criterion=[["valid", "acc", "max"]],
               keep_nbest_models=1, num_workers=0, seed=0, num_att_plot=0)
    conf = tmp / "train.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    for d in dump.values():
        with open(f"{d}/keys", "w") as f:
            f.write("".join(k + "\n" for k in read_kv(f"{d}/wav.scp")))
    stats = tmp / "stats"
    run(["espnet_sllm.bin.sllm_train", "--collect_stats", "true", "--config", str(conf),
         "--output_dir", str(stats), "--train_shape_file", f"{dump['train']}/keys",
         "--valid_shape_file", f"{dump['valid']}/keys", *data_args("train_", dump["train"]),
         *data_args("valid_", dump["valid"])], cwd=tmp)
    exp = tmp / "exp"
    proc = run(["espnet_sllm.bin.sllm_train", "--config", str(conf), "--output_dir", str(exp),
                "--train_shape_file", str(stats / "train" / "speech_shape"),
                "--train_shape_file", str(stats / "train" / "text_shape"),
                "--valid_shape_file", str(stats / "valid" / "speech_shape"),
                "--valid_shape_file", str(stats / "valid" / "text_shape"),
                *data_args("train_", dump["train"]), *data_args("valid_", dump["valid"])],
               cwd=tmp)
    (exp / "train.log").write_text(proc.stderr)
    return tmp, stats, exp, dump


def test_stages_2_3_keep_text_only_utterances(trained):
    tmp, _, _, dump = trained
    for name, n_qa in (("train", 4), ("valid", 2)):
        num = read_kv(f"{dump[name]}/utt2num_samples")
        task = read_kv(f"{dump[name]}/utt2task")
        assert {u for u, n in num.items() if n == "0"} == {u for u, t in task.items()
                                                            if t == "qa"}
        assert len([t for t in task.values() if t == "qa"]) == n_qa
        for u, path in read_kv(f"{dump[name]}/wav.scp").items():
            assert sf.info(path).frames == int(num[u])
        report = open(f"{dump[name]}/filter_report.txt").read()
        assert f"kept text-only (0 samples, no duration limits): {n_qa}" in report


def test_collect_stats_shapes_and_feature_stats(trained):
    _, stats, _, dump = trained
    shapes = read_kv(stats / "train" / "speech_shape")
    num = read_kv(f"{dump['train']}/utt2num_samples")
    assert shapes == num  # "uid 0" for the text-only ones
    feats = np.load(stats / "train" / "feats_stats.npz")
    # Only the audio rows count: 8 utterances of 6400 samples, 41 frames each (hop 160)
    assert int(feats["count"]) == 8 * 41


@pytest.mark.parametrize("batch_type", ["folded", "numel", "length", "sorted", "unsorted"])
def test_batch_samplers_with_zero_length_speech(trained, batch_type):
    from espnet2.samplers.build_batch_sampler import build_batch_sampler

    _, stats, _, _ = trained
    shape_files = [str(stats / "train" / "speech_shape"), str(stats / "train" / "text_shape")]
    sampler = build_batch_sampler(batch_type, batch_size=3, batch_bins=40000,
                                  shape_files=shape_files, fold_lengths=[80000, 150])
    keys = [k for batch in sampler for k in batch]
    assert sorted(keys) == sorted(read_kv(shape_files[0])) and all(len(b) for b in sampler)


def test_one_epoch_trains_on_the_mix(trained):
    _, _, exp, _ = trained
    log = (exp / "train.log").read_text()
    assert "1epoch results" in log and (exp / "valid.acc.best.pth").exists()
    reporter = torch.load(exp / "checkpoint.pth", weights_only=False)["reporter"]["stats"]
    train = reporter[1]["train"]
    assert train["total_count"] == 3  # batches: 4 text-only, 4 + 4 with audio
    assert np.isfinite(train["loss"]) and np.isfinite(train["loss_ce"])
    # the text-only batch reports NaN for CTC, which ESPnet leaves out of its average
    assert np.isfinite(train["loss_ctc"]) and np.isfinite(reporter[1]["valid"]["loss_ctc"])


def test_inference_decodes_the_mix(trained):
    tmp, _, exp, dump = trained
    common = ["espnet_sllm.bin.sllm_inference", "--train_config", str(exp / "config.yaml"),
              "--model_file", str(exp / "valid.acc.best.pth"), "--max_new_tokens", "6",
              *data_args("", dump["valid"], False)]
    run(common + ["--batch_size", "4", "--output_dir", str(tmp / "dec4")], cwd=tmp)
    run(common + ["--batch_size", "1", "--output_dir", str(tmp / "dec1")], cwd=tmp)
    keys = sorted(read_kv(f"{dump['valid']}/wav.scp"))
    out = {}
    for bs in (4, 1):
        for f in ("text", "token_int", "score"):
            rows = (tmp / f"dec{bs}" / "1best_recog" / f).read_text().splitlines()
            assert [r.split(" ", 1)[0] for r in rows] == keys
            out[bs, f] = dict((r.split(" ", 1) + [""])[:2] for r in rows)
    # a mixed batch of 4 decodes to what each utterance decodes to alone
    assert out[4, "text"] == out[1, "text"] and out[4, "token_int"] == out[1, "token_int"]
    for k in keys:
        assert float(out[4, "score"][k]) == pytest.approx(float(out[1, "score"][k]), abs=1e-4)
    assert all(out[1, "token_int"][k] for k in keys)  # min_new_tokens 1: never empty


def test_raw_directory_with_empty_entry_is_refused_with_its_line(trained):
    """sllm_train and sllm_inference check their sound files first (check_data_triples): the
    raw directory's empty entry cannot be read by ESPnet, the message points to stage 2."""
    from espnet_sllm.data.check import check_data_triples

    tmp = trained[0]
    raw = tmp / "data" / "valid"
    with pytest.raises(ValueError, match=rf"{raw}/wav.scp:2: 'u01' has an empty entry \(a "
                                         r"text-only utterance\).*format_data"):
        check_data_triples([(f"{raw}/wav.scp", "speech", "sound")])
