"""``nbdid match``: covariate balance of the report's pairs, and matching any table.

``nbdid match --study [--imd FILE] [--lookups DIR] [--out DIR] ...``
    Ward covariates (IMD 2019 ranks, authority type; OAC 2011 and region when their
    files are given) for every English ward and the 58 study wards, the balance of the
    report's 29 published pairs on them, and the benchmark ward the matching engine
    would pick for each NBI ward.  Reads the real extracts in ``../shared/data`` when
    no files are given.
``nbdid match --treated FILE --candidates FILE --covariates a,b [--id-col ward] ...``
    Match the rows of one CSV to those of another and report the balance.
"""

from __future__ import annotations

import argparse
from typing import get_args

from nbdid.config import MatchDistance, MatchMethod
from nbdid.errors import InputError
from nbdid.outputs import open_out_dir

DISTANCES: tuple[str, ...] = get_args(MatchDistance)
METHODS: tuple[str, ...] = get_args(MatchMethod)
DEFAULT_STUDY_COVARIATES: tuple[str, ...] = (
    "mean_rank",
    "median_rank",
    "share_most_deprived_decile",
    "share_most_deprived_quintile",
)
"""Shown in the help; a test checks it equals the engine's default."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``match`` sub-command."""
    p = sub.add_parser(
        "match",
        help="covariate balance of the report's matched pairs; match any treated/candidate tables",
        description=(
            "With --study: compute ward covariates (IMD 2019 ranks, authority type; OAC 2011 "
            "composition and region when their files are given) for every English ward and the "
            "report's 58 wards, report the balance of the 29 published pairs and the benchmark the "
            "matching engine would pick for each NBI ward. Reads the real extracts in "
            "../shared/data when --imd/--lookups are not given. Without --study: match the rows of "
            "--treated to those of --candidates on --covariates. See docs/matching.md."
        ),
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--study", action="store_true", help="the report's 29 pairs on real covariates")
    mode.add_argument("--treated", metavar="FILE", help="CSV of treated units (with --candidates)")
    p.add_argument("--candidates", metavar="FILE", help="CSV of candidate controls")
    p.add_argument("--id-col", default="ward", metavar="NAME", help="id column (default: %(default)s)")
    p.add_argument("--imd", metavar="FILE", help="IMD 2019 (ONS IMD lookup or MHCLG File 7)")
    p.add_argument("--lookups", metavar="DIR", help="folder (or file) of LSOA-to-ward lookups")
    p.add_argument("--oac", metavar="FILE", help="ONS '2011 OAC Clusters and Names' CSV")
    p.add_argument("--oa-lookup", metavar="FILE", help="OA11 to ward (or OA11 to LSOA11) lookup, for --oac")
    p.add_argument("--regions", metavar="FILE", help="local authority to region lookup (LADyyCD, RGNyyNM)")
    p.add_argument("--covariates", action="append", metavar="A,B",
                   help="matching covariates, comma-separated (study default: "
                        + ",".join(DEFAULT_STUDY_COVARIATES) + ")")
    p.add_argument("--distance", choices=DISTANCES, default="mahalanobis",
                   help="distance (default: %(default)s)")
    p.add_argument("--method", choices=METHODS, default="greedy", help="default: %(default)s")
    p.add_argument("--ratio", type=int, default=1, metavar="K", help="controls per treated (default 1)")
    p.add_argument("--replace", action="store_true", help="match with replacement")
    p.add_argument("--caliper", type=float, metavar="SD", help="caliper in SDs of the distance")
    p.add_argument("--exact", action="append", metavar="COL",
                   help="columns that must be equal (study: authority_type, region)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: nbdid-results/match)")
    p.add_argument("--force", action="store_true", help="overwrite existing results")
    p.set_defaults(func=run_match)


def _split(items: list[str] | None) -> list[str]:
    out: list[str] = []
    for it in items or []:
        out += [x.strip() for x in it.split(",") if x.strip()]
    return out


def _spec(args: argparse.Namespace, default_cov: tuple[str, ...] | None):
    # imported here: the matching engine loads SciPy
    from nbdid.analysis.matching import MatchSpec

    cov = _split(args.covariates) or list(default_cov or ())
    if not cov:
        raise InputError("give --covariates A,B (the numeric columns to match on)")
    if args.ratio < 1:
        raise InputError(f"--ratio must be at least 1, not {args.ratio}")
    return MatchSpec(covariates=tuple(cov), distance=args.distance, ratio=args.ratio,
                     replace=args.replace, caliper=args.caliper, exact=tuple(_split(args.exact)),
                     method=args.method)


def run_match(args: argparse.Namespace) -> int:
    """Handler of ``nbdid match``."""
    if args.study:
        return _run_study(args)
    if not args.candidates:
        raise InputError("--treated needs --candidates FILE")
    if not args.covariates:
        raise InputError("give --covariates A,B (the numeric columns to match on)")
    return _run_general(args)


def _run_study(args: argparse.Namespace) -> int:
    from nbdid.data_prep.covariates import find_match_inputs
    from nbdid.workflow.match import STUDY_FILES, match_study

    if args.treated or args.candidates:
        raise InputError("--study cannot be combined with --treated/--candidates")
    spec = _spec(args, DEFAULT_STUDY_COVARIATES)
    imd, lookup = find_match_inputs(args.imd, args.lookups)
    out_dir = args.out or "nbdid-results/match"
    # check the output folder before the (seconds-long) covariate computation
    # one writer per folder; marked unfinished until its last file
    with open_out_dir(out_dir, STUDY_FILES, force=args.force, command="match"):
        res = match_study(spec, imd=imd, lookups=lookup, oac=args.oac, oa_lookup=args.oa_lookup,
                          regions=args.regions)
        print(res.text())
        out = res.save(out_dir, force=args.force)
    print(f"\nWrote {', '.join(STUDY_FILES)} to {out}/")
    return 0


def _run_general(args: argparse.Namespace) -> int:
    from nbdid.data_prep.covariates import read_match_table
    from nbdid.workflow.match import GENERAL_FILES, match

    spec = _spec(args, None)
    cov, ex = list(spec.covariates), list(spec.exact)
    treated = read_match_table(args.treated, args.id_col, cov, ex, "treated")
    cands = read_match_table(args.candidates, args.id_col, cov, ex, "candidates")
    out_dir = args.out or "nbdid-results/match"
    # one writer per folder; marked unfinished until its last file
    with open_out_dir(out_dir, GENERAL_FILES, force=args.force, command="match"):
        res = match(treated, cands, spec, id_col=args.id_col)
        print(res.text())
        out = res.save(out_dir, force=args.force)
    print(f"\nWrote {', '.join(GENERAL_FILES)} to {out}/")
    return 0
