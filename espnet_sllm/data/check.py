"""Up-front checks of ESPnet data files, so bad input fails with file and line, not mid-epoch.

ESPnet reads audio lazily; a missing file surfaces as a libsndfile error without the path,
possibly hours into training. These checks run before the loaders are built.
"""
import os
from typing import Iterable, Sequence, Tuple

SOUND_TYPES = ("sound", "multi_columns_sound", "variable_columns_sound")


def check_sound_scp(path: str) -> int:
    """Every ``<key> <wav path>`` line names an existing file (pipes ``cmd |`` are not checked).

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
                raise FileNotFoundError(
                    f"{path}:{lineno}: audio file of '{parts[0]}' not found: {value}"
                )
    return n


def check_data_triples(triples: Iterable[Sequence[str]]) -> None:
    """Check the ``path,name,type`` triples of ``--*data_path_and_name_and_type``."""
    for path, _, kind in triples:
        if kind in SOUND_TYPES:
            check_sound_scp(path)
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
