"""Design building: indices, coords, and ModelError for panels a DiD cannot use."""

from __future__ import annotations

import numpy as np
import pytest

from nbdid.errors import ModelError
from nbdid.models.design import build_design, link_centre, pooled_within_sd
from nbdid.models.simulate import simulate_panel


@pytest.fixture(scope="module")
def panel():
    return simulate_panel("poisson", n_pairs=5, seed=1)[0]


def test_indices_and_coords(panel):
    d = build_design(panel, "crime", "poisson")
    assert d.coords["period"] == ["2011", "2021"]
    assert len(d.coords["ward"]) == 10 and d.coords["pair"] == [1, 2, 3, 4, 5]
    assert d.n_obs == 20
    # every observation maps back to its own row
    for i in range(d.n_obs):
        row = d.frame.iloc[i]
        assert d.coords["ward"][d.ward_idx[i]] == row["ward"]
        assert d.coords["pair"][d.pair_idx[i]] == row["pair"]
        assert d.treated[i] == (row["group"] == "nbi")
        assert d.count[i] == row["count"]
    # ward-level pair index agrees with the observation-level one
    np.testing.assert_array_equal(d.ward_pair_idx[d.ward_idx], d.pair_idx)
    assert d.shape_key() == (10, 5, 2, 20)
    assert d.synthetic


def test_link_centre_is_pooled_baseline(panel):
    d = build_design(panel, "crime", "poisson")
    pre = panel[panel["period"] == 0]
    expected = np.log((pre["count"].sum() + 0.5) / (pre["exposure"].sum() + 1.0))
    assert link_centre(d) == pytest.approx(expected)


def test_one_group(panel):
    with pytest.raises(ModelError, match="only one group"):
        build_design(panel[panel["group"] == "nbi"], "crime", "poisson", pair_effects=False)


def test_one_period(panel):
    with pytest.raises(ModelError, match="only one period"):
        build_design(panel[panel["period"] == 0], "crime", "poisson")


def test_no_post_period(panel):
    p = panel.copy()
    p["post"] = 0
    with pytest.raises(ModelError, match="no post period"):
        build_design(p, "crime", "poisson")


def test_pair_missing_partner_suggests_no_pairs(panel):
    p = panel[~panel["ward"].isin(["SIM0001"])]
    with pytest.raises(ModelError, match="--no-pairs"):
        build_design(p, "crime", "poisson")
    d = build_design(p, "crime", "poisson", pair_effects=False)
    assert d.pair_idx is None and "pair" not in d.coords


def test_unknown_indicator(panel):
    with pytest.raises(ModelError, match="no rows for indicator 'burglary'"):
        build_design(panel, "burglary", "poisson")


def test_event_study_reference_default_is_last_pre():
    p = simulate_panel("poisson", n_pairs=4, n_periods=4, first_post=2, seed=2)[0]
    d = build_design(p, "crime", "poisson", event_study=True)
    assert d.reference_period == 1
    assert list(d.period_post) == [0, 0, 1, 1]
    with pytest.raises(ModelError, match="reference period"):
        build_design(p, "crime", "poisson", event_study=True, reference_period="1999")


def test_price_within_sd():
    p = simulate_panel("price", n_pairs=4, seed=3, mean_transactions=8)[0]
    d = build_design(p, "property_price", "price")
    n = p["n"].to_numpy().astype(float)
    sd = p["sd_log_price"].to_numpy()
    ok = np.isfinite(sd) & (n >= 2)
    pooled = np.sqrt(np.sum((n[ok] - 1) * sd[ok] ** 2) / np.sum(n[ok] - 1))
    assert pooled_within_sd(n, sd) == pytest.approx(pooled)
    # wards with fewer than 10 transactions use the pooled SD
    small = d.n < 10
    assert small.any()
    np.testing.assert_allclose(d.sd_within[small], pooled)
