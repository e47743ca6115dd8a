"""Evidence for the default ``ModelConfig.overdispersion`` (not a test).

Fits ``negbin`` and ``ward_period`` Poisson models to panels from the realistic
generator (:func:`nbdid.models.simulate.simulate_panel`: ward log-rate SD 0.4, SD of
ward-specific change 0.2, exposures 5,000-15,000) and prints PSIS-LOO (with the
ward x period effect integrated out by Gauss-Hermite quadrature so both models
predict the same thing), Pareto k problems, posterior predictive p-values, the DiD
and its 90% interval, and sampler cost.  Run: ``python bench/compare_overdispersion.py``.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np


def main(n_panels: int = 8) -> int:
    """Run the comparison and print the results."""
    warnings.simplefilter("ignore")
    import arviz as az
    import xarray as xr
    from scipy import stats

    from nbdid.analysis.diagnostics import diagnose
    from nbdid.config import ModelConfig, SamplerConfig
    from nbdid.models.design import build_design, linear_predictor_draws
    from nbdid.models.sampling import CompiledModelCache
    from nbdid.models.simulate import simulate_panel

    sc = SamplerConfig(draws=1000, tune=1000, chains=2)
    caches = {od: CompiledModelCache() for od in ("negbin", "ward_period")}
    x, wq = np.polynomial.hermite.hermgauss(30)
    agg: dict[str, list] = {od: [] for od in caches}
    for seed in range(n_panels):
        panel, truth = simulate_panel("poisson", did=-0.2, seed=100 + seed)
        d = build_design(panel, "crime", "poisson")
        res = {}
        for od, cache in caches.items():
            t0 = time.perf_counter()
            idata = cache.sample(d, ModelConfig(overdispersion=od), sc)
            elapsed = time.perf_counter() - t0
            post = idata.posterior
            if od == "ward_period":
                eta0 = linear_predictor_draws(post, d) - post["wp_effect"].values
                s = post["sigma_wp"].values[..., None, None]
                mu = d.exposure[:, None] * np.exp(eta0[..., None] + np.sqrt(2) * s * x)
                lik = np.sum(wq * stats.poisson.pmf(d.count[:, None], mu), axis=-1)
                ll = np.log(lik / np.sqrt(np.pi))
            else:
                mu = d.exposure * np.exp(linear_predictor_draws(post, d))
                a = 1 / post["sigma_od"].values[..., None] ** 2
                ll = stats.nbinom.logpmf(d.count, a, a / (a + mu))
            idata.add_groups(log_likelihood=xr.Dataset(
                {"y": (("chain", "draw", "obs"), ll)},
                coords={"chain": post.chain, "draw": post.draw}))
            loo = az.loo(idata)
            dg = diagnose(idata, d).iloc[0]
            lo, hi = np.quantile(post["did"].values, [0.05, 0.95])
            steps = float(idata.sample_stats["n_steps"].mean())
            res[od] = idata
            agg[od].append((loo.elpd_loo, int((loo.pareto_k > 0.7).sum()), lo <= truth.did <= hi,
                            hi - lo, elapsed, steps))
            print(f"panel {seed} {od:11s} elpd_loo={loo.elpd_loo:8.1f} (se {loo.se:4.1f}) "
                  f"p_loo={loo.p_loo:5.1f} k>0.7={int((loo.pareto_k > 0.7).sum()):3d} "
                  f"ppp={dg.ppp_min:.2f}-{dg.ppp_max:.2f} did={float(post['did'].mean()):+.3f} "
                  f"(truth {truth.did}) steps/draw={steps:.0f}", flush=True)
        print(az.compare(res)[["rank", "elpd_loo", "elpd_diff", "dse"]].to_string(), flush=True)
    for od, v in agg.items():
        a = np.asarray(v, dtype=float)
        print(f"{od:11s} mean elpd {a[:, 0].mean():.1f}; k>0.7 {a[:, 1].mean():.1f}/116; "
              f"90% coverage {a[:, 2].mean():.2f}; width {a[:, 3].mean():.3f}; "
              f"time {a[:, 4].mean():.1f} s; steps/draw {a[:, 5].mean():.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
