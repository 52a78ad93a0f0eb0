"""Language-identification accuracy of a model whose encoder predicts the language (Ideal-LLM's
LID adapter, ``encoder: dual``: auxiliary output ``lid``, logits (B, K) over the task option
``languages``), per language of ``utt2lang``, on Kaldi data directories (stage 2's dump dirs:
one audio file per utterance in ``wav.scp``).

Only the encoder runs (`ESPnetSLLMModel.encode_aux`), in eval mode, batch by batch; the
prediction is what decoding uses (``lid_selection: predicted``: the argmax of the logits).
"""
import logging
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import soundfile
import torch

logger = logging.getLogger(__name__)


def read_table(path: Path) -> Dict[str, str]:
    """``<uttid> <value>`` lines; a line without a value is an error naming file:line."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split(maxsplit=1)
            if not parts:
                continue
            if len(parts) != 2:
                raise ValueError(f"{path}:{n}: expected '<uttid> <value>', got {line.rstrip()!r}")
            out[parts[0]] = parts[1].strip()
    return out


def require_inputs(config: str, model: str, data_dirs: Sequence[str]) -> None:
    """FileNotFoundError naming the first missing file among the training config, the
    checkpoint and each data directory's ``wav.scp`` and ``utt2lang``."""
    for f in [config, model] + [str(Path(d) / n) for d in data_dirs
                                for n in ("wav.scp", "utt2lang")]:
        if not Path(f).is_file():
            raise FileNotFoundError(f"{f}: no such file")


def load_batch(wavs: Dict[str, str], ids: Sequence[str]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded (B, L) waveforms of ``ids`` (one audio file per utterance in ``wavs``) and
    their lengths (B,)."""
    audio = [torch.from_numpy(soundfile.read(wavs[u], dtype="float32")[0]) for u in ids]
    lens = torch.tensor([a.numel() for a in audio])
    speech = torch.zeros(len(audio), int(lens.max()))
    for i, a in enumerate(audio):
        speech[i, : a.numel()] = a
    return speech, lens


@torch.no_grad()
def predict_languages(model, data_dir: str, batch_size: int = 8,
                      device: str = "cpu") -> List[Tuple[str, str, str]]:
    """(uttid, reference language, predicted language) of every utterance of ``data_dir``
    (needs ``wav.scp`` and ``utt2lang``; a reference outside ``languages`` is an error)."""
    languages = list(getattr(model.encoder, "languages", None) or [])
    if not languages or "lid" not in getattr(model.encoder, "aux_output_names", ()):
        raise ValueError(f"the model's encoder ({type(model.encoder).__name__}) predicts no "
                         f"language (no 'lid' auxiliary output): LID accuracy needs "
                         f"encoder: dual with selector: language")
    d = Path(data_dir)
    wavs, langs = read_table(d / "wav.scp"), read_table(d / "utt2lang")
    missing = sorted(set(wavs) - set(langs))
    if missing:
        raise ValueError(f"{d / 'utt2lang'}: no language for {len(missing)} utterances of "
                         f"wav.scp, e.g. {missing[0]}")
    bad = sorted({v for v in langs.values() if v not in languages})
    if bad:
        raise ValueError(f"{d / 'utt2lang'}: languages {bad} are not among the model's "
                         f"languages {languages}")
    model.eval()
    ids, out = sorted(wavs), []
    for start in range(0, len(ids), batch_size):
        chunk = ids[start:start + batch_size]
        speech, lens = load_batch(wavs, chunk)
        _, _, aux = model.encode_aux(speech.to(device), lens.to(device))
        pred = aux["lid"].argmax(-1).tolist()
        out += [(u, langs[u], languages[p]) for u, p in zip(chunk, pred)]
    return out


def accuracy_table(rows: Sequence[Tuple[str, str, str]]) -> List[Tuple[str, int, int, float]]:
    """(language, utterances, correct, accuracy %) per reference language (sorted), then
    ``all``."""
    total, correct = Counter(r for _, r, _ in rows), Counter(r for _, r, p in rows if r == p)
    table = [(lang, total[lang], correct[lang], 100.0 * correct[lang] / total[lang])
             for lang in sorted(total)]
    n = sum(total.values())
    table.append(("all", n, sum(correct.values()), 100.0 * sum(correct.values()) / max(n, 1)))
    return table
