"""Backbone loading: the packaged SmolLM2 (cut to the CPU ladder), LoRA, and clear errors."""

import pytest
import torch

from scaling.backbone import load_backbone
from scaling.config import LoraConfig, ModelConfig


def test_smollm2_loads_offline_and_cuts_layers():
    bb = load_backbone(ModelConfig(name="smollm2-135m", num_layers=2))
    assert bb.hidden_size == 576 and bb.vocab_size == 49152
    assert len(bb.body.model.base_model.model.layers) == 2
    trainable = [n for n, p in bb.body.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    out = bb.body(torch.tensor([[1, 2, 3]]), torch.ones(1, 3, dtype=torch.long))
    assert out.shape == (1, 3, 576)


def test_full_finetune_trains_every_body_weight():
    bb = load_backbone(ModelConfig(name="tiny", lora=LoraConfig(enabled=False)))
    assert all(p.requires_grad for p in bb.body.parameters())


@pytest.mark.parametrize("overrides,match", [
    ({"name": "8b", "path": "/nowhere/llama"}, "/nowhere/llama"),
    ({"name": "3b"}, "model.download=true"),
])
def test_missing_weights_say_how_to_supply_them(overrides, match):
    with pytest.raises(FileNotFoundError, match=match):
        load_backbone(ModelConfig(**overrides))


def _encode(bb, texts, side="right"):
    from scaling.data.collate import Tokenize
    batch = Tokenize(bb.tokenizer, 32, padding_side=side)(texts)
    with torch.no_grad():
        return bb.body(batch["input_ids"], batch["attention_mask"]), batch["attention_mask"]


def test_bidirectional_attention_sees_later_tokens_and_ignores_padding():
    causal = load_backbone(ModelConfig(name="tiny"))
    both = load_backbone(ModelConfig(name="tiny", bidirectional=True))
    a, b = "the first words then one ending", "the first words then another different ending"
    h_causal, _ = _encode(causal, [a, b])
    h_both, _ = _encode(both, [a, b])
    # the first token cannot see what follows under the causal mask, and does when bidirectional
    torch.testing.assert_close(h_causal[0, 0], h_causal[1, 0])
    assert not torch.allclose(h_both[0, 0], h_both[1, 0], atol=1e-4)
    # padding keys stay invisible: a text alone equals the same text padded in a batch
    alone, _ = _encode(both, [a])
    for side in ("right", "left"):
        padded, mask = _encode(both, [a, b + " and much more text to force padding"], side)
        real = padded[0][mask[0].bool()]
        torch.testing.assert_close(real, alone[0], atol=1e-5, rtol=1e-4)


def test_encoder_only_minilm_loads_through_the_same_code():
    from scaling.heads.dense import DenseHead
    bb = load_backbone(ModelConfig(name="minilm", query_prefix="", doc_prefix="",
                                   lora=LoraConfig(targets=["query", "key", "value"])))
    assert bb.lm_head is None and bb.hidden_size == 384
    texts = ["a cat sits on the mat", "a kitten is lying on a rug", "the stock market crashed today"]
    hidden, mask = _encode(bb, texts)
    reps = DenseHead("mean", normalize=True)(hidden, mask)
    sims = reps @ reps.T
    assert sims[0, 1] > sims[0, 2] + 0.2  # pretrained weights, not random ones


def test_num_layers_cuts_an_encoder_too():
    """model.num_layers on a BERT encoder keeps its first layers, as on a decoder; the budget agrees."""
    from scaling.sizes import arch_for
    bb = load_backbone(ModelConfig(name="minilm", num_layers=2, lora=LoraConfig(enabled=False)))
    assert len(bb.body.model.encoder.layer) == 2 and bb.body.model.config.num_hidden_layers == 2
    assert arch_for("minilm", 2).layers == 2
    hidden, mask = _encode(bb, ["two layers are enough to run"])
    assert hidden.shape[-1] == 384 and torch.isfinite(hidden).all()


def _tiny_gemma3(folder):
    """A random two-layer Gemma3 (one sliding-window layer of 4 tokens, one global) saved as an HF
    checkpoint with the Llama-3 tokenizer: the packaged Gemma-3-270M's code path at toy size."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from scaling.backbone import llama3_tokenizer
    tok = llama3_tokenizer()
    config = Gemma3TextConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                              head_dim=16, intermediate_size=64, vocab_size=len(tok), sliding_window=4,
                              layer_types=["sliding_attention", "full_attention"], pad_token_id=tok.pad_token_id,
                              bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    Gemma3ForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_gemma3_family_trains_lora_and_reads_bidirectionally_past_its_sliding_window(tmp_path):
    path = str(_tiny_gemma3(tmp_path / "gemma"))
    causal = load_backbone(ModelConfig(name="gemma3-270m", path=path))
    assert type(causal.body.model.base_model.model).__name__ == "Gemma3TextModel"
    trainable = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, p in causal.body.named_parameters() if p.requires_grad}
    assert trainable == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    both = load_backbone(ModelConfig(name="gemma3-270m", path=path, bidirectional=True))
    a = "one two three four five six seven eight nine ten"
    b = "one two three four five six seven eight nine eleven"
    h_causal, _ = _encode(causal, [a, b])
    h_both, _ = _encode(both, [a, b])
    torch.testing.assert_close(h_causal[0, 0], h_causal[1, 0])
    # the first token sees the last one, ten tokens on: the sliding window does not apply
    assert not torch.allclose(h_both[0, 0], h_both[1, 0], atol=1e-4)
    alone, _ = _encode(both, [a])
    padded, mask = _encode(both, [a, b + " and much more text to force padding"])
    torch.testing.assert_close(padded[0][mask[0].bool()], alone[0], atol=1e-5, rtol=1e-4)


def test_chunked_gguf_is_joined_in_order_and_checked(tmp_path, monkeypatch):
    import hashlib

    from scaling import backbone
    chunks = [b"GGUF" + bytes([i]) * 1000 for i in range(3)]
    for i, data in enumerate(chunks):
        (tmp_path / f"pkg{i}").mkdir()
        (tmp_path / f"pkg{i}" / "part").write_bytes(data)
    monkeypatch.setattr(backbone, "_package_dir", lambda name, hint: tmp_path / name)
    whole = b"".join(chunks)
    spec = backbone.Packaged(("pkg0", "pkg1", "pkg2"), ("part",) * 3, "m.gguf", "pip install x",
                             hashlib.sha256(whole).hexdigest())
    monkeypatch.setitem(backbone.GGUF, "toy", spec)
    folder = backbone._gguf_source("toy", tmp_path / "joined")
    assert (folder / "m.gguf").read_bytes() == whole
    monkeypatch.setitem(backbone.GGUF, "toy", backbone.Packaged(
        ("pkg1", "pkg0", "pkg2"), ("part",) * 3, "m.gguf", "pip install x", spec.sha256))  # out of order
    with pytest.raises(ValueError, match="sha256.*pip install x"):
        backbone._gguf_source("toy", tmp_path / "again")
    assert not (tmp_path / "again").exists()  # nothing half-checked is left behind
