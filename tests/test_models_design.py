"""Design building: indices, coords, and ModelError for panels a DiD cannot use."""

from __future__ import annotations

import numpy as np
import pandas as pd
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
    assert d.shape_key() == (10, 5, 2, 20, 0, 0)  # wards, pairs, periods, obs, covariates, interactions
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


def test_matched_sets_one_to_two():
    """1:2 matching: a pair with one NBI and two benchmark wards is a valid matched set."""
    p = simulate_panel("poisson", n_pairs=4, seed=4)[0]
    extra = p[p["group"] == "benchmark"].copy()
    extra["ward"] = extra["ward"] + "-B2"
    d = build_design(pd.concat([p, extra], ignore_index=True), "crime", "poisson")
    assert len(d.coords["ward"]) == 12 and len(d.coords["pair"]) == 4
    counts = np.bincount(d.ward_pair_idx, minlength=4)
    np.testing.assert_array_equal(counts, [3, 3, 3, 3])
    two_nbi = p.copy()
    two_nbi.loc[two_nbi["ward"] == "SIM0002", "group"] = "nbi"
    with pytest.raises(ModelError, match="exactly one NBI ward"):
        build_design(two_nbi, "crime", "poisson")


def test_overdispersion_auto_resolution():
    from nbdid.config import ModelConfig
    from nbdid.models.design import resolve_model_config

    two = build_design(simulate_panel("poisson", n_pairs=4, seed=5)[0], "crime", "poisson")
    four = build_design(
        simulate_panel("poisson", n_pairs=4, n_periods=4, first_post=2, seed=5)[0],
        "crime", "poisson",
    )
    assert resolve_model_config(two, ModelConfig()).overdispersion == "none"
    assert resolve_model_config(four, ModelConfig()).overdispersion == "negbin"
    no_change = ModelConfig(ward_change=False)
    assert resolve_model_config(two, no_change).overdispersion == "negbin"
    assert resolve_model_config(two, ModelConfig(overdispersion="ward_period")).overdispersion == "ward_period"


def test_variance_components_recover_simulated_sds():
    """Moment estimates are close to the simulation's ward, change and pair variances."""
    from nbdid.models.design import variance_components

    p = simulate_panel("poisson", n_pairs=200, seed=7, exposure_range=(40_000, 60_000),
                       sigma_ward=0.3, sigma_change=0.2, sigma_pair=0.25)[0]
    v = variance_components(build_design(p, "crime", "poisson"))
    assert v["change"] == pytest.approx(0.2**2, rel=0.3)
    assert v["pair"] == pytest.approx(0.25**2, rel=0.4)
    assert v["level"] - v["pair"] == pytest.approx(0.3**2, rel=0.4)


def test_parameterization_follows_precision():
    """Precise ward data (large exposures) -> centred; noisy ward data -> non-centred."""
    from nbdid.models.design import choose_parameterization, sampling_variance

    big = simulate_panel("poisson", n_pairs=15, seed=6, exposure_range=(50_000, 80_000))[0]
    small = simulate_panel("poisson", n_pairs=15, seed=6, exposure_range=(30, 60),
                           sigma_ward=0.05, sigma_change=0.05, sigma_pair=0.05)[0]
    d_big = build_design(big, "crime", "poisson")
    d_small = build_design(small, "crime", "poisson")
    big_forms, small_forms = choose_parameterization(d_big), choose_parameterization(d_small)
    assert big_forms["level"] == big_forms["change"] == "centred" == d_big.parameterization
    assert d_big.change_parameterization == "centred"
    assert small_forms == {"level": "non_centred", "change": "non_centred", "pair": "non_centred"}
    assert d_small.parameterization == d_small.change_parameterization == "non_centred"
    # forcing one form sets all three
    forced = build_design(big, "crime", "poisson", parameterization="non_centred")
    assert {forced.parameterization, forced.change_parameterization,
            forced.pair_parameterization} == {"non_centred"}
    # Poisson sampling variance of a log rate is about 1 / count
    y = d_big.count.astype(float)
    np.testing.assert_allclose(sampling_variance(d_big), 1.0 / (y + 0.5))
