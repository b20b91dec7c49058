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
import html
import json
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

import pyarrow as pa

from .._core import keys
from .._core.describe import ServiceDescription
from .._core.framing import custom_metadata, decode_messages, message_layout, split_streams
from .._core.invoke import Request, request_bytes
from .._core.ipc import IpcValidation, Items, encode_stream
from ..client import ProtocolClass, RpcConnection, Stop
from ..errors import ProtocolError, TransportError
from ..external.config import ExternalLocationConfig
from ..introspect import introspect
from ..log import Message
from . import wire
from .coding import BodyTooLarge, compress, decompress
from .session import HttpReply, HttpSession, HttpxSession, default_session

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpDriver", "http_connect", "http_introspect"]

P = TypeVar("P")
Messages = list[tuple[bytes | bytearray | memoryview, bool]]

COMPRESS_MIN_BYTES = 1024  # smaller request bodies go uncompressed (IPC framing barely compresses)
_CONTINUATION = b"\xff\xff\xff\xff"


def _normal_prefix(prefix: str) -> str:
    stripped = prefix.strip("/")
    return f"/{stripped}" if stripped else ""


def _routing(request: bytes) -> tuple[str | None, str]:
    """The (protocol, method) a request stream names in its batch metadata (message bodies are skipped)."""
    view, offset = memoryview(request), 0
    while request[offset : offset + 4] == _CONTINUATION:
        length = int.from_bytes(request[offset + 4 : offset + 8], "little", signed=True)
        if length <= 0:  # the end-of-stream marker
            break
        end = offset + 8 + length
        body, has_metadata = message_layout(view[offset:end], 8)
        md = custom_metadata(request[offset:end]) if has_metadata else None
        if md and keys.METHOD in md:
            protocol = md.get(keys.PROTOCOL)
            return (protocol.decode() if protocol else None), md[keys.METHOD].decode()
        offset = end + body
    raise ProtocolError("the request stream names no method (no vgi_rpc.method in its batch metadata)")


def _header(reply: HttpReply, name: str, default: str = "") -> str:
    return reply.headers.get(name.lower(), default)


def _is_arrow(reply: HttpReply) -> bool:
    return _header(reply, wire.CONTENT_TYPE).split(";")[0].strip() == wire.ARROW


def _body_message(body: bytes) -> str:
    """The message of an HTTP-layer error body: JSON ``title``/``description`` (Falcon), an HTML heading, the text."""
    try:
        doc = json.loads(body)
    except ValueError:
        text = body[:20000].decode("utf-8", "replace")
        heading = re.search(r"<(h1|title)>(.*?)</\1>", text, re.S | re.I)
        return html.unescape(re.sub(r"<[^>]*>", "", heading.group(2))).strip() if heading else text[:500].strip()
    if isinstance(doc, dict):
        parts = [str(doc[k]) for k in ("title", "description", "message", "error", "reason", "detail") if k in doc]
        if parts:
            return ": ".join(parts)
    return json.dumps(doc)[:500]


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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.prefix = _normal_prefix(prefix)
        self.max_response_bytes = max_response_bytes
        self.compress_min_bytes = compress_min_bytes
        # a user's client is used as given (auth, headers, proxies) and left open
        self.session: HttpSession = (
            default_session(self.base_url, timeout) if client is None else HttpxSession(client, timeout=timeout)
        )
        self.encodings: tuple[str, ...] | None = None  # response codings the server advertises
        self.max_request_bytes: int | None = None

    def url(self, protocol: str | None, method: str, suffix: str = "") -> str:
        """The URL of a call (reserved names without a protocol stay flat under the prefix)."""
        if protocol is None:
            return f"{self.base_url}{self.prefix}/{method}" + (f"/{suffix}" if suffix else "")
        return self.base_url + wire.route(self.prefix, protocol, method, suffix)

    # -- HTTP ---------------------------------------------------------------------------------

    def _send(self, verb: str, url: str, what: str, body: bytes | None, headers: dict[str, str]) -> HttpReply:
        """One request; the raw (still encoded) body, read up to the client's cap."""
        headers[wire.ACCEPT_MAX_RESPONSE_BYTES] = str(self.max_response_bytes)
        try:
            return self.session.send(verb, url, body, headers, self.max_response_bytes)
        except BodyTooLarge:
            raise self._too_large(what, url) from None
        except TransportError as exc:
            raise type(exc)(f"{what}: {exc}") from exc.__cause__

    def _too_large(self, what: str, url: str) -> ProtocolError:
        return ProtocolError(
            f"{what}: the response from {url} exceeds the client's cap of {self.max_response_bytes} bytes"
        )

    def probe(self) -> None:
        """``OPTIONS {prefix}/health``: the response codings and request cap the server advertises."""
        url = f"{self.base_url}{self.prefix}/{wire.HEALTH}"
        response = self._send("OPTIONS", url, "capability probe", None, {})
        if response.status == 404:
            raise TransportError(
                f"no vgi-rpc server at {url} (HTTP 404): check base_url and prefix={self.prefix or '/'!r} "
                "(vgi-rpc 0.52.2 servers serve at the root by default: prefix='')"
            )
        advertised = response.headers.get(wire.CAP_ENCODINGS.lower()) if response.status < 400 else None
        # absent: a legacy server, which takes zstd; present but empty: no compression
        self.encodings = (
            ("zstd",) if advertised is None else tuple(c.strip() for c in advertised.split(",") if c.strip())
        )
        cap = _header(response, wire.CAP_MAX_REQUEST)
        self.max_request_bytes = int(cap) if cap.isdigit() else None

    def _decode(self, response: HttpReply, url: str, what: str) -> bytes:
        raw = response.body
        coding = _header(response, wire.VGI_CONTENT_ENCODING) or _header(response, wire.CONTENT_ENCODING)
        coding = coding.strip().lower()
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

    def _encode(self, body: bytes) -> tuple[bytes, dict[str, str]]:
        """The request body as sent (compressed with the server's first coding we have) and its headers."""
        if self.encodings is None:
            self.probe()
        headers = {wire.CONTENT_TYPE: wire.ARROW, wire.ACCEPT_ENCODING: "zstd, gzip"}
        if len(body) < self.compress_min_bytes or not self.encodings:
            return body, headers
        for coding in wire.ENCODINGS:  # ours in preference order, as far as the server takes them
            if coding in self.encodings:
                headers[wire.CONTENT_ENCODING] = coding
                return compress(coding, body), headers
        return body, headers

    def post(self, url: str, body: bytes, what: str) -> list[Messages]:
        """POST one Arrow request body; the response body's IPC streams (error bodies too, when Arrow)."""
        content, headers = self._encode(body)
        response = self._send("POST", url, what, content, headers)
        if response.status == 415 and not _is_arrow(response) and wire.CONTENT_ENCODING in headers:
            self.encodings = None  # the server's codings changed (WIRE 8.4): ask again, retry once
            content, headers = self._encode(body)
            response = self._send("POST", url, what, content, headers)
        data = self._decode(response, url, what)
        if _is_arrow(response):
            streams = split_streams(data)
            if not streams:
                raise ProtocolError(f"{what}: HTTP {response.status} from {url} with an empty Arrow body")
            return streams
        detail = _body_message(data)
        if response.status == 413 and self.max_request_bytes is not None:
            detail += f" (the server takes at most {self.max_request_bytes} bytes per request)"
        elif response.status == 404:
            detail += f" (is prefix={self.prefix or '/'!r} right? vgi-rpc 0.52.2 servers serve at the root by default)"
        if response.status < 400:
            raise ProtocolError(f"{what}: HTTP {response.status} from {url} without an Arrow body: {detail}")
        raise TransportError(f"{what}: HTTP {response.status} from {url}: {detail}")

    # -- Driver -------------------------------------------------------------------------------

    def unary(self, request: Request, what: str) -> Messages:
        """POST ``{prefix}/{protocol}/{method}``; the reply stream."""
        body = request_bytes(request)
        return self.post(self.url(*_routing(body)), body, what)[0]

    def open_stream(self, request: Request, has_header: bool, what: str) -> HttpStream:
        """POST ``.../init``; the channel for the call's turns."""
        request = request_bytes(request)
        protocol, method = _routing(request)
        streams = self.post(self.url(protocol, method, wire.INIT), request, what)
        return HttpStream(self, self.url(protocol, method, wire.EXCHANGE), streams, has_header, what)

    def close(self) -> None:
        """Close the session's connections (a user's httpx client stays open)."""
        self.session.close()


class HttpStream:
    """One stream call: the ``/init`` response split into header and init items; a POST per turn."""

    def __init__(self, driver: HttpDriver, url: str, streams: list[Messages], has_header: bool, what: str) -> None:
        self.driver = driver
        self.url = url  # /exchange turns carry no routing metadata: the path names the call
        self.what = what
        decoded = [decode_messages(s)[1] for s in streams]
        self.header_items: Items = decoded.pop(0) if has_header and decoded else []
        self._init: Items = [item for items in decoded for item in items]

    def init_items(self) -> Items:
        """The init logs, state tokens and (producers) the first tick's output."""
        return self._init

    def turn(self, batch: pa.RecordBatch, metadata: dict[bytes, bytes] | None, stop: Stop) -> tuple[Items, bool]:
        """POST one input (tokens already in *metadata*) to ``.../exchange``; its output items."""
        body = encode_stream(batch.schema, ((batch, metadata),)).to_pybytes()
        streams = self.driver.post(self.url, body, self.what)
        return [item for s in streams for item in decode_messages(s)[1]], True

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
) -> Iterator[P]:
    """Yield a typed proxy calling the server at *base_url* + *prefix* over HTTP.

    *client*: a ready ``httpx.Client`` (auth, extra headers, proxies, custom TLS), used as given
    and left open; without one, keep-alive connections of the standard library's ``http.client``
    are made and closed at the end (httpx when the environment sets a proxy for *base_url*). *timeout* (seconds, per
    request; None: wait forever): an overrun raises ``RpcTimeoutError``.
    """
    driver = HttpDriver(base_url, prefix=prefix, client=client, timeout=timeout)
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
