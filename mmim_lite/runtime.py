"""Run plumbing: seeding, devices, RNG state, atomic run files, and checkpoints of tensors and plain containers
only (read with ``torch.load(weights_only=True)``, which can never execute code)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "seed_everything", "resolve_device", "rng_state",
           "set_rng_state", "atomic_path", "strict_json", "write_json", "write_csv", "save_checkpoint", "load_checkpoint",
           "model_weights", "load_model_weights"]

CHECKPOINT_FORMAT = "mmim-lite/2"


class CheckpointError(ValueError):
    """A checkpoint file is missing, not an mmim-lite checkpoint or does not fit the data."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None -> CUDA if available, else CPU; otherwise ``torch.device(device)``."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return dev


def rng_state() -> dict[str, Any]:
    """The RNG states training draws from (torch's, CPU and CUDA: dropout, initialisation)."""
    return {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed over it when the block succeeds, removed when it fails."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    try:
        yield tmp
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def strict_json(obj: Any) -> Any:
    """``obj`` as strict JSON data: NaN and infinities (e.g. the std of one run) become None."""
    return json.loads(json.dumps(obj), parse_constant=lambda _: None)


def write_json(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as indented JSON (creating folders, atomically)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """Write a list of dicts as CSV; columns are the union of keys in first-seen order."""
    columns = dict.fromkeys(key for row in rows for key in row)
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> None:
    """``torch.save`` atomically: an interrupted save never leaves a broken checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(dict(state), tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :class:`Trainer` with ``torch.load(weights_only=True)``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - corrupt / foreign file -> one clear error
        raise CheckpointError(f"{str(path)!r} is not a readable mmim-lite checkpoint: {err}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{str(path)!r} is not an mmim-lite checkpoint (format {CHECKPOINT_FORMAT})")
    return ckpt


def model_weights(model: torch.nn.Module, skip_text: bool) -> dict[str, torch.Tensor]:
    """A CPU copy of the model's weights; ``skip_text`` leaves out the text encoder (reloaded by name)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
            if not (skip_text and k.startswith("text_model."))}


def load_model_weights(model: torch.nn.Module, state: Mapping[str, torch.Tensor], skip_text: bool) -> None:
    """Inverse of :func:`model_weights`: only a skipped text encoder may be absent."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad = [k for k in missing if not (skip_text and k.startswith("text_model."))]
    if bad or unexpected:
        raise CheckpointError(f"checkpoint weights do not fit the model: missing {bad[:3]}, "
                              f"unexpected {list(unexpected)[:3]}")
