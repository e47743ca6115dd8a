"""Estimands of a fitted DiD model, from posterior draws to tidy tables.

Functions here return DataFrames or xarray objects and never draw.

Two kinds of treatment effect are reported (see ``docs/models.md``):

ward-conditional
    ``did`` on the link scale and ``exp(did)``: the odds ratio (binomial), rate ratio
    (Poisson) or price ratio (prices) for a *typical* ward (one with given ward and
    pair effects).  Scale ``link`` and ``odds_ratio`` / ``rate_ratio`` /
    ``price_ratio``.
population-averaged
    The NBI group's post-period pooled value (each ward's predicted value with its own
    effects, weighted by its exposure -- trials, population, households or
    transactions -- exactly like the report's pooled rates) minus the same pooled value
    with the interaction removed.  In the indicator's own unit (percentage points, per
    1,000, pounds, per 10,000) and in percent of the counterfactual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from nbdid.families import Family, get_family
from nbdid.models.design import Design
from nbdid.models.model import draw_chunks, expected
from nbdid.registry import GROUPS, INDICATORS

if TYPE_CHECKING:
    from arviz import InferenceData

SUMMARY_COLUMNS = ["indicator", "estimand", "scale", "mean", "sd", "q2.5", "q97.5", "prob_benefit"]


def indicator_unit(indicator: str, family: str | Family) -> tuple[float, str]:
    """Multiplier and scale label of an indicator's own unit.

    Registry indicators use their multiplier; the label is ``"pp"`` (percentage
    points) for percentages, ``"£"`` for prices and the registry unit otherwise (e.g.
    ``"per 1,000 population"``).  Other keys get their family's default
    (:attr:`nbdid.families.Family.default_multiplier` and ``default_unit``: 100 / ``"pp"``
    for binomial, 1,000 / ``"per 1,000"`` for Poisson, 1 / ``"£"`` for prices).
    """
    ind = INDICATORS.get(indicator)
    if ind is not None:
        if ind.unit == "%":
            return ind.multiplier, "pp"
        return ind.multiplier, ind.unit
    fam = get_family(family)
    return fam.default_multiplier, fam.default_unit


def _weights(design: Design) -> np.ndarray:
    return design.weights


def _pooled(values: np.ndarray, w: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.sum(values[..., mask] * w[mask], axis=-1) / np.sum(w[mask])


def group_period_values(idata: InferenceData, design: Design, *, multiplier: float | None = None) -> xr.DataArray:
    """Posterior of each group's pooled value per period (for trajectories).

    The pooled value is the exposure-weighted mean of the wards' predicted values
    (with their own effects), times ``multiplier``: a percentage, a rate per 1,000 or
    10,000, or an arithmetic mean price in pounds weighted by transactions.

    Returns
    -------
    xarray.DataArray
        Dims ``(chain, draw, group, period)``.
    """
    mult = indicator_unit(design.indicator, design.family)[0] if multiplier is None else multiplier
    post = idata.posterior
    w = _weights(design)
    n_period = len(design.coords["period"])
    out = np.empty((post.sizes["chain"], post.sizes["draw"], len(GROUPS), n_period))
    for sl in draw_chunks(post, design.n_obs):
        ev = expected(post.isel(draw=sl), design)
        for gi, g in enumerate(GROUPS):
            is_g = design.treated == (1 if g == "nbi" else 0)
            for t in range(n_period):
                out[:, sl, gi, t] = mult * _pooled(ev, w, is_g & (design.period_idx == t))
    return xr.DataArray(
        out,
        dims=("chain", "draw", "group", "period"),
        coords={
            "chain": post["chain"].values,
            "draw": post["draw"].values,
            "group": list(GROUPS),
            "period": list(design.coords["period"]),
        },
        name=f"{design.indicator}_pooled",
    )


def effect_draws(idata: InferenceData, design: Design, *, multiplier: float | None = None) -> xr.Dataset:
    """Posterior draws of every estimand (an xarray Dataset, dims ``chain, draw``).

    Variables: ``did_link``, ``did_ratio`` (``exp(did)``), ``did_unit`` (population
    averaged, own unit), ``did_percent`` (population averaged, percent of the
    counterfactual), ``change_nbi`` and ``change_benchmark`` (pooled post minus pooled
    pre, own unit) and ``diff_in_change`` (their difference).
    """
    mult = indicator_unit(design.indicator, design.family)[0] if multiplier is None else multiplier
    post = idata.posterior
    w = _weights(design)
    treated_post = (design.treated == 1) & (design.post == 1)
    shape = (post.sizes["chain"], post.sizes["draw"])
    actual, counterfactual = np.empty(shape), np.empty(shape)
    changes = {g: np.empty(shape) for g in GROUPS}
    for sl in draw_chunks(post, design.n_obs):  # blocks of draws: bounded memory, same numbers
        part = post.isel(draw=sl)
        ev = expected(part, design)
        actual[:, sl] = _pooled(ev, w, treated_post)
        for g in GROUPS:
            is_g = design.treated == (1 if g == "nbi" else 0)
            changes[g][:, sl] = mult * (
                _pooled(ev, w, is_g & (design.post == 1)) - _pooled(ev, w, is_g & (design.post == 0))
            )
        del ev
        counterfactual[:, sl] = _pooled(expected(part, design, counterfactual=True), w, treated_post)
    dims = ("chain", "draw")
    coords = {"chain": post["chain"].values, "draw": post["draw"].values}
    data = {
        "did_link": (dims, post["did"].values),
        "did_ratio": (dims, np.exp(post["did"].values)),
        "did_unit": (dims, mult * (actual - counterfactual)),
        "did_percent": (dims, 100.0 * (actual / counterfactual - 1.0)),
        "change_nbi": (dims, changes["nbi"]),
        "change_benchmark": (dims, changes["benchmark"]),
        "diff_in_change": (dims, changes["nbi"] - changes["benchmark"]),
    }
    return xr.Dataset(data, coords=coords)


def _row(indicator, estimand, scale, x, benefit=None) -> dict:
    x = np.asarray(x).ravel()
    q = np.quantile(x, [0.025, 0.975])
    return {
        "indicator": indicator,
        "estimand": estimand,
        "scale": scale,
        "mean": float(np.mean(x)),
        "sd": float(np.std(x, ddof=1)),
        "q2.5": float(q[0]),
        "q97.5": float(q[1]),
        "prob_benefit": np.nan if benefit is None else float(np.mean(benefit(x))),
    }


def summarise_effects(
    idata: InferenceData,
    design: Design,
    *,
    lower_is_better: bool | None = None,
    multiplier: float | None = None,
) -> pd.DataFrame:
    """Tidy summary of the DiD estimands.

    Parameters
    ----------
    idata
        Fitted InferenceData.
    design
        The design it was fitted to.
    lower_is_better
        Direction of benefit (default: the registry's, or False for unknown keys).
    multiplier
        Override the indicator's unit multiplier.

    Returns
    -------
    pandas.DataFrame
        Columns ``indicator, estimand, scale, mean, sd, q2.5, q97.5, prob_benefit``.
        ``prob_benefit`` is the posterior probability that the NBI group did better
        (NaN where not meaningful).  Rows: ``did``/``link``; ``did``/ratio scale;
        ``did``/own unit (population averaged); ``did``/``percent`` (the ratio and
        percent rows only for families with a ratio scale, i.e. not on an identity
        link); ``did_additive``/own unit (non-identity links: the DiD under *additive*
        parallel trends on the natural scale, i.e. the NBI group's pooled change minus
        the benchmark group's, beside the headline ``did``/own unit, which assumes
        parallel trends on the link scale, multiplicative for a log link);
        ``change_nbi``, ``change_benchmark`` and ``diff_in_change`` in the own unit;
        with covariates ``covariate:<name>`` and ``covariate_x_post:<name>`` (link
        scale, per SD of the covariate) and, for interacted ones,
        ``did_modification:<name>`` (the change of the link-scale DiD per SD of the
        covariate); for an event study ``did_period:<label>``/``link`` for every
        non-reference period.
    """
    ind = design.indicator
    if lower_is_better is None:
        lower_is_better = INDICATORS[ind].lower_is_better if ind in INDICATORS else False
    mult, unit = indicator_unit(ind, design.family)
    if multiplier is not None:
        mult = multiplier
    ratio = design.family.ratio_scale

    def better(x):
        return x < 0 if lower_is_better else x > 0

    def better_ratio(x):
        return x < 1 if lower_is_better else x > 1

    d = effect_draws(idata, design, multiplier=mult)
    rows = [_row(ind, "did", "link", d["did_link"].values, better)]
    if ratio is not None:
        rows.append(_row(ind, "did", ratio, d["did_ratio"].values, better_ratio))
    rows.append(_row(ind, "did", unit, d["did_unit"].values, better))
    if ratio is not None:
        rows.append(_row(ind, "did", "percent", d["did_percent"].values, better))
    if design.family.link != "identity":
        rows.append(_row(ind, "did_additive", unit, d["diff_in_change"].values, better))
    rows += [
        _row(ind, "change_nbi", unit, d["change_nbi"].values, better),
        _row(ind, "change_benchmark", unit, d["change_benchmark"].values, better),
        _row(ind, "diff_in_change", unit, d["diff_in_change"].values, better),
    ]
    post = idata.posterior
    for j, cov in enumerate(design.covariates):
        rows.append(_row(ind, f"covariate:{cov}", "link", post["beta_cov"].values[..., j]))
        rows.append(_row(ind, f"covariate_x_post:{cov}", "link", post["beta_cov_post"].values[..., j]))
    for j, cov in enumerate(design.interact):
        rows.append(_row(ind, f"did_modification:{cov}", "link", post["beta_mod"].values[..., j], better))
    if design.event_study:
        dp = idata.posterior["did_period"]
        for i, lab in enumerate(design.coords["period"]):
            if i != design.reference_period:
                rows.append(
                    _row(ind, f"did_period:{lab}", "link", dp.isel(period=i).values, better)
                )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def pretrend_summary(idata: InferenceData, design: Design, *, threshold: float = 0.05) -> pd.DataFrame:
    """Pre-trend check of an event-study fit.

    Summarises the treatment x period effects of the pre periods other than the
    reference (link scale): the posterior of ``max |effect|`` and the joint posterior
    probability that every pre-period effect is within ``+/- threshold``.

    Returns
    -------
    pandas.DataFrame
        One row: ``indicator, n_pre, max_abs_mean, max_abs_q2.5, max_abs_q97.5,
        prob_all_within, threshold`` (``n_pre`` is 0 and the rest NaN when there is no
        pre period besides the reference).
    """
    if not design.event_study:
        raise ValueError("pretrend_summary needs an event-study fit (event_study = true)")
    pre = [
        i for i in range(len(design.coords["period"]))
        if design.period_post[i] == 0 and i != design.reference_period
    ]
    row = {"indicator": design.indicator, "n_pre": len(pre), "threshold": threshold}
    if not pre:
        row.update({"max_abs_mean": np.nan, "max_abs_q2.5": np.nan, "max_abs_q97.5": np.nan,
                    "prob_all_within": np.nan})
        return pd.DataFrame([row])
    eff = idata.posterior["did_period"].isel(period=pre).values
    m = np.abs(eff).max(axis=-1).ravel()
    row.update({
        "max_abs_mean": float(m.mean()),
        "max_abs_q2.5": float(np.quantile(m, 0.025)),
        "max_abs_q97.5": float(np.quantile(m, 0.975)),
        "prob_all_within": float(np.mean(m < threshold)),
    })
    return pd.DataFrame([row])


def trajectory_table(idata: InferenceData, design: Design, *, multiplier: float | None = None) -> pd.DataFrame:
    """Tidy posterior summary of each group's pooled value per period.

    Returns
    -------
    pandas.DataFrame
        Columns ``indicator, group, period, period_label, mean, sd, q2.5, q97.5``.
    """
    gp = group_period_values(idata, design, multiplier=multiplier)
    flat = gp.stack(sample=("chain", "draw"))
    rows = []
    for g in GROUPS:
        for t, lab in enumerate(design.coords["period"]):
            x = flat.sel(group=g, period=lab).values
            rows.append({
                "indicator": design.indicator, "group": g, "period": t, "period_label": lab,
                "mean": float(x.mean()), "sd": float(x.std(ddof=1)),
                "q2.5": float(np.quantile(x, 0.025)), "q97.5": float(np.quantile(x, 0.975)),
            })
    return pd.DataFrame(rows)
