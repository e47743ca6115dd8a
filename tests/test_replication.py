"""The report's method recomputed from its published values and half-widths."""

from __future__ import annotations

import pandas as pd
import pytest

from nbdid.analysis import forensics, replication, tipping
from nbdid.data_prep import published


def test_all_35_table1_cells_reproduced() -> None:
    t1 = replication.table1()
    assert list(t1.indicator) == list(published.load_table1().indicator)
    agree = t1[[f"{c}_agrees" for c in published.TABLE1_COLUMNS]]
    assert agree.size == 35
    assert agree.all().all()
    assert t1.all_agree.all()


def test_change_intervals_by_interval_arithmetic() -> None:
    ch = replication.group_changes().set_index(["indicator", "group"])
    # hand arithmetic on Table 7A: NBI 143.4±1.2 -> 124.3±1.1
    lo, hi = ch.loc[("crime", "nbi"), ["change_lower", "change_upper"]]
    assert lo == pytest.approx((124.3 - 1.1) - (143.4 + 1.2))
    assert hi == pytest.approx((124.3 + 1.1) - (143.4 - 1.2))
    lo, hi = ch.loc[("property_price", "benchmark"), ["change_lower", "change_upper"]]
    assert (lo, hi) == pytest.approx((31057, 51357))


def test_judgements_follow_the_numbers_not_the_ticks() -> None:
    """Moving a published value flips exactly the judgements the rule implies."""
    w = published.report_wide()
    # burglary: make the NBI fall much larger -> the change intervals separate
    w.loc[(w.indicator == "burglary") & (w.group == "nbi"), "v1"] = 8.0
    t1 = replication.table1(w).set_index("indicator")
    assert t1.loc["burglary", "relative_significant"]
    assert not t1.loc["burglary", "relative_significant_agrees"]
    assert t1.drop(index="burglary").all_agree.all()
    # business: benchmark ends below the NBI group -> better absolute outcome flips
    w2 = published.report_wide()
    w2.loc[(w2.indicator == "business_units") & (w2.group == "benchmark"), "v1"] = 470.0
    t2 = replication.table1(w2).set_index("indicator")
    assert t2.loc["business_units", "better_absolute"]
    assert t2.loc["business_units", "absolute_significant"]


def test_touching_intervals_overlap() -> None:
    assert replication.intervals_overlap(30.9, 31.3, 31.3, 31.7)
    assert not replication.intervals_overlap(30.9, 31.3, 31.4, 31.8)
    assert replication.intervals_overlap(0.1 + 0.2, 1, 0.3, 2)  # float noise


def test_b_tables_recomputed() -> None:
    bt = replication.b_tables()
    assert len(bt) == 42
    bad = bt[~bt.agrees].set_index(["indicator", "question"])
    assert set(bad.index) == {
        ("out_of_work_benefits", "trend_significant"),
        ("business_units", "better_absolute"),
    }
    assert bad.loc[("out_of_work_benefits", "trend_significant"), "published"] == "No"
    assert bad.loc[("out_of_work_benefits", "trend_significant"), "recomputed"] == "Yes"
    assert bad.loc[("business_units", "better_absolute"), "published"] == "(blank)"


def test_discrepancies_listed_with_numbers() -> None:
    d = replication.discrepancies()
    kinds = set(zip(d.indicator, d.kind, strict=True))
    expected = {
        ("out_of_work_benefits", "b_table_answer"),
        ("business_units", "blank_answer"),
        ("property_price", "quoted_interval"),
        ("business_units", "table_label"),
        ("business_units", "table_reference"),
        ("business_units", "table4_unit"),
        ("property_price", "chart_unit"),
        ("property_price", "period"),
        ("crime", "column_header"),
        ("burglary", "column_header"),
        ("criminal_damage", "column_header"),
    }
    assert expected <= kinds
    row = d[(d.indicator == "property_price") & (d.kind == "quoted_interval")].iloc[0]
    assert "31,057" in row.evidence and "51,357" in row.evidence
    row = d[(d.indicator == "out_of_work_benefits") & (d.kind == "b_table_answer")].iloc[0]
    assert "[30.2, 30.6]" in row.evidence and "[30.9, 31.3]" in row.evidence
    # the NBI footnote interval [41,000, 63,000] is what the table gives: not a discrepancy
    assert not d.published.str.contains("41,000").any()
    # counts claimed in the text (4 of 7 significant, a further 2, all 7 better) hold
    assert "quoted_count" not in set(d.kind)


def test_implied_denominators() -> None:
    imp = forensics.implied_denominators().set_index(["indicator", "group", "period"])
    crime = imp.loc[("crime", "nbi", 0)]
    assert crime.implied == pytest.approx(1.96**2 * 143.4 * 1000 / 1.2**2, rel=1e-3)
    assert crime.implied_low < crime.implied < crime.implied_high
    oow = imp.loc[("out_of_work_benefits", "nbi", 0)]
    assert oow.implied == pytest.approx(0.304 * 0.696 / (0.002 / 1.96) ** 2, rel=1e-3)
    assert (imp.xs("business_units").flag == "impossible").all()
    assert (imp.xs("property_price").flag == "implausible").all()
    for key in ("out_of_work_benefits", "children_low_income", "crime", "burglary"):
        assert (imp.xs(key).flag == "ok").all(), key


def test_denominator_consistency() -> None:
    c = forensics.denominator_consistency()
    same_pop = c[c.check == "same population"]
    assert same_pop.consistent.all()
    wa = c[c.check == "same working-age population"]
    assert not wa.consistent.any()
    assert (wa.ratio > 10).all()
    assert c[c.check == "people per household"].consistent.all()


def test_tipping_points_by_hand() -> None:
    tp = tipping.tipping_points().set_index("indicator")
    # crime: DiD -8.6, pooled SE from four half-widths
    se0 = (1.2**2 + 1.1**2 + 1.3**2 + 1.2**2) ** 0.5 / 1.959963984540054
    tau = (29 / 2 * ((8.6 / 1.959963984540054) ** 2 - se0**2)) ** 0.5
    assert tp.loc["crime", "tau_star"] == pytest.approx(tau)
    assert tp.loc["crime", "did"] == pytest.approx(-8.6)
    # at the tipping point the z statistic is exactly 1.96
    for key, r in tp.iterrows():
        if r.tau_star > 0:
            se = tipping.did_se_with_heterogeneity(r.tau_star, r.se_pooled, 29)
            assert abs(r.did) / se == pytest.approx(1.959963984540054), key
    assert tp.loc["burglary", "tau_star"] == 0
    assert not tp.loc["burglary", "significant_pooled"]
    # more wards a group -> a larger tipping point
    tp58 = tipping.tipping_points(n_per_group=58).set_index("indicator")
    assert tp58.loc["crime", "tau_star"] > tp.loc["crime", "tau_star"]


def test_tipping_point_respects_changed_inputs() -> None:
    w = published.report_wide()
    w.loc[w.indicator == "crime", ["h0", "h1"]] = 0.1
    tp = tipping.tipping_points(w).set_index("indicator")
    assert tp.loc["crime", "tau_star"] == pytest.approx(
        (29 / 2 * ((8.6 / 1.959963984540054) ** 2 - 4 * (0.1 / 1.959963984540054) ** 2)) ** 0.5
    )
    assert isinstance(tp, pd.DataFrame)
