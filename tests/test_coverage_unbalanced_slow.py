"""Calibration on unbalanced designs with unequal change variance (slow).

``pytest -m slow tests/test_coverage_unbalanced_slow.py -s``: 200 simulated Poisson
panels of 12 matched sets of one NBI ward and five benchmark wards (1:5), whose NBI
wards change with SD 0.1 and benchmark wards with SD 0.4 (log scale), true DiD uniform
on -0.3..0.3.  With group-specific change SDs (the default) the DiD's 90% interval must
cover the truth in 86-94% of panels; the shared-SD model's coverage is printed beside
it (its interval is the pooled-variance one, too wide here).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbdid.config import ModelConfig, RunConfig
from nbdid.models.sampling import CompiledModelCache
from nbdid.models.simulate import simulate_panel

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings(
    "ignore:PyTensor could not link to a BLAS installation:UserWarning")]

N_PANELS = 200


def test_group_change_sd_interval_is_calibrated_on_1_to_5_panels():
    from nbdid.workflow.fit import fit

    rng = np.random.default_rng(2024)
    cache = CompiledModelCache()
    configs = {"group": RunConfig(), "shared": RunConfig(model=ModelConfig(group_change_sd=False))}
    rows = []
    for i in range(N_PANELS):
        did = float(rng.uniform(-0.3, 0.3))
        panel, truth = simulate_panel("poisson", n_pairs=12, controls_per_set=5, did=did,
                                      sigma_change=0.4, sigma_change_nbi=0.1, change_form="step",
                                      seed=1000 + i)
        for name, cfg in configs.items():
            if name == "shared" and i % 2:  # the comparison needs fewer panels
                continue
            res = fit(panel, "crime", config=cfg, draws=1000, tune=1000, chains=2, seed=i,
                      compiled_cache=cache)
            x = res.idata.posterior["did"].values.ravel()
            lo, hi = np.quantile(x, [0.05, 0.95])
            rows.append({"model": name, "covers": lo < truth.did < hi, "width": hi - lo,
                         "bias": x.mean() - truth.did, "passed": res.passed})
        done = [r["covers"] for r in rows if r["model"] == "group"]
        print(f"panel {i + 1}/{N_PANELS}: group-SD coverage so far {np.mean(done):.3f} "
              f"({sum(done)}/{len(done)})", flush=True)
    t = pd.DataFrame(rows).groupby("model").agg(
        panels=("covers", "size"), coverage=("covers", "mean"), width=("width", "mean"),
        bias=("bias", "mean"), passed=("passed", "mean"))
    print(t)
    g = t.loc["group"]
    assert 0.86 <= g["coverage"] <= 0.94
    assert abs(g["bias"]) < 0.02
    assert t.loc["shared", "width"] > 1.3 * g["width"]
