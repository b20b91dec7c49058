"""Async transport factories: the async client over every transport (and the ASGI app under uvicorn).

``AIO_KINDS``: ``apipe`` (in-process pipe), ``asubprocess`` (a worker process), and HTTP against
waitress and gunicorn (the WSGI app) and uvicorn (the ASGI app), over aiohttp (the default);
``uvicorn-httpx`` passes an ``httpx.AsyncClient``. ``run`` runs a test coroutine under a time
limit and fails if it leaves a task behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx

from tests.transports.factories import SERVICES, WORKER, http_server
from vgi_rpc.aio import aconnect, ahttp_connect, aserve_pipe
from vgi_rpc.log import Message

AIO_KINDS = ["apipe", "asubprocess", "waitress", "gunicorn", "uvicorn", "uvicorn-httpx"]
T = TypeVar("T")


@contextlib.asynccontextmanager
async def open_async(
    kind: str, service: str, on_log: Callable[[Message], None] | None = None, timeout: float | None = None
) -> AsyncIterator[Any]:
    """An async proxy for *service* over the *kind* transport."""
    protocol, impl_class, args = SERVICES[service]
    if kind == "apipe":
        async with aserve_pipe(protocol, impl_class(), on_log=on_log, timeout=timeout) as proxy:
            yield proxy
    elif kind == "asubprocess":
        async with aconnect(protocol, [sys.executable, WORKER, *args], on_log=on_log, timeout=timeout) as proxy:
            yield proxy
    elif kind == "uvicorn-httpx":
        async with (
            httpx.AsyncClient(timeout=30) as client,
            ahttp_connect(
                protocol, http_server("uvicorn", service), on_log=on_log, client=client, timeout=timeout
            ) as proxy,
        ):
            yield proxy
    else:
        async with ahttp_connect(protocol, http_server(kind, service), on_log=on_log, timeout=timeout) as proxy:
            yield proxy


def run(test: Callable[[], Awaitable[T]], limit: float = 60.0) -> T:
    """Run *test* on a new event loop within *limit* seconds; no task may outlive it."""

    async def main() -> T:
        async with asyncio.timeout(limit):
            result = await test()
        await asyncio.sleep(0)  # let finalisers (an abandoned async for's aclose) run
        await asyncio.sleep(0.01)
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not left, f"tasks left behind: {left}"
        return result

    return asyncio.run(main())
