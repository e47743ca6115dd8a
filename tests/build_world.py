"""The publishers' hosts for ``nbdid build`` tests, played by :mod:`mirror_server`.

:class:`StudyWorld` registers on a :class:`MirrorServer` every file ``nbdid build --study``
asks for, at the publishers' paths:

* REAL extracts from ``../shared/data`` (read, never copied into the project): the ONS
  LSOA (2011) to ward 2017 and 2019 lookups (the rows of the study's local authorities,
  for speed), served as ArcGIS FeatureServer pages; the
  real MSOA codes and names (MSOA (2011) to ward 2019 lookup); the real Stat-Xplore
  children-in-low-income export by MSOA, served as the JSON cubes of the table API;
* TEST DATA written here in each publisher's layout, small and deterministic, for what
  the extracts lack: police.uk archive zips of street files, NOMIS CSV pages
  (population, households, working-age client group, business counts), Stat-Xplore
  benefit-combination cubes, HM Land Registry yearly Price Paid files and an NSPL zip.
  Every generated name carries ``TEST`` where the layout has a free-text field.

Only the LSOAs of the report's 58 wards get generated rows (study-era and 2019 areas).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd

from nbdid.download import land_registry, nomis, ons, police
from nbdid.download import statxplore as sx

ARCGIS = "https://services1.arcgis.com/ESMARspQHYMw9BZ9/arcgis/rest/services/"
TEST_ITEM_NSPL = ons.NSPL_ITEM

GMP_LAST = "2019-07"
"""Greater Manchester Police published no street files after July 2019."""

CRIME_TYPES = ("Anti-social behaviour", "Burglary", "Criminal damage and arson",
               "Violent crime", "Other theft", "Vehicle crime", "Shoplifting")
WACG_ITEMS = ("Total claimants", "Job seekers", "ESA and incapacity benefits", "Lone parents",
              "Carers", "Others on income related benefits", "Disabled", "Bereaved")
WACG_VALUES = {"Job seekers": 40, "ESA and incapacity benefits": 80, "Lone parents": 20,
               "Carers": 15, "Others on income related benefits": 5, "Disabled": 10,
               "Bereaved": 2}


def _h(*parts: object) -> int:
    """A deterministic pseudo-random integer from ``parts``."""
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def _csv_bytes(header: list[str], rows: list[list[Any]], *, quote_all: bool = True) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
                   lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def nomis_pages(header: list[str], rows_for, *, cap: int = 25_000):
    """A NOMIS data endpoint: pages of at most ``cap`` rows with RECORD_OFFSET/RECORD_COUNT."""
    cache: dict[str, list[list[Any]]] = {}

    def handle(req):
        key = json.dumps({k: v for k, v in req.query.items() if k != "RecordOffset"},
                         sort_keys=True)
        if key not in cache:
            cache[key] = rows_for(req.query)
        rows = cache[key]
        off = int(req.query.get("RecordOffset", 0))
        body = [[*r, i, len(rows)] for i, r in enumerate(rows[off:off + cap], start=off)]
        return 200, {"Content-Type": "text/csv"}, _csv_bytes(
            [*header, "RECORD_OFFSET", "RECORD_COUNT"], body)

    return handle


def arcgis(server, item: str, service: str, table: pd.DataFrame, *, page: int = 2000) -> None:
    """Serve ``table`` as the ArcGIS Hub item ``item`` (FeatureServer with offset paging)."""
    server.add(ons.ITEM_URL.format(item=item).split("?")[0],
               json.dumps({"id": item, "url": service, "title": service.rsplit("/", 2)[-2]}))
    layer = service + "/0"
    fields = [{"name": "FID", "type": "esriFieldTypeOID"}] + [
        {"name": c, "type": "esriFieldTypeString"} for c in table.columns]
    server.add(layer, json.dumps({"fields": fields, "objectIdField": "FID",
                                  "maxRecordCount": page,
                                  "advancedQueryCapabilities": {"supportsPagination": True}}))
    recs = [{"FID": i + 1, **{c: (None if pd.isna(v) else v) for c, v in r.items()}}
            for i, r in enumerate(table.to_dict("records"))]

    def query(req):
        q = req.query
        if q.get("returnCountOnly") == "true":
            return 200, {}, json.dumps({"count": len(recs)}).encode()
        a = int(q["resultOffset"])
        part = recs[a:a + int(q["resultRecordCount"])]
        return 200, {}, json.dumps({"features": [{"attributes": r} for r in part],
                                    "exceededTransferLimit": a + len(part) < len(recs)}).encode()

    server.add(layer + "/query", query)


def _lookup_table(path: Path) -> pd.DataFrame:
    t = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    return t[[c for c in t.columns if c.upper() not in ("FID", "OBJECTID")]]


class StudyWorld:
    """Every publisher file ``nbdid build --study`` needs, on a mirror (module docstring)."""

    def __init__(self, server, shared: Path, *, latest_archive: str = "2021-06") -> None:
        from nbdid.data_prep.lookups import read_lookup
        from nbdid.data_prep.wards import normalise_la, resolve_geography
        from nbdid.workflow.build import LA_FORCES

        self.server = server
        self.shared = shared
        self.latest_archive = latest_archive
        from nbdid.data_prep.published import study_wards

        lk = shared / "ons_lookups"
        # the real lookups, reduced to the rows of the study's local authorities (speed)
        las = {normalise_la(x) for x in study_wards()["la"]} | {"dorset"}
        self.wd17 = _lookup_table(lk / "LSOA11_to_WD17_LAD17_Lookup_EW.csv")
        self.wd19 = _lookup_table(lk / "LSOA11_to_WD19_LAD19_Lookup_EW.csv")
        self.wd17 = self.wd17[self.wd17["LAD17NM"].map(normalise_la).isin(las)]
        self.wd19 = self.wd19[self.wd19["LAD19NM"].map(normalise_la).isin(las)]
        msoa = pd.read_csv(lk / "MSOA11_to_WD19_LAD19_Lookup_EW.csv", dtype=str,
                           encoding="utf-8-sig")
        self.msoa_code = dict(zip(msoa["MSOA11NM"], msoa["MSOA11CD"], strict=True))
        self.msoa_name = {v: k for k, v in self.msoa_code.items()}
        # the LSOAs of the 58 wards, study era and 2019 (a superset of what any build reads)
        n17 = read_lookup(lk / "LSOA11_to_WD17_LAD17_Lookup_EW.csv")
        n19 = read_lookup(lk / "LSOA11_to_WD19_LAD19_Lookup_EW.csv")
        n17 = n17[n17["area"].isin(set(self.wd17["LSOA11CD"]))]
        n19 = n19[n19["area"].isin(set(self.wd19["LSOA11CD"]))]
        amaps = [resolve_geography(n19, boundaries=b, lookups={"WD17": n17}).area_map()
                 for b in ("study", "lookup")]
        amap = pd.concat(amaps, ignore_index=True).drop_duplicates("area")
        self.lsoas = sorted(amap["area"])
        names = dict(zip(self.wd19["LSOA11CD"], self.wd19["LSOA11NM"], strict=True))
        self.lsoa_name = {a: names[a] for a in self.lsoas}
        self.force = {r.area: LA_FORCES[normalise_la(r.la_name)] for r in amap.itertuples()}
        self.msoas = sorted({self.msoa_code[n[:-1].strip()] for n in self.lsoa_name.values()})
        self.requests_at_start = 0

    # -- ages and denominators ---------------------------------------------------------------
    def ages(self, lsoa: str, year: int) -> list[int]:
        """Single-year-of-age counts 0 ... 90+ of a test LSOA (about 2,100 people)."""
        f = 0.85 + (_h(lsoa) % 30) / 100 + 0.002 * (year - 2011)
        base = [35] * 20 + [25] * 45 + [10] * 25 + [5]
        return [int(round(b * f)) for b in base]

    def working_age(self, lsoa: str, year: int) -> int:
        return sum(self.ages(lsoa, year)[16:65])

    # -- registration ------------------------------------------------------------------------
    def register(self, parts: tuple[str, ...] = ("lookups", "population", "police", "dwp",
                                                  "nomis", "prices")) -> StudyWorld:
        for p in parts:
            getattr(self, f"_register_{p}")()
        return self

    def _register_lookups(self) -> None:
        arcgis(self.server, ons.LOOKUPS["lsoa11-wd17"][0], ARCGIS + "LSOA11_WD17_EW_LU/FeatureServer",
               self.wd17)
        arcgis(self.server, ons.LOOKUPS["lsoa11-wd19"][0],
               ARCGIS + "LSOA11_WD19_LAD19_EW_LU/FeatureServer", self.wd19)
        # OA-LSOA-MSOA: real LSOA and MSOA codes and names; OA codes are TEST codes
        rows = []
        for i, r in enumerate(self.wd19.itertuples(index=False)):
            mname = r.LSOA11NM[:-1].strip()
            rows.append({"OA11CD": f"E0{9_000_000 + i:08d}", "LSOA11CD": r.LSOA11CD,
                         "LSOA11NM": r.LSOA11NM, "MSOA11CD": self.msoa_code.get(mname, ""),
                         "MSOA11NM": mname})
        arcgis(self.server, ons.LOOKUPS["oa11-lsoa11-msoa11"][0],
               ARCGIS + "OA11_LSOA11_MSOA11_LAD11_EW_LUv2/FeatureServer", pd.DataFrame(rows))

    def _register_population(self) -> None:
        ages = ["200"] + [str(101 + k) for k in range(91)]

        def pop_rows(q):
            year = int(q["date"])
            out = []
            for a in self.lsoas:
                vals = self.ages(a, year)
                for c in ages:
                    v = sum(vals) if c == "200" else vals[int(c) - 101]
                    out.append([str(year), self.lsoa_name[a], a, c, v])
            return out

        self.server.add(f"{nomis.API}/dataset/NM_2010_1.data.csv", nomis_pages(
            ["DATE_NAME", "GEOGRAPHY_NAME", "GEOGRAPHY_CODE", "C_AGE", "OBS_VALUE"], pop_rows))
        search = {"structure": {"keyfamilies": {"keyfamily": [
            {"id": "NM_605_1", "name": {"value": "KS105EW - Household composition"}}]}}}
        self.server.add(f"{nomis.API}/dataset/def.sdmx.json", json.dumps(search))
        self.server.add(f"{nomis.API}/dataset/NM_605_1.data.csv", nomis_pages(
            ["DATE_NAME", "GEOGRAPHY_NAME", "GEOGRAPHY_CODE", "RURAL_URBAN_NAME", "CELL_NAME",
             "MEASURES_NAME", "OBS_VALUE"],
            lambda q: [["2011", self.lsoa_name[a], a, "Total",
                        "All categories: Household composition", "Value",
                        600 + _h("hh", a) % 300] for a in self.lsoas]))

    # -- police.uk ---------------------------------------------------------------------------
    def street_file(self, month: str, force: str) -> bytes:
        header = ["Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude",
                  "Location", "LSOA code", "LSOA name", "Crime type", "Last outcome category",
                  "Context"]
        rows = []
        for a in self.lsoas:
            if self.force[a] != force:
                continue
            for k in range(3 + _h(a, month) % 6):
                t = CRIME_TYPES[_h(a, month, k) % len(CRIME_TYPES)]
                cid = "" if t == CRIME_TYPES[0] else hashlib.sha256(
                    f"{a}{month}{k}".encode()).hexdigest()
                rows.append([cid, month, f"{force} TEST", f"{force} TEST", "-1.0", "52.0",
                             "On or near TEST street", a, self.lsoa_name[a], t,
                             "Under investigation" if cid else "", ""])
        rows.append(["", month, "TEST", "TEST", "", "", "No location", "", "",
                     "Other theft", "", ""])  # a row without an LSOA, as police.uk has
        return _csv_bytes(header, rows, quote_all=False).replace(b"\r\n", b"\n")

    def police_months(self, labels=("2010/11", "2020/21"), year_type="financial") -> list[str]:
        from nbdid.data_prep.police import period_months

        return [m for lab in labels for m in period_months(lab, year_type) if m >= "2010-12"]

    def _register_police(self, months: list[str] | None = None) -> None:
        from nbdid.workflow.build import _runs

        months = months or self.police_months()
        forces = sorted(set(self.force.values()))
        # nbdid build asks for each run of consecutive months separately
        plans = [p for a, b in _runs(months) for p in police.plan_archives(
            police.month_range(a, b), latest=self.latest_archive)]
        for plan in plans:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                for m in plan.months:
                    for f in forces:
                        if f == "greater-manchester" and m > GMP_LAST:
                            continue
                        zf.writestr(f"{m}/{m}-{f}-street.csv", self.street_file(m, f))
                        zf.writestr(f"{m}/{m}-{f}-outcomes.csv", b"Crime ID,Month\n")
            self.server.add(police.ARCHIVE_URL.format(archive=plan.archive), buf.getvalue())

    # -- DWP (Stat-Xplore) and NOMIS client groups ---------------------------------------------
    def _register_dwp(self) -> None:
        from nbdid.data_prep.statxplore import read_statxplore

        cilif, meta = read_statxplore(self.shared / "dwp_statxplore" /
                                      "children_relative_low_income_msoa_14-22_headerstripped.csv")
        real = {(r.area_name, r.period): r.value for r in cilif.itertuples()}

        def table(req):
            if not req.headers.get("APIKey"):
                return 401, {"Content-Type": "application/json"}, b'{"message": "no key"}'
            q = json.loads(req.body)
            gf, df_ = q["dimensions"][0][0], q["dimensions"][1][0]
            codes = [m[0].rsplit(":", 1)[-1] for m in q["recodes"][gf]["map"]]
            dates = [m[0].rsplit(":", 1)[-1] for m in q["recodes"][df_]["map"]]
            db = q["database"].split(":")[-1]
            names = [self.msoa_name[c] for c in codes]
            if db == "CILIF_REL":
                labels = [f"{d}/{(int(d) + 1) % 100:02d}" for d in dates]
                vals = [[_num(real.get((n, lab))) for lab in labels] for n in names]
            else:  # benefit combinations: TEST values, about 12% of the working-age people
                labels = [f"{['Feb', 'May', 'Aug', 'Nov'][(int(d[4:]) - 2) // 3]}-{d[2:4]}"
                          for d in dates]
                vals = [[float(sum(self.working_age(a, int(d[:4])) for a in self._lsoas_of(n))
                               * (0.10 + (_h(n, d) % 5) / 100) // 1) for d in dates]
                        for n in names]
            fields = [
                {"uri": gf, "label": "National - Regional - LA - OAs",
                 "items": [{"labels": [n], "uris": [f"{gf}:X:{c}"]} for n, c in zip(
                     names, codes, strict=True)]},
                {"uri": df_, "label": "Year" if db == "CILIF_REL" else "Quarter",
                 "items": [{"labels": [lab], "uris": [f"{df_}:{d}"]} for lab, d in zip(
                     labels, dates, strict=True)]},
            ]
            cube_vals: Any = vals
            if len(q["dimensions"]) > 2:
                fields.append({"uri": q["dimensions"][2][0], "label": "Out of work benefits",
                               "items": [{"labels": ["Out of work (1-7)"], "uris": []}]})
                cube_vals = [[[v] for v in row] for row in vals]
            cube = {"database": {"label": db}, "measures": [{"uri": q["measures"][0],
                                                             "label": "Number"}],
                    "fields": fields, "cubes": {q["measures"][0]: {"values": cube_vals}}}
            return 200, {"Content-Type": "application/json"}, json.dumps(cube).encode()

        self.server.add(sx.TABLE_URL, table)
        base = f"{nomis.API}/dataset/NM_105_1"
        self.server.add(base + ".def.sdmx.json", json.dumps({"structure": {"keyfamilies": {
            "keyfamily": [{"id": "NM_105_1", "name": {"value": "DWP benefits - working age "
                                                                "client group"},
                           "components": {"dimension": [{"conceptref": c} for c in (
                               "GEOGRAPHY", "SEX", "AGE", "ITEM", "MEASURES")]}}]}}}))

        def codes(*pairs):
            return json.dumps({"structure": {"codelists": {"codelist": [{"code": [
                {"value": v, "description": {"value": d}} for v, d in pairs]}]}}})

        self.server.add(base + "/sex.def.sdmx.json", codes((5, "Male"), (6, "Female"), (7, "Total")))
        self.server.add(base + "/age.def.sdmx.json", codes((0, "All ages"), (1, "16-24")))

        def wacg_rows(q):
            out = []
            for d in q["date"].split(","):
                label = pd.Timestamp(d + "-01").strftime("%B %Y")
                for a in self.lsoas:
                    f = 1 + (_h("w", a) % 40) / 100
                    for k, item in enumerate(WACG_ITEMS):
                        v = (sum(round(x * f) for x in WACG_VALUES.values()) if k == 0
                             else round(WACG_VALUES[item] * f))
                        out.append([label, self.lsoa_name[a], a, k, item, "Total", "All ages",
                                    "Value", v, "Normal Value"])
            return out

        self.server.add(base + ".data.csv", nomis_pages(
            ["DATE_NAME", "GEOGRAPHY_NAME", "GEOGRAPHY_CODE", "ITEM", "ITEM_NAME", "SEX_NAME",
             "AGE_NAME", "MEASURES_NAME", "OBS_VALUE", "OBS_STATUS_NAME"], wacg_rows))

    def _lsoas_of(self, msoa_name: str) -> list[str]:
        return [a for a, n in self.lsoa_name.items() if n[:-1].strip() == msoa_name]

    def _register_nomis(self) -> None:
        def rows(q):
            out = []
            for y in q["date"].split(","):
                for c in self.msoas:
                    v = 5 * (10 + _h("bc", c, y) % 60)
                    out.append([y, self.msoa_name[c], c, "Total", "Total", "Total", "Value", v,
                                "Normal Value"])
            return out

        self.server.add(f"{nomis.API}/dataset/NM_141_1.data.csv", nomis_pages(
            ["DATE_NAME", "GEOGRAPHY_NAME", "GEOGRAPHY_CODE", "INDUSTRY_NAME",
             "EMPLOYMENT_SIZEBAND_NAME", "LEGAL_STATUS_NAME", "MEASURES_NAME", "OBS_VALUE",
             "OBS_STATUS_NAME"], rows))

    # -- HM Land Registry and the postcode directory -------------------------------------------
    def postcode(self, i: int, k: int) -> str:
        return f"ZT{i // 100 + 1} {k}{chr(65 + i % 26)}{chr(65 + (i // 26) % 4)}"

    def _register_prices(self, years=(*range(2007, 2014), *range(2018, 2025))) -> None:
        for y in years:
            rows = []
            for i, a in enumerate(self.lsoas):
                for k in range(2):
                    h = _h("ppd", a, y, k)
                    price = int(95_000 * math.exp(0.03 * (y - 2007) + (h % 400 - 200) / 1000))
                    rows.append([f"{{{h:08X}-TEST-0000-0000-{i:012d}}}", price,
                                 f"{y}-{1 + h % 12:02d}-{1 + h % 28:02d} 00:00",
                                 self.postcode(i, k), "T", "N", "F", str(k + 1), "", "TEST ROAD",
                                 "", "TESTTOWN", "TEST", "TEST", "A", "A"])
            buf = io.StringIO()
            csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
            self.server.add(land_registry.year_urls(y)[0], buf.getvalue().encode())
        nspl = io.StringIO()
        w = csv.writer(nspl, lineterminator="\r\n")
        w.writerow(["pcd", "pcd2", "pcds", "dointr", "doterm", "usertype", "oseast1m",
                    "osnrth1m", "lsoa11", "msoa11"])
        for i, a in enumerate(self.lsoas):
            for k in range(2):
                pc = self.postcode(i, k)
                w.writerow([pc.replace(" ", ""), pc, pc, "198001", "", "0", "", "", a, ""])
        zbuf = io.BytesIO()
        with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("Data/NSPL_FEB_2020_UK.csv", nspl.getvalue())
            zf.writestr("Data/multi_csv/NSPL_FEB_2020_UK_ZT.csv", nspl.getvalue())
            zf.writestr("Documents/README.txt", "TEST postcode directory\n")
        self.server.add(ons.ITEM_URL.format(item=TEST_ITEM_NSPL).split("?")[0],
                        json.dumps({"id": TEST_ITEM_NSPL, "type": "CSV Collection",
                                    "title": "National Statistics Postcode Lookup (TEST)"}))
        self.server.add(ons.DATA_URL.format(item=TEST_ITEM_NSPL), zbuf.getvalue())


def _num(v: Any) -> float | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return float(v)
