"""One run of the side-by-side suite (benchmarks/suite.py) under whichever vgi_rpc is importable.

    python _suite_client.py '<config as JSON>'

The config names a transport (``inproc``, ``subprocess``, ``pool``, ``pool-shm``, ``shm``, ``http``),
its target (the worker command, or the server URL and PIDs; ``echo-floor``: the URL of the
echo-only app, timed with a noop-sized POST), the workloads, their sizes and the
time budget per workload. Every workload runs over one connection: warm-up calls first, then
calls timed one by one until the budget is spent (at least ``min_calls``). Before each workload
the peak RSS of this process and of the worker (a child process, or the HTTP server's processes)
is reset (``/proc/<pid>/clear_refs``); the current and the peak RSS after it are reported.
Prints one JSON line: ``{"impl": <vgi_rpc.__file__>, "results": {workload: {...}}}``.
The suite runs this file from ``benchmarks/`` for ours and from a copy outside the checkout
(``python -I``) for the reference, so each side imports its own ``vgi_rpc``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from service import Bench, BenchImpl, bulk_batch, call_unary, download, exchange_rounds, upload

import vgi_rpc

ECHO = ("echo_1k", "echo_1m", "echo_64m")


def _children(pids: list[int]) -> list[int]:
    """``pids`` and all their descendants (from ``/proc/<pid>/task/*/children``)."""
    found, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        found.append(pid)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
    return found


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_peak(pids: list[int]) -> int:
    """Reset the peak RSS of ``pids`` to their current RSS; returns the summed current RSS (KiB)."""
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    return sum(_status_kb(pid, "VmRSS") for pid in pids)


class Workloads:
    """The suite's operations against one proxy; each returns the payload bytes it moved (or None)."""

    def __init__(self, proxy: Bench, sizes: dict[str, int]) -> None:
        self.proxy = proxy
        self.sizes = sizes
        self.payloads = {name: b"\xab" * sizes[name] for name in ECHO}
        self.batch = bulk_batch(sizes["batch_rows"])

    def op(self, name: str, *, warm: bool = False) -> Callable[[], int | None]:
        proxy, rows = self.proxy, self.sizes["batch_rows"]
        batches = 2 if warm else self.sizes.get(f"{name}_batches", 0)
        if name in ECHO:
            data = self.payloads[name]
            return lambda: len(proxy.echo_bytes(data=data)) * 2
        ops: dict[str, Callable[[], int | None]] = {
            "producer50": lambda: download(proxy, 50, 1),
            "exchange20": lambda: exchange_rounds(proxy, 20),
            "download": lambda: download(proxy, batches, rows),
            "upload": lambda: upload(proxy, self.batch, batches),
        }
        return ops.get(name) or (lambda: call_unary(proxy, name))


@contextlib.contextmanager
def open_proxy(config: dict[str, Any]) -> Iterator[Bench]:
    """A proxy over the configured transport (the same public API in both implementations)."""
    transport, target = config["transport"], config["target"]
    if transport == "inproc":
        with vgi_rpc.serve_pipe(Bench, BenchImpl()) as proxy:
            yield proxy
    elif transport == "subprocess":
        with vgi_rpc.connect(Bench, target) as proxy:
            yield proxy
    elif transport in ("pool", "pool-shm"):
        shm = config["shm_size"] if transport == "pool-shm" else None
        pool = vgi_rpc.WorkerPool(max_idle=1, shm_size=shm)
        try:
            with pool.connect(Bench, target) as proxy:
                yield proxy
        finally:
            pool.close()
    elif transport == "shm":
        from vgi_rpc.shm import ShmSegment

        pipe = vgi_rpc.SubprocessTransport(target)
        segment = ShmSegment.create(size=config["shm_size"])
        try:
            with vgi_rpc.RpcConnection(Bench, vgi_rpc.ShmPipeTransport(pipe, segment)) as proxy:
                yield proxy
        finally:
            pipe.close()
            segment.close()
            segment.unlink()
    elif transport == "http":
        from vgi_rpc.http import http_connect

        with http_connect(Bench, target, prefix="/vgi") as proxy:
            yield proxy
    else:
        raise ValueError(f"unknown transport {transport!r}")


def spawn_once(worker: list[str]) -> None:
    """Spawn a worker, make the first call, stop it."""
    with vgi_rpc.connect(Bench, worker) as proxy:
        proxy.noop()


def measure(
    op: Callable[[], int | None], warm_op: Callable[[], int | None], budget: float, min_calls: int
) -> dict[str, Any]:
    """Warm up, then time calls one by one until ``budget`` seconds are spent and ``min_calls`` are made."""
    warm_until = time.perf_counter() + budget / 10
    warm_op()
    while time.perf_counter() < warm_until:
        warm_op()
    times: list[int] = []
    moved = 0
    clock = time.perf_counter_ns
    stop_at = clock() + int(budget * 1e9)
    while len(times) < min_calls or clock() < stop_at:
        t0 = clock()
        moved = op() or 0
        times.append(clock() - t0)
    return {"times_ns": times, "bytes": moved}


def main() -> None:
    config: dict[str, Any] = json.loads(sys.argv[1])
    budget, sizes = config["budget"], config["sizes"]
    me = [os.getpid()]
    results: dict[str, Any] = {}
    if config["transport"] == "echo-floor":  # the echo-only app: a noop-sized POST per call, no RPC
        from _http_load_client import stdlib_poster

        post = stdlib_poster(config["target"])
        results["noop"] = measure(post, post, budget, config["min_calls"])
        print(json.dumps({"impl": vgi_rpc.__file__, "results": results}))
        return
    if "spawn" in config["workloads"]:
        one = lambda: spawn_once(config["target"])  # noqa: E731
        results["spawn"] = measure(one, one, budget, config["min_calls"])
    rest = [w for w in config["workloads"] if w != "spawn"]
    if rest:
        with open_proxy(config) as proxy:
            proxy.noop()
            if config["transport"] == "http":
                servers = config["server_pids"]
            elif config["transport"] == "inproc":
                servers = []
            else:
                servers = [p for p in _children(me) if p != me[0]]
            bench = Workloads(proxy, sizes)
            for name in rest:
                workers = _children(servers)
                base = (_reset_peak(me), _reset_peak(workers))
                minimum = 1 if name in ("download", "upload", "echo_64m") else config["min_calls"]
                got = measure(bench.op(name), bench.op(name, warm=True), budget, minimum)
                got["rss_kb"] = {
                    "client": [base[0], _status_kb(me[0], "VmHWM")],
                    "worker": [base[1], sum(_status_kb(p, "VmHWM") for p in workers)] if workers else None,
                }
                results[name] = got
    print(json.dumps({"impl": vgi_rpc.__file__, "results": results}))


if __name__ == "__main__":
    main()
