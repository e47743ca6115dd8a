"""Diagnostics figures: the gate summary, posterior predictive checks and rank plots.

:func:`plot_diagnostics`
    every fit's gate quantities (R-hat, ESS, divergences, BFMI, posterior predictive
    p-values) against the thresholds, failures marked by shape as well as colour;
:func:`plot_ppc`
    the posterior predictive check of one fit: replicated group totals and between-ward
    variances against the observed ones (the p-values of the gate);
:func:`plot_rank`
    ArviZ rank plots of the DiD and the variance components of one fit;
:func:`plot_ppc_arviz`
    ArviZ's posterior predictive plot of one fit: the distribution of the observed
    ward-period values on the indicator's own scale against replicated data sets, per
    group and period.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import MatplotlibDeprecationWarning
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator

from nbdid.config import DiagnosticsConfig
from nbdid.figures.style import (
    GREY,
    LIGHT_GREY,
    OKABE_ITO,
    failed_note,
    indicator_title,
    is_synthetic,
    mark_synthetic,
    new_figure,
    new_titled_figure,
    nice_locator,
    set_fontsizes,
    styled,
    thousands,
    wrap_to_width,
)

DIAGNOSTIC_COLUMNS = ("indicator", "passed")

PASS_STYLE = dict(marker="o", mfc=OKABE_ITO["blue"], mec=OKABE_ITO["blue"], ms=4.5)
FAIL_STYLE = dict(marker="X", mfc=OKABE_ITO["vermillion"], mec="black", mew=0.5, ms=6.5)

RANK_VARIABLES: dict[str, str] = {
    "did": "DiD (link scale)",
    "sigma_ward": "SD of ward levels",
    "sigma_change": "SD of ward changes",
    "sigma_change_nbi": "SD of ward changes, NBI",
    "sigma_change_benchmark": "SD of ward changes, benchmark",
    "ward_corr": "level-change correlation",
    "sigma_pair": "SD of pair effects",
    "sigma_wp": "SD of ward × period effects",
    "sigma_wp_nbi": "SD of ward × period effects, NBI",
    "sigma_wp_benchmark": "SD of ward × period effects, benchmark",
    "sigma_od": "overdispersion SD",
    "nu": "Student-t degrees of freedom",
}
"""Variables of :func:`plot_rank` (when present in the posterior) and their labels: the
DiD and every free variance component the model can have (a group-specific ward-change
or ward x period SD is one per group, see :data:`nbdid.models.priors.PRIOR_VARIABLES`)."""

RANK_TITLE_MM = 36.0
"""Width a rank panel's title is wrapped to (half a single column, less its margins)."""


def _integer(x: float, _pos: int | None = None) -> str:
    return f"{x:,.0f}"


def _thresholds(config) -> dict[str, object]:
    c = config or DiagnosticsConfig()
    return {"rhat_max": c.max_rhat, "ess_bulk_min": c.min_ess_bulk, "ess_tail_min": c.min_ess_tail,
            "divergences": c.max_divergences, "bfmi_min": c.min_bfmi, "ppp": c.ppc_p_range}


PANELS: tuple[tuple[str, str], ...] = (
    ("rhat_max", "largest R-hat"),
    ("ess_bulk_min", "smallest bulk ESS"),
    ("ess_tail_min", "smallest tail ESS"),
    ("divergences", "divergent transitions"),
    ("bfmi_min", "smallest BFMI"),
    ("ppp", "predictive p-values"),
)


def _ok(name: str, value: float, t) -> bool:
    """Whether ``value`` is inside the drawn threshold (the gate's own rule, shown)."""
    if not np.isfinite(value):
        return name in ("bfmi_min",)  # a missing BFMI is not checked by the gate
    if name == "rhat_max":
        return value <= t
    if name in ("ess_bulk_min", "ess_tail_min", "bfmi_min"):
        return value >= t
    if name == "divergences":
        return value <= t
    lo, hi = t
    return lo <= value <= hi


@styled
def plot_diagnostics(
    data: pd.DataFrame, *, ax: Sequence[Axes] | None = None, synthetic: bool = False,
    config=None,
) -> Figure:
    """Gate summary: each fit's diagnostics against the gate's thresholds.

    One small panel per quantity (largest R-hat, smallest bulk and tail ESS,
    divergences, smallest BFMI, the posterior predictive p-values), one row per fit.
    The threshold is a dashed line and the failing side is shaded; a value on the
    failing side is a cross, otherwise a circle.  The row label says whether the fit
    passed the gate (the ``passed`` column).

    Parameters
    ----------
    data
        :func:`nbdid.analysis.diagnostics.diagnose` rows (``indicator``, ``passed`` and
        any of ``rhat_max, ess_bulk_min, ess_tail_min, divergences, bfmi_min``, the
        ``ppp_*`` p-values or ``ppp_min``/``ppp_max``).
    ax
        Six Axes (one per panel, in the order above); a new double-column figure when
        ``None``.
    synthetic
        Put the synthetic-data banner on.
    config
        :class:`nbdid.config.DiagnosticsConfig` whose thresholds are drawn (default
        thresholds when ``None``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = [c for c in DIAGNOSTIC_COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"plot_diagnostics: missing columns {missing}")
    d = data.reset_index(drop=True)
    n = len(d)
    th = _thresholds(config)
    ppp_cols = [c for c in d.columns if c.startswith("ppp_") and c not in ("ppp_min", "ppp_max")]
    if not ppp_cols:
        ppp_cols = [c for c in ("ppp_min", "ppp_max") if c in d.columns]
    if ax is None:
        fig = new_figure("double", 2 * (4.2 * n + 16.0) + 18.0)
        axes = list(fig.subplots(2, 3, sharey=True).ravel())
    else:
        axes = list(ax)
        if len(axes) != len(PANELS):
            raise ValueError(f"plot_diagnostics: needs {len(PANELS)} axes, got {len(axes)}")
        fig = axes[0].figure
    y = np.arange(n)[::-1]
    labels = [f"{indicator_title(k)}: {'passed' if p else 'FAILED'}"
              for k, p in zip(d["indicator"], d["passed"].astype(bool), strict=True)]
    for a, (name, title) in zip(axes, PANELS, strict=True):
        a.set_title(title, fontsize=8, fontweight="normal", loc="left")
        a.set_yticks(y, labels)
        a.set_ylim(-0.7, n - 0.3)
        a.tick_params(axis="y", length=0)
        cols = ppp_cols if name == "ppp" else [name] if name in d.columns else []
        if not cols:
            a.set_xticks([])
            a.set_xlabel("not in the table")
            continue
        vals = d[cols].to_numpy(float)
        t = th[name]
        finite = vals[np.isfinite(vals)]
        for yi, row in zip(y, vals, strict=True):
            for v in row:
                if np.isfinite(v):
                    style = PASS_STYLE if _ok(name, float(v), t) else FAIL_STYLE
                    a.plot(v, yi, ls="none", zorder=3, **style)
        lo_v = float(finite.min()) if len(finite) else 0.0
        hi_v = float(finite.max()) if len(finite) else 1.0
        if name == "ppp":
            lo, hi = t
            a.set_xlim(0, 1)
            a.axvspan(0, lo, color=LIGHT_GREY, lw=0, zorder=0)
            a.axvspan(hi, 1, color=LIGHT_GREY, lw=0, zorder=0)
            for v in (lo, hi):
                a.axvline(v, color=GREY, ls="--", lw=0.8, zorder=1)
            a.set_xticks([0, 0.5, 1], ["0", "0.5", "1"])
            continue
        if name.startswith("ess"):
            a.set_xscale("log")
            left, right = min(lo_v, t) / 1.6, max(hi_v, t) * 1.6
            a.set_xlim(left, right)
            a.axvspan(left, t, color=LIGHT_GREY, lw=0, zorder=0)
            a.xaxis.set_major_locator(LogLocator(subs=(1.0, 3.0)))
            a.xaxis.set_major_formatter(FuncFormatter(_integer))
            a.xaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))
        elif name == "divergences":
            right = max(hi_v, t + 1) * 1.2 + 1
            a.set_xlim(-0.5, right)
            a.axvspan(t + 0.5, right, color=LIGHT_GREY, lw=0, zorder=0)
            a.xaxis.set_major_locator(MaxNLocator(4, integer=True))
            a.xaxis.set_major_formatter(FuncFormatter(_integer))
        elif name == "rhat_max":
            right = max(hi_v, t) + 0.3 * (max(hi_v, t) - 1.0) + 0.002
            a.set_xlim(min(lo_v, 1.0) - 0.002, right)
            a.axvspan(t, right, color=LIGHT_GREY, lw=0, zorder=0)
            a.xaxis.set_major_locator(nice_locator(3))
        else:  # bfmi
            left = 0.0
            a.set_xlim(left, max(hi_v, t) * 1.15)
            a.axvspan(left, t, color=LIGHT_GREY, lw=0, zorder=0)
            a.xaxis.set_major_locator(nice_locator(4))
        a.axvline(t, color=GREY, ls="--", lw=0.8, zorder=1)
    if ax is None:
        handles = [
            Line2D([], [], ls="none", label="within the threshold", **PASS_STYLE),
            Line2D([], [], ls="none", label="beyond the threshold", **FAIL_STYLE),
            Line2D([], [], color=GREY, ls="--", lw=0.8, label="threshold"),
            Patch(fc=LIGHT_GREY, label="failing side"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=4)
    mark_synthetic(fig, synthetic)
    return fig


@styled
def plot_ppc(
    data: pd.DataFrame, *, ax: Sequence[Axes] | None = None, gate: str | None = None,
    synthetic: bool | None = None,
) -> Figure:
    """Posterior predictive check of one fit: replicated statistics against the observed.

    One panel per statistic of the gate (each group's total per period, the
    between-ward variance per period): a histogram of the statistic over the
    replicated data sets, the observed value as a black line and the p-value
    ``P(T(y_rep) >= T(y))`` in the panel title.

    Parameters
    ----------
    data
        :func:`nbdid.analysis.figure_tables.ppc_statistics` of one indicator.
    ax
        One Axes per statistic (in the table's order); a new single-column figure when
        ``None``.
    gate
        The fit's diagnostics gate text (a failure is written in the figure title).
    synthetic
        Put the synthetic-data banner on (default: from ``data["synthetic"]`` if any).

    Returns
    -------
    matplotlib.figure.Figure
    """
    need = ("indicator", "statistic", "label", "replicated", "observed", "p_value")
    missing = [c for c in need if c not in data.columns]
    if missing:
        raise ValueError(f"plot_ppc: missing columns {missing}")
    keys = data["indicator"].astype(str).unique()
    if len(keys) != 1:
        raise ValueError("plot_ppc: data must hold exactly one indicator")
    stats = list(dict.fromkeys(data["statistic"]))
    ncols = 2
    nrows = int(np.ceil(len(stats) / ncols))
    title = f"{indicator_title(keys[0])}: posterior predictive check"
    note = failed_note(gate)
    if note:
        title += f"\nDIAGNOSTICS FAILED: {note.split(': ', 1)[-1]}"
    if ax is None:
        fig, panel = new_titled_figure("single", 34.0 * nrows + 26.0, title)
        grid = panel.subplots(nrows, ncols, squeeze=False).ravel()
        for extra in grid[len(stats):]:
            extra.set_visible(False)
        axes = list(grid[: len(stats)])
        panel.supxlabel("grey: the statistic in replicated data; black line: observed",
                        fontsize=8)
    else:
        axes = list(ax)
        if len(axes) != len(stats):
            raise ValueError(f"plot_ppc: {len(stats)} statistics but {len(axes)} axes")
        fig = axes[0].figure
    for a, s in zip(axes, stats, strict=True):
        sub = data[data["statistic"] == s]
        rep = sub["replicated"].to_numpy(float)
        obs = float(sub["observed"].iloc[0])
        p = float(sub["p_value"].iloc[0])
        rep = rep[np.isfinite(rep)]
        lo, hi = np.quantile(rep, [0.001, 0.999]) if len(rep) else (obs, obs)
        lo, hi = min(lo, obs), max(hi, obs)
        pad = 0.05 * ((hi - lo) or abs(obs) or 1.0)
        a.hist(rep, bins=np.linspace(lo - pad, hi + pad, 31), color="#BBBBBB", lw=0)
        a.set_xlim(lo - pad, hi + pad)
        a.axvline(obs, color="black", lw=1.4)
        head, _, tail = str(sub["label"].iloc[0]).partition(": ")
        p_text = f"p\u00a0=\u00a0{p:.2f}"
        label = wrap_to_width(f"{tail}, {p_text}" if tail else p_text, 38.0)
        a.set_title(f"{head}\n{label}", fontsize=8, fontweight="normal", loc="left")
        a.set_yticks([])
        a.spines["left"].set_visible(False)
        a.xaxis.set_major_locator(nice_locator(3))
        thousands(a.xaxis)
    mark_synthetic(fig, is_synthetic(data, synthetic))
    return fig


@styled
def plot_rank(
    idata, *, var_names: Sequence[str] | None = None, ax: Sequence[Axes] | None = None,
    indicator: str | None = None, gate: str | None = None, synthetic: bool | None = None,
) -> Figure:
    """ArviZ rank plots (Vehtari et al. 2021) of the DiD and the variance components.

    Each panel shows, per chain, the histogram of the ranks of its draws among all
    draws; well-mixed chains give flat, overlapping histograms.

    Parameters
    ----------
    idata
        Fitted InferenceData (``posterior`` with at least ``did``).
    var_names
        Variables to show (default: those of :data:`RANK_VARIABLES` in the posterior).
    ax
        One Axes per variable; a new single-column figure when ``None``.
    indicator
        Indicator key for the title (default: ``idata.constant_data.attrs["indicator"]``).
    gate
        The fit's diagnostics gate text (a failure is written in the title).
    synthetic
        Put the synthetic-data banner on (default: the fit's ``synthetic`` attribute).

    Returns
    -------
    matplotlib.figure.Figure
    """
    # imported here: ArviZ takes seconds to import (xarray, scipy, matplotlib); only fitted results need it
    import arviz as az

    post = idata.posterior
    names = list(var_names) if var_names is not None else [v for v in RANK_VARIABLES if v in post]
    missing = [v for v in names if v not in post]
    if missing or not names:
        raise ValueError(f"plot_rank: variables not in the posterior: {missing or 'none given'}")
    cd = getattr(idata, "constant_data", None) if "constant_data" in idata.groups() else None
    attrs = dict(cd.attrs) if cd is not None else {}
    key = indicator or str(attrs.get("indicator", ""))
    if synthetic is None:
        synthetic = bool(int(attrs.get("synthetic", 0))) if attrs else False
    ncols = 2 if len(names) > 1 else 1
    nrows = int(np.ceil(len(names) / ncols))
    title = f"{indicator_title(key)}: rank plots" if key else "Rank plots"
    note = failed_note(gate)
    if note:
        title += f"\nDIAGNOSTICS FAILED: {note.split(': ', 1)[-1]}"
    if ax is None:
        fig, panel = new_titled_figure("single", 30.0 * nrows + 26.0, title)
        grid = panel.subplots(nrows, ncols, squeeze=False)
        panel.supxlabel("rank of the draw among all chains", fontsize=8)
        panel.supylabel("chain", fontsize=8)
        for extra in grid.ravel()[len(names):]:
            extra.set_visible(False)
        axes = list(grid.ravel()[: len(names)])
    else:
        axes = list(ax)
        if len(axes) != len(names):
            raise ValueError(f"plot_rank: {len(names)} variables but {len(axes)} axes")
        fig = axes[0].figure
    for a, v in zip(axes, names, strict=True):
        if post[v].ndim > 2:
            raise ValueError(f"plot_rank: {v} is not a scalar parameter")
        az.plot_rank(idata, var_names=[v], ax=a, colors=[OKABE_ITO[c] for c in (
            "blue", "orange", "bluish_green", "vermillion", "reddish_purple", "sky_blue",
            "black", "yellow")][: post.sizes["chain"]])
        a.set_title("")
        a.set_title(wrap_to_width(RANK_VARIABLES.get(v, v), RANK_TITLE_MM if ncols > 1 else 70.0),
                    fontsize=8, fontweight="normal", loc="left")
        a.set_xlabel("")
        a.set_ylabel("")
        a.tick_params(labelsize=8)
        a.xaxis.set_major_locator(MaxNLocator(3, integer=True))
        a.xaxis.set_major_formatter(FuncFormatter(_integer))
    set_fontsizes(fig)
    mark_synthetic(fig, bool(synthetic))
    return fig


PPC_VALUE_COLOURS: tuple[str, str, str] = ("#BBBBBB", "black", OKABE_ITO["vermillion"])
"""Colours of :func:`plot_ppc_arviz`: replicated data sets, observed, replicated mean."""


@styled
def plot_ppc_arviz(
    data, *, ax: Sequence[Axes] | None = None, gate: str | None = None,
    synthetic: bool | None = None, kind: str = "cumulative",
) -> Figure:
    """Posterior predictive plot of one fit, drawn by ArviZ (``az.plot_ppc``).

    One panel per group (columns) and period (rows): the distribution of the observed
    ward-period values on the indicator's own scale (black), that of each replicated
    data set (grey) and of all of them together (dashed), as empirical distribution
    functions (the share of wards at or below each value; with some 29 wards a panel
    they show the tails better than densities do) or densities.  It complements
    :func:`plot_ppc`, which shows the statistics the diagnostics gate checks.

    Parameters
    ----------
    data
        :func:`nbdid.analysis.figure_tables.ppc_values` of one fit (``observed_data``
        and ``posterior_predictive`` with one variable per group and period).
    ax
        One Axes per variable (in ``data``'s order); a new single-column figure when
        ``None``.
    gate
        The fit's diagnostics gate text (a failure is written in the figure title).
    synthetic
        Put the synthetic-data banner on (default: the data's ``synthetic`` attribute).
    kind
        ``"cumulative"`` (empirical distribution functions) or ``"kde"`` (densities).

    Returns
    -------
    matplotlib.figure.Figure
    """
    # imported here: ArviZ takes seconds to import (xarray, scipy, matplotlib); only fitted results need it
    import arviz as az

    if "observed_data" not in data.groups() or "posterior_predictive" not in data.groups():
        raise ValueError("plot_ppc_arviz: data needs observed_data and posterior_predictive "
                         "(nbdid.analysis.figure_tables.ppc_values)")
    if kind not in ("kde", "cumulative"):
        raise ValueError(f"plot_ppc_arviz: kind must be 'kde' or 'cumulative', not {kind!r}")
    obs = data.observed_data
    names = list(obs.data_vars)
    if not names:
        raise ValueError("plot_ppc_arviz: no observed values")
    attrs = dict(obs.attrs)
    key = str(attrs.get("indicator", ""))
    groups = str(attrs.get("groups", "")).split(",")
    periods = str(attrs.get("periods", "")).split(",")
    if len(groups) != len(names) or len(periods) != len(names):
        groups, periods = names, [""] * len(names)  # no layout given: one column per variable
    if synthetic is None:
        synthetic = bool(int(attrs.get("synthetic", 0)))
    title = (f"{indicator_title(key)}: " if key else "") + "observed and replicated ward values"
    note = failed_note(gate)
    if note:
        title += f"\nDIAGNOSTICS FAILED: {note.split(': ', 1)[-1]}"
    if ax is None:
        cols = list(dict.fromkeys(groups))
        rows = list(dict.fromkeys(periods))
        fig, panel = new_titled_figure("single", 30.0 * len(rows) + 30.0, title)
        grid = panel.subplots(len(rows), len(cols), squeeze=False, sharex="row")
        axes = [grid[rows.index(p), cols.index(g)] for g, p in zip(groups, periods, strict=True)]
        for a in grid.ravel():
            if not any(a is b for b in axes):
                a.set_visible(False)
        key_text = "black: observed; grey: replicated data sets; dashed: all replicated"
        if kind == "cumulative":
            panel.supylabel("share of wards at or below", fontsize=8)
        panel.supxlabel(wrap_to_width(str(attrs.get("value_label", "value")), 75.0) + "\n"
                        + wrap_to_width(key_text, 75.0), fontsize=8)
    else:
        axes = list(ax)
        if len(axes) != len(names):
            raise ValueError(f"plot_ppc_arviz: {len(names)} variables but {len(axes)} axes")
        fig = axes[0].figure
    with warnings.catch_warnings():
        # ArviZ 0.23's density plot passes None as alias_mapping to matplotlib (deprecated
        # in matplotlib 3.11); ArviZ's call, not ours, and the figure is unaffected
        warnings.simplefilter("ignore", MatplotlibDeprecationWarning)
        az.plot_ppc(data, kind=kind, var_names=names, ax=np.asarray(axes, dtype=object),
                    colors=list(PPC_VALUE_COLOURS), alpha=0.35, legend=False, random_seed=0,
                    show=False)
    for a, v in zip(axes, names, strict=True):
        label = str(obs[v].attrs.get("label", v))
        a.set_title(wrap_to_width(label, RANK_TITLE_MM), fontsize=8, fontweight="normal", loc="left")
        a.set_xlabel("")
        a.tick_params(labelsize=8)
        if kind == "kde":
            a.relim()  # ArviZ sets the limits from the observed density: show every curve
            a.autoscale_view()
            a.set_ylim(bottom=0)
            a.set_yticks([])
            a.spines["left"].set_visible(False)
        else:
            a.set_yticks([0, 0.5, 1], ["0", "0.5", "1"])
        a.xaxis.set_major_locator(nice_locator(3))
    set_fontsizes(fig)
    mark_synthetic(fig, bool(synthetic))
    return fig
