"""Resumable runs: ``nbdid run`` records its progress; an interrupted run is recognised
and resumed; infeasible panels fail before any work.

One small run (two Poisson indicators of the embedded panel, a few nutpie draws; the
compiled models are shared by every run in this process) is made three ways: uninterrupted,
interrupted after its first indicator, and resumed.  The resumed run must reuse the
saved posterior (not sample it again) and end with the same numbers as the
uninterrupted one.
"""

from __future__ import annotations

import json
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest

from nbdid.cli import main
from nbdid.outputs import unfinished_run
from nbdid.runtime import Terminated

pytestmark = pytest.mark.filterwarnings(
    "ignore:PyTensor could not link to a BLAS installation:UserWarning",
    # arviz diagnostics of a 30-draw single chain (R-hat of one chain is NaN)
    "ignore::RuntimeWarning",
)

CONFIG = """
indicators = ["crime", "burglary"]
[sampler]
draws = 30
tune = 30
chains = 1
seed = {seed}
[frequentist]
ri_draws = 100
"""

TABLES = ("comparison.csv", "summary.csv", "trajectories.csv", "diagnostics.csv",
          "concordance.csv", "concordance_summary.csv", "concordance_groups.csv")


def _config(tmp: Path, seed: int = 7) -> Path:
    p = tmp / f"run{seed}.toml"
    p.write_text(CONFIG.format(seed=seed), encoding="utf-8")
    return p


def assert_same_results(a: Path, b: Path, indicators=("crime", "burglary")) -> None:
    """The tables and posteriors of two run folders are equal (timings aside)."""
    for name in TABLES:
        pd.testing.assert_frame_equal(pd.read_csv(a / name), pd.read_csv(b / name), obj=name)
    for key in indicators:
        pa, pb = (az.from_netcdf(f / "posteriors" / f"{key}.nc") for f in (a, b))
        for var in pa.posterior.data_vars:
            np.testing.assert_array_equal(pa.posterior[var].values, pb.posterior[var].values)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    out = tmp / "ref"
    assert main(["run", "--config", str(_config(tmp)), "--out", str(out), "--no-report"]) == 0
    assert unfinished_run(out) is None
    assert not [p for p in out.rglob(".*")]  # no lock, marker or temporary file left
    return out


def _interrupt_at(monkeypatch, indicator: str, exc=KeyboardInterrupt):
    """Make the fit of ``indicator`` raise ``exc`` (as Ctrl-C during its sampling)."""
    import nbdid.workflow.fit as wf

    real = wf.fit

    def fit(panel, key, **kw):
        if key == indicator:
            raise exc()
        return real(panel, key, **kw)

    monkeypatch.setattr(wf, "fit", fit)


def _count_sampling(monkeypatch) -> list[str]:
    from nbdid.models.sampling import CompiledModelCache

    sampled: list[str] = []
    real = CompiledModelCache.sample

    def sample(self, design, model_cfg, sampler_cfg):
        sampled.append(design.indicator)
        return real(self, design, model_cfg, sampler_cfg)

    monkeypatch.setattr(CompiledModelCache, "sample", sample)
    return sampled


def test_interrupted_run_is_recognised_and_resumed(reference, tmp_path, monkeypatch, capsys):
    cfg = _config(tmp_path)
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        _interrupt_at(m, "burglary")
        assert main(["run", "--config", str(cfg), "--out", str(out), "--no-report"]) == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "nbdid run: interrupted" and "Traceback" not in err
    # the folder says it is unfinished, with crime's posterior saved as it finished
    marker = unfinished_run(out)
    assert marker is not None and marker["command"] == "run"
    assert marker["state"]["finished"] == ["crime"]
    assert (out / "posteriors" / "crime.nc").is_file()
    assert not (out / "comparison.csv").exists() and not (out / "run_info.json").exists()

    # nbdid run --resume: crime comes from disk, only burglary is sampled
    sampled = _count_sampling(monkeypatch)
    assert main(["run", "--config", str(cfg), "--out", str(out), "--no-report", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "resuming the unfinished run" in err and "crime reused" in err
    assert sampled == ["burglary"]
    assert unfinished_run(out) is None and not [p for p in out.rglob(".*")]
    info = json.loads((out / "run_info.json").read_text())
    assert info["resumed"] == {"reused": ["crime"]}
    assert_same_results(reference, out)

    # a finished folder: nothing to resume, and results are not overwritten
    assert main(["run", "--config", str(cfg), "--out", str(out), "--no-report", "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert main(["run", "--config", str(cfg), "--out", str(out), "--no-report"]) == 2
    assert "--force" in capsys.readouterr().err


@pytest.mark.slow
def test_same_command_resumes_and_other_settings_start_over(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        _interrupt_at(m, "burglary", exc=Terminated)
        assert main(["run", "--config", str(_config(tmp_path)), "--out", str(out),
                     "--no-report"]) == 143
    assert capsys.readouterr().err.strip().splitlines()[-1] == "nbdid run: terminated"
    # another seed cannot reuse the saved posterior: --resume refuses ...
    other = _config(tmp_path, seed=8)
    assert main(["run", "--config", str(other), "--out", str(out), "--no-report", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "another seed" in err and err.count("\n") == 1
    # ... and the plain command starts over (the unfinished files are not results)
    sampled = _count_sampling(monkeypatch)
    assert main(["run", "--config", str(other), "--out", str(out), "--no-report"]) == 0
    assert "starting over" in capsys.readouterr().err
    assert sampled == ["crime", "burglary"]
    assert unfinished_run(out) is None


def test_infeasible_panel_fails_before_any_work(tmp_path, capsys):
    """A panel with one group fails at once, naming the indicator, with no output
    (before: replication, seven 'cannot be fitted' lines and partial output)."""
    from nbdid.data_prep.synthetic import load_default_panel

    panel = load_default_panel()
    one = panel[(panel["group"] == "nbi") & (panel["indicator"] == "crime")].assign(pair=pd.NA)
    path = tmp_path / "one_group.csv"
    one.to_csv(path, index=False)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'panel = "{path.name}"\nindicators = ["crime"]\n', encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", "--config", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "one group" in err and "crime" in err, err
    assert not out.exists()
