"""Run plumbing shared by training and the CLI: seeding, devices, RNG state, run files, checkpoints.

Checkpoints hold only tensors and plain containers, so they load with
``torch.load(weights_only=True)`` and reading one can never execute code.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import subprocess
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "seed_everything", "resolve_device", "rng_state",
           "set_rng_state", "write_json", "write_csv", "load_checkpoint", "source_sha256", "provenance"]

CHECKPOINT_FORMAT = "mmim-lite/1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, not an mmim-lite checkpoint or does not fit the data."""


# -------------------- seeding, devices, RNG state, files ------------------------------------
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
    """All RNG states as tensors / plain Python values (weights_only-safe)."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss = random.getstate()
    return {"torch": torch.get_rng_state(),
            "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached": float(cached)},
            "python": {"version": int(version), "state": list(py_state), "gauss": gauss}}


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def write_json(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as indented JSON (creating folders)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """Write a list of dicts as CSV; columns are the union of keys in first-seen order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


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


# -------------------- provenance of result files -------------------------------------------
def source_sha256(sources: Mapping[str, bytes] | None = None) -> str:
    """SHA-256 of the package source: every ``mmim_lite/*.py`` file, sorted by name, hashed as
    ``name NUL content NUL``. ``sources`` (name -> bytes) hashes another version, e.g. one read
    from git, the same way."""
    if sources is None:
        folder = Path(__file__).resolve().parent
        sources = {f.name: f.read_bytes() for f in folder.glob("*.py")}
    digest = hashlib.sha256()
    for name in sorted(sources):
        digest.update(name.encode() + b"\0" + sources[name] + b"\0")
    return digest.hexdigest()


def provenance() -> dict[str, Any]:
    """What a committed result file records about the code that made it: the package version,
    :func:`source_sha256` and, inside a git checkout, the commit and whether the tree was clean."""
    from . import __version__

    out: dict[str, Any] = {"package_version": __version__, "source_sha256": source_sha256()}
    root = Path(__file__).resolve().parents[1]
    try:
        git = lambda *a: subprocess.run(["git", "-C", str(root), *a], capture_output=True,  # noqa: E731
                                        text=True, check=True, timeout=10).stdout.strip()
        out["git_commit"] = git("rev-parse", "HEAD")
        out["git_clean"] = git("status", "--porcelain", "--", "mmim_lite") == ""
    except (OSError, subprocess.SubprocessError):
        pass  # not a git checkout (an installed package): version and source hash only
    return out
