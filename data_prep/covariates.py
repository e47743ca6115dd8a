"""Ward covariates for matching: deprivation (IMD 2019), OAC 2011 composition, authority type.

The report chose its benchmark wards "based on the 2019 Indices of Multiple Deprivation
(IMD) and the ONS Output Area Classification (OAC 2011)".  This module rebuilds such
covariates for every English ward of a lookup's vintage and for the study wards, from
public small-area files:

IMD 2019 (LSOA level, :func:`nbdid.data_prep.imd.read_imd`) -> per ward
    ``n_lsoa`` (LSOAs in the ward), ``mean_rank`` and ``median_rank`` of the LSOAs' IMD
    ranks (1 = most deprived of 32,844), ``share_most_deprived_decile`` (LSOAs with rank
    <= 3,284) and ``share_most_deprived_quintile`` (rank <= 6,568, deciles 1-2).  With
    MHCLG's File 7 (scores and mid-2015 population) also ``mean_score``,
    ``pop_weighted_score`` and ``pop_weighted_rank``.
OAC 2011 (Output Area level, ONS *2011 OAC Clusters and Names csv v2*) -> per ward
    ``n_oa`` and ``oac_share_1`` ... ``oac_share_8``: the share of the ward's Output
    Areas in each OAC supergroup (1 Rural Residents ... 8 Hard-Pressed Living), and
    ``oac_modal_supergroup``.  Output Areas are placed in wards through an OA-to-ward
    lookup or an OA-to-LSOA lookup plus the LSOA-to-ward lookup.  The OAC file also
    gives each Output Area's region, so ``region`` is derived from it (the region of
    most of the ward's Output Areas).
Local authority code -> ``authority_type``
    ``E06`` unitary authority, ``E07`` non-metropolitan district, ``E08`` metropolitan
    borough, ``E09`` London borough (ONS GSS code prefixes).
Region
    From the OAC file (above) or a local-authority-to-region lookup (ONS *LAD to
    Region*: ``LADyyCD`` and ``RGNyyCD``/``RGNyyNM``).  Without either, ``region`` is
    empty and ``attrs["unavailable"]["region"]`` says why.

What the shared extracts in ``../shared/data`` allow: the IMD file there is the ONS *IMD
(Dec 2019) Lookup* (ranks only: no scores, no population), so the population-weighted
and score covariates are unavailable; the OAC file there is the first 11 rows of the ONS
file (and there is no OA-to-ward lookup), so OAC composition is unavailable; there is no
LAD-to-region lookup, so region is unavailable.  Authority type is always available.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from nbdid.data_prep.imd import MOST_DEPRIVED_DECILE_MAX_RANK, N_LSOA_ENGLAND, read_imd, ward_imd
from nbdid.data_prep.lookups import (
    detect_lookup_layout,
    read_csv_columns,
    read_header,
    read_lookup,
    read_text,
)
from nbdid.data_prep.wards import design_area_map, study_design
from nbdid.errors import InputError

MOST_DEPRIVED_QUINTILE_MAX_RANK = 6568
"""Deciles 1 and 2 of the IMD 2019: ranks 1..6,568 of 32,844 (MHCLG decile cut-offs)."""

IMD_COVARIATES: tuple[str, ...] = (
    "mean_rank",
    "median_rank",
    "share_most_deprived_decile",
    "share_most_deprived_quintile",
)
"""IMD covariates computable from ranks alone (the shared extract)."""

IMD_SCORE_COVARIATES: tuple[str, ...] = ("mean_score", "pop_weighted_score", "pop_weighted_rank")
"""IMD covariates that need MHCLG's File 7 (scores, population)."""

OAC_SUPERGROUPS: dict[int, str] = {
    1: "Rural Residents",
    2: "Cosmopolitans",
    3: "Ethnicity Central",
    4: "Multicultural Metropolitans",
    5: "Urbanites",
    6: "Suburbanites",
    7: "Constrained City Dwellers",
    8: "Hard-Pressed Living",
}
"""The eight OAC 2011 supergroups (code -> name, as in the ONS file)."""

OAC_COVARIATES: tuple[str, ...] = tuple(f"oac_share_{k}" for k in OAC_SUPERGROUPS)

AUTHORITY_TYPES: dict[str, str] = {
    "E06": "unitary authority",
    "E07": "non-metropolitan district",
    "E08": "metropolitan borough",
    "E09": "London borough",
}
"""GSS code prefix of an English local authority district -> authority type."""

_OAC_COLUMNS = {
    "oa": "Output Area Code",
    "la_code": "Local Authority Code",
    "region_code": "Region/Country Code",
    "region_name": "Region/Country Name",
    "supergroup": "Supergroup Code",
    "supergroup_name": "Supergroup Name",
}


def authority_type(la_code: pd.Series) -> pd.Series:
    """Authority type from local authority codes (``E06`` -> ``"unitary authority"`` ...).

    Codes outside England (``W06`` ...) or unknown prefixes give ``<NA>``.
    """
    prefix = la_code.astype("string").str.upper().str[:3]
    return prefix.map(AUTHORITY_TYPES).astype("string")


# ----------------------------------------------------------------------------------------
# readers
# ----------------------------------------------------------------------------------------


def read_oac(path: str | PathLike[str]) -> pd.DataFrame:
    """Read the ONS *2011 OAC Clusters and Names* CSV.

    Returns
    -------
    pandas.DataFrame
        ``oa, la_code, region_code, region_name, supergroup (int 1..8),
        supergroup_name``; ``attrs["path"]``.
    """
    p = Path(path)
    header = read_header(p)
    low = {h.lower(): h for h in header}
    missing = [v for v in _OAC_COLUMNS.values() if v.lower() not in low]
    if missing:
        raise InputError(
            "not an ONS 2011 OAC 'Clusters and Names' file: missing "
            f"{', '.join(repr(m) for m in missing)} (found {', '.join(header[:12])})",
            file=p, row=1,
        )
    src = {k: low[v.lower()] for k, v in _OAC_COLUMNS.items()}
    df = read_csv_columns(p, list(src.values())).rename(columns={v: k for k, v in src.items()})
    if df.empty:
        raise InputError("the OAC file has a header but no rows", file=p)
    sg = pd.to_numeric(df["supergroup"], errors="coerce")
    bad = sg.isna() | ~sg.isin(list(OAC_SUPERGROUPS))
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(f"supergroup code must be 1..8, got '{df['supergroup'].iloc[i]}'",
                         file=p, row=i + 2, column=src["supergroup"])
    df["supergroup"] = sg.astype("int64")
    df["oa"] = df["oa"].str.upper()
    dup = df["oa"].duplicated()
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        raise InputError(f"Output Area {df['oa'].iloc[i]} listed twice", file=p, row=i + 2,
                         column=src["oa"])
    df.attrs["path"] = str(p)
    return df


def read_oa_lookup(path: str | PathLike[str]) -> pd.DataFrame:
    """Read an ONS Output Area (2011) lookup to wards or to LSOAs.

    Recognises ``OA11CD`` plus either a ward code (``WDyyCD``; the ONS *OA11 to Ward*
    lookups) or ``LSOA11CD`` (the ONS *OA11 to LSOA11 to MSOA11 to LAD11* lookup).

    Returns
    -------
    pandas.DataFrame
        ``oa`` and ``ward`` or ``area`` (the LSOA code); ``attrs["target"]`` is
        ``"ward"`` or ``"lsoa"``.
    """
    p = Path(path)
    header = read_header(p)
    up = {h.upper(): h for h in header}
    if "OA11CD" not in up:
        raise InputError(f"not an Output Area lookup: no OA11CD column (found {', '.join(header[:12])})",
                         file=p, row=1)
    ward_cols = [h for h in header if re.fullmatch(r"WD\d\dCD", h.strip().upper())]
    if ward_cols:
        target, col, name = "ward", ward_cols[0], "ward"
    elif "LSOA11CD" in up:
        target, col, name = "lsoa", up["LSOA11CD"], "area"
    else:
        raise InputError("an Output Area lookup needs a ward code (e.g. WD19CD) or LSOA11CD column "
                         f"(found {', '.join(header[:12])})", file=p, row=1)
    df = read_csv_columns(p, [up["OA11CD"], col]).set_axis(["oa", name], axis=1)
    df = df.dropna().assign(oa=lambda d: d["oa"].str.upper(), **{name: lambda d: d[name].str.upper()})
    df = df.drop_duplicates("oa", ignore_index=True)
    df.attrs["target"] = target
    return df


def read_region_lookup(path: str | PathLike[str]) -> pd.DataFrame:
    """Read an ONS local-authority-to-region lookup: ``la_code, region_code, region_name``."""
    p = Path(path)
    header = read_header(p)
    la = [h for h in header if re.fullmatch(r"(LAD|LTLA)\d\dCD", h.strip().upper())]
    rc = [h for h in header if re.fullmatch(r"RGN\d\dCD", h.strip().upper())]
    rn = [h for h in header if re.fullmatch(r"RGN\d\dNM", h.strip().upper())]
    if not la or not (rc or rn):
        raise InputError("not a local-authority-to-region lookup: expected LADyyCD and RGNyyCD/RGNyyNM "
                         f"(found {', '.join(header[:12])})", file=p, row=1)
    cols = [la[0], rc[0] if rc else rn[0], rn[0] if rn else rc[0]]
    df = read_csv_columns(p, list(dict.fromkeys(cols)))
    out = pd.DataFrame({
        "la_code": df[la[0]].str.upper(),
        "region_code": df[cols[1]],
        "region_name": df[cols[2]],
    })
    return out.dropna(subset=["la_code"]).drop_duplicates("la_code", ignore_index=True)


# ----------------------------------------------------------------------------------------
# covariates
# ----------------------------------------------------------------------------------------


def oac_composition(
    oac: pd.DataFrame,
    oa_map: pd.DataFrame,
    *,
    lookup: pd.DataFrame | None = None,
    area_map: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Share of each ward's Output Areas in the eight OAC supergroups.

    Parameters
    ----------
    oac
        :func:`read_oac` table.
    oa_map
        :func:`read_oa_lookup` table: ``oa, ward`` or ``oa, area`` (LSOA).
    lookup
        LSOA-to-ward lookup (needed when ``oa_map`` goes to LSOAs).
    area_map
        Optional ``area, ward`` (e.g. composite study wards from
        :func:`nbdid.data_prep.wards.design_area_map`); requires an OA-to-LSOA map.

    Returns
    -------
    pandas.DataFrame
        ``ward, n_oa, oac_share_1..oac_share_8, oac_modal_supergroup, region_code,
        region_name`` (region: that of most of the ward's Output Areas).
    """
    if "ward" in oa_map and area_map is None:
        m = oa_map[["oa", "ward"]]
    else:
        if "area" not in oa_map:
            raise InputError("composite (split) wards need an OA-to-LSOA lookup, not an OA-to-ward one")
        amap = area_map if area_map is not None else lookup
        if amap is None:
            raise InputError("an OA-to-LSOA lookup needs the LSOA-to-ward lookup too")
        m = oa_map[["oa", "area"]].merge(amap[["area", "ward"]], on="area")[["oa", "ward"]]
    d = m.merge(oac[["oa", "supergroup", "region_code", "region_name"]], on="oa")
    if d.empty:
        return pd.DataFrame(columns=["ward", "n_oa", *OAC_COVARIATES, "oac_modal_supergroup",
                                     "region_code", "region_name"])
    counts = pd.crosstab(d["ward"], d["supergroup"]).reindex(columns=list(OAC_SUPERGROUPS), fill_value=0)
    n = counts.sum(axis=1)
    shares = counts.div(n, axis=0)
    shares.columns = list(OAC_COVARIATES)
    out = shares.assign(n_oa=n, oac_modal_supergroup=counts.idxmax(axis=1).astype("int64"))
    reg = (d.groupby(["ward", "region_code", "region_name"]).size().rename("k").reset_index()
           .sort_values(["ward", "k", "region_code"], ascending=[True, False, True])
           .drop_duplicates("ward").set_index("ward")[["region_code", "region_name"]])
    out = out.join(reg).reset_index().rename(columns={"index": "ward"})
    return out[["ward", "n_oa", *OAC_COVARIATES, "oac_modal_supergroup", "region_code", "region_name"]]


def ward_covariates(
    imd: pd.DataFrame,
    lookup: pd.DataFrame,
    *,
    design: pd.DataFrame | None = None,
    oac: pd.DataFrame | None = None,
    oa_map: pd.DataFrame | None = None,
    regions: pd.DataFrame | None = None,
    england_only: bool = True,
) -> pd.DataFrame:
    """Covariates of every ward of ``lookup`` (or of a design's wards).

    Parameters
    ----------
    imd
        :func:`nbdid.data_prep.imd.read_imd` table (LSOA ranks, optional scores).
    lookup
        Normalised LSOA-to-ward lookup (:func:`nbdid.data_prep.lookups.read_lookup`).
    design
        Optional design table ``ward, ward_name, la[, group, pair]``, e.g. from
        :func:`nbdid.data_prep.wards.study_design`; composite ids ``A+B`` collect the
        LSOAs of all parts.  Default: every ward of the lookup.
    oac, oa_map
        Optional :func:`read_oac` and :func:`read_oa_lookup` tables for the OAC
        composition and region.
    regions
        Optional :func:`read_region_lookup` table (used when OAC gives no region).
    england_only
        Keep only English wards (IMD 2019 covers England only).

    Returns
    -------
    pandas.DataFrame
        One row per ward: ``ward, ward_name, la_code, la_name, authority_type, region``,
        ``n_lsoa, n_lsoa_with_imd``, :data:`IMD_COVARIATES`, the score covariates
        (NaN without File 7), ``n_oa`` and :data:`OAC_COVARIATES` when OAC is given, and
        the design's ``group``/``pair`` columns.  ``attrs["unavailable"]`` maps each
        covariate family that could not be computed to the reason, and
        ``attrs["covariates"]`` lists the numeric covariates that were computed.
    """
    la_codes = lookup.drop_duplicates("ward").set_index("ward")["la_code"]
    if design is not None:
        amap = design_area_map(lookup, design)
        first_part = design["ward"].str.split("+").str[0]
        base = pd.DataFrame({
            "ward": design["ward"].astype("string"),
            "ward_name": design["ward_name"].astype("string"),
            "la_code": first_part.map(la_codes).astype("string"),
            "la_name": design["la"].astype("string"),
        })
        for extra in ("group", "pair"):
            if extra in design:
                base[extra] = design[extra].to_numpy()
    else:
        amap = lookup[["area", "ward", "ward_name", "la_name"]]
        base = (lookup.drop_duplicates("ward")[["ward", "ward_name", "la_code", "la_name"]]
                .reset_index(drop=True).astype("string"))
    if england_only:
        base = base[base["la_code"].str.upper().str.startswith("E").fillna(False)].reset_index(drop=True)
    table, _ = ward_imd(imd, lookup, area_map=amap)
    q = amap.merge(imd[["area", "rank"]], on="area", how="inner")
    q5 = ((q["rank"] <= MOST_DEPRIVED_QUINTILE_MAX_RANK).astype(float)
          .groupby(q["ward"]).mean().rename("share_most_deprived_quintile"))
    table = table.drop(columns=["ward_name", "la_name"]).drop_duplicates("ward")
    table = table.merge(q5, left_on="ward", right_index=True, how="left")
    out = base.merge(table, on="ward", how="left")
    out["n_lsoa"] = out["n_lsoa"].fillna(0).astype("int64")
    out["n_lsoa_with_imd"] = out["n_lsoa_with_imd"].fillna(0).astype("int64")
    out["authority_type"] = authority_type(out["la_code"])
    unavailable: dict[str, str] = {}
    if imd["score"].isna().all():
        unavailable["imd_score"] = (
            "IMD scores and population are not in the IMD file (the ONS IMD lookup has ranks "
            "only); give MHCLG's File 7 for mean_score, pop_weighted_score, pop_weighted_rank")
    if oac is not None and oa_map is not None:
        comp = oac_composition(oac, oa_map, lookup=lookup,
                               area_map=amap if design is not None else None)
        out = out.merge(comp, on="ward", how="left")
        out["n_oa"] = out["n_oa"].fillna(0).astype("int64")
        out["region"] = out["region_name"].astype("string")
        out = out.drop(columns=["region_code", "region_name"])
        if (out["n_oa"] == 0).all():
            unavailable["oac"] = ("no Output Area of the OAC file falls in these wards (the OAC file "
                                  "is incomplete or the OA lookup does not match it)")
    else:
        why = ("no OAC file given" if oac is None else "no Output Area lookup given") + (
            "; OAC 2011 composition needs the full ONS '2011 OAC Clusters and Names' file and "
            "an OA11-to-ward (or OA11-to-LSOA11) lookup")
        unavailable["oac"] = why
        out["region"] = pd.Series(pd.NA, index=out.index, dtype="string")
    if regions is not None:
        reg = out["la_code"].str.upper().map(regions.set_index("la_code")["region_name"])
        out["region"] = out["region"].fillna(reg.astype("string"))
    if out["region"].isna().all():
        unavailable["region"] = (
            "no region source: give a local-authority-to-region lookup (ONS LAD to Region, "
            "LADyyCD/RGNyyNM) or the full OAC file with an Output Area lookup")
    numeric = ["n_lsoa", *IMD_COVARIATES]
    if "imd_score" not in unavailable:
        numeric += list(IMD_SCORE_COVARIATES)
    if "oac" not in unavailable:
        numeric += ["n_oa", *OAC_COVARIATES]
    front = ["ward", "ward_name", "la_code", "la_name", "authority_type", "region"]
    rest = ["n_lsoa", "n_lsoa_with_imd", *IMD_COVARIATES, *IMD_SCORE_COVARIATES]
    if "n_oa" in out:
        rest += ["n_oa", *OAC_COVARIATES, "oac_modal_supergroup"]
    tail = [c for c in ("group", "pair") if c in out]
    out = out[front + rest + tail]
    out.attrs["unavailable"] = unavailable
    out.attrs["covariates"] = numeric
    out.attrs["decile_1_definition"] = f"rank <= {MOST_DEPRIVED_DECILE_MAX_RANK} of {N_LSOA_ENGLAND}"
    out.attrs["quintile_1_definition"] = f"rank <= {MOST_DEPRIVED_QUINTILE_MAX_RANK} of {N_LSOA_ENGLAND}"
    return out


# ----------------------------------------------------------------------------------------
# the study
# ----------------------------------------------------------------------------------------


def shared_data_dir(start: str | PathLike[str] | None = None) -> Path | None:
    """The ``shared/data`` folder of real extracts, or None.

    Looks in ``<cwd>/../shared/data`` (or ``<start>/../shared/data``) and in the
    package's sibling ``shared/data`` (the repository checked out next to ``shared/``).
    """
    here = Path(start) if start is not None else Path.cwd()
    pkg = Path(__file__).resolve().parents[1]
    for cand in (here.parent / "shared" / "data", pkg.parent / "shared" / "data"):
        if cand.is_dir():
            return cand
    return None


SHARED_IMD = "ons_lookups/IMD_Dec2019_Lookup_England_LSOA11CD_LAD19_IMD19rank.csv"
SHARED_LOOKUP = "ons_lookups/LSOA11_to_WD19_LAD19_Lookup_EW.csv"


def study_covariates(
    imd_path: str | PathLike[str],
    lookup_path: str | PathLike[str],
    *,
    oac_path: str | PathLike[str] | None = None,
    oa_lookup_path: str | PathLike[str] | None = None,
    region_path: str | PathLike[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Covariates of every English ward and of the report's 58 study wards.

    The study wards are resolved to the lookup's vintage by
    :func:`nbdid.data_prep.wards.study_design` (other LSOA lookups in the same folder
    are used to map re-warded wards; split wards become composite ids ``A+B``).

    Returns
    -------
    (wards, study)
        ``wards``: every English ward of the lookup (:func:`ward_covariates`);
        ``study``: the 58 study wards with ``group`` and ``pair``.
    """
    imd = read_imd(imd_path)
    lookup = read_lookup(lookup_path)
    if lookup["level"].iloc[0] != "lsoa":
        raise InputError("ward covariates need an LSOA-level lookup (got MSOA)", file=lookup_path)
    design, resolved = study_design(lookup_path)
    missing = resolved[resolved["ward_code"].isna()]
    if len(missing):
        names = ", ".join(f"{r.ward_name} ({r.la})" for r in missing.itertuples())
        raise InputError(f"study wards not found in the lookups: {names}", file=lookup_path)
    oac = read_oac(oac_path) if oac_path else None
    oa_map = read_oa_lookup(oa_lookup_path) if oa_lookup_path else None
    regions = read_region_lookup(region_path) if region_path else None
    kw = {"oac": oac, "oa_map": oa_map, "regions": regions}
    wards = ward_covariates(imd, lookup, **kw)
    study = ward_covariates(imd, lookup, design=design, **kw)
    study.attrs["resolved"] = resolved[["pair", "group", "ward_name", "la", "ward_code", "method"]].to_dict("list")
    return wards, study


def covariate_columns(table: pd.DataFrame, requested: Sequence[str] | None = None) -> list[str]:
    """Numeric covariates of a :func:`ward_covariates` table (or check ``requested``)."""
    avail = list(table.attrs.get("covariates", [])) or [
        c for c in table.columns if pd.api.types.is_numeric_dtype(table[c]) and c not in ("pair",)
    ]
    if requested is None:
        return avail
    bad = [c for c in requested if c not in table.columns]
    if bad:
        raise InputError(f"unknown covariate(s) {', '.join(bad)}; available: {', '.join(avail)}")
    empty = [c for c in requested if table[c].isna().all()]
    if empty:
        why = "; ".join(f"{k}: {v}" for k, v in table.attrs.get("unavailable", {}).items())
        raise InputError(f"covariate(s) {', '.join(empty)} could not be computed ({why})")
    return list(requested)


__all__ = [
    "AUTHORITY_TYPES",
    "IMD_COVARIATES",
    "IMD_SCORE_COVARIATES",
    "MOST_DEPRIVED_QUINTILE_MAX_RANK",
    "OAC_COVARIATES",
    "OAC_SUPERGROUPS",
    "authority_type",
    "covariate_columns",
    "oac_composition",
    "read_oa_lookup",
    "read_oac",
    "read_region_lookup",
    "shared_data_dir",
    "study_covariates",
    "ward_covariates",
]


def read_match_table(path: str | PathLike[str], id_col: str, numeric: list[str], exact: list[str],
               what: str) -> pd.DataFrame:
    """Read a CSV with an id column, numeric covariates and exact-matching columns.

    Raises :class:`InputError` naming the file, line and column of the first problem.
    """
    p = Path(path)
    text = read_text(p)
    try:
        df = pd.read_csv(io.StringIO(text), dtype="string", keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(f"cannot read the {what} CSV: {str(err).splitlines()[0]}", file=p) from None
    df.columns = [str(c).strip() for c in df.columns]
    if df.empty:
        raise InputError(f"the {what} file has a header but no rows", file=p)
    missing = [c for c in (id_col, *numeric, *exact) if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(repr(c) for c in missing)} "
                         f"(found {', '.join(df.columns[:12])})", file=p, row=1)
    df[id_col] = df[id_col].str.strip()
    for c in numeric:
        s = df[c].str.strip().str.replace(",", "", regex=False)
        v = pd.to_numeric(s, errors="coerce")
        bad = v.isna() | ~np.isfinite(v.astype("float64").fillna(np.nan))
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            got = df[c].iloc[i]
            raise InputError(f"covariate must be a number, got {'an empty cell' if pd.isna(got) else repr(got)}",
                             file=p, row=i + 2, column=c)
        df[c] = v.astype("float64")
    for c in exact:
        if df[c].isna().any():
            i = int(df[c].isna().to_numpy().nonzero()[0][0])
            raise InputError("empty exact-matching value", file=p, row=i + 2, column=c)
    dup = df[id_col].duplicated()
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        raise InputError(f"id {df[id_col].iloc[i]!r} listed twice", file=p, row=i + 2, column=id_col)
    return df


def find_match_inputs(imd: str | None, lookups: str | None) -> tuple[Path, Path]:
    """IMD file and LSOA-to-ward lookup file: given, or from ``../shared/data``."""
    shared = shared_data_dir()
    if imd is None or lookups is None:
        if shared is None:
            pkg = Path(__file__).resolve().parents[1].parent / "shared" / "data"
            raise InputError(
                "give --imd FILE and --lookups DIR (no shared extracts found in "
                f"{Path.cwd().parent / 'shared' / 'data'} or {pkg})")
    imd_path = Path(imd) if imd is not None else shared / SHARED_IMD
    if lookups is None:
        lk = shared / SHARED_LOOKUP
    else:
        lp = Path(lookups)
        if lp.is_file():
            lk = lp
        elif lp.is_dir():
            found = []
            for q in sorted(lp.glob("*.csv")):
                try:
                    lay = detect_lookup_layout(read_header(q), q)
                except InputError:
                    continue
                if lay["level"] == "lsoa":
                    found.append((int(lay["vintage"][2:]), q))
            if not found:
                raise InputError(f"--lookups {lp}: no LSOA-to-ward lookup CSV in this folder")
            lk = max(found)[1]
        else:
            raise InputError(f"--lookups {lp}: no such file or folder")
    if not imd_path.is_file():
        raise InputError(f"--imd {imd_path}: file not found")
    return imd_path, lk
