"""The one style of every nbdid figure: print sizes, fonts, palette, labels, banner, saving.

Every figure function is wrapped in :func:`styled`, which applies :data:`RC` through
:func:`matplotlib.rc_context` while the figure is built and laid out; global rcParams
are never changed.  Figures are made at their print size: a single journal column
(:data:`SINGLE_COLUMN_MM`) or two (:data:`DOUBLE_COLUMN_MM`), with no text under
:data:`MIN_FONT_PT` at that size, and are saved at that size (no ``bbox_inches="tight"``
shrinking or growing them at save time) by :func:`save_figure` / :func:`figure_bytes`.

Colours are the Okabe-Ito palette (safe for the common colour-vision deficiencies).
A verdict is never carried by colour alone: benefit is a filled circle, harm a filled
square, an interval that includes zero a hollow circle, and a fit that failed its
diagnostics gate a cross on a dashed interval plus the words "diagnostics failed".
"""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, ParamSpec

import matplotlib as mpl
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.textpath import TextToPath
from matplotlib.ticker import FuncFormatter, MaxNLocator

from nbdid.families import FAMILIES
from nbdid.figures.pdf_fonts import fast_font_subsets
from nbdid.outputs import write_figure
from nbdid.provenance import SYNTHETIC_NOTICE
from nbdid.registry import INDICATORS

# ----------------------------------------------------------------------------------------
# sizes
# ----------------------------------------------------------------------------------------

MM_PER_INCH = 25.4
SINGLE_COLUMN_MM = 85.0
"""Width of a single-column journal figure."""
DOUBLE_COLUMN_MM = 174.0
"""Width of a double-column (full-page-width) journal figure."""
MAX_HEIGHT_MM = 230.0
"""Tallest figure (a full page of text block)."""
MIN_FONT_PT = 8.0
"""Smallest text at print size."""
FONT_PT = 8.0
TITLE_PT = 9.0
PNG_DPI = 300
FORMATS: tuple[str, ...] = ("png", "pdf", "svg")
"""Formats written by :func:`save_figure` (PNG at :data:`PNG_DPI`, vector PDF and SVG)."""

Width = Literal["single", "double"]


def width_mm(width: Width | float) -> float:
    """Width in mm of ``"single"`` / ``"double"`` column, or a width in mm unchanged."""
    if width == "single":
        return SINGLE_COLUMN_MM
    if width == "double":
        return DOUBLE_COLUMN_MM
    return float(width)


def figsize(width: Width | float, height_mm: float) -> tuple[float, float]:
    """Matplotlib ``figsize`` (inches) of a figure ``width`` wide and ``height_mm`` tall.

    The height is capped at :data:`MAX_HEIGHT_MM`.
    """
    h = min(float(height_mm), MAX_HEIGHT_MM)
    return width_mm(width) / MM_PER_INCH, h / MM_PER_INCH


def size_mm(fig: Figure) -> tuple[float, float]:
    """The figure's ``(width, height)`` in mm at print size."""
    w, h = fig.get_size_inches()
    return float(w * MM_PER_INCH), float(h * MM_PER_INCH)


# ----------------------------------------------------------------------------------------
# palette and marks
# ----------------------------------------------------------------------------------------

OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
"""Okabe & Ito (2008) colour-blind-safe palette."""

GREY = "#7A7A7A"
LIGHT_GREY = "#D9D9D9"
NBI_COLOUR = OKABE_ITO["blue"]
BENCHMARK_COLOUR = OKABE_ITO["orange"]
REPORT_COLOUR = "#444444"
PRIOR_COLOUR = "#BBBBBB"
BANNER_COLOUR = OKABE_ITO["yellow"]
GROUP_COLOURS: dict[str, str] = {"nbi": NBI_COLOUR, "benchmark": BENCHMARK_COLOUR}
GROUP_MARKERS: dict[str, str] = {"nbi": "o", "benchmark": "s"}


@dataclass(frozen=True)
class Mark:
    """How an estimate with a given verdict is drawn.

    Attributes
    ----------
    colour, marker
        Line/marker colour and marker shape.
    filled
        Filled marker (the interval excludes zero) or hollow (it does not).
    linestyle
        Interval line style.
    label
        Legend text.
    """

    colour: str
    marker: str
    filled: bool
    linestyle: str
    label: str

    @property
    def face(self) -> str:
        """Marker face colour."""
        return self.colour if self.filled else "white"

    def handle(self, label: str | None = None) -> Line2D:
        """A legend handle: a short interval with the marker."""
        return Line2D([], [], color=self.colour, marker=self.marker, mfc=self.face,
                      mec=self.colour, ls=self.linestyle, lw=1.2, ms=5,
                      label=self.label if label is None else label)


VERDICT_MARKS: dict[str, Mark] = {
    "benefit": Mark(OKABE_ITO["blue"], "o", True, "-", "95% interval excludes 0: benefit"),
    "harm": Mark(OKABE_ITO["vermillion"], "s", True, "-", "95% interval excludes 0: harm"),
    "unclear": Mark(GREY, "o", False, "-", "95% interval includes 0"),
}
"""Verdict (``benefit``/``harm``/``unclear``, as analysis tables spell them) -> mark."""

FAILED_MARK = Mark("#000000", "X", True, "--", "diagnostics failed (not for inference)")
"""A fit that failed its diagnostics gate, whatever its interval says."""



def verdict_mark(verdict: str | None, *, gate_passed: bool = True) -> Mark:
    """The :class:`Mark` of a verdict read from a table (unknown verdicts: unclear)."""
    if not gate_passed:
        return FAILED_MARK
    return VERDICT_MARKS.get(str(verdict or "").strip().lower(), VERDICT_MARKS["unclear"])


def significance_verdict(significant: Any, better: Any) -> str:
    """``benefit``/``harm``/``unclear`` from a table's ``significant`` and ``better`` columns.

    This only reads the two columns an analysis table already decided; it does not
    test anything.
    """
    if pd.isna(significant) or not bool(significant) or pd.isna(better):
        return "unclear"
    return "benefit" if bool(better) else "harm"


def draw_interval(ax: Axes, lo: float, hi: float, est: float, y: float, mark: Mark, *,
                  horizontal: bool = True, lw: float = 1.6, ms: float = 5.0,
                  zorder: float = 3) -> None:
    """Draw one interval with its point estimate in the style of ``mark``."""
    xs, ys = ([lo, hi], [y, y]) if horizontal else ([y, y], [lo, hi])
    ax.plot(xs, ys, color=mark.colour, ls=mark.linestyle, lw=lw, solid_capstyle="butt",
            zorder=zorder)
    px, py = (est, y) if horizontal else (y, est)
    if mark.marker:
        ax.plot(px, py, marker=mark.marker, mfc=mark.face, mec=mark.colour, mew=1.0,
                ms=ms, ls="none", zorder=zorder + 0.1)


# ----------------------------------------------------------------------------------------
# labels and units
# ----------------------------------------------------------------------------------------

RATIO_LABELS: dict[str, str] = {name: f.ratio_label for name, f in FAMILIES.items()}
"""The ratio scale of each family in words (from the family objects)."""


def indicator_title(key: str) -> str:
    """Display name of an indicator: the registry title (the report's), else the key."""
    ind = INDICATORS.get(str(key))
    return ind.title if ind is not None else str(key)


def indicator_unit(key: str, *, kind: Literal["level", "difference"] = "difference",
                   fallback: str = "") -> str:
    """Display unit of an indicator's values (``kind="level"``) or of differences.

    Percentages are ``%`` as levels and ``pp`` (percentage points) as differences;
    rates use the registry's short unit (``per 1,000 pop.``); prices ``£``.  Keys not
    in the registry get ``fallback``.
    """
    ind = INDICATORS.get(str(key))
    if ind is None:
        return fallback
    if ind.unit == "%":
        return "%" if kind == "level" else "pp"
    return ind.short_unit


def indicator_label(key: str, *, kind: Literal["level", "difference", "ratio"] = "difference",
                    fallback_unit: str = "") -> str:
    """``"Title (unit)"``: the one label of an indicator on every axis and legend.

    ``kind="ratio"`` gives the ratio scale of its family (``"Overall Crime Rate (rate
    ratio)"``).
    """
    if kind == "ratio":
        ind = INDICATORS.get(str(key))
        unit = RATIO_LABELS.get(ind.family, "ratio") if ind is not None else (fallback_unit or "ratio")
    else:
        unit = indicator_unit(key, kind=kind, fallback=fallback_unit)
    title = indicator_title(key)
    return f"{title} ({unit})" if unit else title


def format_value(x: float, scale: float) -> str:
    """``x`` with decimals suited to the magnitude ``scale`` of its row (minus sign ``−``)."""
    if x != x:  # NaN
        return "n/a"
    if x in (float("inf"), float("-inf")):
        return "∞" if x > 0 else "−∞"
    scale = abs(scale)
    d = 0 if scale >= 100 else 1 if scale >= 10 else 2
    return f"{x:,.{d}f}".replace("-", "−")


def format_interval(est: float, lo: float, hi: float, scale: float | None = None) -> str:
    """``"−8.6 [−13.4, −3.8]"`` with decimals chosen from the largest magnitude."""
    if scale is None:
        finite = [abs(v) for v in (est, lo, hi) if v == v and abs(v) != float("inf")]
        scale = max(finite) if finite else 1.0
    return f"{format_value(est, scale)} [{format_value(lo, scale)}, {format_value(hi, scale)}]"


def nice_locator(nbins: int = 5, **kwargs: Any) -> MaxNLocator:
    """Tick locator at 1, 2, 2.5 or 5 times a power of ten (never steps of 1.5)."""
    kwargs.setdefault("steps", [1, 2, 2.5, 5, 10])
    return MaxNLocator(nbins, **kwargs)


def _number(x: float, _pos: Any = None) -> str:
    return f"{x:,.0f}".replace("-", "\u2212")


def thousands(axis: Any) -> None:
    """Tick labels with thousands separators (``20,000``) when the axis reaches 1,000."""
    lo, hi = axis.get_view_interval()
    if max(abs(lo), abs(hi)) >= 1000:
        axis.set_major_formatter(FuncFormatter(_number))


# ----------------------------------------------------------------------------------------
# the rc context
# ----------------------------------------------------------------------------------------

RC: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": FONT_PT,
    "axes.titlesize": TITLE_PT,
    "axes.titleweight": "bold",
    "axes.titlepad": 4.0,
    "axes.labelsize": FONT_PT,
    "axes.linewidth": 0.6,
    "axes.edgecolor": "#333333",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": cycler(color=[OKABE_ITO[k] for k in (
        "blue", "orange", "bluish_green", "vermillion", "reddish_purple", "sky_blue",
        "yellow", "black")]),
    "axes.formatter.use_mathtext": False,
    "axes.unicode_minus": True,
    "xtick.labelsize": FONT_PT,
    "ytick.labelsize": FONT_PT,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.minor.width": 0.4,
    "ytick.minor.width": 0.4,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "xtick.minor.size": 1.5,
    "ytick.minor.size": 1.5,
    "xtick.major.pad": 2.0,
    "ytick.major.pad": 2.0,
    "lines.linewidth": 1.2,
    "lines.markersize": 5.0,
    "patch.linewidth": 0.6,
    "legend.fontsize": FONT_PT,
    "legend.title_fontsize": FONT_PT,
    "legend.frameon": False,
    "legend.handlelength": 1.6,
    "legend.borderaxespad": 0.2,
    "legend.columnspacing": 1.2,
    "figure.titlesize": TITLE_PT,
    "figure.labelsize": FONT_PT,
    "figure.dpi": 100,
    "figure.facecolor": "white",
    "figure.constrained_layout.h_pad": 2.0 / 72,
    "figure.constrained_layout.w_pad": 2.0 / 72,
    "figure.constrained_layout.hspace": 0.02,
    "figure.constrained_layout.wspace": 0.02,
    "image.cmap": "cividis",
    "mathtext.default": "regular",
    "savefig.dpi": PNG_DPI,
    "savefig.bbox": "standard",
    "savefig.facecolor": "white",
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "path",
    "svg.hashsalt": "nbdid",
}
"""rcParams of every nbdid figure (applied by :func:`styled`, never globally)."""


def rc_context() -> Any:
    """``matplotlib.rc_context(RC)``: the nbdid style for a ``with`` block."""
    return mpl.rc_context(RC)


P = ParamSpec("P")


def styled(func: Callable[P, Figure]) -> Callable[P, Figure]:
    """Decorator: build (and lay out) the figure inside :func:`rc_context`.

    The figure is drawn once without rendering inside the context, so that its
    layout and tick labels are settled in the nbdid style whoever saves it later.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Figure:
        with rc_context():
            fig = func(*args, **kwargs)
            fig.draw_without_rendering()
        return fig

    return wrapper


def new_figure(width: Width | float, height_mm: float) -> Figure:
    """A new constrained-layout figure at print size (not registered with pyplot)."""
    return Figure(figsize=figsize(width, height_mm), layout="constrained")


TITLE_LINE_MM = 4.0
"""Height of one line of a :data:`TITLE_PT` title (a figure grows by it per extra line)."""


def new_titled_figure(width: Width | float, height_mm: float, title: str):
    """A new print-size figure and a subfigure titled ``title`` to draw the panels on.

    The figure's own suptitle stays free for the synthetic-data banner
    (:func:`mark_synthetic`); the title is the subfigure's suptitle, left-aligned and
    wrapped to the figure's width.  ``height_mm`` is the height with a one-line title:
    each further line of the wrapped title adds :data:`TITLE_LINE_MM`, so a long title
    (a failed gate's reasons) does not squash the panels.

    Returns
    -------
    tuple
        ``(figure, subfigure)``.
    """
    wrapped = wrap_to_width(title, width_mm(width) - 6.0, TITLE_PT, bold=True) if title else ""
    fig = new_figure(width, height_mm + TITLE_LINE_MM * wrapped.count("\n"))
    sub = fig.subfigures(1, 1)
    if wrapped:
        sub.suptitle(wrapped, x=0.01, ha="left", fontsize=TITLE_PT, fontweight="bold")
    return fig, sub


def new_titled_axes(ax: Axes | None, width: Width | float, height_mm: float, title: str, *,
                    given_width_mm: float = 70.0) -> tuple[Figure, Axes]:
    """Return ``(figure, axes)`` titled ``title`` (bold, :data:`TITLE_PT`).

    On a new figure (``ax`` is ``None``) the title is that of a subfigure holding the
    axes (:func:`new_titled_figure`): it starts at the figure's left edge and is wrapped
    to the figure's width, however wide the y tick labels are, so it never runs off the
    figure.  On given axes it is the axes' left title, wrapped to ``given_width_mm``.
    """
    if ax is not None:
        ax.set_title(wrap_to_width(title, given_width_mm, TITLE_PT, bold=True), loc="left")
        return ax.figure, ax
    fig, sub = new_titled_figure(width, height_mm, title)
    return fig, sub.add_subplot()


def failure_title(gate: str | None) -> str:
    """``"DIAGNOSTICS FAILED: <reasons>"`` for a failed gate string, ``""`` when passed.

    The reasons are the gate's own text (the figure only shows the verdict).
    """
    note = failed_note(gate)
    return f"DIAGNOSTICS FAILED: {note.split(': ', 1)[-1]}" if note else ""


def new_axes(ax: Axes | None, width: Width | float, height_mm: float) -> tuple[Figure, Axes]:
    """Return ``(figure, axes)``: the given axes' figure, or a new print-size figure."""
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(width, height_mm)
    return fig, fig.add_subplot()


def legend_in_slot(fig: Figure, slot: Axes, handles: list, **kwargs: Any) -> Any:
    """A figure legend in the grid cell of ``slot`` (an unused subplot, made invisible).

    The cell keeps its place in the constrained layout, the figure gains no extra axes
    (so ``fig.axes`` still lists only data panels as visible).
    """
    slot.set_visible(False)
    kwargs.setdefault("loc", "center left")
    return fig.legend(handles=handles, bbox_to_anchor=(0.0, 0.0, 1.0, 1.0),
                      bbox_transform=slot.transAxes, frameon=False, **kwargs)


def set_fontsizes(fig: Figure, *, minimum: float = MIN_FONT_PT) -> None:
    """Raise every text of ``fig`` to at least ``minimum`` pt (for third-party plots)."""
    for t in fig.findobj(Text):
        if t.get_fontsize() < minimum:
            t.set_fontsize(minimum)


# ----------------------------------------------------------------------------------------
# banners and notes
# ----------------------------------------------------------------------------------------

def text_width_mm(text: str, fontsize: float = FONT_PT, *, bold: bool = False) -> float:
    """Width of one line of ``text`` in the nbdid font at ``fontsize``, in mm."""
    return _text_width_mm(str(text), float(fontsize), bool(bold))


@functools.lru_cache(maxsize=4096)
def _text_width_mm(text: str, fontsize: float, bold: bool) -> float:
    # remembered: wrapping measures the same words and lines again and again
    prop = FontProperties(family=RC["font.sans-serif"], size=fontsize,
                          weight="bold" if bold else "normal")
    w, _, _ = TextToPath().get_text_width_height_descent(text, prop, ismath=False)
    return w / 72.0 * MM_PER_INCH


def wrap_to_width(text: str, width_mm_: float, fontsize: float = FONT_PT, *,
                  bold: bool = False) -> str:
    """Wrap ``text`` (greedily, at spaces) into lines at most ``width_mm_`` wide.

    Lines are measured in the nbdid font; existing line breaks are kept and a single
    word wider than the width is left on its own line.
    """
    out = []
    for par in text.split("\n"):
        line = ""
        for word in par.split(" "):
            trial = f"{line} {word}" if line else word
            if line and text_width_mm(trial, fontsize, bold=bold) > width_mm_:
                out.append(line)
                line = word
            else:
                line = trial
        out.append(line)
    return "\n".join(out)


def is_synthetic(data: Any, synthetic: bool | None) -> bool:
    """``synthetic`` if given, else whether a ``synthetic`` column of ``data`` is true."""
    if synthetic is not None:
        return bool(synthetic)
    try:
        col = data["synthetic"]
    except (KeyError, TypeError, IndexError):
        return False
    try:
        return bool(col.astype(str).str.strip().str.lower().isin(["true", "1"]).any())
    except AttributeError:
        return bool(col)


def mark_synthetic(fig: Figure, synthetic: bool) -> None:
    """Put the synthetic-data banner (the figure's suptitle) on a figure from synthetic data.

    Black text on an Okabe-Ito yellow box across the top, wrapped to the figure's width.
    """
    if not synthetic:
        return
    fig.suptitle(wrap_to_width(SYNTHETIC_NOTICE, size_mm(fig)[0] - 8.0), fontsize=FONT_PT,
                 fontweight="normal", color="black", linespacing=1.15,
                 bbox=dict(boxstyle="square,pad=0.3", fc=BANNER_COLOUR, ec="none"))


def failed_note(gate: str | None) -> str:
    """``"diagnostics failed: <reasons>"`` for a failed gate string, ``""`` when passed."""
    g = str(gate or "passed").strip()
    if g.startswith("passed") or g in ("", "None", "nan"):
        return ""
    return "diagnostics failed: " + g.removeprefix("FAILED: ").removeprefix("FAILED")


def gate_passed(gate: Any) -> bool:
    """Read a ``gate`` cell (``"passed"`` / ``"FAILED: ..."`` / bool)."""
    if isinstance(gate, (bool, np.bool_)):
        return bool(gate)
    g = str(gate).strip()
    return g.startswith("passed") or g in ("True", "true", "1")


# ----------------------------------------------------------------------------------------
# fitting text into the laid-out figure
# ----------------------------------------------------------------------------------------

GAP_MM = 2.0
"""Space kept between two texts (or a text and the figure's edge)."""


def _px_per_mm(fig: Figure) -> float:
    return fig.dpi / MM_PER_INCH


def _drawn_tick_labels(axis: Any) -> list[Text]:
    return [t for tick in axis._update_ticks() for t in (tick.label1,)
            if t.get_visible() and t.get_text().strip()]


def thin_crowded_ticks(fig: Figure, axes: Iterable[Axes], *, min_bins: int = 2,
                       rounds: int = 4) -> None:
    """Give each axes whose x tick labels touch (after layout) fewer nice ticks.

    Panels in a row of a grid share one width, so a panel beside wide annotations
    can be too narrow for the ticks its own range asks for; this lays the figure out,
    and lowers the number of ticks (:func:`nice_locator`) of crowded x axes until their
    labels are :data:`GAP_MM` apart or ``min_bins`` is reached.  The thousands
    formatter of :func:`thousands`, if set, is kept.
    """
    axes = list(axes)
    bins = {id(a): 6 for a in axes}
    for _ in range(rounds):
        fig.draw_without_rendering()
        r = fig._get_renderer()
        gap = GAP_MM * _px_per_mm(fig)
        crowded = []
        for a in axes:
            boxes = sorted((t.get_window_extent(r) for t in _drawn_tick_labels(a.xaxis)),
                           key=lambda b: b.x0)
            if any(b1.x0 - b0.x1 < gap for b0, b1 in zip(boxes, boxes[1:], strict=False)):
                crowded.append(a)
        crowded = [a for a in crowded if bins[id(a)] > min_bins]
        if not crowded:
            return
        for a in crowded:
            n = len(_drawn_tick_labels(a.xaxis))
            bins[id(a)] = max(min_bins, min(bins[id(a)], n) - 1)
            a.xaxis.set_major_locator(nice_locator(bins[id(a)]))


def wrap_titles_to_room(fig: Figure, axes: Iterable[Axes], *, loc: str = "left") -> None:
    """Wrap each axes' ``loc`` title to the room it has once the figure is laid out.

    Constrained layout does not count a title's width (only its height), so a title
    wider than its panel can run into the next panel or off the figure.  The room of
    a title is from its start to the figure's right edge or to the nearest panel to its
    right in the same row, less :data:`GAP_MM`; the figure is drawn again after wrapping.
    """
    axes = list(axes)
    fig.draw_without_rendering()
    r = fig._get_renderer()
    px = _px_per_mm(fig)
    attr = {"left": "_left_title", "center": "title", "right": "_right_title"}[loc]
    frames = [(a, a.get_window_extent(r)) for a in fig.axes if a.get_visible()]
    changed = False
    for a in axes:
        t = getattr(a, attr)
        text = t.get_text()
        if not text.strip():
            continue
        tb = t.get_window_extent(r)
        right = fig.bbox.x1
        for other, ob in frames:
            same_row = ob.y0 < tb.y1 and ob.y1 > tb.y0 - a.get_window_extent(r).height
            if other is not a and same_row and ob.x0 > tb.x0 + 1:
                # the other panel's y tick labels sit left of its frame
                labels = [lb.get_window_extent(r).x0 for lb in _drawn_tick_labels(other.yaxis)]
                right = min(right, min([ob.x0, *labels]))
        room = (right - tb.x0) / px - GAP_MM
        if tb.width / px > room:
            size = t.get_fontsize()
            bold = str(t.get_fontweight()) in ("bold", "700", "heavy", "black")
            t.set_text(wrap_to_width(text, room, size, bold=bold))
            changed = True
    if changed:
        fig.draw_without_rendering()


# ----------------------------------------------------------------------------------------
# saving
# ----------------------------------------------------------------------------------------


def _save_kwargs(fmt: str) -> dict[str, Any]:
    kw: dict[str, Any] = {"format": fmt, "dpi": PNG_DPI, "bbox_inches": None,
                          "facecolor": "white"}
    if fmt == "pdf":
        kw["metadata"] = {"Creator": "nbdid", "Producer": None, "CreationDate": None}
    elif fmt == "svg":
        kw["metadata"] = {"Creator": "nbdid", "Date": None}
    elif fmt == "png":
        kw["metadata"] = {"Software": "nbdid"}
    return kw


@contextlib.contextmanager
def _layout_once(fig: Figure) -> Iterator[None]:
    """Lay the figure out once for several saves: after the first draw the layout
    engine is removed (positions stay where it put them), then restored.  Saving
    three formats then costs one layout instead of three.

    The engine is removed altogether (``None``), not replaced by matplotlib's
    placeholder (``"none"``): with any engine, ``savefig`` draws the whole figure once
    without rendering before it draws it for real, a second full pass over every
    artist per format that changes nothing once the layout is settled.
    """
    engine = fig.get_layout_engine()
    if engine is None:
        yield
        return
    fig.canvas.draw()  # layout (constrained) computed here, once
    # without an engine (``None`` obeys these two settings, so they are pinned here)
    with mpl.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)
    try:
        yield
    finally:
        fig.set_layout_engine(engine)


def figure_bytes(fig: Figure, formats: Iterable[str] = FORMATS) -> dict[str, bytes]:
    """The figure at print size as ``{"png": ..., "pdf": ..., "svg": ...}`` bytes.

    PNG at :data:`PNG_DPI` dpi; PDF with TrueType (Type 42) fonts; SVG with text as
    paths; no creation dates, so the same figure gives the same bytes.
    """
    out = {}
    with rc_context(), _layout_once(fig), fast_font_subsets():
        for fmt in formats:
            buf = io.BytesIO()
            fig.savefig(buf, **_save_kwargs(fmt))
            out[fmt] = buf.getvalue()
    return out


def save_figure(fig: Figure, stem: str | Path, formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write ``stem.png`` (300 dpi), ``stem.pdf`` and ``stem.svg`` atomically.

    Uses :func:`nbdid.outputs.write_figure` (temporary file + rename), at print size
    (``bbox_inches=None``).  A suffix of ``stem`` is replaced.

    Returns
    -------
    list of Path
        The files written.
    """
    stem = Path(stem)
    stem = stem.with_suffix("") if stem.suffix.lstrip(".") in FORMATS else stem
    paths = []
    with rc_context(), _layout_once(fig), fast_font_subsets():
        for fmt in formats:
            kw = _save_kwargs(fmt)
            kw.pop("format")
            paths.append(write_figure(fig, stem.parent / f"{stem.name}.{fmt}", **kw))
    return paths


__all__ = [
    "BENCHMARK_COLOUR", "DOUBLE_COLUMN_MM", "FAILED_MARK", "FORMATS", "GROUP_COLOURS",
    "GROUP_MARKERS", "MAX_HEIGHT_MM", "MIN_FONT_PT", "Mark", "NBI_COLOUR", "OKABE_ITO",
    "PNG_DPI", "RC", "REPORT_COLOUR", "SINGLE_COLUMN_MM", "TITLE_LINE_MM", "VERDICT_MARKS",
    "draw_interval", "failed_note", "failure_title", "figsize", "figure_bytes",
    "format_interval", "format_value", "gate_passed", "indicator_label", "indicator_title",
    "indicator_unit", "is_synthetic", "legend_in_slot", "mark_synthetic", "new_axes",
    "new_figure", "new_titled_axes", "new_titled_figure", "nice_locator", "rc_context",
    "save_figure", "significance_verdict", "size_mm", "styled", "text_width_mm",
    "thin_crowded_ticks", "thousands", "verdict_mark", "wrap_titles_to_room", "wrap_to_width",
]
