"""The public Python API returns typed result objects (no files needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd

import nbdid
from nbdid.analysis.matching import MatchSpec
from nbdid.workflow.compare import CompareResult
from nbdid.workflow.match import MatchResult
from nbdid.workflow.replicate import ReplicationResult


def test_replicate_returns_the_report_recomputed():
    res = nbdid.replicate(("crime",))
    assert isinstance(res, ReplicationResult)
    assert not res.table1.empty and set(res.table1["indicator"]) == {"crime"}


def test_compare_without_a_posterior_returns_the_frequentist_twin():
    res = nbdid.compare(nbdid.default_panel(), indicators=["crime"], fit=False, ri_draws=200)
    assert isinstance(res, CompareResult)
    methods = set(res.concordance["method"])
    assert {"report_pooled", "glm_cluster", "randomization", "paired_t"} <= methods


def test_match_returns_pairs_and_balance():
    rng = np.random.default_rng(1)
    treated = pd.DataFrame({"ward": [f"T{i}" for i in range(5)], "x": rng.normal(0, 1, 5)})
    pool = pd.DataFrame({"ward": [f"C{i}" for i in range(30)], "x": rng.normal(0, 1, 30)})
    res = nbdid.match(treated, pool, MatchSpec(covariates=("x",)))
    assert isinstance(res, MatchResult)
    assert list(res.matches["treated_ward"]) == list(treated["ward"])
    assert res.matches["control_ward"].is_unique  # without replacement
    assert not res.balance.empty


def test_every_public_name_has_a_docstring():
    for name in nbdid.__all__:
        obj = getattr(nbdid, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), name
