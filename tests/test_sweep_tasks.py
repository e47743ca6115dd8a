"""Lazy sweep tasks: small, built without matching, resolved on the worker, and the
candidate pool sent once per worker (issue #17, item 3)."""

from __future__ import annotations

import pickle
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

from nbdid.analysis.sensitivity import Spec, parse_sweep_config, resolve_spec
from nbdid.outputs import write_csv
from nbdid.workflow import sweep as sw

# about 1,000 specifications: 3 covariate sets x 3 distances x 5 calipers x replacement
# x 1:1/1:2, 4 samples, pair effects on/off (replacement implies no pair effects)
BIG = """
[sweep]
seed = 3
[grid.matching]
published = true
covariates = [["mean_rank"], ["share_most_deprived_decile"], ["mean_rank", "share_most_deprived_decile"]]
distance = ["mahalanobis", "propensity", "euclidean"]
caliper = [false, 0.1, 0.25, 0.5, 1.0]
replace = [false, true]
ratio = [1, 2]
[grid.sample]
drop_poor_balance = [false, 0.5]
drop_boundary_changes = [false, true]
[grid.model]
pair_effects = [true, false]
"""

SMALL = """
[sweep]
indicators = ["burglary"]
seed = 11
[sweep.sampler]
draws = 40
tune = 40
chains = 1
[grid.matching]
published = true
covariates = [["mean_rank"]]
distance = ["mahalanobis"]
caliper = [false, 1e-9]
"""


@pytest.fixture(scope="module")
def pool():
    return sw.load_pool(parse_sweep_config(SMALL))


def _no_matching(*_args, **_kwargs):
    raise AssertionError("a specification was resolved in the calling process")


def test_a_big_grid_builds_small_tasks_without_matching(pool, monkeypatch):
    monkeypatch.setattr(sw, "resolve_spec", _no_matching)
    cfg = parse_sweep_config(BIG)
    t0 = time.perf_counter()
    specs, tasks, _ = sw.build_tasks(cfg, pool)
    seconds = time.perf_counter() - t0
    assert len(tasks) == len(specs) >= 1000
    assert len({t.spec_id for t in tasks}) == len(tasks)
    sizes = [len(pickle.dumps(t)) for t in tasks]
    assert max(sizes) < sw.MAX_TASK_BYTES == 10_000
    assert seconds < 20  # a few tenths of a second on an idle machine
    # the lanes are planned on what is known before matching
    lanes = sw.plan_lanes(tasks, 4)
    assert sorted(t.spec_id for lane in lanes for t in lane) == sorted(t.spec_id for t in tasks)


def test_the_worker_resolves_a_task_as_the_client_did(pool):
    cfg = parse_sweep_config(SMALL)
    _, tasks, _ = sw.build_tasks(cfg, pool)
    main = sw.resolve_task(tasks[0], pool)
    assert tasks[0].is_main and main.is_main
    pd.testing.assert_frame_equal(main.panel, resolve_spec(Spec(), pool).panel)
    assert main.n_pairs == 29 and main.n_wards == 58 and not main.error
    assert set(main.parameterization) == {"burglary"}
    assert main.signature[0] == tasks[0].signature[0]  # the same model settings


def test_a_failed_matching_gives_its_error_rows_on_the_worker(pool, monkeypatch):
    cfg = parse_sweep_config(SMALL)
    _, tasks, _ = sw.build_tasks(cfg, pool)
    bad = next(t for t in tasks if t.choices["caliper"] == "1e-09")
    monkeypatch.setattr(sw, "_SHARED", {})
    with pytest.raises(RuntimeError, match="candidate pool"):
        sw.run_spec(bad)  # a worker that has not received the pool
    sw.install_shared(bad.pool_key, pool)
    rows = sw.run_spec(bad)  # nothing to fit: no compilation, no sampling
    assert rows.equals(sw.run_spec(bad, pool))
    row = rows.iloc[0]
    assert len(rows) == 1 and row["spec_id"] == bad.spec_id and not row["is_main"]
    assert row["gate"] == "not fitted" and "matched set" in row["error"]
    assert row["n_wards"] == 0 and pd.isna(row["estimate"]) and row["synthetic"]
    assert list(rows.columns[:2]) == ["spec_id", "is_main"]


class _Recorder:
    """A one-thread stand-in for a worker process that records what it is sent."""

    def __init__(self, log: list) -> None:
        self._ex = ThreadPoolExecutor(1)
        self._log = log

    def submit(self, fn, *args):
        self._log.append((fn.__name__, len(pickle.dumps(args))))
        return self._ex.submit(fn, *args)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        self._ex.shutdown(wait=wait, cancel_futures=cancel_futures)


def _n_wards(task: sw.SpecTask) -> pd.DataFrame:
    built = sw.resolve_task(task, sw.shared_object(task.pool_key))
    return pd.DataFrame({"spec_id": [task.spec_id], "n_wards": [built.n_wards]})


def test_local_workers_get_the_pool_once_and_small_tasks(pool, monkeypatch):
    log: list = []
    monkeypatch.setattr(sw, "process_pool", lambda n: _Recorder(log))
    monkeypatch.setattr(sw, "_SHARED", {})
    cfg = parse_sweep_config(SMALL)
    _, tasks, _ = sw.build_tasks(cfg, pool)
    lanes = [tasks[:1], tasks[1:]]
    got: dict[str, int] = {}
    sw._run_local(lanes, lambda t, rows: got.update({t.spec_id: int(rows["n_wards"].iloc[0])}),
                  fn=_n_wards, shared=(tasks[0].pool_key, pool))
    assert got[tasks[0].spec_id] == 58 and len(got) == len(tasks)
    installs = [size for name, size in log if name == "install_shared"]
    sent = [size for name, size in log if name == "_n_wards"]
    assert len(installs) == len(lanes)  # once per worker, not once per task
    assert min(installs) > 100_000 and len(sent) == len(tasks)
    assert max(sent) < 10_000


def test_resume_skips_finished_specifications_before_building_them(tmp_path, pool, monkeypatch):
    cfg = parse_sweep_config(SMALL)
    _, tasks, _ = sw.build_tasks(cfg, pool)
    out = tmp_path / "sweep"
    (out / sw.SPEC_DIR).mkdir(parents=True)
    for t in tasks:
        stub = sw.ResolvedTask(spec_id=t.spec_id, is_main=t.is_main, choices=t.choices, panel=None,
                               indicators=t.indicators, sampler=t.sampler, model=t.model,
                               diagnostics=t.diagnostics, parameterization={}, seed=t.seed,
                               error="stub", synthetic=t.synthetic)
        write_csv(sw.fit_spec(stub), sw.spec_path(out, t.spec_id))
    monkeypatch.setattr(sw, "resolve_spec", _no_matching)
    monkeypatch.setattr(sw, "process_pool", _no_matching)
    res = sw.run_sweep(cfg, out, progress=False, figures=False)
    assert res.fitted_ids == [] and res.skipped_ids == [t.spec_id for t in tasks]
    table = pd.read_csv(out / "sensitivity.csv", keep_default_na=False)
    assert list(table["spec_id"]) == [t.spec_id for t in tasks]
    assert set(table["error"]) == {"stub"}
