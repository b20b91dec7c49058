"""Stream throughput and latency, ours versus the reference vgi-rpc 0.52.2, over a subprocess worker.

    .venv/bin/python benchmarks/streams.py [--rounds 3]

* bulk: a producer sending 1 GiB as 256 batches of 4 MiB (int64 + float64 columns): MB/s,
  with client and worker on one CPU and on two different CPUs;
* small_stream: a producer of 50 one-row batches; exchange20: an exchange of 20 rounds (latency);
  ``small_stream-split`` and ``exchange20-split`` run them with the worker on another CPU.

Sides run interleaved, round after round; minimum and median are over all rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.refpeer import our_venv_python, ref_python  # noqa: E402

GIB = 1 << 30


def sides() -> dict[str, list[str]]:
    return {"reference-3.13": [str(ref_python()), "-I"], "ours-3.13": [str(our_venv_python("3.13"))]}


def run(python: list[str], method: str, iterations: int, split: bool) -> list[int]:
    worker = [*python, str(ROOT / "benchmarks" / "service.py")]
    if split:
        worker = ["taskset", "-c", "1", *worker]
    cmd = [*python, str(ROOT / "benchmarks" / "_client.py"), method, str(iterations), "1", json.dumps(worker)]
    out = subprocess.run(
        cmd,
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT / "benchmarks",
        timeout=1200,
        preexec_fn=lambda: os.sched_setaffinity(0, {0}),
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1])["times_ns"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--cases", default="bulk,bulk-split,small_stream,exchange20", help="comma-separated subset of the cases"
    )
    args = parser.parse_args()
    all_sides = sides()
    names = list(all_sides)
    all_cases = {
        "bulk": ("bulk", 1, False),
        "bulk-split": ("bulk", 1, True),
        "small_stream": ("small_stream", 200, False),
        "exchange20": ("exchange20", 200, False),
        "small_stream-split": ("small_stream", 200, True),
        "exchange20-split": ("exchange20", 200, True),
    }
    cases = [all_cases[c] for c in args.cases.split(",")]
    results: dict[tuple[str, str, bool], list[int]] = {}
    for r in range(args.rounds):
        for method, iterations, split in cases:
            for name in names if r % 2 == 0 else names[::-1]:
                key = (name, method, split)
                results.setdefault(key, []).extend(run(all_sides[name], method, iterations, split))
    print(f"{args.rounds} rounds, interleaved; client on CPU 0, worker on CPU 0 (same) or CPU 1 (split)\n")
    print("| case | side | best | median | best ratio ours/ref |")
    print("|---|---|---|---|---|")
    for method, _, split in cases:
        label = f"{method} ({'split CPUs' if split else 'one CPU'})"
        ref = results[("reference-3.13", method, split)]
        for name in names:
            times = results[(name, method, split)]
            if method == "bulk":
                best, med = GIB / min(times) * 1e3, GIB / statistics.median(times) * 1e3  # MB/s (1e9 ns, 1e6 B)
                ratio = min(ref) / min(times)
                print(f"| {label} | {name} | {best:.0f} MB/s | {med:.0f} MB/s | {ratio:.2f}x throughput |")
            else:
                best, med = min(times) / 1e3, statistics.median(times) / 1e3
                print(f"| {label} | {name} | {best:.0f} µs | {med:.0f} µs | {min(times) / min(ref):.2f} of ref time |")


if __name__ == "__main__":
    main()
