"""Prompt templates with one ``{speech}`` placeholder.

A template is plain text, e.g. ``"<|Human|><|startofaudio|>{speech}<|endofaudio|><|asr|><|Assistant|>"``
or ``"{speech} Transcribe speech to text."``. Other ``{name}`` placeholders are filled from the
utterance's data fields (``lang``, ``text_prev``, ``text_next``, ...). Literal braces are written
``{{`` and ``}}`` as in Python's ``str.format``.
"""
import string
from typing import Dict, Mapping, Tuple, Union

SPEECH = "speech"


class PromptTemplate:
    """One template; ``render(fields) -> (text_before_speech, text_after_speech)``."""

    def __init__(self, template: str):
        if not isinstance(template, str):
            raise TypeError(f"prompt template must be a string, got {type(template).__name__}")
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        if names.count(SPEECH) != 1:
            raise ValueError(
                f"prompt template must contain exactly one {{speech}} placeholder, found "
                f"{names.count(SPEECH)}: {template!r}"
            )
        self.template = template
        self.fields = sorted(set(names) - {SPEECH})
        # Split on the placeholder itself so the halves keep their own escapes.
        marker = "\0SPEECH\0"
        self._before, self._after = template.replace("{speech}", marker).split(marker)

    def render(self, fields: Mapping[str, str]) -> Tuple[str, str]:
        missing = [f for f in self.fields if f not in fields]
        if missing:
            raise KeyError(
                f"prompt template needs field(s) {missing} that this utterance lacks "
                f"(available: {sorted(fields)}); template: {self.template!r}"
            )
        return self._before.format(**fields), self._after.format(**fields)


class PromptSelector:
    """Picks the template of an utterance by its language label.

    ``templates`` is one template string for every utterance, or a mapping from language label
    (e.g. ``Japanese``, ``English-American``, ``English``) to template with an optional
    ``default`` entry. A label ``English-American`` falls back to ``English`` (the part before
    the first ``-``), then to ``default``.
    """

    def __init__(self, templates: Union[str, Mapping[str, str]]):
        if isinstance(templates, str):
            templates = {"default": templates}
        if not templates:
            raise ValueError("no prompt template given")
        self.templates: Dict[str, PromptTemplate] = {
            k: PromptTemplate(v) for k, v in templates.items()
        }

    def select(self, lang: str = None) -> PromptTemplate:
        return select_by_language(self.templates, lang, "prompt template")


def select_by_language(table: Mapping, lang: str = None, what: str = "entry"):
    """``table[lang]``, else ``table[language part of lang]`` (before ``-``), else ``table['default']``."""
    for key in (lang, (lang or "").split("-")[0], "default"):
        if key and key in table:
            return table[key]
    raise KeyError(
        f"no {what} for language {lang!r} and no 'default' one; they exist for {sorted(table)}"
    )


class ContextPrompt:
    """Renders the ``{context}`` field of a template from the neighbouring utterances.

    ``templates`` maps a language (with ``default`` fallback, as PromptSelector) to
    ``{"history": "... {text_prev} ...", "future": "... {text_next} ..."}``; either may be absent
    (S2 of the bi-directional-context paper uses history only, S3 both). A side whose text is
    empty (the first/last segment of a session, or a decoding pass without context) is left out,
    so "only one side exists" gives only that half of the prompt and none gives ``""``.
    """

    SIDES = (("history", "text_prev"), ("future", "text_next"))

    def __init__(self, templates: Mapping[str, Mapping[str, str]]):
        if not templates:
            raise ValueError("context_templates is empty")
        for lang, sides in templates.items():
            unknown = set(sides) - {"history", "future"}
            if unknown:
                raise ValueError(
                    f"context_templates[{lang!r}]: unknown side(s) {sorted(unknown)}; "
                    f"valid: history, future"
                )
            for side, field in self.SIDES:
                if side in sides and "{" + field + "}" not in sides[side]:
                    raise ValueError(
                        f"context_templates[{lang!r}][{side!r}] must contain {{{field}}}: "
                        f"{sides[side]!r}"
                    )
        self.templates = dict(templates)

    def render(self, lang: str, fields: Mapping[str, str]) -> str:
        sides = select_by_language(self.templates, lang, "context template")
        out = []
        for side, field in self.SIDES:
            value = (fields.get(field) or "").strip()
            if side in sides and value:
                out.append(sides[side].replace("{" + field + "}", value))
        return "".join(out)
