"""Figures drawn in a worker process (``nbdid.figures.render.FigureRenderer``, used by
``nbdid run`` while it fits) are the very files drawn in the calling process; errors
and warnings of a worker reach the caller; an interrupted renderer stops its workers;
a run that fails in a worker ends with the usual one-line error and no figure written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
from matplotlib.figure import Figure

import nbdid.figures.render as render
from nbdid.config import load_config
from nbdid.errors import InputError
from nbdid.figures import plot_tipping_bayes
from nbdid.figures.render import FigureRenderer, draw, draw_in_worker
from nbdid.figures.style import FORMATS, figure_bytes
from nbdid.outputs import UNFINISHED_NAME
from nbdid.workflow.replicate import replicate

LINUX = sys.platform.startswith("linux")


@pytest.fixture(scope="module")
def rep():
    return replicate(("crime", "burglary"))


def _recipes(renderer: FigureRenderer, rep) -> None:
    renderer.submit(rep.figures)  # figures by stem (a bound method: pickled with its data)
    renderer.submit(plot_tipping_bayes, rep.tables["tipping_bayes_curve.csv"], stem="again")


def test_a_worker_draws_the_same_bytes_as_the_caller(rep):
    with FigureRenderer(1) as renderer:
        _recipes(renderer, rep)
        in_worker = renderer.results()
    here = FigureRenderer(0)
    _recipes(here, rep)
    assert in_worker == here.results()
    assert set(in_worker) == {"tipping_bayes", "again"}
    assert all(set(files) == set(FORMATS) for files in in_worker.values())
    assert in_worker["tipping_bayes"] == figure_bytes(rep.figures()["tipping_bayes"])


def test_an_error_in_a_worker_is_raised_as_it_was(rep):
    with pytest.raises(InputError) as here:
        load_config("/nonexistent/x.toml")
    with FigureRenderer(1) as renderer:
        renderer.submit(rep.figures)
        renderer.submit(load_config, "/nonexistent/x.toml", stem="bad")
        # given to the worker before the results are asked for
        deadline = time.monotonic() + 120
        while renderer._waiting and time.monotonic() < deadline:
            time.sleep(0.1)
        with pytest.raises(InputError) as there:
            renderer.results()
    assert str(there.value) == str(here.value)


class _Pool:
    """A stand-in process pool whose futures are settled by ``settle``."""

    def __init__(self, settle):
        self.settle = settle
        self.submitted = 0

    def submit(self, fn, *args):
        self.submitted += 1
        fut: Future = Future()
        self.settle(fut, fn, args)
        return fut

    def shutdown(self, wait=True, cancel_futures=False):
        pass


def test_a_dead_worker_has_its_figures_drawn_here(monkeypatch, rep):
    def dead(fut, fn, args):
        fut.set_exception(BrokenProcessPool("killed"))

    monkeypatch.setattr(render, "process_pool", lambda *a, **k: _Pool(dead))
    renderer = FigureRenderer(1)
    renderer.submit(rep.figures)
    assert renderer.results()["tipping_bayes"] == figure_bytes(rep.figures()["tipping_bayes"])


def test_recipes_no_worker_started_are_drawn_here(monkeypatch, rep):
    started: list[Future] = []
    pool = _Pool(lambda fut, fn, args: started.append(fut))  # settled below
    monkeypatch.setattr(render, "process_pool", lambda *a, **k: pool)
    renderer = FigureRenderer(1)
    renderer.submit(rep.figures)
    renderer.submit(plot_tipping_bayes, rep.tables["tipping_bayes_curve.csv"], stem="again")
    assert pool.submitted == 1 and len(renderer._waiting) == 1  # one recipe per worker
    fut = started[0]
    fut.set_running_or_notify_cancel()
    drawn = draw(rep.figures, (), {}, None)
    # the worker finishes its recipe while the caller draws the waiting one
    timer = threading.Timer(1.0, fut.set_result, args=((drawn, []),))
    timer.start()
    try:
        out = renderer.results()
    finally:
        timer.cancel()
    assert set(out) == {"tipping_bayes", "again"}
    assert pool.submitted == 1  # "again" was drawn here, not given to the worker


def _warns() -> Figure:
    warnings.warn("drawn with a warning", UserWarning, stacklevel=1)
    return Figure()


def test_warnings_follow_the_callers_filters_and_are_issued_again(monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        filters = list(warnings.filters)
    drawn, caught = draw_in_worker(_warns, (), {}, "w", None, {}, filters)
    assert set(drawn) == {"w"} and len(caught) == 1
    assert str(caught[0][0]) == "drawn with a warning" and caught[0][1] is UserWarning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        filters = list(warnings.filters)
    with pytest.raises(UserWarning):
        draw_in_worker(_warns, (), {}, "w", None, {}, filters)

    def settle(fut, fn, args):
        fut.set_running_or_notify_cancel()
        fut.set_result(({"w": {}}, caught))

    monkeypatch.setattr(render, "process_pool", lambda *a, **k: _Pool(settle))
    renderer = FigureRenderer(1)
    renderer.submit(_warns, stem="w")
    with pytest.warns(UserWarning, match="drawn with a warning"):
        renderer.results()


def test_the_workers_draw_with_the_callers_rcparams():
    import matplotlib as mpl

    with mpl.rc_context({"hatch.linewidth": 3.5}):
        changes = render.rc_changes()
    assert changes.get("hatch.linewidth") == 3.5 and "backend" not in changes
    assert "hatch.linewidth" not in render.rc_changes()


@pytest.mark.skipif(not LINUX, reason="reads /proc")
def test_an_interrupted_renderer_stops_its_workers_at_once():
    with pytest.raises(KeyboardInterrupt), FigureRenderer(1) as renderer:
        renderer.submit(time.sleep, 600, stem="slow")
        pids = list(renderer._pool._processes)
        assert pids
        raise KeyboardInterrupt
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.1)
    assert not any(Path(f"/proc/{p}").exists() for p in pids)


# ----------------------------------------------------------------------------------------
# nbdid run with a worker that fails
# ----------------------------------------------------------------------------------------

BREAK_WORKER = textwrap.dedent("""
    # test hook: figures drawn in a worker process fail (those drawn by nbdid run itself do not)
    import multiprocessing
    import nbdid.figures.render as render
    from nbdid.errors import OutputError

    _draw = render.draw

    def draw(*args, **kwargs):
        if multiprocessing.parent_process() is not None:
            raise OutputError("figure worker: no space left on device (test)")
        return _draw(*args, **kwargs)

    render.draw = draw
""")

NBDID = Path(sys.executable).with_name("nbdid")


@pytest.mark.skipif(not LINUX, reason="POSIX console script")
def test_run_with_a_failing_worker_ends_with_one_line_and_writes_no_figure(tmp_path):
    if not NBDID.exists():
        pytest.skip("nbdid console script not installed next to this Python")
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(BREAK_WORKER, encoding="utf-8")
    cfg = tmp_path / "run.toml"
    cfg.write_text('indicators = ["burglary"]\n[sampler]\ndraws = 100\ntune = 100\nchains = 2\n')
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(hook)}
    proc = subprocess.run([str(NBDID), "run", "--config", str(cfg), "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=900)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert lines[-1] == "nbdid run: error: figure worker: no space left on device (test)"
    assert "Traceback" not in proc.stderr
    assert not list((out / "figures").glob("*")), "a figure was written"
    assert not [p for p in out.rglob(".*") if p.is_file() and p.name != UNFINISHED_NAME]
    assert (out / UNFINISHED_NAME).is_file()  # recognised as unfinished


# ----------------------------------------------------------------------------------------
# a run saved with its figures drawn by a worker, and drawn at save time
# ----------------------------------------------------------------------------------------

TINY_RUN = 'indicators = ["burglary"]\n[sampler]\ndraws = 100\ntune = 100\nchains = 2\n'


def _files(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.suffix in (".md", ".html"):  # the report's own time and folder
                data = re.sub(rb"(Report made|Run folder)[^\n]*", b"", data)
            out[str(p.relative_to(root))] = data
    return out


@pytest.mark.filterwarnings("ignore:.*BLAS.*:UserWarning")
def test_a_run_saves_the_same_files_drawn_by_a_worker_or_at_save_time(tmp_path):
    from nbdid.workflow.report import report_pngs
    from nbdid.workflow.run import run, run_outputs

    cfg = tmp_path / "run.toml"
    cfg.write_text(TINY_RUN, encoding="utf-8")
    with FigureRenderer(1, also=report_pngs) as renderer:  # as nbdid run draws them
        res = run(config=cfg, renderer=renderer)
        res.save(tmp_path / "worker")
    res.renderer = None  # the same result, every figure drawn by save()
    res.save(tmp_path / "here")
    worker, here = _files(tmp_path / "worker"), _files(tmp_path / "here")
    assert sorted(worker) == sorted(run_outputs(["burglary"]))
    assert worker.keys() == here.keys()
    assert [k for k in worker if worker[k] != here[k]] == []
