"""Text-to-speech backends: the speech of text-only corpora (WMT19, Alpaca-zh of
egs2/aishell_wmt) is synthesised by ``python -m espnet_sllm.bin.synthesize``; ``command``
(`CommandTTS`) runs an external voice-cloning program per utterance (F5-TTS, Spark-TTS: the
English accents of ILT, `espnet_sllm.data.accent_tts`).

``load_tts(name_or_path, conf)`` builds a backend from a registry name (`tts_classes`) or a
``module:Class`` path of any `AbsTTS` subclass, with ``conf`` as its constructor arguments.
"""
import importlib
import inspect
from typing import Any, Dict, Mapping, Optional, Sequence, Type

from espnet_sllm.tts.abs_tts import AbsTTS, SynthesisFailed, TextNotSpeakable
from espnet_sllm.tts.command import CommandTTS
from espnet_sllm.tts.espeak import EspeakTTS

# Names accepted by --tts (a module:Class path is accepted too).
tts_classes: Dict[str, Type[AbsTTS]] = {"command": CommandTTS, "espeak": EspeakTTS}


def resolve_tts(name_or_path: str) -> Type[AbsTTS]:
    """The class of a registry name or a ``module:Class`` path; an unknown name, a path that
    does not import, or a class that is not an AbsTTS is a ValueError saying so."""
    if name_or_path in tts_classes:
        return tts_classes[name_or_path]
    if ":" not in name_or_path:
        raise ValueError(f"unknown TTS {name_or_path!r}: valid names are "
                         f"{', '.join(sorted(tts_classes))}, or module:Class of an AbsTTS")
    module_name, _, attr = name_or_path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"TTS {name_or_path!r}: cannot import {module_name}: {e}") from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise ValueError(f"TTS {name_or_path!r}: module {module_name} has no {attr!r}")
    if not (inspect.isclass(cls) and issubclass(cls, AbsTTS)):
        raise ValueError(f"TTS {name_or_path!r} is not a subclass of "
                         f"espnet_sllm.tts.abs_tts.AbsTTS")
    return cls


def tts_name(tts: AbsTTS) -> str:
    """The registry name of ``tts``'s class, else its ``module:Class`` path."""
    for name, cls in tts_classes.items():
        if type(tts) is cls:
            return name
    return f"{type(tts).__module__}:{type(tts).__qualname__}"


def load_tts(name_or_path: str, conf: Optional[Mapping[str, Any]] = None) -> AbsTTS:
    """Build a backend: ``conf`` holds its constructor arguments; an argument the class does
    not take is a ValueError listing those it takes."""
    cls = resolve_tts(name_or_path)
    conf = dict(conf or {})
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        valid = [n for n in params if n != "self"]
        bad = sorted(k for k in conf if k not in valid)
        if bad:
            raise ValueError(f"TTS {name_or_path!r}: unknown option(s) {', '.join(bad)} "
                             f"(--tts_conf); valid: {', '.join(valid) or 'none'}")
    return cls(**conf)


__all__ = ["AbsTTS", "CommandTTS", "EspeakTTS", "SynthesisFailed", "TextNotSpeakable", "load_tts",
           "resolve_tts", "tts_classes", "tts_name"]


def parse_tts_conf(items: Sequence[str]) -> Dict[str, Any]:
    """``--tts_conf key=value ...`` -> constructor arguments, each value read as YAML
    (numbers, lists, strings); an item without ``=`` is a ValueError naming it."""
    import yaml

    conf: Dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--tts_conf {item!r}: expected key=value")
        conf[key] = yaml.safe_load(value) if value else ""
    return conf
