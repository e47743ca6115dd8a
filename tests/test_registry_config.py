"""The indicator registry, the config loader and the package layout."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from nbdid.config import RunConfig, load_config, to_toml
from nbdid.errors import InputError
from nbdid.registry import INDICATOR_KEYS, INDICATORS, get_indicator


def test_registry_keys_exact() -> None:
    assert INDICATOR_KEYS == (
        "out_of_work_benefits", "children_low_income", "crime", "burglary",
        "criminal_damage", "property_price", "business_units",
    )
    fam = {k: v.family for k, v in INDICATORS.items()}
    assert fam["out_of_work_benefits"] == fam["children_low_income"] == "binomial"
    assert {fam[k] for k in ("crime", "burglary", "criminal_damage", "business_units")} == {"poisson"}
    assert fam["property_price"] == "price"
    assert INDICATORS["business_units"].multiplier == 10_000
    assert INDICATORS["burglary"].denominator_key == "households"
    assert not INDICATORS["property_price"].lower_is_better
    assert INDICATORS["crime"].better(-1) and not INDICATORS["business_units"].better(-1)


def test_unknown_indicator_suggests() -> None:
    with pytest.raises(InputError, match="did you mean 'burglary'"):
        get_indicator("burglery")


def test_config_roundtrip(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text(to_toml(RunConfig()))
    assert load_config(p) == RunConfig()
    p.write_text('indicators = ["crime"]\n[sampler]\ndraws = 50\n[model]\noverdispersion = "negbin"\n')
    cfg = load_config(p)
    assert cfg.indicators == ("crime",) and cfg.sampler.draws == 50
    assert cfg.model.overdispersion == "negbin"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[sampler]\ndraw = 5\n", "unknown setting 'sampler.draw'.*did you mean 'sampler.draws'"),
        ('[model]\noverdispersion = "gamma"\n', "must be one of"),
        ('[sampler]\ndraws = "many"\n', "whole number"),
        ('indicators = ["crim"]\n', "unknown indicator"),
        ('indicators = ["score"]\n[families]\nscore = "gaussian"\n',
         "'score' is not one of the report's indicators.*nbdid fit --indicator score --family gaussian"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_config_errors_name_the_file(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(InputError, match=match) as exc:
        load_config(p)
    assert str(p) in str(exc.value)


def test_no_bare_top_level_packages_installed() -> None:
    import nbdid

    root = Path(nbdid.__file__).resolve().parent
    for sub in ("models", "data_prep", "analysis", "figures"):
        mod = importlib.import_module(f"nbdid.{sub}")
        assert Path(mod.__file__).resolve().parent == root / sub
    spec = importlib.util.find_spec("analysis")
    # a bare `analysis` is importable only from the repo's working directory, never installed
    assert spec is None or Path(spec.origin).resolve().parent.parent == Path.cwd().resolve()




def test_config_families_table(tmp_path: Path) -> None:
    """``[families]`` names the family of an indicator, checked when the file is read."""
    from nbdid.config import FAMILY_NAMES
    from nbdid.families import FAMILY_CHOICES

    assert set(FAMILY_NAMES) == set(FAMILY_CHOICES)
    p = tmp_path / "c.toml"
    p.write_text('[families]\nscore = "gaussian"\ncrime = "negbin"\n')
    cfg = load_config(p)
    assert cfg.families == {"score": "gaussian", "crime": "negbin"}
    (tmp_path / "c2.toml").write_text(to_toml(cfg))
    assert load_config(tmp_path / "c2.toml") == cfg
    hash(cfg)
    p.write_text('[families]\nscore = "gauss"\n')
    with pytest.raises(InputError, match=r"families\.score.*gaussian"):
        load_config(p)


def test_fit_takes_the_family_from_the_config(monkeypatch) -> None:
    """``fit`` (and so ``nbdid fit --config``) uses ``[families]`` when no family is given."""
    import nbdid.workflow.fit as wf

    seen = {}

    def stop(panel, indicator, family, **kw):
        seen["family"] = family.name
        raise RuntimeError("stop")

    monkeypatch.setattr(wf, "build_design", stop)
    panel = pd.DataFrame()  # not read: validation is skipped and build_design stops
    cfg = RunConfig(families={"score": "gaussian"})
    with pytest.raises(RuntimeError, match="stop"):
        wf.fit(panel, "score", config=cfg, validate=False)
    assert seen["family"] == "gaussian"
    with pytest.raises(RuntimeError, match="stop"):
        wf.fit(panel, "score", config=cfg, family="poisson", validate=False)
    assert seen["family"] == "poisson"
