"""Representation heads, one per file, registered by name (``paradigm.head.name``)."""

from scaling.heads import dense, sparse  # noqa: F401  (registers)
from scaling.heads.base import HEADS, Head, build_head, head_flops, head_recomputes  # noqa: F401
