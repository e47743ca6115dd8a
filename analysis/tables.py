"""Publication tables: the comparison and concordance tables as a paper would print them.

A :class:`PublicationTable` holds a table's numbers (:attr:`~PublicationTable.data`), the
same numbers formatted once as display strings (so that the HTML, LaTeX and Markdown
renderings agree digit for digit), its column labels with units, spanners, footnotes
and source notes.  :meth:`~PublicationTable.gt` builds a `great_tables`_ ``GT`` object
(header, spanners, stub and row groups, footnotes, source notes, alignment), which
renders the HTML (``as_raw_html``) and LaTeX (``as_latex``) versions;
:meth:`~PublicationTable.markdown` renders a pipe table with ``tabulate``.

Numbers are rounded per indicator: every number of an indicator's row is printed with
the decimals that give the narrowest interval shown for it two significant figures
(:func:`decimals_for`), so a property price is printed in whole pounds and a
percentage-point difference to one or two decimals.

.. _great_tables: https://posit-dev.github.io/great-tables/
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from nbdid.analysis import frequentist as fq
from nbdid.provenance import SYNTHETIC_NOTICE
from nbdid.registry import INDICATORS

if TYPE_CHECKING:  # pragma: no cover
    from great_tables import GT

Format = Literal["html", "latex", "markdown"]

MINUS = "\u2212"
"""The minus sign of the display strings (``$-$`` in LaTeX)."""

RATIO_SCALES: dict[str, tuple[str, str]] = {
    "odds_ratio": ("odds ratio", "OR"),
    "rate_ratio": ("rate ratio", "RR"),
    "price_ratio": ("price ratio", "PR"),
}
"""Ratio scale of a family (``summary.csv``'s ``scale``) -> (name, abbreviation)."""

_LATEX_TEXT = {
    MINUS: "$-$",
    "\u2013": "--",
    "\u2264": r"$\leq$",
    "\u2265": r"$\geq$",
    "\u00d7": r"$\times$",
    "\u00a3": r"\pounds{}",
    "\u2248": r"$\approx$",
}
_SUPERSCRIPT = str.maketrans("0123456789", "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")
_MARK = "@@FN{}@@"


# ----------------------------------------------------------------------------------------
# numbers
# ----------------------------------------------------------------------------------------


def decimals_for(half_width: float, *, sig: int = 2, max_decimals: int = 3) -> int:
    """Decimals that show ``half_width`` (of an interval) with ``sig`` significant figures.

    Clipped to ``0 .. max_decimals``; 1 when the half-width is not a positive number.

    Examples
    --------
    >>> decimals_for(4.8), decimals_for(0.8), decimals_for(8200.0), decimals_for(0.0004)
    (1, 2, 0, 3)
    """
    if half_width is None or not math.isfinite(half_width) or half_width <= 0:
        return 1
    d = sig - 1 - math.floor(math.log10(half_width))
    return int(min(max(d, 0), max_decimals))


def row_decimals(*intervals: tuple[Any, Any]) -> int:
    """Decimals of a row: from the narrowest finite interval ``(lower, upper)`` given."""
    widths = []
    for lo, hi in intervals:
        try:
            w = (float(hi) - float(lo)) / 2.0
        except (TypeError, ValueError):
            continue
        if math.isfinite(w) and w > 0:
            widths.append(w)
    return decimals_for(min(widths)) if widths else 1


def format_number(x: Any, decimals: int, *, minus: str = MINUS) -> str:
    """``x`` with ``decimals`` decimals and thousands separators; ``"–"`` when missing."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "\u2013"
    if not math.isfinite(v):
        return "\u2013" if v != v else ("\u221e" if v > 0 else f"{minus}\u221e")
    s = f"{v:,.{decimals}f}"
    if s.lstrip("-").strip("0.,") == "":  # -0.0 -> 0.0
        s = s.lstrip("-")
    return s.replace("-", minus)


def format_interval(est: Any, lo: Any, hi: Any, decimals: int, *, minus: str = MINUS) -> str:
    """``"−8.6 [−13.4, −3.8]"``; the estimate alone when the bounds are missing."""
    e = format_number(est, decimals, minus=minus)
    if pd.isna(lo) or pd.isna(hi):
        return e
    return f"{e} [{format_number(lo, decimals, minus=minus)}, {format_number(hi, decimals, minus=minus)}]"


def format_probability(p: Any) -> str:
    """A posterior probability with two decimals (``"–"`` when missing)."""
    return format_number(p, 2)


def format_p_value(p: Any) -> str:
    """A p-value: three significant figures down to 0.001, then ``"<0.001"``."""
    try:
        v = float(p)
    except (TypeError, ValueError):
        return "\u2013"
    if not math.isfinite(v):
        return "\u2013"
    if v < 0.001:
        return "<0.001"
    return f"{v:.3f}" if v < 0.1 else f"{v:.2f}"


def unit_label(key: str, fallback: str = "") -> str:
    """The unit of an indicator's differences, as on the figures' axes: ``pp``
    (percentage points) for percentages, else the registry's short unit (``£``,
    ``per 1,000 pop.``)."""
    ind = INDICATORS.get(str(key))
    if ind is None:
        return fallback
    if ind.unit == "%":
        return "pp"
    return ind.short_unit


def title_of(key: str) -> str:
    """The report's title of an indicator (the key when it is not in the registry)."""
    ind = INDICATORS.get(str(key))
    return ind.title if ind is not None else str(key)


def _yes_no(x: Any) -> str:
    if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, str):
        x = x.strip().lower() in ("true", "1", "yes")
    return "yes" if bool(x) else "no"


def gate_text(gate: Any) -> str:
    """``"passed"`` or ``"FAILED"`` from a ``gate`` cell (reasons are in the footnotes)."""
    g = str(gate if gate is not None else "").strip()
    if g.startswith("passed"):
        return "passed"
    if not g or g in ("nan", "None", "<NA>"):
        return "n/a"
    return "FAILED"


def verdict_text(significant: Any, better: Any) -> str:
    """``"significant, better"`` / ``"significant, worse"`` / ``"not significant"``."""
    if significant is None or significant is pd.NA or (isinstance(significant, float)
                                                        and math.isnan(significant)):
        return "n/a"
    if not bool(significant):
        return "not significant"
    return "significant, better" if bool(better) else "significant, worse"


# ----------------------------------------------------------------------------------------
# the table object
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One displayed column of a :class:`PublicationTable`.

    Attributes
    ----------
    key
        Column of :attr:`PublicationTable.display`.
    label
        Heading (with its unit).
    footnote
        Footnote attached to the heading (``""``: none).
    spanner
        Heading of the group of columns it belongs to (``""``: none).
    align
        ``"left"``, ``"right"`` or ``"center"``.
    """

    key: str
    label: str
    footnote: str = ""
    spanner: str = ""
    align: Literal["left", "right", "center"] = "right"


@dataclass(frozen=True)
class PublicationTable:
    """A table for a paper: numbers, display strings, labels, footnotes, notes.

    Attributes
    ----------
    name
        File stem (``tables/<name>.html`` / ``.tex`` / ``.md``).
    title, subtitle
        Table heading.
    data
        The numbers behind the table (one row per displayed row).
    display
        The same rows formatted for display (strings; numbers rounded per indicator).
    columns
        The displayed columns, in order.
    stub
        Column of :attr:`display` holding the row labels.
    stub_label
        Heading of the row labels.
    group
        Column of :attr:`display` whose values group the rows (``None``: no groups).
    source_notes
        Notes printed under the table (before the footnotes).
    synthetic
        Whether the numbers come from synthetic data (the notice is the first note).
    """

    name: str
    title: str
    subtitle: str
    data: pd.DataFrame
    display: pd.DataFrame
    columns: tuple[Column, ...]
    stub: str
    stub_label: str = ""
    group: str | None = None
    source_notes: tuple[str, ...] = ()
    synthetic: bool = False
    footnotes: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        notes: list[str] = []
        for c in self.columns:
            if c.footnote and c.footnote not in notes:
                notes.append(c.footnote)
        object.__setattr__(self, "footnotes", tuple(notes))

    @property
    def notes(self) -> tuple[str, ...]:
        """Source notes with the synthetic-data notice first when it applies."""
        head = (f"{SYNTHETIC_NOTICE}.",) if self.synthetic else ()
        return head + tuple(self.source_notes)

    def _mark(self, col: Column) -> int | None:
        return self.footnotes.index(col.footnote) + 1 if col.footnote else None

    # -- great-tables ----------------------------------------------------------------
    def gt(self, *, context: Literal["html", "latex"] = "html") -> GT:
        """The table as a ``great_tables.GT`` object.

        ``context="html"`` attaches the footnotes to the column headings with
        great-tables' own marks; ``"latex"`` (whose great-tables renderer has no
        footnotes yet) numbers them in the headings and lists them as source notes.
        """
        # imported here: great-tables and its dependencies load only when a table is rendered
        import great_tables as gt_

        disp = self.display
        keep = [self.stub, *([self.group] if self.group else []), *[c.key for c in self.columns]]
        table = gt_.GT(disp[keep], rowname_col=self.stub, groupname_col=self.group,
                       auto_align=False).with_id(f"nbdid-{self.name}")
        table = table.tab_header(title=self.title, subtitle=self.subtitle or None)
        if self.stub_label:
            table = table.tab_stubhead(label=self.stub_label)
        labels = {}
        for c in self.columns:
            mark = self._mark(c)
            labels[c.key] = c.label + (_MARK.format(mark) if context == "latex" and mark else "")
        table = table.cols_label(**labels)
        for align in ("left", "right", "center"):
            cols = [c.key for c in self.columns if c.align == align]
            if cols:
                table = table.cols_align(align=align, columns=cols)
        spanners: dict[str, list[str]] = {}
        for c in self.columns:
            if c.spanner:
                spanners.setdefault(c.spanner, []).append(c.key)
        for label, cols in spanners.items():
            table = table.tab_spanner(label=label, columns=cols)
        for note in self.notes:
            table = table.tab_source_note(note)
        if context == "html":
            # numbers and intervals are never broken over two lines
            table = table.opt_css(f"#nbdid-{self.name} .gt_row.gt_right {{ white-space: nowrap; }}")
            for c in self.columns:
                if c.footnote:
                    table = table.tab_footnote(c.footnote,
                                               locations=gt_.loc.column_labels(columns=c.key))
        else:
            for i, note in enumerate(self.footnotes, start=1):
                table = table.tab_source_note(_MARK.format(i) + " " + note)
        return table.tab_options(table_font_size="9pt", heading_title_font_size="11pt",
                                 heading_subtitle_font_size="9pt", source_notes_font_size="8pt",
                                 data_row_padding="2px")

    def html(self) -> str:
        """HTML fragment (great-tables ``as_raw_html``; styles scoped to the table's id)."""
        return self.gt(context="html").as_raw_html()

    def latex(self) -> str:
        """LaTeX (great-tables ``as_latex``; needs the ``booktabs`` and ``caption`` packages)."""
        body = self.gt(context="latex").as_latex()
        body = _latex_safe(re.sub(r"@@FN(\d+)@@", r"\\textsuperscript{\1}", body))
        head = (f"% {self.title}: made by nbdid. Needs \\usepackage{{booktabs}} and "
                "\\usepackage{caption}.\n")
        return head + body

    def markdown(self) -> str:
        """Markdown: a bold title, a pipe table (``tabulate``), notes and footnotes."""
        # imported here: tabulate loads only when a Markdown table is rendered
        from tabulate import tabulate

        headers = [self.stub_label or ""]
        for c in self.columns:
            mark = self._mark(c)
            headers.append(c.label + (str(mark).translate(_SUPERSCRIPT) if mark else ""))
        rows = []
        current = None
        for _, r in self.display.iterrows():
            if self.group and r[self.group] != current:
                current = r[self.group]
                rows.append([f"**{current}**", *[""] * len(self.columns)])
            rows.append([r[self.stub], *[r[c.key] for c in self.columns]])
        align = ["left", *[c.align for c in self.columns]]
        body = tabulate(rows, headers=headers, tablefmt="pipe", colalign=align,
                        disable_numparse=True)
        parts = [f"**{_md_escape(self.title)}**" + (f" — {_md_escape(self.subtitle)}"
                                                     if self.subtitle else ""), "",
                 body, ""]
        for note in self.notes:
            parts.append(f"{_md_escape(note)}  ")
        for i, note in enumerate(self.footnotes, start=1):
            parts.append(f"{str(i).translate(_SUPERSCRIPT)} {_md_escape(note)}  ")
        return "\n".join(parts).rstrip() + "\n"

    def render(self, fmt: Format) -> str:
        """The table as ``"html"``, ``"latex"`` or ``"markdown"`` text."""
        if fmt == "html":
            return self.html()
        if fmt == "latex":
            return self.latex()
        if fmt == "markdown":
            return self.markdown()
        raise ValueError(f"unknown table format {fmt!r}")


def _latex_safe(text: str) -> str:
    for a, b in _LATEX_TEXT.items():
        text = text.replace(a, b)
    return text


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("*", "\\*")


# ----------------------------------------------------------------------------------------
# the comparison table
# ----------------------------------------------------------------------------------------


def ratio_rows(summary: pd.DataFrame | None) -> pd.DataFrame:
    """The DiD on the ratio scale per indicator from fit summaries (``summary.csv``)."""
    cols = ["indicator", "ratio_scale", "ratio", "ratio_lower", "ratio_upper"]
    if summary is None or summary.empty:
        return pd.DataFrame(columns=cols)
    s = summary[(summary["estimand"] == "did") & summary["scale"].isin(list(RATIO_SCALES))]
    return pd.DataFrame({
        "indicator": s["indicator"].astype(str).to_numpy(),
        "ratio_scale": s["scale"].to_numpy(),
        "ratio": s["mean"].to_numpy(float),
        "ratio_lower": s["q2.5"].to_numpy(float),
        "ratio_upper": s["q97.5"].to_numpy(float),
    }).drop_duplicates("indicator")


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v) if not pd.isna(v) else False


def comparison_table(comparison: pd.DataFrame, summary: pd.DataFrame | None = None, *,
                     diagnostics_note: str = "") -> PublicationTable:
    """The report's verdicts beside the posterior, one row per indicator.

    Parameters
    ----------
    comparison
        :func:`nbdid.analysis.comparison.compare` (``comparison.csv``).
    summary
        Fit summaries (``summary.csv``): adds the DiD on the ratio scale.
    diagnostics_note
        What the diagnostics gate checks (thresholds), for the gate's footnote.

    Returns
    -------
    PublicationTable
    """
    comp = comparison.copy()
    comp["indicator"] = comp["indicator"].astype(str)
    data = comp.merge(ratio_rows(summary), on="indicator", how="left")
    rows = []
    for _, r in data.iterrows():
        d = row_decimals((r["report_did_lower"], r["report_did_upper"]),
                         (r["posterior_q2.5"], r["posterior_q97.5"]))
        has_ratio = "ratio" in r and not pd.isna(r.get("ratio"))
        dr = row_decimals((r["ratio_lower"], r["ratio_upper"])) if has_ratio else 2
        abbrev = RATIO_SCALES.get(str(r.get("ratio_scale")), ("", ""))[1]
        gate = str(r.get("gate", ""))
        rows.append({
            "indicator": title_of(r["indicator"]),
            "unit": unit_label(r["indicator"], str(r.get("unit", ""))),
            "report": format_interval(r["report_did"], r["report_did_lower"], r["report_did_upper"], d),
            "report_verdict": verdict_text(_truthy(r["report_significant"]), _truthy(r["report_better"])),
            "posterior": format_interval(r["posterior_did"], r["posterior_q2.5"], r["posterior_q97.5"], d),
            "ratio": (format_interval(r["ratio"], r["ratio_lower"], r["ratio_upper"], dr)
                      + (f" {abbrev}" if abbrev else "")) if has_ratio else "\u2013",
            "prob_benefit": format_probability(r["prob_benefit"]),
            "posterior_verdict": verdict_text(_truthy(r["posterior_significant"]),
                                              _truthy(r["posterior_better"])),
            "agree": _yes_no(r["agree"]),
            "gate": gate_text(gate),
        })
    display = pd.DataFrame(rows)
    synthetic = bool(comp["synthetic"].map(_truthy).any()) if "synthetic" in comp else False
    failed = [f"{title_of(k)}: {g}" for k, g in zip(comp["indicator"], comp.get("gate", []), strict=False)
              if gate_text(g) == "FAILED"]
    notes = ["DiD: difference in differences, the NBI group's change minus the benchmark "
             "group's change, in the indicator's unit (pp: percentage points). A negative DiD "
             "is a benefit for indicators where lower is better (all but business units and "
             "property prices)."]
    if failed:
        notes.append("Fits that failed the diagnostics gate are not for inference: "
                     + "; ".join(failed) + ".")
    columns = (
        Column("unit", "Unit", align="left"),
        Column("report", "DiD [interval]", spanner="Report (published numbers)",
               footnote="The report's DiD with the interval its overlap rule implies: "
                        "[lower NBI change − upper benchmark change, upper NBI change − lower "
                        "benchmark change]; the report calls a difference significant when the "
                        "two groups' change intervals do not overlap, i.e. when this interval "
                        "excludes 0."),
        Column("report_verdict", "Verdict", spanner="Report (published numbers)", align="left"),
        Column("posterior", "DiD [95% CrI]", spanner="Bayesian hierarchical model",
               footnote="Posterior mean of the population-averaged DiD (weighted by exposure, "
                        "like the report's pooled values) with its central 95% credible interval."),
        Column("ratio", "Ratio [95% CrI]", spanner="Bayesian hierarchical model",
               footnote="The DiD as a ratio of the NBI group's change to the benchmark group's "
                        "change (OR: odds ratio, RR: rate ratio, PR: ratio of geometric mean "
                        "prices; 1 = no difference)."),
        Column("prob_benefit", "P(benefit)", spanner="Bayesian hierarchical model",
               footnote="Posterior probability that the NBI group changed for the better "
                        "relative to its benchmarks."),
        Column("posterior_verdict", "Verdict", spanner="Bayesian hierarchical model", align="left",
               footnote="Significant: the 95% credible interval excludes 0."),
        Column("agree", "Agree", align="center",
               footnote="Whether the report and the posterior reach the same verdict (both "
                        "significant in the same direction, or neither significant)."),
        Column("gate", "Diagnostics", align="center",
               footnote="The diagnostics gate of the fit" + (f" ({diagnostics_note})"
                                                             if diagnostics_note else "")
                        + "; a FAILED fit is not for inference."),
    )
    return PublicationTable(
        name="comparison",
        title="The report's verdicts beside the Bayesian posterior",
        subtitle="Difference in differences (DiD) of each indicator, NBI minus benchmark",
        data=data, display=display, columns=columns, stub="indicator", stub_label="Indicator",
        source_notes=tuple(notes), synthetic=synthetic,
    )


# ----------------------------------------------------------------------------------------
# the concordance table
# ----------------------------------------------------------------------------------------


def _significance(sig: Any, better: Any) -> str:
    if sig is None or sig is pd.NA or (isinstance(sig, float) and math.isnan(sig)):
        return "n/a"
    if not _truthy(sig):
        return "no"
    return "yes, better" if _truthy(better) else "yes, worse"


def concordance_table(concordance: pd.DataFrame) -> PublicationTable:
    """Every method's DiD for every indicator (``concordance.csv``), grouped by indicator.

    Numbers of an indicator are rounded alike (from the narrowest interval among its
    methods); notes of methods that could not be computed are listed under the table.

    Returns
    -------
    PublicationTable
    """
    conc = concordance.copy()
    conc["indicator"] = conc["indicator"].astype(str)
    order = list(dict.fromkeys(conc["indicator"]))
    meth_order = {m: i for i, m in enumerate(fq.METHODS)}
    conc["_i"] = conc["indicator"].map(order.index)
    conc["_m"] = conc["method"].map(lambda m: meth_order.get(m, len(meth_order)))
    conc = conc.sort_values(["_i", "_m"], kind="stable").drop(columns=["_i", "_m"]).reset_index(drop=True)
    decimals: dict[str, int] = {}
    ratio_decimals: dict[str, int] = {}
    for key, sub in conc.groupby("indicator", sort=False):
        decimals[key] = row_decimals(*zip(sub["lower"], sub["upper"], strict=True))
        ratio_decimals[key] = row_decimals(*zip(sub["ratio_lower"], sub["ratio_upper"], strict=True))
    rows = []
    notes: list[str] = []
    for _, r in conc.iterrows():
        key = r["indicator"]
        unit = unit_label(key, str(r.get("unit", "")))
        d, dr = decimals[key], ratio_decimals[key]
        abbrev = RATIO_SCALES.get(str(r.get("ratio_scale")), ("", ""))[1]
        method = str(r.get("method_label") or fq.METHOD_LABELS.get(r["method"], r["method"]))
        note = str(r.get("note") or "").strip()
        if note and note != "nan":
            notes.append(f"{title_of(key)}, {method}: {note}")
        ratio = format_interval(r["ratio"], r["ratio_lower"], r["ratio_upper"], dr)
        rows.append({
            "group": f"{title_of(key)} ({unit})" if unit else title_of(key),
            "method": method,
            "estimate": format_interval(r["estimate"], r["lower"], r["upper"], d),
            "ratio": ratio + (f" {abbrev}" if abbrev and ratio != "\u2013" else ""),
            "p_value": format_p_value(r.get("p_value")),
            "prob_benefit": format_probability(r.get("prob_benefit")),
            "significant": _significance(r.get("significant"), r.get("better")),
            "gate": gate_text(r.get("gate")) if r["method"] == "bayes" else "",
        })
    display = pd.DataFrame(rows)
    synthetic = bool(conc["synthetic"].map(_truthy).any()) if "synthetic" in conc else False
    definitions = []
    for m in fq.METHODS:
        sub = conc[conc["method"] == m]
        if sub.empty:
            continue
        est = _first_text(sub.get("estimand"))
        test = _first_text(sub.get("test"))
        label = fq.METHOD_LABELS.get(m, m)
        text = "; ".join(t for t in (est, test) if t)
        if text:
            definitions.append(f"{label}: {text}.")
    columns = (
        Column("estimate", "DiD [95% interval]",
               footnote="In the indicator's unit (pp: percentage points). The report's pooled "
                        "method shows the interval its overlap rule implies; the Bayesian row "
                        "its 95% credible interval."),
        Column("ratio", "Ratio [95% interval]",
               footnote="OR: odds ratio, RR: rate ratio, PR: price ratio; 1 = no difference."),
        Column("p_value", "p"),
        Column("prob_benefit", "P(benefit)",
               footnote="Posterior probability that the NBI group changed for the better "
                        "relative to its benchmarks (Bayesian row)."),
        Column("significant", "Significant", align="left",
               footnote="Whether the method's 95% interval excludes no difference (the "
                        "report's rule: the change intervals do not overlap), and in which "
                        "direction for the NBI group."),
        Column("gate", "Diagnostics", align="center"),
    )
    return PublicationTable(
        name="concordance",
        title="Frequentist analyses beside the posterior",
        subtitle="DiD of each indicator by method, on the same ward panel",
        data=concordance, display=display, columns=columns, stub="method", stub_label="Method",
        group="group", source_notes=tuple(definitions + notes), synthetic=synthetic,
    )


def _first_text(col: Iterable[Any] | None) -> str:
    if col is None:
        return ""
    for v in col:
        if isinstance(v, str) and v.strip():
            return v.strip()
    return ""


# ----------------------------------------------------------------------------------------
# smaller tables of the findings report
# ----------------------------------------------------------------------------------------


def prior_sensitivity_columns(diagnostics: pd.DataFrame) -> list[str]:
    """Prior-sensitivity columns of a diagnostics table (names containing ``sens`` or
    starting with ``prior_``), when the run computed them."""
    return [c for c in diagnostics.columns if "sens" in c.lower() or c.lower().startswith("prior_")]


def diagnostics_table(diagnostics: pd.DataFrame, *, thresholds: str = "") -> PublicationTable:
    """The diagnostics gate per indicator: R-hat, ESS, divergences, BFMI, PPC p-values,
    and the prior-sensitivity columns when present (:func:`prior_sensitivity_columns`)."""
    diag = diagnostics.copy()
    sens_cols = prior_sensitivity_columns(diag)
    rows = []
    for _, r in diag.iterrows():
        row = {
            "indicator": title_of(r["indicator"]),
            "rhat": format_number(r.get("rhat_max"), 3),
            "ess_bulk": format_number(r.get("ess_bulk_min"), 0),
            "ess_tail": format_number(r.get("ess_tail_min"), 0),
            "divergences": format_number(r.get("divergences"), 0),
            "bfmi": format_number(r.get("bfmi_min"), 2),
            "ppp": f"{format_number(r.get('ppp_min'), 2)}\u2013{format_number(r.get('ppp_max'), 2)}",
            "gate": gate_text(r.get("gate", "passed" if _truthy(r.get("passed")) else "FAILED")),
        }
        for c in sens_cols:
            v = r.get(c)
            if isinstance(v, (float, np.floating)):
                row[c] = format_number(v, 3)
            else:
                row[c] = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
        rows.append(row)
    display = pd.DataFrame(rows)
    cols = [
        Column("rhat", "max R-hat"),
        Column("ess_bulk", "min bulk ESS"),
        Column("ess_tail", "min tail ESS"),
        Column("divergences", "Divergences"),
        Column("bfmi", "min BFMI"),
        Column("ppp", "PPC p-values",
               footnote="Range of the posterior predictive p-values of the group totals per "
                        "period and of the between-ward variance; values near 0 or 1 mean the "
                        "model does not reproduce that feature of the data."),
    ]
    cols += [Column(c, c.replace("_", " "), spanner="Prior sensitivity") for c in sens_cols]
    cols.append(Column("gate", "Gate", align="center",
                       footnote=f"Thresholds: {thresholds}." if thresholds else ""))
    synthetic = bool(diag["synthetic"].map(_truthy).any()) if "synthetic" in diag else False
    return PublicationTable(
        name="diagnostics", title="Sampler diagnostics and posterior predictive checks",
        subtitle="Worst value over the model's parameters, per indicator",
        data=diagnostics, display=display, columns=tuple(cols), stub="indicator",
        stub_label="Indicator", synthetic=synthetic,
    )


def simple_table(name: str, title: str, df: pd.DataFrame, labels: Sequence[tuple[str, str]], *,
                 stub: str, subtitle: str = "", notes: Sequence[str] = (),
                 synthetic: bool = False) -> PublicationTable:
    """A table of already formatted text columns: ``labels`` is ``[(column, heading)]``,
    the first being the stub (row labels)."""
    display = df[[stub, *[k for k, _ in labels if k != stub]]].astype(str).copy()
    head = dict(labels)
    cols = tuple(Column(k, h, align="left") for k, h in labels if k != stub)
    return PublicationTable(name=name, title=title, subtitle=subtitle, data=df, display=display,
                            columns=cols, stub=stub, stub_label=head.get(stub, ""),
                            source_notes=tuple(notes), synthetic=synthetic)


__all__ = [
    "Column", "MINUS", "PublicationTable", "RATIO_SCALES", "comparison_table",
    "concordance_table", "decimals_for", "diagnostics_table", "format_interval",
    "format_number", "format_p_value", "format_probability", "gate_text",
    "prior_sensitivity_columns", "ratio_rows",
    "row_decimals", "simple_table", "title_of", "unit_label", "verdict_text",
]
