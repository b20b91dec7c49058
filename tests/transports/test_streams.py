"""The stream contract, run over every transport: producers, exchanges, headers, logs, errors, cancel."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tests.services import CountHeader, StreamService, StreamServiceImpl
from tests.transports.factories import KINDS, open_service
from vgi_rpc import AnnotatedBatch, Level, Message, ProtocolError, RpcError

WORKER = str(Path(__file__).parent.parent / "workers" / "everything_worker.py")


class Logs(list[Message]):
    pass


@pytest.fixture(params=KINDS)
def svc(request: pytest.FixtureRequest) -> Iterator[tuple[StreamService, Logs]]:
    logs = Logs()
    with open_service(request.param, "streams", logs.append) as proxy:
        yield proxy, logs


def values(batches: Any) -> list[int]:
    return [b.batch.column("i")[0].as_py() for b in batches]


def test_producer_yields_every_batch_then_connection_is_free(svc: tuple[StreamService, Logs]) -> None:
    proxy, _ = svc
    assert values(proxy.count(n=5)) == [0, 1, 2, 3, 4]
    assert values(proxy.count(n=0)) == []
    assert proxy.ping() == "pong"


def test_logs_interleave_with_batches_in_order(svc: tuple[StreamService, Logs]) -> None:
    proxy, logs = svc
    seen: list[str] = []
    logs.clear()
    for batch in proxy.count(n=3, chatty=True):
        seen.append(f"log:{logs[-1].message}")
        seen.append(f"data:{batch.batch.column('i')[0].as_py()}")
    assert seen == ["log:batch 0", "data:0", "log:batch 1", "data:1", "log:batch 2", "data:2"]
    assert all(m.level is Level.INFO for m in logs)


def test_header_and_init_logs(svc: tuple[StreamService, Logs]) -> None:
    proxy, logs = svc
    logs.clear()
    with proxy.count_with_header(n=2) as session:
        assert session.header == CountHeader(total=2, label="2 items")
        assert [m.message for m in logs] == ["starting"]
        assert values(session) == [0, 1]
    assert proxy.ping() == "pong"


def test_exchange_accumulates_and_ends_with_the_block(svc: tuple[StreamService, Logs]) -> None:
    proxy, _ = svc
    with proxy.running_sum() as session:
        out = session.exchange(AnnotatedBatch.from_pydict({"value": [1.0, 2.0]}))
        assert out.batch.to_pydict() == {"total": [3.0]}
        out = session.exchange(pa.RecordBatch.from_pydict({"value": [0.5]}))
        assert out.batch.to_pydict() == {"total": [3.5]}
    with proxy.running_sum():
        pass  # opened and closed without any input
    assert proxy.ping() == "pong"


def test_exchange_input_is_cast_when_compatible(svc: tuple[StreamService, Logs]) -> None:
    proxy, _ = svc
    with proxy.running_sum() as session:
        out = session.exchange(pa.RecordBatch.from_pydict({"value": pa.array([2], pa.int32())}))
        assert out.batch.to_pydict() == {"total": [2.0]}


def test_exchange_with_wrong_schema_raises_and_connection_survives(svc: tuple[StreamService, Logs]) -> None:
    proxy, _ = svc
    with proxy.running_sum() as session, pytest.raises(RpcError) as info:
        session.exchange(AnnotatedBatch.from_pydict({"other": [1.0]}))
    assert info.value.error_type == "TypeError"
    assert proxy.ping() == "pong"


def test_dynamic_output_schema(svc: tuple[StreamService, Logs]) -> None:
    proxy, _ = svc
    for columns in (1, 3):
        (batch,) = list(proxy.wide(columns=columns))
        assert batch.batch.schema.names == [f"c{k}" for k in range(columns)]


def test_error_mid_stream_after_the_batches_before_it(svc: tuple[StreamService, Logs]) -> None:
    proxy, _ = svc
    got: list[int] = []
    with pytest.raises(RpcError) as info:
        for batch in proxy.count(n=10, fail_at=2):
            got.append(batch.batch.column("i")[0].as_py())
    assert got == [0, 1]
    assert info.value.error_type == "RuntimeError"
    assert info.value.error_message == "failed at 2"
    assert "produce" in info.value.remote_traceback
    assert proxy.ping() == "pong"


def test_error_at_start(svc: tuple[StreamService, Logs]) -> None:
    proxy, _ = svc
    with pytest.raises(RpcError, match="cannot start"):
        list(proxy.broken_start())
    assert proxy.ping() == "pong"


def test_early_break_and_with_block_end_the_stream_cleanly(svc: tuple[StreamService, Logs]) -> None:
    proxy, _ = svc
    for batch in proxy.count(n=-1):  # never finishes on its own
        if batch.batch.column("i")[0].as_py() == 3:
            break
    assert proxy.ping() == "pong"
    with proxy.count(n=-1) as session:
        assert session.tick() is not None
    assert proxy.ping() == "pong"


def test_cancel_calls_on_cancel_and_keeps_the_connection(svc: tuple[StreamService, Logs]) -> None:
    proxy, _ = svc
    before = proxy.cancelled_count()
    with proxy.count(n=-1) as session:
        session.tick()
        session.tick()
        session.cancel()
        assert session.finished
    assert proxy.cancelled_count() == before + 1
    with proxy.running_sum() as exchange:
        exchange.cancel()  # before any input
        with pytest.raises(ProtocolError, match="Stream has been closed or cancelled"):
            exchange.exchange(AnnotatedBatch.from_pydict({"value": [1.0]}))
    assert proxy.ping() == "pong"


def test_unary_call_while_a_stream_is_open_is_refused(svc: tuple[StreamService, Logs]) -> None:
    proxy, _ = svc
    with proxy.count(n=3) as session:
        session.tick()
        with pytest.raises(ProtocolError, match="stream is still open"):
            proxy.ping()
    assert proxy.ping() == "pong"


def test_client_disconnecting_mid_stream_lets_the_worker_exit() -> None:
    from vgi_rpc import RpcConnection, SubprocessTransport

    transport = SubprocessTransport([sys.executable, WORKER, "--streams"])
    conn = RpcConnection(StreamService, transport)
    session = conn.proxy.count(n=-1)
    session.tick()
    transport.writer.close()  # vanish mid-stream without closing the input stream
    assert transport.process.wait(timeout=10) == 0
    transport.close()


def test_pipe_server_thread_ends_when_client_vanishes_mid_stream() -> None:
    from vgi_rpc import RpcConnection, RpcServer, make_pipe_pair

    client, server_side = make_pipe_pair()
    thread = threading.Thread(target=RpcServer(StreamService, StreamServiceImpl()).serve, args=(server_side,))
    thread.start()
    session = RpcConnection(StreamService, client).proxy.count(n=-1)
    session.tick()
    client.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    server_side.close()
