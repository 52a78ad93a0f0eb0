"""The benchmark suite (espnet_sllm.testing.bench) at tiny sizes: every measuring function runs,
and the one ratio stable enough to assert holds (batch-8 decoding beats batch 1; FLAC is smaller
than WAV). The figures themselves live in BENCHMARKS.md (`make bench`), never in a test."""
import pytest

from espnet_sllm.testing import bench

TINY_WHISPER = dict(num_mel_bins=128, d_model=64, encoder_layers=2, encoder_attention_heads=4)
TINY_LLM = dict(family="qwen2", hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2,
                intermediate_size=128)


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    work = tmp_path_factory.mktemp("bench")
    return bench.build_workspace(str(work), 16, whisper=TINY_WHISPER, llm=TINY_LLM)


def test_batched_decoding_is_faster_and_bare_calls_are_cheaper(paths, tmp_path):
    t1 = bench.time_inference(paths, str(tmp_path / "d1"), batch_size=1, beam_size=1)
    t8 = bench.time_inference(paths, str(tmp_path / "d8"), batch_size=8, beam_size=1)
    assert t8 < t1, (t1, t8)
    text = (tmp_path / "d8" / "1best_recog" / "text").read_text().splitlines()
    assert len(text) == 16  # every utterance, NEW_TOKENS tokens each (forced)
    assert 0 < bench.bare_decoding_seconds(paths, 8, 1) < t8


def test_other_rows_measure(paths, tmp_path):
    assert bench.whisper_seconds(paths, True, n=2, repeats=1) > 0
    d = bench.data_loading_ratio(paths, batch_size=4, n_batches=1)
    assert d["load_utt_s"] > 0 and d["train_utt_s"] > 0
    c = bench.cache_ratio(paths, batch_size=2, n_batches=1)
    assert c["waveform"] > 0 and c["cached"] > 0
    s = bench.storage(str(tmp_path))
    assert 0 < s["flac"] < s["wav"]
    assert bench.peak_rss_child("train", paths) > bench.peak_rss_child("imports", paths) > 0
