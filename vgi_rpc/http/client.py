"""The HTTP client: ``HttpDriver`` (one POST per call or stream turn, over an ``HttpSession``) and ``http_connect``.

The driver only moves bytes (WIRE.md section 8): it reads the routing names from the request's
batch metadata, POSTs ``{prefix}/{protocol}/{method}`` (``/init`` and ``/exchange`` for streams),
compresses and decompresses bodies, and splits each Arrow response body into its IPC streams.
Every batch it receives, on a 200 or in an Arrow 4xx/5xx body, goes to the client state machine
(``_core/invoke``), which delivers logs, keeps and echoes the state tokens and raises ``RpcError``.
Only bodies that are not Arrow (JSON errors of the HTTP layer) and failures of HTTP itself become
``TransportError`` (``RpcTimeoutError`` for timeouts) here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

import pyarrow as pa

from .._core.describe import ServiceDescription
from .._core.invoke import Request, request_bytes
from .._core.ipc import IpcValidation, Items
from ..client import ProtocolClass, RpcConnection, Stop
from ..errors import TransportError
from ..external.config import ExternalLocationConfig
from ..introspection import introspect
from ..log import Message
from . import wire
from .client_rules import COMPRESS_MIN_BYTES, ClientRules, Messages, TurnChannel, routing
from .coding import BodyTooLarge
from .session import HttpReply, HttpSession, HttpxSession, default_session

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpDriver", "http_connect", "http_introspect"]

P = TypeVar("P")


class HttpDriver:
    """Implements ``vgi_rpc.client.Driver`` over HTTP: one POST per unary call, stream start or turn."""

    turn_per_request = True

    def __init__(
        self,
        base_url: str,
        *,
        prefix: str = wire.DEFAULT_PREFIX,
        client: httpx.Client | None = None,
        timeout: float | None = None,
        max_response_bytes: int = wire.CLIENT_MAX_RESPONSE_BYTES,
        compress_min_bytes: int = COMPRESS_MIN_BYTES,
        compression: bool | None = None,
    ) -> None:
        self.rules = ClientRules(base_url, prefix, max_response_bytes, compress_min_bytes, compression)
        # a user's client is used as given (auth, headers, proxies) and left open
        self.session: HttpSession = (
            default_session(self.rules.base_url, timeout) if client is None else HttpxSession(client, timeout=timeout)
        )

    def _send(self, verb: str, url: str, what: str, body: bytes | None, headers: dict[str, str]) -> HttpReply:
        """One request; the raw (still encoded) body, read up to the client's cap."""
        try:
            return self.session.send(verb, url, body, self.rules.headers(headers), self.rules.max_response_bytes)
        except BodyTooLarge:
            raise self.rules.too_large(what, url) from None
        except TransportError as exc:
            raise type(exc)(f"{what}: {exc}") from exc.__cause__

    def probe(self) -> None:
        """``OPTIONS {prefix}/health``: the response codings and request cap the server advertises."""
        reply = self._send("OPTIONS", self.rules.health_url, "capability probe", None, {})
        self.rules.learn(reply.status, reply.headers)

    def post(self, url: str, body: bytes, what: str) -> list[Messages]:
        """POST one Arrow request body; the response body's IPC streams (error bodies too, when Arrow)."""
        if self.rules.encodings is None:
            self.probe()
        content, headers = self.rules.encode(body)
        reply = self._send("POST", url, what, content, headers)
        if self.rules.recode(reply.status, reply.headers, headers):
            self.probe()
            content, headers = self.rules.encode(body)
            reply = self._send("POST", url, what, content, headers)
        return self.rules.reply(reply.status, reply.headers, reply.body, what, url)

    # -- Driver -------------------------------------------------------------------------------

    def unary(self, request: Request, what: str, route: tuple[str, str] | None = None) -> Messages:
        """POST ``{prefix}/{protocol}/{method}``; the reply stream."""
        body = request_bytes(request)
        return self.post(self.rules.url(*(route or routing(body))), body, what)[0]

    def open_stream(self, request: Request, has_header: bool, what: str) -> HttpStream:
        """POST ``.../init``; the channel for the call's turns."""
        body = request_bytes(request)
        protocol, method = routing(body)
        streams = self.post(self.rules.url(protocol, method, wire.INIT), body, what)
        return HttpStream(self, self.rules.url(protocol, method, wire.EXCHANGE), streams, has_header, what)

    def close(self) -> None:
        """Close the session's connections (a user's httpx client stays open)."""
        self.session.close()


class HttpStream(TurnChannel):
    """One stream call over ``HttpDriver``: a POST per turn."""

    def __init__(self, driver: HttpDriver, url: str, streams: list[Messages], has_header: bool, what: str) -> None:
        super().__init__(url, streams, has_header, what)
        self.driver = driver

    def turn(self, batch: pa.RecordBatch, metadata: dict[bytes, bytes] | None, stop: Stop) -> tuple[Items, bool]:
        """POST one input (tokens already in *metadata*) to ``.../exchange``; its output items."""
        return self.turn_items(self.driver.post(self.url, self.turn_body(batch, metadata), self.what)), True

    def close(self, output_ended: bool) -> Items:
        """Closing an HTTP stream sends nothing."""
        return []


@contextlib.contextmanager
def http_connect(
    protocol: ProtocolClass[P],
    base_url: str,
    *,
    prefix: str = wire.DEFAULT_PREFIX,
    on_log: Callable[[Message], None] | None = None,
    external_location: ExternalLocationConfig | None = None,
    ipc_validation: IpcValidation = IpcValidation.FULL,
    client: httpx.Client | None = None,
    timeout: float | None = None,
    compression: bool | None = None,
) -> Iterator[P]:
    """Yield a typed proxy calling the server at *base_url* + *prefix* over HTTP.

    *client*: a ready ``httpx.Client`` (auth, extra headers, proxies, custom TLS), used as given
    and left open; without one, keep-alive connections of the standard library's ``http.client``
    are made and closed at the end (httpx when the environment sets a proxy for *base_url*).
    *timeout* (seconds, per request; None: wait forever): an overrun raises ``RpcTimeoutError``.
    *compression*: whether request bodies are zstd-compressed and compressed responses asked
    for; None (the default): yes, except to a loopback host, where it only costs CPU.
    """
    driver = HttpDriver(base_url, prefix=prefix, client=client, timeout=timeout, compression=compression)
    try:
        with RpcConnection(
            protocol, driver, on_log=on_log, external_location=external_location, ipc_validation=ipc_validation
        ) as proxy:
            yield proxy
    finally:
        driver.close()


def http_introspect(
    base_url: str,
    *,
    prefix: str = wire.DEFAULT_PREFIX,
    client: httpx.Client | None = None,
    protocol: str | None = None,
    ipc_validation: IpcValidation = IpcValidation.FULL,
) -> ServiceDescription:
    """Describe *protocol* (default: the first application protocol) of the HTTP server at *base_url*."""
    driver = HttpDriver(base_url, prefix=prefix, client=client)
    try:
        return introspect(driver, ipc_validation=ipc_validation, protocol=protocol)
    finally:
        driver.close()
