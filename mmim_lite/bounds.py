"""Mutual-information bounds of MMIM (Han, Chen & Poria, EMNLP 2021), in nats. Input level (Sec.
3.4): Barber-Agakov (Eq. 3) with a diagonal-Gaussian ``q`` (Eq. 4) and H(Y) from a per-polarity
Gaussian mixture (Eqs. 5-8) over the batch plus a history memory (App. A.1). Fusion level (Sec.
3.5): InfoNCE / CPC on cosine scores (Eqs. 10-11). The estimators the book compares them with are in
:mod:`mmim_lite.estimators`."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LOG_2PI, LOG_2PIE = math.log(2.0 * math.pi), math.log(2.0 * math.pi * math.e)

__all__ = [
    "standardize",
    "gaussian_entropy",
    "mixture_entropy_bounds",
    "ml_covariance",
    "HistoryMemory",
    "polarity_entropy",
    "GaussianPredictor",
    "diag_gaussian_log_prob",
    "authors_log_q",
    "ba_lower_bound",
    "infonce_loss",
    "symmetric_infonce_loss",
    "CPCHead",
]


def standardize(y: Tensor, rel_eps: float = 1e-6) -> Tensor:
    """``(y - mean) / std`` per dimension over the batch (B, d), the variance floored at ``rel_eps``
    times its mean over dimensions: unchanged when ``y`` is scaled or shifted, so an I_BA of
    standardised targets rewards no scale."""
    if y.ndim != 2 or y.shape[0] < 2:
        raise ValueError(f"y must have shape (B >= 2, d), got {tuple(y.shape)}")
    var = y.var(0, unbiased=False)
    return (y - y.mean(0)) * torch.rsqrt(
        var + rel_eps * var.detach().mean().clamp_min(torch.finfo(y.dtype).tiny)
    )


def gaussian_entropy(cov: Tensor, check: bool = True) -> Tensor:
    """Eq. 6: ``0.5 * logdet(2 pi e cov)`` for symmetric positive-definite ``cov`` (..., k, k).
    ``check=False`` (the training path): no symmetry check and no host sync; a matrix that is not
    positive definite or not finite gives NaN, not an error (the trainer reports a diverged run)."""
    if not isinstance(cov, Tensor) or cov.ndim < 2 or cov.shape[-1] != cov.shape[-2]:
        raise ValueError(
            f"cov must be a tensor of square matrices (..., k, k), got {getattr(cov, 'shape', cov)}"
        )
    cov = cov if cov.is_floating_point() else cov.to(torch.get_default_dtype())
    if check:
        scale = cov.detach().abs().amax(dim=(-2, -1), keepdim=True)
        tol = 1000.0 * torch.finfo(cov.dtype).eps * scale.clamp_min(torch.finfo(cov.dtype).tiny)
        if ((cov - cov.mT).detach().abs() > tol).any():
            raise ValueError("cov is not symmetric")
    chol, info = torch.linalg.cholesky_ex(0.5 * (cov + cov.mT))
    if check and (info != 0).any():
        raise ValueError(
            "cov is not positive definite, or not finite (Cholesky factorisation failed)"
        )
    h = 0.5 * cov.shape[-1] * LOG_2PIE + torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    return h if check else h.where(info == 0, math.nan)


def mixture_entropy_bounds(
    entropies: Tensor | Sequence[float], weights: Tensor | Sequence[float]
) -> tuple[Tensor, Tensor]:
    """Eq. 7 (Huber et al. 2008): ``(sum_c w_c h_c, sum_c w_c (h_c - log w_c))`` bound mixture
    entropy (c: last dim)."""
    h, w = torch.as_tensor(entropies), torch.as_tensor(weights)
    dtype = torch.promote_types(h.dtype, w.dtype)
    dtype = dtype if dtype.is_floating_point else torch.get_default_dtype()
    h, w = h.to(dtype), w.to(dtype)
    if h.ndim == 0 or w.ndim == 0 or h.shape[-1] != w.shape[-1]:
        raise ValueError(
            "entropies and weights need the same last dimension, "
            f"got {tuple(h.shape)}, {tuple(w.shape)}"
        )
    if (w < 0).any():  # checked where the weights are (no host sync for weights on the CPU)
        raise ValueError("weights must be non-negative")
    if ((w.sum(-1) - 1.0).abs() > 1e-5).any():
        raise ValueError("weights must sum to 1 over the last dimension")
    w = w.to(h.device)
    lower = (w * h).sum(-1)
    return lower, lower - torch.where(
        w > 0, w * torch.log(w.clamp_min(torch.finfo(dtype).tiny)), 0.0
    ).sum(-1)


def ml_covariance(samples: Tensor) -> Tensor:
    """Eq. 5: ML covariance ``(1/N) sum_i (h_i - mu)(h_i - mu)^T`` of (N, k) samples (singular if N
    <= k)."""
    if samples.ndim != 2 or samples.shape[0] == 0:
        raise ValueError(f"samples must have shape (N >= 1, k), got {tuple(samples.shape)}")
    centred = samples - samples.mean(0, keepdim=True)
    return centred.mT @ centred / samples.shape[0]


def _check_batch(y: Tensor, labels: Tensor) -> None:
    if not isinstance(y, Tensor) or y.ndim != 2 or not y.is_floating_point():
        raise ValueError(
            f"y must be a floating-point (B, d) tensor, got {getattr(y, 'shape', type(y))} "
            f"{getattr(y, 'dtype', '')}"
        )
    if not isinstance(labels, Tensor) or labels.ndim != 1 or labels.shape[0] != y.shape[0]:
        raise ValueError(
            f"labels must be a ({y.shape[0]},) tensor, got {getattr(labels, 'shape', type(labels))}"
        )
    if labels.is_floating_point() and not torch.isfinite(labels).all():
        raise ValueError("labels contain NaN or inf")


class HistoryMemory:
    """FIFO of the last ``size`` batches of detached embeddings and labels (App. A.1, Fig. 3; 0
    disables it). Read first, then :meth:`push` (Algorithm 1); :meth:`read` gives ``{0: label < 0,
    1: label >= 0}``, oldest first."""

    def __init__(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"size must be an int >= 0, got {size!r}")
        self.size, self.dim = size, None
        self._batches: deque[tuple[Tensor, Tensor]] = deque(maxlen=size)

    def push(self, y: Tensor, labels: Tensor) -> None:
        _check_batch(y, labels)
        if self.dim is not None and y.shape[1] != self.dim:
            raise ValueError(f"memory holds {self.dim}-d embeddings, got {y.shape[1]}-d")
        if self.size > 0:
            self.dim = int(y.shape[1])
            self._batches.append((y.detach().clone(), labels.detach().clone()))

    def read(self) -> dict[int, Tensor]:
        if not self._batches:
            return {c: torch.zeros(0, self.dim or 0) for c in (0, 1)}
        ys = torch.cat([y for y, _ in self._batches])
        cls = torch.cat([(lab >= 0).long() for _, lab in self._batches])
        return {c: ys[cls == c] for c in (0, 1)}

    def __len__(self) -> int:
        return len(self._batches)

    def clear(self) -> None:
        self._batches.clear()

    def state_dict(self) -> dict:
        """CPU tensors, ints and lists only (loadable with ``torch.load(weights_only=True)``)."""
        return {
            "size": self.size,
            "dim": -1 if self.dim is None else self.dim,
            "y": [y.cpu() for y, _ in self._batches],
            "labels": [lab.cpu() for _, lab in self._batches],
        }

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        if int(state["size"]) != self.size:
            raise ValueError(
                f"state was saved with size {state['size']}, memory has size {self.size}"
            )
        if len(state["y"]) != len(state["labels"]) or len(state["y"]) > self.size:
            raise ValueError("inconsistent memory state: y/labels lists differ or exceed size")
        self.clear()
        self.dim = None if int(state["dim"]) < 0 else int(state["dim"])
        for y, lab in zip(state["y"], state["labels"]):
            self.push(y.to(device), lab.to(device))


def polarity_entropy(
    y: Tensor,
    labels: Tensor,
    memory: HistoryMemory | None = None,
    mode: str = "gmm",
    eps: float = 1e-4,
    constants: bool = True,
) -> Tensor:
    """Eqs. 5-8: H(Y) of ``y`` (B, d) plus the read-only memory as an equal-weight per-polarity GMM:
    Eq. 7's lower bound over the classes present (1: label >= 0, 0: < 0) of their Eq. 6 entropies of
    ``Sigma_ML,c + eps I`` (Eq. 5). ``mode="gaussian"``: one Gaussian ("w/o GMM");
    ``constants=False``: Eq. 8 as printed (no ``(d/2) log(2 pi e)``); eps=0 with N_c <= d: -inf."""
    _check_batch(y, labels)
    if mode not in ("gmm", "gaussian"):
        raise ValueError(f"mode must be 'gmm' or 'gaussian', got {mode!r}")
    if not (isinstance(eps, (int, float)) and eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    d = y.shape[1]
    groups = {c: [y[(labels >= 0).long() == c]] for c in (0, 1)}
    if memory is not None and len(memory) > 0:
        if memory.dim != d:
            raise ValueError(f"memory holds {memory.dim}-d embeddings, y is {d}-d")
        for c, stored in memory.read().items():
            groups[c].append(stored.to(device=y.device, dtype=y.dtype))
    samples = [torch.cat(parts) for parts in groups.values()]
    present = [
        s for s in ([torch.cat(samples)] if mode == "gaussian" else samples) if s.shape[0] > 0
    ]
    if not present:
        raise ValueError("polarity_entropy needs at least one sample (batch + memory are empty)")
    entropies = []  # Eq. 6 per component, of its Eq. 5 covariance plus the ridge
    for s in present:
        cov = ml_covariance(s) + eps * torch.eye(d, dtype=s.dtype, device=s.device)
        if eps == 0 and s.shape[0] <= d:  # rank < d: det is 0; round-off may hide it or give NaN
            half = (0.5 * torch.logdet(cov)).nan_to_num(nan=0.0)  # logdet's round-off gradient kept
            entropies.append(half - math.inf)  # exactly -inf
        else:
            entropies.append(gaussian_entropy(cov, check=False))
    weights = torch.full((len(present),), 1.0 / len(present), dtype=y.dtype)  # equal priors (Eq. 8)
    entropy = mixture_entropy_bounds(torch.stack(entropies), weights)[0]  # Eq. 7's lower bound
    return entropy if constants else entropy - 0.5 * d * LOG_2PIE


def diag_gaussian_log_prob(mu: Tensor, logvar: Tensor, y: Tensor, full: bool = True) -> Tensor:
    """Eq. 4's ``log N(y | mu, diag exp(logvar))``, summed over the last dim; ``full=False``:
    :func:`authors_log_q`."""
    if not (mu.shape == logvar.shape == y.shape):
        raise ValueError(
            f"mu, logvar, y must have equal shapes, got {[tuple(t.shape) for t in (mu, logvar, y)]}"
        )
    terms = ((y - mu) ** 2) * torch.exp(-logvar)
    return -0.5 * ((terms + logvar + LOG_2PI) if full else terms).sum(-1)


def authors_log_q(mu: Tensor, logvar: Tensor, y: Tensor) -> Tensor:
    """The authors' ``-sum_j (mu_j - y_j)^2 / (2 sigma_j^2)``: NOT a log density, so ``mean + H(Y)``
    is no bound."""
    return diag_gaussian_log_prob(mu, logvar, y, full=False)


class GaussianPredictor(nn.Module):
    """Eq. 4's ``q(y|x) = N(mu(x), diag sigma^2(x))``: two Linear-ReLU-Linear MLPs for mu and
    logvar. ``hidden=None``: ``max(64, y_dim)``. ``min_logvar=m``: soft floor ``log sigma^2 = m +
    softplus(raw - m)``."""

    def __init__(
        self, x_dim: int, y_dim: int, hidden: int | None = None, min_logvar: float | None = None
    ) -> None:
        super().__init__()
        if min_logvar is not None and not math.isfinite(min_logvar):
            raise ValueError(f"min_logvar must be a finite number or None, got {min_logvar!r}")
        hidden = max(64, y_dim) if hidden is None else hidden
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
        return diag_gaussian_log_prob(*self(x), y, full=full)


def ba_lower_bound(log_q: Tensor, entropy: Tensor | float) -> Tensor:
    """Eq. 3: Barber-Agakov ``I(X;Y) >= E[log q(y|x)] + H(Y)`` = ``mean(log_q) + entropy``."""
    if not isinstance(log_q, Tensor) or log_q.ndim != 1 or log_q.shape[0] == 0:
        raise ValueError(
            f"log_q must be a non-empty (B,) tensor, got {getattr(log_q, 'shape', log_q)}"
        )
    entropy = torch.as_tensor(entropy, dtype=log_q.dtype, device=log_q.device)
    if entropy.numel() != 1:
        raise ValueError(f"entropy must be a scalar, got shape {tuple(entropy.shape)}")
    return log_q.mean() + entropy.reshape(())


def infonce_loss(h: Tensor, h_pred: Tensor, temperature: float = 1.0) -> Tensor:
    """Eqs. 10-11: mean of ``-log s(p_i, h_i) / sum_j s(p_i, h_j)``, ``s = exp(cos / temperature)``,
    ``p = h_pred``."""
    if h.ndim != 2 or h.shape != h_pred.shape or h.shape[0] == 0:
        raise ValueError(
            "h must have shape (B >= 1, d) like h_pred, "
            f"got {tuple(h.shape)}, {tuple(h_pred.shape)}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    logits = F.normalize(h_pred, dim=-1) @ F.normalize(h, dim=-1).mT / temperature
    return F.cross_entropy(logits, torch.arange(h.shape[0], device=h.device))


def symmetric_infonce_loss(a: Tensor, b: Tensor, temperature: float = 1.0) -> Tensor:
    """CLIP's symmetric InfoNCE (not in the paper): ``(CE(S, I) + CE(S^T, I)) / 2``, where
    ``S_ij = cos(a_i, b_j) / temperature``: the mean of :func:`infonce_loss` both ways."""
    return 0.5 * (infonce_loss(b, a, temperature) + infonce_loss(a, b, temperature))


class CPCHead(nn.Module):
    """``G_phi`` of Eq. 10: Linear ``fusion_dim -> target_dim`` then ``n_layers - 1`` (Tanh,
    Linear). ``forward(h, z)`` returns the Eq. 11 loss and the scores ``exp(cos(h_i, G(z_i)))`` (no
    temperature)."""

    def __init__(
        self, target_dim: int, fusion_dim: int, n_layers: int = 1, temperature: float = 1.0
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers!r}")
        self.temperature = float(temperature)
        self.net = nn.Sequential(
            nn.Linear(fusion_dim, target_dim),
            *[
                m
                for _ in range(n_layers - 1)
                for m in (nn.Tanh(), nn.Linear(target_dim, target_dim))
            ],
        )

    def forward(self, h: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        pred = self.net(z)
        return infonce_loss(h, pred, self.temperature), torch.exp(
            F.cosine_similarity(h, pred, dim=-1)
        )
