"""Ticks ahead: iterating a producer of ours keeps up to ``TICKS_AHEAD`` ticks in flight.

The client offers it on every stream request (``vgi_rpc.tick_ahead``); only our long-stream
server accepts, on a producer's output schema. These tests watch the producer run in-process
(``serve_pipe``: the same long-stream driver as a subprocess) and read the raw bytes of a
subprocess worker; ``tests/interop`` shows that 0.52.2 peers neither send nor take it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pytest

from tests.services import StreamService
from tests.transports.factories import open_service
from vgi_rpc import CallContext, OutputCollector, ProducerState, RpcError, Stream, serve_pipe
from vgi_rpc._core import keys
from vgi_rpc._core.longstream import TICKS_AHEAD

CALLS: list[int] = []  # the producer's state each time produce() ran (in this process)
CANCELLED: list[int] = []  # the producer's state when on_cancel ran


@dataclass
class Counting(ProducerState):
    n: int
    fail_at: int = -1
    i: int = 0

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:
        CALLS.append(self.i)
        if self.i == self.fail_at:
            raise RuntimeError(f"failed at {self.i}")
        if 0 <= self.n <= self.i:
            out.finish()
            return
        out.emit_pydict({"i": [self.i]})
        self.i += 1

    def on_cancel(self, ctx: CallContext) -> None:
        CANCELLED.append(self.i)


class Counter(Protocol):
    def count(self, n: int, fail_at: int = -1) -> Stream[ProducerState]: ...
    def ping(self) -> str: ...


class CounterImpl:
    def count(self, n: int, fail_at: int = -1) -> Stream[Counting]:
        return Stream(output_schema=pa.schema([pa.field("i", pa.int64())]), state=Counting(n, fail_at))

    def ping(self) -> str:
        return "pong"


@pytest.fixture
def proxy() -> Iterator[Counter]:
    CALLS.clear()
    with serve_pipe(Counter, CounterImpl()) as p:
        yield p


def settled(expected: int) -> int:
    """The number of produce() calls once it reached *expected* (or 5 s passed), and stayed 0.1 s."""
    deadline = time.monotonic() + 5
    while len(CALLS) < expected and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.1)
    return len(CALLS)


def test_iteration_runs_the_producer_ahead_by_the_window(proxy: Counter) -> None:
    it = iter(proxy.count(n=-1))
    got = [next(it).batch.column("i")[0].as_py(), next(it).batch.column("i")[0].as_py()]
    assert got == [0, 1]
    # the first tick went alone (the offer is answered on the output schema); then the window
    assert settled(2 + TICKS_AHEAD) == 2 + TICKS_AHEAD
    got += [b.batch.column("i")[0].as_py() for b, _ in zip(it, range(30), strict=False)]
    assert got == list(range(32))
    it.close()  # breaking out: the batches answered ahead are read and dropped
    assert len(CALLS) <= 32 + TICKS_AHEAD + 1
    assert proxy.ping() == "pong"


def test_every_batch_arrives_once_in_order_and_the_end_is_seen(proxy: Counter) -> None:
    for n in (0, 1, TICKS_AHEAD - 1, TICKS_AHEAD, TICKS_AHEAD + 1, 50):
        batches = list(proxy.count(n=n))
        assert [b.batch.column("i")[0].as_py() for b in batches] == list(range(n))
        assert all(not (b.batch.schema.metadata or {}) for b in batches)  # the acceptance is not the user's
        assert proxy.ping() == "pong"


def test_tick_stays_lock_step(proxy: Counter) -> None:
    with proxy.count(n=-1) as session:
        for k in range(3):
            out = session.tick()
            assert out is not None and out.batch.column("i")[0].as_py() == k
        assert settled(4) == 3
    assert proxy.ping() == "pong"


def test_cancel_in_the_middle_of_an_iteration(proxy: Counter) -> None:
    CANCELLED.clear()
    with proxy.count(n=-1) as session:
        it = iter(session)
        assert [next(it).batch.column("i")[0].as_py() for _ in range(3)] == [0, 1, 2]
        session.cancel()  # after the ticks in flight: their batches are read and dropped
        assert session.finished
    assert len(CANCELLED) == 1 and 3 <= CANCELLED[0] <= 3 + TICKS_AHEAD + 1
    assert proxy.ping() == "pong"
    assert [b.batch.column("i")[0].as_py() for b in proxy.count(n=4)] == [0, 1, 2, 3]


def test_an_error_mid_stream_arrives_after_the_batches_before_it(proxy: Counter) -> None:
    got = []
    with pytest.raises(RpcError) as info:
        for batch in proxy.count(n=50, fail_at=12):
            got.append(batch.batch.column("i")[0].as_py())
    assert got == list(range(12))
    assert info.value.error_message.endswith("failed at 12")
    assert proxy.ping() == "pong"
    assert [b.batch.column("i")[0].as_py() for b in proxy.count(n=3)] == [0, 1, 2]


WORKER = str(Path(__file__).parent.parent / "workers" / "everything_worker.py")


def _output_schema_metadata(offer: bool, method: str, params: dict[str, object]) -> dict[bytes, bytes]:
    """Send one stream request (with or without the offer) to a worker; the output schema's metadata."""
    from vgi_rpc._core.framing import BatchReader, FrameReader
    from vgi_rpc._core.ipc import TICK_MESSAGE, encode_stream
    from vgi_rpc._core.service import service_spec

    md = {
        keys.METHOD: method.encode(),
        keys.REQUEST_VERSION_KEY: keys.REQUEST_VERSION_B,
        keys.PROTOCOL: b"StreamService",
    }
    if offer:
        md[keys.TICK_AHEAD] = b"1"
    schema = service_spec(StreamService).methods[method].params_schema
    batch = pa.RecordBatch.from_pydict({k: [v] for k, v in params.items()}, schema=schema)
    request = encode_stream(batch.schema, [(batch, md)]).to_pybytes()
    proc = subprocess.Popen([sys.executable, WORKER, "--streams"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        if method == "running_sum":
            first = pa.RecordBatch.from_pydict({"value": [1.0]})
            opening = encode_stream(first.schema, [(first, None)], end=False).to_pybytes()
        else:
            opening = pa.schema([]).serialize().to_pybytes() + TICK_MESSAGE
        proc.stdin.write(request + opening)
        proc.stdin.flush()
        reader = BatchReader(FrameReader(proc.stdout.read))
        batch, md = reader.next() or (None, None)
        assert batch is not None and not md, md  # the call started: its first output is data
        return {keys.TICK_AHEAD: b"1"} if reader.tick_ahead else dict(reader.schema.metadata or {})
    finally:
        proc.kill()
        proc.wait()


def test_only_an_offered_producer_accepts() -> None:
    assert _output_schema_metadata(True, "count", {"n": 3, "chatty": False, "fail_at": -1}) == {keys.TICK_AHEAD: b"1"}
    assert (
        _output_schema_metadata(False, "count", {"n": 3, "chatty": False, "fail_at": -1}) == {}
    )  # what a 0.52.2 client sees
    assert _output_schema_metadata(True, "running_sum", {}) == {}  # an exchange: never


@pytest.mark.parametrize("kind", ["pipe", "subprocess", "pool", "shm", "pool-shm"])
def test_cancel_and_early_exit_mid_iteration_keep_the_connection_in_step(kind: str) -> None:
    with open_service(kind, "streams") as proxy:
        before = proxy.cancelled_count()
        with proxy.count(n=-1) as session:
            it = iter(session)
            assert [next(it).batch.column("i")[0].as_py() for _ in range(3)] == [0, 1, 2]
            session.cancel()
        assert proxy.cancelled_count() == before + 1
        for batch in proxy.count(n=-1):
            if batch.batch.column("i")[0].as_py() == 5:
                break
        assert [b.batch.column("i")[0].as_py() for b in proxy.count(n=3)] == [0, 1, 2]
        assert proxy.ping() == "pong"
