"""Tests of nbdid.analysis.matching on small tables whose answer is known by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbdid.analysis.matching import MatchSpec, balance_table, match_wards, match_weights
from nbdid.errors import InputError


def _t(ids, **cols):
    return pd.DataFrame({"ward": ids, **cols})


def _pooled_sd(xt, xc):
    xt, xc = np.asarray(xt, float), np.asarray(xc, float)
    ss = ((xt - xt.mean()) ** 2).sum() + ((xc - xc.mean()) ** 2).sum()
    return np.sqrt(ss / (len(xt) + len(xc) - 2))


def _pairs(m):
    return list(zip(m["treated_ward"], m["control_ward"], strict=True))


def test_exact_nearest_neighbours_and_distance_in_sd_units():
    t = _t(["a", "b"], x=[0.0, 10.0])
    c = _t(["p", "q", "r", "s"], x=[1.0, 9.5, 20.0, -5.0])
    m = match_wards(t, c, MatchSpec(("x",), distance="euclidean"))
    assert _pairs(m) == [("a", "p"), ("b", "q")]
    assert m["set"].tolist() == [1, 2] and m["rank"].tolist() == [1, 1]
    sd = _pooled_sd([0, 10], [1, 9.5, 20, -5])
    assert m["distance"].tolist() == pytest.approx([1 / sd, 0.5 / sd])
    # one covariate: Mahalanobis equals the standardised Euclidean distance
    mm = match_wards(t, c, MatchSpec(("x",), distance="mahalanobis"))
    assert mm["distance"].tolist() == pytest.approx(m["distance"].tolist())
    assert m.attrs["unmatched"] == [] and m.attrs["partial"] == []


def test_caliper_drops_a_treated_ward():
    t = _t(["near", "far"], x=[0.0, 100.0])
    c = _t(["c1", "c2", "c3", "c4"], x=[1.0, 2.0, 3.0, 4.0])
    sd = _pooled_sd([0, 100], [1, 2, 3, 4])
    assert 96 / sd > 0.5 > 1 / sd  # the caliper separates the two cases
    m = match_wards(t, c, MatchSpec(("x",), distance="euclidean", caliper=0.5))
    assert _pairs(m) == [("near", "c1")]
    assert m["set"].tolist() == [1]
    assert m.attrs["unmatched"] == ["far"]
    assert m.attrs["caliper_distance"] == pytest.approx(0.5)
    # without a caliper the far ward takes the largest remaining candidate
    m2 = match_wards(t, c, MatchSpec(("x",), distance="euclidean"))
    assert _pairs(m2) == [("near", "c1"), ("far", "c4")]


def test_replacement_reuses_the_best_control_and_weights_it_twice():
    t = _t(["t1", "t2"], x=[0.0, 0.2])
    c = _t(["best", "mid", "far"], x=[0.1, 5.0, 6.0])
    rep = match_wards(t, c, MatchSpec(("x",), distance="euclidean", replace=True))
    assert _pairs(rep) == [("t1", "best"), ("t2", "best")]
    no = match_wards(t, c, MatchSpec(("x",), distance="euclidean"))
    assert _pairs(no) == [("t1", "best"), ("t2", "mid")]  # greedy: t1 comes first
    assert match_weights(rep).to_dict() == {"best": 2.0}
    b = balance_table(t, c, rep, ["x"]).iloc[0]
    assert b["mean_control_after"] == pytest.approx(0.1)
    assert b["mean_control_before"] == pytest.approx((0.1 + 5 + 6) / 3)


def test_exact_matching_on_region():
    t = _t(["t"], x=[0.0], region=["North"])
    c = _t(["south_near", "north_far", "north_farther"], x=[0.1, 2.0, 3.0],
           region=["South", "North", "North"])
    assert _pairs(match_wards(t, c, MatchSpec(("x",), distance="euclidean"))) == [("t", "south_near")]
    m = match_wards(t, c, MatchSpec(("x",), distance="euclidean", exact=("region",)))
    assert _pairs(m) == [("t", "north_far")]
    # no candidate in the stratum: unmatched, not an error
    t2 = _t(["t", "u"], x=[0.0, 1.0], region=["North", "East"])
    m2 = match_wards(t2, c, MatchSpec(("x",), distance="euclidean", exact=("region",)))
    assert m2.attrs["unmatched"] == ["u"]


def test_one_to_two_greedy_rounds_and_weights():
    t = _t(["t0", "t1"], x=[0.0, 1.0])
    c = _t(["a", "b", "w", "z"], x=[-0.1, 0.45, -0.5, 3.0])
    m = match_wards(t, c, MatchSpec(("x",), distance="euclidean", ratio=2))
    # round 1: t0->a, t1->b (t0's second choice, taken before t0's second round);
    # round 2: t0->w, t1->z.  (Taking both controls at once, t0 would take a and b.)
    assert _pairs(m) == [("t0", "a"), ("t0", "w"), ("t1", "b"), ("t1", "z")]
    assert m["rank"].tolist() == [1, 2, 1, 2]
    assert set(match_weights(m)) == {0.5}
    b = balance_table(t, c, m, ["x"]).iloc[0]
    assert b["mean_control_after"] == pytest.approx((-0.1 - 0.5 + 0.45 + 3.0) / 4)
    # 1:3 with 4 candidates for 2 treated: too few without replacement
    with pytest.raises(InputError, match="too few candidates"):
        match_wards(t, c, MatchSpec(("x",), ratio=3))
    # with replacement 1:3 works, each treated gets its 3 nearest
    r = match_wards(t, c, MatchSpec(("x",), distance="euclidean", ratio=3, replace=True))
    assert r[r.treated_ward == "t1"]["control_ward"].tolist() == ["b", "a", "w"]


def test_mahalanobis_and_euclidean_differ_when_covariates_correlate():
    rng = np.random.default_rng(1)
    u = np.linspace(-5, 5, 41)
    cloud = _t([f"c{i}" for i in range(41)], x=u, y=u + rng.normal(0, 0.05, 41))
    along = _t(["along"], x=[1.2], y=[1.2])       # off along the correlation
    across = _t(["across"], x=[0.35], y=[-0.35])  # off across it, nearer in plain terms
    cands = pd.concat([cloud[cloud["x"].abs() > 3], along, across], ignore_index=True)
    t = _t(["t", "t2"], x=[0.0, 4.0], y=[0.0, 4.1])
    spec_e = MatchSpec(("x", "y"), distance="euclidean", replace=True)
    spec_m = MatchSpec(("x", "y"), distance="mahalanobis", replace=True)
    pick_e = match_wards(t, cands, spec_e).set_index("treated_ward").loc["t", "control_ward"]
    pick_m = match_wards(t, cands, spec_m).set_index("treated_ward").loc["t", "control_ward"]
    assert (pick_e, pick_m) == ("across", "along")
    # independent Mahalanobis distance with the pooled within-group covariance
    xt = t[["x", "y"]].to_numpy()
    xc = cands[["x", "y"]].to_numpy()
    s = ((xt - xt.mean(0)).T @ (xt - xt.mean(0)) + (xc - xc.mean(0)).T @ (xc - xc.mean(0)))
    s /= len(xt) + len(xc) - 2
    d = xc - xt[0]
    md = np.sqrt(np.einsum("ij,jk,ik->i", d, np.linalg.inv(s), d))
    assert cands["ward"].iloc[int(np.argmin(md))] == "along"
    got = match_wards(t, cands, spec_m).set_index("treated_ward").loc["t", "distance"]
    assert got == pytest.approx(md.min())


def test_optimal_beats_greedy_when_greedy_is_suboptimal():
    t = _t(["t1", "t2"], x=[0.0, 1.0])
    c = _t(["c1", "c2", "c3"], x=[0.45, -1.0, 10.0])
    g = match_wards(t, c, MatchSpec(("x",), distance="euclidean", method="greedy"))
    o = match_wards(t, c, MatchSpec(("x",), distance="euclidean", method="optimal"))
    assert _pairs(g) == [("t1", "c1"), ("t2", "c2")]   # raw total 0.45 + 2.0
    assert _pairs(o) == [("t1", "c2"), ("t2", "c1")]   # raw total 1.0 + 0.55
    sd = _pooled_sd([0, 1], [0.45, -1, 10])
    assert g["distance"].sum() == pytest.approx(2.45 / sd)
    assert o["distance"].sum() == pytest.approx(1.55 / sd)


def test_optimal_with_caliper_maximises_matched_wards():
    # greedy: t1 takes c1 and t2 (only c1 within caliper) is lost; optimal keeps both
    t = _t(["t1", "t2"], x=[0.0, 1.0])
    c = _t(["c1", "c2", "far"], x=[0.6, -0.3, 20.0])
    sd = _pooled_sd([0, 1], [0.6, -0.3, 20])
    cal = 0.5 / sd  # allows |diff| <= 0.5
    g = match_wards(t, c, MatchSpec(("x",), distance="euclidean", caliper=cal))
    o = match_wards(t, c, MatchSpec(("x",), distance="euclidean", caliper=cal, method="optimal"))
    assert _pairs(o) == [("t1", "c2"), ("t2", "c1")]
    assert g.attrs["unmatched"] == [] and _pairs(g) == [("t1", "c2"), ("t2", "c1")]
    c2 = _t(["c1", "c2", "far"], x=[0.4, -0.45, 20.0])
    g2 = match_wards(t, c2, MatchSpec(("x",), distance="euclidean", caliper=0.6 / _pooled_sd([0, 1], [0.4, -0.45, 20])))
    o2 = match_wards(t, c2, MatchSpec(("x",), distance="euclidean", method="optimal",
                                      caliper=0.6 / _pooled_sd([0, 1], [0.4, -0.45, 20])))
    assert g2.attrs["unmatched"] == ["t2"]        # t1 took c1, the only control near t2
    assert o2.attrs["unmatched"] == [] and len(o2) == 2


def test_ties_go_to_the_first_candidate():
    t = _t(["t"], x=[0.0])
    c = _t(["second", "first"], x=[1.0, -1.0])
    assert _pairs(match_wards(t, c, MatchSpec(("x",), distance="euclidean"))) == [("t", "second")]


def test_propensity_distance_is_logit_difference():
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    t = _t([f"t{i}" for i in range(15)], x=rng.normal(1, 1, 15), y=rng.normal(0.5, 1, 15))
    c = _t([f"c{i}" for i in range(60)], x=rng.normal(0, 1, 60), y=rng.normal(0, 1, 60))
    m = match_wards(t, c, MatchSpec(("x", "y"), distance="propensity", replace=True))
    x = sm.add_constant(pd.concat([t, c])[["x", "y"]].to_numpy())
    fit = sm.Logit(np.r_[np.ones(15), np.zeros(60)], x).fit(disp=0)
    lin = x @ fit.params
    lt, lc = lin[:15], lin[15:]
    for r in m.itertuples():
        i, j = int(r.treated_ward[1:]), int(r.control_ward[1:])
        assert r.distance == pytest.approx(abs(lt[i] - lc[j]), abs=1e-6)
        assert r.distance == pytest.approx(np.abs(lt[i] - lc).min(), abs=1e-6)


def test_smd_and_variance_ratio_computed_independently():
    t = _t(["t1", "t2", "t3"], x=[1.0, 2.0, 4.0], y=[0, 1, 1])
    c = _t(["a", "b", "c", "d", "e"], x=[0.0, 1.5, 2.5, 5.0, 9.0], y=[0, 0, 1, 1, 0])
    m = match_wards(t, c, MatchSpec(("x",), distance="euclidean"))
    controls = c.set_index("ward").loc[m["control_ward"]]
    b = balance_table(t, c, m, ["x", "y"]).set_index("covariate")
    for cov in ("x", "y"):
        xt, xc, xa = t[cov].to_numpy(float), c[cov].to_numpy(float), controls[cov].to_numpy(float)
        sd = np.sqrt((xt.var(ddof=1) + xc.var(ddof=1)) / 2)
        r = b.loc[cov]
        assert r["smd_before"] == pytest.approx((xt.mean() - xc.mean()) / sd)
        assert r["smd_after"] == pytest.approx((xt.mean() - xa.mean()) / sd)  # same denominator
        assert r["var_ratio_before"] == pytest.approx(xt.var(ddof=1) / xc.var(ddof=1))
        assert r["var_ratio_after"] == pytest.approx(xt.var(ddof=1) / xa.var(ddof=1))
    assert b.attrs["n_treated_matched"] == 3 and b.attrs["n_controls_matched"] == 3


def test_balance_uses_only_matched_treated_after():
    t = _t(["near", "far"], x=[0.0, 100.0])
    c = _t(["c1", "c2", "c3", "c4"], x=[1.0, 2.0, 3.0, 4.0])
    m = match_wards(t, c, MatchSpec(("x",), distance="euclidean", caliper=0.5))
    b = balance_table(t, c, m, ["x"]).iloc[0]
    assert b["mean_treated"] == 50 and b["mean_treated_matched"] == 0
    sd = np.sqrt((np.var([0, 100], ddof=1) + np.var([1, 2, 3, 4], ddof=1)) / 2)
    assert b["smd_after"] == pytest.approx((0 - 1) / sd)


@pytest.mark.parametrize(
    ("treated", "cands", "spec", "msg"),
    [
        (_t(["a"], x=[0.0]), _t(["b"], z=[1.0]), MatchSpec(("x",)), "no column"),
        (_t(["a"], x=[np.nan]), _t(["b"], x=[1.0]), MatchSpec(("x",)), "missing \\(NaN\\)"),
        (_t(["a", "a"], x=[0.0, 1.0]), _t(["b", "c"], x=[1.0, 2.0]), MatchSpec(("x",)), "more than once"),
        (_t(["a", "b"], x=[0.0, 1.0]), _t(["c"], x=[1.0]), MatchSpec(("x",)), "too few candidates"),
        (_t(["a"], x=[0.0]), _t(["a", "c"], x=[1.0, 2.0]), MatchSpec(("x",)), "both treated"),
        (_t(["a"], x=["p"]), _t(["b"], x=[1.0]), MatchSpec(("x",)), "not numeric"),
        (_t(["a"], x=[1.0]), _t(["b", "c"], x=[1.0, 1.0]), MatchSpec(("x",)), "does not vary"),
    ],
)
def test_input_errors_are_one_line(treated, cands, spec, msg):
    with pytest.raises(InputError, match=msg) as err:
        match_wards(treated, cands, spec)
    assert "\n" not in str(err.value)


def test_spec_validation():
    with pytest.raises(InputError, match="distance"):
        MatchSpec(("x",), distance="cosine")
    with pytest.raises(InputError, match="ratio"):
        MatchSpec(("x",), ratio=0)
    with pytest.raises(InputError, match="caliper"):
        MatchSpec(("x",), caliper=-1.0)
    assert MatchSpec(["x", "y"], exact="region").exact == ("region",)


def test_cli_choices_agree_with_engine():
    from nbdid.analysis import matching
    from nbdid.cli import match as match_cli

    assert match_cli.DISTANCES == matching.DISTANCES
    assert match_cli.METHODS == matching.METHODS
    assert match_cli.DEFAULT_STUDY_COVARIATES == matching.DEFAULT_STUDY_COVARIATES


def test_plot_balance_love_plot():
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from nbdid.figures import plot_balance

    t = _t(["t1", "t2"], x=[0.0, 1.0], y=[2.0, 3.0])
    c = _t(["a", "b", "c", "d"], x=[0.1, 0.9, 5.0, 6.0], y=[2.0, 3.5, 0.0, 1.0])
    b = balance_table(t, c, match_wards(t, c, MatchSpec(("x", "y"))), ["x", "y"])
    n_before = len(plt.get_fignums())
    fig = plot_balance(b)
    assert isinstance(fig, Figure) and len(plt.get_fignums()) == n_before
    ax = fig.axes[0]
    pos = {t.get_text(): t.get_position()[1] for t in ax.get_yticklabels()}
    assert pos["x"] > pos["y"]  # first covariate on top
    offsets = [coll.get_offsets() for coll in ax.collections]
    assert np.allclose(sorted(offsets[1][:, 0]), sorted(b["smd_after"]))
    # several matchings of the same treated wards: one series each
    two = pd.concat([b.assign(matched_by="published"), b.assign(matched_by="engine")])
    fig2 = plot_balance(two.assign(synthetic=True))
    assert len(fig2.axes[0].collections) == 3
    assert "SYNTHETIC" in fig2.get_suptitle().upper()
    with pytest.raises(InputError, match="smd_after"):
        plot_balance(b.drop(columns="smd_after"))
