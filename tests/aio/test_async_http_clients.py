"""``ahttp_connect(client=...)``: a caller's httpx.AsyncClient or aiohttp.ClientSession, used and left open."""

from __future__ import annotations

import aiohttp
import httpx
import pytest

from tests.aio.factories import run
from tests.services import StreamService
from tests.transports.factories import http_server
from vgi_rpc import RpcTimeoutError, TransportError
from vgi_rpc.aio import ahttp_connect


def test_an_aiohttp_session_with_auth_headers() -> None:
    url = http_server("uvicorn", "streams")

    async def body() -> None:
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer alice"}) as session:
            async with ahttp_connect(StreamService, url, client=session) as proxy:
                assert await proxy.whoami() == "alice"
                assert await proxy.secret() == "for alice"
            assert not session.closed  # the caller's session stays open
            async with ahttp_connect(StreamService, url, client=session) as proxy:
                assert await proxy.whoami() == "alice"

    run(body)


def test_an_httpx_client_with_auth_headers_and_its_own_timeout() -> None:
    url = http_server("uvicorn", "streams")

    async def body() -> None:
        async with httpx.AsyncClient(headers={"Authorization": "Bearer bob"}, timeout=0.5) as client:
            async with ahttp_connect(StreamService, url, client=client) as proxy:
                assert await proxy.whoami() == "bob"
                with pytest.raises(RpcTimeoutError, match="timed out"):
                    await proxy.sleep(seconds=2.0)
                assert await proxy.ping() == "pong"
            assert not client.is_closed
        async with (
            httpx.AsyncClient(headers={"Authorization": "Bearer reject"}) as client,
            ahttp_connect(StreamService, url, client=client) as proxy,
        ):
            with pytest.raises(TransportError, match="401"):
                await proxy.ping()

    run(body)


def test_the_asgi_app_sends_a_content_length_not_chunks() -> None:
    url = http_server("uvicorn", "streams")
    reply = httpx.get(url + "/vgi/health", timeout=10)
    assert reply.status_code == 200
    assert reply.headers["content-length"] == str(len(reply.content))
    assert "transfer-encoding" not in reply.headers
