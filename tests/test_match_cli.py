"""``nbdid match`` as a user runs it: any tables, the study on real extracts, bad calls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nbdid.cli import main
from nbdid.workflow.match import GENERAL_FILES, STUDY_FILES

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _write(tmp_path: Path) -> tuple[Path, Path]:
    t = tmp_path / "treated.csv"
    c = tmp_path / "cands.csv"
    t.write_text("area,imd,size,kind\nT1,1.0,10,a\nT2,5.0,20,b\n")
    c.write_text("area,imd,size,kind\nC1,1.2,11,a\nC2,4.0,19,b\nC3,9.0,50,a\nC4,5.1,30,a\n")
    return t, c


def test_general_match_writes_files(tmp_path, capsys):
    t, c = _write(tmp_path)
    out = tmp_path / "res"
    rc = main(["match", "--treated", str(t), "--candidates", str(c), "--id-col", "area",
               "--covariates", "imd", "--distance", "euclidean", "--out", str(out)])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(GENERAL_FILES)
    m = pd.read_csv(out / "matches.csv")
    assert list(zip(m.treated_ward, m.control_ward, strict=True)) == [("T1", "C1"), ("T2", "C4")]
    b = pd.read_csv(out / "balance.csv")
    # SMD after, independently: pooled SD of the before samples
    xt, xc = np.array([1.0, 5.0]), np.array([1.2, 4.0, 9.0, 5.1])
    sd = np.sqrt((xt.var(ddof=1) + xc.var(ddof=1)) / 2)
    assert b.loc[0, "smd_after"] == pytest.approx((xt.mean() - (1.2 + 5.1) / 2) / sd)
    assert "Matched 2 of 2 treated" in capsys.readouterr().out
    # exact matching on a column, 1:1 -> T2 (kind b) must take C2
    rc = main(["match", "--treated", str(t), "--candidates", str(c), "--id-col", "area",
               "--covariates", "imd,size", "--exact", "kind", "--out", str(out), "--force"])
    assert rc == 0
    m = pd.read_csv(out / "matches.csv")
    assert m.set_index("treated_ward").loc["T2", "control_ward"] == "C2"


def _one_line_error(capsys, argv, match):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert "\n" not in err and "Traceback" not in err
    assert match in err, err
    return err


def test_general_errors(tmp_path, capsys):
    t, c = _write(tmp_path)
    base = ["match", "--treated", str(t), "--candidates", str(c), "--id-col", "area"]
    _one_line_error(capsys, base + ["--covariates", "nope", "--out", str(tmp_path / "o")],
                    "missing column(s) 'nope'")
    _one_line_error(capsys, ["match", "--treated", str(t), "--covariates", "imd"], "--candidates")
    _one_line_error(capsys, base, "--covariates")
    bad = tmp_path / "bad.csv"
    bad.write_text("area,imd,size,kind\nC1,1.2,11,a\nC2,n/a,19,b\n")
    err = _one_line_error(capsys, ["match", "--treated", str(t), "--candidates", str(bad), "--id-col",
                                   "area", "--covariates", "imd"], "line 3")
    assert "column 'imd'" in err
    # results are never overwritten silently
    out = tmp_path / "o2"
    assert main(base + ["--covariates", "imd", "--out", str(out)]) == 0
    _one_line_error(capsys, base + ["--covariates", "imd", "--out", str(out)], "--force")
    _one_line_error(capsys, base + ["--covariates", "imd", "--ratio", "0", "--out", str(out),
                                    "--force"], "ratio")


def test_study_without_shared_data_is_a_clean_error(tmp_path, capsys, monkeypatch):
    import nbdid.data_prep.covariates as cov

    monkeypatch.setattr(cov, "shared_data_dir", lambda start=None: None)
    monkeypatch.chdir(tmp_path)
    _one_line_error(capsys, ["match", "--study", "--out", str(tmp_path / "o")], "--imd FILE")


@pytest.fixture(scope="module")
def study_run(tmp_path_factory):
    if not DATA.is_dir():
        pytest.skip("../shared/data not available")
    out = tmp_path_factory.mktemp("match") / "study"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["match", "--study", "--out", str(out)])
    assert rc == 0
    return out, buf.getvalue()


def test_study_end_to_end(study_run):
    out, printed = study_run
    assert sorted(p.name for p in out.iterdir()) == sorted(STUDY_FILES)
    assert "Balance of the report's 29 published pairs" in printed
    assert "Not available with these inputs" in printed and "oac" in printed
    study = pd.read_csv(out / "covariates_study.csv")
    wards = pd.read_csv(out / "covariates_all_wards.csv")
    alt = pd.read_csv(out / "alternatives.csv")
    assert len(study) == 58 and len(alt) == 29
    assert alt["pair"].tolist() == list(range(1, 30))
    # the engine's picks are distinct (no replacement) and never NBI wards
    assert alt["engine_ward"].is_unique
    nbi = study[study.group == "nbi"]
    nbi_parts = set(nbi.ward.str.split("+").explode())
    assert not set(alt.engine_ward) & nbi_parts
    # SMD of the published pairs recomputed independently from the written covariates
    ben = study[study.group == "benchmark"]
    cands = pd.concat([wards[~wards.ward.isin(nbi_parts)], ben[~ben.ward.isin(wards.ward)]])
    bal = pd.read_csv(out / "balance.csv")
    pub = bal[bal.matched_by == "published"].set_index("covariate")
    for cov in ("mean_rank", "share_most_deprived_decile", "share_most_deprived_quintile"):
        xt, xc, xb = nbi[cov].to_numpy(), cands[cov].to_numpy(), ben[cov].to_numpy()
        sd = np.sqrt((xt.var(ddof=1) + xc.var(ddof=1)) / 2)
        assert pub.loc[cov, "smd_before"] == pytest.approx((xt.mean() - xc.mean()) / sd)
        assert pub.loc[cov, "smd_after"] == pytest.approx((xt.mean() - xb.mean()) / sd)
        assert pub.loc[cov, "var_ratio_after"] == pytest.approx(xt.var(ddof=1) / xb.var(ddof=1))
    # deprived wards: every NBI ward far more deprived than the average English ward
    assert pub.loc["mean_rank", "smd_before"] < -1


def test_study_exact_on_unavailable_region_is_one_line(tmp_path, capsys):
    if not DATA.is_dir():
        pytest.skip("../shared/data not available")
    _one_line_error(capsys, ["match", "--study", "--exact", "region", "--out", str(tmp_path / "o")],
                    "region")
    _one_line_error(capsys, ["match", "--study", "--covariates", "mean_score", "--out",
                             str(tmp_path / "o"), "--force"], "could not be computed")
