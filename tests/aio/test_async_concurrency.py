"""Many calls from one event loop against the ASGI app under uvicorn, and blocking methods off the loop.

1,000 concurrent unary calls complete while a heartbeat task on the same loop keeps ticking; a
sync method that blocks (``time.sleep``) under ASGI does not hold up other calls; ``async def``
methods (unary and stream) are served over ASGI and over a pipe.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Iterator

import pytest

from tests.aio.factories import run
from tests.http.servers import stop
from tests.services import Everything, StreamService
from tests.transports.factories import http_server, uvicorn_server
from vgi_rpc.aio import ahttp_connect, aserve_pipe


class Heartbeat:
    """A task that sleeps 10 ms at a time, counting its ticks and its largest gap."""

    def __init__(self) -> None:
        self.ticks = 0
        self.gap = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _beat(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            self.gap, last = max(self.gap, now - last), now
            self.ticks += 1

    async def __aenter__(self) -> Heartbeat:
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task


def test_a_thousand_concurrent_calls_with_a_heartbeat() -> None:
    url = http_server("uvicorn", "everything")

    async def body() -> None:
        async with ahttp_connect(Everything, url) as proxy:
            async with Heartbeat() as beat:
                started = time.perf_counter()
                results = await asyncio.gather(*(proxy.echo_int(value=i) for i in range(1000)))
                elapsed = time.perf_counter() - started
            assert results == list(range(1000))
            assert beat.ticks >= 5, (beat.ticks, elapsed)  # the loop stayed free for the heartbeat
            print(f"1000 calls in {elapsed:.2f} s; heartbeat {beat.ticks} ticks, largest gap {beat.gap * 1000:.1f} ms")

    run(body, limit=120)


@pytest.fixture(scope="module")
def async_server() -> Iterator[str]:
    """uvicorn serving StreamService with async def methods (AsyncStreamServiceImpl)."""
    state = tempfile.mkdtemp(prefix="vgi-asgi-async-")
    env = {**os.environ, "VGI_TEST_SERVICE": "async", "VGI_TEST_COUNTER_FILE": os.path.join(state, "counters")}
    proc, port = uvicorn_server(env)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


def test_a_blocking_sync_method_does_not_block_other_calls() -> None:
    url = http_server("uvicorn", "streams")

    async def body() -> None:
        async with ahttp_connect(StreamService, url) as proxy:
            sleeper = asyncio.create_task(proxy.sleep(seconds=1.5))  # time.sleep in the implementation
            await asyncio.sleep(0.2)
            started = time.perf_counter()
            pings = await asyncio.gather(*(proxy.ping() for _ in range(20)))
            assert pings == ["pong"] * 20
            assert time.perf_counter() - started < 1.0, "calls waited for the sleeping one"
            assert not sleeper.done()
            await sleeper

    run(body)


def test_async_def_methods_under_asgi(async_server: str) -> None:
    async def body() -> None:
        async with ahttp_connect(StreamService, async_server) as proxy:
            started = time.perf_counter()
            await asyncio.gather(*(proxy.sleep(seconds=0.5) for _ in range(20)))  # asyncio.sleep on the private loop
            assert time.perf_counter() - started < 3.0
            assert await proxy.ping() == "pong"
            assert [b.batch.column("i")[0].as_py() async for b in proxy.count(n=3)] == [0, 1, 2]

    run(body)


def test_async_def_methods_over_a_pipe() -> None:
    from tests.services import AsyncStreamServiceImpl

    async def body() -> None:
        async with aserve_pipe(StreamService, AsyncStreamServiceImpl()) as proxy:
            assert await proxy.ping() == "pong"
            assert [b.batch.column("i")[0].as_py() async for b in proxy.count(n=4)] == [0, 1, 2, 3]

    run(body)
