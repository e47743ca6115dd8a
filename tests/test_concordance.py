"""Concordance table, summary, figure and the ``nbdid compare`` command."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from nbdid.analysis import frequentist as fq
from nbdid.analysis.comparison import report_did_table
from nbdid.analysis.concordance import (
    CONCORDANCE_COLUMNS,
    concordance,
    concordance_summary,
    format_summary,
    published_intervals,
)
from nbdid.cli import main
from nbdid.cli.compare import RI_DRAWS_HELP
from nbdid.data_prep.schema import write_panel
from nbdid.data_prep.synthetic import load_default_panel
from nbdid.figures import plot_concordance
from nbdid.models.simulate import simulate_panel
from nbdid.provenance import SYNTHETIC_NOTICE
from nbdid.registry import INDICATORS
from nbdid.workflow.compare import CONCORDANCE_FILES

REQUIRED = ("indicator", "method", "estimate", "lower", "upper", "significant")


@pytest.fixture(scope="module")
def default_conc() -> pd.DataFrame:
    return concordance(load_default_panel(), draws=2000)


def test_default_panel_reproduces_published_and_computes_every_method(default_conc):
    c = default_conc
    assert list(c.columns) == list(CONCORDANCE_COLUMNS)
    assert len(c) == len(INDICATORS) * len(fq.METHODS)
    pooled = c[c.method == "report_pooled"].set_index("indicator")
    assert pooled["reproduces_published"].fillna(False).all()
    assert c.loc[c.method != "report_pooled", "reproduces_published"].isna().all()
    # the recomputed DiD is the published one up to the rounding of four printed values
    pub = report_did_table().set_index("indicator")
    for key, r in pooled.iterrows():
        tol = 4 * 0.5 * 10 ** -INDICATORS[key].decimals + 1e-9
        assert abs(r.estimate - pub.loc[key, "report_did"]) <= tol, key
    for m in ("report_pooled", "glm_cluster", "randomization", "paired_t"):
        sub = c[c.method == m]
        vals = sub[["estimate", "lower", "upper", "p_value", "ratio", "ratio_lower", "ratio_upper"]]
        assert np.isfinite(vals.to_numpy(float)).all(), m
        assert sub["significant"].notna().all(), m
        assert (sub["lower"] <= sub["estimate"]).all() and (sub["estimate"] <= sub["upper"]).all(), m
    bayes = c[c.method == "bayes"]
    assert bayes["estimate"].isna().all() and (bayes["note"] == "not computed: no posterior").all()
    assert c["synthetic"].all() and (c["notice"] == SYNTHETIC_NOTICE).all()
    assert (c["n_pairs"] == 29).all() and (c["n_wards"] == 58).all()


def test_summary_lists_significant_methods(default_conc):
    s = concordance_summary(default_conc)
    assert len(s) == len(INDICATORS)
    for _, r in s.iterrows():
        sub = default_conc[default_conc.indicator == r.indicator]
        sig = sub.loc[sub["significant"].fillna(False).astype(bool), "method"].tolist()
        assert r.significant_methods == (", ".join(sig) if sig else "none")
        assert r.n_significant == len(sig)
        assert r.n_computed == 4 and r.not_computed == "bayes" and r.bayes == "n/a"
    pub = published_intervals().set_index("indicator")
    crime = s.set_index("indicator").loc["crime"]
    assert crime.published_significant.startswith("yes") == bool(pub.loc["crime", "report_significant"])
    text = format_summary(s)
    assert SYNTHETIC_NOTICE in text
    assert "reproduce Tables 5A-11A (to the report's rounding) for 7 of 7 indicators" in text


def test_figure_has_a_panel_per_indicator_and_the_published_interval(default_conc):
    fig = plot_concordance(default_conc, published=published_intervals())
    assert isinstance(fig, Figure)
    visible = [a for a in fig.axes if a.get_visible()]
    assert len(visible) == len(INDICATORS)
    labels = [t.get_text() for t in visible[0].get_yticklabels()]
    assert labels[0].startswith("PUBLISHED")
    assert len(labels) == len(fq.METHODS) + 1
    assert "SYNTHETIC DATA" in fig._suptitle.get_text()
    texts = " ".join(t.get_text() for a in visible for t in a.texts)
    assert "no posterior" in texts
    with pytest.raises(ValueError, match="missing columns"):
        plot_concordance(default_conc.drop(columns="significant"))


def test_concordance_of_a_simulated_panel_without_published_values():
    panel, _ = simulate_panel("price", n_pairs=8, did=0.1, seed=3, synthetic=False)
    panel["indicator"] = "house_prices"
    c = concordance(panel)
    assert set(c.method) == set(fq.METHODS)
    assert c["reproduces_published"].isna().all()
    assert not c["synthetic"].any() and (c["notice"] == "").all()
    assert "exact, all 256" in c.set_index("method").loc["randomization", "test"]
    fig = plot_concordance(c, published=published_intervals())
    assert "PUBLISHED" not in [t.get_text() for t in fig.axes[0].get_yticklabels()][0]
    s = concordance_summary(c)
    assert s["published_significant"].iloc[0] == "n/a"


# ----------------------------------------------------------------------------------------
# nbdid compare
# ----------------------------------------------------------------------------------------


def test_compare_cli_end_to_end_without_posterior(tmp_path, capsys):
    out = tmp_path / "cmp"
    rc = main(["compare", "--no-posterior", "--out", str(out), "--indicators", "crime", "burglary",
               "--ri-draws", "500"])
    assert rc == 0
    for name in (*CONCORDANCE_FILES, "compare_info.json"):
        assert (out / name).is_file(), name
    c = pd.read_csv(out / "concordance.csv")
    assert set(REQUIRED) <= set(c.columns)
    assert len(c) == 2 * len(fq.METHODS)
    assert c.loc[c.method == "report_pooled", "reproduces_published"].all()
    assert c["notice"].eq(SYNTHETIC_NOTICE).all()
    assert (c.loc[c.method == "bayes", "note"] == "not computed: --no-posterior").all()
    info = json.loads((out / "compare_info.json").read_text())
    assert info["randomization"] == {"draws": 500, "seed": fq.RI_SEED, "exact_up_to_pairs": 16}
    assert info["synthetic"] is True
    printed = capsys.readouterr()
    assert "crime" in printed.out and "agreement" in printed.out
    assert SYNTHETIC_NOTICE in printed.err
    # never overwrite silently
    rc = main(["compare", "--no-posterior", "--out", str(out), "--indicators", "crime"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--force" in err[0]
    assert main(["compare", "--no-posterior", "--out", str(out), "--indicators", "crime",
                 "--ri-draws", "500", "--force"]) == 0


def test_compare_cli_reads_posteriors_of_an_earlier_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    summ = pd.DataFrame([
        {"indicator": "crime", "estimand": "did", "scale": "link", "mean": -0.05, "sd": 0.03,
         "q2.5": -0.11, "q97.5": 0.01, "prob_benefit": 0.95, "gate": "passed"},
        {"indicator": "crime", "estimand": "did", "scale": "rate_ratio", "mean": 0.95, "sd": 0.03,
         "q2.5": 0.9, "q97.5": 1.01, "prob_benefit": 0.95, "gate": "passed"},
        {"indicator": "crime", "estimand": "did", "scale": "per 1,000 population", "mean": -7.0,
         "sd": 4.0, "q2.5": -15.0, "q97.5": 1.0, "prob_benefit": 0.95, "gate": "passed"},
    ])
    summ.to_csv(run / "summary.csv", index=False)
    out = tmp_path / "cmp"
    rc = main(["compare", "--posteriors", str(run), "--out", str(out), "--indicators", "crime",
               "burglary", "--ri-draws", "500"])
    assert rc == 0
    c = pd.read_csv(out / "concordance.csv").set_index(["indicator", "method"])
    b = c.loc[("crime", "bayes")]
    assert (b.estimate, b.lower, b.upper, b.ratio, b.gate) == (-7.0, -15.0, 1.0, 0.95, "passed")
    assert not b.significant
    assert "has no posterior for 'burglary'" in c.loc[("burglary", "bayes"), "note"]


def test_compare_cli_user_panel_and_errors(tmp_path, capsys):
    panel, _ = simulate_panel("poisson", n_pairs=10, did=-0.3, seed=4, synthetic=False)
    panel["indicator"] = "fly_tipping"
    path = tmp_path / "panel.csv"
    panel.attrs["families"] = {"fly_tipping": "poisson"}
    write_panel(panel, path)
    out = tmp_path / "cmp"
    rc = main(["compare", "--data", str(path), "--family", "fly_tipping=poisson", "--no-posterior",
               "--out", str(out)])
    assert rc == 0
    c = pd.read_csv(out / "concordance.csv")
    assert set(c.indicator) == {"fly_tipping"} and not c["synthetic"].any()
    assert c.loc[c.method == "randomization", "test"].str.contains("exact, all 1,024").all()
    capsys.readouterr()
    for argv, msg in (
        (["compare", "--no-posterior", "--out", str(tmp_path / "x"), "--indicators", "nope"], "no rows for nope"),
        (["compare", "--posteriors", str(tmp_path / "missing"), "--out", str(tmp_path / "y")], "no summary.csv"),
        (["compare", "--data", str(path), "--no-posterior", "--out", str(tmp_path / "z")], "give its family"),
        (["compare", "--family", "bad", "--no-posterior", "--out", str(tmp_path / "w")], "--family must look like"),
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err


def test_help_default_matches_the_constant():
    assert int(RI_DRAWS_HELP) == fq.RI_DRAWS


def test_run_output_names_include_the_concordance():
    from nbdid.workflow.run import run_outputs as output_names

    names = output_names(("crime",))
    assert set(CONCORDANCE_FILES) <= set(names)


@pytest.mark.slow
# PyTensor warns once when it cannot link to a BLAS library; an environment notice.
@pytest.mark.filterwarnings("ignore:.*BLAS.*:UserWarning")
def test_compare_cli_fits_with_a_tiny_sampler(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text("[sampler]\ndraws = 100\ntune = 100\nchains = 2\n", encoding="utf-8")
    out = tmp_path / "cmp"
    rc = main(["compare", "--config", str(cfg), "--out", str(out), "--indicators", "burglary",
               "--ri-draws", "500"])
    assert rc == 0
    c = pd.read_csv(out / "concordance.csv").set_index("method")
    b = c.loc["bayes"]
    assert math.isfinite(b.estimate) and b.lower < b.estimate < b.upper
    assert isinstance(b.gate, str) and b.gate
