"""One load client process: THREADS threads calling noop() for SECONDS; prints JSON counts and latencies.

    python _http_load_client.py <rpc|floor|floor-stdlib> <url> <seconds> <threads>

``rpc`` calls through the library importable here (ours or the reference) with http_connect;
``floor`` POSTs a prebuilt request body with httpx to the echo app, ``floor-stdlib`` with a
keep-alive ``http.client`` connection (what our client sends with by default).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


FLOOR_BODY = b"\xff" * 600  # about a noop request


def stdlib_poster(url: str) -> Callable[[], None]:
    """POST ``FLOOR_BODY`` to the echo app at ``url`` over one keep-alive ``http.client`` connection."""
    import http.client

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
    headers = {"Content-Type": "application/vnd.apache.arrow.stream"}

    def post() -> None:
        conn.request("POST", "/vgi/echo", FLOOR_BODY, headers)
        conn.getresponse().read()

    return post


def main() -> None:
    kind, url, seconds, threads = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    latencies: list[list[int]] = [[] for _ in range(threads)]
    start_at = time.monotonic() + 0.5
    stop_at = start_at + seconds

    def worker(k: int) -> None:
        mine = latencies[k]
        with contextlib.ExitStack() as stack:
            call: Callable[[], object]
            if kind == "floor-stdlib":
                call = stdlib_poster(url)
            elif kind == "floor":
                import httpx

                client = stack.enter_context(httpx.Client())
                call = lambda: client.post(url + "/vgi/echo", content=FLOOR_BODY)  # noqa: E731
            else:
                from service import Bench

                from vgi_rpc.http import http_connect

                call = stack.enter_context(http_connect(Bench, url, prefix="/vgi")).noop
            while time.monotonic() < start_at:
                call()
            while (t0 := time.perf_counter_ns()) and time.monotonic() < stop_at:
                call()
                mine.append(time.perf_counter_ns() - t0)

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    flat = sorted(x for lat in latencies for x in lat)
    print(json.dumps({"calls": len(flat), "seconds": seconds, "sample": flat[:: max(1, len(flat) // 2000)]}))


if __name__ == "__main__":
    main()
