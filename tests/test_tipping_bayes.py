"""The Bayesian tipping point on the published aggregates (nbdid.analysis.tipping_bayes).

Every expected number is computed here from the published values and half-widths with
textbook formulas (normal-normal conjugacy, scipy quadrature), not by the module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy import integrate, stats

from nbdid.analysis.tipping_bayes import (
    MEASURED,
    default_prior_scales,
    measure_prior_scales,
    tipping_bayes,
    tipping_bayes_curve,
)
from nbdid.cli import main
from nbdid.config import GeneratorConfig
from nbdid.data_prep.heterogeneity import read_children_low_income_msoa
from nbdid.data_prep.published import load_report_values
from nbdid.figures import plot_tipping_bayes
from nbdid.registry import INDICATOR_KEYS, INDICATORS

Z = stats.norm.ppf(0.975)


def _published(key: str) -> dict[str, float]:
    """The four published values and half-widths of one indicator, by name."""
    v = load_report_values()
    v = v[v.indicator == key]
    out = {}
    for r in v.itertuples():
        g = "n" if r.group == "nbi" else "b"
        out[f"{g}{r.period}"] = float(r.value)
        out[f"h_{g}{r.period}"] = float(r.half_width)
    return out


def _did_se(key: str) -> tuple[float, float]:
    p = _published(key)
    did = (p["n1"] - p["n0"]) - (p["b1"] - p["b0"])
    se = np.sqrt(sum((p[f"h_{x}"] / Z) ** 2 for x in ("n0", "n1", "b0", "b1")))
    return did, float(se)


def _unit_sd_coef(key: str, n: int = 29) -> float:
    """Extra DiD variance per tau^2: (k_NBI^2 + k_B^2) / n at the final levels."""
    p = _published(key)
    if INDICATORS[key].unit == "%":
        kn = 100 * (p["n1"] / 100) * (1 - p["n1"] / 100)
        kb = 100 * (p["b1"] / 100) * (1 - p["b1"] / 100)
    else:
        kn, kb = p["n1"], p["b1"]
    return (kn**2 + kb**2) / n


def _prior_sd(key: str) -> float:
    p = _published(key)
    return 0.5 * abs(np.mean([p["n0"], p["n1"], p["b0"], p["b1"]]))


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    return tipping_bayes()


@pytest.fixture(scope="module")
def curve(summary: pd.DataFrame) -> pd.DataFrame:
    return tipping_bayes_curve(summary=summary)


def test_tau_zero_flat_prior_is_the_pooled_normal_interval() -> None:
    c = tipping_bayes_curve(taus=np.array([0.0]), did_prior_sd_rel=np.inf).set_index("indicator")
    assert list(c.index) == list(INDICATOR_KEYS)
    for key in INDICATOR_KEYS:
        did, se = _did_se(key)
        r = c.loc[key]
        assert r.posterior_did == pytest.approx(did, abs=1e-9)
        assert r["posterior_q2.5"] == pytest.approx(did - Z * se, rel=1e-9)
        assert r["posterior_q97.5"] == pytest.approx(did + Z * se, rel=1e-9)


def test_marginal_with_no_heterogeneity_is_the_pooled_interval() -> None:
    tiny = {k: v.__class__(v.scale, 1e-9, v.source, v.basis) for k, v in default_prior_scales().items()}
    s = tipping_bayes(prior_scales=tiny, did_prior_sd_rel=np.inf, grid_size=200).set_index("indicator")
    for key in ("crime", "property_price"):
        did, se = _did_se(key)
        assert s.loc[key, "posterior_q2.5"] == pytest.approx(did - Z * se, rel=1e-6)
        assert s.loc[key, "posterior_q97.5"] == pytest.approx(did + Z * se, rel=1e-6)


def test_interval_widens_monotonically_with_tau(curve: pd.DataFrame) -> None:
    for key, g in curve.groupby("indicator"):
        g = g.sort_values("tau")
        width = (g["posterior_q97.5"] - g["posterior_q2.5"]).to_numpy()
        assert np.all(np.diff(width) > 0), key
        assert g["prior_density"].ge(0).all()


@pytest.mark.parametrize("key", ["crime", "children_low_income", "business_units"])
def test_fixed_tau_matches_conjugate_hand_computation(key: str) -> None:
    tau = 0.2
    did, se = _did_se(key)
    v = se**2 + _unit_sd_coef(key) * tau**2
    s2 = _prior_sd(key) ** 2
    post_var = 1 / (1 / s2 + 1 / v)
    post_mean = post_var * did / v
    sign = -1 if INDICATORS[key].lower_is_better else 1
    p_benefit = stats.norm.cdf(sign * post_mean / np.sqrt(post_var))
    r = tipping_bayes_curve(taus=np.array([tau])).set_index("indicator").loc[key]
    assert r.posterior_did == pytest.approx(post_mean, rel=1e-9)
    assert r.posterior_sd == pytest.approx(np.sqrt(post_var), rel=1e-9)
    assert r.prob_benefit == pytest.approx(p_benefit, rel=1e-9)


@pytest.mark.parametrize("key", ["crime", "criminal_damage"])
def test_marginal_matches_scipy_quadrature(summary: pd.DataFrame, key: str) -> None:
    """Integrate tau out with scipy.integrate.quad instead of the module's grid."""
    did, se = _did_se(key)
    coef, s = _unit_sd_coef(key), _prior_sd(key)
    prior = stats.halfnorm(scale=default_prior_scales()[key].sigma)

    def v(t: float) -> float:
        return se**2 + coef * t**2

    def weight(t: float) -> float:
        return prior.pdf(t) * stats.norm.pdf(did, 0, np.sqrt(s**2 + v(t)))

    def post(t: float) -> tuple[float, float]:
        pv = 1 / (1 / s**2 + 1 / v(t))
        return pv * did / v(t), np.sqrt(pv)

    def benefit(t: float) -> float:
        m, sd = post(t)
        return stats.norm.cdf(-m / sd)  # both are lower-is-better

    top = prior.ppf(1 - 1e-12)
    z = integrate.quad(weight, 0, top, limit=200)[0]
    p = integrate.quad(lambda t: weight(t) * benefit(t), 0, top, limit=200)[0] / z
    mean = integrate.quad(lambda t: weight(t) * post(t)[0], 0, top, limit=200)[0] / z
    r = summary.set_index("indicator").loc[key]
    assert r.prob_benefit == pytest.approx(p, abs=2e-4)
    assert r.posterior_did == pytest.approx(mean, rel=1e-3)
    # the 2.5% quantile: the mixture CDF there is 0.025
    cdf = integrate.quad(
        lambda t: weight(t) * stats.norm.cdf((r["posterior_q2.5"] - post(t)[0]) / post(t)[1]),
        0, top, limit=200,
    )[0] / z
    assert cdf == pytest.approx(0.025, abs=2e-4)


def test_tipping_point_is_where_the_flat_prior_interval_touches_zero(summary: pd.DataFrame) -> None:
    s = summary.set_index("indicator")
    for key in INDICATOR_KEYS:
        r = s.loc[key]
        # the same tipping point as nbdid.analysis.tipping, in the unit
        assert r.tipping_tau * r.unit_per_tau == pytest.approx(r.tipping_tau_unit, rel=1e-9)
        if r.tipping_tau == 0:
            continue
        c = tipping_bayes_curve(taus=np.array([r.tipping_tau]), did_prior_sd_rel=np.inf)
        c = c.set_index("indicator").loc[key]
        end = c["posterior_q97.5"] if r.report_did < 0 else c["posterior_q2.5"]
        assert end == pytest.approx(0, abs=1e-9 * abs(r.report_did) + 1e-12)


def test_report_claims_and_verdicts(summary: pd.DataFrame) -> None:
    s = summary.set_index("indicator")
    assert s.prob_benefit.between(0, 1).all()
    assert (s["posterior_q2.5"] < s.posterior_did).all() and (s.posterior_did < s["posterior_q97.5"]).all()
    # claims as printed in Table 1
    assert s.loc["crime", "report_significant"] and not s.loc["burglary", "report_significant"]
    for key, r in s.iterrows():
        if r.report_significant:
            assert r.verdict == ("supported" if r.prob_benefit >= 0.975 else "not supported"), key
        else:
            assert r.verdict in ("consistent", "stronger than claimed"), key
        assert r.supported == (r.verdict in ("supported", "consistent"))
    # with (almost) no ward variation the pooled z-test's verdicts come back
    tiny = {k: v.__class__(v.scale, 1e-9, v.source, v.basis) for k, v in default_prior_scales().items()}
    s0 = tipping_bayes(prior_scales=tiny, did_prior_sd_rel=np.inf, grid_size=50).set_index("indicator")
    assert s0.loc["crime", "verdict"] == "supported"
    assert s0.loc["out_of_work_benefits", "verdict"] == "stronger than claimed"  # z-test p < 0.05
    assert s0.loc["burglary", "verdict"] == "consistent"


def test_options_move_the_result_the_right_way(summary: pd.DataFrame) -> None:
    base = summary.set_index("indicator")
    width = base["posterior_q97.5"] - base["posterior_q2.5"]
    half = tipping_bayes(scale_factor=0.5).set_index("indicator")
    assert ((half["posterior_q97.5"] - half["posterior_q2.5"]) < width).all()
    paired = tipping_bayes(pair_correlation=0.5).set_index("indicator")
    assert ((paired["posterior_q97.5"] - paired["posterior_q2.5"]) < width).all()
    logn = tipping_bayes(prior="lognormal").set_index("indicator")
    assert (logn.tau_posterior_median > 0).all()
    assert (logn.tau_prior == "lognormal").all()


def test_prior_scales_are_declared() -> None:
    scales = default_prior_scales()
    assert set(scales) == set(INDICATOR_KEYS)
    assert scales["children_low_income"].source == "measured"
    assert scales["children_low_income"].sigma == MEASURED.children_low_income_logit
    assert scales["burglary"].source == "measured"
    assert scales["burglary"].sigma == MEASURED.burglary_log
    for key in ("out_of_work_benefits", "crime", "criminal_damage", "business_units"):
        assert scales[key].source == "borrowed" and "borrowed from" in scales[key].basis
    assert scales["property_price"].source == "assumed"
    assert scales["property_price"].sigma == GeneratorConfig().price_change_sd
    for key, sc in scales.items():
        assert sc.scale == ("logit" if INDICATORS[key].unit == "%" else "log")


def test_stored_prior_scales_match_the_shared_data(shared_data: Path) -> None:
    m = measure_prior_scales(shared_data)
    assert m.children_low_income_areas == MEASURED.children_low_income_areas
    assert m.burglary_areas == MEASURED.burglary_areas
    assert m.children_low_income_logit == pytest.approx(MEASURED.children_low_income_logit, abs=6e-4)
    assert m.burglary_log == pytest.approx(MEASURED.burglary_log, abs=6e-4)
    # independent check of the children's number: total log-change variance net of
    # Poisson noise, same MSOAs (>= 5 in 2014/15, 2015/16 and 2020/21), logit at p = 0.3
    df = read_children_low_income_msoa(
        shared_data / "dwp_statxplore" / "children_relative_low_income_msoa_14-22_headerstripped.csv"
    )
    df = df[(df[["2014/15", "2015/16", "2020/21"]] >= 5).all(axis=1)]
    b, late = df["2014/15"].astype(float), df["2020/21"].astype(float)
    var = np.log(late / b).var(ddof=1) - (1 / b + 1 / late).mean()
    assert np.sqrt(var) / 0.7 == pytest.approx(MEASURED.children_low_income_logit, abs=6e-4)


def test_cli_writes_the_new_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rep"
    assert main(["replicate", "--out", str(out), "--indicator", "crime", "--indicator", "burglary"]) == 0
    printed = capsys.readouterr().out
    assert "Judging the report without ward data" in printed
    assert "crime" in printed and "P(benefit)" in printed
    for name in ("tipping_bayes.csv", "tipping_bayes_curve.csv", "tipping_bayes.png", "tipping_bayes.svg"):
        assert (out / name).is_file(), name
    tb = pd.read_csv(out / "tipping_bayes.csv")
    assert list(tb.indicator) == ["crime", "burglary"]
    assert {"posterior_did", "posterior_q2.5", "posterior_q97.5", "prob_benefit", "supported",
            "tau_posterior_median", "tipping_tau_unit"} <= set(tb.columns)
    assert set(pd.read_csv(out / "tipping_bayes_curve.csv").indicator) == {"crime", "burglary"}
    assert (out / "tipping_bayes.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_bad_option_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rep"
    assert main(["replicate", "--out", str(out), "--tau-scale-factor", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "scale factor" in err
    assert not out.exists()


def test_figure_smoke(curve: pd.DataFrame) -> None:
    fig = plot_tipping_bayes(curve)
    assert isinstance(fig, Figure)
    titles = [a.get_title() for a in fig.axes]
    for key in INDICATOR_KEYS:
        assert any(t.startswith(INDICATORS[key].title) for t in titles), key
    texts = "\n".join(t.get_text() for a in fig.axes for t in a.texts)
    assert "averaged over the prior" in texts and "P(benefit)" in texts
    assert "SYNTHETIC" not in texts + (fig._suptitle.get_text() if fig._suptitle else "")
    # one indicator into a given axes
    one = Figure()
    ax = one.add_subplot()
    assert plot_tipping_bayes(curve[curve.indicator == "crime"], ax=ax) is one
    with pytest.raises(ValueError, match="exactly one indicator"):
        plot_tipping_bayes(curve, ax=ax)
    with pytest.raises(ValueError, match="missing columns"):
        plot_tipping_bayes(curve.drop(columns="tau"))


def test_run_writes_the_figure_under_figures() -> None:
    from nbdid.workflow.run import run_outputs as output_names

    names = output_names(("crime",))
    assert {"figures/tipping_bayes.png", "figures/tipping_bayes.svg",
            "replication/tipping_bayes.csv", "replication/tipping_bayes_curve.csv"} <= set(names)
    assert "replication/tipping_bayes.png" not in names


def test_sensitivity_table(summary: pd.DataFrame) -> None:
    from nbdid.analysis.tipping_bayes import SENSITIVITY_SETTINGS, tipping_bayes_sensitivity

    t = tipping_bayes_sensitivity()
    assert len(t) == len(SENSITIVITY_SETTINGS) * len(INDICATOR_KEYS)
    d = t[t.setting == "default"].set_index("indicator")
    pd.testing.assert_series_equal(d.prob_benefit, summary.set_index("indicator").prob_benefit)
    half = t[t.setting == "prior scale x 0.5"].set_index("indicator")
    # less heterogeneity, more certainty in the direction of the published DiD
    assert (half.prob_benefit > d.prob_benefit).all()
