"""Tests of mmim_lite.train: Algorithm 1's two stages, selection, checkpoints and resume."""

from __future__ import annotations

import builtins
import csv
import dataclasses
import io
import json
import math
import os
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch

from mmim_lite.batching import collate_batch
from mmim_lite.config import ConfigError, MMIMConfig, check_resumable
from mmim_lite.runtime import RunFiles, load_checkpoint, load_trainer
from mmim_lite.synth import make_synthmosi
from mmim_lite.train import (
    Callback,
    CheckpointError,
    Trainer,
    TrainingDivergedError,
    resolve_device,
)


@pytest.fixture(scope="module")
def synth():
    return make_synthmosi(
        n_train=128, n_valid=48, n_test=96, seed=0, visual_frames=(5, 20), acoustic_frames=(5, 20)
    )


@pytest.fixture(scope="module")
def splits(synth):
    return synth.splits


def cfg(**overrides) -> MMIMConfig:
    base = dict(
        text_encoder="tiny", batch_size=32, eval_batch_size=64, epochs=2, patience=0, trace_every=2
    )
    return MMIMConfig.preset("mosi", **base).replace(**overrides)


class StopAfter(Callback):
    """Interrupts a run after epoch ``n``'s callbacks before it (a kill between epochs)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def on_epoch(self, trainer, row) -> None:
        if trainer.epoch == self.n:
            raise KeyboardInterrupt


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def changed(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> set[str]:
    return {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}


# ----------------------------------------------------------------------------- Algorithm 1
def test_stage1_updates_only_predictors_and_stage2_never(splits, new_trainer):
    tr = new_trainer(cfg(), splits, progress=False)
    names = {n for n, _ in tr.model.named_parameters()}
    predictor_names = {n for n in names if n.startswith("predictors.")}
    before = snapshot(tr.model)
    stats = tr.stage1_epoch()
    assert set(stats) == {"lld"} and tr.steps[1] == 4  # 128 / 32 batches
    assert changed(tr.model, before) == predictor_names
    # stage 1 builds no graph through the encoders: none of their parameters got a gradient
    assert all(p.grad is None for n, p in tr.model.named_parameters() if n not in predictor_names)
    before = snapshot(tr.model)
    tr.stage2_epoch()
    moved = changed(tr.model, before)
    assert not moved & predictor_names
    for prefix in ("text_model.", "visual_enc.", "acoustic_enc.", "fusion.", "cpc_heads."):
        assert any(n.startswith(prefix) for n in moved), prefix
    assert all(p.requires_grad for p in tr.model.predictor_parameters())  # restored after stage 2
    assert {len(m) for m in tr.model.memories.values()} == {1}  # memory pushed, 1 batch kept


def test_heads_of_the_objectives_beyond_the_paper_learn_in_stage_2_only(splits, new_trainer):
    """The cross-modal and entropy projections are stage-2 parameters (opt_main), never theta_q:
    stage 1 leaves them as they are, stage 2 moves them all; the cross-modal terms are traced."""
    tr = new_trainer(
        cfg(xmodal_pairs=("tv", "ta"), entropy_projection="tanh"), splits, progress=False
    )
    new = {
        n: id(p)
        for n, p in tr.model.named_parameters()
        if n.startswith(("xmodal_heads.", "entropy_proj."))
    }
    assert len(new) == 2 * 2 * 2 + 2 * 2  # (pairs x heads + targets) x (weight, bias)
    in_opt = lambda opt: {id(p) for g in opt.param_groups for p in g["params"]}  # noqa: E731
    assert set(new.values()) <= in_opt(tr.opt_main) and not set(new.values()) & in_opt(tr.opt_lld)
    before = snapshot(tr.model)
    tr.stage1_epoch()
    assert not changed(tr.model, before) & set(new)
    before = snapshot(tr.model)
    tr.stage2_epoch()
    assert set(new) <= changed(tr.model, before)
    assert tr.trace[-1].stage == 2
    assert {"xmodal_tv", "xmodal_ta", "xmodal"} <= set(tr.trace[-1].losses)


def test_partial_last_batch_never_becomes_the_memory(splits, new_trainer):
    """100 clips = 3 batches of 32 + 4: the memory carried into the next epoch holds a full batch,
    not the 4-clip remainder (a near-singular covariance in 16 dimensions)."""
    tr = new_trainer(cfg(), {**splits, "train": list(splits["train"])[:100]}, progress=False)
    tr.stage2_epoch()
    for memory in tr.model.memories.values():
        assert len(memory) == 1 and sum(len(y) for y in memory.read().values()) == 32


def test_stage1_fraction_and_trace(splits, new_trainer):
    tr = new_trainer(
        cfg(stage1_fraction=0.5, trace_every=2, ba_pairs=("tv",)), splits, progress=False
    )
    tr.train_epoch()
    assert tr.steps == {1: 2, 2: 4}  # D_sub = half of the 4 training batches
    assert [(p.epoch, p.stage, p.step) for p in tr.trace] == [(1, 1, 2), (1, 2, 2), (1, 2, 4)]
    assert {"task", "cpc", "ba", "main", "ba_tv", "cpc_t"} <= set(tr.trace[-1].losses)


def test_no_ba_pairs_skips_stage1(splits, new_trainer):
    tr = new_trainer(cfg(ba_pairs=()), splits, progress=False)
    assert tr.opt_lld is None and tr.stage1_epoch() == {}
    assert "train_ba" in tr.train_epoch() and tr.steps[1] == 0


def test_short_run_beats_training_mean(new_trainer):
    # full MMIM (both BA pairs, all CPC terms, paper's alpha/beta) on a small, clearer SynthMOSI
    data = make_synthmosi(
        n_train=192,
        n_valid=64,
        n_test=128,
        seed=1,
        visual_frames=(5, 20),
        acoustic_frames=(5, 20),
        visual_signal=2.0,
        acoustic_signal=2.0,
    )
    tr = new_trainer(cfg(epochs=4, batch_size=16), data.splits, progress=False)
    result = tr.fit()
    truth = np.array([s.label for s in data.splits["test"]])
    mean_mae = np.abs(truth - np.mean([s.label for s in data.splits["train"]])).mean()
    assert result["test"]["mae"] < 0.7 * mean_mae
    assert result["best_epoch"] == 1 + int(np.argmin([r["valid_mae"] for r in tr.history]))


def test_resume_equals_uninterrupted_and_outputs(splits, tmp_path, new_trainer):
    straight = new_trainer(cfg(), splits)
    result = straight.fit(RunFiles(tmp_path / "a"))
    part = new_trainer(cfg(), splits)
    with pytest.raises(KeyboardInterrupt):  # interrupted after checkpoint.pt of epoch 1
        part.fit(RunFiles(tmp_path / "b"), StopAfter(1))
    del part
    resumed = load_trainer(tmp_path / "b" / "checkpoint.pt", splits, progress=False)
    assert resumed.epoch == 1
    assert resumed.fit(RunFiles(tmp_path / "b")) == result
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    # files for the CLI
    out = tmp_path / "a"
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(result))
    assert MMIMConfig.from_dict(json.loads((out / "config.json").read_text())) == cfg()
    with (out / "history.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert (
        [int(r["epoch"]) for r in rows] == [1, 2]
        and "valid_mae" in rows[0]
        and "train_ba" in rows[0]
    )
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)  # plain tensors/containers only
    assert ckpt["epoch"] == 2 and set(ckpt["rng"]) == {"torch", "cuda"}
    # best.pt reproduces the stored test metrics exactly
    best = load_trainer(out / "best.pt", splits, progress=False)
    assert best.evaluate("test") == result["test"]
    assert best.best_epoch == result["best_epoch"] == load_checkpoint(out / "best.pt")["epoch"]
    with (out / "trace.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == len(straight.trace) > 0
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(
        p.name for p in out.iterdir()
    )


def test_resume_with_raised_epochs_and_patience(splits, tmp_path, new_trainer):
    """A run that stopped (epochs reached, or early stopping) continues when resumed with more
    epochs / more patience, and ends where an uninterrupted run with those settings ends."""
    straight = new_trainer(cfg(epochs=3, patience=5), splits, progress=False).fit()
    short = new_trainer(cfg(epochs=2, patience=1), splits, progress=False)
    short.fit(RunFiles(tmp_path))
    longer = load_trainer(
        tmp_path / "checkpoint.pt", splits, config=cfg(epochs=3, patience=5), progress=False
    )
    assert longer.epoch == 2 and not longer.done
    assert longer.fit() == straight
    for bad, words in ((cfg(epochs=1), "epochs 2 -> 1"), (cfg(epochs=3, lr_main=0.1), "lr_main")):
        with pytest.raises(ConfigError, match=words):
            load_trainer(tmp_path / "checkpoint.pt", splits, config=bad, progress=False)
    # patience 0 switches early stopping off: more patience than any number, and never lowered
    unlimited = load_trainer(tmp_path / "checkpoint.pt", splits, config=cfg(epochs=2, patience=0))
    assert unlimited.config.patience == 0
    check_resumable(cfg(patience=0), cfg(patience=0), "x")
    with pytest.raises(ConfigError, match="patience 0 -> 4"):
        check_resumable(cfg(patience=0), cfg(patience=4), "x")


def test_cached_text_features_match_encoder(splits, new_trainer):
    plain = new_trainer(cfg(freeze_text=True), splits, progress=False)
    cached = new_trainer(cfg(freeze_text=True, cache_text_features=True), splits, progress=False)
    feats = cached.text_features("valid")
    batch = collate_batch([cached.datasets["valid"][i] for i in range(16)])
    with torch.no_grad():
        ref = cached.model.eval().encode_text(batch)
    torch.testing.assert_close(feats[batch["index"]], ref)
    assert feats.shape == (48, 32)
    a, b = plain.evaluate("valid"), cached.evaluate("valid")  # same seed -> same weights
    assert a.keys() == b.keys() and all(math.isclose(a[k], b[k], abs_tol=1e-6) for k in a)


def test_non_finite_loss_names_term_epoch_step(splits, new_trainer):
    # "w/o history data" with no ridge: a singular covariance makes H(Y) = -inf (Table 4's NaN row)
    tr = new_trainer(cfg(memory_size=0, entropy_eps=0.0), splits, progress=False)
    with pytest.raises(TrainingDivergedError, match=r"'ba_tv'.*epoch 1, stage 2, step 1") as info:
        tr.fit()
    assert (info.value.term, info.value.epoch, info.value.step) == ("ba_tv", 1, 1)


# ----------------------------------------------------------------------------- unlabelled clips
def _relabel(samples, which, value):
    return [dataclasses.replace(x, label=value) if i in which else x for i, x in enumerate(samples)]


def test_labelled_subset_is_fixed_nested_and_sized(splits, new_trainer):
    subsets = {}
    for fraction, seed in ((0.1, 0), (0.1, 3), (0.25, 0), (1.0, 0)):
        tr = new_trainer(cfg(labeled_fraction=fraction, seed=seed), splits, progress=False)
        assert int(tr.labeled.sum()) == max(1, round(fraction * 128)) and len(tr.labeled) == 128
        subsets[fraction, seed] = set(np.flatnonzero(tr.labeled.numpy()))
    assert subsets[0.1, 0] == subsets[0.1, 3]  # the same clips for every seed (paired comparisons)
    assert subsets[0.1, 0] < subsets[0.25, 0] < subsets[1.0, 0]  # nested across fractions
    dropped = new_trainer(cfg(labeled_fraction=0.25, use_unlabeled=False), splits, progress=False)
    assert len(dropped.datasets["train"]) == 32 and bool(dropped.labeled.all())
    kept = [splits["train"][i] for i in sorted(subsets[0.25, 0])]
    assert [x.id for x in dropped.datasets["train"].samples] == [x.id for x in kept]


def test_unlabelled_clips_train_the_mi_terms_but_their_labels_are_never_read(splits, new_trainer):
    """One epoch with 25% labels: rewriting the labels of the unlabelled clips changes nothing (bit
    for bit), while the unlabelled clips still move the model (MI terms: dropping them changes the
    weights) and rewriting one labelled clip's label changes the weights."""

    def weights_after_epoch(train):
        tr = new_trainer(
            cfg(labeled_fraction=0.25, epochs=1), {**splits, "train": train}, progress=False
        )
        labeled = set(np.flatnonzero(tr.labeled.numpy()))
        tr.train_epoch()
        return snapshot(tr.model), labeled

    base, labeled = weights_after_epoch(list(splits["train"]))
    unlabeled = set(range(128)) - labeled
    rewritten, _ = weights_after_epoch(_relabel(splits["train"], unlabeled, 3.0))
    assert all(torch.equal(base[k], rewritten[k]) for k in base)
    negative = next(i for i in sorted(labeled) if splits["train"][i].label < 0)
    one_label, _ = weights_after_epoch(
        _relabel(splits["train"], {negative}, 3.0)
    )  # other sign and polarity
    assert any(not torch.equal(base[k], one_label[k]) for k in base)
    tr = new_trainer(
        cfg(labeled_fraction=0.25, use_unlabeled=False, epochs=1), splits, progress=False
    )
    tr.train_epoch()
    assert any(not torch.equal(base[k], p) for k, p in snapshot(tr.model).items())


# ----------------------------------------------------------------------------- bad inputs
def test_bad_inputs(splits, tmp_path, new_trainer):
    with pytest.raises(ValueError, match="valid"):
        new_trainer(cfg(), {"train": splits["train"]}, progress=False)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an mmim-lite checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")
    tr = new_trainer(cfg(epochs=1), splits, progress=False)
    RunFiles(tmp_path / "run").on_epoch(tr, tr.train_epoch())
    other = make_synthmosi(n_train=8, n_valid=8, n_test=8, seed=0, visual_dim=6)
    with pytest.raises(CheckpointError, match="dims"):
        load_trainer(tmp_path / "run" / "checkpoint.pt", other.splits, progress=False)


def test_frozen_pretrained_encoder_is_not_stored_but_reloads_exactly(tmp_path, new_trainer):
    small = make_synthmosi(
        n_train=40, n_valid=20, n_test=20, seed=1, visual_frames=(5, 10), acoustic_frames=(5, 10)
    ).splits
    config = MMIMConfig.preset("synthmosi", epochs=1, batch_size=20, eval_batch_size=20)
    assert config.text_encoder == "minilm" and config.freeze_text
    tr = new_trainer(config, small, progress=False)
    result = tr.fit(RunFiles(tmp_path))
    for name in ("checkpoint.pt", "best.pt"):
        state = load_checkpoint(tmp_path / name)
        assert not [k for k in state["model"] if k.startswith("text_model.")]
        assert any(k.startswith("visual_enc.") for k in state["model"])
    restored = load_trainer(tmp_path / "best.pt", small, progress=False)
    restored.use_best()
    assert restored.evaluate("test") == result["test"]


# ----------------------------------------------------------------------------- no files, no syncs
def test_a_fit_without_callbacks_reads_and_writes_no_file(
    splits, tmp_path, monkeypatch, new_trainer
):
    """The Trainer is Algorithm 1 only: with no callback, a whole fit opens no file (run files are
    the RunFiles callback's), and the RNG is the caller's to seed (building a Trainer draws from it
    but never resets it)."""
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tr = Trainer(cfg(epochs=1), splits, progress=False)
    assert not torch.equal(torch.rand(3), expected)  # not reseeded: the model drew its weights
    monkeypatch.chdir(tmp_path)

    def no_file(*args, **kwargs):
        raise AssertionError(f"file opened: {args}")

    for module, name in ((builtins, "open"), (io, "open"), (os, "open"), (torch, "save")):
        monkeypatch.setattr(module, name, no_file)
    tr.fit()
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_state_dict_is_a_snapshot_that_resumes_exactly_in_memory(splits, new_trainer):
    """state_dict() copies what later epochs change in place (optimiser moments, schedulers): a
    trainer restored from a snapshot taken after epoch 1, even after more training, finishes as an
    uninterrupted run does, bit for bit."""
    straight = new_trainer(cfg(epochs=3), splits)
    result = straight.fit()
    tr = new_trainer(cfg(epochs=3), splits)
    tr.train_epoch()
    snapshot_1 = tr.state_dict()
    tr.train_epoch()  # moves the weights, the optimiser moments and the RNG on
    tr.load_state_dict(snapshot_1)
    assert tr.epoch == 1 and len(tr.history) == 1
    assert tr.fit() == result
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, tr.model.state_dict()[key]), key


def test_the_trainer_reads_from_the_device_once_per_stage_not_per_step(
    splits, monkeypatch, new_trainer
):
    """The Trainer's own code reads values from the device (.item, .tolist, .cpu, .numpy, bool,
    float or int of a tensor: each a host sync on a GPU) once per stage and per evaluation, never
    per step: their count in an epoch does not grow with the number of steps."""
    calls = []
    for name in ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            caller = next(
                f.filename for f in reversed(traceback.extract_stack()) if "mmim_lite" in f.filename
            )
            calls.append((_name, Path(caller).name))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    reads = {}
    for batch_size in (32, 8):  # 4 and 16 steps per stage
        tr = new_trainer(cfg(batch_size=batch_size, eval_batch_size=48, trace_every=4), splits)
        calls.clear()
        tr.train_epoch()
        reads[batch_size] = [name for name, caller in calls if caller == "train.py"]
    monkeypatch.undo()
    assert tr.steps == {1: 16, 2: 16}
    assert reads[8] == reads[32] and "tolist" in reads[8], reads
