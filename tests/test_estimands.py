"""Estimands checked against hand computations from the posterior draws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbdid.analysis.estimands import (
    effect_draws,
    group_period_values,
    summarise_effects,
    trajectory_table,
)
from nbdid.config import RunConfig, SamplerConfig
from nbdid.models.simulate import simulate_panel
from nbdid.workflow.fit import fit as fit_indicator

pytestmark = pytest.mark.filterwarnings(
    "ignore:PyTensor could not link to a BLAS installation:UserWarning"
)

TINY = RunConfig(sampler=SamplerConfig(draws=300, tune=300, chains=2, seed=11))


@pytest.fixture(scope="module", params=["binomial", "poisson", "price"])
def fitted(request):
    # same shapes as tests/test_models_fit.py, so the compiled models are shared
    panel, truth = simulate_panel(request.param, n_pairs=15, did=-0.5, seed=6)
    key = panel["indicator"].iloc[0]
    return request.param, panel, fit_indicator(panel, key, config=TINY)


def _hand_values(panel: pd.DataFrame, post, family: str, counterfactual: bool) -> np.ndarray:
    """Per draw x row natural-scale expected values, by label lookup (draws, rows)."""
    draws = post.stack(sample=("chain", "draw"))
    wl = draws["ward_level"].sel(ward=panel["ward"].to_numpy()).values.T  # (S, rows)
    labels = panel["period_label"].astype(str).to_numpy()
    pe = draws["period_effect"].sel(period=labels).values.T
    wc = draws["ward_change"].sel(ward=panel["ward"].to_numpy()).values.T
    eta = wl + pe + wc * panel["post"].to_numpy()
    if not counterfactual:
        t = (panel["group"] == "nbi").to_numpy() & (panel["post"] == 1).to_numpy()
        eta = eta + draws["did"].values[:, None] * t
    if family == "binomial":
        return 1 / (1 + np.exp(-eta))
    if family == "poisson":
        return np.exp(eta)
    sd = panel["sd_log_price"].to_numpy()  # n >= 10 in this simulation: own SD is used
    assert (panel["n"] >= 10).all()
    return np.exp(eta + sd**2 / 2)


def test_population_averaged_did_by_hand(fitted):
    family, panel, res = fitted
    mult = {"binomial": 100.0, "poisson": 1000.0, "price": 1.0}[family]
    w = (panel["n"] if family == "price" else panel["exposure"]).astype(float).to_numpy()
    m = ((panel["group"] == "nbi") & (panel["post"] == 1)).to_numpy()
    post = res.idata.posterior
    v1 = _hand_values(panel, post, family, False)
    v0 = _hand_values(panel, post, family, True)
    a = (v1[:, m] * w[m]).sum(1) / w[m].sum()
    c = (v0[:, m] * w[m]).sum(1) / w[m].sum()
    did_unit = mult * (a - c)
    did_pct = 100 * (a / c - 1)
    s = res.summary.set_index(["estimand", "scale"])
    unit = {"binomial": "pp", "poisson": "per 1,000 population", "price": "£"}[family]
    assert s.loc[("did", unit), "mean"] == pytest.approx(did_unit.mean(), rel=1e-9)
    assert s.loc[("did", unit), "q2.5"] == pytest.approx(np.quantile(did_unit, 0.025), rel=1e-9)
    assert s.loc[("did", "percent"), "mean"] == pytest.approx(did_pct.mean(), rel=1e-9)
    assert s.loc[("did", "link"), "sd"] == pytest.approx(post["did"].values.std(ddof=1), rel=1e-9)

    # group changes: pooled post minus pooled pre, per group
    for g in ("nbi", "benchmark"):
        pre = ((panel["group"] == g) & (panel["post"] == 0)).to_numpy()
        po = ((panel["group"] == g) & (panel["post"] == 1)).to_numpy()
        ch = mult * ((v1[:, po] * w[po]).sum(1) / w[po].sum() - (v1[:, pre] * w[pre]).sum(1) / w[pre].sum())
        assert s.loc[(f"change_{g}", unit), "mean"] == pytest.approx(ch.mean(), rel=1e-9)


def test_trajectories_match_observed_pooled_values(fitted):
    family, panel, res = fitted
    traj = trajectory_table(res.idata, res.design)
    mult = {"binomial": 100.0, "poisson": 1000.0, "price": 1.0}[family]
    for _, r in traj.iterrows():
        sub = panel[(panel["group"] == r["group"]) & (panel["period"] == r["period"])]
        if family == "price":
            obs = (sub["n"] * sub["mean_price"]).sum() / sub["n"].sum()
        else:
            obs = mult * sub["count"].sum() / sub["exposure"].sum()
        assert r["mean"] == pytest.approx(obs, rel=0.05)
    gp = group_period_values(res.idata, res.design)
    assert gp.dims == ("chain", "draw", "group", "period")


def test_ratio_and_probability(fitted):
    family, _, res = fitted
    d = effect_draws(res.idata, res.design)
    np.testing.assert_allclose(d["did_ratio"].values, np.exp(res.idata.posterior["did"].values))
    s = summarise_effects(res.idata, res.design, lower_is_better=True).set_index(["estimand", "scale"])
    p = float((res.idata.posterior["did"].values < 0).mean())
    assert s.loc[("did", "link"), "prob_benefit"] == pytest.approx(p)
    s2 = summarise_effects(res.idata, res.design, lower_is_better=False).set_index(["estimand", "scale"])
    assert s2.loc[("did", "link"), "prob_benefit"] == pytest.approx(1 - p)
    cols = ["indicator", "estimand", "scale", "mean", "sd", "q2.5", "q97.5", "prob_benefit"]
    assert list(summarise_effects(res.idata, res.design).columns) == cols
