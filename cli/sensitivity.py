"""``nbdid sensitivity``: refit every indicator under a grid of specifications."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
    p.add_argument("config", metavar="CONFIG",
                   help="sweep file (TOML); or 'collect' followed by the sweep file and the shard "
                        "folders: 'nbdid sensitivity collect CONFIG DIR... --out OUT' merges a "
                        "sharded sweep into the outputs of one run (nothing is fitted)")
    p.add_argument("dirs", metavar="DIR", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--out", metavar="DIR", help="output folder (default: the file's sweep.out)")
    p.add_argument("--force", action="store_true",
                   help="overwrite the summary outputs of an earlier run (finished specifications "
                        "are reused)")
    p.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="local worker processes (default) or an existing Dask cluster")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address (with --executor dask)")
    p.add_argument("--scheduler-file", metavar="FILE",
                   help="Dask scheduler file, as written by 'dask scheduler --scheduler-file' "
                        "(with --executor dask; instead of --scheduler)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="local worker processes (default: the number of CPUs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--shard", metavar="I/N",
                   help="fit only the I-th of N slices of the grid and write only specs/ (one "
                        "task of a SLURM/PBS array job); merge with 'nbdid sensitivity collect'")
    p.set_defaults(func=sensitivity_main)



def sensitivity_main(args: argparse.Namespace) -> int:
    """Handler of ``nbdid sensitivity`` (and ``nbdid sensitivity collect``)."""
    if args.config == "collect":
        return collect_main(args)
    if args.dirs:
        raise InputError(f"unexpected argument '{args.dirs[0]}' (one sweep file; "
                         "'nbdid sensitivity collect CONFIG DIR...' merges shard folders)")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1, not {args.workers}")
    if args.scheduler and args.scheduler_file:
        raise InputError("give --scheduler or --scheduler-file, not both")
    if args.executor == "dask" and not (args.scheduler or args.scheduler_file):
        raise InputError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786) "
                         "or --scheduler-file FILE")
    if (args.scheduler or args.scheduler_file) and args.executor != "dask":
        raise InputError("--scheduler and --scheduler-file are used only with --executor dask")
    scheduler = Path(args.scheduler_file) if args.scheduler_file else args.scheduler
    # imported here: the sweep loads PyMC, matplotlib and the matching engine (seconds)
    from nbdid.analysis.sensitivity import load_sweep_config
    from nbdid.workflow.sweep import run_sweep

    cfg = load_sweep_config(args.config)
    shard = None
    if args.shard:
        from nbdid.workflow.sweep import parse_shard

        shard = parse_shard(args.shard)
    res = run_sweep(cfg, args.out, force=args.force, executor=args.executor,
                    scheduler=scheduler, workers=args.workers, progress=not args.quiet,
                    shard=shard)
    if shard is not None:
        print(f"shard {shard[0]}/{shard[1]}: {len(res.fitted_ids)} specifications fitted now, "
              f"{len(res.skipped_ids)} reused; files in {res.out}/specs/ (merge the shards with "
              "'nbdid sensitivity collect CONFIG DIR...')")
        return 0
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


def collect_main(args: argparse.Namespace) -> int:
    """Handler of ``nbdid sensitivity collect CONFIG DIR...``."""
    if len(args.dirs) < 2:
        raise InputError("usage: nbdid sensitivity collect CONFIG DIR... [--out OUT]")
    if args.shard or args.executor != "local":
        raise InputError("'nbdid sensitivity collect' fits nothing: drop --shard and --executor")
    from nbdid.analysis.sensitivity import load_sweep_config
    from nbdid.workflow.sweep import collect_shards

    cfg = load_sweep_config(args.dirs[0])
    dirs = args.dirs[1:]
    res = collect_shards(cfg, dirs, args.out, force=args.force)
    print(res.text())
    print("")
    print(f"{len(res.specs)} specifications collected from {len(dirs)} folders into {res.out}/")
    return 0
