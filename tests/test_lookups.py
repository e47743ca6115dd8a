"""Tests of nbdid.data_prep.lookups on the shared ONS extracts and on small fixtures."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from nbdid.data_prep.lookups import aggregate_to_wards, read_lookup, read_lsoa01_to_lsoa11
from nbdid.errors import InputError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ons_lookups"


def need(name: str) -> Path:
    p = DATA / name
    if not p.exists():
        pytest.skip(f"shared extract {p} not available")
    return p


@pytest.mark.parametrize(
    ("name", "vintage", "level", "ward_col"),
    [
        ("LSOA11_to_WD15_LAD15_Lookup_EW.csv", "WD15", "lsoa", "WD15CD"),
        ("LSOA11_to_WD16_LAD16_Lookup_EW.csv", "WD16", "lsoa", "WD16CD"),
        ("LSOA11_to_WD17_LAD17_Lookup_EW.csv", "WD17", "lsoa", "WD17CD"),
        ("LSOA11_to_WD18_LAD18_Lookup_EW_v3.csv", "WD18", "lsoa", "WD18CD"),
        ("LSOA11_to_WD19_LAD19_Lookup_EW.csv", "WD19", "lsoa", "WD19CD"),
        ("MSOA11_to_WD19_LAD19_Lookup_EW.csv", "WD19", "msoa", "WD19CD"),
    ],
)
def test_real_lookups_detected_and_complete(name, vintage, level, ward_col):
    path = need(name)
    df = read_lookup(path)
    assert df.attrs["vintage"] == vintage and df.attrs["level"] == level
    assert set(df["vintage"]) == {vintage}
    # independent count with the csv module
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert len(df) == len({r[f"{level.upper()}11CD"] for r in rows})
    assert df["ward"].nunique() == len({r[ward_col] for r in rows})
    one = rows[0]
    got = df.set_index("area").loc[one[f"{level.upper()}11CD"]]
    assert got["ward"] == one[ward_col]
    assert got["la_name"] == one[f"LAD{vintage[2:]}NM"]


def _write(tmp_path, name, text, newline="\n"):
    p = tmp_path / name
    p.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return p


def test_bom_objectid_and_cr_line_endings(tmp_path):
    text = (
        "\ufeffObjectId,LSOA11CD,LSOA11NM,WD20CD,WD20NM,WD20NMW,LAD20CD,LAD20NM\n"
        "1,E01000001,A 001A,E05000001,Ward One,,E09000001,Town\n"
        "2,E01000002,A 001B,E05000001,Ward One,,E09000001,Town\n"
        "3,E01000003,A 001C,E05000002,Ward Two,,E09000001,Town\n"
    )
    p = _write(tmp_path, "lk.csv", text, newline="\r")
    df = read_lookup(p)
    assert df.attrs["vintage"] == "WD20"
    assert df["ward"].tolist() == ["E05000001", "E05000001", "E05000002"]
    assert df.columns.tolist()[:6] == ["area", "area_name", "ward", "ward_name", "la_code", "la_name"]


def test_unrecognised_layout_names_file_and_columns(tmp_path):
    p = _write(tmp_path, "bad.csv", "code,name\nE01,x\n")
    with pytest.raises(InputError, match=r"bad\.csv.*found \[code, name\]"):
        read_lookup(p)


def test_empty_and_non_utf8(tmp_path):
    with pytest.raises(InputError, match="empty"):
        read_lookup(_write(tmp_path, "e.csv", ""))
    p = tmp_path / "latin.csv"
    p.write_bytes(
        b"LSOA11CD,LSOA11NM,WD19CD,WD19NM,LAD19CD,LAD19NM\nE01000001,x,E05000001,Caf\xe9,E1,T\n"
    )
    with pytest.raises(InputError, match=r"latin\.csv, line 2: not UTF-8"):
        read_lookup(p)


def test_conflicting_duplicate_area(tmp_path):
    text = (
        "LSOA11CD,LSOA11NM,WD19CD,WD19NM,LAD19CD,LAD19NM\n"
        "E01000001,x,E05000001,W1,E1,T\nE01000001,x,E05000002,W2,E1,T\n"
    )
    with pytest.raises(InputError, match="line 3.*best-fit"):
        read_lookup(_write(tmp_path, "d.csv", text))


def test_aggregate_reports_unmatched_areas():
    lookup = pd.DataFrame(
        {"area": ["A1", "A2", "A3"], "ward": ["W1", "W1", "W2"], "ward_name": ["one", "one", "two"],
         "la_name": ["T", "T", "T"]}
    )
    df = pd.DataFrame(
        {"lsoa": ["A1", "A2", "A3", "E01035001", "E01035001", None], "n": [1, 2, 3, 4, 5, 6],
         "m": ["x", "x", "y", "x", "y", "x"]}
    )
    agg, unmatched = aggregate_to_wards(df, lookup, "lsoa", ["n"])
    assert agg.set_index("ward")["n"].to_dict() == {"W1": 3, "W2": 3}
    u = unmatched.set_index(unmatched["area"].fillna("<none>"))
    assert u.loc["E01035001", "rows"] == 2 and u.loc["E01035001", "n"] == 9
    assert u.loc["<none>", "rows"] == 1
    agg2, _ = aggregate_to_wards(df, lookup, "lsoa", ["n"], by=["m"])
    assert agg2.set_index(["ward", "m"])["n"].to_dict() == {("W1", "x"): 3, ("W2", "y"): 3}


def test_lsoa01_to_lsoa11():
    df = read_lsoa01_to_lsoa11(need("LSOA01_to_LSOA11_LAD11_Lookup_EW.csv"))
    assert {"lsoa01", "lsoa11", "change"} <= set(df.columns)
    assert set(df["change"].dropna()) <= {"U", "S", "M", "X"}
    assert len(df) == 34917
