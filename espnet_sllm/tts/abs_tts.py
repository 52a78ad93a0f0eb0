"""The contract of a text-to-speech backend (`espnet_sllm.tts.synthesize` speaks data directories
with one).

A backend offers a list of voices and synthesises one text in one of them; everything random
about an utterance (pitch, speed, loudness, a neural model's sampling) comes from the
``numpy.random.Generator`` it is given, which the caller seeds per utterance id, so that an
utterance sounds the same whatever the number of jobs and whether the run was interrupted.

A new backend (e.g. a neural TTS) subclasses `AbsTTS`, takes its options as constructor
arguments (``--tts_conf key=value``) and is used as ``--tts my.module:MyTTS`` without being
registered (or is added to ``espnet_sllm.tts.tts_classes``)::

    class MyTTS(AbsTTS):
        def __init__(self, model_dir: str, temperature: float = 0.7): ...
        def voices(self): return ["spk0", "spk1"]
        def synthesize(self, text, voice, rng): return wav_float32, 24000
"""
from abc import ABC, abstractmethod
from typing import Any, Dict, List, Tuple

import numpy as np


class TextNotSpeakable(ValueError):
    """Raised by a backend for a text it cannot read (nothing pronounceable, an alphabet it
    does not know): the utterance is dropped and counted, the run goes on.  Any other
    exception but `SynthesisFailed` stops the run (a broken backend must not silently drop
    everything)."""


class SynthesisFailed(RuntimeError):
    """Raised by a backend when one utterance could not be made although the text is fine (an
    external program exited with an error, timed out or wrote no audio: `CommandTTS`).  The
    utterance is dropped and counted as ``failed`` and the run goes on, but
    `espnet_sllm.tts.synthesize.synthesize_dir` stops with an error once more than its
    ``max_fail_ratio`` of the utterances failed; a rerun tries the failed ones again."""


class AbsTTS(ABC):
    """A TTS backend: ``voices()`` and ``synthesize(text, voice, rng)``."""

    @abstractmethod
    def voices(self) -> List[str]:
        """The voices (speakers) this backend can speak with; the caller draws one per
        utterance."""

    @abstractmethod
    def synthesize(self, text: str, voice: str,
                   rng: np.random.Generator) -> Tuple[np.ndarray, int]:
        """``text`` spoken by ``voice``: (mono float32 samples in [-1, 1], sample rate).
        Every other random choice is drawn from ``rng``."""

    def synthesize_with_info(self, text: str, voice: str, rng: np.random.Generator
                             ) -> Tuple[np.ndarray, int, Dict[str, Any]]:
        """`synthesize` plus what was drawn for this utterance (e.g. ``pitch``, ``speed``),
        written to ``tts_log.jsonl``.  Override it when the backend draws such values; the
        default reports nothing more than the voice."""
        wav, sr = self.synthesize(text, voice, rng)
        return wav, sr, {}

    def check(self) -> None:
        """Raise (RuntimeError, naming what is missing) when the backend cannot work, e.g. a
        program or a model file that is not there.  Called once before any work."""

    def config(self) -> Dict[str, Any]:
        """What determines this backend's output (its constructor arguments): recorded in an
        output folder, whose rerun with another configuration is refused."""
        return {}
