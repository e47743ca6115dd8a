"""The NumPy re-computations agree with the PyMC graph they mirror.

The linear predictor is written twice, once as the PyMC graph
(:func:`nbdid.models.design.add_did_terms`) and once in NumPy from posterior draws
(:func:`nbdid.models.design.linear_predictor_draws`, used by every estimand, replicate
and log-likelihood).  These tests draw parameters from the prior of the graph and check
that the NumPy version gives the graph's values, for every parameterisation, and that
each family's NumPy log-likelihood equals PyMC's.
"""

from __future__ import annotations

import dataclasses
import itertools

import arviz as az
import numpy as np
import pymc as pm
import pytensor
import pytest

from nbdid.config import ModelConfig
from nbdid.families.base import Family
from nbdid.models.design import (
    add_did_terms,
    build_design,
    linear_predictor_draws,
    resolve_model_config,
)
from nbdid.models.model import build_model, log_likelihood
from nbdid.models.simulate import simulate_panel

FORMS = ("centred", "non_centred")
FAST = {"mode": "FAST_COMPILE"}  # no C compilation: these graphs are evaluated a few times only


def _design(family="poisson", *, n_periods=2, event_study=False, forms=None, pairs=True,
            covariates=(), interact=(), drop_rows=0):
    panel = simulate_panel(family, n_pairs=5, n_periods=n_periods, seed=11,
                           covariate="imd" if covariates else None, covariate_shift=0.5)[0]
    if "tv" in covariates:  # a ward-period (time-varying) covariate
        panel["tv"] = np.random.default_rng(2).normal(size=len(panel))
    if drop_rows:  # wards seen in one period only
        panel = panel.drop(index=panel.index[:drop_rows])
    key = panel["indicator"].iloc[0]
    return build_design(panel, key, family, pair_effects=pairs, event_study=event_study,
                        parameterization=forms or "auto", covariates=covariates, interact=interact)


def _graph_and_numpy(design, cfg, draws=25):
    cfg = resolve_model_config(design, cfg)
    with pm.Model(coords=design.coords):
        eta, data = add_did_terms(design, cfg)
        if cfg.overdispersion == "ward_period":
            eta = Family._ward_period_effect(eta, cfg, data)
        pm.Deterministic("eta_graph", eta, dims="obs")
        prior = pm.sample_prior_predictive(draws=draws, random_seed=3, compile_kwargs=FAST).prior
    return prior["eta_graph"].values, linear_predictor_draws(prior, design)


CASES = [
    *[dict(forms=dict(zip(("level", "change", "pair"), f, strict=True)), ward_change=True)
      for f in itertools.product(FORMS, FORMS, FORMS)],
    *[dict(forms={"level": lv, "change": "centred", "pair": pr}, ward_change=False)
      for lv, pr in itertools.product(FORMS, FORMS)],
    dict(forms={"level": "centred", "change": "centred", "pair": "non_centred"}, ward_corr=True),
    dict(forms={"level": "non_centred", "change": "non_centred", "pair": "centred"}, ward_corr=True),
    dict(forms={"level": "centred", "change": "non_centred", "pair": "centred"}, pairs=False),
    dict(forms={"level": "centred", "change": "centred", "pair": "centred"},
         overdispersion="ward_period", ward_change=False),
    dict(forms={"level": "non_centred", "change": "centred", "pair": "non_centred"},
         n_periods=4, event_study=True),
    dict(forms={"level": "centred", "change": "non_centred", "pair": "non_centred"},
         n_periods=4, event_study=True, overdispersion="ward_period"),
    # group-specific and shared change SDs, with and without the correlation
    dict(forms={"level": "centred", "change": "centred", "pair": "centred"}, group_change_sd=False),
    dict(forms={"level": "non_centred", "change": "centred", "pair": "centred"}, ward_corr=True,
         group_change_sd=False),
    dict(forms={"level": "centred", "change": "non_centred", "pair": "non_centred"}, ward_corr=True),
    # covariates: ward-level and ward-period, main effects, x post and effect modification
    *[dict(forms={"level": lv, "change": ch, "pair": "non_centred"}, covariates=("imd", "tv"),
           interact=("imd", "tv")) for lv, ch in itertools.product(FORMS, FORMS)],
    dict(forms={"level": "centred", "change": "centred", "pair": "centred"}, covariates=("imd",),
         interact=("imd",), ward_change=False),
    dict(forms={"level": "centred", "change": "centred", "pair": "centred"}, covariates=("tv",),
         n_periods=4, event_study=True),
    # wards seen in one period only (their change is left out), fixed effects only
    dict(forms={"level": "centred", "change": "non_centred", "pair": "centred"}, drop_rows=3,
         pairs=False),
    dict(forms={"level": "centred", "change": "centred", "pair": "centred"}, ward_effects=False,
         covariates=("imd",), interact=("imd",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()
                                                                 if k != "forms") + "-" + "/".join(c["forms"].values()))
def test_numpy_linear_predictor_equals_the_graph(case):
    case = dict(case)
    forms = case.pop("forms")
    n_periods = case.pop("n_periods", 2)
    event_study = case.pop("event_study", False)
    pairs = case.pop("pairs", True)
    extra = {k: case.pop(k) for k in ("covariates", "interact", "drop_rows") if k in case}
    design = _design(n_periods=n_periods, event_study=event_study, forms=forms, pairs=pairs, **extra)
    assert design.forms == (forms if pairs else {**forms, "pair": design.pair_parameterization})
    cfg = dataclasses.replace(ModelConfig(), event_study=event_study, **case)
    graph, numpy = _graph_and_numpy(design, cfg)
    np.testing.assert_allclose(numpy, graph, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    ("family", "overdispersion", "extra"),
    [("binomial", "none", {}), ("binomial", "negbin", {}), ("binomial", "ward_period", {}),
     ("poisson", "none", {}), ("poisson", "negbin", {}), ("price", "none", {}),
     ("price", "ward_period", {}), ("price", "ward_period", {"price_likelihood": "normal"})],
)
def test_numpy_log_likelihood_equals_pymc(family, overdispersion, extra):
    design = _design(family)
    cfg = dataclasses.replace(ModelConfig(), overdispersion=overdispersion, ward_change=False, **extra)
    model = build_model(design, cfg)
    with model:
        prior = pm.sample_prior_predictive(draws=20, random_seed=5, compile_kwargs=FAST).prior
    idata = az.InferenceData(posterior=prior)
    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        expected = pm.compute_log_likelihood(idata, model=model, extend_inferencedata=False,
                                             progressbar=False)["y"].values
    got = log_likelihood(prior, design)
    ok = np.isfinite(expected)
    np.testing.assert_allclose(got[ok], expected[ok], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("extra", [{}, {"ward_corr": True}, {"covariates": ("imd", "tv"), "interact": ("imd",)}])
def test_mixed_change_forms_equal_the_numpy_predictor(extra):
    """Each group's ward changes in its own form ("mixed") is the same model."""
    extra = dict(extra)
    cov = {k: extra.pop(k) for k in ("covariates", "interact") if k in extra}
    design = _design(forms={"level": "centred", "change": "mixed", "pair": "non_centred"}, **cov)
    design = dataclasses.replace(design, change_parameterization="mixed",
                                 change_centred=design.ward_treated)  # NBI centred, benchmark not
    graph, numpy = _graph_and_numpy(design, dataclasses.replace(ModelConfig(), **extra))
    np.testing.assert_allclose(numpy, graph, rtol=1e-9, atol=1e-9)


def _gaussian_design(*, known_sd=True, n_periods=2):
    panel = simulate_panel("gaussian", indicator="score", n_pairs=5, n_periods=n_periods, seed=11,
                           base=3.0, sigma_change=0.3, sigma_change_nbi=0.1)[0]
    if not known_sd:
        panel["sd"] = np.nan
    return build_design(panel, "score", "gaussian")


@pytest.mark.parametrize(("known_sd", "n_periods", "extra"), [
    (True, 2, {}), (True, 3, {"overdispersion": "ward_period"}), (False, 2, {}),
    (False, 2, {"group_change_sd": False}), (False, 3, {})])
def test_gaussian_log_likelihood_equals_pymc(known_sd, n_periods, extra):
    design = _gaussian_design(known_sd=known_sd, n_periods=n_periods)
    cfg = dataclasses.replace(ModelConfig(), **extra)
    model = build_model(design, cfg)
    with model:
        prior = pm.sample_prior_predictive(draws=20, random_seed=5, compile_kwargs=FAST).prior
    idata = az.InferenceData(posterior=prior)
    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        expected = pm.compute_log_likelihood(idata, model=model, extend_inferencedata=False,
                                             progressbar=False)["y"].values
    np.testing.assert_allclose(log_likelihood(prior, design), expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("prior", ["normal(0.3, 2)", "student_t(3, 0, 1.5)", "halfnormal(0.7)",
                                   "half_student_t(4, 0.8)", "exponential(2)",
                                   "inverse_gamma_precision(2, 0.5)"])
def test_numpy_log_prior_equals_pymc(prior):
    """The ``log_prior`` group (power-scaling sensitivity) is PyMC's prior density."""
    from nbdid.config import Prior
    from nbdid.families.priors import add_prior, log_density, prior_variable

    p = Prior.parse(prior)
    with pm.Model() as model:
        params = pm.Data("prior_x", np.asarray(p.params))
        add_prior("x", p, params, shape=3)
    var = model[prior_variable("x", p)]
    values = np.array([0.2, 1.1, 2.5]) if p.positive else np.array([-1.3, 0.2, 2.5])
    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        expected = pm.logp(var, values).eval()
    np.testing.assert_allclose(log_density(p, values), expected, rtol=1e-6)


@pytest.mark.parametrize(("family", "overdispersion"),
                         [("binomial", "none"), ("binomial", "negbin"), ("poisson", "none"),
                          ("poisson", "negbin")])
def test_count_log_density_follows_swapped_data(family, overdispersion):
    """The count likelihoods add their data-only term (``log C(n, y)``, ``y log E -
    log y!``) from the ``y_logc`` container, so that it is not recomputed at every
    gradient evaluation.  A model refitted on new counts (containers set, as nutpie's
    ``with_data`` does) must give the new data's log-likelihood, equal to SciPy's."""
    from nbdid.models.design import model_data

    design = _design(family)
    cfg = resolve_model_config(design, dataclasses.replace(ModelConfig(), overdispersion=overdispersion,
                                                           ward_change=False))
    model = build_model(design, cfg)
    rng = np.random.default_rng(4)
    counts = design.arrays["count"]
    new_counts = np.minimum(rng.poisson(counts + 1.0), np.round(design.arrays["exposure"])).astype("int64")
    new = dataclasses.replace(design, arrays={**design.arrays, "count": new_counts})
    with model:
        prior = pm.sample_prior_predictive(draws=5, random_seed=5, compile_kwargs=FAST).prior
        pm.set_data({k: v for k, v in model_data(new, cfg).items() if k in model.named_vars})
    assert np.allclose(model["y_logc"].get_value(), design.family.logp_constant(new.arrays))
    idata = az.InferenceData(posterior=prior)
    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        got = pm.compute_log_likelihood(idata, model=model, extend_inferencedata=False,
                                        progressbar=False)["y"].values
    np.testing.assert_allclose(got, log_likelihood(prior, new), rtol=1e-9, atol=1e-9)
