"""Tests of the Nomis UK Business Counts loader on fixtures in the publisher's layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbdid.data_prep import nomis
from nbdid.errors import InputError

LOOKUP = (
    "FID,LSOA11CD,LSOA11NM,WD19CD,WD19NM,LAD19CD,LAD19NM\n"
    "1,E01011950,Hartlepool 001A,E05008942,Burn Valley,E06000001,Hartlepool\n"
    "2,E01011951,Hartlepool 001B,E05008942,Burn Valley,E06000001,Hartlepool\n"
    "3,E01011952,Hartlepool 001C,E05008944,Fens and Rossmere,E06000001,Hartlepool\n"
    "4,E01011953,Hartlepool 002A,E05008944,Fens and Rossmere,E06000001,Hartlepool\n"
)
MSOA_LOOKUP = (
    "FID,MSOA11CD,MSOA11NM,WD19CD,WD19NM,LAD19CD,LAD19NM\n"
    "1,E02002483,Hartlepool 001,E05008942,Burn Valley,E06000001,Hartlepool\n"
    "2,E02002484,Hartlepool 002,E05008944,Fens and Rossmere,E06000001,Hartlepool\n"
)
API_HEADER = (
    "DATE,DATE_NAME,DATE_CODE,DATE_TYPE,DATE_TYPECODE,DATE_SORTORDER,GEOGRAPHY,"
    "GEOGRAPHY_NAME,GEOGRAPHY_CODE,GEOGRAPHY_TYPE,GEOGRAPHY_TYPECODE,GEOGRAPHY_SORTORDER,"
    "INDUSTRY,INDUSTRY_NAME,INDUSTRY_CODE,INDUSTRY_TYPE,INDUSTRY_TYPECODE,INDUSTRY_SORTORDER,"
    "EMPLOYMENT_SIZEBAND,EMPLOYMENT_SIZEBAND_NAME,EMPLOYMENT_SIZEBAND_CODE,"
    "EMPLOYMENT_SIZEBAND_TYPE,EMPLOYMENT_SIZEBAND_TYPECODE,EMPLOYMENT_SIZEBAND_SORTORDER,"
    "LEGAL_STATUS,LEGAL_STATUS_NAME,LEGAL_STATUS_CODE,LEGAL_STATUS_TYPE,"
    "LEGAL_STATUS_TYPECODE,LEGAL_STATUS_SORTORDER,MEASURES,MEASURES_NAME,OBS_VALUE,"
    "OBS_STATUS,OBS_STATUS_NAME,OBS_CONF,OBS_CONF_NAME,URN,RECORD_OFFSET,RECORD_COUNT\n"
)


def _api_row(year, geo_id, name, code, band, band_name, value):
    return (
        f"{year},{year},{year},date,0,0,{geo_id},{name},{code},2011 super output areas - "
        f"middle layer,297,0,37748736,Total,Total,industry,1000,0,{band},{band_name},"
        f"{band},sizeband,0,0,0,Total,0,legal status,0,0,20100,Value,{value},A,Normal Value,"
        f"F,Free (free for publication),Nm-141d1d{year}d{geo_id},0,8\n"
    )


def _api_file(tmp_path: Path) -> Path:
    rows = [API_HEADER]
    for year, v1, v2 in ((2011, 175, 60), (2021, 205, 55)):
        rows.append(_api_row(year, 1245708289, "Hartlepool 001", "E02002483", 0, "Total", v1))
        rows.append(_api_row(year, 1245708289, "Hartlepool 001", "E02002483", 10,
                             "Micro (0 to 9)", v1 - 20))
        rows.append(_api_row(year, 1245708290, "Hartlepool 002", "E02002484", 0, "Total", v2))
        rows.append(_api_row(year, 1245708290, "Hartlepool 002", "E02002484", 10,
                             "Micro (0 to 9)", v2 - 5))
    p = tmp_path / "ukbc_api.csv"
    p.write_text("".join(rows))
    return p


WEB = (
    '"UK Business Counts - local units by industry and employment size band"\n'
    '"ONS Crown Copyright Reserved [from Nomis on 22 November 2026]"\n'
    '"Industry","Total"\n"Employment Sizeband","Total"\n"Legal Status","Total"\n\n'
    '"2011 super output area - middle layer","mnemonic","2011","2021"\n'
    '"Hartlepool 001","E02002483","175","205"\n'
    '"Hartlepool 002","E02002484","60","55"\n\n'
    '"Counts are rounded to avoid disclosure. Totals may not add."\n'
)


def _files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "design.csv").write_text(
        "ward,group,pair\nE05008942,nbi,1\nE05008944,benchmark,1\n")
    lk = tmp_path / "lsoa_lookup.csv"
    lk.write_text(LOOKUP)
    mlk = tmp_path / "msoa_lookup.csv"
    mlk.write_text(MSOA_LOOKUP)
    return lk, mlk


def _ingest(file, lookup, **kw):
    kw.setdefault("design", Path(lookup).parent / "design.csv")
    return nomis.ingest_nomis(file, lookup, **kw)


def _expected_lsoa_share():
    # Hartlepool 001: 2 of 3 LSOAs in Burn Valley, 1 in Fens and Rossmere.
    # 175 * 2/3 = 116.67, 175/3 = 58.33 -> floors 116 + 58 = 174, the one unit left
    # goes to the larger remainder (0.67, Burn Valley): 117 and 58.
    # 205: 136.67 / 68.33 -> 137 and 68.  Hartlepool 002 wholly in Fens and Rossmere.
    return {("E05008942", "2011"): 117, ("E05008944", "2011"): 58 + 60,
            ("E05008942", "2021"): 137, ("E05008944", "2021"): 68 + 55}


@pytest.mark.parametrize("layout", ["api", "web"])
def test_both_layouts_apportioned(tmp_path, layout):
    lk, _ = _files(tmp_path)
    if layout == "api":
        f = _api_file(tmp_path)
    else:
        f = tmp_path / "ukbc_web.csv"
        f.write_text(WEB)
    res = _ingest(f, lk)
    t = res.table.set_index(["ward", "period_label"])["count"].to_dict()
    assert t == _expected_lsoa_share()
    assert res.report["layout"] == f"nomis_{layout}"
    assert "largest-remainder" in res.report["rounding"]
    assert res.report["areas_split_over_several_wards"] == 1
    assert res.table["period"].tolist() == [0, 0, 1, 1]
    assert res.table.set_index("ward")["group"].to_dict() == {"E05008942": "nbi",
                                                              "E05008944": "benchmark"}
    assert res.require_exposure is False and res.kind == "panel"
    if layout == "api":
        assert res.report["dimensions_reduced"]["EMPLOYMENT_SIZEBAND"] == "Total"


def test_msoa_best_fit_and_exposure(tmp_path):
    _, mlk = _files(tmp_path)
    f = tmp_path / "w.csv"
    f.write_text(WEB)
    dens = tmp_path / "d.csv"
    dens.write_text("ward,ward_name,la,year,denominator,value\n"
                    "E05008942,BV,H,2011,working_age,4000\nE05008944,FR,H,2011,working_age,5000\n"
                    "E05008942,BV,H,2021,working_age,4100\nE05008944,FR,H,2021,working_age,5100\n")
    res = _ingest(f, mlk, population=dens)
    t = res.table.set_index(["ward", "period_label"])
    assert t.loc[("E05008942", "2011"), "count"] == 175
    assert t.loc[("E05008944", "2021"), "exposure"] == 5100
    assert res.require_exposure is True and res.report["apportioning"] == "msoa_best_fit"


def test_population_share(tmp_path):
    lk, _ = _files(tmp_path)
    f = tmp_path / "w.csv"
    f.write_text(WEB)
    sape = tmp_path / "sape_mid2011.csv"
    ages = ",".join(str(a) for a in range(90)) + ",90+"
    lines = [f"LSOA Code,LSOA Name,All Ages,{ages}"]
    for code, pop in (("E01011950", 100), ("E01011951", 100), ("E01011952", 800),
                      ("E01011953", 500)):
        lines.append(f"{code},x,{pop},{pop}," + ",".join(["0"] * 90))
    sape.write_text("\n".join(lines) + "\n")
    res = _ingest(f, lk, apportion_population=sape)
    t = res.table.set_index(["ward", "period_label"])["count"].to_dict()
    # 001 split 200:800 -> 175: 35 / 140 ; 205: 41 / 164
    assert t[("E05008942", "2011")] == 35 and t[("E05008944", "2011")] == 140 + 60
    assert t[("E05008942", "2021")] == 41
    assert res.report["apportioning"] == "msoa_by_lsoa_population"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("a,b\n1,2\n", "not a Nomis business counts file"),
        ("GEOGRAPHY_CODE,OBS_VALUE\nE02002483,5\n", "missing column DATE_NAME"),
        (API_HEADER.replace("OBS_VALUE", "OBS_VAL") + "x\n", "not a Nomis"),
        ('"2011 super output area - middle layer","mnemonic","2011"\n'
         '"Hartlepool 001","E02002483","abc"\n', "not a number"),
        ('"x","mnemonic","Micro"\n"Hartlepool 001","E02002483","5"\n', "is not a year"),
        ('"x","mnemonic","2011"\n"Atlantis 001","E02999999","5"\n', "no area of the file"),
    ],
)
def test_bad_input(tmp_path, text, match):
    lk, _ = _files(tmp_path)
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(InputError, match=match) as err:
        _ingest(f, lk)
    assert "\n" not in str(err.value)


def test_several_categories_without_total(tmp_path):
    lk, _ = _files(tmp_path)
    f = tmp_path / "api.csv"
    rows = [API_HEADER, _api_row(2011, 1, "Hartlepool 001", "E02002483", 10, "Micro", 5),
            _api_row(2011, 1, "Hartlepool 001", "E02002483", 20, "Small", 5)]
    f.write_text("".join(rows))
    with pytest.raises(InputError, match="no total"):
        _ingest(f, lk)
