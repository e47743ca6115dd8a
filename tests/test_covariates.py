"""Tests of nbdid.data_prep.covariates: real IMD/lookup extracts (recomputed here with
the csv module) and OAC fixtures in the ONS layout."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pandas as pd
import pytest

from nbdid.data_prep.covariates import (
    OAC_COVARIATES,
    authority_type,
    oac_composition,
    read_oa_lookup,
    read_oac,
    read_region_lookup,
    study_covariates,
    ward_covariates,
)
from nbdid.data_prep.imd import read_imd
from nbdid.errors import InputError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
IMD = DATA / "ons_lookups" / "IMD_Dec2019_Lookup_England_LSOA11CD_LAD19_IMD19rank.csv"
LOOKUP19 = DATA / "ons_lookups" / "LSOA11_to_WD19_LAD19_Lookup_EW.csv"
OAC_HEAD = DATA / "oac2011" / "areas_head_of_2011_OAC_Clusters_and_Names_csv_v2.csv"

OAC_HEADER = ("Output Area Code,Local Authority Code,Local Authority Name,Region/Country Code,"
              "Region/Country Name,Supergroup Code,Supergroup Name,Group Code,Group Name,"
              "Subgroup Code,Subgroup Name\n")


@pytest.fixture(scope="module")
def real():
    if not (IMD.exists() and LOOKUP19.exists()):
        pytest.skip("../shared/data ONS extracts not available")
    return study_covariates(IMD, LOOKUP19)


@pytest.fixture(scope="module")
def raw():
    with IMD.open(newline="", encoding="utf-8-sig") as fh:
        rank = {r["LSOA11CD"]: int(r["IMD19"]) for r in csv.DictReader(fh)}
    with LOOKUP19.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    return rank, rows


def _expected(lsoas, rank):
    r = [rank[a] for a in lsoas]
    return {
        "n_lsoa": len(r),
        "mean_rank": statistics.fmean(r),
        "median_rank": statistics.median(r),
        "share_most_deprived_decile": sum(x <= 3284 for x in r) / len(r),
        "share_most_deprived_quintile": sum(x <= 6568 for x in r) / len(r),
    }


def test_every_english_ward_recomputed_for_a_few(real, raw):
    wards, _ = real
    rank, rows = raw
    english = {r["WD19CD"] for r in rows if r["LAD19CD"].startswith("E")}
    assert set(wards["ward"]) == english
    assert (wards["n_lsoa_with_imd"] == wards["n_lsoa"]).all()
    w = wards.set_index("ward")
    for code in sorted(english)[:: max(1, len(english) // 6)]:
        lsoas = [r["LSOA11CD"] for r in rows if r["WD19CD"] == code]
        for k, v in _expected(lsoas, rank).items():
            assert w.loc[code, k] == pytest.approx(v), (code, k)
        lad = next(r["LAD19CD"] for r in rows if r["WD19CD"] == code)
        want = {"E06": "unitary authority", "E07": "non-metropolitan district",
                "E08": "metropolitan borough", "E09": "London borough"}[lad[:3]]
        assert w.loc[code, "authority_type"] == want
    assert wards["region"].isna().all()
    assert set(wards.attrs["unavailable"]) == {"imd_score", "oac", "region"}
    assert wards["mean_score"].isna().all()


def test_all_58_study_wards_including_split_ones(real, raw):
    _, study = real
    rank, rows = raw
    assert len(study) == 58 and study["mean_rank"].notna().all()
    assert sorted(study["pair"].unique().tolist()) == list(range(1, 30))
    assert (study.groupby("pair")["group"].agg(sorted) .map(tuple) == ("benchmark", "nbi")).all()
    # Picton (Liverpool): a plain ward
    picton = study.set_index("ward_name").loc["Picton"]
    lsoas = [r["LSOA11CD"] for r in rows if r["WD19NM"] == "Picton" and r["LAD19NM"] == "Liverpool"]
    assert picton["mean_rank"] == pytest.approx(_expected(lsoas, rank)["mean_rank"])
    # a split ward: the union of the LSOAs of its successor codes
    comp = study[study["ward"].str.contains("+", regex=False)].iloc[0]
    parts = comp["ward"].split("+")
    lsoas = [r["LSOA11CD"] for r in rows if r["WD19CD"] in parts]
    for k, v in _expected(lsoas, rank).items():
        assert comp[k] == pytest.approx(v), k


def test_authority_type_prefixes():
    s = authority_type(pd.Series(["E06000001", "e07000033", "E08000025", "E09000001", "W06000001", None]))
    assert s.tolist()[:4] == ["unitary authority", "non-metropolitan district",
                              "metropolitan borough", "London borough"]
    assert s.isna().tolist()[4:] == [True, True]


def _oac_fixture(tmp_path):
    p = tmp_path / "2011 OAC Clusters and Names csv v2.csv"
    p.write_text(
        OAC_HEADER
        + "E00000001,E09000001,City of London,E12000007,London,2,Cosmopolitans,2d,x,2d3,y\n"
        + "E00000002,E09000001,City of London,E12000007,London,2,Cosmopolitans,2d,x,2d3,y\n"
        + "E00000003,E09000001,City of London,E12000007,London,8,Hard-Pressed Living,8a,x,8a1,y\n"
        + "E00000004,E07000033,Bolsover,E12000004,East Midlands,8,Hard-Pressed Living,8a,x,8a1,y\n"
        + "E00000005,E07000033,Bolsover,E12000004,East Midlands,1,Rural Residents,1a,x,1a1,y\n",
        encoding="utf-8",
    )
    return p


def _tiny_lookup():
    return pd.DataFrame({
        "area": ["E01000001", "E01000002", "E01000003"],
        "area_name": ["a", "b", "c"],
        "ward": ["W1", "W1", "W2"],
        "ward_name": ["One", "One", "Two"],
        "la_code": ["E09000001", "E09000001", "E07000033"],
        "la_name": ["City of London", "City of London", "Bolsover"],
        "level": "lsoa", "vintage": "WD19",
    })


def _imd_fixture(tmp_path):
    p = tmp_path / "imd.csv"
    p.write_text("LSOA11CD,IMD19\nE01000001,100\nE01000002,5000\nE01000003,30000\n")
    return read_imd(p)


def test_oac_composition_via_oa_to_ward_and_oa_to_lsoa(tmp_path):
    oac = read_oac(_oac_fixture(tmp_path))
    assert oac["supergroup"].tolist() == [2, 2, 8, 8, 1]
    (tmp_path / "oa_wd.csv").write_text(
        "OA11CD,WD19CD,WD19NM\nE00000001,W1,One\nE00000002,W1,One\nE00000003,W1,One\n"
        "E00000004,W2,Two\nE00000005,W2,Two\n")
    (tmp_path / "oa_lsoa.csv").write_text(
        "OA11CD,LSOA11CD,MSOA11CD\nE00000001,E01000001,M\nE00000002,E01000002,M\n"
        "E00000003,E01000002,M\nE00000004,E01000003,M\nE00000005,E01000003,M\n")
    a = oac_composition(oac, read_oa_lookup(tmp_path / "oa_wd.csv")).set_index("ward")
    b = oac_composition(oac, read_oa_lookup(tmp_path / "oa_lsoa.csv"), lookup=_tiny_lookup()).set_index("ward")
    for comp in (a, b):
        assert comp.loc["W1", "oac_share_2"] == pytest.approx(2 / 3)
        assert comp.loc["W1", "oac_share_8"] == pytest.approx(1 / 3)
        assert comp.loc["W2", "oac_share_1"] == 0.5 and comp.loc["W2", "oac_share_8"] == 0.5
        assert comp.loc["W1", "oac_modal_supergroup"] == 2
        assert comp.loc["W1", "region_name"] == "London"
        assert comp.loc[:, list(OAC_COVARIATES)].sum(axis=1).tolist() == pytest.approx([1, 1])
        assert comp.loc["W2", "n_oa"] == 2


def test_ward_covariates_with_oac_and_regions(tmp_path):
    oac = read_oac(_oac_fixture(tmp_path))
    (tmp_path / "oa_lsoa.csv").write_text(
        "OA11CD,LSOA11CD\nE00000001,E01000001\nE00000002,E01000002\nE00000003,E01000002\n"
        "E00000004,E01000003\nE00000005,E01000003\n")
    out = ward_covariates(_imd_fixture(tmp_path), _tiny_lookup(), oac=oac,
                          oa_map=read_oa_lookup(tmp_path / "oa_lsoa.csv")).set_index("ward")
    assert out.loc["W1", "mean_rank"] == 2550 and out.loc["W1", "share_most_deprived_decile"] == 0.5
    assert out.loc["W1", "share_most_deprived_quintile"] == 1.0
    assert out.loc["W2", "region"] == "East Midlands"
    assert "oac" not in out.attrs["unavailable"] and "region" not in out.attrs["unavailable"]
    assert "oac_share_8" in out.attrs["covariates"]
    # region from a LAD-to-region lookup instead
    (tmp_path / "rgn.csv").write_text("LAD19CD,LAD19NM,RGN19CD,RGN19NM\nE09000001,City,E12000007,London\n"
                                      "E07000033,Bolsover,E12000004,East Midlands\n")
    out2 = ward_covariates(_imd_fixture(tmp_path), _tiny_lookup(),
                           regions=read_region_lookup(tmp_path / "rgn.csv")).set_index("ward")
    assert out2.loc["W2", "region"] == "East Midlands"
    assert "oac" in out2.attrs["unavailable"] and "region" not in out2.attrs["unavailable"]


def test_shared_oac_head_reads_in_ons_layout(tmp_path):
    if not OAC_HEAD.exists():
        pytest.skip("../shared/data OAC extract not available")
    oac = read_oac(OAC_HEAD)
    assert len(oac) == 11 and set(oac["region_name"]) == {"London"}
    # the 11 Output Areas put into one ward through a fixture lookup
    (tmp_path / "oa.csv").write_text("OA11CD,WD19CD\n" + "".join(f"{o},WX\n" for o in oac["oa"]))
    comp = oac_composition(oac, read_oa_lookup(tmp_path / "oa.csv")).iloc[0]
    assert comp["n_oa"] == 11
    assert comp["oac_share_2"] == pytest.approx((oac["supergroup"] == 2).mean())


def test_oac_layout_errors(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("OA,Supergroup\nE00000001,2\n")
    with pytest.raises(InputError, match="not an ONS 2011 OAC"):
        read_oac(p)
    p.write_text(OAC_HEADER + "E00000001,E09000001,C,E12000007,London,9,X,9a,x,9a1,y\n")
    with pytest.raises(InputError, match="line 2.*Supergroup Code"):
        read_oac(p)
    p.write_text("OA11CD,MSOA11CD\nE00000001,E02000001\n")
    with pytest.raises(InputError, match="ward code"):
        read_oa_lookup(p)
