"""HTTP for the download layer: the only place in nbdid that touches the network.

:class:`Downloader` fetches a URL into the :class:`~nbdid.download.cache.Cache` and
returns a :class:`FetchRecord` (path, URL, final URL, bytes, sha256, md5, time):

* every URL can be redirected to a mirror (:func:`mirror_url`);
* 429 (honouring ``Retry-After``), 408, 5xx, time-outs, cut connections, empty bodies
  and wrong sizes are retried with exponential back-off (:mod:`tenacity`); a cut
  download resumes from its ``.part`` file with an HTTP ``Range`` request;
* a file is verified (size, the publisher's MD5 when one is given, an optional content
  check) before it is renamed into the cache;
* a host that refuses (403, 404, 410, ...) is reported in one line naming the URL and
  where to put a copy fetched by hand.

:class:`RemoteFile` reads byte ranges of a remote file (e.g. members of a police.uk
archive without downloading the whole archive).
"""

from __future__ import annotations

import contextlib
import email.utils
import io
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from nbdid.download.cache import Cache, cache_key, file_hashes, utc_now
from nbdid.download.settings import DownloadSettings
from nbdid.errors import DownloadError
from nbdid.version import __version__

__all__ = [
    "DownloadError",
    "Downloader",
    "FetchRecord",
    "RangeNotSupported",
    "RemoteFile",
    "mirror_url",
]

_CHUNK = 1 << 20


class RangeNotSupported(DownloadError):
    """The server answers a Range request with the whole file."""


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Refused(Exception):
    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def mirror_url(url: str, mirror: str | None) -> str:
    """Where ``url`` is fetched from: ``MIRROR/HOST/PATH?QUERY`` with a mirror, else ``url``.

    >>> mirror_url("https://data.police.uk/data/archive/2014-04.zip", "http://127.0.0.1:8000/m")
    'http://127.0.0.1:8000/m/data.police.uk/data/archive/2014-04.zip'
    """
    if not mirror:
        return url
    p = urlsplit(url)
    path = p.path if p.path.startswith("/") else "/" + p.path
    return mirror.rstrip("/") + "/" + p.netloc + path + (f"?{p.query}" if p.query else "")


def _add_params(url: str, params: Mapping[str, str] | None) -> str:
    if not params:
        return url
    p = urlsplit(url)
    q = p.query + ("&" if p.query else "") + urlencode(dict(params))
    return urlunsplit((p.scheme, p.netloc, p.path, q, p.fragment))


def _strip_params(url: str, names: Iterable[str]) -> str:
    names = {n.lower() for n in names}
    if not names:
        return url
    p = urlsplit(url)
    q = [(k, v) for k, v in parse_qsl(p.query, keep_blank_values=True) if k.lower() not in names]
    return urlunsplit((p.scheme, p.netloc, p.path, urlencode(q), p.fragment))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    v = value.strip()
    if v.isdigit():
        return float(v)
    try:
        when = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class FetchRecord:
    """A file in the cache and where it came from.

    Attributes
    ----------
    path
        The cached file.
    url
        The publisher's URL the file was asked for (the fallback URL when that one
        served it; never a mirror URL, never an API key).
    final_url
        Where the bytes actually came from after redirects (a mirror URL with
        ``--mirror``); ``None`` for files placed in the cache by hand.
    bytes, sha256
        Size and SHA-256 of the file.
    md5
        MD5 of the file.
    md5_published
        The publisher's MD5 the file was checked against (``None`` when none is
        published).
    retrieved_at
        UTC time of the download (ISO 8601).
    from_cache
        The file was already in the cache (no network access this time).
    origin
        ``"download"`` or ``"placed by hand"``.
    key
        Cache key (relative path under ``<cache>/files``).
    """

    path: Path
    url: str
    final_url: str | None
    bytes: int
    sha256: str
    md5: str
    md5_published: str | None
    retrieved_at: str
    from_cache: bool
    origin: str
    key: str
    method: str = "GET"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``path`` as a string)."""
        d = asdict(self)
        d["path"] = str(self.path)
        return d

    @classmethod
    def _from_meta(cls, meta: dict[str, Any], *, from_cache: bool) -> FetchRecord:
        return cls(
            path=Path(meta["path"]), url=meta.get("url") or "", final_url=meta.get("final_url"),
            bytes=int(meta["bytes"]), sha256=meta["sha256"], md5=meta.get("md5", ""),
            md5_published=meta.get("md5_published"), retrieved_at=meta.get("retrieved_at", ""),
            from_cache=from_cache, origin=meta.get("origin", "download"), key=meta["key"],
            method=meta.get("method", "GET"),
        )


class Downloader:
    """Fetch URLs into the cache with retries, resumption, verification and a mirror.

    Parameters
    ----------
    settings
        :class:`~nbdid.download.settings.DownloadSettings`.
    log
        Called with one-line progress messages (retries, downloads); default: silent.
    transport
        An :mod:`httpx` transport (tests); default: the network.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        settings: DownloadSettings | None = None,
        *,
        log: Callable[[str], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings or DownloadSettings.from_env()
        self.cache = Cache(self.settings.cache_dir)
        self._log = log or (lambda msg: None)
        self._transport = transport
        self._client: httpx.Client | None = None
        self.user_agent = f"nbdid/{__version__} (python-httpx)"

    # -- plumbing -------------------------------------------------------------------------
    def __enter__(self) -> Downloader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            t = self.settings.timeout
            self._client = httpx.Client(
                follow_redirects=True,
                timeout=httpx.Timeout(t, connect=min(t, 30.0)),
                transport=self._transport,
                headers={"User-Agent": self.user_agent, "Accept-Encoding": "identity"},
            )
        return self._client

    def log(self, msg: str) -> None:
        self._log(msg)

    def _wait(self, state: RetryCallState) -> float:
        s = self.settings
        expo = s.backoff * 2 ** (state.attempt_number - 1)
        exc = state.outcome.exception() if state.outcome else None
        ra = getattr(exc, "retry_after", None)
        w = max(expo, ra) if ra is not None else expo
        return float(min(w, s.max_backoff))

    def _before_sleep(self, what: str) -> Callable[[RetryCallState], None]:
        def report(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            reason = getattr(exc, "reason", None) or str(exc)
            wait = state.next_action.sleep if state.next_action else 0.0
            self.log(f"{what}: {reason}; retry {state.attempt_number}/{self.settings.retries} "
                     f"in {wait:.0f} s")
        return report

    def _retrying(self, what: str) -> Retrying:
        return Retrying(
            stop=stop_after_attempt(self.settings.retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            before_sleep=self._before_sleep(what),
            reraise=True,
        )

    def cache_path(self, url: str, body: bytes | None = None) -> Path:
        """Where the cache keeps (or would keep) ``url``: the place for a copy fetched by hand."""
        return self.cache.path(cache_key(url, body))

    # -- whole files ------------------------------------------------------------------------
    def fetch(
        self,
        url: str,
        *,
        alternatives: Iterable[str] = (),
        md5: str | None = None,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        secret_headers: Mapping[str, str] | None = None,
        secret_params: Mapping[str, str] | None = None,
        validate: Callable[[Path], None] | None = None,
        accept_empty: bool = False,
        refresh: bool | None = None,
    ) -> FetchRecord:
        """Return the cached file of ``url``, downloading it first when needed.

        Parameters
        ----------
        url
            The publisher's URL (the cache key is derived from it and ``body``).
        alternatives
            Further URLs of the same file, tried in order when a host refuses
            (HTTP 4xx other than 408/429) or stays unreachable.
        md5
            The publisher's MD5 of the file: a download that does not match is
            discarded (and fetched once more), never used.
        method, body, headers
            ``POST`` with a JSON ``body`` for APIs such as Stat-Xplore.
        secret_headers, secret_params
            Credentials (API keys): sent, but never part of the cache key, the
            manifest or any message.
        validate
            Called with the downloaded file before it enters the cache; raise
            :class:`DownloadError` to refuse it (e.g. an error page instead of data).
        accept_empty
            Allow a zero-byte file (by default an empty body is an error, retried).
        refresh
            Download again even if cached (default: ``settings.refresh``).

        Raises
        ------
        DownloadError
            Offline and not cached; refused by every host; still failing after the
            retries; wrong checksum; or refused by ``validate``.
        """
        key = cache_key(url, body)
        md5 = md5.lower() if md5 else None
        refresh = self.settings.refresh if refresh is None else refresh
        with self.cache.lock(key, self.settings.lock_timeout):
            meta = None if refresh else self.cache.lookup(key, url=url)
            if meta is not None:
                if md5 and meta.get("md5") != md5:
                    raise DownloadError(
                        f"{meta['path']} has MD5 {meta.get('md5')} but the publisher's is "
                        f"{md5}; delete it (and {self.cache.meta_path(key).name}) and run again"
                    )
                return FetchRecord._from_meta(meta, from_cache=True)
            if self.settings.offline:
                raise DownloadError(
                    f"{url} is not in the cache and downloads are off (--offline / "
                    f"NBDID_OFFLINE); expected at {self.cache.path(key)}"
                )
            urls = [url, *[u for u in alternatives if u != url]]
            refusals: list[str] = []
            statuses: list[int | None] = []
            last_error: DownloadError | None = None
            for i, u in enumerate(urls):
                try:
                    meta = self._download(
                        key, u, method=method, body=body, headers=headers or {},
                        secret_headers=secret_headers or {}, secret_params=secret_params or {},
                        md5=md5, validate=validate, accept_empty=accept_empty,
                    )
                    return FetchRecord._from_meta(meta, from_cache=False)
                except _Refused as r:
                    refusals.append(f"{u} ({r.reason})")
                    statuses.append(r.status)
                    if i + 1 < len(urls):
                        self.log(f"{u}: {r.reason}; trying {urls[i + 1]}")
                except DownloadError as err:
                    last_error = err
                    if getattr(err, "final", False) or not hasattr(err, "reason"):
                        raise
                    refusals.append(f"{u} ({err.reason})")  # type: ignore[attr-defined]
                    statuses.append(None)
                    if i + 1 < len(urls):
                        self.log(f"{u}: {err.reason}; trying {urls[i + 1]}")  # type: ignore[attr-defined]
            where = self.cache.path(key)
            if last_error is not None and len(urls) == 1:
                raise last_error
            err = DownloadError(
                f"{'; '.join(refusals)}: no host served the file; fetch "
                f"{url} by hand (e.g. in a browser) and save it as {where}, then run the "
                "command again (or use --mirror with a copy)"
            )
            err.status = statuses[-1] if statuses else None  # type: ignore[attr-defined]
            raise err

    def _download(
        self, key: str, url: str, *, method: str, body: bytes | None, headers: Mapping[str, str],
        secret_headers: Mapping[str, str], secret_params: Mapping[str, str], md5: str | None,
        validate: Callable[[Path], None] | None, accept_empty: bool,
    ) -> dict[str, Any]:
        part = self.cache.part_path(key)
        part.parent.mkdir(parents=True, exist_ok=True)
        checksum_failures = [0]
        info: dict[str, Any] = {}
        try:
            for attempt in self._retrying(url):
                with attempt:
                    self._attempt(key, url, part, method=method, body=body, headers=headers,
                                  secret_headers=secret_headers, secret_params=secret_params,
                                  info=info)
                    n, sha, got_md5 = file_hashes(part)
                    if n == 0 and not accept_empty:
                        self.cache.discard(key)
                        raise _Retryable("the server sent an empty file")
                    if md5 and got_md5 != md5:
                        self.cache.discard(key)
                        checksum_failures[0] += 1
                        if checksum_failures[0] >= 2:
                            err = DownloadError(
                                f"{url}: MD5 {got_md5} of the download differs from the "
                                f"publisher's {md5} twice; nothing was kept. The file may "
                                "have been republished: check the publisher's page"
                            )
                            err.final = True  # type: ignore[attr-defined]
                            raise err
                        raise _Retryable(f"MD5 {got_md5} differs from the publisher's {md5}")
        except _Retryable as r:
            attempts = self.settings.retries + 1
            err = DownloadError(
                f"{url}: {r.reason} after {attempts} attempt{'s' * (attempts > 1)}; try again "
                f"later, or fetch it by hand and save it as {self.cache.path(key)}"
            )
            err.reason = f"{r.reason} after {attempts} attempt{'s' * (attempts > 1)}"  # type: ignore[attr-defined]
            raise err from None
        if validate is not None:
            try:
                validate(part)
            except DownloadError:
                self.cache.discard(key)
                raise
        meta = {
            "url": url, "final_url": info.get("final_url"), "bytes": n, "sha256": sha,
            "md5": got_md5, "md5_published": md5, "retrieved_at": utc_now(),
            "origin": "download", "method": method,
            "etag": info.get("etag"), "last_modified": info.get("last_modified"),
        }
        if body is not None:
            meta["body"] = body.decode("utf-8", "replace")
        rec = self.cache.commit(key, part, meta)
        self.log(f"downloaded {url} ({n:,} bytes)")
        return rec

    def _attempt(
        self, key: str, url: str, part: Path, *, method: str, body: bytes | None,
        headers: Mapping[str, str], secret_headers: Mapping[str, str],
        secret_params: Mapping[str, str], info: dict[str, Any],
    ) -> None:
        state = self.cache.read_part_state(key)
        offset = 0
        if (method == "GET" and part.exists() and state.get("url") == url
                and state.get("validator")):
            offset = part.stat().st_size
        hdrs = {**headers, **secret_headers}
        if offset:
            hdrs["Range"] = f"bytes={offset}-"
            hdrs["If-Range"] = state["validator"]
        target = _add_params(mirror_url(url, self.settings.mirror), secret_params)
        try:
            with self.client.stream(method, target, headers=hdrs, content=body) as r:
                status = r.status_code
                if status == 416 and offset:
                    self.cache.discard(key)
                    raise _Retryable("the server cannot resume the partial download")
                if status in (408, 429) or status >= 500:
                    raise _Retryable(f"HTTP {status}", _retry_after(r.headers.get("Retry-After")))
                if status >= 300:
                    raise _Refused(f"HTTP {status}", status)
                mode = "wb"
                total: int | None = None
                if status == 206 and offset:
                    cr = r.headers.get("Content-Range", "")
                    start, _end, tot = _parse_content_range(cr)
                    if start != offset:
                        self.cache.discard(key)
                        raise _Retryable(f"the server resumed at byte {start}, not {offset}")
                    mode, total = "ab", tot
                    self.log(f"{url}: resuming at byte {offset:,}")
                else:
                    cl = r.headers.get("Content-Length")
                    total = int(cl) if cl and cl.isdigit() else None
                etag = r.headers.get("ETag")
                validator = etag if etag and not etag.startswith("W/") else r.headers.get(
                    "Last-Modified")
                info["final_url"] = _strip_params(str(r.url), secret_params)
                info["etag"], info["last_modified"] = etag, r.headers.get("Last-Modified")
                self.cache.write_part_state(key, {"url": url, "validator": validator,
                                                  "total": total})
                with open(part, mode) as fh:
                    for chunk in r.iter_bytes():
                        fh.write(chunk)
        except httpx.TimeoutException:
            raise _Retryable("timed out") from None
        except httpx.TransportError as err:
            raise _Retryable(f"connection failed ({type(err).__name__}: {err})") from None
        have = part.stat().st_size
        if total is not None and have != total:
            raise _Retryable(f"got {have:,} of {total:,} bytes")

    # -- byte ranges -----------------------------------------------------------------------
    def range_get(self, url: str, start: int, end: int) -> tuple[bytes, int, str | None, str]:
        """Bytes ``start..end`` (inclusive) of ``url``: ``(data, total size, etag, final URL)``.

        Raises
        ------
        RangeNotSupported
            The server sends the whole file instead of the range.
        DownloadError
            Refused, or still failing after the retries.
        """
        if self.settings.offline:
            raise DownloadError(f"{url}: byte ranges cannot be read offline")
        target = mirror_url(url, self.settings.mirror)
        want = end - start + 1
        try:
            for attempt in self._retrying(url):
                with attempt:
                    try:
                        with self.client.stream(
                            "GET", target, headers={"Range": f"bytes={start}-{end}"}
                        ) as r:
                            status = r.status_code
                            if status in (408, 429) or status >= 500:
                                raise _Retryable(f"HTTP {status}",
                                                 _retry_after(r.headers.get("Retry-After")))
                            if status == 200:
                                raise RangeNotSupported(
                                    f"{url}: the server does not answer Range requests")
                            if status != 206:
                                raise DownloadError(
                                    f"{url} refused the request (HTTP {status})")
                            s, e, total = _parse_content_range(r.headers.get("Content-Range", ""))
                            data = r.read()
                            final = str(r.url)
                            etag = r.headers.get("ETag")
                    except httpx.TimeoutException:
                        raise _Retryable("timed out") from None
                    except httpx.TransportError as err:
                        raise _Retryable(f"connection failed ({type(err).__name__})") from None
                    if s != start or len(data) != min(want, max(total - start, 0)):
                        raise _Retryable(f"got {len(data)} bytes at {s} for a range of {want} "
                                         f"at {start}")
        except _Retryable as r:
            raise DownloadError(f"{url}: {r.reason} after {self.settings.retries + 1} "
                                "attempts; try again later") from None
        return data, total, etag, final


def _parse_content_range(value: str) -> tuple[int, int, int]:
    """``bytes a-b/total`` -> ``(a, b, total)``."""
    try:
        unit, rest = value.strip().split(" ", 1)
        rng, total = rest.split("/", 1)
        a, b = rng.split("-", 1)
        if unit.lower() != "bytes":
            raise ValueError
        return int(a), int(b), int(total)
    except ValueError:
        raise _Retryable(f"bad Content-Range header '{value}'") from None


class RemoteFile(io.RawIOBase):
    """A read-only, seekable view of a remote file through HTTP Range requests.

    Wrap it in :class:`io.BufferedReader` (``buffer_size = settings.range_chunk``) and
    hand it to :class:`zipfile.ZipFile` to read single members of a large archive.
    The file's size and ETag are taken from the first request; a later response with
    another size or ETag (the file was replaced meanwhile) is an error.
    """

    def __init__(self, downloader: Downloader, url: str) -> None:
        super().__init__()
        self.downloader = downloader
        self.url = url
        _data, self.size, self.etag, self.final_url = downloader.range_get(url, 0, 0)
        self._pos = 0
        self._win_start = 0
        self._win = b""
        self.requests = 1
        self.bytes_read = 0

    def prefetch(self, start: int, length: int) -> None:
        """Read ``length`` bytes at ``start`` in one request and serve later reads from them.

        Used to fetch one zip member (header and compressed data) with a single Range
        request instead of buffer-sized pieces.
        """
        end = min(start + length, self.size) - 1
        if end < start:
            return
        data, total, etag, _ = self.downloader.range_get(self.url, start, end)
        self._check(total, etag)
        self.requests += 1
        self.bytes_read += len(data)
        self._win_start, self._win = start, data

    def _check(self, total: int, etag: str | None) -> None:
        if total != self.size or (self.etag and etag and etag != self.etag):
            raise DownloadError(f"{self.url} changed on the server while it was being read "
                                "(size or ETag differs); run again")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = self._pos + offset
        elif whence == os.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        if pos < 0:
            raise OSError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, b) -> int:  # noqa: ANN001 - buffer protocol
        n = len(b)
        if n == 0 or self._pos >= self.size:
            return 0
        off = self._pos - self._win_start
        if 0 <= off < len(self._win):
            k = min(n, len(self._win) - off)
            b[:k] = self._win[off:off + k]
            self._pos += k
            return k
        end = min(self._pos + n, self.size) - 1
        data, total, etag, _ = self.downloader.range_get(self.url, self._pos, end)
        self.requests += 1
        self._check(total, etag)
        k = len(data)
        b[:k] = data
        self._pos += k
        self.bytes_read += k
        return k


@contextlib.contextmanager
def open_remote(downloader: Downloader, url: str):
    """Context manager: a buffered, seekable reader of ``url`` (see :class:`RemoteFile`)."""
    raw = RemoteFile(downloader, url)
    buf = io.BufferedReader(raw, buffer_size=downloader.settings.range_chunk)
    try:
        yield buf
    finally:
        buf.close()
