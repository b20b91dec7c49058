"""One benchmark client run: N timed calls of one method against one worker; prints JSON timings."""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import vgi_rpc
from benchmarks.service import Bench, Color

ARGS = {
    "noop": {},
    "add": {"a": 1.5, "b": 2.25},
    "mixed": {"color": Color.GREEN, "counts": {"a": 1, "b": 2, "c": 3}, "ids": frozenset({1, 2, 3, 4})},
}


def main() -> None:
    method, calls, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    worker = json.loads(sys.argv[4])
    kwargs = ARGS[method]
    with vgi_rpc.connect(Bench, worker) as proxy:
        fn = getattr(proxy, method)
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
