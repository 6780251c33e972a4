"""The MSA metric set against hand-computed cases and scikit-learn / scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.metrics import f1_score

from mmim_lite.metrics import METRIC_KEYS, MetricInputError, msa_metrics, paired_ttest, summarize

TRUTH = [-3.0, -1.5, 0.0, 0.4, 2.6, 1.0, -0.5]
PRED = [-2.4, 0.5, -0.2, 0.6, 3.5, 1.5, 0.0]


def test_hand_computed_case():
    m = msa_metrics(PRED, TRUTH)
    assert (
        tuple(m)
        == METRIC_KEYS
        == ("mae", "corr", "acc7", "acc5", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0")
    )
    assert m["mae"] == pytest.approx(4.9 / 7)  # |errors| = .6 2 .2 .2 .9 .5 .5
    # Acc-7 (np.round, halves to even): truths -3 -2 0 0 3 1 -0 ; preds -2 0 -0 1 3 2 0 -> 3 hits
    assert m["acc7"] == pytest.approx(3 / 7)
    # Acc-5 (clip to [-2, 2]): truths -2 -2 0 0 2 1 -0 ; preds -2 0 -0 1 2 2 0 -> 4 hits
    assert m["acc5"] == pytest.approx(4 / 7)
    # has0: y>=0 F F T T T T F ; p>=0 F T F T T T T -> 4 hits
    # F1(T) = 2*(3/5)*(3/4)/(3/5+3/4) = 2/3 (support 4); F1(F) = 2*(1/2)*(1/3)/(5/6) = 0.4 (support
    # 3)
    assert m["acc2_has0"] == pytest.approx(4 / 7)
    assert m["f1_has0"] == pytest.approx((4 * 2 / 3 + 3 * 0.4) / 7)
    # non0 drops the exact zero: y>0 F F T T T F ; p>0 F T T T T F (pred 0.0 is not > 0) -> 5 hits
    # F1(T) = 6/7 (support 3); F1(F) = 0.8 (support 3)
    assert m["acc2_non0"] == pytest.approx(5 / 6)
    assert m["f1_non0"] == pytest.approx((6 / 7 + 0.8) / 2)
    assert m["corr"] == pytest.approx(stats.pearsonr(PRED, TRUTH)[0])


def test_rounding_and_clipping_conventions():
    m = msa_metrics([2.5, -0.5, 7.0, -9.0], [2.0, 0.0, 3.0, -3.0])
    assert m["acc7"] == 1.0  # 2.5 -> 2 and -0.5 -> -0 (half to even); 7 -> 3, -9 -> -3
    assert msa_metrics([3.5], [2.0])["acc7"] == 0.0 and msa_metrics([3.5], [2.0])["acc5"] == 1.0
    assert msa_metrics([1.5], [2.0])["acc7"] == 1.0 and msa_metrics([0.5], [1.0])["acc7"] == 0.0


def test_against_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    y = np.round(rng.uniform(-3, 3, 500) * 3) / 3
    p = y + rng.normal(0, 1.0, 500)
    m = msa_metrics(torch.tensor(p), y.reshape(-1, 1))
    keep = y != 0
    assert m["mae"] == pytest.approx(np.mean(np.abs(p - y)))
    assert m["corr"] == pytest.approx(np.corrcoef(p, y)[0, 1])
    assert m["acc7"] == pytest.approx(
        np.mean(np.round(np.clip(p, -3, 3)) == np.round(np.clip(y, -3, 3)))
    )
    assert m["acc5"] == pytest.approx(
        np.mean(np.round(np.clip(p, -2, 2)) == np.round(np.clip(y, -2, 2)))
    )
    assert m["acc2_has0"] == pytest.approx(np.mean((p >= 0) == (y >= 0)))
    assert m["f1_has0"] == pytest.approx(f1_score(y >= 0, p >= 0, average="weighted"))
    assert m["acc2_non0"] == pytest.approx(np.mean((p[keep] > 0) == (y[keep] > 0)))
    assert m["f1_non0"] == pytest.approx(f1_score(y[keep] > 0, p[keep] > 0, average="weighted"))
    assert all(isinstance(v, float) for v in m.values())


def test_edge_cases_have_defined_results():
    const = msa_metrics([0.7, 0.7, 0.7], [-1.0, 0.5, 2.0])
    assert const["corr"] == 0.0 and const["mae"] == pytest.approx((1.7 + 0.2 + 1.3) / 3)
    assert const["acc2_has0"] == pytest.approx(2 / 3)
    assert msa_metrics([1.0, 2.0], [1.5, 1.5])["corr"] == 0.0
    zeros = msa_metrics([0.3, -0.2, 0.0], [0.0, 0.0, 0.0])
    assert math.isnan(zeros["acc2_non0"]) and math.isnan(zeros["f1_non0"])
    assert zeros["acc2_has0"] == pytest.approx(2 / 3) and zeros["acc7"] == 1.0
    one_class = msa_metrics([1.0, 2.0], [0.5, 2.5])
    assert one_class["f1_non0"] == 1.0 and one_class["f1_has0"] == 1.0
    assert msa_metrics([-1.0, 2.0], [0.5, 2.5])["f1_has0"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "preds,truths,needle",
    [
        ([1.0, 2.0], [1.0], "same length"),
        ([np.nan, 1.0], [0.0, 1.0], "finite"),
        ([1.0, 2.0], [np.inf, 1.0], "finite"),
        (np.zeros((2, 2)), np.zeros((2, 2)), "1-D"),
        ([], [], "at least one"),
    ],
)
def test_bad_inputs(preds, truths, needle):
    with pytest.raises(MetricInputError, match=needle):
        msa_metrics(preds, truths)
    assert issubclass(MetricInputError, ValueError)


def test_summarize_mean_and_sample_std():
    runs = [msa_metrics(np.array(PRED) + d, TRUTH) for d in (0.0, 0.1, -0.3)]
    out = summarize(runs)
    assert set(out) == set(METRIC_KEYS)
    for k in METRIC_KEYS:
        col = np.array([r[k] for r in runs])
        assert out[k]["mean"] == pytest.approx(col.mean())
        assert out[k]["std"] == pytest.approx(col.std(ddof=1))
    assert (
        math.isnan(summarize(runs[:1])["mae"]["std"])
        and summarize(runs[:1])["mae"]["mean"] == runs[0]["mae"]
    )
    with pytest.raises(MetricInputError):
        summarize([])
    with pytest.raises(MetricInputError, match="keys"):
        summarize([{"mae": 1.0}, {"corr": 0.5}])


def test_paired_ttest_matches_scipy():
    a = [{"mae": v} for v in (0.71, 0.74, 0.70, 0.73)]
    b = [{"mae": v} for v in (0.75, 0.76, 0.74, 0.78)]
    t, p = paired_ttest(a, b, "mae")
    ref = stats.ttest_rel([0.71, 0.74, 0.70, 0.73], [0.75, 0.76, 0.74, 0.78])
    assert (t, p) == pytest.approx((ref.statistic, ref.pvalue)) and t < 0 < p < 0.05
    assert paired_ttest([1.0, 2.0, 4.0], [0.5, 1.0, 1.0]) == pytest.approx(
        tuple(stats.ttest_rel([1.0, 2.0, 4.0], [0.5, 1.0, 1.0]))
    )
    with pytest.raises(MetricInputError):
        paired_ttest(a, b[:3], "mae")
    with pytest.raises(MetricInputError, match="acc7"):
        paired_ttest(a, b, "acc7")
