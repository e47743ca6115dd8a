"""Tests of nbdid.data_prep.land_registry on the shared Price Paid extract."""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

import pandas as pd
import pytest

from nbdid.data_prep.land_registry import (
    build_price_panel,
    ingest_land_registry,
    parse_periods,
    read_postcodes,
    read_ppd,
)
from nbdid.errors import InputError

PPD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "land_registry_ppd" / "pp-complete_head10297.csv"


@pytest.fixture(scope="module")
def ppd_rows():
    if not PPD.exists():
        pytest.skip("shared Price Paid extract not available")
    with PPD.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


@pytest.fixture(scope="module")
def sales():
    if not PPD.exists():
        pytest.skip("shared Price Paid extract not available")
    return read_ppd(PPD)


def _nspl(tmp_path, ppd_rows):
    """NSPL-like fixture: 40 postcodes of the real file in 3 wards, one unknown LSOA."""
    pcs = []
    for r in ppd_rows:
        if r[3] and r[3] not in pcs:
            pcs.append(r[3])
        if len(pcs) == 40:
            break
    wards = ["E05000001", "E05000002", "E05000003", "E05000099"]
    lines = ["pcd,pcds,dointr,lsoa11,wd19,oa11"]
    assign = {}
    for i, pc in enumerate(pcs):
        w = wards[i % 4]
        assign[pc] = w
        pcd = pc.replace(" ", "").ljust(7)
        lines.append(f"{pcd},{pc},199901,L{i % 4},{w},x")
    p = tmp_path / "nspl.csv"
    p.write_text("\n".join(lines) + "\n")
    return p, assign


def test_read_real_ppd(sales, ppd_rows):
    assert len(sales) == len(ppd_rows) == 10298  # last line has no newline
    assert sales["price"].sum() == sum(int(r[1]) for r in ppd_rows)
    assert set(sales["ppd_category"]) == {r[14] for r in ppd_rows}


def test_ward_prices_match_independent_computation(tmp_path, sales, ppd_rows):
    nspl, assign = _nspl(tmp_path, ppd_rows)
    postcodes, rep = read_postcodes(nspl)
    assert rep["ward_column"] == "wd19" and rep["postcode_column"] == "pcds"
    design = pd.DataFrame({"ward": ["E05000001", "E05000002", "E05000003"],
                           "ward_name": ["A", "B", "C"], "la": ["X"] * 3,
                           "group": ["nbi", "benchmark", "nbi"], "pair": pd.array([1, 1, 2], dtype="Int64")})
    periods = parse_periods("1995-01:1995-06,1995-07:1995-12")
    panel, rep = build_price_panel(sales, postcodes, design, periods=periods)
    want: dict = {}
    for r in ppd_rows:
        w = assign.get(r[3])
        if w is None or w == "E05000099" or r[14] != "A":
            continue
        lab = "1995-01 to 1995-06" if r[2][:7] <= "1995-06" else "1995-07 to 1995-12"
        want.setdefault((w, lab), []).append(int(r[1]))
    got = panel.set_index(["ward", "period_label"])
    assert len(got) == len(want)
    for key, prices in want.items():
        row = got.loc[key]
        logs = [math.log(x) for x in prices]
        assert row["n"] == len(prices)
        assert row["mean_price"] == pytest.approx(statistics.fmean(prices))
        assert row["mean_log_price"] == pytest.approx(statistics.fmean(logs))
        if len(prices) > 1:
            assert row["sd_log_price"] == pytest.approx(statistics.stdev(logs))
        else:
            assert math.isnan(row["sd_log_price"])
    n_unknown = sum(1 for r in ppd_rows if r[3] and r[3] not in assign)
    assert rep["sales_with_postcode_not_found"] == n_unknown
    assert rep["dropped_category"] == {}  # the 1995 head has category A only
    assert panel.groupby("period_label")["post"].first().to_dict() == {
        "1995-01 to 1995-06": 0, "1995-07 to 1995-12": 1}


def test_via_lsoa_lookup_and_status(tmp_path, ppd_rows):
    nspl, assign = _nspl(tmp_path, ppd_rows)
    postcodes, _ = read_postcodes(nspl)
    lookup = pd.DataFrame({"area": ["L0", "L1"], "area_name": ["a", "b"], "ward": ["W0", "W1"],
                           "ward_name": ["Zero", "One"], "la_code": ["E"] * 2, "la_name": ["T"] * 2,
                           "level": "lsoa", "vintage": "WD19"})
    design = pd.DataFrame({"ward": ["W0+W1"], "ward_name": ["Both"], "la": ["T"], "group": ["nbi"],
                           "pair": pd.array([pd.NA], dtype="Int64")})
    pcs = list(assign)[:2]  # first two postcodes: L0 and L1
    ppd = tmp_path / "pp.csv"
    ppd.write_text(
        f'"{{T1}}","100000","2019-01-02 00:00","{pcs[0]}","S","N","F","1","","S","","T","D","C","A","A"\n'
        f'"{{T2}}","200000","2019-03-02 00:00","{pcs[1]}","S","N","F","2","","S","","T","D","C","B","A"\n'
        f'"{{T3}}","300000","2019-05-02 00:00","{pcs[1]}","S","N","F","3","","S","","T","D","C","A","A"\n'
        f'"{{T3}}","300000","2019-05-02 00:00","{pcs[1]}","S","N","F","3","","S","","T","D","C","A","D"\n'
        f'"{{T1}}","120000","2019-01-02 00:00","{pcs[0]}","S","N","F","1","","S","","T","D","C","A","C"'
    )
    panel, rep = build_price_panel(read_ppd(ppd), postcodes, design, lookup=lookup)
    assert rep["transactions_deleted"] == 1 and rep["records_status_C"] == 1
    assert rep["dropped_category"] == {"B": 1}
    assert panel["n"].tolist() == [1] and panel["mean_price"].tolist() == [120000.0]
    panel_b, _ = build_price_panel(read_ppd(ppd), postcodes, design, lookup=lookup, include_category_b=True)
    assert panel_b["n"].tolist() == [2]


def test_cli_path_and_errors(tmp_path, ppd_rows):
    nspl, _ = _nspl(tmp_path, ppd_rows)
    design = tmp_path / "design.csv"
    design.write_text("ward,group,pair\nE05000001,nbi,1\nE05000002,benchmark,1\n")
    res = ingest_land_registry([PPD], nspl, design=design)
    assert res.kind == "panel" and set(res.table["ward"]) == {"E05000001", "E05000002"}
    assert set(res.table["indicator"]) == {"property_price"}
    bad = tmp_path / "bad.csv"
    bad.write_text('"a","1","1995-01-01 00:00"\n')
    with pytest.raises(InputError, match="expected 16 columns"):
        read_ppd(bad)
    bad.write_text(",".join(['"x"'] * 1 + ['"cheap"'] + ['"1995-01-01 00:00"'] + ['"y"'] * 13) + "\n")
    with pytest.raises(InputError, match=r"line 1, column 'price"):
        read_ppd(bad)
    with pytest.raises(InputError, match="overlap"):
        parse_periods("2007-12:2013-11,2013-01:2014-01")
    assert [p[0] for p in parse_periods("2018-12:2024-11,2007-12:2013-11")] == ["2007-2013", "2018-2024"]
    nopc = tmp_path / "nopc.csv"
    nopc.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="no postcode column"):
        read_postcodes(nopc)
