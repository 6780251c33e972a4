"""Mutual-information bounds used by MMIM (Han, Chen & Poria, EMNLP 2021).

Two levels, as in the paper:

* input level (Sec. 3.4): the Barber-Agakov bound ``I(X;Y) >= E[log q(y|x)] + H(Y)``
  (Eq. 3) with a diagonal-Gaussian predictor ``q`` (Eq. 4) and ``H(Y)`` approximated by
  the lower bound of a two-component, per-polarity Gaussian mixture (Eqs. 5-8) whose
  parameters are estimated on the current batch plus a FIFO history memory (App. A.1;
  :class:`HistoryMemory` lives in :mod:`mmim_lite.memory` and is re-exported here);
* fusion level (Sec. 3.5): an InfoNCE / CPC loss on cosine scores (Eqs. 10-11).

Every quantity is in nats.  Helpers for the book: :func:`gaussian_mi`,
:func:`gaussian_rho_for_mi` (correlated Gaussians with known MI) and :func:`infonce_floor`.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .memory import HistoryMemory, _check_batch, _polarity

LOG_2PI = math.log(2.0 * math.pi)
LOG_2PIE = math.log(2.0 * math.pi * math.e)
MODES = ("gmm", "gaussian")

__all__ = ["gaussian_entropy", "mixture_entropy_bounds", "ml_covariance", "HistoryMemory",
           "polarity_entropy", "GaussianPredictor", "diag_gaussian_log_prob", "authors_log_q",
           "ba_lower_bound", "infonce_loss", "CPCHead", "gaussian_mi", "gaussian_rho_for_mi",
           "infonce_floor"]


# ----------------------------------------------------------------------------- entropies
def gaussian_entropy(cov: Tensor) -> Tensor:
    """Eq. 6: differential entropy ``0.5 * logdet(2*pi*e*cov)`` of ``N(mu, cov)`` in nats.

    ``cov`` has shape ``(..., k, k)``; leading dimensions are a batch and the result has
    shape ``cov.shape[:-2]``.  Raises ``ValueError`` when a matrix is not square, not
    finite, not symmetric (relative tolerance ``1000 * machine eps`` of its dtype) or not
    positive definite (Cholesky fails, detected with ``torch.linalg.cholesky_ex``).
    """
    if not isinstance(cov, Tensor) or cov.ndim < 2 or cov.shape[-1] != cov.shape[-2]:
        shape = tuple(cov.shape) if isinstance(cov, Tensor) else type(cov).__name__
        raise ValueError(f"cov must be a tensor of square matrices (..., k, k), got {shape}")
    if cov.shape[-1] == 0:
        raise ValueError("cov must have k >= 1")
    if not cov.is_floating_point():
        cov = cov.to(torch.get_default_dtype())
    if not torch.isfinite(cov).all():
        raise ValueError("cov contains NaN or inf")
    tol = 1000.0 * torch.finfo(cov.dtype).eps
    scale = cov.detach().abs().amax(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(cov.dtype).tiny)
    if ((cov.detach() - cov.detach().mT).abs() > tol * scale).any():
        raise ValueError("cov is not symmetric")
    sym = 0.5 * (cov + cov.mT)
    chol, info = torch.linalg.cholesky_ex(sym)
    if (info != 0).any():
        raise ValueError("cov is not positive definite (Cholesky factorisation failed)")
    k = cov.shape[-1]
    half_logdet = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * k * LOG_2PIE + half_logdet


def mixture_entropy_bounds(entropies: Tensor | Sequence[float],
                           weights: Tensor | Sequence[float]) -> tuple[Tensor, Tensor]:
    """Eq. 7 (Huber et al., 2008): bounds on the entropy of a mixture ``sum_c w_c p_c``.

    ``lower = sum_c w_c h_c`` and ``upper = sum_c w_c (h_c - log w_c)`` (with
    ``0 log 0 = 0``), where ``h_c`` is the entropy of component ``c``.  Both bounds hold for
    any mixture, overlapping or not (``H(Y) >= H(Y|C)`` and ``H(Y) <= H(Y, C)``); the
    gap is the entropy of the weights, ``log 2`` for two equal weights.  The last dimension
    indexes components; leading dimensions broadcast.  Weights must be non-negative and sum
    to 1 (tolerance 1e-5).
    """
    h = torch.as_tensor(entropies)
    w = torch.as_tensor(weights)
    dtype = torch.promote_types(h.dtype, w.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    h, w = h.to(dtype), w.to(dtype=dtype, device=h.device)
    if h.ndim == 0 or w.ndim == 0 or h.shape[-1] != w.shape[-1]:
        raise ValueError(f"entropies and weights need the same last (component) dimension, "
                         f"got {tuple(h.shape)} and {tuple(w.shape)}")
    if (w < 0).any():
        raise ValueError("weights must be non-negative")
    if ((w.sum(-1) - 1.0).abs() > 1e-5).any():
        raise ValueError("weights must sum to 1 over the last dimension")
    lower = (w * h).sum(-1)
    w_log_w = torch.where(w > 0, w * torch.log(w.clamp_min(torch.finfo(dtype).tiny)), 0.0)
    return lower, lower - w_log_w.sum(-1)


def ml_covariance(samples: Tensor) -> Tensor:
    """Eq. 5: maximum-likelihood covariance ``(1/N) sum_i (h_i - mu)(h_i - mu)^T`` of (N, k).

    Algebraically equal to Eq. 5's ``E[h h^T] - mu mu^T``; centring first is the
    numerically stable form.  Note the 1/N (not 1/(N-1)) normalisation: for ``N <= k``
    the result is singular (rank ``<= N - 1``).
    """
    if samples.ndim != 2 or samples.shape[0] == 0:
        raise ValueError(f"samples must have shape (N >= 1, k), got {tuple(samples.shape)}")
    centred = samples - samples.mean(0, keepdim=True)
    return centred.mT @ centred / samples.shape[0]


# ----------------------------------------------------------------------------- Eq. 5-8
def _gaussian_logdet(samples: Tensor, eps: float) -> Tensor:
    """log det(Sigma_ML + eps I), without validation; non-finite when singular and eps = 0."""
    n, k = samples.shape
    cov = ml_covariance(samples) + eps * torch.eye(k, dtype=samples.dtype, device=samples.device)
    logdet = torch.logdet(cov)  # -inf (det = 0) or NaN (round-off makes det < 0) when singular
    if eps == 0 and n <= k:
        # rank(Sigma_ML) <= n - 1 < k: det is exactly 0; float round-off may hide that.
        logdet = logdet - math.inf
    return logdet


def polarity_entropy(y: Tensor, labels: Tensor, memory: HistoryMemory | None = None,
                     mode: str = "gmm", eps: float = 1e-4, constants: bool = True) -> Tensor:
    """Eqs. 5-8: entropy estimate of ``y`` from a per-polarity Gaussian mixture.

    Samples are the current batch ``y`` (B, d) concatenated with ``memory.read()``
    (memory is read, never written; gradients flow through ``y`` only).  For each polarity
    class ``c`` (1: label >= 0, 0: label < 0) the ML mean and covariance (Eq. 5, 1/N_c) are
    estimated, a ridge ``eps * I`` is added, and ``h_c = 0.5 logdet(2 pi e Sigma_c)``
    (Eq. 6).  The result is the lower bound of Eq. 7 with equal weights,
    ``sum_c h_c / C`` -- for two classes exactly Eq. 8,
    ``1/4 [logdet Sigma_1 + logdet Sigma_2]``, plus the constant ``(d/2) log(2 pi e)``.
    The constant is kept by default (``constants=True``) so that ``E[log q] + H`` is an
    MI estimate in nats comparable to a true MI; ``constants=False`` returns Eq. 8 as
    printed.  Gradients are identical either way.

    ``mode="gaussian"`` fits a single Gaussian to all samples (the "w/o GMM" ablation).

    Absent class: if one class has no sample in batch + memory, the mixture has one
    component, i.e. the entropy of that class's Gaussian (weights renormalised over the
    classes present).  No sample at all -> ``ValueError``.

    ``eps`` (default 1e-4): the ridge keeps the log-determinant finite when a class has
    fewer samples than dimensions and guarantees positive definiteness against float32
    round-off (~1e-7 relative); for covariances with eigenvalues >= 1e-2 (tanh /
    normalised features) it shifts each ``h_c`` by at most ``0.5 * d * log(1.01)``, i.e.
    < 0.005 nats per dimension.  With ``eps=0`` no regularisation is applied: a class with
    ``N_c <= d`` samples has a singular ML covariance and the result is non-finite (-inf or
    NaN) instead of an error -- the paper's Table 4 "w/o history" failure (training
    diverges to NaN).
    """
    _check_batch(y, labels)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not (isinstance(eps, (int, float)) and eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    if not y.is_floating_point():
        raise ValueError(f"y must be a floating-point tensor, got {y.dtype}")
    d = y.shape[1]
    cls = _polarity(labels)
    groups = {c: [y[cls == c]] for c in (0, 1)}
    if memory is not None and len(memory) > 0:
        if memory.dim != d:
            raise ValueError(f"memory holds {memory.dim}-d embeddings, y is {d}-d")
        for c, stored in memory.read().items():
            groups[c].append(stored.to(device=y.device, dtype=y.dtype))
    samples = {c: torch.cat(parts) for c, parts in groups.items()}
    if mode == "gaussian":
        samples = {0: torch.cat([samples[0], samples[1]])}
    present = [s for s in samples.values() if s.shape[0] > 0]
    if not present:
        raise ValueError("polarity_entropy needs at least one sample (batch + memory are empty)")
    half_logdets = torch.stack([0.5 * _gaussian_logdet(s, float(eps)) for s in present])
    entropy = half_logdets.mean()  # equal weights over the classes present (Eq. 7 lower bound)
    return entropy + 0.5 * d * LOG_2PIE if constants else entropy


# ----------------------------------------------------------------------------- Eq. 3-4
def _check_same_shape(mu: Tensor, logvar: Tensor, y: Tensor) -> None:
    if not (mu.shape == logvar.shape == y.shape):
        raise ValueError(f"mu, logvar, y must have equal shapes, got "
                         f"{tuple(mu.shape)}, {tuple(logvar.shape)}, {tuple(y.shape)}")


def diag_gaussian_log_prob(mu: Tensor, logvar: Tensor, y: Tensor) -> Tensor:
    """Eq. 4's ``log N(y | mu, diag exp(logvar))``, summed over the last dimension.

    ``-0.5 * sum_j [ (y_j - mu_j)^2 / sigma_j^2 + log sigma_j^2 + log 2 pi ]``."""
    _check_same_shape(mu, logvar, y)
    return -0.5 * (((y - mu) ** 2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


def authors_log_q(mu: Tensor, logvar: Tensor, y: Tensor) -> Tensor:
    """The authors' public-code variant: ``-sum_j (mu_j - y_j)^2 / (2 sigma_j^2)``.

    NOT a log density: the ``-0.5 log sigma^2`` and ``-0.5 log 2 pi`` terms are missing,
    so it is <= 0 whatever sigma and ``mean(authors_log_q) + H(Y)`` is not a lower bound
    on I(X;Y) (it can exceed it, and the predictor can push it to 0 by inflating sigma).
    Kept only so the book can measure the difference."""
    _check_same_shape(mu, logvar, y)
    return -0.5 * (((y - mu) ** 2) * torch.exp(-logvar)).sum(-1)


class GaussianPredictor(nn.Module):
    """Eq. 4's variational ``q(y|x) = N(mu(x), diag sigma^2(x))`` (after Cheng et al., 2020).

    Two separate two-layer MLPs (Linear-ReLU-Linear) output ``mu`` and ``logvar``.
    ``hidden=None`` picks ``max(64, y_dim)``: wide enough to never bottleneck the output
    and independent of ``x_dim``, so a 768-d text input costs ~0.1 M parameters, not ~1 M.
    ``logvar`` is unbounded by default (no tanh squashing) so that ``q`` can match
    conditional variances far from 1, which a tight bound at high MI needs.  ``min_logvar=m``
    puts a soft floor under it, ``log sigma^2 = m + softplus(raw - m)``: any ``q`` still gives
    a valid BA bound, and inside MMIM the floor stops stage 1 from making ``q`` so sharp that
    the stage-2 gradient of ``log q`` w.r.t. the encoders (~ (y - mu) / sigma^2) swamps the
    task loss, and caps what collapsing one dimension of ``y`` can gain.
    """

    def __init__(self, x_dim: int, y_dim: int, hidden: int | None = None,
                 min_logvar: float | None = None) -> None:
        super().__init__()
        for name, val in (("x_dim", x_dim), ("y_dim", y_dim)):
            if not isinstance(val, int) or val < 1:
                raise ValueError(f"{name} must be an int >= 1, got {val!r}")
        hidden = max(64, y_dim) if hidden is None else hidden
        if not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden must be an int >= 1 or None, got {hidden!r}")
        if min_logvar is not None and not math.isfinite(min_logvar):
            raise ValueError(f"min_logvar must be a finite number or None, got {min_logvar!r}")
        self.x_dim, self.y_dim, self.hidden, self.min_logvar = x_dim, y_dim, hidden, min_logvar
        self.mu = nn.Sequential(nn.Linear(x_dim, hidden), nn.ReLU(), nn.Linear(hidden, y_dim))
        self.logvar = nn.Sequential(nn.Linear(x_dim, hidden), nn.ReLU(), nn.Linear(hidden, y_dim))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.ndim != 2 or x.shape[1] != self.x_dim:
            raise ValueError(f"x must have shape (B, {self.x_dim}), got {tuple(x.shape)}")
        logvar = self.logvar(x)
        if self.min_logvar is not None:
            logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        return self.mu(x), logvar

    def log_prob(self, x: Tensor, y: Tensor, full: bool = True) -> Tensor:
        """Per-sample ``log q(y|x)`` (B,); ``full=False`` gives :func:`authors_log_q` instead."""
        mu, logvar = self(x)
        return diag_gaussian_log_prob(mu, logvar, y) if full else authors_log_q(mu, logvar, y)


def ba_lower_bound(log_q: Tensor, entropy: Tensor | float) -> Tensor:
    """Eq. 3: Barber-Agakov ``I(X;Y) >= E[log q(y|x)] + H(Y)`` = ``mean(log_q) + entropy``.

    A lower bound only if ``log_q`` is a true log density and ``entropy`` is ``H(Y)`` in
    the same units (keep the ``(d/2) log(2 pi e)`` constant, see :func:`polarity_entropy`)."""
    if not isinstance(log_q, Tensor) or log_q.ndim != 1 or log_q.shape[0] == 0:
        raise ValueError(f"log_q must be a non-empty (B,) tensor, got {getattr(log_q, 'shape', log_q)}")
    entropy = torch.as_tensor(entropy, dtype=log_q.dtype, device=log_q.device)
    if entropy.numel() != 1:
        raise ValueError(f"entropy must be a scalar, got shape {tuple(entropy.shape)}")
    return log_q.mean() + entropy.reshape(())


# ----------------------------------------------------------------------------- Eq. 10-11
def infonce_loss(h: Tensor, h_pred: Tensor, temperature: float = 1.0) -> Tensor:
    """Eqs. 10-11: InfoNCE with cosine scores ``s = exp(cos / temperature)``.

    Row ``i`` of ``h_pred`` (a prediction ``G(Z_i)``) is scored against every row of
    ``h``; ``h_i`` is the positive and the other rows are negatives.  Both are
    L2-normalised inside.  Returns the batch mean of
    ``-log s(h_pred_i, h_i) / sum_j s(h_pred_i, h_j)``.  ``log B - loss`` is the InfoNCE
    lower bound on the MI; the paper uses ``temperature = 1``.
    """
    if h.ndim != 2 or h.shape != h_pred.shape or h.shape[0] == 0:
        raise ValueError(f"h and h_pred must both have shape (B >= 1, d), got "
                         f"{tuple(h.shape)} and {tuple(h_pred.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    logits = F.normalize(h_pred, dim=-1) @ F.normalize(h, dim=-1).mT / temperature
    return F.cross_entropy(logits, torch.arange(h.shape[0], device=h.device))


class CPCHead(nn.Module):
    """``G_phi`` of Eq. 10: predicts a modality representation ``h_m`` from the fusion ``Z``.

    ``n_layers=1``: one Linear ``fusion_dim -> target_dim``; ``n_layers=L > 1``: that
    Linear followed by ``L-1`` blocks of (Tanh, Linear ``target_dim -> target_dim``).
    ``forward(h, z)`` returns ``(loss, scores)``: the InfoNCE loss of Eq. 11 and the
    per-sample positive scores ``s_i = exp(cos(h_i, G(z_i)))`` in ``[e^-1, e]`` (Table 5);
    ``scores`` ignore ``temperature`` (the paper has none), the loss uses it.
    """

    def __init__(self, target_dim: int, fusion_dim: int, n_layers: int = 1,
                 temperature: float = 1.0) -> None:
        super().__init__()
        for name, val in (("target_dim", target_dim), ("fusion_dim", fusion_dim), ("n_layers", n_layers)):
            if not isinstance(val, int) or val < 1:
                raise ValueError(f"{name} must be an int >= 1, got {val!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.temperature = float(temperature)
        layers: list[nn.Module] = [nn.Linear(fusion_dim, target_dim)]
        for _ in range(n_layers - 1):
            layers += [nn.Tanh(), nn.Linear(target_dim, target_dim)]
        self.net = nn.Sequential(*layers)
        self.target_dim, self.fusion_dim = target_dim, fusion_dim

    def forward(self, h: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        if z.ndim != 2 or z.shape[1] != self.fusion_dim:
            raise ValueError(f"z must have shape (B, {self.fusion_dim}), got {tuple(z.shape)}")
        if h.ndim != 2 or h.shape != (z.shape[0], self.target_dim):
            raise ValueError(f"h must have shape ({z.shape[0]}, {self.target_dim}), got {tuple(h.shape)}")
        pred = self.net(z)
        loss = infonce_loss(h, pred, self.temperature)
        scores = torch.exp(F.cosine_similarity(h, pred, dim=-1))
        return loss, scores


# ----------------------------------------------------------------------------- helpers
def gaussian_mi(rho: float, d: int) -> float:
    """MI (nats) of ``y = rho x + sqrt(1-rho^2) eps``, x, eps ~ N(0, I_d): ``-(d/2) log(1-rho^2)``."""
    if not -1 < rho < 1 or d < 1:
        raise ValueError(f"need |rho| < 1 and d >= 1, got rho={rho!r}, d={d!r}")
    return -0.5 * d * math.log1p(-rho * rho)


def gaussian_rho_for_mi(mi: float, d: int) -> float:
    """Inverse of :func:`gaussian_mi`: the ``rho >= 0`` giving ``mi`` nats in ``d`` dims."""
    if mi < 0 or d < 1:
        raise ValueError(f"need mi >= 0 and d >= 1, got mi={mi!r}, d={d!r}")
    return math.sqrt(-math.expm1(-2.0 * mi / d))


def infonce_floor(n: int, temperature: float = 1.0, simplex: bool = True) -> float:
    """Smallest InfoNCE loss (Eq. 11) reachable with cosine scores at batch size ``n``.

    Write ``c_ij = cos(h_pred_i, h_j)``; the loss is
    ``mean_i log(1 + sum_{j != i} exp((c_ij - c_ii) / tau))``.  By Jensen (convex ``exp``,
    then the convex increasing ``m -> log(1 + (n-1) e^{m/tau})``) it is at least
    ``log(1 + (n-1) exp(m / tau))`` with ``m`` the mean of ``c_ij - c_ii`` over ``i != j``.
    For unit vectors ``sum_i p_i . (S - n h_i) >= -sum_i ||n h_i - S|| >= -n^2``
    (``S = sum_j h_j``, Cauchy-Schwarz), so ``m >= -n/(n-1) = -1 - 1/(n-1)``, giving

        ``L_min = log(1 + (n-1) exp(-n / ((n-1) tau)))``,

    attained by ``h_pred = h`` arranged as a regular simplex (needs ``d >= n-1``; for
    smaller ``d`` it is still a lower bound).  At ``n = 32``, ``tau = 1``: ``L_min = 2.488``
    and the largest certifiable MI ``log n - L_min = 0.977`` nats (< 1 for every ``n`` at
    ``tau = 1``, tending to ``1/tau`` as ``n`` grows), against ``log 32 = 3.466``.

    ``simplex=False`` returns the looser ``log(1 + (n-1) e^{-2/tau})`` ("every negative at
    cos = -1"), equal to ``L_min`` only for ``n = 2``.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if n == 1:
        return 0.0
    gap = n / (n - 1) if simplex else 2.0
    return math.log1p((n - 1) * math.exp(-gap / temperature))
