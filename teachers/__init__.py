"""Cross-encoder teachers whose scores distillation losses learn from."""
