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
    if family == "poisson":
        new_counts[:6] = new_counts[0]  # ties: fewer distinct counts than before
    new = dataclasses.replace(design, arrays={**design.arrays, "count": new_counts})
    with model:
        prior = pm.sample_prior_predictive(draws=5, random_seed=5, compile_kwargs=FAST).prior
        pm.set_data({k: v for k, v in model_data(new, cfg).items() if k in model.named_vars})
    assert np.allclose(model["y_logc"].get_value(), design.family.logp_constant(new.arrays))
    if family == "poisson" and overdispersion == "negbin":
        # the negative binomial's log-gamma table (one entry per distinct count) now has
        # another length: the refit must still give every observation its own term
        assert len(np.unique(new_counts)) != len(np.unique(counts))
        assert model["y_distinct"].get_value().tolist() == np.unique(new_counts).tolist()
    idata = az.InferenceData(posterior=prior)
    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        got = pm.compute_log_likelihood(idata, model=model, extend_inferencedata=False,
                                        progressbar=False)["y"].values
    np.testing.assert_allclose(got, log_likelihood(prior, new), rtol=1e-9, atol=1e-9)


def test_negbin_compiled_model_takes_another_number_of_distinct_counts():
    """The negative binomial evaluates log Gamma(y + alpha) once per distinct count
    (``y_distinct``) and gathers it per observation (``y_level``).  nutpie's compiled
    model, refitted with ``with_data`` on counts with more distinct values, must give
    the same log density as PyMC's own graph with the new data."""
    import ctypes

    import nutpie

    from nbdid.models.compile_cache import persistent_compile
    from nbdid.models.design import model_data

    design = _design("poisson", forms="centred")
    cfg = resolve_model_config(design, dataclasses.replace(ModelConfig(), overdispersion="negbin"))
    model = build_model(design, cfg)
    # through the per-user compile cache, as nbdid's sampler compiles (55 s cold)
    with persistent_compile("test: negbin with another number of distinct counts") as disk:
        compiled = nutpie.compile_pymc_model(model, **disk["kwargs"])
    rng = np.random.default_rng(1)
    counts = rng.poisson(design.arrays["count"] * 3 + 7)
    counts[:6] = counts[0]  # ties: fewer distinct counts than the compiled model saw
    new = dataclasses.replace(design, arrays={**design.arrays, "count": counts})
    data = model_data(new, cfg)
    assert len(data["y_distinct"]) < len(np.unique(design.arrays["count"]))
    assert np.array_equal(data["y_distinct"][data["y_level"]], counts)
    refit = compiled.with_data(**{k: v for k, v in data.items() if k in compiled.shared_data})
    with model:
        pm.set_data({k: v for k, v in data.items() if k in model.named_vars})
    point = model.initial_point()
    x = np.concatenate([np.ravel(point[v.name]) for v in model.value_vars]).astype("float64")
    grad, logp = np.zeros(refit.n_dim), np.zeros(())
    dptr = ctypes.POINTER(ctypes.c_double)
    refit.compiled_logp_func.ctypes(refit.n_dim, x.ctypes.data_as(dptr), grad.ctypes.data_as(dptr),
                                    logp.ctypes.data_as(dptr), ctypes.c_void_p(refit.user_data.ctypes.data))
    np.testing.assert_allclose(float(logp), float(model.compile_logp()(point)), rtol=1e-10)


@pytest.mark.parametrize(("family", "settings"), [
    ("poisson", {}),
    ("poisson", {"overdispersion": "negbin", "mean_level": True}),
    ("binomial", {"ward_corr": True}),
    ("poisson", {"ward_change": False}),
    ("poisson", {"ward_effects": False}),
    ("poisson", {"event_study": True}),
    ("poisson", {"mean_level": True, "covariates": ("imd",), "pair_effects": False}),
])
def test_grid_broadcasts_equal_the_indexed_model(family, settings, monkeypatch):
    """On a complete ward x period grid (``Design.grid``) the model tiles and repeats
    ward and period terms instead of indexing them per observation.  It must be the
    same model: log density and gradient equal to the indexed graph's at a random point."""
    from nbdid.models.design import Design

    settings = dict(settings)
    design = _design(family, n_periods=3, event_study=settings.pop("event_study", False),
                     covariates=settings.pop("covariates", ()), pairs=settings.pop("pair_effects", True))
    assert design.grid
    cfg = resolve_model_config(design, dataclasses.replace(ModelConfig(), **settings))
    rng = np.random.default_rng(3)

    def density(model):
        point = {k: v + rng.normal(0.0, 0.3, np.shape(v)) for k, v in model.initial_point().items()}
        with pytensor.config.change_flags(mode="FAST_COMPILE"):
            return model.compile_logp()(point), model.compile_dlogp()(point), point

    grid_model = build_model(design, cfg)
    monkeypatch.setattr(Design, "grid", property(lambda self: False))
    indexed_model = build_model(design, cfg)
    monkeypatch.undo()
    rng = np.random.default_rng(3)
    lp_grid, g_grid, point = density(grid_model)
    rng = np.random.default_rng(3)
    lp_idx, g_idx, point2 = density(indexed_model)
    assert point.keys() == point2.keys()
    np.testing.assert_allclose(lp_grid, lp_idx, rtol=1e-12)
    np.testing.assert_allclose(g_grid, g_idx, rtol=1e-10, atol=1e-10)


def test_log_gamma_ratio_is_accurate_for_any_alpha():
    """``log Gamma(y + a) - log Gamma(a) - y log a`` equals ``sum_{k<y} log1p(k / a)``
    (summed exactly) from alpha = 0.3 to 1e15: the direct difference of log-gamma values
    loses its digits as alpha grows, which collapsed the sampler's step size on nearly
    Poisson national panels."""
    import math

    from nbdid.families.counts import log_gamma_ratio, log_gamma_ratio_np

    y = np.array([0, 1, 2, 3, 7, 40, 250, 1999, 30000], dtype=float)
    for alpha in (0.3, 2.0, 75.0, 1e4, 3e5, 1e7, 1e9, 1e12, 1e15):
        with pytensor.config.change_flags(mode="FAST_COMPILE"):
            got = log_gamma_ratio(pytensor.tensor.as_tensor(y), pytensor.tensor.as_tensor(np.float64(alpha))).eval()
        exact = np.array([math.fsum(math.log1p(k / alpha) for k in range(int(v))) for v in y])
        np.testing.assert_allclose(got, exact, rtol=1e-9, atol=1e-13, err_msg=f"alpha={alpha}")
        # the NumPy twin (pointwise log-likelihood, LOO) is the same function
        np.testing.assert_allclose(log_gamma_ratio_np(y, alpha), exact, rtol=1e-9, atol=1e-13,
                                   err_msg=f"numpy, alpha={alpha}")


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_overdispersed_density_tends_to_the_plain_one_without_noise(family):
    """At a huge alpha (sigma_od -> 0) the negative binomial's log density is the
    Poisson's, and the beta-binomial's the binomial's, to rounding; the textbook forms,
    differences of log-gamma values of size alpha log(alpha), are off by whole units per
    observation there."""
    design = _design(family)
    cfg = resolve_model_config(design, dataclasses.replace(ModelConfig(), overdispersion="negbin"))
    model = build_model(design, cfg)
    with model:
        prior = pm.sample_prior_predictive(draws=4, random_seed=2, compile_kwargs=FAST).prior
    for sigma in (1e-8, 1e-10):  # alpha = 1e16, 1e20
        draws = prior.copy()
        draws["sigma_od"] = draws["sigma_od"] * 0 + sigma
        with pytensor.config.change_flags(mode="FAST_COMPILE"):
            got = pm.compute_log_likelihood(az.InferenceData(posterior=draws), model=model,
                                            extend_inferencedata=False, progressbar=False)["y"].values
        plain = log_likelihood(draws.drop_vars("sigma_od"), design)
        # the two differ by about ((y - mu)^2 - y) / (2 alpha), under 1e-6 of these prior
        # draws' densities (PyMC's negative binomial: about 74 per observation)
        np.testing.assert_allclose(got, plain, rtol=1e-9)
        # and so is nbdid's NumPy log-likelihood (LOO); SciPy's nbinom and betabinom
        # were off by whole units here
        np.testing.assert_allclose(log_likelihood(draws, design), plain, rtol=1e-9)


def test_beta_binomial_mixing_sd_is_sigma_on_the_logit_scale():
    """The beta mixing distribution has mean p and SD sigma_od p (1 - p) exactly, for any
    p, so sigma_od is an SD on the logit scale (like sigma_wp) and the concentration
    grows, not falls, as p nears 0 or 1."""
    from nbdid.families.binomial import beta_shapes

    eta = np.array([-12.0, -3.0, -1.6, 0.0, 1.6, 3.0, 12.0])
    p = 1.0 / (1.0 + np.exp(-eta))
    for sigma in (1e-3, 0.05, 0.4, 1.5):
        a, b = beta_shapes(eta, sigma)
        k = a + b
        np.testing.assert_allclose(a / k, p, rtol=1e-12)
        np.testing.assert_allclose(np.sqrt(a * b / (k**2 * (k + 1.0))), sigma * p * (1.0 - p), rtol=1e-9)
        assert np.all(np.diff(k[3:]) > 0) and np.all(np.diff(k[:4]) < 0)


def test_beta_binomial_does_not_go_flat_as_p_nears_one():
    """With a constant coefficient of variation the beta-binomial's concentration fell to
    0 as p neared 1 and its density went flat: 1,161 people out of 6,954 (logit -1.6) cost
    only 11.6 log units more at logit +7.6 than at -1.6 (sigma_od = 0.017), and chains of an
    annual national fit stayed with wards there.  Now such a misfit costs what the
    binomial's does, and the model's PyMC density agrees."""
    from scipy import stats

    from nbdid.families.binomial import beta_shapes

    y, n, sigma = 1161, 6954, 0.017
    at_data = stats.betabinom.logpmf(y, n, *beta_shapes(np.log(y / (n - y)), sigma))
    far = stats.betabinom.logpmf(y, n, *beta_shapes(7.6, sigma))
    assert at_data - far > 30_000
    assert stats.binom.logpmf(y, n, 1.0 / (1.0 + np.exp(-7.6))) - far < 0.05 * (at_data - far)

    # the model's PyTensor density is the same function far out on the logit scale
    design = _design("binomial")
    cfg = resolve_model_config(design, dataclasses.replace(ModelConfig(), overdispersion="negbin"))
    model = build_model(design, cfg)
    with model:
        draws = pm.sample_prior_predictive(draws=4, random_seed=3, compile_kwargs=FAST).prior
    draws["intercept"] = draws["intercept"] + 9.0
    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        got = pm.compute_log_likelihood(az.InferenceData(posterior=draws), model=model,
                                        extend_inferencedata=False, progressbar=False)["y"].values
    np.testing.assert_allclose(got, log_likelihood(draws, design), rtol=1e-8)
    assert got.mean() < -100  # far from these data, not flat
