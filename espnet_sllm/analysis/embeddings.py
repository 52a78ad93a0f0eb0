"""The speech embeddings E_speech (projector output, the LLM's input) of a trained model, one
vector per utterance, and their t-SNE map coloured by language (Ideal-LLM, Xue et al., Fig. 3:
900 test utterances per language).

`speech_embedding_means` runs the encoder and the projector (`ESPnetSLLMModel.speech_embeddings`)
in eval mode, batch by batch, each row alone to float rounding (``batch_invariant``), and
averages E_speech over the utterance's valid frames *(ours: the paper does not say how a
sequence becomes one point)*. `tsne_map` is scikit-learn's t-SNE (seeded; perplexity at most 30,
below the number of points).
"""
import random
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from espnet_sllm.analysis.lid import load_batch, read_table


def select_utterances(langs: Dict[str, str], max_per_lang: Optional[int],
                      seed: int = 0) -> List[str]:
    """Sorted ids: at most ``max_per_lang`` per language, a seeded sample (all when None)."""
    by_lang: Dict[str, List[str]] = defaultdict(list)
    for u in sorted(langs):
        by_lang[langs[u]].append(u)
    keep: List[str] = []
    for lang in sorted(by_lang):
        ids = by_lang[lang]
        if max_per_lang is not None and len(ids) > max_per_lang:
            ids = sorted(random.Random(f"{seed}-{lang}").sample(ids, max_per_lang))
        keep += ids
    return sorted(keep)


@torch.no_grad()
def speech_embedding_means(model, data_dirs: Sequence[str], max_per_lang: Optional[int] = None,
                           batch_size: int = 8, device: str = "cpu", seed: int = 0
                           ) -> Tuple[List[str], List[str], np.ndarray]:
    """(ids, languages, (N, D_llm) float32 means of E_speech over valid frames) of the
    utterances of ``data_dirs`` (``wav.scp`` with one file per utterance, ``utt2lang``;
    ``max_per_lang`` per language and directory, seeded). An utterance id in two directories or
    without a language is an error naming the file."""
    if not hasattr(model, "speech_embeddings"):
        raise ValueError(f"{type(model).__name__} has no separate speech embeddings (a "
                         f"speech encoder -> projector -> LLM model is needed)")
    model.eval()
    ids_all: List[str] = []
    langs_all: List[str] = []
    rows: List[np.ndarray] = []
    seen: Dict[str, Path] = {}
    for d in map(Path, data_dirs):
        wavs, langs = read_table(d / "wav.scp"), read_table(d / "utt2lang")
        missing = sorted(set(wavs) - set(langs))
        if missing:
            raise ValueError(f"{d / 'utt2lang'}: no language for {len(missing)} utterances of "
                             f"wav.scp, e.g. {missing[0]}")
        ids = select_utterances({u: langs[u] for u in wavs}, max_per_lang, seed)
        for u in ids:
            if u in seen:
                raise ValueError(f"{d / 'wav.scp'}: utterance {u} is also in {seen[u]}")
            seen[u] = d
        for start in range(0, len(ids), batch_size):
            chunk = ids[start:start + batch_size]
            speech, lens = load_batch(wavs, chunk)
            emb, emb_lens, _, _ = model.speech_embeddings(speech.to(device), lens.to(device),
                                                          batch_invariant=True)
            mask = (torch.arange(emb.size(1), device=emb.device)[None, :]
                    < emb_lens[:, None]).to(emb.dtype)
            mean = (emb * mask[..., None]).sum(1) / emb_lens.clamp(min=1)[:, None].to(emb.dtype)
            rows.append(mean.float().cpu().numpy())
        ids_all += ids
        langs_all += [langs[u] for u in ids]
    if not ids_all:
        raise ValueError(f"no utterances in {', '.join(map(str, data_dirs))}")
    return ids_all, langs_all, np.concatenate(rows, 0)


def tsne_map(x: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """(N, D) -> (N, 2) t-SNE coordinates (scikit-learn; perplexity min(given, N - 1))."""
    from sklearn.manifold import TSNE

    if len(x) < 3:
        raise ValueError(f"t-SNE needs at least 3 utterances, got {len(x)}")
    return TSNE(n_components=2, perplexity=min(perplexity, len(x) - 1.0), init="pca",
                random_state=seed).fit_transform(x.astype(np.float64))


def plot_map(xy: np.ndarray, langs: Sequence[str], path: str, title: str) -> None:
    """Scatter plot of ``xy`` coloured by language, with a legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    for lang in sorted(set(langs)):
        sel = [i for i, lg in enumerate(langs) if lg == lang]
        ax.scatter(xy[sel, 0], xy[sel, 1], s=6, label=lang)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(markerscale=2, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
