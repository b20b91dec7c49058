"""Acceptance 3: pointers to bad objects give a clear ExternalLocationError and the connection stays usable.

The objects are really served over HTTP (moto, or a redirecting server on 127.0.0.1); what makes
them bad is a misbehaving store, as a user's own ``ExternalStorage`` could be: it rewrites,
truncates or deletes the object after uploading it, stores a decompression bomb, or hands out a
URL that redirects forever. Results are resolved by our client, parameters by our server (which
answers an error and never calls the method).
"""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pytest
import zstandard

from tests.external.service import Blobs, BlobsImpl, block
from tests.external.stores import Store, objects, s3_client
from tests.external.test_s3_roundtrip import BIG, SMALL, THRESHOLD
from tests.transports.factories import pipe_to
from vgi_rpc import (
    Compression,
    ExternalLocationConfig,
    ExternalLocationError,
    FetchConfig,
    RpcConnection,
    RpcError,
    RpcServer,
    S3Storage,
)


class BadStore(S3Storage):
    """An S3 store that spoils each object after uploading it, per *mode*."""

    def __init__(self, store: Store, bucket: str, mode: str, redirect_url: str = "") -> None:
        super().__init__(bucket, endpoint_url=store.url, region_name="us-east-1")
        self.mode = mode
        self.redirect_url = redirect_url
        self.s3 = s3_client(store)

    def upload(self, data: bytes, schema: pa.Schema, *, content_encoding: str | None = None) -> str:
        if self.mode == "bomb":  # 64 MiB of zeros in a few KiB of zstd
            data, content_encoding = zstandard.ZstdCompressor().compress(bytes(64 << 20)), "zstd"
        url = super().upload(data, schema, content_encoding=content_encoding)
        key = url.split("?")[0].split(f"/{self.bucket}/", 1)[1]
        if self.mode == "altered":  # same length, one byte changed
            body = bytearray(data)
            body[len(body) // 2] ^= 0xFF
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=bytes(body))
        elif self.mode == "truncated":
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data[: len(data) // 2])
        elif self.mode == "missing":
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        elif self.mode == "redirect-loop":
            return self.redirect_url
        return url


class _Loop(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(302)
        if self.path.startswith("/away"):  # to another host name of the same server
            self.send_header("Location", f"http://localhost:{self.server.server_address[1]}/loop")
        else:
            self.send_header("Location", self.path)  # itself, forever
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def redirect_loop() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Loop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/loop/object.arrow"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


CASES = {
    "altered": "does not match its SHA-256",
    "truncated": "does not match its SHA-256",
    "missing": "HTTP 404",
    "bomb": "decodes to more than max_decompressed_bytes",
    "redirect-loop": "more than max_redirects (5) redirects",
}
FETCH = FetchConfig(max_fetch_bytes=16 << 20, timeout_seconds=20)


def _configs(store: BadStore, fetch: FetchConfig = FETCH, **reader: Any) -> tuple[Any, Any]:
    writer = ExternalLocationConfig(store, externalize_threshold_bytes=THRESHOLD, url_validator=None)
    options: dict[str, Any] = {"url_validator": None, "retry_delay_seconds": 0.05, "fetch_config": fetch, **reader}
    return writer, ExternalLocationConfig(**options)


@contextmanager
def pair(impl: Any, server: ExternalLocationConfig, client: ExternalLocationConfig) -> Iterator[Any]:
    """A proxy over an in-process pipe whose server and client ends have their own configs."""
    with (
        pipe_to(RpcServer(Blobs, impl, external_location=server)) as transport,
        RpcConnection(Blobs, transport, external_location=client) as proxy,
    ):
        yield proxy


@pytest.mark.parametrize("mode", list(CASES))
def test_bad_result_objects(moto_server: Store, bucket: str, redirect_loop: str, mode: str) -> None:
    writer, reader = _configs(BadStore(moto_server, bucket, mode, redirect_loop))
    with pair(_Server(), writer, reader) as proxy:
        with pytest.raises(ExternalLocationError, match=re.escape(CASES[mode])) as caught:
            proxy.make(BIG)
        assert caught.value.error_type == "RuntimeError"  # 0.52.2 raises a RuntimeError here
        assert isinstance(caught.value, RuntimeError)
        assert "Signature" not in str(caught.value)  # no signed query string in errors
        assert proxy.make(SMALL) == block(SMALL)  # the connection stays usable
        assert proxy.make(SMALL) == block(SMALL)


@pytest.mark.parametrize("mode", list(CASES))
def test_bad_parameter_objects_are_refused_by_the_server(
    moto_server: Store, bucket: str, redirect_loop: str, mode: str
) -> None:
    writer, reader = _configs(BadStore(moto_server, bucket, mode, redirect_loop))
    impl = _Server()
    with pair(impl, reader, writer) as proxy:
        with pytest.raises(RpcError, match=re.escape(CASES[mode])) as caught:
            proxy.size_of(block(BIG))
        assert caught.value.error_type == "ExternalLocationError"
        assert impl.calls == 0  # the method never ran
        assert proxy.size_of(block(SMALL)) == SMALL
        assert impl.calls == 1


def test_an_object_over_max_fetch_bytes(moto_server: Store, bucket: str) -> None:
    writer, reader = _configs(BadStore(moto_server, bucket, "ok"), FetchConfig(max_fetch_bytes=BIG // 2))
    with pair(_Server(), writer, reader) as proxy:
        with pytest.raises(ExternalLocationError, match=r"over max_fetch_bytes \(150000\)"):
            proxy.make(BIG)
        assert proxy.make(SMALL) == block(SMALL)


def test_an_object_that_decodes_over_max_decompressed_bytes(moto_server: Store, bucket: str) -> None:
    storage = S3Storage(bucket, endpoint_url=moto_server.url, region_name="us-east-1")
    writer = ExternalLocationConfig(storage, externalize_threshold_bytes=THRESHOLD, compression=Compression())
    reader = ExternalLocationConfig(url_validator=None, fetch_config=FetchConfig(max_decompressed_bytes=BIG // 2))
    with pair(_Server(), writer, reader) as proxy:
        with pytest.raises(ExternalLocationError, match="zstd object decodes to more than max_decompressed_bytes"):
            proxy.make(BIG)
        assert proxy.make(SMALL) == block(SMALL)


def test_the_default_url_policy_refuses_http(moto_server: Store, bucket: str) -> None:
    storage = S3Storage(bucket, endpoint_url=moto_server.url, region_name="us-east-1")
    writer = ExternalLocationConfig(storage, externalize_threshold_bytes=THRESHOLD)
    with pair(_Server(), writer, ExternalLocationConfig()) as proxy:
        with pytest.raises(ExternalLocationError, match=re.escape("URL policy refused http://127.0.0.1")) as caught:
            proxy.make(BIG)
        assert "?" not in str(caught.value)  # the signed query string stays out of the message
        assert proxy.make(SMALL) == block(SMALL)
    assert len(objects(storage_store(moto_server), bucket)) == 1  # written by the server, never fetched


def test_a_redirect_to_a_refused_host(moto_server: Store, bucket: str, redirect_loop: str) -> None:
    refused: list[str] = []

    def only_ours(url: str) -> None:
        if not url.startswith("http://127.0.0.1:"):
            refused.append(url)
            raise ValueError("not a host we trust")

    away = redirect_loop.replace("/loop/", "/away/")
    writer, _ = _configs(BadStore(moto_server, bucket, "redirect-loop", away))
    reader = ExternalLocationConfig(url_validator=only_ours, retry_delay_seconds=0.05)
    with pair(_Server(), writer, reader) as proxy:
        with pytest.raises(ExternalLocationError, match="URL policy refused"):
            proxy.make(BIG)
        assert proxy.make(SMALL) == block(SMALL)
    assert refused == [redirect_loop.replace("127.0.0.1", "localhost").replace("/loop/object.arrow", "/loop")]


def storage_store(store: Store) -> Store:
    return store


class _Server(BlobsImpl):
    """The Blobs implementation, counting size_of calls."""

    def __init__(self) -> None:
        self.calls = 0

    def size_of(self, data: bytes) -> int:
        self.calls += 1
        return len(data)


@pytest.mark.parametrize("mode", ["altered", "missing"])
def test_a_bad_stream_batch(moto_server: Store, bucket: str, mode: str) -> None:
    writer, reader = _configs(BadStore(moto_server, bucket, mode))
    with pair(_Server(), writer, reader) as proxy:
        with pytest.raises(ExternalLocationError, match=re.escape(CASES[mode])), proxy.blocks(BIG, 3) as session:
            for _ in session:
                pass
        assert proxy.make(SMALL) == block(SMALL)  # leaving the with block ended the stream cleanly
