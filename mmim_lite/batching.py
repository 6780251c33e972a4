"""A torch ``Dataset`` over :class:`~mmim_lite.data.Sample` lists, tokenised once, and its collate
function."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .data import Sample, pad_frames

__all__ = ["TEXT_KEYS", "MSADataset", "collate_batch"]

TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


class MSADataset(Dataset):
    """Samples plus their token ids from ONE batched ``tokenizer`` call (padded / truncated to
    ``max_length``, 50 in the paper). Items: the :data:`TEXT_KEYS` ((max_length,) long), ``visual``,
    ``acoustic``, ``label``, ``index``."""

    def __init__(
        self, samples: Sequence[Sample], tokenizer: Callable[..., Any], max_length: int = 50
    ) -> None:
        self.samples, texts = samples, [s.text for s in samples]
        kwargs = dict(
            padding="max_length", truncation=True, max_length=max_length, return_tensors="np"
        )
        enc = tokenizer(texts, **kwargs) if texts else {}
        shape = (len(texts), max_length)
        self.tokens = {
            key: torch.as_tensor(np.asarray(enc[key]), dtype=torch.long)
            if key in enc
            else torch.zeros(shape, dtype=torch.long)
            for key in TEXT_KEYS
        }
        for key, value in self.tokens.items():
            if tuple(value.shape) != shape:
                raise ValueError(
                    f"tokenizer returned {key} of shape {tuple(value.shape)}, expected {shape}"
                )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        s = self.samples[index]
        return {
            **{key: self.tokens[key][index] for key in TEXT_KEYS},
            "visual": s.visual,
            "acoustic": s.acoustic,
            "label": float(s.label),
            "index": int(index),
        }


def collate_batch(items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Batch :class:`MSADataset` items: text keys (B, L), L the longest text; frames (B, L_max, d)
    end-padded with ``*_lengths`` >= 1 (an empty sequence is one zero frame) for the sLSTM packing
    (Eq. 2); ``labels``, ``index``."""
    if not items:
        raise ValueError("expected at least one item to collate, found none")
    batch = {
        key: torch.stack([torch.as_tensor(it[key], dtype=torch.long) for it in items])
        for key in TEXT_KEYS
    }
    used = batch["attention_mask"].any(0).nonzero()  # left-padded tokens are never trimmed
    batch = {key: value[:, : int(used[-1]) + 1 if len(used) else 1] for key, value in batch.items()}
    for key in ("visual", "acoustic"):
        frames = [it[key] for it in items]
        padded, lengths = pad_frames(frames, key, length=max(1, *(len(x) for x in frames)))
        batch[key], batch[f"{key}_lengths"] = (
            torch.from_numpy(padded),
            torch.from_numpy(np.maximum(lengths, 1)),
        )
    batch["labels"] = torch.tensor([float(it["label"]) for it in items], dtype=torch.float32)
    batch["index"] = torch.tensor([int(it["index"]) for it in items], dtype=torch.long)
    return batch
