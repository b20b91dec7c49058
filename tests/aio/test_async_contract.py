"""The transport contract over the async client: pipe, worker process, WSGI (waitress, gunicorn) and ASGI (uvicorn).

Unary calls of every type, errors, logs, producers, exchanges, headers, cancel, break, timeouts
and many calls at once, each on every transport in ``AIO_KINDS``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

from tests.aio.factories import AIO_KINDS, open_async, run
from tests.services import Color, CountHeader, Point, Shape
from vgi_rpc import (
    AnnotatedBatch,
    ArgumentError,
    Level,
    Message,
    ProtocolError,
    RpcError,
    RpcTimeoutError,
    TransportError,
)

pytestmark = pytest.mark.parametrize("kind", AIO_KINDS)
SERIAL = ("apipe", "asubprocess")


async def values(session: Any) -> list[int]:
    return [b.batch.column("i")[0].as_py() async for b in session]


def test_unary_values_of_every_kind(kind: str) -> None:
    async def body() -> None:
        shape = Shape("tri", Color.RED, [Point(0, 0), Point(1, 0), Point(0, 1)], None, {"a": 1})
        async with open_async(kind, "everything") as proxy:
            assert await proxy.echo_str(value="héllo") == "héllo"
            assert await proxy.echo_int(value=-7) == -7
            assert await proxy.echo_float(value=1.5) == 1.5
            assert await proxy.echo_bytes(value=b"\x00\x01") == b"\x00\x01"
            assert await proxy.echo_list(value=[1, 2]) == [1, 2]
            assert await proxy.echo_enum(value=Color.BLUE) is Color.BLUE
            assert await proxy.echo_optional(value=None) is None
            assert await proxy.echo_shape(value=shape) == shape
            assert await proxy.echo_date(value=dt.date(2024, 2, 29)) == dt.date(2024, 2, 29)
            assert await proxy.greet(name="x") == "hello x"
            assert await proxy.greet("y", greeting="hi", times=2) == "hi y hi y"
            assert await proxy.noop() is None
            big = bytes(range(256)) * 8192  # 2 MiB: the request goes to the driver as chunks
            assert await proxy.echo_bytes(value=big) == big

    run(body)


def test_errors_raise_and_leave_the_connection_usable(kind: str) -> None:
    async def body() -> None:
        async with open_async(kind, "everything") as proxy:
            with pytest.raises(RpcError) as info:
                await proxy.fail(message="boom")
            assert info.value.error_type == "ValueError" and "boom" in info.value.error_message
            with pytest.raises(ArgumentError):
                await proxy.echo_int(value="not an int")
            assert await proxy.echo_int(value=3) == 3

    run(body)


def test_logs_reach_on_log_before_the_result(kind: str) -> None:
    logs: list[Message] = []

    async def body() -> None:
        async with open_async(kind, "everything", on_log=logs.append) as proxy:
            assert await proxy.chatty(value="x") == "X"
        assert [m.message for m in logs] == ["first", "second", "third"]
        assert logs[0].level is Level.DEBUG and logs[0].extra == {"step": "1"}

    run(body)


def test_producer_header_and_interleaved_logs(kind: str) -> None:
    logs: list[Message] = []

    async def body() -> None:
        async with open_async(kind, "streams", on_log=logs.append) as proxy:
            assert await values(proxy.count(n=5)) == [0, 1, 2, 3, 4]
            assert await values(proxy.count(n=0)) == []
            seen = []
            logs.clear()
            async for batch in proxy.count(n=3, chatty=True):
                seen.append((logs[-1].message, batch.batch.column("i")[0].as_py()))
            assert seen == [("batch 0", 0), ("batch 1", 1), ("batch 2", 2)]
            logs.clear()
            async with proxy.count_with_header(n=2) as session:
                assert session.header == CountHeader(total=2, label="2 items")
                assert [m.message for m in logs] == ["starting"]
                assert await values(session) == [0, 1]
            assert await proxy.ping() == "pong"

    run(body)


def test_exchange_turns_and_a_closed_session(kind: str) -> None:
    async def body() -> None:
        async with open_async(kind, "streams") as proxy:
            async with proxy.running_sum() as session:
                totals = []
                for v in (1.0, 2.0, 3.5):
                    out = await session.exchange(AnnotatedBatch.from_pydict({"value": [v]}))
                    totals.append(out.batch.column("total")[0].as_py())
                assert totals == [1.0, 3.0, 6.5]
            with pytest.raises(ProtocolError):
                await session.exchange(pa.RecordBatch.from_pydict({"value": [1.0]}))
            session = await proxy.running_sum()  # awaited: open until aclose
            out = await session.exchange(pa.RecordBatch.from_pydict({"value": [2.0]}))
            assert out.batch.column("total")[0].as_py() == 2.0
            await session.aclose()
            assert session.finished
            assert await proxy.ping() == "pong"

    run(body)


def test_stream_errors_at_start_and_mid_stream(kind: str) -> None:
    async def body() -> None:
        async with open_async(kind, "streams") as proxy:
            with pytest.raises(RpcError, match="cannot start"):
                await values(proxy.broken_start())
            got = []
            with pytest.raises(RpcError, match="failed at 2"):
                async for batch in proxy.count(n=5, fail_at=2):
                    got.append(batch.batch.column("i")[0].as_py())
            assert got == [0, 1]
            assert await proxy.ping() == "pong"

    run(body)


def test_cancel_reaches_on_cancel(kind: str) -> None:
    async def body() -> None:
        async with open_async(kind, "streams") as proxy:
            before = await proxy.cancelled_count()
            async with proxy.count(n=-1) as session:
                assert (await session.tick()) is not None
                await session.cancel()
                assert session.finished
                with pytest.raises(ProtocolError):
                    await session.tick()
            assert await proxy.cancelled_count() == before + 1

    run(body)


def test_break_out_of_async_for_ends_the_stream(kind: str) -> None:
    async def body() -> None:
        async with open_async(kind, "streams") as proxy:
            async for batch in proxy.count(n=-1):
                assert batch.batch.column("i")[0].as_py() == 0
                break
            assert await proxy.ping() == "pong"  # the abandoned stream no longer holds the connection
            async for _ in proxy.count(n=-1):
                break
            async with proxy.count(n=-1) as session:
                first = await session.tick()
                assert first is not None
            assert await values(proxy.count(n=2)) == [0, 1]

    run(body)


def test_tick_metadata_reaches_the_producer(kind: str) -> None:
    async def body() -> None:
        async with open_async(kind, "streams") as proxy, proxy.tick_meta(n=3) as session:
            await session.tick()  # over HTTP the first tick runs with the start, without metadata
            out = await session.tick({"k": "v"})
            assert out is not None and out.batch.column("meta")[0].as_py() == "k=v"

    run(body)


def test_many_calls_at_once(kind: str) -> None:
    async def body() -> None:
        async with open_async(kind, "everything") as proxy:
            results = await asyncio.gather(*(proxy.echo_int(value=i) for i in range(50)))
            assert results == list(range(50))

    run(body)


def test_a_call_over_its_timeout(kind: str) -> None:
    async def body() -> None:
        async with open_async(kind, "streams", timeout=0.5) as proxy:
            assert await proxy.ping() == "pong"
            with pytest.raises(RpcTimeoutError):
                await proxy.sleep(seconds=3.0)
            if kind in SERIAL:  # the pipe may be out of step: closed
                with pytest.raises(TransportError, match="broken"):
                    await proxy.ping()
            else:  # one request failed; the others stand alone
                assert await proxy.ping() == "pong"

    run(body)
