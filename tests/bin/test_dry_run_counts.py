"""`sllm_train --dry_run true` update counts (espnet_sllm/train_plan.py): equal to hand-computed
values from ESPnet's sampler rules, and to what ESPnet's real trainer does in tiny runs
(iterations and optimizer.step() calls counted per epoch)."""
import logging
import os

import numpy as np
import pytest
import soundfile as sf
import yaml
from torch.optim.optimizer import register_optimizer_step_post_hook

from espnet_sllm import train_plan
from espnet_sllm.testing.configs import tiny_sllm_config

N_UTT = 10
# utterance i (1..10): speech length 1000*i samples, text length 5+i tokens
SPEECH = {f"u{i:02d}": 1000 * i for i in range(1, N_UTT + 1)}
TEXT = {f"u{i:02d}": 5 + i for i in range(1, N_UTT + 1)}

# batch options -> mini-batches of one data pass, worked out by hand from ESPnet's samplers:
# folded: batches start at the shortest utterance left, batch_size // (1 + max_f int(L_f/fold_f)):
#   u01 (1000/3000 -> 0): 4; u05 (5000/3000 -> 1): 2; u07, u08 (2): 1; u09, u10 (3): 1 -> 6
# numel: grow in ascending speech length until n * (speech + text length of the newest) > bins:
#   4*(4000+9)=16036 > 12000 -> [u01..u04]; 2*(6000+11) -> [u05,u06]; [u07,u08]; [u09,u10] -> 4
# length: n * (sum of the newest's lengths) > bins, the same as numel for 1-dim shapes
# sorted, unsorted: max(10 // 3, 1) = 3 batches, the 10 utterances spread as 3, 3, 4; with
# --drop_last_iter true the last utterance is dropped instead: 3, 3, 3
FOLDED = dict(batch_type="folded", batch_size=4, fold_length=[3000, 150])
NUMEL = dict(batch_type="numel", batch_bins=12000)
LENGTH = dict(batch_type="length", batch_bins=12000)
SORTED = dict(batch_type="sorted", batch_size=3)
UNSORTED = dict(batch_type="unsorted", batch_size=3)
SIZES = {"folded": [4, 2, 1, 1, 1, 1], "numel": [4, 2, 2, 2], "length": [4, 2, 2, 2],
         "sorted": [3, 3, 4], "unsorted": [3, 3, 4]}


def write_shapes(d, keys=tuple(SPEECH)):
    os.makedirs(d, exist_ok=True)
    for name, lens in (("speech_shape", SPEECH), ("text_shape", TEXT)):
        with open(os.path.join(d, name), "w") as f:
            f.write("".join(f"{k} {lens[k]}\n" for k in keys))
    return [os.path.join(d, "speech_shape"), os.path.join(d, "text_shape")]


def parse(shapes, **conf):
    from espnet_sllm.tasks.sllm import SLLMTask

    cmd = ["--output_dir", "unused"]
    for s in shapes:
        cmd += ["--train_shape_file", s]
    for L in conf.pop("fold_length", []):
        cmd += ["--fold_length", str(L)]
    parser = SLLMTask.get_parser()
    parser.set_defaults(**conf)
    return parser.parse_args(cmd)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return write_shapes(str(tmp_path_factory.mktemp("shapes")))


@pytest.mark.parametrize("opts", [FOLDED, NUMEL, LENGTH, SORTED, UNSORTED],
                         ids=lambda o: o["batch_type"])
def test_batches_per_epoch_by_hand(shapes, opts):
    args = parse(shapes, **opts, max_epoch=2)
    ws = train_plan.world_size(args)
    assert ws == {"ngpu": 0, "distributed": False, "world_size": 1}
    batches = train_plan.build_train_batches(args, ws)
    assert sorted(len(b) for b in batches) == sorted(SIZES[opts["batch_type"]])
    if opts is FOLDED:  # a folded batch's size is set by its shortest utterance
        assert {frozenset(b) for b in batches} >= {frozenset(["u05", "u06"])}
    if opts in (SORTED, UNSORTED):
        dropped = train_plan.build_train_batches(parse(shapes, **opts, drop_last_iter=True), ws)
        assert [len(b) for b in dropped] == [3, 3, 3]


# (options, accum_grad, num_iters_per_epoch) -> (iterations, updates, leftover) per epoch
CASES = [
    (FOLDED, 1, None, 6, 6, 0),
    (FOLDED, 3, None, 6, 2, 0),
    (FOLDED, 3, 5, 5, 1, 2),      # floor(5/3) per epoch: 2 in all, not floor(10/3) = 3
    (FOLDED, 1, 4, 4, 4, 0),
    (NUMEL, 1, None, 4, 4, 0),
    (NUMEL, 3, None, 4, 1, 1),
    (NUMEL, 3, 9, 9, 3, 0),       # more iterations than mini-batches: 2.25 data passes
    (NUMEL, 1, 6, 6, 6, 0),
    (SORTED, 2, None, 3, 1, 1),   # 1 per epoch: 2 in all, not floor(6/2) = 3
    (SORTED, 1, 2, 2, 2, 0),
]


@pytest.mark.parametrize("opts,accum,niter,iters,upd,left", CASES)
def test_update_counts_by_hand(shapes, opts, accum, niter, iters, upd, left):
    args = parse(shapes, **opts, accum_grad=accum, num_iters_per_epoch=niter, max_epoch=2)
    c = train_plan.update_counts(args)
    assert c["batches_per_epoch"] == len(SIZES[opts["batch_type"]])
    assert (c["iterations_per_epoch"], c["updates_per_epoch"]) == (iters, upd)
    assert c["leftover_batches_per_epoch"] == left
    assert c["total_updates"] == 2 * upd and c["total_iterations"] == 2 * iters
    assert c["world_size"] == 1 and c["utterances_in_batches"] == N_UTT


def test_ddp_min_batch_size_is_the_world_size(shapes):
    """--ngpu 2 --multiprocessing_distributed true: 2 ranks, folded batches hold >= 2 utterances
    (ESPnet's min_batch_size = world size), and every batch is split batch[rank::2]."""
    args = parse(shapes, **FOLDED, ngpu=2, multiprocessing_distributed=True, max_epoch=2)
    c = train_plan.update_counts(args)
    assert (c["distributed"], c["world_size"]) == (True, 2)
    assert c["batches_per_epoch"] == 4 and c["batch_size_min"] == 2   # 4, 2, 2, 2
    assert "rank::2" in c["per_rank"]
    single = train_plan.update_counts(parse(shapes, **FOLDED, ngpu=2, max_epoch=2))
    assert single["distributed"] is False and single["batches_per_epoch"] == 6


def test_scheduler_warmup_is_reported(shapes):
    args = parse(shapes, **SORTED, max_epoch=2, scheduler="warmuplr",
                 scheduler_conf={"warmup_steps": 10})
    c = train_plan.update_counts(args)
    assert c["scheduler_steps_per"] == "update" and c["warmup_steps"] == 10
    assert c["total_updates"] == 6 and any("inside the warmup" in n for n in c["notes"])
    # the class default counts when the config does not set it
    c = train_plan.update_counts(parse(shapes, **SORTED, scheduler="warmuplr"))
    assert c["warmup_steps"] == 25000
    c = train_plan.update_counts(parse(shapes, **SORTED, scheduler="steplr",
                                       scheduler_conf={"step_size": 1}))
    assert c["scheduler_steps_per"] == "epoch" and "warmup_steps" not in c


def test_other_iterators_are_not_counted(shapes):
    args = parse(shapes, **SORTED, iterator_type="chunk")
    with pytest.raises(train_plan.NotCounted):
        train_plan.update_counts(args)
    assert "sequence only" in train_plan.report(args, file=open(os.devnull, "w"))[0]


# ---------------------------------------------------------------- the real trainer, tiny runs


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny LLM, 10 very short utterances (ids of the shape files), 2 for validation."""
    from espnet_sllm.testing.llm import make_tiny_llm

    root = tmp_path_factory.mktemp("dryrun")
    llm = make_tiny_llm(str(root / "llm"), "qwen2", hidden_size=32, num_layers=1,
                        intermediate_size=32)
    data = {}
    for part, keys in (("train", list(SPEECH)), ("valid", list(SPEECH)[:2])):
        d = root / part
        d.mkdir()
        rows = {"wav.scp": [], "text": []}
        for i, k in enumerate(keys):
            sig = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * np.arange(1600) / 16000)
            sf.write(str(d / f"{k}.wav"), sig.astype(np.float32), 16000)
            rows["wav.scp"].append(f"{k} {d / (k + '.wav')}")
            rows["text"].append(f"{k} one two")
        for name, r in rows.items():
            (d / name).write_text("\n".join(r) + "\n")
        data[part] = str(d)
    write_shapes(data["train"])
    write_shapes(data["valid"], list(SPEECH)[:2])
    return root, llm, data


def train_cmd(tiny, tmp_path, opts, accum, niter, extra=()):
    root, llm, data = tiny
    cfg = tiny_sllm_config(llm, "conformer")
    cfg["encoder_conf"].update(output_size=16, linear_units=16)
    cfg.update(max_epoch=2, optim="sgd", optim_conf={"lr": 1e-3}, num_workers=0, seed=0,
               scheduler="warmuplr", scheduler_conf={"warmup_steps": 10},
               num_att_plot=0, accum_grad=accum, num_iters_per_epoch=niter,
               **{k: v for k, v in opts.items() if k != "fold_length"})
    conf = tmp_path / "train.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    cmd = ["--config", str(conf), "--output_dir", str(tmp_path / "exp"), *extra]
    for part in ("train", "valid"):
        d = data[part]
        cmd += [f"--{part}_data_path_and_name_and_type", f"{d}/wav.scp,speech,sound",
                f"--{part}_data_path_and_name_and_type", f"{d}/text,text,text",
                f"--{part}_shape_file", f"{d}/speech_shape",
                f"--{part}_shape_file", f"{d}/text_shape"]
    for L in opts.get("fold_length", []):
        cmd += ["--fold_length", str(L)]
    return cmd


def spy_trainer(monkeypatch):
    """Record, per epoch, the mini-batches ESPnet's Trainer.train_one_epoch iterates, the
    optimizer.step() calls it makes, and whether gradients are left over from the last epoch."""
    from espnet2.train.trainer import Trainer

    orig = Trainer.train_one_epoch.__func__
    epochs = []

    class Counted:
        def __init__(self, it, seen):
            self.it, self.seen = it, seen

        def __len__(self):
            return len(self.it)

        def __iter__(self):
            for utt_id, batch in self.it:
                self.seen.append(frozenset(utt_id))
                yield utt_id, batch

    def spy(cls, **kw):
        rec = {"batches": [], "updates": 0}
        sched = kw["schedulers"][0]
        before = sched.last_epoch
        rec["grad_at_start"] = any(p.grad is not None and bool(p.grad.abs().sum() > 0)
                                   for p in kw["model"].parameters())
        kw["iterator"] = Counted(kw["iterator"], rec["batches"])

        def hook(opt, a, k):
            rec["updates"] += 1

        handle = register_optimizer_step_post_hook(hook)
        try:
            return orig(cls, **kw)
        finally:
            handle.remove()
            rec["scheduler_steps"] = sched.last_epoch - before
            epochs.append(rec)

    monkeypatch.setattr(Trainer, "train_one_epoch", classmethod(spy))
    return epochs


REAL = [
    (FOLDED, 3, 5, 5, 1),    # windows of 5 over passes of 6; 2 left over per epoch
    (NUMEL, 1, 6, 6, 6),     # windows of 6 over passes of 4
    (SORTED, 2, None, 3, 1),  # 1 left over per epoch
]


@pytest.mark.parametrize("opts,accum,niter,iters,upd", REAL,
                         ids=lambda x: x["batch_type"] if isinstance(x, dict) else None)
def test_counts_equal_the_real_trainer(tiny, tmp_path, monkeypatch, capsys, caplog, opts,
                                       accum, niter, iters, upd):
    from espnet_sllm.bin.sllm_train import main

    caplog.set_level(logging.INFO)
    cmd = train_cmd(tiny, tmp_path, opts, accum, niter)
    # the dry run: printed and written, the model built once, no training
    epochs = spy_trainer(monkeypatch)
    main(cmd + ["--dry_run", "true"])
    assert epochs == []
    out = capsys.readouterr().out
    c = yaml.safe_load((tmp_path / "exp" / train_plan.COUNTS_FILE).read_text())
    assert (c["iterations_per_epoch"], c["updates_per_epoch"]) == (iters, upd)
    assert c["total_updates"] == 2 * upd and c["max_epoch"] == 2
    assert f"optimizer updates per epoch: {upd} = floor({iters} / accum_grad {accum})" in out
    assert f"total optimizer updates: {2 * upd} = {upd} x max_epoch 2" in out
    assert f"mini-batches per epoch (sampler, one data pass): {c['batches_per_epoch']}" in out
    logged = [r.getMessage() for r in caplog.records if r.module == "train_plan"]
    assert logged == [line for line in out.splitlines() if line.startswith("[update counts]")]

    # the real run
    main(cmd)
    assert [len(e["batches"]) for e in epochs] == [iters, iters]
    assert [e["updates"] for e in epochs] == [upd, upd]
    # warmuplr steps once per update, so its warmup_steps compare with total_updates
    assert [e["scheduler_steps"] for e in epochs] == [upd, upd]
    assert c["warmup_steps"] == 10 and c["scheduler_steps_per"] == "update"
    assert sum(e["updates"] for e in epochs) == c["total_updates"]
    # the trainer's mini-batches are the ones counted; epochs are consecutive windows of I over
    # the endless sequence of data passes: cut the epochs' batches, joined, every N
    one_pass = {frozenset(b) for b in train_plan.build_train_batches(
        _parse(cmd), {"distributed": False, "world_size": 1})}
    n = c["batches_per_epoch"]
    assert len(one_pass) == n
    seen = epochs[0]["batches"] + epochs[1]["batches"]
    for i in range(0, len(seen), n):
        chunk = seen[i:i + n]
        assert len(set(chunk)) == len(chunk) and set(chunk) <= one_pass
        assert len(chunk) < n or set(chunk) == one_pass
    if niter is None:
        assert set(epochs[0]["batches"]) == one_pass == set(epochs[1]["batches"])
    # leftover mini-batches: gradients not zeroed at the end of epoch 1
    assert epochs[1]["grad_at_start"] == (iters % accum != 0)


def _parse(cmd):
    from espnet_sllm.tasks.sllm import SLLMTask

    return SLLMTask.get_parser().parse_args(cmd)


def test_dry_run_without_shape_files_says_so(tiny, tmp_path, caplog, capsys):
    from espnet_sllm.bin.sllm_train import main

    root, llm, data = tiny
    conf = tmp_path / "train.yaml"
    conf.write_text(yaml.safe_dump(tiny_sllm_config(llm, "conformer")))
    with caplog.at_level(logging.INFO):
        main(["--config", str(conf), "--dry_run", "true", "--output_dir", str(tmp_path / "e")])
    assert (tmp_path / "e" / "config.yaml").is_file()
    assert not (tmp_path / "e" / train_plan.COUNTS_FILE).exists()
    assert train_plan.NO_SHAPE_FILE in caplog.text
