"""Read DWP Stat-Xplore CSV exports into one tidy long table.

A Stat-Xplore "Download as CSV" file looks like this (``households_on_UC_*.csv``)::

    Stat-Xplore

    "Households on Universal Credit (I II III IV z)"        <- title (annotation symbols)
    "National - Regional - LA - OAs by Month"               <- row field "by" column field
    "Counting: Households on Universal Credit"              <- measure

    Filters:
    "Default Summation","Households on Universal Credit"    <- one line per filter

    "Month","August 2015","August 2015 - Annotations",...   <- column header
    "National - Regional - LA - OAs",                        <- row-field label
    "County Durham 001",..,,..,,6,,...                       <- data, ".." = nil/negligible
    ...
    "Total",98139,,111297,,...                               <- column totals

    "INFO","Statistical disclosure control has been applied ..."
    Symbol,Description                                       <- footnotes
    ...
    Source: Department for Work and Pensions

Exports whose title block and footer were cut off by hand (the column header is then
the first line) are read the same way.  :func:`read_statxplore` keeps the title block
as metadata, drops the ``... - Annotations`` columns (counting the markers they held),
turns ``..``/``-``/blank cells into missing values, keeps the ``Total`` and
``Unknown`` rows out of the data and melts the wide area x period table to
``area_name, period, value``.
"""

from __future__ import annotations

import csv
import io
import re
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nbdid.data_prep.textfiles import decode, read_raw
from nbdid.errors import InputError

__all__ = ["MISSING_MARKERS", "read_statxplore", "read_text", "split_period_label"]

MISSING_MARKERS: frozenset[str] = frozenset({"", "..", "-", ":", "*", "x", "c"})
"""Cell contents that Stat-Xplore (and other publishers) use for nil/suppressed values."""

_FOOTER_WORDS = frozenset({"info", "symbol", "note", "notes", "footnote", "footnotes"})
_FOOTER_STARTS = ("source:", "data source")
_NON_AREA_ROWS = ("total", "unknown")
_FLAG_RE = re.compile(r"\s*\((p|r|P|R)\)\s*$")


def read_text(path: str | PathLike[str]) -> tuple[str, str]:
    """Read a text file as utf-8 (with or without BOM) or Windows-1252.

    Parameters
    ----------
    path
        File to read.

    Returns
    -------
    text, encoding
        The decoded text (universal newlines not yet applied) and the encoding used.

    Raises
    ------
    InputError
        If the file is missing, empty, an Excel workbook, UTF-16/binary, or decodes as
        neither utf-8 nor cp1252.
    """
    p = Path(path)
    raw = read_raw(p)
    encodings = ("utf-8-sig",) if raw.startswith(b"\xef\xbb\xbf") else ("utf-8", "cp1252")
    return decode(raw, p, encodings)


def read_csv_rows(path: str | PathLike[str]) -> tuple[list[list[str]], str]:
    """Parse a CSV file with ragged rows into lists of strings (universal newlines).

    Returns the rows and the encoding; raises :class:`InputError` like :func:`read_text`.
    """
    text, enc = read_text(path)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=None)))
    except csv.Error as err:
        raise InputError(f"not a readable CSV file: {err}", file=path) from None
    return rows, enc


def split_period_label(label: str) -> tuple[str, str]:
    """Split a Stat-Xplore column label into the period and its flag.

    >>> split_period_label("2021/22 (p)")
    ('2021/22', 'p')
    >>> split_period_label("August 2015")
    ('August 2015', '')
    """
    m = _FLAG_RE.search(label)
    if m:
        return label[: m.start()].strip(), m.group(1).lower()
    return label.strip(), ""


def _nonblank(row: list[str]) -> list[str]:
    return [c for c in row if c.strip()]


def _find_header(rows: list[list[str]], path: str | PathLike[str]) -> tuple[int, dict[str, Any]]:
    """Locate the column-header row; collect title lines and filters above it."""
    meta: dict[str, Any] = {"title_lines": [], "filters": {}}
    i = 0
    n = len(rows)
    in_filters = False
    while i < n:
        cells = _nonblank(rows[i])
        if not cells:
            in_filters = False
            i += 1
            continue
        first = cells[0].strip()
        if first.lower().rstrip(":") == "filters":
            in_filters = True
            i += 1
            continue
        if in_filters:
            meta["filters"][first] = cells[1].strip() if len(cells) > 1 else ""
            i += 1
            continue
        if len(cells) >= 2:
            return i, meta
        meta["title_lines"].append(first)
        i += 1
    raise InputError(
        "no column header row found (expected a line such as \"Month\",\"August 2015\",...); "
        "is this a Stat-Xplore CSV export?",
        file=path,
    )


def read_statxplore(path: str | PathLike[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a Stat-Xplore CSV export (one row field x one column field).

    Parameters
    ----------
    path
        The CSV file as downloaded (or with the title block/footer cut off).

    Returns
    -------
    data : pandas.DataFrame
        Long table with columns ``area_name`` (str, the row-field label such as
        ``"Hartlepool 001"``), ``period`` (str, the column label without its
        ``(p)``/``(r)`` flag), ``flag`` (``"p"``, ``"r"`` or ``""``), ``line`` (1-based
        line of the area in the file) and ``value`` (float, NaN for ``..``/``-``/blank
        cells).  Rows are in file order, periods in column order.
    metadata : dict
        ``title``, ``title_lines``, ``measure`` (from "Counting: ..."), ``filters``
        (dict), ``column_field`` (e.g. ``"Month"``), ``row_field``, ``periods`` (list in
        file order), ``encoding``, ``n_missing`` (cells read as missing), ``missing_markers``
        (count per marker), ``annotation_markers`` (count per marker found in annotation
        columns), ``totals`` and ``unknown`` (``{period: value}`` of the ``Total`` and
        ``Unknown`` rows, kept out of the data), ``footer`` (footer lines) and
        ``header_line``.

    Raises
    ------
    InputError
        For empty or undecodable files, a missing header, non-numeric cells, duplicated
        period columns or data rows with the wrong number of cells.
    """
    rows, enc = read_csv_rows(path)
    h, meta = _find_header(rows, path)
    meta["encoding"] = enc
    meta["header_line"] = h + 1
    title_lines = meta["title_lines"]
    meta["title"] = next(
        (t for t in title_lines if t.lower() not in ("stat-xplore",) and not
         t.lower().startswith("counting:")),
        "",
    )
    meta["measure"] = next(
        (t.split(":", 1)[1].strip() for t in title_lines if t.lower().startswith("counting:")),
        meta["filters"].get("Default Summation", ""),
    )
    header = [c.strip() for c in rows[h]]
    meta["column_field"] = header[0]
    # value columns: non-blank header not ending in "Annotations"
    value_cols: list[tuple[int, str, str]] = []
    annotation_cols: list[int] = []
    for j, name in enumerate(header[1:], start=1):
        if not name or name.lower().endswith("annotations"):
            annotation_cols.append(j)
            continue
        period, flag = split_period_label(name)
        value_cols.append((j, period, flag))
    if not value_cols:
        raise InputError("the header row has no period columns", file=path, row=h + 1)
    periods = [p for _, p, _ in value_cols]
    dup = sorted({p for p in periods if periods.count(p) > 1})
    if dup:
        raise InputError(f"period column '{dup[0]}' appears twice", file=path, row=h + 1)
    meta["periods"] = periods

    # row-field label line(s): first cell only
    i = h + 1
    row_field = []
    while i < len(rows) and rows[i] and rows[i][0].strip() and not _nonblank(rows[i][1:]):
        row_field.append(rows[i][0].strip())
        i += 1
    meta["row_field"] = " / ".join(row_field)

    records_area: list[str] = []
    records_line: list[int] = []
    values: list[list[float]] = []
    missing_counts: dict[str, int] = {}
    ann_counts: dict[str, int] = {}
    totals: dict[str, dict[str, float]] = {}
    footer: list[str] = []
    width = len(header)
    while i < len(rows):
        row = rows[i]
        cells = _nonblank(row)
        if not cells:
            break  # first blank line ends the table
        first = row[0].strip()
        low = first.lower()
        if (low in _FOOTER_WORDS or low.startswith(_FOOTER_STARTS)) and len(cells) <= 2:
            break
        if not first:
            raise InputError(
                "data row without an area name (exports with more than one row field "
                "are not supported; put the second field in the columns or filters)",
                file=path,
                row=i + 1,
            )
        if len(row) > width and _nonblank(row[width:]):
            raise InputError(
                f"row has {len(row)} cells but the header has {width}", file=path, row=i + 1
            )
        vals = []
        for j, _period, _flag in value_cols:
            cell = row[j].strip() if j < len(row) else ""
            if cell in MISSING_MARKERS:
                missing_counts[cell] = missing_counts.get(cell, 0) + 1
                vals.append(np.nan)
                continue
            try:
                vals.append(float(cell.replace(",", "")))
            except ValueError:
                raise InputError(
                    f"'{cell}' is not a number or a missing-value marker", file=path,
                    row=i + 1, column=header[j],
                ) from None
        for j in annotation_cols:
            cell = row[j].strip() if j < len(row) else ""
            if cell:
                ann_counts[cell] = ann_counts.get(cell, 0) + 1
        if first.lower() in _NON_AREA_ROWS:
            totals[first.lower()] = dict(zip(periods, vals, strict=True))
        else:
            records_area.append(first)
            records_line.append(i + 1)
            values.append(vals)
        i += 1
    footer = [" ".join(_nonblank(r)) for r in rows[i:] if _nonblank(r)]
    if not values:
        raise InputError("the table has no data rows", file=path, row=h + 1)

    wide = pd.DataFrame(np.asarray(values, dtype=float), columns=pd.Index(periods))
    wide.insert(0, "line", records_line)
    wide.insert(0, "area_name", pd.array(records_area, dtype="str"))
    long = wide.melt(id_vars=["area_name", "line"], var_name="period", value_name="value")
    flags = {p: f for _, p, f in value_cols}
    long["flag"] = long["period"].map(flags).astype("str")
    long["period"] = long["period"].astype("str")
    long = long[["area_name", "period", "flag", "line", "value"]]

    meta["n_areas"] = len(records_area)
    meta["n_missing"] = int(sum(missing_counts.values()))
    meta["missing_markers"] = missing_counts
    meta["annotation_markers"] = ann_counts
    meta["n_annotation_columns"] = len(annotation_cols)
    meta["totals"] = totals.get("total", {})
    meta["unknown"] = totals.get("unknown", {})
    meta["footer"] = footer
    meta["provisional_periods"] = [p for _, p, f in value_cols if f == "p"]
    return long, meta
