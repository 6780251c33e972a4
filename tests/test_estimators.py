"""Tests for mmim_lite.estimators: the book's comparison estimators against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from mmim_lite.estimators import (
    club_upper_bound,
    dv_lower_bound,
    gaussian_mi,
    gaussian_rho_for_mi,
    infonce_floor,
    infonce_lower_bound,
    nwj_lower_bound,
)


@pytest.mark.parametrize("mi", [0.5, 2.0, 4.0])
def test_gaussian_rho_for_mi_inverts_gaussian_mi(mi):
    rho = gaussian_rho_for_mi(mi, 4)
    assert gaussian_mi(rho, 4) == pytest.approx(mi)


def test_infonce_floor_values():
    assert infonce_floor(32) == pytest.approx(math.log(1 + 31 * math.exp(-32 / 31)))
    assert math.log(32) - infonce_floor(32) == pytest.approx(0.977, abs=1e-3)  # "about 1 nat"
    assert infonce_floor(32, simplex=False) == pytest.approx(math.log(1 + 31 * math.exp(-2)))
    assert all(math.log(n) - infonce_floor(n) < 1.0 for n in (2, 8, 32, 256, 10**6))
    assert infonce_floor(2) == pytest.approx(infonce_floor(2, simplex=False))
    assert math.log(32) - infonce_floor(32, 0.1) > 3.4  # tau = 0.1 certifies nearly log 32
    assert infonce_floor(1) == 0.0


def _gaussian_pairs(
    mi: float, d: int, n: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, float]:
    gen = torch.Generator().manual_seed(seed)
    rho = gaussian_rho_for_mi(mi, d)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    return (
        x,
        rho * x + math.sqrt(1 - rho**2) * torch.randn(n, d, generator=gen, dtype=torch.float64),
        rho,
    )


def _log_ratio(x: torch.Tensor, y: torch.Tensor, rho: float) -> torch.Tensor:
    """S[i, j] = log p(y_j | x_i) / p(y_j) for the correlated Gaussian, computed from scipy's
    densities."""
    d = x.shape[1]
    cond = np.stack(
        [
            multivariate_normal(rho * xi.numpy(), (1 - rho**2) * np.eye(d)).logpdf(y.numpy())
            for xi in x
        ]
    )
    return torch.from_numpy(
        cond - multivariate_normal(np.zeros(d), np.eye(d)).logpdf(y.numpy())[None, :]
    )


def test_lower_bounds_with_the_optimal_critic_recover_the_true_mi():
    x, y, rho = _gaussian_pairs(mi=1.0, d=2, n=800, seed=3)
    s = _log_ratio(x, y, rho)
    assert abs(dv_lower_bound(s).item() - 1.0) < 0.1  # tight at f = log-ratio
    assert abs(nwj_lower_bound(s + 1.0).item() - 1.0) < 0.1  # tight at f = 1 + log-ratio
    infonce = infonce_lower_bound(s).item()
    assert 1.0 - 0.15 < infonce <= math.log(800)  # log N = 6.7 >> 1 nat: close to the truth


def test_club_with_the_true_conditional_is_its_closed_form_upper_bound():
    # CLUB = E_p[log p(y|x)] - E_p(x)p(y)[log p(y|x)] = d rho^2 / (1 - rho^2) for the Gaussian pair:
    # above the MI
    x, y, rho = _gaussian_pairs(mi=2.0, d=4, n=800, seed=4)
    var = 1 - rho**2
    log_q = -0.5 * (
        ((y[None, :, :] - rho * x[:, None, :]) ** 2) / var + math.log(2 * math.pi * var)
    ).sum(-1)
    closed = 4 * rho**2 / var
    assert abs(club_upper_bound(log_q).item() - closed) < 0.15 and closed > 2.0 + 1.0


def test_estimator_properties_on_any_scores():
    gen = torch.Generator().manual_seed(5)
    for _ in range(20):
        s = 10 * torch.randn(16, 16, generator=gen, dtype=torch.float64)
        assert (
            infonce_lower_bound(s).item() <= math.log(16) + 1e-12
        )  # InfoNCE can never exceed log N
        assert dv_lower_bound(s).item() >= nwj_lower_bound(s).item() - 1e-12  # log z <= z / e
    for bad in (torch.zeros(3, 4), torch.zeros(1, 1), torch.zeros(4)):
        with pytest.raises(ValueError, match="scores"):
            nwj_lower_bound(bad)
