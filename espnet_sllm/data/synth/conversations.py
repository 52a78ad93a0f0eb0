"""Synthesise ``mini_mlc``: small multilingual two-speaker conversations in the MLC-SLM layout.

The demo recipe ``egs2/mini_mlc/asr1`` trains a tiny Speech-LLM from scratch on a CPU.  Its
corpus is made here with espeak-ng and written exactly like the MLC-SLM release, so the demo
reads it with the same reader (:mod:`espnet_sllm.data.corpora.mlc_slm`) as the real corpus::

    <out>/train/data/English/American_English/<NNNN>/<session>.wav + .txt   (training layout)
    <out>/train/data/French/<NNNN>/<session>.wav + .txt
    <out>/{valid,test}/data/English/American/<session>.wav + .txt           (development layout)
    <out>/{valid,test}/data/Japanese/<session>.wav + .txt

One ``.wav`` (16 kHz, mono, 16 bit) per conversation; its ``.txt`` has one line per turn,
``start<TAB>end<TAB>O1|O2<TAB>text``, the segment covering the turn's speech.

Languages (labels as the reader gives them): ``English-American`` (espeak voice ``en-us``),
``English-British`` (``en-gb``), ``French`` (``fr``), ``Japanese`` (``ja``) and ``Thai``
(``th``); Japanese and Thai are written in native script without spaces (scored by CER).
Japanese is written in kana only: espeak-ng reads kanji as "Chinese letter".  espeak-ng's Thai
voice (1.51) is rough: it drops many vowels, but every word gives a stable, distinct sound,
which is all a from-scratch demo model needs.

Sentences come from a controlled vocabulary per language (5 numbers, 6 colours, 8 animals,
6 foods, 5 places) and five frames (see / likes / where / count / eats)::

    I see a red cat | the red cat likes fish | the cat is in the garden
    three cats are in the garden | the cat eats fish in the garden

Each possible sentence is assigned to train, valid or test by a hash of its text (75/10/15 %),
so valid and test sentences are unseen COMBINATIONS of training words, never training strings
(the same for both English accents).  In a conversation the speakers O1 and O2 alternate,
each turn re-using a content word of the previous one ("I see a red cat" -> "the red cat
likes fish"), so that context helps a context-aware model.  Each conversation has two voices
(espeak variants ``+m1..+m7``/``+f1..+f5``, pitch and speed drawn per speaker).

The output is deterministic for a given ``--seed`` (every session has its own random stream,
so ``--nj`` does not change it).  A marker file ``<out>/.mini_mlc_complete`` records the
configuration: a second run with the same configuration does nothing; with another one it is
an error (remove the folder or choose another ``--out``).

With ``--release_layout`` the split folders are named as in the real release
(``MLC-SLM_Workshop-Training_Set_1``, ``MLC-SLM_Workshop-Development_Set``, and
``MLC-SLM_Workshop-Evaluation_Set`` for the test split, with its text), so that
``egs2/mlc_slm/asr1/local/data.sh`` reads the synthetic corpus as the real one (its ``--debug``
run).  ``--common_voice`` writes single read sentences of the training sentence space in the
Common Voice layout instead (``<out>/<code>/train.tsv`` + ``clips/*.mp3``, for system S4).

Usage:
    python -m espnet_sllm.data.synth.conversations --out downloads/mini_mlc --nj 2
    python -m espnet_sllm.data.synth.conversations --out downloads/mini_mlc_debug --debug
    python -m espnet_sllm.data.synth.conversations --out downloads/mlc_slm_debug --debug \\
        --release_layout
    python -m espnet_sllm.data.synth.conversations --out downloads/cv_debug --debug \\
        --common_voice
    python -m espnet_sllm.data.synth.conversations --out /tmp/mm --langs English-American \\
        Japanese --n_train_sessions 2 --n_valid_sessions 2 --n_test_sessions 2 \\
        --turns_per_session 4

    Sizes are per language-accent: the default (32 / 2 / 3 sessions of 10 turns) gives 1600
    training, 100 valid and 150 test utterances over the 5 language-accents; --debug (5 / 1 / 1
    sessions of 4 turns) gives 100 / 20 / 20.  Explicit size options override --debug.
"""
import argparse
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from math import gcd
from multiprocessing import Pool
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile

logger = logging.getLogger(__name__)

SR = 16000
SPLITS = ("train", "valid", "test")
# --release_layout: the folder of each split, named as in the MLC-SLM release (the evaluation
# folder is read by egs2/mlc_slm/asr1/local/data.sh's default --eval_sets).
RELEASE_FOLDERS = {"train": "MLC-SLM_Workshop-Training_Set_1",
                   "valid": "MLC-SLM_Workshop-Development_Set",
                   "test": "MLC-SLM_Workshop-Evaluation_Set"}
MARKER = ".mini_mlc_complete"
FORMAT_VERSION = 1
# Percent of the sentence space given to each split (by a hash of the sentence text).
PARTITION = {"train": (0, 75), "valid": (75, 85), "test": (85, 100)}
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5"]
GAP = (0.2, 0.6)  # silence between turns (s)
EDGE = (0.3, 0.6)  # silence before the first and after the last turn (s)
MARGIN = 0.04  # speech kept around the detected start/end of a turn (s)
NOISE_STD = 3e-4  # a faint noise floor: digital zeros are not what a recording holds
MAX_TURN_SEC = 6.0

DEFAULT_SIZES = {"n_train_sessions": 32, "n_valid_sessions": 2, "n_test_sessions": 3,
                 "turns_per_session": 10}
DEBUG_SIZES = {"n_train_sessions": 5, "n_valid_sessions": 1, "n_test_sessions": 1,
               "turns_per_session": 4}


@dataclass(frozen=True)
class Language:
    """Vocabulary and frames of one language.

    ``vocab[slot]`` lists the values of a slot, each a dict of forms (``""`` = the plain form).
    A template is a blank-separated list of tokens; ``{slot}`` / ``{slot.form}`` are filled
    from the vocabulary, other tokens are frame words.  The transcript joins tokens with
    ``joiner`` ("" for Japanese and Thai), espeak-ng gets them blank-separated (its Japanese and
    Thai voices cannot split words themselves) after the ``spoken`` replacements.
    """

    name: str
    joiner: str
    vocab: Dict[str, List[Dict[str, str]]]
    templates: Dict[str, str]
    spoken: Dict[str, str]


@dataclass(frozen=True)
class Accent:
    label: str  # utt2lang label given by the reader
    language: str
    accent: Optional[str]  # English accent, None for other languages
    voice: str  # espeak-ng voice


def _w(*words: str) -> List[Dict[str, str]]:
    return [{"": w} for w in words]


LANGUAGES: Dict[str, Language] = {
    "English": Language(
        name="English", joiner=" ",
        vocab={
            "number": _w("two", "three", "four", "five", "six"),
            "colour": _w("red", "blue", "green", "black", "white", "yellow"),
            "animal": [{"": s, "pl": p} for s, p in [
                ("cat", "cats"), ("dog", "dogs"), ("bird", "birds"), ("horse", "horses"),
                ("rabbit", "rabbits"), ("duck", "ducks"), ("mouse", "mice"), ("lion", "lions")]],
            "food": _w("fish", "rice", "bread", "cheese", "cake", "soup"),
            "place": _w("garden", "park", "kitchen", "house", "forest"),
        },
        templates={
            "see": "I see a {colour} {animal}",
            "likes": "the {colour} {animal} likes {food}",
            "where": "the {animal} is in the {place}",
            "count": "{number} {animal.pl} are in the {place}",
            "eats": "the {animal} eats {food} in the {place}",
        },
        spoken={},
    ),
    # Every noun is masculine or carries its article, so no agreement rule is needed.
    "French": Language(
        name="French", joiner=" ",
        vocab={
            "number": _w("deux", "trois", "quatre", "cinq", "six"),
            "colour": _w("rouge", "bleu", "vert", "noir", "blanc", "jaune"),
            "animal": [{"": s, "def": d, "pl": p} for s, d, p in [
                ("chat", "le chat", "chats"), ("chien", "le chien", "chiens"),
                ("oiseau", "l'oiseau", "oiseaux"), ("cheval", "le cheval", "chevaux"),
                ("lapin", "le lapin", "lapins"), ("canard", "le canard", "canards"),
                ("mouton", "le mouton", "moutons"), ("lion", "le lion", "lions")]],
            "food": [{"": w, "def": d, "part": p} for w, d, p in [
                ("poisson", "le poisson", "du poisson"), ("riz", "le riz", "du riz"),
                ("pain", "le pain", "du pain"), ("fromage", "le fromage", "du fromage"),
                ("gâteau", "le gâteau", "du gâteau"), ("soupe", "la soupe", "de la soupe")]],
            "place": [{"": w, "in": i} for w, i in [
                ("jardin", "dans le jardin"), ("parc", "dans le parc"),
                ("cuisine", "dans la cuisine"), ("maison", "dans la maison"),
                ("forêt", "dans la forêt")]],
        },
        templates={
            "see": "je vois un {animal} {colour}",
            "likes": "{animal.def} {colour} aime {food.def}",
            "where": "{animal.def} est {place.in}",
            "count": "{number} {animal.pl} sont {place.in}",
            "eats": "{animal.def} mange {food.part} {place.in}",
        },
        spoken={},
    ),
    # Kana only (espeak-ng has no kanji readings); numbers carry the animal counter.
    "Japanese": Language(
        name="Japanese", joiner="",
        vocab={
            "number": _w("にひき", "さんびき", "よんひき", "ごひき", "ろっぴき"),
            "colour": _w("あかい", "あおい", "みどりの", "くろい", "しろい", "きいろい"),
            "animal": _w("ねこ", "いぬ", "とり", "うま", "うさぎ", "あひる", "ねずみ", "ライオン"),
            "food": _w("さかな", "ごはん", "パン", "チーズ", "ケーキ", "スープ"),
            "place": _w("にわ", "こうえん", "だいどころ", "いえ", "もり"),
        },
        templates={
            "see": "{colour} {animal} が みえます",
            "likes": "{colour} {animal} は {food} が すきです",
            "where": "{animal} は {place} に います",
            "count": "{place} に {animal} が {number} います",
            "eats": "{animal} は {place} で {food} を たべます",
        },
        # The topic particle is pronounced "wa"; espeak-ng would read the kana "ha".
        spoken={"は": "わ"},
    ),
    "Thai": Language(
        name="Thai", joiner="",
        vocab={
            "number": _w("สอง", "สาม", "สี่", "ห้า", "หก"),
            "colour": _w("แดง", "ฟ้า", "เขียว", "ดำ", "ขาว", "เหลือง"),
            "animal": _w("แมว", "หมา", "นก", "ม้า", "กระต่าย", "เป็ด", "หนู", "สิงโต"),
            "food": _w("ปลา", "ข้าว", "ขนมปัง", "ชีส", "เค้ก", "ซุป"),
            "place": _w("สวน", "ตลาด", "ครัว", "บ้าน", "ป่า"),
        },
        templates={
            "see": "ฉัน เห็น {animal} สี {colour}",
            "likes": "{animal} สี {colour} ชอบ {food}",
            "where": "{animal} อยู่ ใน {place}",
            "count": "มี {animal} {number} ตัว อยู่ ใน {place}",
            "eats": "{animal} กิน {food} ใน {place}",
        },
        spoken={},
    ),
}

ACCENTS: Dict[str, Accent] = {a.label: a for a in [
    Accent("English-American", "English", "American", "en-us"),
    Accent("English-British", "English", "British", "en-gb"),
    Accent("French", "French", None, "fr"),
    Accent("Japanese", "Japanese", None, "ja"),
    Accent("Thai", "Thai", None, "th"),
]}

_SLOT_RE = re.compile(r"^\{(\w+)(?:\.(\w+))?\}$")


# ----------------------------------------------------------------------------- sentences
@dataclass
class Sentence:
    template: str
    values: Dict[str, int]  # slot -> index into the vocabulary
    text: str  # transcript
    spoken: str  # what espeak-ng reads
    content: Tuple[str, ...]  # surface forms of the filled slots, as written


def template_slots(lang: Language, template: str) -> List[str]:
    out = []
    for tok in lang.templates[template].split():
        m = _SLOT_RE.match(tok)
        if m and m.group(1) not in out:
            out.append(m.group(1))
    return out


def render(lang: Language, template: str, values: Dict[str, int]) -> Sentence:
    written, spoken, content = [], [], []
    for tok in lang.templates[template].split():
        m = _SLOT_RE.match(tok)
        if m:
            word = lang.vocab[m.group(1)][values[m.group(1)]][m.group(2) or ""]
            written.append(word)
            spoken.append(word)
            content.append(word)
        else:
            written.append(tok)
            spoken.append(lang.spoken.get(tok, tok))
    return Sentence(template, dict(values), lang.joiner.join(written), " ".join(spoken),
                    tuple(content))


def split_of(language: str, text: str) -> str:
    """The split a sentence belongs to, from a hash of its text (stable across runs)."""
    h = int(hashlib.md5(f"{language}\t{text}".encode("utf-8")).hexdigest(), 16) % 100
    for split, (lo, hi) in PARTITION.items():
        if lo <= h < hi:
            return split
    raise AssertionError(h)


def _content_words(s: Sentence) -> set:
    # French slot values hold articles ("le chat"): compare words, not whole values.
    return {w for c in s.content for w in c.split()} - {"le", "la", "l'", "du", "de", "dans"}


def content_words(text: str, language: str) -> set:
    """Vocabulary words found in a transcript: blank-separated words for languages written
    with blanks, vocabulary substrings for Japanese and Thai.  For checks and analysis."""
    lang = LANGUAGES[language]
    words = {w for vals in lang.vocab.values() for forms in vals for f in forms.values()
             for w in f.split()} - {"le", "la", "l'", "du", "de", "dans"}
    if lang.joiner:
        return set(text.split()) & words
    return {w for w in words if w in text}


def make_conversation(language: str, split: str, n_turns: int,
                      rng: np.random.Generator) -> List[Sentence]:
    """Turns of one conversation: sentences of ``split``'s part of the sentence space, each
    sharing at least one written content word with the previous one."""
    lang = LANGUAGES[language]
    templates = sorted(lang.templates)
    turns: List[Sentence] = []
    for _ in range(n_turns):
        prev = turns[-1] if turns else None
        seen = {t.text for t in turns}
        for attempt in range(10000):
            tpl = templates[rng.integers(len(templates))]
            slots = template_slots(lang, tpl)
            values = {s: int(rng.integers(len(lang.vocab[s]))) for s in slots}
            if prev is not None:
                common = [s for s in slots if s in prev.values]
                if not common:
                    continue
                # Carry one slot of the previous turn (the others are drawn afresh, so that a
                # conversation does not stay on one animal).
                carry = common[rng.integers(len(common))]
                values[carry] = prev.values[carry]
            sent = render(lang, tpl, values)
            if split_of(language, sent.text) != split:
                continue
            if prev is not None and not _content_words(sent) & _content_words(prev):
                continue
            # No sentence twice in a conversation, unless the split's share is exhausted.
            if sent.text in seen and (attempt < 2000 or sent.text == prev.text):
                continue
            turns.append(sent)
            break
        else:  # the partition gives every split a share of each frame: this cannot happen
            raise RuntimeError(f"{language}/{split}: no sentence found after 10000 tries")
    return turns


# ----------------------------------------------------------------------------- audio
def espeak(text: str, voice: str, pitch: int, speed: int) -> Tuple[np.ndarray, int]:
    """Synthesise with espeak-ng: (float32 samples, sample rate)."""
    cmd = ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "--stdout", text]
    try:
        res = subprocess.run(cmd, capture_output=True, check=True)
    except FileNotFoundError:
        raise RuntimeError(
            "espeak-ng not found: install it (apt-get install espeak-ng, or "
            "tools/install_debian.sh)") from None
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"{' '.join(cmd)} failed: {e.stderr.decode(errors='replace')}") \
            from None
    x, sr = soundfile.read(io.BytesIO(res.stdout), dtype="float32")
    return x, sr


def to_16k(x: np.ndarray, sr: int) -> np.ndarray:
    if sr == SR:
        return x
    from scipy.signal import resample_poly

    g = gcd(SR, sr)
    return resample_poly(x, SR // g, sr // g).astype(np.float32)


def trim(x: np.ndarray, sr: int = SR, rel_db: float = -40.0) -> np.ndarray:
    """Cut leading/trailing silence (10 ms frames below ``rel_db`` of the loudest frame)."""
    hop = sr // 100
    n = len(x) // hop
    if n == 0:
        return x[:0]
    energy = (x[: n * hop].reshape(n, hop) ** 2).mean(axis=1)
    if energy.max() <= 0:
        return x[:0]
    on = np.nonzero(energy > energy.max() * 10 ** (rel_db / 10))[0]
    margin = int(MARGIN * sr)
    return x[max(0, on[0] * hop - margin): min(len(x), (on[-1] + 1) * hop + margin)]


def synth_turn(sent: Sentence, voice: str, pitch: int, speed: int) -> np.ndarray:
    x, sr = espeak(sent.spoken, voice, pitch, speed)
    x = trim(to_16k(x, sr))
    dur = len(x) / SR
    rms = float(np.sqrt(np.mean(x ** 2))) if len(x) else 0.0
    # Too short for the text: silence, or espeak-ng skipped characters it cannot read.
    min_dur = max(0.3, 0.03 * len(sent.spoken.replace(" ", "")))
    if not (min_dur <= dur <= MAX_TURN_SEC) or rms < 0.01:
        raise RuntimeError(
            f"espeak-ng voice {voice}: implausible audio for {sent.spoken!r}: {dur:.2f} s "
            f"(expected {min_dur:.2f}..{MAX_TURN_SEC} s), RMS {rms:.4f}")
    return x


# ----------------------------------------------------------------------------- sessions
@dataclass
class Job:
    out: str
    split: str
    label: str
    index: int  # session index within (split, label), for the random stream
    number: int  # session number, unique over the splits of a label
    turns: int
    seed: int
    folder: str = ""  # the split's folder under ``out`` (default: the split name)


def session_paths(job: Job) -> Tuple[str, str]:
    """(folder, stem) of a session in the MLC-SLM layout (see the module docstring)."""
    acc = ACCENTS[job.label]
    parts = [job.out, job.folder or job.split, "data", acc.language]
    if acc.accent:
        parts.append(acc.accent + ("_English" if job.split == "train" else ""))
    if job.split == "train":
        parts.append(f"{(job.number - 1) // 10 + 1:04d}")  # the training release's <NNNN>/
    return os.path.join(*parts), f"{job.number:04d}_tts"


def synth_session(job: Job) -> Dict:
    acc = ACCENTS[job.label]
    rng = np.random.default_rng(
        [job.seed, SPLITS.index(job.split), list(ACCENTS).index(job.label), job.index])
    turns = make_conversation(acc.language, job.split, job.turns, rng)
    v1, v2 = rng.choice(len(VARIANTS), size=2, replace=False)
    speakers = {}
    for spk, v in (("O1", v1), ("O2", v2)):
        speakers[spk] = dict(voice=f"{acc.voice}+{VARIANTS[v]}", pitch=int(rng.integers(30, 71)),
                             speed=int(rng.integers(140, 176)), gain=float(rng.uniform(0.3, 0.7)))

    pieces, lines = [], []
    pos = int(rng.uniform(*EDGE) * SR)
    pieces.append(np.zeros(pos, np.float32))
    for i, sent in enumerate(turns):
        spk = "O1" if i % 2 == 0 else "O2"
        s = speakers[spk]
        x = synth_turn(sent, s["voice"], s["pitch"], s["speed"])
        x = x * (s["gain"] / max(1e-6, float(np.abs(x).max())))
        if i:
            gap = np.zeros(int(rng.uniform(*GAP) * SR), np.float32)
            pieces.append(gap)
            pos += len(gap)
        lines.append(f"{pos / SR:.3f}\t{(pos + len(x)) / SR:.3f}\t{spk}\t{sent.text}")
        pieces.append(x.astype(np.float32))
        pos += len(x)
    pieces.append(np.zeros(int(rng.uniform(*EDGE) * SR), np.float32))
    audio = np.concatenate(pieces)
    audio += rng.normal(0, NOISE_STD, len(audio)).astype(np.float32)
    audio = np.clip(audio, -1.0, 1.0)

    folder, stem = session_paths(job)
    os.makedirs(folder, exist_ok=True)
    soundfile.write(os.path.join(folder, stem + ".wav"), audio, SR, subtype="PCM_16")
    with open(os.path.join(folder, stem + ".txt"), "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return dict(split=job.split, label=job.label, turns=len(turns), seconds=len(audio) / SR,
                speech=sum(float(ln.split("\t")[1]) - float(ln.split("\t")[0]) for ln in lines),
                texts=[t.text for t in turns])


# ----------------------------------------------------------------------------- checks
def check_voice(voice: str, words: Sequence[str], what: str) -> None:
    """espeak-ng is installed, has ``voice`` and reads each of ``words`` in the voice's own
    language: espeak-ng marks a switch to another language, e.g. spelling out kanji or reading
    pinyin in English, as ``(en)``.  ``what`` names the words' owner in the messages."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng not found: install it (apt-get install espeak-ng, or "
                           "tools/install_debian.sh)")
    base = voice.split("+")[0]
    listing = subprocess.run(["espeak-ng", f"--voices={base}"], capture_output=True,
                             text=True, check=True).stdout
    if not any(base in line.split() or f"({base} " in line
               for line in listing.splitlines()[1:]):
        raise RuntimeError(f"espeak-ng has no voice {base!r} for {what}")
    phon = subprocess.run(["espeak-ng", "-q", "-x", "-v", voice, " , ".join(words)],
                          capture_output=True, text=True, check=True).stdout
    switch = re.findall(r"\([a-z]{2,3}(?:-[a-z]+)?\)", phon)
    if switch:
        raise RuntimeError(f"espeak-ng voice {voice} switches language {switch} in "
                           f"the vocabulary of {what} (spelled-out characters?): {phon[:300]}")


def check_espeak(labels: Sequence[str]) -> None:
    """Each voice exists and reads the whole vocabulary in its own language (`check_voice`)."""
    for label in labels:
        acc = ACCENTS[label]
        lang = LANGUAGES[acc.language]
        words = sorted({lang.spoken.get(t, t) for tpl in lang.templates.values()
                        for t in tpl.split() if not _SLOT_RE.match(t)}
                       | {f for vals in lang.vocab.values() for forms in vals
                          for f in forms.values()})
        check_voice(acc.voice, words, label)


def check_disjoint(results: List[Dict]) -> None:
    """No valid/test sentence is a training sentence (guaranteed by the partition: checked)."""
    by = {}
    for r in results:
        lang = ACCENTS[r["label"]].language
        by.setdefault((r["split"], lang), set()).update(r["texts"])
    for (split, lang), texts in by.items():
        if split != "train":
            common = texts & by.get(("train", lang), set())
            if common:
                raise AssertionError(f"{split} sentences also in train: {sorted(common)[:5]}")


# ----------------------------------------------------------------------------- main
def split_folder(split: str, release_layout: bool = False) -> str:
    """The folder of ``split`` under the corpus root: ``train`` / ``valid`` / ``test``, or with
    ``release_layout`` the MLC-SLM release names (`RELEASE_FOLDERS`)."""
    return RELEASE_FOLDERS[split] if release_layout else split


def synthesise(out: str, labels: Sequence[str], sizes: Dict[str, int], seed: int = 0,
               nj: int = 1, progress: bool = True, release_layout: bool = False) -> Dict:
    """Write the corpus under ``out`` (see the module docstring); returns the summary stored
    in the marker file.  Does nothing when ``out`` holds a complete corpus of this config.
    ``release_layout``: split folders named as in the MLC-SLM release (`RELEASE_FOLDERS`)."""
    config = dict(version=FORMAT_VERSION, langs=list(labels), seed=seed, **sizes)
    if release_layout:  # only when set, so that corpora written before the option stay valid
        config["release_layout"] = True
    marker = os.path.join(out, MARKER)
    if os.path.exists(marker):
        with open(marker, encoding="utf-8") as f:
            done = json.load(f)
        if done.get("config") != config:
            raise ValueError(
                f"{out} holds a mini_mlc corpus of another configuration ({done.get('config')}"
                f", asked {config}): remove it or choose another --out")
        logger.info("%s: complete corpus found (%s), nothing to do", out, MARKER)
        return done
    unknown = [x for x in labels if x not in ACCENTS]
    if unknown:
        raise ValueError(f"unknown language label(s) {unknown}; valid: {list(ACCENTS)}")
    check_espeak(labels)
    # A half-written corpus (no marker) is redone from scratch, split by split.
    for split in SPLITS:
        folder = os.path.join(out, split_folder(split, release_layout))
        if os.path.isdir(folder):
            logger.info("removing incomplete %s", folder)
            shutil.rmtree(folder)

    n = {s: sizes[f"n_{s}_sessions"] for s in SPLITS}
    jobs = []
    for label in labels:
        number = 0
        for split in SPLITS:
            for i in range(n[split]):
                number += 1
                jobs.append(Job(out, split, label, i, number, sizes["turns_per_session"], seed,
                                split_folder(split, release_layout)))

    from tqdm import tqdm

    t0 = time.time()
    bar = tqdm(total=len(jobs), desc="mini_mlc sessions", unit="session", disable=not progress)
    results = []
    if nj > 1:
        with Pool(nj) as pool:
            for r in pool.imap_unordered(synth_session, jobs):
                results.append(r)
                bar.update()
    else:
        for job in jobs:
            results.append(synth_session(job))
            bar.update()
    bar.close()
    check_disjoint(results)

    counts = {}
    for r in results:
        c = counts.setdefault(r["split"], {}).setdefault(
            r["label"], dict(sessions=0, utterances=0, hours=0.0, speech_hours=0.0))
        c["sessions"] += 1
        c["utterances"] += r["turns"]
        c["hours"] += r["seconds"] / 3600
        c["speech_hours"] += r["speech"] / 3600
    for split in counts:
        for c in counts[split].values():
            c["hours"] = round(c["hours"], 4)
            c["speech_hours"] = round(c["speech_hours"], 4)
    summary = dict(config=config, counts=counts, seconds=round(time.time() - t0, 1))
    with open(marker, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, ensure_ascii=False)
    for split in SPLITS:
        if split in counts:
            c = counts[split]
            logger.info("%s: %d sessions, %d utterances, %.2f h of audio (%.2f h speech): %s",
                        split, sum(x["sessions"] for x in c.values()),
                        sum(x["utterances"] for x in c.values()),
                        sum(x["hours"] for x in c.values()),
                        sum(x["speech_hours"] for x in c.values()),
                        ", ".join(f"{k}={v['utterances']}" for k, v in c.items()))
    logger.info("%s: synthesised in %.1f s", out, time.time() - t0)
    return summary


# ----------------------------------------------------------------------------- Common Voice
CV_MARKER = ".mini_cv_complete"
CV_SR = 48000  # Common Voice clips are 48 kHz MP3: stage 2 resamples them, as for the real ones
CV_HEADER = ("client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes",
             "down_votes", "age", "gender", "accents", "variant", "locale", "segment")
CV_SPEAKERS = 4  # speakers per language


@dataclass
class CVJob:
    out: str
    code: str  # Common Voice language code
    labels: Tuple[str, ...]  # accent labels whose voices may read this language
    index: int
    seed: int


def _cv_code(language: str) -> str:
    from espnet_sllm.data.corpora.common_voice import CV_LANGUAGES

    return {v: k for k, v in CV_LANGUAGES.items()}[language]


def _cv_speaker(job: CVJob, k: int) -> Dict:
    rng = np.random.default_rng([job.seed, 99, list(ACCENTS).index(job.labels[0]), k])
    label = job.labels[int(rng.integers(len(job.labels)))]
    return dict(voice=f"{ACCENTS[label].voice}+{VARIANTS[int(rng.integers(len(VARIANTS)))]}",
                pitch=int(rng.integers(30, 71)), speed=int(rng.integers(140, 176)),
                client_id=hashlib.sha1(f"mini_cv-{job.code}-{k}".encode()).hexdigest())


def synth_cv_clip(job: CVJob) -> Tuple[str, str, str]:
    """One read sentence of the training part of the sentence space -> (client_id, path, text)."""
    language = ACCENTS[job.labels[0]].language
    lang = LANGUAGES[language]
    rng = np.random.default_rng([job.seed, 98, list(ACCENTS).index(job.labels[0]), job.index])
    templates = sorted(lang.templates)
    for _ in range(10000):
        tpl = templates[rng.integers(len(templates))]
        sent = render(lang, tpl, {slot: int(rng.integers(len(lang.vocab[slot])))
                                  for slot in template_slots(lang, tpl)})
        if split_of(language, sent.text) == "train":
            break
    spk = _cv_speaker(job, job.index % CV_SPEAKERS)
    x = synth_turn(sent, spk["voice"], spk["pitch"], spk["speed"])
    edge = np.zeros(int(0.2 * SR), np.float32)
    x = np.concatenate([edge, x * (0.5 / max(1e-6, float(np.abs(x).max()))), edge])
    x = x + rng.normal(0, NOISE_STD, len(x)).astype(np.float32)
    from scipy.signal import resample_poly

    x = np.clip(resample_poly(x, CV_SR // SR, 1), -1.0, 1.0).astype(np.float32)
    name = f"common_voice_{job.code}_{job.index + 1:06d}.mp3"
    soundfile.write(os.path.join(job.out, job.code, "clips", name), x, CV_SR, format="MP3")
    return spk["client_id"], name, sent.text


def synthesise_common_voice(out: str, labels: Sequence[str], n_clips: int, seed: int = 0,
                            nj: int = 1) -> Dict:
    """Write a Common Voice-layout corpus of single read sentences under ``out``::

        <out>/<code>/train.tsv            (header row; the columns of Common Voice 21.0)
        <out>/<code>/clips/<path>.mp3     (48 kHz MP3)

    one folder per LANGUAGE of ``labels`` (English accents share ``en``), ``n_clips`` clips each,
    sentences from the training part of the sentence space read by ``CV_SPEAKERS`` voices.  Read
    by :mod:`espnet_sllm.data.corpora.common_voice` (system S4 of egs2/mlc_slm).  Idempotent like
    `synthesise` (marker ``<out>/.mini_cv_complete``)."""
    config = dict(version=FORMAT_VERSION, kind="common_voice", langs=list(labels), seed=seed,
                  n_clips=n_clips)
    marker = os.path.join(out, CV_MARKER)
    if os.path.exists(marker):
        with open(marker, encoding="utf-8") as f:
            done = json.load(f)
        if done.get("config") != config:
            raise ValueError(
                f"{out} holds a Common Voice-layout corpus of another configuration "
                f"({done.get('config')}, asked {config}): remove it or choose another --out")
        logger.info("%s: complete corpus found (%s), nothing to do", out, CV_MARKER)
        return done
    unknown = [x for x in labels if x not in ACCENTS]
    if unknown:
        raise ValueError(f"unknown language label(s) {unknown}; valid: {list(ACCENTS)}")
    if n_clips < 1:
        raise ValueError(f"n_clips must be at least 1, got {n_clips}")
    check_espeak(labels)
    by_lang: Dict[str, List[str]] = {}
    for label in labels:
        by_lang.setdefault(ACCENTS[label].language, []).append(label)
    jobs = []
    for language, accent_labels in by_lang.items():
        code = _cv_code(language)
        folder = os.path.join(out, code)
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        os.makedirs(os.path.join(folder, "clips"))
        jobs += [CVJob(out, code, tuple(accent_labels), i, seed) for i in range(n_clips)]
    t0 = time.time()
    if nj > 1:
        with Pool(nj) as pool:
            rows = pool.map(synth_cv_clip, jobs)
    else:
        rows = [synth_cv_clip(j) for j in jobs]
    per_code: Dict[str, List[str]] = {}
    for job, (client, path, text) in zip(jobs, rows):
        values = dict(client_id=client, path=path, sentence_id=f"{job.code}{job.index:06d}",
                      sentence=text, up_votes="2", down_votes="0", locale=job.code)
        per_code.setdefault(job.code, []).append("\t".join(values.get(c, "") for c in CV_HEADER))
    for code, lines in per_code.items():
        with open(os.path.join(out, code, "train.tsv"), "w", encoding="utf-8") as f:
            f.write("\t".join(CV_HEADER) + "\n" + "".join(line + "\n" for line in lines))
    summary = dict(config=config, clips={c: len(v) for c, v in per_code.items()},
                   seconds=round(time.time() - t0, 1))
    with open(marker, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    logger.info("%s: Common Voice layout, %s clips, synthesised in %.1f s", out,
                summary["clips"], time.time() - t0)
    return summary


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Synthesise the mini_mlc demo corpus (espeak-ng) in the MLC-SLM layout.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Usage:")[1],
    )
    parser.add_argument("--out", required=True, help="corpus root (gets train/ valid/ test/)")
    parser.add_argument("--langs", nargs="+", default=list(ACCENTS), choices=list(ACCENTS),
                        help="language-accent labels to synthesise")
    for key in DEFAULT_SIZES:
        what = "turns per conversation" if key.startswith("turns") else \
            "conversations per language-accent"
        parser.add_argument(f"--{key}", type=int, default=None,
                            help=f"{what} (default {DEFAULT_SIZES[key]}; --debug: "
                                 f"{DEBUG_SIZES[key]})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nj", type=int, default=2, help="parallel synthesis processes")
    parser.add_argument("--debug", action="store_true",
                        help="a tiny corpus (about 100 / 20 / 20 utterances)")
    parser.add_argument("--release_layout", action="store_true",
                        help="name the split folders as the MLC-SLM release does: "
                             + ", ".join(f"{k} -> {v}" for k, v in RELEASE_FOLDERS.items()))
    parser.add_argument("--common_voice", action="store_true",
                        help="write single read sentences in the Common Voice layout "
                             "(<out>/<code>/train.tsv + clips/*.mp3) instead of conversations")
    parser.add_argument("--n_clips_per_lang", type=int, default=None,
                        help="--common_voice: clips per language (default 40; --debug: 10)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")

    base = DEBUG_SIZES if args.debug else DEFAULT_SIZES
    sizes = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in base.items()}
    bad = [k for k, v in sizes.items() if v < 1]
    if bad:
        parser.error(f"{bad} must be at least 1")
    try:
        if args.common_voice:
            n_clips = args.n_clips_per_lang or (10 if args.debug else 40)
            synthesise_common_voice(args.out, args.langs, n_clips, seed=args.seed, nj=args.nj)
        else:
            synthesise(args.out, args.langs, sizes, seed=args.seed, nj=args.nj,
                       release_layout=args.release_layout)
    except (ValueError, RuntimeError) as e:  # a refusal or an espeak-ng problem: no traceback
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
