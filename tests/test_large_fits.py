"""What keeps large (national) fits within memory: nbdid's conversion of nutpie's raw
trace, post-processing in blocks of draws, per-ward log-likelihood, thinned predictive
replicates and the national preset (docs/scale.md)."""

from __future__ import annotations

import argparse
import dataclasses

import arviz as az
import numpy as np
import pytest

from nbdid.analysis import diagnostics as diag
from nbdid.analysis import estimands
from nbdid.config import DiagnosticsConfig, RunConfig, SamplerConfig
from nbdid.errors import InputError
from nbdid.models import model as model_mod
from nbdid.models.simulate import NATIONAL_COVARIATES, simulate_panel
from nbdid.workflow.fit import fit, log_likelihood_dataset

pytestmark = pytest.mark.filterwarnings(
    "ignore:PyTensor could not link to a BLAS installation:UserWarning"
)

TINY = RunConfig(sampler=SamplerConfig(draws=60, tune=60, chains=2, seed=5))


@pytest.fixture(scope="module")
def fitted():
    panel = simulate_panel("poisson", n_pairs=6, did=-0.3, seed=2)[0]
    return fit(panel, panel["indicator"].iloc[0], config=TINY)


def test_raw_trace_conversion_matches_nutpie_and_skips_the_warm_up():
    import nutpie
    import pymc as pm

    from nbdid.models.sampling import _without_transformed, stored_names, trace_to_idata

    with pm.Model(coords={"ward": ["a", "b", "c"]}) as m:
        s = pm.HalfNormal("sigma_ward")
        z = pm.Normal("ward_z", dims="ward")
        level = pm.Deterministic("ward_level", s * z, dims="ward")
        pm.Deterministic("ward_effect", level - level.mean(), dims="ward")
        pm.Normal("y", level, 1.0, observed=np.array([0.3, -0.2, 1.0]), dims="ward")
    # ward_effect is not stored without a level-change correlation
    assert "ward_effect" not in stored_names(m) and "ward_level" in stored_names(m)
    compiled = nutpie.compile_pymc_model(m, var_names=stored_names(m))
    kw = dict(draws=40, tune=25, chains=2, seed=3, save_warmup=False, progress_bar=False)
    theirs = _without_transformed(nutpie.sample(compiled, **kw))
    trace = nutpie.sample(compiled, return_raw_trace=True, **kw)
    ours = trace_to_idata(*trace.get_arrow_trace(), coords=compiled.coords)
    # the re-expression and the unconstrained copy are never converted
    assert set(ours.posterior.data_vars) == {"sigma_ward", "ward_level"}
    assert set(theirs.posterior.data_vars) == {"sigma_ward", "ward_level"}
    assert ours.posterior.sizes["draw"] == 40 and ours.posterior.sizes["chain"] == 2
    for v in ours.posterior.data_vars:
        a, b = theirs.posterior[v], ours.posterior[v]
        assert a.dims == b.dims and a.dtype == b.dtype
        np.testing.assert_array_equal(a.values, b.values)
    assert list(ours.posterior["ward"].values) == ["a", "b", "c"]
    assert set(ours.sample_stats.data_vars) == set(theirs.sample_stats.data_vars)
    for v in ours.sample_stats.data_vars:
        np.testing.assert_array_equal(theirs.sample_stats[v].values, ours.sample_stats[v].values)
    assert not {"gradient", "unconstrained_draw"} & set(ours.sample_stats.data_vars)


def test_blocks_of_draws_give_the_same_numbers(fitted, monkeypatch):
    idata, design = fitted.idata, fitted.design
    post = idata.posterior
    whole = {
        "ll": model_mod.log_likelihood(post, design),
        "gp": estimands.group_period_values(idata, design).values,
        "eff": estimands.effect_draws(idata, design),
        "ppp": diag.ppc_pvalues(idata, design),
    }
    assert len(model_mod.draw_chunks(post, design.n_obs)) == 1
    # blocks of 7 draws x 2 chains x the observations
    monkeypatch.setattr(model_mod, "CHUNK_ELEMENTS", 7 * 2 * design.n_obs)
    assert len(model_mod.draw_chunks(post, design.n_obs)) == 9
    np.testing.assert_array_equal(model_mod.log_likelihood(post, design), whole["ll"])
    np.testing.assert_array_equal(estimands.group_period_values(idata, design).values, whole["gp"])
    eff = estimands.effect_draws(idata, design)
    for v in eff.data_vars:
        np.testing.assert_array_equal(eff[v].values, whole["eff"][v].values)
    assert diag.ppc_pvalues(idata, design) == whole["ppp"]


def test_per_ward_log_likelihood_sums_each_wards_observations(fitted):
    post, design = fitted.idata.posterior, fitted.design
    by_obs = model_mod.log_likelihood(post, design)
    by_ward = model_mod.log_likelihood(post, design, by="ward")
    n_ward = len(design.coords["ward"])
    assert by_ward.shape == post["did"].shape + (n_ward,)
    expect = np.zeros_like(by_ward)
    for o, w in enumerate(design.ward_idx):
        expect[..., w] += by_obs[..., o]
    np.testing.assert_allclose(by_ward, expect, rtol=1e-12)
    ds = log_likelihood_dataset(post, design, by="ward")
    assert ds["y"].dims == ("chain", "draw", "ward")
    assert list(ds["ward"].values) == list(design.coords["ward"])


def test_fit_with_per_ward_loo_and_thinned_replicates(fitted):
    panel = simulate_panel("poisson", n_pairs=6, did=-0.3, seed=2)[0]
    cfg = dataclasses.replace(TINY, diagnostics=DiagnosticsConfig(pointwise="ward", ppc_draws=30))
    res = fit(panel, panel["indicator"].iloc[0], config=cfg)
    pp = res.idata.posterior_predictive["y"]
    # 2 chains x 60 draws thinned to at most 30: every 4th draw, labelled as in the posterior
    assert pp.sizes["chain"] * pp.sizes["draw"] <= 30
    assert list(pp["draw"].values) == list(res.idata.posterior["draw"].values[::4])
    assert res.idata.log_likelihood["y"].dims == ("chain", "draw", "ward")
    d = res.diagnostics.iloc[0]
    assert np.isfinite(d["elpd_loo"]) and d["pareto_k_high"] <= len(res.design.coords["ward"])
    # same draws, same model: the estimands do not depend on the diagnostics settings
    np.testing.assert_array_equal(res.summary["mean"].values, fitted.summary["mean"].values)


def test_national_preset_and_its_command_line_flag():
    from nbdid.cli.fit import fit_config
    from nbdid.workflow.national import NATIONAL_SAMPLER, national_config

    base = RunConfig(sampler=SamplerConfig(seed=9))
    cfg = national_config(base)
    assert cfg.model.mean_level and not cfg.model.pair_effects
    assert tuple(cfg.model.covariates) == tuple(NATIONAL_COVARIATES)
    assert (cfg.sampler.draws, cfg.sampler.tune, cfg.sampler.seed) == (NATIONAL_SAMPLER.draws, 500, 9)
    assert (cfg.diagnostics.pointwise, cfg.diagnostics.ppc_draws) == ("ward", 1000)
    assert cfg.diagnostics.max_rhat == base.diagnostics.max_rhat
    ns = argparse.Namespace(config=None, national=True, draws=None, tune=None, chains=None,
                            seed=None, backend=None, mass_matrix=None, no_pairs=False,
                            event_study=False, shared_change_sd=False, no_ward_change=False,
                            loo_wards=False, prior=[], covariates=None, interact=None)
    flag = fit_config(ns)
    assert flag.model == national_config().model and flag.diagnostics == cfg.diagnostics
    assert flag.sampler.tune == 500
    over = fit_config(argparse.Namespace(**{**vars(ns), "draws": 50, "covariates": "mean_rank"}))
    assert over.sampler.draws == 50 and tuple(over.model.covariates) == ("mean_rank",)
    assert over.model.mean_level
    with pytest.raises(InputError, match="ppc_draws"):
        DiagnosticsConfig(ppc_draws=-1)
    with pytest.raises(InputError, match="pointwise"):
        DiagnosticsConfig(pointwise="pair")


def test_ward_deterministics_of_a_large_model_are_recomputed_not_stored(monkeypatch):
    from nbdid.models import sampling
    from nbdid.models.design import build_design
    from nbdid.models.model import build_model

    panel = simulate_panel("poisson", n_pairs=6, did=-0.3, seed=2)[0]
    key = panel["indicator"].iloc[0]
    stored = fit(panel, key, config=TINY, compiled_cache=sampling.CompiledModelCache())
    monkeypatch.setattr(sampling, "RECOMPUTE_WARDS", 5)
    from nbdid.families import resolve_family

    design = build_design(panel, key, resolve_family(key, None).family)
    model = build_model(design, sampling.resolve_model_config(design, TINY.model))
    later = sampling.recomputed_names(model)
    assert {"ward_level", "ward_change"} <= set(later) and "ward_effect" not in later
    assert not set(later) & set(sampling.stored_names(model))
    redone = fit(panel, key, config=TINY, compiled_cache=sampling.CompiledModelCache())
    a, b = stored.idata.posterior, redone.idata.posterior
    assert set(a.data_vars) == set(b.data_vars)
    for v in ("ward_level", "ward_change", "did", "sigma_ward"):
        np.testing.assert_allclose(b[v].values, a[v].values, rtol=1e-6, atol=1e-9)
    assert list(b["ward"].values) == list(a["ward"].values)


@pytest.mark.slow
def test_annual_national_binomial_chains_agree():
    """A binomial indicator (beta-binomial) on an annual national panel: every chain finds
    the same posterior.  With sigma_od a coefficient of variation the beta-binomial went
    flat as p neared 1, and one chain of four (this panel and seed) parked a dozen wards'
    post-period logits near +8: R-hat 1.5 for the DiD, its mean log density 1,600 below
    the others', and 25,000-73,000 warm-up steps a chain instead of 9,000."""
    from nbdid.workflow.national import national_config, national_panel

    panel = national_panel(indicator="out_of_work_benefits", periods=11, did=-0.1, wards=200,
                           seed=1).panel
    res = fit(panel, "out_of_work_benefits", config=national_config(), seed=1, tune=500,
              draws=300, quiet=True)
    post, stats = res.idata.posterior, res.idata.sample_stats
    assert "sigma_od" in post  # the beta-binomial, chosen by overdispersion = "auto"
    rhat = az.rhat(post, var_names=["did", "sigma_od", "sigma_change_nbi", "sigma_change_benchmark",
                                    "sigma_ward", "intercept"])
    assert float(rhat.to_array().max()) < 1.02
    chain_logp = stats["logp"].mean("draw").values
    assert np.ptp(chain_logp) < 30
    assert int(stats["diverging"].sum()) == 0
