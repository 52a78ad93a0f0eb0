"""Prompt templates with one ``{speech}`` placeholder.

A template is plain text, e.g. ``"<|Human|><|startofaudio|>{speech}<|endofaudio|><|asr|><|Assistant|>"``
or ``"{speech} Transcribe speech to text."``. Other ``{name}`` placeholders are filled from the
utterance's data fields (``lang``, ``text_prev``, ``text_next``, ...). Literal braces are written
``{{`` and ``}}`` as in Python's ``str.format``.
"""
import string
from typing import Callable, List, Mapping, Optional, Sequence, Tuple, Union

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
    """Picks the template of an utterance by one or more of its fields (``prompt_key``).

    ``templates`` is one template string for every utterance, or a mapping nested as deep as
    ``keys`` (default ``("lang",)``): level i maps a value of field ``keys[i]`` to the next level
    or to a template. E.g. ``keys=("task", "lang")`` with ``{st: {English: ..., default: ...},
    asr: "...", default: "..."}``. Every level may hold a ``default`` entry (used when the
    value has no entry or the utterance lacks the field); a string before the last level serves
    every value of the remaining keys. At the level of ``lang`` a label ``English-American``
    falls back to ``English`` (the part before the first ``-``), then to ``default``, as before.
    ``select`` raises KeyError naming the key, its value and the entries that exist there.
    """

    LANGUAGE_KEY = "lang"

    def __init__(self, templates: Union[str, Mapping], keys: Sequence[str] = ("lang",),
                 leaf: Callable[[str], object] = PromptTemplate,
                 what: str = "prompt_template"):
        """``leaf`` builds a template object from a string (``PromptTemplate``; the target
        selector uses ``TargetTemplate``); ``what`` names the option in messages."""
        self.leaf = leaf
        self.what = what
        if isinstance(keys, str):
            keys = [k.strip() for k in keys.split(",")]
        self.keys: Tuple[str, ...] = tuple(keys)
        if not self.keys or not all(isinstance(k, str) and k for k in self.keys) \
                or len(set(self.keys)) != len(self.keys):
            raise ValueError(f"prompt_key must be distinct non-empty field names, got {keys!r}")
        if isinstance(templates, str):
            templates = {"default": templates}
        if not templates:
            raise ValueError(f"no {what} given")
        self.tree = self._build(templates, 0, ())
        # Kept for callers that read the flat table of a one-key selector.
        self.templates = self.tree

    def _build(self, node, depth: int, path: Tuple[str, ...]):
        if isinstance(node, str):
            return self.leaf(node)
        where = self.what + "".join(f"[{p!r}]" for p in path)
        if not isinstance(node, Mapping) or not node:
            raise ValueError(f"{where}: expected a template string or a non-empty mapping, "
                             f"got {node!r}")
        if depth >= len(self.keys):
            raise ValueError(
                f"{where}: nested deeper than prompt_key {','.join(self.keys)} "
                f"({len(self.keys)} level(s)); got a mapping {dict(node)!r}"
            )
        return {str(k): self._build(v, depth + 1, path + (str(k),)) for k, v in node.items()}

    def leaves(self) -> List:
        """Every template of the tree."""
        out, todo = [], [self.tree]
        while todo:
            node = todo.pop()
            if isinstance(node, dict):
                todo.extend(node.values())
            else:
                out.append(node)
        return out

    def select(self, values: Union[None, str, Mapping[str, Optional[str]]] = None):
        """The template for ``values`` (field -> value; a plain string is the first key's)."""
        if not isinstance(values, Mapping):
            values = {self.keys[0]: values}
        node = self.tree
        path = []
        for key in self.keys:
            if not isinstance(node, dict):
                return node
            value = values.get(key)
            value = value.strip() if isinstance(value, str) else value
            tries = [value, (value or "").split("-")[0]] if key == self.LANGUAGE_KEY else [value]
            for k in tries + ["default"]:
                if k and k in node:
                    node = node[k]
                    break
            else:
                where = "".join(f"[{p!r}]" for p in path)
                raise KeyError(
                    f"no {self.what.replace('_', ' ')} for {key}={value!r}{' under ' + where if where else ''}"
                    f" (prompt_key {','.join(self.keys)}) and no 'default' one; they exist "
                    f"for {sorted(node)}"
                )
            path.append(k)
        return node


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


class TargetTemplate:
    """The CE target built from an utterance's string fields (``target_template``).

    ``{text}`` (the default) is the transcript as before; ``{text_tgt}`` a translation; a
    chain-of-thought target writes both, e.g. ``"{text} <translation> {text_tgt}"``. Fields are
    stripped before they are inserted; literal braces are ``{{`` / ``}}``. ``hyp_marker``
    (optional) declares the hypothesis post-processing that matches this target: the scored
    answer is the text after the marker (``sllm_score --hyp_marker``), so the marker must
    appear in the template's literal text.
    """

    def __init__(self, template: str = "{text}", hyp_marker: Optional[str] = None):
        if not isinstance(template, str):
            raise TypeError(f"target_template must be a string, got {type(template).__name__}")
        parsed = list(string.Formatter().parse(template))
        names = [f for _, f, spec, conv in parsed if f is not None]
        if not names:
            raise ValueError(f"target_template must use at least one {{field}}: {template!r}")
        bad = [f for f in names if not f.isidentifier()]
        if bad:
            raise ValueError(f"target_template: {bad} are not field names: {template!r}")
        self.template = template
        self.fields = sorted(set(names))
        literal = "".join(lit for lit, _, _, _ in parsed)
        self.literal = literal
        if hyp_marker is not None and (not hyp_marker.strip() or hyp_marker not in literal):
            raise ValueError(
                f"hyp_marker {hyp_marker!r} must be non-blank and appear in the literal text of "
                f"target_template {template!r} (scoring keeps the hypothesis after it)"
            )
        self.hyp_marker = hyp_marker

    def render(self, fields: Mapping[str, str]) -> str:
        missing = [f for f in self.fields if f not in fields]
        if missing:
            raise KeyError(
                f"target_template needs field(s) {missing} that this utterance lacks "
                f"(available: {sorted(fields)}); template: {self.template!r}"
            )
        return self.template.format(**{f: fields[f].strip() for f in self.fields}).strip()
