"""The model structure is decided from the panel, and every decision is stated.

Each test builds a panel that trips one rule of
:func:`nbdid.models.design.resolve_structure` and checks the structure chosen and the
one-line note explaining it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nbdid.config import ModelConfig
from nbdid.data_prep.feasibility import check_did
from nbdid.errors import DesignError
from nbdid.models.design import build_design, resolve_structure, structure_text
from nbdid.models.simulate import simulate_panel


def _resolve(panel, key="crime", family="poisson", cfg=None, **kw):
    design = build_design(panel, key, family, **kw)
    out, notes = resolve_structure(design, cfg or ModelConfig())
    return design, out, notes


def _cross_section(panel):
    """Each ward in one period: in each group, every other ward before, the rest after."""
    first = panel.drop_duplicates("ward").sort_values("ward").groupby("group")["ward"]
    before = {w for _, wards in first for w in list(wards)[::2]}
    keep = np.where(panel["ward"].isin(before), panel["period"] == 0, panel["period"] == 1)
    return panel[keep].reset_index(drop=True)


def test_balanced_panel_keeps_the_full_structure():
    panel = simulate_panel("poisson", n_pairs=6, seed=1)[0]
    design, cfg, notes = _resolve(panel)
    assert (cfg.ward_effects, cfg.ward_change, cfg.group_change_sd) == (True, True, True)
    assert cfg.overdispersion == "none"  # two periods + ward change: each ward-period has its own effect
    assert notes == ()
    assert "ward change" in structure_text(design, cfg) and "SD per group" in structure_text(design, cfg)


def test_cross_sectional_panel_has_no_ward_change_and_no_observation_term():
    panel = _cross_section(simulate_panel("binomial", n_pairs=6, seed=2)[0])
    st = check_did(panel, "out_of_work_benefits")
    assert st.cross_sectional and not st.seen_before_and_after.any()
    design, cfg, notes = _resolve(panel, "out_of_work_benefits", "binomial", pair_effects=False)
    assert not cfg.ward_change and cfg.ward_effects
    assert cfg.overdispersion == "none"
    assert any("no ward is seen both before and after" in n for n in notes)
    assert any("each ward is seen once" in n for n in notes)
    # ward_change = false must not switch on an unidentifiable observation-level term
    _, cfg2, _ = _resolve(panel, "out_of_work_benefits", "binomial", pair_effects=False,
                          cfg=ModelConfig(ward_change=False))
    assert cfg2.overdispersion == "none"
    # an explicit one is kept, as asked, with a one-line warning
    _, cfg3, notes3 = _resolve(panel, "out_of_work_benefits", "binomial", pair_effects=False,
                               cfg=ModelConfig(overdispersion="negbin"))
    assert cfg3.overdispersion == "negbin"
    assert any("the panel cannot identify it (each ward is seen once)" in n for n in notes3)


def test_ward_change_false_on_a_two_period_panel_may_use_an_observation_term():
    panel = simulate_panel("poisson", n_pairs=6, seed=3)[0]
    _, cfg, _ = _resolve(panel, cfg=ModelConfig(ward_change=False))
    assert cfg.overdispersion == "negbin"  # two observations per ward, one ward effect
    _, cfg2, notes = _resolve(panel, cfg=ModelConfig(overdispersion="ward_period"))
    assert cfg2.overdispersion == "ward_period"
    assert any("with a ward change, each ward-period already has its own effect" in n for n in notes)


def test_wards_seen_in_one_period_get_no_change_of_their_own():
    panel = simulate_panel("poisson", n_pairs=6, seed=4)[0]
    drop = panel.index[(panel["ward"].isin(["SIM0001", "SIM0004"])) & (panel["period"] == 0)]
    design, cfg, notes = _resolve(panel.drop(index=drop), pair_effects=False, parameterization="centred")
    assert design.ward_has_change.tolist().count(0) == 2
    assert design.change_parameterization == "non_centred"  # their change would be a bare prior
    assert cfg.ward_change
    assert any("2 ward(s) seen only before or only after" in n for n in notes)


def test_a_group_seen_in_one_period_only_is_refused():
    """No NBI ward after the initiative: the DiD is not identified, whatever the model."""
    panel = simulate_panel("poisson", n_pairs=4, seed=6)[0]
    late_nbi = (panel["group"] == "nbi") & (panel["post"] == 1)
    with pytest.raises(DesignError, match="crime: no nbi ward is observed after .post 1. the "
                                          "initiative"):
        check_did(panel[~late_nbi], "crime")
    early_bench = (panel["group"] == "benchmark") & (panel["post"] == 0)
    with pytest.raises(DesignError, match="no benchmark ward is observed before"):
        build_design(panel[~early_bench], "crime", "poisson")


NO_RESIDUAL = "the 4 observations are all used by the model's 4 mean effects"
"""One ward per group over two periods: intercept, period, group and DiD fit all four."""


@pytest.mark.parametrize(("family", "key"), [("poisson", "crime"), ("binomial", "out_of_work_benefits")])
@pytest.mark.parametrize("ward_change", [True, False])
def test_one_ward_per_group_fits_fixed_effects_only(family, key, ward_change):
    panel = simulate_panel(family, n_pairs=1, seed=5)[0]
    design, cfg, notes = _resolve(panel, key, family, cfg=ModelConfig(ward_change=ward_change))
    assert design.n_obs == 4
    assert not design.pair_effects  # one matched set: no SD of pair effects
    assert not cfg.ward_effects and not cfg.ward_change
    assert any("fixed effects only: each group has one ward" in n for n in notes)
    assert any("no pair effects" in n for n in notes)
    # no negative binomial / beta-binomial: no observation is left over to identify it
    assert cfg.overdispersion == "none"
    assert f"no observation-level term: {NO_RESIDUAL}, leaving none to identify it" in notes
    text = structure_text(design, cfg)
    assert text.startswith("fixed effects only") and text.endswith("; no observation-level term")
    # an explicit one is kept, as asked, with a warning that says why it is not identified
    _, cfg2, notes2 = _resolve(panel, key, family, cfg=ModelConfig(overdispersion="negbin",
                                                                   ward_change=ward_change))
    assert cfg2.overdispersion == "negbin"
    assert any(f"the panel cannot identify it ({NO_RESIDUAL})" in n for n in notes2)


def test_the_observation_term_is_kept_where_observations_outnumber_mean_effects():
    """The rule counts effects; it is not "always off" for small panels."""
    # one ward per group, three periods: 6 observations, 5 fixed effects
    panel = simulate_panel("poisson", n_pairs=1, n_periods=3, seed=5)[0]
    _, cfg, notes = _resolve(panel)
    assert not cfg.ward_effects and cfg.overdispersion == "negbin"
    assert not any("observation-level" in n for n in notes)
    # ... but an event study spends one more effect per period: 6 and 6
    _, cfg_es, notes_es = _resolve(panel, event_study=True)
    assert cfg_es.overdispersion == "none"
    assert any("the 6 observations are all used by the model's 6 mean effects" in n for n in notes_es)
    # two wards per group, three periods, no ward change: 12 observations, 4 ward levels,
    # 2 period effects and the DiD
    panel = simulate_panel("binomial", n_pairs=2, n_periods=3, seed=5)[0]
    _, cfg2, notes2 = _resolve(panel, "out_of_work_benefits", "binomial",
                               cfg=ModelConfig(ward_change=False))
    assert cfg2.ward_effects and not cfg2.ward_change and cfg2.overdispersion == "negbin"
    assert not any("observation-level" in n for n in notes2)
    # the same wards over two periods with a ward change: each ward-period has its own effect
    panel = simulate_panel("binomial", n_pairs=2, seed=5)[0]
    _, cfg3, _ = _resolve(panel, "out_of_work_benefits", "binomial")
    assert cfg3.ward_change and cfg3.overdispersion == "none"


def test_residual_degrees_of_freedom_match_the_rank_of_the_mean_design():
    """The cheap count (cells absorbed, leverages) equals the brute-force one."""
    from nbdid.models.design import _residual_df

    def brute(d, levels, change):
        tr, post, t, w = d.treated.astype(float), d.post.astype(float), d.period_idx, d.ward_idx
        n_period = len(d.coords["period"])
        cols = [np.ones(d.n_obs), tr, tr * post] + [(t == k) * 1.0 for k in range(1, n_period)]
        x = d.cov_ward[w] + d.cov_tv
        cols += [*x.T, *(post[:, None] * x).T, *((tr * post)[:, None] * x).T]
        cols += [(d.pair_idx == k) * 1.0 for k in range(len(d.coords["pair"]))]
        wards = range(len(d.coords["ward"]))
        cols += [(w == k) * 1.0 for k in wards if levels]
        cols += [(w == k) * post for k in wards if levels and change and d.ward_has_change[k]]
        X = np.column_stack(cols)
        h = np.diag(X @ np.linalg.pinv(X))
        return np.linalg.matrix_rank(X), {g: np.sum(1 - h[d.ward_group[w] == g]) for g in ("nbi", "benchmark")}

    panel = simulate_panel("poisson", n_pairs=3, n_periods=3, controls_per_set=2, covariate="imd", seed=8)[0]
    panel = panel.drop(index=panel.index[(panel["ward"] == panel["ward"].iloc[0]) & (panel["post"] == 0)])
    panel["tv"] = np.random.default_rng(0).normal(size=len(panel))
    design = build_design(panel, "crime", "poisson", covariates=("imd", "tv"), interact=("imd", "tv"))
    assert design.pair_effects and design.partial_wards
    for levels, change in ((False, False), (True, False), (True, True)):
        rank, by_group = brute(design, levels, change)
        got = _residual_df(design, levels=levels, change=change)
        assert got.n_mean == rank and got.total == design.n_obs - rank
        assert got.by_group == pytest.approx(by_group)


def test_small_group_shares_one_change_sd():
    panel = simulate_panel("poisson", n_pairs=2, controls_per_set=4, seed=6)[0]
    _, cfg, notes = _resolve(panel)
    assert cfg.ward_change and not cfg.group_change_sd
    assert any("one ward-change SD for both groups: the nbi group has 2" in n for n in notes)


def test_gaussian_without_known_sd_drops_the_ward_change_for_a_residual():
    panel = simulate_panel("gaussian", indicator="score", n_pairs=6, base=3.0, seed=7)[0]
    design, cfg, notes = _resolve(panel, "score", "gaussian")
    assert cfg.ward_change and design.family.structure(design.arrays) == ("known sd",)
    panel["sd"] = np.nan
    design, cfg, notes = _resolve(panel, "score", "gaussian")
    assert not cfg.ward_change and cfg.ward_effects
    assert any("residual SD takes the ward change's place (one per group)" in n for n in notes)
    assert "residual SD estimated per group" in structure_text(design, cfg)
    # three periods: the residual and the ward change are both identified
    panel3 = simulate_panel("gaussian", indicator="score", n_pairs=6, n_periods=3, base=3.0, seed=7)[0]
    panel3["sd"] = np.nan
    _, cfg3, notes3 = _resolve(panel3, "score", "gaussian")
    assert cfg3.ward_change and notes3 == ()
    # each ward seen once: the residual is the ward-level term
    _, cfg1, notes1 = _resolve(_cross_section(panel), "score", "gaussian", pair_effects=False)
    assert not cfg1.ward_effects and any("no random ward levels" in n for n in notes1)


def test_gaussian_without_known_sd_and_no_residual_left_is_refused():
    """One ward per group over two periods: the residual SD cannot be estimated, and a
    Gaussian likelihood cannot do without it, so the panel is refused in one line."""
    panel = simulate_panel("gaussian", indicator="score", n_pairs=1, base=3.0, seed=7)[0]
    design, cfg, notes = _resolve(panel, "score", "gaussian")  # a known sd: fixed effects only
    assert not cfg.ward_effects and cfg.overdispersion == "none"
    assert f"no observation-level term: {NO_RESIDUAL}, leaving none to identify it" in notes
    assert "sigma_wp" not in structure_text(design, cfg) and "no observation-level term" in structure_text(design, cfg)
    panel["sd"] = np.nan
    for model_cfg in (ModelConfig(), ModelConfig(ward_change=False), ModelConfig(ward_effects=False)):
        with pytest.raises(DesignError) as err:
            _resolve(panel, "score", "gaussian", cfg=model_cfg)
        msg = str(err.value)
        assert "\n" not in msg
        assert msg == ("score: a gaussian outcome without a known sd needs an estimated residual SD, "
                       f"but {NO_RESIDUAL}, leaving none to estimate it; give the sd column, or "
                       "more wards or periods")
    # three periods leave one residual degree of freedom: one residual SD, not one per group
    panel3 = simulate_panel("gaussian", indicator="score", n_pairs=1, n_periods=3, base=3.0, seed=7)[0]
    panel3["sd"] = np.nan
    design3, cfg3, notes3 = _resolve(panel3, "score", "gaussian")
    assert not cfg3.ward_effects and not cfg3.group_change_sd
    assert any(n.startswith("one residual SD for both groups: the nbi group's observations leave "
                            "less than one degree of freedom") for n in notes3)
    text = structure_text(design3, cfg3)
    assert "residual SD estimated" in text and "per group" not in text


def test_notes_reach_the_fit_its_attributes_and_the_printed_summary(tmp_path, capsys):
    """A cross-sectional panel through ``nbdid fit``: the decisions are printed and stored."""
    import arviz as az

    from nbdid.cli import main

    # Crowder's seeds (tests/reference/glmm): each plate is seen in one period only.  The
    # command line fits through the process-wide compiled-model cache, which
    # tests/test_reference_glmm.py uses too: one compilation serves both files.
    path = Path(__file__).resolve().parent / "reference" / "glmm" / "seeds_panel.csv"
    rc = main(["fit", "--data", str(path), "--indicator", "germination", "--family", "binomial",
               "--no-pairs", "--out", str(tmp_path / "res"), "--draws", "100", "--tune", "100",
               "--chains", "2", "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "no ward change: no ward is seen both before and after" in out
    assert "model: ward levels" in out and "priors: intercept ~ normal(" in out
    idata = az.from_netcdf(tmp_path / "res" / "germination.nc")
    assert "no ward is seen both before and after" in idata.attrs["nbdid_structure_notes"]
    assert "ward_change" not in idata.posterior
    summary = pd.read_csv(tmp_path / "res" / "summary.csv")
    assert summary["notes"].str.contains("repeated cross-section").all()
