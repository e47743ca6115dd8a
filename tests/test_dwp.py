"""Tests of the DWP Stat-Xplore -> ward panel loader on the real extracts."""

from __future__ import annotations

import csv
import re
import statistics
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

from nbdid.data_prep import dwp
from nbdid.data_prep.population import apportion_counts, area_ward_weights
from nbdid.data_prep.statxplore import read_statxplore
from nbdid.errors import InputError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SX = DATA / "dwp_statxplore"
CILIF_MSOA = SX / "children_relative_low_income_msoa_14-22_headerstripped.csv"
CILIF_LA = SX / "children_relative_low_income_ltla_14-22_headerstripped.csv"
UC_MSOA = SX / "households_on_UC_msoa_15-22.csv"
UC_LA = SX / "households_on_UC_ltla_15-22_original.csv"
LSOA_LK = DATA / "ons_lookups" / "LSOA11_to_WD19_LAD19_Lookup_EW.csv"
MSOA_LK = DATA / "ons_lookups" / "MSOA11_to_WD19_LAD19_Lookup_EW.csv"


def _need(*paths: Path) -> None:
    for p in paths:
        if not p.exists():
            pytest.skip(f"shared extract {p.name} not available")


def _table(path: Path) -> tuple[list[str], dict[str, list[str]]]:
    """Independent parse: header row and data rows by area name (csv module)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    h = next(i for i, r in enumerate(rows) if r and r[0] in ("Month", "Year"))
    return rows[h], {r[0]: r for r in rows[h + 2:] if len(r) > 3}


def _counts(file, lookup, **kw):
    return dwp.build_ward_counts(str(file), str(lookup), **kw)


@pytest.fixture(scope="module")
def cilif_panel():
    _need(CILIF_MSOA, LSOA_LK)
    wards, rep, _meta, _lk = _counts(CILIF_MSOA, LSOA_LK, periods="2014/15,2020/21")
    return dwp.panel_rows(wards, "children_low_income", rep["periods"]), rep


def _clean_wards() -> dict[str, set[str]]:
    """Wards (WD19) built only of whole MSOAs: MSOA name -> its LSOAs' wards, by csv."""
    msoa_wards: dict[str, set[str]] = defaultdict(set)
    with open(LSOA_LK, newline="", encoding="utf-8-sig") as fh:
        for r in csv.DictReader(fh):
            msoa_wards[r["LSOA11NM"][:-1].strip()].add(r["WD19CD"])
    ward_msoas: dict[str, set[str]] = defaultdict(set)
    for m, ws in msoa_wards.items():
        for w in ws:
            ward_msoas[w].add(m)
    return {w: ms for w, ms in ward_msoas.items()
            if all(msoa_wards[m] == {w} for m in ms)}


def test_cilif_ward_counts_match_independent_sums(cilif_panel):
    panel = cilif_panel[0]
    header, rows = _table(CILIF_MSOA)
    j14, j20 = header.index("2014/15"), header.index("2020/21")
    clean = _clean_wards()
    assert len(clean) > 100
    got = panel.set_index(["ward", "period_label"])["count"]
    changes = []
    for w, msoas in sorted(clean.items())[:300]:
        c14 = sum(int(rows[m][j14]) for m in msoas)
        c20 = sum(int(rows[m][j20]) for m in msoas)
        assert got[(w, "2014/15")] == c14
        assert got[(w, "2020/21")] == c20
        changes.append(c20 - c14)
    # SD of ward changes in the panel equals the independent SD over the same wards
    wide = panel.pivot(index="ward", columns="period_label", values="count")
    pw = sorted(clean)[:300]
    ch = (wide.loc[pw, "2020/21"] - wide.loc[pw, "2014/15"]).astype(float)
    assert ch.std() == pytest.approx(statistics.stdev(changes))
    assert statistics.stdev(changes) > 0


def test_cilif_totals_kept_and_report(cilif_panel):
    panel, rep = cilif_panel
    header, rows = _table(CILIF_MSOA)
    with open(LSOA_LK, newline="", encoding="utf-8-sig") as fh:
        names = {r["LSOA11NM"][:-1].strip() for r in csv.DictReader(fh)}
    j = header.index("2014/15")
    expected = sum(int(r[j]) for n, r in rows.items() if n in names)
    assert panel.loc[panel["period_label"] == "2014/15", "count"].sum() == expected
    assert rep["areas_matched"] == len(names & set(rows)) == 7201
    with open(CILIF_MSOA, newline="", encoding="utf-8") as fh:
        all_rows = [r[0] for r in csv.reader(fh) if len(r) > 3][1:]
    data_rows = [n for n in all_rows if n not in ("Total", "Unknown")]
    assert rep["areas_in_file"] == len(data_rows)
    assert rep["areas_unmatched"] == sum(n not in names for n in data_rows) > 1000  # Scotland
    assert rep["apportioning"] == "msoa_by_lsoa_share"
    assert rep["areas_split_over_several_wards"] > 0
    assert list(panel["period"].unique()) == [0, 1]
    assert panel["exposure"].isna().all()


@pytest.mark.parametrize(
    ("la_file", "msoa_file", "period"),
    [(CILIF_LA, CILIF_MSOA, "2014/15"), (CILIF_LA, CILIF_MSOA, "2020/21"),
     (UC_LA, UC_MSOA, "August 2021")],
)
def test_la_total_equals_sum_of_msoas(la_file, msoa_file, period):
    """Disclosure control perturbs cells: LA totals match MSOA sums within 2%."""
    _need(la_file, msoa_file)
    la, la_meta = read_statxplore(la_file)
    ms, _ = read_statxplore(msoa_file)
    ms = ms[ms["period"] == period].dropna(subset=["value"])
    prefix = ms["area_name"].str.extract(r"^(.*) \d{3}$")[0]
    sums = ms.groupby(prefix)["value"].sum()
    lav = la[la["period"] == period].set_index("area_name")["value"]
    for name in ("Hartlepool", "Darlington", "Middlesbrough", "Leeds", "Sunderland"):
        assert sums[name] == pytest.approx(lav[name], rel=0.02)


def test_uc_msoa_lookup_best_fit_and_missing(tmp_path):
    _need(UC_MSOA, MSOA_LK)
    wards, rep, _, _ = _counts(UC_MSOA, MSOA_LK, periods="August 2015,August 2021")
    assert rep["apportioning"] == "msoa_best_fit" and rep["areas_split_over_several_wards"] == 0
    assert rep["missing_cells_in_matched_areas"] > 0
    header, rows = _table(UC_MSOA)
    j = header.index("August 2021")
    # ward of MSOA "Hartlepool 007" in the best-fit lookup: sum of its MSOAs by csv
    with open(MSOA_LK, newline="", encoding="utf-8-sig") as fh:
        lk = list(csv.DictReader(fh))
    ward = next(r["WD19CD"] for r in lk if r["MSOA11NM"] == "Hartlepool 007")
    expect = sum(int(rows[r["MSOA11NM"]][j]) for r in lk if r["WD19CD"] == ward
                 and rows[r["MSOA11NM"]][j] != "..")
    t = wards.set_index(["ward", "period_label"])["count"]
    assert t[(ward, "August 2021")] == expect
    with pytest.raises(InputError, match=r"missing value.*line \d+|line \d+.*missing value"):
        _counts(UC_MSOA, MSOA_LK, periods="August 2015", missing="error")


def test_exposure_from_denominators(tmp_path):
    _need(CILIF_MSOA, LSOA_LK)
    with open(LSOA_LK, newline="", encoding="utf-8-sig") as fh:
        wards = sorted({r["WD19CD"] for r in csv.DictReader(fh)})
    dens = tmp_path / "dens.csv"
    lines = ["ward,ward_name,la,year,denominator,value"]
    for k, w in enumerate(wards):
        for y in (2014, 2020):
            lines.append(f"{w},x,y,{y},children_0_19,{5000 + k % 7}")
    dens.write_text("\n".join(lines) + "\n")
    res = dwp.ingest_dwp(CILIF_MSOA, "children_low_income", LSOA_LK,
                         periods="2014/15,2020/21", population=dens, boundaries="lookup")
    assert res.require_exposure is True and res.kind == "panel"
    t = res.table
    k = {w: i for i, w in enumerate(wards)}
    # composite design wards (A+B) sum the exposures of their parts
    want = [sum(5000 + k[p] % 7 for p in w.split("+")) for w in t["ward"]]
    assert (t["exposure"] == want).all()
    assert res.report["design_wards"] == 58 == t["ward"].nunique()
    assert set(t["group"]) == {"nbi", "benchmark"} and t["pair"].notna().all()
    from nbdid.data_prep.schema import validate_panel

    validate_panel(t, require_exposure=True)
    # a year without denominators -> clean error
    with pytest.raises(InputError, match="no 'children_0_19' for ward .*mid-2015"):
        dwp.ingest_dwp(CILIF_MSOA, "children_low_income", LSOA_LK, periods="2015/16",
                       population=dens, boundaries="lookup")


def test_period_year():
    assert dwp.period_year("2014/15") == 2014
    assert dwp.period_year("August 2015") == 2015
    with pytest.raises(InputError):
        dwp.period_year("latest")


def test_apportion_keeps_totals_and_rounds():
    weights = pd.DataFrame({"key": ["m"] * 3, "ward": ["a", "b", "c"], "ward_name": "n",
                            "la": "l", "weight": [0.5, 0.25, 0.25]})
    counts = pd.DataFrame({"key": ["m", "m"], "period": ["p1", "p2"], "value": [7.0, 2.0]})
    out = apportion_counts(counts, weights)
    p1 = out[out["period"] == "p1"].set_index("ward")["value"]
    # 3.5, 1.75, 1.75 -> floors 3,1,1 (5); two units to the largest remainders b, c
    assert p1.to_dict() == {"a": 3.0, "b": 2.0, "c": 2.0}
    assert out.groupby("period")["value"].sum().to_dict() == {"p1": 7.0, "p2": 2.0}


def test_unknown_names_and_periods(tmp_path):
    _need(MSOA_LK)
    f = tmp_path / "sx.csv"
    f.write_text('"Year","2019/20"\n"Area",\n"Atlantis 001",5\n"Total",5\n')
    with pytest.raises(InputError, match="no area name of the file is in the lookup"):
        _counts(f, MSOA_LK)
    f.write_text('"Year","2019/20"\n"Area",\n"Hartlepool 001",5\n"Atlantis 001",3\n')
    wards, rep, _, _ = _counts(f, MSOA_LK)
    assert rep["unmatched_examples"] == ["Atlantis 001"]
    assert wards["count"].sum() == 5
    with pytest.raises(InputError, match="period '2030/31' is not in the file"):
        _counts(f, MSOA_LK, periods="2030/31")


def test_weights_sum_to_one():
    _need(LSOA_LK)
    from nbdid.data_prep.lookups import read_lookup

    w = area_ward_weights(read_lookup(LSOA_LK))
    s = w.groupby("key")["weight"].sum()
    assert s.min() == pytest.approx(1.0) and s.max() == pytest.approx(1.0)
    assert re.match(r"^\w", w["key"].iloc[0])
