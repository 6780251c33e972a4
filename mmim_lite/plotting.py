"""The book's figure style in one place: every chapter that draws calls :func:`use_book_style` first. Only looks
are set here; figure sizes stay with each figure."""

from __future__ import annotations

import matplotlib as mpl
from cycler import cycler

__all__ = ["COLORS", "use_book_style"]

#: One colour per role, the same in every figure (Okabe-Ito, safe for colour-blind readers).
COLORS = {"estimate": "#0072B2", "truth": "#000000", "oracle": "#009E73", "baseline": "#D55E00",
          "bound": "#E69F00", "other": "#CC79A7", "muted": "#999999"}


def use_book_style() -> None:
    """Set matplotlib's rcParams to the book's style (idempotent)."""
    mpl.rcParams.update({
        "axes.prop_cycle": cycler(color=["#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9",
                                         "#F0E442", "#000000"]),
        "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
        "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
        "legend.fontsize": 8, "legend.frameon": False, "lines.linewidth": 1.5, "savefig.bbox": "tight"})
