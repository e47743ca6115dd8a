"""Tables that figures draw, computed here so that figures never compute.

:func:`forest_table`
    The comparison table reshaped for :func:`nbdid.figures.plot_forest`, with the
    posterior's and the report's verdicts as columns.
:func:`ppc_statistics`
    The replicated and observed test statistics behind the posterior predictive
    p-values of the diagnostics gate, for :func:`nbdid.figures.plot_ppc`.
:func:`ppc_values`
    Observed and replicated ward-period values on the indicator's own scale, per
    group and period, for :func:`nbdid.figures.plot_ppc_arviz` (ArviZ's
    ``plot_ppc``).

Functions return DataFrames (or, for ArviZ, InferenceData) and never draw.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd

from nbdid.analysis.comparison import forest_data
from nbdid.analysis.diagnostics import ppc_replicates
from nbdid.registry import GROUP_LABELS, GROUPS

PPC_COLUMNS: tuple[str, ...] = (
    "indicator", "statistic", "kind", "group", "period", "label", "draw", "replicated",
    "observed", "p_value",
)
"""Columns of :func:`ppc_statistics` (one row per statistic and posterior draw)."""


def verdict(significant: bool, better: bool) -> str:
    """``benefit``, ``harm`` or ``unclear`` from a significance call and its direction."""
    if pd.isna(significant) or not bool(significant):
        return "unclear"
    return "benefit" if bool(better) else "harm"


def forest_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """The forest plot's table: :func:`~nbdid.analysis.comparison.forest_data` plus verdicts.

    Parameters
    ----------
    comparison
        :func:`nbdid.analysis.comparison.compare` output.

    Returns
    -------
    pandas.DataFrame
        The columns of ``forest_data`` plus ``conclusion`` (the posterior: its 95%
        interval excludes zero in the direction of benefit / harm, else ``unclear``),
        ``report_conclusion`` (the report's overlap rule, same words), ``gate`` and,
        when the comparison has it, ``prior_gate`` (prior-sensitivity reasons of the gate).
    """
    out = forest_data(comparison)
    out["conclusion"] = [verdict(s, b) for s, b in zip(
        comparison["posterior_significant"], comparison["posterior_better"], strict=True)]
    out["report_conclusion"] = [verdict(s, b) for s, b in zip(
        comparison["report_significant"], comparison["report_better"], strict=True)]
    out["gate"] = comparison["gate"].astype(str).to_numpy() if "gate" in comparison else "unknown"
    if "prior_gate" in comparison:  # the prior decided the DiD: marked in the figure
        out["prior_gate"] = comparison["prior_gate"].fillna("").astype(str).to_numpy()
    return out


def _p(t_rep: np.ndarray, t_obs: float) -> float:
    return float(np.mean(t_rep > t_obs) + 0.5 * np.mean(t_rep == t_obs))


def ppc_statistics(idata: az.InferenceData, design) -> pd.DataFrame:
    """Replicated and observed statistics of the posterior predictive check of a fit.

    The statistics and p-values are those of
    :func:`nbdid.analysis.diagnostics.ppc_pvalues` (and so of the diagnostics gate):
    each group's pooled total per period (event counts, or the transaction-weighted
    mean log price) and, per period, the between-ward variance of the observations'
    empirical link values (the family's ``ppc_total`` and ``ppc_scale``).

    Parameters
    ----------
    idata
        A fit with ``posterior_predictive["y"]`` (drawn with
        :func:`~nbdid.analysis.diagnostics.ppc_replicates` when absent).
    design
        The design it was fitted to.

    Returns
    -------
    pandas.DataFrame
        :data:`PPC_COLUMNS`; ``statistic`` is the gate's name (``ppp_total_nbi_2011``,
        ``ppp_var_2021``), ``kind`` ``total``/``variance``, ``group`` empty for the
        variance, ``label`` a display label (``"<what>: <statistic>"``; the variance is
        that of the link-scale values), ``replicated`` one value per posterior
        draw, ``observed`` and ``p_value`` repeated on every row of the statistic.
    """
    if "posterior_predictive" not in idata.groups():
        idata = ppc_replicates(idata, design)
    rep = idata.posterior_predictive["y"].values
    rep = rep.reshape(-1, rep.shape[-1]).astype(float)
    fam, arrays = design.family, design.arrays
    obs = np.asarray(design.y, dtype=float)
    val_rep, val_obs = fam.ppc_scale(rep, arrays), fam.ppc_scale(obs, arrays)
    parts = []

    def add(stat: str, kind: str, group: str, period: str, label: str, t_rep, t_obs) -> None:
        parts.append(pd.DataFrame({
            "indicator": design.indicator, "statistic": stat, "kind": kind, "group": group,
            "period": period, "label": label, "draw": np.arange(len(t_rep)),
            "replicated": np.asarray(t_rep, float), "observed": float(t_obs),
            "p_value": _p(np.asarray(t_rep), float(t_obs)),
        }))

    what = fam.ppc_total_label
    for g in GROUPS:
        is_g = design.treated == (1 if g == "nbi" else 0)
        for t, lab in enumerate(design.coords["period"]):
            m = is_g & (design.period_idx == t)
            add(f"ppp_total_{g}_{lab}", "total", g, str(lab), f"{GROUP_LABELS[g]} {lab}: {what}",
                fam.ppc_total(rep, arrays, m), fam.ppc_total(obs, arrays, m))
    spread = "variance between wards"
    for t, lab in enumerate(design.coords["period"]):
        m = design.period_idx == t
        add(f"ppp_var_{lab}", "variance", "", str(lab), f"{lab}: {spread}",
            np.var(val_rep[:, m], axis=1), np.var(val_obs[m]))
    return pd.DataFrame(pd.concat(parts, ignore_index=True), columns=list(PPC_COLUMNS))


PPC_VALUE_DRAWS = 100
"""Replicated data sets :func:`ppc_values` keeps (evenly spaced over the posterior draws)."""


def ppc_values(idata: az.InferenceData, design, *, max_draws: int = PPC_VALUE_DRAWS) -> az.InferenceData:
    """Observed and replicated ward-period values of a fit on the indicator's own scale.

    The values are the family's :meth:`~nbdid.families.Family.value_scale` of the
    observations and of the replicated data (``posterior_predictive["y"]``, drawn with
    :func:`~nbdid.analysis.diagnostics.ppc_replicates` when absent): the count per unit
    of exposure for counts (a share for binomial, a rate for Poisson), the mean log
    price for prices, the value itself for Gaussian indicators.

    Parameters
    ----------
    idata
        A fit (``posterior``, and ``posterior_predictive`` if drawn).
    design
        The design it was fitted to.
    max_draws
        At most this many replicated data sets are kept, evenly spaced over the draws
        of each chain (all when the fit has fewer).

    Returns
    -------
    arviz.InferenceData
        Groups ``observed_data`` and ``posterior_predictive`` with one variable per
        group and period that has observations (``nbi_2011``, ``benchmark_2011``, ...;
        groups first, then periods in the design's order), each over its own ward
        dimension (``<variable>_ward``, the ward codes).  Each variable's ``label``
        attribute is its display label (``"NBI wards, 2011"``); the ``observed_data``
        attributes hold ``indicator``, ``value_label`` (what the values are, in
        words), ``family``, ``synthetic`` (0/1) and the ``groups``/``periods`` of the
        variables (comma-separated, in order).
    """
    if "posterior_predictive" not in idata.groups():
        idata = ppc_replicates(idata, design)
    rep = np.asarray(idata.posterior_predictive["y"].values)  # (chain, draw, obs)
    n_chains, n_draws = rep.shape[:2]
    per_chain = min(n_draws, max(1, -(-max_draws // n_chains)))
    keep = np.unique(np.linspace(0, n_draws - 1, per_chain).round().astype(int))
    rep = rep[:, keep, :]
    fam, arrays = design.family, design.arrays
    rep_v = fam.value_scale(rep, arrays)
    obs_v = fam.value_scale(np.asarray(design.y), arrays)
    wards = np.asarray(design.coords["ward"])[np.asarray(design.ward_idx)]
    treated = np.asarray(design.treated)
    period_idx = np.asarray(design.period_idx)
    observed, predictive, dims, coords, labels = {}, {}, {}, {}, {}
    groups, periods = [], []
    for g in GROUPS:
        is_g = treated == (1 if g == "nbi" else 0)
        for t, lab in enumerate(design.coords["period"]):
            m = is_g & (period_idx == t)
            if not m.any():
                continue
            name = f"{g}_{lab}"
            observed[name] = obs_v[m]
            predictive[name] = rep_v[..., m]
            dims[name] = [f"{name}_ward"]
            coords[f"{name}_ward"] = [str(w) for w in wards[m]]
            labels[name] = f"{GROUP_LABELS[g]}, {lab}"
            groups.append(g)
            periods.append(str(lab))
    out = az.from_dict(posterior_predictive=predictive, observed_data=observed,
                       dims=dims, coords=coords)
    for grp in (out.observed_data, out.posterior_predictive):
        for name, label in labels.items():
            grp[name].attrs["label"] = label
    out.observed_data.attrs.update(
        indicator=str(design.indicator), value_label=str(fam.value_label),
        family=str(getattr(fam, "name", fam)), synthetic=int(bool(design.synthetic)),
        groups=",".join(groups), periods=",".join(periods))
    return out
