"""``nbdid run`` (the main job) and ``nbdid config``."""

from __future__ import annotations

import argparse
import sys

from nbdid.config import RunConfig, load_config, to_toml


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``run`` and ``config`` sub-commands."""
    p = sub.add_parser(
        "run",
        help="the main job: replicate the report and fit every indicator",
        description="Fit all seven indicators on the embedded default panel (or the panel a config names).",
    )
    p.add_argument("--config", metavar="FILE", help="TOML config file (see 'nbdid config')")
    p.add_argument("--out", metavar="DIR", help="output folder (default: the config's 'out', nbdid-results)")
    p.add_argument("--force", action="store_true", help="overwrite existing results")
    p.set_defaults(func=run_main)

    c = sub.add_parser("config", help="print the default configuration as TOML")
    c.set_defaults(func=lambda args: print(to_toml(RunConfig()), end="") or 0)


def run_main(args: argparse.Namespace) -> int:
    """Handler of ``nbdid run``."""
    from nbdid.analysis.commands import REPLICATE_FILES, format_report, replicate
    from nbdid.outputs import prepare_out_dir, write_csv

    cfg = load_config(args.config)
    tables = replicate(cfg.indicators)
    out = prepare_out_dir(args.out or cfg.out, [f"replication/{n}" for n in REPLICATE_FILES], force=args.force)
    print(format_report(tables))
    (out / "replication").mkdir(exist_ok=True)
    for name, df in tables.items():
        write_csv(df, out / "replication" / name)
    print(f"\nResults in {out}/", file=sys.stderr)
    return 0
