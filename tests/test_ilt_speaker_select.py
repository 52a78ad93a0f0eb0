"""Audio selection by speaker similarity (espnet_sllm.data.speaker_select) and the tiny WavLM
x-vector checkpoint it is tested with (espnet_sllm.testing.wavlm)."""
import inspect
import json
import math
import os

import numpy as np
import pytest
import soundfile as sf

from espnet_sllm.data import speaker_select as S
from espnet_sllm.data.kaldi_dir import Segment, Utterance, read_data_dir, write_data_dir
from espnet_sllm.data.speaker_select import (
    SpeakerEmbedder,
    main,
    min_samples,
    select_by_similarity,
)
from espnet_sllm.testing.wavlm import make_tiny_wavlm_xvector

SR = 16000


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_wavlm_xvector(str(tmp_path_factory.mktemp("wavlm_sv")), seed=0)


@pytest.fixture(scope="module")
def embedder(tiny_dir):
    return SpeakerEmbedder(tiny_dir, dtype="float32", device="cpu", batch_size=1)


def _signals():
    t = np.arange(SR) / SR
    rng = np.random.default_rng(0)
    return {
        "sine": (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32),
        "noise": (0.3 * rng.standard_normal(SR)).astype(np.float32),
        "square": (0.3 * np.sign(np.sin(2 * np.pi * 90 * t))).astype(np.float32),
    }


# ----------------------------------------------------------------------- selection rule


def test_threshold_is_strict():
    x = math.sqrt(1 - 0.85 ** 2)
    refs = np.array([[1.0, 0.0], [0.0, 1.0]])
    cands = np.array([[0.85, x],          # cos 0.85 with ref 0, exactly: not kept
                      [0.86, math.sqrt(1 - 0.86 ** 2)],   # 0.86 with ref 0: kept
                      [x, 0.85]])          # 0.85 with ref 1, 0.527 with ref 0: not kept
    max_cos, kept = select_by_similarity(cands, refs, threshold=0.85)
    assert max_cos[0] == 0.85 and max_cos[2] == 0.85
    assert kept.tolist() == [False, True, False]
    _, kept = select_by_similarity(cands, refs, threshold=0.849999)
    assert kept.tolist() == [True, True, True]


def test_selection_takes_the_maximum_over_references():
    rng = np.random.default_rng(1)
    refs = rng.standard_normal((50, 8))
    refs /= np.linalg.norm(refs, axis=1, keepdims=True)
    cands = np.concatenate([refs[[3, 17]], -refs[:1]])
    max_cos, kept = select_by_similarity(cands, refs, 0.99, chunk=2)
    assert np.allclose(max_cos[:2], 1.0) and kept.tolist()[:2] == [True, True]
    assert max_cos[2] == pytest.approx((-refs[:1] @ refs.T).max())


def test_selection_refuses_unnormalised_rows():
    with pytest.raises(ValueError, match="candidate embedding 0 is not L2-normalised"):
        select_by_similarity(np.array([[2.0, 0.0]]), np.array([[1.0, 0.0]]))
    with pytest.raises(ValueError, match="no reference"):
        select_by_similarity(np.array([[1.0, 0.0]]), np.zeros((0, 2)))


# ----------------------------------------------------------------------- tiny WavLM


def test_tiny_wavlm_round_trip(tiny_dir):
    from transformers import AutoFeatureExtractor, WavLMConfig, WavLMForXVector

    cfg = json.load(open(os.path.join(tiny_dir, "config.json")))
    assert cfg["architectures"] == ["WavLMForXVector"] and cfg["model_type"] == "wavlm"
    assert tuple(cfg["conv_kernel"]) == (10, 3, 3, 3, 3, 2, 2)
    assert tuple(cfg["conv_stride"]) == (5, 2, 2, 2, 2, 2, 2)
    assert cfg["feat_extract_norm"] == "group" and cfg["do_stable_layer_norm"] is False
    assert cfg["conv_bias"] is False and cfg["use_weighted_layer_sum"] is True
    assert tuple(cfg["tdnn_kernel"]) == (5, 3, 3, 1, 1)
    assert tuple(cfg["tdnn_dilation"]) == (1, 2, 3, 1, 1)
    fe = AutoFeatureExtractor.from_pretrained(tiny_dir)
    assert type(fe).__name__ == "Wav2Vec2FeatureExtractor"
    assert fe.sampling_rate == 16000 and fe.do_normalize is False
    assert fe.return_attention_mask is True
    model = WavLMForXVector.from_pretrained(tiny_dir)
    again = WavLMForXVector(WavLMConfig.from_pretrained(tiny_dir))
    assert model.config.xvector_output_dim == 16
    # the saved weights are the ones loaded (not a fresh random init)
    make_tiny_wavlm_xvector(os.path.join(tiny_dir, "copy"), seed=0)
    copy = WavLMForXVector.from_pretrained(os.path.join(tiny_dir, "copy"))
    for (name, p), (_, q) in zip(model.state_dict().items(), copy.state_dict().items()):
        assert p.equal(q), name
    assert any(not p.equal(q) for p, q in zip(model.state_dict().values(),
                                               again.state_dict().values()))


def test_min_samples_from_the_config(tiny_dir):
    from transformers import WavLMConfig

    # the real wavlm-base-plus-sv layout: 400-sample field, 320 hop, TDNN context 14 frames
    assert min_samples(WavLMConfig()) == 400 + 15 * 320
    assert min_samples(WavLMConfig.from_pretrained(tiny_dir)) == 5200
    assert min_samples(WavLMConfig(tdnn_kernel=(1,) * 5), min_seconds=1.0) == 16000


def test_embedder_shape_normalisation_and_order(embedder):
    sig = _signals()
    waves = [sig["sine"], sig["noise"], sig["square"][:6000]]
    vecs = embedder.embed(waves)
    assert vecs.shape == (3, 16) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(embedder.embed(waves[::-1]), vecs[::-1])
    assert np.array_equal(embedder.embed([sig["sine"]]), vecs[:1])
    # the shortest input that embeds, and one sample less
    assert np.isfinite(embedder.embed([sig["noise"][:embedder.min_samples]])).all()
    with pytest.raises(ValueError, match="short1: 5199 samples, fewer than the 5200"):
        embedder.embed([sig["noise"][:5199]], ids=["short1"])


def test_production_modules_do_not_import_testing():
    from espnet_sllm.scoring import vote

    for mod in (S, vote):
        assert "espnet_sllm.testing" not in inspect.getsource(mod)


# ----------------------------------------------------------------------- data directories


def _wav(path, x, sr=SR):
    sf.write(str(path), x, sr, subtype="PCM_16")
    return str(path)


@pytest.fixture()
def dirs(tmp_path):
    sig = _signals()
    a = tmp_path / "audio"
    a.mkdir()
    official = [
        Utterance("en1-a", _wav(a / "en1.wav", sig["sine"]), spk="en1",
                  lang="English-American", text="hello"),
        Utterance("en2-a", _wav(a / "en2.wav", sig["noise"]), spk="en2",
                  lang="English-American", text="hello"),
        Utterance("ja1-a", _wav(a / "ja1.wav", sig["square"]), spk="ja1", lang="Japanese",
                  text="こんにちは"),
        # too short to be a reference: skipped, counted
        Utterance("ja2-a", _wav(a / "ja2.wav", sig["square"][:3200]), spk="ja2",
                  lang="Japanese", text="は"),
    ]
    write_data_dir(tmp_path / "official", official)
    rec = np.concatenate([sig["sine"], sig["square"], sig["noise"][:3200]])
    rec_path = _wav(a / "pool1.wav", rec)
    cands = [
        # the very samples of en1-a: cosine 1, kept
        Utterance("p1-same", rec_path, spk="p1", lang="English-American", text="t1",
                  segment=Segment("pool1", 0.0, 1.0)),
        # the square wave, compared with the English references only: not kept
        Utterance("p1-sq", rec_path, spk="p1", lang="English-American", text="t2",
                  segment=Segment("pool1", 1.0, 2.0)),
        # 0.2 s: too short, skipped
        Utterance("p1-short", rec_path, spk="p1", lang="English-American", text="t3",
                  segment=Segment("pool1", 2.0, 2.2)),
        # the square wave again, in Japanese: the same audio as ja1-a, kept
        Utterance("p2-ja", rec_path, spk="p2", lang="Japanese", text="t4",
                  segment=Segment("pool1", 1.0, 2.0)),
    ]
    write_data_dir(tmp_path / "pool", cands)
    return tmp_path


def _read_tsv(path):
    lines = open(path, encoding="utf-8").read().splitlines()
    assert lines[0] == "utt\tlang\tmax_cos\tkept"
    return {c[0]: (c[1], float(c[2]), c[3] == "1") for c in (l.split("\t") for l in lines[1:])}


def test_cli_end_to_end(dirs, tiny_dir, embedder, capsys):
    out = dirs / "sel"
    rc = main(["--embedder", tiny_dir, "--official", str(dirs / "official"),
               "--candidates", str(dirs / "pool"), "--out", str(out), "--threshold", "0.999",
               "--batch_size", "1", "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    rows = _read_tsv(out / "selection.tsv")
    assert set(rows) == {"p1-same", "p1-sq", "p1-short", "p2-ja"}
    assert rows["p1-same"][1] == pytest.approx(1.0, abs=1e-5) and rows["p1-same"][2]
    assert rows["p2-ja"][1] == pytest.approx(1.0, abs=1e-5) and rows["p2-ja"][2]
    assert math.isnan(rows["p1-short"][1]) and not rows["p1-short"][2]
    audio = {n: sf.read(str(dirs / "audio" / f"{n}.wav"), dtype="float32")[0]
             for n in ("en1", "en2", "ja1")}
    en = embedder.embed([audio["en1"], audio["en2"]])
    sq = embedder.embed([audio["ja1"]])
    assert rows["p1-sq"][1] == pytest.approx(float((sq @ en.T).max()), abs=1e-5)
    assert rows["p1-sq"][1] < 0.999 and not rows["p1-sq"][2]
    kept = read_data_dir(out)
    assert [u.uttid for u in kept] == ["p1-same", "p2-ja"]
    assert kept[0].segment == Segment("pool1", 0.0, 1.0) and kept[1].lang == "Japanese"
    assert kept[0].text == "t1"
    printed = capsys.readouterr().out
    assert "2 of 4 candidates kept" in printed and "1 too short skipped" in printed
    assert "Japanese: kept 1 of 1 (0 too short), 1 references of 2 official (1 too short)" \
        in printed


def test_max_refs_sample(dirs, embedder):
    summary = S.speaker_select(embedder, str(dirs / "official"), str(dirs / "pool"),
                               str(dirs / "sel1"), threshold=0.999, max_refs=1, seed=3)
    assert summary["English-American"].refs == 1
    assert summary["English-American"].short == 1


def test_language_without_official_segments(dirs, tiny_dir, capsys):
    utts = read_data_dir(dirs / "pool")
    utts[-1].lang = "Thai"
    write_data_dir(dirs / "pool_th", utts)
    rc = main(["--embedder", tiny_dir, "--official", str(dirs / "official"),
               "--candidates", str(dirs / "pool_th"), "--out", str(dirs / "sel"),
               "--device", "cpu"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "ERROR:" in err and "Thai" in err and "no official segments" in err


def test_wrong_sample_rate_names_the_entry(dirs, embedder):
    utts = read_data_dir(dirs / "official")
    utts[0].wav = _wav(dirs / "audio" / "en1_8k.wav", _signals()["sine"][:8000], sr=8000)
    write_data_dir(dirs / "official_8k", utts)
    with pytest.raises(ValueError, match=r"official_8k/wav.scp: en1-a: .*8000 Hz.*16000"):
        S.speaker_select(embedder, str(dirs / "official_8k"), str(dirs / "pool"),
                         str(dirs / "sel"), max_refs=5)


def test_nothing_kept_is_an_error_after_the_tsv(dirs, embedder):
    S.speaker_select(embedder, str(dirs / "official"), str(dirs / "pool"), str(dirs / "sel"),
                     threshold=0.999)
    assert (dirs / "sel" / "utt2spk").is_file()
    with pytest.raises(ValueError, match="no candidate .* max cosine > 1.0"):
        S.speaker_select(embedder, str(dirs / "official"), str(dirs / "pool"),
                         str(dirs / "sel"), threshold=1.0)
    assert len(_read_tsv(dirs / "sel" / "selection.tsv")) == 4
    # the earlier run's data directory does not survive as if it were this run's
    assert not (dirs / "sel" / "utt2spk").exists() and not (dirs / "sel" / "wav.scp").exists()


def test_missing_utt2lang_and_bad_embedder(dirs, tiny_dir, capsys):
    utts = read_data_dir(dirs / "pool")
    for u in utts:
        u.lang = None
    write_data_dir(dirs / "pool_nolang", utts)
    rc = main(["--embedder", tiny_dir, "--official", str(dirs / "official"),
               "--candidates", str(dirs / "pool_nolang"), "--out", str(dirs / "sel"),
               "--device", "cpu"])
    assert rc == 1 and "pool_nolang: no utt2lang" in capsys.readouterr().err
    rc = main(["--embedder", str(dirs / "no_model"), "--official", str(dirs / "official"),
               "--candidates", str(dirs / "pool"), "--out", str(dirs / "sel"),
               "--device", "cpu"])
    assert rc == 1 and "ERROR:" in capsys.readouterr().err


def test_exclude_language(dirs, tiny_dir, embedder, capsys):
    utts = read_data_dir(dirs / "pool")
    utts[-1].lang = "Thai"  # p2-ja becomes Thai, which the official set lacks
    write_data_dir(dirs / "pool_th", utts)
    summary = S.speaker_select(embedder, str(dirs / "official"), str(dirs / "pool_th"),
                               str(dirs / "sel_th"), threshold=0.999,
                               exclude_languages=["thai"])
    assert summary["Thai"].excluded and summary["Thai"].candidates == 1
    rows = _read_tsv(dirs / "sel_th" / "selection.tsv")
    assert math.isnan(rows["p2-ja"][1]) and not rows["p2-ja"][2]
    assert [u.uttid for u in read_data_dir(dirs / "sel_th")] == ["p1-same"]
    # "English" excludes English-American (the part before "-")
    rc = main(["--embedder", tiny_dir, "--official", str(dirs / "official"),
               "--candidates", str(dirs / "pool"), "--out", str(dirs / "sel_ja"),
               "--threshold", "0.999", "--device", "cpu", "--exclude_language", "English"])
    assert rc == 0
    assert "English-American: 3 candidates excluded" in capsys.readouterr().out
    assert [u.uttid for u in read_data_dir(dirs / "sel_ja")] == ["p2-ja"]
