"""The built-in offline code corpora, ``data=pycode`` (functions) and ``data=pyclass`` (whole
classes: long documents), over the running Python's stdlib.

Every machine with Python has it, so `make run` needs no download. Each public function or
method with a docstring of four or more words becomes one document and one query:

- query  = the first paragraph of its docstring, whitespace collapsed;
- document = the function's source with the docstring removed (dedented);
- docid = qid = its qualified name, e.g. ``json.decoder.JSONDecoder.decode``.

``pyclass`` does the same with each module's public classes that define a method: the query is
the class docstring's first paragraph, the document the whole class without that docstring (its
methods' docstrings kept): in SmolLM2 tokens median 372, 175 of 646 over 1,024, 32 over 4,096
and 6 over 8,192 (Gemma-3: 402, 186, 36, 8), for evaluating at long document lengths (Luo et al.).

Queries are split train/dev/test (~70/10/20) by a hash of the docid, so the split never
depends on iteration order; the corpus holds every function. Queries whose text occurs
twice are dropped (they would have two right answers), their documents stay.

What goes to disk: one BEIR-layout folder (see ``scaling.data.formats``), written into a
temporary sibling and renamed into place, so a killed build never leaves half a dataset.
"""

from __future__ import annotations

import ast
import hashlib
import os
import sys
import sysconfig
import textwrap
from collections import Counter
from pathlib import Path

from scaling.data import formats

# Folders of the stdlib that hold tests, demos or Python-2 sources, not library code.
_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__",
              "lib2to3", "turtledemo", "idlelib", "ensurepip", "venv", "pydoc_data"}
MIN_QUERY_WORDS = 4
SPLITS = (("train", 70), ("dev", 80), ("test", 100))


def split_of(docid: str) -> str:
    """Deterministic split by the docid's hash: train below 70, dev below 80, else test."""
    bucket = int(hashlib.sha1(docid.encode()).hexdigest(), 16) % 100
    return next(name for name, upper in SPLITS if bucket < upper)


def first_paragraph(docstring: str) -> str:
    """The docstring's first paragraph with whitespace collapsed to single spaces."""
    para = docstring.strip().split("\n\n")[0]
    return " ".join(para.split())


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _strip_docstring(lines: list[str], node: ast.AST) -> str | None:
    """Source of ``node`` (decorators included) with its docstring's lines cut, or None if empty."""
    doc_node = node.body[0]
    start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
    kept = lines[start:doc_node.lineno - 1] + lines[doc_node.end_lineno:node.end_lineno]
    body = node.body[1:]
    if not body or all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr)
                       and isinstance(s.value, ast.Constant)) for s in body):
        return None  # nothing but the docstring: no code to find
    return textwrap.dedent("".join(kept)).rstrip()


def _functions(tree: ast.Module, module: str):
    """Yield (qualified name, node) for public functions and methods of public classes."""
    def walk(body, prefix):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if not node.name.startswith("_"):
                    yield f"{prefix}.{node.name}", node
            elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                yield from walk(node.body, f"{prefix}.{node.name}")
    yield from walk(tree.body, module)


def _classes(tree: ast.Module, module: str):
    """Yield (qualified name, node) for a module's public classes that define a method: whole
    classes as documents, for long documents (``data=pyclass``)."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and \
                any(isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef)) for b in node.body):
            yield f"{module}.{node.name}", node


UNITS = {"pycode": _functions, "pyclass": _classes}
"""What a built-in code corpus makes a document of: a function or method, or a whole class."""


def stdlib_files(root: Path | None = None) -> list[Path]:
    """Public stdlib modules, sorted so the build is deterministic."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("_"))
        for name in sorted(filenames):
            if name.endswith(".py") and (name == "__init__.py" or not name.startswith(("_", "test_"))):
                out.append(Path(dirpath) / name)
    return sorted(out)


def extract(root: Path | None = None, name: str = "pycode") -> tuple[list[dict], list[dict], dict[str, list[str]]]:
    """Return (corpus records, query records, {split: [qid, ...]}) from the stdlib at ``root``,
    one per function (``pycode``) or per class (``pyclass``)."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    docs, queries, seen = [], [], set()
    for path in stdlib_files(root):
        try:
            source = path.read_text(encoding="utf-8")
            tree = ast.parse(source)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue  # a few stdlib files are deliberately not Python 3 / not UTF-8
        lines = source.splitlines(keepends=True)
        for docid, node in UNITS[name](tree, _module_name(path, root)):
            doc = ast.get_docstring(node)
            if not doc or docid in seen:
                continue
            query = first_paragraph(doc)
            if len(query.split()) < MIN_QUERY_WORDS:
                continue
            text = _strip_docstring(lines, node)
            if text is None:
                continue
            seen.add(docid)
            docs.append({"_id": docid, "title": "", "text": text})
            queries.append({"_id": docid, "text": query})
    counts = Counter(q["text"] for q in queries)
    queries = [q for q in queries if counts[q["text"]] == 1]
    splits: dict[str, list[str]] = {name: [] for name, _ in SPLITS}
    for q in queries:
        splits[split_of(q["_id"])].append(q["_id"])
    return docs, queries, splits


def default_dir(cache: Path, name: str = "pycode") -> Path:
    """Where ``data=pycode`` (or ``pyclass``) lives: keyed by the Python version, whose stdlib it is."""
    v = sys.version_info
    return Path(cache) / "data" / f"{name}-py{v.major}.{v.minor}.{v.micro}"


def build(out_dir: Path, root: Path | None = None, quiet: bool = False, name: str = "pycode") -> Path:
    """Build the corpus into ``out_dir`` once; return it. An existing complete folder is reused."""
    out_dir = Path(out_dir)
    if (out_dir / formats.COMPLETE_MARKER).exists():
        return out_dir
    docs, queries, splits = extract(root, name)
    return write(out_dir, name, docs, queries, splits, quiet)


def write(out_dir: Path, name: str, docs: list[dict], queries: list[dict], splits: dict[str, list[str]],
          quiet: bool = False, source: str = "") -> Path:
    """Write a built-in corpus whose query i is answered by document i (qid = docid), atomically."""
    qrels = {split: {qid: {qid: 1} for qid in qids} for split, qids in splits.items()}
    formats.write_beir(out_dir, docs, queries, qrels)
    if not quiet:
        sizes = ", ".join(f"{split} {len(q)}" for split, q in splits.items())
        print(f"[data] built {name} at {out_dir}{source}: {len(docs)} documents, "
              f"{len(queries)} queries ({sizes})", flush=True)
    return out_dir
