"""Correctness guards shared by the loaders.

Two kinds:

*Notices* -- choices a loader made that change what the numbers mean (the year map's
estimate for each period, wards whose area changed between boundary vintages, periods
with months missing).  :func:`add_notice` records them under ``report["guards"]``; the
provenance report lists them and the command line prints each on stderr
(:func:`nbdid.data_prep.ingest.guard_lines`).

*Stops* -- values that cannot be right: a negative count, a rate above 1 for a binomial
indicator, a population of zero, a price outside the range HM Land Registry publishes.
They raise :class:`~nbdid.errors.InputError` naming the file, line and column.
"""

from __future__ import annotations

from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

from nbdid.errors import InputError

__all__ = [
    "PPD_FIRST_DATE",
    "PPD_MAX_PRICE",
    "PPD_MIN_PRICE",
    "add_notice",
    "check_binomial_rates",
    "check_counts",
]

PPD_MIN_PRICE = 1
"""Smallest price in Price Paid Data (whole pounds; category B holds nominal £1 sales)."""
PPD_MAX_PRICE = 1_000_000_000
"""Prices are whole pounds below £1 billion: the largest entries of the complete file
(portfolio transfers of category B) are a few hundred million pounds."""
PPD_FIRST_DATE = "1995-01-01"
"""Price Paid Data starts with transfers on 1 January 1995."""


def add_notice(report: dict[str, Any], guard: str, message: str, **details: Any) -> None:
    """Record a guard's notice in ``report["guards"]`` (shown in provenance and on stderr)."""
    report.setdefault("guards", []).append({"guard": guard, "message": message, **details})


def check_counts(
    values: pd.Series | np.ndarray,
    *,
    file: str | PathLike[str] | None,
    lines: pd.Series | np.ndarray | None = None,
    column: str | pd.Series | None = None,
    what: str = "count",
) -> None:
    """Stop on a negative count (``NaN`` is allowed: missing cells are handled elsewhere).

    ``lines`` gives the file line of each value and ``column`` its column (one name, or
    one per value).
    """
    v = np.asarray(values, dtype=float)
    bad = v < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        row = int(np.asarray(lines)[i]) if lines is not None else None
        col = column.iloc[i] if isinstance(column, pd.Series) else column
        raise InputError(f"{what} {v[i]:g} is negative: a count cannot be below zero",
                         file=file, row=row, column=None if col is None else str(col))


def check_binomial_rates(
    rows: pd.DataFrame,
    *,
    indicator: str,
    counts_file: str | PathLike[str] | None,
    denominators_file: str | PathLike[str] | None,
    first_line: dict[tuple[str, str], int] | None = None,
) -> None:
    """Stop when a binomial indicator counts more people than its denominator holds.

    Parameters
    ----------
    rows
        ``ward, ward_name, period_label, count, exposure``.
    indicator
        The indicator key (binomial: count <= exposure required).
    counts_file, denominators_file
        Files named in the message.
    first_line
        Optional ``(ward, period) -> line`` of the counts file that fed the ward (the
        first area line), so the message can name a line.
    """
    c = pd.to_numeric(rows["count"], errors="coerce").to_numpy(dtype=float)
    e = pd.to_numeric(rows["exposure"], errors="coerce").to_numpy(dtype=float)
    bad = c > e
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        r = rows.iloc[i]
        line = (first_line or {}).get((str(r["ward"]), str(r["period_label"])))
        name = r.get("ward_name", "")
        raise InputError(
            f"{indicator} counts {c[i]:,.0f} people in ward {r['ward']} ({name}) in "
            f"{r['period_label']} but the denominator is {e[i]:,.0f}: a rate of "
            f"{c[i] / e[i]:.2f} (above 1) cannot be right; check that the counts and the "
            f"denominators ({denominators_file or 'given table'}) cover the same areas, ages "
            "and years",
            file=counts_file, row=line, column=str(r["period_label"]),
        )
