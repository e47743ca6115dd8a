"""Tests of the generic Stat-Xplore CSV reader on the real DWP exports and fixtures."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from nbdid.data_prep.statxplore import read_statxplore, split_period_label
from nbdid.errors import InputError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dwp_statxplore"
UC_LA = SHARED / "households_on_UC_ltla_15-22_original.csv"
CILIF_MSOA = SHARED / "children_relative_low_income_msoa_14-22_headerstripped.csv"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared extract {path.name} not available")
    return path


def _raw_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_full_export_metadata_and_values():
    data, meta = read_statxplore(_need(UC_LA))
    assert meta["title"] == "Households on Universal Credit (I II III IV z)"
    assert meta["measure"] == "Households on Universal Credit"
    assert meta["filters"] == {"Default Summation": "Households on Universal Credit"}
    assert meta["column_field"] == "Month"
    assert meta["header_line"] == 10
    rows = _raw_rows(UC_LA)
    header = rows[9]
    # independent parse: data rows are those with a full width, excluding Total/Unknown
    body = [r for r in rows[11:] if len(r) == len(header) and r[0] not in ("Total", "Unknown")]
    periods = [h for h in header[1:] if h and not h.endswith("Annotations")]
    assert meta["n_areas"] == len(body)
    assert len(data) == len(body) * len(periods)
    n_dots = sum(c == ".." for r in body for c in r)
    assert meta["n_missing"] == n_dots > 0
    # spot-check: Hartlepool, September 2015 and the last month
    hart = next(r for r in rows if r and r[0] == "Hartlepool")
    j = header.index("September 2015")
    got = data.query("area_name == 'Hartlepool' and period == 'September 2015'")["value"]
    assert got.item() == float(hart[j])
    assert data["period"].iloc[-1] == "November 2023"  # "(p)" flag stripped
    assert meta["provisional_periods"] == ["November 2023"]
    total = next(r for r in rows if r and r[0] == "Total")
    assert meta["totals"]["August 2015"] == float(total[1])
    assert "Total" not in set(data["area_name"])
    assert any("Statistical disclosure control" in f for f in meta["footer"])
    # Middlesbrough Aug 2015 is ".." -> missing
    assert np.isnan(data.query("area_name == 'Middlesbrough' and period == 'August 2015'")
                    ["value"].item())


def test_headerstripped_export():
    data, meta = read_statxplore(_need(CILIF_MSOA))
    assert meta["header_line"] == 1
    assert meta["periods"][0] == "2014/15" and meta["periods"][-1] == "2021/22"
    rows = _raw_rows(CILIF_MSOA)
    r = next(r for r in rows if r and r[0] == "Hartlepool 001")
    got = data.query("area_name == 'Hartlepool 001'").set_index("period")["value"]
    assert got["2014/15"] == float(r[1]) and got["2020/21"] == float(r[13])


def test_split_period_label():
    assert split_period_label("2021/22 (p)") == ("2021/22", "p")
    assert split_period_label("May 2020 (r)") == ("May 2020", "r")


def _fixture(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "x.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


SMALL = (
    'Stat-Xplore\n\n"People on Benefits"\n"Area by Year"\n"Counting: People"\n\n'
    'Filters:\n"Gender","Total"\n\n'
    '"Year","2019","2019 - Annotations","2020 (p)","2020 - Annotations",\n'
    '"Area",\n'
    '"Ynys Môn 001",12,,..,p,\n'
    '"Bro Morgannwg 002",-,,7,,\n'
    '"Total",20,,9,,\n\n'
    '"INFO","Totals may not sum"\n'
)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_encodings(tmp_path, encoding):
    data, meta = read_statxplore(_fixture(tmp_path, SMALL, encoding))
    assert list(data["area_name"].unique()) == ["Ynys Môn 001", "Bro Morgannwg 002"]
    assert meta["n_missing"] == 2 and meta["missing_markers"] == {"..": 1, "-": 1}
    assert meta["annotation_markers"] == {"p": 1}
    assert meta["filters"] == {"Gender": "Total"}
    assert data["value"].sum() == 19


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty"),
        (b"  \n\n", "empty"),
        ("Year,2019\n".encode("utf-16"), "UTF-16"),
        (b"PK\x03\x04rest", "Excel"),
        (b'"Title only"\n', "no column header"),
        (b'"Year","2019"\n"Area",\n"A",abc\n', "not a number"),
        (b'"Year","2019"\n"Area",\n', "no data rows"),
    ],
)
def test_bad_input(tmp_path, content, match):
    p = tmp_path / "bad.csv"
    p.write_bytes(content)
    with pytest.raises(InputError, match=match) as err:
        read_statxplore(p)
    assert "bad.csv" in str(err.value) and "\n" not in str(err.value)


def test_bad_cell_names_line_and_column(tmp_path):
    p = _fixture(tmp_path, SMALL.replace("12,,", "1x2,,"))
    with pytest.raises(InputError) as err:
        read_statxplore(p)
    assert "line 12" in str(err.value) and "column '2019'" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_statxplore(tmp_path / "nope.csv")
