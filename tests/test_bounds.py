"""Tests for mmim_lite.bounds: every check compares with an independently computed truth."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from mmim_lite.bounds import (
    CPCHead,
    GaussianPredictor,
    HistoryMemory,
    authors_log_q,
    ba_lower_bound,
    diag_gaussian_log_prob,
    gaussian_entropy,
    infonce_loss,
    mixture_entropy_bounds,
    ml_covariance,
    polarity_entropy,
    standardize,
    symmetric_infonce_loss,
)
from mmim_lite.estimators import gaussian_rho_for_mi, infonce_floor

LOG_2PIE = math.log(2 * math.pi * math.e)


def random_spd(rng: np.random.Generator, k: int) -> np.ndarray:
    a = rng.standard_normal((k, k))
    return a @ a.T + 0.1 * np.eye(k)


# ----------------------------------------------------------------------------- Eq. 6
@pytest.mark.parametrize("k", [1, 2, 5, 16])
def test_gaussian_entropy_matches_scipy(k):
    rng = np.random.default_rng(k)
    cov = random_spd(rng, k)
    got = gaussian_entropy(torch.tensor(cov)).item()
    assert got == pytest.approx(multivariate_normal(cov=cov).entropy(), abs=1e-9)


def test_gaussian_entropy_batched_and_float32():
    rng = np.random.default_rng(1)
    covs = np.stack([random_spd(rng, 4) for _ in range(6)]).reshape(2, 3, 4, 4)
    got = gaussian_entropy(torch.tensor(covs))
    assert got.shape == (2, 3)
    want = np.array([multivariate_normal(cov=c).entropy() for c in covs.reshape(6, 4, 4)]).reshape(
        2, 3
    )
    np.testing.assert_allclose(got.numpy(), want, atol=1e-9)
    got32 = gaussian_entropy(torch.tensor(covs, dtype=torch.float32))
    np.testing.assert_allclose(got32.numpy(), want, atol=1e-4)


def test_gaussian_entropy_gradient_is_half_inverse():
    rng = np.random.default_rng(2)
    cov = torch.tensor(random_spd(rng, 3), requires_grad=True)
    gaussian_entropy(cov).backward()
    torch.testing.assert_close(cov.grad, 0.5 * torch.linalg.inv(cov.detach()))


def test_gaussian_entropy_rejects_bad_matrices():
    with pytest.raises(ValueError, match="not symmetric"):
        gaussian_entropy(torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="not positive definite"):
        gaussian_entropy(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
    with pytest.raises(ValueError, match="not positive definite"):
        gaussian_entropy(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="square"):
        gaussian_entropy(torch.eye(3)[:2])


# ----------------------------------------------------------------------------- Eq. 7
MIXTURES = [  # (shift between means, covariance scale of component 2, weight of component 1)
    (0.0, 1.0, 0.5),  # identical components: H equals the lower bound
    (0.5, 1.0, 0.5),  # strongly overlapping
    (1.5, 2.0, 0.5),  # partially overlapping, different covariances
    (2.0, 0.5, 0.3),  # unequal weights
    (25.0, 1.0, 0.5),  # well separated: H equals the upper bound
]


@pytest.mark.parametrize("shift,scale,w1", MIXTURES)
def test_mixture_bounds_bracket_monte_carlo(shift, scale, w1):
    rng = np.random.default_rng(int(shift * 10 + scale * 3))
    k, n = 2, 200_000
    c1 = random_spd(rng, k)
    c2 = scale * c1 if shift == 0.0 else scale * random_spd(rng, k)
    direction = rng.standard_normal(k)
    m1, m2 = np.zeros(k), shift * direction / np.linalg.norm(direction) * math.sqrt(np.trace(c1))
    w = np.array([w1, 1 - w1])
    comp = rng.random(n) < w1
    x = np.where(
        comp[:, None], rng.multivariate_normal(m1, c1, n), rng.multivariate_normal(m2, c2, n)
    )
    logp = logsumexp(
        np.stack(
            [
                np.log(w[0]) + multivariate_normal(m1, c1).logpdf(x),
                np.log(w[1]) + multivariate_normal(m2, c2).logpdf(x),
            ]
        ),
        axis=0,
    )
    h_mc, se = -logp.mean(), logp.std() / math.sqrt(n)
    hs = torch.tensor(
        [multivariate_normal(cov=c1).entropy(), multivariate_normal(cov=c2).entropy()]
    )
    lower, upper = mixture_entropy_bounds(hs, torch.tensor(w))
    assert lower.item() - 4 * se <= h_mc <= upper.item() + 4 * se
    if shift == 0.0:
        assert h_mc == pytest.approx(lower.item(), abs=4 * se)
    if shift >= 25.0:
        assert h_mc == pytest.approx(upper.item(), abs=4 * se)
    if w1 == 0.5:
        assert upper.item() - lower.item() == pytest.approx(math.log(2), abs=1e-12)


def test_mixture_bounds_values_and_validation():
    lower, upper = mixture_entropy_bounds([1.0, 3.0, 2.0], [0.2, 0.8, 0.0])
    assert lower.item() == pytest.approx(0.2 + 2.4)
    assert upper.item() == pytest.approx(2.6 - 0.2 * math.log(0.2) - 0.8 * math.log(0.8))
    lo, up = mixture_entropy_bounds(torch.ones(4, 2), torch.tensor([0.5, 0.5]))  # broadcast
    assert lo.shape == up.shape == (4,)
    with pytest.raises(ValueError, match="non-negative"):
        mixture_entropy_bounds([1.0, 1.0], [1.5, -0.5])
    with pytest.raises(ValueError, match="sum to 1"):
        mixture_entropy_bounds([1.0, 1.0], [0.5, 0.6])
    with pytest.raises(ValueError, match="last"):
        mixture_entropy_bounds([1.0, 1.0, 1.0], [0.5, 0.5])


# ----------------------------------------------------------------------------- Eq. 3-4
def test_log_prob_is_the_diagonal_gaussian_density():
    torch.manual_seed(0)
    q = GaussianPredictor(6, 3, hidden=8)
    x, y = torch.randn(10, 6), torch.randn(10, 3)
    mu, logvar = q(x)
    want = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(y).sum(-1)
    torch.testing.assert_close(q.log_prob(x, y), want)
    torch.testing.assert_close(diag_gaussian_log_prob(mu, logvar, y), want)
    # the authors' variant drops exactly the -0.5 log sigma^2 - 0.5 log 2 pi terms
    missing = 0.5 * logvar.sum(-1) + 1.5 * math.log(2 * math.pi)
    torch.testing.assert_close(q.log_prob(x, y, full=False), want + missing)
    torch.testing.assert_close(authors_log_q(mu, logvar, y), want + missing)
    assert GaussianPredictor(768, 16).hidden == 64 and GaussianPredictor(8, 100).hidden == 100
    with pytest.raises(ValueError, match="x must have shape"):
        q(torch.randn(10, 5))


def test_authors_log_q_is_not_a_bound():
    """Independent x, y (true MI 0): inflating sigma drives the authors' "bound" to H(Y) > 0."""
    torch.manual_seed(0)
    q = GaussianPredictor(2, 2, hidden=4)
    with torch.no_grad():
        q.logvar[-1].bias.fill_(20.0)
    x, y = torch.randn(2000, 2), torch.randn(2000, 2)
    h_y = torch.tensor(LOG_2PIE)  # entropy of N(0, I_2)
    assert ba_lower_bound(q.log_prob(x, y, full=False), h_y).item() > 2.8 - 1e-3
    assert ba_lower_bound(q.log_prob(x, y), h_y).item() < 0.0  # the real bound stays below 0


@pytest.mark.parametrize("mi", [0.5, 2.0, 4.0])
def test_ba_bound_on_correlated_gaussians(mi):
    d, n = 4, 20_000
    g = torch.Generator().manual_seed(int(10 * mi))
    torch.manual_seed(int(10 * mi))
    rho = gaussian_rho_for_mi(mi, d)

    def sample(m):
        x, e = torch.randn(m, d, generator=g), torch.randn(m, d, generator=g)
        return x, rho * x + math.sqrt(1 - rho * rho) * e

    (x_tr, y_tr), (x_te, y_te) = sample(n), sample(n)
    q = GaussianPredictor(d, d, hidden=32)
    opt = torch.optim.Adam(q.parameters(), lr=1e-2)
    for _ in range(300):
        idx = torch.randint(0, n, (512,), generator=g)
        loss = -q.log_prob(x_tr[idx], y_tr[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        log_q = q.log_prob(x_te, y_te)
    true_h_y = 0.5 * d * LOG_2PIE  # y ~ N(0, I_d)
    est = ba_lower_bound(log_q, torch.tensor(true_h_y)).item()
    se = log_q.std().item() / math.sqrt(n)
    assert abs(est - mi) < 0.1
    assert est <= mi + 4 * se
    # with H(Y) from the one-Gaussian estimator (Eq. 6 on Eq. 5) on the same held-out data
    h_hat = polarity_entropy(y_te, torch.ones(n), mode="gaussian", eps=0.0).item()
    assert h_hat == pytest.approx(true_h_y, abs=0.05)
    assert abs(ba_lower_bound(log_q, h_hat).item() - mi) < 0.15


def test_ba_lower_bound_validation():
    assert ba_lower_bound(torch.tensor([1.0, 3.0]), 0.5).item() == pytest.approx(2.5)
    with pytest.raises(ValueError, match="log_q"):
        ba_lower_bound(torch.ones(2, 2), 0.0)
    with pytest.raises(ValueError, match="scalar"):
        ba_lower_bound(torch.ones(2), torch.ones(2))


# ----------------------------------------------------------------------------- memory
def test_history_memory_fifo_detached_per_class():
    mem = HistoryMemory(2)
    batches = []
    for b in range(3):
        y = torch.full((4, 3), float(b), requires_grad=True) * 1.0
        labels = torch.tensor([1.0, -2.0, 0.0, -0.5])
        batches.append(y)
        mem.push(y, labels)
    assert len(mem) == 2
    out = mem.read()
    # class 1 = labels >= 0 (rows 0, 2), class 0 = labels < 0 (rows 1, 3); oldest kept batch first
    assert out[1].shape == out[0].shape == (4, 3)
    assert out[1][:, 0].tolist() == [1.0, 1.0, 2.0, 2.0]
    assert out[0][:, 0].tolist() == [1.0, 1.0, 2.0, 2.0]
    assert not out[0].requires_grad and out[0].grad_fn is None
    with torch.no_grad():
        batches[2].add_(100.0)  # the stored copy is independent of the live tensor
    assert mem.read()[1].max().item() == 2.0
    with pytest.raises(ValueError, match="3-d"):
        mem.push(torch.zeros(2, 5), torch.zeros(2))
    with pytest.raises(ValueError, match="labels"):
        mem.push(torch.zeros(2, 3), torch.zeros(3))
    mem.clear()
    assert len(mem) == 0 and mem.read()[0].shape == (0, 3)


def test_history_memory_size_zero_and_validation():
    mem = HistoryMemory(0)
    mem.push(torch.randn(4, 3), torch.randn(4))
    assert len(mem) == 0 and mem.read()[1].shape[0] == 0
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="size"):
            HistoryMemory(bad)


def test_history_memory_state_dict_round_trip():
    torch.manual_seed(0)
    mem = HistoryMemory(3)
    for _ in range(4):
        mem.push(torch.randn(5, 2), torch.randn(5))
    buf = io.BytesIO()
    torch.save(mem.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    other = HistoryMemory(3)
    other.load_state_dict(state)
    assert len(other) == 3
    for c in (0, 1):
        torch.testing.assert_close(other.read()[c], mem.read()[c])
    with pytest.raises(ValueError, match="size"):
        HistoryMemory(2).load_state_dict(state)


# ----------------------------------------------------------------------------- Eq. 5-8
def numpy_class_entropy(y: np.ndarray, eps: float) -> float:
    cov = np.cov(y, rowvar=False, bias=True).reshape(y.shape[1], y.shape[1]) + eps * np.eye(
        y.shape[1]
    )
    return multivariate_normal(cov=cov).entropy()


def test_polarity_entropy_matches_numpy_both_modes_with_memory():
    rng = np.random.default_rng(3)
    d, eps = 3, 1e-3
    batches = [
        (rng.standard_normal((20, d)) * [1, 2, 0.5] + 1, rng.uniform(-3, 3, 20)) for _ in range(3)
    ]
    mem = HistoryMemory(2)
    for y, lab in batches[:2]:
        mem.push(torch.tensor(y), torch.tensor(lab))
    y_all = np.concatenate([y for y, _ in batches])
    lab_all = np.concatenate([lab for _, lab in batches])
    y_now, lab_now = (torch.tensor(a) for a in batches[2])
    h_pos, h_neg = (
        numpy_class_entropy(y_all[lab_all >= 0], eps),
        numpy_class_entropy(y_all[lab_all < 0], eps),
    )
    want_gmm = 0.5 * (h_pos + h_neg)
    got = polarity_entropy(y_now, lab_now, mem, eps=eps)
    assert got.item() == pytest.approx(want_gmm, abs=1e-9)
    lower, _ = mixture_entropy_bounds(torch.tensor([h_pos, h_neg]), torch.tensor([0.5, 0.5]))
    assert got.item() == pytest.approx(lower.item())
    want_gauss = numpy_class_entropy(y_all, eps)
    got_gauss = polarity_entropy(y_now, lab_now, mem, mode="gaussian", eps=eps).item()
    assert got_gauss == pytest.approx(want_gauss, abs=1e-9)
    # constants=False is Eq. 8 as printed: 1/4 [logdet S1 + logdet S2]
    logdets = [
        np.linalg.slogdet(np.cov(y_all[m], rowvar=False, bias=True) + eps * np.eye(d))[1]
        for m in (lab_all >= 0, lab_all < 0)
    ]
    eq8 = polarity_entropy(y_now, lab_now, mem, eps=eps, constants=False).item()
    assert eq8 == pytest.approx(0.25 * sum(logdets), abs=1e-9)
    assert got.item() - eq8 == pytest.approx(0.5 * d * LOG_2PIE)
    want_cov = torch.tensor(np.cov(y_all, rowvar=False, bias=True))
    torch.testing.assert_close(ml_covariance(torch.tensor(y_all)), want_cov)


def test_polarity_entropy_gradient_flows_through_batch_only():
    torch.manual_seed(0)
    mem = HistoryMemory(1)
    mem.push(torch.randn(16, 4), torch.randn(16))
    y = torch.randn(16, 4, requires_grad=True)
    polarity_entropy(y, torch.randn(16), mem).backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_polarity_entropy_absent_class_and_empty():
    rng = np.random.default_rng(4)
    y = rng.standard_normal((30, 3))
    got = polarity_entropy(torch.tensor(y), torch.ones(30, dtype=torch.float64), eps=0.0)
    assert got.item() == pytest.approx(
        numpy_class_entropy(y, 0.0), abs=1e-9
    )  # one component, weight 1
    got_neg = polarity_entropy(torch.tensor(y), -torch.ones(30, dtype=torch.float64), eps=0.0)
    assert got_neg.item() == pytest.approx(got.item(), abs=1e-12)
    with pytest.raises(ValueError, match="at least one sample"):
        polarity_entropy(torch.zeros(0, 3), torch.zeros(0))
    mem = HistoryMemory(1)  # an empty batch is fine when the memory holds samples
    mem.push(torch.tensor(y), torch.ones(30, dtype=torch.float64))
    assert polarity_entropy(
        torch.zeros(0, 3, dtype=torch.float64), torch.zeros(0), mem, eps=0.0
    ).item() == pytest.approx(got.item(), abs=1e-9)


def test_polarity_entropy_singular_covariance_history_and_ridge():
    torch.manual_seed(0)
    d = 8
    labels = torch.tensor([1.0, -1.0] * 8)  # 8 samples per class = d: singular ML covariance
    y = torch.randn(16, d)
    assert polarity_entropy(y, labels, eps=0.0).item() == -math.inf  # Table 4 "w/o history"
    assert polarity_entropy(y, labels, HistoryMemory(0), eps=0.0).item() == -math.inf
    # exactly -inf, never NaN, even where round-off makes float32 logdet of the singular matrix NaN
    singular = [
        polarity_entropy(torch.randn(16, 16), torch.ones(16), eps=0.0).item() for _ in range(20)
    ]
    assert singular == [-math.inf] * 20
    assert torch.isfinite(polarity_entropy(y, labels))  # default ridge
    assert torch.isfinite(polarity_entropy(y, labels, eps=1e-3))
    mem = HistoryMemory(2)
    for _ in range(2):
        mem.push(torch.randn(16, d), labels)
    assert torch.isfinite(polarity_entropy(y, labels, mem, eps=0.0))  # 24 samples per class > d


def test_polarity_entropy_of_a_diverged_encoder_is_nan_not_an_error():
    """The trainer reports a diverged run by its non-finite loss terms, so H(Y) passes NaN on."""
    y, labels = torch.randn(40, 3), torch.randn(40)
    y[0, 0] = math.nan
    assert (
        polarity_entropy(y, labels).isnan() and polarity_entropy(y, labels, mode="gaussian").isnan()
    )
    assert gaussian_entropy(torch.tensor([[1.0, 0.0], [0.0, -1.0]]), check=False).isnan()
    assert gaussian_entropy(torch.full((2, 3, 3), math.nan), check=False).isnan().all()
    assert gaussian_entropy(torch.eye(2), check=False).item() == pytest.approx(LOG_2PIE)


def test_polarity_entropy_validation():
    y, labels = torch.randn(8, 3), torch.randn(8)
    with pytest.raises(ValueError, match="mode"):
        polarity_entropy(y, labels, mode="kde")
    with pytest.raises(ValueError, match="labels"):
        polarity_entropy(y, labels[:5])
    with pytest.raises(ValueError, match="y must"):
        polarity_entropy(y[0], labels)
    with pytest.raises(ValueError, match="eps"):
        polarity_entropy(y, labels, eps=-1.0)
    mem = HistoryMemory(1)
    mem.push(torch.randn(4, 5), torch.randn(4))
    with pytest.raises(ValueError, match="5-d"):
        polarity_entropy(y, labels, mem)


# ----------------------------------------------------------------------------- Eq. 10-11
def regular_simplex(n: int) -> torch.Tensor:
    v = torch.eye(n, dtype=torch.float64) - 1.0 / n
    return v / v.norm(dim=1, keepdim=True)


def test_infonce_hand_computed():
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    h_pred = torch.tensor([[2.0, 2.0], [3.0, 0.0]])  # cos rows: [1/sqrt2, 1/sqrt2], [1, 0]
    want = 0.5 * (math.log(2) + math.log(1 + math.e))
    assert infonce_loss(h, h_pred).item() == pytest.approx(want, abs=1e-6)
    assert infonce_loss(h, h_pred, temperature=0.5).item() == pytest.approx(
        0.5 * (math.log(2) + math.log(1 + math.e**2)), abs=1e-6
    )


def test_symmetric_infonce_hand_computed_and_symmetric():
    """CLIP's loss by explicit loops: S_ij = cos(a_i, b_j) / tau, the mean of S's row-wise and its
    column-wise cross-entropy with the diagonal as the targets; swapping a and b keeps it."""
    g = np.random.default_rng(3)
    a, b, tau = g.normal(size=(5, 3)), g.normal(size=(5, 4)), 0.3
    a_p, b_p = a @ g.normal(size=(3, 2)), b @ g.normal(size=(4, 2))  # two projections to 2-d
    n = len(a_p)
    s = np.array(
        [
            [
                a_p[i] @ b_p[j] / np.linalg.norm(a_p[i]) / np.linalg.norm(b_p[j]) / tau
                for j in range(n)
            ]
            for i in range(n)
        ]
    )
    rows = sum(math.log(sum(math.exp(s[i, j]) for j in range(n))) - s[i, i] for i in range(n)) / n
    cols = sum(math.log(sum(math.exp(s[j, i]) for j in range(n))) - s[i, i] for i in range(n)) / n
    got = symmetric_infonce_loss(torch.tensor(a_p), torch.tensor(b_p), tau).item()
    assert rows != pytest.approx(cols) and got == pytest.approx((rows + cols) / 2, rel=1e-12)
    swapped = symmetric_infonce_loss(torch.tensor(b_p), torch.tensor(a_p), tau).item()
    assert swapped == pytest.approx(got, rel=1e-12)


@pytest.mark.parametrize("n", [2, 4, 32])
def test_infonce_simplex_attains_floor(n):
    h = regular_simplex(n)
    assert (h @ h.T - torch.eye(n, dtype=h.dtype)).sum().item() / (n * (n - 1)) == pytest.approx(
        -1 / (n - 1)
    )
    for tau in (1.0, 0.1):
        assert infonce_loss(h, h, tau).item() == pytest.approx(infonce_floor(n, tau), abs=1e-9)
    assert infonce_floor(n, 0.1) < infonce_floor(n)  # a temperature lowers the floor
    assert infonce_floor(n, simplex=False) <= infonce_floor(n) + 1e-15


def test_infonce_random_and_optimised_stay_above_floor():
    torch.manual_seed(0)
    n, d = 8, 16
    for _ in range(20):
        loss = infonce_loss(torch.randn(n, d), torch.randn(n, d)).item()
        assert infonce_floor(n) - 1e-6 <= loss and math.log(n) - loss <= math.log(n)
    # free optimisation of both sides cannot go below the floor, and gets close to it
    h, p = torch.randn(n, d, requires_grad=True), torch.randn(n, d, requires_grad=True)
    opt = torch.optim.Adam([h, p], lr=0.05)
    for _ in range(400):
        loss = infonce_loss(h, p)
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = infonce_loss(h, p).item()
    assert infonce_floor(n) - 1e-5 <= final < infonce_floor(n) + 0.01


def test_infonce_validation():
    with pytest.raises(ValueError, match="shape"):
        infonce_loss(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="temperature"):
        infonce_loss(torch.randn(4, 3), torch.randn(4, 3), temperature=0.0)


def test_cpc_head_loss_and_scores():
    torch.manual_seed(0)
    head = CPCHead(target_dim=5, fusion_dim=7)
    assert len(head.net) == 1 and isinstance(head.net[0], torch.nn.Linear)
    h, z = torch.randn(12, 5), torch.randn(12, 7)
    loss, scores = head(h, z)
    pred = head.net(z)
    torch.testing.assert_close(loss, infonce_loss(h, pred))
    cos = (h @ pred.T).diagonal() / (h.norm(dim=1) * pred.norm(dim=1))
    torch.testing.assert_close(scores, torch.exp(cos))
    assert (
        scores.shape == (12,)
        and (scores >= math.exp(-1) - 1e-6).all()
        and (scores <= math.e + 1e-6).all()
    )
    deep = CPCHead(5, 7, n_layers=3, temperature=0.2)
    assert [type(m).__name__ for m in deep.net] == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    loss_t, _ = deep(h, z)
    torch.testing.assert_close(loss_t, infonce_loss(h, deep.net(z), 0.2))
    with pytest.raises(ValueError, match="h must have shape"):
        head(torch.randn(12, 4), z)
    with pytest.raises(ValueError, match="n_layers"):
        CPCHead(5, 7, n_layers=0)


def test_predictor_min_logvar_is_a_soft_floor():
    torch.manual_seed(0)
    q = GaussianPredictor(3, 2, min_logvar=-2.0)
    with torch.no_grad():
        q.logvar[-1].bias.fill_(-50.0)  # the raw head asks for a near-zero variance
        _, logvar = q(torch.randn(64, 3))
    assert (logvar >= -2.0).all() and (logvar < -1.9).all()
    with pytest.raises(ValueError, match="min_logvar"):
        GaussianPredictor(3, 2, min_logvar=float("nan"))


def test_standardize_removes_scale_and_shift_of_each_dimension():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(64, 5, generator=g) @ torch.randn(5, 5, generator=g)
    z = standardize(y)
    assert torch.allclose(z.mean(0), torch.zeros(5), atol=1e-5)
    assert torch.allclose(z.std(0, unbiased=False), torch.ones(5), atol=1e-4)
    shift = torch.linspace(-5, 5, 5)
    for scale in (
        0.01,
        8.0,
        300.0,
    ):  # one scale for all dimensions, a shift per dimension: invariant
        assert torch.allclose(standardize(y * scale + shift), z, atol=1e-4)
    # a scale per dimension: invariant while no variance falls below the floor (1e-6 of the mean
    # variance)
    assert torch.allclose(
        standardize(y * torch.tensor([0.5, 0.8, 1.0, 1.5, 2.0]) + shift), z, atol=1e-4
    )
    assert not torch.allclose(
        standardize(y * torch.tensor([1e-5, 1.0, 1.0, 1.0, 1.0])), z, atol=1e-2
    )
    assert torch.isfinite(standardize(torch.ones(8, 3))).all()  # constant dimensions: no NaN
    with pytest.raises(ValueError, match="B >= 2"):
        standardize(y[:1])


def test_floored_ba_rewards_scale_and_standardised_ba_does_not():
    """The defect in closed form: y = c (rho x + sqrt(1 - rho^2) eps), d = 16, true MI 12.9 nats.
    The best q the floor log sigma^2 >= -2 allows gives I_BA = E log q + H(Y) = 9.96 nats at c = 0.5
    and the true MI from c = 1 up (standardised y has c = 1 whatever the encoder's scale: the
    model-level test is in test_model.py)."""
    d, mi = 16, 12.9
    rho = gaussian_rho_for_mi(mi, d)

    def best_floored_ba(c: float) -> float:
        var = c * c * (1 - rho * rho)  # the true conditional variance of each y_j
        q_var = max(var, math.exp(-2.0))  # the floor caps q's sharpness
        log_q = -0.5 * d * (math.log(2 * math.pi * q_var) + var / q_var)
        return log_q + 0.5 * d * math.log(2 * math.pi * math.e * c * c)

    assert best_floored_ba(0.5) == pytest.approx(9.96, abs=0.01)
    for c in (1.0, 2.0, 10.0):
        assert best_floored_ba(c) == pytest.approx(mi, abs=1e-9)
    assert (
        best_floored_ba(0.25) < best_floored_ba(0.5) < best_floored_ba(1.0)
    )  # shrinking y costs BA
