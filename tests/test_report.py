"""The findings report: written by ``nbdid run``, rebuilt by ``nbdid report``, checked
as text and in a real browser (headless Chromium).

One small run (one indicator, a tiny sampler) serves every test of this module; the
check of the README's full run is slow-marked.
"""

from __future__ import annotations

import html as html_lib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

from nbdid.cli import main
from nbdid.figures import figure_bytes
from nbdid.provenance import SYNTHETIC_NOTICE
from nbdid.registry import INDICATORS
from nbdid.workflow.report import MAX_HTML_BYTES, REPORT_FILES, build_report
from nbdid.workflow.run import run_outputs

pytestmark = pytest.mark.filterwarnings(
    # PyTensor warns once when it cannot link to a BLAS library; an environment notice.
    "ignore:.*BLAS.*:UserWarning"
)

KEY = "out_of_work_benefits"
FIGURES_OF_ONE_INDICATOR = {"forest", "diagnostics", "concordance", "tipping_bayes",
                            *(f"{f}_{KEY}" for f in ("trajectory", "wards", "pairs", "ppc", "ppc_values",
                                                          "rank"))}
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//|@import""",
                      re.IGNORECASE)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report_run")
    cfg = tmp / "run.toml"
    cfg.write_text(f'indicators = ["{KEY}"]\n[sampler]\ndraws = 60\ntune = 60\nchains = 2\n')
    out = tmp / "results"
    assert main(["run", "--config", str(cfg), "--out", str(out)]) == 0
    return out


def text_of(page: str) -> str:
    """The visible text of an HTML page (tags dropped, entities decoded)."""
    body = re.sub(r"<style.*?</style>", " ", page, flags=re.S)
    body = re.sub(r'src="data:[^"]*"', "", body)
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", body))


def img_sources(page: str) -> list[str]:
    return re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)


def test_run_writes_the_report_and_lists_it(run_dir: Path) -> None:
    names = run_outputs([KEY])
    assert set(REPORT_FILES) <= set(names)
    assert not set(REPORT_FILES) & set(run_outputs([KEY], report=False))
    for name in names:
        assert (run_dir / name).is_file(), name
    info = json.loads((run_dir / "run_info.json").read_text())
    assert info["command"].startswith("nbdid run --config ") and "--out" in info["command"]


def test_html_is_self_contained_and_small(run_dir: Path) -> None:
    raw = (run_dir / "report.html").read_bytes()
    assert len(raw) < MAX_HTML_BYTES
    page = raw.decode("utf-8")
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    srcs = img_sources(page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    # every figure of the run is embedded, none is missing
    ids = set(re.findall(r'<figure id="fig-([^"]+)"', page))
    assert ids == FIGURES_OF_ONE_INDICATOR
    assert 'class="missing"' not in page
    # the print stylesheet and the per-page banner (a repeated table header)
    assert "@media print" in page and "@page" in page
    assert re.search(r'<thead><tr><td><div class="page-banner"', page)


def test_report_names_indicator_verdicts_and_banner(run_dir: Path) -> None:
    comp = pd.read_csv(run_dir / "comparison.csv").iloc[0]
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    text = text_of(page)
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    title = INDICATORS[KEY].title
    for doc in (text, md):
        assert title in doc
        assert comp["verdict"] in doc  # the verdict of the comparison
        assert SYNTHETIC_NOTICE in doc
        assert "P(benefit) = " + f"{comp['prob_benefit']:.2f}" in doc.replace("**", "")
        assert "The report's claim" in doc and "frequentist twin" in doc
        assert "Reproducibility appendix" in doc and info_seed(run_dir) in doc
    # the report's verdict and the posterior's, in words
    rep_verdict = "not significant" if not comp["report_significant"] else "significantly"
    assert rep_verdict in text
    # the banner on the page and on every section made from the synthetic panel
    banners = page.count('class="section-banner"')
    assert banners >= 5
    assert md.count(SYNTHETIC_NOTICE) >= banners
    # the gate's status is stated, and a failed fit is flagged as not for inference
    gate = str(comp["gate"])
    if gate.startswith("passed"):
        assert "Diagnostics gate: passed" in text
    else:
        assert "Diagnostics gate: FAILED" in text and "not for inference" in text


def info_seed(run_dir: Path) -> str:
    return str(json.loads((run_dir / "run_info.json").read_text())["seed"])


def test_markdown_links_the_runs_figures(run_dir: Path) -> None:
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert {Path(x).stem for x in links} == FIGURES_OF_ONE_INDICATOR
    assert all((run_dir / x).is_file() for x in links)
    for name in ("comparison", "concordance"):
        for ext in ("html", "tex", "md"):
            assert (run_dir / "tables" / f"{name}.{ext}").stat().st_size > 500


def test_cli_report_refuses_to_overwrite_then_rebuilds(run_dir: Path, capsys) -> None:
    before = (run_dir / "report.html").read_bytes()
    assert main(["report", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "--force" in err and err.count("\n") == 1
    assert (run_dir / "report.html").read_bytes() == before
    assert main(["report", str(run_dir), "--force"]) == 0
    out = capsys.readouterr().out
    assert "report.html" in out and SYNTHETIC_NOTICE in out
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert f"nbdid report {run_dir} --force" in text_of(page)


def test_report_into_another_folder_copies_its_figures(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere"
    assert main(["report", str(run_dir), "--out", str(out)]) == 0
    md = (out / "report.md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links and all((out / x).is_file() for x in links)
    assert sorted(p.name for p in (out / "tables").iterdir()) == sorted(
        f"{n}.{e}" for n in ("comparison", "concordance") for e in ("html", "md", "tex"))
    assert not (out / "comparison.csv").exists()  # only the report is written there


def test_not_a_run_folder(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a finished 'nbdid run' folder" in err and err.count("\n") == 1
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert main(["report", str(tmp_path), "--sweep", str(tmp_path)]) == 2
    assert not list(tmp_path.iterdir())


def _png(text: str) -> bytes:
    fig = Figure(figsize=(3, 2))
    fig.add_subplot().set_title(text)
    return figure_bytes(fig, ("png",))["png"]


def test_sweep_and_design_sections(run_dir: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    (sweep / "figures").mkdir(parents=True)
    pd.DataFrame([{
        "indicator": KEY, "n_specs": 26, "n_fitted": 26, "n_gate_failed": 1, "share_benefit": 0.12,
        "share_harm": 0.0, "share_prob_benefit_gt_0_9": 0.35, "main_conclusion": "unclear",
        "share_main_conclusion": 0.88, "report_conclusion": "unclear",
        "share_report_conclusion": 0.88, "synthetic": True,
    }]).to_csv(sweep / "sensitivity_summary.csv", index=False)
    (sweep / "sweep_info.json").write_text(json.dumps({"n_specs": 26, "seed": 7, "synthetic": True}))
    (sweep / "figures" / f"spec_curve_{KEY}.png").write_bytes(_png("spec curve"))
    design = tmp_path / "design"
    (design / "figures").mkdir(parents=True)
    (design / "figures" / "power.png").write_bytes(_png("power"))
    (design / "figures" / "other.png").write_bytes(_png("other"))
    (design / "summary.md").write_text(
        "# Design study\n\nAssurance of the matched design.\n\n| pairs | assurance |\n|---|---|\n"
        "| 29 | 0.41 |\n\n![power curve](figures/power.png)\n\nSee [the docs](https://example.org/d).\n")
    pd.DataFrame({"n_pairs": [29, 40], "assurance": [0.41, 0.55]}).to_csv(design / "assurance.csv",
                                                                          index=False)
    out = tmp_path / "report"
    assert main(["report", str(run_dir), "--sweep", str(sweep), "--design", str(design),
                 "--out", str(out)]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    text = text_of(page)
    assert "Sensitivity sweep" in text and "holds in 88%" in text
    assert f'id="fig-spec_curve_{KEY}"' in page
    assert "Design and assurance" in text and "Assurance of the matched design." in text
    assert "0.410" in text and "0.550" in text  # assurance.csv as a table
    assert "example.org" in text and not EXTERNAL.search(page)  # link kept as text only
    assert all(s.startswith("data:image/png;base64,") for s in img_sources(page))
    assert page.count('id="fig-other"') == 1 and 'id="fig-power"' not in page
    md = (out / "report.md").read_text(encoding="utf-8")
    rel = os.path.relpath(design, out)
    assert f"]({rel}/figures/power.png)" in md and (out / rel / "figures" / "power.png").is_file()


def test_incomplete_run_and_prior_sensitivity(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    info = json.loads((copy / "run_info.json").read_text())
    info["failed"] = {"crime": "the model cannot be fitted: no events"}
    (copy / "run_info.json").write_text(json.dumps(info))
    diag = pd.read_csv(copy / "diagnostics.csv")
    diag.assign(prior_sensitivity_did=0.0123, prior_flags="none").to_csv(
        copy / "diagnostics.csv", index=False)
    rep = build_report(copy, command="test")
    assert "Overall Crime Rate" in rep.incomplete
    page = rep.html()
    text = text_of(page)
    assert "INCOMPLETE RUN" in text and "no events" in text
    assert "0.012" in text and "prior_sensitivity_did" in text
    assert "INCOMPLETE RUN" in rep.markdown()


# ----------------------------------------------------------------------------------------
# a real browser
# ----------------------------------------------------------------------------------------

CHROMIUM = (os.environ.get("NBDID_CHROMIUM") or shutil.which("chromium")
            or shutil.which("chromium-browser") or shutil.which("google-chrome"))
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (Debian package 'chromium'; "
                             ".ci/run installs it)")

PROBE = """<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  var res = performance.getEntriesByType("resource").map(function (e) { return e.name; });
  document.body.setAttribute("data-images", ok.length + "/" + imgs.length);
  document.body.setAttribute("data-resources", JSON.stringify(res));
});
</script>
"""


def _no_network_prefix() -> list[str]:
    """``unshare -n`` (an empty network namespace) where it works, else nothing (the
    proxy and resolver flags below still block every request)."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    cmd = [*_no_network_prefix(), str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
           "--disable-background-networking", "--proxy-server=http://127.0.0.1:9",
           "--proxy-bypass-list=<-loopback>", "--host-resolver-rules=MAP * ~NOTFOUND",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshot and the PDF are kept: $NBDID_TEST_ARTEFACTS, else a pytest
    temporary folder (the path is printed and recorded as a test property)."""
    env = os.environ.get("NBDID_TEST_ARTEFACTS")
    if env:
        Path(env).mkdir(parents=True, exist_ok=True)
        return Path(env)
    return tmp_path_factory.mktemp("report_artefacts")


@needs_chromium
def test_browser_loads_every_figure_without_network(run_dir: Path, tmp_path: Path) -> None:
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    res = chromium(["--virtual-time-budget=20000", "--run-all-compositor-stages-before-draw",
                    "--dump-dom", probe.as_uri()], tmp_path / "profile")
    dom = res.stdout
    m = re.search(r'data-images="(\d+)/(\d+)"', dom)
    assert m, f"the page did not finish loading: {res.stderr[-2000:]}"
    loaded, total = int(m.group(1)), int(m.group(2))
    assert total == len(FIGURES_OF_ONE_INDICATOR) and loaded == total
    resources = json.loads(html_lib.unescape(re.search(r'data-resources="([^"]*)"', dom).group(1)))
    assert not [r for r in resources if not r.startswith(("file:", "data:"))], resources


@needs_chromium
def test_browser_screenshot_and_print(run_dir: Path, tmp_path: Path, artefacts: Path,
                                      record_property) -> None:
    from PIL import Image

    url = (run_dir / "report.html").as_uri()
    shot = artefacts / "report_screenshot.png"
    pdf = artefacts / "report_print.pdf"
    for p in (shot, pdf):
        p.unlink(missing_ok=True)
    res = chromium(["--hide-scrollbars", "--window-size=1280,2400", "--virtual-time-budget=20000",
                    f"--screenshot={shot}", url], tmp_path / "p1")
    assert shot.is_file(), res.stderr[-2000:]
    res = chromium(["--no-pdf-header-footer", "--virtual-time-budget=20000",
                    f"--print-to-pdf={pdf}", url], tmp_path / "p2")
    assert pdf.is_file(), res.stderr[-2000:]
    record_property("screenshot", str(shot))
    record_property("print_pdf", str(pdf))
    print(f"\nreport screenshot: {shot}\nreport print-out: {pdf}")
    with Image.open(shot) as im:
        assert im.size == (1280, 2400)
        colours = im.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50  # text, banner and figures, not a blank page
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page\b", data))
    assert pages >= 5 and len(data) > 300_000  # every section printed, figures included


# ----------------------------------------------------------------------------------------
# the README's first command (slow)
# ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_readme_run_writes_a_complete_report(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "nbdid-results"
    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert (out / "report.md").is_file()
    assert len(page.encode("utf-8")) < MAX_HTML_BYTES
    assert not EXTERNAL.search(page) and "<script" not in page
    text = text_of(page)
    comp = pd.read_csv(out / "comparison.csv")
    assert len(comp) == len(INDICATORS)
    md = (out / "report.md").read_text(encoding="utf-8")
    for r in comp.itertuples():
        for doc in (text, md):
            assert INDICATORS[r.indicator].title in doc
            assert r.verdict in doc
    assert SYNTHETIC_NOTICE in text and SYNTHETIC_NOTICE in md
