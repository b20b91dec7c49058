"""Upload URLs vended by our HTTP server (``upload_url_provider``), used by the reference 0.52.2 client.

Its ``request_upload_urls`` gets signed pairs from ``POST /vgi/__upload_url__/init``; its client,
meeting our ``max_request_bytes`` (413), uploads the big parameter itself and sends a pointer
batch, which our server resolves.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pyarrow as pa
import pytest

from tests.external.service import Blobs, BlobsImpl
from tests.external.stores import Store, objects
from vgi_rpc import ExternalLocationConfig, RpcServer, S3Storage
from vgi_rpc.http import make_wsgi_app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def app_url(moto_server: Store, bucket: str) -> Iterator[str]:
    storage = S3Storage(bucket, endpoint_url=moto_server.url, region_name="us-east-1")
    server = RpcServer(Blobs, BlobsImpl(), external_location=ExternalLocationConfig(url_validator=None))
    app = make_wsgi_app(server, upload_url_provider=storage, max_upload_bytes=64 << 20, max_request_bytes=100_000)
    httpd = make_server("127.0.0.1", 0, app, server_class=_Server, handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def test_capabilities_and_the_route(app_url: str) -> None:
    headers = httpx.options(f"{app_url}/vgi/health", timeout=10).headers
    assert headers["VGI-Upload-URL-Support"] == "true"
    assert headers["VGI-Max-Upload-Bytes"] == str(64 << 20)
    assert headers["VGI-Externalization-Enabled"] == "false"  # it resolves pointers, uploads nothing itself
    response = _vend(app_url, 2)
    assert response.status_code == 200
    table = pa.ipc.open_stream(response.content).read_all()
    assert table.schema.names == ["upload_url", "download_url", "expires_at"]
    assert str(table.schema.field("expires_at").type) == "timestamp[us, tz=UTC]"
    assert table.num_rows == 2
    assert all("X-Amz-Signature=" in u for u in table.column("upload_url").to_pylist())
    for count in (0, 101):
        refused = _vend(app_url, count)
        assert refused.status_code == 400
        error = pa.ipc.open_stream(refused.content).read_next_batch_with_custom_metadata()[1]
        assert b"count must be between 1 and 100" in error[b"vgi_rpc.log_message"]


def _vend(app_url: str, count: int) -> httpx.Response:
    batch = pa.record_batch([pa.array([count], pa.int64())], names=["count"])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch, custom_metadata={"vgi_rpc.method": "__upload_url__", "vgi_rpc.request_version": "1"})
    return httpx.post(
        f"{app_url}/vgi/__upload_url__/init",
        content=sink.getvalue().to_pybytes(),
        headers={"Content-Type": "application/vnd.apache.arrow.stream"},
        timeout=10,
    )


PEER_CLIENT = """
import json, sys
sys.path.append(sys.argv[1])
import httpx2 as httpx
import vgi_rpc
from vgi_rpc import request_upload_urls
from vgi_rpc.http import http_connect
from tests.external.service import Blobs, block

url = sys.argv[2]
pairs = request_upload_urls(url, count=3, prefix="/vgi")
put = httpx.put(pairs[0].upload_url, content=b"hello")
fetched = httpx.get(pairs[0].download_url).content
with http_connect(Blobs, url, prefix="/vgi") as proxy:
    size = proxy.size_of(data=block(300_000))  # over max_request_bytes: 413, then an upload URL
print(json.dumps({"pairs": len(pairs), "put": put.status_code, "fetched": fetched.decode(), "size": size}))
"""


@pytest.mark.interop
def test_the_reference_client_uploads_through_our_urls(
    run_peer,
    app_url: str,
    moto_server: Store,
    bucket: str,  # type: ignore[no-untyped-def]
) -> None:
    from tests.conftest import ROOT

    done = run_peer(PEER_CLIENT, str(ROOT), app_url)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "pairs": 3,
        "put": 200,
        "fetched": "hello",
        "size": 300_000,
    }
    assert len(objects(moto_server, bucket)) == 2  # "hello", and the parameter its client uploaded
