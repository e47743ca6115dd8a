"""Benchmark of the loaders at national scale (not a test): peak memory and time.

Run ``python bench/bench_build_memory.py --scale 0.05`` (a twentieth of the national
row counts, a few minutes) or ``--scale 1`` (national size: about 80 million police.uk
rows in 5,676 street files and a 4 GB ``pp-complete.csv``; about 20 GB of disk and
tens of minutes).

1. *Generate* publisher-format files in a temporary folder (removed afterwards unless
   ``--keep``): street CSVs ``YYYY-MM/YYYY-MM-<force>-street.csv`` for 43 forces x 132
   months (2010-12 .. 2021-11) with the 12 police.uk columns and realistic rows per
   file (each force's share of the English LSOAs of the shared WD19 lookup, ~606,000
   crimes a month nationally at scale 1, ~30 % anti-social behaviour), and a headerless
   16-column quoted ``pp-complete.csv`` (~31 million sales 1995-2024 at scale 1, ~137
   bytes a row) with a postcode directory placing ~1.5 million postcodes in the English
   LSOAs.
2. *Run* each loader for **every English ward** of the WD19 lookup in a fresh process
   and read that process's peak resident memory (``VmHWM`` of ``/proc/self/status``;
   ``ru_maxrss`` would include the generating parent's memory, which a child inherits
   across ``exec`` on Linux):
   ``ingest_police`` (streamed, one file at a time) and ``ingest_land_registry``
   (streamed in 32 MB batches), plus, where it fits in memory (``--in-memory-max-rows``),
   the old in-memory paths (``count_street_crime`` + ``build_panel``; ``read_ppd`` +
   ``build_price_panel``) on the same files, checked to give the same counts.

3. *NOMIS* (``--what nomis``): serve one year of small-area population estimates
   (``NM_2010_1``, LSOA x 92 ages; 3,197,276 rows nationally, 128 guest pages of 25,000
   rows; ``--nomis-rows`` sets the size, default the national size times ``--scale``)
   from a local mirror in a separate process, and run ``nbdid.download.nomis.population``
   through it in a fresh process with a fresh cache (download, page checks, SAPE pivot,
   file written).  ``--nomis-old PATH`` also runs an older ``download/nomis.py`` (e.g.
   ``git show <commit>:download/nomis.py > /tmp/nomis_old.py``) the same way, for a
   before/after comparison of peak memory and of the file written.

It prints each measurement and the ratios (in-memory / streamed).  Target: streamed
peak memory under 2 GB at scale 1.  Needs the shared ONS lookups (``../shared/data``)
for police.uk and Price Paid.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NBDID_SHARED", REPO.parent / "shared")) / "data"
LOOKUP19 = SHARED / "ons_lookups" / "LSOA11_to_WD19_LAD19_Lookup_EW.csv"

N_FORCES = 43
MONTHS = 132
FIRST = (2010, 12)
CRIMES_PER_MONTH = 606_000  # ~80 million over 132 months (England and Wales)
PPD_ROWS = 31_000_000
NOMIS_POPULATION_ROWS = 3_197_276  # 34,753 LSOAs x 92 ages (all ages, 0 ... 89, 90+)
POSTCODES = 1_500_000

CRIME_TYPES = [  # (type, share) roughly as police.uk 2013-2021
    ("Anti-social behaviour", 0.30), ("Violence and sexual offences", 0.22),
    ("Criminal damage and arson", 0.08), ("Burglary", 0.06), ("Vehicle crime", 0.06),
    ("Other theft", 0.07), ("Shoplifting", 0.05), ("Public order", 0.05), ("Drugs", 0.03),
    ("Other crime", 0.02), ("Theft from the person", 0.015), ("Robbery", 0.01),
    ("Bicycle theft", 0.01), ("Possession of weapons", 0.005),
]
OUTCOMES = ["Investigation complete; no suspect identified", "Unable to prosecute suspect",
            "Under investigation", "Status update unavailable", "Offender given a caution", ""]
STREETS = ["HIGH STREET", "STATION ROAD", "CHURCH LANE", "MILL ROAD", "THE GREEN",
           "VICTORIA ROAD", "PARK AVENUE", "KINGS ROAD", "MANOR CLOSE", "WOODLAND WAY"]
TOWNS = ["LONDON", "BIRMINGHAM", "LIVERPOOL", "LEEDS", "SHEFFIELD", "BRISTOL", "HULL",
         "MANCHESTER", "NEWCASTLE UPON TYNE", "NOTTINGHAM", "LEICESTER", "PLYMOUTH"]


# ----------------------------------------------------------------------------------------
# generation
# ----------------------------------------------------------------------------------------


def _english_lsoas() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import pandas as pd

    lk = pd.read_csv(LOOKUP19, dtype=str, encoding="utf-8-sig")
    lk = lk[lk["LSOA11CD"].str.startswith("E01")].sort_values(["LAD19CD", "LSOA11CD"])
    return (lk["LSOA11CD"].to_numpy(dtype=object), lk["LSOA11NM"].to_numpy(dtype=object),
            lk["LAD19CD"].to_numpy(dtype=object))


def _hex(rng: np.random.Generator, n: int, nbytes: int) -> np.ndarray:
    raw = rng.bytes(n * nbytes).hex().encode()
    return np.frombuffer(raw, dtype=f"S{2 * nbytes}").astype(str)


def generate_police(root: Path, scale: float, rng: np.random.Generator) -> dict:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    codes, names, las = _english_lsoas()
    # forces: contiguous blocks of local authorities, 43 of them
    uniq = np.unique(las)
    force_of_la = {la: i * N_FORCES // len(uniq) for i, la in enumerate(uniq)}
    force = np.array([force_of_la[x] for x in las])
    force_names = [f"force{i:02d}-police" for i in range(N_FORCES)]
    types = [t for t, _ in CRIME_TYPES]
    p = np.array([s for _, s in CRIME_TYPES])
    p /= p.sum()
    ids = _hex(rng, 20_000, 32)
    n_rows = 0
    t0 = time.perf_counter()
    y, m = FIRST
    for _ in range(MONTHS):
        month = f"{y}-{m:02d}"
        folder = root / month
        folder.mkdir(parents=True, exist_ok=True)
        for f in range(N_FORCES):
            idx = np.flatnonzero(force == f)
            n = max(1, int(CRIMES_PER_MONTH * scale * len(idx) / len(codes)))
            pick = idx[rng.integers(0, len(idx), n)]
            t = rng.choice(len(types), n, p=p)
            asb = t == 0
            no_loc = rng.random(n) < 0.02
            crime_id = np.where(asb, "", ids[rng.integers(0, len(ids), n)])
            lsoa = np.where(no_loc, "", codes[pick])
            table = pa.table({
                "Crime ID": crime_id.astype(str),
                "Month": np.full(n, month),
                "Reported by": np.full(n, force_names[f]),
                "Falls within": np.full(n, force_names[f]),
                "Longitude": np.round(rng.uniform(-3, 1, n), 6).astype(str),
                "Latitude": np.round(rng.uniform(50.5, 55, n), 6).astype(str),
                "Location": np.full(n, "On or near Shopping Area"),
                "LSOA code": lsoa.astype(str),
                "LSOA name": np.where(no_loc, "", names[pick]).astype(str),
                "Crime type": np.array(types, dtype=object)[t].astype(str),
                "Last outcome category": np.where(asb, "", np.array(OUTCOMES)[
                    rng.integers(0, len(OUTCOMES), n)]).astype(str),
                "Context": np.full(n, ""),
            })
            target = folder / f"{month}-{force_names[f]}-street.csv"
            with target.open("wb") as fh:  # police.uk headers are not quoted
                fh.write((",".join(table.column_names) + "\n").encode())
                pcsv.write_csv(table, fh, write_options=pcsv.WriteOptions(
                    include_header=False, quoting_style="needed"))
            n_rows += n
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return {"rows": n_rows, "files": MONTHS * N_FORCES, "seconds": time.perf_counter() - t0,
            "bytes": sum(f.stat().st_size for f in root.rglob("*.csv"))}


def generate_land_registry(root: Path, scale: float, rng: np.random.Generator) -> dict:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    codes, _, _ = _english_lsoas()
    n_pc = max(1000, int(POSTCODES * scale))
    letters = np.array(list("ABCDEFGHJKLMNPRSTUWXYZ"))
    # unique synthetic postcodes: outward AA99, inward 9AA
    k = np.arange(n_pc)
    out_code = (letters[k % 22].astype(object) + letters[(k // 22) % 22] + (k // 484 % 100).astype(str))
    in_code = ((k // 48400) % 10).astype(str).astype(object) + letters[(k // 484000) % 22] + letters[(k // 10648000) % 22]
    pcs = (out_code + " " + in_code).astype(str)
    assert len(set(pcs)) == n_pc
    pc_lsoa = codes[rng.integers(0, len(codes), n_pc)]
    root.mkdir(parents=True, exist_ok=True)
    pcsv.write_csv(pa.table({"pcds": pcs, "lsoa11": pc_lsoa.astype(str)}), root / "nspl.csv")
    n_rows = max(1000, int(PPD_ROWS * scale))
    t0 = time.perf_counter()
    chunk = 1_000_000
    days = np.arange(np.datetime64("1995-01-01"), np.datetime64("2024-12-31"))
    opts = pcsv.WriteOptions(include_header=False, quoting_style="all_valid")
    with pcsv.CSVWriter(root / "pp-complete.csv", _ppd_schema(), write_options=opts) as w:
        for start in range(0, n_rows, chunk):
            n = min(chunk, n_rows - start)
            g = _hex(rng, n, 16)
            guid = np.char.upper(np.strings.add(np.strings.add("{", g), "}").astype(str))
            price = np.round(np.exp(rng.normal(12.0, 0.7, n))).clip(100, 5e7).astype("int64")
            day = rng.choice(days, n).astype("datetime64[D]").astype(str)
            cols = {
                "transaction_id": guid,
                "price": price.astype(str),
                "date": np.strings.add(day, " 00:00"),
                "postcode": pcs[rng.integers(0, n_pc, n)],
                "property_type": np.array(list("DSTFO"))[rng.integers(0, 5, n)],
                "old_new": np.array(list("NY"))[(rng.random(n) < 0.1).astype(int)],
                "duration": np.array(list("FL"))[(rng.random(n) < 0.2).astype(int)],
                "paon": rng.integers(1, 200, n).astype(str),
                "saon": np.full(n, ""),
                "street": np.array(STREETS)[rng.integers(0, len(STREETS), n)],
                "locality": np.full(n, ""),
                "town": np.array(TOWNS)[rng.integers(0, len(TOWNS), n)],
                "district": np.array(TOWNS)[rng.integers(0, len(TOWNS), n)],
                "county": np.array(TOWNS)[rng.integers(0, len(TOWNS), n)],
                "ppd_category": np.array(list("AB"))[(rng.random(n) < 0.05).astype(int)],
                "record_status": np.full(n, "A"),
            }
            w.write_table(pa.table({c: pa.array(v.astype(str)) for c, v in cols.items()},
                                   schema=_ppd_schema()))
    return {"rows": n_rows, "postcodes": n_pc, "seconds": time.perf_counter() - t0,
            "bytes": (root / "pp-complete.csv").stat().st_size}


def _ppd_schema():
    import pyarrow as pa

    from nbdid.data_prep.land_registry import PPD_COLUMNS

    return pa.schema([(c, pa.string()) for c in PPD_COLUMNS])


# ----------------------------------------------------------------------------------------
# measured runs (each in a fresh process)
# ----------------------------------------------------------------------------------------

CHILD = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import pandas as pd
from nbdid.data_prep.lookups import read_lookup
what, data, lookup, engine = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
lk = read_lookup(lookup)
eng = lk[lk["area"].str.startswith("E01")]
wards = eng.drop_duplicates("ward").sort_values("ward").reset_index(drop=True)
n = len(wards) - len(wards) % 2
wards = wards.iloc[:n]
design = pd.DataFrame({"ward": wards["ward"], "ward_name": wards["ward_name"],
                       "la": wards["la_name"], "group": ["nbi", "benchmark"] * (n // 2),
                       "pair": pd.array([i // 2 + 1 for i in range(n)], dtype="Int64")})
t0 = time.perf_counter()
if what == "police-stream":
    from nbdid.data_prep.police import ingest_police
    res = ingest_police(data, lookup, design=design, year_type="calendar",
                        partial_periods="keep", engine=engine)
    table, info = res.table, {"rows_read": res.report["rows_read"]}
elif what == "police-memory":
    from nbdid.data_prep.police import build_panel, count_street_crime, list_crime_files
    files, _ = list_crime_files(data)
    counts, info0 = count_street_crime(files)
    table, _ = build_panel(counts, info0, lk, design, year_type="calendar")
    info = {"rows_read": info0["rows_read"]}
elif what == "lr-stream":
    from nbdid.data_prep.land_registry import ingest_land_registry
    res = ingest_land_registry([f"{data}/pp-complete.csv"], f"{data}/nspl.csv", lookup=lk,
                               design=design, engine=engine)
    table, info = res.table, {"records_read": res.report["records_read"]}
elif what == "lr-memory":
    from nbdid.data_prep.land_registry import build_price_panel, read_postcodes, read_ppd
    from nbdid.data_prep.wards import resolve_geography
    pcs, _ = read_postcodes(f"{data}/nspl.csv")
    sales = read_ppd(f"{data}/pp-complete.csv")
    table, rep = build_price_panel(sales, pcs, design, lookup=lk)
    info = {"records_read": rep["records_read"]}
seconds = time.perf_counter() - t0
try:  # VmHWM: the peak of this process image (ru_maxrss keeps the parent's peak across exec)
    with open("/proc/self/status") as fh:
        peak = next(int(x.split()[1]) * 1024 for x in fh if x.startswith("VmHWM:"))
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
key = table.groupby(["period_label"])[["count" if "count" in table and table["count"].notna().any() else "n"]].sum()
print("RESULT " + json.dumps({"seconds": seconds, "peak_bytes": peak, "rows": len(table),
                               "wards": int(table["ward"].nunique()),
                               "totals": {str(k): int(v) for k, v in key.iloc[:, 0].items()},
                               **info}))
"""


NOMIS_SERVER = r"""
import csv, importlib.util, io, sys, time
spec = importlib.util.spec_from_file_location("nbdid_bench_mirror", sys.argv[1])
ms = importlib.util.module_from_spec(spec); sys.modules[spec.name] = ms
spec.loader.exec_module(ms)
from nbdid.download import nomis
n_lsoa = int(sys.argv[2])
AGES = ["200"] + [str(101 + k) for k in range(91)]
TOTAL = n_lsoa * len(AGES)
def value(lsoa, k):  # people of single year of age k (0 ... 90+) in an LSOA
    return (lsoa * 31 + k * 17) % 37 + 3
def handle(req):
    off = int(req.query.get("RecordOffset", 0))
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    w.writerow(["DATE_NAME", "GEOGRAPHY_NAME", "GEOGRAPHY_CODE", "C_AGE", "OBS_VALUE",
                "RECORD_OFFSET", "RECORD_COUNT"])
    for i in range(off, min(off + 25000, TOTAL)):
        lsoa, a = divmod(i, len(AGES))
        v = sum(value(lsoa, k) for k in range(91)) if a == 0 else value(lsoa, a - 1)
        w.writerow([req.query.get("date", "2012"), f"Somewhere {lsoa // 5:04d}{'ABCDE'[lsoa % 5]}",
                    f"E01{lsoa:06d}", AGES[a], v, i, TOTAL])
    return 200, {"Content-Type": "text/csv"}, buf.getvalue().encode()
s = ms.MirrorServer().start()
s.add(f"{nomis.API}/dataset/NM_2010_1.data.csv", handle)
print(s.url, flush=True)
sys.stdin.read()  # until the parent closes the pipe
"""

NOMIS_CHILD = r"""
import importlib.util, json, resource, sys, time
url, out, module = sys.argv[1], sys.argv[2], sys.argv[3]
from nbdid.download import DownloadSettings
if module == "current":
    from nbdid.download import nomis
else:
    spec = importlib.util.spec_from_file_location("nbdid_bench_nomis_old", module)
    nomis = importlib.util.module_from_spec(spec); sys.modules[spec.name] = nomis
    spec.loader.exec_module(nomis)
settings = DownloadSettings(cache_dir=out + "/cache", mirror=url, backoff=0.0, pause=0.0,
                            timeout=300.0)
t0 = time.perf_counter()
rep = nomis.population("2012", out + "/pop", settings=settings)
seconds = time.perf_counter() - t0
try:
    with open("/proc/self/status") as fh:
        peak = next(int(x.split()[1]) * 1024 for x in fh if x.startswith("VmHWM:"))
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
f = rep.files[0]
print("RESULT " + json.dumps({"seconds": seconds, "peak_bytes": peak, "rows": f["rows"],
                               "pages": len(f["pages"]), "sha256": f["sha256"]}))
"""


def measure_nomis(root: Path, n_rows: int, old: str | None) -> dict:
    """Peak memory of ``nomis.population`` for one year of ``n_rows`` rows (and ``old``'s)."""
    n_lsoa = max(1, round(n_rows / 92))
    server = subprocess.Popen(
        [sys.executable, "-c", NOMIS_SERVER, str(REPO / "tests" / "mirror_server.py"),
         str(n_lsoa)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    out: dict = {"rows_served": n_lsoa * 92}
    try:
        url = server.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the NOMIS mirror did not start")
        for label, module in [("current", "current"), *([("old", old)] if old else [])]:
            folder = root / f"nomis-{label}"
            shutil.rmtree(folder, ignore_errors=True)
            cmd = [sys.executable, "-c", NOMIS_CHILD, url, str(folder), module]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if proc.returncode != 0 or line is None:
                out[label] = {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
            else:
                out[label] = json.loads(line[len("RESULT "):])
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    return out


def measure(what: str, data: Path, engine: str) -> dict:
    cmd = [sys.executable, "-c", CHILD, what, str(data), str(LOOKUP19), engine]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(line[len("RESULT "):])


def _fmt(r: dict) -> str:
    if "error" in r:
        return f"FAILED: {r['error']}"
    return f"peak {r['peak_bytes'] / 2**20:8.0f} MiB   time {r['seconds']:7.1f} s   rows {r['rows']:,}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=0.05,
                    help="fraction of the national row counts (default 0.05; 1 = national)")
    ap.add_argument("--what", default="police,land-registry",
                    help="comma-separated: police, land-registry, nomis")
    ap.add_argument("--nomis-rows", type=int,
                    help="rows of the NOMIS population year served (default: 3,197,276 x "
                         "--scale)")
    ap.add_argument("--nomis-old", metavar="PATH",
                    help="an older download/nomis.py to measure beside the current one")
    ap.add_argument("--dir", help="folder for the generated files (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--engine", default="auto", choices=("auto", "pyarrow", "pandas"))
    ap.add_argument("--in-memory-max-rows", type=float, default=12e6,
                    help="run the old in-memory paths only up to this many rows (default 12e6)")
    ap.add_argument("--seed", type=int, default=20260101)
    args = ap.parse_args(argv)
    what = {w.strip() for w in args.what.split(",")}
    if what & {"police", "land-registry"} and not LOOKUP19.exists():
        print(f"needs the shared ONS lookups ({LOOKUP19})", file=sys.stderr)
        return 2
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="nbdid-bench-"))
    rng = np.random.default_rng(args.seed)
    print(f"scale {args.scale}  engine {args.engine}  files in {root}")
    try:
        results = {}
        if "police" in what:
            g = generate_police(root / "police", args.scale, rng)
            print(f"police.uk: generated {g['files']:,} street files, {g['rows']:,} rows, "
                  f"{g['bytes'] / 2**30:.2f} GiB in {g['seconds']:.0f} s")
            s = measure("police-stream", root / "police", args.engine)
            print(f"  streamed   {_fmt(s)}")
            results["police"] = {"stream": s}
            if g["rows"] <= args.in_memory_max_rows:
                m = measure("police-memory", root / "police", args.engine)
                print(f"  in memory  {_fmt(m)}")
                results["police"]["memory"] = m
        if "land-registry" in what:
            g = generate_land_registry(root / "ppd", args.scale, rng)
            print(f"Price Paid: generated pp-complete.csv, {g['rows']:,} rows, "
                  f"{g['bytes'] / 2**30:.2f} GiB, {g['postcodes']:,} postcodes in "
                  f"{g['seconds']:.0f} s")
            s = measure("lr-stream", root / "ppd", args.engine)
            print(f"  streamed   {_fmt(s)}")
            results["land-registry"] = {"stream": s}
            if g["rows"] <= args.in_memory_max_rows:
                m = measure("lr-memory", root / "ppd", args.engine)
                print(f"  in memory  {_fmt(m)}")
                results["land-registry"]["memory"] = m
        nomis_result = None
        if "nomis" in what:
            n = args.nomis_rows or max(92, round(NOMIS_POPULATION_ROWS * args.scale))
            nomis_result = measure_nomis(root, n, args.nomis_old)
            print(f"NOMIS population: served {nomis_result['rows_served']:,} rows")
            for label in ("current", "old"):
                if label in nomis_result:
                    print(f"  {label:10s} {_fmt(nomis_result[label])}")
        print("\nsummary (every English ward of WD19)")
        if nomis_result is not None:
            c, o = nomis_result["current"], nomis_result.get("old")
            line = f"  {'nomis':14s} peak {c.get('peak_bytes', 0) / 2**30:5.2f} GiB"
            line += " (< 2 GiB)" if c.get("peak_bytes", 1 << 40) < 2 * 2**30 else " (NOT < 2 GiB)"
            if o and "error" not in o and "error" not in c:
                line += (f"; old / current: memory x{o['peak_bytes'] / c['peak_bytes']:.1f}, "
                         f"time x{o['seconds'] / c['seconds']:.2f}; same file: "
                         f"{o['sha256'] == c['sha256']}")
            print(line)
        for name, r in results.items():
            s = r["stream"]
            line = f"  {name:14s} streamed peak {s.get('peak_bytes', 0) / 2**30:5.2f} GiB"
            line += " (< 2 GiB)" if s.get("peak_bytes", 1 << 40) < 2 * 2**30 else " (NOT < 2 GiB)"
            m = r.get("memory")
            if m and "error" not in m and "error" not in s:
                same = m["totals"] == s["totals"]
                line += (f"; in-memory / streamed: memory x{m['peak_bytes'] / s['peak_bytes']:.1f},"
                         f" time x{m['seconds'] / s['seconds']:.2f}; same totals: {same}")
            print(line)
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
