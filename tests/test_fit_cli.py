"""``nbdid fit`` end to end (in-process, sharing compiled models with other tests)."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

from nbdid.cli import main
from nbdid.models.simulate import simulate_panel

pytestmark = pytest.mark.filterwarnings(
    "ignore:PyTensor could not link to a BLAS installation:UserWarning"
)
FAST = ["--draws", "150", "--tune", "150", "--chains", "2", "--seed", "4"]


@pytest.fixture(scope="module")
def panel_csv(tmp_path_factory):
    panel, _ = simulate_panel("poisson", n_pairs=15, did=-0.5, seed=9)
    path = tmp_path_factory.mktemp("panel") / "panel.csv"
    panel.to_csv(path, index=False)
    return path


def test_fit_writes_netcdf_and_summary(panel_csv, tmp_path, capsys):
    out = tmp_path / "res"
    rc = main(["fit", "--data", str(panel_csv), "--indicator", "crime", "--out", str(out), *FAST])
    assert rc == 0
    err = capsys.readouterr().err
    assert "nbdid fit: fitting crime" in err and "SYNTHETIC" in err
    idata = az.from_netcdf(out / "crime.nc")
    assert idata.posterior["did"].shape == (2, 150)
    assert idata.posterior.attrs["nbdid_indicator"] == "crime"
    assert idata.posterior.attrs["nbdid_synthetic"] == "true"
    assert "posterior_predictive" in idata.groups()
    assert idata.attrs["nbdid_seed"] == "4"  # top-level provenance survives NetCDF

    # the saved file is enough to recompute the estimands
    from nbdid.analysis.estimands import summarise_effects
    from nbdid.models.design import design_from_dataset

    again = summarise_effects(idata, design_from_dataset(idata.constant_data))
    s = pd.read_csv(out / "summary.csv")
    for c in ["indicator", "estimand", "scale", "mean", "sd", "q2.5", "q97.5", "prob_benefit",
              "gate", "rhat_max", "ess_bulk_min", "divergences", "synthetic", "notice"]:
        assert c in s.columns
    link = s[(s["estimand"] == "did") & (s["scale"] == "link")].iloc[0]
    assert link["mean"] == pytest.approx(float(idata.posterior["did"].mean()), rel=1e-6)
    np.testing.assert_allclose(again["mean"].to_numpy(), s["mean"].to_numpy(), rtol=1e-9)
    assert again["scale"].tolist() == s["scale"].tolist()
    assert s["gate"].str.startswith("FAILED").all()  # 150 draws cannot pass ESS >= 400
    assert s["notice"].str.contains("SYNTHETIC DATA").all()

    # a second run must not overwrite silently
    before = (out / "summary.csv").read_bytes()
    rc = main(["fit", "--data", str(panel_csv), "--indicator", "crime", "--out", str(out), *FAST])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--force" in err
    assert (out / "summary.csv").read_bytes() == before


def test_user_key_with_family(panel_csv, tmp_path, capsys):
    panel = pd.read_csv(panel_csv)
    panel["indicator"] = "fly_tipping"
    path = tmp_path / "fly.csv"
    panel.to_csv(path, index=False)
    rc = main(["fit", "--data", str(path), "--indicator", "fly_tipping", "--out",
               str(tmp_path / "o")])
    assert rc == 2
    assert "--family" in capsys.readouterr().err
    rc = main(["fit", "--data", str(path), "--indicator", "fly_tipping", "--family", "negbin",
               "--lower-is-better", "--out", str(tmp_path / "o"), "--quiet", *FAST])
    assert rc == 0
    s = pd.read_csv(tmp_path / "o" / "summary.csv")
    assert set(s.loc[s["estimand"] == "did", "scale"]) == {"link", "rate_ratio", "per 1,000",
                                                          "percent"}
    assert s.loc[0, "prob_benefit"] > 0.9  # did < 0 and lower is better


def test_model_errors_are_one_line(panel_csv, tmp_path, capsys):
    panel = pd.read_csv(panel_csv)
    one = tmp_path / "one_period.csv"
    panel[panel["period"] == 0].to_csv(one, index=False)
    rc = main(["fit", "--data", str(one), "--indicator", "crime", "--out", str(tmp_path / "x")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "Traceback" not in "\n".join(lines)
    assert lines[-1].startswith("nbdid fit: error: ") and "only one period" in lines[-1]
    assert all(line.startswith("nbdid fit: ") for line in lines)  # progress, then one error
    assert not (tmp_path / "x" / "crime.nc").exists()
