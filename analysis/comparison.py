"""The report's verdicts beside the posterior: one row per indicator.

The report calls a difference in change "significant" when the two groups' change
intervals do not overlap; that is the same as the interval of the difference,
``[lower_NBI - upper_B, upper_NBI - lower_B]``, excluding zero.  That interval is set
beside the posterior DiD (population-averaged, in the indicator's own unit), its 95%
credible interval and the posterior probability that the NBI group did better.
"""

from __future__ import annotations

import pandas as pd

from nbdid.analysis.replication import recompute_judgements
from nbdid.registry import INDICATORS

COMPARISON_COLUMNS = (
    "indicator", "title", "unit", "report_did", "report_did_lower", "report_did_upper",
    "report_better", "report_significant", "posterior_did", "posterior_sd", "posterior_q2.5",
    "posterior_q97.5", "prob_benefit", "posterior_better", "posterior_significant",
    "agree", "verdict", "gate",
)


def report_did_table(values: pd.DataFrame | None = None) -> pd.DataFrame:
    """The report's DiD per indicator and the interval its overlap rule implies."""
    rec = recompute_judgements(values)
    return pd.DataFrame(
        {
            "indicator": rec.indicator,
            "report_did": rec.did,
            "report_did_lower": rec.nbi_change_lower - rec.benchmark_change_upper,
            "report_did_upper": rec.nbi_change_upper - rec.benchmark_change_lower,
            "report_better": rec.better_relative,
            "report_significant": rec.relative_significant,
            "baseline": rec.benchmark_v0,
        }
    )


def unit_did_row(summary: pd.DataFrame) -> pd.Series:
    """The population-averaged DiD in the indicator's own unit from a fit summary."""
    did = summary[summary.estimand == "did"]
    own = did[~did.scale.isin(["link", "percent", "odds_ratio", "rate_ratio", "price_ratio"])]
    if len(own) != 1:
        raise ValueError(f"expected one own-unit DiD row, found {len(own)}: {list(did.scale)}")
    return own.iloc[0]


def compare(summaries: dict[str, pd.DataFrame], *, values: pd.DataFrame | None = None) -> pd.DataFrame:
    """Comparison table of the report's verdicts and the posterior.

    Parameters
    ----------
    summaries
        Fit summaries by indicator key (``nbdid.models.fit.FitResult.summary``: columns
        ``indicator, estimand, scale, mean, sd, q2.5, q97.5, prob_benefit, gate``).
    values
        Published values in wide form (the report's by default).

    Returns
    -------
    pandas.DataFrame
        One row per indicator with :data:`COMPARISON_COLUMNS` plus ``baseline`` and,
        when the summaries carry them, ``prior_gate`` (the gate's prior-sensitivity
        reasons; empty when the prior check passed), ``synthetic`` and ``notice``.
        ``agree`` is true when the report and the posterior give the same verdict:
        both call the difference significant in the same direction, or neither does.
    """
    rep = report_did_table(values).set_index("indicator")
    rows = []
    for key, summ in summaries.items():
        ind = INDICATORS[key]
        r = rep.loc[key]
        u = unit_did_row(summ)
        lo, hi = float(u["q2.5"]), float(u["q97.5"])
        post_sig = lo > 0 or hi < 0
        post_better = ind.better(float(u["mean"]))
        rep_sig = bool(r.report_significant)
        agree = (rep_sig == post_sig) and (not rep_sig or bool(r.report_better) == post_better)
        gate = str(summ["gate"].iloc[0]) if "gate" in summ else "unknown"
        if rep_sig and not post_sig:
            verdict = "report's significant finding does not survive"
        elif rep_sig and post_sig:
            verdict = "survives" if agree else "significant, opposite direction"
        elif post_sig:
            verdict = "posterior finds a difference the report did not claim"
        else:
            verdict = "neither finds a significant difference"
        if not gate.startswith("passed"):
            verdict += " (diagnostics FAILED: do not report)"
        row = {
            "indicator": key,
            "title": ind.title,
            "unit": ind.unit,
            "report_did": r.report_did,
            "report_did_lower": r.report_did_lower,
            "report_did_upper": r.report_did_upper,
            "report_better": bool(r.report_better),
            "report_significant": rep_sig,
            "posterior_did": float(u["mean"]),
            "posterior_sd": float(u["sd"]),
            "posterior_q2.5": lo,
            "posterior_q97.5": hi,
            "prob_benefit": float(u["prob_benefit"]),
            "posterior_better": post_better,
            "posterior_significant": post_sig,
            "agree": agree,
            "verdict": verdict,
            "gate": gate,
            "baseline": r.baseline,
        }
        for extra in ("prior_gate", "synthetic", "notice"):
            if extra in summ:
                row[extra] = summ[extra].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)


def forest_data(comparison: pd.DataFrame) -> pd.DataFrame:
    """Reshape a comparison table for :func:`nbdid.figures.plot_forest`."""
    return pd.DataFrame(
        {
            "indicator": comparison.indicator,
            "title": comparison.title,
            "unit": comparison.unit,
            "estimate": comparison.posterior_did,
            "lower": comparison["posterior_q2.5"],
            "upper": comparison["posterior_q97.5"],
            "report_estimate": comparison.report_did,
            "report_lower": comparison.report_did_lower,
            "report_upper": comparison.report_did_upper,
            "baseline": comparison.baseline,
            "prob_benefit": comparison.prob_benefit,
            "gate_passed": comparison.gate.astype(str).str.startswith("passed"),
            "synthetic": comparison.get("synthetic", False),
        }
    )
