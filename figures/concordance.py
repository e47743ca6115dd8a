"""Every method's DiD interval per indicator, with the report's published interval."""

from __future__ import annotations

import math
from collections.abc import Sequence

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
)
from nbdid.registry import INDICATORS

CONCORDANCE_PLOT_COLUMNS = ("indicator", "method", "estimate", "lower", "upper", "significant")

SHORT_LABELS = {
    "report_pooled": "report's pooled method",
    "glm_cluster": "GLM, clustered (CR1)",
    "randomization": "randomization (pairs)",
    "paired_t": "paired t-test",
    "bayes": "Bayesian posterior",
}
PUBLISHED_LABEL = "PUBLISHED (Tables 5A-11A)"
NONSIG_COLOUR = "#4d4d4d"


def _published_for(published: pd.DataFrame | None, key: str) -> tuple[float, float, float] | None:
    if published is None or key not in set(published["indicator"]):
        return None
    r = published[published["indicator"] == key].iloc[0]
    return float(r["report_did"]), float(r["report_did_lower"]), float(r["report_did_upper"])


def plot_concordance(
    data: pd.DataFrame,
    *,
    ax: Sequence[Axes] | None = None,
    published: pd.DataFrame | None = None,
    synthetic: bool | None = None,
) -> Figure:
    """One panel per indicator: each method's DiD and 95% interval in the indicator's unit.

    Filled markers: the method calls the difference significant; hollow: it does not.
    The report's PUBLISHED DiD and the interval its overlap rule implies are drawn in
    grey on their own row and as a shaded band behind the methods.  Methods that
    could not be computed are listed with their reason; a Bayesian fit that failed its
    diagnostics gate is drawn in red.

    Parameters
    ----------
    data
        A concordance table (:func:`nbdid.analysis.concordance.concordance`): columns
        ``indicator, method, estimate, lower, upper, significant`` and optional ``unit,
        note, gate, synthetic``.
    ax
        One Axes per indicator (in the order of first appearance); new figure if None.
    published
        ``indicator, report_did, report_did_lower, report_did_upper`` (e.g.
        :func:`nbdid.analysis.concordance.published_intervals`); indicators missing
        from it get no published row.
    synthetic
        Stamp the synthetic-data notice (default: from ``data["synthetic"]``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = [c for c in CONCORDANCE_PLOT_COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"plot_concordance: missing columns {missing}")
    keys = list(dict.fromkeys(data["indicator"].astype(str)))
    if ax is None:
        ncols = 1 if len(keys) == 1 else 2
        nrows = math.ceil(len(keys) / ncols)
        fig = Figure(figsize=(7.5 * ncols, 2.9 * nrows + 0.8), layout="constrained")
        grid = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for extra in grid[len(keys):]:
            extra.set_visible(False)
        axes = list(grid[: len(keys)])
    else:
        axes = list(ax)
        if len(axes) != len(keys):
            raise ValueError(f"plot_concordance: {len(keys)} indicators but {len(axes)} axes")
        fig = axes[0].figure
    for key, a in zip(keys, axes, strict=True):
        _panel(a, data[data["indicator"].astype(str) == key], key, _published_for(published, key))
    syn = bool(data["synthetic"].any()) if synthetic is None and "synthetic" in data else bool(synthetic)
    mark_synthetic(fig, syn)
    fig.supxlabel(
        "95% intervals. Filled marker: the method calls the difference in change significant "
        "(the report's rule: change intervals do not overlap); hollow: not significant. "
        "Grey band: the report's PUBLISHED interval.",
        fontsize=7,
    )
    return fig


def _panel(ax: Axes, sub: pd.DataFrame, key: str, pub: tuple[float, float, float] | None) -> None:
    sub = sub.reset_index(drop=True)
    n = len(sub)
    labels = [SHORT_LABELS.get(m, str(m)) for m in sub["method"]]
    y = list(range(n, 0, -1))
    finite = sub[["estimate", "lower", "upper"]].to_numpy(float).ravel()
    if pub is not None:
        finite = np.concatenate([finite, np.asarray(pub)])
    finite = finite[np.isfinite(finite)]
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (-1.0, 1.0)
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    pad = 0.08 * (hi - lo or 1.0)
    xmin, xmax = lo - pad, hi + pad
    scale = max(abs(lo), abs(hi))
    if pub is not None:
        est, plo, phi = pub
        ax.axvspan(plo, phi, color=REPORT_COLOUR, alpha=0.12, lw=0)
        ax.plot([plo, phi], [n + 1] * 2, color=REPORT_COLOUR, lw=3, solid_capstyle="butt")
        ax.plot(est, n + 1, "s", color=REPORT_COLOUR, ms=6)
        ax.annotate(f"{fmt_number(est, scale)} [{fmt_number(plo, scale)}, {fmt_number(phi, scale)}]",
                    xy=(1.0, n + 1), xycoords=("axes fraction", "data"), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=6.5, color=REPORT_COLOUR)
        labels = [PUBLISHED_LABEL, *labels]
        y = [n + 1, *y]
    for i, r in sub.iterrows():
        yi = n - i
        gate = str(r.get("gate", "") or "")
        failed = r["method"] == "bayes" and gate and not gate.startswith("passed")
        sig = r["significant"]
        computed = not pd.isna(sig) and np.isfinite(r["estimate"])
        colour = FAIL_COLOUR if failed else (NBI_COLOUR if computed and bool(sig) else NONSIG_COLOUR)
        if not computed and not np.isfinite(r["lower"]):
            note = str(r.get("note", "") or "not computed")
            ax.text(0.5 * (xmin + xmax), yi, note.removeprefix("not computed: ")[:70],
                    ha="center", va="center", fontsize=6.5, color=FAIL_COLOUR, style="italic")
            continue
        lo_, up_ = float(r["lower"]), float(r["upper"])
        if np.isfinite(lo_) or np.isfinite(up_):
            ax.plot([lo_ if np.isfinite(lo_) else xmin, up_ if np.isfinite(up_) else xmax],
                    [yi] * 2, color=colour, lw=2.5, solid_capstyle="butt")
            for bound, edge, mk in ((lo_, xmin, "<"), (up_, xmax, ">")):
                if not np.isfinite(bound):
                    ax.plot(edge, yi, mk, color=colour, ms=6)
        if np.isfinite(r["estimate"]):
            filled = computed and bool(sig)
            ax.plot(r["estimate"], yi, "o", ms=6.5, mec=colour, mew=1.5,
                    color=colour if filled else "white")
        text = f"{fmt_number(r['estimate'], scale)} [{fmt_number(lo_, scale)}, {fmt_number(up_, scale)}]"
        if failed:
            text += "  gate FAILED"
        ax.annotate(text, xy=(1.0, yi), xycoords=("axes fraction", "data"), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=6.5, color=colour)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(0.4, max(y) + 0.6)
    ax.set_yticks(y, labels, fontsize=7.5)
    for t, lab in zip(ax.get_yticklabels(), labels, strict=True):
        if lab == PUBLISHED_LABEL:
            t.set_color(REPORT_COLOUR)
            t.set_fontweight("bold")
    ind = INDICATORS.get(key)
    title = ind.title if ind is not None else key
    unit = str(sub["unit"].iloc[0]) if "unit" in sub else ""
    ax.set_title(f"{title}", fontsize=9, loc="left")
    ax.set_xlabel(f"DiD, NBI minus benchmark ({unit})", fontsize=7.5)
    ax.tick_params(axis="x", labelsize=7)
