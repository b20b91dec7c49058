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

from .._core.framing import decode_messages, split_streams
from .._core.invoke import Request, request_bytes
from .._core.ipc import IpcValidation, Items, encode_stream
from ..aclient import AsyncRpcConnection
from ..client import ProtocolClass, Stop
from ..errors import ProtocolError, RpcTimeoutError, TransportError
from ..log import Message
from . import wire
from .client import COMPRESS_MIN_BYTES, _body_message, _normal_prefix, _routing
from .coding import BodyTooLarge, compress, decompress

__all__ = ["AsyncHttpDriver", "ahttp_connect"]

P = TypeVar("P")
Messages = list[tuple[bytes | bytearray | memoryview, bool]]
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


def _is_arrow(headers: Mapping[str, str]) -> bool:
    return str(headers.get(wire.CONTENT_TYPE, "")).split(";")[0].strip() == wire.ARROW


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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.prefix = _normal_prefix(prefix)
        self.max_response_bytes = max_response_bytes
        self.compress_min_bytes = compress_min_bytes
        self.encodings: tuple[str, ...] | None = None
        self.max_request_bytes: int | None = None
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

    def url(self, protocol: str | None, method: str, suffix: str = "") -> str:
        """The URL of a call (reserved names without a protocol stay flat under the prefix)."""
        if protocol is None:
            return f"{self.base_url}{self.prefix}/{method}" + (f"/{suffix}" if suffix else "")
        return self.base_url + wire.route(self.prefix, protocol, method, suffix)

    async def _send(self, verb: str, url: str, what: str, headers: dict[str, str], content: bytes = b"") -> Response:
        headers[wire.ACCEPT_MAX_RESPONSE_BYTES] = str(self.max_response_bytes)
        try:
            return await self._transport().send(verb, url, headers, content, self.max_response_bytes)
        except _TooLarge:
            raise self._too_large(what, url) from None
        except TransportError as exc:
            raise type(exc)(f"{what}: {exc.error_message}") from exc

    def _too_large(self, what: str, url: str) -> ProtocolError:
        return ProtocolError(
            f"{what}: the response from {url} exceeds the client's cap of {self.max_response_bytes} bytes"
        )

    async def probe(self) -> None:
        """``OPTIONS {prefix}/health``: the response codings and request cap the server advertises."""
        url = f"{self.base_url}{self.prefix}/{wire.HEALTH}"
        status, headers, _ = await self._send("OPTIONS", url, "capability probe", {})
        if status == 404:
            raise TransportError(
                f"no vgi-rpc server at {url} (HTTP 404): check base_url and prefix={self.prefix or '/'!r} "
                "(vgi-rpc 0.52.2 servers serve at the root by default: prefix='')"
            )
        advertised = headers.get(wire.CAP_ENCODINGS) if status < 400 else None
        self.encodings = (
            ("zstd",) if advertised is None else tuple(c.strip() for c in advertised.split(",") if c.strip())
        )
        cap = headers.get(wire.CAP_MAX_REQUEST, "")
        self.max_request_bytes = int(cap) if cap.isdigit() else None

    async def _encode(self, body: bytes) -> tuple[bytes, dict[str, str]]:
        if self.encodings is None:
            if self._probing is None:
                self._probing = asyncio.Lock()
            async with self._probing:  # one probe, however many calls start at once
                if self.encodings is None:
                    await self.probe()
        headers = {wire.CONTENT_TYPE: wire.ARROW, wire.ACCEPT_ENCODING: "zstd, gzip"}
        if len(body) < self.compress_min_bytes or not self.encodings:
            return body, headers
        for coding in wire.ENCODINGS:
            if coding in (self.encodings or ()):
                headers[wire.CONTENT_ENCODING] = coding
                return compress(coding, body), headers
        return body, headers

    def _decode(self, headers: Mapping[str, str], raw: bytes, what: str, url: str) -> bytes:
        coding = (headers.get(wire.VGI_CONTENT_ENCODING) or headers.get(wire.CONTENT_ENCODING, "")).strip().lower()
        if coding in ("", "identity"):
            return raw
        if coding not in wire.ENCODINGS:
            raise ProtocolError(f"{what}: the response has an unsupported Content-Encoding {coding!r}")
        try:
            return decompress(coding, raw, self.max_response_bytes)
        except BodyTooLarge:
            raise self._too_large(what, url) from None
        except ValueError as exc:
            raise ProtocolError(f"{what}: {exc}") from exc

    async def post(self, url: str, body: bytes, what: str) -> list[Messages]:
        """POST one Arrow request body; the response body's IPC streams (error bodies too, when Arrow)."""
        content, headers = await self._encode(body)
        status, got, raw = await self._send("POST", url, what, headers, content)
        if status == 415 and not _is_arrow(got) and wire.CONTENT_ENCODING in headers:
            self.encodings = None  # the server's codings changed (WIRE 8.4): ask again, retry once
            content, headers = await self._encode(body)
            status, got, raw = await self._send("POST", url, what, headers, content)
        data = self._decode(got, raw, what, url)
        if _is_arrow(got):
            streams = split_streams(data)
            if not streams:
                raise ProtocolError(f"{what}: HTTP {status} from {url} with an empty Arrow body")
            return streams
        detail = _body_message(data)
        if status == 413 and self.max_request_bytes is not None:
            detail += f" (the server takes at most {self.max_request_bytes} bytes per request)"
        elif status == 404:
            detail += f" (is prefix={self.prefix or '/'!r} right? vgi-rpc 0.52.2 servers serve at the root by default)"
        if status < 400:
            raise ProtocolError(f"{what}: HTTP {status} from {url} without an Arrow body: {detail}")
        raise TransportError(f"{what}: HTTP {status} from {url}: {detail}")

    # -- AsyncDriver ----------------------------------------------------------------------------

    async def unary(self, request: Request, what: str) -> Messages:
        """POST ``{prefix}/{protocol}/{method}``; the reply stream."""
        body = request_bytes(request)  # one body (big arguments came as chunks)
        return (await self.post(self.url(*_routing(body)), body, what))[0]

    async def open_stream(self, request: Request, has_header: bool, what: str) -> AsyncHttpStream:
        """POST ``.../init``; the channel for the call's turns."""
        body = request_bytes(request)
        protocol, method = _routing(body)
        streams = await self.post(self.url(protocol, method, wire.INIT), body, what)
        return AsyncHttpStream(self, self.url(protocol, method, wire.EXCHANGE), streams, has_header, what)

    def abort(self) -> None:
        """Nothing to break: every request stands alone."""

    async def aclose(self) -> None:
        """Close the aiohttp session if the driver made it (a caller's client stays open)."""
        if self._http is not None:
            await self._http.aclose()


class AsyncHttpStream:
    """One stream call: the ``/init`` response split into header and init items; a POST per turn."""

    def __init__(self, driver: AsyncHttpDriver, url: str, streams: list[Messages], has_header: bool, what: str) -> None:
        self.driver = driver
        self.url = url
        self.what = what
        decoded = [decode_messages(s)[1] for s in streams]
        self.header_items: Items = decoded.pop(0) if has_header and decoded else []
        self._init: Items = [item for items in decoded for item in items]

    def init_items(self) -> Items:
        """The init logs, state tokens and (producers) the first tick's output."""
        return self._init

    async def turn(self, batch: pa.RecordBatch, metadata: dict[bytes, bytes] | None, stop: Stop) -> tuple[Items, bool]:
        """POST one input (tokens already in *metadata*) to ``.../exchange``; its output items."""
        body = encode_stream(batch.schema, ((batch, metadata),)).to_pybytes()
        streams = await self.driver.post(self.url, body, self.what)
        return [item for s in streams for item in decode_messages(s)[1]], True

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
) -> contextlib.AbstractAsyncContextManager[Any]:
    """Yield an async proxy calling the server at *base_url* + *prefix* over HTTP.

    Any number of calls may be in flight at once. *client*: an ``httpx.AsyncClient`` or an
    ``aiohttp.ClientSession`` (auth, headers, proxies), used as given and left open; without
    one an aiohttp session is made and closed at the end. *timeout* (seconds, per request)
    raises ``RpcTimeoutError`` for that call. *twin*: an async twin of *protocol* (see
    :func:`vgi_rpc.aio.aconnect`), used to type the proxy.
    """
    return _ahttp_connect(protocol, base_url, twin, prefix, on_log, ipc_validation, client, timeout)


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
) -> AsyncIterator[Any]:
    driver = AsyncHttpDriver(base_url, prefix=prefix, client=client)
    connection: AsyncRpcConnection[Any] = AsyncRpcConnection(
        protocol, driver, on_log, ipc_validation=ipc_validation, timeout=timeout, twin=twin
    )
    try:
        yield connection.proxy
    finally:
        await connection.aclose()
