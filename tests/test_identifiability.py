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


def test_one_ward_per_group_fits_fixed_effects_only():
    panel = simulate_panel("poisson", n_pairs=1, seed=5)[0]
    design, cfg, notes = _resolve(panel)
    assert not design.pair_effects  # one matched set: no SD of pair effects
    assert not cfg.ward_effects and not cfg.ward_change
    assert any("fixed effects only: each group has one ward" in n for n in notes)
    assert any("no pair effects" in n for n in notes)
    assert structure_text(design, cfg).startswith("fixed effects only")


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
