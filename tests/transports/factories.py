"""Transport factories for the contract suite: every transport serves the same services.

``KINDS`` are the transports a client can use (each new transport adds its factory here);
``BYTE_STREAM_KINDS`` are those with a raw byte stream a test can write arbitrary bytes to.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.http.servers import free_port, spawn_port_printer, stop, wait_healthy
from tests.services import Calculator, CalculatorImpl, Everything, EverythingImpl, StreamService, StreamServiceImpl
from tests.transports.turn_driver import TurnDriver
from vgi_rpc import (
    PipeTransport,
    RpcConnection,
    RpcServer,
    SubprocessTransport,
    WorkerPool,
    connect,
    make_pipe_pair,
    serve_pipe,
)
from vgi_rpc.http import http_connect
from vgi_rpc.log import Message
from vgi_rpc.shm import ShmPipeTransport, ShmSegment

ROOT = Path(__file__).resolve().parents[2]
WORKER = str(Path(__file__).parent.parent / "workers" / "everything_worker.py")

KINDS = ["pipe", "subprocess", "shm", "pool", "pool-shm", "turns", "waitress", "gunicorn", "uvicorn"]
HTTP_KINDS = ["waitress", "gunicorn", "uvicorn"]
BYTE_STREAM_KINDS = ["pipe", "subprocess"]

# name -> (Protocol, implementation class, worker arguments)
SERVICES: dict[str, tuple[type, Callable[[], Any], list[str]]] = {
    "everything": (Everything, EverythingImpl, []),
    "streams": (StreamService, StreamServiceImpl, ["--streams"]),
    "calc": (Calculator, CalculatorImpl, ["--calc"]),
}


@contextmanager
def open_service(kind: str, service: str, on_log: Callable[[Message], None] | None = None) -> Iterator[Any]:
    """A proxy for *service* over the *kind* transport."""
    protocol, impl_class, args = SERVICES[service]
    if kind == "pipe":
        with serve_pipe(protocol, impl_class(), on_log=on_log) as proxy:
            yield proxy
    elif kind == "subprocess":
        with connect(protocol, [sys.executable, WORKER, *args], on_log=on_log) as proxy:
            yield proxy
    elif kind == "shm":
        with (
            shm_pipe_to(RpcServer(protocol, impl_class()), threshold=1024) as transport,
            RpcConnection(protocol, transport, on_log=on_log) as proxy,
        ):
            yield proxy
    elif kind in ("pool", "pool-shm"):
        pool = POOL if kind == "pool" else POOL_SHM
        with pool.connect(protocol, [sys.executable, WORKER, *args], on_log=on_log) as proxy:
            yield proxy
    elif kind == "turns":
        impl = impl_class()
        driver = TurnDriver(lambda: RpcServer(protocol, impl).dispatcher)
        with RpcConnection(protocol, driver, on_log=on_log) as proxy:
            yield proxy
    elif kind in HTTP_KINDS:
        # to 127.0.0.1 bodies go plain by default; under gunicorn the suite asks for zstd both ways
        compression = True if kind == "gunicorn" else None
        with http_connect(protocol, http_server(kind, service), on_log=on_log, compression=compression) as proxy:
            yield proxy
    else:
        raise ValueError(kind)


POOL = WorkerPool(max_idle=4, idle_timeout=30.0)  # shared by the contract suite; closed at the session's end
POOL_SHM = WorkerPool(max_idle=4, idle_timeout=30.0, shm_size=4 << 20)
HTTP_APP = "tests.workers.http_app:app"
ASGI_APP = "tests.workers.asgi_app:app"
_HTTP_SERVERS: dict[tuple[str, str], tuple[subprocess.Popen[bytes], str]] = {}


def http_server(kind: str, service: str) -> str:
    """The base URL of *service* served over HTTP by *kind* (started on first use, stopped at the session's end).

    waitress: one process, 8 threads; gunicorn: two worker processes sharing one signing key and
    one cancel counter, so any of them continues any stream; uvicorn: the ASGI app, one process.
    """
    key = (kind, service)
    if key not in _HTTP_SERVERS:
        state = Path(tempfile.mkdtemp(prefix=f"vgi-{kind}-"))
        env = {
            **os.environ,
            "VGI_TEST_SERVICE": service,
            "VGI_TEST_SIGNING_KEY": f"shared-test-key-{service}-0123456789abcdef",
            "VGI_TEST_COUNTER_FILE": str(state / "counters"),
        }
        if kind == "waitress":
            proc, port = spawn_port_printer([sys.executable, str(ROOT / "tests" / "workers" / "http_app.py")], env=env)
        elif kind == "uvicorn":
            proc, port = uvicorn_server(env)
        else:
            port = free_port()
            bind = f"127.0.0.1:{port}"
            cmd = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", bind, "--chdir", str(ROOT), HTTP_APP]
            proc = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True, stderr=subprocess.DEVNULL)
            wait_healthy(f"http://{bind}/vgi/health")
        _HTTP_SERVERS[key] = (proc, f"http://127.0.0.1:{port}")
    return _HTTP_SERVERS[key][1]


def uvicorn_server(
    env: dict[str, str], app: str = ASGI_APP, prefix: str = "/vgi", stderr: Any = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Start uvicorn serving *app* on 127.0.0.1 (a free port) and wait until it answers; stop it with ``stop``."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    cmd += ["--log-level", "warning", "--app-dir", str(ROOT), app]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True, stderr=stderr)
    try:
        wait_healthy(f"http://127.0.0.1:{port}{prefix}/health", timeout=30, alive=proc.poll)
    except BaseException:
        stop(proc)
        raise
    return proc, port


def stop_http_servers() -> None:
    """Stop every server http_server started (by PID), and the pool's workers."""
    POOL.close()
    POOL_SHM.close()
    while _HTTP_SERVERS:
        proc, _ = _HTTP_SERVERS.popitem()[1]
        stop(proc)


@contextmanager
def pipe_to(server: RpcServer, wrap: Callable[[PipeTransport], Any] = lambda pipe: pipe) -> Iterator[PipeTransport]:
    """The client end of an in-process pipe that *server* serves on a thread (joined afterwards).

    *wrap* turns each end into the transport to use (a shared-memory transport, say).
    """
    pipe, server_pipe = make_pipe_pair()
    client, server_side = wrap(pipe), wrap(server_pipe)
    thread = threading.Thread(target=server.serve, args=(server_side,), daemon=True)
    thread.start()
    try:
        yield client
    finally:
        client.close()
        thread.join(timeout=5)
        server_side.close()
    assert not thread.is_alive()


@contextmanager
def shm_pipe_to(server: RpcServer, *, size: int = 4 << 20, threshold: int = 1024) -> Iterator[ShmPipeTransport]:
    """The client end of an in-process pipe with a shared-memory segment (batches >= *threshold* bytes cross it)."""
    segment = ShmSegment.create(size)
    try:
        with pipe_to(server, lambda pipe: ShmPipeTransport(pipe, segment, threshold=threshold)) as client:
            yield client  # type: ignore[misc]
    finally:
        segment.close()
        segment.unlink()


@contextmanager
def open_raw(kind: str) -> Iterator[PipeTransport]:
    """A raw client byte stream to a server of the Everything service (pipe thread or worker process)."""
    if kind == "pipe":
        with pipe_to(RpcServer(Everything, EverythingImpl())) as client:
            yield client
    elif kind == "subprocess":
        transport = SubprocessTransport([sys.executable, WORKER])
        yield transport
        transport.close()
        assert transport.process.returncode == 0
    else:
        raise ValueError(kind)
