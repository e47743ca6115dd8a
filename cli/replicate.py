"""``nbdid replicate``: the report's own method, recomputed from its published numbers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nbdid.outputs import open_out_dir


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``replicate`` sub-command."""
    p = sub.add_parser(
        "replicate",
        help="recompute the report's Table 1 and B tables from its published values",
        description=(
            "Recompute Table 1 and the B tables of Everybody Needs Good Neighbourhoods 2 from "
            "the published values and 95%% CI half-widths alone, list the report's internal "
            "discrepancies, the denominators its intervals imply, the tipping point of "
            "each finding, and what the published numbers support once wards may differ in "
            "their change (a Bayesian tipping point with a prior measured from real data)."
        ),
    )
    p.add_argument("--out", default="nbdid-results/replication", help="output folder (default: %(default)s)")
    p.add_argument("--indicator", action="append", metavar="KEY",
                   help="restrict to this indicator (repeatable; default: all seven)")
    p.add_argument("--wards-per-group", type=int, default=29, metavar="N",
                   help="wards per group for the tipping point (default: %(default)s)")
    p.add_argument("--pair-correlation", type=float, default=0.0, metavar="RHO",
                   help="correlation of matched partners' ward-specific changes in the Bayesian "
                        "tipping point (default: %(default)s)")
    p.add_argument("--tau-prior", choices=("halfnormal", "lognormal"), default="halfnormal",
                   help="prior of the between-ward SD of change, scaled by the measured value "
                        "(default: %(default)s)")
    p.add_argument("--tau-scale-factor", type=float, default=1.0, metavar="F",
                   help="multiply the measured prior scales by F, e.g. 0.5 if the study wards vary "
                        "half as much as all MSOAs (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="overwrite existing results")
    p.set_defaults(func=run_replicate)


def mark(x: bool) -> str:
    """A tick or a cross, in ASCII when the terminal cannot show them."""
    enc = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "✓×".encode(enc)
    except (UnicodeEncodeError, LookupError):
        return "yes" if x else "no"
    return "✓" if x else "×"


def run_replicate(args: argparse.Namespace) -> int:
    """Handler of ``nbdid replicate``."""
    # imported here: the workflow loads matplotlib and SciPy, which `nbdid --help` must not
    from nbdid.workflow.replicate import REPLICATE_FILES, replicate

    # compute first: bad options fail before anything touches the output folder
    res = replicate(
        tuple(args.indicator or ()), args.wards_per_group,
        pair_correlation=args.pair_correlation, tau_prior=args.tau_prior,
        tau_scale_factor=args.tau_scale_factor,
    )
    # one writer per folder; marked unfinished until its last file
    with open_out_dir(args.out, REPLICATE_FILES, force=args.force, command="replicate"):
        print(res.text(mark=mark))
        out = res.save(args.out, force=args.force)
    figures = [n for n in REPLICATE_FILES if (out / n).exists() and not n.endswith(".csv")]
    print("")
    print(f"Wrote {len(res.tables)} tables to {Path(out)}/: " + ", ".join(res.tables))
    if figures:
        print(f"Wrote the figure {', '.join(figures)} (posterior DiD against ward-to-ward variation)")
    return 0
