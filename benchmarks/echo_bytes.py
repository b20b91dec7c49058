"""Big ``bytes`` through a unary call: ``echo_bytes(data)`` over a subprocess worker, ours and the reference.

    .venv/bin/python benchmarks/echo_bytes.py [--mib 64] [--calls 8] [--rounds 2] [--split]

Each side's client (this file, run by the side's interpreter) spawns its own worker (this file
again) and times ``--calls`` calls after a warm-up; rounds alternate the sides. Reported: min and
median ms per call, the client's peak RSS growth during the calls and the worker's peak RSS
(VmHWM). Client and worker on CPU 0 (``--split``: the worker on CPU 1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent


class Echo(Protocol):
    def echo_bytes(self, data: bytes) -> bytes: ...


class EchoImpl:
    def echo_bytes(self, data: bytes) -> bytes:
        return data


def _hwm_mib(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return 0.0


def client(size: int, calls: int, split: bool) -> None:
    """One side's measurement (run under that side's interpreter); prints one JSON line."""
    import vgi_rpc

    os.sched_setaffinity(0, {1} if split else {0})  # the worker inherits this
    payload = os.urandom(size)
    base = _hwm_mib()  # the payload is the caller's: growth is what the calls add to it
    cmd = [sys.executable, *(["-I"] if sys.flags.isolated else []), __file__, "--worker"]
    with vgi_rpc.connect(Echo, cmd) as proxy:
        os.sched_setaffinity(0, {0})
        assert proxy.echo_bytes(data=payload) == payload  # warm-up, and the answer is right
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            result = proxy.echo_bytes(data=payload)
            times.append(time.perf_counter() - t0)
            assert len(result) == size
            del result
        children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
        worker = _hwm_mib(children[0]) if children else 0.0
    print(json.dumps({"times": times, "client_growth": _hwm_mib() - base, "worker_hwm": worker}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--split", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.refpeer import ref_python

    results: dict[str, list[dict[str, float | list[float]]]] = {"ours": [], "reference": []}
    with tempfile.TemporaryDirectory() as tmp:
        ref_copy = Path(tmp) / "echo_bytes.py"  # outside this checkout: the reference imports its own vgi_rpc
        shutil.copy(__file__, ref_copy)
        sides = {
            "ours": ([sys.executable, __file__], ROOT),
            "reference": ([str(ref_python()), "-I", str(ref_copy)], Path(tmp)),
        }
        for r in range(args.rounds):
            for side in list(sides) if r % 2 == 0 else list(sides)[::-1]:
                cmd, cwd = sides[side]
                run = [*cmd, "--client", str(args.mib << 20), str(args.calls), "1" if args.split else "0"]
                out = subprocess.run(run, cwd=cwd, capture_output=True, text=True, timeout=600, check=True).stdout
                results[side].append(json.loads(out.strip().splitlines()[-1]))
    placement = "worker on CPU 1" if args.split else "client and worker on CPU 0"
    print(f"echo_bytes of {args.mib} MiB, {args.rounds} rounds x {args.calls} calls, {placement}\n")
    print("| side | min ms | median ms | client RSS growth MiB | worker peak RSS MiB |")
    print("|---|---|---|---|---|")
    for side, runs in results.items():
        times = [t for run in runs for t in run["times"]]  # type: ignore[union-attr]
        growth = max(float(run["client_growth"]) for run in runs)  # type: ignore[arg-type]
        worker = max(float(run["worker_hwm"]) for run in runs)  # type: ignore[arg-type]
        print(
            f"| {side} | {min(times) * 1e3:.1f} | {statistics.median(times) * 1e3:.1f} | {growth:.0f} | {worker:.0f} |"
        )


if __name__ == "__main__":
    if "--worker" in sys.argv:
        sys.argv[1:] = []  # run_server reads the command line
        sys.path.append(str(ROOT))  # last: under the reference's -I its own vgi_rpc comes first
        import vgi_rpc

        vgi_rpc.run_server(Echo, EchoImpl())
    elif "--client" in sys.argv:
        sys.path.append(str(ROOT))
        i = sys.argv.index("--client")
        client(int(sys.argv[i + 1]), int(sys.argv[i + 2]), sys.argv[i + 3] == "1")
    else:
        main()
