"""A synthetic pool of candidate benchmark wards, with covariates and outcomes.

Matching choices (which covariates, which distance, a caliper, ...) can only be
varied in a sensitivity sweep when there is a pool of candidate wards with both
covariates and outcome data.  The report publishes neither, so for the synthetic
default this module simulates one:

* the 58 study wards of the default panel (:func:`nbdid.data_prep.synthetic.load_default_panel`)
  with their outcome rows **unchanged** (only the ``pair`` column is emptied; the
  published pairs are kept in the covariate table, so :meth:`CandidatePool.study_panel`
  gives back the default panel exactly), and
* ``n_candidates`` synthetic candidate wards (ids ``SYN-C001`` ...), group
  ``benchmark``, in the study's local authorities.

Every ward has a latent deprivation ``z``.  For the study wards ``z`` is read off
their own period-0 outcomes (the mean of their standardised link-scale values, each
signed so that "more deprived" is positive: more benefits and crime, fewer businesses,
lower prices), rescaled to ``study_mean`` +/- ``study_sd``.  Candidates draw ``z`` from
``Normal(pool_mean, pool_sd)``.  Then, for every ward,

* **covariates** come from ``lsoas_per_ward`` simulated LSOAs whose IMD rank fraction
  is ``Phi(imd_intercept - imd_slope * z + lsoa_sd * e)``: ``mean_rank`` (mean LSOA
  rank of 32,844, 1 = most deprived) and ``share_most_deprived_decile`` (share of LSOAs
  in the most deprived decile, rank <= 3,284), ``authority_type`` and ``region`` of the
  local authority -- the names and categories :mod:`nbdid.data_prep.covariates` uses for
  real data; and ``boundary_changed``;
* **candidate outcomes** follow the relation seen in the default panel: per indicator,
  the period-0 link value (logit / log rate / mean log price) is regressed on ``z``
  over the 58 study wards and the period change on ``z`` over the 29 benchmark wards;
  a candidate gets ``a + b z`` plus a residual of the fitted SD, denominators from a
  randomly chosen study ward ("donor") times a size factor, and binomial / Poisson
  counts (prices: a mean log price with the donor's within-ward SD).

So deprived candidates have higher benefit and crime rates and lower prices, and
matching on the IMD covariates picks benchmarks that resemble the NBI wards.  The
pool's outcome rows are SYNTHETIC (``synthetic = True``).

Study wards in local authorities re-warded between the programme's start and the
2019 ward vintage (see :mod:`nbdid.data_prep.wards`) are flagged ``boundary_changed``
(:data:`REWARDED_LAS`); candidates get the flag at random (``boundary_change_share``).

Examples
--------
>>> from nbdid.data_prep.candidates import load_candidate_pool
>>> pool = load_candidate_pool()
>>> len(pool.covariates) > 300
True
>>> pool.study_panel().equals(__import__("nbdid.data_prep.synthetic",
...     fromlist=["x"]).load_default_panel())
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special, stats

from nbdid.config import CandidatePoolConfig
from nbdid.data_prep.imd import MOST_DEPRIVED_DECILE_MAX_RANK, N_LSOA_ENGLAND
from nbdid.data_prep.schema import COLUMN_NAMES, read_panel, validate_panel
from nbdid.data_prep.synthetic import component_rng, load_default_panel
from nbdid.errors import InputError
from nbdid.families import get_family
from nbdid.registry import INDICATORS

COVARIATE_COLUMNS: tuple[str, ...] = (
    "ward",
    "ward_name",
    "la",
    "region",
    "authority_type",
    "group",
    "published_pair",
    "mean_rank",
    "share_most_deprived_decile",
    "boundary_changed",
    "synthetic",
)
"""Columns of :attr:`CandidatePool.covariates`."""

NUMERIC_COVARIATES: tuple[str, ...] = ("mean_rank", "share_most_deprived_decile")
"""Numeric matching covariates of the synthetic pool."""

CATEGORICAL_COVARIATES: tuple[str, ...] = ("region", "authority_type")
"""Columns usable for exact matching."""

LA_INFO: dict[str, tuple[str, str]] = {
    # local authority -> (region, type) for the study's authorities (as named in the report)
    "Birmingham": ("West Midlands", "metropolitan borough"),
    "Blackburn with Darwen": ("North West", "unitary authority"),
    "Bolsover": ("East Midlands", "non-metropolitan district"),
    "Brent": ("London", "London borough"),
    "Burnley": ("North West", "non-metropolitan district"),
    "Cheshire West and Chester": ("North West", "unitary authority"),
    "Chesterfield": ("East Midlands", "non-metropolitan district"),
    "County Durham": ("North East", "unitary authority"),
    "Dover": ("South East", "non-metropolitan district"),
    "Dudley": ("West Midlands", "metropolitan borough"),
    "Folkestone and Hythe": ("South East", "non-metropolitan district"),
    "Gateshead": ("North East", "metropolitan borough"),
    "Gloucester": ("South West", "non-metropolitan district"),
    "Halton": ("North West", "unitary authority"),
    "Ipswich": ("East of England", "non-metropolitan district"),
    "Kingston upon Hull, City of": ("Yorkshire and The Humber", "unitary authority"),
    "Kirklees": ("Yorkshire and The Humber", "metropolitan borough"),
    "Knowsley": ("North West", "metropolitan borough"),
    "Lancaster": ("North West", "non-metropolitan district"),
    "Leeds": ("Yorkshire and The Humber", "metropolitan borough"),
    "Leicester": ("East Midlands", "unitary authority"),
    "Liverpool": ("North West", "metropolitan borough"),
    "Medway": ("South East", "unitary authority"),
    "Middlesbrough": ("North East", "unitary authority"),
    "Newcastle upon Tyne": ("North East", "metropolitan borough"),
    "Newham": ("London", "London borough"),
    "North Lincolnshire": ("Yorkshire and The Humber", "unitary authority"),
    "Northampton": ("East Midlands", "non-metropolitan district"),
    "Nottingham": ("East Midlands", "unitary authority"),
    "Plymouth": ("South West", "unitary authority"),
    "Portsmouth": ("South East", "unitary authority"),
    "Preston": ("North West", "non-metropolitan district"),
    "Rochdale": ("North West", "metropolitan borough"),
    "Rossendale": ("North West", "non-metropolitan district"),
    "Rother": ("South East", "non-metropolitan district"),
    "Salford": ("North West", "metropolitan borough"),
    "Southampton": ("South East", "unitary authority"),
    "Sunderland": ("North East", "metropolitan borough"),
    "Swale": ("South East", "non-metropolitan district"),
    "Tameside": ("North West", "metropolitan borough"),
    "Telford and Wrekin": ("West Midlands", "unitary authority"),
    "Walsall": ("West Midlands", "metropolitan borough"),
    "Warrington": ("North West", "unitary authority"),
    "Weymouth and Portland": ("South West", "non-metropolitan district"),
    "West Lancashire": ("North West", "non-metropolitan district"),
    "Wirral": ("North West", "metropolitan borough"),
}
"""Region and authority type of each local authority of the study."""

REWARDED_LAS: frozenset[str] = frozenset(
    {"Birmingham", "Bolsover", "Cheshire West and Chester", "Rother", "Weymouth and Portland"}
)
"""Study authorities re-warded before the 2019 ward vintage (documented in
:mod:`nbdid.data_prep.wards`); their study wards are flagged ``boundary_changed``."""


@dataclass(frozen=True)
class CandidatePool:
    """Candidate wards: covariates (one row per ward) and outcome rows (panel schema).

    Attributes
    ----------
    covariates
        :data:`COVARIATE_COLUMNS`: ``group`` is ``nbi`` for the treated wards and
        ``benchmark`` for every possible control; ``published_pair`` is the study's own
        pair number (empty for wards outside the study).
    panel
        Outcome rows of every ward in ``covariates`` (tidy panel schema, ``pair``
        empty).
    synthetic
        Whether the outcome rows are synthetic.
    """

    covariates: pd.DataFrame
    panel: pd.DataFrame
    synthetic: bool

    def study_panel(self) -> pd.DataFrame:
        """The study's own design: the wards with a published pair, ``pair`` filled in.

        On the synthetic default this equals
        :func:`nbdid.data_prep.synthetic.load_default_panel` exactly.
        """
        return panel_with_sets(self.panel, published_sets(self.covariates))

    @property
    def treated(self) -> pd.DataFrame:
        """Covariates of the treated (NBI) wards."""
        return self.covariates[self.covariates["group"] == "nbi"].reset_index(drop=True)

    @property
    def controls(self) -> pd.DataFrame:
        """Covariates of every possible control (group ``benchmark``)."""
        return self.covariates[self.covariates["group"] == "benchmark"].reset_index(drop=True)


def published_sets(covariates: pd.DataFrame) -> pd.DataFrame:
    """The study's own pairs as a matching result (``set, treated_ward, control_ward``).

    ``set`` is the published pair number.
    """
    cov = covariates[covariates["published_pair"].notna()]
    t = cov[cov["group"] == "nbi"][["published_pair", "ward"]].rename(columns={"ward": "treated_ward"})
    c = cov[cov["group"] == "benchmark"][["published_pair", "ward"]].rename(
        columns={"ward": "control_ward"}
    )
    m = t.merge(c, on="published_pair", how="inner").rename(columns={"published_pair": "set"})
    m["set"] = m["set"].astype("int64")
    m["rank"] = 1
    return m.sort_values("set", ignore_index=True)[["set", "treated_ward", "control_ward", "rank"]]


def panel_with_sets(panel: pd.DataFrame, sets: pd.DataFrame) -> pd.DataFrame:
    """Rows of the wards in matched ``sets``, with ``pair`` = the set number.

    ``sets`` has ``set, treated_ward, control_ward`` (one row per control).  A
    control used by several sets (matching with replacement) cannot carry one pair
    number; its rows are kept once with an empty ``pair`` -- such designs are fitted
    without pair effects.  The panel's row order is kept.
    """
    t = sets[["treated_ward", "set"]].drop_duplicates().rename(columns={"treated_ward": "ward"})
    c = sets[["control_ward", "set"]].rename(columns={"control_ward": "ward"})
    both = pd.concat([t, c], ignore_index=True)
    both["ward"] = both["ward"].astype(str)
    uses = both.groupby("ward")["set"].nunique()
    pair_of = both.drop_duplicates("ward").set_index("ward")["set"]
    pair_of = pair_of.where(uses.reindex(pair_of.index) == 1)
    ward = panel["ward"].astype(str)
    out = panel.loc[ward.isin(pair_of.index).to_numpy()].copy()
    out["pair"] = pd.array(out["ward"].astype(str).map(pair_of).to_numpy(), dtype="Int64")
    return out


def _link(rows: pd.DataFrame, family: str) -> np.ndarray:
    """Empirical link-scale value of each row (smoothed for zero counts)."""
    fam = get_family(family)
    return fam.empirical_link({c: rows[c].to_numpy() for c in fam.required if c in rows})


def _wide(panel: pd.DataFrame, key: str, period: int, wards: list[str], col: str) -> np.ndarray:
    sub = panel[(panel["indicator"] == key) & (panel["period"] == period)].set_index("ward")
    return sub[col].reindex(wards).to_numpy()


def study_deprivation(panel: pd.DataFrame, cfg: CandidatePoolConfig) -> pd.Series:
    """Latent deprivation of the study wards, read off their period-0 outcomes.

    The mean over indicators of each ward's standardised period-0 link value, signed
    so that more deprived is positive (``+`` when lower is better, ``-`` otherwise),
    rescaled to mean ``cfg.study_mean`` and SD ``cfg.study_sd``.
    """
    wards = sorted(panel["ward"].astype(str).unique())
    scores = []
    for key, ind in INDICATORS.items():
        rows = panel[(panel["indicator"] == key) & (panel["period"] == 0)].set_index("ward")
        rows = rows.reindex(wards)
        y = _link(rows, ind.family)
        sign = 1.0 if ind.lower_is_better else -1.0
        scores.append(sign * (y - y.mean()) / y.std(ddof=1))
    d = np.mean(scores, axis=0)
    d = (d - d.mean()) / d.std(ddof=1)
    return pd.Series(cfg.study_mean + cfg.study_sd * d, index=wards, name="z")


def _imd_covariates(z: np.ndarray, rng: np.random.Generator, cfg: CandidatePoolConfig):
    probit = cfg.imd_intercept - cfg.imd_slope * z
    e = rng.standard_normal((len(z), cfg.lsoas_per_ward))
    frac = stats.norm.cdf(probit[:, None] + cfg.lsoa_sd * e)
    ranks = np.clip(np.ceil(frac * N_LSOA_ENGLAND), 1, N_LSOA_ENGLAND)
    return ranks.mean(axis=1).round(1), (ranks <= MOST_DEPRIVED_DECILE_MAX_RANK).mean(axis=1).round(4)


def _fit_line(z: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    b, a = np.polyfit(z, y, 1)
    resid = y - (a + b * z)
    return float(a), float(b), float(resid.std(ddof=2))


def _candidate_rows(study: pd.DataFrame, z_study: pd.Series, z: np.ndarray, ids: list[str],
                    cfg: CandidatePoolConfig) -> pd.DataFrame:
    """Outcome rows of the candidates (long panel schema, ``ward`` = candidate id)."""
    n = len(ids)
    wards = list(z_study.index)
    bench = study.drop_duplicates("ward").set_index("ward")["group"].reindex(wards) == "benchmark"
    zs = z_study.to_numpy()
    rng = component_rng(cfg.seed, "donors")
    donor = np.array(wards)[rng.integers(0, len(wards), n)]
    size = np.exp(cfg.size_sd * rng.standard_normal(n))
    frames = []
    for key, ind in INDICATORS.items():
        r = component_rng(cfg.seed, "outcome", key)
        labels = study[study["indicator"] == key].groupby("period")["period_label"].first()
        y = {}
        for period in labels.index:
            rows = study[(study["indicator"] == key) & (study["period"] == period)]
            rows = rows.set_index("ward").reindex(wards)
            y[period] = _link(rows, ind.family)
        a0, b0, s0 = _fit_line(zs, y[0])
        level = a0 + b0 * z + cfg.residual_scale * s0 * r.standard_normal(n)
        for period, label in labels.items():
            if period == 0:
                eta = level
            else:
                ch = y[period] - y[0]
                a1, b1, s1 = _fit_line(zs[bench.to_numpy()], ch[bench.to_numpy()])
                eta = level + a1 + b1 * z + cfg.residual_scale * s1 * r.standard_normal(n)
            row = {"indicator": key, "ward": ids, "period": period, "period_label": str(label),
                   "post": int(period > 0)}
            if not get_family(ind.family).is_count:  # a mean of sales (prices)
                dn = _wide(study, key, period, wards, "n").astype(float)
                dsd = _wide(study, key, period, wards, "sd_log_price").astype(float)
                pos = {w: i for i, w in enumerate(wards)}
                idx = np.array([pos[d] for d in donor])
                ntx = np.maximum(1, np.round(dn[idx] * size)).astype(np.int64)
                sd = dsd[idx]
                sd = np.where(np.isfinite(sd), sd, np.nanmedian(dsd))
                mlp = eta + sd / np.sqrt(ntx) * r.standard_normal(n)
                row.update(n=ntx, mean_log_price=mlp.round(6),
                           mean_price=np.exp(mlp + sd**2 / 2).round(2),
                           sd_log_price=np.where(ntx > 1, sd.round(6), np.nan))
            else:
                de = _wide(study, key, period, wards, "exposure").astype(float)
                pos = {w: i for i, w in enumerate(wards)}
                idx = np.array([pos[d] for d in donor])
                expo = np.maximum(1.0, np.round(de[idx] * size))
                if get_family(ind.family).count_within_exposure:  # people out of trials
                    cnt = r.binomial(expo.astype(np.int64), special.expit(eta))
                else:
                    cnt = r.poisson(expo * np.exp(eta))
                row.update(count=cnt.astype(np.int64), exposure=expo)
            frames.append(pd.DataFrame(row))
    return pd.concat(frames, ignore_index=True)


def generate_candidate_pool(config: CandidatePoolConfig | None = None) -> CandidatePool:
    """Simulate the synthetic candidate pool around the default panel.

    Parameters
    ----------
    config
        Generator settings (default :class:`nbdid.config.CandidatePoolConfig`).

    Returns
    -------
    CandidatePool
        Deterministic for a given config (same seed, same pool, value for value).
    """
    cfg = config or CandidatePoolConfig()
    study = load_default_panel()
    z_study = study_deprivation(study, cfg)
    wards_tab = study.drop_duplicates("ward").set_index("ward")[["ward_name", "la", "group", "pair"]]
    wards_tab = wards_tab.reindex(z_study.index)

    n = cfg.n_candidates
    ids = [f"SYN-C{i:03d}" if n < 1000 else f"SYN-C{i:05d}" for i in range(1, n + 1)]
    rng = component_rng(cfg.seed, "candidates")
    z = cfg.pool_mean + cfg.pool_sd * rng.standard_normal(n)
    las = sorted(LA_INFO)
    la = np.array(las)[rng.integers(0, len(las), n)]
    changed = rng.random(n) < cfg.boundary_change_share

    imd_rng = component_rng(cfg.seed, "imd")
    rank_s, dec_s = _imd_covariates(z_study.to_numpy(), imd_rng, cfg)
    rank_c, dec_c = _imd_covariates(z, imd_rng, cfg)

    study_cov = pd.DataFrame({
        "ward": z_study.index,
        "ward_name": wards_tab["ward_name"].to_numpy(),
        "la": wards_tab["la"].to_numpy(),
        "group": wards_tab["group"].to_numpy(),
        "published_pair": wards_tab["pair"].to_numpy(),
        "mean_rank": rank_s,
        "share_most_deprived_decile": dec_s,
        "boundary_changed": wards_tab["la"].isin(REWARDED_LAS).to_numpy(),
    })
    cand_cov = pd.DataFrame({
        "ward": ids,
        "ward_name": [f"Candidate {i[6:]}" for i in ids],
        "la": la,
        "group": "benchmark",
        "published_pair": pd.NA,
        "mean_rank": rank_c,
        "share_most_deprived_decile": dec_c,
        "boundary_changed": changed,
    })
    cov = pd.concat([study_cov, cand_cov], ignore_index=True)
    cov["region"] = cov["la"].map(lambda x: LA_INFO.get(x, ("unknown", "unknown"))[0])
    cov["authority_type"] = cov["la"].map(lambda x: LA_INFO.get(x, ("unknown", "unknown"))[1])
    cov["published_pair"] = cov["published_pair"].astype("Int64")
    cov["boundary_changed"] = cov["boundary_changed"].astype(bool)
    cov["synthetic"] = True
    cov = _typed_covariates(cov[list(COVARIATE_COLUMNS)])

    cand = _candidate_rows(study, z_study, z, ids, cfg)
    names = cand_cov.set_index("ward")
    cand["ward_name"] = cand["ward"].map(names["ward_name"])
    cand["la"] = cand["ward"].map(names["la"])
    cand["group"] = "benchmark"
    cand["synthetic"] = True
    for col in COLUMN_NAMES:
        if col not in cand.columns:
            cand[col] = np.nan
    cand = validate_panel(cand[list(COLUMN_NAMES)], file="<candidate pool>")
    base = study.copy()
    base["pair"] = pd.array([pd.NA] * len(base), dtype="Int64")
    panel = pd.concat([base, cand.astype(base.dtypes.to_dict())], ignore_index=True)
    return CandidatePool(covariates=cov, panel=panel, synthetic=True)


def _typed_covariates(cov: pd.DataFrame) -> pd.DataFrame:
    out = cov.copy()
    for col in ("ward", "ward_name", "la", "region", "authority_type", "group"):
        out[col] = out[col].astype("string")
    out["published_pair"] = out["published_pair"].astype("Int64")
    for col in NUMERIC_COVARIATES:
        if col in out:
            out[col] = out[col].astype("float64")
    return out.reset_index(drop=True)


@cache
def _default_pool() -> CandidatePool:
    return generate_candidate_pool()


def load_candidate_pool() -> CandidatePool:
    """The synthetic candidate pool with the default settings (cached; copies returned)."""
    p = _default_pool()
    return dataclasses.replace(p, covariates=p.covariates.copy(), panel=p.panel.copy())


def read_candidate_pool(panel_path: str | PathLike[str],
                        covariates_path: str | PathLike[str]) -> CandidatePool:
    """Read a user's candidate pool: a panel CSV and a ward covariate CSV.

    The covariate file has one row per ward with at least ``ward`` and ``group``
    (``nbi`` / ``benchmark``), and optionally ``published_pair`` (the study's own
    pairs), ``boundary_changed`` (true/false) and any covariates.  Every ward of the
    covariate file must have outcome rows in the panel; the panel's ``pair`` column is
    ignored (pairs come from ``published_pair`` or from matching).

    Raises
    ------
    InputError
        Missing columns, duplicate or unknown wards, groups other than nbi/benchmark.
    """
    panel = read_panel(panel_path)
    p = Path(covariates_path)
    if not p.is_file():
        raise InputError("candidate covariate file not found", file=p)
    try:
        cov = pd.read_csv(p, encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError("the covariate file is not UTF-8 text", file=p) from None
    except pd.errors.EmptyDataError:
        raise InputError("the covariate file is empty", file=p) from None
    for col in ("ward", "group"):
        if col not in cov.columns:
            raise InputError(f"the covariate file has no '{col}' column", file=p, column=col)
    cov["ward"] = cov["ward"].astype(str)
    dup = cov["ward"].duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(f"ward '{cov['ward'].iloc[i]}' is listed twice", file=p, row=i + 2,
                         column="ward")
    bad = ~cov["group"].isin(["nbi", "benchmark"])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"group must be nbi or benchmark, not '{cov['group'].iloc[i]}'",
                         file=p, row=i + 2, column="group")
    known = set(panel["ward"].astype(str))
    missing = ~cov["ward"].isin(known)
    if missing.any():
        i = int(np.flatnonzero(missing.to_numpy())[0])
        raise InputError(f"ward '{cov['ward'].iloc[i]}' has no rows in the panel {panel_path}",
                         file=p, row=i + 2, column="ward")
    pg = panel.drop_duplicates("ward").set_index("ward")["group"].astype(str)
    clash = cov["group"].to_numpy() != pg.reindex(cov["ward"]).to_numpy()
    if clash.any():
        i = int(np.flatnonzero(clash)[0])
        raise InputError(f"ward '{cov['ward'].iloc[i]}' is in group '{cov['group'].iloc[i]}' here "
                         f"but '{pg[cov['ward'].iloc[i]]}' in the panel", file=p, row=i + 2,
                         column="group")
    if "published_pair" not in cov.columns:
        cov["published_pair"] = pd.NA
    if "boundary_changed" not in cov.columns:
        cov["boundary_changed"] = False
    cov["published_pair"] = pd.to_numeric(cov["published_pair"], errors="coerce").astype("Int64")
    cov["boundary_changed"] = cov["boundary_changed"].fillna(False).astype(bool)
    panel = panel[panel["ward"].astype(str).isin(set(cov["ward"]))].copy()
    panel["pair"] = pd.array([pd.NA] * len(panel), dtype="Int64")
    synthetic = bool(panel["synthetic"].fillna(False).astype(bool).any()) if "synthetic" in panel else False
    for col in ("ward", "group"):
        cov[col] = cov[col].astype("string")
    return CandidatePool(covariates=cov.reset_index(drop=True), panel=panel.reset_index(drop=True),
                         synthetic=synthetic)
