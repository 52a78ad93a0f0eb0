"""Usage:
    python -m espnet_sllm.data.synth.kespeech --kespeech_out downloads/KeSpeech \\
        --wenetspeech_out downloads/WenetSpeech [--seed 0] [--nj 2]
    # then, from egs2/kespeech/asr1:
    KESPEECH=downloads/KeSpeech WENETSPEECH=downloads/WenetSpeech ./local/data.sh

    from espnet_sllm.data.synth.kespeech import synthesise_kespeech, synthesise_wenetspeech
    synthesise_kespeech("/tmp/KeSpeech", seed=0, nj=2)
    synthesise_wenetspeech("/tmp/WenetSpeech", seed=0, nj=2)

Tiny debug copies of KeSpeech and WenetSpeech (the corpora of egs2/kespeech/asr1), spoken by
espeak-ng's Mandarin voice and written in the layout of the real releases, so that the recipe's
stage 1 (``local/data.sh``: :mod:`espnet_sllm.data.corpora.kespeech` and
:mod:`espnet_sllm.data.corpora.wenetspeech`) and stage 2 (``format_data``) read them as they read
the real corpora.

KeSpeech (``--kespeech_out`` is the ``KeSpeech/`` folder itself)::

    Tasks/ASR/<part>/{wav.scp,text,utt2spk,utt2subdialect}   <part>: `KS_PARTS`
    Audio/<spk>/phase{1,2}/<utt>.wav                         16 kHz, mono, 16-bit PCM

``wav.scp`` paths are relative to ``KeSpeech/`` (``Audio/1000001/phase1/1000001_63740949.wav``),
ids are ``<spk>_<8 digits>`` with 7-digit speaker ids, every file is sorted by id.  Four
subdialects (`SUBDIALECT_VOICES`: Mandarin, Southwestern, Northeastern, Zhongyuan), each a
family of voices of its own (espeak-ng variant, pitch and speed ranges that do not overlap
between subdialects), so that there is something to tell apart.  Speakers are disjoint between
train (8: two per subdialect, each 5 utterances in phase1 and 5 in phase2), dev (4) and test (4,
one per subdialect).  Kept utterances: train_phase1 40, train_phase2 40, dev_phase1 6,
dev_phase2 6, test 18 (5 / 5 / 4 / 4 per subdialect); each 1 to 4 s long.  A few rows are odd
like the release's, all handled by the reader in its default (non-strict) mode: a
``<SPOKEN_NOISE>`` tag at the start (train_phase1), in the middle (test) and at the end
(dev_phase2) of a text, over a noise burst in the audio at that place; texts with blanks between
words (train_phase2, dev_phase1); and one row of train_phase1 whose text is only
``<SPOKEN_NOISE>`` (dropped and counted by the reader as ``only_noise``).

WenetSpeech (``--wenetspeech_out`` is the release folder)::

    WenetSpeech.json      {"dataset", "language", "version", "description", "url", "audios"}
    audio/<split>/<source>/B00000/<aid>.opus                 Ogg/Opus long recordings

with the real schema: each audio has ``aid``, ``duration``, ``md5``, ``path`` (relative to the
JSON's folder), ``source``, ``tags``, ``url`` and ``segments`` (``sid`` = ``<aid>_S<5 digits>``,
``begin_time``, ``end_time`` on a 10 ms grid, ``text``, ``confidence``, ``subsets``).  Two
recordings per test subset (`WS_RECORDINGS`): TEST_NET (one voice each, 3 and 4 segments) and
TEST_MEETING (two alternating voices, reverberant and noisier; 4 and 3 segments), so 7 segments
per subset; plus one training recording (subsets S, M, L, W; not read by the recipe).  The Opus
files are written by soundfile (libsndfile >= 1.0.29) at 16 kHz, except one meeting recording
at 48 kHz, so that stage 2's resampling is exercised too: libsndfile decodes an Ogg/Opus file at
the rate its header records (16 or 48 kHz here), time-aligned with the input and with its
exact length.  The folder names ``test_net`` / ``test_meeting`` below ``audio/`` and the
``M`` prefix of the meeting aids are illustrative: the reader takes the paths from the JSON.

Text: Chinese sentences of five frames over a small vocabulary (5 numbers, 6 colours, 8
animals, 6 foods, 5 places; `LANGUAGE`), e.g. 红色的兔子喜欢吃蛋糕, 花园里有三只小猫.  As in
:mod:`espnet_sllm.data.synth.conversations` (whose sentence and synthesis helpers this module
uses), each possible sentence belongs to train, dev ("valid") or test by a hash of its text
(75 / 10 / 15 %), so dev and test sentences are unseen combinations of training words; no
sentence is used twice in a split.  The voice is ``cmn-latn-pinyin`` (`VOICE`), espeak-ng's
Mandarin (``cmn``) voice that reads the romanisation of its dictionary as pinyin: the plain
``cmn`` voice of espeak-ng 1.51 (Debian) reads every Chinese character missing from its small
dictionary as English-spelled pinyin with tone digits (看 -> "kan four"), which the check
(`conversations.check_voice`) refuses.

Deterministic for a given ``--seed`` (every utterance and recording has its own random stream,
so ``--nj`` does not change the output).  A marker file in each output folder
(``.kespeech_debug_complete``, ``.wenetspeech_debug_complete``) records the configuration: a
second run with the same configuration does nothing; with another one it is an error.  A folder
that holds other files and no marker is refused (it may be a real corpus); an interrupted run
(marker ``.debug_synthesis_in_progress``) is redone.
"""
import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from multiprocessing import Pool
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile

from espnet_sllm.data.synth import conversations as sc

logger = logging.getLogger(__name__)

SR = sc.SR
VOICE = "cmn-latn-pinyin"
FORMAT_VERSION = 1
KS_MARKER = ".kespeech_debug_complete"
WS_MARKER = ".wenetspeech_debug_complete"
IN_PROGRESS = ".debug_synthesis_in_progress"
KS_OWNED = ("Tasks", "Audio")  # what synthesise_kespeech writes (and removes when redoing)
WS_OWNED = ("WenetSpeech.json", "audio")
KS_PARTS = ("train_phase1", "train_phase2", "dev_phase1", "dev_phase2", "test")
NOISE_TAG = "<SPOKEN_NOISE>"
MIN_SEC, MAX_SEC = 1.0, 4.0  # length of a KeSpeech utterance
EDGE = (0.15, 0.3)  # silence before and after a KeSpeech utterance (s)
PAUSE = (0.1, 0.2)  # silence around a noise burst (s)
WS_GAP = (0.4, 1.0)  # silence between the segments of a WenetSpeech recording (s)
SPLIT_KEY = "Chinese"  # namespace of the sentence partition (conversations.split_of)

LANGUAGE = sc.Language(
    name="Chinese", joiner="",
    vocab={
        "number": sc._w("两", "三", "四", "五", "六"),
        "colour": sc._w("红色", "蓝色", "绿色", "黑色", "白色", "黄色"),
        "animal": sc._w("小猫", "小狗", "小鸟", "兔子", "鸭子", "老鼠", "山羊", "猴子"),
        "food": sc._w("鱼", "米饭", "面包", "蛋糕", "苹果", "面条"),
        "place": sc._w("花园", "公园", "厨房", "房子", "森林"),
    },
    templates={
        "see": "我 看见 一只 {colour} 的 {animal}",
        "likes": "{colour} 的 {animal} 喜欢 吃 {food}",
        "where": "{animal} 在 {place} 里",
        "count": "{place} 里 有 {number} 只 {animal}",
        "eats": "{animal} 在 {place} 吃 {food}",
    },
    spoken={},
)


@dataclass(frozen=True)
class DialectVoice:
    """The voices of one subdialect: espeak-ng variants, pitch and speed (words per minute)
    ranges, disjoint between subdialects."""

    variants: Tuple[str, ...]
    pitch: Tuple[int, int]
    speed: Tuple[int, int]


SUBDIALECT_VOICES: Dict[str, DialectVoice] = {
    "Mandarin": DialectVoice(("m1", "f1"), (45, 55), (160, 170)),
    "Southwestern": DialectVoice(("m3", "f3"), (70, 80), (145, 155)),
    "Northeastern": DialectVoice(("m7", "f5"), (25, 35), (180, 190)),
    "Zhongyuan": DialectVoice(("m2", "f4"), (57, 65), (130, 140)),
}
SUBDIALECT_ORDER = tuple(SUBDIALECT_VOICES)


@dataclass(frozen=True)
class Voice:
    voice: str  # espeak-ng voice with its variant
    pitch: int
    speed: int


def dialect_voice(subdialect: str, key: Sequence[int]) -> Voice:
    """A speaker's voice within its subdialect's family, from the random stream ``key``."""
    d = SUBDIALECT_VOICES[subdialect]
    rng = np.random.default_rng(list(key))
    return Voice(f"{VOICE}+{d.variants[int(rng.integers(len(d.variants)))]}",
                 int(rng.integers(d.pitch[0], d.pitch[1] + 1)),
                 int(rng.integers(d.speed[0], d.speed[1] + 1)))


# ----------------------------------------------------------------------------- sentences
def vocabulary_words() -> List[str]:
    return sorted({t for tpl in LANGUAGE.templates.values() for t in tpl.split()
                   if not sc._SLOT_RE.match(t)}
                  | {f for vals in LANGUAGE.vocab.values() for forms in vals
                     for f in forms.values()})


class SentencePool:
    """Draws sentences of one split (train / valid / test of `conversations.split_of`), never
    the same one twice."""

    def __init__(self, split: str, key: Sequence[int]):
        self.split = split
        self.rng = np.random.default_rng(list(key))
        self.used: set = set()

    def draw(self) -> sc.Sentence:
        templates = sorted(LANGUAGE.templates)
        for _ in range(100000):
            tpl = templates[int(self.rng.integers(len(templates)))]
            values = {s: int(self.rng.integers(len(LANGUAGE.vocab[s])))
                      for s in sc.template_slots(LANGUAGE, tpl)}
            sent = sc.render(LANGUAGE, tpl, values)
            if sc.split_of(SPLIT_KEY, sent.text) == self.split and sent.text not in self.used:
                self.used.add(sent.text)
                return sent
        raise RuntimeError(f"no unused {self.split} sentence left")


def _part_sentence(sent: sc.Sentence, tokens: Sequence[str]) -> sc.Sentence:
    return sc.Sentence(sent.template, sent.values, "".join(tokens), " ".join(tokens), ())


# ----------------------------------------------------------------------------- audio
def noise_burst(rng: np.random.Generator) -> np.ndarray:
    """A breath- or cough-like burst (what the release marks <SPOKEN_NOISE>): low-passed noise
    under a Hann envelope, 0.25-0.4 s."""
    n = int(rng.uniform(0.25, 0.4) * SR)
    x = np.convolve(rng.normal(0, 1, n + 15), np.ones(16) / 16, mode="valid")[:n]
    x = x * np.hanning(n) * (rng.uniform(0.05, 0.12) / max(1e-6, float(np.abs(x).max())))
    return x.astype(np.float32)


def speak(sent: sc.Sentence, voice: Voice, max_sec: float) -> np.ndarray:
    """``sent`` read by ``voice`` (16 kHz, trimmed, checked by `conversations.synth_turn`); read
    faster, 15 words per minute at a time, while longer than ``max_sec``."""
    speed = voice.speed
    for _ in range(6):
        x = sc.synth_turn(sent, voice.voice, voice.pitch, speed)
        if len(x) <= max_sec * SR:
            return x
        speed += 15
    raise RuntimeError(f"{voice.voice}: {sent.text!r} stays longer than {max_sec} s")


# ----------------------------------------------------------------------------- KeSpeech
@dataclass
class KsUtt:
    part: str
    uttid: str
    spk: str
    subdialect: str
    phase: str
    style: str  # plain | spaces | noise_start | noise_mid | noise_end | only_noise
    sentence: Optional[sc.Sentence]
    voice: Voice
    key: Tuple[int, ...]  # random stream of the audio
    out: str = ""

    @property
    def wav(self) -> str:
        return f"Audio/{self.spk}/{self.phase}/{self.uttid}.wav"

    @property
    def text(self) -> str:
        if self.style == "only_noise":
            return NOISE_TAG
        words = self.sentence.spoken.split()
        if self.style == "spaces":
            return " ".join(words)
        if self.style == "noise_start":
            return NOISE_TAG + self.sentence.text
        if self.style == "noise_end":
            return self.sentence.text + NOISE_TAG
        if self.style == "noise_mid":
            k = len(words) // 2
            return "".join(words[:k]) + NOISE_TAG + "".join(words[k:])
        return self.sentence.text


# (part, [(speaker index, utterances)]); speakers 0-7 train, 8-11 dev, 12-15 test; the
# subdialect of speaker i is SUBDIALECT_ORDER[i % 4].
KS_PLAN: Tuple[Tuple[str, Tuple[Tuple[int, int], ...]], ...] = (
    ("train_phase1", tuple((i, 5) for i in range(8))),
    ("train_phase2", tuple((i, 5) for i in range(8))),
    ("dev_phase1", ((8, 2), (9, 1), (10, 2), (11, 1))),
    ("dev_phase2", ((8, 1), (9, 2), (10, 1), (11, 2))),
    ("test", ((12, 5), (13, 5), (14, 4), (15, 4))),
)
# Odd rows: (part, row index among the part's utterances in plan order, style); only_noise is
# an extra row of its speaker (the reader drops it).
KS_ODD = {("train_phase1", 5): "noise_start", ("train_phase2", 12): "spaces",
          ("dev_phase1", 1): "spaces", ("dev_phase2", 4): "noise_end",
          ("test", 7): "noise_mid"}
KS_ONLY_NOISE = ("train_phase1", 2)  # (part, speaker index)
SPK_BASE = 1000001


def _split_of_part(part: str) -> str:
    return {"train": "train", "dev": "valid", "test": "test"}[part.split("_")[0]]


def kespeech_plan(seed: int) -> List[KsUtt]:
    """Every row of the KeSpeech debug corpus, in plan order (deterministic for ``seed``)."""
    pools = {s: SentencePool(s, [seed, 16, i]) for i, s in enumerate(sc.SPLITS)}
    numbers: Dict[int, set] = {}
    id_rngs: Dict[int, np.random.Generator] = {}

    def new_id(i: int) -> str:
        rng = id_rngs.setdefault(i, np.random.default_rng([seed, 17, i]))
        seen = numbers.setdefault(i, set())
        while True:
            n = int(rng.integers(10 ** 7, 10 ** 8))
            if n not in seen:
                seen.add(n)
                return f"{SPK_BASE + i}_{n}"

    utts = []
    for p, (part, speakers) in enumerate(KS_PLAN):
        row = 0
        for i, n_utts in speakers:
            sub = SUBDIALECT_ORDER[i % len(SUBDIALECT_ORDER)]
            voice = dialect_voice(sub, [seed, 15, i])
            extra = ["only_noise"] if KS_ONLY_NOISE == (part, i) else []
            for j in range(n_utts + len(extra)):
                style = extra[0] if j == n_utts else KS_ODD.get((part, row), "plain")
                # train and dev parts keep each phase's folder; test mixes the two
                phase = ("phase2" if part.endswith("phase2") else "phase1") if part != "test" \
                    else f"phase{j % 2 + 1}"
                sent = None if style == "only_noise" else pools[_split_of_part(part)].draw()
                utts.append(KsUtt(part, new_id(i), str(SPK_BASE + i), sub, phase, style, sent,
                                  voice, (seed, 14, p, j, i)))
                if style != "only_noise":
                    row += 1
    return utts


def synth_ks_utt(u: KsUtt) -> float:
    """Write one KeSpeech utterance's WAV; returns its length in seconds."""
    rng = np.random.default_rng(list(u.key))
    silence = lambda lo_hi: np.zeros(int(rng.uniform(*lo_hi) * SR), np.float32)  # noqa: E731
    budget = MAX_SEC - 2 * EDGE[1]
    if u.style == "only_noise":
        pieces = [noise_burst(rng)]
    else:
        gain = rng.uniform(0.4, 0.7)
        norm = lambda x: x * (gain / max(1e-6, float(np.abs(x).max())))  # noqa: E731
        if u.style in ("noise_start", "noise_end"):
            burst = noise_burst(rng)
            speech = norm(speak(u.sentence, u.voice, budget - 0.6))
            pieces = [burst, silence(PAUSE), speech] if u.style == "noise_start" \
                else [speech, silence(PAUSE), burst]
        elif u.style == "noise_mid":
            words = u.sentence.spoken.split()
            k = len(words) // 2
            first = norm(speak(_part_sentence(u.sentence, words[:k]), u.voice, budget / 2 - 0.3))
            second = norm(speak(_part_sentence(u.sentence, words[k:]), u.voice,
                                budget / 2 - 0.3))
            pieces = [first, silence(PAUSE), noise_burst(rng), silence(PAUSE), second]
        else:
            pieces = [norm(speak(u.sentence, u.voice, budget))]
    body = np.concatenate(pieces)
    before, after = silence(EDGE), silence(EDGE)
    short = int(MIN_SEC * SR) - (len(before) + len(body) + len(after))
    if short > 0:  # pad a short utterance to MIN_SEC
        after = np.zeros(len(after) + short, np.float32)
    x = np.concatenate([before, body, after])
    x = np.clip(x + rng.normal(0, sc.NOISE_STD, len(x)).astype(np.float32), -1.0, 1.0)
    path = os.path.join(u.out, u.wav)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    soundfile.write(path, x, SR, subtype="PCM_16")
    return len(x) / SR


# ----------------------------------------------------------------------------- WenetSpeech
@dataclass(frozen=True)
class WsRecording:
    subsets: Tuple[str, ...]
    aid: str
    folder: str  # below audio/
    source: str
    tags: Tuple[str, ...]
    url: str
    n_segments: int
    sr: int  # rate of the Opus file's header
    meeting: bool  # two alternating voices, reverberant and noisier
    confidence: float


WS_RECORDINGS: Tuple[WsRecording, ...] = (
    WsRecording(("TEST_NET",), "X0000000000_100638174", "test_net/podcast/B00000", "podcast",
                ("news",), "", 3, 16000, False, 1.0),
    WsRecording(("TEST_NET",), "Y0000000001_-a4bX_cD9eF", "test_net/youtube/B00000", "youtube",
                ("vlog",), "https://www.youtube.com/watch?v=-a4bX_cD9eF", 4, 16000, False, 1.0),
    WsRecording(("TEST_MEETING",), "M0000000002_0001", "test_meeting/meeting/B00000", "meeting",
                ("meeting",), "", 4, 48000, True, 1.0),
    WsRecording(("TEST_MEETING",), "M0000000003_0002", "test_meeting/meeting/B00000", "meeting",
                ("meeting",), "", 3, 16000, True, 1.0),
    WsRecording(("S", "M", "L", "W"), "Y0000000004_Tr4in0Aud1o",
                "train/youtube/B00000", "youtube", ("drama",),
                "https://www.youtube.com/watch?v=Tr4in0Aud1o", 2, 16000, False, 0.95),
)
WS_TOP = {"dataset": "WenetSpeech", "language": "Chinese", "version": "v1.0.0",
          "description": "debug copy synthesised by espnet_sllm.data.synth.kespeech (espeak-ng)",
          "url": "https://wenet-e2e.github.io/WenetSpeech/"}


@dataclass
class WsJob:
    out: str
    index: int
    rec: WsRecording
    sentences: List[sc.Sentence] = field(default_factory=list)
    seed: int = 0


def _grid(seconds: float) -> int:
    """Samples of ``seconds`` rounded to the 10 ms grid (segment times have 2 decimals)."""
    return int(round(seconds * 100)) * (SR // 100)


def reverb(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A far-field room: the dry signal plus an exponentially decaying noise tail (RT60 about
    0.3 s), same length as ``x``."""
    from scipy.signal import fftconvolve

    n = int(0.3 * SR)
    ir = rng.normal(0, 1, n) * np.exp(-6.9 * np.arange(n) / n)
    ir[0] = 0.0
    wet = fftconvolve(x, ir * (0.35 / np.sqrt(np.sum(ir ** 2))))[: len(x)]
    return (x + wet).astype(np.float32)


def _ogg_crc_table() -> List[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else r << 1
        table.append(r & 0xFFFFFFFF)
    return table


_OGG_CRC = _ogg_crc_table()


def ogg_crc(page: bytes) -> int:
    """The CRC-32 of an Ogg page (polynomial 0x04c11db7, not reflected, initial value 0),
    computed with the page's CRC field zeroed."""
    crc = 0
    for b in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[((crc >> 24) & 0xFF) ^ b]
    return crc


def set_ogg_serial(path: str, serial: int) -> None:
    """Give every page of the Ogg file ``path`` the stream serial number ``serial`` (CRCs
    recomputed).  libsndfile draws the serial number at random, which is the only thing that
    differs between two encodings of the same audio: fixing it makes the file (and its md5 in
    WenetSpeech.json) deterministic."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    pos = 0
    while pos < len(data):
        if data[pos:pos + 4] != b"OggS" or pos + 27 > len(data):
            raise RuntimeError(f"{path}: not an Ogg page at byte {pos}")
        n_seg = data[pos + 26]
        end = pos + 27 + n_seg + sum(data[pos + 27:pos + 27 + n_seg])
        data[pos + 14:pos + 18] = serial.to_bytes(4, "little")
        data[pos + 22:pos + 26] = b"\0\0\0\0"
        data[pos + 22:pos + 26] = ogg_crc(bytes(data[pos:end])).to_bytes(4, "little")
        pos = end
    with open(path, "wb") as f:
        f.write(data)


def synth_ws_recording(job: WsJob) -> Dict:
    """Write one Opus recording; returns its WenetSpeech.json entry."""
    rec = job.rec
    rng = np.random.default_rng([job.seed, 18, job.index])
    subs = ("Mandarin",) if not rec.meeting else ("Mandarin", "Northeastern")
    voices = [dialect_voice(s, [job.seed, 19, job.index, k]) for k, s in enumerate(subs)]
    pos = _grid(rng.uniform(0.5, 1.0))
    pieces = [np.zeros(pos, np.float32)]
    segments = []
    for k, sent in enumerate(job.sentences):
        x = speak(sent, voices[k % len(voices)], 6.0)
        x = x * (rng.uniform(0.2, 0.35 if rec.meeting else 0.6) / max(1e-6, float(np.abs(x).max())))
        # Speech on the grid, with 50 ms of margin either side inside the segment.
        lead = _grid(0.05)
        padded = np.zeros(_grid(len(x) / SR + 0.1 + 0.005), np.float32)
        padded[lead:lead + len(x)] = x
        segments.append(dict(sid=f"{rec.aid}_S{k:05d}", confidence=rec.confidence,
                             begin_time=round(pos / SR, 2),
                             end_time=round((pos + len(padded)) / SR, 2),
                             subsets=list(rec.subsets), text=sent.text))
        gap = _grid(rng.uniform(*WS_GAP))
        pieces += [padded, np.zeros(gap, np.float32)]
        pos += len(padded) + gap
    audio = np.concatenate(pieces)
    if rec.meeting:
        audio = reverb(audio, rng)
    audio += rng.normal(0, sc.NOISE_STD * (10 if rec.meeting else 1), len(audio)).astype(
        np.float32)
    audio = np.clip(audio, -1.0, 1.0)
    if rec.sr != SR:
        from scipy.signal import resample_poly

        audio = np.clip(resample_poly(audio, rec.sr // SR, 1), -1.0, 1.0).astype(np.float32)
    rel = f"audio/{rec.folder}/{rec.aid}.opus"
    path = os.path.join(job.out, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    soundfile.write(path, audio, rec.sr, format="OGG", subtype="OPUS")
    set_ogg_serial(path, int(hashlib.md5(rec.aid.encode()).hexdigest()[:8], 16))
    with open(path, "rb") as f:
        md5 = hashlib.md5(f.read()).hexdigest()
    return dict(aid=rec.aid, duration=round(len(audio) / rec.sr, 2), md5=md5, path=rel,
                source=rec.source, tags=list(rec.tags), url=rec.url, segments=segments)


# ----------------------------------------------------------------------------- common
def _begin(out: str, marker: str, owned: Sequence[str], config: Dict, what: str
           ) -> Optional[Dict]:
    """The stored summary when ``out`` already holds this corpus; otherwise prepares ``out``
    (refusing a folder with other content and no marker) and returns None."""
    path = os.path.join(out, marker)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            done = json.load(f)
        if done.get("config") != config:
            raise ValueError(f"{out} holds a {what} debug corpus of another configuration "
                             f"({done.get('config')}, asked {config}): remove it or choose "
                             f"another folder")
        logger.info("%s: complete %s debug corpus found (%s), nothing to do", out, what, marker)
        return done
    os.makedirs(out, exist_ok=True)
    others = sorted(set(os.listdir(out)) - {IN_PROGRESS})
    if others and not os.path.exists(os.path.join(out, IN_PROGRESS)):
        raise ValueError(f"{out} holds {', '.join(others[:5])} but no {marker}: not a debug "
                         f"corpus written here (a real {what}?); refusing to write into it, "
                         f"remove it or choose another folder")
    open(os.path.join(out, IN_PROGRESS), "w").close()
    for name in owned:  # an interrupted run's leftovers
        p = os.path.join(out, name)
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)
    return None


def _finish(out: str, marker: str, summary: Dict) -> None:
    with open(os.path.join(out, marker), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, ensure_ascii=False)
    os.remove(os.path.join(out, IN_PROGRESS))


def _map(fn: Callable, jobs: Sequence, nj: int) -> List:
    if nj > 1 and len(jobs) > 1:
        with Pool(min(nj, len(jobs))) as pool:
            return pool.map(fn, jobs, chunksize=max(1, len(jobs) // (4 * nj)))
    return [fn(j) for j in jobs]


def synthesise_kespeech(out: str, seed: int = 0, nj: int = 1) -> Dict:
    """Write the KeSpeech debug corpus into ``out`` (the ``KeSpeech/`` folder; see the module
    docstring); returns the summary stored in its marker file."""
    config = dict(version=FORMAT_VERSION, kind="kespeech", seed=seed)
    done = _begin(out, KS_MARKER, KS_OWNED, config, "KeSpeech")
    if done is not None:
        return done
    sc.check_voice(VOICE, vocabulary_words(), "the KeSpeech debug corpus")
    t0 = time.time()
    utts = kespeech_plan(seed)
    for u in utts:
        u.out = out
    seconds = _map(synth_ks_utt, utts, nj)
    counts: Dict[str, Dict] = {}
    for part in KS_PARTS:
        rows = sorted((u for u in utts if u.part == part), key=lambda u: u.uttid)
        d = os.path.join(out, "Tasks", "ASR", part)
        os.makedirs(d)
        for name, value in (("wav.scp", lambda u: u.wav), ("text", lambda u: u.text),
                            ("utt2spk", lambda u: u.spk),
                            ("utt2subdialect", lambda u: u.subdialect)):
            with open(os.path.join(d, name), "w", encoding="utf-8") as f:
                f.write("".join(f"{u.uttid} {value(u)}\n" for u in rows))
        kept = [u for u in rows if u.style != "only_noise"]
        per = {}
        for u in kept:
            per[u.subdialect] = per.get(u.subdialect, 0) + 1
        counts[part] = dict(rows=len(rows), kept=len(kept), speakers=len({u.spk for u in rows}),
                            per_subdialect=per,
                            seconds=round(sum(s for u, s in zip(utts, seconds)
                                              if u.part == part), 2))
    summary = dict(config=config, counts=counts, seconds=round(time.time() - t0, 1))
    _finish(out, KS_MARKER, summary)
    for part, c in counts.items():
        logger.info("KeSpeech %s: %d rows, %d kept, %.1f s of audio; per subdialect %s", part,
                    c["rows"], c["kept"], c["seconds"], c["per_subdialect"])
    logger.info("%s: KeSpeech debug corpus synthesised in %.1f s", out, time.time() - t0)
    return summary


def synthesise_wenetspeech(out: str, seed: int = 0, nj: int = 1,
                           recordings: Sequence[WsRecording] = WS_RECORDINGS,
                           kind: str = "wenetspeech", description: Optional[str] = None) -> Dict:
    """Write the WenetSpeech debug corpus into ``out`` (the release folder; see the module
    docstring); returns the summary stored in its marker file.  ``recordings`` (default
    `WS_RECORDINGS`, the test sets of egs2/kespeech/asr1) lets another recipe write recordings
    of its own (:mod:`espnet_sllm.data.synth.aishell_wmt`: training recordings of subset M);
    ``kind`` names that choice in the marker's configuration, ``description`` replaces the
    JSON's ``description``."""
    config = dict(version=FORMAT_VERSION, kind=kind, seed=seed)
    done = _begin(out, WS_MARKER, WS_OWNED, config, "WenetSpeech")
    if done is not None:
        return done
    sc.check_voice(VOICE, vocabulary_words(), "the WenetSpeech debug corpus")
    t0 = time.time()
    # KeSpeech's test draws from the same pool with another key: a sentence may be in both
    # test sets, as real test sets of one language share common sentences.
    pools = {s: SentencePool(s, [seed, 20, i]) for i, s in enumerate(sc.SPLITS)}
    jobs = []
    for i, rec in enumerate(recordings):
        pool = pools["test" if any(s.startswith("TEST") for s in rec.subsets) else "train"]
        jobs.append(WsJob(out, i, rec, [pool.draw() for _ in range(rec.n_segments)], seed))
    audios = _map(synth_ws_recording, jobs, nj)
    with open(os.path.join(out, "WenetSpeech.json"), "w", encoding="utf-8") as f:
        top = dict(WS_TOP, description=description) if description else WS_TOP
        json.dump(dict(top, audios=audios), f, ensure_ascii=False, indent=1)
    counts: Dict[str, Dict] = {}
    for a in audios:
        for seg in a["segments"]:
            for s in seg["subsets"]:
                c = counts.setdefault(s, dict(recordings=set(), segments=0, seconds=0.0))
                c["recordings"].add(a["aid"])
                c["segments"] += 1
                c["seconds"] += seg["end_time"] - seg["begin_time"]
    for c in counts.values():
        c["recordings"] = len(c["recordings"])
        c["seconds"] = round(c["seconds"], 2)
    summary = dict(config=config, counts=counts, seconds=round(time.time() - t0, 1))
    _finish(out, WS_MARKER, summary)
    for s, c in counts.items():
        logger.info("WenetSpeech %s: %d recordings, %d segments, %.1f s", s, c["recordings"],
                    c["segments"], c["seconds"])
    logger.info("%s: WenetSpeech debug corpus synthesised in %.1f s", out, time.time() - t0)
    return summary


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Synthesise debug copies of KeSpeech and WenetSpeech (espeak-ng Mandarin) "
                    "in the layout of the real releases, for egs2/kespeech/asr1.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("--kespeech_out", required=True,
                        help="the KeSpeech/ folder to write (gets Tasks/ASR/ and Audio/)")
    parser.add_argument("--wenetspeech_out", required=True,
                        help="the WenetSpeech folder to write (gets WenetSpeech.json, audio/)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nj", type=int, default=2, help="parallel synthesis processes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    if os.path.abspath(args.kespeech_out) == os.path.abspath(args.wenetspeech_out):
        parser.error("--kespeech_out and --wenetspeech_out must be different folders")
    try:
        synthesise_kespeech(args.kespeech_out, seed=args.seed, nj=args.nj)
        synthesise_wenetspeech(args.wenetspeech_out, seed=args.seed, nj=args.nj)
    except (ValueError, RuntimeError) as e:  # a refusal or an espeak-ng problem: no traceback
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
