"""The synthetic candidate pool: determinism, the study wards' rows, covariate-outcome links."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbdid.config import CandidatePoolConfig
from nbdid.data_prep.candidates import (
    COVARIATE_COLUMNS,
    REWARDED_LAS,
    generate_candidate_pool,
    load_candidate_pool,
    panel_with_sets,
    read_candidate_pool,
)
from nbdid.data_prep.synthetic import load_default_panel
from nbdid.errors import InputError


@pytest.fixture(scope="module")
def pool():
    return load_candidate_pool()


def test_study_panel_reproduces_default_panel_exactly(pool):
    pd.testing.assert_frame_equal(pool.study_panel().reset_index(drop=True), load_default_panel(),
                                  check_exact=True)


def test_default_rows_unchanged_except_pair(pool):
    default = load_default_panel()
    study = pool.panel[pool.panel["ward"].isin(set(default["ward"]))].reset_index(drop=True)
    pd.testing.assert_frame_equal(study.drop(columns="pair"), default.drop(columns="pair"))
    assert study["pair"].isna().all()


def test_pool_is_deterministic_and_seeded():
    a = generate_candidate_pool(CandidatePoolConfig(n_candidates=40))
    b = generate_candidate_pool(CandidatePoolConfig(n_candidates=40))
    c = generate_candidate_pool(CandidatePoolConfig(n_candidates=40, seed=7))
    pd.testing.assert_frame_equal(a.panel, b.panel)
    pd.testing.assert_frame_equal(a.covariates, b.covariates)
    cand = a.covariates["ward"].str.startswith("SYN-C")
    assert not np.allclose(a.covariates.loc[cand, "mean_rank"],
                           c.covariates.loc[cand, "mean_rank"])
    # the study wards' outcome rows do not depend on the pool's seed
    study = ~a.panel["ward"].str.startswith("SYN-C")
    pd.testing.assert_frame_equal(a.panel[study], c.panel[study])


def test_pool_shape_and_schema(pool):
    cov = pool.covariates
    assert tuple(cov.columns) == COVARIATE_COLUMNS
    assert len(cov) == 58 + CandidatePoolConfig().n_candidates
    assert cov["ward"].is_unique
    assert (cov["group"] == "nbi").sum() == 29
    assert set(pool.panel["ward"]) == set(cov["ward"])
    # every ward has 7 indicators x 2 periods
    assert pool.panel.groupby("ward").size().eq(14).all()
    assert pool.panel["synthetic"].all()
    assert cov["mean_rank"].between(1, 32844).all()
    assert cov["share_most_deprived_decile"].between(0, 1).all()


def _rate(pool, key: str) -> pd.Series:
    p = pool.panel[(pool.panel["indicator"] == key) & (pool.panel["period"] == 0)].set_index("ward")
    if key == "property_price":
        return p["mean_log_price"].astype(float)
    return p["count"].astype(float) / p["exposure"].astype(float)


@pytest.mark.parametrize(
    ("key", "sign"),
    [("out_of_work_benefits", -1), ("crime", -1), ("property_price", 1), ("business_units", 1)],
)
def test_candidate_outcomes_follow_deprivation(pool, key, sign):
    # a low IMD rank = more deprived: more benefits and crime, lower prices, fewer businesses
    cov = pool.covariates.set_index("ward")
    cand = cov.index[cov.index.str.startswith("SYN-C")]
    r = _rate(pool, key).reindex(cand)
    rho = pd.Series(cov.loc[cand, "mean_rank"]).rank().corr(r.rank())
    assert sign * rho > 0.3


def test_nbi_wards_more_deprived_than_the_pool(pool):
    cov = pool.covariates
    cand = cov[cov["ward"].str.startswith("SYN-C")]
    nbi = cov[cov["group"] == "nbi"]
    assert nbi["mean_rank"].median() < cand["mean_rank"].median()
    assert nbi["share_most_deprived_decile"].mean() > cand["share_most_deprived_decile"].mean()


def test_boundary_flags(pool):
    cov = pool.covariates
    study = cov[cov["published_pair"].notna()]
    assert (study["boundary_changed"] == study["la"].isin(REWARDED_LAS)).all()
    assert study["boundary_changed"].sum() >= 5  # Birmingham x2, Bolsover x2, Rother, ...
    cand = cov[cov["ward"].str.startswith("SYN-C")]
    assert 0.05 < cand["boundary_changed"].mean() < 0.3


def test_panel_with_sets_reused_control_has_no_pair(pool):
    sets = pd.DataFrame({"set": [1, 2], "treated_ward": ["SYN-P01-NBI", "SYN-P02-NBI"],
                         "control_ward": ["SYN-C001", "SYN-C001"]})
    out = panel_with_sets(pool.panel, sets)
    assert set(out["ward"]) == {"SYN-P01-NBI", "SYN-P02-NBI", "SYN-C001"}
    assert out.loc[out["ward"] == "SYN-C001", "pair"].isna().all()
    assert (out.loc[out["ward"] == "SYN-P02-NBI", "pair"] == 2).all()


def test_config_validation():
    with pytest.raises(InputError, match="boundary_change_share"):
        CandidatePoolConfig(boundary_change_share=1.5)
    with pytest.raises(InputError, match="n_candidates"):
        CandidatePoolConfig(n_candidates=0)


def test_read_candidate_pool(tmp_path, pool):
    from nbdid.data_prep.schema import write_panel

    panel_csv = tmp_path / "panel.csv"
    sub = pool.panel[pool.panel["ward"].isin(pool.covariates["ward"].iloc[:70])]
    write_panel(sub, panel_csv)
    cov_csv = tmp_path / "cov.csv"
    pool.covariates.iloc[:70].to_csv(cov_csv, index=False)
    got = read_candidate_pool(panel_csv, cov_csv)
    assert len(got.covariates) == 70
    assert got.covariates["published_pair"].notna().sum() == 58
    assert got.synthetic

    bad = pool.covariates.iloc[:70].copy()
    bad.loc[3, "group"] = "treated"
    bad.to_csv(cov_csv, index=False)
    with pytest.raises(InputError, match="group must be nbi or benchmark") as err:
        read_candidate_pool(panel_csv, cov_csv)
    assert err.value.row == 5

    extra = pd.concat([pool.covariates.iloc[:70], pool.covariates.iloc[[100]]])
    extra.to_csv(cov_csv, index=False)
    with pytest.raises(InputError, match="has no rows in the panel"):
        read_candidate_pool(panel_csv, cov_csv)
