"""Diagnostics panel: the sampling and posterior-predictive gate of every fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nbdid.figures._style import FAIL_COLOUR, NBI_COLOUR, mark_synthetic, new_axes

DIAGNOSTIC_COLUMNS = ("indicator", "passed")


def plot_diagnostics(
    data: pd.DataFrame, *, ax: Axes | None = None, synthetic: bool = False
) -> Figure:
    """A table-like panel: one row per fit, one column per diagnostic, red where failing.

    Parameters
    ----------
    data
        One row per indicator with ``indicator`` and ``passed`` and any of the numeric
        diagnostics ``rhat_max, ess_bulk_min, ess_tail_min, divergences, bfmi_min,
        ppc_p_min, ppc_p_max``; per-check pass flags ``<name>_ok`` colour the cells when
        present, otherwise the row's ``passed`` does.
    ax
        Axes to draw on; a new figure when ``None``.
    synthetic
        Stamp the synthetic-data notice.

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = [c for c in DIAGNOSTIC_COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"plot_diagnostics: missing columns {missing}")
    candidates = ["rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "bfmi_min",
                  "ppc_p_min", "ppc_p_max"]
    cols = [c for c in candidates if c in data.columns]
    d = data.reset_index(drop=True)
    fig, ax = new_axes(ax, (1.3 * len(cols) + 4, 0.45 * len(d) + 1.2))
    ax.set_axis_off()
    cell_text, colours = [], []
    for _, r in d.iterrows():
        row, row_col = [], []
        for c in cols:
            v = r[c]
            row.append("" if pd.isna(v) else (f"{v:.3f}" if isinstance(v, float) and not float(v).is_integer() else f"{v:,.0f}" if isinstance(v, (int, float, np.integer, np.floating)) else str(v)))
            ok = r.get(f"{c}_ok", r["passed"])
            row_col.append("#f4cccc" if not bool(ok) else "#d9ead3")
        row.append("passed" if r["passed"] else "FAILED")
        row_col.append(NBI_COLOUR if r["passed"] else FAIL_COLOUR)
        cell_text.append(row)
        colours.append(row_col)
    table = ax.table(cellText=cell_text, cellColours=colours, rowLabels=list(d["indicator"]),
                     colLabels=cols + ["gate"], loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.3)
    for (i, j), cell in table.get_celld().items():
        if i > 0 and j == len(cols):
            cell.get_text().set_color("white")
            cell.get_text().set_fontweight("bold")
    ax.set_title("Diagnostics gate (R-hat, ESS, divergences, BFMI, posterior predictive checks)",
                 fontsize=10)
    mark_synthetic(fig, synthetic)
    return fig
