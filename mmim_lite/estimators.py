"""MI estimators the book compares with MMIM's terms (not used by the model): the closed-form MI of
correlated Gaussians, the floor of the cosine InfoNCE loss (Eq. 11), and critic-based bounds
(Poole et al., 2019): InfoNCE, NWJ, DV (MINE) and the CLUB upper bound. The model's own MI terms
are in :mod:`mmim_lite.bounds`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "gaussian_mi",
    "gaussian_rho_for_mi",
    "infonce_floor",
    "infonce_lower_bound",
    "nwj_lower_bound",
    "dv_lower_bound",
    "club_upper_bound",
]


def gaussian_mi(rho: float, d: int) -> float:
    """MI (nats) of ``y = rho x + sqrt(1-rho^2) eps``, x, eps ~ N(0, I_d):
    ``-(d/2) log(1-rho^2)``."""
    if not -1 < rho < 1 or d < 1:
        raise ValueError(f"need |rho| < 1 and d >= 1, got rho={rho!r}, d={d!r}")
    return -0.5 * d * math.log1p(-rho * rho)


def gaussian_rho_for_mi(mi: float, d: int) -> float:
    """Inverse of :func:`gaussian_mi`: the ``rho >= 0`` giving ``mi`` nats in ``d`` dims."""
    if mi < 0 or d < 1:
        raise ValueError(f"need mi >= 0 and d >= 1, got mi={mi!r}, d={d!r}")
    return math.sqrt(-math.expm1(-2.0 * mi / d))


def infonce_floor(n: int, temperature: float = 1.0, simplex: bool = True) -> float:
    """Smallest cosine InfoNCE loss (Eq. 11) at batch size ``n``:
    ``log(1 + (n-1) exp(-n / ((n-1) tau)))``, from a regular simplex (Jensen + Cauchy-Schwarz).
    ``simplex=False``: ``log(1 + (n-1) e^{-2/tau})`` (all cos = -1)."""
    if not isinstance(n, int) or n < 1 or not temperature > 0:
        raise ValueError(
            f"need an int n >= 1 and temperature > 0, got n={n!r}, temperature={temperature!r}"
        )
    gap = n / (n - 1) if simplex and n > 1 else 2.0
    return 0.0 if n == 1 else math.log1p((n - 1) * math.exp(-gap / temperature))


# Critic scores S[i, j] = f(x_i, y_j) on a batch of N pairs: the diagonal holds the N joint pairs,
# the rest N(N-1) pairs from p(x)p(y).
def _split_scores(scores: Tensor) -> tuple[Tensor, Tensor]:
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1] or scores.shape[0] < 2:
        raise ValueError(f"scores must be an (N, N) matrix with N >= 2, got {tuple(scores.shape)}")
    off = ~torch.eye(scores.shape[0], dtype=torch.bool, device=scores.device)
    return scores.diagonal(), scores[off]


def infonce_lower_bound(scores: Tensor) -> Tensor:
    """InfoNCE (van den Oord et al., 2018) from critic scores: ``log N - CE(S, diagonal)``; never
    above ``log N``."""
    _split_scores(scores)
    return math.log(scores.shape[0]) - F.cross_entropy(
        scores, torch.arange(scores.shape[0], device=scores.device)
    )


def nwj_lower_bound(scores: Tensor) -> Tensor:
    """NWJ (Nguyen, Wainwright & Jordan, 2010): ``mean f(joint) - mean exp(f(marginal) - 1)``;
    tight at ``f = 1 + log p(x, y) / (p(x) p(y))``."""
    joint, marginal = _split_scores(scores)
    return joint.mean() - torch.exp(marginal - 1.0).mean()


def dv_lower_bound(scores: Tensor) -> Tensor:
    """Donsker-Varadhan, the bound MINE trains (Belghazi et al., 2018): ``mean f(joint) - log mean
    exp f(marginal)``; tight at ``f = log p(x, y) / (p(x) p(y))`` (up to a constant), never below
    NWJ for the same critic."""
    joint, marginal = _split_scores(scores)
    return joint.mean() - (torch.logsumexp(marginal, 0) - math.log(marginal.numel()))


def club_upper_bound(log_q: Tensor) -> Tensor:
    """CLUB (Cheng et al., 2020) from ``log_q[i, j] = log q(y_j | x_i)``: ``mean_i log q(y_i|x_i) -
    mean_{i,j} log q(y_j|x_i)``; an upper bound on I(X;Y) when q is the true conditional."""
    joint, _ = _split_scores(log_q)
    return joint.mean() - log_q.mean()
