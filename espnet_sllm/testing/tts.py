"""A fake TTS backend for tests and CI-sized recipe runs (no espeak-ng needed).

Usage:
    python -m espnet_sllm.bin.synthesize --tts espnet_sllm.testing.tts:FakeTTS \\
        --tts_conf sec_per_char=0.1 ...

`FakeTTS` "speaks" a text as a tone per character (``sec_per_char`` seconds each, frequency from
the character's code point, level and a small pitch shift drawn from the utterance's random
stream), at 22.05 kHz so that the caller's resampling runs.  Behaviour for tests:

* a text containing ``SHORT`` gives 0.05 s of audio (dropped as ``too_short``);
* a text containing ``QUIET`` gives silence (dropped as ``silent``);
* a text of punctuation only raises `TextNotSpeakable`;
* ``fail_after=N``: the (N+1)-th call of this process raises RuntimeError (a run killed midway);
  not part of `config`, so that a rerun without it resumes the same folder.
"""
from typing import Any, Dict, List, Tuple

import numpy as np

from espnet_sllm.tts.abs_tts import AbsTTS, TextNotSpeakable


class FakeTTS(AbsTTS):
    def __init__(self, sec_per_char: float = 0.1, n_voices: int = 3, sample_rate: int = 22050,
                 fail_after: int = -1):
        self.sec_per_char = float(sec_per_char)
        self.n_voices = int(n_voices)
        self.sample_rate = int(sample_rate)
        self.fail_after = int(fail_after)
        self.calls = 0

    def config(self) -> Dict[str, Any]:
        return {"sec_per_char": self.sec_per_char, "n_voices": self.n_voices,
                "sample_rate": self.sample_rate}

    def voices(self) -> List[str]:
        return [f"fake{i}" for i in range(self.n_voices)]

    def synthesize(self, text: str, voice: str, rng: np.random.Generator
                   ) -> Tuple[np.ndarray, int]:
        wav, sr, _ = self.synthesize_with_info(text, voice, rng)
        return wav, sr

    def synthesize_with_info(self, text: str, voice: str, rng: np.random.Generator
                             ) -> Tuple[np.ndarray, int, Dict[str, Any]]:
        self.calls += 1
        if 0 <= self.fail_after < self.calls:
            raise RuntimeError(f"FakeTTS: failing after {self.fail_after} calls (fail_after)")
        shift = float(rng.uniform(0.9, 1.1))
        level = float(rng.uniform(0.2, 0.5))
        info = {"shift": round(shift, 4)}
        sr = self.sample_rate
        chars = [c for c in text if c.isalnum()]
        if not chars:
            raise TextNotSpeakable(f"nothing to pronounce in {text!r}")
        if "SHORT" in text:
            return np.full(int(0.05 * sr), 0.3, np.float32), sr, info
        n = int(self.sec_per_char * sr)
        t = np.arange(n) / sr
        pieces = [np.sin(2 * np.pi * (150 + ord(c) % 400) * shift * t) for c in chars]
        x = (level * np.concatenate(pieces)).astype(np.float32)
        if "QUIET" in text:
            x[:] = 0
        return x, sr, info
