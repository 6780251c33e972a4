"""Tests of mmim_lite.experiment: several seeds, their summary, and the text encoder loaded once
per run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from mmim_lite import experiment, model
from mmim_lite.config import MMIMConfig
from mmim_lite.experiment import data_spec, run_experiment, run_seeds, summarize_runs
from mmim_lite.synth import make_synthmosi
from mmim_lite.text import resolve_text_encoder


@pytest.fixture(scope="module")
def splits():
    return make_synthmosi(
        n_train=128, n_valid=48, n_test=96, seed=0, visual_frames=(5, 20), acoustic_frames=(5, 20)
    ).splits


def cfg(**overrides) -> MMIMConfig:
    base = dict(
        text_encoder="tiny", batch_size=32, eval_batch_size=64, epochs=2, patience=0, trace_every=2
    )
    return MMIMConfig.preset("mosi", **base).replace(**overrides)


def test_run_seeds_and_summary(splits, tmp_path):
    results = run_seeds(cfg(epochs=1), [0, 1], splits, out_dir=tmp_path, progress=False)
    assert [r["seed"] for r in results] == [0, 1] and results[0]["test"] != results[1]["test"]
    summary = summarize_runs(results)
    maes = [r["test"]["mae"] for r in results]
    assert math.isclose(summary["test"]["mae"]["mean"], float(np.mean(maes)), rel_tol=1e-9)
    again = run_seeds(cfg(epochs=1), [0, 1], splits, out_dir=tmp_path, resume=True)  # read back
    assert again == json.loads(json.dumps(results))


@pytest.mark.parametrize("frozen", [True, False])
def test_a_pretrained_encoder_is_loaded_once_per_run_and_each_seed_starts_from_it(
    splits, monkeypatch, frozen
):
    """Three seeds load a pretrained encoder once (a stand-in for MiniLM: the tiny BERT, built
    once, whatever the seed), never again per seed; a fine-tuned one is each seed's own copy, so a
    seed's result is the same in a run of three seeds as alone; a frozen one is shared."""
    built = []

    def pretrained(name):  # stands in for loading a named, pretrained encoder from disk
        built.append(name)
        with torch.random.fork_rng():
            torch.manual_seed(99)
            return resolve_text_encoder("tiny")

    monkeypatch.setattr(experiment, "resolve_text_encoder", pretrained)
    monkeypatch.setattr(model, "resolve_text_encoder", pretrained)
    config = cfg(epochs=1, text_encoder="pretrained-standin", freeze_text=frozen)
    seen = []
    record = lambda trainer, row: seen.append(trainer.model.text_model)  # noqa: E731
    three = run_seeds(config, [0, 1, 2], splits, progress=False, on_epoch=record)
    assert built == ["pretrained-standin"]
    assert len({id(m) for m in seen}) == (1 if frozen else 3)
    alone = run_seeds(config, [2], splits, progress=False)
    assert alone[0] == three[2]


def test_a_run_into_a_folder_loads_its_encoder_once(tmp_path, monkeypatch):
    """run_experiment checks the encoder before writing anything and trains every seed with that
    same load: one load for the whole run."""
    built = []

    def pretrained(name):
        built.append(name)
        return resolve_text_encoder("tiny")

    monkeypatch.setattr(experiment, "resolve_text_encoder", pretrained)
    monkeypatch.setattr(model, "resolve_text_encoder", pretrained)
    spec = data_spec("synthmosi", synth={"n_train": 32, "n_valid": 16, "n_test": 16})
    config = cfg(epochs=1, text_encoder="pretrained-standin", freeze_text=True)
    summary = run_experiment(config, [0, 1], spec, tmp_path / "run", device="cpu")
    assert built == ["pretrained-standin"]
    assert (
        summary["seeds"] == [0, 1]
        and json.loads((tmp_path / "run" / "data.json").read_text()) == spec
    )
