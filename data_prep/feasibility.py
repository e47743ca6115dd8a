"""The one check that a panel can support a difference-in-differences.

Both the Bayesian models (:func:`nbdid.models.design.build_design`) and the frequentist
twin (:func:`nbdid.analysis.frequentist.prepare`) call :func:`check_did`: an indicator
needs rows, wards of both groups, each ward in one group, at least one period before
and one after the initiative with one ``post`` value per period, one row per ward and
period, and (when pair effects are wanted) complete matched sets.  A panel that fails
raises :class:`~nbdid.errors.DesignError` with a message saying what to change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nbdid.errors import DesignError
from nbdid.registry import GROUPS

BASE_COLUMNS: tuple[str, ...] = ("indicator", "ward", "group", "period", "post")
"""Columns every DiD needs, whatever the family."""


@dataclass(frozen=True)
class DidStructure:
    """The checked structure of one indicator's rows.

    Attributes
    ----------
    indicator
        Indicator key.
    rows
        The indicator's rows (copy; ``ward`` and ``group`` as str, ``period`` as int64).
    periods
        Sorted period ordinals.
    period_post
        0/1 per period (``periods`` order).
    period_labels
        Label of each period (``period_label`` column, else the ordinal as text).
    wards
        Sorted ward identifiers.
    ward_group
        Group of each ward (``wards`` order).
    pairs
        Sorted matched-set numbers when pair effects were checked, else ``None``.
    """

    indicator: str
    rows: pd.DataFrame
    periods: np.ndarray
    period_post: np.ndarray
    period_labels: list[str]
    wards: list[str]
    ward_group: np.ndarray
    pairs: list[int] | None = None

    @property
    def wards_per_period(self) -> pd.Series:
        """Number of periods each ward is seen in (``wards`` order)."""
        return self.rows.groupby("ward")["period"].nunique().reindex(self.wards)

    # ------------------------------------------------------------------ identifiability
    @property
    def seen_before_and_after(self) -> np.ndarray:
        """Whether each ward (``wards`` order) is seen both before and after the
        initiative: only such wards have an identifiable change of their own."""
        both = self.rows.groupby("ward")["post"].agg(lambda s: s.nunique() == 2)
        return both.reindex(self.wards).to_numpy(dtype=bool)

    @property
    def obs_per_ward(self) -> np.ndarray:
        """Number of observations (ward-periods) of each ward (``wards`` order)."""
        return self.rows.groupby("ward").size().reindex(self.wards).to_numpy(dtype=int)

    @property
    def group_sizes(self) -> dict[str, int]:
        """Number of wards in each group."""
        return {g: int(np.sum(self.ward_group == g)) for g in GROUPS}

    @property
    def cross_sectional(self) -> bool:
        """Whether no ward is seen both before and after (each ward belongs to one
        period: a repeated cross-section, whose DiD compares group x period means)."""
        return not self.seen_before_and_after.any()


def require_columns(df: pd.DataFrame, cols: tuple[str, ...], indicator: str) -> None:
    """Raise :class:`DesignError` naming the first of ``cols`` missing from ``df``."""
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DesignError(
            f"panel for indicator '{indicator}' lacks column(s) {', '.join(missing)}",
            column=missing[0],
        )


def check_did(panel: pd.DataFrame, indicator: str, *, pair_effects: bool = False,
              columns: tuple[str, ...] = ()) -> DidStructure:
    """Check that ``indicator``'s rows of ``panel`` can support a DiD.

    Parameters
    ----------
    panel
        Tidy long panel (may hold other indicators).
    indicator
        Indicator key.
    pair_effects
        Also check that every ward has a matched set with exactly one NBI ward and at
        least one benchmark ward.
    columns
        Further columns the caller needs (e.g. the family's value columns).

    Returns
    -------
    DidStructure

    Raises
    ------
    DesignError
        Saying what prevents a DiD and how to fix it.
    """
    require_columns(panel, BASE_COLUMNS, indicator)
    df = panel.loc[panel["indicator"].astype(str) == indicator].copy()
    if df.empty:
        known = sorted(panel["indicator"].astype(str).unique())
        raise DesignError(
            f"the panel has no rows for indicator '{indicator}' (it has: {', '.join(known)})"
        )
    require_columns(df, columns, indicator)
    df["ward"] = df["ward"].astype(str)
    df["group"] = df["group"].astype(str)
    bad_groups = sorted(set(df["group"]) - set(GROUPS))
    if bad_groups:
        raise DesignError(f"{indicator}: unknown group(s) {', '.join(bad_groups)} (use nbi, benchmark)")
    groups = set(df["group"])
    if len(groups) < 2:
        raise DesignError(
            f"{indicator}: the panel has only one group ({next(iter(groups))}); a "
            "difference-in-differences needs wards of both groups (nbi and benchmark)"
        )
    if df.groupby("ward")["group"].nunique().max() > 1:
        raise DesignError(f"{indicator}: a ward is in both groups")
    df["period"] = df["period"].astype("int64")
    periods = np.sort(df["period"].unique())
    if len(periods) < 2:
        raise DesignError(
            f"{indicator}: the panel has only one period; a difference-in-differences needs "
            "periods before (post 0) and after (post 1) the initiative"
        )
    post_by_period = df.groupby("period")["post"].agg(["min", "max"])
    if (post_by_period["min"] != post_by_period["max"]).any():
        raise DesignError(f"{indicator}: 'post' differs between wards within a period")
    period_post = post_by_period["max"].reindex(periods).to_numpy().astype(int)
    if period_post.max() == 0:
        raise DesignError(
            f"{indicator}: the panel has no post period (post = 1); a difference-in-differences "
            "needs periods before (post 0) and after (post 1) the initiative"
        )
    if period_post.min() == 1:
        raise DesignError(
            f"{indicator}: the panel has no pre period (post = 0); a difference-in-differences "
            "needs periods before (post 0) and after (post 1) the initiative"
        )
    if df.duplicated(["ward", "period"]).any():
        raise DesignError(f"{indicator}: duplicate ward-period rows")
    seen = df.groupby("group")["post"].agg(["min", "max"])
    for g in GROUPS:  # each group before and after, or the DiD is not identified
        if int(seen.loc[g, "max"]) == 0 or int(seen.loc[g, "min"]) == 1:
            when = "after (post 1)" if int(seen.loc[g, "max"]) == 0 else "before (post 0)"
            raise DesignError(
                f"{indicator}: no {g} ward is observed {when} the initiative; a "
                "difference-in-differences needs both groups before and after"
            )
    if "period_label" in df.columns:
        labels = df.groupby("period")["period_label"].first().reindex(periods).astype(str).tolist()
    else:
        labels = [str(p) for p in periods]
    wards = sorted(df["ward"].unique())
    ward_group = df.groupby("ward")["group"].first().reindex(wards).to_numpy().astype(str)
    pairs = _check_pairs(df, indicator, wards, ward_group) if pair_effects else None
    return DidStructure(indicator, df, periods, period_post, labels, wards, ward_group, pairs)


def _check_pairs(df: pd.DataFrame, indicator: str, wards: list[str], ward_group: np.ndarray) -> list[int]:
    if "pair" not in df.columns or df["pair"].isna().all():
        raise DesignError(
            f"{indicator}: the panel has no matched pairs; use --no-pairs (pair_effects = false)"
        )
    if df["pair"].isna().any():
        w = df.loc[df["pair"].isna(), "ward"].iloc[0]
        raise DesignError(f"{indicator}: ward {w} has no pair; use --no-pairs")
    pos = {w: i for i, w in enumerate(wards)}
    wp = df.groupby("ward")["pair"].first()
    comp = pd.crosstab(wp.to_numpy(), ward_group[[pos[w] for w in wp.index]])
    for g in GROUPS:
        if g not in comp.columns:
            comp[g] = 0
    # a pair is a matched set: one NBI ward and one benchmark ward (1:1), or k
    # benchmark wards (1:k matching)
    broken = comp.index[(comp["nbi"] != 1) | (comp["benchmark"] < 1)]
    if len(broken):
        raise DesignError(
            f"{indicator}: pair {broken[0]} does not have exactly one NBI ward and at least "
            "one benchmark ward (a pair is missing its partner); fix the pairs or use "
            "--no-pairs"
        )
    return sorted(int(p) for p in comp.index)
