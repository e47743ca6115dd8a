"""Vectorised R-hat and bulk/tail ESS (nbdid.analysis.convergence) against ArviZ 0.23.

Every case compares with ``az.rhat`` (rank), ``az.ess(method="bulk")`` and
``az.ess(method="tail")`` element by element: the same NaNs and infinities, R-hat equal
to the bit, and the ESS to ``RTOL``.  The ESS differ from ArviZ's only in the order of
floating-point sums (the chain average of the autocovariance taken before the inverse
FFT, Geyer's sums taken over pairs); the largest relative difference measured over
thousands of random arrays and a (4, 1000, 4000) array was about 1e-14.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest

from nbdid.analysis import convergence as cv
from nbdid.analysis.diagnostics import _checked_vars, diagnose, loo_summary
from nbdid.config import DiagnosticsConfig, ModelConfig
from nbdid.models.simulate import simulate_panel

RTOL = 1e-10
STATS = ("rhat", "ess_bulk", "ess_tail")


def _arviz(x: np.ndarray) -> dict[str, np.ndarray]:
    """ArviZ's numbers for draws shaped (chain, draw, *element_dims)."""
    with warnings.catch_warnings():
        # more chains than draws (convert_to_dataset), 0/0 for a constant element and
        # inf - inf for infinite draws (az.rhat): the values are what is compared
        warnings.simplefilter("ignore")
        ds = az.convert_to_dataset({"x": x})
        return {"rhat": az.rhat(ds)["x"].values,
                "ess_bulk": az.ess(ds, method="bulk")["x"].values,
                "ess_tail": az.ess(ds, method="tail")["x"].values}


def _assert_like_arviz(x: np.ndarray) -> dict[str, np.ndarray]:
    ours = cv.convergence_arrays(x)
    ref = _arviz(x)
    for k in STATS:
        assert ours[k].shape == ref[k].shape == x.shape[2:], k
        np.testing.assert_array_equal(np.isnan(ours[k]), np.isnan(ref[k]), err_msg=k)
        np.testing.assert_allclose(ours[k], ref[k], rtol=0 if k == "rhat" else RTOL, atol=0, err_msg=k)
    return ours


def _ar1(rng: np.random.Generator, phi: float, chains: int, draws: int, n: int = 3) -> np.ndarray:
    """AR(1) chains (stationary start), shaped (chain, draw, n)."""
    eps = rng.standard_normal((chains, draws, n))
    x = np.empty_like(eps)
    x[:, 0] = eps[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + eps[:, t]
    return x


@pytest.mark.parametrize("phi", [-0.9, -0.5, 0.0, 0.5, 0.95, 0.995])
def test_ar1_chains_match_arviz(phi):
    """Anti-correlated to strongly autocorrelated chains; 1, 2 and 4 chains; even, odd
    and small draw counts (4 is the fewest ArviZ accepts, 5 drops a middle draw)."""
    rng = np.random.default_rng(int(1000 * (phi + 1)))
    for chains in (1, 2, 4):
        for draws in (4, 5, 6, 9, 30, 101, 200):
            _assert_like_arviz(_ar1(rng, phi, chains, draws))


@pytest.mark.parametrize("case", ["cauchy", "t2", "poisson", "rare", "three_values", "rounded",
                                  "integers", "float32", "matrix"])
def test_awkward_distributions_match_arviz(case):
    rng = np.random.default_rng(7)
    x = {
        "cauchy": lambda: rng.standard_cauchy((4, 150, 3)),
        "t2": lambda: rng.standard_t(2, (3, 81, 3)),
        # many ties: ranks are averaged, tail quantiles land on draws
        "poisson": lambda: rng.poisson(0.3, (4, 100, 3)).astype(float),
        "rare": lambda: rng.poisson(0.03, (2, 61, 4)).astype(float),
        "three_values": lambda: rng.integers(0, 3, (2, 40, 3)).astype(float),
        # coarsely rounded draws, as stored fits are (storage_precision)
        "rounded": lambda: np.round(_ar1(rng, 0.7, 4, 120), 1),
        "integers": lambda: rng.poisson(4, (4, 50, 3)),
        "float32": lambda: _ar1(rng, 0.6, 4, 75).astype(np.float32),
        "matrix": lambda: _ar1(rng, 0.3, 2, 50, 6).reshape(2, 50, 2, 3),
    }[case]()
    _assert_like_arviz(x)


def test_special_elements_match_arviz():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 100, 7))
    x[..., 0] = 1.5                   # constant: R-hat NaN, ESS = all draws
    x[1, 3, 1] = np.nan               # a NaN draw: NaN everywhere
    x[2:, :, 2] += 3.0                # chains disagree: R-hat far above 1
    # constant chains: R-hat divides by a within-chain variance that is rounding noise
    # (ArviZ's sum(x**2)/n - mean**2), reproduced bit for bit
    x[..., 3] = np.repeat([0.0, 1.0, 2.0, 3.0], 100).reshape(4, 100)
    x[0, 5, 4] = np.inf               # infinite draws
    x[1, 7, 4] = -np.inf
    x[:, :60, 5] = np.inf             # infinite median: ArviZ keeps the bulk R-hat
    x[:, :, 6] = rng.random((4, 100)) < 0.97  # tail indicator constant for one quantile
    ours = _assert_like_arviz(x)
    assert np.isnan(ours["rhat"][0]) and ours["ess_bulk"][0] == ours["ess_tail"][0] == 400
    assert all(np.isnan(ours[k][1]) for k in STATS)
    assert ours["rhat"][2] > 1.5
    assert ours["rhat"][3] > 1e6
    # the same element computed on its own does not depend on its neighbours
    np.testing.assert_array_equal(cv.rhat(x[..., 2]), ours["rhat"][2])


def test_too_few_draws_or_chains():
    rng = np.random.default_rng(0)
    for draws in (2, 3):
        x = rng.standard_normal((2, draws, 2))
        assert all(np.isnan(v).all() for v in cv.convergence_arrays(x).values())
    one = _assert_like_arviz(rng.standard_normal((1, 50, 2)))
    assert np.isnan(one["rhat"]).all() and np.isfinite(one["ess_bulk"]).all()


def test_scalar_variable_and_single_statistics():
    rng = np.random.default_rng(1)
    x = _ar1(rng, 0.8, 3, 64, 1)[..., 0]
    ours = _assert_like_arviz(x)
    assert ours["rhat"].shape == ()
    x3 = _ar1(rng, 0.4, 3, 64, 4)
    both = cv.convergence_arrays(x3)
    np.testing.assert_array_equal(cv.rhat(x3), both["rhat"])
    np.testing.assert_array_equal(cv.ess_bulk(x3), both["ess_bulk"])
    np.testing.assert_array_equal(cv.ess_tail(x3), both["ess_tail"])
    with pytest.raises(ValueError, match="chain, draw"):
        cv.rhat(np.ones(10))


def test_chunks_give_identical_numbers(monkeypatch):
    rng = np.random.default_rng(2)
    x = _ar1(rng, 0.5, 4, 41, 25)
    x[0, 0, 4] = np.nan
    whole = cv.convergence_arrays(x)
    monkeypatch.setattr(cv, "CHUNK_BYTES", 1)  # one element per chunk
    single = cv.convergence_arrays(x)
    monkeypatch.setattr(cv, "CHUNK_BYTES", 4 * 41 * 8 * cv._TEMPORARIES * 7)  # 7 per chunk
    seven = cv.convergence_arrays(x)
    for k in STATS:
        np.testing.assert_array_equal(single[k], whole[k])
        np.testing.assert_array_equal(seven[k], whole[k])


def test_summary_keeps_the_diagnostics_definitions():
    rng = np.random.default_rng(4)
    posterior = {"a": _ar1(rng, 0.5, 2, 80, 1)[..., 0], "b": _ar1(rng, 0.9, 2, 80, 5),
                 "c": rng.standard_normal((2, 80, 2, 2))}
    posterior["b"][..., 0] = 2.0  # constant element: NaN R-hat is ignored
    ds = az.convert_to_dataset(posterior)
    names = ["a", "b", "c"]
    got = cv.convergence_summary(ds, names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rhat = az.rhat(ds, var_names=names)
    ess_b = az.ess(ds, var_names=names, method="bulk")
    ess_t = az.ess(ds, var_names=names, method="tail")
    # diagnose's definitions before it used this module
    assert got["rhat_max"] == pytest.approx(max(float(np.nanmax(rhat[v].values)) for v in names),
                                            rel=RTOL)
    assert got["ess_bulk_min"] == pytest.approx(min(float(np.nanmin(ess_b[v].values)) for v in names),
                                                rel=RTOL)
    assert got["ess_tail_min"] == pytest.approx(min(float(np.nanmin(ess_t[v].values)) for v in names),
                                                rel=RTOL)
    assert got["ess_bulk_mean"] == pytest.approx(
        np.nanmean([float(np.nanmean(ess_b[v].values)) for v in names]), rel=RTOL)
    empty = cv.convergence_summary(ds, [])
    assert all(np.isnan(v) for v in empty.values())


@pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS installation:UserWarning")
def test_diagnose_on_a_real_fit_matches_arviz():
    from nbdid.config import RunConfig, SamplerConfig
    from nbdid.workflow.fit import fit as fit_indicator

    # the model of tests/test_diagnostics.py::test_real_fit_diagnostics_columns (its
    # compiled model is reused from the disk cache), fewer draws
    panel, _ = simulate_panel("poisson", n_pairs=15, did=-0.5, seed=7)
    cfg = RunConfig(sampler=SamplerConfig(draws=150, tune=150, chains=2, seed=3),
                    model=ModelConfig())
    res = fit_indicator(panel, "crime", config=cfg)
    idata = res.idata
    lax = DiagnosticsConfig(max_rhat=10.0, min_ess_bulk=1, min_ess_tail=1, max_divergences=10**6,
                            min_bfmi=0.0, ppc_p_range=(0.0, 1.0))
    row = diagnose(idata, res.design, lax).iloc[0]
    names = _checked_vars(idata)
    assert len(names) > 3
    rhat = az.rhat(idata, var_names=names)
    ess_b = az.ess(idata, var_names=names, method="bulk")
    ess_t = az.ess(idata, var_names=names, method="tail")
    assert row["rhat_max"] == pytest.approx(max(float(np.nanmax(rhat[v].values)) for v in names),
                                            rel=RTOL)
    assert row["ess_bulk_min"] == pytest.approx(min(float(np.nanmin(ess_b[v].values)) for v in names),
                                                rel=RTOL)
    assert row["ess_tail_min"] == pytest.approx(min(float(np.nanmin(ess_t[v].values)) for v in names),
                                                rel=RTOL)
    assert res.diagnostics.iloc[0]["rhat_max"] == row["rhat_max"]
    for v in names:  # element by element too
        ours = cv.convergence_arrays(idata.posterior[v].transpose("chain", "draw", ...).values)
        np.testing.assert_array_equal(ours["rhat"], rhat[v].values)
        np.testing.assert_allclose(ours["ess_bulk"], ess_b[v].values, rtol=RTOL)
        np.testing.assert_allclose(ours["ess_tail"], ess_t[v].values, rtol=RTOL)
    if "log_likelihood" in idata.groups():
        n = idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"]
        reff = float(np.clip(np.nanmean([float(np.nanmean(ess_b[v].values)) for v in names]) / n,
                             0.05, 1.0))
        assert row["p_loo"] == pytest.approx(loo_summary(idata, reff=reff)["p_loo"], rel=1e-9)
