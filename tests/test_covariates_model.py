"""Covariates in the model: declared panel columns, standardised, main effects, x post
(conditional parallel trends) and effect modification; the confounding they remove."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbdid.data_prep.schema import validate_panel
from nbdid.errors import DesignError, InputError
from nbdid.models.design import build_design, design_from_dataset, design_to_dataset
from nbdid.models.sampling import CompiledModelCache
from nbdid.models.simulate import simulate_panel

pytestmark = pytest.mark.filterwarnings(
    "ignore:PyTensor could not link to a BLAS installation:UserWarning"
)


def _confounded(seed: int, n_pairs: int = 15, **kw):
    """A confounder: NBI wards have higher ``imd`` (1.5 SD), and ``imd`` predicts change."""
    return simulate_panel("poisson", n_pairs=n_pairs, did=-0.2, covariate="imd", covariate_shift=1.5,
                          covariate_level=0.2, covariate_change=0.25, sigma_change=0.15, seed=seed,
                          **kw)


def test_the_schema_keeps_declared_covariates_only():
    panel = _confounded(1)[0]
    with pytest.raises(InputError, match="unknown column 'imd'.*--covariates"):
        validate_panel(panel)
    out = validate_panel(panel, covariates=["imd"])
    assert out.columns[-1] == "imd" and out["imd"].dtype == "float64"
    bad = panel.astype({"imd": object})
    bad.loc[4, "imd"] = "high"
    with pytest.raises(InputError, match="line 6, column 'imd': covariate imd must be a number"):
        validate_panel(bad, covariates=["imd"])
    with pytest.raises(InputError, match="required column 'tv' is missing"):
        validate_panel(panel, covariates=["imd", "tv"])


def test_covariates_are_standardised_by_kind():
    panel = _confounded(2)[0]
    panel["tv"] = np.random.default_rng(0).normal(5, 2, len(panel))  # ward-period
    design = build_design(panel, "crime", "poisson", covariates=["imd", "tv"], interact=["imd"])
    assert design.covariate_kind == ("ward", "ward_period")
    xw = design.cov_ward[:, 0]
    assert xw.mean() == pytest.approx(0, abs=1e-12) and xw.std(ddof=1) == pytest.approx(1)
    assert np.all(design.cov_ward[:, 1] == 0) and np.all(design.cov_tv[:, 0] == 0)
    assert design.cov_tv[:, 1].std(ddof=1) == pytest.approx(1)
    assert design.coords["covariate"] == ["imd", "tv"] and design.coords["interaction"] == ["imd"]
    back = design_from_dataset(design_to_dataset(design))
    assert back.covariates == ("imd", "tv") and back.interact == ("imd",)
    np.testing.assert_array_equal(back.cov_ward, design.cov_ward)
    # a covariate missing for a row, or the same everywhere, cannot be used
    gap = panel.copy()
    gap.loc[7, "imd"] = np.nan
    with pytest.raises(DesignError, match="covariate 'imd' is empty or not a number for ward"):
        build_design(gap, "crime", "poisson", covariates=["imd"])
    flat = panel.assign(imd=1.0)
    with pytest.raises(DesignError, match="has the same value for every ward"):
        build_design(flat, "crime", "poisson", covariates=["imd"])


def test_estimands_of_covariates_and_effect_modification():
    from nbdid.analysis.estimands import effect_draws
    from nbdid.models.model import expected
    from nbdid.workflow.fit import fit

    panel = _confounded(3, n_pairs=10)[0]
    res = fit(panel, "crime", covariates="imd", interact="imd", draws=200, tune=200, chains=2,
              compiled_cache=CompiledModelCache())
    est = set(res.summary["estimand"])
    assert {"covariate:imd", "covariate_x_post:imd", "did_modification:imd", "did_additive"} <= est
    assert "covariates (main effect and x post): imd (ward, x treatment x post)" in res.structure
    # the DiD under additive parallel trends: the NBI group's pooled change minus the
    # benchmark group's, on the natural scale (beside the multiplicative, log-link one)
    row = {e: r for e, r in zip(res.summary["estimand"], res.summary.itertuples(), strict=True)
           if e in ("did_additive", "change_nbi", "change_benchmark")}
    assert row["did_additive"].scale == row["change_nbi"].scale == "per 1,000 population"
    assert row["did_additive"].mean == pytest.approx(row["change_nbi"].mean - row["change_benchmark"].mean)
    # the headline DiD stays population-averaged: the counterfactual drops the DiD and
    # the modification terms for every NBI ward in a post period
    d, post = res.design, res.idata.posterior
    m = (d.treated == 1) & (d.post == 1)
    w = d.weights[m]
    gap = ((expected(post, d) - expected(post, d, counterfactual=True))[..., m] * w).sum(-1) / w.sum()
    np.testing.assert_allclose(effect_draws(res.idata, d)["did_unit"].values, 1000 * gap, rtol=1e-10)


def _did_interval(res):
    row = res.summary.set_index(["estimand", "scale"]).loc[("did", "link")]
    return float(row["mean"]), float(row["q2.5"]), float(row["q97.5"])


@pytest.mark.slow
def test_adjusting_for_a_confounder_removes_its_bias():
    """One strongly confounded panel: unadjusted misses the truth, adjusted covers it
    (slow: two compilations and 500 draws; the default suite keeps the plumbing test
    above, and :func:`test_confounding_simulation_coverage` repeats this over panels)."""
    from nbdid.workflow.fit import fit

    panel, truth = _confounded(4, n_pairs=25)
    cache = CompiledModelCache()
    kw = dict(draws=500, tune=500, chains=2, seed=5, compiled_cache=cache)
    raw = _did_interval(fit(panel, "crime", **kw))
    adj = _did_interval(fit(panel, "crime", covariates=["imd"], **kw))
    # the confounder adds 0.25 x 1.5 = 0.375 to the NBI group's change
    assert raw[1] > truth.did
    assert adj[1] < truth.did < adj[2]


@pytest.mark.slow
def test_confounding_simulation_coverage():
    """40 confounded panels: the adjusted 90% interval covers the truth at about the
    nominal rate; the unadjusted DiD is biased by the confounder's effect."""
    from nbdid.workflow.fit import fit

    cache = CompiledModelCache()
    rows = []
    for seed in range(40):
        panel, truth = _confounded(100 + seed, n_pairs=20)
        for adjusted in (False, True):
            res = fit(panel, "crime", covariates=["imd"] if adjusted else (), draws=500, tune=500,
                      chains=2, seed=seed, compiled_cache=cache)
            x = res.idata.posterior["did"].values.ravel()
            lo, hi = np.quantile(x, [0.05, 0.95])
            rows.append({"adjusted": adjusted, "bias": x.mean() - truth.did,
                         "covers": lo < truth.did < hi})
    t = pd.DataFrame(rows).groupby("adjusted").mean()
    print(t)
    assert t.loc[True, "covers"] >= 0.8 and abs(t.loc[True, "bias"]) < 0.05
    assert t.loc[False, "bias"] > 0.25 and t.loc[False, "covers"] < 0.3
