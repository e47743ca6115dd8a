"""``nbdid sensitivity``: refit every indicator under a grid of specifications."""

from __future__ import annotations

import argparse
import sys

from nbdid.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``sensitivity`` sub-command."""
    p = sub.add_parser(
        "sensitivity",
        help="sensitivity sweep: refit every indicator under a grid of specifications",
        description=(
            "Refit the indicators under every specification of a sweep file (matching, sample "
            "and model choices; see docs/sensitivity.md) and write a table, a summary and a "
            "specification-curve figure per indicator.  Finished specifications are written "
            "to DIR/specs/ as they complete; a rerun skips them."
        ),
    )
    p.add_argument("config", metavar="CONFIG", help="sweep file (TOML)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: the file's sweep.out)")
    p.add_argument("--force", action="store_true",
                   help="overwrite the summary outputs of an earlier run (finished specifications "
                        "are reused)")
    p.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="local worker processes (default) or an existing Dask cluster")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address (with --executor dask)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="local worker processes (default: the number of CPUs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=sensitivity_main)


def sensitivity_main(args: argparse.Namespace) -> int:
    """Handler of ``nbdid sensitivity``."""
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1, not {args.workers}")
    if args.executor == "dask" and not args.scheduler:
        raise InputError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
    if args.scheduler and args.executor != "dask":
        raise InputError("--scheduler is used only with --executor dask")
    # imported here: the sweep loads PyMC, matplotlib and the matching engine (seconds)
    from nbdid.analysis.sensitivity import load_sweep_config
    from nbdid.workflow.sweep import run_sweep

    cfg = load_sweep_config(args.config)
    res = run_sweep(cfg, args.out, force=args.force, executor=args.executor,
                    scheduler=args.scheduler, workers=args.workers, progress=not args.quiet)
    print(res.text())
    print("")
    print(f"{len(res.specs)} specifications x {res.results['indicator'].nunique()} indicators: "
          f"{len(res.fitted_ids)} fitted now, {len(res.skipped_ids)} reused from {res.out}/specs/ "
          f"({res.seconds:.0f} s)")
    print(f"Results in {res.out}/:")
    print("  sensitivity.csv           one row per specification x indicator")
    print("  sensitivity_summary.csv   how often each conclusion holds, per indicator")
    print("  figures/spec_curve_KEY.png/.svg  specification curves")
    print("  specs/spec_ID.csv         each specification's rows (reused on rerun)")
    failed = int(res.summary["n_gate_failed"].sum())
    n_fitted = int(res.summary["n_fitted"].sum())
    if failed:
        print(f"nbdid sensitivity: {failed} of {n_fitted} fits failed the diagnostics gate "
              "(column 'gate'; hollow in the curves): raise [sweep.sampler] draws or chains "
              "before trusting them", file=sys.stderr)
    errors = res.results[res.results["gate"].astype(str) == "error"]
    if len(errors):
        print(f"nbdid sensitivity: {len(errors)} fits could not be made (see the 'error' column)",
              file=sys.stderr)
    return 0
