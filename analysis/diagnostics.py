"""Sampling and model-fit diagnostics of a fitted DiD model, and the diagnostics gate.

:func:`diagnose` returns one row per fit with R-hat, bulk/tail ESS, divergences, BFMI
and posterior predictive p-values, the thresholds' verdict ``passed`` and a ``gate``
string (``"passed"`` or ``"FAILED: <reasons>"``) that every table made from the fit
repeats (:func:`mark_gate`).  Functions return DataFrames and never draw.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from nbdid.analysis.convergence import convergence_summary
from nbdid.config import DiagnosticsConfig
from nbdid.families.priors import prior_sd
from nbdid.models.design import Design
from nbdid.models.model import draw_chunks, replicate
from nbdid.models.priors import PRIOR_VARIABLES
from nbdid.registry import GROUPS

if TYPE_CHECKING:
    from arviz import InferenceData

# Free parameters checked for convergence (deterministics are functions of these).
_SKIP = ("ward_effect", "period_effect", "did_period", "pair_effect_z")


def _checked_vars(idata: InferenceData) -> list[str]:
    post = idata.posterior
    names = [
        v for v in post.data_vars
        if v not in _SKIP and v != "wp_effect" and not str(v).endswith("__")
    ]
    # the sampler records the free parameters (nbdid.models.sampling): check those and
    # the DiD once, not every deterministic re-expression of the same ward effects
    free = str(post.attrs.get("nbdid_free_vars", ""))
    if free:
        keep = set(free.split(",")) | {"did"}
        names = [v for v in names if v in keep]
    return names


def ppc_replicates(idata: InferenceData, design: Design, *, seed: int = 0, draws: int = 0):
    """Add replicated data ``y`` (dims ``chain, draw, obs``) as ``posterior_predictive``.

    Replicates are drawn with NumPy from the family's likelihood for every posterior
    draw (or, with ``draws`` > 0, for at most that many: every k-th draw of each chain,
    with the posterior's draw labels); observation-level effects (``wp_effect``) are
    redrawn from their population distribution, so the check is equally strict for
    every overdispersion choice.  Large posteriors are drawn a block of draws at a time
    (:func:`nbdid.models.model.draw_chunks`).
    """
    # imported here: xarray loads only when results are built or written (table-only commands skip it)
    import xarray as xr

    rng = np.random.default_rng(seed)
    post = idata.posterior
    if draws > 0:
        step = -(-(post.sizes["chain"] * post.sizes["draw"]) // draws)
        if step > 1:
            post = post.isel(draw=slice(None, None, step))
    rep = np.empty((post.sizes["chain"], post.sizes["draw"], design.n_obs), dtype=design.family.y_dtype)
    for sl in draw_chunks(post, design.n_obs):
        rep[:, sl] = replicate(post.isel(draw=sl), design, rng)
    da = xr.DataArray(
        rep,
        dims=("chain", "draw", "obs"),
        coords={"chain": post["chain"].values, "draw": post["draw"].values,
                "obs": np.asarray(design.coords["obs"])},
    )
    if "posterior_predictive" in idata.groups():
        del idata.posterior_predictive
    idata.add_groups(posterior_predictive=xr.Dataset({"y": da}))
    return idata


def ppc_pvalues(idata: InferenceData, design: Design, *, seed: int = 0) -> dict[str, float]:
    """Bayesian posterior predictive p-values of group-level and between-ward summaries.

    Uses ``idata.posterior_predictive["y"]`` (drawn by :func:`ppc_replicates` when
    absent).  Statistics: the pooled value of each group x period (``ppp_total_...``)
    and, per period, the between-ward variance of the observed log rates / mean log
    prices (``ppp_var_<period>``).  A p-value is ``P(T(y_rep) >= T(y))`` (ties count
    half); values near 0 or 1 flag misfit.
    """
    if "posterior_predictive" not in idata.groups():
        idata = ppc_replicates(idata, design, seed=seed)
    pp = idata.posterior_predictive["y"]
    fam, arrays = design.family, design.arrays
    obs = np.asarray(design.y, dtype=float)
    val_obs = fam.ppc_scale(obs, arrays)
    masks: dict[str, np.ndarray] = {}
    for g in GROUPS:
        is_g = design.treated == (1 if g == "nbi" else 0)
        for t, lab in enumerate(design.coords["period"]):
            masks[f"ppp_total_{g}_{lab}"] = is_g & (design.period_idx == t)
    periods = {f"ppp_var_{lab}": design.period_idx == t for t, lab in enumerate(design.coords["period"])}
    # each statistic per replicate, a block of draws at a time (row-wise: same numbers)
    stats: dict[str, list[np.ndarray]] = {k: [] for k in (*masks, *periods)}
    for sl in draw_chunks(pp.to_dataset(), design.n_obs):
        rep = pp.isel(draw=sl).values
        rep = rep.reshape(-1, rep.shape[-1]).astype(float)
        val_rep = fam.ppc_scale(rep, arrays)
        for k, m in masks.items():
            stats[k].append(fam.ppc_total(rep, arrays, m))
        for k, m in periods.items():
            stats[k].append(np.var(val_rep[:, m], axis=1))
    # a p-value is a mean over the replicates: the order of the blocks does not matter
    flat = {k: np.concatenate(v) for k, v in stats.items()}
    out: dict[str, float] = {}

    def p(t_rep, t_obs):
        return float(np.mean(t_rep > t_obs) + 0.5 * np.mean(t_rep == t_obs))

    for k, m in masks.items():
        out[k] = p(flat[k], fam.ppc_total(obs, arrays, m))
    for k, m in periods.items():
        out[k] = p(flat[k], np.var(val_obs[m]))
    return out


PRIOR_COLUMNS = ("quantity", "variable", "prior", "prior_sensitivity", "likelihood_sensitivity",
                 "sd_ratio", "diagnosis")
"""Columns of :func:`prior_sensitivity`."""


def _sensitivity_quantities(post, design: Design) -> list[str]:
    """The quantities checked for prior sensitivity: the DiD, each covariate x treatment
    effect, and each variance component present."""
    names = ["did"]
    if "beta_mod" in post:
        names.append("beta_mod")
    names += [v for v in ("sigma_ward", "sigma_change", "sigma_change_nbi", "sigma_change_benchmark",
                          "sigma_pair", "sigma_od", "sigma_wp", "sigma_wp_nbi", "sigma_wp_benchmark")
              if v in post]
    return names


def prior_sensitivity(idata: InferenceData, design: Design, priors, config=None) -> pd.DataFrame:
    """Power-scaling prior and likelihood sensitivity of the DiD and each variance component.

    Power-scaling (Kallioinen, Paananen, Buerkner and Vehtari 2024, the method of the R
    package priorsense) raises the prior, or the likelihood, to a power close to 1 and
    measures with Pareto-smoothed importance weights how far the posterior moves
    (cumulative Jensen-Shannon distance per unit of log2 power; ``az.psens``).  The
    prior is the joint prior of the model's top-level parameters (the ``log_prior``
    group, :func:`nbdid.models.model.log_prior`), the likelihood every observation's
    (``log_likelihood``).  No refit is needed.

    Parameters
    ----------
    idata
        A fit with ``posterior``, ``log_prior`` and ``log_likelihood`` groups.
    design
        The design it was fitted to.
    priors
        The fit's resolved :class:`nbdid.config.Priors` (for the prior SDs).
    config
        :class:`nbdid.config.DiagnosticsConfig` (its ``prior_sensitivity`` threshold).

    Returns
    -------
    pandas.DataFrame
        One row per quantity (and element of a vector): :data:`PRIOR_COLUMNS`.
        ``sd_ratio`` is the posterior SD over the prior SD (near 1: the data taught
        little); ``diagnosis`` is ``"ok"``, ``"prior-dominated"`` (prior sensitivity
        at or above the threshold, likelihood sensitivity below it) or ``"prior-data
        conflict"`` (both at or above it).
    """
    # imported here: ArviZ takes seconds to import (xarray, scipy, matplotlib); only fitted results need it
    import arviz as az

    cfg = config or DiagnosticsConfig()
    post = idata.posterior
    names = _sensitivity_quantities(post, design)
    with warnings.catch_warnings():
        # psislw warns on few draws or degenerate weights; the sensitivities are still
        # the diagnostic's values, and the gate reads them
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        ps = az.psens(idata, component="prior", var_names=names)
        ls = az.psens(idata, component="likelihood", var_names=names)
    if len(names) == 1:  # ArviZ returns a DataArray for a single variable
        ps, ls = ps.to_dataset(name=names[0]), ls.to_dataset(name=names[0])
    key_of = {v: k for k, vs in PRIOR_VARIABLES.items() for v in vs}
    rows = []
    thr = cfg.prior_sensitivity
    for name in names:
        key = key_of.get(name, name)
        prior = getattr(priors, key, None) if priors is not None else None
        psd = prior_sd(prior) if prior is not None else np.nan
        pv, lv = np.atleast_1d(ps[name].values), np.atleast_1d(ls[name].values)
        x = post[name].values.reshape(post[name].shape[:2] + (-1,))
        for i in range(pv.size):
            sd = float(np.std(x[..., i], ddof=1))
            p_i, l_i = float(pv[i]), float(lv[i])
            if p_i >= thr and l_i >= thr:
                diag = "prior-data conflict"
            elif p_i >= thr:
                diag = "prior-dominated"
            else:
                diag = "ok"
            label = name if pv.size == 1 else f"{name}[{_element_label(post[name], i)}]"
            rows.append({"quantity": label, "variable": name, "prior": "" if prior is None else str(prior),
                         "prior_sensitivity": p_i, "likelihood_sensitivity": l_i,
                         "sd_ratio": sd / psd if np.isfinite(psd) and psd > 0 else 0.0,
                         "diagnosis": diag})
    return pd.DataFrame(rows, columns=list(PRIOR_COLUMNS))


def _element_label(da, i: int) -> str:
    dims = [d for d in da.dims if d not in ("chain", "draw")]
    if len(dims) == 1 and dims[0] in da.coords:
        return str(da.coords[dims[0]].values[i])
    return str(i)


def loo_summary(idata: InferenceData, *, reff: float | None = None) -> dict[str, float]:
    """PSIS-LOO of a fit (``az.loo`` on its ``log_likelihood``), with its Pareto k.

    Returns
    -------
    dict
        ``elpd_loo``, ``elpd_loo_se``, ``p_loo``, ``pareto_k_max`` and ``pareto_k_high``
        (observations with k > 0.7, whose LOO estimate is unreliable: with a ward
        change and two periods each observation has its own effect, so expect many;
        compare structures with leave-one-ward-out cross-validation then).
    """
    # imported here: ArviZ takes seconds to import (xarray, scipy, matplotlib); only fitted results need it
    import arviz as az

    with warnings.catch_warnings():
        # az.loo warns when some Pareto k > 0.7; pareto_k_high reports it instead
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        loo = az.loo(idata, pointwise=True, reff=reff)
    k = np.asarray(loo.pareto_k)
    return {"elpd_loo": float(loo.elpd_loo), "elpd_loo_se": float(loo.se), "p_loo": float(loo.p_loo),
            "pareto_k_max": float(np.nanmax(k)), "pareto_k_high": int(np.sum(k > 0.7))}


def diagnose(idata: InferenceData, design: Design, config=None, *, priors=None) -> pd.DataFrame:
    """One-row diagnostics table of a fit, with the gate verdict.

    Parameters
    ----------
    idata
        Fitted InferenceData (``posterior`` and ``sample_stats``).
    design
        The design it was fitted to.
    config
        :class:`nbdid.config.DiagnosticsConfig` (default thresholds when ``None``).
    priors
        The fit's resolved :class:`nbdid.config.Priors`; with them (and the fit's
        ``log_prior`` and ``log_likelihood`` groups) the prior sensitivity of the DiD
        and each variance component is checked (:func:`prior_sensitivity`).

    Returns
    -------
    pandas.DataFrame
        Columns ``indicator, rhat_max, ess_bulk_min, ess_tail_min, divergences,
        bfmi_min, ppp_min, ppp_max, passed, reasons, gate`` plus every ``ppp_*`` value;
        with a ``log_likelihood`` group the PSIS-LOO columns of :func:`loo_summary`;
        with priors ``did_prior_sensitivity, did_likelihood_sensitivity, did_sd_ratio``,
        ``prior_flags`` (every prior-dominated or conflicted quantity, gate-failing or
        not), ``prior_gate`` (the prior reasons among ``reasons``, empty when the prior
        check passes: the mark tables and figures show) and one ``psens_<quantity>``
        column per quantity
        (``"<prior sensitivity>/<likelihood sensitivity>"``).
    """
    # imported here: ArviZ takes seconds to import (xarray, scipy, matplotlib); only fitted results need it
    import arviz as az

    cfg = config or DiagnosticsConfig()
    names = _checked_vars(idata)
    # ArviZ's rank R-hat and bulk/tail ESS, computed for all elements at once
    conv = convergence_summary(idata.posterior, names)
    rhat_max = conv["rhat_max"]
    ess_bulk_min = conv["ess_bulk_min"]
    ess_tail_min = conv["ess_tail_min"]
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
    extra: dict[str, object] = {}
    groups = idata.groups()
    if "log_likelihood" in groups:
        n = idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"]
        # the mean over variables of each variable's mean bulk ESS, relative to the draws
        reff = float(np.clip(conv["ess_bulk_mean"] / n, 0.05, 1.0)) if idata.posterior.sizes["chain"] > 1 else 1.0
        extra.update(loo_summary(idata, reff=reff))
    if priors is not None and "log_prior" in groups and "log_likelihood" in groups:
        ps = prior_sensitivity(idata, design, priors, cfg)
        did = ps[ps["quantity"] == "did"].iloc[0]
        extra.update(did_prior_sensitivity=float(did["prior_sensitivity"]),
                     did_likelihood_sensitivity=float(did["likelihood_sensitivity"]),
                     did_sd_ratio=float(did["sd_ratio"]))
        flagged = ps[ps["diagnosis"] != "ok"]
        extra["prior_flags"] = "; ".join(
            f"{r.diagnosis}: {r.quantity} (prior {r.prior}; sensitivity prior {r.prior_sensitivity:.3f}, "
            f"likelihood {r.likelihood_sensitivity:.3f}; posterior/prior sd {r.sd_ratio:.2f})"
            for r in flagged.itertuples())
        for r in ps.itertuples():
            extra[f"psens_{r.quantity}"] = f"{r.prior_sensitivity:.3f}/{r.likelihood_sensitivity:.3f}"
        gating = flagged if cfg.prior_check == "all" else (
            flagged[flagged["variable"].isin(["did", "beta_mod"])] if cfg.prior_check == "did"
            else flagged.iloc[0:0])
        prior_reasons = []
        for r in gating.itertuples():
            what = "prior dominates" if r.diagnosis == "prior-dominated" else "prior-data conflict for"
            prior_reasons.append(f"{what} {r.quantity} (prior {r.prior}, sensitivity "
                                 f"{r.prior_sensitivity:.2f}/{r.likelihood_sensitivity:.2f})")
        reasons += prior_reasons
        extra["prior_gate"] = "; ".join(prior_reasons)
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
        **extra,
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
