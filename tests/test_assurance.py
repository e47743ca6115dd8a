"""The computations behind ``nbdid design`` (no sampling; fast).

The summaries of simulated studies are validated against closed forms for a normal
outcome with known variance: studies are simulated with NumPy (an estimate ``y ~
N(delta, se^2)`` and its conjugate normal posterior), summarised by the same functions
that summarise the design's refits, and compared with the analytic assurance, power,
type S and type M errors within Monte Carlo error.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from nbdid.analysis import assurance as asr
from nbdid.analysis.tipping_bayes import tipping_bayes
from nbdid.config import DesignConfig
from nbdid.errors import InputError
from nbdid.models.design import build_design
from nbdid.models.simulate import simulate_panel

Z = stats.norm.ppf(0.975)


def conjugate_studies(delta: float, se: float, n: int, *, prior_sd: float, seed: int,
                      lower_is_better: bool = True, sim0: int = 0) -> pd.DataFrame:
    """``n`` studies of a normal outcome with known variance, as simulation rows."""
    rng = np.random.default_rng(seed)
    y = delta + se * rng.standard_normal(n)
    w = 1.0 if math.isinf(prior_sd) else prior_sd**2 / (prior_sd**2 + se**2)
    mean, sd = w * y, math.sqrt(w) * se
    b = -1.0 if lower_is_better else 1.0
    z_sig = (np.abs(y) / se > Z).astype(float)
    return pd.DataFrame({
        "indicator": "crime", "areas": 50, "sim": np.arange(sim0, sim0 + n),
        "effect_link": delta, "effect_ratio": math.exp(delta),
        "bayes_estimate": mean, "bayes_sd": sd, "bayes_lower": mean - Z * sd,
        "bayes_upper": mean + Z * sd, "prob_benefit": stats.norm.cdf(b * mean / sd),
        "divergences": 0.0,
        **{f"{m}_estimate": y for m in asr.FREQ_METHODS},
        **{f"{m}_significant": z_sig for m in asr.FREQ_METHODS},
    })


def within(sim: float, se: float, exact: float, k: float = 4.0) -> bool:
    return abs(sim - exact) <= k * se


@pytest.mark.parametrize("delta", [-0.05, -0.12, 0.04])
def test_simulated_assurance_power_and_type_errors_match_the_closed_forms(delta):
    se, prior_sd, n = 0.05, 0.5, 6000
    sims = pd.concat([conjugate_studies(0.0, se, n, prior_sd=prior_sd, seed=1),
                      conjugate_studies(delta, se, n, prior_sd=prior_sd, seed=2)], ignore_index=True)
    t = asr.summarise_simulations(sims, lower_is_better={"crime": True}, bootstrap=0)
    row = t[~np.isclose(t["effect_link"], 0.0)].iloc[0]
    null = t[np.isclose(t["effect_link"], 0.0)].iloc[0]
    a = asr.normal_assurance(delta, se, prior_sd=prior_sd, lower_is_better=True)
    assert within(row.assurance, row.assurance_se, a)
    ai = asr.normal_interval_assurance(delta, se, prior_sd=prior_sd)
    assert within(row.assurance_interval, row.assurance_interval_se, ai)
    p = asr.normal_power(delta, se)
    for m in asr.FREQ_METHODS:
        assert within(row[f"power_{m}"], row[f"power_{m}_se"], p)
    s, mm = asr.normal_type_s_m(delta, se)
    assert within(row.type_s_glm_cluster, row.type_s_glm_cluster_se, s)
    assert within(row.type_m_glm_cluster, row.type_m_glm_cluster_se, mm)
    w = prior_sd**2 / (prior_sd**2 + se**2)
    sb, mb = asr.normal_type_s_m(delta, se, z=Z / math.sqrt(w))
    assert within(row.type_s_bayes, row.type_s_bayes_se, sb)
    # the Bayesian estimate is the shrunken mean w*y: its exaggeration is w times y's
    assert within(row.type_m_bayes, row.type_m_bayes_se, w * mb)
    # no effect: 5% false positives, repeated on every row of the size
    assert within(null.power_glm_cluster, null.power_glm_cluster_se, 0.05)
    assert row.pooled_rule_fpr == null.power_report_pooled
    assert math.isnan(null.type_s_bayes) and math.isnan(null.type_m_glm_cluster)
    # and a weak design really has a large exaggeration ratio (not a test that cannot fail)
    if abs(delta) / se < 1.5:
        assert mm > 1.5


def test_type_m_closed_form_equals_numerical_integration():
    delta, se = 0.03, 0.05
    c = Z * se
    pdf = stats.norm(delta, se).pdf
    num = integrate.quad(lambda y: abs(y) * pdf(y), c, np.inf)[0] + \
        integrate.quad(lambda y: abs(y) * pdf(y), -np.inf, -c)[0]
    power = asr.normal_power(delta, se)
    s, m = asr.normal_type_s_m(delta, se)
    assert m == pytest.approx(num / power / delta, rel=1e-7)
    assert s == pytest.approx(stats.norm.cdf(-c, delta, se) / power, rel=1e-9)


def test_paired_t_power_matches_simulated_t_tests():
    rng = np.random.default_rng(4)
    n, delta, sd, reps = 20, 0.3, 0.8, 4000
    x = delta + sd * rng.standard_normal((reps, n))
    p = stats.ttest_1samp(x, 0.0, axis=1).pvalue
    sim, se, _ = asr.proportion(p < 0.05)
    exact = asr.paired_t_power(delta, sd, n)
    assert within(sim, se, exact)
    assert asr.paired_t_power(0.0, sd, n) == pytest.approx(0.05, abs=1e-9)


@pytest.mark.parametrize("effects", [(-0.02,), (-0.05, -0.15)])
def test_minimum_detectable_effect_recovers_the_analytic_one(effects):
    se, n = 0.04, 3000
    sims = pd.concat([conjugate_studies(d, se, n, prior_sd=math.inf, seed=10 + i)
                      for i, d in enumerate(effects)], ignore_index=True)
    out = asr.minimum_detectable_effect(sims, lower_is_better=True, bootstrap=40, seed=1)
    exact = -se * (stats.norm.ppf(0.95) + stats.norm.ppf(0.8))
    assert out["mde_method"] == ("extrapolated" if len(effects) == 1 else "interpolated")
    assert out["mde_link"] < 0
    tol = 0.02 if len(effects) > 1 else 4 * out["mde_ratio_se"] + 0.003
    assert abs(out["mde_ratio"] - math.exp(exact)) <= tol
    assert 0 < out["mde_ratio_se"] < 0.02


def test_proportion_and_type_errors_edge_cases():
    p, se, n = asr.proportion([1, 1, 1, np.nan])
    assert (p, n) == (1.0, 3) and se > 0  # a share of 1 still has an error
    assert math.isnan(asr.proportion([np.nan])[0])
    out = asr.type_s_m(np.array([0.1, -0.2]), np.array([0.0, 0.0]), -0.1)
    assert out["n_significant"] == 0 and math.isnan(out["type_s"])
    out = asr.type_s_m(np.array([0.1, -0.3]), np.array([1.0, 1.0]), -0.1)
    assert out["type_s"] == 0.5 and out["type_m"] == pytest.approx(2.0)
    assert math.isnan(asr.type_s_m(np.array([0.1]), np.array([1.0]), 0.0)["type_s"])


def test_posterior_decision_direction_of_benefit():
    draws = np.random.default_rng(0).normal(-0.2, 0.1, size=(2, 4000))
    low = asr.posterior_decision(draws, lower_is_better=True)
    high = asr.posterior_decision(draws, lower_is_better=False)
    assert low["prob_benefit"] == pytest.approx(stats.norm.cdf(2.0), abs=0.01)
    assert high["prob_benefit"] == pytest.approx(1 - low["prob_benefit"])
    assert low["bayes_lower"] < -0.2 < low["bayes_upper"] < 0


# ----------------------------------------------------------------------------------------
# heterogeneity and effects
# ----------------------------------------------------------------------------------------


def test_tipping_heterogeneity_follows_the_tipping_point_posterior():
    het = asr.heterogeneity_from_tipping("crime", n_draws=2000, seed=3)
    tau = het.draws["sigma_change"].to_numpy()
    assert het.n_draws == 2000 and (tau >= 0).all()
    ref = tipping_bayes().set_index("indicator").loc["crime", "tau_posterior_median"]
    assert np.median(tau) == pytest.approx(ref, rel=0.03)
    assert het.source == "tipping" and not het.synthetic
    assert "published" in het.description
    # baseline: the benchmark group's published crime rate (171.9 per 1,000)
    assert math.exp(het.draws["intercept"].iloc[0]) * 1000 == pytest.approx(171.9)
    assert het.exposures.size > 0 and het.exposures.min() > 1000


def test_given_heterogeneity_is_one_fixed_draw():
    het = asr.heterogeneity_given("out_of_work_benefits", sigma_change=0.2, sigma_wp=0.05)
    assert het.n_draws == 1 and het.draws["sigma_change"].item() == 0.2
    assert het.draws["sigma_wp"].item() == 0.05
    assert "fixed values" in het.statement()
    with pytest.raises(InputError, match="sigma_change"):
        asr.heterogeneity_given("crime", sigma_change=-1)
    with pytest.raises(InputError, match="registry"):
        asr.heterogeneity_given("fly_tipping", sigma_change=0.2)


def test_heterogeneity_from_a_posterior_reads_every_component():
    import xarray as xr

    panel, _ = simulate_panel("poisson", indicator="crime", n_pairs=6, seed=2)
    design = build_design(panel, "crime", "poisson")
    rng = np.random.default_rng(0)
    dims = ("chain", "draw")
    post = xr.Dataset({
        "sigma_ward": (dims, rng.uniform(0.2, 0.4, (2, 5))),
        "sigma_change": (dims, rng.uniform(0.1, 0.3, (2, 5))),
        "sigma_pair": (dims, rng.uniform(0.1, 0.3, (2, 5))),
        "sigma_od": (dims, np.full((2, 5), 0.07)),
        "intercept": (dims, np.full((2, 5), -2.5)),
        "group_effect": (dims, np.full((2, 5), 0.1)),
        "period_effect": (("chain", "draw", "period"), np.stack(
            [np.zeros((2, 5)), np.full((2, 5), -0.3)], axis=-1)),
    })
    het = asr.heterogeneity_from_posterior(post, design, description="test fit")
    assert het.n_draws == 10 and het.synthetic
    np.testing.assert_allclose(het.draws["sigma_change"], post["sigma_change"].values.ravel())
    assert (het.draws["sigma_wp"] == 0.07).all()  # the negative binomial's CV
    assert (het.draws["period_change"] == -0.3).all() and (het.draws["group_diff"] == 0.1).all()
    pre = design.arrays["exposure"][design.post == 0]
    np.testing.assert_array_equal(het.exposures, pre)
    # a posterior without an observation-level term simulates none
    het2 = asr.heterogeneity_from_posterior(post.drop_vars("sigma_od"), design)
    assert (het2.draws["sigma_wp"] == 0).all()
    # one SD of change shared by both groups
    np.testing.assert_array_equal(het.draws["sigma_change_nbi"], het.draws["sigma_change"])
    assert not het.group_specific
    # one SD of change per group (the model's default): by default both simulated groups
    # get their root mean square, draw by draw (no effect = groups alike) ...
    nbi_sd = rng.uniform(0.25, 0.35, (2, 5))
    groups = post.drop_vars("sigma_change").assign(
        sigma_change_nbi=(dims, nbi_sd), sigma_change_benchmark=(dims, np.full((2, 5), 0.4)))
    het3 = asr.heterogeneity_from_posterior(groups, design)
    rms = np.sqrt((nbi_sd.ravel() ** 2 + 0.16) / 2)
    np.testing.assert_allclose(het3.draws["sigma_change"], rms)
    np.testing.assert_allclose(het3.draws["sigma_change_nbi"], rms)
    assert not het3.group_specific and "root mean square" in het3.description
    # ... or each group keeps its own
    het4 = asr.heterogeneity_from_posterior(groups, design, change_sd="groups")
    np.testing.assert_allclose(het4.draws["sigma_change"], 0.4)
    np.testing.assert_allclose(het4.draws["sigma_change_nbi"], nbi_sd.ravel())
    assert het4.group_specific and "in NBI wards median" in het4.sentence()
    with pytest.raises(InputError, match="change_sd"):
        asr.heterogeneity_from_posterior(groups, design, change_sd="mean")


def test_group_specific_change_sds_reach_the_simulated_panels():
    """NBI wards of a simulated study change with the NBI group's SD, benchmarks with theirs."""
    from nbdid.workflow import design as wd

    het = asr.heterogeneity_given("crime", sigma_change=0.05, sigma_change_nbi=0.6, sigma_ward=0.2,
                                  sigma_pair=0.1)
    assert het.group_specific and "(NBI wards 0.6)" in het.description
    cfg = DesignConfig(indicators=("crime",), areas=(400,), sims=1, sigma_change=0.05)
    task = wd.build_tasks(cfg, {"crime": het}, wd.ModelConfig())[0][0]
    assert task.params[0]["sigma_change_nbi"] == 0.6 and task.params[0]["sigma_change"] == 0.05
    panel = wd.simulate(task, 0, 0.0)
    rate = np.log(panel["count"].astype(float) / panel["exposure"].astype(float))
    wide = panel.assign(rate=rate).pivot_table(index=["ward", "group"], columns="period",
                                               values="rate").reset_index()
    periods = sorted(panel["period"].unique())
    change = wide[periods[-1]] - wide[periods[0]]
    sd = change.groupby(wide["group"]).std()
    # sampling noise of crime counts adds ~0.05; the NBI wards' change is far more variable
    assert sd["nbi"] > 0.45 and sd["benchmark"] < 0.2


@pytest.mark.parametrize("key,value", [("crime", -10.0), ("out_of_work_benefits", -2.0),
                                       ("property_price", 10_000.0)])
def test_own_unit_effects_round_trip(key, value):
    het = asr.heterogeneity_from_tipping(key, n_draws=50)
    eff = asr.effect_from_unit(value, het)
    assert (eff.ratio < 1) == (value < 0)
    assert asr.unit_of_effect(asr.Effect(eff.ratio), het) == pytest.approx(value, rel=1e-8)
    with pytest.raises(InputError, match="impossible"):
        asr.effect_from_unit(1e9, het)  # a rise beyond the level itself


def test_effect_validation():
    assert asr.Effect(0.9).percent == pytest.approx(-10.0)
    with pytest.raises(InputError):
        asr.Effect(0.0)


# ----------------------------------------------------------------------------------------
# plan
# ----------------------------------------------------------------------------------------


def test_seeds_and_chunks():
    assert asr.sim_seed(1, "crime", 29, 5) == asr.sim_seed(1, "crime", 29, 5)
    assert asr.sim_seed(1, "crime", 29, 5) != asr.sim_seed(1, "crime", 75, 5)
    per = [asr.sims_per_task(a) for a in (29, 75, 150, 350)]
    assert per == sorted(per, reverse=True) and per[-1] == 1
    chunks = asr.task_chunks(200, 13)
    covered = [i for a, b in chunks for i in range(a, b)]
    assert covered == list(range(200))
    het = asr.heterogeneity_from_tipping("crime", n_draws=100)
    idx = asr.draw_indices(het, 250, seed=4)
    assert len(idx) == 250 and len(set(idx[:100])) == 100  # without replacement first


def test_areas_needed_interpolates_in_log_areas():
    t = pd.DataFrame({"areas": [29, 75, 150], "assurance": [0.5, 0.9, 0.99]})
    n, how = asr.areas_needed(t, target=0.8)
    expected = math.exp(math.log(29) + 0.75 * (math.log(75) - math.log(29)))
    assert how == "about" and n == pytest.approx(expected)
    assert asr.areas_needed(t.assign(assurance=[0.1, 0.2, 0.3]))[1] == "more than"
    assert asr.areas_needed(t.assign(assurance=[0.85, 0.9, 0.95])) == (29.0, "at most")


def test_plain_summary_says_how_many_pairs():
    sims = pd.concat([conjugate_studies(d, se, 400, prior_sd=0.5, seed=i).assign(areas=a)
                      for i, (a, se) in enumerate([(29, 0.08), (75, 0.05), (150, 0.035)])
                      for d in (0.0, math.log(0.9))], ignore_index=True)
    t = asr.summarise_simulations(sims, lower_is_better={"crime": True}, bootstrap=0)
    t["alpha"] = 0.05
    text = asr.plain_summary(t, families={"crime": "poisson"}, synthetic=True)
    assert "To detect a 10% fall in Overall Crime Rate (rate ratio 0.90) with 80% assurance" in text
    assert "matched pairs" in text and "SYNTHETIC DATA" in text
    assert "| matched sets | effect | assurance |" in text
    n, how = asr.areas_needed(t[np.isclose(t["effect_ratio"], 0.9)], target=0.8)
    assert f"{how} {int(round(n)):,} matched pairs" in text


def test_design_config_checks():
    with pytest.raises(InputError, match="areas"):
        DesignConfig(areas=(1, 29))
    with pytest.raises(InputError, match="one source"):
        DesignConfig(from_tipping=True, sigma_change=0.2)
    with pytest.raises(InputError, match="sigma_change"):
        DesignConfig(sigma_ward=0.3)
    with pytest.raises(InputError, match="post_periods"):
        DesignConfig(periods=2, post_periods=2)
    with pytest.raises(InputError, match="effects"):
        DesignConfig(effects=(-0.1,))
    assert DesignConfig(periods=4, post_periods=2).first_post == 2


@pytest.mark.parametrize("argv,ratios,units", [
    ([], (0.9,), ()),  # the default effect
    (["--effect", "0.9", "--effect", "0.8,-5%"], (0.9, 0.8, 0.95), ()),  # several, as ratios
    (["--effect-unit", "-10", "--effect-unit", "-20"], (), (-10.0, -20.0)),  # own unit only
    (["--effect=+10%", "--effect-unit", "-10"], (1.1,), (-10.0,)),  # both kinds
])
def test_cli_effects_in_ratio_and_own_unit(argv, ratios, units):
    from nbdid.cli import build_parser
    from nbdid.cli.design import design_config

    args = build_parser().parse_args(["design", "--out", "x", "--indicator", "crime", *argv])
    cfg = design_config(args)
    np.testing.assert_allclose(cfg.effects, ratios)
    assert cfg.unit_effects == units and cfg.sims == 200 and cfg.areas == (29, 75, 150, 350)
    # own-unit effects become ratios at the NBI group's typical level, beside the given ones
    from nbdid.workflow.design import design_effects

    het = asr.heterogeneity_given("crime", sigma_change=0.2)
    effects = design_effects(cfg, het)
    assert len(effects) == len(ratios) + len(units)
    for u in units:
        e = next(e for e in effects if e.unit == u)
        assert e.ratio < 1 and asr.unit_of_effect(e, het) == pytest.approx(u)


# ----------------------------------------------------------------------------------------
# the simulator's design options
# ----------------------------------------------------------------------------------------


def test_simulator_matched_sets_noise_and_exposures():
    p, _ = simulate_panel("poisson", indicator="crime", n_pairs=5, controls_per_set=2, seed=1,
                          exposures=np.array([1000.0, 2000.0]))
    sizes = p[p.period == 0].groupby(["pair", "group"]).size().unstack()
    assert (sizes["nbi"] == 1).all() and (sizes["benchmark"] == 2).all()
    assert set(p.loc[p.period == 0, "exposure"]) <= {1000.0, 2000.0}
    a, _ = simulate_panel("poisson", n_pairs=40, seed=3, change_form="step")
    b, _ = simulate_panel("poisson", n_pairs=40, seed=3)
    pd.testing.assert_frame_equal(a, b)  # two periods: one step = one walk
    quiet, _ = simulate_panel("poisson", n_pairs=200, n_periods=4, seed=5, change_form="step",
                              sigma_change=0.0, sigma_ward=0.0, sigma_pair=0.0)
    noisy, _ = simulate_panel("poisson", n_pairs=200, n_periods=4, seed=5, change_form="step",
                              sigma_change=0.0, sigma_ward=0.0, sigma_pair=0.0, sigma_wp=0.3)

    def spread(df):
        r = np.log(df["count"].astype(float) / df["exposure"])
        return float(r.groupby(df["period"]).std().mean())

    assert spread(noisy) > 2 * spread(quiet)
    with pytest.raises(ValueError):
        simulate_panel("poisson", n_pairs=3, controls_per_set=0)


# ----------------------------------------------------------------------------------------
# the figure
# ----------------------------------------------------------------------------------------


def _figure_table(synthetic: bool) -> pd.DataFrame:
    sims = pd.concat([conjugate_studies(d, se, 300, prior_sd=0.5, seed=i).assign(areas=a)
                      for i, (a, se) in enumerate([(29, 0.08), (75, 0.05), (150, 0.035), (350, 0.023)])
                      for d in (0.0, math.log(0.9), math.log(0.8))], ignore_index=True)
    t = asr.summarise_simulations(sims, lower_is_better={"crime": True}, bootstrap=0)
    return t.assign(ratio_scale="rate_ratio", synthetic=synthetic)


@pytest.mark.parametrize("synthetic", [True, False])
def test_assurance_figure_meets_the_print_rules(synthetic):
    import matplotlib as mpl
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from nbdid.figures import plot_assurance
    from nbdid.figures.checks import has_synthetic_banner, print_problems
    from nbdid.figures.style import DOUBLE_COLUMN_MM, size_mm

    before = dict(mpl.rcParams)
    fig = plot_assurance(_figure_table(synthetic))
    assert isinstance(fig, Figure) and plt.get_fignums() == []
    assert dict(mpl.rcParams) == before
    assert abs(size_mm(fig)[0] - DOUBLE_COLUMN_MM) < 0.5
    assert print_problems(fig) == []
    assert has_synthetic_banner(fig) == synthetic
    a, p = [ax for ax in fig.axes if ax.get_visible()][:2]
    # one assurance curve per effect; three methods per effect and the pooled rule beside them
    assert len([ln for ln in a.get_lines() if len(ln.get_xdata()) == 4]) == 2
    assert len([ln for ln in p.get_lines() if len(ln.get_xdata()) == 4]) == 2 * 3 + 1
    legend = (fig.legends or fig.subfigs[0].legends)[0]
    labels = [t.get_text() for t in legend.get_texts()]
    assert any("rate ratio 0.90" in s for s in labels) and any("pooled rule" in s for s in labels)


def test_assurance_figure_draws_on_given_axes():
    from matplotlib.figure import Figure

    from nbdid.figures import plot_assurance

    t = _figure_table(False)
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_assurance(t, ax=ax) is fig
    fig2 = Figure()
    a, p = fig2.subplots(1, 2)
    assert plot_assurance(t, ax=(a, p)) is fig2 and p.get_lines()
    with pytest.raises(ValueError, match="one indicator"):
        plot_assurance(pd.concat([t, t.assign(indicator="burglary")]))
