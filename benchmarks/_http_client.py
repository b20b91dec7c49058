"""One HTTP benchmark client run: N timed calls (or streams) of one method against a URL; prints JSON timings."""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from service import Bench, call_unary, download, exchange_rounds

import vgi_rpc
from vgi_rpc.http import http_connect


def once(proxy: Bench, method: str) -> None:
    if method == "small_stream":  # a producer of 20 one-row batches: 21 requests
        download(proxy, 20, 1)
    elif method == "exchange10":  # an exchange of 10 turns: 11 requests
        exchange_rounds(proxy, 10)
    else:
        call_unary(proxy, method)


def main() -> None:
    url, method, calls, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with http_connect(Bench, url, prefix="/vgi") as proxy:
        for _ in range(warmup):
            once(proxy, method)
        times = []
        for _ in range(calls):
            t0 = time.perf_counter_ns()
            once(proxy, method)
            times.append(time.perf_counter_ns() - t0)
    print(json.dumps({"impl": vgi_rpc.__file__, "times_ns": times}))


if __name__ == "__main__":
    main()
