"""Settings of the download layer: one frozen dataclass for the CLI and the Python API.

Defaults live here and nowhere else.  :meth:`DownloadSettings.from_env` fills the
fields a user may set through the environment:

=====================  ====================================================
variable               meaning
=====================  ====================================================
``NBDID_CACHE``        cache folder (default: the per-user cache folder)
``NBDID_MIRROR``       mirror base URL (see :func:`nbdid.download.client.mirror_url`)
``NBDID_OFFLINE``      ``1``/``true``: use the cache only, never the network
``NOMIS_API_KEY``      NOMIS unique id (``0x...``); optional, raises the row cap
``STATXPLORE_API_KEY`` Stat-Xplore Open Data API key; required for Stat-Xplore
=====================  ====================================================

Explicit arguments (CLI flags, keyword arguments) win over the environment.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from nbdid.errors import InputError

__all__ = ["ENV_CACHE", "ENV_MIRROR", "ENV_OFFLINE", "DownloadSettings", "default_cache_dir"]

ENV_CACHE = "NBDID_CACHE"
ENV_MIRROR = "NBDID_MIRROR"
ENV_OFFLINE = "NBDID_OFFLINE"
ENV_NOMIS_KEY = "NOMIS_API_KEY"
ENV_STATXPLORE_KEY = "STATXPLORE_API_KEY"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def default_cache_dir() -> Path:
    """The per-user cache folder (``platformdirs.user_cache_dir('nbdid')``/downloads)."""
    # imported here: platformdirs loads only when the cache folder is resolved
    import platformdirs

    return Path(platformdirs.user_cache_dir("nbdid", appauthor=False)) / "downloads"


def _check_mirror(mirror: str | None) -> str | None:
    if mirror is None or not str(mirror).strip():
        return None
    m = str(mirror).strip()
    parts = urlsplit(m)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(
            f"mirror '{m}' is not an http(s) URL (e.g. https://mirror.example.org/nbdid)",
            column="--mirror",
        )
    if parts.query or parts.fragment:
        raise InputError(f"mirror '{m}' must not have a query or fragment", column="--mirror")
    return m.rstrip("/")


@dataclass(frozen=True)
class DownloadSettings:
    """How files are fetched and cached.

    Parameters
    ----------
    cache_dir
        Folder of the download cache (created when first used).
    mirror
        Base URL of a mirror: ``http(s)://HOST/PATH?QUERY`` is fetched from
        ``MIRROR/HOST/PATH?QUERY`` (POST bodies too).  ``None``: the publishers' hosts.
    offline
        Use the cache only; a file that is not cached is an error.
    refresh
        Fetch again even when the cache holds a file (the old copy is replaced only
        after the new one is verified).
    retries
        Further attempts after a failed one (429, 5xx, time-out, cut connection,
        empty body, wrong size or checksum).
    timeout
        Seconds to wait for a connection or for the next bytes of a response.
    backoff
        Base of the exponential back-off in seconds: attempt *k* waits
        ``backoff * 2**(k-1)`` seconds (capped by ``max_backoff``), or longer when
        the server asks so with ``Retry-After``.  ``0`` retries at once (tests).
    max_backoff
        Longest wait between two attempts, including ``Retry-After`` requests.
    range_chunk
        Bytes per HTTP Range request when reading a remote zip's directory (each
        member is then read with one request of its own size).
    lock_timeout
        Seconds to wait for another process that is downloading the same file.
    pause
        Seconds to wait between two API pages actually downloaded (NOMIS, ArcGIS), to
        be polite to the publishers; ``0`` in tests.
    nomis_key
        NOMIS unique id (``uid=``); optional.  Never written to manifests.
    statxplore_key
        Stat-Xplore API key (``APIKey`` header).  Never written to manifests.
    """

    cache_dir: Path = field(default_factory=default_cache_dir)
    mirror: str | None = None
    offline: bool = False
    refresh: bool = False
    retries: int = 4
    timeout: float = 60.0
    backoff: float = 2.0
    max_backoff: float = 300.0
    range_chunk: int = 1 << 20
    lock_timeout: float = 6 * 3600.0
    pause: float = 1.0
    nomis_key: str | None = field(default=None, repr=False)
    statxplore_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser())
        object.__setattr__(self, "mirror", _check_mirror(self.mirror))
        if not isinstance(self.retries, int) or self.retries < 0:
            raise InputError(f"retries must be a whole number >= 0, not {self.retries!r}",
                             column="--retries")
        for name in ("timeout", "lock_timeout"):
            v = getattr(self, name)
            if not v > 0:
                raise InputError(f"{name} must be > 0 seconds, not {v!r}",
                                 column=f"--{name.replace('_', '-')}")
        for name in ("backoff", "max_backoff", "pause"):
            v = getattr(self, name)
            if not v >= 0:
                raise InputError(f"{name} must be >= 0 seconds, not {v!r}",
                                 column=f"--{name.replace('_', '-')}")
        if self.range_chunk < 64 << 10:
            raise InputError("range_chunk must be at least 65536 bytes")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> DownloadSettings:
        """Settings from the environment, with ``overrides`` (``None`` values ignored)."""
        env = dict(os.environ if env is None else env)
        kw: dict = {}
        if env.get(ENV_CACHE, "").strip():
            kw["cache_dir"] = Path(env[ENV_CACHE].strip())
        if env.get(ENV_MIRROR, "").strip():
            kw["mirror"] = env[ENV_MIRROR].strip()
        off = env.get(ENV_OFFLINE, "").strip().lower()
        if off in _TRUE:
            kw["offline"] = True
        elif off not in _FALSE:
            raise InputError(f"{ENV_OFFLINE}={env[ENV_OFFLINE]!r} is not true/false")
        if env.get(ENV_NOMIS_KEY, "").strip():
            kw["nomis_key"] = env[ENV_NOMIS_KEY].strip()
        if env.get(ENV_STATXPLORE_KEY, "").strip():
            kw["statxplore_key"] = env[ENV_STATXPLORE_KEY].strip()
        kw.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kw) - known)
        if unknown:
            raise TypeError(f"unknown download setting(s): {', '.join(unknown)}")
        return cls(**kw)
