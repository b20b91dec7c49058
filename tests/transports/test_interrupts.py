"""A real SIGINT in the middle of a call or a stream turn leaves the connection broken, never out of step.

Before, the call after an interrupted one returned the interrupted call's reply.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.transports.factories import BYTE_STREAM_KINDS, open_service
from vgi_rpc import RpcError, TransportError


@pytest.fixture(params=BYTE_STREAM_KINDS)
def proxy(request: pytest.FixtureRequest) -> Iterator[Any]:
    with open_service(request.param, "streams") as p:
        yield p


def _interrupt_soon(delay: float = 0.3) -> threading.Timer:
    timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def _broken(proxy: Any) -> None:
    """The next call raises TransportError (an RpcError with error_type 'TransportError'), not a stale reply."""
    with pytest.raises(TransportError, match="broken") as info:
        proxy.ping()
    assert isinstance(info.value, RpcError) and info.value.error_type == "TransportError"
    with pytest.raises(TransportError):
        proxy.cancelled_count()


def test_sigint_during_a_unary_call(proxy: Any) -> None:
    assert proxy.ping() == "pong"
    timer = _interrupt_soon()
    with pytest.raises(KeyboardInterrupt):
        proxy.sleep(seconds=1.5)
    timer.join()
    _broken(proxy)


def test_sigint_during_a_stream_turn(proxy: Any) -> None:
    session = proxy.slow_count(n=5, delay=1.5)
    timer = _interrupt_soon()
    with pytest.raises(KeyboardInterrupt):
        session.tick()
    timer.join()
    _broken(proxy)
