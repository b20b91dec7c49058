"""A call used the wrong way raises a typed error from our tree at the call that is wrong, with what to do."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.services import StreamService
from tests.transports.factories import KINDS, WORKER, open_service
from vgi_rpc import (
    AnnotatedBatch,
    ArgumentError,
    ProtocolError,
    RpcError,
    TransportError,
    VgiRpcError,
    connect,
)

RAISED: list[BaseException] = []  # every error these scenarios raise, for the tree walk below


def expect(cls: type[BaseException], fn: Any, *args: Any, match: str = "", **kwargs: Any) -> Any:
    with pytest.raises(cls, match=match) as info:
        fn(*args, **kwargs)
    RAISED.append(info.value)
    return info.value


@pytest.fixture(params=KINDS)
def proxy(request: pytest.FixtureRequest) -> Iterator[StreamService]:
    with open_service(request.param, "streams") as p:
        yield p


def _enter(cmd: Any) -> None:
    with connect(StreamService, cmd):
        pass


def test_connect_with_a_bad_command() -> None:
    err = expect(ArgumentError, _enter, [], match="non-empty list")
    assert err.error_type == "ValueError"
    err = expect(ArgumentError, _enter, f"{sys.executable} {WORKER}", match="must be a list")
    assert err.error_type == "TypeError" and "shlex.split" in str(err)
    err = expect(TransportError, _enter, ["/nonexistent/vgi-worker"], match="cannot start the worker")
    assert err.error_type == "TransportError"


def test_a_unary_call_while_a_stream_is_open(proxy: StreamService) -> None:
    with proxy.count(n=3) as session:
        session.tick()
        err = expect(ProtocolError, proxy.ping, match="the count\\(\\) stream is still open")
        assert err.error_type == "ProtocolError"
        assert session.tick() is not None  # the stream goes on
    assert proxy.ping() == "pong"


def test_exchange_on_a_producer(proxy: StreamService) -> None:
    batch = AnnotatedBatch.from_pydict({"v": [1]})
    with proxy.count(n=3) as session:  # first: the server answers, as 0.52.2's does
        err = expect(RpcError, session.exchange, batch, match="Input schema mismatch")
        assert err.error_type == "TypeError"
    assert proxy.ping() == "pong"
    with proxy.count(n=3) as session:  # after a tick: refused before sending, the stream goes on
        assert session.tick() is not None
        err = expect(ArgumentError, session.exchange, batch, match="Input schema mismatch")
        assert "a producer stream takes ticks" in str(err)
        assert session.tick() is not None
    assert proxy.ping() == "pong"


def test_every_error_raised_above_is_in_our_tree() -> None:
    assert len(RAISED) >= 3
    for err in RAISED:
        assert isinstance(err, VgiRpcError) and isinstance(err, RpcError), repr(err)
        assert err.error_type
