"""Distillation teacher files in the layouts researchers already have, read into one record.

``read(path)`` finds the layout from the content (``detect``: a pickle by its protocol byte, a
JSON line by its keys, a TSV line by its number of fields) or takes it by name (``format=``). A
file that starts with gzip's magic bytes (1f 8b) is read through gzip, whatever its name. Every
id becomes ``str`` (MS MARCO files hold ints), every score ``float``. The ``TeacherFile`` holds
``scores`` {qid: {docid: score}}, ``pools`` {qid: [negative docid, ...]} (file order, no repeats)
and ``positives`` {qid: [docid, ...]}; a layout that names none of one leaves it ``{}``. A query
on several lines gathers them all; a pair scored again more than 1e-3 away from its first score
is an error (in ``tsv`` any repeated pair is, as in formats.read_scores).

Layouts (``FORMATS``)::

    tsv             qid <TAB> docid <TAB> score                                  (formats.py's contract)
    margin_mse      pos_score <TAB> neg_score <TAB> qid <TAB> pid_pos <TAB> pid_neg  (Hofstaetter et al.;
                    the positive's pair repeats on many lines by design, with one score)
    pickle          {qid: {pid: score}}: sentence-transformers'
                    cross-encoder-ms-marco-MiniLM-L-6-v2-scores.pkl.gz; scores only
    hard_negatives  {"qid": int, "pos": [pid], "neg": {system: [pid, ...]}}: sentence-transformers'
                    msmarco-hard-negatives.jsonl.gz; pool = the systems' lists interleaved by rank
                    (``systems`` picks them, default all in the line's order; one no line has is a
                    ValueError) minus the positives
    zeng_triples    {"question": q, "pos_pid": pid (a list is taken too), "neg_pids": [pid, ...]}
    zeng_margin     the same plus "pos_score": x, "neg_scores": [x, ...] (one per negative)
    zeng_scores     {"query": q, "docids": [pid, ...], "scores": [x, ...]}  docids[0] is the positive
    tevatron        {"query_id": str, "query": str, "positive_passages": [{"docid": str, "title": str,
                    "text": str, "score"?: float}], "negative_passages": [...]}; scores where given

Zeng et al.'s keys are those HansiZeng/scaling-retriever reads in
``scaling_retriever/dataset/dataset.py``: ``DualEncoderDatasetForNCE`` (loss nce) reads
question/pos_pid/neg_pids; ``DualEncoderDatasetForKLDiv`` (kldiv, nce_kldiv) adds pos_score and
neg_scores (asserting one score per negative); ``DualEncoderDatasetForMarginMSE`` (margin_mse)
reads query/docids/scores and takes docids[0] (scores[0]) as the positive, the rest as negatives.
There "question"/"query" hold the query *text* (the collator tokenizes it), pids are strings. So a
Zeng line is keyed by a "qid" field where it has one, else by that text: match such a file against
query texts, or map texts to ids first.

A pickle is code: it loads through an unpickler that admits only the globals numpy scalars need
and refuses any other (``posix.system``, ...) with a ``FormatError``. Errors name the file, the
line (a pickle has none: the query key instead) and the field, like formats.py.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import numbers
import pickle
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from scaling.data.formats import FormatError, _json_error
from scaling.data.pools import interleave

FORMATS = ("tsv", "pickle", "hard_negatives", "margin_mse", "zeng_triples", "zeng_scores",
           "zeng_margin", "tevatron")
SCORE_TOLERANCE = 1e-3
# Detection: the first layout whose keys the first line has (reading then checks every field).
_JSON_KEYS = (("tevatron", {"positive_passages"}), ("hard_negatives", {"pos", "neg"}),
              ("zeng_margin", {"pos_score", "neg_scores"}), ("zeng_triples", {"pos_pid", "neg_pids"}),
              ("zeng_scores", {"docids", "scores"}))
# numpy scalars pickle as scalar(dtype(...), bytes); protocol 2 spells the bytes _codecs.encode(str).
_PICKLE_GLOBALS = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                   ("numpy", "dtype"), ("_codecs", "encode")}


@dataclass
class TeacherFile:
    path: Path
    format: str
    scores: dict[str, dict[str, float]]    # qid -> {docid: score}; {} for pool-only layouts
    pools: dict[str, list[str]]            # qid -> negatives, file order, no repeats; {} if none
    positives: dict[str, list[str]]        # qid -> positives the file names; {} if none
    lines: int                             # records read


def open_bytes(path: Path):
    """The file's bytes, through gzip when it starts with gzip's magic."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


# Field converters: ``at`` is (path, line) for FormatError, ``name`` the field the message names.
def _id(at, value, name):
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise FormatError(*at, f"field {name!r} must be an id (string or integer), got {type(value).__name__}")
    return str(value)


def _num(at, value, name):
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise FormatError(*at, f"field {name!r} must be a number, got {value!r:.40}")


def _text_num(at, value, name):  # a TSV column
    try:
        return float(value)
    except ValueError:
        raise FormatError(*at, f"field {name!r} must be a number, got {value!r:.40}") from None


def _list(convert, what):
    def check(at, value, name):
        if not isinstance(value, list):
            raise FormatError(*at, f"field {name!r} must be a list of {what}, got {type(value).__name__}")
        return [convert(at, v, name) for v in value]
    return check


_ids, _nums = _list(_id, "ids"), _list(_num, "numbers")


def _id_or_ids(at, value, name):
    return _ids(at, value, name) if isinstance(value, list) else [_id(at, value, name)]


def _any(at, value, name):
    return value


def _get(at, rec, key, convert, name=None):
    if key not in rec:
        raise FormatError(*at, f"missing field {name or key!r}")
    return convert(at, rec[key], name or key)


class _Builder:
    """Gathers one file's records into a TeacherFile, merging the lines of one query."""

    def __init__(self, path: Path, fmt: str, systems):
        self.path, self.systems = path, systems
        self.tf = TeacherFile(path, fmt, {}, {}, {}, 0)
        self._pooled: dict[str, set] = {}

    def rows(self):
        """((path, line number), line) of every non-blank line, each counted as a record."""
        with open_bytes(self.path) as raw, io.TextIOWrapper(raw, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    self.tf.lines += 1
                    yield (self.path, lineno), line.rstrip("\n\r")

    def tsv_rows(self, names: tuple):
        for at, line in self.rows():
            cols = line.split("\t")
            if len(cols) != len(names):
                raise FormatError(*at, f"expected {len(names)} tab-separated fields ({', '.join(names)}), "
                                  f"got {len(cols)}")
            yield at, cols

    def json_rows(self):
        for at, line in self.rows():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise FormatError(*at, _json_error(e)) from None
            if not isinstance(rec, dict):
                raise FormatError(*at, "expected a JSON object")
            yield at, rec

    def score(self, at, qid, docid, value, name, exact=False):
        docs = self.tf.scores.setdefault(qid, {})
        if docid not in docs:
            docs[docid] = value
        elif exact:
            raise FormatError(*at, f"duplicate pair ({qid!r}, {docid!r})")
        elif abs(docs[docid] - value) > SCORE_TOLERANCE:
            raise FormatError(*at, f"field {name!r}: pair ({qid!r}, {docid!r}) scored {value:g} here, "
                              f"{docs[docid]:g} earlier")

    def pool(self, qid, docids):
        pool, seen = self.tf.pools.setdefault(qid, []), self._pooled.setdefault(qid, set())
        for d in docids:
            if d not in seen:
                seen.add(d)
                pool.append(d)

    def positive(self, qid, docids):
        pos = self.tf.positives.setdefault(qid, [])
        pos.extend(d for d in dict.fromkeys(docids) if d not in pos)


def _read_tsv(b: _Builder):
    for at, (qid, docid, score) in b.tsv_rows(("qid", "docid", "score")):
        b.score(at, qid, docid, _text_num(at, score, "score"), "score", exact=True)


def _read_margin_mse(b: _Builder):
    for at, (pos_score, neg_score, qid, pos, neg) in b.tsv_rows(
            ("pos_score", "neg_score", "qid", "pid_pos", "pid_neg")):
        b.score(at, qid, pos, _text_num(at, pos_score, "pos_score"), "pos_score")
        b.score(at, qid, neg, _text_num(at, neg_score, "neg_score"), "neg_score")
        b.positive(qid, [pos])
        b.pool(qid, [neg])


class _Unpickler(pickle.Unpickler):
    """Builds containers and numbers only: any global but numpy's scalar helpers is refused."""

    def __init__(self, f, path):
        super().__init__(f)
        self.path = path

    def find_class(self, module, name):
        if (module, name) not in _PICKLE_GLOBALS:
            raise FormatError(self.path, None, f"refused to load global {module}.{name}: a teacher pickle "
                              "may hold only dicts, ids and numbers (loading this one would run code)")
        if module == "numpy.core.multiarray":  # numpy >= 2 moved it (and warns on the old name)
            with contextlib.suppress(ImportError):
                return super().find_class("numpy._core.multiarray", name)
        return super().find_class(module, name)


def _read_pickle(b: _Builder):
    at = (b.path, None)
    try:
        with open_bytes(b.path) as f:
            data = _Unpickler(f, b.path).load()
    except FormatError:
        raise
    except Exception as e:  # a damaged pickle fails in many ways
        raise FormatError(*at, f"not a readable pickle ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict):
        raise FormatError(*at, f"expected a pickled dict {{qid: {{docid: score}}}}, got {type(data).__name__}")
    for key, docs in data.items():
        qid = _id(at, key, f"query {key!r} (the key)")
        if not isinstance(docs, dict):
            raise FormatError(*at, f"query {key!r}: expected a dict {{docid: score}}, got {type(docs).__name__}")
        b.tf.scores[qid] = {_id(at, d, f"query {key!r}, document {d!r} (the key)"):
                            _num(at, s, f"query {key!r}, document {d!r}") for d, s in docs.items()}
        b.tf.lines += 1


def _read_hard_negatives(b: _Builder):
    seen: dict[str, None] = {}
    for at, rec in b.json_rows():
        qid, pos = _get(at, rec, "qid", _id), _get(at, rec, "pos", _ids)
        neg = _get(at, rec, "neg", _any)
        if not isinstance(neg, dict):
            raise FormatError(*at, "field 'neg' must be an object {system: [pid, ...]}, "
                              f"got {type(neg).__name__}")
        lists = {s: _ids(at, ids, f"neg.{s}") for s, ids in neg.items()}
        seen.update(dict.fromkeys(lists))
        b.positive(qid, pos)
        b.pool(qid, interleave([lists[s] for s in (b.systems or lists) if s in lists], exclude=pos))
    missing = [s for s in b.systems or () if s not in seen]
    if missing:
        raise ValueError(f"{b.path}: system(s) {missing} appear in no line; the file has {list(seen)}")


def _zeng_query(at, rec, key):
    """The line's "qid" where it has one, else the query text under ``key``."""
    return _id(at, rec["qid"], "qid") if "qid" in rec else _get(at, rec, key, _id)


def _read_zeng_triples(b: _Builder, scored=False):
    for at, rec in b.json_rows():
        qid = _zeng_query(at, rec, "question")
        pos = _get(at, rec, "pos_pid", _id_or_ids)
        negs = _get(at, rec, "neg_pids", _ids)
        if scored:
            pos_score, neg_scores = _get(at, rec, "pos_score", _num), _get(at, rec, "neg_scores", _nums)
            if len(neg_scores) != len(negs):
                raise FormatError(*at, f"fields 'neg_pids' and 'neg_scores' differ in length "
                                  f"({len(negs)} ids, {len(neg_scores)} scores)")
            for p in pos:
                b.score(at, qid, p, pos_score, "pos_score")
            for n, s in zip(negs, neg_scores):
                b.score(at, qid, n, s, "neg_scores")
        b.positive(qid, pos)
        b.pool(qid, negs)


def _read_zeng_scores(b: _Builder):
    for at, rec in b.json_rows():
        qid = _zeng_query(at, rec, "query")
        docids, scores = _get(at, rec, "docids", _ids), _get(at, rec, "scores", _nums)
        if len(docids) != len(scores) or not docids:
            raise FormatError(*at, "fields 'docids' and 'scores' must be non-empty and of one length "
                              f"({len(docids)} ids, {len(scores)} scores)")
        for d, s in zip(docids, scores):
            b.score(at, qid, d, s, "scores")
        b.positive(qid, docids[:1])
        b.pool(qid, docids[1:])


def _passages(b: _Builder, at, rec, qid, key):
    """The docids of a Tevatron passage list, scoring those that carry a score."""
    value = _get(at, rec, key, _any)
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
        raise FormatError(*at, f"field {key!r} must be a list of passage objects")
    ids = [_get(at, p, "docid", _id, f"{key}[{i}].docid") for i, p in enumerate(value)]
    for i, (docid, p) in enumerate(zip(ids, value)):
        if "score" in p:
            b.score(at, qid, docid, _num(at, p["score"], f"{key}[{i}].score"), f"{key}[{i}].score")
    return ids


def _read_tevatron(b: _Builder):
    for at, rec in b.json_rows():
        qid = _get(at, rec, "query_id", _id)
        b.positive(qid, _passages(b, at, rec, qid, "positive_passages"))
        b.pool(qid, _passages(b, at, rec, qid, "negative_passages"))


_READERS = {"tsv": _read_tsv, "pickle": _read_pickle, "hard_negatives": _read_hard_negatives,
            "margin_mse": _read_margin_mse, "zeng_triples": _read_zeng_triples,
            "zeng_scores": _read_zeng_scores, "zeng_margin": lambda b: _read_zeng_triples(b, scored=True),
            "tevatron": _read_tevatron}


def detect(path) -> str:
    """The layout of ``path`` (one of FORMATS) from its first bytes / first non-blank record."""
    path = Path(path).expanduser()
    with open_bytes(path) as raw:
        if raw.peek(1)[:1] == b"\x80":  # pickle protocol >= 2
            return "pickle"
        with io.TextIOWrapper(raw, encoding="utf-8", errors="replace") as text:
            lineno, line = 0, ""
            while not line.strip():
                line, lineno = text.readline(1 << 22), lineno + 1
                if not line:
                    raise FormatError(path, None, "empty file: no record to tell the teacher-file layout from")
    line, known = line.strip(), f"known layouts: {', '.join(FORMATS)}"
    if line.startswith("{"):
        try:
            keys = set(json.loads(line))
        except json.JSONDecodeError as e:
            raise FormatError(path, lineno, _json_error(e)) from None
        for fmt, needed in _JSON_KEYS:
            if needed <= keys:
                return fmt
        raise FormatError(path, lineno, f"unknown teacher-file layout: JSON keys {sorted(keys)[:8]}; {known}")
    n = len(line.split("\t"))
    if n in (3, 5):
        return "tsv" if n == 3 else "margin_mse"
    raise FormatError(path, lineno, f"unknown teacher-file layout: not JSON, {n} tab-separated field(s) "
                      f"(tsv has 3, margin_mse 5); {known}")


def read(path, format: str = "auto", systems: list[str] | None = None) -> TeacherFile:
    """Read a teacher file in one of FORMATS (``auto``: detect it) into a TeacherFile;
    ``systems`` picks a hard_negatives file's first-stage systems."""
    if format != "auto" and format not in FORMATS:
        raise ValueError(f"unknown teacher-file format {format!r}; use auto or one of {', '.join(FORMATS)}")
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"teacher file {path} does not exist")
    fmt = detect(path) if format == "auto" else format
    systems = [systems] if isinstance(systems, str) else systems
    if systems and fmt != "hard_negatives":
        raise ValueError(f"{path}: systems={systems} applies to hard_negatives files only; this one is {fmt}")
    b = _Builder(path, fmt, systems)
    _READERS[fmt](b)
    return b.tf


def _id_set(ids):
    if isinstance(ids, (set, frozenset, dict)) and all(isinstance(i, str) for i in ids):
        return ids
    return {str(i) for i in ids}


def match_report(tf: TeacherFile, qids, docids=None) -> dict:
    """How many of the file's query ids (and doc ids, unless ``docids`` is None) match nothing
    in the given sets, with up to 3 examples each (file order)."""
    known = _id_set(qids)
    queries = list(dict.fromkeys(chain(tf.scores, tf.pools, tf.positives)))
    bad = [q for q in queries if q not in known]
    report = {"file": str(tf.path), "format": tf.format, "queries": len(queries),
              "unmatched_queries": len(bad), "unmatched_query_examples": bad[:3]}
    if docids is not None:
        known = _id_set(docids)
        docs = dict.fromkeys(chain.from_iterable(chain(tf.scores.values(), tf.pools.values(),
                                                       tf.positives.values())))
        bad = [d for d in docs if d not in known]
        report.update(docs=len(docs), unmatched_docs=len(bad), unmatched_doc_examples=bad[:3])
    return report


def describe(report: dict) -> str:
    """One printable line of a match_report."""
    def part(n, bad, examples, noun, miss, ok):
        return f"{n} {noun} ({ok})" if not bad else f"{n} {noun} ({bad} {miss}, e.g. {', '.join(examples)})"
    r = report
    parts = [part(r["queries"], r["unmatched_queries"], r["unmatched_query_examples"], "queries",
                  "match no training query", "all are training queries")]
    if "docs" in r:
        parts.append(part(r["docs"], r["unmatched_docs"], r["unmatched_doc_examples"], "documents",
                          "not in the corpus", "all in the corpus"))
    return f"teacher file {r.get('file', '?')} ({r.get('format', '?')}): " + ", ".join(parts)
