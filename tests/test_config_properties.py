"""Property-based tests: one validation for every way a setting arrives.

A setting can come from a TOML config file (:func:`nbdid.config.load_config`), a
command-line flag (``nbdid fit --draws``, ``nbdid compare --seed``) or the Python API
(``SamplerConfig(draws=...)``, ``nbdid.fit(..., draws=...)``).  Hypothesis draws values of
every type and range for every range-checked key and requires that the three routes
accept and refuse exactly the same values, that a refusal is a one-line
:class:`~nbdid.config.SettingError` naming the key, and that an accepted value is in
its documented range.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbdid.cli import build_parser
from nbdid.cli import main as cli_main
from nbdid.cli.fit import fit_config
from nbdid.config import (
    MAX_SEED,
    BoundsConfig,
    DiagnosticsConfig,
    FrequentistConfig,
    ModelConfig,
    RunConfig,
    SamplerConfig,
    SettingError,
    from_dict,
    load_config,
    to_toml,
    with_settings,
)
from nbdid.errors import InputError

PROFILE = settings(
    max_examples=int(__import__("os").environ.get("NBDID_HYP_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SECTIONS = {"sampler": SamplerConfig, "diagnostics": DiagnosticsConfig,
            "frequentist": FrequentistConfig, "model": ModelConfig}

# every range-checked scalar key and the documented range it must land in when accepted
RANGES = {
    ("sampler", "draws"): lambda v: isinstance(v, int) and 1 <= v <= 10_000_000,
    ("sampler", "tune"): lambda v: isinstance(v, int) and 0 <= v <= 10_000_000,
    ("sampler", "chains"): lambda v: isinstance(v, int) and 1 <= v <= 64,
    ("sampler", "seed"): lambda v: isinstance(v, int) and 0 <= v <= MAX_SEED,
    ("sampler", "target_accept"): lambda v: 0 < v < 1,
    ("sampler", "backend"): lambda v: v in ("nutpie", "pymc"),
    ("diagnostics", "max_rhat"): lambda v: math.isfinite(v) and v >= 1,
    ("diagnostics", "min_ess_bulk"): lambda v: isinstance(v, int) and v >= 0,
    ("diagnostics", "min_ess_tail"): lambda v: isinstance(v, int) and v >= 0,
    ("diagnostics", "max_divergences"): lambda v: isinstance(v, int) and v >= 0,
    ("diagnostics", "min_bfmi"): lambda v: 0 <= v <= 1,
    ("frequentist", "alpha"): lambda v: 0 < v < 1,
    ("frequentist", "ri_draws"): lambda v: isinstance(v, int) and 100 <= v <= 10_000_000,
    ("frequentist", "ri_seed"): lambda v: isinstance(v, int) and 0 <= v <= MAX_SEED,
    ("frequentist", "ri_exact_max_pairs"): lambda v: isinstance(v, int) and 0 <= v <= 24,
    ("model", "lkj_eta"): lambda v: math.isfinite(v) and v > 0,
    ("model", "prior_scale"): lambda v: math.isfinite(v) and v > 0,
}

# values a TOML file can hold (no None), of every type
toml_values = st.one_of(
    st.integers(-(2**40), 2**40),
    st.sampled_from([0, 1, -1, 64, 65, 99, 100, 10_000_000, 10_000_001, MAX_SEED, MAX_SEED + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, 0.5, 1.5, -1.0, 1e-300, 0.999999]),
    st.booleans(),
    st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=8),
    st.sampled_from(["nutpie", "pymc", "stan"]),
    st.lists(st.integers(0, 3), max_size=2),
)


def _toml_literal(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
    return to_toml_value(v)


def to_toml_value(v) -> str:
    from nbdid.config import _toml_value

    return _toml_value(v)


def via_toml(tmp_path: Path, section: str, key: str, value):
    p = tmp_path / "c.toml"
    p.write_text(f"[{section}]\n{key} = {_toml_literal(value)}\n", encoding="utf-8")
    try:
        return "ok", getattr(getattr(load_config(p), section), key)
    except InputError as err:
        return "refused", err


def via_api(section: str, key: str, value):
    try:
        return "ok", getattr(SECTIONS[section](**{key: value}), key)
    except InputError as err:
        return "refused", err


@PROFILE
@given(item=st.sampled_from(sorted(RANGES)), value=toml_values)
def test_config_file_and_python_share_the_checks(tmp_path_factory, item, value):
    section, key = item
    tmp = tmp_path_factory.mktemp("cfg")
    got_toml, got_api = via_toml(tmp, section, key, value), via_api(section, key, value)
    # the same verdict both ways
    assert got_toml[0] == got_api[0], (item, value, got_toml, got_api)
    if got_toml[0] == "ok":
        assert RANGES[item](got_toml[1]) and got_toml[1] == got_api[1]
    else:
        for err in (got_toml[1], got_api[1]):
            assert isinstance(err, SettingError), err  # never a TypeError/OverflowError later
            assert key in err.key and "\n" not in str(err)
        assert f"'{section}.{key}'" in str(got_toml[1]) and "c.toml" in str(got_toml[1])


FIT_FLAGS = {"draws": "--draws", "tune": "--tune", "chains": "--chains", "seed": "--seed"}


def via_cli_fit(key: str, value: int):
    args = build_parser().parse_args(["fit", "--data", "p.csv", "--indicator", "crime",
                                      "--out", "o", FIT_FLAGS[key], str(value)])
    try:
        return "ok", getattr(fit_config(args).sampler, key)
    except InputError as err:
        return "refused", err


@PROFILE
@given(key=st.sampled_from(sorted(FIT_FLAGS)),
       value=st.one_of(st.integers(-(2**40), 2**40),
                       st.sampled_from([-5, -1, 0, 1, 64, 65, MAX_SEED, MAX_SEED + 1])))
def test_command_line_flags_share_the_checks(tmp_path_factory, key, value):
    tmp = tmp_path_factory.mktemp("cli")
    got_cli = via_cli_fit(key, value)
    got_toml, got_api = via_toml(tmp, "sampler", key, value), via_api("sampler", key, value)
    assert got_cli[0] == got_toml[0] == got_api[0], (key, value, got_cli, got_toml, got_api)
    if got_cli[0] == "ok":
        assert got_cli[1] == value
    else:
        assert isinstance(got_cli[1], SettingError) and FIT_FLAGS[key] in str(got_cli[1])


@PROFILE
@given(ri_draws=st.one_of(st.none(), st.integers(-10, 10**8)),
       seed=st.one_of(st.none(), st.integers(-(2**33), 2**33)))
def test_compare_options_share_the_frequentist_checks(ri_draws, seed):
    base = FrequentistConfig()
    expect_ok = True
    for key, v in (("ri_draws", ri_draws), ("ri_seed", seed)):
        if v is not None:
            expect_ok &= via_api("frequentist", key, v)[0] == "ok"
    try:
        got = with_settings(base, flags={"ri_draws": "--ri-draws", "ri_seed": "--seed"},
                            ri_draws=ri_draws, ri_seed=seed)
    except SettingError as err:
        assert not expect_ok
        assert err.key in ("--ri-draws", "--seed")
    else:
        assert expect_ok
        assert got.ri_draws == (base.ri_draws if ri_draws is None else ri_draws)
        assert got.ri_seed == (base.ri_seed if seed is None else seed)


@PROFILE
@given(cfg=st.builds(
    RunConfig,
    indicators=st.lists(st.sampled_from(["crime", "burglary", "property_price"]), unique=True,
                        max_size=3).map(tuple),
    sampler=st.builds(SamplerConfig, draws=st.integers(1, 5000), chains=st.integers(1, 8),
                      seed=st.integers(0, MAX_SEED), target_accept=st.floats(0.01, 0.99)),
    frequentist=st.builds(FrequentistConfig, alpha=st.floats(0.001, 0.5),
                          ri_draws=st.integers(100, 10**6)),
    bounds=st.builds(BoundsConfig, max_rate=st.dictionaries(
        st.sampled_from(["crime", "fly_tipping"]), st.floats(0.01, 1e6), max_size=2)),
))
def test_printed_config_reads_back_the_same(tmp_path_factory, cfg):
    """``nbdid config`` output (TOML) of any valid config reads back to the same config."""
    p = tmp_path_factory.mktemp("rt") / "c.toml"
    p.write_text(to_toml(cfg), encoding="utf-8")
    assert load_config(p) == cfg


def test_bounds_in_config_files():
    cfg = from_dict(RunConfig, {"bounds": {"columns": {"exposure": [1, 5e7]},
                                           "max_rate": {"fly_tipping": 2}}})
    assert cfg.bounds.columns["exposure"] == (1.0, 5e7)
    assert cfg.bounds.columns["count"] == BoundsConfig().columns["count"]  # others kept
    assert cfg.bounds.max_rate["fly_tipping"] == 2.0 and cfg.bounds.max_rate["crime"] == 20.0
    for bad, key in (({"columns": {"exposure": [5, 1]}}, "bounds.columns.exposure"),
                     ({"columns": {"exposure": "x"}}, "bounds.columns.exposure"),
                     ({"max_rate": {"crime": -1}}, "bounds.max_rate.crime"),
                     ({"max_rate": {"crime": float("nan")}}, "bounds.max_rate.crime")):
        with pytest.raises(SettingError) as info:
            from_dict(RunConfig, {"bounds": bad})
        assert info.value.key == key


@pytest.mark.parametrize(("body", "key"), [
    ("[sampler]\ndraws = -10", "sampler.draws"),
    ("[sampler]\ndraws = 0", "sampler.draws"),
    ("[sampler]\nchains = 0", "sampler.chains"),
    ("[sampler]\ntarget_accept = 1.5", "sampler.target_accept"),
    ("[diagnostics]\nmax_rhat = -1", "diagnostics.max_rhat"),
    ('indicators = ["crime", "crime"]', "indicators"),
])
def test_bad_config_values_stop_nbdid_run_at_once(tmp_path, capsys, monkeypatch, body, key):
    """The issue's examples: each fails at once (no output folder, no replication, no
    fit), one line naming the file and the key, exit 2."""
    import nbdid.workflow.fit as wf
    from nbdid.models.sampling import CompiledModelCache

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the settings were checked")

    monkeypatch.setattr(wf, "fit", no_work)
    monkeypatch.setattr(CompiledModelCache, "sample", no_work)
    cfg = tmp_path / "bad.toml"
    cfg.write_text(body + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert cli_main(["run", "--config", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"'{key}'" in err and "bad.toml" in err, err
    assert "work started" not in err
    assert not out.exists()


def test_negative_seed_flags_fail_at_once(tmp_path):
    """``--seed -5`` is refused by ``fit``, ``compare``, ``design`` and ``data default``
    before any work, naming the setting (it crashed minutes later with an
    OverflowError)."""
    exe = Path(sys.executable).with_name("nbdid")
    if not exe.exists():
        pytest.skip("nbdid console script not installed next to this Python")
    panel = tmp_path / "p.csv"
    panel.write_text("indicator\n", encoding="utf-8")
    for cmd in (["fit", "--data", str(panel), "--indicator", "crime", "--out", str(tmp_path / "o"),
                 "--seed", "-5"],
                ["compare", "--no-posterior", "--out", str(tmp_path / "o2"), "--seed", "-5"],
                ["design", "--indicator", "crime", "--areas", "10", "--out", str(tmp_path / "o3"),
                 "--seed", "-5"],
                ["data", "default", "--out", str(tmp_path / "o4.csv"), "--seed", "-5"]):
        r = subprocess.run([str(exe), *cmd], capture_output=True, text=True, timeout=300)
        assert r.returncode == 2, r.stderr
        msg = r.stderr.strip()
        assert msg.count("\n") == 0 and "seed" in msg and "-5" in msg, msg
        assert "Traceback" not in r.stderr
    assert not any((tmp_path / o).exists() for o in ("o", "o2", "o3", "o4.csv"))
