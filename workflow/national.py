"""National scale: the study's initiative wards against every other English ward.

The report compares 29 initiative wards with 29 matched benchmarks.  A national model
uses every English ward instead: the initiative wards against all ~7,000 others as one
hierarchical comparison population, adjusted for the matching covariates (IMD 2019
mean LSOA rank and share of LSOAs in the most deprived decile), with each covariate's
interaction with ``post`` allowing for conditional parallel trends.  It is the
ordinary nbdid model: no pairs (``pair`` is empty), covariates, one ward-change SD per
group (see ``docs/scale.md``).

No national outcome data ship with nbdid, so :func:`national_panel` builds a
**synthetic** one on the real ward list: the wards of the ONS LSOA-to-ward lookup with
their covariates from the real IMD 2019 LSOA ranks, the study's initiative wards
resolved to the lookup's vintage (composite wards kept whole, their parts dropped from
the comparison population), and simulated counts (:func:`nbdid.models.simulate.
simulate_national_panel`).  Every row is marked synthetic.

>>> res = national_panel(periods=2, wards=200, seed=1)      # doctest: +SKIP
>>> fit = nbdid.fit(res.panel, "crime", config=national_model_config())  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nbdid.config import DiagnosticsConfig, ModelConfig, RunConfig, SamplerConfig
from nbdid.data_prep.covariates import find_match_inputs, study_covariates
from nbdid.data_prep.ingest import json_default
from nbdid.data_prep.published import load_report_values
from nbdid.data_prep.schema import write_panel
from nbdid.errors import InputError
from nbdid.families import get_family
from nbdid.models.simulate import NATIONAL_COVARIATES, simulate_national_panel
from nbdid.outputs import prepare_out_dir, write_text
from nbdid.registry import INDICATORS

__all__ = ["NATIONAL_DIAGNOSTICS", "NATIONAL_SAMPLER", "NationalPanel", "national_config", "national_model_config", "national_panel", "national_wards"]

SYNTHETIC_NOTE = ("SYNTHETIC DATA: the ward list and IMD covariates are real (ONS lookup, "
                  "IMD 2019); every outcome value is simulated.")


def national_wards(*, imd: str | os.PathLike[str] | None = None,
                   lookups: str | os.PathLike[str] | None = None
                   ) -> tuple[pd.DataFrame, list[str], dict[str, Any]]:
    """Every English ward with its IMD covariates, and the initiative wards among them.

    Parameters
    ----------
    imd, lookups
        IMD 2019 LSOA file and LSOA-to-ward lookup (file or folder); default: the real
        extracts in ``../shared/data``.

    Returns
    -------
    wards, treated, info
        ``wards``: ``ward, ward_name, la_name, n_lsoa`` and the covariates, one row per
        ward, the 29 initiative wards as the study resolves them (a ward merged from
        several of the lookup's is one row) and no ward that is part of one;
        ``treated``: the initiative wards' codes; ``info``: the files and counts.
    """
    imd_path, lookup = find_match_inputs(None if imd is None else str(imd),
                                         None if lookups is None else str(lookups))
    every, study = study_covariates(imd_path, lookup)
    nbi = study[study["group"] == "nbi"]
    parts = {p for code in nbi["ward"].astype(str) for p in code.split("+")}
    others = every[~every["ward"].astype(str).isin(parts)]
    cols = ["ward", "ward_name", "la_name", "n_lsoa", *NATIONAL_COVARIATES]
    wards = pd.concat([nbi[cols], others[cols]], ignore_index=True)
    wards = wards[wards[list(NATIONAL_COVARIATES)].notna().all(axis=1)].reset_index(drop=True)
    treated = [c for c in nbi["ward"].astype(str) if c in set(wards["ward"].astype(str))]
    info = {"imd": str(imd_path), "lookup": str(lookup), "wards_in_lookup": len(every),
            "initiative_wards": len(treated), "parts_of_initiative_wards": len(parts)}
    return wards, treated, info


@dataclass
class NationalPanel:
    """A synthetic national panel (:func:`national_panel`).

    Attributes
    ----------
    panel
        The tidy panel: one row per ward and period, ``pair`` empty, the covariates in
        every row, ``synthetic`` true.
    wards
        The ward table it was simulated on.
    info
        Settings, sources and the true effect (``did`` link scale, ``did_pa`` in the
        indicator's unit).
    """

    panel: pd.DataFrame
    wards: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        """One paragraph: what was made, from what, and the synthetic warning."""
        i = self.info
        return (f"national {i['indicator']} panel: {i['wards']} wards ({i['initiative_wards']} "
                f"initiative, {i['wards'] - i['initiative_wards']} comparison) x {i['periods']} "
                f"periods (first post period {i['first_post']}), {len(self.panel)} rows; true "
                f"DiD {i['did']:+.3f} on the link scale; covariates "
                f"{', '.join(i['covariates'])}\n{SYNTHETIC_NOTE}")

    def save(self, out: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write the panel (CSV) and ``<stem>.provenance.json`` beside it."""
        p = Path(out)
        if p.suffix.lower() != ".csv":
            raise InputError(f"--out {p} must end in .csv", column="--out")
        prov = p.with_name(f"{p.stem}.provenance.json")
        prepare_out_dir(p.parent if str(p.parent) else ".", [p.name, prov.name], force=force)
        write_panel(self.panel, p, covariates=NATIONAL_COVARIATES)
        write_text(json.dumps({**self.info, "note": SYNTHETIC_NOTE}, indent=2,
                              default=json_default) + "\n", prov)
        return p


def national_panel(*, indicator: str = "crime", periods: int = 2, first_post: int | None = None,
                   did: float = -0.1, wards: int | None = None, seed: int = 0,
                   imd: str | os.PathLike[str] | None = None,
                   lookups: str | os.PathLike[str] | None = None,
                   ward_table: pd.DataFrame | None = None,
                   treated: list[str] | None = None) -> NationalPanel:
    """A synthetic national panel on the real English ward list.

    Parameters
    ----------
    indicator
        A count indicator of the registry (its family and base rate are used).
    periods, first_post
        2 (before/after) or an annual panel (e.g. 11); the first post period (default
        1 for two periods, else the middle one).
    did
        True effect on the link scale (-0.1: about a 10% fall).
    wards
        Keep every initiative ward and a random sample of the others, ``wards`` in all
        (for scaling measurements: 58, 580, 2,000); default: every ward.
    seed
        Seed of the sample and the simulation.
    imd, lookups
        Files of :func:`national_wards` (default ``../shared/data``).
    ward_table, treated
        A ward table and initiative codes to use instead of :func:`national_wards`.

    Returns
    -------
    NationalPanel
    """
    if indicator not in INDICATORS:
        raise InputError(f"unknown indicator '{indicator}'")
    ind = INDICATORS[indicator]
    if not get_family(ind.family).is_count:
        raise InputError(f"national panels are simulated for count indicators; {indicator} "
                         f"is {ind.family}")
    if periods < 2:
        raise InputError(f"--periods must be at least 2, not {periods}")
    if ward_table is None:
        table, codes, info = national_wards(imd=imd, lookups=lookups)
    else:
        table, codes, info = ward_table, list(treated or []), {"source": "given ward table"}
    rng = np.random.default_rng(seed)
    if wards is not None:
        nbi = table["ward"].astype(str).isin(codes)
        if wards < int(nbi.sum()) + 2:
            raise InputError(f"--wards must be at least {int(nbi.sum()) + 2} (every initiative "
                             f"ward and two others), not {wards}")
        rest = np.flatnonzero(~nbi.to_numpy())
        keep = np.sort(np.concatenate([np.flatnonzero(nbi.to_numpy()),
                                       rng.choice(rest, size=min(wards - int(nbi.sum()), len(rest)),
                                                  replace=False)]))
        table = table.iloc[keep].reset_index(drop=True)
    panel, truth = simulate_national_panel(
        table, codes, family=ind.family, indicator=indicator, n_periods=periods,
        first_post=first_post, did=did, treated_base=_published_base(indicator),
        seed=int(rng.integers(2**32)))
    fp = int(panel.loc[panel["post"] == 1, "period"].min())
    info = {**info, "indicator": indicator, "family": ind.family, "periods": periods,
            "first_post": fp, "did": did, "did_pa": truth.did_pa, "seed": seed,
            "wards": int(table.shape[0]), "initiative_wards": len(codes),
            "covariates": list(NATIONAL_COVARIATES), "synthetic": True}
    return NationalPanel(panel, table, info)


def _published_base(key: str) -> float | None:
    """The report's base-period value of the initiative wards, as a rate or share."""
    v = load_report_values()
    row = v[(v["indicator"] == key) & (v["group"] == "nbi") & (v["period"] == 0)]
    if row.empty:
        return None
    return float(row["value"].iloc[0]) / INDICATORS[key].multiplier


NATIONAL_SAMPLER = SamplerConfig(draws=1000, tune=500)
"""Sampler of a national fit: the run's defaults (diagonal mass matrix, 4 chains) with
500 warm-up steps (nutpie's own default is 300) and 1,000 draws a chain instead of
1,000 and 2,000.

Each ward's mean level is sampled instead of its level
(:func:`nbdid.models.design.level_weights`), so nutpie needs about 22-31 leapfrog steps a
draw at any number of wards, and the low-rank mass matrix no longer pays (2,000 wards:
104 s of sampling against 54 s with the diagonal one).  4 x 1,000 draws gave a bulk ESS
of the DiD of 4,400-6,400 and passed the diagnostics gate at 580, 2,000 and 7,177 wards
x 2 periods.  nutpie keeps every draw of every stored variable in memory until the end,
warm-up included (with each draw's gradient and position: 57,000 numbers a draw at
7,177 wards), so the shorter warm-up also bounds the peak memory (docs/scale.md)."""

NATIONAL_DIAGNOSTICS = DiagnosticsConfig(pointwise="ward", ppc_draws=1000)
"""Diagnostics of a national fit: the default thresholds, with the log-likelihood and
PSIS-LOO per ward (leave-one-ward-out: 7,177 values a draw instead of 78,947 on an
annual panel) and posterior predictive replicates for 1,000 of the draws."""


def national_config(base: RunConfig | None = None, **model_overrides: Any) -> RunConfig:
    """``base`` (default settings when ``None``) with the national model, sampler and
    diagnostics: :func:`national_model_config` (keeping ``base``'s priors and
    ``model_overrides``), :data:`NATIONAL_SAMPLER` (keeping ``base``'s seed and backend)
    and :data:`NATIONAL_DIAGNOSTICS` (keeping ``base``'s thresholds).  ``nbdid fit
    --national`` uses it."""
    base = base or RunConfig()
    model = national_model_config(priors=base.model.priors, **model_overrides)
    sampler = dataclasses.replace(NATIONAL_SAMPLER, seed=base.sampler.seed, backend=base.sampler.backend)
    diagnostics = dataclasses.replace(base.diagnostics, pointwise=NATIONAL_DIAGNOSTICS.pointwise,
                                      ppc_draws=NATIONAL_DIAGNOSTICS.ppc_draws)
    return dataclasses.replace(base, model=model, sampler=sampler, diagnostics=diagnostics)


def national_model_config(**overrides: Any) -> ModelConfig:
    """The model settings of a national fit: no pairs, the national covariates (each with
    its interaction with ``post``), one ward-change SD per group, and each ward's mean
    level sampled instead of its level (``mean_level``; see docs/scale.md)."""
    settings = {"pair_effects": False, "covariates": NATIONAL_COVARIATES, "mean_level": True,
                **overrides}
    return dataclasses.replace(ModelConfig(), **settings)
