"""Assurance curves of a study design, with the frequentist power curves beside them.

Left panel: the Bayesian assurance (the share of simulated studies whose posterior
P(benefit) exceeds the threshold) against the number of matched sets, one curve per
true effect.  Right panel: the power of the frequentist twin (ward-clustered GLM,
randomization inference, paired t-test) at the same effects, and the false-positive
rate of the report's pooled non-overlap rule when there is no effect at all.  Bars are
+/- 2 Monte Carlo standard errors; the dotted line is the target (80%).  Everything is
read from the ``assurance.csv`` table (:func:`nbdid.analysis.assurance.summarise_simulations`);
the figure computes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from nbdid.analysis.frequentist import FIGURE_LABELS
from nbdid.figures.style import (
    GREY,
    OKABE_ITO,
    indicator_title,
    is_synthetic,
    mark_synthetic,
    new_titled_figure,
    styled,
    wrap_to_width,
)

ASSURANCE_COLUMNS: tuple[str, ...] = (
    "indicator", "areas", "effect_ratio", "assurance", "assurance_se", "power_glm_cluster",
    "power_glm_cluster_se", "power_randomization", "power_randomization_se", "power_paired_t",
    "power_paired_t_se", "pooled_rule_fpr", "pooled_rule_fpr_se", "target",
)
"""Columns :func:`plot_assurance` reads."""

EFFECT_COLOURS = [OKABE_ITO[k] for k in ("blue", "vermillion", "bluish_green", "reddish_purple",
                                         "orange", "sky_blue", "black")]
METHOD_STYLES: dict[str, tuple[str, str]] = {
    "glm_cluster": ("--", "s"),
    "randomization": ("-.", "^"),
    "paired_t": (":", "D"),
}
"""Line style and marker of each frequentist method (labels: the method registry's)."""
DODGE: dict[str, float] = {"glm_cluster": 0.975, "randomization": 1.0, "paired_t": 1.025}
"""Horizontal offsets (factors on the log axis) that keep equal power values apart."""
POOLED_STYLE = ("--", "x", "report's pooled rule, no effect (false positives)")


def _effect_label(ratio: float, scale: str) -> str:
    pct = 100 * (ratio - 1)
    return f"{scale} {ratio:.2f} ({pct:+.0f}%)".replace("-", "\u2212")


def _curve(ax: Axes, t: pd.DataFrame, col: str, *, colour: str, ls: str, marker: str,
           mfc: str | None = None, dodge: float = 1.0) -> None:
    t = t.sort_values("areas")
    x = t["areas"].to_numpy(float) * dodge
    y = t[col].to_numpy(float)
    se = t.get(f"{col}_se", pd.Series(np.nan, index=t.index)).to_numpy(float)
    ok = np.isfinite(y)
    if not ok.any():
        return
    ax.plot(x[ok], y[ok], ls=ls, color=colour, marker=marker, ms=4, lw=1.2,
            mfc=colour if mfc is None else mfc, mec=colour)
    bars = ok & np.isfinite(se)
    if bars.any():
        ax.errorbar(x[bars], y[bars], yerr=2 * se[bars], fmt="none", ecolor=colour, elinewidth=0.8,
                    capsize=0)


def _axes_style(ax: Axes, areas: np.ndarray, target: float, ylabel: str) -> None:
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(areas))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _p=None: f"{x:,.0f}"))
    lo, hi = float(areas.min()), float(areas.max())
    pad = (hi / lo) ** 0.06 if hi > lo else 1.2
    ax.set_xlim(lo / pad, hi * pad)
    ax.set_ylim(-0.02, 1.02)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _p=None: f"{100 * y:.0f}%"))
    ax.axhline(target, color=GREY, ls=":", lw=0.8)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("matched sets (NBI areas)")


def _draw(assurance_ax: Axes, power_ax: Axes | None, t: pd.DataFrame) -> list:
    scale = str(t["ratio_scale"].iloc[0]).replace("_", " ") if "ratio_scale" in t else "ratio"
    target = float(t["target"].iloc[0]) if "target" in t else 0.8
    areas = np.sort(t["areas"].unique().astype(float))
    effects = [e for e in sorted(t["effect_ratio"].unique()) if not np.isclose(e, 1.0)]
    handles: list = []
    for i, eff in enumerate(effects):
        colour = EFFECT_COLOURS[i % len(EFFECT_COLOURS)]
        e = t[np.isclose(t["effect_ratio"], eff)]
        _curve(assurance_ax, e, "assurance", colour=colour, ls="-", marker="o")
        handles.append(Line2D([], [], color=colour, lw=1.2, marker="o", ms=4,
                              label=_effect_label(eff, scale)))
        if power_ax is not None:
            for m, (ls, marker) in METHOD_STYLES.items():
                _curve(power_ax, e, f"power_{m}", colour=colour, ls=ls, marker=marker, mfc="white",
                       dodge=DODGE[m])
    null = t[np.isclose(t["effect_ratio"], 1.0)]
    if power_ax is not None:
        for m, (ls, marker) in METHOD_STYLES.items():
            handles.append(Line2D([], [], color="#333333", ls=ls, marker=marker, mfc="white", ms=4,
                                  lw=1.2, label=FIGURE_LABELS[m]))
        if len(null):
            _curve(power_ax, null, "pooled_rule_fpr", colour=GREY, ls=POOLED_STYLE[0],
                   marker=POOLED_STYLE[1])
            handles.append(Line2D([], [], color=GREY, ls=POOLED_STYLE[0], marker=POOLED_STYLE[1],
                                  ms=4, lw=1.2, label=POOLED_STYLE[2]))
            power_ax.axhline(0.05, color=GREY, lw=0.6)
            handles.append(Line2D([], [], color=GREY, lw=0.6, label="nominal 5% false positives"))
        _axes_style(power_ax, areas, target, "power")
        power_ax.set_title("Frequentist power", loc="left")
    thr = float(t["threshold"].iloc[0]) if "threshold" in t else 0.95
    _axes_style(assurance_ax, areas, target, f"assurance: P(P(benefit) > {thr:.2f})")
    assurance_ax.set_title("Bayesian assurance", loc="left")
    handles.append(Line2D([], [], color=GREY, ls=":", lw=0.8, label=f"target {100 * target:.0f}%"))
    return handles


@styled
def plot_assurance(data: pd.DataFrame, *, synthetic: bool | None = None,
                   ax: Axes | Sequence[Axes] | None = None) -> Figure:
    """Assurance and power against the number of matched sets, for one indicator.

    Parameters
    ----------
    data
        Rows of ``assurance.csv`` for one indicator (columns :data:`ASSURANCE_COLUMNS`;
        ``ratio_scale`` and ``threshold`` label the axes when present).
    synthetic
        Mark the figure as made from synthetic data (default: the table's
        ``synthetic`` column).
    ax
        One Axes (the Bayesian assurance only), two Axes ``(assurance, power)``, or
        ``None`` for a new two-panel figure with a legend.

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = [c for c in ASSURANCE_COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"plot_assurance: missing columns {missing}")
    keys = list(dict.fromkeys(data["indicator"]))
    if len(keys) != 1:
        raise ValueError(f"plot_assurance: needs rows of exactly one indicator, not {len(keys)}")
    if ax is not None:
        if isinstance(ax, Axes):
            _draw(ax, None, data)
            return ax.figure
        a, p = ax
        _draw(a, p, data)
        return a.figure
    title = f"{indicator_title(keys[0])}: what a study of this size could detect"
    fig, sub = new_titled_figure("double", 100.0, title)
    a, p = sub.subplots(1, 2, sharey=True)
    handles = _draw(a, p, data)
    for h in handles:
        h.set_label(wrap_to_width(h.get_label(), 60.0))
    sub.legend(handles=handles, loc="outside lower center", ncols=3)
    mark_synthetic(fig, is_synthetic(data, synthetic))
    return fig
