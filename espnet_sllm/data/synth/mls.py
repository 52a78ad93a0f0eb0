"""Usage:
    python -m espnet_sllm.data.synth.mls --mls_out downloads/mls --cv_out downloads/cv4 \\
        --covost_out downloads/covost2 [--seed 0] [--nj 2]
    # either part alone: --mls_out DIR, or --cv_out DIR --covost_out DIR
    # then, from egs2/mls/asr1:
    MLS=downloads/mls ./local/data.sh
    # and from egs2/mls/st1:
    COMMONVOICE=downloads/cv4 COVOST2=downloads/covost2 ./local/data.sh

    from espnet_sllm.data.synth.mls import synthesise_mls, synthesise_covost
    synthesise_mls("/tmp/mls", seed=0, nj=2)
    synthesise_covost("/tmp/cv4", "/tmp/covost2", seed=0, nj=2)

Tiny debug copies of the corpora of egs2/mls (Ideal-LLM: Multilingual LibriSpeech for ASR,
CoVoST 2 over Common Voice 4 for speech translation), spoken by espeak-ng and written in the
layout of the real releases, so that the recipes' stage 1 (:mod:`espnet_sllm.data.corpora.mls`,
:mod:`espnet_sllm.data.corpora.covost2`, which uses
:mod:`espnet_sllm.data.corpora.common_voice`) and stage 2 (``format_data``) read them as they read
the real corpora.

MLS (``--mls_out`` is the ``$MLS`` root), for the eight languages of `MLS_LANGUAGES` (english
german dutch french spanish italian portuguese polish; espeak-ng voices en-us de nl fr es it pt
pl)::

    mls_<name>/metainfo.txt                        SPEAKER | GENDER | PARTITION | MINUTES |
                                                   BOOK ID | TITLE | CHAPTER (padded, header)
    mls_<name>/<split>/transcripts.txt             <spk>_<book>_<utt><TAB><lowercase text>
    mls_<name>/<split>/segments.txt                <handle><TAB><LibriVox url><TAB><start><TAB><end>
    mls_<name>/<split>/audio/<spk>/<book>/<handle>.flac      16 kHz, mono, 16-bit FLAC
    mls_<name>/train/limited_supervision/9hr/handles.txt     6 training handles
    mls_<name>/train/limited_supervision/1hr/<k>/handles.txt one handle each, k = 0..5

Per language: train 12 utterances (3 speakers, 4 each, one book per speaker), dev 3 and test 3
(one speaker each, disjoint from the others); every utterance is 1-3 s long, a whole number of
10 ms frames, and its segments.txt row spans exactly its length (``end - start`` = the FLAC
duration, times with two decimals), as the recipe's ``--max_hours`` counts hours from it.
Speaker, book and utterance numbers are drawn from the seed (unique within a language).

Common Voice 4 (``--cv_out``, ``$COMMONVOICE``) and CoVoST 2 (``--covost_out``, ``$COVOST2``),
for the pairs of :data:`espnet_sllm.data.corpora.covost2.PAIRS` (en_de de_en es_en fr_en
it_en)::

    <cv_out>/<src>/validated.tsv        client_id path sentence up_votes down_votes age gender
                                        accent (the columns of release 4)
    <cv_out>/<src>/clips/common_voice_<src>_<n>.mp3          48 kHz MP3
    <covost_out>/covost_v2.<src>_<tgt>.tsv                   path sentence translation
                                                             client_id split

Per pair 16 clips of its source language (3 speakers): split ``train`` 8, ``train_covost`` 2,
``dev`` 3, ``test`` 3 (the reader's train set is train + train_covost: 10).  Common Voice
sentences are capitalised and end with a full stop; the translation is the same sentence frame
with the same words in the target language (the vocabularies are parallel), so it is
target-language text (and, up to grammar, a translation).

Text: per language a small vocabulary (5 numbers, 5 animals, 5 foods, 4 places) in three frames
(see / eat / where: "i see three cats", "the dogs eat bread", "the birds are in the garden"); the
sentences of a language are shuffled by the seed and dealt out without repetition, so train, dev
and test sentences differ within a language.  Each speaker has its own espeak-ng variant,
pitch and speed.

Deterministic for a given ``--seed`` (every file has its own random stream, so ``--nj`` does not
change the output).  Like :mod:`espnet_sllm.data.synth.kespeech` (whose helpers this module
uses), a marker file in each output folder (``.mls_debug_complete``, ``.cv_debug_complete``,
``.covost_debug_complete``) records the configuration: a second run with the same configuration
does nothing, another one is an error; a folder holding other files and no marker is refused.
"""
import argparse
import hashlib
import itertools
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile

from espnet_sllm.data.corpora.covost2 import PAIRS, covost_tsv_name, split_pair
from espnet_sllm.data.corpora.mls import LANGUAGES as MLS_CODES
from espnet_sllm.data.synth import conversations as sc
from espnet_sllm.data.synth import kespeech as sk

logger = logging.getLogger(__name__)

SR = sc.SR
CV_SR = sc.CV_SR
FORMAT_VERSION = 1
MLS_MARKER = ".mls_debug_complete"
CV_MARKER = ".cv_debug_complete"
COVOST_MARKER = ".covost_debug_complete"
MIN_SEC, MAX_SEC = 1.0, 3.0  # length of an utterance
EDGE = (0.05, 0.2)  # silence before and after the speech (s)
FRAME = SR // 100  # utterances are whole 10 ms frames: segments.txt times have 2 decimals
# MLS: split -> utterances per speaker (one book per speaker).
MLS_PLAN: Dict[str, Tuple[int, ...]] = {"train": (4, 4, 4), "dev": (3,), "test": (3,)}
LIMITED_9HR = 6  # training handles in limited_supervision/9hr; 1hr/<k> gets one each
# CoVoST: split value of the table -> clips per pair; the clips' speakers: CV_SPEAKERS.
COVOST_PLAN: Tuple[Tuple[str, int], ...] = (("train", 8), ("train_covost", 2), ("dev", 3),
                                            ("test", 3))
CV_SPEAKERS = 3
CV_HEADER = ("client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender",
             "accent")
COVOST_HEADER = ("path", "sentence", "translation", "client_id", "split")
META_COLUMNS = (("SPEAKER", 10), ("GENDER", 12), ("PARTITION", 12), ("MINUTES", 12),
                ("BOOK ID", 12), ("TITLE", 32), ("CHAPTER", 31))


def _v(*pairs: Tuple[str, str]) -> List[Dict[str, str]]:
    """Vocabulary values with a plain form and a ``def`` form (with its article)."""
    return [{"": p, "def": d} for p, d in pairs]


# Parallel vocabularies: value i of a slot means the same thing in every language, and the
# frames (templates) have the same names, so a sentence renders in any language.
LANGUAGES: Dict[str, sc.Language] = {
    "en": sc.Language(
        name="English", joiner=" ",
        vocab={
            "number": sc._w("two", "three", "four", "five", "six"),
            "animal": _v(("cats", "the cats"), ("dogs", "the dogs"), ("birds", "the birds"),
                         ("horses", "the horses"), ("ducks", "the ducks")),
            "food": sc._w("fish", "bread", "cheese", "cake", "soup"),
            "place": sc._w("in the garden", "in the park", "in the house", "in the forest"),
        },
        templates={"see": "i see {number} {animal}", "eat": "{animal.def} eat {food}",
                   "where": "{animal.def} are {place}"},
        spoken={},
    ),
    "de": sc.Language(
        name="German", joiner=" ",
        vocab={
            "number": sc._w("zwei", "drei", "vier", "fünf", "sechs"),
            "animal": _v(("katzen", "die katzen"), ("hunde", "die hunde"),
                         ("vögel", "die vögel"), ("pferde", "die pferde"),
                         ("enten", "die enten")),
            "food": sc._w("fisch", "brot", "käse", "kuchen", "suppe"),
            "place": sc._w("im garten", "im park", "im haus", "im wald"),
        },
        templates={"see": "ich sehe {number} {animal}", "eat": "{animal.def} essen {food}",
                   "where": "{animal.def} sind {place}"},
        spoken={},
    ),
    "nl": sc.Language(
        name="Dutch", joiner=" ",
        vocab={
            "number": sc._w("twee", "drie", "vier", "vijf", "zes"),
            "animal": _v(("katten", "de katten"), ("honden", "de honden"),
                         ("vogels", "de vogels"), ("paarden", "de paarden"),
                         ("eenden", "de eenden")),
            "food": sc._w("vis", "brood", "kaas", "taart", "soep"),
            "place": sc._w("in de tuin", "in het park", "in het huis", "in het bos"),
        },
        templates={"see": "ik zie {number} {animal}", "eat": "{animal.def} eten {food}",
                   "where": "{animal.def} zijn {place}"},
        spoken={},
    ),
    "fr": sc.Language(
        name="French", joiner=" ",
        vocab={
            "number": sc._w("deux", "trois", "quatre", "cinq", "six"),
            "animal": _v(("chats", "les chats"), ("chiens", "les chiens"),
                         ("oiseaux", "les oiseaux"), ("chevaux", "les chevaux"),
                         ("canards", "les canards")),
            "food": sc._w("du poisson", "du pain", "du fromage", "du gâteau", "de la soupe"),
            "place": sc._w("dans le jardin", "dans le parc", "dans la maison",
                           "dans la forêt"),
        },
        templates={"see": "je vois {number} {animal}", "eat": "{animal.def} mangent {food}",
                   "where": "{animal.def} sont {place}"},
        spoken={},
    ),
    "es": sc.Language(
        name="Spanish", joiner=" ",
        vocab={
            "number": sc._w("dos", "tres", "cuatro", "cinco", "seis"),
            "animal": _v(("gatos", "los gatos"), ("perros", "los perros"),
                         ("pájaros", "los pájaros"), ("caballos", "los caballos"),
                         ("patos", "los patos")),
            "food": sc._w("pescado", "pan", "queso", "pastel", "sopa"),
            "place": sc._w("en el jardín", "en el parque", "en la casa", "en el bosque"),
        },
        templates={"see": "veo {number} {animal}", "eat": "{animal.def} comen {food}",
                   "where": "{animal.def} están {place}"},
        spoken={},
    ),
    "it": sc.Language(
        name="Italian", joiner=" ",
        vocab={
            "number": sc._w("due", "tre", "quattro", "cinque", "sei"),
            "animal": _v(("gatti", "i gatti"), ("cani", "i cani"), ("uccelli", "gli uccelli"),
                         ("cavalli", "i cavalli"), ("anatre", "le anatre")),
            "food": sc._w("pesce", "pane", "formaggio", "torta", "zuppa"),
            "place": sc._w("nel giardino", "nel parco", "nella casa", "nel bosco"),
        },
        templates={"see": "vedo {number} {animal}", "eat": "{animal.def} mangiano {food}",
                   "where": "{animal.def} sono {place}"},
        spoken={},
    ),
    "pt": sc.Language(
        name="Portuguese", joiner=" ",
        vocab={
            "number": sc._w("dois", "três", "quatro", "cinco", "seis"),
            "animal": _v(("gatos", "os gatos"), ("cães", "os cães"),
                         ("pássaros", "os pássaros"), ("cavalos", "os cavalos"),
                         ("patos", "os patos")),
            "food": sc._w("peixe", "pão", "queijo", "bolo", "sopa"),
            "place": sc._w("no jardim", "no parque", "na casa", "na floresta"),
        },
        templates={"see": "eu vejo {number} {animal}", "eat": "{animal.def} comem {food}",
                   "where": "{animal.def} estão {place}"},
        spoken={},
    ),
    "pl": sc.Language(
        name="Polish", joiner=" ",
        vocab={
            "number": sc._w("dwa", "trzy", "cztery", "pięć", "sześć"),
            "animal": _v(("koty", "koty"), ("psy", "psy"), ("ptaki", "ptaki"),
                         ("konie", "konie"), ("kaczki", "kaczki")),
            "food": sc._w("rybę", "chleb", "ser", "ciasto", "zupę"),
            "place": sc._w("w ogrodzie", "w parku", "w domu", "w lesie"),
        },
        templates={"see": "widzę {number} {animal}", "eat": "{animal.def} jedzą {food}",
                   "where": "{animal.def} są {place}"},
        spoken={},
    ),
}
# ISO code -> espeak-ng voice.
VOICES: Dict[str, str] = {"en": "en-us", "de": "de", "nl": "nl", "fr": "fr", "es": "es",
                          "it": "it", "pt": "pt", "pl": "pl"}
# MLS release names (mls_<name>) -> ISO code, from the reader.
MLS_LANGUAGES: Dict[str, str] = dict(MLS_CODES)
CV_LANGS: Tuple[str, ...] = tuple(dict.fromkeys(split_pair(p)[0] for p in PAIRS))


# ----------------------------------------------------------------------------- sentences
def all_sentences(code: str) -> List[Tuple[str, Dict[str, int]]]:
    """Every (frame, slot values) of the sentence space, in a fixed order (same for every
    language: the vocabularies are parallel)."""
    lang = LANGUAGES[code]
    out = []
    for tpl in sorted(lang.templates):
        slots = sc.template_slots(lang, tpl)
        for idx in itertools.product(*(range(len(lang.vocab[s])) for s in slots)):
            out.append((tpl, dict(zip(slots, idx))))
    return out


def render(code: str, tpl: str, values: Dict[str, int]) -> sc.Sentence:
    return sc.render(LANGUAGES[code], tpl, values)


def dealt_sentences(code: str, n: int, key: Sequence[int]) -> List[Tuple[str, Dict[str, int]]]:
    """``n`` distinct sentences of language ``code`` in a seeded random order."""
    space = all_sentences(code)
    if n > len(space):
        raise ValueError(f"{code}: {n} sentences asked, the space has {len(space)}")
    order = np.random.default_rng(list(key)).permutation(len(space))
    return [space[int(i)] for i in order[:n]]


def cv_sentence(text: str) -> str:
    """Common Voice style: capitalised, with a full stop."""
    return text[:1].upper() + text[1:] + "."


def vocabulary_words(code: str) -> List[str]:
    lang = LANGUAGES[code]
    return sorted({t for tpl in lang.templates.values() for t in tpl.split()
                   if not sc._SLOT_RE.match(t)}
                  | {f for vals in lang.vocab.values() for forms in vals
                     for f in forms.values()})


# ----------------------------------------------------------------------------- audio
def speaker_voice(code: str, key: Sequence[int]) -> sk.Voice:
    rng = np.random.default_rng(list(key))
    variant = sc.VARIANTS[int(rng.integers(len(sc.VARIANTS)))]
    return sk.Voice(f"{VOICES[code]}+{variant}", int(rng.integers(30, 71)),
                    int(rng.integers(145, 176)))


def utterance_audio(sent: sc.Sentence, voice: sk.Voice, key: Sequence[int]) -> np.ndarray:
    """16 kHz speech between ``MIN_SEC`` and ``MAX_SEC`` s, a whole number of 10 ms frames,
    with silent edges and a faint noise floor."""
    rng = np.random.default_rng(list(key))
    budget = MAX_SEC - 2 * EDGE[1] - 0.01
    x = sk.speak(sent, voice, budget)
    x = x * (rng.uniform(0.4, 0.7) / max(1e-6, float(np.abs(x).max())))
    before = int(rng.uniform(*EDGE) * SR)
    after = int(rng.uniform(*EDGE) * SR)
    n = before + len(x) + after
    n = max(n, int(MIN_SEC * SR))
    n = -(-n // FRAME) * FRAME
    y = np.zeros(n, np.float32)
    y[before:before + len(x)] = x
    y = y + rng.normal(0, sc.NOISE_STD, n).astype(np.float32)
    return np.clip(y, -1.0, 1.0)


# ----------------------------------------------------------------------------- MLS
@dataclass
class MlsUtt:
    out: str  # the language folder mls_<name>
    code: str
    split: str
    spk: int
    book: int
    utt: int
    tpl: str
    values: Dict[str, int]
    voice: sk.Voice
    key: Tuple[int, ...]

    @property
    def handle(self) -> str:
        return f"{self.spk}_{self.book}_{self.utt:06d}"

    @property
    def rel(self) -> str:
        return f"{self.split}/audio/{self.spk}/{self.book}/{self.handle}.flac"

    @property
    def text(self) -> str:
        return render(self.code, self.tpl, self.values).text


def _unique_numbers(rng: np.random.Generator, n: int, lo: int, hi: int) -> List[int]:
    return [int(v) for v in rng.choice(np.arange(lo, hi), size=n, replace=False)]


def mls_plan(code: str, out: str, seed: int) -> List[MlsUtt]:
    """Every utterance of one language's debug MLS, in plan order (deterministic)."""
    li = list(LANGUAGES).index(code)
    rng = np.random.default_rng([seed, 60, li])
    n_spk = sum(len(v) for v in MLS_PLAN.values())
    speakers = _unique_numbers(rng, n_spk, 10, 13000)
    books = _unique_numbers(rng, n_spk, 10, 15000)
    n_utts = sum(sum(v) for v in MLS_PLAN.values())
    sentences = dealt_sentences(code, n_utts, [seed, 61, li])
    utts: List[MlsUtt] = []
    k = 0
    for split, per_spk in MLS_PLAN.items():
        for n in per_spk:
            s = len({u.spk for u in utts})
            voice = speaker_voice(code, [seed, 62, li, s])
            number = int(rng.integers(0, 2000))
            for _ in range(n):
                tpl, values = sentences[k]
                utts.append(MlsUtt(out, code, split, speakers[s], books[s], number, tpl,
                                   values, voice, (seed, 63, li, k)))
                number += int(rng.integers(1, 9))
                k += 1
    return utts


def synth_mls_utt(u: MlsUtt) -> int:
    """Write one FLAC file; returns its length in samples."""
    x = utterance_audio(render(u.code, u.tpl, u.values), u.voice, u.key)
    path = os.path.join(u.out, u.rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    soundfile.write(path, x, SR, format="FLAC", subtype="PCM_16")
    return len(x)


def _meta_line(values: Sequence[str]) -> str:
    return "|".join(f"{v:^{w}}" for v, (_, w) in zip(values, META_COLUMNS))


def write_mls_tables(lang_dir: str, name: str, utts: Sequence[MlsUtt],
                     samples: Sequence[int], seed: int) -> None:
    """transcripts.txt, segments.txt, metainfo.txt and the limited-supervision handles."""
    rng = np.random.default_rng([seed, 64, list(LANGUAGES).index(utts[0].code)])
    meta = [_meta_line([c for c, _ in META_COLUMNS])]
    by_split: Dict[str, List[Tuple[MlsUtt, int]]] = {}
    for u, n in zip(utts, samples):
        by_split.setdefault(u.split, []).append((u, n))
    for split, rows in by_split.items():
        rows = sorted(rows, key=lambda r: r[0].handle)
        d = os.path.join(lang_dir, split)
        with open(os.path.join(d, "transcripts.txt"), "w", encoding="utf-8") as f:
            f.writelines(f"{u.handle}\t{u.text}\n" for u, _ in rows)
        seg_lines = []
        pos: Dict[int, int] = {}  # book -> position in its LibriVox recording (10 ms frames)
        for u, n in rows:
            start = pos.get(u.book, int(rng.integers(100, 3000)))
            end = start + n // FRAME
            pos[u.book] = end + int(rng.integers(20, 150))
            url = (f"http://www.archive.org/download/debug_book_{u.book}_librivox/"
                   f"debug_{u.book:05d}_{u.spk}_64kb.mp3")
            seg_lines.append(f"{u.handle}\t{url}\t{start / 100:.2f}\t{end / 100:.2f}\n")
        with open(os.path.join(d, "segments.txt"), "w", encoding="utf-8") as f:
            f.writelines(seg_lines)
        for spk in sorted({u.spk for u, _ in rows}):
            mine = [(u, n) for u, n in rows if u.spk == spk]
            gender = "F" if mine[0][0].voice.voice.split("+")[1].startswith("f") else "M"
            minutes = sum(n for _, n in mine) / SR / 60
            meta.append(_meta_line([str(spk), gender, split, f"{minutes:.2f}",
                                    str(mine[0][0].book), f"Debug book {mine[0][0].book}",
                                    f"Chapter {len(mine)}"]))
    with open(os.path.join(lang_dir, "metainfo.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(meta) + "\n")
    train = sorted(u.handle for u in utts if u.split == "train")
    order = [train[int(i)] for i in rng.permutation(len(train))]
    base = os.path.join(lang_dir, "train", "limited_supervision")
    folds = {"9hr": order[:LIMITED_9HR]}
    folds.update({f"1hr/{k}": [order[LIMITED_9HR + k]] for k in range(6)})
    for sub, handles in folds.items():
        os.makedirs(os.path.join(base, sub), exist_ok=True)
        with open(os.path.join(base, sub, "handles.txt"), "w", encoding="utf-8") as f:
            f.writelines(f"{h}\n" for h in sorted(handles))


def check_voices(codes: Sequence[str], what: str) -> None:
    for code in codes:
        sc.check_voice(VOICES[code], vocabulary_words(code), f"{what} ({code})")


def synthesise_mls(out: str, seed: int = 0, nj: int = 1,
                   langs: Sequence[str] = tuple(MLS_LANGUAGES)) -> Dict:
    """Write the debug MLS (one ``mls_<name>`` folder per language of ``langs``, release
    names) under ``out``; returns the summary stored in its marker file."""
    unknown = [x for x in langs if x not in MLS_LANGUAGES]
    if unknown:
        raise ValueError(f"unknown MLS language(s) {unknown}; valid: {list(MLS_LANGUAGES)}")
    config = dict(version=FORMAT_VERSION, kind="mls", seed=seed, langs=list(langs))
    owned = [f"mls_{x}" for x in langs]
    done = sk._begin(out, MLS_MARKER, owned, config, "MLS")
    if done is not None:
        return done
    codes = [MLS_LANGUAGES[x] for x in langs]
    check_voices(codes, "the MLS debug corpus")
    t0 = time.time()
    plans = {name: mls_plan(MLS_LANGUAGES[name], os.path.join(out, f"mls_{name}"), seed)
             for name in langs}
    jobs = [u for name in langs for u in plans[name]]
    samples = sk._map(synth_mls_utt, jobs, nj)
    counts: Dict[str, Dict] = {}
    i = 0
    for name in langs:
        utts = plans[name]
        n = samples[i:i + len(utts)]
        i += len(utts)
        write_mls_tables(os.path.join(out, f"mls_{name}"), name, utts, n, seed)
        counts[name] = {split: dict(utterances=sum(u.split == split for u in utts),
                                    speakers=len({u.spk for u in utts if u.split == split}),
                                    seconds=round(sum(k for u, k in zip(utts, n)
                                                      if u.split == split) / SR, 2))
                        for split in MLS_PLAN}
    summary = dict(config=config, counts=counts, seconds=round(time.time() - t0, 1))
    sk._finish(out, MLS_MARKER, summary)
    logger.info("%s: MLS debug corpus (%s) synthesised in %.1f s", out, " ".join(langs),
                time.time() - t0)
    return summary


# ----------------------------------------------------------------------------- CoVoST 2
@dataclass
class CvClip:
    out: str  # the Common Voice root
    src: str
    tgt: str
    index: int  # clip number within the pair (1-based in the file name)
    split: str
    client_id: str
    tpl: str
    values: Dict[str, int]
    voice: sk.Voice
    key: Tuple[int, ...]

    @property
    def path(self) -> str:
        return f"common_voice_{self.src}_{19000000 + self.index}.mp3"

    @property
    def sentence(self) -> str:
        return cv_sentence(render(self.src, self.tpl, self.values).text)

    @property
    def translation(self) -> str:
        return cv_sentence(render(self.tgt, self.tpl, self.values).text)


def covost_plan(cv_out: str, seed: int, pairs: Sequence[str] = PAIRS) -> List[CvClip]:
    clips: List[CvClip] = []
    for p, pair in enumerate(pairs):
        src, tgt = split_pair(pair)
        for code in (src, tgt):
            if code not in LANGUAGES:
                raise ValueError(f"pair {pair}: no vocabulary for {code!r}")
        n = sum(k for _, k in COVOST_PLAN)
        sentences = dealt_sentences(src, n, [seed, 70, p])
        speakers = [(hashlib.sha512(f"debug-cv-{seed}-{pair}-{s}".encode()).hexdigest(),
                     speaker_voice(src, [seed, 71, p, s])) for s in range(CV_SPEAKERS)]
        rng = np.random.default_rng([seed, 72, p])
        k = 0
        for split, count in COVOST_PLAN:
            for _ in range(count):
                client, voice = speakers[int(rng.integers(CV_SPEAKERS))]
                tpl, values = sentences[k]
                clips.append(CvClip(cv_out, src, tgt, k + 1, split, client, tpl, values, voice,
                                    (seed, 73, p, k)))
                k += 1
    return clips


def synth_cv_clip(c: CvClip) -> float:
    """Write one 48 kHz MP3 clip; returns its length in seconds."""
    from scipy.signal import resample_poly

    x = utterance_audio(render(c.src, c.tpl, c.values), c.voice, c.key)
    y = np.clip(resample_poly(x, CV_SR // SR, 1), -1.0, 1.0).astype(np.float32)
    path = os.path.join(c.out, c.src, "clips", c.path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    soundfile.write(path, y, CV_SR, format="MP3")
    return len(x) / SR


def synthesise_covost(cv_out: str, covost_out: str, seed: int = 0, nj: int = 1,
                      pairs: Sequence[str] = PAIRS) -> Dict:
    """Write the debug Common Voice 4 (``cv_out``) and CoVoST 2 tables (``covost_out``) of
    ``pairs``; returns the CoVoST summary stored in its marker file."""
    if os.path.abspath(cv_out) == os.path.abspath(covost_out):
        raise ValueError("the Common Voice and CoVoST 2 folders must differ")
    config = dict(version=FORMAT_VERSION, kind="covost2", seed=seed, pairs=list(pairs))
    srcs = list(dict.fromkeys(split_pair(p)[0] for p in pairs))
    if len(srcs) != len(pairs):
        raise ValueError(f"each pair needs its own source language (clips are per pair): "
                         f"{list(pairs)}")
    done_cv = sk._begin(cv_out, CV_MARKER, srcs, config, "Common Voice")
    done_cov = sk._begin(covost_out, COVOST_MARKER, [covost_tsv_name(p) for p in pairs],
                         config, "CoVoST 2")
    if done_cv is not None and done_cov is not None:
        return done_cov
    for folder, marker, done in ((cv_out, CV_MARKER, done_cv),
                                 (covost_out, COVOST_MARKER, done_cov)):
        if done is not None:  # the other half is missing: the two are written together
            open(os.path.join(folder, sk.IN_PROGRESS), "w").close()
            os.remove(os.path.join(folder, marker))
            sk._begin(folder, marker, srcs if folder == cv_out else
                      [covost_tsv_name(p) for p in pairs], config, "debug")
    check_voices(srcs, "the Common Voice debug corpus")
    t0 = time.time()
    clips = covost_plan(cv_out, seed, pairs)
    seconds = sk._map(synth_cv_clip, clips, nj)
    ages = ("twenties", "thirties", "fourties", "")
    for src in srcs:
        rows = [c for c in clips if c.src == src]
        with open(os.path.join(cv_out, src, "validated.tsv"), "w", encoding="utf-8") as f:
            f.write("\t".join(CV_HEADER) + "\n")
            for c in rows:
                gender = "female" if c.voice.voice.split("+")[1].startswith("f") else "male"
                f.write("\t".join([c.client_id, c.path, c.sentence, "2", "0",
                                   ages[c.index % len(ages)], gender, ""]) + "\n")
    counts: Dict[str, Dict] = {}
    for pair in pairs:
        src, tgt = split_pair(pair)
        rows = [c for c in clips if c.src == src]
        with open(os.path.join(covost_out, covost_tsv_name(pair)), "w",
                  encoding="utf-8") as f:
            f.write("\t".join(COVOST_HEADER) + "\n")
            for c in rows:
                f.write("\t".join([c.path, c.sentence, c.translation, c.client_id, c.split])
                        + "\n")
        counts[pair] = {split: n for split, n in COVOST_PLAN}
        counts[pair]["seconds"] = round(sum(s for c, s in zip(clips, seconds)
                                            if c.src == src), 2)
    summary = dict(config=config, counts=counts, seconds=round(time.time() - t0, 1))
    sk._finish(cv_out, CV_MARKER, dict(summary, clips={s: sum(c.src == s for c in clips)
                                                       for s in srcs}))
    sk._finish(covost_out, COVOST_MARKER, summary)
    logger.info("%s, %s: Common Voice / CoVoST 2 debug corpora (%s) synthesised in %.1f s",
                cv_out, covost_out, " ".join(pairs), time.time() - t0)
    return summary


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Synthesise debug copies of MLS, Common Voice 4 and CoVoST 2 (espeak-ng) in "
                    "the layout of the real releases, for egs2/mls/asr1 and egs2/mls/st1.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("--mls_out", default=None,
                        help="the MLS root to write ($MLS; omitted: no MLS)")
    parser.add_argument("--cv_out", default=None,
                        help="the Common Voice root to write ($COMMONVOICE; with --covost_out)")
    parser.add_argument("--covost_out", default=None,
                        help="the CoVoST 2 folder to write ($COVOST2; with --cv_out)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nj", type=int, default=2, help="parallel synthesis processes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    if (args.cv_out is None) != (args.covost_out is None):
        parser.error("--cv_out and --covost_out go together")
    if args.mls_out is None and args.cv_out is None:
        parser.error("nothing to write: give --mls_out and/or --cv_out with --covost_out")
    outs = [os.path.abspath(p) for p in (args.mls_out, args.cv_out, args.covost_out)
            if p is not None]
    if len(set(outs)) != len(outs):
        parser.error("--mls_out, --cv_out and --covost_out must be different folders")
    try:
        if args.mls_out is not None:
            synthesise_mls(args.mls_out, seed=args.seed, nj=args.nj)
        if args.cv_out is not None:
            synthesise_covost(args.cv_out, args.covost_out, seed=args.seed, nj=args.nj)
    except (ValueError, RuntimeError) as e:  # a refusal or an espeak-ng problem: no traceback
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
