"""``nbdid replicate``: the report's own method, recomputed from its published numbers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from nbdid.outputs import prepare_out_dir, write_csv

REPLICATE_TABLES: tuple[str, ...] = (
    "table1.csv",
    "b_tables.csv",
    "discrepancies.csv",
    "implied_denominators.csv",
    "denominator_consistency.csv",
    "tipping_points.csv",
    "tipping_bayes.csv",
    "tipping_bayes_curve.csv",
)
"""The tables of :func:`replicate` (``nbdid run`` writes them under ``replication/``)."""

REPLICATE_FIGURES: tuple[str, ...] = ("tipping_bayes.png", "tipping_bayes.svg")
"""The figures of :func:`replication_figures` (``nbdid run`` writes them under ``figures/``)."""

REPLICATE_FILES: tuple[str, ...] = REPLICATE_TABLES + REPLICATE_FIGURES
"""Every file ``nbdid replicate`` writes into its output folder."""


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
    p.add_argument(
        "--indicator",
        action="append",
        metavar="KEY",
        help="restrict to this indicator (repeatable; default: all seven)",
    )
    p.add_argument(
        "--wards-per-group",
        type=int,
        default=29,
        metavar="N",
        help="wards per group for the tipping point (default: %(default)s)",
    )
    p.add_argument(
        "--pair-correlation",
        type=float,
        default=0.0,
        metavar="RHO",
        help="correlation of matched partners' ward-specific changes in the Bayesian tipping "
        "point (default: %(default)s)",
    )
    p.add_argument(
        "--tau-prior",
        choices=("halfnormal", "lognormal"),
        default="halfnormal",
        help="prior of the between-ward SD of change, scaled by the measured value "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--tau-scale-factor",
        type=float,
        default=1.0,
        metavar="F",
        help="multiply the measured prior scales by F, e.g. 0.5 if the study wards vary half "
        "as much as all MSOAs (default: %(default)s)",
    )
    p.add_argument("--force", action="store_true", help="overwrite existing results")
    p.set_defaults(func=run_replicate)


def _mark(x: bool) -> str:
    enc = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "✓×".encode(enc)
    except (UnicodeEncodeError, LookupError):
        return "yes" if x else "no"
    return "✓" if x else "×"


def replicate(
    indicators: tuple[str, ...] | None = None,
    wards_per_group: int = 29,
    *,
    pair_correlation: float = 0.0,
    tau_prior: str = "halfnormal",
    tau_scale_factor: float = 1.0,
) -> dict[str, pd.DataFrame]:
    """All replication tables, keyed by output file name (pure; nothing is written).

    ``pair_correlation``, ``tau_prior`` and ``tau_scale_factor`` are passed to
    :func:`nbdid.analysis.tipping_bayes.tipping_bayes` (``tipping_bayes.csv`` and
    ``tipping_bayes_curve.csv``).
    """
    from nbdid.analysis import forensics, replication, tipping, tipping_bayes
    from nbdid.registry import resolve_indicators

    keys = [i.key for i in resolve_indicators(indicators)]
    if wards_per_group < 2:
        from nbdid.errors import InputError

        raise InputError(f"--wards-per-group must be at least 2, not {wards_per_group}")
    tables = {
        "table1.csv": replication.table1(),
        "b_tables.csv": replication.b_tables(),
        "discrepancies.csv": replication.discrepancies(),
        "implied_denominators.csv": forensics.implied_denominators(),
        "denominator_consistency.csv": forensics.denominator_consistency(),
        "tipping_points.csv": tipping.tipping_points(n_per_group=wards_per_group),
    }
    bayes_kw = dict(
        n_per_group=wards_per_group, pair_correlation=pair_correlation, prior=tau_prior,
        scale_factor=tau_scale_factor,
    )
    tb = tipping_bayes.tipping_bayes(**bayes_kw)
    tables["tipping_bayes.csv"] = tb
    tables["tipping_bayes_curve.csv"] = tipping_bayes.tipping_bayes_curve(summary=tb, **bayes_kw)
    out = {}
    for name, df in tables.items():
        if name == "denominator_consistency.csv":
            keep = df.indicator_a.isin(keys) | df.indicator_b.isin(keys)
        elif name == "discrepancies.csv":
            keep = df.indicator.isin(keys) | (df.indicator == "")
        else:
            keep = df.indicator.isin(keys)
        out[name] = df[keep].reset_index(drop=True)
    return out


def format_report(tables: dict[str, pd.DataFrame]) -> str:
    """A readable text rendering of the replication for the terminal."""
    from nbdid.data_prep.published import TABLE1_COLUMNS
    from nbdid.registry import INDICATORS

    lines = []
    t1 = tables["table1.csv"]
    short = {
        "positive_trend": "trend+",
        "better_relative": "rel.better",
        "relative_significant": "rel.sig",
        "better_absolute": "abs.better",
        "absolute_significant": "abs.sig",
    }
    lines.append("Table 1 recomputed from the published values and 95% CI half-widths")
    lines.append("(each cell: recomputed; '!' marks a cell that differs from the published tick)")
    head = f"{'indicator':<36}" + "".join(f"{short[c]:>11}" for c in TABLE1_COLUMNS)
    lines.append(head)
    lines.append("-" * len(head))
    for r in t1.itertuples():
        cells = "".join(
            f"{_mark(getattr(r, c)) + ('' if getattr(r, c + '_agrees') else ' !'):>11}"
            for c in TABLE1_COLUMNS
        )
        lines.append(f"{INDICATORS[r.indicator].title:<36}{cells}")
    n_cells = len(t1) * len(TABLE1_COLUMNS)
    n_ok = int(t1[[c + "_agrees" for c in TABLE1_COLUMNS]].to_numpy().sum())
    verdict = "all reproduced" if n_ok == n_cells else f"{n_cells - n_ok} differ"
    lines.append(f"Table 1: {n_ok} of {n_cells} cells reproduced from the published numbers ({verdict}).")
    bt = tables["b_tables.csv"]
    lines.append(
        f"B tables: {int(bt.agrees.sum())} of {len(bt)} published answers agree with the tables' own intervals."
    )
    disc = tables["discrepancies.csv"]
    lines.append("")
    lines.append(f"Discrepancies: {len(disc)} places where the report contradicts its own numbers or labels")
    for r in disc.itertuples():
        tag = f"[{r.indicator}] " if r.indicator else ""
        lines.append(f"  - {tag}{r.location}: published {r.published}; {r.evidence}")
    imp = tables["implied_denominators.csv"]
    flagged = imp[imp.flag != "ok"]
    lines.append("")
    lines.append("Implied denominators (what each half-width says about the sample behind it):")
    for key, g in imp.groupby("indicator", sort=False):
        rng = ", ".join(f"{r.group} {r.period_label}: {r.implied:,.0f}" for r in g.itertuples())
        lines.append(f"  {key:<22} {g.denominator.iloc[0]}: {rng}")
    for r in flagged.drop_duplicates("indicator").itertuples():
        lines.append(f"  ! {r.indicator} ({r.flag}): {r.explanation}")
    cons = tables["denominator_consistency.csv"]
    bad = cons[~cons.consistent]
    for r in bad.drop_duplicates("check").itertuples():
        lines.append(f"  ! {r.check}: {r.explanation}")
    tp = tables["tipping_points.csv"]
    lines.append("")
    lines.append(
        f"Tipping points (between-ward SD of the change at which the DiD stops being significant, "
        f"{int(tp.n_per_group.iloc[0]) if len(tp) else 29} wards a group):"
    )
    for r in tp.itertuples():
        lines.append(f"  {r.indicator:<22} {r.interpretation}")
    if "tipping_bayes.csv" in tables:
        from nbdid.analysis.tipping_bayes import format_tipping_bayes

        lines.append("")
        lines.append(format_tipping_bayes(tables["tipping_bayes.csv"]))
    return "\n".join(lines)


def replication_figures(tables: dict[str, pd.DataFrame]) -> dict[str, object]:
    """The replication's figures keyed by file name (:data:`REPLICATE_FIGURES`)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from nbdid.figures import plot_tipping_bayes

    curve = tables["tipping_bayes_curve.csv"]
    if curve.empty:
        return {}
    fig = plot_tipping_bayes(curve)
    return {name: fig for name in REPLICATE_FIGURES}


def write_replication_figures(tables: dict[str, pd.DataFrame], folder: Path) -> list[str]:
    """Draw and write :data:`REPLICATE_FIGURES` into ``folder``; returns the names written."""
    from nbdid.outputs import write_figure

    figs = replication_figures(tables)
    for name, fig in figs.items():
        write_figure(fig, Path(folder) / name)
    return list(figs)


def run_replicate(args: argparse.Namespace) -> int:
    """Handler of ``nbdid replicate``."""
    # compute first: bad options fail before anything touches the output folder
    tables = replicate(
        tuple(args.indicator or ()), args.wards_per_group,
        pair_correlation=args.pair_correlation, tau_prior=args.tau_prior,
        tau_scale_factor=args.tau_scale_factor,
    )
    out = prepare_out_dir(args.out, REPLICATE_FILES, force=args.force)
    print(format_report(tables))
    for name, df in tables.items():
        write_csv(df, out / name)
    figures = write_replication_figures(tables, out)
    print("")
    print(f"Wrote {len(tables)} tables to {Path(out)}/: " + ", ".join(tables))
    if figures:
        print(f"Wrote the figure {', '.join(figures)} (posterior DiD against ward-to-ward variation)")
    return 0
