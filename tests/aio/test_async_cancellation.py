"""Cancellation and failures: a task cancelled mid-call and mid-stream, a server that dies mid-stream,
a client that disconnects. Clear errors, nothing hangs, no task, connection or thread left behind.

HTTP keeps the connection usable (each call is its own request); a pipe or worker connection is
closed (it could be out of step) and later calls raise ``TransportError``. ``run`` fails a test
that leaves a task; the descriptor count shows connections and pipes were released.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import threading
import time
from typing import Any

import pytest

from tests.aio.factories import open_async, run
from tests.http.servers import stop
from tests.services import StreamService, StreamServiceImpl
from tests.transports.factories import WORKER, http_server, uvicorn_server
from vgi_rpc import TransportError
from vgi_rpc.aio import aconnect, ahttp_connect, aserve_pipe

HTTP = ["uvicorn", "gunicorn", "uvicorn-httpx"]
SERIAL = ["apipe", "asubprocess"]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _cancel_after(coro: Any, delay: float) -> None:
    task = asyncio.ensure_future(coro)
    await asyncio.sleep(delay)
    task.cancel()
    started = time.perf_counter()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.perf_counter() - started < 1.0, "cancellation waited for the call"


@pytest.mark.parametrize("kind", HTTP + SERIAL)
def test_a_task_cancelled_mid_call(kind: str) -> None:
    if kind in HTTP:
        http_server(kind.split("-")[0], "streams")  # started before the descriptor count

    async def body() -> None:
        before = open_fds()
        async with open_async(kind, "streams") as proxy:
            await _cancel_after(proxy.sleep(seconds=1.5), 0.3)
            if kind in SERIAL:
                with pytest.raises(TransportError, match="broken"):
                    await proxy.ping()
            else:
                assert await proxy.ping() == "pong"
                assert await asyncio.gather(*(proxy.ping() for _ in range(5))) == ["pong"] * 5
                await asyncio.sleep(1.5)  # the shared server finishes the abandoned call before the next test
        await asyncio.sleep(0.05)
        assert open_fds() <= before, "a connection or pipe was left open"

    run(body)


@pytest.mark.parametrize("kind", HTTP + SERIAL)
def test_a_task_cancelled_mid_stream(kind: str) -> None:
    if kind in HTTP:
        http_server(kind.split("-")[0], "streams")

    async def consume(proxy: Any, seen: list[int]) -> None:
        async for batch in proxy.slow_count(n=10, delay=0.3):
            seen.append(batch.batch.column("i")[0].as_py())

    async def body() -> None:
        before = open_fds()
        async with open_async(kind, "streams") as proxy:
            seen: list[int] = []
            await _cancel_after(consume(proxy, seen), 0.8)
            assert 1 <= len(seen) < 10
            if kind in SERIAL:
                with pytest.raises(TransportError):
                    await proxy.ping()
            else:
                assert await proxy.ping() == "pong"
        await asyncio.sleep(0.05)
        assert open_fds() <= before

    run(body)


def test_a_worker_that_dies_mid_stream() -> None:
    async def body() -> None:
        async with aconnect(StreamService, [sys.executable, WORKER, "--streams"]) as proxy:
            async with proxy.pids(n=10) as session:
                first = await session.tick()
                assert first is not None
                os.kill(first.batch.column("i")[0].as_py(), signal.SIGKILL)
                with pytest.raises(TransportError, match="killed by signal 9"):
                    await session.tick()
            with pytest.raises(TransportError):
                await proxy.ping()

    run(body)


def test_an_http_server_that_dies_mid_stream() -> None:
    state = tempfile.mkdtemp(prefix="vgi-asgi-dies-")
    env = {**os.environ, "VGI_TEST_SERVICE": "streams", "VGI_TEST_COUNTER_FILE": os.path.join(state, "c")}
    proc, port = uvicorn_server(env)

    async def body() -> None:
        async with ahttp_connect(StreamService, f"http://127.0.0.1:{port}", timeout=10) as proxy:
            async with proxy.count(n=10) as session:
                assert await session.tick() is not None
                stop(proc)
                with pytest.raises(TransportError):
                    await session.tick()
                assert session.finished
            with pytest.raises(TransportError):
                await proxy.ping()

    try:
        run(body)
    finally:
        stop(proc)


def test_a_client_that_disconnects_mid_call_leaves_the_asgi_server_serving() -> None:
    url = http_server("uvicorn", "streams")

    async def body() -> None:
        async with ahttp_connect(StreamService, url) as proxy:
            task = asyncio.ensure_future(proxy.sleep(seconds=1.0))
            await asyncio.sleep(0.2)
        # the block closed the session under the call: the request's connection is gone
        with pytest.raises(TransportError, match="Server disconnected"):
            await task
        async with ahttp_connect(StreamService, url) as proxy:
            assert await proxy.ping() == "pong"
            async with proxy.count(n=-1) as session:  # a stream abandoned mid-way by a closed client
                assert await session.tick() is not None
        async with ahttp_connect(StreamService, url) as proxy:
            assert await proxy.ping() == "pong"

    run(body)


def test_a_client_that_closes_a_pipe_mid_call_ends_the_server_thread() -> None:
    async def body() -> None:
        async with aserve_pipe(StreamService, StreamServiceImpl()) as proxy:
            await _cancel_after(proxy.sleep(seconds=0.5), 0.1)
        assert not [t for t in threading.enumerate() if t.name == "vgi_rpc-aserve_pipe"]

    run(body)


def test_a_worker_that_cannot_start_or_exits_at_once() -> None:
    async def body() -> None:
        with pytest.raises(TransportError, match="cannot start the worker"):
            async with aconnect(StreamService, ["/nonexistent/vgi-worker"]):
                pass
        async with aconnect(StreamService, [sys.executable, "-c", "import sys; sys.exit(3)"]) as proxy:
            with pytest.raises(TransportError, match="exited with code 3"):
                await proxy.ping()

    run(body)
