"""``nbdid replicate`` as a user runs it, including bad invocations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nbdid.cli import main
from nbdid.data_prep.published import TABLE1_COLUMNS
from nbdid.workflow.replicate import REPLICATE_FILES


def test_replicate_writes_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rep"
    assert main(["replicate", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "35 of 35 cells reproduced" in printed
    assert sorted(p.name for p in out.iterdir()) == sorted(REPLICATE_FILES)
    t1 = pd.read_csv(out / "table1.csv")
    assert list(t1.indicator) == [
        "out_of_work_benefits", "children_low_income", "crime", "burglary",
        "criminal_damage", "property_price", "business_units",
    ]
    for c in TABLE1_COLUMNS:
        assert t1[c].dtype == bool
        assert t1[f"{c}_agrees"].all()
    tp = pd.read_csv(out / "tipping_points.csv")
    assert {"indicator", "did", "tau_star", "interpretation"} <= set(tp.columns)


def test_replicate_one_indicator(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    assert main(["replicate", "--out", str(out), "--indicator", "crime"]) == 0
    assert list(pd.read_csv(out / "table1.csv").indicator) == ["crime"]


def test_unknown_indicator_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rep"
    assert main(["replicate", "--out", str(out), "--indicator", "crme"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'crime'" in err
    assert not out.exists()


def test_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rep"
    assert main(["replicate", "--out", str(out)]) == 0
    (out / "table1.csv").write_text("mine\n")
    capsys.readouterr()
    assert main(["replicate", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--force" in err and err.count("\n") == 1
    assert (out / "table1.csv").read_text() == "mine\n"
    assert main(["replicate", "--out", str(out), "--force"]) == 0
    assert (out / "table1.csv").read_text() != "mine\n"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_unwritable_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["replicate", "--out", str(blocker / "sub")]) == 2
    assert "cannot create output folder" in capsys.readouterr().err
    assert main(["replicate", "--out", str(blocker)]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_usage_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["replicate", "--wards-per-group", "many"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_console_script_has_no_traceback(tmp_path: Path) -> None:
    """The installed entry point, in a fresh process, as a user would call it."""
    exe = Path(sys.executable).with_name("nbdid")
    if not exe.exists():
        pytest.skip("nbdid console script not installed next to this Python")
    res = subprocess.run(
        [str(exe), "replicate", "--out", str(tmp_path), "--indicator", "nope"],
        capture_output=True, text=True, check=False,
    )
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and res.stderr.count("\n") == 1
