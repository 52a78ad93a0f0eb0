#!/usr/bin/env python3
"""After one stage of a training chain: its cumulative checkpoint and how the next stage starts.

Usage:
    python -m espnet_sllm.bin.chain_step --config exp/sllm_x/stage1_a/config.yaml \
        --model_file exp/sllm_x/stage1_a/valid.acc.best.pth --out_dir exp/sllm_x/stage1_a/chain \
        [--input_config conf/a.yaml --next_config conf/b.yaml --chain_mode cumulative|merge] \
        [--init_file exp/sllm_x/stage0/chain/model.pth]

Writes <out_dir>/model.pth (decodes with --config on its own), <out_dir>/llm/ at a merge,
<out_dir>/next_opts (the sllm_train options of the next stage) and <out_dir>/chain.yaml.
sllm.sh runs it after every stage of a chain; see espnet_sllm.chain for the rules.
"""
import argparse
import logging
import sys
from typing import List, Optional

from espnet_sllm.chain import CHAIN_MODES, ChainError, write_stage


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config.yaml of the trained stage")
    parser.add_argument("--model_file", required=True, help="its trained weights")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--input_config", default=None,
                        help="the stage's config as written by the user [--config]")
    parser.add_argument("--next_config", default=None, help="the next stage's config")
    parser.add_argument("--chain_mode", default="cumulative", choices=CHAIN_MODES)
    parser.add_argument("--init_file", action="append", default=[],
                        help="checkpoint(s) the stage started from (fill what --model_file lacks)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(message)s")
    args = get_parser().parse_args(argv)
    try:
        write_stage(args.config, args.model_file, args.out_dir, args.input_config,
                    args.next_config, args.chain_mode, args.init_file)
    except (ChainError, OSError) as e:
        print(f"ERROR: chain_step: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
