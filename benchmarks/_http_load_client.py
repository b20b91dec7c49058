"""One load client process: THREADS threads calling noop() for SECONDS; prints JSON counts and latencies.

    python _http_load_client.py <rpc|floor> <url> <seconds> <threads>

``rpc`` calls through the library importable here (ours or the reference) with http_connect;
``floor`` POSTs a prebuilt request body with httpx to the echo app.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    kind, url, seconds, threads = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    latencies: list[list[int]] = [[] for _ in range(threads)]
    start_at = time.monotonic() + 0.5
    stop_at = start_at + seconds

    def worker(k: int) -> None:
        mine = latencies[k]
        if kind == "floor":
            import httpx

            body = b"\xff" * 600
            with httpx.Client() as client:
                while time.monotonic() < start_at:
                    client.post(url + "/vgi/echo", content=body)
                while (t0 := time.perf_counter_ns()) and time.monotonic() < stop_at:
                    client.post(url + "/vgi/echo", content=body)
                    mine.append(time.perf_counter_ns() - t0)
            return
        from service import Bench

        from vgi_rpc.http import http_connect

        with http_connect(Bench, url, prefix="/vgi") as proxy:
            while time.monotonic() < start_at:
                proxy.noop()
            while (t0 := time.perf_counter_ns()) and time.monotonic() < stop_at:
                proxy.noop()
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
