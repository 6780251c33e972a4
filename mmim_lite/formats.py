"""Writing files: atomically (:func:`atomic_path`, a full disk named as such), and the two released
MOSI/MOSEI layouts (field guide §4): splits to files that :func:`~mmim_lite.data.load_dataset` reads
back unchanged. Word vectors: a zero placeholder (MulT) or none (MMSA)."""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import pickle
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from .data import SPLITS, Sample, pad_frames
from .safepickle import DatasetFormatError

__all__ = ["DiskFullError", "atomic_path", "save_mmsa_pickle", "save_mult_pickle"]

Splits = Mapping[str, Sequence[Sample]]


class DiskFullError(OSError):
    """The disk filled while a file was written; the file's previous version is intact."""


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


def _check_splits(splits: Splits, target: str) -> None:
    if missing := [s for s in SPLITS if s not in splits]:
        raise DatasetFormatError(
            f"{target}: expected splits {list(SPLITS)} to write, missing {missing}"
        )


def save_mmsa_pickle(
    splits: Splits,
    path: str | os.PathLike[str],
    protocol: int = 4,
    pad_to: tuple[int, int] | None = None,
) -> None:
    """Write an MMSA-style ``unaligned_50.pkl`` (end padding, explicit lengths, ``raw_text``);
    ``pad_to=(visual, acoustic)`` pads every split to those frame counts, as released files do
    (default: each split's longest clip)."""
    _check_splits(splits, os.fspath(path))
    data, (vis_to, aud_to) = {}, pad_to or (None, None)
    for split in SPLITS:
        samples, where = splits[split], f"{os.fspath(path)}, split '{split}'"
        vision, vl = pad_frames(
            [s.visual for s in samples], f"{where}, key 'vision'", length=vis_to
        )
        audio, al = pad_frames(
            [s.acoustic for s in samples], f"{where}, key 'audio'", length=aud_to
        )
        labels = np.array([s.label for s in samples], dtype=np.float32)
        data[split] = {
            "raw_text": np.array([s.text for s in samples], dtype=object),
            "id": np.array([s.id for s in samples], dtype=object),
            "vision": vision,
            "vision_lengths": vl,
            "audio": audio,
            "audio_lengths": al,
            "regression_labels": labels,
            "classification_labels": (np.sign(labels) + 1).astype(
                np.int64
            ),  # 0 neg, 1 neutral, 2 pos
            "annotations": [
                ("Negative", "Neutral", "Positive")[int(np.sign(y)) + 1] for y in labels
            ],
        }
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        pickle.dump(data, f, protocol=protocol)


def save_mult_pickle(
    splits: Splits,
    pkl_path: str | os.PathLike[str],
    csv_path: str | os.PathLike[str],
    protocol: int = 4,
    pad_to: tuple[int, int] | None = None,
) -> None:
    """Write a MulT-style ``*_data_noalign.pkl`` (front padding, byte ids ``<video_id>_<clip_id>``)
    and its label CSV (``video_id, clip_id, text, label, mode``). An all-zero frame cannot be
    written (MulT would read it as padding)."""
    target = os.fspath(pkl_path)
    _check_splits(splits, target)
    data, rows, (vis_to, aud_to) = {}, [], pad_to or (None, None)
    for split in SPLITS:
        samples, where = splits[split], f"{target}, split '{split}'"
        for s in samples:
            if "_" not in s.id:
                raise DatasetFormatError(
                    f"{where}, key 'id': expected '<video_id>_<clip_id>', found '{s.id}'"
                )
            for key, x in (("vision", s.visual), ("audio", s.acoustic)):
                if len(x) and not np.all(np.any(np.asarray(x) != 0, axis=1)):
                    raise DatasetFormatError(
                        f"{where}, key '{key}': '{s.id}' has an all-zero frame (read as padding)"
                    )
            rows.append((*s.id.rsplit("_", 1), s.text, repr(float(s.label)), split))
        data[split] = {
            "vision": pad_frames(
                [s.visual for s in samples], f"{where}, key 'vision'", front=True, length=vis_to
            )[0],
            "audio": pad_frames(
                [s.acoustic for s in samples], f"{where}, key 'audio'", front=True, length=aud_to
            )[0],
            "text": np.zeros((len(samples), 1, 300), dtype=np.float32),  # GloVe placeholder
            "labels": np.array([s.label for s in samples], dtype=np.float32).reshape(-1, 1, 1),
            "id": np.array([s.id.encode("utf-8") for s in samples], dtype=bytes).reshape(-1, 1),
        }
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("video_id", "clip_id", "text", "label", "mode"), *rows])
    with atomic_path(pkl_path) as tmp, open(tmp, "wb") as f:
        pickle.dump(data, f, protocol=protocol)
