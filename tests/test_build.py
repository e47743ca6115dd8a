"""``nbdid build`` end to end through ``--mirror`` (a local server playing the publishers).

One module-scoped build of the report's 58 wards (all seven indicators) is shared by the
tests; the served files are real extracts from ``../shared/data`` plus small generated
files in each publisher's layout (``tests/build_world.py``), so the build config says
``synthetic = true``.  Skips cleanly when ``../shared`` is absent.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from nbdid.cli import main
from nbdid.config import to_toml
from nbdid.data_prep.dwp import ingest_dwp
from nbdid.data_prep.nomis import ingest_nomis
from nbdid.data_prep.police import ingest_police
from nbdid.data_prep.published import study_wards
from nbdid.data_prep.schema import read_panel


def _load(name: str, file: str):
    """A helper module of tests/ (pytest runs with --import-mode=importlib)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(file))
    mod = sys.modules.get(name)
    if mod is None:
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return mod


MirrorServer = _load("nbdid_tests_mirror_server", "mirror_server.py").MirrorServer
_world = _load("nbdid_tests_build_world", "build_world.py")
StudyWorld, GMP_LAST = _world.StudyWorld, _world.GMP_LAST

LATEST = "2021-06"
BUILD_TOML = f'synthetic = true\nlatest_archive = "{LATEST}"\n'


def _cli(argv: list[str]) -> tuple[int, str, str]:
    """Run the ``nbdid`` CLI in-process; return (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def world(shared_data: Path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STATXPLORE_API_KEY", "TEST-KEY")
        for var in ("NBDID_MIRROR", "NBDID_OFFLINE", "NBDID_CACHE", "NOMIS_API_KEY"):
            mp.delenv(var, raising=False)
        with MirrorServer() as server:
            yield StudyWorld(server, shared_data, latest_archive=LATEST).register()


@pytest.fixture(scope="module")
def built(world: StudyWorld, tmp_path_factory: pytest.TempPathFactory):
    """The study panel built once through the mirror (all seven indicators)."""
    root = tmp_path_factory.mktemp("build")
    cfg = root / "build.toml"
    cfg.write_text(BUILD_TOML, encoding="utf-8")
    panel = root / "out" / "panel.csv"
    cache = root / "cache"
    rc, out, err = _cli(["build", "--study", "--config", str(cfg), "--out", str(panel),
                         "--mirror", world.server.url, "--cache", str(cache), "--pause", "0"])
    assert rc == 0, err[-3000:]
    report = json.loads(panel.with_name("panel.provenance.json").read_text(encoding="utf-8"))
    return {"root": root, "config": cfg, "panel": panel, "cache": cache, "out": out,
            "err": err, "report": report, "table": read_panel(panel),
            "sources": panel.with_name("panel.sources")}


# -- the build and its outputs -------------------------------------------------------------


def test_build_writes_panel_provenance_and_run_config(built):
    panel, out = built["panel"], built["out"]
    for name in ("panel.csv", "panel.provenance.json", "panel.provenance.txt", "panel.run.toml"):
        assert (panel.parent / name).is_file(), name
    t = built["table"]
    assert sorted(t["indicator"].unique()) == sorted([
        "crime", "burglary", "criminal_damage", "children_low_income", "out_of_work_benefits",
        "business_units", "property_price"])
    for key in ("children_low_income", "out_of_work_benefits", "business_units",
                "property_price"):
        rows = t[t["indicator"] == key]
        assert rows["ward"].nunique() == 58, key
        assert sorted(rows["post"].unique()) == [0, 1]
    assert t["synthetic"].all()  # generated test files -> every row says so
    assert "SYNTHETIC TEST DATA" in out
    assert f"next: nbdid run --config {panel.with_name('panel.run.toml')}" in out
    run = tomllib.loads(panel.with_name("panel.run.toml").read_text(encoding="utf-8"))
    assert run["panel"] == "panel.csv"
    assert set(run["indicators"]) == set(t["indicator"])
    txt = panel.with_name("panel.provenance.txt").read_text(encoding="utf-8")
    assert txt.startswith("nbdid build: provenance") and "SYNTHETIC TEST DATA" in txt


def test_data_validate_accepts_the_panel(built):
    rc, out, err = _cli(["data", "validate", str(built["panel"])])
    assert rc == 0, err
    assert "valid ward panel" in out and "58 wards" in out


def test_provenance_lists_every_source_file_with_manifest_hashes(built):
    rep, src = built["report"], built["sources"]
    files = rep["source_files"]
    listed = {Path(f["file"]).resolve() for f in files}
    on_disk = {p.resolve() for p in src.rglob("*") if p.is_file()
               and "derived" not in p.name and p.name != "nbdid-download.json"
               and not p.name.startswith(".")}
    assert on_disk and on_disk == listed
    manifest = json.loads((built["cache"] / "manifest.json").read_text(encoding="utf-8"))
    entries = manifest.get("entries", manifest)
    by_url = {e["url"]: e for e in (entries.values() if isinstance(entries, dict) else entries)
              if isinstance(e, dict) and "url" in e}
    manifest_sha = {e.get("sha256") for e in by_url.values()} | {
        e.get("sha256") for e in (entries.values() if isinstance(entries, dict) else entries)
        if isinstance(e, dict)}
    checked = 0
    for f in files:
        assert f["sha256"] == _sha256(Path(f["file"])), f["file"]
        urls = f["url"] if isinstance(f["url"], list) else [f["url"]]
        finals = f["final_url"] if isinstance(f["final_url"], list) else [f["final_url"]]
        for u, fu in zip(urls, finals, strict=True):
            assert u.startswith("https://")
            assert fu.startswith(built["report"]["cache"]["mirror"])
        if f["source"] == "property_price":  # a whole file: its manifest hash is the file's
            assert by_url[f["url"]]["sha256"] == f["sha256"]
            checked += 1
        # every file is traceable to the cache manifest: its own hash, or those of the
        # pages / archive / JSON cube it was made from
        made_from = [f["sha256"], *f.get("page_sha256", []), f.get("archive_sha256"),
                     f.get("cube_sha256")]
        assert any(h in manifest_sha for h in made_from if h), f
    assert checked == 14
    # rows read and dropped per loader
    assert rep["rows"]["police"]["rows_read"] > 0
    assert rep["rows"]["police"]["rows_without_lsoa_total"] > 0
    assert rep["rows"]["property_price"]["records_read"] > 0
    txt = built["panel"].with_name("panel.provenance.txt").read_text(encoding="utf-8")
    assert f"Source files ({len(files)};" in txt
    assert "rows_without_lsoa_total" in txt


def test_guards_in_provenance_and_on_stderr(built):
    guards = built["report"]["guards"]
    kinds = {g["guard"] for g in guards}
    assert {"year map", "ward boundaries", "partial periods"} <= kinds
    gmp = [g for g in guards if "greater-manchester" in g["message"]
           and "July 2019" in g["message"]]
    assert gmp, guards
    err = built["err"]
    assert "note: partial periods: police.uk has no street file of greater-manchester" in err
    assert "Nechells (Birmingham): 21 LSOAs in WD17, 8 in WD19" in err
    assert "mid-2010 population (mid-2011 served" in err
    # the choice made: Greater Manchester's pairs are dropped from the police indicators
    t = built["table"]
    gm = study_wards()
    gm_pairs = set(gm[gm["la"].isin(["Rochdale", "Salford", "Tameside"])]["pair"])
    assert gm_pairs and not gm_pairs & set(t[t["indicator"] == "crime"]["pair"])
    assert gm_pairs <= set(t[t["indicator"] == "business_units"]["pair"])
    assert any("dropped pair(s)" in g["message"] for g in guards)
    assert "2010/11 4/12 months" in " ".join(g["message"] for g in guards)


# -- counts equal those of the loaders run directly on the served files ----------------------


def _compare(panel: pd.DataFrame, direct: pd.DataFrame, key: str, labels: dict[str, str]):
    def counts(t: pd.DataFrame) -> pd.Series:
        idx = pd.MultiIndex.from_arrays([t["ward"].astype(str).to_numpy(object),
                                         t["period_label"].astype(str).to_numpy(object)])
        return pd.Series(t["count"].to_numpy(float), index=idx)

    got = counts(panel[panel["indicator"] == key])
    d = direct.copy()
    if "indicator" in d:
        d = d[d["indicator"] == key]
    d = d[d["period_label"].astype(str).isin(labels)]
    d["period_label"] = d["period_label"].astype(str).map(labels)
    want = counts(d)
    want = want[want.index.isin(got.index)]
    assert len(want) == len(got) > 0, key
    pd.testing.assert_series_equal(got.sort_index(), want.sort_index())


def test_police_counts_equal_the_loader_on_the_served_files(built, world, shared_data, tmp_path):
    crime = tmp_path / "crime"
    for m in world.police_months():
        for f in sorted(set(world.force.values())):
            if f == "greater-manchester" and m > GMP_LAST:
                continue
            (crime / m).mkdir(parents=True, exist_ok=True)
            (crime / m / f"{m}-{f}-street.csv").write_bytes(world.street_file(m, f))
    dens = built["sources"] / "population" / "denominators.derived.csv"
    res = ingest_police(crime, shared_data / "ons_lookups" / "LSOA11_to_WD19_LAD19_Lookup_EW.csv",
                        population=dens, indicators=("crime", "burglary"),
                        partial_periods="shorten", post_from="2020-04")
    for key in ("crime", "burglary"):
        _compare(built["table"], res.table, key, {"2010/11": "2011", "2020/21": "2021"})


def test_dwp_and_nomis_counts_equal_the_loaders(built, shared_data):
    lookup = shared_data / "ons_lookups" / "LSOA11_to_WD19_LAD19_Lookup_EW.csv"
    # children in low income: the REAL Stat-Xplore export, served as JSON cubes
    real = shared_data / "dwp_statxplore" / "children_relative_low_income_msoa_14-22_headerstripped.csv"
    res = ingest_dwp(real, "children_low_income", lookup)
    _compare(built["table"], res.table, "children_low_income",
             {"2014/15": "2014", "2020/21": "2021"})
    # business units: the NOMIS pages as downloaded
    (nomis,) = [Path(f["file"]) for f in built["report"]["source_files"]
                if f["source"] == "business_units"]
    res = ingest_nomis(nomis, lookup, indicator="business_units")
    _compare(built["table"], res.table, "business_units", {"2011": "2011", "2021": "2021"})


# -- cache, offline, ward lists, errors ------------------------------------------------------


def test_offline_with_a_warm_cache_builds_the_same_rows(built, world, tmp_path):
    cfg = tmp_path / "b.toml"
    cfg.write_text(BUILD_TOML + 'indicators = ["crime", "children_low_income"]\n',
                   encoding="utf-8")
    before = len(world.server.requests)
    rc, out, err = _cli(["build", "--study", "--config", str(cfg), "--out",
                         str(tmp_path / "p.csv"), "--cache", str(built["cache"]), "--offline"])
    assert rc == 0, err[-2000:]
    assert len(world.server.requests) == before  # no request at all
    new = read_panel(tmp_path / "p.csv")
    old = built["table"][built["table"]["indicator"].isin(["crime", "children_low_income"])]
    cols = ["indicator", "ward", "period_label", "count", "exposure"]
    pd.testing.assert_frame_equal(
        new[cols].sort_values(cols[:3]).reset_index(drop=True),
        old[cols].sort_values(cols[:3]).reset_index(drop=True))


def test_offline_with_a_cold_cache_refuses_in_one_line(tmp_path):
    rc, out, err = _cli(["build", "--study", "--out", str(tmp_path / "p.csv"),
                         "--cache", str(tmp_path / "empty"), "--offline", "--quiet"])
    assert rc == 3
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "not in the cache" in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "p.csv").exists()


def test_missing_statxplore_key_stops_before_any_download(world, tmp_path, monkeypatch):
    monkeypatch.delenv("STATXPLORE_API_KEY", raising=False)
    before = len(world.server.requests)
    rc, out, err = _cli(["build", "--study", "--out", str(tmp_path / "p.csv"), "--mirror",
                         world.server.url, "--cache", str(tmp_path / "c"), "--quiet"])
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "STATXPLORE_API_KEY" in lines[0], err
    assert "https://stat-xplore.dwp.gov.uk" in lines[0]
    assert len(world.server.requests) == before
    assert not (tmp_path / "p.csv").exists()


def test_ward_list(built, world, tmp_path):
    sw = study_wards()
    # two pairs whose wards kept their area between WD17 and WD19: a ward list is
    # resolved in the ward lookup's vintage (WD19), the study build on WD17
    small = sw[sw["pair"].isin([2, 3])]
    wards = tmp_path / "wards.csv"
    small.to_csv(wards, index=False)
    cfg = tmp_path / "b.toml"
    cfg.write_text(BUILD_TOML + 'indicators = ["crime", "burglary", "business_units"]\n',
                   encoding="utf-8")
    rc, out, err = _cli(["build", "--wards", str(wards), "--config", str(cfg), "--out",
                         str(tmp_path / "p.csv"), "--cache", str(built["cache"]),
                         "--mirror", world.server.url, "--pause", "0"])
    assert rc == 0, err[-2000:]
    t = read_panel(tmp_path / "p.csv")
    assert set(t["ward_name"]) == set(small["ward_name"])
    assert sorted(t["indicator"].unique()) == ["burglary", "business_units", "crime"]
    full = built["table"]
    same = t.merge(full, on=["indicator", "ward_name", "la", "period_label"],
                   suffixes=("", "_study"))
    assert len(same) == len(t)
    assert (same["count"] == same["count_study"]).all()


@pytest.mark.parametrize("toml_text, needle", [
    ('partial_periods = "guess"\n', "partial_periods"),
    ('indicators = ["crime", "happiness"]\n', "happiness"),
    ('[periods]\npolice = ["2020/21", "2010/11"]\n', "time order"),
])
def test_bad_config_is_one_line_exit_2(tmp_path, toml_text, needle):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml_text, encoding="utf-8")
    rc, out, err = _cli(["build", "--study", "--config", str(cfg), "--out",
                         str(tmp_path / "p.csv"), "--offline", "--cache", str(tmp_path / "c")])
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and str(cfg) in lines[0], err
    assert not (tmp_path / "p.csv").exists()


def test_print_config_round_trips(tmp_path):
    rc, out, _ = _cli(["build", "--print-config"])
    assert rc == 0
    cfg = tmp_path / "c.toml"
    cfg.write_text(out, encoding="utf-8")
    from nbdid.config import BuildConfig, load_build_config

    assert load_build_config(cfg) == BuildConfig()
    assert to_toml(BuildConfig()) == out


@pytest.mark.parametrize("indicators", [
    ["children_low_income"],
    pytest.param(None, marks=pytest.mark.slow, id="all-seven"),
])
def test_run_fits_the_built_panel(built, tmp_path, indicators):
    """``nbdid run --config`` on the run config the build wrote (tiny sampler settings)."""
    run_toml = built["panel"].with_name("panel.run.toml")
    cfg = tomllib.loads(run_toml.read_text(encoding="utf-8"))
    indicators = indicators or cfg["indicators"]
    text = run_toml.read_text(encoding="utf-8")
    text = text.replace(f'out = "{cfg["out"]}"', f'out = "{(tmp_path / "res").as_posix()}"')
    text = text.replace(f"indicators = {json.dumps(cfg['indicators'])}",
                        f"indicators = {json.dumps(indicators)}")
    for k, v in {"draws": 100, "tune": 100, "chains": 2, "ri_draws": 200}.items():
        old = cfg["frequentist" if k == "ri_draws" else "sampler"][k]
        text = text.replace(f"{k} = {old}\n", f"{k} = {v}\n")
    tiny = tmp_path / "tiny.run.toml"
    tiny.write_text(text.replace('panel = "panel.csv"',
                                 f'panel = "{built["panel"].as_posix()}"'), encoding="utf-8")
    assert f"indicators = {json.dumps(indicators)}" in text and "draws = 100\n" in text
    rc, out, err = _cli(["run", "--config", str(tiny), "--no-report"])
    assert rc == 0, err[-3000:]
    comp = pd.read_csv(tmp_path / "res" / "comparison.csv")
    assert sorted(comp["indicator"]) == sorted(indicators)
    info = json.loads((tmp_path / "res" / "run_info.json").read_text(encoding="utf-8"))
    assert info["synthetic"] is True
    assert info["panel"].endswith("panel.csv")
