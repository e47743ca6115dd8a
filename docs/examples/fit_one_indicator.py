"""Fit one indicator of a ward panel and look at the result.

    python docs/examples/fit_one_indicator.py

Uses the embedded SYNTHETIC default panel; replace ``nbdid.default_panel()`` with
``nbdid.read_panel("my_panel.csv")`` for real wards.
"""

from __future__ import annotations

from _settings import out_dir, sampler

import nbdid

panel = nbdid.default_panel()
res = nbdid.fit(panel, "crime", **sampler(draws=2000, tune=1000, chains=4))

print(res)                                   # one line: DiD, interval, P(benefit), gate
print(res.summary[["estimand", "scale", "mean", "q2.5", "q97.5", "prob_benefit"]])
print("diagnostics gate:", res.gate)
if not res.passed:
    print("do not report this fit: raise draws or target_accept and fit again")

out = out_dir("fit_one_indicator")
res.plot_trajectories().savefig(out / "trajectory_crime.png", dpi=150)
nbdid.save_fit(res, out / "fit", force=True)      # crime.nc + summary.csv, as `nbdid fit` writes
print(f"wrote {out}")
