"""Resolve ward names and local authorities to ONS ward codes of a chosen vintage.

The report names its 58 wards (:func:`nbdid.data_prep.published.study_wards`) as they
were when the programme started; many councils have been re-warded since (Birmingham
2018, Bolsover, Cheshire West and Chester, Rother 2019, Weymouth and Portland merged
into Dorset 2019).  :func:`resolve_study_wards` finds each ward in the lookups:

1. by exact name and local authority in the target vintage (``method = "exact"``);
2. by normalised spelling (case, ``&``/``and``, apostrophes, hyphens, ``St.``/``St``,
   ``Kingston upon Hull, City of``/``Kingston upon Hull``) in the target vintage
   (``"normalised spelling"``);
3. otherwise in another vintage (the nearest in time first), and then mapped to the
   target vintage through the 2011 LSOAs the two wards share -- derived from the
   lookups, not from a hand-typed table: ``"mapped: same area"`` (a pure re-coding or
   renaming), ``"mapped: merged"`` (the old ward is now part of a larger ward) or
   ``"mapped: split"`` (its LSOAs now lie in several successor wards, all listed);
4. ``"not found"`` when no vintage has the name in that local authority.

The local authority is always part of the match: the study has *Harefield* in
Southampton (not Hillingdon), *Northwood* in Knowsley, *St Matthew's* both in Preston
and in Walsall.  Local authorities renamed without boundary change are in
:data:`LA_ALIASES`.

A split ward is represented by one *composite* ward id, its successor codes joined
with ``+`` (e.g. ``E05011111+E05011112``); :func:`design_area_map` turns a design with
such ids into an ``area -> ward`` table for aggregating LSOA-level data.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

import pandas as pd

from nbdid.data_prep.lookups import read_lookup, read_text
from nbdid.errors import InputError

LA_ALIASES: dict[str, str] = {
    # pure renames of a local authority (same area); keys and values are normalised names
    "shepway": "folkestone and hythe",  # renamed 1 April 2018, code E07000112 unchanged
    "kingston upon hull city of": "kingston upon hull",
    "durham": "county durham",
    "bristol city of": "bristol",
    "herefordshire county of": "herefordshire",
}
"""Local authority names that denote the same authority (normalised spelling)."""

WARD_ALIASES: dict[tuple[str, str], str] = {}
"""Pure ward renames ``(la, old name) -> new name`` (normalised).  Empty: the lookups'
shared LSOAs already map every study ward; add entries only for renames that the
LSOA-level lookups cannot see."""

RESOLVED_COLUMNS: tuple[str, ...] = (
    "pair",
    "group",
    "ward_name",
    "la",
    "ward_code",
    "ward_name_matched",
    "vintage",
    "method",
    "note",
    "lsoas",
)

DESIGN_COLUMNS: tuple[str, ...] = ("ward", "ward_name", "la", "group", "pair")


def normalise_name(name: object) -> str:
    """Normalise a ward or authority name for matching.

    Lower case; unicode quotes and dashes folded; apostrophes and full stops dropped;
    ``&`` -> ``and``; hyphens, commas and repeated spaces -> one space.

    Examples
    --------
    >>> normalise_name("St. Matthew’s")
    'st matthews'
    >>> normalise_name("Berwick Hills & Pallister") == normalise_name("Berwick Hills and Pallister")
    True
    """
    if name is None or (isinstance(name, float) and name != name) or name is pd.NA:
        return ""
    s = unicodedata.normalize("NFKC", str(name)).lower()
    s = re.sub(r"[\u2018\u2019\u02bc`´']", "", s)
    s = re.sub(r"[\u2010-\u2015\-_/]", " ", s)
    s = s.replace("&", " and ")
    s = re.sub(r"[.,()]", " ", s)
    return " ".join(s.split())


def normalise_la(name: object) -> str:
    """Normalise a local authority name (also folding :data:`LA_ALIASES`)."""
    s = normalise_name(name)
    s = re.sub(r"^city of ", "", s)
    return LA_ALIASES.get(s, s)


def load_lookups(
    lookup_paths: Mapping[str, str | PathLike[str]] | Sequence[str | PathLike[str]] | pd.DataFrame,
) -> dict[str, pd.DataFrame]:
    """Read ward lookups into ``{vintage: normalised lookup}``.

    Accepts a mapping vintage -> path, a list of paths (vintages detected from the
    headers), or one normalised lookup table.  LSOA-level lookups are preferred over
    MSOA-level ones of the same vintage.
    """
    if isinstance(lookup_paths, pd.DataFrame):
        return {str(lookup_paths["vintage"].iloc[0]): lookup_paths}
    items = (
        list(lookup_paths.items())
        if isinstance(lookup_paths, Mapping)
        else [(None, p) for p in lookup_paths]
    )
    out: dict[str, pd.DataFrame] = {}
    for key, path in items:
        df = path if isinstance(path, pd.DataFrame) else read_lookup(path)
        v = str(df["vintage"].iloc[0])
        if key is not None and str(key).upper() != v:
            raise InputError(f"lookup given as vintage {key} is a {v} lookup", file=path)
        if v in out and out[v]["level"].iloc[0] == "lsoa":
            continue
        out[v] = df
    if not out:
        raise InputError("no ward lookups given")
    return out


def sibling_lookups(path: str | PathLike[str]) -> list[Path]:
    """The lookup ``path`` plus other LSOA-to-ward lookups in the same folder.

    Used to resolve study wards that were re-warded: the ward is found in an older
    vintage and mapped forward.  Files whose header is not a ward lookup are ignored.
    """
    from nbdid.data_prep.lookups import detect_lookup_layout, read_header

    p = Path(path)
    out = [p]
    for q in sorted(p.parent.glob("*.csv")):
        if q.resolve() == p.resolve():
            continue
        try:
            layout = detect_lookup_layout(read_header(q), q)
        except InputError:
            continue
        if layout["level"] == "lsoa":
            out.append(q)
    return out


def _vintage_year(v: str) -> int:
    return int(re.sub(r"\D", "", v) or 0)


def _ward_table(lk: pd.DataFrame) -> pd.DataFrame:
    w = lk.groupby(["ward", "ward_name", "la_name"], dropna=False).size().rename("lsoas")
    w = w.reset_index()
    w["n_name"] = w["ward_name"].map(normalise_name)
    w["n_la"] = w["la_name"].map(normalise_la)
    return w


def _fmt(names: Sequence[str], codes: Sequence[str], counts: Sequence[int]) -> str:
    return ", ".join(f"{n} ({c}, {k} LSOAs)" for n, c, k in zip(names, codes, counts, strict=True))


def resolve_wards(
    wards: pd.DataFrame,
    lookups: Mapping[str, pd.DataFrame],
    vintage: str = "WD19",
) -> pd.DataFrame:
    """Resolve ``ward_name, la`` rows to ward codes of ``vintage``.

    Parameters
    ----------
    wards
        Table with ``ward_name`` and ``la`` (other columns are kept).
    lookups
        ``{vintage: normalised lookup}`` from :func:`load_lookups`.
    vintage
        Target vintage, e.g. ``"WD19"``; must be one of ``lookups``.

    Returns
    -------
    pandas.DataFrame
        ``wards`` plus ``ward_code`` (``;``-separated successor codes for split wards),
        ``ward_name_matched``, ``vintage``, ``method``, ``note``, ``lsoas``.
    """
    vintage = vintage.upper()
    if vintage not in lookups:
        raise InputError(
            f"no {vintage} lookup given (have {', '.join(sorted(lookups)) or 'none'})"
        )
    tables = {v: _ward_table(lk) for v, lk in lookups.items()}
    target_lk = lookups[vintage]
    target = tables[vintage]
    others = sorted(
        (v for v in lookups if v != vintage),
        key=lambda v: (abs(_vintage_year(v) - _vintage_year(vintage)), -_vintage_year(v)),
    )
    rows = []
    for rec in wards.to_dict("records"):
        name, la = rec["ward_name"], rec["la"]
        n_name, n_la = normalise_name(name), normalise_la(la)
        n_name = WARD_ALIASES.get((n_la, n_name), n_name)
        res = {
            "ward_code": pd.NA,
            "ward_name_matched": pd.NA,
            "vintage": vintage,
            "method": "not found",
            "note": "",
            "lsoas": 0,
        }
        hit = target[(target["n_name"] == n_name) & (target["n_la"] == n_la)]
        if len(hit) == 1:
            h = hit.iloc[0]
            exact = h["ward_name"] == name and h["la_name"] == la
            res.update(
                ward_code=h["ward"],
                ward_name_matched=h["ward_name"],
                method="exact" if exact else "normalised spelling",
                note="" if exact else f"matched '{h['ward_name']}' in '{h['la_name']}'",
                lsoas=int(h["lsoas"]),
            )
            res["note"] = _boundary_note(res, h["ward"], n_name, n_la, vintage, tables, lookups)
        elif len(hit) > 1:
            res.update(
                method="ambiguous",
                note="several wards match: " + ", ".join(hit["ward"]),
            )
        else:
            la_known = (target["n_la"] == n_la).any() or any(
                (t["n_la"] == n_la).any() for t in tables.values()
            )
            for v in others:
                t = tables[v]
                old = t[(t["n_name"] == n_name) & (t["n_la"] == n_la)]
                if len(old) != 1:
                    continue
                o = old.iloc[0]
                lsoas = lookups[v].loc[lookups[v]["ward"] == o["ward"], "area"]
                succ = target_lk[target_lk["area"].isin(lsoas)]
                if succ.empty:
                    res.update(
                        method="not found",
                        note=f"found as {o['ward']} in {v} but none of its LSOAs are in the "
                        f"{vintage} lookup",
                    )
                    break
                shares = (
                    succ.groupby(["ward", "ward_name"]).size().sort_values(ascending=False)
                )
                codes = [c for c, _ in shares.index]
                names = [n for _, n in shares.index]
                totals = target.set_index("ward").loc[codes, "lsoas"].astype(int).tolist()
                shared = shares.astype(int).tolist()
                n_old = len(lsoas)
                prefix = f"'{o['ward_name']}' {o['ward']} in {v} ({n_old} LSOAs)"
                if len(codes) == 1:
                    if totals[0] == n_old and shared[0] == n_old:
                        method = "mapped: same area"
                        note = f"{prefix} has the same LSOAs as {names[0]} {codes[0]} in {vintage}"
                    else:
                        method = "mapped: merged"
                        note = (
                            f"{prefix} is part of {names[0]} {codes[0]} in {vintage} "
                            f"({shared[0]} of its {totals[0]} LSOAs)"
                        )
                else:
                    method = "mapped: split"
                    note = (
                        f"{prefix} split into {len(codes)} successor wards in {vintage}: "
                        + "; ".join(
                            f"{n} {c} ({s} of its {t} LSOAs)"
                            for n, c, s, t in zip(names, codes, shared, totals, strict=True)
                        )
                    )
                res.update(
                    ward_code=";".join(codes),
                    ward_name_matched=" + ".join(names),
                    method=method,
                    note=note,
                    lsoas=int(sum(totals)),
                )
                break
            else:
                res["note"] = (
                    f"no ward of that name in {la} in any lookup given"
                    f" ({', '.join(sorted(lookups))})"
                    if la_known
                    else f"local authority '{la}' is in none of the lookups given"
                )
        rows.append({**rec, **res})
    out = pd.DataFrame(rows)
    out["lsoas"] = out["lsoas"].astype("int64")
    return out


def _boundary_note(res, code, n_name, n_la, vintage, tables, lookups) -> str:
    """Add a note when the same-named ward had other LSOAs in another vintage."""
    note = res["note"]
    mine = set(lookups[vintage].loc[lookups[vintage]["ward"] == code, "area"])
    changed = []
    for v, t in sorted(tables.items()):
        if v == vintage:
            continue
        old = t[(t["n_name"] == n_name) & (t["n_la"] == n_la)]
        if len(old) != 1:
            continue
        theirs = set(lookups[v].loc[lookups[v]["ward"] == old.iloc[0]["ward"], "area"])
        if theirs != mine:
            changed.append(
                f"{v} {old.iloc[0]['ward']} ({len(theirs)} LSOAs, {len(mine & theirs)} shared)"
            )
    if changed:
        extra = f"same name, other boundary than in {vintage} ({len(mine)} LSOAs): " + "; ".join(
            changed
        )
        note = f"{note}; {extra}" if note else extra
    return note


def resolve_study_wards(
    lookup_paths: Mapping[str, str | PathLike[str]] | Sequence[str | PathLike[str]],
    vintage: str = "WD19",
    wards: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Resolve the report's 58 study wards (or ``wards``) to codes of ``vintage``.

    Parameters
    ----------
    lookup_paths
        LSOA-to-ward lookups: ``{vintage: path}`` or a list of paths.  Give several
        vintages so that re-warded wards can be found in an older one and mapped.
    vintage
        Target vintage, e.g. ``"WD19"``.
    wards
        ``pair, group, ward_name, la`` table; default
        :func:`nbdid.data_prep.published.study_wards`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RESOLVED_COLUMNS`.
    """
    from nbdid.data_prep.published import study_wards

    lookups = load_lookups(lookup_paths)
    if wards is None:
        wards = study_wards()
    out = resolve_wards(wards, lookups, vintage)
    for c in ("pair", "group"):
        if c not in out:
            out[c] = pd.NA
    out["pair"] = out["pair"].astype("Int64")
    return out[list(RESOLVED_COLUMNS)]


def read_design(
    path: str | PathLike[str],
    lookups: Mapping[str, pd.DataFrame],
    vintage: str | None = None,
) -> pd.DataFrame:
    """Read a user's design file and resolve it to a design table.

    The file has ``group`` (``nbi``/``benchmark``), optional ``pair``, and either
    ``ward`` (ONS codes of the lookup vintage) or ``ward_name`` and ``la``.

    Raises
    ------
    InputError
        Naming file, line and column for unknown groups, codes or ward names.
    """
    p = Path(path)
    import io

    text = read_text(p)
    df = pd.read_csv(io.StringIO(text), dtype="string", keep_default_na=False, na_values=[""])
    df.columns = [c.strip() for c in df.columns]
    if df.empty:
        raise InputError("the design file has a header but no rows", file=p)
    if "group" not in df:
        raise InputError(f"missing column 'group' (found {', '.join(df.columns)})", file=p)
    bad = ~df["group"].str.strip().str.lower().isin(["nbi", "benchmark"]).fillna(False)
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(
            f"group must be 'nbi' or 'benchmark', got '{df['group'].iloc[i]}'",
            file=p,
            row=i + 2,
            column="group",
        )
    df["group"] = df["group"].str.strip().str.lower()
    if "pair" in df:
        try:
            df["pair"] = pd.to_numeric(df["pair"]).astype("Int64")
        except (ValueError, TypeError):
            raise InputError("pair must be whole numbers", file=p, column="pair") from None
    else:
        df["pair"] = pd.array([pd.NA] * len(df), dtype="Int64")
    if vintage is None:
        vintage = max(lookups, key=_vintage_year)
    lk = lookups[vintage.upper()]
    if "ward" in df and df["ward"].notna().all():
        codes = df["ward"].str.strip().str.upper()
        known = lk.drop_duplicates("ward").set_index("ward")
        for i, c in enumerate(codes):
            for part in str(c).replace(";", "+").split("+"):
                if part not in known.index:
                    raise InputError(
                        f"ward code '{part}' is not in the {vintage} lookup",
                        file=p,
                        row=i + 2,
                        column="ward",
                    )
        names = df["ward_name"] if "ward_name" in df else codes.map(
            lambda c: " + ".join(known.loc[x, "ward_name"] for x in c.replace(";", "+").split("+"))
        )
        las = df["la"] if "la" in df else codes.map(
            lambda c: known.loc[c.replace(";", "+").split("+")[0], "la_name"]
        )
        out = pd.DataFrame(
            {"ward": codes.str.replace(";", "+"), "ward_name": names, "la": las,
             "group": df["group"], "pair": df["pair"]}
        )
        return out[list(DESIGN_COLUMNS)]
    for c in ("ward_name", "la"):
        if c not in df:
            raise InputError(
                f"missing column '{c}' (a design needs 'ward' codes or 'ward_name' and 'la'; "
                f"found {', '.join(df.columns)})",
                file=p,
            )
    res = resolve_wards(df, lookups, vintage)
    bad = res["ward_code"].isna()
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(
            f"unknown ward '{res['ward_name'].iloc[i]}' in '{res['la'].iloc[i]}' "
            f"({res['note'].iloc[i]})",
            file=p,
            row=i + 2,
            column="ward_name",
        )
    return _design_from_resolved(res)


def _design_from_resolved(res: pd.DataFrame) -> pd.DataFrame:
    ok = res[res["ward_code"].notna()]
    out = pd.DataFrame(
        {
            "ward": ok["ward_code"].str.replace(";", "+"),
            "ward_name": ok["ward_name"],
            "la": ok["la"],
            "group": ok["group"],
            "pair": ok["pair"].astype("Int64"),
        }
    )
    return out.reset_index(drop=True)


def study_design(
    lookup: str | PathLike[str] | Sequence[str | PathLike[str]] | Mapping | pd.DataFrame,
    vintage: str | None = None,
    *,
    wards: pd.DataFrame | None = None,
    with_siblings: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Design table ``ward, ward_name, la, group, pair`` of the resolved study wards.

    Parameters
    ----------
    lookup
        One lookup file (its sibling LSOA lookups in the same folder are used too when
        ``with_siblings``), a list/mapping of lookups, or a normalised lookup table.
    vintage
        Target vintage; default the vintage of ``lookup`` (or the latest given).
    wards
        Wards to resolve; default the report's 58.
    with_siblings
        Also use the other LSOA-to-ward lookups in the folder of ``lookup``.

    Returns
    -------
    (design, resolved)
        ``design`` has one row per resolved ward (split wards as composite ids
        ``code1+code2``); ``resolved`` is the full :func:`resolve_wards` table
        including wards not found.
    """
    from nbdid.data_prep.published import study_wards

    if isinstance(lookup, (str, PathLike)):
        first = read_lookup(lookup)
        paths: list = [first]
        if with_siblings:
            paths += [q for q in sibling_lookups(lookup)[1:]]
        lookups = load_lookups(paths)
        vintage = vintage or str(first["vintage"].iloc[0])
        lookups[str(first["vintage"].iloc[0])] = first
    else:
        lookups = load_lookups(lookup)
    vintage = (vintage or max(lookups, key=_vintage_year)).upper()
    if wards is None:
        wards = study_wards()
    res = resolve_wards(wards, lookups, vintage)
    if "pair" not in res:
        res["pair"] = pd.NA
    if "group" not in res:
        res["group"] = pd.NA
    return _design_from_resolved(res), res


def design_area_map(lookup: pd.DataFrame, design: pd.DataFrame) -> pd.DataFrame:
    """``area, ward, ward_name, la_name`` for the areas of the design's wards.

    Composite ward ids (``A+B``) collect the areas of all their parts.  Raises
    :class:`InputError` when a design ward code is not in the lookup.
    """
    parts = design[["ward", "ward_name", "la"]].assign(
        part=design["ward"].str.split("+")
    ).explode("part")
    missing = sorted(set(parts["part"]) - set(lookup["ward"]))
    if missing:
        raise InputError(
            f"design ward code(s) {', '.join(missing[:5])} are not in the "
            f"{lookup['vintage'].iloc[0]} lookup; use a lookup of the design's vintage"
        )
    m = lookup[["area", "ward"]].rename(columns={"ward": "part"}).merge(parts, on="part")
    return m[["area", "ward", "ward_name", "la"]].rename(columns={"la": "la_name"})
