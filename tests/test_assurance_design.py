"""``nbdid design`` end to end: tiny designs in this process (one compiled model).

One indicator, one design size, a handful of simulated studies and a tiny sampler, so
that the whole module compiles one model; the tasks run in this process
(``workers=0``), and every test below reuses its compiled model.  The executors
(local worker processes, Dask) are the sensitivity sweep's, tested in
``test_sweep_executor.py``; a design on a local worker process is in the slow checks
(``test_assurance_validation_slow.py``).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from nbdid.analysis import assurance as asr
from nbdid.cli import main as cli_main
from nbdid.config import DesignConfig, RunConfig, SamplerConfig
from nbdid.errors import InputError, OutputError
from nbdid.models.simulate import simulate_panel
from nbdid.provenance import SYNTHETIC_NOTICE
from nbdid.workflow import design as wd
from nbdid.workflow.fit import fit, save_fit
from nbdid.workflow.sweep import worker_cache

pytestmark = pytest.mark.filterwarnings(
    "ignore:PyTensor could not link to a BLAS installation:UserWarning"
)

TINY = SamplerConfig(draws=100, tune=100, chains=1)
AREAS = 8


def numbers(sims: pd.DataFrame) -> pd.DataFrame:
    """Simulation rows without their timing."""
    return sims.drop(columns=["fit_seconds", "seconds"]).reset_index(drop=True)


def tiny_config(**kw) -> DesignConfig:
    base = dict(indicators=("crime",), areas=(AREAS,), effects=(0.7,), sims=4, sigma_change=0.2,
                sampler=TINY, ri_draws=200)
    base.update(kw)
    return DesignConfig(**base)


@pytest.fixture(scope="module")
def small_tasks():
    mp = pytest.MonkeyPatch()
    mp.setattr(asr, "MAX_SIMS_PER_TASK", 2)  # two tasks of two studies: something to resume
    yield
    mp.undo()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, small_tasks):
    out = tmp_path_factory.mktemp("design") / "out"
    res = wd.design(tiny_config(), out, workers=0, progress=False, bootstrap=20)
    return out, res


def test_outputs_of_a_design(first_run):
    out, res = first_run
    sims = res.simulations
    assert len(sims) == 4 * 2  # four studies, at the effect and at no effect
    assert list(sims.columns) == list(wd.SIM_COLUMNS)
    eff = sims[np.isclose(sims["effect_ratio"], 0.7)]
    null = sims[np.isclose(sims["effect_ratio"], 1.0)]
    assert np.isfinite(eff["prob_benefit"]).all() and eff["prob_benefit"].between(0, 1).all()
    assert null["prob_benefit"].isna().all()  # no posterior at no effect unless asked
    for m in asr.FREQ_METHODS:
        assert sims[f"{m}_significant"].isin([0.0, 1.0]).all()
    # common random numbers: the same study index has the same seed at every effect
    assert (eff["seed"].to_numpy() == null["seed"].to_numpy()).all()
    t = res.table
    assert set(t["effect_ratio"].round(6)) == {0.7, 1.0}
    row = t[np.isclose(t["effect_ratio"], 0.7)].iloc[0]
    assert 0 <= row.assurance <= 1 and row.assurance_se > 0 and row.n_bayes == 4
    assert row.heterogeneity_source == "given" and not row.synthetic
    assert row.pooled_rule_fpr == t[np.isclose(t["effect_ratio"], 1.0)].iloc[0].power_report_pooled
    assert row.effect_unit < 0 and row.unit == "per 1,000 population"
    assert row.wards == 2 * AREAS and row.matching_ratio == 1
    # every task was written as it finished
    cells = sorted((out / wd.CELL_DIR).glob("*.csv"))
    assert len(cells) == 2 and res.fitted == 2 and res.reused == 0


def test_saved_results(first_run, tmp_path):
    _out, res = first_run
    folder = res.save(tmp_path / "saved")
    for name in wd.output_names(("crime",)):
        assert (folder / name).is_file(), name
    table = pd.read_csv(folder / "assurance.csv")
    for col in ("assurance", "assurance_se", "power_glm_cluster", "power_randomization",
                "power_paired_t", "pooled_rule_fpr", "type_s_bayes", "type_m_bayes", "mde_ratio",
                "heterogeneity_source"):
        assert col in table.columns
    md = (folder / "summary.md").read_text()
    assert "To detect a 30% fall in Overall Crime Rate" in md
    assert "given: SD of ward change 0.2" in md
    info = json.loads((folder / "design_info.json").read_text())
    assert info["heterogeneity"]["crime"]["source"] == "given" and info["simulations"] == 4
    het = pd.read_csv(folder / "heterogeneity.csv")
    assert het["sigma_change_median"].item() == 0.2
    with pytest.raises(OutputError, match="already holds results"):
        res.save(folder)
    assert not list(folder.rglob("*.tmp"))


def test_rerun_reuses_every_task_and_resume_refits_only_the_missing_one(first_run, tmp_path):
    out, res = first_run
    again = wd.design(tiny_config(), out, workers=0, progress=False, bootstrap=20)
    assert again.fitted == 0 and again.reused == 2
    pd.testing.assert_frame_equal(numbers(again.simulations), numbers(res.simulations))
    # an interrupted design: one task file missing
    cells = sorted((out / wd.CELL_DIR).glob("*.csv"))
    cells[1].unlink()
    resumed = wd.design(tiny_config(), out, workers=0, progress=False, bootstrap=20)
    assert resumed.fitted == 1 and resumed.reused == 1
    # same seeds, same numbers
    pd.testing.assert_frame_equal(numbers(resumed.simulations), numbers(res.simulations))
    # more studies later: the first ones are reused
    more = wd.design(tiny_config(sims=6), out, workers=0, progress=False, bootstrap=20)
    assert more.reused == 2 and more.fitted == 1
    pd.testing.assert_frame_equal(numbers(more.simulations[more.simulations["sim"] < 4]),
                                  numbers(res.simulations))


def test_heterogeneity_from_a_fitted_run(first_run, tmp_path):
    # a fit of the same shape reuses the compiled model of the design's refits
    panel, _ = simulate_panel("poisson", indicator="crime", n_pairs=AREAS, seed=9, sigma_change=0.3)
    task = wd.build_tasks(tiny_config(), {"crime": asr.heterogeneity_given("crime", sigma_change=0.2)},
                          wd.ModelConfig())[0][0]
    res = fit(panel, "crime", config=RunConfig(sampler=SamplerConfig(draws=100, tune=100, chains=2)),
              compiled_cache=worker_cache(), parameterization=task.forms)
    run_dir = tmp_path / "run"
    save_fit(res, run_dir)
    het = wd.load_heterogeneity(tiny_config(sigma_change=None, from_run=str(run_dir)))["crime"]
    assert het.source == "run" and het.n_draws == 200 and het.synthetic
    assert str(run_dir / "crime.nc") in het.description
    post = res.idata.posterior
    if "sigma_change_nbi" in post:  # one SD of change per group: their root mean square
        sc = np.sqrt((post["sigma_change_nbi"] ** 2 + post["sigma_change_benchmark"] ** 2) / 2)
        assert "root mean square" in het.description
    else:
        sc = post["sigma_change"]
    np.testing.assert_allclose(het.draws["sigma_change"], sc.values.ravel())
    np.testing.assert_allclose(het.draws["sigma_change_nbi"], sc.values.ravel())
    assert "SYNTHETIC DATA" in het.statement()
    with pytest.raises(InputError, match="no posterior of 'burglary'"):
        wd.load_heterogeneity(tiny_config(indicators=("burglary",), sigma_change=None,
                                          from_run=str(run_dir)))


def test_cli_design(first_run, tmp_path, capsys):
    out = tmp_path / "cli"
    code = cli_main(["design", "--indicator", "crime", "--areas", str(AREAS), "--effect=-30%",
                     "--sims", "2", "--sigma-change", "0.2", "--draws", "100", "--tune", "100",
                     "--chains", "1", "--ri-draws", "200", "--workers", "0", "--out", str(out),
                     "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "To detect a 30% fall in Overall Crime Rate" in printed
    assert "crime: given: SD of ward change 0.2" in printed
    table = pd.read_csv(out / "assurance.csv")
    assert set(table["effect_ratio"].round(6)) == {0.7, 1.0}
    assert (out / "figures" / "assurance_crime.png").is_file()
    # the folder holds results now: a second run needs --force
    code = cli_main(["design", "--indicator", "crime", "--areas", str(AREAS), "--sims", "2",
                     "--sigma-change", "0.2", "--workers", "0", "--out", str(out), "--quiet"])
    assert code != 0
    assert "already holds results" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--areas", "29,x"], "--areas: 'x' is not a whole number"),
    (["--areas", "1"], "'--areas' must be numbers of matched sets"),
    (["--effect", "0"], "'--effect' must be positive ratios"),
    (["--from-tipping", "--sigma-ward", "0.3"], "need --sigma-change"),
    (["--indicator", "fly_tipping"], "unknown indicator 'fly_tipping'"),
    (["--periods", "3", "--post-periods", "3"], "'--post-periods' must be at least 1"),
    (["--executor", "dask"], "--scheduler"),
    (["--draws", "0"], "'--draws' must be between"),
    (["--seed", "-5"], "'--seed' must be between 0 and 4294967295, not -5"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, argv, message):
    code = cli_main(["design", "--out", str(tmp_path / "x"), "--quiet", *argv])
    err = capsys.readouterr().err
    assert code != 0 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()  # bad input: nothing written


def test_default_source_is_marked_synthetic(monkeypatch):
    # the default source fits the default panel; checked here without sampling
    cfg = tiny_config(sigma_change=None)

    class Fake:
        passed = True
        gate = "passed"

        def __init__(self, design, posterior):
            self.design, self.idata = design, type("I", (), {"posterior": posterior})()

    het_given = asr.heterogeneity_given("crime", sigma_change=0.2)

    def fake_fit(panel, key, **kw):
        import xarray as xr

        from nbdid.models.design import build_design

        d = build_design(panel, key, "poisson")
        dims = ("chain", "draw")
        post = xr.Dataset({c: (dims, np.full((1, 3), 0.2)) for c in
                           ("sigma_ward", "sigma_change", "sigma_pair", "intercept", "group_effect")})
        post["period_effect"] = (("chain", "draw", "period"), np.zeros((1, 3, 2)))
        return Fake(d, post)

    monkeypatch.setattr(wd, "fit", fake_fit)
    het = wd.load_heterogeneity(cfg)["crime"]
    assert het.source == "default" and het.synthetic and "SYNTHETIC default panel" in het.description
    assert het_given.synthetic is False
    assert SYNTHETIC_NOTICE in het.summary()["notice"]
