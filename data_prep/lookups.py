"""ONS area-to-ward lookups: read any vintage, aggregate small areas to wards.

The ONS Open Geography portal publishes best-fit lookups from 2011 LSOAs (or MSOAs) to
the electoral wards of a given year, with the ward's local authority.  Their column
names change with the vintage (``WD15CD``/``WD15NM``/``LAD15CD`` ..., ``WD19CD`` ...),
some have an ``FID``/``ObjectId`` column first or last, a Welsh-name column
(``WD15NMW``) or a byte-order mark.  :func:`read_lookup` reads any of them and returns
one normalised table:

=========== ==============================================
column      meaning
=========== ==============================================
area        LSOA or MSOA code (e.g. ``E01000001``)
area_name   LSOA or MSOA name
ward        ward code (e.g. ``E05000001``)
ward_name   ward name
la_code     local authority district code
la_name     local authority district name
level       ``"lsoa"`` or ``"msoa"`` (also in ``df.attrs``)
vintage     e.g. ``"WD19"`` (also in ``df.attrs``)
=========== ==============================================

:func:`aggregate_to_wards` sums area-level values to wards and reports the area codes
that the lookup does not know (for example 2021 LSOA codes ``E01035xxx`` in recent
police.uk files when the lookup is for 2011 LSOAs).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import pandas as pd

from nbdid.data_prep.textfiles import decode, read_raw
from nbdid.errors import InputError

LOOKUP_COLUMNS: tuple[str, ...] = (
    "area",
    "area_name",
    "ward",
    "ward_name",
    "la_code",
    "la_name",
    "level",
    "vintage",
)

_AREA_RE = re.compile(r"^(LSOA|MSOA)(\d\d)(CD|NM)$", re.IGNORECASE)
_WARD_RE = re.compile(r"^(WD|WARD)(\d\d)(CD|NM)$", re.IGNORECASE)
_LAD_RE = re.compile(r"^(LAD|LTLA)(\d\d)(CD|NM)$", re.IGNORECASE)


def read_text(path: str | PathLike[str]) -> str:
    """Read a whole text file as UTF-8 (BOM removed) with universal newlines.

    Bare CR (classic Mac / Excel re-save), CRLF and LF line endings all become ``\\n``.

    Raises
    ------
    InputError
        If the file is missing, empty, or not UTF-8 text (the line of the first bad
        byte is named).
    """
    p = Path(path)
    text, _ = decode(read_raw(p), p, ("utf-8-sig",))
    # universal newlines, as open(newline=None) would do, without re-reading the file
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_header(path: str | PathLike[str]) -> list[str]:
    """Return the column names of a CSV file's first line (BOM and spaces stripped)."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            raw = fh.read(1 << 16)
    except FileNotFoundError:
        raise InputError("file not found", file=p) from None
    except IsADirectoryError:
        raise InputError("expected a file but found a folder", file=p) from None
    if not raw.strip():
        raise InputError("the file is empty", file=p)
    first = re.split(rb"\r\n|\r|\n", raw, maxsplit=1)[0]
    try:
        line = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("the header is not UTF-8 text; save the file as UTF-8 CSV", file=p, row=1) from None
    return [c.strip() for c in next(csv.reader([line]))]


def read_csv_columns(
    path: str | PathLike[str],
    columns: Sequence[str],
    *,
    text: str | None = None,
) -> pd.DataFrame:
    """Read only ``columns`` of a CSV file as strings, with clean errors.

    Empty cells are ``<NA>``; values are stripped of surrounding spaces.
    """
    p = Path(path)
    if text is None:
        text = read_text(p)
    try:
        df = pd.read_csv(
            io.StringIO(text),
            usecols=list(columns),
            dtype="string",
            keep_default_na=False,
            na_values=[""],
            skipinitialspace=False,
        )
    except pd.errors.ParserError as err:
        m = re.search(r"line (\d+)", str(err))
        raise InputError(
            f"cannot parse the CSV file: {err}", file=p, row=int(m.group(1)) if m else None
        ) from None
    except ValueError as err:  # usecols not found
        raise InputError(f"missing column(s): {err}", file=p) from None
    for c in df.columns:
        df[c] = df[c].str.strip().replace("", pd.NA)
    return df


def detect_lookup_layout(columns: Sequence[str], path: str | PathLike[str] = "") -> dict:
    """Find the area, ward and LA columns of an ONS lookup header.

    Returns
    -------
    dict
        ``level`` ('lsoa'/'msoa'), ``area_year``, ``vintage`` ('WD19'), and the source
        column names for ``area``, ``area_name``, ``ward``, ``ward_name``, ``la_code``,
        ``la_name`` (names may be None when the file lacks them).
    """
    found: dict[str, str] = {}
    level = area_year = ward_year = None
    for col in columns:
        c = col.strip()
        if m := _AREA_RE.match(c):
            lv, yr, kind = m.group(1).lower(), m.group(2), m.group(3).upper()
            if level is None or (lv == level and yr == area_year):
                level, area_year = lv, yr
                found.setdefault("area" if kind == "CD" else "area_name", col)
        elif m := _WARD_RE.match(c):
            yr, kind = m.group(2), m.group(3).upper()
            if ward_year is None or yr == ward_year:
                ward_year = yr
                found.setdefault("ward" if kind == "CD" else "ward_name", col)
        elif m := _LAD_RE.match(c):
            kind = m.group(3).upper()
            found.setdefault("la_code" if kind == "CD" else "la_name", col)
    missing = [k for k in ("area", "ward", "ward_name", "la_name") if k not in found]
    if missing:
        shown = ", ".join(columns[:12]) + (" ..." if len(columns) > 12 else "")
        raise InputError(
            "not a recognised ONS area-to-ward lookup: expected columns like LSOA11CD or "
            "MSOA11CD, WD19CD, WD19NM and LAD19NM but found "
            f"[{shown}] (missing {', '.join(missing)})",
            file=path,
        )
    return {
        "level": level,
        "area_year": area_year,
        "vintage": f"WD{ward_year}",
        **{k: found.get(k) for k in LOOKUP_COLUMNS[:6]},
    }


def read_lookup(path: str | PathLike[str]) -> pd.DataFrame:
    """Read an ONS LSOA/MSOA-to-ward lookup of any vintage into the normalised layout.

    Parameters
    ----------
    path
        CSV file such as ``LSOA11_to_WD19_LAD19_Lookup_EW.csv`` (any line endings,
        optional BOM, optional FID/ObjectId/Welsh-name columns).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`LOOKUP_COLUMNS`; ``df.attrs`` holds ``level``, ``vintage``,
        ``area_year`` and ``path``.

    Raises
    ------
    InputError
        For unrecognised layouts (naming the columns found), empty files, missing codes
        or an area listed twice with different wards.
    """
    p = Path(path)
    text = read_text(p)
    header = [c.strip() for c in next(csv.reader([text.split("\n", 1)[0]]))]
    layout = detect_lookup_layout(header, p)
    src = {k: layout[k] for k in LOOKUP_COLUMNS[:6] if layout[k] is not None}
    df = read_csv_columns(p, list(src.values()), text=text)
    df = df.rename(columns={v: k for k, v in src.items()})
    for k in LOOKUP_COLUMNS[:6]:
        if k not in df:
            df[k] = pd.Series(pd.NA, index=df.index, dtype="string")
    if df.empty:
        raise InputError("the lookup has a header but no rows", file=p)
    for k in ("area", "ward"):
        bad = df[k].isna()
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise InputError("empty code", file=p, row=i + 2, column=src[k])
    df["area"] = df["area"].str.upper()
    df["ward"] = df["ward"].str.upper()
    dup = df.duplicated("area", keep=False)
    if dup.any():
        d = df[dup]
        if d.groupby("area")["ward"].nunique().gt(1).any():
            i = int(dup.to_numpy().nonzero()[0][1])
            raise InputError(
                f"area {df['area'].iloc[i]} is listed more than once with different wards; "
                "nbdid needs a best-fit lookup (one ward per area)",
                file=p,
                row=i + 2,
                column=src["area"],
            )
        df = df.drop_duplicates("area", ignore_index=True)
    df["level"] = layout["level"]
    df["vintage"] = layout["vintage"]
    df = df[list(LOOKUP_COLUMNS)]
    df.attrs.update(
        level=layout["level"],
        vintage=layout["vintage"],
        area_year=layout["area_year"],
        path=str(p),
    )
    return df


def read_lsoa01_to_lsoa11(path: str | PathLike[str]) -> pd.DataFrame:
    """Read the ONS LSOA 2001 -> LSOA 2011 lookup: ``lsoa01, lsoa11, change``.

    ``change`` is the ONS change indicator: ``U`` unchanged, ``S`` split, ``M`` merged,
    ``X`` irregular.  Useful to place data published on 2001 LSOAs in 2011-LSOA lookups.
    """
    p = Path(path)
    header = read_header(p)
    upper = {c.upper(): c for c in header}
    need = ["LSOA01CD", "LSOA11CD"]
    missing = [c for c in need if c not in upper]
    if missing:
        raise InputError(
            f"not an LSOA01-to-LSOA11 lookup: missing {', '.join(missing)}; found "
            f"[{', '.join(header)}]",
            file=p,
        )
    cols = [upper[c] for c in need] + ([upper["CHGIND"]] if "CHGIND" in upper else [])
    df = read_csv_columns(p, cols)
    df.columns = ["lsoa01", "lsoa11", *(["change"] if len(cols) == 3 else [])]
    if "change" not in df:
        df["change"] = pd.Series(pd.NA, index=df.index, dtype="string")
    return df


def aggregate_to_wards(
    df: pd.DataFrame,
    lookup: pd.DataFrame,
    area_col: str,
    value_cols: Sequence[str],
    *,
    by: Sequence[str] = (),
    area_map: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sum area-level values to wards and report the areas the lookup does not know.

    Parameters
    ----------
    df
        Area-level table (one or more rows per area).
    lookup
        Normalised lookup from :func:`read_lookup`.
    area_col
        Column of ``df`` holding the area code.
    value_cols
        Columns to sum.
    by
        Extra columns to keep in the grouping (e.g. ``month``).
    area_map
        Optional ``area, ward`` table to use instead of ``lookup`` (e.g. the
        composite study wards of :func:`nbdid.data_prep.wards.design_area_map`).

    Returns
    -------
    (aggregate, unmatched)
        ``aggregate``: ``ward, ward_name, la_name, *by, *value_cols`` (sums).
        ``unmatched``: ``area, rows, *value_cols`` for area codes absent from the lookup
        (rows with an empty area code appear as ``area = <NA>``).
    """
    if area_col not in df:
        raise InputError(f"no column '{area_col}' to aggregate on")
    value_cols = list(value_cols)
    by = list(by)
    amap = lookup[["area", "ward", "ward_name", "la_name"]] if area_map is None else area_map
    if "ward_name" not in amap:
        amap = amap.assign(ward_name=pd.NA, la_name=pd.NA)
    areas = df[area_col].astype("string").str.strip().str.upper()
    data = df[by + value_cols].assign(area=areas)
    merged = data.merge(amap, on="area", how="left", validate="many_to_many")
    miss = merged["ward"].isna()
    unmatched = (
        merged.loc[miss]
        .groupby("area", dropna=False)
        .agg(rows=("area", "size"), **{c: (c, "sum") for c in value_cols})
        .reset_index()
        .sort_values("rows", ascending=False, ignore_index=True, kind="stable")
    )
    agg = (
        merged.loc[~miss]
        .groupby(["ward", "ward_name", "la_name", *by], dropna=False)[value_cols]
        .sum()
        .reset_index()
    )
    return agg, unmatched


def lookup_vintage_from_path(path: str | PathLike[str]) -> str:
    """Vintage (e.g. ``'WD19'``) of a lookup file, detected from its header."""
    return detect_lookup_layout(read_header(path), path)["vintage"]
