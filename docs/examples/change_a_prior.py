"""Change a prior and see how much the posterior DiD moves.

    python docs/examples/change_a_prior.py

Every prior is set by key, as text, in ``priors=`` (or ``[model.priors]`` in a config
file, or ``nbdid fit --prior did=normal(0,0.5)``); unset priors take the data-based
defaults (``docs/models.md``).  ``res.priors`` lists the priors a fit used, and the
gate checks whether the prior decided the answer (power-scaling sensitivity).
The prior's parameters are data of the compiled model: the second fit is a warm refit.
"""

from __future__ import annotations

from _settings import sampler

import nbdid

panel = nbdid.default_panel()
kw = sampler(draws=2000, tune=1000, chains=4)
default = nbdid.fit(panel, "children_low_income", **kw)
tight = nbdid.fit(panel, "children_low_income", priors={"did": "normal(0, 0.05)"}, **kw)

for name, res in (("default prior", default), ("did ~ normal(0, 0.05)", tight)):
    d = res.did
    print(f"{name:<24} DiD {d['mean']:+.2f} {d['scale']} [{d['q2.5']:+.2f}, {d['q97.5']:+.2f}]"
          f"  P(benefit) {d['prob_benefit']:.2f}  prior sensitivity "
          f"{res.diagnostics['did_prior_sensitivity'].iloc[0]:.3f}  {res.gate}")
print("priors of the default fit:", default.priors)
