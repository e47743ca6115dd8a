"""``nbdid fit``: fit the hierarchical DiD model of one indicator of a ward panel.

Writes ``OUT/KEY.nc`` (ArviZ InferenceData with provenance attributes) and
``OUT/summary.csv`` (estimands with the diagnostics gate).  Heavy imports happen
inside the handler.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys

from nbdid.errors import InputError

SUMMARY_NAME = "summary.csv"
DIAG_COLUMNS = ["gate", "rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "bfmi_min",
                "ppp_min", "ppp_max"]


def register(subparsers) -> None:
    """Add the ``fit`` sub-command."""
    p = subparsers.add_parser(
        "fit",
        help="fit the Bayesian DiD model of one indicator",
        description=(
            "Fit the hierarchical Bayesian difference-in-differences model of one indicator "
            "of a ward panel; writes OUT/KEY.nc (posterior) and OUT/summary.csv."
        ),
    )
    p.add_argument("--data", required=True, metavar="PANEL.csv", help="tidy ward panel (CSV)")
    p.add_argument("--indicator", required=True, metavar="KEY", help="indicator key to fit")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--family", choices=("binomial", "poisson", "negbin", "price"),
                   help="likelihood family (required for keys not in the registry)")
    p.add_argument("--no-pairs", action="store_true", help="no matched-pair effects")
    p.add_argument("--event-study", action="store_true",
                   help="one treatment effect per period (panels with > 2 periods)")
    p.add_argument("--lower-is-better", action="store_true", default=None,
                   help="a fall is an improvement (for keys not in the registry)")
    p.add_argument("--config", metavar="FILE", help="TOML config file (see 'nbdid config')")
    p.add_argument("--draws", type=int, metavar="N", help="posterior draws per chain")
    p.add_argument("--tune", type=int, metavar="N", help="warm-up iterations per chain")
    p.add_argument("--chains", type=int, metavar="N", help="number of chains")
    p.add_argument("--seed", type=int, metavar="N", help="random seed (same seed, same numbers)")
    p.add_argument("--backend", choices=("nutpie", "pymc"),
                   help="sampler: nutpie (default, compiled once) or PyMC's NUTS")
    p.add_argument("--force", action="store_true", help="overwrite existing results")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run_fit)


def _config(args: argparse.Namespace):
    from nbdid.config import load_config

    cfg = load_config(args.config)
    over = {k: getattr(args, k) for k in ("draws", "tune", "chains", "seed", "backend")
            if getattr(args, k) is not None}
    for k in ("draws", "tune", "chains"):
        if k in over and over[k] < 1:
            raise InputError(f"--{k} must be at least 1, not {over[k]}")
    sampler = dataclasses.replace(cfg.sampler, **over)
    model = cfg.model
    if args.no_pairs:
        model = dataclasses.replace(model, pair_effects=False)
    if args.event_study:
        model = dataclasses.replace(model, event_study=True)
    return dataclasses.replace(cfg, sampler=sampler, model=model)


def run_fit(args: argparse.Namespace) -> int:
    """Handler of ``nbdid fit``."""
    key = args.indicator
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", key):
        raise InputError(f"indicator key '{key}' may only contain letters, digits, _ . -")
    cfg = _config(args)

    from nbdid.models.fit import resolve_family
    from nbdid.outputs import prepare_out_dir, write_csv, write_netcdf

    fam, _ = resolve_family(key, args.family)
    out = prepare_out_dir(args.out, [f"{key}.nc", SUMMARY_NAME], force=args.force)
    quiet = args.quiet

    def say(msg: str) -> None:
        if not quiet:
            print(f"nbdid fit: {msg}", file=sys.stderr, flush=True)

    from nbdid.data_prep.schema import read_panel

    say(f"reading {args.data}")
    panel = read_panel(args.data, families={key: fam})

    from nbdid.models.fit import fit_indicator

    say(f"fitting {key} ({args.family or fam}, {cfg.sampler.backend}, "
        f"{cfg.sampler.chains} chains x {cfg.sampler.draws} draws)")
    res = fit_indicator(
        panel, key, config=cfg, family=args.family, compiled_cache=None,
        lower_is_better=args.lower_is_better, validate=False, quiet=quiet,
    )
    summary = res.summary.copy()
    diag = res.diagnostics.iloc[0]
    for c in DIAG_COLUMNS:
        if c != "gate":
            summary[c] = diag[c]
    write_netcdf(res.idata, out / f"{key}.nc")
    write_csv(summary, out / SUMMARY_NAME)
    say(f"wrote {out / f'{key}.nc'} and {out / SUMMARY_NAME}; diagnostics: {diag['gate']}")
    if res.synthetic:
        say("note: the data are SYNTHETIC (see the 'notice' column)")
    return 0
