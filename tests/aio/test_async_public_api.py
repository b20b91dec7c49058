"""The async public surface: ``vgi_rpc.aio`` and the HTTP names it shares with ``vgi_rpc.http``, pinned."""

from __future__ import annotations

import vgi_rpc.aio
import vgi_rpc.http


def test_aio_all_is_pinned() -> None:
    assert set(vgi_rpc.aio.__all__) == {
        "AsyncRpcConnection",
        "AsyncStreamSession",
        "aconnect",
        "ahttp_connect",
        "aserve_pipe",
        "make_asgi_app",
    }
    for name in vgi_rpc.aio.__all__:
        assert getattr(vgi_rpc.aio, name) is not None


def test_http_all_is_pinned_and_shares_the_async_names() -> None:
    assert set(vgi_rpc.http.__all__) == {
        "ahttp_connect",
        "http_connect",
        "http_introspect",
        "make_asgi_app",
        "make_wsgi_app",
    }
    assert vgi_rpc.http.make_asgi_app is vgi_rpc.aio.make_asgi_app
    assert vgi_rpc.http.ahttp_connect is vgi_rpc.aio.ahttp_connect
