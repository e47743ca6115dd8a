"""A compile cache on disk: later processes reuse nutpie's compiled models.

Compiling a model for nutpie has three parts:

1. PyMC and PyTensor build and rewrite the log-density graph (Python; a few seconds,
   not cacheable);
2. PyTensor's Numba backend compiles that graph; PyTensor caches the result itself in
   its compile directory (``pytensor.config.base_compiledir``, per user), keyed by the
   graph;
3. nutpie wraps the compiled graph in two C callbacks (``numba.cfunc``).  This is most
   of the time, and nutpie cannot cache it across processes: Numba keys a cached closure
   by pickling its cell contents, which hold PyTensor's generated functions and data
   arrays and differ in every process.

:func:`persistent_compile` makes part 3 cacheable: during a compilation it keys nutpie's
callbacks by a stable description of their closures instead (the callback's bytecode;
PyTensor's own cache key of the compiled graph; names, shapes and dtypes of the data
containers; the versions of every package involved), and stores them in
:func:`cache_dir`.  A cached callback is only reused for a graph with the same PyTensor
key, so a changed model, shape or package version compiles afresh.  Data *values* are
never part of the compiled code (nutpie swaps them in at run time).

The cache directory is ``platformdirs.user_cache_dir("nbdid")/compiled/<versions>``
unless the environment variable ``NBDID_CACHE_DIR`` names another folder (set it to
an empty string, or ``NBDID_COMPILE_CACHE=0``, to switch the cache off).  Several
processes may use it at once: a compilation of one structure holds a file lock (a
second process waits and then loads the first one's result), and every change to
Numba's index files is made under one lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import platform
import threading
import time
import types
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

ENV_DIR = "NBDID_CACHE_DIR"
"""Environment variable naming the cache folder (default: the per-user cache)."""
ENV_SWITCH = "NBDID_COMPILE_CACHE"
"""Set to ``0`` to compile every model afresh in every process."""

_VERSIONED = ("nbdid", "nutpie", "numba", "llvmlite", "pytensor", "pymc", "numpy")
_PATCH_LOCK = threading.Lock()
_ACTIVE: dict[str, Any] = {}


def versions_tag() -> str:
    """Short hash of the Python version, the versions of the compiling packages and
    Numba's optimisation level (``NUMBA_OPT``): the name of this installation's cache
    subfolder (another version or level, another folder)."""
    parts = [platform.python_version(), platform.machine(), f"NUMBA_OPT={os.environ.get('NUMBA_OPT', '')}"]
    for name in _VERSIONED:
        try:
            parts.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name}=?")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def cache_dir() -> Path | None:
    """The compile cache folder of this installation, or ``None`` when switched off."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    given = os.environ.get(ENV_DIR)
    if given is not None:
        if not given.strip():
            return None
        base = Path(given).expanduser()
    else:
        # imported here: platformdirs loads only when the cache folder is resolved
        import platformdirs

        base = Path(platformdirs.user_cache_dir("nbdid", appauthor=False))
    return base / "compiled" / versions_tag()


# ---------------------------------------------------------------------------- stable keys


def _stable(obj: Any, depth: int = 0) -> str | None:
    """A description of ``obj`` that is the same in every process, or ``None`` when
    ``obj`` is not understood (the callback is then not cached)."""
    if depth > 12:
        return None
    if obj is None or obj is Ellipsis or isinstance(obj, bool | int | float | str | bytes):
        return repr(obj)
    if isinstance(obj, types.ModuleType):
        return f"module({obj.__name__})"
    if isinstance(obj, np.dtype):
        return f"dtype({obj.descr!r})"
    if isinstance(obj, np.ndarray):
        # only the type: nutpie replaces every data array at run time
        return f"array({obj.dtype.str},{obj.shape})"
    if isinstance(obj, np.generic):
        return f"{type(obj).__name__}({obj!r})"
    if isinstance(obj, tuple | list):
        items = [_stable(x, depth + 1) for x in obj]
        return None if any(i is None for i in items) else f"({','.join(items)})"
    pt_key = _pytensor_key(obj)
    if pt_key is not None:
        return f"pytensor:{pt_key}"
    py_func = getattr(obj, "py_func", None) or getattr(obj, "_defn", None)
    if isinstance(obj, types.FunctionType):
        py_func = obj
    if isinstance(py_func, types.FunctionType):
        return _stable_function(py_func, depth)
    return None


def _pytensor_key(obj: Any) -> str | None:
    try:
        # imported here: PyTensor loads with PyMC, on first use only
        from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS
    except ImportError:  # pragma: no cover
        return None
    func = getattr(obj, "py_func", obj)
    try:
        return CACHED_SRC_FUNCTIONS.get(func)
    except TypeError:
        return None


def _stable_function(func: types.FunctionType, depth: int) -> str | None:
    code = func.__code__
    consts = _stable([c for c in code.co_consts if not isinstance(c, types.CodeType)], depth + 1)
    if consts is None:
        return None
    cells = []
    for cell in func.__closure__ or ():
        try:
            content = cell.cell_contents
        except ValueError:
            return None
        s = _stable(content, depth + 1)
        if s is None:
            return None
        cells.append(s)
    body = hashlib.sha256(code.co_code).hexdigest()
    return f"fn({func.__module__}.{func.__qualname__},{body},{consts},[{','.join(cells)}])"


def callback_key(py_func: types.FunctionType) -> str | None:
    """The stable cache key of one of nutpie's compiled callbacks (``None``: do not cache)."""
    if py_func.__module__ != "nutpie.compile_pymc":
        return None
    s = _stable_function(py_func, 0)
    if s is None or "pytensor:" not in s:
        return None  # a graph PyTensor does not cache is never reused from disk either
    return hashlib.sha256(s.encode()).hexdigest()


# ------------------------------------------------------------------- numba integration


def _install_locator() -> None:
    """Register (once) a Numba cache locator that puts nutpie's callbacks in our folder
    while :func:`persistent_compile` is active."""
    # imported here: numba takes seconds to import; only the compile cache needs it
    from numba.core.caching import CacheImpl, _CacheLocator

    if any(getattr(c, "_nbdid", False) for c in CacheImpl._locator_classes):
        return

    class NbdidLocator(_CacheLocator):
        _nbdid = True

        def __init__(self, py_func: Any, py_file: str, path: Path) -> None:
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._path = path

        def ensure_cache_path(self) -> None:
            self._path.mkdir(parents=True, exist_ok=True)

        def get_cache_path(self) -> str:
            return str(self._path)

        def get_source_stamp(self) -> Any:
            return versions_tag()

        def get_disambiguator(self) -> str:
            return str(self._lineno)

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Any:
            path = _ACTIVE.get("dir")
            if path is None or getattr(py_func, "__module__", "") != "nutpie.compile_pymc":
                return None
            return cls(py_func, py_file, path / "numba")

    CacheImpl._locator_classes.insert(0, NbdidLocator)


_UNCACHED = "nbdid-uncached"


def _is_uncached(key: Any) -> bool:
    """Whether an index key marks a function that is compiled but never cached."""
    return isinstance(key, tuple) and len(key) == 3 and isinstance(key[2], tuple) \
        and bool(key[2]) and key[2][0] == _UNCACHED


@contextlib.contextmanager
def persistent_compile(structure: str) -> Iterator[dict[str, Any]]:
    """Context for one nutpie compilation that reads and fills the disk cache.

    Parameters
    ----------
    structure
        A description of the model structure (held under a file lock named by its hash,
        so that two processes compiling the same structure compile it once).

    Yields
    ------
    dict
        ``kwargs`` to pass to ``nutpie.compile_pymc_model`` (``{"cache": True}``, or
        ``{}`` when the cache is off) and, after the block, ``hits`` and ``misses``
        (callbacks loaded from disk and compiled).
    """
    folder = cache_dir()
    info: dict[str, Any] = {"kwargs": {}, "hits": 0, "misses": 0, "dir": folder}
    if folder is None:
        yield info
        return
    # imported here: filelock loads only when a folder is locked (keeps `import nbdid` light);
    # numba takes seconds to import; only the compile cache needs it
    from filelock import FileLock
    from numba.core import caching

    locks = folder / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(structure.encode()).hexdigest()[:24]
    index_lock = FileLock(str(locks / "numba-index.lock"))
    register_cacheable_special_functions()
    with FileLock(str(locks / f"{tag}.lock")), _PATCH_LOCK:
        _install_locator()
        real_key = caching.FunctionCache._index_key
        real_save = caching.IndexDataCacheFile.save
        real_load = caching.IndexDataCacheFile.load

        def index_key(self: Any, sig: Any, codegen: Any) -> Any:
            stable = callback_key(self._py_func)
            if stable is None:
                try:
                    return real_key(self, sig, codegen)
                except Exception:  # noqa: BLE001 - numba pickles closure cells; some cannot be
                    # a function numba cannot key is compiled as usual and never cached
                    return (sig, codegen.magic_tuple(), (_UNCACHED, id(self), time.time_ns()))
            return (sig, codegen.magic_tuple(), ("nbdid", stable))

        def ours(self: Any) -> bool:
            return "compile_pymc." in getattr(self, "_index_name", "")

        def save(self: Any, key: Any, data: Any) -> None:
            info["misses"] += ours(self)
            if _is_uncached(key):
                return
            with index_lock:  # read-modify-write of the index: one process at a time
                real_save(self, key, data)

        def load(self: Any, key: Any) -> Any:
            with index_lock:
                out = real_load(self, key)
            if out is not None and ours(self):
                info["hits"] += 1
            return out

        caching.FunctionCache._index_key = index_key
        caching.IndexDataCacheFile.save = save
        caching.IndexDataCacheFile.load = load
        _ACTIVE["dir"] = folder
        info["kwargs"] = {"cache": True}
        try:
            yield info
        finally:
            _ACTIVE.pop("dir", None)
            caching.FunctionCache._index_key = real_key
            caching.IndexDataCacheFile.save = real_save
            caching.IndexDataCacheFile.load = real_load


# ----------------------------------------------------- special functions PyTensor cannot cache


_DIGAMMA_KEY = "nbdid-digamma-v1"
_REGISTERED: list[bool] = []


def digamma(x: float) -> float:
    """The digamma function in plain Python/Numba (no C function pointer).

    Recurrence ``psi(x) = psi(x + 1) - 1/x`` up to ``x >= 10``, then the asymptotic
    series to ``x**-14`` (error below 1e-16 there); reflection for ``x < 0``.  Matches
    ``scipy.special.digamma`` to about 1e-14 relative (tested); ``nan`` at the poles.
    """
    if math.isnan(x):
        return x
    result = 0.0
    if x <= 0.0:
        if x == math.floor(x):
            return math.nan
        result = -math.pi / math.tan(math.pi * x)
        x = 1.0 - x
    while x < 10.0:
        result -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    series = f * (-1.0 / 12 + f * (1.0 / 120 + f * (-1.0 / 252 + f * (
        1.0 / 240 + f * (-1.0 / 132 + f * (691.0 / 32760 + f * (-1.0 / 12)))))))
    return result + math.log(x) - 0.5 / x + series


def register_cacheable_special_functions() -> None:
    """Give PyTensor's Numba backend a cacheable digamma (once per process).

    PyTensor implements ``psi`` (digamma; the gradient of ``gammaln``, e.g. of a
    Student-t's degrees of freedom) by calling SciPy's Cython function through a
    pointer, which Numba cannot cache, so every graph holding it (the property-price
    model) was compiled afresh in every process (20 s) despite the disk cache.  This
    registers :func:`digamma` for PyTensor's ``Psi`` op with its own cache key.
    """
    if _REGISTERED:
        return
    # imported here: PyTensor and numba load with PyMC, only when a model is compiled
    from pytensor.link.numba.dispatch import basic as numba_basic
    from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key
    from pytensor.link.numba.dispatch.scalar import scalar_op_cache_key

    # imported here: as above (PyTensor loads with PyMC)
    from pytensor.scalar.math import Psi

    @register_funcify_and_cache_key(Psi)
    def _numba_funcify_psi(op: Any, node: Any = None, **kwargs: Any) -> tuple[Any, str]:
        return numba_basic.numba_njit(digamma), scalar_op_cache_key(op, impl=_DIGAMMA_KEY)

    _REGISTERED.append(True)
