"""The side-by-side benchmark suite (issue 17): ours versus the reference vgi-rpc 0.52.2, in one run.

    .venv/bin/python benchmarks/suite.py [--quick] [--json PATH] [--only unary,http] [--transports ...]
        [--placements one,split] [--sides reference,ours-3.13,ours-3.11] [--rounds 3] [--budget 0.3]

Workloads (``--only``: names or groups, and/or transports):

* unary: ``noop``, ``add``, ``greet`` (a string), ``mixed`` (Enum + ``dict[str, int]`` +
  ``frozenset[int]``), ``record`` (a dataclass argument), ``list`` (``list[int]`` of 16);
* echo: ``echo_bytes`` of 1 KiB, 1 MiB and 64 MiB;
* streams: ``producer50`` (50 one-row batches), ``exchange20`` (20 rounds);
* bulk: ``download`` (1 GiB of int64 + float64 columns in 4 MiB batches) and ``upload`` (256 MiB),
  in MB/s, with the peak RSS of client and worker during each (over HTTP at most ``--http-bulk-mib``);
* spawn: start a worker and make the first call (subprocess only);
* import: ``python -c "import vgi_rpc"`` (ours on this interpreter and on 3.13, the reference on 3.13),
  and ``import_used``: the names a client and a worker script use (``connect``, ``run_server``,
  ``serve_pipe``, ``RpcServer``, ``Stream`` and the stream classes), since ours loads its modules
  on first use of a name;
* load: calls/s of ``noop`` from several client processes and threads against gunicorn
  (benchmarks/http_load.py), with the echo-only Falcon app under the same gunicorn as its floor
  (a noop-sized POST over a keep-alive ``http.client`` connection, what our client sends with);
  the same floor stands beside the unary calls under gunicorn (side ``floor``, one POST a call);
* floors: ``raw_pipe`` (the download's bytes through ``os.pipe`` between two processes),
  ``pipe_roundtrip`` (a noop-sized request and reply through two pipes: the system calls and
  wake-ups of any unary call over a pipe), ``ipc_exchange`` (``exchange20`` by hand: a three-row
  batch serialized, echoed and decoded 20 times over two pipes, no framework), ``arrow_spawn``
  (start a Python that imports pyarrow, one round trip, its exit: what ``spawn`` cannot go below)
  and ``memcpy`` (a 64 MiB copy in one process); the pipe floors run inside the subprocess rounds
  (the two round-trip floors both blocking and busy-waiting 50 µs, as ours does).

Transports: ``inproc`` (``serve_pipe``), ``subprocess`` (``connect``), ``pool`` (``WorkerPool``),
``pool-shm`` (``WorkerPool(shm_size=...)``), ``shm`` (``ShmPipeTransport``), and HTTP under
``waitress`` and ``gunicorn`` (one sync worker; real servers on 127.0.0.1, stopped by PID; group
``http``). Every workload runs over every transport, except ``spawn`` (subprocess only).

Method. The client is pinned to the first CPU (``os.sched_setaffinity``); placement ``one`` runs
the worker (or server) on the same CPU, ``split`` on the second one (``taskset``). For each
(transport, placement) every side runs once per round, in alternating order, round after round;
each run does every selected workload over one connection: warm-up calls for a tenth of the
budget, then calls timed one by one for ``--budget`` seconds (at least a few). Minimum, median
and p99 are over all calls of all rounds; for MB/s and calls/s the columns hold the rate at the
minimum, median and p99 time (best, median, worst 1 %). The ratio is ours/reference of the same
metric (time: lower is better; MB/s and calls/s: higher is better). The reference runs on
Python 3.13 from its own venv (tests/refpeer.py) with ``-I`` from a copy of the benchmark files
outside the checkout; ``ours-3.13`` is this suite's own 3.13 venv with this checkout installed
(editable) and the HTTP stack, built on first use; ``ours-3.11`` (or whatever this interpreter is)
the current venv. ``--quick`` shrinks every size and budget
so that the whole suite runs in well under a minute (a smoke run, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.http_latency import _side_dirs, _start  # noqa: E402
from benchmarks.http_load import _gunicorn, _load  # noqa: E402
from tests.http.servers import stop  # noqa: E402

MIB = 1 << 20
GROUPS = {
    "unary": ["noop", "add", "greet", "mixed", "record", "list"],
    "echo": ["echo_1k", "echo_1m", "echo_64m"],
    "streams": ["producer50", "exchange20"],
    "bulk": ["download", "upload"],
    "spawn": ["spawn"],
    "import": ["import", "import_used"],
    "load": ["load"],
    "floors": ["raw_pipe", "pipe_roundtrip", "ipc_exchange", "arrow_spawn", "memcpy"],
}
WORKLOADS = [w for group in GROUPS.values() for w in group]
PIPE_TRANSPORTS = ["inproc", "subprocess", "pool", "pool-shm", "shm"]
HTTP_TRANSPORTS = ["waitress", "gunicorn"]
TRANSPORT_GROUPS = {"pipe": PIPE_TRANSPORTS, "http": HTTP_TRANSPORTS}
TRANSPORTS = PIPE_TRANSPORTS + HTTP_TRANSPORTS
RATES = {"download", "upload", "raw_pipe", "memcpy"}  # reported in MB/s
CLIENT_FILES = ["service.py", "_suite_client.py", "_http_load_client.py", "echo_app.py"]
OURS = f"ours-{sys.version_info.major}.{sys.version_info.minor}"


@dataclass
class Side:
    """One implementation on one interpreter: how to run it and where its benchmark files are."""

    name: str
    python: list[str]
    where: Path
    env: dict[str, str]
    ours: bool


@dataclass
class Plan:
    workloads: list[str]
    transports: list[str]
    placements: list[str]
    sides: list[str]
    sizes: dict[str, int]
    args: argparse.Namespace
    cpus: tuple[int, int]
    times: dict[tuple[str, str, str, str], list[int]] = field(default_factory=dict)
    run_mins: dict[tuple[str, str, str, str], list[int]] = field(default_factory=dict)  # per round
    moved: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    rss: dict[tuple[str, str, str, str], dict[str, list[int]]] = field(default_factory=dict)
    claimed: list[tuple[str, str, str, str]] = field(default_factory=list)

    def record(self, key: tuple[str, str, str, str], times: list[int], moved: int = 0) -> None:
        self.times.setdefault(key, []).extend(times)
        self.run_mins.setdefault(key, []).append(min(times))
        self.moved[key] = moved


def ours_313() -> Path:
    """Python of a 3.13 venv with this checkout installed (editable) and the HTTP stack, built once.

    The venv is this suite's own, one per checkout (``suite-ours-3.13-<hash of the path>`` in the
    peer cache): the shared ``ours-3.13`` venv of tests/refpeer.py is rebuilt for whichever
    checkout asks for it and holds no web server. Ours gets the extras the reference is installed
    with (HTTP and S3): without python-dateutil (boto3 brings it) pyarrow retries a failing import
    on every ``RecordBatch.from_pydict`` on 3.13, and the benchmark's own client code would cost
    ~50 µs more per call on our side than on the reference's.
    """
    import hashlib

    from tests.refpeer import _build, _cache_dir, find_python313

    tag = hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]
    packages = ["--config-settings", "editable_mode=compat", "-e", f"{ROOT}[http,s3]", "waitress", "gunicorn"]
    return _build(_cache_dir() / f"suite-ours-3.13-{tag}", find_python313(), packages, f"suite:{ROOT}:{packages}")


def make_sides(tmp: Path, wanted: list[str]) -> dict[str, Side]:
    sides: dict[str, Side] = {}
    if "reference" in wanted:
        ref = _side_dirs(tmp)["reference"]  # copies service.py & co. and makes sure gunicorn is there
        for name in CLIENT_FILES:
            shutil.copy(ROOT / "benchmarks" / name, ref[1] / name)
        sides["reference"] = Side(
            "reference", ref[0], ref[1], {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, False
        )
    if "ours-3.13" in wanted and OURS != "ours-3.13":
        sides["ours-3.13"] = Side("ours-3.13", [str(ours_313())], ROOT / "benchmarks", dict(os.environ), True)
    if OURS in wanted:
        sides[OURS] = Side(OURS, [sys.executable], ROOT / "benchmarks", dict(os.environ), True)
    for side in sides.values():
        if side.ours:
            compile_ours(side.python[0])
    return sides


def compile_ours(python: str) -> None:
    """Byte-compile this checkout's ``vgi_rpc`` for *python*, as an install does.

    The reference is pip-installed, which writes its bytecode; ours is an editable install, whose
    bytecode is written on import, unless the environment forbids it (``PYTHONDONTWRITEBYTECODE``,
    set on this project's machines): then every import and every worker start would compile ours
    from source and the import and spawn rows would measure the compiler.
    """
    subprocess.run([python, "-m", "compileall", "-q", str(ROOT / "vgi_rpc")], check=True, stdout=subprocess.DEVNULL)


def floor_side() -> Side:
    """Who runs the echo-only app and its client: this interpreter, from this checkout's benchmarks/."""
    return Side("floor", [sys.executable], ROOT / "benchmarks", dict(os.environ), True)


def pinned(cpu: int) -> Any:
    return lambda: os.sched_setaffinity(0, {cpu})


def run_client(plan: Plan, side: Side, transport: str, placement: str, workloads: list[str], target: Any) -> None:
    """One ``_suite_client.py`` run; its timings go into ``plan``."""
    client_cpu, other_cpu = plan.cpus
    worker_cpu = other_cpu if placement == "split" else client_cpu
    pids: list[int] = []
    if target is None:
        target = [*side.python, str(side.where / "service.py")]
        if placement == "split":
            target = ["taskset", "-c", str(worker_cpu), *target]
    else:
        target, pids = target
    sizes = dict(plan.sizes)
    if transport in HTTP_TRANSPORTS:  # a round trip per batch for the reference: 1 GiB would take minutes
        for name in ("download_batches", "upload_batches"):
            sizes[name] = min(sizes[name], plan.sizes["http_batches"])
    config = {
        "transport": "echo-floor" if side.name == "floor" else "http" if transport in HTTP_TRANSPORTS else transport,
        "target": target,
        "server_pids": pids,
        "workloads": workloads,
        "budget": plan.args.budget,
        "min_calls": plan.args.min_calls,
        "sizes": sizes,
        "shm_size": 2 * max(plan.sizes["echo_64m"], plan.sizes["batch_rows"] * 16) + 16 * MIB,
    }
    cmd = [*side.python, str(side.where / "_suite_client.py"), json.dumps(config)]
    try:
        out = subprocess.run(
            cmd,
            check=True,
            capture_output=True,
            text=True,
            cwd=side.where,
            env=side.env,
            timeout=1800,
            preexec_fn=pinned(client_cpu),
        )
    except subprocess.CalledProcessError as exc:
        sys.exit(f"{transport}/{placement} failed under {cmd[0]}:\n{exc.stderr}")
    report = json.loads(out.stdout.strip().splitlines()[-1])
    impl = Path(report["impl"]).resolve()
    if impl.is_relative_to(ROOT) != side.ours and side.name != "floor":
        sys.exit(f"{cmd[0]} imported the wrong vgi_rpc: {impl}")
    for name, got in report["results"].items():
        key = (name, transport, placement, side.name)
        plan.record(key, got["times_ns"], got["bytes"])
        for who, pair in (got.get("rss_kb") or {}).items():
            if pair:
                growth, peak = pair[1] - pair[0], pair[1]
                old = plan.rss.setdefault(key, {}).get(who, [0, 0])
                plan.rss[key][who] = [max(old[0], growth), max(old[1], peak)]


def alternate(items: list[str], r: int) -> list[str]:
    return items if r % 2 == 0 else items[::-1]


@contextmanager
def http_servers(kind: str, sides: dict[str, Side], cpu: int) -> Iterator[dict[str, tuple[str, list[int]]]]:
    """A server per side (``benchmarks/http_latency.py``'s), pinned to ``cpu``; stopped by PID on exit."""
    started: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    try:
        for name, side in sides.items():
            if name == "floor":  # http_load.py's gunicorn (2 workers; one client here), pinned
                started[name] = _gunicorn(["taskset", "-c", str(cpu), *side.python], side.where, "echo_app:app")
            else:
                started[name] = _start(kind, side.python, side.where, cpu)
        yield {name: (url, [proc.pid]) for name, (proc, url) in started.items()}
    finally:
        for proc, _ in started.values():
            stop(proc)


def run_transports(plan: Plan, sides: dict[str, Side]) -> None:
    rpc = [w for w in plan.workloads if w in WORKLOADS[: WORKLOADS.index("spawn") + 1]]
    for transport in plan.transports if rpc else []:
        workloads = [w for w in rpc if w != "spawn" or transport == "subprocess"]
        runs = {n: (side, workloads) for n, side in sides.items()}
        if transport == "gunicorn" and "noop" in workloads:  # the echo-only app under the same gunicorn
            runs["floor"] = (floor_side(), ["noop"])
        for placement in plan.placements:
            if transport == "inproc" and placement == "split":
                continue  # one process: nothing to place
            print(f"{transport} / {placement}", file=sys.stderr)
            run_group(plan, transport, placement, runs)


def run_group(plan: Plan, transport: str, placement: str, runs: dict[str, tuple[Side, list[str]]]) -> None:
    """Every side's client run once per round, in alternating order (HTTP: against its own server)."""
    for name, (_, workloads) in runs.items():
        plan.claimed += [(w, transport, placement, name) for w in workloads]
    servers: Any = nullcontext({name: None for name in runs})
    if transport in HTTP_TRANSPORTS:
        server_cpu = plan.cpus[1] if placement == "split" else plan.cpus[0]
        servers = http_servers(transport, {name: side for name, (side, _) in runs.items()}, server_cpu)
    with servers as targets:
        for r in range(plan.args.rounds):
            for name in alternate(list(runs), r):
                side, workloads = runs[name]
                run_client(plan, side, transport, placement, workloads, targets[name])
            for floor, once in PIPE_FLOORS.items() if transport == "subprocess" else ():
                if floor in plan.workloads:
                    once(plan, placement)


USED_NAMES = (
    "connect",
    "run_server",
    "serve_pipe",
    "RpcServer",
    "RpcError",
    "AnnotatedBatch",
    "ArrowSerializableDataclass",
    "CallContext",
    "ExchangeState",
    "OutputCollector",
    "ProducerState",
    "Stream",
)
# what each import row runs: the package alone, and the names a client and a worker script use
# (ours loads its modules on first use of a name, the reference all of them with the package)
IMPORTS = {"import": "import vgi_rpc", "import_used": f"from vgi_rpc import {', '.join(USED_NAMES)}"}


def run_import(plan: Plan, sides: dict[str, Side], workloads: list[str]) -> None:
    """The import rows (``IMPORTS``) from a directory outside the checkout, pinned to the client CPU."""
    names = list(sides)
    rows = [w for w in IMPORTS if w in workloads]
    plan.claimed += [(w, "process", "one", s) for w in rows for s in names]
    with tempfile.TemporaryDirectory() as neutral:
        for r, workload in ((r, w) for r in range(plan.args.rounds) for w in rows):
            for name in alternate(names, r):
                side = sides[name]
                times = []
                stop_at = time.perf_counter() + plan.args.budget
                while len(times) < plan.args.min_calls or time.perf_counter() < stop_at:
                    t0 = time.perf_counter_ns()
                    subprocess.run(
                        [*side.python, "-c", IMPORTS[workload]],
                        check=True,
                        cwd=neutral,
                        env=side.env,
                        preexec_fn=pinned(plan.cpus[0]),
                    )
                    times.append(time.perf_counter_ns() - t0)
                plan.record((workload, "process", "one", name), times)


RAW_WRITER = """
import fcntl, os, sys
total, chunk = int(sys.argv[1]), int(sys.argv[2])
try:
    fcntl.fcntl(1, 1031, 1 << 20)  # F_SETPIPE_SZ
except OSError:
    pass
buf = memoryview(b"\\xab" * chunk)
os.write(1, b"!")  # the reader's clock starts here
while total > 0:
    total -= os.write(1, buf[: min(chunk, total)])
"""
RAW_READER = """
import fcntl, json, os, sys, time
try:
    fcntl.fcntl(0, 1031, 1 << 20)
except OSError:
    pass
buf = bytearray(int(sys.argv[1]))
stdin = open(0, "rb", buffering=0)
stdin.read(1)
t0 = time.perf_counter_ns()
got = 0
while n := stdin.readinto(buf):
    got += n
print(json.dumps({"bytes": got, "ns": time.perf_counter_ns() - t0}))
"""
# what the floor scripts share: a busy-wait before a read, as ours does (transports/pipe.py):
# poll, yield, poll again, for at most the given microseconds (0: block at once); and the timing
PING_SPIN = """
import os, select, time
def spinner(fd, seconds):
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    def spin():
        if not seconds or poller.poll(0):
            return
        deadline = time.perf_counter() + seconds
        while True:
            os.sched_yield()
            if poller.poll(0) or time.perf_counter() > deadline:
                return
    return spin
def timed(op, budget, least):  # warm up (a call, a tenth of the budget), time calls, print the times
    import json
    op()
    until = time.perf_counter() + budget / 10
    while time.perf_counter() < until:
        op()
    times, clock = [], time.perf_counter_ns
    stop_at = clock() + int(budget * 1e9)
    while len(times) < least or clock() < stop_at:
        t0 = clock()
        op()
        times.append(clock() - t0)
    print(json.dumps(times))
"""
PING_WORKER = (
    PING_SPIN
    + """
import os, sys
size, reply = int(sys.argv[1]), b"\\xab" * int(sys.argv[2])
spin = spinner(0, float(sys.argv[3]) / 1e6)
while True:
    got = 0
    spin()
    while got < size:
        chunk = os.read(0, size - got)
        if not chunk:
            sys.exit(0)
        got += len(chunk)
    os.write(1, reply)
"""
)
PING_CLIENT = (
    PING_SPIN
    + """
import json, os, subprocess, sys, time
size, reply, budget, least = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
worker = subprocess.Popen(json.loads(sys.argv[5]), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
out, inp, request = worker.stdin.fileno(), worker.stdout.fileno(), b"\\xcd" * size
spin = spinner(inp, float(sys.argv[6]) / 1e6)
def call():
    os.write(out, request)
    spin()
    got = 0
    while got < reply:
        got += len(os.read(inp, reply - got))
timed(call, budget, least)
worker.stdin.close()
worker.wait()
"""
)
MEMCPY = """
import json, sys, time
size, budget = int(sys.argv[1]), float(sys.argv[2])
src, dst = bytearray(b"\\xab" * size), bytearray(size)
dst[:] = src
times, stop_at = [], time.perf_counter() + budget
while len(times) < 3 or time.perf_counter() < stop_at:
    t0 = time.perf_counter_ns()
    dst[:] = src
    times.append(time.perf_counter_ns() - t0)
print(json.dumps(times))
"""


def raw_pipe_once(plan: Plan, placement: str) -> None:
    """The download's bytes through ``os.pipe``: a writer on the worker's CPU, a reader on the client's.

    Chunks are the download's batch size, pipe buffers 1 MiB (as ours raises them); the reader's
    clock starts at the writer's first byte. Runs in the subprocess rounds, so that it meets the
    same load as the download it is the floor of (standalone when those do not run).
    """
    key = ("raw_pipe", "floor", placement, "floor")
    if key not in plan.claimed:
        plan.claimed.append(key)
    client_cpu, other_cpu = plan.cpus
    chunk = plan.sizes["batch_rows"] * 16
    total = plan.sizes["download_batches"] * chunk
    r, w = os.pipe()
    wcpu = other_cpu if placement == "split" else client_cpu
    py = sys.executable
    writer = subprocess.Popen([py, "-c", RAW_WRITER, str(total), str(chunk)], stdout=w, preexec_fn=pinned(wcpu))
    reader = subprocess.Popen(
        [py, "-c", RAW_READER, str(chunk)], stdin=r, stdout=subprocess.PIPE, preexec_fn=pinned(client_cpu)
    )
    os.close(r)
    os.close(w)
    out, _ = reader.communicate(timeout=600)
    writer.wait(timeout=60)
    report = json.loads(out)
    plan.record(key, [report["ns"]], report["bytes"])


def _floor_times(
    plan: Plan, placement: str, key: tuple[str, str, str, str], client: list[str], worker: list[str]
) -> None:
    """Run a floor's client script pinned to the client CPU, its worker (``-c`` *worker*) on the
    placement's CPU; record the times the client prints under *key*.

    *client* is the client's ``-c`` script and arguments; the worker command is passed to it as
    JSON in place of the literal ``"WORKER"``.
    """
    if key not in plan.claimed:
        plan.claimed.append(key)
    client_cpu, other_cpu = plan.cpus
    command = [sys.executable, "-c", *worker]
    if placement == "split":
        command = ["taskset", "-c", str(other_cpu), *command]
    args = [json.dumps(command) if a == "WORKER" else a for a in client]
    out = subprocess.run(
        [sys.executable, "-c", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=pinned(client_cpu),
    ).stdout
    plan.record(key, json.loads(out))


def pipe_roundtrip_once(plan: Plan, placement: str) -> None:
    """The unary floor: a noop-sized request and reply through two pipes, one ``write`` and ``read`` each way.

    No Arrow and no framing: the system calls and the process wake-ups every call over a pipe pays.
    Run twice, blocking at once and busy-waiting 50 us before each read as ours does (the second
    spares the wake-up across CPUs, the first the yields on one CPU); the calls of both count.
    """
    key = ("pipe_roundtrip", "floor", placement, "floor")
    for spin_us in ("0", "50"):  # about noop's request (600 bytes) and reply (400)
        budget = str(plan.args.budget / 2)
        client = [PING_CLIENT, "600", "400", budget, str(plan.args.min_calls), "WORKER", spin_us]
        _floor_times(plan, placement, key, client, [PING_WORKER, "600", "400", spin_us])


SPAWN_CLIENT = (
    PING_SPIN
    + """
import json, subprocess, sys
budget, least, worker = float(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
def once():
    proc = subprocess.Popen(worker, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    proc.stdin.write(b"\\xcd" * 600)
    got = 0
    while got < 400:
        got += len(proc.stdout.read(400 - got))
    proc.stdin.close()
    proc.wait()
timed(once, budget, least)
"""
)
SPAWN_WORKER = "import pyarrow\n" + PING_WORKER  # what any Arrow worker imports, then one round trip


def arrow_spawn_once(plan: Plan, placement: str) -> None:
    """The spawn floor: start a Python that imports pyarrow, one noop-sized round trip, its exit.

    What ``spawn`` (start a worker, first call, close) cannot go below on this interpreter.
    """
    key = ("arrow_spawn", "floor", placement, "floor")
    client = [SPAWN_CLIENT, str(plan.args.budget), str(max(3, plan.args.min_calls // 100)), "WORKER"]
    _floor_times(plan, placement, key, client, [SPAWN_WORKER, "600", "400", "0"])


IPC_EXCHANGE = (
    PING_SPIN
    + """
import json, os, subprocess, sys, time
import pyarrow as pa
schema = pa.schema([("v", pa.int64())])
size = len(pa.record_batch([pa.array([1, 2, 3])], schema=schema).serialize())
spin_us = float(sys.argv[1])
def read_exact(fd, n):
    parts, got = [], 0
    while got < n:
        part = os.read(fd, n - got)
        if not part:
            return b""
        parts.append(part)
        got += len(part)
    return b"".join(parts)
if len(sys.argv) == 2:  # the worker: decode each message and send the batch back
    wait = spinner(0, spin_us / 1e6)
    while True:
        wait()
        data = read_exact(0, size)
        if not data:
            sys.exit(0)
        os.write(1, pa.ipc.read_record_batch(pa.py_buffer(data), schema).serialize())
rounds, budget, least, worker = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
proc = subprocess.Popen(worker, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
inp, out = proc.stdout.fileno(), proc.stdin.fileno()
wait = spinner(inp, spin_us / 1e6)
batch = pa.record_batch([pa.array([1, 2, 3])], schema=schema)
def exchange():
    for _ in range(rounds):  # one round: the batch out as an IPC message, read back and decoded
        os.write(out, batch.serialize())
        wait()
        pa.ipc.read_record_batch(pa.py_buffer(read_exact(inp, size)), schema)
timed(exchange, budget, least)
proc.stdin.close()
proc.wait()
"""
)


def ipc_exchange_once(plan: Plan, placement: str) -> None:
    """The exchange floor: 20 rounds of a three-row batch as hand-written Arrow IPC messages, echoed.

    Each side serializes and decodes one record batch per round over two pipes (no stream
    framing, no schema, no metadata, fixed-size reads); run blocking and busy-waiting as ours.
    """
    key = ("ipc_exchange", "floor", placement, "floor")
    for spin_us in ("0", "50"):
        least = str(max(3, plan.args.min_calls // 20))
        client = [IPC_EXCHANGE, spin_us, "20", str(plan.args.budget / 2), least, "WORKER"]
        _floor_times(plan, placement, key, client, [IPC_EXCHANGE, spin_us])


PIPE_FLOORS = {
    "raw_pipe": raw_pipe_once,
    "pipe_roundtrip": pipe_roundtrip_once,
    "ipc_exchange": ipc_exchange_once,
    "arrow_spawn": arrow_spawn_once,
}


def run_floors(plan: Plan) -> None:
    """The pipe floors where the subprocess rounds did not run them, and memcpy, on this interpreter."""
    client_cpu = plan.cpus[0]
    for floor, once in PIPE_FLOORS.items():
        for placement in plan.placements if floor in plan.workloads else []:
            if (floor, "floor", placement, "floor") not in plan.times:
                for _ in range(plan.args.rounds):
                    once(plan, placement)
    if "memcpy" in plan.workloads:
        plan.claimed.append(("memcpy", "floor", "one", "floor"))
        size = plan.sizes["memcpy"]
        for _ in range(plan.args.rounds):
            out = subprocess.run(
                [sys.executable, "-c", MEMCPY, str(size), str(plan.args.budget)],
                check=True,
                capture_output=True,
                text=True,
                preexec_fn=pinned(client_cpu),
            ).stdout
            plan.record(("memcpy", "floor", "one", "floor"), json.loads(out), size)


def run_load(plan: Plan, sides: dict[str, Side]) -> None:
    """benchmarks/http_load.py's load (gunicorn, 2 sync workers, unpinned) per side and for the echo floor."""
    args = SimpleNamespace(
        seconds=plan.args.load_seconds, processes=plan.args.load_processes, threads=plan.args.load_threads
    )
    names = list(sides)
    servers: dict[str, tuple[subprocess.Popen[bytes], str, Side]] = {}
    try:
        for name in names:
            side = sides[name]
            servers[name] = (*_gunicorn(side.python, side.where, "http_app:app"), side)
        floor = floor_side()
        servers["floor"] = (*_gunicorn(floor.python, floor.where, "echo_app:app"), floor)
        plan.claimed += [("load", "gunicorn", "unpinned", s) for s in servers]
        for r in range(plan.args.rounds):
            for name in alternate(list(servers), r):
                _, url, side = servers[name]
                kind = "floor-stdlib" if name == "floor" else "rpc"
                calls, _sample = _load(side.python, side.where, kind, url, args)
                # one "time" per round: the mean time per call across all clients, so that rate = 1e9 / time
                plan.record(("load", "gunicorn", "unpinned", name), [int(args.seconds * 1e9 / max(calls, 1))])
    finally:
        for proc, _, _ in servers.values():
            stop(proc)


def stats(plan: Plan, key: tuple[str, str, str, str]) -> tuple[str, float, float, float]:
    """(unit, min, median, p99) of a key: µs or ms per call, MB/s or calls/s at those times."""
    times = sorted(plan.times[key])
    lo, med, p99 = times[0], statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]
    workload = key[0]
    if workload in RATES:
        moved = plan.moved[key]
        return "MB/s", moved / lo * 1e3, moved / med * 1e3, moved / p99 * 1e3
    if workload == "load":
        return "calls/s", 1e9 / lo, 1e9 / med, 1e9 / p99
    if workload in ("spawn", "arrow_spawn", *IMPORTS):
        return "ms", lo / 1e6, med / 1e6, p99 / 1e6
    return "µs", lo / 1e3, med / 1e3, p99 / 1e3


def floor_of(plan: Plan, key: tuple[str, str, str, str]) -> tuple[str, str, str, str] | None:
    workload, transport, placement, _ = key
    if workload == "download" and transport in PIPE_TRANSPORTS:
        floor = ("raw_pipe", "floor", placement, "floor")
        return floor if floor in plan.times else None
    if workload == "load":
        floor = ("load", "gunicorn", "unpinned", "floor")
        return floor if floor in plan.times else None
    if workload in GROUPS["unary"] and transport in ("subprocess", "pool"):
        floor = ("pipe_roundtrip", "floor", placement, "floor")
        return floor if floor in plan.times else None
    if workload == "exchange20" and transport in ("subprocess", "pool"):
        floor = ("ipc_exchange", "floor", placement, "floor")
        return floor if floor in plan.times else None
    if workload == "spawn":
        floor = ("arrow_spawn", "floor", placement, "floor")
        return floor if floor in plan.times else None
    if workload in GROUPS["unary"] and transport == "gunicorn":
        floor = ("noop", "gunicorn", placement, "floor")
        return floor if floor in plan.times else None
    return None


def round_ratios(plan: Plan, key: tuple[str, str, str, str], ref_key: tuple[str, str, str, str]) -> list[float]:
    """ours/reference of each round's minimum (rates for MB/s and calls/s): the run's own spread."""
    ours, ref = plan.run_mins[key], plan.run_mins[ref_key]
    if len(ours) != len(ref):
        return []
    rate = key[0] in RATES or key[0] == "load"
    return [r / o if rate else o / r for o, r in zip(ours, ref, strict=True)]


def report(plan: Plan) -> list[dict[str, Any]]:
    rows = []
    for key in plan.claimed:
        if key not in plan.times:
            continue
        unit, lo, med, p99 = stats(plan, key)
        ref_key = (*key[:3], "reference")
        entry: dict[str, Any] = {
            "workload": key[0],
            "transport": key[1],
            "placement": key[2],
            "side": key[3],
            "unit": unit,
            "n": len(plan.times[key]),
            "min": lo,
            "median": med,
            "p99": p99,
            "bytes": plan.moved.get(key, 0),
            "ratio_min": None,
            "ratio_median": None,
            "of_floor": None,
            "ratio_rounds": [],
            "rss_mib": {who: [v / 1024 for v in pair] for who, pair in plan.rss.get(key, {}).items()},
        }
        if key[3].startswith("ours") and ref_key in plan.times:
            _, ref_lo, ref_med, _ = stats(plan, ref_key)
            entry["ratio_min"], entry["ratio_median"] = lo / ref_lo, med / ref_med
            entry["ratio_rounds"] = round_ratios(plan, key, ref_key)
        if (floor := floor_of(plan, key)) is not None and key[3] != "floor":
            entry["of_floor"] = lo / stats(plan, floor)[1]
        rows.append(entry)
    return rows


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"


# issue 17's targets: (label, workloads, transports, placement, what, comparison, bound); what is
# "ratio_min" (ours/reference on the minimum: time, or rate for MB/s and calls/s), "of_floor", "min"
TARGETS: list[tuple[str, list[str], list[str], str, str, str, float]] = [
    ("unary calls, subprocess", GROUPS["unary"], ["subprocess"], "one", "ratio_min", "<=", 0.4),
    ("unary calls, subprocess, split CPUs", GROUPS["unary"], ["subprocess"], "split", "ratio_min", "<=", 0.6),
    ("unary calls over HTTP (gunicorn)", GROUPS["unary"], ["gunicorn"], "one", "ratio_min", "<=", 0.5),
    ("calls/s, concurrent clients, gunicorn", ["load"], ["gunicorn"], "unpinned", "ratio_min", ">=", 2.5),
    ("the same, of the echo-only floor", ["load"], ["gunicorn"], "unpinned", "of_floor", ">=", 0.9),
    ("echo_bytes 1 MiB and 64 MiB, subprocess", ["echo_1m", "echo_64m"], ["subprocess"], "one", "ratio_min", "<=", 0.5),
    ("the same, split CPUs", ["echo_1m", "echo_64m"], ["subprocess"], "split", "ratio_min", "<=", 0.5),
    ("producer of 50 batches, subprocess", ["producer50"], ["subprocess"], "one", "ratio_min", "<=", 0.4),
    ("the same, split CPUs", ["producer50"], ["subprocess"], "split", "ratio_min", "<=", 0.5),
    ("exchange of 20 rounds, subprocess", ["exchange20"], ["subprocess"], "one", "ratio_min", "<=", 0.45),
    ("the same, split CPUs", ["exchange20"], ["subprocess"], "split", "ratio_min", "<=", 0.6),
    ("bulk download, split CPUs, subprocess", ["download"], ["subprocess"], "split", "ratio_min", ">=", 3.0),
    ("the same, of the raw pipe", ["download"], ["subprocess"], "split", "of_floor", ">=", 0.8),
    ("bulk download MB/s, split CPUs, pool-shm", ["download"], ["pool-shm"], "split", "min", ">=", 4000),
    ("bulk download over HTTP", ["download"], HTTP_TRANSPORTS, "one", "ratio_min", ">=", 3.5),
    ('python -c "import vgi_rpc", ms', ["import"], ["process"], "one", "min", "<=", 100),
    ("spawn a worker and make the first call", ["spawn"], ["subprocess"], "one", "ratio_min", "<=", 0.5),
]


def ours_rows(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Ours per (workload, transport, placement): on 3.13 where it ran, else on this interpreter."""
    picked = {(e["workload"], e["transport"], e["placement"]): e for e in rows if e["side"] == OURS}
    picked.update({(e["workload"], e["transport"], e["placement"]): e for e in rows if e["side"] == "ours-3.13"})
    return picked


def target_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 17's targets against this run, for ours on 3.13 where it ran (else this interpreter)."""
    found = []
    ours = ours_rows(rows)
    for label, workloads, transports, placement, what, op, bound in TARGETS:
        best_side = {k: e for k, e in ours.items() if k[0] in workloads and k[1] in transports and k[2] == placement}
        values = [(e[what], e) for e in best_side.values() if e[what] is not None]
        if not values:
            continue
        worst = max(values, key=lambda v: v[0]) if op == "<=" else min(values, key=lambda v: v[0])
        met = all(v <= bound if op == "<=" else v >= bound for v, _ in values)
        lo, hi = min(v for v, _ in values), max(v for v, _ in values)
        shown = fmt(lo) if lo == hi else f"{fmt(lo)} - {fmt(hi)}"
        where = f"{worst[1]['workload']} {worst[1]['transport']}, {worst[1]['side']}"
        found.append({"target": label, "value": shown, "bound": f"{op} {bound:g}", "met": met, "worst": where})
    return found


def print_matrix(rows: list[dict[str, Any]]) -> None:
    """ours/reference on the per-call minimum, a row per workload and a column per transport and placement."""
    ours = ours_rows(rows)
    columns = list(dict.fromkeys((t, p) for _, t, p in ours if t not in ("process", "floor")))
    workloads = list(dict.fromkeys(w for w, _, _ in ours))
    if not columns:
        return
    print("\nours/reference, per-call minimum (MB/s, calls/s: ours/reference rate), ours on 3.13 where it ran\n")
    print("| workload | " + " | ".join(f"{t} {p}" for t, p in columns) + " |")
    print("|---|" + "---|" * len(columns))
    for w in workloads:
        cells = [fmt(ours[(w, t, p)]["ratio_min"]) if (w, t, p) in ours else "" for t, p in columns]
        if any(cells):
            print(f"| {w} | " + " | ".join(cells) + " |")


def print_tables(rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    print(f"\n{meta['when']}, ours at {meta['commit']}; {meta['machine']}")
    print(f"rounds {meta['rounds']}, budget {meta['budget']} s of timed calls per workload and run")
    print(f"sides: {', '.join(f'{k} ({v})' for k, v in meta['versions'].items())}\n")
    head = ["workload", "transport", "placement", "side", "unit", "min", "median", "p99"]
    head += ["ours/ref min", "ours/ref median", "of floor", "per-round ours/ref min"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for e in rows:
        cells = [e["workload"], e["transport"], e["placement"], e["side"], e["unit"]]
        cells += [fmt(e[k]) for k in ("min", "median", "p99", "ratio_min", "ratio_median", "of_floor")]
        spread = e["ratio_rounds"]
        cells.append(f"{fmt(min(spread))}-{fmt(max(spread))}" if len(spread) > 1 else "-")
        print("| " + " | ".join(cells) + " |")
    print_matrix(rows)
    targets = target_rows(rows)
    if targets:
        print("\nIssue 17's targets (per-call minimums; ratio = ours/reference; ours on 3.13 where it ran)\n")
        print("| target | this run | target | met | worst |")
        print("|---|---|---|---|---|")
        for t in targets:
            met = "yes" if t["met"] else "no"
            print(f"| {t['target']} | {t['value']} | {t['bound']} | {met} | {t['worst']} |")
    bulk = ("echo_1m", "echo_64m", "download", "upload")
    rss = [e for e in rows if e["rss_mib"] and e["workload"] in bulk and e["placement"] == "one"]
    if rss:
        print("\nPeak RSS during bulk transfers (one CPU; split is alike), MiB: growth over the RSS before the")
        print("workload / peak, max over runs; the worker is the server's processes together over HTTP\n")
        print("| workload | transport | placement | side | client growth / peak | worker growth / peak |")
        print("|---|---|---|---|---|---|")
        for e in rss:
            cells = [e["workload"], e["transport"], e["placement"], e["side"]]
            for who in ("client", "worker"):
                pair = e["rss_mib"].get(who)
                cells.append(f"{pair[0]:.0f} / {pair[1]:.0f}" if pair else "-")
            print("| " + " | ".join(cells) + " |")


def versions(sides: dict[str, Side]) -> dict[str, str]:
    code = "import sys, importlib.metadata as m; print(sys.version.split()[0], m.version('pyarrow'))"
    found = {}
    with tempfile.TemporaryDirectory() as neutral:
        for name, side in sides.items():
            out = subprocess.run([*side.python, "-c", code], capture_output=True, text=True, cwd=neutral, env=side.env)
            py, pa = out.stdout.split()
            found[name] = f"Python {py}, pyarrow {pa}"
    return found


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    changed = git("status", "--porcelain", "--", "vgi_rpc", "benchmarks")  # what the numbers depend on
    return git("rev-parse", "--short", "HEAD") + (" (modified)" if changed else "")


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str], list[str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round: a smoke run in seconds")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--only", default="", help="workloads or groups (and/or transports), comma-separated")
    parser.add_argument("--transports", default="", help="transports or groups (pipe, http), comma-separated")
    parser.add_argument("--placements", default="one,split")
    parser.add_argument("--sides", default=f"reference,ours-3.13,{OURS}")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--budget", type=float, help="seconds of timed calls per workload and run")
    parser.add_argument("--min-calls", type=int)
    parser.add_argument("--download-mib", type=int, default=1024)
    parser.add_argument("--upload-mib", type=int, default=256)
    parser.add_argument("--http-bulk-mib", type=int, default=256, help="download and upload over HTTP at most")
    parser.add_argument("--load-seconds", type=float)
    parser.add_argument("--load-processes", type=int, default=2)
    parser.add_argument("--load-threads", type=int, default=4)
    args = parser.parse_args(argv)
    quick = args.quick
    for name, full, small in (("rounds", 3, 1), ("budget", 0.3, 0.02), ("min_calls", 5, 2), ("load_seconds", 3, 0.5)):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    if quick:
        args.load_processes, args.load_threads = 1, 2
    return (args, *select(parser, args))


def select(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The workloads and transports that ``--only`` and ``--transports`` name (all by default)."""
    tokens = [t for t in args.only.split(",") if t]
    tokens_t = [t for t in args.transports.split(",") if t]
    workloads: list[str] = []
    transports: list[str] = []
    for token in tokens:
        if token in GROUPS or token in WORKLOADS:
            workloads += GROUPS.get(token, [token])
        elif token in TRANSPORT_GROUPS or token in TRANSPORTS:
            tokens_t.append(token)
        else:
            parser.error(f"unknown workload or transport {token!r}")
    for token in tokens_t:
        if token not in TRANSPORT_GROUPS and token not in TRANSPORTS:
            parser.error(f"unknown transport {token!r}")
        transports += TRANSPORT_GROUPS.get(token, [token])
    if not workloads:
        workloads = list(WORKLOADS) if not tokens_t else WORKLOADS[: WORKLOADS.index("spawn") + 1]
    if not transports:
        transports = list(TRANSPORTS)
    return workloads, transports


def main(argv: list[str] | None = None) -> None:
    args, workloads, transports = parse(argv)
    cpus = sorted(os.sched_getaffinity(0))
    placements = [p for p in args.placements.split(",") if p]
    if len(cpus) < 2 and "split" in placements:
        print("one CPU only: no split placement", file=sys.stderr)
        placements.remove("split")
    cpu_pair = (cpus[0], cpus[1] if len(cpus) > 1 else cpus[0])
    batch_rows = 4096 if args.quick else 262_144  # 64 KiB or 4 MiB per batch
    batch_bytes = batch_rows * 16
    sizes = {
        "echo_1k": 1024,
        "echo_1m": 16 * 1024 if args.quick else MIB,
        "echo_64m": 64 * 1024 if args.quick else 64 * MIB,
        "batch_rows": batch_rows,
        "download_batches": 4 if args.quick else max(1, args.download_mib * MIB // batch_bytes),
        "upload_batches": 4 if args.quick else max(1, args.upload_mib * MIB // batch_bytes),
        "http_batches": 4 if args.quick else max(1, args.http_bulk_mib * MIB // batch_bytes),
        "memcpy": MIB if args.quick else 64 * MIB,
    }
    plan = Plan(workloads, transports, placements, [s for s in args.sides.split(",") if s], sizes, args, cpu_pair)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="vgi-suite-") as tmp:
        sides = make_sides(Path(tmp), plan.sides)
        meta = {
            "commit": commit(),
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
            "versions": versions(sides),
            "rounds": args.rounds,
            "budget": args.budget,
            "quick": args.quick,
            "sizes": sizes,
            "cpus": cpu_pair,
        }
        run_transports(plan, sides)
        if any(w in workloads for w in IMPORTS):
            run_import(plan, sides, workloads)
        if "load" in workloads:
            run_load(plan, sides)
        run_floors(plan)
    meta["seconds"] = round(time.time() - started, 1)
    rows = report(plan)
    print_tables(rows, meta)
    if args.json:
        claimed = [dict(zip(("workload", "transport", "placement", "side"), k, strict=True)) for k in plan.claimed]
        args.json.write_text(json.dumps({"meta": meta, "claimed": claimed, "results": rows}, indent=1))


if __name__ == "__main__":
    main()
