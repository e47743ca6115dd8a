"""Love plot of covariate balance before and after matching."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nbdid.errors import InputError
from nbdid.figures.style import (
    GREY,
    OKABE_ITO,
    is_synthetic,
    mark_synthetic,
    new_axes,
    styled,
    width_mm,
    wrap_to_width,
)

AFTER_COLOURS = (OKABE_ITO["blue"], OKABE_ITO["orange"], OKABE_ITO["bluish_green"],
                 OKABE_ITO["reddish_purple"])
AFTER_MARKERS = ("o", "s", "D", "^")


@styled
def plot_balance(
    balance: pd.DataFrame,
    *,
    ax: Axes | None = None,
    threshold: float | None = 0.1,
    labels: Sequence[str] = ("before matching", "after matching"),
    absolute: bool = False,
    title: str | None = None,
) -> Figure:
    """Love plot: standardised mean difference of each covariate before and after.

    Parameters
    ----------
    balance
        :func:`nbdid.analysis.matching.balance_table` result (``covariate``,
        ``smd_before``, ``smd_after``).
    ax
        Axes to draw on; default a new single-column figure.
    threshold
        Draw dashed lines at ``+-threshold`` (0.1 is the usual rule of thumb); None for
        none.
    labels
        Legend labels of the before points and of the after points.  When ``balance``
        has a ``matched_by`` column (several matchings of the same treated wards), one
        series of after points is drawn per matching, labelled ``labels[1:]`` or by the
        ``matched_by`` values.
    absolute
        Plot ``|SMD|`` instead of the signed SMD.
    title
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    need = [c for c in ("covariate", "smd_before", "smd_after") if c not in balance.columns]
    if need:
        raise InputError(f"the balance table has no column(s) {', '.join(need)}")
    groups: list[tuple[str, pd.DataFrame]]
    if "matched_by" in balance.columns:
        groups = [(str(k), g) for k, g in balance.groupby("matched_by", sort=False)]
    else:
        groups = [(labels[1], balance)]
    first = groups[0][1]
    n = len(first)
    own = ax is None
    # long covariate names (share_most_deprived_quintile) need the page's full width
    longest = max((len(str(c)) for c in first["covariate"]), default=0)
    width = "double" if longest > 16 or len(groups) > 1 else "single"
    fig, ax = new_axes(ax, width, 40.0 + 5.0 * max(n, 1) + 6.0 * len(groups))
    y = np.arange(n)[::-1]

    def _vals(col: pd.Series) -> np.ndarray:
        v = col.to_numpy(dtype=float)
        return np.abs(v) if absolute else v

    before = _vals(first["smd_before"])
    for yi, b, a in zip(y, before, _vals(first["smd_after"]), strict=True):
        if np.isfinite(b) and np.isfinite(a):
            ax.plot([b, a], [yi, yi], color=GREY, lw=0.6, alpha=0.7, zorder=1)
    ax.scatter(before, y, marker="o", facecolors="white", edgecolors=GREY, s=20, lw=0.9,
               label=labels[0], zorder=2)
    for k, (name, g) in enumerate(groups):
        after = _vals(g.set_index("covariate").loc[first["covariate"], "smd_after"])
        label = labels[1] if len(groups) == 1 else (
            labels[1 + k] if len(labels) > 1 + k else name)
        ax.scatter(after, y, marker=AFTER_MARKERS[k % 4], color=AFTER_COLOURS[k % 4], s=18,
                   label=label, zorder=3 + k, alpha=0.9, lw=0)
    ax.axvline(0, color="#333333", lw=0.6)
    if threshold is not None:
        for t in ((threshold,) if absolute else (-threshold, threshold)):
            ax.axvline(t, color=GREY, lw=0.8, ls="--")
    ax.set_yticks(y, first["covariate"].astype(str).tolist())
    ax.set_xlabel("|standardised mean difference|" if absolute else
                  "standardised mean difference\n(treated − control)")
    ax.set_ylim(-0.7, n - 0.3)
    ax.tick_params(axis="y", length=0)
    if own:
        fig.legend(loc="outside lower left", ncols=1)
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    if title:
        ax.set_title(wrap_to_width(title, width_mm(width) * 0.8), loc="left")
    mark_synthetic(fig, is_synthetic(balance, None))
    return fig


__all__ = ["plot_balance"]

