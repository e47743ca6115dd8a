"""Tests of the ONS SAPE / Census 2011 households -> ward denominators loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbdid.data_prep import population
from nbdid.errors import InputError

LOOKUP = (
    "FID,LSOA11CD,LSOA11NM,WD19CD,WD19NM,LAD19CD,LAD19NM\n"
    "1,E01011950,Hartlepool 001A,E05008942,Burn Valley,E06000001,Hartlepool\n"
    "2,E01011951,Hartlepool 001B,E05008942,Burn Valley,E06000001,Hartlepool\n"
    "3,E01011952,Hartlepool 001C,E05008944,Fens and Rossmere,E06000001,Hartlepool\n"
)
AGES = [str(a) for a in range(90)] + ["90+"]


def _sape(tmp_path: Path, name: str, title: bool = True, formatted: bool = False) -> Path:
    """SAPE layout (mid-2019 style): title lines, then LSOA rows by single year of age."""
    lines = []
    if title:
        lines += ["Mid-2019 Population Estimates for Lower Layer Super Output Areas in "
                  "England and Wales by Single Year of Age and Sex,,", "All Persons,,", ""]
    lines.append("LSOA Code,LSOA Name,LA Code (2019 boundaries),LA name (2019 boundaries),"
                 "LA Code (2020 boundaries),LA name (2020 boundaries),All Ages," + ",".join(AGES))
    if formatted:
        lines.append('E06000001,Hartlepool,,,,,"3,111",' + ",".join(["1"] * 91))
    for k, code in enumerate(("E01011950", "E01011951", "E01011952")):
        vals = [(a % 7) + k + 1 for a in range(91)]
        cells = [f'"{v:,}"' for v in vals] if formatted else [str(v) for v in vals]
        total = sum(vals)
        tot = f'"{total:,}"' if formatted else str(total)
        lines.append(f"{code},Hartlepool 00{k}X,E06000001,Hartlepool,E06000001,Hartlepool,"
                     f"{tot}," + ",".join(cells))
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def _expected(k: int, lo: int, hi: int) -> int:
    return sum((a % 7) + k + 1 for a in range(lo, hi + 1))


@pytest.mark.parametrize("formatted", [False, True])
def test_sape_denominators_to_wards(tmp_path, formatted):
    lk = tmp_path / "lk.csv"
    lk.write_text(LOOKUP)
    f = _sape(tmp_path, "sape22dt2mid2019lsoasyoaestimatesunformatted.csv", formatted=formatted)
    hh = tmp_path / "KS105EW.csv"
    hh.write_text(
        "date,geography,geography code,Rural Urban,Household Composition: All households; "
        "measures: Value,Household Composition: One person household; measures: Value\n"
        "2011,Hartlepool 001A,E01011950,Total,650,200\n"
        "2011,Hartlepool 001B,E01011951,Total,700,210\n"
        "2011,Hartlepool 001C,E01011952,Total,720,230\n"
        "2011,Somewhere 001A,E01099999,Total,1,1\n"
    )
    res = population.ingest_population([f], lk, households=hh)
    assert res.kind == "denominators"
    t = res.table.set_index(["ward", "year", "denominator"])["value"]
    assert list(res.table.columns) == ["ward", "ward_name", "la", "year", "denominator", "value"]
    bv, fr = "E05008942", "E05008944"
    assert t[(bv, 2019, "working_age")] == _expected(0, 16, 64) + _expected(1, 16, 64)
    assert t[(fr, 2019, "children_0_19")] == _expected(2, 0, 19)
    assert t[(fr, 2019, "population")] == _expected(2, 0, 90)
    assert t[(bv, 2011, "households")] == 1350 and t[(fr, 2011, "households")] == 720
    assert res.report["households"]["areas_not_in_lookup"] == 1
    assert res.report["sape_files"][0]["rows_skipped_without_lsoa_code"] == int(formatted)
    assert res.report["sape_files"][0]["year"] == 2019


def test_year_from_title_or_option(tmp_path):
    f = _sape(tmp_path, "persons.csv")
    assert population.read_sape(f)["year"].iloc[0] == 2019
    g = _sape(tmp_path, "persons2.csv", title=False)
    with pytest.raises(InputError, match="pass --year"):
        population.read_sape(g)
    assert population.read_sape(g, year=2015)["year"].iloc[0] == 2015


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda s: s.replace("All Ages", "Total"), "no header row with an 'All Ages'"),
        (lambda s: s.replace(",17,", ",seventeen,", 1), "incomplete"),
        (lambda s: s.replace("LSOA Code", "Code"), "no LSOA code column"),
        (lambda s: s.replace("E01011951", "E01011950"), "appears twice"),
        (lambda s: s.rsplit(",", 1)[0] + ",x\n", "not a number"),
    ],
)
def test_sape_errors(tmp_path, edit, match):
    f = _sape(tmp_path, "mid2019.csv")
    f.write_text(edit(f.read_text()))
    with pytest.raises(InputError, match=match) as err:
        population.read_sape(f)
    assert "mid2019.csv" in str(err.value)


def test_households_errors(tmp_path):
    f = tmp_path / "hh.csv"
    f.write_text("geography code,Other\nE01011950,5\n")
    with pytest.raises(InputError, match="no all-households column"):
        population.read_census_households(f)
    f.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="geography code"):
        population.read_census_households(f)


def test_read_denominators_errors(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("ward,year,value\nE05000001,2011,5\n")
    with pytest.raises(InputError, match="missing column 'denominator'"):
        population.read_denominators(f)
    f.write_text("ward,year,denominator,value\nE05000001,2011,population,lots\n")
    with pytest.raises(InputError, match="line 2, column 'value'"):
        population.read_denominators(f)
