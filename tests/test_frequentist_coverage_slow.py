"""Coverage of the ward-clustered GLM and randomization 95% intervals (slow).

Run with ``pytest -m slow tests/test_frequentist_coverage_slow.py -s`` to see the
coverage printed.  Panels come from :func:`nbdid.models.simulate.simulate_panel`
(29 pairs, ward-level heterogeneity in level and change, a true link-scale DiD);
the truth is the link-scale effect, i.e. ``exp(did)`` on the ratio scale.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nbdid.analysis import frequentist as fq
from nbdid.models.simulate import simulate_panel

N_PANELS = 200
TRUE_DID = -0.15
MIN_COVERAGE = 0.90


def covers(row: dict, truth: float) -> bool:
    return bool(row["ratio_lower"] <= math.exp(truth) <= row["ratio_upper"])


@pytest.mark.slow
@pytest.mark.parametrize("family", ["binomial", "poisson", "price"])
def test_cluster_and_randomization_intervals_reach_nominal_coverage(family):
    hits = {"glm_cluster": [], "randomization": [], "paired_t (log scale)": [], "report_pooled (Wald ratio)": []}
    for i in range(N_PANELS):
        panel, _ = simulate_panel(family, n_pairs=29, did=TRUE_DID, seed=10_000 + i)
        data = fq.prepare(panel, str(panel["indicator"].iloc[0]))
        hits["glm_cluster"].append(covers(fq.glm_cluster(data), TRUE_DID))
        hits["randomization"].append(covers(fq.randomization(data, seed=i), TRUE_DID))
        hits["paired_t (log scale)"].append(covers(fq.paired_t(data), TRUE_DID))
        hits["report_pooled (Wald ratio)"].append(covers(fq.report_pooled(data), TRUE_DID))
    cov = {k: float(np.mean(v)) for k, v in hits.items()}
    print(f"\n{family}: coverage of 95% intervals over {N_PANELS} panels (true DiD {TRUE_DID}): "
          + ", ".join(f"{k} {v:.3f}" for k, v in cov.items()))
    assert cov["glm_cluster"] >= MIN_COVERAGE, cov
    assert cov["randomization"] >= MIN_COVERAGE, cov
    # and not trivially wide: the intervals must be informative
    assert cov["glm_cluster"] <= 0.995 and cov["randomization"] <= 0.995, cov
