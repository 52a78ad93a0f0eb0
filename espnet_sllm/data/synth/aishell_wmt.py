"""Usage:
    python -m espnet_sllm.data.synth.aishell_wmt --out downloads/aishell_wmt_debug [--seed 0] \\
        [--nj 2] [--corpora aishell aishell2 wmt19 alpaca_zh wenetspeech]
    # then, from egs2/aishell_wmt/asr1 (D=downloads/aishell_wmt_debug):
    AISHELL=$D/aishell AISHELL2_TEST=$D/aishell2 WMT19=$D/wmt19 ALPACA_ZH=$D/alpaca_zh \\
        WENETSPEECH=$D/wenetspeech ./local/data.sh --hours_scale 1/1800 --n_valid 10 \\
        --n_alpaca_test 10

    from espnet_sllm.data.synth.aishell_wmt import synthesise
    summaries = synthesise("/tmp/aishell_wmt_debug", seed=0, nj=2)   # {corpus: summary}

Tiny debug copies of the five corpora of egs2/aishell_wmt/asr1 (Wu et al., transferable
alignment module), each written in the on-disk layout of its real release, so that the
recipe's stage 1 (``local/data.sh``: the readers of :mod:`espnet_sllm.data.corpora`) reads them
as it reads the real corpora.  ``--out DIR`` receives one folder per corpus, the value of the
corpus's variable in ``db.sh``:

``DIR/aishell`` (``$AISHELL``), AISHELL-1 as downloaded (data_aishell.tgz extracted)::

    data_aishell/transcript/aishell_transcript_v0.8.txt     <id> <words separated by blanks>
    data_aishell/wav/<spk>.tar.gz                           per speaker, holding
                                 {train,dev,test}/<spk>/BAC009<spk>W<nnnn>.wav

one gzipped tar per speaker, as in the release (the reader extracts them in place, once).
Speakers: train S0002-S0009 (10 utterances each), dev S0724-S0727 and test S0764-S0766 (4
each): 80 / 16 / 12 utterances (about 240 / 50 / 37 s), plus one training WAV without a
transcript line, as the release has a few hundred (dropped and counted by the reader as
``no_transcript``).

``DIR/aishell2`` (``$AISHELL2_TEST``), the iOS test set of AISHELL-DEV-TEST-SET::

    AISHELL-DEV-TEST-SET/iOS/test/wav.scp     IT0011W0001<TAB>wav/T0011/IT0011W0001.wav
    AISHELL-DEV-TEST-SET/iOS/test/trans.txt   IT0011W0001<TAB><text without blanks>
    AISHELL-DEV-TEST-SET/iOS/test/wav/T0011/IT0011W0001.wav

Speakers T0011-T0013, 4 utterances each (12).

``DIR/wmt19`` (``$WMT19``), WMT19 zh-en, text only::

    news-commentary-v14.en-zh.tsv             <English><TAB><Chinese>, 200 pairs in 20
                                              documents separated by blank lines (the
                                              document breaks the reader skips)
    sgm/newstest2019-zhen-src.zh.sgm          12 segments in 3 <doc docid=...> blocks
    sgm/newstest2019-zhen-ref.en.sgm          (XML-escaped, paired by docid and seg id)

``DIR/alpaca_zh`` (``$ALPACA_ZH``): ``alpaca_data_zh_51k.json``, a JSON array of 60 records
``{"instruction", "input", "output"}`` in Chinese: 32 questions about a small made-up world
(each animal has a colour, a home and a favourite food, drawn from the seed: 小猫住在哪里？ ->
小猫住在花园里。), 8 of them with a two-line answer (``1. ...\\n2. ...``), and 28 translation
requests (``把这句话翻译成英文。`` with a Chinese sentence as ``input``, its English translation
as ``output``).

``DIR/wenetspeech`` (``$WENETSPEECH``): ``WenetSpeech.json`` + ``audio/train/.../<aid>.opus``,
written by :func:`espnet_sllm.data.synth.kespeech.synthesise_wenetspeech` (the WenetSpeech
debug copy of egs2/kespeech/asr1, same schema and Opus files) with two TRAINING recordings
(`WS_RECORDINGS`, about 4 min each) whose 2 x 100 segments (about 500 s) are in subset M (and
L, W; the first recording also in S), the training subset train_d3 adds.

Sizes: enough for ``local/data.sh --hours_scale 1/1800`` (the debug scale of the recipe: each hour
of the paper becomes 2 s): dataset 1 takes 180 s of AISHELL-1 (train alone holds
235 s), 200 s of WMT19 and 60 s of Alpaca-zh, dataset 2 400 s of WMT19 (200 pairs spoken by
the recipe's TTS: about 490 s), dataset 3 400 s of WenetSpeech M (500 s).  valid_mt takes
``--n_valid`` ASR utterances from AISHELL-1 dev: at most 15 here (one must be left).

Audio: 16 kHz, mono, 16-bit PCM WAV, each utterance 1 to 4 s, read by espeak-ng's Mandarin
voice ``cmn-latn-pinyin`` (see :mod:`espnet_sllm.data.synth.kespeech` for why not the plain
``cmn``), one voice per speaker (variant, pitch and speed drawn from the seed), with a faint
noise floor.

Text: the sentences of :mod:`espnet_sllm.data.synth.kespeech` (five frames over a small
vocabulary: 5 numbers, 6 colours, 8 animals, 6 foods, 5 places; `LANGUAGE`), each with its
English translation (`ENGLISH`: 红色的兔子喜欢吃蛋糕 / The red rabbit likes to eat cake.), so a
tiny model can learn ASR, ST and QA from them.  Each possible sentence belongs to train, dev
("valid") or test by a hash of its text (`conversations.split_of`, 75 / 10 / 15 %): AISHELL-1
dev and test, AISHELL-2 test and newstest2019 use dev / test sentences (unseen combinations of
training words), everything else training sentences; no sentence is used twice over the
corpora.  WMT19 and Alpaca-zh texts end with ``。`` / ``.``; the ASR transcripts have no
punctuation, as in the releases.

Deterministic for a given ``--seed``: every utterance has its own random stream, the tar and
gzip headers carry fixed times and owners, the Ogg serial numbers are fixed, so the bytes do
not depend on ``--nj``.  A marker file in each corpus folder (``.aishell_debug_complete``,
``.aishell2_debug_complete``, ``.wmt19_debug_complete``, ``.alpaca_zh_debug_complete``,
``.wenetspeech_debug_complete``) records the configuration and the counts: a second run with
the same seed does nothing; with another seed it is an error.  A corpus folder that holds other
files and no marker is refused before anything is written (it may be a real corpus); an
interrupted run (marker ``.debug_synthesis_in_progress``) is redone.  About 11 s on 2 cores
(9 of them for the two WenetSpeech recordings; ``--corpora`` writes some corpora only).
"""
import argparse
import gzip
import html
import io
import json
import logging
import os
import sys
import tarfile
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile

from espnet_sllm.data.synth import conversations as sc
from espnet_sllm.data.synth import kespeech as sk

logger = logging.getLogger(__name__)

SR = sc.SR
VOICE = sk.VOICE
LANGUAGE = sk.LANGUAGE  # the Chinese sentences (shared with the KeSpeech debug corpora)
FORMAT_VERSION = 1
CORPORA = ("aishell", "aishell2", "wmt19", "alpaca_zh", "wenetspeech")
MARKERS = {"aishell": ".aishell_debug_complete", "aishell2": ".aishell2_debug_complete",
           "wmt19": ".wmt19_debug_complete", "alpaca_zh": ".alpaca_zh_debug_complete",
           "wenetspeech": sk.WS_MARKER}
OWNED = {"aishell": ("data_aishell",), "aishell2": ("AISHELL-DEV-TEST-SET",),
         "wmt19": ("news-commentary-v14.en-zh.tsv", "sgm"),
         "alpaca_zh": ("alpaca_data_zh_51k.json",), "wenetspeech": sk.WS_OWNED}
WHAT = {"aishell": "AISHELL-1", "aishell2": "AISHELL-2 test", "wmt19": "WMT19",
        "alpaca_zh": "Alpaca-zh", "wenetspeech": "WenetSpeech"}
MIN_SEC, MAX_SEC = 1.0, 4.0  # length of an utterance
EDGE = (0.15, 0.3)  # silence before and after an utterance (s)
PITCH, SPEED = (30, 70), (145, 175)  # ranges of a speaker's voice
TAR_MTIME = 1500000000  # 2017-07-14: fixed times in the archives (determinism)

# English translations of LANGUAGE: same slots, same value order.
ENGLISH = sc.Language(
    name="English", joiner=" ",
    vocab={
        "number": sc._w("two", "three", "four", "five", "six"),
        "colour": sc._w("red", "blue", "green", "black", "white", "yellow"),
        "animal": [{"": s, "pl": p} for s, p in [
            ("cat", "cats"), ("dog", "dogs"), ("bird", "birds"), ("rabbit", "rabbits"),
            ("duck", "ducks"), ("mouse", "mice"), ("goat", "goats"), ("monkey", "monkeys")]],
        "food": sc._w("fish", "rice", "bread", "cake", "apples", "noodles"),
        "place": sc._w("garden", "park", "kitchen", "house", "forest"),
    },
    templates={
        "see": "I see a {colour} {animal}",
        "likes": "the {colour} {animal} likes to eat {food}",
        "where": "the {animal} is in the {place}",
        "count": "there are {number} {animal.pl} in the {place}",
        "eats": "the {animal} eats {food} in the {place}",
    },
    spoken={},
)

# AISHELL-1: split -> (speaker folders, utterances per speaker); the release's speaker ranges
# (train S0002-S0723, dev S0724-S0763, test S0764-S0916).
AISHELL_PLAN = {"train": (tuple(f"S{i:04d}" for i in range(2, 10)), 10),
                "dev": (("S0724", "S0725", "S0726", "S0727"), 4),
                "test": (("S0764", "S0765", "S0766"), 4)}
AISHELL_NO_TRANSCRIPT = "S0003"  # one more training WAV of this speaker, not in the transcript
AISHELL2_PLAN = (("T0011", "T0012", "T0013"), 4)
WMT_TRAIN_DOCS, WMT_TRAIN_DOC_PAIRS = 20, 10  # news-commentary: documents x pairs
WMT_TEST_DOCS = ("chinanews.com.1201", "people.cn.2402", "xinhuanet.com.3603")
WMT_TEST_DOC_SEGS = 4
ALPACA_TRANSLATIONS = 28

# Alpaca-zh questions about the made-up world: (instruction, output).
ALPACA_QA = {
    "food": ("{animal}喜欢吃什么？", "{animal}喜欢吃{food}。"),
    "place": ("{animal}住在哪里？", "{animal}住在{place}里。"),
    "colour": ("{animal}是什么颜色的？", "{animal}是{colour}的。"),
    "list": ("说出{animal}的颜色和它喜欢的食物。", "1. 颜色：{colour}。\n2. 食物：{food}。"),
}
ALPACA_TRANSLATE = "把这句话翻译成英文。"
# Words of the Alpaca-zh texts beyond the vocabulary, checked with the voice (the recipe's TTS
# stage speaks the questions).
ALPACA_WORDS = ("喜欢", "吃", "什么", "住", "在", "哪里", "里", "是", "颜色", "的", "说出", "和",
                "它", "食物", "把", "这句话", "翻译", "成", "英文")

WS_SEGMENTS = 100  # per recording
WS_RECORDINGS: Tuple[sk.WsRecording, ...] = (
    sk.WsRecording(("S", "M", "L", "W"), "Y0000000000_Aw19Tr41n0A", "train/youtube/B00000",
                   "youtube", ("vlog",), "https://www.youtube.com/watch?v=Aw19Tr41n0A",
                   WS_SEGMENTS, 16000, False, 1.0),
    sk.WsRecording(("M", "L", "W"), "X0000000001_100638175", "train/podcast/B00000",
                   "podcast", ("news",), "", WS_SEGMENTS, 16000, False, 0.95),
)
WS_KIND = "wenetspeech_aishell_wmt"
WS_DESCRIPTION = "debug copy synthesised by espnet_sllm.data.synth.aishell_wmt (espeak-ng)"


@dataclass(frozen=True)
class Pair:
    """A Chinese sentence and its English translation."""

    sentence: sc.Sentence  # Chinese (text without blanks, spoken with blanks)
    english: str

    @property
    def zh(self) -> str:
        return self.sentence.text + "。"


@dataclass
class Utt:
    corpus: str  # aishell | aishell2
    split: str
    spk: str  # speaker folder
    uttid: str
    sentence: sc.Sentence
    voice: sk.Voice
    key: Tuple[int, ...]  # random stream of the audio
    transcribed: bool = True


def english(sent: sc.Sentence) -> str:
    text = sc.render(ENGLISH, sent.template, sent.values).text
    return text[0].upper() + text[1:] + "."


def speaker_voice(key: Sequence[int]) -> sk.Voice:
    rng = np.random.default_rng(list(key))
    return sk.Voice(f"{VOICE}+{sc.VARIANTS[int(rng.integers(len(sc.VARIANTS)))]}",
                    int(rng.integers(PITCH[0], PITCH[1] + 1)),
                    int(rng.integers(SPEED[0], SPEED[1] + 1)))


# ----------------------------------------------------------------------------- plan
@dataclass
class Plan:
    utts: List[Utt]
    wmt_train: List[List[Pair]]  # documents
    wmt_test: List[Tuple[str, List[Pair]]]  # (docid, segments)
    alpaca: List[Dict[str, str]]


def make_plan(seed: int) -> Plan:
    """Every sentence, speaker and record of the debug corpora (deterministic for ``seed``;
    cheap: no audio)."""
    pools = {s: sk.SentencePool(s, [seed, 40, i]) for i, s in enumerate(sc.SPLITS)}
    split_pool = {"train": "train", "dev": "valid", "test": "test"}
    utts: List[Utt] = []
    n_spk = 0
    for split, (speakers, n) in AISHELL_PLAN.items():
        for spk in speakers:
            voice = speaker_voice([seed, 41, n_spk])
            n_spk += 1
            extra = 1 if split == "train" and spk == AISHELL_NO_TRANSCRIPT else 0
            for k in range(n + extra):
                utts.append(Utt("aishell", split, spk, f"BAC009{spk}W{121 + k:04d}",
                                pools[split_pool[split]].draw(), voice,
                                (seed, 42, len(utts)), transcribed=k < n))
    speakers, n = AISHELL2_PLAN
    for spk in speakers:
        voice = speaker_voice([seed, 41, n_spk])
        n_spk += 1
        for k in range(n):
            utts.append(Utt("aishell2", "test", spk, f"I{spk}W{k + 1:04d}", pools["test"].draw(),
                            voice, (seed, 42, len(utts))))

    def pair(split: str) -> Pair:
        sent = pools[split].draw()
        return Pair(sent, english(sent))

    wmt_train = [[pair("train") for _ in range(WMT_TRAIN_DOC_PAIRS)]
                 for _ in range(WMT_TRAIN_DOCS)]
    wmt_test = [(d, [pair("test") for _ in range(WMT_TEST_DOC_SEGS)]) for d in WMT_TEST_DOCS]

    rng = np.random.default_rng([seed, 43])
    v = LANGUAGE.vocab
    world = [{"animal": a[""], "colour": v["colour"][int(rng.integers(len(v["colour"])))][""],
              "place": v["place"][int(rng.integers(len(v["place"])))][""],
              "food": v["food"][int(rng.integers(len(v["food"])))][""]}
             for a in v["animal"]]
    records = [{"instruction": q.format(**facts), "input": "", "output": a.format(**facts)}
               for facts in world for q, a in ALPACA_QA.values()]
    for _ in range(ALPACA_TRANSLATIONS):
        p = pair("train")
        records.append({"instruction": ALPACA_TRANSLATE, "input": p.zh, "output": p.english})
    order = rng.permutation(len(records))
    return Plan(utts, wmt_train, wmt_test, [records[int(i)] for i in order])


def all_words() -> List[str]:
    """Every Chinese word the corpora hold (for `conversations.check_voice`)."""
    return sorted(set(sk.vocabulary_words()) | set(ALPACA_WORDS))


# ----------------------------------------------------------------------------- audio
def synth_utt(u: Utt) -> Tuple[bytes, float]:
    """One utterance: (the bytes of its 16 kHz 16-bit WAV file, its length in seconds)."""
    rng = np.random.default_rng(list(u.key))
    silence = lambda: np.zeros(int(rng.uniform(*EDGE) * SR), np.float32)  # noqa: E731
    x = sk.speak(u.sentence, u.voice, MAX_SEC - 2 * EDGE[1])
    x = x * (rng.uniform(0.4, 0.7) / max(1e-6, float(np.abs(x).max())))
    before, after = silence(), silence()
    short = int(MIN_SEC * SR) - (len(before) + len(x) + len(after))
    if short > 0:  # pad a short utterance to MIN_SEC
        after = np.zeros(len(after) + short, np.float32)
    x = np.concatenate([before, x, after])
    x = np.clip(x + rng.normal(0, sc.NOISE_STD, len(x)).astype(np.float32), -1.0, 1.0)
    buf = io.BytesIO()
    soundfile.write(buf, x, SR, format="WAV", subtype="PCM_16")
    return buf.getvalue(), len(x) / SR


def write_tar_gz(path: str, members: Sequence[Tuple[str, Optional[bytes]]]) -> None:
    """A gzipped tar of ``members`` (name, bytes; None: a folder), with fixed times and owners
    (the same bytes on every run)."""
    with open(path, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=TAR_MTIME) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = TAR_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.mode, info.size = 0o644, len(data)
                tar.addfile(info, io.BytesIO(data))


# ----------------------------------------------------------------------------- writers
def _write_text(path: str, lines: Sequence[str]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(line + "\n" for line in lines))


def write_aishell(out: str, utts: Sequence[Utt], audio: Dict[str, Tuple[bytes, float]]) -> Dict:
    cdir = os.path.join(out, "data_aishell")
    os.makedirs(os.path.join(cdir, "wav"))
    by_spk: Dict[str, List[Utt]] = {}
    for u in utts:
        by_spk.setdefault(u.spk, []).append(u)
    for spk, rows in sorted(by_spk.items()):
        split = rows[0].split
        members = [(split, None), (f"{split}/{spk}", None)] + \
            [(f"{split}/{spk}/{u.uttid}.wav", audio[u.uttid][0])
             for u in sorted(rows, key=lambda u: u.uttid)]
        write_tar_gz(os.path.join(cdir, "wav", f"{spk}.tar.gz"), members)
    _write_text(os.path.join(cdir, "transcript", "aishell_transcript_v0.8.txt"),
                [f"{u.uttid} {u.sentence.spoken}"
                 for u in sorted(utts, key=lambda u: u.uttid) if u.transcribed])
    counts = {}
    for split in AISHELL_PLAN:
        rows = [u for u in utts if u.split == split]
        counts[split] = dict(wavs=len(rows), transcribed=sum(u.transcribed for u in rows),
                             speakers=len({u.spk for u in rows}),
                             seconds=round(sum(audio[u.uttid][1] for u in rows), 2))
    return counts


def write_aishell2(out: str, utts: Sequence[Utt], audio: Dict[str, Tuple[bytes, float]]) -> Dict:
    sdir = os.path.join(out, "AISHELL-DEV-TEST-SET", "iOS", "test")
    rows = sorted(utts, key=lambda u: u.uttid)
    for u in rows:
        path = os.path.join(sdir, "wav", u.spk, f"{u.uttid}.wav")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(audio[u.uttid][0])
    _write_text(os.path.join(sdir, "wav.scp"),
                [f"{u.uttid}\twav/{u.spk}/{u.uttid}.wav" for u in rows])
    _write_text(os.path.join(sdir, "trans.txt"), [f"{u.uttid}\t{u.sentence.text}" for u in rows])
    return {"test": dict(wavs=len(rows), speakers=len({u.spk for u in rows}),
                         seconds=round(sum(audio[u.uttid][1] for u in rows), 2))}


def _sgm(kind: str, docs: Sequence[Tuple[str, List[Pair]]], lang: str) -> str:
    head = '<srcset setid="newstest2019" srclang="any">' if kind == "src" else \
        '<refset setid="newstest2019" srclang="any" trglang="en">'
    lines = [head]
    for docid, pairs in docs:
        lines += [f'<doc sysid="ref" docid="{docid}" genre="news" origlang="zh">', "<p>"]
        lines += [f'<seg id="{k + 1}">{html.escape(p.zh if lang == "zh" else p.english)}</seg>'
                  for k, p in enumerate(pairs)]
        lines += ["</p>", "</doc>"]
    lines.append("</srcset>" if kind == "src" else "</refset>")
    return "".join(line + "\n" for line in lines)


def write_wmt19(out: str, plan: Plan) -> Dict:
    lines: List[str] = []
    for i, doc in enumerate(plan.wmt_train):
        if i:
            lines.append("")  # a document break
        lines += [f"{p.english}\t{p.zh}" for p in doc]
    _write_text(os.path.join(out, "news-commentary-v14.en-zh.tsv"), lines)
    os.makedirs(os.path.join(out, "sgm"))
    for kind, lang, name in (("src", "zh", "newstest2019-zhen-src.zh.sgm"),
                             ("ref", "en", "newstest2019-zhen-ref.en.sgm")):
        with open(os.path.join(out, "sgm", name), "w", encoding="utf-8", newline="\n") as f:
            f.write(_sgm(kind, plan.wmt_test, lang))
    return {"train": dict(pairs=sum(map(len, plan.wmt_train)), documents=len(plan.wmt_train),
                          lines=len(lines)),
            "test": dict(pairs=sum(len(p) for _, p in plan.wmt_test),
                         documents=len(plan.wmt_test))}


def write_alpaca_zh(out: str, plan: Plan) -> Dict:
    with open(os.path.join(out, "alpaca_data_zh_51k.json"), "w", encoding="utf-8",
              newline="\n") as f:
        json.dump(plan.alpaca, f, ensure_ascii=False, indent=2)
        f.write("\n")
    return {"records": len(plan.alpaca),
            "multiline": sum("\n" in r["output"] for r in plan.alpaca),
            "with_input": sum(bool(r["input"]) for r in plan.alpaca)}


# ----------------------------------------------------------------------------- driver
def _config(corpus: str, seed: int) -> Dict:
    return dict(version=FORMAT_VERSION, kind=WS_KIND if corpus == "wenetspeech" else corpus,
                seed=seed)


def _refuse_foreign(out: str, corpora: Sequence[str]) -> None:
    """Refuse, before writing anything, a corpus folder that holds other files and no marker
    (what `kespeech._begin` refuses, checked for every folder first)."""
    for c in corpora:
        d = os.path.join(out, c)
        if not os.path.isdir(d) or os.path.exists(os.path.join(d, MARKERS[c])) or \
                os.path.exists(os.path.join(d, sk.IN_PROGRESS)):
            continue
        others = sorted(os.listdir(d))
        if others:
            raise ValueError(f"{d} holds {', '.join(others[:5])} but no {MARKERS[c]}: not a "
                             f"debug corpus written here (a real {WHAT[c]}?); refusing to write "
                             f"into it, remove it or choose another --out")


def synthesise(out: str, seed: int = 0, nj: int = 1,
               corpora: Sequence[str] = CORPORA) -> Dict[str, Dict]:
    """Write the debug corpora ``corpora`` (default: all five) into ``out/<corpus>`` (see the
    module docstring); returns ``{corpus: the summary stored in its marker file}``.  Corpora
    already complete for this seed are left alone.  A corpus does not depend on which others
    are written with it."""
    unknown = [c for c in corpora if c not in CORPORA]
    if unknown or not corpora:
        raise ValueError(f"unknown corpus {', '.join(unknown) or '(none given)'}; valid: "
                         f"{' '.join(CORPORA)}")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"{out} is not a folder")
    _refuse_foreign(out, corpora)
    t0 = time.time()
    summaries: Dict[str, Dict] = {}
    todo = []
    for c in CORPORA[:-1]:
        if c not in corpora:
            continue
        done = sk._begin(os.path.join(out, c), MARKERS[c], OWNED[c], _config(c, seed), WHAT[c])
        if done is not None:
            summaries[c] = done
        else:
            todo.append(c)
    if todo:
        plan = make_plan(seed)
        sc.check_voice(VOICE, all_words(), "the AISHELL/WMT debug corpora")
        utts = [u for u in plan.utts if u.corpus in todo]
        audio = dict(zip([u.uttid for u in utts], sk._map(synth_utt, utts, nj)))
        for c in todo:
            d = os.path.join(out, c)
            if c == "aishell":
                counts = write_aishell(d, [u for u in utts if u.corpus == c], audio)
            elif c == "aishell2":
                counts = write_aishell2(d, [u for u in utts if u.corpus == c], audio)
            elif c == "wmt19":
                counts = write_wmt19(d, plan)
            else:
                counts = write_alpaca_zh(d, plan)
            summaries[c] = dict(config=_config(c, seed), counts=counts)
            sk._finish(d, MARKERS[c], summaries[c])
            logger.info("%s debug corpus written to %s: %s", WHAT[c], d,
                        json.dumps(counts, ensure_ascii=False))
    if "wenetspeech" in corpora:
        summaries["wenetspeech"] = sk.synthesise_wenetspeech(
            os.path.join(out, "wenetspeech"), seed=seed, nj=nj, recordings=WS_RECORDINGS,
            kind=WS_KIND, description=WS_DESCRIPTION)
    logger.info("%s: debug corpora %s ready (%.1f s)", out, " ".join(summaries),
                time.time() - t0)
    return summaries


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Synthesise tiny debug copies of AISHELL-1, AISHELL-2 (iOS test), WMT19 "
                    "zh-en, Alpaca-zh and WenetSpeech (subset M) in the layouts of the real "
                    "releases (espeak-ng Mandarin), for egs2/aishell_wmt/asr1.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("--out", required=True,
                        help="folder receiving aishell/ aishell2/ wmt19/ alpaca_zh/ "
                             "wenetspeech/ (the corpus roots of db.sh)")
    parser.add_argument("--corpora", nargs="+", default=list(CORPORA), metavar="CORPUS",
                        help=f"corpora to write (default: all: {' '.join(CORPORA)})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nj", type=int, default=2, help="parallel synthesis processes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    if args.nj < 1:
        parser.error(f"--nj must be >= 1, got {args.nj}")
    try:
        synthesise(args.out, seed=args.seed, nj=args.nj,
                   corpora=[c for a in args.corpora for c in a.split(",") if c])
    except (ValueError, RuntimeError) as e:  # a refusal or an espeak-ng problem: no traceback
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
