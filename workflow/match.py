"""``nbdid match``: covariate balance of the report's pairs, and matching any table.

:func:`match_study` computes ward covariates (IMD 2019 ranks, authority type; OAC 2011
and region when their files are given) for every English ward and the 58 study wards,
the balance of the report's 29 published pairs on them, and the benchmark ward the
matching engine would pick for each NBI ward.  :func:`match` matches the rows of any
two tables.  Both return result objects whose ``save`` writes the files of
``nbdid match``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from nbdid.analysis.matching import (
    DEFAULT_STUDY_COVARIATES,
    MatchSpec,
    general_match,
    study_match,
)
from nbdid.data_prep.covariates import (
    covariate_columns,
    find_match_inputs,
    read_match_table,
    study_covariates,
)
from nbdid.errors import InputError
from nbdid.figures import plot_balance, save_figure
from nbdid.figures.style import FORMATS
from nbdid.outputs import prepare_out_dir, write_csv, write_text

STUDY_FILES: tuple[str, ...] = (
    "covariates_study.csv",
    "covariates_all_wards.csv",
    "balance.csv",
    "alternatives.csv",
    *(f"balance.{ext}" for ext in FORMATS),
    "notes.txt",
)
"""Files :meth:`StudyMatchResult.save` writes."""

GENERAL_FILES: tuple[str, ...] = ("matches.csv", "balance.csv", *(f"balance.{ext}" for ext in FORMATS))
"""Files :meth:`MatchResult.save` writes."""


@dataclass
class StudyMatchResult:
    """The balance of the report's published pairs and the engine's alternatives.

    Attributes
    ----------
    wards, study
        Covariates of every English ward and of the 58 study wards.
    spec
        How the engine matched.
    tables
        :func:`nbdid.analysis.matching.study_match` output (``balance``,
        ``alternatives``, ...).
    imd, lookup
        The input files used.
    notes
        Covariates that could not be computed with these inputs, and why.
    """

    wards: pd.DataFrame
    study: pd.DataFrame
    spec: MatchSpec
    tables: dict[str, pd.DataFrame]
    imd: Path
    lookup: Path
    notes: list[str] = field(default_factory=list)

    @property
    def balance(self) -> pd.DataFrame:
        """Balance of the published pairs and of the engine's matches."""
        return self.tables["balance"]

    @property
    def alternatives(self) -> pd.DataFrame:
        """Per NBI ward: the published benchmark beside the engine's pick."""
        return self.tables["alternatives"]

    def figure(self) -> Figure:
        """Standardised mean differences before and after matching."""
        return plot_balance(self.balance, title="Report's 29 NBI wards: balance of their benchmark wards",
                            labels=("all candidate wards", "published benchmarks", "engine's picks"))

    def text(self) -> str:
        """The readable report (printed by ``nbdid match --study`` and saved as ``notes.txt``)."""
        return format_study(self.tables, self.spec, self.notes)

    def save(self, out: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write :data:`STUDY_FILES` into ``out``."""
        folder = prepare_out_dir(out, STUDY_FILES, force=force)
        write_csv(self.study, folder / "covariates_study.csv")
        write_csv(self.wards, folder / "covariates_all_wards.csv")
        write_csv(self.balance, folder / "balance.csv")
        write_csv(self.alternatives, folder / "alternatives.csv")
        save_figure(self.figure(), folder / "balance")
        write_text(
            f"nbdid match --study\nIMD: {self.imd}\nlookup: {self.lookup}\n"
            f"spec: {self.tables['engine'].attrs['spec']}\n\n" + self.text() + "\n",
            folder / "notes.txt")
        return folder


def match_study(
    spec: MatchSpec | None = None,
    *,
    imd: str | os.PathLike[str] | None = None,
    lookups: str | os.PathLike[str] | None = None,
    oac: str | os.PathLike[str] | None = None,
    oa_lookup: str | os.PathLike[str] | None = None,
    regions: str | os.PathLike[str] | None = None,
) -> StudyMatchResult:
    """Covariates of every English ward, the balance of the report's pairs and the
    engine's alternative benchmarks.

    Parameters
    ----------
    spec
        How the engine matches (default: Mahalanobis on the IMD rank covariates).
    imd, lookups
        IMD 2019 file and LSOA-to-ward lookup (file or folder); default: the real
        extracts in ``../shared/data``.
    oac, oa_lookup, regions
        Optional OAC 2011 clusters, OA-to-ward lookup and LA-to-region lookup.
    """
    spec = spec or MatchSpec(covariates=DEFAULT_STUDY_COVARIATES)
    imd_path, lookup = find_match_inputs(None if imd is None else str(imd),
                                         None if lookups is None else str(lookups))
    wards, study = study_covariates(imd_path, lookup, oac_path=oac, oa_lookup_path=oa_lookup,
                                    region_path=regions)
    covariate_columns(wards, list(spec.covariates))
    for c in spec.exact:
        if c not in wards.columns:
            raise InputError(f"--exact {c}: no such column (use authority_type or region)")
        if wards[c].isna().all():
            why = wards.attrs.get("unavailable", {}).get(c, "not computed")
            raise InputError(f"--exact {c}: {why}")
    tables = study_match(wards, study, spec)
    notes = [f"{k}: {v}" for k, v in wards.attrs.get("unavailable", {}).items()]
    return StudyMatchResult(wards, study, spec, tables, Path(imd_path), Path(lookup), notes)


@dataclass
class MatchResult:
    """Matches and balance of two tables (:func:`match`)."""

    treated: pd.DataFrame
    candidates: pd.DataFrame
    spec: MatchSpec
    matches: pd.DataFrame
    balance: pd.DataFrame

    def figure(self) -> Figure:
        """Standardised mean differences before and after matching."""
        return plot_balance(self.balance, labels=("before matching", "after matching"),
                            title="Covariate balance")

    def text(self) -> str:
        """A readable summary of the matching and the balance table."""
        m, b, spec = self.matches, self.balance, self.spec
        lines = [f"Matched {m['set'].nunique()} of {len(self.treated)} treated to "
                 f"{m['control_ward'].nunique()} distinct controls ({spec.distance}, {spec.method}, "
                 f"1:{spec.ratio})"]
        if m.attrs["unmatched"]:
            lines.append(f"Unmatched: {', '.join(m.attrs['unmatched'])}")
        lines.append(f"{'covariate':<30}{'treated':>10}{'ctrl before':>12}{'ctrl after':>12}"
                     f"{'SMD before':>11}{'SMD after':>10}{'VR after':>9}")
        for r in b.itertuples():
            lines.append(f"{r.covariate:<30}{_fmt(r.mean_treated, 3):>10}{_fmt(r.mean_control_before, 3):>12}"
                         f"{_fmt(r.mean_control_after, 3):>12}{_fmt(r.smd_before):>11}{_fmt(r.smd_after):>10}"
                         f"{_fmt(r.var_ratio_after):>9}")
        return "\n".join(lines)

    def save(self, out: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write :data:`GENERAL_FILES` into ``out``."""
        folder = prepare_out_dir(out, GENERAL_FILES, force=force)
        write_csv(self.matches, folder / "matches.csv")
        write_csv(self.balance, folder / "balance.csv")
        save_figure(self.figure(), folder / "balance")
        return folder


def match(
    treated: pd.DataFrame | str | os.PathLike[str],
    candidates: pd.DataFrame | str | os.PathLike[str],
    spec: MatchSpec,
    *,
    id_col: str = "ward",
) -> MatchResult:
    """Match the rows of ``treated`` to those of ``candidates`` on ``spec``'s covariates.

    Tables may be DataFrames or CSV paths (read with
    :func:`nbdid.data_prep.covariates.read_match_table`, which names the file, line and
    column of any bad value).
    """
    cov, ex = list(spec.covariates), list(spec.exact)
    if not isinstance(treated, pd.DataFrame):
        treated = read_match_table(treated, id_col, cov, ex, "treated")
    if not isinstance(candidates, pd.DataFrame):
        candidates = read_match_table(candidates, id_col, cov, ex, "candidates")
    res = general_match(treated, candidates, spec, id_col=id_col)
    return MatchResult(treated, candidates, spec, res["matches"], res["balance"])


def _fmt(x: float, d: int = 2) -> str:
    return "" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{d}f}"


def format_study(res: dict[str, pd.DataFrame], spec: MatchSpec, notes: list[str]) -> str:
    """Text report of :func:`nbdid.analysis.matching.study_match`."""
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
