"""Keep the top-k singular values of the alignment module's output, or of its weight (Wu et al.,
§2.3.3 and Table 2): how much of the 4096-dimensional speech embedding the LLM needs.

* ``topk_activation``: per utterance, A (m x n: m valid frames, n = the LLM width) = the
  projector's output; A = U Σ Vᵀ (float32); A_k = U_k Σ_k V_kᵀ replaces A before the prompt is
  spliced. k >= min(m, n) leaves A as it is (counted: with k = 1000 and utterances under 20 s
  at 50 Hz, every utterance is unchanged). Padding frames are not part of A and stay 0.
* ``topk_weight``: W (out x in) of the linear alignment module replaced by its rank-k
  approximation (§3.3 also says "of the linear alignment module": the other reading).

``apply_svd(model, k, target)`` installs either on an ``ESPnetSLLMModel`` for decoding
(``sllm_inference --svd_topk k --svd_target activation|weight``) and returns a counter.
``sllm_inference`` writes ``1best_recog/svd_topk`` (activation: ``<uttid> unchanged|truncated|
no_frames``, no_frames = a text-only utterance) and ``1best_recog/svd_topk.json`` (`summary`:
``{"k", "target", "utterances", "unchanged"}``, or ``{"k", "target": "weight",
"weight_unchanged"}``); both cover the utterances a resumed run took from its partial file, and
``merge_outputs`` merges them over the jobs (`merge_job_files`).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch

TARGETS = ("activation", "weight")
#: per-utterance status of ``--svd_target activation`` (``1best_recog/svd_topk``)
UNCHANGED, TRUNCATED, NO_FRAMES = "unchanged", "truncated", "no_frames"
SUMMARY_NAME = "svd_topk.json"
STATUS_NAME = "svd_topk"


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ValueError(f"--svd_topk must be a positive integer, got {k!r}")


def rank_k(a: torch.Tensor, k: int) -> torch.Tensor:
    """The best rank-k approximation of a 2-D tensor (float32 SVD, result in a's dtype)."""
    u, s, vh = torch.linalg.svd(a.float(), full_matrices=False)
    return ((u[:, :k] * s[:k]) @ vh[:k]).to(a.dtype)


def topk_activation(y: torch.Tensor, y_lens: torch.Tensor, k: int) -> Tuple[torch.Tensor, int]:
    """y (B, T, D), y_lens (B,) -> (y with each utterance's valid frames replaced by their rank-k
    approximation, the number of utterances with frames that k left unchanged)."""
    _check_k(k)
    out = y.clone()
    unchanged = 0
    for b, m in enumerate(y_lens.tolist()):
        if m == 0:  # a text-only row: no frames, nothing to approximate
            continue
        if k >= min(m, y.size(-1)):
            unchanged += 1
            continue
        out[b, :m] = rank_k(y[b, :m], k)
    return out, unchanged


def topk_weight(w: torch.Tensor, k: int) -> Tuple[torch.Tensor, bool]:
    """(rank-k approximation of the weight (out, in), whether k left it unchanged)."""
    _check_k(k)
    if k >= min(w.shape):
        return w.clone(), True
    return rank_k(w, k), False


def apply_svd(model: torch.nn.Module, k: int, target: str = "activation") -> Dict[str, int]:
    """Install the top-k truncation on ``model.projector``; returns the live counter
    {"utterances": rows with frames seen, "unchanged": ..., "rows": the status of each row of
    the last projector call (`row_status`)} (activation) or {"unchanged": 0|1} (weight)."""
    _check_k(k)
    if target not in TARGETS:
        raise ValueError(f"unknown --svd_target {target!r}; valid: {list(TARGETS)}")
    counts = {"k": k, "utterances": 0, "unchanged": 0}
    if target == "weight":
        linear = getattr(model.projector, "linear", None)
        if not isinstance(linear, torch.nn.Linear):
            raise ValueError(f"--svd_target weight needs a projector with one linear layer "
                             f"(projector: linear), got {type(model.projector).__name__}")
        with torch.no_grad():
            w, same = topk_weight(linear.weight, k)
            linear.weight.copy_(w)
        counts["unchanged"] = int(same)
        return counts

    def hook(module, inputs, output):
        y, y_lens = output
        y_k, unchanged = topk_activation(y, y_lens, k)
        counts["utterances"] += int((y_lens > 0).sum())
        counts["unchanged"] += unchanged
        # per row of this call (the rows with audio, in batch order): what `row_status` reads
        counts["rows"] = [NO_FRAMES if m == 0 else UNCHANGED if k >= min(m, y.size(-1))
                          else TRUNCATED for m in y_lens.tolist()]
        return y_k, y_lens

    model.projector.register_forward_hook(hook)
    return counts


def row_status(counts: Dict, speech_lengths: Sequence[int]) -> List[str]:
    """The status of each row of the batch `generate` just decoded (``apply_svd``'s activation
    counter): UNCHANGED (k >= min(m, n)), TRUNCATED, or NO_FRAMES for a text-only row (0
    samples: the projector never saw it)."""
    seen = iter(counts.pop("rows", []))
    return [next(seen, NO_FRAMES) if n > 0 else NO_FRAMES for n in speech_lengths]


def summary(k: int, target: str, statuses: Sequence[str], weight_unchanged: bool = False
            ) -> Dict:
    """What ``svd_topk.json`` holds: k, target and, for ``activation``, ``utterances`` (with
    speech frames) and ``unchanged`` (of those, k >= min(m, n)); for ``weight``, whether k left
    the weight unchanged (k >= min of its shape)."""
    if target == "weight":
        return {"k": k, "target": target, "weight_unchanged": bool(weight_unchanged)}
    return {"k": k, "target": target,
            "utterances": sum(s != NO_FRAMES for s in statuses),
            "unchanged": sum(s == UNCHANGED for s in statuses)}


def merge_summaries(parts: Sequence[Dict], where: str = "") -> Dict:
    """The ``svd_topk.json`` of a set decoded in N jobs: counts summed; every job must have the
    same k and target (else a ValueError naming ``where``)."""
    first = parts[0]
    for p in parts[1:]:
        if (p.get("k"), p.get("target")) != (first.get("k"), first.get("target")):
            raise ValueError(f"{where}: jobs decoded with different --svd_topk/--svd_target: "
                             f"{first} vs {p}")
    out = dict(first)
    for key in ("utterances", "unchanged"):
        if key in first:
            out[key] = sum(int(p.get(key, 0)) for p in parts)
    if "weight_unchanged" in first:
        out["weight_unchanged"] = all(p.get("weight_unchanged") for p in parts)
    return out


def merge_job_files(job_dirs: Sequence[str], out_dir: str) -> Optional[Dict]:
    """``sllm_inference --svd_topk`` outputs of N jobs (``<job>/1best_recog/svd_topk.json`` and,
    for ``activation``, ``svd_topk``) -> ``<out_dir>/svd_topk.json`` (`merge_summaries`) and
    ``<out_dir>/svd_topk``; returns the merged summary, or None (and removes the merged files of
    an earlier decoding) when the first job has none. Every job must then have one."""
    import json
    import os

    from espnet_sllm.data.kaldi_dir import read_kv, write_kv

    files = [os.path.join(d, "1best_recog", SUMMARY_NAME) for d in job_dirs]
    if not os.path.isfile(files[0]):
        for name in (SUMMARY_NAME, STATUS_NAME):
            if os.path.isfile(os.path.join(out_dir, name)):
                os.remove(os.path.join(out_dir, name))
        return None
    parts = []
    for path in files:
        if not os.path.isfile(path):
            raise ValueError(f"{path}: missing ({files[0]} exists: every job decodes with the "
                             f"same --svd_topk)")
        with open(path, encoding="utf-8") as f:
            parts.append(json.load(f))
    merged = merge_summaries(parts, os.path.dirname(os.path.dirname(files[0])))
    status: Dict[str, str] = {}
    for d in job_dirs:
        path = os.path.join(d, "1best_recog", STATUS_NAME)
        if os.path.isfile(path):
            status.update(read_kv(path))
    os.makedirs(out_dir, exist_ok=True)
    if status:
        write_kv(os.path.join(out_dir, STATUS_NAME), status)
    with open(os.path.join(out_dir, SUMMARY_NAME), "w", encoding="utf-8") as f:
        json.dump(merged, f, indent=1)
    return merged
