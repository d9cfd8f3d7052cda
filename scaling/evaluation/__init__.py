"""Evaluation: metrics and tables (``metrics``), an encoder end to end through a real index
(``encoder``), the sharded corpus store (``store``), and the systems a results table shows
(``systems``: bm25, minilm, untrained, trained), cached through one helper (``cache``)."""

from scaling.evaluation.metrics import DEFAULT_MEASURES, format_table, score_run  # noqa: F401
