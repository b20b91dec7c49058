"""Every way a worker can go away, as 0.52.2 code catches it: ``except RpcError`` with error_type "TransportError".

Over ``connect``, ``RpcConnection`` on a ``SubprocessTransport`` and ``serve_pipe``; afterwards the
connection refuses further calls with the same error. A worker that fails at start or writes
stray bytes to stdout says so, with its exit status and the tail of its stderr when piped.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.services import Faults, FaultsImpl
from vgi_rpc import (
    IPCError,
    RpcConnection,
    RpcError,
    StderrMode,
    SubprocessTransport,
    TransportError,
    connect,
    serve_pipe,
)

WORKER = str(Path(__file__).resolve().parents[1] / "workers" / "faulty_worker.py")


@contextmanager
def over_connection(mode: str = "serve") -> Iterator[Any]:
    transport = SubprocessTransport([sys.executable, WORKER, mode], stderr=StderrMode.PIPE)
    try:
        with RpcConnection(Faults, transport) as proxy:
            yield proxy
    finally:
        transport.close()


def over_connect(mode: str = "serve") -> AbstractContextManager[Any]:
    return connect(Faults, [sys.executable, WORKER, mode], stderr=StderrMode.PIPE)


OPENERS: dict[str, Callable[..., AbstractContextManager[Any]]] = {
    "connect": over_connect,
    "RpcConnection": over_connection,
}


def _transport_error(fn: Callable[[], Any]) -> RpcError:
    """Run *fn*; it must raise an RpcError with error_type TransportError (which is our TransportError)."""
    with pytest.raises(RpcError) as info:
        fn()
    assert info.value.error_type == "TransportError", repr(info.value)
    assert isinstance(info.value, TransportError)
    return info.value


def _then_refused(proxy: Any) -> None:
    err = _transport_error(proxy.ping)
    assert "broken" in str(err)


def _kill_soon(proxy: Any) -> None:
    pid = proxy._connection.transport.pid  # the worker behind this proxy
    threading.Timer(0.3, os.kill, (pid, signal.SIGKILL)).start()


@pytest.mark.parametrize("opener", list(OPENERS))
def test_worker_killed_during_a_call(opener: str) -> None:
    with OPENERS[opener]() as proxy:
        assert proxy.ping() == "pong"
        _kill_soon(proxy)
        err = _transport_error(lambda: proxy.sleep(seconds=10))
        assert "killed by signal 9" in str(err)
        _then_refused(proxy)


@pytest.mark.parametrize("opener", list(OPENERS))
def test_worker_exits_during_a_call(opener: str) -> None:
    with OPENERS[opener]() as proxy:
        err = _transport_error(lambda: proxy.exit_now(code=3))
        assert "exited with code 3" in str(err)
        _then_refused(proxy)


@pytest.mark.parametrize("opener", list(OPENERS))
def test_worker_closes_its_stdout(opener: str) -> None:
    with OPENERS[opener]() as proxy:
        _transport_error(proxy.close_stdout)
        _then_refused(proxy)


@pytest.mark.parametrize("opener", list(OPENERS))
def test_worker_crashes_at_start_with_its_exit_code_and_stderr(opener: str) -> None:
    with OPENERS[opener]("crash-at-start") as proxy:
        err = _transport_error(proxy.ping)
        text = str(err)
        assert "exited with code 3" in text
        assert "boom: the worker's config file is missing" in text
        _then_refused(proxy)


@pytest.mark.parametrize("opener", list(OPENERS))
def test_worker_printing_to_stdout_is_named(opener: str) -> None:
    with OPENERS[opener]("print-before") as proxy:
        with pytest.raises(RpcError) as info:
            proxy.ping()
        assert isinstance(info.value, IPCError)
        text = str(info.value)
        assert "b'hell'" in text or "b'hello" in text  # the first bytes the worker wrote
        assert "bytes that are not Arrow IPC to its stdout" in text
        _then_refused(proxy)


def test_serve_pipe_server_thread_dying() -> None:
    with serve_pipe(Faults, FaultsImpl()) as proxy:
        assert proxy.ping() == "pong"
        _transport_error(proxy.raise_system_exit)  # SystemExit ends the server thread: the pipe closes
        _then_refused(proxy)
