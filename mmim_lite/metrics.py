"""The standard multimodal-sentiment metric set (field guide §3) and the per-seed reporting helpers.

Definitions, for predictions p and truths y (both real-valued sentiment scores):

* ``mae``  = mean |p - y|;  ``corr`` = Pearson r between p and y.
* ``acc7`` = accuracy of ``round(clip(p, -3, 3))`` against ``round(clip(y, -3, 3))``;
  ``acc5`` the same with [-2, 2]. Rounding is ``np.round``, which rounds halves to the even
  integer (2.5 -> 2, -0.5 -> -0), as the community evaluation code does.
* ``acc2_has0`` / ``f1_has0``: classes ``p >= 0`` vs ``y >= 0`` over all samples.
* ``acc2_non0`` / ``f1_non0``: drop samples with ``y == 0`` exactly, then ``p > 0`` vs ``y > 0``.
* F1 is scikit-learn's support-weighted F1 (``average="weighted"``); accuracies use
  ``sklearn.metrics.accuracy_score``. All accuracies and F1 are fractions in [0, 1].

Edge cases (defined, documented, tested):

* constant predictions or constant truths: Pearson r is 0/0; ``corr`` is defined as **0.0**
  (no linear association can be measured), so logs and summaries stay numeric;
* no non-zero truth: the non0 metrics are computed on an empty set and are **nan**;
* a class absent from both y and p contributes nothing to F1 (``zero_division=0``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score

__all__ = ["METRIC_KEYS", "MetricInputError", "msa_metrics", "summarize", "paired_ttest"]

METRIC_KEYS = ("mae", "corr", "acc7", "acc5", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0")


class MetricInputError(ValueError):
    """Predictions / truths / run lists that the metrics cannot be computed on."""


def _vector(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise MetricInputError(f"{name}: expected a 1-D array of scores, found shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise MetricInputError(f"{name}: expected finite values, found {int((~np.isfinite(arr)).sum())} NaN/inf")
    return arr


def pearson(p: np.ndarray, y: np.ndarray) -> float:
    """Pearson r; 0.0 when either input is constant (r undefined)."""
    dp, dy = p - p.mean(), y - y.mean()
    denom = np.sqrt((dp * dp).sum() * (dy * dy).sum())
    if denom == 0.0:
        return 0.0
    return float(np.clip((dp * dy).sum() / denom, -1.0, 1.0))


def msa_metrics(preds: Any, truths: Any) -> dict[str, float]:
    """All eight MSA metrics for one set of predictions (keys :data:`METRIC_KEYS`)."""
    p, y = _vector(preds, "preds"), _vector(truths, "truths")
    if len(p) != len(y):
        raise MetricInputError(f"expected preds and truths of the same length, found {len(p)} and {len(y)}")
    if len(p) == 0:
        raise MetricInputError("expected at least one prediction, found none")
    out = {
        "mae": float(np.mean(np.abs(p - y))),
        "corr": pearson(p, y),
        "acc7": float(accuracy_score(np.round(np.clip(y, -3, 3)), np.round(np.clip(p, -3, 3)))),
        "acc5": float(accuracy_score(np.round(np.clip(y, -2, 2)), np.round(np.clip(p, -2, 2)))),
        "acc2_has0": float(accuracy_score(y >= 0, p >= 0)),
        "f1_has0": float(f1_score(y >= 0, p >= 0, average="weighted", zero_division=0)),
    }
    keep = y != 0
    if keep.any():
        out["acc2_non0"] = float(accuracy_score(y[keep] > 0, p[keep] > 0))
        out["f1_non0"] = float(f1_score(y[keep] > 0, p[keep] > 0, average="weighted", zero_division=0))
    else:
        out["acc2_non0"] = out["f1_non0"] = float("nan")
    return out


def _column(runs: Sequence[Mapping[str, float]] | Sequence[float], key: str | None, name: str) -> np.ndarray:
    values = []
    for i, r in enumerate(runs):
        if isinstance(r, Mapping):
            if key is None or key not in r:
                raise MetricInputError(f"{name}[{i}]: expected key {key!r}, found keys {sorted(r)}")
            values.append(r[key])
        else:
            values.append(r)
    return np.asarray(values, dtype=np.float64)


def summarize(runs: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation (``ddof=1``, as papers report over seeds) per key.

    All runs must have the same keys. With a single run the std is undefined and is nan.
    A nan in a run (e.g. ``acc2_non0`` without non-zero truths) propagates to that key.
    """
    if len(runs) == 0:
        raise MetricInputError("runs: expected at least one metric dict, found none")
    keys = list(runs[0])
    for i, r in enumerate(runs):
        if set(r) != set(keys):
            raise MetricInputError(f"runs[{i}]: expected keys {sorted(keys)}, found {sorted(r)}")
    out = {}
    for k in keys:
        col = _column(runs, k, "runs")
        out[k] = {"mean": float(col.mean()), "std": float(col.std(ddof=1)) if len(col) > 1 else float("nan")}
    return out


def paired_ttest(a_runs: Sequence[Any], b_runs: Sequence[Any], key: str | None = None) -> tuple[float, float]:
    """Paired t-test (``scipy.stats.ttest_rel``, two-sided) of ``key`` between matched seeds.

    ``a_runs[i]`` and ``b_runs[i]`` must come from the same seed. Items are metric dicts (then
    ``key`` is required) or plain numbers. Returns ``(t, p)``; identical differences across
    seeds give scipy's result for zero variance (t = ±inf or nan).
    """
    a, b = _column(a_runs, key, "a_runs"), _column(b_runs, key, "b_runs")
    if len(a) != len(b) or len(a) < 2:
        raise MetricInputError(f"expected two equally long run lists of at least 2 seeds, found {len(a)} and {len(b)}")
    with np.errstate(divide="ignore", invalid="ignore"):
        res = stats.ttest_rel(a, b)
    return float(res.statistic), float(res.pvalue)
