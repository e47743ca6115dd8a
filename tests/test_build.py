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
from nbdid.data_prep.land_registry import ingest_land_registry
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
# missing_estimates is left at its default ("refuse"): the report's periods build through
# the year map's entries for them
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
    # the default missing_estimates ("refuse"): the report's periods are served by the year
    # map's entries for them, each stated as such (not as a "nearest" fallback)
    assert built["report"]["config"]["missing_estimates"] == "refuse"
    assert ("mid-2010 population (mid-2011 served: the year map's entry for the report's "
            "periods; mid-2010 is not published for 2011 LSOAs)") in err
    year_map = [g for g in guards if g["guard"] == "year map" and "used_year" in g]
    assert {(g["estimate_year"], g["used_year"], tuple(g["cells"])) for g in year_map} == {
        (2010, 2011, ("crime 2010/11", "criminal_damage 2010/11")),
        (2021, 2020, ("business_units 2021", "out_of_work_benefits 2021-05"))}
    for g in year_map:
        assert g["entry"] == "report periods"
        assert g["message"].startswith("the year map's entry for the report's periods: ")
        assert g["message"] in err
        assert "nearest" not in g["message"]
    assert "missing_estimates = 'nearest'" not in err
    assert "mid-2011 population serves crime 2010/11, criminal_damage 2010/11" in err
    assert "mid-2020 working_age serves business_units 2021, out_of_work_benefits 2021-05" in err
    assert any("(mid-2020 served: the year map's entry" in line
               for line in built["report"]["year_map"]), built["report"]["year_map"]
    # the choice made: Greater Manchester's pairs are dropped from the police indicators
    t = built["table"]
    gm = study_wards()
    gm_pairs = set(gm[gm["la"].isin(["Rochdale", "Salford", "Tameside"])]["pair"])
    assert gm_pairs and not gm_pairs & set(t[t["indicator"] == "crime"]["pair"])
    assert gm_pairs <= set(t[t["indicator"] == "business_units"]["pair"])
    assert any("dropped pair(s)" in g["message"] for g in guards)
    assert "2010/11 4/12 months" in " ".join(g["message"] for g in guards)


# -- counts equal those of the loaders run directly on the served files ----------------------


def _compare(panel: pd.DataFrame, direct: pd.DataFrame, key: str, labels: dict[str, str],
             column: str = "count"):
    def counts(t: pd.DataFrame) -> pd.Series:
        idx = pd.MultiIndex.from_arrays([t["ward"].astype(str).to_numpy(object),
                                         t["period_label"].astype(str).to_numpy(object)])
        return pd.Series(t[column].to_numpy(float), index=idx)

    got = counts(panel[panel["indicator"] == key])
    d = direct.copy()
    if "indicator" in d:
        d = d[d["indicator"] == key]
    d = d[d["period_label"].astype(str).isin(labels)]
    d["period_label"] = d["period_label"].astype(str).map(labels)
    want = counts(d)
    want = want[want.index.isin(got.index)]
    assert len(want) == len(got) > 0, key
    pd.testing.assert_series_equal(got.sort_index(), want.sort_index(), obj=f"{key} {column}")


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
                        population=dens, indicators=("crime", "burglary", "criminal_damage"),
                        partial_periods="shorten", post_from="2020-04")
    for key in ("crime", "burglary", "criminal_damage"):
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


def _source(built, source: str) -> list[Path]:
    return [Path(f["file"]) for f in built["report"]["source_files"] if f["source"] == source]


def test_out_of_work_benefit_counts_equal_the_loaders(built, shared_data, tmp_path):
    """May 2011 from the NOMIS working-age client group (the five groups of the report's
    definition summed here, independently of the build), May 2021 from Stat-Xplore benefit
    combinations: each through the loader ``nbdid ingest`` runs."""
    lookup = shared_data / "ons_lookups" / "LSOA11_to_WD19_LAD19_Lookup_EW.csv"
    (wacg,) = _source(built, "out_of_work_benefits (wacg)")
    raw = pd.read_csv(wacg, dtype=str, keep_default_na=False)
    assert set(_world.WACG_ITEMS) <= set(raw["ITEM_NAME"])  # "Total claimants" included
    groups = raw[raw["ITEM_NAME"].isin(built["report"]["config"]["wacg_groups"])].copy()
    groups["OBS_VALUE"] = pd.to_numeric(groups["OBS_VALUE"])
    assert groups["ITEM_NAME"].nunique() == 5
    summed = (groups.groupby(["DATE_NAME", "GEOGRAPHY_NAME", "GEOGRAPHY_CODE"],
                             as_index=False)["OBS_VALUE"].sum()
              .assign(ITEM_NAME="Out-of-work benefits (TEST sum)"))
    summed.to_csv(tmp_path / "wacg_summed.csv", index=False)
    early = ingest_nomis(tmp_path / "wacg_summed.csv", lookup,
                         indicator="out_of_work_benefits").table
    (combos,) = _source(built, "out_of_work_benefits (benefit combinations)")
    late = ingest_dwp(combos, "out_of_work_benefits", lookup).table
    both = pd.concat([early, late], ignore_index=True)
    assert set(both["period_label"].astype(str)) == {"May 2011", "May-21"}
    _compare(built["table"], both, "out_of_work_benefits", {"May 2011": "2011", "May-21": "2021"})


def test_property_price_summaries_equal_the_loader(built, shared_data):
    """The served yearly Price Paid files and postcode directory through
    ``ingest_land_registry`` (``nbdid ingest land-registry``)."""
    lookup = shared_data / "ons_lookups" / "LSOA11_to_WD19_LAD19_Lookup_EW.csv"
    ppd = sorted(_source(built, "property_price"))
    (postcodes,) = _source(built, "postcodes")
    assert len(ppd) == 14
    res = ingest_land_registry(ppd, postcodes, lookup=lookup,
                               periods="2007-12:2013-11,2018-12:2024-11", post_from="2018-12")
    labels = {"2007-2013": "2007-2013", "2018-2024": "2018-2024"}
    assert set(res.table["period_label"].astype(str)) == set(labels)
    for column in ("n", "mean_price", "mean_log_price", "sd_log_price"):
        _compare(built["table"], res.table, "property_price", labels, column=column)


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
    # no config: the year map's entries serve the report's periods, so the build gets as
    # far as the (cold) cache
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


# -- the year map: an estimate that is not published is refused by default ------------------


def test_default_refuses_an_unpublished_estimate_with_the_fix(world, tmp_path):
    """Periods of the user's asking for mid-years NOMIS does not publish for 2011 LSOAs
    (mid-2011 to mid-2020): police 2009/10 (mid-2009) and business units 2022 (mid-2022).
    Without ``missing_estimates = "nearest"`` the build stops before any request, in one
    line naming each cell and the fix, and writes nothing.  Out-of-work benefits keep the
    report's periods, whose May 2021 the year map's entry serves: not refused."""
    cfg = tmp_path / "b.toml"
    cfg.write_text(f'synthetic = true\nlatest_archive = "{LATEST}"\n'
                   '[periods]\npolice = ["2009/10", "2020/21"]\n'
                   'business_units = ["2011", "2022"]\n', encoding="utf-8")
    before = len(world.server.requests)
    out = tmp_path / "out"
    rc, stdout, err = _cli(["build", "--study", "--config", str(cfg), "--out",
                            str(out / "panel.csv"), "--mirror", world.server.url, "--cache",
                            str(tmp_path / "c"), "--pause", "0"])
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    line = lines[0]
    assert "Traceback" not in err and stdout == ""
    assert "column 'missing_estimates'" in line
    for cell in ("crime 2009/10 needs mid-2009 population",
                 "criminal_damage 2009/10 needs mid-2009 population",
                 "business_units 2022 needs mid-2022 working_age"):
        assert cell in line, cell
    assert "burglary" not in line  # Census 2011 households serve every period
    assert "out_of_work_benefits" not in line and "2021" not in line  # the report's entry
    assert "mid-2011 to mid-2020" in line
    assert 'add missing_estimates = "nearest" to the build config' in line
    assert "nbdid build --print-config > build.toml" in line
    assert "mid-2011 for mid-2009, mid-2020 for mid-2022" in line
    assert len(world.server.requests) == before  # not one download
    assert not out.exists() or not any(out.iterdir())  # nothing written
    assert not (tmp_path / "c").exists()


def test_report_period_entries_serve_only_the_report_periods(tmp_path):
    """Asking for other periods of a source, even ones including a report period, takes
    that source off the entries: police 2010/11, 2015/16, 2020/21 needs mid-2010."""
    cfg = tmp_path / "b.toml"
    cfg.write_text('indicators = ["crime", "business_units"]\n'
                   '[periods]\npolice = ["2010/11", "2015/16", "2020/21"]\n', encoding="utf-8")
    rc, _, err = _cli(["build", "--study", "--config", str(cfg), "--out",
                       str(tmp_path / "p.csv"), "--offline", "--cache", str(tmp_path / "c")])
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "crime 2010/11 needs mid-2010 population" in lines[0]
    assert "business_units" not in lines[0]  # the report's periods: its entry serves 2021


def test_nearest_is_an_explicit_opt_in(tmp_path):
    """With ``missing_estimates = "nearest"`` the same periods pass the year map (and
    reach the cold cache: exit 3)."""
    cfg = tmp_path / "b.toml"
    cfg.write_text('missing_estimates = "nearest"\n[periods]\n'
                   'business_units = ["2011", "2022"]\n', encoding="utf-8")
    rc, _, err = _cli(["build", "--study", "--config", str(cfg), "--out",
                       str(tmp_path / "p.csv"), "--offline", "--cache", str(tmp_path / "c"),
                       "--quiet"])
    assert rc == 3, err
    assert "missing_estimates" not in err


def test_households_scaling_years_are_refused_too(tmp_path):
    """Scaling households by population needs mid-2011 and the period's mid-year."""
    cfg = tmp_path / "b.toml"
    cfg.write_text('indicators = ["burglary"]\nhouseholds_scaling = "population"\n',
                   encoding="utf-8")
    rc, _, err = _cli(["build", "--study", "--config", str(cfg), "--out",
                       str(tmp_path / "p.csv"), "--offline", "--cache", str(tmp_path / "c")])
    assert rc == 2  # refused before the cold cache is looked at (that would be exit 3)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "burglary 2010/11 (scaling) needs mid-2010 population" in lines[0]
    assert "2020/21" not in lines[0]  # mid-2020 is published
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "p.sources").exists()


def test_default_builds_when_every_estimate_is_published(built, world, tmp_path):
    """Periods whose estimates are all published build with the default (refuse): no year
    is substituted."""
    cfg = tmp_path / "b.toml"
    cfg.write_text(f'synthetic = true\nlatest_archive = "{LATEST}"\n'
                   'indicators = ["children_low_income", "business_units"]\n'
                   '[periods]\nbusiness_units = ["2012", "2020"]\n', encoding="utf-8")
    rc, out, err = _cli(["build", "--study", "--config", str(cfg), "--out",
                         str(tmp_path / "p.csv"), "--cache", str(built["cache"]),
                         "--mirror", world.server.url, "--pause", "0"])
    assert rc == 0, err[-2000:]
    rep = json.loads((tmp_path / "p.provenance.json").read_text(encoding="utf-8"))
    assert rep["config"]["missing_estimates"] == "refuse"
    assert not [g for g in rep["guards"] if "used_year" in g]
    assert "served" not in err and "served" not in " ".join(rep["year_map"])
    assert any("mid-2012 working_age" in line for line in rep["year_map"]), rep["year_map"]
    t = read_panel(tmp_path / "p.csv")
    assert sorted(t[t["indicator"] == "business_units"]["period_label"].unique()) == [
        "2012", "2020"]


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
