"""Diagnostics gate: convergence checks and posterior predictive checks."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

from nbdid.analysis.diagnostics import diagnose, mark_gate, ppc_pvalues
from nbdid.config import DiagnosticsConfig, ModelConfig
from nbdid.models.design import build_design
from nbdid.models.simulate import simulate_panel

LAX = DiagnosticsConfig(max_rhat=10.0, min_ess_bulk=1, min_ess_tail=1, max_divergences=10**6,
                        min_bfmi=0.0, ppc_p_range=(0.0, 1.0))


def _plug_in_posterior(panel, design, *, chains=2, draws=200, shift_chain=0.0, seed=0,
                       diverging=0):
    """A 'posterior' of the Poisson model without overdispersion, at plug-in values.

    Ward levels are the observed period-0 log rates, the period effect is the mean
    observed change, the DiD is zero; tiny jitter makes draws distinct.
    """
    rng = np.random.default_rng(seed)
    base = panel[panel["period"] == 0].set_index("ward")
    lvl = np.log(base["count"] / base["exposure"]).reindex(design.coords["ward"]).to_numpy()
    rates = panel.assign(lr=np.log(panel["count"] / panel["exposure"]))
    change = rates.groupby("period")["lr"].mean().diff().iloc[1]
    shape = (chains, draws)
    jitter = 1e-3 * rng.standard_normal(shape + (len(lvl),))
    offs = np.zeros(shape + (1,))
    offs[1:] += shift_chain
    div = np.zeros(shape, dtype=bool)
    div.flat[:diverging] = True
    return az.from_dict(
        posterior={
            "ward_level": lvl + jitter + offs,
            "period_effect": np.broadcast_to([0.0, change], shape + (2,)).copy(),
            "did": 1e-3 * rng.standard_normal(shape) + offs[..., 0],
        },
        sample_stats={"diverging": div, "energy": rng.standard_normal(shape)},
        coords={"ward": design.coords["ward"], "period": design.coords["period"]},
        dims={"ward_level": ["ward"], "period_effect": ["period"]},
    )


def test_ppc_flags_missing_overdispersion():
    panel, _ = simulate_panel("poisson", n_pairs=15, sigma_change=0.5, seed=4)
    d = build_design(panel, "crime", "poisson", pair_effects=False)
    idata = _plug_in_posterior(panel, d)
    p = ppc_pvalues(idata, d)
    # wards' own changes (SD 0.5) make the period-1 spread far wider than Poisson noise
    assert p["ppp_var_2021"] < 0.01
    row = diagnose(idata, d, DiagnosticsConfig(max_rhat=10, min_ess_bulk=1, min_ess_tail=1,
                                               min_bfmi=0.0)).iloc[0]
    assert not row["passed"]
    assert row["gate"].startswith("FAILED: posterior predictive check")
    assert "ppp_var_2021" in row["reasons"]


def test_ppc_passes_when_model_matches():
    # data drawn from the model itself, checked against the true parameters
    rng = np.random.default_rng(12)
    n_w = 30
    level = np.log(0.08) + 0.4 * rng.standard_normal(n_w)
    exposure = rng.uniform(5000, 15000, n_w)
    rows = []
    for t, change in enumerate([0.0, -0.2]):
        for w in range(n_w):
            rows.append({"indicator": "crime", "ward": f"W{w:02d}", "group": ("nbi", "benchmark")[w % 2],
                         "pair": pd.NA, "period": t, "period_label": ("2011", "2021")[t], "post": t,
                         "count": rng.poisson(exposure[w] * np.exp(level[w] + change)),
                         "exposure": exposure[w]})
    panel = pd.DataFrame(rows)
    d = build_design(panel, "crime", "poisson", pair_effects=False)
    shape = (2, 400)
    idata = az.from_dict(
        posterior={
            "ward_level": np.broadcast_to(level, shape + (n_w,)).copy(),
            "period_effect": np.broadcast_to([0.0, -0.2], shape + (2,)).copy(),
            "did": np.zeros(shape),
        },
        coords={"ward": d.coords["ward"], "period": d.coords["period"]},
        dims={"ward_level": ["ward"], "period_effect": ["period"]},
    )
    p = ppc_pvalues(idata, d)
    assert all(0.01 < v < 0.99 for v in p.values()), p


def test_convergence_failures_are_reported():
    panel, _ = simulate_panel("poisson", n_pairs=15, sigma_change=0.0, seed=4)
    d = build_design(panel, "crime", "poisson", pair_effects=False)
    idata = _plug_in_posterior(panel, d, shift_chain=1.0, diverging=3)
    row = diagnose(idata, d, dataclasses_replace(LAX, max_rhat=1.01, max_divergences=0)).iloc[0]
    assert row["rhat_max"] > 1.5
    assert row["divergences"] == 3
    assert "R-hat" in row["reasons"] and "3 divergences > 0" in row["reasons"]
    assert row["gate"].startswith("FAILED: ")
    expected_bfmi = float(np.min(az.bfmi(idata)))
    assert row["bfmi_min"] == pytest.approx(expected_bfmi)
    ok = diagnose(idata, d, LAX).iloc[0]
    assert ok["passed"] and ok["gate"] == "passed"


def dataclasses_replace(cfg, **kw):
    import dataclasses

    return dataclasses.replace(cfg, **kw)


def test_mark_gate():
    table = pd.DataFrame({"indicator": ["crime", "crime", "burglary"], "mean": [1.0, 2.0, 3.0]})
    diag = pd.DataFrame({"indicator": ["crime"], "gate": ["FAILED: R-hat 1.2 > 1.01"]})
    out = mark_gate(table, diag)
    assert out["gate"].tolist() == ["FAILED: R-hat 1.2 > 1.01"] * 2 + ["FAILED: no diagnostics"]
    assert "gate" not in table.columns  # input untouched


@pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS installation:UserWarning")
def test_real_fit_diagnostics_columns():
    from nbdid.config import RunConfig, SamplerConfig
    from nbdid.workflow.fit import fit as fit_indicator

    panel, _ = simulate_panel("poisson", n_pairs=15, did=-0.5, seed=7)
    cfg = RunConfig(sampler=SamplerConfig(draws=300, tune=300, chains=2, seed=1),
                    model=ModelConfig())
    res = fit_indicator(panel, "crime", config=cfg)
    row = res.diagnostics.iloc[0]
    for c in ("rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "bfmi_min", "ppp_min"):
        assert np.isfinite(row[c])
    # R-hat and ESS cover the free parameters only, computed like ArviZ does
    rhat = az.rhat(res.idata, var_names=["did", "sigma_ward", "intercept"])
    assert row["rhat_max"] >= max(float(rhat[v]) for v in rhat.data_vars) - 1e-12
    lax = diagnose(res.idata, res.design, LAX).iloc[0]
    assert lax["passed"]
