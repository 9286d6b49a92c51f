"""One figure style for every figure of the study (paper column width, colour-blind safe).

Use :func:`figure` to make a figure and :func:`save` to write it as PNG and PDF under
``results/figures/``. The palette is Okabe–Ito, which stays distinguishable under the common
colour-vision deficiencies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rmselect.io import atomic_path  # noqa: E402

#: Okabe–Ito colour-blind-safe palette.
PALETTE = [
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
]
#: Single column of an ACL/EMNLP paper, in inches.
COLUMN_WIDTH = 3.3
DOUBLE_WIDTH = 6.9

RC: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 150,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,
}


def apply_style() -> None:
    plt.rcParams.update(RC)


def figure(width: str | float = "column", height: float | None = None, **kwargs: Any):
    """``plt.subplots`` at paper width (``"column"``, ``"double"`` or inches)."""
    apply_style()
    w = {"column": COLUMN_WIDTH, "double": DOUBLE_WIDTH}.get(width, width)  # type: ignore[arg-type]
    h = height if height is not None else float(w) * 0.75
    return plt.subplots(figsize=(float(w), h), **kwargs)


def save(fig: Any, path_stem: str | Path) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf`` atomically; returns both paths."""
    stem = Path(path_stem)
    out = []
    for ext in (".png", ".pdf"):
        target = stem.with_suffix(ext)
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=ext[1:])
        out.append(target)
    plt.close(fig)
    return out
