"""Round trips through a real S3 server (moto on 127.0.0.1): results, parameters and stream batches
above and below the threshold, over pipe, subprocess, pool and HTTP, with and without compression.
Every case checks the objects really written to the bucket (count and Content-Encoding).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tests.external.service import BLOCK_SCHEMA, Blobs, BlobsImpl, block
from tests.external.stores import Store, new_bucket, object_batches, objects
from tests.http.servers import spawn_port_printer, stop
from vgi_rpc import Compression, ExternalLocationConfig, Message, S3Storage, WorkerPool, connect, serve_pipe
from vgi_rpc.http import http_connect

WORKER = str(Path(__file__).resolve().parents[1] / "workers" / "blobs_worker.py")
THRESHOLD = 100_000
BIG = 300_000
SMALL = 1_000

KINDS = ["pipe", "subprocess", "pool", "http"]
COMPRESSIONS = {"none": None, "zstd": Compression(), "gzip": Compression("gzip")}


def config(store: Store, bucket: str, compression: Compression | None) -> ExternalLocationConfig:
    storage = S3Storage(bucket, endpoint_url=store.url, region_name="us-east-1")
    return ExternalLocationConfig(
        storage, externalize_threshold_bytes=THRESHOLD, compression=compression, url_validator=None
    )


def worker_flags(store: Store, bucket: str, compression: Compression | None) -> list[str]:
    flags = ["--external-s3-bucket", bucket, "--external-s3-endpoint", store.url, "--external-s3-region", "us-east-1"]
    flags += ["--external-threshold", str(THRESHOLD), "--external-allow-http"]
    return flags + (["--external-compression", compression.algorithm] if compression else [])


class Env:
    """One bucket and compression; opens a proxy over any kind of transport with both ends configured."""

    def __init__(self, store: Store, compression: Compression | None) -> None:
        self.store = store
        self.bucket = new_bucket(store)
        self.compression = compression
        self.config = config(store, self.bucket, compression)
        self.flags = worker_flags(store, self.bucket, compression)
        self._http: tuple[Any, int] | None = None
        self.pool = WorkerPool(max_idle=1, idle_timeout=30.0)

    @contextmanager
    def open(self, kind: str, on_log: Any = None) -> Iterator[Any]:
        cmd = [sys.executable, WORKER, *self.flags]
        if kind == "pipe":
            with serve_pipe(Blobs, BlobsImpl(), on_log=on_log, external_location=self.config) as proxy:
                yield proxy
        elif kind == "subprocess":
            with connect(Blobs, cmd, on_log=on_log, external_location=self.config) as proxy:
                yield proxy
        elif kind == "pool":
            with self.pool.connect(Blobs, cmd, on_log=on_log, external_location=self.config) as proxy:
                yield proxy
        else:
            if self._http is None:
                self._http = spawn_port_printer([*cmd, "--http"])
            url = f"http://127.0.0.1:{self._http[1]}"
            with http_connect(Blobs, url, on_log=on_log, external_location=self.config) as proxy:
                yield proxy

    def objects(self) -> dict[str, dict[str, Any]]:
        return objects(self.store, self.bucket)

    def close(self) -> None:
        self.pool.close()
        if self._http is not None:
            stop(self._http[0])


@pytest.fixture(scope="module", params=list(COMPRESSIONS))
def env(request: pytest.FixtureRequest, moto_server: Store) -> Iterator[Env]:
    e = Env(moto_server, COMPRESSIONS[request.param])
    try:
        yield e
    finally:
        e.close()


def _new_objects(env: Env, before: dict[str, Any]) -> list[dict[str, Any]]:
    after = env.objects()
    new = [after[k] for k in after if k not in before]
    coding = env.compression.algorithm if env.compression else None
    for head in new:
        assert head.get("ContentEncoding") == coding
    return new


@pytest.mark.parametrize("kind", KINDS)
def test_results_above_and_below_the_threshold(env: Env, kind: str) -> None:
    logs: list[Message] = []
    before = env.objects()
    with env.open(kind, on_log=logs.append) as proxy:
        assert proxy.make(SMALL) == block(SMALL)
        assert len(_new_objects(env, before)) == 0
        assert proxy.make(BIG) == block(BIG)
        new = _new_objects(env, before)
        assert len(new) == 1
        if env.compression is None:
            assert new[0]["ContentLength"] > BIG  # the IPC stream of the result
        assert proxy.make(SMALL) == block(SMALL)  # the connection goes on
    assert [m.message for m in logs] == [f"making {SMALL} bytes", f"making {BIG} bytes", f"making {SMALL} bytes"]


@pytest.mark.parametrize("kind", KINDS)
def test_parameters_above_and_below_the_threshold(env: Env, kind: str) -> None:
    before = env.objects()
    with env.open(kind) as proxy:
        assert proxy.size_of(block(SMALL)) == SMALL
        assert len(_new_objects(env, before)) == 0
        assert proxy.size_of(block(BIG)) == BIG
        assert len(_new_objects(env, before)) == 1  # the client uploaded the parameter
        assert proxy.size_of(b"") == 0


@pytest.mark.parametrize("kind", KINDS)
def test_producer_stream_batches(env: Env, kind: str) -> None:
    logs: list[Message] = []
    before = env.objects()
    with env.open(kind, on_log=logs.append) as proxy:
        got = [bytes(b.batch.column(0)[0].as_py()) for b in proxy.blocks(BIG, 3)]
        assert got == [block(BIG, i) for i in range(3)]
        assert len(_new_objects(env, before)) == 3
        # each object holds the whole turn: its log batch, then the data batch
        keys = sorted(set(env.objects()) - set(before))
        turns = [object_batches(env.store, env.bucket, key) for key in keys]
        assert sorted(t[0][1][b"vgi_rpc.log_message"] for t in turns) == [b"block 0", b"block 1", b"block 2"]
        assert [[rows for rows, _ in t] for t in turns] == [[0, 1]] * 3
        small = list(proxy.blocks(SMALL, 2))
        assert len(small) == 2 and len(_new_objects(env, before)) == 3
    assert [m.message for m in logs] == ["block 0", "block 1", "block 2", "block 0", "block 1"]


@pytest.mark.parametrize("kind", KINDS)
def test_exchange_stream_inputs_and_outputs(env: Env, kind: str) -> None:
    before = env.objects()
    with env.open(kind) as proxy, proxy.sizes() as session:
        out = session.exchange(pa.record_batch([pa.array([block(BIG)], pa.binary())], schema=BLOCK_SCHEMA))
        assert out.batch.column(0)[0].as_py() == block(BIG)
        assert len(_new_objects(env, before)) == 2  # the input (client) and the output (server)
        out = session.exchange(pa.record_batch([pa.array([block(SMALL)], pa.binary())], schema=BLOCK_SCHEMA))
        assert out.batch.column(0)[0].as_py() == block(SMALL)
        assert len(_new_objects(env, before)) == 2
