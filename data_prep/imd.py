"""English Index of Multiple Deprivation 2019 -> ward covariates.

Python: :func:`ingest_imd`; command line: ``nbdid ingest imd --imd FILE --lookup
LSOA_TO_WARD.csv --out WARD_IMD.csv``.

Reads the IMD 2019 either from the ONS *IMD (Dec 2019) Lookup in England*
(``LSOA11CD, ..., IMD19`` = rank) or from MHCLG's File 7 (*all ranks, deciles and
scores*: ``LSOA code (2011)``, ``Index of Multiple Deprivation (IMD) Score``,
``Index of Multiple Deprivation (IMD) Rank (where 1 is most deprived)``, ``Total
population: mid 2015 (excluding prisoners)``) and summarises it by ward:
``n_lsoa``, ``mean_rank``, population-weighted score and rank when File 7's population
is there, and ``share_most_deprived_decile`` (LSOAs with rank <= 3,284 of 32,844).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Literal

import pandas as pd

from nbdid.data_prep.lookups import read_csv_columns, read_header, read_lookup
from nbdid.data_prep.schema import IngestResult
from nbdid.data_prep.wards import Boundaries, resolve_geography
from nbdid.errors import InputError

N_LSOA_ENGLAND = 32844
MOST_DEPRIVED_DECILE_MAX_RANK = 3284  # decile 1: ranks 1..3284 (MHCLG deciles)

_FILE7 = {
    "area": ("LSOA code (2011)",),
    "rank": ("Index of Multiple Deprivation (IMD) Rank (where 1 is most deprived)",
             "Index of Multiple Deprivation (IMD) Rank"),
    "score": ("Index of Multiple Deprivation (IMD) Score",),
    "population": ("Total population: mid 2015 (excluding prisoners)",),
}


def read_imd(path: str | PathLike[str]) -> pd.DataFrame:
    """Read IMD 2019 ranks (and scores, population when present) by 2011 LSOA.

    Returns
    -------
    pandas.DataFrame
        ``area, rank`` (int64) and ``score``, ``population`` (float; NaN when the
        file does not have them).
    """
    p = Path(path)
    header = read_header(p)
    low = {h.lower(): h for h in header}
    src: dict[str, str] = {}
    if "lsoa11cd" in low and ("imd19" in low or "imd19rank" in low):
        src = {"area": low["lsoa11cd"], "rank": low.get("imd19") or low["imd19rank"]}
    else:
        for key, names in _FILE7.items():
            for n in names:
                if n.lower() in low:
                    src[key] = low[n.lower()]
                    break
        if "area" not in src or "rank" not in src:
            raise InputError(
                "not an IMD 2019 file: expected LSOA11CD and IMD19 (ONS lookup) or 'LSOA code "
                "(2011)' and 'Index of Multiple Deprivation (IMD) Rank (where 1 is most "
                f"deprived)' (File 7); found {', '.join(header[:10])}",
                file=p, row=1,
            )
    df = read_csv_columns(p, list(src.values()))
    df = df.rename(columns={v: k for k, v in src.items()})
    if df.empty:
        raise InputError("the IMD file has a header but no rows", file=p)
    for key in ("rank", "score", "population"):
        if key not in df:
            df[key] = float("nan")
            continue
        val = pd.to_numeric(df[key].str.replace(",", ""), errors="coerce")
        bad = val.isna() | (val < (1 if key == "rank" else 0))
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise InputError(f"{key} must be a number (>= {1 if key == 'rank' else 0}), got "
                             f"'{df[key].iloc[i]}'", file=p, row=i + 2, column=src[key])
        df[key] = val.astype("int64" if key == "rank" else "float64")
    df["area"] = df["area"].str.upper()
    dup = df["area"].duplicated()
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        raise InputError(f"LSOA {df['area'].iloc[i]} listed twice", file=p, row=i + 2, column=src["area"])
    return df[["area", "rank", "score", "population"]]


def ward_imd(
    imd: pd.DataFrame,
    lookup: pd.DataFrame,
    population: pd.DataFrame | None = None,
    *,
    area_map: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Summarise LSOA IMD ranks by ward.

    Parameters
    ----------
    imd
        :func:`read_imd` table.
    lookup
        Normalised LSOA-to-ward lookup.
    population
        Optional ``area, population`` weights (overrides File 7's population).
    area_map
        Optional ``area, ward, ward_name, la_name`` (e.g. a design's composite wards).

    Returns
    -------
    (wards, unmatched)
        ``wards``: ``ward, ward_name, la_name, n_lsoa, n_lsoa_with_imd, mean_rank,
        median_rank, pop_weighted_rank, pop_weighted_score, mean_score,
        share_most_deprived_decile``; ``unmatched``: lookup LSOAs without an IMD value
        (e.g. Welsh LSOAs).
    """
    amap = area_map if area_map is not None else lookup[["area", "ward", "ward_name", "la_name"]]
    d = imd.copy()
    if population is not None:
        d = d.drop(columns="population").merge(population[["area", "population"]], on="area", how="left")
    m = amap.merge(d, on="area", how="left")
    unmatched = m[m["rank"].isna()][["area", "ward", "ward_name", "la_name"]].reset_index(drop=True)
    m = m.assign(
        decile1=(m["rank"] <= MOST_DEPRIVED_DECILE_MAX_RANK).astype(float).where(m["rank"].notna()),
        w=m["population"],
        wr=m["rank"] * m["population"],
        ws=m["score"] * m["population"],
    )
    g = m.groupby(["ward", "ward_name", "la_name"], dropna=False)
    out = g.agg(
        n_lsoa=("area", "size"),
        n_lsoa_with_imd=("rank", "count"),
        mean_rank=("rank", "mean"),
        median_rank=("rank", "median"),
        mean_score=("score", "mean"),
        share_most_deprived_decile=("decile1", "mean"),
        w=("w", lambda s: s.sum(min_count=1)),
        wr=("wr", lambda s: s.sum(min_count=1)),
        ws=("ws", lambda s: s.sum(min_count=1)),
    ).reset_index()
    out["pop_weighted_rank"] = out["wr"] / out["w"]
    out["pop_weighted_score"] = out["ws"] / out["w"]
    cols = ["ward", "ward_name", "la_name", "n_lsoa", "n_lsoa_with_imd", "mean_rank", "median_rank",
            "pop_weighted_rank", "mean_score", "pop_weighted_score", "share_most_deprived_decile"]
    return out[cols], unmatched


def ingest_imd(
    imd: str | PathLike[str],
    lookup: str | PathLike[str] | pd.DataFrame,
    *,
    design: str | PathLike[str] | pd.DataFrame | Literal["all"] | None = None,
    boundaries: Boundaries = "study",
):
    """Ward IMD 2019 covariates (``kind="covariates"``).

    Parameters
    ----------
    imd
        ONS IMD (Dec 2019) lookup or MHCLG File 7 CSV.
    lookup
        ONS LSOA (2011) to ward lookup (path or normalised table).
    design
        Wards to summarise: ``None`` (the report's 58), ``"all"`` (every ward of the
        lookup), a design file or table.
    boundaries
        ``"study"`` (default) or ``"lookup"`` areas for the report's wards.
    """

    table_imd = read_imd(imd)
    lk = lookup if isinstance(lookup, pd.DataFrame) else read_lookup(lookup)
    lookup_name = "lookup table" if isinstance(lookup, pd.DataFrame) else str(lookup)
    if lk["level"].iloc[0] != "lsoa":
        raise InputError("IMD needs an LSOA-level lookup (got MSOA)",
                         file=None if isinstance(lookup, pd.DataFrame) else lookup)
    report: dict = {"imd": str(imd), "lookup": lookup_name, "lsoas_in_imd": int(len(table_imd))}
    if isinstance(design, str) and design == "all":
        table, unmatched = ward_imd(table_imd, lk)
    else:
        geo = resolve_geography(lookup, design, boundaries=boundaries)
        report.update(geo.report)
        lk = geo.lookup
        table, unmatched = ward_imd(table_imd, lk, area_map=geo.area_map())
        table = geo.design.merge(table.drop(columns=["ward_name", "la_name"]), on="ward",
                                 how="left")
        report["wards_without_imd"] = [
            f"{r.ward_name} ({r.la})" for r in table[table["n_lsoa_with_imd"].fillna(0) == 0].itertuples()
        ]
    report["lookup_lsoas_without_imd"] = int(len(unmatched))
    report["imd_lsoas_not_in_lookup"] = int((~table_imd["area"].isin(lk["area"])).sum())
    report["decile_1_definition"] = f"rank <= {MOST_DEPRIVED_DECILE_MAX_RANK} of {N_LSOA_ENGLAND} LSOAs"
    return IngestResult(table=table, kind="covariates", report=report, require_exposure=False)
