"""The report's published numbers and labels, transcribed as data.

The CSV files in ``data_prep/published/`` are facts copied from *Everybody Needs Good
Neighbourhoods 2* (July 2025); ``tests/test_published.py`` checks them against the
report text.  Nothing here is computed: the replication in
:mod:`nbdid.analysis.replication` recomputes the report's judgements from these
values and compares them with the published ticks and answers.

Files
-----
``pairs.csv``
    The 29 matched pairs of the appendix table, numbered in table order.
``report_values.csv``
    Tables 5A-11A: value and 95% CI half-width per indicator, group and period, and the
    change the table prints.
``table1.csv``
    Table 1 (summary of analysis) ticks and crosses, as printed.
``b_tables.csv``
    The six Yes/No answers of each B table, as printed (an empty answer is printed empty).
``report_labels.csv``
    Table labels, column headers, chart titles and Table 4 periods as printed, used to
    find mislabelled tables and charts.
``report_statements.csv``
    Numerical statements in the text (footnote intervals, counts of significant findings).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import pandas as pd

from nbdid.registry import INDICATOR_KEYS

TABLE1_COLUMNS: tuple[str, ...] = (
    "positive_trend",
    "better_relative",
    "relative_significant",
    "better_absolute",
    "absolute_significant",
)
"""Table 1's five columns, in the report's order."""

TABLE1_TITLES: dict[str, str] = {
    "positive_trend": "Positive Trend?",
    "better_relative": "Better relative performance?",
    "relative_significant": "Performance difference statistically significant?",
    "better_absolute": "Better absolute outcome?",
    "absolute_significant": "Outcome difference statistically significant?",
}

B_QUESTIONS: tuple[str, ...] = (
    "better_absolute",
    "absolute_significant",
    "positive_trend",
    "trend_significant",
    "better_relative",
    "relative_significant",
)
"""The B tables' six questions, in the report's order."""


def _read(name: str, **kwargs) -> pd.DataFrame:
    ref = resources.files("nbdid.data_prep") / "published" / name
    with resources.as_file(ref) as path:
        return pd.read_csv(path, encoding="utf-8", keep_default_na=False, na_values=[""], **kwargs)


@cache
def _load_pairs() -> pd.DataFrame:
    df = _read("pairs.csv", dtype={"pair": "int64"})
    return df


def load_pairs() -> pd.DataFrame:
    """The 29 matched pairs: ``pair, nbi_ward, nbi_la, benchmark_ward, benchmark_la``."""
    return _load_pairs().copy()


def study_wards() -> pd.DataFrame:
    """The 58 study wards in long form: ``pair, group, ward_name, la``."""
    p = load_pairs()
    nbi = p[["pair", "nbi_ward", "nbi_la"]].set_axis(["pair", "ward_name", "la"], axis=1)
    ben = p[["pair", "benchmark_ward", "benchmark_la"]].set_axis(["pair", "ward_name", "la"], axis=1)
    out = pd.concat([nbi.assign(group="nbi"), ben.assign(group="benchmark")], ignore_index=True)
    return out[["pair", "group", "ward_name", "la"]].sort_values(["pair", "group"], ascending=[True, False], ignore_index=True)


@cache
def _load_values() -> pd.DataFrame:
    df = _read(
        "report_values.csv",
        dtype={"period": "int64", "period_label": "string", "table": "string"},
    )
    df["indicator"] = pd.Categorical(df["indicator"], categories=INDICATOR_KEYS, ordered=True)
    df["group"] = pd.Categorical(df["group"], categories=["nbi", "benchmark"], ordered=True)
    df = df.sort_values(["indicator", "group", "period"], ignore_index=True)
    return df.assign(indicator=df["indicator"].astype(str), group=df["group"].astype(str))


def load_report_values() -> pd.DataFrame:
    """Tables 5A-11A in long form.

    Returns
    -------
    pandas.DataFrame
        ``indicator, table, group, period, period_label, value, half_width,
        published_change`` with one row per indicator, group (``nbi``/``benchmark``) and
        period (0 = base, 1 = final); ``half_width`` is the printed 95% CI half-width
        in the indicator's unit and ``published_change`` the printed change of the group.
    """
    return _load_values().copy()


def _tick(x: str) -> bool:
    x = str(x).strip()
    if x in ("✓", "\\checkmark", "yes", "Yes", "True", "true"):
        return True
    if x in ("×", "x", "no", "No", "False", "false"):
        return False
    raise ValueError(f"unrecognised Table 1 cell {x!r}")


def load_table1() -> pd.DataFrame:
    """Table 1 as published: one row per indicator, the five columns as booleans."""
    df = _read("table1.csv")
    for c in TABLE1_COLUMNS:
        df[c] = df[c].map(_tick).astype(bool)
    return df.set_index("indicator").loc[list(INDICATOR_KEYS)].reset_index()


def load_b_tables() -> pd.DataFrame:
    """The B tables' answers as published.

    Returns
    -------
    pandas.DataFrame
        ``indicator, table_label, question_order, question, question_text, answer``
        where ``answer`` is ``"Yes"``, ``"No"`` or missing (printed empty).
    """
    df = _read("b_tables.csv", dtype={"answer": "string", "table_label": "string"})
    return df


def load_report_labels() -> pd.DataFrame:
    """Labels, headers, chart titles and Table 4 periods as printed."""
    return _read("report_labels.csv", dtype=str)


def load_report_statements() -> pd.DataFrame:
    """Numerical statements in the report's text (footnote intervals, counts)."""
    return _read("report_statements.csv")


def report_wide() -> pd.DataFrame:
    """Published values in wide form: one row per indicator and group.

    Columns ``v0, h0, v1, h1`` (base and final value and half-width), ``period0,
    period1`` and ``published_change``.
    """
    v = load_report_values()
    base = v[v.period == 0].set_index(["indicator", "group"])
    fin = v[v.period == 1].set_index(["indicator", "group"])
    out = pd.DataFrame(
        {
            "v0": base["value"],
            "h0": base["half_width"],
            "v1": fin["value"],
            "h1": fin["half_width"],
            "period0": base["period_label"],
            "period1": fin["period_label"],
            "published_change": fin["published_change"],
        }
    ).reset_index()
    out["indicator"] = pd.Categorical(out["indicator"], categories=INDICATOR_KEYS, ordered=True)
    out["group"] = pd.Categorical(out["group"], categories=["nbi", "benchmark"], ordered=True)
    out = out.sort_values(["indicator", "group"], ignore_index=True)
    out["indicator"] = out["indicator"].astype(str)
    out["group"] = out["group"].astype(str)
    return out
