"""Safe result writing: never overwrite a user's results silently, never leave a
half-written file behind.

Every command that writes results first calls :func:`prepare_out_dir` with the file
names it is going to write (so that a clash is reported *before* any work is done),
then writes each file with one of the ``write_*`` helpers, which write to a
temporary file in the same folder and atomically rename it into place.

Commands hold their output folder with :func:`open_out_dir`: one writer per folder (a
lock naming its holder), and a marker that says the folder's files are not a complete
result until the command has written its last file (:func:`unfinished_run`), so that a
command interrupted or killed at any point leaves either its previous complete results
or a folder recognised as unfinished, which the next command may replace or resume.

Files are created with the user's umask (``0644`` under the usual ``022``), like any
file a program writes, so colleagues on a shared drive can open them: the temporary
file is created with ``os.open(..., 0o666)`` (the kernel applies the umask) instead of
:func:`tempfile.mkstemp`, whose files are always ``0600``.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import secrets
import socket
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nbdid.errors import OutputError
from nbdid.runtime import raise_if_interrupted

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure


def prepare_out_dir(out: str | os.PathLike[str], names: Iterable[str], *, force: bool) -> Path:
    """Create ``out`` if needed and check that ``names`` can be written there.

    Parameters
    ----------
    out
        Output folder.
    names
        Files (relative to ``out``) the command will write.
    force
        Allow overwriting existing files.

    Returns
    -------
    Path
        The output folder.

    Raises
    ------
    OutputError
        If the folder cannot be created or written, or a file exists and ``force`` is false.
    """
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise OutputError(f"output folder {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create output folder {path}: {err.strerror or err}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {path} is not writable")
    # probe: permissions can lie (e.g. read-only mounts)
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".nbdid-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OutputError(f"output folder {path} is not writable: {err.strerror or err}") from None
    session = _SESSIONS.get(str(path.resolve()))
    if session is not None:  # checked when the command took the folder (open_out_dir)
        names = [n for n in names if n not in session.names]
    if not force:
        _refuse_existing(path, sorted(n for n in names if (path / n).exists()))
    return path


def new_temp_file(folder: str | os.PathLike[str], *, prefix: str, suffix: str = "") -> Path:
    """Create a new empty file with a unique name in ``folder`` and return its path.

    Unlike :func:`tempfile.mkstemp` (always mode ``0600``), the file gets the mode the
    user's umask gives a new file (``0o666 & ~umask``: ``0644`` under ``022``), so a
    file renamed into place from it is as readable as any other file the user writes.
    """
    folder = Path(folder)
    for _ in range(100):
        # the writer's PID in the name lets a later command remove the file once its
        # writer is dead (:func:`remove_dead_temps`), without touching a live one's
        path = folder / f"{prefix}{secrets.token_hex(6)}-{os.getpid()}{suffix}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
        os.close(fd)
        return path
    raise FileExistsError(f"no unused temporary file name in {folder}")  # pragma: no cover


_DEAD_TEMP = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}-(?P<pid>[0-9]+)\.tmp$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: alive
        return True
    return True


def remove_dead_temps(folder: str | os.PathLike[str], names: Iterable[str] | None = None) -> int:
    """Remove the temporary files (:func:`new_temp_file`) in ``folder`` whose writer is
    no longer running, e.g. a download killed by SIGKILL, and return how many.

    Only files named like nbdid's temporaries for ``names`` (all names when ``None``)
    are considered, and only those whose writer's PID is gone: a live writer's file,
    or anything else in a user's folder, is never touched.  (A PID reused since is
    taken for alive; the file then stays until a later call.)
    """
    folder = Path(folder)
    wanted = set(names) if names is not None else None
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        m = _DEAD_TEMP.match(entry.name)
        if m is None or (wanted is not None and m["name"] not in wanted):
            continue
        if int(m["pid"]) == os.getpid() or _alive(int(m["pid"])):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed += 1
    return removed


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    On any exception the temporary file is removed and ``target`` is left untouched.  A
    command that has received Ctrl-C or SIGTERM puts no file in place, even when a
    library swallowed the signal (:func:`nbdid.runtime.raise_if_interrupted`).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = new_temp_file(target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        yield tmp_path
        raise_if_interrupted(f"stopped before writing {target}")
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def write_csv(df: pd.DataFrame, target: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write a DataFrame as CSV atomically (``index=False`` unless given)."""
    kwargs.setdefault("index", False)
    with atomic_path(target) as tmp:
        df.to_csv(tmp, **kwargs)
    return Path(target)


def write_text(text: str, target: str | os.PathLike[str]) -> Path:
    """Write UTF-8 text atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_bytes(data: bytes, target: str | os.PathLike[str]) -> Path:
    """Write bytes atomically (e.g. a figure drawn elsewhere, see
    :class:`nbdid.figures.render.FigureRenderer`)."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_figure(fig: Figure, target: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Save a matplotlib figure atomically; the format follows the target's suffix."""
    target = Path(target)
    kwargs.setdefault("dpi", 150)
    kwargs.setdefault("bbox_inches", "tight")
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format=target.suffix.lstrip(".") or "png", **kwargs)
    return target


NETCDF_COMPRESSION: dict[str, Any] = {"zlib": True, "complevel": 4, "shuffle": True}
"""HDF5 filters of every array :func:`write_netcdf` writes (lossless).  The byte shuffle
lets zlib drop the all-zero low bits of draws rounded to the precision their posterior needs
(:func:`nbdid.models.sampling.storage_precision`)."""

PREDICTIVE_DRAWS = 1000
"""Draws of the ``posterior_predictive`` group :func:`write_netcdf` keeps by default
(thinned evenly along ``draw``; the replicates are recomputable from the posterior)."""


def write_netcdf(idata: Any, target: str | os.PathLike[str], *,
                 predictive_draws: int | None = PREDICTIVE_DRAWS) -> Path:
    """Write an ArviZ InferenceData (or xarray Dataset) to compressed NetCDF atomically.

    Parameters
    ----------
    idata
        InferenceData (one NetCDF group per ArviZ group, read back with
        ``arviz.from_netcdf``) or an xarray Dataset.
    target
        File written (replaced atomically).
    predictive_draws
        Keep at most this many chain x draw replicates of ``posterior_predictive``
        (every k-th draw of each chain); ``None`` keeps all and ``0`` drops the group.
    """
    # imported here: xarray loads only when results are built or written (table-only commands skip it)
    import xarray as xr

    def encoding(ds: Any) -> dict[str, dict[str, Any]]:
        return {name: dict(NETCDF_COMPRESSION) for name, v in ds.data_vars.items()
                if v.ndim > 0 and v.dtype.kind in "biuf"}

    with atomic_path(target) as tmp:
        if isinstance(idata, xr.Dataset):
            idata.to_netcdf(str(tmp), engine="h5netcdf", encoding=encoding(idata))
            return Path(target)
        mode = "w"
        attrs = getattr(idata, "attrs", None)
        if attrs:
            xr.Dataset(attrs=dict(attrs)).to_netcdf(str(tmp), mode=mode, engine="h5netcdf")
            mode = "a"
        for group in idata.groups():
            ds = idata[group]
            if group == "posterior_predictive" and predictive_draws is not None:
                if predictive_draws <= 0:
                    continue
                n = int(ds.sizes.get("chain", 1)) * int(ds.sizes.get("draw", 1))
                step = -(-n // predictive_draws)
                if step > 1 and "draw" in ds.dims:
                    ds = ds.isel(draw=slice(None, None, step))
            ds.to_netcdf(str(tmp), mode=mode, group=group, engine="h5netcdf",
                         encoding=encoding(ds))
            mode = "a"
    return Path(target)


# ----------------------------------------------------------------------------------------
# One writer per output folder, and folders of commands that did not finish
# ----------------------------------------------------------------------------------------

LOCK_NAME = ".nbdid.lock"
"""Lock file of an output folder (``filelock``; the kernel releases it when its holder
dies, whatever the signal)."""
HOLDER_NAME = ".nbdid.lock.json"
"""Who holds the lock (PID, host, command, start time); left behind only by a holder
that was killed, which the next command reports as a stale lock."""
UNFINISHED_NAME = ".nbdid-unfinished.json"
"""Marker of a command that started writing into the folder and has not finished:
written before the first result file and removed after the last one.  A folder that
holds it holds no complete result set (see :func:`unfinished_run`)."""

_TEMP_LEFTOVER = re.compile(r"^\..+\.[A-Za-z0-9_]{6,16}(-[0-9]+)?\.tmp$|^\.nbdid-probe-")
_SESSIONS: dict[str, OutputSession] = {}


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe_holder(info: dict[str, Any] | None) -> str:
    """``"nbdid run, PID 1234 on host, started 2025-07-01T10:00:00+01:00"``."""
    if not info:
        return "another nbdid command"
    return (f"nbdid {info.get('command', '?')}, PID {info.get('pid', '?')} on "
            f"{info.get('host', '?')}, started {info.get('started', '?')}")


def unfinished_run(out: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The marker of a command that did not finish writing into ``out`` (killed,
    interrupted or failed), or ``None``.

    Commands that read a results folder (e.g. a report) should refuse or flag a folder
    with this marker: its files are not a complete result set.  While the writing
    command is still running the marker is there too (``"pid"`` says which process).
    """
    return _read_json(Path(out) / UNFINISHED_NAME)


@dataclass
class OutputSession:
    """An output folder held by this process (see :func:`open_out_dir`).

    Attributes
    ----------
    folder
        The output folder.
    command
        The command writing it (``"run"``, ``"fit"``, ...).
    names
        The files the command may write (checked for clashes when it started).
    previous
        The marker of an earlier command into this folder that did not finish (its
        ``state`` is what that command recorded with :meth:`record`), or ``None``.
    stale_lock
        Holder information left by an earlier command that was killed while holding
        the lock (its PID is gone), or ``None``.
    created
        Whether the folder was created by this session.
    """

    folder: Path
    command: str
    names: set[str]
    previous: dict[str, Any] | None = None
    stale_lock: dict[str, Any] | None = None
    created: bool = False
    _marker: dict[str, Any] = field(default_factory=dict, repr=False)

    def record(self, **state: Any) -> None:
        """Store progress in the folder's unfinished-marker (atomically), so that a
        command resuming after an interruption can read it from :attr:`previous`."""
        self._marker.setdefault("state", {}).update(state)
        write_text(json.dumps(self._marker, indent=2, default=str) + "\n",
                   self.folder / UNFINISHED_NAME)

    @property
    def state(self) -> dict[str, Any]:
        """What this session recorded so far."""
        return dict(self._marker.get("state", {}))


def _clean_leftovers(folder: Path) -> None:
    """Remove temporary files of writers that were killed (the folder is locked: no
    live nbdid process writes there)."""
    for p in folder.rglob(".*"):
        if p.is_file() and _TEMP_LEFTOVER.match(p.name):
            with contextlib.suppress(OSError):
                p.unlink()


def _only_bookkeeping(folder: Path) -> bool:
    keep = {LOCK_NAME, HOLDER_NAME, UNFINISHED_NAME}
    return all(p.name in keep for p in folder.iterdir())


@contextlib.contextmanager
def open_out_dir(out: str | os.PathLike[str], names: Iterable[str], *, force: bool,
                 command: str, clean: Literal["folder", "names"] = "folder",
                 ) -> Iterator[OutputSession]:
    """Hold ``out`` for one command: create it, lock it, check ``names`` for clashes.

    * A second command into the same folder (another process, another host on a
      shared drive) is refused at once, naming the holder (PID, host, start time).
    * The folder carries a marker (:data:`UNFINISHED_NAME`) from the start until the
      block ends without an exception, so a folder of a command that was interrupted
      or killed is recognised as unfinished (:func:`unfinished_run`); its files may be
      replaced by the next command without ``--force`` (they were never a complete
      result), and what it recorded (:meth:`OutputSession.record`) is in
      :attr:`OutputSession.previous`.
    * Files from completed commands are never overwritten without ``force``.
    * A folder this command created and left empty (e.g. interrupted before its first
      file) is removed again.

    * Temporary files of killed writers are removed: every nbdid temporary in the
      folder and its subfolders (``clean="folder"``, for folders nbdid's commands own),
      or only those of ``names`` (``clean="names"``, for a user's folder that merely
      receives a few files, e.g. ``nbdid build --out data/panel.csv``).

    Within the block :func:`prepare_out_dir` (the ``save`` methods) accepts ``names``
    without ``force``: they were checked here.  Nested calls for the same folder in one
    process share the session.

    Raises
    ------
    OutputError
        If the folder cannot be written, is held by another command, or holds
        results and ``force`` is false.
    """
    path = Path(out)
    key = str(path.resolve())
    names = set(names)
    active = _SESSIONS.get(key)
    if active is not None:  # nested: the outer session holds the folder
        fresh = names - active.names
        if not force:
            _refuse_existing(path, sorted(n for n in fresh if (path / n).exists()))
        active.names |= fresh
        yield active
        return
    created = not path.exists()
    prepare_out_dir(path, (), force=True)  # create, check writable
    lock = _lock_folder(path)
    session: OutputSession | None = None
    ok = False
    try:
        # holder information left by a command killed while it held the lock (the
        # kernel released its lock; its PID is gone)
        stale = _read_json(path / HOLDER_NAME)
        holder = {"command": command, "pid": os.getpid(), "host": socket.gethostname(),
                  "started": _now()}
        write_text(json.dumps(holder, indent=2) + "\n", path / HOLDER_NAME)
        previous = unfinished_run(path)
        if clean == "folder":
            _clean_leftovers(path)
        else:
            for name in names:
                remove_dead_temps((path / name).parent, [Path(name).name])
        exempt = set(previous.get("names", [])) if previous else set()
        if not force:
            _refuse_existing(path, sorted(n for n in names - exempt if (path / n).exists()))
        session = OutputSession(path, command, names, previous=previous, stale_lock=stale,
                                created=created)
        # the earlier unfinished command's progress stays until this one records its own
        carried = dict(previous.get("state", {})) if previous else {}
        session._marker = {**holder, "names": sorted(names | exempt), "state": carried}
        session.record()
        _SESSIONS[key] = session
        yield session
        ok = True
    finally:
        _SESSIONS.pop(key, None)
        with contextlib.suppress(OSError):
            if ok:
                (path / UNFINISHED_NAME).unlink(missing_ok=True)
            elif session is not None and session.previous is None and \
                    (path / UNFINISHED_NAME).exists() and _only_bookkeeping(path):
                (path / UNFINISHED_NAME).unlink()  # nothing was written
            (path / HOLDER_NAME).unlink(missing_ok=True)
        # the lock file goes first (a command that opened it meanwhile finds its inode
        # unlinked and retries, see _lock_folder), then the lock
        if not getattr(lock, "nbdid_keep_file", False):
            with contextlib.suppress(OSError):
                (path / LOCK_NAME).unlink()
        lock.release()
        if created and not ok:
            with contextlib.suppress(OSError):
                if _only_bookkeeping(path):
                    for p in path.iterdir():
                        p.unlink()
                    path.rmdir()


def _lock_folder(path: Path) -> Any:
    """Take the folder's lock at once (``filelock``), or raise naming its holder.

    The lock file is removed on release, so a lock taken on a file that was unlinked
    in between (its inode no longer at the path) is dropped and taken again.
    """
    # imported here: filelock loads only when a folder is locked (keeps `import nbdid` light)
    from filelock import FileLock, Timeout

    target = path / LOCK_NAME
    for _ in range(20):
        unlinked: list[bool] = []

        def check(fd: int, unlinked: list[bool] = unlinked) -> None:
            try:
                same = os.stat(target).st_ino == os.fstat(fd).st_ino
            except OSError:
                same = False
            if not same:
                unlinked.append(True)

        try:
            lock = FileLock(str(target), timeout=0, on_acquired=check)
        except TypeError:  # filelock < 4 (no on_acquired): the lock file is never removed
            lock = FileLock(str(target), timeout=0)
            lock.nbdid_keep_file = True
        try:
            lock.acquire(timeout=0)
        except Timeout:
            holder = _read_json(path / HOLDER_NAME)
            raise OutputError(
                f"{path} is in use by another nbdid command ({describe_holder(holder)}); wait "
                "for it to finish or choose another --out"
            ) from None
        if not unlinked:
            return lock
        lock.release()
    raise OutputError(f"cannot lock {path}: its lock file keeps changing")  # pragma: no cover


def check_out_dir(out: str | os.PathLike[str], names: Iterable[str], *, force: bool) -> None:
    """Refuse at once, creating nothing, when ``out`` holds complete results among
    ``names`` and ``force`` is false (the check :func:`open_out_dir` makes, for a command
    to run before it reads its inputs).

    Raises
    ------
    OutputError
        If ``out`` is a file, or would be overwritten.
    """
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise OutputError(f"output folder {path} exists and is not a folder")
    if force or not path.is_dir():
        return
    marker = unfinished_run(path)
    exempt = set(marker.get("names", [])) if marker else set()
    _refuse_existing(path, sorted(n for n in names if n not in exempt and (path / n).exists()))


def _refuse_existing(path: Path, existing: list[str]) -> None:
    if existing:
        shown = ", ".join(existing[:3]) + (" ..." if len(existing) > 3 else "")
        raise OutputError(
            f"{path} already holds results ({shown}); use --force to overwrite "
            "or choose another --out"
        )
