"""Cross-encoder teachers: load any HF sequence-classification model and score (query, document) pairs.

A cross-encoder reads query and document together, so it ranks better than a bi-encoder but
costs one forward pass per pair: it is the teacher whose scores distillation copies. Any
``AutoModelForSequenceClassification`` with one output (or two: the last logit is used) works.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm


def resolve(name_or_path: str, download: bool = False) -> str:
    """'minilm' -> the packaged all-MiniLM-L6-v2; a folder -> itself; an HF id only with download."""
    if name_or_path == "minilm":
        from scaling.backbone import minilm_dir
        return str(minilm_dir())
    path = Path(name_or_path).expanduser()
    if path.exists():
        return str(path)
    if not download:
        raise FileNotFoundError(
            f"cross-encoder {name_or_path!r} is not a local folder; give teacher.model=/path/to/model "
            "(config.json + weights) or set teacher.download=true on a machine with hub access")
    return name_or_path


def load(name_or_path: str, download: bool = False, num_labels: int | None = None):
    """(model, tokenizer) in eval mode. ``num_labels=1`` adds a fresh scoring head (fine-tuning)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging
    where = resolve(name_or_path, download)
    kwargs = {"local_files_only": not download}
    if num_labels is not None:
        kwargs["num_labels"] = num_labels
    level = logging.get_verbosity()
    logging.set_verbosity_error()  # "newly initialised classifier" is expected when fine-tuning
    try:
        model = AutoModelForSequenceClassification.from_pretrained(where, **kwargs)
    finally:
        logging.set_verbosity(level)
    tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=not download)
    return model.eval(), tokenizer


def encode_pairs(tokenizer, queries: list[str], docs: list[str], max_len: int) -> dict:
    return tokenizer(queries, docs, padding=True, truncation="longest_first", max_length=max_len,
                     return_tensors="pt")


def logits_to_scores(logits: torch.Tensor) -> torch.Tensor:
    """(B, 1) or (B, C) logits -> (B,) relevance scores (the last class is 'relevant')."""
    return logits[:, -1].float()


@torch.inference_mode()
def score_pairs(model, tokenizer, pairs: list[tuple[str, str]], max_len: int, batch_size: int = 64,
                desc: str = "teacher scoring", device: str | None = None) -> list[float]:
    """Scores for (query text, document text) pairs, in input order.

    Pairs are batched by similar length (less padding); bf16 autocast on CUDA.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    out = [0.0] * len(pairs)
    with tqdm(total=len(pairs), desc=desc, unit="pair", mininterval=2) as bar:
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            batch = encode_pairs(tokenizer, [pairs[i][0] for i in idx], [pairs[i][1] for i in idx], max_len)
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
                scores = logits_to_scores(model(**batch).logits)
            for i, v in zip(idx, scores.tolist()):
                out[i] = v
            bar.update(len(idx))
    return out
