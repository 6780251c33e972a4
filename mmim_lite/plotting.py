"""The book's figure style in one place: each chapter that draws calls :func:`use_book_style` first.

The style is seaborn's theme (matplotlib underneath) with the book's palette, fonts that stay at
least 10 pt when a figure is shown at the book's column width (figures are at most about 8 inches
wide), and 150 dpi. Only looks are set here; figure sizes stay with each figure."""

from __future__ import annotations

import seaborn as sns

__all__ = ["COLORS", "use_book_style"]

#: One colour per role, the same in every figure (Okabe-Ito, safe for colour-blind readers).
COLORS = {"estimate": "#0072B2", "truth": "#000000", "oracle": "#009E73", "baseline": "#D55E00",
          "bound": "#E69F00", "other": "#CC79A7", "muted": "#999999"}

#: The colour cycle of every axes (Okabe-Ito, the colours of :data:`COLORS` first).
_PALETTE = ["#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]

#: Font sizes (pt) of the book's figures; none below 10 pt.
_FONTS = {"font.size": 11, "axes.titlesize": 11, "axes.labelsize": 11, "xtick.labelsize": 10,
          "ytick.labelsize": 10, "legend.fontsize": 10, "legend.title_fontsize": 10,
          "figure.titlesize": 12}


def use_book_style() -> None:
    """Set the book's figure style through seaborn's theme (idempotent)."""
    sns.set_theme(context="notebook", style="ticks", palette=_PALETTE, rc={
        **_FONTS, "figure.dpi": 150, "savefig.dpi": 150, "savefig.bbox": "tight",
        "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
        "legend.frameon": False, "lines.linewidth": 1.5})
