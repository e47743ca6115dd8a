"""Fitting every family on simulated panels: recovery, reproducibility, compile-once refits.

Compiled models are shared through the process-wide cache, so each model structure is
compiled once for the whole test session.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nbdid.config import ModelConfig, RunConfig, SamplerConfig
from nbdid.models.sampling import shared_cache
from nbdid.models.simulate import simulate_panel
from nbdid.workflow.fit import fit as fit_indicator

# PyTensor warns once per process when it compiles C code without a BLAS library; it is
# a performance notice about the environment, not about our calls.
pytestmark = pytest.mark.filterwarnings(
    "ignore:PyTensor could not link to a BLAS installation:UserWarning"
)

N_PAIRS = 15
TINY = RunConfig(sampler=SamplerConfig(draws=300, tune=300, chains=2, seed=11))
TRUE_DID = -0.5


@pytest.fixture(scope="module", params=["binomial", "poisson", "price"])
def fitted(request):
    panel, truth = simulate_panel(request.param, n_pairs=N_PAIRS, did=TRUE_DID, seed=5)
    res = fit_indicator(panel, panel["indicator"].iloc[0], config=TINY)
    return request.param, panel, truth, res


def test_recovers_large_did(fitted):
    family, _, truth, res = fitted
    s = res.summary.set_index(["estimand", "scale"])
    link = s.loc[("did", "link")]
    assert link["q2.5"] < truth.did < link["q97.5"]
    assert link["q97.5"] < 0  # a large effect is detected
    unit = s.drop(index=[("did", "link"), ("did", "percent")], errors="ignore")
    pa = [r for (e, sc), r in unit.iterrows() if e == "did" and not sc.endswith("ratio")][0]
    assert pa["q2.5"] < truth.did_pa < pa["q97.5"]
    ratio_scale = {"binomial": "odds_ratio", "poisson": "rate_ratio", "price": "price_ratio"}
    ratio = s.loc[("did", ratio_scale[family])]
    expected = float(np.exp(res.idata.posterior["did"].values).mean())
    assert ratio["mean"] == pytest.approx(expected, rel=1e-9)
    # lower is better for benefits and crime: a fall is a benefit; prices: a fall is not
    if family == "price":
        assert link["prob_benefit"] < 0.05
    else:
        assert link["prob_benefit"] > 0.95


def test_outputs_carry_provenance_and_gate(fitted):
    _, panel, _, res = fitted
    attrs = res.idata.posterior.attrs
    assert attrs["nbdid_seed"] == "11"
    assert attrs["nbdid_synthetic"] == "true"
    assert "nbdid_config" in attrs and "version_pymc" in attrs
    assert res.idata.attrs["nbdid_data_sha256"] == attrs["nbdid_data_sha256"]
    # tiny draws cannot reach ESS 400: the gate must say so in every table
    assert not res.passed
    for t in (res.summary, res.trajectories):
        assert t["gate"].str.startswith("FAILED: ").all()
        assert t["synthetic"].all() and t["notice"].str.contains("SYNTHETIC").all()
    # coords are the panel's own labels
    assert set(res.idata.posterior["ward_level"].coords["ward"].values) == set(panel["ward"])
    assert list(res.idata.posterior["period_effect"].coords["period"].values) == ["2011", "2021"]
    np.testing.assert_array_equal(res.idata.observed_data["y"].values,
                                  res.design.data_arrays()["y_obs"])


def test_same_seed_same_numbers():
    panel, _ = simulate_panel("poisson", n_pairs=N_PAIRS, did=TRUE_DID, seed=5)
    a = fit_indicator(panel, "crime", config=TINY)
    b = fit_indicator(panel, "crime", config=TINY)
    np.testing.assert_array_equal(a.idata.posterior["did"].values, b.idata.posterior["did"].values)
    assert a.summary["mean"].tolist() == b.summary["mean"].tolist()


def test_refit_swaps_data_without_recompiling():
    cache = shared_cache()
    # one form for both panels: the automatic choice of centred or non-centred effects
    # depends on the data, and another form is another model structure
    tiny = dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, parameterization="centred"))
    p1, _ = simulate_panel("poisson", n_pairs=N_PAIRS, did=-0.5, seed=21)
    p1["indicator"] = "burglary"
    fit_indicator(p1, "burglary", config=tiny)  # compiled now, or earlier in the session
    before = cache.compile_count
    p2, _ = simulate_panel("poisson", n_pairs=N_PAIRS, did=0.5, seed=22)
    p2["ward"] = p2["ward"].str.replace("SIM", "NEW")
    p2["indicator"] = "burglary"
    r2 = fit_indicator(p2, "burglary", config=tiny)
    assert cache.compile_count == before
    assert r2.idata.posterior["did"].mean() > 0.2  # fitted to the new data, not the old
    assert all(str(w).startswith("NEW") for w in r2.idata.posterior["ward_level"].coords["ward"].values)
    # a different number of wards needs its own compiled model (nutpie cannot change the
    # number of parameters): the cache key differs
    from nbdid.models.design import build_design
    from nbdid.models.sampling import structure_key

    p3, _ = simulate_panel("poisson", n_pairs=N_PAIRS - 1, seed=23)
    mc = TINY.model
    k1 = structure_key(build_design(p1, "burglary", "poisson", parameterization="centred"), mc)
    p3["indicator"] = "burglary"
    k3 = structure_key(build_design(p3, "burglary", "poisson", parameterization="centred"), mc)
    assert k1 != k3 and k1[:-1] == k3[:-1]


def test_event_study_many_periods():
    panel, truth = simulate_panel("poisson", n_pairs=N_PAIRS, n_periods=4, first_post=2,
                                  did=TRUE_DID, seed=8)
    cfg = RunConfig(sampler=TINY.sampler, model=ModelConfig(event_study=True))
    res = fit_indicator(panel, "crime", config=cfg)
    dp = res.idata.posterior["did_period"]
    assert list(dp.coords["period"].values) == ["2011", "2016", "2021", "2026"]
    assert float(np.abs(dp.sel(period="2016")).max()) == 0.0  # reference period
    s = res.summary.set_index("estimand")
    assert {"did_period:2011", "did_period:2021", "did_period:2026"} <= set(s.index)
    post = s.loc[["did_period:2021", "did_period:2026"]]
    assert (post["q97.5"] < 0).all()
    pre = s.loc["did_period:2011"]
    # no pre-trend was simulated (the wards' random walks make pre-period noise
    # correlated, so check at ~99% rather than 95%)
    assert abs(pre["mean"]) < 2.6 * pre["sd"]

    from nbdid.analysis.estimands import pretrend_summary

    pt = pretrend_summary(res.idata, res.design, threshold=0.5).iloc[0]
    assert pt["n_pre"] == 1
    assert pt["prob_all_within"] > 0.9


def test_pymc_backend():
    panel, truth = simulate_panel("binomial", n_pairs=N_PAIRS, did=TRUE_DID, seed=5)
    cfg = RunConfig(sampler=SamplerConfig(backend="pymc", draws=200, tune=200, chains=2, seed=3))
    res = fit_indicator(panel, "out_of_work_benefits", config=cfg)
    s = res.summary.set_index(["estimand", "scale"]).loc[("did", "link")]
    assert s["q2.5"] < truth.did < s["q97.5"]
    assert res.idata.posterior.attrs["nbdid_backend"] == "pymc"
