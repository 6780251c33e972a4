"""Tests of the instruments: the gradient trace of the MI terms (``trace_grads``) and the
representation probes of :mod:`mmim_lite.probes`."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from mmim_lite.batching import collate_batch
from mmim_lite.config import MMIMConfig
from mmim_lite.probes import effective_rank, label_r2, representation_probes, speaker_share
from mmim_lite.runtime import RunFiles, load_trainer
from mmim_lite.synth import make_synthmosi
from mmim_lite.train import Trainer, gradient_trace


@pytest.fixture(scope="module")
def splits():
    return make_synthmosi(
        n_train=96, n_valid=32, n_test=32, seed=3, visual_frames=(4, 12), acoustic_frames=(4, 12)
    ).splits


def cfg(**overrides) -> MMIMConfig:
    base = {
        "text_encoder": "tiny",
        "batch_size": 16,
        "eval_batch_size": 32,
        "epochs": 2,
        "patience": 0,
        "trace_every": 2,
        "xmodal_pairs": ("tv", "va"),
    }
    return MMIMConfig.preset("mosi", **base).replace(**overrides)


def stage2_terms(tr: Trainer, n: int = 16) -> dict[str, torch.Tensor]:
    """One stage-2 forward pass on the first n training clips, as in training (q fixed)."""
    batch = collate_batch([tr.datasets["train"][i] for i in range(n)])
    tr.model.train()
    for p in tr.model.predictor_parameters():
        p.requires_grad_(False)
    return tr.model.losses(tr.model(batch), batch["labels"])


def by_hand(model: torch.nn.Module, loss: torch.Tensor) -> dict[str, np.ndarray]:
    """The gradient of ``loss`` on each encoder's parameters, by backward() into .grad, by name."""
    model.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    prefixes = {"t": "text_model.", "v": "visual_enc.", "a": "acoustic_enc."}
    out = {
        m: np.concatenate(
            [
                p.grad.double().numpy().ravel() if p.grad is not None else np.zeros(p.numel())
                for n, p in model.named_parameters()
                if n.startswith(pre) and p.requires_grad
            ]
        )
        for m, pre in prefixes.items()
    }
    model.zero_grad(set_to_none=True)
    return out


@pytest.mark.parametrize("overrides", [{}, {"beta": 0.0, "alpha": 1.7}])
def test_gradient_trace_matches_a_manual_autograd_computation(splits, overrides, new_trainer):
    tr = new_trainer(cfg(**overrides), splits, progress=False)
    terms = stage2_terms(tr)
    got = gradient_trace(tr.model, terms)
    c = tr.model.config
    task = by_hand(tr.model, terms["task"])
    keys = {f"grad_norm_task_{m}" for m in "tva"}
    for name, w in (("cpc", c.alpha), ("ba", c.beta), ("xmodal", c.xmodal_weight)):
        g = by_hand(tr.model, w * terms[name])
        for m in "tva":
            keys |= {f"grad_ratio_{name}_{m}", f"grad_cos_{name}_{m}"}
            norm, norm_task = np.linalg.norm(g[m]), np.linalg.norm(task[m])
            assert got[f"grad_norm_task_{m}"] == pytest.approx(norm_task, rel=1e-5)
            assert got[f"grad_ratio_{name}_{m}"] == pytest.approx(norm / norm_task, rel=1e-4)
            if w == 0:
                assert got[f"grad_ratio_{name}_{m}"] == 0
                assert math.isnan(got[f"grad_cos_{name}_{m}"])
            else:
                cos = g[m] @ task[m] / (norm * norm_task)
                assert got[f"grad_cos_{name}_{m}"] == pytest.approx(cos, rel=1e-4, abs=1e-6)
    assert set(got) == keys
    assert all(p.grad is None for p in tr.model.parameters())  # nothing accumulated


def test_gradient_trace_leaves_out_frozen_encoders_and_absent_terms(splits, new_trainer):
    tr = new_trainer(cfg(freeze_text=True, ba_pairs=(), xmodal_pairs=()), splits, progress=False)
    got = gradient_trace(tr.model, stage2_terms(tr))
    assert set(got) == {
        "grad_norm_task_v",
        "grad_norm_task_a",
        "grad_ratio_cpc_v",
        "grad_cos_cpc_v",
        "grad_ratio_cpc_a",
        "grad_cos_cpc_a",
    }


def test_trace_grads_records_and_does_not_change_training(splits, tmp_path, new_trainer):
    runs = {}
    for on in (False, True):
        tr = new_trainer(
            cfg(trace_grads=on, labeled_fraction=0.5),
            splits,
            progress=False,
        )
        runs[on] = tr, tr.fit(RunFiles(tmp_path / str(on)))
    (off, res_off), (on, res_on) = runs[False], runs[True]
    assert res_on == res_off
    state_off, state_on = off.model.state_dict(), on.model.state_dict()
    assert all(torch.equal(state_off[k], state_on[k]) for k in state_off)
    for row_on, row_off in zip(on.history, off.history, strict=True):
        assert {**row_on, "seconds": 0} == {**row_off, "seconds": 0}
    assert [(p.epoch, p.stage, p.step, p.losses) for p in on.trace] == [
        (p.epoch, p.stage, p.step, p.losses) for p in off.trace
    ]
    assert all(not p.grads for p in off.trace)
    assert all(bool(p.grads) == (p.stage == 2) for p in on.trace)
    assert {"grad_ratio_ba_v", "grad_cos_cpc_a", "grad_ratio_xmodal_t"} <= set(on.trace[-1].grads)
    with open(tmp_path / "True" / "trace.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(on.trace) and float(rows[-1]["grad_ratio_ba_a"]) == pytest.approx(
        on.trace[-1].grads["grad_ratio_ba_a"]
    )
    resumed = load_trainer(tmp_path / "True" / "checkpoint.pt", splits, progress=False)
    assert resumed.trace == on.trace


# ----------------------------------------------------------------------------- probes
def test_effective_rank_of_isotropic_and_rank_one_data():
    rng = np.random.default_rng(0)
    assert effective_rank(rng.standard_normal((20000, 16))) == pytest.approx(16, rel=0.01)
    assert effective_rank(rng.standard_normal((500, 1)) * rng.standard_normal(16)) == pytest.approx(
        1, abs=1e-6
    )
    # two equal directions and one ten times weaker: between 2 and 3
    x = rng.standard_normal((20000, 3)) * [1.0, 1.0, 0.1]
    assert 2 < effective_rank(x @ np.linalg.qr(rng.standard_normal((3, 3)))[0]) < 2.2


def test_speaker_share_recovers_a_known_between_speaker_share():
    rng = np.random.default_rng(1)
    n_spk, d = 400, 4
    between, within = np.array([1.0, 0.5, 0.0, 2.0]), np.array([1.0, 1.5, 1.0, 0.5])
    spk = np.repeat(np.arange(n_spk), rng.integers(20, 180, n_spk))  # unequal clip counts
    x = (
        (rng.standard_normal((n_spk, d)) * np.sqrt(between))[spk]
        + rng.standard_normal((len(spk), d)) * np.sqrt(within)
        + 5.0
    )  # a shift changes nothing
    truth = between.sum() / (between + within).sum()  # 0.4375
    assert speaker_share(x, [f"video{s}" for s in spk]) == pytest.approx(truth, abs=0.02)
    assert speaker_share(rng.standard_normal((4000, 3)), spk[:4000] % 40) < 0.02


def test_label_r2_of_a_linear_function_and_of_noise():
    rng = np.random.default_rng(2)
    y = rng.uniform(-3, 3, 3000)
    lift = rng.standard_normal((1, 8))
    x = y[:, None] * lift + 0.5  # exactly linear in y, 8 dimensions
    assert label_r2(x[:2000], y[:2000], x[2000:], y[2000:]) == pytest.approx(1, abs=1e-3)
    noise = rng.standard_normal((3000, 8))
    assert label_r2(noise[:2000], y[:2000], noise[2000:], y[2000:]) == pytest.approx(0, abs=0.03)
    # scored on the held-out clips: 30 noise dimensions fit 60 clips well, and predict nothing
    wide = rng.standard_normal((3000, 30))
    assert label_r2(wide[:60], y[:60], wide[2000:], y[2000:]) < 0.05


def test_representation_probes_of_a_trained_model(new_trainer):
    data = make_synthmosi(
        n_train=96, n_valid=32, n_test=48, seed=3, visual_frames=(4, 12), acoustic_frames=(4, 12)
    )
    tr = new_trainer(cfg(epochs=1), data.splits, progress=False)
    tr.fit()
    got = representation_probes(tr, "test")
    h = tr.representations("test")
    assert set(h) == {"t", "v", "a"} and h["v"].shape == (48, tr.model.config.visual_out)
    assert got["effective_rank_v"] == pytest.approx(effective_rank(h["v"]))
    # the speaker is the generator's: the id's video part groups the clips as synth.speaker does
    assert got["speaker_share_a"] == pytest.approx(speaker_share(h["a"], data.speaker["test"]))
    fit = tr.representations("train")
    y = {s: [x.label for x in data.splits[s]] for s in ("train", "test")}
    assert got["label_r2_t"] == pytest.approx(label_r2(fit["t"], y["train"], h["t"], y["test"]))
    assert set(got) == {
        "effective_rank_v",
        "effective_rank_a",
        "speaker_share_v",
        "speaker_share_a",
        "label_r2_t",
        "label_r2_v",
        "label_r2_a",
    }


def test_cli_trace_grads_and_evaluate_probes(run_cli, tmp_path):
    data = ["--data", "synthmosi", "--n-train", "48", "--n-valid", "16", "--n-test", "24"]
    code, _, err = run_cli(
        "train",
        *data,
        "--preset",
        "synthmosi",
        "--text-encoder",
        "tiny",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--trace-every",
        "1",
        "--trace-grads",
        "--out",
        str(tmp_path),
    )
    assert code == 0, err
    with open(tmp_path / "seed_0" / "trace.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["stage"] == "2"]
    assert rows and all(math.isfinite(float(r["grad_ratio_ba_v"])) for r in rows)
    ckpt = str(tmp_path / "seed_0" / "best.pt")
    code, out, err = run_cli("evaluate", "--checkpoint", ckpt, "--device", "cpu", "--probes")
    assert code == 0 and err == "" and len(out.strip().splitlines()) == 1
    result = json.loads(out)
    assert set(result.pop("probes")) >= {"effective_rank_v", "speaker_share_a", "label_r2_t"}
    code, out, _ = run_cli("evaluate", "--checkpoint", ckpt, "--device", "cpu")
    assert json.loads(out) == result  # the probes change no metric
