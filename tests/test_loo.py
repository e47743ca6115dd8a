"""Model comparison: PSIS-LOO from every saved fit, and leave-one-ward-out refits."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

from nbdid.models.sampling import shared_cache
from nbdid.models.simulate import simulate_panel

pytestmark = pytest.mark.filterwarnings(
    "ignore:PyTensor could not link to a BLAS installation:UserWarning",
    # az.loo warns when Pareto k > 0.7 for some observation (expected for a model with a
    # ward change and two periods, where every observation has its own effect)
    "ignore:Estimated shape parameter of Pareto distribution:UserWarning",
)


LOO_PANEL = simulate_panel("binomial", n_pairs=4, did=-0.2, seed=12)[0]
"""Eight wards (also the panel of tests/test_priors.py's warm refit)."""


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    from nbdid.config import DiagnosticsConfig, RunConfig
    from nbdid.workflow.fit import fit, save_fit

    # the process-wide cache: tests/test_priors.py refits this model without compiling
    cache = shared_cache()
    before = cache.compile_count
    # asked for in the config ([diagnostics] loo_wards = true), as nbdid fit --loo-wards does
    cfg = RunConfig(diagnostics=DiagnosticsConfig(loo_wards=True))
    res = fit(LOO_PANEL, "out_of_work_benefits", config=cfg, draws=200, tune=200, chains=2,
              seed=1, compiled_cache=cache)
    out = save_fit(res, tmp_path_factory.mktemp("fit"))
    return res, out, cache.compile_count - before


def test_loo_works_on_the_saved_netcdf(fitted):
    res, out, _ = fitted
    idata = az.from_netcdf(out / "out_of_work_benefits.nc")
    assert {"log_likelihood", "log_prior"} <= set(idata.groups())
    loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo)
    d = res.diagnostics.iloc[0]
    assert d["elpd_loo"] == pytest.approx(loo.elpd_loo, rel=0.02)  # reff differs slightly
    assert 0 <= d["pareto_k_high"] <= res.design.n_obs
    summary = pd.read_csv(out / "summary.csv")
    assert {"elpd_loo", "pareto_k_high", "did_prior_sensitivity"} <= set(summary.columns)
    # power-scaling sensitivity straight from ArviZ on the saved file
    ps = az.psens(idata, var_names=["did", "sigma_ward"])
    assert float(ps["did"]) == pytest.approx(d["did_prior_sensitivity"], abs=1e-9)


def test_leave_one_ward_out_refits_one_compiled_model(fitted):
    res, out, compiled = fitted
    t = res.loo_wards
    assert len(t) == len(res.design.coords["ward"]) == 8
    assert np.isfinite(t["elpd"]).all() and (t["n_obs"] == 2).all()
    # the model (unless an earlier test compiled it), and the model with held-out
    # weights once for all eight wards
    assert compiled in (1, 2)
    d = res.diagnostics.iloc[0]
    assert d["elpd_loo_wards"] == pytest.approx(t["elpd"].sum())
    assert (out / "out_of_work_benefits_loo_wards.csv").is_file()
    assert "leave-one-ward-out: elpd" in res.text()


def test_leave_one_ward_out_is_asked_for_by_flag_or_config(tmp_path):
    from nbdid.cli import build_parser
    from nbdid.cli.fit import fit_config
    from nbdid.config import load_config
    from nbdid.errors import InputError
    from nbdid.workflow.fit import fit_outputs

    toml = tmp_path / "c.toml"
    toml.write_text("[diagnostics]\nloo_wards = true\n")
    assert load_config(toml).diagnostics.loo_wards
    base = ["fit", "--data", "p.csv", "--indicator", "crime", "--out", "o"]
    parser = build_parser()
    assert not fit_config(parser.parse_args(base)).diagnostics.loo_wards
    assert fit_config(parser.parse_args([*base, "--loo-wards"])).diagnostics.loo_wards
    assert fit_config(parser.parse_args([*base, "--config", str(toml)])).diagnostics.loo_wards
    assert fit_outputs("crime", loo_wards=True)[-1] == "crime_loo_wards.csv"
    toml.write_text('[diagnostics]\nloo_wards = "yes"\n')
    with pytest.raises(InputError, match="loo_wards"):
        load_config(toml)


def test_held_out_weights_remove_exactly_one_wards_likelihood():
    """The held-out model's log density differs from the full model's by the ward's
    log-likelihood, and by nothing else."""
    import dataclasses

    from nbdid.config import ModelConfig
    from nbdid.models.design import build_design
    from nbdid.models.model import build_model

    panel = simulate_panel("poisson", n_pairs=3, seed=2)[0]
    design = build_design(panel, "crime", "poisson")
    cfg = ModelConfig()
    full = build_model(design, cfg)
    held = design.ward_idx == 0
    weighted = build_model(dataclasses.replace(design, obs_weight=(~held).astype(float)), cfg)
    point = full.initial_point(random_seed=1)
    lp_full = full.compile_logp()(point)
    lp_held = weighted.compile_logp()(point)
    y_logp = full.compile_fn(full.logp(vars=[full["y"]], sum=False)[0], inputs=full.value_vars,
                             on_unused_input="ignore")(point)
    assert lp_full - lp_held == pytest.approx(float(np.sum(y_logp[held])), rel=1e-9)
