"""A/B benchmark: two revisions of this repository measured side by side in one run.

    .venv/bin/python benchmarks/ab.py --base <rev> [--head <rev>|worktree] [--rounds 5] [--calls 2000]
        [--stream-calls 200] [--cpu 0] [--split] [--only unary,streams | noop,add,mixed,small_stream,exchange20,bulk]

base is extracted with ``git archive`` to /tmp/ab-<sha> (kept and reused: a commit never changes);
head is the working tree (default) or another revision, extracted the same way. Both sides run
this checkout's benchmark client and service (``_client.py``, ``service.py``, copied into each
extracted tree) on this interpreter, from the side's ``benchmarks/`` with ``PYTHONPATH`` set to
the side's tree, so client and worker import the side's own ``vgi_rpc`` (the venv's editable
install of this checkout is only a fallback after ``sys.path``); every run checks the client's
``vgi_rpc.__file__`` and aborts if it lies outside the side's tree.

Runs are those of unary.py and streams.py: unary ``noop``/``add``/``mixed`` (µs per call,
``--calls`` per run, a fifth as warm-up), ``small_stream``/``exchange20`` (µs per stream) and
``bulk`` (1 GiB, MB/s; one per run). Client and worker are pinned to ``--cpu``; with
``--split`` the worker runs on another CPU. Each round runs both sides once per method, in
alternating order; min/median/p99 are over all rounds. Ratios are head/base *time* (bulk:
base/head MB/s), so > 1 means head is slower. The last column is the range of the per-round min
ratios: a difference whose range straddles 1.00 is within the run's own noise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.unary import client_run, summary  # noqa: E402

GIB = 1 << 30
GROUPS = {"unary": ["noop", "add", "mixed"], "streams": ["small_stream", "exchange20", "bulk"]}
BENCH_FILES = ["__init__.py", "_client.py", "service.py"]
SEEN: set[Path] = set()  # trees whose vgi_rpc path was printed


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def side_tree(rev: str) -> Path:
    """The tree to run for ``rev``: the working tree, or a cached extract of the commit."""
    if rev == "worktree":
        return ROOT
    sha = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    path = Path(tempfile.gettempdir()) / f"ab-{sha[:12]}"
    if not path.exists():
        tmp = Path(tempfile.mkdtemp(prefix=f"{path.name}.", dir=path.parent))
        try:
            archive = subprocess.run(["git", "archive", sha], cwd=ROOT, check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
            tmp.rename(path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # left only if the extract or the rename failed
    (path / "benchmarks").mkdir(exist_ok=True)
    for name in BENCH_FILES:  # both sides run the same benchmark code
        shutil.copyfile(ROOT / "benchmarks" / name, path / "benchmarks" / name)
    return path


def measure(tree: Path, method: str, args: argparse.Namespace, wcpu: int | None) -> list[int]:
    if method == "bulk":
        calls, warmup = 1, 1
    elif method in GROUPS["streams"]:
        calls, warmup = args.stream_calls, 1
    else:
        calls, warmup = args.calls, args.calls // 5
    env = {**os.environ, "PYTHONPATH": str(tree)}
    try:
        result = client_run([sys.executable], method, calls, warmup, args.cpu, root=tree, env=env, worker_cpu=wcpu)
    except subprocess.CalledProcessError as exc:
        sys.exit(f"{method} failed in {tree}:\n{exc.stderr}")
    impl = Path(result["impl"]).resolve()
    if not impl.is_relative_to(tree.resolve()):
        sys.exit(f"side {tree} imported vgi_rpc from {impl}")
    if tree not in SEEN:
        SEEN.add(tree)
        print(f"{tree}: vgi_rpc from {impl}", file=sys.stderr)
    return list(result["times_ns"])


def row(method: str, side: str, times: list[int], base: list[int], spread: str) -> str:
    lo, med, p99 = summary(times)
    if method == "bulk":  # MB/s at the min, median and p99 time
        lo, med, p99 = (GIB / t for t in (lo, med, p99))  # bytes/µs
    ratios = f"{min(times) / min(base):.3f} | {statistics.median(times) / statistics.median(base):.3f}"
    return f"| {method} | {side} | {lo:.1f} | {med:.1f} | {p99:.1f} | {ratios} | {spread} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="git revision")
    parser.add_argument("--head", default="worktree", help="git revision, or 'worktree' (default)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000, help="unary calls per run")
    parser.add_argument("--stream-calls", type=int, default=200, help="small_stream/exchange20 streams per run")
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--split", action="store_true", help="worker on another CPU than the client")
    parser.add_argument("--only", default="unary,streams", help="comma-separated groups and/or methods")
    args = parser.parse_args()
    methods = [m for token in args.only.split(",") for m in GROUPS.get(token, [token])]
    if unknown := set(methods) - {m for group in GROUPS.values() for m in group}:
        parser.error(f"unknown methods: {', '.join(sorted(unknown))}")
    worker_cpu = None
    if args.split:
        others = sorted(os.sched_getaffinity(0) - {args.cpu})
        if not others:
            parser.error("--split needs a second CPU")
        worker_cpu = others[0]
    trees = {"base": side_tree(args.base), "head": side_tree(args.head)}

    results: dict[tuple[str, str], list[list[int]]] = {}
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
        for method in methods:
            for side in ("base", "head") if r % 2 == 0 else ("head", "base"):
                results.setdefault((side, method), []).append(measure(trees[side], method, args, worker_cpu))

    where = f"client on CPU {args.cpu}, worker on CPU {worker_cpu}" if args.split else f"both on CPU {args.cpu}"
    print(f"\nbase = {args.base} ({trees['base']}), head = {args.head} ({trees['head']})")
    print(f"{args.rounds} rounds, interleaved; {where}; µs per call or stream, bulk in MB/s")
    print("ratios are head/base time (bulk: base/head MB/s): > 1 means head is slower\n")
    print("| method | side | min | median | p99 | head/base min | head/base median | per-round min ratios |")
    print("|---|---|---|---|---|---|---|---|")
    for method in methods:
        base_rounds, head_rounds = results[("base", method)], results[("head", method)]
        per_round = [min(h) / min(b) for h, b in zip(head_rounds, base_rounds, strict=True)]
        base = [t for run in base_rounds for t in run]
        head = [t for run in head_rounds for t in run]
        print(row(method, "base", base, base, ""))
        print(row(method, "head", head, base, f"{min(per_round):.3f}-{max(per_round):.3f}"))


if __name__ == "__main__":
    main()
