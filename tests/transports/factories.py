"""Transport factories for the contract suite: every transport serves the same services.

``KINDS`` are the transports a client can use (each new transport adds its factory here);
``BYTE_STREAM_KINDS`` are those with a raw byte stream a test can write arbitrary bytes to.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.services import Calculator, CalculatorImpl, Everything, EverythingImpl, StreamService, StreamServiceImpl
from tests.transports.turn_driver import TurnDriver
from vgi_rpc import PipeTransport, RpcConnection, RpcServer, SubprocessTransport, connect, make_pipe_pair, serve_pipe
from vgi_rpc.log import Message

WORKER = str(Path(__file__).parent.parent / "workers" / "everything_worker.py")

KINDS = ["pipe", "subprocess", "turns"]
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
    elif kind == "turns":
        impl = impl_class()
        driver = TurnDriver(lambda: RpcServer(protocol, impl).dispatcher)
        with RpcConnection(protocol, driver, on_log=on_log) as proxy:
            yield proxy
    else:
        raise ValueError(kind)


@contextmanager
def pipe_to(server: RpcServer) -> Iterator[PipeTransport]:
    """The client end of an in-process pipe that *server* serves on a thread (joined afterwards)."""
    client, server_side = make_pipe_pair()
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
