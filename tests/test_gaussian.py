"""The Gaussian family: a continuous ward outcome on its own scale (identity link)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from nbdid.data_prep.schema import read_panel, validate_panel
from nbdid.errors import InputError, ModelError
from nbdid.families import FAMILIES, FAMILY_CHOICES, get_family, resolve_family
from nbdid.models.design import build_design
from nbdid.models.sampling import CompiledModelCache
from nbdid.models.simulate import simulate_panel

pytestmark = pytest.mark.filterwarnings(
    "ignore:PyTensor could not link to a BLAS installation:UserWarning"
)
TINY = dict(draws=300, tune=300, chains=2, seed=2)


@pytest.fixture(scope="module")
def panel():
    p, truth = simulate_panel("gaussian", indicator="score", n_pairs=12, did=0.4, base=10.0,
                              sigma_change=0.3, seed=31)
    return p, truth


def test_registered_with_its_columns():
    fam = get_family("gaussian")
    assert "gaussian" in FAMILIES and "gaussian" in FAMILY_CHOICES
    assert (fam.link, fam.ratio_scale, fam.required) == ("identity", None, ("value",))
    # a user key with only a value column is recognised as Gaussian
    assert resolve_family("score", columns_present={"value", "sd"}).name == "gaussian"


def test_panel_rows_are_checked(panel, tmp_path):
    p = panel[0].copy()
    validate_panel(p, families={"score": "gaussian"})
    bad = p.copy()
    bad.loc[3, "sd"] = -1.0
    with pytest.raises(InputError, match="column 'sd': sd must be positive, not -1"):
        validate_panel(bad, families={"score": "gaussian"})
    bad = p.copy()
    bad.loc[0, "value"] = np.nan
    with pytest.raises(InputError, match="line 2, column 'value': value is empty"):
        validate_panel(bad, families={"score": "gaussian"})
    # sd for some rows only: refused when the model is built
    part = p.copy()
    part.loc[part.index[:3], "sd"] = np.nan
    with pytest.raises(ModelError, match="sd is given for some rows but not for ward"):
        build_design(validate_panel(part, families={"score": "gaussian"}), "score", "gaussian")


def test_fit_reports_the_did_in_the_outcome_units(panel):
    from nbdid.workflow.fit import fit

    p, truth = panel
    # the process-wide cache: the command-line test below reuses this compiled model
    res = fit(p, "score", family="gaussian", **TINY)
    s = res.summary.set_index(["estimand", "scale"])
    assert ("did", "link") in s.index and ("did", "units") in s.index
    assert not any(sc in ("percent", "odds_ratio", "rate_ratio", "price_ratio") for _, sc in s.index)
    assert ("did_additive", "units") not in s.index  # the link is already additive
    # identity link: the population-averaged DiD is the link-scale DiD, draw by draw
    assert s.loc[("did", "units"), "mean"] == pytest.approx(s.loc[("did", "link"), "mean"], rel=1e-9)
    lo, hi = s.loc[("did", "link"), ["q2.5", "q97.5"]]
    assert lo < truth.did < hi
    assert res.did["scale"] == "units"
    assert "sigma_wp" not in res.idata.posterior  # a known SD and a ward change: no residual


@pytest.mark.slow
def test_without_a_known_sd_the_residual_sd_is_estimated_per_group(panel):
    """Slow (its own compilation); the structure rule itself is checked in the default
    suite by tests/test_identifiability.py and its log-likelihood by test_model_numpy."""
    from nbdid.workflow.fit import fit

    p = panel[0].copy()
    p["sd"] = np.nan
    res = fit(p, "score", family="gaussian", compiled_cache=CompiledModelCache(), **TINY)
    post = res.idata.posterior
    assert "sigma_wp_nbi" in post and "sigma_wp_benchmark" in post and "ward_change" not in post
    assert any("residual SD takes the ward change's place" in n for n in res.notes)
    assert "residual SD estimated per group" in res.text()


def test_cli_fits_a_gaussian_panel(panel, tmp_path, capsys):
    from nbdid.cli import main

    path = tmp_path / "p.csv"
    panel[0].to_csv(path, index=False)  # the fixture's panel: a warm refit, no compilation
    # a prior that decides the DiD (prior parameters are data: still no compilation)
    rc = main(["fit", "--data", str(path), "--indicator", "score", "--family", "gaussian",
               "--out", str(tmp_path / "o"), "--draws", "100", "--tune", "100", "--chains", "2",
               "--prior", "did=normal(0,0.001)", "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "score (gaussian): DiD" in out
    # the prior check is printed and fails the gate, like a sampling failure
    flag = r"did \(prior normal\(0, 0.001\)"
    assert re.search(r"prior check: prior[- ].*" + flag, out), out
    assert re.search(r"diagnostics: FAILED: .*" + flag, out), out
    s = pd.read_csv(tmp_path / "o" / "summary.csv")
    assert set(s.loc[s.estimand == "did", "scale"]) == {"link", "units"}
    assert s["gate"].str.contains(flag).all() and s["prior_flags"].str.contains(flag).all()
    assert (s["did_sd_ratio"] > 0.5).all()  # the posterior is the prior


def test_frequentist_twin_handles_the_gaussian_family(panel):
    from nbdid.analysis.frequentist import prepare

    data = prepare(panel[0], "score", family="gaussian")
    assert data.ratio_scale is None and data.unit == "units"


def test_reference_panel_reads_with_known_sds():
    from pathlib import Path

    path = Path(__file__).resolve().parent / "reference" / "glmm" / "gaussian_panel.csv"
    p = read_panel(path, families={"score": "gaussian"})
    d = build_design(p, "score", "gaussian")
    assert d.family.structure(d.arrays) == ("known sd",) and d.n_obs == 2 * 329
