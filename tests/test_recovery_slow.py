"""Slow statistical checks: parameter recovery and 90% interval coverage.

Run with ``pytest -m slow tests/test_recovery_slow.py -s`` to see the printed coverage.
Panels come from :func:`nbdid.models.simulate.simulate_panel`, a generator that is
*not* the fitted model (ward-specific log-normal changes, pair structure, drifting
exposures; prices simulated transaction by transaction).
"""

from __future__ import annotations

import numpy as np
import pytest

from nbdid.config import RunConfig, SamplerConfig
from nbdid.models.sampling import CompiledModelCache
from nbdid.models.simulate import simulate_panel
from nbdid.workflow.fit import fit as fit_indicator

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS installation:UserWarning"),
]
N_PANELS = 50
CFG = RunConfig(sampler=SamplerConfig(draws=500, tune=500, chains=2, seed=3))


@pytest.mark.parametrize("family", ["binomial", "poisson", "price"])
def test_coverage_and_bias(family):
    rng = np.random.default_rng(2024)
    cache = CompiledModelCache()
    hits_link = hits_unit = 0
    errors, widths = [], []
    for i in range(N_PANELS):
        did = float(rng.uniform(-0.3, 0.3))
        panel, truth = simulate_panel(family, did=did, seed=1000 + i)
        res = fit_indicator(panel, panel["indicator"].iloc[0], config=CFG, compiled_cache=cache)
        post = res.idata.posterior["did"].values.ravel()
        lo, hi = np.quantile(post, [0.05, 0.95])
        hits_link += lo <= did <= hi
        errors.append(post.mean() - did)
        widths.append(hi - lo)
        from nbdid.analysis.estimands import effect_draws

        unit = effect_draws(res.idata, res.design)["did_unit"].values.ravel()
        ulo, uhi = np.quantile(unit, [0.05, 0.95])
        hits_unit += ulo <= truth.did_pa <= uhi
    cov_link, cov_unit = hits_link / N_PANELS, hits_unit / N_PANELS
    bias = float(np.mean(errors))
    print(f"\n{family}: 90% coverage of did (link) {cov_link:.2f}, of population-averaged "
          f"did {cov_unit:.2f}; bias {bias:+.4f} (link); mean 90% width {np.mean(widths):.3f}; "
          f"{N_PANELS} panels; compiles {cache.compile_count}")
    # one compilation per model structure (the automatic parameterisation of levels,
    # changes and pairs can differ between panels), never one per fit
    assert cache.compile_count == len(cache) <= 8
    # binomial sampling sd of a 90% coverage over 50 panels is 0.042
    assert 0.78 <= cov_link <= 1.0
    assert 0.78 <= cov_unit <= 1.0
    assert abs(bias) < 3 * np.std(errors) / np.sqrt(N_PANELS) + 0.02
