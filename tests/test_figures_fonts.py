"""PDF font subsets made from an in-memory master (``nbdid.figures.pdf_fonts``) are the
very subsets matplotlib makes from the font file: same font program, same glyph map,
so the PDFs are byte for byte the same, with TrueType (Type 42) fonts embedded."""

from __future__ import annotations

import io
import random
import re
import zlib

import pytest
from matplotlib.backends import _backend_pdf_ps
from matplotlib.font_manager import FontPath, FontProperties, findfont, get_font

from nbdid.figures import pdf_fonts
from nbdid.figures.style import figure_bytes, new_figure, styled


def _subset(fn, font: FontPath, glyphs: set[int]) -> tuple[bytes, dict[int, int]]:
    with fn(font, glyphs) as sub:
        data = _backend_pdf_ps.font_as_file(sub.font).getvalue()
        return data, {g: sub.glyph_index_map[g] for g in glyphs}


def _font(weight: str = "normal") -> FontPath:
    path = findfont(FontProperties(family="DejaVu Sans", weight=weight))
    return FontPath(path, 0)


@pytest.fixture
def fresh_masters(monkeypatch):
    monkeypatch.setattr(pdf_fonts, "_MASTERS", {})


def test_matplotlib_subsetter_is_the_one_the_module_knows():
    assert pdf_fonts._supported()


@pytest.mark.parametrize("weight", ["normal", "bold"])
def test_subsets_equal_matplotlibs(weight, fresh_masters):
    """Text of the kind nbdid's figures hold, random glyph sets from the whole font (the
    master grows), a ligature glyph asked for on its own, single glyphs."""
    font = _font(weight)
    charmap = get_font(font).get_charmap()
    n_glyphs = get_font(font).num_glyphs
    rng = random.Random(7)
    latin = sorted({charmap[ord(c)] for c in pdf_fonts.MASTER_TEXT if ord(c) in charmap})
    sets = [{charmap[ord(c)] for c in "Overall Crime Rate (per 1,000 pop.) −2.5 [−4.1, −0.9]"},
            {charmap[0xFB01]} if 0xFB01 in charmap else {charmap[ord("f")]},  # "fi"
            {charmap[ord("x")]}]
    sets += [set(rng.sample(latin, rng.randint(1, 60))) for _ in range(8)]
    sets += [set(rng.sample(range(1, n_glyphs), rng.randint(1, 40))) for _ in range(6)]
    sets += [{charmap[ord(c)] for c in "Ŵŷ ΔΣ ≤ ≥ → ∞"}]
    for glyphs in sets:
        assert _subset(pdf_fonts.get_glyphs_subset, font, glyphs) == \
            _subset(pdf_fonts._ORIGINAL, font, glyphs), sorted(glyphs)


def test_glyph_map_includes_the_glyphs_fonttools_adds(fresh_masters):
    font = _font()
    charmap = get_font(font).get_charmap()
    glyphs = {charmap[ord(c)] for c in "fit"}
    with pdf_fonts._ORIGINAL(font, glyphs) as a, pdf_fonts.get_glyphs_subset(font, glyphs) as b:
        assert dict(a.glyph_index_map) == dict(b.glyph_index_map)


@styled
def _figure():
    fig = new_figure("single", 40)
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [1, 3, 2], label="Overall Crime Rate")
    ax.set_title("Bold title: £1,234 − 5 ≤ 6", fontweight="bold")
    ax.legend()
    return fig


def _font_files(pdf: bytes) -> list[bytes]:
    """The embedded TrueType font programs (``/FontFile2`` streams) of a PDF."""
    ids = re.findall(rb"/FontFile2 (\d+) 0 R", pdf)
    out = []
    for i in ids:
        m = re.search(rb"\n" + i + rb" 0 obj\s*<<.*?>>\s*stream\r?\n", pdf, re.S)
        end = pdf.index(b"endstream", m.end())
        out.append(zlib.decompress(pdf[m.end():end].rstrip(b"\r\n")))
    return out


def test_pdf_is_byte_identical_and_keeps_type42_fonts(monkeypatch, fresh_masters):
    fast = figure_bytes(_figure(), ("pdf",))["pdf"]
    # matplotlib's own subsetting, from the font files
    monkeypatch.setattr(pdf_fonts, "_supported", lambda: False)
    slow = figure_bytes(_figure(), ("pdf",))["pdf"]
    assert fast == slow
    assert b"/Subtype /CIDFontType2" in fast and b"/Type3" not in fast
    fonts = _font_files(fast)
    assert len(fonts) == 2  # regular and bold, TrueType outlines
    assert all(f[:4] == b"\x00\x01\x00\x00" for f in fonts)


def test_the_hook_is_removed_after_the_block():
    before = _backend_pdf_ps.get_glyphs_subset
    with pdf_fonts.fast_font_subsets():
        with pdf_fonts.fast_font_subsets():  # nested blocks share it
            assert _backend_pdf_ps.get_glyphs_subset is pdf_fonts.get_glyphs_subset
        assert _backend_pdf_ps.get_glyphs_subset is pdf_fonts.get_glyphs_subset
    assert _backend_pdf_ps.get_glyphs_subset is before


def test_falls_back_to_matplotlib_when_the_master_fails(monkeypatch, fresh_masters):
    font = _font()
    glyphs = {get_font(font).get_charmap()[ord("a")]}

    def broken(*_args, **_kwargs):
        raise RuntimeError("no master")

    monkeypatch.setattr(pdf_fonts, "_master", broken)
    assert _subset(pdf_fonts.get_glyphs_subset, font, glyphs) == \
        _subset(pdf_fonts._ORIGINAL, font, glyphs)


def test_font_data_is_read_from_memory():
    font = _font()
    data = _subset(pdf_fonts._ORIGINAL, font, {3, 4})[0]
    buf = pdf_fonts._FontData(data)
    assert buf.face_index == 0 and isinstance(buf, io.BytesIO)
