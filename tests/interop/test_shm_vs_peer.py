"""Shared memory with the reference peer: our client and segment against its worker (and its client against ours).

Data must really cross the segment: the pipe carries pointer batches, so its bytes stay far
below the payload, in both directions.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.service import Bench
from vgi_rpc import AnnotatedBatch, RpcConnection, SubprocessTransport
from vgi_rpc.shm import ShmPipeTransport, ShmSegment

pytestmark = pytest.mark.interop
WORKERS = Path(__file__).resolve().parents[1] / "workers"
ROOT = Path(__file__).resolve().parents[2]


class Counted:
    """Counts the bytes our side writes and reads on a pipe transport."""

    def __init__(self, pipe: SubprocessTransport) -> None:
        self.sent = self.received = 0
        write, read, readinto, peek = pipe.write, pipe.read, pipe.readinto, pipe.peek

        def counted_write(data: Any) -> None:
            self.sent += sum(len(c) for c in data) if isinstance(data, list) else len(data)
            write(data)

        def counted_read(n: int) -> bytes:
            data = read(n)
            self.received += len(data)
            return data

        def counted_readinto(buf: Any) -> int:
            got = readinto(buf)  # type: ignore[misc]
            self.received += got
            return got

        pipe.write, pipe.read, pipe.readinto, pipe.peek = counted_write, counted_read, counted_readinto, peek  # type: ignore[method-assign]


@pytest.fixture
def peer_bench(peer_python: Path) -> Iterator[tuple[ShmPipeTransport, Counted]]:
    os.environ["VGI_TEST_SERVICE"] = "bench"
    segment = ShmSegment.create(64 << 20)
    pipe = SubprocessTransport([str(peer_python), "-I", str(WORKERS / "peer_worker.py")])
    counted = Counted(pipe)
    try:
        yield ShmPipeTransport(pipe, segment), counted
    finally:
        pipe.close()
        segment.close()
        segment.unlink()


def test_our_client_and_segment_against_the_reference_worker(peer_bench: tuple[ShmPipeTransport, Counted]) -> None:
    transport, counted = peer_bench
    with RpcConnection(Bench, transport) as proxy:
        rows = sum(b.batch.num_rows for b in proxy.bulk(batches=4, rows=262_144))  # 16 MiB down
        assert rows == 4 * 262_144
        big = AnnotatedBatch.from_pydict({"v": list(range(100_000))})  # 800 KB up (>= 128 KiB), and back
        with proxy.echo() as session:
            out = session.exchange(big)
        assert out.batch.column(0).to_pylist() == list(range(100_000))
        small = sum(b.batch.num_rows for b in proxy.bulk(batches=2, rows=10))  # small: inline
        assert small == 20
    assert transport.offload.resolved == 5  # the reference server answered through our segment
    assert transport.offload.offloaded == 1  # and read our exchange input from it
    assert counted.received < 50_000 and counted.sent < 20_000  # pointers on the pipe, not 17 MB


def test_a_batch_larger_than_the_segment_falls_back_inline(peer_python: Path) -> None:
    os.environ["VGI_TEST_SERVICE"] = "bench"
    segment = ShmSegment.create(1 << 20)  # 1 MiB: a 4 MiB batch cannot fit
    pipe = SubprocessTransport([str(peer_python), "-I", str(WORKERS / "peer_worker.py")])
    counted = Counted(pipe)
    try:
        transport = ShmPipeTransport(pipe, segment)
        with RpcConnection(Bench, transport) as proxy:
            assert sum(b.batch.num_rows for b in proxy.bulk(batches=2, rows=262_144)) == 2 * 262_144
        assert transport.offload.resolved == 0
        assert counted.received > 8_000_000  # it came over the pipe
    finally:
        pipe.close()
        segment.close()
        segment.unlink()


PEER_CLIENT = """
import json, sys
sys.path.append(sys.argv[1])
from vgi_rpc import AnnotatedBatch, RpcConnection, ShmPipeTransport, SubprocessTransport
from vgi_rpc.shm import ShmSegment
from benchmarks.service import Bench
segment = ShmSegment.create(64 << 20)
pipe = SubprocessTransport(json.loads(sys.argv[2]))
out = {}
try:
    with RpcConnection(Bench, ShmPipeTransport(pipe, segment)) as proxy:
        batches = list(proxy.bulk(batches=4, rows=262144))
        out["rows"] = sum(b.batch.num_rows for b in batches)
        out["via_shm"] = sum(1 for b in batches if b.custom_metadata and b"vgi_rpc.shm_source" in b.custom_metadata)
        big = AnnotatedBatch.from_pydict({"v": list(range(100_000))})
        with proxy.echo() as session:
            out["echo"] = session.exchange(big).batch.num_rows
finally:
    pipe.close()
    segment.close()
    segment.unlink()
print(json.dumps(out))
"""


def test_the_reference_client_and_segment_against_our_worker(run_peer: Any, tmp_path: Path) -> None:
    counts = tmp_path / "counts.json"
    worker = [
        sys.executable,
        str(WORKERS / "counting_relay.py"),
        str(counts),
        sys.executable,
        str(ROOT / "benchmarks" / "service.py"),
    ]
    done = run_peer(PEER_CLIENT, str(ROOT), json.dumps(worker))
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {"rows": 4 * 262_144, "via_shm": 4, "echo": 100_000}
    crossed = json.loads(counts.read_text())
    # 16 MiB down and 800 KB up (and 800 KB back) went through the segment; the pipe carried pointers
    assert crossed["from_worker"] < 50_000 and crossed["to_worker"] < 20_000, crossed
