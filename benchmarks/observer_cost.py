"""What an access-log observer costs a unary call when logging is off: with it, without it, and an A/A pair.

    .venv/bin/python benchmarks/observer_cost.py [--rounds 5] [--calls 2000]

Three sides run our worker over a subprocess pipe, interleaved round after round, pinned to one
CPU: ``none-a`` and ``none-b`` (identical, no observer: their difference is the run's own noise)
and ``access-log`` (an ``AccessLog()`` attached, writing only to the ``vgi_rpc.access`` logger,
which is off). Per-call minimum and median, in µs; ratios against ``none-a``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.unary import client_run, summary  # noqa: E402

SIDES = {"none-a": None, "none-b": None, "access-log": "access-log"}
METHODS = ["noop", "add", "mixed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--cpu", type=int, default=0)
    args = parser.parse_args()
    times: dict[tuple[str, str], list[int]] = {}
    for r in range(args.rounds):
        for method in METHODS:
            order = list(SIDES) if r % 2 == 0 else list(reversed(SIDES))
            for side in order:
                env = dict(os.environ)
                env.pop("VGI_BENCH_OBSERVER", None)
                if SIDES[side]:
                    env["VGI_BENCH_OBSERVER"] = str(SIDES[side])
                report = client_run([sys.executable], method, args.calls, args.calls // 5, args.cpu, env=env)
                times.setdefault((method, side), []).extend(report["times_ns"])
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
    print("| method | side | min | median | min ratio vs none-a | median ratio vs none-a |")
    print("|---|---|---|---|---|---|")
    for method in METHODS:
        base = summary(times[(method, "none-a")])
        for side in SIDES:
            mn, med, _ = summary(times[(method, side)])
            print(f"| {method} | {side} | {mn:.1f} | {med:.1f} | {mn / base[0]:.3f} | {med / base[1]:.3f} |")


if __name__ == "__main__":
    main()
