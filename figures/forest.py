"""Forest plot: the posterior DiD of each indicator beside the report's interval.

The seven indicators have different units, so each gets its own small panel with its
own x-axis in its own unit (percentage points, rates per 1,000 or 10,000, pounds); a
shared axis would let one indicator squash the others.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from nbdid.figures.style import (
    DOUBLE_COLUMN_MM,
    FAILED_MARK,
    REPORT_COLOUR,
    TITLE_LINE_MM,
    VERDICT_MARKS,
    Mark,
    draw_interval,
    failed_note,
    format_interval,
    indicator_label,
    is_synthetic,
    mark_synthetic,
    new_figure,
    nice_locator,
    size_mm,
    styled,
    thousands,
    verdict_mark,
    wrap_to_width,
)

FOREST_COLUMNS = (
    "indicator", "title", "unit", "estimate", "lower", "upper", "report_estimate",
    "report_lower", "report_upper", "baseline", "prob_benefit", "gate_passed",
)
"""Required columns (:func:`nbdid.analysis.comparison.forest_data` gives them)."""

NEUTRAL_POSTERIOR = Mark("#000000", "o", True, "-", "posterior mean, 95% interval")
NEUTRAL_REPORT = Mark(REPORT_COLOUR, "s", False, "-", "report: DiD and overlap-rule interval")
ROW_MM = 17.0
"""Height of one indicator's panel (title, two rows, tick labels)."""
MIN_ROWS = 2
"""A new figure is at least this many panels tall (one panel alone is too short to
keep its two rows, their labels and the legend apart)."""
TITLE_MARGIN_MM = 22.0
"""Width of the figure left of a panel's title (the row labels) and at its right edge."""


def _title(r: pd.Series, d: pd.DataFrame, width: float) -> str:
    """The panel title: the indicator, and for a failed gate a short mark on the first
    line and the gate's own reasons (prior reasons first) on the lines below, wrapped
    to ``width`` mm so that the title never runs off the figure."""
    title = indicator_label(str(r.indicator), fallback_unit=str(r.unit))
    if bool(r.gate_passed):
        return title
    note = failed_note(r.get("gate")) if "gate" in d.columns else ""
    note = note.split(": ", 1)[-1] if note else ""
    prior = str(r.get("prior_gate") or "") if "prior_gate" in d.columns else ""
    if prior and prior != "nan":
        rest = "; ".join(x for x in note.split("; ") if x and x not in prior.split("; "))
        head, reasons = "PRIOR CHECK FAILED", prior + (f"; {rest}" if rest else "")
    else:
        head, reasons = "DIAGNOSTICS FAILED", note
    text = wrap_to_width(f"{title}  —  {head}", width, 8.0, bold=True)
    if reasons:
        text += "\n" + wrap_to_width(f"({reasons})", width, 8.0, bold=True)
    return text


def _x_limits(values: np.ndarray) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    lo, hi = (float(v.min()), float(v.max())) if len(v) else (-1.0, 1.0)
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    pad = 0.06 * ((hi - lo) or 1.0)
    return lo - pad, hi + pad


@styled
def plot_forest(data: pd.DataFrame, *, ax: Axes | list[Axes] | None = None,
                synthetic: bool | None = None) -> Figure:
    """Posterior DiD per indicator beside the report's interval-arithmetic interval.

    One small panel per indicator, in the indicator's own unit (differences of
    percentages in percentage points): the posterior mean and 95% interval (top row)
    and the report's DiD with the interval its overlap rule implies (bottom row), the
    numbers written to the right.  Marks follow :mod:`nbdid.figures.style`: with
    ``conclusion`` / ``report_conclusion`` columns a filled circle is a benefit, a filled
    square harm, a hollow circle an interval including zero; a fit that failed its
    diagnostics gate is a cross on a dashed line and its panel says so: "DIAGNOSTICS
    FAILED" (or "PRIOR CHECK FAILED") after the indicator, the gate's reasons on the
    title's next lines, wrapped to the figure's width (the figure grows by those lines).

    Parameters
    ----------
    data
        One row per indicator with :data:`FOREST_COLUMNS`: ``estimate, lower, upper``
        (posterior DiD mean and 95% interval, indicator unit), ``report_estimate,
        report_lower, report_upper``, ``prob_benefit`` and ``gate_passed``; optional
        ``conclusion`` and ``report_conclusion`` (``benefit``/``harm``/``unclear``, see
        :func:`nbdid.analysis.figure_tables.forest_table`), ``gate`` (the gate text),
        ``prior_gate`` (the gate's prior-sensitivity reasons: a panel whose DiD the prior
        decided, or with which it conflicts, says "PRIOR CHECK FAILED" first) and
        ``synthetic``.
    ax
        One Axes per indicator (or a single Axes when ``data`` has one row); a new
        double-column figure when ``None``.
    synthetic
        Put the synthetic-data banner on (default: from ``data["synthetic"]``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = [c for c in FOREST_COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"plot_forest: missing columns {missing}")
    d = data.reset_index(drop=True)
    n = len(d)
    if n == 0:
        raise ValueError("plot_forest: no rows")
    title_width = (DOUBLE_COLUMN_MM if ax is None else size_mm(
        (ax if isinstance(ax, Axes) else list(ax)[0]).figure)[0]) - TITLE_MARGIN_MM
    titles = [_title(r, d, title_width) for _, r in d.iterrows()]
    if ax is None:
        extra = sum(t.count("\n") for t in titles)
        fig = new_figure("double", ROW_MM * max(n, MIN_ROWS) + 22.0 + TITLE_LINE_MM * extra)
        axes = list(np.atleast_1d(fig.subplots(n, 1, squeeze=False)[:, 0]))
    else:
        axes = [ax] if isinstance(ax, Axes) else list(ax)
        if len(axes) != n:
            raise ValueError(f"plot_forest: {n} indicators but {len(axes)} axes")
        fig = axes[0].figure
    has_verdicts = "conclusion" in d.columns
    has_report_verdicts = "report_conclusion" in d.columns
    any_failed = False
    used: dict[str, Mark] = {}
    for i, r in d.iterrows():
        a = axes[i]
        passed = bool(r.gate_passed)
        any_failed |= not passed
        post = verdict_mark(r.conclusion, gate_passed=passed) if has_verdicts else (
            NEUTRAL_POSTERIOR if passed else FAILED_MARK)
        rep = verdict_mark(r.report_conclusion) if has_report_verdicts else NEUTRAL_REPORT
        used.setdefault(post.label, post)
        used.setdefault(rep.label, rep)
        vals = np.asarray([r.estimate, r.lower, r.upper, r.report_estimate, r.report_lower,
                           r.report_upper], dtype=float)
        a.axvline(0.0, color="#333333", lw=0.6, zorder=1)
        draw_interval(a, r.lower, r.upper, r.estimate, 1.0, post, lw=2.0, ms=5.5)
        draw_interval(a, r.report_lower, r.report_upper, r.report_estimate, 0.0, rep, lw=1.2,
                      ms=4.5)
        a.set_xlim(*_x_limits(vals))
        a.set_ylim(-0.6, 1.6)
        a.set_yticks([1.0, 0.0], ["posterior", "report"])
        a.tick_params(axis="y", length=0)
        a.xaxis.set_major_locator(nice_locator(6))
        thousands(a.xaxis)
        a.spines["left"].set_visible(False)
        scale = float(np.nanmax(np.abs(vals[np.isfinite(vals)]))) if np.isfinite(vals).any() else 1.0
        post_text = (f"{format_interval(r.estimate, r.lower, r.upper, scale)};  "
                     f"P(benefit) {r.prob_benefit:.2f}")
        rep_text = format_interval(r.report_estimate, r.report_lower, r.report_upper, scale)
        for y, text, colour in ((1.0, post_text, "black"), (0.0, rep_text, REPORT_COLOUR)):
            a.annotate(text, xy=(1.0, y), xycoords=("axes fraction", "data"), xytext=(6, 0),
                       textcoords="offset points", va="center", ha="left", color=colour)
        a.set_title(titles[i], fontsize=8, loc="left", fontweight="bold")
    if ax is None:
        axes[-1].set_xlabel("difference in change, NBI minus benchmark (each panel in its "
                            "indicator's unit)")
        order = [m.label for m in (*VERDICT_MARKS.values(), FAILED_MARK, NEUTRAL_POSTERIOR,
                                   NEUTRAL_REPORT) if m.label in used]
        handles = [used[k].handle() for k in order]
        handles.append(Line2D([], [], color="none", label="top row: posterior; bottom row: "
                              "the report's DiD and overlap-rule interval"))
        for h in handles:
            h.set_label(wrap_to_width(h.get_label(), DOUBLE_COLUMN_MM / 2 - 16.0))
        fig.legend(handles=handles, loc="outside lower left", ncols=2, handlelength=2.0)
    mark_synthetic(fig, is_synthetic(data, synthetic))
    return fig
