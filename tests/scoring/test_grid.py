"""espnet_sllm.scoring.grid / bin.results_grid: a paper's table filled from many scores.json."""
import pytest

from espnet_sllm.bin.results_grid import main
from espnet_sllm.bin.sllm_score import main as score_main
from espnet_sllm.scoring.grid import parse_specs

# (utt, subdialect, ref, hyp): Mandarin 1 error / 4 chars, Southwestern 2 / 4
UTTS = [("u1", "Mandarin", "你好世界", "你好世届"), ("u2", "Southwestern", "我们走吧", "我走")]


def _score(tmp_path, exp, hyps):
    d = tmp_path / "data"
    d.mkdir(exist_ok=True)
    (d / "text").write_text("".join(f"{u} {r}\n" for u, _, r, _ in UTTS), encoding="utf-8")
    (d / "utt2lang").write_text("".join(f"{u} zh\n" for u, *_ in UTTS))
    (d / "utt2subdialect").write_text("".join(f"{u} {g}\n" for u, g, *_ in UTTS))
    (d / "paper.yaml").write_text("systems:\n  sweep_a: {test: {CER: 12.5, subdialect/CER: "
                                  "{Southwestern: 40.0}}}\n", encoding="utf-8")
    out = tmp_path / exp / "decode_x" / "test"
    out.mkdir(parents=True)
    (out / "text").write_text("".join(f"{u} {h}\n" for u, h in zip([x[0] for x in UTTS], hyps)),
                              encoding="utf-8")
    score_main(["--ref", str(d / "text"), "--hyp", str(out / "text"), "--utt2lang",
                str(d / "utt2lang"), "--output_dir", str(out), "--set_name", "test",
                "--score_group", str(d / "utt2subdialect"), "--paper_results",
                str(d / "paper.yaml"), "--use_sclite", "false", "--plot", "false",
                "--log_level", "WARNING"])
    return out / "scores.json"


def test_cells_hand_counted_with_paper_numbers(tmp_path, capsys):
    a = _score(tmp_path, "sllm_sweep_a", [x[3] for x in UTTS])
    b = _score(tmp_path, "sllm_sweep_b", [x[2] for x in UTTS])  # perfect, no paper numbers
    spec = tmp_path / "cells.tsv"
    spec.write_text(
        f"T1\tlinear\tKeSpeech\t{a}\n"
        f"T1\tlinear\tSouthwestern\t{a}\tsubdialect=Southwestern\n"
        f"T1\tconv1d\tKeSpeech\t{b}\n"
        f"T1\tconv1d\tSouthwestern\t{b}\tsubdialect=Southwestern\n"
        f"T1\tqformer\tKeSpeech\t{tmp_path}/not_run/scores.json\n"
        f"# a comment\n\nT2\tx\ty\t{b}\tsubdialect=Hakka\n", encoding="utf-8")
    out = tmp_path / "RESULTS.md"
    assert main(["--spec", str(spec), "--out", str(out), "--title", "Sweep"]) == 0
    assert "6 cells, 2 not scored" in capsys.readouterr().out
    md = out.read_text(encoding="utf-8").splitlines()
    assert md[0] == "# Sweep"
    i = md.index("## T1")
    assert md[i + 2] == "CER (%), ours (paper) where the paper gives the cell."
    assert md[i + 4] == "| | KeSpeech | Southwestern |"
    # 3 errors / 8 characters = 37.50 (paper 12.5); Southwestern 2 / 4 = 50.00 (paper 40)
    assert md[i + 6] == "| linear | 37.50 (12.50) | 50.00 (40.00) |"
    assert md[i + 7] == "| conv1d | 0.00 | 0.00 |"
    assert md[i + 8] == "| qformer | – | – |"
    assert "not_run/scores.json" in "\n".join(md)
    assert "subdialect=Hakka" in "\n".join(md)


def test_malformed_spec_names_file_and_line(tmp_path, capsys):
    spec = tmp_path / "cells.tsv"
    spec.write_text("T\tr\tc\tx.json\nT\tr only\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"cells.tsv:2: expected"):
        parse_specs(spec.read_text().splitlines(True), str(spec))
    assert main(["--spec", str(spec), "--out", str(tmp_path / "o.md")]) == 1
    assert "cells.tsv:2" in capsys.readouterr().err


def test_task_metric_cells(tmp_path):
    """`st/ROUGE-L` / `sqa/ROUGE-L` cells read the task summary stage 9 wrote, with the paper's."""
    d = tmp_path / "d"
    d.mkdir()
    rows = [("a1", "asr", "你好世界", "你好世界", "你好世界"),
            ("s1", "st", "猫", "the cat sat", "the cat sat"),
            ("s2", "st", "狗", "a dog ran", "a dog"),
            ("q1", "sqa", "问题", "答案是这个", "答案")]
    (d / "text").write_text("".join(f"{u} {src}\n" for u, _, src, _, _ in rows),
                            encoding="utf-8")
    (d / "text_tgt").write_text("".join(f"{u} {tgt}\n" for u, _, _, tgt, _ in rows),
                                encoding="utf-8")
    (d / "utt2task").write_text("".join(f"{u} {t}\n" for u, t, *_ in rows))
    (d / "utt2lang").write_text("".join(f"{u} zh\n" for u, *_ in rows))
    (d / "utt2tgtlang").write_text("".join(
        f"{u} {'en' if t == 'st' else 'zh'}\n" for u, t, *_ in rows))
    (d / "paper.yaml").write_text("test:\n  st/ROUGE-L: {zh-en: 50.0, avg: 50.0}\n",
                                  encoding="utf-8")
    out = tmp_path / "exp/decode/test"
    out.mkdir(parents=True)
    (out / "text").write_text("".join(f"{u} {h}\n" for u, *_, h in rows), encoding="utf-8")
    score_main(["--ref", str(d / "text"), "--hyp", str(out / "text"), "--utt2lang",
                str(d / "utt2lang"), "--utt2task", str(d / "utt2task"), "--utt2tgtlang",
                str(d / "utt2tgtlang"), "--ref_tgt", str(d / "text_tgt"), "--output_dir",
                str(out), "--set_name", "test", "--paper_results", str(d / "paper.yaml"),
                "--use_sclite", "false", "--plot", "false", "--log_level", "WARNING"])
    spec = tmp_path / "cells.tsv"
    f = out / "scores.json"
    spec.write_text(f"T\tYi\tCER\t{f}\nT\tYi\tST ROUGE-L\t{f}\tst/ROUGE-L\n"
                    f"T\tYi\tSQA ROUGE-L\t{f}\tsqa/ROUGE-L\nT\tYi\tQA\t{f}\tqa/ROUGE-L\n"
                    f"T\tYi\tAvg\t{f},{f}\tmean@st/ROUGE-L\n",
                    encoding="utf-8")
    assert main(["--spec", str(spec), "--out", str(tmp_path / "R.md")]) == 0
    md = (tmp_path / "R.md").read_text(encoding="utf-8").splitlines()
    row = next(line for line in md if line.startswith("| Yi |")).split(" | ")
    assert row[1] == "0.00"  # the asr utterance is right
    # ROUGE-L F1 of "the cat sat"/"the cat sat" (1.0) and "a dog ran"/"a dog" (0.8) = 90.00
    assert row[2] == "90.00 (50.00)"
    # character ROUGE-L of 答案是这个 vs 答案: P 1, R 0.4, F 0.5714
    assert row[3] == "57.14"
    assert row[4] == "–"  # no qa utterances
    assert row[5].rstrip(" |") == "90.00 (50.00)"  # mean over (here twice) the st cell


def test_mean_cells(tmp_path):
    """`mean` cells: the unweighted mean of the files' rates (Ideal-LLM's Avg over languages),
    the paper's number given or the mean of the files' paper numbers; blank if one is missing."""
    a = _score(tmp_path, "sllm_sweep_a", [x[3] for x in UTTS])  # 37.50, paper 12.5
    b = _score(tmp_path, "sllm_sweep_b", [x[2] for x in UTTS])  # 0.00, no paper number
    (tmp_path / "c").mkdir()
    c = _score(tmp_path / "c", "sllm_sweep_a", [x[2] for x in UTTS])  # 0.00, paper 12.5
    missing = tmp_path / "none/scores.json"
    spec = tmp_path / "cells.tsv"
    spec.write_text(f"T\tab\tAvg\t{a},{b}\tmean\nT\tac\tAvg\t{a},{c}\tmean\n"
                    f"T\tgiven\tAvg\t{a},{b}\tmean:11.59\nT\tgap\tAvg\t{a},{missing}\tmean\n",
                    encoding="utf-8")
    assert main(["--spec", str(spec), "--out", str(tmp_path / "R.md")]) == 0
    md = (tmp_path / "R.md").read_text(encoding="utf-8").splitlines()
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1].rstrip(" |") for line in md
            if line.startswith("| ") and not line.startswith("| |")}
    assert rows == {"ab": "18.75", "ac": "18.75 (12.50)", "given": "18.75 (11.59)", "gap": "–"}
    for bad in ("mean:x", "mean@st", "mean@st/"):
        with pytest.raises(ValueError, match=r"cells.tsv:1: 'mean\[:<paper number>\]"):
            parse_specs([f"T\tr\tc\t{a}\t{bad}\n"], str(spec))
    assert parse_specs([f"T\tr\tc\t{a}\tmean:1.5@st/BLEU\n"], "x")[0][4] == (
        "mean", 1.5, ("task", "st", "BLEU"))


def test_language_cells_read_the_per_language_table(tmp_path):
    """``lang=<label>``: one language's row of the set's per-language table, with the paper's
    number of that language (ILT's Table 1)."""
    a = _score(tmp_path, "sllm_sweep_a", [x[3] for x in UTTS])
    spec = tmp_path / "cells.tsv"
    spec.write_text(f"T\tzh\tours\t{a}\tlang=zh\nT\tyue\tours\t{a}\tlang=yue\n",
                    encoding="utf-8")
    out = tmp_path / "RESULTS.md"
    assert main(["--spec", str(spec), "--out", str(out)]) == 0
    md = out.read_text(encoding="utf-8")
    assert "| zh | 37.50 |" in md  # 3 errors / 8 characters, both utterances are zh
    assert "| yue | – |" in md and "yue / ours" in md
