"""The streaming loaders give the same counts as the in-memory path (shared extracts)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nbdid.data_prep.land_registry import (
    build_price_panel,
    read_postcodes,
    read_ppd,
    stream_price_panel,
)
from nbdid.data_prep.lookups import read_lookup
from nbdid.data_prep.police import (
    build_panel,
    count_street_crime,
    list_crime_files,
    panel_from_ward_counts,
    tally_street_crime,
)
from nbdid.data_prep.streaming import iter_csv_batches
from nbdid.data_prep.wards import resolve_geography
from nbdid.errors import InputError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LOOKUP19 = SHARED / "ons_lookups" / "LSOA11_to_WD19_LAD19_Lookup_EW.csv"
PPD = SHARED / "land_registry_ppd" / "pp-complete_head10297.csv"
ENGINES = ["pyarrow", "pandas"]


def _need(*paths: Path) -> None:
    for p in paths:
        if not p.exists():
            pytest.skip(f"shared extract {p.name} not available")


@pytest.fixture(scope="module")
def crime_files(tmp_path_factory):
    """Both shared police extracts in one folder (bare-CR Merseyside + Met files)."""
    _need(SHARED / "police_uk_merseyside", SHARED / "police_uk_met_burglary_only", LOOKUP19)
    d = tmp_path_factory.mktemp("police")
    for src in list((SHARED / "police_uk_met_burglary_only").glob("*.csv")):
        (d / src.name).symlink_to(src)
    m = SHARED / "police_uk_merseyside" / "police-uk-2014-04-merseyside-street.csv"
    (d / "2014-04-merseyside-street.csv").symlink_to(m)
    return list_crime_files(d)[0]


@pytest.fixture(scope="module")
def geo():
    _need(LOOKUP19)
    return resolve_geography(LOOKUP19, boundaries="lookup")


@pytest.mark.parametrize("engine", ENGINES)
def test_police_streaming_equals_in_memory(crime_files, geo, engine):
    lookup = read_lookup(LOOKUP19)
    counts, info = count_street_crime(crime_files)
    want, want_rep = build_panel(counts, info, geo.lookup, geo.design, year_type="calendar")
    wc, unmatched, info2 = tally_street_crime(crime_files, geo.area_map(), lookup["area"],
                                              engine=engine)
    got, got_rep = panel_from_ward_counts(wc, unmatched, info2, geo.design, year_type="calendar")
    pd.testing.assert_frame_equal(got, want)
    assert info2["rows_read"] == info["rows_read"] == 12925 + sum(
        f["rows"] for f in info["files_read"] if "metropolitan" in f["file"])
    assert info2["crime_types"] == info["crime_types"]
    assert info2["rows_without_lsoa"] == info["rows_without_lsoa"]
    assert info2["months_by_force"] == info["months_by_force"]
    for key in ("lsoas_outside_lookup", "period_coverage", "ward_coverage", "wards_without_data",
                "months_missing_by_force", "ward_forces"):
        assert got_rep[key] == want_rep[key], key
    assert got["count"].sum() > 1000


def _nspl(tmp_path: Path) -> tuple[Path, list[str]]:
    """60 postcodes of the real Price Paid rows in 4 LSOAs (one outside the design)."""
    pcs: list[str] = []
    with PPD.open(newline="", encoding="utf-8") as fh:
        for r in csv.reader(fh):
            if r[3] and r[3] not in pcs:
                pcs.append(r[3])
            if len(pcs) == 60:
                break
    lines = ["pcds,lsoa11,wd19"] + [f"{pc},L{i % 4},W{i % 4}" for i, pc in enumerate(pcs)]
    p = tmp_path / "nspl.csv"
    p.write_text("\n".join(lines) + "\n")
    return p, pcs


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("with_updates", [False, True])
def test_price_paid_streaming_equals_in_memory(tmp_path, engine, with_updates):
    _need(PPD)
    nspl, pcs = _nspl(tmp_path)
    postcodes, _ = read_postcodes(nspl)
    lookup = pd.DataFrame({"area": ["L0", "L1", "L2", "L3"], "area_name": list("abcd"),
                           "ward": ["W0", "W1", "W2", "W3"], "ward_name": list("ABCD"),
                           "la_code": ["E"] * 4, "la_name": ["T"] * 4, "level": "lsoa",
                           "vintage": "WD19"})
    design = pd.DataFrame({"ward": ["W0", "W1+W2"], "ward_name": ["A", "B+C"], "la": ["T", "T"],
                           "group": ["nbi", "benchmark"], "pair": pd.array([1, 1], dtype="Int64")})
    files = [PPD]
    if with_updates:
        # a monthly-update-like file: a change, a deletion, a category B row and a repeat
        with PPD.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        hit = [r for r in rows if r[3] in pcs[:8]][:4]
        upd = []
        c = list(hit[0])
        c[1], c[15] = str(int(c[1]) + 5000), "C"
        upd.append(c)
        d = list(hit[1])
        d[15] = "D"
        upd.append(d)
        b = list(hit[2])
        b[0], b[14] = "{NEW-B}", "B"
        upd.append(b)
        upd.append(list(hit[3]))  # the same transaction again (status A)
        f2 = tmp_path / "pp-monthly-update.csv"
        with f2.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(upd)
        files.append(f2)
    periods = [("1995-H1", "1995-01", "1995-06"), ("1995-H2", "1995-07", "1995-12")]
    sales = pd.concat([read_ppd(f) for f in files], ignore_index=True)
    want, want_rep = build_price_panel(sales, postcodes, design, periods=periods, lookup=lookup)
    got, got_rep = stream_price_panel(files, postcodes, design, periods=periods, lookup=lookup,
                                      engine=engine, batch_bytes=64 << 10)
    assert len(want) > 0
    pd.testing.assert_frame_equal(got.drop(columns=["mean_price", "mean_log_price", "sd_log_price"]),
                                  want.drop(columns=["mean_price", "mean_log_price", "sd_log_price"]))
    for col in ("mean_price", "mean_log_price", "sd_log_price"):
        np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float),
                                   rtol=1e-12, equal_nan=True)
    for key in ("records_read", "records_status_D", "transactions_deleted", "records_status_C",
                "superseded_versions_dropped", "dropped_category", "sales_outside_periods",
                "sales_without_postcode", "postcodes_not_found", "sales_with_postcode_not_found",
                "postcodes_not_found_examples", "sales_in_design_wards", "wards_with_sales"):
        assert got_rep[key] == want_rep[key], key
    if with_updates:
        assert got_rep["transactions_deleted"] == 1 and got_rep["records_status_C"] == 1
        assert got_rep["superseded_versions_dropped"] == 2


@pytest.mark.parametrize("engine", ENGINES)
def test_batches_name_the_line_of_bad_bytes(tmp_path, engine):
    f = tmp_path / "x.csv"
    f.write_bytes(b"a,b\n1,2\n3,\xff\n")
    with pytest.raises(InputError, match=r"x\.csv, line 3"):
        list(iter_csv_batches(f, ["a", "b"], engine=engine))
    f.write_bytes(b"a,b\r1, x \r2,\r")
    parts = [b for _, b in iter_csv_batches(f, ["b"], engine=engine)]
    assert pd.concat(parts)["b"].tolist() == ["x", pd.NA]
    with pytest.raises(InputError, match="missing column"):
        list(iter_csv_batches(f, ["c"], engine=engine))


def test_fast_reader_failing_midway_is_not_counted_twice(tmp_path):
    # a bad byte after the first batches: pyarrow stops there, pandas names the line,
    # and nothing already handed out is handed out again
    f = tmp_path / "big.csv"
    rows = "".join(f"{i},x\n" for i in range(20_000))
    f.write_bytes(b"a,b\n" + rows.encode() + b"\xff,7\n")
    seen = []
    with pytest.raises(InputError, match=r"big\.csv, line 20002"):
        for _line, b in iter_csv_batches(f, ["a"], engine="pyarrow", batch_bytes=1 << 14):
            seen.extend(b["a"].tolist())
    assert seen == [str(i) for i in range(len(seen))]
