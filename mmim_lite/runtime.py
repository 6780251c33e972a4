"""Run plumbing: seeding, devices, RNG state, atomic run files (a full disk named as such), a run
folder held by one process at a time, and checkpoints of tensors and plain containers only (read
with ``torch.load(weights_only=True)``, which can never execute code)."""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import pickle
import random
import shutil
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "DiskFullError",
    "RunFolderError",
    "run_folder",
    "seed_everything",
    "resolve_device",
    "rng_state",
    "set_rng_state",
    "atomic_path",
    "strict_json",
    "write_json",
    "write_csv",
    "save_checkpoint",
    "load_checkpoint",
    "model_weights",
    "load_model_weights",
]

CHECKPOINT_FORMAT = "mmim-lite/2"
LOCK_NAME = ".mmim-lite.lock"  #: a run folder's lock file (held while a process writes the run)


class CheckpointError(ValueError):
    """A checkpoint file is missing, not an mmim-lite checkpoint or does not fit the data."""


class DiskFullError(OSError):
    """The disk filled while a run file was written; the file's previous version is intact."""


class RunFolderError(ValueError):
    """A run folder is in use by another process, or holds a run this one would be mixed with."""


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
        raise ValueError(
            f"unknown device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from err
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(
            f"device {device!r} is not supported; expected 'auto', 'cpu', 'cuda' or 'cuda:N'"
        )
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
        )
    return dev


def rng_state() -> dict[str, Any]:
    """The RNG states training draws from (torch's, CPU and CUDA: dropout, initialisation)."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path``, unique to this writer, renamed over it when the block
    succeeds, removed when it fails; a full disk (ENOSPC, or torch.save's "unexpected pos") raises
    :class:`DiskFullError`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # unique per writer; not tempfile.mkstemp, whose 0600 mode would reach the run file
    tmp = target.with_name(f"{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        tmp.replace(target)
    except (OSError, RuntimeError) as err:
        if getattr(err, "errno", None) == errno.ENOSPC or "unexpected pos" in str(err):
            raise DiskFullError(f"no space left on device while writing {target}") from err
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _run_files(folder: Path) -> list[Path]:
    """The files and seed folders of a run in ``folder`` (what ``mmim-lite train`` writes)."""
    names = ("config.json", "data.json", "history.csv", "summary.json")
    return sorted([folder / n for n in names if (folder / n).exists()] + [*folder.glob("seed_*")])


@contextlib.contextmanager
def run_folder(
    folder: str | os.PathLike[str], resume: bool = False, overwrite: bool = False
) -> Iterator[Callable[[], None]]:
    """Hold ``folder`` (created if needed) for this process: an advisory lock (``flock``, released
    by the system when the process ends, even killed) refuses a second process at once, and a
    folder that holds a run is refused unless ``resume`` (continue it) or ``overwrite``. Yields
    ``clear()``, which removes the run that ``overwrite`` replaces (call it once the new run's
    input is checked). A folder this call created is removed if the block fails before writing."""
    import fcntl  # POSIX (Linux, macOS)

    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with open(folder / LOCK_NAME, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise RunFolderError(
                    f"{folder} is in use by another mmim-lite process (it holds "
                    f"{LOCK_NAME}): wait for it to end, or use another "
                    "--out"
                ) from None
            old = [] if resume else _run_files(folder)
            if old and not overwrite:
                names = ", ".join(p.name for p in old[:4])
                raise RunFolderError(
                    f"{folder} already holds a run ({names}): continue it with "
                    "--resume, or replace it with --overwrite"
                )

            def clear() -> None:
                for path in old:
                    shutil.rmtree(path) if path.is_dir() else path.unlink()

            yield clear
    except BaseException:
        if created and [p.name for p in folder.iterdir()] == [LOCK_NAME]:  # nothing written
            shutil.rmtree(folder)
        raise


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
    """Read a checkpoint written by :class:`Trainer` with ``torch.load(weights_only=True)``;
    anything else (another kind of file, a damaged one, one holding other objects) raises
    :class:`CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    expected = f"{path}: expected an mmim-lite checkpoint ({CHECKPOINT_FORMAT}, a torch.save file)"
    if path.stat().st_size == 0 or not zipfile.is_zipfile(path):
        found = "an empty file" if path.stat().st_size == 0 else "another kind of file"
        raise CheckpointError(f"{expected}, found {found}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's message would advise weights_only=False: never
        raise CheckpointError(
            f"{path} holds objects an mmim-lite checkpoint never holds (only "
            "tensors and plain containers): refused, nothing was loaded or "
            "executed"
        ) from None
    except Exception as err:  # noqa: BLE001 - a damaged or truncated archive -> one clear error
        found = f"found a damaged or truncated one ({type(err).__name__})"
        raise CheckpointError(f"{expected}, {found}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{str(path)!r} is not an mmim-lite checkpoint (format {CHECKPOINT_FORMAT})"
        )
    return ckpt


def model_weights(model: torch.nn.Module, skip_text: bool) -> dict[str, torch.Tensor]:
    """A CPU copy of the model's weights; ``skip_text`` leaves out the text encoder (reloaded by
    name)."""
    return {
        k: v.detach().to("cpu", copy=True)
        for k, v in model.state_dict().items()
        if not (skip_text and k.startswith("text_model."))
    }


def load_model_weights(
    model: torch.nn.Module, state: Mapping[str, torch.Tensor], skip_text: bool
) -> None:
    """Inverse of :func:`model_weights`: only a skipped text encoder may be absent."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad = [k for k in missing if not (skip_text and k.startswith("text_model."))]
    if bad or unexpected:
        raise CheckpointError(
            f"checkpoint weights do not fit the model: missing {bad[:3]}, "
            f"unexpected {list(unexpected)[:3]}"
        )
