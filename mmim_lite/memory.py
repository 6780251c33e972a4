"""The history memory of App. A.1 (Fig. 3): the last batches of embeddings, per polarity.

:func:`mmim_lite.bounds.polarity_entropy` reads it to estimate H(Y) (Eqs. 5-8) on more samples
than one batch holds; :class:`mmim_lite.model.MMIM` keeps one per BA target modality.
"""

from __future__ import annotations

from collections import deque

import torch
from torch import Tensor

__all__ = ["HistoryMemory"]


def _polarity(labels: Tensor) -> Tensor:
    """Class index per sample: 1 = non-negative label (>= 0), 0 = negative label."""
    return (labels >= 0).long()


class HistoryMemory:
    """FIFO of the last ``size`` batches of detached embeddings (App. A.1, Fig. 3).

    Algorithm 1 order: estimate the entropy with :func:`polarity_entropy` (which only
    *reads* the memory), then :meth:`push` the current batch (the oldest one drops out).
    ``size = 0`` disables the memory: ``push`` is a no-op and ``read`` returns empty
    tensors.  :meth:`read` splits the stored samples by polarity class (1: label >= 0,
    0: label < 0), oldest batch first.
    """

    def __init__(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"size must be an int >= 0, got {size!r}")
        self.size = size
        self.dim: int | None = None
        self._batches: deque[tuple[Tensor, Tensor]] = deque(maxlen=size)

    def push(self, y: Tensor, labels: Tensor) -> None:
        """Store a detached copy of ``y`` (B, d) with its ``labels`` (B,)."""
        _check_batch(y, labels)
        if self.dim is not None and y.shape[1] != self.dim:
            raise ValueError(f"memory holds {self.dim}-d embeddings, got {y.shape[1]}-d")
        if self.size == 0:
            return
        self.dim = int(y.shape[1])
        self._batches.append((y.detach().clone(), labels.detach().clone()))

    def read(self) -> dict[int, Tensor]:
        """``{0: (M_0, d), 1: (M_1, d)}`` of stored negative / non-negative embeddings.

        Empty ``(0, d)`` tensors for a class with none (``(0, 0)`` before any push)."""
        dim = self.dim or 0
        if not self._batches:
            return {c: torch.zeros(0, dim) for c in (0, 1)}
        ys = torch.cat([y for y, _ in self._batches])
        cls = torch.cat([_polarity(lab) for _, lab in self._batches])
        return {c: ys[cls == c] for c in (0, 1)}

    def __len__(self) -> int:
        return len(self._batches)

    def clear(self) -> None:
        self._batches.clear()

    def state_dict(self) -> dict:
        """Plain ints, lists and tensors only, loadable with ``torch.load(weights_only=True)``."""
        return {"size": self.size, "dim": -1 if self.dim is None else self.dim,
                "y": [y for y, _ in self._batches], "labels": [lab for _, lab in self._batches]}

    def load_state_dict(self, state: dict) -> None:
        if int(state["size"]) != self.size:
            raise ValueError(f"state was saved with size {state['size']}, memory has size {self.size}")
        if len(state["y"]) != len(state["labels"]) or len(state["y"]) > self.size:
            raise ValueError("inconsistent memory state: y/labels lists differ or exceed size")
        self.clear()
        self.dim = None if int(state["dim"]) < 0 else int(state["dim"])
        for y, lab in zip(state["y"], state["labels"]):
            _check_batch(y, lab)
            self._batches.append((y.detach().clone(), lab.detach().clone()))


def _check_batch(y: Tensor, labels: Tensor) -> None:
    if not isinstance(y, Tensor) or y.ndim != 2:
        raise ValueError(f"y must be a (B, d) tensor, got {getattr(y, 'shape', type(y))}")
    if not isinstance(labels, Tensor) or labels.ndim != 1 or labels.shape[0] != y.shape[0]:
        raise ValueError(f"labels must be a ({y.shape[0]},) tensor, got "
                         f"{getattr(labels, 'shape', type(labels))}")
    if labels.is_floating_point() and not torch.isfinite(labels).all():
        raise ValueError("labels contain NaN or inf")
