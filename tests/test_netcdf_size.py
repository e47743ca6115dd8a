"""Compact posterior files: compressed NetCDF holding exactly the numbers the tables
were computed from, every group a user needs to re-plot and re-check, thinned
predictive draws."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
import xarray as xr

from nbdid.models.sampling import CompiledModelCache, round_mantissa, storage_bits
from nbdid.models.simulate import simulate_panel
from nbdid.outputs import write_netcdf

pytestmark = pytest.mark.filterwarnings(
    "ignore:PyTensor could not link to a BLAS installation:UserWarning",
    "ignore:Estimated shape parameter of Pareto distribution:UserWarning",
    "ignore::RuntimeWarning",
)

GROUPS = {"posterior", "sample_stats", "log_likelihood", "log_prior", "observed_data",
          "constant_data", "posterior_predictive"}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from nbdid.workflow.fit import fit, save_fit

    panel = simulate_panel("poisson", n_pairs=4, did=-0.2, seed=12)[0]
    res = fit(panel, "crime", family="poisson", draws=250, tune=150, chains=2, seed=1,
              compiled_cache=CompiledModelCache())
    out = save_fit(res, tmp_path_factory.mktemp("fit"))
    return res, out / "crime.nc"


def test_saved_file_holds_exactly_what_the_tables_used(saved):
    res, path = saved
    back = az.from_netcdf(path)
    assert GROUPS <= set(back.groups())
    post = res.idata.posterior
    assert not [v for v in post.data_vars if str(v).endswith("__")]  # no unconstrained copies
    for group in ("posterior", "log_likelihood", "log_prior"):
        for var in res.idata[group].data_vars:
            mem, disk = res.idata[group][var].values, back[group][var].values
            assert disk.dtype == mem.dtype
            np.testing.assert_array_equal(disk, mem)
            if mem.dtype == np.float64 and group != "log_prior":
                # rounded to the bits that resolve 1 % of the posterior SD, in float64
                lo, hi = back[group][var].attrs["nbdid_mantissa_bits"]
                assert 1 <= lo <= hi <= 23 and lo < 23
                bits = storage_bits(res.idata[group][var].transpose("chain", "draw", ...).values)
                np.testing.assert_array_equal(mem, round_mantissa(mem, bits))
    # named quantities only: no sampler-space re-expression of them
    assert {"ward_level", "ward_change", "did"} <= set(back.posterior.data_vars)
    assert not set(back.posterior.data_vars) & {"ward_change_c", "ward_change_z", "ward_level_c",
                                                 "ward_level_z", "pair_z", "ward_effect"}
    free = back.posterior.attrs["nbdid_free_vars"].split(",")
    assert "ward_change" in free and "ward_level" in free
    # PSIS-LOO and the prior-sensitivity check straight from the file
    assert np.isfinite(az.loo(back).elpd_loo)
    assert float(az.psens(back, var_names=["did", "sigma_ward"])["did"]) == pytest.approx(
        float(res.diagnostics["did_prior_sensitivity"].iloc[0]), abs=1e-9)


def test_arrays_are_compressed(saved):
    res, path = saved
    with xr.open_dataset(path, group="posterior", engine="h5netcdf") as ds:
        enc = ds["ward_level"].encoding  # h5netcdf reports zlib as gzip
        assert (enc.get("zlib") or enc.get("compression") == "gzip") and enc.get("shuffle")
    # draws at float32 precision in float64: the shuffled zero bytes cost nothing, so
    # the arrays of draws take well under 60 % of their float64 size
    import h5py

    with h5py.File(path, "r") as f:
        for group, var in (("posterior", "ward_level"), ("log_likelihood", "y")):
            stored = f[f"{group}/{var}"].id.get_storage_size()
            assert stored < 0.6 * res.idata[group][var].nbytes, (group, var)


def test_predictive_draws_are_thinned_or_dropped(saved, tmp_path):
    res, _ = saved
    n = res.idata.posterior.sizes["chain"] * res.idata.posterior.sizes["draw"]  # 500
    p = write_netcdf(res.idata, tmp_path / "thin.nc", predictive_draws=100)
    ppc = az.from_netcdf(p).posterior_predictive
    assert ppc.sizes["chain"] * ppc.sizes["draw"] <= 100
    # every k-th draw of each chain, labelled with the posterior's draw numbers
    step = -(-n // 100)
    np.testing.assert_array_equal(ppc["draw"].values, res.idata.posterior["draw"].values[::step])
    np.testing.assert_array_equal(
        ppc["y"].values, res.idata.posterior_predictive["y"].values[:, ::step])
    p = write_netcdf(res.idata, tmp_path / "none.nc", predictive_draws=0)
    assert "posterior_predictive" not in az.from_netcdf(p).groups()
    p = write_netcdf(res.idata, tmp_path / "all.nc", predictive_draws=None)
    assert az.from_netcdf(p).posterior_predictive.sizes["draw"] == res.idata.posterior.sizes["draw"]


def test_a_dataset_is_written_compressed_too(tmp_path):
    ds = xr.Dataset({"x": (("a",), np.zeros(1000))})
    p = write_netcdf(ds, tmp_path / "d.nc")
    with xr.open_dataset(p, engine="h5netcdf") as back:
        assert back["x"].encoding.get("zlib") or back["x"].encoding.get("compression") == "gzip"
        np.testing.assert_array_equal(back["x"].values, ds["x"].values)


def test_round_mantissa_rounds_to_nearest():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, 5000), rng.normal(0, 1e-6, 100), rng.normal(0, 1e6, 100),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -0.123456]])
    r = round_mantissa(x, 12)
    ok = np.isfinite(x)
    # within half a unit of the last kept bit
    assert np.all(np.abs(r[ok] - x[ok]) <= np.abs(x[ok]) * 2.0 ** -13 * (1 + 1e-6))
    assert np.isnan(r[-3]) and r[-5] == np.inf and r[-4] == -np.inf
    assert r[-2] == 1.0 and abs(r[-1] + 0.123456) < 2e-5
    np.testing.assert_array_equal(round_mantissa(r, 12), r)  # idempotent
    assert abs(r[:5000].mean() - x[:5000].mean()) < 1e-6  # unbiased
    np.testing.assert_array_equal(round_mantissa(x, 23), x.astype(np.float32).astype(np.float64))


def test_storage_bits_resolve_a_percent_of_the_posterior_sd():
    rng = np.random.default_rng(1)
    for centre, sd in ((0.0, 1.0), (-0.1, 0.05), (12.0, 0.02), (-3.0, 0.3), (1e4, 1.0)):
        draws = centre + sd * rng.standard_normal((4, 500, 3))
        bits = storage_bits(draws)
        assert bits.shape == (3,)
        moved = np.abs(round_mantissa(draws, bits) - draws)
        assert moved.max() <= 0.005 * sd * 1.0001 + 1e-300, (centre, sd, bits)
        # and no more bits than that needs
        coarser = np.abs(round_mantissa(draws, bits - 1) - draws).max(axis=(0, 1))
        assert np.all(coarser > 0.0025 * sd), (centre, sd, bits)
    assert storage_bits(np.zeros((2, 10))) == 23  # no spread: float32
    # each element to its own SD: a precise and a vague element of one variable
    two = np.stack([5.0 + 0.001 * rng.standard_normal((4, 500)),
                    5.0 + 1.0 * rng.standard_normal((4, 500))], axis=-1)
    b = storage_bits(two)
    assert b[0] > b[1] + 8
    moved = np.abs(round_mantissa(two, b) - two).max(axis=(0, 1))
    assert moved[0] <= 0.005 * 0.001 * 1.01 and moved[1] <= 0.005 * 1.01


def test_saved_draws_fit_in_a_few_bytes(saved):
    """At 12 mantissa bits a draw takes about 2 bytes on disk (against 8 in float64)."""
    import h5py

    res, path = saved
    with h5py.File(path, "r") as f:
        for group, var in (("posterior", "ward_level"), ("log_likelihood", "y")):
            stored = f[f"{group}/{var}"].id.get_storage_size()
            assert stored < 0.35 * res.idata[group][var].nbytes, (group, var, stored)
