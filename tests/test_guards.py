"""Correctness guards: partial periods, impossible counts, rates, populations and prices."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from nbdid.cli import main
from nbdid.data_prep import dwp, nomis, population
from nbdid.data_prep.land_registry import read_postcodes, read_ppd, stream_price_panel
from nbdid.data_prep.police import ingest_police
from nbdid.errors import InputError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MSOA_LK = SHARED / "ons_lookups" / "MSOA11_to_WD19_LAD19_Lookup_EW.csv"

HEADER = ("Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,"
          "LSOA name,Crime type,Last outcome category,Context\n")


def _months(a: str, b: str) -> list[str]:
    out, y, m = [], int(a[:4]), int(a[5:])
    while f"{y}-{m:02d}" <= b:
        out.append(f"{y}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


@pytest.fixture
def two_forces(tmp_path):
    """'alpha' publishes 2010-12..2011-03 and 2020-04..2021-03; 'gmp' stops after 2011-03."""
    d = tmp_path / "crime"
    d.mkdir()
    rows = {"alpha": [("L1", "Burglary"), ("L2", "Drugs"), ("L4", "Burglary")],
            "gmp": [("L3", "Burglary"), ("L3", "Vehicle crime")]}
    for force, months in (("alpha", _months("2010-12", "2011-03") + _months("2020-04", "2021-03")),
                          ("gmp", _months("2010-12", "2011-03"))):
        for m in months:
            (d / f"{m}-{force}-street.csv").write_text(HEADER + "".join(
                f"x,{m},F,F,0,0,X,{lsoa},n,{t},,\n" for lsoa, t in rows[force]))
    lookup = pd.DataFrame({"area": ["L1", "L2", "L3", "L4"], "area_name": list("abcd"),
                           "ward": ["W1", "W2", "W3", "W4"], "ward_name": ["One", "Two", "Three", "Four"],
                           "la_code": ["E1"] * 4, "la_name": ["T"] * 4, "level": "lsoa",
                           "vintage": "WD19"})
    design = pd.DataFrame({"ward": ["W1", "W2", "W3", "W4"], "ward_name": ["One", "Two", "Three", "Four"],
                           "la": ["T"] * 4, "group": ["nbi", "benchmark", "nbi", "benchmark"],
                           "pair": pd.array([1, 1, 2, 2], dtype="Int64")})
    pop = pd.DataFrame([(w, y, "population", 1200.0) for w in ("W1", "W2", "W3", "W4")
                        for y in (2010, 2020)] + [(w, 2011, "households", 600.0)
                                                  for w in ("W1", "W2", "W3", "W4")],
                       columns=["ward", "year", "denominator", "value"])
    return d, lookup, design, pop


def test_partial_periods_refused_by_default(two_forces):
    d, lookup, design, _ = two_forces
    with pytest.raises(InputError) as err:
        ingest_police(d, lookup, design=design)
    msg = str(err.value)
    assert "\n" not in msg
    assert "2010/11: alpha 4/12 months (missing 2010-04..2010-11 (police.uk starts in 2010-12))" in msg
    assert "2020/21: gmp 0/12 months (missing 2020-04..2021-03)" in msg
    assert "--partial-periods drop-pairs" in msg and "--year-type calendar" in msg


def test_partial_periods_shorten_scales_exposure_and_drops_force_without_months(two_forces):
    d, lookup, design, pop = two_forces
    res = ingest_police(d, lookup, design=design, partial_periods="shorten", population=pop)
    t = res.table
    assert set(t["ward"]) == {"W1", "W2"}  # pair 2 dropped: gmp published no 2020/21 month
    b = t[t["indicator"] == "burglary"].set_index(["ward", "period_label"])
    assert b.loc[("W1", "2010/11"), "count"] == 4 and b.loc[("W1", "2020/21"), "count"] == 12
    assert b.loc[("W1", "2010/11"), "exposure"] == pytest.approx(600 * 4 / 12)
    c = t[t["indicator"] == "crime"].set_index(["ward", "period_label"])
    assert c.loc[("W2", "2010/11"), "exposure"] == pytest.approx(1200 * 4 / 12)
    assert c.loc[("W2", "2020/21"), "exposure"] == pytest.approx(1200)
    notes = {g["guard"]: g for g in res.report["guards"]}
    assert notes["partial periods"]["pairs_dropped"] == [2]
    assert notes["partial periods"]["months_used"] == {"2010/11": 4, "2020/21": 12}
    assert "2010-12..2011-03" in notes["partial periods"]["message"]
    assert "year map" in notes
    assert res.report["months_missing_by_force"]["gmp"]["2020/21"] == "2020-04..2021-03"


def test_partial_periods_drop_pairs_and_keep(two_forces):
    d, lookup, design, _ = two_forces
    with pytest.raises(InputError, match="every ward has a period with months missing"):
        ingest_police(d, lookup, design=design, partial_periods="drop-pairs")
    res = ingest_police(d, lookup, design=design, partial_periods="keep")
    t = res.table.set_index(["indicator", "ward", "period_label"])["count"]
    assert t[("burglary", "W3", "2020/21")] == 0  # kept, and said so
    msg = next(g["message"] for g in res.report["guards"] if g["guard"] == "partial periods")
    assert msg.startswith("kept partial counts") and "gmp 0/12" in msg


def test_cli_prints_guard_notices_on_stderr(two_forces, tmp_path, capsys):
    d, lookup, design, pop = two_forces
    lk = tmp_path / "lk.csv"
    lk.write_text("LSOA11CD,LSOA11NM,WD19CD,WD19NM,LAD19CD,LAD19NM\n" + "".join(
        f"{r.area},{r.area_name},{r.ward},{r.ward_name},E1,T\n" for r in lookup.itertuples()))
    des = tmp_path / "design.csv"
    design.to_csv(des, index=False)
    out = tmp_path / "o" / "crime.csv"
    code = main(["ingest", "police", "--crime-dir", str(d), "--lookup", str(lk), "--design",
                 str(des), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "partial-periods" in err
    assert not out.parent.exists() or list(out.parent.iterdir()) == []
    code = main(["ingest", "police", "--crime-dir", str(d), "--lookup", str(lk), "--design",
                 str(des), "--out", str(out), "--partial-periods", "shorten"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert "nbdid ingest police: note: partial periods: periods cut to the months" in cap.err
    txt = (tmp_path / "o" / "crime.provenance.txt").read_text(encoding="utf-8")
    assert "partial periods" in txt


# ----------------------------------------------------------------------------------------
# counts, rates, populations and prices that cannot be right
# ----------------------------------------------------------------------------------------


def _msoa_ward(name: str) -> str:
    with MSOA_LK.open(newline="", encoding="utf-8-sig") as fh:
        return next(r["WD19CD"] for r in csv.DictReader(fh) if r["MSOA11NM"] == name)


def test_negative_counts_stop_with_line_and_column(tmp_path):
    if not MSOA_LK.exists():
        pytest.skip("shared ONS lookups not available")
    f = tmp_path / "sx.csv"
    f.write_text('"Year","2019/20"\n"Area",\n"Hartlepool 002",4\n"Hartlepool 001",-5\n')
    with pytest.raises(InputError, match=r"sx\.csv, line 4, column '2019/20'.*negative"):
        dwp.build_ward_counts(f, MSOA_LK)
    web = tmp_path / "ukbc.csv"
    web.write_text('"x","mnemonic","2011"\n"Hartlepool 001","E02002483","-5"\n')
    (tmp_path / "design.csv").write_text(f"ward,group\n{_msoa_ward('Hartlepool 001')},nbi\n")
    with pytest.raises(InputError, match=r"ukbc\.csv, line 2, column '2011'.*negative"):
        nomis.ingest_nomis(web, MSOA_LK, design=tmp_path / "design.csv")


def test_binomial_rate_above_one_stops(tmp_path):
    if not MSOA_LK.exists():
        pytest.skip("shared ONS lookups not available")
    ward = _msoa_ward("Hartlepool 001")
    f = tmp_path / "cilif.csv"
    f.write_text('"Year","2019/20"\n"Area",\n"Hartlepool 001",50\n')
    des = tmp_path / "design.csv"
    des.write_text(f"ward,group\n{ward},nbi\n")
    dens = tmp_path / "dens.csv"
    dens.write_text(f"ward,ward_name,la,year,denominator,value\n{ward},x,y,2019,children_0_19,40\n")
    with pytest.raises(InputError) as err:
        dwp.ingest_dwp(f, "children_low_income", MSOA_LK, population=dens, design=des)
    msg = str(err.value)
    assert "cilif.csv, line 3, column '2019/20'" in msg
    assert "rate of 1.25 (above 1) cannot be right" in msg and "dens.csv" in msg
    dens.write_text(f"ward,ward_name,la,year,denominator,value\n{ward},x,y,2019,children_0_19,400\n")
    res = dwp.ingest_dwp(f, "children_low_income", MSOA_LK, population=dens, design=des)
    assert res.table["exposure"].tolist() == [400.0]


def test_zero_populations_stop(tmp_path):
    ages = ",".join(str(a) for a in range(90)) + ",90+"
    sape = tmp_path / "sape_mid2019.csv"
    sape.write_text(f"LSOA Code,LSOA Name,All Ages,{ages}\n"
                    "E01000001,a,10,10," + ",".join(["0"] * 90) + "\n"
                    "E01000002,b,0," + ",".join(["0"] * 91) + "\n")
    with pytest.raises(InputError, match=r"line 3, column 'All Ages'.*population of zero"):
        population.read_sape(sape)
    dens = tmp_path / "d.csv"
    dens.write_text("ward,year,denominator,value\nE05000001,2011,population,0\n")
    with pytest.raises(InputError, match=r"d\.csv, line 2, column 'value'.*cannot be right"):
        population.read_denominators(dens)


@pytest.mark.parametrize(
    ("price", "date", "match"),
    [
        ("2000000000", "2019-01-02 00:00", "outside what HM Land Registry publishes"),
        ("123456.5", "2019-01-02 00:00", "outside what HM Land Registry publishes"),
        ("0", "2019-01-02 00:00", "positive number"),
        ("120000", "1994-12-31 00:00", "outside the Price Paid Data range"),
        ("120000", "2019-13-02 00:00", "bad date"),
    ],
)
def test_prices_and_dates_outside_the_publishers_range(tmp_path, price, date, match):
    good = '"{T1}","100000","2019-01-02 00:00","AB1 2CD","S","N","F","1","","S","","T","D","C","A","A"'
    bad = good.replace('"100000"', f'"{price}"').replace('"2019-01-02 00:00"', f'"{date}"')
    bad = bad.replace("{T1}", "{T2}")
    f = tmp_path / "pp-2019.csv"
    f.write_text(good + "\n" + bad + "\n")
    with pytest.raises(InputError, match=match) as err:
        read_ppd(f)
    assert "line 2" in str(err.value)
    nspl = tmp_path / "nspl.csv"
    nspl.write_text("pcds,lsoa11,wd19\nAB1 2CD,L1,W1\n")
    pcs, _ = read_postcodes(nspl)
    design = pd.DataFrame({"ward": ["W1"], "ward_name": ["One"], "la": ["T"], "group": ["nbi"],
                           "pair": pd.array([pd.NA], dtype="Int64")})
    for engine in ("pyarrow", "pandas"):
        with pytest.raises(InputError, match=match) as err:
            stream_price_panel([f], pcs, design, engine=engine)
        assert "line 2" in str(err.value)
