"""One async load process: CONCURRENCY tasks on one loop for SECONDS; prints JSON counts, latencies, heartbeat gap.

    python _async_load_client.py <mode> <url> <seconds> <concurrency>

Modes: ``aio`` our ahttp_connect (aiohttp, the default) calling noop(); ``aio-httpx`` the same
over an httpx.AsyncClient; ``aiohttp`` / ``httpx`` a plain POST of a prebuilt body to the echo
app with that library; ``floor`` a minimal asyncio HTTP/1.1 client (one keep-alive connection
per task) against the echo app. A heartbeat task sleeps 10 ms at a time and records its
largest gap: how long the loop was kept from it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

BODY = b"\xff" * 600


async def _floor_call(url: str) -> Callable[[], Awaitable[None]]:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    request = (
        f"POST /vgi/echo HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY

    async def call() -> None:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)

    return call


Call = Callable[[], Awaitable[Any]]
Drive = Callable[[Callable[[int], Awaitable[Call]]], Awaitable[None]]


async def _rpc(mode: str, url: str, concurrency: int, drive: Drive) -> None:
    from service import Bench

    from vgi_rpc.aio import ahttp_connect

    client = None
    if mode == "aio-httpx":
        import httpx

        client = httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency))
    async with ahttp_connect(Bench, url, prefix="/vgi", client=client) as proxy:

        async def make(k: int) -> Call:
            return proxy.noop  # type: ignore[no-any-return]

        await drive(make)
    if client is not None:
        await client.aclose()


async def _aiohttp(url: str, concurrency: int, drive: Drive) -> None:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def post() -> None:
            async with session.post(url + "/vgi/echo", data=BODY) as response:
                await response.read()

        async def make(k: int) -> Call:
            return post

        await drive(make)


async def _httpx(url: str, concurrency: int, drive: Drive) -> None:
    import httpx

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as client:

        async def post() -> None:
            (await client.post(url + "/vgi/echo", content=BODY)).raise_for_status()

        async def make(k: int) -> Call:
            return post

        await drive(make)


async def _run(mode: str, url: str, concurrency: int, drive: Drive) -> None:
    if mode in ("aio", "aio-httpx"):
        await _rpc(mode, url, concurrency, drive)
    elif mode == "aiohttp":
        await _aiohttp(url, concurrency, drive)
    elif mode == "httpx":
        await _httpx(url, concurrency, drive)
    else:

        async def make(k: int) -> Call:
            return await _floor_call(url)

        await drive(make)


async def main() -> None:
    mode, url, seconds, concurrency = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    latencies: list[list[int]] = [[] for _ in range(concurrency)]
    gap = 0.0
    running = True

    async def heartbeat() -> None:
        nonlocal gap
        last = time.perf_counter()
        while running:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gap = max(gap, now - last - 0.01)
            last = now

    async def worker(k: int, call: Call, start_at: float, stop_at: float) -> None:
        mine = latencies[k]
        while time.monotonic() < start_at:
            await call()
        while (t0 := time.perf_counter_ns()) and time.monotonic() < stop_at:
            await call()
            mine.append(time.perf_counter_ns() - t0)

    async def drive(make: Callable[[int], Awaitable[Call]]) -> None:
        nonlocal running
        calls = [await make(k) for k in range(concurrency)]
        start_at = time.monotonic() + 0.5
        beat = asyncio.create_task(heartbeat())
        await asyncio.gather(*(worker(k, c, start_at, start_at + seconds) for k, c in enumerate(calls)))
        running = False
        await beat

    await _run(mode, url, concurrency, drive)
    flat = sorted(x for lat in latencies for x in lat)
    sample = flat[:: max(1, len(flat) // 2000)]
    print(json.dumps({"calls": len(flat), "seconds": seconds, "gap_ms": gap * 1000, "sample": sample}))


if __name__ == "__main__":
    asyncio.run(main())
