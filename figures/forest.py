"""Forest plot of the seven posterior DiDs with the report's intervals overlaid."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nbdid.figures._style import (
    FAIL_COLOUR,
    NBI_COLOUR,
    REPORT_COLOUR,
    fmt_number,
    mark_synthetic,
    new_axes,
)

FOREST_COLUMNS = (
    "indicator", "title", "unit", "estimate", "lower", "upper", "report_estimate",
    "report_lower", "report_upper", "baseline", "prob_benefit", "gate_passed",
)


def plot_forest(data: pd.DataFrame, *, ax: Axes | None = None, synthetic: bool | None = None) -> Figure:
    """Posterior DiD per indicator beside the report's interval-arithmetic interval.

    The seven indicators have different units, so every interval is drawn as a
    percentage of the benchmark group's base-period level (a DiD of -8.6 crimes per
    1,000 on a base of 171.9 is -5.0%); the numbers in each indicator's own unit are
    written beside its row.

    Parameters
    ----------
    data
        One row per indicator with columns ``indicator, title, unit, estimate, lower,
        upper`` (posterior DiD mean and 95% interval, indicator unit),
        ``report_estimate, report_lower, report_upper`` (the report's DiD and the
        interval its overlap rule implies), ``baseline`` (benchmark base level),
        ``prob_benefit`` and ``gate_passed``; optional ``synthetic``.
    ax
        Axes to draw on; a new figure when ``None``.
    synthetic
        Stamp the synthetic-data notice (default: from ``data["synthetic"]``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = [c for c in FOREST_COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"plot_forest: missing columns {missing}")
    d = data.reset_index(drop=True)
    n = len(d)
    fig, ax = new_axes(ax, (13, 0.9 * n + 1.8))
    y = np.arange(n)[::-1]
    scale = 100.0 / d["baseline"].abs().to_numpy()
    for i, r in d.iterrows():
        yi, s = y[i], scale[i]
        ax.plot([r.report_lower * s, r.report_upper * s], [yi + 0.18] * 2, color=REPORT_COLOUR,
                lw=2.5, solid_capstyle="butt", label="report (pooled, overlap rule)" if i == 0 else None)
        ax.plot(r.report_estimate * s, yi + 0.18, "s", color=REPORT_COLOUR, ms=5)
        colour = NBI_COLOUR if r.gate_passed else FAIL_COLOUR
        ax.plot([r.lower * s, r.upper * s], [yi - 0.12] * 2, color=colour, lw=4,
                solid_capstyle="butt", label="posterior 95% interval" if i == 0 else None)
        ax.plot(r.estimate * s, yi - 0.12, "o", color="white", mec=colour, mew=2, ms=7)
        m = max(abs(r.report_estimate), abs(r.estimate))

        def f(x: float, m: float = m) -> str:
            return fmt_number(x, m)

        text = (
            f"posterior {f(r.estimate)} [{f(r.lower)}, {f(r.upper)}], "
            f"P(benefit)={r.prob_benefit:.2f}\nreport {f(r.report_estimate)} "
            f"[{f(r.report_lower)}, {f(r.report_upper)}]  ({r.unit})"
        )
        if not r.gate_passed:
            text += "  DIAGNOSTICS FAILED"
        ax.annotate(text, xy=(1.01, yi), xycoords=("axes fraction", "data"), va="center",
                    fontsize=7, color=colour if not r.gate_passed else "black")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, [str(t) for t in d["title"]])
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel("difference-in-differences, % of the benchmark base level (NBI minus benchmark)")
    ax.set_title("Posterior DiD per indicator (95% intervals) and the report's intervals", fontsize=10)
    ax.legend(loc="lower left", fontsize=7, frameon=False)
    syn = bool(data["synthetic"].any()) if synthetic is None and "synthetic" in data else bool(synthetic)
    mark_synthetic(fig, syn)
    return fig
