"""The Offload seam: both state machines hand every batch out and in through it, once.

An in-memory Offload stands in for shared memory and S3/GCS: a batch of 3 rows or more leaves
as a zero-row pointer batch (``vgi_rpc.location: mem://N``) and is resolved back on the other
side, with a log batch handed on before the data. Results, stream outputs and exchange inputs
all cross it; small batches stay inline.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

import pyarrow as pa
import pytest

from tests.services import Everything, EverythingImpl, StreamService, StreamServiceImpl
from vgi_rpc import AnnotatedBatch, Level, Message, RpcConnection, RpcServer, make_pipe_pair
from vgi_rpc._core import keys
from vgi_rpc._core.ipc import Items, empty_batch


class MemoryOffload:
    def __init__(self, min_rows: int = 3) -> None:
        self.min_rows = min_rows
        self.store: dict[bytes, pa.RecordBatch] = {}
        self.offloaded = 0
        self.resolved = 0

    def offload(
        self, batch: pa.RecordBatch, metadata: Mapping[bytes, bytes] | None
    ) -> tuple[pa.RecordBatch, dict[bytes, bytes] | None]:
        if batch.num_rows < self.min_rows:
            return batch, dict(metadata) if metadata else None
        key = f"mem://{len(self.store)}".encode()
        self.store[key] = batch
        self.offloaded += 1
        return empty_batch(batch.schema), {**(metadata or {}), keys.LOCATION: key}

    def offload_turn(self, items: Items) -> Items:
        return [item if item[1] and keys.LOG_LEVEL in item[1] else self.offload(*item) for item in items]

    def resolve(self, batch: pa.RecordBatch, metadata: Mapping[bytes, bytes] | None) -> Items:
        key = (metadata or {}).get(keys.LOCATION)
        if key is None or not key.startswith(b"mem://"):
            return [(batch, dict(metadata) if metadata else None)]
        self.resolved += 1
        rest = {k: v for k, v in (metadata or {}).items() if k != keys.LOCATION}
        log = (empty_batch(batch.schema), {keys.LOG_LEVEL: b"DEBUG", keys.LOG_MESSAGE: b"fetched " + key})
        return [log, (self.store[key], rest or None)]


@pytest.fixture
def offload() -> MemoryOffload:
    return MemoryOffload()


def _connect(protocol: type, impl: object, offload: MemoryOffload, logs: list[Message]) -> Iterator[object]:
    client, server_side = make_pipe_pair()
    server = RpcServer(protocol, impl, offload=offload)
    thread = threading.Thread(target=server.serve, args=(server_side,), daemon=True)
    thread.start()
    with RpcConnection(protocol, client, on_log=logs.append, offload=offload) as proxy:
        yield proxy
    thread.join(timeout=5)
    server_side.close()


def test_unary_results_cross_the_seam(offload: MemoryOffload) -> None:
    logs: list[Message] = []
    for proxy in _connect(Everything, EverythingImpl(), offload, logs):
        assert proxy.echo_list(value=[1, 2, 3]) == [1, 2, 3]  # type: ignore[attr-defined]
    # a one-row result stays inline: the seam is asked, nothing is offloaded
    assert offload.offloaded == 0


def test_stream_outputs_and_exchange_inputs_cross_the_seam() -> None:
    offload = MemoryOffload(min_rows=1)  # every data batch leaves as a pointer
    logs: list[Message] = []
    for proxy in _connect(StreamService, StreamServiceImpl(), offload, logs):
        with proxy.running_sum() as session:  # type: ignore[attr-defined]
            big = session.exchange(AnnotatedBatch.from_pydict({"value": [1.0, 2.0, 3.0]}))
            small = session.exchange(AnnotatedBatch.from_pydict({"value": [4.0]}))
        assert big.batch.column(0).to_pylist() == [6.0]
        assert small.batch.column(0).to_pylist() == [10.0]
        assert [b.batch.num_columns for b in proxy.wide(columns=4)] == [4]  # type: ignore[attr-defined]
    # two exchange inputs (client out, server in), two exchange outputs and one producer
    # output (server out, client in): each offloaded once and resolved once
    assert offload.offloaded == 5 and offload.resolved == 5
    # the client delivered the log each resolved output held (the server drops those of inputs)
    assert [m.message for m in logs] == ["fetched mem://1", "fetched mem://3", "fetched mem://4"]


def test_a_resolved_pointer_delivers_its_logs_first(offload: MemoryOffload) -> None:
    from vgi_rpc._core.invoke import sort_items

    seen: list[Message] = []
    batch = pa.RecordBatch.from_pydict({"i": [1, 2, 3, 4]})
    pointer, md = offload.offload(batch, None)
    data, error = sort_items([(pointer, md)], seen.append, what="t()", offload=offload)
    assert error is None
    assert data == [(batch, None)]
    assert seen == [Message(Level.DEBUG, "fetched mem://0")]
