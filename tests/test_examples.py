"""The example scripts in docs/examples run, with tiny sampler settings.

They run in this process (``runpy``), so that the models compiled by other tests are
reused; the numbers of such tiny runs mean nothing, only that the scripts work
against the public API.
"""

from __future__ import annotations

import runpy
import sys
import warnings
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def test_every_example_is_listed():
    assert SCRIPTS == ["change_a_prior.py", "compare_structures_loo.py", "fit_one_indicator.py",
                       "small_sweep.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script, tmp_path, monkeypatch, capsys):
    matplotlib.use("Agg")
    monkeypatch.setenv("NBDID_EXAMPLE_DRAWS", "60")
    monkeypatch.setenv("NBDID_EXAMPLE_TUNE", "60")
    monkeypatch.setenv("NBDID_EXAMPLE_CHAINS", "2")
    monkeypatch.setenv("NBDID_EXAMPLE_OUT", str(tmp_path))
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.delitem(sys.modules, "_settings", raising=False)
    with warnings.catch_warnings():
        # tiny posteriors make ArviZ warn about Pareto k and few draws; that is the point
        # of tiny settings, not a problem of the scripts
        warnings.simplefilter("ignore", UserWarning)
        # az.compare (ArviZ 0.23) sorts with pandas' deprecated inplace keyword
        warnings.filterwarnings("ignore", message="The inplace keyword", category=FutureWarning)
        warnings.filterwarnings("ignore", message="The inplace keyword",
                                category=getattr(pd.errors, "Pandas4Warning", FutureWarning))
        runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    out = capsys.readouterr().out
    assert out.strip(), f"{script} printed nothing"
    if script == "fit_one_indicator.py":
        assert (tmp_path / "fit_one_indicator" / "fit" / "crime.nc").is_file()
        assert (tmp_path / "fit_one_indicator" / "trajectory_crime.png").is_file()
        assert "diagnostics gate" in out
    if script == "compare_structures_loo.py":
        assert "elpd_loo" in out and "no pair effects" in out
    if script == "small_sweep.py":
        assert (tmp_path / "small_sweep" / "sensitivity.csv").is_file()
        assert "SYNTHETIC" in out
