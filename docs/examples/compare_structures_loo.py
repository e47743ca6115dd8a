"""Compare two model structures with leave-one-out cross-validation (PSIS-LOO).

    python docs/examples/compare_structures_loo.py

Every fit stores its pointwise log-likelihood, so ArviZ's ``az.loo`` and
``az.compare`` work on the InferenceData directly (also on files written by
``nbdid run``: ``az.from_netcdf("nbdid-results/posteriors/crime.nc")``).
"""

from __future__ import annotations

import arviz as az
from _settings import sampler

import nbdid

panel = nbdid.default_panel()
kw = sampler(draws=2000, tune=1000, chains=4)
with_pairs = nbdid.fit(panel, "burglary", **kw)
without_pairs = nbdid.fit(panel, "burglary", pair_effects=False, **kw)

table = az.compare({"pair effects": with_pairs.idata, "no pair effects": without_pairs.idata})
print(table[["rank", "elpd_loo", "p_loo", "elpd_diff", "dse", "warning"]])
