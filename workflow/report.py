"""The findings report (``nbdid report``, and the end of ``nbdid run``).

:func:`build_report` turns a finished run (a folder written by ``nbdid run`` /
:meth:`~nbdid.workflow.run.RunResult.save`, or a :class:`~nbdid.workflow.run.RunResult`)
into a :class:`Report`: the findings in plain words per indicator, the methods generated
from the run's config, diagnostics and posterior predictive checks, prior sensitivity
where it was computed, the report's tipping points, forensics and discrepancies, the
sensitivity sweep and the design/assurance study when their folders are given, data
provenance and caveats, and a reproducibility appendix.

:meth:`Report.save` writes

``report.html``
    one self-contained page: figures embedded as ``data:`` URIs, styles inline, no
    scripts and no external requests; readable offline and with a print stylesheet
    (A4, figures kept whole, the synthetic-data banner repeated on every printed page);
``report.md``
    the same report as Markdown, its figures linked from ``figures/`` (the run's own
    PNGs; copied there when the report is written to another folder);
``tables/comparison.{html,tex,md}``, ``tables/concordance.{html,tex,md}``
    the publication tables (:mod:`nbdid.analysis.tables`).
"""

from __future__ import annotations

import base64
import datetime as dt
import html as html_lib
import io
import json
import math
import os
import re
import shlex
import struct
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5netcdf
import jinja2
import pandas as pd
from markdown_it import MarkdownIt
from PIL import Image

from nbdid.analysis import frequentist as fq
from nbdid.analysis.tables import (
    MINUS,
    PublicationTable,
    comparison_table,
    concordance_table,
    diagnostics_table,
    format_interval,
    format_number,
    format_probability,
    gate_text,
    prior_sensitivity_columns,
    ratio_rows,
    row_decimals,
    simple_table,
    title_of,
)
from nbdid.config import DEFAULT_PRIORS, PRIOR_KEYS, RunConfig, from_dict
from nbdid.errors import InputError, OutputError
from nbdid.families import FAMILIES
from nbdid.figures.style import PNG_DPI, figure_bytes
from nbdid.outputs import atomic_path, prepare_out_dir, unfinished_run, write_text
from nbdid.provenance import SYNTHETIC_NOTICE, hash_file, package_versions
from nbdid.registry import INDICATORS
from nbdid.workflow.replicate import REPLICATE_TABLES

if TYPE_CHECKING:  # pragma: no cover
    from nbdid.workflow.run import RunResult

REPORT_HTML = "report.html"
REPORT_MD = "report.md"
TABLE_NAMES: tuple[str, ...] = ("comparison", "concordance")
"""The publication tables written under ``tables/``."""
TABLE_FORMATS: dict[str, str] = {"html": "html", "latex": "tex", "markdown": "md"}
"""Table format -> file suffix."""
REPORT_FILES: tuple[str, ...] = (
    REPORT_HTML, REPORT_MD,
    *(f"tables/{n}.{ext}" for n in TABLE_NAMES for ext in TABLE_FORMATS.values()),
)
"""The files :meth:`Report.save` writes (besides figures copied for the Markdown)."""
MAX_HTML_BYTES = 10 * 1024 * 1024
"""The self-contained HTML report must stay below this size (10 MB)."""

RUN_TABLES: dict[str, str] = {
    "comparison": "comparison.csv",
    "summary": "summary.csv",
    "trajectories": "trajectories.csv",
    "diagnostics": "diagnostics.csv",
    "concordance": "concordance.csv",
    "concordance_summary": "concordance_summary.csv",
}
"""Tables of a run folder the report reads (name -> file)."""
REQUIRED_RUN_FILES = ("run_info.json", "comparison.csv", "summary.csv", "diagnostics.csv")

_TEMPLATES = Path(__file__).with_name("templates")


# ----------------------------------------------------------------------------------------
# what a report is built from
# ----------------------------------------------------------------------------------------


def palette_png(raw: bytes) -> bytes:
    """A PNG figure as embedded in the HTML page: reduced to a 256-colour palette (the
    figures' flat colours and anti-aliasing survive unchanged to the eye), about a
    third of the size, so that a report of many figures stays well under
    :data:`MAX_HTML_BYTES`; the original when that is not smaller."""
    with Image.open(io.BytesIO(raw)) as im:
        dpi = im.info.get("dpi", (PNG_DPI, PNG_DPI))
        pal = im.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE,
                                         dither=Image.Dither.NONE)
    buf = io.BytesIO()
    pal.save(buf, format="PNG", dpi=dpi)
    small = buf.getvalue()
    return small if len(small) < len(raw) else raw


REPORT_PNG = "report.png"
"""Key of :func:`report_pngs`'s product among a drawn figure's files."""


def report_pngs(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """What the report needs of a figure besides its files: its PNG as embedded in the
    HTML page (:func:`palette_png`), under :data:`REPORT_PNG`.  ``nbdid run`` has it
    made by the worker that draws the figure
    (:class:`~nbdid.figures.render.FigureRenderer`'s ``also``)."""
    return {REPORT_PNG: palette_png(files["png"])}


@dataclass(frozen=True)
class FigureFile:
    """A PNG figure of a run: read from a file or held as bytes (``embedded``: its
    :func:`palette_png`, when already made)."""

    stem: str
    path: Path | None = None
    data: bytes | None = None
    embedded: bytes | None = field(default=None, repr=False)

    def png(self) -> bytes:
        """The PNG bytes."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()

    def embedded_png(self) -> bytes:
        """The PNG as embedded in the HTML page (:func:`palette_png`)."""
        return self.embedded if self.embedded is not None else palette_png(self.png())

    def size_mm(self) -> tuple[float, float]:
        """Print size in mm (PNG pixels at the nbdid resolution, 300 dpi)."""
        head = self.png()[:24]
        w, h = struct.unpack(">II", head[16:24])
        return w / PNG_DPI * 25.4, h / PNG_DPI * 25.4


@dataclass
class RunRecord:
    """The tables, figures and provenance of one finished run.

    Attributes
    ----------
    tables
        :data:`RUN_TABLES` by name plus the replication tables by file name
        (``table1.csv``, ...); a missing table is absent.
    figures
        PNG figures by stem (``forest``, ``wards_crime``, ...).
    info
        ``run_info.json``.
    config
        The run's configuration (from ``run_info.json``; ``None`` if unreadable).
    fit_attrs
        Provenance attributes of each fit (family, overdispersion, parameterisation,
        data hash), by indicator.
    file_hashes
        SHA-256 of the run's result files (relative path -> hash).
    folder
        The run folder (``None`` for a result held in memory).
    """

    tables: dict[str, pd.DataFrame]
    figures: dict[str, FigureFile]
    info: dict[str, Any]
    config: RunConfig | None
    fit_attrs: dict[str, dict[str, str]] = field(default_factory=dict)
    file_hashes: dict[str, str] = field(default_factory=dict)
    folder: Path | None = None

    @property
    def synthetic(self) -> bool:
        """Whether the run's panel was synthetic."""
        if "synthetic" in self.info:
            return bool(self.info["synthetic"])
        comp = self.tables.get("comparison")
        return bool(comp is not None and "synthetic" in comp and comp["synthetic"].astype(bool).any())

    @property
    def indicators(self) -> list[str]:
        """The fitted indicators, in the comparison table's order."""
        comp = self.tables.get("comparison")
        return [] if comp is None else [str(k) for k in comp["indicator"]]

    def table(self, name: str) -> pd.DataFrame:
        """A table, or an empty frame when the run has none."""
        return self.tables.get(name, pd.DataFrame())


@dataclass
class SweepRecord:
    """A sensitivity sweep folder (``nbdid sensitivity``)."""

    folder: Path
    summary: pd.DataFrame
    info: dict[str, Any]
    figures: dict[str, FigureFile]

    @property
    def synthetic(self) -> bool:
        """Whether the sweep used synthetic data."""
        return bool(self.info.get("synthetic", False))


@dataclass
class DesignRecord:
    """A design / assurance study folder (``summary.md``, ``assurance.csv``)."""

    folder: Path
    summary_md: str
    assurance: pd.DataFrame | None
    figures: dict[str, FigureFile]

    @property
    def synthetic(self) -> bool:
        """Whether the study says it used synthetic data."""
        if self.assurance is not None and "synthetic" in self.assurance:
            return bool(self.assurance["synthetic"].astype(str).str.lower().isin(["true", "1"]).any())
        return "SYNTHETIC" in self.summary_md.upper()


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read the table: {str(err).splitlines()[0]}", file=path) from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"not valid JSON: {err}", file=path) from None
    if not isinstance(doc, dict):
        raise InputError("not an nbdid provenance record (expected a JSON object)", file=path)
    return doc


def _figures_in(folder: Path, embedded: Mapping[str, bytes] | None = None) -> dict[str, FigureFile]:
    if not folder.is_dir():
        return {}
    embedded = embedded or {}
    return {p.stem: FigureFile(p.stem, path=p, embedded=embedded.get(p.stem))
            for p in sorted(folder.glob("*.png"))}


def _config_from_info(info: Mapping[str, Any]) -> RunConfig | None:
    text = info.get("config")
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return from_dict(RunConfig, tomllib.loads(text))
    except (tomllib.TOMLDecodeError, InputError):
        return None


def _fit_attrs(path: Path) -> dict[str, str]:
    try:
        with h5netcdf.File(path, "r") as f:
            attrs = dict(f["posterior"].attrs) if "posterior" in f else {}
    except (OSError, KeyError, ValueError):
        return {}
    return {str(k): str(v) for k, v in attrs.items() if str(k).startswith(("nbdid_", "version_"))}


def read_run(folder: str | os.PathLike[str]) -> RunRecord:
    """Read a finished run folder (``nbdid run --out FOLDER``).

    Raises
    ------
    InputError
        If the folder is missing or is not a finished run (no ``run_info.json``,
        ``comparison.csv``, ``summary.csv`` or ``diagnostics.csv``).
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError("no such run folder (give the --out folder of 'nbdid run')", file=root)
    marker = unfinished_run(root)
    if marker is not None and marker.get("pid") != os.getpid():
        # a run that was interrupted (or is still writing): its files are not a result
        raise InputError(
            f"not a finished run: 'nbdid {marker.get('command', 'run')}' (PID {marker.get('pid')}, "
            f"started {marker.get('started', '?')}) is writing this folder or stopped before "
            "finishing; run the same command again to finish it (it resumes)", file=root)
    missing = [n for n in REQUIRED_RUN_FILES if not (root / n).is_file()]
    if missing:
        raise InputError(f"not a finished 'nbdid run' folder: {', '.join(missing)} missing", file=root)
    tables = {name: _read_csv(root / f) for name, f in RUN_TABLES.items() if (root / f).is_file()}
    for name in REPLICATE_TABLES:
        p = root / "replication" / name
        if p.is_file():
            tables[name] = _read_csv(p)
    info = _read_json(root / "run_info.json")
    post = root / "posteriors"
    fit_attrs = {p.stem: _fit_attrs(p) for p in sorted(post.glob("*.nc"))} if post.is_dir() else {}
    hashes = {}
    for rel in ("comparison.csv", "summary.csv", "diagnostics.csv", "concordance.csv",
                "run_info.json", *(f"posteriors/{p.name}" for p in sorted(post.glob("*.nc"))
                                   if post.is_dir())):
        if (root / rel).is_file():
            hashes[rel] = hash_file(root / rel)
    return RunRecord(tables, _figures_in(root / "figures"), info, _config_from_info(info),
                     fit_attrs, hashes, root)


def record_from_result(res: RunResult, folder: str | os.PathLike[str] | None = None, *,
                       embedded: Mapping[str, bytes] | None = None) -> RunRecord:
    """A :class:`RunRecord` of a run held in memory.

    Figures are read from ``folder/figures`` when the result has been saved there
    (with their ``embedded`` PNGs by stem, :func:`palette_png` of those files, when
    already made), otherwise drawn (PNG at 300 dpi) from the result.
    """
    tables: dict[str, pd.DataFrame] = {}
    if res.fits:
        tables.update(comparison=res.comparison, summary=res.summary,
                      trajectories=res.trajectories, diagnostics=res.diagnostics)
    tables.update(concordance=res.concordance.concordance,
                  concordance_summary=res.concordance.summary)
    tables.update(res.replication.tables)
    root = Path(folder) if folder is not None else None
    if root is not None and (root / "figures").is_dir():
        figures = _figures_in(root / "figures", embedded)
    else:
        drawn = {**res.replication.figures(), "concordance": res.concordance.figure(),
                 **res.figures()}
        figures = {stem: FigureFile(stem, data=figure_bytes(fig, ("png",))["png"])
                   for stem, fig in drawn.items()}
    fit_attrs = {k: {str(a): str(v) for a, v in r.idata.posterior.attrs.items()
                     if str(a).startswith(("nbdid_", "version_"))} for k, r in res.fits.items()}
    hashes = {}
    if root is not None:
        for rel in ("comparison.csv", "summary.csv", "diagnostics.csv", "concordance.csv",
                    "run_info.json", *(f"posteriors/{k}.nc" for k in res.fits)):
            if (root / rel).is_file():
                hashes[rel] = hash_file(root / rel)
    return RunRecord(tables, figures, dict(res.info), res.config, fit_attrs, hashes, root)


def read_sweep(folder: str | os.PathLike[str]) -> SweepRecord:
    """Read a sensitivity sweep folder (``nbdid sensitivity --out FOLDER``)."""
    root = Path(folder)
    f = root / "sensitivity_summary.csv"
    if not f.is_file():
        raise InputError("not a sensitivity sweep folder: sensitivity_summary.csv missing "
                         "(give the --out folder of 'nbdid sensitivity')", file=root)
    info = _read_json(root / "sweep_info.json") if (root / "sweep_info.json").is_file() else {}
    figs = {k: v for k, v in _figures_in(root / "figures").items() if k.startswith("spec_curve_")}
    return SweepRecord(root, _read_csv(f), info, figs)


def read_design(folder: str | os.PathLike[str]) -> DesignRecord:
    """Read a design / assurance folder (its ``summary.md`` and ``assurance.csv``)."""
    root = Path(folder)
    md, ac = root / "summary.md", root / "assurance.csv"
    if not md.is_file() and not ac.is_file():
        raise InputError("not a design folder: neither summary.md nor assurance.csv is there",
                         file=root)
    text = md.read_text(encoding="utf-8") if md.is_file() else ""
    return DesignRecord(root, text, _read_csv(ac) if ac.is_file() else None,
                        _figures_in(root / "figures"))


# ----------------------------------------------------------------------------------------
# the document: sections of blocks, rendered to HTML and Markdown
# ----------------------------------------------------------------------------------------

_MD = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table")


def _inline_html(text: str) -> str:
    return _MD.renderInline(text)


@dataclass
class Para:
    """A paragraph (inline Markdown: ``**bold**``, ``*em*``, ```code```)."""

    text: str

    def html(self, ctx: _Ctx) -> str:  # noqa: ARG002 - one signature for every block
        return f"<p>{_inline_html(self.text)}</p>"

    def markdown(self, ctx: _Ctx) -> str:  # noqa: ARG002
        return self.text


@dataclass
class Bullets:
    """A bulleted list (items in inline Markdown)."""

    items: list[str]

    def html(self, ctx: _Ctx) -> str:  # noqa: ARG002
        return "<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in self.items) + "</ul>"

    def markdown(self, ctx: _Ctx) -> str:  # noqa: ARG002
        return "\n".join(f"- {i}" for i in self.items)


@dataclass
class Callout:
    """A highlighted note: ``kind`` is ``"warning"`` (failed gate, incomplete run),
    ``"synthetic"`` (the synthetic-data notice) or ``"note"``."""

    text: str
    kind: str = "note"

    def html(self, ctx: _Ctx) -> str:  # noqa: ARG002
        return f'<div class="callout {self.kind}" role="note">{_inline_html(self.text)}</div>'

    def markdown(self, ctx: _Ctx) -> str:  # noqa: ARG002
        return f"> **Warning:** {self.text}" if self.kind == "warning" else f"> {self.text}"


@dataclass
class Code:
    """A preformatted block (config, commands)."""

    text: str
    lang: str = ""

    def html(self, ctx: _Ctx) -> str:  # noqa: ARG002
        return f"<pre><code>{html_lib.escape(self.text)}</code></pre>"

    def markdown(self, ctx: _Ctx) -> str:  # noqa: ARG002
        fence = "````" if "```" in self.text else "```"
        return f"{fence}{self.lang}\n{self.text.rstrip()}\n{fence}"


@dataclass
class TableBlock:
    """A publication table."""

    table: PublicationTable

    def html(self, ctx: _Ctx) -> str:  # noqa: ARG002
        return f'<div class="table-wrap">{self.table.html()}</div>'

    def markdown(self, ctx: _Ctx) -> str:  # noqa: ARG002
        return self.table.markdown().rstrip()


@dataclass
class FigureBlock:
    """A figure (PNG at print size) with its caption."""

    figure: FigureFile | None
    caption: str
    stem: str = ""

    def html(self, ctx: _Ctx) -> str:
        if self.figure is None:
            return (f'<p class="missing">Figure <code>{html_lib.escape(self.stem)}</code> is '
                    "missing from the run folder.</p>")
        ctx.figures_used[self.figure.stem] = self.figure
        data = base64.b64encode(self.figure.embedded_png()).decode("ascii")
        w, _ = self.figure.size_mm()
        cap = _inline_html(self.caption)
        alt = html_lib.escape(_plain(self.caption), quote=True)
        return (f'<figure id="fig-{self.figure.stem}"><img src="data:image/png;base64,{data}" '
                f'alt="{alt}" style="--w:{w:.0f}mm"><figcaption>{cap}</figcaption></figure>')

    def markdown(self, ctx: _Ctx) -> str:
        if self.figure is None:
            return f"*Figure `{self.stem}` is missing from the run folder.*"
        ctx.figures_used[self.figure.stem] = self.figure
        alt = _plain(self.caption).replace("[", "(").replace("]", ")")
        return f"![{alt}](figures/{self.figure.stem}.png)\n\n{self.caption}"


@dataclass
class MarkdownBlock:
    """Markdown written by another nbdid command (e.g. a design study's ``summary.md``).

    In HTML, its relative images are embedded and external links become plain text."""

    text: str
    base: Path | None = None

    def html(self, ctx: _Ctx) -> str:  # noqa: ARG002
        tokens = _MD.parse(self.text)
        for tok in _walk(tokens):
            if tok.type in ("heading_open", "heading_close"):  # under this section's heading
                tok.tag = f"h{min(6, int(tok.tag[1]) + 2)}"
            elif tok.type == "image":
                src = str(tok.attrGet("src") or "")
                p = (self.base / src) if self.base is not None else None
                if p is not None and not src.startswith(("http:", "https:", "data:")) and p.is_file() \
                        and p.suffix.lower() == ".png":
                    tok.attrSet("src", "data:image/png;base64,"
                                + base64.b64encode(p.read_bytes()).decode("ascii"))
                elif not src.startswith("data:"):
                    tok.type = "text"
                    tok.content = f"[image {src} not embedded]"
        for tok in _walk(tokens):  # links to other pages: their text, then the address
            if tok.children:
                _unlink(tok.children)
        return '<div class="embedded-md">' + _MD.renderer.render(tokens, _MD.options, {}) + "</div>"

    def markdown(self, ctx: _Ctx) -> str:
        text = self.text
        if self.base is not None:
            # relative images: relative to the folder the report is written to
            base = Path(os.path.abspath(self.base))
            rel = os.path.relpath(base, ctx.out) if ctx.out is not None else str(base)
            rel = rel.replace(os.sep, "/")
            for tok in _walk(_MD.parse(text)):
                if tok.type == "image":
                    src = str(tok.attrGet("src") or "")
                    if src and not src.startswith(("http:", "https:", "data:", "/")):
                        text = text.replace(f"]({src})", f"]({rel}/{src})")
        # the embedded document's headings sit under this section's heading
        return "\n".join(("##" + line) if line.startswith("#") else line for line in text.splitlines())


def _unlink(children: list[Any]) -> None:
    """Turn links other than ``#anchors`` into plain text: ``text (address)``."""
    stack: list[str | None] = []
    for tok in children:
        if tok.type == "link_open":
            href = str(tok.attrGet("href") or "")
            external = not href.startswith("#")
            stack.append(href if external else None)
            if external:
                tok.type, tok.tag, tok.nesting, tok.attrs, tok.content = "text", "", 0, {}, ""
        elif tok.type == "link_close" and stack:
            href = stack.pop()
            if href is not None:
                tok.type, tok.tag, tok.nesting, tok.content = "text", "", 0, f" ({href})"


def _walk(tokens: Iterable[Any]) -> Iterable[Any]:
    for tok in tokens:
        yield tok
        if tok.children:
            yield from _walk(tok.children)


def _slug(title: str) -> str:
    """The anchor Markdown renderers (GitHub, GitLab, pandoc's gfm) give a heading."""
    keep = "".join(ch for ch in title.lower() if ch.isalnum() or ch in " -_")
    return keep.replace(" ", "-")


def _plain(text: str) -> str:
    return text.replace("**", "").replace("`", "").replace("*", "")


Block = Para | Bullets | Callout | Code | TableBlock | FigureBlock | MarkdownBlock


@dataclass
class Section:
    """A section of the report: a heading, blocks and sub-sections.

    ``synthetic``: the section shows results computed from synthetic data (it carries
    the synthetic-data banner)."""

    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    children: list[Section] = field(default_factory=list)
    synthetic: bool = False


@dataclass
class _Ctx:
    figures_used: dict[str, FigureFile] = field(default_factory=dict)
    out: Path | None = None  # the folder the Markdown is written to


def _render_html_section(sec: Section, ctx: _Ctx, level: int = 2) -> str:
    parts = [f'<section id="{sec.id}" class="level{level}">',
             f"<h{level}>{html_lib.escape(sec.title)}</h{level}>"]
    if sec.synthetic and level == 2:
        parts.append(f'<div class="section-banner" role="note">{html_lib.escape(SYNTHETIC_NOTICE)}</div>')
    parts += [b.html(ctx) for b in sec.blocks]
    parts += [_render_html_section(c, ctx, level + 1) for c in sec.children]
    parts.append("</section>")
    return "\n".join(parts)


def _render_md_section(sec: Section, ctx: _Ctx, level: int = 2) -> str:
    parts = [f"{'#' * level} {sec.title}"]
    if sec.synthetic and level == 2:
        parts.append(f"> **{SYNTHETIC_NOTICE}**")
    parts += [b.markdown(ctx) for b in sec.blocks]
    parts += [_render_md_section(c, ctx, level + 1) for c in sec.children]
    return "\n\n".join(parts)


# ----------------------------------------------------------------------------------------
# the report
# ----------------------------------------------------------------------------------------


@dataclass
class Report:
    """A findings report, ready to render.

    Attributes
    ----------
    title, subtitle
        The report's heading.
    sections
        Its sections, in order.
    tables
        The publication tables written under ``tables/`` (name -> table).
    synthetic
        Whether any result in it comes from synthetic data (the banner is shown on
        every printed page).
    incomplete
        Why the run is incomplete (shown at the top), ``""`` when it is complete.
    """

    title: str
    subtitle: str
    sections: list[Section]
    tables: dict[str, PublicationTable]
    synthetic: bool
    incomplete: str = ""
    source: Path | None = None

    def markdown(self) -> str:
        """The report as Markdown (figures linked as ``figures/STEM.png``)."""
        return self._markdown(_Ctx(out=self._abs(self.source)))

    def _markdown(self, ctx: _Ctx) -> str:
        head = [f"# {self.title}", "", f"*{self.subtitle}*", ""]
        if self.synthetic:
            head += [f"> **{SYNTHETIC_NOTICE}.** Every number and figure below that comes from "
                     "the ward panel shows how the method works, not what happened in the real "
                     "wards.", ""]
        if self.incomplete:
            head += [f"> **INCOMPLETE RUN: {self.incomplete}**", ""]
        toc = [f"- [{s.title}](#{_slug(s.title)})" for s in self.sections]
        body = "\n\n".join(_render_md_section(s, ctx) for s in self.sections)
        return "\n".join(head + ["## Contents", "", *toc, ""]) + "\n" + body.rstrip() + "\n"

    def html(self) -> str:
        """The report as one self-contained HTML page (no external requests)."""
        return self._html(_Ctx())

    def _html(self, ctx: _Ctx) -> str:
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES),
                                 autoescape=jinja2.select_autoescape(["html", "j2"]),
                                 keep_trailing_newline=True)
        sections = [jinja2.utils.markupsafe.Markup(_render_html_section(s, ctx)) for s in self.sections]
        css = (_TEMPLATES / "report.css").read_text(encoding="utf-8")
        return env.get_template("report.html.j2").render(
            title=self.title, subtitle=self.subtitle, synthetic=self.synthetic,
            notice=SYNTHETIC_NOTICE, incomplete=self.incomplete, css=jinja2.utils.markupsafe.Markup(css),
            toc=[(s.id, s.title) for s in self.sections], sections=sections,
        )

    @staticmethod
    def _abs(folder: Path | None) -> Path | None:
        return Path(os.path.abspath(folder)) if folder is not None else None

    def files(self, *, copy_figures: bool) -> list[str]:
        """The files :meth:`save` writes (relative to its folder)."""
        names = list(REPORT_FILES)
        if copy_figures:
            ctx = _Ctx()
            self._markdown(ctx)
            names += [f"figures/{stem}.png" for stem in ctx.figures_used]
        return names

    def save(self, out: str | os.PathLike[str] | None = None, *, force: bool = False,
             checked: bool = False) -> list[Path]:
        """Write ``report.html``, ``report.md`` and ``tables/`` into ``out``.

        ``out`` defaults to the run folder the report was built from.  The Markdown's
        figures are the run's own ``figures/*.png``; when ``out`` is another folder they
        are copied into ``out/figures``.  Refuses to overwrite an earlier report unless
        ``force`` (``checked``: the caller has already checked the folder).

        Raises
        ------
        OutputError
            If the files exist and ``force`` is false, or the HTML would exceed
            :data:`MAX_HTML_BYTES`.
        """
        target = Path(out) if out is not None else self.source
        if target is None:
            raise OutputError("no output folder: give out= (the report was not built from a folder)")
        copy = self.source is None or target.resolve() != self.source.resolve()
        if not checked:
            prepare_out_dir(target, self.files(copy_figures=copy), force=force)
        ctx = _Ctx()
        page = self._html(ctx)
        size = len(page.encode("utf-8"))
        if size >= MAX_HTML_BYTES:
            raise OutputError(f"the HTML report would be {size / 1e6:.1f} MB, over the "
                              f"{MAX_HTML_BYTES / 1e6:.0f} MB limit; report figures are too large")
        md = self._markdown(_Ctx(out=self._abs(target)))
        written = [write_text(page, target / REPORT_HTML), write_text(md, target / REPORT_MD)]
        (target / "tables").mkdir(exist_ok=True)
        for name, table in self.tables.items():
            for fmt, ext in TABLE_FORMATS.items():
                written.append(write_text(table.render(fmt), target / "tables" / f"{name}.{ext}"))
        if copy:
            (target / "figures").mkdir(exist_ok=True)
            for stem, fig in ctx.figures_used.items():
                p = target / "figures" / f"{stem}.png"
                if fig.path is not None and p.resolve() == fig.path.resolve():
                    continue
                written.append(_write_bytes(fig.png(), p))
        return written


def _write_bytes(data: bytes, target: Path) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target


# ----------------------------------------------------------------------------------------
# wording
# ----------------------------------------------------------------------------------------


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    try:
        return bool(v) and not pd.isna(v)
    except (TypeError, ValueError):
        return bool(v)


def _unit_words(key: str, fallback: str = "") -> str:
    ind = INDICATORS.get(key)
    if ind is None:
        return fallback
    if ind.unit == "%":
        return "percentage points"
    if ind.unit == "£":
        return "£"
    return ind.unit


def _with_unit(text: str, key: str, fallback: str = "") -> str:
    """``"−1.4 per 1,000 population"``, ``"−£1,234"``, ``"0.6 percentage points"``."""
    unit = _unit_words(key, fallback)
    if unit == "£":
        return (MINUS + "£" + text[1:]) if text.startswith(MINUS) else "£" + text
    return f"{text} {unit}".strip()


def _range(lo: Any, hi: Any, d: int, key: str, fallback: str = "") -> str:
    a, b = format_number(lo, d), format_number(hi, d)
    if _unit_words(key, fallback) == "£":
        return f"{_with_unit(a, key)} to {_with_unit(b, key)}"
    return f"{a} to {_with_unit(b, key, fallback)}"


def _strength(p: float) -> str:
    if not math.isfinite(p):
        return "not available"
    if p >= 0.975:
        return "the data point clearly to a benefit"
    if p >= 0.9:
        return "a benefit is probable but not certain"
    if p > 0.1:
        return "the data cannot tell benefit from harm"
    if p > 0.025:
        return "harm is probable but not certain"
    return "the data point clearly to harm"


def _report_claim(r: pd.Series) -> str:
    sig, better = _truthy(r["report_significant"]), _truthy(r["report_better"])
    direction = "better" if better else "worse"
    return (f"a significantly {direction} change than the benchmark" if sig
            else f"a {direction} change than the benchmark, not significant")


def _method_verdict(v: Any) -> str:
    v = str(v)
    return {"yes (better)": "significant, better", "yes (worse)": "significant, worse",
            "no": "not significant", "n/a": "not computed"}.get(v, v)


def _gate_sentence(gate: str) -> str:
    if gate_text(gate) == "passed":
        return "**Diagnostics gate: passed** (convergence, effective sample sizes, divergences, " \
               "energy and posterior predictive checks within the thresholds)."
    reasons = str(gate).removeprefix("FAILED:").removeprefix("FAILED").strip(" :")
    return (f"**Diagnostics gate: FAILED** ({reasons}). This fit is not for inference: "
            "do not report its numbers; refit with more draws or a different parameterisation.")


def _finding(r: pd.Series, ratio: pd.Series | None, conc_row: pd.Series | None,
             labels: Mapping[str, str]) -> list[Block]:
    key = str(r["indicator"])
    ind = INDICATORS.get(key)
    fallback = str(r.get("unit", ""))
    d = row_decimals((r["report_did_lower"], r["report_did_upper"]),
                     (r["posterior_q2.5"], r["posterior_q97.5"]))
    lo, hi = r["posterior_q2.5"], r["posterior_q97.5"]
    est = _with_unit(format_number(r["posterior_did"], d), key, fallback)
    p = float(r["prob_benefit"])
    blocks: list[Block] = []
    if ind is not None:
        blocks.append(Para(f"*{'Lower' if ind.lower_is_better else 'Higher'} is better. "
                           f"Source: {ind.source}; periods {ind.period_description}; the report's "
                           f"Table {ind.report_table}A/B and Chart {ind.report_chart}.*"))
    gate = str(r.get("gate", ""))
    if gate_text(gate) != "passed":
        blocks.append(Callout(_gate_sentence(gate), "warning"))
    sig = "excludes" if _truthy(r["posterior_significant"]) else "includes"
    text = (f"**Posterior.** The difference in differences (NBI change minus benchmark change) "
            f"is **{est}** (95% credible interval {_range(lo, hi, d, key, fallback)}); the "
            f"interval {sig} no difference.")
    if ratio is not None and not pd.isna(ratio.get("ratio")):
        dr = row_decimals((ratio["ratio_lower"], ratio["ratio_upper"]))
        name = str(ratio["ratio_scale"]).replace("_", " ")
        text += (f" As a ratio of the two groups' changes ({name}): "
                 f"{format_interval(ratio['ratio'], ratio['ratio_lower'], ratio['ratio_upper'], dr)}"
                 f" (1 = no difference).")
    text += (f" The probability that the NBI wards changed for the better relative to their "
             f"benchmarks is **P(benefit) = {format_probability(p)}**: {_strength(p)}.")
    blocks.append(Para(text))
    rep_est = _with_unit(format_number(r["report_did"], d), key, fallback)
    rep_range = _range(r["report_did_lower"], r["report_did_upper"], d, key, fallback)
    blocks.append(Para(f"**The report's claim.** {_report_claim(r).capitalize()} "
                       f"(DiD {rep_est}; the interval its overlap rule implies runs from "
                       f"{rep_range})."))
    if conc_row is not None:
        verdicts = [f"{labels.get(m, m)}: {_method_verdict(conc_row.get(m, 'n/a'))}"
                    for m in fq.METHODS if m != "bayes" and m in conc_row]
        n_sig = sum(str(conc_row.get(m, "")).startswith("yes") for m in fq.METHODS if m != "bayes")
        n_comp = sum(str(conc_row.get(m, "n/a")) != "n/a" for m in fq.METHODS if m != "bayes")
        blocks.append(Para(f"**The frequentist twin** (same panel): {'; '.join(verdicts)} — "
                           f"{n_sig} of {n_comp} frequentist methods call the difference "
                           f"significant (all methods with the posterior: {conc_row.get('agreement', 'n/a')})."))
    agree = _truthy(r["agree"])
    blocks.append(Para(f"**Verdict: {r['verdict']}.** The report and the posterior "
                       f"{'agree' if agree else 'disagree'}."))
    return blocks


# ----------------------------------------------------------------------------------------
# sections
# ----------------------------------------------------------------------------------------

FIT_FIGURE_CAPTIONS: dict[str, str] = {
    "trajectory": "**{title}: the two groups over time.** Posterior group values per period "
                  "(mean and 95% interval) beside the report's published values (the report's "
                  "Chart {chart}, redone).",
    "wards": "**{title}: the change in each ward.** Each ward's posterior change (mean and 95% "
             "interval) with its observed change, sorted within its group, and each group's "
             "pooled change.",
    "pairs": "**{title}: pair differences.** NBI ward's change minus its matched benchmark's "
             "change for every pair, with the difference of the pooled group changes.",
    "ppc": "**{title}: posterior predictive check.** Group totals per period and the variance "
           "between wards in data replicated from the posterior (grey) against the observed "
           "data (black line), with their p-values.",
    "ppc_values": "**{title}: observed and replicated ward values** (ArviZ). The share of "
                  "wards at or below each value on the indicator's own scale, per group and "
                  "period: the observed wards (black), each data set replicated from the "
                  "posterior (grey) and all of them together (dashed).",
    "rank": "**{title}: rank plots.** Ranks of the draws of each chain for the key parameters; "
            "flat, overlapping histograms mean the chains mix.",
}


def _fig(rec_figs: Mapping[str, FigureFile], stem: str, caption: str) -> FigureBlock:
    return FigureBlock(rec_figs.get(stem), caption, stem)


def _priors_text(m: Any) -> str:
    """The priors of a model config: the ones the config sets, and the defaults."""
    priors = getattr(m, "priors", None)
    if priors is None:
        return "the defaults of this nbdid version (see `docs/models.md`)"
    given = priors.given()
    parts = []
    for key in PRIOR_KEYS:
        p = given.get(key) or getattr(DEFAULT_PRIORS, key, None)
        if p is None:
            continue
        src = "" if key in given else " (default)"
        parts.append(f"{key.replace('_', ' ')} {p}{src}")
    text = "; ".join(parts)
    scale = float(getattr(m, "prior_scale", 1.0))
    if scale != 1.0:
        text += f"; every scale but the intercept's multiplied by {scale:g}"
    return text


def _describe_config(cfg: RunConfig, fit_attrs: Mapping[str, Mapping[str, str]],
                     indicators: Sequence[str]) -> list[Block]:
    m, s, fr = cfg.model, cfg.sampler, cfg.frequentist
    blocks: list[Block] = []
    items = []
    for key in indicators:
        a = fit_attrs.get(key, {})
        fam = a.get("nbdid_family") or (INDICATORS[key].family if key in INDICATORS else "")
        extra = []
        if a.get("nbdid_overdispersion"):
            extra.append(f"overdispersion {a['nbdid_overdispersion'].replace('_', ' ')}")
        forms = [a.get(f"nbdid_{c}parameterization") for c in ("", "change_", "pair_")]
        if any(forms):
            extra.append("ward levels / ward changes / pair effects "
                         + " / ".join((f or "n/a").replace("_", "-") for f in forms))
        text = FAMILIES[fam].likelihood_text(m) if fam in FAMILIES else fam
        items.append(f"{title_of(key)}: {text}"
                     + (f" ({'; '.join(extra)})" if extra else "") + ".")
    terms = ["an intercept, a period effect and a group effect"]
    if getattr(m, "ward_effects", True):
        terms.append("ward random intercepts")
    if m.pair_effects:
        terms.append("matched-pair random effects")
    if m.ward_change:
        terms.append("a ward-specific change after the initiative (random slope on the post period"
                     + (", one SD per group" if getattr(m, "group_change_sd", False) else "") + ")"
                     + (f", correlated with the ward's level (LKJ({m.lkj_eta:g}) prior)"
                        if m.ward_corr else ""))
    covs = tuple(getattr(m, "covariates", ()) or ())
    if covs:
        terms.append("standardised covariates (" + ", ".join(f"`{c}`" for c in covs)
                     + ") and their interactions with the post period")
    terms.append("the DiD: the group × period interaction"
                 + (" per period relative to the reference period (event study)" if m.event_study else ""))
    blocks.append(Para(
        "**Models.** One hierarchical Bayesian difference-in-differences model per indicator, "
        "fitted to every ward and period of the panel, with " + ", ".join(terms) + ". "
        f"Overdispersion setting: `{m.overdispersion}`; parameterisation: `{m.parameterization}` "
        "(centred or non-centred per component). The likelihood of each indicator, and what the "
        "automatic settings resolved to:"))
    blocks.append(Bullets(items))
    blocks.append(Para(
        "**Priors** (on the link scale: logit, log rate or log price; defaults are resolved "
        f"per fit from the data's own scale, see `docs/models.md`): {_priors_text(m)}."))
    blocks.append(Para(
        f"**Sampler.** {s.backend} NUTS, {s.chains} chains × {s.draws:,} draws after "
        f"{s.tune:,} warm-up iterations, target acceptance {s.target_accept:g}, seed {s.seed}."))
    blocks.append(Para(f"**Diagnostics gate.** A fit passes when {_thresholds(cfg)}. A fit that "
                       "fails is marked FAILED in every table and figure."))
    blocks.append(Para(
        "**Estimands.** The DiD compared with the report is population-averaged in the "
        "indicator's own unit: the NBI group's pooled post-period value (weighted by exposure, "
        "like the report's pooled rates) minus its counterfactual, computed from every "
        "posterior draw. P(benefit) is the share of draws in which the NBI group changed for "
        "the better relative to the benchmark."))
    blocks.append(Para(
        f"**Frequentist twin.** On the same panel: the report's pooled method recomputed, a GLM "
        f"with ward-clustered CR1 standard errors and t(G−1) reference, randomization inference "
        f"over within-pair label swaps (exact up to {fr.ri_exact_max_pairs} pairs, otherwise "
        f"{fr.ri_draws:,} draws, seed {fr.ri_seed}) and a paired t-test; two-sided level "
        f"{fr.alpha:g}."))
    return blocks


def _thresholds(cfg: RunConfig | None) -> str:
    if cfg is None:
        return ""
    g = cfg.diagnostics
    text = (f"R-hat ≤ {g.max_rhat:g}, bulk and tail ESS ≥ {g.min_ess_bulk:,}/{g.min_ess_tail:,}, "
            f"divergences ≤ {g.max_divergences}, BFMI ≥ {g.min_bfmi:g}, PPC p-values in "
            f"[{g.ppc_p_range[0]:g}, {g.ppc_p_range[1]:g}]")
    check = getattr(g, "prior_check", "off")
    if check != "off" and getattr(g, "prior_sensitivity", None) is not None:
        what = "the DiD" if check == "did" else "every quantity"
        text += (f", and no prior-data conflict or prior dominance of {what} (power-scaling "
                 f"sensitivity below {g.prior_sensitivity:g})")
    return text


def _summary_section(rec: RunRecord, comp: pd.DataFrame, table: PublicationTable) -> Section:
    n = len(comp)
    passed = int(comp["gate"].map(lambda g: gate_text(g) == "passed").sum()) if n else 0
    claimed = comp[comp["report_significant"].map(_truthy)] if n else comp
    survive = int((claimed["verdict"].astype(str).str.startswith("survives")).sum()) if n else 0
    new = int(comp["verdict"].astype(str).str.startswith("posterior finds").sum()) if n else 0
    items = [f"{n} indicator{'s' if n != 1 else ''} fitted; {passed} of {n} pass the diagnostics gate."]
    if n:
        items.append(f"The report calls {len(claimed)} of these {n} differences significant; "
                     f"{survive} of them {'survives' if survive == 1 else 'survive'} in the "
                     "posterior (95% credible interval excluding no difference, same direction).")
        if new:
            items.append(f"The posterior finds {new} difference{'s' if new != 1 else ''} the "
                         "report did not claim.")
        agree = int(comp["agree"].map(_truthy).sum())
        items.append(f"The report and the posterior agree on {agree} of {n} verdicts.")
    failed = rec.info.get("failed") or {}
    if failed:
        items.append("Not fitted: " + "; ".join(f"{title_of(k)} ({v})" for k, v in failed.items()) + ".")
    blocks: list[Block] = [Bullets(items), TableBlock(table),
                           _fig(rec.figures, "forest",
                                "**Posterior DiD of every indicator beside the report's.** Each "
                                "panel in its indicator's unit: the posterior mean and 95% "
                                "credible interval (top) and the report's DiD with the interval "
                                "its overlap rule implies (bottom); shape and fill carry the "
                                "verdict, a cross marks a fit that failed its diagnostics.")]
    return Section("summary", "Summary of findings", blocks, synthetic=rec.synthetic)


def _findings_section(rec: RunRecord, comp: pd.DataFrame) -> Section:
    ratios = ratio_rows(rec.tables.get("summary")).set_index("indicator")
    cs = rec.table("concordance_summary")
    cs = cs.assign(indicator=cs["indicator"].astype(str)).set_index("indicator") if len(cs) else cs
    conc = rec.table("concordance")
    labels = dict(fq.METHOD_LABELS)
    if len(conc) and "method_label" in conc:
        labels.update(dict(zip(conc["method"], conc["method_label"], strict=True)))
    children = []
    for _, r in comp.iterrows():
        key = str(r["indicator"])
        ind = INDICATORS.get(key)
        blocks = _finding(r, ratios.loc[key] if key in ratios.index else None,
                          cs.loc[key] if len(cs) and key in cs.index else None, labels)
        fmt = {"title": title_of(key), "chart": ind.report_chart if ind else "?"}
        for name in ("trajectory", "wards", "pairs"):
            blocks.append(_fig(rec.figures, f"{name}_{key}", FIT_FIGURE_CAPTIONS[name].format(**fmt)))
        children.append(Section(f"finding-{key}", title_of(key), blocks, synthetic=rec.synthetic))
    intro = Para("For each indicator: the posterior difference in differences in the indicator's "
                 "unit and as a ratio, its 95% credible interval and the probability of benefit; "
                 "the report's claim beside it; the frequentist methods' verdicts on the same "
                 "panel; whether they agree; and the fit's diagnostics gate.")
    return Section("findings", "Findings, indicator by indicator", [intro], children,
                   synthetic=rec.synthetic)


def _tables_section(rec: RunRecord, conc: PublicationTable | None) -> Section:
    blocks: list[Block] = [Para(
        "The report's pooled method recomputed from the panel, a ward-clustered GLM, "
        "randomization inference and a paired t-test, beside the posterior. This table and the "
        "comparison table of the summary are also written as HTML, LaTeX and Markdown under "
        "`tables/` (`concordance.*`, `comparison.*`) for papers.")]
    if conc is not None:
        blocks.append(TableBlock(conc))
    blocks.append(_fig(rec.figures, "concordance",
                       "**Every method's interval per indicator** beside the report's published "
                       "one; shape and fill carry each method's verdict."))
    return Section("frequentist", "The frequentist twin", blocks, synthetic=rec.synthetic)


def _diagnostics_section(rec: RunRecord, comp_keys: Sequence[str]) -> Section:
    diag = rec.table("diagnostics")
    blocks: list[Block] = []
    if len(diag):
        blocks.append(TableBlock(diagnostics_table(diag, thresholds=_thresholds(rec.config))))
    blocks.append(_fig(rec.figures, "diagnostics",
                       "**The diagnostics gate per indicator**: each diagnostic against its "
                       "threshold."))
    sens = prior_sensitivity_columns(diag)
    children = []
    if sens:
        children.append(Section("prior-sensitivity", "Prior sensitivity", [Para(
            "Power-scaling prior sensitivity as computed by the run (columns "
            + ", ".join(f"`{c}`" for c in sens) + " of `diagnostics.csv`, shown in the table "
            "above). A parameter whose posterior moves when the prior is scaled depends on the "
            "prior as much as on the data.")]))
    else:
        children.append(Section("prior-sensitivity", "Prior sensitivity", [Para(
            "Prior sensitivity was not computed for this run (no sensitivity columns in "
            "`diagnostics.csv`).")]))
    for key in comp_keys:
        fmt = {"title": title_of(key)}
        children.append(Section(f"checks-{key}", title_of(key), [
            _fig(rec.figures, f"ppc_{key}", FIT_FIGURE_CAPTIONS["ppc"].format(**fmt)),
            _fig(rec.figures, f"ppc_values_{key}", FIT_FIGURE_CAPTIONS["ppc_values"].format(**fmt)),
            _fig(rec.figures, f"rank_{key}", FIT_FIGURE_CAPTIONS["rank"].format(**fmt)),
        ]))
    return Section("diagnostics", "Diagnostics and posterior predictive checks", blocks, children,
                   synthetic=rec.synthetic)


def _scrutiny_section(rec: RunRecord) -> Section:
    t = rec.tables
    blocks: list[Block] = [Para(
        "This section uses only the report's published numbers (no ward data): it holds "
        "whether the panel is real or synthetic.")]
    children: list[Section] = []
    t1 = t.get("table1.csv")
    if t1 is not None and len(t1):
        agree_cols = [c for c in t1.columns if c.endswith("_agrees")]
        n_ok = int(t1[agree_cols].astype(bool).to_numpy().sum())
        n_all = len(t1) * len(agree_cols)
        bt = t.get("b_tables.csv")
        extra = (f" {int(bt['agrees'].astype(bool).sum())} of {len(bt)} answers of the B tables "
                 "agree with the tables' own intervals." if bt is not None and len(bt) else "")
        children.append(Section("replication", "The report's method, replicated", [Para(
            f"Table 1 recomputed from the published values and 95% CI half-widths with the "
            f"report's overlap rule: {n_ok} of {n_all} cells reproduced.{extra}")]))
    disc = t.get("discrepancies.csv")
    if disc is not None:
        items = [f"{'**' + title_of(r.indicator) + '** — ' if isinstance(r.indicator, str) and r.indicator else ''}"
                 f"{r.location}: published {r.published}; {r.evidence}" for r in disc.itertuples()]
        children.append(Section("discrepancies", "Discrepancies in the report", [
            Para(f"{len(disc)} places where the report contradicts its own numbers or labels."),
            *([Bullets(items)] if items else [])]))
    imp, cons = t.get("implied_denominators.csv"), t.get("denominator_consistency.csv")
    if imp is not None or cons is not None:
        items = []
        if imp is not None:
            flagged = imp[imp["flag"].astype(str) != "ok"].drop_duplicates("indicator")
            items += [f"**{title_of(r.indicator)}** ({r.flag}): {r.explanation}" for r in flagged.itertuples()]
        if cons is not None:
            bad = cons[~cons["consistent"].map(_truthy)].drop_duplicates("check")
            items += [f"{r.check}: {r.explanation}" for r in bad.itertuples()]
        blocks_f: list[Block] = [Para(
            "Under a pooled binomial or Poisson model each published half-width implies how many "
            "people its interval was computed from; implausible or mutually inconsistent sizes "
            "show intervals not computed over the 29 wards' counts.")]
        blocks_f.append(Bullets(items) if items else Para("No implausible or inconsistent implied "
                                                          "denominators among these indicators."))
        children.append(Section("forensics", "Forensics of the intervals", blocks_f))
    tp = t.get("tipping_points.csv")
    if tp is not None and len(tp):
        items = [f"**{title_of(r.indicator)}**: {r.interpretation}" for r in tp.itertuples()]
        tb_blocks: list[Block] = [Para(
            "How much the change would have to vary from ward to ward (a standard deviation in "
            "the indicator's unit) before the report's difference stopped being significant, "
            "with the report's 29 wards a group."), Bullets(items)]
        tbb = t.get("tipping_bayes.csv")
        if tbb is not None and len(tbb):
            tb_blocks.append(Para(
                "**Judging the report without ward data.** The posterior DiD the published numbers "
                "support once the unknown ward-to-ward SD of change has a prior measured from real "
                "small-area data:"))
            tb_blocks.append(Bullets([f"**{title_of(r.indicator)}**: {r.interpretation}"
                                      for r in tbb.itertuples()]))
        tb_blocks.append(_fig(rec.figures, "tipping_bayes",
                              "**Bayesian tipping point.** The posterior DiD supported by the "
                              "published numbers as a function of the ward-to-ward SD of change, "
                              "with the prior on that SD on its own axis."))
        children.append(Section("tipping", "Tipping points", tb_blocks))
    return Section("report-scrutiny", "The report under scrutiny: tipping points, forensics, "
                   "discrepancies", blocks, children)


def _sweep_section(sw: SweepRecord, indicators: Sequence[str]) -> Section:
    s = sw.summary.copy()

    def pct(x: Any) -> str:
        try:
            v = float(x)
        except (TypeError, ValueError):
            return "–"
        return "–" if not math.isfinite(v) else f"{100 * v:.0f}%"

    rows = pd.DataFrame({
        "indicator": [title_of(k) for k in s["indicator"].astype(str)],
        "specs": [f"{int(a)} of {int(b)}" for a, b in zip(s["n_fitted"], s["n_specs"], strict=True)],
        "gate": s["n_gate_failed"].astype(int).astype(str),
        "benefit": s["share_benefit"].map(pct),
        "harm": s["share_harm"].map(pct),
        "p09": s["share_prob_benefit_gt_0_9"].map(pct),
        "main": [f"{c} (holds in {pct(h)})" for c, h in zip(s.get("main_conclusion", ""),
                                                             s.get("share_main_conclusion", ""),
                                                             strict=True)],
        "report": [f"{c or '–'} ({pct(h)} agree)" for c, h in
                   zip(s.get("report_conclusion", ""), s.get("share_report_conclusion", ""),
                       strict=True)],
    })
    table = simple_table(
        "sensitivity", "How often each conclusion holds across specifications", rows,
        [("indicator", "Indicator"), ("specs", "Fitted"), ("gate", "Gate failed"),
         ("benefit", "Benefit"), ("harm", "Harm"), ("p09", "P(benefit) > 0.9"),
         ("main", "Main specification"), ("report", "Report's conclusion")],
        stub="indicator", synthetic=sw.synthetic,
        notes=["Benefit/harm: share of fitted specifications whose 95% interval excludes zero in "
               "that direction; gate failed: fits that failed the diagnostics gate."])
    blocks: list[Block] = [Para(
        f"Sweep folder `{sw.folder}`: {int(sw.info.get('n_specs', len(s)))} specifications "
        f"(matching, sample and model choices), seed {sw.info.get('seed', 'n/a')}."),
        TableBlock(table)]
    keys = [k for k in indicators if f"spec_curve_{k}" in sw.figures] or \
        sorted(k.removeprefix("spec_curve_") for k in sw.figures)
    for key in keys:
        blocks.append(_fig(sw.figures, f"spec_curve_{key}",
                           f"**{title_of(key)}: specification curve.** The DiD and 95% interval of "
                           "every specification, sorted, with its choices marked underneath; "
                           "hollow marks failed the diagnostics gate."))
    return Section("sensitivity", "Sensitivity sweep", blocks, synthetic=sw.synthetic)


MAX_ASSURANCE_ROWS = 60
"""Rows of ``assurance.csv`` shown in the report (the file has them all)."""


ASSURANCE_COLUMNS = ("indicator", "areas", "pairs", "n_pairs", "matching_ratio", "effect_percent",
                     "effect_unit", "assurance", "assurance_interval", "mde_percent")
"""Columns of ``assurance.csv`` shown in the report, besides every method's power."""


def assurance_columns(table: pd.DataFrame, limit: int = 12) -> list[str]:
    """The columns of an ``assurance.csv`` worth a table in the report: the design size
    and effect, the assurance, each method's power and the minimum detectable effect
    (not the Monte Carlo errors, counts or provenance); the first columns of a table
    that has none of them."""
    wanted = [c for c in table.columns
              if c.lower() in ASSURANCE_COLUMNS
              or (c.lower().startswith("power_") and not c.lower().endswith("_se"))]
    if not wanted:
        wanted = [c for c in table.columns if c not in ("notice", "synthetic")]
    return wanted[:limit]


def _design_section(ds: DesignRecord) -> Section:
    blocks: list[Block] = [Para(f"Design folder `{ds.folder}`.")]
    if ds.summary_md.strip():
        blocks.append(MarkdownBlock(ds.summary_md, ds.folder))
    if ds.assurance is not None and len(ds.assurance):
        a = ds.assurance
        cols = assurance_columns(a)
        shown_rows = a.head(MAX_ASSURANCE_ROWS)
        disp = shown_rows[cols].map(lambda v: format_number(v, 3) if isinstance(v, float) else str(v))
        disp.insert(0, "_row", [str(i + 1) for i in range(len(disp))])
        notes = []
        if len(cols) < len([c for c in a.columns if c not in ("notice", "synthetic")]) or len(a) > len(disp):
            notes.append(f"Main columns{'' if len(a) <= len(disp) else f' of the first {len(disp)} of {len(a)} rows'}; "
                         f"every column is in {ds.folder / 'assurance.csv'}.")
        table = simple_table("assurance", "Assurance of the design", disp,
                             [("_row", "")] + [(c, c.replace("_", " ")) for c in cols],
                             stub="_row", synthetic=ds.synthetic, notes=notes)
        blocks.append(TableBlock(table))
    shown = {Path(src).stem for src in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", ds.summary_md)}
    for stem, fig in ds.figures.items():
        if stem not in shown:  # figures the summary does not show itself
            blocks.append(FigureBlock(fig, f"**{stem.replace('_', ' ')}** (design study).", stem))
    return Section("design", "Design and assurance", blocks, synthetic=ds.synthetic)


def _provenance_section(rec: RunRecord) -> Section:
    info = rec.info
    items = [f"Panel: {info.get('panel', 'n/a')} (SHA-256 `{info.get('panel_sha256', 'n/a')}`)."]
    fitted = info.get("fitted")
    if fitted is not None:
        items.append("Indicators fitted: " + (", ".join(title_of(k) for k in fitted) or "none") + ".")
    failed = info.get("failed") or {}
    if failed:
        items.append("**Not fitted:** " + "; ".join(f"{title_of(k)}: {v}" for k, v in failed.items()))
    items.append("The report's own numbers (Tables 1, 5A–11A and the B tables of *Everybody Needs "
                 "Good Neighbourhoods 2*, July 2025) are embedded in nbdid.")
    blocks: list[Block] = []
    if rec.synthetic:
        blocks.append(Callout(
            f"{SYNTHETIC_NOTICE}. Ward-level data cannot be downloaded here, so the default panel "
            "is simulated for the 58 study wards, calibrated so that each group's pooled value "
            "reproduces the report's Tables 5A–11A. Its posterior numbers show how the method "
            "works, not what happened in the real wards. To analyse real wards, build a panel "
            "from the public sources (`nbdid ingest`) and name it in the config: "
            "`panel = \"my_panel.csv\"`.", "synthetic"))
    blocks.append(Bullets(items))
    blocks.append(Para("**Caveats.**"))
    blocks.append(Bullets([
        "The design is matched, not randomised: the DiD estimates the initiative's effect only "
        "if the NBI and benchmark wards would otherwise have changed alike (parallel trends on "
        "the link scale).",
        "With two periods, each ward's change and any extra observation-level variation cannot "
        "be told apart; the ward-specific change absorbs both.",
        "The population-averaged DiD (the number compared with the report) and the "
        "ward-conditional DiD on the link scale (in `summary.csv`) answer different questions.",
        "A fit that failed the diagnostics gate is not for inference, whatever its interval says.",
    ]))
    return Section("provenance", "Data provenance and caveats", blocks, synthetic=rec.synthetic)


def _appendix_section(rec: RunRecord, command: str, extra_folders: Sequence[tuple[str, Path]]) -> Section:
    info = rec.info
    versions = info.get("versions") or {}
    blocks: list[Block] = [Para("Everything needed to make these numbers again.")]
    items = [f"Run made by: `{info.get('command') or 'not recorded (run made before nbdid recorded it)'}`",
             f"This report made by: `{command}`",
             f"Seed: {info.get('seed', 'n/a')}",
             f"Panel SHA-256: `{info.get('panel_sha256', 'n/a')}`",
             f"Run time: {info.get('seconds', 'n/a')} s",
             f"Report made: {dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()}"]
    if rec.folder is not None:
        items.insert(0, f"Run folder: `{rec.folder}`")
    for label, path in extra_folders:
        items.append(f"{label}: `{path}`")
    blocks.append(Bullets(items))
    if versions:
        vt = pd.DataFrame({"package": list(versions), "run": [str(v) for v in versions.values()]})
        now = package_versions()
        vt["report"] = [now.get(k, "") for k in vt["package"]]
        blocks.append(TableBlock(simple_table(
            "versions", "Software versions", vt,
            [("package", "Package"), ("run", "Run"), ("report", "This report")], stub="package")))
    if rec.file_hashes:
        ht = pd.DataFrame({"file": list(rec.file_hashes), "sha256": list(rec.file_hashes.values())})
        blocks.append(TableBlock(simple_table("hashes", "SHA-256 of the run's result files", ht,
                                              [("file", "File"), ("sha256", "SHA-256")], stub="file")))
    fa = rec.fit_attrs
    if fa:
        dh = [f"{title_of(k)}: `{a.get('nbdid_data_sha256', 'n/a')}`" for k, a in fa.items()]
        blocks.append(Para("**Data hash of each fit** (the indicator's rows of the panel):"))
        blocks.append(Bullets(dh))
    if info.get("config"):
        blocks.append(Para("**The run's configuration** (`nbdid run --config` accepts it as it is):"))
        blocks.append(Code(str(info["config"]).rstrip(), "toml"))
    return Section("appendix", "Reproducibility appendix", blocks)


def build_report(
    source: str | os.PathLike[str] | RunResult | RunRecord,
    *,
    sweep: str | os.PathLike[str] | None = None,
    design: str | os.PathLike[str] | None = None,
    command: str | None = None,
    folder: str | os.PathLike[str] | None = None,
    embedded: Mapping[str, bytes] | None = None,
) -> Report:
    """Build the findings report of a finished run.

    Parameters
    ----------
    source
        A run folder (``nbdid run --out``), a :class:`~nbdid.workflow.run.RunResult` or a
        :class:`RunRecord`.
    sweep
        A sensitivity sweep folder (``nbdid sensitivity --out``): adds its summary and
        specification curves.
    design
        A design / assurance folder (``summary.md``, ``assurance.csv``).
    command
        The command that makes the report (for the appendix; default: this process's
        command line).
    folder
        For a ``RunResult``: the folder it was saved in (its figures are read there
        instead of being drawn again).
    embedded
        For a ``RunResult`` saved in ``folder``: the figures' PNGs as embedded in the
        HTML page (:func:`palette_png` of the saved files) by stem, when already made.

    Returns
    -------
    Report
    """
    if isinstance(source, RunRecord):
        rec = source
    elif isinstance(source, (str, os.PathLike)):
        rec = read_run(source)
    else:
        rec = record_from_result(source, folder, embedded=embedded)
    sw = read_sweep(sweep) if sweep is not None else None
    ds = read_design(design) if design is not None else None
    command = command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    comp = rec.table("comparison")
    if len(comp):
        comp = comp.assign(indicator=comp["indicator"].astype(str))
    ctable = comparison_table(comp, rec.tables.get("summary"),
                              diagnostics_note=_thresholds(rec.config)) if len(comp) else None
    conc = rec.table("concordance")
    cctable = concordance_table(conc) if len(conc) else None
    tables = {k: v for k, v in (("comparison", ctable), ("concordance", cctable)) if v is not None}
    keys = [str(k) for k in comp["indicator"]] if len(comp) else []

    sections: list[Section] = []
    if ctable is not None:
        sections.append(_summary_section(rec, comp, ctable))
        sections.append(_findings_section(rec, comp))
    sections.append(_tables_section(rec, cctable))
    if rec.config is not None:
        methods = _describe_config(rec.config, rec.fit_attrs, keys)
    elif rec.info.get("config"):
        methods = [Para("The run's configuration was written by another version of nbdid and "
                        "cannot be described by this one; it is shown as written in the "
                        "reproducibility appendix.")]
    else:
        methods = [Para("The run folder does not record its configuration (`run_info.json` has "
                        "no `config`).")]
    sections.append(Section("methods", "Methods", methods))
    if len(comp):
        sections.append(_diagnostics_section(rec, keys))
    sections.append(_scrutiny_section(rec))
    if sw is not None:
        sections.append(_sweep_section(sw, keys))
    if ds is not None:
        sections.append(_design_section(ds))
    sections.append(_provenance_section(rec))
    extra = [(label, p.folder) for label, p in (("Sweep folder", sw), ("Design folder", ds)) if p is not None]
    sections.append(_appendix_section(rec, command, extra))

    failed = rec.info.get("failed") or {}
    configured = list(rec.config.indicators) if rec.config is not None else keys
    missing = [k for k in configured if k not in keys]
    incomplete = ""
    if failed or missing:
        incomplete = ("not every configured indicator was fitted ("
                      + ", ".join(title_of(k) for k in (list(failed) or missing))
                      + "); its findings are missing from this report.")
    synthetic = rec.synthetic or bool(sw and sw.synthetic) or bool(ds and ds.synthetic)
    panel = rec.info.get("panel", "")
    subtitle = (f"Bayesian re-analysis of Everybody Needs Good Neighbourhoods 2 — "
                f"{len(keys)} indicator{'s' if len(keys) != 1 else ''}; panel: {panel}")
    return Report("nbdid findings report", subtitle, sections, tables, synthetic, incomplete,
                  rec.folder)


def report_files(report: bool = True) -> list[str]:
    """The report's files in a run folder (``[]`` when ``report`` is false)."""
    return list(REPORT_FILES) if report else []


__all__ = [
    "MAX_HTML_BYTES", "REPORT_FILES", "REPORT_PNG", "Report", "RunRecord", "Section",
    "build_report", "palette_png", "read_design", "read_run", "read_sweep", "record_from_result",
    "report_files", "report_pngs",
]
