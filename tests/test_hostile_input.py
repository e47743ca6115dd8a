"""Hostile input: absurd values, degenerate indicators, encodings, spreadsheets named
``.csv``, inconsistent ``post`` values, and what a failed validation leaves behind.

Everything is refused (or read) when the panel is read, before anything is fitted,
with one line naming the file, line and column.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbdid.cli import main
from nbdid.config import BoundsConfig, from_dict
from nbdid.data_prep.schema import read_panel, validate_panel
from nbdid.errors import InputError
from nbdid.models.simulate import simulate_panel

PROFILE = settings(
    max_examples=int(os.environ.get("NBDID_HYP_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _panel(family: str, key: str) -> pd.DataFrame:
    panel, _ = simulate_panel(family, n_pairs=4, did=-0.2, seed=5)
    return panel.assign(indicator=key)


def _refused(tmp_path, df, **kw) -> InputError:
    path = tmp_path / "panel.csv"
    df.to_csv(path, index=False)
    with pytest.raises(InputError) as info:
        read_panel(path, **kw)
    assert "\n" not in str(info.value)
    return info.value


# ----------------------------------------------------------------------------------------
# plausibility bounds
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "key", "column", "value"), [
    ("binomial", "out_of_work_benefits", "exposure", 1e300),  # was: a segfault in the sampler
    ("poisson", "crime", "exposure", 1e300),                   # was: fitted and written
    ("poisson", "crime", "exposure", 1e-300),
    ("poisson", "crime", "count", 5e9),
    ("price", "property_price", "mean_price", 1e300),         # was: accepted
    ("price", "property_price", "n", 1e12),
    ("price", "property_price", "sd_log_price", 40.0),
])
def test_absurd_values_are_refused_with_file_line_and_column(tmp_path, family, key, column, value):
    df = _panel(family, key)
    row = 5
    df.loc[row, column] = value
    if column == "count" and family == "poisson":
        df.loc[row, "exposure"] = 1e7
    if column == "mean_price":
        df.loc[row, "mean_log_price"] = 11.0
    err = _refused(tmp_path, df)
    assert err.row == row + 2 and err.column == column and err.file.endswith("panel.csv"), err
    assert "plausible" in str(err) and "bounds" in str(err)


def test_rates_beyond_the_indicator_maximum_are_refused(tmp_path):
    df = _panel("poisson", "burglary")
    df.loc[3, "count"] = int(df.loc[3, "exposure"] * 8)  # 8 burglaries per household
    err = _refused(tmp_path, df)
    assert err.row == 5 and err.column == "count" and "max_rate" in str(err)


def test_bounds_can_be_widened(tmp_path):
    df = _panel("poisson", "crime")
    df.loc[5, "exposure"] = 5e7  # e.g. a user's own very large areas
    path = tmp_path / "big.csv"
    df.to_csv(path, index=False)
    with pytest.raises(InputError, match="plausible"):
        read_panel(path)
    wide = from_dict(BoundsConfig, {"columns": {"exposure": [1, 1e8]}})
    assert len(read_panel(path, bounds=wide)) == len(df)
    # a user key gets a rate bound only when one is given
    user = df.assign(indicator="fly_tipping")
    user.loc[2, "count"] = int(user.loc[2, "exposure"] * 3)
    validate_panel(user, families={"fly_tipping": "poisson"}, bounds=wide)
    with pytest.raises(InputError, match="max_rate"):
        validate_panel(user, families={"fly_tipping": "poisson"},
                       bounds=from_dict(BoundsConfig, {"columns": {"exposure": [1, 1e8]},
                                                       "max_rate": {"fly_tipping": 1}}))


@pytest.mark.parametrize(("family", "key", "change", "column"), [
    ("poisson", "crime", {"count": 0}, "count"),
    ("binomial", "children_low_income", {"count": 0}, "count"),
    ("price", "property_price", {"mean_log_price": 11.0, "mean_price": 90000.0}, "mean_log_price"),
])
def test_degenerate_indicator_is_refused_with_the_reason(tmp_path, family, key, change, column):
    df = _panel(family, key).assign(**change)
    err = _refused(tmp_path, df)
    assert err.column == column and key in str(err)
    assert "nothing" in str(err) or "no variation" in str(err) or "no event" in str(err)


def test_binomial_everyone_has_the_outcome(tmp_path):
    df = _panel("binomial", "children_low_income")
    df["count"] = df["exposure"].astype("int64")
    assert "equals its exposure" in str(_refused(tmp_path, df))


# ----------------------------------------------------------------------------------------
# encodings, spreadsheets, post
# ----------------------------------------------------------------------------------------

NAMES = ["Ynys Môn", "Pen-y-bryn", "Llanfair Caereinion", "Bryncethin", "Tŷ Du", "Sîr Benfro",
         "Wrexham – Acton", "St. Mary’s", "Café Royal", "Bêche"]


@PROFILE
@given(names=st.lists(st.sampled_from(NAMES), min_size=8, max_size=8),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be",
                                 "cp1252", "latin-1"]))
def test_encodings_are_detected_and_read(tmp_path_factory, names, encoding):
    """UTF-8 with or without BOM, UTF-16 with or without BOM, Windows-1252 and Latin-1
    panels (Welsh ward names saved from Excel) read to the same panel; the encoding is
    reported for provenance."""
    df = _panel("poisson", "crime")
    wards = sorted(df["ward"].unique())
    df["ward_name"] = df["ward"].map(dict(zip(wards, names, strict=True)))
    try:
        raw = df.to_csv(index=False).encode(encoding)
    except UnicodeEncodeError:
        names = [n.encode(encoding, "replace").decode(encoding) for n in names]
        df["ward_name"] = df["ward"].map(dict(zip(wards, names, strict=True)))
        raw = df.to_csv(index=False).encode(encoding)
    path = tmp_path_factory.mktemp("enc") / "panel.csv"
    path.write_bytes(raw)
    got = read_panel(path)
    want = validate_panel(df)
    pd.testing.assert_frame_equal(got, want)
    enc = got.attrs["encoding"].replace("_", "-").lower()
    if encoding.startswith("utf"):
        assert enc.startswith(encoding[:6]), (encoding, enc)
    else:
        assert enc in ("cp1252", "latin-1", "iso8859-15", "utf-8"), enc  # ASCII-only is UTF-8 too


def test_excel_workbook_named_csv(tmp_path):
    df = _panel("poisson", "crime")
    xlsx = tmp_path / "panel.xlsx"
    df.to_excel(xlsx, index=False)
    named = tmp_path / "panel.csv"
    shutil.copy(xlsx, named)
    with pytest.raises(InputError) as info:
        read_panel(named)
    msg = str(info.value)
    assert "Excel workbook" in msg and "named panel.csv" in msg and "CSV UTF-8" in msg
    old = tmp_path / "old.csv"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    assert "(.xls)" in str(pytest.raises(InputError, read_panel, old).value)


def test_inconsistent_post_reported_on_the_offending_row(tmp_path):
    df = _panel("poisson", "crime")
    df["post"] = (df["period"] > 0).astype(int)
    later = np.flatnonzero(df["period"].to_numpy() == 1)
    odd = int(later[3])  # not the first row of its period
    df.loc[odd, "post"] = 0
    err = _refused(tmp_path, df)
    assert err.row == odd + 2 and err.column == "post", err


def test_failed_validation_leaves_no_output_folder(tmp_path, capsys):
    df = _panel("poisson", "crime")
    df.loc[2, "exposure"] = 1e300
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "results"
    assert main(["fit", "--data", str(path), "--indicator", "crime", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("nbdid fit: error:") and "line 4" in err and "'exposure'" in err
    assert not out.exists()
