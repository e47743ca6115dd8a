"""Every ``nbdid download`` source end to end through a local mirror.

The mirror serves the real extracts in ../shared/data at the publishers' paths (the
Merseyside street file inside a police archive zip, the Price Paid rows as
``pp-1995.csv``, a Stat-Xplore export as a JSON cube, an ONS lookup as ArcGIS pages)
plus small files in each publisher's layout written here (NOMIS CSV pages, an ONS
workbook, IMD File 7).  What ``download`` writes must be read by the existing loaders
with the same results as the original files.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import math
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nbdid.cli import main
from nbdid.download import DownloadError, DownloadSettings, land_registry, nomis, ons, police
from nbdid.download import statxplore as sx
from nbdid.download.police import parse_archive_index, plan_archives
from nbdid.errors import InputError

_spec = importlib.util.spec_from_file_location(
    "nbdid_tests_mirror_server", Path(__file__).with_name("mirror_server.py"))
_mod = sys.modules.get(_spec.name)
if _mod is None:
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = _mod
    _spec.loader.exec_module(_mod)
MirrorServer = _mod.MirrorServer


@pytest.fixture
def server():
    with MirrorServer() as s:
        yield s


def _settings(tmp_path: Path, server, **kw) -> DownloadSettings:
    return DownloadSettings(cache_dir=tmp_path / "cache", mirror=server.url, backoff=0.0,
                            pause=0.0, timeout=10.0, **kw)


def _cli(tmp_path, server, *argv: str) -> int:
    return main(["download", *argv, "--cache", str(tmp_path / "cache"), "--mirror", server.url,
                 "--pause", "0", "--quiet"])


# ------------------------------------------------------------------------------------------
# police.uk
# ------------------------------------------------------------------------------------------


def test_plan_archives_window_rule():
    months = [f"{y}-{m:02d}" for y in range(2011, 2022) for m in range(1, 13)]
    plan = plan_archives(months, latest="2026-07")
    assert [p.archive for p in plan] == ["2017-04", "2020-04", "2021-12"]
    assert plan[0].months[0] == "2011-01" and plan[0].months[-1] == "2017-04"
    assert plan[1].months == tuple(m for m in months if "2017-05" <= m <= "2020-04")
    assert sum(len(p.months) for p in plan) == len(months)  # each month exactly once
    two = plan_archives([m for m in months if m[:4] in ("2011", "2021")], latest="2026-07")
    assert len(two) == 2 and two[-1].archive == "2021-12"
    assert [p.archive for p in plan_archives(["2014-04"], latest="2026-07")] == ["2014-04"]
    assert [p.archive for p in plan_archives(["2010-12"], latest="2026-07")] == ["2013-12"]
    assert police.archive_window("2018-03") == ("2015-04", "2018-03")
    with pytest.raises(InputError, match="start in 2010-12"):
        plan_archives(["2010-11"], latest="2026-07")
    with pytest.raises(InputError, match="latest-archive"):
        plan_archives(["2026-08"], latest="2026-07")


def test_parse_archive_index():
    html = """<ul>
    <li><a href="/data/archive/2017-04.zip">April 2017</a> Contains data from Dec 2010 to
        Apr 2017 <span>MD5: 955e065e0f08d67872da9187263dc359</span></li>
    <li><a href="/data/archive/2017-05.zip">May 2017</a> MD5: d41d8cd98f00b204e9800998ecf8427e-12</li>
    <li><a href="/data/archive/2020-04.zip">2020-04.zip</a> EEE35279B6828BA49FD2AD7EF3133262</li>
    </ul>"""
    idx = parse_archive_index(html)
    assert idx["2017-04"] == "955e065e0f08d67872da9187263dc359"
    assert idx["2017-05"] is None  # a multipart ETag is not an MD5
    assert idx["2020-04"] == "eee35279b6828ba49fd2ad7ef3133262"


def _police_zip(street: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("2013-12/2013-12-merseyside-street.csv",
                    street.split(b"\r")[0] + b"\r")  # header only: an empty month
        zf.writestr("2014-04/2014-04-cumbria-street.csv", street.split(b"\r")[0] + b"\r")
        zf.writestr("2014-04/2014-04-merseyside-outcomes.csv", b"Crime ID,Month\n")
        zf.writestr("2014-04/2014-04-merseyside-street.csv", street)
    return buf.getvalue()


@pytest.fixture
def police_mirror(shared_data, server):
    street = (shared_data / "police_uk_merseyside" / "police-uk-2014-04-merseyside-street.csv"
              ).read_bytes()
    data = _police_zip(street)
    server.add(police.ARCHIVE_URL.format(archive="2014-04"), data)
    server.add(police.INDEX_URL, f"""<html><a href="2014-04.zip">2014-04.zip</a> Contains
        data from Dec 2010 to Apr 2014. MD5 {hashlib.md5(data).hexdigest()}</html>""")
    return server, street, data


def test_police_end_to_end_matches_ingest_of_the_shared_file(tmp_path, police_mirror,
                                                               shared_data):
    server, street, data = police_mirror
    out = tmp_path / "crime"
    rc = _cli(tmp_path, server, "police", "--from", "2014-04", "--to", "2014-04",
              "--forces", "merseyside", "--out", str(out))
    assert rc == 0
    got = out / "2014-04" / "2014-04-merseyside-street.csv"
    assert got.read_bytes() == street  # byte for byte, bare CR line endings included
    assert sorted(p.name for p in out.rglob("*.csv")) == [got.name]
    assert all(r.headers.get("Range") for r in server.requests if r.path.endswith(".zip"))
    prov = json.loads((out / "nbdid-download.json").read_text())
    rec = prov["files"]["2014-04/2014-04-merseyside-street.csv"]
    assert rec["archive"] == "2014-04" and rec["sha256"] == hashlib.sha256(street).hexdigest()
    assert prov["runs"][-1]["months"] == {"2014-04": "2014-04"}

    lookup = shared_data / "ons_lookups" / "LSOA11_to_WD19_LAD19_Lookup_EW.csv"
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    keep = ["--partial-periods", "keep"]  # one month of a financial year, on purpose
    assert main(["ingest", "police", "--crime-dir", str(out), "--lookup", str(lookup),
                 "--out", str(a), *keep]) == 0
    assert main(["ingest", "police", "--crime-dir", str(shared_data / "police_uk_merseyside"),
                 "--lookup", str(lookup), "--out", str(b), *keep]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(a), pd.read_csv(b))

    # a second run needs no network: members come from the cache
    n = len(server.requests)
    out2 = tmp_path / "again"
    assert _cli(tmp_path, server, "police", "--from", "2014-04", "--to", "2014-04",
                "--forces", "merseyside", "--out", str(out2), "--offline") == 0
    assert len(server.requests) == n
    assert (out2 / "2014-04" / got.name).read_bytes() == street


def test_police_whole_archive_is_md5_verified(tmp_path, police_mirror):
    server, street, data = police_mirror
    rep = police.download("2014-04", "2014-04", "merseyside", tmp_path / "o",
                          settings=_settings(tmp_path, server), method="whole")
    arch = rep.archives[0]
    assert arch["method"] == "whole" and arch["md5_published"] == hashlib.md5(data).hexdigest()
    assert (tmp_path / "o" / "2014-04" / "2014-04-merseyside-street.csv").read_bytes() == street
    assert not any(r.headers.get("Range") for r in server.requests)


def test_police_falls_back_to_whole_archive_without_range(tmp_path, police_mirror):
    server, street, data = police_mirror
    server.fault(police.ARCHIVE_URL.format(archive="2014-04"), no_range=True)
    rep = police.download("2014-04", "2014-04", "merseyside", tmp_path / "o",
                          settings=_settings(tmp_path, server))
    assert rep.archives[0]["method"] == "whole"
    assert rep.files[0]["sha256"] == hashlib.sha256(street).hexdigest()


def test_police_missing_months_and_unknown_force(tmp_path, police_mirror):
    server, street, _ = police_mirror
    rep = police.download("2013-12", "2014-04", ["merseyside", "cumbria"], tmp_path / "o",
                          settings=_settings(tmp_path, server))
    assert set(rep.months.values()) == {"2014-04"} and len(rep.months) == 5
    missing = {(m["month"], m["force"]) for m in rep.missing}
    assert ("2014-01", "merseyside") in missing and ("2013-12", "cumbria") in missing
    assert ("2014-04", "cumbria") not in missing and ("2013-12", "merseyside") not in missing
    assert len(rep.files) == 3
    with pytest.raises(InputError, match="force 'nowhere'.*cumbria, merseyside"):
        police.download("2014-04", "2014-04", "nowhere", tmp_path / "p",
                        settings=_settings(tmp_path, server))
    assert main(["download", "police", "--from", "2014-04", "--to", "2014-04", "--forces",
                 "Bad Force", "--out", str(tmp_path / "q"), "--mirror", server.url]) == 2


def test_police_never_overwrites_different_files(tmp_path, police_mirror):
    server, street, _ = police_mirror
    dest = tmp_path / "o" / "2014-04" / "2014-04-merseyside-street.csv"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"my edited file\n")
    s = _settings(tmp_path, server)
    with pytest.raises(Exception, match="already exists with other content"):
        police.download("2014-04", "2014-04", "merseyside", tmp_path / "o", settings=s)
    assert dest.read_bytes() == b"my edited file\n"
    police.download("2014-04", "2014-04", "merseyside", tmp_path / "o", settings=s, force=True)
    assert dest.read_bytes() == street


def test_police_range_reads_only_the_wanted_members(tmp_path, server):
    import random

    forces = [f"force-{k}" for k in range(12)]
    months = ["2019-04", "2019-05", "2019-06"]
    members = {}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for m in months:
            for f in forces:
                for kind in ("street", "outcomes"):
                    body = (b"Crime ID,Month\n" + random.Random(f"{m}{f}{kind}").randbytes(
                        150_000).hex().encode())
                    name = f"{m}/{m}-{f}-{kind}.csv"
                    members[name] = body
                    zf.writestr(name, body)
    data = buf.getvalue()
    server.add(police.ARCHIVE_URL.format(archive="2019-06"), data)
    rep = police.download("2019-05", "2019-06", "force-3", tmp_path / "o",
                          settings=_settings(tmp_path, server), latest_archive="2019-06")
    a = rep.archives[0]
    assert a["archive"] == "2019-06" and a["method"] == "range" and len(rep.files) == 2
    for f in rep.files:
        assert Path(f["path"]).read_bytes() == members[f["member"]]
    wanted = sum(len(members[f["member"]]) for f in rep.files) / 2  # hex compresses ~2:1
    assert a["bytes_transferred"] < wanted + 64_000 < len(data) / 10
    assert a["requests"] <= 2 + 2 + 2  # probe, end record, directory, one per member


# ------------------------------------------------------------------------------------------
# Land Registry
# ------------------------------------------------------------------------------------------


def test_land_registry_fallback_host_byte_for_byte(tmp_path, server, shared_data):
    src = shared_data / "land_registry_ppd" / "pp-complete_head10297.csv"
    old = land_registry.year_urls(1995)[1]
    server.add(old, src.read_bytes())  # the new host answers 404 on this mirror
    out = tmp_path / "ppd"
    assert _cli(tmp_path, server, "land-registry", "--years", "1995", "--out", str(out)) == 0
    assert (out / "pp-1995.csv").read_bytes() == src.read_bytes()
    prov = json.loads((out / "nbdid-download.json").read_text())["files"]["pp-1995.csv"]
    assert prov["url"] == old
    from nbdid.data_prep.land_registry import read_ppd

    got, want = read_ppd(out / "pp-1995.csv"), read_ppd(src)
    assert len(got) == len(want) == 10_298
    same = [c for c in got.columns if c != "file"]  # the loader notes each row's file
    pd.testing.assert_frame_equal(got[same], want[same])
    with pytest.raises(InputError, match="cover 1995"):
        land_registry.parse_years("1994")


# ------------------------------------------------------------------------------------------
# NOMIS
# ------------------------------------------------------------------------------------------


def _nomis_handler(header: list[str], rows: list[list[str]], *, cap: int = 25_000,
                   short_page: int | None = None, ignore_offset: bool = False, seen=None):
    """A NOMIS data endpoint: pages of at most ``cap`` rows, RECORD_OFFSET/RECORD_COUNT."""

    def handle(req):
        if seen is not None:
            seen.append(req)
        off = 0 if ignore_offset else int(req.query.get("RecordOffset", 0))
        n = cap if short_page is None or off == 0 else short_page
        buf = io.StringIO()
        w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        w.writerow([*header, "RECORD_OFFSET", "RECORD_COUNT"])
        for i, r in enumerate(rows[off:off + n], start=off):
            w.writerow([*r, i, len(rows)])
        return 200, {"Content-Type": "text/csv"}, buf.getvalue().encode()

    return handle


def test_nomis_pages_past_the_silent_row_cap(tmp_path, server):
    rows = [[f"E01{i:06d}", str(i % 97)] for i in range(60_000)]
    url = f"{nomis.API}/dataset/NM_9_1.data.csv"
    server.add(url, _nomis_handler(["GEOGRAPHY_CODE", "OBS_VALUE"], rows, short_page=20_000))
    rep = nomis.download_table("NM_9_1", {"geography": "TYPE298"}, tmp_path / "t.csv",
                               select=["GEOGRAPHY_CODE", "OBS_VALUE"],
                               settings=_settings(tmp_path, server))
    got = pd.read_csv(tmp_path / "t.csv")
    assert len(got) == 60_000 == rep.files[0]["record_count"]
    assert got["RECORD_OFFSET"].tolist() == list(range(60_000))
    offsets = [int(r.query["RecordOffset"]) for r in server.requests]
    assert offsets == [0, 25_000, 45_000]  # short pages are followed, not trusted
    assert server.requests[0].query["select"].endswith("RECORD_OFFSET,RECORD_COUNT")


def test_nomis_detects_ignored_offset_and_truncation(tmp_path, server):
    rows = [[f"E01{i:06d}", "1"] for i in range(30_000)]
    url = f"{nomis.API}/dataset/NM_8_1.data.csv"
    server.add(url, _nomis_handler(["GEOGRAPHY_CODE", "OBS_VALUE"], rows, ignore_offset=True))
    with pytest.raises(DownloadError, match="rows from offset 0, not 25000"):
        nomis.download_table("NM_8_1", {}, tmp_path / "t.csv",
                             select=["GEOGRAPHY_CODE", "OBS_VALUE"],
                             settings=_settings(tmp_path, server))
    url2 = f"{nomis.API}/dataset/NM_7_1.data.csv"
    server.add(url2, _nomis_handler(["GEOGRAPHY_CODE", "OBS_VALUE"], rows, short_page=0))
    with pytest.raises(DownloadError, match="no rows after 25,000 of 30,000"):
        nomis.download_table("NM_7_1", {}, tmp_path / "u.csv",
                             select=["GEOGRAPHY_CODE", "OBS_VALUE"],
                             settings=_settings(tmp_path, server))
    assert not (tmp_path / "t.csv").exists() and not (tmp_path / "u.csv").exists()
    server.add(f"{nomis.API}/dataset/NM_5_1.data.csv", '"GEOGRAPHY_CODE","OBS_VALUE"\r\n'
               '"E01000001","4"\r\n')
    with pytest.raises(DownloadError, match="did not report RECORD_COUNT"):
        nomis.download_table("NM_5_1", {}, tmp_path / "w.csv",
                             settings=_settings(tmp_path, server))
    server.add(f"{nomis.API}/dataset/NM_6_1.data.csv", "<html>error</html>")
    with pytest.raises(DownloadError, match="did not send a data table"):
        nomis.download_table("NM_6_1", {}, tmp_path / "v.csv",
                             settings=_settings(tmp_path, server))


def test_nomis_business_counts_read_by_loader(tmp_path, server):
    from nbdid.data_prep.nomis import read_business_counts

    rng = np.random.default_rng(1)
    header = ["DATE_NAME", "GEOGRAPHY_NAME", "GEOGRAPHY_CODE", "INDUSTRY_NAME",
              "EMPLOYMENT_SIZEBAND_NAME", "LEGAL_STATUS_NAME", "MEASURES_NAME", "OBS_VALUE",
              "OBS_STATUS_NAME"]
    rows, truth = [], {}
    for y in ("2011", "2021"):
        for i in range(7201):
            v = int(rng.integers(0, 400)) * 5
            truth[(f"E02{i:06d}", y)] = v
            rows.append([y, f"Area {i:03d}", f"E02{i:06d}", "Total", "Total", "Total", "Value",
                         str(v), "Normal Value"])
    seen = []
    server.add(f"{nomis.API}/dataset/NM_141_1.data.csv",
               _nomis_handler(header, rows, cap=10_000, seen=seen))
    out = tmp_path / "nomis"
    assert _cli(tmp_path, server, "business-counts", "--years", "2011,2021",
                "--out", str(out)) == 0
    assert seen[0].query["industry"] == "37748736" and seen[0].query["date"] == "2011,2021"
    data, meta = read_business_counts(out / "business_counts_msoa_2011-2021.csv")
    assert meta["layout"] == "nomis_api" and len(data) == len(truth)
    assert all(truth[(a, p)] == v for a, p, v in zip(data["area"], data["period"],
                                                        data["value"], strict=True))


def test_nomis_population_pivots_to_sape_layout(tmp_path, server):
    from nbdid.data_prep.population import read_sape

    ages = ["200"] + [str(101 + k) for k in range(91)]
    rows, truth = [], {}
    for i in range(300):  # 300 LSOAs x 92 ages = 27,600 rows: two guest pages
        code = f"E01{i:06d}"
        vals = [(i * 7 + k) % 40 for k in range(91)]
        truth[code] = vals
        for a in ages:
            v = sum(vals) if a == "200" else vals[int(a) - 101]
            rows.append(["2012", f"LSOA {i}", code, a, str(v)])
    server.add(f"{nomis.API}/dataset/NM_2010_1.data.csv", _nomis_handler(
        ["DATE_NAME", "GEOGRAPHY_NAME", "GEOGRAPHY_CODE", "C_AGE", "OBS_VALUE"], rows))
    rep = nomis.population("2012", tmp_path / "pop", settings=_settings(tmp_path, server))
    assert rep.files[0]["rows"] == 27_600 and len(rep.files[0]["pages"]) == 2
    sape = read_sape(tmp_path / "pop" / "sape_mid2012_lsoa_nomis.csv")
    assert len(sape) == 300 and set(sape["year"]) == {2012}
    row = sape.set_index("area").loc["E01000005"]
    assert [row[f"age_{k}"] for k in range(90)] == truth["E01000005"][:90]
    assert row["age_90plus"] == truth["E01000005"][90]
    assert sape.attrs["all_ages_mismatch"] == 0


def test_nomis_table_spooled_to_disk_page_by_page(tmp_path, server):
    """Each page goes to a file as it arrives (memory bounded by one page, not the
    table); the files written are byte for byte those of the in-memory pager."""
    from types import SimpleNamespace

    from nbdid.download.client import Downloader

    ages = ["200"] + [str(101 + k) for k in range(91)]
    header = ["DATE_NAME", "GEOGRAPHY_NAME", "GEOGRAPHY_CODE", "C_AGE", "OBS_VALUE"]
    rows, truth = [], {}
    for i in reversed(range(300)):  # 27,600 rows: two guest pages, codes out of order
        code = f"E01{i:06d}"
        truth[code] = [(i * 5 + k) % 33 for k in range(91)]
        for a in ages:
            v = sum(truth[code]) if a == "200" else truth[code][int(a) - 101]
            rows.append(["2012", f"LSOA {i}", code, a, str(v)])
    inner = _nomis_handler(header, rows)
    spool = tmp_path / "cache" / "tmp"
    spooled: list[int] = []  # bytes on disk when each page was requested

    def handle(req):
        spooled.append(sum(f.stat().st_size for f in spool.glob("*.tmp")))
        return inner(req)

    server.add(f"{nomis.API}/dataset/NM_2010_1.data.csv", handle)
    page0 = inner(SimpleNamespace(query={"RecordOffset": "0"}))[2]
    page1 = inner(SimpleNamespace(query={"RecordOffset": "25000"}))[2]
    table = page0 + page1[page1.index(b"\n") + 1:]  # the pager's file: one header line
    settings = _settings(tmp_path, server)
    params = {"geography": "TYPE298", "date": "2012"}
    with Downloader(settings) as dl, nomis.fetch_table(dl, "NM_2010_1", params,
                                                       select=header) as t:
        assert spooled == [0, len(page0)]  # page 1 was on disk before page 2 came
        assert "rows" not in vars(t) and t.path.parent == spool
        assert t.path.read_bytes() == table and t.n_rows == 27_600 == t.record_count
        assert sum(1 for _ in t.iter_rows()) == 27_600
    assert not t.path.exists()  # closed: the spooled file is gone
    nomis.download_table("NM_2010_1", params, tmp_path / "t" / "t.csv", select=header,
                         settings=settings)
    assert (tmp_path / "t" / "t.csv").read_bytes() == table
    rep = nomis.population("2012", tmp_path / "pop", settings=settings)
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["Mid-2012 population estimates, persons by single year of age, LSOA 2011 "
                "(ONS small area population estimates via NOMIS NM_2010_1)"])
    w.writerow(["LSOA Code", "LSOA Name", "All Ages", *[str(a) for a in range(90)], "90+"])
    for code in sorted(truth):
        w.writerow([code, f"LSOA {int(code[3:])}", sum(truth[code]), *truth[code]])
    assert (tmp_path / "pop" / "sape_mid2012_lsoa_nomis.csv").read_bytes() == \
        buf.getvalue().encode()
    assert rep.files[0]["rows"] == 27_600 and len(rep.files[0]["pages"]) == 2
    assert list(spool.iterdir()) == []  # nothing left behind


def test_nomis_households_resolved_by_search(tmp_path, server):
    from nbdid.data_prep.population import read_census_households

    search = {"structure": {"keyfamilies": {"keyfamily": [
        {"id": "NM_605_1", "name": {"value": "KS105EW - Household composition"}}]}}}
    server.add(f"{nomis.API}/dataset/def.sdmx.json", json.dumps(search))
    rows = [["2011", f"LSOA {i}", f"E01{i:06d}", "Total", "All categories: Household composition",
             "Value", str(500 + i)] for i in range(1000)]
    seen = []
    server.add(f"{nomis.API}/dataset/NM_605_1.data.csv", _nomis_handler(
        ["DATE_NAME", "GEOGRAPHY_NAME", "GEOGRAPHY_CODE", "RURAL_URBAN_NAME", "CELL_NAME",
         "MEASURES_NAME", "OBS_VALUE"], rows, seen=seen))
    rep = nomis.households(tmp_path / "hh", settings=_settings(tmp_path, server))
    assert "search" in rep.notes[0] and seen[0].query["cell"] == "0"
    hh = read_census_households(tmp_path / "hh" / "ks105ew_households_lsoa.csv")
    assert len(hh) == 1000 and hh["households"].sum() == sum(500 + i for i in range(1000))


def test_nomis_households_fallback_id_when_search_fails(tmp_path, server):
    rows = [["2011", "x", f"E01{i:06d}", "Total", "All categories: Household composition",
             "Value", "7"] for i in range(10)]
    server.add(f"{nomis.API}/dataset/NM_605_1.data.csv", _nomis_handler(
        ["DATE_NAME", "GEOGRAPHY_NAME", "GEOGRAPHY_CODE", "RURAL_URBAN_NAME", "CELL_NAME",
         "MEASURES_NAME", "OBS_VALUE"], rows))
    rep = nomis.households(tmp_path / "hh", settings=_settings(tmp_path, server))
    assert rep.notes == ["KS105EW dataset: NM_605_1 (fallback NM_605_1 (search failed))"]
    assert rep.files[0]["rows"] == 10


def test_nomis_wacg_totals_from_code_lists(tmp_path, server):
    base = f"{nomis.API}/dataset/NM_105_1"
    server.add(base + ".def.sdmx.json", json.dumps({"structure": {"keyfamilies": {"keyfamily": [
        {"id": "NM_105_1", "name": {"value": "DWP benefits - working age client group"},
         "components": {"dimension": [{"conceptref": c} for c in
                                      ("GEOGRAPHY", "SEX", "AGE", "ITEM", "MEASURES")]}}]}}}))

    def codes(*pairs):
        return json.dumps({"structure": {"codelists": {"codelist": [{"code": [
            {"value": v, "description": {"value": d}} for v, d in pairs]}]}}})

    server.add(base + "/sex.def.sdmx.json", codes((5, "Male"), (6, "Female"), (7, "Total")))
    server.add(base + "/age.def.sdmx.json", codes((0, "All ages"), (1, "16-24")))
    seen = []
    rows = [["May 2011", "x", f"E01{i:06d}", str(k), g, "Total", "All ages", "Value", "5",
             "Normal"] for i in range(50) for k, g in enumerate(("Total claimants",
                                                                  "Job seekers"), 1)]
    server.add(base + ".data.csv", _nomis_handler(
        ["DATE_NAME", "GEOGRAPHY_NAME", "GEOGRAPHY_CODE", "ITEM", "ITEM_NAME", "SEX_NAME",
         "AGE_NAME", "MEASURES_NAME", "OBS_VALUE", "OBS_STATUS_NAME"], rows, seen=seen))
    rep = nomis.wacg("2011-05", tmp_path / "w", settings=_settings(tmp_path, server))
    assert seen[0].query["sex"] == "7" and seen[0].query["age"] == "0"
    assert "item" not in seen[0].query
    assert rep.files[0]["rows"] == 100


# ------------------------------------------------------------------------------------------
# Stat-Xplore
# ------------------------------------------------------------------------------------------


def _cube_from_export(path: Path, date_label: str, geo_label: str) -> dict:
    from nbdid.data_prep.statxplore import read_statxplore

    data, meta = read_statxplore(path)
    lines = list(dict.fromkeys(data["line"]))  # one per area row (names may repeat)
    areas = data.drop_duplicates("line").set_index("line").loc[lines, "area_name"].tolist()
    flags = dict(zip(data["period"], data["flag"], strict=False))
    periods = meta["periods"]
    wide = data.pivot(index="line", columns="period", values="value").loc[lines, periods]
    vals = [[None if math.isnan(v) else float(v) for v in row] for row in wide.to_numpy()]
    return {
        "database": {"id": "str:database:CILIF_REL", "label": "Children in Low Income Families"},
        "measures": [{"uri": "str:count:CILIF_REL:V_F_CILIF_REL", "label": "Number of children"}],
        "fields": [
            {"uri": "str:field:CILIF_REL:V_F_CILIF_REL:GB_COA", "label": geo_label,
             "items": [{"type": "RecordType", "labels": [a],
                        "uris": [f"str:value:CILIF_REL:V_F_CILIF_REL:GB_COA:X:{i}"]}
                       for i, a in enumerate(areas)]},
            {"uri": "str:field:CILIF_REL:F_CILIF_DATE:DATE_NAME", "label": date_label,
             "items": [{"type": "RecordType",
                        "labels": [p + (f" ({flags[p]})" if flags.get(p) else "")],
                        "uris": [f"str:value:CILIF_REL:F_CILIF_DATE:DATE_NAME:C:{p}"]}
                       for p in periods]},
        ],
        "cubes": {"str:count:CILIF_REL:V_F_CILIF_REL": {"values": vals}},
    }


def test_statxplore_cube_to_export_read_by_loader(tmp_path, server, shared_data):
    from nbdid.data_prep.statxplore import read_statxplore

    src = shared_data / "dwp_statxplore" / "children_relative_low_income_msoa_14-22_headerstripped.csv"
    cube = _cube_from_export(src, "Year", "National - Regional - LA - OAs (GB)")
    seen = []

    def table(req):
        seen.append(req)
        if req.headers.get("APIKey") != "k3y":
            return 401, {"Content-Type": "application/json"}, b'{"message": "bad key"}'
        return 200, {"Content-Type": "application/json"}, json.dumps(cube).encode()

    server.add(sx.TABLE_URL, table)
    s = _settings(tmp_path, server, statxplore_key="k3y")
    rep = sx.cilif("E02000001,E02000002", "2014,2015,2016,2017,2018,2019,2020,2021",
                   tmp_path / "sx", settings=s)
    body = json.loads(seen[0].body)
    assert body["database"] == "str:database:CILIF_REL"
    gf = "str:field:CILIF_REL:V_F_CILIF_REL:GB_COA"
    assert body["recodes"][gf]["map"][0] == [
        "str:value:CILIF_REL:V_F_CILIF_REL:GB_COA:V_C_MASTERGEOG11_MSOA_TO_LA:E02000001"]
    out = Path(rep.files[0]["path"])
    got, gmeta = read_statxplore(out)
    want, wmeta = read_statxplore(src)
    pd.testing.assert_frame_equal(got.drop(columns="line"), want.drop(columns="line"))
    assert gmeta["periods"] == wmeta["periods"] and gmeta["measure"] == "Number of children"
    assert "k3y" not in (tmp_path / "cache" / "manifest.json").read_text()
    assert "k3y" not in (tmp_path / "sx" / "nbdid-download.json").read_text()
    # wrong key: one line, says what to check
    with pytest.raises(DownloadError, match="refused the API key .*STATXPLORE_API_KEY"):
        sx.cilif("E02000003", "2014", tmp_path / "sx2",
                 settings=_settings(tmp_path, server, statxplore_key="wrong"))


def test_statxplore_missing_key_says_where_to_register(tmp_path, server, monkeypatch):
    monkeypatch.delenv("STATXPLORE_API_KEY", raising=False)
    with pytest.raises(InputError, match="free API key: register at https://stat-xplore"):
        sx.cilif("E02000001", "2014", tmp_path / "o", settings=_settings(tmp_path, server))
    assert main(["download", "cilif", "--areas", "E02000001", "--years", "2014",
                 "--out", str(tmp_path / "o"), "--mirror", server.url]) == 2
    assert not server.requests


def test_statxplore_benefit_combinations_split_and_cube_checks(tmp_path, server):
    areas = ["Hartlepool 001", "Hartlepool 002"]

    def table(req):
        q = json.loads(req.body)
        db = q["database"].split(":")[-1]
        dates = q["recodes"][q["dimensions"][1][0]]["map"]
        cube = {"database": {"label": db}, "measures": [{"uri": q["measures"][0],
                                                          "label": "People"}],
                "fields": [
                    {"uri": q["dimensions"][0][0], "label": "National - Regional - LA - OAs",
                     "items": [{"labels": [a], "uris": [f"x:{a}"]} for a in areas]
                     + [{"labels": ["Total"]}]},
                    {"uri": q["dimensions"][1][0], "label": "Quarter",
                     "items": [{"labels": [d[0][-6:]], "uris": d} for d in dates]},
                    {"uri": q["dimensions"][2][0], "label": "Out of work benefits",
                     "items": [{"labels": ["Out of work (1-7)"], "uris": []}]}],
                "cubes": {q["measures"][0]: {"values": [
                    [[10 * (i + 1) + j] for j in range(len(dates))] for i in range(3)]}}}
        return 200, {"Content-Type": "application/json"}, json.dumps(cube).encode()

    server.add(sx.TABLE_URL, table)
    s = _settings(tmp_path, server, statxplore_key="k")
    rep = sx.benefit_combinations("E02000001,E02000002", "201305,201805,201905,202105",
                                  tmp_path / "bc", settings=s)
    names = sorted(Path(f["path"]).name for f in rep.files)
    assert names == ["benefit_combinations_Ben_Com_201305-201805.csv",
                     "benefit_combinations_Ben_Com_New_201905-202105.csv"]
    from nbdid.data_prep.statxplore import read_statxplore

    data, meta = read_statxplore(tmp_path / "bc" / names[1])
    assert meta["periods"] == ["201905", "202105"] and meta["totals"] == {"201905": 30.0,
                                                                          "202105": 31.0}
    assert meta["filters"]["Out of work benefits"] == "Out of work (1-7)"
    assert data["value"].tolist() == [10.0, 20.0, 11.0, 21.0]
    with pytest.raises(DownloadError, match="3 fields with several values"):
        sx.write_export_csv({"fields": [{"uri": f"f{k}", "label": f"F{k}", "items": [
            {"labels": ["a"], "uris": ["u:a"]}, {"labels": ["b"], "uris": ["u:b"]}]}
            for k in range(3)], "cubes": {"m": {"values": [[[1, 2], [3, 4]]] * 2}}},
            tmp_path / "x.csv")


# ------------------------------------------------------------------------------------------
# ONS: lookups (ArcGIS), IMD, SAPE
# ------------------------------------------------------------------------------------------


def _arcgis(server, item: str, service: str, table: pd.DataFrame, *, offsets: bool):
    server.add(ons.ITEM_URL.format(item=item).split("?")[0],
               json.dumps({"id": item, "url": service}))
    layer = service + "/0"
    fields = [{"name": "FID", "type": "esriFieldTypeOID"}] + [
        {"name": c, "type": "esriFieldTypeString"} for c in table.columns]
    server.add(layer, json.dumps({"fields": fields, "objectIdField": "FID",
                                  "maxRecordCount": 2000,
                                  "advancedQueryCapabilities": {"supportsPagination": True}}))
    recs = [{"FID": i + 1, **{c: (None if pd.isna(v) else v) for c, v in r.items()}}
            for i, r in enumerate(table.to_dict("records"))]

    def query(req):
        q = req.query
        if q.get("returnCountOnly") == "true":
            return 200, {}, json.dumps({"count": len(recs)}).encode()
        if "resultOffset" in q:
            if not offsets:
                return 200, {}, json.dumps({"error": {"code": 400, "message":
                                                      "Pagination is not supported."}}).encode()
            a = int(q["resultOffset"])
            page = recs[a:a + int(q["resultRecordCount"])]
            more = a + len(page) < len(recs)
        else:
            last = int(q["where"].split(">")[1])
            page = [r for r in recs if r["FID"] > last][:2000]
            more = True
        return 200, {}, json.dumps({"features": [{"attributes": r} for r in page],
                                    "exceededTransferLimit": more}).encode()

    server.add(layer + "/query", query)


def test_ons_lookup_paged_and_read_by_loader(tmp_path, server, shared_data):
    from nbdid.data_prep.lookups import read_lookup

    src = shared_data / "ons_lookups" / "LSOA11_to_WD19_LAD19_Lookup_EW.csv"
    table = pd.read_csv(src, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    table = table[[c for c in table.columns if c.upper() not in ("FID", "OBJECTID")]]
    item = ons.LOOKUPS["lsoa11-wd19"][0]
    service = ("https://services1.arcgis.com/ESMARspQHYMw9BZ9/arcgis/rest/services/"
               "LSOA11_WD19_LAD19_EW_LU/FeatureServer")
    _arcgis(server, item, service, table, offsets=True)
    out = tmp_path / "lk"
    assert _cli(tmp_path, server, "lookup", "lsoa11-wd19", "--out", str(out)) == 0
    got = read_lookup(out / "LSOA11_WD19_LAD19_EW_LU.csv")
    want = read_lookup(src)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
    pages = [r for r in server.requests if "resultOffset" in r.query]
    assert len(pages) == math.ceil(len(table) / 2000)


def test_ons_lookup_objectid_fallback(tmp_path, server):
    table = pd.DataFrame({"LSOA11CD": [f"E01{i:06d}" for i in range(4500)],
                          "LSOA11NM": [f"Somewhere {i // 4:03d}{'ABCD'[i % 4]}"
                                       for i in range(4500)]})
    item = "0123456789abcdef0123456789abcdef"
    _arcgis(server, item, "https://services1.arcgis.com/x/arcgis/rest/services/LSOA11_NM/"
            "FeatureServer", table, offsets=False)
    rep = ons.lookup(None, tmp_path / "o", item=item, settings=_settings(tmp_path, server))
    assert rep.files[0]["paging"] == "objectid" and rep.files[0]["rows"] == 4500
    got = pd.read_csv(tmp_path / "o" / "LSOA11_NM.csv", dtype=str)
    assert got["LSOA11CD"].tolist() == table["LSOA11CD"].tolist()
    assert list(got.columns) == ["FID", "LSOA11CD", "LSOA11NM"]


def test_imd_second_url_and_loader(tmp_path, server):
    from nbdid.data_prep.imd import read_imd

    header = ("LSOA code (2011),LSOA name (2011),Local Authority District code (2019),"
              "Local Authority District name (2019),Index of Multiple Deprivation (IMD) Score,"
              "Index of Multiple Deprivation (IMD) Rank (where 1 is most deprived),"
              "Total population: mid 2015 (excluding prisoners)\n")
    body = header + "".join(f"E01{i:06d},X {i},E06000001,H,{10 + i / 10:.1f},{i + 1},1500\n"
                            for i in range(200))
    server.add(ons.IMD_URLS[1], body.encode("utf-8-sig"))
    server.add(ons.IMD_URLS[0], "<html>moved</html>")  # served but not the CSV: refused
    with pytest.raises(DownloadError, match="LSOA code"):
        ons.imd(tmp_path / "bad", urls=ons.IMD_URLS[:1], settings=_settings(tmp_path, server))
    rep = ons.imd(tmp_path / "imd", urls=[ons.IMD_URLS[1]],
                  settings=_settings(tmp_path, server))
    df = read_imd(rep.files[0]["path"])
    assert len(df) == 200 and df["rank"].tolist() == list(range(1, 201))


def _sape_workbook(year: int, n: int = 6) -> tuple[bytes, dict[str, list[int]]]:
    openpyxl = pytest.importorskip("openpyxl")

    wb = openpyxl.Workbook()
    wb.active.title = "Contents"
    ws = wb.create_sheet(f"Mid-{year} Persons")
    ws.append([f"Mid-{year} Population Estimates for Lower Layer Super Output Areas in "
               "England and Wales by Single Year of Age and Sex"])
    ws.append(["National Statistics"])
    ws.append([])
    ws.append([])
    ws.append(["LSOA Code", "LSOA Name", "LA Code (2020 boundaries)", "All Ages",
               *range(90), "90+"])
    truth = {}
    for i in range(n):
        ages = [(i + 3 * k) % 25 for k in range(91)]
        code = f"E01{i:06d}"
        truth[code] = ages
        ws.append([code, f"Area {i}", "E06000001", sum(ages), *ages])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue(), truth


def test_sape_workbooks_xlsx_and_zip(tmp_path, server):
    from nbdid.data_prep.population import read_sape

    x20, t20 = _sape_workbook(2020)
    server.add(ons.SAPE_BASE + ons.SAPE_EDITIONS[2020], x20, query=True)
    x19, t19 = _sape_workbook(2019, n=4)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("SAPE22DT2-mid-2019-lsoa-syoa-estimates-unformatted.xlsx", x19)
    server.add(ons.SAPE_BASE + ons.SAPE_EDITIONS[2019], zbuf.getvalue(), query=True)
    out = tmp_path / "sape"
    assert _cli(tmp_path, server, "sape", "--years", "2019,2020", "--out", str(out)) == 0
    for year, truth in ((2019, t19), (2020, t20)):
        df = read_sape(out / f"sape_mid{year}_lsoa_syoa.csv")
        assert set(df["year"]) == {year} and len(df) == len(truth)
        for code, ages in truth.items():
            r = df.set_index("area").loc[code]
            assert [r[f"age_{k}"] for k in range(90)] + [r["age_90plus"]] == ages
            assert r["all_ages"] == sum(ages)
    with pytest.raises(InputError, match="no known SAPE workbook for mid-2009"):
        ons.sape("2009", out, settings=_settings(tmp_path, server))
