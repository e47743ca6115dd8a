"""``nbdid run`` end to end on the embedded synthetic panel (one indicator, few draws)."""

from __future__ import annotations

import html as html_lib
import json
import re
from pathlib import Path

import arviz as az
import pandas as pd
import pytest
from PIL import Image

from nbdid.cli import main
from nbdid.config import DEFAULT_PRIORS, PRIOR_KEYS, DiagnosticsConfig
from nbdid.data_prep.schema import write_panel
from nbdid.data_prep.synthetic import load_default_panel
from nbdid.figures.style import DOUBLE_COLUMN_MM, PNG_DPI, SINGLE_COLUMN_MM
from nbdid.provenance import SYNTHETIC_NOTICE
from nbdid.registry import INDICATORS
from nbdid.workflow.report import MAX_HTML_BYTES

pytestmark = pytest.mark.filterwarnings(
    # PyTensor warns once when it cannot link to a BLAS library; an environment notice.
    "ignore:.*BLAS.*:UserWarning"
)


@pytest.fixture(scope="module")
def run_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("run")
    # the default panel with a ward-level covariate column, adjusted for in the config:
    # a run's panel is checked with the covariates its model uses
    panel = load_default_panel()
    wards = sorted(panel["ward"].unique())
    panel["baseline_imd"] = panel["ward"].map({w: (i * 37) % 29 / 29 for i, w in enumerate(wards)})
    write_panel(panel, tmp / "panel.csv", covariates=("baseline_imd",))
    cfg = tmp / "run.toml"
    cfg.write_text(
        'panel = "panel.csv"\nindicators = ["out_of_work_benefits"]\n'
        "[sampler]\ndraws = 150\ntune = 150\nchains = 2\n"
        '[model]\ncovariates = ["baseline_imd"]\n'
    )
    out = tmp / "results"
    assert main(["run", "--config", str(cfg), "--out", str(out)]) in (0,)
    return out


def test_run_writes_every_output(run_out: Path) -> None:
    for name in ("comparison.csv", "summary.csv", "trajectories.csv", "diagnostics.csv",
                 "run_info.json", "posteriors/out_of_work_benefits.nc", "figures/forest.png",
                 "figures/forest.svg", "figures/diagnostics.png",
                 "figures/trajectory_out_of_work_benefits.png", "replication/table1.csv",
                 "replication/tipping_points.csv"):
        assert (run_out / name).is_file(), name
    assert not [p for p in run_out.rglob(".*") if p.is_file()]  # no temporary leftovers


def test_outputs_say_synthetic(run_out: Path) -> None:
    comp = pd.read_csv(run_out / "comparison.csv")
    assert comp.synthetic.all() and (comp.notice == SYNTHETIC_NOTICE).all()
    for name in ("summary.csv", "trajectories.csv", "diagnostics.csv"):
        assert (pd.read_csv(run_out / name).notice == SYNTHETIC_NOTICE).all(), name
    assert json.loads((run_out / "run_info.json").read_text())["synthetic"] is True
    svg = (run_out / "figures" / "forest.svg").read_text()
    assert "SYNTHETIC" in svg


def test_comparison_row(run_out: Path) -> None:
    comp = pd.read_csv(run_out / "comparison.csv").iloc[0]
    assert comp.indicator == "out_of_work_benefits"
    assert comp.report_did == pytest.approx(-0.6)
    assert comp.report_did_lower == pytest.approx(-1.4) and comp.report_did_upper == pytest.approx(0.2)
    assert not comp.report_significant
    assert comp["posterior_q2.5"] < comp.posterior_did < comp["posterior_q97.5"]
    assert 0 <= comp.prob_benefit <= 1
    assert isinstance(comp.gate, str) and comp.gate


def test_netcdf_opens_with_provenance(run_out: Path) -> None:
    idata = az.from_netcdf(run_out / "posteriors" / "out_of_work_benefits.nc")
    attrs = idata.posterior.attrs
    assert attrs["nbdid_synthetic"] == "true"
    assert len(attrs["nbdid_data_sha256"]) == 64
    assert attrs["nbdid_seed"] and "version_pymc" in attrs and "[sampler]" in attrs["nbdid_config"]
    assert "did" in idata.posterior
    assert attrs["nbdid_covariates"] == "baseline_imd"  # the config's covariate was used


def test_rerun_refuses_to_overwrite(run_out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (run_out / "comparison.csv").read_bytes()
    assert main(["run", "--out", str(run_out)]) == 2
    err = capsys.readouterr().err
    assert "--force" in err and err.count("\n") == 1
    assert (run_out / "comparison.csv").read_bytes() == before


def test_config_names_a_bad_panel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    panel = tmp_path / "p.csv"
    panel.write_text("indicator,ward\ncrime,W1\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'panel = "{panel.name}"\n')
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert str(panel) in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto distribution:UserWarning")
def test_loo_works_on_every_posterior_run_writes(run_out: Path) -> None:
    for nc in sorted((run_out / "posteriors").glob("*.nc")):
        idata = az.from_netcdf(nc)
        assert {"log_likelihood", "log_prior"} <= set(idata.groups()), nc.name
        assert az.loo(idata).elpd_loo < 0, nc.name
    diag = pd.read_csv(run_out / "diagnostics.csv")
    assert {"elpd_loo", "pareto_k_high", "did_prior_sensitivity", "prior_flags", "structure"} <= set(diag.columns)


# ----------------------------------------------------------------------------------------
# the findings report the run wrote (report.html, report.md)
# ----------------------------------------------------------------------------------------

KEY = "out_of_work_benefits"


def _page(run_out: Path) -> str:
    return (run_out / "report.html").read_text(encoding="utf-8")


def _section(page: str, sid: str) -> str:
    """The HTML of ``<section id="sid">`` with its nested sections."""
    start = page.index(f'<section id="{sid}"')
    depth = 0
    for m in re.finditer(r"<section\b|</section>", page[start:]):
        depth += 1 if m.group(0) == "<section" else -1
        if depth == 0:
            return page[start:start + m.end()]
    raise AssertionError(f"section {sid} is not closed")


def _text(fragment: str) -> str:
    """Visible text: tags, styles and embedded images dropped, entities decoded, one
    space between words."""
    body = re.sub(r"<style.*?</style>", " ", fragment, flags=re.S)
    body = re.sub(r'src="data:[^"]*"', "", body)
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def _number(text: str) -> float:
    return float(text.replace("\u2212", "-").replace(",", ""))


def _close(text: str, value: float) -> bool:
    """``text`` (a number as the report rounds it) is ``value`` rounded to its decimals."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    return abs(_number(text) - value) <= 0.5 * 10 ** -decimals + 1e-9


def _info(run_out: Path) -> dict:
    return json.loads((run_out / "run_info.json").read_text())


def test_run_writes_the_report(run_out: Path) -> None:
    for name in ("report.html", "report.md", "tables/comparison.html", "tables/comparison.tex",
                 "tables/comparison.md", "tables/concordance.md"):
        assert (run_out / name).is_file() and (run_out / name).stat().st_size > 0, name


def test_report_html_is_self_contained_and_under_10_mb(run_out: Path) -> None:
    raw = (run_out / "report.html").read_bytes()
    assert len(raw) < MAX_HTML_BYTES == 10 * 1024 * 1024
    page = raw.decode("utf-8")
    external = re.compile(r"""(?:\bsrc|\bhref)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//""",
                          re.IGNORECASE)
    assert not external.search(page), external.search(page)
    assert not re.search(r"<script[^>]*\bsrc=|<link\b|@import", page, re.IGNORECASE)
    imgs = re.findall(r"<img\b[^>]*>", page)
    assert len(imgs) >= 8  # every figure of the run is embedded
    for tag in imgs:
        src = re.search(r'\ssrc="([^"]*)"', tag)
        assert src and src.group(1).startswith("data:image/png;base64,"), tag[:120]


def test_report_names_the_indicator_its_verdict_gate_and_the_banner(run_out: Path) -> None:
    page = _page(run_out)
    comp = pd.read_csv(run_out / "comparison.csv").iloc[0]
    finding = _section(page, f"finding-{KEY}")
    title = INDICATORS[KEY].title
    assert f"<h3>{html_lib.escape(title)}</h3>" in finding
    text = _text(finding)
    assert f"Verdict: {comp['verdict']}." in text
    gate = str(comp["gate"])
    if gate == "passed":
        assert "Diagnostics gate: passed" in text
    else:  # the gate's own reasons, and the warning that the fit is not for inference
        assert "Diagnostics gate: FAILED" in text and "not for inference" in text
        assert gate.removeprefix("FAILED:").strip() in text
    # the synthetic-data banner: at the top of the page and on the findings
    assert SYNTHETIC_NOTICE in _text(page.split('<section id="summary"')[0])
    assert f'<div class="section-banner" role="note">{html_lib.escape(SYNTHETIC_NOTICE)}</div>' \
        in _section(page, "findings")


def test_report_methods_state_the_runs_sampler_priors_and_thresholds(run_out: Path) -> None:
    methods = _text(_section(_page(run_out), "methods"))
    seed = _info(run_out)["seed"]
    # the fixture's config: draws 150, tune 150, chains 2
    assert "2 chains \u00d7 150 draws after 150 warm-up iterations" in methods
    assert f"seed {seed}" in methods
    assert "baseline_imd" in methods  # the config's covariate
    assert "Priors" in methods
    for key in PRIOR_KEYS:
        prior = getattr(DEFAULT_PRIORS, key, None)
        if prior is not None:
            assert f"{key.replace('_', ' ')} {prior}" in methods, key
    g = DiagnosticsConfig()
    for phrase in (f"R-hat \u2264 {g.max_rhat:g}", f"ESS \u2265 {g.min_ess_bulk:,}/{g.min_ess_tail:,}",
                   f"divergences \u2264 {g.max_divergences}", f"BFMI \u2265 {g.min_bfmi:g}",
                   f"PPC p-values in [{g.ppc_p_range[0]:g}, {g.ppc_p_range[1]:g}]"):
        assert phrase in methods, phrase


def test_report_findings_state_the_did_its_interval_a_ratio_and_p_benefit(run_out: Path) -> None:
    comp = pd.read_csv(run_out / "comparison.csv").iloc[0]
    summary = pd.read_csv(run_out / "summary.csv")
    text = _text(_section(_page(run_out), f"finding-{KEY}"))
    num = r"([\u2212-]?[\d,]+(?:\.\d+)?)"
    m = re.search(rf"is {num} percentage points \(95% credible interval {num} to {num} "
                  r"percentage points\)", text)
    assert m, text[:600]
    for got, want in zip(m.groups(), (comp["posterior_did"], comp["posterior_q2.5"],
                                      comp["posterior_q97.5"]), strict=True):
        assert _close(got, want), (got, want)
    ratio = summary[(summary.estimand == "did") & (summary.scale == "odds_ratio")].iloc[0]
    m = re.search(rf"As a ratio of the two groups' changes \(odds ratio\): {num} \[{num}, {num}\]", text)
    assert m, text[:800]
    for got, want in zip(m.groups(), (ratio["mean"], ratio["q2.5"], ratio["q97.5"]), strict=True):
        assert _close(got, want), (got, want)
    m = re.search(rf"P\(benefit\) = {num}", text)
    assert m and _close(m.group(1), comp["prob_benefit"])


def test_report_has_tipping_points_forensics_and_discrepancies(run_out: Path) -> None:
    page = _page(run_out)
    scrutiny = _section(page, "report-scrutiny")
    assert "The report under scrutiny: tipping points, forensics, discrepancies" in _text(scrutiny)
    for sid, heading in (("tipping", "Tipping points"), ("forensics", "Forensics of the intervals"),
                         ("discrepancies", "Discrepancies in the report")):
        assert f"<h3>{heading}</h3>" in _section(scrutiny, sid), sid
    tp = pd.read_csv(run_out / "replication" / "tipping_points.csv")
    row = tp[tp.indicator == KEY].iloc[0]
    assert " ".join(str(row.interpretation).split()) in _text(_section(scrutiny, "tipping"))
    disc = pd.read_csv(run_out / "replication" / "discrepancies.csv")
    assert f"{len(disc)} places where the report contradicts" in _text(_section(scrutiny, "discrepancies"))


def test_report_appendix_holds_versions_panel_hash_and_seed(run_out: Path) -> None:
    info = _info(run_out)
    appendix = _section(_page(run_out), "appendix")
    text = _text(appendix)
    assert "Software versions" in text
    assert info["versions"]
    for package, version in info["versions"].items():
        assert re.search(rf"\b{re.escape(package)} {re.escape(str(version))}\b", text), package
    assert len(info["panel_sha256"]) == 64
    assert f"Panel SHA-256: {info['panel_sha256']}" in text
    assert f"Seed: {info['seed']}" in text


def test_report_markdown_links_figures_that_exist(run_out: Path) -> None:
    md = (run_out / "report.md").read_text(encoding="utf-8")
    assert (run_out / "figures").is_dir()
    links = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", md)
    assert len(links) >= 8
    for link in links:
        assert link.startswith("figures/") and (run_out / link).is_file(), link
    assert f"figures/ppc_values_{KEY}.png" in links  # ArviZ's posterior predictive plot


def test_figures_are_300_dpi_at_column_width_with_pdf_and_svg(run_out: Path) -> None:
    pngs = sorted((run_out / "figures").glob("*.png"))
    assert len(pngs) >= 8
    widths = [round(mm / 25.4 * PNG_DPI) for mm in (SINGLE_COLUMN_MM, DOUBLE_COLUMN_MM)]
    for png in pngs:
        with Image.open(png) as im:
            dpi = im.info.get("dpi")
            assert dpi is not None and all(abs(d - PNG_DPI) < 0.5 for d in dpi), (png.name, dpi)
            assert min(abs(im.width - w) for w in widths) <= 2, (png.name, im.width)
        for ext in (".pdf", ".svg"):
            assert png.with_suffix(ext).is_file(), png.with_suffix(ext).name


def test_the_python_api_saves_what_the_cli_writes(run_out: Path) -> None:
    """A script using only the public API (``nbdid.run(config=...).save(out)``) writes
    the same files as ``nbdid run`` with the same config, with the same tables."""
    import nbdid

    for name in nbdid.__all__:  # every public name resolves
        assert getattr(nbdid, name) is not None, name
    res = nbdid.run(config=run_out.parent / "run.toml")
    py = Path(res.save(run_out.parent / "py"))

    def files(root: Path) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    assert files(py) == files(run_out)
    for name in ("comparison.csv", "summary.csv", "diagnostics.csv", "trajectories.csv",
                 "concordance.csv", "replication/table1.csv"):
        cli_t, py_t = pd.read_csv(run_out / name), pd.read_csv(py / name)
        timing = [c for c in cli_t.columns if "second" in c]  # wall times differ run to run
        pd.testing.assert_frame_equal(cli_t.drop(columns=timing), py_t.drop(columns=timing),
                                      check_exact=False, rtol=1e-9, obj=name)
