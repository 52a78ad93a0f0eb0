"""ILT data step 3 (egs2/mlc_slm): speech of selected English text in the English accents of
MLC-SLM, by voice cloning with prompts of each accent.

Usage:
    python -m espnet_sllm.data.accent_tts --text_dir data/ilt_selected_en \\
        --prompt_dir data/train --out data/ilt_accent_tts --seed 0 --nj 2 \\
        --tts command --tts_conf timeout=600 "command=f5-tts_infer-cli \\
            --ref_audio {prompt_wav} --ref_text={prompt_text} --gen_text={text} \\
            --output_dir {out_dir} --output_file {out_wav}" \\
        [--n_prompts 20] [--min_prompt_sec 3] [--max_prompt_sec 10] [--accents LABEL ...] \\
        [--max_fail_ratio 0.05] [--min_sec 0.2] [--min_sec_per_char 0.05] [--max_sec S]
    # debug: espeak-ng, one English voice per accent, no prompt audio (--prompt_dir optional)
    python -m espnet_sllm.data.accent_tts --text_dir data/ilt_selected_en \\
        --out data/ilt_accent_tts_debug --tts espeak

    from espnet_sllm.data.accent_tts import accent_tts
    summary = accent_tts("data/sel", "data/sel_tts", tts="espeak", seed=0)

Accents.  The English labels (``English-<Accent>``) of ``--prompt_dir``'s ``utt2lang`` (the
MLC-SLM training set: English-American, English-Australian, English-British, English-Filipino,
English-Indian), in sorted order, or ``--accents``.  The sentences of ``--text_dir`` (its
``text``; read as `espnet_sllm.tts.synthesize` reads it, lines that are not UTF-8 and empty
texts left out and counted) are put in the seeded order of `espnet_sllm.data.subset.seeded_order`
and assigned round-robin: sentence ``i`` of that order goes to accent ``i mod K``.

Prompts (voice-cloning backends: ``--tts command`` (`espnet_sllm.tts.command.CommandTTS`) or
any ``module:Class`` whose constructor takes ``prompts``).  Per accent, from the utterances of
``--prompt_dir`` with that label, audio and a non-empty transcript, lasting ``--min_prompt_sec``
to ``--max_prompt_sec`` seconds (duration from ``utt2dur``, else ``segments``, else the audio
header: `espnet_sllm.data.subset.durations`): each speaker's utterances longest first (ties by
id), speakers in the seeded order of their ids, and ``--n_prompts`` taken round-robin over the
speakers (first the longest of every speaker, then the second longest, ...): as many voices as
the accent has speakers, long prompts (a cloning TTS copies a voice better from 5-10 s, F5-TTS
clips its reference at 12 s), seeded.  An accent without any such prompt is an error.  The
accent's backend gets only that accent's prompts as voices; `synthesize_dir` draws one per
sentence from the sentence's seeded random stream.

Backends.  ``--tts`` and ``--tts_conf key=value`` (values read as YAML) as for
``python -m espnet_sllm.bin.synthesize``, without ``prompts`` (chosen here).  ``--tts espeak``
(debug: no prompt, no model) speaks each accent with an espeak-ng English voice
(`ESPEAK_VOICES`); espeak-ng 1.51 has no Australian, Filipino or Indian English, so these get
the nearest voices it has, distinct per accent but not the accent: Australian ``en-gb-x-rp``
(non-rhotic Received Pronunciation), Filipino ``en-gb-scotland`` (rhotic, monophthongs),
Indian ``en-029`` (Caribbean: syllable-timed, th-stopping); American ``en-us``, British
``en-gb``.  ``--tts_conf`` then gives `espnet_sllm.tts.espeak.EspeakTTS`'s options but ``voice``.

Synthesis.  Each accent is one `espnet_sllm.tts.synthesize.synthesize_dir` run (resumable,
checks, drops counted, ``--nj``) from ``<out>/accents/<label>/text`` (the accent's sentences,
``utt2lang`` = the label) to ``<out>/accents/<label>/tts``.  Failures of the backend (the command
exited with an error, timed out, wrote no audio) are dropped and counted as ``failed``; more
than ``--max_fail_ratio`` (default 0.05) of an accent's sentences failing is an error naming the
count (a rerun resumes and tries the failed ones again).

Output ``<out>``: one data directory of all accents (`combine_data_dirs` of the accents' outputs):
``wav.scp`` (the WAVs under ``accents/<label>/tts/wav``), ``text`` and the input's other files,
``utt2lang`` = the accent label of the prompt used, ``utt2dur``, and, with prompts,
``utt2prompt`` (``<uttid> <prompt utterance id>``) and ``prompts.tsv`` (``accent, prompt id,
speaker, seconds, text`` of every prompt chosen).  ``utt2spk`` stays the input's (each sentence
its own speaker for the text-only readers), not the prompt's speaker: the utterance ids stay
those of the selected text (an id must start with its speaker's for Kaldi's sort order), and a
cloned voice shares no speaker id with the real MLC-SLM recordings, so that the speakers of a
set combined from both stay real ones (speaker-based selection and splits).  The prompt of
every utterance is in ``utt2prompt`` and in each accent's ``tts_log.jsonl``.
``accent_tts_report.txt``: per accent the sentences, prompts, utterances kept, hours, failures
and other drops, and the totals.
"""
import argparse
import inspect
import json
import logging
import os
import sys
from collections import Counter
from typing import Any, Dict, List, Mapping, Optional, Sequence

import yaml

from espnet_sllm.data.kaldi_dir import (
    Utterance,
    carry_speaker_files,
    combine_data_dirs,
    fix_data_dir,
    read_data_dir,
    read_kv,
    write_data_dir,
    write_kv,
)
from espnet_sllm.data.subset import durations, seeded_order
from espnet_sllm.tts import AbsTTS, EspeakTTS, parse_tts_conf, resolve_tts
from espnet_sllm.tts.synthesize import LOG, SynthesisError, synthesize_dir

logger = logging.getLogger(__name__)

#: The English labels of MLC-SLM (the reader's ``English-<Accent>``).
MLC_SLM_ACCENTS = ("English-American", "English-Australian", "English-British",
                   "English-Filipino", "English-Indian")
#: espeak-ng voice of each accent for the debug backend (see the module docstring).
ESPEAK_VOICES = {"English-American": "en-us", "English-Australian": "en-gb-x-rp",
                 "English-British": "en-gb", "English-Filipino": "en-gb-scotland",
                 "English-Indian": "en-029"}
#: English words `AccentEspeakTTS.check` has every voice read without switching language.
CHECK_WORDS = ("hello", "world", "weather", "language", "model", "speech", "thirty")
REPORT = "accent_tts_report.txt"
_CARRIED = ("utt2tgtlang",)


class AccentEspeakTTS(EspeakTTS):
    """`EspeakTTS` with an English voice: its check reads English words, not Mandarin ones."""

    def check_reading(self) -> None:
        from espnet_sllm.data.synth import conversations as sc

        sc.check_voice(f"{self.voice}+{self.variants[0]}", CHECK_WORDS,
                       f"English accent TTS (voice {self.voice!r})")


class AccentTTSError(RuntimeError):
    """A refusal of the accent TTS step (bad options, no prompt for an accent, ...)."""


# ----------------------------------------------------------------------------- choices
def english_accents(labels: Sequence[str]) -> List[str]:
    """The English labels (``English-...``) among ``labels``, sorted, once each."""
    return sorted({lab for lab in labels if lab.startswith("English-")})


def assign_accents(uttids: Sequence[str], accents: Sequence[str], seed: int) -> Dict[str, str]:
    """Round-robin in the seeded order: the i-th utterance of `seeded_order` gets
    ``accents[i % len(accents)]``."""
    if not accents:
        raise AccentTTSError("no accent to assign")
    return {u: accents[i % len(accents)] for i, u in enumerate(seeded_order(uttids, seed))}


def select_prompts(utts: Sequence[Utterance], dur: Mapping[str, float], n: int,
                   min_sec: float, max_sec: float, seed: int) -> List[Utterance]:
    """Up to ``n`` prompts of ``utts`` (one accent) lasting ``min_sec``..``max_sec`` with a
    transcript: round-robin over the speakers in seeded order, each speaker's longest first."""
    by_spk: Dict[str, List[Utterance]] = {}
    for u in utts:
        if not u.wav or (u.text is not None and not u.text.strip()):
            continue
        if min_sec <= dur[u.uttid] <= max_sec:
            by_spk.setdefault(u.speaker, []).append(u)
    for lst in by_spk.values():
        lst.sort(key=lambda u: (-dur[u.uttid], u.uttid))
    speakers = seeded_order(by_spk, seed)
    out: List[Utterance] = []
    rank = 0
    while len(out) < n and any(rank < len(by_spk[s]) for s in speakers):
        for s in speakers:
            if rank < len(by_spk[s]) and len(out) < n:
                out.append(by_spk[s][rank])
        rank += 1
    return out


def _takes_prompts(cls: type) -> bool:
    return "prompts" in inspect.signature(cls.__init__).parameters


# ----------------------------------------------------------------------------- the step
def accent_tts(text_dir: str, out_dir: str, tts: str = "command",
               tts_conf: Optional[Mapping[str, Any]] = None, prompt_dir: Optional[str] = None,
               accents: Optional[Sequence[str]] = None, n_prompts: int = 20,
               min_prompt_sec: float = 3.0, max_prompt_sec: float = 10.0, seed: int = 0,
               nj: int = 1, max_fail_ratio: float = 0.05, min_sec: float = 0.2,
               min_sec_per_char: float = 0.05, max_sec: Optional[float] = None,
               progress: bool = True) -> Dict[str, Any]:
    """Speak ``text_dir`` in the English accents into ``out_dir`` (see the module docstring);
    returns the summary (``accents`` {label: counts}, ``kept``, ``hours``, ``failed``, ...)."""
    tts_conf = dict(tts_conf or {})
    try:
        cls = resolve_tts(tts)
    except ValueError as e:
        raise AccentTTSError(str(e)) from None
    espeak = issubclass(cls, EspeakTTS)
    if not espeak and not _takes_prompts(cls):
        raise AccentTTSError(f"TTS {tts!r} takes no prompts: the accent TTS needs a "
                             f"voice-cloning backend (command, or a class taking prompts=) or "
                             f"espeak (debug)")
    for key in ("prompts",) if not espeak else ("voice",):
        if key in tts_conf:
            raise AccentTTSError(f"--tts_conf {key}=...: chosen per accent by this tool")
    if n_prompts < 1:
        raise AccentTTSError(f"--n_prompts must be >= 1, got {n_prompts}")
    if not 0 <= min_prompt_sec <= max_prompt_sec:
        raise AccentTTSError(f"need 0 <= --min_prompt_sec <= --max_prompt_sec, got "
                             f"{min_prompt_sec}, {max_prompt_sec}")
    if seed < 0:
        raise AccentTTSError(f"--seed must be >= 0, got {seed}")
    if not os.path.isdir(text_dir):
        raise AccentTTSError(f"--text_dir {text_dir} does not exist")
    for d in (text_dir, prompt_dir):
        if d and os.path.realpath(d) == os.path.realpath(out_dir):
            raise AccentTTSError(f"--out {out_dir} is an input directory")

    # accents and their prompts
    prompts: Dict[str, List[Utterance]] = {}
    dur: Dict[str, float] = {}
    if prompt_dir is None:
        if not espeak:
            raise AccentTTSError(f"--tts {tts}: --prompt_dir (the MLC-SLM training set) is "
                                 f"needed for the prompts")
        present = list(MLC_SLM_ACCENTS)
    else:
        if not os.path.isdir(prompt_dir):
            raise AccentTTSError(f"--prompt_dir {prompt_dir} does not exist")
        putts = read_data_dir(prompt_dir)
        if putts[0].lang is None:
            raise AccentTTSError(f"{prompt_dir}: no utt2lang: the accent of a prompt is its "
                                 f"utt2lang label")
        present = english_accents([u.lang for u in putts])
        if not present:
            raise AccentTTSError(f"{prompt_dir}: no English-<Accent> label in utt2lang (has "
                                 f"{', '.join(sorted({u.lang for u in putts})[:10])})")
    if accents:
        accents = list(dict.fromkeys(accents))
        unknown = [a for a in accents if a not in present]
        if unknown:
            raise AccentTTSError(f"--accents {unknown}: not among the English labels "
                                 f"{', '.join(present)}"
                                 + (f" of {prompt_dir}" if prompt_dir else ""))
    else:
        accents = present
    if espeak:
        unknown = [a for a in accents if a not in ESPEAK_VOICES]
        if unknown:
            raise AccentTTSError(f"--tts espeak: no espeak-ng voice for {unknown} (known: "
                                 f"{', '.join(ESPEAK_VOICES)})")
    else:
        wanted = [u for u in putts if u.lang in accents]
        dur = durations(prompt_dir, wanted)
        for a in accents:
            chosen = select_prompts([u for u in wanted if u.lang == a], dur, n_prompts,
                                    min_prompt_sec, max_prompt_sec, seed)
            if not chosen:
                raise AccentTTSError(f"{prompt_dir}: no prompt for {a}: no utterance of "
                                     f"{min_prompt_sec:g}-{max_prompt_sec:g} s with a "
                                     f"transcript")
            prompts[a] = chosen

    # backends, checked before any work
    backends: Dict[str, AbsTTS] = {}
    try:
        for a in accents:
            conf = dict(tts_conf, voice=ESPEAK_VOICES[a]) if espeak else \
                dict(tts_conf, prompts=prompts[a])
            backends[a] = (AccentEspeakTTS if cls is EspeakTTS else cls)(**conf)
    except TypeError as e:
        raise AccentTTSError(f"TTS {tts!r}: {e} (--tts_conf)") from None
    for a in accents:
        backends[a].check()

    # sentences, round-robin over the accents
    fixed = fix_data_dir(text_dir, extra_files=_CARRIED, skip_bad_text=True)
    if not fixed.utts or fixed.utts[0].text is None:
        raise AccentTTSError(f"{text_dir}: no text: nothing to speak")
    input_drops = Counter(reason for _, reason, _ in fixed.dropped)
    sentences = [u for u in fixed.utts if u.text.strip()]
    input_drops.update({"empty_text": len(fixed.utts) - len(sentences)} if
                       len(sentences) < len(fixed.utts) else {})
    if not sentences:
        raise AccentTTSError(f"{text_dir}: no sentence with text")
    accent_of = assign_accents([u.uttid for u in sentences], accents, seed)

    os.makedirs(out_dir, exist_ok=True)
    per: Dict[str, Dict[str, Any]] = {}
    tts_dirs: List[str] = []
    utt2prompt: Dict[str, str] = {}
    utt2dur: Dict[str, str] = {}
    for a in accents:
        mine = [u for u in sentences if accent_of[u.uttid] == a]
        per[a] = {"sentences": len(mine), "prompts": len(prompts.get(a, [])), "kept": 0,
                  "hours": 0.0, "failed": 0, "dropped": {}}
        if not mine:
            continue
        base = os.path.join(out_dir, "accents", a)
        text_in, tts_out = os.path.join(base, "text"), os.path.join(base, "tts")
        os.makedirs(text_in, exist_ok=True)
        write_data_dir(text_in, [Utterance(**dict(vars(u), wav=None, segment=None, lang=a))
                                 for u in mine])
        for fname in _CARRIED:
            path = os.path.join(text_in, fname)
            if fname in fixed.extra:
                write_kv(path, {u.uttid: fixed.extra[fname][u.uttid] for u in mine})
            elif os.path.exists(path):
                os.remove(path)
        carry_speaker_files(text_in, [text_dir])
        logger.info("accent_tts: %s: %d sentences, %s", a, len(mine),
                    f"{len(prompts[a])} prompts" if prompts else f"espeak-ng voice "
                                                                 f"{ESPEAK_VOICES[a]}")
        try:
            s = synthesize_dir(text_in, tts_out, backends[a], seed=seed, nj=nj,
                               min_sec=min_sec, min_sec_per_char=min_sec_per_char,
                               progress=progress, max_sec=max_sec,
                               max_fail_ratio=max_fail_ratio)
        except SynthesisError as e:
            raise AccentTTSError(f"{a}: {e}") from None
        per[a].update(kept=s["kept"], hours=s["hours"], dropped=s["dropped"],
                      failed=s["dropped"].get("failed", 0))
        tts_dirs.append(tts_out)
        utt2dur.update(read_kv(os.path.join(tts_out, "utt2dur")))
        if prompts:
            with open(os.path.join(tts_out, LOG), encoding="utf-8") as f:
                for line in f:
                    rec = json.loads(line)
                    if "dropped" not in rec:
                        utt2prompt[rec["utt"]] = rec["voice"]

    combine_data_dirs(out_dir, tts_dirs)
    write_kv(os.path.join(out_dir, "utt2dur"), utt2dur)
    path = os.path.join(out_dir, "utt2prompt")
    if prompts:
        write_kv(path, {u: p for u, p in utt2prompt.items() if u in utt2dur})
    elif os.path.exists(path):
        os.remove(path)
    tsv = os.path.join(out_dir, "prompts.tsv")
    if prompts:
        lines = ["accent\tprompt\tspeaker\tseconds\ttext"]
        lines += [f"{a}\t{u.uttid}\t{u.speaker}\t{dur[u.uttid]:.2f}\t{u.text or ''}"
                  for a in accents for u in prompts[a]]
        with open(tsv, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    elif os.path.exists(tsv):
        os.remove(tsv)

    summary = {"in": text_dir, "out": out_dir, "prompt_dir": prompt_dir, "tts": tts,
               "tts_conf": {k: v for k, v in tts_conf.items()}, "seed": seed,
               "accents": per, "sentences": len(sentences),
               "input_dropped": dict(sorted(input_drops.items())),
               "kept": sum(p["kept"] for p in per.values()),
               "hours": sum(p["hours"] for p in per.values()),
               "failed": sum(p["failed"] for p in per.values()),
               "max_fail_ratio": max_fail_ratio,
               "espeak_voices": {a: ESPEAK_VOICES[a] for a in accents} if espeak else None}
    _write_report(out_dir, summary)
    return summary


def _write_report(out_dir: str, s: Dict[str, Any]) -> None:
    voices = (f"prompts of {s['prompt_dir']}" if s["espeak_voices"] is None else
              "espeak-ng voices " + ", ".join(f"{a}={v}" for a, v in s["espeak_voices"].items()))
    lines = [f"{s['out']}: English accent TTS of {s['in']} by TTS {s['tts']} "
             f"{yaml.safe_dump(s['tts_conf'], default_flow_style=True, width=10 ** 6).strip()}"
             f", {voices}, seed {s['seed']}",
             f"sentences: {s['sentences']}, assigned round-robin in the seeded order to "
             f"{len(s['accents'])} accents"
             + (f"; left out of the input: {s['input_dropped']}" if s["input_dropped"] else ""),
             "",
             "accent\tsentences\tprompts\tkept\thours\tfailed\tdropped"]
    for a, p in s["accents"].items():
        other = {r: n for r, n in p["dropped"].items() if r != "failed"}
        lines.append(f"{a}\t{p['sentences']}\t{p['prompts']}\t{p['kept']}\t{p['hours']:.4f}\t"
                     f"{p['failed']}\t" + (", ".join(f"{r}={n}" for r, n in other.items())
                                           or "0"))
    lines.append(f"total\t{s['sentences']}\t{sum(p['prompts'] for p in s['accents'].values())}"
                 f"\t{s['kept']}\t{s['hours']:.4f}\t{s['failed']}\t")
    lines += ["", f"failed: {s['failed']} of {s['sentences']} "
                  f"({s['failed'] / max(1, s['sentences']):.1%}; an accent over "
                  f"--max_fail_ratio {s['max_fail_ratio']:g} is an error)",
              "per accent: accents/<label>/tts/tts_report.txt and tts_log.jsonl"]
    with open(os.path.join(out_dir, REPORT + ".tmp"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(os.path.join(out_dir, REPORT + ".tmp"), os.path.join(out_dir, REPORT))


def summary_line(s: Dict[str, Any]) -> str:
    per = ", ".join(f"{a.split('-', 1)[-1]} {p['kept']}/{p['sentences']}"
                    for a, p in s["accents"].items())
    return (f"{s['out']}: {s['kept']} of {s['sentences']} sentences spoken ({s['hours']:.4f} h; "
            f"{per}); failed {s['failed']} (see {os.path.join(s['out'], REPORT)})")


# ----------------------------------------------------------------------------- command line
def get_parser() -> argparse.ArgumentParser:
    from espnet_sllm.bin.cli import str2bool

    parser = argparse.ArgumentParser(
        description=__doc__.split("Usage:")[0],
        epilog="Usage:" + __doc__.split("Usage:")[1].split("Accents.")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text_dir", required=True,
                        help="data directory of the selected English sentences (text)")
    parser.add_argument("--prompt_dir", default=None,
                        help="MLC-SLM training data directory: prompts and accent labels "
                             "(utt2lang); optional with --tts espeak")
    parser.add_argument("--out", dest="out_dir", required=True, help="output data directory")
    parser.add_argument("--tts", default="command",
                        help="command (default), espeak (debug) or module:Class")
    parser.add_argument("--tts_conf", nargs="*", default=[], metavar="KEY=VALUE",
                        help="constructor arguments of the backend (command=..., timeout=...)")
    parser.add_argument("--accents", nargs="+", default=None,
                        help="English labels to speak (default: all of --prompt_dir)")
    parser.add_argument("--n_prompts", type=int, default=20, help="prompts per accent")
    parser.add_argument("--min_prompt_sec", type=float, default=3.0)
    parser.add_argument("--max_prompt_sec", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nj", type=int, default=1, help="parallel jobs (commands at once)")
    parser.add_argument("--max_fail_ratio", type=float, default=0.05,
                        help="more failed sentences than this share of an accent: error")
    parser.add_argument("--min_sec", type=float, default=0.2)
    parser.add_argument("--min_sec_per_char", type=float, default=0.05)
    parser.add_argument("--max_sec", type=float, default=None)
    parser.add_argument("--progress", type=str2bool, default=True)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: accent_tts: %(message)s")
    try:
        summary = accent_tts(args.text_dir, args.out_dir, tts=args.tts,
                             tts_conf=parse_tts_conf(args.tts_conf), prompt_dir=args.prompt_dir,
                             accents=args.accents, n_prompts=args.n_prompts,
                             min_prompt_sec=args.min_prompt_sec,
                             max_prompt_sec=args.max_prompt_sec, seed=args.seed, nj=args.nj,
                             max_fail_ratio=args.max_fail_ratio, min_sec=args.min_sec,
                             min_sec_per_char=args.min_sec_per_char, max_sec=args.max_sec,
                             progress=args.progress)
    except (RuntimeError, ValueError, OSError) as e:
        print(f"accent_tts: ERROR: {e}", file=sys.stderr)
        return 1
    print(f"accent_tts: {summary_line(summary)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
