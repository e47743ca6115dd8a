"""A sweep run as shards (``--shard I/N``, e.g. a SLURM array job) and merged with
``nbdid sensitivity collect`` gives the same outputs as one run, byte for byte."""

from __future__ import annotations

import pandas as pd
import pytest

from nbdid.analysis.sensitivity import parse_sweep_config
from nbdid.cli import main as cli_main
from nbdid.errors import InputError
from nbdid.workflow.sweep import (
    collect_shards,
    parse_shard,
    run_sweep,
    shard_name,
    shard_tasks,
    spec_path,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:PyTensor could not link to a BLAS installation:UserWarning",
    "ignore::RuntimeWarning",
)

# one indicator, three specifications of one model structure, a tiny sampler
TINY = """
[sweep]
indicators = ["burglary"]
seed = 11
[sweep.sampler]
draws = 40
tune = 40
chains = 1
[grid.matching]
published = true
covariates = [["mean_rank", "share_most_deprived_decile"], ["mean_rank"]]
distance = ["mahalanobis"]
"""


def test_shards_partition_the_grid():
    tasks = list(range(10))
    parts = [shard_tasks(tasks, (i, 3)) for i in (1, 2, 3)]
    assert parts == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert shard_tasks(tasks[:2], (3, 3)) == []
    assert parse_shard("2/5") == (2, 5)
    for bad in ("0/3", "4/3", "a/b", "3"):
        with pytest.raises(InputError, match="--shard"):
            parse_shard(bad)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shards")
    cfg = parse_sweep_config(TINY, file="tiny.toml")
    whole = run_sweep(cfg, tmp / "whole", workers=1, progress=False, figures=False)
    shards = [run_sweep(cfg, tmp / f"shard{i}", workers=1, progress=False, figures=False,
                        shard=(i, 2)) for i in (1, 2)]
    return cfg, tmp, whole, shards


def test_a_shard_fits_only_its_slice(runs):
    _cfg, tmp, whole, shards = runs
    assert len(whole.specs) == 3
    n = [len(s.fitted_ids) for s in shards]
    assert n == [2, 1]
    assert sorted(shards[0].fitted_ids + shards[1].fitted_ids) == sorted(whole.fitted_ids)
    for i, s in enumerate(shards, 1):
        assert (s.out / shard_name((i, 2))).is_file()
        assert not (s.out / "sensitivity.csv").exists()  # a shard is not a result


def test_collect_reproduces_one_run_byte_for_byte(runs, capsys):
    cfg, tmp, whole, shards = runs
    out = tmp / "merged"
    res = collect_shards(cfg, [s.out for s in shards], out, figures=False)
    assert not res.fitted_ids and len(res.skipped_ids) == 3
    # every number but the fits' wall times ("seconds", different in any two runs)
    # is the same text, in the same order
    for name in ["sensitivity.csv"] + [f"specs/spec_{sid}.csv" for sid in whole.fitted_ids]:
        assert _text(out / name) == _text(whole.out / name), name
    assert (out / "sensitivity_summary.csv").read_bytes() == \
        (whole.out / "sensitivity_summary.csv").read_bytes()
    # and the merged folder holds the shards' files byte for byte
    for s in shards:
        for sid in s.fitted_ids:
            assert spec_path(out, sid).read_bytes() == spec_path(s.out, sid).read_bytes()
    # the CLI: a shard missing is an error naming what to do; with both it works
    cfg_file = tmp / "tiny.toml"
    cfg_file.write_text(TINY, encoding="utf-8")
    code = cli_main(["sensitivity", "collect", str(cfg_file), str(shards[0].out),
                     "--out", str(tmp / "partial")])
    assert code != 0 and "run the missing shards" in capsys.readouterr().err
    code = cli_main(["sensitivity", "collect", str(cfg_file), str(shards[0].out),
                     str(shards[1].out), "--out", str(tmp / "cli")])
    assert code == 0
    assert (tmp / "cli" / "sensitivity.csv").read_bytes() == (out / "sensitivity.csv").read_bytes()


def _text(path):
    """The CSV as text cells, without the wall-time column."""
    t = pd.read_csv(path, dtype=str, keep_default_na=False)
    return t.drop(columns=["seconds"]).to_csv(index=False)


@pytest.mark.slow
def test_dask_cluster_of_four_compiles_once_per_lane(tmp_path):
    """Strict placement on a 4-worker LocalCluster: no task is stolen by a worker that
    has not compiled its model, so compilations == lanes (recorded in sweep_info.json)."""
    import json

    distributed = pytest.importorskip("distributed")
    cfg = parse_sweep_config(TINY, file="tiny.toml")
    with distributed.LocalCluster(n_workers=4, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        res = run_sweep(cfg, tmp_path / "dask", executor="dask", scheduler=client,
                        progress=False, figures=False)
    info = json.loads((res.out / "sweep_info.json").read_text(encoding="utf-8"))
    assert len(res.fitted_ids) == 3
    assert info["lanes"] >= 1
    assert info["compilations"] == info["lanes"]
