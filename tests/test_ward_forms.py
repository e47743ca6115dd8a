"""How ward levels are written for the sampler (:func:`nbdid.models.design.level_weights`).

With ward changes and centred levels, each ward's *mean level* over its observations is
sampled instead of its level: a ward's counts after the start pin down level + change,
so the level alone is correlated with the change (about -0.7), ward by ward, which
costs hundreds of leapfrog steps a draw on national panels (docs/scale.md).  These
tests check that the rewrite is the same model (any weights give the same density) and
that it removes the correlation.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pymc as pm
import pytensor
import pytest

from nbdid.config import ModelConfig
from nbdid.families.priors import log_density
from nbdid.models.design import build_design, level_weights, model_data, resolve_model_config
from nbdid.models.model import build_model
from nbdid.models.simulate import simulate_panel

FAST = "FAST_COMPILE"  # no C compilation: these graphs are evaluated a few times only


def _design(n_pairs=8, *, n_periods=2, first_post=None, event_study=False, forms=None,
            covariates=(), seed=4, exposure_range=(20_000, 40_000)):
    panel = simulate_panel("poisson", n_pairs=n_pairs, n_periods=n_periods, first_post=first_post, seed=seed,
                           exposure_range=exposure_range, sigma_ward=0.4, sigma_change=0.2,
                           covariate="imd" if covariates else None, covariate_shift=0.5)[0]
    return build_design(panel, "crime", "poisson", event_study=event_study,
                        parameterization=forms or "auto", covariates=covariates)


def _model(design, **cfg):
    cfg = resolve_model_config(design, dataclasses.replace(ModelConfig(mean_level=True), **cfg))
    return build_model(design, cfg), cfg


def test_weights_are_each_observations_share_of_its_wards_level_precision():
    design = _design()
    cfg = resolve_model_config(design, ModelConfig(mean_level=True))
    w = level_weights(design, cfg)
    assert w is not None and w.shape == (design.n_obs,) and (w > 0).all()
    per_ward = np.bincount(design.ward_idx, weights=w)
    assert (per_ward < 1).all() and (per_ward > 0.9).all()  # the data, not the prior, pin levels
    # two periods of similar counts: the mean level is about half way between them
    post = np.bincount(design.ward_idx, weights=w * design.post) / per_ward
    assert 0.35 < post.min() and post.max() < 0.65
    assert "level_weight" in model_data(design, cfg)
    # not used without a change, with non-centred levels or with the level-change correlation
    assert level_weights(design, dataclasses.replace(cfg, ward_change=False)) is None
    assert level_weights(design, dataclasses.replace(cfg, ward_corr=True)) is None
    nc = _design(forms={"level": "non_centred", "change": "centred", "pair": "non_centred"})
    assert level_weights(nc, resolve_model_config(nc, ModelConfig(mean_level=True))) is None
    # held-out observations weigh nothing
    held = dataclasses.replace(design, obs_weight=(design.ward_idx != 0).astype(float))
    assert (level_weights(held, cfg)[design.ward_idx == 0] == 0).all()


@pytest.mark.parametrize("case", [
    dict(),
    dict(forms={"level": "centred", "change": "non_centred", "pair": "non_centred"}),
    dict(forms={"level": "centred", "change": "mixed", "pair": "centred"}),
    dict(n_periods=5, first_post=2, overdispersion="negbin"),
    dict(n_periods=4, first_post=2, event_study=True, covariates=("imd",)),
], ids=["centred", "non-centred-change", "mixed", "five-periods", "event-study-covariate"])
def test_any_weights_give_the_same_model(case):
    """The log density at matching points is the same whatever the weights: writing the
    level through the mean level shifts it by terms that do not depend on it (Jacobian 1)."""
    case = dict(case)
    model_kw = {k: case.pop(k) for k in ("overdispersion",) if k in case}
    design = _design(**case)
    if design.change_parameterization == "mixed":
        design = dataclasses.replace(design, change_centred=design.ward_treated)
    model, cfg = _model(design, event_study=design.event_study, **model_kw)
    assert "ward_mean_c" in model.named_vars and "ward_level_c" not in model.named_vars
    weights = model_data(design, cfg)["level_weight"]
    with pytensor.config.change_flags(mode=FAST):
        logp = model.compile_logp()
        level = model.compile_fn(model.replace_rvs_by_values([model["ward_level"]])[0],
                                 inputs=model.value_vars, on_unused_input="ignore")
        rng = np.random.default_rng(0)
        base = model.initial_point()
        for _ in range(3):
            point = {k: v + rng.normal(0.0, 0.2, np.shape(v)) for k, v in base.items()}
            model["level_weight"].set_value(weights)
            lp, lv = logp(point), level(point)
            # the same levels (and every other variable) with no weights, where the mean
            # level is the level (plus the pre periods' mean period effect): the level
            # is ward_mean_c plus terms that do not depend on it
            model["level_weight"].set_value(np.zeros_like(weights))
            other = {**point, "ward_mean_c": point["ward_mean_c"] + lv - level(point)}
            np.testing.assert_allclose(level(other), lv, rtol=1e-10, atol=1e-10)
            assert logp(other) == pytest.approx(lp, rel=1e-10, abs=1e-8)


def _ward_corr(design, weights) -> np.ndarray:
    """Per ward, the correlation between the free level variable and the ward change in
    the normal approximation of the posterior at its mode, with the given weights."""
    model, cfg = _model(design)
    model["level_weight"].set_value(weights)
    ip = model.initial_point()
    sizes = {v.name: int(np.prod(ip[v.name].shape) or 1) for v in model.value_vars}
    start = dict(zip(sizes, np.cumsum([0, *sizes.values()])[:-1], strict=True))
    with pytensor.config.change_flags(mode=FAST):
        mode = pm.find_MAP(model=model, progressbar=False, seed=1)
        grad = model.compile_dlogp()

    def at(x):
        return grad({k: x[start[k]:start[k] + n].reshape(ip[k].shape) for k, n in sizes.items()})

    # the Hessian by central differences of the gradient (PyTensor's own is slow to build)
    x0 = np.concatenate([np.ravel(mode[k]) for k in sizes])
    eps = 1e-5
    hess = np.column_stack([(at(x0 + eps * e) - at(x0 - eps * e)) / (2 * eps) for e in np.eye(len(x0))])
    cov = np.linalg.inv(-(hess + hess.T) / 2)
    lv = start["ward_mean_c"] + np.arange(sizes["ward_mean_c"])
    ch = start["ward_change_c"] + np.arange(sizes["ward_change_c"])
    return cov[lv, ch] / np.sqrt(cov[lv, lv] * cov[ch, ch])


def test_the_mean_level_is_uncorrelated_with_the_change():
    """Old form (zero weights: the level itself) about -0.7 per ward; mean level about 0."""
    design = _design(n_pairs=6, seed=7)
    assert design.forms["level"] == design.forms["change"] == "centred"
    weights = model_data(design, resolve_model_config(design, ModelConfig(mean_level=True)))["level_weight"]
    old = _ward_corr(design, np.zeros_like(weights))
    new = _ward_corr(design, weights)
    assert np.median(old) < -0.5
    assert np.abs(new).max() < 0.05


@pytest.mark.parametrize("prior", ["normal(0.1, 0.5)", "student_t(4, -0.2, 0.7)"])
def test_later_post_periods_are_steps_from_the_first_with_the_same_prior(prior):
    """With several post periods the later ones are sampled as steps from the first
    (their common level moves with every ward change); the density of ``period_raw``
    is its prior, exactly."""
    design = _design(n_periods=5, first_post=2)
    assert design.period_post.sum() == 3
    model, cfg = _model(design, overdispersion="negbin",
                        priors=dataclasses.replace(ModelConfig(mean_level=True).priors, period=prior))
    assert {"period_base", "period_step"} <= set(model.named_vars)
    assert "period_raw" in {d.name for d in model.deterministics}
    with pytensor.config.change_flags(mode=FAST):
        lp = model.compile_fn(model.logp(vars=[model["period_base"], model["period_step"]]),
                              inputs=model.value_vars, on_unused_input="ignore")
        raw = model.compile_fn(model.replace_rvs_by_values([model["period_raw"]])[0],
                               inputs=model.value_vars, on_unused_input="ignore")
        rng = np.random.default_rng(1)
        base = model.initial_point()
        for _ in range(3):
            point = {k: v + rng.normal(0.0, 0.3, np.shape(v)) for k, v in base.items()}
            expected = log_density(cfg.priors.period, raw(point)).sum()
            assert lp(point) == pytest.approx(expected, rel=1e-10)


def test_the_mean_level_is_opt_in_and_national_fits_use_it():
    """Off by default (the study panels sample their levels as before); national fits
    switch it on."""
    from nbdid.workflow.national import national_model_config

    design = _design()
    assert level_weights(design, resolve_model_config(design, ModelConfig())) is None
    assert national_model_config().mean_level


def test_the_mean_level_is_part_of_the_compiled_models_key():
    """A compiled model without mean levels is never reused for one with them (it has no
    ``level_weight`` container)."""
    from nbdid.models.sampling import structure_key

    design = _design()
    assert structure_key(design, ModelConfig()) != structure_key(design, ModelConfig(mean_level=True))
