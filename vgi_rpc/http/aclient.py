"""The async HTTP client: ``AsyncHttpDriver`` (one POST per call or stream turn) and ``ahttp_connect``.

The same requests, headers and body codings as the sync ``HttpDriver`` (WIRE.md section 8), with
``await``: over aiohttp by default (``benchmarks/async_load.py``: httpx.AsyncClient is several
times slower under concurrency), or over the ``httpx.AsyncClient`` or ``aiohttp.ClientSession``
the caller passes (auth, headers, proxies). Any number of calls may be in flight at once: each
is its own request, and a failed, timed-out or cancelled request fails that call only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar, overload

import pyarrow as pa

from .._core.invoke import Request, request_bytes
from .._core.ipc import IpcValidation, Items
from ..aclient import AsyncRpcConnection
from ..client import ProtocolClass, Stop
from ..errors import RpcTimeoutError, TransportError
from ..log import Message
from . import wire
from .client_rules import COMPRESS_MIN_BYTES, ClientRules, Messages, TurnChannel, routing

__all__ = ["AsyncHttpDriver", "ahttp_connect"]

P = TypeVar("P")
_KEEPALIVE = 4.0  # seconds an idle connection is kept
_CONNECT_TIMEOUT = 30.0  # seconds (calls themselves may take as long as they take)
Response = tuple[int, Mapping[str, str], bytes]  # status, headers (case-insensitive lookup), raw body


class _TooLarge(Exception):
    pass


class _Aiohttp:
    """Requests over an ``aiohttp.ClientSession`` (bodies kept encoded: the driver decodes them)."""

    def __init__(self, session: Any, owned: bool) -> None:
        self.session = session
        self.owned = owned

    async def send(self, verb: str, url: str, headers: dict[str, str], content: bytes, cap: int) -> Response:
        import aiohttp

        try:
            async with self.session.request(
                verb, url, data=content or None, headers=headers, auto_decompress=False
            ) as response:
                chunks, size = [], 0
                async for chunk in response.content.iter_any():
                    size += len(chunk)
                    if size > cap:
                        raise _TooLarge
                    chunks.append(chunk)
                return response.status, response.headers, b"".join(chunks)
        except aiohttp.ClientError as exc:
            raise TransportError(f"{verb} {url} failed: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self.owned:
            await self.session.close()


class _Httpx:
    """Requests over an ``httpx.AsyncClient`` (a caller's: auth, headers, proxies)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def send(self, verb: str, url: str, headers: dict[str, str], content: bytes, cap: int) -> Response:
        import httpx

        try:
            async with self.client.stream(verb, url, headers=headers, content=content or None) as response:
                chunks, size = [], 0
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    if size > cap:
                        raise _TooLarge
                    chunks.append(chunk)
                return response.status_code, response.headers, b"".join(chunks)
        except httpx.TimeoutException as exc:
            raise RpcTimeoutError(f"{verb} {url} timed out ({type(exc).__name__}: {exc})") from exc
        except httpx.HTTPError as exc:
            raise TransportError(f"{verb} {url} failed: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        pass  # the caller's client stays open


class AsyncHttpDriver:
    """Implements ``aclient.AsyncDriver`` over HTTP: one POST per unary call, stream start or turn."""

    serial = False
    turn_per_request = True

    def __init__(
        self,
        base_url: str,
        *,
        prefix: str = wire.DEFAULT_PREFIX,
        client: Any | None = None,
        max_response_bytes: int = wire.CLIENT_MAX_RESPONSE_BYTES,
        compress_min_bytes: int = COMPRESS_MIN_BYTES,
        max_connections: int = 100,
        compression: bool | None = None,
    ) -> None:
        self.rules = ClientRules(base_url, prefix, max_response_bytes, compress_min_bytes, compression)
        self._probing: asyncio.Lock | None = None
        self._max_connections = max_connections
        self._http: _Aiohttp | _Httpx | None = None
        if client is not None:
            self._http = _Httpx(client) if type(client).__module__.startswith("httpx") else _Aiohttp(client, False)

    def _transport(self) -> _Aiohttp | _Httpx:
        if self._http is None:  # made on first use: an aiohttp session belongs to the running loop
            import aiohttp

            # idle connections are dropped before common servers drop them (uvicorn: 5 s), so that a
            # request is not sent on a connection the server is closing
            connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=_KEEPALIVE)
            # calls may take as long as they take (``timeout=`` bounds them); connecting may not
            timeout = aiohttp.ClientTimeout(total=None, connect=_CONNECT_TIMEOUT)
            self._http = _Aiohttp(aiohttp.ClientSession(connector=connector, timeout=timeout), True)
        return self._http

    async def _send(self, verb: str, url: str, what: str, headers: dict[str, str], content: bytes = b"") -> Response:
        try:
            return await self._transport().send(
                verb, url, self.rules.headers(headers), content, self.rules.max_response_bytes
            )
        except _TooLarge:
            raise self.rules.too_large(what, url) from None
        except TransportError as exc:
            raise type(exc)(f"{what}: {exc.error_message}") from exc

    async def _probe(self) -> None:
        """``OPTIONS {prefix}/health`` once, however many calls start at once."""
        if self._probing is None:
            self._probing = asyncio.Lock()
        async with self._probing:
            if self.rules.encodings is None:
                status, headers, _ = await self._send("OPTIONS", self.rules.health_url, "capability probe", {})
                self.rules.learn(status, headers)

    async def post(self, url: str, body: bytes, what: str) -> list[Messages]:
        """POST one Arrow request body; the response body's IPC streams (error bodies too, when Arrow)."""
        if self.rules.encodings is None:
            await self._probe()
        content, headers = self.rules.encode(body)
        status, got, raw = await self._send("POST", url, what, headers, content)
        if self.rules.recode(status, got, headers):
            await self._probe()
            content, headers = self.rules.encode(body)
            status, got, raw = await self._send("POST", url, what, headers, content)
        return self.rules.reply(status, got, raw, what, url)

    # -- AsyncDriver ----------------------------------------------------------------------------

    async def unary(self, request: Request, what: str, route: tuple[str, str] | None = None) -> Messages:
        """POST ``{prefix}/{protocol}/{method}``; the reply stream."""
        body = request_bytes(request)  # one body (big arguments came as chunks)
        return (await self.post(self.rules.url(*(route or routing(body))), body, what))[0]

    async def open_stream(self, request: Request, has_header: bool, what: str) -> AsyncHttpStream:
        """POST ``.../init``; the channel for the call's turns."""
        body = request_bytes(request)
        protocol, method = routing(body)
        streams = await self.post(self.rules.url(protocol, method, wire.INIT), body, what)
        return AsyncHttpStream(self, self.rules.url(protocol, method, wire.EXCHANGE), streams, has_header, what)

    def abort(self) -> None:
        """Nothing to break: every request stands alone."""

    async def aclose(self) -> None:
        """Close the aiohttp session if the driver made it (a caller's client stays open)."""
        if self._http is not None:
            await self._http.aclose()


class AsyncHttpStream(TurnChannel):
    """One stream call over ``AsyncHttpDriver``: a POST per turn."""

    def __init__(self, driver: AsyncHttpDriver, url: str, streams: list[Messages], has_header: bool, what: str) -> None:
        super().__init__(url, streams, has_header, what)
        self.driver = driver

    async def turn(self, batch: pa.RecordBatch, metadata: dict[bytes, bytes] | None, stop: Stop) -> tuple[Items, bool]:
        """POST one input (tokens already in *metadata*) to ``.../exchange``; its output items."""
        return self.turn_items(await self.driver.post(self.url, self.turn_body(batch, metadata), self.what)), True

    async def close(self, output_ended: bool) -> Items:
        """Closing an HTTP stream sends nothing."""
        return []


@overload
def ahttp_connect(
    protocol: ProtocolClass[Any],
    base_url: str,
    *,
    twin: ProtocolClass[P],
    prefix: str = ...,
    on_log: Callable[[Message], None] | None = ...,
    ipc_validation: IpcValidation = ...,
    client: Any | None = ...,
    timeout: float | None = ...,
    compression: bool | None = ...,
) -> contextlib.AbstractAsyncContextManager[P]: ...
@overload
def ahttp_connect(
    protocol: ProtocolClass[Any],
    base_url: str,
    *,
    twin: None = ...,
    prefix: str = ...,
    on_log: Callable[[Message], None] | None = ...,
    ipc_validation: IpcValidation = ...,
    client: Any | None = ...,
    timeout: float | None = ...,
    compression: bool | None = ...,
) -> contextlib.AbstractAsyncContextManager[Any]: ...
def ahttp_connect(
    protocol: ProtocolClass[Any],
    base_url: str,
    *,
    twin: ProtocolClass[Any] | None = None,
    prefix: str = wire.DEFAULT_PREFIX,
    on_log: Callable[[Message], None] | None = None,
    ipc_validation: IpcValidation = IpcValidation.FULL,
    client: Any | None = None,
    timeout: float | None = None,
    compression: bool | None = None,
) -> contextlib.AbstractAsyncContextManager[Any]:
    """Yield an async proxy calling the server at *base_url* + *prefix* over HTTP.

    Any number of calls may be in flight at once. *client*: an ``httpx.AsyncClient`` or an
    ``aiohttp.ClientSession`` (auth, headers, proxies), used as given and left open; without
    one an aiohttp session is made and closed at the end. *timeout* (seconds, per request)
    raises ``RpcTimeoutError`` for that call. *twin*: an async twin of *protocol* (see
    :func:`vgi_rpc.aio.aconnect`), used to type the proxy. *compression*: as for
    :func:`vgi_rpc.http.http_connect` (None: on, except to a loopback host).
    """
    return _ahttp_connect(protocol, base_url, twin, prefix, on_log, ipc_validation, client, timeout, compression)


@contextlib.asynccontextmanager
async def _ahttp_connect(
    protocol: ProtocolClass[Any],
    base_url: str,
    twin: ProtocolClass[Any] | None,
    prefix: str,
    on_log: Callable[[Message], None] | None,
    ipc_validation: IpcValidation,
    client: Any | None,
    timeout: float | None,
    compression: bool | None,
) -> AsyncIterator[Any]:
    driver = AsyncHttpDriver(base_url, prefix=prefix, client=client, compression=compression)
    connection: AsyncRpcConnection[Any] = AsyncRpcConnection(
        protocol, driver, on_log, ipc_validation=ipc_validation, timeout=timeout, twin=twin
    )
    try:
        yield connection.proxy
    finally:
        await connection.aclose()
