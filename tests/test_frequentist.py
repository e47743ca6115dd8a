"""Frequentist DiD analyses: hand cross-checks, the R reference, known truth, degenerate input."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from nbdid.analysis import frequentist as fq
from nbdid.data_prep.published import load_report_values
from nbdid.data_prep.schema import read_panel
from nbdid.data_prep.synthetic import load_default_panel
from nbdid.errors import InputError
from nbdid.models.simulate import simulate_panel
from nbdid.registry import INDICATORS

REFERENCE = Path(__file__).resolve().parent / "reference" / "cluster_glm"
FAMILIES = ("binomial", "poisson", "price")


def sim(family: str, seed: int, **kw) -> tuple[pd.DataFrame, object]:
    kw.setdefault("n_pairs", 29)
    return simulate_panel(family, seed=seed, **kw)


def key_of(panel: pd.DataFrame) -> str:
    return str(panel["indicator"].iloc[0])


def totals(panel: pd.DataFrame) -> pd.DataFrame:
    """Group x post totals, computed here with plain pandas."""
    p = panel.assign(
        c=panel["count"].astype(float), e=panel["exposure"].astype(float),
        nn=panel["n"].astype(float),
    )
    p = p.assign(sp=p["nn"] * p["mean_price"], sl=p["nn"] * p["mean_log_price"])
    return p.groupby(["group", "post"])[["c", "e", "nn", "sp", "sl"]].sum()


def hand_link_did(panel: pd.DataFrame, family: str) -> float:
    t = totals(panel)

    def link(g: str, post: int) -> float:
        r = t.loc[(g, post)]
        if family == "price":
            return r.sl / r.nn
        p = r.c / r.e
        return math.log(p / (1 - p)) if family == "binomial" else math.log(p)

    return (link("nbi", 1) - link("nbi", 0)) - (link("benchmark", 1) - link("benchmark", 0))


def sig3(x: float) -> float:
    return float(f"{x:.3g}")


# ----------------------------------------------------------------------------------------
# the report's pooled method
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_report_pooled_matches_hand_computation(family):
    panel, _ = sim(family, 11)
    key = key_of(panel)
    mult = INDICATORS[key].multiplier
    t = totals(panel)
    v = {k: mult * t.loc[k, "c"] / t.loc[k, "e"] for k in t.index}
    if family == "binomial":
        h = {k: 1.96 * mult * math.sqrt((t.loc[k, "c"] / t.loc[k, "e"]) * (1 - t.loc[k, "c"] / t.loc[k, "e"]) / t.loc[k, "e"]) for k in t.index}
    else:
        h = {k: 1.96 * mult * math.sqrt(t.loc[k, "c"]) / t.loc[k, "e"] for k in t.index}
    ch_lo = {g: (v[(g, 1)] - h[(g, 1)]) - (v[(g, 0)] + h[(g, 0)]) for g in ("nbi", "benchmark")}
    ch_hi = {g: (v[(g, 1)] + h[(g, 1)]) - (v[(g, 0)] - h[(g, 0)]) for g in ("nbi", "benchmark")}
    did = (v[("nbi", 1)] - v[("nbi", 0)]) - (v[("benchmark", 1)] - v[("benchmark", 0)])
    row = fq.report_pooled(fq.prepare(panel, key))
    assert row["estimate"] == pytest.approx(did, rel=1e-10)
    assert row["lower"] == pytest.approx(ch_lo["nbi"] - ch_hi["benchmark"], rel=1e-10)
    assert row["upper"] == pytest.approx(ch_hi["nbi"] - ch_lo["benchmark"], rel=1e-10)
    overlap = not (ch_lo["nbi"] > ch_hi["benchmark"] or ch_lo["benchmark"] > ch_hi["nbi"])
    assert row["significant"] is (not overlap)
    se = math.sqrt(sum((x / 1.96) ** 2 for x in h.values()))
    assert row["p_value"] == pytest.approx(2 * stats.norm.sf(abs(did) / se), rel=1e-8)


def test_pooled_groups_reproduce_published_tables_on_default_panel():
    panel = load_default_panel()
    rv = load_report_values()
    for key in INDICATORS:
        g = fq.pooled_group_values(panel, key)
        assert len(g) == 4
        assert g["value_matches"].all(), g
        assert fq.reproduces_published(g) is True
        for r in g.itertuples():
            pub = rv[(rv.indicator == key) & (rv.group == r.group) & (rv.period == r.period)]
            assert r.published_value == pub["value"].iloc[0]
            # the report's rounding: half a unit of the last printed decimal
            assert abs(r.value - r.published_value) <= 0.5 * 10 ** -INDICATORS[key].decimals + 1e-9
        if key not in ("business_units", "property_price"):
            assert g["half_width_matches"].all(), (key, g)


def test_pooled_values_not_matching_are_reported():
    panel = load_default_panel()
    crime = panel["indicator"] == "crime"
    panel.loc[crime & (panel["group"] == "nbi"), "count"] = panel.loc[crime & (panel["group"] == "nbi"), "count"] * 2
    g = fq.pooled_group_values(panel, "crime")
    assert not g.loc[g.group == "nbi", "value_matches"].any()
    assert g.loc[g.group == "benchmark", "value_matches"].all()
    assert fq.reproduces_published(g) is False


# ----------------------------------------------------------------------------------------
# GLM with ward-clustered standard errors
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_glm_point_estimate_is_log_ratio_of_ratios(family):
    panel, _ = sim(family, 21)
    fit = fq.fit_cluster_glm(fq.prepare(panel, key_of(panel)))
    assert fit.coef == pytest.approx(hand_link_did(panel, family), rel=1e-7, abs=1e-10)
    assert fit.df == 57 and fit.n_clusters == 58 and fit.nobs == 116
    assert fit.lower < fit.coef < fit.upper
    # the interval is coef +/- t(57) * se
    q = stats.t.ppf(0.975, 57)
    assert fit.upper - fit.lower == pytest.approx(2 * q * fit.se, rel=1e-9)


def test_cluster_glm_matches_r_sandwich_reference():
    """statsmodels CR1 / t(G-1) vs R sandwich::vcovCL(HC1) + lmtest, to 3 s.f."""
    panel = read_panel(REFERENCE / "panel.csv")
    ref = pd.read_csv(REFERENCE / "reference.csv")
    assert set(ref["family"]) == set(FAMILIES)
    for key, sub in ref.groupby("indicator"):
        fit = fq.fit_cluster_glm(fq.prepare(panel, key))
        r = sub.set_index("term")
        assert int(r["df"].iloc[0]) == fit.df
        for i, term in enumerate(fq.GLM_TERMS):
            assert sig3(fit.params[i]) == sig3(r.loc[term, "estimate"]), (key, term)
            assert sig3(math.sqrt(fit.cov[i, i])) == sig3(r.loc[term, "std_error"]), (key, term)
        it = r.loc["nbi:post"]
        assert sig3(fit.p_value) == sig3(it["p_value"]), key
        assert sig3(fit.lower) == sig3(it["lower"]), key
        assert sig3(fit.upper) == sig3(it["upper"]), key
        assert sig3(fit.t) == sig3(it["t"]), key


def test_glm_unit_effect_maps_the_interval():
    panel, _ = sim("poisson", 23)
    data = fq.prepare(panel, key_of(panel))
    row = fq.glm_cluster(data)
    fit = fq.fit_cluster_glm(data)
    t = totals(panel)
    a = t.loc[("nbi", 1), "c"] / t.loc[("nbi", 1), "e"]
    mult = INDICATORS[key_of(panel)].multiplier
    assert row["estimate"] == pytest.approx(mult * a * (1 - math.exp(-fit.coef)), rel=1e-9)
    assert row["lower"] == pytest.approx(mult * a * (1 - math.exp(-fit.lower)), rel=1e-9)
    assert row["ratio_upper"] == pytest.approx(math.exp(fit.upper), rel=1e-12)
    assert (row["lower"] < 0 < row["upper"]) == (row["ratio_lower"] < 1 < row["ratio_upper"])


# ----------------------------------------------------------------------------------------
# randomization inference
# ----------------------------------------------------------------------------------------


def _swap_stat(panel: pd.DataFrame, family: str, swap: tuple[int, ...], pairs: list[int]) -> float:
    """The statistic after swapping the group labels of the chosen pairs (hand-made)."""
    flip = panel["pair"].astype(int).isin([p for p, s in zip(pairs, swap, strict=True) if s])
    g = panel["group"].astype(str)
    swapped = panel.assign(group=np.where(flip, np.where(g == "nbi", "benchmark", "nbi"), g))
    return hand_link_did(swapped, family)


@pytest.mark.parametrize("family", FAMILIES)
def test_randomization_exact_p_value_matches_enumeration(family):
    panel, _ = sim(family, 31, n_pairs=7, did=-0.2)
    pairs = sorted(panel["pair"].astype(int).unique())
    observed = hand_link_did(panel, family)
    dist = np.array([_swap_stat(panel, family, s, pairs) for s in itertools.product([0, 1], repeat=7)])
    p = min(1.0, 2 * min(np.mean(dist >= observed - 1e-12), np.mean(dist <= observed + 1e-12)))
    row = fq.randomization(fq.prepare(panel, key_of(panel)))
    assert row["p_value"] == pytest.approx(p, abs=1e-12)
    assert math.log(row["ratio"]) == pytest.approx(observed, rel=1e-9)
    assert "exact, all 128 swap patterns" in row["test"]


def test_randomization_interval_is_shift_equivariant():
    """Adding delta to every NBI post log price shifts the inverted interval by delta."""
    panel, _ = sim("price", 33, n_pairs=12)
    data = fq.prepare(panel, key_of(panel))
    base = fq.randomization(data, draws=2000, seed=5)
    delta = 0.137
    m = (panel["group"] == "nbi") & (panel["post"] == 1)
    shifted = panel.copy()
    shifted.loc[m, "mean_log_price"] += delta
    shifted.loc[m, "mean_price"] *= math.exp(delta)
    moved = fq.randomization(fq.prepare(shifted, key_of(panel)), draws=2000, seed=5)
    for col in ("ratio", "ratio_lower", "ratio_upper"):
        assert math.log(moved[col]) == pytest.approx(math.log(base[col]) + delta, abs=1e-5), col


def test_randomization_interval_inverts_the_test():
    """Just inside the interval the sharp null is not rejected; just outside it is."""
    panel, _ = sim("poisson", 35, n_pairs=20, did=-0.2)
    data = fq.prepare(panel, key_of(panel))
    row = fq.randomization(data, draws=3000, seed=9)
    lo, hi = math.log(row["ratio_lower"]), math.log(row["ratio_upper"])
    # an independent test of tau: divide NBI post counts by exp(tau), test "no effect"
    for tau, rejected in ((lo - 0.01, True), (lo + 0.01, False), (hi - 0.01, False), (hi + 0.01, True)):
        adj = panel.copy()
        m = (adj["group"] == "nbi") & (adj["post"] == 1)
        adj["count"] = adj["count"].astype(float)
        adj.loc[m, "count"] = adj.loc[m, "count"] * math.exp(-tau)
        p = fq.randomization(fq.prepare(adj, key_of(panel)), draws=3000, seed=9)["p_value"]
        assert (p <= 0.05) is rejected, (tau, p)


def test_randomization_monte_carlo_is_seeded():
    panel, _ = sim("poisson", 37)
    data = fq.prepare(panel, key_of(panel))
    a = fq.randomization(data, draws=1000, seed=1)
    b = fq.randomization(data, draws=1000, seed=1)
    c = fq.randomization(data, draws=1000, seed=2)
    assert a["p_value"] == b["p_value"] and a["ratio_lower"] == b["ratio_lower"]
    assert "1,000 seeded random swap patterns (seed 1)" in a["test"]
    assert c["p_value"] != a["p_value"] or c["ratio_lower"] != a["ratio_lower"]


def test_randomization_with_too_few_pairs_says_so():
    panel, _ = sim("poisson", 39, n_pairs=4)
    row = fq.randomization(fq.prepare(panel, key_of(panel)))
    assert math.isnan(row["lower"]) and np.isfinite(row["p_value"])
    assert "too few pairs (4)" in row["note"] and "0.125" in row["note"]


# ----------------------------------------------------------------------------------------
# paired t-test
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["poisson", "price"])
def test_paired_t_matches_hand_computation(family):
    panel, _ = sim(family, 41)
    key = key_of(panel)
    if family == "price":
        v = panel.assign(v=panel["mean_price"])
        lv = panel.assign(v=panel["mean_log_price"])
    else:
        mult = INDICATORS[key].multiplier
        v = panel.assign(v=mult * panel["count"].astype(float) / panel["exposure"])
        lv = panel.assign(v=np.log(panel["count"].astype(float) / panel["exposure"]))

    def diffs(frame):
        w = frame.pivot_table(index="pair", columns=["group", "post"], values="v")
        return ((w[("nbi", 1)] - w[("nbi", 0)]) - (w[("benchmark", 1)] - w[("benchmark", 0)])).to_numpy()

    d, ld = diffs(v), diffs(lv)
    n = len(d)
    se = d.std(ddof=1) / math.sqrt(n)
    q = stats.t.ppf(0.975, n - 1)
    row = fq.paired_t(fq.prepare(panel, key))
    assert row["estimate"] == pytest.approx(d.mean(), rel=1e-10)
    assert row["lower"] == pytest.approx(d.mean() - q * se, rel=1e-9)
    assert row["upper"] == pytest.approx(d.mean() + q * se, rel=1e-9)
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(d.mean() / se), n - 1), rel=1e-8)
    lse = ld.std(ddof=1) / math.sqrt(n)
    assert row["ratio"] == pytest.approx(math.exp(ld.mean()), rel=1e-10)
    assert row["ratio_upper"] == pytest.approx(math.exp(ld.mean() + q * lse), rel=1e-9)


# ----------------------------------------------------------------------------------------
# known truth (few panels; the coverage study is in test_frequentist_coverage_slow.py)
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_methods_recover_a_known_effect(family):
    did = -0.4
    for seed in (51, 52, 53):
        panel, truth = sim(family, seed, did=did, sigma_change=0.15)
        data = fq.prepare(panel, key_of(panel))
        glm, ri = fq.glm_cluster(data), fq.randomization(data, draws=2000, seed=seed)
        for row in (glm, ri):
            assert abs(math.log(row["ratio"]) - did) < 0.2, (row["method"], seed)
            assert row["ratio_lower"] < math.exp(did) < row["ratio_upper"], (row["method"], seed)
            assert row["significant"], (row["method"], seed)
        if family != "binomial":  # the population-averaged DiD of the simulated wards
            assert glm["lower"] < truth.did_pa < glm["upper"]
        assert fq.paired_t(data)["estimate"] < 0


@pytest.mark.parametrize("family", ["poisson", "price"])
def test_no_effect_is_not_significant_by_construction(family):
    """Identical NBI and benchmark wards: zero estimate, p = 1 for RI, no t-test."""
    panel, _ = sim(family, 61, n_pairs=10)
    ben = panel[panel["group"] == "benchmark"].set_index(["pair", "period"])
    nbi = panel["group"] == "nbi"
    cols = ["count", "exposure"] if family != "price" else ["n", "mean_price", "mean_log_price", "sd_log_price"]
    idx = pd.MultiIndex.from_arrays([panel.loc[nbi, "pair"], panel.loc[nbi, "period"]])
    for c in cols:
        panel.loc[nbi, c] = ben.loc[idx, c].to_numpy()
    rows = fq.analyse(panel, key_of(panel)).set_index("method")
    assert rows.loc["glm_cluster", "estimate"] == pytest.approx(0, abs=1e-8)
    assert rows.loc["randomization", "p_value"] == pytest.approx(1.0)
    assert rows.loc["report_pooled", "estimate"] == pytest.approx(0, abs=1e-8)
    assert not rows.loc["glm_cluster", "significant"]
    assert math.isnan(rows.loc["paired_t", "p_value"])
    assert "same difference in change" in rows.loc["paired_t", "note"]


# ----------------------------------------------------------------------------------------
# degenerate input
# ----------------------------------------------------------------------------------------


def test_ward_with_zero_counts_in_every_period():
    panel, _ = sim("poisson", 71)
    ward = panel.loc[panel["group"] == "nbi", "ward"].iloc[0]
    panel.loc[panel["ward"] == ward, "count"] = 0
    rows = fq.analyse(panel, key_of(panel)).set_index("method")
    for m in ("report_pooled", "glm_cluster", "randomization", "paired_t"):
        assert np.isfinite(rows.loc[m, ["estimate", "lower", "upper", "p_value", "ratio"]].astype(float)).all(), m
    assert "0.5 added to counts" in rows.loc["paired_t", "note"]
    assert rows.loc["bayes", "note"] == "not computed: no posterior"


def test_pair_with_identical_wards():
    panel, _ = sim("binomial", 73)
    m = panel["pair"] == 3
    ben = panel[m & (panel["group"] == "benchmark")].sort_values("period")
    for period in (0, 1):
        sel = m & (panel["group"] == "nbi") & (panel["period"] == period)
        b = ben[ben["period"] == period].iloc[0]
        panel.loc[sel, ["count", "exposure"]] = [b["count"], b["exposure"]]
    data = fq.prepare(panel, key_of(panel))
    d = fq.pair_differences(data).set_index("pair")
    assert d.loc[3, "diff"] == 0 and d.loc[3, "log_diff"] == 0
    rows = fq.analyse(panel, key_of(panel)).set_index("method")
    assert rows.loc[["glm_cluster", "randomization", "paired_t"], "p_value"].notna().all()


def test_group_without_events_gives_notes_not_crashes():
    panel, _ = sim("poisson", 75)
    panel.loc[(panel["group"] == "nbi") & (panel["post"] == 1), "count"] = 0
    rows = fq.analyse(panel, key_of(panel)).set_index("method")
    assert "no events" in rows.loc["glm_cluster", "note"]
    assert "no events" in rows.loc["randomization", "note"]
    assert "ratio undefined" in rows.loc["report_pooled", "note"]
    assert np.isfinite(rows.loc["report_pooled", "estimate"])
    assert len(rows) == len(fq.METHODS)


def test_pair_whose_ward_misses_a_period():
    """The pair methods leave the pair out (and say so); the others use every row."""
    panel, _ = sim("poisson", 81)
    key = key_of(panel)
    drop = (panel["pair"] == 5) & (panel["group"] == "nbi") & (panel["post"] == 1)
    gap = panel[~drop].reset_index(drop=True)
    without_pair = panel[panel["pair"] != 5].reset_index(drop=True)
    rows = fq.analyse(gap, key).set_index("method")
    ref = fq.analyse(without_pair, key).set_index("method")
    assert fq.incomplete_pairs(fq.prepare(gap, key)) == [5]
    assert (rows["n_pairs"] == 28).all()
    for m in ("randomization", "paired_t"):
        cols = ["estimate", "lower", "upper", "p_value"]
        np.testing.assert_allclose(rows.loc[m, cols].astype(float), ref.loc[m, cols].astype(float))
        assert "1 incomplete pair(s) left out (pair 5)" in rows.loc[m, "note"]
    # the report's pooled method and the GLM keep the ward's remaining row
    assert rows.loc["report_pooled", "estimate"] != pytest.approx(ref.loc["report_pooled", "estimate"])
    assert rows.loc["glm_cluster", "estimate"] != pytest.approx(ref.loc["glm_cluster", "estimate"])
    assert np.isfinite(rows.loc["glm_cluster", ["estimate", "p_value"]].astype(float)).all()
    # pooled: group totals over the rows present, as the report would compute them
    t = totals(gap)
    mult = INDICATORS[key].multiplier
    v = {k: mult * t.loc[k, "c"] / t.loc[k, "e"] for k in t.index}
    did = (v[("nbi", 1)] - v[("nbi", 0)]) - (v[("benchmark", 1)] - v[("benchmark", 0)])
    assert rows.loc["report_pooled", "estimate"] == pytest.approx(did, rel=1e-10)
    assert not any("incomplete" in str(n) for n in ref["note"])


def test_panel_without_pairs_keeps_rows_with_notes():
    panel, _ = sim("poisson", 77)
    panel["pair"] = pd.array([pd.NA] * len(panel), dtype="Int64")
    rows = fq.analyse(panel, key_of(panel)).set_index("method")
    for m in ("randomization", "paired_t"):
        assert math.isnan(rows.loc[m, "estimate"])
        assert "no complete matched pairs" in rows.loc[m, "note"]
    assert np.isfinite(rows.loc["glm_cluster", "p_value"])
    assert (rows["n_pairs"] == 0).all()


def test_bad_input_gives_one_line_errors():
    panel, _ = sim("poisson", 79)
    with pytest.raises(InputError, match="no rows for indicator 'nope'"):
        fq.prepare(panel, "nope")
    other = panel.assign(indicator="fly_tipping")
    with pytest.raises(InputError, match="give its family"):
        fq.prepare(other, "fly_tipping")
    data = fq.prepare(other, "fly_tipping", family="poisson")
    assert data.multiplier == 1000.0
    with pytest.raises(InputError, match="both groups"):
        fq.prepare(panel[panel["group"] == "nbi"], key_of(panel))
    with pytest.raises(InputError, match=r"post 0\) and after"):
        fq.prepare(panel[panel["post"] == 1], key_of(panel))
    for exc in (InputError,):
        try:
            fq.prepare(panel, "nope")
        except exc as err:
            assert "\n" not in str(err)


# ----------------------------------------------------------------------------------------
# the Bayesian row
# ----------------------------------------------------------------------------------------


def fake_summary(key: str, unit: str, ratio_scale: str, lo: float, hi: float, gate="passed") -> pd.DataFrame:
    return pd.DataFrame([
        {"indicator": key, "estimand": "did", "scale": "link", "mean": -0.1, "sd": 0.05,
         "q2.5": -0.2, "q97.5": 0.0, "prob_benefit": 0.97, "gate": gate},
        {"indicator": key, "estimand": "did", "scale": ratio_scale, "mean": 0.9, "sd": 0.05,
         "q2.5": 0.82, "q97.5": 1.0, "prob_benefit": 0.97, "gate": gate},
        {"indicator": key, "estimand": "did", "scale": unit, "mean": (lo + hi) / 2, "sd": 1.0,
         "q2.5": lo, "q97.5": hi, "prob_benefit": 0.97, "gate": gate},
        {"indicator": key, "estimand": "did", "scale": "percent", "mean": -5, "sd": 1.0,
         "q2.5": -9, "q97.5": -1, "prob_benefit": 0.97, "gate": gate},
        {"indicator": key, "estimand": "diff_in_change", "scale": unit, "mean": 99, "sd": 1.0,
         "q2.5": 98, "q97.5": 100, "prob_benefit": 0.97, "gate": gate},
    ])


def test_bayes_row_reads_the_summary():
    panel, _ = sim("poisson", 81)
    data = fq.prepare(panel, "crime")
    row = fq.bayes_row(data, fake_summary("crime", "per 1,000 population", "rate_ratio", -9.0, -1.0))
    assert (row["estimate"], row["lower"], row["upper"]) == (-5.0, -9.0, -1.0)
    assert row["significant"] is True and row["better"] is True
    assert (row["ratio"], row["ratio_lower"], row["ratio_upper"]) == (0.9, 0.82, 1.0)
    assert row["gate"] == "passed" and row["prob_benefit"] == 0.97
    row = fq.bayes_row(data, fake_summary("crime", "per 1,000 population", "rate_ratio", -9.0, 1.0,
                                          gate="FAILED: rhat"))
    assert row["significant"] is False
    assert "diagnostics gate FAILED" in row["note"]


def test_unit_effect_is_increasing_and_zero_at_zero():
    panel, _ = sim("binomial", 83)
    data = fq.prepare(panel, key_of(panel))
    x = np.linspace(-1, 1, 11)
    y = fq.unit_effect(data, x)
    assert np.all(np.diff(y) > 0) and fq.unit_effect(data, 0.0) == pytest.approx(0.0, abs=1e-12)
    a = fq._nbi_post_level(data)
    assert fq.unit_effect(data, 0.3) == pytest.approx(100 * (a - special.expit(special.logit(a) - 0.3)))


def test_method_labels_are_defined_once_in_the_registry():
    """Tables, figures and the design summary take every method's labels from its
    :class:`Method` entry (a new method is one entry)."""
    from nbdid.analysis import assurance as an_assurance
    from nbdid.figures import assurance as fig_assurance
    from nbdid.figures import concordance as fig_concordance

    for key, m in fq.METHOD_REGISTRY.items():
        assert m.name == key and all((m.label, m.short, m.figure_label, m.prose))
    assert fig_concordance.FIGURE_LABELS is fq.FIGURE_LABELS
    assert fig_assurance.FIGURE_LABELS is fq.FIGURE_LABELS
    assert an_assurance.METHOD_PROSE is fq.METHOD_PROSE
    assert set(fig_assurance.METHOD_STYLES) <= set(fq.METHOD_REGISTRY)
    assert not hasattr(fig_concordance, "SHORT_LABELS") and not hasattr(an_assurance, "METHOD_NAMES")


def test_a_new_method_is_one_registry_entry(monkeypatch):
    """Adding a frequentist method is one :class:`Method` in ``METHOD_REGISTRY``: its
    :class:`MethodResult` rows appear in the analysis beside the others."""
    import dataclasses

    paired = fq.METHOD_REGISTRY["paired_t"]

    def half(data, settings):
        r = paired.run(data, settings)
        assert isinstance(r, fq.MethodResult)
        return dataclasses.replace(r, method="half_paired", estimate=r.estimate / 2)

    extra = fq.Method("half_paired", "half the paired difference", "half", "half paired",
                      "half the paired difference", half)
    monkeypatch.setitem(fq.METHOD_REGISTRY, "half_paired", extra)
    out = fq.analyse(load_default_panel(), "crime", draws=50)
    rows = out.set_index("method")
    assert list(out["method"])[-1] == "half_paired"
    assert rows.loc["half_paired", "estimate"] == pytest.approx(rows.loc["paired_t", "estimate"] / 2)
    for key, m in fq.METHOD_REGISTRY.items():
        if key != "half_paired":
            res = m.run(fq.prepare(load_default_panel(), "crime"),
                        fq.AnalysisSettings(draws=50, seed=1, exact_max=10))
            assert isinstance(res, fq.MethodResult) and res.method == key
