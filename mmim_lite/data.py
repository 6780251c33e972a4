"""Loading the released CMU-MOSI / CMU-MOSEI feature files into :class:`Sample` lists.

Two released layouts are read (field guide §4):

* **MulT-style** (``mosi_data_noalign.pkl``, ``mosei_senti_data_noalign.pkl``): per split
  ``vision`` (N, L_v, d_v), ``audio`` (N, L_a, d_a), ``labels`` (N, 1, 1), ``id`` (N, k) whose
  column 0 is the segment id ``<video_id>_<clip_id>`` (bytes). Sequences are zero-padded at
  the **front**: the length is the number of frames that are not all zero and the real frames
  are the last ones. The raw text comes from a label CSV (columns ``video_id, clip_id, text``),
  matched on ``f"{video_id}_{clip_id}"``; video ids may contain ``_``, so a segment id is
  split on its **last** underscore.
* **MMSA-style** (``Processed/unaligned_50.pkl``): per split ``raw_text``, ``audio``,
  ``vision``, ``audio_lengths``, ``vision_lengths``, ``id``, ``regression_labels``; zero
  padding at the **end**, lengths given explicitly.

NaN / inf policy: every NaN, +inf and -inf in the visual and acoustic features is replaced by
``0.0`` (the value the community loaders use), in place, *after* the MulT lengths have been
counted (so a frame holding NaN counts as a real frame). Features are float32 (converted only
when the file stores another dtype).

Cost: :func:`load_dataset` unpickles and validates everything (shapes, lengths, labels, ids
against the CSV) eagerly, so a bad file fails at once and nothing is returned partially. The
per-clip work (cleaning, MulT lengths) runs block by block on first access to a clip
(:class:`SampleSequence`), in place; a :class:`Sample`'s arrays are views into the loaded
arrays, so memory stays at about the file size.

Safe unpickling lives in :mod:`mmim_lite.safepickle`, the file writers used to build fixtures
in :mod:`mmim_lite.formats`, and the torch ``MSADataset`` / ``collate_batch`` in
:mod:`mmim_lite.batching`; all are importable from here (torch is imported only on first use).
"""

from __future__ import annotations

import csv
import io
import operator
import os
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from .formats import save_mmsa_pickle, save_mult_pickle
from .safepickle import DatasetFormatError, UnsafePickleError, safe_load

__all__ = [
    "Sample", "SampleSequence", "load_dataset", "DatasetFormatError", "UnsafePickleError", "SPLITS",
    "save_mmsa_pickle", "save_mult_pickle", "MSADataset", "collate_batch", "make_synthmosi",
]

SPLITS = ("train", "valid", "test")
MULT_FILES = ("mosi_data_noalign.pkl", "mosei_senti_data_noalign.pkl")
MMSA_FILES = ("unaligned_50.pkl", "Processed/unaligned_50.pkl")
_CHUNK_BYTES = 1 << 22  # features are cleaned in blocks of about 4 MiB


@dataclass
class Sample:
    """One clip: raw text, visual (L_v, d_v) and acoustic (L_a, d_a) float32 frames without
    padding, sentiment label in [-3, 3], and the segment id."""

    text: str
    visual: np.ndarray
    acoustic: np.ndarray
    label: float
    id: str


def __getattr__(name: str) -> Any:  # PEP 562: lazy re-exports, avoiding import cycles
    if name in ("make_synthmosi", "SynthMOSI"):
        from . import synth

        return getattr(synth, name)
    if name in ("MSADataset", "collate_batch"):
        from . import batching

        return getattr(batching, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------- helpers
def _fail(where: str, msg: str) -> DatasetFormatError:
    return DatasetFormatError(f"{where}: {msg}")


def _get(split_data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in split_data:
        found = sorted(map(str, split_data.keys()))
        raise _fail(f"{where}, key '{key}'", f"expected key '{key}', found keys {found}")
    return split_data[key]


def _as_array(value: Any, where: str, ndim: Sequence[int], n: int | None) -> np.ndarray:
    """Check type, number of dimensions and first-axis length of one stored array."""
    try:
        arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise _fail(where, f"expected an array, found {type(value).__name__} that is not one ({exc})") from None
    if arr.ndim not in ndim:
        raise _fail(where, f"expected {' or '.join(map(str, ndim))} dimensions, found shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise _fail(where, f"expected {n} rows (as in the other keys of this split), found {arr.shape[0]}")
    return arr


def _check_features(value: Any, where: str, n: int | None) -> np.ndarray:
    arr = _as_array(value, where, (3,), n)
    if arr.dtype.kind not in "fiub":
        raise _fail(where, f"expected a numeric feature array, found dtype {arr.dtype}")
    return arr


def _clean_block(arr: np.ndarray, lo: int, hi: int, count_frames: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows ``lo:hi`` of a (N, L, d) feature array as float32 with NaN/±inf set to 0.0.

    Cleaned in place when the array is already writable float32 (no copy). With
    ``count_frames`` also return each row's number of frames that are not all zero, counted
    on the raw values (a frame holding NaN counts as real): the MulT length.
    """
    src = arr[lo:hi]
    block = src if (src.dtype == np.float32 and src.flags.writeable) else src.astype(np.float32)
    if not count_frames:
        finite = np.isfinite(block)
        if not finite.all():
            block[~finite] = 0.0
        return block, None
    # Per-frame sums of |x|: zero iff the frame is all zero (no cancellation between
    # non-negative terms); NaN/inf iff the frame holds NaN/inf (or overflows, which is harmless).
    raw = src if src.dtype.kind == "f" else src.astype(np.float64)
    frame_abs_sum = np.einsum("ijk->ij", np.abs(raw))
    counts = np.count_nonzero(frame_abs_sum, axis=1)
    finite_frames = np.isfinite(frame_abs_sum)
    if not finite_frames.all():
        rows = np.flatnonzero(~finite_frames.all(axis=1))
        sub = block[rows]
        sub[~np.isfinite(sub)] = 0.0
        block[rows] = sub
    return block, counts


class SampleSequence(SequenceABC):
    """The clips of one split: ``len``, indexing (ints, slices) and iteration give :class:`Sample`.

    Loading only validates; the features are cleaned (float32, NaN/±inf -> 0.0) block by block
    (about 4 MiB) the first time a clip of the block is accessed, in place, and each
    :class:`Sample` holds views into the loaded arrays. ``vision_lengths is None`` means the
    MulT convention (front padding, length = number of frames that are not all zero);
    otherwise the given lengths and end padding (MMSA).
    """

    def __init__(self, texts: list[str], ids: list[str], labels: np.ndarray, vision: np.ndarray,
                 audio: np.ndarray, vision_lengths: np.ndarray | None = None,
                 audio_lengths: np.ndarray | None = None) -> None:
        self._texts, self._ids, self._labels = texts, ids, labels
        self._vision, self._audio = vision, audio
        self._v_len, self._a_len = vision_lengths, audio_lengths
        row_bytes = 4 * max(vision.shape[1] * vision.shape[2], audio.shape[1] * audio.shape[2], 1)
        self._step = max(1, _CHUNK_BYTES // row_bytes)
        self._cache: list[Sample | None] = [None] * len(texts)

    def __len__(self) -> int:
        return len(self._cache)

    def __repr__(self) -> str:
        return f"SampleSequence({len(self)} samples)"

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = operator.index(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"sample index {index} out of range for {len(self)} samples")
        if self._cache[i] is None:
            self._build(i // self._step)
        return self._cache[i]

    def _build(self, chunk: int) -> None:
        lo = chunk * self._step
        hi = min(len(self), lo + self._step)
        front = self._v_len is None
        vision, v_len = _clean_block(self._vision, lo, hi, count_frames=front)
        audio, a_len = _clean_block(self._audio, lo, hi, count_frames=front)
        lv, la = vision.shape[1], audio.shape[1]
        for j in range(hi - lo):
            if front:
                v, a = vision[j, lv - v_len[j] :], audio[j, la - a_len[j] :]
            else:
                v, a = vision[j, : self._v_len[lo + j]], audio[j, : self._a_len[lo + j]]
            self._cache[lo + j] = Sample(self._texts[lo + j], v, a, float(self._labels[lo + j]), self._ids[lo + j])


def _check_labels(labels: np.ndarray, where: str) -> np.ndarray:
    if labels.dtype.kind not in "fiub":
        raise _fail(where, f"expected numeric labels, found dtype {labels.dtype}")
    labels = labels.astype(np.float64, copy=False)
    bad = ~(np.isfinite(labels) & (labels >= -3.0) & (labels <= 3.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _fail(where, f"expected labels in [-3, 3], found {labels[i]!r} at index {i}")
    return labels


def _to_str(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else value.tolist()
    if isinstance(value, (bytes, bytearray)):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")
    return str(value)


def _norm_clip(clip: str) -> str:
    clip = clip.strip()
    try:
        as_float = float(clip)
    except ValueError:
        return clip
    return str(int(as_float)) if as_float.is_integer() else clip


def _csv_rows(content: str) -> list[list[str]]:
    """Parse CSV text; without quote characters a plain split gives csv's result, faster."""
    if '"' in content:
        return [row for row in csv.reader(io.StringIO(content, newline="")) if row]
    lines = content.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [line.split(",") for line in lines if line]


def _read_label_csv(csv_path: str) -> tuple[dict[str, str], list[list[str]], tuple[int, int, int]]:
    """A label CSV as (``f"{video_id}_{clip_id}"`` -> text, its rows, column indices of
    video_id, clip_id, text). The first row of a repeated id wins."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            content = f.read()
    except OSError as exc:
        raise _fail(csv_path, f"cannot open label CSV ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise _fail(csv_path, f"expected UTF-8 text, found undecodable bytes ({exc.reason})") from None
    table = _csv_rows(content)
    columns = [c.strip() for c in (table[0] if table else [])]
    missing = [c for c in ("video_id", "clip_id", "text") if c not in columns]
    if missing:
        raise _fail(csv_path, f"expected columns video_id, clip_id, text; missing {missing}, found {columns}")
    iv, ic, it = (columns.index(c) for c in ("video_id", "clip_id", "text"))
    width = len(columns)
    if any(len(row) != width for row in table):
        bad = next(i for i, row in enumerate(table) if len(row) != width)
        raise _fail(csv_path, f"row {bad}: expected {width} fields, found {len(table[bad])}")
    rows = table[1:]
    exact = {f"{r[iv]}_{r[ic]}": r[it] for r in reversed(rows)}  # padded ids: see _parse_mult
    return exact, rows, (iv, ic, it)


# ----------------------------------------------------------------------------- per-format parsers
def _parse_mult(split_data: Mapping[str, Any], where: str, csv_path: str, table: tuple) -> SampleSequence:
    raw_ids = _as_array(_get(split_data, "id", where), f"{where}, key 'id'", (1, 2), None)
    n = raw_ids.shape[0]
    vision = _check_features(_get(split_data, "vision", where), f"{where}, key 'vision'", n)
    audio = _check_features(_get(split_data, "audio", where), f"{where}, key 'audio'", n)
    labels = _as_array(_get(split_data, "labels", where), f"{where}, key 'labels'", (1, 2, 3), n)
    if labels.size != n:
        raise _fail(f"{where}, key 'labels'", f"expected one label per clip, shape (N, 1, 1), found {labels.shape}")
    labels = _check_labels(labels.reshape(n), f"{where}, key 'labels'")
    exact, rows, (iv, ic, it) = table
    pairs: dict[tuple[str, str], str] = {}  # (video, normalised clip) -> text, built on a miss
    column = raw_ids if raw_ids.ndim == 1 else raw_ids[:, 0]
    values = column.tolist()
    try:  # the usual case, UTF-8 bytes, without a function call per id
        ids = [x.decode("utf-8").strip() for x in values] if column.dtype.kind == "S" else None
    except UnicodeDecodeError:
        ids = None
    ids = ids if ids is not None else [_to_str(x).strip() for x in values]
    texts = [exact.get(seg) for seg in ids]
    for i in (i for i, t in enumerate(texts) if t is None):
        if not pairs:
            for r in reversed(rows):
                pairs[(r[iv].strip(), _norm_clip(r[ic]))] = r[it]
        seg = ids[i]
        if "_" in seg:  # video ids may hold "_": the clip id follows the last one
            video, clip = seg.rsplit("_", 1)
            texts[i] = pairs.get((video, _norm_clip(clip)))
        if texts[i] is None and raw_ids.ndim == 2 and raw_ids.shape[1] > 1:  # video, clip in two columns
            clip = _to_str(raw_ids[i, 1]).strip()
            texts[i] = pairs.get((seg, _norm_clip(clip)))
            ids[i] = f"{seg}_{clip}" if texts[i] is not None else seg
        if texts[i] is None:
            raise _fail(f"{where}, key 'id'", f"expected segment id '{seg}' (row {i}) in label CSV {csv_path}, found no such row")
    return SampleSequence(texts, ids, labels, vision, audio)


def _lengths(value: Any, where: str, n: int, max_len: int) -> np.ndarray:
    arr = _as_array(value, where, (1,), n)
    if arr.dtype.kind not in "iuf" or (arr.dtype.kind == "f" and not np.all(np.mod(arr, 1) == 0)):
        raise _fail(where, f"expected integer lengths, found dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = (arr < 0) | (arr > max_len)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _fail(where, f"expected lengths in [0, {max_len}], found {arr[i]} at index {i}")
    return arr


def _parse_mmsa(split_data: Mapping[str, Any], where: str) -> SampleSequence:
    labels = _as_array(_get(split_data, "regression_labels", where), f"{where}, key 'regression_labels'", (1, 2), None)
    n = labels.shape[0]
    if labels.size != n:
        raise _fail(f"{where}, key 'regression_labels'", f"expected shape (N,), found {labels.shape}")
    labels = _check_labels(labels.reshape(n), f"{where}, key 'regression_labels'")
    raw_text = _as_array(_get(split_data, "raw_text", where), f"{where}, key 'raw_text'", (1,), n)
    ids = _as_array(_get(split_data, "id", where), f"{where}, key 'id'", (1,), n)
    vision = _check_features(_get(split_data, "vision", where), f"{where}, key 'vision'", n)
    audio = _check_features(_get(split_data, "audio", where), f"{where}, key 'audio'", n)
    v_len = _lengths(_get(split_data, "vision_lengths", where), f"{where}, key 'vision_lengths'", n, vision.shape[1])
    a_len = _lengths(_get(split_data, "audio_lengths", where), f"{where}, key 'audio_lengths'", n, audio.shape[1])
    texts = [x if type(x) is str else _to_str(x) for x in raw_text.tolist()]
    ids = [(x if type(x) is str else _to_str(x)).strip() for x in ids.tolist()]
    return SampleSequence(texts, ids, labels, vision, audio, v_len, a_len)


# ----------------------------------------------------------------------------- entry point
def _resolve(path: Path) -> Path:
    """A folder -> the one released pickle it holds under a usual name."""
    if not path.is_dir():
        if not path.exists():
            raise DatasetFormatError(f"{path}: no such file or folder")
        return path
    found = [path / name for name in MULT_FILES + MMSA_FILES if (path / name).is_file()]
    if len(found) != 1:
        what = "none" if not found else ", ".join(str(p.relative_to(path)) for p in found)
        raise DatasetFormatError(
            f"{path}: expected exactly one of {', '.join(MULT_FILES + MMSA_FILES)} in this folder, "
            f"found {what}; pass the file itself"
        )
    return found[0]


def _find_csv(pkl: Path) -> str:
    for folder in (pkl.parent, pkl.parent.parent):
        if (folder / "label.csv").is_file():
            return str(folder / "label.csv")
    raise DatasetFormatError(
        f"{pkl}: a MulT-style pickle holds no raw text; expected label_csv=... (columns video_id, "
        "clip_id, text) or a label.csv beside the pickle, found none"
    )


def load_dataset(path: str | os.PathLike[str], label_csv: str | os.PathLike[str] | None = None) -> dict[str, SampleSequence]:
    """Load a released MOSI/MOSEI feature file into ``{"train", "valid", "test"}`` lists of :class:`Sample`.

    ``path`` is a MulT-style or MMSA-style pickle, or a folder holding one under its usual
    name (``mosi_data_noalign.pkl``, ``mosei_senti_data_noalign.pkl``, ``unaligned_50.pkl``,
    ``Processed/unaligned_50.pkl``). The format is detected from the keys of the splits. For
    MulT-style files the text comes from ``label_csv`` (default: ``label.csv`` beside the pickle
    or one folder up). Unpickling is restricted (:mod:`mmim_lite.safepickle`). Any malformed
    input raises :class:`DatasetFormatError`; nothing is returned partially.
    """
    pkl = _resolve(Path(path))
    data = safe_load(pkl)
    if not isinstance(data, Mapping):
        raise DatasetFormatError(f"{pkl}: expected a dict with keys {list(SPLITS)}, found {type(data).__name__}")
    for split in SPLITS:
        if split not in data:
            raise DatasetFormatError(f"{pkl}, split '{split}': expected splits {list(SPLITS)}, found {sorted(map(str, data))}")
        if not isinstance(data[split], Mapping):
            raise DatasetFormatError(f"{pkl}, split '{split}': expected a dict of arrays, found {type(data[split]).__name__}")
    keys = set(data["train"].keys())
    if {"raw_text", "regression_labels"} & keys:
        fmt = "mmsa"
    elif {"labels", "vision"} <= keys:
        fmt = "mult"
    else:
        raise DatasetFormatError(
            f"{pkl}, split 'train': expected MulT keys (vision, audio, labels, id) or MMSA keys "
            f"(raw_text, vision, audio, *_lengths, id, regression_labels), found {sorted(map(str, keys))}"
        )
    csv_path, table = "", ({}, [], (0, 0, 0))
    if fmt == "mult":
        csv_path = os.fspath(label_csv) if label_csv is not None else _find_csv(pkl)
        table = _read_label_csv(csv_path)
    out: dict[str, SampleSequence] = {}
    for split in SPLITS:
        where = f"{pkl}, split '{split}'"
        out[split] = _parse_mult(data[split], where, csv_path, table) if fmt == "mult" else _parse_mmsa(data[split], where)
    return out
