"""`languages` (a task option): the preprocessor emits lang_id, ESPnet's loader collates it."""
import numpy as np
import pytest
import soundfile as sf
import torch
from espnet2.train.distributed_utils import DistributedOption

from espnet_sllm.prompts.preprocessor import SLLMPreprocessor
from espnet_sllm.tasks.sllm import SLLMTask
from espnet_sllm.testing.configs import config_to_args

LANGS = ["en", "de", "fr"]
UTTS = {"utt0": "de", "utt1": "en", "utt2": "fr", "utt3": "de"}


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from espnet_sllm.testing.llm import make_tiny_llm

    return make_tiny_llm(str(tmp_path_factory.mktemp("tok")), "qwen2", save_weights=False)


def data(lang, text="one two"):
    return {"speech": np.ones(1600, np.float32), "text": text, "lang": lang}


def test_lang_id_is_the_index_in_languages(tokenizer_dir):
    pre = SLLMPreprocessor(True, tokenizer_dir, languages=LANGS)
    for i, lang in enumerate(LANGS):
        out = pre("u", data(lang))
        assert out["lang_id"].dtype == np.int64 and out["lang_id"].tolist() == [i]
    # no lang for the utterance (e.g. decoding without utt2lang): no lang_id
    assert "lang_id" not in pre("u", {"speech": np.ones(1600, np.float32)})
    # without languages nothing changes: no lang_id, the same arrays
    plain = SLLMPreprocessor(True, tokenizer_dir)
    a, b = plain("u", data("en")), pre("u", data("en"))
    assert "lang_id" not in a and set(b) - set(a) == {"lang_id"}
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_unknown_label_names_the_utterance_and_the_valid_ones(tokenizer_dir):
    pre = SLLMPreprocessor(True, tokenizer_dir, languages=LANGS)
    with pytest.raises(ValueError, match=r"utterance bad7: language 'ja'.*\['en', 'de', 'fr'\]"):
        pre("bad7", data("ja"))
    with pytest.raises(ValueError, match="distinct"):
        SLLMPreprocessor(True, tokenizer_dir, languages=["en", "en"])


def test_languages_is_one_task_option(tokenizer_dir):
    args = config_to_args({"llm_conf": {"model_name_or_path": tokenizer_dir},
                           "languages": LANGS})
    assert SLLMTask.build_preprocess_fn(args, True).languages == LANGS
    args = config_to_args({"llm_conf": {"model_name_or_path": tokenizer_dir},
                           "preprocessor_conf": {"languages": LANGS}})
    with pytest.raises(ValueError, match="top-level option `languages`"):
        SLLMTask.build_preprocess_fn(args, True)
    # on the command line too
    args = SLLMTask.get_parser().parse_args(["--languages", "en", "de"])
    assert args.languages == ["en", "de"]


def test_lang_id_through_espnets_loader(tokenizer_dir, tmp_path):
    """utt2lang as data name ``lang`` -> lang_id (B,) per batch, in the loader's order."""
    rows = {name: [] for name in ("wav.scp", "text", "utt2lang", "shape")}
    for uid, lang in UTTS.items():
        path = str(tmp_path / f"{uid}.wav")
        sf.write(path, np.full(1600, 0.1, np.float32), 16000)
        rows["wav.scp"].append(f"{uid} {path}")
        rows["text"].append(f"{uid} one two")
        rows["utt2lang"].append(f"{uid} {lang}")
        rows["shape"].append(f"{uid} 1600")
    for name, lines in rows.items():
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    d = str(tmp_path)
    triples = [(f"{d}/wav.scp", "speech", "sound"), (f"{d}/text", "text", "text"),
               (f"{d}/utt2lang", "lang", "text")]
    args = config_to_args({
        "llm_conf": {"model_name_or_path": tokenizer_dir},
        "languages": LANGS,
        "train_data_path_and_name_and_type": triples,
        "valid_data_path_and_name_and_type": triples,
        "train_shape_file": [f"{d}/shape"], "valid_shape_file": [f"{d}/shape"],
        "batch_type": "unsorted", "batch_size": 2, "num_workers": 0,
    })
    factory = SLLMTask.build_iter_factory(args, DistributedOption(), "valid")
    seen = {}
    for uids, batch in factory.build_iter(1):
        assert "lang_id_lengths" not in batch
        assert batch["lang_id"].dtype == torch.long and batch["lang_id"].shape == (len(uids), 1)
        seen.update(zip(uids, batch["lang_id"].view(-1).tolist()))
    assert seen == {uid: LANGS.index(lang) for uid, lang in UTTS.items()}
    # an unknown label in the data stops the loader with the utterance's name
    (tmp_path / "utt2lang").write_text("".join(f"{u} ja\n" for u in UTTS))
    with pytest.raises(ValueError, match="utterance utt.: language 'ja'"):
        for _ in SLLMTask.build_iter_factory(args, DistributedOption(), "valid").build_iter(1):
            pass
