"""Resolve ward names and local authorities to ONS ward codes of a chosen vintage.

The report names its 58 wards (:func:`nbdid.data_prep.published.study_wards`) as they
were when the programme started; many councils have been re-warded since (Birmingham
2018, Bolsover, Cheshire West and Chester, Rother 2019, Weymouth and Portland merged
into Dorset 2019).  :func:`resolve_study_wards` finds each ward in the lookups:

1. by exact name and local authority in the target vintage (``method = "exact"``) --
   unless the ward's area differs from the study era (:data:`STUDY_VINTAGE`, or any
   other vintage given when that lookup is absent): then ``"same name, area changed"``
   (Nechells keeps its name in 2019 but has 8 of its 21 study-era LSOAs);
2. by normalised spelling (case, ``&``/``and``, apostrophes, hyphens, ``St.``/``St``,
   ``Kingston upon Hull, City of``/``Kingston upon Hull``) in the target vintage
   (``"normalised spelling"``, or ``"normalised spelling, area changed"``);
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

Every loader places small areas in wards through :func:`resolve_geography`: the
report's wards on their **study-era boundaries** by default (``boundaries="study"``:
the WD17 lookup, found in the folder of the lookup given), or on the lookup's own
vintage (``"lookup"``); either way :func:`boundary_changes` reports the wards whose
area differs between the two (9 of the 58 between WD17 and WD19), with the share of
their LSOAs -- and of their people, when LSOA populations are known -- that changed.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from nbdid.data_prep.guards import add_notice
from nbdid.data_prep.lookups import detect_lookup_layout, read_header, read_lookup, read_text
from nbdid.data_prep.published import study_wards
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

STUDY_VINTAGE = "WD17"
"""Ward boundaries of the study era: the vintage the report's ward names belong to.

All 58 names resolve by name in the 2015-2017 lookups (East Folkestone's authority was
then called Shepway); the 2016 and 2017 boundaries of the 58 wards are identical, and
2015 differs only for two Knowsley wards re-warded in May 2016 (Northwood, Page Moss).
From 2018 on, 9 wards change area (Birmingham 2018; Bolsover, Dorset, Dover, Preston,
Blackburn with Darwen, Hull, Newcastle 2018-2019): Nechells, for one, keeps its name
but shrinks from 21 LSOAs to 8."""

Boundaries = Literal["study", "lookup"]
"""Areas of the report's wards: ``"study"`` (:data:`STUDY_VINTAGE`) or ``"lookup"`` (the
vintage of the lookup given)."""


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


_PREPARED: dict[int, tuple[pd.DataFrame, pd.DataFrame, dict[str, frozenset[str]]]] = {}


def _prepared(lk: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, frozenset[str]]]:
    """Ward table and ward -> LSOA sets of a lookup, computed once per lookup table."""
    hit = _PREPARED.get(id(lk))
    if hit is not None and hit[0] is lk:
        return hit[1], hit[2]
    table = _ward_table(lk)
    groups: dict[str, list[str]] = {}
    for w, a in zip(lk["ward"].to_numpy(dtype=object), lk["area"].to_numpy(dtype=object),
                    strict=True):
        groups.setdefault(str(w), []).append(a)
    areas = {k: frozenset(v) for k, v in groups.items()}
    if len(_PREPARED) >= 8:
        _PREPARED.clear()
    _PREPARED[id(lk)] = (lk, table, areas)
    return table, areas


_KEYS: dict[int, tuple[pd.DataFrame, dict[tuple[str, str], list[int]]]] = {}


def _match(table: pd.DataFrame, n_name: str, n_la: str) -> pd.DataFrame:
    """Rows of a ward table with this normalised name and authority (indexed once)."""
    hit = _KEYS.get(id(table))
    if hit is None or hit[0] is not table:
        index: dict[tuple[str, str], list[int]] = {}
        for i, key in enumerate(zip(table["n_name"], table["n_la"], strict=True)):
            index.setdefault(key, []).append(i)
        if len(_KEYS) >= 16:
            _KEYS.clear()
        hit = _KEYS[id(table)] = (table, index)
    return table.iloc[hit[1].get((n_name, n_la), [])]


def _ward_areas(lk: pd.DataFrame, code: object) -> frozenset[str]:
    return _prepared(lk)[1].get(str(code), frozenset())


def _ward_table(lk: pd.DataFrame) -> pd.DataFrame:
    w = lk.groupby(["ward", "ward_name", "la_name"], dropna=False).size().rename("lsoas")
    w = w.reset_index()
    w.attrs = {}  # no per-slice copies of the lookup's metadata
    names = {n: normalise_name(n) for n in w["ward_name"].dropna().unique()}
    las = {n: normalise_la(n) for n in w["la_name"].dropna().unique()}
    w["n_name"] = [names.get(n, "") if isinstance(n, str) else "" for n in w["ward_name"]]
    w["n_la"] = [las.get(n, "") if isinstance(n, str) else "" for n in w["la_name"]]
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
    tables = {v: _prepared(lk)[0] for v, lk in lookups.items()}
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
        hit = _match(target, n_name, n_la)
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
            res["note"], changed = _boundary_note(res, h["ward"], n_name, n_la, vintage, tables,
                                                  lookups)
            if changed:
                res["method"] = ("same name, area changed" if exact
                                 else "normalised spelling, area changed")
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
                old = _match(t, n_name, n_la)
                if len(old) != 1:
                    continue
                o = old.iloc[0]
                lsoas = list(_ward_areas(lookups[v], o["ward"]))
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


def _boundary_note(res, code, n_name, n_la, vintage, tables, lookups) -> tuple[str, bool]:
    """Note other boundaries of the same-named ward; say whether its area changed.

    The area counts as changed when it differs from the study era
    (:data:`STUDY_VINTAGE`, when that lookup is given and is not the target) or, without
    a study-era lookup, from any other vintage given.  A ward of the target vintage is
    never reported as an ``exact`` match when its area changed.
    """
    note = res["note"]
    mine = set(_ward_areas(lookups[vintage], code))
    changed = []
    differs_from_reference = False
    reference = [STUDY_VINTAGE] if STUDY_VINTAGE in tables else list(tables)
    for v, t in sorted(tables.items()):
        if v == vintage:
            continue
        old = _match(t, n_name, n_la)
        if len(old) != 1:
            continue
        theirs = set(_ward_areas(lookups[v], old.iloc[0]["ward"]))
        if theirs != mine:
            changed.append(
                f"{v} {old.iloc[0]['ward']} ({len(theirs)} LSOAs, {len(mine & theirs)} shared)"
            )
            if v in reference and vintage != STUDY_VINTAGE:
                differs_from_reference = True
    if changed:
        extra = f"same name, other boundary than in {vintage} ({len(mine)} LSOAs): " + "; ".join(
            changed
        )
        note = f"{note}; {extra}" if note else extra
    return note, differs_from_reference


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


# ----------------------------------------------------------------------------------------
# boundary changes between vintages, and the geography every loader uses
# ----------------------------------------------------------------------------------------


def _areas_of(lookup: pd.DataFrame, code: object) -> frozenset[str]:
    if code is None or code is pd.NA or (isinstance(code, float) and code != code):
        return frozenset()
    parts = str(code).replace(";", "+").split("+")
    return frozenset().union(*(_ward_areas(lookup, c) for c in parts))


def boundary_changes(
    lookups: Mapping[str, pd.DataFrame],
    wards: pd.DataFrame,
    from_vintage: str,
    to_vintage: str,
    *,
    lsoa_population: pd.Series | None = None,
) -> pd.DataFrame:
    """Per ward, how much of its area changed between two boundary vintages.

    Parameters
    ----------
    lookups
        ``{vintage: normalised LSOA lookup}`` holding both vintages.
    wards
        ``ward_name, la`` (plus ``pair``, ``group``), e.g. the report's 58.
    from_vintage, to_vintage
        E.g. ``"WD17"`` (study era) and ``"WD19"``.
    lsoa_population
        Optional population per LSOA code, to weigh the change by people.

    Returns
    -------
    pandas.DataFrame
        ``ward_name, la, code_from, code_to, method_to, lsoas_from, lsoas_to,
        lsoas_shared, share_lsoas_changed`` and, with ``lsoa_population``,
        ``population_from, population_to, share_population_changed``.  A share is the
        part of the union of both areas that lies in only one of them (0 = same area,
        1 = nothing shared).
    """
    a = resolve_wards(wards, lookups, from_vintage)
    b = resolve_wards(wards, lookups, to_vintage)
    pop = None
    if lsoa_population is not None:
        pop = lsoa_population.copy()
        pop.index = pop.index.astype("string").str.upper()
    rows = []
    for (_, ra), (_, rb) in zip(a.iterrows(), b.iterrows(), strict=True):
        sa = _areas_of(lookups[from_vintage], ra["ward_code"])
        sb = _areas_of(lookups[to_vintage], rb["ward_code"])
        union = sa | sb
        rec = {
            "ward_name": ra["ward_name"], "la": ra["la"],
            "code_from": ra["ward_code"], "code_to": rb["ward_code"], "method_to": rb["method"],
            "lsoas_from": len(sa), "lsoas_to": len(sb), "lsoas_shared": len(sa & sb),
            "share_lsoas_changed": (len(union - (sa & sb)) / len(union)) if union else 0.0,
        }
        if pop is not None:
            pa_ = float(pop.reindex(list(sa)).sum())
            pb_ = float(pop.reindex(list(sb)).sum())
            pu = float(pop.reindex(list(union)).sum())
            ps = float(pop.reindex(list(sa & sb)).sum())
            rec.update(population_from=pa_, population_to=pb_,
                       share_population_changed=(pu - ps) / pu if pu else 0.0)
        rows.append(rec)
    return pd.DataFrame(rows)


def _change_lines(changes: pd.DataFrame, from_v: str, to_v: str) -> list[str]:
    out = []
    for r in changes[changes["share_lsoas_changed"] > 0].itertuples(index=False):
        pop = ""
        if hasattr(r, "share_population_changed"):
            pop = f", {r.share_population_changed:.0%} of the population"
        out.append(f"{r.ward_name} ({r.la}): {r.lsoas_from} LSOAs in {from_v}, {r.lsoas_to} in "
                   f"{to_v}, {r.lsoas_shared} shared ({r.share_lsoas_changed:.0%} of the area's "
                   f"LSOAs changed{pop})")
    return out


@dataclass(frozen=True)
class Geography:
    """The wards a loader builds rows for, and the lookup that places small areas in them.

    Attributes
    ----------
    design
        ``ward, ward_name, la, group, pair`` (composite ids ``A+B`` for split wards).
    lookup
        Normalised LSOA (or MSOA) lookup of the design's ward codes.
    report
        Provenance: how the wards were resolved, boundary changes, guard notices.
    """

    design: pd.DataFrame
    lookup: pd.DataFrame
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def vintage(self) -> str:
        """Ward vintage of the design's codes, e.g. ``"WD17"``."""
        return str(self.lookup["vintage"].iloc[0])

    def area_map(self) -> pd.DataFrame:
        """``area, ward, ward_name, la_name`` of the design's wards (:func:`design_area_map`)."""
        return design_area_map(self.lookup, self.design)


def _lookups_with_siblings(lookup: str | PathLike[str] | pd.DataFrame) -> tuple[
        pd.DataFrame, dict[str, pd.DataFrame]]:
    if isinstance(lookup, pd.DataFrame):
        return lookup, {str(lookup["vintage"].iloc[0]): lookup}
    first = read_lookup(lookup)
    lookups = load_lookups([first, *sibling_lookups(lookup)[1:]])
    lookups[str(first["vintage"].iloc[0])] = first
    return first, lookups


def resolve_geography(
    lookup: str | PathLike[str] | pd.DataFrame,
    design: str | PathLike[str] | pd.DataFrame | None = None,
    *,
    boundaries: Boundaries = "study",
    lookups: Mapping[str, pd.DataFrame] | None = None,
    lsoa_population: pd.Series | None = None,
) -> Geography:
    """The wards to build and how small areas are placed in them.

    Parameters
    ----------
    lookup
        ONS LSOA/MSOA-to-ward lookup (path: the other LSOA lookups in its folder are
        used too), or a normalised lookup table.
    design
        ``None``: the report's 58 wards; a design file (``group``, ``pair`` and ward
        codes or ``ward_name`` + ``la``, resolved in the lookup's vintage); or a design
        table ``ward, ward_name, la, group, pair`` in the lookup's vintage.
    boundaries
        For the report's wards: ``"study"`` (default) uses the study-era areas
        (:data:`STUDY_VINTAGE`, whose lookup must be in the folder); ``"lookup"`` uses
        the lookup's vintage, mapping re-warded wards (split wards become ``A+B``).
        Either way the wards whose area differs between the two are reported.
    lookups
        Extra ``{vintage: lookup}`` tables (default: the folder's siblings).
    lsoa_population
        Optional population per LSOA to report the population share that changed.

    Raises
    ------
    InputError
        When the study-era lookup is needed but missing (with the fix), or a design
        ward cannot be found.
    """
    first, lks = _lookups_with_siblings(lookup)
    if lookups:
        lks = {**lks, **{k.upper(): v for k, v in lookups.items()}}
    vintage = str(first["vintage"].iloc[0])
    lookup_name = str(lookup) if not isinstance(lookup, pd.DataFrame) else f"{vintage} lookup"
    if design is not None:
        if isinstance(design, pd.DataFrame):
            d = design.copy()
            for c in ("ward_name", "la"):
                if c not in d:
                    d[c] = d["ward"]
            if "pair" not in d:
                d["pair"] = pd.array([pd.NA] * len(d), dtype="Int64")
            d = d[list(DESIGN_COLUMNS)]
            design_area_map(first, d)  # raises for codes not in the lookup
            return Geography(d.reset_index(drop=True), first,
                             {"design": "design table", "design_wards": int(len(d))})
        d = read_design(design, lks, vintage)
        return Geography(d, first, {"design": str(design), "design_wards": int(len(d))})
    if boundaries not in ("study", "lookup"):
        raise InputError(f"boundaries must be 'study' or 'lookup', not '{boundaries}'")

    wards = study_wards()
    target = STUDY_VINTAGE if boundaries == "study" else vintage
    if target not in lks or lks[target]["level"].iloc[0] != "lsoa":
        raise InputError(
            f"the report's wards are built on their study-era boundaries ({STUDY_VINTAGE}), "
            f"which needs the ONS 'LSOA (2011) to Ward (2017) Lookup in England and Wales' in "
            f"the folder of {lookup_name} (have {', '.join(sorted(lks))}); add it, or pass "
            f"--boundaries lookup to use the {vintage} boundaries of the lookup instead"
        )
    res = resolve_wards(wards, lks, target)
    design_df = _design_from_resolved(res)
    area_lookup = lks[target]
    rep: dict[str, Any] = {
        "design": f"the report's 58 study wards on {target} boundaries"
                  + (" (study era)" if target == STUDY_VINTAGE else " (the lookup's vintage)"),
        "boundaries": boundaries,
        "design_vintage": target,
        "ward_lookups_used": sorted(lks),
        "ward_resolution": {str(k): int(v) for k, v in res["method"].value_counts().items()},
        "wards_not_resolved": [
            f"{r.ward_name} ({r.la}): {r.note}" for r in res[res["ward_code"].isna()].itertuples(index=False)
        ],
        "wards_mapped": [
            f"{r.ward_name} ({r.la}) -> {r.ward_code}: {r.method}; {r.note}"
            for r in res[res["method"].str.startswith("mapped")].itertuples(index=False)
        ],
    }
    study_ok = STUDY_VINTAGE in lks and lks[STUDY_VINTAGE]["level"].iloc[0] == "lsoa"
    if vintage != STUDY_VINTAGE and study_ok:
        ch = boundary_changes(lks, wards, STUDY_VINTAGE, vintage, lsoa_population=lsoa_population)
        lines = _change_lines(ch, STUDY_VINTAGE, vintage)
        rep["boundary_changes"] = {
            "from": STUDY_VINTAGE, "to": vintage,
            "wards_changed": len(lines), "wards": lines,
            "definition": "share changed = part of the union of both areas' LSOAs (or "
                          "people) that lies in only one of them",
        }
        if lines:
            used = ("the panel uses the study-era areas" if target == STUDY_VINTAGE
                    else f"the panel uses the {target} areas")
            add_notice(rep, "ward boundaries",
                       f"{len(lines)} of {len(wards)} study wards have another area in {vintage} "
                       f"than in the study era ({STUDY_VINTAGE}); {used}: " + "; ".join(lines))
    elif not study_ok:
        add_notice(rep, "ward boundaries",
                   f"the study-era lookup ({STUDY_VINTAGE}) is not in the folder of "
                   f"{lookup_name}: cannot tell which study wards changed area in {target}")
    return Geography(design_df, area_lookup, rep)
