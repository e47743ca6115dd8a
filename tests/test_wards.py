"""Tests of nbdid.data_prep.wards: resolving the report's ward names to ONS codes."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from nbdid.data_prep.wards import (
    design_area_map,
    load_lookups,
    normalise_name,
    read_design,
    resolve_wards,
    study_design,
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


@pytest.fixture(scope="module")
def resolved19(lookups):
    from nbdid.data_prep.published import study_wards

    return resolve_wards(study_wards(), lookups, "WD19").set_index(["ward_name", "la"])


def _csv_rows(vintage):
    with (DATA / NAMES[vintage]).open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def test_all_58_resolve_in_wd19(resolved19):
    assert len(resolved19) == 58
    assert resolved19["ward_code"].notna().all()
    assert (resolved19["vintage"] == "WD19").all()


def test_la_always_part_of_match(resolved19):
    rows = _csv_rows("WD19")
    by_code = {r["WD19CD"]: r for r in rows}
    for ward, la in [("Harefield", "Southampton"), ("Northwood", "Knowsley"),
                     ("St Matthew's", "Preston"), ("St Matthew's", "Walsall")]:
        code = resolved19.loc[(ward, la), "ward_code"]
        assert by_code[code]["LAD19NM"] == la and by_code[code]["WD19NM"] == ward
    assert resolved19.loc[("St Matthew's", "Preston"), "ward_code"] != resolved19.loc[
        ("St Matthew's", "Walsall"), "ward_code"]


def test_birmingham_rewarding_split_from_lsoas(resolved19):
    r = resolved19.loc[("Lozells and East Handsworth", "Birmingham")]
    assert r["method"] == "mapped: split"
    # independent: where did the LSOAs of the 2017 ward go in 2019?
    old = {x["LSOA11CD"] for x in _csv_rows("WD17")
           if x["WD17NM"] == "Lozells and East Handsworth" and x["LAD17NM"] == "Birmingham"}
    new = {x["LSOA11CD"]: x["WD19CD"] for x in _csv_rows("WD19")}
    successors = {new[a] for a in old}
    assert set(r["ward_code"].split(";")) == successors
    assert len(successors) >= 2


def test_renamed_and_dorset(resolved19):
    s = resolved19.loc[("Sidley", "Rother")]
    assert s["method"] == "mapped: same area" and s["ward_name_matched"] == "Bexhill Sidley"
    m = resolved19.loc[("Melcombe Regis", "Weymouth and Portland")]
    assert m["method"].startswith("mapped") and "Melcombe Regis" in m["ward_name_matched"]
    exact = resolved19[resolved19["method"] == "exact"]
    assert ("Picton", "Liverpool") in exact.index


def test_wd15_shepway_alias(lookups):
    from nbdid.data_prep.published import study_wards

    r = resolve_wards(study_wards(), lookups, "WD15").set_index(["ward_name", "la"])
    assert r["ward_code"].notna().all()
    ef = r.loc[("East Folkestone", "Folkestone and Hythe")]
    assert ef["method"] == "normalised spelling" and "Shepway" in ef["note"]
    assert r.loc[("Lozells and East Handsworth", "Birmingham"), "method"] == "exact"


def test_only_one_vintage_cannot_map(lookups):
    from nbdid.data_prep.published import study_wards

    r = resolve_wards(study_wards(), {"WD19": lookups["WD19"]}, "WD19")
    lz = r.set_index("ward_name").loc["Lozells and East Handsworth"]
    assert lz["method"] == "not found" and pd.isna(lz["ward_code"])


def _tiny_lookups():
    a = pd.DataFrame({
        "area": ["L1", "L2", "L3", "L4", "L5"],
        "area_name": ["x"] * 5,
        "ward": ["W1", "W1", "W2", "W3", "W3"],
        "ward_name": ["St. Matthew’s", "St. Matthew’s", "Berwick Hills & Pallister", "Old Ward", "Old Ward"],
        "la_code": ["E1"] * 3 + ["E2"] * 2,
        "la_name": ["Kingston upon Hull, City of"] * 3 + ["Town", "Town"],
        "level": "lsoa", "vintage": "WD10",
    })
    b = a.assign(ward=["V1", "V1", "V2", "V3", "V4"],
                 ward_name=["St Matthews", "St Matthews", "Berwick Hills and Pallister", "North", "South"],
                 vintage="WD12")
    return {"WD10": a, "WD12": b}


def test_spelling_variants_and_split():
    lks = _tiny_lookups()
    wards = pd.DataFrame({
        "ward_name": ["St Matthew's", "Berwick Hills and Pallister", "Old Ward", "Nowhere"],
        "la": ["Kingston upon Hull", "Kingston upon Hull", "Town", "Town"],
    })
    r = resolve_wards(wards, lks, "WD10").set_index("ward_name")
    assert r.loc["St Matthew's", "method"] == "normalised spelling"
    assert r.loc["Berwick Hills and Pallister", "ward_code"] == "W2"
    r12 = resolve_wards(wards, lks, "WD12").set_index("ward_name")
    assert r12.loc["Old Ward", "method"] == "mapped: split"
    assert r12.loc["Old Ward", "ward_code"].split(";") == ["V3", "V4"] or set(
        r12.loc["Old Ward", "ward_code"].split(";")) == {"V3", "V4"}
    assert r12.loc["Nowhere", "method"] == "not found"
    assert normalise_name("St. Matthew’s") == normalise_name("st matthews")


def test_design_file_unknown_ward_names_line(tmp_path):
    lks = _tiny_lookups()
    p = tmp_path / "design.csv"
    p.write_text("ward_name,la,group,pair\nOld Ward,Town,nbi,1\nNowhere,Town,benchmark,1\n")
    with pytest.raises(InputError, match=r"design\.csv, line 3, column 'ward_name': unknown ward 'Nowhere'"):
        read_design(p, lks, "WD10")
    p.write_text("ward_name,la,group,pair\nOld Ward,Town,nbi,1\nSt Matthew's,Kingston upon Hull,benchmark,1\n")
    d = read_design(p, lks, "WD12")
    assert d["ward"].tolist() == ["V3+V4", "V1"]
    amap = design_area_map(lks["WD12"], d)
    assert sorted(amap.loc[amap["ward"] == "V3+V4", "area"]) == ["L4", "L5"]
    p.write_text("ward,group\nW9,nbi\n")
    with pytest.raises(InputError, match="line 2, column 'ward'"):
        read_design(p, lks, "WD10")
    p.write_text("ward,group\nW1,treated\n")
    with pytest.raises(InputError, match="line 2, column 'group'"):
        read_design(p, lks, "WD10")


def test_study_design_from_one_lookup_uses_siblings(lookups):
    design, res = study_design(DATA / NAMES["WD19"])
    assert len(design) == 58 and design["ward"].is_unique
    assert set(design.columns) == {"ward", "ward_name", "la", "group", "pair"}
    assert (design.groupby("pair")["group"].nunique() == 2).all()
