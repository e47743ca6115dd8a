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

import argparse
import io
import re
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from nbdid.data_prep.lookups import read_csv_columns, read_header, read_lookup, read_text
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
    return pc.astype("string").str.upper().str.replace(r"\s+", "", regex=True)


def read_ppd(path: str | PathLike[str]) -> pd.DataFrame:
    """Read one Price Paid file (no header, 16 columns) as strings; price as int64.

    Raises
    ------
    InputError
        Wrong number of columns (line named), non-numeric prices or bad dates.
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
    price = pd.to_numeric(df["price"], errors="coerce")
    bad = price.isna() | (price <= 0)
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(f"price must be a positive number, got '{df['price'].iloc[i]}'",
                         file=p, row=i + 1, column="price (column 2)")
    df["price"] = price.astype("int64")
    date = pd.to_datetime(df["date"].str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
    bad = date.isna()
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(f"bad date '{df['date'].iloc[i]}'", file=p, row=i + 1,
                         column="date (column 3)")
    df["date"] = date
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
    from nbdid.data_prep.wards import design_area_map

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
    panel = summ.merge(design, on="ward", how="left")
    pos = {lab: i for i, lab in enumerate([o for o in order if o in set(panel["period_label"])])}
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
            panel["pair"] = pd.array([pd.NA] * len(panel), dtype="Int64")
    panel["indicator"] = INDICATOR
    panel["count"] = pd.array([pd.NA] * len(panel), dtype="Int64")
    panel["exposure"] = float("nan")
    panel["synthetic"] = False
    cols = ["indicator", "ward", "ward_name", "la", "group", "pair", "period", "period_label",
            "post", "count", "exposure", "n", "mean_price", "mean_log_price", "sd_log_price",
            "synthetic"]
    return panel[cols].sort_values(["period", "ward"], ignore_index=True), rep


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``nbdid ingest land-registry``."""
    parser.add_argument("--ppd", required=True, nargs="+", metavar="FILE",
                        help="HM Land Registry Price Paid CSV file(s) (no header, 16 columns)")
    parser.add_argument("--postcodes", required=True, metavar="NSPL.csv",
                        help="ONS postcode directory (NSPL/ONSPD CSV: pcds/pcd, lsoa11, wdYY ...)")
    parser.add_argument("--lookup", metavar="LSOA_TO_WARD.csv",
                        help="place postcodes via their LSOA and this ONS LSOA-to-ward lookup "
                             "(default: the postcode directory's ward column)")
    parser.add_argument("--ward-column", help="ward column of the postcode directory (default: newest wdYY)")
    parser.add_argument("--ward-lookups", nargs="*", metavar="LOOKUP.csv", default=(),
                        help="LSOA-to-ward lookups used to resolve the study wards when no --lookup "
                             "is given (default: none; give the lookup matching the ward column)")
    parser.add_argument("--design", metavar="DESIGN.csv", help="wards to keep (default: the report's 58)")
    parser.add_argument("--periods", metavar="YYYY-MM:YYYY-MM,...",
                        help="period windows, e.g. 2007-12:2013-11,2018-12:2024-11 (default: calendar years)")
    parser.add_argument("--post-from", metavar="YYYY-MM",
                        help="periods starting in or after this month are post=1 (default: all after the first)")
    parser.add_argument("--include-category-b", action="store_true",
                        help="also keep PPD category B (additional price paid) entries")


def run_ingest(args: argparse.Namespace):
    """Run ``nbdid ingest land-registry``; returns an IngestResult (kind ``panel``)."""
    from nbdid.data_prep.police import load_design
    from nbdid.data_prep.schema import IngestResult

    periods = parse_periods(args.periods) if args.periods else None
    if args.post_from and not re.fullmatch(r"\d{4}-\d{2}", args.post_from):
        raise InputError(f"--post-from must be YYYY-MM, not '{args.post_from}'", column="--post-from")
    postcodes, pc_rep = read_postcodes(args.postcodes, args.ward_column)
    lookup = None
    if args.lookup:
        lookup = read_lookup(args.lookup)
        design, design_rep = load_design(args.design, args.lookup, lookup)
    else:
        lookup_paths = list(args.ward_lookups)
        if not lookup_paths and not args.design:
            raise InputError(
                "give --lookup (LSOA-to-ward lookup) or --ward-lookups/--design so that the "
                "study wards can be matched to the postcode directory's ward codes"
            )
        first = read_lookup(lookup_paths[0]) if lookup_paths else None
        if first is not None:
            design, design_rep = load_design(args.design, lookup_paths[0], first)
        else:
            design = _read_code_design(args.design)
            design_rep = {"design": str(args.design)}
    sales = pd.concat([read_ppd(f) for f in args.ppd], ignore_index=True)
    panel, rep = build_price_panel(
        sales, postcodes, design, periods=periods, lookup=lookup,
        include_category_b=args.include_category_b, post_from=args.post_from,
    )
    report = {"ppd_files": [str(f) for f in args.ppd], **pc_rep, **design_rep, **rep}
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
