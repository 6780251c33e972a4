"""The standard multimodal-sentiment metrics (field guide §3), mean ± std over seeds and the paired
t-test: ``mae``; ``corr`` (Pearson r, 0.0 when p or y is constant); ``acc7`` / ``acc5``: accuracy of
``np.round`` (halves to even) of p and y clipped to [-3, 3] / [-2, 2]; ``acc2_has0`` / ``f1_has0``:
``p >= 0`` vs ``y >= 0``; ``acc2_non0`` / ``f1_non0``: without ``y == 0``, ``p > 0`` vs ``y > 0``
(nan when every y is 0). F1: sklearn's weighted F1 (``zero_division=0``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score

__all__ = ["METRIC_KEYS", "MetricInputError", "msa_metrics", "summarize", "paired_ttest"]

METRIC_KEYS = ("mae", "corr", "acc7", "acc5", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0")


class MetricInputError(ValueError):
    """Predictions / truths / run lists that the metrics cannot be computed on."""


def _vector(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    arr = arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    if arr.ndim != 1:
        raise MetricInputError(f"{name}: expected a 1-D array of scores, found shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise MetricInputError(
            f"{name}: expected finite values, found {int((~np.isfinite(arr)).sum())} NaN/inf"
        )
    return arr


def msa_metrics(preds: Any, truths: Any) -> dict[str, float]:
    """All eight MSA metrics for one set of predictions (keys :data:`METRIC_KEYS`)."""
    p, y = _vector(preds, "preds"), _vector(truths, "truths")
    if len(p) != len(y) or len(p) == 0:
        raise MetricInputError(
            f"expected preds and truths of the same length with at least one prediction, "
            f"found {len(p)} and {len(y)}"
        )
    dp, dy = p - p.mean(), y - y.mean()
    denom = np.sqrt((dp * dp).sum() * (dy * dy).sum())
    nz, nan = y != 0, float("nan")
    return {
        "mae": float(np.mean(np.abs(p - y))),
        "corr": 0.0 if denom == 0.0 else float(np.clip((dp * dy).sum() / denom, -1.0, 1.0)),
        "acc7": float(accuracy_score(np.round(np.clip(y, -3, 3)), np.round(np.clip(p, -3, 3)))),
        "acc5": float(accuracy_score(np.round(np.clip(y, -2, 2)), np.round(np.clip(p, -2, 2)))),
        "acc2_has0": float(accuracy_score(y >= 0, p >= 0)),
        "f1_has0": float(f1_score(y >= 0, p >= 0, average="weighted", zero_division=0)),
        "acc2_non0": float(accuracy_score(y[nz] > 0, p[nz] > 0)) if nz.any() else nan,
        "f1_non0": float(f1_score(y[nz] > 0, p[nz] > 0, average="weighted", zero_division=0))
        if nz.any()
        else nan,
    }


def _column(
    runs: Sequence[Mapping[str, float]] | Sequence[float], key: str | None, name: str
) -> np.ndarray:
    for i, r in enumerate(runs):
        if isinstance(r, Mapping) and (key is None or key not in r):
            raise MetricInputError(f"{name}[{i}]: expected key {key!r}, found keys {sorted(r)}")
    return np.asarray([r[key] if isinstance(r, Mapping) else r for r in runs], dtype=np.float64)


def summarize(runs: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and sample std (``ddof=1``; nan for one run) per key over runs with equal keys."""
    if len(runs) == 0:
        raise MetricInputError("runs: expected at least one metric dict, found none")
    for i, r in enumerate(runs):
        if set(r) != set(runs[0]):
            raise MetricInputError(f"runs[{i}]: expected keys {sorted(runs[0])}, found {sorted(r)}")
    return {
        k: {"mean": float(c.mean()), "std": float(c.std(ddof=1)) if len(c) > 1 else float("nan")}
        for k, c in ((k, _column(runs, k, "runs")) for k in runs[0])
    }


def paired_ttest(
    a_runs: Sequence[Any], b_runs: Sequence[Any], key: str | None = None
) -> tuple[float, float]:
    """``(t, p)`` of a two-sided paired t-test (``scipy.stats.ttest_rel``) of ``key`` (metric dicts)
    or numbers."""
    a, b = _column(a_runs, key, "a_runs"), _column(b_runs, key, "b_runs")
    if len(a) != len(b) or len(a) < 2:
        raise MetricInputError(
            f"expected two equally long run lists of at least 2 seeds, found {len(a)} and {len(b)}"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        res = stats.ttest_rel(a, b)
    return float(res.statistic), float(res.pvalue)
