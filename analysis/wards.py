"""Ward-level results of a fit: each ward's change and each matched pair's difference.

The hierarchical model gives every ward its own change after the initiative
(``ward_change``, its deviation from its group's mean change; see
:func:`nbdid.models.design.add_did_terms`).  These functions turn the posterior into
tidy tables in the indicator's own unit for the ward-level figures
(:func:`nbdid.figures.plot_ward_changes`, :func:`nbdid.figures.plot_pair_differences`):

:func:`ward_change_table`
    each ward's change (pooled post-period value minus pooled base-period value, the
    ward's predicted values with its own effects), with its 95% interval and the
    observed change;
:func:`group_change_table`
    each group's pooled change (the two terms of the population-averaged DiD);
:func:`pair_difference_table`
    per matched pair (or set), the NBI ward's change minus its benchmark wards' mean
    change, with the verdict of its 95% interval.

Functions return DataFrames and never draw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from nbdid.analysis.estimands import effect_draws, indicator_unit
from nbdid.analysis.sensitivity import conclusion
from nbdid.models.design import Design
from nbdid.models.model import expected
from nbdid.registry import GROUPS, INDICATORS

if TYPE_CHECKING:
    from arviz import InferenceData

WARD_CHANGE_COLUMNS: tuple[str, ...] = (
    "indicator", "ward", "ward_name", "group", "pair", "mean", "sd", "q2.5", "q97.5",
    "observed", "scale", "synthetic",
)
GROUP_CHANGE_COLUMNS: tuple[str, ...] = (
    "indicator", "group", "mean", "sd", "q2.5", "q97.5", "observed", "scale", "synthetic",
)
PAIR_DIFFERENCE_COLUMNS: tuple[str, ...] = (
    "indicator", "pair", "nbi_ward", "benchmark_wards", "mean", "sd", "q2.5", "q97.5",
    "prob_benefit", "conclusion", "observed", "scale", "synthetic",
)


def _unit(design: Design, multiplier: float | None) -> tuple[float, str]:
    mult, scale = indicator_unit(design.indicator, design.family)
    return (mult if multiplier is None else float(multiplier)), scale


def _weights(design: Design) -> np.ndarray:
    return np.asarray(design.weights, dtype=float)


def _observed_values(design: Design) -> np.ndarray:
    """Observed value per observation on the expected-value scale (proportion, rate,
    mean price): the family's expected value at the observation's empirical link."""
    fam = design.family
    return np.asarray(fam.expected(fam.empirical_link(design.arrays), design.arrays), float)


def _change_matrix(design: Design) -> np.ndarray:
    """``(obs, ward)`` weights: pooled post-period value minus pooled base value per ward."""
    w = _weights(design)
    n_ward = len(design.coords["ward"])
    mat = np.zeros((design.n_obs, n_ward))
    for post, sign in ((1, 1.0), (0, -1.0)):
        m = design.post == post
        tot = np.bincount(design.ward_idx[m], weights=w[m], minlength=n_ward)
        if np.any(tot[np.unique(design.ward_idx)] <= 0):
            raise ValueError(
                f"{design.indicator}: a ward has no {'post' if post else 'base'}-period exposure"
            )
        idx = np.flatnonzero(m)
        mat[idx, design.ward_idx[m]] = sign * w[m] / tot[design.ward_idx[m]]
    return mat


def ward_change_draws(idata: InferenceData, design: Design, *, multiplier: float | None = None) -> np.ndarray:
    """Posterior draws of every ward's change in the own unit, shape ``(sample, ward)``."""
    mult, _ = _unit(design, multiplier)
    ev = expected(idata.posterior, design)
    ev = ev.reshape(-1, ev.shape[-1])
    return mult * ev @ _change_matrix(design)


def _summ(x: np.ndarray) -> dict[str, np.ndarray]:
    q = np.quantile(x, [0.025, 0.975], axis=0)
    return {"mean": x.mean(axis=0), "sd": x.std(axis=0, ddof=1), "q2.5": q[0], "q97.5": q[1]}


def _ward_pairs(design: Design) -> np.ndarray | None:
    if design.ward_pair_idx is not None and "pair" in design.coords:
        pairs = np.asarray(design.coords["pair"], dtype=object)
        return pairs[design.ward_pair_idx]
    frame = design.frame
    if frame is not None and "pair" in frame.columns:
        first = frame.drop_duplicates("ward")
        lookup = dict(zip(first["ward"].astype(str), first["pair"], strict=True))
        return np.asarray([lookup.get(str(w), np.nan) for w in design.coords["ward"]],
                          dtype=object)
    return None


def _ward_names(design: Design) -> list[str]:
    frame = design.frame
    if frame is not None and "ward_name" in frame.columns:
        first = frame.drop_duplicates("ward")
        lookup = dict(zip(first["ward"].astype(str), first["ward_name"], strict=True))
        return [str(lookup.get(str(w), w)) for w in design.coords["ward"]]
    return [str(w) for w in design.coords["ward"]]


def ward_change_table(idata: InferenceData, design: Design, *, multiplier: float | None = None) -> pd.DataFrame:
    """Each ward's change after the initiative, posterior and observed, in the own unit.

    A ward's change is its pooled post-period value minus its pooled base-period value
    (exposure-weighted over its observations, like the report's pooled rates), from
    its predicted values with its own level, change and observation effects.

    Parameters
    ----------
    idata
        Fitted InferenceData (``posterior`` with ``ward_level``, ``period_effect``,
        ``did`` and, with ward-specific changes, ``ward_change``).
    design
        The design it was fitted to (e.g. ``FitResult.design`` or
        ``design_from_dataset(idata.constant_data)``).
    multiplier
        Override the indicator's unit multiplier.

    Returns
    -------
    pandas.DataFrame
        :data:`WARD_CHANGE_COLUMNS`, one row per ward in the design's order; ``pair``
        is missing (NaN) when the design does not say; ``observed`` is the change in
        the raw data; ``scale`` the unit label (``pp``, ``per 1,000 population``, ``£``).
    """
    mult, scale = _unit(design, multiplier)
    s = _summ(ward_change_draws(idata, design, multiplier=mult))
    observed = mult * (_observed_values(design) @ _change_matrix(design))
    pairs = _ward_pairs(design)
    n = len(design.coords["ward"])
    return pd.DataFrame({
        "indicator": design.indicator,
        "ward": [str(w) for w in design.coords["ward"]],
        "ward_name": _ward_names(design),
        "group": np.asarray(design.ward_group, dtype=str),
        "pair": pairs if pairs is not None else np.full(n, np.nan, dtype=object),
        **s,
        "observed": observed,
        "scale": scale,
        "synthetic": bool(design.synthetic),
    }, columns=list(WARD_CHANGE_COLUMNS))


def group_change_table(idata: InferenceData, design: Design, *, multiplier: float | None = None) -> pd.DataFrame:
    """Each group's pooled change (post minus base), posterior and observed, own unit.

    These are ``change_nbi`` and ``change_benchmark`` of
    :func:`nbdid.analysis.estimands.effect_draws`; their difference is the DiD the
    report's method estimates.

    Returns
    -------
    pandas.DataFrame
        :data:`GROUP_CHANGE_COLUMNS`, rows ``nbi`` then ``benchmark``.
    """
    mult, scale = _unit(design, multiplier)
    eff = effect_draws(idata, design, multiplier=mult)
    w = _weights(design)
    obs = _observed_values(design)
    rows = []
    for g in GROUPS:
        is_g = design.treated == (1 if g == "nbi" else 0)
        x = eff[f"change_{g}"].values.ravel()
        pooled = [np.sum(obs[m] * w[m]) / np.sum(w[m])
                  for m in (is_g & (design.post == 1), is_g & (design.post == 0))]
        rows.append({"indicator": design.indicator, "group": g,
                     **{k: float(v[0]) for k, v in _summ(x[:, None]).items()},
                     "observed": mult * (pooled[0] - pooled[1]), "scale": scale,
                     "synthetic": bool(design.synthetic)})
    return pd.DataFrame(rows, columns=list(GROUP_CHANGE_COLUMNS))


def pair_difference_table(idata: InferenceData, design: Design, *, multiplier: float | None = None,
                          lower_is_better: bool | None = None) -> pd.DataFrame:
    """Per matched pair (or set): the NBI ward's change minus its benchmarks' mean change.

    Parameters
    ----------
    idata, design
        As for :func:`ward_change_table`; the pairs come from the design's pair index
        (pair effects on) or from the ``pair`` column of ``design.frame``.
    multiplier
        Override the indicator's unit multiplier.
    lower_is_better
        Direction of benefit (default: the registry's; False for unknown keys).

    Returns
    -------
    pandas.DataFrame
        :data:`PAIR_DIFFERENCE_COLUMNS`, one row per pair with an NBI and at least one
        benchmark ward; ``prob_benefit`` is the posterior probability that the NBI ward
        did better; ``conclusion`` is ``benefit``/``harm`` when the 95% interval excludes
        zero in that direction, else ``unclear``.

    Raises
    ------
    ValueError
        If the design does not say which wards are paired.
    """
    pairs = _ward_pairs(design)
    if pairs is None:
        raise ValueError(
            f"{design.indicator}: the design does not say which wards are paired (fit with "
            "pair effects, or keep the panel's 'pair' column in design.frame)"
        )
    if lower_is_better is None:
        ind = INDICATORS.get(design.indicator)
        lower_is_better = ind.lower_is_better if ind is not None else False
    mult, scale = _unit(design, multiplier)
    draws = ward_change_draws(idata, design, multiplier=mult)
    observed = mult * (_observed_values(design) @ _change_matrix(design))
    wards = np.asarray([str(w) for w in design.coords["ward"]])
    group = np.asarray(design.ward_group, dtype=str)
    rows = []
    for p in pd.unique(pd.Series(pairs).dropna()):
        in_p = pairs == p
        t = np.flatnonzero(in_p & (group == "nbi"))
        c = np.flatnonzero(in_p & (group == "benchmark"))
        if len(t) == 0 or len(c) == 0:
            continue
        diff = draws[:, t].mean(axis=1) - draws[:, c].mean(axis=1)
        lo, hi = np.quantile(diff, [0.025, 0.975])
        better = diff < 0 if lower_is_better else diff > 0
        rows.append({
            "indicator": design.indicator, "pair": p, "nbi_ward": ";".join(wards[t]),
            "benchmark_wards": ";".join(wards[c]), "mean": float(diff.mean()),
            "sd": float(diff.std(ddof=1)), "q2.5": float(lo), "q97.5": float(hi),
            "prob_benefit": float(better.mean()),
            "conclusion": conclusion(float(lo), float(hi), lower_is_better),
            "observed": float(observed[t].mean() - observed[c].mean()),
            "scale": scale, "synthetic": bool(design.synthetic),
        })
    return pd.DataFrame(rows, columns=list(PAIR_DIFFERENCE_COLUMNS))
