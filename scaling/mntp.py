"""Masked next-token prediction (MNTP): adapt a decoder to read bidirectionally before retrieval
training (LLM2Vec, BehnamGhader et al.; Zeng et al. adapt their Llama backbones this way).

A fraction ``mask_ratio`` of each text's tokens (every real position but the first, which has no
predecessor) is replaced by a mask token, and the token at position i is predicted from the
hidden state at position i - 1 through the frozen LM head, under bidirectional attention, with
LoRA on the body. The adapter is then merged and the whole model saved, so the run loads the
adapted backbone like any local checkpoint (``model.path``) and trains its own LoRA on top. It is
a starting point (scaling/start.py): made by a preparation step, only read when a model is built.

This runs before training and its FLOPs are not in the run's budget (like pre-training, it
is a property of the backbone); the run prints its steps so reports can say so.

What goes to disk: ``<cache>/prepared/<dataset>/mntp/<key>/`` (config.json + safetensors +
tokenizer + ``mntp.json``, the settings and the loss curve), written atomically, built once
per key (the model settings and ``model.mntp``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch

IGNORE = -100


def mask_id(tokenizer) -> int:
    """The tokenizer's mask token, else '_' (LLM2Vec's choice for decoders without one)."""
    if getattr(tokenizer, "mask_token_id", None) is not None:
        return tokenizer.mask_token_id
    return tokenizer.convert_tokens_to_ids("_")


def mask_tokens(ids: torch.Tensor, attention_mask: torch.Tensor, ratio: float, mask: int,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) ids and 0/1 mask -> (inputs with the chosen positions set to ``mask``, labels holding
    the original ids there and IGNORE elsewhere). Each real position but each row's first is
    chosen independently with probability ``ratio``."""
    first = attention_mask.float().argmax(dim=1, keepdim=True)  # (B, 1)
    positions = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)  # (1, L)
    candidate = (attention_mask > 0) & (positions > first)  # (B, L)
    draw = torch.rand(ids.shape, generator=generator, device=ids.device) < ratio
    chosen = candidate & draw
    return ids.masked_fill(chosen, mask), ids.masked_fill(~chosen, IGNORE)


def mntp_loss(hidden: torch.Tensor, lm_head: torch.nn.Module, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each masked token predicted from the position before it: hidden (B, L, H),
    labels (B, L) with IGNORE where nothing is predicted. Only masked positions are projected."""
    pred, target = hidden[:, :-1], labels[:, 1:]  # position i-1 predicts token i
    keep = target != IGNORE  # (B, L-1)
    if not keep.any():
        return hidden.sum() * 0.0
    logits = lm_head(pred[keep])  # (n_masked, V)
    return torch.nn.functional.cross_entropy(logits.float(), target[keep])


def adapt(model_cfg, texts: list[str], out: Path, cache_dir, log=print) -> dict:
    """Run MNTP on ``texts`` and save the merged model in ``out``; returns the loss curve."""
    from peft import LoraConfig, get_peft_model
    from tqdm.auto import tqdm

    from scaling import sizes
    from scaling.backbone import Encoder, cut_layers, load_causal_lm
    from scaling.data.collate import Tokenize
    from scaling.io import atomic_dir, write_json_atomic
    m = model_cfg.mntp
    g = torch.Generator().manual_seed(m.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(m.seed)
        model, tok = load_causal_lm(model_cfg, sizes.get(model_cfg.name), cache_dir)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        if model_cfg.num_layers is not None:
            cut_layers(model.get_decoder(), model_cfg.num_layers)
            model.config.num_hidden_layers = model.get_decoder().config.num_hidden_layers
        for p in model.parameters():
            p.requires_grad_(False)
        lora = model_cfg.lora
        from scaling.notices import quiet_known
        quiet_known()  # peft reads transformers' deprecated is_gradient_checkpointing
        body = get_peft_model(model.get_decoder(), LoraConfig(
            r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=list(lora.targets)))
    encoder, lm_head = Encoder(body, bidirectional=True), model.get_output_embeddings()
    tokenize, masked = Tokenize(tok, m.max_len), mask_id(tok)
    opt = torch.optim.AdamW([p for p in body.parameters() if p.requires_grad], lr=m.lr)
    log(f"[mntp] adapting {model_cfg.name} on {len(texts)} texts: {m.steps} steps x {m.batch_size}, "
        f"{m.mask_ratio:.0%} masked, bidirectional (not counted in the training budget) -> {out}")
    losses, t = [], time.time()
    encoder.train()
    for _ in tqdm(range(m.steps), desc="mntp", leave=False):
        pick = torch.randint(len(texts), (m.batch_size,), generator=g).tolist()
        batch = tokenize([texts[i] for i in pick])
        inputs, labels = mask_tokens(batch["input_ids"], batch["attention_mask"], m.mask_ratio, masked, g)
        loss = mntp_loss(encoder(inputs, batch["attention_mask"]), lm_head, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    body.merge_and_unload()  # LoRA folded into the body's weights, in place
    summary = {"steps": m.steps, "first_loss": losses[0] if losses else None,
               "last_loss": sum(losses[-10:]) / max(1, len(losses[-10:])), "seconds": time.time() - t,
               "losses": losses}
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        write_json_atomic(tmp / "mntp.json", {**summary, "settings": dataclasses.asdict(m)})
    log(f"[mntp] loss {summary['first_loss']:.3f} -> {summary['last_loss']:.3f} in {summary['seconds']:.0f} s")
    return summary
