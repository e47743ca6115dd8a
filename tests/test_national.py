"""The synthetic national panel (workflow/national.py): shape, truth, and honesty."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nbdid.data_prep.schema import validate_panel
from nbdid.errors import InputError, OutputError
from nbdid.models.simulate import NATIONAL_COVARIATES
from nbdid.workflow.national import SYNTHETIC_NOTE, national_model_config, national_panel

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def ward_table(n: int = 60, n_treated: int = 6) -> tuple[pd.DataFrame, list[str]]:
    rng = np.random.default_rng(3)
    t = pd.DataFrame({"ward": [f"E0500{i:04d}" for i in range(n)],
                      "ward_name": [f"W{i}" for i in range(n)], "la_name": "LA",
                      "n_lsoa": rng.integers(3, 8, n),
                      "mean_rank": rng.uniform(1000, 30000, n),
                      "share_most_deprived_decile": rng.uniform(0, 1, n)})
    return t, list(t["ward"][:n_treated])


@pytest.mark.parametrize("periods", [2, 5])
def test_national_panel_on_a_given_ward_table(periods):
    table, treated = ward_table()
    res = national_panel(periods=periods, ward_table=table, treated=treated, seed=2)
    p = res.panel
    assert len(p) == 60 * periods
    assert set(p.loc[p["ward"].isin(treated), "group"]) == {"nbi"}
    assert (p["count"] >= 0).all() and (p["exposure"] > 0).all()
    assert p["synthetic"].all()
    for c in NATIONAL_COVARIATES:
        assert c in p.columns
    validate_panel(p, covariates=NATIONAL_COVARIATES)
    assert res.info["did"] == -0.1 and res.info["synthetic"] is True
    assert "SYNTHETIC" in res.text()


def test_subsample_keeps_every_initiative_ward_and_is_seeded():
    table, treated = ward_table()
    a = national_panel(ward_table=table, treated=treated, wards=20, seed=5)
    b = national_panel(ward_table=table, treated=treated, wards=20, seed=5)
    assert a.panel["ward"].nunique() == 20
    assert set(treated) <= set(a.panel["ward"])
    pd.testing.assert_frame_equal(a.panel, b.panel)
    with pytest.raises(InputError, match="--wards must be at least 8"):
        national_panel(ward_table=table, treated=treated, wards=7)


def test_bad_settings_are_refused():
    table, treated = ward_table()
    with pytest.raises(InputError, match="--periods"):
        national_panel(periods=1, ward_table=table, treated=treated)
    with pytest.raises(InputError, match="unknown indicator"):
        national_panel(indicator="nope", ward_table=table, treated=treated)


def test_save_writes_panel_and_provenance_and_never_overwrites(tmp_path):
    table, treated = ward_table()
    res = national_panel(ward_table=table, treated=treated, seed=1)
    out = res.save(tmp_path / "nat.csv")
    prov = (tmp_path / "nat.provenance.json").read_text()
    assert SYNTHETIC_NOTE in prov
    assert len(pd.read_csv(out)) == len(res.panel)
    with pytest.raises(OutputError, match="already holds results"):
        res.save(tmp_path / "nat.csv")
    res.save(tmp_path / "nat.csv", force=True)


def test_model_config_has_no_pairs_and_the_covariates():
    cfg = national_model_config()
    assert cfg.pair_effects is False
    assert tuple(cfg.covariates) == NATIONAL_COVARIATES


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data (real IMD and lookups) absent")
def test_real_ward_list_holds_the_29_initiative_wards():
    res = national_panel(wards=200, seed=1)
    assert res.info["initiative_wards"] == 29
    assert res.info["wards_in_lookup"] > 7000
    assert res.panel["ward"].nunique() == 200


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data (real IMD and lookups) absent")
def test_data_national_command_writes_a_panel_that_validates_and_fits_its_covariates(
        tmp_path, capsys):
    from nbdid.cli import main
    from nbdid.data_prep.schema import read_panel

    out = tmp_path / "national.csv"
    assert main(["data", "national", "--out", str(out), "--wards", "120", "--periods", "3",
                 "--seed", "4"]) == 0
    said = capsys.readouterr().out
    assert "120 wards (29 initiative, 91 comparison) x 3 periods" in said
    assert "SYNTHETIC DATA" in said
    panel = read_panel(out, covariates=NATIONAL_COVARIATES)
    assert panel["ward"].nunique() == 120 and panel["period"].nunique() == 3
    assert panel["synthetic"].all() and panel["pair"].isna().all()
    prov = (tmp_path / "national.provenance.json").read_text()
    assert "SYNTHETIC" in prov and '"wards": 120' in prov
    # never overwrites; a bad option is one line with a non-zero status
    assert main(["data", "national", "--out", str(out), "--wards", "120"]) == 2
    assert "--force" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["data", "national", "--out", str(out), "--periods", "two"])
    assert stop.value.code == 2
    assert "--periods: must be a whole number" in capsys.readouterr().err


def test_low_rank_mass_matrix_is_a_sampler_setting_that_reaches_nutpie(monkeypatch):
    import nutpie

    from nbdid.config import SamplerConfig
    from nbdid.errors import InputError as Err
    from nbdid.models.sampling import CompiledModelCache
    from nbdid.models.simulate import simulate_panel
    from nbdid.workflow.fit import fit
    from nbdid.workflow.national import NATIONAL_SAMPLER

    # national fits use the diagonal one (the mean-level form leaves nothing for low rank)
    assert NATIONAL_SAMPLER.mass_matrix == SamplerConfig().mass_matrix == "diag"
    assert NATIONAL_SAMPLER.draws == 1000
    with pytest.raises(Err, match="mass_matrix"):
        SamplerConfig(mass_matrix="dense")
    seen: list[bool] = []
    real = nutpie.sample

    def spy(*args, **kwargs):
        seen.append(kwargs.get("low_rank_modified_mass_matrix"))
        return real(*args, **kwargs)

    monkeypatch.setattr(nutpie, "sample", spy)
    panel = simulate_panel("poisson", n_pairs=4, did=-0.2, seed=3)[0]
    cache = CompiledModelCache()
    for mm in ("low_rank", "diag"):
        res = fit(panel, "crime", draws=60, tune=60, chains=2, seed=1, mass_matrix=mm,
                  compiled_cache=cache, quiet=True)
        assert res.idata.posterior.sizes["draw"] == 60
    assert seen == [True, False]


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data (real IMD and lookups) absent")
def test_fit_national_flag_fits_a_national_panel_with_the_preset(tmp_path, capsys):
    import xarray as xr

    from nbdid.cli import main

    panel = tmp_path / "national.csv"
    assert main(["data", "national", "--out", str(panel), "--wards", "80", "--seed", "2"]) == 0
    out = tmp_path / "fit"
    assert main(["fit", "--data", str(panel), "--indicator", "crime", "--national", "--draws", "60",
                 "--tune", "60", "--chains", "2", "--out", str(out), "--quiet"]) == 0
    with xr.open_dataset(out / "crime.nc", group="log_likelihood") as ll:
        assert ll["y"].dims == ("chain", "draw", "ward") and ll.sizes["ward"] == 80
    with xr.open_dataset(out / "crime.nc", group="posterior") as post:
        assert "pair_effect" not in post and "beta_cov_post" in post
        assert post.sizes["draw"] == 60
        assert "mean_level = true" in post.attrs["nbdid_config"]
        assert post.attrs["nbdid_synthetic"] == "true"
    summary = (out / "summary.csv").read_text()
    assert "SYNTHETIC" in summary.upper()
