"""The book's figure style in one place: each chapter that draws calls :func:`use_book_style` first.

The style is seaborn's theme (matplotlib underneath) with the book's palette and 150 dpi. Its
"notebook" context sets tick and legend labels to 11 pt and axis labels and titles to 12 pt: the
book's column shows a figure of at most about 7.5 inches at about 0.93 of its size, so no text is
below 10 pt on the page. Only looks are set here; figure sizes stay with each figure."""

from __future__ import annotations

import seaborn as sns

__all__ = ["COLORS", "use_book_style"]

#: One colour per role, the same in every figure (Okabe-Ito, safe for colour-blind readers).
COLORS = {
    "estimate": "#0072B2",
    "truth": "#000000",
    "oracle": "#009E73",
    "baseline": "#D55E00",
    "bound": "#E69F00",
    "other": "#CC79A7",
    "muted": "#999999",
}

#: The colour cycle of every axes (Okabe-Ito, the colours of :data:`COLORS` first).
_PALETTE = ["#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def use_book_style() -> None:
    """Set the book's figure style through seaborn's theme (idempotent)."""
    sns.set_theme(
        context="notebook",
        style="ticks",
        palette=_PALETTE,
        rc={
            "figure.dpi": 150,
            "savefig.dpi": 150,
            "savefig.bbox": "tight",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "legend.frameon": False,
            "lines.linewidth": 1.5,
        },
    )
