"""Faster TrueType (Type 42) font subsets for the PDFs nbdid writes, byte for byte the same.

Matplotlib embeds a subset of each TrueType font a PDF uses (``pdf.fonttype = 42``:
real TrueType outlines, which publishers ask for).  For every font of every PDF it
subsets the whole font file with fontTools
(:func:`matplotlib.backends._backend_pdf_ps.get_glyphs_subset`), which parses the
font's large layout tables (kerning, ligatures) again each time: 0.05 to 0.15 s per
font, two to four fonts per figure.

:func:`fast_font_subsets` makes the same subsets from a *master*: a subset of the font,
kept in memory, that covers the glyphs asked for (Latin-1 and common typographic
symbols to start with; it grows when a glyph outside it is asked for).  fontTools
keeps glyphs in their original order, closes the glyph set over the layout tables and
prunes the same tables either way, so subsetting the master gives the very same font
program (the same bytes) as subsetting the font file, in about a quarter of the time;
only the glyph numbers of the master are mapped back to the font's.
``tests/test_figures_fonts.py`` checks the equality.

The hook is installed for the duration of a ``with`` block only (nbdid's figure
saving) and delegates to matplotlib's own function for anything unexpected (another
matplotlib version, a font file fontTools cannot read from memory).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from matplotlib.backends import _backend_pdf_ps
from matplotlib.font_manager import get_font

MASTER_TEXT = (
    "".join(chr(c) for c in range(0x20, 0x7F))  # ASCII
    + "".join(chr(c) for c in range(0xA0, 0x100))  # Latin-1 (£, °, ±, ×, accents)
    + "\u2013\u2014\u2018\u2019\u201c\u201d\u2026\u2022\u2032\u2033\u2030\u20ac"  # – — ‘ ’ “ ” … • ′ ″ ‰ €
    + "\u2190\u2191\u2192\u2193\u2212\u2248\u2260\u2264\u2265\u221e"  # ← ↑ → ↓ − ≈ ≠ ≤ ≥ ∞
)
"""Characters every master covers from the start (the text of nbdid's figures); other
glyphs are added to a font's master the first time a figure uses them."""


class _FontData(io.BytesIO):
    """A font file in memory, as matplotlib's subsetter opens it (``face_index``)."""

    face_index = 0


@dataclass(frozen=True)
class _Master:
    """A subset of one font file, in memory."""

    glyphs: frozenset[int]
    """The glyphs it was made for (glyph numbers of the font file).  Only these may be
    asked of it: fontTools keeps the character codes of the glyphs asked for, not of
    those it adds to them (a ligature such as "fi" added for "f" and "i")."""
    data: bytes
    index: dict[int, int]
    """Glyph number in the font file -> glyph number in the master (every glyph the
    master holds: those asked for and those fontTools added to them)."""


_ORIGINAL: Callable[..., Any] = _backend_pdf_ps.get_glyphs_subset
_MASTERS: dict[tuple[str, int], _Master] = {}
_LOCK = threading.RLock()
_DEPTH = [0]


def _supported() -> bool:
    """Whether matplotlib's subsetter is the one this module was written against
    (``get_glyphs_subset(fontfile, glyphs)`` returning a context manager of a named
    tuple ``(font, glyph_index_map)``)."""
    try:
        params = list(inspect.signature(_ORIGINAL).parameters)
    except (TypeError, ValueError):  # pragma: no cover - not introspectable
        return False
    return params == ["fontfile", "glyphs"] and hasattr(_backend_pdf_ps, "SubsetResults")


def _key(fontfile: Any) -> tuple[str, int]:
    return str(fontfile), int(getattr(fontfile, "face_index", 0))


def _start_glyphs(fontfile: Any) -> set[int]:
    """The glyphs of :data:`MASTER_TEXT` in the font."""
    charmap = get_font(fontfile).get_charmap()
    return {int(charmap[ord(ch)]) for ch in MASTER_TEXT if ord(ch) in charmap}


def _master(fontfile: Any, glyphs: set[int]) -> _Master:
    """The master of ``fontfile`` covering ``glyphs`` (made or grown here)."""
    key = _key(fontfile)
    with _LOCK:
        master = _MASTERS.get(key)
        if master is not None and glyphs <= master.glyphs:
            return master
        cover = glyphs | (set(master.glyphs) if master is not None else _start_glyphs(fontfile))
        with _ORIGINAL(fontfile, cover) as sub:
            data = _backend_pdf_ps.font_as_file(sub.font).getvalue()
            index = {int(g): int(m) for g, m in sub.glyph_index_map.items()}
        master = _Master(frozenset(cover), data, index)
        _MASTERS[key] = master
        return master


@contextlib.contextmanager
def _mapped(inner: contextlib.AbstractContextManager[Any], master: _Master) -> Iterator[Any]:
    """``inner``'s subset of the master, its glyph map taken back to the font file's
    glyph numbers."""
    with inner as sub:
        kept = sub.glyph_index_map  # master's glyph number -> subset's
        yield sub._replace(glyph_index_map={g: kept[m] for g, m in master.index.items()
                                            if m in kept})


def get_glyphs_subset(fontfile: Any, glyphs: Iterable[int]) -> contextlib.AbstractContextManager[Any]:
    """:func:`matplotlib.backends._backend_pdf_ps.get_glyphs_subset` through a master
    (see the module's docstring): the same font program and glyph map.

    Parameters
    ----------
    fontfile
        Matplotlib's ``FontPath`` of the font file (path and face index).
    glyphs
        Glyph numbers of the font file to keep.

    Returns
    -------
    contextlib.AbstractContextManager
        Yields matplotlib's ``SubsetResults`` (the subset font, and the glyph map from
        the font file's glyph numbers to the subset's).
    """
    glyphs = list(glyphs)
    wanted = {int(g) for g in glyphs}
    try:
        master = _master(fontfile, wanted)
        # matplotlib's own subsetting (same options), of the master held in memory
        inner = _ORIGINAL(_FontData(master.data), {master.index[g] for g in wanted})
    except Exception:  # noqa: BLE001 - any surprise: matplotlib's own way, from the file
        return _ORIGINAL(fontfile, glyphs)
    return _mapped(inner, master)


@contextlib.contextmanager
def fast_font_subsets() -> Iterator[None]:
    """Within the block, matplotlib's PDF (and PostScript) writer subsets TrueType fonts
    with :func:`get_glyphs_subset` (same bytes, about four times faster).

    Nested and concurrent blocks share one installation; matplotlib's function is back
    in place when the last block ends.  Does nothing with a matplotlib whose subsetter
    differs from the one this module knows.
    """
    if not _supported():
        yield
        return
    with _LOCK:
        if _DEPTH[0] == 0:
            _backend_pdf_ps.get_glyphs_subset = get_glyphs_subset
        _DEPTH[0] += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH[0] -= 1
            if _DEPTH[0] == 0:
                _backend_pdf_ps.get_glyphs_subset = _ORIGINAL


__all__ = ["MASTER_TEXT", "fast_font_subsets", "get_glyphs_subset"]
