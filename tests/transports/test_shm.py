"""Shared memory: the segment layout of WIRE.md 9, batches really crossing it both ways, fallback when full."""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from benchmarks.service import Bench, BenchImpl
from tests.services import StreamService, StreamServiceImpl
from tests.transports.factories import shm_pipe_to
from vgi_rpc import AnnotatedBatch, RpcConnection, RpcServer
from vgi_rpc.shm import ShmOffload, ShmSegment
from vgi_rpc.transports.shm import HEADER_SIZE


@pytest.fixture
def segment() -> Iterator[ShmSegment]:
    seg = ShmSegment.create(1 << 20)
    yield seg
    seg.close()
    seg.unlink()


def test_segment_header_and_first_fit_allocation(segment: ShmSegment) -> None:
    header = bytes(ShmSegment.attach(segment.name)._mm[:24])
    magic, version, data_size, count, pad = struct.unpack_from("<4sIQII", header, 0)
    assert (magic, version, data_size, count, pad) == (b"VGIS", 1, (1 << 20) - HEADER_SIZE, 0, 0)
    a = segment.allocate(1000)
    b = segment.allocate(2000)
    c = segment.allocate(3000)
    assert (a, b, c) == (HEADER_SIZE, HEADER_SIZE + 1000, HEADER_SIZE + 3000)
    segment.free(b)
    assert segment.allocate(1500) == HEADER_SIZE + 1000  # first fit: the gap b left
    assert segment.allocate(600) == HEADER_SIZE + 6000  # too big for the rest of the gap
    assert segment.allocate(1 << 20) is None  # no room
    other = ShmSegment.attach(segment.name)  # another process's view of the same table
    try:
        assert other._entries() == segment._entries()
    finally:
        other.close()


def test_offload_round_trip_copies_out_and_frees(segment: ShmSegment) -> None:
    offload = ShmOffload(segment, threshold=1024)
    batch = pa.RecordBatch.from_pydict({"x": list(range(10_000)), "s": [str(i) for i in range(10_000)]})
    pointer, md = offload.offload(batch, {b"user": b"1"})
    assert pointer.num_rows == 0 and md is not None and b"vgi_rpc.shm_offset" in md and md[b"user"] == b"1"
    ((data, out_md),) = offload.resolve(pointer, md)
    assert data.equals(batch)
    assert out_md == {b"user": b"1", b"vgi_rpc.shm_source": segment.name.encode()}
    assert segment._entries() == []  # the reader freed the region
    small = pa.RecordBatch.from_pydict({"x": [1]})
    assert offload.offload(small, None)[0] is small  # below the threshold: inline
    huge = pa.RecordBatch.from_pydict({"x": list(range(300_000))})  # 2.4 MB > the 1 MiB segment
    assert offload.offload(huge, None)[0] is huge  # no room: inline, as 0.52.2 falls back
    dictionary = pa.RecordBatch.from_pydict({"d": pa.array(["a", "b"] * 5000).dictionary_encode()})
    assert offload.offload(dictionary, None)[0] is dictionary


def test_a_big_bytes_value_is_copied_out_of_the_segment_once() -> None:
    from vgi_rpc._core.wholes import first_value

    segment = ShmSegment.create(4 << 20)
    try:
        offload = ShmOffload(segment, threshold=1024)
        value = bytes(range(256)) * 4096 + b"abc"  # 1 MiB and 3 bytes
        batch = pa.RecordBatch.from_pydict({"n": [5], "data": pa.array([value], pa.binary())})
        pointer, md = offload.offload(batch, None)
        assert md is not None and b"vgi_rpc.shm_offset" in md  # it went through the segment
        ((data, _),) = offload.resolve(pointer, md)
        assert data.equals(batch) and segment._entries() == []
        got = first_value(data.column(1))
        # the value handed over is the bytes object the region was copied into, not a second copy
        assert got == value and pa.py_buffer(got).address == data.column(1).buffers()[2].address
    finally:
        segment.close()
        segment.unlink()


class _CountingPipe:
    """Counts what a transport writes on its pipe."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.written = 0
        real = transport.pipe.write

        def write(data: Any) -> None:
            self.written += sum(len(c) for c in data) if isinstance(data, list) else len(data)
            real(data)

        transport.pipe.write = write


def test_big_batches_cross_the_segment_in_both_directions() -> None:
    with shm_pipe_to(RpcServer(Bench, BenchImpl()), size=64 << 20, threshold=128 * 1024) as transport:
        counter = _CountingPipe(transport)
        with RpcConnection(Bench, transport) as proxy:
            rows = sum(b.batch.num_rows for b in proxy.bulk(batches=4, rows=262_144))  # 4 x 4 MiB out
            assert rows == 4 * 262_144
            big = AnnotatedBatch.from_pydict({"v": list(range(100_000))})  # 800 KB in, and back
            with proxy.echo() as session:
                out = session.exchange(big)
            assert out.batch.column(0).to_pylist() == list(range(100_000))
    assert transport.offload.resolved == 5  # four producer outputs and one exchange output read here
    assert transport.offload.offloaded == 1  # the exchange input went out through the segment
    assert counter.written < 20_000  # the pipe carried pointers, not the 800 KB input


def test_a_segment_too_small_falls_back_to_the_pipe() -> None:
    server = RpcServer(StreamService, StreamServiceImpl())
    with shm_pipe_to(server, size=HEADER_SIZE + 4096, threshold=64) as t:
        with RpcConnection(StreamService, t) as proxy:
            assert [b.batch.column(0)[0].as_py() for b in proxy.wide(columns=2000)] == [0]
        assert t.offload.offloaded == 0 and t.offload.resolved == 0


def test_threads_do_not_share_a_segment_between_connections() -> None:
    results: list[int] = []

    def run() -> None:
        with (
            shm_pipe_to(RpcServer(Bench, BenchImpl()), threshold=1024) as transport,
            RpcConnection(Bench, transport) as proxy,
        ):
            results.append(sum(b.batch.num_rows for b in proxy.bulk(batches=3, rows=10_000)))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == [30_000] * 3
