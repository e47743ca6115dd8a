"""Sensitivity sweep: the sweep file, grid expansion, designs, summary and figure (no fits)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nbdid.analysis.sensitivity import (
    Spec,
    conclusion,
    derived_seed,
    expand_specs,
    load_sweep_config,
    main_spec,
    parse_sweep_config,
    resolve_spec,
    set_imbalance,
    spec_hash,
    summarise_sweep,
)
from nbdid.config import ModelConfig
from nbdid.data_prep.candidates import load_candidate_pool
from nbdid.data_prep.synthetic import load_default_panel
from nbdid.errors import InputError
from nbdid.workflow.sweep import SpecTask, build_tasks, plan_lanes, resolve_task, size_hint

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "sensitivity.toml"

GRID = """
[sweep]
indicators = ["crime", "property_price"]
seed = 5
[sweep.sampler]
draws = 200
[grid.matching]
published = true
covariates = [["mean_rank"], ["mean_rank", "share_most_deprived_decile"]]
distance = ["mahalanobis", "propensity", "euclidean"]
caliper = [false, 0.5]
[grid.sample]
drop_poor_balance = [false, 0.25]
drop_boundary_changes = [false, true]
[grid.model]
pair_effects = [true, false]
prior_scale = [1.0, 2.0]
"""


@pytest.fixture(scope="module")
def pool():
    return load_candidate_pool()


# ----------------------------------------------------------------------------------------
# the sweep file
# ----------------------------------------------------------------------------------------


def test_parse_full_grid():
    cfg = parse_sweep_config(GRID, file="s.toml")
    assert cfg.sweep.indicator_keys == ("crime", "property_price")
    assert cfg.sweep.sampler.draws == 200
    assert cfg.sweep.sampler.tune == 500 and cfg.sweep.sampler.chains == 4  # sweep defaults
    assert cfg.matching.caliper == (False, 0.5)
    assert dict(cfg.model.choices) == {"pair_effects": (True, False), "prior_scale": (1.0, 2.0)}


def test_scalars_are_single_choices():
    cfg = parse_sweep_config("""
[grid.matching]
covariates = ["mean_rank", "share_most_deprived_decile"]
distance = "propensity"
caliper = 0.2
[grid.sample]
drop_boundary_changes = true
[grid.model]
overdispersion = "negbin"
""")
    assert cfg.matching.covariates == (("mean_rank", "share_most_deprived_decile"),)
    assert cfg.matching.distance == ("propensity",)
    assert cfg.matching.caliper == (0.2,)
    assert cfg.sample.drop_boundary_changes == (True,)
    assert dict(cfg.model.choices) == {"overdispersion": ("negbin",)}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[sweep]\nseeed = 1\n", r"unknown setting 'sweep.seeed' \(did you mean 'sweep.seed'\?\)"),
        ("[grid.matching]\ndistance = ['manhattan']\n", r"'grid.matching.distance' must be one of"),
        ("[grid.matching]\ncaliper = [true]\n", r"'grid.matching.caliper'"),
        ("[grid.matching]\ncaliper = [-1.0]\n", r"'grid.matching.caliper'"),
        ("[grid.matching]\nratio = [0]\n", r"'grid.matching.ratio'"),
        ("[grid.sample]\ndrop_poor_balance = [true]\n", r"'grid.sample.drop_poor_balance'"),
        ("[grid.model]\noverdispersion = ['poisson']\n", r"'grid.model.overdispersion' must be one of"),
        ("[grid.model]\npair_efects = [true]\n", r"'grid.model.pair_efects'.*did you mean 'grid.model.pair_effects'"),
        ("[grid.model]\nprior_scale = [0.0]\n", r"'grid.model.prior_scale' values must be positive"),
        ("[grid.model]\npair_effects = [true, true]\n", r"lists a value twice"),
        ("[grid.model]\nevent_study = [true]\n", r"unknown setting 'grid.model.event_study'"),
        ("[sweep.sampler]\nseed = 3\n", r"sweep.seed"),
        ("[sweep.sampler]\ndraws = 'many'\n", r"'sweep.sampler.draws' must be a whole number"),
        ("[sweep]\nindicators = ['crimes']\n", r"unknown indicator 'crimes'"),
        ("[grid.matching]\npublished = false\n", r"gives no design"),
        ("[grids]\n", r"unknown setting 'grids'"),
        ("[sweep\n", r"not valid TOML"),
    ],
)
def test_config_errors_name_file_and_key(text, match):
    with pytest.raises(InputError, match=match) as err:
        parse_sweep_config(text, file="my_sweep.toml")
    assert err.value.file == "my_sweep.toml"
    assert "my_sweep.toml" in str(err.value)


def test_load_sweep_config_paths(tmp_path):
    (tmp_path / "s.toml").write_text('[sweep]\npanel = "data/p.csv"\ncandidates = "c.csv"\n',
                                     encoding="utf-8")
    cfg = load_sweep_config(tmp_path / "s.toml")
    assert cfg.sweep.panel == str((tmp_path / "data" / "p.csv").resolve())
    assert cfg.sweep.candidates == str((tmp_path / "c.csv").resolve())
    with pytest.raises(InputError, match="not found"):
        load_sweep_config(tmp_path / "missing.toml")


def test_example_file_is_valid_and_big_enough(pool):
    cfg = load_sweep_config(EXAMPLE)
    specs, tasks, _ = build_tasks(cfg, pool)
    assert len(specs) >= 20
    assert not [r.error for r in (resolve_task(t, pool) for t in tasks) if r.error]


# ----------------------------------------------------------------------------------------
# grid expansion
# ----------------------------------------------------------------------------------------


def test_grid_expansion_count():
    cfg = parse_sweep_config(GRID)
    specs = expand_specs(cfg)
    # (published + 2 covariate sets x 3 distances x 2 calipers) x (2 x 2 samples)
    # x (2 x 2 models); the main specification is one of them
    n_match = 1 + 2 * 3 * 2
    assert len(specs) == n_match * 4 * 4
    assert specs[0] == main_spec(cfg)
    assert len(set(specs)) == len(specs)


def test_leave_one_pair_out_counts():
    base = "[grid.matching]\ncovariates = [['mean_rank']]\n[grid.model]\npair_effects = [true, false]\n"
    n0 = len(expand_specs(parse_sweep_config(base)))
    assert n0 == 2 * 2
    main = expand_specs(parse_sweep_config(base + "[grid.sample]\nleave_one_pair_out = 'main'\n"))
    assert len(main) == n0 + 29
    assert sorted(s.drop_pair for s in main if s.drop_pair is not None) == list(range(1, 30))
    every = expand_specs(parse_sweep_config(base + "[grid.sample]\nleave_one_pair_out = 'all'\n"),
                         pairs=[1, 2, 3])
    assert len(every) == n0 * (1 + 3)


def test_replacement_implies_no_pair_effects():
    cfg = parse_sweep_config("""
[grid.matching]
published = false
covariates = [["mean_rank"]]
replace = [false, true]
[grid.model]
pair_effects = [true, false]
""")
    specs = expand_specs(cfg, has_published=False)
    # replace=true with pair effects on and off collapse into one specification
    assert len(specs) == 3
    assert all(s.pair_effects is False for s in specs if s.replace)


def test_prior_scale_multiplies_prior_scales():
    from nbdid.models.design import build_design, resolve_model_config
    from nbdid.models.simulate import simulate_panel

    base = ModelConfig()
    cfg = Spec(model=(("prior_scale", 2.0),)).model_config(base)
    assert cfg.prior_scale == 2.0
    design = build_design(simulate_panel("poisson", n_pairs=4, seed=1)[0], "crime", "poisson")
    wide, plain = resolve_model_config(design, cfg).priors, resolve_model_config(design, base).priors
    assert wide.did.params[1] == 2 * plain.did.params[1]
    assert wide.period.params[1] == 2 * plain.period.params[1]
    assert wide.sigma_ward.params[0] == 2 * plain.sigma_ward.params[0]
    assert wide.sigma_pair.params[0] == 2 * plain.sigma_pair.params[0]
    assert wide.intercept == plain.intercept  # data-centred, not scaled


def test_spec_hash_is_stable_and_specific():
    a = Spec(matching="matched", covariates=("mean_rank",), distance="mahalanobis",
             method="greedy")
    assert spec_hash(a, "ctx") == spec_hash(dataclasses.replace(a), "ctx")
    assert spec_hash(a, "ctx") != spec_hash(a, "other data")
    assert spec_hash(a, "ctx") != spec_hash(dataclasses.replace(a, distance="propensity"), "ctx")
    assert len({derived_seed(1, "x", k) for k in "abcdef"}) == 6
    assert derived_seed(1, "x", "a") == derived_seed(1, "x", "a")


# ----------------------------------------------------------------------------------------
# designs
# ----------------------------------------------------------------------------------------


def test_main_spec_reproduces_default_panel(pool):
    res = resolve_spec(Spec(), pool)
    pd.testing.assert_frame_equal(res.panel, load_default_panel())
    assert res.n_sets == 29


def test_matched_design_uses_pool_controls(pool):
    spec = Spec(matching="matched", covariates=("mean_rank", "share_most_deprived_decile"),
                distance="mahalanobis", method="greedy")
    res = resolve_spec(spec, pool)
    assert res.error == ""
    assert res.n_sets == 29 and res.n_wards == 58
    controls = set(res.sets["control_ward"])
    assert len(controls) == 29
    assert controls & {w for w in pool.covariates["ward"] if w.startswith("SYN-C")}
    # sets are numbered by the NBI ward's published pair
    nbi_pair = pool.covariates.set_index("ward")["published_pair"]
    assert (res.sets["set"] == res.sets["treated_ward"].map(nbi_pair)).all()
    # matching on the covariates balances them better than the published pairs
    assert res.max_abs_smd < resolve_spec(Spec(), pool, balance_covariates=spec.covariates).max_abs_smd


def test_drop_boundary_changes(pool):
    cov = pool.covariates.set_index("ward")
    res = resolve_spec(Spec(drop_boundary_changes=True), pool)
    wards = set(res.panel["ward"])
    assert not cov.loc[list(wards), "boundary_changed"].any()
    # a published pair is dropped when either ward changed
    changed_pairs = set(cov.loc[cov["boundary_changed"] & cov["published_pair"].notna(),
                                "published_pair"])
    assert res.n_sets == 29 - len(changed_pairs)


def test_drop_pair_and_poor_balance(pool):
    res = resolve_spec(Spec(drop_pair=7), pool)
    assert 7 not in set(res.panel["pair"]) and res.n_sets == 28
    covs = ("mean_rank",)
    cov = pool.covariates.set_index("ward")
    # independent imbalance of each published pair on one covariate
    t = cov[cov["group"] == "nbi"]["mean_rank"]
    c = cov[cov["group"] == "benchmark"]["mean_rank"]
    sd = np.sqrt((t.var() + c.var()) / 2)
    pub = pool.covariates[pool.covariates["published_pair"].notna()]
    wide = pub.pivot(index="published_pair", columns="group", values="mean_rank")
    imb = (wide["nbi"] - wide["benchmark"]).abs() / sd
    keep = set(imb.index[imb <= 0.5].astype(int))
    res = resolve_spec(Spec(drop_poor_balance=0.5), pool, balance_covariates=covs)
    assert set(res.sets["set"]) == keep
    sets = resolve_spec(Spec(), pool).sets
    got = set_imbalance(sets, pool.treated, pool.controls, covs)
    np.testing.assert_allclose(got.sort_index().to_numpy(), imb.sort_index().to_numpy())


def test_matching_failure_is_recorded(pool):
    spec = Spec(matching="matched", covariates=("mean_rank",), distance="mahalanobis",
                method="greedy", caliper=1e-9)
    res = resolve_spec(spec, pool)
    assert res.panel is None and "matched set" in res.error


def test_build_tasks_groups_by_shape(pool):
    cfg = parse_sweep_config(GRID)
    specs, tasks, _ = build_tasks(cfg, pool)
    assert len(tasks) == len(specs)
    assert len({t.spec_id for t in tasks}) == len(tasks)
    assert tasks[0].is_main and not any(t.is_main for t in tasks[1:])
    # lanes are planned before any panel is built: on the model settings, indicators and
    # the choices that decide the design sizes
    assert [t.signature for t in tasks] == [
        (dataclasses.astuple(t.model), cfg.sweep.indicator_keys, size_hint(t.spec)) for t in tasks]
    assert size_hint(tasks[0].spec) == ("sets", 1, False, False)  # the report's 29 pairs
    lanes = plan_lanes(tasks, 2)
    assert len(lanes) == 2
    owner = {}
    for i, lane in enumerate(lanes):
        for t in lane:
            owner.setdefault(t.signature, set()).add(i)
    # a signature is split over lanes only when its group is large
    sizes = pd.Series([t.signature for t in tasks]).value_counts()
    for sig, lanes_used in owner.items():
        assert len(lanes_used) == 1 or sizes[sig] >= 8


def test_plan_lanes_splits_one_big_group():
    tasks = [SpecTask(spec_id=str(i), is_main=False, spec=Spec(), choices={}, indicators=(),
                      sampler=None, model=None, diagnostics=None, seed=1,
                      signature=("same",)) for i in range(20)]
    lanes = plan_lanes(tasks, 2)
    assert [len(x) for x in lanes] == [10, 10]
    assert [len(x) for x in plan_lanes(tasks[:5], 2)] == [5]


# ----------------------------------------------------------------------------------------
# summary and figure
# ----------------------------------------------------------------------------------------


def _results() -> pd.DataFrame:
    # crime (lower is better): 4 specifications
    est = [-5.0, -3.0, 1.0, 4.0]
    lo = [-8.0, -6.0, -2.0, 0.5]
    hi = [-1.0, 1.0, 3.0, 7.0]
    pb = [0.99, 0.95, 0.3, 0.01]
    return pd.DataFrame({
        "spec_id": list("abcd"), "is_main": [False, True, False, False],
        "matching": ["published", "published", "matched", "matched"],
        "pair_effects": ["true", "false", "true", "false"],
        "indicator": "crime", "estimate": est, "lower": lo, "upper": hi, "prob_benefit": pb,
        "gate": ["passed", "passed", "FAILED: R-hat", "passed"], "n_pairs": 29, "n_wards": 58,
        "max_abs_smd": 0.1, "scale": "per 1,000 population", "seconds": 1.0, "error": "",
        "synthetic": True, "notice": "SYNTHETIC",
    })


def test_summarise_sweep_shares():
    s = summarise_sweep(_results()).iloc[0]
    assert s["n_specs"] == 4 and s["n_fitted"] == 4 and s["n_gate_failed"] == 1
    assert s["share_benefit"] == 0.25  # only a's interval is below zero
    assert s["share_harm"] == 0.25  # d's is above zero (crime rising is harm)
    assert s["share_prob_benefit_gt_0_9"] == 0.5
    assert s["main_conclusion"] == "unclear" and s["main_estimate"] == -3.0
    assert s["share_main_conclusion"] == 0.5
    assert not s["main_holds"]
    assert s["notice"] == "SYNTHETIC"
    assert s["report_conclusion"] in ("benefit", "harm", "unclear")


def test_printed_summary_counts_gate_failures():
    from nbdid.workflow.sweep import format_sweep_summary as format_summary

    text = format_summary(summarise_sweep(_results()))
    header, row = text.splitlines()[:2]
    cols = header.split()
    assert cols[:4] == ["indicator", "specs", "gate", "x"]
    assert row.split()[:3] == ["crime", "4", "1"]


def test_summary_holds_threshold():
    r = _results().assign(lower=-10.0, upper=10.0)
    s = summarise_sweep(r, robust_share=0.9).iloc[0]
    assert s["main_conclusion"] == "unclear" and s["share_main_conclusion"] == 1.0 and s["main_holds"]


def test_conclusion_direction():
    assert conclusion(-3, -1, lower_is_better=True) == "benefit"
    assert conclusion(-3, -1, lower_is_better=False) == "harm"
    assert conclusion(1, 3, lower_is_better=False) == "benefit"
    assert conclusion(-1, 3, lower_is_better=False) == "unclear"
    assert conclusion(np.nan, 3, lower_is_better=False) == "not fitted"


def test_specification_curve_smoke():
    from nbdid.figures import plot_specification_curve
    from nbdid.figures.specification_curve import choice_rows

    r = _results()
    r.loc[2, ["estimate", "lower", "upper"]] = np.nan  # one spec could not be fitted
    fig = plot_specification_curve(r, choices=["matching", "pair_effects"])
    top, bottom = fig.axes[:2]
    assert "3 specifications; 1 not fitted" in top.get_title()
    labels = [t.get_text() for t in bottom.get_yticklabels()]
    assert labels == ["matching: matched", "matching: published", "pair_effects: false",
                      "pair_effects: true"]
    assert fig.texts and "SYNTHETIC" in fig.texts[0].get_text() or "SYNTHETIC" in fig._suptitle.get_text()
    rows = choice_rows(pd.DataFrame({"distance": ["-", "mahalanobis"], "x": ["a", "b"]}),
                       ["distance", "x"])
    assert rows == [("x", "a"), ("x", "b")]


def test_ratio_two_gives_matched_sets_of_three(pool):
    spec = Spec(matching="matched", covariates=("mean_rank", "share_most_deprived_decile"),
                distance="mahalanobis", method="greedy", ratio=2)
    res = resolve_spec(spec, pool)
    assert res.error == ""
    assert res.n_sets == 29 and res.n_wards == 29 * 3
    # without replacement: 58 different controls, each in one set
    assert res.sets["control_ward"].nunique() == 58
    wards = res.panel.drop_duplicates("ward")
    per_set = wards.groupby("pair")["group"].value_counts().unstack()
    assert (per_set["nbi"] == 1).all() and (per_set["benchmark"] == 2).all()
    # matched sets keep their pair effects (only replacement drops them)
    assert res.panel["pair"].notna().all()


def test_forms_are_chosen_on_each_specifications_design(pool):
    """Each specification gets the centred/non-centred forms ``nbdid fit`` would choose
    on its own design, and specifications share a compiled model only with equal forms."""
    from nbdid.models.design import build_design
    from nbdid.registry import INDICATORS

    cfg = parse_sweep_config(GRID)
    _, tasks, _ = build_tasks(cfg, pool)
    built = [r for r in (resolve_task(t, pool) for t in tasks) if r.panel is not None]
    seen_forms = set()
    for t in built[:12]:
        for key in cfg.sweep.indicator_keys:
            d = build_design(t.panel, key, INDICATORS[key].family,
                             pair_effects=t.model.pair_effects)
            want = {"level": d.parameterization, "change": d.change_parameterization,
                    "pair": d.pair_parameterization}
            assert t.parameterization[key] == want, (t.spec_id, key)
            seen_forms.add(tuple(sorted(want.items())))
    by_sig: dict = {}
    for t in built:
        by_sig.setdefault(t.signature, set()).add(
            tuple(sorted((k, tuple(sorted(v.items()))) for k, v in t.parameterization.items())))
    assert all(len(forms) == 1 for forms in by_sig.values())
