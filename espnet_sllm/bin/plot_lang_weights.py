#!/usr/bin/env python3
"""Usage:
    python -m espnet_sllm.bin.plot_lang_weights \\
        --model exp/sllm_base/valid.acc.ave_5best.pth \\
        [--config exp/sllm_base/config.yaml] [--label base] \\
        [--model exp/sllm_large/valid.acc.ave_5best.pth --label large ...] \\
        --out_dir exp/lang_weights

Plot the MMS weight w' = sigmoid(W[l]) that the language weight selector of a trained
``encoder: dual`` model (``encoder_conf.selector: language``) learned for every language
(Ideal-LLM, Xue et al., Fig. 2: Base and Large side by side).

Each ``--model`` is an ESPnet checkpoint (a plain state dict, also one saved with
``--save_strategy required_grad_only``, or a ``checkpoint.pth`` holding ``model``); the
``--config`` and ``--label`` after it belong to it (defaults: ``config.yaml`` next to the model,
and the name of the model's directory).  The tool reads ``encoder.selector.weight`` and the
config's ``languages`` (top level, or ``encoder_conf.languages``); it builds no model.

Writes ``OUT_DIR/lang_weights.tsv`` (``language TAB <label> ...``, one row per language in the
config's order, sigmoid(W) to 4 decimals; also printed) and ``OUT_DIR/lang_weights.png`` (a
grouped bar chart).  Exit status 1 with one ``ERROR`` line naming the file on a missing file, a
config without a language weight selector, a checkpoint without ``encoder.selector.weight``, a
weight whose length is not the number of languages, or models with different language lists.
"""
import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import torch
import yaml

KEY = "encoder.selector.weight"


def _group(items: List[Tuple[str, str]]) -> List[dict]:
    """[("model"|"config"|"label", value), ...] in command-line order -> one dict per model."""
    models: List[dict] = []
    for kind, value in items:
        if kind == "model":
            models.append({"model": value})
        elif not models:
            raise ValueError(f"--{kind} {value}: give it after the --model it belongs to")
        elif kind in models[-1]:
            raise ValueError(f"--{kind} given twice for --model {models[-1]['model']}")
        else:
            models[-1][kind] = value
    for m in models:
        m.setdefault("config", str(Path(m["model"]).parent / "config.yaml"))
        m.setdefault("label", Path(m["model"]).resolve().parent.name)
    labels = [m["label"] for m in models]
    for label in labels:
        if labels.count(label) > 1:
            raise ValueError(f"label {label!r} names two models: give each a --label")
    return models


def _read(model: str, config: str) -> Tuple[List[str], List[float]]:
    """(languages of the config, sigmoid(W) per language) of one trained model."""
    for path in (model, config):
        if not os.path.isfile(path):
            raise ValueError(f"{path}: no such file")
    with open(config, encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    if not isinstance(conf, dict):
        raise ValueError(f"{config}: not an ESPnet config (no mapping)")
    enc_conf = conf.get("encoder_conf") or {}
    selector = enc_conf.get("selector", "language")  # DualEncoder's default
    if (conf.get("encoder") != "dual" or selector != "language"
            or ("mms" in enc_conf and enc_conf["mms"] is None)):
        raise ValueError(f"{config}: has no language weight selector (encoder: "
                         f"{conf.get('encoder')!r}, encoder_conf.selector: {selector!r}; "
                         f"it needs encoder: dual with selector: language)")
    languages = conf.get("languages") or enc_conf.get("languages")
    languages = [languages] if isinstance(languages, str) else languages
    if not languages:
        raise ValueError(f"{config}: has no `languages` (the selector's K languages)")
    try:
        state = torch.load(model, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip or weights_only errors: all mean "not a checkpoint"
        raise ValueError(f"{model}: not a readable checkpoint ({type(e).__name__}: {e})")
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # ESPnet's resume checkpoint.pth
    if not isinstance(state, dict) or KEY not in state:
        raise ValueError(f"{model}: no {KEY} in the checkpoint (not a dual encoder with a "
                         f"language weight selector)")
    weight = state[KEY]
    if not torch.is_tensor(weight) or weight.dim() != 1 or weight.numel() != len(languages):
        shape = tuple(weight.shape) if torch.is_tensor(weight) else type(weight).__name__
        raise ValueError(f"{model}: {KEY} has shape {shape}, but {config} lists "
                         f"{len(languages)} languages {list(languages)}")
    return [str(lang) for lang in languages], torch.sigmoid(weight.float()).tolist()


def _plot(path: Path, languages: List[str], labels: List[str],
          columns: List[List[float]]) -> None:
    """A grouped bar chart: x = language, one bar per model, y = sigmoid(W) = MMS weight."""
    try:
        import matplotlib
    except ImportError:
        raise ValueError(f"{path}: matplotlib is not installed, no plot (the TSV is written)")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(columns)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(languages) * max(n, 2)), 3.5))
    for i, (label, values) in enumerate(zip(labels, columns)):
        xs = [k + (i - (n - 1) / 2) * width for k in range(len(languages))]
        ax.bar(xs, values, width=width, label=label)
    ax.axhline(0.5, color="gray", linestyle="--", linewidth=0.8)  # W = 0: both streams equal
    ax.set_xticks(range(len(languages)))
    ax.set_xticklabels(languages)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("language")
    ax.set_ylabel("MMS weight sigmoid(W)")
    ax.set_title("Language weight selector")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Bar chart and TSV of the per-language MMS weights of dual-encoder models",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--model", dest="items", action="append", required=True,
                        type=lambda s: ("model", s), metavar="PTH", help="a checkpoint (.pth); repeatable")
    parser.add_argument("--config", dest="items", action="append", type=lambda s: ("config", s),
                        metavar="YAML", help="the config.yaml of the --model before it")
    parser.add_argument("--label", dest="items", action="append", type=lambda s: ("label", s),
                        metavar="NAME", help="the column / legend name of the --model before it")
    parser.add_argument("--out_dir", required=True, help="where to write the TSV and the PNG")
    args = parser.parse_args(argv)
    try:
        models = _group(args.items)
        languages, columns = None, []
        for m in models:
            langs, values = _read(m["model"], m["config"])
            if languages is not None and langs != languages:
                raise ValueError(f"{m['config']}: languages {langs} differ from {languages} of "
                                 f"{models[0]['config']}")
            languages = langs
            columns.append(values)
        labels = [m["label"] for m in models]
        lines = ["\t".join(["language"] + labels)]
        lines += ["\t".join([lang] + [f"{col[k]:.4f}" for col in columns])
                  for k, lang in enumerate(languages)]
        out_dir = Path(args.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "lang_weights.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print("\n".join(lines))
        _plot(out_dir / "lang_weights.png", languages, labels, columns)
    except (OSError, ValueError) as e:
        print(f"plot_lang_weights: ERROR: {e}", file=sys.stderr)
        return 1
    print(f"plot_lang_weights: wrote {out_dir / 'lang_weights.tsv'} and "
          f"{out_dir / 'lang_weights.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
