"""Up-front checks of ESPnet data files, so bad input fails with file and line, not mid-epoch.

ESPnet reads audio lazily; a missing file surfaces as a libsndfile error without the path,
possibly hours into training. These checks run before the loaders are built: the files of
the data triples exist (`check_data_triples`), and the labels the prompts select on (the
language of every utterance, the ``prompt_key`` fields) are ones the config knows
(`check_prompt_labels`).
"""
import os
from collections import Counter
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

SOUND_TYPES = ("sound", "multi_columns_sound", "variable_columns_sound")


def data_parts(path: str) -> List[str]:
    """The files behind a data path: itself, or for a folder of ESPnet's
    ``--multiple_iterator`` (``num_splits`` + ``split.<i>``, espnet_sllm/data/splits.py) its
    parts."""
    marker = os.path.join(path, "num_splits")
    if os.path.isdir(path) and os.path.isfile(marker):
        with open(marker, encoding="utf-8") as f:
            n = int(f.read().strip())
        return [os.path.join(path, f"split.{i}") for i in range(n)]
    return [path]


def groups_by_part(group: str, triples: Sequence[Sequence[str]]) -> Dict[str, list]:
    """{group: triples}, or with split folders {"<group> part <i>": the triples of part i}."""
    parts = [data_parts(path) for path, _, _ in triples]
    n = max((len(p) for p in parts), default=1)
    if n == 1:
        return {group: list(triples)}
    return {f"{group} part {i}": [(p[i] if len(p) == n else p[0], name, kind)
                                  for p, (_, name, kind) in zip(parts, triples)]
            for i in range(n)}


def check_sound_scp(path: str, missing: Optional[list] = None) -> int:
    """Every ``<key> <wav path>`` line names an existing file (pipes ``cmd |`` are not checked).

    With a list ``missing`` (decoding: one missing file should not stop the others), an entry
    whose audio file does not exist is appended to it as ``(key, "<path>:<line>: audio file of
    '<key>' not found: <value>")`` instead of raising.

    An empty entry (a text-only utterance of a ``data/<set>`` directory) is an error pointing to
    stage 2: ESPnet's sound reader cannot read it, and ``format_data`` writes the WAV of 0
    samples that training and decoding read instead.
    Returns the number of entries; raises FileNotFoundError / ValueError naming file:line.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such data file")
    n = 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            if len(parts) == 1 and not line[0].isspace():
                raise ValueError(
                    f"{path}:{lineno}: '{parts[0]}' has an empty entry (a text-only utterance), "
                    f"which ESPnet cannot read: train and decode on the output of stage 2 "
                    f"(format_data writes a WAV of 0 samples for it)"
                )
            if len(parts) != 2:
                raise ValueError(f"{path}:{lineno}: expected '<key> <audio path>', got {line!r}")
            value = parts[1].strip()
            n += 1
            if value.endswith("|"):
                continue
            # ESPnet accepts "file.wav" and "file.ark:offset"-like values; check the file part.
            audio = value.split(":", 1)[0] if not os.path.exists(value) else value
            if not os.path.exists(audio):
                message = f"{path}:{lineno}: audio file of '{parts[0]}' not found: {value}"
                if missing is None:
                    raise FileNotFoundError(message)
                missing.append((parts[0], message))
    return n


def check_data_triples(triples: Iterable[Sequence[str]],
                       missing_audio: Optional[list] = None) -> None:
    """Check the ``path,name,type`` triples of ``--*data_path_and_name_and_type``.

    ``missing_audio``: a list that collects the entries of sound files whose audio file does
    not exist (see `check_sound_scp`) instead of raising; a missing data file is always an
    error."""
    for folder, _, kind in triples:
        for path in data_parts(folder):
            if kind in SOUND_TYPES:
                check_sound_scp(path, missing_audio)
            elif not os.path.exists(path):
                raise FileNotFoundError(f"data file not found: {path}")


def triples_from_argv(argv: Sequence[str]) -> Tuple[Tuple[str, str, str], ...]:
    """The triples given on a command line (``--x_data_path_and_name_and_type p,n,t``)."""
    out = []
    for i, arg in enumerate(argv):
        if arg.endswith("data_path_and_name_and_type") and i + 1 < len(argv):
            parts = argv[i + 1].split(",")
            if len(parts) == 3:
                out.append(tuple(parts))
    return tuple(out)


def check_prompt_labels(
    groups: Mapping[str, Sequence[Sequence[str]]],
    languages: Optional[Sequence[str]] = None,
    preprocessor_conf: Optional[Mapping] = None,
) -> int:
    """Every label the prompts select on is one the config knows, before ESPnet starts.

    The preprocessor checks these per utterance, so a bad label stops training at the first
    batch that holds it (hours in, for a rare language). Here every utterance's labels are read
    up front from the data files of each group of triples (``groups``: e.g. {"train":
    [(path, name, type), ...], "valid": [...]}, the ``--*_data_path_and_name_and_type`` of one
    data set), and

    * with ``languages`` (the task option), every label of the language file (data name
      ``preprocessor_conf.lang_name``, default ``lang``: utt2lang) must be in it;
    * with a ``prompt_template`` or ``target_template`` that is a mapping, the values of the
      ``prompt_key`` fields of every utterance must select a template (or a ``default``);
    * with ``context_templates``, every language label must select one (or a ``default``).

    Raises ValueError naming ``file:line``, the utterance, the label and the valid labels, and
    how many utterances of the file have such labels. Returns the number of utterances checked.
    """
    from espnet_sllm.data.kaldi_dir import read_kv_numbered
    from espnet_sllm.prompts.template import PromptSelector, select_by_language

    conf = dict(preprocessor_conf or {})
    lang_name = conf.get("lang_name", "lang")
    prompt_key = conf.get("prompt_key", "lang")
    keys = [k.strip() for k in prompt_key.split(",")] if isinstance(prompt_key, str) \
        else list(prompt_key)
    sel_keys = [PromptSelector.LANGUAGE_KEY if k == lang_name else k for k in keys]
    data_name = {PromptSelector.LANGUAGE_KEY: lang_name}
    selectors = []
    for what in ("prompt_template", "target_template"):
        tpl = conf.get(what)
        if isinstance(tpl, Mapping):
            selectors.append(PromptSelector(tpl, sel_keys, leaf=str, what=what))
    context = conf.get("context_templates") or None
    valid = list(languages) if languages else None
    n_checked = 0
    for group, triples in groups.items():
        if not triples:
            continue  # e.g. --dry_run without data
        files = {name: path for path, name, _ in triples}
        needed = {lang_name} | {data_name.get(k, k) for k in sel_keys}
        tables = {name: read_kv_numbered(files[name]) for name in needed if name in files}
        lang = tables.get(lang_name)
        if valid is not None and lang is not None:
            bad = [(u, v.strip(), n) for u, (v, n) in lang.items() if v.strip() not in valid]
            if bad:
                utt, label, lineno = bad[0]
                counts = Counter(b[1] for b in bad)
                raise ValueError(
                    f"{files[lang_name]}:{lineno}: utterance {utt}: language {label!r} is not "
                    f"in the config's languages; valid: {valid} ({len(bad)} utterance(s) of "
                    f"this file have labels outside it: "
                    + ", ".join(f"{k!r} x{c}" for k, c in counts.most_common(5)) + ")"
                )
        utts = sorted(set().union(*tables.values())) if tables else [None]
        n_checked += len(utts) if tables else 0
        seen = set()
        for utt in utts:
            values = {}
            for k in sel_keys:
                entry = tables.get(data_name.get(k, k), {}).get(utt)
                values[k] = entry[0].strip() if entry is not None else None
            ctx_lang = lang[utt][0].strip() if lang and utt in lang else None
            combo = (tuple(values.items()), ctx_lang)
            if combo in seen:
                continue
            seen.add(combo)
            try:
                for sel in selectors:
                    sel.select(values)
                if context is not None:
                    select_by_language(context, ctx_lang, "context template")
            except KeyError as e:
                if utt is None:
                    where = f"{group} data (none of {sorted(needed)} given)"
                else:
                    where = ", ".join(f"{files[name]}:{t[utt][1]}" for name, t in tables.items()
                                      if utt in t) + f": utterance {utt}"
                raise ValueError(f"{where}: {e.args[0]}") from None
    return n_checked
