"""`nbdid data` and the `nbdid ingest` dispatcher."""

from __future__ import annotations

import json
import sys
import types
from importlib import resources

import pandas as pd
import pytest

from nbdid.cli import ingest as ingest_cli
from nbdid.cli import main
from nbdid.data_prep.schema import IngestResult, read_panel

SHIPPED = resources.files("nbdid.data_prep") / "default" / "panel.csv"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_data_and_ingest(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "data" in out and "ingest" in out


def test_data_default_writes_shipped_panel_and_refuses_overwrite(tmp_path, capsys):
    out = tmp_path / "res" / "panel.csv"
    code, stdout, _ = run(capsys, "data", "default", "--out", str(out))
    assert code == 0
    assert "SYNTHETIC" in stdout
    assert out.read_bytes() == SHIPPED.read_bytes()
    out.write_text("my own results\n", encoding="utf-8")
    code, _, err = run(capsys, "data", "default", "--out", str(out))
    assert code == 2
    assert "--force" in err and len(err.strip().splitlines()) == 1
    assert out.read_text(encoding="utf-8") == "my own results\n"
    code, _, _ = run(capsys, "data", "default", "--out", str(out), "--force")
    assert code == 0
    assert out.read_bytes() == SHIPPED.read_bytes()


def test_data_default_regenerates_with_options(tmp_path, capsys):
    out = tmp_path / "p.csv"
    code, stdout, _ = run(capsys, "data", "default", "--out", str(out), "--seed", "11",
                          "--ward-sd-rate", "0.1", "--pair-corr", "0.9")
    assert code == 0 and "regenerated" in stdout
    assert out.read_bytes() != SHIPPED.read_bytes()
    panel = read_panel(out)
    assert panel["synthetic"].all() and len(panel) == 812


def test_data_default_bad_options(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["data", "default", "--out", str(tmp_path / "p.csv"), "--seed", "x"])
    assert info.value.code == 2
    code, _, err = run(capsys, "data", "default", "--out", str(tmp_path / "p.csv"), "--pair-corr", "3")
    assert code == 2 and "pair_corr" in err
    code, _, err = run(capsys, "data", "default", "--out", str(tmp_path))
    assert code == 2 and "folder" in err
    assert list(tmp_path.iterdir()) == []


def test_data_validate(tmp_path, capsys):
    code, out, _ = run(capsys, "data", "validate", str(SHIPPED))
    assert code == 0
    assert "valid ward panel" in out and "SYNTHETIC" in out
    assert "property_price" in out
    bad = tmp_path / "bad.csv"
    text = SHIPPED.read_text(encoding="utf-8").splitlines()
    text[5] = text[5].replace(",nbi,", ",treated,").replace(",benchmark,", ",treated,")
    bad.write_text("\n".join(text) + "\n", encoding="utf-8")
    code, _, err = run(capsys, "data", "validate", str(bad))
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "line 6" in err and "column 'group'" in err and str(bad) in err


def test_data_validate_family_option(tmp_path, capsys):
    df = pd.read_csv(SHIPPED, dtype=str, keep_default_na=False)
    df.loc[df["indicator"] == "crime", "indicator"] = "fly_tipping"
    p = tmp_path / "user.csv"
    df.to_csv(p, index=False)
    code, _, err = run(capsys, "data", "validate", str(p))
    assert code == 2 and "fly_tipping" in err
    code, out, _ = run(capsys, "data", "validate", str(p), "--family", "fly_tipping=poisson")
    assert code == 0 and "fly_tipping" in out
    code, _, err = run(capsys, "data", "validate", str(p), "--family", "fly_tipping")
    assert code == 2 and "KEY=" in err
    # every registered family is accepted (the option's list is the registry's)
    g = df[df["indicator"] == "fly_tipping"].copy()
    g["indicator"] = "wellbeing"
    g["value"] = (pd.to_numeric(g["count"]) / pd.to_numeric(g["exposure"]) * 10).round(3)
    g[["count", "exposure"]] = ""
    gp = tmp_path / "gaussian.csv"
    g.to_csv(gp, index=False)
    code, out, err = run(capsys, "data", "validate", str(gp), "--family", "wellbeing=gaussian")
    assert code == 0 and "wellbeing" in out, err


def test_data_schema(capsys):
    code, out, _ = run(capsys, "data", "schema")
    assert code == 0 and "mean_log_price" in out


# --------------------------------------------------------------------------------------
# ingest dispatcher, with fake source modules
# --------------------------------------------------------------------------------------


def _panel_rows(bad: bool = False) -> pd.DataFrame:
    rows = []
    for period in (0, 1):
        for ward, grp in (("E05000001", "nbi"), ("E05000002", "benchmark")):
            rows.append({"indicator": "crime", "ward": ward, "group": grp, "pair": 1,
                         "period": period, "period_label": str(2011 + 10 * period),
                         "count": -1 if bad and period else 50, "exposure": None})
    return pd.DataFrame(rows)


@pytest.fixture
def fake_source(monkeypatch):
    calls = []
    mod = types.ModuleType("nbdid_fake_source")
    mod.__doc__ = "A fake source for tests."

    def add_arguments(parser):
        parser.add_argument("--bad", action="store_true")
        parser.add_argument("--kind", default="panel")

    def run_ingest(args):
        calls.append(args)
        if args.kind == "panel":
            return IngestResult(table=_panel_rows(args.bad), kind="panel",
                                report={"files": ["a.csv"], "rows_read": 4,
                                        "dropped": {"no LSOA": 2}},
                                require_exposure=False)
        return IngestResult(table=pd.DataFrame({"ward": ["E05000001"], "population": [100]}),
                            kind="denominators", report={"rows_read": 1})

    monkeypatch.setitem(sys.modules, "nbdid_fake_source", mod)
    monkeypatch.setitem(ingest_cli.INGEST_SOURCES, "fake", ingest_cli.IngestSource(
        "nbdid_fake_source", add_arguments, run_ingest))
    monkeypatch.setitem(ingest_cli.INGEST_SOURCES, "missing", ingest_cli.IngestSource(
        "nbdid.data_prep._no_such_source", add_arguments, run_ingest))
    return calls


def test_ingest_writes_table_and_provenance(tmp_path, capsys, fake_source):
    out = tmp_path / "o" / "police.csv"
    code, stdout, err = run(capsys, "ingest", "fake", "--out", str(out))
    assert code == 0, err
    panel = read_panel(out, require_exposure=False)
    assert len(panel) == 4
    prov = json.loads((tmp_path / "o" / "police.provenance.json").read_text(encoding="utf-8"))
    assert prov["source"] == "fake" and prov["rows_written"] == 4
    assert prov["dropped"] == {"no LSOA": 2}
    txt = (tmp_path / "o" / "police.provenance.txt").read_text(encoding="utf-8")
    assert "no LSOA: 2" in txt
    # a second run refuses to overwrite, before running the source
    n_calls = len(fake_source)
    code, _, err = run(capsys, "ingest", "fake", "--out", str(out))
    assert code == 2 and "--force" in err
    assert len(fake_source) == n_calls
    code, _, _ = run(capsys, "ingest", "fake", "--out", str(out), "--force", "--kind", "denominators")
    assert code == 0
    assert list(pd.read_csv(out).columns) == ["ward", "population"]


def test_ingest_invalid_panel_writes_nothing(tmp_path, capsys, fake_source):
    out = tmp_path / "o" / "x.csv"
    code, _, err = run(capsys, "ingest", "fake", "--out", str(out), "--bad")
    assert code == 2
    assert "count" in err and "non-negative" in err and len(err.strip().splitlines()) == 1
    assert list((tmp_path / "o").iterdir()) == []


def test_ingest_missing_source_module_is_one_line(tmp_path, capsys, fake_source):
    code, _, err = run(capsys, "ingest", "missing", "--out", str(tmp_path / "x.csv"))
    assert code == 2
    assert "not available" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_ingest_source_usage_errors(tmp_path, capsys, fake_source):
    with pytest.raises(SystemExit) as info:
        main(["ingest", "fake"])  # --out missing
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--out" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as info:
        main(["ingest", "fake", "--help"])
    assert info.value.code == 0
    assert "--kind" in capsys.readouterr().out


def test_ingest_sources_registry():
    assert set(ingest_cli.INGEST_SOURCES) == {"police", "land-registry", "dwp", "nomis",
                                            "population", "imd"}


def test_output_cut_short_by_the_reader_is_not_an_error():
    """`nbdid replicate | head -1`: a closed pipe ends the command quietly with status 0."""
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", "import sys; from nbdid.cli import main; sys.exit(main())",
                             "replicate"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # the reader goes away, like `head -1`
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
