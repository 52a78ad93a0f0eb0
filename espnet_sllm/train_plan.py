"""How many mini-batches, iterations and optimizer updates a training run will make.

Used by ``sllm_train --dry_run true``: the counts come from ESPnet's own batch sampler built
from the shape files with the same options training uses, so a config can be checked against
a paper's "26k steps" before any model is loaded. The arithmetic, as ESPnet runs it:

- ``batches_per_epoch`` (N): ``len(build_batch_sampler(...))``, one pass over the data.
- ``iterations_per_epoch`` (I): N, or exactly ``--num_iters_per_epoch`` when it is set; ESPnet
  then walks the endless concatenation of data passes in windows of that size, so an epoch can
  end inside a pass and the next one continues from there (``SequenceIterFactory.build_iter``).
- ``updates_per_epoch`` (U): ``floor(I / accum_grad)``. ``Trainer.train_one_epoch`` steps when
  ``iiter % accum_grad == 0`` with ``iiter`` restarting at 1 every epoch; the ``I % accum_grad``
  mini-batches left at the end of an epoch make no update of their own (their gradients are not
  zeroed and add into the first update of the next epoch; after the last epoch they are lost).
- ``total_updates``: ``U * max_epoch``, counted from epoch 1 (a resumed run makes
  ``U * (max_epoch - epochs done)`` more). An update whose gradient norm is not finite is skipped
  by the trainer, optimizer and batch-step scheduler alike, so these are upper bounds.
"""
import argparse
import copy
import inspect
import logging
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional

import yaml

COUNTS_FILE = "update_counts.yaml"
NO_SHAPE_FILE = (
    "update counts need --train_shape_file (e.g. exp/stats/train/speech_shape and text_shape): "
    "none given, so no count was made"
)


class NotCounted(Exception):
    """Options the counting does not cover (said in the log instead of the counts)."""


def world_size(args: argparse.Namespace) -> Dict:
    """The processes ESPnet will train with, decided as ``AbsTask.main`` does (on a copy)."""
    from espnet2.train.distributed_utils import (
        get_num_nodes,
        get_world_size,
        resolve_distributed_mode,
    )

    a = copy.deepcopy(args)
    resolve_distributed_mode(a)
    if not a.distributed:
        size = 1
    elif a.multiprocessing_distributed:
        size = a.ngpu * get_num_nodes(a.dist_world_size, a.dist_launcher)
    else:
        size = get_world_size(a.dist_world_size, a.dist_launcher)
    return {"ngpu": args.ngpu, "distributed": bool(a.distributed), "world_size": int(size)}


def _utt2category(args: argparse.Namespace) -> Optional[str]:
    # AbsTask.build_sequence_iter_factory: an utt2category beside the first data file is used.
    triples = args.train_data_path_and_name_and_type or []
    if not triples:
        return None
    path = Path(triples[0][0]).parent / "utt2category"
    return str(path) if path.exists() else None


def build_train_batches(args: argparse.Namespace, ws: Dict) -> List[tuple]:
    """The mini-batches of one pass over the training data, as ``build_sequence_iter_factory``
    makes them (before sharding over ranks)."""
    from espnet2.samplers.build_batch_sampler import build_batch_sampler

    sampler = build_batch_sampler(
        type=args.batch_type,
        shape_files=args.train_shape_file,
        fold_lengths=args.fold_length,
        batch_size=args.batch_size,
        batch_bins=args.batch_bins,
        sort_in_batch=args.sort_in_batch,
        sort_batch=args.sort_batch,
        drop_last=args.drop_last_iter,
        min_batch_size=ws["world_size"] if ws["distributed"] else args.min_batch_size,
        utt2category_file=_utt2category(args),
    )
    return list(sampler)


def _scheduler_info(args: argparse.Namespace) -> Dict:
    from espnet2.schedulers.abs_scheduler import (
        AbsBatchStepScheduler,
        AbsEpochStepScheduler,
        AbsValEpochStepScheduler,
    )
    from espnet2.tasks.abs_task import scheduler_classes

    name = getattr(args, "scheduler", None)
    if name is None:
        return {"scheduler": None}
    cls = scheduler_classes.get(name.lower())
    conf = dict(getattr(args, "scheduler_conf", None) or {})
    out: Dict = {"scheduler": name}
    if cls is None:
        return out
    # the effective values: the class defaults, overridden by scheduler_conf
    try:
        params = inspect.signature(cls.__init__).parameters
        eff = {k: p.default for k, p in params.items()
               if p.default is not inspect.Parameter.empty and k != "last_epoch"}
    except (TypeError, ValueError):
        eff = {}
    eff.update(conf)
    if issubclass(cls, AbsBatchStepScheduler) and issubclass(cls, AbsValEpochStepScheduler):
        out["scheduler_steps_per"] = "update and epoch"
    elif issubclass(cls, AbsBatchStepScheduler):
        out["scheduler_steps_per"] = "update"
    elif issubclass(cls, (AbsEpochStepScheduler, AbsValEpochStepScheduler)):
        out["scheduler_steps_per"] = "epoch"
    steps = {k: v for k, v in eff.items()
             if ("step" in k or "warmup" in k) and isinstance(v, (int, float))
             and not isinstance(v, bool)}
    if steps:
        out["scheduler_step_options"] = steps
    if "warmup_steps" in eff:
        out["warmup_steps"] = eff["warmup_steps"]
    elif "warmup_ratio" in eff and "max_steps" in eff:  # tristagelr
        out["warmup_steps"] = int(eff["max_steps"] * eff["warmup_ratio"])
    return out


def update_counts(args: argparse.Namespace) -> Optional[Dict]:
    """The counts as a dict (what update_counts.yaml holds), or None without shape files."""
    if not args.train_shape_file:
        return None
    notes = []
    if args.iterator_type != "sequence":
        raise NotCounted(
            f"update counts are made for --iterator_type sequence only, not "
            f"{args.iterator_type!r} (category/chunk/task iterators batch differently)")
    if args.multiple_iterator:
        raise NotCounted("update counts are not made for --multiple_iterator true")
    ws = world_size(args)
    batches = build_train_batches(args, ws)
    n = len(batches)
    sizes = [len(b) for b in batches]
    iters = n if args.num_iters_per_epoch is None else int(args.num_iters_per_epoch)
    accum = int(args.accum_grad)
    upd = iters // accum
    counts: Dict = {
        "batch_type": args.batch_type,
        "batch_size": args.batch_size,
        "batch_bins": args.batch_bins,
        "fold_length": list(args.fold_length),
        "train_shape_file": list(args.train_shape_file),
        "drop_last_iter": bool(args.drop_last_iter),
        "utterances_in_batches": sum(sizes),
        "batches_per_epoch": n,
        "batch_size_min": min(sizes),
        "batch_size_mean": round(sum(sizes) / n, 2),
        "batch_size_max": max(sizes),
        **ws,
        "num_iters_per_epoch": args.num_iters_per_epoch,
        "iterations_per_epoch": iters,
        "data_passes_per_epoch": round(iters / n, 4),
        "accum_grad": accum,
        "updates_per_epoch": upd,
        "leftover_batches_per_epoch": iters % accum,
        "max_epoch": args.max_epoch,
        "total_iterations": iters * args.max_epoch,
        "total_updates": upd * args.max_epoch,
        "mini_batches_per_update": accum,
        "utterances_per_update_mean": round(accum * sum(sizes) / n, 2),
    }
    if ws["distributed"]:
        counts["per_rank"] = (
            f"each mini-batch is split over the {ws['world_size']} ranks (batch[rank::"
            f"{ws['world_size']}]): same counts, ~1/{ws['world_size']} of each batch per GPU")
        small = sum(1 for s in sizes if s < ws["world_size"])
        if small:
            notes.append(f"{small} mini-batches are smaller than the world size "
                         f"{ws['world_size']}: ESPnet will refuse to train")
    elif args.ngpu > 1:
        counts["per_rank"] = f"DataParallel splits each mini-batch over {args.ngpu} GPUs"
    if upd == 0:
        notes.append(f"iterations_per_epoch {iters} < accum_grad {accum}: no update at all")
    if getattr(args, "use_deepspeed", False) and ws["distributed"]:
        notes.append("--use_deepspeed: DeepSpeed steps every gradient_accumulation_steps "
                     "of --deepspeed_config (not --accum_grad); updates not counted for it")
    counts.update(_scheduler_info(args))
    w = counts.get("warmup_steps")
    if isinstance(w, (int, float)) and "update" in counts.get("scheduler_steps_per", ""):
        counts["warmup_steps_over_total_updates"] = (
            round(w / counts["total_updates"], 4) if counts["total_updates"] else None)
        if w > counts["total_updates"]:
            notes.append(f"warmup_steps {w} > total_updates {counts['total_updates']}: "
                         "training ends inside the warmup")
    counts["assumptions"] = (
        "counted from epoch 1 (a resumed run makes updates_per_epoch x the epochs left); "
        "an update with a non-finite gradient norm is skipped, so these are upper bounds")
    if notes:
        counts["notes"] = notes
    return counts


def format_counts(c: Dict) -> List[str]:
    """Labelled lines for the log and stdout."""
    lines = [
        f"[update counts] batch_type={c['batch_type']} batch_size={c['batch_size']} "
        f"batch_bins={c['batch_bins']} fold_length={c['fold_length']} "
        f"drop_last_iter={c['drop_last_iter']}",
        f"[update counts] mini-batches per epoch (sampler, one data pass): "
        f"{c['batches_per_epoch']} (utterances {c['utterances_in_batches']}, batch size "
        f"min/mean/max {c['batch_size_min']}/{c['batch_size_mean']}/{c['batch_size_max']})",
        f"[update counts] GPUs: ngpu={c['ngpu']} distributed={c['distributed']} "
        f"world_size={c['world_size']}" + (f"; {c['per_rank']}" if "per_rank" in c else ""),
        f"[update counts] iterations per epoch: {c['iterations_per_epoch']} "
        + ("(= mini-batches)" if c["num_iters_per_epoch"] is None else
           f"(--num_iters_per_epoch {c['num_iters_per_epoch']}: "
           f"{c['data_passes_per_epoch']} data passes per epoch)"),
        f"[update counts] optimizer updates per epoch: {c['updates_per_epoch']} = "
        f"floor({c['iterations_per_epoch']} / accum_grad {c['accum_grad']}), "
        f"{c['leftover_batches_per_epoch']} mini-batches left over per epoch",
        f"[update counts] total optimizer updates: {c['total_updates']} = "
        f"{c['updates_per_epoch']} x max_epoch {c['max_epoch']} "
        f"(total iterations {c['total_iterations']})",
    ]
    if c.get("scheduler"):
        s = f"[update counts] scheduler {c['scheduler']}"
        if "scheduler_steps_per" in c:
            s += f" steps once per {c['scheduler_steps_per']}"
        if "warmup_steps" in c:
            s += f"; warmup_steps={c['warmup_steps']}"
        if set(c.get("scheduler_step_options", {})) - {"warmup_steps"}:
            s += f"; step options {c['scheduler_step_options']}"
        lines.append(s)
    for note in c.get("notes", []):
        lines.append(f"[update counts] NOTE: {note}")
    return lines


def is_rank0(args: argparse.Namespace) -> bool:
    from espnet2.train.distributed_utils import get_rank

    try:
        rank = get_rank(args.dist_rank, args.dist_launcher)
    except Exception:
        rank = None
    return rank in (None, 0)


def write_counts(c: Dict, output_dir: Optional[str]) -> Optional[Path]:
    if output_dir is None:
        return None
    path = Path(output_dir) / COUNTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        yaml.safe_dump(c, f, sort_keys=False, allow_unicode=True)
    return path


def log_lines(lines: List[str], log_level: str = "INFO") -> None:
    """Log after ESPnet configured logging (or, in the spawning parent of
    --multiprocessing_distributed, configure it the way ESPnet does)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=log_level,
            format=f"[{os.uname()[1].split('.')[0]}] %(asctime)s (%(module)s:%(lineno)d) "
                   f"%(levelname)s: %(message)s")
    for line in lines:
        logging.info(line)


def report(args: argparse.Namespace, file=None) -> Optional[List[str]]:
    """Count, print to stdout and write <output_dir>/update_counts.yaml (rank 0 only).
    Returns the lines to log (None off rank 0)."""
    if not is_rank0(args):
        return None
    try:
        c = update_counts(args)
    except NotCounted as e:
        return [str(e)]
    if c is None:
        return [NO_SHAPE_FILE]
    lines = format_counts(c)
    path = write_counts(c, args.output_dir)
    if path is not None:
        lines.append(f"[update counts] written to {path}")
    for line in lines:
        print(line, file=file or sys.stdout, flush=True)
    return lines
