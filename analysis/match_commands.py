"""``nbdid match``: covariate balance of the report's pairs, and matching any table.

``nbdid match --study [--imd FILE] [--lookups DIR] [--out DIR] ...``
    Ward covariates (IMD 2019 ranks, authority type; OAC 2011 and region when their
    files are given) for every English ward and the 58 study wards, the balance of the
    report's 29 published pairs on them, and the benchmark ward the matching engine
    would pick for each NBI ward.  Reads the real extracts in ``../shared/data`` when
    no files are given.
``nbdid match --treated FILE --candidates FILE --covariates a,b [--id-col ward] ...``
    Match the rows of one CSV to those of another and report the balance.

The study computations are pure functions (:func:`study_match`, :func:`general_match`)
returning DataFrames; the handler only reads, prints and writes.
"""

from __future__ import annotations

import argparse
import io
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from nbdid.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from nbdid.analysis.matching import MatchSpec

# kept here (not imported from nbdid.analysis.matching) so that `nbdid --help` does not
# import scipy; tests check that they agree with the engine's
DISTANCES: tuple[str, ...] = ("euclidean", "mahalanobis", "propensity")
METHODS: tuple[str, ...] = ("greedy", "optimal")

STUDY_FILES: tuple[str, ...] = (
    "covariates_study.csv",
    "covariates_all_wards.csv",
    "balance.csv",
    "alternatives.csv",
    "balance.png",
    "balance.svg",
    "notes.txt",
)
GENERAL_FILES: tuple[str, ...] = ("matches.csv", "balance.csv", "balance.png", "balance.svg")

DEFAULT_STUDY_COVARIATES: tuple[str, ...] = (
    "mean_rank",
    "median_rank",
    "share_most_deprived_decile",
    "share_most_deprived_quintile",
)


# ----------------------------------------------------------------------------------------
# pure functions
# ----------------------------------------------------------------------------------------


def _rank_among(dist_row: np.ndarray, allowed: np.ndarray, j: int) -> int:
    """1 + number of allowed candidates strictly nearer than candidate ``j``."""
    return int(1 + np.sum(allowed & (dist_row < dist_row[j] - 1e-12)))


def study_match(
    wards: pd.DataFrame,
    study: pd.DataFrame,
    spec: MatchSpec,
    *,
    balance_covariates: list[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Balance of the published pairs and the engine's alternative benchmarks.

    Parameters
    ----------
    wards
        Covariates of every English ward (:func:`nbdid.data_prep.covariates.ward_covariates`).
    study
        Covariates of the 58 study wards with ``group`` and ``pair``.
    spec
        How the engine matches (its covariates also define the distances reported for
        the published pairs).
    balance_covariates
        Covariates of the balance table (default: those of ``spec`` plus every other
        numeric covariate computed).

    Returns
    -------
    dict
        ``"balance"``: :func:`~nbdid.analysis.matching.balance_table` rows for the
        published pairs and for the engine's matches (column ``matched_by``);
        ``"alternatives"``: one row per NBI ward and engine pick with the published
        benchmark, both distances, the published benchmark's rank by distance among the
        candidates that satisfy the exact constraints (``published_rank`` of
        ``n_allowed_candidates``) and whether it satisfies the exact constraints and the
        caliper (``published_allowed``); ``"treated"``, ``"candidates"``: the tables that were matched.

    Notes
    -----
    Candidates are every English ward that is not (part of) an NBI study ward, plus the
    published benchmark wards as the report defined them (a benchmark that councils have
    since split is the union of its successor wards, so it can be picked as a whole).
    """
    from nbdid.analysis.matching import balance_table, distance_matrix, match_wards

    nbi = study[study["group"] == "nbi"].sort_values("pair", kind="stable").reset_index(drop=True)
    ben = study[study["group"] == "benchmark"].sort_values("pair", kind="stable").reset_index(drop=True)
    nbi_parts = set(nbi["ward"].str.split("+").explode())
    cand = wards[~wards["ward"].isin(nbi_parts)]
    extra = ben[~ben["ward"].isin(cand["ward"])].drop(columns=["group", "pair"])
    cand = pd.concat([cand, extra], ignore_index=True)
    cols = list(spec.covariates)
    bal_cols = list(dict.fromkeys(balance_covariates or
                                  [*cols, *wards.attrs.get("covariates", [])]))
    published = pd.DataFrame({
        "set": nbi["pair"].astype("int64").to_numpy(),
        "treated_ward": nbi["ward"].astype("string").to_numpy(),
        "control_ward": ben.set_index("pair").loc[nbi["pair"], "ward"].astype("string").to_numpy(),
        "rank": 1,
    })
    engine = match_wards(nbi, cand, spec)
    dist, caliper = distance_matrix(nbi, cand, spec)
    # ranks are among the candidates that satisfy the exact constraints (not the caliper)
    allowed = np.ones(dist.shape, dtype=bool)
    for c in spec.exact:
        allowed &= nbi[c].astype(str).to_numpy()[:, None] == cand[c].astype(str).to_numpy()[None, :]
    within = dist <= caliper * (1 + 1e-12)
    pos = {w: j for j, w in enumerate(cand["ward"].astype(str))}
    pub_j = np.array([pos[w] for w in published["control_ward"]])
    published["distance"] = dist[np.arange(len(nbi)), pub_j]
    b_pub = balance_table(nbi, cand, published, bal_cols)
    b_eng = balance_table(nbi, cand, engine, bal_cols)
    balance = pd.concat([b_pub.assign(matched_by="published"), b_eng.assign(matched_by="engine")],
                        ignore_index=True)
    balance = balance[["matched_by", *[c for c in balance.columns if c != "matched_by"]]]
    info = cand.set_index("ward")[["ward_name", "la_name"]]
    rows = []
    eng_by_set = {s: g for s, g in engine.groupby("set")}
    for i, r in nbi.iterrows():
        pj = int(pub_j[i])
        pw = str(published["control_ward"].iloc[i])
        base = {
            "pair": int(r["pair"]),
            "nbi_ward": r["ward"], "nbi_name": r["ward_name"], "nbi_la": r["la_name"],
            "published_ward": pw, "published_name": info.loc[pw, "ward_name"],
            "published_la": info.loc[pw, "la_name"],
            "published_distance": float(dist[i, pj]),
            "published_allowed": bool(allowed[i, pj] and within[i, pj]),
            "published_rank": _rank_among(dist[i], allowed[i], pj),
            "n_allowed_candidates": int(allowed[i].sum()),
        }
        g = eng_by_set.get(int(r["pair"]))
        if g is None:
            rows.append({**base, "engine_rank": pd.NA, "engine_ward": pd.NA, "engine_name": pd.NA,
                         "engine_la": pd.NA, "engine_distance": np.nan, "same_as_published": "unmatched"})
            continue
        for e in g.itertuples():
            ew = str(e.control_ward)
            same = ("yes" if ew == pw else "part" if ew in pw.split("+") or pw in ew.split("+")
                    else "no")
            rows.append({**base, "engine_rank": int(e.rank), "engine_ward": ew,
                         "engine_name": info.loc[ew, "ward_name"], "engine_la": info.loc[ew, "la_name"],
                         "engine_distance": float(e.distance), "same_as_published": same})
    alt = pd.DataFrame(rows)
    alt["engine_rank"] = alt["engine_rank"].astype("Int64")
    alt.attrs["unmatched"] = engine.attrs.get("unmatched", [])
    return {"balance": balance, "alternatives": alt, "treated": nbi, "candidates": cand,
            "published": published, "engine": engine}


def general_match(
    treated: pd.DataFrame, candidates: pd.DataFrame, spec: MatchSpec, *, id_col: str = "ward"
) -> dict[str, pd.DataFrame]:
    """Match any tables: ``{"matches": ..., "balance": ...}``."""
    from nbdid.analysis.matching import balance_table, match_wards

    m = match_wards(treated, candidates, spec, id_col=id_col)
    b = balance_table(treated, candidates, m, list(spec.covariates), id_col=id_col)
    return {"matches": m, "balance": b}


# ----------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------


def read_table(path: str | PathLike[str], id_col: str, numeric: list[str], exact: list[str],
               what: str) -> pd.DataFrame:
    """Read a CSV with an id column, numeric covariates and exact-matching columns.

    Raises :class:`InputError` naming the file, line and column of the first problem.
    """
    from nbdid.data_prep.lookups import read_text

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


def _split(items: list[str] | None) -> list[str]:
    out: list[str] = []
    for it in items or []:
        out += [x.strip() for x in it.split(",") if x.strip()]
    return out


def find_inputs(imd: str | None, lookups: str | None) -> tuple[Path, Path]:
    """IMD file and LSOA-to-ward lookup file: given, or from ``../shared/data``."""
    from nbdid.data_prep.covariates import SHARED_IMD, SHARED_LOOKUP, shared_data_dir
    from nbdid.data_prep.lookups import detect_lookup_layout, read_header

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


# ----------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``match`` sub-command."""
    p = sub.add_parser(
        "match",
        help="covariate balance of the report's matched pairs; match any treated/candidate tables",
        description=(
            "With --study: compute ward covariates (IMD 2019 ranks, authority type; OAC 2011 "
            "composition and region when their files are given) for every English ward and the "
            "report's 58 wards, report the balance of the 29 published pairs and the benchmark the "
            "matching engine would pick for each NBI ward. Reads the real extracts in "
            "../shared/data when --imd/--lookups are not given. Without --study: match the rows of "
            "--treated to those of --candidates on --covariates. See docs/matching.md."
        ),
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--study", action="store_true", help="the report's 29 pairs on real covariates")
    mode.add_argument("--treated", metavar="FILE", help="CSV of treated units (with --candidates)")
    p.add_argument("--candidates", metavar="FILE", help="CSV of candidate controls")
    p.add_argument("--id-col", default="ward", metavar="NAME", help="id column (default: %(default)s)")
    p.add_argument("--imd", metavar="FILE", help="IMD 2019 (ONS IMD lookup or MHCLG File 7)")
    p.add_argument("--lookups", metavar="DIR", help="folder (or file) of LSOA-to-ward lookups")
    p.add_argument("--oac", metavar="FILE", help="ONS '2011 OAC Clusters and Names' CSV")
    p.add_argument("--oa-lookup", metavar="FILE", help="OA11 to ward (or OA11 to LSOA11) lookup, for --oac")
    p.add_argument("--regions", metavar="FILE", help="local authority to region lookup (LADyyCD, RGNyyNM)")
    p.add_argument("--covariates", action="append", metavar="A,B",
                   help="matching covariates, comma-separated (study default: "
                        + ",".join(DEFAULT_STUDY_COVARIATES) + ")")
    p.add_argument("--distance", choices=DISTANCES, default="mahalanobis",
                   help="distance (default: %(default)s)")
    p.add_argument("--method", choices=METHODS, default="greedy", help="default: %(default)s")
    p.add_argument("--ratio", type=int, default=1, metavar="K", help="controls per treated (default 1)")
    p.add_argument("--replace", action="store_true", help="match with replacement")
    p.add_argument("--caliper", type=float, metavar="SD", help="caliper in SDs of the distance")
    p.add_argument("--exact", action="append", metavar="COL",
                   help="columns that must be equal (study: authority_type, region)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: nbdid-results/match)")
    p.add_argument("--force", action="store_true", help="overwrite existing results")
    p.set_defaults(func=run_match)


def _spec(args: argparse.Namespace, default_cov: tuple[str, ...] | None) -> MatchSpec:
    from nbdid.analysis.matching import MatchSpec

    cov = _split(args.covariates) or list(default_cov or ())
    if not cov:
        raise InputError("give --covariates A,B (the numeric columns to match on)")
    if args.ratio < 1:
        raise InputError(f"--ratio must be at least 1, not {args.ratio}")
    return MatchSpec(covariates=tuple(cov), distance=args.distance, ratio=args.ratio,
                     replace=args.replace, caliper=args.caliper, exact=tuple(_split(args.exact)),
                     method=args.method)


def _fmt(x: float, d: int = 2) -> str:
    return "" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{d}f}"


def format_study(res: dict[str, pd.DataFrame], spec: MatchSpec, notes: list[str]) -> str:
    """Text report of :func:`study_match`."""
    b = res["balance"]
    pub = b[b["matched_by"] == "published"].set_index("covariate")
    eng = b[b["matched_by"] == "engine"].set_index("covariate")
    lines = ["Balance of the report's 29 published pairs on ward covariates (real data)",
             f"(SMD = standardised mean difference NBI - benchmark, pooled SD of the NBI wards "
             f"and all {int(b.attrs.get('n_candidates', len(res['candidates'])))} candidate wards; "
             "|SMD| < 0.1 is the usual target)"]
    head = (f"{'covariate':<30}{'NBI':>10}{'all cand.':>11}{'published':>11}{'engine':>10}"
            f"{'SMD all':>9}{'SMD pub':>9}{'SMD eng':>9}{'VR pub':>8}")
    lines += [head, "-" * len(head)]
    for cov, r in pub.iterrows():
        e = eng.loc[cov]
        d = 0 if abs(r["mean_treated"]) >= 100 else 3
        lines.append(
            f"{cov:<30}{_fmt(r['mean_treated'], d):>10}{_fmt(r['mean_control_before'], d):>11}"
            f"{_fmt(r['mean_control_after'], d):>11}{_fmt(e['mean_control_after'], d):>10}"
            f"{_fmt(r['smd_before']):>9}{_fmt(r['smd_after']):>9}{_fmt(e['smd_after']):>9}"
            f"{_fmt(r['var_ratio_after']):>8}")
    alt = res["alternatives"]
    unit = "logit" if spec.distance == "propensity" else "SD"
    lines += ["", f"Benchmark per NBI ward: published vs the engine's pick ({spec.distance} distance "
              f"in {unit} on {', '.join(spec.covariates)}; {spec.method}, 1:{spec.ratio}, "
              f"{'with' if spec.replace else 'without'} replacement"
              + (f", caliper {spec.caliper}" if spec.caliper else "")
              + (f", exact on {', '.join(spec.exact)}" if spec.exact else "") + ")",
              "(rank = the published benchmark's place by distance among the candidates"
              + (" of the same " + ", ".join(spec.exact) if spec.exact else "") + ")"]
    head = f"{'pair':>4}  {'NBI ward':<34}{'published benchmark':<38}{'dist':>6}{'rank':>6}  {'engine pick':<38}{'dist':>6}"
    lines += [head, "-" * len(head)]
    for r in alt.itertuples():
        nb = f"{r.nbi_name} ({r.nbi_la})"[:33]
        pb = f"{r.published_name} ({r.published_la})"[:37]
        ep = ("-" if pd.isna(r.engine_ward) else f"{r.engine_name} ({r.engine_la})")[:35]
        mark = {"yes": " =", "part": " ~"}.get(r.same_as_published, "")
        lines.append(f"{r.pair:>4}  {nb:<34}{pb:<38}{_fmt(r.published_distance):>6}{r.published_rank:>6}  "
                     f"{ep + mark:<38}{_fmt(r.engine_distance):>6}")
    first = alt[alt["engine_rank"].fillna(1) == 1]
    n_same = int((first["same_as_published"] == "yes").sum())
    n_part = int((first["same_as_published"] == "part").sum())
    med = float(np.median(alt.drop_duplicates("pair")["published_rank"]))
    lines += ["", f"The engine's first pick equals the published benchmark for {n_same} of "
              f"{len(first)} NBI wards" + (f" (and is part of it for {n_part})" if n_part else "")
              + f"; median rank of the published benchmarks among the candidates: {med:.0f} of "
              f"{int(alt['n_allowed_candidates'].median())}."]
    if alt.attrs.get("unmatched"):
        lines.append(f"The engine matched {len(first) - len(alt.attrs['unmatched'])} of {len(first)} NBI "
                     "wards (the 'engine' balance columns compare those wards only); unmatched within "
                     "the caliper/exact constraints: "
                     + ", ".join(f"{r.nbi_name} ({r.nbi_la})" for r in
                                 alt[alt["same_as_published"] == "unmatched"].itertuples()))
        n_out = int((~alt.drop_duplicates("pair")["published_allowed"]).sum())
        lines.append(f"{n_out} of the 29 published benchmarks lie outside the caliper/exact constraints.")
    if notes:
        lines += ["", "Not available with these inputs:"] + [f"  - {n}" for n in notes]
    return "\n".join(lines)


def run_match(args: argparse.Namespace) -> int:
    """Handler of ``nbdid match``."""
    if args.study:
        return _run_study(args)
    if not args.candidates:
        raise InputError("--treated needs --candidates FILE")
    if not args.covariates:
        raise InputError("give --covariates A,B (the numeric columns to match on)")
    return _run_general(args)


def _write_plot(balance: pd.DataFrame, out: Path, title: str, labels: tuple[str, ...]) -> None:
    from nbdid.figures.balance import plot_balance
    from nbdid.outputs import write_figure

    fig = plot_balance(balance, labels=labels, title=title)
    for ext in ("png", "svg"):
        write_figure(fig, out / f"balance.{ext}")


def _run_study(args: argparse.Namespace) -> int:
    from nbdid.data_prep.covariates import covariate_columns, study_covariates
    from nbdid.outputs import prepare_out_dir, write_csv, write_text

    if args.treated or args.candidates:
        raise InputError("--study cannot be combined with --treated/--candidates")
    spec = _spec(args, DEFAULT_STUDY_COVARIATES)
    imd, lookup = find_inputs(args.imd, args.lookups)
    out_dir = args.out or "nbdid-results/match"
    # check the output folder before the (seconds-long) covariate computation
    prepare_out_dir(out_dir, STUDY_FILES, force=args.force)
    wards, study = study_covariates(imd, lookup, oac_path=args.oac, oa_lookup_path=args.oa_lookup,
                                    region_path=args.regions)
    covariate_columns(wards, list(spec.covariates))
    for c in spec.exact:
        if c not in wards.columns:
            raise InputError(f"--exact {c}: no such column (use authority_type or region)")
        if wards[c].isna().all():
            why = wards.attrs.get("unavailable", {}).get(c, "not computed")
            raise InputError(f"--exact {c}: {why}")
    res = study_match(wards, study, spec)
    notes = [f"{k}: {v}" for k, v in wards.attrs.get("unavailable", {}).items()]
    report = format_study(res, spec, notes)
    out = prepare_out_dir(out_dir, STUDY_FILES, force=args.force)
    print(report)
    write_csv(study, out / "covariates_study.csv")
    write_csv(wards, out / "covariates_all_wards.csv")
    write_csv(res["balance"], out / "balance.csv")
    write_csv(res["alternatives"], out / "alternatives.csv")
    bal = res["balance"]
    _write_plot(bal, out, "Report's 29 NBI wards: balance of their benchmark wards",
                ("all candidate wards", "published benchmarks", "engine's picks"))
    write_text(
        f"nbdid match --study\nIMD: {imd}\nlookup: {lookup}\nspec: {res['engine'].attrs['spec']}\n\n"
        + report + "\n", out / "notes.txt")
    print(f"\nWrote {', '.join(STUDY_FILES)} to {out}/")
    return 0


def _run_general(args: argparse.Namespace) -> int:
    from nbdid.outputs import prepare_out_dir, write_csv

    spec = _spec(args, None)
    cov, ex = list(spec.covariates), list(spec.exact)
    treated = read_table(args.treated, args.id_col, cov, ex, "treated")
    cands = read_table(args.candidates, args.id_col, cov, ex, "candidates")
    out_dir = args.out or "nbdid-results/match"
    prepare_out_dir(out_dir, GENERAL_FILES, force=args.force)
    res = general_match(treated, cands, spec, id_col=args.id_col)
    m, b = res["matches"], res["balance"]
    out = prepare_out_dir(out_dir, GENERAL_FILES, force=args.force)
    print(f"Matched {m['set'].nunique()} of {len(treated)} treated to {m['control_ward'].nunique()} "
          f"distinct controls ({spec.distance}, {spec.method}, 1:{spec.ratio})")
    if m.attrs["unmatched"]:
        print(f"Unmatched: {', '.join(m.attrs['unmatched'])}")
    print(f"{'covariate':<30}{'treated':>10}{'ctrl before':>12}{'ctrl after':>12}{'SMD before':>11}"
          f"{'SMD after':>10}{'VR after':>9}")
    for r in b.itertuples():
        print(f"{r.covariate:<30}{_fmt(r.mean_treated, 3):>10}{_fmt(r.mean_control_before, 3):>12}"
              f"{_fmt(r.mean_control_after, 3):>12}{_fmt(r.smd_before):>11}{_fmt(r.smd_after):>10}"
              f"{_fmt(r.var_ratio_after):>9}")
    write_csv(m, out / "matches.csv")
    write_csv(b, out / "balance.csv")
    _write_plot(b, out, "Covariate balance", ("before matching", "after matching"))
    print(f"\nWrote {', '.join(GENERAL_FILES)} to {out}/")
    return 0
