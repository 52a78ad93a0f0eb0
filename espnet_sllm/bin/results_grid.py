#!/usr/bin/env python3
"""Put the stage-9 scores of many experiments into one table per paper table.

Usage:
    python -m espnet_sllm.bin.results_grid --spec exp/sweep/cells.tsv --out exp/sweep/RESULTS.md \\
        [--title "Projector sweep"]

``--spec``: one cell per line, ``<table> TAB <row> TAB <column> TAB <scores.json>
[TAB <group>=<value>]`` (see espnet_sllm/scoring/grid.py; egs2/kespeech/asr1/run.sh writes it
for its systems and its sweep).  Each cell is our error rate, with the paper's in parentheses
when stage 9 put it into that scores.json (conf/paper_results.yaml).  Cells not scored yet read
``–`` and are listed under their table; the exit status is 0 unless the spec is malformed.
"""
import argparse
import sys
from typing import List, Optional

from espnet_sllm.scoring.grid import write_grid


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("Usage:")[0].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Usage:" + __doc__.split("Usage:")[1])
    parser.add_argument("--spec", required=True, help="the cell list (TSV)")
    parser.add_argument("--out", required=True, help="the markdown file to write")
    parser.add_argument("--title", default="", help="a heading above the tables")
    args = parser.parse_args(argv)
    try:
        counts = write_grid(args.spec, args.out, args.title)
    except (OSError, ValueError) as e:
        print(f"results_grid: ERROR: {e}", file=sys.stderr)
        return 1
    print(f"results_grid: {args.out}: {counts['cells']} cells, {counts['missing']} not scored")
    return 0


if __name__ == "__main__":
    sys.exit(main())
