"""Tables behind the figures: ward changes, pair differences, PPC statistics, verdicts.

Posteriors are built by hand (``az.from_dict``) on small simulated designs; no MCMC.
"""

from __future__ import annotations

import dataclasses

import arviz as az
import numpy as np
import pandas as pd
import pytest

from nbdid.analysis.comparison import report_did_table
from nbdid.analysis.diagnostics import ppc_pvalues, ppc_replicates
from nbdid.analysis.estimands import effect_draws
from nbdid.analysis.figure_tables import (
    PPC_COLUMNS,
    forest_table,
    ppc_statistics,
    ppc_values,
    verdict,
)
from nbdid.analysis.sensitivity import add_conclusions, conclusion
from nbdid.analysis.wards import (
    GROUP_CHANGE_COLUMNS,
    PAIR_DIFFERENCE_COLUMNS,
    WARD_CHANGE_COLUMNS,
    group_change_table,
    pair_difference_table,
    ward_change_table,
)
from nbdid.models.design import build_design
from nbdid.models.simulate import simulate_panel
from nbdid.registry import INDICATORS

N_PAIRS = 5


def _design(family: str = "poisson", *, pair_effects: bool = True, seed: int = 1):
    panel, _ = simulate_panel(family, n_pairs=N_PAIRS, did=0.1, seed=seed)
    key = str(panel["indicator"].iloc[0])
    return build_design(panel, key, family, pair_effects=pair_effects)


def _posterior(design, *, chains: int = 2, draws: int = 50, sd: float = 0.05, seed: int = 0):
    """A hand-made posterior with every variable the linear predictor reads."""
    rng = np.random.default_rng(seed)
    n_w = len(design.coords["ward"])
    n_p = len(design.coords["period"])
    shape = (chains, draws)
    level = design.family.empirical_link(design.arrays)
    base = np.array([level[(design.ward_idx == w) & (design.post == 0)].mean() for w in range(n_w)])
    post = np.array([level[(design.ward_idx == w) & (design.post == 1)].mean() for w in range(n_w)])
    change = post - base
    nbi = design.ward_group == "nbi"
    did = change[nbi].mean() - change[~nbi].mean()
    common = change[~nbi].mean()
    ward_change = change - common - did * nbi
    noise = lambda *s: sd * rng.standard_normal(shape + s)  # noqa: E731
    pe = np.zeros(shape + (n_p,))
    pe[..., 1:] = common + noise(n_p - 1)
    return az.from_dict(
        posterior={
            "ward_level": base + noise(n_w), "ward_change": ward_change + noise(n_w),
            "period_effect": pe, "did": did + noise(), "sigma_ward": 0.3 + np.abs(noise()),
            "sigma_change": 0.1 + np.abs(noise()), "ward_effect": noise(n_w),
        },
        coords={"ward": design.coords["ward"], "period": design.coords["period"]},
        dims={"ward_level": ["ward"], "ward_change": ["ward"], "ward_effect": ["ward"],
              "period_effect": ["period"]},
    )


@pytest.mark.parametrize("family", ["poisson", "binomial", "price"])
def test_ward_changes_follow_the_posterior_and_the_data(family: str) -> None:
    design = _design(family)
    idata = _posterior(design, sd=1e-9)  # (almost) no posterior spread
    w = ward_change_table(idata, design)
    assert list(w.columns) == list(WARD_CHANGE_COLUMNS)
    assert len(w) == 2 * N_PAIRS and set(w["group"]) == {"nbi", "benchmark"}
    assert (w["q2.5"] <= w["mean"]).all() and (w["mean"] <= w["q97.5"]).all()
    # the posterior sits at the observed link values, so each ward's change is the
    # change of its observed value on the expected-value scale
    np.testing.assert_allclose(w["mean"], w["observed"], rtol=1e-5, atol=1e-6)
    mult = INDICATORS[design.indicator].multiplier
    fam, arr = design.family, design.arrays
    obs = fam.expected(fam.empirical_link(arr), arr) * mult
    for i, ward in enumerate(design.coords["ward"]):
        pre = obs[(design.ward_idx == i) & (design.post == 0)][0]
        post = obs[(design.ward_idx == i) & (design.post == 1)][0]
        assert w.loc[w.ward == str(ward), "observed"].iloc[0] == pytest.approx(post - pre)
    assert w["pair"].notna().all() and w["synthetic"].all()


def test_group_changes_are_the_estimands_and_pairs_difference_the_wards() -> None:
    design = _design("poisson")
    idata = _posterior(design, sd=0.05)
    g = group_change_table(idata, design)
    assert list(g.columns) == list(GROUP_CHANGE_COLUMNS) and list(g["group"]) == ["nbi", "benchmark"]
    eff = effect_draws(idata, design)
    assert g["mean"].iloc[0] == pytest.approx(float(eff["change_nbi"].mean()))
    assert g["mean"].iloc[1] == pytest.approx(float(eff["change_benchmark"].mean()))
    w = ward_change_table(idata, design).set_index("ward")
    p = pair_difference_table(idata, design)
    assert list(p.columns) == list(PAIR_DIFFERENCE_COLUMNS) and len(p) == N_PAIRS
    for _, r in p.iterrows():
        d = w.loc[r.nbi_ward, "mean"] - w.loc[r.benchmark_wards, "mean"]
        assert r["mean"] == pytest.approx(d, rel=1e-9, abs=1e-9)
        assert r["conclusion"] == conclusion(r["q2.5"], r["q97.5"], lower_is_better=True)
        assert 0.0 <= r["prob_benefit"] <= 1.0
    # crime falling more in the NBI ward is a benefit
    assert ((p["mean"] < 0) == (p["prob_benefit"] > 0.5)).all()
    # without pair effects the pairs come from the panel rows (design.frame)
    nopairs = _design("poisson", pair_effects=False)
    p2 = pair_difference_table(_posterior(nopairs), nopairs)
    assert len(p2) == N_PAIRS
    bare = dataclasses.replace(nopairs, frame=None)
    with pytest.raises(ValueError, match="which wards are paired"):
        pair_difference_table(_posterior(bare), bare)


@pytest.mark.parametrize("family", ["poisson", "price"])
def test_ppc_statistics_are_the_gates_p_values(family: str) -> None:
    design = _design(family, seed=4)
    idata = ppc_replicates(_posterior(design, sd=0.05), design, seed=3)
    s = ppc_statistics(idata, design)
    assert list(s.columns) == list(PPC_COLUMNS)
    ppp = ppc_pvalues(idata, design)
    got = s.groupby("statistic", sort=False)["p_value"].first().to_dict()
    assert got == pytest.approx(ppp)
    n_draws = idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"]
    assert (s.groupby("statistic").size() == n_draws).all()
    assert set(s["kind"]) == {"total", "variance"}
    # the p-value is recomputable from the replicated column
    one = s[s.statistic == s.statistic.iloc[0]]
    rep, obs = one["replicated"].to_numpy(), one["observed"].iloc[0]
    assert one["p_value"].iloc[0] == pytest.approx(np.mean(rep > obs) + 0.5 * np.mean(rep == obs))


# what each family's values are on the indicator's own scale, from the design's arrays
OWN_SCALE = {
    "poisson": lambda a, y: y / a["exposure"],  # a rate per unit of exposure
    "binomial": lambda a, y: y / a["exposure"],  # a share of the trials
    "price": lambda a, y: y,  # the mean log price
    "gaussian": lambda a, y: y,  # the value
}
OBSERVED = {"poisson": "count", "binomial": "count", "price": "mean_log_price", "gaussian": "value"}


@pytest.mark.parametrize("family", sorted(OWN_SCALE))
def test_ppc_values_are_on_the_indicators_own_scale(family: str) -> None:
    design = _design(family, seed=2)
    idata = ppc_replicates(_posterior(design, sd=0.05), design, seed=3)
    v = ppc_values(idata, design)
    a = {k: np.asarray(x, dtype=float) for k, x in design.arrays.items()}
    rep = idata.posterior_predictive["y"].values.astype(float)
    periods = [str(p) for p in design.coords["period"]]
    names = [f"{g}_{p}" for g in ("nbi", "benchmark") for p in periods]
    assert list(v.observed_data.data_vars) == names
    assert list(v.posterior_predictive.data_vars) == names
    attrs = v.observed_data.attrs
    assert attrs["indicator"] == design.indicator and attrs["family"] == family
    assert attrs["value_label"] == design.family.value_label
    assert attrs["groups"].split(",") == ["nbi"] * len(periods) + ["benchmark"] * len(periods)
    assert attrs["periods"].split(",") == periods * 2
    assert attrs["synthetic"] == int(design.synthetic)
    wards = np.asarray(design.coords["ward"])[design.ward_idx]
    for name in names:
        g, p = name.split("_")
        m = (design.treated == (g == "nbi")) & (design.period_idx == periods.index(p))
        assert m.sum() == N_PAIRS
        np.testing.assert_allclose(v.observed_data[name].values,
                                   OWN_SCALE[family](
                                       {k: x[m] for k, x in a.items()}, a[OBSERVED[family]][m]))
        # every replicated data set (2 chains x 50 draws: all kept), on the same scale
        np.testing.assert_allclose(v.posterior_predictive[name].values,
                                   OWN_SCALE[family]({k: x[m] for k, x in a.items()}, rep[..., m]))
        assert list(v.observed_data[name].coords[f"{name}_ward"].values) == list(wards[m])
        assert v.observed_data[name].attrs["label"].endswith(p)
    if family == "binomial":
        assert all(0 <= float(v.posterior_predictive[n].min()) and float(v.posterior_predictive[n].max()) <= 1
                   for n in names)
    # fewer replicated data sets on request: evenly spaced draws of every chain
    few = ppc_values(idata, design, max_draws=10)
    assert few.posterior_predictive.sizes["chain"] == 2 and few.posterior_predictive.sizes["draw"] == 5
    np.testing.assert_allclose(few.observed_data[names[0]].values, v.observed_data[names[0]].values)


def test_ppc_values_draws_replicates_when_the_fit_has_none() -> None:
    design = _design("poisson")
    v = ppc_values(_posterior(design), design)
    assert v.posterior_predictive.sizes["chain"] * v.posterior_predictive.sizes["draw"] == 100
    assert len(v.posterior_predictive.data_vars) == 4
    assert all(np.isfinite(x.values).all() for x in v.posterior_predictive.data_vars.values())


def test_forest_table_reads_the_comparisons_verdicts() -> None:
    rep = report_did_table()
    comp = rep.assign(
        title="t", unit="u", posterior_did=0.0, **{"posterior_q2.5": -1.0, "posterior_q97.5": 1.0},
        prob_benefit=0.5, posterior_significant=[True, True] + [False] * (len(rep) - 2),
        posterior_better=[True, False] + [True] * (len(rep) - 2), gate="passed",
    )
    t = forest_table(comp)
    assert list(t["conclusion"][:3]) == ["benefit", "harm", "unclear"]
    expect = [verdict(s, b) for s, b in zip(rep.report_significant, rep.report_better, strict=True)]
    assert list(t["report_conclusion"]) == expect
    assert verdict(pd.NA, True) == "unclear"


def test_add_conclusions_uses_each_indicators_direction() -> None:
    r = pd.DataFrame({"indicator": ["crime", "property_price", "crime", "unknown_key"],
                      "lower": [-3.0, -3.0, np.nan, 1.0], "upper": [-1.0, -1.0, 2.0, 2.0]})
    out = add_conclusions(r)
    assert list(out["conclusion"]) == ["benefit", "harm", "not fitted", "benefit"]
    assert "conclusion" not in r.columns  # a copy
