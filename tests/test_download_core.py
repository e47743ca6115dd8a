"""The download layer's core through a local mirror: cache, retries, resume, faults.

Every test talks only to :class:`MirrorServer` on 127.0.0.1; back-off is 0 s so that
retries do not sleep (one test honours a 1 s ``Retry-After``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import random
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from nbdid.download import Downloader, DownloadError, DownloadSettings, mirror_url
from nbdid.download.cache import cache_key
from nbdid.download.client import RangeNotSupported, open_remote
from nbdid.errors import InputError

_spec = importlib.util.spec_from_file_location(
    "nbdid_tests_mirror_server", Path(__file__).with_name("mirror_server.py"))
_mod = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _mod
_spec.loader.exec_module(_mod)
MirrorServer = _mod.MirrorServer

URL = "https://files.example.org/data/file.bin"
PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def server():
    with MirrorServer() as s:
        yield s


def _settings(tmp_path: Path, server, **kw) -> DownloadSettings:
    kw.setdefault("retries", 3)
    return DownloadSettings(cache_dir=tmp_path / "cache", mirror=server.url, backoff=0.0,
                            pause=0.0, timeout=10.0, **kw)


def _dl(tmp_path, server, log=None, **kw) -> Downloader:
    return Downloader(_settings(tmp_path, server, **kw), log=log)


def test_mirror_url_and_cache_key():
    assert mirror_url("https://a.b/c/d.zip?x=1&y=2", "http://127.0.0.1:9/m/") == \
        "http://127.0.0.1:9/m/a.b/c/d.zip?x=1&y=2"
    assert mirror_url("http://a.b/c", None) == "http://a.b/c"
    assert cache_key("https://data.police.uk/data/archive/2014-04.zip") == \
        "data.police.uk/data/archive/2014-04.zip"
    k1 = cache_key("https://h/api/NM_1_1.data.csv?a=1")
    k2 = cache_key("https://h/api/NM_1_1.data.csv?a=2")
    assert k1 != k2 and k1.endswith(".csv") and "--q" in k1
    assert cache_key("https://h/t", b"{}") != cache_key("https://h/t", b"{ }")
    assert ".." not in cache_key("https://h/../../etc/passwd")


def test_settings_validation_and_environment(tmp_path):
    s = DownloadSettings.from_env({"NBDID_CACHE": str(tmp_path), "NBDID_MIRROR": "http://m/x/",
                                   "NBDID_OFFLINE": "1", "NOMIS_API_KEY": "0xabc",
                                   "STATXPLORE_API_KEY": "secret"}, retries=2)
    assert s.cache_dir == tmp_path and s.mirror == "http://m/x" and s.offline
    assert s.retries == 2 and s.nomis_key == "0xabc"
    assert "secret" not in repr(s) and "0xabc" not in repr(s)
    # explicit arguments win over the environment
    s2 = DownloadSettings.from_env({"NBDID_MIRROR": "http://m/x"}, mirror="https://other/y")
    assert s2.mirror == "https://other/y"
    with pytest.raises(InputError, match="not an http"):
        DownloadSettings(mirror="ftp://m/x")
    with pytest.raises(InputError, match="retries"):
        DownloadSettings(retries=-1)
    with pytest.raises(InputError, match="NBDID_OFFLINE"):
        DownloadSettings.from_env({"NBDID_OFFLINE": "maybe"})
    assert DownloadSettings.from_env({}).cache_dir.name == "downloads"


def test_fetch_records_caches_and_goes_offline(tmp_path, server):
    server.add(URL, PAYLOAD)
    with _dl(tmp_path, server) as dl:
        rec = dl.fetch(URL)
        assert rec.path.read_bytes() == PAYLOAD and not rec.from_cache
        assert rec.url == URL and rec.final_url == f"{server.url}/files.example.org/data/file.bin"
        assert rec.sha256 == hashlib.sha256(PAYLOAD).hexdigest() and rec.bytes == len(PAYLOAD)
        assert rec.path == tmp_path / "cache" / "files" / "files.example.org" / "data" / "file.bin"
        again = dl.fetch(URL)
        assert again.from_cache and again.sha256 == rec.sha256
    assert server.count(URL) == 1
    man = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    entry = man["entries"]["files.example.org/data/file.bin"]
    assert entry["sha256"] == rec.sha256 and entry["final_url"] == rec.final_url
    assert entry["retrieved_at"] and entry["bytes"] == len(PAYLOAD)
    with _dl(tmp_path, server, offline=True) as dl:
        assert dl.fetch(URL).from_cache
        with pytest.raises(DownloadError, match="not in the cache") as e:
            dl.fetch("https://files.example.org/other.bin")
    assert "\n" not in str(e.value) and "other.bin" in str(e.value)
    assert server.count(URL) == 1


def test_429_honours_retry_after_then_succeeds(tmp_path, server):
    server.add(URL, PAYLOAD)
    server.fault(URL, status=429, retry_after=1)
    msgs: list[str] = []
    with _dl(tmp_path, server, log=msgs.append) as dl:
        rec = dl.fetch(URL)
    assert rec.path.read_bytes() == PAYLOAD
    assert server.count(URL) == 2
    assert any("HTTP 429" in m and "in 1 s" in m for m in msgs), msgs


def test_500_retried_then_refused_in_one_line(tmp_path, server):
    server.add(URL, PAYLOAD)
    server.fault(URL, status=500)
    with _dl(tmp_path, server) as dl:
        assert dl.fetch(URL).path.read_bytes() == PAYLOAD
    other = "https://files.example.org/data/broken.bin"
    server.add(other, PAYLOAD)
    server.fault(other, status=503, times=10)
    with _dl(tmp_path, server, retries=2) as dl:
        with pytest.raises(DownloadError) as e:
            dl.fetch(other)
        assert not dl.cache_path(other).exists()
    msg = str(e.value)
    assert "\n" not in msg and other in msg and "HTTP 503 after 3 attempts" in msg
    assert str(dl.cache_path(other)) in msg  # where to put a copy fetched by hand
    assert server.count(other) == 3


def test_connection_cut_mid_file_resumes_with_range(tmp_path, server):
    server.add(URL, PAYLOAD)
    server.fault(URL, cut=300_000)
    with _dl(tmp_path, server) as dl:
        rec = dl.fetch(URL)
    assert rec.path.read_bytes() == PAYLOAD
    second = [r for r in server.requests if r.path.endswith("file.bin")][1]
    assert second.headers.get("Range") == "bytes=300000-"
    assert second.headers.get("If-Range")  # only resumed if the file did not change
    assert not Path(str(rec.path) + ".part").exists()


def test_interrupted_download_resumes_in_a_new_process(tmp_path, server):
    server.add(URL, PAYLOAD)
    server.fault(URL, cut=500_000, times=10)
    with _dl(tmp_path, server, retries=0) as dl:
        with pytest.raises(DownloadError, match="connection .*500000 bytes.* after 1 attempt"):
            dl.fetch(URL)
        part = dl.cache.part_path(cache_key(URL))
        assert part.stat().st_size == 500_000 and not dl.cache_path(URL).exists()
    server._faults.clear()
    with _dl(tmp_path, server) as dl:  # "the next run"
        rec = dl.fetch(URL)
    assert rec.path.read_bytes() == PAYLOAD
    assert server.requests[-1].headers.get("Range") == "bytes=500000-"


def test_changed_file_restarts_instead_of_mixing(tmp_path, server):
    server.add(URL, PAYLOAD)
    server.fault(URL, cut=400_000)
    with _dl(tmp_path, server, retries=0) as dl, pytest.raises(DownloadError):
        dl.fetch(URL)
    new = PAYLOAD[::-1]
    server.add(URL, new)  # republished: the ETag changes, If-Range fails, 200 comes back
    with _dl(tmp_path, server) as dl:
        assert dl.fetch(URL).path.read_bytes() == new


def test_wrong_checksum_is_refused_and_never_cached(tmp_path, server):
    good = hashlib.md5(PAYLOAD).hexdigest()
    server.add(URL, PAYLOAD)
    server.fault(URL, corrupt=True)
    with _dl(tmp_path, server) as dl:
        assert dl.fetch(URL, md5=good).md5_published == good  # corrupted once, then fine
    other = "https://files.example.org/data/bad.bin"
    server.add(other, PAYLOAD)
    with _dl(tmp_path, server) as dl:
        with pytest.raises(DownloadError, match="differs from the publisher's") as e:
            dl.fetch(other, md5="0" * 32)
        assert not dl.cache_path(other).exists()
        assert not dl.cache.part_path(cache_key(other)).exists()
    assert "\n" not in str(e.value) and server.count(other) == 2


def test_empty_body_is_retried_then_refused(tmp_path, server):
    server.add(URL, PAYLOAD)
    server.fault(URL, empty=True)
    with _dl(tmp_path, server) as dl:
        assert dl.fetch(URL).bytes == len(PAYLOAD)
    other = "https://files.example.org/data/empty.bin"
    server.add(other, b"")
    with _dl(tmp_path, server, retries=1) as dl:
        with pytest.raises(DownloadError, match="empty file after 2 attempts"):
            dl.fetch(other)
        assert not dl.cache_path(other).exists()


def test_refusal_names_url_and_hand_placement_works(tmp_path, server):
    missing = "https://files.example.org/gone/pp-2001.csv"
    with _dl(tmp_path, server) as dl:
        with pytest.raises(DownloadError) as e:
            dl.fetch(missing)
        where = dl.cache_path(missing)
    msg = str(e.value)
    assert "\n" not in msg and "HTTP 404" in msg and missing in msg and str(where) in msg
    assert server.count(missing) == 1  # a refusal is not retried
    # the fix the message suggests: put the file there by hand
    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_bytes(b"by hand\n")
    with _dl(tmp_path, server, offline=True) as dl:
        rec = dl.fetch(missing)
        assert rec.origin == "placed by hand" and rec.sha256 == hashlib.sha256(
            b"by hand\n").hexdigest()
        with pytest.raises(DownloadError, match="MD5"):
            dl.fetch(missing, md5="1" * 32)


def test_alternative_host_after_refusal(tmp_path, server):
    first = "https://new.example.org/pp-1995.csv"
    second = "http://old.example.org/pp-1995.csv"
    server.add(second, b"rows\n")
    msgs: list[str] = []
    with _dl(tmp_path, server, log=msgs.append) as dl:
        rec = dl.fetch(first, alternatives=[second])
    assert rec.url == second and rec.path.read_bytes() == b"rows\n"
    assert rec.key == cache_key(first)
    assert any("HTTP 404" in m and "trying" in m for m in msgs)


def test_concurrent_fetches_download_once(tmp_path, server):
    server.add(URL, PAYLOAD)
    results, errors = [], []

    def run():
        try:
            with _dl(tmp_path, server) as dl:
                results.append(dl.fetch(URL))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 3
    assert server.count(URL) == 1
    assert sum(not r.from_cache for r in results) == 1
    assert {r.sha256 for r in results} == {hashlib.sha256(PAYLOAD).hexdigest()}


def test_changed_cache_file_is_not_trusted(tmp_path, server):
    server.add(URL, PAYLOAD)
    with _dl(tmp_path, server) as dl:
        rec = dl.fetch(URL)
    rec.path.write_bytes(PAYLOAD[:-1])  # damaged after verification
    with _dl(tmp_path, server) as dl:
        again = dl.fetch(URL)
    assert not again.from_cache and again.path.read_bytes() == PAYLOAD


def test_post_body_through_mirror_and_secret_header_kept_out(tmp_path, server):
    seen = []

    def api(req):
        seen.append(req)
        return 200, {"Content-Type": "application/json"}, b'{"ok": true}'

    api_url = "https://api.example.org/webapi/rest/v1/table"
    server.add(api_url, api)
    with _dl(tmp_path, server) as dl:
        rec = dl.fetch(api_url, method="POST", body=b'{"q": 1}',
                       secret_headers={"APIKey": "sekret"},
                       secret_params={"uid": "0xkey"})
        assert dl.fetch(api_url, method="POST", body=b'{"q": 1}').from_cache
        assert not dl.fetch(api_url, method="POST", body=b'{"q": 2}').from_cache
    assert seen[0].method == "POST" and seen[0].body == b'{"q": 1}'
    assert seen[0].headers.get("APIKey") == "sekret" and seen[0].query == {"uid": "0xkey"}
    text = (tmp_path / "cache" / "manifest.json").read_text() + json.dumps(rec.to_dict())
    assert "sekret" not in text and "0xkey" not in text


def test_remote_zip_members_by_range(tmp_path, server):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(40):
            zf.writestr(f"m/{i:02d}.csv", random.Random(i).randbytes(50_000))
    data = buf.getvalue()
    zurl = "https://files.example.org/archive.zip"
    server.add(zurl, data)
    with _dl(tmp_path, server, range_chunk=64 << 10) as dl:
        with open_remote(dl, zurl) as fh, zipfile.ZipFile(fh) as zf:
            assert len(zf.namelist()) == 40
            assert zf.read("m/07.csv") == random.Random(7).randbytes(50_000)
            raw = fh.raw
        assert raw.bytes_read < len(data) / 4  # only a fraction of the archive was read
    assert all(r.headers.get("Range") for r in server.requests)
    server.add("https://files.example.org/norange.zip", data)
    server.fault("https://files.example.org/norange.zip", no_range=True)
    with _dl(tmp_path, server) as dl, pytest.raises(RangeNotSupported):
        with open_remote(dl, "https://files.example.org/norange.zip"):
            pass
