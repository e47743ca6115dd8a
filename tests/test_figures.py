"""Figures: plot_x(data, *, ax=None) -> Figure, no pyplot state, synthetic notice visible."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.figure import Figure

from nbdid.analysis.comparison import forest_data, report_did_table
from nbdid.data_prep.published import load_report_values
from nbdid.figures import plot_diagnostics, plot_forest, plot_trajectories
from nbdid.provenance import SYNTHETIC_NOTICE
from nbdid.registry import INDICATORS


def _texts(fig: Figure) -> str:
    parts = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        parts += [t.get_text() for t in ax.texts] + [ax.get_title()]
        parts += [t.get_text() for t in ax.get_yticklabels()]
    if fig._suptitle is not None:
        parts.append(fig._suptitle.get_text())
    return "\n".join(parts)


def _comparison() -> pd.DataFrame:
    rep = report_did_table()
    comp = rep.assign(
        title=[INDICATORS[k].title for k in rep.indicator],
        unit=[INDICATORS[k].unit for k in rep.indicator],
        posterior_did=rep.report_did * 0.5,
        **{"posterior_q2.5": rep.report_did - 10, "posterior_q97.5": rep.report_did + 10},
        prob_benefit=0.7,
        gate=["passed"] * 6 + ["FAILED: R-hat 1.05 > 1.01"],
        synthetic=True,
    )
    return comp


def test_forest_marks_synthetic_and_failed_fits() -> None:
    before = plt.get_fignums()
    fig = plot_forest(forest_data(_comparison()))
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == before  # no pyplot global state
    text = _texts(fig)
    assert SYNTHETIC_NOTICE.split(":")[0] in text
    assert "DIAGNOSTICS FAILED" in text
    assert all(INDICATORS[k].title in text for k in INDICATORS)


def test_forest_draws_on_given_axes() -> None:
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_forest(forest_data(_comparison()), ax=ax, synthetic=False) is fig
    assert "SYNTHETIC" not in _texts(fig)


def test_forest_rejects_missing_columns() -> None:
    with pytest.raises(ValueError, match="missing columns"):
        plot_forest(pd.DataFrame({"indicator": ["crime"]}))


def test_trajectories_and_diagnostics() -> None:
    vals = load_report_values()
    crime = vals[vals.indicator == "crime"]
    data = crime.assign(mean=crime.value, lower=crime.value - 3, upper=crime.value + 3)
    fig = plot_trajectories(data, report=crime, gate="FAILED: 3 divergences > 0", synthetic=True)
    text = _texts(fig)
    assert "Chart 3" in text and "DIAGNOSTICS FAILED" in text and "SYNTHETIC" in text
    with pytest.raises(ValueError, match="exactly one indicator"):
        plot_trajectories(vals.assign(mean=1.0, lower=0.0, upper=2.0))
    diag = pd.DataFrame(
        {"indicator": ["crime", "burglary"], "passed": [True, False], "rhat_max": [1.001, 1.05],
         "divergences": [0, 4]}
    )
    fig = plot_diagnostics(diag, synthetic=True)
    cells = [c.get_text().get_text() for c in fig.axes[0].tables[0].get_celld().values()]
    assert "FAILED" in cells and "passed" in cells
