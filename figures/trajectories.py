"""Each indicator's two group trajectories (the report's Charts 1 to 7, redone)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nbdid.figures.style import (
    GROUP_COLOURS,
    GROUP_MARKERS,
    REPORT_COLOUR,
    failure_title,
    indicator_unit,
    mark_synthetic,
    new_titled_axes,
    nice_locator,
    styled,
    thousands,
)
from nbdid.registry import GROUP_LABELS, INDICATORS

TRAJECTORY_COLUMNS = ("indicator", "group", "period", "period_label", "mean", "lower", "upper")


@styled
def plot_trajectories(
    data: pd.DataFrame,
    *,
    ax: Axes | None = None,
    report: pd.DataFrame | None = None,
    gate: str | None = None,
    synthetic: bool = False,
) -> Figure:
    """Posterior group values by period for one indicator, with the report's values.

    Parameters
    ----------
    data
        Rows for ONE indicator: ``indicator, group, period, period_label, mean, lower,
        upper`` (posterior mean and 95% interval of the group's pooled value).
    ax
        Axes to draw on; a new single-column figure when ``None``.
    report
        Optional published values for the same indicator (``group, period, value,
        half_width``), drawn as hollow marks with their 95% intervals beside the
        posterior.
    gate
        Diagnostics gate text; anything other than ``None``/``"passed"`` is written
        under the title ("DIAGNOSTICS FAILED: ...", wrapped to the figure's width) and
        the posterior lines are dashed.
    synthetic
        Put the synthetic-data banner on.

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = [c for c in TRAJECTORY_COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"plot_trajectories: missing columns {missing}")
    keys = data["indicator"].unique()
    if len(keys) != 1:
        raise ValueError("plot_trajectories: data must hold exactly one indicator")
    key = str(keys[0])
    ind = INDICATORS.get(key)
    own = ax is None
    title = ind.title if ind else key
    if ind is not None:
        title += f" (Chart {ind.report_chart} redone)"
    note = failure_title(gate)
    if note:
        title += "\n" + note
    fig, ax = new_titled_axes(ax, "single", 80.0, title)
    ls = "--" if note else "-"
    periods = data.sort_values("period")[["period", "period_label"]].drop_duplicates()
    x = {p: i for i, p in enumerate(periods["period"])}
    for offset, group in zip((-0.05, 0.05), ("nbi", "benchmark"), strict=True):
        colour, marker = GROUP_COLOURS[group], GROUP_MARKERS[group]
        g = data[data.group == group].sort_values("period")
        xs = np.array([x[p] for p in g["period"]]) + offset
        eb = ax.errorbar(xs, g["mean"], yerr=[g["mean"] - g["lower"], g["upper"] - g["mean"]],
                         color=colour, marker=marker, ms=4.5, capsize=2.5, lw=1.4,
                         label=f"{GROUP_LABELS[group]}: posterior")
        eb.lines[0].set_linestyle(ls)
        if report is not None:
            rg = report[report.group == group].sort_values("period")
            rg = rg[rg["period"].isin(list(x))]
            rx = np.array([x[p] for p in rg["period"]]) + 3 * offset
            ax.errorbar(rx, rg["value"], yerr=rg["half_width"], fmt=marker, color=REPORT_COLOUR,
                        ms=4, mfc="white", mec=colour, capsize=2, lw=0.9,
                        label=f"{GROUP_LABELS[group]}: report")
    ax.set_xticks(list(x.values()), list(periods["period_label"]))
    ax.set_xlim(-0.5, len(x) - 0.5)
    ax.yaxis.set_major_locator(nice_locator(5))
    thousands(ax.yaxis)
    ax.set_ylabel(indicator_unit(key, kind="level") if ind else "")
    if own:
        fig.legend(loc="outside lower left", ncols=2)
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    mark_synthetic(fig, synthetic)
    return fig
