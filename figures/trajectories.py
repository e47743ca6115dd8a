"""Each indicator's two group trajectories (the report's Charts 1 to 7, redone)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nbdid.figures._style import (
    BENCHMARK_COLOUR,
    NBI_COLOUR,
    REPORT_COLOUR,
    mark_failed,
    mark_synthetic,
    new_axes,
)
from nbdid.registry import GROUP_LABELS, INDICATORS

TRAJECTORY_COLUMNS = ("indicator", "group", "period", "period_label", "mean", "lower", "upper")


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
        Axes to draw on; a new figure when ``None``.
    report
        Optional published values for the same indicator (``group, period, value,
        half_width``), drawn as grey error bars beside the posterior.
    gate
        Diagnostics gate text; anything other than ``None``/``"passed"`` is stamped on
        the plot as a failure.
    synthetic
        Stamp the synthetic-data notice.

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
    fig, ax = new_axes(ax, (5.5, 4))
    periods = data.sort_values("period")[["period", "period_label"]].drop_duplicates()
    x = {p: i for i, p in enumerate(periods["period"])}
    for offset, (group, colour) in zip((-0.06, 0.06), (("nbi", NBI_COLOUR), ("benchmark", BENCHMARK_COLOUR)), strict=True):
        g = data[data.group == group].sort_values("period")
        xs = np.array([x[p] for p in g["period"]]) + offset
        ax.errorbar(xs, g["mean"], yerr=[g["mean"] - g["lower"], g["upper"] - g["mean"]],
                    color=colour, marker="o", capsize=4, lw=2,
                    label=f"{GROUP_LABELS[group]} (posterior)")
        if report is not None:
            rg = report[report.group == group].sort_values("period")
            rx = np.array([x[p] for p in rg["period"] if p in x]) + 3 * offset
            ax.errorbar(rx, rg["value"], yerr=rg["half_width"], fmt="s", color=REPORT_COLOUR,
                        ms=4, capsize=2, lw=1, mfc=colour,
                        label=f"{GROUP_LABELS[group]} (report)")
    ax.set_xticks(list(x.values()), list(periods["period_label"]))
    ax.set_xlim(-0.5, len(x) - 0.5)
    title = ind.title if ind else key
    unit = ind.unit if ind else ""
    ax.set_title(f"{title}" + (f" (Chart {ind.report_chart} redone)" if ind else ""), fontsize=10)
    ax.set_ylabel(unit)
    ax.legend(fontsize=7, frameon=False)
    if gate not in (None, "passed"):
        mark_failed(ax, str(gate))
    mark_synthetic(fig, synthetic)
    return fig
