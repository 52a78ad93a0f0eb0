"""Tests of espnet_sllm.data.corpora.covost2 on a tiny Common Voice + CoVoST 2 tree.

The clips are real MP3 files written by soundfile (the release format); the Common Voice
tables have a newer release's column order with extra columns (read by name) and literal
quotes; the CoVoST tables use every split value and CoVoST's backslash escapes.
"""
import io
import os
import tarfile

import numpy as np
import pytest
import soundfile

from espnet_sllm.data.corpora.covost2 import (
    PAIRS,
    find_covost_tsv,
    main,
    read_covost2,
    read_covost_tsv,
)
from espnet_sllm.data.kaldi_dir import read_kv, validate_data_dir
from espnet_sllm.data.corpora.reader_utils import ReaderError
from tests.data.corpora.test_reader_utils import assert_cli_error, run_reader

SR = 48000
CLIENT_A = "a1b2c3d4" + "e" * 120
CLIENT_B = "0f0f0f0f" + "1" * 120
# A newer release's columns and order (v4 has: client_id path sentence up_votes down_votes
# age gender accent).
CV_HEADER = ["client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes",
             "down_votes", "age", "gender", "accents", "variant", "locale", "segment"]
COVOST_HEADER = ["path", "sentence", "translation", "client_id", "split"]


def _mp3(path, seconds=0.3):
    t = np.arange(int(seconds * SR)) / SR
    soundfile.write(str(path), (0.1 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), SR,
                    format="MP3")


def _cv_lang(root, code, rows, missing=()):
    """rows: (clip, client, sentence); clips in ``missing`` get no MP3 file."""
    d = root / code
    (d / "clips").mkdir(parents=True)
    lines = ["\t".join(CV_HEADER)]
    for clip, client, sentence in rows:
        values = dict(client_id=client, path=clip, sentence=sentence, up_votes="2",
                      down_votes="0", locale=code)
        lines.append("\t".join(values.get(c, "") for c in CV_HEADER))
        if clip not in missing:
            _mp3(d / "clips" / clip)
    (d / "validated.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return d


def _covost_lines(rows):
    """rows: (clip, translation, split) -> lines of a CoVoST table (sentence/client_id columns
    hold junk: they must not be used)."""
    return ["\t".join(COVOST_HEADER)] + [
        "\t".join([clip, "IGNORED sentence", translation, "IGNORED", split])
        for clip, translation, split in rows]


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _tar_gz(archive, name, data, member_dir=""):
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(member_dir + name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


EN_ROWS = [
    ("common_voice_en_1.mp3", CLIENT_A, 'He said "hello" twice.'),  # literal quotes
    ("common_voice_en_2.mp3", CLIENT_B, "Second sentence."),
    ("common_voice_en_3.mp3", CLIENT_A, "A dev sentence."),
    ("common_voice_en_4.mp3", CLIENT_B, "A test sentence."),
    ("common_voice_en_5.mp3", CLIENT_A, "Its clip is missing."),
    ("common_voice_en_6.mp3", "", "No speaker known."),
    ("common_voice_en_7.mp3", CLIENT_A, "  "),  # empty transcript
    ("common_voice_en_8.mp3", CLIENT_B, "Not in CoVoST."),
]
EN_DE_ROWS = [
    ("common_voice_en_1.mp3", 'Er sagte \\"hallo\\" zweimal.', "train"),  # escaped quotes
    ("common_voice_en_2.mp3", "Zweiter Satz mit C:\\\\pfad.", "train_covost"),
    ("common_voice_en_3.mp3", "Ein Satz zum Entwickeln.", "dev"),
    ("common_voice_en_4.mp3", "Ein Testsatz.", "test"),
    ("common_voice_en_5.mp3", "Sein Clip fehlt.", "train"),  # missing_audio
    ("common_voice_en_6.mp3", "Kein Sprecher bekannt.", "test"),
    ("common_voice_en_7.mp3", "Leere Vorlage.", "train"),  # empty_sentence
    ("common_voice_en_9.mp3", "Nicht in Common Voice.", "dev"),  # not_in_cv_table
    ("common_voice_en_10.mp3", "  ", "train_covost"),  # empty_translation
]


@pytest.fixture
def tree(tmp_path):
    cv, covost = tmp_path / "cv", tmp_path / "covost2"
    covost.mkdir()
    _cv_lang(cv, "en", EN_ROWS, missing={"common_voice_en_5.mp3"})
    _write(covost / "covost_v2.en_de.tsv", _covost_lines(EN_DE_ROWS))
    _cv_lang(cv, "fr", [("common_voice_fr_1.mp3", CLIENT_B, "Bonjour « à tous »."),
                        ("common_voice_fr_2.mp3", CLIENT_B, "Au revoir."),
                        ("common_voice_fr_3.mp3", CLIENT_A, "Un test.")])
    fr_en = "\n".join(_covost_lines([("common_voice_fr_1.mp3", "Hello to all.", "train"),
                                     ("common_voice_fr_2.mp3", "Goodbye.", "dev"),
                                     ("common_voice_fr_3.mp3", "A test.", "test")])) + "\n"
    # fr_en only as released: an archive (members may sit in a folder).
    _tar_gz(covost / "covost_v2.fr_en.tsv.tar.gz", "covost_v2.fr_en.tsv",
            fr_en.encode("utf-8"), member_dir="./")
    return {"cv": cv, "covost": covost}


def test_read_pair_exact(tree):
    tsv = str(tree["covost"] / "covost_v2.en_de.tsv")
    sets, stats = read_covost2(tsv, str(tree["cv"] / "en"), "en_de")
    clips = tree["cv"] / "en" / "clips"
    assert [(u.uttid, u.spk, u.text, u.text_tgt) for u in sets["train"]] == [
        ("cv-en-a1b2c3d4-common_voice_en_1-de", "cv-en-a1b2c3d4", 'He said "hello" twice.',
         'Er sagte "hallo" zweimal.'),
        ("cv-en-0f0f0f0f-common_voice_en_2-de", "cv-en-0f0f0f0f", "Second sentence.",
         "Zweiter Satz mit C:\\pfad."),
    ]
    assert [u.uttid for u in sets["dev"]] == ["cv-en-a1b2c3d4-common_voice_en_3-de"]
    assert [(u.uttid, u.speaker) for u in sets["test"]] == [
        ("cv-en-0f0f0f0f-common_voice_en_4-de", "cv-en-0f0f0f0f"),
        ("cv-en-common_voice_en_6-de", "cv-en-common_voice_en_6-de"),  # no client_id
    ]
    u = sets["dev"][0]
    assert (u.wav, u.lang, u.task, u.text_src, u.segment) == (
        os.path.abspath(clips / "common_voice_en_3.mp3"), "en", "st", None, None)

    assert (stats["train"].rows, stats["train"].kept) == (5, 2)
    assert stats["train"].dropped == {"missing_audio": 1, "empty_sentence": 1,
                                      "empty_translation": 1}
    assert stats["train"].per_group == {"train": 1, "train_covost": 1}
    assert stats["train"].examples["missing_audio"] == [
        f"{tsv}:6: {clips / 'common_voice_en_5.mp3'}"]
    assert (stats["dev"].rows, stats["dev"].kept) == (2, 1)
    assert stats["dev"].dropped == {"not_in_cv_table": 1}
    assert stats["dev"].examples["not_in_cv_table"][0].startswith(
        f"{tsv}:9: common_voice_en_9.mp3 is not in ")
    assert (stats["test"].rows, stats["test"].kept, stats["test"].total_dropped) == (2, 2, 0)
    assert stats["test"].summary().endswith("rows=2 kept=2 dropped=0; per group: test=2")


def test_tar_gz_is_extracted_into_the_work_dir(tree, tmp_path, caplog):
    covost, work = tree["covost"], tmp_path / "work"
    before = sorted(os.listdir(covost))
    caplog.set_level("INFO", logger="espnet_sllm.data.corpora.covost2")
    path = find_covost_tsv(str(covost), "fr_en", str(work))
    assert path == str(work / "covost_v2.fr_en.tsv")
    assert "extracting covost_v2.fr_en.tsv" in caplog.text
    assert sorted(os.listdir(covost)) == before and os.listdir(work) == ["covost_v2.fr_en.tsv"]
    assert [r.translation for r in read_covost_tsv(path)] == ["Hello to all.", "Goodbye.",
                                                              "A test."]
    caplog.clear()
    assert find_covost_tsv(str(covost), "fr_en", str(work)) == path  # re-used
    assert "extracted from it earlier" in caplog.text
    # The plain table wins over the work folder.
    assert find_covost_tsv(str(covost), "en_de", str(work)) == str(covost / "covost_v2.en_de.tsv")


def test_find_tsv_errors(tree, tmp_path):
    with pytest.raises(ValueError, match=r"only the archive .*fr_en\.tsv\.tar\.gz is there: "
                                         r"give a work folder"):
        find_covost_tsv(str(tree["covost"]), "fr_en")
    with pytest.raises(FileNotFoundError, match=r"covost_v2\.it_en\.tsv: not found, nor .*"
                                                r"download https://dl\.fbaipublicfiles\.com/"
                                                r"covost/covost_v2\.it_en\.tsv\.tar\.gz"):
        find_covost_tsv(str(tree["covost"]), "it_en", str(tmp_path / "w"))
    _tar_gz(tree["covost"] / "covost_v2.es_en.tsv.tar.gz", "other.tsv", b"x\n")
    with pytest.raises(ReaderError, match=r"es_en\.tsv\.tar\.gz: the archive holds no file "
                                          r"covost_v2\.es_en\.tsv"):
        find_covost_tsv(str(tree["covost"]), "es_en", str(tmp_path / "w"))
    (tree["covost"] / "covost_v2.de_en.tsv.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(ReaderError, match=r"de_en\.tsv\.tar\.gz: cannot extract"):
        find_covost_tsv(str(tree["covost"]), "de_en", str(tmp_path / "w"))
    assert not (tmp_path / "w" / "covost_v2.de_en.tsv.tmp").exists()


@pytest.mark.parametrize("lines,message", [
    (_covost_lines([("a.mp3", "A.", "train"), ("b.mp3", "B.", "validation")]),
     r"covost_v2\.en_de\.tsv:3: unknown split 'validation'; valid: train, train_covost, dev, "
     r"test"),
    (_covost_lines([("a.mp3", "A.", "train")]) + ["b.mp3\tB.\ttrain"],
     r"covost_v2\.en_de\.tsv:3: 3 TAB-separated columns, but the header has 5"),
    (_covost_lines([("a.mp3", "A.", "train"), ("c.mp3", "C.", "dev"), ("a.mp3", "A2.", "test")]),
     r"covost_v2\.en_de\.tsv:4: clip 'a.mp3' is listed again \(first on line 2\)"),
    (["path\tsentence\ttranslation"], r"covost_v2\.en_de\.tsv:1: header lacks column\(s\) "
                                      r"\['split'\]"),
    (_covost_lines([("", "A.", "train")]), r"covost_v2\.en_de\.tsv:2: empty 'path' column"),
    (_covost_lines([("a.mp3", "ends with \\", "train")])[:1] + ["a.mp3\ts\tt\tc\\"],
     r"covost_v2\.en_de\.tsv:2: "),
])
def test_covost_table_errors(tmp_path, lines, message):
    tsv = _write(tmp_path / "covost_v2.en_de.tsv", lines)
    with pytest.raises(ReaderError, match=message):
        read_covost_tsv(str(tsv))


def test_cv_table_errors_reach_the_reader(tree):
    # The Common Voice checks are those of common_voice.read_cv_table.
    vtsv = tree["cv"] / "en" / "validated.tsv"
    with open(vtsv, "a", encoding="utf-8") as f:
        f.write("x\ttoo few columns\n")
    with pytest.raises(ReaderError, match=r"en/validated\.tsv:10: 2 TAB-separated columns"):
        read_covost2(str(tree["covost"] / "covost_v2.en_de.tsv"), str(tree["cv"] / "en"),
                     "en_de")
    with pytest.raises(FileNotFoundError, match=r"fr/other\.tsv: not found"):
        read_covost2(str(tree["covost"] / "covost_v2.en_de.tsv"), str(tree["cv"] / "fr"),
                     "en_de", cv_table="other")


def test_cli_writes_every_set(tree, tmp_path, capsys):
    data, work = tmp_path / "data", tmp_path / "work"
    assert main(["--cv_root", str(tree["cv"]), "--covost_root", str(tree["covost"]),
                 "--pairs", "fr_en", "en_de", "--data_dir", str(data),
                 "--work_dir", str(work)]) == 0
    out = capsys.readouterr().out
    assert f"{data / 'covost_en_de_train'}: " in out and "missing_audio=1" in out
    for pair in ("en_de", "fr_en"):
        for s in ("train", "dev", "test"):
            validate_data_dir(data / f"covost_{pair}_{s}")
    d = data / "covost_fr_en_train"
    assert sorted(os.listdir(d)) == ["spk2utt", "text", "text_tgt", "utt2lang", "utt2spk",
                                     "utt2task", "wav.scp"]
    utt = "cv-fr-0f0f0f0f-common_voice_fr_1-en"
    assert read_kv(d / "text") == {utt: "Bonjour « à tous »."}
    assert read_kv(d / "text_tgt") == {utt: "Hello to all."}
    assert read_kv(d / "utt2task") == {utt: "st"}
    assert read_kv(d / "utt2lang") == {utt: "fr"}
    assert read_kv(d / "utt2spk") == {utt: "cv-fr-0f0f0f0f"}
    assert read_kv(d / "wav.scp") == {
        utt: os.path.abspath(tree["cv"] / "fr" / "clips" / "common_voice_fr_1.mp3")}
    assert (data / "covost_en_de_test" / "text_tgt").read_text(encoding="utf-8") == (
        "cv-en-0f0f0f0f-common_voice_en_4-de Ein Testsatz.\n"
        "cv-en-common_voice_en_6-de Kein Sprecher bekannt.\n")
    assert (data / "covost_en_de_train" / "text").read_text(encoding="utf-8") == (
        "cv-en-0f0f0f0f-common_voice_en_2-de Second sentence.\n"
        'cv-en-a1b2c3d4-common_voice_en_1-de He said "hello" twice.\n')
    # The MP3 clips decode (stage 2 reads them with soundfile).
    info = soundfile.info(read_kv(d / "wav.scp")[utt])
    assert info.samplerate == SR and abs(info.duration - 0.3) < 0.06


def test_cli_errors(tree, tmp_path, capsys):
    common = ["--cv_root", str(tree["cv"]), "--covost_root", str(tree["covost"]),
              "--data_dir", str(tmp_path / "data")]
    assert main(common + ["--pairs", "en_de", "en_fr"]) == 1
    err = capsys.readouterr().err
    assert "ERROR: unknown CoVoST 2 pair ['en_fr']; valid: " + ", ".join(PAIRS) in err
    assert not (tmp_path / "data").exists()  # checked before anything is read
    assert main(common + ["--pairs", "fr_en"]) == 1  # archive only, no --work_dir
    assert "give a work folder (--work_dir)" in capsys.readouterr().err
    assert main(common + ["--pairs", "de_en"]) == 1
    assert "covost_v2.de_en.tsv: not found" in capsys.readouterr().err
    assert main(["--cv_root", str(tmp_path / "nocv"), "--covost_root", str(tree["covost"])]) \
        == 1
    assert "Common Voice root" in capsys.readouterr().err


def test_cli_refuses_a_pair_with_an_empty_set(tree, tmp_path, capsys):
    _write(tree["covost"] / "covost_v2.en_de.tsv",
           _covost_lines([("common_voice_en_1.mp3", "Eins.", "train"),
                          ("common_voice_en_3.mp3", "Zwei.", "dev")]))
    data = tmp_path / "data"
    assert main(["--cv_root", str(tree["cv"]), "--covost_root", str(tree["covost"]),
                 "--pairs", "en_de", "--data_dir", str(data)]) == 1
    assert "no usable row for the test set" in capsys.readouterr().err
    assert not data.exists()  # none of the pair's sets is written


# Rows that are not UTF-8 (the other drop reasons: test_read_pair_exact), --strict, and the
# command line on a malformed table: one ERROR line naming file:line, never a traceback.
def _append_bytes(path, data):
    with open(path, "ab") as f:
        f.write(data)


def test_rows_not_utf8_dropped_and_counted(tree, tmp_path, capsys):
    covost_tsv = tree["covost"] / "covost_v2.en_de.tsv"
    _append_bytes(covost_tsv, b"common_voice_en_8.mp3\tx\tnicht \xff UTF-8\tx\ttest\n")
    vtsv = tree["cv"] / "en" / "validated.tsv"
    # A Common Voice row for en_9 (a dev row of CoVoST), broken: dropped, so en_9 stays
    # not_in_cv_table.
    _append_bytes(vtsv, b"x\tcommon_voice_en_9.mp3\t\t\xe4\xb8\n")
    sets, stats = read_covost2(str(covost_tsv), str(tree["cv"] / "en"), "en_de")
    assert stats["covost_table"].dropped == {"not_utf8": 1}
    assert stats["covost_table"].examples["not_utf8"][0].startswith(f"{covost_tsv}:11: not UTF")
    assert (stats["covost_table"].rows, stats["covost_table"].kept) == (10, 9)
    assert stats["cv_table"].dropped == {"not_utf8": 1}
    assert stats["cv_table"].examples["not_utf8"][0].startswith(f"{vtsv}:10: not UTF-8")
    assert stats["dev"].dropped == {"not_in_cv_table": 1}  # its validated.tsv row was dropped
    assert [u.uttid for u in sets["test"]] == ["cv-en-0f0f0f0f-common_voice_en_4-de",
                                               "cv-en-common_voice_en_6-de"]
    data = tmp_path / "data"
    assert main(["--cv_root", str(tree["cv"]), "--covost_root", str(tree["covost"]),
                 "--pairs", "en_de", "--data_dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert f"{covost_tsv}: rows=10 kept=9 dropped=1 (not_utf8=1)" in out
    assert f"{vtsv}: rows=9 kept=7 dropped=1 (not_utf8=1)" in out  # kept: rows CoVoST uses
    assert len(read_kv(data / "covost_en_de_test" / "text")) == 2


def test_strict_turns_a_drop_into_an_error(tree, tmp_path, capsys):
    data = tmp_path / "data"
    covost_tsv = tree["covost"] / "covost_v2.en_de.tsv"
    assert main(["--cv_root", str(tree["cv"]), "--covost_root", str(tree["covost"]),
                 "--pairs", "en_de", "--data_dir", str(data), "--strict", "true"]) == 1
    assert f"ERROR: {covost_tsv}:6: missing_audio: " in capsys.readouterr().err
    assert not data.exists()
    _append_bytes(covost_tsv, b"\xff\n")
    with pytest.raises(ReaderError, match=r"en_de\.tsv:11: not_utf8"):
        read_covost2(str(covost_tsv), str(tree["cv"] / "en"), "en_de", strict=True)


def test_cli_malformed_table(tree, tmp_path):
    covost_tsv = tree["covost"] / "covost_v2.en_de.tsv"
    _append_bytes(covost_tsv, b"a.mp3\tb\ttrain\n")
    proc = run_reader("covost2", "--cv_root", tree["cv"], "--covost_root", tree["covost"],
                      "--pairs", "en_de", "--data_dir", tmp_path / "data")
    assert_cli_error(proc, f"{covost_tsv}:11: 3 TAB-separated columns, but the header has 5")
    assert not (tmp_path / "data").exists()
