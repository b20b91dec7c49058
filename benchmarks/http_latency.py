"""HTTP latency, ours versus the reference vgi-rpc 0.52.2, under waitress and gunicorn, side by side.

    .venv/bin/python benchmarks/http_latency.py [--rounds 3] [--calls 300] [--split]

Each side serves the Bench service with its own ``make_wsgi_app`` (waitress with 4 threads; gunicorn
with one sync worker) and is called by its own ``http_connect`` client, both on 127.0.0.1. Client
and server are pinned to one CPU (``--split``: the server on the other CPU). Each round runs every
(server, side) pair once per method in alternating order; min/median/p99 are over all rounds, in
µs per call (unary) or per stream (``small_stream``: a 20-batch producer, 21 requests;
``exchange10``: 10 exchange turns, 11 requests). The reference runs from a copy of the benchmark
files outside this checkout, so it imports its own ``vgi_rpc``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.unary import summary  # noqa: E402
from tests.http.servers import free_port, spawn_port_printer, stop, wait_healthy  # noqa: E402

METHODS = ["noop", "add", "mixed", "small_stream", "exchange10"]
FILES = ["service.py", "http_app.py", "_http_client.py"]


def _side_dirs(tmp: Path) -> dict[str, tuple[list[str], Path]]:
    from tests.refpeer import ref_python

    ref = ref_python()
    has_gunicorn = subprocess.run([str(ref), "-I", "-c", "import gunicorn"], capture_output=True).returncode == 0
    if not has_gunicorn:
        subprocess.run([str(ref), "-m", "pip", "install", "-q", "gunicorn"], check=True)
    ref_dir = tmp / "reference"
    ref_dir.mkdir()
    for name in FILES:
        shutil.copy(ROOT / "benchmarks" / name, ref_dir / name)
    return {"ours": ([sys.executable], ROOT / "benchmarks"), "reference": ([str(ref), "-I"], ref_dir)}


def _start(kind: str, python: list[str], where: Path, cpu: int) -> tuple[subprocess.Popen[bytes], str]:
    pin = ["taskset", "-c", str(cpu)]
    if kind == "waitress":
        proc, port = spawn_port_printer([*pin, *python, str(where / "http_app.py")], cwd=where)
    else:
        port = free_port()
        python = [p for p in python if p != "-I"]  # gunicorn imports the app from --chdir
        cmd = [*pin, *python, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "--chdir", str(where)]
        proc = subprocess.Popen([*cmd, "http_app:app"], cwd=where, start_new_session=True, stderr=subprocess.DEVNULL)
        wait_healthy(f"http://127.0.0.1:{port}/vgi/health")
    return proc, f"http://127.0.0.1:{port}"


def _client(python: list[str], where: Path, url: str, method: str, calls: int, cpu: int) -> list[int]:
    out = subprocess.run(
        [*python, str(where / "_http_client.py"), url, method, str(calls), str(max(5, calls // 5))],
        check=True,
        capture_output=True,
        text=True,
        cwd=where,
        timeout=900,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
    )
    report: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return list(report["times_ns"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--split", action="store_true", help="server on another CPU than the client")
    args = parser.parse_args()
    server_cpu = (args.cpu + 1) % os.cpu_count() if args.split else args.cpu  # type: ignore[operator]
    with tempfile.TemporaryDirectory() as tmp:
        sides = _side_dirs(Path(tmp))
        servers = {
            (kind, side): _start(kind, python, where, server_cpu)
            for kind in ("waitress", "gunicorn")
            for side, (python, where) in sides.items()
        }
        try:
            times: dict[tuple[str, str, str], list[int]] = {}
            for r in range(args.rounds):
                for method in METHODS:
                    calls = args.calls if method in ("noop", "add", "mixed") else max(10, args.calls // 10)
                    order = list(servers) if r % 2 == 0 else list(reversed(servers))
                    for kind, side in order:
                        python, where = sides[side]
                        got = _client(python, where, servers[(kind, side)][1], method, calls, args.cpu)
                        times.setdefault((kind, method, side), []).extend(got)
                print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
        finally:
            for proc, _ in servers.values():
                stop(proc)
    placement = f"client CPU {args.cpu}, server CPU {server_cpu}"
    print(f"{args.rounds} rounds, interleaved; {placement}; µs per call or stream\n")
    print("| server | method | side | min | median | p99 | min ratio vs ref | median ratio vs ref |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in ("waitress", "gunicorn"):
        for method in METHODS:
            ref = summary(times[(kind, method, "reference")])
            for side in ("reference", "ours"):
                mn, med, p99 = summary(times[(kind, method, side)])
                cells = [kind, method, side, f"{mn:.0f}", f"{med:.0f}", f"{p99:.0f}"]
                cells += [f"{mn / ref[0]:.2f}", f"{med / ref[1]:.2f}"]
                print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
