"""Print-rule checks of a figure: size, font sizes, overlapping or clipped text.

:func:`print_problems` lays a figure out and lists every breach of the rules of
:mod:`nbdid.figures.style` as one-line messages (empty when the figure is fit for
print).  The figure tests assert on it; a report builder can use it as a guard.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from nbdid.figures.style import (
    DOUBLE_COLUMN_MM,
    MAX_HEIGHT_MM,
    MIN_FONT_PT,
    SINGLE_COLUMN_MM,
    size_mm,
)

TOLERANCE_PX = 1.0
"""Overlaps up to this many pixels (at the figure's dpi, 100) are taken as touching."""


@dataclass(frozen=True)
class TextBox:
    """A drawn text (or a legend, as one box) and its extent in display pixels."""

    name: str
    bbox: Bbox
    axes: Axes | None
    artist: object


def _axes_name(ax: Axes) -> str:
    title = (ax.get_title(loc="left") or ax.get_title() or ax.get_label() or "").split("\n")[0]
    return f"axes {title[:30]!r}" if title else f"axes@{id(ax):x}"


def _all_axes(fig: Figure) -> list[Axes]:
    out: list[Axes] = []

    def add(ax: Axes) -> None:
        if ax.get_visible() and ax not in out:
            out.append(ax)
            for child in ax.child_axes:
                add(child)

    for ax in fig.axes:
        add(ax)
    return out


def _drawn_tick_labels(ax: Axes) -> Iterator[tuple[str, Text]]:
    if not ax.axison:
        return
    for axis_name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
        if not axis.get_visible():
            continue
        for tick in axis._update_ticks():  # the ticks actually drawn (inside the view)
            for lab, on in ((tick.label1, tick.label1.get_visible()),
                            (tick.label2, tick.label2.get_visible())):
                if on and lab.get_text().strip():
                    yield f"{axis_name}-tick label {lab.get_text()!r}", lab
        off = axis.get_offset_text()
        if off.get_visible() and off.get_text().strip():
            yield f"{axis_name}-axis offset text {off.get_text()!r}", off


def _text_extent(t: Text, renderer) -> Bbox:
    bb = t.get_window_extent(renderer)
    patch = t.get_bbox_patch()
    if patch is not None:
        t.update_bbox_position_size(renderer)
        bb = Bbox.union([bb, patch.get_window_extent(renderer)])
    return bb


def text_boxes(fig: Figure) -> list[TextBox]:
    """Every drawn text of ``fig`` (titles, labels, tick labels, annotations, legends)."""
    fig.draw_without_rendering()
    r = fig._get_renderer()
    boxes: list[TextBox] = []
    seen: set[int] = set()

    def add(name: str, t: Text | None, ax: Axes | None) -> None:
        if t is None or id(t) in seen or not t.get_visible() or not t.get_text().strip():
            return
        seen.add(id(t))
        boxes.append(TextBox(name, _text_extent(t, r), ax, t))

    def add_legend(name: str, leg: Legend | None, ax: Axes | None) -> None:
        if leg is not None and leg.get_visible():
            boxes.append(TextBox(name, leg.get_window_extent(r), ax, leg))

    def add_figure(f, name: str) -> None:
        for attr in ("_suptitle", "_supxlabel", "_supylabel"):
            add(f"{name} {attr.strip('_')}", getattr(f, attr, None), None)
        for t in f.texts:
            add(f"{name} text {t.get_text()[:30]!r}", t, None)
        for i, leg in enumerate(f.legends):
            add_legend(f"{name} legend {i}", leg, None)
        for j, sub in enumerate(f.subfigs):
            add_figure(sub, f"{name} subfigure {j}")

    add_figure(fig, "figure")
    for ax in _all_axes(fig):
        label = _axes_name(ax)
        for tname in ("title", "_left_title", "_right_title"):
            add(f"{label} title", getattr(ax, tname), ax)
        add(f"{label} x label", ax.xaxis.label, ax)
        add(f"{label} y label", ax.yaxis.label, ax)
        for name, t in _drawn_tick_labels(ax):
            add(f"{label} {name}", t, ax)
        for t in ax.texts:
            add(f"{label} text {t.get_text()[:30]!r}", t, ax)
        add_legend(f"{label} legend", ax.get_legend(), ax)
    return boxes


def _overlap(a: Bbox, b: Bbox, tol: float = TOLERANCE_PX) -> bool:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w > tol and h > tol


def font_problems(fig: Figure, minimum: float = MIN_FONT_PT) -> list[str]:
    """Texts smaller than ``minimum`` pt (the figure is at print size)."""
    out = []
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip():
            continue
        if t.axes is not None and not t.axes.get_visible():
            continue
        if t.get_fontsize() < minimum - 1e-9:
            out.append(f"text {t.get_text()[:40]!r} is {t.get_fontsize():.1f} pt < {minimum} pt")
    return out


def size_problems(fig: Figure, widths: tuple[float, ...] = (SINGLE_COLUMN_MM, DOUBLE_COLUMN_MM),
                  max_height: float = MAX_HEIGHT_MM) -> list[str]:
    """The figure is not one or two columns wide, or is taller than a page."""
    w, h = size_mm(fig)
    out = []
    if not any(abs(w - x) < 0.5 for x in widths):
        out.append(f"width {w:.1f} mm is not one of {', '.join(f'{x:g}' for x in widths)} mm")
    if h > max_height + 0.5:
        out.append(f"height {h:.1f} mm > {max_height:g} mm")
    return out


def layout_problems(fig: Figure) -> list[str]:
    """Texts that overlap each other or an axes' data area, or stick out of the figure."""
    boxes = text_boxes(fig)
    r = fig._get_renderer()
    frame = fig.bbox
    areas = [(_axes_name(ax), ax.get_window_extent(r)) for ax in _all_axes(fig) if ax.axison]
    out = []
    for b in boxes:
        bb = b.bbox
        if (bb.x0 < frame.x0 - TOLERANCE_PX or bb.y0 < frame.y0 - TOLERANCE_PX
                or bb.x1 > frame.x1 + TOLERANCE_PX or bb.y1 > frame.y1 + TOLERANCE_PX):
            out.append(f"{b.name} sticks out of the figure")
        for name, area in areas:
            if _overlap(bb, area):
                out.append(f"{b.name} overlaps the data area of {name}")
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if _overlap(a.bbox, b.bbox):
                out.append(f"{a.name} overlaps {b.name}")
    return out


def print_problems(fig: Figure, **size_kw) -> list[str]:
    """Every breach of the print rules: size, font sizes, text overlaps, clipped text."""
    return size_problems(fig, **size_kw) + font_problems(fig) + layout_problems(fig)


def has_synthetic_banner(fig: Figure) -> bool:
    """Whether the figure carries the synthetic-data banner."""
    t = getattr(fig, "_suptitle", None)
    return t is not None and t.get_visible() and "SYNTHETIC DATA" in t.get_text()
