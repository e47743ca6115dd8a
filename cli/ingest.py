"""``nbdid ingest SOURCE``: build a tidy table from raw public files.

Each source is an :class:`IngestSource` in :data:`INGEST_SOURCES`: its options (added
to the source's own parser) and a runner that turns the parsed options into one call of
the source's loader function (``nbdid.data_prep.police.ingest_police`` ...).  Loader
modules are imported only when their source runs (start-up time: ``nbdid --help`` does
not load pandas), so a missing or broken source never breaks the other commands.

Every source takes ``--out FILE.csv`` and ``--force``; the table and its provenance
report (``FILE.provenance.json``/``.txt``) are written by
:func:`nbdid.data_prep.ingest.write_ingest_result`; the guards' notices (year map,
boundary changes, partial periods) are printed on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from nbdid.errors import InputError


@dataclass(frozen=True)
class IngestSource:
    """One ``nbdid ingest`` source.

    Attributes
    ----------
    module
        Library module of the loader (imported before the source runs).
    add_arguments
        Adds the source's options to its parser.
    run
        Calls the loader with the parsed options; returns an ``IngestResult``.
    description
        First line of ``nbdid ingest SOURCE --help`` (default: the module's docstring).
    """

    module: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Any]
    description: str = ""


class _SourceParser(argparse.ArgumentParser):
    """Parser of one ingest source's options; usage errors are one line, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _csv_list(text: str | None) -> list[str] | None:
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


def _boundaries(p: argparse.ArgumentParser) -> None:
    p.add_argument("--boundaries", choices=("study", "lookup"), default="study",
                   help="areas of the report's wards: 'study' (default: the study-era WD17 "
                        "boundaries, from the WD17 lookup in the folder of --lookup) or "
                        "'lookup' (the lookup's vintage; re-warded wards mapped)")


# ----------------------------------------------------------------------------------------
# police
# ----------------------------------------------------------------------------------------


def _police_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--crime-dir", required=True, metavar="DIR",
                        help="folder with police.uk YYYY-MM-<force>-street.csv files (searched recursively)")
    parser.add_argument("--lookup", required=True, metavar="LSOA_TO_WARD.csv",
                        help="ONS LSOA (2011) to ward lookup; other ward lookups in the same folder "
                             "are used to resolve re-warded study wards")
    parser.add_argument("--year-type", choices=("financial", "calendar"), default="financial",
                        help="financial years April-March ('2010/11', default) or calendar years")
    parser.add_argument("--population", metavar="DENOMS.csv",
                        help="ward x year denominators (nbdid ingest population) for the exposure, "
                             "joined through the year map")
    parser.add_argument("--design", metavar="DESIGN.csv",
                        help="wards to keep: group, pair and ward codes or ward_name + la "
                             "(default: the report's 58 wards)")
    parser.add_argument("--indicators", default="crime,burglary,criminal_damage",
                        help="comma-separated subset of crime,burglary,criminal_damage")
    parser.add_argument("--post-from", default="2014-04", metavar="YYYY-MM",
                        help="periods starting in or after this month are post=1 (default 2014-04)")
    parser.add_argument("--complete-years-only", action="store_true",
                        help="drop years with months missing from the files (reported either way)")
    parser.add_argument("--partial-periods", choices=("refuse", "drop-pairs", "shorten", "keep"),
                        default="refuse",
                        help="when a ward's force has months missing in a period (police.uk starts "
                             "2010-12; Greater Manchester stops 2019-07): refuse (default), "
                             "drop-pairs, shorten (months every force published; exposure "
                             "scaled) or keep the partial counts")
    parser.add_argument("--households-scaling", choices=("none", "population"), default="none",
                        help="burglary denominator: Census 2011 households as they are (default) "
                             "or scaled by the ward's population change since mid-2011")
    _boundaries(parser)
    parser.add_argument("--engine", choices=("auto", "pyarrow", "pandas"), default="auto",
                        help="CSV reader (default auto: pyarrow when installed)")


def _police_run(a: argparse.Namespace):
    from nbdid.data_prep.police import ingest_police
    from nbdid.data_prep.yearmap import YearMap

    return ingest_police(
        a.crime_dir, a.lookup, year_type=a.year_type, population=a.population,
        design=a.design, indicators=_csv_list(a.indicators) or [], post_from=a.post_from,
        complete_years_only=a.complete_years_only, partial_periods=a.partial_periods,
        boundaries=a.boundaries, year_map=YearMap(households_scaling=a.households_scaling),
        engine=a.engine,
    )


# ----------------------------------------------------------------------------------------
# land registry
# ----------------------------------------------------------------------------------------


def _lr_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ppd", required=True, nargs="+", metavar="FILE",
                        help="HM Land Registry Price Paid CSV file(s) (no header, 16 columns)")
    parser.add_argument("--postcodes", required=True, metavar="NSPL.csv",
                        help="ONS postcode directory (NSPL/ONSPD CSV: pcds/pcd, lsoa11, wdYY ...)")
    parser.add_argument("--lookup", metavar="LSOA_TO_WARD.csv",
                        help="place postcodes via their LSOA and this ONS LSOA-to-ward lookup "
                             "(default: the postcode directory's ward column)")
    parser.add_argument("--ward-column", help="ward column of the postcode directory (default: newest wdYY)")
    parser.add_argument("--ward-lookups", nargs="*", metavar="LOOKUP.csv", default=(),
                        help="LSOA-to-ward lookups used to resolve the study wards when no --lookup "
                             "is given (default: none; give the lookup matching the ward column)")
    parser.add_argument("--design", metavar="DESIGN.csv", help="wards to keep (default: the report's 58)")
    parser.add_argument("--periods", metavar="YYYY-MM:YYYY-MM,...",
                        help="period windows, e.g. 2007-12:2013-11,2018-12:2024-11 (default: calendar years)")
    parser.add_argument("--post-from", metavar="YYYY-MM",
                        help="periods starting in or after this month are post=1 (default: all after the first)")
    parser.add_argument("--include-category-b", action="store_true",
                        help="also keep PPD category B (additional price paid) entries")
    _boundaries(parser)
    parser.add_argument("--engine", choices=("auto", "pyarrow", "pandas"), default="auto",
                        help="CSV reader of the Price Paid files (default auto: pyarrow when installed)")


def _lr_run(a: argparse.Namespace):
    from nbdid.data_prep.land_registry import ingest_land_registry

    return ingest_land_registry(
        a.ppd, a.postcodes, lookup=a.lookup, ward_column=a.ward_column,
        ward_lookups=list(a.ward_lookups), design=a.design, periods=a.periods,
        post_from=a.post_from, include_category_b=a.include_category_b,
        boundaries=a.boundaries, engine=a.engine,
    )


# ----------------------------------------------------------------------------------------
# dwp, nomis
# ----------------------------------------------------------------------------------------


def _dwp_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", required=True, metavar="EXPORT.csv",
                        help="Stat-Xplore CSV export (areas in rows, periods in columns)")
    parser.add_argument("--indicator", required=True,
                        help="indicator key of the counts, e.g. children_low_income or "
                             "out_of_work_benefits")
    parser.add_argument("--lookup", required=True, metavar="LOOKUP.csv",
                        help="ONS LSOA11 (recommended: MSOAs are apportioned) or MSOA11 "
                             "to ward lookup")
    parser.add_argument("--population", metavar="DENOMS.csv",
                        help="ward denominators table (nbdid ingest population) for exposure")
    parser.add_argument("--denominator",
                        help="denominator to use (default: the indicator's, e.g. "
                             "children_0_19)")
    parser.add_argument("--periods",
                        help="comma-separated periods to keep, e.g. '2014/15,2020/21' "
                             "(default: all)")
    parser.add_argument("--missing", choices=("zero", "error"), default="zero",
                        help="'..' cells: count as 0 (default) or stop with an error")
    parser.add_argument("--apportion-population", metavar="SAPE.csv",
                        help="ONS SAPE LSOA file: apportion MSOAs by LSOA population "
                             "instead of by LSOA count")
    parser.add_argument("--design", metavar="DESIGN.csv",
                        help="wards to keep: group, pair and ward codes or ward_name + la "
                             "(default: the report's 58 wards)")
    _boundaries(parser)


def _dwp_run(a: argparse.Namespace):
    from nbdid.data_prep.dwp import ingest_dwp

    return ingest_dwp(
        a.file, a.indicator, a.lookup, population=a.population, denominator=a.denominator,
        periods=_csv_list(a.periods), missing=a.missing,
        apportion_population=a.apportion_population, design=a.design, boundaries=a.boundaries,
    )


def _nomis_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", required=True, metavar="FILE",
                        help="UK Business Counts by MSOA: Nomis API CSV or web download CSV")
    parser.add_argument("--lookup", required=True, metavar="LOOKUP.csv",
                        help="ONS LSOA11 (MSOAs apportioned) or MSOA11 (best fit) to ward "
                             "lookup")
    parser.add_argument("--indicator", default="business_units",
                        help="indicator key (default business_units)")
    parser.add_argument("--population", metavar="DENOMS.csv",
                        help="ward denominators table for exposure (working_age)")
    parser.add_argument("--denominator", default=None,
                        help="denominator to use (default: the indicator's, working_age)")
    parser.add_argument("--periods", help="comma-separated years to keep (default: all)")
    parser.add_argument("--apportion-population", metavar="SAPE.csv",
                        help="ONS SAPE LSOA file: apportion MSOAs by LSOA population")
    parser.add_argument("--design", metavar="DESIGN.csv",
                        help="wards to keep: group, pair and ward codes or ward_name + la "
                             "(default: the report's 58 wards)")
    _boundaries(parser)


def _nomis_run(a: argparse.Namespace):
    from nbdid.data_prep.nomis import ingest_nomis

    return ingest_nomis(
        a.file, a.lookup, indicator=a.indicator, population=a.population,
        denominator=a.denominator, periods=_csv_list(a.periods),
        apportion_population=a.apportion_population, design=a.design, boundaries=a.boundaries,
    )


# ----------------------------------------------------------------------------------------
# population, imd
# ----------------------------------------------------------------------------------------


def _population_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sape", nargs="+", required=True, metavar="FILE",
                        help="ONS SAPE single-year-of-age LSOA CSV file(s), one per year")
    parser.add_argument("--year", type=int, action="append", default=None,
                        help="mid-year of each --sape file (default: from the file name or "
                             "title); give once per file")
    parser.add_argument("--households", metavar="FILE",
                        help="Census 2011 households table (KS105EW/QS406EW bulk CSV)")
    parser.add_argument("--households-column", metavar="NAME",
                        help="total column of --households (default: the 'All households' "
                             "/ 'All categories' column)")
    parser.add_argument("--households-lookup", metavar="FILE",
                        help="lookup for --households when it is by OA (default: --lookup)")
    parser.add_argument("--lookup", required=True, metavar="FILE",
                        help="ONS LSOA-to-ward lookup (e.g. LSOA11_to_WD19_LAD19_Lookup_EW.csv)")
    parser.add_argument("--boundaries", choices=("study", "lookup"), default="study",
                        help="'study' (default): also write the report's wards on their "
                             "study-era (WD17) boundaries when --lookup is of another vintage; "
                             "'lookup': only the lookup's wards")


def _population_run(a: argparse.Namespace):
    from nbdid.data_prep.population import ingest_population

    return ingest_population(
        a.sape, a.lookup, years=a.year, households=a.households,
        households_column=a.households_column, households_lookup=a.households_lookup,
        boundaries=a.boundaries,
    )


def _imd_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--imd", required=True, metavar="FILE",
                        help="IMD 2019: ONS IMD (Dec 2019) lookup or MHCLG File 7 CSV")
    parser.add_argument("--lookup", required=True, metavar="LSOA_TO_WARD.csv",
                        help="ONS LSOA (2011) to ward lookup")
    parser.add_argument("--design", metavar="DESIGN.csv",
                        help="wards to summarise (default: the report's 58; 'all' for every ward)")
    _boundaries(parser)


def _imd_run(a: argparse.Namespace):
    from nbdid.data_prep.imd import ingest_imd

    return ingest_imd(a.imd, a.lookup, design=a.design, boundaries=a.boundaries)


INGEST_SOURCES: dict[str, IngestSource] = {
    "police": IngestSource("nbdid.data_prep.police", _police_arguments, _police_run),
    "land-registry": IngestSource("nbdid.data_prep.land_registry", _lr_arguments, _lr_run),
    "dwp": IngestSource("nbdid.data_prep.dwp", _dwp_arguments, _dwp_run),
    "nomis": IngestSource("nbdid.data_prep.nomis", _nomis_arguments, _nomis_run),
    "population": IngestSource("nbdid.data_prep.population", _population_arguments,
                               _population_run),
    "imd": IngestSource("nbdid.data_prep.imd", _imd_arguments, _imd_run),
}
"""Ingest sources: CLI name -> options and runner."""


# ----------------------------------------------------------------------------------------
# registration and the handler
# ----------------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    """Add the ``ingest`` sub-command."""
    ing = subparsers.add_parser(
        "ingest",
        help="build a tidy table from raw public files (police, land-registry, dwp, ...)",
        description=(
            "Build a tidy table from raw public files. Sources: "
            + ", ".join(INGEST_SOURCES)
            + ". Run 'nbdid ingest SOURCE --help' for a source's options. Every source "
            "takes --out FILE.csv and --force; a provenance report is written next to the "
            "table as FILE.provenance.json and FILE.provenance.txt."
        ),
    )
    ing.add_argument("source", choices=list(INGEST_SOURCES), metavar="SOURCE",
                     help="one of: " + ", ".join(INGEST_SOURCES))
    ing.add_argument("source_args", nargs=argparse.REMAINDER, metavar="...",
                     help="options of the source (see 'nbdid ingest SOURCE --help')")
    ing.set_defaults(func=_cmd_ingest)


def load_source(name: str):
    """Import the loader module of source ``name`` (one-line InputError if unavailable)."""
    modname = INGEST_SOURCES[name].module
    try:
        return importlib.import_module(modname)
    except ModuleNotFoundError as err:
        if err.name and (modname == err.name or modname.startswith(err.name + ".")):
            raise InputError(
                f"ingest source '{name}' is not available in this installation "
                f"(module {modname} not found)"
            ) from None
        raise InputError(
            f"ingest source '{name}' needs the package '{err.name}', which is not installed"
        ) from None


def _cmd_ingest(args: argparse.Namespace) -> int:
    from nbdid.data_prep.ingest import guard_lines, prepare_ingest_out, write_ingest_result
    from nbdid.data_prep.schema import IngestResult

    src = INGEST_SOURCES[args.source]
    module = load_source(args.source)
    description = src.description or (module.__doc__ or "").strip().split("\n\n")[0] or None
    parser = _SourceParser(prog=f"nbdid ingest {args.source}", description=description)
    parser.add_argument("--out", required=True, metavar="FILE.csv",
                        help="table to write (provenance goes to FILE.provenance.json/.txt)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    src.add_arguments(parser)
    sargs = parser.parse_args(args.source_args)

    prepare_ingest_out(sargs.out, force=sargs.force)  # a clash stops before any work
    result = src.run(sargs)
    if not isinstance(result, IngestResult):
        raise TypeError(f"ingest source '{args.source}' must return an IngestResult")
    table, report = write_ingest_result(
        result, sargs.out, force=sargs.force, source=args.source, module=src.module,
        command="nbdid ingest " + " ".join([args.source, *args.source_args]),
    )
    for line in guard_lines(report):
        print(f"nbdid ingest {args.source}: note: {line}", file=sys.stderr)
    out = Path(sargs.out)
    print(f"wrote {len(table)} rows ({result.kind}) to {out}; provenance in "
          f"{out.parent / (out.stem + '.provenance.json')}")
    return 0
