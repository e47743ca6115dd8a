"""The Bayesian tipping point: posterior DiD against the assumed ward-to-ward variation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter

from nbdid.figures._style import FAIL_COLOUR, NBI_COLOUR, REPORT_COLOUR, fmt_number

TIPPING_BAYES_COLUMNS = (
    "indicator", "tau", "tau_unit", "posterior_did", "posterior_q2.5", "posterior_q97.5",
    "prior_density", "title", "unit", "tau_scale", "unit_per_tau", "report_did",
    "report_did_lower", "report_did_upper", "report_claim", "marginal_did", "marginal_q2.5",
    "marginal_q97.5", "marginal_prob_benefit", "verdict", "tipping_tau",
)

PRIOR_COLOUR = "#bdbdbd"


def _panel(ax: Axes, d: pd.DataFrame) -> None:
    d = d.sort_values("tau")
    r = d.iloc[0]
    tau = d["tau"].to_numpy()
    scale = max(abs(r.report_did), abs(r.marginal_did), 1e-12)

    def f(x: float) -> str:
        return fmt_number(x, scale)

    # prior density of tau as a grey strip along the bottom (own y scale, no ticks)
    twin = ax.twinx()
    dens = d["prior_density"].to_numpy()
    twin.fill_between(tau, 0, dens, color=PRIOR_COLOUR, alpha=0.45, lw=0,
                      label="prior density of the SD (scale from real data)")
    twin.set_ylim(0, max(float(np.nanmax(dens)), 1e-12) / 0.2)
    twin.set_yticks([])
    ax.set_zorder(twin.get_zorder() + 1)
    ax.patch.set_visible(False)

    ax.fill_between(tau, d["posterior_q2.5"], d["posterior_q97.5"], color=NBI_COLOUR, alpha=0.25,
                    lw=0, label="posterior 95% interval, SD fixed")
    ax.plot(tau, d["posterior_did"], color=NBI_COLOUR, lw=2, label="posterior mean, SD fixed")
    ax.axhline(0, color="black", lw=0.8)
    if r.tipping_tau > 0:
        ax.axvline(r.tipping_tau, color=FAIL_COLOUR, ls=":", lw=1.2, label="tipping point (z-test)")
    # the report's claim at tau = 0
    ax.errorbar([0], [r.report_did],
                yerr=[[r.report_did - r.report_did_lower], [r.report_did_upper - r.report_did]],
                fmt="s", color=REPORT_COLOUR, ms=6, capsize=3, clip_on=False, zorder=5,
                label="report's numbers: DiD ± 1.96 pooled SE")
    colour = NBI_COLOUR if r.verdict in ("supported", "consistent") else FAIL_COLOUR
    ax.text(
        0.03, 0.97,
        f"pooled z-interval, no ward variation: {f(r.report_did)} [{f(r.report_did_lower)}, "
        f"{f(r.report_did_upper)}]\nclaim: {r.report_claim}\n"
        f"averaged over the prior: {f(r.marginal_did)} [{f(r['marginal_q2.5'])}, "
        f"{f(r['marginal_q97.5'])}]\nP(benefit) = {r.marginal_prob_benefit:.2f}: "
        f"claim {r.verdict}",
        transform=ax.transAxes, ha="left", va="top", fontsize=6.5, color=colour,
        bbox=dict(boxstyle="round,pad=0.3", fc="white", ec=colour, lw=0.8, alpha=0.9),
    )
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + 0.45 * (hi - lo))  # room for the text box above the curves
    top = float(tau.max())
    ax.set_xlim(-0.03 * top, top)
    if scale >= 1000:
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_title(f"{r.title} ({r.unit})", fontsize=9)
    ax.set_xlabel(f"between-ward SD of change ({r.tau_scale} scale)", fontsize=8)
    ax.set_ylabel("DiD (NBI - benchmark change)", fontsize=8)
    ax.tick_params(labelsize=7)
    u = float(r.unit_per_tau)
    if u > 0:
        sec = ax.secondary_xaxis("top", functions=(lambda x, u=u: x * u, lambda x, u=u: x / u))
        sec.set_xlabel(f"same SD in the unit ({r.unit})", fontsize=7)
        sec.tick_params(labelsize=6)
        if u * float(tau.max()) >= 1000:
            sec.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))


def plot_tipping_bayes(data: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Posterior DiD as a function of the assumed between-ward SD of change.

    One panel per indicator (their units differ): the posterior mean and 95% interval of
    the DiD when the SD of the ward-specific change is fixed at the value on the x-axis
    (relative scale below, indicator unit on top), the prior density of that SD measured
    from real data (grey), the zero line, the report's pooled DiD and interval at zero
    heterogeneity with its claim, the tipping point, and the result averaged over the
    prior.  The numbers are the report's published aggregates, not synthetic data.

    Parameters
    ----------
    data
        :func:`nbdid.analysis.tipping_bayes.tipping_bayes_curve` (columns
        :data:`TIPPING_BAYES_COLUMNS`).
    ax
        Axes to draw on when ``data`` holds one indicator; a new figure when ``None``.

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
        _panel(ax, data)
        return ax.figure
    ncols = 1 if len(keys) == 1 else 2
    nrows = int(np.ceil((len(keys) + (ncols > 1)) / ncols))
    fig = Figure(figsize=(5.8 * ncols, 3.6 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for a, key in zip(axes, keys, strict=False):
        _panel(a, data[data["indicator"] == key])
    spare = axes[len(keys):]
    handles, labels = axes[0].get_legend_handles_labels()
    twin = [a for a in fig.axes if a not in axes]
    if twin:
        h2, l2 = twin[0].get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    if len(spare):
        for a in spare:
            a.set_axis_off()
        spare[0].legend(handles, labels, loc="center", fontsize=8, frameon=False)
    else:
        fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    fig.suptitle(
        "What the report's published numbers support once wards are allowed to differ\n"
        "(posterior DiD for a fixed between-ward SD of change; grey: its prior, scaled from "
        "real MSOA data; prices: assumed)",
        fontsize=10,
    )
    return fig
