"""Run files: a run folder held by one process at a time, JSON and CSV files written atomically,
checkpoints of tensors and plain containers only (read with ``torch.load(weights_only=True)``,
which can never execute code), a Trainer restored from one (:func:`load_trainer`), and the
callback that writes a run's files (:class:`RunFiles`)."""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import os
import pickle
import shutil
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .config import MMIMConfig, check_resumable
from .formats import atomic_path
from .train import Callback, CheckpointError, Trainer, seed_everything

__all__ = [
    "CHECKPOINT_FORMAT",
    "RunFiles",
    "RunFolderError",
    "load_checkpoint",
    "load_trainer",
    "read_checkpoint",
    "read_json",
    "run_folder",
    "save_checkpoint",
    "strict_json",
    "write_csv",
    "write_json",
]

CHECKPOINT_FORMAT = "mmim-lite/2"
LOCK_NAME = ".mmim-lite.lock"  #: a run folder's lock file (held while a process writes the run)
#: keys of every checkpoint, and those only a trainer's (``kind="trainer"``, resumable) has
_CHECKPOINT_KEYS = ("kind", "config", "visual_dim", "acoustic_dim", "memories", "model", "epoch")
_TRAINER_KEYS = (
    "best_model",
    "optimizers",
    "schedulers",
    "rng",
    "steps",
    "best_valid_mae",
    "best_epoch",
    "bad_epochs",
    "history",
    "trace",
    "result",
)


class RunFolderError(ValueError):
    """A run folder is in use by another process, or holds a run this one would be mixed with."""


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


def read_json(path: str | Path) -> Any:
    """A JSON file's content, or None when the file does not exist."""
    path = Path(path)
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read {path}: {err}") from None


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


def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> None:
    """``torch.save`` of a Trainer's state (:meth:`~mmim_lite.train.Trainer.state_dict` or
    :meth:`~mmim_lite.train.Trainer.best_state_dict`) with its format, atomically: an interrupted
    save never leaves a broken checkpoint."""
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], MMIMConfig]:
    """A checkpoint (:func:`load_checkpoint`) with every key of its kind, and its config."""
    state = load_checkpoint(path)
    need = _CHECKPOINT_KEYS + (_TRAINER_KEYS if state.get("kind") == "trainer" else ())
    if missing := [k for k in need if k not in state]:
        raise CheckpointError(
            f"{path}: expected a complete mmim-lite checkpoint, missing key(s) {missing}"
        )
    try:
        return state, MMIMConfig.from_dict(state["config"])
    except ValueError as err:
        raise CheckpointError(f"{path}, key 'config': {err}") from None


def load_trainer(
    path: str | Path,
    splits: Mapping[str, Sequence[Any]],
    config: MMIMConfig | None = None,
    *,
    state: tuple[dict[str, Any], MMIMConfig] | None = None,
    **kwargs: Any,
) -> Trainer:
    """A Trainer restored from ``checkpoint.pt`` (resume) or ``best.pt`` (evaluation), with the
    stored config or ``config``, which may only raise ``epochs`` and ``patience``
    (:func:`~mmim_lite.config.check_resumable`); seeded as a new run is. ``state``: ``path``'s
    :func:`read_checkpoint`, if already read. ``kwargs`` go to :class:`~mmim_lite.train.Trainer`."""
    state, stored = state or read_checkpoint(path)
    config = config or stored
    check_resumable(stored, config, str(path))
    seed_everything(config.seed)
    trainer = Trainer(config, splits, **kwargs)
    trainer.load_state_dict(state)
    return trainer


class RunFiles(Callback):
    """A Trainer callback that writes one run's files into ``folder``: config.json at the start;
    after each epoch best.pt (when the validation MAE improved), checkpoint.pt (resumable),
    history.csv and trace.csv; at the end best.pt with the result, and metrics.json."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def on_start(self, trainer: Trainer) -> None:
        write_json(trainer.config.to_dict(), self.folder / "config.json")

    def on_epoch(self, trainer: Trainer, row: dict[str, Any]) -> None:
        if trainer.best_epoch == trainer.epoch:  # a new best: its weights and validation metrics
            valid = {k[len("valid_") :]: v for k, v in row.items() if k.startswith("valid_")}
            self._best(trainer, {"valid": valid})
        save_checkpoint(trainer.state_dict(), self.folder / "checkpoint.pt")
        write_csv(trainer.history, self.folder / "history.csv")
        trace = [
            {"epoch": p.epoch, "stage": p.stage, "step": p.step, **p.losses, **p.grads}
            for p in trainer.trace
        ]
        write_csv(trace, self.folder / "trace.csv")

    def on_end(self, trainer: Trainer, result: dict[str, Any]) -> None:
        self._best(trainer, result)
        write_json(result, self.folder / "metrics.json")

    def _best(self, trainer: Trainer, metrics: Mapping[str, Any]) -> None:
        state = {**trainer.best_state_dict(), "metrics": copy.deepcopy(dict(metrics))}
        save_checkpoint(state, self.folder / "best.pt")
