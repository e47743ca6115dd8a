"""Exact replication of the report's frequentist method from its published numbers.

The report gives, for each indicator, group (Big Local/NBI and Benchmark) and period,
a pooled value ``v`` and a 95% confidence-interval half-width ``h``.  Its judgements
follow from three rules, which this module applies to the published values and
half-widths alone (never to the published ticks):

* a value's interval is ``[v - h, v + h]``;
* a group's change interval is built by interval arithmetic,
  ``[(v1 - h1) - (v0 + h0), (v1 + h1) - (v0 - h0)]``;
* a difference is "statistically significant" when the two intervals do not overlap.

Table 1's five columns and the B tables' six questions then read:

=====================  ==========================================================
``positive_trend``     the NBI group's value moved in the better direction
``trend_significant``  the NBI group's base and final intervals do not overlap
``better_relative``    the NBI change is better than the benchmark change
``relative_significant``  the two change intervals do not overlap
``better_absolute``    the NBI final value is better than the benchmark's
``absolute_significant``  the two final-period intervals do not overlap
=====================  ==========================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nbdid.data_prep import published
from nbdid.registry import INDICATORS, get_indicator

_EPS = 1e-9


def intervals_overlap(lo1: float, hi1: float, lo2: float, hi2: float) -> bool:
    """Whether two closed intervals overlap (touching counts as overlapping).

    A tolerance of ``1e-9`` absorbs floating-point error in decimal arithmetic, so two
    intervals printed to one decimal that share an end point overlap.
    """
    return not (lo1 > hi2 + _EPS or lo2 > hi1 + _EPS)


def change_interval(v0: float, h0: float, v1: float, h1: float) -> tuple[float, float]:
    """The report's change interval by interval arithmetic."""
    return (v1 - h1) - (v0 + h0), (v1 + h1) - (v0 - h0)


def group_changes(values: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per indicator and group: the change and its interval-arithmetic interval.

    Parameters
    ----------
    values
        Published values in wide form (:func:`nbdid.data_prep.published.report_wide`);
        the report's own by default.  Any table with columns ``indicator, group, v0,
        h0, v1, h1`` works (e.g. values pooled from a ward panel).
    """
    w = published.report_wide() if values is None else values.copy()
    lo, hi = change_interval(w["v0"], w["h0"], w["v1"], w["h1"])
    w["change"] = w["v1"] - w["v0"]
    w["change_lower"] = lo
    w["change_upper"] = hi
    return w


def recompute_judgements(values: pd.DataFrame | None = None) -> pd.DataFrame:
    """Recompute Table 1's columns and the B tables' answers from values and half-widths.

    Parameters
    ----------
    values
        Wide table with ``indicator, group, v0, h0, v1, h1`` (the report's by default).

    Returns
    -------
    pandas.DataFrame
        One row per indicator: the numbers used (values, changes, change intervals,
        the DiD) and boolean columns ``positive_trend, trend_significant,
        better_relative, relative_significant, better_absolute, absolute_significant``
        plus ``base_significant`` (the base-period intervals do not overlap).
    """
    ch = group_changes(values)
    rows = []
    for key, g in ch.groupby("indicator", sort=False):
        ind = get_indicator(key)
        n = g[g.group == "nbi"].iloc[0]
        b = g[g.group == "benchmark"].iloc[0]
        did = n["change"] - b["change"]
        rows.append(
            {
                "indicator": key,
                "nbi_v0": n["v0"],
                "nbi_v1": n["v1"],
                "benchmark_v0": b["v0"],
                "benchmark_v1": b["v1"],
                "nbi_change": n["change"],
                "nbi_change_lower": n["change_lower"],
                "nbi_change_upper": n["change_upper"],
                "benchmark_change": b["change"],
                "benchmark_change_lower": b["change_lower"],
                "benchmark_change_upper": b["change_upper"],
                "did": did,
                "positive_trend": ind.better(n["change"]),
                "trend_significant": not intervals_overlap(
                    n["v0"] - n["h0"], n["v0"] + n["h0"], n["v1"] - n["h1"], n["v1"] + n["h1"]
                ),
                "better_relative": ind.better(did),
                "relative_significant": not intervals_overlap(
                    n["change_lower"], n["change_upper"], b["change_lower"], b["change_upper"]
                ),
                "better_absolute": ind.better(n["v1"] - b["v1"]),
                "absolute_significant": not intervals_overlap(
                    n["v1"] - n["h1"], n["v1"] + n["h1"], b["v1"] - b["h1"], b["v1"] + b["h1"]
                ),
                "base_significant": not intervals_overlap(
                    n["v0"] - n["h0"], n["v0"] + n["h0"], b["v0"] - b["h0"], b["v0"] + b["h0"]
                ),
            }
        )
    return pd.DataFrame(rows)


def table1(values: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table 1 recomputed, with agreement against the published ticks.

    Returns
    -------
    pandas.DataFrame
        One row per indicator key with the boolean columns ``positive_trend,
        better_relative, relative_significant, better_absolute, absolute_significant``,
        for each ``<column>_published`` and ``<column>_agrees``, and ``all_agree``.
    """
    rec = recompute_judgements(values).set_index("indicator")
    pub = published.load_table1().set_index("indicator")
    out = pd.DataFrame(index=rec.index)
    for c in published.TABLE1_COLUMNS:
        out[c] = rec[c].astype(bool)
    for c in published.TABLE1_COLUMNS:
        out[f"{c}_published"] = pub.loc[out.index, c].astype(bool)
        out[f"{c}_agrees"] = out[c] == out[f"{c}_published"]
    out["all_agree"] = out[[f"{c}_agrees" for c in published.TABLE1_COLUMNS]].all(axis=1)
    return out.reset_index()


def b_tables(values: pd.DataFrame | None = None) -> pd.DataFrame:
    """The B tables' six answers recomputed, beside the published answers.

    Returns
    -------
    pandas.DataFrame
        One row per indicator and question: ``indicator, table_label, question_order,
        question, question_text, published, recomputed, agrees`` where ``published`` is
        ``"Yes"``, ``"No"`` or ``"(blank)"`` and ``agrees`` is false when the published
        answer is blank or differs.
    """
    rec = recompute_judgements(values).set_index("indicator")
    bt = published.load_b_tables()
    recomputed = [
        "Yes" if bool(rec.loc[r.indicator, r.question]) else "No" for r in bt.itertuples()
    ]
    out = bt.rename(columns={"answer": "published"}).copy()
    out["published"] = out["published"].fillna("(blank)").astype(str)
    out["recomputed"] = recomputed
    out["agrees"] = out["published"] == out["recomputed"]
    return out


@dataclass(frozen=True)
class Discrepancy:
    """A place where the report contradicts its own numbers or labels."""

    indicator: str
    kind: str
    location: str
    published: str
    evidence: str

    def as_dict(self) -> dict[str, str]:
        return {
            "indicator": self.indicator,
            "kind": self.kind,
            "location": self.location,
            "published": self.published,
            "evidence": self.evidence,
        }


def _fmt(ind_key: str, x: float) -> str:
    ind = INDICATORS[ind_key]
    if ind.unit == "£":
        return f"£{x:,.0f}"
    d = ind.decimals
    return f"{x:.{d}f}"


def _interval(ind_key: str, lo: float, hi: float) -> str:
    return f"[{_fmt(ind_key, lo)}, {_fmt(ind_key, hi)}]"


def _norm(text: str) -> str:
    return " ".join(text.lower().replace("-", " ").split())


def _unit_in(text: str, ind) -> bool:
    """Whether a printed title states the indicator's unit (prices: no rate unit)."""
    if ind.unit == "£":
        return "per " not in text.lower()
    if ind.unit == "%":
        return "%" in text
    return _norm(ind.unit) in _norm(text)


def _years(text: str) -> list[int]:
    """Years mentioned in a period text; financial years ``2010/11`` count as their end."""
    out = []
    for m in re.finditer(r"(\d{4})(?:/(\d{2}))?", text):
        y = int(m.group(1))
        out.append(y + 1 if m.group(2) else y)
    return out


def discrepancies() -> pd.DataFrame:
    """Every place where the report contradicts its own numbers or labels.

    Checks, all computed from the transcribed tables, labels and statements:

    * B-table answers that the table's own intervals contradict, or that are blank;
    * Table 1 cells that disagree with the same indicator's B table;
    * printed changes that differ from ``v1 - v0`` by more than the rounding allows;
    * intervals quoted in the text (footnotes) that the table's numbers do not give;
    * counts of "significant" findings in the text that the tables do not give;
    * B tables labelled with another indicator's number, narrative references to the
      wrong table, "percentage point" headers over rates, chart titles whose unit is
      not the indicator's, and Table 4 periods that differ from the A table's.

    Returns
    -------
    pandas.DataFrame
        ``indicator, kind, location, published, evidence``.
    """
    found: list[Discrepancy] = []
    rec = recompute_judgements().set_index("indicator")
    bt = b_tables()
    labels = published.load_report_labels().set_index("indicator")
    t1 = published.load_table1().set_index("indicator")
    wide = published.report_wide()
    owner = {}
    for ind in INDICATORS.values():
        owner[f"{ind.report_table}A"] = ind.title
        owner[f"{ind.report_table}B"] = ind.title

    def interval_text(key: str, q: str) -> str:
        r = rec.loc[key]
        w = wide[wide.indicator == key].set_index("group")
        n, b = w.loc["nbi"], w.loc["benchmark"]
        if q == "trend_significant":
            return (
                f"NBI base {_interval(key, n.v0 - n.h0, n.v0 + n.h0)} vs final "
                f"{_interval(key, n.v1 - n.h1, n.v1 + n.h1)}: "
                + ("no overlap" if r[q] else "overlap")
            )
        if q == "absolute_significant":
            return (
                f"final NBI {_interval(key, n.v1 - n.h1, n.v1 + n.h1)} vs benchmark "
                f"{_interval(key, b.v1 - b.h1, b.v1 + b.h1)}: "
                + ("no overlap" if r[q] else "overlap")
            )
        if q == "relative_significant":
            return (
                f"change NBI {_interval(key, r.nbi_change_lower, r.nbi_change_upper)} vs "
                f"benchmark {_interval(key, r.benchmark_change_lower, r.benchmark_change_upper)}: "
                + ("no overlap" if r[q] else "overlap")
            )
        if q == "positive_trend":
            return f"NBI {_fmt(key, n.v0)} -> {_fmt(key, n.v1)} (change {_fmt(key, r.nbi_change)})"
        if q == "better_relative":
            return (
                f"change NBI {_fmt(key, r.nbi_change)} vs benchmark {_fmt(key, r.benchmark_change)}"
            )
        return f"final NBI {_fmt(key, n.v1)} vs benchmark {_fmt(key, b.v1)}"

    # 1. B-table answers contradicted by the table's own intervals (or left blank)
    for r in bt.itertuples():
        if r.agrees:
            continue
        kind = "blank_answer" if r.published == "(blank)" else "b_table_answer"
        found.append(
            Discrepancy(
                r.indicator,
                kind,
                f"Table {r.table_label}: {r.question_text}",
                r.published,
                f"the table's numbers give '{r.recomputed}': {interval_text(r.indicator, r.question)}",
            )
        )

    # 2. Table 1 vs the B tables
    for r in bt.itertuples():
        if r.question not in published.TABLE1_COLUMNS or r.published == "(blank)":
            continue
        t1_cell = bool(t1.loc[r.indicator, r.question])
        if t1_cell != (r.published == "Yes"):
            found.append(
                Discrepancy(
                    r.indicator,
                    "table1_vs_b_table",
                    f"Table 1 '{published.TABLE1_TITLES[r.question]}' vs Table {r.table_label}",
                    f"Table 1 {'✓' if t1_cell else '×'}, Table {r.table_label} '{r.published}'",
                    interval_text(r.indicator, r.question),
                )
            )

    # 3. printed change vs v1 - v0 (allowing the rounding of all three numbers)
    for r in wide.itertuples():
        ind = INDICATORS[r.indicator]
        tol = 1.5 * 10 ** (-ind.decimals) + _EPS
        if abs((r.v1 - r.v0) - r.published_change) > tol:
            found.append(
                Discrepancy(
                    r.indicator,
                    "printed_change",
                    f"Table {labels.loc[r.indicator, 'a_table_label']}, {r.group}",
                    _fmt(r.indicator, r.published_change),
                    f"{_fmt(r.indicator, r.v1)} - {_fmt(r.indicator, r.v0)} = "
                    f"{_fmt(r.indicator, r.v1 - r.v0)}",
                )
            )

    # 4. intervals and counts quoted in the text
    st = published.load_report_statements()
    for s in st.itertuples():
        if s.kind == "change_interval":
            r = rec.loc[s.indicator]
            lo, hi = r[f"{s.group}_change_lower"], r[f"{s.group}_change_upper"]
            # the text rounds to thousands: allow half a thousand either side
            tol = 500 if INDICATORS[s.indicator].unit == "£" else 0.05
            if abs(lo - s.lower) > tol or abs(hi - s.upper) > tol:
                found.append(
                    Discrepancy(
                        s.indicator,
                        "quoted_interval",
                        s.location,
                        f"'{s.quote}' ({s.lower:,.0f} to {s.upper:,.0f})",
                        f"Table {labels.loc[s.indicator, 'a_table_label']} gives the {s.group} "
                        f"change interval {_interval(s.indicator, lo, hi)} by the report's own "
                        "interval arithmetic",
                    )
                )
        elif s.kind.startswith("count_"):
            if s.kind == "count_relative_significant":
                sel = rec.index[rec.relative_significant & rec.better_relative]
            elif s.kind == "count_better_relative":
                sel = rec.index[rec.better_relative]
            elif s.kind == "count_newly_significant_outcome":
                sel = rec.index[
                    rec.absolute_significant
                    & rec.better_absolute
                    & ~rec.base_significant
                    & ~rec.relative_significant
                ]
            else:  # pragma: no cover - guarded by the transcription test
                raise ValueError(f"unknown statement kind {s.kind}")
            if len(sel) != int(s.claimed_count):
                found.append(
                    Discrepancy(
                        "",
                        "quoted_count",
                        s.location,
                        f"'{s.quote}' ({int(s.claimed_count)})",
                        f"the tables give {len(sel)}: {', '.join(sel)}",
                    )
                )

    # 5. labels
    for key, lab in labels.iterrows():
        ind = INDICATORS[key]
        expected_b = f"{ind.report_table}B"
        if lab.b_table_label != expected_b:
            found.append(
                Discrepancy(
                    key,
                    "table_label",
                    f"B table of '{ind.title}'",
                    f"labelled Table {lab.b_table_label}",
                    f"follows Table {lab.a_table_label}, so it should be Table {expected_b}; "
                    f"Table {lab.b_table_label} is also the label of another indicator's table"
                    if (labels.b_table_label == lab.b_table_label).sum() > 1
                    else f"follows Table {lab.a_table_label}, so it should be Table {expected_b}",
                )
            )
        own = {lab.a_table_label, expected_b}
        refs = [x for x in str(lab.narrative_table_refs).split("|") if x]
        wrong = [x for x in refs if x not in own]
        if wrong:
            found.append(
                Discrepancy(
                    key,
                    "table_reference",
                    f"narrative of '{ind.title}'",
                    "cites " + ", ".join(f"Table {x}" for x in wrong),
                    f"this indicator's tables are {lab.a_table_label} and {expected_b}; "
                    + "; ".join(
                        f"Table {x} belongs to '{owner[x]}'" for x in wrong if x in owner
                    ),
                )
            )
        if "percentage point" in str(lab.change_header).lower() and ind.unit != "%":
            found.append(
                Discrepancy(
                    key,
                    "column_header",
                    f"Table {lab.a_table_label} change column",
                    f"'{lab.change_header}'",
                    f"the values are rates {ind.unit}, not percentages",
                )
            )
        chart = str(lab.chart_title)
        if not _unit_in(chart, ind):
            found.append(
                Discrepancy(
                    key,
                    "chart_unit",
                    f"Chart {ind.report_chart} title",
                    f"'{chart}'",
                    f"the indicator is in {ind.unit}",
                )
            )
        t4 = str(lab.table4_title)
        if not _unit_in(t4, ind):
            found.append(
                Discrepancy(
                    key,
                    "table4_unit",
                    "Table 4 (indicators included)",
                    f"'{t4}'",
                    f"the indicator's definition and Table {lab.a_table_label} use {ind.unit}",
                )
            )
        a_periods = str(lab.a_table_periods).split("|")
        t4_years = _years(str(lab.table4_period))
        a_years = [y for p in a_periods for y in _years(p)]
        if t4_years and (min(t4_years) != min(a_years) or max(t4_years) != max(a_years)):
            found.append(
                Discrepancy(
                    key,
                    "period",
                    "Table 4 (indicators included)",
                    f"'{lab.table4_period}'",
                    f"Table {lab.a_table_label} and the text use {' and '.join(a_periods)} "
                    f"({ind.period_description})",
                )
            )
    return pd.DataFrame([d.as_dict() for d in found])


def replication_summary() -> dict[str, object]:
    """Headline numbers of the replication: cells reproduced and discrepancies found."""
    t1 = table1()
    cells = t1[[f"{c}_agrees" for c in published.TABLE1_COLUMNS]].to_numpy()
    bt = b_tables()
    return {
        "table1_cells": int(cells.size),
        "table1_cells_reproduced": int(np.sum(cells)),
        "b_answers": len(bt),
        "b_answers_reproduced": int(bt.agrees.sum()),
        "discrepancies": len(discrepancies()),
    }
