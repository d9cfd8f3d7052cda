"""The second built-in corpus, ``data=pkgdesc``: Debian package descriptions, another domain.

Every machine of this kind has dpkg's database, so zero-shot and multi-task runs need no download.
Each installed package whose description has a long part becomes one document and one query:

- query  = the one-line synopsis (``Description:``'s first line), e.g. "add and remove users and groups";
- document = the long description (its continuation lines; `` .`` paragraph breaks become blank
  lines, whitespace collapsed within a line);
- docid = qid = the package name.

Natural-language prose about software rather than pycode's source code. Splits train/dev/test
(~70/10/20) by a hash of the package name (``builtin.split_of``). A document whose text another
package already has (transitional and metapackages share boilerplate) is dropped with its query,
as is a query whose synopsis two packages share (two right answers), or whose long description has
fewer than ``MIN_DOC_WORDS`` words. The man pages are not used: they are kept for blind evaluation.

What goes to disk: one BEIR-layout folder under ``<cache_dir>/data/pkgdesc-<sha256 of the source,
12 hex>`` (a changed package database builds a new folder, never silently a different dataset in
the old one), written into a temporary sibling and renamed into place.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

from scaling.data import formats
from scaling.data import builtin
from scaling.data.builtin import SPLITS, split_of

SOURCE = Path("/var/lib/dpkg/status")
"""dpkg's database of installed packages (RFC 822 stanzas)."""
MIN_DOC_WORDS = 8
WHAT = "dpkg's status file, the Debian package database (data.path=FILE reads another in its format)"


def parse(text: str) -> list[tuple[str, str, str]]:
    """(package, synopsis, long description) per stanza that has both a name and a description,
    in file order; the first stanza of a name wins (a package listed for two architectures)."""
    out, seen = [], set()
    for stanza in text.split("\n\n"):
        name, desc, in_desc = None, [], False
        for line in stanza.splitlines():
            if line.startswith((" ", "\t")):
                if in_desc:
                    desc.append(line.strip())
                continue
            in_desc = False
            key, _, value = line.partition(":")
            if key == "Package":
                name = value.strip()
            elif key == "Description":
                desc, in_desc = [value.strip()], True
        if not name or not desc or name in seen:
            continue
        seen.add(name)
        paragraphs, current = [], []
        for line in desc[1:]:
            if line == ".":
                paragraphs.append(" ".join(current))
                current = []
            else:
                current.append(" ".join(line.split()))
        paragraphs.append(" ".join(current))
        out.append((name, " ".join(desc[0].split()), "\n\n".join(p for p in paragraphs if p)))
    return out


def extract(source: Path = SOURCE) -> tuple[list[dict], list[dict], dict[str, list[str]]]:
    """Return (corpus records, query records, {split: [qid, ...]}) from the status file ``source``."""
    packages = sorted(parse(Path(source).read_text(encoding="utf-8", errors="replace")))
    docs, queries, texts = [], [], set()
    for name, synopsis, long in packages:
        if len(long.split()) < MIN_DOC_WORDS or long in texts or not synopsis:
            continue
        texts.add(long)
        docs.append({"_id": name, "title": "", "text": long})
        queries.append({"_id": name, "text": synopsis})
    counts = Counter(q["text"].lower() for q in queries)
    queries = [q for q in queries if counts[q["text"].lower()] == 1]
    splits: dict[str, list[str]] = {split: [] for split, _ in SPLITS}
    for q in queries:
        splits[split_of(q["_id"])].append(q["_id"])
    return docs, queries, splits


def check_source(source: Path) -> None:
    """A clear error when the package database is not there (a machine without dpkg)."""
    if not Path(source).is_file():
        raise FileNotFoundError(f"{source} does not exist: data=pkgdesc reads {WHAT}")


def default_dir(cache: Path, source: Path = SOURCE) -> Path:
    """Where ``data=pkgdesc`` lives: keyed by the source file's content."""
    check_source(source)
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()[:12]
    return Path(cache) / "data" / f"pkgdesc-{digest}"


def build(out_dir: Path, source: Path = SOURCE, quiet: bool = False) -> Path:
    """Build the corpus into ``out_dir`` once; return it. An existing complete folder is reused."""
    out_dir = Path(out_dir)
    if (out_dir / formats.COMPLETE_MARKER).exists():
        return out_dir
    check_source(source)
    docs, queries, splits = extract(source)
    if not queries:
        raise ValueError(f"{source}: no package with a synopsis and a long description of "
                         f"{MIN_DOC_WORDS}+ words: nothing to build data=pkgdesc from")
    return builtin.write(out_dir, "pkgdesc", docs, queries, splits, quiet, f" from {source}")
