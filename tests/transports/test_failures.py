"""Failures of the peer, as code written for 0.52.2 catches them, and clients that vanish."""

from __future__ import annotations

import sys

import pytest

from tests.services import StreamService, StreamServiceImpl
from tests.transports.factories import WORKER
from tests.transports.turn_driver import TurnDriver
from vgi_rpc import RpcConnection, RpcError, RpcServer, TransportError, connect


def test_a_dead_worker_is_caught_both_ways_and_the_connection_stays_broken() -> None:
    with connect(StreamService, [sys.executable, WORKER, "--streams"]) as proxy:
        # 0.52.2 spelling: except RpcError, then look at error_type
        with pytest.raises(RpcError) as info:
            proxy.crash(code=3)
        assert info.value.error_type == "TransportError"
        assert info.value.error_code == "" and info.value.remote_traceback == ""
        # our spelling: the class says whose fault it is
        assert isinstance(info.value, TransportError)
        with pytest.raises(TransportError, match="broken"):
            proxy.ping()
        with pytest.raises(TransportError):
            list(proxy.count(n=2))


def test_turn_per_request_client_vanishing_mid_stream_leaves_nothing_behind() -> None:
    impl = StreamServiceImpl()
    driver = TurnDriver(lambda: RpcServer(StreamService, impl).dispatcher)
    abandoned = RpcConnection(StreamService, driver).proxy.count(n=-1)
    assert abandoned.tick() is not None and abandoned.tick() is not None
    del abandoned  # never closed: the server holds no state for it
    with RpcConnection(StreamService, TurnDriver(lambda: RpcServer(StreamService, impl).dispatcher)) as proxy:
        assert [b.batch.column(0)[0].as_py() for b in proxy.count(n=2)] == [0, 1]
        assert proxy.ping() == "pong"
