"""The transcribed report facts match the report text (parsed independently here)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from nbdid.data_prep import published
from nbdid.registry import INDICATOR_KEYS, INDICATORS


def _num(cell: str) -> float:
    return float(cell.replace("£", "").replace(",", "").replace("%", "").replace("+-", "").strip())


def _a_table_rows(text: str, table: str) -> dict[str, list[float]]:
    """Parse the NBI and Benchmark rows of an A table from the report text."""
    start = text.index(f"Table {table}:")
    block = text[start : start + 1500]
    rows = {}
    for label, group in (("Big Local/NBI", "nbi"), ("Benchmark Areas", "benchmark")):
        m = re.search(rf"^{re.escape(label)}\t(.+)$", block, flags=re.M)
        assert m, f"row {label} of Table {table} not found"
        cells = [c for c in m.group(1).split("\t") if c.strip()]
        rows[group] = [_num(c) for c in cells[:5]]
    return rows


@pytest.mark.parametrize("key", INDICATOR_KEYS)
def test_a_tables_match_report_text(report_text: str, key: str) -> None:
    table = f"{INDICATORS[key].report_table}A"
    parsed = _a_table_rows(report_text, table)
    vals = published.load_report_values()
    for group, (v0, h0, v1, h1, change) in parsed.items():
        g = vals[(vals.indicator == key) & (vals.group == group)].set_index("period")
        assert g.loc[0, "value"] == pytest.approx(v0)
        assert g.loc[0, "half_width"] == pytest.approx(h0)
        assert g.loc[1, "value"] == pytest.approx(v1)
        assert g.loc[1, "half_width"] == pytest.approx(h1)
        assert g.loc[1, "published_change"] == pytest.approx(change)
        assert (g.table == table).all()


def test_a_table_period_labels_match_headers(report_text: str) -> None:
    vals = published.load_report_values()
    for key in INDICATOR_KEYS:
        table = f"{INDICATORS[key].report_table}A"
        block = report_text[report_text.index(f"Table {table}:") :][:600]
        header = next(line for line in block.splitlines() if line.startswith("\t"))
        labels = [c.strip() for c in header.split("\t") if c.strip()][:2]
        got = vals[(vals.indicator == key) & (vals.group == "nbi")].sort_values("period")
        assert list(got.period_label) == labels
        assert tuple(labels) == INDICATORS[key].periods


def test_pairs_match_appendix(report_text: str) -> None:
    appendix = report_text[report_text.index("Benchmark Area Local") :]
    lines = [ln for ln in appendix.splitlines()[2:] if ln.count("\t") == 3]
    parsed = pd.DataFrame(
        [ln.split("\t") for ln in lines[:29]],
        columns=["nbi_ward", "nbi_la", "benchmark_ward", "benchmark_la"],
    )
    pairs = published.load_pairs()
    assert len(pairs) == 29
    assert list(pairs.pair) == list(range(1, 30))
    pd.testing.assert_frame_equal(
        pairs.drop(columns="pair"), parsed.map(str.strip), check_dtype=False
    )


def test_pairs_structure() -> None:
    wards = published.study_wards()
    assert len(wards) == 58
    assert all(sorted(g) == ["benchmark", "nbi"] for _, g in wards.groupby("pair").group)
    # names shared across authorities are told apart by the local authority
    assert not wards.duplicated(["ward_name", "la"]).any()
    assert wards.ward_name.duplicated().any()  # e.g. St Matthew's (Preston and Walsall)


def test_table1_matches_report_text(report_text: str) -> None:
    block = report_text[report_text.index("Table 1: Summary of analysis") :]
    block = block[: block.index("Note: Positive trend")]
    t1 = published.load_table1().set_index("indicator")
    titles = {INDICATORS[k].title: k for k in INDICATOR_KEYS}
    seen = 0
    for line in block.splitlines():
        cells = [c.strip() for c in line.split("\t")]
        if cells[0] in titles:
            ticks = [c.replace("\\checkmark", "✓") == "✓" for c in cells[1:6]]
            assert ticks == list(t1.loc[titles[cells[0]], list(published.TABLE1_COLUMNS)])
            seen += 1
    assert seen == 7


def test_b_tables_match_report_text(report_text: str) -> None:
    bt = published.load_b_tables()
    for key in INDICATOR_KEYS:
        sub = bt[bt.indicator == key].sort_values("question_order")
        label = sub.table_label.iloc[0]
        # the business table is (mis)labelled 10B too: take the occurrence after its A table
        a_pos = report_text.index(f"Table {INDICATORS[key].report_table}A:")
        start = report_text.index(f"Table {label}:", a_pos)
        block = report_text[start : start + 1800].splitlines()[1:]
        answers = []
        for line in block:
            if "?" in line:
                tail = line.rsplit("?", 1)[1].strip()
                answers.append(tail if tail in ("Yes", "No") else "")
            if len(answers) == 6:
                break
        assert answers == [("" if pd.isna(a) else a) for a in sub.answer], key
        assert len(sub) == 6
        assert list(sub.question) == list(published.B_QUESTIONS)


def test_labels_quote_the_report(report_text: str) -> None:
    flat = report_text.replace("*", "")
    labels = published.load_report_labels()
    for r in labels.itertuples():
        assert r.chart_title in flat, r.chart_title
        assert r.table4_period.replace(" ", "") in flat.replace(" ", ""), r.table4_period
        assert r.change_header.split()[0] in flat
    for r in published.load_report_statements().itertuples():
        assert " ".join(r.quote.split()) in " ".join(flat.split()), r.quote
