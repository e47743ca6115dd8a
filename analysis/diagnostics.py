"""Sampling and model-fit diagnostics of a fitted DiD model, and the diagnostics gate.

:func:`diagnose` returns one row per fit with R-hat, bulk/tail ESS, divergences, BFMI
and posterior predictive p-values, the thresholds' verdict ``passed`` and a ``gate``
string (``"passed"`` or ``"FAILED: <reasons>"``) that every table made from the fit
repeats (:func:`mark_gate`).  Functions return DataFrames and never draw.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nbdid.models.design import Design
from nbdid.models.sampling import family_module
from nbdid.registry import GROUPS

# Free parameters checked for convergence (deterministics are functions of these).
_SKIP = ("ward_effect", "period_effect", "did_period", "pair_effect_z")


def _checked_vars(idata) -> list[str]:
    post = idata.posterior
    names = [
        v for v in post.data_vars
        if v not in _SKIP and v != "wp_effect" and not str(v).endswith("__")
    ]
    return names


def ppc_replicates(idata, design: Design, *, seed: int = 0):
    """Add replicated data ``y`` (dims ``chain, draw, obs``) as ``posterior_predictive``.

    Replicates are drawn with NumPy from the family's likelihood for every posterior
    draw; observation-level effects (``wp_effect``) are redrawn from their population
    distribution, so the check is equally strict for every overdispersion choice.
    """
    import xarray as xr

    rng = np.random.default_rng(seed)
    rep = family_module(design.family).replicate(idata.posterior, design, rng)
    post = idata.posterior
    da = xr.DataArray(
        rep if design.family == "price" else rep.astype("int64"),
        dims=("chain", "draw", "obs"),
        coords={"chain": post["chain"].values, "draw": post["draw"].values,
                "obs": np.asarray(design.coords["obs"])},
    )
    if "posterior_predictive" in idata.groups():
        del idata.posterior_predictive
    idata.add_groups(posterior_predictive=xr.Dataset({"y": da}))
    return idata


def ppc_pvalues(idata, design: Design, *, seed: int = 0) -> dict[str, float]:
    """Bayesian posterior predictive p-values of group-level and between-ward summaries.

    Uses ``idata.posterior_predictive["y"]`` (drawn by :func:`ppc_replicates` when
    absent).  Statistics: the pooled value of each group x period (``ppp_total_...``)
    and, per period, the between-ward variance of the observed log rates / mean log
    prices (``ppp_var_<period>``).  A p-value is ``P(T(y_rep) >= T(y))`` (ties count
    half); values near 0 or 1 flag misfit.
    """
    if "posterior_predictive" not in idata.groups():
        idata = ppc_replicates(idata, design, seed=seed)
    rep = idata.posterior_predictive["y"].values
    rep = rep.reshape(-1, rep.shape[-1]).astype(float)
    if design.family == "price":
        w = design.n.astype(float)
        obs, val_rep, val_obs = design.mean_log_price, rep, design.mean_log_price
    else:
        w = design.exposure
        obs = design.count.astype(float)
        val_rep = np.log((rep + 0.5) / w)
        val_obs = np.log((obs + 0.5) / w)
    out: dict[str, float] = {}

    def p(t_rep, t_obs):
        return float(np.mean(t_rep > t_obs) + 0.5 * np.mean(t_rep == t_obs))

    for g in GROUPS:
        is_g = design.treated == (1 if g == "nbi" else 0)
        for t, lab in enumerate(design.coords["period"]):
            m = is_g & (design.period_idx == t)
            if design.family == "price":
                t_rep = np.sum(rep[:, m] * w[m], axis=1) / w[m].sum()
                t_obs = np.sum(obs[m] * w[m]) / w[m].sum()
            else:
                t_rep, t_obs = rep[:, m].sum(axis=1), obs[m].sum()
            out[f"ppp_total_{g}_{lab}"] = p(t_rep, t_obs)
    for t, lab in enumerate(design.coords["period"]):
        m = design.period_idx == t
        out[f"ppp_var_{lab}"] = p(np.var(val_rep[:, m], axis=1), np.var(val_obs[m]))
    return out


def diagnose(idata, design: Design, config=None) -> pd.DataFrame:
    """One-row diagnostics table of a fit, with the gate verdict.

    Parameters
    ----------
    idata
        Fitted InferenceData (``posterior`` and ``sample_stats``).
    design
        The design it was fitted to.
    config
        :class:`nbdid.config.DiagnosticsConfig` (default thresholds when ``None``).

    Returns
    -------
    pandas.DataFrame
        Columns ``indicator, rhat_max, ess_bulk_min, ess_tail_min, divergences,
        bfmi_min, ppp_min, ppp_max, passed, reasons, gate`` plus every ``ppp_*`` value.
    """
    import arviz as az

    from nbdid.config import DiagnosticsConfig

    cfg = config or DiagnosticsConfig()
    names = _checked_vars(idata)
    rhat = az.rhat(idata, var_names=names)
    ess_b = az.ess(idata, var_names=names, method="bulk")
    ess_t = az.ess(idata, var_names=names, method="tail")

    def extreme(ds, fn):
        vals = [float(fn(ds[v].values)) for v in ds.data_vars]
        return fn(np.asarray(vals)) if vals else np.nan

    rhat_max = float(extreme(rhat, np.nanmax))
    ess_bulk_min = float(extreme(ess_b, np.nanmin))
    ess_tail_min = float(extreme(ess_t, np.nanmin))
    stats = idata.sample_stats
    divergences = int(stats["diverging"].values.sum()) if "diverging" in stats else 0
    bfmi_min = float(np.min(az.bfmi(idata))) if "energy" in stats else np.nan
    ppp = ppc_pvalues(idata, design)
    ppp_vals = np.asarray(list(ppp.values()))
    lo, hi = cfg.ppc_p_range
    reasons = []
    if not np.isfinite(rhat_max) or rhat_max > cfg.max_rhat:
        reasons.append(f"R-hat {rhat_max:.3f} > {cfg.max_rhat}")
    if ess_bulk_min < cfg.min_ess_bulk:
        reasons.append(f"bulk ESS {ess_bulk_min:.0f} < {cfg.min_ess_bulk}")
    if ess_tail_min < cfg.min_ess_tail:
        reasons.append(f"tail ESS {ess_tail_min:.0f} < {cfg.min_ess_tail}")
    if divergences > cfg.max_divergences:
        reasons.append(f"{divergences} divergences > {cfg.max_divergences}")
    if np.isfinite(bfmi_min) and bfmi_min < cfg.min_bfmi:
        reasons.append(f"BFMI {bfmi_min:.2f} < {cfg.min_bfmi}")
    bad = [k for k, v in ppp.items() if not (lo <= v <= hi)]
    if bad:
        reasons.append("posterior predictive check " + ", ".join(f"{k}={ppp[k]:.3f}" for k in bad))
    passed = not reasons
    row = {
        "indicator": design.indicator,
        "rhat_max": rhat_max,
        "ess_bulk_min": ess_bulk_min,
        "ess_tail_min": ess_tail_min,
        "divergences": divergences,
        "bfmi_min": bfmi_min,
        "ppp_min": float(ppp_vals.min()),
        "ppp_max": float(ppp_vals.max()),
        "passed": passed,
        "reasons": "; ".join(reasons),
        "gate": "passed" if passed else "FAILED: " + "; ".join(reasons),
        **ppp,
    }
    return pd.DataFrame([row])


def mark_gate(table: pd.DataFrame, diagnostics: pd.DataFrame) -> pd.DataFrame:
    """Add the ``gate`` column of ``diagnostics`` to ``table`` (matched on ``indicator``).

    Every table made from a fit must carry its gate so that a failing fit is visible
    wherever its numbers appear.
    """
    gate = diagnostics.set_index("indicator")["gate"]
    out = table.copy()
    out["gate"] = out["indicator"].map(gate).fillna("FAILED: no diagnostics")
    return out
