"""Study-era ward boundaries and the report of wards whose area changed (shared lookups)."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from nbdid.data_prep.published import study_wards
from nbdid.data_prep.wards import (
    STUDY_VINTAGE,
    boundary_changes,
    load_lookups,
    resolve_geography,
    resolve_wards,
)
from nbdid.errors import InputError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ons_lookups"
NAMES = {
    "WD15": "LSOA11_to_WD15_LAD15_Lookup_EW.csv",
    "WD16": "LSOA11_to_WD16_LAD16_Lookup_EW.csv",
    "WD17": "LSOA11_to_WD17_LAD17_Lookup_EW.csv",
    "WD18": "LSOA11_to_WD18_LAD18_Lookup_EW_v3.csv",
    "WD19": "LSOA11_to_WD19_LAD19_Lookup_EW.csv",
}


@pytest.fixture(scope="module")
def lookups():
    if not all((DATA / n).exists() for n in NAMES.values()):
        pytest.skip("shared ONS lookups not available")
    return load_lookups({v: DATA / n for v, n in NAMES.items()})


def _lsoas(vintage: str, name: str, la: str) -> set[str]:
    """Independent: LSOAs of a ward by name with the csv module."""
    y = vintage[2:]
    with (DATA / NAMES[vintage]).open(newline="", encoding="utf-8-sig") as fh:
        return {r["LSOA11CD"] for r in csv.DictReader(fh)
                if r[f"WD{y}NM"] == name and r[f"LAD{y}NM"] == la}


def test_nechells_is_not_called_exact_in_wd19(lookups):
    r = resolve_wards(study_wards(), lookups, "WD19").set_index(["ward_name", "la"])
    assert len(_lsoas("WD17", "Nechells", "Birmingham")) == 21
    assert len(_lsoas("WD19", "Nechells", "Birmingham")) == 8
    assert r.loc[("Nechells", "Birmingham"), "method"] == "same name, area changed"
    assert r.loc[("Picton", "Liverpool"), "method"] == "exact"  # same area in both
    # in the study era itself the names are exact
    r17 = resolve_wards(study_wards(), lookups, STUDY_VINTAGE)
    assert (r17["method"] == "exact").sum() == 57
    assert not r17["method"].str.contains("area changed").any()


def test_nine_wards_change_area_between_study_era_and_wd19(lookups):
    ch = boundary_changes(lookups, study_wards(), "WD17", "WD19")
    changed = ch[ch["share_lsoas_changed"] > 0].set_index("ward_name")
    assert len(changed) == 9
    assert set(changed.index) == {
        "Lozells and East Handsworth", "Shirebrook North West", "St Radigunds",
        "Orchard Park and Greenwood", "Melcombe Regis", "Mill Hill", "St Matthew's",
        "Nechells", "Denton"}
    n = changed.loc["Nechells"]
    assert (n["lsoas_from"], n["lsoas_to"], n["lsoas_shared"]) == (21, 8, 8)
    assert n["share_lsoas_changed"] == pytest.approx(13 / 21)
    # population-weighted share with LSOA populations (here: equal weights of 2 and 1)
    pop = pd.Series(1.0, index=sorted(lookups["WD17"]["area"]))
    ch2 = boundary_changes(lookups, study_wards(), "WD17", "WD19", lsoa_population=pop * 2)
    assert ch2.set_index("ward_name").loc["Nechells", "share_population_changed"] == (
        pytest.approx(13 / 21))


def test_geography_defaults_to_study_era_and_reports_changes(lookups):
    geo = resolve_geography(DATA / NAMES["WD19"])
    assert geo.vintage == "WD17" and len(geo.design) == 58
    nechells = geo.design.set_index("ward_name").loc["Nechells", "ward"]
    amap = geo.area_map()
    assert (amap["ward"] == nechells).sum() == 21
    assert geo.report["boundary_changes"]["wards_changed"] == 9
    assert any("Nechells (Birmingham): 21 LSOAs in WD17, 8 in WD19" in w
               for w in geo.report["boundary_changes"]["wards"])
    notice = geo.report["guards"][0]
    assert notice["guard"] == "ward boundaries" and "9 of 58" in notice["message"]
    # the lookup's own boundaries on request: Nechells has 8 LSOAs, changes still reported
    geo19 = resolve_geography(DATA / NAMES["WD19"], boundaries="lookup")
    assert geo19.vintage == "WD19"
    code = geo19.design.set_index("ward_name").loc["Nechells", "ward"]
    assert (geo19.area_map()["ward"] == code).sum() == 8
    assert "the panel uses the WD19 areas" in geo19.report["guards"][0]["message"]


def test_missing_study_era_lookup_is_refused_with_the_fix(lookups):
    with pytest.raises(InputError, match=r"study-era boundaries \(WD17\).*LSOA \(2011\) to Ward "
                                         r"\(2017\).*--boundaries lookup"):
        resolve_geography(lookups["WD19"])
