"""Writers for the two released MOSI/MOSEI layouts (field guide §4).

They turn ``{"train", "valid", "test"}`` lists of :class:`~mmim_lite.data.Sample` (for example
SynthMOSI) into files that :func:`~mmim_lite.data.load_dataset` reads back unchanged: text,
features (as float32), labels (as float32) and ids. This is how the loaders are tested without
the real data, which cannot be downloaded here.

Only the keys the loaders need (plus MMSA's label annotations) are written; the word-vector
``text`` arrays of the real files (GloVe / BERT features) are replaced by a small zero
placeholder in the MulT layout and left out of the MMSA layout.
"""

from __future__ import annotations

import csv
import os
import pickle
from typing import Any, Mapping, Sequence

import numpy as np

from .safepickle import DatasetFormatError

__all__ = ["save_mmsa_pickle", "save_mult_pickle"]

SPLITS = ("train", "valid", "test")


def _check_splits(splits: Mapping[str, Sequence[Any]], target: str) -> None:
    missing = [s for s in SPLITS if s not in splits]
    if missing:
        raise DatasetFormatError(f"{target}: expected splits {list(SPLITS)} to write, missing {missing}")


def _pad(seqs: Sequence[np.ndarray], front: bool, what: str, pad_to: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stack (L_i, d) frame arrays into (N, L, d) float32 with zero padding at the front or end.

    L is ``pad_to`` when given (it must hold the longest clip), else the longest clip.
    """
    dims = {np.shape(x)[1] for x in seqs if np.ndim(x) == 2}
    if len(dims) > 1 or any(np.ndim(x) != 2 for x in seqs):
        raise DatasetFormatError(f"{what}: expected (L, d) arrays with one d, found dims {sorted(dims)}")
    dim = dims.pop() if dims else 1
    lengths = np.array([len(x) for x in seqs], dtype=np.int64)
    max_len = int(lengths.max()) if len(seqs) else 0
    if pad_to is not None:
        if pad_to < max_len:
            raise DatasetFormatError(f"{what}: expected pad_to >= the longest clip ({max_len} frames), found {pad_to}")
        max_len = pad_to
    out = np.zeros((len(seqs), max_len, dim), dtype=np.float32)
    for i, x in enumerate(seqs):
        if lengths[i]:
            if front:
                out[i, max_len - lengths[i] :] = x
            else:
                out[i, : lengths[i]] = x
    return out, lengths


def _dump(obj: Any, path: str | os.PathLike[str], protocol: int) -> None:
    """Write atomically: a partial file never replaces a good one."""
    target = os.fspath(path)
    tmp = target + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    os.replace(tmp, target)


def save_mmsa_pickle(splits: Mapping[str, Sequence[Any]], path: str | os.PathLike[str], protocol: int = 4,
                     pad_to: tuple[int, int] | None = None) -> None:
    """Write an MMSA-style ``unaligned_50.pkl``: end padding, explicit lengths, ``raw_text``.

    ``pad_to=(visual_frames, acoustic_frames)`` pads every split to fixed lengths as the released
    files do (default: the longest clip of each split). ``protocol`` is the pickle protocol.
    """
    _check_splits(splits, os.fspath(path))
    vis_to, aud_to = pad_to if pad_to is not None else (None, None)
    data = {}
    for split in SPLITS:
        samples = splits[split]
        where = f"{os.fspath(path)}, split '{split}'"
        vision, v_len = _pad([s.visual for s in samples], front=False, what=f"{where}, key 'vision'", pad_to=vis_to)
        audio, a_len = _pad([s.acoustic for s in samples], front=False, what=f"{where}, key 'audio'", pad_to=aud_to)
        labels = np.array([s.label for s in samples], dtype=np.float32)
        data[split] = {
            "raw_text": np.array([s.text for s in samples], dtype=object),
            "id": np.array([s.id for s in samples], dtype=object),
            "vision": vision,
            "vision_lengths": v_len,
            "audio": audio,
            "audio_lengths": a_len,
            "regression_labels": labels,
            "classification_labels": (np.sign(labels) + 1).astype(np.int64),  # 0 neg, 1 neutral, 2 pos
            "annotations": [("Negative", "Neutral", "Positive")[int(np.sign(y)) + 1] for y in labels],
        }
    _dump(data, path, protocol)


def save_mult_pickle(
    splits: Mapping[str, Sequence[Any]],
    pkl_path: str | os.PathLike[str],
    csv_path: str | os.PathLike[str],
    protocol: int = 4,
    pad_to: tuple[int, int] | None = None,
) -> None:
    """Write a MulT-style ``*_data_noalign.pkl`` (front padding, byte ids) and its label CSV.

    ``pad_to`` and ``protocol`` as in :func:`save_mmsa_pickle`.
    Ids must read ``<video_id>_<clip_id>``; the CSV gets columns ``video_id, clip_id, text,
    label, mode`` with the id split on its last underscore. Because the MulT length is the
    number of frames that are not all zero, a sample holding an all-zero frame cannot be
    represented and raises :class:`DatasetFormatError`.
    """
    target = os.fspath(pkl_path)
    _check_splits(splits, target)
    vis_to, aud_to = pad_to if pad_to is not None else (None, None)
    data, rows = {}, []
    for split in SPLITS:
        samples = splits[split]
        where = f"{target}, split '{split}'"
        for s in samples:
            if "_" not in s.id:
                raise DatasetFormatError(f"{where}, key 'id': expected '<video_id>_<clip_id>', found '{s.id}'")
            for key, x in (("vision", s.visual), ("audio", s.acoustic)):
                if len(x) and not np.all(np.any(np.asarray(x) != 0, axis=1)):
                    raise DatasetFormatError(
                        f"{where}, key '{key}': sample '{s.id}' has an all-zero frame, which the MulT "
                        "front-padding convention would read as padding"
                    )
            video, clip = s.id.rsplit("_", 1)
            rows.append((video, clip, s.text, repr(float(s.label)), split))
        vision, _ = _pad([s.visual for s in samples], front=True, what=f"{where}, key 'vision'", pad_to=vis_to)
        audio, _ = _pad([s.acoustic for s in samples], front=True, what=f"{where}, key 'audio'", pad_to=aud_to)
        ids = np.array([[s.id.encode("utf-8")] for s in samples], dtype=bytes).reshape(len(samples), 1)
        data[split] = {
            "vision": vision,
            "audio": audio,
            "text": np.zeros((len(samples), 1, 300), dtype=np.float32),  # GloVe placeholder
            "labels": np.array([s.label for s in samples], dtype=np.float32).reshape(-1, 1, 1),
            "id": ids,
        }
    csv_target = os.fspath(csv_path)
    with open(csv_target + ".tmp", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["video_id", "clip_id", "text", "label", "mode"])
        writer.writerows(rows)
    os.replace(csv_target + ".tmp", csv_target)
    _dump(data, pkl_path, protocol)
