"""Ward-level figures: each ward's change with the group means, and pair differences.

Tables come from :mod:`nbdid.analysis.wards`; nothing is computed here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from nbdid.figures.style import (
    GROUP_COLOURS,
    GROUP_MARKERS,
    LIGHT_GREY,
    VERDICT_MARKS,
    draw_interval,
    failed_note,
    failure_title,
    indicator_title,
    indicator_unit,
    is_synthetic,
    mark_synthetic,
    new_axes,
    new_titled_axes,
    nice_locator,
    styled,
    thousands,
    verdict_mark,
    wrap_to_width,
)
from nbdid.registry import GROUP_LABELS, GROUPS, INDICATORS

WARD_PLOT_COLUMNS = ("indicator", "ward", "group", "mean", "q2.5", "q97.5")
PAIR_PLOT_COLUMNS = ("indicator", "pair", "mean", "q2.5", "q97.5", "conclusion")
OBSERVED_MARK = dict(marker="_", color="black", ms=6, mew=0.9, ls="none")


def _one_indicator(data: pd.DataFrame, name: str) -> str:
    keys = data["indicator"].astype(str).unique()
    if len(keys) != 1:
        raise ValueError(f"{name}: data must hold exactly one indicator")
    return str(keys[0])


def _unit(key: str, data: pd.DataFrame) -> str:
    fallback = str(data["scale"].iloc[0]) if "scale" in data.columns and len(data) else ""
    return indicator_unit(key, fallback=fallback)


def _periods(key: str) -> str:
    ind = INDICATORS.get(key)
    return f", {ind.periods[0]} to {ind.periods[1]}" if ind is not None else ""


def _title(ax: Axes, text: str, gate: str | None, width: float) -> None:
    note = failed_note(gate)
    text = wrap_to_width(text, width, 9.0, bold=True)
    if note:
        text += "\n" + wrap_to_width(f"DIAGNOSTICS FAILED: {note.split(': ', 1)[-1]}", width,
                                     9.0, bold=True)
    ax.set_title(text, loc="left")


def _finish_y(ax: Axes) -> None:
    ax.yaxis.set_major_locator(nice_locator(6))
    thousands(ax.yaxis)


@styled
def plot_ward_changes(
    data: pd.DataFrame,
    *,
    groups: pd.DataFrame | None = None,
    ax: Axes | None = None,
    gate: str | None = None,
    synthetic: bool | None = None,
) -> Figure:
    """Each ward's change with its 95% interval, sorted within group, and the group means.

    Parameters
    ----------
    data
        :func:`nbdid.analysis.wards.ward_change_table` of one indicator (columns
        ``indicator, ward, group, mean, q2.5, q97.5`` and optional ``observed``,
        ``scale``, ``synthetic``).
    groups
        :func:`nbdid.analysis.wards.group_change_table` of the same fit: each group's
        pooled change and 95% interval, drawn as a band across its wards.
    ax
        Axes to draw on; a new double-column figure when ``None``.
    gate
        The fit's diagnostics gate text; a failure is written under the title and the
        intervals are dashed.
    synthetic
        Put the synthetic-data banner on (default: from ``data["synthetic"]``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = [c for c in WARD_PLOT_COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"plot_ward_changes: missing columns {missing}")
    key = _one_indicator(data, "plot_ward_changes")
    unit = _unit(key, data)
    own = ax is None
    fig, ax = new_axes(ax, "double", 80.0)
    failed = bool(failed_note(gate))
    ls = "--" if failed else "-"
    x0 = 0
    centres, labels = [], []
    for g in GROUPS:
        sub = data[data["group"].astype(str) == g].sort_values(["mean", "ward"], kind="stable")
        if sub.empty:
            continue
        xs = x0 + np.arange(len(sub))
        colour = GROUP_COLOURS[g]
        if groups is not None and g in set(groups["group"].astype(str)):
            gr = groups[groups["group"].astype(str) == g].iloc[0]
            ax.fill_between([xs[0] - 0.5, xs[-1] + 0.5], gr["q2.5"], gr["q97.5"], color=colour,
                            alpha=0.18, lw=0, zorder=1)
            ax.plot([xs[0] - 0.5, xs[-1] + 0.5], [gr["mean"]] * 2, color=colour, lw=1.0,
                    zorder=2)
        ax.vlines(xs, sub["q2.5"], sub["q97.5"], color=colour, lw=0.9, linestyles=ls, zorder=3)
        ax.plot(xs, sub["mean"], ls="none", marker=GROUP_MARKERS[g], ms=2.8, mfc=colour,
                mec=colour, zorder=4)
        if "observed" in sub.columns:
            ax.plot(xs, sub["observed"], zorder=5, **OBSERVED_MARK)
        centres.append(float(xs.mean()))
        labels.append(f"{GROUP_LABELS[g]} ({len(sub)} wards)")
        x0 = int(xs[-1]) + 3
    ax.axhline(0.0, color="#333333", lw=0.6, zorder=1)
    ax.set_xlim(-1, x0 - 2)
    ax.set_xticks(centres, labels)
    ax.tick_params(axis="x", length=0)
    ax.set_ylabel(f"change{_periods(key)} ({unit})" if unit else f"change{_periods(key)}")
    _title(ax, f"{indicator_title(key)}: the change in each ward", gate, 150.0)
    _finish_y(ax)
    handles = [
        Line2D([], [], color=GROUP_COLOURS["nbi"], marker="o", ms=3.2, lw=0.9, ls=ls,
               label=f"{GROUP_LABELS['nbi']} ward: posterior mean, 95% interval"),
        Line2D([], [], color=GROUP_COLOURS["benchmark"], marker="s", ms=3.2, lw=0.9, ls=ls,
               label=f"{GROUP_LABELS['benchmark']} ward: posterior mean, 95% interval"),
    ]
    if "observed" in data.columns:
        handles.append(Line2D([], [], label="observed change (raw data)", **OBSERVED_MARK))
    if groups is not None:
        handles.append(Patch(fc="#999999", alpha=0.35, label="group's pooled change, 95% interval"))
    if own:
        fig.legend(handles=handles, loc="outside lower center", ncols=2)
    else:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    mark_synthetic(fig, is_synthetic(data, synthetic))
    return fig


@styled
def plot_pair_differences(
    data: pd.DataFrame,
    *,
    did: tuple[float, float, float] | None = None,
    ax: Axes | None = None,
    gate: str | None = None,
    synthetic: bool | None = None,
) -> Figure:
    """Per matched pair: the NBI ward's change minus its benchmark's, with 95% intervals.

    Pairs are sorted by the posterior mean difference; marks follow the pair's
    ``conclusion`` (benefit: filled circle, harm: filled square, interval including
    zero: hollow circle).

    Parameters
    ----------
    data
        :func:`nbdid.analysis.wards.pair_difference_table` of one indicator (columns
        ``indicator, pair, mean, q2.5, q97.5, conclusion``; optional ``observed``,
        ``scale``, ``synthetic``).
    did
        ``(mean, lower, upper)`` of the difference between the groups' pooled changes
        (the ``diff_in_change`` row of the fit summary), drawn as a band.
    ax
        Axes to draw on; a new single-column figure when ``None``.
    gate
        The fit's diagnostics gate text (a failure is written under the title and
        every pair is drawn as failed).
    synthetic
        Put the synthetic-data banner on (default: from ``data["synthetic"]``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = [c for c in PAIR_PLOT_COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"plot_pair_differences: missing columns {missing}")
    key = _one_indicator(data, "plot_pair_differences")
    unit = _unit(key, data)
    own = ax is None
    note = failure_title(gate)
    title = f"{indicator_title(key)}: pair differences" + (f"\n{note}" if note else "")
    fig, ax = new_titled_axes(ax, "single", 95.0, title, given_width_mm=62.0)
    passed = not note
    d = data.sort_values(["mean"], kind="stable").reset_index(drop=True)
    xs = np.arange(len(d))
    if did is not None:
        m, lo, hi = did
        ax.axhspan(lo, hi, color=LIGHT_GREY, lw=0, zorder=0)
        ax.axhline(m, color="#555555", lw=0.9, zorder=1)
    ax.axhline(0.0, color="#333333", lw=0.6, zorder=1)
    used = {}
    for x, (_, r) in zip(xs, d.iterrows(), strict=True):
        mark = verdict_mark(r["conclusion"], gate_passed=passed)
        used.setdefault(mark.label, mark)
        draw_interval(ax, r["q2.5"], r["q97.5"], r["mean"], x, mark, horizontal=False,
                      lw=0.9, ms=3.2)
    if "observed" in d.columns:
        ax.plot(xs, d["observed"], zorder=5, **OBSERVED_MARK)
    ax.set_xlim(-1, len(d))
    ax.set_xticks([])
    ax.set_xlabel(f"{len(d)} pairs, sorted by posterior mean")
    ax.set_ylabel(f"NBI minus benchmark change\n({unit})" if unit else "NBI minus benchmark change")
    _finish_y(ax)
    order = [m.label for m in (*VERDICT_MARKS.values(),) if m.label in used]
    handles = [used[k].handle() for k in order] + [used[k].handle() for k in used if k not in order]
    if "observed" in d.columns:
        handles.append(Line2D([], [], label="observed difference", **OBSERVED_MARK))
    if did is not None:
        handles.append(Patch(fc=LIGHT_GREY, ec="#555555", lw=0.6,
                             label="difference of pooled group changes, 95% interval"))
    if own:
        fig.legend(handles=handles, loc="outside lower center", ncols=1)
    else:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    mark_synthetic(fig, is_synthetic(data, synthetic))
    return fig
