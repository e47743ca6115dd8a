"""The Bayesian tipping point: posterior DiD against the assumed ward-to-ward variation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from nbdid.figures.style import (
    DOUBLE_COLUMN_MM,
    NBI_COLOUR,
    OKABE_ITO,
    PRIOR_COLOUR,
    REPORT_COLOUR,
    SINGLE_COLUMN_MM,
    format_interval,
    format_value,
    indicator_label,
    indicator_unit,
    legend_in_slot,
    new_figure,
    nice_locator,
    styled,
    thousands,
    wrap_to_width,
)

TIPPING_BAYES_COLUMNS = (
    "indicator", "tau", "tau_unit", "posterior_did", "posterior_q2.5", "posterior_q97.5",
    "prior_density", "title", "unit", "tau_scale", "unit_per_tau", "report_did",
    "report_did_lower", "report_did_upper", "report_claim", "marginal_did", "marginal_q2.5",
    "marginal_q97.5", "marginal_prob_benefit", "verdict", "tipping_tau",
)

TIPPING_COLOUR = OKABE_ITO["vermillion"]
CELL_MM = 54.0
"""Height of one indicator's cell (title, curve, prior, ticks, summary)."""


def _handles(wrap: float) -> list:
    out = [
        Patch(fc=NBI_COLOUR, alpha=0.25, label="posterior 95% interval, SD fixed"),
        Line2D([], [], color=NBI_COLOUR, lw=1.5, label="posterior mean, SD fixed"),
        Line2D([], [], color=REPORT_COLOUR, marker="s", ms=4, lw=1.0,
               label="report's numbers: DiD ± 1.96 pooled SE"),
        Line2D([], [], color=TIPPING_COLOUR, ls=":", lw=1.2, label="tipping point (z-test)"),
        Patch(fc=PRIOR_COLOUR, label="prior density of the SD (scaled from real MSOA data; "
              "prices: assumed)"),
    ]
    for h in out:
        h.set_label(wrap_to_width(h.get_label(), wrap))
    return out


def _summary(r: pd.Series, width_mm: float) -> str:
    sig = "significant" if _significant(r) else "not significant"
    lines = [
        f"report: {format_interval(r.report_did, r.report_did_lower, r.report_did_upper)}, {sig}",
        "averaged over the prior: "
        f"{format_interval(r.marginal_did, r['marginal_q2.5'], r['marginal_q97.5'])}",
        f"P(benefit) {r.marginal_prob_benefit:.2f}: claim {r.verdict}",
    ]
    return "\n".join(wrap_to_width(line, width_mm) for line in lines)


def _significant(r: pd.Series) -> bool:
    if "report_significant" in r.index and not pd.isna(r.report_significant):
        return str(r.report_significant).strip().lower() in ("true", "1")
    return str(r.report_claim).startswith("significant")


def _panel(ax: Axes, prior: Axes, d: pd.DataFrame, *, twin: bool, width_mm: float) -> None:
    d = d.sort_values("tau")
    r = d.iloc[0]
    tau = d["tau"].to_numpy(float)
    dens = d["prior_density"].to_numpy(float)
    u = float(r.unit_per_tau)

    ax.fill_between(tau, d["posterior_q2.5"], d["posterior_q97.5"], color=NBI_COLOUR, alpha=0.25,
                    lw=0)
    ax.plot(tau, d["posterior_did"], color=NBI_COLOUR, lw=1.5)
    ax.axhline(0, color="#333333", lw=0.6)
    ax.errorbar([0], [r.report_did],
                yerr=[[r.report_did - r.report_did_lower], [r.report_did_upper - r.report_did]],
                fmt="s", color=REPORT_COLOUR, ms=4, capsize=2, lw=1.0, clip_on=False, zorder=5)
    if r.tipping_tau > 0:
        for a in (ax, prior):
            a.axvline(r.tipping_tau, color=TIPPING_COLOUR, ls=":", lw=1.2)
    top = float(tau.max())
    ax.set_xlim(-0.03 * top, top)
    ax.yaxis.set_major_locator(nice_locator(4))
    thousands(ax.yaxis)
    ax.set_ylabel("DiD")
    ax.set_title(indicator_label(str(r.indicator), fallback_unit=str(r.unit)), loc="center",
                 fontsize=8, fontweight="bold")

    prior.fill_between(tau, 0, dens, color=PRIOR_COLOUR, lw=0)
    prior.set_ylim(0, max(float(np.nanmax(dens)), 1e-12) * 1.1)
    prior.yaxis.set_major_locator(nice_locator(2))
    if twin:
        prior.set_ylabel("prior density of the SD", color="#555555")
        prior.spines["right"].set_visible(True)
        prior.set_zorder(ax.get_zorder() - 1)
        ax.patch.set_visible(False)
    else:
        prior.set_ylabel("prior")
        ax.tick_params(axis="x", labelbottom=False)
    prior.xaxis.set_major_locator(nice_locator(4))
    prior.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos=None: f"{x:.2g}"))
    label = f"SD of ward changes, {r.tau_scale} scale"
    if u > 0:  # the same SD in the indicator's unit, at a round value of the axis
        ref = float(prior.xaxis.get_major_locator().tick_values(0, top)[1])
        unit = indicator_unit(str(r.indicator), fallback=str(r.unit))
        v = format_value(ref * u, ref * u * 10)
        label += f"; {ref:.2g} = " + (f"£{v}" if unit == "£" else f"{v} {unit}")
    prior.set_xlabel(wrap_to_width(label, width_mm))
    prior.annotate(_summary(r, width_mm), xy=(0.0, 0.0), xycoords="axes fraction", xytext=(0, -60),
                   textcoords="offset points", ha="left", va="top", gid="tipping-summary")


def _place_summaries(fig: Figure) -> None:
    """Put each summary just under its axes' x label (measured on a drawn figure)."""
    fig.draw_without_rendering()
    r = fig._get_renderer()
    for a in fig.axes:
        for t in a.texts:
            if t.get_gid() != "tipping-summary":
                continue
            parts = [a.xaxis.label.get_window_extent(r)]
            parts += [lab.get_window_extent(r) for lab in a.get_xticklabels() if lab.get_text()]
            gap_px = a.get_window_extent(r).y0 - min(b.y0 for b in parts)
            t.xyann = (0, -(gap_px * 72.0 / fig.dpi + 3.0))


@styled
def plot_tipping_bayes(data: pd.DataFrame, *, ax: Axes | Sequence[Axes] | None = None) -> Figure:
    """Posterior DiD as a function of the assumed between-ward SD of change.

    One cell per indicator (their units differ): the posterior mean and 95% interval of
    the DiD when the SD of the ward-specific change is fixed at the value on the x-axis
    (the model's scale; the same SD in the indicator's unit in brackets), the report's
    pooled DiD and interval at zero heterogeneity, the tipping point, and, on its own
    axis below, the prior density of that SD measured from real data.  Under each cell:
    the report's numbers, the result averaged over the prior and whether the report's
    claim holds.  The numbers are the report's published aggregates, not synthetic data.

    Parameters
    ----------
    data
        :func:`nbdid.analysis.tipping_bayes.tipping_bayes_curve` (columns
        :data:`TIPPING_BAYES_COLUMNS`).
    ax
        For data of one indicator: one Axes (the prior is then drawn on a twin axis
        with its own labelled scale on the right) or two Axes ``(curve, prior)``; a new
        figure when ``None``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = [c for c in TIPPING_BAYES_COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"plot_tipping_bayes: missing columns {missing}")
    keys = list(dict.fromkeys(data["indicator"]))
    if not keys:
        raise ValueError("plot_tipping_bayes: no rows")
    if ax is not None:
        if len(keys) != 1:
            raise ValueError("plot_tipping_bayes: ax= needs data of exactly one indicator")
        if isinstance(ax, Axes):
            _panel(ax, ax.twinx(), data, twin=True, width_mm=62.0)
            _place_summaries(ax.figure)
            return ax.figure
        main, prior = ax
        _panel(main, prior, data, twin=False, width_mm=62.0)
        _place_summaries(main.figure)
        return main.figure
    ncols = 1 if len(keys) == 1 else 2
    nrows = int(np.ceil((len(keys) + (ncols > 1)) / ncols))
    legend_rows = 0 if ncols > 1 and len(keys) % 2 == 1 else 1
    fig = new_figure("single" if ncols == 1 else "double",
                     (CELL_MM if ncols > 1 else 80.0) * nrows + 24.0 * legend_rows + 4.0)
    gs = fig.add_gridspec(2 * nrows, ncols, height_ratios=[3.0, 1.0] * nrows)
    cell_mm = (DOUBLE_COLUMN_MM if ncols > 1 else SINGLE_COLUMN_MM) / ncols - 16.0
    for i, key in enumerate(keys):
        row, col = divmod(i, ncols)
        main = fig.add_subplot(gs[2 * row, col])
        prior = fig.add_subplot(gs[2 * row + 1, col], sharex=main)
        _panel(main, prior, data[data["indicator"] == key], twin=False, width_mm=cell_mm)
    if legend_rows == 0:
        spare = fig.add_subplot(gs[2 * (nrows - 1):, ncols - 1])
        legend_in_slot(fig, spare, _handles(wrap=DOUBLE_COLUMN_MM / 2 - 30.0))
    else:
        fig.legend(handles=_handles(wrap=SINGLE_COLUMN_MM - 16.0), loc="outside lower left",
                   ncols=1)
    _place_summaries(fig)
    return fig
