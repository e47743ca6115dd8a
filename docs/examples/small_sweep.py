"""Run a small sensitivity sweep from Python.

    python docs/examples/small_sweep.py

Three specifications (the report's pairs, and two re-matchings from the synthetic
candidate pool) x two indicators.  The sweep writes its files as it goes, so running
the script again reuses the finished specifications.
"""

from __future__ import annotations

from _settings import out_dir, sampler

import nbdid
from nbdid.analysis.sensitivity import parse_sweep_config

s = sampler(draws=1000, tune=500, chains=4)
config = parse_sweep_config(f"""
[sweep]
panel = "default"
indicators = ["crime", "children_low_income"]

[sweep.sampler]
draws = {s["draws"]}
tune = {s["tune"]}
chains = {s["chains"]}

[grid.matching]
published = true
covariates = [["mean_rank", "share_most_deprived_decile"]]
distance = ["mahalanobis", "euclidean"]
""")

# the sweep fits in worker processes (started with "spawn", which re-imports this
# script in each worker): a script that starts a sweep needs this guard
if __name__ == "__main__":
    res = nbdid.sensitivity(config, out_dir("small_sweep"), workers=1, progress=False, force=True)
    print(res.text())
    print(res.results[["spec_id", "indicator", "estimate", "lower", "upper", "gate"]])
