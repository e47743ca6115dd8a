"""Every method's DiD interval per indicator, with the report's published interval."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from nbdid.analysis.frequentist import FIGURE_LABELS
from nbdid.figures.style import (
    DOUBLE_COLUMN_MM,
    FAILED_MARK,
    GREY,
    LIGHT_GREY,
    REPORT_COLOUR,
    VERDICT_MARKS,
    Mark,
    draw_interval,
    format_interval,
    gate_passed,
    indicator_label,
    is_synthetic,
    legend_in_slot,
    mark_synthetic,
    new_titled_figure,
    nice_locator,
    significance_verdict,
    styled,
    thin_crowded_ticks,
    thousands,
    verdict_mark,
    wrap_titles_to_room,
    wrap_to_width,
)

CONCORDANCE_PLOT_COLUMNS = ("indicator", "method", "estimate", "lower", "upper", "significant")

PUBLISHED_LABEL = "PUBLISHED"
NOTE = ("Each panel: difference in change, NBI minus benchmark, in the indicator's unit, with "
        "95% intervals. Filled: the method calls the difference significant (for the report's "
        "method and the published numbers, by the report's rule: the groups' change intervals "
        "do not overlap); hollow: not significant. Grey band: the published interval.")
PANEL_MM = 38.0
"""Height of one row of panels (title, six rows, tick labels)."""


def _published_for(published: pd.DataFrame | None, key: str) -> pd.Series | None:
    if published is None or key not in set(published["indicator"].astype(str)):
        return None
    return published[published["indicator"].astype(str) == key].iloc[0]


def _legend_handles(wrap: float, used: set[str]) -> list:
    names = {"benefit": "significant: benefit", "harm": "significant: harm",
             "unclear": "not significant"}
    handles: list = [m.handle(names[k]) for k, m in VERDICT_MARKS.items() if m.label in used]
    if FAILED_MARK.label in used:
        handles.append(FAILED_MARK.handle("Bayesian fit failed its diagnostics gate"))
    handles.append(Patch(fc=LIGHT_GREY, label="published interval"))
    for h in handles:
        h.set_label(wrap_to_width(h.get_label(), wrap))
    return handles


@styled
def plot_concordance(
    data: pd.DataFrame,
    *,
    ax: Sequence[Axes] | None = None,
    published: pd.DataFrame | None = None,
    synthetic: bool | None = None,
) -> Figure:
    """One panel per indicator: each method's DiD and 95% interval in the indicator's unit.

    Marks follow :mod:`nbdid.figures.style`, read from the table's ``significant`` and
    ``better`` columns: a filled circle is a significant benefit, a filled square a
    significant harm, a hollow circle not significant; a Bayesian fit that failed its
    diagnostics gate is a cross on a dashed line.  The report's PUBLISHED DiD and the
    interval its overlap rule implies are on their own row and a grey band behind the
    methods; the numbers are written to the right of each row, and methods that could
    not be computed say why there.

    Parameters
    ----------
    data
        A concordance table (:func:`nbdid.analysis.concordance.concordance`): columns
        ``indicator, method, estimate, lower, upper, significant`` and optional
        ``better, unit, note, gate, synthetic``.
    ax
        One Axes per indicator (in the order of first appearance); a new double-column
        figure if None.
    published
        ``indicator, report_did, report_did_lower, report_did_upper`` and optional
        ``report_significant, report_better`` (e.g.
        :func:`nbdid.analysis.concordance.published_intervals`); indicators missing from
        it get no published row.
    synthetic
        Put the synthetic-data banner on (default: from ``data["synthetic"]``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = [c for c in CONCORDANCE_PLOT_COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"plot_concordance: missing columns {missing}")
    keys = list(dict.fromkeys(data["indicator"].astype(str)))
    if ax is None:
        # one indicator alone still gets the double width: a single-column panel
        # between the method names and the numbers is too narrow for its tick labels
        ncols = 1 if len(keys) == 1 else 2
        nrows = math.ceil(len(keys) / ncols)
        spare = ncols * nrows > len(keys)
        # the panels and the note below them sit in a subfigure; a legend outside the
        # panels goes below it, on the figure, so the note and the legend never overlap
        fig, sub = new_titled_figure("double", PANEL_MM * nrows + (0 if spare else 30.0)
                                     + 30.0, "")
        grid = sub.subplots(nrows, ncols, squeeze=False)
        axes = list(grid.ravel()[: len(keys)])
        legend_ax = grid.ravel()[-1] if spare else None
        sub.supxlabel(wrap_to_width(NOTE, DOUBLE_COLUMN_MM - 6.0), x=0.01, ha="left",
                      fontsize=8)
        left_column = [i % ncols == 0 for i in range(len(keys))]
    else:
        axes = list(ax)
        if len(axes) != len(keys):
            raise ValueError(f"plot_concordance: {len(keys)} indicators but {len(axes)} axes")
        fig = axes[0].figure
        left_column = [True] * len(keys)
    used: set[str] = set()
    for key, a, left in zip(keys, axes, left_column, strict=True):
        used |= _panel(a, data[data["indicator"].astype(str) == key], key,
                       _published_for(published, key), labels=left)
    if ax is None:
        if legend_ax is not None:
            legend_in_slot(fig, legend_ax, _legend_handles(DOUBLE_COLUMN_MM / 2 - 16, used))
        else:
            fig.legend(handles=_legend_handles(DOUBLE_COLUMN_MM / 2 - 16, used),
                       loc="outside lower left", ncols=2)
        # laid out in the nbdid style (as @styled does), then fitted: long titles are
        # wrapped to the room beside the next panel, crowded x axes get fewer ticks
        wrap_titles_to_room(fig, axes)
        thin_crowded_ticks(fig, axes)
    mark_synthetic(fig, is_synthetic(data, synthetic))
    return fig


def _panel(ax: Axes, sub: pd.DataFrame, key: str, pub: pd.Series | None, *,
           labels: bool) -> set[str]:
    """Draw one indicator; return the labels of the marks used."""
    sub = sub.reset_index(drop=True)
    n = len(sub)
    names = [FIGURE_LABELS.get(m, str(m)) for m in sub["method"]]
    y = list(range(n, 0, -1))
    vals = sub[["estimate", "lower", "upper"]].to_numpy(float).ravel()
    if pub is not None:
        vals = np.concatenate([vals, pub[["report_did", "report_did_lower",
                                          "report_did_upper"]].to_numpy(float)])
    finite = vals[np.isfinite(vals)]
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (-1.0, 1.0)
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    pad = 0.06 * (hi - lo or 1.0)
    xmin, xmax = lo - pad, hi + pad
    scale = max(abs(lo), abs(hi))
    used: set[str] = set()

    def note(yi: float, text: str, colour: str = "black") -> None:
        ax.annotate(text, xy=(1.0, yi), xycoords=("axes fraction", "data"), xytext=(4, 0),
                    textcoords="offset points", va="center", ha="left", color=colour)

    if pub is not None:
        est, plo, phi = (float(pub[c]) for c in ("report_did", "report_did_lower",
                                                 "report_did_upper"))
        ax.axvspan(plo, phi, color=LIGHT_GREY, lw=0, zorder=0)
        verdict = (significance_verdict(pub.get("report_significant"), pub.get("report_better"))
                   if "report_significant" in pub.index else None)
        mark = verdict_mark(verdict) if verdict else Mark(REPORT_COLOUR, "s", True, "-", "")
        draw_interval(ax, plo, phi, est, n + 1, mark, lw=1.6, ms=4.5)
        used.add(mark.label)
        note(n + 1, format_interval(est, plo, phi, scale), REPORT_COLOUR)
        names = [PUBLISHED_LABEL, *names]
        y = [n + 1, *y]
    for i, r in sub.iterrows():
        yi = n - i
        failed = r["method"] == "bayes" and "gate" in sub.columns and not pd.isna(r.get("gate")) \
            and str(r.get("gate")).strip() != "" and not gate_passed(r.get("gate"))
        computed = not pd.isna(r["significant"]) and np.isfinite(r["estimate"])
        if not computed and not np.isfinite(r["lower"]):
            text = str(r.get("note", "") or "not computed")
            note(yi, text if len(text) <= 34 else text[:33] + "…", GREY)
            continue
        mark = verdict_mark(significance_verdict(r["significant"], r.get("better")),
                            gate_passed=not failed)
        used.add(mark.label)
        lo_, up_ = float(r["lower"]), float(r["upper"])
        draw_interval(ax, lo_ if np.isfinite(lo_) else xmin, up_ if np.isfinite(up_) else xmax,
                      float(r["estimate"]), yi, mark, lw=1.6, ms=4.5)
        for bound, edge, mk in ((lo_, xmin, "<"), (up_, xmax, ">")):
            if not np.isfinite(bound):
                ax.plot(edge, yi, mk, color=mark.colour, ms=4)
        text = format_interval(float(r["estimate"]), lo_, up_, scale)
        note(yi, text + ("  gate FAILED" if failed else ""), "black")
    ax.axvline(0, color="#333333", lw=0.6, zorder=1)
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(0.4, max(y) + 0.6)
    ax.set_yticks(y, names)
    ax.tick_params(axis="y", length=0, labelleft=labels)
    ax.spines["left"].set_visible(False)
    ax.xaxis.set_major_locator(nice_locator(4))
    thousands(ax.xaxis)
    for t in ax.get_yticklabels():
        if t.get_text() == PUBLISHED_LABEL:
            t.set_fontweight("bold")
    fallback = str(sub["unit"].iloc[0]) if "unit" in sub.columns and len(sub) else ""
    ax.set_title(indicator_label(key, fallback_unit=fallback), loc="left", fontsize=8)
    return used
