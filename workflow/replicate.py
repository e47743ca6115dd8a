"""``nbdid replicate``: the report's own method, recomputed from its published numbers.

:func:`replicate` computes every replication table (pure; nothing is written) and
returns a :class:`ReplicationResult`, whose :meth:`~ReplicationResult.save` writes the
tables and the Bayesian tipping-point figure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from nbdid.analysis import forensics, replication, tipping, tipping_bayes
from nbdid.analysis.tipping_bayes import format_tipping_bayes
from nbdid.data_prep.published import TABLE1_COLUMNS
from nbdid.errors import InputError
from nbdid.figures import plot_tipping_bayes, save_figure
from nbdid.figures.style import FORMATS
from nbdid.outputs import prepare_out_dir, write_csv
from nbdid.registry import INDICATORS, resolve_indicators

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

REPLICATE_FIGURES: tuple[str, ...] = tuple(f"tipping_bayes.{ext}" for ext in FORMATS)
"""The figures of :meth:`ReplicationResult.figures` (``nbdid run`` writes them under ``figures/``)."""

REPLICATE_FILES: tuple[str, ...] = REPLICATE_TABLES + REPLICATE_FIGURES
"""Every file ``nbdid replicate`` writes into its output folder."""


@dataclass
class ReplicationResult:
    """The replication tables, keyed by file name (:data:`REPLICATE_TABLES`)."""

    tables: dict[str, pd.DataFrame]

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]

    @property
    def table1(self) -> pd.DataFrame:
        """Table 1 recomputed, beside the published cells."""
        return self.tables["table1.csv"]

    @property
    def discrepancies(self) -> pd.DataFrame:
        """Every place where the report contradicts its own numbers or labels."""
        return self.tables["discrepancies.csv"]

    def text(self, *, mark=None) -> str:
        """A readable text rendering for the terminal (see :func:`format_replication`)."""
        return format_replication(self.tables, mark=mark)

    def figures(self) -> dict[str, Figure]:
        """The replication's figures keyed by file stem (saved as :data:`REPLICATE_FIGURES`)."""
        curve = self.tables["tipping_bayes_curve.csv"]
        if curve.empty:
            return {}
        return {"tipping_bayes": plot_tipping_bayes(curve)}

    def save_tables(self, folder: str | os.PathLike[str]) -> list[str]:
        """Write the tables into ``folder`` (already checked); returns the names."""
        for name, df in self.tables.items():
            write_csv(df, Path(folder) / name)
        return list(self.tables)

    def save_figures(self, folder: str | os.PathLike[str]) -> list[str]:
        """Draw and write :data:`REPLICATE_FIGURES` into ``folder``; returns the names."""
        names = []
        for stem, fig in self.figures().items():
            names += [p.name for p in save_figure(fig, Path(folder) / stem)]
        return names

    def save(self, out: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write every table and figure into ``out`` (refusing to overwrite without ``force``)."""
        folder = prepare_out_dir(out, REPLICATE_FILES, force=force)
        self.save_tables(folder)
        self.save_figures(folder)
        return folder


def replicate(
    indicators: tuple[str, ...] | None = None,
    wards_per_group: int = 29,
    *,
    pair_correlation: float = 0.0,
    tau_prior: str = "halfnormal",
    tau_scale_factor: float = 1.0,
) -> ReplicationResult:
    """Recompute the report's tables from its published values (pure; nothing is written).

    Parameters
    ----------
    indicators
        Indicator keys (default: all seven).
    wards_per_group
        Wards per group for the tipping points (29 in the report).
    pair_correlation, tau_prior, tau_scale_factor
        Passed to :func:`nbdid.analysis.tipping_bayes.tipping_bayes`
        (``tipping_bayes.csv`` and ``tipping_bayes_curve.csv``).

    Returns
    -------
    ReplicationResult
    """
    keys = [i.key for i in resolve_indicators(indicators)]
    if wards_per_group < 2:
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
    return ReplicationResult(out)


def format_replication(tables: dict[str, pd.DataFrame], *, mark=None) -> str:
    """A readable text rendering of the replication tables (``mark(bool) -> str`` draws
    a Table 1 cell; default ``yes``/``no``)."""
    mark = mark or (lambda x: "yes" if x else "no")
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
            f"{mark(getattr(r, c)) + ('' if getattr(r, c + '_agrees') else ' !'):>11}"
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
        lines.append("")
        lines.append(format_tipping_bayes(tables["tipping_bayes.csv"]))
    return "\n".join(lines)
