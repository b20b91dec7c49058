"""What our WSGI app costs per call with no server and no network: a noop and its echo-only floor.

    .venv/bin/python benchmarks/wsgi_inprocess.py [--rounds 5] [--calls 3000]

Both Falcon apps (``http_app.py``: the Bench service through ``make_wsgi_app``; ``echo_app.py``:
the request body echoed back, no RPC) are called directly with a WSGI environ holding a noop
request, pinned to one CPU, interleaved round after round; per-call minimum and median over the
rounds, in µs. The noop goes twice: as our client lays it out (a template match) and as
pyarrow's writer does with one more metadata key (decoded by pyarrow: what other clients get).
This is the part of a call over HTTP that the library controls: under a real server the rest is
the server, the HTTP client and the kernel, the same for both apps.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import echo_app
import http_app
import pyarrow as pa
from service import Bench

from vgi_rpc._core.invoke import RequestEncoder
from vgi_rpc._core.service import service_spec


def ours_noop() -> bytes:
    """A noop request as our client writes it (the server's template path takes it)."""
    spec = service_spec(Bench)
    return bytes(RequestEncoder(spec, spec.methods["noop"]).encode((), {}))


def other_noop() -> bytes:
    """The same call laid out by pyarrow's own writer with one more metadata key (the general path)."""
    metadata = {
        b"vgi_rpc.method": b"noop",
        b"vgi_rpc.protocol": b"Bench",
        b"vgi_rpc.request_version": b"1",
        b"x-other-client": b"1",
    }
    batch = pa.RecordBatch.from_struct_array(pa.array([{}], pa.struct([])))  # one row, no columns
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch, custom_metadata=metadata)
    return bytes(sink.getvalue())


def caller(app: Callable[..., Any], path: str, body: bytes) -> Callable[[], bytes]:
    """One WSGI call of *app* on *path* with *body*; returns the response body (status checked)."""
    base = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_TYPE": "application/vnd.apache.arrow.stream",
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": "127.0.0.1",
    }

    def call() -> bytes:
        status: list[str] = []
        out = app({**base, "wsgi.input": io.BytesIO(body)}, lambda s, h, e=None: status.append(s))
        data = b"".join(out)
        if hasattr(out, "close"):
            out.close()
        if not status[0].startswith("200"):
            raise RuntimeError(f"{path}: {status[0]}")
        return data

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    body = ours_noop()
    sides = {
        "noop, our client's request": caller(http_app.app, "/vgi/Bench/noop", body),
        "noop, another layout": caller(http_app.app, "/vgi/Bench/noop", other_noop()),
        "echo-only app (floor)": caller(echo_app.app, "/", body),
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(args.rounds):
        for name in list(sides)[:: 1 if r % 2 == 0 else -1]:
            call = sides[name]
            for _ in range(args.calls // 10):
                call()
            for _ in range(args.calls):
                t0 = time.perf_counter_ns()
                call()
                times[name].append((time.perf_counter_ns() - t0) / 1e3)
    print("| app | min µs | median µs |\n|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {min(values):.1f} | {statistics.median(values):.1f} |")


if __name__ == "__main__":
    main()
