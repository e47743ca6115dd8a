"""Concordance of the frequentist analyses and the posterior: one table per panel.

:func:`concordance` runs every method of :mod:`nbdid.analysis.frequentist` on each
indicator of a ward panel and adds the Bayesian posterior (from fit summaries) as one
more row; :func:`concordance_summary` says, per indicator, which methods call the
difference in change significant, beside the report's published verdict.

Every method has a row for every indicator: a method that cannot be computed (no
matched pairs, a group without events, no posterior) has NaNs and a ``note`` saying why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from nbdid.analysis import frequentist as fq
from nbdid.analysis.comparison import report_did_table
from nbdid.provenance import SYNTHETIC_NOTICE
from nbdid.registry import INDICATORS

CONCORDANCE_COLUMNS: tuple[str, ...] = (
    "indicator", "method", "method_label", "estimate", "lower", "upper", "significant",
    "p_value", "unit", "ratio_scale", "ratio", "ratio_lower", "ratio_upper", "better",
    "prob_benefit", "gate", "reproduces_published", "estimand", "test", "family",
    "n_wards", "n_pairs", "note", "synthetic", "notice",
)
"""Columns of :func:`concordance` (one row per indicator and method)."""


def _synthetic(panel: pd.DataFrame, key: str) -> bool:
    if "synthetic" not in panel:
        return False
    rows = panel[panel["indicator"].astype(str) == key]
    return bool(rows["synthetic"].fillna(False).astype(bool).any())


def concordance(
    panel: pd.DataFrame,
    indicators: Iterable[str] | None = None,
    *,
    summaries: Mapping[str, pd.DataFrame] | None = None,
    posterior_notes: Mapping[str, str] | None = None,
    families: Mapping[str, str] | None = None,
    draws: int = fq.RI_DRAWS,
    seed: int = fq.RI_SEED,
    exact_max: int = fq.RI_EXACT_MAX_PAIRS,
) -> pd.DataFrame:
    """Every method's DiD for every indicator of a panel.

    Parameters
    ----------
    panel
        Tidy ward panel (validated).
    indicators
        Indicator keys (default: every indicator in the panel, in registry order first).
    summaries
        Bayesian fit summaries by indicator (:attr:`nbdid.models.fit.FitResult.summary`
        or rows of a run's ``summary.csv``); indicators without one get a NaN ``bayes``
        row whose note is ``posterior_notes[key]`` (or "no posterior").
    posterior_notes
        Why an indicator has no posterior (e.g. the fit failed), by indicator.
    families
        Families of indicator keys that are not in the registry.
    draws, seed, exact_max
        Randomization-inference settings (see :mod:`nbdid.analysis.frequentist`).

    Returns
    -------
    pandas.DataFrame
        :data:`CONCORDANCE_COLUMNS`.  ``reproduces_published`` (``report_pooled`` rows of
        registry indicators) is true when every recomputed pooled group value rounds to
        the published Tables 5A-11A value.
    """
    keys = list(indicators) if indicators is not None else panel_keys(panel)
    summaries = summaries or {}
    posterior_notes = posterior_notes or {}
    families = families or {}
    parts = []
    for key in keys:
        rows = fq.analyse(
            panel, key, family=families.get(key), summary=summaries.get(key),
            posterior_note=posterior_notes.get(key, ""), draws=draws, seed=seed,
            exact_max=exact_max,
        )
        groups = fq.pooled_group_values(panel, key, family=families.get(key))
        rep = fq.reproduces_published(groups)
        rows["reproduces_published"] = pd.array([pd.NA] * len(rows), dtype="boolean")
        if rep is not None:
            rows.loc[rows["method"] == "report_pooled", "reproduces_published"] = rep
        syn = _synthetic(panel, key)
        rows["synthetic"] = syn
        rows["notice"] = SYNTHETIC_NOTICE if syn else ""
        parts.append(rows)
    out = pd.concat(parts, ignore_index=True)
    out["method_label"] = out["method"].map(fq.METHOD_LABELS)
    return out[list(CONCORDANCE_COLUMNS)]


def panel_keys(panel: pd.DataFrame) -> list[str]:
    """Indicator keys of a panel: registry order first, then others sorted."""
    present = list(dict.fromkeys(panel["indicator"].astype(str)))
    return [k for k in INDICATORS if k in present] + sorted(k for k in present if k not in INDICATORS)


def concordance_groups(
    panel: pd.DataFrame,
    indicators: Iterable[str] | None = None,
    *,
    families: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The report's pooled group values per period beside Tables 5A-11A, all indicators."""
    keys = list(indicators) if indicators is not None else panel_keys(panel)
    families = families or {}
    parts = []
    for key in keys:
        g = fq.pooled_group_values(panel, key, family=families.get(key))
        syn = _synthetic(panel, key)
        g["synthetic"] = syn
        g["notice"] = SYNTHETIC_NOTICE if syn else ""
        parts.append(g)
    return pd.concat(parts, ignore_index=True)


def published_intervals() -> pd.DataFrame:
    """The report's published DiD and overlap-rule interval per registry indicator."""
    return report_did_table()[
        ["indicator", "report_did", "report_did_lower", "report_did_upper", "report_significant",
         "report_better"]
    ]


def _verdict(sig, better) -> str:
    if sig is pd.NA or pd.isna(sig):
        return "n/a"
    if not sig:
        return "no"
    return "yes (better)" if bool(better) else "yes (worse)"


def concordance_summary(conc: pd.DataFrame) -> pd.DataFrame:
    """Per indicator: which methods call the difference in change significant.

    Returns
    -------
    pandas.DataFrame
        ``indicator, significant_methods, n_significant, n_computed, not_computed,
        agreement``, one column per method (``yes (better)``, ``yes (worse)``, ``no`` or
        ``n/a``), ``published_significant`` (the report's published verdict, registry
        indicators), ``reproduces_published``, ``gate``, ``synthetic``, ``notice``.
    """
    pub = published_intervals().set_index("indicator")
    rows = []
    for key, sub in conc.groupby("indicator", sort=False):
        sub = sub.set_index("method")
        row: dict = {"indicator": key}
        sig = [m for m in fq.METHODS if m in sub.index and sub.loc[m, "significant"] is not pd.NA
               and bool(sub.loc[m, "significant"])]
        computed = [m for m in fq.METHODS if m in sub.index and not pd.isna(sub.loc[m, "significant"])]
        missing = [m for m in fq.METHODS if m not in computed]
        row["significant_methods"] = ", ".join(sig) if sig else "none"
        row["n_significant"] = len(sig)
        row["n_computed"] = len(computed)
        row["not_computed"] = ", ".join(missing)
        if not computed:
            row["agreement"] = "nothing computed"
        elif len(sig) == len(computed):
            dirs = {bool(sub.loc[m, "better"]) for m in sig}
            row["agreement"] = "all significant" + ("" if len(dirs) == 1 else " (directions differ)")
        elif not sig:
            row["agreement"] = "none significant"
        else:
            row["agreement"] = f"split: {len(sig)} of {len(computed)} significant"
        for m in fq.METHODS:
            row[m] = _verdict(sub.loc[m, "significant"], sub.loc[m, "better"]) if m in sub.index else "n/a"
        if key in pub.index:
            row["published_significant"] = _verdict(bool(pub.loc[key, "report_significant"]),
                                                    bool(pub.loc[key, "report_better"]))
        else:
            row["published_significant"] = "n/a"
        rp = sub.loc["report_pooled", "reproduces_published"] if "report_pooled" in sub.index else pd.NA
        row["reproduces_published"] = rp
        row["gate"] = str(sub.loc["bayes", "gate"]) if "bayes" in sub.index else ""
        row["synthetic"] = bool(sub["synthetic"].any())
        row["notice"] = SYNTHETIC_NOTICE if row["synthetic"] else ""
        rows.append(row)
    out = pd.DataFrame(rows)
    out["reproduces_published"] = out["reproduces_published"].astype("boolean")
    return out


def format_summary(summary: pd.DataFrame) -> str:
    """Readable rendering of :func:`concordance_summary` for the terminal."""
    short = {k: m.short for k, m in fq.METHOD_REGISTRY.items()}
    head = f"{'indicator':<22}" + "".join(f"{short[m]:>14}" for m in fq.METHODS)
    head += f"{'published':>14}  agreement"
    lines = [head]
    for _, r in summary.iterrows():
        cells = "".join(f"{r[m]:>14}" for m in fq.METHODS)
        pub = r["published_significant"]
        lines.append(f"{r['indicator']:<22}{cells}{pub:>14}  {r['agreement']}")
    lines.append(
        "(yes = 95% interval excludes no difference / report's change intervals do not overlap; "
        "better/worse = direction for the NBI group; n/a = not computed, see the note column "
        "of concordance.csv)"
    )
    if bool(summary["synthetic"].any()):
        lines.insert(0, f"*** {SYNTHETIC_NOTICE} ***")
    rp = summary["reproduces_published"]
    if rp.notna().any():
        ok = summary.loc[rp.fillna(False).astype(bool), "indicator"].tolist()
        bad = summary.loc[(rp == False).fillna(False).astype(bool), "indicator"].tolist()  # noqa: E712
        lines.append(
            f"Report's pooled group values reproduce Tables 5A-11A (to the report's rounding) "
            f"for {len(ok)} of {len(ok) + len(bad)} indicators" + (f"; not for {', '.join(bad)}" if bad else "")
        )
    return "\n".join(lines)


def finite_span(conc: pd.DataFrame) -> tuple[float, float]:
    """Smallest and largest finite number among estimates and bounds (for plotting)."""
    v = conc[["estimate", "lower", "upper"]].to_numpy(float).ravel()
    v = v[np.isfinite(v)]
    return (float(v.min()), float(v.max())) if len(v) else (-1.0, 1.0)
