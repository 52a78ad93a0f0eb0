#!/usr/bin/env python3
"""Train a Speech LLM with ESPnet's trainer.

Usage:
    python -m espnet_sllm.bin.sllm_train --config conf/train.yaml \
        --train_data_path_and_name_and_type dump/raw/train/wav.scp,speech,sound \
        --train_data_path_and_name_and_type dump/raw/train/text,text,text \
        --train_shape_file exp/stats/train/speech_shape ... --output_dir exp/sllm

Before ESPnet starts (also with --collect_stats), the data files of the triples must exist and
every label of the language file and of the ``prompt_key`` fields must be one the config knows
(``languages``, the keys of ``prompt_template`` / ``target_template`` / ``context_templates``):
otherwise one ``sllm_train: error: <file>:<line>: ...`` line listing the valid labels
(espnet_sllm/data/check.py). Training on a frozen-encoder cache (``encoder_feats.scp,
encoder_feats,kaldi_ark`` in place of wav.scp, espnet_sllm/encoders/cache.py) also needs the
cache to be complete, written for this config's encoder part and to hold every utterance.

Every ESPnet trainer option works (--ngpu, --use_amp, --accum_grad, --freeze_param,
--init_param, --keep_nbest_models, --best_model_criterion valid acc max, --patience,
--use_deepspeed, --save_strategy, --resume, --collect_stats, ...); see --help.

With --dry_run true and --train_shape_file, it also prints (stdout and log) the mini-batches,
iterations and optimizer updates per epoch and in all, from ESPnet's own batch sampler, and
writes them to <output_dir>/update_counts.yaml (see espnet_sllm/train_plan.py and
egs2/TEMPLATE/sllm1/README.md), before building the model.
"""
import sys
from typing import List, Optional

from espnet_sllm import train_plan
from espnet_sllm.data.check import (check_data_triples, check_prompt_labels, groups_by_part,
                                    triples_from_argv)
from espnet_sllm.encoders.cache import check_training_cache
from espnet_sllm.tasks.sllm import SLLMTask, task_languages


def get_parser():
    return SLLMTask.get_parser()


def main(cmd: Optional[List[str]] = None):
    argv = sys.argv[1:] if cmd is None else cmd
    # Fail now, naming the file and line, rather than at the first bad utterance mid-epoch:
    # the data files exist, and every language / prompt_key label is one the config knows.
    try:
        check_data_triples(triples_from_argv(argv))
        args = get_parser().parse_args(argv)
        if args.use_preprocessor:
            groups = {**groups_by_part("train", args.train_data_path_and_name_and_type),
                      **groups_by_part("valid", args.valid_data_path_and_name_and_type)}
            check_prompt_labels(groups, task_languages(args), args.preprocessor_conf)
        if not args.collect_stats:
            # speech or a frozen-encoder cache (encoder_feats) written for this config.
            check_training_cache(args, {"train": args.train_data_path_and_name_and_type,
                                        "valid": args.valid_data_path_and_name_and_type})
    except (OSError, ValueError) as e:
        sys.exit(f"sllm_train: error: {e}")
    # Counted before the model is built (shape files and options only); logged after ESPnet
    # has set up logging in main_worker.
    lines = train_plan.report(args) if args.dry_run and not args.collect_stats else None
    SLLMTask.main(args=args)
    if lines:
        train_plan.log_lines(lines, args.log_level)


if __name__ == "__main__":
    main()
