"""``nbdid build``: from nothing to the ward panel of the seven indicators, in one job.

:func:`build` plans what the panel needs, downloads what the cache does not hold yet
(through :mod:`nbdid.download`: every URL may be redirected to a mirror, ``offline``
uses the cache only), runs the loaders of :mod:`nbdid.data_prep` with the year map and
their guards, joins the denominators, validates the panel against the schema and
returns a :class:`BuildResult` whose :meth:`~BuildResult.save` writes

``PANEL.csv``
    the ward panel (schema CSV, ``nbdid data validate`` accepts it);
``PANEL.provenance.json`` / ``PANEL.provenance.txt``
    one provenance report: every source file with its URL, final URL and sha256 (from
    the download records), the rows each loader read and dropped, and every guard's
    findings (year map, boundary changes, partial periods and the choice made);
``PANEL.run.toml``
    a run config naming the panel: ``nbdid run --config PANEL.run.toml`` fits it.

What is fetched, per indicator (``BuildConfig.periods`` sets the periods):

==========================  ===============================================================
indicator                   sources
==========================  ===============================================================
crime, burglary,            police.uk street files of the wards' forces (archive members by
criminal damage             HTTP Range), for the months of each period
children in low income      Stat-Xplore CiLIF by MSOA (the MSOAs of the wards' LSOAs)
out-of-work benefits        up to 2016-11: NOMIS working-age client group by LSOA (client
                            groups summed, ``BuildConfig.wacg_groups``); later: Stat-Xplore
                            benefit combinations by MSOA
business units              NOMIS UK Business Counts by MSOA
property price              HM Land Registry yearly Price Paid files and the ONS postcode
                            directory (NSPL: postcode -> 2011 LSOA)
denominators                NOMIS small-area population estimates (mid-2011 to mid-2020)
                            and Census 2011 households (KS105EW)
geography                   ONS LSOA-to-ward lookups (WD17, the study era, and
                            ``ward_lookup``); OA-LSOA-MSOA 2011 lookup for the MSOA codes
==========================  ===============================================================

The raw files are written under ``sources`` (one folder per source, each with its
``nbdid-download.json``); they are never modified.  Derived files the build makes from
them (client groups summed) are written beside them with ``derived`` in their name.
Which forces a police.uk archive lacks (Greater Manchester after July 2019) is learnt
from the archive's directory the first time it is read and kept in the cache
(``nbdid-build/police-forces-absent.json``), so that ``offline`` builds know it too.
A missing Stat-Xplore key stops the build before any download.

See ``docs/real_data.md``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nbdid.config import REPORT_BUILD_PERIODS, BuildConfig, RunConfig, period_start, to_toml
from nbdid.data_prep.dwp import ingest_dwp
from nbdid.data_prep.guards import check_binomial_rates
from nbdid.data_prep.ingest import json_default
from nbdid.data_prep.land_registry import ingest_land_registry
from nbdid.data_prep.lookups import read_csv_columns, read_header
from nbdid.data_prep.nomis import ingest_nomis
from nbdid.data_prep.police import POLICE_UK_FIRST_MONTH, ingest_police, period_months
from nbdid.data_prep.population import ingest_population
from nbdid.data_prep.schema import COLUMN_NAMES, IngestResult, validate_panel, write_panel
from nbdid.data_prep.wards import normalise_la, resolve_geography
from nbdid.data_prep.yearmap import (
    REPORT_PERIOD_ESTIMATES,
    ReportPeriodEstimate,
    YearMap,
    denominator_estimate,
    join_denominators,
    period_kind,
)
from nbdid.download import Downloader, DownloadSettings
from nbdid.download import land_registry as dl_land_registry
from nbdid.download import nomis as dl_nomis
from nbdid.download import ons as dl_ons
from nbdid.download import police as dl_police
from nbdid.download import statxplore as dl_statxplore
from nbdid.download.police import default_latest_archive
from nbdid.errors import InputError
from nbdid.families import get_family
from nbdid.outputs import open_out_dir, prepare_out_dir, write_csv, write_text
from nbdid.provenance import hash_frame, package_versions
from nbdid.registry import INDICATORS

__all__ = [
    "ALL_FORCES",
    "LA_FORCES",
    "POPULATION_YEARS",
    "BuildResult",
    "build",
    "build_outputs",
]

POLICE_INDICATORS: tuple[str, ...] = ("crime", "burglary", "criminal_damage")

POPULATION_YEARS: range = range(2011, 2021)
"""Mid-years of the small-area population estimates NOMIS serves for 2011 LSOAs
(``NM_2010_1``).  Mid-2021 onwards are published for 2021 LSOAs only."""

WACG_LAST_MONTH = "2016-11"
"""Last month of the DWP working-age client group (NOMIS); later months of out-of-work
benefits come from Stat-Xplore benefit combinations."""

ALL_FORCES: tuple[str, ...] = (
    "avon-and-somerset", "bedfordshire", "cambridgeshire", "cheshire", "city-of-london",
    "cleveland", "cumbria", "derbyshire", "devon-and-cornwall", "dorset", "durham",
    "dyfed-powys", "essex", "gloucestershire", "greater-manchester", "gwent", "hampshire",
    "hertfordshire", "humberside", "kent", "lancashire", "leicestershire", "lincolnshire",
    "merseyside", "metropolitan", "norfolk", "north-wales", "north-yorkshire",
    "northamptonshire", "northumbria", "nottinghamshire", "south-wales", "south-yorkshire",
    "staffordshire", "suffolk", "surrey", "sussex", "thames-valley", "warwickshire",
    "west-mercia", "west-midlands", "west-yorkshire", "wiltshire",
)
"""police.uk ids of the territorial forces of England and Wales."""

LA_FORCES: dict[str, str] = {
    "birmingham": "west-midlands", "dudley": "west-midlands", "walsall": "west-midlands",
    "blackburn with darwen": "lancashire", "burnley": "lancashire", "lancaster": "lancashire",
    "preston": "lancashire", "rossendale": "lancashire", "west lancashire": "lancashire",
    "bolsover": "derbyshire", "chesterfield": "derbyshire",
    "brent": "metropolitan", "newham": "metropolitan",
    "cheshire west and chester": "cheshire", "halton": "cheshire", "warrington": "cheshire",
    "county durham": "durham",
    "dover": "kent", "folkestone and hythe": "kent", "medway": "kent", "swale": "kent",
    "gateshead": "northumbria", "newcastle upon tyne": "northumbria",
    "sunderland": "northumbria",
    "gloucester": "gloucestershire",
    "ipswich": "suffolk",
    "kingston upon hull": "humberside", "north lincolnshire": "humberside",
    "kirklees": "west-yorkshire", "leeds": "west-yorkshire",
    "knowsley": "merseyside", "liverpool": "merseyside", "wirral": "merseyside",
    "leicester": "leicestershire",
    "middlesbrough": "cleveland",
    "northampton": "northamptonshire",
    "nottingham": "nottinghamshire",
    "plymouth": "devon-and-cornwall",
    "portsmouth": "hampshire", "southampton": "hampshire",
    "rochdale": "greater-manchester", "salford": "greater-manchester",
    "tameside": "greater-manchester",
    "rother": "sussex",
    "telford and wrekin": "west-mercia",
    "weymouth and portland": "dorset", "dorset": "dorset",
}
"""police.uk force of each local authority of the report's wards (normalised names, as
:func:`nbdid.data_prep.wards.normalise_la` gives them)."""

Log = Callable[[str], None]

_POPULATION_SHARE = re.compile(r", \d+% of the population")


def build_outputs(out: str | os.PathLike[str]) -> list[str]:
    """Names of the files :meth:`BuildResult.save` writes for the panel ``out``."""
    p = Path(out)
    return [p.name, f"{p.stem}.provenance.json", f"{p.stem}.provenance.txt", f"{p.stem}.run.toml"]


def hold_build_out(out: str | os.PathLike[str], *, force: bool) -> Any:
    """Hold the folder of the panel ``out`` for one build (a context manager).

    A second command into the folder is refused at once; existing build files are
    refused without ``force`` before anything is downloaded; the four files of
    :func:`build_outputs` carry the folder's unfinished-marker until the last one is in
    place, so a build killed between them is recognised as unfinished (and its files
    replaced by the next build without ``--force``).  Only the build's own temporary
    files are cleaned: the folder is the user's.
    """
    p = Path(out)
    return open_out_dir(p.parent if str(p.parent) else ".", build_outputs(p), force=force,
                        command="build", clean="names")


def default_sources(out: str | os.PathLike[str]) -> Path:
    """Folder of the raw files for the panel ``out``: ``<stem>.sources`` beside it."""
    p = Path(out)
    return p.with_name(f"{p.stem}.sources")


@dataclass
class BuildResult:
    """What :func:`build` made.

    Attributes
    ----------
    panel
        The validated ward panel (schema columns).
    report
        The provenance report (JSON-ready).
    config
        The build configuration used.
    """

    panel: pd.DataFrame
    report: dict[str, Any]
    config: BuildConfig

    @property
    def guards(self) -> list[dict[str, Any]]:
        """Every guard's finding (``guard``, ``message``, ``sources``)."""
        return list(self.report.get("guards", []))

    def guard_lines(self) -> list[str]:
        """One line per guard finding (for stderr)."""
        return [f"{g['guard']}: {g['message']}" for g in self.guards]

    @property
    def indicators(self) -> list[str]:
        """Indicator keys in the panel, in registry order."""
        have = set(self.panel["indicator"])
        return [k for k in INDICATORS if k in have] + sorted(have - set(INDICATORS))

    def run_config(self, panel_name: str) -> str:
        """The run config (TOML) that fits this panel, ``panel_name`` relative to it."""
        stem = Path(panel_name).stem
        cfg = RunConfig(panel=panel_name, indicators=tuple(self.indicators),
                        out=f"{stem}-results")
        head = (f"# Written by 'nbdid build': fit the built panel with\n"
                f"#   nbdid run --config {stem}.run.toml\n"
                "# 'panel' is relative to this file; every other setting is nbdid's default\n"
                "# (edit freely: see 'nbdid config').\n")
        if self.config.synthetic:
            head += "# SYNTHETIC TEST DATA: the panel was built from generated source files.\n"
        return head + to_toml(cfg)

    def text(self) -> str:
        """A short summary of the panel."""
        lines = []
        for key in self.indicators:
            rows = self.panel[self.panel["indicator"] == key]
            labels = list(dict.fromkeys(rows.sort_values("period")["period_label"].astype(str)))
            lines.append(f"  {key:<22} {rows['ward'].nunique():>3} wards  "
                         f"periods {', '.join(labels)}")
        head = (f"ward panel: {len(self.panel)} rows, {self.panel['ward'].nunique()} wards, "
                f"{len(self.indicators)} indicator(s)")
        if self.config.synthetic:
            head += " -- SYNTHETIC TEST DATA (generated source files)"
        return "\n".join([head, *lines])

    def save(self, out: str | os.PathLike[str], *, force: bool = False) -> dict[str, Path]:
        """Write the panel, its provenance (JSON and text) and the run config.

        Nothing is overwritten unless ``force``; every file is written atomically, and
        the folder is held (:func:`hold_build_out`) until all four are in place.
        """
        p = Path(out)
        if p.suffix.lower() != ".csv":
            raise InputError(f"--out {p} must end in .csv", column="--out")
        names = build_outputs(p)
        with hold_build_out(p, force=force):
            return self._write(p, names, force=force)

    def _write(self, p: Path, names: list[str], *, force: bool) -> dict[str, Path]:
        folder = prepare_out_dir(p.parent if str(p.parent) else ".", names, force=force)
        report = {**self.report, "output": str(folder / names[0])}
        report["next_command"] = f"nbdid run --config {folder / names[3]}"
        json_text = json.dumps(report, indent=2, default=json_default, ensure_ascii=False) + "\n"
        txt = _readable(report)
        run_toml = self.run_config(names[0])
        paths = {"panel": folder / names[0], "provenance_json": folder / names[1],
                 "provenance_txt": folder / names[2], "run_config": folder / names[3]}
        write_panel(self.panel, paths["panel"])
        write_text(json_text, paths["provenance_json"])
        write_text(txt, paths["provenance_txt"])
        write_text(run_toml, paths["run_config"])
        return paths


def _readable(report: dict[str, Any]) -> str:
    """The provenance as readable text: guards, year map, panel, files, rows.

    The JSON beside it holds everything (the download and loader reports in full).
    """
    out = ["nbdid build: provenance of the ward panel", ""]
    if report.get("synthetic"):
        out += ["SYNTHETIC TEST DATA: the source files were generated, not downloaded from the "
                "publishers.", ""]
    for k in ("command", "started_at", "finished_at", "wards", "ward_vintage", "output",
              "next_command", "sources_folder"):
        if report.get(k) is not None:
            out.append(f"{k}: {report[k]}")
    cache = report.get("cache", {})
    out.append(f"cache: {cache.get('folder')} (manifest {cache.get('manifest')}); mirror: "
               f"{cache.get('mirror') or 'none'}; offline: {bool(cache.get('offline'))}")
    out += ["", "Guards (what the checks found and what was chosen):"]
    for g in report.get("guards", []):
        out.append(f"  - {g['guard']} [{', '.join(g.get('sources', []))}]: {g['message']}")
    if not report.get("guards"):
        out.append("  (none)")
    out += ["", "Year map (which estimate serves each indicator's period):"]
    out += [f"  - {line}" for line in report.get("year_map", [])] or ["  (none)"]
    panel = report.get("panel", {})
    out += ["", f"Panel: {panel.get('rows')} rows, {panel.get('wards')} wards, sha256 "
                f"{panel.get('sha256')}"]
    for key, rep in panel.get("indicators", {}).items():
        out.append(f"  {key}: {rep['rows']} rows, {rep['wards']} wards, {rep['pairs']} pairs; "
                   f"periods {'; '.join(rep['periods'])}")
    for key, mapping in report.get("period_labels", {}).items():
        pairs = ", ".join(f"{a} -> {b}" for a, b in mapping.items() if a != b)
        if pairs:
            out.append(f"  {key} period labels (publisher -> panel): {pairs}")
    out += ["", "Rows read and dropped, per loader:"]
    for name, rows in report.get("rows", {}).items():
        out.append(f"  {name}:")
        for k, v in rows.items():
            if isinstance(v, dict):
                v = ", ".join(f"{a}: {b}" for a, b in v.items())
            elif isinstance(v, list):
                v = ", ".join(map(str, v))
            out.append(f"    {k}: {v}")
    files = report.get("source_files", [])
    out += ["", f"Source files ({len(files)}; URL -> final URL, sha256):"]
    for f in files:
        url, final = f.get("url"), f.get("final_url")
        if isinstance(url, list):
            n = len(url)
            url = f"{url[0]} (+{n - 1} more request(s))" if n > 1 else (url[0] if url else None)
            final = final[0] if final else None
        extra = (f", member {f['member']}" + (f" of archive {f['archive']}"
                                                if f.get("archive") else "")
                 if f.get("member") else "")
        out.append(f"  - [{f.get('source')}] {f.get('file')}{extra}")
        out.append(f"      {url} -> {final}")
        out.append(f"      sha256 {f.get('sha256')}  retrieved {f.get('retrieved_at')}")
    derived = report.get("derived_files", [])
    if derived:
        out += ["", "Derived files (made by the build from the raw files):"]
        out += [f"  - {d.get('file')}: {d.get('how')}" for d in derived]
    versions = report.get("versions")
    if versions:
        out += ["", "versions: " + ", ".join(f"{k} {v}" for k, v in versions.items())]
    out += ["", "Everything else (download and loader reports in full, the config): the .json "
                "file beside this one."]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------
# the job
# ------------------------------------------------------------------------------------------


@dataclass
class _State:
    """Everything collected while building (turned into the provenance report)."""

    downloads: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    loaders: dict[str, dict[str, Any]] = field(default_factory=dict)
    guards: list[dict[str, Any]] = field(default_factory=list)
    derived: list[dict[str, Any]] = field(default_factory=list)
    relabelled: dict[str, dict[str, str]] = field(default_factory=dict)
    year_map: list[str] = field(default_factory=list)
    substitutes: dict[int, tuple[int, str]] = field(default_factory=dict)

    def notice(self, source: str, guard: str, message: str, **details: Any) -> None:
        """Record a guard's finding once (the same finding from several loaders is one)."""
        same = _POPULATION_SHARE.sub("", message)
        for g in self.guards:
            if g["guard"] == guard and _POPULATION_SHARE.sub("", g["message"]) == same:
                if len(message) > len(g["message"]):
                    g["message"] = message  # the one with the population shares
                if source not in g["sources"]:
                    g["sources"].append(source)
                return
        self.guards.append({"guard": guard, "message": message, "sources": [source], **details})

    def substituted(self, line: str) -> str:
        """A year-map line saying which published estimate served a missing one, and why
        (the year map's entry for the report's periods, or ``missing_estimates``)."""
        for y, (used, why) in self.substitutes.items():
            line = re.sub(rf"\bmid-{y} (\w+)(?=;|$)", rf"mid-{y} \1 (mid-{used} served: {why}; "
                          f"mid-{y} is not published for 2011 LSOAs)", line)
        return line

    def estimates(self, lines: Sequence[str]) -> None:
        """Add year-map lines (:meth:`substituted`)."""
        self.year_map.extend(self.substituted(line) for line in lines)

    def loader(self, name: str, result: IngestResult) -> None:
        rep = dict(result.report)
        for g in rep.pop("guards", []) or []:
            extra = {k: v for k, v in g.items() if k not in ("guard", "message")}
            msg = str(g.get("message", ""))
            if g.get("guard") == "year map":
                msg = self.substituted(msg)
            self.notice(name, str(g.get("guard", "guard")), msg, **extra)
        rep["rows_out"] = int(len(result.table))
        self.loaders[name] = rep

    def download(self, name: str, rep: Any) -> dict[str, Any]:
        d = rep.to_dict() if hasattr(rep, "to_dict") else dict(rep)
        self.downloads.setdefault(name, []).append(d)
        return d


def build(
    *,
    wards: str | os.PathLike[str] | None = None,
    config: BuildConfig | None = None,
    settings: DownloadSettings | None = None,
    sources: str | os.PathLike[str],
    log: Log | None = None,
    downloader: Downloader | None = None,
    command: str | None = None,
) -> BuildResult:
    """Download, load, join and validate the ward panel.

    Parameters
    ----------
    wards
        ``None``: the report's 58 study wards.  Otherwise a design file (``group``,
        optional ``pair``, and ward codes of ``config.ward_lookup``'s vintage or
        ``ward_name`` + ``la``) -- any ward list, e.g. a future study.
    config
        :class:`~nbdid.config.BuildConfig` (periods and choices); default the report's.
    settings
        Download settings (cache, mirror, offline, keys); default from the environment.
    sources
        Folder for the raw files (one sub-folder per source); created when needed.
    log
        Called with one-line progress messages.
    downloader
        An open :class:`~nbdid.download.Downloader` to reuse.
    command
        The command line, recorded in the provenance.

    Returns
    -------
    BuildResult

    Raises
    ------
    InputError, DownloadError
        One line naming what is missing or wrong (a refused host, a missing key, a
        count that cannot be right, a denominator estimate that is not published ...).
    """
    cfg = config or BuildConfig()
    say: Log = log or (lambda msg: None)
    src = Path(sources)
    design = None if wards is None else Path(wards)
    if design is not None and not design.is_file():
        raise InputError("ward list not found", file=design)
    periods = cfg.resolved_periods()
    # the year map's gaps stop the build before anything is downloaded or written
    _refuse_missing_estimates(cfg, periods)
    dls = downloader.settings if downloader is not None else (
        settings or DownloadSettings.from_env())
    needs_statxplore = "children_low_income" in cfg.indicators or (
        "out_of_work_benefits" in cfg.indicators
        and any(m > WACG_LAST_MONTH for m in periods["out_of_work_benefits"]))
    if needs_statxplore and not dls.offline and not dls.statxplore_key:
        # say so before hours of other downloads, not when Stat-Xplore's turn comes
        raise InputError(dl_statxplore.REGISTER_HINT)
    src.mkdir(parents=True, exist_ok=True)
    own = downloader is None
    dl = downloader or Downloader(dls, log=say)
    st = _State()
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    try:
        say("ward lookups (ONS Open Geography Portal)")
        lookup = _lookups(dl, cfg, src / "lookups", st)
        geo = resolve_geography(lookup, design, boundaries=cfg.boundaries)
        area_map = geo.area_map()
        wards_label = (str(design) if design is not None else
                       f"the report's 58 study wards ({cfg.boundaries} boundaries)")
        say(f"{len(geo.design)} wards ({geo.vintage}), {area_map['area'].nunique()} LSOAs")

        dens = _denominators(dl, cfg, periods, lookup, src / "population", st, say)
        apportion = dens.attrs.get("apportion_file") if cfg.apportion == "population" else None
        ym = YearMap(households_scaling=cfg.households_scaling)
        parts: list[pd.DataFrame] = []
        police_inds = [k for k in cfg.indicators if k in POLICE_INDICATORS]
        if police_inds:
            parts.append(_police(dl, cfg, periods["police"], police_inds, lookup, design, dens,
                                 geo.design, src / "police", st, say, ym))
        msoas: list[str] | None = None
        if "children_low_income" in cfg.indicators or (
                "out_of_work_benefits" in cfg.indicators and
                any(m > WACG_LAST_MONTH for m in periods["out_of_work_benefits"])):
            msoas = _msoa_codes(dl, area_map, src / "geography", st, say)
        if "children_low_income" in cfg.indicators:
            parts.append(_children(dl, cfg, periods["children_low_income"], lookup, design,
                                   dens, msoas or [], apportion, src / "dwp", st, say, ym))
        if "out_of_work_benefits" in cfg.indicators:
            parts.append(_out_of_work(dl, cfg, periods["out_of_work_benefits"], lookup, design,
                                      dens, msoas or [], apportion, src, st, say, ym))
        if "business_units" in cfg.indicators:
            parts.append(_business(dl, cfg, periods["business_units"], lookup, design, dens,
                                   apportion, src / "nomis", st, say, ym))
        if "property_price" in cfg.indicators:
            parts.append(_prices(dl, cfg, periods["property_price"], lookup, design,
                                 src, st, say))
    finally:
        if own:
            dl.close()

    panel = pd.concat(parts, ignore_index=True)
    panel = _finish(panel, cfg, periods, st)
    panel = validate_panel(panel, file="<nbdid build panel>", require_exposure=True)
    report = _report(panel, cfg, st, wards_label, geo, dl.settings, src, started, command)
    return BuildResult(panel=panel, report=report, config=cfg)


# ------------------------------------------------------------------------------------------
# geography
# ------------------------------------------------------------------------------------------


def _lookups(dl: Downloader, cfg: BuildConfig, folder: Path, st: _State) -> Path:
    """Download the study-era WD17 lookup and ``ward_lookup``; return the latter's path."""
    names = ["lsoa11-wd17"] + ([cfg.ward_lookup] if cfg.ward_lookup != "lsoa11-wd17" else [])
    paths = {}
    for name in names:
        rep = dl_ons.lookup(name, folder, downloader=dl)
        d = st.download(f"lookup {name}", rep)
        paths[name] = Path(d["files"][0]["path"])
    return paths[cfg.ward_lookup]


def _msoa_codes(dl: Downloader, area_map: pd.DataFrame, folder: Path, st: _State,
                say: Log) -> list[str]:
    """MSOA 2011 codes holding the wards' LSOAs (for the Stat-Xplore queries)."""
    say("MSOAs of the wards' LSOAs (ONS OA-LSOA-MSOA 2011 lookup)")
    rep = dl_ons.lookup("oa11-lsoa11-msoa11", folder, downloader=dl)
    d = st.download("lookup oa11-lsoa11-msoa11", rep)
    path = Path(d["files"][0]["path"])
    header = read_header(path)
    low = {c.lower(): c for c in header}
    for need in ("lsoa11cd", "msoa11cd"):
        if need not in low:
            raise InputError(f"the OA-LSOA-MSOA lookup has no column {need.upper()} (found "
                             f"{', '.join(header)})", file=path)
    lk = read_csv_columns(path, [low["lsoa11cd"], low["msoa11cd"]])
    lk.columns = ["lsoa", "msoa"]
    lsoas = set(area_map["area"].astype(str).str.upper())
    hit = lk[lk["lsoa"].str.upper().isin(lsoas)]
    missing = lsoas - set(hit["lsoa"].str.upper())
    if missing:
        st.notice("geography", "geography",
                  f"{len(missing)} LSOAs of the wards are not in the OA-LSOA-MSOA lookup (e.g. "
                  f"{sorted(missing)[0]}): their MSOA counts are not requested")
    codes = sorted(hit["msoa"].dropna().str.upper().unique())
    if not codes:
        raise InputError("no LSOA of the wards is in the OA-LSOA-MSOA lookup", file=path)
    return codes


def _forces(cfg: BuildConfig, design: pd.DataFrame, st: _State) -> list[str]:
    if cfg.forces:
        return list(cfg.forces)
    las = {normalise_la(la) for la in design["la"].dropna().astype(str)}
    unknown = sorted(las - set(LA_FORCES))
    if unknown:
        st.notice("police", "police forces",
                  f"the force of {len(unknown)} local authorit(y/ies) is not in nbdid's table "
                  f"(e.g. {unknown[0]}): street files of every force of England and Wales "
                  "are downloaded (set 'forces' in the build config to fetch fewer)")
        return list(ALL_FORCES)
    return sorted({LA_FORCES[la] for la in las})


# ------------------------------------------------------------------------------------------
# denominators
# ------------------------------------------------------------------------------------------


_DENOMINATOR_SOURCE: dict[str, str] = {
    "crime": "police", "burglary": "police", "criminal_damage": "police",
    "children_low_income": "children_low_income",
    "out_of_work_benefits": "out_of_work_benefits", "business_units": "business_units"}
"""The ``[periods]`` source of each indicator with a denominator."""

_REPORT_ENTRY = "the year map's entry for the report's periods"
_NEAREST = "the nearest published year, missing_estimates = 'nearest'"


def _needed_estimates(cfg: BuildConfig, periods: dict[str, tuple[str, ...]]
                      ) -> dict[tuple[str, int], list[str]]:
    """``(denominator, year) -> ["indicator period", ...]`` the year map asks for."""
    out: dict[tuple[str, int], list[str]] = {}
    for key in cfg.indicators:
        if key not in _DENOMINATOR_SOURCE:
            continue
        den = INDICATORS[key].denominator_key
        for lab in periods[_DENOMINATOR_SOURCE[key]]:
            year, _ = denominator_estimate(den, lab)
            out.setdefault((den, year), []).append(f"{key} {lab}")
            if den == "households" and cfg.households_scaling == "population":
                for y in (2011, period_kind(lab)[1]):
                    out.setdefault(("population", y), []).append(f"{key} {lab} (scaling)")
    return out


def _nearest_published(year: int) -> int:
    """The published mid-year nearest ``year`` (the later one on a tie)."""
    return min(POPULATION_YEARS, key=lambda v: (abs(v - year), -v))


def _report_entries(cfg: BuildConfig, periods: dict[str, tuple[str, ...]]
                    ) -> dict[tuple[str, int, str], ReportPeriodEstimate]:
    """The year map's entries for the report's periods (``REPORT_PERIOD_ESTIMATES``) that
    serve this build, keyed like the cells of :func:`_needed_estimates`:
    ``(denominator, year, "indicator period")``.  An entry serves only when the build asks
    for the report's periods of the indicator's source (none given in ``[periods]``, or
    the same ones)."""
    out: dict[tuple[str, int, str], ReportPeriodEstimate] = {}
    for e in REPORT_PERIOD_ESTIMATES:
        source = _DENOMINATOR_SOURCE.get(e.indicator)
        if (source is None or e.indicator not in cfg.indicators
                or tuple(periods[source]) != _report_periods(e.indicator, cfg)
                or e.period not in periods[source]):
            continue
        out[(e.denominator, e.estimate_year, f"{e.indicator} {e.period}")] = e
    return out


def _unpublished(cfg: BuildConfig, periods: dict[str, tuple[str, ...]]
                 ) -> dict[int, list[str]]:
    """``year -> ["indicator period needs mid-YEAR denominator", ...]`` for every mid-year
    estimate the year map asks for that is not published for 2011 LSOAs and that no
    entry for the report's periods (:func:`_report_entries`) serves."""
    entries = _report_entries(cfg, periods)
    out: dict[int, list[str]] = {}
    for (den, y), who in sorted(_needed_estimates(cfg, periods).items(),
                                key=lambda kv: (kv[0][1], kv[0][0])):
        if den == "households" or y in POPULATION_YEARS:
            continue
        rest = [w for w in who if (den, y, w) not in entries]
        if rest:
            out.setdefault(y, []).extend(f"{w} needs mid-{y} {den}" for w in rest)
    return out


def _refuse_missing_estimates(cfg: BuildConfig, periods: dict[str, tuple[str, ...]]) -> None:
    """Stop (``missing_estimates = "refuse"``, the default) when the year map asks for a
    mid-year estimate that is not published for 2011 LSOAs and has no entry for the
    report's periods, naming each indicator, period and estimate year, and the fix."""
    if cfg.missing_estimates != "refuse":
        return
    gaps = _unpublished(cfg, periods)
    if not gaps:
        return
    cells = "; ".join(c for y in sorted(gaps) for c in gaps[y])
    near = ", ".join(f"mid-{_nearest_published(y)} for mid-{y}" for y in sorted(gaps))
    raise InputError(
        f"the year map needs estimates that are not published for 2011 LSOAs: {cells} "
        f"(NOMIS NM_2010_1, which nbdid download population reads, holds mid-"
        f"{POPULATION_YEARS[0]} to mid-{POPULATION_YEARS[-1]} only, so no download can supply "
        f"them). Fix: add missing_estimates = \"nearest\" to the build config (nbdid build "
        f"--print-config > build.toml, edit, then --config build.toml) to let the nearest "
        f"published year serve ({near}; stated in the provenance and on stderr), or change "
        f"the periods (the report's own periods have year-map entries: docs/real_data.md)",
        column="missing_estimates")


def _denominators(dl: Downloader, cfg: BuildConfig, periods: dict[str, tuple[str, ...]],
                  lookup: Path, folder: Path, st: _State, say: Log) -> pd.DataFrame:
    """Ward denominators (``ward, year, denominator, value``) for every estimate needed.

    A mid-year the year map asks for that is not published is served by the year map's
    entry for the report's periods (:func:`_report_entries`), or was refused by
    :func:`_refuse_missing_estimates` unless ``missing_estimates = "nearest"`` (then the
    nearest published year serves); a notice states each substitution."""
    need = _needed_estimates(cfg, periods)
    mid = {(d, y): who for (d, y), who in need.items() if d != "households"}
    years = sorted({y for _, y in mid})
    entries = _report_entries(cfg, periods)
    substitute: dict[int, int] = {}
    held = (f"NOMIS NM_2010_1 holds mid-{POPULATION_YEARS[0]} to mid-{POPULATION_YEARS[-1]} "
            "for 2011 LSOAs")
    for y in years:
        if y in POPULATION_YEARS:
            continue
        by_entry: dict[str, list[ReportPeriodEstimate]] = {}
        rest: list[str] = []
        for (d, yy), ws in sorted(mid.items()):
            if yy != y:
                continue
            for w in ws:
                if (d, y, w) in entries:
                    by_entry.setdefault(d, []).append(entries[(d, y, w)])
                else:
                    rest.append(w)
        if rest and cfg.missing_estimates != "nearest":  # pragma: no cover - refused in build()
            _refuse_missing_estimates(cfg, periods)
        used = {e.used_year for es in by_entry.values() for e in es}
        used |= {_nearest_published(y)} if rest else set()
        if len(used) != 1:  # pragma: no cover - REPORT_PERIOD_ESTIMATES serve the nearest year
            raise InputError(f"internal: mid-{y} would be served by mid-years {sorted(used)}")
        served = used.pop()
        substitute[y] = served
        st.substitutes[y] = (served, " and ".join(
            ([_REPORT_ENTRY] if by_entry else []) + ([_NEAREST] if rest else [])))
        for d, es in by_entry.items():
            cells = sorted(f"{e.indicator} {e.period}" for e in es)
            st.notice("population", "year map",
                      f"{_REPORT_ENTRY}: mid-{served} {d} serves {', '.join(cells)}, whose "
                      f"mid-{y} {d} is not published for 2011 LSOAs ({held}; "
                      "nbdid.data_prep.yearmap.REPORT_PERIOD_ESTIMATES)",
                      estimate_year=y, used_year=served, entry="report periods",
                      cells=cells, why=es[0].why)
        if rest:
            st.notice("population", "year map",
                      f"no mid-{y} small-area population estimate is published for 2011 LSOAs "
                      f"({held}): mid-{served} serves in its place for {', '.join(sorted(rest))} "
                      "(missing_estimates = 'nearest')",
                      estimate_year=y, used_year=served, entry="nearest", cells=sorted(rest))
    fetch = sorted({substitute.get(y, y) for y in years})
    sape: list[str] = []
    if fetch:
        say(f"population estimates mid-{', mid-'.join(map(str, fetch))} (NOMIS)")
        rep = dl_nomis.population([str(y) for y in fetch], folder, downloader=dl)
        d = st.download("population", rep)
        sape = [f["path"] for f in d["files"]]
    households = None
    if ("households", 2011) in need:
        say("Census 2011 households (NOMIS KS105EW)")
        rep = dl_nomis.households(folder, downloader=dl)
        d = st.download("households", rep)
        households = d["files"][0]["path"]
    if not sape:
        if households is None:
            return pd.DataFrame(columns=["ward", "ward_name", "la", "year", "denominator", "value"])
        raise InputError("the households need a population file for the ward lookup "
                         "(internal: no population year planned)")  # pragma: no cover
    res = ingest_population(sape, lookup, households=households, boundaries=cfg.boundaries)
    st.loader("population", res)
    dens = res.table.copy()
    for y, near in substitute.items():
        extra = dens[(dens["year"] == near) & (dens["denominator"] != "households")].copy()
        extra["year"] = y
        dens = pd.concat([dens, extra], ignore_index=True)
    write_csv(dens, folder / "denominators.derived.csv", lineterminator="\n")
    st.derived.append({"file": str(folder / "denominators.derived.csv"),
                       "from": sape + ([households] if households else []),
                       "how": "nbdid ingest population (the ward lookup's wards plus the study "
                              "wards on their study-era areas)"
                              + (f"; mid-year substitutes {substitute}" if substitute else "")})
    # the latest estimates apportion MSOA counts by population (apportion = "population")
    dens.attrs["apportion_file"] = sape[fetch.index(max(fetch))]
    return dens


# ------------------------------------------------------------------------------------------
# police
# ------------------------------------------------------------------------------------------


def _runs(months: Sequence[str]) -> list[tuple[str, str]]:
    """Contiguous ``(first, last)`` runs of sorted ``YYYY-MM`` months."""
    idx = sorted({int(m[:4]) * 12 + int(m[5:7]) - 1 for m in months})
    out: list[tuple[int, int]] = []
    for i in idx:
        if out and i == out[-1][1] + 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return [(f"{a // 12:04d}-{a % 12 + 1:02d}", f"{b // 12:04d}-{b % 12 + 1:02d}") for a, b in out]


_NO_FORCE = re.compile(r"force '([a-z0-9-]+)' has no street file in the requested months")


def _police(dl: Downloader, cfg: BuildConfig, labels: Sequence[str], indicators: list[str],
            lookup: Path, design: Path | None, dens: pd.DataFrame, wards: pd.DataFrame,
            folder: Path, st: _State, say: Log, ym: YearMap) -> pd.DataFrame:
    forces = _forces(cfg, wards, st)
    # one folder per choice of periods: the loader reads every street file in it
    folder = folder / (cfg.year_type + "_" + "_".join(lab.replace("/", "-") for lab in labels))
    months = [m for lab in labels for m in period_months(lab, cfg.year_type)]
    early = [m for m in months if m < POLICE_UK_FIRST_MONTH]
    months = [m for m in months if m >= POLICE_UK_FIRST_MONTH]
    if early:
        st.notice("police", "partial periods",
                  f"police.uk street-level crime starts in {POLICE_UK_FIRST_MONTH}: "
                  f"{len(early)} month(s) of the periods ({early[0]}..{early[-1]}) do not exist")
    if not months:
        raise InputError(f"the police periods {list(labels)} end before police.uk starts "
                         f"({POLICE_UK_FIRST_MONTH})", column="periods.police")
    latest = cfg.latest_archive or default_latest_archive()
    # which forces an archive lacks is learnt from its directory when it is first read;
    # kept in the cache (beside the archives' members) so that --offline and a new
    # sources folder know it too
    excluded_file = Path(dl.settings.cache_dir) / "nbdid-build" / "police-forces-absent.json"
    try:
        excluded = json.loads(excluded_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        excluded = {}
    for first, last in _runs(months):
        key = f"{first}..{last}"
        ekey = f"{key} (archives up to {latest})"
        use = [f for f in forces if f not in excluded.get(ekey, {})]
        say(f"police.uk street files {first}..{last}, {len(use)} force(s)")
        while True:
            if not use:
                raise InputError(f"no force of the wards has street files in {key}")
            try:
                rep = dl_police.download(first, last, use, folder, latest_archive=latest,
                                         downloader=dl)
                break
            except InputError as err:
                m = _NO_FORCE.search(str(err))
                if not m or m.group(1) not in use:
                    raise
                use = [f for f in use if f != m.group(1)]
                excluded.setdefault(ekey, {})[m.group(1)] = str(err)
                write_text(json.dumps(excluded, indent=1) + "\n", excluded_file)
        d = st.download("police", rep)
        for f in forces:
            if f in excluded.get(ekey, {}):
                st.notice("police", "partial periods",
                          f"police.uk has no street file of {f} in {key}"
                          + (" (Greater Manchester Police published nothing after July 2019)"
                             if f == "greater-manchester" else "")
                          + f"; partial_periods = '{cfg.partial_periods}' decides")
        gaps: dict[str, list[str]] = {}
        for miss in d.get("missing", []):
            gaps.setdefault(miss["force"], []).append(miss["month"])
        for f, ms in gaps.items():
            st.notice("police", "partial periods",
                      f"police.uk has no street file of {f} for {len(ms)} month(s) of {key} "
                      f"({', '.join(sorted(ms))}); partial_periods = '{cfg.partial_periods}' "
                      "decides")
    post_from = cfg.periods.post_from or period_start(labels[-1])
    say("counting street crime (nbdid ingest police)")
    res = ingest_police(folder, lookup, year_type=cfg.year_type, population=dens,
                        design=design, indicators=indicators, post_from=post_from,
                        partial_periods=cfg.partial_periods, boundaries=cfg.boundaries,
                        year_map=ym)
    st.loader("police", res)
    table = res.table.copy()
    got = sorted(set(table["period_label"].astype(str)))
    want = [lab for lab in labels if lab in got]
    if not want:
        raise InputError(f"the police files hold none of the periods {list(labels)}")
    table = table[table["period_label"].astype(str).isin(want)]
    for key in indicators:
        st.estimates([f"{key} {lab}: "
                      f"{denominator_estimate(INDICATORS[key].denominator_key, lab)[1]}"
                      for lab in want])
    return table


# ------------------------------------------------------------------------------------------
# DWP, NOMIS, Land Registry
# ------------------------------------------------------------------------------------------


def _by_order(table: pd.DataFrame, labels: Sequence[str], what: str, file: str) -> pd.DataFrame:
    """Replace a loader's period labels (in ``period`` order) by the build's ``labels``."""
    got = (table.drop_duplicates("period_label").sort_values("period")["period_label"]
           .astype(str).tolist())
    if len(got) != len(labels):
        raise InputError(f"{what}: the file has the periods {got}, the build asked for "
                         f"{list(labels)}", file=file)
    mapping = dict(zip(got, labels, strict=True))
    out = table.copy()
    out["period_label"] = out["period_label"].astype(str).map(mapping)
    out.attrs["publisher_labels"] = mapping
    return out


def _join(table: pd.DataFrame, key: str, dens: pd.DataFrame, ym: YearMap, st: _State,
          source: str, counts_file: str) -> pd.DataFrame:
    """Exposure through the year map (and the rate guard of binomial indicators)."""
    den = INDICATORS[key].denominator_key
    rows = table.assign(indicator=key)
    sub = dens[dens["denominator"] == den]
    if sub.empty:
        raise InputError(f"no '{den}' denominators were built for {key}")
    out, rep = join_denominators(rows, sub, denominator=den, year_map=ym,
                                 file="denominators.derived.csv")
    if get_family(INDICATORS[key].family).count_within_exposure:
        check_binomial_rates(out, indicator=key, counts_file=counts_file,
                             denominators_file="denominators.derived.csv")
    st.estimates(rep["year_map"])
    st.notice(source, "year map", "denominators: " + "; ".join(st.year_map[-len(rep["year_map"]):]))
    return out


def _children(dl: Downloader, cfg: BuildConfig, labels: Sequence[str], lookup: Path,
              design: Path | None, dens: pd.DataFrame, msoas: list[str], apportion: str | None,
              folder: Path, st: _State, say: Log, ym: YearMap) -> pd.DataFrame:
    say(f"children in relative low income {', '.join(labels)} (Stat-Xplore, {len(msoas)} MSOAs)")
    years = [int(lab[:4]) for lab in labels]
    rep = dl_statxplore.cilif(msoas, years, folder, downloader=dl)
    d = st.download("children_low_income", rep)
    file = d["files"][0]["path"]
    res = ingest_dwp(file, "children_low_income", lookup, design=design,
                     boundaries=cfg.boundaries, apportion_population=apportion)
    st.loader("children_low_income", res)
    t = _by_order(res.table, labels, "Stat-Xplore CiLIF", file)
    st.relabelled["children_low_income"] = t.attrs["publisher_labels"]
    return _join(t, "children_low_income", dens, ym, st, "children_low_income", file)


def _wacg_groups(path: Path, groups: Sequence[str], out: Path) -> tuple[Path, dict[str, Any]]:
    """Sum the chosen client groups of a NOMIS WACG file into one (a derived file)."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    df.columns = [c.strip().upper() for c in df.columns]
    if "ITEM_NAME" not in df:
        raise InputError("no ITEM_NAME column (the client group) in the working-age client "
                         "group file", file=path)

    def norm(s: str) -> str:
        return " ".join(re.sub(r"[^a-z0-9]+", " ", s.lower()).split())

    have = {norm(v): v for v in df["ITEM_NAME"].unique()}
    missing = [g for g in groups if norm(g) not in have]
    if missing:
        raise InputError(f"client group '{missing[0]}' is not in the file (it has "
                         f"{', '.join(sorted(have.values()))}); set wacg_groups in the build "
                         "config", file=path, column="ITEM_NAME")
    keep = df[df["ITEM_NAME"].map(norm).isin({norm(g) for g in groups})].copy()
    val = pd.to_numeric(keep["OBS_VALUE"].str.strip(), errors="coerce")
    keep["OBS_VALUE"] = val
    ids = [c for c in ("DATE_NAME", "GEOGRAPHY_NAME", "GEOGRAPHY_CODE") if c in keep]
    g = keep.groupby(ids, sort=False)["OBS_VALUE"]
    summed = g.sum(min_count=1).reset_index()
    n_missing = int(val.isna().sum())
    label = "Out-of-work benefits (sum of: " + "; ".join(have[norm(x)] for x in groups) + ")"
    summed.insert(len(ids), "ITEM_NAME", label)
    summed["OBS_VALUE"] = summed["OBS_VALUE"].map(lambda v: "" if pd.isna(v) else f"{v:.0f}")
    write_csv(summed, out, lineterminator="\n")
    return out, {"file": str(out), "from": str(path), "groups": list(groups),
                 "cells_missing": n_missing, "rows": int(len(summed)),
                 "how": "OBS_VALUE summed over the client groups per area and date"}


def _out_of_work(dl: Downloader, cfg: BuildConfig, labels: Sequence[str], lookup: Path,
                 design: Path | None, dens: pd.DataFrame, msoas: list[str],
                 apportion: str | None, src: Path, st: _State, say: Log,
                 ym: YearMap) -> pd.DataFrame:
    early = [m for m in labels if m <= WACG_LAST_MONTH]
    late = [m for m in labels if m > WACG_LAST_MONTH]
    parts = []
    if early:
        say(f"out-of-work benefits {', '.join(early)} (NOMIS working-age client group)")
        rep = dl_nomis.wacg(early, src / "nomis", downloader=dl)
        d = st.download("out_of_work_benefits (wacg)", rep)
        raw = Path(d["files"][0]["path"])
        derived, info = _wacg_groups(raw, cfg.wacg_groups,
                                     raw.with_name(raw.stem + ".groups.derived.csv"))
        st.derived.append(info)
        if info["cells_missing"]:
            st.notice("out_of_work_benefits", "missing cells",
                      f"{info['cells_missing']} client-group cells of {raw.name} are empty "
                      "(suppressed); the sums leave them out")
        res = ingest_nomis(derived, lookup, indicator="out_of_work_benefits", design=design,
                           boundaries=cfg.boundaries)
        st.loader("out_of_work_benefits (wacg)", res)
        parts.append((_by_order(res.table, early, "NOMIS working-age client group",
                                str(derived)), str(derived)))
    if late:
        say(f"out-of-work benefits {', '.join(late)} (Stat-Xplore benefit combinations)")
        quarters = [m.replace("-", "") for m in late]
        rep = dl_statxplore.benefit_combinations(msoas, quarters, src / "dwp", downloader=dl)
        d = st.download("out_of_work_benefits (benefit combinations)", rep)
        files = [f["path"] for f in d["files"]]
        done = 0
        for file in files:
            res = ingest_dwp(file, "out_of_work_benefits", lookup, design=design,
                             boundaries=cfg.boundaries, apportion_population=apportion)
            st.loader(f"out_of_work_benefits ({Path(file).name})", res)
            n = res.table["period_label"].nunique()
            parts.append((_by_order(res.table, late[done:done + n], "Stat-Xplore benefit "
                                    "combinations", file), file))
            done += n
        if done != len(late):
            raise InputError(f"Stat-Xplore benefit combinations gave {done} of the "
                             f"{len(late)} quarters asked for")
    joined = []
    mapping: dict[str, str] = {}
    for t, file in parts:
        mapping.update(t.attrs.get("publisher_labels", {}))
        joined.append(_join(t, "out_of_work_benefits", dens, ym, st, "out_of_work_benefits",
                            file))
    st.relabelled["out_of_work_benefits"] = mapping
    out = pd.concat(joined, ignore_index=True)
    # a ward must have every period: wards missing in one source are dropped (reported)
    n = out.groupby("ward")["period_label"].nunique()
    short = sorted(n[n < len(labels)].index)
    if short:
        st.notice("out_of_work_benefits", "coverage",
                  f"{len(short)} ward(s) lack a period in one of the two sources and are left "
                  f"out: {', '.join(short[:10])}")
        out = out[~out["ward"].isin(short)]
    return out


def _business(dl: Downloader, cfg: BuildConfig, labels: Sequence[str], lookup: Path,
              design: Path | None, dens: pd.DataFrame, apportion: str | None, folder: Path,
              st: _State, say: Log, ym: YearMap) -> pd.DataFrame:
    say(f"business units {', '.join(labels)} (NOMIS UK Business Counts)")
    rep = dl_nomis.business_counts(list(labels), folder, downloader=dl)
    d = st.download("business_units", rep)
    file = d["files"][0]["path"]
    res = ingest_nomis(file, lookup, indicator="business_units", design=design,
                       boundaries=cfg.boundaries, apportion_population=apportion)
    st.loader("business_units", res)
    t = _by_order(res.table, labels, "NOMIS UK Business Counts", file)
    st.relabelled["business_units"] = t.attrs["publisher_labels"]
    return _join(t, "business_units", dens, ym, st, "business_units", file)


def _prices(dl: Downloader, cfg: BuildConfig, windows: Sequence[str], lookup: Path,
            design: Path | None, src: Path, st: _State, say: Log) -> pd.DataFrame:
    years = sorted({y for w in windows for y in range(int(w[:4]), int(w[8:12]) + 1)})
    say(f"Price Paid {years[0]}-{years[-1]} ({len(years)} yearly files, HM Land Registry)")
    rep = dl_land_registry.download(years, src / "land-registry", downloader=dl)
    d = st.download("property_price", rep)
    ppd = [f["path"] for f in sorted(d["files"], key=lambda f: f["year"])]
    say("postcode directory (ONS NSPL)")
    kw = {"item": cfg.nspl_item} if cfg.nspl_item else {}
    prep = dl_ons.nspl(src / "postcodes", downloader=dl, **kw)
    pd_ = st.download("postcodes", prep)
    postcodes = pd_["files"][0]["path"]
    post_from = cfg.periods.post_from or period_start(windows[-1])
    say("summarising prices (nbdid ingest land-registry)")
    res = ingest_land_registry(ppd, postcodes, lookup=lookup, design=design,
                               periods=",".join(windows), post_from=post_from,
                               include_category_b=cfg.include_category_b,
                               boundaries=cfg.boundaries)
    st.loader("property_price", res)
    t = _by_order(res.table, windows, "Price Paid", ppd[0])
    st.relabelled["property_price"] = t.attrs["publisher_labels"]
    return t


# ------------------------------------------------------------------------------------------
# the panel and its report
# ------------------------------------------------------------------------------------------


def _finish(panel: pd.DataFrame, cfg: BuildConfig, periods: dict[str, tuple[str, ...]],
            st: _State) -> pd.DataFrame:
    """Period numbers, ``post``, the report's labels and the synthetic marker."""
    src = {"crime": "police", "burglary": "police", "criminal_damage": "police",
           "children_low_income": "children_low_income",
           "out_of_work_benefits": "out_of_work_benefits",
           "business_units": "business_units", "property_price": "property_price"}
    out = []
    for key, rows in panel.groupby("indicator", sort=False):
        labels = [lab for lab in periods[src[key]] if lab in set(rows["period_label"])]
        rows = rows.copy()
        order = {lab: i for i, lab in enumerate(labels)}
        rows["period"] = rows["period_label"].map(order).astype("int64")
        if cfg.periods.post_from:
            starts = {lab: period_start(lab) for lab in labels}
            rows["post"] = (rows["period_label"].map(starts) >= cfg.periods.post_from).astype("int64")
        else:
            rows["post"] = (rows["period"] == len(labels) - 1).astype("int64")
        if rows["post"].nunique() < 2:
            raise InputError(f"{key}: every period is {'post' if rows['post'].iloc[0] else 'pre'} "
                             f"with periods.post_from = '{cfg.periods.post_from}'",
                             column="periods.post_from")
        report_periods = _report_periods(key, cfg)
        if cfg.report_labels and tuple(labels) == report_periods:
            new = dict(zip(labels, INDICATORS[key].periods, strict=True))
            rows["period_label"] = rows["period_label"].map(new)
            prev = st.relabelled.get(key) or {lab: lab for lab in labels}
            st.relabelled[key] = {pub: new.get(can, can) for pub, can in prev.items()}
        out.append(rows)
    panel = pd.concat(out, ignore_index=True)
    panel["synthetic"] = bool(cfg.synthetic)
    for col in COLUMN_NAMES:
        if col not in panel:
            panel[col] = np.nan
    return panel[list(COLUMN_NAMES)]


def _report_periods(key: str, cfg: BuildConfig) -> tuple[str, ...]:
    if key in POLICE_INDICATORS:
        return REPORT_BUILD_PERIODS[f"police_{cfg.year_type}"]
    return REPORT_BUILD_PERIODS[key]


_ROWS_KEY = re.compile(r"(rows|records|sales|dropped|skipped|without|not_found|outside|"
                       r"unmatched|deleted|superseded|not_in_lookup|missing)", re.IGNORECASE)


def _rows_summary(rep: dict[str, Any]) -> dict[str, Any]:
    """The counts of rows read and dropped in a loader's report."""
    out = {}
    for k, v in rep.items():
        if not _ROWS_KEY.search(k):
            continue
        if isinstance(v, bool):
            continue
        if isinstance(v, (int, np.integer)):
            out[k] = int(v)
        elif isinstance(v, dict) and v:
            ints = {str(a): int(b) for a, b in v.items()
                    if isinstance(b, (int, np.integer)) and not isinstance(b, bool)}
            if ints:
                out[k] = ints
        elif isinstance(v, list) and k.endswith(("without_data", "examples")) and v:
            out[k] = v[:10]
    return out


def _source_files(downloads: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One record per file a download wrote: where it came from and its sha256."""
    out = []
    for name, reps in downloads.items():
        for rep in reps:
            for f in rep.get("files", []):
                rec = {"source": name, "file": f.get("path"), "sha256": f.get("sha256")}
                if f.get("pages"):
                    rec["url"] = [p.get("url") for p in f["pages"]]
                    rec["final_url"] = [p.get("final_url") for p in f["pages"]]
                    rec["page_sha256"] = [p.get("sha256") for p in f["pages"]]
                    rec["retrieved_at"] = max((p.get("retrieved_at") or "") for p in f["pages"])
                elif f.get("requests"):
                    rec["url"] = [r.get("url") for r in f["requests"]]
                    rec["final_url"] = [r.get("final_url") for r in f["requests"]]
                    rec["page_sha256"] = [r.get("sha256") for r in f["requests"]]
                    rec["retrieved_at"] = max((r.get("retrieved_at") or "") for r in f["requests"])
                else:
                    for k in ("url", "final_url", "retrieved_at", "bytes", "archive", "member",
                              "archive_sha256", "cube_sha256"):
                        if f.get(k) is not None:
                            rec[k] = f[k]
                out.append(rec)
    return out


def _report(panel: pd.DataFrame, cfg: BuildConfig, st: _State, wards: str, geo: Any,
            settings: DownloadSettings, src: Path, started: str, command: str | None
            ) -> dict[str, Any]:
    per = {}
    for key, rows in panel.groupby("indicator", sort=False):
        labs = rows.drop_duplicates("period").sort_values("period")
        per[str(key)] = {
            "rows": int(len(rows)), "wards": int(rows["ward"].nunique()),
            "pairs": int(rows["pair"].nunique()),
            "periods": [f"{r.period}: {r.period_label} (post={r.post})" for r in labs.itertuples()],
        }
    rep: dict[str, Any] = {
        "description": "nbdid build: the ward panel built from the publishers' files, with "
                       "the provenance of every file and what every guard found",
        **({"command": command} if command else {}),
        "started_at": started,
        "finished_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "synthetic": bool(cfg.synthetic),
        "wards": wards,
        "ward_vintage": geo.vintage,
        "config": asdict(cfg),
        "periods": {k: list(v) for k, v in cfg.resolved_periods().items()},
        "panel": {"rows": int(len(panel)), "wards": int(panel["ward"].nunique()),
                  "sha256": hash_frame(panel), "indicators": per},
        "guards": st.guards,
        "year_map": list(dict.fromkeys(st.year_map)),
        "period_labels": {k: v for k, v in st.relabelled.items() if v},
        "source_files": _source_files(st.downloads),
        "derived_files": st.derived,
        "rows": {name: _rows_summary(r) for name, r in st.loaders.items()},
        "downloads": st.downloads,
        "loaders": st.loaders,
        "sources_folder": str(src),
        "cache": {"folder": str(settings.cache_dir),
                  "manifest": str(Path(settings.cache_dir) / "manifest.json"),
                  "mirror": settings.mirror, "offline": settings.offline},
        "versions": package_versions(),
    }
    return rep
