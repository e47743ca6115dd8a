"""``nbdid run`` (the main job) and ``nbdid config``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from nbdid.cli._common import progress
from nbdid.config import RunConfig, load_config, to_toml
from nbdid.errors import InputError
from nbdid.outputs import check_out_dir, describe_holder, unfinished_run


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``run`` and ``config`` sub-commands."""
    p = sub.add_parser(
        "run",
        help="the main job: replicate the report and fit every indicator",
        description=(
            "Replicate the report's method and fit the hierarchical Bayesian DiD model of all "
            "seven indicators on the embedded synthetic default panel (or the panel a config "
            "names); write comparison tables, figures and posteriors."
        ),
    )
    p.add_argument("--config", metavar="FILE", help="TOML config file (see 'nbdid config')")
    p.add_argument("--out", metavar="DIR", help="output folder (default: the config's 'out', nbdid-results)")
    p.add_argument("--force", action="store_true", help="overwrite existing results")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in --out: reuse the indicators it finished "
                        "(same config, panel and seed) and fit the rest; the same command without "
                        "--resume does so too, --resume fails if there is nothing to resume")
    p.add_argument("--no-report", action="store_true",
                   help="do not write the findings report (report.html, report.md, tables/); "
                        "'nbdid report DIR' writes it later")
    p.set_defaults(func=run_main)

    c = sub.add_parser(
        "config",
        help="print the default configuration as TOML",
        description="Print the default configuration (every default nbdid uses) as an editable TOML file.",
    )
    c.set_defaults(func=print_config)


def print_config(args: argparse.Namespace) -> int:
    """Handler of ``nbdid config``."""
    print(to_toml(RunConfig()), end="")
    return 0


def run_main(args: argparse.Namespace) -> int:
    """Handler of ``nbdid run``."""
    # imported here: the workflow loads PyMC, ArviZ and matplotlib (seconds), which
    # `nbdid --help` and argument errors must not wait for
    from nbdid.figures.render import FigureRenderer
    from nbdid.outputs import open_out_dir
    from nbdid.workflow.report import report_pngs
    from nbdid.workflow.resume import RunCheckpoint
    from nbdid.workflow.run import check_feasible, load_run_panel, run, run_outputs

    cfg = load_config(args.config)
    out = args.out or cfg.out
    report = not args.no_report
    if args.resume and not args.force and unfinished_run(out) is None:
        done = (Path(out) / "run_info.json").exists()
        raise InputError(f"nothing to resume in {out}: it holds no unfinished nbdid run"
                         + ("; its run finished (use --force to run it again)" if done else ""))
    # results already in --out are refused at once (nothing is created)
    check_out_dir(out, run_outputs(cfg.indicators, report=report), force=args.force)
    # inputs next: nothing touches the output folder until they are known to be good
    panel, source = load_run_panel(cfg)
    check_feasible(panel, cfg)
    # one writer per folder; progress recorded as each fit finishes, so that an
    # interrupted run resumes (the folder is marked unfinished until the last file);
    # the figures (and the report's copies of them) are drawn by a worker process while
    # the fits go on (a fit keeps about one core busy); it is stopped at once if the run
    # fails or is interrupted
    renderer = FigureRenderer(workers=1, also=report_pngs if report else None)
    with open_out_dir(out, run_outputs(cfg.indicators, report=report), force=args.force,
                      command="run") as session, renderer:
        if session.stale_lock:
            progress(f"nbdid run: note: the earlier command in {out} "
                     f"({describe_holder(session.stale_lock)}) was killed before it finished")
        ckpt = RunCheckpoint.start(session, cfg, panel, resume=args.resume and not args.force)
        if ckpt.note:
            progress(f"nbdid run: {ckpt.note}")
        res = run(panel, config=cfg, source=source, progress=progress, checkpoint=ckpt,
                  validated=True, renderer=renderer)
        if getattr(args, "argv", None) is not None:
            res.info["command"] = shlex.join(["nbdid", *args.argv])
        folder = res.save(out, force=args.force, report=report)

    # tell the user what was found and where everything is
    print(res.text())
    print("")
    print(f"Results in {Path(folder)}/ (finished in {res.seconds:.0f} s):")
    if report:
        print("  report.html, report.md    the findings report (self-contained page; Markdown")
        print("                            with figures/); tables/ for papers (HTML, LaTeX, Markdown)")
    print("  comparison.csv            report vs posterior, one row per indicator")
    print("  summary.csv               posterior estimands (link, ratio, own unit, percent)")
    print("  trajectories.csv          posterior group values per period")
    print("  diagnostics.csv           R-hat, ESS, divergences, BFMI, PPC and the gate")
    print("  posteriors/KEY.nc         InferenceData per indicator (open with arviz.from_netcdf)")
    print("  figures/                  forest.png/.svg, trajectory_KEY.png, diagnostics.png,")
    print("                            tipping_bayes.png/.svg (published DiDs vs ward variation)")
    print("  replication/              the report's method recomputed (see 'nbdid replicate')")
    print("  concordance*.csv          frequentist methods beside the posterior (figures/concordance.png)")
    for key, msg in res.failures.items():
        print(f"nbdid run: error: {key}: {msg}", file=sys.stderr)
    return 0 if res.complete else 1
