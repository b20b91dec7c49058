"""How the HTTP client sends one request: a two-method seam, over sockets of our own or httpx.

``StdlibSession`` (the default) keeps idle keep-alive connections per origin, writes each request
itself in one ``sendall`` and parses the response with the standard library's
``http.client.HTTPResponse``: about a third of httpx's client CPU per request here (httpx builds
several models, header lists and a cookie jar per request), which is most of a small call's cost
(``benchmarks/http_load.py``), and a sixth less than ``http.client.HTTPConnection``'s (which
writes head and body in two system calls). ``HttpxSession`` sends through a ready ``httpx.Client``: the way to
add auth, proxies, custom TLS or a mock transport. Either way the driver sees an ``HttpReply`` whose
body is still encoded, read up to a cap, and the failures of errors.py: ``RpcTimeoutError`` for a
timeout, ``TransportError`` for a connection that fails.

Invariants: a connection goes back to the idle list only after its response was read whole and the
server left it open; an idle connection the server has closed meanwhile (readable before we send)
is dropped rather than retried after a failure, so a request is never sent twice.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..errors import RpcTimeoutError, TransportError
from .coding import BodyTooLarge

__all__ = ["HttpReply", "HttpSession", "HttpxSession", "StdlibSession", "default_session"]

CONNECT_TIMEOUT = 30.0  # seconds, when no timeout is given (calls themselves may take forever)
_CHUNK = 1 << 20
_MAX_IDLE = 8  # idle connections kept per origin


@dataclass(frozen=True, slots=True)
class HttpReply:
    """A response: status, headers (lower-case names), the body as sent (still encoded)."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class HttpSession(Protocol):
    """Sends a request; the driver does the rest (codings, Arrow, error bodies)."""

    def send(self, verb: str, url: str, body: bytes | None, headers: dict[str, str], limit: int) -> HttpReply:
        """One request; raises ``BodyTooLarge`` when the body passes *limit* bytes."""

    def close(self) -> None:
        """Release the connections the session made."""


def _failed(verb: str, url: str, exc: BaseException) -> TransportError:
    if isinstance(exc, TimeoutError):
        return RpcTimeoutError(f"{verb} {url} timed out ({type(exc).__name__}: {exc})")
    return TransportError(f"{verb} {url} failed: {type(exc).__name__}: {exc}")


class StdlibSession:
    """Keep-alive HTTP/1.1 connections of our own, thread-safe (a connection serves one request at a time).

    A request goes out in one ``sendall`` (head and body together; a body of 64 KiB or more
    follows in a second), so a server reads it at once and no Nagle delay splits it; the
    response is parsed by the standard library's ``http.client.HTTPResponse`` (status, headers,
    ``Content-Length`` or chunked bodies). A numeric host is connected to without a name lookup.
    *timeout* bounds the connect and each read or write (None: a read may wait forever, the
    connect gives up after ``CONNECT_TIMEOUT``). ``https`` verifies against the system's
    certificate store (``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` apply).
    """

    def __init__(self, timeout: float | None = None) -> None:
        self._timeout = timeout
        self._idle: dict[_Origin, list[socket.socket]] = {}
        self._routes: dict[str, tuple[_Origin, bytes]] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None
        self._closed = False

    def _route(self, url: str) -> tuple[_Origin, bytes]:
        """The URL's origin and the start of its request head (request line and ``Host``)."""
        route = self._routes.get(url)
        if route is None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise TransportError(f"cannot send to {url!r}: not an http or https URL")
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            host = parts.hostname
            port = parts.port or (443 if parts.scheme == "https" else 80)
            shown = f"[{host}]" if ":" in host else host if host.isascii() else host.encode("idna").decode("ascii")
            if parts.port is not None and parts.port != (443 if parts.scheme == "https" else 80):
                shown += f":{port}"
            _check_header("Host", shown)
            if any(c in path for c in "\r\n ") or not path.isascii():
                raise TransportError(f"cannot send to {url!r}: its path holds a space, a line break or non-ASCII")
            route = (parts.scheme, host, port), f" {path} HTTP/1.1\r\nHost: {shown}\r\n".encode("ascii")
            if len(self._routes) < 1024:
                self._routes[url] = route
        return route

    def _connection(self, origin: _Origin) -> socket.socket:
        with self._lock:
            idle = self._idle.get(origin)
            while idle:
                kept = idle.pop()
                if not select.select((kept,), (), (), 0)[0]:
                    return kept  # nothing to read: the server has not closed it
                kept.close()
        scheme, host, port = origin
        connect_timeout = self._timeout if self._timeout is not None else CONNECT_TIMEOUT
        sock = _connect(host, port, connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                if self._tls is None:
                    self._tls = ssl.create_default_context()
                sock = self._tls.wrap_socket(sock, server_hostname=host)
            sock.settimeout(self._timeout)
        except BaseException:
            sock.close()
            raise
        return sock

    def _release(self, origin: _Origin, sock: socket.socket) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if not self._closed and len(idle) < _MAX_IDLE:
                idle.append(sock)
                return
        sock.close()

    def send(self, verb: str, url: str, body: bytes | None, headers: dict[str, str], limit: int) -> HttpReply:
        """One request over an idle connection to the URL's origin, or a new one."""
        origin, line = self._route(url)
        head = [verb.encode("ascii"), line]
        for name, value in headers.items():
            _check_header(name, value)
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        if body is not None:
            head.append(b"Content-Length: %d\r\n" % len(body))
        head.append(b"\r\n")
        sock: socket.socket | None = None
        try:
            sock = self._connection(origin)
            if body is not None and len(body) < _JOIN_MAX:
                sock.sendall(b"".join([*head, body]))
            else:
                sock.sendall(b"".join(head))
                if body:
                    sock.sendall(body)
            response = http.client.HTTPResponse(sock, method=verb)
            try:
                response.begin()
                data = _read(response, limit)
            finally:
                response.close()  # its file on the socket, not the socket
        except BodyTooLarge:
            if sock is not None:
                sock.close()
            raise
        except (OSError, http.client.HTTPException) as exc:
            if sock is not None:
                sock.close()
            raise _failed(verb, url, exc) from exc
        if response.will_close:
            sock.close()
        else:
            self._release(origin, sock)
        names = {name.lower(): value for name, value in response.getheaders()}
        return HttpReply(response.status, names, data)

    def close(self) -> None:
        """Close every idle connection; later sends still work (on new connections, closed on return)."""
        with self._lock:
            self._closed = True
            idle = [sock for socks in self._idle.values() for sock in socks]
            self._idle.clear()
        for sock in idle:
            sock.close()


_Origin = tuple[str, str, int]  # scheme, host, port
_JOIN_MAX = 1 << 16  # smaller bodies go out in one write with the head


def _check_header(name: str, value: str) -> None:
    """Refuse a header that would break the request apart (a line break, or a bad name)."""
    if not name or any(c in name for c in ":\r\n \t") or "\r" in value or "\n" in value:
        raise TransportError(f"invalid HTTP header {name!r}: {value!r}")


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to *host*: a numeric address directly, a name through ``socket.create_connection``."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect((host, port))
        except BaseException:
            sock.close()
            raise
        return sock
    return socket.create_connection((host, port), timeout=timeout)


def _read(response: http.client.HTTPResponse, limit: int) -> bytes:
    """The whole body, refusing one that passes *limit* as soon as it does."""
    length = response.length
    if length is not None:
        if length > limit:
            raise BodyTooLarge(length)
        return response.read()
    chunks, size = [], 0
    while chunk := response.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(size)
        chunks.append(chunk)
    return b"".join(chunks)


class HttpxSession:
    """Sends through a ready ``httpx.Client`` (left open at close unless the session made it)."""

    def __init__(self, client: Any, *, timeout: float | None = None, owned: bool = False) -> None:
        import httpx

        self._httpx = httpx
        self.client = client
        self._owned = owned
        # a user's client keeps its own timeouts unless one is given explicitly
        self._timeout: Any = httpx.Timeout(timeout) if timeout is not None else httpx.USE_CLIENT_DEFAULT

    def send(self, verb: str, url: str, body: bytes | None, headers: dict[str, str], limit: int) -> HttpReply:
        """One request; the body read raw (not decoded) up to *limit*."""
        httpx = self._httpx
        try:
            with self.client.stream(verb, url, content=body, headers=headers, timeout=self._timeout) as response:
                names = {name.lower(): value for name, value in response.headers.items()}
                if response.is_stream_consumed:  # built in memory (httpx.MockTransport): already decoded
                    names.pop("content-encoding", None)
                    return HttpReply(response.status_code, names, response.content)
                chunks, size = [], 0
                for chunk in response.iter_raw():
                    size += len(chunk)
                    if size > limit:
                        raise BodyTooLarge(size)
                    chunks.append(chunk)
        except httpx.TimeoutException as exc:
            raise RpcTimeoutError(f"{verb} {url} timed out ({type(exc).__name__}: {exc})") from exc
        except httpx.HTTPError as exc:
            raise TransportError(f"{verb} {url} failed: {type(exc).__name__}: {exc}") from exc
        return HttpReply(response.status_code, names, b"".join(chunks))

    def close(self) -> None:
        """Close the client if the session made it."""
        if self._owned:
            self.client.close()


def default_session(base_url: str, timeout: float | None) -> HttpSession:
    """The session ``http_connect`` uses without a client: ``http.client``, or httpx behind a proxy.

    A proxy set in the environment (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, minus
    ``NO_PROXY``) needs httpx, which honours it as before.
    """
    import urllib.request  # only here: it is a slow import

    parts = urlsplit(base_url)
    proxies = urllib.request.getproxies_environment()
    if (proxies.get(parts.scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(parts.hostname or ""):
        import httpx

        connect = timeout if timeout is not None else CONNECT_TIMEOUT
        return HttpxSession(httpx.Client(timeout=httpx.Timeout(timeout, connect=connect)), owned=True)
    return StdlibSession(timeout)
