"""On-disk contracts, documented and validated in one place.

BEIR layout (a dataset folder)::

    corpus.jsonl          {"_id": str, "title": str (optional), "text": str}   one per line
    queries.jsonl         {"_id": str, "text": str}                          one per line
    qrels/{split}.tsv     query-id <TAB> corpus-id <TAB> score (int)           header line optional

Teacher scores (distillation), any path::

    qid <TAB> docid <TAB> score (float)                                        one pair per line

Every reader fails with ``FormatError`` naming the file, the line number and the field, so a
bad line in a million-line file is found at once. Writers go through a temporary file (or
folder) and a rename, so readers never see half a file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from scaling.io import atomic_dir, write_atomic

COMPLETE_MARKER = ".complete"


class FormatError(ValueError):
    """A malformed input line: the message names file, line and field."""

    def __init__(self, path, line: int | None, message: str):
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


@dataclass
class Dataset:
    """A retrieval dataset in memory: id -> text maps and graded qrels per split."""

    name: str
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    def split_queries(self, split: str) -> dict[str, str]:
        """Queries that have judgements in ``split`` (id -> text), in qrels order."""
        if split not in self.qrels:
            raise KeyError(f"dataset {self.name!r} has no split {split!r}; "
                           f"it has {sorted(self.qrels)}")
        return {qid: self.queries[qid] for qid in self.qrels[split]}


def _str_field(path, lineno, record, key, required=True):
    value = record.get(key)
    if value is None:
        if required:
            raise FormatError(path, lineno, f"missing field {key!r}")
        return ""
    if isinstance(value, (int, float)) and key == "_id":
        value = str(value)
    if not isinstance(value, str):
        raise FormatError(path, lineno, f"field {key!r} must be a string, got {type(value).__name__}")
    return value


def _json_error(e: json.JSONDecodeError) -> str:
    """``not valid JSON at column C (reason)``: the column (1-based, in characters) points at the
    bad spot of a long line, which the line number alone does not."""
    return f"not valid JSON at column {e.colno} ({e.msg})"


def read_jsonl_texts(path: Path, with_title: bool) -> dict[str, str]:
    """Read corpus.jsonl or queries.jsonl into id -> text ("title text" when a title exists)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing (a BEIR dataset folder needs corpus.jsonl, "
                                "queries.jsonl and qrels/<split>.tsv)")
    out: dict[str, str] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise FormatError(path, lineno, _json_error(e)) from None
            if not isinstance(record, dict):
                raise FormatError(path, lineno, "expected a JSON object")
            rid = _str_field(path, lineno, record, "_id")
            text = _str_field(path, lineno, record, "text")
            title = _str_field(path, lineno, record, "title", required=False) if with_title else ""
            if rid in out:
                raise FormatError(path, lineno, f"field '_id': duplicate id {rid!r}")
            out[rid] = f"{title} {text}".strip() if title else text
    return out


def _tsv_rows(path: Path):
    """Yield (line number, tab-separated fields) for every non-blank line."""
    with Path(path).open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n\r")
            if line.strip():
                yield lineno, line.split("\t")


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Read a qrels TSV (query-id, corpus-id, score) into {qid: {docid: grade}}."""
    path = Path(path)
    out: dict[str, dict[str, int]] = {}
    for lineno, cols in _tsv_rows(path):
        if lineno == 1 and cols[0] == "query-id":
            continue
        if len(cols) == 4:  # TREC style: qid 0 docid rel
            cols = [cols[0], cols[2], cols[3]]
        if len(cols) != 3:
            raise FormatError(path, lineno, "expected 3 tab-separated fields "
                              f"(query-id, corpus-id, score), got {len(cols)}")
        qid, docid, score = cols
        try:
            grade = int(float(score))
        except ValueError:
            raise FormatError(path, lineno, f"field 'score' must be a number, got {score!r}") from None
        out.setdefault(qid, {})[docid] = grade
    return out


def load_beir(root: Path, name: str | None = None, splits=None) -> Dataset:
    """Load and validate a BEIR-layout folder; qrels must point at known queries and documents."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    corpus = read_jsonl_texts(root / "corpus.jsonl", with_title=True)
    queries = read_jsonl_texts(root / "queries.jsonl", with_title=False)
    qrel_dir = root / "qrels"
    available = sorted(p.stem for p in qrel_dir.glob("*.tsv")) if qrel_dir.is_dir() else []
    if not available:
        raise FileNotFoundError(f"{qrel_dir} holds no <split>.tsv files")
    qrels = {}
    for split in (splits or available):
        path = qrel_dir / f"{split}.tsv"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing; this dataset has splits {available}")
        qrels[split] = read_qrels(path)
        for qid, docs in qrels[split].items():
            if qid not in queries:
                raise FormatError(path, None, f"query-id {qid!r} is not in queries.jsonl")
            missing = [d for d in docs if d not in corpus]
            if missing:
                raise FormatError(path, None, f"corpus-id {missing[0]!r} (query {qid!r}) "
                                  "is not in corpus.jsonl")
    return Dataset(name or root.name, corpus, queries, qrels)


def _write_jsonl(path: Path, records) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def write_beir(out_dir: Path, docs: list[dict], queries: list[dict],
               qrels: dict[str, dict[str, dict[str, int]]]) -> None:
    """Write a BEIR folder atomically: build in a temp sibling, mark complete, rename."""
    with atomic_dir(out_dir) as tmp:
        _write_jsonl(tmp / "corpus.jsonl", docs)
        _write_jsonl(tmp / "queries.jsonl", queries)
        (tmp / "qrels").mkdir()
        for split, table in qrels.items():
            with (tmp / "qrels" / f"{split}.tsv").open("w", encoding="utf-8") as f:
                f.write("query-id\tcorpus-id\tscore\n")
                for qid, docs_ in table.items():
                    for docid, rel in docs_.items():
                        f.write(f"{qid}\t{docid}\t{rel}\n")
        (tmp / COMPLETE_MARKER).write_text("")


def write_scores(path: Path, scores: dict[tuple[str, str], float]) -> None:
    """Write {(qid, docid): score} as the teacher-score TSV, sorted, atomically."""
    def write(f):
        for (qid, docid), score in sorted(scores.items()):
            f.write(f"{qid}\t{docid}\t{score:.6g}\n")
    write_atomic(path, write)


# Training groups (BM25 hard negatives), one JSON object per line:
#   {"qid": str, "positives": [docid, ...], "negatives": [docid, ...]}   negatives best first
def write_groups(path: Path, groups: list[dict]) -> None:
    write_atomic(path, lambda f: f.writelines(json.dumps(g, ensure_ascii=False) + "\n" for g in groups))


def read_groups(path: Path) -> dict[str, dict]:
    """Read a groups JSONL into {qid: {"positives": [...], "negatives": [...]}}."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"training groups {path} do not exist (python recipes/prepare.py builds them)")
    out = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise FormatError(path, lineno, _json_error(e)) from None
            qid = _str_field(path, lineno, rec, "qid")
            for key in ("positives", "negatives"):
                ids = rec.get(key)
                if not isinstance(ids, list) or not all(isinstance(d, str) for d in ids):
                    raise FormatError(path, lineno, f"field {key!r} must be a list of document ids")
            out[qid] = {"positives": rec["positives"], "negatives": rec["negatives"]}
    return out


# Teacher scores: one line per (query, candidate): qid <TAB> docid <TAB> score (float).
def read_scores(path: Path) -> dict[str, dict[str, float]]:
    """Read a teacher-score TSV into {qid: {docid: score}}; a repeated pair is an error."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"teacher scores {path} do not exist (TSV: qid<TAB>docid<TAB>score)")
    out: dict[str, dict[str, float]] = {}
    for lineno, cols in _tsv_rows(path):
        if len(cols) != 3:
            raise FormatError(path, lineno, "expected 3 tab-separated fields (qid, docid, score), "
                              f"got {len(cols)}")
        qid, docid, score = cols
        try:
            value = float(score)
        except ValueError:
            raise FormatError(path, lineno, f"field 'score' must be a number, got {score!r}") from None
        if docid in out.setdefault(qid, {}):
            raise FormatError(path, lineno, f"duplicate pair ({qid!r}, {docid!r})")
        out[qid][docid] = value
    return out
