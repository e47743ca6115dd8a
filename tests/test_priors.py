"""Prior specifications: one parser for config files, the command line and Python; the
data-based defaults; prior scales as data of a compiled model."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from nbdid.cli.fit import fit_config
from nbdid.config import (
    DEFAULT_PRIORS,
    ModelConfig,
    Prior,
    Priors,
    RunConfig,
    SettingError,
    from_dict,
    load_config,
    to_toml,
)
from nbdid.errors import InputError
from nbdid.families.priors import prior_sd
from nbdid.models.design import build_design, link_centre, resolve_model_config
from nbdid.models.simulate import simulate_panel

pytestmark = pytest.mark.filterwarnings(
    "ignore:PyTensor could not link to a BLAS installation:UserWarning"
)


@pytest.mark.parametrize(("text", "dist", "params"), [
    ("normal(0, 2.5)", "normal", (0.0, 2.5)),
    ("Normal( -1,0.5 )", "normal", (-1.0, 0.5)),
    ("student_t(3, 0, 1)", "student_t", (3.0, 0.0, 1.0)),
    ("half_normal(1)", "halfnormal", (1.0,)),
    ("half_t(3, 2)", "half_student_t", (3.0, 2.0)),
    ("exponential(1)", "exponential", (1.0,)),
    ("inverse_gamma_precision(0.001, 0.001)", "inverse_gamma_precision", (0.001, 0.001)),
])
def test_prior_text_round_trips(text, dist, params):
    p = Prior.parse(text)
    assert (p.dist, p.params) == (dist, params)
    assert Prior.parse(str(p)) == p


@pytest.mark.parametrize(("text", "message"), [
    ("normal(0)", "takes 2 parameter"),
    ("normal(0, -1)", "sigma must be positive"),
    ("normal(0, inf)", "finite"),
    ("cauchy(0, 1)", "unknown distribution 'cauchy'"),
    ("normal 0 1", "must look like normal(0, 2.5)"),
    ("halfnormal(a)", "must be numbers"),
    ("inverse_gamma_precision(0, 1)", "shape must be positive"),
])
def test_bad_priors_are_one_line_errors(text, message):
    with pytest.raises(SettingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Prior.parse(text)


def test_sd_priors_must_be_positive_distributions_and_coefficients_not():
    with pytest.raises(SettingError, match="'sigma_ward' is a standard deviation"):
        Priors(sigma_ward="normal(0, 1)")
    with pytest.raises(SettingError, match="'did' is a coefficient"):
        Priors(did="halfnormal(1)")
    with pytest.raises(SettingError, match="is not a prior"):
        Priors().with_(slope="normal(0, 1)")


def _args(*prior, config=None, **extra):
    base = dict(config=config, draws=None, tune=None, chains=None, seed=None, backend=None,
                mass_matrix=None, national=False,
                no_pairs=False, event_study=False, shared_change_sd=False, no_ward_change=False,
                prior=list(prior), covariates=None, interact=None, loo_wards=False)
    base.update(extra)
    return argparse.Namespace(**base)


def test_config_file_and_command_line_share_one_parser(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('[model.priors]\ndid = "normal(0, 1)"\nsigma_ward = "exponential(2)"\n')
    from_file = load_config(toml).model.priors
    from_cli = fit_config(_args("did=normal(0,1)", "sigma_ward=exponential(2)")).model.priors
    assert from_file == from_cli == Priors(did="normal(0, 1)", sigma_ward="exponential(2)")
    # the command line overrides the file, prior by prior
    both = fit_config(_args("did=student_t(3,0,2)", config=str(toml))).model.priors
    assert both.did == Prior("student_t", (3, 0, 2)) and both.sigma_ward == from_file.sigma_ward
    # the same range checks, naming where the value came from
    toml.write_text('[model.priors]\ndid = "normal(0, -1)"\n')
    with pytest.raises(InputError, match=r"c.toml: 'model.priors.did' normal: sigma must be positive"):
        load_config(toml)
    with pytest.raises(InputError, match=r"'--priors.did' normal: sigma must be positive"):
        fit_config(_args("did=normal(0,-1)"))
    with pytest.raises(InputError, match=r"unknown setting '--priors.slope'"):
        fit_config(_args("slope=normal(0,1)"))
    with pytest.raises(InputError, match="use KEY=DIST"):
        fit_config(_args("did"))


def test_priors_survive_the_provenance_toml():
    cfg = RunConfig(model=ModelConfig().with_priors(did="normal(0, 1)", sigma_change="half_student_t(3, 0.5)"))
    import tomllib

    back = from_dict(RunConfig, tomllib.loads(to_toml(cfg)))
    assert back.model.priors == cfg.model.priors


def test_default_priors_are_resolved_on_the_data_scale():
    panel = simulate_panel("binomial", n_pairs=6, seed=3)[0]
    design = build_design(panel, "out_of_work_benefits", "binomial")
    p = resolve_model_config(design, ModelConfig()).priors
    centre = link_centre(design)
    assert p.intercept == Prior("normal", (centre, 2.5))  # data-centred
    assert p.did == DEFAULT_PRIORS.did == Prior("normal", (0.0, 2.5))
    # explicit priors are used as written, prior_scale widens all but the intercept
    cfg = ModelConfig(prior_scale=2.0).with_priors(intercept="normal(0, 5)", did="normal(0.1, 1)")
    q = resolve_model_config(design, cfg).priors
    assert q.intercept == Prior("normal", (0.0, 5.0))
    assert q.did == Prior("normal", (0.1, 2.0))
    assert q.sigma_ward == Prior("halfnormal", (2.0,))
    # resolving twice changes nothing (fit resolves, the sampler's cache resolves again)
    r = resolve_model_config(design, cfg)
    assert resolve_model_config(design, r) == r


def test_gaussian_defaults_are_in_units_of_the_outcome_sd():
    panel = simulate_panel("gaussian", indicator="score", n_pairs=8, base=50.0, seed=1)[0]
    panel["value"] = 50 + 10 * (panel["value"] - 50)  # an outcome with a large spread
    design = build_design(panel, "score", "gaussian")
    sd = float(np.std(design.arrays["value"], ddof=1))
    p = resolve_model_config(design, ModelConfig()).priors
    assert p.did == Prior("normal", (0.0, 2.5 * sd))
    assert p.sigma_ward.params[0] == pytest.approx(sd)
    assert p.intercept.params[0] == pytest.approx(link_centre(design))


def test_prior_sd_matches_simulation():
    rng = np.random.default_rng(0)
    draws = {
        "halfnormal(1.5)": np.abs(rng.normal(0, 1.5, 400_000)),
        "half_student_t(5, 1)": np.abs(rng.standard_t(5, 400_000)),
        "exponential(2)": rng.exponential(0.5, 400_000),
        "inverse_gamma_precision(3, 2)": rng.gamma(3, 1 / 2, 400_000) ** -0.5,
        "student_t(4, 0, 2)": 2 * rng.standard_t(4, 400_000),
    }
    for text, x in draws.items():
        assert prior_sd(Prior.parse(text)) == pytest.approx(np.std(x), rel=0.03), text
    assert prior_sd(Prior.parse("half_student_t(2, 1)")) == np.inf


def test_warm_refit_under_another_prior_scale_reuses_the_compiled_model():
    """Prior parameters are pm.Data: a compiled model is refitted under other scales."""
    from nbdid.models.sampling import shared_cache, structure_key
    from nbdid.workflow.fit import fit

    # tests/test_loo.py's panel: in one pytest run its compiled model is reused here
    panel = simulate_panel("binomial", n_pairs=4, did=-0.2, seed=12)[0]
    key = "out_of_work_benefits"
    design = build_design(panel, key, "binomial")
    a = resolve_model_config(design, ModelConfig())
    b = resolve_model_config(design, ModelConfig().with_priors(did="normal(0, 0.05)"))
    c = resolve_model_config(design, ModelConfig().with_priors(did="student_t(3, 0, 1)"))
    assert structure_key(design, a) == structure_key(design, b)  # scales are data
    assert structure_key(design, a) != structure_key(design, c)  # the family is structure
    cache = shared_cache()
    kw = dict(draws=200, tune=200, chains=2, seed=3, compiled_cache=cache)
    wide = fit(panel, key, **kw)
    compiled = cache.compile_count
    tight = fit(panel, key, priors={"did": "normal(0, 0.05)"}, **kw)
    assert cache.compile_count == compiled  # a warm refit under the other prior
    sd_wide = float(wide.idata.posterior["did"].std())
    sd_tight = float(tight.idata.posterior["did"].std())
    assert sd_tight < 0.6 * sd_wide  # the tight prior was used
    assert tight.priors["did"] == "normal(0, 0.05)"
    assert "did ~ normal(0, 0.05)" in tight.idata.attrs["nbdid_priors"]
    assert tight.config.model.priors.did == Prior("normal", (0, 0.05))


def test_a_prior_decided_did_is_marked_in_the_comparison_table_and_forest():
    """The gate's prior reasons travel from the fit summary (``prior_gate``) to the
    comparison table and the forest figure, which names them first."""
    import pandas as pd

    from nbdid.analysis.comparison import compare as compare_report
    from nbdid.analysis.figure_tables import forest_table
    from nbdid.figures import plot_forest

    reason = "prior dominates did (prior normal(0, 0.01), sensitivity 0.11/0.02)"

    def summary(gate, prior_gate):
        return pd.DataFrame({"indicator": "crime", "estimand": ["did", "did"],
                             "scale": ["link", "per 1,000 population"], "mean": [-0.01, -0.5],
                             "sd": [0.01, 0.4], "q2.5": [-0.03, -1.3], "q97.5": [0.01, 0.3],
                             "prob_benefit": [0.8, 0.8], "gate": gate, "prior_gate": prior_gate,
                             "synthetic": True})

    comp = compare_report({
        "crime": summary(f"FAILED: R-hat 1.02 > 1.01; {reason}", reason),
        "burglary": summary("passed", "").assign(indicator="burglary"),
    })
    assert list(comp["prior_gate"]) == [reason, ""]
    assert "diagnostics FAILED" in comp.loc[0, "verdict"]
    fig = plot_forest(forest_table(comp))
    titles = [a.get_title(loc="left") for a in fig.axes]
    assert "PRIOR CHECK FAILED" in titles[0] and f"({reason}; R-hat 1.02 > 1.01)" in titles[0]
    assert "DIAGNOSTICS" not in titles[1]
