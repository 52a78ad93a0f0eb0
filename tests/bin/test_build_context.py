import pytest

from espnet_sllm.bin.build_context import build_context, main, read_segments


def test_neighbours_by_start_time_across_speakers(tmp_path):
    seg = tmp_path / "segments"
    seg.write_text(
        "r1-B-000200-000300 r1 2.0 3.0\n"
        "r1-A-000000-000100 r1 0.0 1.0\n"
        "r1-A-000400-000500 r1 4.0 5.0\n"
        "r2-A-000000-000100 r2 0.0 1.0\n"
    )
    hyp = {"r1-A-000000-000100": "first", "r1-B-000200-000300": "second",
           "r1-A-000400-000500": "third", "r2-A-000000-000100": "alone"}
    prev, nxt, missing = build_context(read_segments(str(seg)), hyp)
    assert prev == {"r1-A-000000-000100": "", "r1-B-000200-000300": "first",
                    "r1-A-000400-000500": "second", "r2-A-000000-000100": ""}
    assert nxt["r1-A-000000-000100"] == "second" and nxt["r1-A-000400-000500"] == ""
    assert missing == 0
    del hyp["r1-B-000200-000300"]
    prev, nxt, missing = build_context(read_segments(str(seg)), hyp)
    assert prev["r1-A-000400-000500"] == "" and missing == 2
    (tmp_path / "hyp").write_text("".join(f"{k} {v}\n" for k, v in hyp.items()))
    main(["--segments", str(seg), "--text", str(tmp_path / "hyp"), "--out", str(tmp_path / "ctx")])
    lines = (tmp_path / "ctx" / "text_next").read_text().splitlines()
    assert lines[0] == "r1-A-000000-000100" and len(lines) == 4


def test_bad_segments(tmp_path):
    seg = tmp_path / "segments"
    seg.write_text("u1 r1 0.0\n")
    with pytest.raises(ValueError, match="segments:1"):
        read_segments(str(seg))
