"""A local HTTP server that plays the publishers' hosts for tests (``--mirror`` target).

``MirrorServer`` listens on 127.0.0.1 (a free port) in a background thread.  A file
at ``https://HOST/PATH?QUERY`` is served at ``http://127.0.0.1:PORT/HOST/PATH?QUERY``,
which is exactly where :func:`nbdid.download.client.mirror_url` sends requests when
``mirror = server.url``.

Routes
    ``add(url, body)`` serves bytes (any query string, unless ``query=True`` makes
    the route match the URL's exact query); ``add(url, handler)`` calls
    ``handler(request) -> (status, headers, body)`` with a :class:`Request` (method,
    path, query dict, headers, body) for APIs (NOMIS paging, ArcGIS, Stat-Xplore).
Ranges
    ``Range: bytes=a-b`` / ``a-`` / ``-n`` get 206 with ``Content-Range``; ``If-Range``
    with another ETag gets the whole file.  Every response has an ``ETag``.
Faults
    ``fault(url, ...)`` queues faults consumed by the next requests to that path, in
    order: ``status=429`` (with ``retry_after``), ``status=500``, ``cut=N`` (send the
    headers of the whole file and only N bytes, then drop the connection),
    ``empty=True`` (200 with no body), ``corrupt=True`` (same size, one byte changed),
    ``no_range=True`` (ignore ``Range``), ``times=k`` repeats a fault.
Log
    ``requests`` lists every request (:class:`Request`), for assertions.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["MirrorServer", "Request"]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    raw_query: str
    headers: dict[str, str]
    body: bytes = b""


Handler = Callable[[Request], tuple[int, dict[str, str], bytes]]


@dataclass
class _Route:
    body: bytes | None = None
    handler: Handler | None = None
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)


def _key(url: str) -> tuple[str, str]:
    p = urlsplit(url)
    return f"/{p.netloc}{p.path}", p.query


class MirrorServer:
    """Local stand-in for the publishers' hosts (see the module docstring)."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str | None], _Route] = {}
        self._faults: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        server = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # silence
                pass

            def do_GET(self) -> None:  # noqa: N802
                server._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                server._handle(self, "POST")

        class _Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                # clients that hang up early (e.g. after a 200 to a Range request) are
                # part of the tests, not errors of the server
                pass

        self._httpd = _Server(("127.0.0.1", 0), _H)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> MirrorServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> MirrorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration -----------------------------------------------------------------------
    def add(self, url: str, body: bytes | str | Handler, *, query: bool = False,
            content_type: str = "application/octet-stream",
            headers: dict[str, str] | None = None) -> None:
        """Serve ``body`` (bytes/str) or ``handler(request)`` at the publisher's ``url``."""
        path, q = _key(url)
        route = _Route(content_type=content_type, headers=dict(headers or {}))
        if callable(body):
            route.handler = body
        else:
            route.body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        with self._lock:
            self._routes[(path, q if query else None)] = route

    def fault(self, url: str, *, times: int = 1, **kind: Any) -> None:
        """Queue a fault for the next ``times`` requests to ``url``'s path."""
        path, _ = _key(url)
        with self._lock:
            self._faults.setdefault(path, []).extend(dict(kind) for _ in range(times))

    def count(self, url: str) -> int:
        """Requests received so far for ``url``'s path."""
        path, _ = _key(url)
        return sum(1 for r in self.requests if r.path == path)

    # -- serving -----------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        req = Request(method=method, path=parts.path, query=dict(parse_qsl(parts.query)),
                      raw_query=parts.query, headers={k: v for k, v in h.headers.items()},
                      body=body)
        with self._lock:
            self.requests.append(req)
            route = self._routes.get((parts.path, parts.query)) or self._routes.get(
                (parts.path, None))
            queue = self._faults.get(parts.path) or []
            fault = queue.pop(0) if queue else {}
        if route is None:
            return self._send(h, 404, {"Content-Type": "text/plain"}, b"not found")
        if "status" in fault:
            hdr = {"Content-Type": "text/plain"}
            if fault.get("retry_after") is not None:
                hdr["Retry-After"] = str(fault["retry_after"])
            return self._send(h, int(fault["status"]), hdr, b"fault")
        if route.handler is not None:
            status, hdr, data = route.handler(req)
            hdr = {"Content-Type": route.content_type, **route.headers, **hdr}
        else:
            status, hdr, data = 200, {"Content-Type": route.content_type, **route.headers}, \
                route.body or b""
        if fault.get("empty"):
            data = b""
        if fault.get("corrupt") and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        etag = '"' + hashlib.sha1(data).hexdigest() + '"'
        hdr.setdefault("ETag", etag)
        hdr.setdefault("Accept-Ranges", "bytes")
        rng = h.headers.get("Range")
        if_range = h.headers.get("If-Range")
        if (status == 200 and rng and not fault.get("no_range")
                and (if_range is None or if_range == hdr["ETag"])):
            spec = rng.split("=", 1)[1].split(",")[0].strip()
            a, _, b = spec.partition("-")
            n = len(data)
            if a == "":
                start, end = max(0, n - int(b)), n - 1
            else:
                start = int(a)
                end = min(int(b), n - 1) if b else n - 1
            if start >= n:
                return self._send(h, 416, {"Content-Range": f"bytes */{n}"}, b"")
            hdr["Content-Range"] = f"bytes {start}-{end}/{n}"
            status, data = 206, data[start:end + 1]
        if "cut" in fault:
            hdr["Content-Length"] = str(len(data))
            h.send_response(status)
            for k, v in hdr.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data[: int(fault["cut"])])
            h.wfile.flush()
            h.close_connection = True
            return None
        return self._send(h, status, hdr, data)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, headers: dict[str, str],
              data: bytes) -> None:
        h.send_response(status)
        for k, v in headers.items():
            if k.lower() != "content-length":
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)
