"""The ward panel schema: every error is one InputError naming file, line and column."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from nbdid.data_prep.schema import (
    COLUMN_NAMES,
    IngestResult,
    panel_summary,
    read_panel,
    validate_panel,
    write_panel,
)
from nbdid.errors import InputError


def small_panel() -> pd.DataFrame:
    """2 pairs x 2 periods x (binomial, poisson, price) = 24 rows, written by hand."""
    rows = []
    wards = [("W1", "nbi", 1), ("W2", "benchmark", 1), ("W3", "nbi", 2), ("W4", "benchmark", 2)]
    for ind, labels in (("out_of_work_benefits", ("2011", "2021")), ("crime", ("2011", "2021")),
                        ("property_price", ("2007-2013", "2018-2024"))):
        for period, label in enumerate(labels):
            for k, (ward, grp, pair) in enumerate(wards):
                row = {"indicator": ind, "ward": ward, "ward_name": f"Ward {ward}", "la": "Town",
                       "group": grp, "pair": pair, "period": period, "period_label": label,
                       "post": period, "count": None, "exposure": None, "n": None,
                       "mean_price": None, "mean_log_price": None, "sd_log_price": None,
                       "synthetic": False}
                if ind == "property_price":
                    row.update(n=10 + k, mean_price=100000.0 + 1000 * k,
                               mean_log_price=11.4 + 0.01 * k, sd_log_price=0.4)
                else:
                    row.update(count=100 + 10 * k + period, exposure=1000.0 + k)
                rows.append(row)
    return pd.DataFrame(rows)


def write(df: pd.DataFrame, path) -> None:
    df.to_csv(path, index=False)


def line_of(df: pd.DataFrame, **match) -> int:
    """File line of the first row matching (header = line 1)."""
    mask = np.ones(len(df), dtype=bool)
    for k, v in match.items():
        mask &= (df[k] == v).to_numpy()
    return int(np.flatnonzero(mask)[0]) + 2


def expect(tmp_path, df, *, line, column, text, **kwargs):
    path = tmp_path / "panel.csv"
    write(df, path)
    with pytest.raises(InputError) as info:
        read_panel(path, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(path) in msg
    if line is not None:
        assert f"line {line}" in msg, msg
        assert info.value.row == line
    if column is not None:
        assert f"column '{column}'" in msg, msg
    assert text in msg, msg
    return msg


def test_valid_panel_round_trip(tmp_path):
    df = small_panel()
    path = tmp_path / "p.csv"
    write(df, path)
    panel = read_panel(path)
    assert list(panel.columns) == list(COLUMN_NAMES)
    assert len(panel) == len(df)
    assert str(panel["count"].dtype) == "Int64" and str(panel["pair"].dtype) == "Int64"
    assert panel["exposure"].dtype == np.float64
    # sorted by indicator, period, group, pair, ward
    keys = list(zip(panel["indicator"], panel["period"], panel["group"], panel["pair"], strict=True))
    assert keys == sorted(keys)
    out = tmp_path / "again.csv"
    write_panel(panel, out)
    pd.testing.assert_frame_equal(read_panel(out), panel)


def test_summary_pools_like_the_report(tmp_path):
    df = small_panel()
    s = panel_summary(validate_panel(df)).set_index(["indicator", "period", "group"])
    sub = df[(df["indicator"] == "crime") & (df["period"] == 1) & (df["group"] == "nbi")]
    expected = 1000 * sub["count"].sum() / sub["exposure"].sum()
    assert math.isclose(s.loc[("crime", 1, "nbi"), "value"], expected)
    sub = df[(df["indicator"] == "property_price") & (df["period"] == 0) & (df["group"] == "benchmark")]
    expected = (sub["n"] * sub["mean_price"]).sum() / sub["n"].sum()
    assert math.isclose(s.loc[("property_price", 0, "benchmark"), "value"], expected)


def test_missing_and_misspelled_columns(tmp_path):
    df = small_panel().rename(columns={"exposure": "exposre"})
    msg = expect(tmp_path, df, line=1, column="exposure", text="missing")
    assert "exposre" in msg
    df = small_panel().drop(columns="ward")
    expect(tmp_path, df, line=1, column="ward", text="missing")
    df = small_panel().assign(extra=1)
    expect(tmp_path, df, line=1, column="extra", text="unknown column")


def test_optional_columns_may_be_absent(tmp_path):
    df = small_panel().drop(columns=["ward_name", "la", "pair", "post", "synthetic", "period_label"])
    path = tmp_path / "p.csv"
    write(df, path)
    panel = read_panel(path)
    assert panel["pair"].isna().all()
    assert (panel["post"] == panel["period"]).all()
    assert not panel["synthetic"].any()


@pytest.mark.parametrize(
    ("value", "text"),
    [("12.5", "whole number"), ("-3", "non-negative"), ("abc", "must be a number"), ("", "empty")],
)
def test_bad_counts(tmp_path, value, text):
    df = small_panel().astype({"count": object})
    pos = 5
    df.loc[pos, "count"] = value
    expect(tmp_path, df, line=pos + 2, column="count", text=text)


def test_count_above_binomial_trials(tmp_path):
    df = small_panel()
    pos = line_of(df, indicator="out_of_work_benefits", ward="W3", period=1) - 2
    df.loc[pos, "count"] = df.loc[pos, "exposure"] + 1
    expect(tmp_path, df, line=pos + 2, column="count", text="larger than its exposure")
    # a Poisson count may exceed its exposure
    df = small_panel()
    pos = line_of(df, indicator="crime", ward="W3", period=1) - 2
    df.loc[pos, "count"] = df.loc[pos, "exposure"] * 3
    write(df, tmp_path / "ok.csv")
    read_panel(tmp_path / "ok.csv")


@pytest.mark.parametrize(("value", "text"), [("0", "positive"), ("", "exposure is empty"),
                                             ("-5", "positive")])
def test_bad_exposure(tmp_path, value, text):
    df = small_panel().astype({"exposure": object})
    pos = line_of(df, indicator="crime", ward="W2", period=0) - 2
    df.loc[pos, "exposure"] = value
    expect(tmp_path, df, line=pos + 2, column="exposure", text=text)


def test_missing_exposure_allowed_when_not_required(tmp_path):
    df = small_panel()
    df.loc[df["indicator"] == "crime", "exposure"] = np.nan
    write(df, tmp_path / "p.csv")
    panel = read_panel(tmp_path / "p.csv", require_exposure=False)
    assert panel.loc[panel["indicator"] == "crime", "exposure"].isna().all()


def test_binomial_trials_must_be_whole(tmp_path):
    df = small_panel()
    pos = line_of(df, indicator="out_of_work_benefits", ward="W1", period=0) - 2
    df.loc[pos, "exposure"] = 1000.5
    expect(tmp_path, df, line=pos + 2, column="exposure", text="whole number")


def test_unknown_indicator_needs_family(tmp_path):
    df = small_panel()
    df.loc[df["indicator"] == "crime", "indicator"] = "fly_tipping"
    pos = line_of(df, indicator="fly_tipping") - 2
    expect(tmp_path, df, line=pos + 2, column="indicator", text="unknown indicator 'fly_tipping'")
    panel = read_panel(tmp_path / "panel.csv", families={"fly_tipping": "poisson"})
    assert "fly_tipping" in set(panel["indicator"])
    # misspelled registry key gets a suggestion
    df = small_panel()
    df.loc[0, "indicator"] = "out_of_work_benefit"
    expect(tmp_path, df, line=2, column="indicator", text="did you mean 'out_of_work_benefits'")


def test_duplicate_rows(tmp_path):
    df = small_panel()
    df = pd.concat([df, df.iloc[[7]]], ignore_index=True)
    msg = expect(tmp_path, df, line=len(df) + 1, column="ward", text="duplicate row")
    assert "first given on line 9" in msg


def test_ward_in_both_groups(tmp_path):
    df = small_panel()
    pos = line_of(df, indicator="crime", ward="W1", period=1) - 2
    df.loc[pos, "group"] = "benchmark"
    expect(tmp_path, df, line=pos + 2, column="group", text="ward 'W1' has group benchmark")


def test_ward_with_two_pairs(tmp_path):
    df = small_panel()
    pos = line_of(df, indicator="crime", ward="W3", period=0) - 2
    df.loc[pos, "pair"] = 1
    expect(tmp_path, df, line=pos + 2, column="pair", text="a ward must have one pair number")


def test_pair_with_two_nbi_wards(tmp_path):
    df = small_panel()
    df.loc[df["ward"] == "W2", "group"] = "nbi"
    expect(tmp_path, df, line=2, column="pair", text="pair 1 must have exactly one nbi and at least one benchmark")


def test_bad_group_and_post(tmp_path):
    df = small_panel()
    df.loc[3, "group"] = "control"
    expect(tmp_path, df, line=5, column="group", text="'nbi' or 'benchmark'")
    df = small_panel()
    df.loc[6, "post"] = 2
    expect(tmp_path, df, line=8, column="post", text="post must be 0 or 1")


def test_inconsistent_period_labels(tmp_path):
    df = small_panel()
    pos = line_of(df, indicator="crime", ward="W4", period=1) - 2
    df.loc[pos, "period_label"] = "2020"
    expect(tmp_path, df, line=pos + 2, column="period_label", text="one to one")


@pytest.mark.parametrize(
    ("column", "value", "text"),
    [("n", 0, "at least 1"), ("mean_price", -10.0, "positive amount"),
     ("mean_price", 0.0, "positive amount"), ("sd_log_price", -0.1, "non-negative")],
)
def test_bad_price_rows(tmp_path, column, value, text):
    df = small_panel()
    pos = line_of(df, indicator="property_price", ward="W2", period=1) - 2
    df.loc[pos, column] = value
    expect(tmp_path, df, line=pos + 2, column=column, text=text)


def test_empty_and_header_only_files(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_panel(p)
    p.write_text(",".join(COLUMN_NAMES) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="no rows"):
        read_panel(p)


def test_encodings(tmp_path):
    df = small_panel()
    df.loc[0, "ward_name"] = "Bêche"
    text = df.to_csv(index=False)
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert read_panel(p)["ward_name"].str.contains("Bêche").any()
    # Latin-1/Windows-1252 (Excel's "CSV (Comma delimited)") is detected and read;
    # a file mixing UTF-8 with a stray byte is refused on the stray byte's line
    p = tmp_path / "latin1.csv"
    p.write_bytes(text.encode("latin-1"))
    got = read_panel(p)
    assert "Bêche" in set(got["ward_name"]) and got.attrs["encoding"] in ("cp1252", "latin_1")
    p.write_bytes(text.encode("utf-8") + b"\n" + "Bêche".encode("latin-1") + b"\n")
    with pytest.raises(InputError, match="not UTF-8") as info:
        read_panel(p)
    assert info.value.row == len(text.splitlines()) + 2


def test_not_csv(tmp_path):
    p = tmp_path / "bin.csv"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputError, match="binary"):
        read_panel(p)
    p = tmp_path / "tabs.csv"
    p.write_text(small_panel().to_csv(index=False, sep="\t"), encoding="utf-8")
    with pytest.raises(InputError, match="tab-separated"):
        read_panel(p)
    with pytest.raises(InputError, match="not found"):
        read_panel(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="save the sheet as CSV"):
        (tmp_path / "x.xlsx").write_bytes(b"PK\x03\x04")
        read_panel(tmp_path / "x.xlsx")


def test_ragged_csv_reports_line(tmp_path):
    p = tmp_path / "ragged.csv"
    lines = small_panel().to_csv(index=False).splitlines()
    lines[4] = lines[4] + ",1,2,3"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 5"):
        read_panel(p)


def test_blank_lines_keep_line_numbers(tmp_path):
    df = small_panel()
    df.loc[10, "count"] = -1
    lines = df.to_csv(index=False).splitlines()
    lines.insert(3, "")  # a blank line before row 3 shifts later rows by one
    p = tmp_path / "blank.csv"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_panel(p)
    assert info.value.row == 13


def test_ingest_result_contract():
    r = IngestResult(table=pd.DataFrame({"a": [1]}), kind="panel", report={"rows": 1})
    assert r.require_exposure is True
    with pytest.raises(ValueError):
        IngestResult(table=pd.DataFrame(), kind="other")  # type: ignore[arg-type]
    with pytest.raises(Exception):  # noqa: B017 - frozen dataclass
        r.kind = "covariates"  # type: ignore[misc]


def test_parquet_round_trip_if_available(tmp_path):
    pytest.importorskip("pyarrow")
    panel = validate_panel(small_panel())
    out = tmp_path / "p.parquet"
    write_panel(panel, out)
    pd.testing.assert_frame_equal(read_panel(out), panel)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="Parquet"):
        read_panel(bad)
