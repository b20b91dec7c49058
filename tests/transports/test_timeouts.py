"""timeout= on connect, serve_pipe and RpcConnection: a call or stream turn that overruns raises RpcTimeoutError.

RpcTimeoutError is our TransportError (0.52.2 code: RpcError with error_type "TransportError") and
the builtin TimeoutError; the connection is then broken, never out of step. No per-method keyword:
a Protocol may have its own ``timeout`` parameter.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

import pytest

from tests.services import StreamService, StreamServiceImpl
from tests.transports.factories import WORKER
from vgi_rpc import RpcConnection, RpcError, RpcTimeoutError, SubprocessTransport, TransportError, connect, serve_pipe


def _over_connection(timeout: float) -> AbstractContextManager[Any]:
    return RpcConnection(StreamService, SubprocessTransport([sys.executable, WORKER, "--streams"]), timeout=timeout)


OPENERS: dict[str, Callable[[float], AbstractContextManager[Any]]] = {
    "serve_pipe": lambda t: serve_pipe(StreamService, StreamServiceImpl(), timeout=t),
    "connect": lambda t: connect(StreamService, [sys.executable, WORKER, "--streams"], timeout=t),
    "RpcConnection": _over_connection,
}


@pytest.fixture(params=list(OPENERS))
def opener(request: pytest.FixtureRequest) -> Iterator[Callable[[float], AbstractContextManager[Any]]]:
    yield OPENERS[request.param]


def _timed_out(fn: Callable[[], Any], limit: float) -> RpcTimeoutError:
    start = time.monotonic()
    with pytest.raises(RpcTimeoutError) as info:
        fn()
    assert time.monotonic() - start < limit + 2.0
    err = info.value
    assert isinstance(err, TimeoutError) and isinstance(err, TransportError) and isinstance(err, RpcError)
    assert err.error_type == "TransportError"
    assert "timeout of" in str(err)
    return err


def test_a_unary_call_that_overruns(opener: Callable[[float], AbstractContextManager[Any]]) -> None:
    with opener(0.5) as proxy:
        for _ in range(50):  # calls within the deadline do not trip it
            assert proxy.ping() == "pong"
        _timed_out(lambda: proxy.sleep(seconds=5), 0.5)
        with pytest.raises(TransportError, match="timeout"):
            proxy.ping()


def test_a_stream_turn_that_overruns(opener: Callable[[float], AbstractContextManager[Any]]) -> None:
    with opener(0.5) as proxy:
        assert [b.batch.column(0)[0].as_py() for b in proxy.slow_count(n=3, delay=0.05)] == [0, 1, 2]
        session = proxy.slow_count(n=3, delay=5)
        _timed_out(session.tick, 0.5)
        with pytest.raises(TransportError):
            proxy.ping()


class Waiter(Protocol):
    def wait(self, timeout: float) -> float: ...


class WaiterImpl:
    def wait(self, timeout: float) -> float:
        return timeout


def test_no_timeout_by_default_and_a_protocol_may_have_a_timeout_parameter() -> None:
    with serve_pipe(StreamService, StreamServiceImpl()) as proxy:
        proxy.sleep(seconds=0.3)
        assert proxy.ping() == "pong"
    with serve_pipe(Waiter, WaiterImpl(), timeout=5.0) as waiter:
        assert waiter.wait(timeout=0.25) == 0.25
