"""Generated config files of a recipe: one YAML style, written or checked against the committed copy.

ESPnet YAML has no includes, so a recipe whose systems share most settings keeps one generator
(``egs2/<recipe>/local/make_configs.py``) that builds every config as a dict; these helpers
render the dicts the same way for every recipe and either write the files or, with
``--check``, compare them with what is committed (a test runs the check).
"""
import argparse
import difflib
import os
import sys
from typing import Callable, Dict, List, Optional, Sequence

import yaml


def missing_local(value: str) -> bool:
    """A config value written as a local path (not a hub id) that does not exist."""
    return value.startswith(("/", "./", "../", "~")) and not os.path.exists(
        os.path.expanduser(value))


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, s):
    # Quote what YAML would otherwise mangle or what readers misread: newlines, outer blanks,
    # placeholders ({speech}) and colons.
    style = '"' if ("\n" in s or s != s.strip() or "{" in s or ":" in s) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", s, style=style)


_Dumper.add_representer(str, _str)


def render_config(header: Sequence[str], config: dict) -> str:
    """``# <line>`` for each header line, then ``config`` as block YAML with flow-style leaves,
    keys in the dict's order, unicode as is."""
    body = yaml.dump(config, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=None, width=100)
    return "".join(f"# {line}\n" for line in header) + body


def write_or_check(root: str, files: Dict[str, str], check: bool, source: str) -> int:
    """Write ``files`` (path under ``root`` -> text) where they differ, or with ``check`` print a
    diff of each that differs; returns 1 when ``check`` found a difference, else 0."""
    status = 0
    for name, text in files.items():
        path = os.path.join(root, name)
        old = open(path, encoding="utf-8").read() if os.path.isfile(path) else None
        if old == text:
            continue
        if check:
            status = 1
            print(f"{path}: differs from {source}", file=sys.stderr)
            sys.stderr.writelines(difflib.unified_diff(
                (old or "").splitlines(True), text.splitlines(True), path, "generated", n=1))
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote {path}")
    return status


def make_configs_main(doc: str, root: str, configs: Callable[[], Dict[str, str]],
                      argv: Optional[List[str]] = None) -> int:
    """The command line of a recipe's ``local/make_configs.py`` (its docstring ``doc`` holds a
    ``Usage:`` block): write ``configs()`` under ``root``, or compare with ``--check``."""
    parser = argparse.ArgumentParser(
        description=doc.split("Usage:")[0], epilog="Usage:" + doc.split("Usage:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="compare instead of writing; exit 1 when a file differs")
    args = parser.parse_args(argv)
    return write_or_check(root, configs(), args.check, "local/make_configs.py")
