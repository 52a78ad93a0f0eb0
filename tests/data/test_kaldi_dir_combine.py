"""Tests of `python -m espnet_sllm.data.kaldi_dir combine` (combine_data_dirs)."""
import numpy as np
import pytest
import soundfile

from espnet_sllm.data.kaldi_dir import (
    Segment,
    Utterance,
    combine_data_dirs,
    main,
    read_data_dir,
    read_kv,
    write_data_dir,
)

SR = 16000


def _seg_dir(path, rec, texts, context=True, task=None, lang="Japanese"):
    """A segmented directory: one recording, one utterance per text."""
    utts = []
    for i, text in enumerate(texts):
        spk = f"{rec}-O1"
        utts.append(Utterance(
            uttid=f"{spk}-{i:06d}", wav=f"/db/{rec}.wav", spk=spk, text=text, lang=lang,
            segment=Segment(rec, float(i), i + 0.5), task=task,
            text_prev=(texts[i - 1] if i else "") if context else None,
            text_next=(texts[i + 1] if i + 1 < len(texts) else "") if context else None))
    write_data_dir(path, utts)
    return str(path)


def _whole_dir(tmp_path, name, seconds):
    """An unsegmented directory (Common Voice style) with real audio files."""
    utts = []
    for i, sec in enumerate(seconds):
        wav = tmp_path / f"{name}_{i}.wav"
        soundfile.write(str(wav), np.zeros(int(sec * SR), np.float32), SR)
        utts.append(Utterance(uttid=f"cv-{name}-spk-{i}", wav=str(wav), spk=f"cv-{name}-spk",
                              text=f"clip {i}", lang="English"))
    write_data_dir(tmp_path / name, utts)
    return str(tmp_path / name)


def test_combine_segmented_parts(tmp_path):
    a = _seg_dir(tmp_path / "train_1", "Japanese-0001", ["あ", "い"])
    b = _seg_dir(tmp_path / "train_2", "Japanese-0002", ["う"])
    out = tmp_path / "train"
    counts = combine_data_dirs(out, [a, b])
    assert counts == {"utterances": 3, "speakers": 2, "recordings": 2}
    assert read_kv(out / "text_prev") == {"Japanese-0001-O1-000000": "",
                                          "Japanese-0001-O1-000001": "あ",
                                          "Japanese-0002-O1-000000": ""}
    assert read_kv(out / "segments")["Japanese-0002-O1-000000"] == "Japanese-0002 0.00 0.50"
    assert read_kv(out / "spk2utt")["Japanese-0001-O1"] == \
        "Japanese-0001-O1-000000 Japanese-0001-O1-000001"
    assert not (out / "utt2task").exists()


def test_duplicate_utterance_names_both_dirs(tmp_path):
    a = _seg_dir(tmp_path / "train_1", "Japanese-0001", ["あ"])
    b = _seg_dir(tmp_path / "train_2", "Japanese-0001", ["あ"])
    with pytest.raises(ValueError, match=r"utterance id 'Japanese-0001-O1-000000' is in both "
                                         r"\S*train_1 and \S*train_2"):
        combine_data_dirs(tmp_path / "train", [a, b])


def test_context_files_missing_from_some_inputs(tmp_path):
    a = _seg_dir(tmp_path / "a", "Japanese-0001", ["あ"])
    b = _seg_dir(tmp_path / "b", "Japanese-0002", ["う"], context=False)
    with pytest.raises(ValueError, match=r"text_prev is in \S*a but not in \S*b; .*"
                                         r"--drop text_prev text_next"):
        combine_data_dirs(tmp_path / "c", [a, b])
    combine_data_dirs(tmp_path / "c", [a, b], drop=["text_prev", "text_next"])
    assert not (tmp_path / "c" / "text_prev").exists()
    assert not (tmp_path / "c" / "text_next").exists()
    assert len(read_kv(tmp_path / "c" / "text")) == 2


def test_optional_file_rules(tmp_path):
    a = _seg_dir(tmp_path / "a", "Japanese-0001", ["あ"], task="st")
    b = _seg_dir(tmp_path / "b", "Japanese-0002", ["う"])
    # utt2lang in both: kept; utt2task in one: the others get "asr" (its meaning when absent).
    combine_data_dirs(tmp_path / "c", [a, b])
    assert read_kv(tmp_path / "c" / "utt2task") == {"Japanese-0001-O1-000000": "st",
                                                    "Japanese-0002-O1-000000": "asr"}
    assert set(read_kv(tmp_path / "c" / "utt2lang").values()) == {"Japanese"}
    # text missing from an input (an evaluation set): the combined set has none.
    (tmp_path / "b" / "text").unlink()
    combine_data_dirs(tmp_path / "d", [a, b])
    assert not (tmp_path / "d" / "text").exists()
    assert (tmp_path / "d" / "text_prev").exists()
    with pytest.raises(ValueError, match=r"only optional files can be dropped"):
        combine_data_dirs(tmp_path / "e", [a, b], drop=["wav.scp"])
    with pytest.raises(ValueError, match=r"the output \S+ is also an input"):
        combine_data_dirs(a, [a, b])


def test_mixed_segmented_and_whole_recordings(tmp_path):
    mlc = _seg_dir(tmp_path / "train", "English-American-0001", ["hi", "yes"],
                   lang="English-American")
    cv = _whole_dir(tmp_path, "cv_train", [1.25, 0.5])
    out = tmp_path / "train_cv"
    combine_data_dirs(out, [mlc, cv], drop=["text_prev", "text_next"])
    segments = read_kv(out / "segments")
    assert segments["cv-cv_train-spk-0"] == "cv-cv_train-spk-0 0.00 1.25"
    assert segments["cv-cv_train-spk-1"] == "cv-cv_train-spk-1 0.00 0.50"
    wav_scp = read_kv(out / "wav.scp")
    assert wav_scp["cv-cv_train-spk-0"].endswith("cv_train_0.wav")
    assert wav_scp["English-American-0001"] == "/db/English-American-0001.wav"
    langs = {u.uttid: u.lang for u in read_data_dir(out)}
    assert langs["cv-cv_train-spk-1"] == "English"
    assert langs["English-American-0001-O1-000001"] == "English-American"


def test_cli(tmp_path, capsys):
    a = _seg_dir(tmp_path / "a", "Japanese-0001", ["あ"])
    b = _seg_dir(tmp_path / "b", "Japanese-0001", ["あ"])
    assert main(["combine", "--out", str(tmp_path / "c"), a]) == 0
    assert "combined 1 directories (1 utterances" in capsys.readouterr().out
    assert main(["combine", "--out", str(tmp_path / "c"), a, b]) == 1
    assert "is in both" in capsys.readouterr().err


def test_combine_carries_spk2gender(tmp_path):
    from espnet_sllm.data.kaldi_dir import combine_data_dirs, read_kv, write_data_dir, write_kv

    a, b = tmp_path / "a", tmp_path / "b"
    write_data_dir(a, [Utterance("s1-u1", "/1.wav", spk="s1"), Utterance("s2-u1", "/2.wav",
                                                                         spk="s2")])
    write_data_dir(b, [Utterance("s3-u1", "/3.wav", spk="s3")])
    write_kv(a / "spk2gender", {"s1": "f", "s2": "m", "s9": "m"})  # s9: no utterance
    write_kv(b / "spk2gender", {"s3": "m"})
    combine_data_dirs(tmp_path / "ab", [a, b])
    assert read_kv(tmp_path / "ab" / "spk2gender") == {"s1": "f", "s2": "m", "s3": "m"}
    # Conflicting genders of one speaker: an error naming both files.
    write_data_dir(b, [Utterance("s1-u9", "/9.wav", spk="s1")])
    write_kv(b / "spk2gender", {"s1": "m"})
    with pytest.raises(ValueError, match=r"b/spk2gender: speaker 's1' is 'm', but .*a/spk2gender"):
        combine_data_dirs(tmp_path / "ab", [a, b])
    # Without any input spk2gender, a stale one of the output is removed.
    (a / "spk2gender").unlink()
    (b / "spk2gender").unlink()
    combine_data_dirs(tmp_path / "ab", [a, b])
    assert not (tmp_path / "ab" / "spk2gender").exists()


def test_text_only_utterance_cannot_get_a_whole_recording_segment(tmp_path):
    mlc = _seg_dir(tmp_path / "train", "rec", ["hi"], context=False)
    qa = tmp_path / "qa"
    write_data_dir(qa, [Utterance("qa-1", "", text="answer", task="qa")])
    with pytest.raises(ValueError, match=r"qa/wav.scp: qa-1: a text-only utterance \(empty "
                                         r"wav.scp entry\) cannot get a whole-recording"):
        combine_data_dirs(tmp_path / "out", [mlc, str(qa)])
    # without segments anywhere, it combines as it is
    cv = _whole_dir(tmp_path, "cv", [0.5])
    combine_data_dirs(tmp_path / "out2", [cv, str(qa)])
    assert read_kv(tmp_path / "out2" / "wav.scp")["qa-1"] == ""
