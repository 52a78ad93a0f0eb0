"""The package layout of README's "What is in the package" / "Adding a component"."""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "espnet_sllm"


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def test_no_production_module_imports_the_testing_kit():
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[:2] == ("espnet_sllm", "testing"):
            continue
        for lineno, name in _imports(path):
            if name == "espnet_sllm.testing" or name.startswith("espnet_sllm.testing."):
                bad.append(f"{rel}:{lineno}: {name}")
    assert not bad, "production modules import espnet_sllm.testing:\n" + "\n".join(bad)


def test_every_corpus_reader_has_its_test_file():
    readers = [p.stem for p in (PKG / "data" / "corpora").glob("*.py") if p.stem != "__init__"]
    assert "reader_utils" in readers and "mlc_slm" in readers
    missing = [r for r in readers
               if not (ROOT / "tests" / "data" / "corpora" / f"test_{r}.py").is_file()]
    assert not missing, f"corpus readers without tests/data/corpora/test_<name>.py: {missing}"


def test_data_holds_only_kaldi_directory_tools():
    # Readers go to data/corpora/, synthesisers to data/synth/ (README "Adding a component").
    tools = sorted(p.stem for p in (PKG / "data").glob("*.py") if p.stem != "__init__")
    assert tools == ["accent_tts", "balance", "check", "context_copy", "filtering", "formatting",
                     "kaldi_dir", "relabel", "sample_hours", "speaker_select", "splits", "subset",
                     "token_select"], tools


def test_bin_holds_thin_entry_points():
    """bin/ is command lines: argument parsing and a call into the package (README "Adding a
    component"); the logic of stages 2-3, decoding and the job launcher lives in data/formatting.py,
    data/filtering.py, decoding/inference.py and jobs.py, importable without a command line."""
    long = {}
    for path in sorted((PKG / "bin").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        n_lines = len(path.read_text(encoding="utf-8").splitlines())
        defs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        if n_lines > 170 or len(defs) > 5:
            long[path.name] = (n_lines, defs)
        assert path.name == "__init__.py" or path.name == "cli.py" or "main" in defs, path.name
    assert not long, f"bin/ modules that are more than a command line: {long}"
