"""The persistent compile cache: nutpie's compiled callbacks are stored on disk under
stable keys and reused by later compilations (in this or another process) of the same
model structure, with the same draws; compile and sampling times are reported apart."""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nbdid.models import compile_cache as cc
from nbdid.models.sampling import CompiledModelCache
from nbdid.models.simulate import simulate_panel

pytestmark = pytest.mark.filterwarnings(
    "ignore:PyTensor could not link to a BLAS installation:UserWarning",
    "ignore::RuntimeWarning",  # R-hat of short chains
)


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(cc.ENV_SWITCH, raising=False)
    monkeypatch.setenv(cc.ENV_DIR, str(tmp_path))
    d = cc.cache_dir()
    assert d is not None and d.parent == tmp_path / "compiled"
    assert d.name == cc.versions_tag() and len(d.name) == 16
    monkeypatch.setenv(cc.ENV_DIR, "")
    assert cc.cache_dir() is None
    monkeypatch.setenv(cc.ENV_DIR, str(tmp_path))
    monkeypatch.setenv(cc.ENV_SWITCH, "0")
    assert cc.cache_dir() is None


def test_versions_change_the_cache_folder(monkeypatch):
    from importlib import metadata

    before = cc.versions_tag()
    real = metadata.version
    monkeypatch.setattr(metadata, "version",
                        lambda name: "99.0" if name == "nutpie" else real(name))
    assert cc.versions_tag() != before


def test_stable_keys_ignore_data_values_but_not_types():
    def make(arr, n):
        def f(x):
            return arr, n, x
        return f

    a = cc._stable_function(make(np.zeros(3), 2), 0)
    assert a == cc._stable_function(make(np.ones(3), 2), 0)       # values: run-time data
    assert a != cc._stable_function(make(np.ones(4), 2), 0)       # shape
    assert a != cc._stable_function(make(np.ones(3, "f4"), 2), 0)  # dtype
    assert a != cc._stable_function(make(np.zeros(3), 3), 0)      # constants
    assert cc._stable_function(make(object(), 2), 0) is None       # unknown: not cached
    # only nutpie's callbacks of a graph PyTensor caches get a stable key
    assert cc.callback_key(make(np.zeros(3), 2)) is None


def _fit(cache: CompiledModelCache):
    from nbdid.workflow.fit import fit

    panel = simulate_panel("poisson", n_pairs=3, did=-0.2, seed=5)[0]
    return fit(panel, "crime", family="poisson", draws=60, tune=60, chains=1, seed=3,
               compiled_cache=cache)


@functools.cache
def _uses_nutpie() -> bool:
    try:
        import nutpie  # noqa: F401
    except ImportError:
        return False
    return True


def test_a_second_compilation_loads_from_disk_with_the_same_draws(monkeypatch, tmp_path):
    if not _uses_nutpie():
        pytest.skip("nutpie not installed")
    monkeypatch.setenv(cc.ENV_DIR, str(tmp_path))
    monkeypatch.delenv(cc.ENV_SWITCH, raising=False)
    first = _fit(CompiledModelCache())
    assert first.timing["compiled"] == "fresh" and first.timing["compile_seconds"] > 0
    assert first.timing["sampling_seconds"] > 0
    stored = list((tmp_path / "compiled" / cc.versions_tag() / "numba").glob("*.nbi"))
    assert len(stored) == 2  # nutpie's log-density and expansion callbacks
    again = _fit(CompiledModelCache())  # a new cache, as a new process would have
    assert again.timing["compiled"] == "disk"
    for var in ("did", "ward_level"):
        np.testing.assert_array_equal(first.idata.posterior[var].values,
                                      again.idata.posterior[var].values)


@pytest.mark.slow
def test_a_new_process_reuses_the_compiled_model(tmp_path):
    """Two processes, one after the other: the second loads nutpie's callbacks."""
    if not _uses_nutpie():
        pytest.skip("nutpie not installed")
    script = textwrap.dedent("""
        import json, warnings
        warnings.simplefilter("ignore")
        from nbdid.models.simulate import simulate_panel
        from nbdid.workflow.fit import fit
        panel = simulate_panel("poisson", n_pairs=3, did=-0.2, seed=5)[0]
        res = fit(panel, "crime", family="poisson", draws=60, tune=60, chains=1, seed=3)
        print(json.dumps({**res.timing, "did": res.idata.posterior["did"].values.tolist()}))
    """)
    env = {**__import__("os").environ, cc.ENV_DIR: str(tmp_path)}
    env.pop(cc.ENV_SWITCH, None)
    import json

    runs = [json.loads(subprocess.run([sys.executable, "-c", script], env=env, check=True,
                                      capture_output=True, text=True).stdout.splitlines()[-1])
            for _ in range(2)]
    assert [r["compiled"] for r in runs] == ["fresh", "disk"]
    assert runs[0]["did"] == runs[1]["did"]


def test_digamma_matches_scipy():
    """The cacheable digamma agrees with SciPy's over positive, small and negative x."""
    from scipy import special

    x = np.concatenate([np.geomspace(1e-6, 1e6, 400), -np.linspace(0.05, 7.95, 80) - 1e-3,
                        [0.5, 1.0, 2.0, 9.999, 10.0, 10.001]])
    ours = np.array([cc.digamma(float(v)) for v in x])
    np.testing.assert_allclose(ours, special.digamma(x), rtol=1e-12, atol=1e-12)
    assert np.isnan(cc.digamma(0.0)) and np.isnan(cc.digamma(-3.0)) and np.isnan(cc.digamma(np.nan))


def test_psi_is_cacheable_by_pytensor_once_registered():
    """A graph with digamma (the gradient of a Student-t's degrees of freedom) gets a
    PyTensor cache key, so the disk cache can hold the property-price model; the
    compiled function computes SciPy's digamma."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.link.numba.dispatch.basic import numba_funcify_and_cache_key
    from scipy import special

    cc.register_cacheable_special_functions()
    x = pt.dvector("x")
    out = pt.psi(x)
    node = out.owner
    _, key = numba_funcify_and_cache_key(node.op, node=node)
    assert key is not None
    f = pytensor.function([x], out, mode="NUMBA")
    v = np.array([0.3, 1.7, 4.0, 55.0])
    np.testing.assert_allclose(f(v), special.digamma(v), rtol=1e-12)
