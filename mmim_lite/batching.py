"""A torch ``Dataset`` over :class:`~mmim_lite.data.Sample` lists and its collate function.

Texts are tokenised **once**, when the dataset is built (one batched call of the Hugging Face
tokenizer, padded / truncated to ``max_length`` = 50 tokens as in the paper); ``__getitem__``
only indexes the stored token tensors. Visual and acoustic frames are padded per batch, at the
end, and returned with their lengths so the sLSTM encoders (Eq. 2) can pack them.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["MSADataset", "collate_batch"]

_TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


class MSADataset(Dataset):
    """Samples plus their token ids, computed once at construction.

    ``tokenizer`` is any Hugging Face tokenizer (called as ``tokenizer(list_of_texts,
    padding="max_length", truncation=True, max_length=..., return_tensors="np")``). Items
    are dicts with ``input_ids``, ``attention_mask``, ``token_type_ids`` (``(max_length,)``
    long tensors), ``visual`` (L_v, d_v) and ``acoustic`` (L_a, d_a) float32 arrays,
    ``label`` (float) and ``index`` (position in ``samples``).
    """

    def __init__(self, samples: Sequence[Any], tokenizer: Callable[..., Any], max_length: int = 50) -> None:
        if max_length < 1:
            raise ValueError(f"expected max_length >= 1, found {max_length}")
        self.samples = samples
        self.max_length = max_length
        texts = [s.text for s in samples]
        tokens: dict[str, torch.Tensor] = {}
        if texts:
            enc = tokenizer(texts, padding="max_length", truncation=True, max_length=max_length, return_tensors="np")
            for key in _TEXT_KEYS:
                if key in enc:
                    tokens[key] = torch.as_tensor(np.asarray(enc[key]), dtype=torch.long)
        shape = (len(texts), max_length)
        for key in _TEXT_KEYS:
            tokens.setdefault(key, torch.zeros(shape, dtype=torch.long))
            if tuple(tokens[key].shape) != shape:
                raise ValueError(f"tokenizer returned {key} of shape {tuple(tokens[key].shape)}, expected {shape}")
        self.tokens = tokens

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        s = self.samples[index]
        item: dict[str, Any] = {key: self.tokens[key][index] for key in _TEXT_KEYS}
        item.update(visual=s.visual, acoustic=s.acoustic, label=float(s.label), index=int(index))
        return item


def _pad_end(seqs: Sequence[Any], name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L_max, d) float32 zero-padded at the end, and lengths (B,) clamped to >= 1."""
    arrays = [np.asarray(x, dtype=np.float32) for x in seqs]
    if any(a.ndim != 2 for a in arrays) or len({a.shape[1] for a in arrays}) != 1:
        raise ValueError(f"{name}: expected (L, d) arrays sharing d, found shapes {[a.shape for a in arrays]}")
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    out = np.zeros((len(arrays), max(1, int(lengths.max())), arrays[0].shape[1]), dtype=np.float32)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    return torch.from_numpy(out), torch.from_numpy(np.maximum(lengths, 1))


def collate_batch(items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Batch :class:`MSADataset` items (use as ``DataLoader(..., collate_fn=collate_batch)``).

    Returns ``input_ids``, ``attention_mask``, ``token_type_ids`` (B, L) long, L = the longest
    text of the batch (at most ``max_length``: trailing all-padding columns are dropped); ``visual``
    (B, Lv_max, d_v) and ``acoustic`` (B, La_max, d_a) float32, padded with zeros at the end;
    ``visual_lengths``, ``acoustic_lengths`` (B,) long, at least 1 (an empty sequence becomes
    one zero frame); ``labels`` (B,) float32; ``index`` (B,) long.
    """
    if not items:
        raise ValueError("expected at least one item to collate, found none")
    batch = {key: torch.stack([torch.as_tensor(it[key], dtype=torch.long) for it in items]) for key in _TEXT_KEYS}
    # Drop trailing token columns that are padding for every text of the batch: the encoder's
    # output at real tokens is unchanged (padding is masked out) and a batch of short texts
    # costs ~width/50 of a full one.  Left-padded tokens are never trimmed.
    used = batch["attention_mask"].any(0).nonzero()
    width = int(used[-1]) + 1 if len(used) else 1
    batch = {key: value[:, :width] for key, value in batch.items()}
    batch["visual"], batch["visual_lengths"] = _pad_end([it["visual"] for it in items], "visual")
    batch["acoustic"], batch["acoustic_lengths"] = _pad_end([it["acoustic"] for it in items], "acoustic")
    batch["labels"] = torch.tensor([float(it["label"]) for it in items], dtype=torch.float32)
    batch["index"] = torch.tensor([int(it["index"]) for it in items], dtype=torch.long)
    return batch
