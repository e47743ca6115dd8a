"""Running a tiny sweep: local worker processes, a Dask LocalCluster, and resuming.

One indicator, two specifications of the same model structure and a tiny sampler, so
that each executor compiles one model.  The Dask run refits only the specification
whose file was deleted, and must reproduce its numbers exactly (seeds come from the
specification hash, not from the executor or the order).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nbdid.analysis.sensitivity import parse_sweep_config
from nbdid.cli import main as cli_main
from nbdid.errors import InputError, OutputError
from nbdid.provenance import SYNTHETIC_NOTICE
from nbdid.workflow.sweep import run_sweep, spec_path

# PyTensor warns once per process when it compiles C code without a BLAS library (an
# environment notice; the Dask LocalCluster below compiles in this process).
pytestmark = pytest.mark.filterwarnings(
    "ignore:PyTensor could not link to a BLAS installation:UserWarning"
)

TINY = """
[sweep]
indicators = ["burglary"]
seed = 11
[sweep.sampler]
draws = 50
tune = 50
chains = 2
[grid.matching]
published = true
covariates = [["mean_rank", "share_most_deprived_decile"]]
distance = ["mahalanobis"]
"""


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "local"
    cfg = parse_sweep_config(TINY, file="tiny.toml")
    res = run_sweep(cfg, out, executor="local", workers=1, progress=False)
    return cfg, res


def test_local_sweep_outputs(local_run):
    cfg, res = local_run
    out = res.out
    assert len(res.specs) == 2 and len(res.fitted_ids) == 2 and not res.skipped_ids
    for name in ("sensitivity.csv", "sensitivity_summary.csv", "sweep_info.json",
                 "figures/spec_curve_burglary.png", "figures/spec_curve_burglary.svg"):
        assert (out / name).is_file(), name
    table = pd.read_csv(out / "sensitivity.csv")
    assert len(table) == 2
    assert set(table["matching"]) == {"published", "matched"}
    assert table["is_main"].sum() == 1
    assert table.loc[table["is_main"], "matching"].item() == "published"
    assert np.isfinite(table["estimate"]).all()
    assert (table["lower"] < table["estimate"]).all() and (table["estimate"] < table["upper"]).all()
    assert table["prob_benefit"].between(0, 1).all()
    assert (table["n_pairs"] == 29).all()
    assert table["notice"].eq(SYNTHETIC_NOTICE).all() and table["synthetic"].all()
    for sid in res.fitted_ids:
        assert spec_path(out, sid).is_file()
    summ = pd.read_csv(out / "sensitivity_summary.csv")
    assert summ["n_fitted"].item() == 2
    # no leftover temporary files
    assert not list(out.rglob("*.tmp"))


def test_rerun_without_force_refuses(local_run):
    cfg, res = local_run
    with pytest.raises(OutputError, match="--force"):
        run_sweep(cfg, res.out, progress=False)


def test_dask_resume_refits_only_the_missing_spec(local_run, tmp_path):
    distributed = pytest.importorskip("distributed")
    cfg, res = local_run
    out = tmp_path / "resumed"
    shutil.copytree(res.out, out)
    removed = res.fitted_ids[1]
    kept = res.fitted_ids[0]
    spec_path(out, removed).unlink()
    mtime = spec_path(out, kept).stat().st_mtime_ns
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        again = run_sweep(cfg, out, force=True, executor="dask",
                          scheduler=cluster.scheduler_address, progress=False)
    assert again.fitted_ids == [removed]
    assert again.skipped_ids == [t for t in again.skipped_ids if t == kept] == [kept]
    assert spec_path(out, kept).stat().st_mtime_ns == mtime  # not rewritten
    old = pd.read_csv(res.out / "sensitivity.csv").set_index("spec_id")
    new = pd.read_csv(out / "sensitivity.csv").set_index("spec_id")
    cols = ["estimate", "lower", "upper", "prob_benefit"]
    # same seed from the spec hash -> the same numbers from another executor
    np.testing.assert_allclose(new.loc[old.index, cols].to_numpy(), old[cols].to_numpy(), rtol=1e-9)

    # nothing left to do: a third run fits nothing
    third = run_sweep(cfg, out, force=True, progress=False, figures=False)
    assert third.fitted_ids == [] and len(third.skipped_ids) == 2


RATIO_TWO = """
[sweep]
indicators = ["burglary"]
seed = 5
[sweep.sampler]
draws = 50
tune = 50
chains = 2
[grid.matching]
published = false
covariates = [["mean_rank", "share_most_deprived_decile"]]
distance = ["mahalanobis"]
ratio = [2]
"""


def test_sweep_with_one_to_two_matched_sets(tmp_path):
    """1:2 matched sets go through the sweep: 87 wards in 29 sets, pair effects kept."""
    cfg = parse_sweep_config(RATIO_TWO, file="ratio.toml")
    res = run_sweep(cfg, tmp_path / "ratio", executor="local", workers=1, progress=False,
                    figures=False)
    table = pd.read_csv(res.out / "sensitivity.csv", dtype={"ratio": str})
    # the main specification (the report's pairs) is always fitted as the reference
    assert sorted(table["ratio"]) == ["-", "2"] and table["error"].isna().all()
    row = table[table["ratio"] == "2"].iloc[0]
    assert row["n_pairs"] == 29 and row["n_wards"] == 87
    assert row["lower"] < row["estimate"] < row["upper"]


def test_cli_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "s.toml").write_text("[sweep]\nseeed = 1\n", encoding="utf-8")
    assert cli_main(["sensitivity", str(tmp_path / "s.toml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "sweep.seeed" in err and "s.toml" in err
    assert cli_main(["sensitivity", str(tmp_path / "s.toml"), "--executor", "dask"]) == 2
    assert "--scheduler" in capsys.readouterr().err


def test_dask_needs_scheduler():
    cfg = parse_sweep_config(TINY)
    with pytest.raises(InputError, match="--scheduler"):
        run_sweep(cfg, "unused", executor="dask", progress=False)


def _spawned_workers(parent: int) -> set[int]:
    """Live multiprocessing workers whose parent is ``parent`` (Linux /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = next(int(x.split()[1]) for x in status.splitlines() if x.startswith("PPid:"))
        state = next(x.split()[1] for x in status.splitlines() if x.startswith("State:"))
        if ppid == parent and "spawn_main" in cmd and state != "Z":
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_stops_workers_and_leaves_no_partial_files(tmp_path):
    """SIGTERM to ``nbdid sensitivity`` stops its worker processes at once (not after
    their current fit), exits 143 with one line and no traceback, and leaves no
    temporary files."""
    exe = Path(sys.executable).with_name("nbdid")
    if not exe.exists():
        pytest.skip("nbdid console script not installed next to this Python")
    cfg = tmp_path / "slow.toml"
    # enough draws that the worker is still busy (compiling, then sampling) when killed
    cfg.write_text(TINY.replace("draws = 50", "draws = 20000"), encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.Popen([str(exe), "sensitivity", str(cfg), "--out", str(out), "--quiet",
                             "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        workers: set[int] = set()
        deadline = time.monotonic() + 120
        while not workers and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            workers = _spawned_workers(proc.pid)
        assert workers, "no worker process started"
        time.sleep(2)
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "nbdid sensitivity: terminated"
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers), "worker processes outlived the sweep"
    assert not list(out.rglob("*.tmp"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_leaves_no_orphan_workers(tmp_path):
    """SIGKILL of ``nbdid sensitivity`` (or an out-of-memory kill): its worker processes
    exit too, instead of running on at full CPU under PID 1 (parent-death signal)."""
    exe = Path(sys.executable).with_name("nbdid")
    if not exe.exists():
        pytest.skip("nbdid console script not installed next to this Python")
    cfg = tmp_path / "slow.toml"
    cfg.write_text(TINY.replace("draws = 50", "draws = 20000"), encoding="utf-8")
    proc = subprocess.Popen([str(exe), "sensitivity", str(cfg), "--out", str(tmp_path / "out"),
                             "--quiet", "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        workers: set[int] = set()
        deadline = time.monotonic() + 120
        while not workers and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            workers = _spawned_workers(proc.pid)
        assert workers, "no worker process started"
        time.sleep(2)
        proc.kill()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers), "worker processes outlived a SIGKILLed sweep"
