"""Tests of nbdid.data_prep.police on the shared police.uk extracts and on fixtures."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from nbdid.data_prep.police import (
    build_panel,
    count_street_crime,
    ingest_police,
    list_crime_files,
    period_of_month,
)
from nbdid.errors import InputError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LOOKUP19 = SHARED / "ons_lookups" / "LSOA11_to_WD19_LAD19_Lookup_EW.csv"


def _need(p: Path) -> Path:
    if not p.exists():
        pytest.skip(f"shared extract {p} not available")
    return p


@pytest.fixture(scope="module")
def lsoa_to_ward():
    with _need(LOOKUP19).open(newline="", encoding="utf-8-sig") as fh:
        return {r["LSOA11CD"]: (r["WD19CD"], r["WD19NM"], r["LAD19NM"]) for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def merseyside():
    d = _need(SHARED / "police_uk_merseyside")
    # one month of one force: a partial period, kept on purpose for counting
    return ingest_police(d, LOOKUP19, partial_periods="keep")


def test_merseyside_counts_match_independent_count(merseyside, lsoa_to_ward):
    f = next((SHARED / "police_uk_merseyside").glob("*.csv"))
    with f.open(newline=None, encoding="utf-8") as fh:  # universal newlines: bare CR
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12925 == merseyside.report["rows_read"]
    want = Counter()
    for r in rows:
        w = lsoa_to_ward.get(r["LSOA code"])
        if w is None:
            continue
        t = r["Crime type"]
        if t != "Anti-social behaviour":
            want[("crime", w[1], w[2])] += 1
        if t == "Burglary":
            want[("burglary", w[1], w[2])] += 1
        if t == "Criminal damage and arson":
            want[("criminal_damage", w[1], w[2])] += 1
    panel = merseyside.table
    assert set(panel["period_label"]) == {"2014/15"}
    assert panel["ward_name"].nunique() == 6  # Liverpool, Knowsley, Wirral study wards
    for r in panel.itertuples(index=False):
        assert r.count == want[(r.indicator, r.ward_name, r.la)], (r.indicator, r.ward_name)
    assert want[("crime", "Picton", "Liverpool")] > 0
    rep = merseyside.report
    assert rep["period_coverage"]["2014/15"]["months_present"] == 1
    assert len(rep["period_coverage"]["2014/15"]["months_missing"]) == 11
    assert merseyside.require_exposure is False and "--population" in rep["exposure"]
    assert panel["exposure"].isna().all()


def test_met_burglary_calendar_years(lsoa_to_ward):
    d = _need(SHARED / "police_uk_met_burglary_only")
    res = ingest_police(d, LOOKUP19, year_type="calendar", indicators=["burglary"],
                        partial_periods="keep")
    rep = res.report
    assert [s["file"].endswith("2025-01-metropolitan-outcomes.csv") for s in rep["files_skipped"]] == [True]
    want, no_lsoa, outside = Counter(), 0, set()
    for f in sorted(d.glob("*-street.csv")):
        with f.open(newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                if not r["LSOA code"]:
                    no_lsoa += 1
                    continue
                w = lsoa_to_ward.get(r["LSOA code"])
                if w is None:
                    outside.add(r["LSOA code"])
                elif r["Crime type"] == "Burglary":
                    want[(w[1], r["Month"][:4])] += 1
    assert rep["rows_without_lsoa_total"] == no_lsoa > 0
    assert rep["lsoas_outside_lookup"]["n_lsoas"] == len(outside) > 0
    t = res.table
    assert set(t["ward_name"]) == {"Plaistow South", "Dollis Hill"}
    assert t["pair"].notna().all()  # pair 16 complete
    for r in t.itertuples(index=False):
        assert r.count == want[(r.ward_name, r.period_label)]
    assert sorted(set(t["period_label"])) == ["2010", "2011", "2015", "2019", "2021", "2022", "2024"]
    assert t.set_index("period_label")["post"].to_dict()["2011"] == 0
    assert t.set_index("period_label")["post"].to_dict()["2015"] == 1
    assert "warning_crime_types" in rep


HEADER = "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,Crime type,Last outcome category,Context\n"


def _street(month, rows):
    return HEADER + "".join(
        f"x,{month},F,F,0,0,On or near X,{lsoa},n,{t},,\n" for lsoa, t in rows
    )


@pytest.fixture
def fixture_dir(tmp_path):
    d = tmp_path / "crime"
    d.mkdir()
    files = {
        "2010-04-test-street.csv": (_street("2010-04", [("L1", "Burglary"), ("L2", "Anti-social behaviour"),
                                                        ("", "Burglary"), ("L3", "Criminal damage and arson")]), "\r\n"),
        "2010-05-test-street.csv": (_street("2010-05", [("L1", "Drugs"), ("L9", "Burglary")]), "\r"),
        "2011-04-test-street.csv": (_street("2011-04", [("L3", "Burglary")]), "\n"),
        "2011-04-test-outcomes.csv": ("Crime ID,Month,LSOA code,Outcome type\nx,2011-04,L1,Y\n", "\n"),
    }
    for name, (text, nl) in files.items():
        (d / name).write_bytes(text.replace("\n", nl).encode())
    return d


def _tiny_lookup():
    return pd.DataFrame({
        "area": ["L1", "L2", "L3", "L4"], "area_name": ["a", "b", "c", "d"],
        "ward": ["W1", "W1", "W2", "W3"], "ward_name": ["One", "One", "Two", "Three"],
        "la_code": ["E1"] * 4, "la_name": ["T"] * 4,
        "level": "lsoa", "vintage": "WD19",
    })


def test_fixture_line_endings_missing_lsoa_and_months(fixture_dir):
    files, skipped = list_crime_files(fixture_dir)
    assert [m for _, m in files] == ["2010-04", "2010-05", "2011-04"]
    assert len(skipped) == 1 and "outcomes" in skipped[0]["reason"]
    counts, info = count_street_crime(files)
    assert info["rows_read"] == 7
    assert info["rows_without_lsoa"] == {"2010-04": 1}
    design = pd.DataFrame({"ward": ["W1", "W2", "W3"], "ward_name": ["One", "Two", "Three"], "la": ["T"] * 3,
                           "group": ["nbi", "nbi", "benchmark"], "pair": pd.array([1, 2, 1], dtype="Int64")})
    panel, rep = build_panel(counts, info, _tiny_lookup(), design)
    got = panel.set_index(["indicator", "ward", "period_label"])["count"].to_dict()
    assert got[("burglary", "W1", "2010/11")] == 1
    assert got[("crime", "W1", "2010/11")] == 2  # burglary + drugs, not ASB
    assert got[("criminal_damage", "W2", "2010/11")] == 1
    assert got[("burglary", "W2", "2011/12")] == 1 and got[("burglary", "W1", "2011/12")] == 0
    assert rep["lsoas_outside_lookup"]["examples"] == ["L9"]
    assert rep["period_coverage"]["2010/11"]["months_present"] == 2
    assert "2011-03" in rep["period_coverage"]["2010/11"]["months_missing"]
    assert rep["wards_without_data"] == ["Three (T, W3)"]
    assert "pairs_dropped" in rep and panel["pair"].isna().all()
    assert panel.set_index("period_label")["post"].to_dict() == {"2010/11": 0, "2011/12": 0}
    panel2, _ = build_panel(counts, info, _tiny_lookup(), design, post_from="2011-04")
    assert panel2.groupby("period_label")["post"].first().to_dict() == {"2010/11": 0, "2011/12": 1}
    pop = pd.DataFrame({"ward": ["W1", "W2"] * 2, "year": ["2010", "2010", "2011", "2011"],
                        "denominator": ["population"] * 4, "value": [100.0, 200, 110, 210]})
    # burglary needs Census 2011 households (year map): refused with the fix
    with pytest.raises(InputError, match=r"no 'households' for ward W1.*burglary 2010/11.*"
                                         r"Census 2011 households.*--households"):
        build_panel(counts, info, _tiny_lookup(), design, population=pop)
    hh = pd.DataFrame({"ward": ["W1", "W2"], "year": [2011, 2011],
                       "denominator": ["households"] * 2, "value": [40.0, 80.0]})
    p3, r3 = build_panel(counts, info, _tiny_lookup(), design,
                         population=pd.concat([pop, hh], ignore_index=True))
    crime = p3[p3["indicator"] == "crime"].set_index(["ward", "period_label"])["exposure"]
    assert crime[("W1", "2010/11")] == 100.0 and crime[("W2", "2011/12")] == 210.0
    burg = p3[p3["indicator"] == "burglary"].set_index(["ward", "period_label"])["exposure"]
    assert burg[("W1", "2010/11")] == 40.0 == burg[("W1", "2011/12")]
    assert "burglary 2011/12: Census 2011 households" in r3["exposure"]["year_map"]


def test_period_labels():
    m = pd.Series(["2010-03", "2010-04", "2021-01"], dtype="string")
    assert period_of_month(m).tolist() == ["2009/10", "2010/11", "2020/21"]
    assert period_of_month(m, "calendar").tolist() == ["2010", "2010", "2021"]


def test_bad_inputs(tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    with pytest.raises(InputError, match="no police.uk street files"):
        list_crime_files(d)
    (d / "2010-04-x-street.csv").write_text("Month,LSOA code\n2010-04,L1\n")
    files, _ = list_crime_files(d)
    with pytest.raises(InputError, match=r"street\.csv, line 1, column 'Crime type'"):
        count_street_crime(files)
    (d / "2010-04-x-street.csv").write_text(HEADER + "x,April,F,F,0,0,X,L1,n,Burglary,,\n")
    with pytest.raises(InputError, match="line 2, column 'Month'"):
        count_street_crime(files)
    (d / "2010-04-x-street.csv").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        count_street_crime(files)
