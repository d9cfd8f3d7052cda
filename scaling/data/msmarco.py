"""MS MARCO passage ranking and the TREC Deep Learning 2019/2020 passage tracks, from local files.

``data=msmarco data.path=DIR`` reads the files as Microsoft and NIST distribute them
(https://microsoft.github.io/msmarco/Datasets, https://trec.nist.gov/data/deep2019.html):

    collection.tsv                     pid <TAB> passage                   (8.8M lines)
    queries.train.tsv                  qid <TAB> query
    qrels.train.tsv                    qid <TAB> 0 <TAB> pid <TAB> 1
    queries.dev.small.tsv              qid <TAB> query                     (6,980 queries)
    qrels.dev.small.tsv                qid <TAB> 0 <TAB> pid <TAB> 1
    msmarco-test2019-queries.tsv       qid <TAB> query                     (TREC DL 2019)
    2019qrels-pass.txt                 qid Q0 pid grade (0-3, spaces)      (graded judgements)
    msmarco-test2020-queries.tsv, 2020qrels-pass.txt                       (TREC DL 2020)

Splits: ``train``, ``dev`` (dev small), ``dl19``, ``dl20``. Only the files of the splits a run
asks for are read; a missing one is named with where to get it. Graded qrels keep their grades
(nDCG uses them; R@k and RR count grade >= 1 as relevant, as trec_eval does).
"""

from __future__ import annotations

from pathlib import Path

from scaling.data.formats import Dataset, FormatError

SPLITS = {
    "train": ("queries.train.tsv", "qrels.train.tsv"),
    "dev": ("queries.dev.small.tsv", "qrels.dev.small.tsv"),
    "dl19": ("msmarco-test2019-queries.tsv", "2019qrels-pass.txt"),
    "dl20": ("msmarco-test2020-queries.tsv", "2020qrels-pass.txt"),
}
FILES_HINT = ("a folder with collection.tsv and each split's queries and qrels: "
              + "; ".join(f"{split}: {q}, {r}" for split, (q, r) in SPLITS.items()))
WHERE = ("collection.tsv, queries and qrels: https://msmarco.z22.web.core.windows.net/msmarcoranking/"
         "collectionandqueries.tar.gz; TREC DL topics and qrels: https://trec.nist.gov/data/deep2019.html "
         "and deep2020.html")


def _need(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing (data=msmarco expects {path.name} in data.path; {WHERE})")
    return path


def read_id_text_tsv(path: Path) -> dict[str, str]:
    """``id <TAB> text`` lines (collection, queries)."""
    out: dict[str, str] = {}
    with _need(Path(path)).open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n\r")
            if not line.strip():
                continue
            cols = line.split("\t")
            if len(cols) < 2 or not cols[0]:
                raise FormatError(path, lineno, "expected 'id<TAB>text' (field 'text' missing)")
            out[cols[0]] = " ".join(cols[1:]).strip()
    return out


def read_trec_qrels(path: Path) -> dict[str, dict[str, int]]:
    """TREC qrels ``qid iter docid grade`` (tabs or spaces) -> {qid: {docid: grade}}."""
    out: dict[str, dict[str, int]] = {}
    with _need(Path(path)).open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            cols = line.split()
            if not cols:
                continue
            if len(cols) != 4:
                raise FormatError(path, lineno, f"expected 4 fields (qid iter docid grade), got {len(cols)}")
            try:
                grade = int(cols[3])
            except ValueError:
                raise FormatError(path, lineno, f"field 'grade' must be an integer, got {cols[3]!r}") from None
            out.setdefault(cols[0], {})[cols[2]] = grade
    return out


def load(root: Path, splits=None, name: str = "msmarco") -> Dataset:
    """The collection plus the queries and qrels of ``splits`` (default: every split present)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data.path {root} is not a folder ({WHERE})")
    if splits is None:
        splits = [s for s, (q, r) in SPLITS.items() if (root / q).exists() and (root / r).exists()]
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise KeyError(f"msmarco has no split {unknown[0]!r}; known: {', '.join(SPLITS)}")
    corpus = read_id_text_tsv(root / "collection.tsv")
    queries: dict[str, str] = {}
    qrels = {}
    for split in splits:
        qfile, rfile = SPLITS[split]
        split_queries = read_id_text_tsv(root / qfile)
        table = read_trec_qrels(root / rfile)
        for qid, docs in table.items():
            if qid not in split_queries:
                raise FormatError(root / rfile, None, f"qid {qid!r} is not in {qfile}")
            missing = [d for d in docs if d not in corpus]
            if missing:
                raise FormatError(root / rfile, None, f"pid {missing[0]!r} (query {qid!r}) is not in collection.tsv")
        queries.update({q: split_queries[q] for q in table})
        qrels[split] = table
    return Dataset(name, corpus, queries, qrels)
