"""Usage: python -m espnet_sllm.bin.bench_loss_memory [--vocab 256000] [--batch 4] [--hidden 64]

Peak memory of one CE forward + backward of ``ESPnetSLLMModel`` on a model with a large
vocabulary (a tiny random Gemma-2 with Gemma-2's 256,000 rows), in two ways, each in a fresh
process so that the peak RSS of one does not hide the other:

  rows     logits of every position from the batch's earliest target to the end of each row,
           converted to fp32 (the loss before 2026-11-30);
  targets  logits only where a target is (hidden states gathered first), in chunks recomputed in
           backward (``ESPnetSLLMModel.target_loss``, today's loss).

The batch mixes short and long utterances (speech 50..400 frames, a 20-token prompt and 20..40
target tokens), as real batches do. Prints the peak RSS growth over the built model for each, and
their ratio; both losses must agree.
"""
import argparse
import json
import resource
import subprocess
import sys
import tempfile


def one(mode: str, vocab: int, batch: int, hidden: int) -> dict:
    import torch
    import torch.nn.functional as F

    from espnet_sllm.llm.hf_causal_lm import HFCausalLM
    from espnet_sllm.model import IGNORE_ID
    from espnet_sllm.llm.scratch import make_scratch_llm as make_tiny_llm

    with tempfile.TemporaryDirectory() as tmp:
        base = make_tiny_llm(tmp + "/tok", "gemma2", hidden_size=hidden, num_heads=4)
        n_tok = len(__import__("transformers").AutoTokenizer.from_pretrained(base))
        path = make_tiny_llm(tmp + "/llm", "gemma2", hidden_size=hidden, num_heads=4,
                             tokenizer_dir=base, spare_rows=vocab - n_tok)
        llm = HFCausalLM(path, freeze=True)
    torch.manual_seed(0)
    speech = [50 + (350 * i) // max(1, batch - 1) for i in range(batch)]
    targets = [20 + (20 * i) // max(1, batch - 1) for i in range(batch)]
    lengths = [20 + s + t for s, t in zip(speech, targets)]
    L = max(lengths)
    embeds = torch.randn(batch, L, hidden, requires_grad=True)
    mask = torch.zeros(batch, L, dtype=torch.long)
    labels = torch.full((batch, L), IGNORE_ID)
    for b, (n, t) in enumerate(zip(lengths, targets)):
        mask[b, :n] = 1
        labels[b, n - t : n] = torch.randint(0, n_tok, (t,))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if mode == "rows":
        first = int((labels != IGNORE_ID).float().argmax(dim=1).min()) - 1
        keep = torch.arange(first, L - 1)
        logits = llm(embeds, mask, logits_to_keep=keep).float()
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels[:, first + 1 :].reshape(-1),
                               ignore_index=IGNORE_ID)
    else:
        from espnet_sllm.model import ESPnetSLLMModel

        # target_loss uses only self.llm and self.logits_chunk / lsm_weight
        holder = ESPnetSLLMModel.__new__(ESPnetSLLMModel)
        torch.nn.Module.__init__(holder)
        holder.llm, holder.logits_chunk, holder.lsm_weight = llm, 1024, 0.0
        loss, _ = holder.target_loss(embeds, mask, labels)
    loss.backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"mode": mode, "loss": float(loss), "peak_growth_mb": (peak - before) / 1024,
            "target_tokens": sum(targets), "rows_positions": batch * (L - 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=256000)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--mode", choices=["rows", "targets"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(one(args.mode, args.vocab, args.batch, args.hidden)))
        return
    res = {}
    for mode in ("rows", "targets"):
        out = subprocess.run([sys.executable, "-m", "espnet_sllm.bin.bench_loss_memory", "--mode", mode,
                              "--vocab", str(args.vocab), "--batch", str(args.batch),
                              "--hidden", str(args.hidden)], capture_output=True, text=True, check=True)
        res[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    r, t = res["rows"], res["targets"]
    print(f"vocab {args.vocab}, batch {args.batch}, {t['target_tokens']} target tokens")
    print(f"rows    (old): peak RSS growth {r['peak_growth_mb']:8.0f} MB  loss {r['loss']:.6f}")
    print(f"targets (new): peak RSS growth {t['peak_growth_mb']:8.0f} MB  loss {t['loss']:.6f}")
    print(f"ratio old/new: {r['peak_growth_mb'] / max(t['peak_growth_mb'], 1):.1f}x")
    if abs(r["loss"] - t["loss"]) > 1e-4 * max(1.0, abs(r["loss"])):
        sys.exit("the two losses differ")


if __name__ == "__main__":
    main()
