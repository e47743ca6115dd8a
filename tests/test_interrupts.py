"""Interrupts are interrupts; workers never outlive their parent; one writer per folder.

* A sampler that returns fewer draws than asked (nutpie and PyMC answer Ctrl-C by
  returning what they have) is never a result: it raises an interruption.
* Ctrl-C and SIGTERM end a command with exit 130/143, one line, no traceback, no
  result file, and no sampler threads left to crash the interpreter.
* Worker processes started with :func:`nbdid.runtime.process_pool` exit when their
  parent dies, SIGKILL included.
* :func:`nbdid.outputs.open_out_dir`: a second command into the same folder is refused
  at once, naming the holder; a stale lock (holder killed) is reported; a folder of a
  command that did not finish is recognised.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from nbdid.errors import OutputError
from nbdid.outputs import HOLDER_NAME, UNFINISHED_NAME, open_out_dir, unfinished_run, write_text
from nbdid.runtime import Terminated, interruption, signals_unwind

LINUX = sys.platform.startswith("linux")
NBDID = Path(sys.executable).with_name("nbdid")


def _idata(chains: int, draws: int):
    import arviz as az

    return az.from_dict(posterior={"did": np.zeros((chains, draws))})


def test_short_posterior_is_an_interruption():
    from nbdid.config import SamplerConfig
    from nbdid.models.sampling import check_complete

    cfg = SamplerConfig(draws=50, chains=2)
    check_complete(_idata(2, 50), cfg)  # complete: fine
    for chains, draws in ((2, 49), (1, 50), (3, 50)):
        with pytest.raises(KeyboardInterrupt, match="stopped early"):
            check_complete(_idata(chains, draws), cfg)


def test_cache_never_returns_a_short_posterior(monkeypatch):
    """What nutpie's blocking call and PyMC's pm.sample do on Ctrl-C (return the draws so
    far) must not come out of CompiledModelCache.sample as a result."""
    from nbdid.config import ModelConfig, SamplerConfig
    from nbdid.families import get_family
    from nbdid.models.design import build_design
    from nbdid.models.sampling import CompiledModelCache
    from nbdid.models.simulate import simulate_panel

    panel, _ = simulate_panel("poisson", n_pairs=4, did=-0.2, seed=1)
    design = build_design(panel, "crime", get_family("poisson"))
    cache = CompiledModelCache()
    monkeypatch.setattr(CompiledModelCache, "_sample_pymc", lambda self, entry, cfg: _idata(2, 7))
    with pytest.raises(KeyboardInterrupt, match="7 draws of 2 x 40"):
        cache.sample(design, ModelConfig(), SamplerConfig(backend="pymc", draws=40, chains=2))


def test_pymc_warmup_interrupt_is_an_interruption(monkeypatch):
    """Interrupted during warm-up, pm.sample swallows Ctrl-C and then fails with
    "Not enough samples to build a trace" (a traceback, exit 1, before)."""
    import pymc as pm

    from nbdid.config import ModelConfig, SamplerConfig
    from nbdid.families import get_family
    from nbdid.models.design import build_design
    from nbdid.models.sampling import CompiledModelCache
    from nbdid.models.simulate import simulate_panel

    def swallowed(**kwargs):
        raise ValueError("Not enough samples to build a trace.")

    panel, _ = simulate_panel("poisson", n_pairs=4, did=-0.2, seed=1)
    design = build_design(panel, "crime", get_family("poisson"))
    monkeypatch.setattr(pm, "sample", swallowed)
    with pytest.raises(KeyboardInterrupt, match="warm-up"):
        CompiledModelCache().sample(design, ModelConfig(), SamplerConfig(backend="pymc", draws=40))


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="POSIX signals")
def test_error_after_a_swallowed_interrupt_is_an_interruption(monkeypatch, capsys):
    """A library that catches Ctrl-C and then fails: the command still ends as
    interrupted (130, one line), not with the library's traceback."""
    import nbdid.cli.fit as cli_fit
    from nbdid.cli import main

    def run_fit(args):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            pass  # swallowed, as nutpie and PyMC do
        raise RuntimeError("Not enough samples to build a trace.")

    monkeypatch.setattr(cli_fit, "run_fit", run_fit)
    assert main(["fit", "--data", "x.csv", "--indicator", "crime", "--out", "o"]) == 130
    assert capsys.readouterr().err.strip() == "nbdid fit: interrupted"


def _swallowed_in_c_callback(sig: int) -> None:
    """Deliver ``sig`` while Python code runs inside a C callback (as LLVM calls back into
    Numba while it compiles): the handler's exception cannot leave the callback."""
    import ctypes

    @ctypes.CFUNCTYPE(None)
    def callback():
        os.kill(os.getpid(), sig)
        time.sleep(5)

    callback()


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="POSIX signals")
def test_interrupt_inside_a_c_callback_is_recorded_quietly(capsys):
    """Python prints an exception it cannot raise from a C callback ("Exception ignored
    in ...", with a traceback); an interrupt there is recorded instead, and quiet."""
    from nbdid.runtime import signals_seen

    with signals_unwind():
        _swallowed_in_c_callback(signal.SIGTERM)
        assert signals_seen() == 1
        assert isinstance(interruption(), Terminated)
    assert capsys.readouterr().err == ""


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="POSIX signals")
def test_swallowed_interrupt_while_compiling_stops_before_sampling(monkeypatch):
    """SIGTERM while Numba compiled (inside LLVM's callback) was lost: the command went
    on to sample and exited 0 with its results (seen under load in
    test_two_commands_into_one_folder).  Now it stops when the compilation returns."""
    import nutpie

    from nbdid.config import ModelConfig, SamplerConfig
    from nbdid.families import get_family
    from nbdid.models.design import build_design
    from nbdid.models.sampling import CompiledModelCache
    from nbdid.models.simulate import simulate_panel

    sampled = []

    def compile_then_swallow(model, **kwargs):
        _swallowed_in_c_callback(signal.SIGTERM)
        return object()

    monkeypatch.setattr(nutpie, "compile_pymc_model", compile_then_swallow)
    monkeypatch.setattr(nutpie, "sample", lambda *a, **k: sampled.append(1))
    panel, _ = simulate_panel("poisson", n_pairs=4, did=-0.2, seed=1)
    design = build_design(panel, "crime", get_family("poisson"))
    cache = CompiledModelCache(quiet=True)
    with pytest.raises(Terminated, match="while compiling"), signals_unwind():
        cache.sample(design, ModelConfig(), SamplerConfig(draws=40))
    assert not sampled
    assert all(entry.compiled is None for entry in cache._entries.values())


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="POSIX signals")
def test_swallowed_interrupt_before_compiling_stops_before_sampling(monkeypatch):
    """SIGTERM swallowed before the compilation (while the model was built or imports
    ran) was only noticed at the very end: the command sampled and wrote its results,
    then exited 143 (CI, test_two_commands_into_one_folder).  Now it stops before
    sampling."""
    import nutpie

    from nbdid.config import ModelConfig, SamplerConfig
    from nbdid.families import get_family
    from nbdid.models.design import build_design
    from nbdid.models.sampling import CompiledModelCache
    from nbdid.models.simulate import simulate_panel

    sampled = []
    monkeypatch.setattr(nutpie, "compile_pymc_model", lambda model, **kwargs: object())
    monkeypatch.setattr(nutpie, "sample", lambda *a, **k: sampled.append(1))
    panel, _ = simulate_panel("poisson", n_pairs=4, did=-0.2, seed=1)
    design = build_design(panel, "crime", get_family("poisson"))
    cache = CompiledModelCache(quiet=True)
    with pytest.raises(Terminated, match="before sampling"), signals_unwind():
        _swallowed_in_c_callback(signal.SIGTERM)
        cache.sample(design, ModelConfig(), SamplerConfig(draws=40))
    assert not sampled


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="POSIX signals")
def test_command_asked_to_stop_puts_no_file_in_place(tmp_path):
    """Whatever a library swallowed, a command that received SIGTERM writes no result:
    the temporary file is removed and the target never appears."""
    target = tmp_path / "crime.nc"
    with pytest.raises(Terminated, match="before writing"), signals_unwind():
        _swallowed_in_c_callback(signal.SIGTERM)
        write_text("complete but unwanted\n", target)
    assert list(tmp_path.iterdir()) == []
    # outside a command (Python API, no handlers) an earlier command's record is no
    # reason to refuse
    write_text("fine\n", target)
    assert target.read_text() == "fine\n"


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="POSIX signals")
def test_command_that_swallowed_an_interrupt_does_not_exit_0(monkeypatch, capsys):
    """A command whose interrupt a library swallowed, and that then finished, ends as
    terminated (143, one line), not as a success."""
    import nbdid.cli.fit as cli_fit
    from nbdid.cli import main

    def run_fit(args):
        _swallowed_in_c_callback(signal.SIGTERM)
        return 0

    monkeypatch.setattr(cli_fit, "run_fit", run_fit)
    assert main(["fit", "--data", "x.csv", "--indicator", "crime", "--out", "o"]) == 143
    assert capsys.readouterr().err.strip() == "nbdid fit: terminated"


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="POSIX signals")
def test_signals_unwind_and_are_recorded():
    with pytest.raises(Terminated), signals_unwind():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert isinstance(interruption("x"), Terminated)  # the last signal was SIGTERM
    with pytest.raises(KeyboardInterrupt), signals_unwind():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    got = interruption("x")
    assert isinstance(got, KeyboardInterrupt) and not isinstance(got, Terminated)
    # handlers are restored afterwards
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None) or callable(
        signal.getsignal(signal.SIGTERM))


def _wait_for(pred, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        if proc is not None and proc.poll() is not None:
            return pred()
        time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
def panel_csv(tmp_path_factory):
    from nbdid.models.simulate import simulate_panel

    panel, _ = simulate_panel("poisson", n_pairs=6, did=-0.4, seed=3)
    path = tmp_path_factory.mktemp("panel") / "panel.csv"
    panel.to_csv(path, index=False)
    return path


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="POSIX signals")
@pytest.mark.parametrize(("sig", "code", "word"), [
    (signal.SIGINT, 130, "interrupted"),
    (signal.SIGTERM, 143, "terminated"),
])
def test_signal_during_nutpie_sampling(tmp_path, panel_csv, sig, code, word):
    """Ctrl-C (to the process group, as a terminal sends it) or SIGTERM while nutpie
    samples: exit 130/143, one line, no traceback, no result file, nothing crashing at
    interpreter exit (before: nutpie swallowed the signal, the fit went on with a short
    posterior, logged "sampled 4 x N draws" and crashed in the diagnostics, exit 1)."""
    if not NBDID.exists():
        pytest.skip("nbdid console script not installed next to this Python")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [str(NBDID), "fit", "--data", str(panel_csv), "--indicator", "crime", "--out", str(out),
         "--draws", "200000", "--tune", "50", "--chains", "2", "--seed", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    lines: list[str] = []
    try:
        while True:  # wait until the model is compiled: sampling starts right after
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "compiled in" in line:
                break
        assert any("compiled in" in ln for ln in lines), "".join(lines)
        time.sleep(2)  # past warm-up (50 draws): an interrupt now leaves a short posterior
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
        _, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    err = "".join(lines) + rest
    assert proc.returncode == code, err
    assert rest.strip().splitlines()[-1] == f"nbdid fit: {word}", err
    for bad in ("Traceback", "Fatal Python error", "panicked", "sampled"):
        assert bad not in rest, err
    assert not (out / "crime.nc").exists() and not (out / "summary.csv").exists()


# ----------------------------------------------------------------------------------------
# no orphans
# ----------------------------------------------------------------------------------------

PARENT = textwrap.dedent("""
    import sys, time
    from nbdid.runtime import process_pool
    if __name__ == "__main__":
        pool = process_pool(2)
        futs = [pool.submit(time.sleep, 600) for _ in range(2)]
        time.sleep(1)
        print(" ".join(str(p) for p in pool._processes), flush=True)
        time.sleep(600)
""")


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


@pytest.mark.skipif(not LINUX, reason="reads /proc")
def test_pool_workers_die_with_a_sigkilled_parent(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT, encoding="utf-8")
    with subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True) as proc:
        try:
            workers = [int(x) for x in proc.stdout.readline().split()]
            assert len(workers) == 2 and all(_alive(p) for p in workers)
            proc.kill()
            proc.wait(timeout=30)
            assert _wait_for(lambda: not any(_alive(p) for p in workers), 15), \
                "workers outlived the parent"
        finally:
            if proc.poll() is None:
                proc.kill()


def _procs(field: int, value: int) -> list[int]:
    """Live processes whose ``/proc/PID/stat`` field ``field`` (after the command name:
    1 = parent PID, 3 = session id) equals ``value``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[field]) == value and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    return _procs(1, pid)


def _session(sid: int) -> list[int]:
    """Live processes of session ``sid``."""
    return _procs(3, sid)


SWEEP_TOML = """
[sweep]
indicators = ["burglary"]
seed = 11
[sweep.sampler]
backend = "pymc"
draws = 20000
tune = 200
chains = 1
[grid.matching]
published = true
covariates = [["mean_rank", "share_most_deprived_decile"]]
distance = ["mahalanobis"]
"""


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="reads /proc")
@pytest.mark.parametrize("command", ["sensitivity", "design"])
def test_sigkilled_command_leaves_no_workers(tmp_path, command):
    """SIGKILL (or an out-of-memory kill) of ``nbdid sensitivity`` or ``nbdid design``
    while its worker processes fit: the workers die too (before: they went on at full
    CPU under PID 1)."""
    if not NBDID.exists():
        pytest.skip("nbdid console script not installed next to this Python")
    if command == "sensitivity":
        cfg = tmp_path / "sweep.toml"
        cfg.write_text(SWEEP_TOML, encoding="utf-8")
        argv = [str(NBDID), "sensitivity", str(cfg), "--out", str(tmp_path / "out"), "--quiet",
                "--workers", "2"]
    else:
        argv = [str(NBDID), "design", "--indicator", "crime", "--areas", "10,20", "--sims", "50",
                "--sigma-change", "0.2", "--draws", "2000", "--tune", "200", "--chains", "1",
                "--workers", "2", "--out", str(tmp_path / "out"), "--quiet"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        # the workers are started (spawned interpreters: children of the command)
        def started() -> bool:
            return len([c for c in _children(proc.pid)
                        if "python" in Path(f"/proc/{c}/cmdline").read_bytes().decode(
                            errors="replace")]) >= 1
        assert _wait_for(started, 600, proc), (
            f"no workers started: rc {proc.poll()}\n"
            + (proc.stderr.read()[-3000:] if proc.poll() is not None else ""))
        time.sleep(3)  # let them get busy
        workers = _children(proc.pid)
        assert workers and all(_alive(w) for w in workers)
        proc.kill()
        proc.wait(timeout=30)
        assert _wait_for(lambda: not any(_alive(w) for w in workers), 20), \
            f"workers {[w for w in workers if _alive(w)]} outlived the SIGKILLed command"
        assert _wait_for(lambda: not _session(proc.pid), 20), _session(proc.pid)
    finally:
        for pid in _session(proc.pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()


def test_die_with_parent_watches_the_parent_elsewhere(monkeypatch):
    """Without prctl (macOS, Windows) a watcher thread exits the worker."""
    import nbdid.runtime as rt

    started = []
    monkeypatch.setattr(rt, "_set_parent_death_signal", lambda sig: False)
    monkeypatch.setattr(rt, "_watch_parent", lambda pid: started.append(pid))
    rt.die_with_parent(1234)
    assert started == [1234]


# ----------------------------------------------------------------------------------------
# one writer per output folder
# ----------------------------------------------------------------------------------------

HOLD = textwrap.dedent("""
    import sys, time
    from nbdid.outputs import open_out_dir
    with open_out_dir(sys.argv[1], ["a.csv"], force=False, command="run"):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def test_second_writer_is_refused_naming_the_holder(tmp_path):
    script = tmp_path / "hold.py"
    script.write_text(HOLD, encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(script), str(out), "30"], stdout=subprocess.PIPE,
                            text=True)
    with proc:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(OutputError) as info, open_out_dir(out, ["b.csv"], force=True,
                                                              command="fit"):
            pass
        msg = str(info.value)
        assert "in use" in msg and f"PID {proc.pid}" in msg and "nbdid run" in msg
        assert "started" in msg and "\n" not in msg
        proc.kill()
        proc.wait()
    # the holder was killed: its lock is free again, and the next command is told
    with open_out_dir(out, ["b.csv"], force=False, command="fit") as session:
        assert session.stale_lock is not None and session.stale_lock["pid"] == proc.pid
        assert session.previous is not None  # its unfinished-marker
    assert not (out / HOLDER_NAME).exists() and unfinished_run(out) is None


def _contend(out: str, rounds: int, counter: str) -> int:
    """Enter the folder ``rounds`` times; count overlaps with an O_EXCL token file."""
    overlaps = 0
    for _ in range(rounds):
        while True:
            try:
                with open_out_dir(out, [], force=True, command="test"):
                    try:
                        fd = os.open(counter, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                    except FileExistsError:
                        overlaps += 1
                    else:
                        os.close(fd)
                        time.sleep(0.001)
                        os.unlink(counter)
                break
            except OutputError:
                time.sleep(0.001)
    return overlaps


def test_lock_is_exclusive_under_contention(tmp_path):
    out = tmp_path / "contended"
    out.mkdir()
    ctx = mp.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = pool.starmap(_contend, [(str(out), 40, str(tmp_path / "token"))] * 3)
    assert results == [0, 0, 0]
    assert sorted(p.name for p in out.iterdir()) == []  # lock files removed


def test_unfinished_folder_is_recognised_and_replaceable(tmp_path):
    out = tmp_path / "o"
    with pytest.raises(KeyboardInterrupt), open_out_dir(out, ["a.csv", "b.csv"], force=False,
                                                        command="fit") as s:
        write_text("1\n", out / "a.csv")
        s.record(step=1)
        raise KeyboardInterrupt
    marker = unfinished_run(out)
    assert marker["command"] == "fit" and marker["state"] == {"step": 1}
    assert json.loads((out / UNFINISHED_NAME).read_text())["names"] == ["a.csv", "b.csv"]
    # the next command may replace the unfinished files without --force ...
    with open_out_dir(out, ["a.csv", "b.csv"], force=False, command="fit") as s:
        assert s.previous["state"] == {"step": 1}
        write_text("2\n", out / "a.csv")
        write_text("2\n", out / "b.csv")
    assert unfinished_run(out) is None
    # ... but complete results only with force
    with pytest.raises(OutputError, match="--force"), open_out_dir(out, ["a.csv"], force=False,
                                                                    command="fit"):
        pass
    # a folder created by a command interrupted before its first file is removed again
    fresh = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt), open_out_dir(fresh, ["a.csv"], force=False,
                                                        command="fit"):
        raise KeyboardInterrupt
    assert not fresh.exists()


def test_leftover_temporary_files_are_cleaned(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "sub").mkdir()
    junk = [out / ".summary.csv.0123456789ab.tmp", out / "sub" / ".x.nc.abcdef12.tmp",
            out / ".nbdid-probe-xyz"]
    for j in junk:
        j.write_text("half")
    keep = out / ".user-hidden-file"
    keep.write_text("mine")
    with open_out_dir(out, [], force=False, command="fit"):
        pass
    assert not any(j.exists() for j in junk) and keep.exists()


@pytest.mark.skipif(not LINUX, reason="POSIX signals")
def test_two_commands_into_one_folder(tmp_path, panel_csv):
    """Two ``nbdid fit`` into the same --out: the second is refused at once, naming the
    first (before: both exited 0 and both said "wrote"; one result was lost)."""
    if not NBDID.exists():
        pytest.skip("nbdid console script not installed next to this Python")
    out = tmp_path / "shared"
    argv = [str(NBDID), "fit", "--data", str(panel_csv), "--indicator", "crime", "--out", str(out),
            "--draws", "200000", "--chains", "1", "--quiet"]
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True) as first:
        try:
            assert _wait_for(lambda: (out / HOLDER_NAME).exists(), 300, first), \
                first.stderr.read() if first.poll() is not None else "no lock taken"
            # the first is paused while it holds the folder, so that it cannot finish
            # before the second has tried (on a fast machine it did: exit 0, not 143)
            os.kill(first.pid, signal.SIGSTOP)
            second = subprocess.run(argv, capture_output=True, text=True, timeout=300)
            assert second.returncode == 2, second.stderr
            msg = second.stderr.strip()
            assert msg.count("\n") == 0 and "in use" in msg and f"PID {first.pid}" in msg, msg
            assert first.poll() is None  # the first goes on
        finally:
            first.terminate()  # pending until it runs again
            os.kill(first.pid, signal.SIGCONT)
            first.wait(timeout=120)
    assert first.returncode == 143
    assert not (out / "crime.nc").exists()
