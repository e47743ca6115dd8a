"""``nbdid report``: the findings report of a finished run (HTML, Markdown, tables)."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``report`` sub-command."""
    p = sub.add_parser(
        "report",
        help="the findings report of a finished run (HTML and Markdown, publication tables)",
        description=(
            "Write the findings report of a finished 'nbdid run' folder: report.html (one "
            "self-contained page, figures embedded, readable offline and printable), "
            "report.md (Markdown with the run's figures/), and tables/comparison and "
            "tables/concordance as HTML, LaTeX and Markdown.  'nbdid run' writes it by "
            "default; use this to rebuild it, or to add a sensitivity sweep or a design study."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="output folder of 'nbdid run'")
    p.add_argument("--sweep", metavar="DIR",
                   help="add the summary and specification curves of a sensitivity sweep "
                        "(the --out folder of 'nbdid sensitivity')")
    p.add_argument("--design", metavar="DIR",
                   help="add a design/assurance study (a folder with summary.md and assurance.csv)")
    p.add_argument("--out", metavar="DIR",
                   help="write the report here instead of into RUN_DIR (its figures are copied "
                        "to DIR/figures for the Markdown)")
    p.add_argument("--force", action="store_true", help="overwrite an existing report")
    p.set_defaults(func=report_main)


def report_main(args: argparse.Namespace) -> int:
    """Handler of ``nbdid report``."""
    # imported here: the workflow loads matplotlib and the table libraries (seconds)
    from nbdid.provenance import SYNTHETIC_NOTICE
    from nbdid.workflow.report import REPORT_HTML, build_report

    t0 = time.perf_counter()
    argv = getattr(args, "argv", None)
    command = shlex.join(["nbdid", *argv]) if argv is not None else None
    rep = build_report(args.run_dir, sweep=args.sweep, design=args.design, command=command)
    written = rep.save(args.out, force=args.force)
    folder = Path(args.out or args.run_dir)
    html = folder / REPORT_HTML
    if rep.synthetic:
        print(f"*** {SYNTHETIC_NOTICE} ***")
    if rep.incomplete:
        print(f"nbdid report: warning: incomplete run: {rep.incomplete}", file=sys.stderr)
    print(f"Findings report in {folder}/ ({time.perf_counter() - t0:.1f} s):")
    print(f"  report.html   {html.stat().st_size / 1e6:.1f} MB, self-contained (open in a browser; "
          "prints on A4)")
    print("  report.md     Markdown, figures linked from figures/")
    print("  tables/       comparison and concordance tables as .html, .tex and .md")
    n_copied = sum(1 for p in written if p.parent.name == "figures")
    if n_copied:
        print(f"  figures/      {n_copied} figures copied for the Markdown")
    return 0
