"""The fetcher against real servers: parallel ranged GETs (plain and compressed objects), redirects
that the URL policy allows, and retries of a store that fails twice before answering."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from tests.external.stores import Store
from vgi_rpc import Compression, ExternalLocationConfig, FetchConfig, S3Storage
from vgi_rpc.external import ExternalOffload

SCHEMA = pa.schema([pa.field("x", pa.int64())])


def _batch(rows: int) -> pa.RecordBatch:
    return pa.record_batch([pa.array(range(rows), pa.int64())], schema=SCHEMA)


@pytest.mark.parametrize("compression", [None, Compression(), Compression("gzip")])
def test_parallel_ranged_gets(moto_server: Store, bucket: str, compression: Compression | None) -> None:
    storage = S3Storage(bucket, endpoint_url=moto_server.url, region_name="us-east-1")
    writer = ExternalOffload(ExternalLocationConfig(storage, externalize_threshold_bytes=1, compression=compression))
    batch = _batch(200_000)  # 1.6 MB before compression
    pointer, md = writer.offload(batch, None)
    assert pointer.num_rows == 0 and md is not None
    fetch = FetchConfig(parallel_threshold_bytes=1, chunk_size_bytes=16_384, max_parallel_requests=4)
    reader = ExternalOffload(ExternalLocationConfig(url_validator=None, fetch_config=fetch))
    [(got, got_md)] = reader.resolve(pointer, md)
    assert got.equals(batch)
    assert got_md[b"vgi_rpc.location.source"].startswith(moto_server.url.encode())
    assert b"?" not in got_md[b"vgi_rpc.location.source"]
    assert float(got_md[b"vgi_rpc.location.fetch_ms"]) > 0


class _Store(http.server.BaseHTTPRequestHandler):
    """/hop/N redirects to /hop/N-1 ... /hop/0, which is the object; /flaky fails twice, then answers."""

    body = b""
    failures: list[int] = [0]

    def do_GET(self) -> None:
        if self.path.startswith("/hop/") and self.path != "/hop/0":
            self.send_response(307)
            self.send_header("Location", f"/hop/{int(self.path.split('/')[2]) - 1}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/flaky" and self.failures[0] < 2:
            self.failures[0] += 1
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def plain_store() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Store)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _pointer(url: str) -> tuple[pa.RecordBatch, dict[bytes, bytes]]:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, SCHEMA) as writer:
        writer.write_batch(_batch(10))
    _Store.body = sink.getvalue().to_pybytes()
    return _batch(0), {b"vgi_rpc.location": url.encode()}  # no hash: a reader only verifies when given one


def test_redirects_within_the_limit_are_followed(plain_store: str) -> None:
    seen: list[str] = []
    reader = ExternalOffload(ExternalLocationConfig(url_validator=seen.append))
    [(got, _)] = reader.resolve(*_pointer(f"{plain_store}/hop/5"))
    assert got.equals(_batch(10))
    assert seen == [f"{plain_store}/hop/{n}" for n in range(5, -1, -1)]  # every hop went through the policy


def test_a_failing_store_is_tried_three_times(plain_store: str) -> None:
    _Store.failures[0] = 0
    reader = ExternalOffload(ExternalLocationConfig(url_validator=None, retry_delay_seconds=0.05))
    [(got, _)] = reader.resolve(*_pointer(f"{plain_store}/flaky"))
    assert got.equals(_batch(10)) and _Store.failures[0] == 2


def test_fetch_config_takes_0_52_2_s_arguments() -> None:
    config = FetchConfig(
        parallel_threshold_bytes=64 << 20,
        chunk_size_bytes=8 << 20,
        max_parallel_requests=8,
        timeout_seconds=60.0,
        max_fetch_bytes=256 << 20,
        max_decompressed_bytes=None,
        max_redirects=5,
        speculative_retry_multiplier=2.0,
        max_speculative_hedges=4,
    )
    assert config.decoded_limit == 256 << 20
