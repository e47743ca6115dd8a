"""Tests of nbdid.data_prep.imd on the shared ONS IMD 2019 lookup and a File 7 fixture."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pandas as pd
import pytest

from nbdid.data_prep.imd import ingest_imd, read_imd, ward_imd
from nbdid.errors import InputError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ons_lookups"
IMD = DATA / "IMD_Dec2019_Lookup_England_LSOA11CD_LAD19_IMD19rank.csv"
LOOKUP19 = DATA / "LSOA11_to_WD19_LAD19_Lookup_EW.csv"


@pytest.fixture(scope="module")
def result():
    if not (IMD.exists() and LOOKUP19.exists()):
        pytest.skip("shared ONS extracts not available")
    return ingest_imd(IMD, LOOKUP19)


def test_all_58_study_wards_get_imd(result):
    t = result.table
    assert result.kind == "covariates"
    assert len(t) == 58 and (t["n_lsoa_with_imd"] == t["n_lsoa"]).all()
    assert result.report["wards_without_imd"] == []
    # independent: mean rank and decile-1 share of Picton (Liverpool) with the csv module
    with LOOKUP19.open(newline="", encoding="utf-8-sig") as fh:
        lsoas = [r["LSOA11CD"] for r in csv.DictReader(fh)
                 if r["WD19NM"] == "Picton" and r["LAD19NM"] == "Liverpool"]
    with IMD.open(newline="", encoding="utf-8-sig") as fh:
        rank = {r["LSOA11CD"]: int(r["IMD19"]) for r in csv.DictReader(fh)}
    ranks = [rank[a] for a in lsoas]
    row = t.set_index("ward_name").loc["Picton"]
    assert row["n_lsoa"] == len(ranks)
    assert row["mean_rank"] == pytest.approx(statistics.fmean(ranks))
    assert row["share_most_deprived_decile"] == pytest.approx(sum(r <= 3284 for r in ranks) / len(ranks))
    assert len(rank) == 32844


def test_file7_layout_population_weighting(tmp_path):
    p = tmp_path / "File_7.csv"
    p.write_text(
        "LSOA code (2011),LSOA name (2011),Index of Multiple Deprivation (IMD) Score,"
        "Index of Multiple Deprivation (IMD) Rank (where 1 is most deprived),"
        "Total population: mid 2015 (excluding prisoners)\n"
        "E01000001,a,50.0,100,1000\nE01000002,b,10.0,20000,3000\nE01000003,c,30.0,3284,2000\n"
    )
    imd = read_imd(p)
    lookup = pd.DataFrame({"area": ["E01000001", "E01000002", "E01000003", "W01000001"],
                           "ward": ["W1", "W1", "W2", "W2"], "ward_name": ["One", "One", "Two", "Two"],
                           "la_name": ["T"] * 4})
    out, unmatched = ward_imd(imd, lookup)
    w1 = out.set_index("ward").loc["W1"]
    assert w1["pop_weighted_score"] == pytest.approx((50 * 1000 + 10 * 3000) / 4000)
    assert w1["pop_weighted_rank"] == pytest.approx((100 * 1000 + 20000 * 3000) / 4000)
    assert w1["share_most_deprived_decile"] == 0.5
    w2 = out.set_index("ward").loc["W2"]
    assert w2["n_lsoa"] == 2 and w2["n_lsoa_with_imd"] == 1 and w2["share_most_deprived_decile"] == 1.0
    assert unmatched["area"].tolist() == ["W01000001"]


def test_bad_imd_files(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("code,rank\nE1,3\n")
    with pytest.raises(InputError, match="not an IMD 2019 file"):
        read_imd(p)
    p.write_text("LSOA11CD,IMD19\nE01000001,high\n")
    with pytest.raises(InputError, match="line 2, column 'IMD19'"):
        read_imd(p)
