"""The released CMU-MOSI / MOSEI feature files read into :class:`Sample` lists (field guide §4).
MulT-style pickles (``*_data_noalign.pkl``): ``vision``, ``audio`` (N, L, d) zero-padded at the
front (length: frames not all zero), ``labels``, ``id`` (``<video_id>_<clip_id>``), text from a
label CSV. MMSA-style (``unaligned_50.pkl``): ``raw_text``, ``vision``, ``audio``, ``*_lengths``,
``id``, ``regression_labels``, end padding. NaN / ±inf features become 0.0 in place at load time,
after the MulT lengths are counted (a frame holding NaN is real)."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .safepickle import DatasetFormatError, safe_load

__all__ = ["Sample", "SPLITS", "load_dataset", "pad_frames"]

SPLITS = ("train", "valid", "test")
FILE_NAMES = (
    "mosi_data_noalign.pkl",
    "mosei_senti_data_noalign.pkl",
    "unaligned_50.pkl",
    "Processed/unaligned_50.pkl",
)


@dataclass
class Sample:
    """One clip: text, (L_v, d_v) visual and (L_a, d_a) acoustic float32 frames, label in [-3, 3],
    segment id."""

    text: str
    visual: np.ndarray
    acoustic: np.ndarray
    label: float
    id: str


def pad_frames(
    seqs: Sequence[Any], what: str, front: bool = False, length: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(L_i, d) arrays as (N, L, d) float32, zero-padded at the front or end to ``length`` (or the
    longest), and L_i."""
    arrays = [np.asarray(x, dtype=np.float32) for x in seqs]
    if any(a.ndim != 2 for a in arrays) or len({a.shape[1] for a in arrays}) > 1:
        found = sorted({a.shape[1:] for a in arrays})
        raise DatasetFormatError(
            f"{what}: expected (L, d) arrays with one d, found trailing shapes {found}"
        )
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    size = int(lengths.max(initial=0)) if length is None else length
    if size < lengths.max(initial=0):
        raise DatasetFormatError(
            f"{what}: expected length >= the longest clip ({lengths.max()}), found {size}"
        )
    out = np.zeros((len(arrays), size, arrays[0].shape[1] if arrays else 1), dtype=np.float32)
    for row, a in zip(out, arrays):
        row[size - len(a) if front else 0 :][: len(a)] = a
    return out, lengths


def _array(
    split: Mapping[str, Any],
    key: str,
    where: str,
    ndim: Sequence[int],
    n: int | None,
    kinds: str = "",
    bounds: tuple[float, float] | None = None,
) -> np.ndarray:
    # split[key] as an array with one of `ndim` dimensions, `n` rows, a dtype kind in `kinds`,
    # values within `bounds`
    where = f"{where}, key '{key}'"
    if key not in split:
        raise DatasetFormatError(
            f"{where}: expected key '{key}', found keys {sorted(map(str, split.keys()))}"
        )
    try:
        arr = np.asarray(split[key])
    except (ValueError, TypeError) as exc:
        raise DatasetFormatError(
            f"{where}: expected an array, found a {type(split[key]).__name__} ({exc})"
        ) from None
    if arr.ndim not in ndim:
        raise DatasetFormatError(
            f"{where}: expected {' or '.join(map(str, ndim))} dimensions, found shape {arr.shape}"
        )
    if n is not None and arr.shape[0] != n:
        raise DatasetFormatError(
            f"{where}: expected {n} rows (as in the split's other keys), found {arr.shape[0]}"
        )
    if kinds and (
        arr.dtype.kind not in kinds
        or arr.dtype.kind == "f"
        and kinds == "iuf"
        and np.any(np.mod(arr, 1))
    ):
        what = "integer lengths" if kinds == "iuf" else "numeric values"
        raise DatasetFormatError(f"{where}: expected {what}, found dtype {arr.dtype}")
    if bounds and len(
        bad := np.flatnonzero(~((arr >= bounds[0]) & (arr <= bounds[1])))
    ):  # NaN is out of bounds
        raise DatasetFormatError(
            f"{where}: expected values in [{bounds[0]}, {bounds[1]}], found {arr.flat[bad[0]]}"
        )
    return arr


def _to_str(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else value.tolist()
    try:
        return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else str(value)
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _norm_clip(clip: str) -> str:  # "003", "3.0" -> "3"; other clip ids unchanged
    try:
        return str(int(float(clip))) if float(clip).is_integer() else clip.strip()
    except ValueError:
        return clip.strip()


def _clean(x: np.ndarray, count: bool) -> tuple[np.ndarray, np.ndarray]:
    # float32 x (in place if it is), NaN/±inf -> 0.0, and the MulT lengths: frames whose |x| sum is
    # not 0, counted on
    # the raw values (a frame holding NaN is real). A clip holding NaN/inf has no finite sum: only
    # those are cleaned.
    out, lengths = x.astype(np.float32, copy=not x.flags.writeable), np.zeros(len(x), np.int64)
    if count:
        finite, ones = np.ones(len(x), bool), np.ones(x.shape[2], x.dtype)
        step = max(1, (1 << 22) // max(1, x[:1].nbytes))  # ~4 MiB blocks: one pass, in cache
        for i in range(0, len(x), step):
            sums = np.abs(x[i : i + step]) @ ones
            lengths[i : i + step], finite[i : i + step] = (
                np.count_nonzero(sums, axis=1),
                np.isfinite(sums).all(1),
            )
    else:
        finite = np.isfinite(out.reshape(len(out), -1).sum(axis=1, dtype=np.float32))
    for i in np.flatnonzero(~finite):  # in place, one clip at a time: no copy of the bad clips
        out[i][~np.isfinite(out[i])] = 0.0
    return out, lengths


def _read_label_csv(csv_path: str) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    # {"<video_id>_<clip_id>": text} and {(video_id, normalised clip_id): text}; an id's first row
    # wins
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            table = [row for row in csv.reader(f) if row]
    except (OSError, UnicodeDecodeError) as exc:  # missing, unreadable or not UTF-8
        raise DatasetFormatError(
            f"{csv_path}: cannot open label CSV as UTF-8 text ({exc})"
        ) from None
    columns = [c.strip() for c in (table[0] if table else [])]
    if missing := [c for c in ("video_id", "clip_id", "text") if c not in columns]:
        raise DatasetFormatError(
            f"{csv_path}: expected columns video_id, clip_id, text; missing {missing}"
        )
    if bad := [(i, len(row)) for i, row in enumerate(table) if len(row) != len(columns)]:
        raise DatasetFormatError(
            f"{csv_path}: row {bad[0][0]}: expected {len(columns)} fields, found {bad[0][1]}"
        )
    iv, ic, it = (columns.index(c) for c in ("video_id", "clip_id", "text"))
    rows = table[:0:-1]  # reversed, without the header: the first row of an id wins
    return {f"{r[iv]}_{r[ic]}": r[it] for r in rows}, {
        (r[iv].strip(), _norm_clip(r[ic])): r[it] for r in rows
    }


def load_dataset(
    path: str | os.PathLike[str], label_csv: str | os.PathLike[str] | None = None
) -> dict[str, list[Sample]]:
    """A MulT/MMSA pickle (or a folder holding one of :data:`FILE_NAMES`) as ``{"train", "valid",
    "test"}`` lists of :class:`Sample`; MulT text comes from ``label_csv`` (default: ``label.csv``
    beside the pickle or one folder up)."""
    pkl = Path(path)
    if not pkl.exists():
        raise DatasetFormatError(f"{pkl}: no such file or folder")
    if pkl.is_dir():
        found = [pkl / name for name in FILE_NAMES if (pkl / name).is_file()]
        if len(found) != 1:
            what = ", ".join(str(p.relative_to(pkl)) for p in found) or "none"
            raise DatasetFormatError(
                f"{pkl}: expected exactly one of {', '.join(FILE_NAMES)}, found {what}"
            )
        pkl = found[0]
    data = safe_load(pkl)
    if not isinstance(data, Mapping):
        raise DatasetFormatError(
            f"{pkl}: expected a dict with keys {list(SPLITS)}, found {type(data).__name__}"
        )
    for split in SPLITS:
        if not isinstance(data.get(split), Mapping):
            found = sorted(map(str, data)) if split not in data else type(data[split]).__name__
            raise DatasetFormatError(
                f"{pkl}, split '{split}': expected a dict (splits {list(SPLITS)}), found {found}"
            )
    keys = set(data["train"].keys())
    mult = not {"raw_text", "regression_labels"} & keys
    if mult and not {"labels", "vision"} <= keys:
        raise DatasetFormatError(
            f"{pkl}, split 'train': expected MulT keys (vision, audio, labels, id) or MMSA keys "
            f"(raw_text, vision, audio, *_lengths, id, regression_labels), found {sorted(keys)}"
        )
    if mult and label_csv is None:
        label_csv = next(
            (c for c in (pkl.parent / "label.csv", pkl.parent.parent / "label.csv") if c.is_file()),
            None,
        )
        if label_csv is None:
            raise DatasetFormatError(
                f"{pkl}: a MulT-style pickle holds no text; expected label_csv=... (columns "
                "video_id, clip_id, text) or a label.csv beside the pickle, found none"
            )
    exact, pairs = _read_label_csv(os.fspath(label_csv)) if mult else ({}, {})
    out, cleaned, label_key, dims = {}, {}, "labels" if mult else "regression_labels", {}
    for split in SPLITS:
        where, d = f"{pkl}, split '{split}'", data[split]
        ids = _array(d, "id", where, (1, 2) if mult else (1,), None)
        if len(ids) == 0:
            raise DatasetFormatError(f"{where}: expected at least one clip, found none")
        labels = (
            _array(d, label_key, where, (1, 2, 3), len(ids), "fiub", (-3, 3))
            .reshape(-1)
            .astype(float)
        )
        if len(labels) != len(ids):
            raise DatasetFormatError(
                f"{where}, key '{label_key}': expected one label per clip, found {len(labels)}"
            )
        clips, texts, segs = {}, [], []
        for key in ("vision", "audio"):
            x = _array(d, key, where, (3,), len(ids), "fiub")
            if dims.setdefault(key, x.shape[2]) != x.shape[2]:  # one feature size in every split
                raise DatasetFormatError(
                    f"{where}, key '{key}': expected {dims[key]} features per "
                    f"frame (as in split 'train'), found {x.shape[2]}"
                )
            if (
                id(x) not in cleaned
            ):  # splits may share arrays: each is counted (on raw values) and cleaned once
                cleaned[id(x)] = (x, *_clean(x, count=mult))  # x kept alive: its id stays unique
            _, x, n = cleaned[id(x)]
            n = (
                n
                if mult
                else _array(
                    d, f"{key}_lengths", where, (1,), len(ids), "iuf", (0, x.shape[1])
                ).astype(int)
            )
            starts = (
                x.shape[1] - n if mult else 0 * n
            ).tolist()  # MulT pads at the front, MMSA at the end
            clips[key] = [x[i, s : s + k] for i, (s, k) in enumerate(zip(starts, n.tolist()))]
        if not mult:
            texts = [_to_str(t) for t in _array(d, "raw_text", where, (1,), len(ids)).tolist()]
            segs = [_to_str(s).strip() for s in ids.tolist()]
        else:
            for i, value in enumerate((ids if ids.ndim == 1 else ids[:, 0]).tolist()):
                seg = _to_str(value).strip()
                text = exact.get(seg)
                if (
                    text is None and "_" in seg
                ):  # video ids may hold "_": the clip id follows the last one
                    video, _, clip = seg.rpartition("_")
                    text = pairs.get((video, _norm_clip(clip)))
                if (
                    text is None and ids.ndim == 2 and ids.shape[1] > 1
                ):  # video, clip in two columns
                    clip = _to_str(ids[i, 1]).strip()
                    text = pairs.get((seg, _norm_clip(clip)))
                    seg = f"{seg}_{clip}" if text is not None else seg
                if text is None:
                    raise DatasetFormatError(
                        f"{where}, key 'id': expected '{seg}' (row {i}) in {label_csv}"
                    )
                texts.append(text)
                segs.append(seg)
        out[split] = [
            Sample(*row)
            for row in zip(texts, clips["vision"], clips["audio"], labels.tolist(), segs)
        ]
    return out
