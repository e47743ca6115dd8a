"""Specification curve (Simonsohn, Simmons & Nelson 2020) of a sensitivity sweep.

Top panel: the posterior DiD and its 95% interval under every specification, sorted
by the estimate; colour says whether the interval excludes zero in the direction of
benefit or harm.  Bottom panel: a dot matrix marking each specification's choices
(only the choices that vary), aligned under its estimate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nbdid.figures._style import FAIL_COLOUR, NBI_COLOUR, REPORT_COLOUR, mark_synthetic

HARM_COLOUR = "#b2182b"
"""Colour of specifications whose interval excludes zero in the direction of harm."""


NOT_APPLICABLE = "-"
"""Choice value of dimensions that do not apply (e.g. the distance of the published pairs)."""


def choice_rows(data: pd.DataFrame, choices: Sequence[str]) -> list[tuple[str, str]]:
    """``(choice, value)`` rows of the dot matrix.

    Values ``"-"`` (not applicable) get no row, and a choice with a single applicable
    value is left out (it only repeats which specifications re-match).
    """
    rows = []
    for c in choices:
        if c not in data.columns:
            continue
        vals = sorted(v for v in data[c].astype(str).unique() if v != NOT_APPLICABLE)
        if len(vals) > 1:
            rows += [(c, v) for v in vals]
    return rows


def plot_specification_curve(
    data: pd.DataFrame,
    *,
    ax: Sequence[Axes] | None = None,
    choices: Sequence[str] | None = None,
    synthetic: bool | None = None,
    title: str | None = None,
) -> Figure:
    """Draw the specification curve of one indicator.

    Parameters
    ----------
    data
        Rows of one indicator from ``sensitivity.csv``: ``estimate``, ``lower``,
        ``upper``, ``is_main``, ``gate``, ``indicator``, ``scale`` and choice columns.
    ax
        Two axes ``(curve, matrix)`` to draw on; a new figure when ``None``.
    choices
        Choice columns for the dot matrix (those that vary are shown); default: every
        column not in the result columns.
    synthetic
        Stamp the synthetic-data notice (default: from a ``synthetic`` column).
    title
        Figure title (default: the indicator's title).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from nbdid.analysis.sensitivity import RESULT_COLUMNS, conclusion
    from nbdid.registry import INDICATORS

    df = data.copy()
    key = str(df["indicator"].iloc[0]) if len(df) else ""
    ind = INDICATORS.get(key)
    lib = ind.lower_is_better if ind else False
    if choices is None:
        choices = [c for c in df.columns if c not in RESULT_COLUMNS]
    fitted = df[np.isfinite(df["estimate"].astype(float))].sort_values(
        ["estimate", "spec_id"], kind="stable").reset_index(drop=True)
    n_missing = len(df) - len(fitted)
    rows = choice_rows(fitted, choices)
    n = len(fitted)
    if ax is None:
        width = float(np.clip(3.5 + 0.13 * n, 6.0, 16.0))
        height = 3.2 + 0.2 * max(len(rows), 1)
        fig = Figure(figsize=(width, height), layout="constrained")
        gs = fig.add_gridspec(2, 1, height_ratios=[3.0, 0.25 * max(len(rows), 1) + 0.3])
        top = fig.add_subplot(gs[0])
        bottom = fig.add_subplot(gs[1], sharex=top)
    else:
        top, bottom = ax
        fig = top.figure
    x = np.arange(n)
    concl = np.array([conclusion(lo, hi, lib) for lo, hi in
                      zip(fitted["lower"].astype(float), fitted["upper"].astype(float), strict=True)])
    colour = np.where(concl == "benefit", NBI_COLOUR, np.where(concl == "harm", HARM_COLOUR, REPORT_COLOUR))
    passed = fitted["gate"].astype(str).str.startswith("passed").to_numpy() if n else np.array([], bool)
    top.axhline(0.0, color="black", lw=0.8)
    if n:
        top.vlines(x, fitted["lower"], fitted["upper"], colors=colour, lw=1.2, alpha=0.8)
        top.scatter(x[passed], fitted["estimate"][passed], c=colour[passed], s=18, zorder=3)
        top.scatter(x[~passed], fitted["estimate"][~passed], facecolors="white",
                    edgecolors=colour[~passed], s=18, zorder=3, label="diagnostics failed")
        main = fitted["is_main"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
        if main.any():
            i = int(np.flatnonzero(main)[0])
            top.scatter([x[i]], [fitted["estimate"].iloc[i]], marker="D", s=60, facecolors="none",
                        edgecolors="black", lw=1.5, zorder=4, label="main specification")
            top.axvline(x[i], color="black", lw=0.5, ls=":")
    scale = str(fitted["scale"].iloc[0]) if n and "scale" in fitted else ""
    top.set_ylabel(f"DiD, NBI - benchmark\n({scale})" if scale else "DiD, NBI - benchmark")
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=NBI_COLOUR, marker="o", lw=1.2, label="95% interval: benefit"),
        Line2D([], [], color=HARM_COLOUR, marker="o", lw=1.2, label="95% interval: harm"),
        Line2D([], [], color=REPORT_COLOUR, marker="o", lw=1.2, label="interval includes 0"),
        Line2D([], [], color="black", marker="D", markerfacecolor="none", lw=0,
               label="main specification"),
    ]
    if n and (~passed).any():
        handles.append(Line2D([], [], color=REPORT_COLOUR, marker="o", markerfacecolor="white",
                              lw=0, label="diagnostics failed"))
    top.legend(handles=handles, fontsize=7, loc="best", frameon=False)
    head = title or (ind.title if ind else key)
    note = f"{n} specifications" + (f"; {n_missing} not fitted" if n_missing else "")
    top.set_title(f"{head}: specification curve ({note})", fontsize=10)
    top.tick_params(axis="x", labelbottom=False)
    if n_missing and not n:
        top.text(0.5, 0.5, "no specification could be fitted", transform=top.transAxes,
                 ha="center", color=FAIL_COLOUR)

    # dot matrix
    if rows and n:
        for r, (c, v) in enumerate(rows):
            on = (fitted[c].astype(str) == v).to_numpy()
            bottom.scatter(x[~on], np.full((~on).sum(), r), s=6, color="#dddddd", lw=0)
            bottom.scatter(x[on], np.full(on.sum(), r), s=14, color="#333333", lw=0)
        labels = [f"{c}: {v}" for c, v in rows]
        bottom.set_yticks(range(len(rows)), labels, fontsize=7)
        prev = rows[0][0]
        for r, (c, _) in enumerate(rows):
            if c != prev:
                bottom.axhline(r - 0.5, color="#999999", lw=0.5)
                prev = c
        bottom.set_ylim(len(rows) - 0.5, -0.5)
    else:
        bottom.set_yticks([])
        bottom.text(0.5, 0.5, "all specifications make the same choices", transform=bottom.transAxes,
                    ha="center", va="center", fontsize=8)
    bottom.set_xlabel("specification (sorted by estimate)")
    bottom.set_xlim(-0.7, max(n - 0.3, 0.7))
    bottom.tick_params(axis="x", labelsize=7)
    from matplotlib.ticker import MaxNLocator

    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    syn = bool(df["synthetic"].astype(str).str.lower().eq("true").any()) if (
        synthetic is None and "synthetic" in df) else bool(synthetic)
    mark_synthetic(fig, syn)
    return fig
