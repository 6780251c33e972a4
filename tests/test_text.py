"""Tests of mmim_lite.text.cls_features: the packed text encoder gives the Hugging Face [CLS]."""

from __future__ import annotations

import pytest
import torch

from mmim_lite.config import MMIMConfig
from mmim_lite.model import MMIM
from mmim_lite.text import cls_features, packable, resolve_text_encoder

TEXTS = [
    "a wonderful film",
    "dull and boring, i did not like it at all",
    "ok",
    "the acting was fine but the plot made no sense whatsoever to me",
    "great",
    "not bad really",
]


def hf_cls(model, enc) -> torch.Tensor:
    return model(**enc).last_hidden_state[:, 0]


def encode(tokenizer, texts=TEXTS, **kw) -> dict[str, torch.Tensor]:
    enc = tokenizer(texts, padding=True, return_tensors="pt", **kw)
    return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


@pytest.mark.parametrize("name", ["tiny", "minilm"])
def test_packed_equals_hugging_face_forward_and_gradients(name):
    """float64, eval mode: the same [CLS] vector and the same gradient for every parameter."""
    torch.manual_seed(0)
    model, tokenizer = resolve_text_encoder(name)
    model.eval().double()
    enc = encode(tokenizer)
    assert packable(model) and not bool(enc["attention_mask"].all())  # the batch has padding
    weights = torch.randn(model.config.hidden_size, dtype=torch.float64)
    params = [p for p in model.parameters()]
    out_packed = cls_features(model, **enc, packed=True)
    out_hf = hf_cls(model, enc)
    assert out_packed.shape == (len(TEXTS), model.config.hidden_size)
    assert torch.allclose(out_packed, out_hf, rtol=0, atol=1e-12)
    g_packed = torch.autograd.grad((out_packed @ weights).sum(), params, allow_unused=True)
    g_hf = torch.autograd.grad((out_hf @ weights).sum(), params, allow_unused=True)
    scale = max(g.abs().max() for g in g_hf if g is not None)
    for (pname, _), a, b in zip(model.named_parameters(), g_packed, g_hf):
        assert (a is None) == (b is None), pname
        if b is not None:
            assert torch.allclose(a, b, rtol=0, atol=1e-12 * scale), pname


def test_packed_ignores_extra_padding_and_missing_token_types():
    torch.manual_seed(0)
    model, tokenizer = resolve_text_encoder("tiny")
    model.eval()
    enc = encode(tokenizer)
    wide = tokenizer(TEXTS, padding="max_length", max_length=40, return_tensors="pt")
    wide = {k: wide[k] for k in enc}
    with torch.no_grad():
        base = cls_features(model, **enc)
        assert torch.allclose(cls_features(model, **wide), base, atol=1e-6)
        no_types = cls_features(model, enc["input_ids"], enc["attention_mask"], None)
        assert torch.allclose(no_types, base, atol=1e-6)  # token types default to 0, as BertModel's


def test_dropout_still_applies_in_training_mode():
    """Training mode: the packed path calls the same dropout modules as the model's own forward
    pass, so its outputs are random; eval mode is deterministic."""
    torch.manual_seed(0)
    model, tokenizer = resolve_text_encoder("tiny")
    enc = encode(tokenizer)
    model.train()
    called: dict[bool, set] = {True: set(), False: set()}
    for pack in (True, False):
        hooks = [
            m.register_forward_hook(lambda mod, *_, pack=pack: called[pack].add(id(mod)))
            for m in model.modules()
            if isinstance(m, torch.nn.Dropout)
        ]
        cls_features(model, **enc, packed=pack)
        for h in hooks:
            h.remove()
    assert (
        called[True] == called[False]
        and len(called[True]) == 1 + 2 * model.config.num_hidden_layers
    )
    a, b = cls_features(model, **enc), cls_features(model, **enc)
    assert not torch.allclose(a, b)  # random dropout masks
    model.eval()
    assert torch.equal(cls_features(model, **enc), cls_features(model, **enc))


def test_falls_back_to_hugging_face_forward():
    """Front padding ([CLS] not in column 0), packed=False, and non-BERT encoders use model(...)."""
    torch.manual_seed(0)
    model, tokenizer = resolve_text_encoder("tiny")
    model.eval()
    enc = encode(tokenizer)
    flipped = {k: v.flip(1) for k, v in enc.items()}  # padding now at the front
    with torch.no_grad():
        assert torch.equal(cls_features(model, **flipped), hf_cls(model, flipped))
        assert torch.equal(cls_features(model, **enc, packed=False), hf_cls(model, enc))
    from transformers import RobertaConfig, RobertaModel

    roberta = RobertaModel(
        RobertaConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
        ),
        add_pooling_layer=False,
    )
    roberta.eval()
    assert not packable(roberta)
    odd, _ = resolve_text_encoder("tiny")  # a BertModel whose layout cls_features does not know
    del odd.encoder.layer[1].attention.self.attention_head_size
    assert packable(model) and not packable(odd)
    odd, _ = resolve_text_encoder("tiny")
    odd.encoder.layer[0].attention.self.dropout = torch.nn.Identity()
    assert not packable(odd)
    with torch.no_grad():
        assert torch.equal(cls_features(roberta, **enc), hf_cls(roberta, enc))


def test_model_uses_packed_encoder_by_default():
    """MMIM.encode_text goes through the packed path unless pack_text=False (the Hugging Face
    forward is then called once); both give the same h_t."""
    torch.manual_seed(0)
    text = resolve_text_encoder("tiny")
    enc = encode(text[1])
    calls = []
    hook = text[0].register_forward_hook(lambda *args: calls.append(1))
    outs = {}
    for pack in (True, False):
        model = MMIM(
            MMIMConfig.preset("mosi", text_encoder="tiny", pack_text=pack), 5, 7, text_encoder=text
        )
        model.eval()
        with torch.no_grad():
            outs[pack] = model.encode_text(enc)
        assert len(calls) == (0 if pack else 1)
    hook.remove()
    assert MMIMConfig.preset("mosi").pack_text and MMIMConfig.preset("synthmosi").pack_text
    assert torch.allclose(outs[True], outs[False], atol=1e-6)


def test_packed_under_bf16_autocast():
    """Mixed precision (as on CUDA; here CPU autocast): same dtype and close to the Hugging Face
    forward under the same autocast, and gradients reach the encoder."""
    torch.manual_seed(0)
    model, tokenizer = resolve_text_encoder("tiny")
    model.eval()
    enc = encode(tokenizer)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        packed = cls_features(model, **enc)
        with torch.no_grad():
            hf = hf_cls(model, enc)
    assert packed.dtype == hf.dtype
    assert torch.allclose(packed.float(), hf.float(), atol=0.05)
    packed.float().sum().backward()
    assert model.embeddings.word_embeddings.weight.grad is not None
