"""Tests of the instruments: the gradient trace of the MI terms (``trace_grads``) and the
representation probes of :mod:`mmim_lite.probes`."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from mmim_lite.batching import collate_batch
from mmim_lite.config import MMIMConfig
from mmim_lite.synth import make_synthmosi
from mmim_lite.train import Trainer, gradient_trace


@pytest.fixture(scope="module")
def splits():
    return make_synthmosi(n_train=96, n_valid=32, n_test=32, seed=3, visual_frames=(4, 12),
                          acoustic_frames=(4, 12)).splits


def cfg(**overrides) -> MMIMConfig:
    base = dict(text_encoder="tiny", batch_size=16, eval_batch_size=32, epochs=2, patience=0,
                trace_every=2, xmodal_pairs=("tv", "va"))
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
    out = {m: np.concatenate([p.grad.double().numpy().ravel() if p.grad is not None
                              else np.zeros(p.numel()) for n, p in model.named_parameters()
                              if n.startswith(pre) and p.requires_grad])
           for m, pre in prefixes.items()}
    model.zero_grad(set_to_none=True)
    return out


@pytest.mark.parametrize("overrides", [{}, {"beta": 0.0, "alpha": 1.7}])
def test_gradient_trace_matches_a_manual_autograd_computation(splits, overrides):
    tr = Trainer(cfg(**overrides), splits, progress=False)
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
                assert got[f"grad_ratio_{name}_{m}"] == 0 and math.isnan(got[f"grad_cos_{name}_{m}"])
            else:
                cos = g[m] @ task[m] / (norm * norm_task)
                assert got[f"grad_cos_{name}_{m}"] == pytest.approx(cos, rel=1e-4, abs=1e-6)
    assert set(got) == keys
    assert all(p.grad is None for p in tr.model.parameters())  # nothing accumulated


def test_gradient_trace_leaves_out_frozen_encoders_and_absent_terms(splits):
    tr = Trainer(cfg(freeze_text=True, ba_pairs=(), xmodal_pairs=()), splits, progress=False)
    got = gradient_trace(tr.model, stage2_terms(tr))
    assert set(got) == {"grad_norm_task_v", "grad_norm_task_a", "grad_ratio_cpc_v", "grad_cos_cpc_v",
                        "grad_ratio_cpc_a", "grad_cos_cpc_a"}


def test_trace_grads_records_and_does_not_change_training(splits, tmp_path):
    runs = {}
    for on in (False, True):
        tr = Trainer(cfg(trace_grads=on, labeled_fraction=0.5), splits, progress=False,
                     out_dir=tmp_path / str(on))
        runs[on] = tr, tr.fit()
    (off, res_off), (on, res_on) = runs[False], runs[True]
    assert res_on == res_off
    state_off, state_on = off.model.state_dict(), on.model.state_dict()
    assert all(torch.equal(state_off[k], state_on[k]) for k in state_off)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(on.history) == strip(off.history)
    assert [(p.epoch, p.stage, p.step, p.losses) for p in on.trace] == \
           [(p.epoch, p.stage, p.step, p.losses) for p in off.trace]
    assert all(not p.grads for p in off.trace)
    assert all(bool(p.grads) == (p.stage == 2) for p in on.trace)
    assert {"grad_ratio_ba_v", "grad_cos_cpc_a", "grad_ratio_xmodal_t"} <= set(on.trace[-1].grads)
    with open(tmp_path / "True" / "trace.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(on.trace) and float(rows[-1]["grad_ratio_ba_a"]) == pytest.approx(
        on.trace[-1].grads["grad_ratio_ba_a"])
    resumed = Trainer.from_checkpoint(tmp_path / "True" / "checkpoint.pt", splits, progress=False)
    assert resumed.trace == on.trace
