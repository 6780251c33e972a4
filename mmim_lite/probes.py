"""Representation probes of a trained model on held-out clips (experiment tooling: reads the core's
:class:`~mmim_lite.train.Trainer` and the data layer's samples): the effective rank of h_v and h_a,
the share of their variance explained by the speaker, and the linear R² of the label from each
h_m."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import entropy
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["effective_rank", "label_r2", "representation_probes", "speaker_share"]


def effective_rank(x: np.ndarray) -> float:
    """The effective rank of Roy & Vetterli (2007, EUSIPCO) of the covariance of ``x`` (N, d):
    exp of the Shannon entropy (nats) of its eigenvalues normalised to sum 1 (a covariance's
    singular values are its eigenvalues). d for isotropic data, 1 for rank-1 data, NaN if
    constant."""
    cov = np.atleast_2d(np.cov(np.asarray(x, dtype=np.float64), rowvar=False))
    eig = np.clip(np.linalg.eigvalsh(cov), 0.0, None)
    return float(np.exp(entropy(eig))) if eig.sum() > 0 else float("nan")


def speaker_share(x: np.ndarray, speakers: Sequence[Any]) -> float:
    """The share of the variance of ``x`` (N, d) between speakers: the between-speaker sum of
    squares over the total, each summed over the dimensions (eta squared of the trace; in a finite
    sample it exceeds the population share by about (speakers - 1) / N of the within share)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(0)
    _, group = np.unique(np.asarray(speakers), return_inverse=True)
    means = np.zeros((group.max() + 1, x.shape[1]))
    np.add.at(means, group, x)
    means /= np.bincount(group)[:, None]
    return float((means[group] ** 2).sum() / (x**2).sum())


def label_r2(
    fit_x: np.ndarray, fit_y: np.ndarray, x: np.ndarray, y: np.ndarray, ridge: float = 1.0
) -> float:
    """R² on (``x``, ``y``) of a ridge regression (standardised features, penalty ``ridge``) of
    the label fitted on (``fit_x``, ``fit_y``)."""
    model = make_pipeline(StandardScaler(), Ridge(alpha=ridge)).fit(fit_x, fit_y)
    return float(r2_score(y, model.predict(x)))


def representation_probes(
    trainer: Any, split: str = "test", fit_split: str = "train", ridge: float = 1.0
) -> dict[str, float]:
    """Probes of the trainer's current model (:meth:`~mmim_lite.train.Trainer.representations`)
    on ``split``: ``effective_rank_<m>`` and ``speaker_share_<m>`` for m in v, a (the speaker: a
    clip id's part before its last '_', the video id: one speaker per video in SynthMOSI), and
    ``label_r2_<m>`` for m in t, v, a (:func:`label_r2`, fitted on every clip of ``fit_split``
    with its label, whether or not training used it)."""
    h, fit = trainer.representations(split), trainer.representations(fit_split)
    samples, fit_samples = trainer.datasets[split].samples, trainer.datasets[fit_split].samples
    y, fit_y = (np.array([s.label for s in d]) for d in (samples, fit_samples))
    speakers = [s.id.rpartition("_")[0] for s in samples]
    return {
        **{f"effective_rank_{m}": effective_rank(h[m]) for m in "va"},
        **{f"speaker_share_{m}": speaker_share(h[m], speakers) for m in "va"},
        **{f"label_r2_{m}": label_r2(fit[m], fit_y, h[m], y, ridge) for m in "tva"},
    }
