"""espeak-ng Mandarin TTS backend (`EspeakTTS`, registry name ``espeak``).

The paper (Wu et al.) speaks WMT19 and Alpaca-zh with "a self-developed TTS model" and "randomly
selects speaker information"; espeak-ng is what every machine can install (``apt-get install
espeak-ng``).  The random speakers are made per utterance: an espeak-ng voice variant
(``+m1..+m7``, ``+f1..+f5``: `voices`), a pitch and a speed drawn from the utterance's random
stream, and a peak level.  The audio is espeak-ng's (22.05 kHz, resampled to 16 kHz by the
caller) with the leading and trailing silence cut.

The default voice is ``cmn-latn-pinyin``, espeak-ng's Mandarin (``cmn``) voice with Latin
letters read as pinyin, not the plain ``cmn`` the issue names: the plain ``cmn`` voice of
espeak-ng 1.51 (Debian, Ubuntu) reads every Chinese character missing from its small dictionary
as English-spelled pinyin with tone digits (看 -> "kan four"), which `check` refuses; the two
voices share the Mandarin phoneme set and rules, and ``cmn-latn-pinyin`` reads the characters of
news text as Mandarin syllables.  Latin words (names, abbreviations) are then read as pinyin, and
digits and ``%`` in Mandarin or English.  ``--tts_conf voice=cmn`` selects the plain voice
(refused by the check on espeak-ng 1.51).

Constructor arguments (``--tts_conf key=value``): ``voice``, ``variants`` (comma-separated),
``pitch_min``/``pitch_max`` (espeak-ng -p, 0-99), ``speed_min``/``speed_max`` (-s, words per
minute), ``gain_min``/``gain_max`` (peak level).
"""
import io
import re
import shutil
import subprocess
from typing import Any, Dict, List, Sequence, Tuple, Union

import numpy as np
import soundfile

from espnet_sllm.data.synth import conversations as sc
from espnet_sllm.tts.abs_tts import AbsTTS, TextNotSpeakable

VOICE = "cmn-latn-pinyin"
# Words every Mandarin voice must read as Mandarin (the check of `check`): common words of news
# and instructions, which plain ``cmn`` of espeak-ng 1.51 spells out in English.
CHECK_WORDS = ("我们", "中国", "经济", "发展", "世界", "国家", "问题", "翻译", "今天", "天气",
               "喜欢", "看见", "花园", "回答", "政府", "市场")


def _as_list(value: Union[str, Sequence[str]]) -> List[str]:
    if isinstance(value, str):
        return [v for v in re.split(r"[,\s]+", value) if v]
    return [str(v) for v in value]


def speakable(text: str) -> bool:
    """Whether ``text`` holds anything to pronounce (a letter, digit or CJK character)."""
    return any(c.isalnum() for c in text)


class EspeakTTS(AbsTTS):
    """espeak-ng Mandarin; a voice variant per utterance, pitch, speed and level drawn from the
    utterance's random stream (see the module docstring)."""

    def __init__(self, voice: str = VOICE, variants: Union[str, Sequence[str]] = tuple(sc.VARIANTS),
                 pitch_min: int = 30, pitch_max: int = 70, speed_min: int = 140,
                 speed_max: int = 180, gain_min: float = 0.3, gain_max: float = 0.7):
        self.voice = str(voice)
        self.variants = _as_list(variants)
        if not self.variants:
            raise ValueError("EspeakTTS: variants is empty")
        for name, lo, hi, top in (("pitch", pitch_min, pitch_max, 99),
                                  ("speed", speed_min, speed_max, 450)):
            if not (0 <= int(lo) <= int(hi) <= top):
                raise ValueError(f"EspeakTTS: need 0 <= {name}_min <= {name}_max <= {top}, "
                                 f"got {lo}, {hi}")
        if not (0 < float(gain_min) <= float(gain_max) <= 1):
            raise ValueError(f"EspeakTTS: need 0 < gain_min <= gain_max <= 1, got {gain_min}, "
                             f"{gain_max}")
        self.pitch = (int(pitch_min), int(pitch_max))
        self.speed = (int(speed_min), int(speed_max))
        self.gain = (float(gain_min), float(gain_max))

    def config(self) -> Dict[str, Any]:
        return {"voice": self.voice, "variants": list(self.variants),
                "pitch_min": self.pitch[0], "pitch_max": self.pitch[1],
                "speed_min": self.speed[0], "speed_max": self.speed[1],
                "gain_min": self.gain[0], "gain_max": self.gain[1]}

    def voices(self) -> List[str]:
        return [f"{self.voice}+{v}" for v in self.variants]

    def check(self) -> None:
        """espeak-ng is installed, has the voice and every variant, and reads `CHECK_WORDS`
        as Mandarin (`conversations.check_voice`)."""
        if shutil.which("espeak-ng") is None:
            raise RuntimeError("espeak-ng not found: install it (apt-get install espeak-ng, or "
                               "tools/install_debian.sh)")
        listing = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True,
                                 text=True, check=True).stdout
        have = {line.split()[-1].rsplit("/", 1)[-1] for line in listing.splitlines()[1:]
                if line.split()}
        missing = [v for v in self.variants if v not in have]
        if missing:
            raise RuntimeError(f"espeak-ng has no voice variant(s) {missing}; it has: "
                               f"{' '.join(sorted(have))}")
        self.check_reading()

    def check_reading(self) -> None:
        """The voice reads `CHECK_WORDS` as Mandarin (a subclass for another language checks
        its own words)."""
        sc.check_voice(f"{self.voice}+{self.variants[0]}", CHECK_WORDS,
                       f"the Mandarin TTS (voice {self.voice!r}: plain 'cmn' of espeak-ng 1.51 "
                       f"spells many characters out in English; the default is {VOICE!r})")

    def synthesize(self, text: str, voice: str,
                   rng: np.random.Generator) -> Tuple[np.ndarray, int]:
        wav, sr, _ = self.synthesize_with_info(text, voice, rng)
        return wav, sr

    def synthesize_with_info(self, text: str, voice: str, rng: np.random.Generator
                             ) -> Tuple[np.ndarray, int, Dict[str, Any]]:
        pitch = int(rng.integers(self.pitch[0], self.pitch[1] + 1))
        speed = int(rng.integers(self.speed[0], self.speed[1] + 1))
        gain = float(rng.uniform(*self.gain))
        text = " ".join(text.split())
        if not speakable(text):
            raise TextNotSpeakable(f"nothing to pronounce in {text!r}")
        x, sr = espeak_stdin(text, voice, pitch, speed)
        x = sc.trim(x.astype(np.float32), sr)
        peak = float(np.abs(x).max()) if len(x) else 0.0
        if peak > 0:
            x = x * (gain / peak)
        return x.astype(np.float32), sr, {"pitch": pitch, "speed": speed,
                                          "gain": round(gain, 4)}


def espeak_stdin(text: str, voice: str, pitch: int, speed: int) -> Tuple[np.ndarray, int]:
    """`conversations.espeak`, with the text on stdin: a text starting with ``-`` is not taken
    for an option, and no length limit of the command line applies."""
    cmd = ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "--stdout"]
    try:
        res = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, check=True)
    except FileNotFoundError:
        raise RuntimeError("espeak-ng not found: install it (apt-get install espeak-ng, or "
                           "tools/install_debian.sh)") from None
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"{' '.join(cmd)} (text {text[:80]!r}) failed: "
                           f"{e.stderr.decode(errors='replace')}") from None
    x, sr = soundfile.read(io.BytesIO(res.stdout), dtype="float32")
    return x, sr
