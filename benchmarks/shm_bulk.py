"""Bulk throughput over shared memory and over the plain pipe, ours versus the reference 0.52.2.

    .venv/bin/python benchmarks/shm_bulk.py [--rounds 3] [--batches 64]

Download: a producer of ``--batches`` batches of 4 MiB; upload: an exchange taking as many 4 MiB
inputs (answering each with its row count). Each side uses its own client and its own worker
(a subprocess), with a 64 MiB segment for shm (``pool-shm``: the worker borrowed from a
``WorkerPool(shm_size=64 MiB)``). Placements: client and worker on one CPU, and on
two (``os.sched_setaffinity`` for the client, ``taskset`` for the worker). Rounds interleave every
configuration; the table shows the best and the median MB/s.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FILES = ["service.py", "_shm_client.py"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=64)
    args = parser.parse_args()
    from tests.refpeer import ref_python

    with tempfile.TemporaryDirectory() as tmp:
        ref_dir = Path(tmp)
        for name in FILES:
            shutil.copy(ROOT / "benchmarks" / name, ref_dir / name)
        sides = {
            "ours": ([sys.executable], ROOT / "benchmarks"),
            "reference": ([str(ref_python()), "-I"], ref_dir),
        }
        results: dict[tuple[str, str, str, str], list[float]] = {}
        for _ in range(args.rounds):
            for placement in ("one CPU", "split"):
                for workload in ("download", "upload"):
                    for mode in ("pool-shm", "shm", "pipe"):
                        for side, (python, where) in sides.items():
                            worker_cpu = "0" if placement == "one CPU" else "1"
                            worker = ["taskset", "-c", worker_cpu, *python, str(where / "service.py")]
                            out = subprocess.run(
                                [
                                    *python,
                                    str(where / "_shm_client.py"),
                                    mode,
                                    workload,
                                    str(args.batches),
                                    json.dumps(worker),
                                ],
                                check=True,
                                capture_output=True,
                                text=True,
                                cwd=where,
                                timeout=600,
                                preexec_fn=lambda: os.sched_setaffinity(0, {0}),
                            )
                            mb_s = json.loads(out.stdout.strip().splitlines()[-1])["mb_s"]
                            results.setdefault((placement, workload, mode, side), []).append(mb_s)
    print(f"{args.rounds} rounds x {args.batches} batches of 4 MiB; MB/s (best / median)\n")
    print("| placement | workload | transport | ours best | ours median | reference best | reference median |")
    print("|---|---|---|---|---|---|---|")
    for placement in ("one CPU", "split"):
        for workload in ("download", "upload"):
            for mode in ("pool-shm", "shm", "pipe"):
                ours = results[(placement, workload, mode, "ours")]
                ref = results[(placement, workload, mode, "reference")]
                cells = [placement, workload, mode, f"{max(ours):.0f}", f"{statistics.median(ours):.0f}"]
                cells += [f"{max(ref):.0f}", f"{statistics.median(ref):.0f}"]
                print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
