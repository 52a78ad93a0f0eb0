"""Context masking through ESPnet's real training data loader: fresh draws per epoch and worker.

The loader is built exactly as ESPnet's training builds it: ``SLLMTask.build_iter_factory``
(ESPnetDataset + batch sampler + ``SequenceIterFactory``), and for each epoch the trainer's
``set_all_random_seed(seed + epoch)`` followed by ``build_iter(epoch)``, whose DataLoader seeds
each worker with ``worker_init_fn(worker_id, base_seed=seed + epoch)``.
"""
import os

import numpy as np
import pytest
import soundfile as sf
from espnet2.torch_utils.set_all_random_seed import set_all_random_seed
from espnet2.train.distributed_utils import DistributedOption

from espnet_sllm.tasks.sllm import SLLMTask
from espnet_sllm.testing.configs import config_to_args

N_UTTS, BATCH_SIZE = 16, 2
# The same context for every utterance: with the old per-process generator, worker 0 and
# worker 1 (and epoch 1 and epoch 2) then produced exactly the same sequence of masked prompts.
PREV = "the quick brown fox jumps over the lazy dog and the small test sentence"
NEXT = "hello world this is a small test sentence one two three four five six"


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from espnet_sllm.testing.llm import make_tiny_llm

    return make_tiny_llm(str(tmp_path_factory.mktemp("tok")), "qwen2", save_weights=False)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    rows = {name: [] for name in ("wav.scp", "text", "text_prev", "text_next", "shape")}
    for i in range(N_UTTS):
        uid = f"utt{i:02d}"
        path = str(d / f"{uid}.wav")
        sf.write(path, np.full(1600, 0.1, np.float32), 16000)
        rows["wav.scp"].append(f"{uid} {path}")
        rows["text"].append(f"{uid} one two")
        rows["text_prev"].append(f"{uid} {PREV}")
        rows["text_next"].append(f"{uid} {NEXT}")
        rows["shape"].append(f"{uid} 1600")
    for name, lines in rows.items():
        (d / name).write_text("\n".join(lines) + "\n")
    return d


def train_args(tokenizer_dir, data_dir, num_workers, seed=3, masking_seed=0, train=True):
    d = str(data_dir)
    args = config_to_args({
        "llm_conf": {"model_name_or_path": tokenizer_dir},
        "preprocessor_conf": {
            "prompt_template": "{speech} {context}transcribe speech to text",
            "context_templates": {"default": {"history": "{text_prev} ", "future": "{text_next} "}},
            "context_masking": True,
            # keep_prob 0: every context is masked, so equal prompts mean equal draws
            "context_masking_conf": {"keep_prob": 0.0, "max_ratio": 0.25, "max_spans": 3},
            "seed": masking_seed,
        },
        "train_data_path_and_name_and_type": [
            (f"{d}/wav.scp", "speech", "sound"), (f"{d}/text", "text", "text"),
            (f"{d}/text_prev", "text_prev", "text"), (f"{d}/text_next", "text_next", "text")],
        "valid_data_path_and_name_and_type": [
            (f"{d}/wav.scp", "speech", "sound"), (f"{d}/text", "text", "text"),
            (f"{d}/text_prev", "text_prev", "text"), (f"{d}/text_next", "text_next", "text")],
        "train_shape_file": [f"{d}/shape"],
        "valid_shape_file": [f"{d}/shape"],
        "batch_type": "unsorted",
        "batch_size": BATCH_SIZE,
        "num_workers": num_workers,
        "seed": seed,
    })
    return args


def run_epochs(args, epochs=(1, 2), mode="train"):
    """{epoch: [(uid, worker, suffix ids), ...] in loader order}, as the trainer iterates."""
    factory = SLLMTask.build_iter_factory(args, DistributedOption(), mode)
    out = {}
    for epoch in epochs:
        set_all_random_seed(args.seed + epoch)  # what Trainer.run does before each epoch
        items = []
        for i, (uids, batch) in enumerate(factory.build_iter(epoch)):
            # The DataLoader hands batch i to worker i % num_workers (in-order delivery).
            worker = i % args.num_workers if args.num_workers else -1
            for uid, suffix, n in zip(uids, batch["suffix"], batch["suffix_lengths"]):
                items.append((uid, worker, tuple(suffix[:n].tolist())))
        out[epoch] = items
    return out


def per_worker(items):
    """worker -> the sequence of prompts it produced, in the order it produced them."""
    seqs = {}
    for _, worker, suffix in items:
        seqs.setdefault(worker, []).append(suffix)
    return seqs


@pytest.mark.parametrize("num_workers", [2, 0])
def test_masks_differ_across_epochs_and_workers_and_repeat_for_a_seed(
        tokenizer_dir, data_dir, num_workers):
    args = train_args(tokenizer_dir, data_dir, num_workers)
    run = run_epochs(args)
    by_uid = {e: {uid: s for uid, _, s in items} for e, items in run.items()}
    assert set(by_uid[1]) == set(by_uid[2]) == {f"utt{i:02d}" for i in range(N_UTTS)}

    # 1. a fresh draw per utterance in each epoch: (nearly) every utterance changes
    changed = sum(by_uid[1][u] != by_uid[2][u] for u in by_uid[1])
    assert changed >= N_UTTS - 2, changed
    # ... and not merely a reshuffle of the same draws: the k-th prompt of a worker changes too
    for w, seq in per_worker(run[1]).items():
        assert sum(a != b for a, b in zip(seq, per_worker(run[2])[w])) >= len(seq) - 1, w
    # within one epoch, the prompts (same context for all) are not a handful of repeats
    for e in (1, 2):
        assert len({s for _, _, s in run[e]}) >= N_UTTS - 2

    # 2. workers draw differently: worker 0's k-th prompt is not worker 1's k-th prompt
    if num_workers == 2:
        for e in (1, 2):
            seqs = per_worker(run[e])
            assert set(seqs) == {0, 1} and len(seqs[0]) == len(seqs[1]) == N_UTTS // 2
            assert sum(a != b for a, b in zip(seqs[0], seqs[1])) >= N_UTTS // 2 - 1, e
        # ESPnet seeds worker 1 of epoch 1 and worker 0 of epoch 2 alike (seed + 1 + 1):
        # they must still draw differently
        a, b = per_worker(run[1])[1], per_worker(run[2])[0]
        assert sum(x != y for x, y in zip(a, b)) >= len(a) - 1

    # 3. reproducible: the same seeds give the same masks, epoch by epoch (a new factory and
    # new worker processes, as after a restart)
    assert run_epochs(args) == run
    assert run_epochs(args, epochs=(2,))[2] == run[2]  # resuming at epoch 2

    # 4. another preprocessor seed or another ESPnet --seed gives other masks
    for other in (train_args(tokenizer_dir, data_dir, num_workers, masking_seed=1),
                  train_args(tokenizer_dir, data_dir, num_workers, seed=4)):
        again = {uid: s for uid, _, s in run_epochs(other, epochs=(1,))[1]}
        assert sum(again[u] != by_uid[1][u] for u in again) >= N_UTTS - 2


def test_validation_loader_never_masks(tokenizer_dir, data_dir):
    args = train_args(tokenizer_dir, data_dir, num_workers=2)
    run = run_epochs(args, mode="valid")
    prompts = {s for e in run for _, _, s in run[e]}
    assert len(prompts) == 1  # the same context everywhere, intact
    from espnet_sllm.prompts.preprocessor import SLLMPreprocessor

    pre = SLLMPreprocessor(train=False, tokenizer_name_or_path=tokenizer_dir,
                           **args.preprocessor_conf)
    intact = pre("u", {"speech": np.ones(1600, np.float32), "text_prev": PREV, "text_next": NEXT})
    assert prompts == {tuple(intact["suffix"].tolist())}
    assert pre.tokenizer.decode(intact["suffix"].tolist()).strip() == (
        f"{PREV} {NEXT} transcribe speech to text")
