"""HM Land Registry Price Paid Data -> ward x period price summaries.

``nbdid ingest land-registry --ppd FILE [FILE ...] --postcodes NSPL.csv [--lookup LSOA_TO_WARD.csv] --out PANEL.csv``

Price Paid files (``pp-complete.csv``, yearly ``pp-YYYY.csv``, monthly updates) have no
header and 16 quoted columns (:data:`PPD_COLUMNS`).  By default only *standard* price
paid entries (PPD category ``A``) are kept (``--include-category-b`` adds repossessions,
buy-to-let and non-private sales).  Record status ``A`` adds, ``C`` changes (the last
version of a transaction is kept) and ``D`` deletes a transaction.

Sales are placed in wards through an ONS postcode directory (NSPL/ONSPD layout,
columns ``pcds`` or ``pcd``, ``lsoa11``/``lsoa11cd`` and a ward column such as ``wd19``,
``wd19cd`` or ``osward``): directly through the ward column, or postcode -> LSOA ->
ward through ``--lookup``.  Periods are user windows (``--periods
2007-12:2013-11,2018-12:2024-11``, labelled ``2007-2013`` and ``2018-2024``, as in the
report) or calendar years.  Each ward-period row has ``n``, ``mean_price``,
``mean_log_price`` and ``sd_log_price`` (sample SD, empty when ``n == 1``).
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Sequence
from datetime import date as date_cls
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nbdid.data_prep.guards import PPD_FIRST_DATE, PPD_MAX_PRICE, PPD_MIN_PRICE, add_notice
from nbdid.data_prep.lookups import read_csv_columns, read_header, read_text
from nbdid.data_prep.schema import IngestResult
from nbdid.data_prep.streaming import (
    DEFAULT_BATCH_BYTES,
    Engine,
    fullmatch,
    iter_csv_batches,
    remove_whitespace_upper,
    resolve_engine,
)
from nbdid.data_prep.wards import Boundaries, design_area_map, resolve_geography
from nbdid.errors import InputError

PPD_COLUMNS: tuple[str, ...] = (
    "transaction_id",
    "price",
    "date",
    "postcode",
    "property_type",
    "old_new",
    "duration",
    "paon",
    "saon",
    "street",
    "locality",
    "town",
    "district",
    "county",
    "ppd_category",
    "record_status",
)
"""The 16 columns of a Price Paid file, in order (the files have no header)."""

INDICATOR = "property_price"


def normalise_postcode(pc: pd.Series) -> pd.Series:
    """Upper case, spaces removed (``"ne4 9dn"`` -> ``"NE49DN"``)."""
    return remove_whitespace_upper(pc)


def validate_ppd(df: pd.DataFrame, path: str | PathLike[str], first_line: int = 1) -> tuple[
        np.ndarray, pd.Series]:
    """Check prices and dates of Price Paid rows; return prices (int64) and ``YYYY-MM-DD``.

    Prices must be whole pounds from :data:`~nbdid.data_prep.guards.PPD_MIN_PRICE` to
    :data:`~nbdid.data_prep.guards.PPD_MAX_PRICE`; dates must be transfer dates from
    1 January 1995 (the start of the data) up to today.

    Raises
    ------
    InputError
        Naming the file, line and column of the first bad value.
    """
    raw = df["price"].astype("string").str.strip()
    price = _fast_numeric(raw)
    bad = price.isna().to_numpy() | ~(price.to_numpy(dtype=float, na_value=np.nan) > 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"price must be a positive number, got '{df['price'].iloc[i]}'",
                         file=path, row=i + first_line, column="price (column 2)")
    pv = price.to_numpy(dtype=float)
    bad = (pv != np.round(pv)) | (pv < PPD_MIN_PRICE) | (pv > PPD_MAX_PRICE)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"price '{df['price'].iloc[i]}' is outside what HM Land Registry publishes (whole "
            f"pounds from £{PPD_MIN_PRICE:,} to £{PPD_MAX_PRICE:,}): the file is not Price "
            "Paid Data as published, or a field is shifted",
            file=path, row=i + first_line, column="price (column 2)")
    day = df["date"].astype("string").str.strip().str.slice(0, 10)
    ok = fullmatch(day, r"(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])")
    today = date_cls.today().isoformat()
    in_range = ok & ((day >= PPD_FIRST_DATE) & (day <= today)).fillna(False).to_numpy(dtype=bool)
    if not in_range.all():
        i = int(np.flatnonzero(~in_range)[0])
        why = "bad date" if not ok[i] else (
            f"date outside the Price Paid Data range ({PPD_FIRST_DATE} to today)")
        raise InputError(f"{why} '{df['date'].iloc[i]}'", file=path, row=i + first_line,
                         column="date (column 3)")
    short = df["record_status"].isna().to_numpy() if "record_status" in df else None
    if short is not None and short.any():
        i = int(np.flatnonzero(short)[0])
        raise InputError(f"expected {len(PPD_COLUMNS)} columns (Price Paid layout); this row "
                         "has no record status (column 16)", file=path, row=i + first_line,
                         column="record status (column 16)")
    return pv.astype("int64"), day


def _fast_numeric(raw: pd.Series) -> pd.Series:
    """``pd.to_numeric(raw, errors="coerce")``, through pyarrow when every value parses."""
    try:
        # imported here: pyarrow is the optional 'national' extra; loaded only on the streaming path
        import pyarrow as pa

        arr = pa.array(raw, from_pandas=True).cast(pa.float64())
        return pd.Series(arr.to_numpy(zero_copy_only=False), index=raw.index)
    except Exception:  # noqa: BLE001 - any failure: the exact, slower parser below
        return pd.to_numeric(raw, errors="coerce")


def read_ppd(path: str | PathLike[str]) -> pd.DataFrame:
    """Read one Price Paid file (no header, 16 columns) as strings; price as int64.

    The whole file is held in memory: fine for yearly files and tests; the loader
    (:func:`ingest_land_registry`) streams instead (:func:`stream_price_panel`).

    Raises
    ------
    InputError
        Wrong number of columns (line named), non-numeric or impossible prices, bad dates.
    """
    p = Path(path)
    text = read_text(p)
    first = text.split("\n", 1)[0]
    if first.lower().startswith(("transaction", '"transaction')):
        raise InputError(
            "Price Paid files have no header; remove the header line or use the HMLR file as downloaded",
            file=p, row=1,
        )
    try:
        df = pd.read_csv(
            io.StringIO(text), header=None, dtype="string", keep_default_na=False,
            na_values=[""],
        )
    except pd.errors.ParserError as err:
        m = re.search(r"line (\d+)", str(err))
        raise InputError(f"cannot parse: {err}", file=p, row=int(m.group(1)) if m else None) from None
    if df.shape[1] != len(PPD_COLUMNS):
        raise InputError(
            f"expected {len(PPD_COLUMNS)} columns (Price Paid layout), found {df.shape[1]}",
            file=p, row=1,
        )
    df.columns = list(PPD_COLUMNS)
    price, day = validate_ppd(df, p)
    df["price"] = price
    df["date"] = pd.to_datetime(day, format="%Y-%m-%d")
    df["line"] = np.arange(1, len(df) + 1)
    df["file"] = str(p)
    return df


def apply_record_status(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Apply ``A``/``C``/``D`` record statuses in file order; report what was done."""
    status = df["record_status"].fillna("A").str.upper()
    deleted = set(df.loc[status == "D", "transaction_id"])
    keep = df[(status != "D") & ~df["transaction_id"].isin(deleted)]
    n_changed = int((status == "C").sum())
    before = len(keep)
    keep = keep.drop_duplicates("transaction_id", keep="last")
    return keep, {
        "records_status_D": int((status == "D").sum()),
        "transactions_deleted": int(len(deleted)),
        "records_status_C": n_changed,
        "superseded_versions_dropped": int(before - len(keep)),
    }


def parse_periods(spec: str | None) -> list[tuple[str, str, str]]:
    """Parse ``"2007-12:2013-11,2018-12:2024-11"`` into ``(label, first, last)`` months.

    Labels are ``"<first year>-<last year>"`` (``"2007-2013"``), the year for a whole
    calendar year, or ``"<first month> to <last month>"`` for a window within one year.
    """
    out = []
    for part in [s.strip() for s in (spec or "").split(",") if s.strip()]:
        m = re.fullmatch(r"(\d{4}-\d{2}):(\d{4}-\d{2})", part)
        if not m or m.group(1) > m.group(2):
            raise InputError(
                f"period '{part}' must be YYYY-MM:YYYY-MM (first month <= last month)",
                column="--periods",
            )
        a, b = m.group(1), m.group(2)
        if a[:4] != b[:4]:
            label = f"{a[:4]}-{b[:4]}"
        elif a.endswith("-01") and b.endswith("-12"):
            label = a[:4]
        else:
            label = f"{a} to {b}"
        out.append((label, a, b))
    labels = [x[0] for x in out]
    if len(set(labels)) != len(labels):
        raise InputError("two periods have the same label", column="--periods")
    srt = sorted(out, key=lambda x: x[1])
    for (_, _, b1), (_, a2, _) in zip(srt, srt[1:], strict=False):
        if a2 <= b1:
            raise InputError("periods overlap", column="--periods")
    return srt


def read_postcodes(path: str | PathLike[str], ward_column: str | None = None) -> tuple[pd.DataFrame, dict]:
    """Read an ONS postcode directory (NSPL/ONSPD layout): ``postcode, lsoa, ward``.

    Only the needed columns are read.  ``ward`` is taken from ``ward_column`` or the
    first of ``wdYYcd``/``wdYY``/``osward`` found (newest ``YY`` first); it may be absent
    when an LSOA lookup is used instead.
    """
    p = Path(path)
    header = read_header(p)
    low = {c.lower(): c for c in header}
    pc = next((low[c] for c in ("pcds", "pcd", "pcd7", "pcd8", "postcode") if c in low), None)
    if pc is None:
        raise InputError(
            f"not an ONS postcode directory: no postcode column (pcds/pcd) among "
            f"{', '.join(header[:15])}", file=p, row=1,
        )
    lsoa = next((low[c] for c in ("lsoa11", "lsoa11cd", "lsoa21", "lsoa21cd") if c in low), None)
    if ward_column:
        if ward_column not in header:
            raise InputError(f"no column '{ward_column}' (found {', '.join(header[:15])})",
                             file=p, row=1, column=ward_column)
        ward = ward_column
    else:
        wds = sorted((c for c in low if re.fullmatch(r"wd\d\d(cd)?", c)), reverse=True)
        ward = low[wds[0]] if wds else low.get("osward")
    cols = [c for c in (pc, lsoa, ward) if c]
    df = read_csv_columns(p, cols)
    df = df.rename(columns={pc: "postcode", **({lsoa: "lsoa"} if lsoa else {}), **({ward: "ward"} if ward else {})})
    for c in ("lsoa", "ward"):
        if c not in df:
            df[c] = pd.Series(pd.NA, index=df.index, dtype="string")
    df["postcode"] = normalise_postcode(df["postcode"])
    df = df.dropna(subset=["postcode"]).drop_duplicates("postcode")
    return df[["postcode", "lsoa", "ward"]], {
        "postcodes_file": str(p), "postcode_column": pc, "lsoa_column": lsoa, "ward_column": ward,
        "postcodes": int(len(df)),
    }


def price_summary(df: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """``n, mean_price, mean_log_price, sd_log_price`` of ``price`` by ``by``."""
    d = df.assign(log_price=np.log(df["price"].astype(float)))
    g = d.groupby(list(by), dropna=False)
    out = g.agg(
        n=("price", "size"),
        mean_price=("price", "mean"),
        mean_log_price=("log_price", "mean"),
        sd_log_price=("log_price", "std"),
    ).reset_index()
    out["n"] = out["n"].astype("Int64")
    return out


def build_price_panel(
    sales: pd.DataFrame,
    postcodes: pd.DataFrame,
    design: pd.DataFrame,
    *,
    periods: list[tuple[str, str, str]] | None = None,
    lookup: pd.DataFrame | None = None,
    include_category_b: bool = False,
    post_from: str | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Ward-period price panel rows and a report.

    Parameters
    ----------
    sales
        Concatenated :func:`read_ppd` tables.
    postcodes
        :func:`read_postcodes` table.
    design
        ``ward, ward_name, la, group, pair`` (composite ids ``A+B`` allowed when a
        ``lookup`` is given).
    periods
        :func:`parse_periods` windows; default calendar years.
    lookup
        Normalised LSOA-to-ward lookup: place postcodes via their LSOA.
    include_category_b
        Keep PPD category B entries too (default: standard entries, category A, only).
    post_from
        First month of the post-initiative periods (default: every period after the
        first is post).
    """

    rep: dict = {"records_read": int(len(sales))}
    sales, st = apply_record_status(sales)
    rep.update(st)
    cat = sales["ppd_category"].fillna("").str.upper()
    keep_cat = cat.isin(["A", "B"]) if include_category_b else cat == "A"
    rep["dropped_category"] = {str(k): int(v) for k, v in cat[~keep_cat].value_counts().items()}
    sales = sales[keep_cat]
    month = sales["date"].dt.strftime("%Y-%m")
    if periods:
        label = pd.Series(pd.NA, index=sales.index, dtype="string")
        for lab, a, b in periods:
            label[(month >= a) & (month <= b)] = lab
        rep["periods"] = [{"label": lab, "first_month": a, "last_month": b} for lab, a, b in periods]
        order = [p[0] for p in periods]
        starts = {lab: a for lab, a, _ in periods}
    else:
        label = sales["date"].dt.year.astype(str).astype("string")
        order = sorted(set(label))
        starts = {lab: f"{lab}-01" for lab in order}
    rep["sales_outside_periods"] = int(label.isna().sum())
    sales = sales.assign(period_label=label).dropna(subset=["period_label"])
    sales = sales.assign(pc=normalise_postcode(sales["postcode"]))
    rep["sales_without_postcode"] = int(sales["pc"].isna().sum())
    m = sales.merge(postcodes, left_on="pc", right_on="postcode", how="left", suffixes=("", "_nspl"))
    notfound = m["postcode_nspl"].isna() & m["pc"].notna()
    rep["postcodes_not_found"] = int(m.loc[notfound, "pc"].nunique())
    rep["sales_with_postcode_not_found"] = int(notfound.sum())
    rep["postcodes_not_found_examples"] = sorted(m.loc[notfound, "postcode"].dropna().unique().tolist())[:20]
    if lookup is not None:
        amap = design_area_map(lookup, design)[["area", "ward"]]
        m = m.drop(columns=["ward"]).merge(amap, left_on="lsoa", right_on="area", how="left")
        rep["placed_via"] = "postcode -> LSOA (postcode directory) -> ward (LSOA lookup)"
    else:
        if postcodes["ward"].isna().all():
            raise InputError("the postcode directory has no ward column; give --lookup or --ward-column")
        parts = design[["ward"]].assign(part=design["ward"].str.split("+")).explode("part")
        m = m.merge(parts.rename(columns={"ward": "design_ward"}), left_on="ward", right_on="part", how="left")
        m["ward"] = m["design_ward"]
        rep["placed_via"] = "postcode -> ward (postcode directory)"
    m = m[m["ward"].notna()]
    rep["sales_in_design_wards"] = int(len(m))
    summ = price_summary(m, ["ward", "period_label"])
    return _finish_price_panel(summ, design, order, starts, post_from, rep)


def _finish_price_panel(summ: pd.DataFrame, design: pd.DataFrame, order: list[str],
                        starts: dict[str, str], post_from: str | None,
                        rep: dict) -> tuple[pd.DataFrame, dict]:
    """Panel rows from ward-period price summaries (shared by both paths)."""
    summ = summ.astype({"ward": "string", "period_label": "string"})
    panel = summ.merge(design.astype({"ward": "string"}), on="ward", how="left")
    present = set(panel["period_label"])
    pos = {lab: i for i, lab in enumerate([o for o in order if o in present])}
    panel = panel[panel["period_label"].isin(pos)]
    panel["period"] = panel["period_label"].map(pos).astype("int64")
    if post_from:
        panel["post"] = (panel["period_label"].map(starts) >= post_from).astype("int64")
    else:
        panel["post"] = (panel["period"] > 0).astype("int64")
    covered = set(panel["ward"])
    rep["wards_with_sales"] = int(len(covered))
    rep["wards_without_sales"] = [
        f"{r.ward_name} ({r.la}, {r.ward})" for r in design[~design["ward"].isin(covered)].itertuples(index=False)
    ]
    if panel["pair"].notna().any():
        per_pair = panel.drop_duplicates("ward").groupby("pair")["group"].nunique()
        broken = sorted(int(p) for p in per_pair[per_pair < 2].index)
        if broken:
            rep["pairs_dropped"] = f"pair numbers removed: pair(s) {broken} have only one ward with sales"
            add_notice(rep, "pairs", rep["pairs_dropped"])
            panel["pair"] = pd.array([pd.NA] * len(panel), dtype="Int64")
    panel["indicator"] = INDICATOR
    panel["count"] = pd.array([pd.NA] * len(panel), dtype="Int64")
    panel["exposure"] = float("nan")
    panel["synthetic"] = False
    cols = ["indicator", "ward", "ward_name", "la", "group", "pair", "period", "period_label",
            "post", "count", "exposure", "n", "mean_price", "mean_log_price", "sd_log_price",
            "synthetic"]
    return panel[cols].sort_values(["period", "ward"], ignore_index=True), rep


# ----------------------------------------------------------------------------------------
# streaming: the 4 GB complete file in bounded memory
# ----------------------------------------------------------------------------------------

_STREAM_COLUMNS = ["transaction_id", "price", "date", "postcode", "ppd_category", "record_status"]


class _Moments:
    """Running n, sum of prices, mean and M2 of log prices per group (Chan et al.)."""

    def __init__(self, n_groups: int) -> None:
        self.n = np.zeros(n_groups, dtype="int64")
        self.sum_price = np.zeros(n_groups, dtype="int64")
        self.mean = np.zeros(n_groups)
        self.m2 = np.zeros(n_groups)

    def add(self, group: np.ndarray, price: np.ndarray) -> None:
        if not len(group):
            return
        k = len(self.n)
        lp = np.log(price.astype(float))
        nb = np.bincount(group, minlength=k)
        sb = np.bincount(group, weights=lp, minlength=k)
        has = nb > 0
        mb = np.zeros(k)
        mb[has] = sb[has] / nb[has]
        m2b = np.bincount(group, weights=(lp - mb[group]) ** 2, minlength=k)
        # whole pounds: float sums of a batch are exact below 2**53
        self.sum_price += np.rint(np.bincount(group, weights=price.astype(float),
                                              minlength=k)).astype("int64")
        na = self.n
        n = na + nb
        delta = mb - self.mean
        with np.errstate(invalid="ignore", divide="ignore"):
            self.mean = np.where(has, self.mean + delta * nb / np.where(n > 0, n, 1), self.mean)
            self.m2 = np.where(has, self.m2 + m2b + delta ** 2 * na * nb / np.where(n > 0, n, 1),
                               self.m2)
        self.n = n


def _placement(postcodes: pd.DataFrame, design: pd.DataFrame,
               lookup: pd.DataFrame | None) -> tuple[pd.DataFrame, str]:
    """``pc, ward`` rows placing directory postcodes in design wards (and how)."""

    pcs = postcodes.rename(columns={"postcode": "pc"})
    if lookup is not None:
        amap = design_area_map(lookup, design)[["area", "ward"]]
        m = pcs[["pc", "lsoa"]].merge(amap, left_on="lsoa", right_on="area", how="inner")
        return m[["pc", "ward"]], "postcode -> LSOA (postcode directory) -> ward (LSOA lookup)"
    if postcodes["ward"].isna().all():
        raise InputError("the postcode directory has no ward column; give --lookup or --ward-column")
    parts = design[["ward"]].assign(part=design["ward"].str.split("+")).explode("part")
    m = pcs[["pc", "ward"]].rename(columns={"ward": "part"}).merge(parts, on="part", how="inner")
    return m[["pc", "ward"]], "postcode -> ward (postcode directory)"


def stream_price_panel(
    ppd: Sequence[str | PathLike[str]],
    postcodes: pd.DataFrame,
    design: pd.DataFrame,
    *,
    periods: list[tuple[str, str, str]] | None = None,
    lookup: pd.DataFrame | None = None,
    include_category_b: bool = False,
    post_from: str | None = None,
    engine: Engine | str = "auto",
    batch_bytes: int = DEFAULT_BATCH_BYTES,
) -> tuple[pd.DataFrame, dict]:
    """:func:`build_price_panel` reading the Price Paid files as a stream.

    Memory holds the postcode directory, one batch of rows and one 64-bit hash per row
    (to find transactions listed twice); record statuses C and D, or a repeated
    transaction id, trigger a second pass that applies them exactly as
    :func:`apply_record_status` does.  The results equal :func:`build_price_panel`'s
    (counts exactly, means and SDs to floating-point rounding).
    """
    engine = resolve_engine(engine)
    place, placed_via = _placement(postcodes, design, lookup)
    wards = design["ward"].tolist()
    if periods:
        order = [p[0] for p in periods]
        starts = {lab: a for lab, a, _ in periods}
    else:
        order, starts = [], {}
    state = _StreamState(place, postcodes["postcode"], wards, periods, include_category_b)
    hashes: list[np.ndarray] = []
    special = False
    for f in ppd:
        for first_line, b in _ppd_batches(f, engine, batch_bytes):
            hashes.append(pd.util.hash_array(_objects(b["transaction_id"])))
            status = b["record_status"].fillna("A").str.upper()
            special |= bool((status != "A").any())
            state.add(b, f, first_line)
    h = np.concatenate(hashes) if hashes else np.zeros(0, dtype="uint64")
    n_records = len(h)
    del hashes
    h.sort()
    dup = h[1:][h[1:] == h[:-1]]
    suspects = np.unique(dup)
    del h
    st_rep = {"records_status_D": 0, "transactions_deleted": 0, "records_status_C": 0,
              "superseded_versions_dropped": 0}
    if special or len(suspects):
        # second pass: rows of repeated ids or with status C/D are collected and resolved
        state = _StreamState(place, postcodes["postcode"], wards, periods, include_category_b)
        kept_aside = []
        row0 = 0
        for f in ppd:
            for first_line, b in _ppd_batches(f, engine, batch_bytes):
                price, day = validate_ppd(b, f, first_line)
                b = b.assign(price=price, date=day)
                hb = pd.util.hash_array(_objects(b["transaction_id"]))
                status = b["record_status"].fillna("A").str.upper()
                aside = np.isin(hb, suspects) | (status != "A").to_numpy()
                if aside.any():
                    kept_aside.append(b[aside].assign(_order=row0 + np.flatnonzero(aside),
                                                      _file=str(f),
                                                      _line=first_line + np.flatnonzero(aside)))
                state.add(b[~aside], f, first_line, validated=True)
                row0 += len(b)
        if kept_aside:
            rows = pd.concat(kept_aside, ignore_index=True).sort_values("_order", kind="stable")
            resolved, st_rep = apply_record_status(rows)
            state.add(resolved.drop(columns=["_order", "_file", "_line"]), None, 1,
                      validated=True)
    rep: dict[str, Any] = {"records_read": int(n_records), **st_rep}
    rep.update(state.report(periods))
    rep["placed_via"] = placed_via
    rep["engine"] = engine
    summ = state.summary()
    if not periods:
        order = sorted(set(summ["period_label"]) | state.labels_seen)
        starts = {lab: f"{lab}-01" for lab in order}
    return _finish_price_panel(summ, design, order, starts, post_from, rep)


def _objects(s: pd.Series) -> np.ndarray:
    """A string column as a numpy object array (converted in C by pyarrow when it can)."""
    try:
        # imported here: pyarrow is the optional 'national' extra; loaded only on the streaming path
        import pyarrow as pa

        return np.asarray(pa.array(s, from_pandas=True).to_numpy(zero_copy_only=False),
                          dtype=object)
    except Exception:  # noqa: BLE001 - pyarrow missing or another array type
        return s.to_numpy(dtype=object)


def _index_of(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each value in ``index`` (-1 if absent); C-speed hashing via pyarrow."""
    try:
        # imported here: pyarrow is the optional 'national' extra; loaded only on the streaming path
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:
        return index.get_indexer(values.fillna(""))
    out = pc.index_in(pa.array(values, from_pandas=True),
                      value_set=pa.array(index, from_pandas=True))
    return out.fill_null(-1).to_numpy(zero_copy_only=False).astype("int64")


def _ppd_batches(path, engine, batch_bytes):

    first = True
    for line, b in iter_csv_batches(path, _STREAM_COLUMNS, names=PPD_COLUMNS, engine=engine,
                                    batch_bytes=batch_bytes):
        if first and len(b) and str(b["transaction_id"].iloc[0]).lower().startswith("transaction"):
            raise InputError("Price Paid files have no header; remove the header line or use "
                             "the HMLR file as downloaded", file=path, row=1)
        first = False
        yield line, b


class _StreamState:
    """Running totals of one pass over Price Paid batches."""

    def __init__(self, place: pd.DataFrame, directory: pd.Series, wards: list[str],
                 periods: list[tuple[str, str, str]] | None, include_b: bool) -> None:
        self.include_b = include_b
        self.periods = periods
        self.known = pd.Index(directory.dropna().unique())
        self.unique_place = not place["pc"].duplicated().any()
        self.place = place
        self.place_index = pd.Index(place["pc"]) if self.unique_place else None
        self.ward_pos = {w: i for i, w in enumerate(wards)}
        self.place_ward = place["ward"].map(self.ward_pos).to_numpy(dtype="int64")
        self.wards = wards
        self.labels: list[str] = [p[0] for p in periods] if periods else []
        self.label_pos = {lab: i for i, lab in enumerate(self.labels)}
        self.moments: dict[str, _Moments] = {}
        self.labels_seen: set[str] = set()
        self.dropped_category: Counter = Counter()
        self.outside = 0
        self.without_pc = 0
        self.notfound_pc: set[str] = set()
        self.notfound_raw: set[str] = set()
        self.notfound_sales = 0
        self.in_design = 0

    def _label(self, month: pd.Series) -> pd.Series:
        if self.periods:
            lab = pd.Series(pd.NA, index=month.index, dtype="string")
            for name, a, b in self.periods:
                lab[(month >= a) & (month <= b)] = name
            return lab
        return month.str.slice(0, 4)

    def add(self, b: pd.DataFrame, path, first_line: int, *, validated: bool = False) -> None:
        if not len(b):
            return
        if validated:
            price = b["price"].to_numpy(dtype="int64")
            day = b["date"].astype("string")
        else:
            price, day = validate_ppd(b, path, first_line)
        cat = b["ppd_category"].fillna("").str.upper()
        keep_cat = (cat.isin(["A", "B"]) if self.include_b else cat == "A").to_numpy(dtype=bool)
        for k, v in cat[~keep_cat].value_counts().items():
            self.dropped_category[str(k)] += int(v)
        month = day.str.slice(0, 7)[keep_cat]
        label = self._label(month)
        ok = label.notna().to_numpy(dtype=bool)
        self.outside += int((~ok).sum())
        pcs = normalise_postcode(b["postcode"][keep_cat])[ok]
        price = price[keep_cat][ok]
        label = label[ok]
        self.labels_seen |= set(label.unique())
        no_pc = pcs.isna().to_numpy(dtype=bool)
        self.without_pc += int(no_pc.sum())
        found = _index_of(pcs, self.known) >= 0
        nf = ~found & ~no_pc
        if nf.any():
            self.notfound_sales += int(nf.sum())
            self.notfound_pc |= set(pcs[nf])
            raw = b["postcode"][keep_cat][ok][nf]
            self.notfound_raw |= set(raw.dropna())
        if self.unique_place:
            pos = _index_of(pcs, self.place_index)
            hit = pos >= 0
            ward_idx = self.place_ward[pos[hit]]
            lab = _objects(label)[hit]
            pr = price[hit]
        else:
            m = pd.DataFrame({"pc": _objects(pcs), "lab": _objects(label),
                              "price": price}).merge(self.place, on="pc", how="inner")
            ward_idx = m["ward"].map(self.ward_pos).to_numpy(dtype="int64")
            lab = m["lab"].to_numpy(dtype=object)
            pr = m["price"].to_numpy(dtype="int64")
        self.in_design += len(ward_idx)
        for name in pd.unique(lab):
            sel = lab == name
            mom = self.moments.get(name)
            if mom is None:
                mom = self.moments[name] = _Moments(len(self.wards))
            mom.add(ward_idx[sel], pr[sel])

    def report(self, periods) -> dict[str, Any]:
        rep: dict[str, Any] = {
            "dropped_category": dict(self.dropped_category.most_common()),
        }
        if periods:
            rep["periods"] = [{"label": lab, "first_month": a, "last_month": b}
                              for lab, a, b in periods]
        rep["sales_outside_periods"] = int(self.outside)
        rep["sales_without_postcode"] = int(self.without_pc)
        rep["postcodes_not_found"] = int(len(self.notfound_pc))
        rep["sales_with_postcode_not_found"] = int(self.notfound_sales)
        rep["postcodes_not_found_examples"] = sorted(self.notfound_raw)[:20]
        rep["sales_in_design_wards"] = int(self.in_design)
        return rep

    def summary(self) -> pd.DataFrame:
        recs = []
        for lab, m in self.moments.items():
            for i in np.flatnonzero(m.n):
                n = int(m.n[i])
                recs.append({"ward": self.wards[i], "period_label": lab, "n": n,
                             "mean_price": float(m.sum_price[i]) / n,
                             "mean_log_price": float(m.mean[i]),
                             "sd_log_price": float(np.sqrt(m.m2[i] / (n - 1))) if n > 1 else np.nan})
        out = pd.DataFrame(recs, columns=["ward", "period_label", "n", "mean_price",
                                          "mean_log_price", "sd_log_price"])
        out["n"] = out["n"].astype("Int64")
        return out.sort_values(["ward", "period_label"], ignore_index=True)


def ingest_land_registry(
    ppd: Sequence[str | PathLike[str]] | str | PathLike[str],
    postcodes: str | PathLike[str],
    *,
    lookup: str | PathLike[str] | pd.DataFrame | None = None,
    ward_column: str | None = None,
    ward_lookups: Sequence[str | PathLike[str]] = (),
    design: str | PathLike[str] | pd.DataFrame | None = None,
    periods: str | list[tuple[str, str, str]] | None = None,
    post_from: str | None = None,
    include_category_b: bool = False,
    boundaries: Boundaries = "study",
    engine: Engine | str = "auto",
):
    """Ward x period property-price summaries from HM Land Registry Price Paid files.

    Parameters
    ----------
    ppd
        Price Paid CSV file(s) (no header, 16 columns): yearly files or the complete
        file, read as a stream.
    postcodes
        ONS postcode directory (NSPL/ONSPD CSV).
    lookup
        Place postcodes via their LSOA and this ONS LSOA-to-ward lookup (default: the
        postcode directory's ward column).
    ward_column
        Ward column of the postcode directory (default: the newest ``wdYY``).
    ward_lookups
        Lookups to resolve the study wards when no ``lookup`` is given.
    design
        Wards to keep (file or table); default the report's 58.
    periods
        Windows ``"2007-12:2013-11,2018-12:2024-11"`` (or parsed tuples); default
        calendar years.
    post_from
        ``YYYY-MM``: periods starting in or after it are post (default: all after the first).
    include_category_b
        Also keep PPD category B entries.
    boundaries
        ``"study"`` (default) or ``"lookup"`` areas for the report's wards (with ``lookup``).
    engine
        CSV reader: ``"auto"``, ``"pyarrow"`` or ``"pandas"``.

    Returns
    -------
    IngestResult
        ``kind="panel"``, ``indicator = property_price``.
    """

    files = [ppd] if isinstance(ppd, (str, PathLike)) else list(ppd)
    if isinstance(periods, str) or periods is None:
        periods = parse_periods(periods) if periods else None
    if post_from and not re.fullmatch(r"\d{4}-\d{2}", post_from):
        raise InputError(f"--post-from must be YYYY-MM, not '{post_from}'", column="--post-from")
    pcs, pc_rep = read_postcodes(postcodes, ward_column)
    lk = None
    if lookup is not None:
        geo = resolve_geography(lookup, design, boundaries=boundaries)
        lk, design_df, design_rep = geo.lookup, geo.design, dict(geo.report)
    else:
        if not ward_lookups and design is None:
            raise InputError(
                "give --lookup (LSOA-to-ward lookup) or --ward-lookups/--design so that the "
                "study wards can be matched to the postcode directory's ward codes"
            )
        if ward_lookups:
            geo = resolve_geography(ward_lookups[0], design, boundaries="lookup")
            design_df, design_rep = geo.design, dict(geo.report)
        elif isinstance(design, pd.DataFrame):
            design_df, design_rep = design, {"design": "design table"}
        else:
            design_df = _read_code_design(design)
            design_rep = {"design": str(design)}
    panel, rep = stream_price_panel(
        files, pcs, design_df, periods=periods, lookup=lk,
        include_category_b=include_category_b, post_from=post_from, engine=engine,
    )
    guards = design_rep.pop("guards", []) + rep.pop("guards", [])
    report = {"ppd_files": [str(f) for f in files], **pc_rep, **design_rep, **rep,
              "guards": guards}
    return IngestResult(table=panel, kind="panel", report=report, require_exposure=False)


def _read_code_design(path) -> pd.DataFrame:
    """A design file with ward codes (``ward, group[, pair, ward_name, la]``)."""
    p = Path(path)
    header = read_header(p)
    for c in ("ward", "group"):
        if c not in header:
            raise InputError(f"missing column '{c}' (found {', '.join(header)})", file=p, row=1, column=c)
    cols = [c for c in ("ward", "ward_name", "la", "group", "pair") if c in header]
    df = read_csv_columns(p, cols)
    for c in ("ward_name", "la"):
        if c not in df:
            df[c] = df["ward"]
    df["pair"] = pd.to_numeric(df["pair"]).astype("Int64") if "pair" in df else pd.array([pd.NA] * len(df), dtype="Int64")
    return df[["ward", "ward_name", "la", "group", "pair"]]
