"""Figures: print size, fonts >= 8 pt, no overlapping text, banner, marks, saving.

Every figure function is drawn from tiny hand-made data (an InferenceData built with
``az.from_dict`` where one is needed; no MCMC) and checked against the print rules of
:mod:`nbdid.figures.style` with :func:`nbdid.figures.checks.print_problems`.
"""

from __future__ import annotations

import struct

import arviz as az
import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from nbdid.analysis.comparison import forest_data, report_did_table
from nbdid.analysis.concordance import published_intervals
from nbdid.analysis.figure_tables import forest_table
from nbdid.data_prep.published import load_report_values
from nbdid.figures import (
    figure_bytes,
    plot_balance,
    plot_concordance,
    plot_diagnostics,
    plot_forest,
    plot_pair_differences,
    plot_ppc,
    plot_ppc_arviz,
    plot_rank,
    plot_specification_curve,
    plot_tipping_bayes,
    plot_trajectories,
    plot_ward_changes,
    save_figure,
)
from nbdid.figures.checks import (
    font_problems,
    has_synthetic_banner,
    layout_problems,
    print_problems,
    size_problems,
)
from nbdid.figures.diagnostics import PPC_VALUE_COLOURS, RANK_VARIABLES
from nbdid.figures.style import (
    DOUBLE_COLUMN_MM,
    FAILED_MARK,
    OKABE_ITO,
    PNG_DPI,
    SINGLE_COLUMN_MM,
    VERDICT_MARKS,
    figsize,
    indicator_label,
    indicator_unit,
    new_figure,
    size_mm,
)
from nbdid.models.priors import PRIOR_VARIABLES
from nbdid.provenance import SYNTHETIC_NOTICE
from nbdid.registry import INDICATORS

# ----------------------------------------------------------------------------------------
# tiny data
# ----------------------------------------------------------------------------------------


def _texts(fig: Figure) -> str:
    from matplotlib.text import Text

    return "\n".join(t.get_text() for t in fig.findobj(Text))


LONG_GATE = ("R-hat 1.043 > 1.01; bulk ESS 87 < 400; tail ESS 131 < 400; 12 divergences > 0; "
             "posterior predictive check ppp_total_nbi_2011=0.998, ppp_var_2021=0.002; "
             "prior-data conflict for did (prior normal(0, 0.5), sensitivity 0.12/0.08)")
"""The reasons of a gate that failed on every count, as :func:`nbdid.analysis.diagnostics`
writes them (after ``"FAILED: "``)."""
PRIOR_GATE = "prior-data conflict for did (prior normal(0, 0.5), sensitivity 0.12/0.08)"


def _comparison() -> pd.DataFrame:
    rep = report_did_table()
    n = len(rep)
    return rep.assign(
        title=[INDICATORS[k].title for k in rep.indicator],
        unit=[INDICATORS[k].unit for k in rep.indicator],
        posterior_did=rep.report_did * 0.5,
        **{"posterior_q2.5": rep.report_did - 10 * rep.report_did.abs() / 5 - 1,
           "posterior_q97.5": rep.report_did + 10 * rep.report_did.abs() / 5 + 1},
        prob_benefit=0.7,
        posterior_significant=[True, False, True] + [False] * (n - 3),
        posterior_better=[True, True, False] + [True] * (n - 3),
        gate=["passed"] * (n - 1) + ["FAILED: R-hat 1.05 > 1.01"],
        synthetic=True,
    )


def _concordance() -> pd.DataFrame:
    rows = []
    for key, shift in (("crime", -8.0), ("burglary", -1.0), ("property_price", 9000.0)):
        for i, m in enumerate(("report_pooled", "glm_cluster", "randomization", "paired_t",
                               "bayes")):
            est = shift * (1 + 0.1 * i)
            half = abs(shift) * (0.4 + 0.3 * i)
            row = {"indicator": key, "method": m, "estimate": est, "lower": est - half,
                   "upper": est + half, "significant": est + half < 0 or est - half > 0,
                   "better": est < 0 if INDICATORS[key].lower_is_better else est > 0,
                   "gate": "", "note": "", "synthetic": True}
            if m == "bayes":
                row["gate"] = "FAILED: 3 divergences > 0" if key == "burglary" else "passed"
                row["significant"] = False
            if m == "paired_t" and key == "property_price":
                row.update(estimate=np.nan, lower=np.nan, upper=np.nan, significant=pd.NA,
                           note="not computed: no posterior")
            rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tipping_curve() -> pd.DataFrame:
    from nbdid.analysis.tipping_bayes import tipping_bayes_curve

    return tipping_bayes_curve(n_tau=41)


def _sweep(n: int = 12) -> pd.DataFrame:
    est = np.linspace(-6.0, 3.0, n)
    return pd.DataFrame({
        "spec_id": [f"s{i:02d}" for i in range(n)], "is_main": [i == 3 for i in range(n)],
        "matching": ["published", "matched"] * (n // 2), "pair_effects": ["true"] * n,
        "prior_scale": ["0.5", "1", "2"] * (n // 3),
        "indicator": "crime", "estimate": est, "lower": est - 2.5, "upper": est + 2.5,
        "prob_benefit": 0.5, "gate": ["passed"] * (n - 1) + ["FAILED: R-hat"], "n_pairs": 29,
        "n_wards": 58, "max_abs_smd": 0.1, "scale": "per 1,000 population", "seconds": 1.0,
        "error": "", "synthetic": True, "notice": SYNTHETIC_NOTICE,
    })


def _balance() -> pd.DataFrame:
    return pd.DataFrame({"covariate": ["mean_rank", "share_most_deprived_decile", "population"],
                         "smd_before": [0.8, -0.4, 0.3], "smd_after": [0.05, -0.02, 0.09]})


def _trajectories() -> tuple[pd.DataFrame, pd.DataFrame]:
    vals = load_report_values()
    crime = vals[vals.indicator == "crime"]
    return crime.assign(mean=crime.value, lower=crime.value - 3, upper=crime.value + 3), crime


def _diagnostics() -> pd.DataFrame:
    return pd.DataFrame({
        "indicator": ["crime", "burglary", "property_price"], "passed": [True, False, True],
        "rhat_max": [1.002, 1.05, 1.004], "ess_bulk_min": [1510.7, 212.3, 3876.2],
        "ess_tail_min": [1800.0, 350.9, 2999.4], "divergences": [0, 4, 0],
        "bfmi_min": [0.9, 0.25, 0.8], "ppp_total_nbi_2011": [0.5, 0.995, 0.4],
        "ppp_var_2011": [0.3, 0.2, 0.7],
    })


def _ppc_table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    parts = []
    for stat, kind, label, obs, loc, sd in (
        ("ppp_total_nbi_2011", "total", "Big Local/NBI 2011: total events", 51_000, 51_200, 300),
        ("ppp_total_nbi_2021", "total", "Big Local/NBI 2021: total events", 45_000, 46_000, 3000),
        ("ppp_var_2011", "variance", "2011: variance between wards", 0.16, 0.16, 0.004),
    ):
        rep = rng.normal(loc, sd, 400)
        parts.append(pd.DataFrame({"indicator": "crime", "statistic": stat, "kind": kind,
                                   "group": "", "period": "", "label": label,
                                   "draw": np.arange(400), "replicated": rep, "observed": obs,
                                   "p_value": float(np.mean(rep > obs))}))
    return pd.concat(parts, ignore_index=True)


def _idata(chains: int = 4, draws: int = 60) -> az.InferenceData:
    rng = np.random.default_rng(1)
    shape = (chains, draws)
    return az.from_dict(
        posterior={"did": rng.normal(-0.1, 0.05, shape), "sigma_ward": rng.gamma(4, 0.1, shape),
                   "sigma_change": rng.gamma(4, 0.05, shape), "sigma_pair": rng.gamma(4, 0.05, shape),
                   "ward_level": rng.normal(size=shape + (6,))},
        dims={"ward_level": ["ward"]},
    )


PRICE_RANK_VARIABLES = ("did", "sigma_ward", "sigma_change_nbi", "sigma_change_benchmark",
                        "sigma_pair", "sigma_wp", "nu")
"""The scalar free parameters of the default model of a price indicator (one ward-change
SD per group, a ward x period SD and the Student-t degrees of freedom)."""


def _idata_groups(names: tuple[str, ...] = PRICE_RANK_VARIABLES, chains: int = 4,
                  draws: int = 60) -> az.InferenceData:
    rng = np.random.default_rng(2)
    post = {v: rng.gamma(4, 0.1, (chains, draws)) for v in names}
    post["ward_change"] = rng.normal(size=(chains, draws, 6))
    return az.from_dict(posterior=post, dims={"ward_change": ["ward"]})


def _wards() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    n = 12
    mean = rng.normal(-10, 30, 2 * n)
    wards = pd.DataFrame({
        "indicator": "crime", "ward": [f"W{i:02d}" for i in range(2 * n)],
        "group": ["nbi", "benchmark"] * n, "pair": np.repeat(np.arange(1, n + 1), 2),
        "mean": mean, "q2.5": mean - 8, "q97.5": mean + 8, "observed": mean + rng.normal(0, 2, 2 * n),
        "scale": "per 1,000 population", "synthetic": True,
    })
    groups = pd.DataFrame({"indicator": "crime", "group": ["nbi", "benchmark"],
                           "mean": [-19.0, -10.5], "q2.5": [-21.0, -12.3], "q97.5": [-17.4, -8.8],
                           "observed": [-19.1, -10.5]})
    d = rng.normal(-8, 40, n)
    pairs = pd.DataFrame({
        "indicator": "crime", "pair": np.arange(1, n + 1), "mean": d, "q2.5": d - 15,
        "q97.5": d + 15, "conclusion": np.where(d + 15 < 0, "benefit",
                                                np.where(d - 15 > 0, "harm", "unclear")),
        "observed": d + 1, "synthetic": True,
    })
    return wards, groups, pairs


# every figure function, from tiny data: name -> (builder, synthetic?)
def _builders(tipping_curve: pd.DataFrame) -> dict:
    traj, report = _trajectories()
    wards, groups, pairs = _wards()
    return {
        "forest": (lambda: plot_forest(forest_table(_comparison())), True),
        "forest_plain": (lambda: plot_forest(forest_data(_comparison()), synthetic=False), False),
        "concordance": (lambda: plot_concordance(_concordance(), published=published_intervals()),
                        True),
        "tipping": (lambda: plot_tipping_bayes(tipping_curve), False),
        "tipping_one": (lambda: plot_tipping_bayes(tipping_curve[tipping_curve.indicator == "crime"]),
                        False),
        "spec_curve": (lambda: plot_specification_curve(
            _sweep(), choices=["matching", "pair_effects", "prior_scale"]), True),
        "balance": (lambda: plot_balance(_balance().assign(synthetic=True), title="Balance"), True),
        "trajectories": (lambda: plot_trajectories(traj, report=report,
                                                   gate="FAILED: 3 divergences > 0",
                                                   synthetic=True), True),
        "diagnostics": (lambda: plot_diagnostics(_diagnostics(), synthetic=True), True),
        "ppc": (lambda: plot_ppc(_ppc_table(), gate="passed", synthetic=False), False),
        "rank": (lambda: plot_rank(_idata(), indicator="crime", synthetic=True), True),
        "rank_groups": (lambda: plot_rank(_idata_groups(), indicator="property_price",
                                          synthetic=False), False),
        "ward_changes": (lambda: plot_ward_changes(wards, groups=groups), True),
        "pair_differences": (lambda: plot_pair_differences(pairs, did=(-8.6, -12.0, -5.0)), True),
    }


FIGURES = ("forest", "forest_plain", "concordance", "tipping", "tipping_one", "spec_curve",
           "balance", "trajectories", "diagnostics", "ppc", "rank", "rank_groups",
           "ward_changes", "pair_differences")


# ----------------------------------------------------------------------------------------
# print rules, for every figure
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIGURES)
def test_figure_meets_the_print_rules(name: str, tipping_curve: pd.DataFrame) -> None:
    build, synthetic = _builders(tipping_curve)[name]
    before_rc = dict(mpl.rcParams)
    before_figs = plt.get_fignums()
    fig = build()
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == before_figs  # no pyplot state
    assert dict(mpl.rcParams) == before_rc  # style applied through a context only
    w, h = size_mm(fig)
    assert min(abs(w - SINGLE_COLUMN_MM), abs(w - DOUBLE_COLUMN_MM)) < 0.5, w
    assert h <= 230.5
    assert print_problems(fig) == []
    assert has_synthetic_banner(fig) == synthetic
    if synthetic:
        assert SYNTHETIC_NOTICE.split(":")[0] in fig.get_suptitle()


def _png_dpi(png: bytes) -> float:
    """Pixels per metre of the PNG's pHYs chunk, in dots per inch."""
    i = png.index(b"pHYs")
    ppm = struct.unpack(">I", png[i + 4:i + 8])[0]
    return ppm * 0.0254


def test_saving_gives_png_at_300_dpi_pdf_and_svg_at_print_size(tmp_path) -> None:
    fig = plot_balance(_balance())
    w_mm, h_mm = size_mm(fig)
    blobs = figure_bytes(fig)
    assert set(blobs) == {"png", "pdf", "svg"}
    png = blobs["png"]
    assert png.startswith(b"\x89PNG")
    width_px, height_px = struct.unpack(">II", png[16:24])
    assert abs(width_px - w_mm / 25.4 * PNG_DPI) <= 1 and abs(height_px - h_mm / 25.4 * PNG_DPI) <= 1
    assert round(_png_dpi(png)) == PNG_DPI
    pdf = blobs["pdf"]
    assert pdf.startswith(b"%PDF") and b"/FontFile2" in pdf  # TrueType fonts, not Type 3
    assert b"/CreationDate" not in pdf
    svg = blobs["svg"].decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "<dc:date>" not in svg
    width_pt = float(svg.split('width="', 1)[1].split("pt", 1)[0])
    assert abs(width_pt / 72 * 25.4 - w_mm) < 0.5
    written = save_figure(fig, tmp_path / "figures" / "balance.png")
    assert sorted(p.name for p in written) == ["balance.pdf", "balance.png", "balance.svg"]
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "balance.pdf", "balance.png", "balance.svg"]  # no temporary files left
    for fmt in ("png", "pdf", "svg"):  # the same bytes: nothing time-stamped
        assert (tmp_path / "figures" / f"balance.{fmt}").read_bytes() == blobs[fmt], fmt


# ----------------------------------------------------------------------------------------
# the checker catches what a referee would
# ----------------------------------------------------------------------------------------


def test_checker_finds_small_text_overlaps_clipping_and_screen_sizes() -> None:
    big = Figure(figsize=(15, 12.5))
    big.add_subplot().set_title("small", fontsize=7)
    assert any("width" in p for p in size_problems(big))
    assert any("7.0 pt" in p for p in font_problems(big))
    fig = new_figure("single", 60)
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, "inside the data area", transform=ax.transAxes)
    fig.text(0.02, 0.02, "first", fontsize=8)
    fig.text(0.03, 0.02, "second overlapping", fontsize=8)
    fig.text(0.9, 0.5, "sticks out of the right edge", fontsize=8)
    problems = layout_problems(fig)
    assert any("overlaps the data area" in p for p in problems)
    assert any("'first'" in p and "overlaps" in p and "'second" in p for p in problems)
    assert any("sticks out" in p for p in problems)
    ok = new_figure("double", 50)
    ok.add_subplot().set_xlabel("fine")
    assert print_problems(ok) == []
    assert figsize("single", 1000)[1] * 25.4 == pytest.approx(230.0)


# ----------------------------------------------------------------------------------------
# style: labels, marks, palette
# ----------------------------------------------------------------------------------------


def test_indicator_labels_and_units_are_one_thing_everywhere() -> None:
    assert indicator_label("out_of_work_benefits") == "Out-of-Work Benefits (pp)"
    assert indicator_label("out_of_work_benefits", kind="level") == "Out-of-Work Benefits (%)"
    assert indicator_label("crime") == "Overall Crime Rate (per 1,000 pop.)"
    assert indicator_label("property_price") == "Average Property Price (£)"
    assert indicator_label("crime", kind="ratio") == "Overall Crime Rate (rate ratio)"
    assert indicator_label("my_key", fallback_unit="widgets") == "my_key (widgets)"
    assert indicator_unit("business_units") == INDICATORS["business_units"].short_unit
    # the forest and the concordance figure label an indicator the same way
    forest = _texts(plot_forest(forest_table(_comparison())))
    conc = _texts(plot_concordance(_concordance(), published=published_intervals()))
    for key in ("crime", "burglary", "property_price"):
        assert indicator_label(key) in forest and indicator_label(key) in conc
    assert "(%)" not in forest and "(%)" not in conc


def test_verdicts_are_carried_by_shape_and_fill_in_a_colour_blind_safe_palette() -> None:
    b, h, u = VERDICT_MARKS["benefit"], VERDICT_MARKS["harm"], VERDICT_MARKS["unclear"]
    assert len({b.marker, h.marker, FAILED_MARK.marker}) == 3
    assert b.filled and h.filled and not u.filled
    assert FAILED_MARK.linestyle != b.linestyle
    allowed = {c.upper() for c in OKABE_ITO.values()}
    assert {b.colour.upper(), h.colour.upper()} <= allowed
    # no red/green pair
    assert "#009E73" not in {b.colour.upper(), h.colour.upper()}


def _markers(ax) -> list[tuple[str, str]]:
    """(marker, face colour) of every single-point marker line on ``ax``."""
    out = []
    for line in ax.get_lines():
        if line.get_marker() not in ("None", "", None) and len(line.get_xdata()) == 1:
            out.append((line.get_marker(), mpl.colors.to_hex(line.get_markerfacecolor())))
    return out


def test_forest_reads_verdicts_and_marks_failed_fits() -> None:
    table = forest_table(_comparison())
    assert list(table["conclusion"][:3]) == ["benefit", "unclear", "harm"]
    fig = plot_forest(table)
    axes = fig.axes
    assert len(axes) == len(table)
    post = [_markers(a)[0] for a in axes]  # the posterior row is drawn first
    assert post[0] == ("o", VERDICT_MARKS["benefit"].colour.lower())
    assert post[1] == ("o", "#ffffff")
    assert post[2] == ("s", VERDICT_MARKS["harm"].colour.lower())
    assert post[-1][0] == FAILED_MARK.marker
    assert "DIAGNOSTICS FAILED" in axes[-1].get_title(loc="left")
    for key in table["indicator"]:
        assert any(a.get_title(loc="left").startswith(INDICATORS[key].title) for a in axes)
    # each panel has its own x axis in its indicator's unit (none squashed by another)
    spans = [np.diff(a.get_xlim())[0] for a in axes]
    assert max(spans) / min(spans) > 100
    with pytest.raises(ValueError, match="missing columns"):
        plot_forest(pd.DataFrame({"indicator": ["crime"]}))
    one = Figure()
    ax = one.add_subplot()
    assert plot_forest(forest_data(_comparison()).iloc[:1], ax=ax, synthetic=False) is one


def test_diagnostics_gate_summary_marks_failures_and_shows_integer_ess() -> None:
    fig = plot_diagnostics(_diagnostics(), synthetic=False)
    rhat_ax, bulk_ax = fig.axes[0], fig.axes[1]
    assert ("X", mpl.colors.to_hex(OKABE_ITO["vermillion"]).lower()) in _markers(rhat_ax)
    assert sum(m == "X" for m, _ in _markers(bulk_ax)) == 1  # only burglary's 212 < 400
    ess_labels = [t.get_text() for t in bulk_ax.get_xticklabels() if t.get_text()]
    assert ess_labels and all("." not in t for t in ess_labels)
    labels = [t.get_text() for t in rhat_ax.get_yticklabels()]
    assert "Burglary Rate: FAILED" in labels and "Overall Crime Rate: passed" in labels
    assert not fig.axes[0].tables  # a figure, not a table image


def test_tipping_prior_has_its_own_labelled_axis(tipping_curve: pd.DataFrame) -> None:
    crime = tipping_curve[tipping_curve.indicator == "crime"]
    fig = plot_tipping_bayes(crime)
    main, prior = fig.axes[:2]
    assert main is not prior and prior.get_ylabel() == "prior"
    assert prior.collections and not main.get_ylabel().startswith("prior")
    assert [t.get_text() for t in prior.get_yticklabels() if t.get_text()]  # a scale
    # on one given axes the prior goes to a twin axis with its own labelled scale
    one = Figure()
    ax = one.add_subplot()
    plot_tipping_bayes(crime, ax=ax)
    twin = [a for a in one.axes if a is not ax][0]
    assert twin.get_ylabel() == "prior density of the SD"


def test_ward_figures_draw_every_ward_and_pair(tipping_curve) -> None:
    wards, groups, pairs = _wards()
    fig = plot_ward_changes(wards, groups=groups, gate="FAILED: R-hat 1.05 > 1.01")
    ax = fig.axes[0]
    segs = sum(len(c.get_segments()) for c in ax.collections if hasattr(c, "get_segments"))
    assert segs == len(wards)
    assert "DIAGNOSTICS FAILED" in ax.get_title(loc="left")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Big Local/NBI (12 wards)",
                                                            "Benchmark (12 wards)"]
    fig = plot_pair_differences(pairs, did=(-8.6, -12.0, -5.0))
    marks = _markers(fig.axes[0])
    assert len(marks) == len(pairs)
    want = {VERDICT_MARKS[c].marker for c in pairs["conclusion"]}
    assert {m for m, _ in marks} == want
    with pytest.raises(ValueError, match="exactly one indicator"):
        plot_pair_differences(pd.concat([pairs, pairs.assign(indicator="burglary")]))


def test_specification_curve_reads_the_conclusion_column() -> None:
    r = _sweep()
    fig = plot_specification_curve(r.assign(conclusion="harm"), choices=["matching"])
    shapes = {m for m, _ in _markers(fig.axes[0]) if m != "D"}
    assert shapes == {VERDICT_MARKS["harm"].marker, FAILED_MARK.marker}
    labels = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert labels == ["matching: matched", "matching: published"]


def test_ppc_and_rank_plots() -> None:
    fig = plot_ppc(_ppc_table(), gate="FAILED: posterior predictive check ppp_var_2011=0.001")
    titles = [a.get_title(loc="left") for a in fig.axes if a.get_visible()]
    assert len(titles) == 3 and all("p\u00a0=\u00a0" in t for t in titles)
    assert "DIAGNOSTICS FAILED" in fig.subfigs[0].get_suptitle()
    assert all(a.patches for a in fig.axes if a.get_visible())  # histograms
    fig = plot_rank(_idata(), indicator="crime")
    panels = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title(loc="left") for a in panels] == [
        "DiD (link scale)", "SD of ward levels", "SD of ward changes", "SD of pair effects"]
    with pytest.raises(ValueError, match="not in the posterior"):
        plot_rank(_idata(), var_names=["nope"])


def test_rank_plots_show_every_variance_component_of_the_default_model() -> None:
    # the default model fits one ward-change SD per group: both get a rank panel
    fig = plot_rank(_idata_groups(), indicator="property_price")
    panels = [a for a in fig.axes if a.get_visible()]
    titles = [a.get_title(loc="left").replace("\n", " ") for a in panels]
    assert titles == [RANK_VARIABLES[v] for v in PRICE_RANK_VARIABLES]
    assert "SD of ward changes, NBI" in titles and "SD of ward changes, benchmark" in titles
    assert "Student-t degrees of freedom" in titles
    assert print_problems(fig) == []
    # every variance component a model can have (the variables carrying a prior on an SD)
    # is a rank variable, and so are the correlation and the degrees of freedom
    sds = {v for key, names in PRIOR_VARIABLES.items() if key.startswith("sigma") for v in names}
    assert sds | {"ward_corr", "nu", "did"} <= set(RANK_VARIABLES)
    every = tuple(v for v in RANK_VARIABLES if v != "sigma_change")  # no model has both
    fig = plot_rank(_idata_groups(every), indicator="business_units",
                    gate=f"FAILED: {LONG_GATE}")
    assert len([a for a in fig.axes if a.get_visible()]) == len(every)
    assert print_problems(fig) == []


def test_trajectories_and_failed_gate() -> None:
    traj, report = _trajectories()
    fig = plot_trajectories(traj, report=report, gate="FAILED: 3 divergences > 0", synthetic=True)
    text = _texts(fig)
    assert "Chart 3" in text and "DIAGNOSTICS FAILED" in text and has_synthetic_banner(fig)
    dashed = [ln for ln in fig.axes[0].get_lines() if ln.get_linestyle() == "--"]
    assert dashed  # failed fits are dashed, not only coloured
    vals = load_report_values()
    with pytest.raises(ValueError, match="exactly one indicator"):
        plot_trajectories(vals.assign(mean=1.0, lower=0.0, upper=2.0))


def test_legend_handles_match_marks() -> None:
    h = VERDICT_MARKS["harm"].handle()
    assert isinstance(h, Line2D) and h.get_marker() == "s"


def test_figures_draw_on_given_axes() -> None:
    wards, groups, pairs = _wards()
    traj, report = _trajectories()
    for draw in (lambda ax: plot_ward_changes(wards, groups=groups, ax=ax),
                 lambda ax: plot_pair_differences(pairs, ax=ax),
                 lambda ax: plot_trajectories(traj, report=report, ax=ax),
                 lambda ax: plot_balance(_balance(), ax=ax)):
        fig = Figure(figsize=(8, 4))
        ax = fig.add_subplot()
        assert draw(ax) is fig
        assert len(fig.axes) == 1 and ax.get_legend() is not None and not fig.legends
    fig = Figure(figsize=(8, 8))
    axes = fig.subplots(2, 3).ravel()
    assert plot_diagnostics(_diagnostics(), ax=axes) is fig
    with pytest.raises(ValueError, match="needs 6 axes"):
        plot_diagnostics(_diagnostics(), ax=axes[:2])


# ----------------------------------------------------------------------------------------
# fits that failed their gate: long reasons stay on the figure
# ----------------------------------------------------------------------------------------


def _failed_comparison() -> pd.DataFrame:
    comp = _comparison()
    n = len(comp)
    return comp.assign(gate=[f"FAILED: {LONG_GATE}" if i % 2 == 0 else "passed" for i in range(n)],
                       prior_gate=[PRIOR_GATE if i % 4 == 0 else "" for i in range(n)])


def _concordance_all(gate: str = f"FAILED: {LONG_GATE}") -> pd.DataFrame:
    """Every indicator, every method, intervals as wide as on the default panel (the
    randomization and GLM intervals several times the published one), the Bayesian fit
    failed."""
    rows = []
    for p in published_intervals().itertuples():
        half = (p.report_did_upper - p.report_did_lower) / 2
        for m, shift, width in (("report_pooled", 0.0, 1.0), ("glm_cluster", 0.2, 4.5),
                                ("randomization", 0.2, 3.5), ("paired_t", -0.4, 2.8),
                                ("bayes", 0.2, 4.5)):
            est = p.report_did * (1 + shift)
            lo, hi = est - width * half, est + width * half
            rows.append({"indicator": p.indicator, "method": m, "estimate": est, "lower": lo,
                         "upper": hi, "significant": hi < 0 or lo > 0,
                         "better": (est < 0) == INDICATORS[p.indicator].lower_is_better,
                         "gate": gate if m == "bayes" else "", "note": "", "synthetic": True})
    return pd.DataFrame(rows)


def _failed_builders() -> dict:
    traj_price = load_report_values().query("indicator == 'property_price'")
    traj_price = traj_price.assign(mean=traj_price.value, lower=traj_price.value * 0.9,
                                   upper=traj_price.value * 1.1)
    wards, groups, pairs = _wards()
    scale = 2500.0  # prices: tick labels like "−100,000" widen the y axis
    pairs_price = pairs.assign(indicator="property_price", **{
        c: pairs[c] * scale for c in ("mean", "q2.5", "q97.5", "observed")})
    gate = f"FAILED: {LONG_GATE}"
    conc = _concordance_all()
    return {
        "forest": lambda: plot_forest(forest_table(_failed_comparison())),
        "forest_data": lambda: plot_forest(forest_data(_failed_comparison()), synthetic=False),
        "concordance": lambda: plot_concordance(conc, published=published_intervals()),
        "concordance_two": lambda: plot_concordance(
            conc[conc.indicator.isin(["property_price", "business_units"])],
            published=published_intervals()),
        "concordance_one": lambda: plot_concordance(conc[conc.indicator == "property_price"],
                                                    published=published_intervals()),
        "trajectory_property_price": lambda: plot_trajectories(
            traj_price, report=traj_price, gate=gate, synthetic=True),
        "pairs_property_price": lambda: plot_pair_differences(
            pairs_price, did=(-20_000.0, -30_000.0, -10_000.0), gate=gate),
        "wards_property_price": lambda: plot_ward_changes(
            wards.assign(indicator="property_price"),
            groups=groups.assign(indicator="property_price"), gate=gate),
        "ppc": lambda: plot_ppc(_ppc_table(), gate=gate),
        "rank_property_price": lambda: plot_rank(_idata_groups(), indicator="property_price",
                                                 gate=gate, synthetic=True),
    }


@pytest.mark.parametrize("name", list(_failed_builders()))
def test_failed_fits_meet_the_print_rules_with_long_reasons(name: str) -> None:
    fig = _failed_builders()[name]()
    assert print_problems(fig) == []
    text = " ".join(_texts(fig).split())  # wrapped lines joined
    if name.startswith("concordance"):
        assert "gate FAILED" in text  # the short mark; the legend says what it means
    elif name == "forest_data":
        assert "DIAGNOSTICS FAILED" in text  # forest_data keeps only gate_passed
    else:
        assert "FAILED" in text and "12 divergences > 0" in text  # the gate's own reasons


@pytest.mark.parametrize("key", ["out_of_work_benefits", "crime", "property_price",
                                 "business_units"])
@pytest.mark.parametrize("table", ["forest_table", "forest_data"])
@pytest.mark.parametrize("failed", [False, True])
def test_one_indicator_forest_meets_the_print_rules(key: str, table: str, failed: bool) -> None:
    comp = _failed_comparison() if failed else _comparison()
    comp = comp[comp.indicator == key].assign(gate=f"FAILED: {LONG_GATE}" if failed else "passed")
    rows = (forest_table if table == "forest_table" else forest_data)(comp)
    fig = plot_forest(rows)
    assert len(fig.axes) == 1
    assert print_problems(fig) == []
    title = fig.axes[0].get_title(loc="left")
    assert ("FAILED" in title) == failed


def test_forest_failure_mark_is_on_the_first_line_and_the_reasons_below() -> None:
    fig = plot_forest(forest_table(_failed_comparison()))
    titles = [a.get_title(loc="left") for a in fig.axes]
    first = titles[0].split("\n")
    assert first[0].endswith("PRIOR CHECK FAILED")
    assert " ".join(first[1:]).startswith(f"({PRIOR_GATE}; R-hat 1.043")
    assert titles[1].split("\n") == [titles[1]] and "FAILED" not in titles[1]
    assert titles[2].split("\n")[0].endswith("DIAGNOSTICS FAILED")
    # the figure grows by the reasons' lines instead of squashing the panels
    plain = plot_forest(forest_table(_comparison()))
    assert size_mm(fig)[1] > size_mm(plain)[1]


# ----------------------------------------------------------------------------------------
# ArviZ's posterior predictive plot (observed against replicated ward values)
# ----------------------------------------------------------------------------------------

PPC_PERIODS = ("2011", "2021")


def _ppc_values(chains: int = 2, draws: int = 20, wards: int = 6) -> az.InferenceData:
    """What :func:`nbdid.analysis.figure_tables.ppc_values` returns, by hand: shares of
    one group and period per variable."""
    rng = np.random.default_rng(5)
    names = [f"{g}_{p}" for g in ("nbi", "benchmark") for p in PPC_PERIODS]
    obs = {n: rng.uniform(0.1, 0.4, wards) for n in names}
    rep = {n: np.clip(obs[n] + rng.normal(0, 0.03, (chains, draws, wards)), 0, 1) for n in names}
    dims = {n: [f"{n}_ward"] for n in names}
    coords = {f"{n}_ward": [f"W{i}" for i in range(wards)] for n in names}
    data = az.from_dict(posterior_predictive=rep, observed_data=obs, dims=dims, coords=coords)
    for n in names:
        g, p = n.split("_")
        label = f"{'Big Local/NBI' if g == 'nbi' else 'Benchmark'}, {p}"
        data.observed_data[n].attrs["label"] = label
        data.posterior_predictive[n].attrs["label"] = label
    data.observed_data.attrs.update(
        indicator="out_of_work_benefits", value_label="share of the trials (count / exposure)",
        family="binomial", synthetic=1, groups="nbi,nbi,benchmark,benchmark",
        periods=",".join(PPC_PERIODS * 2))
    return data


@pytest.mark.parametrize("kind", ["cumulative", "kde"])
@pytest.mark.parametrize("gate", ["passed", f"FAILED: {LONG_GATE}"])
def test_ppc_values_plot_is_drawn_by_arviz_and_meets_the_print_rules(
        kind: str, gate: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = az.plot_ppc

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(az, "plot_ppc", spy)
    data = _ppc_values()
    fig = plot_ppc_arviz(data, gate=gate, kind=kind)
    assert len(calls) == 1 and calls[0]["kind"] == kind  # ArviZ drew the panels
    assert print_problems(fig) == []
    w, h = size_mm(fig)
    assert abs(w - SINGLE_COLUMN_MM) < 0.5 and h <= 230.5
    assert has_synthetic_banner(fig)  # from the data's synthetic attribute
    assert ("DIAGNOSTICS FAILED" in _texts(fig)) == gate.startswith("FAILED")
    # one panel per group (columns) and period (rows), titled by the variable's label
    axes = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title(loc="left") for a in axes] == [
        "Big Local/NBI, 2011", "Benchmark, 2011", "Big Local/NBI, 2021", "Benchmark, 2021"]
    assert "share of the trials" in _texts(fig)
    name_of = {v.attrs["label"]: k for k, v in data.observed_data.data_vars.items()}
    n_rep = 2 * 20
    for a in axes:
        name = name_of[a.get_title(loc="left")]
        lines = [ln for ln in a.get_lines() if len(ln.get_xdata())]
        colours = [mpl.colors.to_hex(ln.get_color()) for ln in lines]
        # one curve per replicated data set, the observed one and the replicates' mean
        assert colours.count(mpl.colors.to_hex(PPC_VALUE_COLOURS[0])) == n_rep
        observed = [ln for ln in lines if mpl.colors.to_hex(ln.get_color()) == "#000000"]
        assert len(observed) == 1
        mean = [ln for ln in lines if ln.get_linestyle() == "--"]
        assert len(mean) == 1 and mpl.colors.to_hex(mean[0].get_color()) == \
            mpl.colors.to_hex(PPC_VALUE_COLOURS[2])
        if kind == "cumulative":  # the observed values' empirical distribution function
            x = np.sort(np.asarray(observed[0].get_xdata(), float))
            assert set(np.round(data.observed_data[name].values, 12)) <= set(np.round(x, 12))
            assert np.asarray(observed[0].get_ydata()).max() == pytest.approx(1.0)


def test_ppc_values_plot_draws_on_given_axes_and_checks_its_input() -> None:
    data = _ppc_values()
    fig = new_figure("double", 60)
    axes = list(fig.subplots(1, 4).ravel())
    assert plot_ppc_arviz(data, ax=axes) is fig
    assert all(len(a.get_lines()) > 2 * 20 for a in axes)
    with pytest.raises(ValueError, match="4 variables but 3 axes"):
        plot_ppc_arviz(data, ax=axes[:3])
    with pytest.raises(ValueError, match="kind"):
        plot_ppc_arviz(data, kind="scatter")
    with pytest.raises(ValueError, match="observed_data and posterior_predictive"):
        plot_ppc_arviz(az.from_dict(posterior={"did": np.zeros((2, 5))}))
