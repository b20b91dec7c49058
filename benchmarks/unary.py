"""Unary call latency, ours versus the reference vgi-rpc 0.52.2, over a subprocess worker.

    .venv/bin/python benchmarks/unary.py [--rounds 5] [--calls 2000] [--cpu 0]

Client and worker are pinned to one CPU (the worker inherits the client's affinity). Each round
runs every (implementation, interpreter) side once per method, in alternating order, so load on
this shared VM hits all sides alike; per-call minimum, median and p99 are over all rounds.
The reference runs on Python 3.13 from its own venv (tests/refpeer.py builds it); ours runs on
3.13 (a cached venv with this checkout installed) and on this interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

METHODS = ["noop", "add", "mixed"]


def sides() -> dict[str, list[str]]:
    from tests.refpeer import our_venv_python, ref_python  # here, so that benchmarks/ab.py needs no tests/

    ref = str(ref_python())
    ours313 = str(our_venv_python("3.13"))
    return {
        "reference-3.13": [ref, "-I"],
        "ours-3.13": [ours313],
        "ours-3.11": [sys.executable],
    }


def client_run(
    python: list[str],
    method: str,
    calls: int,
    warmup: int,
    cpu: int,
    *,
    root: Path = ROOT,
    env: dict[str, str] | None = None,
    worker_cpu: int | None = None,
) -> dict[str, Any]:
    """One ``_client.py`` run from ``root/benchmarks``, pinned to ``cpu``; returns its JSON.

    The worker inherits the client's CPU unless ``worker_cpu`` is given (``taskset``).
    """
    worker = [*python, str(root / "benchmarks" / "service.py")]
    if worker_cpu is not None:
        worker = ["taskset", "-c", str(worker_cpu), *worker]
    cmd = [*python, str(root / "benchmarks" / "_client.py"), method, str(calls), str(warmup), json.dumps(worker)]
    out = subprocess.run(
        cmd,
        check=True,
        capture_output=True,
        text=True,
        cwd=root / "benchmarks",
        env=env,
        timeout=600,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run_side(python: list[str], method: str, calls: int, cpu: int) -> list[int]:
    return list(client_run(python, method, calls, calls // 5, cpu)["times_ns"])


def summary(times: list[int]) -> tuple[float, float, float]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return ordered[0] / 1000, statistics.median(ordered) / 1000, p99 / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--cpu", type=int, default=0)
    args = parser.parse_args()
    all_sides = sides()
    results: dict[tuple[str, str], list[int]] = {}
    names = list(all_sides)
    for r in range(args.rounds):
        order = names if r % 2 == 0 else names[::-1]
        for method in METHODS:
            for name in order:
                results.setdefault((name, method), []).extend(run_side(all_sides[name], method, args.calls, args.cpu))
    print(f"{args.rounds} rounds x {args.calls} calls, client+worker pinned to CPU {args.cpu}; times in µs\n")
    print("| method | side | min | median | p99 | min ratio vs ref | median ratio vs ref |")
    print("|---|---|---|---|---|---|---|")
    for method in METHODS:
        ref_min, ref_med, _ = summary(results[("reference-3.13", method)])
        for name in names:
            lo, med, p99 = summary(results[(name, method)])
            print(
                f"| {method} | {name} | {lo:.1f} | {med:.1f} | {p99:.1f} | {lo / ref_min:.2f} | {med / ref_med:.2f} |"
            )


if __name__ == "__main__":
    main()
