"""Publication tables (nbdid.analysis.tables): rounding per indicator, units, footnotes,
and the HTML, LaTeX and Markdown renderings agreeing with each other."""

from __future__ import annotations

import html as html_lib
import re

import pandas as pd
import pytest

from nbdid.analysis.comparison import compare
from nbdid.analysis.concordance import concordance
from nbdid.analysis.tables import (
    MINUS,
    comparison_table,
    concordance_table,
    decimals_for,
    diagnostics_table,
    format_interval,
    format_number,
    format_p_value,
    row_decimals,
)
from nbdid.data_prep.synthetic import load_default_panel
from nbdid.provenance import SYNTHETIC_NOTICE
from nbdid.registry import INDICATORS

RATIO = {"binomial": "odds_ratio", "poisson": "rate_ratio", "price": "price_ratio"}


def fake_summary(key: str, did: tuple[float, float, float], ratio: tuple[float, float, float],
                 prob: float, gate: str = "passed") -> pd.DataFrame:
    """A fit summary with the rows the comparison reads (no fitting)."""
    ind = INDICATORS[key]
    unit = "pp" if ind.unit == "%" else ind.unit
    rows = []
    for scale, (m, lo, hi) in (("link", (0.01, -0.1, 0.1)), (RATIO[ind.family], ratio),
                               (unit, did), ("percent", (1.0, -5.0, 6.0))):
        rows.append({"indicator": key, "estimand": "did", "scale": scale, "mean": m,
                     "sd": (hi - lo) / 4, "q2.5": lo, "q97.5": hi, "prob_benefit": prob,
                     "gate": gate, "synthetic": True, "notice": SYNTHETIC_NOTICE})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def summaries() -> dict[str, pd.DataFrame]:
    return {
        "out_of_work_benefits": fake_summary("out_of_work_benefits", (-1.0479, -3.3643, 1.157),
                                             (0.9419, 0.8192, 1.0736), 0.81),
        "crime": fake_summary("crime", (-1.4452, -35.657, 27.807), (1.0044, 0.7774, 1.2879), 0.52,
                              gate="FAILED: R-hat 1.047 > 1.01"),
        "property_price": fake_summary("property_price", (10412.6, 2561.3, 18730.9),
                                       (1.071, 1.018, 1.127), 0.995),
    }


@pytest.fixture(scope="module")
def comp(summaries) -> pd.DataFrame:
    return compare(summaries)


def test_decimals_give_two_significant_figures_of_the_half_width():
    assert [decimals_for(x) for x in (4.8, 0.8, 0.05, 8200.0, 0.0004)] == [1, 2, 3, 0, 3]
    assert decimals_for(float("nan")) == 1 and decimals_for(0.0) == 1
    # the narrowest interval of a row decides
    assert row_decimals((-13.4, -3.8), (-35.7, 27.8)) == 1
    assert row_decimals((float("nan"), 1.0), (0.1, 0.3)) == 2  # half-width 0.10
    assert format_number(-1234.5, 0) == f"{MINUS}1,234" and format_number(-0.001, 1) == "0.0"
    assert format_interval(1.0, float("nan"), 2.0, 1) == "1.0"
    assert format_p_value(0.00001) == "<0.001" and format_p_value(0.0123) == "0.012"
    assert format_p_value(0.5) == "0.50" and format_p_value(None) == "\u2013"


def test_comparison_rounds_per_indicator_and_carries_units(comp, summaries):
    t = comparison_table(comp, pd.concat(summaries.values()))
    d = t.display.set_index("indicator")
    # percentage points: the report's interval half-width 0.8 -> two decimals
    assert d.loc["Out-of-Work Benefits", "report"] == f"{MINUS}0.60 [{MINUS}1.40, 0.20]"
    assert d.loc["Out-of-Work Benefits", "unit"] == "pp"
    # rates: half-width 4.8 -> one decimal, for the report and the posterior alike
    assert d.loc["Overall Crime Rate", "posterior"] == f"{MINUS}1.4 [{MINUS}35.7, 27.8]"
    assert d.loc["Overall Crime Rate", "unit"] == "per 1,000 pop."
    # prices: whole pounds with thousands separators
    assert d.loc["Average Property Price", "posterior"] == "10,413 [2,561, 18,731]"
    assert d.loc["Average Property Price", "ratio"] == "1.071 [1.018, 1.127] PR"
    assert d.loc["Overall Crime Rate", "ratio"].endswith(" RR")
    assert d.loc["Overall Crime Rate", "gate"] == "FAILED"
    assert d.loc["Average Property Price", "posterior_verdict"] == "significant, better"
    assert d.loc["Overall Crime Rate", "report_verdict"] == "significant, better"
    assert t.synthetic and t.notes[0].startswith(SYNTHETIC_NOTICE)
    assert any("R-hat 1.047" in n for n in t.notes)  # why a fit failed is written under it


def test_three_renderings_agree(comp, summaries):
    t = comparison_table(comp, pd.concat(summaries.values()))
    raw, latex, md = t.html(), t.latex(), t.markdown()
    html = html_lib.unescape(raw)
    for _, row in t.display.iterrows():
        for cell in (row["indicator"], row["report"], row["posterior"], row["ratio"]):
            assert cell in html, cell
            assert cell in md, cell
            assert cell.replace(MINUS, "$-$").replace("\u2013", "--") in latex, cell
    # footnotes: great-tables' marks in HTML, numbered superscripts in LaTeX and Markdown
    assert html.count('class="gt_footnote"') == len(t.footnotes) > 3
    for i, note in enumerate(t.footnotes, start=1):
        assert f"\\textsuperscript{{{i}}}" in latex
        assert note.split(";")[0].replace(MINUS, "$-$").replace("%", "\\%")[:40] in latex
        assert note[:40] in md
    assert SYNTHETIC_NOTICE in html and SYNTHETIC_NOTICE in md and SYNTHETIC_NOTICE in latex
    # LaTeX: booktabs, only ASCII outside the pound sign and no raw Unicode minus
    assert "\\toprule" in latex and "\\end{table}" in latex and MINUS not in latex
    assert all(ord(c) < 128 for c in latex), sorted({c for c in latex if ord(c) >= 128})
    # HTML: scoped styles, no external resources, numbers never wrapped
    assert 'id="nbdid-comparison"' in raw and "white-space: nowrap" in raw
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:|url\(\s*["']?https?:|@import""", raw)
    # Markdown: a pipe table whose rows all have the same number of cells
    rows = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len(rows) == 2 + len(t.display)
    assert len({ln.count("|") for ln in rows}) == 1


def test_concordance_table_groups_methods_by_indicator():
    panel = load_default_panel()
    conc = concordance(panel, ["crime", "property_price"], draws=200)
    t = concordance_table(conc)
    assert list(t.display["group"].unique()) == ["Overall Crime Rate (per 1,000 pop.)",
                                                 "Average Property Price (£)"]
    assert len(t.display) == len(conc)
    crime = t.display[t.display["group"].str.startswith("Overall")]
    # every method of an indicator is rounded alike (narrowest interval: the pooled one)
    decimals = {len(s.split(" [")[0].split(".")[1]) if "." in s.split(" [")[0] else 0
                for s in crime["estimate"] if s != "\u2013"}
    assert len(decimals) == 1
    pooled = crime[crime["method"].str.startswith("report's pooled")].iloc[0]
    assert pooled["significant"] == "yes, better"
    # the methods are defined under the table, from the concordance's own columns
    assert any(n.startswith("randomization inference") for n in t.notes)
    md, latex, html = t.markdown(), t.latex(), t.html()
    assert "**Overall Crime Rate (per 1,000 pop.)**" in md
    assert "\\multicolumn" in latex and "Average Property Price (\\pounds{})" in latex
    assert html.count("gt_group_heading") >= 2


def test_diagnostics_table_shows_prior_sensitivity_columns_when_present():
    diag = pd.DataFrame({"indicator": ["crime"], "rhat_max": [1.004], "ess_bulk_min": [812.3],
                         "ess_tail_min": [650.0], "divergences": [0], "bfmi_min": [0.91],
                         "ppp_min": [0.2], "ppp_max": [0.8], "passed": [True], "gate": ["passed"]})
    t = diagnostics_table(diag, thresholds="R-hat ≤ 1.01")
    assert [c.key for c in t.columns][-1] == "gate"
    assert t.display.loc[0, "ess_bulk"] == "812" and t.display.loc[0, "rhat"] == "1.004"
    with_sens = diag.assign(prior_sensitivity_did=[0.031], prior_flags=["sigma_pair: prior-dominated"])
    t2 = diagnostics_table(with_sens)
    keys = [c.key for c in t2.columns]
    assert "prior_sensitivity_did" in keys and "prior_flags" in keys
    assert t2.display.loc[0, "prior_sensitivity_did"] == "0.031"
    assert "Prior sensitivity" in t2.html() and "prior-dominated" in t2.markdown()
