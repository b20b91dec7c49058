"""HTTP load: calls/s of noop() from several client processes and threads against gunicorn, ours and the
reference side by side, with a floor (httpx against a Falcon app that only echoes the body).

    .venv/bin/python benchmarks/http_load.py [--rounds 2] [--seconds 5] [--processes 2] [--threads 4]

Each side runs under gunicorn (2 sync workers) on 127.0.0.1; rounds interleave the sides. The
table shows calls/s (best and median over rounds) and p50/p99 latency under load (ms).
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
from tests.http.servers import free_port, stop, wait_healthy  # noqa: E402


def _gunicorn(python: list[str], where: Path, module: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    python = [p for p in python if p != "-I"]
    cmd = [*python, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--chdir", str(where), module]
    proc = subprocess.Popen(cmd, cwd=where, start_new_session=True, stderr=subprocess.DEVNULL)
    wait_healthy(f"http://127.0.0.1:{port}/vgi/health") if module.startswith("http_app") else _wait_echo(port)
    return proc, f"http://127.0.0.1:{port}"


def _wait_echo(port: int) -> None:
    import time

    import httpx

    for _ in range(100):
        try:
            httpx.post(f"http://127.0.0.1:{port}/vgi/echo", content=b"x", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)


def _load(python: list[str], where: Path, kind: str, url: str, args: argparse.Namespace) -> tuple[int, list[int]]:
    cmd = [*python, str(where / "_http_load_client.py"), kind, url, str(args.seconds), str(args.threads)]
    procs = [subprocess.Popen(cmd, cwd=where, stdout=subprocess.PIPE, text=True) for _ in range(args.processes)]
    calls, sample = 0, []
    for p in procs:
        out, _ = p.communicate(timeout=300)
        report = json.loads(out.strip().splitlines()[-1])
        calls += report["calls"]
        sample += report["sample"]
    return calls, sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sides = _side_dirs(Path(tmp))
        ref_python, ref_dir = sides["reference"]
        for name in ("_http_load_client.py", "echo_app.py"):
            (ref_dir / name).write_text((ROOT / "benchmarks" / name).read_text())
        servers = {
            "ours": (*_gunicorn(*sides["ours"], "http_app:app"), sides["ours"]),
            "reference": (*_gunicorn(ref_python, ref_dir, "http_app:app"), sides["reference"]),
            "floor": (*_gunicorn([sys.executable], ROOT / "benchmarks", "echo_app:app"), sides["ours"]),
        }
        results: dict[str, list[tuple[float, list[int]]]] = {}
        try:
            for r in range(args.rounds):
                order = list(servers) if r % 2 == 0 else list(reversed(servers))
                for side in order:
                    _, url, (python, where) = servers[side]
                    calls, sample = _load(python, where, "floor" if side == "floor" else "rpc", url, args)
                    results.setdefault(side, []).append((calls / args.seconds, sample))
                print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
        finally:
            for proc, _, _ in servers.values():
                stop(proc)
    clients = f"{args.processes} processes x {args.threads} threads"
    print(f"{args.rounds} rounds of {args.seconds:.0f} s; {clients}; gunicorn 2 sync workers\n")
    print("| side | calls/s best | calls/s median | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for side, runs in results.items():
        rates = [rate for rate, _ in runs]
        sample = sorted(x for _, s in runs for x in s)
        p50, p99 = sample[len(sample) // 2] / 1e6, sample[int(len(sample) * 0.99)] / 1e6
        print(f"| {side} | {max(rates):.0f} | {statistics.median(rates):.0f} | {p50:.2f} | {p99:.2f} |")


if __name__ == "__main__":
    main()
