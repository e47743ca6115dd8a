"""The tidy ward panel: its schema, declared once, and the functions that enforce it.

A ward panel is one row per indicator x ward x period (long format).  Every loader,
the synthetic generator and ``nbdid data validate`` go through
:func:`validate_panel`, so that the models only ever see a panel that satisfies the
contract below; anything wrong is reported as one :class:`~nbdid.errors.InputError`
naming the file, the line as a user sees it in an editor (header = line 1, first data
row = line 2) and the column.

Examples
--------
>>> from nbdid.data_prep.schema import PANEL_COLUMNS
>>> [c.name for c in PANEL_COLUMNS][:4]
['indicator', 'ward', 'ward_name', 'la']
"""

from __future__ import annotations

import difflib
import io
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from nbdid.config import BoundsConfig
from nbdid.data_prep.textfiles import decode_text
from nbdid.errors import InputError
from nbdid.families import FAMILIES, base_name, family_columns, get_family
from nbdid.outputs import atomic_path, write_csv
from nbdid.registry import GROUPS, INDICATORS

# ----------------------------------------------------------------------------------------
# The result type of every `nbdid ingest SOURCE` module
# ----------------------------------------------------------------------------------------

IngestKind = Literal["panel", "denominators", "covariates"]


@dataclass(frozen=True)
class IngestResult:
    """What an ingest source module (``nbdid.data_prep.<source>.run_ingest``) returns.

    Attributes
    ----------
    table
        The tidy table built from the raw files.
    kind
        ``"panel"`` (rows of the ward panel schema, validated by
        :func:`validate_panel` before writing), ``"denominators"`` (ward x period
        populations, households, ...) or ``"covariates"`` (ward-level covariates).
    report
        Provenance, JSON-serialisable: files and rows read, rows dropped and why,
        per-ward coverage by period, ...  Written next to the table as
        ``<stem>.provenance.json`` and ``<stem>.provenance.txt``.
    require_exposure
        Whether a ``"panel"`` table must already carry exposures (``False`` for
        counts whose denominators are joined later, e.g. police counts).
    """

    table: pd.DataFrame
    kind: IngestKind
    report: dict[str, Any] = field(default_factory=dict)
    require_exposure: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ("panel", "denominators", "covariates"):
            raise ValueError(f"IngestResult.kind must be panel/denominators/covariates, not {self.kind!r}")
        if not isinstance(self.table, pd.DataFrame):
            raise TypeError("IngestResult.table must be a pandas DataFrame")


# ----------------------------------------------------------------------------------------
# The schema
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ColumnSpec:
    """One column of the ward panel.

    Attributes
    ----------
    name
        Column name in files and DataFrames.
    dtype
        pandas dtype of the normalised column.
    required_for
        Families whose rows must have a value here (the column must exist in a file
        if any row belongs to one of them).
    optional
        The column may be absent from a file altogether (it is then added, empty).
    description
        What the column holds (used in docs and ``nbdid data schema``).
    minimum
        Smallest whole number allowed (whole-number columns).
    """

    name: str
    dtype: str
    required_for: tuple[str, ...]
    optional: bool
    description: str
    minimum: int | None = None


_ALL = tuple(FAMILIES)


def _family_specs() -> tuple[ColumnSpec, ...]:
    """The value columns of the registered families (:func:`nbdid.families.family_columns`)."""
    out = []
    for name, (spec, users) in family_columns().items():
        required = tuple(u for u in users if name in FAMILIES[u].required)
        who = "/".join(users)
        out.append(ColumnSpec(name, spec.dtype, required, True, f"{who}: {spec.description}",
                              spec.minimum))
    return tuple(out)


PANEL_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("indicator", "string", _ALL, False,
               "registry key (or a user key given a family with `nbdid fit --family`)"),
    ColumnSpec("ward", "string", _ALL, False,
               "ward identifier (ONS ward code or synthetic id)"),
    ColumnSpec("ward_name", "string", (), True, "ward name"),
    ColumnSpec("la", "string", (), True, "local authority name"),
    ColumnSpec("group", "string", _ALL, False, "'nbi' or 'benchmark'"),
    ColumnSpec("pair", "Int64", (), True,
               "matched pair number (empty when the design has no pairs); one ward of each group per pair"),
    ColumnSpec("period", "int64", _ALL, False, "0-based ordinal of the period (0 = earliest)"),
    ColumnSpec("period_label", "string", (), True, "label of the period, e.g. '2011' or '2018-2024'"),
    ColumnSpec("post", "int64", (), True,
               "0 before the initiative, 1 after (default: period 0 -> 0, later periods -> 1)"),
    *_family_specs(),
    ColumnSpec("synthetic", "boolean", (), True, "True for rows of the synthetic default panel"),
)
"""The ward panel schema: the contract between the data layer and the models.  The
value columns come from the registered families (:mod:`nbdid.families`)."""

VALUE_COLUMNS: tuple[str, ...] = tuple(family_columns())
"""The families' value columns (count, exposure, n, prices, ...)."""

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in PANEL_COLUMNS)
SPECS: dict[str, ColumnSpec] = {c.name: c for c in PANEL_COLUMNS}
KEY_COLUMNS: tuple[str, ...] = ("indicator", "ward", "period")
SORT_COLUMNS: tuple[str, ...] = ("indicator", "period", "group", "pair", "ward")

_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n", ""}


def schema_table() -> pd.DataFrame:
    """The schema as a table (name, dtype, required for, optional, description)."""
    return pd.DataFrame(
        {
            "column": [c.name for c in PANEL_COLUMNS],
            "dtype": [c.dtype for c in PANEL_COLUMNS],
            "required_for": [", ".join(c.required_for) or "-" for c in PANEL_COLUMNS],
            "may_be_absent": [c.optional for c in PANEL_COLUMNS],
            "description": [c.description for c in PANEL_COLUMNS],
        }
    )


# ----------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------


class _Ctx:
    """Error context: file name and the mapping from frame position to file line."""

    def __init__(self, file: str | os.PathLike[str] | None, lines: np.ndarray) -> None:
        self.file = None if file is None else str(file)
        self.lines = lines

    def fail(self, message: str, *, pos: int | None = None, column: str | None = None) -> InputError:
        row = None if pos is None else int(self.lines[pos])
        return InputError(message, file=self.file, row=row, column=column)


def _first(mask: np.ndarray | pd.Series) -> int | None:
    arr = np.asarray(mask, dtype=bool)
    idx = np.flatnonzero(arr)
    return int(idx[0]) if idx.size else None


def _show(v: Any) -> str:
    s = str(v)
    return repr(s[:40] + ("..." if len(s) > 40 else ""))


def _as_text(df: pd.DataFrame, col: str) -> pd.Series:
    """A column as stripped strings with missing values as <NA>."""
    s = df[col]
    out = s.astype("string").str.strip()
    return out.mask(out == "", pd.NA)


def _numeric(df: pd.DataFrame, col: str, ctx: _Ctx, *, what: str) -> pd.Series:
    """Parse a column as float; report the first value that is not a number."""
    raw = df[col]
    if pd.api.types.is_bool_dtype(raw):
        raise ctx.fail(f"{what} must be a number, not true/false", pos=0, column=col)
    if pd.api.types.is_numeric_dtype(raw):
        vals = raw.astype("float64")
    else:
        text = _as_text(df, col)
        vals = pd.to_numeric(text, errors="coerce").astype("float64")
        bad = text.notna().to_numpy() & vals.isna().to_numpy()
        pos = _first(bad)
        if pos is not None:
            raise ctx.fail(f"{what} must be a number, not {_show(text.iloc[pos])}", pos=pos, column=col)
    pos = _first(np.isinf(vals.to_numpy(dtype=float, na_value=np.nan)))
    if pos is not None:
        raise ctx.fail(f"{what} must be finite, not {vals.iloc[pos]}", pos=pos, column=col)
    return vals


def _whole(vals: pd.Series, ctx: _Ctx, col: str, *, what: str, minimum: int | None) -> pd.Series:
    arr = vals.to_numpy(dtype=float, na_value=np.nan)
    present = ~np.isnan(arr)
    pos = _first(present & (arr != np.round(arr)))
    if pos is not None:
        raise ctx.fail(f"{what} must be a whole number, not {arr[pos]:g}", pos=pos, column=col)
    if minimum is not None:
        pos = _first(present & (arr < minimum))
        if pos is not None:
            bound = "non-negative" if minimum == 0 else f"at least {minimum}"
            raise ctx.fail(f"{what} must be {bound}, not {arr[pos]:g}", pos=pos, column=col)
    pos = _first(present & (np.abs(arr) > 2**53))
    if pos is not None:
        raise ctx.fail(f"{what} is too large ({arr[pos]:g})", pos=pos, column=col)
    out = pd.array(np.where(present, arr, 0).astype("int64"), dtype="Int64")
    out[~present] = pd.NA
    return pd.Series(out, index=vals.index)


def _families_for(
    indicators: pd.Series, families: Mapping[str, str] | None, ctx: _Ctx
) -> pd.Series:
    fam_map: dict[str, str] = {k: v.family for k, v in INDICATORS.items()}
    for key, fam in (families or {}).items():
        fam = base_name(fam)
        if fam not in FAMILIES:
            raise InputError(
                f"family of indicator '{key}' must be one of {', '.join(FAMILIES)}, not {fam!r}",
                file=ctx.file,
            )
        fam_map[str(key)] = fam
    fam = indicators.map(fam_map)
    pos = _first(fam.isna().to_numpy())
    if pos is not None:
        key = str(indicators.iloc[pos])
        close = difflib.get_close_matches(key, list(fam_map), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ctx.fail(
            f"unknown indicator '{key}'{hint}; use a registry key or give its family "
            f"(nbdid fit --family KEY={'|'.join(FAMILIES)})",
            pos=pos,
            column="indicator",
        )
    return fam.astype("string")


def _check_columns(df: pd.DataFrame, ctx: _Ctx, present_families: set[str] | None,
                   covariates: tuple[str, ...] = ()) -> None:
    cols = [str(c) for c in df.columns]
    dup = [c for c in cols if cols.count(c) > 1]
    if dup:
        raise InputError(f"column '{dup[0]}' appears more than once in the header", file=ctx.file, row=1)
    unknown = [c for c in cols if c not in SPECS and c not in covariates]
    missing = [c for c in covariates if c not in cols]
    clash = [c for c in covariates if c in SPECS]
    if clash:
        raise InputError(f"'{clash[0]}' is a panel column, not a covariate", file=ctx.file)
    for spec in PANEL_COLUMNS:
        if spec.name in cols:
            continue
        needed = not spec.optional
        if present_families is not None and spec.required_for:
            needed = needed or bool(present_families & set(spec.required_for))
        if needed:
            missing.append(spec.name)
    if missing:
        name = missing[0]
        close = difflib.get_close_matches(name, unknown, n=1, cutoff=0.6)
        if close:
            msg = f"required column '{name}' is missing; found '{close[0]}' (misspelled?)"
        else:
            msg = f"required column '{name}' is missing (header has: {', '.join(cols) or 'nothing'})"
        raise InputError(msg, file=ctx.file, row=1, column=name)
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, COLUMN_NAMES, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise InputError(
            f"unknown column '{name}'{hint}; panel columns are: {', '.join(COLUMN_NAMES)} "
            "(declare covariate columns: --covariates)",
            file=ctx.file,
            row=1,
            column=name,
        )


def _family_message(message: str, family: str, indicator: str, shown: dict[str, str]) -> str:
    """A family's row-check message with the row's values: ``message`` may name
    ``{indicator}``, ``{family}`` and any value column (``{count}``, ``{exposure}``...);
    otherwise the flagged indicator is appended."""
    text = message.format(indicator=indicator, family=family, **shown)
    return text if "{indicator}" in message else f"{text} (indicator '{indicator}')"


def validate_panel(
    df: pd.DataFrame,
    *,
    file: str | os.PathLike[str] | None = None,
    require_exposure: bool = True,
    families: Mapping[str, str] | None = None,
    lines: np.ndarray | None = None,
    covariates: tuple[str, ...] | list[str] = (),
    bounds: BoundsConfig | None = None,
) -> pd.DataFrame:
    """Check a ward panel against the schema and return a normalised copy.

    Parameters
    ----------
    df
        The panel, one row per indicator x ward x period (see :data:`PANEL_COLUMNS`).
    file
        File name used in error messages.
    require_exposure
        Whether count rows must have an exposure (``False`` for count tables whose
        denominators are joined later).
    families
        Families of indicator keys that are not in the registry, e.g.
        ``{"fly_tipping": "poisson"}``; known keys may be overridden.
    lines
        File line of each row of ``df`` (default: row position + 2, i.e. a CSV with
        a one-line header).
    covariates
        Extra columns to keep as numeric covariates (``nbdid fit --covariates``); they
        must be numbers or empty, and follow the schema columns in the result.
    bounds
        Plausibility bounds of the value columns and rates (default:
        :class:`nbdid.config.BoundsConfig`'s documented defaults).  A value outside is
        refused, as is an indicator with nothing to model (every count 0, no
        variation), when ``require_exposure`` (a complete panel).

    Returns
    -------
    pandas.DataFrame
        All schema columns in schema order with proper dtypes (absent optional columns
        added empty, ``post`` defaulting to ``period > 0``, ``synthetic`` to False),
        sorted by indicator, period, group, pair and ward.

    Raises
    ------
    InputError
        Naming the file, line and column of the first problem found.
    """
    if not isinstance(df, pd.DataFrame):
        raise InputError("a panel must be a table (pandas DataFrame)", file=file)
    df = df.reset_index(drop=True)
    if lines is None:
        lines = np.arange(len(df)) + 2
    ctx = _Ctx(file, np.asarray(lines))
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        _check_columns(df, ctx, None)
        raise InputError("the panel has a header but no rows", file=ctx.file)

    if "indicator" not in df.columns:
        _check_columns(df, ctx, None)

    indicator = _as_text(df, "indicator")
    pos = _first(indicator.isna().to_numpy())
    if pos is not None:
        raise ctx.fail("indicator is empty", pos=pos, column="indicator")
    family = _families_for(indicator, families, ctx)
    covariates = tuple(str(c).strip() for c in covariates)
    _check_columns(df, ctx, set(family.unique()), covariates)

    out = pd.DataFrame(index=df.index)
    out["indicator"] = indicator

    # --- text columns
    for col in ("ward", "ward_name", "la", "group", "period_label"):
        if col in df.columns:
            out[col] = _as_text(df, col)
        else:
            out[col] = pd.Series(pd.NA, index=df.index, dtype="string")
    pos = _first(out["ward"].isna().to_numpy())
    if pos is not None:
        raise ctx.fail("ward is empty", pos=pos, column="ward")
    grp = out["group"].str.lower()
    bad = ~grp.isin(list(GROUPS)).to_numpy(dtype=bool, na_value=False) | grp.isna().to_numpy()
    pos = _first(bad)
    if pos is not None:
        raise ctx.fail(
            f"group must be 'nbi' or 'benchmark', not {_show(out['group'].iloc[pos]) if pd.notna(out['group'].iloc[pos]) else 'empty'}",
            pos=pos,
            column="group",
        )
    out["group"] = grp

    # --- pair
    if "pair" in df.columns:
        pair = _numeric(df, "pair", ctx, what="pair")
        out["pair"] = _whole(pair, ctx, "pair", what="pair", minimum=1)
    else:
        out["pair"] = pd.Series(pd.NA, index=df.index, dtype="Int64")

    # --- period / post
    period = _numeric(df, "period", ctx, what="period")
    pos = _first(period.isna().to_numpy())
    if pos is not None:
        raise ctx.fail("period is empty", pos=pos, column="period")
    out["period"] = _whole(period, ctx, "period", what="period", minimum=0).astype("int64")
    if "post" in df.columns:
        post = _numeric(df, "post", ctx, what="post")
        arr = post.to_numpy(dtype=float, na_value=np.nan)
        pos = _first(~np.isin(arr, (0.0, 1.0)))
        if pos is not None:
            shown = "empty" if np.isnan(arr[pos]) else f"{arr[pos]:g}"
            raise ctx.fail(f"post must be 0 or 1, not {shown}", pos=pos, column="post")
        out["post"] = arr.astype("int64")
    else:
        out["post"] = (out["period"] > 0).astype("int64")

    # --- the families' value columns
    values: dict[str, np.ndarray] = {}
    for spec in PANEL_COLUMNS:
        if spec.name not in VALUE_COLUMNS:
            continue
        if spec.name in df.columns:
            v = _numeric(df, spec.name, ctx, what=spec.name)
            if spec.dtype == "Int64":
                v = _whole(v, ctx, spec.name, what=spec.name, minimum=spec.minimum)
            values[spec.name] = v.to_numpy(dtype=float, na_value=np.nan)
        else:
            values[spec.name] = np.full(len(df), np.nan)
    limits: dict[str, Any] = dict((bounds if bounds is not None else BoundsConfig()).columns)
    rates = (bounds if bounds is not None else BoundsConfig()).max_rate
    limits["max_rate"] = indicator.map(rates).astype("float64").fillna(np.inf).to_numpy()
    for fam_name in family.unique():
        fam = get_family(str(fam_name))
        rows = (family == fam_name).to_numpy(dtype=bool)

        def fail(message: str, mask: np.ndarray, column: str, fam=fam) -> None:
            pos = _first(mask)
            if pos is None:
                return
            shown = {k: ("empty" if np.isnan(v[pos]) else f"{v[pos]:g}") for k, v in values.items()}
            raise ctx.fail(_family_message(message, fam.name, str(indicator.iloc[pos]), shown),
                           pos=pos, column=column)

        fam.check_rows(values, rows, fail, require_deferred=require_exposure)
        # plausibility: a value no ward can have (1e300 people) is refused here, not in
        # the sampler
        fam.check_bounds(values, rows, fail, limits)
    if require_exposure:
        for key in pd.unique(indicator):
            rows = (indicator == key).to_numpy(dtype=bool)
            fam = get_family(str(family[rows].iloc[0]))
            found = fam.degenerate(values, rows)
            if found is not None:
                message, column = found
                raise ctx.fail(message.format(indicator=key, family=fam.name), pos=_first(rows),
                               column=column)
    for spec in PANEL_COLUMNS:
        if spec.name not in VALUE_COLUMNS:
            continue
        users = family.isin([f for f in FAMILIES if spec.name in
                             {c.name for c in FAMILIES[f].columns}]).to_numpy(dtype=bool)
        v = np.where(users, values[spec.name], np.nan)
        if spec.dtype == "Int64":
            arr = pd.array(np.where(np.isnan(v), 0, v).astype("int64"), dtype="Int64")
            arr[np.isnan(v)] = pd.NA
            out[spec.name] = arr
        else:
            out[spec.name] = v

    # --- synthetic marker
    if "synthetic" in df.columns:
        raw = df["synthetic"]
        if pd.api.types.is_bool_dtype(raw):
            syn = raw.fillna(False).astype(bool).to_numpy()
        else:
            text = raw.astype("string").str.strip().str.lower().fillna("")
            bad = ~text.isin(_TRUE | _FALSE).to_numpy(dtype=bool)
            pos = _first(bad)
            if pos is not None:
                raise ctx.fail(f"synthetic must be true or false, not {_show(raw.iloc[pos])}",
                               pos=pos, column="synthetic")
            syn = text.isin(_TRUE).to_numpy(dtype=bool)
        out["synthetic"] = pd.array(syn, dtype="boolean")
    else:
        out["synthetic"] = pd.array(np.zeros(len(df), dtype=bool), dtype="boolean")

    for col in covariates:
        out[col] = _numeric(df, col, ctx, what=f"covariate {col}").to_numpy(dtype=float, na_value=np.nan)
    _check_design(out, ctx)

    out["_line"] = ctx.lines
    out = out.sort_values([*SORT_COLUMNS], kind="stable", na_position="last", ignore_index=True)
    out = out.drop(columns="_line")
    return out[[*COLUMN_NAMES, *covariates]].astype({c.name: c.dtype for c in PANEL_COLUMNS})


def _check_design(out: pd.DataFrame, ctx: _Ctx) -> None:
    """Cross-row checks: duplicates, groups, pairs, period labels."""
    key = out[list(KEY_COLUMNS)]
    dup = key.duplicated(keep="first").to_numpy()
    pos = _first(dup)
    if pos is not None:
        first = _first(
            (key["indicator"] == key["indicator"].iloc[pos]).to_numpy(dtype=bool)
            & (key["ward"] == key["ward"].iloc[pos]).to_numpy(dtype=bool)
            & (key["period"] == key["period"].iloc[pos]).to_numpy(dtype=bool)
        )
        raise ctx.fail(
            f"duplicate row for indicator '{key['indicator'].iloc[pos]}', ward "
            f"'{key['ward'].iloc[pos]}', period {key['period'].iloc[pos]} "
            f"(first given on line {int(ctx.lines[first])})",
            pos=pos, column="ward",
        )
    # a ward belongs to one group and one pair (across all indicators)
    for col, what in (("group", "group"), ("pair", "pair number")):
        first_val = out.groupby("ward", sort=False)[col].transform("first")
        a = out[col].astype("string").fillna("<empty>")
        b = first_val.astype("string").fillna("<empty>")
        pos = _first((a != b).to_numpy(dtype=bool))
        if pos is not None:
            ward = out["ward"].iloc[pos]
            first = _first((out["ward"] == ward).to_numpy(dtype=bool))
            raise ctx.fail(
                f"ward '{ward}' has {what} {a.iloc[pos]} here but {b.iloc[pos]} on line "
                f"{int(ctx.lines[first])}; a ward must have one {what}",
                pos=pos, column=col,
            )
    # pairs: all-or-none; a pair (matched set) has one nbi ward and 1..k benchmark wards
    has_pair = out["pair"].notna().to_numpy()
    if has_pair.any() and not has_pair.all():
        pos = _first(~has_pair)
        raise ctx.fail("pair is empty here but given on other rows; give every ward a pair or none",
                       pos=pos, column="pair")
    if has_pair.all():
        wards = out.drop_duplicates("ward")[["ward", "group", "pair"]]
        for pair, sub in wards.groupby("pair", sort=True):
            counts = sub["group"].value_counts()
            if counts.get("nbi", 0) != 1 or counts.get("benchmark", 0) < 1:
                pos = _first((out["pair"] == pair).to_numpy(dtype=bool))
                desc = ", ".join(f"{w} ({g})" for w, g in zip(sub["ward"], sub["group"], strict=True))
                raise ctx.fail(
                    f"pair {pair} must have exactly one nbi and at least one benchmark ward, has: {desc} "
                    "(empty the pair column to fit without pair effects, as with "
                    "'nbdid fit --no-pairs')",
                    pos=pos, column="pair",
                )
    # period labels: one label per (indicator, period) and vice versa
    lab = out["period_label"]
    if lab.notna().any():
        for col_a, col_b in (("period", "period_label"), ("period_label", "period")):
            sub = out[lab.notna().to_numpy()]
            first_val = sub.groupby(["indicator", col_a], sort=False)[col_b].transform("first")
            bad = (sub[col_b].astype("string") != first_val.astype("string")).to_numpy(dtype=bool)
            idx = _first(bad)
            if idx is not None:
                pos = int(np.flatnonzero(lab.notna().to_numpy())[idx])
                raise ctx.fail(
                    f"{col_a} {sub[col_a].iloc[idx]} of indicator '{sub['indicator'].iloc[idx]}' "
                    f"has {col_b} {_show(sub[col_b].iloc[idx])} here but {_show(first_val.iloc[idx])} "
                    "elsewhere; period and period_label must map one to one",
                    pos=pos, column="period_label",
                )
        pos = _first(lab.isna().to_numpy())
        if pos is not None:
            raise ctx.fail("period_label is empty here but given on other rows", pos=pos,
                           column="period_label")
    # post must not go back from 1 to 0 as period increases within an indicator
    # (one value per period; the row reported is one that disagrees with the most
    # common value of its period, in file order)
    grp = out.groupby(["indicator", "period"], sort=False)["post"]
    mixed = (grp.transform("min") != grp.transform("max")).to_numpy(dtype=bool)
    if mixed.any():
        ones = grp.transform("sum").to_numpy()
        size = grp.transform("size").to_numpy()
        post = out["post"].to_numpy()
        # majority value; on a tie, the value of the period's first row in the file
        first_post = (out.assign(_l=ctx.lines).sort_values("_l", kind="stable")
                      .groupby(["indicator", "period"], sort=False)["post"].transform("first")
                      .reindex(out.index).to_numpy())
        majority = np.where(2 * ones > size, 1, np.where(2 * ones < size, 0, first_post))
        odd = mixed & (post != majority)
        order = np.argsort(ctx.lines, kind="stable")
        pos = int(order[np.flatnonzero(odd[order])[0]])
        ind, p = out["indicator"].iloc[pos], out["period"].iloc[pos]
        raise ctx.fail(f"post is {post[pos]} here, but {majority[pos]} on the other rows of period "
                       f"{p} of indicator '{ind}' (one post value per period)",
                       pos=pos, column="post")


# ----------------------------------------------------------------------------------------
# Reading and writing
# ----------------------------------------------------------------------------------------

_NA_VALUES = ["", "NA", "N/A", "NaN", "nan", "<NA>", "null", "NULL", "None"]


def _decode(raw: bytes, path: Path) -> tuple[str, str]:
    """The file's text and its encoding (:func:`nbdid.data_prep.textfiles.decode_text`)."""
    if not raw.strip():
        raise InputError("the file is empty", file=path)
    return decode_text(raw, path)


def read_panel(
    path: str | os.PathLike[str],
    *,
    require_exposure: bool = True,
    families: Mapping[str, str] | None = None,
    covariates: tuple[str, ...] | list[str] = (),
    bounds: BoundsConfig | None = None,
) -> pd.DataFrame:
    """Read and validate a ward panel CSV (or Parquet, if pyarrow is installed).

    Parameters
    ----------
    path
        Panel file (``.csv``; ``.parquet`` needs pyarrow).
    require_exposure, families, covariates, bounds
        See :func:`validate_panel`.

    Returns
    -------
    pandas.DataFrame
        The validated, normalised panel; ``attrs["encoding"]`` says how a CSV file was
        decoded (UTF-8, UTF-16, Windows-1252, ...).

    Raises
    ------
    InputError
        If the file is missing, empty, not UTF-8, not CSV, or breaks the schema.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("panel file not found", file=p)
    if p.is_dir():
        raise InputError("expected a panel file, got a folder", file=p)
    if p.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(p, require_exposure=require_exposure, families=families,
                             covariates=covariates, bounds=bounds)
    if p.suffix.lower() in (".xlsx", ".xls", ".ods"):
        raise InputError("spreadsheets are not read directly; save the sheet as CSV (UTF-8): in "
                         "Excel 'Save As' > 'CSV UTF-8 (Comma delimited) (*.csv)'", file=p)
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read the file: {err.strerror or err}", file=p) from None
    text, encoding = _decode(raw, p)
    first_line = text.lstrip().splitlines()[0] if text.strip() else ""
    if "," not in first_line:
        hint = " (it looks tab-separated; use commas)" if "\t" in first_line else \
            " (it looks semicolon-separated; use commas)" if ";" in first_line else ""
        raise InputError(f"this does not look like a CSV panel: the header line has no commas{hint}",
                         file=p, row=1)
    try:
        df = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            na_values=_NA_VALUES,
            skip_blank_lines=True,
        )
    except pd.errors.EmptyDataError:
        raise InputError("the file is empty", file=p) from None
    except pd.errors.ParserError as err:
        msg = str(err).strip().splitlines()[-1] if str(err).strip() else "malformed CSV"
        line = None
        m = re.search(r"line (\d+)", msg)
        if m:
            line = int(m.group(1))
            msg = re.sub(r"\s*in line \d+", "", msg)
        raise InputError(f"not a well-formed CSV file: {msg}", file=p, row=line) from None
    except (ValueError, UnicodeError) as err:
        raise InputError(f"not a well-formed CSV file: {err}", file=p) from None
    lines = _file_lines(text, len(df))
    panel = validate_panel(df, file=p, require_exposure=require_exposure, families=families,
                           lines=lines, covariates=covariates, bounds=bounds)
    panel.attrs["encoding"] = encoding  # provenance: how the file was read
    return panel


def _file_lines(text: str, nrows: int) -> np.ndarray:
    """Line numbers (1-based) of the data rows, skipping blank lines like pandas does.

    Quoted fields with embedded newlines are rare in panels; when the count does not
    match the parsed rows, fall back to row position + 2.
    """
    lines = text.splitlines()
    data = [i + 1 for i, ln in enumerate(lines) if ln.strip() != ""][1:]
    if len(data) == nrows:
        return np.asarray(data)
    return np.arange(nrows) + 2


def _read_parquet(p: Path, *, require_exposure: bool, families: Mapping[str, str] | None,
                  covariates: tuple[str, ...] | list[str] = (),
                  bounds: BoundsConfig | None = None) -> pd.DataFrame:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise InputError("reading Parquet needs the optional package pyarrow; save the panel as CSV",
                         file=p) from None
    try:
        df = pd.read_parquet(p)
    except Exception as err:  # pyarrow raises many types for corrupt files
        raise InputError(f"not a readable Parquet file: {err}", file=p) from None
    return validate_panel(df, file=p, require_exposure=require_exposure, families=families,
                          covariates=covariates, bounds=bounds)


def _format_csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A panel with values formatted so that the CSV is stable and round-trips."""
    out = df.copy()
    for col in ("exposure", "mean_price", "mean_log_price", "sd_log_price"):
        if col in out.columns:
            vals = out[col].to_numpy(dtype=float, na_value=np.nan)
            out[col] = [
                "" if math.isnan(v) else (str(int(v)) if v == int(v) and abs(v) < 2**53 else repr(float(v)))
                for v in vals
            ]
    if "synthetic" in out.columns:
        out["synthetic"] = out["synthetic"].map(lambda v: "true" if v is True or v == True else "false")  # noqa: E712
    return out


def write_panel(df: pd.DataFrame, path: str | os.PathLike[str], *,
                covariates: tuple[str, ...] | list[str] = ()) -> Path:
    """Validate ``df`` and write it atomically as CSV (or Parquet for ``.parquet``).

    ``covariates`` names extra numeric columns the panel carries (as ``--covariates``).

    Returns
    -------
    pathlib.Path
        The path written.
    """
    given = _families_of(df)
    panel = validate_panel(df, require_exposure=False, families=given, covariates=covariates)
    # value columns of families the panel does not use are left out of the file (a panel
    # of the report's indicators has no columns of, say, the gaussian family)
    present = {(given or {}).get(k) or (INDICATORS[k].family if k in INDICATORS else None)
               for k in panel["indicator"].astype(str).unique()}
    used = {c.name for f in present if f in FAMILIES for c in FAMILIES[f].columns}
    if None in present:  # a key whose family is unknown here: keep every column
        used = set(VALUE_COLUMNS)
    panel = panel.drop(columns=[c for c in VALUE_COLUMNS if c not in used])
    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError("writing Parquet needs the optional package pyarrow; use a .csv name",
                             file=p) from None
        with atomic_path(p) as tmp:
            panel.to_parquet(tmp, index=False)
        return p
    return write_csv(_format_csv_frame(panel), p, lineterminator="\n", encoding="utf-8")


def _families_of(df: pd.DataFrame) -> dict[str, str] | None:
    """Families of non-registry indicators carried in ``df.attrs['families']``, if any."""
    fam = df.attrs.get("families") if hasattr(df, "attrs") else None
    return dict(fam) if fam else None


def panel_summary(panel: pd.DataFrame) -> pd.DataFrame:
    """Per indicator, group and period: wards, total count/exposure or transactions, pooled value.

    The pooled value is ``multiplier * sum(count) / sum(exposure)`` for registry count
    indicators (the raw ratio for user keys) and ``sum(n * mean_price) / sum(n)`` for
    prices, i.e. the report's group figure.
    """
    given = _families_of(panel) or {}
    rows = []
    for (ind, per, grp), sub in panel.groupby(["indicator", "period", "group"], sort=True):
        reg = INDICATORS.get(str(ind))
        if reg is not None or str(ind) in given:
            fam = get_family(reg.family if reg is not None else given[str(ind)])
        else:  # a user key: the first family whose value columns are filled
            present = {c for c in VALUE_COLUMNS if sub[c].notna().any()}
            fam = next((f for f in FAMILIES.values() if set(f.required) - set(f.deferred) <= present),
                       next(iter(FAMILIES.values())))
        label = sub["period_label"].dropna()
        totals = fam.ward_totals(sub).sum().to_frame().T
        mult = reg.multiplier if reg is not None else 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            value = float(fam.unit_value(totals, mult).iloc[0])
        total = float(totals[fam.weight_column].iloc[0])
        rows.append({
            "indicator": ind,
            "period": int(per),
            "period_label": label.iloc[0] if len(label) else "",
            "group": grp,
            "wards": int(sub["ward"].nunique()),
            "total": total,
            "value": value if total > 0 else float("nan"),
        })
    return pd.DataFrame(rows)
