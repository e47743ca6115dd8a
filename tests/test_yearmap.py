"""The year map: which denominator estimate serves each indicator's period."""

from __future__ import annotations

import pandas as pd
import pytest

from nbdid.config import REPORT_BUILD_PERIODS
from nbdid.data_prep.yearmap import (
    REPORT_PERIOD_ESTIMATES,
    YearMap,
    denominator_estimate,
    join_denominators,
    period_kind,
    study_year_map,
)
from nbdid.errors import InputError
from nbdid.registry import INDICATORS
from nbdid.workflow.build import POPULATION_YEARS


def _dens(rows):
    return pd.DataFrame(rows, columns=["ward", "year", "denominator", "value"])


def test_period_kinds():
    assert period_kind("2010/11") == ("financial year", 2010)
    assert period_kind("2020/2021") == ("financial year", 2020)
    assert period_kind("2011") == ("calendar year", 2011)
    assert period_kind("August 2015") == ("month", 2015)
    assert period_kind("2019-06") == ("month", 2019)
    for bad in ("2007-2013", "2010/13", "latest"):
        with pytest.raises(InputError, match="cannot tell which denominator"):
            period_kind(bad)


def test_study_cells():
    m = study_year_map().set_index(["indicator", "period_label"])
    assert m.loc[("crime", "2010/11"), "estimate"] == "mid-2010 population"
    assert m.loc[("crime", "2020/21"), "estimate"] == "mid-2020 population"
    assert m.loc[("criminal_damage", "2010/11"), "estimate_year"] == 2010
    assert m.loc[("burglary", "2010/11"), "estimate"] == "Census 2011 households"
    assert m.loc[("burglary", "2020/21"), "estimate"] == "Census 2011 households"
    assert m.loc[("children_low_income", "2014/15"), "estimate"] == "mid-2014 children_0_19"
    assert m.loc[("children_low_income", "2020/21"), "estimate_year"] == 2020
    assert m.loc[("out_of_work_benefits", "2011"), "estimate"] == "mid-2011 working_age"
    assert m.loc[("business_units", "2021"), "estimate"] == "mid-2021 working_age"
    assert len(m) == 12


CELLS = pd.DataFrame({
    "indicator": ["crime", "crime", "burglary", "burglary"],
    "ward": ["W1"] * 4, "ward_name": ["One"] * 4,
    "period_label": ["2010/11", "2020/21", "2010/11", "2020/21"],
})


def test_crime_and_burglary_cells_all_get_their_estimate():
    # Before the year map, 2010/11 looked for '2010/11' then '2010', and burglary looked
    # for households of 2010 and 2020: with Census households (2011) only, 3 of these 4
    # cells had no denominator.  The map sends each to its documented estimate.
    dens = _dens([("W1", 2010, "population", 1000.0), ("W1", 2020, "population", 1100.0),
                  ("W1", 2011, "households", 400.0), ("W1", 2011, "population", 1010.0)])
    out, rep = join_denominators(CELLS, dens)
    assert out["exposure"].tolist() == [1000.0, 1100.0, 400.0, 400.0]
    assert "burglary 2020/21: Census 2011 households" in rep["year_map"]
    assert "crime 2010/11: mid-2010 population" in rep["year_map"]
    # scaled households: Census 2011 x population change since mid-2011
    out, _ = join_denominators(CELLS, dens, year_map=YearMap(households_scaling="population"))
    assert out["exposure"].tolist()[2:] == [pytest.approx(400 * 1000 / 1010),
                                            pytest.approx(400 * 1100 / 1010)]


def test_missing_estimate_is_refused_with_the_fix():
    # the README's old example ingested mid-2011 and mid-2020: 2010/11 needs mid-2010
    dens = _dens([("W1", 2011, "population", 1000.0), ("W1", 2020, "population", 1100.0),
                  ("W1", 2011, "households", 400.0)])
    with pytest.raises(InputError) as err:
        join_denominators(CELLS, dens, file="denoms.csv")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("denoms.csv")
    assert "crime 2010/11 needs the mid-2010 population" in msg
    assert "--sape ... sape_mid2010.csv --year 2010" in msg
    no_hh = dens[dens["denominator"] != "households"]
    with pytest.raises(InputError, match="burglary 2010/11 needs the Census 2011 households.*"
                                         "--households"):
        join_denominators(CELLS.iloc[2:], no_hh)


def test_composite_wards_sum_parts_and_zero_is_refused():
    rows = pd.DataFrame({"indicator": ["children_low_income"], "ward": ["A+B"],
                         "period_label": ["2014/15"]})
    dens = _dens([("A", 2014, "children_0_19", 30.0), ("B", 2014, "children_0_19", 12.0)])
    out, _ = join_denominators(rows, dens)
    assert out["exposure"].tolist() == [42.0]
    with pytest.raises(InputError, match="zero .*cannot be right"):
        join_denominators(rows, _dens([("A", 2014, "children_0_19", 0.0),
                                       ("B", 2014, "children_0_19", 12.0)]))


def test_denominator_estimate_doc_examples():
    assert denominator_estimate("working_age", "August 2015") == (2015, "mid-2015 working_age")
    assert denominator_estimate("households", "2011") == (2011, "Census 2011 households")
    with pytest.raises(InputError, match="households_scaling"):
        YearMap(households_scaling="census")  # type: ignore[arg-type]


def test_study_cells_outside_the_published_estimates():
    """The estimates ``nbdid build`` cannot download for the report's periods (NOMIS
    publishes mid-2011 to mid-2020 for 2011 LSOAs) are exactly the cells of the year map's
    entries for the report's periods (so the study builds with the default
    ``missing_estimates = "refuse"``, docs/real_data.md)."""
    ym = study_year_map()
    out = ym[(ym["denominator"] != "households") & ~ym["estimate_year"].isin(POPULATION_YEARS)]
    want = [
        ("business_units", "2021", "mid-2021 working_age"),
        ("crime", "2010/11", "mid-2010 population"),
        ("criminal_damage", "2010/11", "mid-2010 population"),
        ("out_of_work_benefits", "2021", "mid-2021 working_age"),
    ]
    assert sorted(zip(out["indicator"], out["period_label"], out["estimate"], strict=True)) == want
    entries = sorted((e.indicator, str(period_kind(e.period)[1]) if e.period == "2021-05"
                      else e.period, f"mid-{e.estimate_year} {e.denominator}")
                     for e in REPORT_PERIOD_ESTIMATES)
    assert entries == want


def test_report_period_estimates_are_the_report_periods_nearest_published_year():
    for e in REPORT_PERIOD_ESTIMATES:
        src = "police_financial" if e.indicator in ("crime", "criminal_damage") else e.indicator
        assert e.period in REPORT_BUILD_PERIODS[src], e
        assert e.denominator == INDICATORS[e.indicator].denominator_key
        assert denominator_estimate(e.denominator, e.period)[0] == e.estimate_year
        assert e.estimate_year not in POPULATION_YEARS and e.used_year in POPULATION_YEARS
        assert e.used_year == min(POPULATION_YEARS, key=lambda y: abs(y - e.estimate_year))
        assert "not published for 2011 LSOAs" in e.why
