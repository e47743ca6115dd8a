"""Specification curve (Simonsohn, Simmons & Nelson 2020) of a sensitivity sweep.

Top panel: the posterior DiD and its 95% interval under every specification, sorted
by the estimate; the mark says whether the interval excludes zero in the direction of
benefit (filled circle) or harm (filled square) or includes it (hollow circle), read
from the ``conclusion`` column.  Bottom panel: a dot matrix marking each
specification's choices (only the choices that vary), aligned under its estimate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from nbdid.analysis.sensitivity import RESULT_COLUMNS, add_conclusions
from nbdid.figures.style import (
    FAILED_MARK,
    GREY,
    VERDICT_MARKS,
    indicator_title,
    indicator_unit,
    is_synthetic,
    mark_synthetic,
    new_figure,
    nice_locator,
    styled,
    thousands,
    verdict_mark,
    wrap_to_width,
)

NOT_APPLICABLE = "-"
"""Choice value of dimensions that do not apply (e.g. the distance of the published pairs)."""

MATRIX_ROW_MM = 3.6
"""Height of one row of the dot matrix (8-pt labels need about 3.2 mm)."""


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


@styled
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
        ``upper``, ``is_main``, ``gate``, ``indicator``, ``scale``, choice columns and,
        ideally, ``conclusion`` (:func:`nbdid.analysis.sensitivity.add_conclusions`;
        added by that function when absent, so the figure never decides a verdict).
    ax
        Two axes ``(curve, matrix)`` to draw on; a new double-column figure when ``None``.
    choices
        Choice columns for the dot matrix (those that vary are shown); default: every
        column not in the result columns.
    synthetic
        Put the synthetic-data banner on (default: from a ``synthetic`` column).
    title
        Figure title (default: the indicator's title).

    Returns
    -------
    matplotlib.figure.Figure
    """
    df = data if "conclusion" in data.columns else add_conclusions(data)
    key = str(df["indicator"].iloc[0]) if len(df) else ""
    if choices is None:
        choices = [c for c in df.columns if c not in RESULT_COLUMNS and c != "conclusion"]
    fitted = df[np.isfinite(df["estimate"].astype(float))].sort_values(
        ["estimate", "spec_id"], kind="stable").reset_index(drop=True)
    n_missing = len(df) - len(fitted)
    rows = choice_rows(fitted, choices)
    n = len(fitted)
    if ax is None:
        height = 75.0 + MATRIX_ROW_MM * max(len(rows), 1) + 12.0
        fig = new_figure("double", height)
        gs = fig.add_gridspec(2, 1, height_ratios=[48.0, MATRIX_ROW_MM * max(len(rows), 1)])
        top = fig.add_subplot(gs[0])
        bottom = fig.add_subplot(gs[1], sharex=top)
    else:
        top, bottom = ax
        fig = top.figure
    x = np.arange(n)
    passed = fitted["gate"].astype(str).str.startswith("passed").to_numpy() if n else np.array([], bool)
    marks = [verdict_mark(c, gate_passed=bool(p))
             for c, p in zip(fitted["conclusion"].astype(str), passed, strict=True)]
    top.axhline(0.0, color="#333333", lw=0.6)
    small = n > 60
    for xi, m, (_, r) in zip(x, marks, fitted.iterrows(), strict=True):
        top.plot([xi, xi], [r["lower"], r["upper"]], color=m.colour, ls=m.linestyle,
                 lw=0.6 if small else 1.0, zorder=2)
        top.plot(xi, r["estimate"], ls="none", marker=m.marker, mfc=m.face, mec=m.colour,
                 ms=2.5 if small else 3.5, mew=0.8, zorder=3)
    main_handle = []
    if n:
        main = fitted["is_main"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
        if main.any():
            i = int(np.flatnonzero(main)[0])
            top.plot(x[i], fitted["estimate"].iloc[i], ls="none", marker="D", ms=8, mfc="none",
                     mec="black", mew=1.2, zorder=4)
            top.axvline(x[i], color="black", lw=0.5, ls=":")
            main_handle = [Line2D([], [], ls="none", marker="D", ms=7, mfc="none", mec="black",
                                  mew=1.2, label="main specification")]
    unit = indicator_unit(key, fallback=str(fitted["scale"].iloc[0]) if n and "scale" in fitted else "")
    top.set_ylabel(f"DiD, NBI − benchmark\n({unit})" if unit else "DiD, NBI − benchmark")
    top.yaxis.set_major_locator(nice_locator(5))
    thousands(top.yaxis)
    used = {m.label: m for m in marks}
    handles = [m.handle() for m in VERDICT_MARKS.values() if m.label in used]
    if FAILED_MARK.label in used:
        handles.append(FAILED_MARK.handle())
    handles += main_handle
    head = title or indicator_title(key)
    note = f"{n} specifications" + (f"; {n_missing} not fitted" if n_missing else "")
    top.set_title(f"{wrap_to_width(head + ': specification curve', 160.0, 9.0, bold=True)}\n({note})")
    top.tick_params(axis="x", labelbottom=False)
    if n_missing and not n:
        top.set_yticks([])
        top.set_xlabel("no specification could be fitted")

    # dot matrix
    if rows and n:
        for r_i, (c, v) in enumerate(rows):
            on = (fitted[c].astype(str) == v).to_numpy()
            bottom.scatter(x[~on], np.full((~on).sum(), r_i), s=4, color="#DDDDDD", lw=0)
            bottom.scatter(x[on], np.full(on.sum(), r_i), s=10, color="#222222", lw=0)
        labels = [f"{c}: {v}" for c, v in rows]
        bottom.set_yticks(range(len(rows)), labels)
        prev = rows[0][0]
        for r_i, (c, _) in enumerate(rows):
            if c != prev:
                bottom.axhline(r_i - 0.5, color=GREY, lw=0.5)
                prev = c
        bottom.set_ylim(len(rows) - 0.5, -0.5)
    else:
        bottom.set_yticks([])
        bottom.set_ylabel("all specifications\nmake the same choices", rotation=0, ha="right",
                          va="center")
    bottom.tick_params(axis="y", length=0)
    bottom.set_xlabel("specification (sorted by estimate)")
    bottom.set_xlim(-0.7, max(n - 0.3, 0.7))
    bottom.xaxis.set_major_locator(MaxNLocator(8, integer=True))
    if ax is None and handles:
        fig.legend(handles=handles, loc="outside lower left", ncols=min(len(handles), 3))
    mark_synthetic(fig, is_synthetic(df, synthetic))
    return fig
