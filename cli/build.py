"""``nbdid build``: the ward panel of the seven indicators from the publishers' files.

Only parses arguments, calls :func:`nbdid.workflow.build.build` and prints.  See
``docs/real_data.md``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from nbdid.errors import InputError

_EPILOG = (
    "Environment: STATXPLORE_API_KEY (required for children in low income and out-of-work "
    "benefits: free registration at https://stat-xplore.dwp.gov.uk), NOMIS_API_KEY "
    "(optional: fewer, larger NOMIS pages), NBDID_CACHE, NBDID_MIRROR, NBDID_OFFLINE. "
    "See docs/real_data.md."
)


def register(subparsers: Any) -> None:
    """Add the ``build`` sub-command."""
    p = subparsers.add_parser(
        "build",
        help="download the public files and build the real ward panel (seven indicators)",
        description=(
            "Build the ward panel of the seven indicators from the publishers' files: download "
            "what the cache does not hold, run the loaders with the year map and the guards, "
            "join the denominators, validate, and write PANEL.csv with one provenance report "
            "(PANEL.provenance.json/.txt) and a run config (PANEL.run.toml) for 'nbdid run'. "
            + _EPILOG
        ),
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--study", action="store_true",
                       help="the report's 58 wards (29 Big Local/NBI areas and their benchmarks)")
    which.add_argument("--wards", metavar="FILE",
                       help="any ward list: CSV with group (nbi/benchmark), optional pair, and "
                            "ward codes or ward_name + la")
    p.add_argument("--out", metavar="PANEL.csv", help="panel file to write")
    p.add_argument("--config", metavar="FILE",
                   help="build config (TOML): periods and choices (see --print-config)")
    p.add_argument("--sources", metavar="DIR",
                   help="folder for the raw files (default: PANEL.sources beside the panel)")
    g = p.add_argument_group("cache and network")
    g.add_argument("--cache", metavar="DIR",
                   help="download cache folder (default: $NBDID_CACHE or the per-user cache)")
    g.add_argument("--mirror", metavar="URL",
                   help="fetch http(s)://HOST/PATH from URL/HOST/PATH (default: $NBDID_MIRROR)")
    g.add_argument("--offline", action="store_true", default=None,
                   help="use the cache only, never the network")
    g.add_argument("--refresh", action="store_true", default=None,
                   help="download again even when cached")
    g.add_argument("--retries", type=int, metavar="N", help="retries after a failure (4)")
    g.add_argument("--timeout", type=float, metavar="S", help="network time-out in seconds (60)")
    g.add_argument("--pause", type=float, metavar="S",
                   help="seconds between API pages downloaded (NOMIS, ArcGIS; default 1)")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing panel, provenance and run config")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--print-config", action="store_true",
                   help="print the default build config as TOML and stop")
    p.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    """Handler of ``nbdid build``."""
    from nbdid.config import BuildConfig, load_build_config, to_toml

    if args.print_config:
        print(to_toml(BuildConfig()), end="")
        return 0
    if not args.study and not args.wards:
        raise InputError("give --study (the report's 58 wards) or --wards FILE", column="--study")
    if not args.out:
        raise InputError("give --out PANEL.csv", column="--out")
    out = Path(args.out)
    if out.suffix.lower() != ".csv":
        raise InputError(f"--out {out} must end in .csv", column="--out")
    if args.retries is not None and args.retries < 0:
        raise InputError(f"--retries must be >= 0, not {args.retries}", column="--retries")
    cfg = load_build_config(args.config)

    from nbdid.download import DownloadSettings
    from nbdid.workflow.build import build, default_sources, hold_build_out

    settings = DownloadSettings.from_env(
        cache_dir=args.cache, mirror=args.mirror, offline=args.offline, refresh=args.refresh,
        retries=args.retries, timeout=args.timeout, pause=args.pause)

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"nbdid build: {msg}", file=sys.stderr, flush=True)

    argv = getattr(args, "argv", None)
    # one build per folder; a clash with existing files stops before any download
    with hold_build_out(out, force=args.force):
        res = build(wards=args.wards, config=cfg, settings=settings,
                    sources=args.sources or default_sources(out), log=log,
                    command=shlex.join(["nbdid", *argv]) if argv else None)
        paths = res.save(out, force=args.force)
    for line in res.guard_lines():
        print(f"nbdid build: note: {line}", file=sys.stderr)
    print(res.text())
    if cfg.synthetic:
        print("NOTE: SYNTHETIC TEST DATA - the source files were generated (build config "
              "'synthetic = true'); every panel row is marked synthetic.")
    print(f"wrote {paths['panel']}")
    print(f"provenance: {paths['provenance_txt']} (and .json)")
    print(f"next: nbdid run --config {paths['run_config']}")
    return 0
