"""The benchmark suite of issue #16: speed, storage and memory ratios, written to BENCHMARKS.md.

Usage:
    python -m espnet_sllm.testing.bench [--out BENCHMARKS.md] [--n_utts 64] [--work DIR]
    make bench          # the same, writes BENCHMARKS.md at the repository root (not in CI)

Every figure is a ratio of two measurements taken side by side in one run on one machine
(absolute times vary between machines and between runs); the table records the date, the
machine, the versions and the command.  Models have random weights but the real architectures,
at a width where the model, not Python, dominates the time:

* Whisper encoder (``WhisperConfig``): d_model 384, 4 layers, 6 heads, 128 mel bins (large-v3's
  front end, real length or 30-s padding);
* projector ``mlp``: 5x frame stacking, hidden 2048;
* LLM (``Qwen2Config``): hidden 896, 4 layers, 14 heads, 2 KV heads, FFN 4864 (Qwen2-0.5B's
  width, 4 of its 24 layers).

Decoding forces the same number of new tokens for every utterance (min = max), so that batch
sizes and orders compare the same work.  Rows (see ``ROWS``): batched decoding speed-up, the
decoding overhead of ``sllm_inference`` over the bare model calls it makes, sorted vs unsorted
batches, Whisper at real length vs 30-s padding, the frozen-encoder cache, data loading vs
training throughput, bytes per hour of stage 2's FLAC vs WAV, peak RSS of a training update and
of a decoding batch.  Memory is measured in child processes (``ru_maxrss`` is a high-water
mark).  Lives in ``espnet_sllm.testing`` because it builds random checkpoints with the testing
kit; no production module imports it.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

WHISPER = dict(num_mel_bins=128, d_model=384, encoder_layers=4, encoder_attention_heads=6)
LLM = dict(family="qwen2", hidden_size=896, num_layers=4, num_heads=14, num_kv_heads=2,
           intermediate_size=4864)
PROJECTOR = dict(downsample=5, hidden=2048)
NEW_TOKENS = 16
SENTENCES = [f"the {c} {a} likes {f} in the {p}" for c in ("red", "blue", "green", "black")
             for a in ("cat", "dog", "fish", "bird") for f in ("milk", "rice", "bread")
             for p in ("garden", "house", "park")]


# ------------------------------------------------------------------------------ the workspace
def build_workspace(work: str, n_utts: int, seed: int = 0, whisper: Optional[Dict] = None,
                    llm: Optional[Dict] = None) -> Dict[str, str]:
    """Random checkpoints, a training config and a data dir of ``n_utts`` utterances of 2-15 s
    (lengths spread evenly, in shuffled key order) under ``work``; returns their paths.
    ``whisper`` / ``llm``: other sizes than WHISPER / LLM (tests use tiny ones)."""
    import soundfile as sf
    import yaml

    from espnet_sllm.llm.scratch import make_scratch_llm
    from espnet_sllm.testing.configs import config_to_args, tiny_sllm_config
    from espnet_sllm.testing.whisper import make_tiny_whisper

    os.makedirs(work, exist_ok=True)
    whisper = make_tiny_whisper(os.path.join(work, "whisper"), **(whisper or WHISPER))
    llm_conf = dict(llm or LLM)
    family = llm_conf.pop("family")
    llm = make_scratch_llm(os.path.join(work, "llm"), family, sentences=SENTENCES,
                           vocab_size=300, **llm_conf)
    paths = {"whisper": whisper, "llm": llm}
    for pad in (False, True):
        cfg = tiny_sllm_config(llm, "whisper_hf", whisper, pad_to_30s=pad,
                               prompt_template="{speech} Transcribe speech to text.")
        cfg["projector_conf"] = dict(PROJECTOR)
        cfg["llm_conf"]["pretrained"] = True
        path = os.path.join(work, f"config_pad{int(pad)}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(vars(config_to_args(cfg)), f)
        paths[f"config_pad{int(pad)}"] = path
    data = os.path.join(work, "data")
    os.makedirs(os.path.join(data, "wav"), exist_ok=True)
    rng = np.random.RandomState(seed)
    seconds = np.linspace(2.0, 15.0, n_utts)
    rng.shuffle(seconds)
    rows: Dict[str, List[str]] = {"wav.scp": [], "text": [], "utt2lang": [],
                                  "utt2num_samples": []}
    for i, sec in enumerate(seconds):
        utt = f"utt{i:03d}"
        n = int(sec * 16000)
        # speech-like: noise shaped by a slow envelope (the encoder's cost depends on length only)
        x = rng.randn(n) * (0.05 + 0.05 * np.sin(np.arange(n) / 1600.0) ** 2)
        wav = os.path.join(data, "wav", f"{utt}.wav")
        sf.write(wav, x.astype(np.float32), 16000, subtype="PCM_16")
        rows["wav.scp"].append(f"{utt} {wav}")
        rows["text"].append(f"{utt} {SENTENCES[i % len(SENTENCES)]}")
        rows["utt2lang"].append(f"{utt} English")
        rows["utt2num_samples"].append(f"{utt} {n}")
    for name, lines in rows.items():
        with open(os.path.join(data, name), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    paths["data"] = data
    return paths


def data_triples(data: str, with_text: bool = False):
    out = [(f"{data}/wav.scp", "speech", "sound"), (f"{data}/utt2lang", "lang", "text")]
    return out + [(f"{data}/text", "text", "text")] if with_text else out


# ------------------------------------------------------------------------------ decoding rows
def time_inference(paths: Dict[str, str], out: str, **options) -> float:
    """Seconds of one ``sllm_inference`` run (model load included, as a user sees it)."""
    from espnet_sllm.decoding.inference import inference

    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    inference(out, data_triples(paths["data"]), paths["config_pad0"], None, num_workers=0,
              max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
              max_tokens_per_second=1000.0, **options)
    return time.perf_counter() - t


def bare_decoding_seconds(paths: Dict[str, str], batch_size: int, beams: int) -> float:
    """The bare model calls of a decoding run: for each batch (sorted by length, as
    sllm_inference forms them) one encoder + projector pass, one prefill forward of the LLM (with
    beams: the prompt but its last position over the batch's rows, its cache repeated per beam,
    then the last position over batch x beams rows, as `HFCausalLM.generate` does) and
    NEW_TOKENS - 1 cached one-token forwards over batch x beams rows."""
    import torch

    from espnet_sllm.decoding.batching import plan_batches
    from espnet_sllm.decoding.inference import load_model
    from espnet_sllm.tasks.sllm import SLLMTask

    model, args = load_model(paths["config_pad0"], None, "cpu")
    preprocess = SLLMTask.build_preprocess_fn(args, train=False)
    collate = SLLMTask.build_collate_fn(args, False)
    from espnet2.train.dataset import ESPnetDataset

    dataset = ESPnetDataset(data_triples(paths["data"]), preprocess=preprocess)
    keys = [line.split()[0] for line in open(f"{paths['data']}/wav.scp")]
    batches = plan_batches(data_triples(paths["data"]), keys, batch_size, None, 16000)
    batches_data = [collate([(k, dataset[k][1]) for k in b])[1] for b in batches]
    lm = model.llm.model
    total = 0.0
    with torch.no_grad():
        for batch in batches_data:
            t = time.perf_counter()
            emb, emb_lens, _, _ = model.speech_embeddings(
                batch["speech"], batch["speech_lengths"], None, batch_invariant=True)
            embeds, mask, _ = model.splice(emb, emb_lens, batch["prefix"],
                                           batch["prefix_lengths"], batch["suffix"],
                                           batch["suffix_lengths"], left_pad=True)
            if beams > 1:  # the prompt once per utterance, its cache repeated per beam
                out = lm(inputs_embeds=embeds[:, :-1], attention_mask=mask[:, :-1],
                         use_cache=True, logits_to_keep=1)
                past = out.past_key_values
                past.batch_repeat_interleave(beams)
                embeds = embeds[:, -1:].repeat_interleave(beams, 0)
                mask = mask.repeat_interleave(beams, 0)
                out = lm(inputs_embeds=embeds, attention_mask=mask, past_key_values=past,
                         use_cache=True)
            else:
                out = lm(inputs_embeds=embeds, attention_mask=mask, use_cache=True)
            past, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
            for _ in range(NEW_TOKENS - 1):
                mask = torch.cat([mask, mask.new_ones(mask.size(0), 1)], 1)
                out = lm(input_ids=nxt, attention_mask=mask, past_key_values=past,
                         use_cache=True)
                past, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
            total += time.perf_counter() - t
    return total


# ------------------------------------------------------------------------------ other rows
def whisper_seconds(paths: Dict[str, str], pad: bool, n: int = 8, seconds: float = 5.0,
                    repeats: int = 3) -> float:
    """Best of ``repeats``: the encoder on ``n`` utterances of ``seconds`` s, one batch."""
    import torch

    from espnet_sllm.decoding.inference import load_model

    model, _ = load_model(paths[f"config_pad{int(pad)}"], None, "cpu")
    speech = torch.randn(n, int(seconds * 16000)) * 0.05
    lengths = torch.full((n,), speech.size(1))
    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            t = time.perf_counter()
            model.encoder(speech, lengths)
            best = min(best, time.perf_counter() - t)
    return best


def _train_pieces(paths: Dict[str, str], batch_size: int):
    """Model (frozen Whisper, trained projector + LLM), optimizer, dataset, collate, batches."""
    import torch
    from espnet2.train.dataset import ESPnetDataset

    from espnet_sllm.decoding.inference import load_model
    from espnet_sllm.tasks.sllm import SLLMTask

    model, args = load_model(paths["config_pad0"], None, "cpu")
    model.train()
    preprocess = SLLMTask.build_preprocess_fn(args, train=True)
    dataset = ESPnetDataset(data_triples(paths["data"], with_text=True), preprocess=preprocess)
    collate = SLLMTask.build_collate_fn(args, True)
    keys = [line.split()[0] for line in open(f"{paths['data']}/wav.scp")]
    batches = [keys[i : i + batch_size] for i in range(0, len(keys), batch_size)]
    optim = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    return model, optim, dataset, collate, batches


def data_loading_ratio(paths: Dict[str, str], batch_size: int = 8, n_batches: int = 4) -> Dict:
    """Utterances/s ESPnet's dataset + our preprocessor + collate deliver (one process, no
    workers) and utterances/s one training update (forward, backward, Adam step) consumes."""
    model, optim, dataset, collate, batches = _train_pieces(paths, batch_size)
    batches = batches[:n_batches]
    t = time.perf_counter()
    data = [collate([dataset[k] for k in b])[1] for b in batches]
    load = time.perf_counter() - t
    t = time.perf_counter()
    for batch in data:
        loss = model(**batch)[0]
        loss.backward()
        optim.step()
        optim.zero_grad()
    train = time.perf_counter() - t
    n = sum(len(b) for b in batches)
    return {"load_utt_s": n / load, "train_utt_s": n / train}


def cache_ratio(paths: Dict[str, str], batch_size: int = 8, n_batches: int = 3) -> Dict:
    """Training updates/s with the frozen encoder's output cached (``--cache_encoder true``) /
    on the waveform, Ideal-LLM-like: frozen Whisper with 30-s padding, frozen LLM, only the
    projector trains. The cached frames are float16 read back as float32, as the cache gives
    them (reading the ark is not timed: its cost is in the data-loading row's terms)."""
    import torch
    import yaml

    from espnet_sllm.decoding.inference import load_model
    from espnet_sllm.tasks.sllm import SLLMTask
    from espnet2.train.dataset import ESPnetDataset

    with open(paths["config_pad1"], encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    cfg["llm_conf"]["freeze"] = True
    conf = os.path.join(os.path.dirname(paths["config_pad1"]), "config_cache.yaml")
    with open(conf, "w", encoding="utf-8") as f:
        yaml.safe_dump(cfg, f)
    model, args = load_model(conf, None, "cpu")
    model.train()
    dataset = ESPnetDataset(data_triples(paths["data"], with_text=True),
                            preprocess=SLLMTask.build_preprocess_fn(args, train=True))
    collate = SLLMTask.build_collate_fn(args, True)
    keys = [line.split()[0] for line in open(f"{paths['data']}/wav.scp")]
    batches = [collate([dataset[k] for k in keys[i : i + batch_size]])[1]
               for i in range(0, batch_size * n_batches, batch_size)]
    optim = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    cached = []
    with torch.no_grad():
        for b in batches:
            enc, enc_lens = model.encode(b["speech"], b["speech_lengths"])
            rest = {k: v for k, v in b.items() if k not in ("speech", "speech_lengths")}
            cached.append(dict(rest, encoder_feats=enc.half().float(),
                               encoder_feats_lengths=enc_lens))

    def updates_per_second(inputs: List[Dict]) -> float:
        t = time.perf_counter()
        for batch in inputs:
            model(**batch)[0].backward()
            optim.step()
            optim.zero_grad()
        return len(inputs) / (time.perf_counter() - t)

    wave = updates_per_second(batches)
    return {"waveform": wave, "cached": updates_per_second(cached)}


def _vm_hwm_mib() -> float:
    """This process's peak RSS (MiB) from /proc/self/status VmHWM: per address space, so a
    child does not inherit its parent's peak across fork + exec as ``ru_maxrss`` does."""
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def peak_rss_child(what: str, paths: Dict[str, str]) -> float:
    """Peak RSS (MiB) of a fresh process doing one training update or one decoding batch of 8
    (``what``: train | decode), or only importing the package (``imports``)."""
    code = (f"import json, sys; from espnet_sllm.testing import bench; "
            f"import espnet_sllm.tasks.sllm; paths = json.loads(sys.argv[1]); "
            f"{'' if what == 'imports' else f'bench._one_{what}(paths); '}"
            f"print(bench._vm_hwm_mib())")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(paths)], capture_output=True,
                         text=True, check=True)
    return float(out.stdout.split()[-1])


def _one_train(paths: Dict[str, str]) -> None:
    model, optim, dataset, collate, batches = _train_pieces(paths, 8)
    batch = collate([dataset[k] for k in batches[0]])[1]
    model(**batch)[0].backward()
    optim.step()


def _one_decode(paths: Dict[str, str]) -> None:
    import tempfile as tf

    with tf.TemporaryDirectory() as out:
        keys = os.path.join(out, "keys")
        with open(keys, "w") as f:
            f.writelines(line.split()[0] + "\n" for line in
                         list(open(f"{paths['data']}/wav.scp"))[:8])
        from espnet_sllm.decoding.inference import inference

        inference(out, data_triples(paths["data"]), paths["config_pad0"], None, key_file=keys,
                  num_workers=0, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                  max_tokens_per_second=1000.0, batch_size=8)


def storage(work: str) -> Dict[str, float]:
    """Bytes per hour after stage 2 for FLAC and WAV, on the debug mini_mlc corpus (espeak-ng
    speech, cut from conversations)."""
    from espnet_sllm.data.formatting import bytes_per_hour, format_data

    corpus = os.path.join(work, "mini_mlc")
    subprocess.run([sys.executable, "-m", "espnet_sllm.data.synth.conversations", "--out",
                    corpus, "--debug"], check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "espnet_sllm.data.corpora.mlc_slm", "--root",
                    f"{corpus}/train", "--out", f"{work}/stor_data"], check=True,
                   capture_output=True)
    out = {}
    for fmt in ("wav", "flac"):
        d = f"{work}/stor_{fmt}"
        shutil.rmtree(d, ignore_errors=True)
        format_data(f"{work}/stor_data", d, nj=1, progress=False, audio_format=fmt)
        out[fmt] = bytes_per_hour(d)["bytes_per_hour"]
    return out


# ------------------------------------------------------------------------------ the table
def _versions() -> str:
    import espnet
    import torch
    import transformers

    return (f"Python {platform.python_version()}, torch {torch.__version__}, transformers "
            f"{transformers.__version__}, ESPnet {espnet.__version__}")


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = f"{len(names)} x {names[0]}" if names else cpu
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return f"{platform.system()} {platform.machine()}, {cpu}, {mem:.0f} GiB RAM, no GPU used"


def run_all(work: str, n_utts: int, log: Callable[[str], None]) -> List[List[str]]:
    """Every row: [figure, how, measured, target, verdict]."""
    paths = build_workspace(work, n_utts)
    rows: List[List[str]] = []

    def verdict(value: float, target: Optional[float]) -> str:
        return "report" if target is None else ("met" if value >= target else "NOT met")

    dec = os.path.join(work, "decode")
    t = {}
    for beams in (1, 4):
        for bs, sort in ((1, True), (8, True), (8, False)):
            key = (beams, bs, sort)
            t[key] = time_inference(paths, dec, batch_size=bs, beam_size=beams,
                                    sort_by_length=sort)
            log(f"decode beams={beams} batch={bs} sorted={sort}: {t[key]:.1f} s")
    for beams, target, name in ((1, 3.0, "greedy"), (4, 2.5, "beam 4")):
        r = t[(beams, 1, True)] / t[(beams, 8, True)]
        rows.append([f"batched decoding speed-up, {name}",
                     f"utt/s at batch 8 (length-sorted) / batch 1, {n_utts} utts of 2-15 s, "
                     f"{NEW_TOKENS} new tokens each", f"{r:.2f}x", f">= {target}x",
                     verdict(r, target)])
    for beams, name in ((1, "greedy"), (4, "beam 4")):
        bare = {bs: bare_decoding_seconds(paths, bs, beams) for bs in (1, 8)}
        log(f"bare calls beams={beams}: batch 1 {bare[1]:.1f} s, batch 8 {bare[8]:.1f} s")
        r = t[(beams, 8, True)] / bare[8]
        rows.append([f"decoding overhead, {name}", "sllm_inference time (model load included) / "
                     "the bare encoder + LLM forwards it makes, batch 8", f"{r:.2f}x",
                     "<= 1.2x", "met" if r <= 1.2 else "NOT met"])
        rows.append([f"bare model calls, batch 8 / batch 1, {name}", "the ceiling of the "
                     "speed-up above: the same forwards without sllm_inference around them",
                     f"{bare[1] / bare[8]:.2f}x", "report", "report"])
    for beams, name in ((1, "greedy"), (4, "beam 4")):
        r = t[(beams, 8, False)] / t[(beams, 8, True)]
        rows.append([f"sorted vs unsorted batches, {name}", "utt/s at batch 8, sorted by "
                     "length / key order", f"{r:.2f}x", "report (expect > 1)", "report"])
    w = {pad: whisper_seconds(paths, pad) for pad in (False, True)}
    rows.append(["Whisper real length", "encoder time on 8 x 5 s, pad_to_30s true / false",
                 f"{w[True] / w[False]:.1f}x", "report (expect >= 4x)", "report"])
    c = cache_ratio(paths)
    r = c["cached"] / c["waveform"]
    rows.append(["frozen-encoder cache", "training updates/s with cached encoder output / on "
                 "the waveform (frozen Whisper, 30-s padding; frozen LLM; projector trains; "
                 "batch 8)", f"{r:.1f}x", ">= 2x", verdict(r, 2.0)])
    d = data_loading_ratio(paths)
    r = d["load_utt_s"] / d["train_utt_s"]
    rows.append(["data loading", f"utt/s the data pipeline delivers (1 process, "
                 f"{d['load_utt_s']:.1f}) / utt/s training consumes ({d['train_utt_s']:.1f})",
                 f"{r:.1f}x", ">= 3x", verdict(r, 3.0)])
    s = storage(work)
    rows.append(["storage", "bytes per hour of audio after stage 2, FLAC / WAV (espeak-ng "
                 f"speech; WAV {s['wav'] / 1e6:.1f} MB/h)", f"{s['flac'] / s['wav']:.3f}x",
                 "<= 0.6x", "met" if s["flac"] <= 0.6 * s["wav"] else "NOT met"])
    base = peak_rss_child("imports", paths)
    for what, how in (("train", "one training update, batch 8"),
                      ("decode", "one decoding batch of 8 (sllm_inference)")):
        peak = peak_rss_child(what, paths)
        rows.append([f"memory: {what}", f"peak RSS (VmHWM) of a fresh process doing {how}; "
                     f"imports alone: {base:.0f} MiB", f"{peak:.0f} MiB", "report", "report"])
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="BENCHMARKS.md")
    parser.add_argument("--n_utts", type=int, default=64)
    parser.add_argument("--work", default=None, help="workspace (default: a temporary one)")
    args = parser.parse_args(argv)
    work = args.work or tempfile.mkdtemp(prefix="espnet_sllm_bench_")
    start = time.time()

    def log(msg: str) -> None:
        print(f"[bench {time.time() - start:6.0f} s] {msg}", file=sys.stderr, flush=True)

    try:
        rows = run_all(work, args.n_utts, log)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    lines = [
        "# Benchmarks", "",
        f"Written by `python -m espnet_sllm.testing.bench --n_utts {args.n_utts}` (`make bench`) "
        f"on {datetime.date.today().isoformat()}, in {time.time() - start:.0f} s.", "",
        f"* machine: {_machine()}; threads: {os.environ.get('OMP_NUM_THREADS', 'default')}",
        f"* versions: {_versions()}",
        "* models (random weights, real architectures): Whisper encoder d384 x 4 layers, "
        "128 mel; MLP projector 5x, hidden 2048; Qwen2 h896 x 4 layers (14 heads, 2 KV, "
        "FFN 4864)", "",
        "Every figure is a ratio of two measurements taken side by side in this run.", "",
        "| figure | how | measured | target | |", "|---|---|---|---|---|",
    ] + ["| " + " | ".join(r) + " |" for r in rows]
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
