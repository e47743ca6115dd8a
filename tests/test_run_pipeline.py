"""``nbdid run`` end to end on the embedded synthetic panel (one indicator, few draws)."""

from __future__ import annotations

import json
from pathlib import Path

import arviz as az
import pandas as pd
import pytest

from nbdid.cli import main
from nbdid.data_prep.schema import write_panel
from nbdid.data_prep.synthetic import load_default_panel
from nbdid.provenance import SYNTHETIC_NOTICE

pytestmark = pytest.mark.filterwarnings(
    # PyTensor warns once when it cannot link to a BLAS library; an environment notice.
    "ignore:.*BLAS.*:UserWarning"
)


@pytest.fixture(scope="module")
def run_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("run")
    # the default panel with a ward-level covariate column, adjusted for in the config:
    # a run's panel is checked with the covariates its model uses
    panel = load_default_panel()
    wards = sorted(panel["ward"].unique())
    panel["baseline_imd"] = panel["ward"].map({w: (i * 37) % 29 / 29 for i, w in enumerate(wards)})
    write_panel(panel, tmp / "panel.csv", covariates=("baseline_imd",))
    cfg = tmp / "run.toml"
    cfg.write_text(
        'panel = "panel.csv"\nindicators = ["out_of_work_benefits"]\n'
        "[sampler]\ndraws = 150\ntune = 150\nchains = 2\n"
        '[model]\ncovariates = ["baseline_imd"]\n'
    )
    out = tmp / "results"
    assert main(["run", "--config", str(cfg), "--out", str(out)]) in (0,)
    return out


def test_run_writes_every_output(run_out: Path) -> None:
    for name in ("comparison.csv", "summary.csv", "trajectories.csv", "diagnostics.csv",
                 "run_info.json", "posteriors/out_of_work_benefits.nc", "figures/forest.png",
                 "figures/forest.svg", "figures/diagnostics.png",
                 "figures/trajectory_out_of_work_benefits.png", "replication/table1.csv",
                 "replication/tipping_points.csv"):
        assert (run_out / name).is_file(), name
    assert not [p for p in run_out.rglob(".*") if p.is_file()]  # no temporary leftovers


def test_outputs_say_synthetic(run_out: Path) -> None:
    comp = pd.read_csv(run_out / "comparison.csv")
    assert comp.synthetic.all() and (comp.notice == SYNTHETIC_NOTICE).all()
    for name in ("summary.csv", "trajectories.csv", "diagnostics.csv"):
        assert (pd.read_csv(run_out / name).notice == SYNTHETIC_NOTICE).all(), name
    assert json.loads((run_out / "run_info.json").read_text())["synthetic"] is True
    svg = (run_out / "figures" / "forest.svg").read_text()
    assert "SYNTHETIC" in svg


def test_comparison_row(run_out: Path) -> None:
    comp = pd.read_csv(run_out / "comparison.csv").iloc[0]
    assert comp.indicator == "out_of_work_benefits"
    assert comp.report_did == pytest.approx(-0.6)
    assert comp.report_did_lower == pytest.approx(-1.4) and comp.report_did_upper == pytest.approx(0.2)
    assert not comp.report_significant
    assert comp["posterior_q2.5"] < comp.posterior_did < comp["posterior_q97.5"]
    assert 0 <= comp.prob_benefit <= 1
    assert isinstance(comp.gate, str) and comp.gate


def test_netcdf_opens_with_provenance(run_out: Path) -> None:
    idata = az.from_netcdf(run_out / "posteriors" / "out_of_work_benefits.nc")
    attrs = idata.posterior.attrs
    assert attrs["nbdid_synthetic"] == "true"
    assert len(attrs["nbdid_data_sha256"]) == 64
    assert attrs["nbdid_seed"] and "version_pymc" in attrs and "[sampler]" in attrs["nbdid_config"]
    assert "did" in idata.posterior
    assert attrs["nbdid_covariates"] == "baseline_imd"  # the config's covariate was used


def test_rerun_refuses_to_overwrite(run_out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (run_out / "comparison.csv").read_bytes()
    assert main(["run", "--out", str(run_out)]) == 2
    err = capsys.readouterr().err
    assert "--force" in err and err.count("\n") == 1
    assert (run_out / "comparison.csv").read_bytes() == before


def test_config_names_a_bad_panel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    panel = tmp_path / "p.csv"
    panel.write_text("indicator,ward\ncrime,W1\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'panel = "{panel.name}"\n')
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert str(panel) in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto distribution:UserWarning")
def test_loo_works_on_every_posterior_run_writes(run_out: Path) -> None:
    for nc in sorted((run_out / "posteriors").glob("*.nc")):
        idata = az.from_netcdf(nc)
        assert {"log_likelihood", "log_prior"} <= set(idata.groups()), nc.name
        assert az.loo(idata).elpd_loo < 0, nc.name
    diag = pd.read_csv(run_out / "diagnostics.csv")
    assert {"elpd_loo", "pareto_k_high", "did_prior_sensitivity", "prior_flags", "structure"} <= set(diag.columns)
