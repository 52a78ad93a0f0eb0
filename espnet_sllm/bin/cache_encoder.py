#!/usr/bin/env python3
"""Write the frozen-encoder feature cache of a data set (sllm.sh --cache_encoder true, stage 5).

Usage:
    python -m espnet_sllm.bin.cache_encoder --train_config conf/train.yaml \\
        --data_path_and_name_and_type dump/raw/train/wav.scp,speech,sound \\
        --output_dir exp/encoder_cache/train [--dtype float16] [--ngpu 0] \\
        [--batch_size 8] [--batch_seconds 240] [--chunk_size 1000] [any sllm_train option]
    python -m espnet_sllm.bin.cache_encoder --train_config conf/train.yaml --print_hash true

Runs the config's frontend / normalize / encoder (no projector, no LLM) once per utterance of
wav.scp and writes ``<output_dir>/encoder_feats.scp`` (+ ark chunks and cache_info.json), which
training reads with ``--train_data_path_and_name_and_type <output_dir>/encoder_feats.scp,
encoder_feats,kaldi_ark`` in place of wav.scp. The encoder must be frozen (``encoder_conf.
freeze: true``, or ``--freeze_param encoder``) and the config must have no ``specaug``.
Resumable: run the same command again after a kill (the chunk being written is redone); a cache
of another encoder config or other data is rebuilt. The ark paths in the scp are as
``--output_dir`` gives them (relative to where training runs). Options after ours are
sllm_train's (e.g. sllm.sh's ``--train_args``). ``--print_hash true`` prints the hash of the
config's encoder part (what sllm.sh stamps) and exits. Logic: espnet_sllm/encoders/cache.py.
"""
import argparse
import logging
import sys
from typing import List, Optional

from espnet_sllm.bin.cli import str2bool
from espnet_sllm.encoders.cache import CacheError, config_hash, load_train_args, write_cache


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_config", required=True, help="the training YAML")
    parser.add_argument("--data_path_and_name_and_type", default=None,
                        help="the wav.scp to encode, as <path>,speech,sound")
    parser.add_argument("--output_dir", default=None, help="the cache directory of this set")
    parser.add_argument("--dtype", default="float16", choices=["float16", "float32"],
                        help="storage dtype of the frames (float32: exact, twice the bytes)")
    parser.add_argument("--ngpu", type=int, default=0, help="0: CPU, 1: the first GPU")
    parser.add_argument("--batch_size", type=int, default=8, help="utterances per batch")
    parser.add_argument("--batch_seconds", type=float, default=None,
                        help="at most this many seconds of padded audio per batch")
    parser.add_argument("--chunk_size", type=int, default=1000,
                        help="utterances per ark file (a killed run redoes one chunk)")
    parser.add_argument("--print_hash", type=str2bool, default=False,
                        help="print the hash of the config's encoder part and exit")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args, train_argv = get_parser().parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    try:
        train_args = load_train_args(args.train_config, train_argv)
        if args.print_hash:
            print(config_hash(train_args)[0])
            return 0
        if args.data_path_and_name_and_type is None or args.output_dir is None:
            raise CacheError("--data_path_and_name_and_type and --output_dir are required")
        path, name, kind = (args.data_path_and_name_and_type.split(",") + ["", ""])[:3]
        if name != "speech" or kind != "sound":
            raise CacheError(f"--data_path_and_name_and_type must be <wav.scp>,speech,sound, "
                             f"got {args.data_path_and_name_and_type!r}")
        write_cache(train_args, path, args.output_dir, dtype=args.dtype,
                    batch_size=args.batch_size, batch_seconds=args.batch_seconds,
                    chunk_size=args.chunk_size, device="cuda" if args.ngpu > 0 else "cpu",
                    log=logging.info)
    except (ValueError, OSError) as e:  # CacheError is a ValueError
        print(f"cache_encoder: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
