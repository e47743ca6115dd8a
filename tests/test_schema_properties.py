"""Property-based tests: malformed panels only ever give clean one-line InputErrors.

Hypothesis mutates a valid panel (cells, columns, rows, raw bytes, encodings) and
feeds it through :func:`read_panel`, ``nbdid data validate`` and the ``nbdid ingest``
dispatcher.  Nothing may raise anything but :class:`InputError` (exit status 2 with one
line on stderr), and a failed ingest must leave no file in its output folder.
"""

from __future__ import annotations

import sys
import types

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbdid.cli import ingest as ingest_cli
from nbdid.cli import main
from nbdid.data_prep.schema import COLUMN_NAMES, IngestResult, read_panel, validate_panel
from nbdid.errors import InputError

PROFILE = settings(
    max_examples=int(__import__("os").environ.get("NBDID_HYP_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def base_panel() -> pd.DataFrame:
    rows = []
    wards = [("A", "nbi", 1), ("B", "benchmark", 1), ("C", "nbi", 2), ("D", "benchmark", 2)]
    for ind, labels in (("children_low_income", ("2014", "2021")), ("burglary", ("2011", "2021")),
                        ("property_price", ("2007-2013", "2018-2024"))):
        for period, label in enumerate(labels):
            for k, (ward, grp, pair) in enumerate(wards):
                row = dict.fromkeys(COLUMN_NAMES, "")
                row.update(indicator=ind, ward=ward, ward_name=f"W {ward}", la="LA", group=grp,
                           pair=str(pair), period=str(period), period_label=label,
                           post=str(period), synthetic="false")
                if ind == "property_price":
                    row.update(n=str(3 + k), mean_price=str(90000.5 + k), mean_log_price="11.3",
                               sd_log_price="0.4")
                else:
                    row.update(count=str(20 + k), exposure=str(400 + k))
                rows.append(row)
    return pd.DataFrame(rows, dtype=object)


NASTY = st.sampled_from(
    ["", " ", "-1", "0", "1.5", "1e400", "-1e-300", "nan", "NaN", "inf", "-inf", "abc", "∞",
     "1,000", "None", "true", "TRUE", "2", "999999999999999999999999", "0x10", "1_000",
     "nbi", "benchmark", "E05000001", "2011", "🙂", "\t", "'", "NA", "3.0", "-0"]
)
TEXT = st.one_of(NASTY, st.text(max_size=8))


@st.composite
def mutated_frames(draw) -> pd.DataFrame:
    df = base_panel()
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["cell", "cell", "cell", "drop_col", "rename_col", "dup_row",
                                   "drop_rows", "swap_cols", "extra_col", "no_rows"]))
        if op == "cell" and len(df):
            i = draw(st.integers(0, len(df) - 1))
            col = draw(st.sampled_from(list(df.columns)))
            df.iloc[i, df.columns.get_loc(col)] = draw(TEXT)
        elif op == "drop_col" and len(df.columns) > 1:
            df = df.drop(columns=draw(st.sampled_from(list(df.columns))))
        elif op == "rename_col" and len(df.columns):
            col = draw(st.sampled_from(list(df.columns)))
            df = df.rename(columns={col: draw(st.sampled_from([col[:-1], col.upper(), col + "s", "x"]))})
        elif op == "dup_row" and len(df):
            df = pd.concat([df, df.iloc[[draw(st.integers(0, len(df) - 1))]]], ignore_index=True)
        elif op == "drop_rows" and len(df) > 1:
            n = draw(st.integers(1, len(df) - 1))
            df = df.drop(index=df.index[:n]).reset_index(drop=True)
        elif op == "swap_cols" and len(df.columns) > 1:
            a, b = draw(st.sampled_from(list(df.columns))), draw(st.sampled_from(list(df.columns)))
            df = df.rename(columns={a: b, b: a})
        elif op == "extra_col":
            df = df.assign(**{draw(st.sampled_from(["extra", "Count", "wardname"])): "1"})
        elif op == "no_rows":
            df = df.iloc[0:0]
    return df


@st.composite
def malformed_bytes(draw) -> bytes:
    good = base_panel().to_csv(index=False).encode("utf-8")
    kind = draw(st.sampled_from(["empty", "binary", "latin1", "utf16", "truncate", "splice",
                                 "random", "whitespace", "header_only", "bom"]))
    if kind == "empty":
        return b""
    if kind == "binary":
        return draw(st.binary(min_size=1, max_size=200)) + b"\x00\x01"
    if kind == "latin1":
        return base_panel().assign(ward_name="Bêche").to_csv(index=False).encode("latin-1")
    if kind == "utf16":
        return base_panel().to_csv(index=False).encode("utf-16")
    if kind == "truncate":
        return good[: draw(st.integers(0, len(good)))]
    if kind == "splice":
        at = draw(st.integers(0, len(good)))
        return good[:at] + draw(st.binary(min_size=1, max_size=20)) + good[at:]
    if kind == "whitespace":
        return b"  \n\n \t\n"
    if kind == "header_only":
        return good.splitlines()[0] + b"\n"
    if kind == "bom":
        return b"\xef\xbb\xbf" + good
    return draw(st.binary(max_size=300))


def _check_cli(path, capsys) -> None:
    code = main(["data", "validate", str(path)])
    _, err = capsys.readouterr()
    assert code in (0, 2)
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err


@PROFILE
@given(df=mutated_frames())
def test_mutated_panels_fail_cleanly(tmp_path_factory, capsys, df):
    path = tmp_path_factory.mktemp("p") / "panel.csv"
    df.to_csv(path, index=False)
    try:
        panel = read_panel(path)
    except InputError as err:
        assert "\n" not in str(err)
    else:
        assert list(panel.columns) == list(COLUMN_NAMES)
        assert (panel["count"].dropna() >= 0).all()
    # the DataFrame route, with object columns, must behave the same way
    try:
        validate_panel(df)
    except InputError:
        pass
    _check_cli(path, capsys)


@PROFILE
@given(raw=malformed_bytes())
def test_malformed_bytes_fail_cleanly(tmp_path_factory, capsys, raw):
    path = tmp_path_factory.mktemp("b") / "panel.csv"
    path.write_bytes(raw)
    try:
        read_panel(path)
    except InputError as err:
        assert "\n" not in str(err)
    _check_cli(path, capsys)


@pytest.fixture
def frame_source(monkeypatch):
    holder: dict[str, pd.DataFrame] = {}
    mod = types.ModuleType("nbdid_prop_source")
    monkeypatch.setitem(sys.modules, "nbdid_prop_source", mod)
    monkeypatch.setitem(ingest_cli.INGEST_SOURCES, "prop", ingest_cli.IngestSource(
        "nbdid_prop_source", lambda parser: None,
        lambda args: IngestResult(table=holder["df"], kind="panel", report={"n": 1})))
    return holder


@PROFILE
@given(df=mutated_frames())
def test_ingest_never_leaves_partial_output(tmp_path_factory, capsys, frame_source, df):
    frame_source["df"] = df
    out_dir = tmp_path_factory.mktemp("o")
    code = main(["ingest", "prop", "--out", str(out_dir / "t.csv")])
    _, err = capsys.readouterr()
    files = sorted(p.name for p in out_dir.iterdir())
    if code == 0:
        assert files == ["t.csv", "t.provenance.json", "t.provenance.txt"]
        read_panel(out_dir / "t.csv")
    else:
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert files == []
