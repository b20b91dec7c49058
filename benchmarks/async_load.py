"""Async HTTP load: calls/s of noop() from one event loop (64 concurrent) against our ASGI app under uvicorn,
beside the sync client against gunicorn, the reference's sync client against its own server, and a floor.

    .venv/bin/python benchmarks/async_load.py [--rounds 3] [--seconds 5] [--concurrency 64]

Sides, interleaved round by round (the machine is shared: read the medians):

- ``async (aiohttp)``: our ``ahttp_connect`` (its default, aiohttp) against ``make_asgi_app`` under
  uvicorn (one process); ``async (httpx)``: the same over an ``httpx.AsyncClient``.
- ``sync ours`` / ``sync reference``: ``http_connect`` from 2 processes x 4 threads against each
  library's WSGI app under gunicorn (2 sync workers), as ``benchmarks/http_load.py``.
- ``floor``: a minimal asyncio HTTP/1.1 client (``--concurrency`` keep-alive connections) against
  a bare echo ASGI app under the same uvicorn; ``echo aiohttp`` / ``echo httpx``: those libraries'
  plain POSTs against the same echo app (which async HTTP client to use by default).

The heartbeat column is the largest gap a 10 ms heartbeat task on the client's loop saw.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.http_latency import _side_dirs  # noqa: E402
from benchmarks.http_load import _gunicorn, _load  # noqa: E402
from tests.http.servers import free_port, stop, wait_healthy  # noqa: E402

BENCH = ROOT / "benchmarks"


def _uvicorn(app: str, health: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    cmd += ["--log-level", "warning", "--app-dir", str(BENCH), app]
    proc = subprocess.Popen(cmd, cwd=BENCH, start_new_session=True)
    if health:
        wait_healthy(f"http://127.0.0.1:{port}{health}")
    else:
        from benchmarks.http_load import _wait_echo

        _wait_echo(port)
    return proc, f"http://127.0.0.1:{port}"


def _async_load(mode: str, url: str, args: argparse.Namespace) -> tuple[int, list[int], float]:
    cmd = [sys.executable, str(BENCH / "_async_load_client.py"), mode, url, str(args.seconds), str(args.concurrency)]
    out = subprocess.run(cmd, cwd=BENCH, capture_output=True, text=True, timeout=300, check=True).stdout
    report = json.loads(out.strip().splitlines()[-1])
    return report["calls"], report["sample"], report["gap_ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, list[int], float | None]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sides = _side_dirs(Path(tmp))
        ref_python, ref_dir = sides["reference"]
        (ref_dir / "_http_load_client.py").write_text((BENCH / "_http_load_client.py").read_text())
        servers = {
            "asgi": _uvicorn("asgi_app:app", "/vgi/health"),
            "echo": _uvicorn("echo_asgi:app", ""),
            "wsgi ours": _gunicorn(*sides["ours"], "http_app:app"),
            "wsgi reference": _gunicorn(ref_python, ref_dir, "http_app:app"),
        }
        plan = [
            ("async (aiohttp)", "asgi", "aio"),
            ("async (httpx)", "asgi", "aio-httpx"),
            ("sync ours", "wsgi ours", None),
            ("sync reference", "wsgi reference", None),
            ("floor", "echo", "floor"),
            ("echo aiohttp", "echo", "aiohttp"),
            ("echo httpx", "echo", "httpx"),
        ]
        try:
            for r in range(args.rounds):
                for side, server, mode in plan if r % 2 == 0 else list(reversed(plan)):
                    url = servers[server][1]
                    if mode is None:
                        python, where = sides["reference" if "reference" in side else "ours"]
                        calls, sample = _load(python, where, "rpc", url, args)
                        results.setdefault(side, []).append((calls / args.seconds, sample, None))
                    else:
                        calls, sample, gap = _async_load(mode, url, args)
                        results.setdefault(side, []).append((calls / args.seconds, sample, gap))
                print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
        finally:
            for proc, _ in servers.values():
                stop(proc)
    print(
        f"{args.rounds} rounds of {args.seconds:.0f} s; async: {args.concurrency} concurrent calls on one loop, "
        f"uvicorn 1 process; sync: {args.processes} processes x {args.threads} threads, gunicorn 2 sync workers\n"
    )
    print("| side | calls/s best | calls/s median | p50 ms | p99 ms | heartbeat largest gap ms |")
    print("|---|---|---|---|---|---|")
    for side, runs in results.items():
        rates = [rate for rate, _, _ in runs]
        sample = sorted(x for _, s, _ in runs for x in s)
        p50, p99 = sample[len(sample) // 2] / 1e6, sample[int(len(sample) * 0.99)] / 1e6
        gaps = [g for _, _, g in runs if g is not None]
        gap = f"{max(gaps):.1f}" if gaps else "-"
        print(f"| {side} | {max(rates):.0f} | {statistics.median(rates):.0f} | {p50:.2f} | {p99:.2f} | {gap} |")


if __name__ == "__main__":
    main()
