"""One benchmark client run: N timed calls of one method against one worker; prints JSON timings."""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import vgi_rpc
from benchmarks.service import UNARY_CALLS, Bench, download, exchange_rounds


def stream_once(proxy: Bench, method: str) -> None:
    if method == "bulk":  # 1 GiB: 256 batches of 4 MiB (int64 + float64 columns)
        download(proxy, 256, 262_144)
    elif method == "small_stream":  # 50 one-row batches
        download(proxy, 50, 1)
    elif method == "exchange20":  # 20 lock-step rounds
        exchange_rounds(proxy, 20)


def main() -> None:
    method, calls, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    worker = json.loads(sys.argv[4])
    if method in ("bulk", "small_stream", "exchange20"):
        with vgi_rpc.connect(Bench, worker) as proxy:
            for _ in range(warmup):
                stream_once(proxy, method)
            times = []
            for _ in range(calls):
                t0 = time.perf_counter_ns()
                stream_once(proxy, method)
                times.append(time.perf_counter_ns() - t0)
        print(json.dumps({"impl": vgi_rpc.__file__, "times_ns": times}))
        return
    name, kwargs = UNARY_CALLS[method]
    with vgi_rpc.connect(Bench, worker) as proxy:
        fn = getattr(proxy, name)
        for _ in range(warmup):
            fn(**kwargs)
        times = []
        clock = time.perf_counter_ns
        for _ in range(calls):
            t0 = clock()
            fn(**kwargs)
            times.append(clock() - t0)
    print(json.dumps({"impl": vgi_rpc.__file__, "times_ns": times}))


if __name__ == "__main__":
    main()
