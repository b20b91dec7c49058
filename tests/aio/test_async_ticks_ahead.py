"""Ticks ahead for the async client: ``async for`` over a producer of ours keeps up to
``TICKS_AHEAD`` ticks in flight over a pipe or a worker process, as the sync client does
(tests/transports/test_ticks_ahead.py); ``tick()`` stays lock-step, and HTTP stays one turn per
request.
"""

from __future__ import annotations

import pytest

from tests.aio.factories import open_async, run
from tests.transports.test_ticks_ahead import CALLS, CANCELLED, Counter, CounterImpl, settled
from vgi_rpc import RpcError
from vgi_rpc._core.longstream import TICKS_AHEAD
from vgi_rpc.aio import aserve_pipe


def test_async_iteration_runs_the_producer_ahead_by_the_window() -> None:
    async def body() -> None:
        CALLS.clear()
        async with aserve_pipe(Counter, CounterImpl()) as proxy:
            got: list[int] = []
            loop = proxy.count(n=-1).__aiter__()
            got.append((await loop.__anext__()).batch.column("i")[0].as_py())
            got.append((await loop.__anext__()).batch.column("i")[0].as_py())
            assert got == [0, 1]
            # the first tick went alone (the offer is answered on the output schema); then the window
            assert settled(2 + TICKS_AHEAD) == 2 + TICKS_AHEAD
            for _ in range(30):
                got.append((await loop.__anext__()).batch.column("i")[0].as_py())
            assert got == list(range(32))
            await loop.aclose()  # leaving early: the batches answered ahead are read and dropped
            assert len(CALLS) <= 32 + TICKS_AHEAD + 1
            assert await proxy.ping() == "pong"

    run(body)


def test_async_tick_stays_lock_step() -> None:
    async def body() -> None:
        CALLS.clear()
        async with aserve_pipe(Counter, CounterImpl()) as proxy, proxy.count(n=-1) as session:
            for k in range(3):
                out = await session.tick()
                assert out is not None and out.batch.column("i")[0].as_py() == k
            assert settled(4) == 3

    run(body)


def test_async_every_batch_once_in_order_and_errors_after_the_batches_before_them() -> None:
    async def body() -> None:
        async with aserve_pipe(Counter, CounterImpl()) as proxy:
            for n in (0, 1, TICKS_AHEAD - 1, TICKS_AHEAD, TICKS_AHEAD + 1, 50):
                got = [b.batch.column("i")[0].as_py() async for b in proxy.count(n=n)]
                assert got == list(range(n))
            got = []
            with pytest.raises(RpcError) as info:
                async for batch in proxy.count(n=50, fail_at=12):
                    got.append(batch.batch.column("i")[0].as_py())
            assert got == list(range(12)) and info.value.error_message.endswith("failed at 12")
            assert await proxy.ping() == "pong"

    run(body)


@pytest.mark.parametrize("kind", ["apipe", "asubprocess", "uvicorn"])
def test_async_cancel_and_early_exit_mid_iteration_keep_the_connection_in_step(kind: str) -> None:
    async def body() -> None:
        async with open_async(kind, "streams") as proxy:
            before = await proxy.cancelled_count()
            async with proxy.count(n=-1) as session:
                loop = session.__aiter__()
                assert [(await loop.__anext__()).batch.column("i")[0].as_py() for _ in range(3)] == [0, 1, 2]
                await session.cancel()
                await loop.aclose()
            assert await proxy.cancelled_count() == before + 1
            loop = proxy.count(n=-1).__aiter__()
            while (await loop.__anext__()).batch.column("i")[0].as_py() < 5:
                pass
            await loop.aclose()  # what leaving an ``async for`` early comes to once the loop is finalised
            assert [b.batch.column("i")[0].as_py() async for b in proxy.count(n=3)] == [0, 1, 2]
            assert await proxy.ping() == "pong"

    run(body)


def test_async_cancel_in_the_middle_of_an_iteration() -> None:
    async def body() -> None:
        CANCELLED.clear()
        async with aserve_pipe(Counter, CounterImpl()) as proxy:
            async with proxy.count(n=-1) as session:
                loop = session.__aiter__()
                got = [(await loop.__anext__()).batch.column("i")[0].as_py() for _ in range(3)]
                assert got == [0, 1, 2]
                await session.cancel()  # after the ticks in flight: their batches are read and dropped
                assert session.finished
                await loop.aclose()
            assert len(CANCELLED) == 1 and 3 <= CANCELLED[0] <= 3 + TICKS_AHEAD + 1
            assert await proxy.ping() == "pong"

    run(body)


@pytest.mark.parametrize("kind", ["apipe", "asubprocess", "uvicorn"])
def test_a_call_right_after_break_waits_for_the_loop_s_close_or_goes_first(kind: str) -> None:
    # ``break`` leaves the loop's generator to a finaliser the event loop runs later; the next
    # call on the same session used to read the stream at the same time (a RuntimeError from
    # asyncio and a broken connection). Now one goes after the other, in either order.
    async def body() -> None:
        async with open_async(kind, "streams") as proxy:
            for _ in range(5):
                before = await proxy.cancelled_count()
                async with proxy.count(n=-1) as session:
                    async for batch in session:
                        if batch.batch.column("i")[0].as_py() == 2:
                            break
                    await session.cancel()
                    assert session.finished
                assert await proxy.cancelled_count() in (before, before + 1)
                assert [b.batch.column("i")[0].as_py() async for b in proxy.count(n=3)] == [0, 1, 2]
            assert await proxy.ping() == "pong"

    run(body)
